"""The one registry of per-event features: histogram observables, classifier inputs,
and the inputs of the reweighting and likelihood-ratio estimators.

:data:`FEATURES` maps a name to a function of a :class:`FeatureContext` (the
selected objects of a set of events, :mod:`ewpolar.selections.variables`). The
processors histogram these features and feed them to the ONNX classifiers; the
classifier training set, the reweighting and the SBI estimators compute them
with the same functions, so a name means the same numbers everywhere.

:func:`build_features` makes a :class:`FeatureTable` from a mapping of NanoAOD
branch names to arrays, as returned by :func:`ewpolar.generator.simulate` or
read from ROOT files with :func:`read_branches`. Objects and region cuts are those
of the analysis (:mod:`ewpolar.selections.objects`, :mod:`ewpolar.selections.regions`,
with the config's cut values), so the estimators see the events the processors
histogram.

Features (GeV for momenta and masses; "lepton" is the leading selected lepton,
ℓ1, ℓ2 and j1, j2 the two leading leptons and jets, b1, b2 the two leading
b-jets, H = b1 + b2, ν the neutrino with p_z from the W-mass constraint with
the region's ``neutrino_rule``, W = ℓ + ν):

==========================  ====================================================
``lep_pt``, ``lep_eta``     lepton p_T, η
``lep_charge``              Q_ℓ
``lep1_pt`` ... ``lep2_eta``  p_T, η of ℓ1, ℓ2
``mll``, ``dr_ll``          m_ℓℓ and ΔR_ℓℓ of ℓ1, ℓ2
``dphi_ll``                 |Δφ_ℓℓ|
``met``                     E_T^miss
``n_jets``, ``n_bjets``     jet multiplicities
``jet1_pt`` ... ``jet2_eta``  p_T, η of j1, j2
``mjj``, ``dy_jj``          m_jj and |Δy_jj| of j1, j2
``dphi_jj``                 |Δφ_jj|
``mt_ww``                   transverse mass of ℓℓ + E_T^miss
``r_pt``                    p_T(ℓ1) p_T(ℓ2) / (p_T(j1) p_T(j2))
``lep1_zeppenfeld``, ...    ζ of ℓ1 (ℓ2) w.r.t. j1, j2; ``zeppenfeld``: both, per lepton
``cos_theta_star``          per lepton: ℓ_i in its W_i rest frame against the W_i
                            direction in the W_1 + W_2 frame; W_i = ℓ_i + ν_i with ν_i
                            half of E_T^miss and p_z from the W mass (smaller |p_z|)
                            (:func:`ewpolar.observables.lepton_pair_cos_theta_star`)
``cos_theta_star_truth``    per lepton: the same angle at generator level (``GenPart``
                            W → ℓν, events with exactly two), NaN otherwise
``nu_pz``                   reconstructed neutrino p_z
``b1_pt`` ... ``b2_eta``    b-jet p_T, η
``mbb``, ``pth``            m_bb and p_T of H
``ptw``                     p_T^W = |p_T(ℓ) + p_T^miss|
``mt_w``, ``mt_tot``        m_T(ℓ, E_T^miss) and m_T^tot(ℓ, ν, b1, b2)
``cos_delta_plus``          cos δ⁺ (docs/physics.md §1b)
``q_cos_delta_plus``        Q_ℓ · cos δ⁺
``cos_theta_star_lab``      lepton in the W rest frame against the W direction in
                            the laboratory frame
``dphi_wh``                 |Δφ(W, H)|
==========================  ====================================================

"Per lepton" features have two values per event (shape (n, 2)): histograms
fill both with the event weight; they are not columns of a feature table or
classifier inputs.

Events that fail the region, or where a requested feature is not finite (an
object is missing), are dropped; :attr:`FeatureTable.selected` marks the kept
events of the input.

Example:
    >>> import numpy as np
    >>> from ewpolar.core.config import load_config
    >>> from ewpolar.generator import simulate
    >>> cfg = load_config("wh")
    >>> table = build_features(simulate(cfg, "wh", 2000, np.random.default_rng(1)), cfg)
    >>> table.values.shape[1] == len(WH_FEATURES)
    True
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numba
import numpy as np
from ewpolar import observables as obs
from ewpolar.core.config import AnalysisConfig, Region
from ewpolar.core.errors import InputError
from ewpolar.selections.objects import build_objects, flat_parts
from ewpolar.selections.regions import region_cuts, region_selection
from ewpolar.selections.variables import EventVariables

__all__ = [
    "FEATURES",
    "SSWW_FEATURES",
    "TRUTH_BRANCHES",
    "TRUTH_FEATURES",
    "WEIGHT_BRANCHES",
    "WH_FEATURES",
    "FeatureContext",
    "FeatureTable",
    "build_features",
    "default_features",
    "events_from_branches",
    "read_branches",
]

log = logging.getLogger(__name__)

#: default inputs of the WH estimators
WH_FEATURES = (
    "lep_pt", "lep_eta", "lep_charge", "met", "nu_pz", "b1_pt", "b1_eta", "b2_pt", "b2_eta",
    "mbb", "pth", "ptw", "mt_w", "mt_tot", "q_cos_delta_plus", "cos_theta_star_lab",
    "dphi_wh",
)
#: default inputs for same-sign WW events
SSWW_FEATURES = (
    "lep1_pt", "lep2_pt", "lep1_eta", "lep2_eta", "mll", "dr_ll", "met", "jet1_pt", "jet2_pt",
    "jet1_eta", "jet2_eta", "mjj", "dy_jj", "n_jets",
)
#: per-event weight branches carried along (when present)
WEIGHT_BRANCHES = ("genWeight", "CPWeight_sm", "CPWeight_int", "CPWeight_quad")
_OBJECT_PREFIXES = ("Electron_", "Muon_", "Jet_", "MET_")
_LIST_WEIGHTS = ("LHEScaleWeight", "LHEPdfWeight")


def default_features(config: AnalysisConfig) -> tuple[str, ...]:
    """The default input names of the config's channel."""
    return WH_FEATURES if config.channel == "wh" else SSWW_FEATURES


