"""Polarization, CP and VBS observables as numba kernels on flat float64 arrays.

Every four-vector is passed as four arrays ``px, py, pz, e`` (GeV); missing
transverse momentum as ``met_px, met_py`` (GeV). Inputs may be any array-like
of one common (broadcastable) shape; they are converted to contiguous float64
by thin Python wrappers, so the compiled kernels only ever see one signature
(compiled once, cached on disk, never re-specialised for float32 input).
Outputs are new float64 arrays of the broadcast shape.

Physics definitions follow the project's physics reference: cos θ* (§2),
neutrino p_z from the W-mass constraint and cos δ⁺ (§1b, arXiv:1409.5449),
VBS variables (§1a).

Conventions for degenerate input, shared by all functions (each docstring
states the cases that apply to it):

* No rest frame: a frame four-vector with ``E <= 0`` or ``m² <= 0``
  (light-like, space-like, zero or negative energy) has no rest frame.
  Results that need one are ``nan``, deliberately; nothing is clamped.
* Frame at rest (zero three-momentum, ``E > 0``): the boost is the identity,
  returned exactly.
* Undefined direction (a zero-length three-vector or cross product that an
  angle is measured against): the cosine is ``0.0``.
* ``nan`` in the input gives ``nan`` in the output.
* Cosines are clipped to ``[-1, 1]``; only rounding can push them outside.

Accuracy: the Minkowski products that cancel at large boosts (``m² = E² − p²``
of a fast frame, ``E E_F − p·p_F`` of a decay product moving with the frame)
are evaluated with error-free FMA products and compensated summation (the
Dot2 algorithm of Ogita, Rump and Oishi). Measured against 60-digit
arithmetic on the same float64 inputs: boosted four-vectors are good to about
γ · 3e-16 of their energy (3e-12 at γ = 1e4, 3e-10 at γ = 1e6), where a plain
float64 boost loses about γ² · 5e-16 (5e-8 at γ = 1e4); cos θ* and cos δ⁺ are
evaluated from invariants and stay within ~1e-15 up to γ = 1e5.

Column conversions: :func:`ptetaphim_to_pxpypze` turns flat ``pt, eta, phi,
mass`` columns (float32 or float64) into float64 ``px, py, pz, E``, and
:func:`nth_pxpypze_flat` does the same for the n-th object of each event of a
collection given by its offsets and flat columns. Helpers that take awkward
records (coffea candidates, `vector` Momentum4D records) live in
:mod:`ewpolar.observables.arrays`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = [
    "MW_GEV",
    "NEUTRINO_PZ_RULES",
    "FourArrays",
    "boost_to_rest_frame",
    "cos_delta_plus",
    "cos_theta_star",
    "delta_phi",
    "delta_phi_jj",
    "delta_phi_ll",
    "delta_y",
    "delta_y_jj",
    "mjj",
    "mll",
    "mt_tot",
    "mt_w",
    "mt_ww",
    "neutrino_four_vector",
    "neutrino_pz",
    "nth_pxpypze_flat",
    "pair_mass",
    "ptetaphim_to_pxpypze",
    "r_pt",
    "rapidity",
    "zeppenfeld",
]

#: W-boson mass used by the neutrino p_z constraint, GeV (docs/physics.md §1b).
MW_GEV = 80.379

#: Valid values of the ``rule`` argument of :func:`neutrino_pz`.
NEUTRINO_PZ_RULES = ("min_abs", "wh_beta")

#: One four-vector per entry as four float64 arrays ``(px, py, pz, e)``, GeV.
FourArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_NAN = math.nan
_INF = math.inf

# ---------------------------------------------------------------------------
# numba plumbing
# ---------------------------------------------------------------------------

# Inputs are typed read-only so that read-only buffers (e.g. from uproot) are
# accepted without a copy; writeable arrays convert to this type implicitly.
_IN = types.Array(types.float64, 1, "C", readonly=True)
_IN32 = types.Array(types.float32, 1, "C", readonly=True)
_OUT = types.float64[::1]


def _sig(n_in: int, n_out: int, *extra: Any) -> Any:
    """Kernel signature: n_in read-only inputs, scalar extras, then n_out outputs."""
    return types.void(*([_IN] * n_in), *extra, *([_OUT] * n_out))


# IEEE semantics (x/0 -> inf or nan) instead of Python's ZeroDivisionError;
# nogil lets threaded executors run kernels concurrently.
def _kernel(*sigs: Any) -> Callable[[Callable[..., Any]], Any]:
    return numba.njit(list(sigs), cache=True, nogil=True, error_model="numpy")


# Per-event helpers are inlined at numba IR level so that LLVM sees one loop
# body and can vectorise it.
_scalar = numba.njit(nogil=True, error_model="numpy", inline="always")


@intrinsic
def _fma(typingctx, a, b, c):
    """a*b + c with a single rounding (llvm.fma; hardware FMA where available)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        dbl = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [dbl], ir.FunctionType(dbl, [dbl] * 3))
        return builder.call(fn, args)

    return sig, codegen


@_scalar
def _acc(p, s, a, b):
    """Add the product a*b to the compensated sum (p, s): TwoProduct + TwoSum."""
    h = a * b
    r = _fma(a, b, -h)
    t = p + h
    z = t - p
    q = (p - (t - z)) + (h - z)
    return t, s + (q + r)


@_scalar
def _acc3(p, s, a, b, c):
    """Add the product a*b*c to the compensated sum (p, s); exact up to O(ε²)."""
    h = b * c
    e = _fma(b, c, -h)  # b*c = h + e exactly
    t = a * h
    r = _fma(a, h, -t)  # a*h = t + r exactly
    u = p + t
    z = u - p
    q = (p - (u - z)) + (t - z)
    return u, s + (q + (r + a * e))


