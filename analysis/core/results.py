"""The results of the fits as typed containers, and ``results.json``: one writer, one reader.

A fit folder holds ``results.json`` and the pyhf workspaces the fits ran on
(``workspace_{fit}.json``). :func:`write_results` writes both from the containers
below; :func:`read_results` reads ``results.json`` back into the same containers,
so the statistics that make the numbers, the summary lines, the plots and the
report all speak of one schema instead of string keys.

What ``results.json`` holds (the ``to_dict`` of each container; the full layout is in
docs/design.md):

ssWW (:class:`SsWWResults`)
    ``channel``, ``luminosity_fb``, ``pseudo_data``, ``notes``; per fit ``{fit}`` (LL,
    LX): ``mu_{fit}`` (the profile-likelihood 68 % CL interval, asymmetric, with the
    Hesse error as a secondary figure, see :class:`Interval`), ``significance_{fit}``,
    ``upper_limit_{fit}`` (on μ) and ``upper_limit_fb_{fit}`` (the limit times
    ``sm_xsec_fb``); ``sm_xsec_fb`` {fit: fb} with ``sm_xsec_definition`` {fit: what
    the number is}; ``fits`` {fit: poi, workspace file, twice_nll, converged, edm,
    parameters, intervals, correlation, ranking} and ``seconds``.
WH (:class:`WHResults`)
    ``channel``, ``luminosity_fb``, ``pseudo_data``, ``notes``, ``mu`` {category: p_T^W
    edges, Q_l cos δ⁺ half, mu (profile interval), A, B}, ``cp_scan`` (the coupling's
    -2 Δ ln L curve, best fit and 68 % / 95 % CL intervals, with and without the
    MC-statistics parameters), ``fits`` and ``seconds``.
Any pyhf workspace (:class:`WorkspaceResults`, ``ewpolar fit --workspace``)
    ``channel: "workspace"``, the workspace and patches, ``poi``, ``mu`` (profile
    interval), ``significance``, ``upper_limit`` (with its band), ``cls`` at the
    requested POI values, ``fits`` and ``seconds``.

Values derived from others (``mu_{fit}``, ``upper_limit_fb_{fit}``) are written
for readers of the file and recomputed when it is read. What the file does not
hold (the workspaces themselves) is left out of the comparison of two
containers: a container read back equals the one written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ewpolar.core.errors import InputError
from ewpolar.core.outputs import atomic_write_json

__all__ = [
    "BAND_SIGMAS",
    "OPEN_PTW_GEV",
    "RESULTS_FILE",
    "WH_CATEGORIES_WORKSPACE",
    "WH_CP_WORKSPACE",
    "CLsPoint",
    "CouplingScan",
    "FitResults",
    "Impact",
    "Interval",
    "PolarizationFit",
    "Results",
    "Significance",
    "SsWWResults",
    "UpperLimit",
    "WHCategory",
    "WHResults",
    "WorkspaceFit",
    "WorkspaceResults",
    "read_results",
    "workspace_file",
    "write_results",
]

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
#: upper p_T^W edge (GeV) from which an STXS bin counts as open-ended (shown as ``≥ low``)
OPEN_PTW_GEV = 1000.0
#: the expected-limit band, in σ of the background-only fluctuation, in the order stored
BAND_SIGMAS = (-2, -1, 0, 1, 2)


def workspace_file(fit_name: str) -> str:
    """File name of the workspace of fit ``fit_name`` beside results.json."""
    return f"workspace_{fit_name}.json"


WH_CATEGORIES_WORKSPACE = workspace_file("wh_categories")
WH_CP_WORKSPACE = workspace_file("wh_cp")


def _band_key(sigma: int) -> str:
    return f"{sigma:+d}" if sigma else "0"


def _same(a: Any, b: Any) -> bool:
    """Equality of stored values: arrays by value, NaN equal to NaN, containers element-wise."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


