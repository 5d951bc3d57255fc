"""2D classifier score templates of the ssWW processor, with the shipped ONNX models."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
from ewpolar.core.config import ModelRef
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.models import runtime as inference
from ewpolar.models.runtime import load_classifier, sha256_file
from ewpolar.models.training.inputs import SSWW_INPUTS
from ewpolar.processors.ssww import SSWWProcessor
from ewpolar.selections.objects import build_objects
from ewpolar.selections.regions import cumulative_masks
from ewpolar.selections.variables import EventVariables

MAX_MODEL_BYTES = 1_000_000


def first_file(fileset, dataset):
    return next(iter(fileset[dataset]["files"]))


def with_models(config, paths: dict[str, Path]):
    models = {**config.models, **{name: ModelRef(path=str(p)) for name, p in paths.items()}}
    return config.model_copy(update={"models": models})


def copy_model(config, name: str, folder: Path) -> Path:
    src = config.resolve(config.models[name].path)
    dst = folder / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


@pytest.mark.parametrize("name", ["sig_vs_bkg", "ll_vs_tx", "lx_vs_tt"])
def test_shipped_models_load_and_match_their_cards(ssww_config, name):
    path = ssww_config.resolve(ssww_config.models[name].path)
    assert path.is_file(), f"shipped model {path} is missing"
    assert path.stat().st_size < MAX_MODEL_BYTES
    clf = load_classifier(path)
    assert clf.card.sha256 == sha256_file(path)
    assert clf.inputs == SSWW_INPUTS
    assert clf.card.training["classifier"] == name
    rng = np.random.default_rng(0)
    scores = clf.predict(rng.normal(100.0, 30.0, size=(50, len(SSWW_INPUTS))), np.arange(50))
    assert np.all((scores >= 0) & (scores <= 1))


def test_templates_for_every_dataset_region_and_systematic(ssww_output, ssww_config):
    hists = ssww_output["hists"]
    mjj = hists["mjj"]
    datasets = set(mjj.axes["dataset"])
    systematics = set(mjj.axes["systematic"])
    assert {"jes_up", "jes_down", "scale_up", "lumi_up", "kfactor_down"} <= systematics
    filled = 0
    for name, tmpl in ssww_config.templates.items():
        h = hists[f"template_{name}"]
        assert [ax.name for ax in h.axes] == ["dataset", "region", "systematic",
                                              "score_x", "score_y"]
        assert (h.axes["score_x"].label, h.axes["score_y"].label) == (tmpl.x, tmpl.y)
        assert h.axes["score_x"].size == tmpl.x_bins
        assert h.axes["score_y"].size == tmpl.y_bins
        assert set(h.axes["dataset"]) == datasets
        assert set(h.axes["systematic"]) == systematics
        regions = tmpl.regions or list(ssww_config.regions)
        assert list(h.axes["region"]) == regions
        for dataset in datasets:
            for region in regions:
                for syst in systematics:
                    where = {"dataset": dataset, "region": region, "systematic": syst}
                    one_d = mjj[where].sum(flow=True).value
                    two_d = h[where]
                    # every event is inside [0, 1]²: the in-range sum holds the whole yield
                    assert two_d.sum(flow=False).value == pytest.approx(one_d, rel=1e-9, abs=1e-12)
                    assert two_d.sum(flow=True).value == pytest.approx(one_d, rel=1e-9, abs=1e-12)
                    filled += one_d > 0
    assert filled > 0
    # both templates share the x axis (sig_vs_bkg): equal projections
    ll = hists["template_ll"].project("dataset", "region", "systematic", "score_x").values()
    lx = hists["template_lx"].project("dataset", "region", "systematic", "score_x").values()
    np.testing.assert_allclose(ll, lx, rtol=1e-9)


def test_templates_sort_signal_from_background(ssww_output):
    h = ssww_output["hists"]["template_ll"]
    nominal = {"region": "signal", "systematic": "nominal"}
    sig = h[{"dataset": "ssww_TT", **nominal}].project("score_x").values()
    bkg = h[{"dataset": "wz", **nominal}].project("score_x").values()
    # top sig_vs_bkg bin: most of the signal, a smaller share of WZ
    assert sig[-1] / sig.sum() > bkg[-1] / bkg.sum() + 0.2


def test_jes_shifts_rescore_the_shifted_selection(ssww_config, ssww_fileset, events_of):
    calls = []

    class Recording(SSWWProcessor):
        def _classifier_scores(self, events_sel, features):
            scores = super()._classifier_scores(events_sel, features)
            calls.append((features["jet1_pt"].copy(), scores["sig_vs_bkg"].copy()))
            return scores

    path = first_file(ssww_fileset, "ssww_TT")
    meta = {"dataset": "ssww_TT", **ssww_fileset["ssww_TT"]["metadata"]}
    Recording(ssww_config, regions=["signal"]).process(events_of(path, meta))
    assert len(calls) == 3  # nominal, jes_up, jes_down
    (pt_nom, s_nom), (pt_up, s_up), (pt_down, _) = calls
    assert pt_up.mean() > pt_nom.mean() > pt_down.mean()
    assert len(s_up) != len(s_nom) or not np.array_equal(s_up, s_nom)


def test_template_regions_score_only_their_events(ssww_config, ssww_fileset, events_of):
    """A template filled in some regions: the same contents there as filled everywhere,
    no other region on its axis, and only those regions' events are scored."""
    scored = []

    class Counting(SSWWProcessor):
        def _classifier_scores(self, events_sel, features):
            scored.append(len(events_sel))
            return super()._classifier_scores(events_sel, features)

    everywhere = ssww_config.model_copy(update={"templates": {
        name: t.model_copy(update={"regions": None}) for name, t in ssww_config.templates.items()}})
    only_signal = ssww_config.model_copy(update={"templates": {
        name: t.model_copy(update={"regions": ["signal"]})
        for name, t in ssww_config.templates.items()}})
    path = first_file(ssww_fileset, "wz")
    meta = {"dataset": "wz", **ssww_fileset["wz"]["metadata"]}
    events = events_of(path, meta)
    out_all = Counting(everywhere).process(events)
    n_all = sum(scored)
    scored.clear()
    out_sr = Counting(only_signal).process(events)
    n_sr = sum(scored)
    for name in ssww_config.templates:
        h_all, h_sr = out_all["hists"][f"template_{name}"], out_sr["hists"][f"template_{name}"]
        assert list(h_all.axes["region"]) == list(ssww_config.regions)
        assert list(h_sr.axes["region"]) == ["signal"]
        assert list(h_sr.axes["systematic"]) == list(h_all.axes["systematic"])
        np.testing.assert_array_equal(h_sr[{"region": "signal"}].view(flow=True),
                                      h_all[{"region": "signal"}].view(flow=True))
    # the observables' histograms do not change
    np.testing.assert_array_equal(out_sr["hists"]["mjj"].view(flow=True),
                                  out_all["hists"]["mjj"].view(flow=True))
    # most WZ events are in the WZ control region: fewer are scored, at least the
    # signal region's nominal selection (scored again for each JES shift)
    assert 0 < n_sr < n_all
    assert n_sr >= out_all["cutflow"]["wz"]["signal"]["raw"][-1]
    # events none of which the signal region selects: the templates still hold the
    # dataset and every systematic category of the observables, with no nominal yield
    variables = EventVariables(build_objects(events, ssww_config.objects, "nominal", set()))
    outside = ~cumulative_masks(variables, ssww_config.regions["signal"])[-1]
    out_cr = Counting(only_signal).process(events[outside])
    for name in ssww_config.templates:
        h = out_cr["hists"][f"template_{name}"]
        assert list(h.axes["dataset"]) == ["wz"]
        assert set(h.axes["systematic"]) == set(out_cr["hists"]["mjj"].axes["systematic"])
        assert h[{"systematic": "nominal"}].sum(flow=True).value == 0
    # no region of this run: no template at all
    out_cr = Counting(only_signal, regions=["wz_cr"]).process(events)
    assert not any(k.startswith("template_") for k in out_cr["hists"])


