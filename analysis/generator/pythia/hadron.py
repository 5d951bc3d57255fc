"""Hadron level to NanoAOD branches: anti-kt jets, the detector, CP and theory weights.

Jets
    The visible final-state particles of each event (:mod:`.events`) are
    clustered with fastjet, anti-kt R = 0.4, together with ghosts of the
    weakly decaying b and c hadrons (momenta scaled by 10⁻¹⁸). A jet
    containing a b ghost has hadron flavour 5, else one with a c ghost 4,
    else 0. Particle-level jets with p_T > 5 GeV are what the parametrised
    detector (:func:`ewpolar.generator.detector.reconstruct`) turns into
    ``Jet`` and ``GenJet``; a non-prompt lepton's momentum is taken out of the
    jet that contains it (it is a lepton candidate of its own); visible
    particles outside these jets join the soft term of the missing momentum.

Leptons
    Prompt e/μ point to their ``GenPart`` entry; non-prompt ones (from hadron
    decays, p_T > 5 GeV) point to their jet, and the rest of that jet relative
    to the lepton's p_T is the hadronic activity that sets their isolation.

Weights
    ``genWeight`` is Pythia's event weight (the LHE weight for showered LHE
    files). WH: ``CPWeight_int``/``CPWeight_quad`` from the hard-process W,
    lepton, neutrino and Higgs with :func:`ewpolar.generator.wh.cos_delta_plus`
    and :func:`ewpolar.generator.wh.cp_relative_weights`, the same formula as the
    toy. ``LHEScaleWeight``/``LHEPdfWeight``: from the LHE file when it carries
    them, otherwise the project's parametrised theory weights
    (:mod:`ewpolar.generator.theory`) evaluated at the event's √ŝ and rapidity.
"""

from __future__ import annotations

import contextlib
import os

import awkward as ak
import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.generator import theory
from ewpolar.generator.detector import Collection, reconstruct
from ewpolar.generator.kinematics import Vec4
from ewpolar.generator.nanoaod import EventColumns, event_columns
from ewpolar.generator.pythia.events import EventBlock
from ewpolar.generator.record import HardEvent, Leptons, Partons
from ewpolar.generator.wh import cos_delta_plus, cp_relative_weights

__all__ = ["JET_PT_MIN", "block_columns", "cluster_jets", "theory_model"]

JET_R = 0.4
JET_PT_MIN = 5.0
_GENPART_FIELDS = ("pt", "eta", "phi", "mass", "pdgId", "genPartIdxMother", "status", "statusFlags")
_INT_FIELDS = {"pdgId", "genPartIdxMother", "status", "statusFlags"}
_THEORY_FALLBACK = {"wjets": "wbb", "ttbar_dileptonic": "ttbar_semileptonic"}

_banner_shown = False


def theory_model(process: str) -> theory.TheoryToy:
    """Parametrised scale/PDF model used for a process without LHE weights."""
    name = _THEORY_FALLBACK.get(process, process)
    return theory.THEORY_TOYS.get(name, theory.THEORY_TOYS["wbb"])


def _pad(rows: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-event (k_i, width) arrays into (n, K, width) zeros-padded and a mask."""
    n = len(rows)
    k = max([r.shape[0] for r in rows] + [1])
    out = np.zeros((n, k, width))
    mask = np.zeros((n, k), dtype=bool)
    for i, r in enumerate(rows):
        if r.shape[0]:
            out[i, :r.shape[0]] = r
            mask[i, :r.shape[0]] = True
    return out, mask


def _quiet_fastjet() -> contextlib.AbstractContextManager:
    """Swallow fastjet's banner (printed to stdout by the C++ library on first use)."""
    global _banner_shown
    if _banner_shown:
        return contextlib.nullcontext()
    _banner_shown = True

    @contextlib.contextmanager
    def redirect():
        import sys

        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)

    return redirect()


