"""Profile the ssWW processor on two chunks of one dataset (cProfile, cumulative time).

    python benchmarks/profile_processor.py SAMPLES/fileset.json [--dataset ssww_LT]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from ewpolar.core.config import load_config
from ewpolar.runner.run import load_fileset, run_analysis


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fileset")
    ap.add_argument("--dataset", default="ssww_LT")
    ap.add_argument("--chunksize", type=int, default=100_000)
    ap.add_argument("--lines", type=int, default=45)
    args = ap.parse_args()
    cfg = load_config("ssww")
    fs = load_fileset(args.fileset)
    fs = {args.dataset: fs[args.dataset]}
    run_analysis(cfg, fs, chunksize=args.chunksize, maxchunks=1)  # warm-up
    tic = time.perf_counter()
    prof = cProfile.Profile()
    prof.enable()
    res = run_analysis(cfg, fs, chunksize=args.chunksize, maxchunks=2)
    prof.disable()
    print(f"wall {time.perf_counter() - tic:.3f} s for {res.metrics['events_processed']} events")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(args.lines)


if __name__ == "__main__":
    main()
