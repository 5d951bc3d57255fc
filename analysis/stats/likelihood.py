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

Results come back in the containers of :mod:`ewpolar.core.results`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyhf
from ewpolar.core.results import BAND_SIGMAS, CouplingScan, FitResults, Significance, UpperLimit
from ewpolar.stats.workspace import model_and_data
from iminuit import Minuit
from scipy import optimize, stats

__all__ = [
    "CL_LEVEL",
    "DELTA_68",
    "DELTA_95",
    "fit",
    "fit_significance_limit",
    "interval_from_scan",
    "numpy_backend",
    "scan_coupling",
    "significance",
    "upper_limit",
]

log = logging.getLogger(__name__)

#: CLs value of the 95 % CL upper limits
CL_LEVEL = 0.05
# -2 Δ ln L thresholds of the 68 % and 95 % CL intervals (one parameter)
DELTA_68 = 1.0
DELTA_95 = 3.84


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

    def __init__(self, model: pyhf.pdf.Model, data: Sequence[float]):
        self.model = model
        self.data = np.asarray(data, dtype=float)
        self.init = np.asarray(model.config.suggested_init(), dtype=float)
        self.bounds = np.asarray(model.config.suggested_bounds(), dtype=float)
        self.fixed = np.asarray(model.config.suggested_fixed(), dtype=bool)
        self.poi = model.config.poi_index
        self.profiles: dict[float, _Minimum] = {}
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


def _fit(lik: _Likelihood, fixed: Mapping[int, float] | None = None) -> FitResults:
    """Fit with Hesse uncertainties; an unconstrained fit becomes ``lik``'s global minimum."""
    fixed = dict(fixed or {})
    best = lik.minimize(lik.init, fixed, hesse=True)
    if not fixed:
        lik._global = best
    labels = list(lik.model.config.par_names)
    unc = np.zeros(len(labels))
    corr = np.eye(len(labels))
    free = np.flatnonzero(~lik.fixed & ~np.isin(np.arange(len(labels)), list(fixed)))
    if best.minuit is not None:
        unc[free] = np.asarray(best.minuit.errors)
        if best.minuit.covariance is not None:
            corr[np.ix_(free, free)] = np.asarray(best.minuit.covariance.correlation())
    return FitResults(labels, best.pars, unc, corr, best.twice_nll, best.valid)


def fit(model: pyhf.pdf.Model, data: Sequence[float], *,
        fixed: Mapping[str, float] | None = None) -> FitResults:
    """Maximum-likelihood fit of all free parameters with Hesse uncertainties.

    Args:
        model: the pyhf model.
        data: main data followed by the auxiliary data (``workspace.data(model)``).
        fixed: scalar parameters to hold at a value, e.g. ``{"mu_LL": 0.0}``.
    """
    with numpy_backend():
        lik = _Likelihood(model, data)
        return _fit(lik, {model.config.par_slice(n).start: v for n, v in (fixed or {}).items()})


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


def fit_significance_limit(model: pyhf.pdf.Model, data: Sequence[float], *,
                           level: float = CL_LEVEL) -> tuple[FitResults, Significance, UpperLimit]:
    """Best fit, discovery significance and CLs upper limit of one model, sharing every fit.

    What :func:`fit`, :func:`significance` and :func:`upper_limit` give one by one
    (within the minimiser's tolerance), with each profile fit done once: the
    workhorse of a POI measurement.
    """
    with numpy_backend():
        lik = _Likelihood(model, data)
        best = _fit(lik)
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
                  parameter_sq: str, c_true: float = 0.0) -> CouplingScan:
    """Profile likelihood scan of a coupling entering as fixed normfactors c and c².

    At each value the two normfactors are fixed to c and c², all other
    parameters are profiled on the workspace's observations. The best fit is the
    lowest scan point refined by a parabola through it and two points a quarter
    grid step either side; the curve is relative to the best fit.
    """
    values = np.asarray(values, dtype=float)
    with numpy_backend():
        model, data = _model_data(workspace)
        lik = _Likelihood(model, data)
        i_c, i_c2 = model.config.par_slice(parameter).start, model.config.par_slice(parameter_sq).start
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
    t = np.clip(nll - best_nll, 0.0, None)
    lo68, hi68 = interval_from_scan(values, t, DELTA_68)
    lo95, hi95 = interval_from_scan(values, t, DELTA_95)
    for label, side in (("68% low", lo68), ("68% high", hi68), ("95% low", lo95), ("95% high", hi95)):
        if side is None:
            log.warning("%s scan: the %s edge lies outside the scanned range", parameter, label)
    return CouplingScan(parameter, values, t, best, (lo68, hi68), (lo95, hi95), c_true)


