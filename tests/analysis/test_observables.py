"""Reference tests for ewpolar.observables.

Each kernel is checked against an independent implementation: the `vector`
library (float64) where its own rounding is far below the tolerance, and an
explicit 4x4 Lorentz matrix evaluated in 60-digit decimal arithmetic for
extreme boosts, where any float64 evaluation of the reference would itself be
off by about γ² · 1e-16. Quantities built by construction (a generated decay
angle) are compared with the value that was put in.

Tolerances: 1e-9 relative. Components of a boosted four-vector are compared
relative to its energy (a component can be near zero while the vector is not,
and an error of one component is set by the size of the vector). Cosines live
in [-1, 1]; they get rtol 1e-9 plus atol 1e-12, since a cosine near zero has
no meaningful relative precision.
"""

from __future__ import annotations

import decimal
import math
from decimal import Decimal

import awkward as ak
import numpy as np
import pytest
import vector
from coffea.nanoevents.methods import vector as coffea_vector
from ewpolar import observables as obs
from ewpolar.observables import kernels

MW = 80.379
RTOL = 1e-9
COS_ATOL = 1e-12

DEC = decimal.Context(prec=60)


# ---------------------------------------------------------------------------
# independent reference machinery
# ---------------------------------------------------------------------------


def _unit_vectors(rng, n):
    v = rng.normal(size=(3, n))
    return v / np.linalg.norm(v, axis=0)


def _massive(rng, n, mass, p_scale):
    """Random four-vectors (px, py, pz, e) with the given mass and |p| ~ exponential."""
    p = rng.exponential(p_scale, n) * _unit_vectors(rng, n)
    return (*p, np.sqrt((p**2).sum(axis=0) + np.asarray(mass, dtype=float) ** 2))


def _frame_with_gamma(rng, n, mass, gamma):
    """Frame four-vectors of the given mass and Lorentz factor in random directions."""
    p = mass * np.sqrt(gamma**2 - 1.0) * _unit_vectors(rng, n)
    return (*p, np.full(n, mass * gamma))


def _matrix_boost_np(p, frame, sign=-1.0):
    """Explicit 4x4 Lorentz matrix in numpy: sign=-1 into the frame's rest frame, +1 out of it."""
    px, py, pz, e = (np.asarray(x, dtype=float) for x in p)
    fx, fy, fz, fe = (np.asarray(x, dtype=float) for x in frame)
    m = np.sqrt(fe**2 - fx**2 - fy**2 - fz**2)
    gamma = fe / m
    b = np.array([fx, fy, fz]) / fe * sign
    b2 = (b**2).sum(axis=0)
    out = np.empty((4, *np.shape(px)))
    vec = np.array([px, py, pz])
    bp = (b * vec).sum(axis=0)
    coef = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0)
    out[3] = gamma * (e + bp)
    out[:3] = vec + b * (coef * bp + gamma * e)
    return tuple(out)


def _d(x):
    return Decimal(float(x))


def _dec_boost(p, f):
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
        vec = [p[3], p[0], p[1], p[2]]
        t, x, y, z = (sum(lam[r][c] * vec[c] for c in range(4)) for r in range(4))
        return x, y, z, t


def _dec_cos(a, b):
    with decimal.localcontext(DEC):
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        na = sum(x * x for x in a).sqrt()
        nb = sum(x * x for x in b).sqrt()
        return dot / (na * nb)


def _dec_cos_theta_star(lep, w, f):
    """Literal definition: ℓ and W into F, ℓ into the W rest frame, angle to the W direction in F."""
    lep_f = _dec_boost(lep, f)
    w_f = _dec_boost(w, f)
    lep_w = _dec_boost(lep_f, w_f)
    return _dec_cos(lep_w[:3], w_f[:3])


def _dec_cos_delta_plus(lep, nu, h):
    with decimal.localcontext(DEC):
        w = tuple(a + b for a, b in zip(lep, nu, strict=True))
        lep_w = _dec_boost(lep, w)
        cross = (
            h[1] * w[2] - h[2] * w[1],
            h[2] * w[0] - h[0] * w[2],
            h[0] * w[1] - h[1] * w[0],
        )
        return _dec_cos(lep_w[:3], cross)


def _columns(*vectors, i):
    return [tuple(_d(c[i]) for c in v) for v in vectors]


def _vec(p):
    return vector.array({"px": p[0], "py": p[1], "pz": p[2], "E": p[3]})


def _two_body_decay(rng, parent, m1, m2):
    """Isotropic two-body decay of parents (lab four-vectors), daughters in the lab."""
    px, py, pz, e = parent
    m = np.sqrt(e**2 - px**2 - py**2 - pz**2)
    n = len(m)
    p_star = np.sqrt((m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2)) / (2 * m)
    d = p_star * _unit_vectors(rng, n)
    d1 = (*d, np.sqrt(p_star**2 + m1**2))
    d2 = (*(-d), np.sqrt(p_star**2 + m2**2))
    return _matrix_boost_np(d1, parent, +1.0), _matrix_boost_np(d2, parent, +1.0)


def _w_decays(rng, n, p_scale=150.0, lepton_mass=0.0):
    """On-shell W -> ℓ ν in the lab: returns (lepton, neutrino)."""
    w = _massive(rng, n, MW, p_scale)
    return _two_body_decay(rng, w, lepton_mass, 0.0)


def _boost_close(got, ref, rtol=RTOL):
    """Four-vector comparison, every component relative to the reference energy."""
    scale = np.abs(np.asarray(ref[3]))
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_array_less(np.abs(np.asarray(g) - np.asarray(r)), rtol * scale + 1e-300)


