"""Reference tests for the numba kernels of ewpolar.observables (flat-array API).

Each kernel is checked against an independent implementation: the `vector`
library (float64) where its own rounding is far below the tolerance, and an
explicit 4x4 Lorentz matrix evaluated in 60-digit decimal arithmetic for
extreme boosts, where any float64 evaluation of the reference would itself be
off by about γ² · 1e-16. Quantities built by construction (a generated decay
angle, a W mass) are compared with the value that was put in.

Tolerances: 1e-9 relative. Components of a boosted four-vector are compared
relative to its energy (a component can be near zero while the vector is not,
and an error of one component is set by the size of the vector). Cosines live
in [-1, 1]: against vector's float64 chain they must agree to 1e-11 absolute,
against 60-digit arithmetic to rtol 1e-9 plus atol 1e-12.
"""

from __future__ import annotations

import decimal
import math

import numpy as np
import pytest
import vector
from ewpolar import observables as obs
from ewpolar.observables import kernels
from lorentz_reference import (
    DEC,
    MW,
    RTOL,
    add,
    arrays,
    boost_close,
    boost_out_of,
    columns,
    cos_close,
    cos_close_vector,
    d,
    dec_boost,
    dec_cos_delta_plus,
    dec_cos_theta_star,
    frame_with_gamma,
    massive,
    physics_md_roots,
    two_body_decay,
    unit_vectors,
    vec,
    vector_cos_delta_plus,
    vector_cos_theta_star,
    w_decays,
)

# ---------------------------------------------------------------------------
# boost_to_rest_frame
# ---------------------------------------------------------------------------


def test_boost_matches_vector(rng):
    n = 2000
    p = massive(rng, n, rng.uniform(0, 50, n), 200.0)
    frame = frame_with_gamma(rng, n, rng.uniform(1, 200, n), rng.uniform(1.0, 100.0, n))
    got = obs.boost_to_rest_frame(*p, *frame)
    boost_close(got, arrays(vec(p).boostCM_of_p4(vec(frame))))
    # the same boost as a velocity: −β of the frame
    boost_close(got, arrays(vec(p).boost_beta3(-vec(frame).to_beta3())))
    # and back out of the frame with vector's boost_p4
    boost_close(arrays(vec(got).boost_p4(vec(frame))), p)


@pytest.mark.parametrize("gamma", [1e2, 1e4, 1e6])
def test_boost_extreme_gamma_against_decimal(rng, gamma):
    n = 40
    frame = frame_with_gamma(rng, n, 91.2, gamma)
    # decay products moving with the frame (worst cancellation) and unrelated vectors
    daughter, _ = two_body_decay(rng, frame, 0.0, 0.0)
    other = massive(rng, n, 1.0, 100.0)
    for p in (daughter, other):
        got = obs.boost_to_rest_frame(*p, *frame)
        ref = [[float(c) for c in dec_boost(*columns(p, frame, i=i))] for i in range(n)]
        boost_close(got, np.array(ref).T)


def test_boost_frame_at_rest_is_identity(rng):
    p = massive(rng, 100, 3.0, 50.0)
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
    p = massive(rng, 50, 1.0, 50.0)
    frame = frame_with_gamma(rng, 50, 80.0, 3.0)
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
    p = [x.reshape(5, 4) for x in massive(rng, 20, 1.0, 50.0)]
    got = obs.cos_theta_star(*p, *p, 0.0, 0.0, 0.0, 1.0)
    assert got.shape == (5, 4)
    with pytest.raises(ValueError, match="broadcast"):
        obs.pair_mass(np.ones(3), 0, 0, 1, np.ones(4), 0, 0, 1)


# ---------------------------------------------------------------------------
# cos_theta_star
# ---------------------------------------------------------------------------


def test_cos_theta_star_matches_vector_in_ww_frame(rng):
    n = 2000
    l1, n1 = w_decays(rng, n)
    l2, n2 = w_decays(rng, n)
    w1, w2 = add(l1, n1), add(l2, n2)
    frame = add(w1, w2)
    for lep, w in ((l1, w1), (l2, w2)):
        ref = vector_cos_theta_star(vec(lep), vec(w), vec(frame))
        cos_close_vector(obs.cos_theta_star(*lep, *w, *frame), ref)


