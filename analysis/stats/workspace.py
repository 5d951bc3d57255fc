"""HistFactory workspaces (pyhf JSON) from the histograms file and the analysis config.

Two layers:

* :func:`build_workspace` is generic: channels of samples, each sample with its
  nominal yields, MC-statistical variances, systematic variations and normalisation
  factors. A one-bin counting experiment is a single call.
* :func:`ssww_workspace`, :func:`wh_category_workspace` and :func:`wh_cp_workspace`
  read ``histograms.root`` (:mod:`ewpolar.core.histio`) and the config and call it.

Conventions (documented once, here):

Unrolling
    A 2D template with bins (i, j), i along the first axis (x) and j along the
    second (y), becomes bin ``i * n_y + j`` of the channel (row-major, numpy
    C order). For the ssWW templates x is the signal-vs-background score and y the
    polarization score, so the channel runs through the polarization bins of the
    lowest signal-score column first.

Modifier names
    ``lumi`` (normsys, size from ``systematics.luminosity.size``) on every MC sample;
    ``staterror_{channel}`` (MC statistics, one per channel); each other config
    systematic ``{key}`` (``scale``, ``pdf``, ``jes``, ``kfactor``) from the
    ``{key}_up``/``{key}_down`` histograms; ``mu_{fit}`` (the POI of ssWW fit
    ``{fit}``), ``mu_TX``/``mu_TT`` (the floating polarization states),
    ``mu_{sample}`` (background normalisations constrained by a control region),
    ``mu_stxs{i}_{neg|pos}`` (WH categories), and ``{cp_scan.parameter}`` /
    ``{cp_scan.parameter}_sq`` (the fixed coupling and its square in the WH CP model).

Variations
    A missing variation means "same as nominal"; a one-sided one is symmetrised
    (``down = 2 nominal - up``, clipped at zero). Each variation is split as in
    cabinetry: a ``normsys`` carries the change of the sample's total yield, and a
    ``histosys`` of the same name carries the shape (the variation rescaled to the
    nominal total) only when some bin moves by more than ``shape_threshold``
    (default 1 %) relative to its nominal content. A variation that changes
    neither is dropped. With ``mode: all`` the scale variations ``scale_0 ...
    scale_8`` (LHEScaleWeight members in NanoAOD order) become the bin-by-bin
    envelope of the 7-point members and nominal: members 2 and 6, (μR, μF) =
    (0.5, 2) and (2, 0.5), are left out as in the processors' own envelope.

Empty bins and samples
    A sample with zero total yield in a channel is left out of that channel.
    Bins whose summed nominal expectation is not positive are removed from the
    channel (a Poisson term with zero expectation has no information and the
    MC-statistics constraint would divide by zero). Negative per-sample bin
    contents (negative weights) are set to zero.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyhf
from ewpolar.core.config import AnalysisConfig, FitSpec
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.core.histio import HistKey, Template, histogram_name, read_histograms

__all__ = [
    "SHAPE_THRESHOLD",
    "SIGNAL_REGION",
    "HistogramSet",
    "SampleInput",
    "StxsCategory",
    "build_workspace",
    "config_modifier_names",
    "cp_parameter_names",
    "load_histograms",
    "model_and_data",
    "modifier_names",
    "split_variation",
    "ssww_fit_parameters",
    "ssww_workspace",
    "stxs_categories",
    "unroll",
    "validate",
    "wh_category_workspace",
    "wh_cp_workspace",
    "wh_observations",
    "with_pseudo_data",
]

log = logging.getLogger(__name__)

SIGNAL_REGION = "signal"
SHAPE_THRESHOLD = 0.01
MEASUREMENT = "measurement"
POI_BOUNDS = (0.0, 20.0)
_NORM_EPS = 1e-6
_MIN_FACTOR = 1e-3
_HIST_PREFIX = {"luminosity": "lumi"}
_SCALE_7POINT = (0, 1, 3, 4, 5, 7, 8)
_POLARIZATION_GROUPS = {
    frozenset({"LT", "TT"}): "TX",
    frozenset({"LL", "LT"}): "LX",
    frozenset({"LL"}): "LL",
    frozenset({"LT"}): "LT",
    frozenset({"TT"}): "TT",
}


# --------------------------------------------------------------------------- pyhf access


@contextlib.contextmanager
def _quiet_schema() -> Iterator[None]:
    # pyhf 0.7 validates through jsonschema.RefResolver, deprecated since jsonschema 4.18;
    # the warning concerns pyhf's internals, not the workspace
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="jsonschema.RefResolver is deprecated",
                                category=DeprecationWarning)
        yield


def validate(spec: Mapping[str, Any]) -> pyhf.Workspace:
    """Validate a workspace against pyhf's schema; returns it as a ``pyhf.Workspace``.

    Raises:
        pyhf.exceptions.InvalidSpecification: the spec does not follow the schema.
    """
    with _quiet_schema():
        if isinstance(spec, pyhf.Workspace):
            pyhf.schema.validate(dict(spec), "workspace.json", version=spec.version)
            return spec
        return pyhf.Workspace(dict(spec))  # validates on construction


def model_and_data(workspace: Mapping[str, Any]) -> tuple[pyhf.pdf.Model, list[float]]:
    """The pyhf model of a workspace's measurement and its data (main followed by auxiliary).

    A plain dict is validated first; a ``pyhf.Workspace`` was validated when it was made.
    """
    ws = workspace if isinstance(workspace, pyhf.Workspace) else validate(workspace)
    with _quiet_schema():
        model = ws.model(validate=False)
    return model, ws.data(model)


# --------------------------------------------------------------------------- generic builder


@dataclass
class SampleInput:
    """Expected yields of one sample in one channel and what modifies them.

    Attributes:
        yields: nominal expected events per bin.
        variances: summed squared weights per bin (MC statistics); None: no staterror.
        variations: systematic name -> (up, down) yields per bin; a None side is
            symmetrised. Split into normsys + histosys by :func:`split_variation`.
        normfactors: names of free normalisation factors on this sample.
        normsys: explicit normsys modifiers, name -> (hi, lo) factors.
        histosys: explicit histosys modifiers, name -> (hi_data, lo_data) yields.
        signed: the yields may be negative (an interference template); such a
            sample is not clipped at zero and does not count towards the bin
            expectation used to drop empty bins.
    """

    yields: Any
    variances: Any = None
    variations: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    normfactors: Sequence[str] = ()
    normsys: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    histosys: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    signed: bool = False


def split_variation(nominal: Any, up: Any | None, down: Any | None, *,
                    shape_threshold: float = SHAPE_THRESHOLD
                    ) -> tuple[tuple[float, float] | None, tuple[np.ndarray, np.ndarray] | None]:
    """Split an up/down variation into a normsys (hi, lo) and a shape-only histosys.

    Returns ``(normsys, histosys)``; either is None when its effect is negligible.
    A missing side is symmetrised: ``down = 2 nominal - up`` (clipped at zero).

    >>> split_variation([10.0, 10.0], [11.0, 11.0], None)
    ((1.1, 0.9), None)
    """
    nom = np.asarray(nominal, dtype=float)
    if up is None and down is None:
        return None, None
    up = np.clip(2 * nom - np.asarray(down, float), 0, None) if up is None else np.asarray(up, float)
    down = np.clip(2 * nom - up, 0, None) if down is None else np.asarray(down, float)
    up, down = np.clip(up, 0, None), np.clip(down, 0, None)
    total = nom.sum()
    if total <= 0:
        return None, None
    hi, lo = up.sum() / total, down.sum() / total
    normsys = None
    if abs(hi - 1) > _NORM_EPS or abs(lo - 1) > _NORM_EPS:
        normsys = (float(max(hi, _MIN_FACTOR)), float(max(lo, _MIN_FACTOR)))
    shape_up = up / hi if hi > 0 else nom.copy()
    shape_down = down / lo if lo > 0 else nom.copy()
    filled = nom > 0
    dev = 0.0
    if filled.any():
        dev = float(np.max(np.abs(np.concatenate([shape_up[filled], shape_down[filled]])
                                  - np.tile(nom[filled], 2)) / np.tile(nom[filled], 2)))
    if (~filled).any():  # a variation that fills an empty bin changes the shape
        dev = max(dev, float(np.inf if np.any(shape_up[~filled] + shape_down[~filled] > 0) else 0))
    histosys = (shape_up, shape_down) if dev > shape_threshold else None
    return normsys, histosys


def _as_sample(spec: SampleInput | Mapping[str, Any] | Any) -> SampleInput:
    if isinstance(spec, SampleInput):
        return spec
    if isinstance(spec, Mapping):
        return SampleInput(**spec)
    return SampleInput(yields=spec)


def _parameter_entries(normfactors: Iterable[str], poi: str,
                       bounds: Mapping[str, tuple[float, float]],
                       fixed: Mapping[str, float]) -> list[dict[str, Any]]:
    entries = []
    for name in sorted(set(normfactors) | set(fixed)):
        entry: dict[str, Any] = {"name": name}
        if name in fixed:
            entry.update(fixed=True, inits=[float(fixed[name])])
            lo, hi = bounds.get(name, (min(0.0, fixed[name]), max(10.0, fixed[name])))
            entry["bounds"] = [[float(min(lo, fixed[name])), float(max(hi, fixed[name]))]]
        elif name in bounds:
            entry["bounds"] = [[float(bounds[name][0]), float(bounds[name][1])]]
        elif name == poi:
            entry["bounds"] = [list(POI_BOUNDS)]
        entries.append(entry)
    return entries


def build_workspace(channels: Mapping[str, Mapping[str, SampleInput | Mapping[str, Any] | Any]],
                    *, poi: str, observations: Mapping[str, Any] | None = None,
                    staterror: bool = True, shape_threshold: float = SHAPE_THRESHOLD,
                    parameter_bounds: Mapping[str, tuple[float, float]] | None = None,
                    fixed_parameters: Mapping[str, float] | None = None,
                    measurement: str = MEASUREMENT) -> pyhf.Workspace:
    """Build and validate a pyhf workspace from per-channel samples.

    Args:
        channels: channel name -> sample name -> :class:`SampleInput` (or a dict of
            its fields, or just the nominal yields).
        poi: name of the parameter of interest (a normfactor of some sample).
        observations: channel -> observed counts; None: Asimov data at the nominal
            parameters (normfactors at their inits, nuisance parameters at zero).
        staterror: add one ``staterror_{channel}`` per channel from the variances.
        shape_threshold: see :func:`split_variation`.
        parameter_bounds: bounds per normfactor (default pyhf's [0, 10]; POI [0, 20]).
        fixed_parameters: normfactors fixed to a value (e.g. the coupling of a scan).

    Returns:
        The workspace (a validated ``pyhf.Workspace``, a dict).

    Raises:
        InputError: a channel has no sample or no bin with positive expectation.

    >>> ws = build_workspace({"sr": {"sig": {"yields": [5.0], "normfactors": ["mu"]},
    ...                              "bkg": [10.0]}}, poi="mu", staterror=False)
    >>> model, data = model_and_data(ws)
    >>> data
    [15.0]
    """
    bounds = dict(parameter_bounds or {})
    fixed = dict(fixed_parameters or {})
    spec_channels: list[dict[str, Any]] = []
    obs_entries: list[dict[str, Any]] = []
    normfactors: set[str] = set()
    for channel, samples in channels.items():
        parsed = {name: _as_sample(s) for name, s in samples.items()}
        yields = {name: np.asarray(s.yields, dtype=float).ravel() for name, s in parsed.items()}
        yields = {name: (y if parsed[name].signed else np.clip(y, 0, None)) for name, y in yields.items()}
        if not yields:
            raise InputError(f"channel '{channel}': no samples")
        nbins = {len(v) for v in yields.values()}
        if len(nbins) != 1:
            raise InputError(f"channel '{channel}': samples have different numbers of bins {sorted(nbins)}")
        total = np.sum([y for name, y in yields.items() if not parsed[name].signed]
                       or [np.zeros(nbins.pop())], axis=0)
        keep = total > 0
        if not keep.any():
            raise InputError(f"channel '{channel}': no bin with positive expected yield")
        if not keep.all():
            log.info("channel %s: dropped %d of %d bins with no expected events",
                     channel, int((~keep).sum()), keep.size)
        spec_samples = []
        for name, s in parsed.items():
            nom = yields[name][keep]
            if (not np.any(nom)) if s.signed else nom.sum() <= 0:
                log.debug("channel %s: sample %s has no expected events, left out", channel, name)
                continue
            mods: list[dict[str, Any]] = [{"name": nf, "type": "normfactor", "data": None}
                                          for nf in s.normfactors]
            normfactors.update(s.normfactors)
            for mod_name, (hi, lo) in s.normsys.items():
                mods.append({"name": mod_name, "type": "normsys",
                             "data": {"hi": float(hi), "lo": float(lo)}})
            for mod_name, (hi_data, lo_data) in s.histosys.items():
                mods.append({"name": mod_name, "type": "histosys",
                             "data": {"hi_data": _cut(hi_data, keep), "lo_data": _cut(lo_data, keep)}})
            for mod_name, (up, down) in s.variations.items():
                up_k = None if up is None else np.asarray(up, float).ravel()[keep]
                down_k = None if down is None else np.asarray(down, float).ravel()[keep]
                norm, shape = split_variation(nom, up_k, down_k, shape_threshold=shape_threshold)
                if norm is not None:
                    mods.append({"name": mod_name, "type": "normsys",
                                 "data": {"hi": norm[0], "lo": norm[1]}})
                if shape is not None:
                    mods.append({"name": mod_name, "type": "histosys",
                                 "data": {"hi_data": shape[0].tolist(), "lo_data": shape[1].tolist()}})
            if staterror and s.variances is not None:
                var = np.clip(np.asarray(s.variances, dtype=float).ravel()[keep], 0, None)
                mods.append({"name": f"staterror_{channel}", "type": "staterror",
                             "data": np.sqrt(var).tolist()})
            spec_samples.append({"name": name, "data": nom.tolist(), "modifiers": mods})
        spec_channels.append({"name": channel, "samples": spec_samples})
        if observations is not None:
            obs = np.asarray(observations[channel], dtype=float).ravel()
            if obs.size != keep.size:
                raise InputError(f"channel '{channel}': {obs.size} observed bins for {keep.size} expected")
            obs = obs[keep]
        else:
            obs = np.zeros(int(keep.sum()))
        obs_entries.append({"name": channel, "data": obs.tolist()})
    if poi not in normfactors and poi not in fixed:
        raise InputError(f"parameter of interest '{poi}' is not a normfactor of any sample")
    spec = {
        "channels": spec_channels,
        "observations": obs_entries,
        "measurements": [{"name": measurement, "config": {
            "poi": poi, "parameters": _parameter_entries(normfactors, poi, bounds, fixed)}}],
        "version": "1.0.0",
    }
    ws = validate(spec)
    if observations is None:
        ws = with_pseudo_data(ws)
    return ws


def _cut(values: Any, keep: np.ndarray) -> list[float]:
    return np.asarray(values, dtype=float).ravel()[keep].tolist()


def with_pseudo_data(workspace: Mapping[str, Any], *, kind: str = "asimov", seed: int | None = None,
                     parameters: Mapping[str, float] | None = None) -> pyhf.Workspace:
    """Replace the observations by pseudo-data generated from the workspace's model.

    Args:
        kind: ``asimov`` (expected counts) or ``poisson`` (one Poisson draw of them;
            the auxiliary measurements stay at their nominal values).
        seed: random seed of the Poisson draw.
        parameters: parameter values to generate at (e.g. an injected POI);
            the rest at their suggested inits (normfactors 1, nuisances nominal).
    """
    if kind not in ("asimov", "poisson"):
        raise ValueError(f"pseudo-data kind must be 'asimov' or 'poisson', not '{kind}'")
    ws = validate(workspace) if not isinstance(workspace, pyhf.Workspace) else workspace
    model, _ = model_and_data(ws)
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    for name, value in (parameters or {}).items():
        if name not in model.config.par_map:
            raise InputError(f"pseudo-data: unknown parameter '{name}'")
        pars[model.config.par_slice(name)] = value
    expected = np.asarray(model.expected_actualdata(pars), dtype=float)
    if kind == "poisson":
        expected = np.random.default_rng(seed).poisson(expected).astype(float)
    spec = copy.deepcopy(dict(ws))
    spec["observations"] = [{"name": ch, "data": expected[model.config.channel_slices[ch]].tolist()}
                            for ch in model.config.channels]
    with _quiet_schema():
        return pyhf.Workspace(spec, validate=False)  # only the numbers of a valid spec changed


def modifier_names(workspace: Mapping[str, Any], *, types: Iterable[str] | None = None) -> set[str]:
    """Names of the modifiers in a workspace, optionally only those of the given types."""
    wanted = set(types) if types is not None else None
    return {m["name"] for ch in workspace["channels"] for s in ch["samples"] for m in s["modifiers"]
            if wanted is None or m["type"] in wanted}


def unroll(values: np.ndarray) -> np.ndarray:
    """Flatten a template row-major: bin (i, j) of an (n_x, n_y) histogram -> i * n_y + j."""
    return np.asarray(values, dtype=float).reshape(-1)


# --------------------------------------------------------------------------- histograms


class HistogramSet:
    """The histograms of one file with one-line errors naming file and histogram."""

    def __init__(self, histograms: Mapping[HistKey, Template], source: str | Path = "histograms"):
        self.histograms = histograms
        self.source = str(source)

    def nominal(self, dataset: str, region: str, observable: str) -> Template:
        """The nominal histogram; InputError when it is missing."""
        t = self.histograms.get(HistKey(dataset, region, "nominal", observable))
        if t is None:
            name = histogram_name(dataset, region, "nominal", observable)
            raise InputError(f"{self.source}: missing histogram '{name}' "
                             f"(dataset {dataset}, region {region}, observable {observable})")
        return t

    def variation(self, dataset: str, region: str, systematic: str, observable: str) -> Template | None:
        """A non-nominal histogram, or None when it is absent (same as nominal)."""
        t = self.histograms.get(HistKey(dataset, region, systematic, observable))
        if t is not None:
            nom = self.nominal(dataset, region, observable)
            if t.values.shape != nom.values.shape:
                name = histogram_name(dataset, region, systematic, observable)
                raise InputError(f"{self.source}: histogram '{name}' has shape {t.values.shape},"
                                 f" nominal has {nom.values.shape}")
        return t

    def systematics(self, dataset: str, region: str, observable: str) -> set[str]:
        return {k.systematic for k in self.histograms
                if (k.dataset, k.region, k.observable) == (dataset, region, observable)}


def load_histograms(histograms: str | Path | HistogramSet | Mapping[HistKey, Template]) -> HistogramSet:
    """Read a histograms file (or wrap an already-read mapping)."""
    if isinstance(histograms, HistogramSet):
        return histograms
    if isinstance(histograms, Mapping):
        return HistogramSet(histograms)
    return HistogramSet(read_histograms(histograms), histograms)


def config_modifier_names(config: AnalysisConfig) -> set[str]:
    """Modifier names that the config's systematics give (``luminosity`` -> ``lumi``)."""
    return {_HIST_PREFIX.get(key, key) for key in config.systematics}


def _mc_samples(config: AnalysisConfig) -> list[str]:
    return [name for name, s in config.samples.items() if s.kind != "data"]


def _variations(config: AnalysisConfig, hs: HistogramSet, dataset: str, region: str,
                observable: str, transform=unroll) -> tuple[dict[str, tuple[Any, Any]],
                                                            dict[str, tuple[float, float]]]:
    """Histogram variations and fixed-size normsys of one sample from the config's systematics."""
    nominal = transform(hs.nominal(dataset, region, observable).values)
    variations: dict[str, tuple[Any, Any]] = {}
    normsys: dict[str, tuple[float, float]] = {}
    present = hs.systematics(dataset, region, observable)
    for key, syst in config.systematics.items():
        name = _HIST_PREFIX.get(key, key)
        if syst.kind == "normsys" and syst.size is not None:
            normsys[name] = (1 + syst.size, max(1 - syst.size, _MIN_FACTOR))
            continue
        up = hs.variation(dataset, region, f"{name}_up", observable)
        down = hs.variation(dataset, region, f"{name}_down", observable)
        members = sorted((s for s in present if re.fullmatch(rf"{re.escape(name)}_\d+", s)),
                         key=lambda s: int(s.rsplit("_", 1)[1]))
        use_members = members and (syst.mode == "all" or (up is None and down is None))
        if use_members:
            if syst.kind == "scale" and [int(m.rsplit("_", 1)[1]) for m in members] == list(range(9)):
                # NanoAOD (muR, muF) order: leave out (0.5, 2) and (2, 0.5), as the 7-point envelope
                members = [members[i] for i in _SCALE_7POINT]
            stack = np.array([nominal] + [transform(hs.variation(dataset, region, m, observable).values)
                                          for m in members])
            variations[name] = (stack.max(axis=0), stack.min(axis=0))
        elif up is not None or down is not None:
            variations[name] = (None if up is None else transform(up.values),
                                None if down is None else transform(down.values))
    return variations, normsys


def _sample_input(config: AnalysisConfig, hs: HistogramSet, dataset: str, region: str,
                  observable: str, normfactors: Sequence[str], transform=unroll) -> SampleInput:
    nom = hs.nominal(dataset, region, observable)
    variations, normsys = _variations(config, hs, dataset, region, observable, transform)
    return SampleInput(yields=transform(nom.values), variances=transform(nom.variances),
                       variations=variations, normfactors=list(normfactors), normsys=normsys)


def _check_free_normalisations(config: AnalysisConfig) -> None:
    for sample, region in config.fit.free_normalisations.items():
        if region not in config.fit.control_regions and region != SIGNAL_REGION:
            log.warning("fit.free_normalisations.%s: region '%s' is not fitted; mu_%s is"
                        " constrained only by the other regions", sample, region, sample)


def _control_channels(config: AnalysisConfig, hs: HistogramSet,
                      normfactors: Mapping[str, list[str]]) -> dict[str, dict[str, SampleInput]]:
    if not config.fit.control_regions:
        return {}
    obs = config.fit.control_observable
    if obs is None:
        raise ConfigError(f"{config.source or 'config'}: fit.control_observable: required when"
                          " fit.control_regions is given")
    return {region: {d: _sample_input(config, hs, d, region, obs, normfactors[d])
                     for d in _mc_samples(config)}
            for region in config.fit.control_regions}


def _pseudo_data(config: AnalysisConfig, ws: pyhf.Workspace, pseudo_data: str | None,
                 seed: int | None, parameters: Mapping[str, float] | None) -> pyhf.Workspace:
    kind = pseudo_data or config.fit.pseudo_data
    seed = config.fit.seed if seed is None else seed
    if kind == "asimov" and not parameters:
        return ws
    return with_pseudo_data(ws, kind=kind, seed=seed, parameters=parameters)


# --------------------------------------------------------------------------- ssWW


def _group_name(config: AnalysisConfig, fit_name: str, samples: Sequence[str]) -> str:
    pols = {config.samples[s].polarization for s in samples}
    label = None if None in pols else _POLARIZATION_GROUPS.get(frozenset(pols))
    return f"mu_{label}" if label and label != fit_name else f"mu_{fit_name}_floating"


def ssww_fit_parameters(config: AnalysisConfig, fit_name: str) -> tuple[str, str | None]:
    """The POI (``mu_{fit}``) and floating normfactor names of an ssWW fit."""
    spec = _fit_spec(config, fit_name)
    floating = _group_name(config, fit_name, spec.floating_samples) if spec.floating_samples else None
    return f"mu_{fit_name}", floating


def _fit_spec(config: AnalysisConfig, fit_name: str) -> FitSpec:
    try:
        return config.fit.fits[fit_name]
    except KeyError:
        raise ConfigError(f"{config.source or 'config'}: fit.fits: no fit named '{fit_name}'"
                          f" (fits: {', '.join(config.fit.fits) or 'none'})") from None


def ssww_workspace(config: AnalysisConfig, histograms: str | Path | HistogramSet, fit_name: str, *,
                   pseudo_data: str | None = None, seed: int | None = None,
                   parameters: Mapping[str, float] | None = None,
                   shape_threshold: float = SHAPE_THRESHOLD) -> pyhf.Workspace:
    """Workspace of one ssWW polarization fit (``config.fit.fits[fit_name]``).

    Channel ``signal`` is the unrolled 2D template ``template_{spec.template}``;
    each control region is a channel of ``fit.control_observable``. The POI
    ``mu_{fit_name}`` scales ``poi_samples``, one free normfactor scales
    ``floating_samples``, ``fit.free_normalisations`` get ``mu_{sample}``.

    Args:
        pseudo_data: ``asimov`` or ``poisson``; default ``config.fit.pseudo_data``.
        seed: seed of the Poisson draw; default ``config.fit.seed``.
        parameters: values to generate the pseudo-data at (e.g. ``{"mu_LL": 2.0}``).
    """
    hs = load_histograms(histograms)
    spec = _fit_spec(config, fit_name)
    poi, floating = ssww_fit_parameters(config, fit_name)
    _check_free_normalisations(config)
    normfactors: dict[str, list[str]] = {d: [] for d in _mc_samples(config)}
    for d in spec.poi_samples:
        normfactors[d].append(poi)
    for d in spec.floating_samples:
        normfactors[d].append(floating)
    for d in config.fit.free_normalisations:
        if normfactors.get(d):
            log.warning("sample %s has a free normalisation and is a fitted polarization state", d)
        normfactors.setdefault(d, []).append(f"mu_{d}")
    observable = f"template_{spec.template}"
    channels = {SIGNAL_REGION: {d: _sample_input(config, hs, d, SIGNAL_REGION, observable, normfactors[d])
                                for d in _mc_samples(config)}}
    channels.update(_control_channels(config, hs, normfactors))
    ws = build_workspace(channels, poi=poi, shape_threshold=shape_threshold)
    return _pseudo_data(config, ws, pseudo_data, seed, parameters)


# --------------------------------------------------------------------------- WH


@dataclass(frozen=True)
class StxsCategory:
    """One STXS p_T^W bin: its edges (GeV) and the histogram p_T^W bins merged into it."""

    index: int
    low: float
    high: float
    ptw_bins: tuple[int, ...]


def stxs_categories(ptw_edges: Sequence[float], stxs_edges: Sequence[float], *,
                    source: str = "histograms") -> list[StxsCategory]:
    """Map histogram p_T^W bins onto STXS bins.

    Every STXS edge inside the histogram range must be a histogram edge; the
    first edges must agree; the last STXS bin is open-ended, so its upper edge
    may lie above the histogram's last edge (it then takes all bins above its
    lower edge).

    Raises:
        InputError: the edges do not align.
    """
    h = np.asarray(ptw_edges, dtype=float)
    s = np.asarray(stxs_edges, dtype=float)
    if not np.isclose(h[0], s[0]):
        raise InputError(f"{source}: p_T^W histogram starts at {h[0]:g} GeV, STXS bins at {s[0]:g} GeV")
    if s[-1] < h[-1] and not np.isclose(s[-1], h[-1]):
        raise InputError(f"{source}: STXS bins end at {s[-1]:g} GeV, below the p_T^W histogram's"
                         f" last edge {h[-1]:g} GeV")
    idx = []
    for e in s[1:-1]:
        match = np.flatnonzero(np.isclose(h, e))
        if match.size == 0:
            raise InputError(f"{source}: STXS edge {e:g} GeV is not a p_T^W histogram edge"
                             f" ({', '.join(f'{x:g}' for x in h)})")
        idx.append(int(match[0]))
    bounds = [0, *idx, len(h) - 1]
    return [StxsCategory(i, float(s[i]), float(s[i + 1]), tuple(range(bounds[i], bounds[i + 1])))
            for i in range(len(s) - 1)]


def _wh_signal_geometry(config: AnalysisConfig, hs: HistogramSet) -> tuple[str, list[StxsCategory], int]:
    obs = config.fit.signal_observable
    if obs is None:
        raise ConfigError(f"{config.source or 'config'}: fit.signal_observable: required for WH")
    if config.stxs_ptv_edges is None:
        raise ConfigError(f"{config.source or 'config'}: stxs_ptv_edges: required for WH")
    signal = [d for d, s in config.samples.items() if s.kind == "signal"]
    if not signal:
        raise ConfigError(f"{config.source or 'config'}: samples: no signal sample")
    nom = hs.nominal(signal[0], SIGNAL_REGION, obs)
    name = histogram_name(signal[0], SIGNAL_REGION, "nominal", obs)
    if len(nom.edges) != 2:
        raise InputError(f"{hs.source}: histogram '{name}' must be 2D (Q_l cos delta+, p_T^W)")
    cats = stxs_categories(nom.edges[1], config.stxs_ptv_edges, source=f"{hs.source}: {name}")
    zero = np.flatnonzero(np.isclose(nom.edges[0], 0.0, atol=1e-9))
    if zero.size == 0:
        raise InputError(f"{hs.source}: histogram '{name}': no Q_l cos delta+ bin edge at 0")
    return obs, cats, int(zero[0])


def _merge(values: np.ndarray, cat: StxsCategory) -> np.ndarray:
    """Sum the p_T^W bins of one STXS category: (n_cos, n_ptw) -> (n_cos,)."""
    return np.asarray(values, dtype=float)[:, list(cat.ptw_bins)].sum(axis=1)


def _half(values: np.ndarray, split: int, which: str) -> np.ndarray:
    out = np.array(values, dtype=float)
    if which == "neg":
        out[split:] = 0
    else:
        out[:split] = 0
    return out


def _wh_backgrounds(config: AnalysisConfig) -> tuple[list[str], list[str]]:
    signal = [d for d, s in config.samples.items() if s.kind == "signal"]
    background = [d for d in _mc_samples(config) if d not in signal]
    return signal, background


def wh_observations(config: AnalysisConfig, histograms: str | Path | HistogramSet, *,
                    pseudo_data: str | None = None, seed: int | None = None,
                    c_true: float = 0.0, interference_scale: float = 1.0) -> dict[str, np.ndarray]:
    """WH pseudo-data per category channel (``stxs{i}``, control regions) at coupling ``c_true``.

    Asimov: expected counts at nominal nuisance parameters, backgrounds at their
    nominal normalisation and the signal SM + c·int + c²·quad. Poisson: one draw
    of these per bin with ``seed``, channels in a fixed order, so that the
    category and CP workspaces see the same counts. ``interference_scale``
    multiplies the interference template.
    """
    hs = load_histograms(histograms)
    obs, cats, _ = _wh_signal_geometry(config, hs)
    signal, background = _wh_backgrounds(config)
    sr = sum(np.clip(hs.nominal(d, SIGNAL_REGION, obs).values, 0, None) for d in background)
    for d in signal:
        sr = sr + np.clip(hs.nominal(d, SIGNAL_REGION, obs).values, 0, None)
        for part, power in (("int", 1), ("quad", 2)):
            t = hs.variation(d, SIGNAL_REGION, f"cp_{part}", obs)
            if t is not None and c_true != 0:
                scale = interference_scale if part == "int" else 1.0
                sr = sr + scale * c_true**power * t.values
    out = {f"stxs{cat.index}": _merge(sr, cat) for cat in cats}
    if config.fit.control_regions:
        cr_obs = config.fit.control_observable
        for region in config.fit.control_regions:
            out[region] = sum(np.clip(hs.nominal(d, region, cr_obs).values, 0, None).ravel()
                              for d in _mc_samples(config))
    kind = pseudo_data or config.fit.pseudo_data
    if kind == "poisson":
        rng = np.random.default_rng(config.fit.seed if seed is None else seed)
        out = {k: rng.poisson(np.clip(v, 0, None)).astype(float) for k, v in out.items()}
    elif kind != "asimov":
        raise ValueError(f"pseudo-data kind must be 'asimov' or 'poisson', not '{kind}'")
    return out


def wh_category_workspace(config: AnalysisConfig, histograms: str | Path | HistogramSet, *,
                          pseudo_data: str | None = None, seed: int | None = None,
                          c_true: float = 0.0, observations: Mapping[str, Any] | None = None,
                          shape_threshold: float = SHAPE_THRESHOLD) -> pyhf.Workspace:
    """WH workspace with a signal strength per STXS p_T^W bin and Q_l cos δ⁺ half.

    One channel ``stxs{i}`` per STXS bin (the Q_l cos δ⁺ bins of the merged p_T^W
    bins); the signal is split into samples ``{signal}_neg`` / ``{signal}_pos``
    (Q_l cos δ⁺ < 0 / > 0) with normfactors ``mu_stxs{i}_neg`` / ``mu_stxs{i}_pos``.
    Control regions as in ssWW. The POI is the first category's. The data are
    ``observations`` (per channel, as returned by :func:`wh_observations`) or
    else made by :func:`wh_observations` from ``pseudo_data``, ``seed``, ``c_true``.
    """
    hs = load_histograms(histograms)
    obs, cats, split = _wh_signal_geometry(config, hs)
    signal, background = _wh_backgrounds(config)
    _check_free_normalisations(config)
    bkg_nf = {d: ([f"mu_{d}"] if d in config.fit.free_normalisations else []) for d in background}
    channels: dict[str, dict[str, SampleInput]] = {}
    for cat in cats:
        ch: dict[str, SampleInput] = {}
        for d in signal:
            for which in ("neg", "pos"):
                def tf(v, cat=cat, which=which):
                    return _half(_merge(v, cat), split, which)
                ch[f"{d}_{which}"] = _sample_input(config, hs, d, SIGNAL_REGION, obs,
                                                   [f"mu_stxs{cat.index}_{which}"], tf)
        for d in background:
            ch[d] = _sample_input(config, hs, d, SIGNAL_REGION, obs, bkg_nf[d],
                                  lambda v, cat=cat: _merge(v, cat))
        channels[f"stxs{cat.index}"] = ch
    channels.update(_control_channels(config, hs, {**bkg_nf, **{d: [] for d in signal}}))
    data = observations if observations is not None else wh_observations(
        config, hs, pseudo_data=pseudo_data, seed=seed, c_true=c_true)
    return build_workspace(channels, poi=f"mu_stxs{cats[0].index}_neg", observations=data,
                           shape_threshold=shape_threshold)


def cp_parameter_names(config: AnalysisConfig) -> tuple[str, str]:
    """Names of the fixed normfactors carrying c and c² in the WH CP model."""
    name = config.fit.cp_scan.parameter if config.fit.cp_scan else "c_HWtilde"
    return name, f"{name}_sq"


def wh_cp_workspace(config: AnalysisConfig, histograms: str | Path | HistogramSet, *,
                    coupling: float = 0.0, pseudo_data: str | None = None, seed: int | None = None,
                    c_true: float = 0.0, interference_scale: float = 1.0,
                    observations: Mapping[str, Any] | None = None,
                    shape_threshold: float = SHAPE_THRESHOLD) -> pyhf.Workspace:
    """WH model whose signal is SM + c·int + c²·quad in every Q_l cos δ⁺ × STXS bin.

    The signal is three samples: ``{signal}`` (SM, with all its modifiers),
    ``{signal}_int`` and ``{signal}_quad`` (the ``cp_int`` / ``cp_quad``
    templates) scaled by the fixed normfactors ``c`` and ``c_sq`` (see
    :func:`cp_parameter_names`). The interference and quadratic samples carry the
    SM's relative systematic variations, so the summed signal at any c is
    modified exactly as the SM one; this equals building one model per c.
    Their own MC statistics are not included.

    Args:
        coupling: value of c at which the parameters are fixed in the returned workspace.
        pseudo_data, seed, c_true: see :func:`wh_observations`.
        observations: per category channel, as returned by :func:`wh_observations`
            (overrides pseudo_data, seed, c_true).
        interference_scale: factor on the interference template (studies of sensitivity).
    """
    hs = load_histograms(histograms)
    obs, cats, _ = _wh_signal_geometry(config, hs)
    signal, background = _wh_backgrounds(config)
    c_name, c2_name = cp_parameter_names(config)
    _check_free_normalisations(config)
    bkg_nf = {d: ([f"mu_{d}"] if d in config.fit.free_normalisations else []) for d in background}

    def tf(v):
        return np.concatenate([_merge(v, cat) for cat in cats])

    sr: dict[str, SampleInput] = {}
    for d in signal:
        sm = _sample_input(config, hs, d, SIGNAL_REGION, obs, [], tf)
        sr[d] = sm
        nominal = np.clip(np.asarray(sm.yields, float), 0, None)
        for part, nf, scale in (("int", c_name, interference_scale), ("quad", c2_name, 1.0)):
            t = hs.variation(d, SIGNAL_REGION, f"cp_{part}", obs)
            if t is None:
                name = histogram_name(d, SIGNAL_REGION, f"cp_{part}", obs)
                raise InputError(f"{hs.source}: missing histogram '{name}' (CP {part} template)")
            sr[f"{d}_{part}"] = _transfer_modifiers(sm, nominal, scale * tf(t.values), nf, shape_threshold)
    for d in background:
        sr[d] = _sample_input(config, hs, d, SIGNAL_REGION, obs, bkg_nf[d], tf)
    channels: dict[str, dict[str, SampleInput]] = {SIGNAL_REGION: sr}
    channels.update(_control_channels(config, hs, {**bkg_nf, **{d: [] for d in signal}}))
    fixed = {c_name: coupling, c2_name: coupling**2}
    cat_data = observations if observations is not None else wh_observations(
        config, hs, pseudo_data=pseudo_data, seed=seed, c_true=c_true,
        interference_scale=interference_scale)
    data = {SIGNAL_REGION: np.concatenate([cat_data[f"stxs{cat.index}"] for cat in cats]),
            **{r: cat_data[r] for r in config.fit.control_regions}}
    return build_workspace(channels, poi=c_name, observations=data, shape_threshold=shape_threshold,
                           fixed_parameters=fixed,
                           parameter_bounds={c_name: (-1e3, 1e3), c2_name: (0.0, 1e6)})


def _transfer_modifiers(sm: SampleInput, sm_nominal: np.ndarray, template: np.ndarray,
                        normfactor: str, shape_threshold: float) -> SampleInput:
    """A CP template carrying the SM sample's normsys and relative shape variations."""
    normsys = dict(sm.normsys)
    histosys = {}
    ratio_safe = np.where(sm_nominal > 0, sm_nominal, 1.0)
    for name, (up, down) in sm.variations.items():
        norm, shape = split_variation(sm_nominal, up, down, shape_threshold=shape_threshold)
        if norm is not None:
            normsys[name] = norm
        if shape is not None:
            histosys[name] = (template * shape[0] / ratio_safe, template * shape[1] / ratio_safe)
    return SampleInput(yields=template, normfactors=[normfactor], normsys=normsys, histosys=histosys,
                       signed=True)