def events_from_branches(branches: Mapping[str, Any]) -> ak.Array:
    """Electron, Muon, Jet and MET records from flat NanoAOD branch names.

    Enough for :func:`ewpolar.selections.objects.build_objects` (which reads the fields
    it needs from these records).

    Raises:
        InputError: a collection needed by the object selection is absent.
    """
    out = {}
    for coll in ("Electron", "Muon", "Jet"):
        prefix = coll + "_"
        fields = {k[len(prefix):]: v for k, v in branches.items() if k.startswith(prefix)}
        if not {"pt", "eta", "phi"} <= set(fields):
            raise InputError(f"branches: no {coll}_pt/eta/phi (need NanoAOD-schema events)")
        out[coll] = ak.zip(fields)
    met = {k[4:]: v for k, v in branches.items() if k.startswith("MET_")}
    if not {"pt", "phi"} <= set(met):
        raise InputError("branches: no MET_pt/MET_phi (need NanoAOD-schema events)")
    out["MET"] = ak.zip({k: np.asarray(v) for k, v in met.items()})
    return ak.zip(out, depth_limit=1)


def read_branches(files: Sequence[str | Path], *, tree: str = "Events",
                  max_events: int | None = None) -> dict[str, Any]:
    """The branches :func:`build_features` needs (objects, MET, weights) from ROOT files.

    Args:
        files: ROOT files with one TTree ``tree`` each, read in order.
        max_events: stop after this many events in total.

    Raises:
        InputError: a file is missing, unreadable, or has no such tree.
    """
    import uproot

    parts: list[dict[str, Any]] = []
    remaining = max_events
    for path in files:
        if remaining is not None and remaining <= 0:
            break
        try:
            with uproot.open(path) as handle:
                if tree not in handle:
                    raise InputError(f"{path}: no tree '{tree}'")
                t = handle[tree]
                names = [k for k in t.keys(recursive=False)
                         if k.startswith(_OBJECT_PREFIXES) or k in WEIGHT_BRANCHES
                         or k in _LIST_WEIGHTS]
                arrays = t.arrays(names, entry_stop=remaining, library="ak", how=dict)
        except FileNotFoundError:
            raise InputError(f"{path}: file not found") from None
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: cannot read ({' '.join(str(err).split())[:160]})") from None
        n = len(next(iter(arrays.values()))) if arrays else 0
        parts.append(arrays)
        if remaining is not None:
            remaining -= n
    if not parts:
        raise InputError("no input files")
    out: dict[str, Any] = {}
    for key in parts[0]:
        values = [p[key] for p in parts]
        joined = ak.concatenate(values) if len(values) > 1 else values[0]
        out[key] = ak.to_numpy(joined) if joined.ndim == 1 else joined
    return out


