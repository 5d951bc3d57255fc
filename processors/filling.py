"""Histogram booking and filling of the processors.

Every histogram has the category axes ``dataset`` (grown), ``region`` and
``systematic`` (grown), then its observable axes (from the config's
``histograms``) or, for a classifier score template ``template_<name>``, the
two scores ``score_x`` and ``score_y`` on [0, 1]. Storage is ``Weight``.

:class:`HistFiller` puts into the histograms of one chunk the numbers that
``Hist.fill`` would: per bin, the weights and squared weights of the entries,
added up in the order the entries come (numba, one pass over the entries for
every systematic category of a region), written into the histograms once per
chunk rather than with one ``fill`` call per region and category.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import hist
import numba
import numpy as np
from ewpolar.core.config import AnalysisConfig, Template

__all__ = [
    "HistFiller",
    "HistSpec",
    "TemplateFillers",
    "book_histogram",
    "book_template",
    "category_axes",
    "template_histogram",
]


@dataclass(frozen=True)
class HistSpec:
    """A histogram: its name and the config ``histograms`` keys of its observable axes."""

    name: str
    axes: tuple[str, ...]


def template_histogram(name: str) -> str:
    """Name of the histogram of the config's score template ``name``."""
    return f"template_{name}"


def category_axes(regions: Sequence[str]) -> list[hist.axis.AxesMixin]:
    """The ``dataset``, ``region`` and ``systematic`` axes every histogram starts with."""
    return [
        hist.axis.StrCategory([], name="dataset", label="dataset", growth=True),
        hist.axis.StrCategory(list(regions), name="region", label="region"),
        hist.axis.StrCategory([], name="systematic", label="systematic", growth=True),
    ]


def book_histogram(config: AnalysisConfig, spec: HistSpec, regions: Sequence[str]) -> hist.Hist:
    """An empty histogram of ``spec`` with the config's binning of its observables."""
    axes = category_axes(regions)
    for key in spec.axes:
        ax = config.histograms[key]
        if ax.edges is not None:
            axes.append(hist.axis.Variable(ax.edges, name=key, label=ax.label or key))
        else:
            axes.append(hist.axis.Regular(ax.bins, ax.start, ax.stop, name=key,
                                          label=ax.label or key))
    return hist.Hist(*axes, storage=hist.storage.Weight(), name=spec.name)


def book_template(name: str, template: Template, regions: Sequence[str]) -> hist.Hist:
    """An empty 2D score template: ``score_x`` and ``score_y`` uniform on [0, 1]."""
    return hist.Hist(
        *category_axes(regions),
        hist.axis.Regular(template.x_bins, 0.0, 1.0, name="score_x", label=template.x),
        hist.axis.Regular(template.y_bins, 0.0, 1.0, name="score_y", label=template.y),
        storage=hist.storage.Weight(), name=template_histogram(name),
    )


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


class HistFiller:
    """Fills the observable histograms of one chunk: the numbers of ``Hist.fill``, fewer calls.

    :meth:`fill` adds up, per bin, the weights (and squared weights) of every
    systematic category of a region in one pass, in the order the entries come
    (as ``Hist.fill`` does); :meth:`finish` writes the sums into
    the histograms. As with ``Hist.fill``, a histogram gets a systematic category
    (and the dataset) with its first fill of at least one entry, in that order.
    NaN entries are not filled.

    Args:
        hists: the histograms (name → ``hist.Hist``), booked and not yet holding
            this chunk's dataset.
        specs: the histograms to fill.
        regions: the region axis of these histograms, in its order.
        dataset: the chunk's dataset.
    """

    def __init__(self, hists: Mapping[str, hist.Hist], specs: Sequence[HistSpec],
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
            features: observable → values of the selected events, ``(n,)`` or ``(n, k)``
                (k entries per event, each with the event's weight).
            cat_weights: systematic category → weight of each selected event.
        """
        cats = list(cat_weights)
        weights = np.empty((len(next(iter(cat_weights.values()))), len(cats)))
        if not len(weights):  # no event: no category, as with Hist.fill
            return
        for j, cat in enumerate(cats):
            weights[:, j] = cat_weights[cat]
        r = self._regions[region]
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


class TemplateFillers:
    """The ``template_<name>`` histograms of one chunk, filled with :class:`HistFiller`.

    Scores are clipped to [0, 1) so that a score of exactly 1 lands in the last
    bin, not the overflow; an event with a NaN score (an undefined input) is
    not filled, and a note says so.

    Args:
        templates: the config's ``templates``.
        template_regions: template name → the regions of the run it is filled in.
        hists: the chunk's histograms; a template is booked here on first use.
        dataset: the chunk's dataset.
    """

    def __init__(self, templates: Mapping[str, Template],
                 template_regions: Mapping[str, Sequence[str]], hists: dict[str, hist.Hist],
                 dataset: str) -> None:
        self._templates = templates
        self._regions = template_regions
        self._hists = hists
        self._dataset = dataset
        self._fillers: dict[str, HistFiller] = {}

    def finish(self, categories: Iterable[str]) -> None:
        """Write every template; each gets the dataset and the systematic ``categories``
        (those the chunk's observables were filled with) even where its regions
        selected no event, so that a sample has every template a fit reads, as it has
        every observable histogram."""
        categories = list(categories)
        for name in self._templates:
            if template_histogram(name) in self._hists:
                self._filler(name)
        for filler in self._fillers.values():
            filler.add_categories(categories)
            filler.finish()

    def _filler(self, name: str) -> HistFiller:
        """The filler of ``template_<name>``, booking the histogram on first use."""
        key = template_histogram(name)
        if key not in self._fillers:
            if key not in self._hists:
                self._hists[key] = book_template(name, self._templates[name], self._regions[name])
            self._fillers[key] = HistFiller(self._hists, [HistSpec(key, ("score_x", "score_y"))],
                                            self._regions[name], self._dataset)
        return self._fillers[key]

    def fill(self, region: str, scores: Mapping[str, np.ndarray],
             cat_weights: Mapping[str, np.ndarray], notes: set[str]) -> None:
        """Fill the templates of ``region`` whose two models have ``scores``."""
        below_one = np.nextafter(1.0, 0.0)
        scores = {k: np.minimum(np.maximum(np.asarray(v, dtype=np.float64), 0.0), below_one)
                  for k, v in scores.items()}
        if any(np.isnan(v).any() for v in scores.values()):
            notes.add("templates: events with an undefined classifier input (NaN score) "
                      "are not filled")
        for name, tmpl in self._templates.items():
            if tmpl.x not in scores or tmpl.y not in scores:
                continue
            if region not in self._regions[name]:
                continue
            self._filler(name).fill(region, {"score_x": scores[tmpl.x], "score_y": scores[tmpl.y]},
                                    cat_weights)
