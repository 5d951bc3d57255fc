"""Machinery shared by the analysis processors: weights, systematics, regions, filling.

:class:`AnalysisProcessor` is a coffea ``ProcessorABC``; a channel subclass says
which histograms it books (:meth:`AnalysisProcessor.hist_specs`) and how it
computes their observables (:meth:`AnalysisProcessor.feature_functions`).

Per chunk, ``process(events)``:

1. builds the event weight with coffea's ``Weights``: ``genWeight`` (if present)
   × ``xsec_fb × luminosity_fb / sumw`` (from the fileset metadata; both needed,
   else 1, with a note), then one weight per configured systematic;
2. selects objects and evaluates each region's cuts (a ``PackedSelection``) for
   the nominal jets, and again for each JES shift;
3. fills every histogram for every region and systematic category, and records
   the nominal cutflow.

Systematic categories (the ``systematic`` axis), named after the config's
systematics keys (``luminosity`` is shortened to ``lumi``):

* ``nominal``
* ``normsys`` (e.g. luminosity): ``lumi_up`` / ``lumi_down`` = nominal × (1 ± size)
* ``scale``: ``scale_up`` / ``scale_down``, the envelope (max / min per event)
  of the six 7-point variations of LHEScaleWeight relative to its nominal
  member (index 4 of nine; the (μR, μF) = (0.5, 2) and (2, 0.5) members are
  left out). ``mode: all`` instead gives ``scale_0`` … ``scale_8``, one per member
  in the NanoAOD (μR, μF) order (an eight-member array is the nine without the
  nominal).
* ``pdf``: ``pdf_up`` / ``pdf_down`` = nominal × (1 ± δ) with, relative to member 0,
  δ = √(Σ_i (w_i/w_0 − 1)²) (``pdf_scheme: hessian``) or the standard deviation
  of w_i/w_0 (``pdf_scheme: replicas``).
* ``jes``: ``jes_up`` / ``jes_down``, shape variations: jets rebuilt from
  ``Jet_{pt,mass}_jesTotal{Up,Down}``, MET from ``MET_{pt,phi}_jesTotal{Up,Down}``,
  object and event selection and observables recomputed, nominal weight.
* ``correction`` (e.g. the ssWW K-factors): ``<key>_up`` / ``<key>_down``; the
  nominal K multiplies the nominal weight (see :meth:`AnalysisProcessor._correction`).
* channel extras: ``cp_int`` / ``cp_quad`` of the WH signal (:mod:`processors.wh`).

Classifier score templates (``template_<name>``) are filled only when
:meth:`AnalysisProcessor._classifier_scores` returns scores.

A systematic whose branches the input lacks is skipped and a line is added to
``notes``; data (sample kind "data") get no weights and no systematics.

Output of ``process`` (every number adds up under ``coffea.processor.accumulate``)::

    {
      "hists":   {name: hist.Hist},   # axes: dataset, region, systematic, observable(s)
      "cutflow": {dataset: {region: {"cuts": ["all events", cut, ...],
                                     "raw": [n, ...], "weighted": [w, ...]}}},
      "entries": {dataset: number of events processed},
      "notes":   {"<dataset>: <what was skipped or assumed>", ...},   # a set
    }

Cutflows are cumulative (nominal weights), in the region's cut order; their
lists add up entry by entry across chunks (:mod:`selections.cutflow`) and are
written by ``json`` as plain lists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import awkward as ak
import hist
import numpy as np
from coffea import processor
from coffea.analysis_tools import Weights

from analysis.config import AnalysisConfig, Region, load_config
from analysis.errors import ConfigError
from selections.cutflow import cutflow_counts
from selections.objects import JES_VARIATIONS, build_objects, has_jes_variations
from selections.regions import region_cuts, region_selection, resolve_regions
from selections.variables import EventVariables

__all__ = [
    "NOMINAL",
    "AnalysisProcessor",
    "FeatureContext",
    "HistSpec",
    "SampleInfo",
]

log = logging.getLogger(__name__)

NOMINAL = "nominal"

#: seven-point scale envelope members of a nine-member LHEScaleWeight
#: (NanoAOD order (μR, μF): 0 (½,½) 1 (½,1) 2 (½,2) 3 (1,½) 4 (1,1) 5 (1,2) 6 (2,½) 7 (2,1) 8 (2,2))
_SCALE_ENVELOPE_9 = (0, 1, 3, 5, 7, 8)
_SCALE_NOMINAL_9 = 4


@dataclass(frozen=True)
class HistSpec:
    """A histogram: its name and the config ``histograms`` keys of its observable axes."""

    name: str
    axes: tuple[str, ...]


@dataclass(frozen=True)
class SampleInfo:
    """What the processor knows about the dataset of a chunk."""

    dataset: str
    kind: str
    polarization: str | None
    xsec_fb: float | None
    sumw: float | None

    @property
    def is_data(self) -> bool:
        return self.kind == "data"


@dataclass
class FeatureContext:
    """What observables are computed from: all events of a chunk for one JES variation.

    ``region`` is the region being filled; only its ``neutrino_rule`` may change an
    observable (features are cached per variation and neutrino rule, and computed
    once for all events; the processor then takes each region's selected events).
    """

    events: ak.Array
    variables: EventVariables
    region: Region
    notes: set[str]

    @property
    def objects(self):
        return self.variables.objects

    def p4(self, kind: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(px, py, pz, E) of the n-th leading "lepton", "jet" or "bjet" (NaN where absent), GeV."""
        getter = {"lepton": self.variables.lepton_p4, "jet": self.variables.jet_p4,
                  "bjet": self.variables.bjet_p4}[kind]
        return getter(n)

    def met_pxpy(self) -> tuple[np.ndarray, np.ndarray]:
        """(px, py) of the missing transverse momentum, GeV."""
        return self.variables.met_pxpy

    @property
    def met(self) -> ak.Array:
        """MET as records with ``pt`` and ``phi`` (for the awkward-level observable helpers)."""
        return ak.zip({"pt": self.objects.met_pt, "phi": self.objects.met_phi})


def _category_prefix(key: str) -> str:
    return "lumi" if key in ("luminosity", "lumi") else key


def _flat(array: Any) -> np.ndarray:
    return np.asarray(ak.to_numpy(array), dtype=np.float64)


def _fixed_width(array: ak.Array, n_events: int) -> np.ndarray | None:
    """A jagged per-event array with one common length as a 2D numpy array, else None."""
    counts = np.asarray(ak.to_numpy(ak.num(array, axis=1)))
    if n_events == 0:
        return np.zeros((0, 0))
    if not np.all(counts == counts[0]):
        return None
    return np.asarray(ak.to_numpy(ak.flatten(array)), dtype=np.float64).reshape(n_events,
                                                                               int(counts[0]))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.ones(np.broadcast_shapes(num.shape, den.shape))
    np.divide(num, den, out=out, where=den != 0)
    return out


class AnalysisProcessor(processor.ProcessorABC):
    """Base of the channel processors (see the module docstring for what it does).

    Args:
        config: validated analysis config (or a path / channel name for ``load_config``).
        regions: region names to run; None (or "all") runs every region of the config.

    Raises:
        ConfigError: an unknown region, a config of another channel, or a
            histogram whose observable the processor cannot compute.
    """

    #: channel of the configs this processor accepts ("ssww" or "wh")
    channel: ClassVar[str] = ""

    def __init__(self, config: AnalysisConfig | str | Path,
                 regions: Sequence[str] | str | None = None) -> None:
        if not isinstance(config, AnalysisConfig):
            config = load_config(config)
        if config.channel != self.channel:
            raise ConfigError(f"{config.source or 'config'}: channel: {type(self).__name__} needs a "
                              f"'{self.channel}' config, got '{config.channel}'")
        self.config = config
        self.regions = resolve_regions(config, regions)
        known = self.feature_functions()
        for spec in self.hist_specs():
            for key in spec.axes:
                if key not in known:
                    raise ConfigError(
                        f"{config.source or 'config'}: histograms.{key}: {type(self).__name__} "
                        f"cannot compute '{key}' (known: {', '.join(sorted(known))})")
        # correction files are read now (small JSON) so that remote workers need no file access
        self._correction_json = {
            key: config.resolve(s.file).read_text(encoding="utf-8")
            for key, s in config.systematics.items()
            if s.kind == "correction" and s.file is not None
        }
        self._corrections: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_corrections"] = {}  # rebuilt from the JSON text on first use
        return state

    # -- what a channel defines ---------------------------------------------------------
    def hist_specs(self) -> list[HistSpec]:
        """The histograms to book: by default one 1D histogram per config ``histograms`` key."""
        return [HistSpec(name, (name,)) for name in self.config.histograms]

    def feature_functions(self) -> dict[str, Callable[[FeatureContext], np.ndarray]]:
        """Observable name → function of a :class:`FeatureContext`.

        A function returns, for all events of the chunk, an array of shape
        ``(n,)`` (one entry per event) or ``(n, k)`` (k entries per event, e.g. one
        per lepton, each filled with the event's weight). NaN entries (an event
        without the objects needed) are not filled.
        """
        return {
            "met": lambda c: c.variables.met,
            "mll": lambda c: c.variables.mll,
            "dr_ll": lambda c: c.variables.dr_ll,
            "lep1_pt": lambda c: c.variables.lepton(0, "pt"),
            "lep2_pt": lambda c: c.variables.lepton(1, "pt"),
            "lep1_eta": lambda c: c.variables.lepton(0, "eta"),
            "lep2_eta": lambda c: c.variables.lepton(1, "eta"),
            "n_jets": lambda c: c.variables.n_jets.astype(np.float64),
            "n_bjets": lambda c: c.variables.n_bjets.astype(np.float64),
            "jet1_pt": lambda c: c.variables.jet1_pt,
            "jet2_pt": lambda c: c.variables.jet2_pt,
            "jet1_eta": lambda c: c.variables.jet(0, "eta"),
            "jet2_eta": lambda c: c.variables.jet(1, "eta"),
            "mjj": lambda c: c.variables.mjj,
            "dy_jj": lambda c: c.variables.dy_jj,
            "mbb": lambda c: c.variables.mbb,
        }

    #: observables that do not change with the JES variation (computed once per chunk)
    jes_independent: ClassVar[frozenset[str]] = frozenset()

    def _classifier_scores(self, events_sel: ak.Array,
                           features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """Classifier scores of the selected events: the hook for the ONNX models.

        Called for every region and every JES variation (the features are then
        the shifted ones), so the templates get their ``jes_up``/``jes_down`` shapes.

        Args:
            events_sel: the events that pass the region (NanoEvents).
            features: the histogrammed observables of those events (name → array).

        Returns:
            ``{model name: score per event}`` (probability of the positive class,
            one float per selected event), or None when no classifier is
            evaluated. With scores, every config ``templates`` entry whose two
            models are present is filled as a 2D histogram ``template_<name>``
            (axes ``score_x``, ``score_y``, uniform on [0, 1]). Until the ONNX
            models are wired in this returns None and no template is filled.
        """
        return None

    # -- the coffea interface ------------------------------------------------------------
    def process(self, events: ak.Array) -> dict[str, Any]:
        meta = dict(events.metadata or {})
        dataset = str(meta.get("dataset", "unknown"))
        notes: set[str] = set()
        sample = self._sample_info(dataset, meta, notes)
        out = self._empty_output(dataset, len(events))

        nominal = EventVariables(build_objects(events, self.config.objects, NOMINAL, notes))
        weights, categories = self._weights(events, sample, nominal, notes)
        variations: list[tuple[str, EventVariables]] = [(NOMINAL, nominal)]
        variations += self._jes_variations(nominal, sample, notes)

        cache: dict[tuple[str, str, str], np.ndarray] = {}
        for category, variables in variations:
            for name in self.regions:
                region = self.config.regions[name]
                selection = region_selection(variables, region)
                cuts = region_cuts(region)
                mask = selection.all(*cuts)
                if category == NOMINAL:
                    out["cutflow"][dataset][name] = cutflow_counts(selection, cuts, weights)
                    cat_weights = {cat: weights.weight(mod)[mask] for cat, mod in categories.items()}
                    cat_weights.update(self._extra_weights(events, sample, weights, mask, notes))
                else:
                    cat_weights = {category: weights.weight()[mask]}
                if not np.any(mask):
                    continue
                ctx = FeatureContext(events, variables, region, notes)
                features = self._features(ctx, category, mask, cache)
                self._fill(out["hists"], dataset, name, features, cat_weights)
                scores = self._classifier_scores(events[mask], features)
                if scores is not None:
                    self._fill_templates(out["hists"], dataset, name, scores, cat_weights)

        out["notes"] = {f"{dataset}: {n}" for n in notes}
        for n in sorted(notes):
            log.debug("%s: %s", dataset, n)
        return out

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator

    # -- helpers -------------------------------------------------------------------------
    def _empty_output(self, dataset: str, n_events: int) -> dict[str, Any]:
        return {
            "hists": {spec.name: self._book(spec) for spec in self.hist_specs()},
            "cutflow": {dataset: {}},
            "entries": {dataset: int(n_events)},
            "notes": set(),
        }

    def _category_axes(self) -> list[hist.axis.AxesMixin]:
        return [
            hist.axis.StrCategory([], name="dataset", label="dataset", growth=True),
            hist.axis.StrCategory(self.regions, name="region", label="region"),
            hist.axis.StrCategory([], name="systematic", label="systematic", growth=True),
        ]

    def _book(self, spec: HistSpec) -> hist.Hist:
        axes = self._category_axes()
        for key in spec.axes:
            ax = self.config.histograms[key]
            if ax.edges is not None:
                axes.append(hist.axis.Variable(ax.edges, name=key, label=ax.label or key))
            else:
                axes.append(hist.axis.Regular(ax.bins, ax.start, ax.stop, name=key,
                                              label=ax.label or key))
        return hist.Hist(*axes, storage=hist.storage.Weight(), name=spec.name)

    def _features(self, ctx: FeatureContext, category: str, mask: np.ndarray,
                  cache: dict[tuple[str, str, str], np.ndarray]) -> dict[str, np.ndarray]:
        """The observables of the histograms for the events in ``mask``."""
        functions = self.feature_functions()
        out = {}
        for spec in self.hist_specs():
            for key in spec.axes:
                variation = NOMINAL if key in self.jes_independent else category
                ck = (key, variation, ctx.region.neutrino_rule)
                if ck not in cache:
                    cache[ck] = np.asarray(functions[key](ctx), dtype=np.float64)
                out[key] = cache[ck][mask]
        return out

    def _fill(self, hists: dict[str, hist.Hist], dataset: str, region: str,
              features: Mapping[str, np.ndarray], cat_weights: Mapping[str, np.ndarray]) -> None:
        for spec in self.hist_specs():
            values = [features[key] for key in spec.axes]
            n = len(values[0])
            width = max(v.shape[1] if v.ndim == 2 else 1 for v in values)
            cols = [np.broadcast_to(v.reshape(n, -1), (n, width)).reshape(-1) for v in values]
            ok = np.ones(len(cols[0]), dtype=bool)
            for c in cols:
                ok &= ~np.isnan(c)
            cols = [c[ok] for c in cols]
            for cat, w in cat_weights.items():
                wf = np.repeat(np.asarray(w, dtype=np.float64), width)[ok]
                hists[spec.name].fill(dataset=dataset, region=region, systematic=cat,
                                      **dict(zip(spec.axes, cols, strict=True)), weight=wf)

    def _fill_templates(self, hists: dict[str, hist.Hist], dataset: str, region: str,
                        scores: Mapping[str, np.ndarray],
                        cat_weights: Mapping[str, np.ndarray]) -> None:
        for name, tmpl in self.config.templates.items():
            if tmpl.x not in scores or tmpl.y not in scores:
                continue
            key = f"template_{name}"
            if key not in hists:
                hists[key] = hist.Hist(
                    *self._category_axes(),
                    hist.axis.Regular(tmpl.x_bins, 0.0, 1.0, name="score_x", label=tmpl.x),
                    hist.axis.Regular(tmpl.y_bins, 0.0, 1.0, name="score_y", label=tmpl.y),
                    storage=hist.storage.Weight(), name=key,
                )
            for cat, w in cat_weights.items():
                hists[key].fill(dataset=dataset, region=region, systematic=cat,
                                score_x=np.asarray(scores[tmpl.x], dtype=np.float64),
                                score_y=np.asarray(scores[tmpl.y], dtype=np.float64), weight=w)

    def _sample_info(self, dataset: str, meta: Mapping[str, Any], notes: set[str]) -> SampleInfo:
        sample = self.config.samples.get(dataset)
        kind = meta.get("kind") or (sample.kind if sample else None)
        if kind is None:
            kind = "background"
            notes.add("sample: no 'kind' in the metadata or the config; treated as simulation")
        pol = meta.get("polarization") or (sample.polarization if sample else None)

        def number(key: str) -> float | None:
            value = meta.get(key)
            try:
                return float(value) if value is not None else None
            except (TypeError, ValueError):
                notes.add(f"sample: metadata '{key}' = {value!r} is not a number; ignored")
                return None

        return SampleInfo(dataset=dataset, kind=str(kind), polarization=pol,
                          xsec_fb=number("xsec_fb"), sumw=number("sumw"))

    def _weights(self, events: ak.Array, sample: SampleInfo, nominal: EventVariables,
                 notes: set[str]) -> tuple[Weights, dict[str, str | None]]:
        """The ``Weights`` of the chunk and the systematic category → weight modifier map."""
        n = len(events)
        weights = Weights(n, storeIndividual=True)
        categories: dict[str, str | None] = {NOMINAL: None}
        if sample.is_data:
            return weights, categories
        fields = set(events.fields)
        if "genWeight" in fields:
            weights.add("genWeight", _flat(events.genWeight))
        else:
            notes.add("weights: no genWeight branch; every event has generator weight 1")
        if sample.xsec_fb is not None and sample.sumw:
            norm = sample.xsec_fb * self.config.luminosity_fb / sample.sumw
        else:
            norm = 1.0
            notes.add("weights: no xsec_fb/sumw in the metadata; not normalised to the "
                      "luminosity (weight = genWeight)")
        weights.add("norm", np.full(n, norm))

        for key, syst in self.config.systematics.items():
            prefix = _category_prefix(key)
            if syst.kind == "normsys":
                if syst.size is None:
                    notes.add(f"{key}: normsys without a size; skipped")
                    continue
                ones = np.ones(n)
                weights.add(prefix, ones, ones * (1 + syst.size), ones * (1 - syst.size))
                categories |= {f"{prefix}_up": f"{prefix}Up", f"{prefix}_down": f"{prefix}Down"}
            elif syst.kind == "scale":
                categories |= self._scale_weights(events, weights, prefix, syst.mode, notes)
            elif syst.kind == "pdf":
                categories |= self._pdf_weights(events, weights, prefix, syst.pdf_scheme, notes)
            elif syst.kind == "correction":
                categories |= self._correction(key, prefix, sample, nominal, weights, notes)
            # "jes" is a shape variation, handled in _jes_variations
        return weights, categories

    def _scale_weights(self, events: ak.Array, weights: Weights, prefix: str, mode: str,
                       notes: set[str]) -> dict[str, str]:
        if "LHEScaleWeight" not in events.fields:
            notes.add(f"{prefix}: no LHEScaleWeight branch; scale variations skipped")
            return {}
        n = len(events)
        w = _fixed_width(events.LHEScaleWeight, n)
        if w is None or (n and w.shape[1] not in (8, 9)):
            notes.add(f"{prefix}: LHEScaleWeight does not have 9 (or 8) members in every event; "
                      "scale variations skipped")
            return {}
        if n == 0:
            w = np.ones((0, 9))
        elif w.shape[1] == 8:  # nominal member left out: put it back as 1
            w = np.insert(w, _SCALE_NOMINAL_9, 1.0, axis=1)
        ratios = _ratio(w, w[:, [_SCALE_NOMINAL_9]])
        if mode == "all":
            names = [str(i) for i in range(9)]
            variations = [ratios[:, i].copy() for i in range(9)]
            weights.add_multivariation(prefix, np.ones(n), names, variations,
                                       [v.copy() for v in variations])
            return {f"{prefix}_{i}": f"{prefix}_{i}Up" for i in names}
        env = ratios[:, list(_SCALE_ENVELOPE_9)]
        up = env.max(axis=1) if n else np.ones(0)
        down = env.min(axis=1) if n else np.ones(0)
        weights.add(prefix, np.ones(n), up, down)
        return {f"{prefix}_up": f"{prefix}Up", f"{prefix}_down": f"{prefix}Down"}

    def _pdf_weights(self, events: ak.Array, weights: Weights, prefix: str, scheme: str,
                     notes: set[str]) -> dict[str, str]:
        if "LHEPdfWeight" not in events.fields:
            notes.add(f"{prefix}: no LHEPdfWeight branch; PDF variations skipped")
            return {}
        n = len(events)
        w = _fixed_width(events.LHEPdfWeight, n)
        if w is None or (n and w.shape[1] < 2):
            notes.add(f"{prefix}: LHEPdfWeight has no common member count (≥ 2) in every event; "
                      "PDF variations skipped")
            return {}
        if n == 0:
            delta = np.zeros(0)
        else:
            rel = _ratio(w[:, 1:], w[:, :1]) - 1.0
            if scheme == "replicas":
                delta = rel.std(axis=1, ddof=1) if rel.shape[1] > 1 else np.zeros(n)
            else:
                delta = np.sqrt(np.sum(rel**2, axis=1))
                if w.shape[1] != 31:
                    notes.add(f"{prefix}: LHEPdfWeight has {w.shape[1]} members, combined as "
                              f"{w.shape[1] - 1} Hessian eigenvectors (set pdf_scheme: replicas "
                              "for a replica set)")
        weights.add(prefix, np.ones(n), 1.0 + delta, np.clip(1.0 - delta, 0.0, None))
        return {f"{prefix}_up": f"{prefix}Up", f"{prefix}_down": f"{prefix}Down"}

    def _correction(self, key: str, prefix: str, sample: SampleInfo, nominal: EventVariables,
                    weights: Weights, notes: set[str]) -> dict[str, str]:
        """A correctionlib correction as a weight with up/down variations.

        The correction named ``key`` in the file (or its only correction) is
        evaluated with inputs by name: ``polarization`` (the sample's
        polarization state, "none" for other samples), ``mjj`` (m_jj of the two
        leading nominal jets, GeV; 0 without two jets) and ``syst`` ("nominal",
        "up", "down"). The K-factor is evaluated once, at the nominal m_jj, and
        also applies to the JES-shifted selections.
        """
        if key not in self._corrections:
            import correctionlib

            cset = correctionlib.CorrectionSet.from_string(self._correction_json[key])
            names = list(cset)
            if key in names:
                self._corrections[key] = cset[key]
            elif len(names) == 1:
                self._corrections[key] = cset[names[0]]
            else:
                raise ConfigError(f"systematics.{key}.file: no correction named '{key}' "
                                  f"(corrections: {', '.join(names)})")
        corr = self._corrections[key]
        n = len(nominal.n_leptons)
        values: dict[str, dict[str, Any]] = {}
        for syst in ("nominal", "up", "down"):
            args = []
            for var in corr.inputs:
                if var.name == "polarization":
                    args.append(sample.polarization or "none")
                elif var.name == "mjj":
                    args.append(np.nan_to_num(nominal.mjj, nan=0.0))
                elif var.name == "syst":
                    args.append(syst)
                else:
                    notes.add(f"{key}: correction input '{var.name}' is not known; skipped")
                    return {}
            values[syst] = np.broadcast_to(np.asarray(corr.evaluate(*args), dtype=np.float64),
                                           (n,)).copy()
        weights.add(prefix, values["nominal"], values["up"], values["down"])
        return {f"{prefix}_up": f"{prefix}Up", f"{prefix}_down": f"{prefix}Down"}

    def _jes_variations(self, nominal: EventVariables, sample: SampleInfo,
                        notes: set[str]) -> list[tuple[str, EventVariables]]:
        keys = [k for k, s in self.config.systematics.items() if s.kind == "jes"]
        if not keys or sample.is_data:
            return []
        if not has_jes_variations(nominal.objects.events):
            notes.add("jes: no Jet_pt_jesTotalUp/Down branches; JES variations skipped")
            return []
        prefix = _category_prefix(keys[0])
        out = []
        for variation in JES_VARIATIONS:
            direction = variation.split("_", 1)[1]
            out.append((f"{prefix}_{direction}",
                        EventVariables(nominal.objects.varied(variation))))
        return out

    def _extra_weights(self, events: ak.Array, sample: SampleInfo, weights: Weights,
                       mask: np.ndarray, notes: set[str]) -> dict[str, np.ndarray]:
        """Additional nominal-selection categories of a channel (none by default)."""
        return {}
