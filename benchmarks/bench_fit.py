"""Time ``fit_ssww`` (LL and LX: fit, significance, CLs limit) on one core.

The histograms are synthetic, with the binning of the shipped ssWW config
(4 x 4 score templates, 7 m_jj bins in each of three control regions, every
systematic variation present), written by the test helpers in
tests/stats/fit_fixtures.py.

    python benchmarks/bench_fit.py [--repeat 3] [--config ssww] [--json out.json]
"""

from __future__ import annotations

import os

# one core: no threaded BLAS, and the process pinned to a single CPU where possible
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "stats"))

from ewpolar.core.config import load_config  # noqa: E402
from ewpolar.stats.ssww import fit_ssww  # noqa: E402
from fit_fixtures import ssww_histograms  # noqa: E402


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (after one warm-up)")
    parser.add_argument("--config", default="ssww", help="analysis config (default: shipped ssww)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the figures to this file ({figure: value})")
    args = parser.parse_args()

    pinning = _pin_one_core()
    cfg = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        path = ssww_histograms(cfg, Path(tmp) / "histograms.root")
        fit_ssww(cfg, path)  # warm-up: imports, schema loading
        seconds = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            results = fit_ssww(cfg, path)
            seconds.append(time.perf_counter() - t0)
    record = {
        "fits": ", ".join(results.fits),
        "seconds_min": round(min(seconds), 3),
        "seconds_median": round(statistics.median(seconds), 3),
        "repeats": len(seconds),
        "cpu": pinning,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    for name, f in results.fits.items():
        record[f"{name}_mu"] = round(f.mu["value"], 4)
        record[f"{name}_significance_expected"] = round(f.significance.expected, 4)
        record[f"{name}_upper_limit_expected"] = round(f.limit.expected, 4)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"fit_ssww ({record['fits']}: fit + significance + CLs limit), {pinning}")
    print(f"  {args.repeat} runs: min {record['seconds_min']:.2f} s, "
          f"median {record['seconds_median']:.2f} s")
    for name, f in results.fits.items():
        print(f"  {name}: mu = {f.interval.describe('.3f')}, "
              f"Z_exp = {f.significance.expected:.2f}, mu_up,exp = {f.limit.expected:.3f}")


if __name__ == "__main__":
    main()