def test_cos_theta_star_lab_frame_matches_vector(rng):
    n = 1000
    lep, nu = w_decays(rng, n)
    w = add(lep, nu)
    lab = (np.zeros(n), np.zeros(n), np.zeros(n), np.ones(n))
    ref = vector_cos_theta_star(vec(lep), vec(w), vec(lab))
    cos_close_vector(obs.cos_theta_star(*lep, *w, *lab), ref)
    cos_close_vector(obs.cos_theta_star(*lep, *w, 0.0, 0.0, 0.0, 1.0), ref)


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
    n_hat = unit_vectors(rng, n)
    u, v = _orthonormal_basis(n_hat)
    p_star = MW / 2
    lep_w = p_star * (cos_gen * n_hat + sin_gen * (np.cos(phi) * u + np.sin(phi) * v))
    lep_w = (*lep_w, np.full(n, p_star))
    m_f = rng.uniform(200.0, 2000.0, n)
    p_w = 0.5 * np.sqrt(m_f**2 - (2 * MW) ** 2)  # W pair back to back in F
    w_f = (*(p_w * n_hat), np.sqrt(p_w**2 + MW**2))
    w2_f = (*(-p_w * n_hat), np.sqrt(p_w**2 + MW**2))
    lep_f = boost_out_of(lep_w, w_f)
    frame_lab = frame_with_gamma(rng, n, m_f, rng.uniform(1.0, 20.0, n))
    lep, w1, w2 = (boost_out_of(x, frame_lab) for x in (lep_f, w_f, w2_f))
    frame = add(w1, w2)
    got = obs.cos_theta_star(*lep, *w1, *frame)
    np.testing.assert_allclose(got, cos_gen, rtol=RTOL, atol=1e-10)
    for i in np.argsort(np.abs(got - cos_gen))[-5:]:  # the worst ones, against the exact value
        ref = dec_cos_theta_star(*columns(lep, w1, frame, i=i))
        cos_close(got[i], float(ref))


@pytest.mark.parametrize("gamma", [1e3, 1e4, 1e5])
def test_cos_theta_star_extreme_boost_against_decimal(rng, gamma):
    """The whole WW event flies with Lorentz factor γ in the lab."""
    n = 25
    l1, n1 = w_decays(rng, n)
    l2, n2 = w_decays(rng, n)
    w1 = add(l1, n1)
    frame = add(w1, add(l2, n2))
    boost = frame_with_gamma(rng, n, 1.0, gamma)
    lep, w, frame = (boost_out_of(x, boost) for x in (l1, w1, frame))
    got = obs.cos_theta_star(*lep, *w, *frame)
    ref = [float(dec_cos_theta_star(*columns(lep, w, frame, i=i))) for i in range(n)]
    cos_close(got, ref)


def test_cos_theta_star_invariant_under_boost_of_whole_event(rng):
    n = 500
    lep, nu = w_decays(rng, n)
    w = add(lep, nu)
    frame = add(massive(rng, n, 300.0, 200.0), w)
    before = obs.cos_theta_star(*lep, *w, *frame)
    boost = frame_with_gamma(rng, n, 1.0, 20.0)
    moved = [boost_out_of(x, boost) for x in (lep, w, frame)]
    cos_close(obs.cos_theta_star(*moved[0], *moved[1], *moved[2]), before)


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


def _beta_z(px, py, pz, e):
    m2 = e**2 - px**2 - py**2 - pz**2
    return pz / np.sqrt(pz**2 + m2)


def _higgs_kwargs(higgs):
    return dict(zip(("h_px", "h_py", "h_pz", "h_e"), higgs, strict=True))


@pytest.mark.parametrize("lepton_mass", [0.0, 0.1056583755])
def test_neutrino_pz_solves_w_mass(rng, lepton_mass):
    n = 3000
    lep, nu = w_decays(rng, n, lepton_mass=lepton_mass)
    higgs = massive(rng, n, 125.0, 200.0)
    for rule, extra in (("min_abs", {}), ("wh_beta", _higgs_kwargs(higgs))):
        pz = obs.neutrino_pz(*lep, nu[0], nu[1], rule=rule, **extra)
        nu_rec = obs.neutrino_four_vector(nu[0], nu[1], pz)
        np.testing.assert_allclose((vec(lep) + vec(nu_rec)).mass, MW, rtol=RTOL)


