"""The base of the analysis processors: the per-chunk loop of selection, weights and filling.

:class:`AnalysisProcessor` is a coffea ``ProcessorABC``; a channel subclass says
which histograms it books (:meth:`AnalysisProcessor.hist_specs`); the
observables are the features of :data:`ewpolar.models.features.FEATURES`.

Per chunk, ``process(events)``:

1. selects objects and evaluates each region's cuts (:mod:`ewpolar.selections.regions`)
   for the nominal jets, and again for each JES shift (a shift changes no lepton
   cut, so the shifted objects are made only for the events that pass some
   region's lepton cuts);
2. builds the event weights and their systematic variations
   (:mod:`ewpolar.processors.weights`); the up/down weights are evaluated only
   for the events some nominal region selects (the only ones they are used for);
3. records the nominal cutflow; computes every observable once per JES variation
   for the events that some region selects, and fills every histogram for every
   region and systematic category (:mod:`ewpolar.processors.filling`);
4. with classifiers (:mod:`ewpolar.processors.scoring`), scores the events of the
   templates' regions once per variation and fills each template whose two
   models are present, per region and systematic category, as a 2D histogram of
   the two scores.

Systematic categories (the ``systematic`` axis) are named by
:mod:`ewpolar.core.naming`; channel extras (e.g. ``cp_int`` / ``cp_quad`` of the
WH signal, :mod:`ewpolar.processors.wh`) come from
:meth:`AnalysisProcessor._extra_weights`.

Output of ``process`` (every number adds up under ``coffea.processor.accumulate``)::

    {
      "hists":   {name: hist.Hist},   # axes: dataset, region, systematic, observable(s)
      "cutflow": {dataset: {region: {"cuts": ["all events", cut, ...],
                                     "raw": [n, ...], "weighted": [w, ...]}}},
      "entries": {dataset: number of events processed},
      "bad_weights": {dataset: events whose genWeight is NaN or infinite (weight 0)},
      "notes":   {"<dataset>: <what was skipped or assumed>", ...},   # a set
    }

Cutflows are cumulative (nominal weights), in the region's cut order; their
lists add up entry by entry across chunks (:mod:`ewpolar.selections.cutflow`) and are
written by ``json`` as plain lists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import awkward as ak
import numpy as np
from coffea import processor
from coffea.analysis_tools import Weights
from ewpolar.core.config import AnalysisConfig, load_config
from ewpolar.core.errors import BranchTypeError, ConfigError, MissingBranchesError
from ewpolar.core.naming import NOMINAL
from ewpolar.inputs.adapt import adapt_events, preload_columns, shape_categories
from ewpolar.inputs.profile import Profile
from ewpolar.models.features import FEATURES, TRUTH_BRANCHES, TRUTH_FEATURES, FeatureContext
from ewpolar.processors.filling import (
    HistFiller,
    HistSpec,
    TemplateFillers,
    book_histogram,
    book_template,
    template_histogram,
)
from ewpolar.processors.scoring import classifier_inputs, classifier_scores, find_classifiers
from ewpolar.processors.weights import (
    EventWeights,
    SampleInfo,
    nonfinite_generator_weights,
    sample_info,
)
from ewpolar.selections.cutflow import cutflow_from_masks
from ewpolar.selections.objects import build_objects, object_branches
from ewpolar.selections.regions import cumulative_masks, region_cuts, resolve_regions
from ewpolar.selections.shapes import shape_variations
from ewpolar.selections.variables import EventVariables

__all__ = ["AnalysisProcessor", "check_branch_types"]

log = logging.getLogger(__name__)


def _chunk_mask(mask: np.ndarray, variables: EventVariables, n_events: int) -> np.ndarray:
    """A mask of the events of ``variables`` as a mask of all events of the chunk."""
    if variables.events_index is None:
        return mask
    out = np.zeros(n_events, dtype=bool)
    out[variables.events_index] = mask
    return out


def _selected_subsets(events: ak.Array, variations: Sequence[tuple[str, EventVariables]],
                      selected: np.ndarray) -> tuple[ak.Array, dict[str, EventVariables]]:
    """The events ``selected`` of a chunk and, per JES variation, their variables.

    The variables are computed on first use; the variations share the lepton quantities.
    ``selected`` must be among the events of every variation's variables.
    """
    sub_events = events[selected]
    subsets: dict[str, EventVariables] = {}
    nominal = None
    for category, variables in variations:
        own = variables.events_index
        index = selected if own is None else np.searchsorted(own, selected)
        subsets[category] = variables.subset(index, sub_events, leptons_from=nominal)
        if nominal is None:
            nominal = subsets[category]
    return sub_events, subsets


#: branches whose values must be floating point (momenta, angles, masses, weights)
_FLOAT_FIELDS = {"Electron": ("pt", "eta", "phi", "mass"), "Muon": ("pt", "eta", "phi", "mass"),
                 "Jet": ("pt", "eta", "phi", "mass"), "MET": ("pt", "phi")}


def _primitive(array: ak.Array) -> str | None:
    """The numpy type of an array's values, from its form (nothing is read)."""
    form = array.layout.form
    while hasattr(form, "content"):
        form = form.content
    return getattr(form, "primitive", None)


