"""coffea processors, one per analysis: :mod:`processors.ssww` and :mod:`processors.wh`."""
