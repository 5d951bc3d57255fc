"""Parametrised detector: reconstructed leptons, jets, generator jets and missing momentum.

It runs on a :class:`~ewpolar.generator.record.HardEvent`: for the toy its
partons are the hard-process quarks and radiation, for showered events
(:mod:`ewpolar.generator.pythia`) the particle-level anti-kt jets, with the
flavour of the B/C hadrons associated with them.

Leptons
    Acceptance |η| < 2.5 and pT > 7 GeV (e) / 5 GeV (μ), efficiency 95 % (e) /
    98 % (μ); leptons outside are not in the reco collections. pT resolution
    1 % (e, |η| < 1.479) / 2 % (e, endcap), 1 % + 0.01 % · pT/GeV (μ, ≤ 10 %);
    η, φ smeared by 0.001. Electron charge flips with probability
    0.0002 + 0.004 (|η|/2.5)². Prompt leptons: Electron_cutBased mostly 4,
    isolation exponential with mean 0.015, 97 % of muons tightId. Non-prompt
    leptons: isolation 0.02 + 0.25 a · Exp(1), with a the hadronic activity
    around the lepton relative to its energy (from the process); cutBased and
    tightId more often pass for isolated ones (cutBased 4: 50 % if iso < 0.15,
    else 15 %; tightId 85 % / 60 %); genPartIdx −1. Collections are sorted by pT.

Jets
    One jet per parton (hard-process quarks and radiation) with relative pT
    resolution √((2.5/pT)² + (0.95 + 0.1|η|)²/pT + 0.04²) (pT in GeV), η and φ
    smeared by 0.02, mass pT · (0.03 + 0.12 K(2, 5)) (plus m_b for b jets), where
    K(a, b) is the Kumaraswamy distribution (Beta-like, closed-form inverse CDF
    x = (1 − (1 − u)^(1/b))^(1/a)).
    Each reconstructed prompt electron also appears as a jet (response 0.97 ± 5 %,
    jetId 2: fails the lepton veto), as in NanoAOD where jets are not cleaned of
    leptons; such jets are left out of the missing momentum. Jets are kept for
    pT > 15 GeV and |η| < 4.7 and sorted by nominal pT. jetId: 6 (97 %), 2 (2 %),
    0 (1 %). hadronFlavour from the parton (5, 4, 0). btagDeepFlavB (|η| < 2.5):
    b: 75 % 1 − K(0.5, 4) + 25 % K(1, 4); c: K(1, 6); light and |η| > 2.5:
    K(0.5, 6), i.e. ≈ 82 %, 14 %, 1.2 % above 0.2783.
    JES uncertainty δ = 0.012 + 1.2 GeV/pT + 0.006 |η| (≤ 10 %): pt and mass
    scaled by 1 ± δ.

Generator jets
    GenJet: the partons themselves with pT > 10 GeV and |η| < 5 (mass as the
    reco jet before smearing), sorted by pT; Jet_genJetIdx links to them.

Missing transverse momentum
    MET = −(Σ reco leptons + Σ reco jets + soft term). The soft term is 0.9 ×
    the true momentum of everything visible that was not reconstructed (partons
    without a jet, lost leptons), plus Gaussian noise with σ = √(8² + 0.5 (Σ pT
    unclustered + underlying event)) GeV per component; the underlying event is
    Gamma(3, 100 GeV) of scalar pT; pT is in GeV. MET_sumEt adds all scalar pT. The JES
    variations shift MET by −Σ (p_T,jet^up/down − p_T,jet) over the jets in it.

Cross references (NanoAOD names): Electron/Muon_jetIdx point to the electron's
own jet, or for a non-prompt lepton to the jet of its parent parton;
Jet_electronIdx1/muonIdx1 the reverse; the *2 indices, Electron_photonIdx and
Muon_fsrPhotonIdx are −1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ewpolar.generator.constants import MASS_B, MASS_E, MASS_MU
from ewpolar.generator.kinematics import wrap_phi
from ewpolar.generator.record import HardEvent, hadron_flavour

__all__ = ["Collection", "Reconstructed", "Selection", "kumaraswamy", "reconstruct", "select"]

JET_PT_MIN, JET_ETA_MAX = 15.0, 4.7
GENJET_PT_MIN, GENJET_ETA_MAX = 10.0, 5.0
LEPTON_ETA_MAX = 2.5
BTAG_ETA_MAX = 2.5


@dataclass
class Collection:
    """A reconstructed collection: per-event counts and flat (pT-sorted) field arrays."""

    counts: np.ndarray
    fields: dict[str, np.ndarray]


@dataclass
class Reconstructed:
    electron: Collection
    muon: Collection
    jet: Collection
    genjet: Collection
    met: dict[str, np.ndarray]


@dataclass
class Selection:
    """Slots of an (n, k) candidate array kept in a collection, ordered by descending pT.

    ``flat`` indexes the raveled (n, k) arrays in output order, ``slot`` and
    ``event`` are the slot and event of each kept object, ``rank`` the position of
    each slot in its event's collection (−1 if not kept).
    """

    flat: np.ndarray
    slot: np.ndarray
    event: np.ndarray
    counts: np.ndarray
    rank: np.ndarray

    def take(self, values: np.ndarray) -> np.ndarray:
        """Per-slot (n, k) values of the kept objects, in output order."""
        return values.ravel()[self.flat]

    def per_event_sum(self, values: np.ndarray) -> np.ndarray:
        """Σ over each event's kept objects of flat ``values``."""
        return np.bincount(self.event, weights=values, minlength=self.counts.shape[0])


