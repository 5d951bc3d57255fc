"""Object selection: leptons, jets and b-jets from NanoAOD-schema events.

Cut values come from :class:`analysis.config.ObjectSelection`. Conventions (shared
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
  added to ``notes`` (real NanoAOD has all of them, a private ntuple may not).

Jets are read lazily: a JES variation ("jes_up" / "jes_down") swaps ``Jet_pt`` and
``Jet_mass`` for ``Jet_{pt,mass}_jesTotal{Up,Down}`` and the missing transverse
momentum for ``MET_{pt,phi}_jesTotal{Up,Down}``; when the input has shifted jets but
no shifted MET, the jet shift is propagated to the MET (type-1 like, all jets).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import awkward as ak
import numpy as np
from coffea.nanoevents.methods import candidate, vector

from analysis.config import JetCuts, LeptonCuts, ObjectSelection

__all__ = [
    "JES_VARIATIONS",
    "Objects",
    "build_objects",
    "has_jes_variations",
    "select_electrons",
    "select_jets",
    "select_leptons",
    "select_muons",
]

log = logging.getLogger(__name__)

#: shape variations of the jet energy scale and the branch suffix they read
JES_VARIATIONS = {"jes_up": "jesTotalUp", "jes_down": "jesTotalDown"}


def _fields(collection: ak.Array) -> list[str]:
    return list(ak.fields(collection))


def _lepton_records(coll: ak.Array, mask: ak.Array, pdg: int) -> ak.Array:
    sel = coll[mask]
    charge = sel.charge
    return ak.zip(
        {
            "pt": sel.pt,
            "eta": sel.eta,
            "phi": sel.phi,
            "mass": sel.mass,
            "charge": charge,
            # particle (negative charge) has positive pdgId
            "pdgId": -pdg * charge,
        },
        with_name="PtEtaPhiMCandidate",
        behavior=candidate.behavior,
    )


def _kinematic_mask(coll: ak.Array, cuts: LeptonCuts | JetCuts) -> ak.Array:
    return (coll.pt > cuts.pt_min) & (abs(coll.eta) < cuts.eta_max)


def select_electrons(events: ak.Array, cuts: LeptonCuts, notes: set[str] | None = None) -> ak.Array:
    """Selected electrons as candidate records (pt, eta, phi, mass, charge, pdgId)."""
    notes = notes if notes is not None else set()
    ele = events.Electron
    fields = _fields(ele)
    mask = _kinematic_mask(ele, cuts)
    if cuts.id_min > 0:
        if "cutBased" in fields:
            mask = mask & (ele.cutBased >= cuts.id_min)
        else:
            notes.add("objects: electron identification not applied (no Electron_cutBased branch)")
    if cuts.iso_max is not None:
        if "pfRelIso03_all" in fields:
            mask = mask & (ele.pfRelIso03_all <= cuts.iso_max)
        else:
            notes.add("objects: electron isolation not applied (no Electron_pfRelIso03_all branch)")
    return _lepton_records(ele, mask, 11)


def select_muons(events: ak.Array, cuts: LeptonCuts, notes: set[str] | None = None) -> ak.Array:
    """Selected muons as candidate records (pt, eta, phi, mass, charge, pdgId)."""
    notes = notes if notes is not None else set()
    mu = events.Muon
    fields = _fields(mu)
    mask = _kinematic_mask(mu, cuts)
    if cuts.id_min >= 1:
        if "tightId" in fields:
            mask = mask & mu.tightId
        else:
            notes.add("objects: muon identification not applied (no Muon_tightId branch)")
    if cuts.iso_max is not None:
        if "pfRelIso04_all" in fields:
            mask = mask & (mu.pfRelIso04_all <= cuts.iso_max)
        else:
            notes.add("objects: muon isolation not applied (no Muon_pfRelIso04_all branch)")
    return _lepton_records(mu, mask, 13)


def select_leptons(events: ak.Array, objects: ObjectSelection,
                   notes: set[str] | None = None) -> ak.Array:
    """Selected electrons and muons merged and sorted by decreasing pT."""
    electrons = select_electrons(events, objects.electron, notes)
    muons = select_muons(events, objects.muon, notes)
    leptons = ak.concatenate([electrons, muons], axis=1)
    return leptons[ak.argsort(leptons.pt, axis=1, ascending=False)]


def has_jes_variations(events: ak.Array) -> bool:
    """True when the input has the total JES up/down jet pT branches."""
    fields = _fields(events.Jet)
    return all(f"pt_{s}" in fields for s in JES_VARIATIONS.values())


def select_jets(events: ak.Array, objects: ObjectSelection, leptons: ak.Array,
                variation: str = "nominal",
                notes: set[str] | None = None) -> tuple[ak.Array, ak.Array, ak.Array]:
    """Selected jets and b-jets for one JES variation.

    Returns:
        (jets, bjets, shift): pT-sorted Lorentz-vector records with a ``btag`` field
        (``Jet_btagDeepFlavB``, NaN when absent), and per event the summed
        (px, py) change of all jets against nominal, as an awkward record with
        fields ``px``, ``py`` (zero for "nominal"), used to shift the MET.
    """
    notes = notes if notes is not None else set()
    raw = events.Jet
    fields = _fields(raw)
    if variation == "nominal":
        pt, mass = raw.pt, raw.mass
    else:
        suffix = JES_VARIATIONS[variation]
        pt = raw[f"pt_{suffix}"]
        mass = raw[f"mass_{suffix}"] if f"mass_{suffix}" in fields else raw.mass * (pt / raw.pt)
    btag = raw.btagDeepFlavB if "btagDeepFlavB" in fields else ak.full_like(raw.pt, np.nan)
    jets = ak.zip(
        {"pt": pt, "eta": raw.eta, "phi": raw.phi, "mass": mass, "btag": btag},
        with_name="PtEtaPhiMLorentzVector",
        behavior=vector.behavior,
    )
    if "btagDeepFlavB" not in fields:
        notes.add("objects: no Jet_btagDeepFlavB branch, no jet is b-tagged")

    good = ak.ones_like(raw.pt, dtype=bool)
    if objects.jet.id_min > 0:
        if "jetId" in fields:
            good = raw.jetId >= objects.jet.id_min
        else:
            notes.add("objects: jet identification not applied (no Jet_jetId branch)")
    # overlap removal: drop jets close to any selected lepton
    if objects.overlap_dr > 0:
        dr = jets.metric_table(leptons)
        isolated = ak.all(dr >= objects.overlap_dr, axis=2)
        good = good & isolated

    clean = jets[good]
    clean = clean[ak.argsort(clean.pt, axis=1, ascending=False)]
    sel_jets = clean[_kinematic_mask(clean, objects.jet)]
    bcuts = objects.bjet
    sel_b = clean[(clean.pt > bcuts.pt_min) & (abs(clean.eta) < bcuts.eta_max)
                  & (clean.btag >= bcuts.score_min)]

    if variation == "nominal":
        shift = None
    else:
        dpt = pt - raw.pt
        shift = ak.zip({"px": ak.sum(dpt * np.cos(raw.phi), axis=1),
                        "py": ak.sum(dpt * np.sin(raw.phi), axis=1)})
    return sel_jets, sel_b, shift


def _met(events: ak.Array, variation: str, shift: ak.Array | None,
         notes: set[str]) -> tuple[np.ndarray, np.ndarray]:
    met = events.MET
    if variation == "nominal":
        return _flat(met.pt), _flat(met.phi)
    suffix = JES_VARIATIONS[variation]
    fields = _fields(met)
    if f"pt_{suffix}" in fields and f"phi_{suffix}" in fields:
        return _flat(met[f"pt_{suffix}"]), _flat(met[f"phi_{suffix}"])
    notes.add(f"objects: no MET_pt_{suffix}; the jet energy shift is propagated to the MET")
    pt, phi = _flat(met.pt), _flat(met.phi)
    px = pt * np.cos(phi) - _flat(shift.px)
    py = pt * np.sin(phi) - _flat(shift.py)
    return np.hypot(px, py), np.arctan2(py, px)


def _flat(arr: ak.Array) -> np.ndarray:
    return np.asarray(ak.to_numpy(arr), dtype=np.float64)


@dataclass
class Objects:
    """Selected physics objects of one chunk for one jet-energy variation.

    Attributes are computed on first use, so a region that never looks at jets
    does not read any ``Jet_*`` branch.
    """

    events: ak.Array
    config: ObjectSelection
    variation: str = "nominal"
    notes: set[str] | None = None

    def __post_init__(self) -> None:
        if self.notes is None:
            self.notes = set()

    @cached_property
    def leptons(self) -> ak.Array:
        """Selected electrons and muons, pT-sorted (independent of the JES variation)."""
        return select_leptons(self.events, self.config, self.notes)

    @cached_property
    def _jets(self) -> tuple[ak.Array, ak.Array, ak.Array | None]:
        return select_jets(self.events, self.config, self.leptons, self.variation, self.notes)

    @property
    def jets(self) -> ak.Array:
        """Selected, overlap-cleaned jets, pT-sorted."""
        return self._jets[0]

    @property
    def bjets(self) -> ak.Array:
        """b-tagged jets, pT-sorted."""
        return self._jets[1]

    @cached_property
    def _met(self) -> tuple[np.ndarray, np.ndarray]:
        shift = self._jets[2] if self.variation != "nominal" else None
        return _met(self.events, self.variation, shift, self.notes)

    @property
    def met_pt(self) -> np.ndarray:
        """Missing transverse momentum magnitude (GeV), float64 per event."""
        return self._met[0]

    @property
    def met_phi(self) -> np.ndarray:
        """Missing transverse momentum azimuth, float64 per event."""
        return self._met[1]

    def varied(self, variation: str) -> Objects:
        """The objects of another JES variation, sharing the (JES-independent) leptons."""
        other = build_objects(self.events, self.config, variation, self.notes)
        other.__dict__["leptons"] = self.leptons
        return other


def build_objects(events: ak.Array, objects: ObjectSelection, variation: str = "nominal",
                  notes: set[str] | None = None) -> Objects:
    """The lazily evaluated selected objects of ``events`` for ``variation``.

    Args:
        events: NanoAOD-schema events (coffea NanoEvents).
        objects: the config's object definitions.
        variation: "nominal", "jes_up" or "jes_down".
        notes: set collecting one line per requirement that could not be applied.
    """
    if variation != "nominal" and variation not in JES_VARIATIONS:
        raise ValueError(f"unknown object variation '{variation}'")
    return Objects(events, objects, variation, notes if notes is not None else set())
