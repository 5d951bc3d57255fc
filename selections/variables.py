"""Event-level quantities that region cuts and histograms use.

:class:`EventVariables` wraps the selected :class:`~ewpolar.selections.objects.Objects` of
one chunk and computes each quantity on first use, with the numba kernels of
:mod:`ewpolar.observables`, from the flat object columns. Every quantity is a
float64 numpy array with one entry per event; an event without the objects a
quantity needs (e.g. m_jj with fewer than two jets) gets NaN, so every cut on it
fails (NaN compares false).

Pair quantities use the two leading (highest-pT) objects: m_ℓℓ and ΔR_ℓℓ of the
two leading leptons, m_jj and |Δy_jj| of the two leading jets, m_bb of the two
leading b-jets.

The lepton quantities do not depend on the JES variation: the variables of a
variation made with :meth:`EventVariables.varied` share them (and the cut masks
built from them, see :meth:`EventVariables.mask`) with the nominal ones.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cached_property

import numba
import numpy as np
from ewpolar import observables as obs
from ewpolar.selections.objects import FlatCollection, Objects

__all__ = ["Z_MASS_GEV", "EventVariables"]

#: Z-boson mass for the Z veto and the WZ control region, GeV (PDG).
Z_MASS_GEV = 91.1876

FourArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@numba.njit(cache=True, nogil=True)
def _sfos_pairs(offsets, pdg_id):
    """Flat indices (a, b), a < b within an event, of the pairs with pdgId_a == -pdgId_b,
    and the pair offsets per event (the order of ``ak.combinations``)."""
    n = offsets.shape[0] - 1
    total = 0
    for i in range(n):
        m = offsets[i + 1] - offsets[i]
        total += m * (m - 1) // 2
    a = np.empty(total, np.int64)
    b = np.empty(total, np.int64)
    pair_offsets = np.empty(n + 1, np.int64)
    pair_offsets[0] = 0
    k = 0
    for i in range(n):
        for p in range(offsets[i], offsets[i + 1]):
            for q in range(p + 1, offsets[i + 1]):
                if pdg_id[p] == -pdg_id[q]:
                    a[k] = p
                    b[k] = q
                    k += 1
        pair_offsets[i + 1] = k
    return a[:k], b[:k], pair_offsets


@numba.njit(cache=True, nogil=True)
def _segment_min(values, offsets, out):
    """Per event, the minimum of its entries as ``ak.min`` takes it (NaN for none)."""
    for i in range(offsets.shape[0] - 1):
        if offsets[i + 1] == offsets[i]:
            out[i] = np.nan
            continue
        best = np.inf
        for j in range(offsets[i], offsets[i + 1]):
            x = values[j]
            if x < best:
                best = x
        out[i] = best


def _segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per event, the (integer) sum of its entries."""
    total = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, out=total[1:])
    return total[offsets[1:]] - total[offsets[:-1]]


def _taken(value, index: np.ndarray):
    """``value`` (an array or a tuple of arrays, one entry per event) for the events ``index``."""
    if isinstance(value, tuple):
        return tuple(v[index] for v in value)
    return value[index]


class _Cached:
    """Quantities computed once; with a parent (the same quantities for all events of
    the chunk) and ``index``, what the parent already has is taken from it."""

    def __init__(self, parent: _Cached | None = None, index: np.ndarray | None = None) -> None:
        self._parent = parent
        self._index = index
        self._values: dict[Hashable, object] = {}

    def get(self, key: Hashable, compute: Callable[[], object]):
        if key not in self._values:
            parent = self._parent
            if parent is not None and key in parent._values:
                self._values[key] = _taken(parent._values[key], self._index)
            else:
                self._values[key] = compute()
        return self._values[key]


class _Nth(_Cached):
    """n-th object fields and four-vectors of one flat collection."""

    def __init__(self, table: Callable[[], FlatCollection], parent: _Nth | None = None,
                 index: np.ndarray | None = None) -> None:
        super().__init__(parent, index)
        self._table = table

    @cached_property
    def table(self) -> FlatCollection:
        return self._table()

    def field(self, n: int, name: str) -> np.ndarray:
        return self.get(("field", n, name), lambda: self.table.nth(n, name))

    def p4(self, n: int) -> FourArrays:
        return self.get(("p4", n), lambda: self.table.nth_p4(n))


