"""Classifier-based reweighting of one sample to another (DCTR, arXiv:1907.08209).

A classifier f(x) is trained to separate a *source* sample (label 0) from a
*target* sample (label 1) with the weighted cross-entropy, the two classes
normalised to equal total weight (:func:`ewpolar.models.training.trainer.train_network`:
Adam with a learning rate halved on plateaus, early stopping). It then converges to f = p_T / (p_S + p_T) (the likelihood-ratio
trick, docs/physics.md §3), so the per-event weight that turns the source into the
target is

    w(x) = f(x) / (1 − f(x)) = p_T(x) / p_S(x)        (densities of unit norm)

The two samples can be two datasets (e.g. an approximate and a better
prediction) or one dataset under two weightings (nominal and a weight
variation: the same events with different weights). The weights reshape; they
keep the source's total on average (E_S[w] = 1), so multiply by σ_T/σ_S for a
change in rate.

Options (:class:`DCTRConfig`):

* calibration: the raw ratio is replaced by the ratio of the classifier-output
  histograms of the two classes, h_T(f)/h_S(f) (docs/physics.md §3: "calibrate s with
  a histogram of the classifier output on each class"), interpolated in
  ln(f/(1 − f)) (:class:`HistogramCalibration`); bins have equal total weight of
  both classes together. It corrects a biased classifier at the price of binning
  and statistical noise, so it helps only when the raw ratio is off;
* clipping: weights are limited to ``[clip_min, clip_max]``.

The trained network is exported to ONNX (inputs standardised inside the graph;
outputs ``probability`` = f and ``logit`` = ln(f/(1 − f))); calibration and
clipping are stored in its card and applied by :meth:`DCTRReweighter.weights`.
:meth:`DCTRReweighter.add_to_weights` puts the result into coffea's ``Weights``
as a correction or as a one-sided systematic.

Closure (:func:`closure_test`): in every variable, trained on or not, the
reweighted source is compared with the target as unit-area histograms
(χ²/ndf; ndf = bins − 1 for the normalisation) and with a weighted
Kolmogorov–Smirnov distance; the same numbers for the source before
reweighting show what the weights changed. :func:`plot_closure` draws them.
Two samples of different events are independent: the χ² adds the two
histograms' sum-of-w² errors. One sample under two weightings (a weight
variation) is *paired*: the two histograms fluctuate together, and the error
of their difference is that of the per-event difference of the two weights,
var(bin) = Σ_i d_i² with d_i = w_a,i (1_bin,i − p_a)/W_a − w_b,i (1_bin,i − p_b)/W_b
(p the bin's unit-area fraction, W the total weight; the p terms carry the
normalisation). Adding independent errors there would hide any difference
(a reweighter that does nothing would pass).

Example:
    >>> import numpy as np
    >>> from ewpolar.models.training.mlp import MLPConfig
    >>> rng = np.random.default_rng(0)
    >>> src, tgt = rng.normal(0, 1, (4000, 1)), rng.normal(0.3, 1, (4000, 1))
    >>> cfg = DCTRConfig(mlp=MLPConfig(n_layers=1, width=8, max_epochs=3))
    >>> result = train_dctr(src, tgt, inputs=["x"], config=cfg)
    >>> result.reweighter.weights(src).shape
    (4000,)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ewpolar.core.errors import InputError
from ewpolar.models.runtime import OnnxModel, load_model

if TYPE_CHECKING:  # torch is needed to train, not to apply an exported model
    from ewpolar.models.training.mlp import MLP, MLPConfig, TrainingHistory

__all__ = [
    "DEFAULT_MLP_SETTINGS",
    "ClosureReport",
    "DCTRConfig",
    "DCTRResult",
    "DCTRReweighter",
    "HistogramCalibration",
    "VariableClosure",
    "closure_test",
    "plot_closure",
    "train_dctr",
    "weighted_ks",
]

log = logging.getLogger(__name__)

#: network settings used when :class:`DCTRConfig` gets none
DEFAULT_MLP_SETTINGS = {"n_layers": 3, "width": 64, "dropout": 0.0, "activation": "tanh",
                        "learning_rate": 1e-3, "batch_size": 1024, "max_epochs": 50,
                        "patience": 8}


@dataclass(frozen=True)
class DCTRConfig:
    """Settings of a DCTR reweighting.

    Attributes:
        mlp: network and training settings (Adam, early stopping on a validation
            split); None: :data:`DEFAULT_MLP_SETTINGS`.
        calibration_bins: histogram calibration with this many bins of f (None: raw ratio).
        clip_min, clip_max: limits of the weights (None: no limit on that side).
    """

    mlp: MLPConfig | None = None
    calibration_bins: int | None = None
    clip_min: float | None = None
    clip_max: float | None = None

    def __post_init__(self) -> None:
        if self.calibration_bins is not None and self.calibration_bins < 2:
            raise ValueError("calibration_bins must be at least 2")
        if (self.clip_min is not None and self.clip_max is not None
                and not self.clip_min < self.clip_max):
            raise ValueError("clip_min must be below clip_max")

    def mlp_config(self) -> MLPConfig:
        """The network settings (the defaults when ``mlp`` is None)."""
        from ewpolar.models.training.mlp import MLPConfig

        return self.mlp if self.mlp is not None else MLPConfig(**DEFAULT_MLP_SETTINGS)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return {"mlp": self.mlp_config().to_dict(), "calibration_bins": self.calibration_bins,
                "clip_min": self.clip_min, "clip_max": self.clip_max}


@dataclass(frozen=True)
class HistogramCalibration:
    """Weight as a function of the classifier output: h_T(f) / h_S(f), both of unit area.

    The ratio of each bin is placed at the bin's mean logit, ln(f/(1 − f)), and
    ln(ratio) is interpolated linearly in the logit between these points (constant
    beyond the outer ones): for a well-trained classifier ln(ratio) = logit, which
    this reproduces without the bias of interpolating a convex f/(1 − f) in f.

    Attributes:
        edges: bin edges in f (increasing, in [0, 1]).
        logit: mean logit of each bin (both classes together).
        ratio: h_T/h_S per bin (exp of the mean logit where h_S or h_T is 0).
    """

    edges: np.ndarray
    logit: np.ndarray
    ratio: np.ndarray

    @classmethod
    def fit(cls, f_source: np.ndarray, w_source: np.ndarray, f_target: np.ndarray,
            w_target: np.ndarray, bins: int) -> HistogramCalibration:
        """Bins of equal total weight of both classes (each class normalised to 1)."""
        f = np.concatenate([f_source, f_target]).astype(np.float64)
        w = np.concatenate([w_source / w_source.sum(), w_target / w_target.sum()])
        order = np.argsort(f, kind="stable")
        cum = np.cumsum(np.clip(w[order], 0.0, None))
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, bins) / bins)
        inner = np.unique(f[order][np.clip(cuts, 0, f.size - 1)])
        edges = np.concatenate([[0.0], inner[(inner > 0) & (inner < 1)], [1.0]])
        hs = np.histogram(f_source, edges, weights=w_source)[0] / w_source.sum()
        ht = np.histogram(f_target, edges, weights=w_target)[0] / w_target.sum()
        logit = _logit(f)
        sum_w = np.histogram(f, edges, weights=w)[0]
        mean_logit = np.histogram(f, edges, weights=w * logit)[0] / np.where(sum_w > 0, sum_w, 1)
        ok = (hs > 0) & (ht > 0)
        ratio = np.where(ok, ht / np.where(ok, hs, 1.0), np.exp(mean_logit))
        keep = sum_w > 0
        return cls(edges, mean_logit[keep], ratio[keep])

    def __call__(self, f: np.ndarray) -> np.ndarray:
        """Calibrated weights for classifier outputs ``f``."""
        return np.exp(np.interp(_logit(np.asarray(f, dtype=np.float64)), self.logit,
                                np.log(self.ratio)))

    def to_dict(self) -> dict[str, list[float]]:
        return {"edges": self.edges.tolist(), "logit": self.logit.tolist(),
                "ratio": self.ratio.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> HistogramCalibration:
        return cls(*(np.asarray(data[k], dtype=np.float64) for k in ("edges", "logit", "ratio")))


def _logit(f: np.ndarray) -> np.ndarray:
    f = np.clip(f, 1e-15, 1.0 - 1e-15)
    return np.log(f) - np.log1p(-f)


def _matrix(features: Mapping[str, Any] | np.ndarray, inputs: Sequence[str]) -> np.ndarray:
    if isinstance(features, Mapping):
        missing = [n for n in inputs if n not in features]
        if missing:
            raise InputError(f"reweighting: missing inputs {missing}")
        return np.column_stack([np.asarray(features[n], dtype=np.float32) for n in inputs])
    x = np.asarray(features, dtype=np.float32)
    if x.ndim == 1 and len(inputs) == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != len(inputs):
        raise InputError(f"reweighting: features must have shape [N, {len(inputs)}] "
                         f"({', '.join(inputs)}), got {x.shape}")
    return np.ascontiguousarray(x)


class DCTRReweighter:
    """A trained DCTR classifier turned into per-event weights.

    Backed by the torch network after training, or by the ONNX model after
    :meth:`load` (no torch needed then).

    Attributes:
        inputs: ordered input names.
        calibration: optional :class:`HistogramCalibration`.
        clip_min, clip_max: weight limits (None: none).
    """

    def __init__(self, inputs: Sequence[str], *, model: MLP | None = None,
                 onnx: OnnxModel | None = None, calibration: HistogramCalibration | None = None,
                 clip_min: float | None = None, clip_max: float | None = None,
                 training: Mapping[str, Any] | None = None) -> None:
        if (model is None) == (onnx is None):
            raise ValueError("give exactly one of a torch model and an ONNX model")
        self.inputs = tuple(inputs)
        self.model = model
        self.onnx = onnx
        self.calibration = calibration
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.training = dict(training or {})

    def __repr__(self) -> str:
        backend = "onnx" if self.onnx is not None else "torch"
        return f"DCTRReweighter(inputs={len(self.inputs)}, {backend}, calibrated={self.calibration is not None})"

    def logit(self, features: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """ln(f / (1 − f)) per event, float64."""
        x = _matrix(features, self.inputs)
        if self.onnx is not None:
            return self.onnx.predict(x, output="logit").astype(np.float64)
        from ewpolar.models.training.export import torch_outputs

        return torch_outputs(self.model, x, {"logit": "identity"})["logit"].astype(np.float64)

    def probability(self, features: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """The classifier output f (probability of the target class), float64."""
        return 1.0 / (1.0 + np.exp(-self.logit(features)))

    def weights(self, features: Mapping[str, Any] | np.ndarray, *, calibrated: bool = True,
                clip: bool = True) -> np.ndarray:
        """Per-event weights p_T/p_S: f/(1 − f), calibrated and clipped as configured."""
        logit = self.logit(features)
        if calibrated and self.calibration is not None:
            w = self.calibration(1.0 / (1.0 + np.exp(-logit)))
        else:
            w = np.exp(np.clip(logit, -700.0, 700.0))
        if clip and (self.clip_min is not None or self.clip_max is not None):
            w = np.clip(w, self.clip_min, self.clip_max)
        return w

    def add_to_weights(self, weights: Any, name: str, features: Mapping[str, Any] | np.ndarray,
                       *, systematic: bool = False) -> np.ndarray:
        """Add the reweighting to a coffea ``Weights`` object; returns the weights used.

        ``systematic=False``: a correction (``weights.add(name, w)``).
        ``systematic=True``: nominal 1 with ``{name}Up`` = w and ``{name}Down`` = 1/w
        (coffea's default for a missing down variation), e.g. the difference
        between two generators as an uncertainty.
        """
        w = self.weights(features)
        if systematic:
            weights.add(name, np.ones_like(w), weightUp=w.copy())
        else:
            weights.add(name, w)
        return w

    def export(self, path: str | Path, *, reference_features: np.ndarray | None = None) -> Path:
        """Write the ONNX model and its card (with calibration and clipping); returns the path."""
        from ewpolar.models.training.export import export_mlp

        if self.model is None:
            raise ValueError("this reweighter was loaded from ONNX; it is already exported")
        extra = {"dctr": {"calibration": self.calibration.to_dict() if self.calibration else None,
                          "clip_min": self.clip_min, "clip_max": self.clip_max,
                          "weight": "f / (1 - f) = exp(logit), then calibration, then clipping"}}
        export_mlp(self.model, path, inputs=self.inputs,
                   outputs={"probability": "sigmoid", "logit": "identity"}, kind="dctr",
                   training=self.training, extra=extra, reference_features=reference_features)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> DCTRReweighter:
        """The reweighter of an exported model (ONNX + card).

        Raises:
            InputError: missing or mismatched files, or not a DCTR model.
        """
        model = load_model(path)
        if model.card.kind != "dctr" or "logit" not in model.card.outputs:
            raise InputError(f"{path}: not a DCTR reweighting model (kind {model.card.kind!r})")
        info = model.card.extra.get("dctr") or {}
        cal = info.get("calibration")
        return cls(model.card.inputs, onnx=model,
                   calibration=HistogramCalibration.from_dict(cal) if cal else None,
                   clip_min=info.get("clip_min"), clip_max=info.get("clip_max"),
                   training=model.card.training)


@dataclass
class DCTRResult:
    """A trained reweighter with its training history and separation power."""

    reweighter: DCTRReweighter
    history: TrainingHistory
    auc: float
    n_source: int
    n_target: int

    def to_dict(self) -> dict[str, Any]:
        return {"auc_training_events": self.auc, "n_source": self.n_source,
                "n_target": self.n_target, "history": self.history.to_dict()}


def _weights_or_ones(weights: np.ndarray | None, n: int, what: str) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise InputError(f"{what}: {w.shape[0] if w.ndim else 0} weights for {n} events")
    if not np.isfinite(w).all():
        raise InputError(f"{what}: weights must be finite")
    return w


def train_dctr(source: np.ndarray, target: np.ndarray, *, inputs: Sequence[str],
               source_weights: np.ndarray | None = None, target_weights: np.ndarray | None = None,
               config: DCTRConfig | None = None) -> DCTRResult:
    """Train the source-vs-target classifier and build the reweighter.

    Args:
        source: float [n_S, d] features of the sample to be reweighted (label 0).
        target: float [n_T, d] features of the sample to reweight to (label 1).
        inputs: the d feature names.
        source_weights, target_weights: event weights (default 1); each class is
            normalised to equal total weight.
        config: network, calibration and clipping settings.

    Raises:
        InputError: shapes disagree, too few events, or non-finite inputs.
    """
    config = config or DCTRConfig()
    xs, xt = _matrix(source, inputs), _matrix(target, inputs)
    for name, x in (("source", xs), ("target", xt)):
        if x.shape[0] < 10:
            raise InputError(f"reweighting: the {name} sample has {x.shape[0]} events (need ≥ 10)")
        if not np.isfinite(x).all():
            raise InputError(f"reweighting: the {name} features contain NaN or infinity")
    ws = _weights_or_ones(source_weights, xs.shape[0], "source")
    wt = _weights_or_ones(target_weights, xt.shape[0], "target")
    x = np.concatenate([xs, xt])
    y = np.concatenate([np.zeros(xs.shape[0]), np.ones(xt.shape[0])])
    w = np.concatenate([ws, wt])
    log.info("DCTR: training on %d source and %d target events", xs.shape[0], xt.shape[0])
    from ewpolar.models.training.mlp import balance_class_weights
    from ewpolar.models.training.trainer import binary_cross_entropy, build_mlp, train_network

    settings = config.mlp_config()
    model = build_mlp(x, w, settings)
    history = train_network(model, binary_cross_entropy,
                            {"features": x, "target": y, "weights": balance_class_weights(y, w)},
                            settings)
    training = {"config": config.to_dict(), "n_source": int(xs.shape[0]),
                "n_target": int(xt.shape[0]), "labels": {"0": "source", "1": "target"},
                "best_epoch": history.best_epoch}
    reweighter = DCTRReweighter(inputs, model=model, clip_min=config.clip_min,
                                clip_max=config.clip_max, training=training)
    f = reweighter.probability(x)
    if config.calibration_bins is not None:
        n_s = xs.shape[0]
        reweighter.calibration = HistogramCalibration.fit(f[:n_s], ws, f[n_s:], wt,
                                                          config.calibration_bins)
    from ewpolar.models.training.metrics import weighted_roc_auc

    auc = weighted_roc_auc(f, y, w)
    log.info("DCTR: AUC %.4f on the training events (0.5: samples indistinguishable)", auc)
    return DCTRResult(reweighter, history, auc, int(xs.shape[0]), int(xt.shape[0]))


# --------------------------------------------------------------------------- closure


def weighted_ks(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> float:
    """Largest distance between the weighted empirical CDFs of two samples.

    >>> weighted_ks(np.array([0.0, 1.0]), np.ones(2), np.array([0.0, 1.0]), np.ones(2))
    0.0
    """
    def cdf(x: np.ndarray, w: np.ndarray, at: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(w[order])]) / w.sum()
        return cum[np.searchsorted(x[order], at, side="right")]

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    wa, wb = np.asarray(wa, dtype=np.float64), np.asarray(wb, dtype=np.float64)
    at = np.concatenate([a, b])
    return float(np.max(np.abs(cdf(a, wa, at) - cdf(b, wb, at))))


@dataclass(frozen=True)
class VariableClosure:
    """Closure in one variable: unit-area histograms and their agreement with the target.

    Histogram arrays are per bin fractions of the total weight with their
    sum-of-w² errors (events outside the edges are counted in the end bins).
    ``paired``: source and target are the same events, and the χ² values use the
    paired error of the difference (module docstring), not these errors.
    """

    name: str
    trained: bool
    edges: np.ndarray
    source: np.ndarray
    source_err: np.ndarray
    reweighted: np.ndarray
    reweighted_err: np.ndarray
    target: np.ndarray
    target_err: np.ndarray
    chi2_before: float
    chi2_after: float
    ndf: int
    ks_before: float
    ks_after: float
    paired: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        out["chi2_ndf_before"] = self.chi2_before / self.ndf if self.ndf else None
        out["chi2_ndf_after"] = self.chi2_after / self.ndf if self.ndf else None
        return out


@dataclass
class ClosureReport:
    """Closure in every variable, with the weight distribution's summary."""

    variables: list[VariableClosure]
    weight_summary: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weight_summary,
                "variables": {v.name: v.to_dict() for v in self.variables}}

    def to_markdown(self) -> str:
        """A table: variable, used in training, χ²/ndf and KS before and after."""
        paired = any(v.paired for v in self.variables)
        lines = [("χ² with paired errors: source and target are the same events under two "
                  "weightings (the error is that of the per-event weight difference).\n")
                 if paired else "",
                 "| variable | trained on | χ²/ndf before | χ²/ndf after | KS before | KS after |",
                 "|---|---|---|---|---|---|"]
        lines = [line for line in lines if line]
        for v in self.variables:
            ndf = max(v.ndf, 1)
            lines.append(f"| {v.name} | {'yes' if v.trained else 'no'} | "
                         f"{v.chi2_before / ndf:.2f} | {v.chi2_after / ndf:.2f} | "
                         f"{v.ks_before:.4f} | {v.ks_after:.4f} |")
        return "\n".join(lines) + "\n"


