"""The MLP trainer: class weights, determinism, approach to the Bayes-optimal AUC."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ewpolar.models.training.crossval import cross_validate  # noqa: E402
from ewpolar.models.training.mlp import (  # noqa: E402
    balance_class_weights,
    train_mlp,
)
from training_cases import TINY, gaussian_classes  # noqa: E402


def test_class_weights_balanced() -> None:
    labels = np.array([0, 0, 0, 1])
    out = balance_class_weights(labels, np.array([1.0, 2.0, 3.0, 0.5]))
    assert out[labels == 0].sum() == pytest.approx(out[labels == 1].sum())
    assert out.mean() == pytest.approx(1.0)


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