def test_neutrino_pz_rules_pick_promised_root(rng):
    n = 3000
    lep, nu = w_decays(rng, n)
    higgs = massive(rng, n, 125.0, 300.0)
    _, _, r_plus, r_minus = physics_md_roots(lep, nu[0], nu[1])
    scale = 1e-9 * (1.0 + np.abs(r_plus) + np.abs(r_minus))

    got = obs.neutrino_pz(*lep, nu[0], nu[1], rule="min_abs")
    want = np.where(np.abs(r_plus) < np.abs(r_minus), r_plus, r_minus)
    np.testing.assert_array_less(np.abs(got - want), scale)

    got = obs.neutrino_pz(*lep, nu[0], nu[1], rule="wh_beta", **_higgs_kwargs(higgs))
    b_h = _beta_z(*higgs)
    dist = []
    for r in (r_plus, r_minus):
        w = add(lep, obs.neutrino_four_vector(nu[0], nu[1], r))
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
    a, delta, _, _ = physics_md_roots(lep, met_x, met_y)
    assert (delta < 0).all()
    assert (obs.mt_w(*lep, met_x, met_y) > MW).all()
    for rule, extra in (("min_abs", {}), ("wh_beta", _higgs_kwargs((1.0, 2.0, 50.0, 200.0)))):
        got = obs.neutrino_pz(*lep, met_x, met_y, rule=rule, **extra)
        np.testing.assert_allclose(got, a, rtol=RTOL, atol=1e-9)


def test_neutrino_pz_negative_mu_returns_a():
    """μ ≤ 0 (lepton against a large missing p_T) always has Δ < 0: A is returned."""
    lep = (50.0, 0.0, 20.0, math.hypot(50.0, 20.0))
    met_x, met_y = -400.0, 0.0  # μ = m_W²/2 − 20000 < 0
    a, delta, _, _ = physics_md_roots(lep, met_x, met_y)
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


def _wh_events(rng, n):
    lep, nu = w_decays(rng, n)
    higgs = massive(rng, n, 125.0, 150.0)
    return lep, nu, higgs


def test_cos_delta_plus_matches_vector(rng):
    lep, nu, higgs = _wh_events(rng, 2000)
    ref = vector_cos_delta_plus(vec(lep), vec(nu), vec(higgs))
    cos_close_vector(obs.cos_delta_plus(*lep, *nu, *higgs), ref)


@pytest.mark.parametrize("gamma", [1e3, 1e5])
def test_cos_delta_plus_fast_w_against_decimal(rng, gamma):
    n = 25
    w = frame_with_gamma(rng, n, MW, gamma)
    lep, nu = two_body_decay(rng, w, 0.0, 0.0)
    higgs = massive(rng, n, 125.0, 150.0)
    got = obs.cos_delta_plus(*lep, *nu, *higgs)
    ref = [float(dec_cos_delta_plus(*columns(lep, nu, higgs, i=i))) for i in range(n)]
    cos_close(got, ref)


def test_cos_delta_plus_is_cp_odd(rng):
    """Mirroring every momentum (p -> -p, E kept) flips the sign of cos δ⁺."""
    lep, nu, higgs = _wh_events(rng, 2000)
    mirror = [(-v[0], -v[1], -v[2], v[3]) for v in (lep, nu, higgs)]
    before = obs.cos_delta_plus(*lep, *nu, *higgs)
    after = obs.cos_delta_plus(*mirror[0], *mirror[1], *mirror[2])
    cos_close(after, -before)
    assert (np.abs(before) > 0.1).mean() > 0.5


def test_cos_delta_plus_is_invariant_under_beam_rotations(rng):
    lep, nu, higgs = _wh_events(rng, 2000)
    before = obs.cos_delta_plus(*lep, *nu, *higgs)
    for angle in (0.3, 2.0, -2.9):
        rotated = [arrays(vec(v).rotateZ(angle)) for v in (lep, nu, higgs)]
        cos_close(obs.cos_delta_plus(*rotated[0], *rotated[1], *rotated[2]), before)