def check_branch_types(events: ak.Array) -> None:
    """Refuse a file whose branches hold values of the wrong type.

    An int8 ``Muon_pt`` would pass every cut in silence with wrapped-around values,
    and floating-point ``event`` numbers cannot choose a k-fold model; both are
    properties of the file, reported as such (and skipped with ``--skip-bad-files``).

    Raises:
        BranchTypeError: one line naming the branch and its type.
    """
    fields = set(events.fields)
    for collection, names in _FLOAT_FIELDS.items():
        if collection not in fields:
            continue
        present = set(ak.fields(events[collection]))
        for name in names:
            kind = _primitive(events[collection][name]) if name in present else None
            if kind is not None and not kind.startswith("float"):
                raise BranchTypeError(f"branch {collection}_{name} holds {kind} values; "
                                      "momenta and angles must be floating point")
    if "genWeight" in fields:
        kind = _primitive(events.genWeight)
        if kind is not None and not kind.startswith("float"):
            raise BranchTypeError(f"branch genWeight holds {kind} values; it must be floating point")
    if "event" in fields:
        kind = _primitive(events.event)
        if kind is not None and not kind.startswith(("int", "uint")):
            raise BranchTypeError(f"branch event holds {kind} values; event numbers must be "
                                  "integers (they choose each classifier's fold model)")