def _cos_close(got, ref):
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=COS_ATOL)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


# ---------------------------------------------------------------------------
# boost_to_rest_frame
# ---------------------------------------------------------------------------


def test_boost_matches_vector(rng):
    n = 2000
    p = _massive(rng, n, rng.uniform(0, 50, n), 200.0)
    frame = _frame_with_gamma(rng, n, rng.uniform(1, 200, n), rng.uniform(1.0, 100.0, n))
    got = obs.boost_to_rest_frame(*p, *frame)
    ref = _vec(p).boostCM_of_p4(_vec(frame))
    _boost_close(got, (ref.px, ref.py, ref.pz, ref.E))
    back = _vec(got).boost_p4(_vec(frame))
    _boost_close((back.px, back.py, back.pz, back.E), p)


def test_boost_matches_explicit_matrix(rng):
    n = 500
    p = _massive(rng, n, 5.0, 100.0)
    frame = _frame_with_gamma(rng, n, 90.0, rng.uniform(1.0, 30.0, n))
    _boost_close(obs.boost_to_rest_frame(*p, *frame), _matrix_boost_np(p, frame))


@pytest.mark.parametrize("gamma", [1e2, 1e4, 1e6])
def test_boost_extreme_gamma_against_decimal(rng, gamma):
    n = 40
    frame = _frame_with_gamma(rng, n, 91.2, gamma)
    # decay products moving with the frame (worst cancellation) and unrelated vectors
    daughter, _ = _two_body_decay(rng, frame, 0.0, 0.0)
    other = _massive(rng, n, 1.0, 100.0)
    for p in (daughter, other):
        got = obs.boost_to_rest_frame(*p, *frame)
        ref = [[float(c) for c in _dec_boost(*_columns(p, frame, i=i))] for i in range(n)]
        _boost_close(got, np.array(ref).T)


def test_boost_frame_at_rest_is_identity(rng):
    p = _massive(rng, 100, 3.0, 50.0)
    for mass in (1.0, 80.4):
        got = obs.boost_to_rest_frame(*p, 0.0, 0.0, 0.0, mass)
        for g, r in zip(got, p, strict=True):
            np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize(
    "frame",
    [
        (0.0, 0.0, 5.0, 5.0),  # light-like
        (3.0, 0.0, 4.0, 4.0),  # space-like
        (0.0, 0.0, 1.0, -3.0),  # negative energy
        (0.0, 0.0, 0.0, 0.0),  # zero vector
        (0.0, 0.0, 0.0, -1.0),  # negative energy at rest
    ],
)
def test_boost_without_rest_frame_is_nan(frame):
    got = obs.boost_to_rest_frame([1.0, 2.0], [0.0, 1.0], [3.0, 0.0], [4.0, 5.0], *frame)
    assert all(np.isnan(c).all() for c in got)


def test_boost_nan_input_propagates():
    got = obs.boost_to_rest_frame(np.nan, 0.0, 1.0, 2.0, 0.0, 0.0, 1.0, 3.0)
    assert np.isnan(got[0])
    assert np.isnan(got[3])


def test_float32_input_does_not_compile_new_specialisations(rng):
    p = _massive(rng, 50, 1.0, 50.0)
    frame = _frame_with_gamma(rng, 50, 80.0, 3.0)
    ref = obs.boost_to_rest_frame(*(x.astype(np.float32).astype(np.float64) for x in p), *frame)
    n_sigs = len(kernels._boost_kernel.signatures)
    got = obs.boost_to_rest_frame(*(x.astype(np.float32) for x in p), *frame)
    assert len(kernels._boost_kernel.signatures) == n_sigs == 1
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == np.float64
        np.testing.assert_array_equal(g, r)
    with pytest.raises(TypeError):
        kernels._boost_kernel(*(x.astype(np.float32) for x in p), *frame)


def test_inputs_broadcast_and_keep_shape(rng):
    p = [x.reshape(5, 4) for x in _massive(rng, 20, 1.0, 50.0)]
    got = obs.cos_theta_star(*p, *p, 0.0, 0.0, 0.0, 1.0)
    assert got.shape == (5, 4)
    with pytest.raises(ValueError, match="broadcast"):
        obs.pair_mass(np.ones(3), 0, 0, 1, np.ones(4), 0, 0, 1)


# ---------------------------------------------------------------------------
# cos_theta_star
# ---------------------------------------------------------------------------


def _vector_cos_theta_star(lep, w, frame):
    lv, wv, fv = _vec(lep), _vec(w), _vec(frame)
    l_f = lv.boostCM_of_p4(fv)
    w_f = wv.boostCM_of_p4(fv)
    l_w = l_f.boostCM_of_p4(w_f).to_3D()
    w3 = w_f.to_3D()
    return l_w.dot(w3) / (l_w.mag * w3.mag)


def test_cos_theta_star_matches_vector_in_ww_frame(rng):
    n = 2000
    l1, n1 = _w_decays(rng, n)
    l2, n2 = _w_decays(rng, n)
    w1 = tuple(a + b for a, b in zip(l1, n1, strict=True))
    w2 = tuple(a + b for a, b in zip(l2, n2, strict=True))
    frame = tuple(a + b for a, b in zip(w1, w2, strict=True))
    _cos_close(obs.cos_theta_star(*l1, *w1, *frame), _vector_cos_theta_star(l1, w1, frame))
    _cos_close(obs.cos_theta_star(*l2, *w2, *frame), _vector_cos_theta_star(l2, w2, frame))


