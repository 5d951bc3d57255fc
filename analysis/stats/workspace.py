"""HistFactory workspaces (pyhf JSON): the generic builder and the samples of a histograms file.

Two layers, both channel-independent:

* :func:`build_workspace`: channels of samples, each sample with its nominal
  yields, MC-statistical variances, systematic variations and normalisation
  factors. A one-bin counting experiment is a single call.
* :func:`sample_input` and :func:`control_channels` read one sample of
  ``histograms.root`` (:class:`HistogramSet`) with the variations of the config's
  systematics. The channel models (:mod:`ewpolar.stats.ssww`,
  :mod:`ewpolar.stats.wh`) are built from these.

Conventions (documented once, here):

Unrolling
    A 2D template with bins (i, j), i along the first axis (x) and j along the
    second (y), becomes bin ``i * n_y + j`` of the channel (row-major, numpy
    C order). For the ssWW templates x is the signal-vs-background score and y the
    polarization score, so the channel runs through the polarization bins of the
    lowest signal-score column first.

Modifier names
    Each config systematic is one modifier named by its histogram prefix
    (:func:`ewpolar.core.naming.systematic_prefix`): ``lumi`` (normsys, size from
    ``systematics.luminosity.size``) on every MC sample; ``scale``, ``pdf``, ``jes``,
    ``kfactor`` from the ``{prefix}_up``/``{prefix}_down`` histograms
    (:func:`ewpolar.core.naming.variation_names`); ``staterror_{channel}`` (MC
    statistics, one per channel); ``mu_{sample}`` (background normalisations
    constrained by a control region). The channel modules name their own
    normalisation factors (POIs, floating polarization states, WH categories and
    the CP coupling).

Variations
    A missing variation means "same as nominal"; a one-sided one is symmetrised
    (``down = 2 nominal - up``, clipped at zero). Each variation is split as in
    cabinetry: a ``normsys`` carries the change of the sample's total yield, and a
    ``histosys`` of the same name carries the shape (the variation rescaled to the
    nominal total) only when some bin moves by more than ``shape_threshold``
    (default 1 %) relative to its nominal content. A variation that changes
    neither is dropped. With ``mode: all`` the scale variations ``scale_0 ...
    scale_8`` (LHEScaleWeight members in NanoAOD order) become the bin-by-bin
    envelope of the 7-point members (:data:`ewpolar.core.naming.SCALE_7POINT`) and
    nominal: members 2 and 6, (μR, μF) = (0.5, 2) and (2, 0.5), are left out as in
    the processors' own envelope.

Empty bins and samples
    A sample with zero total yield in a channel is left out of that channel.
    A bin with no expected background (the summed nominal yield of the samples
    that carry none of the signal normalisation factors, by default the POI's, is
    not positive) is *merged* into the nearest bin of the same channel that has
    background (the previous one on a tie; for an unrolled 2D template, the
    neighbour along the unrolled order): all yields, variances, variations and
    observations of the two bins are summed. Without the merge, one observed
    event in such a bin makes the background-only likelihood vanish (an
    infinite discovery significance) and a bin empty of every sample would have
    a Poisson term with zero expectation and an MC-statistics constraint that
    divides by zero. Merging rather than dropping keeps the signal and the data
    of the bin. Each merge is logged and listed in the ``notes`` of the build
    (results.json). Negative per-sample bin contents (negative weights) are set
    to zero.
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
from ewpolar.core.config import AnalysisConfig, load_config
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.core.histio import Template, read_histograms
from ewpolar.core.naming import (
    DOWN,
    NOMINAL,
    SCALE_7POINT,
    UP,
    HistKey,
    histogram_name,
    systematic_prefix,
    variation_names,
)

__all__ = [
    "SHAPE_THRESHOLD",
    "SIGNAL_REGION",
    "HistogramSet",
    "SampleInput",
    "build_workspace",
    "channel_config",
    "check_free_normalisations",
    "check_regions",
    "config_modifier_names",
    "control_channels",
    "load_histograms",
    "mc_samples",
    "merge_plan",
    "model_and_data",
    "modifier_names",
    "sample_input",
    "split_variation",
    "unroll",
    "validate",
    "with_pseudo_data",
]

log = logging.getLogger(__name__)

SIGNAL_REGION = "signal"
SHAPE_THRESHOLD = 0.01
MEASUREMENT = "measurement"
POI_BOUNDS = (0.0, 20.0)
_NORM_EPS = 1e-6
_MIN_FACTOR = 1e-3


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


def merge_plan(background: Sequence[float]) -> np.ndarray:
    """Target bin of each bin: a bin with background merges into itself, one without into the
    nearest bin with background (the previous one on a tie); targets numbered 0..n_kept-1.

    >>> merge_plan([0.0, 2.0, 0.0, 0.0, 1.0, 0.0]).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    bkg = np.asarray(background, dtype=float)
    good = np.flatnonzero(bkg > 0)
    if good.size == 0:
        raise ValueError("no bin with positive background")
    idx = np.arange(bkg.size)
    # distance to each good bin; argmin takes the first (the lower index) on a tie
    nearest = np.argmin(np.abs(idx[:, None] - good[None, :]), axis=1)
    return nearest


