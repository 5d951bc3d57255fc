"""Likelihood-ratio and score estimators: CARL, ALICE, ALICES and SALLY.

Networks, losses (MadMiner conventions, see :mod:`ewpolar.models.sbi`), training
and ONNX export (:func:`ewpolar.models.training.export.export_mlp`, cards of
:mod:`ewpolar.models.runtime`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ewpolar.models.training.mlp import MLP, MLPConfig, TrainingHistory
from ewpolar.models.training.trainer import binary_cross_entropy, build_mlp, train_network
from torch import nn

__all__ = [
    "RATIO_METHODS",
    "AnchoredMLP",
    "RatioEstimator",
    "ScoreEstimator",
    "default_mlp_config",
    "train_ratio_estimator",
    "train_score_estimator",
]

log = logging.getLogger(__name__)

RATIO_METHODS = ("carl", "alice", "alices")


class AnchoredMLP(nn.Module):
    """g(x, θ) − g(x, θ_ref) for an MLP g whose last input is θ (exactly 0 at θ_ref).

    Exported by :func:`ewpolar.models.training.export.build_mlp_graph` as two passes of g.
    """

    def __init__(self, network: MLP, reference: float = 0.0) -> None:
        super().__init__()
        self.network = network
        self.anchor_reference = float(reference)
        self.n_inputs = network.n_inputs
        self.architecture = {**network.architecture, "anchored_reference": self.anchor_reference}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        at_ref = features.clone()
        at_ref[:, -1] = self.anchor_reference
        return self.network(features) - self.network(at_ref)


def default_mlp_config() -> MLPConfig:
    """The estimators' network and training settings unless told otherwise (3 × 64 tanh)."""
    return MLPConfig(n_layers=3, width=64, dropout=0.0, activation="tanh", learning_rate=1e-3,
                     batch_size=1024, max_epochs=100, patience=10)


