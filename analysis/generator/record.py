"""The generated event before detector simulation: particles in fixed slots.

Each process fills a :class:`HardEvent` whose arrays have one row per event and
one column per *slot*. The slot layout is fixed per process (for example slot 0
is always the first W boson), which keeps everything columnar:

- ``gen``: the particles written to ``GenPart`` (shape ``(n, k)``) with their
  mother slot, status code and stored mass;
- ``leptons``: charged leptons that may be reconstructed (prompt ones point to
  their ``GenPart`` slot; non-prompt ones point to the parton they came from);
- ``partons``: quarks and gluons that may become jets (hard-process partons and
  initial-state radiation);
- ``scale`` and ``rapidity``: hard scale Q (GeV) and rapidity of the hard system,
  which drive the toy scale and PDF weights;
- ``cp_int`` and ``cp_quad``: per-event relative CP weights (WH only).

Momentum balance: every process gives its hard system the transverse momentum
that balances the radiated partons, so the visible and invisible truth particles
sum to zero in the transverse plane (the detector simulation relies on it for
the missing transverse momentum).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ewpolar.generator.constants import MASS_B, MASS_C, MASS_E, MASS_MU
from ewpolar.generator.kinematics import Vec4

__all__ = [
    "GenRecord",
    "GenRecordBuilder",
    "HardEvent",
    "Leptons",
    "Partons",
    "charged_lepton_mass",
    "hadron_flavour",
    "isr_partons",
    "quark_mass",
]


def charged_lepton_mass(pdg: np.ndarray) -> np.ndarray:
    """Mass of e/μ from the pdgId."""
    return np.where(np.abs(pdg) == 11, MASS_E, MASS_MU)


def quark_mass(pdg: np.ndarray) -> np.ndarray:
    """Mass stored for a parton: b and c massive, light quarks and gluons massless."""
    apdg = np.abs(pdg)
    return np.where(apdg == 5, MASS_B, np.where(apdg == 4, MASS_C, 0.0))


def hadron_flavour(pdg: np.ndarray) -> np.ndarray:
    """NanoAOD-style hadron flavour of a jet from its parton: 5 (b), 4 (c) or 0."""
    apdg = np.abs(pdg)
    return np.where(apdg == 5, 5, np.where(apdg == 4, 4, 0)).astype(np.int32)


@dataclass
class GenRecord:
    """Particles stored in ``GenPart``: shapes (n, k) except the per-slot ``mother``/``status``."""

    p4: Vec4
    mass: np.ndarray
    pdg: np.ndarray
    mother: np.ndarray
    status: np.ndarray


class GenRecordBuilder:
    """Collects GenPart slots in order; mothers must be added before their daughters."""

    def __init__(self) -> None:
        self._p4: list[Vec4] = []
        self._mass: list[np.ndarray] = []
        self._pdg: list[np.ndarray] = []
        self._mother: list[int] = []
        self._status: list[int] = []

    def add(self, p4: Vec4, pdg: np.ndarray | int, mass: np.ndarray | float, *,
            mother: int = -1, status: int = 1) -> int:
        """Append one particle per event and return its slot index."""
        if mother >= len(self._p4):
            raise ValueError("a mother must be added before its daughters")
        n = p4.px.shape[0]
        self._p4.append(p4)
        self._pdg.append(np.broadcast_to(np.asarray(pdg, dtype=np.int32), (n,)))
        self._mass.append(np.broadcast_to(np.asarray(mass, dtype=np.float64), (n,)))
        self._mother.append(mother)
        self._status.append(status)
        return len(self._p4) - 1

    def build(self) -> GenRecord:
        return GenRecord(
            p4=Vec4.stack(self._p4),
            mass=np.stack(self._mass, axis=1),
            pdg=np.stack(self._pdg, axis=1),
            mother=np.asarray(self._mother, dtype=np.int32),
            status=np.asarray(self._status, dtype=np.int32),
        )


@dataclass
class Leptons:
    """Charged-lepton candidates, shape (n, L).

    ``gen_index`` is the GenPart slot of a prompt lepton or −1 for a non-prompt
    one; ``parent_parton`` is the parton slot a non-prompt lepton comes from
    (−1 for prompt leptons); ``activity`` is the energy of hadrons around the
    lepton relative to the lepton's (0 for prompt leptons), which drives its
    isolation.
    """

    p4: Vec4
    pdg: np.ndarray
    gen_index: np.ndarray
    parent_parton: np.ndarray
    activity: np.ndarray

    @classmethod
    def from_slots(cls, p4s: list[Vec4], pdgs: list[np.ndarray], gen_index: list[int],
                   parent_parton: list[np.ndarray | int] | None = None,
                   activity: list[np.ndarray | float] | None = None) -> Leptons:
        n = p4s[0].px.shape[0]
        parents = parent_parton if parent_parton is not None else [-1] * len(p4s)
        around = activity if activity is not None else [0.0] * len(p4s)
        return cls(
            p4=Vec4.stack(p4s),
            pdg=np.stack([np.broadcast_to(np.asarray(p, dtype=np.int32), (n,)) for p in pdgs], axis=1),
            gen_index=np.tile(np.asarray(gen_index, dtype=np.int32), (n, 1)),
            parent_parton=np.stack([np.broadcast_to(np.asarray(p, dtype=np.int64), (n,))
                                    for p in parents], axis=1),
            activity=np.stack([np.broadcast_to(np.asarray(a, dtype=np.float64), (n,))
                               for a in around], axis=1),
        )


@dataclass
class Partons:
    """Quarks and gluons that may make jets, shape (n, P); ``exists`` masks empty slots."""

    p4: Vec4
    pdg: np.ndarray
    exists: np.ndarray

    @classmethod
    def concat(cls, parts: list[Partons]) -> Partons:
        return cls(
            p4=Vec4(*(np.concatenate([getattr(p.p4, c) for p in parts], axis=1)
                      for c in ("px", "py", "pz", "e"))),
            pdg=np.concatenate([p.pdg for p in parts], axis=1),
            exists=np.concatenate([p.exists for p in parts], axis=1),
        )

    @classmethod
    def from_slots(cls, p4s: list[Vec4], pdgs: list[np.ndarray]) -> Partons:
        n = p4s[0].px.shape[0]
        return cls(
            p4=Vec4.stack(p4s),
            pdg=np.stack([np.broadcast_to(np.asarray(p, dtype=np.int32), (n,)) for p in pdgs], axis=1),
            exists=np.ones((n, len(p4s)), dtype=bool),
        )

    def transverse_sum(self) -> tuple[np.ndarray, np.ndarray]:
        """Σ px, Σ py over existing partons, per event."""
        return (np.where(self.exists, self.p4.px, 0.0).sum(axis=1),
                np.where(self.exists, self.p4.py, 0.0).sum(axis=1))


@dataclass
class HardEvent:
    """One chunk of generated events (see the module docstring)."""

    gen: GenRecord
    leptons: Leptons
    partons: Partons
    scale: np.ndarray
    rapidity: np.ndarray
    cp_int: np.ndarray | None = None
    cp_quad: np.ndarray | None = None
    info: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.scale.shape[0]


# initial-state radiation --------------------------------------------------------------
ISR_SLOTS = 3
ISR_PT_MIN = 10.0  # GeV
ISR_PT_INDEX = 1.8  # dN/dpT ∝ pT^-(1 + index) above ISR_PT_MIN
ISR_PT_MAX = 600.0


def isr_partons(rng: np.random.Generator, n: int, mean: float) -> Partons:
    """Up to three radiated partons per event.

    Multiplicity Poisson(mean) capped at 3; pT from a power law above 10 GeV
    (capped at 600 GeV), rapidity Gaussian with width 2.2 clipped to |y| < 5,
    flavour: gluon 94 %, c 4 %, b 2 %. Empty slots have ``exists`` False and
    zero momentum.
    """
    count = np.minimum(rng.poisson(mean, n), ISR_SLOTS)
    exists = np.arange(ISR_SLOTS)[None, :] < count[:, None]
    shape = (n, ISR_SLOTS)
    pt = np.minimum(ISR_PT_MIN * rng.random(shape) ** (-1.0 / ISR_PT_INDEX), ISR_PT_MAX)
    y = np.clip(2.2 * rng.standard_normal(shape), -5.0, 5.0)
    phi = 2.0 * np.pi * rng.random(shape) - np.pi
    u = rng.random(shape)
    sign = np.where(rng.random(shape) < 0.5, 1, -1)
    pdg = np.where(u < 0.94, 21, np.where(u < 0.98, 4 * sign, 5 * sign)).astype(np.int32)
    pt = np.where(exists, pt, 0.0)
    p4 = Vec4.from_ptyphim(pt, y, phi, quark_mass(pdg))
    p4 = Vec4(p4.px, p4.py, np.where(exists, p4.pz, 0.0), np.where(exists, p4.e, 0.0))
    return Partons(p4=p4, pdg=pdg, exists=exists)
