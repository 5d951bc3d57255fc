"""Four-vectors, exact Lorentz boosts and sampling helpers on numpy arrays (float64).

A :class:`Vec4` holds four arrays (px, py, pz, E) of any common shape, so one
object can stand for one particle in ``n`` events, shape ``(n,)``, or ``k``
particles in ``n`` events, shape ``(n, k)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "Vec4",
    "breit_wigner_mass",
    "cos_theta_helicity",
    "isotropic_directions",
    "orthonormal_frame",
    "two_body_decay",
    "two_body_momentum",
    "wrap_phi",
]


class Vec4:
    """Four-momenta (px, py, pz, E) in GeV as float64 arrays of one shape."""

    __slots__ = ("e", "px", "py", "pz")

    def __init__(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray) -> None:
        self.px, self.py, self.pz, self.e = px, py, pz, e

    # construction -----------------------------------------------------------------
    @classmethod
    def from_ptetaphim(cls, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray,
                       mass: np.ndarray) -> Vec4:
        pz = pt * np.sinh(eta)
        return cls(pt * np.cos(phi), pt * np.sin(phi), pz, np.sqrt(pt * pt + pz * pz + mass * mass))

    @classmethod
    def from_ptyphim(cls, pt: np.ndarray, y: np.ndarray, phi: np.ndarray,
                     mass: np.ndarray) -> Vec4:
        """From transverse momentum, rapidity y, azimuth and mass."""
        mt = np.sqrt(pt * pt + mass * mass)
        return cls(pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y), mt * np.cosh(y))

    @classmethod
    def from_p3m(cls, px: np.ndarray, py: np.ndarray, pz: np.ndarray, mass: np.ndarray) -> Vec4:
        return cls(px, py, pz, np.sqrt(px * px + py * py + pz * pz + mass * mass))

    @classmethod
    def stack(cls, vectors: Sequence[Vec4], axis: int = -1) -> Vec4:
        """Stack vectors of shape (n,) into one of shape (n, k)."""
        return cls(*(np.stack([getattr(v, c) for v in vectors], axis=axis)
                     for c in ("px", "py", "pz", "e")))

    def __getitem__(self, index) -> Vec4:
        return Vec4(self.px[index], self.py[index], self.pz[index], self.e[index])

    # arithmetic -------------------------------------------------------------------
    def __add__(self, other: Vec4) -> Vec4:
        return Vec4(self.px + other.px, self.py + other.py, self.pz + other.pz, self.e + other.e)

    def __sub__(self, other: Vec4) -> Vec4:
        return Vec4(self.px - other.px, self.py - other.py, self.pz - other.pz, self.e - other.e)

    def scale(self, factor: np.ndarray) -> Vec4:
        return Vec4(self.px * factor, self.py * factor, self.pz * factor, self.e * factor)

    def where(self, mask: np.ndarray, other: Vec4) -> Vec4:
        """Elementwise choice: self where mask, else other."""
        return Vec4(*(np.where(mask, getattr(self, c), getattr(other, c))
                      for c in ("px", "py", "pz", "e")))

    # derived quantities -----------------------------------------------------------
    @property
    def pt(self) -> np.ndarray:
        return np.sqrt(self.px * self.px + self.py * self.py)

    @property
    def p(self) -> np.ndarray:
        return np.sqrt(self.px * self.px + self.py * self.py + self.pz * self.pz)

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.py, self.px)

    @property
    def eta(self) -> np.ndarray:
        # arcsinh(pz/pt) is exact for any pt > 0 and avoids log(0) for pt << |pz|
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.arcsinh(self.pz / self.pt)

    @property
    def rapidity(self) -> np.ndarray:
        return 0.5 * np.log((self.e + self.pz) / (self.e - self.pz))

    @property
    def mass2(self) -> np.ndarray:
        return self.e * self.e - self.px * self.px - self.py * self.py - self.pz * self.pz

    @property
    def mass(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.mass2, 0.0))

    def beta(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Velocity (βx, βy, βz) = p/E of the frame in which this vector is at rest."""
        return self.px / self.e, self.py / self.e, self.pz / self.e

    def boost(self, bx: np.ndarray, by: np.ndarray, bz: np.ndarray) -> Vec4:
        """Exact Lorentz boost by velocity β (a vector at rest gets momentum γ m β).

        Broadcasts: β of shape (n,) or (n, 1) boosts vectors of shape (n,) or (n, k).
        """
        b2 = bx * bx + by * by + bz * bz
        gamma = 1.0 / np.sqrt(1.0 - b2)
        bp = bx * self.px + by * self.py + bz * self.pz
        # (γ − 1)/β² written as γ²/(γ + 1): finite for β → 0
        g2 = gamma * gamma / (gamma + 1.0)
        coef = g2 * bp + gamma * self.e
        return Vec4(self.px + coef * bx, self.py + coef * by, self.pz + coef * bz,
                    gamma * (self.e + bp))

    def boost_to(self, frame: Vec4) -> Vec4:
        """This vector seen in the rest frame of ``frame`` (a pure boost by −β_frame)."""
        bx, by, bz = frame.beta()
        return self.boost(-bx, -by, -bz)

    def boost_from(self, frame: Vec4) -> Vec4:
        """This vector, given in the rest frame of ``frame``, seen in the frame where ``frame`` moves."""
        return self.boost(*frame.beta())


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Azimuth wrapped into [−π, π)."""
    return (phi + np.pi) % (2.0 * np.pi) - np.pi


def two_body_momentum(m: np.ndarray, m1: np.ndarray | float, m2: np.ndarray | float) -> np.ndarray:
    """Momentum of either daughter in the rest frame of a parent of mass m decaying to m1 + m2."""
    s = m * m
    lam = (s - (m1 + m2) ** 2) * (s - (m1 - m2) ** 2)
    return np.sqrt(np.maximum(lam, 0.0)) / (2.0 * m)


def orthonormal_frame(nx: np.ndarray, ny: np.ndarray, nz: np.ndarray):
    """Two unit vectors e1, e2 completing the unit vector n to a right-handed frame (e1, e2, n)."""
    # reference axis: z, unless n is close to it, then x
    use_x = np.abs(nz) > 0.9
    ax = np.where(use_x, 1.0, 0.0)
    az = np.where(use_x, 0.0, 1.0)
    # e1 = a × n / |a × n| with a = (ax, 0, az)
    e1x = -az * ny
    e1y = az * nx - ax * nz
    e1z = ax * ny
    norm = np.sqrt(e1x * e1x + e1y * e1y + e1z * e1z)
    e1x, e1y, e1z = e1x / norm, e1y / norm, e1z / norm
    # e2 = n × e1
    e2x = ny * e1z - nz * e1y
    e2y = nz * e1x - nx * e1z
    e2z = nx * e1y - ny * e1x
    return (e1x, e1y, e1z), (e2x, e2y, e2z)


def isotropic_directions(rng: np.random.Generator, n: int):
    """Unit vectors uniform on the sphere."""
    c = 2.0 * rng.random(n) - 1.0
    phi = 2.0 * np.pi * rng.random(n)
    s = np.sqrt(1.0 - c * c)
    return s * np.cos(phi), s * np.sin(phi), c


def two_body_decay(parent: Vec4, m1: np.ndarray | float, m2: np.ndarray | float,
                   cos_theta: np.ndarray, phi: np.ndarray,
                   axis: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[Vec4, Vec4]:
    """Decay ``parent`` into daughters of masses m1, m2.

    In the parent's rest frame (reached by a pure boost from the frame ``parent``
    is given in) daughter 1 is emitted at polar angle θ (``cos_theta``) and
    azimuth ``phi`` about the unit vector ``axis``; daughter 2 recoils. Both are
    returned in the frame ``parent`` is given in; daughter 2 = parent − daughter 1.
    """
    m = parent.mass
    q = two_body_momentum(m, m1, m2)
    nx, ny, nz = axis
    (e1x, e1y, e1z), (e2x, e2y, e2z) = orthonormal_frame(nx, ny, nz)
    st = np.sqrt(np.maximum(1.0 - cos_theta * cos_theta, 0.0))
    cp, sp = np.cos(phi), np.sin(phi)
    dx = st * (cp * e1x + sp * e2x) + cos_theta * nx
    dy = st * (cp * e1y + sp * e2y) + cos_theta * ny
    dz = st * (cp * e1z + sp * e2z) + cos_theta * nz
    d1 = Vec4.from_p3m(q * dx, q * dy, q * dz, np.broadcast_to(m1, q.shape))
    d1 = d1.boost_from(parent)
    return d1, parent - d1


def breit_wigner_mass(rng: np.random.Generator, n: int, mass: float, width: float,
                      low: float, high: float) -> np.ndarray:
    """Masses from a (non-relativistic) Breit–Wigner truncated to [low, high], by inverse CDF."""
    f_lo = np.arctan((low - mass) / (0.5 * width))
    f_hi = np.arctan((high - mass) / (0.5 * width))
    return mass + 0.5 * width * np.tan(f_lo + (f_hi - f_lo) * rng.random(n))


def cos_theta_helicity(rng: np.random.Generator, helicity: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """Sample cos θ* of the charged lepton (or down-type antifermion) in W → ℓν.

    docs/physics.md §2: (1/σ) dσ/dcosθ* = 3/8 (1 ∓ cosθ*)² f_L + 3/8 (1 ± cosθ*)² f_R
    + 3/4 sin²θ* f_0, upper sign for W⁺. For helicity λ = −1 (L), +1 (R), 0 the
    shape is drawn by its inverse CDF:
    (1 − c)²: c = 1 − 2(1 − u)^(1/3);  (1 + c)²: c = 2u^(1/3) − 1;
    sin²θ: c = 2 sin(arcsin(2u − 1)/3).
    """
    u = rng.random(helicity.shape)
    minus = 1.0 - 2.0 * np.cbrt(1.0 - u)  # ∝ (1 − c)²
    plus = 2.0 * np.cbrt(u) - 1.0  # ∝ (1 + c)²
    longitudinal = 2.0 * np.sin(np.arcsin(2.0 * u - 1.0) / 3.0)
    # W⁺: λ = −1 → (1 − c)², λ = +1 → (1 + c)²; W⁻ the other way round
    want_minus = (helicity * charge) < 0
    transverse = np.where(want_minus, minus, plus)
    return np.where(helicity == 0, longitudinal, transverse)
