"""The likelihood engine: maximum-likelihood fits, discovery significances, CLs upper limits
and profile-likelihood scans of any pyhf model.

The likelihood is pyhf's (``model.logpdf``, numpy backend); MINUIT (iminuit)
minimises ``-2 ln L`` directly, so each profile fit can start from the previous
one's parameters and skip the Hesse step when only the minimum is needed.

Asymptotic statistics follow Cowan, Cranmer, Gross, Vitells (arXiv:1007.1727) in
the same conventions as ``pyhf.infer`` (tests compare the numbers with
``pyhf.infer.hypotest`` and ``pyhf.infer.intervals.upper_limits.upper_limit``):

* discovery: q0 = -2 ln λ(0) (0 when μ̂ < 0), Z = √q0 = Φ⁻¹(1 - p0); expected Z
  from the Asimov data set generated at μ = 1 with the nuisance parameters
  profiled on the data at μ = 1 (pyhf's choice);
* upper limits: q̃μ with the Asimov data set at μ = 0 (nuisance parameters
  profiled on the data at μ = 0) giving σ through q_μ,A; observed and expected
  (±1σ, ±2σ) 95 % CL CLs limits found by root finding on μ. All fits at a given μ
  are computed once and shared between the observed and the expected limits
  (and, in :func:`fit_significance_limit`, with the best fit and the significance).

Uncertainties (:func:`fit`): the quoted interval of a POI is the profile-likelihood
(MINOS-like) interval, where -2 Δ ln L profiled over all other parameters crosses
1 (68 % CL), found by root finding on the profile curve; a side that reaches the
parameter's bound first is reported open at the bound, never clipped. The Hesse
error, a secondary figure, comes from the curvature at the minimum in the
unbounded parametrisation (a fresh MINUIT with fixed initial steps, so repeated
calls give the same number). A fit whose MIGRAD minimum is not valid is logged as
a warning and flagged ``converged: false``.

Results come back in the containers of :mod:`ewpolar.core.results`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyhf
from ewpolar.core.results import (
    BAND_SIGMAS,
    CLsPoint,
    CouplingScan,
    FitResults,
    Impact,
    Interval,
    Significance,
    UpperLimit,
)
from ewpolar.stats.workspace import model_and_data
from iminuit import Minuit
from scipy import optimize, stats

__all__ = [
    "CL_LEVEL",
    "DELTA_68",
    "DELTA_95",
    "MC_STAT_DOMINANT",
    "cls_at",
    "fit",
    "fit_significance_limit",
    "interval_from_scan",
    "mc_stat_parameters",
    "numpy_backend",
    "profile_interval",
    "ranking",
    "scan_coupling",
    "significance",
    "upper_limit",
    "upper_limit_toys",
]

log = logging.getLogger(__name__)

#: CLs value of the 95 % CL upper limits
CL_LEVEL = 0.05
# -2 Δ ln L thresholds of the 68 % and 95 % CL intervals (one parameter)
DELTA_68 = 1.0
DELTA_95 = 3.84
#: share of an interval's squared width from MC statistics above which the drivers add a note
MC_STAT_DOMINANT = 0.5


# --------------------------------------------------------------------------- likelihood


@contextlib.contextmanager
def numpy_backend() -> Iterator[None]:
    """Evaluate pyhf models with the numpy backend; restore the caller's backend afterwards."""
    tensorlib, optimizer = pyhf.get_backend()
    if tensorlib.name == "numpy":
        yield
        return
    pyhf.set_backend("numpy")
    try:
        yield
    finally:
        pyhf.set_backend(tensorlib, optimizer)


@dataclass
class _Minimum:
    pars: np.ndarray
    twice_nll: float
    minuit: Minuit | None = None
    valid: bool = True


