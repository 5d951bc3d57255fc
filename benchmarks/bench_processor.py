"""Processor throughput against the cost of reading the same columns, and executor scaling.

One run, on one machine:
  1. the ssWW processor over N generated ssWW-channel events (iterative executor, one core),
  2. uproot.iterate over the same files and the same branches (those metrics.json lists
     as read) at the same chunk size: the pure read time,
  3. the futures executor with 1 and with 2 workers,
  4. a dask LocalCluster with 1 and with 2 workers (cluster start-up included).

    python benchmarks/bench_processor.py --events 1000000 [--json out.json]

Targets: processor time ≤ 1.5 × read time; 2 workers ≥ 1.7 × faster than 1 (futures, dask).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import uproot

from analysis.config import load_config
from analysis.generator import generate
from analysis.runner import load_fileset, run_analysis


def _read_time(fileset: dict, branches: list[str], chunksize: int) -> tuple[float, int]:
    tic = time.perf_counter()
    n = 0
    for entry in fileset.values():
        files = dict(entry["files"])
        for arrays in uproot.iterate(files, branches, step_size=chunksize, library="ak"):
            n += len(arrays)
    return time.perf_counter() - tic, n


def _timed_run(cfg, fileset, **kw) -> tuple[float, dict]:
    tic = time.perf_counter()
    res = run_analysis(cfg, fileset, **kw)
    return time.perf_counter() - tic, res.metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="total ssWW-channel events")
    ap.add_argument("--chunksize", type=int, default=100_000)
    ap.add_argument("--samples", type=Path, default=None, help="reuse samples in this folder")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    cfg = load_config("ssww")
    tmp = tempfile.TemporaryDirectory()
    out = args.samples or Path(tmp.name)
    fileset_path = out / "fileset.json"
    if not fileset_path.exists():
        per_ds = max(1, args.events // len(cfg.samples))
        generate(cfg, events=per_ds, seed=7, out=out)
    fileset = load_fileset(fileset_path)

    # warm-up: compile kernels, fill caches of the OS page cache for a fair comparison
    run_analysis(cfg, fileset, executor="iterative", chunksize=args.chunksize, maxchunks=1)

    t_proc, metrics = _timed_run(cfg, fileset, executor="iterative", chunksize=args.chunksize)
    branches = metrics["columns_read"]
    t_read, n_read = _read_time(fileset, branches, args.chunksize)
    t_f1, _ = _timed_run(cfg, fileset, executor="futures", workers=1, chunksize=args.chunksize)
    t_f2, _ = _timed_run(cfg, fileset, executor="futures", workers=2, chunksize=args.chunksize)
    t_d1, _ = _timed_run(cfg, fileset, executor="dask", workers=1, chunksize=args.chunksize)
    t_d2, _ = _timed_run(cfg, fileset, executor="dask", workers=2, chunksize=args.chunksize)

    n = metrics["events_processed"]
    rows = {
        "events": n,
        "branches_read": len(branches),
        "processor_seconds": round(t_proc, 3),
        "processor_events_per_s": round(n / t_proc),
        "uproot_read_seconds": round(t_read, 3),
        "processor_over_read": round(t_proc / t_read, 3),
        "futures_1_worker_seconds": round(t_f1, 3),
        "futures_2_workers_seconds": round(t_f2, 3),
        "futures_speedup_2_over_1": round(t_f1 / t_f2, 3),
        "dask_1_worker_seconds": round(t_d1, 3),
        "dask_2_workers_seconds": round(t_d2, 3),
        "dask_speedup_2_over_1": round(t_d1 / t_d2, 3),
    }
    assert n_read == n, (n_read, n)
    print("| quantity | value |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
