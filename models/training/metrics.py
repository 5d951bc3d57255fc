"""Weighted ROC AUC, computed by sorting (no scikit-learn dependency).

The weighted AUC is the probability that a positive event scores higher than a
negative one, each drawn with probability proportional to its weight, ties
counting one half:

    AUC = Σ_{i∈pos} Σ_{j∈neg} w_i w_j ([s_i > s_j] + ½[s_i = s_j]) / (W_pos W_neg)

Example:
    >>> import numpy as np
    >>> weighted_roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
"""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_roc_auc"]


def weighted_roc_auc(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Weighted area under the ROC curve.

    O(n log n): events are grouped by equal score in ascending order; each
    group's positive weight collects the negative weight of all lower groups
    plus half of its own (ties).

    Args:
        scores: classifier output, larger means more positive-like.
        labels: 1 for the positive class, 0 for the negative.
        weights: event weights (default 1). Negative weights are allowed; the
            total weight of each class must be positive.

    Returns:
        The AUC as a float in [0, 1] for non-negative weights.

    Raises:
        ValueError: shapes disagree, scores are not finite, or a class has no
            positive total weight.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    weights = (
        np.ones_like(scores) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    )
    if not (scores.shape == labels.shape == weights.shape):
        raise ValueError(
            f"scores, labels and weights differ in length: "
            f"{scores.size}, {labels.size}, {weights.size}"
        )
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    positive = labels == 1
    w_pos = np.where(positive, weights, 0.0)
    w_neg = np.where(positive, 0.0, weights)
    total_pos, total_neg = w_pos.sum(), w_neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        raise ValueError("both classes need a positive total weight to define an AUC")
    unique, group = np.unique(scores, return_inverse=True)
    pos_per_group = np.bincount(group, weights=w_pos, minlength=unique.size)
    neg_per_group = np.bincount(group, weights=w_neg, minlength=unique.size)
    neg_below = np.cumsum(neg_per_group) - neg_per_group
    area = np.sum(pos_per_group * (neg_below + 0.5 * neg_per_group))
    return float(area / (total_pos * total_neg))
