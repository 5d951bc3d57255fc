"""Cutflows: raw and weighted event counts after each cut, as JSON-able lists.

The cutflow of one region is ``{"cuts": [...], "raw": [...], "weighted": [...]}``:
cumulative counts, starting with ``"all events"`` and then the region's cuts in the
region's fixed order. The three lists are list subclasses that
``coffea.processor.accumulate`` adds the right way: counts entry by entry, cut
names by checking that both sides name the same cuts (plain lists would be
concatenated). ``json.dumps`` writes them as ordinary lists.

Example:
    >>> import numpy as np
    >>> from coffea.analysis_tools import PackedSelection
    >>> sel = PackedSelection()
    >>> sel.add("two_leptons", np.array([True, True, False]))
    >>> sel.add("met", np.array([True, False, False]))
    >>> flow = cutflow_counts(sel, ["two_leptons", "met"])
    >>> flow["cuts"], flow["raw"]
    (['all events', 'two_leptons', 'met'], [3, 2, 1])
    >>> (flow["raw"] + flow["raw"])
    [6, 4, 2]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from coffea.analysis_tools import PackedSelection, Weights

__all__ = ["ALL_EVENTS", "CutCounts", "CutNames", "by_cut", "cutflow_counts",
           "cutflow_from_masks", "plain_cutflow"]

#: label of the first cutflow entry (no cut applied)
ALL_EVENTS = "all events"


class CutNames(list):
    """Cut labels of a cutflow; adding two cutflows keeps the labels (which must agree)."""

    def _check(self, other: Iterable[str]) -> None:
        if list(self) != list(other):
            raise ValueError(f"cannot add cutflows with different cuts: {list(self)} and {list(other)}")

    def __add__(self, other: Iterable[str]) -> CutNames:  # type: ignore[override]
        self._check(other)
        return CutNames(self)

    def __iadd__(self, other: Iterable[str]) -> CutNames:  # type: ignore[override]
        self._check(other)
        return self


class CutCounts(list):
    """Counts per cut; adding two of them adds entry by entry (chunks of one dataset)."""

    def _check(self, other: Sequence[float]) -> None:
        if len(self) != len(other):
            raise ValueError(f"cannot add cutflows of {len(self)} and {len(other)} cuts")

    def __add__(self, other: Sequence[float]) -> CutCounts:  # type: ignore[override]
        self._check(other)
        return CutCounts(a + b for a, b in zip(self, other, strict=True))

    def __iadd__(self, other: Sequence[float]) -> CutCounts:  # type: ignore[override]
        self._check(other)
        for i, b in enumerate(other):
            self[i] += b
        return self


def cutflow_counts(selection: PackedSelection, cuts: Sequence[str],
                   weights: Weights | None = None,
                   modifier: str | None = None) -> dict[str, list[Any]]:
    """Cumulative raw and weighted counts of ``cuts`` (in that order).

    The numbers of :meth:`coffea.analysis_tools.PackedSelection.cutflow`
    (``nevcutflow``, ``wgtevcutflow``), with the weight evaluated once.

    Args:
        selection: the region's packed selection.
        cuts: names of the cuts, in the order they are applied.
        weights: event weights; without them the weighted counts equal the raw ones.
        modifier: a weight variation of ``weights`` (default: nominal).

    Returns:
        ``{"cuts": ["all events", cut1, ...], "raw": [n0, n1, ...], "weighted": [w0, w1, ...]}``
        (:class:`CutNames`, :class:`CutCounts` of Python ints and of floats).
    """
    for cut in cuts:
        if not isinstance(cut, str) or cut not in selection.names:
            raise ValueError("All arguments must be strings that refer to the names of "
                             "existing selections")
    cumulative = [selection.all(*cuts[: i + 1]) for i in range(len(cuts))]
    weight = None if weights is None else weights.weight(modifier)
    return cutflow_from_masks(cuts, cumulative, len(selection.all()), weight)


def cutflow_from_masks(cuts: Sequence[str], cumulative: Sequence[np.ndarray], n_events: int,
                       weight: np.ndarray | None = None,
                       cache: dict[int, tuple[np.ndarray, int, float, np.ndarray]] | None = None
                       ) -> dict[str, list[Any]]:
    """The cutflow of :func:`cutflow_counts` from the events passing each prefix of the cuts.

    Args:
        cuts: names of the cuts, in the order they are applied.
        cumulative: ``cumulative[i]``: boolean per event, passes ``cuts[: i + 1]`` (so
            every mask is within the one before it).
        n_events: number of events of the chunk.
        weight: per-event weight; without it the weighted counts equal the raw ones.
        cache: counts of masks already counted (by array identity) with this
            ``weight``, e.g. the shared first cuts of several regions; filled here.
    """
    counts = []
    passed = None  # indices of the events passing the cuts so far
    for m in cumulative:
        hit = cache.get(id(m)) if cache is not None else None
        if hit is None or hit[0] is not m:
            # each prefix's events are among the previous prefix's: look only at those
            passed = np.flatnonzero(m) if passed is None else passed[m[passed]]
            hit = (m, len(passed), float(np.sum(weight[passed])) if weight is not None else 0.0,
                   passed)
            if cache is not None:
                cache[id(m)] = hit
        passed = hit[3]
        counts.append(hit[1:3])
    raw = CutCounts([int(n_events)] + [n for n, _ in counts])
    if weight is None:
        weighted = CutCounts(float(n) for n in raw)
    else:
        weighted = CutCounts([float(np.sum(weight))] + [w for _, w in counts])
    return {"cuts": CutNames([ALL_EVENTS, *cuts]), "raw": raw, "weighted": weighted}


def by_cut(flow: Mapping[str, Sequence[Any]], counts: str = "raw") -> dict[str, Any]:
    """One region's counts keyed by cut name, e.g. ``by_cut(flow)["mjj"]``.

    Args:
        flow: a region's cutflow (``{"cuts", "raw", "weighted"}``).
        counts: "raw" or "weighted".
    """
    return dict(zip(flow["cuts"], flow[counts], strict=True))


def plain_cutflow(cutflow: Mapping[str, Mapping[str, Mapping[str, Sequence[Any]]]]
                  ) -> dict[str, dict[str, dict[str, list[Any]]]]:
    """A processor output's ``"cutflow"`` with plain lists, ints and floats (e.g. to compare)."""
    return {
        dataset: {
            region: {
                "cuts": [str(c) for c in flow["cuts"]],
                "raw": [int(n) for n in flow["raw"]],
                "weighted": [float(w) for w in flow["weighted"]],
            }
            for region, flow in regions.items()
        }
        for dataset, regions in cutflow.items()
    }
