"""Expected (Asimov) likelihood scans and Fisher informations of the SBI study.

Binned Poisson and extended unbinned −2Δln L(c) of Asimov data at the SM, the
calibrated (binned in ln r̂) variant, and the Fisher informations at c = 0 (see
:mod:`ewpolar.models.sbi`).
"""

from __future__ import annotations

import numpy as np
from ewpolar.core.results import CouplingScan
from ewpolar.models.sbi.data import PARAMETER, CPSample
from ewpolar.stats.likelihood import DELTA_68, DELTA_95, interval_from_scan

__all__ = [
    "binned_asimov_scan",
    "binned_fisher_information",
    "binned_yields",
    "calibrated_asimov_scan",
    "coupling_scan",
    "projected_fisher_information",
    "score_fisher_information",
    "unbinned_asimov_scan",
    "weighted_quantiles",
]


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
    docs/physics.md §3), so noise in r̂ cannot create information, it only loses some.
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
        index = np.searchsorted(weighted_quantiles(stat, sample.sm, bins), stat, side="right")
        out[k] = binned_asimov_scan(*binned_yields(index, bins, sample), [c])[0]
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


def projected_fisher_information(score: np.ndarray, exact: np.ndarray, sm_events: np.ndarray) -> float:
    """ν · Cov(t̂, t)² / Var(t̂): the information of t̂ about the exact joint score."""
    w = np.asarray(sm_events, dtype=np.float64)
    a = score - np.average(score, weights=w)
    b = exact - np.average(exact, weights=w)
    var = np.sum(w * a * a)
    return float(np.sum(w * a * b) ** 2 / var) if var > 0 else 0.0


def coupling_scan(values: np.ndarray, curve: np.ndarray) -> CouplingScan:
    """The scan of a −2Δln L(c) curve: shifted to its minimum, with 68 % and 95 % CL intervals."""
    i = int(np.argmin(curve))
    t = np.clip(curve - curve[i], 0.0, None)
    return CouplingScan(PARAMETER, values, t, float(values[i]),
                        interval_from_scan(values, t, DELTA_68),
                        interval_from_scan(values, t, DELTA_95), 0.0)


def binned_yields(index: np.ndarray, n_bins: int, sample: CPSample) -> tuple[np.ndarray, ...]:
    """Expected SM, interference and quadratic yields of the events in bins ``index``."""
    return tuple(sample.events_per_weight * np.bincount(index, weights=w, minlength=n_bins)
                 for w in (sample.sm, sample.int_, sample.quad))


def weighted_quantiles(x: np.ndarray, w: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges (bins − 1) at equal steps of the cumulative weight."""
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, bins) / bins)
    return x[order][np.clip(cuts, 0, x.size - 1)]
