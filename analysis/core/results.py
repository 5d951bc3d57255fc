"""The results of the fits as typed containers, and ``results.json``: one writer, one reader.

A fit folder holds ``results.json`` and the pyhf workspaces the fits ran on
(``workspace_{fit}.json``). :func:`write_results` writes both from the containers
below; :func:`read_results` reads ``results.json`` back into the same containers,
so the statistics that make the numbers, the summary lines, the plots and the
report all speak of one schema instead of string keys.

What ``results.json`` holds (the ``to_dict`` of each container):

ssWW (:class:`SsWWResults`)
    ``channel``, ``luminosity_fb``, ``pseudo_data``; per fit ``{fit}`` (LL, LX):
    ``mu_{fit}`` (value, uncertainty), ``significance_{fit}`` (observed, expected,
    p_observed, p_expected, in σ), ``upper_limit_{fit}`` (on μ) and
    ``upper_limit_fb_{fit}`` (the same limit times the SM fiducial cross section):
    observed, expected, expected_band {-2, -1, 0, +1, +2}, cl; then
    ``sm_fiducial_xsec_fb`` {fit: fb}, ``fits`` {fit: poi, workspace file,
    twice_nll, converged, parameters {name: value, uncertainty}} and ``seconds``.
WH (:class:`WHResults`)
    ``channel``, ``luminosity_fb``, ``pseudo_data``, ``mu`` {category: p_T^W edges,
    Q_l cos δ⁺ half, mu, A, B}, ``cp_scan`` (the coupling's -2 Δ ln L curve, best
    fit and 68 % / 95 % CL intervals), ``fits`` (categories: workspace file and
    best fit; cp_scan: workspace file) and ``seconds``.

Values derived from others (``mu_{fit}``, ``upper_limit_fb_{fit}``) are written
for readers of the file and recomputed when it is read. What the file does not
hold (correlation matrices, the workspaces themselves) is left out of the
comparison of two containers: a container read back equals the one written.
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
    "RESULTS_FILE",
    "WH_CATEGORIES_WORKSPACE",
    "WH_CP_WORKSPACE",
    "CouplingScan",
    "FitResults",
    "PolarizationFit",
    "Results",
    "Significance",
    "SsWWResults",
    "UpperLimit",
    "WHCategory",
    "WHResults",
    "WorkspaceFit",
    "read_results",
    "workspace_file",
    "write_results",
]

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
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


@dataclass(frozen=True, eq=False)
class FitResults(_Record):
    """A maximum-likelihood fit: best-fit values and Hesse uncertainties of all parameters.

    ``corr_mat`` (the correlation matrix) is not stored in results.json; it is
    None for a fit read back.
    """

    labels: list[str]
    bestfit: np.ndarray
    uncertainty: np.ndarray
    corr_mat: np.ndarray | None = field(repr=False, compare=False)
    twice_nll: float
    converged: bool = True

    def value(self, name: str) -> float:
        return float(self.bestfit[self.labels.index(name)])

    def error(self, name: str) -> float:
        return float(self.uncertainty[self.labels.index(name)])

    def parameter(self, name: str) -> dict[str, float]:
        return {"value": self.value(name), "uncertainty": self.error(name)}

    @property
    def parameters(self) -> dict[str, dict[str, float]]:
        """``{name: {"value": θ̂, "uncertainty": σ̂}}`` of every parameter, in fit order."""
        return {n: self.parameter(n) for n in self.labels}

    def to_dict(self) -> dict[str, Any]:
        return {"twice_nll": self.twice_nll, "converged": self.converged,
                "parameters": self.parameters}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitResults:
        params = data["parameters"]
        labels = list(params)
        return cls(labels, np.array([params[n]["value"] for n in labels], dtype=float),
                   np.array([params[n]["uncertainty"] for n in labels], dtype=float),
                   None, data["twice_nll"], data["converged"])


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

    ``workspace`` is the pyhf spec the fit ran on (written beside results.json; empty
    for a fit read back).
    """

    name: str
    poi: str
    fit: FitResults
    significance: Significance
    limit: UpperLimit
    sm_fiducial_xsec_fb: float
    workspace: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def mu(self) -> dict[str, float]:
        return self.fit.parameter(self.poi)

    @property
    def limit_fb(self) -> UpperLimit:
        return self.limit.scaled(self.sm_fiducial_xsec_fb)

    @property
    def workspace_file(self) -> str:
        return workspace_file(self.name)


@dataclass(frozen=True, eq=False)
class SsWWResults(_Record):
    """Both ssWW polarization fits and how the pseudo-data were made."""

    fits: dict[str, PolarizationFit]
    pseudo_data: dict[str, Any]
    luminosity_fb: float
    seconds: float = 0.0

    def workspace_fits(self) -> list[WorkspaceFit]:
        return [WorkspaceFit(name, f.workspace_file, f.fit) for name, f in self.fits.items()]

    def workspace_specs(self) -> dict[str, dict[str, Any]]:
        """The workspaces held, by file name (none for results read back)."""
        return {f.workspace_file: f.workspace for f in self.fits.values() if f.workspace}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": "ssww", "luminosity_fb": self.luminosity_fb,
                               "pseudo_data": self.pseudo_data}
        for name, f in self.fits.items():
            out[f"mu_{name}"] = f.mu
            out[f"significance_{name}"] = f.significance.to_dict()
            out[f"upper_limit_{name}"] = f.limit.to_dict()
            out[f"upper_limit_fb_{name}"] = f.limit_fb.to_dict()
        out["sm_fiducial_xsec_fb"] = {name: f.sm_fiducial_xsec_fb for name, f in self.fits.items()}
        out["fits"] = {name: {"poi": f.poi, "workspace": f.workspace_file, **f.fit.to_dict()}
                       for name, f in self.fits.items()}
        out["seconds"] = self.seconds
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SsWWResults:
        fits = {name: PolarizationFit(name, entry["poi"], FitResults.from_dict(entry),
                                      Significance.from_dict(data[f"significance_{name}"]),
                                      UpperLimit.from_dict(data[f"upper_limit_{name}"]),
                                      data["sm_fiducial_xsec_fb"][name])
                for name, entry in data["fits"].items()}
        return cls(fits, dict(data["pseudo_data"]), data["luminosity_fb"], data.get("seconds", 0.0))


