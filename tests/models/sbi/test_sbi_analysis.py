"""SBI estimators inside the analysis: the WH processor histograms an ONNX estimator's
output, and the WH fit runs on score-binned templates."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from ewpolar.core.config import AnalysisConfig, load_config
from ewpolar.core.errors import ConfigError
from ewpolar.models.features import build_features
from ewpolar.models.runtime import load_model
from ewpolar.models.sbi.data import joint_score, wh_sample
from ewpolar.models.sbi.estimators import train_score_estimator
from ewpolar.models.sbi.study import estimator_config, symmetric_score_edges
from ewpolar.models.training.mlp import MLPConfig

INPUTS = ("q_cos_delta_plus", "ptw", "lep_pt", "mbb")


@pytest.fixture(scope="module")
def sally(tmp_path_factory):
    """A small SALLY trained on generated WH events, exported to ONNX."""
    cfg = load_config("wh")
    sample = wh_sample(cfg, 20_000, 5, names=INPUTS)
    t = joint_score(sample.sm, sample.int_, sample.quad, 0.0)
    est = train_score_estimator(sample.columns(INPUTS), t, sample.sm, inputs=INPUTS,
                                config=MLPConfig(n_layers=1, width=8, dropout=0.0,
                                                 activation="tanh", max_epochs=3, seed=1))
    path = tmp_path_factory.mktemp("sally") / "sally.onnx"
    est.export(path)
    edges = symmetric_score_edges(est.score(sample.columns(INPUTS)), sample.sm, 3)
    return cfg, path, edges


def test_symmetric_score_edges_have_zero_and_equal_sm_weight_per_side() -> None:
    rng = np.random.default_rng(1)
    t = rng.normal(0.0, 1.0, 100_000)
    edges = symmetric_score_edges(t, np.ones_like(t), 3)
    assert edges.size == 7  # 3 bins on each side of 0
    assert 0.0 in edges
    np.testing.assert_allclose(edges, -edges[::-1])
    # |t| quantiles at 1/3, 2/3 of a unit normal: 0.431, 0.967
    np.testing.assert_allclose(edges[4:6], [0.431, 0.967], atol=0.02)
    counts = np.histogram(t, edges)[0]
    np.testing.assert_allclose(counts / t.size, 1 / 6, atol=0.01)


def test_the_processor_histograms_the_estimator_output(sally) -> None:
    from ewpolar.generator import simulate
    from ewpolar.processors.wh import WHProcessor

    cfg, path, edges = sally
    config = estimator_config(cfg, "sally_score", path, edges)
    assert config.fit.signal_observable == "sally_score_ptw"
    proc = WHProcessor(config)
    names = [s.name for s in proc.hist_specs()]
    assert {"sally_score_ptw", "sally_score", "q_cos_delta_plus_ptw"} <= set(names)
    assert "event" in proc.columns()
    # the default config books what it always did
    assert [s.name for s in WHProcessor(cfg).hist_specs()] == [
        "q_cos_delta_plus_ptw", "mbb", "mt_tot"]
    # the observable is the model's output on the features of the same events
    branches = simulate(cfg, "wh", 3000, np.random.default_rng(2))
    table = build_features(branches, cfg, region="signal", names=INPUTS)
    expected = load_model(path).predict(table.values, output="score")
    values = _processor_values(proc, branches, cfg)[table.selected]
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6)


def _processor_values(proc, branches, cfg, name: str = "sally_score") -> np.ndarray:
    """The processor's estimator observable of every event (signal-region context)."""
    import awkward as ak
    from ewpolar.models.features import FeatureContext, events_from_branches
    from ewpolar.selections.objects import build_objects
    from ewpolar.selections.variables import EventVariables

    # in the processor the events are NanoEvents, with their event numbers
    events = ak.with_field(events_from_branches(branches), np.asarray(branches["event"]),
                           "event")
    variables = EventVariables(build_objects(events, cfg.objects, notes=set()))
    ctx = FeatureContext(events, variables, cfg.regions["signal"], set())
    with np.errstate(invalid="ignore", divide="ignore"):
        return proc.feature_functions()[name](ctx)


def test_estimator_config_errors(sally, tmp_path) -> None:
    cfg, path, _ = sally
    data = cfg.model_dump()
    with pytest.raises(ValueError, match=r"needs a histograms\.s entry"):
        AnalysisConfig.model_validate({**data, "estimators": {"s": {"path": str(path)}}})
    from ewpolar.processors.wh import WHProcessor

    bad = AnalysisConfig.model_validate({
        **data, "estimators": {"s": {"path": str(path), "output": "ratio"}},
        "histograms": {**data["histograms"], "s": {"bins": 2, "start": -1, "stop": 1}}})
    with pytest.raises(ConfigError, match="has no output 'ratio'"):
        WHProcessor(bad)
    param = AnalysisConfig.model_validate({
        **data, "estimators": {"s": {"path": str(path), "parameter": 0.1}},
        "histograms": {**data["histograms"], "s": {"bins": 2, "start": -1, "stop": 1}}})
    with pytest.raises(ConfigError, match="takes no parameter"):
        WHProcessor(param)


def test_the_wh_fit_runs_on_the_score_template(sally, tmp_path) -> None:
    from ewpolar.generator import generate
    from ewpolar.runner.run import load_fileset, run_analysis
    from ewpolar.stats.wh import fit_wh

    cfg, path, edges = sally
    config = estimator_config(cfg, "sally_score", path, edges)
    fileset = generate(config, events=4000, seed=3, out=tmp_path / "samples")
    run_analysis(config, load_fileset(fileset), out=tmp_path / "run")
    fit = fit_wh(config, tmp_path / "run" / "histograms.root", pseudo_data="asimov",
                 scan_points=21)
    lo, hi = fit.scan.interval_68
    assert lo is not None
    assert hi is not None
    assert lo < 0 < hi  # Asimov data at the SM


def test_a_k_fold_estimator_is_routed_by_event_number(tmp_path) -> None:
    """A k-fold model as the observable: event e gets the output of fold model e % k."""
    from ewpolar.generator import simulate
    from ewpolar.models.runtime import load_classifier
    from ewpolar.models.training.crossval import cross_validate
    from ewpolar.models.training.data import TrainingSet
    from ewpolar.models.training.export import export_cross_validation
    from ewpolar.processors.wh import WHProcessor

    cfg = load_config("wh")
    sample = wh_sample(cfg, 8000, 6, names=INPUTS)
    x = sample.columns(INPUTS)
    labels = (sample.int_ > 0).astype(int)  # any two classes will do
    ts = TrainingSet(x, labels, np.ones(len(x)), np.arange(len(x), dtype=np.uint64), INPUTS)
    cv = cross_validate(ts, MLPConfig(n_layers=1, width=4, dropout=0.0, max_epochs=2, seed=1),
                        k=3)
    path = tmp_path / "kfold.onnx"
    export_cross_validation(cv, path)
    edges = np.linspace(-1.0, 1.0, 5)  # includes 0
    config = estimator_config(cfg, "kfold", path, edges, output="probability")
    proc = WHProcessor(config)
    branches = simulate(cfg, "wh", 3000, np.random.default_rng(3))
    table = build_features(branches, cfg, region="signal", names=INPUTS)
    event = np.asarray(branches["event"])[table.selected]
    expected = load_classifier(path).predict(table.values, event)
    values = _processor_values(proc, branches, cfg, "kfold")[table.selected]
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-7)
    # the fold models differ, so routing by another number would change the values
    shifted = load_classifier(path).predict(table.values, event + 1)
    assert np.max(np.abs(shifted - expected)) > 1e-4