def test_processor_carries_its_models_and_reuses_sessions(ssww_config, ssww_fileset, events_of,
                                                          tmp_path):
    models = {name: copy_model(ssww_config, name, tmp_path) for name in ("sig_vs_bkg", "ll_vs_tx", "lx_vs_tt")}
    cfg = with_models(ssww_config, models)
    proc = SSWWProcessor(cfg, regions=["signal"])
    blob = cloudpickle.dumps(proc)
    sizes = sum(p.stat().st_size for p in models.values())
    assert sizes < len(blob) < sizes + 200_000  # the models' bytes travel, no session
    path = first_file(ssww_fileset, "wz")
    meta = {"dataset": "wz", **ssww_fileset["wz"]["metadata"]}
    reference = proc.process(events_of(path, meta))["hists"]["template_lx"]
    # a worker elsewhere has no model files: the clones score from the bytes they carry
    for p in models.values():
        p.unlink()
    inference.clear_session_cache()
    for clone in (pickle.loads(pickle.dumps(proc)), cloudpickle.loads(blob)):
        again = clone.process(events_of(path, meta))["hists"]["template_lx"]
        np.testing.assert_array_equal(again.values(flow=True), reference.values(flow=True))
    assert len(inference._SESSIONS) == 3  # one session per model and process, not per chunk


