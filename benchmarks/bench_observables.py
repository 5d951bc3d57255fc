"""Throughput of the observable kernels against the same chains written with `vector`.

Two chains on one core, on random but physical events made here with numpy:

* WH: neutrino p_z (rules ``wh_beta`` and ``min_abs``), W = ℓ + ν, the lepton
  boosted into the W rest frame, cos δ⁺.
* ssWW: cos θ* of both leptons in the WW frame from generator neutrinos
  (W_i = ℓ_i + ν_i, F = W_1 + W_2).

Each chain runs once as ewpolar kernels on flat float64 numpy arrays and once
with `vector` on awkward arrays (Momentum4D records made with ``vector.zip``);
the events themselves are made with numpy and vector's ``boost_p4``. The
script checks that both chains give the same numbers (cosines to 1e-10, p_z
and energies to 1e-6 GeV) before it reports a speed.

Usage::

    python benchmarks/bench_observables.py [--events 1000000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import os

# one core: set before numba (and numpy's BLAS) are imported
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import awkward as ak
import numba
import numpy as np
import vector

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ewpolar import observables as obs

MW = obs.MW_GEV
GAMMA_W = 2.085
MH = 125.0
MB = 4.8

#: largest accepted |kernel − vector| difference of the cosines cos θ* and cos δ⁺
AGREEMENT_COS = 1e-10
#: largest accepted |kernel − vector| difference of p_z and energies, GeV
AGREEMENT_GEV = 1e-6


def agreement(name: str) -> float:
    """Tolerance of one compared quantity (cosines are named ``cos_*``)."""
    return AGREEMENT_COS if name.startswith("cos_") else AGREEMENT_GEV

FourVec = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------
# event generation (numpy)
# ---------------------------------------------------------------------------


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    return np.array([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])


def _vec(p: FourVec):
    return vector.array({"px": p[0], "py": p[1], "pz": p[2], "E": p[3]})


def _boost(p: FourVec, parent: FourVec) -> FourVec:
    """p given in the rest frame of ``parent``, boosted to where ``parent`` has its momentum."""
    v = _vec(p).boost_p4(_vec(parent))
    return (np.asarray(v.px), np.asarray(v.py), np.asarray(v.pz), np.asarray(v.E))


def _two_body(rng: np.random.Generator, parent: FourVec, m: np.ndarray, m1: float, m2: float):
    """Isotropic decay of parents of mass m; daughters in the frame the parents are given in."""
    p_star = np.sqrt((m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2)) / (2.0 * m)
    d = p_star * _isotropic(rng, len(m))
    d1 = (d[0], d[1], d[2], np.sqrt(p_star**2 + m1**2))
    d2 = (-d[0], -d[1], -d[2], np.sqrt(p_star**2 + m2**2))
    return _boost(d1, parent), _boost(d2, parent)


def _breit_wigner(rng: np.random.Generator, n: int, m: float, width: float) -> np.ndarray:
    x = m + 0.5 * width * np.tan(np.pi * (rng.uniform(size=n) - 0.5))
    return np.clip(x, m - 20.0, m + 20.0)


def _pair_system(rng, n, m1, m2, m_min, scale):
    """Two bosons back to back in their rest frame, the system boosted along z with a pT kick."""
    m_sys = m_min + rng.exponential(scale, n)
    mask = m_sys <= m1 + m2
    m_sys[mask] = (m1 + m2)[mask] + 1.0
    b1, b2 = (np.asarray(m1), np.asarray(m2))
    p_star = np.sqrt((m_sys**2 - (b1 + b2) ** 2) * (m_sys**2 - (b1 - b2) ** 2)) / (2.0 * m_sys)
    d = p_star * _isotropic(rng, n)
    v1 = (d[0], d[1], d[2], np.sqrt(p_star**2 + b1**2))
    v2 = (-d[0], -d[1], -d[2], np.sqrt(p_star**2 + b2**2))
    y = rng.uniform(-2.0, 2.0, n)
    pt_kick = rng.exponential(30.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    mt = np.sqrt(m_sys**2 + pt_kick**2)
    sys_p4 = (pt_kick * np.cos(phi), pt_kick * np.sin(phi), mt * np.sinh(y), mt * np.cosh(y))
    return _boost(v1, sys_p4), _boost(v2, sys_p4)


def _accepted(p: FourVec, pt_min: float, eta_max: float) -> np.ndarray:
    pt = np.hypot(p[0], p[1])
    eta = np.arcsinh(p[2] / np.where(pt > 0, pt, 1e-300))
    return (pt > pt_min) & (np.abs(eta) < eta_max)


def _generate(rng: np.random.Generator, n: int, make_batch) -> dict[str, FourVec]:
    """Draw batches until n events pass the acceptance; keep the first n."""
    parts: list[dict[str, FourVec]] = []
    have = 0
    while have < n:
        batch, keep = make_batch(rng, max(2 * (n - have), 1000))
        parts.append({k: tuple(c[keep] for c in v) for k, v in batch.items()})
        have += int(keep.sum())
    return {
        k: tuple(np.concatenate([p[k][i] for p in parts])[:n] for i in range(4)) for k in parts[0]
    }


def _wh_batch(rng: np.random.Generator, n: int):
    m_w = _breit_wigner(rng, n, MW, GAMMA_W)
    m_h = np.full(n, MH)
    w, h = _pair_system(rng, n, m_w, m_h, MW + MH, 300.0)
    lep, nu = _two_body(rng, w, m_w, 0.0, 0.0)
    b1, b2 = _two_body(rng, h, m_h, MB, MB)
    keep = _accepted(lep, 25.0, 2.5) & _accepted(b1, 20.0, 2.5) & _accepted(b2, 20.0, 2.5)
    return {"lep": lep, "nu": nu, "b1": b1, "b2": b2}, keep


def _ssww_batch(rng: np.random.Generator, n: int):
    m1 = _breit_wigner(rng, n, MW, GAMMA_W)
    m2 = _breit_wigner(rng, n, MW, GAMMA_W)
    w1, w2 = _pair_system(rng, n, m1, m2, 2 * MW, 400.0)
    l1, n1 = _two_body(rng, w1, m1, 0.0, 0.0)
    l2, n2 = _two_body(rng, w2, m2, 0.0, 0.0)
    keep = _accepted(l1, 27.0, 2.5) & _accepted(l2, 27.0, 2.5)
    return {"l1": l1, "n1": n1, "l2": l2, "n2": n2}, keep


def make_wh(rng: np.random.Generator, n: int) -> dict[str, FourVec]:
    """W(→ℓν)H(→bb̄) events; lepton p_T > 25 GeV, b-jets p_T > 20 GeV, all |η| < 2.5."""
    return _generate(rng, n, _wh_batch)


def make_ssww(rng: np.random.Generator, n: int) -> dict[str, FourVec]:
    """W(→ℓν)W(→ℓν) events; both leptons p_T > 27 GeV, |η| < 2.5 (docs/physics.md §1a)."""
    return _generate(rng, n, _ssww_batch)


# ---------------------------------------------------------------------------
# chains
# ---------------------------------------------------------------------------


def _add(a: FourVec, b: FourVec) -> FourVec:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def wh_kernels(ev: dict) -> dict[str, np.ndarray]:
    lep, b1, b2 = ev["lep"], ev["b1"], ev["b2"]
    mx, my = ev["met_px"], ev["met_py"]
    higgs = _add(b1, b2)
    pz_min = obs.neutrino_pz(*lep, mx, my, rule="min_abs")
    pz_wh = obs.neutrino_pz(
        *lep, mx, my, rule="wh_beta", h_px=higgs[0], h_py=higgs[1], h_pz=higgs[2], h_e=higgs[3]
    )
    nu = obs.neutrino_four_vector(mx, my, pz_wh)
    w = _add(lep, nu)
    lep_w = obs.boost_to_rest_frame(*lep, *w)
    cdp = obs.cos_delta_plus(*lep, *nu, *higgs)
    return {
        "pz_min_abs": pz_min,
        "pz_wh_beta": pz_wh,
        "lep_w_e": lep_w[3],
        "lep_w_pz": lep_w[2],
        "cos_delta_plus": cdp,
    }


def _zip4(p) -> ak.Array:
    return vector.zip({"px": p[0], "py": p[1], "pz": p[2], "E": p[3]})


def wh_vector(ev: dict) -> dict[str, np.ndarray]:
    lep, b1, b2 = ev["lep"], ev["b1"], ev["b2"]
    mx, my = ev["met_px"], ev["met_py"]
    higgs = b1 + b2
    pt2 = lep.pt**2
    mu = MW**2 / 2 + lep.px * mx + lep.py * my
    a = mu * lep.pz / pt2
    delta = a**2 - (lep.E**2 * (mx**2 + my**2) - mu**2) / pt2
    sq = np.sqrt(ak.where(delta < 0, 0.0, delta))
    r_plus, r_minus = a + sq, a - sq
    pz_min = ak.where(np.abs(r_plus) < np.abs(r_minus), r_plus, r_minus)

    def beta_z(v):
        return v.pz / np.sqrt(v.pz**2 + v.mass2)

    def neutrino(pz):
        return vector.zip({"px": mx, "py": my, "pz": pz, "E": np.sqrt(mx**2 + my**2 + pz**2)})

    b_h = beta_z(higgs)
    d_plus = np.abs(beta_z(lep + neutrino(r_plus)) - b_h)
    d_minus = np.abs(beta_z(lep + neutrino(r_minus)) - b_h)
    r_other = ak.where(pz_min == r_plus, r_minus, r_plus)
    d_min = ak.where(pz_min == r_plus, d_plus, d_minus)
    d_other = ak.where(pz_min == r_plus, d_minus, d_plus)
    pz_wh = ak.where(d_other < d_min, r_other, pz_min)
    nu = neutrino(pz_wh)
    w = lep + nu
    lep_w = lep.boostCM_of_p4(w)
    normal = higgs.to_3D().cross(w.to_3D())
    l3 = lep_w.to_3D()
    cdp = l3.dot(normal) / (l3.mag * normal.mag)
    return {
        "pz_min_abs": pz_min,
        "pz_wh_beta": pz_wh,
        "lep_w_e": lep_w.E,
        "lep_w_pz": lep_w.pz,
        "cos_delta_plus": cdp,
    }


def ssww_kernels(ev: dict) -> dict[str, np.ndarray]:
    l1, l2 = ev["l1"], ev["l2"]
    w1 = _add(l1, ev["n1"])
    w2 = _add(l2, ev["n2"])
    frame = _add(w1, w2)
    return {
        "cos_theta_star_1": obs.cos_theta_star(*l1, *w1, *frame),
        "cos_theta_star_2": obs.cos_theta_star(*l2, *w2, *frame),
    }


def ssww_vector(ev: dict) -> dict[str, np.ndarray]:
    l1, l2 = ev["l1"], ev["l2"]
    w1 = l1 + ev["n1"]
    w2 = l2 + ev["n2"]
    frame = w1 + w2

    def cos_theta_star(lep, w):
        w_f = w.boostCM_of_p4(frame)
        lep_w = lep.boostCM_of_p4(frame).boostCM_of_p4(w_f).to_3D()
        w3 = w_f.to_3D()
        return lep_w.dot(w3) / (lep_w.mag * w3.mag)

    return {"cos_theta_star_1": cos_theta_star(l1, w1), "cos_theta_star_2": cos_theta_star(l2, w2)}


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------


CHAIN_TITLES = {
    "wh": "WH (ν p_z ×2 rules, W, ℓ→W frame, cos δ⁺)",
    "ssww": "ssWW (cos θ* of ℓ1, ℓ2 in the WW frame)",
}


def _best_time(fn, ev, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(ev)
        best = min(best, time.perf_counter() - t0)
    return best


def _slice(ev: dict, n: int) -> dict:
    return {k: (tuple(c[:n] for c in v) if isinstance(v, tuple) else v[:n]) for k, v in ev.items()}


def _max_diff(a: dict, b: dict) -> dict[str, float]:
    out = {}
    for key, x in a.items():
        y = np.asarray(ak.to_numpy(b[key]), dtype=np.float64)
        out[key] = float(np.max(np.abs(np.asarray(x) - y)))
    return out


def run(n_events: int, repeat: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    wh = make_wh(rng, n_events)
    ssww = make_ssww(rng, n_events)
    wh_np = {**wh, "met_px": wh["nu"][0].copy(), "met_py": wh["nu"][1].copy()}
    wh_ak = {k: _zip4(v) for k, v in wh.items()}
    wh_ak.update(met_px=ak.Array(wh_np["met_px"]), met_py=ak.Array(wh_np["met_py"]))
    ssww_ak = {k: _zip4(v) for k, v in ssww.items()}

    chains = {
        "wh": (wh_kernels, wh_vector, wh_np, wh_ak),
        "ssww": (ssww_kernels, ssww_vector, ssww, ssww_ak),
    }
    results = []
    for key, (kern, vec, ev_np, ev_ak) in chains.items():
        # warm-up: compile / load caches and vector's dispatch on a small slice
        kern(_slice(ev_np, 1000))
        vec({k: v[:1000] for k, v in ev_ak.items()})
        out_k, out_v = kern(ev_np), vec(ev_ak)
        diff = _max_diff(out_k, out_v)
        n_flip = 0
        if "pz_wh_beta" in out_k:
            # a root choice can differ on numerical ties of |β_z(W) − β_z(H)|; count them
            dz = np.abs(out_k["pz_wh_beta"] - ak.to_numpy(out_v["pz_wh_beta"]))
            n_flip = int(np.sum(dz > 1e-6 * (1 + np.abs(out_k["pz_wh_beta"]))))
        del out_k, out_v
        t_k = _best_time(kern, ev_np, repeat)
        t_v = _best_time(vec, ev_ak, repeat)
        results.append(
            {
                "key": key,
                "chain": CHAIN_TITLES[key],
                "events": n_events,
                "kernel_seconds": t_k,
                "vector_seconds": t_v,
                "kernel_events_per_s": n_events / t_k,
                "vector_events_per_s": n_events / t_v,
                "speedup": t_v / t_k,
                "max_abs_diff": diff,
                "wh_beta_root_choice_differs": n_flip,
            }
        )
    return {
        "events": n_events,
        "repeat": repeat,
        "seed": seed,
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "awkward": ak.__version__,
        "vector": vector.__version__,
        "cpu": _cpu_name(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "chains": results,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def flat_figures(report: dict) -> dict[str, object]:
    """The report as a flat mapping of figure name to value (the ``--json`` format)."""
    out: dict[str, object] = {
        key: report[key]
        for key in ("events", "repeat", "seed", "cpu", "python", "numba", "numpy", "awkward")
    }
    out["vector version"] = report["vector"]
    for r in report["chains"]:
        k = r["key"]
        out[f"{k} kernels events/s"] = round(r["kernel_events_per_s"])
        out[f"{k} vector events/s"] = round(r["vector_events_per_s"])
        out[f"{k} speed-up"] = round(r["speedup"], 2)
        for name, value in r["max_abs_diff"].items():
            out[f"{k} max abs diff {name}"] = value
        if k == "wh":
            out["wh wh_beta root choice differs (events)"] = r["wh_beta_root_choice_differs"]
    return out


def _fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f} M"


def to_markdown(report: dict) -> str:
    lines = [
        f"{report['events']:,} events, best of {report['repeat']}, one core "
        f"({report['cpu']}; numba {report['numba']}, vector {report['vector']}, "
        f"awkward {report['awkward']}, numpy {report['numpy']})",
        "",
        "| chain | kernels (events/s) | vector + awkward (events/s) | speed-up | max abs diff |",
        "|---|---:|---:|---:|---|",
    ]
    for r in report["chains"]:
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in r["max_abs_diff"].items())
        lines.append(
            f"| {r['chain']} | {_fmt_rate(r['kernel_events_per_s'])} | "
            f"{_fmt_rate(r['vector_events_per_s'])} | {r['speedup']:.1f}× | {diffs} |"
        )
    flips = [r["wh_beta_root_choice_differs"] for r in report["chains"]]
    if any(flips):
        lines.append("")
        lines.append(
            f"wh_beta root choice differs on {sum(flips)} events (numerical ties of "
            "|β_z(W) − β_z(H)|); their p_z difference is included in max abs diff."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per chain; best is kept")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures here (flat JSON mapping)"
    )
    args = parser.parse_args(argv)
    report = run(args.events, args.repeat, args.seed)
    print(to_markdown(report))
    if args.json is not None:
        args.json.write_text(json.dumps(flat_figures(report), indent=2) + "\n")
    bad = [
        f"{r['key']} {name} {value:.2e}"
        for r in report["chains"]
        for name, value in r["max_abs_diff"].items()
        if not value <= agreement(name)
    ]
    if bad:
        print(
            f"kernels and vector disagree beyond {AGREEMENT_COS:g} (cosines) or "
            f"{AGREEMENT_GEV:g} GeV: {'; '.join(bad)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