class _Record:
    """Equality on the fields results.json holds (``compare=False`` fields are left out)."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name))
                   for f in dataclasses.fields(self) if f.compare)

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- one fit


def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, eq=False)
class Interval(_Record):
    """Profile-likelihood (MINOS-like) interval of one parameter at one confidence level.

    ``low`` / ``high`` are where -2 Δ ln L, profiled over every other parameter,
    crosses the threshold of ``cl`` (1 for 68 %). A side whose curve stays below
    the threshold up to the parameter's bound is *open*: ``low_open`` /
    ``high_open`` is True, the edge is the bound and ``low_at_bound`` /
    ``high_at_bound`` holds -2 Δ ln L there. ``hesse`` is the symmetric error from
    the curvature at the minimum (unbounded parametrisation), a secondary figure.
    ``stat_low`` / ``stat_high``: the same interval with the MC-statistics
    (staterror) parameters fixed at their best fit, None when not computed.
    """

    parameter: str
    value: float
    low: float
    high: float
    hesse: float
    cl: float = 0.68
    low_open: bool = False
    high_open: bool = False
    low_at_bound: float | None = None
    high_at_bound: float | None = None
    stat_low: float | None = None
    stat_high: float | None = None

    @property
    def error_low(self) -> float:
        """Distance to the lower edge (positive)."""
        return self.value - self.low

    @property
    def error_high(self) -> float:
        """Distance to the upper edge (positive)."""
        return self.high - self.value

    @property
    def mc_stat_fraction(self) -> float | None:
        """Share of the interval's squared width due to MC statistics: 1 - (w_without / w_with)²."""
        if self.stat_low is None or self.stat_high is None or self.high <= self.low:
            return None
        ratio = (self.stat_high - self.stat_low) / (self.high - self.low)
        return float(max(0.0, 1.0 - ratio**2))

    def describe(self, fmt: str = ".2f") -> str:
        """``1.00 +3.12 -1.00 (68% CL profile; lower edge open at the bound 0)``-style text."""
        def num(x: float) -> str:  # a fit at a bound lands within 1e-9 of it: print the bound
            return f"{0.0 if abs(x) < 1e-9 else x:{fmt}}"

        text = f"{num(self.value)} +{num(self.error_high)} -{num(self.error_low)}"
        open_sides = [side for side, flag, edge in (("lower", self.low_open, self.low),
                                                     ("upper", self.high_open, self.high)) if flag]
        if open_sides:
            edges = ", ".join(f"{side} edge open at the bound "
                              f"{self.low if side == 'lower' else self.high:g}" for side in open_sides)
            return f"{text} ({edges})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "error_low": self.error_low, "error_high": self.error_high,
                "interval": [self.low, self.high], "cl": self.cl,
                "method": "profile likelihood (-2 delta ln L crossing)",
                "low_open": self.low_open, "high_open": self.high_open,
                "low_at_bound": self.low_at_bound, "high_at_bound": self.high_at_bound,
                "hesse": self.hesse,
                "interval_without_mc_stat": (None if self.stat_low is None
                                             else [self.stat_low, self.stat_high]),
                "mc_stat_fraction": self.mc_stat_fraction}

    @classmethod
    def from_dict(cls, parameter: str, data: Mapping[str, Any]) -> Interval:
        low, high = data["interval"]
        stat = data.get("interval_without_mc_stat") or (None, None)
        return cls(parameter, data["value"], low, high, data["hesse"], data["cl"],
                   data["low_open"], data["high_open"], _opt(data.get("low_at_bound")),
                   _opt(data.get("high_at_bound")), _opt(stat[0]), _opt(stat[1]))


@dataclass(frozen=True, eq=False)
class Impact(_Record):
    """Impact of one nuisance parameter on a POI (as cabinetry's ranking).

    The POI's shift when the parameter is fixed at its best fit ± its pre-fit
    width (``prefit_up`` / ``prefit_down``; NaN for an unconstrained parameter)
    and ± its post-fit (Hesse) uncertainty (``postfit_up`` / ``postfit_down``);
    ``pull`` is its best fit and ``constraint`` its post-fit uncertainty, both in
    units of the pre-fit width when the parameter is constrained.
    """

    parameter: str
    pull: float
    constraint: float
    prefit_up: float
    prefit_down: float
    postfit_up: float
    postfit_down: float

    def to_dict(self) -> dict[str, Any]:
        return {"pull": self.pull, "constraint": self.constraint,
                "prefit_up": self.prefit_up, "prefit_down": self.prefit_down,
                "postfit_up": self.postfit_up, "postfit_down": self.postfit_down}

    @classmethod
    def from_dict(cls, parameter: str, data: Mapping[str, Any]) -> Impact:
        return cls(parameter, data["pull"], data["constraint"], data["prefit_up"],
                   data["prefit_down"], data["postfit_up"], data["postfit_down"])


