"""Object selection, region cuts and cutflows on a handful of hand-made events."""

from __future__ import annotations

import json
import math

import awkward as ak
import numpy as np
import pytest
import uproot
from coffea.analysis_tools import PackedSelection, Weights
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory
from coffea.processor import accumulate
from ewpolar.core.config import ObjectSelection, Region, load_config
from ewpolar.core.errors import ConfigError
from ewpolar.selections.cutflow import ALL_EVENTS, by_cut, cutflow_counts, plain_cutflow
from ewpolar.selections.objects import build_objects, has_jes_variations
from ewpolar.selections.regions import (
    CUT_ORDER,
    describe_cuts,
    region_cuts,
    region_selection,
    resolve_regions,
)
from ewpolar.selections.variables import EventVariables

PI = math.pi


class HandMadeSchema(NanoAODSchema):
    """NanoAOD schema for files without the cross-reference index branches (jetIdx, ...)."""

    warn_missing_crossrefs = False


def lep(pt, eta, phi, charge, **extra):
    return {"pt": pt, "eta": eta, "phi": phi, "mass": 0.0, "charge": charge, **extra}


def ele(pt, eta, phi, charge, cut_based=4, iso=0.05):
    return lep(pt, eta, phi, charge, pdgId=-11 * charge, cutBased=cut_based, pfRelIso03_all=iso)


def mu(pt, eta, phi, charge, tight=True, iso=0.05):
    return lep(pt, eta, phi, charge, pdgId=-13 * charge, tightId=tight, pfRelIso04_all=iso)


def jet(pt, eta, phi, btag=0.01, jet_id=6, mass=10.0):
    return {"pt": pt, "eta": eta, "phi": phi, "mass": mass, "btagDeepFlavB": btag,
            "jetId": jet_id, "pt_jesTotalUp": 1.1 * pt, "pt_jesTotalDown": 0.9 * pt,
            "mass_jesTotalUp": 1.1 * mass, "mass_jesTotalDown": 0.9 * mass}


VBS_JETS = [jet(120.0, 2.5, 1.0), jet(60.0, -2.0, -2.0)]

#: (electrons, muons, jets, MET pt) per event, and what each event is for
EVENTS = [
    # 0: two same-sign muons, two VBS jets, a jet on top of the leading muon (removed)
    ([], [mu(50, 0.1, 0.0, 1), mu(40, -0.5, 2.0, 1)], [*VBS_JETS, jet(40, 0.1, 0.05)], 50.0),
    # 1: the electron fails the tight identification (cutBased 3 < 4)
    ([ele(50, 0.3, 0.0, -1, cut_based=3)], [mu(40, -0.5, 2.0, -1)], VBS_JETS, 50.0),
    # 2: a non-isolated muon and a non-tight muon
    ([], [mu(50, 0.1, 0.0, 1, iso=0.3), mu(40, 0.5, 2.0, 1, tight=False)], VBS_JETS, 50.0),
    # 3: same-sign ee with m_ee = 90 GeV (Z veto)
    ([ele(45, 0.0, 0.0, 1), ele(45, 0.0, PI, 1)], [], VBS_JETS, 50.0),
    # 4: same-sign μμ with m = 90 GeV (no Z veto for μμ)
    ([], [mu(45, 0.0, 0.0, -1), mu(45, 0.0, PI, -1)], VBS_JETS, 50.0),
    # 5: three leptons with an SFOS ee pair at 90 GeV, low MET
    ([ele(45, 0.0, 0.0, 1), ele(45, 0.0, PI, -1)], [mu(30, 1.0, 1.5, 1)], VBS_JETS, 20.0),
    # 6: one muon; jets: failing jet ID, a b-tagged 25 GeV jet (b-jet, not a jet), a forward one
    ([], [mu(35, 0.0, 0.0, 1)], [jet(80, 0.0, 2.0, jet_id=0), jet(25, 1.0, -1.0, btag=0.9),
                                 jet(50, 4.0, 3.0)], 40.0),
]


def _collection(events, index, fields):
    return ak.Array([[{f: obj[f] for f in fields} for obj in ev[index]] for ev in events])


@pytest.fixture(scope="module")
def nanoaod(tmp_path_factory):
    path = tmp_path_factory.mktemp("sel") / "hand.root"
    ele_f = ["pt", "eta", "phi", "mass", "charge", "pdgId", "cutBased", "pfRelIso03_all"]
    mu_f = ["pt", "eta", "phi", "mass", "charge", "pdgId", "tightId", "pfRelIso04_all"]
    jet_f = list(jet(1, 0, 0))
    n = len(EVENTS)
    data = {
        "run": np.ones(n, dtype=np.uint32),
        "luminosityBlock": np.ones(n, dtype=np.uint32),
        "event": np.arange(n, dtype=np.uint64),
        "genWeight": np.array([1.0, 2.0, 1.0, 1.0, 0.5, 1.0, -1.0], dtype=np.float32),
        "Electron": _collection(EVENTS, 0, ele_f),
        "Muon": _collection(EVENTS, 1, mu_f),
        "Jet": _collection(EVENTS, 2, jet_f),
        "MET": ak.zip({"pt": np.array([e[3] for e in EVENTS], dtype=np.float32),
                       "phi": np.zeros(n, dtype=np.float32)}),
    }
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", {k: v.type if isinstance(v, ak.Array) else v.dtype
                                   for k, v in data.items()})
        tree.extend(data)
    return path


