"""Weighted ROC AUC against a brute-force count."""

from __future__ import annotations

import numpy as np
import pytest
from ewpolar.models.training.metrics import weighted_roc_auc


def brute_force_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    pos, neg = labels == 1, labels == 0
    si, sj = scores[pos][:, None], scores[neg][None, :]
    wij = weights[pos][:, None] * weights[neg][None, :]
    wins = (si > sj) + 0.5 * (si == sj)
    return float((wij * wins).sum() / wij.sum())


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