@dataclass(frozen=True, eq=False)
class FitResults(_Record):
    """A maximum-likelihood fit: best-fit values and Hesse uncertainties of all parameters.

    ``uncertainty`` is the Hesse error from the curvature at the minimum;
    ``intervals`` holds the profile-likelihood intervals of the POIs (the quoted
    uncertainties); ``corr_mat`` the correlation matrix (in results.json as
    ``correlation``); ``ranking`` the impacts of the nuisance parameters per POI,
    largest first; ``edm`` MIGRAD's estimated distance to the minimum.
    """

    labels: list[str]
    bestfit: np.ndarray
    uncertainty: np.ndarray
    corr_mat: np.ndarray | None = field(repr=False)
    twice_nll: float
    converged: bool = True
    intervals: dict[str, Interval] = field(default_factory=dict)
    ranking: dict[str, list[Impact]] = field(default_factory=dict)
    edm: float | None = None

    def value(self, name: str) -> float:
        return float(self.bestfit[self.labels.index(name)])

    def error(self, name: str) -> float:
        """The Hesse error of a parameter."""
        return float(self.uncertainty[self.labels.index(name)])

    def parameter(self, name: str) -> dict[str, float]:
        return {"value": self.value(name), "uncertainty": self.error(name)}

    def interval(self, name: str) -> Interval:
        """The profile interval of a POI; a symmetric Hesse one when none was computed."""
        if name in self.intervals:
            return self.intervals[name]
        v, e = self.value(name), self.error(name)
        return Interval(name, v, v - e, v + e, e)

    @property
    def parameters(self) -> dict[str, dict[str, float]]:
        """``{name: {"value": θ̂, "uncertainty": σ̂ (Hesse)}}`` of every parameter, in fit order."""
        return {n: self.parameter(n) for n in self.labels}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"twice_nll": self.twice_nll, "converged": self.converged,
                               "edm": self.edm, "parameters": self.parameters,
                               "intervals": {n: i.to_dict() for n, i in self.intervals.items()}}
        if self.corr_mat is not None:
            out["correlation"] = {"labels": list(self.labels),
                                  "matrix": np.asarray(self.corr_mat, dtype=float).tolist()}
        out["ranking"] = {poi: {i.parameter: i.to_dict() for i in impacts}
                          for poi, impacts in self.ranking.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitResults:
        params = data["parameters"]
        labels = list(params)
        corr = data.get("correlation")
        return cls(labels, np.array([params[n]["value"] for n in labels], dtype=float),
                   np.array([params[n]["uncertainty"] for n in labels], dtype=float),
                   None if corr is None else np.asarray(corr["matrix"], dtype=float),
                   data["twice_nll"], data["converged"],
                   {n: Interval.from_dict(n, i) for n, i in data.get("intervals", {}).items()},
                   {poi: [Impact.from_dict(n, i) for n, i in impacts.items()]
                    for poi, impacts in data.get("ranking", {}).items()},
                   data.get("edm"))


@dataclass(frozen=True, eq=False)
class Significance(_Record):
    """Discovery significance (σ) from q0: observed on the data, expected on the Asimov set."""

    observed: float
    expected: float
    p_observed: float
    p_expected: float

    def to_dict(self) -> dict[str, float]:
        return {"observed": self.observed, "expected": self.expected,
                "p_observed": self.p_observed, "p_expected": self.p_expected}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Significance:
        return cls(data["observed"], data["expected"], data["p_observed"], data["p_expected"])


@dataclass(frozen=True, eq=False)
class UpperLimit(_Record):
    """CLs upper limit: observed, median expected and the (-2, -1, 0, +1, +2)σ band.

    ``cl`` is the confidence level (0.95 for the 95 % CL limit; CLs < 1 - cl is excluded).
    """

    observed: float
    expected: float
    expected_band: tuple[float, ...]
    cl: float = 0.95

    @property
    def level(self) -> float:
        """The CLs value that defines the limit, 1 - cl."""
        return 1 - self.cl

    def scaled(self, factor: float) -> UpperLimit:
        """The limit times ``factor`` (signal strength -> cross section)."""
        return UpperLimit(self.observed * factor, self.expected * factor,
                          tuple(b * factor for b in self.expected_band), self.cl)

    def to_dict(self) -> dict[str, Any]:
        return {"observed": self.observed, "expected": self.expected,
                "expected_band": dict(zip(map(_band_key, BAND_SIGMAS), self.expected_band,
                                          strict=True)),
                "cl": self.cl}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpperLimit:
        band = data["expected_band"]
        return cls(data["observed"], data["expected"], tuple(band[_band_key(s)] for s in BAND_SIGMAS),
                   data["cl"])


@dataclass(frozen=True, eq=False)
class CLsPoint(_Record):
    """CLs at one POI value: observed and the expected (-2, -1, 0, +1, +2)σ band."""

    mu: float
    observed: float
    expected_band: tuple[float, ...]
    method: str = "asymptotic"

    @property
    def expected(self) -> float:
        return self.expected_band[2]

    def to_dict(self) -> dict[str, Any]:
        return {"mu": self.mu, "observed": self.observed, "expected": self.expected,
                "expected_band": dict(zip(map(_band_key, BAND_SIGMAS), self.expected_band,
                                          strict=True)),
                "method": self.method}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CLsPoint:
        band = data["expected_band"]
        return cls(data["mu"], data["observed"], tuple(band[_band_key(s)] for s in BAND_SIGMAS),
                   data.get("method", "asymptotic"))


@dataclass(frozen=True)
class WorkspaceFit:
    """A fit recorded in results.json: its name, its workspace file and its best fit (None: a scan)."""

    name: str
    workspace: str
    fit: FitResults | None


# --------------------------------------------------------------------------- ssWW


@dataclass(frozen=True, eq=False)
class PolarizationFit(_Record):
    """One ssWW fit (LL or LX): best fit, significance, limit on μ and the SM cross section used.

    ``sm_xsec_fb`` converts the limit on μ into fb; ``xsec_definition`` says what it
    is (the generator cross section of the POI samples unless the config gives a
    fiducial one). ``workspace`` is the pyhf spec the fit ran on (written beside
    results.json; empty for a fit read back). ``limit_toys``: the limit from
    pseudo-experiments, when computed.
    """

    name: str
    poi: str
    fit: FitResults
    significance: Significance
    limit: UpperLimit
    sm_xsec_fb: float
    xsec_definition: str = "generator cross section of the POI samples"
    workspace: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    limit_toys: UpperLimit | None = None

    @property
    def interval(self) -> Interval:
        """The POI's profile-likelihood 68 % CL interval."""
        return self.fit.interval(self.poi)

    @property
    def mu(self) -> dict[str, Any]:
        return self.interval.to_dict()

    @property
    def limit_fb(self) -> UpperLimit:
        return self.limit.scaled(self.sm_xsec_fb)

    @property
    def workspace_file(self) -> str:
        return workspace_file(self.name)


@dataclass(frozen=True, eq=False)
class SsWWResults(_Record):
    """Both ssWW polarization fits, how the pseudo-data were made, and notes for the reader.

    ``notes``: what a reader must know to read the numbers (Asimov pseudo-data,
    merged bins, MC statistics dominating an interval, a fit that did not converge).
    """

    fits: dict[str, PolarizationFit]
    pseudo_data: dict[str, Any]
    luminosity_fb: float
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def workspace_fits(self) -> list[WorkspaceFit]:
        return [WorkspaceFit(name, f.workspace_file, f.fit) for name, f in self.fits.items()]

    def workspace_specs(self) -> dict[str, dict[str, Any]]:
        """The workspaces held, by file name (none for results read back)."""
        return {f.workspace_file: f.workspace for f in self.fits.values() if f.workspace}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": "ssww", "luminosity_fb": self.luminosity_fb,
                               "pseudo_data": self.pseudo_data, "notes": list(self.notes)}
        for name, f in self.fits.items():
            out[f"mu_{name}"] = f.mu
            out[f"significance_{name}"] = f.significance.to_dict()
            out[f"upper_limit_{name}"] = f.limit.to_dict()
            out[f"upper_limit_fb_{name}"] = f.limit_fb.to_dict()
            if f.limit_toys is not None:
                out[f"upper_limit_toys_{name}"] = f.limit_toys.to_dict()
        out["sm_xsec_fb"] = {name: f.sm_xsec_fb for name, f in self.fits.items()}
        out["sm_xsec_definition"] = {name: f.xsec_definition for name, f in self.fits.items()}
        out["fits"] = {name: {"poi": f.poi, "workspace": f.workspace_file, **f.fit.to_dict()}
                       for name, f in self.fits.items()}
        out["seconds"] = self.seconds
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SsWWResults:
        fits = {}
        for name, entry in data["fits"].items():
            toys = data.get(f"upper_limit_toys_{name}")
            fits[name] = PolarizationFit(
                name, entry["poi"], FitResults.from_dict(entry),
                Significance.from_dict(data[f"significance_{name}"]),
                UpperLimit.from_dict(data[f"upper_limit_{name}"]), data["sm_xsec_fb"][name],
                data["sm_xsec_definition"][name],
                limit_toys=None if toys is None else UpperLimit.from_dict(toys))
        return cls(fits, dict(data["pseudo_data"]), data["luminosity_fb"], data.get("seconds", 0.0),
                   list(data.get("notes", [])))


