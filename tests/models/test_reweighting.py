"""DCTR reweighting: analytic closure, calibration, ONNX export, coffea weights, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from ewpolar.core.errors import InputError
from ewpolar.models.cli import reweight
from ewpolar.models.reweighting import (
    DCTRConfig,
    DCTRReweighter,
    HistogramCalibration,
    closure_test,
    plot_closure,
    train_dctr,
    weighted_ks,
)
from ewpolar.models.training.mlp import MLPConfig
from scipy import stats

MU, SIGMA = 0.5, 1.2


def _exact_ratio(x: np.ndarray) -> np.ndarray:
    return stats.norm.pdf(x, MU, SIGMA) / stats.norm.pdf(x)


@pytest.fixture(scope="module")
def gaussian_dctr():
    """N(0, 1) → N(0.5, 1.2) with 200 000 events per sample (≈ 10 s on one core)."""
    rng = np.random.default_rng(7)
    n = 200_000
    source = rng.normal(0.0, 1.0, (n, 1))
    target = rng.normal(MU, SIGMA, (n, 1))
    config = DCTRConfig(
        mlp=MLPConfig(n_layers=2, width=32, dropout=0.0, activation="tanh", batch_size=2048,
                      learning_rate=3e-3, max_epochs=60, patience=10, seed=3),
        calibration_bins=40)
    result = train_dctr(source, target, inputs=["x"], config=config)
    return source, target, result


def test_dctr_weights_match_the_exact_density_ratio(gaussian_dctr) -> None:
    # Tolerance basis: with 2 × 200k events, the ratio in a ±0.2 window at the edge of
    # the central 95 % of the source (|x| = 1.96) is known to ≈ 1.5-2 % statistically;
    # optimiser jitter adds about as much. Over five data and training seeds the largest
    # deviation on this grid was 1.1-3.5 %, so 5 % leaves room for both.
    source, _, result = gaussian_dctr
    lo, hi = np.quantile(source[:, 0], [0.025, 0.975])
    x = np.linspace(lo, hi, 201)
    learned = result.reweighter.weights(x[:, None], calibrated=False)
    deviation = learned / _exact_ratio(x) - 1.0
    assert np.max(np.abs(deviation)) < 0.05, f"max deviation {np.max(np.abs(deviation)):.3f}"
    # the classifier separates the samples a little (AUC of the exact ratio ≈ 0.63)
    assert 0.6 < result.auc < 0.66


def test_histogram_calibration_stays_close_to_the_exact_ratio(gaussian_dctr) -> None:
    source, _, result = gaussian_dctr
    lo, hi = np.quantile(source[:, 0], [0.05, 0.95])
    x = np.linspace(lo, hi, 101)
    calibrated = result.reweighter.weights(x[:, None])
    # 40 bins of f (10k events each, ≈ 1.4 % statistical error per bin ratio) interpolated
    # in the logit: noisier than the raw output (observed ≤ 5 %), hence 10 %
    assert np.max(np.abs(calibrated / _exact_ratio(x) - 1.0)) < 0.1


def test_calibration_of_a_perfect_classifier_is_the_identity() -> None:
    rng = np.random.default_rng(1)
    xs, xt = rng.normal(0, 1, 400_000), rng.normal(0.3, 1, 400_000)

    def f(x: np.ndarray) -> np.ndarray:  # the exact p_T / (p_S + p_T)
        r = stats.norm.pdf(x, 0.3, 1) / stats.norm.pdf(x)
        return r / (1 + r)

    cal = HistogramCalibration.fit(f(xs), np.ones_like(xs), f(xt), np.ones_like(xt), 20)
    probe = np.linspace(0.45, 0.6, 7)
    np.testing.assert_allclose(cal(probe), probe / (1 - probe), rtol=0.03)


def test_closure_improves_trained_and_untrained_variables(gaussian_dctr, tmp_path) -> None:
    source, target, result = gaussian_dctr
    rng = np.random.default_rng(11)
    # a variable the classifier never saw: a noisy function of x
    extra_s = source[:, 0] ** 2 + rng.normal(0, 0.3, source.shape[0])
    extra_t = target[:, 0] ** 2 + rng.normal(0, 0.3, target.shape[0])
    weights = result.reweighter.weights(source, calibrated=False)
    ones = np.ones(source.shape[0])
    report = closure_test(np.column_stack([source[:, 0], extra_s]), ones, weights,
                          np.column_stack([target[:, 0], extra_t]), ones, ["x", "x2_smeared"],
                          trained=["x"], bins=20)
    by_name = {v.name: v for v in report.variables}
    for name in ("x", "x2_smeared"):
        v = by_name[name]
        assert v.chi2_before / v.ndf > 100  # the samples differ a lot before reweighting
        assert v.chi2_after / v.ndf < 3.0
        assert v.ks_after < 0.01 < v.ks_before
    assert by_name["x"].trained
    assert not by_name["x2_smeared"].trained
    assert report.weight_summary["mean"] == pytest.approx(1.0, abs=0.02)
    assert "| x2_smeared | no |" in report.to_markdown()
    json.dumps(report.to_dict())
    paths = plot_closure(report, tmp_path)
    assert [p.name for p in paths] == ["closure_x.png", "closure_x2_smeared.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_weighted_ks_matches_scipy_for_unit_weights() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 500), rng.normal(0.2, 1, 700)
    expected = stats.ks_2samp(a, b).statistic
    assert weighted_ks(a, np.ones(500), b, np.ones(700)) == pytest.approx(expected, abs=1e-12)
    # integer weights act as repeated events
    doubled = weighted_ks(a, np.full(500, 2.0), b, np.ones(700))
    assert doubled == pytest.approx(expected, abs=1e-12)


@pytest.fixture(scope="module")
def small_dctr():
    rng = np.random.default_rng(3)
    source = rng.normal(0, 1, (3000, 2))
    target = rng.normal(0.3, 1.1, (3000, 2))
    config = DCTRConfig(mlp=MLPConfig(n_layers=2, width=8, dropout=0.0, max_epochs=2, seed=1),
                        calibration_bins=10, clip_max=5.0)
    return source, train_dctr(source, target, inputs=["a", "b"], config=config)


def test_onnx_export_agrees_with_torch(small_dctr, tmp_path) -> None:
    source, result = small_dctr
    rw = result.reweighter
    path = rw.export(tmp_path / "dctr.onnx")
    loaded = DCTRReweighter.load(path)
    assert loaded.inputs == ("a", "b")
    assert loaded.clip_max == 5.0
    assert loaded.calibration is not None
    np.testing.assert_allclose(loaded.probability(source), rw.probability(source), atol=1e-5)
    np.testing.assert_allclose(loaded.weights(source), rw.weights(source), rtol=1e-5)
    assert loaded.weights(source).max() <= 5.0
    # inputs by name give the same numbers
    by_name = loaded.weights({"b": source[:, 1], "a": source[:, 0]})
    np.testing.assert_array_equal(by_name, loaded.weights(source))
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["kind"] == "dctr"
    assert card["inputs"] == ["a", "b"]
    assert set(card["outputs"]) == {"probability", "logit"}


def test_loaded_reweighter_travels_with_its_model(small_dctr, tmp_path) -> None:
    import pickle

    from ewpolar.models import runtime as inference

    source, result = small_dctr
    path = result.reweighter.export(tmp_path / "dctr.onnx")
    loaded = DCTRReweighter.load(path)
    expected = loaded.weights(source)
    payload = pickle.dumps(loaded)
    assert len(payload) > path.stat().st_size  # the graph's bytes travel, not only the path
    # a worker without the file, unpickling the reweighter for every chunk, builds one session
    path.rename(tmp_path / "moved.onnx")
    inference.clear_session_cache()
    for _ in range(3):
        np.testing.assert_array_equal(pickle.loads(payload).weights(source), expected)
    assert len(inference._SESSIONS) == 1
    # bytes altered on the way are refused against the card's sha256
    broken = pickle.loads(payload)
    broken.onnx.blob = broken.onnx.blob[:-1] + bytes([broken.onnx.blob[-1] ^ 1])
    inference.clear_session_cache()
    with pytest.raises(InputError, match="does not match its model card"):
        broken.weights(source)


def test_weights_go_into_coffea_weights(small_dctr) -> None:
    from coffea.analysis_tools import Weights

    source, result = small_dctr
    w = result.reweighter.weights(source)
    correction = Weights(source.shape[0])
    result.reweighter.add_to_weights(correction, "dctr", source)
    np.testing.assert_allclose(correction.weight(), w)
    systematic = Weights(source.shape[0])
    result.reweighter.add_to_weights(systematic, "generator", source, systematic=True)
    np.testing.assert_allclose(systematic.weight(), 1.0)
    np.testing.assert_allclose(systematic.weight("generatorUp"), w)
    np.testing.assert_allclose(systematic.weight("generatorDown"), 1.0 / w)


def test_bad_inputs_raise_input_errors(small_dctr) -> None:
    _, result = small_dctr
    with pytest.raises(InputError, match="shape"):
        result.reweighter.weights(np.zeros((4, 3)))
    with pytest.raises(InputError, match="missing inputs"):
        result.reweighter.weights({"a": np.zeros(4)})
    with pytest.raises(InputError, match="NaN"):
        train_dctr(np.full((20, 1), np.nan), np.zeros((20, 1)), inputs=["x"])


def test_reweight_command_generated_samples(tmp_path) -> None:
    out = tmp_path / "rw"
    result = CliRunner().invoke(reweight, [
        "--source", "generate:wbb", "--target", "generate:wh", "--events", "6000",
        "--features", "ptw,mbb,lep_pt", "--epochs", "2", "--layers", "1", "--width", "8",
        "--calibrate", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("dctr.onnx", "dctr.json", "closure.json", "closure.md", "closure_ptw.png",
                 "closure_q_cos_delta_plus.png"):
        assert (out / name).is_file(), name
    closure = json.loads((out / "closure.json").read_text())
    assert closure["variables"]["ptw"]["trained"] is True
    assert closure["variables"]["mt_tot"]["trained"] is False
    rw = DCTRReweighter.load(out / "dctr.onnx")
    assert rw.inputs == ("ptw", "mbb", "lep_pt")


def test_reweight_command_reads_filesets(tmp_path) -> None:
    from ewpolar.core.config import load_config
    from ewpolar.generator import generate

    fileset = generate(load_config("wh"), events=3000, seed=2, out=tmp_path / "samples",
                       datasets=["wh", "wbb"])
    result = CliRunner().invoke(reweight, [
        "--source", f"{fileset}:wbb", "--target", f"{fileset}:wh", "--events", "2500",
        "--features", "ptw,mbb", "--epochs", "1", "--layers", "1", "--width", "4",
        "--out", str(tmp_path / "fs")])
    assert result.exit_code == 0, result.output
    closure = json.loads((tmp_path / "fs" / "closure.json").read_text())
    # --events limits what is read: at most 2500 of the 3000 events of each dataset
    assert closure["training"]["n_source"] + 1 < 2500
    missing = CliRunner().invoke(reweight, [
        "--source", f"{fileset}:ttbar", "--target", f"{fileset}:wh", "--out", str(tmp_path)])
    assert missing.exit_code == 2
    assert "no dataset 'ttbar'" in missing.output


def test_reweight_command_weight_variation(tmp_path) -> None:
    result = CliRunner().invoke(reweight, [
        "--source", "generate:wh", "--target-weight", "LHEScaleWeight:8", "--events", "4000",
        "--features", "ptw,mt_tot", "--epochs", "1", "--layers", "1", "--width", "4",
        "--out", str(tmp_path / "scale")])
    assert result.exit_code == 0, result.output
    assert "mt_tot" in (tmp_path / "scale" / "closure.md").read_text()
    closure = json.loads((tmp_path / "scale" / "closure.json").read_text())
    # the same events under two weightings: paired errors, so the μR = μF = 2 shape change
    # (which grows with the hard scale, hence with mt_tot) is visible before reweighting
    mt_tot = closure["variables"]["mt_tot"]
    assert mt_tot["paired"] is True
    assert mt_tot["chi2_ndf_before"] > 5


@pytest.mark.parametrize(("args", "message"), [
    (["--source", "generate:wh"], "exactly one of --target and --target-weight"),
    (["--source", "generate:zz", "--target", "generate:wh"], "'zz' is not a sample"),
    (["--source", "missing.root", "--target", "generate:wh"], "file not found"),
    (["--source", "generate:wh", "--target-weight", "LHEScaleWeight"], "LHEScaleWeight:INDEX"),
    (["--source", "generate:wh", "--target", "generate:wbb", "--features", "nope"],
     "unknown features"),
])
def test_reweight_command_user_errors(tmp_path, args, message) -> None:
    result = CliRunner().invoke(reweight, [*args, "--events", "500", "--epochs", "1",
                                           "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.output.startswith("ewpolar: error: ")
    assert message in result.output
    assert "Traceback" not in result.output


def _weight_slope_sample(n: int = 200_000, slope: float = 0.03):
    """One sample under two weightings: 1 and 1 + slope·x (x uniform in [−1, 1])."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1.0, 1.0, n)
    y = x + rng.normal(0.0, 0.5, n)  # a second variable, correlated with x
    return np.column_stack([x, y]), np.ones(n), 1.0 + slope * x


