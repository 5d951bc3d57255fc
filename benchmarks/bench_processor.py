"""Processor throughput against the cost of reading the same columns, and executor scaling.

One run, on one machine:
  1. the ssWW processor over N generated ssWW-channel events (iterative executor, one
     core), with bulk preloading (the default) and with one lazy read per branch, and
     without the classifier templates (the selection, observables, weights and
     histograms alone),
  2. uproot.iterate over the same files and the same branches (those metrics.json lists
     as read) at the same chunk size: the pure read time,
  3. the futures executor with 1 and with 2 workers,
  4. dask: a LocalCluster started by the run (start-up included), and a cluster that is
     already up (as with --scheduler on a facility), with 1 and with 2 workers.

    python benchmarks/bench_processor.py --events 1000000 [--repeat 3] [--json out.json]

Each figure is the fastest of --repeat runs. For the futures and running-cluster
scaling, the 1- and 2-worker runs alternate (both running clusters are up at once),
and every repeat's time, the ratio of the medians and the median of the pairs'
ratios are listed too, with the futures workers' page faults and system time. Targets:
processor time ≤ 1.5 × read time; 2 workers ≥ 1.7 × faster than 1 (futures, dask).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import uproot
from ewpolar.core.config import load_config
from ewpolar.generator import generate
from ewpolar.runner.local import local_cluster
from ewpolar.runner.run import load_fileset, run_analysis, uproot_options


def _read_time(fileset: dict, branches: list[str], chunksize: int) -> tuple[float, int]:
    tic = time.perf_counter()
    n = 0
    for entry in fileset.values():
        files = dict(entry["files"])
        # the same uproot source as the runner's (memory-mapped for local files)
        for arrays in uproot.iterate(files, branches, step_size=chunksize, library="ak",
                                     **uproot_options(fileset)):
            n += len(arrays)
    return time.perf_counter() - tic, n


def _timed_run(cfg, fileset, **kw) -> tuple[float, dict]:
    tic = time.perf_counter()
    res = run_analysis(cfg, fileset, **kw)
    return time.perf_counter() - tic, res.metrics


def _futures_run(cfg, fileset, workers: int, chunksize: int, kernel: list[tuple[int, float]]) -> float:
    """Seconds of a futures run; appends the pool workers' minor page faults and system
    CPU seconds to ``kernel`` (the pool is shut down, so its workers are reaped, by the end)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = _timed_run(cfg, fileset, executor="futures", workers=workers, chunksize=chunksize)[0]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    kernel.append((after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime))
    return seconds


def _times(repeat: int, fn) -> list[float]:
    return [fn() for _ in range(repeat)]


def _best(repeat: int, fn) -> float:
    return min(_times(repeat, fn))


def _prestarted_dask(cfg, fileset, chunksize: int, repeat: int) -> tuple[list[float], list[float]]:
    """Seconds of runs on a running 1-worker and a running 2-worker LocalCluster.

    Both clusters are up and warm at the same time, and the timed runs alternate
    between them (1, 2, 1, 2, ...), so that each pair of runs sees the machine in
    the same state: this machine's speed drifts over minutes (benchmarks/README.md),
    which made the ratio of two blocks of runs made one after the other scatter.
    Warm means one full run on each before the timed ones: the workers have
    imported everything, loaded the kernels and models, and grown their heaps to
    the working set of a chunk, as the workers of a long analysis have after their
    first chunks. The idle cluster's workers only answer heartbeats.
    """
    with local_cluster(1) as one, local_cluster(2) as two:
        def run(cluster) -> float:
            return _timed_run(cfg, fileset, executor="dask", scheduler=cluster.scheduler_address,
                              security=cluster.security,
                              chunksize=chunksize)[0]

        run(one)
        run(two)
        return _alternating(repeat, lambda: run(one), lambda: run(two))


def _alternating(repeat: int, first, second) -> tuple[list[float], list[float]]:
    """``repeat`` calls of each, alternating (first, second, first, ...)."""
    a, b = [], []
    for _ in range(repeat):
        a.append(first())
        b.append(second())
    return a, b