# --------------------------------------------------------------------------- WH


@dataclass(frozen=True, eq=False)
class CouplingScan(_Record):
    """-2 Δ ln L as a function of a coupling, with its minimum and 68 % / 95 % CL intervals.

    An interval side is None when the curve does not cross the threshold inside
    the scanned range. ``stat_twice_delta_nll`` and ``stat_interval_68/95``: the
    same scan with the MC-statistics parameters fixed (None when not computed).
    """

    parameter: str
    values: np.ndarray
    twice_delta_nll: np.ndarray
    best_fit: float
    interval_68: tuple[float | None, float | None]
    interval_95: tuple[float | None, float | None]
    c_true: float = 0.0
    stat_twice_delta_nll: np.ndarray | None = None
    stat_interval_68: tuple[float | None, float | None] | None = None
    stat_interval_95: tuple[float | None, float | None] | None = None

    @property
    def mc_stat_fraction(self) -> float | None:
        """Share of the 95 % CL interval's squared width due to MC statistics (closed intervals)."""
        iv, st = self.interval_95, self.stat_interval_95
        if st is None or None in iv or None in st or iv[1] <= iv[0]:
            return None
        return float(max(0.0, 1.0 - ((st[1] - st[0]) / (iv[1] - iv[0])) ** 2))

    def to_dict(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "c_true": self.c_true, "best_fit": self.best_fit,
                "interval_68": list(self.interval_68), "interval_95": list(self.interval_95),
                "values": self.values.tolist(), "twice_delta_nll": self.twice_delta_nll.tolist(),
                "without_mc_stat": None if self.stat_twice_delta_nll is None else {
                    "interval_68": list(self.stat_interval_68 or (None, None)),
                    "interval_95": list(self.stat_interval_95 or (None, None)),
                    "twice_delta_nll": self.stat_twice_delta_nll.tolist()},
                "mc_stat_fraction": self.mc_stat_fraction}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CouplingScan:
        lo68, hi68 = data["interval_68"]
        lo95, hi95 = data["interval_95"]
        stat = data.get("without_mc_stat")
        return cls(data["parameter"], np.asarray(data["values"], dtype=float),
                   np.asarray(data["twice_delta_nll"], dtype=float), data["best_fit"],
                   (lo68, hi68), (lo95, hi95), data["c_true"],
                   None if stat is None else np.asarray(stat["twice_delta_nll"], dtype=float),
                   None if stat is None else tuple(stat["interval_68"]),
                   None if stat is None else tuple(stat["interval_95"]))