@pytest.fixture
def events(nanoaod):
    return NanoEventsFactory.from_root({str(nanoaod): "Events"}, schemaclass=HandMadeSchema,
                                       mode="virtual").events()


@pytest.fixture(scope="module")
def objects_cfg():
    return load_config("ssww").objects


def test_lepton_selection(events, objects_cfg):
    objs = build_objects(events, objects_cfg)
    assert ak.num(objs.leptons).tolist() == [2, 1, 0, 2, 2, 3, 1]
    # pT-ordered, pdgId from flavour and charge
    assert objs.leptons.pt[5].tolist() == [45, 45, 30]
    assert objs.leptons.pdgId[5].tolist() == [-11, 11, -13] or objs.leptons.pdgId[5].tolist() == [
        11, -11, -13]
    assert objs.leptons.pdgId[4].tolist() == [13, 13]


def test_jet_selection_overlap_id_and_btag(events, objects_cfg):
    objs = build_objects(events, objects_cfg)
    n_jets = ak.num(objs.jets).tolist()
    assert n_jets[0] == 2  # the jet at ΔR = 0.05 from the leading muon is removed
    assert n_jets[6] == 1  # jet ID 0 fails; 25 GeV < 30 GeV; the forward 50 GeV jet passes
    assert ak.num(objs.bjets).tolist()[6] == 1  # the 25 GeV b-tagged jet is a b-jet
    assert ak.num(objs.bjets).tolist()[:6] == [0] * 6

    no_overlap = objects_cfg.model_copy(update={"overlap_dr": 0.0})
    assert ak.num(build_objects(events, no_overlap).jets).tolist()[0] == 3


def test_jes_variation_shifts_jets_and_met(events, objects_cfg):
    assert has_jes_variations(events)
    nominal = build_objects(events, objects_cfg)
    up = nominal.varied("jes_up")
    down = nominal.varied("jes_down")
    assert up.leptons is nominal.leptons
    np.testing.assert_allclose(ak.flatten(up.jets.pt), 1.1 * ak.flatten(nominal.jets.pt), rtol=1e-6)
    # no MET_pt_jesTotal*: the jet shift is propagated to the MET, with a note
    assert not np.allclose(up.met_pt, nominal.met_pt)
    assert any("propagated to the MET" in n for n in up.notes)
    assert ak.num(down.jets).tolist()[6] == 1


def test_missing_identification_branch_is_noted(tmp_path, objects_cfg):
    path = tmp_path / "noid.root"
    data = {"run": np.ones(1, dtype=np.uint32), "luminosityBlock": np.ones(1, dtype=np.uint32),
            "event": np.zeros(1, dtype=np.uint64),
            "Electron": ak.zip({"pt": ak.Array([[40.0]]), "eta": ak.Array([[0.0]]),
                               "phi": ak.Array([[0.0]]), "mass": ak.Array([[0.0]]),
                               "charge": ak.Array([[1]])}),
            "Muon": ak.zip({"pt": ak.Array([[30.0]]), "eta": ak.Array([[1.0]]),
                            "phi": ak.Array([[2.0]]), "mass": ak.Array([[0.1]]),
                            "charge": ak.Array([[-1]])})}
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", {k: v.type if isinstance(v, ak.Array) else v.dtype
                                   for k, v in data.items()})
        tree.extend(data)
    ev = NanoEventsFactory.from_root({str(path): "Events"}, schemaclass=HandMadeSchema,
                                     mode="virtual").events()
    notes: set[str] = set()
    objs = build_objects(ev, objects_cfg, notes=notes)
    assert ak.num(objs.leptons).tolist() == [2]
    assert any("Electron_cutBased" in n for n in notes)
    assert any("Muon_tightId" in n for n in notes)


def test_region_cut_order_and_unset_cuts():
    r = Region(n_leptons=2, same_sign=True, mjj_max=500.0, met_min=30.0, mll_min=20.0)
    assert region_cuts(r) == ["n_leptons", "same_sign", "mll", "met", "mjj"]
    assert [c for c in CUT_ORDER if c in region_cuts(r)] == region_cuts(r)
    text = describe_cuts(r)
    assert text["mjj"] == "m_jj < 500 GeV"
    assert text["met"] == "E_T^miss > 30 GeV"
    wz = load_config("ssww").regions["wz_cr"]
    assert "same_sign" not in region_cuts(wz)
    assert "sfos_z" in region_cuts(wz)


