"""Pythia 8 backend of the generator: showered, hadronised events through the detector.

``ewpolar generate --backend pythia`` runs Pythia 8 (``pythia8mc``) for the
config's processes (:mod:`.processes`), clusters anti-kt R = 0.4 jets with
fastjet, runs the project's parametrised detector
(:mod:`ewpolar.generator.detector`) and writes the same NanoAOD schema as the
toy (:mod:`.hadron`), with ``GenPart`` from Pythia's record. User LHE files
are showered with ``--lhe``; the toy's polarised W±W±jj events are showered
through LHE (:mod:`.lhe`). Work is split into blocks with their own seeds and
run in parallel processes (:mod:`.run`, :mod:`.writer`).
"""

from __future__ import annotations

from ewpolar.generator.pythia.processes import PYTHIA_PROCESSES
from ewpolar.generator.pythia.writer import generate, shower_lhe

__all__ = ["PYTHIA_PROCESSES", "generate", "shower_lhe"]
