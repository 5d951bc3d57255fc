"""Reference machinery for the observables tests, independent of ewpolar's kernels.

Event construction and float64 references use the `vector` library (its boosts
``boost_p4`` / ``boostCM_of_p4`` / ``boost_beta3`` with ``to_beta3``). Where a
float64 reference is itself too inaccurate (extreme boosts, where any float64
boost loses about γ² · 1e-16), an explicit 4x4 Lorentz matrix in 60-digit
decimal arithmetic is used instead, on the same float64 inputs.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import numpy as np
import vector

MW = 80.379
#: relative tolerance of kernels against references (module docstrings of the tests)
RTOL = 1e-9
#: cosines against vector's float64 chain: absolute (a cosine near 0 has no relative precision)
COS_ATOL_VECTOR = 1e-11
#: cosines against 60-digit arithmetic
COS_ATOL_EXACT = 1e-12

DEC = decimal.Context(prec=60)


# ---------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------


def vec(p):
    """(px, py, pz, e) numpy arrays as a vector MomentumNumpy4D."""
    return vector.array({"px": p[0], "py": p[1], "pz": p[2], "E": p[3]})


def arrays(v):
    """A vector four-vector as (px, py, pz, e) float64 numpy arrays."""
    return tuple(np.asarray(c, dtype=np.float64) for c in (v.px, v.py, v.pz, v.E))


def add(a, b):
    return tuple(x + y for x, y in zip(a, b, strict=True))


def unit_vectors(rng, n):
    v = rng.normal(size=(3, n))
    return v / np.linalg.norm(v, axis=0)


def massive(rng, n, mass, p_scale):
    """Random four-vectors (px, py, pz, e) with the given mass and |p| ~ exponential."""
    p = rng.exponential(p_scale, n) * unit_vectors(rng, n)
    return (*p, np.sqrt((p**2).sum(axis=0) + np.asarray(mass, dtype=float) ** 2))


def frame_with_gamma(rng, n, mass, gamma):
    """Frame four-vectors of the given mass and Lorentz factor in random directions."""
    p = mass * np.sqrt(gamma**2 - 1.0) * unit_vectors(rng, n)
    return (*p, np.full(n, mass * gamma))


def boost_out_of(p, frame):
    """p given in the rest frame of ``frame``, expressed where ``frame`` has its momentum."""
    return arrays(vec(p).boost_p4(vec(frame)))


def two_body_decay(rng, parent, m1, m2):
    """Isotropic two-body decay of parents (lab four-vectors), daughters in the lab."""
    m = vec(parent).mass
    p_star = np.sqrt((m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2)) / (2 * m)
    d = p_star * unit_vectors(rng, len(m))
    d1 = (*d, np.sqrt(p_star**2 + m1**2))
    d2 = (*(-d), np.sqrt(p_star**2 + m2**2))
    return boost_out_of(d1, parent), boost_out_of(d2, parent)


def w_decays(rng, n, p_scale=150.0, lepton_mass=0.0):
    """On-shell W -> ℓ ν in the lab: returns (lepton, neutrino)."""
    w = massive(rng, n, MW, p_scale)
    return two_body_decay(rng, w, lepton_mass, 0.0)


# ---------------------------------------------------------------------------
# float64 references with vector
# ---------------------------------------------------------------------------


def vector_cos_theta_star(lep, w, frame):
    """ℓ and W boosted into F, ℓ into the W rest frame, cosine to the W direction in F.

    Works for vector objects of any backend (numpy or awkward).
    """
    l_f = lep.boostCM_of_p4(frame)
    w_f = w.boostCM_of_p4(frame)
    l_w = l_f.boostCM_of_p4(w_f).to_3D()
    w3 = w_f.to_3D()
    return l_w.dot(w3) / (l_w.mag * w3.mag)


def vector_cos_delta_plus(lep, nu, higgs):
    """p̂_ℓ in the W rest frame against p_H × p_W (lab), for vector objects."""
    w = lep + nu
    l_w = lep.boostCM_of_p4(w).to_3D()
    cross = higgs.to_3D().cross(w.to_3D())
    return l_w.dot(cross) / (l_w.mag * cross.mag)


def physics_md_roots(lep, met_x, met_y, mw=MW):
    """docs/physics.md §1b literally (massless lepton): A, Δ (clipped at 0), both roots."""
    lx, ly, lz, le = lep
    pt2 = lx**2 + ly**2
    mu = mw**2 / 2 + lx * met_x + ly * met_y
    a = mu * lz / pt2
    delta = a**2 - (le**2 * (met_x**2 + met_y**2) - mu**2) / pt2
    root = np.sqrt(np.clip(delta, 0.0, None))
    return a, delta, a + root, a - root


def min_abs_root(lep, met_x, met_y, mw=MW):
    """The smaller-|p_z| root of :func:`physics_md_roots`."""
    _, _, r_plus, r_minus = physics_md_roots(lep, met_x, met_y, mw)
    return np.where(np.abs(r_plus) < np.abs(r_minus), r_plus, r_minus)


# ---------------------------------------------------------------------------
# 60-digit references
# ---------------------------------------------------------------------------


def d(x):
    return Decimal(float(x))


def columns(*vectors, i):
    """Entry i of each (px, py, pz, e) as Decimals."""
    return [tuple(d(c[i]) for c in v) for v in vectors]


def dec_boost(p, f):
    """Boost a Decimal four-vector (px, py, pz, e) into the rest frame of f: 4x4 matrix Λ(β)."""
    with decimal.localcontext(DEC):
        fx, fy, fz, fe = f
        m = (fe * fe - fx * fx - fy * fy - fz * fz).sqrt()
        gamma = fe / m
        beta = [fx / fe, fy / fe, fz / fe]
        b2 = sum(b * b for b in beta)
        lam = [[Decimal(0)] * 4 for _ in range(4)]  # index 0 = time
        lam[0][0] = gamma
        for i in range(3):
            lam[0][i + 1] = lam[i + 1][0] = -gamma * beta[i]
            for j in range(3):
                extra = (gamma - 1) * beta[i] * beta[j] / b2 if b2 != 0 else Decimal(0)
                lam[i + 1][j + 1] = (Decimal(1) if i == j else Decimal(0)) + extra
        vec4 = [p[3], p[0], p[1], p[2]]
        t, x, y, z = (sum(lam[r][c] * vec4[c] for c in range(4)) for r in range(4))
        return x, y, z, t


def dec_cos(a, b):
    with decimal.localcontext(DEC):
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        na = sum(x * x for x in a).sqrt()
        nb = sum(x * x for x in b).sqrt()
        return dot / (na * nb)


def dec_cos_theta_star(lep, w, f):
    """Literal definition: ℓ and W into F, ℓ into the W rest frame, angle to the W direction in F."""
    lep_f = dec_boost(lep, f)
    w_f = dec_boost(w, f)
    lep_w = dec_boost(lep_f, w_f)
    return dec_cos(lep_w[:3], w_f[:3])


def dec_cos_delta_plus(lep, nu, h):
    with decimal.localcontext(DEC):
        w = tuple(a + b for a, b in zip(lep, nu, strict=True))
        lep_w = dec_boost(lep, w)
        cross = (
            h[1] * w[2] - h[2] * w[1],
            h[2] * w[0] - h[0] * w[2],
            h[0] * w[1] - h[1] * w[0],
        )
        return dec_cos(lep_w[:3], cross)


# ---------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------


def boost_close(got, ref, rtol=RTOL):
    """Four-vector comparison, every component relative to the reference energy."""
    scale = np.abs(np.asarray(ref[3]))
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_array_less(np.abs(np.asarray(g) - np.asarray(r)), rtol * scale + 1e-300)


def cos_close(got, ref, atol=COS_ATOL_EXACT):
    """Cosines: rtol 1e-9 plus an absolute tolerance."""
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=atol)


def cos_close_vector(got, ref):
    """Cosines against vector's float64 chain: |difference| ≤ 1e-11."""
    np.testing.assert_allclose(got, ref, rtol=0.0, atol=COS_ATOL_VECTOR)
