"""The SBI study of c_HW̃ in WH (``ewpolar sbi``): settings, driver and results.

:func:`run_wh_sbi` generates WH events, trains SALLY and the ratio estimators on
half of the selected events and computes the expected limits of every method on
the other half (see :mod:`ewpolar.models.sbi`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from ewpolar.core.config import AnalysisConfig, load_config
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.core.results import CouplingScan
from ewpolar.models.features import WH_FEATURES
from ewpolar.models.sbi.data import PARAMETER, joint_score, ratio_training_data, wh_sample
from ewpolar.models.sbi.estimators import (
    RATIO_METHODS,
    default_mlp_config,
    train_ratio_estimator,
    train_score_estimator,
)
from ewpolar.models.sbi.information import (
    binned_asimov_scan,
    binned_fisher_information,
    binned_yields,
    calibrated_asimov_scan,
    coupling_scan,
    projected_fisher_information,
    score_fisher_information,
    unbinned_asimov_scan,
    weighted_quantiles,
)
from ewpolar.models.sbi.plots import plot_scans
from ewpolar.models.training.mlp import MLPConfig

__all__ = ["BINNED_OBSERVABLES", "FISHER_FLAG_FRACTION", "MethodResult", "SBIResults",
           "SBISettings", "estimator_config", "run_wh_sbi", "symmetric_score_edges"]

log = logging.getLogger(__name__)

#: an estimator whose Fisher information about the exact score (ν·Cov(t̂, t)²/Var(t̂)) is
#: below this fraction of the truth's has not learnt the coupling: its interval is
#: flagged as unusable (in limits.md, limits.json and on stderr), never shown bare
FISHER_FLAG_FRACTION = 0.25

#: the binned observable of method (a): config ``histograms`` keys
BINNED_OBSERVABLES = ("q_cos_delta_plus", "ptw")


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
    warning: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {"label": self.label, "fisher_information": self.fisher,
               "fisher_information_projected": self.fisher_projected, "note": self.note,
               "usable": not self.warning, "warning": self.warning or None,
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
            :func:`ewpolar.runner.run.run_analysis`, :func:`ewpolar.stats.wh.fit_wh`
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
        return self.mlp if self.mlp is not None else default_mlp_config()

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
        flagged = [m for m in self.methods.values() if m.warning]
        if flagged:
            lines[2:2] = [f"**WARNING: {m.label}: {m.warning}**" for m in flagged] + [""]
        for m in self.methods.values():
            fi = f"{m.fisher:.1f}" if m.fisher is not None else "–"
            if m.fisher_projected is not None:
                fi += f" ({m.fisher_projected:.1f} projected)"
            inv = f"{1 / math.sqrt(m.fisher):.4f}" if m.fisher else "–"
            cal = interval(m.calibrated.interval_95) if m.calibrated is not None else "–"
            mark = "⚠ not usable: " if m.warning else ""
            lines.append(f"| {m.label} | {mark}{interval(m.scan.interval_68)} | "
                         f"{mark}{interval(m.scan.interval_95)} | {cal} | {fi} | {inv} |")
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
            lines += ["", "(a′) is the full analysis (ewpolar.stats.wh.fit_wh on the histograms of "
                      "ewpolar.runner.run.run_analysis) on separately generated samples of all "
                      "datasets, with backgrounds and systematic uncertainties; (b′) is the same "
                      "fit with the SALLY score (the exported ONNX model, evaluated by the WH "
                      "processor) in place of Q_ℓ cos δ⁺."]
        lines += ["", "Side by side: binned kinematic observable (a, a′), score-binned (b, b′), "
                  "unbinned (c), and the truth-level bound."]
        notes = [f"- {m.label}: {m.note}" for m in self.methods.values() if m.note]
        if notes:
            lines += ["", "Notes:", *notes]
        return "\n".join(lines) + "\n"


_LABELS = {
    "truth": "truth: exact joint likelihood (generator record)",
    "analysis_fit": "(a′) fit_wh: Q_ℓ cos δ⁺ × p_T^W, with backgrounds and systematics",
    "analysis_fit_sally": "(b′) fit_wh: SALLY score × p_T^W, with backgrounds and systematics",
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
    methods["truth"] = MethodResult("truth", _LABELS["truth"], coupling_scan(values, curve),
                                    fisher["truth"])

    # (a) binned Q_l cos δ+ × p_T^W
    q = test.columns(["q_cos_delta_plus"])[:, 0].astype(np.float64)
    ptw = test.columns(["ptw"])[:, 0].astype(np.float64)
    hists = [test.events_per_weight * _hist_2d(q, ptw, edges_q, edges_w, w)
             for w in (test.sm, test.int_, test.quad)]
    fisher["binned"] = binned_fisher_information(hists[0], hists[1])
    methods["binned"] = MethodResult("binned", _LABELS["binned"],
                                     coupling_scan(values, binned_asimov_scan(*hists, values)),
                                     fisher["binned"])

    # (b) SALLY
    x_train, x_test = train.columns(inputs), test.columns(inputs)
    sally = train_score_estimator(x_train, t_train, train.sm, inputs=inputs, config=mlp)
    t_hat_train, t_hat = sally.score(x_train), sally.score(x_test)
    inner = weighted_quantiles(t_hat_train, train.sm, settings.sally_bins)
    index = np.searchsorted(inner, t_hat, side="right")
    sally_hists = binned_yields(index, settings.sally_bins, test)
    fisher["sally"] = score_fisher_information(t_hat, w_test)
    fisher["sally_projected"] = projected_fisher_information(t_hat, t_test, w_test)
    fisher["sally_binned"] = binned_fisher_information(sally_hists[0], sally_hists[1])
    methods["sally"] = MethodResult(
        "sally", _LABELS["sally"], coupling_scan(values, binned_asimov_scan(*sally_hists, values)),
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
                alpha=settings.alpha, pairs=rows["pair"] if method == "carl" else None,
                config=mlp)
            log_r = np.stack([est.log_ratio(x_test, c) for c in values])
            curve = unbinned_asimov_scan(log_r, w_test, nu)
            calibrated = calibrated_asimov_scan(log_r, test, values, settings.sally_bins)
            local = est.score(x_test, 0.0)
            fisher[method] = score_fisher_information(local, w_test)
            fisher[f"{method}_projected"] = projected_fisher_information(local, t_test, w_test)
            scan = coupling_scan(values, curve)
            methods[method] = MethodResult(
                method, _LABELS[method], scan, fisher[method], fisher[f"{method}_projected"],
                note=_notes(scan, methods["truth"].scan, fisher[method],
                            fisher[f"{method}_projected"], unbinned=True),
                calibrated=coupling_scan(values, calibrated),
                warning=_information_warning(fisher[f"{method}_projected"], fisher["truth"],
                                             est.history))
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
    if methods["sally"].fisher_projected is not None:
        methods["sally"] = replace(methods["sally"], warning=_information_warning(
            methods["sally"].fisher_projected, fisher["truth"], sally.history))
    for m in methods.values():
        if m.warning:
            log.warning("%s: %s", m.label, m.warning)

    if settings.analysis_fit:
        edges = symmetric_score_edges(t_hat_train, train.sm, SCORE_BINS_PER_SIDE)
        methods.update(_analysis_fit(cfg, events, seed, out_dir, settings.scan_points,
                                     sally=(sally, x_test, edges)))

    order = ["analysis_fit", "binned", "analysis_fit_sally", "sally", *settings.methods, "truth"]
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


#: SALLY-score bins on each side of 0 in the score × p_T^W template of row (b′)
SCORE_BINS_PER_SIDE = 3
#: the outer edges of that template's score axis (every event inside)
_SCORE_AXIS_LIMIT = 1e6


def symmetric_score_edges(score: np.ndarray, weights: np.ndarray, per_side: int) -> np.ndarray:
    """Score bin edges symmetric about 0, with 0 an edge: the weighted quantiles of |t̂|.

    The WH fit splits its signal observable at 0 (the sign of a CP-odd
    observable; an estimated score is CP-odd too), so the edges are
    −∞ < −q_{n−1} < … < −q_1 < 0 < q_1 < … < q_{n−1} < ∞ with q_i the i/n
    quantiles of |t̂| (SM weights); the outer edges are ±10⁶.
    """
    inner = weighted_quantiles(np.abs(np.asarray(score, dtype=np.float64)),
                               np.asarray(weights, dtype=np.float64), per_side)
    inner = np.unique(inner[inner > 0])
    return np.concatenate([[-_SCORE_AXIS_LIMIT], -inner[::-1], [0.0], inner,
                           [_SCORE_AXIS_LIMIT]])


def estimator_config(config: AnalysisConfig, name: str, path: str | Path, edges: np.ndarray, *,
                     output: str = "score", parameter: float | None = None) -> AnalysisConfig:
    """``config`` with an estimator observable, fitted instead of Q_ℓ cos δ⁺ × p_T^W.

    Adds ``estimators.<name>`` (the ONNX file, its ``output``, the ``parameter``
    value), the ``histograms.<name>`` axis with ``edges`` and sets
    ``fit.signal_observable`` to the processor's 2D ``<name>_ptw``.
    """
    data = config.model_dump()
    data["estimators"] = {**data.get("estimators", {}),
                          name: {"path": str(Path(path).resolve()), "output": output,
                                 "parameter": parameter}}
    data["histograms"] = {**data["histograms"],
                          name: {"edges": [float(e) for e in edges], "label": name}}
    data["fit"] = {**data["fit"], "signal_observable": f"{name}_ptw"}
    return AnalysisConfig.model_validate({**data, "source": config.source})


def _analysis_fit(config: AnalysisConfig, events: int, seed: int, out_dir: Path | None,
                  scan_points: int, *, sally: tuple[Any, np.ndarray, np.ndarray] | None = None
                  ) -> dict[str, MethodResult]:
    """Rows (a′) and (b′): generate all datasets, run the processor, fit_wh (Asimov at the SM).

    With ``sally`` (the estimator, reference features, score edges), the same run
    also histograms its score (exported to ONNX and read by the processor, k-fold
    routing included), and a second fit uses the score × p_T^W template.
    """
    import tempfile

    from ewpolar.generator import generate
    from ewpolar.runner.run import load_fileset, run_analysis
    from ewpolar.stats.wh import fit_wh

    out: dict[str, MethodResult] = {}
    datasets = ", ".join(config.samples)
    note = (f"separate samples ({events} generated events of each of {datasets}); all regions "
            "and systematic uncertainties of the config; nuisance parameters profiled; scan "
            "range of the config's fit.cp_scan")
    with tempfile.TemporaryDirectory(prefix="ewpolar-sbi-") as tmp:
        base = (out_dir if out_dir is not None else Path(tmp)) / "analysis_fit"
        run_config = config
        if sally is not None:
            estimator, reference, edges = sally
            model = estimator.export(base / "sally_score.onnx", reference_features=reference)
            run_config = estimator_config(config, "sally_score", model, edges)
        log.info("analysis fit: generating %d events per dataset in %s", events, base)
        fileset = generate(config, events=events, seed=seed, out=base / "samples")
        run_analysis(run_config, load_fileset(fileset), out=base / "run")
        fit = fit_wh(config, base / "run" / "histograms.root", pseudo_data="asimov",
                     scan_points=scan_points, out=base / "fit" if out_dir is not None else None)
        out["analysis_fit"] = MethodResult("analysis_fit", _LABELS["analysis_fit"], fit.scan,
                                           note=note)
        if sally is not None:
            fit = fit_wh(run_config, base / "run" / "histograms.root", pseudo_data="asimov",
                         scan_points=scan_points,
                         out=base / "fit_sally" if out_dir is not None else None)
            out["analysis_fit_sally"] = MethodResult(
                "analysis_fit_sally", _LABELS["analysis_fit_sally"], fit.scan,
                note=note + f"; SALLY's t̂ in {2 * SCORE_BINS_PER_SIDE} bins symmetric about 0 "
                            "(quantiles of |t̂|), histogrammed by the WH processor from the "
                            "exported ONNX model")
    return out


def _information_warning(projected: float | None, truth: float, history: Any) -> str:
    """Why an estimator's interval is not a limit (empty when it is usable).

    The estimator's Fisher information about the exact score is compared with the
    truth's: below :data:`FISHER_FLAG_FRACTION` of it, the estimator has not learnt
    how the events depend on c, and its curve is flat noise, not a limit.
    """
    if projected is None or not truth > 0 or projected >= FISHER_FLAG_FRACTION * truth:
        return ""
    epochs = len(getattr(history, "val_loss", []) or [])
    best = getattr(history, "best_epoch", None)
    trained = f" (best epoch {best} of {epochs})" if epochs else ""
    return (f"Fisher information {projected:.3g} is {projected / truth:.1%} of the truth's "
            f"{truth:.3g}, below {FISHER_FLAG_FRACTION:.0%} (an interval ≥ 2× the truth's): the estimator has not learnt the "
            f"dependence on c{trained}; its interval is not a limit")


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


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