_HALF_LABEL = {"neg": "< 0", "pos": "> 0"}


@dataclass(frozen=True, eq=False)
class WHCategory(_Record):
    """One STXS × Q_l cos δ⁺ category: its fitted μ (profile interval) and μ(c) = 1 + A c + B c²."""

    name: str
    ptw_low: float
    ptw_high: float
    half: Literal["neg", "pos"]
    interval: Interval
    a: float
    b: float

    @property
    def mu(self) -> float:
        return self.interval.value

    @property
    def q_cos_delta_plus(self) -> str:
        """The Q_l cos δ⁺ half as a condition: ``< 0`` or ``> 0``."""
        return _HALF_LABEL[self.half]

    @property
    def ptw_label(self) -> str:
        """The p_T^W range as text; the last, open-ended STXS bin as ``≥ low``."""
        return f"≥ {self.ptw_low:g}" if self.ptw_high >= OPEN_PTW_GEV else f"{self.ptw_low:g}–{self.ptw_high:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"ptw_low_gev": self.ptw_low, "ptw_high_gev": self.ptw_high,
                "ptw_label": self.ptw_label, "q_cos_delta_plus": self.q_cos_delta_plus,
                "mu": self.interval.to_dict(), "A": self.a, "B": self.b}

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> WHCategory:
        half = next(h for h, label in _HALF_LABEL.items() if label == data["q_cos_delta_plus"])
        return cls(name, data["ptw_low_gev"], data["ptw_high_gev"], half,  # type: ignore[arg-type]
                   Interval.from_dict(f"mu_{name}", data["mu"]), data["A"], data["B"])