class _LeptonVariables(_Cached):
    """The JES-independent (lepton) quantities, shared by the variations of one chunk."""

    def __init__(self, objects: Objects, parent: _LeptonVariables | None = None,
                 index: np.ndarray | None = None) -> None:
        super().__init__(parent, index)
        self.objects = objects
        self.nth = _Nth(lambda: objects.lepton_table, parent and parent.nth, index)
        self.masks: dict[Hashable, np.ndarray] = {}

    @property
    def n_leptons(self) -> np.ndarray:
        return self.get("n_leptons", lambda: self.nth.table.counts)

    @property
    def same_sign(self) -> np.ndarray:
        def compute() -> np.ndarray:
            table = self.nth.table
            total = _segment_sum(table["charge"], table.offsets)
            return (self.n_leptons >= 2) & (np.abs(total) == self.n_leptons)

        return self.get("same_sign", compute)

    @property
    def mll(self) -> np.ndarray:
        return self.get("mll", lambda: obs.mll(*self.nth.p4(0), *self.nth.p4(1)))

    @property
    def dr_ll(self) -> np.ndarray:
        def compute() -> np.ndarray:
            deta = self.nth.field(0, "eta") - self.nth.field(1, "eta")
            dphi = np.abs(self.nth.field(0, "phi") - self.nth.field(1, "phi"))
            dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
            return np.hypot(deta, dphi)

        return self.get("dr_ll", compute)

    @property
    def is_ee(self) -> np.ndarray:
        return self.get("is_ee", lambda: (np.abs(self.nth.field(0, "pdgId")) == 11)
                        & (np.abs(self.nth.field(1, "pdgId")) == 11))

    @property
    def sfos_z_distance(self) -> np.ndarray:
        def compute() -> np.ndarray:
            table = self.nth.table
            a, b, offsets = _sfos_pairs(table.offsets, table["pdgId"])
            cols = ("pt", "eta", "phi", "mass")
            pa = obs.ptetaphim_to_pxpypze(*(table[c][a] for c in cols))
            pb = obs.ptetaphim_to_pxpypze(*(table[c][b] for c in cols))
            dist = np.abs(obs.mll(*pa, *pb) - Z_MASS_GEV)
            out = np.empty(len(table))
            _segment_min(dist, offsets, out)
            return out

        return self.get("sfos_z_distance", compute)


