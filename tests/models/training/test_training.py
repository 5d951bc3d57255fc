"""Training pipeline: AUC, folds, parquet, deterministic training, CV, export, search, selection."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
optuna = pytest.importorskip("optuna")
pytest.importorskip("onnx")

from ewpolar.core.errors import InputError  # noqa: E402
from ewpolar.models.runtime import load_classifier  # noqa: E402
from ewpolar.models.training.crossval import cross_validate  # noqa: E402
from ewpolar.models.training.data import TrainingSet, kfold_index  # noqa: E402
from ewpolar.models.training.export import (  # noqa: E402
    ExportError,
    FoldEnsemble,
    build_onnx_model,
    export_classifier,
    export_cross_validation,
    verify_export,
)
from ewpolar.models.training.metrics import weighted_roc_auc  # noqa: E402
from ewpolar.models.training.mlp import (  # noqa: E402
    ACTIVATIONS,
    MLP,
    MLPConfig,
    balance_class_weights,
    train_mlp,
)
from ewpolar.models.training.optimize import SearchSpace, optimize_hyperparameters  # noqa: E402
from ewpolar.models.training.selection import (  # noqa: E402
    backward_elimination,
    save_elimination_plot,
)

TINY = MLPConfig(
    n_layers=1, width=8, dropout=0.0, learning_rate=1e-2, batch_size=128,
    max_epochs=8, patience=3, seed=3,
)


def gaussian_classes(n: int, shift: float, seed: int, n_noise: int = 0) -> TrainingSet:
    """Two unit Gaussians whose first input differs by ``shift``; further inputs are noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    signal = rng.normal(size=n) + shift * labels
    noise = rng.normal(size=(n, n_noise))
    inputs = ("signal", *(f"noise{i}" for i in range(n_noise)))
    return TrainingSet(
        np.column_stack([signal, noise]), labels, rng.uniform(0.5, 1.5, n),
        rng.permutation(n).astype(np.uint64), inputs, {"labels": {"1": "shifted", "0": "centred"}},
    )


def brute_force_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    pos, neg = labels == 1, labels == 0
    si, sj = scores[pos][:, None], scores[neg][None, :]
    wij = weights[pos][:, None] * weights[neg][None, :]
    wins = (si > sj) + 0.5 * (si == sj)
    return float((wij * wins).sum() / wij.sum())


# --- metrics and data -------------------------------------------------------------------------

@pytest.mark.parametrize("signed_weights", [False, True])
def test_weighted_auc_matches_brute_force(signed_weights: bool) -> None:
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, 400)
    scores = np.round(rng.normal(size=400) + 0.7 * labels, 1)  # rounding makes ties
    weights = rng.uniform(0.1, 2.0, 400)
    if signed_weights:  # NLO-like: some negative weights, positive class totals
        weights[rng.random(400) < 0.1] *= -1
    assert weighted_roc_auc(scores, labels, weights) == pytest.approx(
        brute_force_auc(scores, labels, weights), rel=1e-12
    )


def test_weighted_auc_limits() -> None:
    labels = np.array([0, 0, 1, 1])
    assert weighted_roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert weighted_roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert weighted_roc_auc(np.full(4, 0.5), labels) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        weighted_roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))


def test_kfold_index_is_event_modulo_k() -> None:
    event = np.array([0, 1, 2, 3, 4, 5, 2**63 + 7, 2**64 - 1], dtype=np.uint64)
    assert kfold_index(event, 5).tolist() == [int(e) % 5 for e in event.tolist()]
    assert kfold_index(np.array([-1, 6]), 5).tolist() == [4, 1]  # like ONNX Mod(fmod=0)
    with pytest.raises(ValueError, match="k >= 2"):
        kfold_index(event, 1)