@dataclass(frozen=True, eq=False)
class WHResults(_Record):
    """WH: signal strengths per category and the CP-coupling scan.

    ``workspaces`` holds the pyhf specs of the category fit (``categories``) and of
    the scan (``cp``); empty for results read back. ``notes`` as in :class:`SsWWResults`.
    """

    categories: dict[str, WHCategory]
    fit: FitResults
    scan: CouplingScan
    pseudo_data: dict[str, Any]
    luminosity_fb: float
    workspaces: dict[str, dict[str, Any]] = field(repr=False, compare=False, default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def workspace_fits(self) -> list[WorkspaceFit]:
        return [WorkspaceFit("categories", WH_CATEGORIES_WORKSPACE, self.fit),
                WorkspaceFit("cp_scan", WH_CP_WORKSPACE, None)]

    def workspace_specs(self) -> dict[str, dict[str, Any]]:
        """The workspaces held, by file name (none for results read back)."""
        files = {"categories": WH_CATEGORIES_WORKSPACE, "cp": WH_CP_WORKSPACE}
        return {files[k]: ws for k, ws in self.workspaces.items() if ws}

    def to_dict(self) -> dict[str, Any]:
        return {"channel": "wh", "luminosity_fb": self.luminosity_fb,
                "pseudo_data": self.pseudo_data, "notes": list(self.notes),
                "mu": {n: c.to_dict() for n, c in self.categories.items()},
                "cp_scan": self.scan.to_dict(),
                "fits": {"categories": {"workspace": WH_CATEGORIES_WORKSPACE, **self.fit.to_dict()},
                         "cp_scan": {"workspace": WH_CP_WORKSPACE}},
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WHResults:
        return cls({n: WHCategory.from_dict(n, c) for n, c in data["mu"].items()},
                   FitResults.from_dict(data["fits"]["categories"]),
                   CouplingScan.from_dict(data["cp_scan"]), dict(data["pseudo_data"]),
                   data["luminosity_fb"], seconds=data.get("seconds", 0.0),
                   notes=list(data.get("notes", [])))


# --------------------------------------------------------------------------- any workspace


@dataclass(frozen=True, eq=False)
class WorkspaceResults(_Record):
    """The statistics of any pyhf workspace (``ewpolar fit --workspace``).

    ``source`` is the workspace file, ``patches`` the patches applied (in order),
    ``cls`` the CLs at the requested POI values; ``workspace`` the patched spec
    (written as ``workspace.json``; empty for results read back).
    """

    source: str
    patches: list[str]
    poi: str
    fit: FitResults
    significance: Significance
    limit: UpperLimit
    cls: list[CLsPoint]
    pseudo_data: dict[str, Any] = field(default_factory=lambda: {"kind": "workspace observations"})
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workspace: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    limit_toys: UpperLimit | None = None

    @property
    def interval(self) -> Interval:
        return self.fit.interval(self.poi)

    def workspace_fits(self) -> list[WorkspaceFit]:
        return [WorkspaceFit("workspace", "workspace.json", self.fit)]

    def workspace_specs(self) -> dict[str, dict[str, Any]]:
        return {"workspace.json": self.workspace} if self.workspace else {}

    def to_dict(self) -> dict[str, Any]:
        out = {"channel": "workspace", "workspace": self.source, "patches": list(self.patches),
               "pseudo_data": self.pseudo_data, "notes": list(self.notes), "poi": self.poi,
               "mu": self.interval.to_dict(), "significance": self.significance.to_dict(),
               "upper_limit": self.limit.to_dict(), "cls": [c.to_dict() for c in self.cls],
               "fits": {"workspace": {"poi": self.poi, "workspace": "workspace.json",
                                      **self.fit.to_dict()}},
               "seconds": self.seconds}
        if self.limit_toys is not None:
            out["upper_limit_toys"] = self.limit_toys.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkspaceResults:
        toys = data.get("upper_limit_toys")
        return cls(data["workspace"], list(data["patches"]), data["poi"],
                   FitResults.from_dict(data["fits"]["workspace"]),
                   Significance.from_dict(data["significance"]),
                   UpperLimit.from_dict(data["upper_limit"]),
                   [CLsPoint.from_dict(c) for c in data["cls"]], dict(data["pseudo_data"]),
                   list(data.get("notes", [])), data.get("seconds", 0.0),
                   limit_toys=None if toys is None else UpperLimit.from_dict(toys))


Results = SsWWResults | WHResults | WorkspaceResults
_BY_CHANNEL: dict[str, type[SsWWResults] | type[WHResults] | type[WorkspaceResults]] = {
    "ssww": SsWWResults, "wh": WHResults, "workspace": WorkspaceResults}


# --------------------------------------------------------------------------- the file


def write_results(results: Results, out_dir: str | Path) -> Path:
    """Write the workspaces the results hold and ``results.json`` into ``out_dir``.

    Each file is written atomically; results.json comes last, so a folder with a
    results.json has its workspaces. Returns the path of results.json.
    """
    out_dir = Path(out_dir)
    for name, spec in results.workspace_specs().items():
        atomic_write_json(out_dir / name, spec)
    path = atomic_write_json(out_dir / RESULTS_FILE, results.to_dict())
    log.info("wrote %s", path)
    return path


def read_results(path: str | Path) -> Results:
    """Read ``results.json`` (or the fit folder holding it) into :class:`SsWWResults` / :class:`WHResults`.

    Raises:
        InputError: one line naming the file when it is missing, not JSON, or not a
            results file of ``ewpolar fit``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    channel = data.get("channel") if isinstance(data, dict) else None
    if channel not in _BY_CHANNEL:
        raise InputError(f"{path}: channel: expected 'ssww', 'wh' or 'workspace', got {channel!r}")
    try:
        return _BY_CHANNEL[channel].from_dict(data)
    except KeyError as exc:
        raise InputError(f"{path}: not a results file of 'ewpolar fit' (no key {exc})") from None
    except (TypeError, ValueError, AttributeError, StopIteration) as exc:
        raise InputError(f"{path}: not a results file of 'ewpolar fit' ({exc})") from None