@_scalar
def _triple(ax, ay, az, bx, by, bz, cx, cy, cz):
    """Triple product a·(b × c), compensated (accurate for nearly coplanar vectors)."""
    p, s = _acc3(0.0, 0.0, ax, by, cz)
    p, s = _acc3(p, s, -ax, bz, cy)
    p, s = _acc3(p, s, ay, bz, cx)
    p, s = _acc3(p, s, -ay, bx, cz)
    p, s = _acc3(p, s, az, bx, cy)
    p, s = _acc3(p, s, -az, by, cx)
    return p + s


@_scalar
def _mdot(ax, ay, az, ae, bx, by, bz, be):
    """Minkowski product E_a E_b − p_a·p_b, compensated (Dot2, Ogita–Rump–Oishi 2005)."""
    p = ae * be
    s = _fma(ae, be, -p)
    p, s = _acc(p, s, -ax, bx)
    p, s = _acc(p, s, -ay, by)
    p, s = _acc(p, s, -az, bz)
    return p + s


@_scalar
def _clip_cos(c):
    # comparisons (not min/max) so that nan passes through unchanged
    c = 1.0 if c > 1.0 else c
    return -1.0 if c < -1.0 else c


# ---------------------------------------------------------------------------
# scalar physics (one event)
#
# Written without early returns: every quantity is computed, then the result
# is selected. The selects compile to vector blends, so the event loops
# vectorise (an early return would keep them scalar).
# ---------------------------------------------------------------------------


@_scalar
def _rest_frame(px, py, pz, e, fx, fy, fz, fe):
    """(px, py, pz, e) in the rest frame of F, reached from the input frame by a pure boost.

    E' = p·F / m_F,  p' = p − p_F (E + E') / (E_F + m_F)  (exact rewrite of the
    standard boost without 1/β²).
    """
    m2 = _mdot(fx, fy, fz, fe, fx, fy, fz, fe)
    m = math.sqrt(m2)
    e_r = _mdot(px, py, pz, e, fx, fy, fz, fe) / m
    k = (e + e_r) / (fe + m)
    at_rest = (fx == 0.0) & (fy == 0.0) & (fz == 0.0) & (fe > 0.0)
    ok = (fe > 0.0) & (m2 > 0.0)
    ox = px if at_rest else (px - k * fx if ok else _NAN)
    oy = py if at_rest else (py - k * fy if ok else _NAN)
    oz = pz if at_rest else (pz - k * fz if ok else _NAN)
    oe = e if at_rest else (e_r if ok else _NAN)
    return ox, oy, oz, oe


@_scalar
def _cos_theta_star(lx, ly, lz, le, wx, wy, wz, we, fx, fy, fz, fe):
    """cos θ* from Lorentz invariants.

    In the W rest frame the frame F moves opposite to the W flight direction in
    F, so with p_ℓ* and p_F* the lepton and F momenta there,
        cos θ* = −p̂_ℓ*·p̂_F* = [(ℓ·F) W² − (ℓ·W)(W·F)] / (√((W·F)² − W² F²) √((ℓ·W)² − ℓ² W²)).
    The angle between two vectors of the W rest frame does not depend on which
    boost sequence reached it, so this equals boosting ℓ and W into F, then ℓ
    into the W rest frame, and taking the angle to the W direction in F.
    """
    ff = _mdot(fx, fy, fz, fe, fx, fy, fz, fe)
    ww = _mdot(wx, wy, wz, we, wx, wy, wz, we)
    lf = _mdot(lx, ly, lz, le, fx, fy, fz, fe)
    lw = _mdot(lx, ly, lz, le, wx, wy, wz, we)
    wf = _mdot(wx, wy, wz, we, fx, fy, fz, fe)
    ll = _mdot(lx, ly, lz, le, lx, ly, lz, le)
    d_w = wf * wf - ww * ff  # m_F² |p_W in F|²
    d_l = lw * lw - ll * ww  # m_W² |p_ℓ in W|²
    c = _clip_cos((lf * ww - lw * wf) / (math.sqrt(d_w) * math.sqrt(d_l)))
    c = 0.0 if ((d_w <= 0.0) | (d_l <= 0.0)) else c
    ok = (fe > 0.0) & (ff > 0.0) & (we > 0.0) & (ww > 0.0)
    return c if ok else _NAN


@_scalar
def _nu_pz_roots(lx, ly, lz, le, mx, my, mw):
    """Both neutrino p_z solutions of m(ℓν) = m_W, as (smaller |p_z|, larger |p_z|).

    Quadratic a p_z² − 2 μ p_zℓ p_z + (E_ℓ² E_T² − μ²) = 0 with a = E_ℓ² − p_zℓ²,
    μ = (m_W² − m_ℓ²)/2 + p_Tℓ·p_Tmiss; for m_ℓ = 0 this is docs/physics.md §1b
    (a = p_Tℓ²). Roots A ± √Δ, A = μ p_zℓ / a, Δ = E_ℓ² (μ² − a E_T²) / a².
    Evaluated in the cancellation-free form q = μ p_zℓ + sign(μ p_zℓ) E_ℓ √(μ² − a E_T²),
    roots c/q and q/a (c = E_ℓ² E_T² − μ²). Without a real solution both are A.
    """
    a = (le - lz) * (le + lz)  # Sterbenz: le - lz is exact where it cancels
    ll = _mdot(lx, ly, lz, le, lx, ly, lz, le)
    mu = 0.5 * (mw * mw - ll) + (lx * mx + ly * my)
    et = math.sqrt(mx * mx + my * my)
    num = mu * lz
    sa = math.sqrt(a) * et
    d = (mu - sa) * (mu + sa)
    has_root = d >= 0.0
    q = num + math.copysign(le * math.sqrt(d if has_root else 0.0), num)
    let = le * et
    r_small = (let - mu) * (let + mu) / q
    r_big = q / a
    r_small = 0.0 if q == 0.0 else r_small  # q = 0: both roots are 0
    # no real solution (Δ < 0, i.e. m_T(ℓ, ν) > m_W): Δ := 0, as in docs/physics.md §1b
    r_a = num / a
    valid = (a > 0.0) & (le > 0.0)
    r_small = (r_small if has_root else r_a) if valid else _NAN
    r_big = (r_big if has_root else r_a) if valid else _NAN
    return r_small, r_big


