"""Speed-up of a distributed hyperparameter search: 2 dask workers against 1.

Runs the same Optuna search (``ewpolar.models.training.optimize``) three times on
a synthetic training set (two Gaussian classes, ``--inputs`` inputs of which one
separates): in this process, on a dask LocalCluster of 1 worker and on one of 2
workers (``ewpolar.models.training.distributed.search_client``, the cluster of
``ewpolar optimize --executor dask --workers N``), each time with a new journal
study. Every trial has the same cost (fixed architecture, no pruning, no early
stopping: ``--epochs`` epochs on one fold), so the wall time measures the
scheduling: the ideal speed-up of 2 workers is 2, less the cluster start, the
scatter of the training set and the study's storage round trips.

Usage:
    python benchmarks/bench_optimize.py [--events 100000] [--inputs 8] [--trials 8]
        [--epochs 5] [--json results.json]

On a shared machine the cores the workers get bound the speed-up, whatever the
search does; each cluster therefore also runs a plain CPU-bound task per trial
(a Python loop of the same length on every worker), and the ratio of the two
speed-ups is the efficiency of the distributed search itself.

``--json`` writes ``{figure: value}``: ``local_s``, ``dask_1_worker_s``,
``dask_2_workers_s`` (wall seconds of the search; the cluster start and the
workers' imports excluded),
``speedup_2_vs_1``, ``cpu_speedup_2_vs_1`` (the plain tasks), ``search_efficiency``
(their ratio) and ``cluster_start_s``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.distributed import search_client
from ewpolar.models.training.mlp import MLPConfig
from ewpolar.models.training.optimize import SearchSpace, optimize_hyperparameters

# every trial the same network: only the learning rate is drawn
SPACE = SearchSpace(n_layers=(2, 2), width=(32, 32), learning_rate=(1e-3, 1e-2),
                    batch_size=(256,), dropout=(0.0, 0.0), activation=None, initialiser=None,
                    l1=None, l2=None, adam_beta1=None, adam_beta2=None, adam_eps=None,
                    class_weight=None)


def training_set(n: int, d: int) -> TrainingSet:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, n)
    x = rng.normal(size=(n, d))
    x[:, 0] += labels
    return TrainingSet(x.astype(np.float32), labels, np.ones(n),
                       np.arange(n, dtype=np.uint64), tuple(f"x{i}" for i in range(d)))


def burn(n: int) -> float:
    """A CPU-bound task: the machine's own parallel capacity."""
    tic = time.perf_counter()
    total = 0
    for i in range(n):
        total += i * i
    return time.perf_counter() - tic


def warm() -> None:
    """Import the training modules (torch) in a worker before the clock starts."""
    import ewpolar.models.training.optimize  # noqa: F401


def cpu_seconds(client, tasks: int, length: int) -> float:
    client.gather(client.map(burn, [1000] * tasks, pure=False))  # warm the workers
    tic = time.perf_counter()
    client.gather(client.map(burn, [length] * tasks, pure=False))
    return time.perf_counter() - tic


def search(ts: TrainingSet, base: MLPConfig, trials: int, storage: Path, client) -> float:
    tic = time.perf_counter()
    result = optimize_hyperparameters(ts, base, n_trials=trials, storage=storage,
                                      study_name="bench", k=2, n_objective_folds=1,
                                      search_space=SPACE, pruner="none", client=client)
    seconds = time.perf_counter() - tic
    assert result.n_trials == trials
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--inputs", type=int, default=8)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    ts = training_set(args.events, args.inputs)
    base = MLPConfig(n_layers=2, width=32, dropout=0.0, max_epochs=args.epochs,
                     patience=args.epochs, seed=1)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["local_s"] = search(ts, base, args.trials, Path(tmp) / "local.journal", None)
        for workers in (1, 2):
            tic = time.perf_counter()
            with search_client("dask", workers=workers) as client:
                client.run(warm)
                out["cluster_start_s"] = max(out.get("cluster_start_s", 0.0),
                                             time.perf_counter() - tic)
                key = "dask_1_worker_s" if workers == 1 else "dask_2_workers_s"
                out[key] = search(ts, base, args.trials, Path(tmp) / f"dask{workers}.journal",
                                  client)
                out[f"cpu_{workers}_s"] = cpu_seconds(client, args.trials, 10**7)
    out["speedup_2_vs_1"] = out["dask_1_worker_s"] / out["dask_2_workers_s"]
    out["cpu_speedup_2_vs_1"] = out["cpu_1_s"] / out["cpu_2_s"]
    out["search_efficiency"] = out["speedup_2_vs_1"] / out["cpu_speedup_2_vs_1"]
    out = {k: round(v, 3) for k, v in out.items()}
    print(f"{platform.node()}: {len(os.sched_getaffinity(0))} usable cores; {args.trials} trials "
          f"of {args.epochs} epochs on {args.events // 2} events, {args.inputs} inputs")
    for key, value in out.items():
        print(f"  {key}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
