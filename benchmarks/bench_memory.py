"""Peak resident memory of a run: bounded by the chunk size, not by the dataset size.

Runs the ssWW analysis (iterative executor, default chunk size) in a fresh process
over N1 and N2 events (default 1M and 10M) and reports each run's peak RSS; then
the same with the futures executor (2 workers; the largest worker's peak) and on a
dask LocalCluster with 2 workers (set up as in every dask run
of ``ewpolar run``, :mod:`ewpolar.runner.workers`), reporting the largest peak RSS of a worker. The larger input
reuses the same generated files through hard links, so both runs read
identical events; only the amount of data differs.

    python benchmarks/bench_memory.py [--events 1000000] [--factor 10] [--executors iterative,futures,dask]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys
from ewpolar.core.config import load_config
from ewpolar.runner.run import load_fileset, run_analysis
res = run_analysis(load_config("ssww"), load_fileset(sys.argv[1]), chunksize=int(sys.argv[2]))
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"events": res.metrics["events_processed"], "peak_rss_mib": peak_kib / 1024,
                  "seconds": res.metrics["seconds"]}))
"""

CHILD_DASK = """
import json, sys
from distributed import Client
from ewpolar.core.config import load_config
from ewpolar.runner.local import local_cluster
from ewpolar.runner.run import load_fileset, run_analysis

def peak():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

if __name__ == "__main__":
    with local_cluster(2) as cluster, Client(cluster) as client:
        res = run_analysis(load_config("ssww"), load_fileset(sys.argv[1]), executor="dask",
                           scheduler=cluster.scheduler_address, security=cluster.security,
                           chunksize=int(sys.argv[2]))
        peak_kib = max(client.run(peak).values())
    print(json.dumps({"events": res.metrics["events_processed"], "peak_rss_mib": peak_kib / 1024,
                      "seconds": res.metrics["seconds"]}))
"""


CHILD_FUTURES = """
import json, resource, sys
from ewpolar.core.config import load_config
from ewpolar.runner.run import load_fileset, run_analysis

if __name__ == "__main__":
    res = run_analysis(load_config("ssww"), load_fileset(sys.argv[1]), executor="futures",
                       workers=2, chunksize=int(sys.argv[2]))
    # the pool's workers have ended: the largest of them
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"events": res.metrics["events_processed"], "peak_rss_mib": peak_kib / 1024,
                      "seconds": res.metrics["seconds"]}))
"""


def _replicated_fileset(fileset: dict, factor: int, folder: Path) -> Path:
    out = {}
    for ds, entry in fileset.items():
        files = {}
        for i in range(factor):
            for fname, tree in entry["files"].items():
                link = folder / f"{ds}_copy{i}_{Path(fname).name}"
                if not link.exists():
                    # hard links: the same bytes under another name (a fileset refuses a
                    # symbolic link to a file it already lists, as a double count)
                    try:
                        os.link(fname, link)
                    except OSError:  # another file system
                        shutil.copyfile(fname, link)
                files[str(link)] = tree
        meta = dict(entry.get("metadata", {}))
        if "sumw" in meta:
            meta["sumw"] = meta["sumw"] * factor
        out[ds] = {"files": files, "metadata": meta}
    path = folder / f"fileset_x{factor}.json"
    path.write_text(json.dumps(out))
    return path


def _measure(fileset: Path, chunksize: int, child: str = CHILD) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "child.py"  # a file: dask's spawned workers import __main__
        script.write_text(child)
        proc = subprocess.run([sys.executable, str(script), str(fileset), str(chunksize)],
                              capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events of the smaller run")
    ap.add_argument("--factor", type=int, default=10, help="the larger run has this many times more")
    ap.add_argument("--chunksize", type=int, default=100_000, help="the runner's default")
    ap.add_argument("--samples", type=Path, default=None, help="reuse samples in this folder")
    ap.add_argument("--executors", default="iterative,futures,dask",
                    help="comma-separated: which executors to measure")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    executors = args.executors.split(",")

    from ewpolar.core.config import load_config
    from ewpolar.generator import generate

    with tempfile.TemporaryDirectory() as tmp:
        base = args.samples or Path(tmp)
        fileset_path = base / "fileset.json"
        if not fileset_path.exists():
            cfg = load_config("ssww")
            generate(cfg, events=max(1, args.events // len(cfg.samples)), seed=3, out=base)
        fileset = json.loads(fileset_path.read_text())
        links = Path(tmp) / "links"
        links.mkdir()
        large_path = _replicated_fileset(fileset, args.factor, links)
        children = {"iterative": CHILD, "futures": CHILD_FUTURES, "dask": CHILD_DASK}
        runs = {}
        for name in executors:
            # alternate the two sizes per executor, so a slow phase of the machine
            # affects both alike
            runs[name] = (_measure(fileset_path, args.chunksize, children[name]),
                          _measure(large_path, args.chunksize, children[name]))
    rows: dict[str, float | int] = {"chunksize": args.chunksize}
    prefix = {"iterative": "", "futures": "futures_worker_", "dask": "dask_worker_"}
    for name, (small, large) in runs.items():
        p = prefix[name]
        rows |= {
            f"{p}small_events": small["events"],
            f"{p}small_peak_rss_mib": round(small["peak_rss_mib"], 1),
            f"{p}large_events": large["events"],
            f"{p}large_peak_rss_mib": round(large["peak_rss_mib"], 1),
            f"{p}peak_rss_ratio_large_over_small": round(large["peak_rss_mib"] / small["peak_rss_mib"], 3),
            f"{p}large_events_per_s": round(large["events"] / large["seconds"]),
        }
    print("| quantity | value |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