def select(pt: np.ndarray, mask: np.ndarray) -> Selection:
    """Keep the slots in ``mask`` and order them by descending ``pt`` per event."""
    n, k = pt.shape
    order = np.argsort(np.where(mask, -pt, np.inf), axis=1, kind="stable")
    kept_sorted = np.take_along_axis(mask, order, axis=1)
    slot = order[kept_sorted]
    counts = mask.sum(axis=1)
    event = np.repeat(np.arange(n), counts)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(k), (n, k)), axis=1)
    return Selection(flat=event * k + slot, slot=slot, event=event, counts=counts,
                     rank=np.where(mask, rank, -1))


def kumaraswamy(rng: np.random.Generator, a: np.ndarray | float, b: np.ndarray | float,
                size: int) -> np.ndarray:
    """Kumaraswamy(a, b) on [0, 1] by inverse CDF: x = (1 − (1 − u)^(1/b))^(1/a)."""
    u = rng.random(size)
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a)


def _categorical(rng: np.random.Generator, probs: np.ndarray, size: int) -> np.ndarray:
    return np.searchsorted(np.cumsum(probs)[:-1], rng.random(size), side="right").astype(np.int32)


_CUTBASED_PROMPT = np.array([0.01, 0.01, 0.03, 0.07, 0.88])
_CUTBASED_FAKE = np.array([0.30, 0.20, 0.20, 0.15, 0.15])
_CUTBASED_FAKE_ISO = np.array([0.05, 0.10, 0.15, 0.20, 0.50])