def _merger(plan: np.ndarray) -> Any:
    n = int(plan.max()) + 1

    def merge(values: Any) -> np.ndarray:
        return np.bincount(plan, weights=np.asarray(values, dtype=float).ravel(), minlength=n)

    return merge


def build_workspace(channels: Mapping[str, Mapping[str, SampleInput | Mapping[str, Any] | Any]],
                    *, poi: str, observations: Mapping[str, Any] | None = None,
                    staterror: bool = True, shape_threshold: float = SHAPE_THRESHOLD,
                    parameter_bounds: Mapping[str, tuple[float, float]] | None = None,
                    fixed_parameters: Mapping[str, float] | None = None,
                    measurement: str = MEASUREMENT,
                    signal_normfactors: Iterable[str] | None = None,
                    notes: list[str] | None = None) -> pyhf.Workspace:
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
        signal_normfactors: the normfactors whose samples are signal (default: the
            POI); the other samples are the background of the empty-bin rule.
        notes: a list to which a line per merged channel is appended.

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
    signal = set(signal_normfactors) if signal_normfactors is not None else {poi}
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
        nbin = nbins.pop()
        unsigned = [name for name in yields if not parsed[name].signed]
        total = np.sum([yields[n] for n in unsigned] or [np.zeros(nbin)], axis=0)
        background = np.sum([yields[n] for n in unsigned
                             if not set(parsed[n].normfactors) & signal] or [np.zeros(nbin)], axis=0)
        if not (total > 0).any():
            raise InputError(f"channel '{channel}': no bin with positive expected yield")
        basis, what = (background, "background") if (background > 0).any() else (total, "events")
        plan = merge_plan(basis)
        merge = _merger(plan)
        if plan.size != plan.max() + 1:
            moved = [i for i in range(plan.size) if basis[i] <= 0]
            empty = [i for i in moved if total[i] <= 0]
            signal_only = [i for i in moved if total[i] > 0]
            parts = [f"{len(group)} {kind} (bins {', '.join(map(str, group))})"
                     for group, kind in ((empty, "without any expected events"),
                                         (signal_only, f"with signal but no expected {what}"))
                     if group]
            text = (f"channel {channel}: {len(moved)} of {plan.size} bins merged into their nearest"
                    f" neighbour: {'; '.join(parts)}")
            log.info(text)
            if notes is not None:
                notes.append(text)
        spec_samples = []
        for name, s in parsed.items():
            nom = merge(yields[name])
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
                             "data": {"hi_data": merge(hi_data).tolist(),
                                      "lo_data": merge(lo_data).tolist()}})
            for mod_name, (up, down) in s.variations.items():
                up_k = None if up is None else merge(up)
                down_k = None if down is None else merge(down)
                norm, shape = split_variation(nom, up_k, down_k, shape_threshold=shape_threshold)
                if norm is not None:
                    mods.append({"name": mod_name, "type": "normsys",
                                 "data": {"hi": norm[0], "lo": norm[1]}})
                if shape is not None:
                    mods.append({"name": mod_name, "type": "histosys",
                                 "data": {"hi_data": shape[0].tolist(), "lo_data": shape[1].tolist()}})
            if staterror and s.variances is not None:
                var = merge(np.clip(np.asarray(s.variances, dtype=float).ravel(), 0, None))
                mods.append({"name": f"staterror_{channel}", "type": "staterror",
                             "data": np.sqrt(var).tolist()})
            spec_samples.append({"name": name, "data": nom.tolist(), "modifiers": mods})
        spec_channels.append({"name": channel, "samples": spec_samples})
        if observations is not None:
            obs = np.asarray(observations[channel], dtype=float).ravel()
            if obs.size != plan.size:
                raise InputError(f"channel '{channel}': {obs.size} observed bins for {plan.size} expected")
            obs = merge(obs)
        else:
            obs = np.zeros(int(plan.max()) + 1)
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
        t = self.histograms.get(HistKey(dataset, region, NOMINAL, observable))
        if t is None:
            name = histogram_name(dataset, region, NOMINAL, observable)
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


# --------------------------------------------------------------------------- from the config


def config_modifier_names(config: AnalysisConfig) -> set[str]:
    """Modifier names that the config's systematics give (``luminosity`` -> ``lumi``)."""
    return {systematic_prefix(key) for key in config.systematics}


def channel_config(config: AnalysisConfig | str | Path, channel: str) -> AnalysisConfig:
    """The analysis config (loaded when given as a path or channel name) of ``channel``.

    Raises:
        ConfigError: the config is another channel's.
    """
    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    if cfg.channel != channel:
        raise ConfigError(f"{cfg.source or 'config'}: channel: this is a '{cfg.channel}' config,"
                          f" the {channel} fit needs a '{channel}' one")
    return cfg


