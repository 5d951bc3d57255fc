"""Input profiles: reading NanoAOD, ATLAS PHYSLITE and flat ntuples into what the selections read.

* :mod:`ewpolar.inputs.profile`: the profile YAML (:func:`load_profile`) and the shipped profiles;
* :mod:`ewpolar.inputs.schemas`: the coffea NanoEvents schema of each format;
* :mod:`ewpolar.inputs.adapt`: one chunk of events as the canonical collections;
* :mod:`ewpolar.inputs.check`: a profile checked against the first file of each dataset.
"""

from __future__ import annotations

__all__: list[str] = []
