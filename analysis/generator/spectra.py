"""Toy spectra shared by the processes (all sampled by inverse CDF or mixtures).

These are documented modelling choices, not predictions; each process module
says which parameters it uses.
"""

from __future__ import annotations

import numpy as np
from ewpolar.generator.kinematics import Vec4

__all__ = [
    "cos_theta_quadratic",
    "cos_theta_sin2_mixture",
    "mass_above_threshold",
    "system_momentum",
    "tag_parton_pt",
]


def tag_parton_pt(rng: np.random.Generator, longitudinal: np.ndarray, scale_l: float,
                  scale_t: float) -> np.ndarray:
    """pT (GeV) of a quark that radiated a W, after the effective-W picture.

    With x = pT²/M²: a longitudinal W leaves the quark with dN/dx ∝ 1/(1 + x)³
    (soft, M = ``scale_l``), a transverse W with dN/dx ∝ x/(1 + x)³ (harder,
    M = ``scale_t``). Inverse CDFs: x = (1 − u)^(−1/2) − 1 and x = √u/(1 − √u);
    u is capped at 0.995 to keep the transverse tail finite.
    """
    u = np.minimum(rng.random(longitudinal.shape), 0.995)
    x_l = (1.0 - u) ** -0.5 - 1.0
    su = np.sqrt(u)
    x_t = su / (1.0 - su)
    return np.where(longitudinal, scale_l * np.sqrt(x_l), scale_t * np.sqrt(x_t))


def mass_above_threshold(rng: np.random.Generator, threshold: np.ndarray, shape_k: float,
                         scale: np.ndarray | float) -> np.ndarray:
    """Invariant mass = threshold + Gamma(k, scale) GeV: a falling spectrum above threshold."""
    return threshold + rng.gamma(shape_k, 1.0, threshold.shape) * scale


def cos_theta_quadratic(rng: np.random.Generator, alpha: np.ndarray | float, n: int) -> np.ndarray:
    """cos θ ∝ 1 + α cos²θ (α ≥ 0): mixture of flat and 3/2 c² (c = ±u^(1/3))."""
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n,))
    frac_c2 = (alpha / 3.0) / (1.0 + alpha / 3.0)
    flat = 2.0 * rng.random(n) - 1.0
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    c2 = sign * np.cbrt(rng.random(n))
    return np.where(rng.random(n) < frac_c2, c2, flat)


def cos_theta_sin2_mixture(rng: np.random.Generator, frac_sin2: float, n: int) -> np.ndarray:
    """cos θ from (1 − f) flat + f · 3/4 sin²θ (c = 2 sin(arcsin(2u − 1)/3))."""
    u = rng.random(n)
    sin2 = 2.0 * np.sin(np.arcsin(2.0 * u - 1.0) / 3.0)
    flat = 2.0 * rng.random(n) - 1.0
    return np.where(rng.random(n) < frac_sin2, sin2, flat)


def system_momentum(px: np.ndarray, py: np.ndarray, rapidity: np.ndarray, mass: np.ndarray) -> Vec4:
    """Four-momentum of a system with given transverse momentum, rapidity and mass."""
    mt = np.sqrt(px * px + py * py + mass * mass)
    return Vec4(px, py, mt * np.sinh(rapidity), mt * np.cosh(rapidity))