def mc_samples(config: AnalysisConfig) -> list[str]:
    """The simulated samples of the config (every sample but data), in config order."""
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
        name = systematic_prefix(key)
        if syst.kind == "normsys" and syst.size is not None:
            normsys[name] = (1 + syst.size, max(1 - syst.size, _MIN_FACTOR))
            continue
        up_name, down_name = variation_names(key)
        up = hs.variation(dataset, region, up_name, observable)
        down = hs.variation(dataset, region, down_name, observable)
        members = sorted((s for s in present if re.fullmatch(rf"{re.escape(name)}_\d+", s)),
                         key=lambda s: int(s.rsplit("_", 1)[1]))
        use_members = members and (syst.mode == "all" or (up is None and down is None))
        if use_members:
            if syst.kind == "scale" and [int(m.rsplit("_", 1)[1]) for m in members] == list(range(9)):
                # NanoAOD (muR, muF) order: leave out (0.5, 2) and (2, 0.5), as the 7-point envelope
                members = [members[i] for i in SCALE_7POINT]
            stack = np.array([nominal] + [transform(hs.variation(dataset, region, m, observable).values)
                                          for m in members])
            variations[name] = (stack.max(axis=0), stack.min(axis=0))
        elif up is not None or down is not None:
            variations[name] = (None if up is None else transform(up.values),
                                None if down is None else transform(down.values))
    # the systematic model is data: variations the histograms hold beyond the config's
    # systematics (an input profile's shape categories, e.g. jer_up/jer_down, or its
    # weight variations) become modifiers of their own
    for name in _extra_variation_names(config, present) - variations.keys() - normsys.keys():
        up = hs.variation(dataset, region, f"{name}_{UP}", observable)
        down = hs.variation(dataset, region, f"{name}_{DOWN}", observable)
        variations[name] = (None if up is None else transform(up.values),
                            None if down is None else transform(down.values))
    return variations, normsys


def _extra_variation_names(config: AnalysisConfig, present: set[str]) -> set[str]:
    """Names of the two-sided (or one-sided) variations in ``present`` that no config
    systematic accounts for."""
    known = {systematic_prefix(key) for key in config.systematics}
    out = set()
    for systematic in present:
        name, _, side = systematic.rpartition("_")
        if side in (UP, DOWN) and name and name not in known:
            out.add(name)
    return out


def sample_input(config: AnalysisConfig, hs: HistogramSet, dataset: str, region: str,
                 observable: str, normfactors: Sequence[str], transform=unroll) -> SampleInput:
    """One sample of the histograms file with its MC statistics, the variations of the
    config's systematics and ``normfactors``; ``transform`` maps each histogram's
    contents to the channel's bins (default: :func:`unroll`)."""
    nom = hs.nominal(dataset, region, observable)
    variations, normsys = _variations(config, hs, dataset, region, observable, transform)
    return SampleInput(yields=transform(nom.values), variances=transform(nom.variances),
                       variations=variations, normfactors=list(normfactors), normsys=normsys)


def check_regions(config: AnalysisConfig, hs: HistogramSet) -> None:
    """The fit needs the signal region and every ``fit.control_regions``: one line naming them.

    Raises:
        InputError: a region is absent from the histograms (e.g. ``ewpolar run --region signal``).
    """
    needed = [SIGNAL_REGION, *config.fit.control_regions]
    present = {k.region for k in hs.histograms}
    missing = [r for r in needed if r not in present]
    if missing:
        raise InputError(f"{hs.source}: the {config.channel} fit needs the regions {', '.join(needed)};"
                         f" missing {', '.join(missing)} (run 'ewpolar run' with --region all or"
                         f" --region {','.join(needed)})")


def check_free_normalisations(config: AnalysisConfig) -> None:
    """Warn about a free normalisation whose region is not fitted (it floats unconstrained)."""
    for sample, region in config.fit.free_normalisations.items():
        if region not in config.fit.control_regions and region != SIGNAL_REGION:
            log.warning("fit.free_normalisations.%s: region '%s' is not fitted; mu_%s is"
                        " constrained only by the other regions", sample, region, sample)


def control_channels(config: AnalysisConfig, hs: HistogramSet,
                     normfactors: Mapping[str, list[str]]) -> dict[str, dict[str, SampleInput]]:
    """One channel of ``fit.control_observable`` per control region, every MC sample with
    its ``normfactors``; none without control regions."""
    if not config.fit.control_regions:
        return {}
    obs = config.fit.control_observable
    if obs is None:
        raise ConfigError(f"{config.source or 'config'}: fit.control_observable: required when"
                          " fit.control_regions is given")
    return {region: {d: sample_input(config, hs, d, region, obs, normfactors[d])
                     for d in mc_samples(config)}
            for region in config.fit.control_regions}