class AnalysisProcessor(processor.ProcessorABC):
    """Base of the channel processors (see the module docstring for what it does).

    Args:
        config: validated analysis config (or a path / channel name for ``load_config``).
        regions: region names to run; None (or "all") runs every region of the config.

    Raises:
        ConfigError: an unknown region, a config of another channel, or a
            histogram whose observable is not a known feature.
    """

    #: channel of the configs this processor accepts ("ssww" or "wh")
    channel: ClassVar[str] = ""
    #: the channel's fit uses classifier score templates (missing models are noted)
    score_templates: ClassVar[bool] = False
    #: how the input files map onto the collections the selections read (None: NanoAOD)
    input_profile: Profile | None = None
    #: observables that do not change with the JES variation (computed once per chunk)
    jes_independent: ClassVar[frozenset[str]] = TRUTH_FEATURES
    #: collections every region needs; a file without them is a bad input file
    REQUIRED_COLLECTIONS = ("Electron", "Muon", "Jet", "MET")

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
        self._classifiers, self._model_notes = find_classifiers(
            config, known, type(self).__name__, self.score_templates)
        #: template name → the regions of this run it is filled in (config order of the run)
        self._template_regions = {
            name: [r for r in self.regions if t.regions is None or r in t.regions]
            for name, t in config.templates.items()}
        #: regions whose events some template needs scores for
        self._scored_regions = frozenset(r for rs in self._template_regions.values() for r in rs)
        self._event_weights = EventWeights(config)

    # -- what a channel defines ---------------------------------------------------------
    def hist_specs(self) -> list[HistSpec]:
        """The histograms to book: by default one 1D histogram per config ``histograms`` key."""
        return [HistSpec(name, (name,)) for name in self.config.histograms]

    def feature_functions(self) -> Mapping[str, Callable[[FeatureContext], np.ndarray]]:
        """Observable name → function of a :class:`~ewpolar.models.features.FeatureContext`.

        The registry :data:`ewpolar.models.features.FEATURES`: a function returns, for
        the events of the context, an array of shape ``(n,)`` (one entry per event)
        or ``(n, k)`` (k entries per event, e.g. one per lepton, each filled with the
        event's weight). NaN entries (an event without the objects needed) are not
        filled.
        """
        return FEATURES

    def columns(self) -> frozenset[str]:
        """Branches :meth:`process` may read, for the runner to preload in bulk.

        The objects' branches (and the JES-shifted ones with a ``jes``
        systematic), ``genWeight``, the LHE weights the systematics use,
        ``event`` with classifiers, the generator record when a generator-level
        feature is histogrammed or a classifier input, and what
        :meth:`extra_columns` adds. A file that lacks one of them is fine (it is
        not asked for); one that :meth:`process` reads without it being listed is
        read lazily. The results do not depend on this list, only the speed: a
        test checks it against coffea's access log of a lazy run.
        """
        kinds = {s.kind for s in self.config.systematics.values()}
        names = set(object_branches(jes="jes" in kinds)) | {"genWeight"}
        if "scale" in kinds:
            names.add("LHEScaleWeight")
        if "pdf" in kinds:
            names.add("LHEPdfWeight")
        if self._classifiers:
            names.add("event")
        used = {key for spec in self.hist_specs() for key in spec.axes} | set(self.classifier_inputs)
        if used & TRUTH_FEATURES:
            names |= TRUTH_BRANCHES
        return preload_columns(self.input_profile, frozenset(names | self.extra_columns()))

    def extra_columns(self) -> frozenset[str]:
        """Branches a channel reads besides those of :meth:`columns` (none by default)."""
        return frozenset()

    def _extra_weights(self, events: ak.Array, sample: SampleInfo, weights: Weights,
                       mask: np.ndarray, notes: set[str]) -> dict[str, np.ndarray]:
        """Additional nominal-selection categories of a channel (none by default)."""
        return {}

    @property
    def models(self) -> dict[str, dict[str, str]]:
        """The ONNX models this processor evaluates: path, sha256 and kind of each (for
        the run's metrics, so that a result names the exact models behind it)."""
        return {name: {"path": str(c.path), "sha256": c.card.sha256, "kind": c.card.kind}
                for name, c in sorted(self._classifiers.items())}

    # -- classifiers ---------------------------------------------------------------------
    @property
    def classifier_inputs(self) -> tuple[str, ...]:
        """Observables the loaded classifiers take (union of their cards' inputs, in order)."""
        return classifier_inputs(self._classifiers)

    def _classifier_scores(self, events_sel: ak.Array,
                           features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """Classifier scores of the selected events.

        Called once per variation (nominal, then each JES shift: the features
        are then the shifted ones, so the templates get their ``jes_up`` /
        ``jes_down`` shapes) with the events that pass any of the regions; each
        region's templates take their events' scores.

        Args:
            events_sel: the events that pass any region (NanoEvents); their
                ``event`` numbers choose each classifier's fold model.
            features: observables of those events (name → array): every input
                of the loaded classifiers and the histogrammed observables (the
                latter with the neutrino rule of the first region).

        Returns:
            ``{model name: score per event}`` (probability of the positive class,
            one float per selected event), or None when no classifier is loaded.
            With scores, every config ``templates`` entry whose two models are
            present is filled as a 2D histogram ``template_<name>`` (axes
            ``score_x``, ``score_y``, uniform on [0, 1]).

        Raises:
            InputError: an input that is not one number per event.
        """
        if not self._classifiers:
            return None
        return classifier_scores(self._classifiers, events_sel, features)

    @property
    def _may_score(self) -> bool:
        """Whether :meth:`_classifier_scores` can return scores (a classifier, or an override)."""
        return bool(self._classifiers) or (
            type(self)._classifier_scores is not AnalysisProcessor._classifier_scores)

    def template_regions(self, name: str) -> list[str]:
        """The regions of this run that template ``name`` is filled in (config order of the run)."""
        return self._template_regions[name]

    # -- weights -------------------------------------------------------------------------
    def _sample_info(self, dataset: str, meta: Mapping[str, Any], notes: set[str]) -> SampleInfo:
        return sample_info(self.config, dataset, meta, notes)

    def _weights(self, events: ak.Array, sample: SampleInfo, nominal: EventVariables,
                 notes: set[str], selected: np.ndarray | None = None
                 ) -> tuple[Weights, dict[str, str | None]]:
        """The ``Weights`` of the chunk and the systematic category → modifier map
        (:meth:`ewpolar.processors.weights.EventWeights.weights`)."""
        return self._event_weights.weights(events, sample, nominal, notes, selected)

    # -- the coffea interface ------------------------------------------------------------
    def process(self, events: ak.Array) -> dict[str, Any]:
        meta = dict(events.metadata or {})
        dataset = str(meta.get("dataset", "unknown"))
        notes: set[str] = set()
        # the input's collections as the selections read them (NanoAOD: as they are)
        events = adapt_events(events, self.input_profile, notes)
        missing = [c for c in self.REQUIRED_COLLECTIONS if c not in events.fields]
        if missing:
            raise MissingBranchesError(
                f"no {', '.join(missing)} branches "
                f"(needs {', '.join(c + '_pt' for c in missing)} and the rest of each collection)")
        check_branch_types(events)
        sample = self._sample_info(dataset, meta, notes)
        out = self._empty_output(dataset, len(events))
        out["bad_weights"][dataset] = nonfinite_generator_weights(events)

        nominal = EventVariables(build_objects(events, self.config.objects, NOMINAL, notes))
        variations: list[tuple[str, EventVariables]] = [(NOMINAL, nominal)]
        variations += shape_variations(nominal, self.config, self.regions, sample.is_data, notes,
                                       shape_categories(self.input_profile))
        # the selections of every variation and region first: the weight variations
        # and the observables are then computed only for the events that some region
        # selects
        masks: dict[tuple[str, str], np.ndarray] = {}
        cumulative: dict[str, list[np.ndarray]] = {}
        for category, variables in variations:
            for name in self.regions:
                passed = cumulative_masks(variables, self.config.regions[name])
                masks[category, name] = _chunk_mask(passed[-1], variables, len(events))
                if category == NOMINAL:
                    cumulative[name] = passed
        nominal_selected = np.flatnonzero(
            np.logical_or.reduce([masks[NOMINAL, name] for name in self.regions]))
        weights, categories = self._weights(events, sample, nominal, notes,
                                            selected=nominal_selected)

        notes.update(self._model_notes)
        can_score = True
        if self._classifiers and "event" not in events.fields:
            can_score = False
            notes.add("templates: no 'event' branch (it chooses each classifier's fold model); "
                      "no score templates filled")

        cache: dict[tuple[str, str, str], np.ndarray] = {}
        # every category's weight once per chunk; each region takes its events
        full_weights = {cat: weights.weight(mod) for cat, mod in categories.items()}
        nominal_weight = full_weights[NOMINAL]
        counted: dict[int, tuple[np.ndarray, int, float, np.ndarray]] = {}
        for name, passed in cumulative.items():
            out["cutflow"][dataset][name] = cutflow_from_masks(
                region_cuts(self.config.regions[name]), passed, len(events), nominal_weight,
                counted)
        selected = np.flatnonzero(np.logical_or.reduce(list(masks.values())))
        sub_events, subsets = _selected_subsets(events, variations, selected)
        filler = HistFiller(out["hists"], self.hist_specs(), self.regions, dataset)
        # regions with selected events, scored together once per variation
        scored: list[tuple[str, np.ndarray, dict[str, np.ndarray], FeatureContext]] = []
        templates = TemplateFillers(self.config.templates, self._template_regions, out["hists"],
                                    dataset)
        for category, _ in variations:
            for name in self.regions:
                region = self.config.regions[name]
                mask = masks[category, name]
                if category == NOMINAL:
                    rows = np.flatnonzero(mask)
                    cat_weights = {cat: w[rows] for cat, w in full_weights.items()}
                    cat_weights.update(self._extra_weights(events, sample, weights, mask, notes))
                else:
                    cat_weights = {category: nominal_weight[mask]}
                if not np.any(mask):
                    continue
                ctx = FeatureContext(sub_events, subsets[category], region, notes,
                                     index=selected, chunk=events)
                features = self._features(ctx, category, mask, cache)
                filler.fill(name, features, cat_weights)
                if can_score and self._may_score and name in self._scored_regions:
                    scored.append((name, mask, cat_weights, ctx))
            if scored:
                self._score_regions(events, category, scored, cache, templates, notes)
            scored.clear()

        filler.finish()
        if can_score and self._may_score:
            templates.finish(filler.categories)
        out["notes"] = {f"{dataset}: {n}" for n in notes}
        for n in sorted(notes):
            log.debug("%s: %s", dataset, n)
        return out

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator

    # -- helpers -------------------------------------------------------------------------
    def _empty_output(self, dataset: str, n_events: int) -> dict[str, Any]:
        hists = {spec.name: book_histogram(self.config, spec, self.regions)
                 for spec in self.hist_specs()}
        for name, tmpl in self.config.templates.items():
            if (tmpl.x in self._classifiers and tmpl.y in self._classifiers
                    and self.template_regions(name)):
                hists[template_histogram(name)] = book_template(name, tmpl,
                                                                self.template_regions(name))
        return {
            "hists": hists,
            "cutflow": {dataset: {}},
            "entries": {dataset: int(n_events)},
            "bad_weights": {dataset: 0},
            "notes": set(),
        }

    def _features(self, ctx: FeatureContext, category: str, mask: np.ndarray,
                  cache: dict[tuple[str, str, str], np.ndarray]) -> dict[str, np.ndarray]:
        """The observables of the histograms for the events in ``mask``."""
        keys = dict.fromkeys(key for spec in self.hist_specs() for key in spec.axes)
        return self._observables(ctx, category, mask, cache, keys)

    def _observables(self, ctx: FeatureContext, category: str, mask: np.ndarray,
                     cache: dict[tuple[str, str, str], np.ndarray],
                     keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The named observables for the events in ``mask``, each computed once per variation
        and neutrino rule.

        ``mask`` is a boolean per event of the chunk; the events it selects must be
        among those of ``ctx`` (with ``ctx.index``, a subset of the chunk).
        """
        functions = self.feature_functions()
        rows = mask if ctx.index is None else mask[ctx.index]
        out = {}
        for key in keys:
            variation = NOMINAL if key in self.jes_independent else category
            ck = (key, variation, ctx.neutrino_rule)
            if ck not in cache:
                cache[ck] = np.asarray(functions[key](ctx), dtype=np.float64)
            out[key] = cache[ck][rows]
        return out

    def _score_regions(self, events: ak.Array, category: str,
                       scored: Sequence[tuple[str, np.ndarray, dict[str, np.ndarray],
                                              FeatureContext]],
                       cache: dict[tuple[str, str, str], np.ndarray],
                       templates: TemplateFillers, notes: set[str]) -> None:
        """Score the events of all ``scored`` regions in one call and fill each region's templates."""
        union = np.zeros(len(events), dtype=bool)
        for _, mask, _, _ in scored:
            union |= mask
        keys = dict.fromkeys([*(key for spec in self.hist_specs() for key in spec.axes),
                              *self.classifier_inputs])
        features = self._observables(scored[0][3], category, union, cache, keys)
        scores = self._classifier_scores(events[union], features)
        if scores is None:
            return
        for name, mask, cat_weights, _ in scored:
            rows = mask[union]
            templates.fill(name, {k: np.asarray(v)[rows] for k, v in scores.items()},
                           cat_weights, notes)