def test_cos_theta_star_lab_frame_matches_vector(rng):
    n = 1000
    lep, nu = _w_decays(rng, n)
    w = tuple(a + b for a, b in zip(lep, nu, strict=True))
    lab = (np.zeros(n), np.zeros(n), np.zeros(n), np.ones(n))
    _cos_close(obs.cos_theta_star(*lep, *w, *lab), _vector_cos_theta_star(lep, w, lab))
    _cos_close(
        obs.cos_theta_star(*lep, *w, 0.0, 0.0, 0.0, 1.0), _vector_cos_theta_star(lep, w, lab)
    )


def _orthonormal_basis(n_hat):
    helper = np.where(np.abs(n_hat[2]) < 0.9, 1.0, 0.0)
    a = np.array([1.0 - helper, np.zeros_like(helper), helper])
    u = np.cross(n_hat.T, a.T).T
    u /= np.linalg.norm(u, axis=0)
    v = np.cross(n_hat.T, u.T).T
    return u, v


def test_cos_theta_star_recovers_generated_angle(rng):
    """Build events from a known θ*: ℓ in the W frame, W in the F frame, F in the lab.

    Rounding the constructed lab momenta to float64 moves the exact angle of the
    inputs by up to about γ_ℓ² · 1e-16 (γ_ℓ ≲ 300 here), hence atol 1e-10; the
    kernel itself agrees with the 60-digit reference to 1e-15 on these inputs.
    """
    n = 2000
    cos_gen = rng.uniform(-1, 1, n)
    sin_gen = np.sqrt(1 - cos_gen**2)
    phi = rng.uniform(0, 2 * np.pi, n)
    n_hat = _unit_vectors(rng, n)
    u, v = _orthonormal_basis(n_hat)
    p_star = MW / 2
    lep_w = p_star * (cos_gen * n_hat + sin_gen * (np.cos(phi) * u + np.sin(phi) * v))
    lep_w = (*lep_w, np.full(n, p_star))
    m_f = rng.uniform(200.0, 2000.0, n)
    p_w = 0.5 * np.sqrt(m_f**2 - (2 * MW) ** 2)  # W pair back to back in F
    w_f = (*(p_w * n_hat), np.sqrt(p_w**2 + MW**2))
    lep_f = _matrix_boost_np(lep_w, w_f, +1.0)
    w2_f = (*(-p_w * n_hat), np.sqrt(p_w**2 + MW**2))
    frame_lab = _frame_with_gamma(rng, n, m_f, rng.uniform(1.0, 20.0, n))
    lep = _matrix_boost_np(lep_f, frame_lab, +1.0)
    w1 = _matrix_boost_np(w_f, frame_lab, +1.0)
    w2 = _matrix_boost_np(w2_f, frame_lab, +1.0)
    frame = tuple(a + b for a, b in zip(w1, w2, strict=True))
    got = obs.cos_theta_star(*lep, *w1, *frame)
    np.testing.assert_allclose(got, cos_gen, rtol=RTOL, atol=1e-10)
    for i in np.argsort(np.abs(got - cos_gen))[-5:]:  # the worst ones, against the exact value
        ref = _dec_cos_theta_star(*_columns(lep, w1, frame, i=i))
        _cos_close(got[i], float(ref))


@pytest.mark.parametrize("gamma", [1e3, 1e4, 1e5])
def test_cos_theta_star_extreme_boost_against_decimal(rng, gamma):
    """The whole WW event flies with Lorentz factor γ in the lab."""
    n = 25
    l1, n1 = _w_decays(rng, n)
    l2, n2 = _w_decays(rng, n)
    w1 = tuple(a + b for a, b in zip(l1, n1, strict=True))
    w2 = tuple(a + b for a, b in zip(l2, n2, strict=True))
    frame = tuple(a + b for a, b in zip(w1, w2, strict=True))
    boost = _frame_with_gamma(rng, n, 1.0, gamma)
    lep, w = _matrix_boost_np(l1, boost, +1.0), _matrix_boost_np(w1, boost, +1.0)
    frame = _matrix_boost_np(frame, boost, +1.0)
    got = obs.cos_theta_star(*lep, *w, *frame)
    ref = [float(_dec_cos_theta_star(*_columns(lep, w, frame, i=i))) for i in range(n)]
    _cos_close(got, ref)


def test_cos_theta_star_invariant_under_boost_of_whole_event(rng):
    n = 500
    lep, nu = _w_decays(rng, n)
    w = tuple(a + b for a, b in zip(lep, nu, strict=True))
    frame = _massive(rng, n, 300.0, 200.0)
    frame = tuple(a + b for a, b in zip(frame, w, strict=True))
    before = obs.cos_theta_star(*lep, *w, *frame)
    boost = _frame_with_gamma(rng, n, 1.0, 20.0)
    moved = [_matrix_boost_np(x, boost, +1.0) for x in (lep, w, frame)]
    _cos_close(obs.cos_theta_star(*moved[0], *moved[1], *moved[2]), before)


def test_cos_theta_star_degenerate():
    lep = (10.0, 5.0, 3.0, math.sqrt(134.0))
    w_rest = (0.0, 0.0, 0.0, MW)
    # W at rest in F: direction undefined -> 0.0
    assert obs.cos_theta_star(*lep, *w_rest, 0.0, 0.0, 0.0, 200.0) == 0.0
    # massive lepton at rest in the W frame -> 0.0
    assert obs.cos_theta_star(0.0, 0.0, 0.0, 1.0, *w_rest, 0.0, 0.0, 50.0, 300.0) == 0.0
    # no rest frame for F or for W -> nan
    assert np.isnan(obs.cos_theta_star(*lep, *w_rest, 0.0, 0.0, 5.0, 5.0))
    assert np.isnan(obs.cos_theta_star(*lep, 0.0, 0.0, 5.0, 5.0, 0.0, 0.0, 0.0, 1.0))
    assert np.isnan(obs.cos_theta_star(*lep, *w_rest, 0.0, 0.0, 0.0, 0.0))


