"""Particle properties and NanoAOD flag values used by the toy generator (GeV)."""

from __future__ import annotations

__all__ = [
    "GAMMA_H",
    "GAMMA_T",
    "GAMMA_W",
    "GAMMA_Z",
    "HARD_FLAGS",
    "MASS_B",
    "MASS_C",
    "MASS_E",
    "MASS_H",
    "MASS_MU",
    "MASS_T",
    "MASS_W",
    "MASS_Z",
    "SQRT_S",
    "STATUS_FLAGS",
]

SQRT_S = 13000.0

# PDG 2022 values; m_W as in the analysis' neutrino reconstruction (docs/physics.md §1b)
MASS_W, GAMMA_W = 80.379, 2.085
MASS_Z, GAMMA_Z = 91.1876, 2.4952
MASS_T, GAMMA_T = 172.5, 1.42
MASS_H, GAMMA_H = 125.0, 0.0041
MASS_B, MASS_C = 4.8, 1.5
MASS_E, MASS_MU = 0.000511, 0.10566

# NanoAOD GenPart_statusFlags bits
STATUS_FLAGS = {
    "isPrompt": 1 << 0,
    "isDecayedLeptonHadron": 1 << 1,
    "isTauDecayProduct": 1 << 2,
    "isPromptTauDecayProduct": 1 << 3,
    "isDirectTauDecayProduct": 1 << 4,
    "isDirectPromptTauDecayProduct": 1 << 5,
    "isHardProcess": 1 << 7,
    "fromHardProcess": 1 << 8,
    "isFirstCopy": 1 << 12,
    "isLastCopy": 1 << 13,
}
# every stored particle is the single (first = last) copy of a hard-process particle
HARD_FLAGS = (STATUS_FLAGS["isPrompt"] | STATUS_FLAGS["isHardProcess"]
              | STATUS_FLAGS["fromHardProcess"] | STATUS_FLAGS["isFirstCopy"]
              | STATUS_FLAGS["isLastCopy"])
