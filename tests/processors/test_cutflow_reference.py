"""Cutflows of the processors against a selection written here from scratch.

The reference reads the branches with plain uproot and selects with numpy and
awkward only (no coffea behaviours, no selections/ or ewpolar.observables code),
following the region definitions of the configs and docs/physics.md.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from ewpolar.selections.cutflow import by_cut

Z_MASS = 91.1876

BRANCHES = [
    "genWeight",
    "Electron_pt", "Electron_eta", "Electron_phi", "Electron_mass", "Electron_charge",
    "Electron_cutBased", "Electron_pfRelIso03_all",
    "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "Muon_tightId",
    "Muon_pfRelIso04_all",
    "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_jetId", "Jet_btagDeepFlavB",
    "MET_pt", "MET_phi",
]  # fmt: skip


def read(files: dict[str, str], extra: tuple[str, ...] = ()) -> ak.Array:
    parts = [uproot.open(f)[tree].arrays([*BRANCHES, *extra], library="ak")
             for f, tree in files.items()]
    return ak.concatenate(parts)


def four_momentum(pt, eta, phi, mass):
    pt, eta, phi, mass = (np.asarray(x, dtype=np.float64) for x in (pt, eta, phi, mass))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)


def invariant_mass(a, b):
    e, px, py, pz = a[3] + b[3], a[0] + b[0], a[1] + b[1], a[2] + b[2]
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def leading(coll: ak.Array, n: int, field: str) -> np.ndarray:
    vals = ak.pad_none(coll[field], n + 1, axis=1)[:, n]
    return np.asarray(ak.to_numpy(ak.fill_none(vals, np.nan)), dtype=np.float64)


def p4_of(coll: ak.Array, n: int):
    return four_momentum(*(leading(coll, n, f) for f in ("pt", "eta", "phi", "mass")))


def reference_objects(a: ak.Array, objects) -> tuple[ak.Array, ak.Array, ak.Array]:
    """Leptons, jets and b-jets as in the config's object definitions."""
    e, m = objects.electron, objects.muon
    ele_ok = ((a.Electron_pt > e.pt_min) & (abs(a.Electron_eta) < e.eta_max)
              & (a.Electron_cutBased >= e.id_min) & (a.Electron_pfRelIso03_all <= e.iso_max))
    mu_ok = ((a.Muon_pt > m.pt_min) & (abs(a.Muon_eta) < m.eta_max) & a.Muon_tightId
             & (a.Muon_pfRelIso04_all <= m.iso_max))
    ele = ak.zip({"pt": a.Electron_pt, "eta": a.Electron_eta, "phi": a.Electron_phi,
                  "mass": a.Electron_mass, "charge": a.Electron_charge,
                  "flavour": ak.full_like(a.Electron_charge, 11)})[ele_ok]
    mu = ak.zip({"pt": a.Muon_pt, "eta": a.Muon_eta, "phi": a.Muon_phi, "mass": a.Muon_mass,
                 "charge": a.Muon_charge, "flavour": ak.full_like(a.Muon_charge, 13)})[mu_ok]
    leptons = ak.concatenate([ele, mu], axis=1)
    leptons = leptons[ak.argsort(leptons.pt, axis=1, ascending=False)]

    jets = ak.zip({"pt": a.Jet_pt, "eta": a.Jet_eta, "phi": a.Jet_phi, "mass": a.Jet_mass,
                   "btag": a.Jet_btagDeepFlavB, "id": a.Jet_jetId})
    pairs = ak.cartesian({"j": jets, "l": leptons}, axis=1, nested=True)
    dphi = np.abs(pairs.j.phi - pairs.l.phi)
    dphi = ak.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
    dr = np.sqrt((pairs.j.eta - pairs.l.eta) ** 2 + dphi**2)
    clean = jets[ak.all(dr >= objects.overlap_dr, axis=2) & (jets.id >= objects.jet.id_min)]
    clean = clean[ak.argsort(clean.pt, axis=1, ascending=False)]
    sel_jets = clean[(clean.pt > objects.jet.pt_min) & (abs(clean.eta) < objects.jet.eta_max)]
    b = objects.bjet
    bjets = clean[(clean.pt > b.pt_min) & (abs(clean.eta) < b.eta_max) & (clean.btag >= b.score_min)]
    return leptons, sel_jets, bjets


def rapidity(p4):
    return 0.5 * np.log((p4[3] + p4[2]) / (p4[3] - p4[2]))


def ssww_signal_reference(a: ak.Array, config) -> list[tuple[str, np.ndarray]]:
    """Cumulative masks of the ssWW signal region, cut by cut."""
    r = config.regions["signal"]
    leptons, jets, bjets = reference_objects(a, config.objects)
    n_lep = np.asarray(ak.num(leptons))
    q1, q2 = leading(leptons, 0, "charge"), leading(leptons, 1, "charge")
    l1, l2 = p4_of(leptons, 0), p4_of(leptons, 1)
    mll = invariant_mass(l1, l2)
    deta = leading(leptons, 0, "eta") - leading(leptons, 1, "eta")
    dphi = np.abs(leading(leptons, 0, "phi") - leading(leptons, 1, "phi"))
    dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
    ee = (leading(leptons, 0, "flavour") == 11) & (leading(leptons, 1, "flavour") == 11)
    j1, j2 = p4_of(jets, 0), p4_of(jets, 1)
    with np.errstate(invalid="ignore"):
        dy = np.abs(rapidity(j1) - rapidity(j2))
    cuts = [
        ("n_leptons", n_lep == 2),
        ("same_sign", q1 == q2),
        ("mll", mll > r.mll_min),
        ("dr_ll", np.hypot(deta, dphi) >= r.dr_ll_min),
        ("z_veto_ee", ~(ee & (np.abs(mll - Z_MASS) <= r.zveto_ee))),
        ("met", np.asarray(a.MET_pt) > r.met_min),
        ("jet1_pt", leading(jets, 0, "pt") > r.jet1_pt_min),
        ("jet2_pt", leading(jets, 1, "pt") > r.jet2_pt_min),
        ("mjj", invariant_mass(j1, j2) >= r.mjj_min),
        ("dy_jj", dy >= r.dy_jj_min),
        ("n_bjets", np.asarray(ak.num(bjets)) <= r.n_bjets_max),
    ]
    return _cumulative(cuts)