@_scalar
def _beta_z(px, py, pz, e):
    """β_z = p_z / √(p_z² + m²) = p_z / √(E² − p_T²); sign(p_z) if E² ≤ p_T²."""
    pt = math.sqrt(px * px + py * py)
    d = (e - pt) * (e + pt)
    sign = pz / abs(pz) if pz != 0.0 else 0.0
    return pz / math.sqrt(d) if d > 0.0 else (sign if d <= 0.0 else _NAN)


@_scalar
def _nu_pz_wh_beta(lx, ly, lz, le, mx, my, hx, hy, hz, he, mw):
    r_small, r_big = _nu_pz_roots(lx, ly, lz, le, mx, my, mw)
    b_h = _beta_z(hx, hy, hz, he)
    et2 = mx * mx + my * my
    wx = lx + mx
    wy = ly + my
    b_small = _beta_z(wx, wy, lz + r_small, le + math.sqrt(et2 + r_small * r_small))
    b_big = _beta_z(wx, wy, lz + r_big, le + math.sqrt(et2 + r_big * r_big))
    r = r_big if abs(b_big - b_h) < abs(b_small - b_h) else r_small
    return r if b_h == b_h else _NAN


@_scalar
def _cos_delta_plus(lx, ly, lz, le, nx, ny, nz, ne, hx, hy, hz, he):
    """cos δ⁺ without an explicit boost.

    n = p_H × p_W is perpendicular to p_W, the direction of the boost from the
    laboratory into the W rest frame, so the boost leaves the lepton's component
    along n unchanged: p_ℓ^(W)·n = p_ℓ·n = p_ℓ·(p_H × p_ν). The length |p_ℓ^(W)|
    is the invariant √((ℓ·W)² − ℓ²W²) / m_W. The triple product is compensated,
    since ℓ and ν become collinear as the W gets fast.
    """
    wx = lx + nx
    wy = ly + ny
    wz = lz + nz
    we = le + ne
    # invariants from the inputs, not from the rounded sum W
    ll = _mdot(lx, ly, lz, le, lx, ly, lz, le)
    ln = _mdot(lx, ly, lz, le, nx, ny, nz, ne)
    nn = _mdot(nx, ny, nz, ne, nx, ny, nz, ne)
    m2 = ll + 2.0 * ln + nn
    lw = ll + ln
    d_l = lw * lw - ll * m2  # m_W² |p_ℓ^(W)|²
    cx = hy * wz - hz * wy
    cy = hz * wx - hx * wz
    cz = hx * wy - hy * wx
    c2 = cx * cx + cy * cy + cz * cz
    num = _triple(lx, ly, lz, hx, hy, hz, nx, ny, nz)
    c = _clip_cos(num * math.sqrt(m2) / (math.sqrt(c2) * math.sqrt(d_l)))
    c = 0.0 if ((c2 == 0.0) | (d_l <= 0.0)) else c
    return c if ((we > 0.0) & (m2 > 0.0)) else _NAN


@_scalar
def _rapidity(pz, e):
    apz = abs(pz)
    den = e - apz  # exact where it cancels (Sterbenz)
    if den > 0.0:
        return math.copysign(0.5 * math.log1p(2.0 * apz / den), pz)
    if den <= 0.0:
        if pz == 0.0:
            return 0.0
        return math.copysign(_INF, pz)
    return _NAN


@_scalar
def _one_minus_cos_times(ax, ay, bx, by):
    """|a||b| − a·b for transverse 2-vectors, without cancellation for aligned vectors."""
    na = math.sqrt(ax * ax + ay * ay)
    nb = math.sqrt(bx * bx + by * by)
    dot = ax * bx + ay * by
    cross = ax * by - ay * bx
    return cross * cross / (na * nb + dot) if dot > 0.0 else na * nb - dot


@_scalar
def _et(px, py, pz, e):
    """Transverse energy √(p_T² + m²) = √(E² − p_z²); 0 if E² ≤ p_z²."""
    d = (e - pz) * (e + pz)
    return math.sqrt(0.0 if d < 0.0 else d)


# ---------------------------------------------------------------------------
# array kernels
#
# Outputs are allocated by the Python wrappers with numpy and filled in place:
# on Linux numpy asks for transparent huge pages on large buffers, so the first
# touch of fresh output memory is about three times cheaper than for buffers
# allocated inside numba (measured on 8 MB arrays).
# ---------------------------------------------------------------------------


@_kernel(_sig(8, 4))
def _boost_kernel(px, py, pz, e, fx, fy, fz, fe, ox, oy, oz, oe):
    for i in range(px.shape[0]):
        ox[i], oy[i], oz[i], oe[i] = _rest_frame(
            px[i], py[i], pz[i], e[i], fx[i], fy[i], fz[i], fe[i]
        )