def test_training_set_parquet_round_trip(tmp_path) -> None:
    ts = gaussian_classes(50, 1.0, seed=1, n_noise=2)
    path = ts.write_parquet(tmp_path / "set.parquet")
    back = TrainingSet.read_parquet(path)
    assert back.inputs == ts.inputs
    assert back.metadata == ts.metadata
    for attr in ("features", "labels", "weights", "event"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(ts, attr))
        assert getattr(back, attr).dtype == getattr(ts, attr).dtype
    picked = TrainingSet.read_parquet(path, inputs=["noise1", "signal"])
    np.testing.assert_array_equal(picked.features, ts.features[:, [2, 0]])
    with pytest.raises(InputError, match="lacks the input"):
        TrainingSet.read_parquet(path, inputs=["mjj"])
    with pytest.raises(InputError, match="not found"):
        TrainingSet.read_parquet(tmp_path / "absent.parquet")


def test_training_set_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        TrainingSet(np.zeros((2, 1)), [0, 2], [1, 1], np.arange(2), ("x",))
    with pytest.raises(ValueError, match="NaN"):
        TrainingSet(np.array([[0.0], [np.nan]]), [0, 1], [1, 1], np.arange(2), ("x",))


def test_class_weights_balanced() -> None:
    labels = np.array([0, 0, 0, 1])
    out = balance_class_weights(labels, np.array([1.0, 2.0, 3.0, 0.5]))
    assert out[labels == 0].sum() == pytest.approx(out[labels == 1].sum())
    assert out.mean() == pytest.approx(1.0)


# --- training -------------------------------------------------------------------------------

def test_training_is_deterministic_for_a_seed() -> None:
    ts = gaussian_classes(1000, 1.0, seed=2, n_noise=1)
    cfg = replace(TINY, dropout=0.2)  # dropout draws random numbers too
    runs = [train_mlp(ts.features, ts.labels, ts.weights, cfg) for _ in range(2)]
    first, second = (r.model.state_dict() for r in runs)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert runs[0].history.val_loss == runs[1].history.val_loss
    other = train_mlp(ts.features, ts.labels, ts.weights, replace(cfg, seed=cfg.seed + 1))
    assert not torch.equal(other.model.state_dict()["network.0.weight"], first["network.0.weight"])
    assert torch.get_num_threads() >= 1
    assert not torch.are_deterministic_algorithms_enabled()


def test_training_approaches_the_bayes_optimal_auc() -> None:
    # two unit Gaussians with mean difference Δ: the optimal AUC is Φ(Δ/√2)
    shift = 1.5
    bayes = 0.5 * (1 + math.erf(shift / math.sqrt(2) / math.sqrt(2)))  # ≈ 0.856
    ts = gaussian_classes(4000, shift, seed=4)
    cv = cross_validate(ts, replace(TINY, max_epochs=10), k=2)
    # 2000 held-out events per fold: statistical spread of the AUC ≈ 0.01
    assert 0.75 < bayes - 0.04 < min(cv.fold_auc)
    assert max(cv.fold_auc) < bayes + 0.04


def test_cross_validation_scores_each_fold_with_its_held_out_model() -> None:
    ts = gaussian_classes(900, 1.0, seed=5)
    cv = cross_validate(ts, TINY, k=3)
    folds = ts.folds(3)
    assert cv.complete
    assert not np.isnan(cv.oof_scores).any()
    for f in range(3):
        held = folds == f
        expected = cv.model_for_fold(f).predict_proba(ts.features[held])
        np.testing.assert_array_equal(cv.oof_scores[held], expected)
        assert cv.fold_auc[f] == pytest.approx(
            weighted_roc_auc(expected, ts.labels[held], ts.weights[held])
        )
    partial = cross_validate(ts, TINY, k=3, folds=[1])
    assert not partial.complete
    assert np.isnan(partial.oof_scores[folds != 1]).all()
    with pytest.raises(ValueError, match="export needs all"):
        export_cross_validation(partial, "unused.onnx")


# --- export -------------------------------------------------------------------------------

