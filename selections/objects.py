"""Object selection: leptons, jets and b-jets from NanoAOD-schema events.

Cut values come from :class:`ewpolar.core.config.ObjectSelection`. Conventions (shared
by every region):

* electrons and muons: ``pt > pt_min`` (GeV), ``|eta| < eta_max``; identification
  ``Electron_cutBased >= id_min`` (0 fail, 1 veto, 2 loose, 3 medium, 4 tight) and,
  for muons, ``Muon_tightId`` when ``id_min >= 1``; isolation
  ``Electron_pfRelIso03_all <= iso_max`` and ``Muon_pfRelIso04_all <= iso_max``.
  Electrons and muons are merged into one ``leptons`` collection sorted by
  decreasing pT; ``pdgId`` is set from the collection and the charge
  (e⁻ → +11, μ⁺ → −13), so no ``*_pdgId`` branch is read.
* jets: ``Jet_jetId >= id_min`` (NanoAOD bit field: 2 = tight, 6 = tight +
  lepton veto), and overlap removal: a jet within ΔR < ``overlap_dr`` of any
  selected lepton is removed. ``jets`` then need ``pt > jet.pt_min`` and
  ``|eta| < jet.eta_max``; ``bjets`` are taken from the same identified,
  overlap-cleaned jets with ``pt > bjet.pt_min``, ``|eta| < bjet.eta_max`` and
  ``Jet_btagDeepFlavB >= bjet.score_min`` (so a b-jet need not pass the
  light-jet pT threshold).
* a requirement whose branch the input lacks is not applied; a line saying so is
  added to ``notes`` (real NanoAOD has all of them, a private ntuple may not). So is
  an input without b-tag information (every score -3000 or below, as
  ``Jet_btagDeepFlavB`` of the CMS 2015 open data) or whose muons all fail
  ``Muon_tightId``.

Inputs read through an input profile (:mod:`ewpolar.inputs.adapt`) may carry, instead
of NanoAOD's numeric columns, pass flags: ``passId`` and ``passIso`` (electrons,
muons), ``passId`` (jets) and ``passBtag`` (jets). A pass flag replaces the cut it
stands for (applied when the config asks for that cut: ``id_min > 0``, an
``iso_max``; ``passBtag`` replaces ``score_min``). A jet ``btag`` column is any
real-valued score (cut at ``bjet.score_min``).

Jets are read lazily: a JES variation ("jes_up" / "jes_down") swaps ``Jet_pt`` and
``Jet_mass`` for ``Jet_{pt,mass}_jesTotal{Up,Down}`` and the missing transverse
momentum for ``MET_{pt,phi}_jesTotal{Up,Down}``; when the input has shifted jets but
no shifted MET, the jet shift is propagated to the MET (type-1 like, all jets).

Any other shape variation (the systematics of an input profile: "jer_up",
"el_scale_down", ...) reads, for each field of each collection, the field
``<field>__<variation>`` where the input has it, else the nominal field; it may
change leptons, jets and the MET. A variation that changes no lepton and no jet
identification or direction shares the nominal leptons and jet cleaning (as the
JES variations do); one that does is selected anew (:attr:`Objects.shares_leptons`).

The selection works on flat columns: every collection is read as its offsets and
flat numpy content, the cuts are numpy comparisons on those (the same float32
arithmetic as the equivalent awkward expressions), and numba kernels do the
per-event work (merging electrons and muons, overlap removal, p_T ordering).
The selected objects are kept as :class:`FlatCollection` (offsets and columns);
the awkward records of :attr:`Objects.leptons`, :attr:`Objects.jets` and
:attr:`Objects.bjets` are built from them on first use.
"""


from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass, field
from functools import cached_property

import awkward as ak
import numba
import numpy as np
from coffea.nanoevents.methods import candidate, vector
from ewpolar import observables as obs
from ewpolar.core.config import JetCuts, LeptonCuts, ObjectSelection
from ewpolar.inputs.adapt import VARIATION_SEP

__all__ = [
    "JES_VARIATIONS",
    "OBJECT_BRANCHES",
    "FlatCollection",
    "Objects",
    "build_objects",
    "flat_parts",
    "has_jes_variations",
    "object_branches",
    "select_electrons",
    "select_jets",
    "select_leptons",
    "select_muons",
]

log = logging.getLogger(__name__)

#: shape variations of the jet energy scale and the branch suffix they read
JES_VARIATIONS = {"jes_up": "jesTotalUp", "jes_down": "jesTotalDown"}

#: b-tag scores at or below this mean "no b-tag information" (NanoAOD writes -3000, -10)
_NO_BTAG = -999.0
#: muons a chunk needs before "every muon fails the ID" is worth a note
_FEW_MUONS = 10

#: the branches of each collection that the object selection reads (where present)
OBJECT_BRANCHES = {
    "Electron": ("pt", "eta", "phi", "mass", "charge", "cutBased", "pfRelIso03_all"),
    "Muon": ("pt", "eta", "phi", "mass", "charge", "tightId", "pfRelIso04_all"),
    "Jet": ("pt", "eta", "phi", "mass", "jetId", "btagDeepFlavB"),
}


