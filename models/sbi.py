"""Simulation-based inference of the CP coupling c_HW̃ in WH: CARL, ALICE, ALICES, SALLY.

Joint quantities (physics.md §3, arXiv:1805.00020)
--------------------------------------------------
Each generated WH event carries three weights, sm, int and quad
(``CPWeight_*``), such that its weight at coupling c is exactly

    w(c) = sm + c·int + c²·quad,            σ(c) = Σ_events w(c)

(σ summed over the events of the sample the density refers to: after the event
selection, for detector-level densities). With z the generator record,
p(x, z|c) ∝ w(c)/σ(c), so the joint likelihood ratio and joint score are

    r(x, z|c0, c1) = [w(c0)/σ(c0)] / [w(c1)/σ(c1)]
    t(x, z|c)      = ∂_c ln[w(c)/σ(c)] = (int + 2c·quad)/w(c) − (Σint + 2cΣquad)/σ(c).

Estimators (losses in MadMiner conventions, r = p(x|θ0)/p(x|θ1), ŝ = 1/(1 + r̂))
--------------------------------------------------------------------------------
* CARL: a classifier between θ0 (label 0) and θ1 (label 1): BCE(ŝ, y).
* ALICE: the same network with the joint target: BCE(ŝ, s(x, z)), s = 1/(1 + r(x, z)).
* ALICES: ALICE + α·(1 − y)·(t̂(x|θ0) − t(x, z|θ0))², with t̂ = ∂_θ0 ln r̂ from the
  network by automatic differentiation (the score term on the θ0 rows, whose
  events follow p(x, z|θ0)).
* SALLY: a regression t̂(x) of the joint score at the SM, MSE(t̂, t(x, z|0)); its
  output is the locally optimal observable, with Fisher information
  I = ν · E_SM[t̂²] (ν expected events).

The ratio estimators are parameterised in θ0 = c (an extra, last input) with the
reference θ1 = 0 (the SM): r̂(x|c) = p̂(x|c)/p(x|0). The network is *anchored*,
logit(x, c) = g(x, c) − g(x, 0), so r̂(x|0) = 1 exactly.

Weighted events instead of unweighting. No sample is drawn at each c: the
same events are used for every class with their weights. A training row is an
event e with a drawn c_e (uniform in [−c_max, c_max], ``theta_draws`` per
event) in two copies, label 0 with weight w_e(c_e)/σ(c_e) (the event as a draw
from θ0 = c_e) and label 1 with weight sm_e/σ(0) (a draw from θ1 = 0). Each
class then has unit total weight per c (balanced classes) and the weighted
losses have the same minimum as for unweighted samples of p(x|c) and p(x|0);
SALLY's rows are weighted with sm_e. All weights here are positive (w(c) > 0
for every c in this generator).

A consequence: with both classes made of the same events, CARL's loss of an
event, w0·BCE(ŝ, 0) + w1·BCE(ŝ, 1) = (w0 + w1)·BCE(ŝ, w1/(w0 + w1)), is ALICE's
loss (s(x, z) = w1/(w0 + w1) for these weights) summed over the two rows. The
minima agree; the training does not: CARL's two rows of an event fall into
different minibatches (and into the training or the validation split
independently), so its gradients carry the hard labels, ±(ŝ − y) ≈ ±1/2 per row,
where ALICE's carry ŝ − s(x, z), of the size of the effect itself. Near the SM
(ratios within a few per cent of 1) CARL therefore learns far more slowly than
ALICE from the same events.

Expected limits (Asimov data at the SM, luminosity × σ of the config)
---------------------------------------------------------------------
All curves are −2Δln L(c) of the *expected* data under the SM, evaluated on the
same held-out events (not used in training), each event with its expected
yield W_e(c) = L · σ_gen · w_e(c)/Σ_gen sm (so ν(c) = Σ_e W_e(c) includes the
selection efficiency and the change of rate with c):

* (a) binned Q_ℓ cos δ⁺ × p_T^W (the config's histogram binning; values outside
  the edges go to the end bins): Poisson likelihood of the signal alone, per bin
  ν_i(c) = SM_i + c·INT_i + c²·QUAD_i, data n_i = ν_i(0). This is the binned
  likelihood of :func:`ewpolar.stats.fit.fit_wh` without backgrounds and systematics;
* (b) SALLY: the same binned likelihood in ``sally_bins`` bins of t̂(x), with
  edges at the SM-weighted quantiles of t̂ on the training events;
* (c) CARL / ALICE / ALICES: the extended unbinned likelihood

      −2Δln L(c) = 2[ν(c) − ν(0)] − 2 Σ_e W_e(0) · ln[ν(c)/ν(0) · r̂(x_e|c)],

  with r̂ normalised on the evaluation events, Σ_e W_e(0) r̂(x_e|c) = ν(0) (the
  exact ratio satisfies E_SM[r] = 1; the normalisation removes an overall offset
  of the network output, which would otherwise move the minimum away from the SM);
* truth: the same with the exact joint ratio w(c)/w(0) (the generator record
  known): the information of the full event, an upper bound for every
  detector-level method;
* (a′), optional (``SBISettings.analysis_fit``): the analysis itself on separately
  generated samples of every dataset of the config: ``generate``,
  :func:`ewpolar.runner.run.run_analysis`, :func:`ewpolar.stats.fit.fit_wh` (Asimov, with
  backgrounds, control region and systematic uncertainties profiled); its
  distance from (a) is what backgrounds and systematics cost.

The 68 % and 95 % CL intervals are where −2Δln L crosses 1 and 3.84
(:func:`ewpolar.stats.fit.interval_from_scan`). Fisher informations at c = 0 (shape
only, the rate term ν(Σint/Σsm)² is reported separately): binned Σ_i INT_i²/SM_i
− (ΣINT)²/ΣSM; score-based ν·Var_SM(t̂) for SALLY (and the local scores of the
ratio estimators, t̂ = ∂_c ln r̂ at c = 0); exact ν·E_SM[t(x, z|0)²]. An
estimated score can carry noise that inflates ν·Var(t̂); ν·Cov(t̂, t)²/Var(t̂) is
the information t̂ carries about the true joint score and is reported beside it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ewpolar.core.config import AnalysisConfig, load_config
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.models.features import WH_FEATURES, FeatureTable, build_features
from ewpolar.models.training.mlp import MLP, MLPConfig, TrainingHistory
from ewpolar.models.training.trainer import binary_cross_entropy, build_mlp, train_network
from ewpolar.stats.fit import DELTA_68, DELTA_95, CouplingScan, interval_from_scan
from torch import nn

__all__ = [
    "PARAMETER",
    "RATIO_METHODS",
    "AnchoredMLP",
    "CPSample",
    "MethodResult",
    "RatioEstimator",
    "SBIResults",
    "SBISettings",
    "ScoreEstimator",
    "binned_asimov_scan",
    "binned_fisher_information",
    "calibrated_asimov_scan",
    "cp_weight",
    "joint_likelihood_ratio",
    "joint_score",
    "plot_scans",
    "ratio_training_data",
    "run_wh_sbi",
    "score_fisher_information",
    "train_ratio_estimator",
    "train_score_estimator",
    "unbinned_asimov_scan",
    "wh_sample",
]

log = logging.getLogger(__name__)

#: name of the coupling (the last input of the parameterised estimators)
PARAMETER = "c_HWtilde"
RATIO_METHODS = ("carl", "alice", "alices")
#: the binned observable of method (a): config ``histograms`` keys
BINNED_OBSERVABLES = ("q_cos_delta_plus", "ptw")
_CHUNK = 50_000


# --------------------------------------------------------------------------- joint quantities


def cp_weight(sm: np.ndarray, int_: np.ndarray, quad: np.ndarray, c: float) -> np.ndarray:
    """w(c) = sm + c·int + c²·quad per event."""
    return sm + c * int_ + c * c * quad


def joint_likelihood_ratio(sm: np.ndarray, int_: np.ndarray, quad: np.ndarray, c0: float,
                           c1: float) -> np.ndarray:
    """r(x, z|c0, c1) = [w(c0)/σ(c0)] / [w(c1)/σ(c1)], σ summed over the given events.

    >>> sm, i, q = np.array([1.0, 1.0]), np.array([0.5, -0.5]), np.array([0.1, 0.1])
    >>> joint_likelihood_ratio(sm, i, q, 0.0, 0.0).tolist()
    [1.0, 1.0]
    """
    w0, w1 = cp_weight(sm, int_, quad, c0), cp_weight(sm, int_, quad, c1)
    return (w0 / w0.sum()) / (w1 / w1.sum())


def joint_score(sm: np.ndarray, int_: np.ndarray, quad: np.ndarray, c: float) -> np.ndarray:
    """t(x, z|c) = (int + 2c·quad)/w(c) − (Σint + 2cΣquad)/σ(c), σ summed over the given events."""
    w = cp_weight(sm, int_, quad, c)
    return (int_ + 2 * c * quad) / w - (int_.sum() + 2 * c * quad.sum()) / w.sum()


# --------------------------------------------------------------------------- samples


@dataclass
class CPSample:
    """Selected events with features and CP weights.

    Attributes:
        names: feature names (columns of ``features``).
        features: float32 [n, d].
        sm, int_, quad: float64 [n] weights (w(c) = sm + c·int + c²·quad).
        events_per_weight: expected events per unit of weight
            (L · σ_gen / Σ_gen sm, divided by the fraction of the selected events
            this sample holds), so ν(c) = events_per_weight · Σ w(c).
    """

    names: tuple[str, ...]
    features: np.ndarray
    sm: np.ndarray
    int_: np.ndarray
    quad: np.ndarray
    events_per_weight: float

    def __len__(self) -> int:
        return self.features.shape[0]

    def weights(self, c: float) -> np.ndarray:
        """w(c) per event."""
        return cp_weight(self.sm, self.int_, self.quad, c)

    def expected_weights(self, c: float) -> np.ndarray:
        """Expected events per event, W_e(c)."""
        return self.events_per_weight * self.weights(c)

    def nu(self, c: float | np.ndarray) -> float | np.ndarray:
        """Expected number of selected events ν(c)."""
        c = np.asarray(c, dtype=np.float64)
        value = self.events_per_weight * (self.sm.sum() + c * self.int_.sum()
                                          + c * c * self.quad.sum())
        return float(value) if value.ndim == 0 else value

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """float32 [n, k] of the named features."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise InputError(f"features {missing} are not in the sample ({', '.join(self.names)})")
        return np.ascontiguousarray(self.features[:, [self.names.index(n) for n in names]])

    def split(self, test_fraction: float, seed: int) -> tuple[CPSample, CPSample]:
        """Random (train, test) split; each part's ``events_per_weight`` is rescaled."""
        if not 0.0 < test_fraction < 1.0:
            raise InputError(f"test fraction must be in (0, 1), got {test_fraction}")
        n = len(self)
        order = np.random.default_rng(seed).permutation(n)
        n_test = min(max(1, round(test_fraction * n)), n - 1)
        return self._take(np.sort(order[n_test:])), self._take(np.sort(order[:n_test]))

    def _take(self, idx: np.ndarray) -> CPSample:
        return CPSample(self.names, self.features[idx], self.sm[idx], self.int_[idx],
                        self.quad[idx], self.events_per_weight * len(self) / max(idx.size, 1))


