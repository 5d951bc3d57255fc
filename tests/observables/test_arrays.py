"""Tests of ewpolar.observables.arrays: observables of whole events from awkward records.

References are built with `vector` directly from the generated pt, eta, phi,
mass columns (vector's own coordinate conversions and boosts, on numpy or
awkward arrays), never through the functions under test. Where a helper and
the flat-array path the processors take must give the same numbers, they are
compared bit for bit.
"""

from __future__ import annotations

import inspect

import awkward as ak
import numpy as np
import pytest
import vector
from coffea.nanoevents.methods import vector as coffea_vector
from ewpolar import observables as obs
from ewpolar.observables import arrays, kernels
from lorentz_reference import (
    RTOL,
    cos_close_vector,
    min_abs_root,
    vector_cos_delta_plus,
    vector_cos_theta_star,
)


def _columns(rng, counts, mass=0.0, pt_scale=60.0):
    total = int(np.sum(counts))
    pt = rng.exponential(pt_scale, total) + 20.0
    eta = rng.uniform(-2.5, 2.5, total)
    phi = rng.uniform(-np.pi, np.pi, total)
    return pt, eta, phi, np.full(total, mass)


def _coffea(cols, counts, dtype=np.float64):
    """Jagged coffea PtEtaPhiMLorentzVector candidates."""
    names = ("pt", "eta", "phi", "mass")
    flat = ak.zip(
        {k: np.asarray(c, dtype=dtype) for k, c in zip(names, cols, strict=True)},
        with_name="PtEtaPhiMLorentzVector",
        behavior=coffea_vector.behavior,
    )
    return ak.unflatten(flat, counts)


def _vector_jagged(cols, counts):
    """The same candidates as jagged vector Momentum4D records (the reference)."""
    names = ("pt", "eta", "phi", "mass")
    return ak.unflatten(vector.zip(dict(zip(names, cols, strict=True))), counts)


def _vector_flat(cols):
    return vector.array(dict(zip(("pt", "eta", "phi", "mass"), cols, strict=True)))


def _four(v):
    return tuple(np.asarray(ak.to_numpy(x), dtype=np.float64) for x in (v.px, v.py, v.pz, v.E))


def _assert_close4(got, ref, rtol=1e-12):
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, r, rtol=rtol)


# ---------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------


def test_to_pxpypze_of_coffea_candidates_matches_vector(rng):
    counts = np.array([2, 0, 3, 1])
    cols = _columns(rng, counts, mass=0.105)
    for dtype in (np.float64, np.float32):
        rounded = [np.asarray(c, dtype=dtype).astype(np.float64) for c in cols]
        got = obs.to_pxpypze(_coffea(cols, counts, dtype=dtype))
        _assert_close4(got, _four(_vector_flat(rounded)))
        # the numbers of the flat-column conversion the selections use, bit for bit
        flat = obs.ptetaphim_to_pxpypze(*(np.asarray(c, dtype=dtype) for c in cols))
        for g, f in zip(got, flat, strict=True):
            np.testing.assert_array_equal(g, f)


def test_to_pxpypze_of_one_record_per_event_with_none(rng):
    counts = np.array([2, 0, 3, 1])
    cols = _columns(rng, counts, mass=0.105)
    lead = ak.firsts(_coffea(cols, counts))
    got = obs.to_pxpypze(lead)
    ref = _four(_vector_flat(cols))
    for g, r in zip(got, ref, strict=True):
        assert np.isnan(g[1])
        np.testing.assert_allclose(g[[0, 2, 3]], r[[0, 2, 5]], rtol=1e-12)


@pytest.mark.parametrize(
    "names",
    [
        ("pt", "eta", "phi", "mass"),  # stored by vector as rho, eta, phi, tau
        ("px", "py", "pz", "E"),  # stored as x, y, z, t
        ("pt", "phi", "pz", "E"),  # rho, phi, z, t: converted by vector itself
        ("px", "py", "eta", "mass"),  # x, y, eta, tau: converted by vector itself
    ],
)
def test_to_pxpypze_of_vector_records(rng, names):
    counts = np.array([1, 3, 0, 2])
    ref_vectors = _vector_jagged(_columns(rng, counts, mass=4.8), counts)
    ref_flat = ak.flatten(ref_vectors)
    values = {
        "pt": ref_flat.pt, "eta": ref_flat.eta, "phi": ref_flat.phi, "mass": ref_flat.mass,
        "px": ref_flat.px, "py": ref_flat.py, "pz": ref_flat.pz, "E": ref_flat.E,
    }
    records = ak.unflatten(vector.zip({k: values[k] for k in names}), counts)
    _assert_close4(obs.to_pxpypze(records), _four(ref_flat), rtol=1e-9)


