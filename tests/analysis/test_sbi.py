"""SBI: joint quantities from the WH weights, estimators on analytic cases, export, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from ewpolar.core.config import load_config
from ewpolar.generator import simulate
from ewpolar.models.cli_ml import sbi
from ewpolar.models.onnx_mlp import load_onnx_model, torch_outputs
from ewpolar.models.sbi import (
    CPSample,
    binned_asimov_scan,
    binned_fisher_information,
    cp_weight,
    joint_likelihood_ratio,
    joint_score,
    ratio_training_data,
    score_fisher_information,
    train_ratio_estimator,
    train_score_estimator,
    unbinned_asimov_scan,
)
from ewpolar.models.training.mlp import MLPConfig
from scipy import stats


def _config(**kw) -> MLPConfig:
    settings = {"n_layers": 2, "width": 32, "dropout": 0.0, "activation": "tanh",
                "batch_size": 1024, "learning_rate": 3e-3, "max_epochs": 40, "patience": 8,
                "seed": 1}
    return MLPConfig(**{**settings, **kw})


@pytest.fixture(scope="module")
def wh_weights():
    branches = simulate(load_config("wh"), "wh", 5000, np.random.default_rng(4))
    return tuple(np.asarray(branches[f"CPWeight_{k}"], dtype=np.float64)
                 for k in ("sm", "int", "quad"))


@pytest.mark.parametrize("c", [-0.7, 0.0, 0.3, 1.5])
def test_joint_score_is_the_derivative_of_the_normalised_weight(wh_weights, c) -> None:
    sm, int_, quad = wh_weights
    assert np.all(cp_weight(sm, int_, quad, c) > 0)

    def log_density(cc: float) -> np.ndarray:
        w = cp_weight(sm, int_, quad, cc)
        return np.log(w / w.sum())

    h = 1e-5
    finite_difference = (log_density(c + h) - log_density(c - h)) / (2 * h)
    np.testing.assert_allclose(joint_score(sm, int_, quad, c), finite_difference, atol=1e-7)


@pytest.mark.parametrize(("c0", "c1"), [(0.5, 0.0), (-1.0, 0.4), (0.2, 0.2)])
def test_joint_ratio_from_the_weights(wh_weights, c0, c1) -> None:
    sm, int_, quad = wh_weights
    w0 = sm + c0 * int_ + c0**2 * quad
    w1 = sm + c1 * int_ + c1**2 * quad
    expected = (w0 / w0.sum()) / (w1 / w1.sum())
    r = joint_likelihood_ratio(sm, int_, quad, c0, c1)
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    # E_{c1}[r] = 1: the ratio of normalised densities
    assert np.sum(r * w1 / w1.sum()) == pytest.approx(1.0, rel=1e-12)
    # the joint score is the derivative of ln r in c0
    h = 1e-5
    d = (np.log(joint_likelihood_ratio(sm, int_, quad, c0 + h, c1))
         - np.log(joint_likelihood_ratio(sm, int_, quad, c0 - h, c1))) / (2 * h)
    np.testing.assert_allclose(joint_score(sm, int_, quad, c0), d, atol=1e-7)


def test_carl_learns_the_ratio_of_a_mixture_to_a_normal() -> None:
    # Tolerance basis: 2 × 100k events; |Δ ln r| over the central 80 % of p1 was 0.024-0.047
    # for four seeds (statistics of ±0.1 windows ≈ 1-2 %, plus optimiser jitter): 0.08.
    rng = np.random.default_rng(1)
    n = 100_000
    x0 = np.where(rng.random(n) < 0.5, rng.normal(-1.0, 0.8, n), rng.normal(1.0, 0.8, n))
    x1 = rng.normal(0.0, 1.3, n)

    def log_r(x: np.ndarray) -> np.ndarray:
        p0 = 0.5 * stats.norm.pdf(x, -1.0, 0.8) + 0.5 * stats.norm.pdf(x, 1.0, 0.8)
        return np.log(p0) - stats.norm.logpdf(x, 0.0, 1.3)

    est = train_ratio_estimator(
        "carl", np.concatenate([x0, x1])[:, None], np.concatenate([np.zeros(n), np.ones(n)]),
        np.ones(2 * n), inputs=["x"], config=_config(batch_size=2048, max_epochs=60, patience=10))
    x = np.linspace(*np.quantile(x1, [0.1, 0.9]), 201)
    assert np.max(np.abs(est.log_ratio(x[:, None]) - log_r(x))) < 0.08


def test_sally_learns_the_score_of_a_gaussian_family() -> None:
    # z ~ N(θ, 1), x = z + N(0, 0.5²): p(x|θ) = N(θ, 1.25), t(x|0) = x/1.25, I = 0.8 per event.
    # Generator-like sample: z from a wider N(0, 1.5²) with weights N(z; 0, 1)/N(z; 0, 1.5²)
    # (the SM), joint score t(x, z|0) = z.
    rng = np.random.default_rng(1)
    n = 50_000
    z = rng.normal(0.0, 1.5, n)
    weights = stats.norm.pdf(z) / stats.norm.pdf(z, 0.0, 1.5)
    x = z + rng.normal(0.0, 0.5, n)
    est = train_score_estimator(x[:, None], z, weights, inputs=["x"], config=_config())
    grid = np.linspace(-2.0, 2.0, 101)
    # observed ≤ 0.034 over three seeds; the score is ±1.6 here
    assert np.max(np.abs(est.score(grid[:, None]) - grid / 1.25)) < 0.08
    z_sm = rng.normal(0.0, 1.0, 200_000)
    x_sm = z_sm + rng.normal(0.0, 0.5, z_sm.size)
    info = score_fisher_information(est.score(x_sm[:, None]), np.ones_like(x_sm)) / x_sm.size
    assert info == pytest.approx(0.8, rel=0.10)


def test_alices_learns_a_parameterised_ratio_and_its_score() -> None:
    # weights quadratic in c depending on x only: p(x|c)/p(x|0) = w(c)/σ(c) / (sm/σ(0)) exactly
    rng = np.random.default_rng(1)
    n = 20_000
    x = rng.normal(0.0, 1.0, n)

    def a(v: np.ndarray) -> np.ndarray:
        return 0.8 * np.tanh(v)

    def b(v: np.ndarray) -> np.ndarray:
        return 0.3 + 0.2 * v**2 / (1 + v**2)

    sample = CPSample(("x",), x[:, None].astype(np.float32), np.ones(n), a(x), b(x), 1.0)
    rows = ratio_training_data(sample, ["x"], 1.0, draws=2, seed=1)
    est = train_ratio_estimator("alices", rows["features"], rows["labels"], rows["weights"],
                                inputs=["x", "c"], parameter="c", joint_ratio=rows["joint_ratio"],
                                joint_score=rows["joint_score"], config=_config())
    grid = np.linspace(-2.0, 2.0, 101)
    np.testing.assert_array_equal(est.log_ratio(grid[:, None], 0.0), 0.0)  # anchored at c = 0
    for c in (-0.8, -0.3, 0.4, 1.0):
        norm = 1 + c * a(x).mean() + c * c * b(x).mean()
        w = 1 + c * a(grid) + c * c * b(grid)
        exact = np.log(w / norm)
        exact_t = (a(grid) + 2 * c * b(grid)) / w - (a(x).mean() + 2 * c * b(x).mean()) / norm
        # observed ≤ 0.008 and ≤ 0.06 over three seeds
        assert np.max(np.abs(est.log_ratio(grid[:, None], c) - exact)) < 0.02
        assert np.max(np.abs(est.score(grid[:, None], c) - exact_t)) < 0.1


def test_onnx_export_agrees_with_torch(tmp_path) -> None:
    rng = np.random.default_rng(2)
    n = 2000
    x = rng.normal(size=(n, 3))
    sample = CPSample(("a", "b", "c"), x.astype(np.float32), np.ones(n),
                      0.3 * np.tanh(x[:, 0]), np.full(n, 0.1), 1.0)
    rows = ratio_training_data(sample, ["a", "b", "c"], 0.5, draws=1)
    est = train_ratio_estimator("alice", rows["features"], rows["labels"], rows["weights"],
                                inputs=["a", "b", "c", "coupling"], parameter="coupling",
                                joint_ratio=rows["joint_ratio"], config=_config(max_epochs=2))
    path = est.export(tmp_path / "alice.onnx")
    model = load_onnx_model(path)
    probe = np.column_stack([x, rng.uniform(-0.5, 0.5, n)]).astype(np.float32)
    got = model.predict(probe)
    want = torch_outputs(est.model, probe, {"log_ratio": "negate", "probability": "sigmoid"})
    np.testing.assert_allclose(got["log_ratio"], want["log_ratio"], atol=1e-5)
    np.testing.assert_allclose(got["probability"], want["probability"], atol=1e-5)
    np.testing.assert_allclose(got["log_ratio"], est.log_ratio(x, probe[:, 3]), atol=1e-5)
    assert model.card.kind == "alice"
    assert model.inputs == ("a", "b", "c", "coupling")

    sally = train_score_estimator(x, x[:, 0], np.ones(n), inputs=["a", "b", "c"],
                                  config=_config(max_epochs=2))
    model = load_onnx_model(sally.export(tmp_path / "sally.onnx"))
    np.testing.assert_allclose(model.predict(x, "score"), sally.score(x), atol=1e-5)


def test_unbinned_likelihood_with_the_exact_ratio_equals_the_binned_one() -> None:
    # a discrete observable: the unbinned likelihood is the binned one
    rng = np.random.default_rng(5)
    category = rng.integers(0, 4, 3000)
    sm = rng.uniform(0.5, 1.5, 3000)
    int_ = sm * np.array([-0.4, -0.1, 0.2, 0.5])[category]
    quad = sm * np.array([0.2, 0.1, 0.1, 0.3])[category]
    values = np.linspace(-1, 1, 21)
    hist = [np.bincount(category, weights=w, minlength=4) for w in (sm, int_, quad)]
    binned = binned_asimov_scan(*hist, values)
    ratio_bins = np.stack([(hist[0] + c * hist[1] + c * c * hist[2]) / hist[0] for c in values])
    nu = np.array([(hist[0] + c * hist[1] + c * c * hist[2]).sum() for c in values])
    log_r = np.log(ratio_bins[:, category] * hist[0].sum() / nu[:, None])
    unbinned = unbinned_asimov_scan(log_r, sm, nu)
    np.testing.assert_allclose(unbinned, binned, rtol=1e-9, atol=1e-9)
    # curvature at 0 is the Fisher information (shape + rate)
    info = binned_fisher_information(hist[0], hist[1]) + hist[1].sum() ** 2 / hist[0].sum()
    h = values[1] - values[0]
    assert (binned[11] + binned[9] - 2 * binned[10]) / h**2 == pytest.approx(
        2 * info, rel=0.05)


def test_sbi_command_end_to_end(tmp_path) -> None:
    out = tmp_path / "sbi"
    result = CliRunner().invoke(sbi, [
        "--events", "12000", "--seed", "3", "--epochs", "2", "--layers", "1", "--width", "8",
        "--scan-points", "21", "--sally-bins", "5", "--analysis-fit", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "limits.md").read_text()
    for label in ("(a′) fit_wh", "(a) binned", "(b) SALLY", "(c) CARL", "(c) ALICE", "(c) ALICES",
                  "truth"):
        assert label in table, label
    assert "68% CL" in table
    assert "95% CL" in table
    limits = json.loads((out / "limits.json").read_text())
    assert set(limits["methods"]) == {"analysis_fit", "binned", "sally", "carl", "alice",
                                      "alices", "truth"}
    assert (out / "analysis_fit" / "run" / "histograms.root").is_file()
    truth = limits["methods"]["truth"]
    lo, hi = truth["interval_68"]
    assert lo < 0 < hi  # the Asimov data are the SM
    assert limits["fisher_information"]["truth"] >= limits["fisher_information"]["binned"]
    assert (out / "likelihood_scans.png").stat().st_size > 1000
    for method in ("sally", "carl", "alice", "alices"):
        assert load_onnx_model(out / f"{method}.onnx").card.kind == method


@pytest.mark.parametrize(("args", "message"), [
    (["--config", "ssww"], "needs the WH config"),
    (["--methods", "carl,nope"], "unknown ['nope']"),
    (["--features", "lep_pt,nope"], "unknown features"),
])
def test_sbi_command_user_errors(tmp_path, args, message) -> None:
    result = CliRunner().invoke(sbi, [*args, "--events", "2000", "--epochs", "1",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("ewpolar: error: ")
    assert message in result.output
