"""A fully connected binary classifier and its deterministic trainer.

The network standardises its inputs itself (weighted mean and standard deviation
of the training events, stored as buffers), so the exported ONNX graph takes raw
inputs. It outputs the logit of the positive class; ``sigmoid(logit)`` is the
probability. Training minimises the weighted binary cross-entropy with the two
classes normalised to equal total weight (balanced classes, so the output
estimates p1 / (p0 + p1) as in the likelihood-ratio trick, arXiv:1506.02169),
with Adam and early stopping on a validation split of the training events.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> x = (rng.normal(size=(400, 2)) + y[:, None]).astype("float32")
    >>> cfg = MLPConfig(n_layers=1, width=8, max_epochs=3, batch_size=64)
    >>> result = train_mlp(x, y, np.ones(400), cfg)
    >>> result.model.predict_proba(x).shape
    (400,)
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ACTIVATIONS",
    "INITIALISERS",
    "MLP",
    "MLPConfig",
    "TrainResult",
    "TrainingHistory",
    "balance_class_weights",
    "deterministic_torch",
    "fit_epochs",
    "train_mlp",
    "weighted_standardisation",
]

log = logging.getLogger(__name__)

#: activation name → torch module factory; each has an ONNX translation in export.py
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}

#: weight initialisers of the hidden and output layers (biases start at 0 except for
#: ``default``, torch's own initialisation of ``nn.Linear``)
INITIALISERS: dict[str, Callable[[torch.Tensor], Any] | None] = {
    "default": None,
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    "orthogonal": nn.init.orthogonal_,
}


@dataclass(frozen=True)
class MLPConfig:
    """Architecture and training settings of one network.

    Attributes:
        n_layers: number of hidden layers.
        width: neurons per hidden layer.
        dropout: dropout probability after each hidden activation.
        activation: one of :data:`ACTIVATIONS`.
        learning_rate: Adam learning rate.
        batch_size: events per optimiser step.
        max_epochs: upper limit on the passes over the training events.
        patience: stop after this many epochs without a lower validation loss
            (the weights of the best epoch are kept).
        validation_fraction: fraction of the training events (per class) held
            back for early stopping.
        weight_decay: L2 penalty of Adam.
        seed: seeds torch and the numpy generator (split, shuffling, dropout).
        num_threads: torch intra-op threads during training.
        initialiser: weight initialisation, one of :data:`INITIALISERS`.
        l1: L1 penalty, l1 · Σ|W| over the weight matrices, added to each batch loss.
        adam_beta1, adam_beta2, adam_eps: Adam's moment decays and ε.
        class_weight: factor on the positive class's total weight after the
            classes are balanced (1: equal totals).
    """

    n_layers: int = 3
    width: int = 64
    dropout: float = 0.1
    activation: str = "relu"
    learning_rate: float = 1e-3
    batch_size: int = 512
    max_epochs: int = 100
    patience: int = 10
    validation_fraction: float = 0.2
    weight_decay: float = 0.0
    seed: int = 0
    num_threads: int = 1
    initialiser: str = "default"
    l1: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    class_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.n_layers < 1 or self.width < 1:
            raise ValueError("n_layers and width must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}"
            )
        if self.learning_rate <= 0 or self.batch_size < 1 or self.max_epochs < 1:
            raise ValueError("learning_rate, batch_size and max_epochs must be positive")
        if self.patience < 1:
            raise ValueError("patience must be at least 1")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in (0, 1)")
        if self.num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        if self.initialiser not in INITIALISERS:
            raise ValueError(f"unknown initialiser {self.initialiser!r}; choose from "
                             f"{sorted(INITIALISERS)}")
        if self.l1 < 0 or self.weight_decay < 0:
            raise ValueError("l1 and weight_decay must not be negative")
        if not (0.0 <= self.adam_beta1 < 1.0 and 0.0 <= self.adam_beta2 < 1.0
                and self.adam_eps > 0):
            raise ValueError("Adam's betas must be in [0, 1) and eps positive")
        if not self.class_weight > 0:
            raise ValueError("class_weight must be positive")

    def optimiser(self, parameters: Any) -> torch.optim.Optimizer:
        """Adam with these settings (learning rate, L2, betas, ε)."""
        return torch.optim.Adam(parameters, lr=self.learning_rate, weight_decay=self.weight_decay,
                                betas=(self.adam_beta1, self.adam_beta2), eps=self.adam_eps)

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        """The L1 term of the loss: l1 · Σ|W| over the weight matrices (0 without L1)."""
        if self.l1 <= 0:
            return 0.0
        return self.l1 * sum(p.abs().sum() for name, p in model.named_parameters()
                             if name.endswith("weight"))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready) of all settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MLPConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MLP settings {unknown}; known: {sorted(known)}")
        return cls(**data)


class MLP(nn.Module):
    """Standardisation, ``n_layers`` × (Linear, activation, dropout), Linear → logit.

    Args:
        n_inputs: number of input features.
        n_layers: hidden layers.
        width: neurons per hidden layer.
        dropout: dropout probability (training only).
        activation: name from :data:`ACTIVATIONS`.
        input_mean: per-input offset subtracted first (default 0).
        input_scale: per-input divisor applied after the offset (default 1).
    """

    def __init__(
        self,
        n_inputs: int,
        *,
        n_layers: int = 3,
        width: int = 64,
        dropout: float = 0.0,
        activation: str = "relu",
        input_mean: np.ndarray | None = None,
        input_scale: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        self.n_inputs = int(n_inputs)
        self.architecture = {
            "n_inputs": self.n_inputs,
            "n_layers": int(n_layers),
            "width": int(width),
            "dropout": float(dropout),
            "activation": activation,
        }
        mean = np.zeros(n_inputs) if input_mean is None else np.asarray(input_mean)
        scale = np.ones(n_inputs) if input_scale is None else np.asarray(input_scale)
        if mean.shape != (n_inputs,) or scale.shape != (n_inputs,):
            raise ValueError(f"input_mean and input_scale must have shape ({n_inputs},)")
        self.register_buffer("input_mean", torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer("input_scale", torch.as_tensor(scale, dtype=torch.float32).clone())
        layers: list[nn.Module] = []
        size = self.n_inputs
        for _ in range(n_layers):
            layers += [nn.Linear(size, width), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            size = width
        layers.append(nn.Linear(size, 1))
        self.network = nn.Sequential(*layers)

    @classmethod
    def from_config(
        cls,
        n_inputs: int,
        config: MLPConfig,
        input_mean: np.ndarray | None = None,
        input_scale: np.ndarray | None = None,
    ) -> MLP:
        """Network with the architecture and initialisation of ``config``."""
        model = cls(
            n_inputs,
            n_layers=config.n_layers,
            width=config.width,
            dropout=config.dropout,
            activation=config.activation,
            input_mean=input_mean,
            input_scale=input_scale,
        )
        init = INITIALISERS[config.initialiser]
        if init is not None:
            with torch.no_grad():
                for layer in model.network:
                    if isinstance(layer, nn.Linear):
                        init(layer.weight)
                        layer.bias.zero_()
        return model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logit of the positive class, shape [N]."""
        standardised = (features - self.input_mean) / self.input_scale
        return self.network(standardised).squeeze(-1)

    def predict_proba(self, features: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """Probability of the positive class for raw inputs (float32 [N])."""
        x = torch.as_tensor(np.ascontiguousarray(features, dtype=np.float32))
        out = np.empty(x.shape[0], dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                for start in range(0, x.shape[0], batch_size):
                    logits = self(x[start : start + batch_size])
                    out[start : start + batch_size] = torch.sigmoid(logits).numpy()
        finally:
            self.train(was_training)
        return out


@dataclass
class TrainingHistory:
    """Per-epoch losses of one training.

    Attributes:
        train_loss: mean weighted BCE over the training batches of each epoch.
        val_loss: weighted BCE on the validation split after each epoch.
        best_epoch: epoch (0-based) whose weights were kept.
        stopped_early: training ended by patience before ``max_epochs``.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def best_val_loss(self) -> float:
        """Validation loss of the kept weights."""
        return self.val_loss[self.best_epoch]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


@dataclass
class TrainResult:
    """A trained network (best validation epoch, in eval mode) and its history."""

    model: MLP
    history: TrainingHistory


@contextmanager
def deterministic_torch(seed: int, num_threads: int = 1) -> Iterator[None]:
    """Seeded, deterministic, fixed-thread torch inside the block; global state restored after.

    Sets ``torch.manual_seed`` in a forked RNG state, deterministic algorithms
    and the intra-op thread count; all three are put back on exit.
    """
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(num_threads)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(det, warn_only=warn_only)
            torch.set_num_threads(threads)


def balance_class_weights(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weights rescaled per class so both classes have the same total, n/2 each.

    The mean weight is then 1, which keeps the loss on the usual BCE scale.

    Raises:
        ValueError: a class is absent or has a non-positive total weight.
    """
    labels = np.asarray(labels)
    weights = np.asarray(weights, dtype=np.float64)
    out = np.empty_like(weights)
    half = 0.5 * weights.size
    for cls in (0, 1):
        mask = labels == cls
        total = weights[mask].sum()
        if not mask.any() or total <= 0:
            raise ValueError(f"class {cls} has no events or a non-positive total weight")
        out[mask] = weights[mask] * (half / total)
    return out


def weighted_standardisation(
    features: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation per input (|w| as weights).

    Constant inputs get a scale of 1 so that standardising never divides by 0.

    Returns:
        ``(mean, scale)`` as float32 arrays [d].
    """
    x = np.asarray(features, dtype=np.float64)
    w = np.abs(np.asarray(weights, dtype=np.float64))
    if w.sum() <= 0:
        w = np.ones_like(w)
    mean = np.average(x, axis=0, weights=w)
    var = np.average((x - mean) ** 2, axis=0, weights=w)
    scale = np.sqrt(var)
    scale[~(scale > 1e-12 * (1.0 + np.abs(mean)))] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)


def _stratified_split(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation); each class contributes ``fraction`` of its events."""
    train_parts, val_parts = [], []
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        if idx.size < 2:
            raise ValueError(f"class {cls} needs at least 2 events for a validation split")
        n_val = min(max(1, round(fraction * idx.size)), idx.size - 1)
        val_parts.append(idx[:n_val])
        train_parts.append(idx[n_val:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


def train_mlp(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    config: MLPConfig,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train one network; identical inputs and seed give identical weights.

    Args:
        features: float32 [n, d] raw inputs (standardisation is learnt here).
        labels: 0/1 per event.
        weights: event weights; each class is normalised to equal total weight.
        config: architecture and training settings.
        on_epoch: called as ``on_epoch(epoch, val_loss)`` after each epoch; it
            may raise (e.g. ``optuna.TrialPruned``) to abort the training.

    Returns:
        The network with the weights of the lowest validation loss, in eval
        mode, and the loss history.

    Raises:
        FloatingPointError: the validation loss became NaN or infinite.
    """
    x_all = np.ascontiguousarray(features, dtype=np.float32)
    y_all = np.asarray(labels).astype(np.float32)
    w_all = np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(config.seed)
    train_idx, val_idx = _stratified_split(y_all, config.validation_fraction, rng)
    mean, scale = weighted_standardisation(x_all, w_all)

    def tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = balance_class_weights(y_all[idx], w_all[idx])
        if config.class_weight != 1.0:
            w = np.where(y_all[idx] == 1, w * config.class_weight, w)
        w = w.astype(np.float32)
        return (
            torch.from_numpy(x_all[idx]),
            torch.from_numpy(y_all[idx]),
            torch.from_numpy(w),
        )

    x_tr, y_tr, w_tr = tensors(train_idx)
    x_val, y_val, w_val = tensors(val_idx)

    def batch_loss(rows: torch.Tensor) -> torch.Tensor:
        loss = F.binary_cross_entropy_with_logits(model(x_tr[rows]), y_tr[rows], weight=w_tr[rows])
        return loss + config.penalty(model) if config.l1 > 0 else loss

    def validation_loss() -> float:
        per_event = F.binary_cross_entropy_with_logits(model(x_val), y_val, weight=w_val, reduction="sum")
        return float(per_event / w_val.sum())

    with deterministic_torch(config.seed, config.num_threads):
        model = MLP.from_config(x_all.shape[1], config, mean, scale)
        optimiser = config.optimiser(model.parameters())
        history = fit_epochs(model, optimiser, batch_loss, validation_loss, x_tr.shape[0], rng, config,
                             on_epoch=on_epoch)
    return TrainResult(model, history)


def fit_epochs(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    validation_loss: Callable[[], float],
    n_train: int,
    rng: np.random.Generator,
    config: MLPConfig,
    *,
    scheduler: Any = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainingHistory:
    """The epochs of a training, with early stopping; the model ends with the weights of its
    best epoch, in eval mode. Shared by :func:`train_mlp` and
    :func:`ewpolar.models.training.trainer.train_network`, which differ in their losses and splits.

    Each epoch shuffles the ``n_train`` training rows with ``rng``, takes an optimiser
    step per ``config.batch_size`` rows on ``batch_loss(rows)`` (a scalar tensor),
    then computes ``validation_loss()`` in eval mode without gradients. Then, in
    this order: a non-finite validation loss raises, a lower one is kept as the
    best, ``scheduler.step(val_loss)`` (e.g. ``ReduceLROnPlateau``), ``on_epoch(epoch,
    val_loss)``, and the training stops after ``config.patience`` epochs without a
    lower validation loss. Call it inside :func:`deterministic_torch`.

    Raises:
        FloatingPointError: the validation loss became NaN or infinite.
    """
    history = TrainingHistory()
    best_state = copy.deepcopy(model.state_dict())
    best_loss = math.inf
    for epoch in range(config.max_epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(n_train))
        total, steps = 0.0, 0
        for start in range(0, n_train, config.batch_size):
            optimiser.zero_grad()
            loss = batch_loss(order[start : start + config.batch_size])
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
            steps += 1
        model.eval()
        with torch.no_grad():
            val_loss = validation_loss()
        history.train_loss.append(total / steps)
        history.val_loss.append(val_loss)
        log.debug("epoch %d: train loss %.6g, validation loss %.6g, learning rate %.3g", epoch,
                  total / steps, val_loss, optimiser.param_groups[0]["lr"])
        if not math.isfinite(val_loss):
            raise FloatingPointError(f"validation loss is {val_loss} at epoch {epoch}")
        if val_loss < best_loss:
            best_loss = val_loss
            history.best_epoch = epoch
            best_state = copy.deepcopy(model.state_dict())
        if scheduler is not None:
            scheduler.step(val_loss)
        if on_epoch is not None:
            on_epoch(epoch, val_loss)
        if epoch - history.best_epoch >= config.patience:
            history.stopped_early = True
            break
    model.load_state_dict(best_state)
    model.eval()
    return history
