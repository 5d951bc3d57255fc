"""Events per second per core of the Pythia 8 backend, by process and stage.

For each process, one block of events runs in this process (one core) through
the stages of :func:`ewpolar.generator.pythia.run.run_block`:

* ``pythia``: ``Pythia.next()`` (hard process, showers, hadronisation, decays),
  plus the initialisation once per block;
* ``record``: reading Pythia's event record into arrays (:mod:`.events`);
* ``hadron``: fastjet clustering with ghosts, the parametrised detector and
  the NanoAOD columns (:mod:`.hadron`).

With ``--mpi`` multi-parton interactions are on. ``--jobs N`` also times
:func:`ewpolar.generator.pythia.generate` end to end (files written) with N
worker processes.

Usage::

    python benchmarks/bench_pythia.py [--events 2000] [--processes wh,ttbar_semileptonic,wjets]
        [--mpi] [--jobs 2] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ewpolar.core.config import load_config
from ewpolar.generator.pythia import generate
from ewpolar.generator.pythia.events import EventBlock, read_event
from ewpolar.generator.pythia.hadron import block_columns
from ewpolar.generator.pythia.processes import PYTHIA_PROCESSES, base_settings, process_settings
from ewpolar.generator.pythia.run import _pythia

CHANNEL = {"wh": "wh", "ttbar_semileptonic": "wh", "ttbar_dileptonic": "wh", "wjets": "wh",
           "wz": "ssww"}


def time_process(process: str, events: int, mpi: bool, seed: int = 1) -> dict[str, float]:
    """CPU seconds per stage for ``events`` events of a Pythia-internal ``process``."""
    cfg = load_config(CHANNEL.get(process, "wh"))
    t0 = time.process_time()
    pythia = _pythia(base_settings(seed, mpi=mpi) + process_settings(process))
    t_init = time.process_time() - t0
    block = EventBlock()
    t_next = t_read = 0.0
    while block.n < events:
        t = time.process_time()
        ok = pythia.next()
        t_next += time.process_time() - t
        if not ok:
            continue
        t = time.process_time()
        read_event(pythia.event, pythia.infoPython(), block)
        t_read += time.process_time() - t
    t = time.process_time()
    cols = block_columns(cfg, process, block, np.random.default_rng(seed),
                         cp=PYTHIA_PROCESSES[process].cp_weights)
    t_hadron = time.process_time() - t
    assert cols.n == events
    total = t_init + t_next + t_read + t_hadron
    return {"events": events, "init_s": t_init, "pythia_s": t_next, "record_s": t_read,
            "hadron_s": t_hadron, "total_s": total, "events_per_s": events / total,
            "ms_per_event": {"pythia": 1e3 * t_next / events, "record": 1e3 * t_read / events,
                             "hadron": 1e3 * t_hadron / events}}


def time_generate(events: int, jobs: int, mpi: bool) -> dict[str, float]:
    """Wall time of ``generate`` for the WH dataset with ``jobs`` worker processes."""
    cfg = load_config("wh")
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        generate(cfg, events=events, seed=1, out=Path(out), datasets=["wh"], jobs=jobs, mpi=mpi)
        wall = time.perf_counter() - t
    return {"events": events, "jobs": jobs, "wall_s": wall, "events_per_s": events / wall,
            "events_per_s_per_job": events / wall / jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--processes", default="wh,ttbar_semileptonic,wjets")
    parser.add_argument("--mpi", action="store_true", help="multi-parton interactions on")
    parser.add_argument("--jobs", type=int, default=0, help="also time generate() with N jobs")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, object] = {"python": platform.python_version(), "mpi": args.mpi,
                                  "processes": {}}
    for process in args.processes.split(","):
        r = time_process(process, args.events, args.mpi)
        results["processes"][process] = r
        ms = r["ms_per_event"]
        print(f"{process:20s} {r['events_per_s']:8.1f} events/s/core  "
              f"(ms/event: pythia {ms['pythia']:.2f}, record {ms['record']:.2f}, "
              f"jets+detector {ms['hadron']:.2f}; init {r['init_s']:.2f} s)")
    if args.jobs:
        g = time_generate(args.events, args.jobs, args.mpi)
        results["generate"] = g
        print(f"generate wh, {args.jobs} jobs: {g['events_per_s']:.1f} events/s "
              f"({g['events_per_s_per_job']:.1f} per job, {g['wall_s']:.1f} s wall)")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