@_kernel(_sig(12, 1))
def _cos_theta_star_kernel(lx, ly, lz, le, wx, wy, wz, we, fx, fy, fz, fe, out):
    for i in range(lx.shape[0]):
        out[i] = _cos_theta_star(
            lx[i], ly[i], lz[i], le[i], wx[i], wy[i], wz[i], we[i], fx[i], fy[i], fz[i], fe[i]
        )


@_kernel(_sig(6, 1, types.float64))
def _nu_pz_min_abs_kernel(lx, ly, lz, le, mx, my, mw, out):
    for i in range(lx.shape[0]):
        out[i] = _nu_pz_roots(lx[i], ly[i], lz[i], le[i], mx[i], my[i], mw)[0]


@_kernel(_sig(10, 1, types.float64))
def _nu_pz_wh_beta_kernel(lx, ly, lz, le, mx, my, hx, hy, hz, he, mw, out):
    for i in range(lx.shape[0]):
        out[i] = _nu_pz_wh_beta(
            lx[i], ly[i], lz[i], le[i], mx[i], my[i], hx[i], hy[i], hz[i], he[i], mw
        )


@_kernel(_sig(3, 4))
def _neutrino_kernel(mx, my, pz, ox, oy, oz, oe):
    for i in range(mx.shape[0]):
        ox[i] = mx[i]
        oy[i] = my[i]
        oz[i] = pz[i]
        oe[i] = math.sqrt(mx[i] * mx[i] + my[i] * my[i] + pz[i] * pz[i])


@_kernel(_sig(12, 1))
def _cos_delta_plus_kernel(lx, ly, lz, le, nx, ny, nz, ne, hx, hy, hz, he, out):
    for i in range(lx.shape[0]):
        out[i] = _cos_delta_plus(
            lx[i], ly[i], lz[i], le[i], nx[i], ny[i], nz[i], ne[i], hx[i], hy[i], hz[i], he[i]
        )


@_kernel(_sig(8, 1))
def _pair_mass_kernel(ax, ay, az, ae, bx, by, bz, be, out):
    for i in range(ax.shape[0]):
        m2 = (
            _mdot(ax[i], ay[i], az[i], ae[i], ax[i], ay[i], az[i], ae[i])
            + _mdot(bx[i], by[i], bz[i], be[i], bx[i], by[i], bz[i], be[i])
            + 2.0 * _mdot(ax[i], ay[i], az[i], ae[i], bx[i], by[i], bz[i], be[i])
        )
        out[i] = math.sqrt(0.0 if m2 < 0.0 else m2)


@_kernel(_sig(2, 1))
def _rapidity_kernel(pz, e, out):
    for i in range(pz.shape[0]):
        out[i] = _rapidity(pz[i], e[i])


@_kernel(_sig(4, 1))
def _delta_y_kernel(az, ae, bz, be, out):
    for i in range(az.shape[0]):
        out[i] = _rapidity(az[i], ae[i]) - _rapidity(bz[i], be[i])


@_kernel(_sig(4, 1))
def _delta_phi_kernel(ax, ay, bx, by, out):
    for i in range(ax.shape[0]):
        cross = ax[i] * by[i] - ay[i] * bx[i]
        dot = ax[i] * bx[i] + ay[i] * by[i]
        out[i] = math.atan2(abs(cross), dot)


@_kernel(_sig(4, 1))
def _mt_w_kernel(lx, ly, mx, my, out):
    for i in range(lx.shape[0]):
        out[i] = math.sqrt(2.0 * _one_minus_cos_times(lx[i], ly[i], mx[i], my[i]))


@_kernel(_sig(10, 1))
def _mt_ww_kernel(ax, ay, az, ae, bx, by, bz, be, mx, my, out):
    for i in range(ax.shape[0]):
        m2 = (
            _mdot(ax[i], ay[i], az[i], ae[i], ax[i], ay[i], az[i], ae[i])
            + _mdot(bx[i], by[i], bz[i], be[i], bx[i], by[i], bz[i], be[i])
            + 2.0 * _mdot(ax[i], ay[i], az[i], ae[i], bx[i], by[i], bz[i], be[i])
        )
        m2 = 0.0 if m2 < 0.0 else m2
        px = ax[i] + bx[i]
        py = ay[i] + by[i]
        pt = math.sqrt(px * px + py * py)
        et_ll = math.sqrt(pt * pt + m2)
        met = math.sqrt(mx[i] * mx[i] + my[i] * my[i])
        # E_T^ℓℓ E_T^miss − p_T^ℓℓ·p_T^miss split into two non-negative parts
        x = (m2 / (et_ll + pt) if m2 > 0.0 else 0.0) * met
        x += _one_minus_cos_times(px, py, mx[i], my[i])
        out[i] = math.sqrt(m2 + 2.0 * x)


@_kernel(_sig(6, 1))
def _zeppenfeld_kernel(lz, le, az, ae, bz, be, out):
    for i in range(lz.shape[0]):
        y_l = _rapidity(lz[i], le[i])
        y_a = _rapidity(az[i], ae[i])
        y_b = _rapidity(bz[i], be[i])
        dy = abs(y_a - y_b)
        out[i] = _INF if dy == 0.0 else abs(y_l - 0.5 * (y_a + y_b)) / dy


@_kernel(_sig(8, 1))
def _r_pt_kernel(l1x, l1y, l2x, l2y, j1x, j1y, j2x, j2y, out):
    for i in range(l1x.shape[0]):
        num = math.sqrt(l1x[i] * l1x[i] + l1y[i] * l1y[i]) * math.sqrt(
            l2x[i] * l2x[i] + l2y[i] * l2y[i]
        )
        den = math.sqrt(j1x[i] * j1x[i] + j1y[i] * j1y[i]) * math.sqrt(
            j2x[i] * j2x[i] + j2y[i] * j2y[i]
        )
        out[i] = _INF if den == 0.0 else num / den


