"""Les Houches event files: the toy's parton-level events as LHE, and LHE weight groups.

Toy events as LHE (:func:`write_toy_lhe`)
    W + bb̄ (``wbb``, :mod:`ewpolar.generator.wh`): qq̄' → W(→ ℓν) bb̄ with u d̄
    (W⁺) or d ū (W⁻) along +z/−z, colour flowing from the quark to the b and from
    the antiquark to the b̄, radiated partons as gluons on the quark line.

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

    The toy does not bound the energy of its tag quarks, so a few per cent of
    its W±W±jj events need x > 1; Pythia rejects those, and the block showers
    spare toy events in their place (:func:`ewpolar.generator.pythia.run.run_block`).

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


def _ssww_entries(hard: HardEvent, i: int, hel) -> tuple[list[tuple], float]:
    """LHE particles of toy event ``i`` of a W±W±jj process (GenPart layout of :mod:`.ssww`)."""
    gen, p4 = hard.gen, hard.gen.p4
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
    glu = _radiation(hard, i, 2)
    leptons = [(float(p4.px[i, s]), float(p4.py[i, s]), float(p4.pz[i, s]), float(p4.e[i, s]),
                float(gen.mass[i, s])) for s in (4, 5, 6, 7)]
    # colour: tags 501 (line 1, carrying the radiated gluons) and 502 (line 2)
    gluon_cols, end, _ = _gluon_chain(glu, 501, ins[0] > 0, 503)
    ends = (end, 502)
    in_cols = [(c, 0) if q > 0 else (0, c) for q, c in zip(ins, (501, 502), strict=True)]
    out_cols = [(c, 0) if q > 0 else (0, c) for q, c in zip(tags, ends, strict=True)]
    entries = _incoming(ins, in_cols, quarks + glu + leptons)
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
    return entries, scalup


def _radiation(hard: HardEvent, i: int, first: int) -> list[tuple]:
    """Radiated partons of event ``i`` (parton slots from ``first``) as massless gluons."""
    par = hard.partons
    glu = []
    for k in np.nonzero(par.exists[i, first:])[0] + first:
        px, py, pz = float(par.p4.px[i, k]), float(par.p4.py[i, k]), float(par.p4.pz[i, k])
        glu.append((px, py, pz, float(np.sqrt(px * px + py * py + pz * pz)), 0.0))
    return glu


def _incoming(ins: list[int], in_cols: list[tuple[int, int]], outgoing: list[tuple]) -> list[tuple]:
    """The two incoming partons along ±z carrying the outgoing energy and p_z."""
    tot = np.sum(np.array([v[:4] for v in outgoing]), axis=0)
    pa, pb = float(tot[3] + tot[2]) / 2.0, float(tot[3] - tot[2]) / 2.0
    return [(ins[0], -1, 0, 0, *in_cols[0], 0.0, 0.0, pa, pa, 0.0, 9),
            (ins[1], -1, 0, 0, *in_cols[1], 0.0, 0.0, -pb, pb, 0.0, 9)]


def _gluon_chain(glu: list[tuple], start: int, quark_line: bool, colour: int
                 ) -> tuple[list[tuple[int, int]], int, int]:
    """Colours of gluons radiated along a line starting with colour ``start``."""
    cols, end = [], start
    for _ in glu:
        cols.append((end, colour) if quark_line else (colour, end))
        end = colour
        colour += 1
    return cols, end, colour


def _wbb_entries(hard: HardEvent, i: int) -> tuple[list[tuple], float]:
    """LHE particles of toy event ``i`` of W + bb̄ (GenPart layout of :mod:`.wh`): qq̄' → W bb̄."""
    gen, p4 = hard.gen, hard.gen.p4
    plus = gen.pdg[i, 0] > 0
    ins = [2, -1] if plus else [1, -2]
    glu = _radiation(hard, i, 2)
    gluon_cols, end, _ = _gluon_chain(glu, 501, True, 503)

    def mom(s: int) -> tuple:
        return (float(p4.px[i, s]), float(p4.py[i, s]), float(p4.pz[i, s]), float(p4.e[i, s]),
                float(gen.mass[i, s]))

    b, bbar, lep, nu = mom(1), mom(2), mom(3), mom(4)
    entries = _incoming(ins, [(501, 0), (0, 502)], [b, bbar, lep, nu, *glu])
    wp = np.add(lep[:4], nu[:4])
    mw = float(np.sqrt(max(wp[3] ** 2 - wp[0] ** 2 - wp[1] ** 2 - wp[2] ** 2, 0.0)))
    entries.append((int(gen.pdg[i, 0]), 2, 1, 2, 0, 0, *map(float, wp), mw, 9))
    entries.append((5, 1, 1, 2, end, 0, *b, 9))
    entries.append((-5, 1, 1, 2, 0, 502, *bbar, 9))
    entries += [(21, 1, 1, 2, *c, *g, 9) for g, c in zip(glu, gluon_cols, strict=True)]
    entries.append((int(gen.pdg[i, 3]), 1, 3, 3, 0, 0, *lep, 9))
    entries.append((int(gen.pdg[i, 4]), 1, 3, 3, 0, 0, *nu, 9))
    return entries, float(max(np.hypot(b[0], b[1]), np.hypot(bbar[0], bbar[1])))