def test_cos_delta_plus_degenerate(rng):
    lep, nu, _ = _wh_events(rng, 10)
    w = add(lep, nu)
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
    a = massive(rng, 2000, rng.uniform(0, 30, 2000), 300.0)
    b = massive(rng, 2000, 0.0, 300.0)
    ref = (vec(a) + vec(b)).mass
    np.testing.assert_allclose(obs.pair_mass(*a, *b), ref, rtol=RTOL)
    assert obs.mjj is obs.pair_mass
    assert obs.mll is obs.pair_mass
    # collinear massless pair: m = 0 exactly, not nan from a rounding-negative m²
    assert obs.mll(3.0, 4.0, 12.0, 13.0, 6.0, 8.0, 24.0, 26.0) == 0.0


def test_rapidity_and_delta_y_match_vector(rng):
    a = massive(rng, 2000, rng.uniform(0, 30, 2000), 300.0)
    b = massive(rng, 2000, 5.0, 300.0)
    np.testing.assert_allclose(obs.rapidity(*a), vec(a).rapidity, rtol=RTOL, atol=1e-12)
    dy = vec(a).rapidity - vec(b).rapidity
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
        ref = ((d(e) + d(pz)) / (d(e) - d(pz))).ln() / 2
    np.testing.assert_allclose(obs.rapidity(3.0, 4.0, pz, e), float(ref), rtol=1e-14)


def test_delta_phi_matches_vector(rng):
    a = massive(rng, 2000, 1.0, 100.0)
    b = massive(rng, 2000, 1.0, 100.0)
    ref = np.abs(vec(a).deltaphi(vec(b)))
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
    lep = massive(rng, 2000, 0.0, 100.0)
    met = rng.normal(0, 60, (2, 2000))
    pt, et = np.hypot(lep[0], lep[1]), np.hypot(*met)
    dphi = np.arctan2(lep[1], lep[0]) - np.arctan2(met[1], met[0])
    ref = np.sqrt(4 * pt * et * np.sin(dphi / 2) ** 2)  # 1 − cos Δφ = 2 sin²(Δφ/2), no cancellation
    np.testing.assert_allclose(obs.mt_w(*lep, *met), ref, rtol=RTOL)
    # Jacobian edge of a W decay at rest in the transverse plane: m_T = m_W
    np.testing.assert_allclose(obs.mt_w(MW / 2, 0.0, 0.0, MW / 2, -MW / 2, 0.0), MW, rtol=1e-15)
    assert obs.mt_w(30.0, 40.0, 0.0, 50.0, 3.0, 4.0) == 0.0
    # a W decay: m_T <= m_W
    l1, n1 = w_decays(rng, 2000)
    assert (obs.mt_w(*l1, n1[0], n1[1]) <= MW * (1 + 1e-12)).all()


def test_mt_ww_matches_definition(rng):
    l1 = massive(rng, 2000, 0.0, 100.0)
    l2 = massive(rng, 2000, 0.1, 100.0)
    met = rng.normal(0, 80, (2, 2000))
    ll = vec(l1) + vec(l2)
    et_ll = np.sqrt(ll.pt**2 + ll.mass**2)
    et = np.hypot(*met)
    ref = np.sqrt((et_ll + et) ** 2 - (ll.px + met[0]) ** 2 - (ll.py + met[1]) ** 2)
    np.testing.assert_allclose(obs.mt_ww(*l1, *l2, *met), ref, rtol=RTOL)
    # no missing momentum and p_T^ℓℓ = 0: m_T reduces to m_ℓℓ
    got = obs.mt_ww(10.0, 0.0, 5.0, math.hypot(10, 5), -10.0, 0.0, 5.0, math.hypot(10, 5), 0.0, 0.0)
    np.testing.assert_allclose(got, 20.0, rtol=1e-14)


