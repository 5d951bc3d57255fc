"""Construction, pickling, region choice, output layout and lazy reading of the processors."""

from __future__ import annotations

import itertools
import json
import pickle

import cloudpickle
import numpy as np
import pytest
from coffea.processor import accumulate
from ewpolar.core.errors import ConfigError
from ewpolar.processors.ssww import SSWWProcessor
from ewpolar.processors.wh import WHProcessor


def first_file(fileset, dataset):
    return next(iter(fileset[dataset]["files"]))


def test_unknown_region_is_a_one_line_config_error(ssww_config, wh_config):
    with pytest.raises(ConfigError) as err:
        SSWWProcessor(ssww_config, regions=["signal", "sideband"])
    msg = str(err.value)
    assert "\n" not in msg
    assert "'sideband'" in msg
    for name in ssww_config.regions:
        assert name in msg
    with pytest.raises(ConfigError, match=r"unknown region 'wz_cr' \(regions: signal, ttbar_cr\)"):
        WHProcessor(wh_config, regions="wz_cr")


def test_wrong_channel_config(ssww_config):
    with pytest.raises(ConfigError, match="needs a 'wh' config"):
        WHProcessor(ssww_config)


def test_region_choice(ssww_config):
    assert SSWWProcessor(ssww_config).regions == list(ssww_config.regions)
    assert SSWWProcessor(ssww_config, regions="all").regions == list(ssww_config.regions)
    proc = SSWWProcessor(ssww_config, regions=["btag_cr", "signal"])
    assert proc.regions == ["btag_cr", "signal"]


def test_pickle_round_trip(wh_config, wh_fileset, events_of):
    proc = WHProcessor(wh_config, regions=["signal"])
    path = first_file(wh_fileset, "wh")
    meta = {"dataset": "wh", **wh_fileset["wh"]["metadata"]}
    reference = proc.process(events_of(path, meta))["cutflow"]
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        clone = loads(dumps(proc))
        assert clone.process(events_of(path, meta))["cutflow"] == reference


def test_output_layout(ssww_output, ssww_config):
    assert set(ssww_output) == {"hists", "cutflow", "entries", "bad_weights", "notes"}
    assert set(ssww_output["bad_weights"].values()) == {0}
    templates = {f"template_{name}" for name in ssww_config.templates}
    assert set(ssww_output["hists"]) == set(ssww_config.histograms) | templates
    h = ssww_output["hists"]["mjj"]
    assert [ax.name for ax in h.axes] == ["dataset", "region", "systematic", "mjj"]
    assert list(h.axes["region"]) == list(ssww_config.regions)
    np.testing.assert_allclose(h.axes["mjj"].edges, ssww_config.histograms["mjj"].edges)
    assert h.axes["mjj"].label == ssww_config.histograms["mjj"].label
    assert isinstance(ssww_output["notes"], set)
    row = json.loads(json.dumps(ssww_output["cutflow"]))["ssww_TT"]["signal"]
    assert row["cuts"][0] == "all events"
    assert len(row["cuts"]) == len(row["raw"]) == len(row["weighted"])
    assert all(a >= b for a, b in itertools.pairwise(row["raw"]))


def test_wh_histograms(wh_output, wh_config):
    assert set(wh_output["hists"]) == {"q_cos_delta_plus_ptw", "mbb", "mt_tot"}
    h = wh_output["hists"]["q_cos_delta_plus_ptw"]
    assert [ax.name for ax in h.axes] == ["dataset", "region", "systematic",
                                          "q_cos_delta_plus", "ptw"]
    np.testing.assert_allclose(h.axes["ptw"].edges, wh_config.histograms["ptw"].edges)
    sig = h[{"dataset": "wh", "region": "signal", "systematic": "nominal"}]
    # every selected event has a defined Q_l cos(delta+) in [-1, 1]: nothing in the flow bins
    assert sig.sum(flow=True).value == pytest.approx(sig.sum(flow=False).value)
    nominal = wh_output["cutflow"]["wh"]["signal"]["weighted"]
    assert sig.sum(flow=True).value == pytest.approx(nominal[-1])


def test_chunks_add_up(ssww_output, ssww_config, ssww_fileset, events_of):
    """The Runner's accumulated output (several chunks per file) equals whole-file processing."""
    proc = SSWWProcessor(ssww_config)
    parts = [proc.process(events_of(f, {"dataset": "ssww_TT", **ssww_fileset["ssww_TT"]["metadata"]}))
             for f in ssww_fileset["ssww_TT"]["files"]]
    whole = accumulate(parts)
    for region, flow in whole["cutflow"]["ssww_TT"].items():
        chunked = ssww_output["cutflow"]["ssww_TT"][region]
        assert chunked["cuts"] == flow["cuts"]
        assert chunked["raw"] == flow["raw"]
        np.testing.assert_allclose(chunked["weighted"], flow["weighted"], rtol=1e-9)
    for name, h in whole["hists"].items():
        a = h[{"dataset": "ssww_TT"}]
        b = ssww_output["hists"][name][{"dataset": "ssww_TT"}]
        for cat in a.axes["systematic"]:
            np.testing.assert_allclose(b[{"systematic": cat}].values(flow=True),
                                       a[{"systematic": cat}].values(flow=True), rtol=1e-9)