def _pairwise(a: list[float], b: list[float]) -> float:
    """The median over the alternating pairs of ``a[i] / b[i]``."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def _listed(seconds: list[float]) -> str:
    """Every repeat's time, in order, for the scatter behind a best-of figure."""
    return ", ".join(f"{t:.2f}" for t in seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="total ssWW-channel events")
    ap.add_argument("--chunksize", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per figure; the fastest counts")
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
    cs, rep = args.chunksize, args.repeat

    # warm-up: compile kernels, fill the OS page cache and coffea's metadata cache
    run_analysis(cfg, fileset, executor="iterative", chunksize=cs, maxchunks=1)

    _, metrics = _timed_run(cfg, fileset, executor="iterative", chunksize=cs)
    branches = metrics["columns_read"]
    n = metrics["events_processed"]
    no_templates = cfg.model_copy(update={"templates": {}})
    t_proc = _best(rep, lambda: _timed_run(cfg, fileset, chunksize=cs)[0])
    t_lazy = _best(rep, lambda: _timed_run(cfg, fileset, chunksize=cs, preload=False)[0])
    t_bare = _best(rep, lambda: _timed_run(no_templates, fileset, chunksize=cs)[0])
    reads = [_read_time(fileset, branches, cs) for _ in range(rep)]
    t_read, n_read = min(reads)
    k1: list[tuple[int, float]] = []
    k2: list[tuple[int, float]] = []
    f1, f2 = _alternating(rep, lambda: _futures_run(cfg, fileset, 1, cs, k1),
                          lambda: _futures_run(cfg, fileset, 2, cs, k2))
    t_f1, t_f2 = min(f1), min(f2)
    t_d1 = _best(rep, lambda: _timed_run(cfg, fileset, executor="dask", workers=1, chunksize=cs)[0])
    t_d2 = _best(rep, lambda: _timed_run(cfg, fileset, executor="dask", workers=2, chunksize=cs)[0])
    p1, p2 = _prestarted_dask(cfg, fileset, cs, rep)
    t_p1, t_p2 = min(p1), min(p2)

    rows = {
        "events": n,
        "branches_read": len(branches),
        "processor_seconds": round(t_proc, 3),
        "processor_events_per_s": round(n / t_proc),
        "uproot_read_seconds": round(t_read, 3),
        "processor_over_read": round(t_proc / t_read, 3),
        "processor_lazy_reads_seconds": round(t_lazy, 3),
        "processor_lazy_reads_over_read": round(t_lazy / t_read, 3),
        "processor_without_templates_seconds": round(t_bare, 3),
        "processor_without_templates_over_read": round(t_bare / t_read, 3),
        "futures_1_worker_seconds": round(t_f1, 3),
        "futures_2_workers_seconds": round(t_f2, 3),
        "futures_speedup_2_over_1": round(t_f1 / t_f2, 3),
        "futures_1_worker_all_seconds": _listed(f1),
        "futures_2_workers_all_seconds": _listed(f2),
        "futures_speedup_median_over_median": round(statistics.median(f1) / statistics.median(f2), 3),
        "futures_speedup_median_of_pairs": round(_pairwise(f1, f2), 3),
        "futures_1_worker_page_faults_all": ", ".join(str(f) for f, _ in k1),
        "futures_2_workers_page_faults_all": ", ".join(str(f) for f, _ in k2),
        "futures_1_worker_system_seconds_all": _listed([t for _, t in k1]),
        "futures_2_workers_system_seconds_all": _listed([t for _, t in k2]),
        "dask_1_worker_seconds": round(t_d1, 3),
        "dask_2_workers_seconds": round(t_d2, 3),
        "dask_speedup_2_over_1": round(t_d1 / t_d2, 3),
        "dask_running_cluster_1_worker_seconds": round(t_p1, 3),
        "dask_running_cluster_2_workers_seconds": round(t_p2, 3),
        "dask_running_cluster_speedup_2_over_1": round(t_p1 / t_p2, 3),
        "dask_running_cluster_1_worker_all_seconds": _listed(p1),
        "dask_running_cluster_2_workers_all_seconds": _listed(p2),
        "dask_running_cluster_speedup_median_over_median": round(
            statistics.median(p1) / statistics.median(p2), 3),
        "dask_running_cluster_speedup_median_of_pairs": round(_pairwise(p1, p2), 3),
    }
    assert n_read == n, (n_read, n)
    print("| quantity | value |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
