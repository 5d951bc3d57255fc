"""Machinery shared by the analysis processors: weights, systematics, regions, filling.

:class:`AnalysisProcessor` is a coffea ``ProcessorABC``; a channel subclass says
which histograms it books (:meth:`AnalysisProcessor.hist_specs`) and how it
computes their observables (:meth:`AnalysisProcessor.feature_functions`).

Per chunk, ``process(events)``:

1. selects objects and evaluates each region's cuts (:mod:`ewpolar.selections.regions`)
   for the nominal jets, and again for each JES shift (a shift changes no lepton
   cut, so the shifted objects are made only for the events that pass some
   region's lepton cuts);
2. builds the event weight with coffea's ``Weights``: ``genWeight`` (if present)
   × ``xsec_fb × luminosity_fb / sumw`` (from the fileset metadata; both needed,
   else 1, with a note), then one weight per configured systematic; the up/down
   weights are evaluated only for the events some nominal region selects (the
   only ones they are used for);
3. records the nominal cutflow; computes every observable once per JES variation
   for the events that some region selects, and fills every histogram for every
   region and systematic category (weighted sums per bin added up with numpy and
   numba and written into the ``hist`` histograms once per chunk: the contents of
   ``Hist.fill``).

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
* channel extras: ``cp_int`` / ``cp_quad`` of the WH signal (:mod:`ewpolar.processors.wh`).

Classifier score templates (``template_<name>``): the config's ``models`` that
a ``templates`` entry uses are found at construction (``config.resolve``; the
model card is read, the file's bytes are read once and checked against the
card's sha256, and every input the card lists must be an observable of
:meth:`AnalysisProcessor.feature_functions`). The models' bytes travel with the
pickled processor, so workers need no access to the files; the onnxruntime
session is created on first use in each worker process (one intra-op thread,
keyed by the model's sha256) and reused for every chunk. Once per variation (nominal and
each JES shift, whose inputs are recomputed on the shifted jets and selection)
the events selected by any region are scored in batches; each template whose
two models are present is then filled, per region and systematic category, as a
2D histogram of the two scores. A config without models, or model files that do
not exist, give no templates and a line in ``notes``; a model that does not
match its card is an error.

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
lists add up entry by entry across chunks (:mod:`ewpolar.selections.cutflow`) and are
written by ``json`` as plain lists.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import awkward as ak
import hist
import numba
import numpy as np
from coffea import processor
from coffea.analysis_tools import Weights
from ewpolar.core.config import AnalysisConfig, Region, load_config
from ewpolar.core.errors import ConfigError, InputError, MissingBranchesError
from ewpolar.inputs.adapt import (
    adapt_events,
    add_profile_weights,
    preload_columns,
    shape_categories,
)
from ewpolar.inputs.profile import Profile
from ewpolar.models.runtime import Classifier, ModelCard
from ewpolar.selections.cutflow import cutflow_from_masks
from ewpolar.selections.objects import (
    build_objects,
    flat_parts,
    object_branches,
)
from ewpolar.selections.regions import (
    cumulative_masks,
    region_cuts,
    resolve_regions,
)
from ewpolar.selections.shapes import shape_variations
from ewpolar.selections.variables import EventVariables

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
    """What observables are computed from: the events of a chunk for one JES variation.

    ``events`` and ``variables`` are all events of the chunk or, with ``index``,
    the events ``index`` of the chunk (the processor passes the events that any
    region of any variation selects). ``region`` is the region being filled; only
    its ``neutrino_rule`` may change an observable (features are cached per
    variation and neutrino rule, and computed once for these events; the
    processor then takes each region's selected events).
    """

    events: ak.Array
    variables: EventVariables
    region: Region
    notes: set[str]
    #: chunk indices of ``events`` when they are a subset of the chunk (None: all events)
    index: np.ndarray | None = None
    #: all events of the chunk when ``events`` are a subset (``events = chunk[index]``),
    #: for observables that read flat columns of the chunk directly
    chunk: ak.Array | None = None

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


def _category_prefix(key: str) -> str:
    return "lumi" if key in ("luminosity", "lumi") else key


def _flat(array: Any) -> np.ndarray:
    return np.asarray(ak.to_numpy(array), dtype=np.float64)


def _fixed_width(array: ak.Array, n_events: int) -> np.ndarray | None:
    """A jagged per-event array with one common length as a 2D numpy array, else None.

    The array has the dtype of the input (a view of the read buffer where possible).
    """
    offsets, content = flat_parts(array)
    counts = np.diff(offsets)
    if n_events == 0:
        return np.zeros((0, 0))
    if not np.all(counts == counts[0]):
        return None
    return content.reshape(n_events, int(counts[0]))


#: longest run numpy's pairwise summation adds without splitting it (PW_BLOCKSIZE)
_PAIRWISE_BLOCK = 128


@numba.njit(cache=True, nogil=True, inline="always")
def _pairwise_sum(a, n):
    """numpy's pairwise sum of a[:n] for n <= 128 (the same rounding as ``np.sum``)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - n % 8:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def _hessian_delta(w, rows, out):
    """out[q] = √(Σ_i (w_i/w_0 − 1)²) of row rows[q] (w_i/w_0 = 1 where w_0 = 0): the
    operations of the numpy expression in :meth:`AnalysisProcessor._pdf_weights`."""
    k = w.shape[1]
    sq = np.empty(k - 1)
    for q in range(rows.shape[0]):
        r = rows[q]
        w0 = np.float64(w[r, 0])
        for i in range(1, k):
            rel = (np.float64(w[r, i]) / w0 if w0 != 0 else 1.0) - 1.0
            sq[i - 1] = rel * rel
        out[q] = np.sqrt(0.0 + _pairwise_sum(sq, k - 1))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.ones(np.broadcast_shapes(num.shape, den.shape))
    np.divide(num, den, out=out, where=den != 0)
    return out


@numba.njit(cache=True, nogil=True)
def _add_weights(bins, rows, weights, sum_w, sum_w2):
    """sum_w[c, bins[k]] += weights[rows[k], c] (and its square), entry by entry in order."""
    for k in range(bins.shape[0]):
        b = bins[k]
        r = rows[k]
        for c in range(weights.shape[1]):
            w = weights[r, c]
            sum_w[c, b] += w
            sum_w2[c, b] += w * w


class _HistFiller:
    """Fills the observable histograms of one chunk: the numbers of ``Hist.fill``, fewer calls.

    :meth:`fill` adds up, per bin, the weights (and squared weights) of every
    systematic category of a region in one pass, in the order the entries come
    (as ``Hist.fill`` does); :meth:`finish` writes the sums into
    the histograms. As with ``Hist.fill``, a histogram gets a systematic category
    (and the dataset) with its first fill of at least one entry, in that order.
    NaN entries are not filled.
    """

    def __init__(self, hists: dict[str, hist.Hist], specs: Sequence[HistSpec],
                 regions: Sequence[str], dataset: str) -> None:
        self._hists = hists
        self._specs = list(specs)
        self._regions = {name: i for i, name in enumerate(regions)}
        self._dataset = dataset
        #: histogram → category → (2, regions, bins): sums of w and of w²
        self._sums: dict[str, dict[str, np.ndarray]] = {spec.name: {} for spec in self._specs}
        #: systematic categories of the fills with at least one event, in their order
        self.categories: dict[str, None] = {}
        #: histogram → its observable axes, with their extent and underflow bin (0 or 1)
        self._axes = {spec.name: [(hists[spec.name].axes[key], hists[spec.name].axes[key].extent,
                                   int(hists[spec.name].axes[key].traits.underflow))
                                  for key in spec.axes] for spec in self._specs}

    def fill(self, region: str, features: Mapping[str, np.ndarray],
             cat_weights: Mapping[str, np.ndarray]) -> None:
        """Fill every histogram for the selected events of ``region``.

        Args:
            region: the region name.
            features: observable → values of the selected events, ``(n,)`` or ``(n, k)``.
            cat_weights: systematic category → weight of each selected event.
        """
        cats = list(cat_weights)
        weights = np.empty((len(next(iter(cat_weights.values()))), len(cats)))
        for j, cat in enumerate(cats):
            weights[:, j] = cat_weights[cat]
        r = self._regions[region]
        if len(weights):
            self.categories.update(dict.fromkeys(cats))
        for spec in self._specs:
            values = [features[key] for key in spec.axes]
            n = len(values[0])
            width = max(v.shape[1] if v.ndim == 2 else 1 for v in values)
            cols = [np.broadcast_to(v.reshape(n, -1), (n, width)).reshape(-1) for v in values]
            ok = ~np.isnan(cols[0])
            for c in cols[1:]:
                ok &= ~np.isnan(c)
            entries = np.flatnonzero(ok)
            if not len(entries):
                continue
            bins = np.zeros(len(entries), dtype=np.int64)
            n_bins = 1
            for (ax, extent, underflow), c in zip(self._axes[spec.name], cols, strict=True):
                bins = bins * extent + (np.asarray(ax.index(c[entries])) + underflow)
                n_bins *= extent
            sum_w = np.zeros((len(cats), n_bins))
            sum_w2 = np.zeros((len(cats), n_bins))
            _add_weights(bins, entries // width, weights, sum_w, sum_w2)
            sums = self._sums[spec.name]
            for j, cat in enumerate(cats):
                if cat not in sums:
                    sums[cat] = np.zeros((2, len(self._regions), n_bins))
                sums[cat][0, r] += sum_w[j]
                sums[cat][1, r] += sum_w2[j]

    def add_categories(self, categories: Iterable[str]) -> None:
        """Give every histogram the systematic ``categories`` it has no fill of (empty)."""
        for spec in self._specs:
            sums = self._sums[spec.name]
            n_bins = math.prod(extent for _, extent, _ in self._axes[spec.name])
            for cat in categories:
                if cat not in sums:
                    sums[cat] = np.zeros((2, len(self._regions), n_bins))

    def finish(self) -> None:
        """Write the sums into the histograms (categories grown in the order of first fill)."""
        first_region = next(iter(self._regions))
        for spec in self._specs:
            sums = self._sums[spec.name]
            if not sums:
                continue
            h = self._hists[spec.name]
            cats = list(sums)
            # grow the dataset and systematic axes as Hist.fill does, then set the contents
            zeros = np.zeros(len(cats))
            h.fill(dataset=self._dataset, region=first_region, systematic=np.array(cats),
                   **{key: zeros for key in spec.axes}, weight=zeros)
            view = h.view(flow=True)
            d = list(h.axes["dataset"]).index(self._dataset)
            obs_shape = tuple(h.axes[key].extent for key in spec.axes)
            for c, cat in enumerate(list(h.axes["systematic"])):
                if cat not in sums:
                    continue
                total = sums[cat].reshape(2, len(self._regions), *obs_shape)
                view["value"][d, :len(self._regions), c] = total[0]
                view["variance"][d, :len(self._regions), c] = total[1]


class _TemplateFillers:
    """The ``template_<name>`` histograms of one chunk, filled with :class:`_HistFiller`.

    Scores are clipped to [0, 1) so that a score of exactly 1 lands in the last
    bin, not the overflow; an event with a NaN score (an undefined input) is
    not filled, and a note says so.
    """

    def __init__(self, proc: AnalysisProcessor, hists: dict[str, hist.Hist], dataset: str) -> None:
        self._proc = proc
        self._hists = hists
        self._dataset = dataset
        self._fillers: dict[str, _HistFiller] = {}

    def finish(self, categories: Iterable[str]) -> None:
        """Write every template; each gets the dataset and the systematic ``categories``
        (those the chunk's observables were filled with) even where its regions
        selected no event, so that a sample has every template a fit reads, as it has
        every observable histogram."""
        for name in self._proc.config.templates:
            if f"template_{name}" in self._hists:
                self._filler(name)
        for filler in self._fillers.values():
            filler.add_categories(categories)
            filler.finish()

    def _filler(self, name: str) -> _HistFiller:
        """The filler of ``template_<name>``, booking the histogram on first use."""
        key = f"template_{name}"
        if key not in self._fillers:
            if key not in self._hists:
                self._hists[key] = self._proc._book_template(name)
            self._fillers[key] = _HistFiller(self._hists, [HistSpec(key, ("score_x", "score_y"))],
                                             self._proc.template_regions(name), self._dataset)
        return self._fillers[key]

    def fill(self, region: str, scores: Mapping[str, np.ndarray],
             cat_weights: Mapping[str, np.ndarray], notes: set[str]) -> None:
        below_one = np.nextafter(1.0, 0.0)
        scores = {k: np.minimum(np.maximum(np.asarray(v, dtype=np.float64), 0.0), below_one)
                  for k, v in scores.items()}
        if any(np.isnan(v).any() for v in scores.values()):
            notes.add("templates: events with an undefined classifier input (NaN score) "
                      "are not filled")
        for name, tmpl in self._proc.config.templates.items():
            if tmpl.x not in scores or tmpl.y not in scores:
                continue
            if region not in self._proc.template_regions(name):
                continue
            self._filler(name).fill(region, {"score_x": scores[tmpl.x], "score_y": scores[tmpl.y]},
                                    cat_weights)


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
    #: the channel's fit uses classifier score templates (missing models are noted)
    score_templates: ClassVar[bool] = False
    #: how the input files map onto the collections the selections read (None: NanoAOD)
    input_profile: Profile | None = None

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
        self._classifiers, self._model_notes = self._find_classifiers()
        #: template name → the regions of this run it is filled in (config order of the run)
        self._template_regions = {
            name: [r for r in self.regions if t.regions is None or r in t.regions]
            for name, t in config.templates.items()}
        #: regions whose events some template needs scores for
        self._scored_regions = frozenset(r for rs in self._template_regions.values() for r in rs)
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

    def columns(self) -> frozenset[str]:
        """Branches :meth:`process` may read, for the runner to preload in bulk.

        The objects' branches (and the JES-shifted ones with a ``jes``
        systematic), ``genWeight``, the LHE weights the systematics use,
        ``event`` with classifiers, and what :meth:`extra_columns` adds. A
        file that lacks one of them is fine (it is not asked for); one that
        :meth:`process` reads without it being listed is read lazily. The
        results do not depend on this list, only the speed: a test checks it
        against coffea's access log of a lazy run.
        """
        kinds = {s.kind for s in self.config.systematics.values()}
        names = set(object_branches(jes="jes" in kinds)) | {"genWeight"}
        if "scale" in kinds:
            names.add("LHEScaleWeight")
        if "pdf" in kinds:
            names.add("LHEPdfWeight")
        if self._classifiers:
            names.add("event")
        return preload_columns(self.input_profile, frozenset(names | self.extra_columns()))

    def extra_columns(self) -> frozenset[str]:
        """Branches a channel reads besides those of :meth:`columns` (none by default)."""
        return frozenset()

    #: observables that do not change with the JES variation (computed once per chunk)
    jes_independent: ClassVar[frozenset[str]] = frozenset()

    def _find_classifiers(self) -> tuple[dict[str, Classifier], tuple[str, ...]]:
        """The classifiers the templates need, with their sessions not yet created.

        Returns:
            ``({model name: Classifier}, notes)``; a model whose ``.onnx`` file
            does not exist is left out with a note.

        Raises:
            InputError: a model card that is missing or invalid, or a file whose
                sha256 differs from its card.
            ConfigError: a card input this processor cannot compute.
        """
        cfg = self.config
        notes: list[str] = []
        if not cfg.models:
            if self.score_templates:
                notes.append("models: the config lists no classifier; no score templates filled")
            return {}, tuple(notes)
        used = [m for m in cfg.models if any(m in (t.x, t.y) for t in cfg.templates.values())]
        known = self.feature_functions()
        classifiers: dict[str, Classifier] = {}
        for name in used:
            path = cfg.resolve(cfg.models[name].path)
            if not path.is_file():
                notes.append(f"models.{name}: {cfg.models[name].path} not found; "
                             "templates using it are not filled")
                continue
            card = ModelCard.read(path.with_suffix(".json"))
            missing = [i for i in card.inputs if i not in known]
            if missing:
                raise ConfigError(
                    f"{cfg.source or 'config'}: models.{name}: model {name!r} ({path.name}) takes "
                    f"inputs that {type(self).__name__} does not compute: missing {missing}")
            # the model's bytes are read and checked against the card here, once; they
            # travel with the pickled processor, so workers need no access to the file
            try:
                classifiers[name] = Classifier(path, card, intra_op_threads=1,
                                               inter_op_threads=1)
            except InputError as err:
                raise InputError(f"models.{name}: {err}") from None
        for tname, tmpl in cfg.templates.items():
            absent = [m for m in (tmpl.x, tmpl.y) if m not in classifiers]
            if absent and self.score_templates:
                notes.append(f"templates.{tname}: model(s) {', '.join(absent)} not available; "
                             f"template_{tname} not filled")
        return classifiers, tuple(notes)

    @property
    def classifier_inputs(self) -> tuple[str, ...]:
        """Observables the loaded classifiers take (union of their cards' inputs, in order)."""
        names: dict[str, None] = {}
        for clf in self._classifiers.values():
            names.update(dict.fromkeys(clf.inputs))
        return tuple(names)

    def _classifier_scores(self, events_sel: ak.Array,
                           features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """Classifier scores of the selected events.

        Called once per variation (nominal, then each JES shift: the features
        are then the shifted ones, so the templates get their ``jes_up`` /
        ``jes_down`` shapes) with the events that pass any of the regions; each
        region's templates take their events' scores. One call per variation
        rather than per region means fewer, larger onnxruntime batches.

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
        event = np.asarray(ak.to_numpy(events_sel.event))
        matrices: dict[tuple[str, ...], np.ndarray] = {}
        scores = {}
        for name, clf in self._classifiers.items():
            if clf.inputs not in matrices:
                matrix = np.empty((len(event), len(clf.inputs)), dtype=np.float32)
                for j, key in enumerate(clf.inputs):
                    column = features[key]
                    if column.ndim != 1:
                        raise InputError(f"model {name!r}: input {key!r} has {column.shape[1]} "
                                         "values per event; a classifier input needs one")
                    matrix[:, j] = column
                matrices[clf.inputs] = matrix
            scores[name] = clf.predict(matrices[clf.inputs], event)
        return scores

    # -- the coffea interface ------------------------------------------------------------
    #: collections every region needs; a file without them is a bad input file
    REQUIRED_COLLECTIONS = ("Electron", "Muon", "Jet", "MET")

    def process(self, events: ak.Array) -> dict[str, Any]:
        meta = dict(events.metadata or {})
        dataset = str(meta.get("dataset", "unknown"))
        notes: set[str] = set()
        events = adapt_events(events, self.input_profile, notes)
        missing = [c for c in self.REQUIRED_COLLECTIONS if c not in events.fields]
        if missing:
            raise MissingBranchesError(
                f"no {', '.join(missing)} branches "
                f"(needs {', '.join(c + '_pt' for c in missing)} and the rest of each collection)")
        sample = self._sample_info(dataset, meta, notes)
        out = self._empty_output(dataset, len(events))

        nominal = EventVariables(build_objects(events, self.config.objects, NOMINAL, notes))
        variations: list[tuple[str, EventVariables]] = [(NOMINAL, nominal)]
        variations += self._jes_variations(nominal, sample, notes)
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
        filler = _HistFiller(out["hists"], self.hist_specs(), self.regions, dataset)
        # regions with selected events, scored together once per variation
        scored: list[tuple[str, np.ndarray, dict[str, np.ndarray], FeatureContext]] = []
        templates = _TemplateFillers(self, out["hists"], dataset)
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
        hists = {spec.name: self._book(spec) for spec in self.hist_specs()}
        for name, tmpl in self.config.templates.items():
            if (tmpl.x in self._classifiers and tmpl.y in self._classifiers
                    and self.template_regions(name)):
                hists[f"template_{name}"] = self._book_template(name)
        return {
            "hists": hists,
            "cutflow": {dataset: {}},
            "entries": {dataset: int(n_events)},
            "notes": set(),
        }

    def _category_axes(self, regions: Sequence[str] | None = None) -> list[hist.axis.AxesMixin]:
        return [
            hist.axis.StrCategory([], name="dataset", label="dataset", growth=True),
            hist.axis.StrCategory(self.regions if regions is None else regions, name="region",
                                  label="region"),
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

    def template_regions(self, name: str) -> list[str]:
        """The regions of this run that template ``name`` is filled in (config order of the run)."""
        return self._template_regions[name]

    def _book_template(self, name: str) -> hist.Hist:
        tmpl = self.config.templates[name]
        return hist.Hist(
            *self._category_axes(self.template_regions(name)),
            hist.axis.Regular(tmpl.x_bins, 0.0, 1.0, name="score_x", label=tmpl.x),
            hist.axis.Regular(tmpl.y_bins, 0.0, 1.0, name="score_y", label=tmpl.y),
            storage=hist.storage.Weight(), name=f"template_{name}",
        )

    def _features(self, ctx: FeatureContext, category: str, mask: np.ndarray,
                  cache: dict[tuple[str, str, str], np.ndarray]) -> dict[str, np.ndarray]:
        """The observables of the histograms for the events in ``mask``."""
        keys = dict.fromkeys(key for spec in self.hist_specs() for key in spec.axes)
        return self._observables(ctx, category, mask, cache, keys)

    def _observables(self, ctx: FeatureContext, category: str, mask: np.ndarray,
                     cache: dict[tuple[str, str, str], np.ndarray],
                     keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The named observables for the events in ``mask``, each computed once per variation.

        ``mask`` is a boolean per event of the chunk; the events it selects must be
        among those of ``ctx`` (with ``ctx.index``, a subset of the chunk).
        """
        functions = self.feature_functions()
        rows = mask if ctx.index is None else mask[ctx.index]
        out = {}
        for key in keys:
            variation = NOMINAL if key in self.jes_independent else category
            ck = (key, variation, ctx.region.neutrino_rule)
            if ck not in cache:
                cache[ck] = np.asarray(functions[key](ctx), dtype=np.float64)
            out[key] = cache[ck][rows]
        return out

    def _score_regions(self, events: ak.Array, category: str,
                       scored: Sequence[tuple[str, np.ndarray, dict[str, np.ndarray],
                                              FeatureContext]],
                       cache: dict[tuple[str, str, str], np.ndarray],
                       templates: _TemplateFillers, notes: set[str]) -> None:
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

    @property
    def _may_score(self) -> bool:
        """Whether :meth:`_classifier_scores` can return scores (a classifier, or an override)."""
        return bool(self._classifiers) or (
            type(self)._classifier_scores is not AnalysisProcessor._classifier_scores)

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
                 notes: set[str], selected: np.ndarray | None = None
                 ) -> tuple[Weights, dict[str, str | None]]:
        """The ``Weights`` of the chunk and the systematic category → weight modifier map.

        Args:
            selected: indices of the events whose weight variations are used (those
                some region selects); the up/down weights of the other events are
                left equal to their nominal weight. None: all events.
        """
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
                categories |= self._scale_weights(events, weights, prefix, syst.mode, notes,
                                                  selected)
            elif syst.kind == "pdf":
                categories |= self._pdf_weights(events, weights, prefix, syst.pdf_scheme, notes,
                                                selected)
            elif syst.kind == "correction":
                categories |= self._correction(key, prefix, sample, nominal, weights, notes,
                                               selected)
            # "jes" is a shape variation, handled in _jes_variations
        categories |= add_profile_weights(events, weights, notes)
        return weights, categories

    def _scale_weights(self, events: ak.Array, weights: Weights, prefix: str, mode: str,
                       notes: set[str], selected: np.ndarray | None = None) -> dict[str, str]:
        if "LHEScaleWeight" not in events.fields:
            notes.add(f"{prefix}: no LHEScaleWeight branch; scale variations skipped")
            return {}
        n = len(events)
        w = _fixed_width(events.LHEScaleWeight, n)
        if w is None or (n and w.shape[1] not in (8, 9)):
            notes.add(f"{prefix}: LHEScaleWeight does not have 9 (or 8) members in every event; "
                      "scale variations skipped")
            return {}
        rows = slice(None) if selected is None else selected
        if n == 0:
            w = np.ones((0, 9))
        else:
            w = np.asarray(w[rows], dtype=np.float64)
            if w.shape[1] == 8:  # nominal member left out: put it back as 1
                w = np.insert(w, _SCALE_NOMINAL_9, 1.0, axis=1)
        ratios = _ratio(w, w[:, [_SCALE_NOMINAL_9]])
        if mode == "all":
            names = [str(i) for i in range(9)]
            variations = [np.ones(n) for _ in range(9)]
            for i, v in enumerate(variations):
                v[rows] = ratios[:, i]
            weights.add_multivariation(prefix, np.ones(n), names, variations,
                                       [v.copy() for v in variations])
            return {f"{prefix}_{i}": f"{prefix}_{i}Up" for i in names}
        env = ratios[:, list(_SCALE_ENVELOPE_9)]
        up, down = np.ones(n), np.ones(n)
        if len(env):
            up[rows] = env.max(axis=1)
            down[rows] = env.min(axis=1)
        weights.add(prefix, np.ones(n), up, down)
        return {f"{prefix}_up": f"{prefix}Up", f"{prefix}_down": f"{prefix}Down"}

    def _pdf_weights(self, events: ak.Array, weights: Weights, prefix: str, scheme: str,
                     notes: set[str], selected: np.ndarray | None = None) -> dict[str, str]:
        if "LHEPdfWeight" not in events.fields:
            notes.add(f"{prefix}: no LHEPdfWeight branch; PDF variations skipped")
            return {}
        n = len(events)
        w = _fixed_width(events.LHEPdfWeight, n)
        if w is None or (n and w.shape[1] < 2):
            notes.add(f"{prefix}: LHEPdfWeight has no common member count (≥ 2) in every event; "
                      "PDF variations skipped")
            return {}
        delta = np.zeros(n)
        if n:
            rows = np.arange(n) if selected is None else np.asarray(selected, dtype=np.int64)
            if scheme != "replicas" and w.shape[1] - 1 <= _PAIRWISE_BLOCK:
                out = np.empty(len(rows))
                _hessian_delta(np.ascontiguousarray(w), rows, out)
                delta[rows] = out
            else:
                ws = np.asarray(w[rows], dtype=np.float64)
                rel = _ratio(ws[:, 1:], ws[:, :1]) - 1.0
                if scheme == "replicas":
                    if rel.shape[1] > 1:
                        delta[rows] = rel.std(axis=1, ddof=1)
                else:
                    delta[rows] = np.sqrt(np.sum(rel**2, axis=1))
            if scheme != "replicas" and w.shape[1] != 31:
                notes.add(f"{prefix}: LHEPdfWeight has {w.shape[1]} members, combined as "
                          f"{w.shape[1] - 1} Hessian eigenvectors (set pdf_scheme: replicas "
                          "for a replica set)")
        weights.add(prefix, np.ones(n), 1.0 + delta, np.clip(1.0 - delta, 0.0, None))
        return {f"{prefix}_up": f"{prefix}Up", f"{prefix}_down": f"{prefix}Down"}

    def _correction(self, key: str, prefix: str, sample: SampleInfo, nominal: EventVariables,
                    weights: Weights, notes: set[str],
                    selected: np.ndarray | None = None) -> dict[str, str]:
        """A correctionlib correction as a weight with up/down variations.

        The correction named ``key`` in the file (or its only correction) is
        evaluated with inputs by name: ``polarization`` (the sample's
        polarization state, "none" for other samples), ``mjj`` (m_jj of the two
        leading nominal jets, GeV; 0 without two jets) and ``syst`` ("nominal",
        "up", "down"). The K-factor is evaluated once, at the nominal m_jj, and
        also applies to the JES-shifted selections. With ``selected``, the up/down
        values are evaluated for those events only (the others keep the nominal K).
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
        values: dict[str, np.ndarray] = {}
        for syst in ("nominal", "up", "down"):
            rows = slice(None) if syst == "nominal" or selected is None else selected
            args = []
            for var in corr.inputs:
                if var.name == "polarization":
                    args.append(sample.polarization or "none")
                elif var.name == "mjj":
                    args.append(np.nan_to_num(nominal.mjj[rows], nan=0.0))
                elif var.name == "syst":
                    args.append(syst)
                else:
                    notes.add(f"{key}: correction input '{var.name}' is not known; skipped")
                    return {}
            k = np.asarray(corr.evaluate(*args), dtype=np.float64)
            if syst == "nominal" or selected is None:
                values[syst] = np.broadcast_to(k, (n,)).copy()
            else:
                values[syst] = values["nominal"].copy()
                values[syst][rows] = k
        weights.add(prefix, values["nominal"], values["up"], values["down"])
        return {f"{prefix}_up": f"{prefix}Up", f"{prefix}_down": f"{prefix}Down"}

    def _jes_variations(self, nominal: EventVariables, sample: SampleInfo,
                        notes: set[str]) -> list[tuple[str, EventVariables]]:
        return shape_variations(nominal, self.config, self.regions, sample.is_data, notes,
                                shape_categories(self.input_profile))

    def _extra_weights(self, events: ak.Array, sample: SampleInfo, weights: Weights,
                       mask: np.ndarray, notes: set[str]) -> dict[str, np.ndarray]:
        """Additional nominal-selection categories of a channel (none by default)."""
        return {}