def cluster_jets(block: EventBlock) -> dict[str, np.ndarray]:
    """Anti-kt R = 0.4 particle-level jets of a block with ghost-associated flavour.

    Returns per-jet flat arrays (px, py, pz, e, flavour, event) and, per visible
    particle (flat over the block), the flat index of its jet (−1 if in none).
    """
    import fastjet

    n = block.n
    n_vis = np.array([v.shape[0] for v in block.vis], dtype=np.int64)
    n_gh = np.array([g.shape[0] for g in block.ghosts], dtype=np.int64)
    parts = [np.concatenate([v, g[:, :4]]) for v, g in zip(block.vis, block.ghosts, strict=True)]
    counts = n_vis + n_gh
    flat = np.concatenate(parts) if n else np.zeros((0, 4))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    record = ak.zip({"px": flat[:, 0], "py": flat[:, 1], "pz": flat[:, 2], "E": flat[:, 3]})
    particles = ak.unflatten(record, counts)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
    with _quiet_fastjet():
        cs = fastjet.ClusterSequence(particles, jetdef)
        jets = cs.inclusive_jets(min_pt=JET_PT_MIN)
        constituents = cs.constituent_index(min_pt=JET_PT_MIN)
    jets_per_event = ak.to_numpy(ak.num(jets, axis=1)).astype(np.int64)
    jet_event = np.repeat(np.arange(n), jets_per_event)
    n_jets = int(jets_per_event.sum())
    cons_per_jet = ak.to_numpy(ak.flatten(ak.num(constituents, axis=2))).astype(np.int64)
    cons_local = ak.to_numpy(ak.flatten(constituents, axis=None)).astype(np.int64)
    cons_jet = np.repeat(np.arange(n_jets), cons_per_jet)
    cons_event = jet_event[cons_jet]
    cons_global = offsets[cons_event] + cons_local
    is_ghost = cons_local >= n_vis[cons_event]
    # ghost flavour per jet: b beats c
    ghost_flav = np.concatenate([g[:, 4] for g in block.ghosts]) if n else np.zeros(0)
    ghost_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_gh, out=ghost_offsets[1:])
    g_idx = ghost_offsets[cons_event[is_ghost]] + cons_local[is_ghost] - n_vis[cons_event[is_ghost]]
    flavour = np.zeros(n_jets, dtype=np.int64)
    np.maximum.at(flavour, cons_jet[is_ghost], ghost_flav[g_idx].astype(np.int64))
    # visible particle → jet (flat over the block's visible particles)
    vis_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_vis, out=vis_offsets[1:])
    jet_of_vis = np.full(int(n_vis.sum()), -1, dtype=np.int64)
    real = ~is_ghost
    jet_of_vis[vis_offsets[cons_event[real]] + cons_local[real]] = cons_jet[real]
    del cons_global
    return {
        "px": ak.to_numpy(ak.flatten(jets.px)), "py": ak.to_numpy(ak.flatten(jets.py)),
        "pz": ak.to_numpy(ak.flatten(jets.pz)), "e": ak.to_numpy(ak.flatten(jets.E)),
        "flavour": flavour, "event": jet_event, "per_event": jets_per_event,
        "jet_of_vis": jet_of_vis, "vis_offsets": vis_offsets,
    }