# ---------------------------------------------------------------------------
# neutrino_pz
# ---------------------------------------------------------------------------


def _physics_md_roots(lep, met_x, met_y, mw=MW):
    """physics.md §1b literally (massless lepton): A, Δ (clipped at 0), both roots."""
    lx, ly, lz, le = lep
    pt2 = lx**2 + ly**2
    mu = mw**2 / 2 + lx * met_x + ly * met_y
    a = mu * lz / pt2
    delta = a**2 - (le**2 * (met_x**2 + met_y**2) - mu**2) / pt2
    root = np.sqrt(np.clip(delta, 0.0, None))
    return a, delta, a + root, a - root


def _mass(*vectors):
    px, py, pz, e = (sum(v[i] for v in vectors) for i in range(4))
    return np.sqrt((e - np.hypot(np.hypot(px, py), pz)) * (e + np.hypot(np.hypot(px, py), pz)))


def _beta_z(px, py, pz, e):
    m2 = e**2 - px**2 - py**2 - pz**2
    return pz / np.sqrt(pz**2 + m2)


def _higgs_kwargs(higgs):
    return dict(zip(("h_px", "h_py", "h_pz", "h_e"), higgs, strict=True))


@pytest.mark.parametrize("lepton_mass", [0.0, 0.1056583755])
def test_neutrino_pz_solves_w_mass(rng, lepton_mass):
    n = 3000
    lep, nu = _w_decays(rng, n, lepton_mass=lepton_mass)
    higgs = _massive(rng, n, 125.0, 200.0)
    for rule, extra in (("min_abs", {}), ("wh_beta", _higgs_kwargs(higgs))):
        pz = obs.neutrino_pz(*lep, nu[0], nu[1], rule=rule, **extra)
        nu_rec = obs.neutrino_four_vector(nu[0], nu[1], pz)
        np.testing.assert_allclose(_mass(lep, nu_rec), MW, rtol=RTOL)


def test_neutrino_pz_rules_pick_promised_root(rng):
    n = 3000
    lep, nu = _w_decays(rng, n)
    higgs = _massive(rng, n, 125.0, 300.0)
    _, _, r_plus, r_minus = _physics_md_roots(lep, nu[0], nu[1])
    scale = 1e-9 * (1.0 + np.abs(r_plus) + np.abs(r_minus))

    got = obs.neutrino_pz(*lep, nu[0], nu[1], rule="min_abs")
    want = np.where(np.abs(r_plus) < np.abs(r_minus), r_plus, r_minus)
    np.testing.assert_array_less(np.abs(got - want), scale)

    got = obs.neutrino_pz(*lep, nu[0], nu[1], rule="wh_beta", **_higgs_kwargs(higgs))
    b_h = _beta_z(*higgs)
    dist = []
    for r in (r_plus, r_minus):
        w = tuple(
            a + b for a, b in zip(lep, obs.neutrino_four_vector(nu[0], nu[1], r), strict=True)
        )
        dist.append(np.abs(_beta_z(*w) - b_h))
    clear = np.abs(dist[0] - dist[1]) > 1e-9  # skip numerical ties
    want = np.where(dist[0] < dist[1], r_plus, r_minus)
    np.testing.assert_array_less(np.abs(got - want)[clear], scale[clear])
    assert clear.mean() > 0.99
    # the rules disagree on a good fraction of events, so the test above can fail
    differs = np.abs(got - obs.neutrino_pz(*lep, nu[0], nu[1])) > 1e-6
    assert differs.mean() > 0.1


def test_neutrino_pz_without_solution_returns_a(rng):
    """m_T(ℓ, ν) > m_W with μ > 0: Δ < 0, and A = μ p_zℓ / p_Tℓ² is returned."""
    n = 500
    pt = rng.uniform(40.0, 120.0, n)
    eta = rng.uniform(-2.5, 2.5, n)
    phi_l = rng.uniform(-np.pi, np.pi, n)
    lep = (pt * np.cos(phi_l), pt * np.sin(phi_l), pt * np.sinh(eta), pt * np.cosh(eta))
    et = rng.uniform(100.0, 200.0, n)
    x = MW**2 / (2 * pt * et)
    cos_dphi = rng.uniform(-x + 0.01, 1 - x - 0.01)  # μ > 0 and m_T > m_W
    phi = phi_l + np.arccos(cos_dphi)
    met_x, met_y = et * np.cos(phi), et * np.sin(phi)
    a, delta, _, _ = _physics_md_roots(lep, met_x, met_y)
    assert (delta < 0).all()
    assert (obs.mt_w(*lep, met_x, met_y) > MW).all()
    for rule, extra in (("min_abs", {}), ("wh_beta", _higgs_kwargs((1.0, 2.0, 50.0, 200.0)))):
        got = obs.neutrino_pz(*lep, met_x, met_y, rule=rule, **extra)
        np.testing.assert_allclose(got, a, rtol=RTOL, atol=1e-9)


def test_neutrino_pz_negative_mu_returns_a():
    """μ ≤ 0 (lepton against a large missing p_T) always has Δ < 0: A is returned."""
    lep = (50.0, 0.0, 20.0, math.hypot(50.0, 20.0))
    met_x, met_y = -400.0, 0.0  # μ = m_W²/2 − 20000 < 0
    a, delta, _, _ = _physics_md_roots(lep, met_x, met_y)
    assert delta < 0
    np.testing.assert_allclose(obs.neutrino_pz(*lep, met_x, met_y), a, rtol=RTOL)