@_kernel(_sig(14, 1))
def _mt_tot_kernel(lx, ly, lz, le, ax, ay, az, ae, bx, by, bz, be, mx, my, out):
    for i in range(lx.shape[0]):
        s = (
            _et(lx[i], ly[i], lz[i], le[i])
            + _et(ax[i], ay[i], az[i], ae[i])
            + _et(bx[i], by[i], bz[i], be[i])
            + math.sqrt(mx[i] * mx[i] + my[i] * my[i])
        )
        px = lx[i] + ax[i] + bx[i] + mx[i]
        py = ly[i] + ay[i] + by[i] + my[i]
        pt = math.sqrt(px * px + py * py)
        m2 = (s - pt) * (s + pt)
        out[i] = math.sqrt(0.0 if m2 < 0.0 else m2)


@_scalar
def _ptetaphim(pt, eta, phi, mass):
    p_t = np.float64(pt)
    h = np.float64(eta)
    f = np.float64(phi)
    m = np.float64(mass)
    p = p_t * math.cosh(h)
    return p_t * math.cos(f), p_t * math.sin(f), p_t * math.sinh(h), math.sqrt(p * p + m * m)


@_kernel(
    types.void(*([_IN] * 4), *([_OUT] * 4)),
    types.void(*([_IN32] * 4), *([_OUT] * 4)),
)
def _ptetaphim_kernel(pt, eta, phi, mass, ox, oy, oz, oe):
    for i in range(pt.shape[0]):
        ox[i], oy[i], oz[i], oe[i] = _ptetaphim(pt[i], eta[i], phi[i], mass[i])


_OFFSETS = types.Array(types.int64, 1, "C", readonly=True)


@_kernel(
    types.void(_OFFSETS, types.int64, *([_IN] * 4), *([_OUT] * 4)),
    types.void(_OFFSETS, types.int64, *([_IN32] * 4), *([_OUT] * 4)),
)
def _nth_ptetaphim_kernel(offsets, n, pt, eta, phi, mass, ox, oy, oz, oe):
    for i in range(ox.shape[0]):
        j = offsets[i] + n
        if j < offsets[i + 1]:
            ox[i], oy[i], oz[i], oe[i] = _ptetaphim(pt[j], eta[j], phi[j], mass[j])
        else:
            ox[i] = oy[i] = oz[i] = oe[i] = _NAN


# ---------------------------------------------------------------------------
# public array API
# ---------------------------------------------------------------------------


def _prepare(*arrays: Any) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Broadcast inputs to one shape; return it and flat contiguous float64 arrays."""
    arrs = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape = np.broadcast_shapes(*(a.shape for a in arrs))
    flat = []
    for a in arrs:
        if a.shape != shape:
            a = np.broadcast_to(a, shape)
        flat.append(np.ascontiguousarray(a).reshape(-1))
    return shape, flat


def _call(kernel: Any, n_out: int, inputs: tuple[Any, ...], *extra: Any) -> list[np.ndarray]:
    """Run a kernel on broadcast float64 inputs; outputs have the broadcast shape."""
    shape, flat = _prepare(*inputs)
    n = flat[0].shape[0] if flat else 0
    outs = [np.empty(n) for _ in range(n_out)]
    kernel(*flat, *extra, *outs)
    return [o.reshape(shape) for o in outs]


def boost_to_rest_frame(
    px: Any, py: Any, pz: Any, e: Any, f_px: Any, f_py: Any, f_pz: Any, f_e: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Four-vectors in the rest frame of the frame vectors F (pure boost, no rotation).

    ``E' = p·F / m_F`` and ``p' = p − p_F (E + E') / (E_F + m_F)``, the standard
    Lorentz boost by ``−β_F`` written without ``1/β²``; the invariants are
    evaluated in compensated arithmetic (module docstring).

    Args:
        px, py, pz, e: Four-vectors to boost, GeV.
        f_px, f_py, f_pz, f_e: Frame four-vectors, GeV.

    Returns:
        ``(px, py, pz, e)`` in the F rest frame, GeV. Frame at rest (zero
        three-momentum, ``f_e > 0``): the input, unchanged. No rest frame
        (``f_e <= 0`` or ``m_F² <= 0``): ``nan`` in all four components.

    Example:
        >>> import numpy as np
        >>> out = boost_to_rest_frame(0.0, 0.0, 3.0, 5.0, 0.0, 0.0, 3.0, 5.0)
        >>> [float(x) for x in out]
        [0.0, 0.0, 0.0, 4.0]
    """
    out = _call(_boost_kernel, 4, (px, py, pz, e, f_px, f_py, f_pz, f_e))
    return out[0], out[1], out[2], out[3]


def cos_theta_star(
    l_px: Any,
    l_py: Any,
    l_pz: Any,
    l_e: Any,
    w_px: Any,
    w_py: Any,
    w_pz: Any,
    w_e: Any,
    f_px: Any,
    f_py: Any,
    f_pz: Any,
    f_e: Any,
) -> np.ndarray:
    """W helicity angle cos θ* (docs/physics.md §2).

    θ* is the angle between the charged lepton in the W rest frame and the W
    flight direction in the frame F (WW system for ssWW, top quark for top
    decays; pass F = (0, 0, 0, 1) for the laboratory). The W rest frame is the
    one reached from F by a pure boost. Computed from Lorentz invariants
    (``cos θ* = [(ℓ·F) W² − (ℓ·W)(W·F)] / (√((W·F)² − W²F²) √((ℓ·W)² − ℓ²W²))``),
    which equals boosting ℓ and W into F, then ℓ into the W rest frame.

    Args:
        l_px, l_py, l_pz, l_e: Charged lepton, any common frame, GeV.
        w_px, w_py, w_pz, w_e: W boson, same frame, GeV.
        f_px, f_py, f_pz, f_e: Reference frame F, same frame, GeV.

    Returns:
        cos θ* in [−1, 1]. ``nan`` if F or W has no rest frame (``E <= 0`` or
        ``m² <= 0``); ``0.0`` if the W is at rest in F or the lepton is at rest
        in the W frame (direction undefined).
    """
    inputs = (l_px, l_py, l_pz, l_e, w_px, w_py, w_pz, w_e, f_px, f_py, f_pz, f_e)
    return _call(_cos_theta_star_kernel, 1, inputs)[0]