def _hadron_event(block: EventBlock) -> tuple[HardEvent, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The detector's input for a block: particle-level jets as partons, lepton candidates."""
    n = block.n
    jets = cluster_jets(block)
    jet_first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(jets["per_event"], out=jet_first[1:])
    jp4 = np.stack([jets["px"], jets["py"], jets["pz"], jets["e"]], axis=1)

    # non-prompt leptons: parent jet, activity, and taken out of that jet
    nonprompt, np_mask = _pad(block.nonprompt, 6)
    np_parent = np.full(np_mask.shape, -1, dtype=np.int64)
    np_activity = np.zeros(np_mask.shape)
    ev_i, slot_i = np.nonzero(np_mask)
    lepton_vis = jets["vis_offsets"][ev_i] + nonprompt[ev_i, slot_i, 5].astype(np.int64)
    jet_flat = jets["jet_of_vis"][lepton_vis]
    in_jet = jet_flat >= 0
    if in_jet.any():
        lep_p4 = nonprompt[ev_i, slot_i, :4]
        np.subtract.at(jp4, jet_flat[in_jet], lep_p4[in_jet])
        safe = np.maximum(jet_flat, 0)
        rest = jp4[safe]
        lep_pt = np.hypot(lep_p4[:, 0], lep_p4[:, 1])
        np_activity[ev_i, slot_i] = np.where(in_jet, np.hypot(rest[:, 0], rest[:, 1]) / lep_pt, 0.0)
        np_parent[ev_i, slot_i] = np.where(in_jet, safe - jet_first[jets["event"][safe]], -1)

    # jets as (n, P) partons
    per_event = [jp4[jet_first[i]:jet_first[i + 1]] for i in range(n)]
    flav_rows = [jets["flavour"][jet_first[i]:jet_first[i + 1], None].astype(np.float64)
                 for i in range(n)]
    jp, jmask = _pad(per_event, 4)
    jf, _ = _pad(flav_rows, 1)
    flav = jf[:, :, 0].astype(np.int32)
    pdg = np.where(flav == 5, 5, np.where(flav == 4, 4, 21)).astype(np.int32)
    pdg = np.where(jmask, pdg, 21).astype(np.int32)
    partons = Partons(p4=Vec4(jp[..., 0], jp[..., 1], jp[..., 2], jp[..., 3]), pdg=pdg,
                      exists=jmask)

    # unclustered visible momentum (outside every jet)
    vis_all = np.concatenate(block.vis) if n else np.zeros((0, 4))
    vis_event = np.repeat(np.arange(n), np.diff(jets["vis_offsets"]))
    outside = jets["jet_of_vis"] < 0
    outside[lepton_vis] = False  # non-prompt leptons are lepton candidates of their own
    ux = np.bincount(vis_event[outside], weights=vis_all[outside, 0], minlength=n)
    uy = np.bincount(vis_event[outside], weights=vis_all[outside, 1], minlength=n)
    upt = np.bincount(vis_event[outside], weights=np.hypot(vis_all[outside, 0], vis_all[outside, 1]),
                      minlength=n)

    # lepton candidates: prompt then non-prompt
    prompt, p_mask = _pad(block.prompt, 6)
    lep = np.concatenate([prompt[:, :, :4], nonprompt[:, :, :4]], axis=1)
    lep_pdg = np.concatenate([np.where(p_mask, prompt[:, :, 4], 13),
                              np.where(np_mask, nonprompt[:, :, 4], 13)], axis=1).astype(np.int32)
    gen_index = np.concatenate([np.where(p_mask, prompt[:, :, 5], -1),
                                np.full(np_mask.shape, -1)], axis=1).astype(np.int32)
    parent = np.concatenate([np.full(p_mask.shape, -1, dtype=np.int64), np_parent], axis=1)
    activity = np.concatenate([np.zeros(p_mask.shape), np_activity], axis=1)
    leptons = Leptons(p4=Vec4(lep[..., 0], lep[..., 1], lep[..., 2], lep[..., 3]), pdg=lep_pdg,
                      gen_index=gen_index, parent_parton=parent, activity=activity)
    hard = HardEvent(gen=None, leptons=leptons, partons=partons,  # type: ignore[arg-type]
                     scale=np.asarray(block.scale, dtype=np.float64),
                     rapidity=np.asarray(block.rapidity, dtype=np.float64))
    return hard, (ux, uy, upt)


def _genpart(block: EventBlock) -> Collection:
    counts = np.array([g.shape[0] for g in block.genpart], dtype=np.int64)
    flat = np.concatenate(block.genpart) if block.n else np.zeros((0, 8))
    fields = {}
    for k, name in enumerate(_GENPART_FIELDS):
        col = flat[:, k]
        fields[name] = col.astype(np.int32) if name in _INT_FIELDS else col
    return Collection(counts, fields)


def cp_weights(block: EventBlock, kappa: float) -> tuple[np.ndarray, np.ndarray]:
    """Relative CP weights (a, b) of each event from its hard-process W → ℓν and H.

    Events without a W → ℓν and a Higgs boson in the hard process get a = b = 0.
    """
    hard = np.stack(block.hard) if block.n else np.zeros((0, 4, 4))
    ok = np.isfinite(hard).all(axis=(1, 2))
    h = np.where(ok[:, None, None], hard, 1.0)
    vec = [Vec4(h[:, k, 0], h[:, k, 1], h[:, k, 2], h[:, k, 3]) for k in range(4)]
    w, lep, nu, higgs = vec
    charge = np.sign(np.array([p[1] for p in block.hard_pdg], dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        cdp = cos_delta_plus(lep, nu, higgs)
    a, b = cp_relative_weights(w.pt, charge * cdp, kappa)
    return np.where(ok, a, 0.0), np.where(ok, b, 0.0)


def block_columns(config: AnalysisConfig, process: str, block: EventBlock, rng: np.random.Generator,
                  *, cp: bool, lhe_lists: dict[str, np.ndarray] | None = None) -> EventColumns:
    """NanoAOD branches of one block of showered events.

    ``lhe_lists`` may hold ``LHEScaleWeight``, ``LHEPdfWeight`` and
    ``LHEReweightingWeight`` arrays (n, k) from an LHE file; missing scale or PDF
    weights are replaced by the parametrised theory model.
    """
    n = block.n
    hard, unclustered = _hadron_event(block)
    reco = reconstruct(rng, hard, unclustered)
    gen_weight = np.asarray(block.weight, dtype=np.float32)
    cp_int = cp_quad = None
    if cp and config.channel == "wh":
        cp_int, cp_quad = cp_weights(block, config.generator.cp_interference_scale)
    lists = dict(lhe_lists or {})
    model = theory_model(process)
    scale_w = lists.pop("LHEScaleWeight", None)
    pdf_w = lists.pop("LHEPdfWeight", None)
    if scale_w is None:
        scale_w = theory.scale_weights(np.maximum(hard.scale, 1.0), model)
    if pdf_w is None:
        pdf_w = theory.pdf_weights(np.maximum(hard.scale, 1.0), hard.rapidity, model)
    return event_columns(config, n, gen_weight=gen_weight, cp_int=cp_int, cp_quad=cp_quad,
                         scale_weights=scale_w, pdf_weights=pdf_w.astype(np.float32),
                         genpart=_genpart(block), reco=reco, extra_lists=lists)
