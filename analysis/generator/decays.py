"""Boson and top-quark decays with the W helicity structure of docs/physics.md §2.

All decays happen in the rest frame of the decaying particle, reached by a pure
boost from the frame its momentum is given in; the W quantisation axis is the W
flight direction in that frame (for the ssWW signal: the WW rest frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ewpolar.generator.constants import GAMMA_W, MASS_B, MASS_T, MASS_W
from ewpolar.generator.kinematics import (
    Vec4,
    breit_wigner_mass,
    cos_theta_helicity,
    isotropic_directions,
    two_body_decay,
)
from ewpolar.generator.record import charged_lepton_mass, quark_mass

__all__ = [
    "WDecay",
    "decay_isotropic",
    "decay_top_at_rest",
    "decay_w_hadronic",
    "decay_w_leptonic",
    "decay_z_leptonic",
    "lepton_flavours",
    "sample_helicities",
    "top_w_helicity_fractions",
    "w_masses",
]


def w_masses(rng: np.random.Generator, n: int) -> np.ndarray:
    """W masses from a Breit–Wigner truncated at ±10 Γ_W."""
    return breit_wigner_mass(rng, n, MASS_W, GAMMA_W, MASS_W - 10 * GAMMA_W, MASS_W + 10 * GAMMA_W)


def sample_helicities(rng: np.random.Generator, n: int, f0: float | np.ndarray,
                      f_left: float | np.ndarray) -> np.ndarray:
    """Helicity per W: 0 with probability f0, −1 with f_left, +1 otherwise."""
    u = rng.random(n)
    return np.where(u < f0, 0, np.where(u < f0 + f_left, -1, 1)).astype(np.int8)


def lepton_flavours(rng: np.random.Generator, n: int) -> np.ndarray:
    """|pdgId| of the charged lepton: e or μ with 50 % each."""
    return np.where(rng.random(n) < 0.5, 11, 13).astype(np.int32)


@dataclass
class WDecay:
    """W → f f̄': ``first`` is the charged lepton (or the down-type quark of the same
    charge sign for hadronic decays), ``second`` the neutrino (up-type quark)."""

    first: Vec4
    second: Vec4
    first_pdg: np.ndarray
    second_pdg: np.ndarray
    cos_theta: np.ndarray


def _w_axis(w: Vec4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = w.p
    return w.px / p, w.py / p, w.pz / p


def decay_w_leptonic(rng: np.random.Generator, w: Vec4, charge: np.ndarray, helicity: np.ndarray,
                     flavour: np.ndarray) -> WDecay:
    """W± → ℓ±ν with cos θ* of ℓ drawn for the W's helicity about its flight direction."""
    n = w.px.shape[0]
    lep_pdg = (-charge * flavour).astype(np.int32)  # ℓ⁺ has negative pdgId
    nu_pdg = (charge * (flavour + 1)).astype(np.int32)
    cos_theta = cos_theta_helicity(rng, helicity, charge)
    phi = 2.0 * np.pi * rng.random(n)
    lep, nu = two_body_decay(w, charged_lepton_mass(lep_pdg), 0.0, cos_theta, phi, _w_axis(w))
    return WDecay(lep, nu, lep_pdg, nu_pdg, cos_theta)


def decay_w_hadronic(rng: np.random.Generator, w: Vec4, charge: np.ndarray,
                     helicity: np.ndarray) -> WDecay:
    """W⁺ → u d̄ or c s̄ (W⁻ → d ū or s c̄), 50 % each; the down-type (anti)quark,
    which carries the W's charge sign like ℓ±, follows the lepton's angular law."""
    n = w.px.shape[0]
    cs = rng.random(n) < 0.5
    down = np.where(cs, 3, 1)
    up = np.where(cs, 4, 2)
    first_pdg = (-charge * down).astype(np.int32)
    second_pdg = (charge * up).astype(np.int32)
    cos_theta = cos_theta_helicity(rng, helicity, charge)
    phi = 2.0 * np.pi * rng.random(n)
    first, second = two_body_decay(w, quark_mass(first_pdg), quark_mass(second_pdg),
                                   cos_theta, phi, _w_axis(w))
    return WDecay(first, second, first_pdg, second_pdg, cos_theta)


def decay_z_leptonic(rng: np.random.Generator, z: Vec4) -> tuple[Vec4, Vec4, np.ndarray]:
    """Z → ℓ⁻ℓ⁺ (e or μ) with cos θ of ℓ⁻ ∝ 1 + cos²θ about the Z flight direction.

    Returns (ℓ⁻, ℓ⁺, |pdgId|).
    """
    n = z.px.shape[0]
    flavour = lepton_flavours(rng, n)
    # 1 + c² is the equal mixture of (1 − c)² and (1 + c)²
    helicity = np.where(rng.random(n) < 0.5, -1, 1)
    cos_theta = cos_theta_helicity(rng, helicity, np.ones(n))
    phi = 2.0 * np.pi * rng.random(n)
    mass = charged_lepton_mass(flavour)
    lm, lp = two_body_decay(z, mass, mass, cos_theta, phi, _w_axis(z))
    return lm, lp, flavour


def decay_isotropic(rng: np.random.Generator, parent: Vec4, m1: np.ndarray | float,
                    m2: np.ndarray | float) -> tuple[Vec4, Vec4]:
    """Two-body decay, isotropic in the parent's rest frame."""
    n = parent.px.shape[0]
    axis = isotropic_directions(rng, n)
    ones, zeros = np.ones(n), np.zeros(n)
    return two_body_decay(parent, m1, m2, ones, zeros, axis)


def top_w_helicity_fractions(w_mass: float = MASS_W, top_mass: float = MASS_T) -> tuple[float, float]:
    """(f0, f_T) of W bosons from top decay at leading order, x = m_W²/m_t² (docs/physics.md §2).

    f_T is f_L for t → W⁺b and f_R for t̄ → W⁻b̄; the other transverse fraction is zero.
    """
    x = (w_mass / top_mass) ** 2
    return 1.0 / (1.0 + 2.0 * x), 2.0 * x / (1.0 + 2.0 * x)


def decay_top_at_rest(rng: np.random.Generator, top_mass: np.ndarray,
                      charge: np.ndarray) -> tuple[Vec4, Vec4, np.ndarray]:
    """t → W⁺b (charge +1) or t̄ → W⁻b̄ (−1) in the top rest frame, isotropic.

    Returns W and b momenta in the top rest frame and the W helicity drawn with
    the leading-order fractions: 0 with f0, otherwise −1 for W⁺ from t and +1 for
    W⁻ from t̄ (V−A: f_R = 0 for t, f_L = 0 for t̄). Decay the W in this frame so
    that its quantisation axis is the W direction in the top rest frame.
    """
    n = top_mass.shape[0]
    mw = w_masses(rng, n)
    zeros = np.zeros(n)
    w_rf, b_rf = decay_isotropic(rng, Vec4(zeros, zeros, zeros, top_mass), mw, MASS_B)
    f0, _ = top_w_helicity_fractions()
    helicity = np.where(rng.random(n) < f0, 0, -charge).astype(np.int8)
    return w_rf, b_rf, helicity