def wh_signal_reference(a: ak.Array, config) -> list[tuple[str, np.ndarray]]:
    """Cumulative masks of the WH signal region, cut by cut."""
    r = config.regions["signal"]
    leptons, jets, bjets = reference_objects(a, config.objects)
    n_b = np.asarray(ak.num(bjets))
    mbb = invariant_mass(p4_of(bjets, 0), p4_of(bjets, 1))
    cuts = [
        ("n_leptons", np.asarray(ak.num(leptons)) == 1),
        ("met", np.asarray(a.MET_pt) > r.met_min),
        ("n_jets", np.asarray(ak.num(jets)) <= r.n_jets_max),
        ("n_bjets", (n_b >= r.n_bjets_min) & (n_b <= r.n_bjets_max)),
        ("mbb", (mbb > r.mbb_min) & (mbb < r.mbb_max)),
    ]
    return _cumulative(cuts)


def _cumulative(cuts):
    out, mask = [], None
    for name, m in cuts:
        m = np.asarray(m, dtype=bool)
        mask = m if mask is None else mask & m
        out.append((name, mask))
    return out


def _check(output, fileset, config, dataset, reference, extra=()):
    a = read(fileset[dataset]["files"], extra)
    meta = fileset[dataset]["metadata"]
    weight = np.asarray(a.genWeight, dtype=np.float64) * (
        meta["xsec_fb"] * config.luminosity_fb / meta["sumw"])
    ref = reference(a, config)
    flow = output["cutflow"][dataset]["signal"]
    assert flow["cuts"] == ["all events", *[name for name, _ in ref]]
    raw, weighted = by_cut(flow), by_cut(flow, "weighted")
    assert raw["all events"] == len(a)
    for name, mask in ref:
        assert raw[name] == int(mask.sum()), name
        assert weighted[name] == pytest.approx(weight[mask].sum(), rel=1e-9, abs=1e-12)
    final = ref[-1][1]
    assert final.sum() > 20, "the toy sample should populate the signal region"
    return a, weight, final


@pytest.mark.parametrize("dataset", ["ssww_TT", "wz"])
def test_ssww_signal_cutflow_matches_reference(ssww_output, ssww_fileset, ssww_config, dataset):
    if dataset == "wz":
        # WZ rarely passes the same-sign selection; only check it counts consistently
        a = read(ssww_fileset[dataset]["files"])
        ref = ssww_signal_reference(a, ssww_config)
        flow = ssww_output["cutflow"][dataset]["signal"]
        assert flow["raw"][1:] == [int(m.sum()) for _, m in ref]
        return
    _check(ssww_output, ssww_fileset, ssww_config, dataset, ssww_signal_reference)


def test_wh_signal_cutflow_matches_reference(wh_output, wh_fileset, wh_config):
    _check(wh_output, wh_fileset, wh_config, "wh", wh_signal_reference)


def test_wh_cp_categories_equal_hand_computed_sums(wh_output, wh_fileset, wh_config):
    """cp_int / cp_quad hold norm × CPWeight_int / CPWeight_quad of the selected events."""
    a, weight, final = _check(wh_output, wh_fileset, wh_config, "wh", wh_signal_reference,
                              extra=("CPWeight_sm", "CPWeight_int", "CPWeight_quad"))
    meta = wh_fileset["wh"]["metadata"]
    norm = meta["xsec_fb"] * wh_config.luminosity_fb / meta["sumw"]
    h = wh_output["hists"]["mbb"][{"dataset": "wh", "region": "signal"}]
    for cat, branch in (("cp_int", "CPWeight_int"), ("cp_quad", "CPWeight_quad")):
        expected = norm * np.asarray(a[branch], dtype=np.float64)[final].sum()
        assert h[{"systematic": cat}].sum(flow=True).value == pytest.approx(expected, rel=1e-9)
    # genWeight is the SM weight: the nominal fill is the c = 0 prediction
    np.testing.assert_allclose(np.asarray(a.CPWeight_sm), np.asarray(a.genWeight), rtol=1e-6)
    nominal = h[{"systematic": "nominal"}].sum(flow=True).value
    assert nominal == pytest.approx(weight[final].sum(), rel=1e-9)
    # the interference is CP-odd: it changes sign between the two halves of Q_l cos(delta+)
    h2 = wh_output["hists"]["q_cos_delta_plus_ptw"][
        {"dataset": "wh", "region": "signal", "systematic": "cp_int"}]
    by_q = h2.project("q_cos_delta_plus").values()
    assert by_q[:3].sum() * by_q[3:].sum() < 0