def test_paired_closure_catches_a_reweighter_that_does_nothing() -> None:
    # Same events, target weight 1 + 0.03 x. Analytic: the unit-area fraction of a bin
    # changes by ≈ 0.03 (x̄_bin − x̄) ≈ ±1.4 % at the ends, while the paired statistical
    # error (spread of the per-event weight difference) is ≈ 0.03 σ_x(bin)/√n_bin, tiny:
    # a reweighter that does nothing must show a huge χ²/ndf, before and after.
    features, w_src, w_tgt = _weight_slope_sample()
    report = closure_test(features, w_src, np.ones(len(w_src)), features, w_tgt, ["x", "y"],
                          trained=["x"], bins=20)
    for v in report.variables:
        assert v.chi2_before / v.ndf > 100, (v.name, v.chi2_before / v.ndf)
        assert v.chi2_after / v.ndf > 100, (v.name, v.chi2_after / v.ndf)
    assert "paired" in report.to_markdown()


def test_paired_closure_passes_the_correct_reweighter() -> None:
    features, w_src, w_tgt = _weight_slope_sample()
    exact = closure_test(features, w_src, w_tgt / w_src, features, w_tgt, ["x", "y"], bins=20)
    for v in exact.variables:
        assert v.ndf == 19
        assert v.chi2_after == pytest.approx(0.0, abs=1e-9)  # the same weights event by event
        assert v.chi2_before / v.ndf > 100
    # right on average, 2 % scatter per event: the paired errors are this scatter, χ²/ndf ≈ 1
    rng = np.random.default_rng(9)
    noisy = (w_tgt / w_src) * (1.0 + 0.02 * rng.standard_normal(len(w_src)))
    report = closure_test(features, w_src, noisy, features, w_tgt, ["x", "y"], bins=20)
    for v in report.variables:
        assert v.chi2_after / v.ndf < 2.5, (v.name, v.chi2_after / v.ndf)


def test_independent_closure_is_kept_for_different_events() -> None:
    features, w_src, w_tgt = _weight_slope_sample()
    # the same weights but forced independent errors: the old, too small χ²
    report = closure_test(features, w_src, np.ones(len(w_src)), features, w_tgt, ["x"],
                          bins=20, paired=False)
    assert report.variables[0].chi2_after / report.variables[0].ndf < 5
