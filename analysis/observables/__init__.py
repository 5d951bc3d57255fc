"""Polarization and CP observables: numba kernels over flat arrays and their awkward-level helpers."""

from ewpolar.observables.kernels import *  # noqa: F403
from ewpolar.observables.kernels import __all__  # noqa: F401