def test_to_pxpypze_errors():
    with pytest.raises(TypeError, match="fields"):
        obs.to_pxpypze(ak.zip({"a": [1.0]}))
    with pytest.raises(ValueError, match="dimensions"):
        obs.to_pxpypze(ak.Array([[[{"px": 1.0, "py": 0.0, "pz": 0.0, "E": 2.0}]]]))


def test_nth_pxpypze_matches_flat_columns_and_vector(rng):
    counts = np.array([2, 0, 1, 3])
    cols = _columns(rng, counts, mass=1.0)
    cands = _coffea(cols, counts)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    ref = _vector_jagged(cols, counts)
    for n in (0, 1, 2):
        got = obs.nth_pxpypze(cands, n)
        has = counts > n
        # what the selections compute from offsets and columns, bit for bit
        flat = obs.nth_pxpypze_flat(offsets, *cols, n)
        for g, f in zip(got, flat, strict=True):
            np.testing.assert_array_equal(g, f)
            assert np.isnan(g[~has]).all()
        _assert_close4(tuple(g[has] for g in got), _four(ref[has][:, n]))
    with pytest.raises(ValueError, match="jagged"):
        obs.nth_pxpypze(ak.firsts(cands))


def test_to_momentum4d_keeps_structure_and_gives_vector_behaviour(rng):
    counts = np.array([2, 0, 3])
    cols = _columns(rng, counts, mass=0.105)
    cands = _coffea(cols, counts)
    v = obs.to_momentum4d(cands)
    assert ak.num(v).tolist() == counts.tolist()
    np.testing.assert_allclose(ak.flatten(v.mass), cols[3], rtol=1e-6)
    # the four-vectors are those of the kernels, exactly
    for g, f in zip(_four(ak.flatten(v)), obs.to_pxpypze(cands), strict=True):
        np.testing.assert_array_equal(g, f)
    ref = _vector_jagged(cols, counts)
    np.testing.assert_allclose(ak.flatten(v.deltaR(ref)), 0.0, atol=1e-12)
    # from (px, py, pz, e) arrays, e.g. the leading candidate of each event
    lead = obs.to_momentum4d(obs.nth_pxpypze(cands, 0))
    assert len(lead) == len(counts)
    np.testing.assert_allclose(lead.pt[[0, 2]], cols[0][[0, 2]], rtol=1e-12)
    assert np.isnan(lead.E[1])


# ---------------------------------------------------------------------------
# ssWW: cos θ* of the lepton pair
# ---------------------------------------------------------------------------


def _leading_two(jagged, keep):
    return jagged[keep][:, 0], jagged[keep][:, 1]


def test_lepton_pair_cos_theta_star_matches_vector(rng):
    counts = np.array([2, 1, 0, 2, 3, 2])
    lep_cols, nu_cols = _columns(rng, counts), _columns(rng, counts)
    c1, c2 = obs.lepton_pair_cos_theta_star(_coffea(lep_cols, counts),
                                            _coffea(nu_cols, counts))
    assert c1.shape == c2.shape == (len(counts),)
    two = counts >= 2
    assert np.isnan(c1[~two]).all()
    assert np.isnan(c2[~two]).all()
    l1, l2 = _leading_two(_vector_jagged(lep_cols, counts), two)
    n1, n2 = _leading_two(_vector_jagged(nu_cols, counts), two)
    w1, w2 = l1 + n1, l2 + n2
    cos_close_vector(c1[two], ak.to_numpy(vector_cos_theta_star(l1, w1, w1 + w2)))
    cos_close_vector(c2[two], ak.to_numpy(vector_cos_theta_star(l2, w2, w1 + w2)))


def test_lepton_pair_cos_theta_star_of_vector_records_is_the_same(rng):
    counts = np.array([2, 3, 2])
    lep_cols, nu_cols = _columns(rng, counts), _columns(rng, counts)
    from_coffea = obs.lepton_pair_cos_theta_star(_coffea(lep_cols, counts),
                                                 _coffea(nu_cols, counts))
    from_vector = obs.lepton_pair_cos_theta_star(_vector_jagged(lep_cols, counts),
                                                 _vector_jagged(nu_cols, counts))
    for a, b in zip(from_coffea, from_vector, strict=True):
        np.testing.assert_array_equal(a, b)