def test_missing_model_files_are_a_note(ssww_config, ssww_fileset, events_of, tmp_path):
    cfg = with_models(ssww_config, {"ll_vs_tx": tmp_path / "absent.onnx"})
    path = first_file(ssww_fileset, "ssww_TT")
    meta = {"dataset": "ssww_TT", **ssww_fileset["ssww_TT"]["metadata"]}
    out = SSWWProcessor(cfg, regions=["signal"]).process(events_of(path, meta))
    assert "template_ll" not in out["hists"]  # needs ll_vs_tx
    assert out["hists"]["template_lx"].sum().value > 0
    notes = " | ".join(sorted(out["notes"]))
    assert "models.ll_vs_tx" in notes
    assert "not found" in notes
    assert "template_ll not filled" in notes


def test_model_that_differs_from_its_card_is_an_error(ssww_config, tmp_path):
    model = copy_model(ssww_config, "lx_vs_tt", tmp_path)
    blob = bytearray(model.read_bytes())
    blob[-1] ^= 0xFF
    model.write_bytes(bytes(blob))
    with pytest.raises(InputError, match=r"^models\.lx_vs_tt: .*does not match its model card"):
        SSWWProcessor(with_models(ssww_config, {"lx_vs_tt": model}))


def test_corrupted_model_is_an_error_before_the_run(ssww_config, tmp_path):
    model = copy_model(ssww_config, "ll_vs_tx", tmp_path)
    model.write_bytes(b"not an onnx graph")
    card = json.loads(model.with_suffix(".json").read_text())
    card["sha256"] = sha256_file(model)
    model.with_suffix(".json").write_text(json.dumps(card))
    # found when the processor is built, not by every worker at its first chunk
    with pytest.raises(InputError, match="onnxruntime cannot load"):
        SSWWProcessor(with_models(ssww_config, {"ll_vs_tx": model}), regions=["signal"])


def test_card_inputs_are_checked_against_the_processor(ssww_config, tmp_path):
    model = copy_model(ssww_config, "sig_vs_bkg", tmp_path)
    card = json.loads(model.with_suffix(".json").read_text())
    card["inputs"][0] = "lep1_ptt"
    model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ConfigError) as err:
        SSWWProcessor(with_models(ssww_config, {"sig_vs_bkg": model}))
    message = str(err.value)
    assert "'sig_vs_bkg'" in message
    assert "missing ['lep1_ptt']" in message
    assert "\n" not in message
