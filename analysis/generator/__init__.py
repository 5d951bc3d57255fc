"""Toy event generator writing NanoAOD-schema ROOT files for both analyses.

The generator makes columnar toy samples (numpy, no per-event Python loops):
hard process with exact Lorentz kinematics in float64 (:mod:`.ssww`, :mod:`.wh`,
:mod:`.ttbar`, :mod:`.decays`), a toy detector (:mod:`.detector`), toy theory
weights (:mod:`.theory`), and NanoAOD branches (:mod:`.nanoaod`) written by
:func:`generate` (:mod:`.writer`).

Public API:

- :func:`generate` writes datasets and ``fileset.json`` (``ewpolar generate``);
- :func:`simulate` returns one chunk of branches in memory;
- :func:`expected_helicity_fractions` gives the W helicity fractions a ssWW
  dataset is generated with.

The Pythia 8 backend (showers, hadronisation, anti-kt jets, the same detector
and NanoAOD writer) is :mod:`ewpolar.generator.pythia` (``pythia`` extra).
"""

from __future__ import annotations

from ewpolar.generator.nanoaod import simulate
from ewpolar.generator.processes import PROCESSES, expected_helicity_fractions
from ewpolar.generator.writer import generate

__all__ = ["PROCESSES", "expected_helicity_fractions", "generate", "simulate"]