def wh_sample(config: AnalysisConfig, events: int, seed: int, *, dataset: str | None = None,
              region: str = "signal", names: Sequence[str] | None = None) -> CPSample:
    """Generate ``events`` WH events (toy generator), select ``region``, build features.

    Args:
        config: the WH config (luminosity, cross section, object and region cuts).
        events: generated events (before selection), made in chunks of 50 000
            from one random stream seeded with ``seed``.
        dataset: the signal sample (default: the config's first ``kind: signal``).
        names: features (default: :data:`~ewpolar.models.features.WH_FEATURES`).

    Raises:
        ConfigError: not a WH config, or no signal sample.
        InputError: fewer than 100 events pass the selection.
    """
    from ewpolar.generator import simulate

    if config.channel != "wh":
        raise ConfigError(f"{config.source or 'config'}: SBI needs the WH config, "
                          f"got channel '{config.channel}'")
    if dataset is None:
        dataset = next((d for d, s in config.samples.items() if s.kind == "signal"), None)
        if dataset is None:
            raise ConfigError(f"{config.source or 'config'}: samples: no signal sample")
    sample = config.samples.get(dataset)
    if sample is None or sample.xsec_fb is None:
        raise ConfigError(f"{config.source or 'config'}: samples.{dataset}: needs xsec_fb")
    names = tuple(WH_FEATURES if names is None else names)
    rng = np.random.default_rng(seed)
    tables: list[FeatureTable] = []
    sum_sm = 0.0
    done = 0
    while done < events:
        m = min(_CHUNK, events - done)
        branches = simulate(config, dataset, m, rng)
        if "CPWeight_sm" not in branches:
            raise InputError(f"dataset '{dataset}' has no CPWeight_* branches")
        sum_sm += float(np.sum(branches["CPWeight_sm"], dtype=np.float64))
        tables.append(build_features(branches, config, region=region, names=names))
        done += m
    features = np.concatenate([t.values for t in tables])
    if features.shape[0] < 100:
        raise InputError(f"only {features.shape[0]} of {events} generated events pass region "
                         f"'{region}'; generate more events")
    cp = {k: np.concatenate([t.weights[f"CPWeight_{k}"] for t in tables])
          for k in ("sm", "int", "quad")}
    per_weight = config.luminosity_fb * float(sample.xsec_fb) / sum_sm
    log.info("WH sample: %d of %d events selected, ν(SM) = %.1f", features.shape[0], events,
             per_weight * cp["sm"].sum())
    return CPSample(names, features, cp["sm"], cp["int"], cp["quad"], per_weight)


