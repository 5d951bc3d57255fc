"""Read Pythia's event record into flat per-event arrays.

For each event :func:`read_event` keeps

- the visible final-state particles that make jets: everything stable except
  neutrinos and the prompt electrons and muons (those are the detector's
  lepton candidates);
- prompt charged leptons (e, μ without a hadron among their ancestors, e.g.
  from W, Z or τ decays) and non-prompt ones (from hadron decays, p_T > 5 GeV);
- ghosts for flavour tagging: the last b hadron of each b chain and the last
  c hadron of each c chain (weakly decaying), clustered with negligible
  momentum (ghost association);
- a pruned generator record for ``GenPart``: the outgoing hard-process
  particles (including resonance decays), first and last copies of t, W, Z
  and H, τ leptons, prompt final-state leptons and neutrinos, and weakly
  decaying b hadrons; each with its nearest kept ancestor as mother, NanoAOD
  status (1 final, 2 decayed hadron or τ, else Pythia's |status|) and
  ``statusFlags``;
- the hard-process W and Higgs boson (last copies, after the recoil from
  initial-state radiation) and the W's charged lepton and neutrino for the CP weights, and the event's hard scale √ŝ and
  rapidity ½ ln(x₁/x₂).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ewpolar.generator.constants import STATUS_FLAGS

__all__ = ["EventBlock", "read_event"]

_NEUTRINOS = {12, 14, 16}
_BOSONS = {6, 23, 24, 25}
_NONPROMPT_PT_MIN = 5.0

_F_PROMPT = STATUS_FLAGS["isPrompt"]
_F_DECAYED = STATUS_FLAGS["isDecayedLeptonHadron"]
_F_TAU = STATUS_FLAGS["isTauDecayProduct"]
_F_PROMPT_TAU = STATUS_FLAGS["isPromptTauDecayProduct"]
_F_DIRECT_TAU = STATUS_FLAGS["isDirectTauDecayProduct"]
_F_DIRECT_PROMPT_TAU = STATUS_FLAGS["isDirectPromptTauDecayProduct"]
_F_HARD = STATUS_FLAGS["isHardProcess"]
_F_FROM_HARD = STATUS_FLAGS["fromHardProcess"]
_F_FIRST = STATUS_FLAGS["isFirstCopy"]
_F_LAST = STATUS_FLAGS["isLastCopy"]


def _heavy_content(pid: int) -> int:
    """5 for a b hadron, 4 for a c hadron (without b), else 0."""
    a = abs(pid)
    if a < 100:
        return 0
    digits = ((a // 10) % 10, (a // 100) % 10, (a // 1000) % 10)
    if 5 in digits:
        return 5
    if 4 in digits:
        return 4
    return 0


@dataclass
class EventBlock:
    """Per-event lists of one block of showered events (see the module docstring)."""

    vis: list[np.ndarray] = field(default_factory=list)  # (m, 4) px py pz e
    ghosts: list[np.ndarray] = field(default_factory=list)  # (g, 5) px py pz e flavour
    prompt: list[np.ndarray] = field(default_factory=list)  # (p, 6) px py pz e pdg genidx
    nonprompt: list[np.ndarray] = field(default_factory=list)  # (q, 6) px py pz e pdg vis-idx
    genpart: list[np.ndarray] = field(default_factory=list)  # (k, 8) NanoAOD GenPart fields
    hard: list[np.ndarray] = field(default_factory=list)  # (4 W ℓ ν H, 4) + pdg of ℓ and W
    hard_pdg: list[tuple[int, int]] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    rapidity: list[float] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.weight)


def _ancestry(ev, i: int, cache: dict[int, tuple[bool, bool, int, bool]]):
    """(has a hadron ancestor, from the hard process, τ ancestor index (−1), τ prompt)."""
    if i in cache:
        return cache[i]
    chain = []
    result = (False, False, -1, False)
    j = i
    while j > 2:
        if j in cache:
            result = cache[j]
            break
        chain.append(j)
        p = ev[j]
        st = abs(p.status())
        if 21 <= st <= 29:
            result = (False, True, -1, False)
            break
        m = p.mother1()
        if m <= 2:
            break
        mp = ev[m]
        if mp.isHadron():
            result = (True, False, -1, False)
            break
        if abs(mp.id()) == 15 and abs(p.id()) != 15:
            had, hard, _, _ = _ancestry(ev, m, cache)
            result = (had, hard, m, not had)
            break
        j = m
    for k in chain:
        cache[k] = result
    return result


def read_event(ev, info, block: EventBlock) -> None:
    """Append one event of Pythia's record ``ev`` (with its ``info``) to ``block``."""
    size = ev.size()
    vis: list[tuple[float, float, float, float]] = []
    ghosts: list[tuple[float, float, float, float, int]] = []
    lepton_cands: list[int] = []
    keep: list[int] = []
    heavy_bosons: list[int] = []
    b_hadrons: list[int] = []
    hard = np.full((4, 4), np.nan)
    hard_pdg = (0, 0)
    for i in range(3, size):
        p = ev[i]
        st = p.status()
        pid = p.id()
        aid = abs(pid)
        if st > 0:  # final state
            if aid in _NEUTRINOS:
                lepton_cands.append(i)
                continue
            if aid in (11, 13):
                lepton_cands.append(i)
                continue
            vis.append((p.px(), p.py(), p.pz(), p.e()))
            continue
        ast = -st
        if 22 <= ast <= 29:
            keep.append(i)
            if aid in _BOSONS:
                heavy_bosons.append(i)
            continue
        if aid in _BOSONS or aid == 15:
            if p.iBotCopyId() == i:
                keep.append(i)
            continue
        if aid > 100:
            flav = _heavy_content(pid)
            if flav:
                daughters = p.daughterList()
                if not any(_heavy_content(ev[d].id()) == flav for d in daughters):
                    ghosts.append((p.px() * 1e-18, p.py() * 1e-18, p.pz() * 1e-18,
                                   p.e() * 1e-18, flav))
                    if flav == 5:
                        b_hadrons.append(i)

    cache: dict[int, tuple[bool, bool, int, bool]] = {}
    prompt: list[tuple] = []
    nonprompt: list[tuple] = []
    for i in lepton_cands:
        p = ev[i]
        aid = abs(p.id())
        had, _, _, _ = _ancestry(ev, i, cache)
        if not had:
            keep.append(i)
            if aid != 12 and aid != 14 and aid != 16:
                prompt.append(i)
        elif aid in _NEUTRINOS:
            continue
        else:
            vis_index = len(vis)
            vis.append((p.px(), p.py(), p.pz(), p.e()))
            if p.pT() > _NONPROMPT_PT_MIN:
                nonprompt.append((p.px(), p.py(), p.pz(), p.e(), p.id(), vis_index))
    keep.extend(b_hadrons)
    keep = sorted(set(keep))
    position = {j: k for k, j in enumerate(keep)}

    gen = np.empty((len(keep), 8))
    for k, j in enumerate(keep):
        p = ev[j]
        st = abs(p.status())
        aid = p.idAbs()
        # nearest kept ancestor
        m = p.mother1()
        while m > 2 and m not in position:
            m = ev[m].mother1()
        mother = position.get(m, -1)
        had, from_hard, tau, tau_prompt = _ancestry(ev, j, cache)
        flags = 0 if had else _F_PROMPT
        if 21 <= st <= 29:
            flags |= _F_HARD | _F_FROM_HARD
        elif from_hard:
            flags |= _F_FROM_HARD
        if tau >= 0:
            flags |= _F_TAU
            direct = ev[p.mother1()].idAbs() == 15
            if direct:
                flags |= _F_DIRECT_TAU
            if tau_prompt:
                flags |= _F_PROMPT_TAU | (_F_DIRECT_PROMPT_TAU if direct else 0)
        if p.iTopCopyId() == j:
            flags |= _F_FIRST
        if p.iBotCopyId() == j:
            flags |= _F_LAST
        final = p.isFinal()
        if not final and (aid == 15 or aid > 100):
            flags |= _F_DECAYED
        status = 1 if final else (st if 21 <= st <= 29 or aid in _BOSONS else 2)
        gen[k] = (p.pT(), p.eta(), p.phi(), p.m(), p.id(), mother, status, flags)

    # hard-process W → ℓν and H (first copies) for the CP weights
    w_index = next((j for j in heavy_bosons if ev[j].idAbs() == 24), -1)
    h_index = next((j for j in heavy_bosons if ev[j].id() == 25), -1)
    if w_index >= 0 and h_index >= 0:
        w_index, h_index = ev[w_index].iBotCopyId(), ev[h_index].iBotCopyId()
        w = ev[w_index]
        lep = nu = -1
        for d in w.daughterList():
            ad = ev[d].idAbs()
            if ad in (11, 13, 15):
                lep = d
            elif ad in _NEUTRINOS:
                nu = d
        if lep >= 0 and nu >= 0:
            for row, j in enumerate((w_index, lep, nu, h_index)):
                q = ev[j]
                hard[row] = (q.px(), q.py(), q.pz(), q.e())
            hard_pdg = (ev[lep].id(), w.id())

    block.vis.append(np.asarray(vis, dtype=np.float64).reshape(-1, 4))
    block.ghosts.append(np.asarray(ghosts, dtype=np.float64).reshape(-1, 5))
    block.prompt.append(np.asarray(
        [(ev[i].px(), ev[i].py(), ev[i].pz(), ev[i].e(), ev[i].id(), position[i]) for i in prompt],
        dtype=np.float64).reshape(-1, 6))
    block.nonprompt.append(np.asarray(nonprompt, dtype=np.float64).reshape(-1, 6))
    block.genpart.append(gen)
    block.hard.append(hard)
    block.hard_pdg.append(hard_pdg)
    x1, x2 = info.x1(), info.x2()
    block.scale.append(info.mHat())
    block.rapidity.append(0.5 * np.log(x1 / x2) if x1 > 0 and x2 > 0 else 0.0)
    block.weight.append(info.weight())