# --------------------------------------------------------------------------- WH


@dataclass(frozen=True, eq=False)
class CouplingScan(_Record):
    """-2 Δ ln L as a function of a coupling, with its minimum and 68 % / 95 % CL intervals.

    An interval side is None when the curve does not cross the threshold inside
    the scanned range.
    """

    parameter: str
    values: np.ndarray
    twice_delta_nll: np.ndarray
    best_fit: float
    interval_68: tuple[float | None, float | None]
    interval_95: tuple[float | None, float | None]
    c_true: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "c_true": self.c_true, "best_fit": self.best_fit,
                "interval_68": list(self.interval_68), "interval_95": list(self.interval_95),
                "values": self.values.tolist(), "twice_delta_nll": self.twice_delta_nll.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CouplingScan:
        lo68, hi68 = data["interval_68"]
        lo95, hi95 = data["interval_95"]
        return cls(data["parameter"], np.asarray(data["values"], dtype=float),
                   np.asarray(data["twice_delta_nll"], dtype=float), data["best_fit"],
                   (lo68, hi68), (lo95, hi95), data["c_true"])


_HALF_LABEL = {"neg": "< 0", "pos": "> 0"}


@dataclass(frozen=True, eq=False)
class WHCategory(_Record):
    """One STXS × Q_l cos δ⁺ category: its fitted μ and μ(c) = 1 + A c + B c²."""

    name: str
    ptw_low: float
    ptw_high: float
    half: Literal["neg", "pos"]
    mu: float
    mu_uncertainty: float
    a: float
    b: float

    @property
    def q_cos_delta_plus(self) -> str:
        """The Q_l cos δ⁺ half as a condition: ``< 0`` or ``> 0``."""
        return _HALF_LABEL[self.half]

    def to_dict(self) -> dict[str, Any]:
        return {"ptw_low_gev": self.ptw_low, "ptw_high_gev": self.ptw_high,
                "q_cos_delta_plus": self.q_cos_delta_plus,
                "mu": {"value": self.mu, "uncertainty": self.mu_uncertainty},
                "A": self.a, "B": self.b}

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> WHCategory:
        half = next(h for h, label in _HALF_LABEL.items() if label == data["q_cos_delta_plus"])
        return cls(name, data["ptw_low_gev"], data["ptw_high_gev"], half,  # type: ignore[arg-type]
                   data["mu"]["value"], data["mu"]["uncertainty"], data["A"], data["B"])


@dataclass(frozen=True, eq=False)
class WHResults(_Record):
    """WH: signal strengths per category and the CP-coupling scan.

    ``workspaces`` holds the pyhf specs of the category fit (``categories``) and of
    the scan (``cp``); empty for results read back.
    """

    categories: dict[str, WHCategory]
    fit: FitResults
    scan: CouplingScan
    pseudo_data: dict[str, Any]
    luminosity_fb: float
    workspaces: dict[str, dict[str, Any]] = field(repr=False, compare=False, default_factory=dict)
    seconds: float = 0.0

    def workspace_fits(self) -> list[WorkspaceFit]:
        return [WorkspaceFit("categories", WH_CATEGORIES_WORKSPACE, self.fit),
                WorkspaceFit("cp_scan", WH_CP_WORKSPACE, None)]

    def workspace_specs(self) -> dict[str, dict[str, Any]]:
        """The workspaces held, by file name (none for results read back)."""
        files = {"categories": WH_CATEGORIES_WORKSPACE, "cp": WH_CP_WORKSPACE}
        return {files[k]: ws for k, ws in self.workspaces.items() if ws}

    def to_dict(self) -> dict[str, Any]:
        return {"channel": "wh", "luminosity_fb": self.luminosity_fb,
                "pseudo_data": self.pseudo_data,
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
                   data["luminosity_fb"], seconds=data.get("seconds", 0.0))


Results = SsWWResults | WHResults
_BY_CHANNEL: dict[str, type[SsWWResults] | type[WHResults]] = {"ssww": SsWWResults, "wh": WHResults}


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
        raise InputError(f"{path}: channel: expected 'ssww' or 'wh', got {channel!r}")
    try:
        return _BY_CHANNEL[channel].from_dict(data)
    except KeyError as exc:
        raise InputError(f"{path}: not a results file of 'ewpolar fit' (no key {exc})") from None
    except (TypeError, ValueError, AttributeError, StopIteration) as exc:
        raise InputError(f"{path}: not a results file of 'ewpolar fit' ({exc})") from None