def _unit_hist(x: np.ndarray, w: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inside = np.clip(x, edges[0], edges[-1])
    h = np.histogram(inside, edges, weights=w)[0]
    s2 = np.histogram(inside, edges, weights=w * w)[0]
    total = w.sum()
    return h / total, np.sqrt(s2) / abs(total)


def _chi2(a: np.ndarray, ea: np.ndarray, b: np.ndarray, eb: np.ndarray) -> tuple[float, int]:
    var = ea ** 2 + eb ** 2
    ok = var > 0
    return float(np.sum((a[ok] - b[ok]) ** 2 / var[ok])), max(int(ok.sum()) - 1, 0)


def _paired_chi2(x: np.ndarray, wa: np.ndarray, wb: np.ndarray,
                 edges: np.ndarray) -> tuple[float, int]:
    """χ² of two unit-area histograms of the same events under weights ``wa`` and ``wb``.

    Each bin's error is that of the difference of the two fractions, from the
    per-event difference d_i of the two weightings' contributions (module
    docstring); bins where both the difference and its error are zero (the two
    weightings agree event by event) add 0 and count in ndf.
    """
    idx = np.clip(np.searchsorted(edges, np.clip(x, edges[0], edges[-1]), side="right") - 1,
                  0, edges.size - 2)
    n_bins = edges.size - 1
    total_a, total_b = wa.sum(), wb.sum()
    pa = np.bincount(idx, weights=wa, minlength=n_bins) / total_a
    pb = np.bincount(idx, weights=wb, minlength=n_bins) / total_b
    # Σ_i d_i² per bin, expanded so that no [n, bins] array is needed:
    # d_i = u_i 1_bin,i − v_i with u_i = a_i − b_i, v_i = a_i p_a − b_i p_b
    a, b = wa / total_a, wb / total_b
    u = a - b
    s_uu = np.bincount(idx, weights=u * u, minlength=n_bins)
    s_ua = np.bincount(idx, weights=u * a, minlength=n_bins)
    s_ub = np.bincount(idx, weights=u * b, minlength=n_bins)
    aa, ab, bb = np.sum(a * a), np.sum(a * b), np.sum(b * b)
    var = (s_uu - 2.0 * (pa * s_ua - pb * s_ub)
           + pa * pa * aa - 2.0 * pa * pb * ab + pb * pb * bb)
    diff = pa - pb
    scale = np.maximum(np.abs(pa), np.abs(pb)) + 1e-300
    tiny = 1e-12 * scale
    var = np.where(var > (tiny * tiny), var, 0.0)
    ok = var > 0
    if np.any(~ok & (np.abs(diff) > tiny)):  # a difference without any spread: infinitely significant
        return float("inf"), n_bins - 1
    return float(np.sum(diff[ok] ** 2 / var[ok])), n_bins - 1


def closure_test(source: np.ndarray, source_weights: np.ndarray, dctr_weights: np.ndarray,
                 target: np.ndarray, target_weights: np.ndarray, names: Sequence[str], *,
                 trained: Sequence[str] = (), bins: int = 20,
                 paired: bool | None = None) -> ClosureReport:
    """Reweighted source against target in every column of ``source``/``target``.

    Args:
        source, target: float [n, k] values of the k variables ``names``.
        source_weights, target_weights: event weights.
        dctr_weights: the per-event reweighting of the source.
        names: variable names.
        trained: the names that were inputs of the classifier.
        bins: bins per variable (edges at quantiles of the target, so each bin
            holds about the same target weight; discrete variables get fewer).
        paired: source and target are the same events under two weightings, and
            the χ² uses the paired error of the difference (module docstring).
            None: paired when ``source`` and ``target`` are equal arrays.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if paired is None:
        paired = source.shape == target.shape and np.array_equal(source, target, equal_nan=True)
    elif paired and source.shape != target.shape:
        raise InputError(f"closure test: paired samples must be the same events, got "
                         f"{source.shape[0]} source and {target.shape[0]} target rows")
    ws = np.asarray(source_weights, dtype=np.float64)
    wt = np.asarray(target_weights, dtype=np.float64)
    wr = ws * np.asarray(dctr_weights, dtype=np.float64)
    out = []
    for j, name in enumerate(names):
        xs, xt = source[:, j], target[:, j]
        edges = np.unique(np.quantile(xt, np.linspace(0.0, 1.0, bins + 1)))
        if edges.size < 3:  # (nearly) constant: one bin per distinct value
            values = np.unique(np.concatenate([xs, xt]))
            mids = 0.5 * (values[1:] + values[:-1])
            edges = np.concatenate([[values[0] - 0.5], mids, [values[-1] + 0.5]])
        hs, es = _unit_hist(xs, ws, edges)
        hr, er = _unit_hist(xs, wr, edges)
        ht, et = _unit_hist(xt, wt, edges)
        if paired:
            chi2_b, ndf = _paired_chi2(xs, ws, wt, edges)
            chi2_a, _ = _paired_chi2(xs, wr, wt, edges)
        else:
            chi2_b, ndf = _chi2(hs, es, ht, et)
            chi2_a, _ = _chi2(hr, er, ht, et)
        out.append(VariableClosure(name, name in trained, edges, hs, es, hr, er, ht, et, chi2_b,
                                   chi2_a, ndf, weighted_ks(xs, ws, xt, wt),
                                   weighted_ks(xs, wr, xt, wt), paired=paired))
    dw = np.asarray(dctr_weights, dtype=np.float64)
    summary = {"mean": float(np.average(dw, weights=ws)), "min": float(dw.min()),
               "max": float(dw.max()), "p99": float(np.quantile(dw, 0.99)),
               "effective_events_fraction": float(wr.sum() ** 2 / np.sum(wr * wr) / dw.size)}
    return ClosureReport(out, summary)


def plot_closure(report: ClosureReport, out_dir: str | Path, *, source_label: str = "source",
                 target_label: str = "target") -> list[Path]:
    """One PNG per variable (``closure_<name>.png``): the three unit-area histograms
    and their ratio to the target. Returns the paths written."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # matplotlib's default style (its fonts have every glyph used), whatever style is active
    with plt.style.context("default"):
        return [_draw_closure(plt, v, out_dir, source_label, target_label)
                for v in report.variables]


def _draw_closure(plt: Any, v: VariableClosure, out_dir: Path, source_label: str,
                  target_label: str) -> Path:
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    edges = v.edges
    centre = 0.5 * (edges[1:] + edges[:-1])
    width = np.diff(edges)
    ax.stairs(v.source / width, edges, label=f"{source_label} (χ²/ndf "
              f"{v.chi2_before / max(v.ndf, 1):.2f})", color="tab:gray", linestyle="--")
    ax.stairs(v.reweighted / width, edges, label=f"{source_label} reweighted (χ²/ndf "
              f"{v.chi2_after / max(v.ndf, 1):.2f})", color="tab:blue")
    ax.errorbar(centre, v.target / width, yerr=v.target_err / width, fmt="o", color="black",
                markersize=3, label=target_label)
    ax.set_ylabel("fraction / bin width")
    ax.set_title(f"{v.name}{'' if v.trained else ' (not a training input)'}", fontsize=10)
    ax.legend(fontsize=8)
    safe = np.where(v.target > 0, v.target, np.nan)
    rax.axhline(1.0, color="black", linewidth=0.8)
    rax.stairs(v.source / safe, edges, color="tab:gray", linestyle="--")
    rax.stairs(v.reweighted / safe, edges, color="tab:blue")
    rax.errorbar(centre, np.ones_like(centre), yerr=v.target_err / safe, fmt="none",
                 color="black")
    rax.set_ylim(0.7, 1.3)
    rax.set_ylabel(f"/ {target_label}")
    rax.set_xlabel(v.name)
    path = out_dir / f"closure_{v.name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