def _btag(rng: np.random.Generator, flavour: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    size = flavour.shape[0]
    flav = np.where(abs_eta < BTAG_ETA_MAX, flavour, 0)
    good_b = (flav == 5) & (rng.random(size) < 0.75)
    a = np.where(flav == 4, 1.0, np.where(flav == 5, np.where(good_b, 0.5, 1.0), 0.5))
    b = np.where(flav == 4, 6.0, np.where(flav == 5, 4.0, 6.0))
    x = kumaraswamy(rng, a, b, size)
    return np.where(good_b, 1.0 - x, x)


def _leptons(rng: np.random.Generator, hard: HardEvent):
    """Per-slot lepton acceptance and smeared pT, then the flat collections."""
    lep = hard.leptons
    n, nl = lep.pdg.shape
    pt, eta, phi = lep.p4.pt, lep.p4.eta, lep.p4.phi
    is_e = np.abs(lep.pdg) == 11
    accepted = ((np.abs(eta) < LEPTON_ETA_MAX) & (pt > np.where(is_e, 7.0, 5.0))
                & (rng.random((n, nl)) < np.where(is_e, 0.95, 0.98)))
    sigma = np.where(is_e, np.where(np.abs(eta) < 1.479, 0.01, 0.02),
                     np.minimum(0.01 + 1e-4 * pt, 0.1))
    r_pt = pt * np.maximum(1.0 + sigma * rng.standard_normal((n, nl)), 0.5)
    return pt, eta, phi, is_e, accepted, r_pt


def _lepton_fields(rng: np.random.Generator, hard: HardEvent, sel: Selection, r_pt: np.ndarray,
                   eta: np.ndarray, phi: np.ndarray, electron: bool) -> dict[str, np.ndarray]:
    lep = hard.leptons
    size = sel.flat.shape[0]
    t_eta = sel.take(eta)
    out_eta = t_eta + 1e-3 * rng.standard_normal(size)
    out_phi = wrap_phi(sel.take(phi) + 1e-3 * rng.standard_normal(size))
    charge = np.where(sel.take(lep.pdg) > 0, -1, 1)
    gen_index = sel.take(lep.gen_index)
    prompt = gen_index >= 0
    activity = sel.take(lep.activity)
    iso = np.where(prompt, rng.exponential(0.015, size),
                   0.02 + 0.25 * activity * rng.exponential(1.0, size))
    fields = {"pt": sel.take(r_pt), "eta": out_eta, "phi": out_phi}
    if electron:
        flip = rng.random(size) < 2e-4 + 4e-3 * (np.abs(t_eta) / 2.5) ** 2
        charge = np.where(flip, -charge, charge)
        fields["mass"] = np.full(size, MASS_E)
        fields["charge"] = charge
        fields["pdgId"] = -11 * charge
        fields["cutBased"] = np.where(prompt, _categorical(rng, _CUTBASED_PROMPT, size),
                                      np.where(iso < 0.15, _categorical(rng, _CUTBASED_FAKE_ISO, size),
                                               _categorical(rng, _CUTBASED_FAKE, size)))
        fields["pfRelIso03_all"] = iso
    else:
        fields["mass"] = np.full(size, MASS_MU)
        fields["charge"] = charge
        fields["pdgId"] = -13 * charge
        fields["tightId"] = rng.random(size) < np.where(prompt, 0.97, np.where(iso < 0.15, 0.85, 0.6))
        fields["pfRelIso04_all"] = 1.2 * iso
    fields["genPartIdx"] = gen_index
    return fields


def reconstruct(rng: np.random.Generator, hard: HardEvent,
                unclustered: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                ) -> Reconstructed:
    """Run the parametrised detector on one chunk (see the module docstring).

    ``unclustered`` is (Σ px, Σ py, Σ pT) per event of visible truth that is in
    neither ``hard.leptons`` nor ``hard.partons`` (the soft particles of a
    showered event outside every particle-level jet); it joins the soft term of
    the missing momentum. The toy's events balance without it (None).
    """
    n = hard.n
    lep, par = hard.leptons, hard.partons
    nl, npart = lep.pdg.shape[1], par.pdg.shape[1]

    # ---------------------------------------------------------------- leptons
    l_pt, l_eta, l_phi, is_e, accepted, r_pt = _leptons(rng, hard)
    prompt_slot = lep.gen_index >= 0
    e_sel = select(r_pt, accepted & is_e)
    m_sel = select(r_pt, accepted & ~is_e)
    e_fields = _lepton_fields(rng, hard, e_sel, r_pt, l_eta, l_phi, electron=True)
    m_fields = _lepton_fields(rng, hard, m_sel, r_pt, l_eta, l_phi, electron=False)

    # ---------------------------------------------------------------- jets
    p_pt = par.p4.pt
    has_pt = p_pt > 0
    p_eta = np.where(has_pt, par.p4.eta, 0.0)
    p_phi = par.p4.phi
    abs_eta = np.abs(p_eta)
    safe_pt = np.where(has_pt, p_pt, 1.0)
    res = np.sqrt(6.25 / (safe_pt * safe_pt) + (0.95 + 0.1 * abs_eta) ** 2 / safe_pt + 0.0016)
    j_pt = p_pt * np.maximum(1.0 + res * rng.standard_normal((n, npart)), 0.05)
    j_eta = p_eta + 0.02 * rng.standard_normal((n, npart))
    j_exists = par.exists & (j_pt > JET_PT_MIN) & (np.abs(j_eta) < JET_ETA_MAX)
    # every reconstructed prompt electron is also clustered into a jet
    ej_pt = r_pt * (0.97 + 0.05 * rng.standard_normal((n, nl)))
    ej_exists = accepted & is_e & prompt_slot & (ej_pt > JET_PT_MIN)
    all_pt = np.concatenate([j_pt, ej_pt], axis=1)
    j_sel = select(all_pt, np.concatenate([j_exists, ej_exists], axis=1))
    nj = npart + nl
    size = j_sel.flat.shape[0]
    from_parton = j_sel.slot < npart
    pflat = j_sel.event * npart + np.minimum(j_sel.slot, npart - 1)  # parton index (if any)
    lflat = j_sel.event * nl + np.maximum(j_sel.slot - npart, 0)  # lepton index (if any)
    jet_pt = j_sel.take(all_pt)
    jet_eta = np.where(from_parton, j_eta.ravel()[pflat], l_eta.ravel()[lflat])
    jet_phi = np.where(from_parton, wrap_phi(p_phi.ravel()[pflat] + 0.02 * rng.standard_normal(size)),
                       l_phi.ravel()[lflat])
    flavour = np.where(from_parton, hadron_flavour(par.pdg.ravel()[pflat]), 0)
    mass_frac = 0.03 + 0.12 * kumaraswamy(rng, 2.0, 5.0, size)
    b_mass = np.where(flavour == 5, MASS_B, 0.0)
    jet_mass = np.where(from_parton, np.sqrt((jet_pt * mass_frac) ** 2 + b_mass * b_mass),
                        0.01 * jet_pt)
    u_id = rng.random(size)
    jet_id = np.where(from_parton, np.where(u_id < 0.97, 6, np.where(u_id < 0.99, 2, 0)), 2)
    jes = np.minimum(0.012 + 1.2 / jet_pt + 0.006 * np.abs(jet_eta), 0.10)

    # generator jets from the partons
    g_sel = select(p_pt, par.exists & (p_pt > GENJET_PT_MIN) & (abs_eta < GENJET_ETA_MAX))
    g_pt = g_sel.take(p_pt)
    g_flav_pdg = g_sel.take(par.pdg)
    g_mass = np.sqrt((g_pt * (0.03 + 0.12 * kumaraswamy(rng, 2.0, 5.0, g_pt.shape[0]))) ** 2
                     + np.where(np.abs(g_flav_pdg) == 5, MASS_B, 0.0) ** 2)
    genjet = Collection(g_sel.counts, {
        "pt": g_pt, "eta": g_sel.take(p_eta), "phi": g_sel.take(p_phi), "mass": g_mass,
        "hadronFlavour": hadron_flavour(g_flav_pdg), "partonFlavour": g_flav_pdg,
    })

    # ------------------------------------------------------- cross references
    j_rank = j_sel.rank
    parent = lep.parent_parton
    parent_jet = np.where(parent >= 0, np.take_along_axis(j_rank, np.maximum(parent, 0), axis=1), -1)
    lep_jet_idx = np.where(prompt_slot, np.where(is_e, j_rank[:, npart:], -1), parent_jet)
    e_fields["jetIdx"] = e_sel.take(lep_jet_idx)
    e_fields["photonIdx"] = np.full(e_sel.flat.shape[0], -1)
    m_fields["jetIdx"] = m_sel.take(lep_jet_idx)
    m_fields["fsrPhotonIdx"] = np.full(m_sel.flat.shape[0], -1)
    jet_e_idx = np.full((n, nj), -1, dtype=np.int64)
    jet_m_idx = np.full((n, nj), -1, dtype=np.int64)
    jet_e_idx[:, npart:] = np.where(ej_exists, e_sel.rank, -1)
    rows = np.arange(n)
    for slot in range(nl):
        fake = (parent[:, slot] >= 0) & accepted[:, slot]
        for target, flavour_mask, rank in ((jet_e_idx, is_e, e_sel.rank), (jet_m_idx, ~is_e, m_sel.rank)):
            hit = fake & flavour_mask[:, slot]
            target[rows[hit], parent[hit, slot]] = rank[hit, slot]
    gen_jet_idx = np.where(from_parton, g_sel.rank.ravel()[pflat], -1)

    jet = Collection(j_sel.counts, {
        "pt": jet_pt, "eta": jet_eta, "phi": jet_phi, "mass": jet_mass,
        "btagDeepFlavB": _btag(rng, flavour, np.abs(jet_eta)), "jetId": jet_id,
        "hadronFlavour": flavour, "genJetIdx": gen_jet_idx,
        "electronIdx1": j_sel.take(jet_e_idx), "electronIdx2": np.full(size, -1),
        "muonIdx1": j_sel.take(jet_m_idx), "muonIdx2": np.full(size, -1),
        "pt_jesTotalUp": jet_pt * (1.0 + jes), "pt_jesTotalDown": jet_pt * (1.0 - jes),
        "mass_jesTotalUp": jet_mass * (1.0 + jes), "mass_jesTotalDown": jet_mass * (1.0 - jes),
    })

    # ---------------------------------------------------------------- MET
    # reconstructed objects (electron-jets duplicate electrons and are left out)
    cos_j, sin_j = np.cos(jet_phi), np.sin(jet_phi)
    in_met = from_parton.astype(np.float64)
    reco_x = (e_sel.per_event_sum(e_fields["pt"] * np.cos(e_fields["phi"]))
              + m_sel.per_event_sum(m_fields["pt"] * np.cos(m_fields["phi"]))
              + j_sel.per_event_sum(in_met * jet_pt * cos_j))
    reco_y = (e_sel.per_event_sum(e_fields["pt"] * np.sin(e_fields["phi"]))
              + m_sel.per_event_sum(m_fields["pt"] * np.sin(m_fields["phi"]))
              + j_sel.per_event_sum(in_met * jet_pt * sin_j))
    # truth of what was not reconstructed = all visible truth − truth of reconstructed objects
    lpx, lpy, ppx, ppy = lep.p4.px, lep.p4.py, par.p4.px, par.p4.py
    uncl_x = lpx.sum(1) + ppx.sum(1) - e_sel.per_event_sum(e_sel.take(lpx)) \
        - m_sel.per_event_sum(m_sel.take(lpx)) - j_sel.per_event_sum(in_met * ppx.ravel()[pflat])
    uncl_y = lpy.sum(1) + ppy.sum(1) - e_sel.per_event_sum(e_sel.take(lpy)) \
        - m_sel.per_event_sum(m_sel.take(lpy)) - j_sel.per_event_sum(in_met * ppy.ravel()[pflat])
    uncl_sumpt = l_pt.sum(1) + p_pt.sum(1) - e_sel.per_event_sum(e_sel.take(l_pt)) \
        - m_sel.per_event_sum(m_sel.take(l_pt)) - j_sel.per_event_sum(in_met * p_pt.ravel()[pflat])
    if unclustered is not None:
        uncl_x, uncl_y = uncl_x + unclustered[0], uncl_y + unclustered[1]
        uncl_sumpt = uncl_sumpt + unclustered[2]
    uncl_sumpt = np.maximum(uncl_sumpt, 0.0)
    ue = rng.gamma(3.0, 100.0, n)
    soft_sigma = np.sqrt(64.0 + 0.5 * (uncl_sumpt + ue))
    met_x = -(reco_x + 0.9 * uncl_x + soft_sigma * rng.standard_normal(n))
    met_y = -(reco_y + 0.9 * uncl_y + soft_sigma * rng.standard_normal(n))
    sum_et = (e_sel.per_event_sum(e_fields["pt"]) + m_sel.per_event_sum(m_fields["pt"])
              + j_sel.per_event_sum(in_met * jet_pt) + 0.9 * uncl_sumpt + ue)
    shift_x = j_sel.per_event_sum(in_met * jet_pt * jes * cos_j)
    shift_y = j_sel.per_event_sum(in_met * jet_pt * jes * sin_j)
    up_x, up_y, down_x, down_y = met_x - shift_x, met_y - shift_y, met_x + shift_x, met_y + shift_y
    met = {
        "MET_pt": np.sqrt(met_x * met_x + met_y * met_y),
        "MET_phi": np.arctan2(met_y, met_x),
        "MET_sumEt": sum_et,
        "MET_pt_jesTotalUp": np.sqrt(up_x * up_x + up_y * up_y),
        "MET_phi_jesTotalUp": np.arctan2(up_y, up_x),
        "MET_pt_jesTotalDown": np.sqrt(down_x * down_x + down_y * down_y),
        "MET_phi_jesTotalDown": np.arctan2(down_y, down_x),
    }
    return Reconstructed(
        electron=Collection(e_sel.counts, e_fields),
        muon=Collection(m_sel.counts, m_fields),
        jet=jet,
        genjet=genjet,
        met=met,
    )