def _predict(model: nn.Module, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    out = np.empty(x.shape[0], dtype=np.float64)
    tx = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    model.eval()
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            out[start:start + batch_size] = model(tx[start:start + batch_size]).numpy()
    return out


def _parameter_gradient(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logit, ∂ logit/∂θ) with θ the last input; differentiable when the model is training."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        logit = model(x)
        (grad,) = torch.autograd.grad(logit.sum(), x, create_graph=model.training)
    return logit, grad[:, -1]


class RatioEstimator:
    """A trained likelihood-ratio estimator r̂(x|θ0, θ1) = p(x|θ0)/p(x|θ1).

    The network's logit is −ln r̂ (label 1 = θ1). Parameterised estimators take
    θ0 as their last input (named ``parameter``), with θ1 the fixed reference.

    Attributes:
        method: "carl", "alice" or "alices".
        inputs: input names (the features, then ``parameter`` if parameterised).
        parameter: name of the θ0 input, or None.
        reference: θ1 of a parameterised estimator.
        model: the torch network.
        history: its training history.
    """

    def __init__(self, method: str, inputs: Sequence[str], model: nn.Module,
                 history: TrainingHistory, *, parameter: str | None = None,
                 reference: float = 0.0, training: Mapping[str, Any] | None = None) -> None:
        self.method = method
        self.inputs = tuple(inputs)
        self.model = model
        self.history = history
        self.parameter = parameter
        self.reference = float(reference)
        self.training = dict(training or {})

    def __repr__(self) -> str:
        return f"RatioEstimator({self.method!r}, inputs={len(self.inputs)}, parameter={self.parameter!r})"

    def _rows(self, x: np.ndarray, theta: float | np.ndarray | None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.parameter is None:
            return x
        if theta is None:
            raise ValueError(f"{self.method}: give the value of {self.parameter}")
        column = np.broadcast_to(np.asarray(theta, dtype=np.float32), (x.shape[0],))
        return np.column_stack([x, column]).astype(np.float32)

    def log_ratio(self, x: np.ndarray, theta: float | np.ndarray | None = None) -> np.ndarray:
        """ln r̂(x|θ0, θ1) per event (x: the features, without the parameter)."""
        return -_predict(self.model, self._rows(x, theta))

    def score(self, x: np.ndarray, theta: float | np.ndarray) -> np.ndarray:
        """t̂(x|θ0) = ∂ ln r̂/∂θ0 (parameterised estimators only)."""
        if self.parameter is None:
            raise ValueError(f"{self.method}: a score needs a parameterised estimator")
        rows = torch.as_tensor(self._rows(x, theta))
        self.model.eval()
        out = np.empty(rows.shape[0], dtype=np.float64)
        for start in range(0, rows.shape[0], 65536):
            _, grad = _parameter_gradient(self.model, rows[start:start + 65536])
            out[start:start + 65536] = -grad.detach().numpy()
        return out

    def export(self, path: str | Path, *, reference_features: np.ndarray | None = None) -> Path:
        """Write ONNX + card: outputs ``log_ratio`` (ln r̂) and ``probability`` (ŝ = 1/(1 + r̂))."""
        from ewpolar.models.training.export import export_mlp

        extra = {"ratio": {"definition": "r = p(x|theta0) / p(x|theta1); probability = 1/(1 + r)",
                           "parameter": self.parameter, "theta1": self.reference
                           if self.parameter else None}}
        export_mlp(self.model, path, inputs=self.inputs,
                   outputs={"log_ratio": "negate", "probability": "sigmoid"}, kind=self.method,
                   training=self.training, extra=extra, reference_features=reference_features)
        return Path(path)


class ScoreEstimator:
    """A trained SALLY score regression t̂(x).

    Attributes:
        inputs: feature names.
        reference: the parameter point of the score (θ_ref).
        model: the torch MLP (its output is t̂).
        history: training history.
    """

    def __init__(self, inputs: Sequence[str], model: MLP, history: TrainingHistory, *,
                 reference: float = 0.0, training: Mapping[str, Any] | None = None) -> None:
        self.inputs = tuple(inputs)
        self.model = model
        self.history = history
        self.reference = float(reference)
        self.training = dict(training or {})

    def __repr__(self) -> str:
        return f"ScoreEstimator(inputs={len(self.inputs)}, reference={self.reference})"

    def score(self, x: np.ndarray) -> np.ndarray:
        """t̂(x) per event."""
        return _predict(self.model, np.asarray(x, dtype=np.float32))

    def export(self, path: str | Path, *, reference_features: np.ndarray | None = None) -> Path:
        """Write ONNX + card with the output ``score``."""
        from ewpolar.models.training.export import export_mlp

        export_mlp(self.model, path, inputs=self.inputs, outputs={"score": "identity"},
                   kind="sally", training=self.training,
                   extra={"score": {"definition": "t(x) = d/dtheta ln p(x|theta) at theta_ref",
                                    "theta_ref": self.reference}},
                   reference_features=reference_features)
        return Path(path)


def _carl_loss(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(model(batch["features"]),
                                                          batch["label"], reduction="none")


def _alice_loss(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return binary_cross_entropy(model, {"features": batch["features"],
                                        "target": batch["joint_s"]})


def _alices_loss(alpha: float):
    def loss(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        logit, grad = _parameter_gradient(model, batch["features"])
        bce = nn.functional.binary_cross_entropy_with_logits(logit, batch["joint_s"],
                                                             reduction="none")
        # t̂ = ∂ ln r̂/∂θ0 = −∂ logit/∂θ0; the score term on the θ0 rows (label 0)
        mse = (1.0 - batch["label"]) * (-grad - batch["joint_t"]) ** 2
        return bce + alpha * mse
    return loss


def _sally_loss(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return (model(batch["features"]) - batch["joint_t"]) ** 2


def train_ratio_estimator(method: str, features: np.ndarray, labels: np.ndarray,
                          weights: np.ndarray, *, inputs: Sequence[str],
                          parameter: str | None = None, reference: float = 0.0,
                          joint_ratio: np.ndarray | None = None,
                          joint_score: np.ndarray | None = None, alpha: float = 1.0,
                          pairs: np.ndarray | None = None,
                          config: MLPConfig | None = None) -> RatioEstimator:
    """Train a CARL, ALICE or ALICES estimator of r = p(x|θ0)/p(x|θ1).

    Args:
        method: "carl", "alice" or "alices".
        features: float [n, d] rows; for a parameterised estimator the last
            column is θ0 (named ``parameter``).
        labels: 0 for rows drawn from θ0, 1 for rows from θ1.
        weights: row weights (each class is normalised to equal total weight).
        inputs: the d column names.
        parameter: name of the θ0 column (None: not parameterised).
        reference: θ1 (parameterised estimators are anchored: r̂ = 1 at θ0 = θ1).
        joint_ratio: r(x, z|θ0, θ1) per row (ALICE, ALICES).
        joint_score: t(x, z|θ0) per row (ALICES).
        alpha: weight of the score term (ALICES).
        pairs: optional id per row; rows with the same id (the label-0 and
            label-1 copies of one weighted event) are trained in the same
            minibatch and validated together. For CARL on two weightings of the
            same events this removes the label noise that otherwise swamps
            ratios close to 1 (see :mod:`ewpolar.models.sbi`).
        config: network and training settings (default: 3 × 64 tanh).

    Raises:
        ValueError: unknown method, missing joint quantities, or shapes that disagree.
    """
    from ewpolar.models.training.mlp import balance_class_weights

    if method not in RATIO_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {RATIO_METHODS}")
    config = config or default_mlp_config()
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != len(inputs):
        raise ValueError(f"features of shape {x.shape} for {len(inputs)} inputs")
    y = np.asarray(labels, dtype=np.float32)
    data: dict[str, np.ndarray] = {"features": x, "label": y,
                                   "weights": balance_class_weights(y, weights)}
    if method in ("alice", "alices"):
        if joint_ratio is None:
            raise ValueError(f"{method} needs the joint likelihood ratio")
        data["joint_s"] = 1.0 / (1.0 + np.asarray(joint_ratio, dtype=np.float64))
    if method == "alices":
        if joint_score is None or parameter is None:
            raise ValueError("alices needs the joint score and a parameterised estimator")
        data["joint_t"] = np.asarray(joint_score, dtype=np.float64)
    loss = {"carl": _carl_loss, "alice": _alice_loss, "alices": _alices_loss(alpha)}[method]
    network = build_mlp(x, data["weights"], config)
    model: nn.Module = network
    if parameter is not None:
        model = AnchoredMLP(network, reference)
    log.info("%s: training on %d rows", method.upper(), x.shape[0])
    history = train_network(model, loss, data, config, groups=pairs)
    training = {"method": method, "config": config.to_dict(), "rows": int(x.shape[0]),
                "alpha": alpha if method == "alices" else None, "best_epoch": history.best_epoch,
                "best_val_loss": history.best_val_loss, "paired_rows": pairs is not None}
    return RatioEstimator(method, inputs, model, history, parameter=parameter,
                          reference=reference, training=training)


def train_score_estimator(features: np.ndarray, joint_score: np.ndarray, weights: np.ndarray, *,
                          inputs: Sequence[str], reference: float = 0.0,
                          config: MLPConfig | None = None) -> ScoreEstimator:
    """Train SALLY: the weighted MSE regression of the joint score t(x, z|θ_ref) on x."""
    config = config or default_mlp_config()
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != len(inputs):
        raise ValueError(f"features of shape {x.shape} for {len(inputs)} inputs")
    w = np.asarray(weights, dtype=np.float64)
    data = {"features": x, "joint_t": np.asarray(joint_score, dtype=np.float64), "weights": w}
    model = build_mlp(x, w, config)
    log.info("SALLY: training on %d events", x.shape[0])
    history = train_network(model, _sally_loss, data, config)
    training = {"method": "sally", "config": config.to_dict(), "rows": int(x.shape[0]),
                "best_epoch": history.best_epoch, "best_val_loss": history.best_val_loss}
    return ScoreEstimator(inputs, model, history, reference=reference, training=training)
