"""Run every benchmark of the project and write one markdown table of their figures.

    python benchmarks/run_all.py [--quick] [--out FILE]

Each ``benchmarks/bench_*.py`` script takes ``--json PATH`` and writes a flat mapping
of figure name to value; this script runs them one after another (so they do not
compete for the two cores) and collects the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# the arguments of the summary runs in benchmarks/README.md
FULL_ARGS = {
    "bench_processor.py": ["--events", "1000000", "--repeat", "3"],
    "bench_observables.py": ["--events", "1000000"],
    "bench_memory.py": ["--events", "1000000", "--factor", "10"],
    "bench_fit.py": ["--repeat", "3"],
}

# smaller inputs for a quick look
QUICK_ARGS = {
    "bench_generator.py": ["--events", "200000"],
    "bench_observables.py": ["--events", "200000"],
    "bench_processor.py": ["--events", "200000"],
    "bench_inference.py": ["--events", "200000"],
    "bench_templates.py": ["--events", "60000", "--repeats", "2"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller inputs")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    ap.add_argument("--only", nargs="*", default=None, help="benchmark script names to run")
    args = ap.parse_args()

    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.name in args.only or s.stem in args.only]
    lines = ["| benchmark | figure | value |", "|---|---|---|"]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for script in scripts:
            out = Path(tmp) / f"{script.stem}.json"
            cmd = [sys.executable, str(script), "--json", str(out)]
            cmd += (QUICK_ARGS if args.quick else FULL_ARGS).get(script.name, [])
            tic = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - tic
            if proc.returncode != 0 or not out.exists():
                failures += 1
                err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                lines.append(f"| {script.stem} | FAILED | {err} |")
                continue
            for key, value in json.loads(out.read_text()).items():
                lines.append(f"| {script.stem} | {key} | {value} |")
            lines.append(f"| {script.stem} | wall seconds (whole script) | {wall:.1f} |")
    table = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.write_text(table)
    sys.stdout.write(table)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