def test_neutrino_pz_degenerate_and_errors():
    # massless lepton along the beam: no quadratic -> nan
    assert np.isnan(obs.neutrino_pz(0.0, 0.0, 30.0, 30.0, 20.0, 0.0))
    lep = (30.0, 0.0, 10.0, math.hypot(30.0, 10.0))
    with pytest.raises(ValueError, match="min_abs, wh_beta"):
        obs.neutrino_pz(*lep, 20.0, 0.0, rule="largest")
    with pytest.raises(ValueError, match="h_pz"):
        obs.neutrino_pz(*lep, 20.0, 0.0, rule="wh_beta", h_px=1.0, h_py=1.0, h_e=200.0)
    with pytest.raises(ValueError, match="h_px, h_py, h_pz, h_e"):
        obs.neutrino_pz(*lep, 20.0, 0.0, rule="wh_beta")
    # nan Higgs candidate -> nan, not a silent fallback to the other rule
    assert np.isnan(
        obs.neutrino_pz(*lep, 20.0, 0.0, rule="wh_beta", h_px=np.nan, h_py=0.0, h_pz=0.0, h_e=1.0)
    )


def test_neutrino_four_vector_is_massless(rng):
    mx, my, pz = rng.normal(0, 100, (3, 100))
    px, py, pz2, e = obs.neutrino_four_vector(mx, my, pz)
    np.testing.assert_array_equal(px, mx)
    np.testing.assert_array_equal(py, my)
    np.testing.assert_array_equal(pz2, pz)
    np.testing.assert_allclose(e, np.linalg.norm([mx, my, pz], axis=0), rtol=1e-15)


# ---------------------------------------------------------------------------
# cos_delta_plus
# ---------------------------------------------------------------------------


def _vector_cos_delta_plus(lep, nu, h):
    lv, nv, hv = _vec(lep), _vec(nu), _vec(h)
    w = lv + nv
    l_w = lv.boostCM_of_p4(w).to_3D()
    cross = hv.to_3D().cross(w.to_3D())
    return l_w.dot(cross) / (l_w.mag * cross.mag)


def _wh_events(rng, n):
    lep, nu = _w_decays(rng, n)
    higgs = _massive(rng, n, 125.0, 150.0)
    return lep, nu, higgs


def test_cos_delta_plus_matches_vector(rng):
    lep, nu, higgs = _wh_events(rng, 2000)
    _cos_close(obs.cos_delta_plus(*lep, *nu, *higgs), _vector_cos_delta_plus(lep, nu, higgs))


@pytest.mark.parametrize("gamma", [1e3, 1e5])
def test_cos_delta_plus_fast_w_against_decimal(rng, gamma):
    n = 25
    w = _frame_with_gamma(rng, n, MW, gamma)
    lep, nu = _two_body_decay(rng, w, 0.0, 0.0)
    higgs = _massive(rng, n, 125.0, 150.0)
    got = obs.cos_delta_plus(*lep, *nu, *higgs)
    ref = [float(_dec_cos_delta_plus(*_columns(lep, nu, higgs, i=i))) for i in range(n)]
    _cos_close(got, ref)


def test_cos_delta_plus_is_cp_odd(rng):
    """Mirroring every momentum (p -> -p, E kept) flips the sign of cos δ⁺."""
    lep, nu, higgs = _wh_events(rng, 2000)
    mirror = [(-v[0], -v[1], -v[2], v[3]) for v in (lep, nu, higgs)]
    before = obs.cos_delta_plus(*lep, *nu, *higgs)
    after = obs.cos_delta_plus(*mirror[0], *mirror[1], *mirror[2])
    _cos_close(after, -before)
    assert (np.abs(before) > 0.1).mean() > 0.5


def test_cos_delta_plus_is_invariant_under_beam_rotations(rng):
    lep, nu, higgs = _wh_events(rng, 2000)
    before = obs.cos_delta_plus(*lep, *nu, *higgs)
    for angle in (0.3, 2.0, -2.9):
        c, s = math.cos(angle), math.sin(angle)
        rot = [(c * v[0] - s * v[1], s * v[0] + c * v[1], v[2], v[3]) for v in (lep, nu, higgs)]
        _cos_close(obs.cos_delta_plus(*rot[0], *rot[1], *rot[2]), before)


def test_cos_delta_plus_degenerate(rng):
    lep, nu, _ = _wh_events(rng, 10)
    w = [a + b for a, b in zip(lep, nu, strict=True)]
    # H parallel to W, or H at rest: zero cross product -> 0.0
    assert (obs.cos_delta_plus(*lep, *nu, 2 * w[0], 2 * w[1], 2 * w[2], 300.0) == 0.0).all()
    assert (obs.cos_delta_plus(*lep, *nu, 0.0, 0.0, 0.0, 125.0) == 0.0).all()
    # collinear massless lepton and neutrino: W has no rest frame -> nan
    assert np.isnan(
        obs.cos_delta_plus(10.0, 0.0, 0.0, 10.0, 20.0, 0.0, 0.0, 20.0, 0.0, 50.0, 0.0, 130.0)
    )


# ---------------------------------------------------------------------------
# VBS and event variables
# ---------------------------------------------------------------------------