# --------------------------------------------------------------------------- networks


class AnchoredMLP(nn.Module):
    """g(x, θ) − g(x, θ_ref) for an MLP g whose last input is θ (exactly 0 at θ_ref).

    Exported by :func:`ewpolar.models.onnx_mlp.build_mlp_graph` as two passes of g.
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


def _default_mlp() -> MLPConfig:
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
        from ewpolar.models.onnx_mlp import export_mlp

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
        from ewpolar.models.onnx_mlp import export_mlp

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
        config: network and training settings (default: 3 × 64 tanh).

    Raises:
        ValueError: unknown method, missing joint quantities, or shapes that disagree.
    """
    from ewpolar.models.training.mlp import balance_class_weights

    if method not in RATIO_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {RATIO_METHODS}")
    config = config or _default_mlp()
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
    history = train_network(model, loss, data, config)
    training = {"method": method, "config": config.to_dict(), "rows": int(x.shape[0]),
                "alpha": alpha if method == "alices" else None, "best_epoch": history.best_epoch,
                "best_val_loss": history.best_val_loss}
    return RatioEstimator(method, inputs, model, history, parameter=parameter,
                          reference=reference, training=training)


def train_score_estimator(features: np.ndarray, joint_score: np.ndarray, weights: np.ndarray, *,
                          inputs: Sequence[str], reference: float = 0.0,
                          config: MLPConfig | None = None) -> ScoreEstimator:
    """Train SALLY: the weighted MSE regression of the joint score t(x, z|θ_ref) on x."""
    config = config or _default_mlp()
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