#: (px, py, pz, E) arrays of one object per event, GeV
FourArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class FeatureContext:
    """What the features are computed from: the events of one (JES) variation.

    ``events`` and ``variables`` are the input events or, in a processor,
    ``chunk[index]``: the events of a chunk that some region of some variation
    selects. ``region`` gives the neutrino rule (its ``neutrino_rule``; without a
    region ``min_abs``); features that depend on it are cached per rule by the
    processors. Momenta and masses in GeV; NaN where an object is absent.

    Attributes:
        events: the events (NanoEvents or the records of :func:`events_from_branches`);
            only the generator-level features read them.
        variables: the selected objects of these events and their event variables.
        region: the region being filled, or None.
        notes: where a feature says what it could not compute.
        index: chunk indices of ``events`` when they are a subset of a chunk (None: all).
        chunk: all events of the chunk when ``events = chunk[index]``, for features
            that read flat columns of the chunk directly.
    """

    events: Any
    variables: EventVariables
    region: Region | None = None
    notes: set[str] = field(default_factory=set)
    index: np.ndarray | None = None
    chunk: Any = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def neutrino_rule(self) -> str:
        """Rule choosing the neutrino p_z root (``min_abs`` without a region)."""
        rule = self.region.neutrino_rule if self.region is not None else None
        return rule or "min_abs"

    def _get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def p4(self, kind: str, n: int) -> FourArrays:
        """(px, py, pz, E) of the n-th leading "lepton", "jet" or "bjet" (NaN where absent)."""
        getter = {"lepton": self.variables.lepton_p4, "jet": self.variables.jet_p4,
                  "bjet": self.variables.bjet_p4}[kind]
        return getter(n)

    @property
    def lep(self) -> FourArrays:
        """The leading lepton."""
        return self.variables.lepton_p4(0)

    @property
    def met_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """(px, py) of the missing transverse momentum."""
        return self.variables.met_pxpy

    @property
    def higgs(self) -> FourArrays:
        """H = b1 + b2, the two leading b-jets."""
        def make() -> FourArrays:
            b1, b2 = self.variables.bjet_p4(0), self.variables.bjet_p4(1)
            return tuple(a + b for a, b in zip(b1, b2, strict=True))
        return self._get("higgs", make)

    @property
    def neutrino(self) -> FourArrays:
        """ν from E_T^miss with p_z from the W-mass constraint (the region's rule)."""
        def make() -> FourArrays:
            mx, my = self.met_xy
            h = self.higgs
            pz = obs.neutrino_pz(*self.lep, mx, my, rule=self.neutrino_rule,
                                 h_px=h[0], h_py=h[1], h_pz=h[2], h_e=h[3])
            return obs.neutrino_four_vector(mx, my, pz)
        return self._get("neutrino", make)

    @property
    def w(self) -> FourArrays:
        """W = ℓ + ν."""
        return self._get("w", lambda: tuple(a + b for a, b in zip(self.lep, self.neutrino,
                                                                   strict=True)))

    def cos_delta_plus(self) -> np.ndarray:
        """cos δ⁺ of the WH candidate (:func:`ewpolar.observables.wh_cos_delta_plus_p4`)."""
        return self._get("cos_delta_plus", lambda: obs.wh_cos_delta_plus_p4(
            self.lep, self.variables.bjet_p4(0), self.variables.bjet_p4(1), *self.met_xy,
            rule=self.neutrino_rule))