def test_pair_mass_matches_vector(rng):
    a = _massive(rng, 2000, rng.uniform(0, 30, 2000), 300.0)
    b = _massive(rng, 2000, 0.0, 300.0)
    ref = (_vec(a) + _vec(b)).mass
    np.testing.assert_allclose(obs.pair_mass(*a, *b), ref, rtol=RTOL)
    assert obs.mjj is obs.pair_mass
    assert obs.mll is obs.pair_mass
    # collinear massless pair: m = 0 exactly, not nan from a rounding-negative m²
    assert obs.mll(3.0, 4.0, 12.0, 13.0, 6.0, 8.0, 24.0, 26.0) == 0.0


def test_rapidity_and_delta_y_match_vector(rng):
    a = _massive(rng, 2000, rng.uniform(0, 30, 2000), 300.0)
    b = _massive(rng, 2000, 5.0, 300.0)
    np.testing.assert_allclose(obs.rapidity(*a), _vec(a).rapidity, rtol=RTOL, atol=1e-12)
    dy = _vec(a).rapidity - _vec(b).rapidity
    np.testing.assert_allclose(obs.delta_y(*a, *b), dy, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(obs.delta_y_jj(*a, *b), np.abs(dy), rtol=RTOL, atol=1e-12)
    assert obs.rapidity(0.0, 0.0, 5.0, 5.0) == np.inf
    assert obs.rapidity(0.0, 0.0, -5.0, 5.0) == -np.inf
    assert obs.rapidity(0.0, 0.0, 0.0, 0.0) == 0.0


@pytest.mark.parametrize("y", [1e-9, 0.3, 8.0, -12.0])
def test_rapidity_against_decimal(y):
    """Near y = 0 and far forward, where ½ ln((E + p_z)/(E − p_z)) in float64 loses digits."""
    pz, e = 5.0 * math.sinh(y), 5.0 * math.cosh(y)
    with decimal.localcontext(DEC):
        ref = ((_d(e) + _d(pz)) / (_d(e) - _d(pz))).ln() / 2
    np.testing.assert_allclose(obs.rapidity(3.0, 4.0, pz, e), float(ref), rtol=1e-14)


def test_delta_phi_matches_vector(rng):
    a = _massive(rng, 2000, 1.0, 100.0)
    b = _massive(rng, 2000, 1.0, 100.0)
    ref = np.abs(_vec(a).deltaphi(_vec(b)))
    got = obs.delta_phi(*a, *b)
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=1e-12)
    assert (got >= 0).all()
    assert (got <= np.pi).all()
    # across the ±π boundary
    a1 = (math.cos(3.1), math.sin(3.1), 0.0, 1.0)
    b1 = (math.cos(-3.1), math.sin(-3.1), 0.0, 1.0)
    np.testing.assert_allclose(obs.delta_phi_jj(*a1, *b1), 2 * math.pi - 6.2, rtol=1e-12)
    assert obs.delta_phi_ll(*a1, 0.0, 0.0, 0.0, 0.0) == 0.0


def test_mt_w_matches_definition(rng):
    lep = _massive(rng, 2000, 0.0, 100.0)
    met = rng.normal(0, 60, (2, 2000))
    pt, et = np.hypot(lep[0], lep[1]), np.hypot(*met)
    dphi = np.arctan2(lep[1], lep[0]) - np.arctan2(met[1], met[0])
    ref = np.sqrt(4 * pt * et * np.sin(dphi / 2) ** 2)  # 1 − cos Δφ = 2 sin²(Δφ/2), no cancellation
    np.testing.assert_allclose(obs.mt_w(*lep, *met), ref, rtol=RTOL)
    # Jacobian edge of a W decay at rest in the transverse plane: m_T = m_W
    np.testing.assert_allclose(obs.mt_w(MW / 2, 0.0, 0.0, MW / 2, -MW / 2, 0.0), MW, rtol=1e-15)
    assert obs.mt_w(30.0, 40.0, 0.0, 50.0, 3.0, 4.0) == 0.0
    # a W decay: m_T <= m_W
    l1, n1 = _w_decays(rng, 2000)
    assert (obs.mt_w(*l1, n1[0], n1[1]) <= MW * (1 + 1e-12)).all()


def test_mt_ww_matches_definition(rng):
    l1 = _massive(rng, 2000, 0.0, 100.0)
    l2 = _massive(rng, 2000, 0.1, 100.0)
    met = rng.normal(0, 80, (2, 2000))
    ll = _vec(l1) + _vec(l2)
    et_ll = np.sqrt(ll.pt**2 + ll.mass**2)
    et = np.hypot(*met)
    ref = np.sqrt((et_ll + et) ** 2 - (ll.px + met[0]) ** 2 - (ll.py + met[1]) ** 2)
    np.testing.assert_allclose(obs.mt_ww(*l1, *l2, *met), ref, rtol=RTOL)
    # no missing momentum: m_T = E_T^ℓℓ... reduces to √(m_ℓℓ²) when p_T^ℓℓ = 0
    got = obs.mt_ww(10.0, 0.0, 5.0, math.hypot(10, 5), -10.0, 0.0, 5.0, math.hypot(10, 5), 0.0, 0.0)
    np.testing.assert_allclose(got, 20.0, rtol=1e-14)


def test_zeppenfeld_matches_definition(rng):
    lep = _massive(rng, 1000, 0.0, 100.0)
    j1 = _massive(rng, 1000, 10.0, 300.0)
    j2 = _massive(rng, 1000, 10.0, 300.0)
    y_l, y1, y2 = (_vec(v).rapidity for v in (lep, j1, j2))
    ref = np.abs(y_l - (y1 + y2) / 2) / np.abs(y1 - y2)
    np.testing.assert_allclose(obs.zeppenfeld(*lep, *j1, *j2), ref, rtol=RTOL)
    jet_a = (30.0, 0.0, 30.0 * math.sinh(2.0), 30.0 * math.cosh(2.0))
    jet_b = (30.0, 0.0, -30.0 * math.sinh(2.0), 30.0 * math.cosh(2.0))
    assert obs.zeppenfeld(20.0, 0.0, 0.0, 20.0, *jet_a, *jet_b) == 0.0
    np.testing.assert_allclose(obs.zeppenfeld(*jet_a, *jet_a, *jet_b), 0.5, rtol=1e-12)
    assert obs.zeppenfeld(20.0, 0.0, 0.0, 20.0, *jet_a, *jet_a) == np.inf


