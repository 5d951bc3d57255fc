"""Deterministic training of one network with an arbitrary weighted per-event loss.

:func:`ewpolar.models.training.mlp.train_mlp` trains the binary classifiers with the
weighted cross-entropy and a fixed learning rate. The reweighting and
likelihood-ratio estimators need other losses (cross-entropy against soft
targets, mean squared errors of a score, gradients with respect to an input)
and a precise optimum: their outputs are used as density ratios, not only to
rank events. This trainer therefore takes the loss as a function and lowers
the learning rate when the validation loss stalls:

* Adam with the settings of an :class:`~ewpolar.models.training.mlp.MLPConfig`
  (learning rate, batch size, weight decay, seed, threads);
* the learning rate is halved after ``max(1, patience // 3)`` epochs without a
  lower validation loss (``ReduceLROnPlateau``); training stops after
  ``patience`` such epochs or ``max_epochs``; the weights of the best epoch are kept;
* the loss of a batch is Σ w_i ℓ_i / n_batch with the weights scaled to mean 1
  over the training rows, the validation loss Σ w_i ℓ_i / Σ w_i;
* the validation split is a random ``validation_fraction`` of the rows, drawn
  with ``seed``; identical inputs and seed give identical networks
  (:func:`~ewpolar.models.training.mlp.deterministic_torch`);
* optional ``groups``: rows with the same group id (e.g. the two weighted
  copies of one event, one per class) stay together, on the same side of the
  validation split and in the same minibatch, so that what they have in common
  cancels in each gradient step instead of adding noise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import torch
from ewpolar.models.training.mlp import (
    MLP,
    MLPConfig,
    TrainingHistory,
    deterministic_torch,
    fit_epochs,
    weighted_standardisation,
)

__all__ = ["LossFunction", "binary_cross_entropy", "build_mlp", "train_network"]

log = logging.getLogger(__name__)

#: ``loss(model, batch) -> per-row loss [n]``; ``batch`` maps the data keys to tensors
LossFunction = Callable[[torch.nn.Module, Mapping[str, torch.Tensor]], torch.Tensor]


def build_mlp(features: np.ndarray, weights: np.ndarray, config: MLPConfig) -> MLP:
    """An untrained MLP with the architecture of ``config``, standardising its inputs with
    the weighted mean and width of ``features``; initialised from ``config.seed``."""
    mean, scale = weighted_standardisation(features, weights)
    with deterministic_torch(config.seed, config.num_threads):
        return MLP.from_config(features.shape[1], config, mean, scale)


def binary_cross_entropy(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Per-row cross-entropy of the logit ``model(batch["features"])`` against ``batch["target"]``
    (hard labels 0/1 or soft targets in [0, 1])."""
    return torch.nn.functional.binary_cross_entropy_with_logits(
        model(batch["features"]), batch["target"], reduction="none")


def _group_rows(groups: np.ndarray) -> np.ndarray:
    """[n_groups, k] row indices of equal-size groups (ordered by group id, then row)."""
    groups = np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    _, counts = np.unique(groups[order], return_counts=True)
    if counts.size and np.any(counts != counts[0]):
        raise ValueError("groups must all have the same number of rows")
    return order.reshape(counts.size, int(counts[0]) if counts.size else 1)


def train_network(model: torch.nn.Module, loss: LossFunction, data: Mapping[str, np.ndarray],
                  config: MLPConfig, *, weights: str = "weights",
                  groups: np.ndarray | None = None) -> TrainingHistory:
    """Train ``model`` in place on ``data`` and return the loss history.

    Args:
        model: the network (built by the caller, e.g. inside the same
            :func:`~ewpolar.models.training.mlp.deterministic_torch` seed).
        loss: per-row loss of a batch (see :data:`LossFunction`).
        data: name → array with one row per training example; ``data[weights]``
            holds the row weights. Floating arrays become float32 tensors.
        config: optimiser, batching, stopping and seed settings (its
            architecture fields are the caller's business).
        weights: the key of the row weights in ``data``.
        groups: optional group id per row (groups of equal size): a group's rows
            are split, shuffled and batched together (``config.batch_size``
            counts rows).

    Raises:
        FloatingPointError: the validation loss became NaN or infinite.
        ValueError: arrays of different lengths, fewer than 4 rows, or groups of
            different sizes.
    """
    lengths = {k: len(v) for k, v in data.items()}
    n = next(iter(lengths.values()))
    if len(set(lengths.values())) != 1:
        raise ValueError(f"data arrays differ in length: {lengths}")
    if n < 4:
        raise ValueError(f"need at least 4 rows to train, got {n}")
    rng = np.random.default_rng(config.seed)
    if groups is None:
        members = np.arange(n)[:, None]
    else:
        if len(groups) != n:
            raise ValueError(f"{len(groups)} group ids for {n} rows")
        members = _group_rows(groups)
    n_units = members.shape[0]
    if n_units < 2:
        raise ValueError("need at least 2 groups to train")
    order = rng.permutation(n_units)
    n_val = min(max(1, round(config.validation_fraction * n_units)), n_units - 1)
    val_idx = np.sort(members[np.sort(order[:n_val])].ravel())
    train_units = members[np.sort(order[n_val:])]
    train_idx = train_units.ravel()

    def tensors(idx: np.ndarray) -> dict[str, torch.Tensor]:
        out = {}
        for key, values in data.items():
            arr = np.asarray(values)[idx]
            if arr.dtype.kind == "f":
                arr = arr.astype(np.float32)
            out[key] = torch.from_numpy(np.ascontiguousarray(arr))
        return out

    train, val = tensors(train_idx), tensors(val_idx)
    scale = float(train[weights].abs().mean()) or 1.0
    train[weights] = train[weights] / scale

    # positions of each training unit's rows in the training tensors
    k = members.shape[1]
    unit_rows = torch.arange(train_units.size).reshape(train_units.shape[0], k)

    def batch_loss(units: torch.Tensor) -> torch.Tensor:
        rows = units if k == 1 else unit_rows[units].reshape(-1)
        batch = {key: v[rows] for key, v in train.items()}
        value = (batch[weights] * loss(model, batch)).mean()
        return value + config.penalty(model) if config.l1 > 0 else value

    epochs_config = config if k == 1 else replace(config, batch_size=max(1, config.batch_size // k))
    with deterministic_torch(config.seed, config.num_threads):
        optimiser = config.optimiser(model.parameters())
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimiser, factor=0.5, patience=max(1, config.patience // 3))
        return fit_epochs(model, optimiser, batch_loss, lambda: _evaluate(model, loss, val, weights),
                          train_units.shape[0], rng, epochs_config, scheduler=scheduler)


def _evaluate(model: torch.nn.Module, loss: LossFunction, data: Mapping[str, torch.Tensor],
              weights: str, batch_size: int = 65536) -> float:
    """Σ w ℓ / Σ w over ``data`` (called without gradients; a loss that differentiates with
    respect to an input enables them itself)."""
    n = len(data[weights])
    total = 0.0
    for start in range(0, n, batch_size):
        batch = {k: v[start:start + batch_size] for k, v in data.items()}
        total += float((batch[weights] * loss(model, batch)).sum().detach())
    return total / float(data[weights].sum())