def object_branches(jes: bool = True) -> frozenset[str]:
    """Branch names :func:`build_objects` and the JES variations may read.

    The collections' fields of :data:`OBJECT_BRANCHES` with their counters, MET,
    and with ``jes`` the shifted jet and MET branches of :data:`JES_VARIATIONS`.
    """
    names = {"MET_pt", "MET_phi"}
    for collection, fields in OBJECT_BRANCHES.items():
        names.add(f"n{collection}")
        names.update(f"{collection}_{f}" for f in fields)
    if jes:
        for tag in JES_VARIATIONS.values():
            names.update({f"Jet_pt_{tag}", f"Jet_mass_{tag}", f"MET_pt_{tag}", f"MET_phi_{tag}"})
    return frozenset(names)


_LEPTON_FIELDS = ("pt", "eta", "phi", "mass", "charge", "pdgId")
_JET_FIELDS = ("pt", "eta", "phi", "mass", "btag")


def _fields(collection: ak.Array) -> list[str]:
    return list(ak.fields(collection))


def _field_for(fields: list[str], field: str, variation: str) -> str:
    """The field a shape ``variation`` reads for ``field``: its own where present."""
    if variation != "nominal":
        name = f"{field}{VARIATION_SEP}{variation}"
        if name in fields:
            return name
    return field


def _varied_fields(fields: list[str], variation: str) -> set[str]:
    """Fields of a collection that ``variation`` changes (generic variations only)."""
    tail = f"{VARIATION_SEP}{variation}"
    return {f[:-len(tail)] for f in fields if f.endswith(tail)}


# ---------------------------------------------------------------------------
# flat collections
# ---------------------------------------------------------------------------


def flat_parts(array: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, flat numpy content) of a jagged array of numbers (e.g. ``events.Jet.pt``).

    Event i owns ``content[offsets[i]:offsets[i + 1]]``; ``offsets`` (int64) starts
    at 0. For a NanoEvents column these are the read buffers, without a copy.
    """
    layout = array.layout
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(
            layout.content, ak.contents.NumpyArray):
        offsets = np.asarray(layout.offsets.data, dtype=np.int64)
        content = np.asarray(layout.content.data)
    else:
        counts = np.asarray(ak.to_numpy(ak.num(array, axis=1)), dtype=np.int64)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        content = np.asarray(ak.to_numpy(ak.flatten(array, axis=1)))
    if offsets[0] != 0 or len(content) != offsets[-1]:
        content = content[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
    return offsets, content


class FlatCollection:
    """Objects of a chunk as flat columns: event i owns entries ``offsets[i]:offsets[i + 1]``.

    Args:
        offsets: int64 array of length n_events + 1, starting at 0.
        columns: field name → flat numpy array (one entry per object).
        with_name: record name of the awkward view (:meth:`to_awkward`).
        behavior: awkward behavior of the view.
    """

    def __init__(self, offsets: np.ndarray, columns: dict[str, np.ndarray], with_name: str,
                 behavior: dict | None, trig: _Trig | None = None,
                 source: np.ndarray | None = None) -> None:
        self.offsets = offsets
        self.columns = columns
        self.with_name = with_name
        self.behavior = behavior
        #: with ``source`` (each entry's index in the input collection): the input's
        #: (η, φ) functions, computed once per input object for every collection made from it
        self.trig = trig
        self.source = source

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, field: str) -> np.ndarray:
        return self.columns[field]

    @cached_property
    def counts(self) -> np.ndarray:
        """Objects per event (int64)."""
        return np.diff(self.offsets)

    def nth_index(self, n: int) -> np.ndarray:
        """Flat index of the n-th object of each event, -1 where the event has fewer."""
        index = self.offsets[:-1] + n
        index[self.counts <= n] = -1
        return index

    def nth(self, n: int, field: str) -> np.ndarray:
        """One field of the n-th object of each event as float64, NaN where absent."""
        out = np.empty(len(self))
        _nth_value(self.offsets, n, self.columns[field], out)
        return out

    def nth_p4(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(px, py, pz, E) of the n-th object of each event (NaN where absent), GeV.

        The numbers of :func:`ewpolar.observables.nth_pxpypze_flat`.
        """
        c = self.columns
        if self.trig is None or self.source is None:
            return obs.nth_pxpypze_flat(self.offsets, c["pt"], c["eta"], c["phi"], c["mass"], n)
        t = self.trig
        pt, mass = c["pt"], c["mass"]
        if pt.dtype != np.float32 or mass.dtype != np.float32:
            pt, mass = pt.astype(np.float64), mass.astype(np.float64)
        out = tuple(np.empty(len(self)) for _ in range(4))
        _nth_p4_trig(self.offsets, n, self.source, pt, mass, t.eta, t.phi, t.values, t.done,
                     *out)
        return out  # type: ignore[return-value]

    def subset(self, index: np.ndarray) -> FlatCollection:
        """The collection of the events ``index`` (int array), in that order."""
        offsets, entries = _take_lists(self.offsets, np.asarray(index, dtype=np.int64))
        return FlatCollection(offsets, {f: c[entries] for f, c in self.columns.items()},
                              self.with_name, self.behavior, self.trig,
                              None if self.source is None else self.source[entries])

    def to_awkward(self) -> ak.Array:
        """The collection as jagged awkward records (sharing the flat columns)."""
        record = ak.contents.RecordArray(
            [ak.contents.NumpyArray(c) for c in self.columns.values()], list(self.columns),
            length=int(self.offsets[-1]), parameters={"__record__": self.with_name})
        layout = ak.contents.ListOffsetArray(ak.index.Index64(self.offsets), record)
        return ak.Array(layout, behavior=self.behavior)