def test_zeppenfeld_matches_definition(rng):
    lep = massive(rng, 1000, 0.0, 100.0)
    j1 = massive(rng, 1000, 10.0, 300.0)
    j2 = massive(rng, 1000, 10.0, 300.0)
    y_l, y1, y2 = (vec(v).rapidity for v in (lep, j1, j2))
    ref = np.abs(y_l - (y1 + y2) / 2) / np.abs(y1 - y2)
    np.testing.assert_allclose(obs.zeppenfeld(*lep, *j1, *j2), ref, rtol=RTOL)
    jet_a = (30.0, 0.0, 30.0 * math.sinh(2.0), 30.0 * math.cosh(2.0))
    jet_b = (30.0, 0.0, -30.0 * math.sinh(2.0), 30.0 * math.cosh(2.0))
    assert obs.zeppenfeld(20.0, 0.0, 0.0, 20.0, *jet_a, *jet_b) == 0.0
    np.testing.assert_allclose(obs.zeppenfeld(*jet_a, *jet_a, *jet_b), 0.5, rtol=1e-12)
    assert obs.zeppenfeld(20.0, 0.0, 0.0, 20.0, *jet_a, *jet_a) == np.inf


def test_r_pt_matches_definition(rng):
    vs = [massive(rng, 500, 1.0, 100.0) for _ in range(4)]
    pts = [vec(v).pt for v in vs]
    np.testing.assert_allclose(
        obs.r_pt(*vs[0], *vs[1], *vs[2], *vs[3]), pts[0] * pts[1] / (pts[2] * pts[3]), rtol=RTOL
    )
    assert obs.r_pt(*vs[0], *vs[1], 0.0, 0.0, 10.0, 10.0, *vs[3])[0] == np.inf


def test_mt_tot_matches_definition(rng):
    n = 1000
    lep, nu = w_decays(rng, n)
    b1, b2 = two_body_decay(rng, massive(rng, n, 125.0, 150.0), 4.8, 4.8)
    vs = [vec(v) for v in (lep, b1, b2)]
    et_sum = sum(np.sqrt(v.pt**2 + v.mass**2) for v in vs) + np.hypot(nu[0], nu[1])
    px = sum(v.px for v in vs) + nu[0]
    py = sum(v.py for v in vs) + nu[1]
    ref = np.sqrt(et_sum**2 - px**2 - py**2)
    got = obs.mt_tot(*lep, *b1, *b2, nu[0], nu[1])
    np.testing.assert_allclose(got, ref, rtol=RTOL)
    # m_T^tot never exceeds the invariant mass of the system with the true neutrino
    m = (vs[0] + vec(nu) + vs[1] + vs[2]).mass
    assert (got <= m * (1 + 1e-12)).all()


# ---------------------------------------------------------------------------
# column conversions
# ---------------------------------------------------------------------------


def _pt_eta_phi_mass(rng, n):
    return (rng.exponential(60.0, n) + 20.0, rng.uniform(-2.5, 2.5, n),
            rng.uniform(-np.pi, np.pi, n), rng.uniform(0.0, 10.0, n))


def test_ptetaphim_to_pxpypze_matches_vector(rng):
    cols = _pt_eta_phi_mass(rng, 1000)
    for dtype in (np.float64, np.float32):
        typed = [c.astype(dtype) for c in cols]
        ref = vector.array(dict(zip(("pt", "eta", "phi", "mass"),
                                    (c.astype(np.float64) for c in typed), strict=True)))
        got = obs.ptetaphim_to_pxpypze(*typed)
        for g, r in zip(got, arrays(ref), strict=True):
            assert g.dtype == np.float64
            np.testing.assert_allclose(g, r, rtol=1e-12)


def test_nth_pxpypze_flat_picks_the_nth_object(rng):
    counts = np.array([2, 0, 3, 1])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    cols = _pt_eta_phi_mass(rng, int(counts.sum()))
    flat = obs.ptetaphim_to_pxpypze(*cols)
    for n in (0, 1, 2):
        got = obs.nth_pxpypze_flat(offsets, *cols, n)
        has = counts > n
        for g, f in zip(got, flat, strict=True):
            np.testing.assert_array_equal(g[has], f[offsets[:-1][has] + n])
            assert np.isnan(g[~has]).all()
    # float32 columns: the numbers of the float32 values, as float64
    got32 = obs.nth_pxpypze_flat(offsets, *(c.astype(np.float32) for c in cols), 0)
    ref32 = obs.ptetaphim_to_pxpypze(*(c.astype(np.float32) for c in cols))
    np.testing.assert_array_equal(got32[3][counts > 0], ref32[3][offsets[:-1][counts > 0]])