def _pt(p4: FourArrays) -> np.ndarray:
    return np.hypot(p4[0], p4[1])


def _eta(p4: FourArrays) -> np.ndarray:
    pt = np.hypot(p4[0], p4[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arcsinh(p4[2] / pt)


def _cos_theta_star_lab(c: FeatureContext) -> np.ndarray:
    w = c.w
    ones, zeros = np.ones_like(w[0]), np.zeros_like(w[0])
    return obs.cos_theta_star(*c.lep, *w, zeros, zeros, zeros, ones)


def _cos_theta_star_ww(c: FeatureContext) -> np.ndarray:
    c1, c2 = obs.lepton_pair_cos_theta_star_p4(c.p4("lepton", 0), c.p4("lepton", 1), *c.met_xy)
    return np.stack([c1, c2], axis=1)


@numba.njit(cache=True, nogil=True)
def _w_decay_leptons(offsets, pdg_id, mother, events, out):
    """For the events ``events``: the first two charged leptons whose mother is a W,
    and their mothers.

    out[k] = (ℓ1, ℓ2, W of ℓ1, W of ℓ2) of event events[k] as flat indices (-1 where
    absent); returns the number of such leptons per event.
    """
    count = np.zeros(events.shape[0], np.int64)
    for k in range(events.shape[0]):
        i = events[k]
        out[k, :] = -1
        for j in range(offsets[i], offsets[i + 1]):
            a = abs(pdg_id[j])
            if a != 11 and a != 13 and a != 15:
                continue
            m = mother[j]
            if m < 0:
                continue
            mj = offsets[i] + m
            if abs(pdg_id[mj]) != 24:
                continue
            if count[k] < 2:
                out[k, count[k]] = j
                out[k, 2 + count[k]] = mj
            count[k] += 1
    return count


def _cos_theta_star_truth(c: FeatureContext) -> np.ndarray:
    """Generator-level cos θ* of the two W → ℓν leptons in the WW frame ((n, 2), NaN: none)."""
    n = len(c.events)
    if "GenPart" not in c.events.fields:
        c.notes.add("cos_theta_star_truth: no GenPart collection; not filled")
        return np.full((n, 2), np.nan)
    # the flat columns of the whole chunk (no copies) and the events wanted in them
    if c.chunk is not None and c.index is not None:
        gen, events = c.chunk.GenPart, np.asarray(c.index, dtype=np.int64)
    else:
        gen, events = c.events.GenPart, np.arange(n, dtype=np.int64)
    offsets, pdg_id = flat_parts(gen["pdgId"])
    index = np.empty((n, 4), dtype=np.int64)
    two = _w_decay_leptons(offsets, pdg_id, flat_parts(gen["genPartIdxMother"])[1], events,
                           index) == 2
    columns = [flat_parts(gen[f])[1] for f in ("pt", "eta", "phi", "mass")]
    found = index[two].T.copy()  # (ℓ1, ℓ2, W1, W2) × events with two W → ℓν
    l1, l2, w1, w2 = (obs.ptetaphim_to_pxpypze(*(col[found[k]] for col in columns))
                      for k in range(4))
    frame = tuple(a + b for a, b in zip(w1, w2, strict=True))
    out = np.full((n, 2), np.nan)
    out[two, 0] = obs.cos_theta_star(*l1, *w1, *frame)
    out[two, 1] = obs.cos_theta_star(*l2, *w2, *frame)
    return out


def _lepton_zeppenfeld(c: FeatureContext, n: int) -> np.ndarray:
    return obs.zeppenfeld(*c.p4("lepton", n), *c.p4("jet", 0), *c.p4("jet", 1))


def _zeppenfeld(c: FeatureContext) -> np.ndarray:
    return np.stack([_lepton_zeppenfeld(c, i) for i in (0, 1)], axis=1)


def _ptw(c: FeatureContext) -> np.ndarray:
    lx, ly, _, _ = c.lep
    mx, my = c.met_xy
    return np.hypot(lx + mx, ly + my)


#: feature name → function of a :class:`FeatureContext`: float64 of shape (n,) (one value
#: per event) or (n, 2) (one per lepton; not a feature-table column or classifier input)
FEATURES: dict[str, Callable[[FeatureContext], np.ndarray]] = {
    # leptons, E_T^miss
    "lep_pt": lambda c: c.variables.lepton(0, "pt"),
    "lep_eta": lambda c: c.variables.lepton(0, "eta"),
    "lep_charge": lambda c: c.variables.lepton(0, "charge"),
    "lep1_pt": lambda c: c.variables.lepton(0, "pt"),
    "lep2_pt": lambda c: c.variables.lepton(1, "pt"),
    "lep1_eta": lambda c: c.variables.lepton(0, "eta"),
    "lep2_eta": lambda c: c.variables.lepton(1, "eta"),
    "mll": lambda c: c.variables.mll,
    "dr_ll": lambda c: c.variables.dr_ll,
    "dphi_ll": lambda c: obs.delta_phi_ll(*c.p4("lepton", 0), *c.p4("lepton", 1)),
    "met": lambda c: c.variables.met,
    # jets
    "n_jets": lambda c: c.variables.n_jets.astype(np.float64),
    "n_bjets": lambda c: c.variables.n_bjets.astype(np.float64),
    "jet1_pt": lambda c: c.variables.jet1_pt,
    "jet2_pt": lambda c: c.variables.jet2_pt,
    "jet1_eta": lambda c: c.variables.jet(0, "eta"),
    "jet2_eta": lambda c: c.variables.jet(1, "eta"),
    "mjj": lambda c: c.variables.mjj,
    "dy_jj": lambda c: c.variables.dy_jj,
    "dphi_jj": lambda c: obs.delta_phi_jj(*c.p4("jet", 0), *c.p4("jet", 1)),
    # same-sign WW
    "mt_ww": lambda c: obs.mt_ww(*c.p4("lepton", 0), *c.p4("lepton", 1), *c.met_xy),
    "r_pt": lambda c: obs.r_pt(*c.p4("lepton", 0), *c.p4("lepton", 1),
                               *c.p4("jet", 0), *c.p4("jet", 1)),
    "zeppenfeld": _zeppenfeld,
    "lep1_zeppenfeld": lambda c: _lepton_zeppenfeld(c, 0),
    "lep2_zeppenfeld": lambda c: _lepton_zeppenfeld(c, 1),
    "cos_theta_star": _cos_theta_star_ww,
    "cos_theta_star_truth": _cos_theta_star_truth,
    # WH
    "nu_pz": lambda c: c.neutrino[2],
    "b1_pt": lambda c: _pt(c.variables.bjet_p4(0)),
    "b1_eta": lambda c: _eta(c.variables.bjet_p4(0)),
    "b2_pt": lambda c: _pt(c.variables.bjet_p4(1)),
    "b2_eta": lambda c: _eta(c.variables.bjet_p4(1)),
    "mbb": lambda c: c.variables.mbb,
    "pth": lambda c: _pt(c.higgs),
    "ptw": _ptw,
    "mt_w": lambda c: obs.mt_w(*c.lep, *c.met_xy),
    "mt_tot": lambda c: obs.mt_tot(*c.lep, *c.variables.bjet_p4(0), *c.variables.bjet_p4(1),
                                   *c.met_xy),
    "cos_delta_plus": lambda c: c.cos_delta_plus(),
    "q_cos_delta_plus": lambda c: c.variables.lepton(0, "charge") * c.cos_delta_plus(),
    "cos_theta_star_lab": _cos_theta_star_lab,
    "dphi_wh": lambda c: obs.delta_phi(*c.w, *c.higgs),
}

#: features at generator level: they read the ``GenPart`` collection, not the
#: reconstructed objects (so a JES shift does not change them)
TRUTH_FEATURES = frozenset({"cos_theta_star_truth"})
#: branches the generator-level features read
TRUTH_BRANCHES = frozenset({"nGenPart", *(f"GenPart_{f}" for f in (
    "pt", "eta", "phi", "mass", "pdgId", "genPartIdxMother"))})


@dataclass
class FeatureTable:
    """Selected events: their features and weights.

    Attributes:
        names: feature names, one per column of ``values``.
        values: float32 [n, d] features of the kept events.
        selected: bool mask over the input events: which were kept.
        weights: branch name → float64 [n] per-event weights of the kept events
            (those of :data:`WEIGHT_BRANCHES` the input has), plus
            ``LHEScaleWeight``/``LHEPdfWeight`` as [n, k] when present.
    """

    names: tuple[str, ...]
    values: np.ndarray
    selected: np.ndarray
    weights: dict[str, np.ndarray]

    def __len__(self) -> int:
        return self.values.shape[0]

    def column(self, name: str) -> np.ndarray:
        """One feature as a float64 array."""
        return self.values[:, self.names.index(name)].astype(np.float64)

    def subset(self, names: Sequence[str]) -> np.ndarray:
        """float32 [n, len(names)] with the given columns, in that order."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise InputError(f"features {missing} are not in the table (have: {', '.join(self.names)})")
        return np.ascontiguousarray(self.values[:, [self.names.index(n) for n in names]])

    def take(self, index: np.ndarray) -> FeatureTable:
        """The table of a subset of its rows (``selected`` is not updated)."""
        return FeatureTable(self.names, self.values[index], self.selected,
                            {k: v[index] for k, v in self.weights.items()})


def build_features(branches: Mapping[str, Any], config: AnalysisConfig, *,
                   region: str | None = "signal", names: Sequence[str] | None = None) -> FeatureTable:
    """Features of the events passing ``region`` of ``config``.

    Args:
        branches: NanoAOD branch name → array (from ``simulate`` or :func:`read_branches`).
        config: analysis config (object cuts, region cuts, neutrino rule).
        region: a region of the config, or None for no event selection.
        names: features to compute (default: :func:`default_features`).

    Raises:
        InputError: an unknown feature or region, or missing object branches.
    """
    names = tuple(default_features(config) if names is None else names)
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise InputError(f"unknown features {unknown}; known: {', '.join(FEATURES)}")
    if not names:
        raise InputError("no features requested")
    if region is not None and region not in config.regions:
        raise InputError(f"region '{region}' is not in the {config.channel} config "
                         f"(regions: {', '.join(config.regions)})")
    events = events_from_branches(branches)
    n = len(events)
    notes: set[str] = set()
    variables = EventVariables(build_objects(events, config.objects, notes=notes))
    ctx = FeatureContext(events, variables, config.regions[region] if region is not None else None,
                         notes)
    mask = np.ones(n, dtype=bool)
    if region is not None:
        cuts = region_cuts(config.regions[region])
        if cuts:
            mask &= region_selection(variables, config.regions[region]).all(*cuts)
    columns = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in names:
            col = np.asarray(FEATURES[name](ctx), dtype=np.float64)
            if col.ndim != 1:
                raise InputError(f"feature '{name}' has {col.shape[1]} values per event; "
                                 "a feature table column needs one")
            columns.append(col)
            mask &= np.isfinite(col)
    for note in sorted(notes):
        log.info("%s", note)
    values = np.column_stack(columns)[mask].astype(np.float32) if n else np.zeros((0, len(names)),
                                                                                  np.float32)
    weights: dict[str, np.ndarray] = {}
    for key in WEIGHT_BRANCHES:
        if key in branches:
            weights[key] = np.asarray(branches[key], dtype=np.float64)[mask]
    for key in _LIST_WEIGHTS:
        if key in branches:
            arr = branches[key]
            counts = np.asarray(ak.num(arr, axis=1))
            if counts.size and np.all(counts == counts[0]):
                flat = np.asarray(ak.to_numpy(ak.flatten(arr)), dtype=np.float64)
                weights[key] = flat.reshape(n, int(counts[0]))[mask]
    log.debug("features: %d of %d events kept", int(mask.sum()), n)
    return FeatureTable(names, values, mask, weights)