class EventVariables(_Cached):
    """Lazily computed event-level quantities of one chunk for one JES variation.

    Args:
        objects: the selected objects of the variation.
        leptons_from: variables of the same chunk whose lepton quantities (JES
            independent) these share; ``objects`` must have the same leptons
            (as :meth:`Objects.varied` gives).
    """

    def __init__(self, objects: Objects, leptons_from: EventVariables | None = None, *,
                 _parent: EventVariables | None = None,
                 _index: np.ndarray | None = None) -> None:
        super().__init__(_parent, _index)
        self.objects = objects
        #: chunk indices of these variables' events; None: every event of the chunk
        self.events_index: np.ndarray | None = None
        if _parent is not None:
            chunk = _parent.events_index
            self.events_index = _index if chunk is None else chunk[_index]
        elif leptons_from is not None:
            self.events_index = leptons_from.events_index
        if leptons_from is not None:
            self._leptons = leptons_from._leptons
        else:
            self._leptons = _LeptonVariables(objects, _parent and _parent._leptons, _index)
        self._jets = _Nth(lambda: objects.jet_table, _parent and _parent._jets, _index)
        self._bjets = _Nth(lambda: objects.bjet_table, _parent and _parent._bjets, _index)
        self._masks: dict[Hashable, np.ndarray] = {}

    def varied(self, variation: str) -> EventVariables:
        """The variables of a shape variation of the same events, sharing the lepton
        quantities where the variation does not change the leptons."""
        objects = self.objects.varied(variation)
        if objects.shares_leptons:
            return EventVariables(objects, leptons_from=self)
        out = EventVariables(objects)
        out.events_index = self.events_index
        return out

    def subset(self, index: np.ndarray, events=None,
               leptons_from: EventVariables | None = None) -> EventVariables:
        """The variables of the events ``index`` (int array) only, from the same objects.

        What these variables have computed already is taken from them; the rest
        is computed for the events ``index`` only. The variables of a subset can
        be :meth:`varied` (a JES variation of those events only).

        Args:
            index: indices into these variables' events.
            events: the events ``index`` of the chunk, if already at hand.
            leptons_from: a subset (same ``index``) of another JES variation, whose
                lepton quantities these share.
        """
        index = np.asarray(index, dtype=np.int64)
        if not self.objects.shares_leptons:
            leptons_from = None
        objects = self.objects.subset(
            index, events, None if leptons_from is None else leptons_from.objects)
        return EventVariables(objects, leptons_from=leptons_from, _parent=self, _index=index)

    def mask(self, key: Hashable, compute: Callable[[], np.ndarray], *,
             leptons_only: bool = False) -> np.ndarray:
        """A boolean per-event mask computed once per chunk and variation.

        Args:
            key: what the mask is (e.g. the cut name and its threshold).
            compute: makes it on first use.
            leptons_only: the mask depends on lepton quantities only; it is then
                shared with the other JES variations (see :meth:`varied`).
        """
        store = self._leptons.masks if leptons_only else self._masks
        if key not in store:
            store[key] = compute()
        return store[key]

    # -- leptons ---------------------------------------------------------------
    @property
    def n_leptons(self) -> np.ndarray:
        """Number of selected leptons (e and μ)."""
        return self._leptons.n_leptons

    @property
    def same_sign(self) -> np.ndarray:
        """True when the event has at least two selected leptons, all of one charge."""
        return self._leptons.same_sign

    def lepton_p4(self, n: int) -> FourArrays:
        """(px, py, pz, E) of the n-th leading lepton (NaN where absent), GeV."""
        return self._leptons.nth.p4(n)

    def lepton(self, n: int, field: str) -> np.ndarray:
        """One field ("pt", "eta", "phi", "charge", "pdgId") of the n-th lepton, NaN where absent."""
        return self._leptons.nth.field(n, field)

    @property
    def mll(self) -> np.ndarray:
        """Invariant mass of the two leading leptons, GeV."""
        return self._leptons.mll

    @property
    def dr_ll(self) -> np.ndarray:
        """ΔR = √(Δη² + Δφ²) of the two leading leptons."""
        return self._leptons.dr_ll

    @property
    def is_ee(self) -> np.ndarray:
        """True when the two leading leptons are both electrons."""
        return self._leptons.is_ee

    @property
    def sfos_z_distance(self) -> np.ndarray:
        """Smallest |m_ℓℓ − m_Z| over same-flavour opposite-charge lepton pairs (NaN if none), GeV."""
        return self._leptons.sfos_z_distance

    # -- missing transverse momentum ---------------------------------------------
    @property
    def met(self) -> np.ndarray:
        """Missing transverse momentum magnitude, GeV."""
        return self.objects.met_pt

    @property
    def met_pxpy(self) -> tuple[np.ndarray, np.ndarray]:
        """(px, py) of the missing transverse momentum, GeV."""
        return self.get("met_pxpy", lambda: (self.met * np.cos(self.objects.met_phi),
                                             self.met * np.sin(self.objects.met_phi)))

    # -- jets --------------------------------------------------------------------
    @property
    def n_jets(self) -> np.ndarray:
        """Number of selected jets."""
        return self.get("n_jets", lambda: self._jets.table.counts)

    def jet_p4(self, n: int) -> FourArrays:
        """(px, py, pz, E) of the n-th leading jet (NaN where absent), GeV."""
        return self._jets.p4(n)

    def jet(self, n: int, field: str) -> np.ndarray:
        """One field ("pt", "eta", "phi", "mass") of the n-th leading jet, NaN where absent."""
        return self._jets.field(n, field)

    @property
    def jet1_pt(self) -> np.ndarray:
        """Leading-jet pT, GeV."""
        return self.jet(0, "pt")

    @property
    def jet2_pt(self) -> np.ndarray:
        """Subleading-jet pT, GeV."""
        return self.jet(1, "pt")

    @property
    def mjj(self) -> np.ndarray:
        """Invariant mass of the two leading jets, GeV."""
        return self.get("mjj", lambda: obs.mjj(*self.jet_p4(0), *self.jet_p4(1)))

    @property
    def dy_jj(self) -> np.ndarray:
        """|Δy| (rapidity) of the two leading jets."""
        return self.get("dy_jj", lambda: obs.delta_y_jj(*self.jet_p4(0), *self.jet_p4(1)))

    # -- b-jets ------------------------------------------------------------------
    @property
    def n_bjets(self) -> np.ndarray:
        """Number of b-tagged jets."""
        return self.get("n_bjets", lambda: self._bjets.table.counts)

    def bjet_p4(self, n: int) -> FourArrays:
        """(px, py, pz, E) of the n-th leading b-jet (NaN where absent), GeV."""
        return self._bjets.p4(n)

    @property
    def mbb(self) -> np.ndarray:
        """Invariant mass of the two leading b-jets (the H → bb̄ candidate), GeV."""
        return self.get("mbb", lambda: obs.pair_mass(*self.bjet_p4(0), *self.bjet_p4(1)))
