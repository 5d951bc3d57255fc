"""Training events from a fileset, and the train / optimize / select-inputs commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("optuna")
pytest.importorskip("pyarrow")

from ewpolar.core.config import load_config
from ewpolar.core.errors import InputError
from ewpolar.generator import generate
from ewpolar.models.cli import cli, optimize, select_inputs, train
from ewpolar.models.runtime import load_classifier
from ewpolar.models.training.build import TrainingEvents, build_training_events
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.inputs import SSWW_CLASSIFIERS, SSWW_INPUTS
from ewpolar.models.training.metrics import weighted_roc_auc
from ewpolar.processors.ssww import SSWWProcessor
from ewpolar.runner.run import load_fileset

DATASETS = ["ssww_LL", "ssww_LT", "ssww_TT", "wz"]
#: expected (sig_vs_bkg, ll_vs_tx, lx_vs_tt) labels per dataset; −1: not used
LABELS = {"ssww_LL": (1, 1, 1), "ssww_LT": (1, 0, 1), "ssww_TT": (1, 0, 0), "wz": (0, -1, -1)}
#: the end-to-end training must beat a random LL-vs-TT ordering (AUC 0.5) by this much
AUC_MARGIN = 0.1


@pytest.fixture(scope="module")
def config():
    return load_config("ssww")


@pytest.fixture(scope="module")
def fileset_path(config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train_samples")
    return generate(config, events=4000, seed=21, out=out, datasets=DATASETS)


@pytest.fixture(scope="module")
def events(config, fileset_path) -> TrainingEvents:
    return build_training_events(config, load_fileset(fileset_path), chunksize=1500)


def run_cli(command, args):
    result = CliRunner().invoke(command, [*args, "--no-progress"], catch_exceptions=False)
    return result


def test_labels_follow_the_sample_kind_and_polarization(events):
    assert events.inputs == SSWW_INPUTS
    assert set(events.dataset) == set(DATASETS)
    for dataset, expected in LABELS.items():
        rows = events.dataset == dataset
        got = tuple(int(np.unique(events.labels[name][rows]).item()) for name in SSWW_CLASSIFIERS)
        assert got == expected, dataset
    assert events.training_set("ll_vs_tx").metadata["samples"] == {
        "1": ["ssww_LL"], "0": ["ssww_LT", "ssww_TT"]}


def test_event_counts_match_the_processor_cutflow(config, fileset_path, events):
    """The signal-region cutflow of the analysis processor counts the same events and weight."""
    from coffea import processor
    from coffea.nanoevents import NanoAODSchema

    bare = config.model_copy(update={"systematics": {}, "models": {}})
    runner = processor.Runner(executor=processor.IterativeExecutor(status=False),
                              schema=NanoAODSchema, chunksize=4000)
    out = runner(load_fileset(fileset_path), SSWWProcessor(bare, regions=["signal"]))
    for dataset in DATASETS:
        flow = out["cutflow"][dataset]["signal"]
        rows = events.dataset == dataset
        assert rows.sum() == flow["raw"][-1] > 0
        assert events.weights[rows].sum() == pytest.approx(flow["weighted"][-1], rel=1e-9)
        meta = events.metadata["datasets"][dataset]
        assert meta["selected"] == flow["raw"][-1]
        assert meta["entries"] == 4000


def test_weights_and_event_numbers_come_from_the_files(config, fileset_path, events):
    """weight = genWeight × xsec_fb × luminosity_fb / sumw, read back from the ROOT files."""
    fileset = json.loads(fileset_path.read_text())
    for dataset in DATASETS:
        meta = fileset[dataset]["metadata"]
        branches = [uproot.open(f)["Events"].arrays(["event", "genWeight"], library="np")
                    for f in fileset[dataset]["files"]]
        gen = dict(zip(np.concatenate([b["event"] for b in branches]).tolist(),
                       np.concatenate([b["genWeight"] for b in branches]).tolist(), strict=True))
        rows = events.dataset == dataset
        numbers = events.event[rows]
        assert len(set(numbers.tolist())) == len(numbers)  # each event once
        expected = np.array([gen[e] for e in numbers.tolist()])
        expected *= meta["xsec_fb"] * config.luminosity_fb / meta["sumw"]
        np.testing.assert_allclose(events.weights[rows], expected, rtol=1e-12)


def test_union_of_regions_adds_the_looser_region(config, fileset_path, events):
    union = build_training_events(config, load_fileset(fileset_path),
                                  regions=["signal", "low_mjj_cr"])
    low = build_training_events(config, load_fileset(fileset_path), regions=["low_mjj_cr"])
    assert len(union) == len(events) + len(low)  # m_jj ≥ 500 and < 500 are disjoint
    assert union.metadata["regions"] == ["signal", "low_mjj_cr"]


def test_training_events_parquet_round_trip(events, tmp_path):
    path = events.write_parquet(tmp_path / "events.parquet")
    back = TrainingEvents.read_parquet(path)
    assert back.inputs == events.inputs
    np.testing.assert_array_equal(back.features, events.features)
    np.testing.assert_array_equal(back.weights, events.weights)
    np.testing.assert_array_equal(back.event, events.event)
    np.testing.assert_array_equal(back.dataset, events.dataset)
    for name in SSWW_CLASSIFIERS:
        np.testing.assert_array_equal(back.labels[name], events.labels[name])
    assert back.metadata["datasets"] == events.metadata["datasets"]
    single = events.training_set("lx_vs_tt").write_parquet(tmp_path / "lx.parquet")
    assert not TrainingEvents.is_training_events_file(single)
    with pytest.raises(InputError, match="not a training events file"):
        TrainingEvents.read_parquet(single)


@pytest.fixture(scope="module")
def trained(config, fileset_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    result = run_cli(train, ["--config", str(config.source), "--fileset", str(fileset_path),
                             "--classifier", "ll_vs_tx", "--k", "2", "--epochs", "15",
                             "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result


def test_train_command_writes_a_classifier_that_separates_ll_from_tt(trained, events):
    out, result = trained
    assert "ll_vs_tx: AUC per fold" in result.output
    model = out / "ssww_ll_vs_tx.onnx"
    clf = load_classifier(model)
    assert clf.inputs == SSWW_INPUTS
    assert clf.card.k == 2
    assert clf.card.training["classifier"] == "ll_vs_tx"
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["classifiers"]["ll_vs_tx"]["fold_auc"] == pytest.approx(clf.card.fold_auc)
    assert TrainingEvents.is_training_events_file(out / "training_events.parquet")
    # every event is scored by the fold model that did not see it: held-out LL vs TT
    rows = np.isin(events.dataset, ["ssww_LL", "ssww_TT"])
    scores = clf.predict(events.features[rows], events.event[rows])
    is_ll = (events.dataset[rows] == "ssww_LL").astype(int)
    auc = weighted_roc_auc(scores, is_ll, events.weights[rows])
    assert auc > 0.5 + AUC_MARGIN


def test_train_reads_its_training_events_and_hyperparameters(trained, config, tmp_path):
    out, _ = trained
    hyper = tmp_path / "hyper.json"
    hyper.write_text(json.dumps({"classifier": "sig_vs_bkg",
                                 "hyperparameters": {"n_layers": 1, "width": 8}}))
    result = run_cli(train, ["--config", str(config.source), "--training-set",
                             str(out / "training_events.parquet"), "--classifier", "sig_vs_bkg",
                             "--inputs", "mjj,dy_jj,lep1_pt", "--hyperparameters", str(hyper),
                             "--k", "2", "--epochs", "3", "--out", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    card = load_classifier(tmp_path / "again" / "ssww_sig_vs_bkg.onnx").card
    assert card.inputs == ("mjj", "dy_jj", "lep1_pt")
    assert card.training["hyperparameters"]["width"] == 8
    assert card.training["samples"]["0"] == ["wz"]


def test_optimize_then_select_inputs(trained, config, tmp_path):
    out, _ = trained
    events = str(out / "training_events.parquet")
    common = ["--config", str(config.source), "--training-set", events,
              "--classifier", "lx_vs_tt", "--inputs", "mjj,lep1_pt,r_pt", "--k", "2",
              "--epochs", "2"]
    result = run_cli(optimize, [*common, "--trials", "2", "--objective-folds", "1",
                                "--out", str(tmp_path / "opt")])
    assert result.exit_code == 0, result.output
    best = json.loads((tmp_path / "opt" / "hyperparameters_lx_vs_tt.json").read_text())
    assert best["classifier"] == "lx_vs_tt"
    assert best["n_complete"] + best["n_pruned"] + best["n_failed"] == 2
    assert (tmp_path / "opt" / "optuna.db").is_file()
    assert len(json.loads((tmp_path / "opt" / "trials_lx_vs_tt.json").read_text())) == 2

    result = run_cli(select_inputs, [*common, "--hyperparameters",
                                     str(tmp_path / "opt" / "hyperparameters_lx_vs_tt.json"),
                                     "--mode", "shuffle", "--tolerance", "1.0",
                                     "--out", str(tmp_path / "sel")])
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "sel" / "elimination_lx_vs_tt.json").read_text())
    assert [len(s["inputs"]) for s in history["steps"]] == [3, 2, 1]
    assert len(history["selected_inputs"]) == 1
    png = (tmp_path / "sel" / "elimination_lx_vs_tt.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert history["final"]["method"] == "none"  # every fold chose, no test set
    assert "no unbiased re-evaluation" in result.output

    result = run_cli(select_inputs, [*common, "--mode", "hybrid", "--hybrid-candidates", "1",
                                     "--criterion", "relative", "--tolerance", "1.0",
                                     "--test-fraction", "0.3", "--cv-offset", "1",
                                     "--out", str(tmp_path / "hybrid")])
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "hybrid" / "elimination_lx_vs_tt.json").read_text())
    assert history["mode"] == "hybrid"
    assert history["criterion"] == "relative"
    assert history["final"]["method"] == "test set"
    assert 0.5 < history["final"]["auc_selected"] <= 1.0
    assert "on the test set:" in result.output


@pytest.mark.slow
def test_optimize_and_select_inputs_on_a_dask_cluster(trained, config, tmp_path):
    pytest.importorskip("distributed")
    out, _ = trained
    common = ["--config", str(config.source), "--training-set",
              str(out / "training_events.parquet"), "--classifier", "lx_vs_tt",
              "--inputs", "mjj,lep1_pt,r_pt", "--k", "2", "--epochs", "2",
              "--executor", "dask", "--workers", "2", "--no-progress"]
    result = run_cli(optimize, [*common, "--trials", "3", "--objective-folds", "1",
                                "--pruner", "asha", "--out", str(tmp_path / "opt")])
    assert result.exit_code == 0, result.output
    best = json.loads((tmp_path / "opt" / "hyperparameters_lx_vs_tt.json").read_text())
    assert best["n_complete"] + best["n_pruned"] + best["n_failed"] == 3
    assert best["executor"] == "dask"
    assert (tmp_path / "opt" / "optuna.journal").is_file()  # the study the workers shared
    assert "activation" in best["best_params"]  # the wide search space
    result = run_cli(select_inputs, [*common, "--mode", "retrain", "--tolerance", "1.0",
                                     "--folds", "1", "--out", str(tmp_path / "sel")])
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "sel" / "elimination_lx_vs_tt.json").read_text())
    assert [len(s["inputs"]) for s in history["steps"]] == [3, 2, 1]
    assert history["final"]["method"] == "unused folds"
    bad = run_cli(optimize, [*common[:-5], "--scheduler", "tls://127.0.0.1:1", "--trials", "1",
                             "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2
    assert "--scheduler needs --executor dask" in bad.output


def test_training_set_of_one_classifier(events, config, tmp_path):
    path = events.training_set("ll_vs_tx").select_inputs(["mjj", "r_pt"]).write_parquet(
        tmp_path / "ll.parquet")
    assert TrainingSet.read_parquet(path).inputs == ("mjj", "r_pt")
    args = ["--config", str(config.source), "--training-set", str(path), "--k", "2",
            "--epochs", "1", "--out", str(tmp_path / "o")]
    result = run_cli(train, args)  # --classifier all: which one is it?
    assert result.exit_code == 2
    assert "--classifier" in result.output
    result = run_cli(train, [*args, "--classifier", "ll_vs_tx"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("args", "message"), [
    ([], "exactly one of --fileset or --training-set"),
    (["--training-set", "absent.parquet"], "ewpolar: error: absent.parquet: training set file"),
    (["--fileset", "absent.json"], "ewpolar: error: absent.json: fileset not found"),
    (["--fileset", "FILESET", "--region", "nowhere"], "unknown region 'nowhere'"),
    (["--training-set", "EVENTS", "--region", "signal"], "--region selects events"),
    (["--training-set", "EVENTS", "--inputs", "mjj,m_zz"], "unknown input(s) ['m_zz']"),
    (["--training-set", "EVENTS", "--hyperparameters", "HYPER"], "unknown MLP settings"),
])
def test_user_errors_are_one_line(args, message, trained, config, fileset_path, tmp_path):
    out, _ = trained
    hyper = tmp_path / "bad.json"
    hyper.write_text(json.dumps({"widht": 8}))
    subst = {"FILESET": str(fileset_path), "EVENTS": str(out / "training_events.parquet"),
             "HYPER": str(hyper)}
    args = [subst.get(a, a) for a in args]
    result = CliRunner().invoke(train, ["--config", str(config.source), *args,
                                        "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 2
    assert message in result.output
    if "--region selects" not in message and "exactly one" not in message:
        assert result.output.startswith("ewpolar: error: ")
        assert len(result.output.strip().splitlines()) == 1
        assert "Traceback" not in result.output


def test_help_of_the_commands():
    for name in ("train", "optimize", "select-inputs", "reweight", "sbi"):
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0
        assert "--out" in result.output
        if name not in ("reweight", "sbi"):
            assert "--fileset" in result.output