class _Trig:
    """cos φ, sin φ, sinh η, cosh η of the objects of an input collection (float64), each
    computed on first use (``done``); η and φ as read."""

    def __init__(self, eta: np.ndarray, phi: np.ndarray) -> None:
        self.eta = np.ascontiguousarray(eta)
        self.phi = np.ascontiguousarray(phi)
        if self.eta.dtype != np.float32 or self.phi.dtype != np.float32:
            self.eta = self.eta.astype(np.float64)
            self.phi = self.phi.astype(np.float64)
        self.values = np.empty((len(eta), 4))
        self.done = np.zeros(len(eta), dtype=bool)


class _Columns:
    """The input columns of one chunk as flat numpy arrays, each taken from the events once."""

    def __init__(self, events: ak.Array) -> None:
        self.events = events
        self._collections: dict[str, ak.Array] = {}
        self._fields: dict[str, list[str]] = {}
        self._parts: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        # views of some events; weak, as each refers back to these columns
        self._restricted: weakref.WeakValueDictionary[int, _SubColumns] = (
            weakref.WeakValueDictionary())

    def collection(self, name: str) -> ak.Array:
        if name not in self._collections:
            self._collections[name] = self.events[name]
        return self._collections[name]

    def fields(self, name: str) -> list[str]:
        if name not in self._fields:
            self._fields[name] = _fields(self.collection(name))
        return self._fields[name]

    def parts(self, name: str, field: str) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, content) of a jagged column (item access: no behavior overhead)."""
        key = (name, field)
        if key not in self._parts:
            self._parts[key] = flat_parts(self.collection(name)[field])
        return self._parts[key]

    def content(self, name: str, field: str) -> np.ndarray:
        return self.parts(name, field)[1]

    def flat(self, name: str, field: str) -> np.ndarray:
        """A per-event column (e.g. ``MET_pt``) as float64."""
        return _flat(self.collection(name)[field])

    def source_index(self, name: str, entries: np.ndarray) -> np.ndarray:
        """Entries of ``name`` in these columns as entries of the chunk's columns."""
        return entries

    @cached_property
    def jet_trig(self) -> _Trig:
        """(η, φ) functions of the chunk's jets, indexed by :meth:`source_index`."""
        return _Trig(self.content("Jet", "eta"), self.content("Jet", "phi"))

    def restricted(self, index: np.ndarray) -> _SubColumns:
        """The columns of the chunk's events ``index`` (one per index array in use)."""
        known = self._restricted.get(id(index))
        if known is None or known.index is not index:
            known = self._restricted[id(index)] = _SubColumns(self, index)
        return known