def ratio_training_data(sample: CPSample, inputs: Sequence[str], c_max: float, *,
                        draws: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Rows for the parameterised ratio estimators (see the module docstring).

    Returns:
        ``features`` (inputs, then c), ``labels``, ``weights``, ``joint_ratio``
        r(x, z|c, 0) and ``joint_score`` t(x, z|c) per row.
    """
    x = sample.columns(inputs)
    rng = np.random.default_rng(seed)
    sigma0 = sample.sm.sum()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("features", "labels", "weights", "joint_ratio",
                                           "joint_score")}
    for _ in range(draws):
        c = rng.uniform(-c_max, c_max, size=len(sample))
        w_c = sample.sm + c * sample.int_ + c * c * sample.quad
        # σ(c) for each event's own c: Σ sm + c Σ int + c² Σ quad over the sample
        sigma_c = sigma0 + c * sample.int_.sum() + c * c * sample.quad.sum()
        p0 = w_c / sigma_c
        p1 = sample.sm / sigma0
        ratio = p0 / p1
        score = ((sample.int_ + 2 * c * sample.quad) / w_c
                 - (sample.int_.sum() + 2 * c * sample.quad.sum()) / sigma_c)
        rows = np.column_stack([x, c]).astype(np.float32)
        for label, weight in ((0.0, p0), (1.0, p1)):
            parts["features"].append(rows)
            parts["labels"].append(np.full(len(sample), label))
            parts["weights"].append(weight)
            parts["joint_ratio"].append(ratio)
            parts["joint_score"].append(score)
    return {k: np.concatenate(v) for k, v in parts.items()}


# --------------------------------------------------------------------------- likelihoods


def binned_asimov_scan(sm: np.ndarray, int_: np.ndarray, quad: np.ndarray,
                       values: np.ndarray) -> np.ndarray:
    """−2Δln L(c) of Poisson bins with ν_i(c) = sm_i + c·int_i + c²·quad_i, data ν_i(0)."""
    sm, int_, quad = (np.ravel(np.asarray(a, dtype=np.float64)) for a in (sm, int_, quad))
    keep = sm > 0
    sm, int_, quad = sm[keep], int_[keep], quad[keep]
    c = np.asarray(values, dtype=np.float64)[:, None]
    nu = np.clip(sm + c * int_ + c * c * quad, 1e-300, None)
    return 2.0 * np.sum(nu - sm + sm * np.log(sm / nu), axis=1)


def unbinned_asimov_scan(log_ratio: np.ndarray, sm_events: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """Extended unbinned Asimov −2Δln L(c) from estimated ratios (see the module docstring).

    Args:
        log_ratio: [n_values, n_events] ln r̂(x_e|c) = ln p̂(x_e|c)/p(x_e|0).
        sm_events: [n_events] expected SM events per event, W_e(0).
        nu: [n_values] expected events ν(c).
    """
    log_ratio = np.asarray(log_ratio, dtype=np.float64)
    w = np.asarray(sm_events, dtype=np.float64)
    nu = np.asarray(nu, dtype=np.float64)
    nu0 = w.sum()
    # normalise r̂ on the evaluation events: Σ_e W_e r̂_e = ν(0), in log-sum-exp form
    shift = log_ratio.max(axis=1, keepdims=True)
    log_norm = shift[:, 0] + np.log(np.exp(log_ratio - shift) @ w / nu0)
    mean_log = (log_ratio @ w) / nu0 - log_norm
    return 2.0 * (nu - nu0) - 2.0 * nu0 * (np.log(nu / nu0) + mean_log)


def calibrated_asimov_scan(log_ratio: np.ndarray, sample: CPSample, values: np.ndarray,
                           bins: int) -> np.ndarray:
    """−2Δln L(c) of the estimated ln r̂(x|c) used as a binned observable, point by point.

    At each c the events of ``sample`` are binned in ``bins`` SM-quantiles of
    ln r̂(x|c) and the Poisson likelihood of these bins is evaluated with the exact
    expected yields (:func:`binned_asimov_scan`). The estimator only orders the
    events; the densities come from the weights (the histogram calibration of
    physics.md §3), so noise in r̂ cannot create information, it only loses some.
    Each c is tested with its own statistic (a Neyman construction point by point).

    Args:
        log_ratio: [n_values, n_events] ln r̂(x_e|c) for the events of ``sample``.
        sample: the evaluation events with their weights.
        values: the c values of the rows of ``log_ratio``.
        bins: quantile bins per c.
    """
    out = np.empty(len(values))
    for k, c in enumerate(values):
        stat = np.asarray(log_ratio[k], dtype=np.float64)
        index = np.searchsorted(_weighted_quantiles(stat, sample.sm, bins), stat, side="right")
        out[k] = binned_asimov_scan(*_binned(index, bins, sample), [c])[0]
    return out


def binned_fisher_information(sm: np.ndarray, int_: np.ndarray) -> float:
    """Shape-only Fisher information at c = 0 of Poisson bins: Σ int²/sm − (Σint)²/Σsm."""
    sm, int_ = np.ravel(sm).astype(np.float64), np.ravel(int_).astype(np.float64)
    keep = sm > 0
    return float(np.sum(int_[keep] ** 2 / sm[keep]) - int_.sum() ** 2 / sm.sum())


def score_fisher_information(score: np.ndarray, sm_events: np.ndarray) -> float:
    """ν · Var_SM(t̂): the Fisher information of an (estimated) score at the SM."""
    w = np.asarray(sm_events, dtype=np.float64)
    t = np.asarray(score, dtype=np.float64)
    mean = np.average(t, weights=w)
    return float(np.sum(w * (t - mean) ** 2))


def _projected_information(score: np.ndarray, exact: np.ndarray, sm_events: np.ndarray) -> float:
    """ν · Cov(t̂, t)² / Var(t̂): the information of t̂ about the exact joint score."""
    w = np.asarray(sm_events, dtype=np.float64)
    a = score - np.average(score, weights=w)
    b = exact - np.average(exact, weights=w)
    var = np.sum(w * a * a)
    return float(np.sum(w * a * b) ** 2 / var) if var > 0 else 0.0


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class MethodResult:
    """One row of the limits table."""

    key: str
    label: str
    scan: CouplingScan
    fisher: float | None = None
    fisher_projected: float | None = None
    note: str = ""
    calibrated: CouplingScan | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"label": self.label, "fisher_information": self.fisher,
               "fisher_information_projected": self.fisher_projected, "note": self.note,
               **self.scan.to_dict()}
        if self.calibrated is not None:
            out["calibrated"] = self.calibrated.to_dict()
        return out


@dataclass(frozen=True)
class SBISettings:
    """Settings of :func:`run_wh_sbi`.

    Attributes:
        mlp: network and training settings of every estimator (default 3 × 64 tanh).
        methods: ratio estimators to train (any of :data:`RATIO_METHODS`).
        inputs: estimator features (default :data:`~ewpolar.models.features.WH_FEATURES`).
        c_max: half-width of the training prior and of the scan (None: 6/√I of
            the exact joint-score information on the training events).
        theta_draws: c values drawn per training event for the ratio estimators.
        alpha: weight of ALICES' score term.
        test_fraction: fraction of the selected events held out for the limits.
        sally_bins: bins of t̂ for method (b).
        scan_points: points of the c scan.
        analysis_fit: also run the full analysis chain on separately generated
            samples (all datasets of the config, ``events`` each): generate,
            :func:`ewpolar.runner.run.run_analysis`, :func:`ewpolar.stats.fit.fit_wh`
            (backgrounds, control region, systematic uncertainties profiled), as
            row (a′).
    """

    mlp: MLPConfig | None = None
    methods: tuple[str, ...] = RATIO_METHODS
    inputs: tuple[str, ...] | None = None
    c_max: float | None = None
    theta_draws: int = 2
    alpha: float = 1.0
    test_fraction: float = 0.5
    sally_bins: int = 20
    scan_points: int = 81
    analysis_fit: bool = False

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in RATIO_METHODS]
        if bad:
            raise InputError(f"unknown estimators {bad}; choose from {', '.join(RATIO_METHODS)}")
        if self.c_max is not None and not self.c_max > 0:
            raise InputError(f"c_max must be positive, got {self.c_max}")
        if self.theta_draws < 1 or self.sally_bins < 2 or self.scan_points < 5:
            raise InputError("theta_draws ≥ 1, sally_bins ≥ 2 and scan_points ≥ 5 are needed")

    def mlp_config(self) -> MLPConfig:
        return self.mlp if self.mlp is not None else _default_mlp()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mlp"] = self.mlp_config().to_dict()
        return out


@dataclass
class SBIResults:
    """Expected limits and Fisher informations of all methods."""

    parameter: str
    luminosity_fb: float
    expected_events_sm: float
    events_generated: int
    events_selected: int
    events_train: int
    events_test: int
    c_max: float
    methods: dict[str, MethodResult]
    fisher: dict[str, float]
    settings: dict[str, Any]
    models: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "luminosity_fb": self.luminosity_fb,
                "expected_events_sm": self.expected_events_sm,
                "events": {"generated": self.events_generated, "selected": self.events_selected,
                           "train": self.events_train, "test": self.events_test},
                "c_max": self.c_max, "methods": {k: m.to_dict() for k, m in self.methods.items()},
                "fisher_information": self.fisher, "settings": self.settings,
                "models": self.models, "seconds": self.seconds}

    def to_markdown(self) -> str:
        """The limits table (68 % and 95 % CL) with the Fisher informations."""
        def interval(iv: tuple[float | None, float | None]) -> str:
            lo, hi = (f"{v:+.4f}" if v is not None else "out of range" for v in iv)
            return f"[{lo}, {hi}]"

        lines = [
            f"# Expected limits on {self.parameter} (Asimov, SM)",
            "",
            f"WH → ℓν bb̄ signal only, {self.luminosity_fb:g} fb⁻¹, ν(SM) = "
            f"{self.expected_events_sm:.1f} selected events; {self.events_generated} generated, "
            f"{self.events_selected} selected, {self.events_train} for training, "
            f"{self.events_test} for the curves below; scan |c| ≤ {self.c_max:.4g}.",
            "",
            "| method | 68% CL | 95% CL | 95% CL, calibrated r̂ | Fisher information I "
            "| 1/√I |",
            "|---|---|---|---|---|---|",
        ]
        for m in self.methods.values():
            fi = f"{m.fisher:.1f}" if m.fisher is not None else "–"
            if m.fisher_projected is not None:
                fi += f" ({m.fisher_projected:.1f} projected)"
            inv = f"{1 / math.sqrt(m.fisher):.4f}" if m.fisher else "–"
            cal = interval(m.calibrated.interval_95) if m.calibrated is not None else "–"
            lines.append(f"| {m.label} | {interval(m.scan.interval_68)} | "
                         f"{interval(m.scan.interval_95)} | {cal} | {fi} | {inv} |")
        lines += [
            "",
            "Fisher information at c = 0, shape only; the rate term ν(ΣINT/ΣSM)² is "
            f"{self.fisher.get('rate_term', 0.0):.3g}. \"projected\": ν·Cov(t̂, t)²/Var(t̂), "
            "the part of an estimated score that follows the exact joint score.",
            "",
            "(a) is the binned likelihood of the analysis' fit observable for the signal alone "
            "(no backgrounds, no systematic uncertainties); (b) bins the SALLY score; (c) are "
            "unbinned extended likelihoods with the estimated ratios; \"truth\" uses the "
            "exact joint ratio of the generator record (an upper bound). All of them use the "
            "same held-out events. \"calibrated r̂\": the (c) estimators' ln r̂(x|c) binned in "
            f"{self.settings.get('sally_bins', '')} SM quantiles at each c, yields from the exact "
            "weights (noise in r̂ cannot add information there).",
        ]
        if "analysis_fit" in self.methods:
            lines += ["", "(a′) is the full analysis (ewpolar.stats.fit.fit_wh on the histograms of "
                      "ewpolar.runner.run.run_analysis) on separately generated samples of all "
                      "datasets, with backgrounds and systematic uncertainties."]
        notes = [f"- {m.label}: {m.note}" for m in self.methods.values() if m.note]
        if notes:
            lines += ["", "Notes:", *notes]
        return "\n".join(lines) + "\n"


def _scan(values: np.ndarray, curve: np.ndarray) -> CouplingScan:
    i = int(np.argmin(curve))
    t = np.clip(curve - curve[i], 0.0, None)
    return CouplingScan(PARAMETER, values, t, float(values[i]),
                        interval_from_scan(values, t, DELTA_68),
                        interval_from_scan(values, t, DELTA_95), 0.0)


def plot_scans(results: SBIResults, path: str | Path) -> Path:
    """−2Δln L(c) of every method in one PNG."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    # matplotlib's default style (DejaVu fonts have ℓ, δ, ⁺, ′), whatever style is active
    with plt.style.context("default"):
        return _draw_scans(plt, results, path)


def _draw_scans(plt: Any, results: SBIResults, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 5))
    styles = {"truth": ("black", ":"), "analysis_fit": ("tab:cyan", "-."), "binned": ("tab:blue", "-"), "sally": ("tab:orange", "-"),
              "carl": ("tab:green", "--"), "alice": ("tab:red", "--"),
              "alices": ("tab:purple", "--")}
    top = 0.0
    for key, m in results.methods.items():
        color, style = styles.get(key, (None, "-"))
        ax.plot(m.scan.values, m.scan.twice_delta_nll, style, color=color, label=m.label)
        top = max(top, float(np.max(m.scan.twice_delta_nll)))
        if m.calibrated is not None:
            ax.plot(m.calibrated.values, m.calibrated.twice_delta_nll, ":", color=color,
                    linewidth=1.0, label=f"{m.label.replace(', unbinned', '')}, calibrated")
    for level in (DELTA_68, DELTA_95):
        ax.axhline(level, color="gray", linewidth=0.7)
    ax.set_ylim(0, min(max(top, 5.0), 8.0))
    # wide enough for every 95 % interval that was found
    half = max([results.c_max] + [abs(v) * 1.2 for m in results.methods.values()
                                  for v in m.scan.interval_95 if v is not None])
    ax.set_xlim(-half, half)
    ax.set_xlabel(r"$c_{H\tilde{W}}$")
    ax.set_ylabel(r"expected $-2\Delta\ln L$ (Asimov, SM)")
    extra = "; (a′) with backgrounds and systematics" if "analysis_fit" in results.methods else ""
    ax.set_title(f"WH, {results.luminosity_fb:g} fb$^{{-1}}$, signal only{extra}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


_LABELS = {
    "truth": "truth: exact joint likelihood (generator record)",
    "analysis_fit": "(a′) fit_wh: Q_ℓ cos δ⁺ × p_T^W, with backgrounds and systematics",
    "binned": "(a) binned Q_ℓ cos δ⁺ × p_T^W",
    "sally": "(b) SALLY score, binned",
    "carl": "(c) CARL, unbinned",
    "alice": "(c) ALICE, unbinned",
    "alices": "(c) ALICES, unbinned",
}


def _edges(config: AnalysisConfig, key: str) -> np.ndarray:
    axis = config.histograms.get(key)
    if axis is None:
        raise ConfigError(f"{config.source or 'config'}: histograms.{key}: needed for the binned "
                          "likelihood (a)")
    if getattr(axis, "edges", None):
        return np.asarray(axis.edges, dtype=np.float64)
    return np.linspace(axis.start, axis.stop, axis.bins + 1)


def _hist_2d(a: np.ndarray, b: np.ndarray, edges_a: np.ndarray, edges_b: np.ndarray,
             weights: np.ndarray) -> np.ndarray:
    ia = np.clip(np.searchsorted(edges_a, a, side="right") - 1, 0, edges_a.size - 2)
    ib = np.clip(np.searchsorted(edges_b, b, side="right") - 1, 0, edges_b.size - 2)
    flat = ia * (edges_b.size - 1) + ib
    return np.bincount(flat, weights=weights, minlength=(edges_a.size - 1) * (edges_b.size - 1))


def _binned(index: np.ndarray, n_bins: int, sample: CPSample) -> tuple[np.ndarray, ...]:
    return tuple(sample.events_per_weight * np.bincount(index, weights=w, minlength=n_bins)
                 for w in (sample.sm, sample.int_, sample.quad))


def run_wh_sbi(config: AnalysisConfig | str | Path = "wh", *, events: int = 200_000,
               seed: int = 1, settings: SBISettings | None = None,
               out: str | Path | None = None) -> SBIResults:
    """Generate WH events, train the estimators, and compute all expected limits.

    Writes to ``out`` (when given): ``limits.md``, ``limits.json``,
    ``likelihood_scans.png`` and the estimators ``<method>.onnx`` with cards.

    Args:
        config: the WH config (or its path or "wh").
        events: generated WH events (before selection).
        seed: seeds generation, splitting, c draws and the networks.
        settings: estimators, training and scan settings.
        out: output folder, or None to write nothing.

    Raises:
        ConfigError: not a WH config.
        InputError: too few events, unknown inputs, an unwritable output folder.
    """
    from ewpolar.core.outputs import atomic_write_json, ensure_writable_dir

    t0 = time.perf_counter()
    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    settings = settings or SBISettings()
    out_dir = ensure_writable_dir(out) if out is not None else None
    inputs = tuple(settings.inputs or WH_FEATURES)
    needed = tuple(dict.fromkeys((*inputs, *BINNED_OBSERVABLES)))
    edges_q, edges_w = (_edges(cfg, k) for k in BINNED_OBSERVABLES)
    sample = wh_sample(cfg, events, seed, names=needed)
    train, test = sample.split(settings.test_fraction, seed)
    mlp = settings.mlp_config()
    mlp = MLPConfig.from_dict({**mlp.to_dict(), "seed": seed})

    # exact information on the training events fixes the default range
    t_train = joint_score(train.sm, train.int_, train.quad, 0.0)
    info_train = float(np.sum(train.expected_weights(0.0) * t_train ** 2))
    c_max = settings.c_max or float(f"{6.0 / math.sqrt(max(info_train, 1e-12)):.2g}")
    values = np.linspace(-c_max, c_max, settings.scan_points)
    log.info("scan |c| ≤ %g (%d points)", c_max, values.size)

    w_test = test.expected_weights(0.0)
    nu = np.asarray(test.nu(values))
    t_test = joint_score(test.sm, test.int_, test.quad, 0.0)
    methods: dict[str, MethodResult] = {}
    fisher: dict[str, float] = {
        "rate_term": float(test.nu(0.0) * (test.int_.sum() / test.sm.sum()) ** 2)}
    models: dict[str, str] = {}

    # truth: the exact joint ratio w(c)/w(0)
    log_joint = np.log(np.stack([test.weights(c) for c in values]) / test.sm)
    curve = unbinned_asimov_scan(log_joint, w_test, nu)
    fisher["truth"] = score_fisher_information(t_test, w_test)
    methods["truth"] = MethodResult("truth", _LABELS["truth"], _scan(values, curve),
                                    fisher["truth"])

    # (a) binned Q_l cos δ+ × p_T^W
    q = test.columns(["q_cos_delta_plus"])[:, 0].astype(np.float64)
    ptw = test.columns(["ptw"])[:, 0].astype(np.float64)
    hists = [test.events_per_weight * _hist_2d(q, ptw, edges_q, edges_w, w)
             for w in (test.sm, test.int_, test.quad)]
    fisher["binned"] = binned_fisher_information(hists[0], hists[1])
    methods["binned"] = MethodResult("binned", _LABELS["binned"],
                                     _scan(values, binned_asimov_scan(*hists, values)),
                                     fisher["binned"])

    # (b) SALLY
    x_train, x_test = train.columns(inputs), test.columns(inputs)
    sally = train_score_estimator(x_train, t_train, train.sm, inputs=inputs, config=mlp)
    t_hat_train, t_hat = sally.score(x_train), sally.score(x_test)
    inner = _weighted_quantiles(t_hat_train, train.sm, settings.sally_bins)
    index = np.searchsorted(inner, t_hat, side="right")
    sally_hists = _binned(index, settings.sally_bins, test)
    fisher["sally"] = score_fisher_information(t_hat, w_test)
    fisher["sally_projected"] = _projected_information(t_hat, t_test, w_test)
    fisher["sally_binned"] = binned_fisher_information(sally_hists[0], sally_hists[1])
    methods["sally"] = MethodResult(
        "sally", _LABELS["sally"], _scan(values, binned_asimov_scan(*sally_hists, values)),
        fisher["sally"], fisher["sally_projected"],
        note=f"binned in {settings.sally_bins} SM-quantile bins of t̂; Fisher information of "
             f"the binned t̂: {fisher['sally_binned']:.1f}")
    if out_dir is not None:
        models["sally"] = str(sally.export(out_dir / "sally.onnx", reference_features=x_test))

    # (c) ratio estimators
    if settings.methods:
        rows = ratio_training_data(train, inputs, c_max, draws=settings.theta_draws, seed=seed)
        for method in settings.methods:
            est = train_ratio_estimator(
                method, rows["features"], rows["labels"], rows["weights"],
                inputs=(*inputs, PARAMETER), parameter=PARAMETER, reference=0.0,
                joint_ratio=rows["joint_ratio"], joint_score=rows["joint_score"],
                alpha=settings.alpha, config=mlp)
            log_r = np.stack([est.log_ratio(x_test, c) for c in values])
            curve = unbinned_asimov_scan(log_r, w_test, nu)
            calibrated = calibrated_asimov_scan(log_r, test, values, settings.sally_bins)
            local = est.score(x_test, 0.0)
            fisher[method] = score_fisher_information(local, w_test)
            fisher[f"{method}_projected"] = _projected_information(local, t_test, w_test)
            scan = _scan(values, curve)
            methods[method] = MethodResult(
                method, _LABELS[method], scan, fisher[method], fisher[f"{method}_projected"],
                note=_notes(scan, methods["truth"].scan, fisher[method],
                            fisher[f"{method}_projected"], unbinned=True),
                calibrated=_scan(values, calibrated))
            if out_dir is not None:
                path = out_dir / f"{method}.onnx"
                ref = np.column_stack([x_test, np.resize(values, x_test.shape[0])])
                models[method] = str(est.export(path, reference_features=ref))
    for key in ("binned", "sally"):
        note = _notes(methods[key].scan, methods["truth"].scan, methods[key].fisher,
                      methods[key].fisher_projected)
        if note:
            methods[key] = replace(methods[key],
                                   note="; ".join(filter(None, [methods[key].note, note])))

    if settings.analysis_fit:
        methods["analysis_fit"] = _analysis_fit(cfg, events, seed, out_dir, settings.scan_points)

    order = ["analysis_fit", "binned", "sally", *settings.methods, "truth"]
    results = SBIResults(
        parameter=PARAMETER, luminosity_fb=cfg.luminosity_fb,
        expected_events_sm=float(sample.nu(0.0)), events_generated=events,
        events_selected=len(sample), events_train=len(train), events_test=len(test), c_max=c_max,
        methods={k: methods[k] for k in order if k in methods}, fisher=fisher,
        settings={**settings.to_dict(), "inputs": list(inputs), "seed": seed,
                  "config": str(cfg.source) if cfg.source else None},
        models=models, seconds=time.perf_counter() - t0)
    if out_dir is not None:
        (out_dir / "limits.md").write_text(results.to_markdown(), encoding="utf-8")
        atomic_write_json(out_dir / "limits.json", json.loads(json.dumps(results.to_dict(),
                                                                         default=_json_default)))
        plot_scans(results, out_dir / "likelihood_scans.png")
        log.info("wrote %s", out_dir / "limits.md")
    return results


def _analysis_fit(config: AnalysisConfig, events: int, seed: int, out_dir: Path | None,
                  scan_points: int) -> MethodResult:
    """Row (a′): generate all datasets, run the processor, fit_wh (Asimov at the SM)."""
    import tempfile

    from ewpolar.generator import generate
    from ewpolar.runner.run import load_fileset, run_analysis
    from ewpolar.stats.fit import fit_wh

    with tempfile.TemporaryDirectory(prefix="ewpolar-sbi-") as tmp:
        base = (out_dir if out_dir is not None else Path(tmp)) / "analysis_fit"
        log.info("analysis fit: generating %d events per dataset in %s", events, base)
        fileset = generate(config, events=events, seed=seed, out=base / "samples")
        run_analysis(config, load_fileset(fileset), out=base / "run")
        fit = fit_wh(config, base / "run" / "histograms.root", pseudo_data="asimov",
                     scan_points=scan_points, out=base / "fit" if out_dir is not None else None)
    datasets = ", ".join(config.samples)
    return MethodResult("analysis_fit", _LABELS["analysis_fit"], fit.scan,
                        note=f"separate samples ({events} generated events of each of {datasets}); "
                             "all regions and systematic uncertainties of the config; nuisance "
                             "parameters profiled; scan range of the config's fit.cp_scan")


def _notes(scan: CouplingScan, truth: CouplingScan, fisher: float | None,
           projected: float | None, *, unbinned: bool = False) -> str:
    """Warnings: a curve stronger than the truth-level bound, or a mostly noisy score."""
    notes = []
    lo, hi = scan.interval_95
    tlo, thi = truth.interval_95
    if None not in (lo, hi, tlo, thi) and (hi - lo) < 0.98 * (thi - tlo):
        notes.append("95% CL interval narrower than the truth-level bound: the estimated "
                     "ratio adds spurious information (noise); do not trust this row")
    if fisher is not None and projected is not None and fisher > 1.3 * projected:
        notes.append(f"only {projected / fisher:.0%} of ν·Var(t̂) follows the exact score: the "
                     "estimate is noisy" + (" and its raw unbinned curve can overstate the "
                                            "sensitivity (compare the calibrated column)"
                                            if unbinned else ""))
    return "; ".join(notes)


def _weighted_quantiles(x: np.ndarray, w: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges (bins − 1) at equal steps of the cumulative weight."""
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, bins) / bins)
    return x[order][np.clip(cuts, 0, x.size - 1)]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

