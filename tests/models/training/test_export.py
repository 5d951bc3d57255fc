"""ONNX export of the k fold models: agreement with torch, fold routing, the card."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from ewpolar.models.runtime import load_classifier  # noqa: E402
from ewpolar.models.training.crossval import cross_validate  # noqa: E402
from ewpolar.models.training.export import (  # noqa: E402
    ExportError,
    FoldEnsemble,
    build_onnx_model,
    export_classifier,
    export_cross_validation,
    verify_export,
)
from ewpolar.models.training.mlp import (  # noqa: E402
    ACTIVATIONS,
    MLP,
)
from training_cases import TINY, gaussian_classes  # noqa: E402


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