def test_r_pt_matches_definition(rng):
    vs = [_massive(rng, 500, 1.0, 100.0) for _ in range(4)]
    pts = [_vec(v).pt for v in vs]
    np.testing.assert_allclose(
        obs.r_pt(*vs[0], *vs[1], *vs[2], *vs[3]), pts[0] * pts[1] / (pts[2] * pts[3]), rtol=RTOL
    )
    assert obs.r_pt(*vs[0], *vs[1], 0.0, 0.0, 10.0, 10.0, *vs[3])[0] == np.inf


def test_mt_tot_matches_definition(rng):
    n = 1000
    lep, nu = _w_decays(rng, n)
    b1, b2 = _two_body_decay(rng, _massive(rng, n, 125.0, 150.0), 4.8, 4.8)
    vs = [_vec(v) for v in (lep, b1, b2)]
    et_sum = sum(np.sqrt(v.pt**2 + v.mass**2) for v in vs) + np.hypot(nu[0], nu[1])
    px = sum(v.px for v in vs) + nu[0]
    py = sum(v.py for v in vs) + nu[1]
    ref = np.sqrt(et_sum**2 - px**2 - py**2)
    np.testing.assert_allclose(obs.mt_tot(*lep, *b1, *b2, nu[0], nu[1]), ref, rtol=RTOL)
    # m_T^tot never exceeds the invariant mass of the system with the true neutrino
    m = _mass(lep, nu, b1, b2)
    assert (obs.mt_tot(*lep, *b1, *b2, nu[0], nu[1]) <= m * (1 + 1e-12)).all()


# ---------------------------------------------------------------------------
# awkward-level helpers
# ---------------------------------------------------------------------------


def _candidates(pt, eta, phi, mass, counts, dtype=np.float64):
    flat = ak.zip(
        {
            "pt": np.asarray(pt, dtype=dtype),
            "eta": np.asarray(eta, dtype=dtype),
            "phi": np.asarray(phi, dtype=dtype),
            "mass": np.asarray(mass, dtype=dtype),
        },
        with_name="PtEtaPhiMLorentzVector",
        behavior=coffea_vector.behavior,
    )
    return ak.unflatten(flat, counts)


def _random_candidates(rng, counts, mass=0.0, pt_scale=60.0):
    total = int(np.sum(counts))
    pt = rng.exponential(pt_scale, total) + 20.0
    eta = rng.uniform(-2.5, 2.5, total)
    phi = rng.uniform(-np.pi, np.pi, total)
    return pt, eta, phi, np.full(total, mass)


def _reference_pxpypze(pt, eta, phi, mass):
    v = vector.array({"pt": pt, "eta": eta, "phi": phi, "mass": mass})
    return v.px, v.py, v.pz, v.E


def test_to_pxpypze_matches_vector(rng):
    counts = np.array([2, 0, 3, 1])
    cols = _random_candidates(rng, counts, mass=0.105)
    for dtype in (np.float64, np.float32):
        cands = _candidates(*cols, counts, dtype=dtype)
        ref = _reference_pxpypze(*(np.asarray(c, dtype=dtype).astype(np.float64) for c in cols))
        got = obs.to_pxpypze(cands)
        for g, r in zip(got, ref, strict=True):
            assert g.dtype == np.float64
            np.testing.assert_allclose(g, r, rtol=1e-12)
    # one record per event with None -> fill value in all four components
    ref = _reference_pxpypze(*cols)
    lead = ak.firsts(_candidates(*cols, counts))
    for fill in (-99.0, np.nan):
        got = obs.to_pxpypze(lead, fill_value=fill)
        for g, r in zip(got, ref, strict=True):
            np.testing.assert_array_equal(g[1], fill)
            np.testing.assert_allclose(g[[0, 2, 3]], np.asarray(r)[[0, 2, 5]], rtol=1e-12)


def test_nth_and_met_helpers(rng):
    counts = np.array([2, 0, 1, 3])
    cols = _random_candidates(rng, counts)
    cands = _candidates(*cols, counts)
    ref = _reference_pxpypze(*cols)
    second = obs.nth_pxpypze(cands, 1)
    np.testing.assert_allclose(second[3][[0, 3]], np.asarray(ref[3])[[1, 4]], rtol=1e-12)
    assert np.isnan(second[3][[1, 2]]).all()
    met = ak.zip({"pt": [30.0, 0.0], "phi": [0.5, 1.0]}, with_name="MissingET")
    mx, my = obs.met_pxpy(met)
    np.testing.assert_allclose(mx, [30 * math.cos(0.5), 0.0])
    np.testing.assert_allclose(my, [30 * math.sin(0.5), 0.0])
    with pytest.raises(TypeError, match="fields"):
        obs.to_pxpypze(ak.zip({"a": [1.0]}))