def write_toy_lhe(path: Path, hard: HardEvent, process: str) -> None:
    """Write the toy events ``hard`` of ``process`` (W±W±jj-like or ``wbb``) as LHE."""
    n = hard.n
    model = theory.THEORY_TOYS[process]
    scale_w = theory.scale_weights(hard.scale, model)
    pdf_w = theory.pdf_weights(hard.scale, hard.rapidity, model)
    hel = (hard.info.get("helicity1", np.full(n, 9)), hard.info.get("helicity2", np.full(n, 9)))
    lines = ['<LesHouchesEvents version="3.0">', "<header>", "<initrwgt>",
             '<weightgroup name="scale_variation" combine="envelope">']
    lines += [f'<weight id="scale_{k}"> muR/muF variation {k} </weight>' for k in range(9)]
    lines += ["</weightgroup>", '<weightgroup name="PDF" combine="symmhessian">']
    lines += [f'<weight id="pdf_{k}"> member {k} </weight>' for k in range(pdf_w.shape[1])]
    lines += ["</weightgroup>", "</initrwgt>", "</header>", "<init>",
              _fmt(2212, 2212, SQRT_S / 2, SQRT_S / 2, 0, 0, 247000, 247000, 3, 1),
              _fmt(1.0, 0.0, 1.0, 1), "</init>"]
    for i in range(n):
        if process == "wbb":
            entries, scalup = _wbb_entries(hard, i)
        else:
            entries, scalup = _ssww_entries(hard, i, hel)
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


def _header_groups(path: Path) -> list[tuple[str, dict[str, str], list[str]]]:
    """(name, attributes, weight ids) of each ``<weightgroup>`` in the header."""
    import xml.etree.ElementTree as ET

    text = []
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.lstrip().startswith(("<init>", "<init ")):
                break
            text.append(line)
    header = "".join(text)
    start, end = header.find("<initrwgt"), header.find("</initrwgt>")
    if start < 0 or end < 0:
        return []
    try:
        root = ET.fromstring(header[start:end + len("</initrwgt>")])
    except ET.ParseError:
        return []
    groups = []
    for k, group in enumerate(root.iter("weightgroup")):
        attrib = dict(group.attrib)
        name = attrib.get("name") or attrib.get("type") or f"group{k}"
        groups.append((name, attrib, [w.attrib.get("id", "") for w in group.iter("weight")]))
    return groups


def weight_groups(path: Path) -> dict[str, list[str]]:
    """Weight ids of an LHE file per NanoAOD list (see the module docstring)."""
    out: dict[str, list[str]] = {name: [] for name in LHE_LISTS}
    for name, attrib, ids in _header_groups(path):
        lname = name.lower()
        if "scale" in lname:
            out["LHEScaleWeight"] += ids
        elif "pdf" in lname or attrib.get("combine", "").lower() in _PDF_COMBINE:
            out["LHEPdfWeight"] += ids
        else:
            out["LHEReweightingWeight"] += ids
    return {k: v for k, v in out.items() if v}


def event_weights(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``XWGTUP`` of every event and its weight lists relative to it, in file order (pylhe)."""
    import pylhe

    groups = weight_groups(path)
    nominal: list[float] = []
    lists: dict[str, list[list[float]]] = {k: [] for k in groups}
    for event in pylhe.LHEFile.fromfile(str(path)).events:
        w0 = float(event.eventinfo.weight)
        nominal.append(w0)
        weights = event.weights or {}
        for key, ids in groups.items():
            lists[key].append([float(weights.get(i, w0)) / w0 if w0 else 1.0 for i in ids])
    return np.asarray(nominal), {k: np.asarray(v, dtype=np.float64).reshape(len(nominal), -1)
                                 for k, v in lists.items()}
