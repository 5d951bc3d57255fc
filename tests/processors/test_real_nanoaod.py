"""Both processors on real CMS NanoAOD (2015 open-data simulation, 200 events).

The file lacks the JES variations and the CP weights of the toy samples, and its
LHEPdfWeight holds 102 members (an NNPDF replica set) instead of 31 Hessian
eigenvectors: the processors must skip or adapt and say so in ``notes``.
"""

from __future__ import annotations

import itertools

import pytest
from ewpolar.core.config import Systematic
from ewpolar.processors.ssww import SSWWProcessor
from ewpolar.processors.wh import WHProcessor
from ewpolar.selections.cutflow import by_cut

# coffea's NanoAOD schema warns about cross-references this 2015 file does not have
# (LowPtElectron, FatJet subjets) and about the Photon mass/charge it fills in itself
pytestmark = [
    pytest.mark.filterwarnings("ignore:Missing cross-reference index:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:Branch Photon_.* already exists:RuntimeWarning"),
]

META = {"dataset": "cms_ttbar"}


def _monotonic(values):
    return all(a >= b for a, b in itertools.pairwise(values))


def test_ssww_on_real_nanoaod(cms_nanoaod, ssww_config, events_of):
    out = SSWWProcessor(ssww_config).process(events_of(cms_nanoaod, META))
    assert out["entries"] == {"cms_ttbar": 200}
    for flow in out["cutflow"]["cms_ttbar"].values():
        assert flow["cuts"][0] == "all events"
        assert flow["raw"][0] == 200
        assert _monotonic(flow["raw"])
    signal = by_cut(out["cutflow"]["cms_ttbar"]["signal"])
    # a W+jets-like sample: lost at the two-lepton requirement
    assert signal["n_leptons"] < 200
    notes = " | ".join(sorted(out["notes"]))
    assert "jes: no Jet_pt_jesTotalUp/Down branches" in notes
    assert "no xsec_fb/sumw in the metadata" in notes
    assert "LHEPdfWeight has 102 members" in notes
    for h in out["hists"].values():
        assert set(h.axes["systematic"]) <= {"nominal", "lumi_up", "lumi_down", "scale_up",
                                             "scale_down", "pdf_up", "pdf_down", "kfactor_up",
                                             "kfactor_down"}


def test_wh_on_real_nanoaod(cms_nanoaod, wh_config, events_of):
    meta = {**META, "kind": "signal", "xsec_fb": 1.0, "sumw": 1.0}
    out = WHProcessor(wh_config).process(events_of(cms_nanoaod, meta))
    flow = out["cutflow"]["cms_ttbar"]["signal"]
    raw = by_cut(flow)
    assert raw["all events"] == 200
    assert _monotonic(flow["raw"])
    # one isolated lepton is common in this file; two b-tagged jets are not
    assert raw["n_leptons"] > 0
    assert raw["n_bjets"] < raw["n_jets"]
    assert flow["weighted"][0] == pytest.approx(
        wh_config.luminosity_fb * sum_gen_weight(cms_nanoaod))
    notes = " | ".join(sorted(out["notes"]))
    assert "cp: no CPWeight_int/CPWeight_quad branches" in notes
    assert "jes:" in notes


def test_replica_pdf_scheme_on_real_nanoaod(cms_nanoaod, wh_config, events_of):
    systs = dict(wh_config.systematics)
    systs["pdf"] = Systematic(kind="pdf", pdf_scheme="replicas")
    cfg = wh_config.model_copy(update={"systematics": systs})
    out = WHProcessor(cfg).process(events_of(cms_nanoaod, META))
    assert not any("Hessian" in n for n in out["notes"])


def sum_gen_weight(path):
    import uproot

    return float(uproot.open(path)["Events"]["genWeight"].array(library="np").sum())