def test_lepton_pair_cos_theta_star_with_neutrinos(rng):
    counts = np.array([2, 1, 0, 2, 3, 2])
    lep_cols = _random_candidates(rng, counts)
    nu_cols = _random_candidates(rng, counts)
    leptons = _candidates(*lep_cols, counts)
    neutrinos = _candidates(*nu_cols, counts)
    c1, c2 = obs.lepton_pair_cos_theta_star(leptons, neutrinos=neutrinos, fill_value=-5.0)
    assert c1.shape == c2.shape == (len(counts),)
    np.testing.assert_array_equal(c1[[1, 2]], -5.0)
    np.testing.assert_array_equal(c2[[1, 2]], -5.0)
    lep_flat = _reference_pxpypze(*lep_cols)
    nu_flat = _reference_pxpypze(*nu_cols)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for ev in (0, 3, 4, 5):
        i1, i2 = starts[ev], starts[ev] + 1
        l1 = [c[i1] for c in lep_flat]
        l2 = [c[i2] for c in lep_flat]
        w1 = [a + b[i1] for a, b in zip(l1, nu_flat, strict=True)]
        w2 = [a + b[i2] for a, b in zip(l2, nu_flat, strict=True)]
        frame = [a + b for a, b in zip(w1, w2, strict=True)]
        ref1 = _vector_cos_theta_star(*(np.array(v)[:, None] for v in (l1, w1, frame)))
        ref2 = _vector_cos_theta_star(*(np.array(v)[:, None] for v in (l2, w2, frame)))
        _cos_close(c1[ev], ref1[0])
        _cos_close(c2[ev], ref2[0])


def test_lepton_pair_cos_theta_star_with_met(rng):
    counts = np.array([2, 2, 1, 2])
    lep_cols = _random_candidates(rng, counts)
    leptons = _candidates(*lep_cols, counts)
    met = ak.zip(
        {"pt": [40.0, 70.0, 30.0, 10.0], "phi": [0.1, 2.0, -1.0, 3.0]}, with_name="MissingET"
    )
    c1, c2 = obs.lepton_pair_cos_theta_star(leptons, met=met)
    assert np.isnan(c1[2])
    assert np.isnan(c2[2])
    flat = _reference_pxpypze(*lep_cols)
    mx = 0.5 * np.array([40.0, 70.0, 30.0, 10.0]) * np.cos([0.1, 2.0, -1.0, 3.0])
    my = 0.5 * np.array([40.0, 70.0, 30.0, 10.0]) * np.sin([0.1, 2.0, -1.0, 3.0])
    idx1, idx2 = np.array([0, 2, 5]), np.array([1, 3, 6])
    ev = np.array([0, 1, 3])
    l1 = [c[idx1] for c in flat]
    l2 = [c[idx2] for c in flat]
    n1 = obs.neutrino_four_vector(mx[ev], my[ev], obs.neutrino_pz(*l1, mx[ev], my[ev]))
    n2 = obs.neutrino_four_vector(mx[ev], my[ev], obs.neutrino_pz(*l2, mx[ev], my[ev]))
    w1 = [a + b for a, b in zip(l1, n1, strict=True)]
    w2 = [a + b for a, b in zip(l2, n2, strict=True)]
    frame = [a + b for a, b in zip(w1, w2, strict=True)]
    _cos_close(c1[ev], _vector_cos_theta_star(l1, w1, frame))
    _cos_close(c2[ev], _vector_cos_theta_star(l2, w2, frame))
    with pytest.raises(ValueError, match="exactly one"):
        obs.lepton_pair_cos_theta_star(leptons)
    with pytest.raises(ValueError, match="exactly one"):
        obs.lepton_pair_cos_theta_star(leptons, neutrinos=leptons, met=met)


def test_wh_cos_delta_plus(rng):
    lep_counts = np.array([1, 1, 0, 2, 1])
    b_counts = np.array([2, 1, 2, 3, 2])
    lep_cols = _random_candidates(rng, lep_counts)
    b_cols = _random_candidates(rng, b_counts, mass=10.0)
    leptons = _candidates(*lep_cols, lep_counts)
    bjets = _candidates(*b_cols, b_counts)
    met_pt = np.array([50.0, 60.0, 20.0, 35.0, 80.0])
    met_phi = np.array([0.3, -2.0, 1.0, 2.5, -0.7])
    met = ak.zip({"pt": met_pt, "phi": met_phi}, with_name="MissingET")
    lep_flat = _reference_pxpypze(*lep_cols)
    b_flat = _reference_pxpypze(*b_cols)
    ev = np.array([0, 3, 4])
    li = np.array([0, 2, 4])
    bi = np.array([0, 5, 8])
    lep = [c[li] for c in lep_flat]
    higgs = [c[bi] + c[bi + 1] for c in b_flat]
    mx, my = met_pt[ev] * np.cos(met_phi[ev]), met_pt[ev] * np.sin(met_phi[ev])
    for rule in obs.NEUTRINO_PZ_RULES:
        got = obs.wh_cos_delta_plus(leptons, met, bjets, rule=rule)
        assert np.isnan(got[[1, 2]]).all()
        pz = obs.neutrino_pz(*lep, mx, my, rule=rule, **_higgs_kwargs(higgs))
        nu = obs.neutrino_four_vector(mx, my, pz)
        _cos_close(got[ev], _vector_cos_delta_plus(lep, nu, higgs))
    # a per-event lepton (None allowed) and a fill value
    got = obs.wh_cos_delta_plus(ak.firsts(leptons), met, bjets, fill_value=-9.0)
    np.testing.assert_array_equal(got[[1, 2]], -9.0)
    with pytest.raises(ValueError, match="min_abs, wh_beta"):
        obs.wh_cos_delta_plus(leptons, met, bjets, rule="closest")


def test_public_api_is_listed():
    for name in obs.__all__:
        assert hasattr(obs, name), name