def random_models(k: int, n_inputs: int, activation: str = "relu", seed: int = 0) -> list[MLP]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    return [
        MLP(n_inputs, n_layers=2, width=16, activation=activation, dropout=0.1,
            input_mean=rng.normal(size=n_inputs), input_scale=rng.uniform(0.5, 3, n_inputs)).eval()
        for _ in range(k)
    ]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_onnx_agrees_with_torch(tmp_path, activation: str) -> None:
    models = random_models(4, 3, activation)
    card = export_classifier(models, tmp_path / "clf.onnx", inputs=["a", "b", "c"],
                             fold_auc=[0.7] * 4, config=TINY)
    rng = np.random.default_rng(9)
    x = (rng.normal(size=(3000, 3)) * 2).astype(np.float32)
    event = rng.integers(0, 2**40, size=3000)
    onnx_prob = load_classifier(tmp_path / "clf.onnx").predict(x, event)
    torch_prob = FoldEnsemble(models).predict_proba(x, event)
    np.testing.assert_allclose(onnx_prob, torch_prob, rtol=0, atol=1e-5)
    # each event's probability comes from the model of its own fold
    for f in range(4):
        rows = event % 4 == f
        np.testing.assert_allclose(onnx_prob[rows], models[f].predict_proba(x[rows]), atol=1e-5)
    assert card.k == 4


def constant_models(probabilities: list[float], n_inputs: int) -> list[MLP]:
    """Fold models whose output is a fixed probability, whatever the inputs."""
    models = []
    for p in probabilities:
        model = MLP(n_inputs, n_layers=1, width=2)
        with torch.no_grad():
            for param in model.parameters():
                param.zero_()
            model.network[-1].bias.fill_(math.log(p / (1 - p)))
        models.append(model.eval())
    return models


def test_event_number_selects_the_fold_model(tmp_path) -> None:
    k = 5
    probabilities = [0.1, 0.3, 0.5, 0.7, 0.9]
    export_classifier(constant_models(probabilities, 2), tmp_path / "folds.onnx",
                      inputs=["x", "y"], fold_auc=[0.5] * k, config=TINY)
    clf = load_classifier(tmp_path / "folds.onnx")
    event = np.array([0, 1, 2, 3, 4, 5, 12, 99, 2**62 + 3, 2**64 - 1], dtype=np.uint64)
    features = np.random.default_rng(0).normal(size=(event.size, 2))
    expected = [probabilities[int(e) % k] for e in event.tolist()]
    np.testing.assert_allclose(clf.predict(features, event), expected, atol=1e-6)
    # int64 event numbers give the same folds
    signed = event[:-1].astype(np.int64)
    np.testing.assert_allclose(clf.predict(features[:-1], signed), expected[:-1], atol=1e-6)


def test_export_check_catches_a_graph_that_differs() -> None:
    models = random_models(2, 2, seed=1)
    other = random_models(2, 2, seed=2)
    blob = build_onnx_model(other).SerializeToString()
    x = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    with pytest.raises(ExportError, match="differ by up to"):
        verify_export(blob, models, x, np.arange(100))


def test_export_writes_the_model_card(tmp_path) -> None:
    ts = gaussian_classes(600, 1.5, seed=6, n_noise=1)
    cv = cross_validate(ts, TINY, k=2)
    card = export_cross_validation(
        cv, tmp_path / "sig_vs_bkg.onnx", samples={"1": ["ssww_LL"], "0": ["ssww_TT"]},
        labels={"1": "W_L W_L", "0": "W_T W_T"}, reference_features=ts.features,
    )
    data = card.to_dict()
    assert data["format"] == "ewpolar-classifier-card/1"
    assert (data["kind"], list(data["outputs"])) == ("classifier", ["probability"])
    assert data["inputs"] == ["signal", "noise0"]
    assert data["fold_auc"] == cv.fold_auc
    assert data["training"]["k"] == 2
    assert data["training"]["seed"] == TINY.seed
    assert data["training"]["hyperparameters"]["width"] == TINY.width
    assert data["training"]["samples"]["1"] == ["ssww_LL"]
    assert data["training"]["labels"]["0"] == "W_T W_T"
    assert data["ewpolar_version"]
    assert data["created"].endswith("+00:00")
    clf = load_classifier(tmp_path / "sig_vs_bkg.onnx")
    assert clf.card == card
    np.testing.assert_allclose(clf.predict(ts.features, ts.event), cv.oof_scores, atol=1e-5)


