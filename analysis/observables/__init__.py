"""Polarization, CP and VBS observables.

:mod:`ewpolar.observables.kernels`: numba kernels on flat float64 arrays
(``cos_theta_star``, ``neutrino_pz``, ``cos_delta_plus``, ``mjj``, ...), the
functions the processors and selections call. :mod:`ewpolar.observables.arrays`:
the same observables for whole events from awkward candidates or `vector`
Momentum4D records. Everything public is importable from here::

    from ewpolar import observables as obs
    obs.cos_theta_star(*lep, *w, *frame)
"""

from __future__ import annotations

from ewpolar.observables import arrays, kernels
from ewpolar.observables.arrays import *  # noqa: F403
from ewpolar.observables.kernels import *  # noqa: F403

__all__ = sorted([*kernels.__all__, *arrays.__all__])