def neutrino_pz(
    l_px: Any,
    l_py: Any,
    l_pz: Any,
    l_e: Any,
    met_px: Any,
    met_py: Any,
    mw: float = MW_GEV,
    rule: str = "min_abs",
    h_px: Any = None,
    h_py: Any = None,
    h_pz: Any = None,
    h_e: Any = None,
) -> np.ndarray:
    """Neutrino p_z from the W-mass constraint m(ℓν) = m_W (docs/physics.md §1b).

    With μ = (m_W² − m_ℓ²)/2 + p_Tℓ·p_Tmiss and a = E_ℓ² − p_zℓ² (= p_Tℓ² for a
    massless lepton, which gives the formula of docs/physics.md §1b exactly), the
    solutions are ``A ± √Δ`` with ``A = μ p_zℓ / a`` and
    ``Δ = A² − (E_ℓ² E_Tmiss² − μ²) / a``. The neutrino is massless.

    Rules (``NEUTRINO_PZ_RULES``):

    * ``"min_abs"``: the root with the smaller |p_z| (``A − sign(A)√Δ``).
    * ``"wh_beta"``: the root minimising |β_z(W) − β_z(H)| with
      ``β_z = p_z / √(p_z² + m²)``, W = lepton + neutrino with that root and H the
      Higgs candidate ``h_*``. On a tie, the smaller-|p_z| root.

    Args:
        l_px, l_py, l_pz, l_e: Charged lepton, GeV.
        met_px, met_py: Missing transverse momentum, GeV.
        mw: W mass of the constraint, GeV.
        rule: Root choice, one of ``NEUTRINO_PZ_RULES``.
        h_px, h_py, h_pz, h_e: Higgs candidate (e.g. sum of the two b-jets), GeV;
            required by ``"wh_beta"``, ignored by ``"min_abs"``.

    Returns:
        Neutrino p_z, GeV. No solution (Δ < 0, i.e. m_T(ℓ, ν) > m_W): Δ is set
        to 0 and ``A = μ p_zℓ / a`` is returned. ``nan`` if ``a <= 0`` or ``l_e <= 0``
        (lepton along the beam with zero mass: no quadratic), or, for
        ``"wh_beta"``, if the Higgs candidate is ``nan``. A Higgs candidate with
        ``E² <= p_T²`` has ``β_z = sign(p_z)``.

    Raises:
        ValueError: Unknown ``rule``, or ``"wh_beta"`` without all of ``h_*``.
    """
    mw = float(mw)
    if rule == "min_abs":
        inputs = (l_px, l_py, l_pz, l_e, met_px, met_py)
        return _call(_nu_pz_min_abs_kernel, 1, inputs, mw)[0]
    if rule == "wh_beta":
        higgs = {"h_px": h_px, "h_py": h_py, "h_pz": h_pz, "h_e": h_e}
        missing = [name for name, value in higgs.items() if value is None]
        if missing:
            raise ValueError(
                f"neutrino_pz rule 'wh_beta' needs the Higgs candidate; missing: "
                f"{', '.join(missing)}"
            )
        inputs = (l_px, l_py, l_pz, l_e, met_px, met_py, h_px, h_py, h_pz, h_e)
        return _call(_nu_pz_wh_beta_kernel, 1, inputs, mw)[0]
    raise ValueError(
        f"unknown neutrino_pz rule {rule!r}; valid rules: {', '.join(NEUTRINO_PZ_RULES)}"
    )