def test_lepton_pair_cos_theta_star_p4_from_met(rng):
    """The MET proxy: each ν gets half of p_T^miss and the smaller-|p_z| root of docs/physics.md §1b."""
    counts = np.array([2, 2, 1, 2])
    lep_cols = _columns(rng, counts)
    met_pt = np.array([40.0, 70.0, 30.0, np.nan])
    met_phi = np.array([0.1, 2.0, -1.0, 3.0])
    mx, my = met_pt * np.cos(met_phi), met_pt * np.sin(met_phi)
    leptons = _coffea(lep_cols, counts)
    c1, c2 = obs.lepton_pair_cos_theta_star_p4(obs.nth_pxpypze(leptons, 0),
                                               obs.nth_pxpypze(leptons, 1), mx, my)
    ok = np.array([True, True, False, False])  # one lepton; no MET
    assert np.isnan(c1[~ok]).all()
    assert np.isnan(c2[~ok]).all()
    l1, l2 = _leading_two(_vector_jagged(lep_cols, counts), ok)
    hx, hy = 0.5 * mx[ok], 0.5 * my[ok]

    def neutrino(lep):
        lep4 = _four(lep)
        pz = min_abs_root(lep4, hx, hy)
        return vector.zip({"px": hx, "py": hy, "pz": pz, "E": np.sqrt(hx**2 + hy**2 + pz**2)})

    w1, w2 = l1 + neutrino(l1), l2 + neutrino(l2)
    # the docs/physics.md root formula cancels in float64, so 1e-9 rather than 1e-11
    for got, lep, w in ((c1, l1, w1), (c2, l2, w2)):
        ref = ak.to_numpy(vector_cos_theta_star(lep, w, w1 + w2))
        np.testing.assert_allclose(got[ok], ref, rtol=RTOL, atol=1e-9)


# ---------------------------------------------------------------------------
# WH: cos δ⁺
# ---------------------------------------------------------------------------


def test_wh_cos_delta_plus_p4_matches_vector(rng):
    lep_counts = np.array([1, 1, 0, 2, 1, 1])
    b_counts = np.array([2, 1, 2, 3, 2, 2])
    leptons = _coffea(lep_cols := _columns(rng, lep_counts), lep_counts)
    bjets = _coffea(b_cols := _columns(rng, b_counts, mass=10.0), b_counts)
    met_pt = np.array([50.0, 60.0, 20.0, 35.0, 80.0, np.nan])
    met_phi = np.array([0.3, -2.0, 1.0, 2.5, -0.7, 0.0])
    mx, my = met_pt * np.cos(met_phi), met_pt * np.sin(met_phi)
    ok = np.array([True, False, False, True, True, False])  # one b-jet; no lepton; no MET
    lep = _vector_jagged(lep_cols, lep_counts)[ok][:, 0]
    b1, b2 = _leading_two(_vector_jagged(b_cols, b_counts), ok)
    higgs = b1 + b2
    args = (obs.nth_pxpypze(leptons, 0), obs.nth_pxpypze(bjets, 0), obs.nth_pxpypze(bjets, 1),
            mx, my)
    for rule in obs.NEUTRINO_PZ_RULES:
        got = obs.wh_cos_delta_plus_p4(*args, rule=rule)
        assert np.isnan(got[~ok]).all()
        h4 = _four(higgs)
        pz = obs.neutrino_pz(*_four(lep), mx[ok], my[ok], rule=rule,
                             h_px=h4[0], h_py=h4[1], h_pz=h4[2], h_e=h4[3])
        nu = vector.zip({"px": mx[ok], "py": my[ok], "pz": pz,
                         "E": np.sqrt(mx[ok] ** 2 + my[ok] ** 2 + pz**2)})
        cos_close_vector(got[ok], ak.to_numpy(vector_cos_delta_plus(lep, nu, higgs)))
    # the default rule is wh_beta
    np.testing.assert_array_equal(obs.wh_cos_delta_plus_p4(*args),
                                  obs.wh_cos_delta_plus_p4(*args, rule="wh_beta"))
    with pytest.raises(ValueError, match="min_abs, wh_beta"):
        obs.wh_cos_delta_plus_p4(*args, rule="closest")


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def test_public_api_is_the_union_of_both_modules():
    assert sorted(obs.__all__) == sorted([*kernels.__all__, *arrays.__all__])
    assert len(set(obs.__all__)) == len(obs.__all__)
    assert not set(kernels.__all__) & set(arrays.__all__)
    for module in (kernels, arrays):
        for name in module.__all__:
            assert getattr(obs, name) is getattr(module, name), name


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("boost_to_rest_frame", "px py pz e f_px f_py f_pz f_e"),
        ("cos_theta_star", "l_px l_py l_pz l_e w_px w_py w_pz w_e f_px f_py f_pz f_e"),
        ("neutrino_pz", "l_px l_py l_pz l_e met_px met_py mw rule"),
        ("cos_delta_plus", "l_px l_py l_pz l_e nu_px nu_py nu_pz nu_e h_px h_py h_pz h_e"),
    ],
)
def test_design_contract_signatures(name, params):
    """The observables API of the design document: names and leading parameters."""
    got = list(inspect.signature(getattr(obs, name)).parameters)
    assert got[: len(params.split())] == params.split()
    if name == "neutrino_pz":
        sig = inspect.signature(obs.neutrino_pz)
        assert sig.parameters["mw"].default == obs.MW_GEV == 80.379
        assert sig.parameters["rule"].default == "min_abs"