def test_region_masks(events, objects_cfg):
    v = EventVariables(build_objects(events, objects_cfg))
    ssww_like = Region(n_leptons=2, same_sign=True, mll_min=20.0, zveto_ee=15.0, met_min=30.0,
                       jet1_pt_min=65.0, jet2_pt_min=35.0, mjj_min=500.0, dy_jj_min=2.0,
                       n_bjets_max=0)
    sel = region_selection(v, ssww_like)
    assert sel.all("n_leptons").tolist() == [True, False, False, True, True, False, False]
    # event 5: the two leading leptons are the ee pair at 90 GeV
    assert sel.all("z_veto_ee").tolist() == [True, True, True, False, True, False, True]
    final = sel.all(*region_cuts(ssww_like))
    assert final.tolist() == [True, False, False, False, True, False, False]
    np.testing.assert_allclose(v.mll[[3, 4]], [90.0, 90.0], rtol=1e-6)
    assert np.isnan(v.mll[1])  # one lepton: no m_ll, every cut on it fails

    wz_like = Region(n_leptons=3, require_sfos_z=10.0)
    assert region_selection(v, wz_like).all("sfos_z").tolist() == [False] * 5 + [True, False]
    one_b = Region(n_leptons=1, n_bjets_min=1, n_jets_max=1)
    assert region_selection(v, one_b).all(*region_cuts(one_b)).tolist() == [False] * 6 + [True]


def test_cutflow_counts_and_accumulation(events, objects_cfg):
    v = EventVariables(build_objects(events, objects_cfg))
    region = Region(n_leptons=2, same_sign=True, zveto_ee=15.0)
    sel = region_selection(v, region)
    weights = Weights(len(events))
    weights.add("genWeight", np.asarray(events.genWeight, dtype=np.float64))
    flow = cutflow_counts(sel, region_cuts(region), weights)
    assert flow == {"cuts": [ALL_EVENTS, "n_leptons", "same_sign", "z_veto_ee"],
                    "raw": [7, 3, 3, 2], "weighted": [5.5, 2.5, 2.5, 1.5]}
    assert by_cut(flow, "weighted")["same_sign"] == 2.5

    # chunks add entry by entry (plain lists would be concatenated); json sees lists
    total = accumulate([{"d": {"r": flow}}, {"d": {"r": flow}}, {"d": {"r": flow}}])
    expected = {"cuts": [ALL_EVENTS, "n_leptons", "same_sign", "z_veto_ee"],
                "raw": [21, 9, 9, 6], "weighted": [16.5, 7.5, 7.5, 4.5]}
    assert total["d"]["r"] == expected
    assert flow["raw"] == [7, 3, 3, 2], "accumulate must not change its inputs"
    assert json.loads(json.dumps(total)) == {"d": {"r": expected}}
    assert plain_cutflow(total) == {"d": {"r": expected}}
    assert type(plain_cutflow(total)["d"]["r"]["raw"]) is list


def test_cutflows_of_different_cuts_do_not_add():
    a = cutflow_counts(_selection({"x": [True, False]}), ["x"])
    b = cutflow_counts(_selection({"y": [True, True]}), ["y"])
    with pytest.raises(ValueError, match="different cuts"):
        accumulate([a, b])


def _selection(masks):
    sel = PackedSelection()
    for name, mask in masks.items():
        sel.add(name, np.array(mask))
    return sel


def test_cutflow_without_weights():
    flow = cutflow_counts(_selection({"a": [True, False, True]}), ["a"])
    assert flow == {"cuts": [ALL_EVENTS, "a"], "raw": [3, 2], "weighted": [3.0, 2.0]}


def test_resolve_regions():
    cfg = load_config("wh")
    assert resolve_regions(cfg, None) == list(cfg.regions)
    assert resolve_regions(cfg, "signal") == ["signal"]
    with pytest.raises(ConfigError, match=r"unknown region 'sr' \(regions: signal, ttbar_cr\)"):
        resolve_regions(cfg, ["sr"])


def test_object_selection_is_config_driven(events):
    loose = ObjectSelection.model_validate({
        "electron": {"pt_min": 10.0, "eta_max": 2.5},
        "muon": {"pt_min": 10.0, "eta_max": 2.5},
        "jet": {"pt_min": 20.0, "eta_max": 5.0},
        "bjet": {"pt_min": 20.0, "eta_max": 2.5, "score_min": 0.5},
        "overlap_dr": 0.4,
    })
    objs = build_objects(events, loose)
    # no ID or isolation requested: every lepton passes
    assert ak.num(objs.leptons).tolist() == [2, 2, 2, 2, 2, 3, 1]
