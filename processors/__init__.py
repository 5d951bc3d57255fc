"""coffea processors, one per analysis: :mod:`ewpolar.processors.ssww` and :mod:`ewpolar.processors.wh`."""