def test_cos_theta_star_histograms(ssww_output):
    h = ssww_output["hists"]["cos_theta_star"]
    sig = h[{"dataset": "ssww_TT", "region": "signal", "systematic": "nominal"}]
    events = ssww_output["cutflow"]["ssww_TT"]["signal"]["weighted"][-1]
    # one entry per lepton: twice the event yield
    assert sig.sum(flow=True).value == pytest.approx(2 * events)
    truth = ssww_output["hists"]["cos_theta_star_truth"]
    tt = truth[{"dataset": "ssww_TT", "region": "signal", "systematic": "nominal"}]
    assert tt.sum(flow=True).value == pytest.approx(2 * events)
    # TT: transverse W's favour |cos| near 1 over the centre
    v = tt.values()
    assert v[0] + v[-1] > v[4] + v[5]
    # WZ has a single W -> l nu: no truth entry
    if "wz" in truth.axes["dataset"]:
        assert truth[{"dataset": "wz"}].sum(flow=True).value == 0.0


def test_reads_only_what_it_needs(wh_config, wh_fileset, events_of):
    path = first_file(wh_fileset, "wh")
    meta = {"dataset": "wh", **wh_fileset["wh"]["metadata"]}
    systs = {k: v for k, v in wh_config.systematics.items() if k != "pdf"}
    cfg = wh_config.model_copy(update={"systematics": systs})
    log: list = []
    WHProcessor(cfg).process(events_of(path, meta, access_log=log))
    branches = {a.branch for a in log}
    assert "LHEScaleWeight" in branches
    assert "LHEPdfWeight" not in branches
    assert not any(b.startswith(("GenPart", "Photon", "Tau", "FatJet")) for b in branches)

    log.clear()
    WHProcessor(wh_config).process(events_of(path, meta, access_log=log))
    assert "LHEPdfWeight" in {a.branch for a in log}


def test_classifier_hook(ssww_config, ssww_fileset, events_of):
    path = first_file(ssww_fileset, "ssww_TT")
    meta = {"dataset": "ssww_TT", **ssww_fileset["ssww_TT"]["metadata"]}
    no_models = ssww_config.model_copy(update={"models": {}})
    out = SSWWProcessor(no_models, regions=["signal"]).process(events_of(path, meta))
    assert not any(name.startswith("template_") for name in out["hists"])
    assert any("lists no classifier" in note for note in out["notes"])

    class Scored(SSWWProcessor):
        def _classifier_scores(self, events_sel, features):
            assert set(features) >= {"mjj", "cos_theta_star"}
            n = len(events_sel)
            return {"sig_vs_bkg": np.linspace(0.0, 0.99, n), "ll_vs_tx": np.full(n, 0.3)}

    out = Scored(no_models, regions=["signal"]).process(events_of(path, meta))
    h = out["hists"]["template_ll"]  # lx needs lx_vs_tt, which is not given
    assert "template_lx" not in out["hists"]
    nominal = out["hists"]["mjj"][{"systematic": "nominal"}].sum(flow=True).value
    assert h[{"systematic": "nominal"}].sum(flow=True).value == pytest.approx(nominal)
    assert h.axes["score_x"].label == "sig_vs_bkg"


def test_empty_chunk_and_data(wh_config, wh_fileset, events_of):
    path = first_file(wh_fileset, "wh")
    meta = {"dataset": "wh", **wh_fileset["wh"]["metadata"]}
    empty = WHProcessor(wh_config).process(events_of(path, meta)[:0])
    assert empty["entries"] == {"wh": 0}
    assert set(empty["cutflow"]["wh"]["signal"]["raw"]) == {0}

    data = WHProcessor(wh_config).process(events_of(path, {"dataset": "obs", "kind": "data"}))
    flow = data["cutflow"]["obs"]["signal"]
    assert flow["raw"] == [int(w) for w in flow["weighted"]]
    for h in data["hists"].values():
        assert list(h.axes["systematic"]) == ["nominal"]


def test_truth_cos_theta_star_closure(ssww_config, ssww_fileset, events_of):
    """Generator-level cos θ* recovers the generated longitudinal fraction (f0 = 2 − 5⟨cos²θ*⟩)."""
    from ewpolar.generator import expected_helicity_fractions
    from ewpolar.models.features import FEATURES, FeatureContext
    from ewpolar.selections.objects import build_objects
    from ewpolar.selections.variables import EventVariables

    events = events_of(first_file(ssww_fileset, "ssww_TT"), {"dataset": "ssww_TT"})
    variables = EventVariables(build_objects(events, ssww_config.objects))
    ctx = FeatureContext(events, variables, ssww_config.regions["signal"], set())
    cos = FEATURES["cos_theta_star_truth"](ctx)
    cos = cos[~np.isnan(cos)]
    assert len(cos) == 2 * len(events)  # every ssWW event has two W -> l nu
    f0 = 2 - 5 * np.mean(cos**2)
    expected = expected_helicity_fractions(ssww_config, "ssww_TT")[0]
    sigma = 5 * np.std(cos**2) / np.sqrt(len(cos))  # the two leptons of an event are independent
    assert f0 == pytest.approx(expected, abs=5 * sigma)
