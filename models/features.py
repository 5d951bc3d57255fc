"""Per-event feature tables for the reweighting and likelihood-ratio estimators.

Input is a mapping of NanoAOD branch names to arrays, as returned by
:func:`ewpolar.generator.simulate` or read from ROOT files with
:func:`read_branches`. Objects and region cuts are those of the analysis
(:mod:`ewpolar.selections.objects`, :mod:`ewpolar.selections.regions`, with the config's cut
values), so the estimators see the events the processors histogram.

Features (GeV for momenta and masses; "lepton" is the leading selected lepton,
b1, b2 the two leading b-jets, H = b1 + b2, ν the neutrino with p_z from the
W-mass constraint with the region's ``neutrino_rule``, W = ℓ + ν):

=====================  ========================================================
``lep_pt``, ``lep_eta``  lepton p_T, η
``lep_charge``         Q_ℓ
``met``                E_T^miss
``nu_pz``              reconstructed neutrino p_z
``b1_pt`` ... ``b2_eta`` b-jet p_T, η
``mbb``, ``pth``       m_bb and p_T of H
``ptw``                p_T^W = |p_T(ℓ) + p_T^miss|
``mt_w``, ``mt_tot``   m_T(ℓ, E_T^miss) and m_T^tot(ℓ, ν, b1, b2)
``cos_delta_plus``     cos δ⁺ (physics.md §1b)
``q_cos_delta_plus``   Q_ℓ · cos δ⁺
``cos_theta_star``     lepton in the W rest frame against the W direction (lab)
``dphi_wh``            |Δφ(W, H)|
``n_jets``, ``n_bjets`` jet multiplicities
ssWW-type: ``lep1_pt``, ``lep2_pt``, ``lep1_eta``, ``lep2_eta``, ``mll``,
``dr_ll``, ``jet1_pt``, ``jet2_pt``, ``jet1_eta``, ``jet2_eta``, ``mjj``, ``dy_jj``
=====================  ========================================================

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
import numpy as np
from ewpolar import observables as obs
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import InputError

__all__ = [
    "FEATURES",
    "SSWW_FEATURES",
    "WEIGHT_BRANCHES",
    "WH_FEATURES",
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
    "mbb", "pth", "ptw", "mt_w", "mt_tot", "q_cos_delta_plus", "cos_theta_star", "dphi_wh",
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


@dataclass
class _Context:
    """What features are computed from (all input events; NaN where an object is missing)."""

    variables: Any
    neutrino_rule: str
    cache: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    @property
    def lep(self) -> tuple[np.ndarray, ...]:
        return self.variables.lepton_p4(0)

    @property
    def met_xy(self) -> tuple[np.ndarray, np.ndarray]:
        return self.variables.met_pxpy

    @property
    def higgs(self) -> tuple[np.ndarray, ...]:
        def make() -> tuple[np.ndarray, ...]:
            b1, b2 = self.variables.bjet_p4(0), self.variables.bjet_p4(1)
            return tuple(a + b for a, b in zip(b1, b2, strict=True))
        return self.get("higgs", make)

    @property
    def neutrino(self) -> tuple[np.ndarray, ...]:
        def make() -> tuple[np.ndarray, ...]:
            mx, my = self.met_xy
            h = self.higgs
            pz = obs.neutrino_pz(*self.lep, mx, my, rule=self.neutrino_rule,
                                 h_px=h[0], h_py=h[1], h_pz=h[2], h_e=h[3])
            return obs.neutrino_four_vector(mx, my, pz)
        return self.get("neutrino", make)

    @property
    def w(self) -> tuple[np.ndarray, ...]:
        return self.get("w", lambda: tuple(a + b for a, b in zip(self.lep, self.neutrino,
                                                                  strict=True)))

    def cos_delta_plus(self) -> np.ndarray:
        return self.get("cdp", lambda: obs.cos_delta_plus(*self.lep, *self.neutrino, *self.higgs))


def _pt(p4: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.hypot(p4[0], p4[1])


def _eta(p4: tuple[np.ndarray, ...]) -> np.ndarray:
    pt = np.hypot(p4[0], p4[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arcsinh(p4[2] / pt)


def _cos_theta_star(c: _Context) -> np.ndarray:
    w = c.w
    ones, zeros = np.ones_like(w[0]), np.zeros_like(w[0])
    return obs.cos_theta_star(*c.lep, *w, zeros, zeros, zeros, ones)


def _dphi_wh(c: _Context) -> np.ndarray:
    w, h = c.w, c.higgs
    return obs.delta_phi(*w, *h)


#: feature name → function of the context (float64 per input event)
FEATURES: dict[str, Callable[[_Context], np.ndarray]] = {
    "lep_pt": lambda c: c.variables.lepton(0, "pt"),
    "lep_eta": lambda c: c.variables.lepton(0, "eta"),
    "lep_charge": lambda c: c.variables.lepton(0, "charge"),
    "met": lambda c: c.variables.met,
    "nu_pz": lambda c: c.neutrino[2],
    "b1_pt": lambda c: _pt(c.variables.bjet_p4(0)),
    "b1_eta": lambda c: _eta(c.variables.bjet_p4(0)),
    "b2_pt": lambda c: _pt(c.variables.bjet_p4(1)),
    "b2_eta": lambda c: _eta(c.variables.bjet_p4(1)),
    "mbb": lambda c: c.variables.mbb,
    "pth": lambda c: _pt(c.higgs),
    "ptw": lambda c: np.hypot(c.lep[0] + c.met_xy[0], c.lep[1] + c.met_xy[1]),
    "mt_w": lambda c: obs.mt_w(*c.lep, *c.met_xy),
    "mt_tot": lambda c: obs.mt_tot(*c.lep, *c.variables.bjet_p4(0), *c.variables.bjet_p4(1),
                                   *c.met_xy),
    "cos_delta_plus": lambda c: c.cos_delta_plus(),
    "q_cos_delta_plus": lambda c: c.variables.lepton(0, "charge") * c.cos_delta_plus(),
    "cos_theta_star": _cos_theta_star,
    "dphi_wh": _dphi_wh,
    "n_jets": lambda c: c.variables.n_jets.astype(np.float64),
    "n_bjets": lambda c: c.variables.n_bjets.astype(np.float64),
    "lep1_pt": lambda c: c.variables.lepton(0, "pt"),
    "lep2_pt": lambda c: c.variables.lepton(1, "pt"),
    "lep1_eta": lambda c: c.variables.lepton(0, "eta"),
    "lep2_eta": lambda c: c.variables.lepton(1, "eta"),
    "mll": lambda c: c.variables.mll,
    "dr_ll": lambda c: c.variables.dr_ll,
    "jet1_pt": lambda c: c.variables.jet1_pt,
    "jet2_pt": lambda c: c.variables.jet2_pt,
    "jet1_eta": lambda c: c.variables.jet(0, "eta"),
    "jet2_eta": lambda c: c.variables.jet(1, "eta"),
    "mjj": lambda c: c.variables.mjj,
    "dy_jj": lambda c: c.variables.dy_jj,
}


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
    from ewpolar.selections.objects import build_objects
    from ewpolar.selections.regions import region_cuts, region_selection
    from ewpolar.selections.variables import EventVariables

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
    rule = config.regions[region].neutrino_rule if region is not None else None
    ctx = _Context(variables, rule or "min_abs")
    mask = np.ones(n, dtype=bool)
    if region is not None:
        cuts = region_cuts(config.regions[region])
        if cuts:
            mask &= region_selection(variables, config.regions[region]).all(*cuts)
    columns = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in names:
            col = np.asarray(FEATURES[name](ctx), dtype=np.float64)
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
