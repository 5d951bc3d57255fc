"""Wall time of the main job, ``ewpolar demo``, end to end on this machine.

Runs the command as a user does, in a fresh process: imports, numba compilation,
generation, both analyses, fits, figures and the report. The target: at most
3 minutes on a 2-core machine.

    python benchmarks/bench_demo.py [--repeat 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _one_run(out: Path) -> float:
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ewpolar.cli", "demo", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    return time.perf_counter() - tic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            seconds.append(_one_run(Path(tmp) / f"demo{i}"))
    rows = {"demo_seconds_median": round(statistics.median(seconds), 1),
            "demo_seconds_all": [round(s, 1) for s in seconds],
            "target_seconds": 180,
            "within_target": statistics.median(seconds) <= 180}
    print("| quantity | value |\n|---|---|")
    for key, value in rows.items():
        print(f"| {key} | {value} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