# --- hyperparameter search ------------------------------------------------------------------

SPACE = SearchSpace(n_layers=(1, 2), width=(4, 16), learning_rate=(1e-3, 3e-2),
                    batch_size=(64, 128), dropout=(0.0, 0.2))
GOOD = {"n_layers": 1, "width": 8, "learning_rate": 2e-2, "batch_size": 64, "dropout": 0.0}


def test_optuna_search_resumes_from_its_database(tmp_path) -> None:
    ts = gaussian_classes(600, 1.5, seed=7)
    base = replace(TINY, max_epochs=4, patience=4)
    db = tmp_path / "study.db"
    kwargs = {"storage": db, "study_name": "tiny", "seed": 1, "k": 2, "n_objective_folds": 1,
              "search_space": SPACE}
    first = optimize_hyperparameters(ts, base, n_trials=3, **kwargs)
    assert first.n_trials == 3
    assert first.storage == f"sqlite:///{db.resolve()}"
    assert 0.6 < first.best_value <= 1.0
    second = optimize_hyperparameters(ts, base, n_trials=5, **kwargs)
    assert second.n_trials == 5
    assert second.trials[:3] == first.trials  # the stored trials are kept, not redone
    assert len({str(t["params"]) for t in second.trials}) == 5  # no replayed draws
    again = optimize_hyperparameters(ts, base, n_trials=5, **kwargs)
    assert again.n_trials == 5  # nothing left to do
    assert set(second.best_params) == {"n_layers", "width", "learning_rate", "batch_size",
                                       "dropout"}
    with pytest.raises(InputError, match="cannot resume"):
        optimize_hyperparameters(ts.select_inputs(["signal"]), base, n_trials=6,
                                 **{**kwargs, "k": 3})


def test_optuna_prunes_a_trial_that_does_not_learn() -> None:
    ts = gaussian_classes(600, 1.5, seed=8)
    base = replace(TINY, max_epochs=6, patience=6)
    # two good trials set the median; a learning rate of 1e-7 leaves the loss at ln 2
    hopeless = {**GOOD, "learning_rate": 1e-7}
    space = replace(SPACE, learning_rate=(1e-7, 3e-2))
    result = optimize_hyperparameters(
        ts, base, n_trials=3, k=2, n_objective_folds=1, search_space=space,
        pruner_startup_trials=2, pruner_warmup_steps=1, enqueue=[GOOD, GOOD, hopeless],
    )
    states = [t["state"] for t in result.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert result.best_params == GOOD


# --- input selection ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["shuffle", "retrain"])
def test_backward_elimination_drops_noise_and_keeps_the_signal(tmp_path, mode: str) -> None:
    ts = gaussian_classes(1500, 2.0, seed=9, n_noise=2)
    result = backward_elimination(ts, TINY, mode=mode, k=2, min_inputs=1, tolerance=0.02)
    assert sorted(result.dropped) == ["noise0", "noise1"]
    assert result.selected_inputs == ("signal",)
    assert [s.iteration for s in result.steps] == [0, 1, 2]
    assert result.steps[1].importances["signal"] > 0.2  # shuffling/removing it kills the AUC
    assert abs(result.steps[-1].auc - result.baseline_auc) < 0.02
    png = save_elimination_plot(result, tmp_path / "elimination.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backward_elimination_stops_beyond_the_tolerance() -> None:
    # both inputs carry separation: dropping either costs more than the tolerance
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 2, 1500)
    x = rng.normal(size=(1500, 2)) + 1.2 * labels[:, None]
    ts = TrainingSet(x, labels, np.ones(1500), np.arange(1500, dtype=np.uint64), ("a", "b"))
    result = backward_elimination(ts, TINY, mode="shuffle", k=2, tolerance=0.01)
    assert [s.accepted for s in result.steps] == [True, False]
    assert result.selected_inputs == ("a", "b")
    assert result.to_dict()["selected_inputs"] == ["a", "b"]