def neutrino_four_vector(
    met_px: Any, met_py: Any, pz: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Massless neutrino four-vector from the missing p_T and a p_z.

    Args:
        met_px, met_py: Missing transverse momentum, GeV.
        pz: Neutrino p_z, GeV (e.g. from :func:`neutrino_pz`).

    Returns:
        ``(px, py, pz, e)`` as new float64 arrays, ``e = √(px² + py² + pz²)``, GeV.
    """
    out = _call(_neutrino_kernel, 4, (met_px, met_py, pz))
    return out[0], out[1], out[2], out[3]


def cos_delta_plus(
    l_px: Any,
    l_py: Any,
    l_pz: Any,
    l_e: Any,
    nu_px: Any,
    nu_py: Any,
    nu_pz: Any,
    nu_e: Any,
    h_px: Any,
    h_py: Any,
    h_pz: Any,
    h_e: Any,
) -> np.ndarray:
    """CP-odd WH observable cos δ⁺ (docs/physics.md §1b, arXiv:1409.5449).

    ``cos δ⁺ = p̂_ℓ^(W) · (p_H × p_W) / |p_H × p_W|`` with p_ℓ^(W) the lepton
    boosted from the laboratory into the W rest frame (W = ℓ + ν) and p_H, p_W
    laboratory three-momenta. The binned observable is Q_ℓ · cos δ⁺.
    Evaluated without an explicit boost: n = p_H × p_W is perpendicular to the
    boost direction p_W, so p_ℓ^(W)·n = p_ℓ·n, and |p_ℓ^(W)| =
    √((ℓ·W)² − ℓ²W²) / m_W (invariants in compensated arithmetic).

    Args:
        l_px, l_py, l_pz, l_e: Charged lepton, laboratory frame, GeV.
        nu_px, nu_py, nu_pz, nu_e: Neutrino, laboratory frame, GeV.
        h_px, h_py, h_pz, h_e: Higgs candidate (b1 + b2), laboratory frame, GeV;
            only its three-momentum enters.

    Returns:
        cos δ⁺ in [−1, 1]. ``0.0`` if p_H × p_W = 0 (collinear or zero momenta)
        or the lepton is at rest in the W frame; ``nan`` if W = ℓ + ν has no
        rest frame (``E <= 0`` or ``m² <= 0``, e.g. collinear massless ℓ, ν).
    """
    inputs = (l_px, l_py, l_pz, l_e, nu_px, nu_py, nu_pz, nu_e, h_px, h_py, h_pz, h_e)
    return _call(_cos_delta_plus_kernel, 1, inputs)[0]


def pair_mass(
    a_px: Any, a_py: Any, a_pz: Any, a_e: Any, b_px: Any, b_py: Any, b_pz: Any, b_e: Any
) -> np.ndarray:
    """Invariant mass of two four-vectors, m = √((a + b)²), GeV.

    Evaluated as √(a² + b² + 2 a·b) with compensated Minkowski products.

    Returns:
        m, GeV. A negative m² (only from rounding, e.g. collinear massless
        objects) gives 0.0.
    """
    return _call(_pair_mass_kernel, 1, (a_px, a_py, a_pz, a_e, b_px, b_py, b_pz, b_e))[0]


def rapidity(px: Any, py: Any, pz: Any, e: Any) -> np.ndarray:
    """Rapidity y = ½ ln((E + p_z)/(E − p_z)) (``px, py`` unused, kept for a uniform signature).

    Returns:
        y. ``E <= |p_z|`` (no finite rapidity): ``±inf`` with the sign of p_z,
        ``0.0`` if p_z = 0.
    """
    return _call(_rapidity_kernel, 1, (pz, e))[0]


def delta_y(
    a_px: Any, a_py: Any, a_pz: Any, a_e: Any, b_px: Any, b_py: Any, b_pz: Any, b_e: Any
) -> np.ndarray:
    """Signed rapidity difference y_a − y_b (see :func:`rapidity` for infinite y).

    Returns:
        y_a − y_b; ``nan`` if both rapidities are infinite with the same sign.
    """
    return _call(_delta_y_kernel, 1, (a_pz, a_e, b_pz, b_e))[0]


def delta_y_jj(
    j1_px: Any, j1_py: Any, j1_pz: Any, j1_e: Any, j2_px: Any, j2_py: Any, j2_pz: Any, j2_e: Any
) -> np.ndarray:
    """VBS tag-jet rapidity separation |y_j1 − y_j2| (absolute, as in the cut |Δy_jj| ≥ 2).

    Returns:
        |Δy_jj| ≥ 0; see :func:`delta_y` for degenerate input.
    """
    return np.abs(delta_y(j1_px, j1_py, j1_pz, j1_e, j2_px, j2_py, j2_pz, j2_e))


def delta_phi(
    a_px: Any, a_py: Any, a_pz: Any, a_e: Any, b_px: Any, b_py: Any, b_pz: Any, b_e: Any
) -> np.ndarray:
    """Azimuthal separation |Δφ| in [0, π] (only px, py enter).

    Computed as atan2(|p_Ta × p_Tb|, p_Ta·p_Tb), which needs no wrapping.

    Returns:
        |Δφ| in [0, π]; 0.0 if either transverse momentum is zero.
    """
    return _call(_delta_phi_kernel, 1, (a_px, a_py, b_px, b_py))[0]


#: Dijet invariant mass m_jj, GeV (alias of :func:`pair_mass`).
mjj = pair_mass
#: Dilepton invariant mass m_ℓℓ, GeV (alias of :func:`pair_mass`).
mll = pair_mass
#: |Δφ_jj| in [0, π] (alias of :func:`delta_phi`).
delta_phi_jj = delta_phi
#: |Δφ_ℓℓ| in [0, π] (alias of :func:`delta_phi`).
delta_phi_ll = delta_phi


def mt_w(l_px: Any, l_py: Any, l_pz: Any, l_e: Any, met_px: Any, met_py: Any) -> np.ndarray:
    """Transverse mass of lepton + missing p_T for a massless lepton, GeV.

    ``m_T = √(2 p_Tℓ E_Tmiss (1 − cos Δφ))``; l_pz and l_e are unused (kept for
    a uniform signature). Evaluated without cancellation for aligned vectors.

    Returns:
        m_T ≥ 0, GeV; 0.0 if either transverse momentum is zero.
    """
    return _call(_mt_w_kernel, 1, (l_px, l_py, met_px, met_py))[0]


def mt_ww(
    l1_px: Any,
    l1_py: Any,
    l1_pz: Any,
    l1_e: Any,
    l2_px: Any,
    l2_py: Any,
    l2_pz: Any,
    l2_e: Any,
    met_px: Any,
    met_py: Any,
) -> np.ndarray:
    """Transverse mass of the WW system (two leptons + missing p_T), ATLAS ssWW definition.

    ``m_T = √((E_T^ℓℓ + E_T^miss)² − |p_T^ℓℓ + p_T^miss|²)`` with
    ``E_T^ℓℓ = √(|p_T^ℓℓ|² + m_ℓℓ²)`` and ``E_T^miss = |p_T^miss|``; evaluated as
    ``m_ℓℓ² + 2 (E_T^ℓℓ E_T^miss − p_T^ℓℓ·p_T^miss)`` (both terms ≥ 0).

    Returns:
        m_T ≥ 0, GeV (a negative m_ℓℓ² from rounding is taken as 0).
    """
    inputs = (l1_px, l1_py, l1_pz, l1_e, l2_px, l2_py, l2_pz, l2_e, met_px, met_py)
    return _call(_mt_ww_kernel, 1, inputs)[0]


def zeppenfeld(
    l_px: Any,
    l_py: Any,
    l_pz: Any,
    l_e: Any,
    j1_px: Any,
    j1_py: Any,
    j1_pz: Any,
    j1_e: Any,
    j2_px: Any,
    j2_py: Any,
    j2_pz: Any,
    j2_e: Any,
) -> np.ndarray:
    """Zeppenfeld variable of a lepton w.r.t. the two tag jets (docs/physics.md §1a).

    ``ζ = |y_ℓ − (y_j1 + y_j2)/2| / |y_j1 − y_j2|`` (rapidities; 0 at the centre of
    the jets' rapidity gap, 1/2 at either jet).

    Returns:
        ζ ≥ 0; ``inf`` if the jets have equal rapidity.
    """
    return _call(_zeppenfeld_kernel, 1, (l_pz, l_e, j1_pz, j1_e, j2_pz, j2_e))[0]


def r_pt(
    l1_px: Any,
    l1_py: Any,
    l1_pz: Any,
    l1_e: Any,
    l2_px: Any,
    l2_py: Any,
    l2_pz: Any,
    l2_e: Any,
    j1_px: Any,
    j1_py: Any,
    j1_pz: Any,
    j1_e: Any,
    j2_px: Any,
    j2_py: Any,
    j2_pz: Any,
    j2_e: Any,
) -> np.ndarray:
    """R_pT = p_T(ℓ1) p_T(ℓ2) / (p_T(j1) p_T(j2)) (Doroba et al., arXiv:1201.2768).

    Returns:
        R_pT ≥ 0; ``inf`` if a jet has zero p_T.
    """
    inputs = (l1_px, l1_py, l2_px, l2_py, j1_px, j1_py, j2_px, j2_py)
    return _call(_r_pt_kernel, 1, inputs)[0]


def mt_tot(
    l_px: Any,
    l_py: Any,
    l_pz: Any,
    l_e: Any,
    b1_px: Any,
    b1_py: Any,
    b1_pz: Any,
    b1_e: Any,
    b2_px: Any,
    b2_py: Any,
    b2_pz: Any,
    b2_e: Any,
    met_px: Any,
    met_py: Any,
) -> np.ndarray:
    """Total transverse mass m_T^tot of the ℓ ν b b̄ system (WH, docs/physics.md §1b binning).

    ``m_T^tot = √((Σ E_T)² − |Σ p_T|²)`` over lepton, b1, b2 and the missing
    p_T, with ``E_T = √(p_T² + m²) = √(E² − p_z²)`` for the lepton and b-jets and
    ``E_T = |p_T^miss|`` for the missing momentum.

    Returns:
        m_T^tot ≥ 0, GeV (``E² < p_z²`` of an object gives it E_T = 0; a negative
        m_T² from rounding gives 0.0).
    """
    inputs = (l_px, l_py, l_pz, l_e, b1_px, b1_py, b1_pz, b1_e, b2_px, b2_py, b2_pz, b2_e)
    return _call(_mt_tot_kernel, 1, (*inputs, met_px, met_py))[0]


# ---------------------------------------------------------------------------
# column conversions
# ---------------------------------------------------------------------------


def nth_pxpypze_flat(offsets: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray,
                     mass: np.ndarray, n: int = 0) -> FourArrays:
    """The n-th object of each event of a flat collection as px, py, pz, E (GeV).

    Args:
        offsets: int64, one more than the number of events: event i owns the
            entries ``offsets[i]:offsets[i + 1]`` of the columns.
        pt, eta, phi, mass: the collection's columns (float32 or float64; other
            dtypes are converted to float64), GeV.
        n: index within the event.

    Returns:
        ``(px, py, pz, e)`` float64 arrays of length ``len(offsets) - 1``;
        nan for events with fewer than ``n + 1`` objects. Same numbers as
        :func:`ewpolar.observables.arrays.nth_pxpypze` on the equivalent
        jagged candidates.
    """
    cols = [np.ascontiguousarray(c) for c in (pt, eta, phi, mass)]
    if any(c.dtype != np.float32 for c in cols):
        cols = [np.ascontiguousarray(c, dtype=np.float64) for c in cols]
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    out = tuple(np.empty(len(offsets) - 1) for _ in range(4))
    _nth_ptetaphim_kernel(offsets, n, *cols, *out)
    return out  # type: ignore[return-value]


def ptetaphim_to_pxpypze(pt: Any, eta: Any, phi: Any, mass: Any) -> FourArrays:
    """Flat (pt, eta, phi, mass) columns (float32 or float64, GeV) as float64 px, py, pz, E.

    The same numbers as :func:`ewpolar.observables.arrays.to_pxpypze` on
    records with these fields.
    """
    cols = [np.ascontiguousarray(c) for c in (pt, eta, phi, mass)]
    if any(c.dtype != np.float32 for c in cols):
        cols = [np.ascontiguousarray(c, dtype=np.float64) for c in cols]
    out = tuple(np.empty(len(cols[0])) for _ in range(4))
    _ptetaphim_kernel(*cols, *out)
    return out  # type: ignore[return-value]