class _Likelihood:
    """-2 ln L of one model on one data set, with cached profile fits per POI value."""

    def __init__(self, model: pyhf.pdf.Model, data: Sequence[float], *,
                 hold: Mapping[int, float] | None = None):
        self.model = model
        self.data = np.asarray(data, dtype=float)
        self.init = np.asarray(model.config.suggested_init(), dtype=float)
        self.bounds = np.asarray(model.config.suggested_bounds(), dtype=float)
        self.fixed = np.asarray(model.config.suggested_fixed(), dtype=bool)
        # parameters held at a value in every fit of this likelihood (e.g. MC statistics)
        for idx, value in (hold or {}).items():
            self.fixed[idx] = True
            self.init[idx] = value
        self.poi = model.config.poi_index
        self.profiles: dict[float, _Minimum] = {}
        # profile fits of other parameters: index -> value -> minimum
        self.scans: dict[int, dict[float, _Minimum]] = {}
        self._global: _Minimum | None = None
        # parameter uncertainties of the last fit: MINUIT's initial step sizes for the next
        self.steps: np.ndarray | None = None

    def twice_nll(self, pars: np.ndarray) -> float:
        return -2.0 * float(self.model.logpdf(pars, self.data)[0])

    def minimize(self, x0: np.ndarray, fixed: Mapping[int, float] | None = None, *,
                 hesse: bool = False) -> _Minimum:
        """Minimise over all parameters not fixed (suggested fixed plus ``fixed``)."""
        start = np.array(x0, dtype=float)
        mask = self.fixed.copy()
        for idx, value in (fixed or {}).items():
            mask[idx] = True
            start[idx] = value
        free = np.flatnonzero(~mask)
        if free.size == 0:
            return _Minimum(start, self.twice_nll(start))
        lo, hi = self.bounds[free, 0], self.bounds[free, 1]
        x_start = np.clip(start[free], lo, hi)

        def fcn(x: np.ndarray) -> float:
            full = start.copy()
            full[free] = x
            return self.twice_nll(full)

        m = Minuit(fcn, x_start)
        m.errordef = Minuit.LEAST_SQUARES  # fcn is -2 ln L
        m.limits = list(zip(lo, hi, strict=True))
        if self.steps is not None:
            m.errors = self.steps[free]
        m.strategy = 1 if hesse else 0
        m.tol = 0.01
        m.migrad()
        if not m.valid:
            m.strategy = 2
            m.migrad()
        if hesse:
            m.hesse()
        pars = start.copy()
        pars[free] = np.asarray(m.values)
        errors = np.asarray(m.errors)
        if np.all(np.isfinite(errors) & (errors > 0)):
            if self.steps is None:
                self.steps = np.full(pars.size, 0.1)
            self.steps[free] = errors
        if not m.valid:
            log.warning("fit did not converge (edm %.3g); results may be inaccurate", m.fmin.edm)
        return _Minimum(pars, float(m.fval), m, bool(m.valid))

    def free_indices(self, fixed: Mapping[int, float] | None = None) -> np.ndarray:
        mask = self.fixed.copy()
        for idx in fixed or {}:
            mask[idx] = True
        return np.flatnonzero(~mask)

    def hesse(self, best: _Minimum, fixed: Mapping[int, float] | None = None
              ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Hesse errors and correlation matrix at ``best`` (all parameters; 0 for fixed ones).

        A fresh MINUIT without parameter limits and with fixed initial steps: the
        curvature of -2 ln L itself, not of a bounded parametrisation, and the same
        numbers for the same minimum. Falls back to the bounded fit's errors when
        the unbounded evaluation fails (a minimum on a bound where the model is
        undefined beyond it). Returns (errors, correlation, ok).
        """
        n = len(self.init)
        free = self.free_indices(fixed)
        errors, corr = np.zeros(n), np.eye(n)
        if free.size == 0:
            return errors, corr, True
        base = best.pars.copy()

        def fcn(x: np.ndarray) -> float:
            full = base.copy()
            full[free] = x
            value = self.twice_nll(full)
            return value if np.isfinite(value) else 1e300

        m = Minuit(fcn, base[free])
        m.errordef = Minuit.LEAST_SQUARES
        m.errors = np.full(free.size, 0.01)
        m.strategy = 2
        m.hesse()
        ok = m.covariance is not None and bool(m.accurate) and bool(np.all(np.isfinite(m.errors)))
        if ok:
            errors[free] = np.asarray(m.errors)
            corr[np.ix_(free, free)] = np.asarray(m.covariance.correlation())
            return errors, corr, True
        if best.minuit is not None and best.minuit.covariance is not None:
            log.warning("Hesse without parameter bounds failed; the errors are those of the bounded fit")
            errors[free] = np.asarray(best.minuit.errors)
            corr[np.ix_(free, free)] = np.asarray(best.minuit.covariance.correlation())
        return errors, corr, False

    def profile_at(self, index: int, value: float) -> _Minimum:
        """Fit with parameter ``index`` fixed at ``value`` (cached; the POI shares :meth:`profile`)."""
        if index == self.poi:
            return self.profile(value)
        done = self.scans.setdefault(index, {})
        value = float(value)
        if value not in done:
            if done:
                x0 = done[min(done, key=lambda v: abs(v - value))].pars
            else:
                x0 = self._global.pars if self._global is not None else self.init
            done[value] = self.minimize(x0, {index: value})
        return done[value]

    def global_fit(self) -> _Minimum:
        if self._global is None:
            self._global = self.minimize(self.init)
        return self._global

    def profile(self, mu: float) -> _Minimum:
        """Fit with the POI fixed at ``mu``, starting from the nearest fit already done."""
        mu = float(mu)
        if mu not in self.profiles:
            if self.profiles:
                nearest = min(self.profiles, key=lambda v: abs(v - mu))
                x0 = self.profiles[nearest].pars
            else:
                x0 = self._global.pars if self._global is not None else self.init
            self.profiles[mu] = self.minimize(x0, {self.poi: mu})
        return self.profiles[mu]


def _model_data(workspace: Mapping[str, Any]) -> tuple[pyhf.pdf.Model, np.ndarray]:
    model, data = model_and_data(workspace)
    return model, np.asarray(data, dtype=float)


def _fit(lik: _Likelihood, fixed: Mapping[int, float] | None = None, *,
         intervals: Sequence[int] = ()) -> FitResults:
    """Fit with Hesse uncertainties; an unconstrained fit becomes ``lik``'s global minimum.

    ``intervals``: indices of the parameters that get a profile-likelihood interval.
    """
    fixed = dict(fixed or {})
    best = lik.minimize(lik.init, fixed, hesse=True)
    if not fixed:
        lik._global = best
    labels = list(lik.model.config.par_names)
    unc, corr, _ = lik.hesse(best, fixed)
    edm = float(best.minuit.fmin.edm) if best.minuit is not None else 0.0
    if not best.valid:
        log.warning("the maximum-likelihood fit did NOT converge (edm %.3g): its numbers are unreliable",
                    edm)
    ivs = {}
    for idx in intervals:
        ivs[labels[idx]] = _interval(lik, best, idx, unc[idx], DELTA_68)
    return FitResults(labels, best.pars, unc, corr, best.twice_nll, best.valid, ivs, {}, edm)


def _interval(lik: _Likelihood, best: _Minimum, index: int, sigma: float, threshold: float,
              *, rtol: float = 1e-3) -> Interval:
    """Profile-likelihood interval of parameter ``index`` around the minimum ``best``.

    For each side: √(-2 Δ ln L) is nearly linear in the parameter (exactly for a
    Gaussian likelihood), so the crossing is found by secant steps in √(-2 Δ ln L)
    from the minimum and a first point at the Hesse distance, then by the Illinois
    variant of regula falsi once bracketed, to ``rtol`` × σ; a side whose curve
    stays below the threshold up to the parameter's bound is open at the bound.
    """
    x_hat = float(best.pars[index])
    lo_b, hi_b = (float(b) for b in lik.bounds[index])
    sigma = sigma if np.isfinite(sigma) and sigma > 0 else 0.1 * max(1.0, abs(x_hat))
    root = np.sqrt(threshold)

    def g(x: float) -> float:
        # the minimum found with x fixed can lie (within tolerance) below the global one
        return float(np.sqrt(max(lik.profile_at(index, x).twice_nll - best.twice_nll, 0.0)) - root)

    edges: dict[int, tuple[float, bool, float | None]] = {}
    for side, bound in ((-1, lo_b), (1, hi_b)):
        edges[side] = _crossing(g, x_hat, side, sigma, bound, root, rtol)
        if edges[side][1] and edges[side][2] is None:
            log.warning("%s: no crossing of -2 delta ln L = %g found", lik.model.config.par_names[index],
                        threshold)
    done = lik.profiles if index == lik.poi else lik.scans.get(index, {})
    failed = [x for x, m in done.items() if not m.valid]
    if failed:
        log.warning("%s: %d profile fit(s) of the interval did NOT converge (at %s); its edges may"
                    " be inaccurate", lik.model.config.par_names[index], len(failed),
                    ", ".join(f"{x:.4g}" for x in sorted(failed)))
    (low, low_open, low_at), (high, high_open, high_at) = edges[-1], edges[1]
    for flag, side_name, bound in ((low_open, "lower", low), (high_open, "upper", high)):
        if flag:
            log.info("%s: the %s edge of the interval is the parameter bound %g",
                     lik.model.config.par_names[index], side_name, bound)
    cl = float(stats.chi2.cdf(threshold, 1))
    return Interval(lik.model.config.par_names[index], x_hat, low, high, float(sigma),
                    round(cl, 4), low_open, high_open, low_at, high_at)


def _crossing(g: Any, x_hat: float, side: int, sigma: float, bound: float, root: float,
              rtol: float) -> tuple[float, bool, float | None]:
    """Where g (√(-2 Δ ln L) - √threshold, -√threshold at ``x_hat``) crosses 0 on one side.

    Returns (edge, open, -2 Δ ln L at the bound when open).
    """
    inside = (x_hat, -root)  # the outermost point below the threshold
    outside: tuple[float, float] | None = None  # the innermost point above it
    x = x_hat + side * sigma
    kept = 0  # Illinois: successive updates of the same bracket end
    for _ in range(40):
        if (x - bound) * side >= 0:
            x = bound
        gx = g(x)
        if abs(gx) < rtol or (outside is not None and abs(outside[0] - inside[0]) < rtol * sigma):
            return float(x), False, None
        if gx < 0:
            if x == bound:
                return bound, True, float((gx + root) ** 2)
            inside, kept = (x, gx), (kept + 1 if outside is not None and kept >= 0 else 1)
        else:
            outside, kept = (x, gx), (kept - 1 if kept <= 0 else -1)
        if outside is None:
            # secant through the two outermost inside points, growing by 10 % to 4× per step
            step = abs(x - x_hat)
            slope = (gx + root) / step if step > 0 else 0.0
            target = step + (-gx / slope if slope > 0 else step)
            x = x_hat + side * float(np.clip(1.05 * target, 1.1 * step, 4.0 * step))
            continue
        (xi, gi), (xo, go) = inside, outside
        # Illinois: halve the weight of an end kept twice in a row
        if kept >= 2:
            go = go / 2 ** (kept - 1)
        elif kept <= -2:
            gi = gi / 2 ** (-kept - 1)
        x = xi - gi * (xo - xi) / (go - gi)
    return float(x), True, None


def mc_stat_parameters(model: pyhf.pdf.Model) -> list[int]:
    """Indices of the MC-statistics (staterror / shapesys) parameters of a model."""
    types = dict(model.config.modifiers)
    out: list[int] = []
    for name in model.config.par_order:
        if types.get(name) in ("staterror", "shapesys"):
            sl = model.config.par_slice(name)
            out += list(range(sl.start, sl.stop))
    return out


def _stat_only(lik: _Likelihood, best: _Minimum, interval: Interval, index: int) -> Interval:
    """``interval`` with the same interval computed with the MC-statistics parameters held
    at their best-fit values."""
    stat = mc_stat_parameters(lik.model)
    if not stat:
        return interval
    held = _Likelihood(lik.model, lik.data, hold={i: float(best.pars[i]) for i in stat})
    held.init = best.pars.copy()
    held_best = held.minimize(best.pars)
    held._global = held_best
    iv = _interval(held, held_best, index, interval.hesse, DELTA_68)
    return dataclasses.replace(interval, stat_low=iv.low, stat_high=iv.high)


def profile_interval(model: pyhf.pdf.Model, data: Sequence[float], parameter: str, *,
                     threshold: float = DELTA_68, mc_stat: bool = False) -> Interval:
    """Profile-likelihood interval of one scalar parameter: -2 Δ ln L ≤ ``threshold``.

    ``mc_stat=True`` also computes the interval with the MC-statistics parameters
    held at their best fit (:attr:`Interval.mc_stat_fraction`).
    """
    with numpy_backend():
        lik = _Likelihood(model, data)
        best = lik.minimize(lik.init, hesse=True)
        lik._global = best
        index = model.config.par_slice(parameter).start
        errors, _, _ = lik.hesse(best)
        iv = _interval(lik, best, index, errors[index], threshold)
        return _stat_only(lik, best, iv, index) if mc_stat else iv


def fit(model: pyhf.pdf.Model, data: Sequence[float], *,
        fixed: Mapping[str, float] | None = None,
        intervals: Sequence[str] | None = None, impacts: bool = False) -> FitResults:
    """Maximum-likelihood fit of all free parameters with Hesse uncertainties.

    Args:
        model: the pyhf model.
        data: main data followed by the auxiliary data (``workspace.data(model)``).
        fixed: scalar parameters to hold at a value, e.g. ``{"mu_LL": 0.0}``.
        intervals: parameters that get a profile-likelihood 68 % CL interval
            (default: the POI, unless it is fixed).
        impacts: rank the other parameters (MC statistics left out) by their
            impact on each interval parameter (:attr:`FitResults.ranking`).
    """
    with numpy_backend():
        lik = _Likelihood(model, data)
        fixed_idx = {model.config.par_slice(n).start: v for n, v in (fixed or {}).items()}
        names = intervals if intervals is not None else (
            [model.config.poi_name] if model.config.poi_name else [])
        idx = [i for i in (model.config.par_slice(n).start for n in names) if i not in fixed_idx]
        result = _fit(lik, fixed_idx, intervals=idx)
        if impacts and idx and not fixed_idx:
            result = dataclasses.replace(result, ranking=_ranking(
                lik, lik.global_fit(), result, idx, skip=mc_stat_parameters(model)))
        return result


def _poi_error(lik: _Likelihood) -> float:
    """Hesse (or MIGRAD) uncertainty of the POI at the global minimum; 1 if unknown."""
    best = lik.global_fit()
    if best.minuit is None:
        return 1.0
    free = list(np.flatnonzero(~lik.fixed))
    err = float(best.minuit.errors[free.index(lik.poi)])
    return err if np.isfinite(err) and err > 0 else 1.0


# --------------------------------------------------------------------------- significance


def significance(model: pyhf.pdf.Model, data: Sequence[float], *,
                 engine: Literal["shared", "pyhf"] = "shared") -> Significance:
    """Observed and expected discovery significance (σ) from the q0 test statistic.

    ``engine="pyhf"`` calls ``pyhf.infer.hypotest(0, ..., test_stat="q0")`` instead
    (slower; for cross-checks).
    """
    with numpy_backend():
        if engine == "pyhf":
            p_obs, p_exp = pyhf.infer.hypotest(0.0, data, model, test_stat="q0", return_expected=True)
            p_obs, p_exp = float(p_obs), float(p_exp)
            return Significance(float(stats.norm.isf(p_obs)), float(stats.norm.isf(p_exp)), p_obs, p_exp)
        return _significance(_Likelihood(model, data))


def _significance(lik: _Likelihood) -> Significance:
    z_obs = np.sqrt(_q0(lik))
    # expected: Asimov data at mu = 1 with the nuisance parameters profiled on the data at mu = 1
    gen = lik.profile(1.0).pars
    asimov = _Likelihood(lik.model, lik.model.expected_data(gen))
    asimov._global = _Minimum(gen, asimov.twice_nll(gen))
    z_exp = np.sqrt(_q0(asimov))
    return Significance(float(z_obs), float(z_exp), float(stats.norm.sf(z_obs)), float(stats.norm.sf(z_exp)))


def _q0(lik: _Likelihood) -> float:
    best = lik.global_fit()
    if best.pars[lik.poi] <= 0:
        return 0.0
    return max(lik.profile(0.0).twice_nll - best.twice_nll, 0.0)


# --------------------------------------------------------------------------- upper limits


def _band_targets(level: float) -> list[float]:
    """√q_μ,A at which the expected CLs equals ``level`` for the (-2..+2)σ bands (pyhf's convention)."""
    # expected CLs at a background-only fluctuation n: Φ(-(n + a)) / Φ(-n); band sigma s = -n
    return [float(stats.norm.isf(level * stats.norm.cdf(s)) + s) for s in BAND_SIGMAS]


def _cls(qtilde: float, sqrt_qa: float) -> float:
    """CLs from q̃μ and √q_μ,A (arXiv:1007.1727 eqs. 65-66, as pyhf's AsymptoticCalculator)."""
    if sqrt_qa <= 0:
        return 1.0
    sq = np.sqrt(qtilde)
    t = sq - sqrt_qa if sq <= sqrt_qa else (qtilde - sqrt_qa**2) / (2 * sqrt_qa)
    return float(stats.norm.sf(t + sqrt_qa) / stats.norm.sf(t))


class _CLs:
    """Observed CLs and √q_μ,A per POI value; every fit is done once and shared."""

    def __init__(self, data: _Likelihood):
        self.data = data
        best = data.global_fit()
        self.mu_hat = float(best.pars[data.poi])
        gen = data.profile(0.0).pars  # Asimov at mu = 0, nuisances profiled on the data
        self.asimov = _Likelihood(data.model, data.model.expected_data(gen))
        self.asimov_min = self.asimov.twice_nll(gen)
        self.asimov._global = _Minimum(gen, self.asimov_min)

    def sqrt_qmu_a(self, mu: float) -> float:
        return float(np.sqrt(max(self.asimov.profile(mu).twice_nll - self.asimov_min, 0.0)))

    def qtilde(self, mu: float) -> float:
        if mu <= self.mu_hat:
            return 0.0
        return max(self.data.profile(mu).twice_nll - self.data.global_fit().twice_nll, 0.0)

    def cls(self, mu: float) -> float:
        return _cls(self.qtilde(mu), self.sqrt_qmu_a(mu))

    def sigma_near(self, mu: float) -> float:
        """σ_μ = μ / √q_μ,A from the Asimov fit closest to ``mu``."""
        done = [m for m in self.asimov.profiles if m > 0]
        m = min(done, key=lambda v: abs(v - mu)) if done else mu
        a = self.sqrt_qmu_a(m)
        return m / a if a > 0 else float("inf")


def _solve(func, target: float, x0: float, x1: float, *, rtol: float, upper: float) -> float:
    """x ≥ 0 with func(x) = target for an increasing, nearly linear func.

    Secant steps, kept inside the bracket of points already evaluated (bisection
    when a step leaves it); returns inf beyond ``upper``.
    """
    seen: dict[float, float] = {}

    def g(x: float) -> float:
        if x not in seen:
            seen[x] = func(x) - target
        return seen[x]

    for _ in range(60):
        y0, y1 = g(x0), g(x1)
        below = [x for x, y in seen.items() if y < 0]
        above = [x for x, y in seen.items() if y >= 0]
        lo = max(below) if below else None
        hi = min(above) if above else None
        x_new = x1 - y1 * (x1 - x0) / (y1 - y0) if y1 != y0 else None
        if lo is not None and hi is not None:
            if x_new is None or not lo < x_new < hi:
                x_new = 0.5 * (lo + hi)
        elif hi is None:  # root above every point so far
            top = max(seen)
            x_new = 2.0 * top if x_new is None or x_new <= top else min(x_new, 4.0 * top)
            if x_new > upper:
                return float("inf")
        else:  # root below every point so far
            bottom = min(seen)
            x_new = 0.5 * bottom if x_new is None or not 0 < x_new < bottom else max(x_new, 0.1 * bottom)
            if bottom < 1e-9:
                return 0.0
        if abs(x_new - x1) <= rtol * abs(x_new) or (
                lo is not None and hi is not None and hi - lo <= rtol * abs(x_new)):
            return float(x_new)
        x0, x1 = x1, x_new
    log.warning("limit root finding did not converge; returning the last estimate")
    return float(x1)


def upper_limit(model: pyhf.pdf.Model, data: Sequence[float], *, level: float = CL_LEVEL,
                rtol: float = 1e-3, engine: Literal["shared", "pyhf"] = "shared") -> UpperLimit:
    """Observed and expected CLs upper limits on the POI with the q̃μ test statistic.

    ``engine="pyhf"`` calls ``pyhf.infer.intervals.upper_limits.upper_limit``
    (root finding with scipy's toms748; slower, for cross-checks).
    """
    with numpy_backend():
        if engine == "pyhf":
            obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(
                data, model, scan=None, level=level, test_stat="qtilde", rtol=rtol)
            band = tuple(float(e) for e in exp)
            return UpperLimit(float(obs), band[2], band, 1 - level)
        return _upper_limit(_Likelihood(model, data), level=level, rtol=rtol)


def _upper_limit(lik: _Likelihood, *, level: float = CL_LEVEL, rtol: float = 1e-3) -> UpperLimit:
    calc = _CLs(lik)
    sigma0 = _poi_error(lik)
    upper = 1e3 * max(sigma0, 1.0, calc.mu_hat)
    targets = _band_targets(level)
    # median first; each band then starts from the σ of the nearest Asimov fit
    order = [2, 1, 3, 0, 4]
    band: list[float] = [0.0] * 5
    for i in order:
        guess = targets[i] * (calc.sigma_near(targets[i] * sigma0) if calc.asimov.profiles else sigma0)
        guess = guess if np.isfinite(guess) and guess > 0 else targets[i] * sigma0
        band[i] = _solve(calc.sqrt_qmu_a, targets[i], guess, 1.02 * guess, rtol=rtol, upper=upper)
    # observed: solve Φ⁻¹(1 - CLs) = Φ⁻¹(1 - level), starting from the Gaussian estimate
    sigma = calc.sigma_near(band[2]) if np.isfinite(band[2]) else sigma0
    guess = _gaussian_limit(max(calc.mu_hat, 0.0), sigma, level)
    observed = _solve(lambda mu: float(stats.norm.isf(max(calc.cls(mu), 1e-300))),
                      float(stats.norm.isf(level)), guess, 1.02 * guess, rtol=rtol, upper=upper)
    return UpperLimit(observed, band[2], tuple(band), 1 - level)


def _gaussian_limit(mu_hat: float, sigma: float, level: float) -> float:
    """CLs limit for q̃μ = ((μ - μ̂)/σ)² and √q_μ,A = μ/σ (starting point of the root finding)."""
    if not np.isfinite(sigma) or sigma <= 0:
        return 1.0

    def h(mu: float) -> float:
        q = ((mu - mu_hat) / sigma) ** 2 if mu > mu_hat else 0.0
        return _cls(q, mu / sigma) - level

    hi = mu_hat + 10 * sigma
    return float(optimize.brentq(h, 1e-9 * sigma, hi)) if h(hi) < 0 else hi


def _ranking(lik: _Likelihood, best: _Minimum, result: FitResults, pois: Sequence[int], *,
             skip: Sequence[int] = ()) -> dict[str, list[Impact]]:
    """Impacts on each POI of every free parameter that is not a POI nor in ``skip``.

    As ``cabinetry.fit.ranking``: the parameter is fixed at θ̂ ± its pre-fit width
    (constrained parameters only) and at θ̂ ± its post-fit Hesse error, all
    others are refitted; the impact is each POI's shift from its best fit. The
    refits are shared between the POIs. Per POI, largest post-fit impact first.
    """
    cfg = lik.model.config
    widths = _prefit_widths(lik.model)
    hat = best.pars[list(pois)]
    rows: list[tuple[int, float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    nan = np.full(len(pois), np.nan)
    for idx in lik.free_indices():
        if idx in pois or idx in skip:
            continue
        theta, post = float(best.pars[idx]), float(result.uncertainty[idx])
        width = widths[idx]
        lo_b, hi_b = lik.bounds[idx]

        def shift(value: float, idx: int = idx, lo_b: float = lo_b, hi_b: float = hi_b) -> np.ndarray:
            value = float(np.clip(value, lo_b, hi_b))
            return lik.minimize(best.pars, {idx: value}).pars[list(pois)] - hat

        constrained = bool(np.isfinite(width))
        pre_up = shift(theta + width) if constrained else nan
        pre_down = shift(theta - width) if constrained else nan
        rows.append((idx, theta, post, pre_up, pre_down, shift(theta + post), shift(theta - post)))
    out: dict[str, list[Impact]] = {}
    for k, poi in enumerate(pois):
        impacts = []
        for idx, theta, post, pre_up, pre_down, post_up, post_down in rows:
            width = widths[idx]
            constrained = bool(np.isfinite(width))
            centre = float(lik.init[idx]) if constrained else 0.0
            scale = float(width) if constrained and width > 0 else 1.0
            impacts.append(Impact(cfg.par_names[idx], float((theta - centre) / scale), post / scale,
                                  float(pre_up[k]), float(pre_down[k]), float(post_up[k]),
                                  float(post_down[k])))
        impacts.sort(key=lambda i: -max(abs(i.postfit_up), abs(i.postfit_down)))
        out[cfg.par_names[poi]] = impacts
    return out


def _prefit_widths(model: pyhf.pdf.Model) -> np.ndarray:
    """Pre-fit width of each parameter; NaN for unconstrained ones (as cabinetry)."""
    out = np.full(model.config.npars, np.nan)
    for name in model.config.par_order:
        ps = model.config.param_set(name)
        if getattr(ps, "constrained", False):
            out[model.config.par_slice(name)] = ps.width()
    return out


def ranking(model: pyhf.pdf.Model, data: Sequence[float], *, pois: Sequence[str] | None = None,
            mc_stat: bool = False) -> dict[str, list[Impact]]:
    """Nuisance-parameter ranking: pre- and post-fit impacts on each of ``pois`` (default the
    model's POI), from refits shared between the POIs.

    ``mc_stat``: include the per-bin MC-statistics parameters (left out by
    default: many, each small; their sum is the interval without them, see
    :attr:`ewpolar.core.results.Interval.mc_stat_fraction`).
    """
    with numpy_backend():
        lik = _Likelihood(model, data)
        result = _fit(lik)
        index = [model.config.par_slice(n).start for n in (pois or [model.config.poi_name])]
        skip = [] if mc_stat else mc_stat_parameters(model)
        return _ranking(lik, lik.global_fit(), result, index, skip=skip)


def _expected_cls(sqrt_qa: float) -> tuple[float, ...]:
    """Expected CLs at background-only fluctuations of (-2..+2)σ for √q_μ,A (asymptotic)."""
    return tuple(float(stats.norm.cdf(s - sqrt_qa) / stats.norm.cdf(s)) for s in BAND_SIGMAS)


def cls_at(model: pyhf.pdf.Model, data: Sequence[float], mu: float | Sequence[float]) -> list[CLsPoint]:
    """Asymptotic CLs (q̃μ) at one or several POI values: observed and the expected band.

    The same numbers as ``pyhf.infer.hypotest(mu, data, model, test_stat="qtilde",
    return_expected_set=True)``, with every fit shared between the values.
    """
    mus = [float(mu)] if np.isscalar(mu) else [float(m) for m in mu]
    with numpy_backend():
        calc = _CLs(_Likelihood(model, data))
        return [CLsPoint(m, calc.cls(m), _expected_cls(calc.sqrt_qmu_a(m))) for m in mus]


def upper_limit_toys(model: pyhf.pdf.Model, data: Sequence[float], *, ntoys: int = 500,
                     level: float = CL_LEVEL, seed: int = 0, scan: Sequence[float] | None = None,
                     asymptotic: UpperLimit | None = None) -> UpperLimit:
    """CLs upper limit from pseudo-experiments (pyhf's ``ToyCalculator``, q̃μ).

    At each POI value of ``scan`` (default: 10 points up to twice the asymptotic
    +2σ expected limit) the q̃μ distributions under μ and under μ = 0 come from
    ``ntoys`` toys each (pyhf's ``ToyCalculator``, nuisance parameters at their
    profiled values); CLs = CLs+b / CLb for the data, and for the expected band
    the (2.3, 15.9, 50, 84.1, 97.7) % quantiles of CLs over the background-only
    toys. The limits are the linear interpolation of CLs(μ) at ``level``. A check
    of the asymptotic formulae at low counts; pyhf draws from numpy's global
    generator, seeded with ``seed``.
    """
    with numpy_backend():
        if scan is None:
            asym = asymptotic or upper_limit(model, data, level=level)
            top = 2.0 * max(asym.expected_band[-1], asym.observed)
            scan = np.linspace(top / 10.0, top, 10) if np.isfinite(top) and top > 0 \
                else np.linspace(0.2, 5.0, 10)
        scan = np.asarray(scan, dtype=float)
        np.random.seed(seed)
        observed, expected = [], []
        percentiles = 100 * stats.norm.cdf(BAND_SIGMAS)
        for mu in scan:
            calc = pyhf.infer.calculators.ToyCalculator(data, model, test_stat="qtilde", ntoys=ntoys,
                                                        track_progress=False)
            q_obs = calc.teststatistic(float(mu))
            sb, b = calc.distributions(float(mu))
            observed.append(float(sb.pvalue(q_obs)) / max(float(b.pvalue(q_obs)), 1e-300))
            cls_b = [float(sb.pvalue(q)) / max(float(b.pvalue(q)), 1e-300) for q in b.samples]
            expected.append(np.percentile(cls_b, percentiles))
    expected_arr = np.asarray(expected)
    band = tuple(_interpolate_limit(scan, expected_arr[:, k], level) for k in range(len(BAND_SIGMAS)))
    return UpperLimit(_interpolate_limit(scan, np.asarray(observed), level), band[2], band, 1 - level)


def _interpolate_limit(mus: np.ndarray, cls: np.ndarray, level: float) -> float:
    """First POI value where CLs falls below ``level`` (linear interpolation); inf if never."""
    below = np.flatnonzero(cls < level)
    if below.size == 0:
        return float("inf")
    i = int(below[0])
    if i == 0:
        return float(mus[0])
    x0, x1, y0, y1 = mus[i - 1], mus[i], cls[i - 1], cls[i]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def fit_significance_limit(model: pyhf.pdf.Model, data: Sequence[float], *,
                           level: float = CL_LEVEL, intervals: Sequence[str] | None = None,
                           mc_stat: bool = True, impacts: bool = True
                           ) -> tuple[FitResults, Significance, UpperLimit]:
    """Best fit, discovery significance and CLs upper limit of one model, sharing every fit.

    What :func:`fit`, :func:`significance` and :func:`upper_limit` give one by one
    (within the minimiser's tolerance), with each profile fit done once: the
    workhorse of a POI measurement. The POI (and ``intervals``) get profile
    intervals, with (``mc_stat``) their width without the MC-statistics
    parameters; ``impacts`` adds the nuisance-parameter ranking of the POI.
    """
    with numpy_backend():
        lik = _Likelihood(model, data)
        names = [model.config.poi_name, *[n for n in (intervals or []) if n != model.config.poi_name]]
        idx = [model.config.par_slice(n).start for n in names]
        best = _fit(lik, intervals=idx)
        if mc_stat:
            best = dataclasses.replace(best, intervals={
                n: _stat_only(lik, lik.global_fit(), iv, model.config.par_slice(n).start)
                for n, iv in best.intervals.items()})
        if impacts:
            best = dataclasses.replace(best, ranking=_ranking(lik, lik.global_fit(), best, [lik.poi],
                                                              skip=mc_stat_parameters(model)))
        sig = _significance(lik)
        lim = _upper_limit(lik, level=level)
    return best, sig, lim


# --------------------------------------------------------------------------- scans


def interval_from_scan(values: Sequence[float], twice_delta_nll: Sequence[float],
                       threshold: float) -> tuple[float | None, float | None]:
    """Where a -2 Δ ln L curve crosses ``threshold`` left and right of its minimum.

    Interpolates √(-2 Δ ln L) linearly between scan points (exact for a parabola);
    the outermost crossings are taken (the interval is the hull of the region
    below the threshold). A side that does not cross inside the scan range is None.

    >>> interval_from_scan([-2, -1, 0, 1, 2], [4, 1, 0, 1, 4], 0.25)
    (-0.5, 0.5)
    """
    x = np.asarray(values, dtype=float)
    r = np.sqrt(np.clip(np.asarray(twice_delta_nll, dtype=float), 0.0, None))
    level = np.sqrt(threshold)
    below = np.flatnonzero(r <= level)
    if below.size == 0:
        return None, None
    i_lo, i_hi = below[0], below[-1]

    def cross(i_in: int, i_out: int) -> float:
        return float(x[i_in] + (level - r[i_in]) * (x[i_out] - x[i_in]) / (r[i_out] - r[i_in]))

    lo = cross(i_lo, i_lo - 1) if i_lo > 0 else None
    hi = cross(i_hi, i_hi + 1) if i_hi < x.size - 1 else None
    return lo, hi


def scan_coupling(workspace: Mapping[str, Any], values: Sequence[float], *, parameter: str,
                  parameter_sq: str, c_true: float = 0.0, mc_stat: bool = False) -> CouplingScan:
    """Profile likelihood scan of a coupling entering as fixed normfactors c and c².

    At each value the two normfactors are fixed to c and c², all other
    parameters are profiled on the workspace's observations. The best fit is the
    lowest scan point refined by a parabola through it and two points a quarter
    grid step either side; the curve is relative to the best fit. ``mc_stat``:
    scan again with the MC-statistics parameters held at their values at the best
    fit (the curve and intervals without MC statistics).
    """
    values = np.asarray(values, dtype=float)
    with numpy_backend():
        model, data = _model_data(workspace)
        lik = _Likelihood(model, data)
        i_c, i_c2 = model.config.par_slice(parameter).start, model.config.par_slice(parameter_sq).start
        nll, best, best_nll, best_pars = _scan(lik, values, i_c, i_c2, c_true, parameter)
        stat = None
        if mc_stat and mc_stat_parameters(model):
            held = _Likelihood(model, data, hold={i: float(best_pars[i]) for i in mc_stat_parameters(model)})
            held.init = best_pars.copy()
            # a coarser grid (every other point) suffices for the intervals
            coarse = values[::2] if values.size % 2 else np.append(values[::2], values[-1])
            s_nll, _, s_best_nll, _ = _scan(held, coarse, i_c, i_c2, best, parameter)
            stat = np.interp(values, coarse, np.clip(s_nll - s_best_nll, 0.0, None))
    t = np.clip(nll - best_nll, 0.0, None)
    lo68, hi68 = interval_from_scan(values, t, DELTA_68)
    lo95, hi95 = interval_from_scan(values, t, DELTA_95)
    for label, side in (("68% low", lo68), ("68% high", hi68), ("95% low", lo95), ("95% high", hi95)):
        if side is None:
            log.warning("%s scan: the %s edge lies outside the scanned range", parameter, label)
    if stat is not None:
        return CouplingScan(parameter, values, t, best, (lo68, hi68), (lo95, hi95), c_true, stat,
                            interval_from_scan(values, stat, DELTA_68),
                            interval_from_scan(values, stat, DELTA_95))
    return CouplingScan(parameter, values, t, best, (lo68, hi68), (lo95, hi95), c_true)


def _scan(lik: _Likelihood, values: np.ndarray, i_c: int, i_c2: int, c_true: float,
          parameter: str) -> tuple[np.ndarray, float, float, np.ndarray]:
    """-2 ln L profiled at each c (normfactors c, c² fixed); the refined minimum and its parameters."""
    done: dict[float, _Minimum] = {}

    def profile(c: float) -> float:
        c = float(c)
        if c not in done:
            x0 = done[min(done, key=lambda v: abs(v - c))].pars if done else lik.init
            done[c] = lik.minimize(x0, {i_c: c, i_c2: c * c})
        return done[c].twice_nll

    # start near the truth and move outwards, each fit from its nearest neighbour
    for k in np.argsort(np.abs(values - c_true), kind="stable"):
        profile(values[k])
    nll = np.array([done[float(v)].twice_nll for v in values])
    i = int(np.argmin(nll))
    best, best_nll = float(values[i]), float(nll[i])
    if 0 < i < values.size - 1:
        # parabola through the lowest point and two close neighbours (a quarter grid step away)
        h = 0.25 * min(values[i] - values[i - 1], values[i + 1] - values[i])
        xs = np.array([best - h, best, best + h])
        a, b, _ = np.polyfit(xs - best, [profile(v) for v in xs], 2)
        if a > 0:
            c_min = best + float(np.clip(-b / (2 * a), -h, h))
            if profile(c_min) < best_nll:
                best, best_nll = c_min, profile(c_min)
    else:
        log.warning("%s scan: the minimum lies at the edge of the scanned range", parameter)
    return nll, best, best_nll, done[best].pars


