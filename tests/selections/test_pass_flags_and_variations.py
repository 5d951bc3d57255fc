"""Object selection of profile-read inputs: pass flags replace numeric cuts, b-tag scores
are any real number, and profile shape variations (``<field>__<category>``) vary any
collection."""

from __future__ import annotations

import awkward as ak
import numpy as np
from ewpolar.core.config import ObjectSelection
from ewpolar.inputs.adapt import VARIATION_SEP
from ewpolar.selections.objects import build_objects

CUTS = ObjectSelection.model_validate({
    "electron": {"pt_min": 20.0, "eta_max": 2.5, "id_min": 4, "iso_max": 0.1},
    "muon": {"pt_min": 20.0, "eta_max": 2.5, "id_min": 1, "iso_max": 0.1},
    "jet": {"pt_min": 30.0, "eta_max": 4.5, "id_min": 2},
    # a GN2-like discriminant: working points are not in [0, 1]
    "bjet": {"pt_min": 20.0, "eta_max": 2.5, "score_min": 2.669},
    "overlap_dr": 0.4,
})


def _collection(**fields):
    return ak.Array([dict(zip(fields, values, strict=True))
                     for values in zip(*fields.values(), strict=True)])


def _events(electron, muon, jet, met):
    """Events from per-event lists of records."""
    return ak.zip({"Electron": ak.Array(electron), "Muon": ak.Array(muon),
                   "Jet": ak.Array(jet), "MET": ak.Array(met)}, depth_limit=1)


def _lepton(pt, eta=0.0, phi=0.0, charge=-1, **flags):
    return {"pt": np.float32(pt), "eta": np.float32(eta), "phi": np.float32(phi),
            "mass": np.float32(0.0), "charge": np.int32(charge), **flags}


def _jet(pt, eta=0.0, phi=2.0, **extra):
    return {"pt": np.float32(pt), "eta": np.float32(eta), "phi": np.float32(phi),
            "mass": np.float32(5.0), **extra}


#: a lepton below every pT cut (an empty collection would have no record type)
SOFT = _lepton(1, passId=False, passIso=False)


def test_pass_flags_replace_id_and_isolation():
    events = _events(
        electron=[[_lepton(50, passId=True, passIso=True), _lepton(40, passId=False, passIso=True),
                   _lepton(30, passId=True, passIso=False)]],
        muon=[[_lepton(45, passId=True, passIso=True)]],
        jet=[[_jet(60, passId=True, btag=3.1), _jet(50, passId=False, btag=5.0),
              _jet(40, passId=True, btag=1.2)]],
        met=[{"pt": 10.0, "phi": 0.0}])
    notes: set[str] = set()
    objs = build_objects(events, CUTS, notes=notes)
    assert objs.leptons.pt.tolist() == [[50.0, 45.0]]
    # jets: the id flag replaces jetId; the real-valued score is cut at score_min = 2.669
    assert objs.jets.pt.tolist() == [[60.0, 40.0]]
    assert objs.bjets.pt.tolist() == [[60.0]]
    assert not notes


def test_btag_pass_flag_replaces_the_score_cut():
    events = _events(electron=[[SOFT]], muon=[[SOFT]],
                     jet=[[_jet(60, passBtag=False, btag=9.0), _jet(50, passBtag=True, btag=0.0)]],
                     met=[{"pt": 10.0, "phi": 0.0}])
    objs = build_objects(events, CUTS)
    assert objs.bjets.pt.tolist() == [[50.0]]


def test_no_btag_information_is_noted():
    events = _events(electron=[[SOFT]], muon=[[SOFT]],
                     jet=[[_jet(60, btagDeepFlavB=-3000.0), _jet(50, btagDeepFlavB=-3000.0)]],
                     met=[{"pt": 10.0, "phi": 0.0}])
    notes: set[str] = set()
    objs = build_objects(events, CUTS, notes=notes)
    assert objs.bjets.pt.tolist() == [[]]
    assert any("no b-tag information" in n for n in notes)


def test_shape_variation_fields_vary_leptons_jets_and_met():
    up = f"{VARIATION_SEP}eg_up"
    events = _events(
        electron=[[_lepton(19, passId=True, passIso=True, **{f"pt{up}": np.float32(21)})]],
        muon=[[SOFT]],
        jet=[[_jet(60, **{f"pt{up}": np.float32(60)})]],
        met=[{"pt": 10.0, "phi": 0.0, f"pt{up}": 12.0, f"phi{up}": 0.5}])
    nominal = build_objects(events, CUTS)
    varied = nominal.varied("eg_up")
    assert nominal.leptons.pt.tolist() == [[]]
    # the electron passes the pT cut in the variation only: leptons selected anew
    assert not varied.shares_leptons
    assert varied.leptons.pt.tolist() == [[21.0]]
    assert varied.met_pt.tolist() == [12.0]
    assert nominal.met_pt.tolist() == [10.0]
    # a variation of jet pT alone keeps the nominal leptons (as JES does)
    jer = f"{VARIATION_SEP}jer_up"
    events = _events(electron=[[SOFT]], muon=[[SOFT]], jet=[[_jet(25, **{f"pt{jer}": np.float32(35)})]],
                     met=[{"pt": 10.0, "phi": 0.0}])
    varied = build_objects(events, CUTS).varied("jer_up")
    assert varied.shares_leptons
    assert varied.jets.pt.tolist() == [[35.0]]
    assert varied.met_pt.tolist() == [10.0]
