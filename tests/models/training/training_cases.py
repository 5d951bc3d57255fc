"""Shared cases of the training tests: a small network setting and two Gaussian classes."""

from __future__ import annotations

import numpy as np
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.mlp import MLPConfig

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
