"""Les Houches event files: the toy's parton-level events as LHE, and LHE weight groups.

Toy events as LHE (:func:`write_toy_lhe`)
    Each toy event of a W±W±jj-like process (two W's decaying to ℓν, two tag
    quarks, radiated partons; :mod:`ewpolar.generator.ssww`) becomes one LHE
    event: two incoming partons along the beams carrying the total energy and
    longitudinal momentum of the final state (x₁,₂ = (E ± p_z)/√s), the two W's as
    intermediate resonances (status 2, ``SPINUP`` = the generated helicity) with
    their leptons and neutrinos exactly as generated, the tag quarks, and the
    radiated partons as massless gluons. Incoming flavours follow from charge
    conservation along each quark line (q → q' W); tag quarks that cannot emit the
    W (gluons, wrong charge) become the canonical d (W⁺) or u (W⁻) line. Colour
    flows along the two quark lines; radiated gluons are inserted in the first
    line. Weights: ``XWGTUP`` = 1 with the parametrised theory weights of the
    process (:mod:`ewpolar.generator.theory`) as LHE weight groups
    ``scale_variation`` (9) and ``PDF`` (31), so the showered file carries them
    like a generator's file would.

Weight groups of a user's LHE file (:func:`weight_groups`)
    Groups whose name contains "scale" become ``LHEScaleWeight``; groups whose
    name contains "pdf" or with a ``combine`` attribute (hessian, replicas, ...)
    become ``LHEPdfWeight``; all other weights (e.g. MadGraph reweighting)
    ``LHEReweightingWeight``. Members keep the file's order; weights are
    written relative to ``XWGTUP`` as in NanoAOD.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ewpolar.generator import theory
from ewpolar.generator.constants import SQRT_S
from ewpolar.generator.record import HardEvent

__all__ = ["LHE_LISTS", "event_weights", "weight_groups", "write_toy_lhe"]

LHE_LISTS = ("LHEScaleWeight", "LHEPdfWeight", "LHEReweightingWeight")
_PDF_COMBINE = {"hessian", "symmhessian", "replicas", "gaussian", "asymhessian"}


def _partner(out_pdg: int, w_charge: int) -> int:
    """Incoming flavour of a quark line q_in → q_out + W (0 if impossible)."""
    a = abs(out_pdg)
    if not 1 <= a <= 4:
        return 0
    up = a % 2 == 0
    if out_pdg > 0:
        if up and w_charge < 0:
            return a - 1
        if not up and w_charge > 0:
            return a + 1
    else:
        if up and w_charge > 0:
            return -(a - 1)
        if not up and w_charge < 0:
            return -(a + 1)
    return 0


def _fmt(*values) -> str:
    return " ".join(f"{v:.10e}" if isinstance(v, float) else str(v) for v in values)


def write_toy_lhe(path: Path, hard: HardEvent, process: str) -> None:
    """Write the toy W±W±jj events ``hard`` (GenPart layout of :mod:`.ssww`) as LHE."""
    gen = hard.gen
    n = hard.n
    model = theory.THEORY_TOYS[process]
    scale_w = theory.scale_weights(hard.scale, model)
    pdf_w = theory.pdf_weights(hard.scale, hard.rapidity, model)
    hel = (hard.info.get("helicity1", np.full(n, 9)), hard.info.get("helicity2", np.full(n, 9)))
    p4 = gen.p4
    par = hard.partons
    lines = ['<LesHouchesEvents version="3.0">', "<header>", "<initrwgt>",
             '<weightgroup name="scale_variation" combine="envelope">']
    lines += [f'<weight id="scale_{k}"> muR/muF variation {k} </weight>' for k in range(9)]
    lines += ["</weightgroup>", '<weightgroup name="PDF" combine="symmhessian">']
    lines += [f'<weight id="pdf_{k}"> member {k} </weight>' for k in range(pdf_w.shape[1])]
    lines += ["</weightgroup>", "</initrwgt>", "</header>", "<init>",
              _fmt(2212, 2212, SQRT_S / 2, SQRT_S / 2, 0, 0, 247000, 247000, 3, 1),
              _fmt(1.0, 0.0, 1.0, 1), "</init>"]
    for i in range(n):
        w_charge = 1 if gen.pdg[i, 0] > 0 else -1
        tags, ins = [], []
        for slot in (2, 3):
            q = int(gen.pdg[i, slot])
            incoming = _partner(q, w_charge)
            if incoming == 0:
                q = 1 if w_charge > 0 else 2
                incoming = _partner(q, w_charge)
            tags.append(q)
            ins.append(incoming)
        quarks = []
        for slot, q in zip((2, 3), tags, strict=True):
            m = float(gen.mass[i, slot]) if q == gen.pdg[i, slot] else 0.0
            px, py, pz = float(p4.px[i, slot]), float(p4.py[i, slot]), float(p4.pz[i, slot])
            quarks.append((px, py, pz, float(np.sqrt(px * px + py * py + pz * pz + m * m)), m))
        glu = []
        for k in np.nonzero(par.exists[i, 2:])[0] + 2:
            px, py, pz = float(par.p4.px[i, k]), float(par.p4.py[i, k]), float(par.p4.pz[i, k])
            glu.append((px, py, pz, float(np.sqrt(px * px + py * py + pz * pz)), 0.0))
        leptons = [(float(p4.px[i, s]), float(p4.py[i, s]), float(p4.pz[i, s]), float(p4.e[i, s]),
                    float(gen.mass[i, s])) for s in (4, 5, 6, 7)]
        tot = np.sum(np.array([v[:4] for v in quarks + glu + leptons]), axis=0)
        pa, pb = (tot[3] + tot[2]) / 2.0, (tot[3] - tot[2]) / 2.0
        # colour: tags 501 (line 1, carrying the radiated gluons) and 502 (line 2)
        colour = 503
        gluon_cols = []
        end = 501
        for _ in glu:
            gluon_cols.append((end, colour) if ins[0] > 0 else (colour, end))
            end = colour
            colour += 1
        ends = (end, 502)
        in_cols = [(c, 0) if q > 0 else (0, c) for q, c in zip(ins, (501, 502), strict=True)]
        out_cols = [(c, 0) if q > 0 else (0, c) for q, c in zip(tags, ends, strict=True)]
        entries = [
            (ins[0], -1, 0, 0, *in_cols[0], 0.0, 0.0, pa, pa, 0.0, 9),
            (ins[1], -1, 0, 0, *in_cols[1], 0.0, 0.0, -pb, pb, 0.0, 9),
        ]
        for w in (0, 1):
            wp = np.add(leptons[2 * w][:4], leptons[2 * w + 1][:4])
            mw = float(np.sqrt(max(wp[3] ** 2 - wp[0] ** 2 - wp[1] ** 2 - wp[2] ** 2, 0.0)))
            entries.append((int(gen.pdg[i, w]), 2, 1, 2, 0, 0, *map(float, wp), mw,
                            int(hel[w][i])))
        for q, mom, cols in zip(tags, quarks, out_cols, strict=True):
            entries.append((q, 1, 1, 2, *cols, *mom, 9))
        for mom, cols in zip(glu, gluon_cols, strict=True):
            entries.append((21, 1, 1, 2, *cols, *mom, 9))
        for w in (0, 1):
            for s in (2 * w, 2 * w + 1):
                entries.append((int(gen.pdg[i, 4 + s]), 1, 3 + w, 3 + w, 0, 0, *leptons[s], 9))
        scalup = float(max(np.hypot(quarks[0][0], quarks[0][1]), np.hypot(quarks[1][0], quarks[1][1])))
        lines.append("<event>")
        lines.append(_fmt(len(entries), 1, 1.0, scalup, 0.0078125, 0.118))
        for e in entries:
            pdg, st, m1, m2, c1, c2, px, py, pz, en, m, spin = e
            lines.append(f"{pdg} {st} {m1} {m2} {c1} {c2} {px:.10e} {py:.10e} {pz:.10e} "
                         f"{en:.10e} {m:.10e} 0 {spin}")
        lines.append("<rwgt>")
        lines += [f'<wgt id="scale_{k}"> {scale_w[i, k]:.8e} </wgt>' for k in range(9)]
        lines += [f'<wgt id="pdf_{k}"> {float(pdf_w[i, k]):.8e} </wgt>'
                  for k in range(pdf_w.shape[1])]
        lines.append("</rwgt>")
        lines.append("</event>")
    lines.append("</LesHouchesEvents>")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def weight_groups(path: Path) -> dict[str, list[str]]:
    """Weight ids of an LHE file per NanoAOD list (see the module docstring)."""
    import pylhe

    init = pylhe.read_lhe_init(str(path))
    groups = init.get("weightgroup", {}) if isinstance(init, dict) else {}
    out: dict[str, list[str]] = {name: [] for name in LHE_LISTS}
    for name, group in groups.items():
        attrib = group.get("attrib", {}) if isinstance(group, dict) else {}
        ids = list(group.get("weights", {})) if isinstance(group, dict) else []
        lname = str(name).lower()
        if "scale" in lname:
            out["LHEScaleWeight"] += ids
        elif "pdf" in lname or str(attrib.get("combine", "")).lower() in _PDF_COMBINE:
            out["LHEPdfWeight"] += ids
        else:
            out["LHEReweightingWeight"] += ids
    return {k: v for k, v in out.items() if v}


def event_weights(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``XWGTUP`` of every event and its weight lists relative to it, in file order."""
    import pylhe

    groups = weight_groups(path)
    nominal: list[float] = []
    lists: dict[str, list[list[float]]] = {k: [] for k in groups}
    for event in pylhe.read_lhe_with_attributes(str(path)):
        w0 = float(event.eventinfo.weight)
        nominal.append(w0)
        weights = getattr(event, "weights", {}) or {}
        for key, ids in groups.items():
            lists[key].append([float(weights.get(i, w0)) / w0 if w0 else 1.0 for i in ids])
    return np.asarray(nominal), {k: np.asarray(v, dtype=np.float64).reshape(len(nominal), -1)
                                 for k, v in lists.items()}
