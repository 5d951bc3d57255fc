"""coffea processors, one per analysis (:mod:`ewpolar.processors.ssww`,
:mod:`ewpolar.processors.wh`), on a shared base: the per-chunk loop
(:mod:`ewpolar.processors.base`), event weights and systematics
(:mod:`ewpolar.processors.weights`), histogram booking and filling
(:mod:`ewpolar.processors.filling`) and classifier scoring
(:mod:`ewpolar.processors.scoring`). Their observables are the features of
:mod:`ewpolar.models.features`."""