class _SubColumns(_Columns):
    """The columns of some events of a chunk, taken from the chunk's flat columns."""

    def __init__(self, chunk: _Columns, index: np.ndarray) -> None:
        # not _Columns.__init__: ``events`` is made from the chunk's on first use
        self.chunk = chunk
        self.index = index
        self._collections = {}
        self._fields = {}
        self._parts = {}
        self._restricted = weakref.WeakValueDictionary()
        self._entries: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @cached_property
    def events(self) -> ak.Array:  # type: ignore[override]
        return self.chunk.events[self.index]

    def fields(self, name: str) -> list[str]:
        return self.chunk.fields(name)

    def entries(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, entries of the chunk's columns) of collection ``name`` for these events."""
        if name not in self._entries:
            offsets = self.chunk.parts(name, _first_field(self.chunk, name))[0]
            self._entries[name] = _take_lists(offsets, self.index)
        return self._entries[name]

    def parts(self, name: str, field: str) -> tuple[np.ndarray, np.ndarray]:
        key = (name, field)
        if key not in self._parts:
            offsets, entries = self.entries(name)
            self._parts[key] = (offsets, self.chunk.content(name, field)[entries])
        return self._parts[key]

    def flat(self, name: str, field: str) -> np.ndarray:
        return self.chunk.flat(name, field)[self.index]

    def source_index(self, name: str, entries: np.ndarray) -> np.ndarray:
        return self.entries(name)[1][entries]

    @property
    def jet_trig(self) -> _Trig:  # type: ignore[override]
        return self.chunk.jet_trig

    def restricted(self, index: np.ndarray) -> _SubColumns:
        return self.chunk.restricted(self.index[index])


def _first_field(cols: _Columns, name: str) -> str:
    """A field whose offsets are the collection's (pt where there is one)."""
    fields = cols.fields(name)
    return "pt" if "pt" in fields else fields[0]


# ---------------------------------------------------------------------------
# numba kernels
# ---------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _nth_value(offsets, n, column, out):
    """out[i]: the n-th entry of list i as float64, NaN where the list is shorter."""
    for i in range(out.shape[0]):
        j = offsets[i] + n
        out[i] = np.float64(column[j]) if j < offsets[i + 1] else np.nan


@numba.njit(cache=True, nogil=True)
def _nth_p4_trig(offsets, n, source, pt, mass, eta, phi, trig, done, ox, oy, oz, oe):
    """(px, py, pz, E) of the n-th entry of each list, with the (η, φ) functions of its
    input object ``source[j]`` taken from ``trig`` (computed there on first use).

    The operations of :func:`ewpolar.observables.nth_pxpypze_flat`, the same numbers.
    """
    for i in range(ox.shape[0]):
        j = offsets[i] + n
        if j >= offsets[i + 1]:
            ox[i] = oy[i] = oz[i] = oe[i] = np.nan
            continue
        r = source[j]
        if not done[r]:
            f = np.float64(phi[r])
            h = np.float64(eta[r])
            trig[r, 0] = math.cos(f)
            trig[r, 1] = math.sin(f)
            trig[r, 2] = math.sinh(h)
            trig[r, 3] = math.cosh(h)
            done[r] = True
        p_t = np.float64(pt[j])
        m = np.float64(mass[j])
        p = p_t * trig[r, 3]
        ox[i] = p_t * trig[r, 0]
        oy[i] = p_t * trig[r, 1]
        oz[i] = p_t * trig[r, 2]
        oe[i] = math.sqrt(p * p + m * m)


@numba.njit(cache=True, nogil=True)
def _take_lists(offsets, index):
    """Offsets and flat entry indices of the lists ``index`` of a list collection."""
    out_offsets = np.empty(index.shape[0] + 1, np.int64)
    out_offsets[0] = 0
    for k in range(index.shape[0]):
        i = index[k]
        out_offsets[k + 1] = out_offsets[k] + offsets[i + 1] - offsets[i]
    entries = np.empty(out_offsets[-1], np.int64)
    for k in range(index.shape[0]):
        i = index[k]
        start = out_offsets[k]
        for j in range(offsets[i + 1] - offsets[i]):
            entries[start + j] = offsets[i] + j
    return out_offsets, entries


@numba.njit(cache=True, nogil=True, inline="always")
def _greater(a, b):
    """The order of a descending awkward argsort: NaN before every number."""
    return a > b or (a != a and b == b)


@numba.njit(cache=True, nogil=True)
def _merge_by_pt(a_off, a_pass, a_pt, b_off, b_pass, b_pt):
    """Per event, the passing entries of a then of b, stably sorted by decreasing pT.

    Returns (offsets, source): source >= 0 indexes a, source < 0 indexes b as -1 - j.
    """
    n = a_off.shape[0] - 1
    total = 0
    for j in range(a_pass.shape[0]):
        total += a_pass[j]
    for j in range(b_pass.shape[0]):
        total += b_pass[j]
    offsets = np.empty(n + 1, np.int64)
    source = np.empty(total, np.int64)
    key = np.empty(total, np.float64)
    offsets[0] = 0
    k = 0
    for i in range(n):
        start = k
        for side in range(2):
            lo = a_off[i] if side == 0 else b_off[i]
            hi = a_off[i + 1] if side == 0 else b_off[i + 1]
            for j in range(lo, hi):
                if side == 0:
                    if not a_pass[j]:
                        continue
                    v = np.float64(a_pt[j])
                    src = j
                else:
                    if not b_pass[j]:
                        continue
                    v = np.float64(b_pt[j])
                    src = -1 - j
                pos = k
                while pos > start and _greater(v, key[pos - 1]):
                    key[pos] = key[pos - 1]
                    source[pos] = source[pos - 1]
                    pos -= 1
                key[pos] = v
                source[pos] = src
                k += 1
        offsets[i + 1] = k
    return offsets, source


@numba.njit(cache=True, nogil=True)
def _gather_two(source, a, b, out):
    """out[k] = a[source[k]] where source[k] >= 0, else b[-1 - source[k]]."""
    for k in range(source.shape[0]):
        j = source[k]
        out[k] = a[j] if j >= 0 else b[-1 - j]


@numba.njit(cache=True, nogil=True)
def _isolated_kernel(j_off, j_eta, j_phi, l_off, l_eta, l_phi, pi, two_pi, dr_min,
                     out):
    """out[j]: jet j has ΔR ≥ dr_min to every lepton of its event.

    The same operations, in the same precision, as coffea's ``metric_table``
    (vector's ΔR: √(((φ_j − φ_ℓ + π) mod 2π − π)² + (η_j − η_ℓ)²)).
    """
    for i in range(j_off.shape[0] - 1):
        for j in range(j_off[i], j_off[i + 1]):
            ok = True
            for k in range(l_off[i], l_off[i + 1]):
                x = j_phi[j] - l_phi[k] + pi
                # x mod 2π is x itself on [0, 2π) (a -0.0 left as is gives the same Δφ)
                dphi = (x if x >= 0 and x < two_pi else np.remainder(x, two_pi)) - pi
                deta = j_eta[j] - l_eta[k]
                dr = np.sqrt(dphi * dphi + deta * deta)
                if not dr >= dr_min:
                    ok = False
                    break
            out[j] = ok


@numba.njit(cache=True, nogil=True)
def _pt_ordered_selection(off, good, pt, keep_a, keep_b):
    """Per event, the entries with ``good`` stably sorted by decreasing pT; of these,
    the ones with ``keep_a`` and the ones with ``keep_b``.

    Returns (a_offsets, a_index, b_offsets, b_index), indices into the input.
    """
    n = off.shape[0] - 1
    order = np.empty(pt.shape[0], np.int64)
    key = np.empty(pt.shape[0], np.float64)
    a_off = np.empty(n + 1, np.int64)
    b_off = np.empty(n + 1, np.int64)
    a_idx = np.empty(pt.shape[0], np.int64)
    b_idx = np.empty(pt.shape[0], np.int64)
    a_off[0] = 0
    b_off[0] = 0
    na = 0
    nb = 0
    for i in range(n):
        m = 0
        for j in range(off[i], off[i + 1]):
            if not good[j]:
                continue
            v = np.float64(pt[j])
            pos = m
            while pos > 0 and _greater(v, key[pos - 1]):
                key[pos] = key[pos - 1]
                order[pos] = order[pos - 1]
                pos -= 1
            key[pos] = v
            order[pos] = j
            m += 1
        for q in range(m):
            j = order[q]
            if keep_a[j]:
                a_idx[na] = j
                na += 1
            if keep_b[j]:
                b_idx[nb] = j
                nb += 1
        a_off[i + 1] = na
        b_off[i + 1] = nb
    return a_off, a_idx[:na], b_off, b_idx[:nb]


# ---------------------------------------------------------------------------
# leptons
# ---------------------------------------------------------------------------


@dataclass
class _RawLeptons:
    """One lepton flavour of a chunk: flat columns, offsets and the selection mask."""

    offsets: np.ndarray
    columns: dict[str, np.ndarray]
    passes: np.ndarray
    pdg: int


def _kinematic_mask(pt: np.ndarray, eta: np.ndarray, cuts: LeptonCuts | JetCuts) -> np.ndarray:
    return (pt > cuts.pt_min) & (np.abs(eta) < cuts.eta_max)


def _raw_leptons(cols: _Columns, name: str, cuts: LeptonCuts, pdg: int,
                 notes: set[str], variation: str = "nominal") -> _RawLeptons:
    fields = cols.fields(name)

    def col(f: str) -> np.ndarray:
        return cols.content(name, _field_for(fields, f, variation))

    offsets, pt = cols.parts(name, _field_for(fields, "pt", variation))
    columns = {"pt": pt}
    for f in ("eta", "phi", "mass", "charge"):
        columns[f] = col(f)
    mask = _kinematic_mask(pt, columns["eta"], cuts)
    flavour, id_branch, iso_branch = (("electron", "cutBased", "pfRelIso03_all") if pdg == 11
                                      else ("muon", "tightId", "pfRelIso04_all"))
    # identification: a pass flag, else Electron_cutBased >= id_min / Muon_tightId
    if cuts.id_min > 0:
        if "passId" in fields:
            mask &= col("passId")
        elif pdg == 11 and id_branch in fields:
            mask &= col(id_branch) >= cuts.id_min
        elif pdg == 13 and id_branch in fields:
            tight = col(id_branch).astype(bool)
            mask &= tight
            if len(tight) >= _FEW_MUONS and not tight.any():
                notes.add("objects: Muon_tightId is False for every muon of the input: "
                          "no muon passes the identification")
        else:
            notes.add(f"objects: {flavour} identification not applied "
                      f"(no {name}_{id_branch} branch)")
    # isolation: a pass flag, else the relative isolation <= iso_max
    if cuts.iso_max is not None:
        if "passIso" in fields:
            mask &= col("passIso")
        elif iso_branch in fields:
            mask &= col(iso_branch) <= cuts.iso_max
        else:
            notes.add(f"objects: {flavour} isolation not applied (no {name}_{iso_branch} branch)")
    return _RawLeptons(offsets, columns, mask, pdg)


def _with_pdg_id(columns: dict[str, np.ndarray], pdg: int) -> dict[str, np.ndarray]:
    # particle (negative charge) has positive pdgId
    return {**columns, "pdgId": -pdg * columns["charge"]}


def _lepton_collection(offsets: np.ndarray, columns: dict[str, np.ndarray]) -> FlatCollection:
    return FlatCollection(offsets, {f: columns[f] for f in _LEPTON_FIELDS},
                          "PtEtaPhiMCandidate", candidate.behavior)


def _selected(raw: _RawLeptons) -> FlatCollection:
    keep = raw.passes
    before = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(keep, out=before[1:])
    offsets = before[raw.offsets]
    columns = _with_pdg_id({f: c[keep] for f, c in raw.columns.items()}, raw.pdg)
    return _lepton_collection(offsets, columns)


def _merged(a: _RawLeptons, b: _RawLeptons) -> FlatCollection:
    """Selected leptons of both flavours, stably sorted by decreasing pT (a before b on ties)."""
    offsets, source = _merge_by_pt(a.offsets, a.passes, a.columns["pt"],
                                   b.offsets, b.passes, b.columns["pt"])
    columns = {}
    for f in ("pt", "eta", "phi", "mass", "charge"):
        ca, cb = a.columns[f], b.columns[f]
        columns[f] = np.empty(len(source), dtype=np.result_type(ca, cb))
        _gather_two(source, ca, cb, columns[f])
    charge = columns["charge"]
    # particle (negative charge) has positive pdgId
    factor = np.where(source >= 0, -a.pdg, -b.pdg).astype(charge.dtype)
    columns["pdgId"] = factor * charge
    return _lepton_collection(offsets, columns)


def select_electrons(events: ak.Array, cuts: LeptonCuts, notes: set[str] | None = None) -> ak.Array:
    """Selected electrons as candidate records (pt, eta, phi, mass, charge, pdgId)."""
    notes = notes if notes is not None else set()
    return _selected(_raw_leptons(_Columns(events), "Electron", cuts, 11, notes)).to_awkward()


def select_muons(events: ak.Array, cuts: LeptonCuts, notes: set[str] | None = None) -> ak.Array:
    """Selected muons as candidate records (pt, eta, phi, mass, charge, pdgId)."""
    notes = notes if notes is not None else set()
    return _selected(_raw_leptons(_Columns(events), "Muon", cuts, 13, notes)).to_awkward()


def _select_leptons_flat(cols: _Columns, objects: ObjectSelection,
                         notes: set[str], variation: str = "nominal") -> FlatCollection:
    electrons = _raw_leptons(cols, "Electron", objects.electron, 11, notes, variation)
    muons = _raw_leptons(cols, "Muon", objects.muon, 13, notes, variation)
    return _merged(electrons, muons)


def select_leptons(events: ak.Array, objects: ObjectSelection,
                   notes: set[str] | None = None) -> ak.Array:
    """Selected electrons and muons merged and sorted by decreasing pT."""
    notes = notes if notes is not None else set()
    return _select_leptons_flat(_Columns(events), objects, notes).to_awkward()


# ---------------------------------------------------------------------------
# jets
# ---------------------------------------------------------------------------


def has_jes_variations(events: ak.Array) -> bool:
    """True when the input has the total JES up/down jet pT branches."""
    fields = _fields(events.Jet)
    return all(f"pt_{s}" in fields for s in JES_VARIATIONS.values())


def _clean_jet_mask(cols: _Columns, objects: ObjectSelection, leptons: FlatCollection,
                    notes: set[str], variation: str = "nominal") -> np.ndarray:
    """Per input jet: identified and away from every selected lepton (JES independent)."""
    fields = cols.fields("Jet")

    def col(f: str) -> np.ndarray:
        return cols.content("Jet", _field_for(fields, f, variation))

    offsets, pt = cols.parts("Jet", "pt")
    good = np.ones(len(pt), dtype=bool)
    if objects.jet.id_min > 0:
        if "passId" in fields:
            good = col("passId").astype(bool)
        elif "jetId" in fields:
            good = col("jetId") >= objects.jet.id_min
        else:
            notes.add("objects: jet identification not applied (no Jet_jetId branch)")
    if objects.overlap_dr > 0:
        eta = col("eta")
        phi = col("phi")
        l_eta, l_phi = leptons["eta"], leptons["phi"]
        # numpy evaluates ΔR in the common type of the inputs (Python floats adapt to it)
        ftype = np.result_type(phi, l_phi, eta, l_eta).type
        isolated = np.empty(len(pt), dtype=bool)
        _isolated_kernel(offsets, eta, phi, leptons.offsets, l_eta, l_phi, ftype(np.pi),
                         ftype(2 * np.pi), ftype(objects.overlap_dr), isolated)
        good = good & isolated
    return good


def _select_jets_flat(cols: _Columns, objects: ObjectSelection, clean: np.ndarray,
                      variation: str, notes: set[str]) -> tuple[FlatCollection, FlatCollection]:
    fields = cols.fields("Jet")

    def col(f: str) -> np.ndarray:
        return cols.content("Jet", _field_for(fields, f, variation))

    offsets, raw_pt = cols.parts("Jet", "pt")
    suffix = JES_VARIATIONS.get(variation)
    if variation == "nominal":
        pt = raw_pt
        mass = cols.content("Jet", "mass")
    elif suffix is not None and f"pt_{suffix}" in fields:
        pt = cols.content("Jet", f"pt_{suffix}")
        if f"mass_{suffix}" in fields:
            mass = cols.content("Jet", f"mass_{suffix}")
        else:
            mass = cols.content("Jet", "mass") * (pt / raw_pt)
    else:
        pt, mass = col("pt"), col("mass")
    eta = col("eta")
    phi = col("phi")
    b = objects.bjet
    if "passBtag" in fields:
        tagged = col("passBtag").astype(bool)
        btag = col("btag") if "btag" in fields else tagged.astype(np.float32)
    elif "btag" in fields or "btagDeepFlavB" in fields:
        btag = col("btag") if "btag" in fields else cols.content("Jet", "btagDeepFlavB")
        tagged = btag >= b.score_min
    else:
        btag = np.full_like(raw_pt, np.nan)
        tagged = btag >= b.score_min
        notes.add("objects: no Jet_btagDeepFlavB branch, no jet is b-tagged")
    if len(btag) and np.all(btag <= _NO_BTAG):
        notes.add("objects: every jet's b-tag score is -999 or below (-3000 in the CMS 2015 "
                  "open data): the input has no b-tag information, no jet is b-tagged")
    jet_ok = _kinematic_mask(pt, eta, objects.jet)
    b_ok = (pt > b.pt_min) & (np.abs(eta) < b.eta_max) & tagged
    j_off, j_idx, b_off, b_idx = _pt_ordered_selection(offsets, clean, pt, jet_ok, b_ok)
    columns = {"pt": pt, "eta": eta, "phi": phi, "mass": mass, "btag": btag}
    # the chunk's (η, φ) functions hold for the nominal directions only
    trig = cols.jet_trig if not _varied_fields(fields, variation) & {"eta", "phi"} else None

    def collection(off: np.ndarray, idx: np.ndarray) -> FlatCollection:
        return FlatCollection(off, {f: columns[f][idx] for f in _JET_FIELDS},
                              "PtEtaPhiMLorentzVector", vector.behavior, trig,
                              None if trig is None else cols.source_index("Jet", idx))

    return collection(j_off, j_idx), collection(b_off, b_idx)


def _jet_shift(events: ak.Array, variation: str) -> ak.Array:
    """Per event, the summed (px, py) change of all jets of ``variation`` against nominal."""
    raw = events.Jet
    dpt = raw[f"pt_{JES_VARIATIONS[variation]}"] - raw.pt
    return ak.zip({"px": ak.sum(dpt * np.cos(raw.phi), axis=1),
                   "py": ak.sum(dpt * np.sin(raw.phi), axis=1)})


def select_jets(events: ak.Array, objects: ObjectSelection, leptons: ak.Array,
                variation: str = "nominal",
                notes: set[str] | None = None) -> tuple[ak.Array, ak.Array, ak.Array | None]:
    """Selected jets and b-jets for one JES variation.

    Returns:
        (jets, bjets, shift): pT-sorted Lorentz-vector records with a ``btag`` field
        (``Jet_btagDeepFlavB``, NaN when absent), and per event the summed
        (px, py) change of all jets against nominal, as an awkward record with
        fields ``px``, ``py`` (None for "nominal"), used to shift the MET.
    """
    notes = notes if notes is not None else set()
    offsets, eta = flat_parts(leptons["eta"])
    flat = FlatCollection(offsets, {"eta": eta, "phi": flat_parts(leptons["phi"])[1]}, "", None)
    cols = _Columns(events)
    clean = _clean_jet_mask(cols, objects, flat, notes)
    jets, bjets = _select_jets_flat(cols, objects, clean, variation, notes)
    shift = None if variation == "nominal" else _jet_shift(events, variation)
    return jets.to_awkward(), bjets.to_awkward(), shift


# ---------------------------------------------------------------------------
# missing transverse momentum
# ---------------------------------------------------------------------------


def _met(cols: _Columns, variation: str, notes: set[str]) -> tuple[np.ndarray, np.ndarray]:
    if variation == "nominal":
        return cols.flat("MET", "pt"), cols.flat("MET", "phi")
    fields = cols.fields("MET")
    if f"pt{VARIATION_SEP}{variation}" in fields:
        return (cols.flat("MET", f"pt{VARIATION_SEP}{variation}"),
                cols.flat("MET", f"phi{VARIATION_SEP}{variation}"))
    suffix = JES_VARIATIONS.get(variation)
    if suffix is None or f"pt_{suffix}" not in cols.fields("Jet"):
        # a profile's variation without a varied MET: the nominal MET (CP-algorithm convention)
        return cols.flat("MET", "pt"), cols.flat("MET", "phi")
    if f"pt_{suffix}" in fields and f"phi_{suffix}" in fields:
        return cols.flat("MET", f"pt_{suffix}"), cols.flat("MET", f"phi_{suffix}")
    notes.add(f"objects: no MET_pt_{suffix}; the jet energy shift is propagated to the MET")
    shift = _jet_shift(cols.events, variation)
    pt, phi = cols.flat("MET", "pt"), cols.flat("MET", "phi")
    px = pt * np.cos(phi) - _flat(shift.px)
    py = pt * np.sin(phi) - _flat(shift.py)
    return np.hypot(px, py), np.arctan2(py, px)


def _flat(arr: ak.Array) -> np.ndarray:
    layout = arr.layout
    if isinstance(layout, ak.contents.NumpyArray):
        return np.asarray(layout.data, dtype=np.float64)
    return np.asarray(ak.to_numpy(arr), dtype=np.float64)


@dataclass
class Objects:
    """Selected physics objects of one chunk for one jet-energy variation.

    Attributes are computed on first use, so a region that never looks at jets
    does not read any ``Jet_*`` branch. ``lepton_table``, ``jet_table`` and
    ``bjet_table`` are the flat collections (:class:`FlatCollection`);
    ``leptons``, ``jets`` and ``bjets`` are their awkward views.
    """

    events: ak.Array
    config: ObjectSelection
    variation: str = "nominal"
    notes: set[str] | None = None
    #: objects this variation takes its JES-independent parts from (see ``varied``)
    shared_from: Objects | None = field(default=None, repr=False, compare=False)
    #: objects these are a subset of, and the events of those taken (see ``subset``)
    parent: Objects | None = field(default=None, repr=False, compare=False)
    index: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: where the input columns come from (default: the events)
    columns: _Columns | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.notes is None:
            self.notes = set()

    @cached_property
    def _columns(self) -> _Columns:
        return self.columns if self.columns is not None else _Columns(self.events)

    @cached_property
    def lepton_table(self) -> FlatCollection:
        """Selected electrons and muons, pT-sorted (independent of the JES variation)."""
        if self.shared_from is not None:
            return self.shared_from.lepton_table
        if self.parent is not None:
            return self.parent.lepton_table.subset(self.index)
        return _select_leptons_flat(self._columns, self.config, self.notes, self.variation)

    @cached_property
    def leptons(self) -> ak.Array:
        """Selected electrons and muons, pT-sorted (independent of the JES variation)."""
        if self.shared_from is not None:
            return self.shared_from.leptons
        return self.lepton_table.to_awkward()

    @cached_property
    def clean_jet_mask(self) -> np.ndarray:
        """Per input jet: identified and away from the leptons (independent of the JES variation)."""
        if self.shared_from is not None:
            return self.shared_from.clean_jet_mask
        if self.parent is not None:
            return self.parent.clean_jet_mask[self._columns.entries("Jet")[1]]
        return _clean_jet_mask(self._columns, self.config, self.lepton_table, self.notes,
                               self.variation)

    @cached_property
    def _jet_tables(self) -> tuple[FlatCollection, FlatCollection]:
        if self.parent is not None:
            return tuple(t.subset(self.index) for t in self.parent._jet_tables)
        return _select_jets_flat(self._columns, self.config, self.clean_jet_mask, self.variation,
                                 self.notes)

    @property
    def jet_table(self) -> FlatCollection:
        """Selected, overlap-cleaned jets, pT-sorted."""
        return self._jet_tables[0]

    @property
    def bjet_table(self) -> FlatCollection:
        """b-tagged jets, pT-sorted."""
        return self._jet_tables[1]

    @cached_property
    def jets(self) -> ak.Array:
        """Selected, overlap-cleaned jets, pT-sorted."""
        return self.jet_table.to_awkward()

    @cached_property
    def bjets(self) -> ak.Array:
        """b-tagged jets, pT-sorted."""
        return self.bjet_table.to_awkward()

    @cached_property
    def _met(self) -> tuple[np.ndarray, np.ndarray]:
        if self.parent is not None:
            return self.parent.met_pt[self.index], self.parent.met_phi[self.index]
        return _met(self._columns, self.variation, self.notes)

    @property
    def met_pt(self) -> np.ndarray:
        """Missing transverse momentum magnitude (GeV), float64 per event."""
        return self._met[0]

    @property
    def met_phi(self) -> np.ndarray:
        """Missing transverse momentum azimuth, float64 per event."""
        return self._met[1]

    @cached_property
    def shares_leptons(self) -> bool:
        """True when this variation changes no lepton and no jet identification or
        direction: it has the nominal leptons and jet cleaning (every JES variation)."""
        if self.variation == "nominal":
            return True
        if any(_varied_fields(self._columns.fields(c), self.variation)
               for c in ("Electron", "Muon")):
            return False
        return not _varied_fields(self._columns.fields("Jet"), self.variation) & {
            "eta", "phi", "passId", "jetId"}

    def varied(self, variation: str) -> Objects:
        """The objects of another variation (of the same events), sharing the
        leptons and jet cleaning with these where the variation does not change them
        (:attr:`shares_leptons`)."""
        other = build_objects(self.events, self.config, variation, self.notes)
        other.columns = self._columns
        if other.shares_leptons:
            other.shared_from = self if self.shared_from is None else self.shared_from
        return other

    def subset(self, index: np.ndarray, events: ak.Array | None = None,
               leptons_from: Objects | None = None) -> Objects:
        """The objects of the events ``index`` (int array) of these, taken from these.

        Args:
            index: indices into these objects' events.
            events: ``self.events[index]`` if already at hand.
            leptons_from: a subset (same events) of another variation, whose leptons
                these share.
        """
        index = np.asarray(index, dtype=np.int64)
        sub = Objects(self.events[index] if events is None else events, self.config,
                      self.variation, self.notes, parent=self, index=index,
                      columns=self._columns.restricted(index))
        sub.shared_from = leptons_from if self.shares_leptons else None
        return sub


def build_objects(events: ak.Array, objects: ObjectSelection, variation: str = "nominal",
                  notes: set[str] | None = None) -> Objects:
    """The lazily evaluated selected objects of ``events`` for ``variation``.

    Args:
        events: NanoAOD-schema events (coffea NanoEvents).
        objects: the config's object definitions.
        variation: "nominal", "jes_up" or "jes_down" (NanoAOD's JES branches), or a
            shape variation of a profile-read input (fields ``<field>__<variation>``).
        notes: set collecting one line per requirement that could not be applied.
    """
    if not variation or VARIATION_SEP in variation:
        raise ValueError(f"invalid object variation '{variation}'")
    return Objects(events, objects, variation, notes if notes is not None else set())
