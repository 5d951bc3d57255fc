"""Throughput of the toy generator, including writing the ROOT files.

Generates events with :func:`ewpolar.generator.generate` into a temporary (or
given) folder and reports events per second, wall clock and CPU time of this
process (on a shared machine the CPU figure is the one-core throughput).

    python benchmarks/bench_generator.py                      # 1M events of the ssWW signals
    python benchmarks/bench_generator.py --dataset ssww_qcd --events 200000
    python benchmarks/bench_generator.py --channel wh --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ewpolar.core.config import load_config
from ewpolar.generator import generate
from ewpolar.generator.writer import CHUNK_SIZE, COMPRESSION_LEVEL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channel", choices=["ssww", "wh"], default="ssww")
    parser.add_argument("--dataset", action="append", default=None,
                        help="dataset to generate (repeatable; default: the channel's signal datasets)")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="total events, shared equally by the datasets (default 1M)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the figures to this file ({figure: value})")
    args = parser.parse_args(argv)

    cfg = load_config(args.channel)
    datasets = args.dataset or [name for name, s in cfg.samples.items() if s.kind == "signal"]
    per_dataset = max(1, args.events // len(datasets))
    out = args.out or Path(tempfile.mkdtemp(prefix="ewpolar-bench-"))
    try:
        # warm-up: imports and first-call costs are not part of the throughput
        generate(cfg, events=1000, seed=args.seed, out=out / "warmup", datasets=datasets[:1])
        wall0, cpu0 = time.perf_counter(), time.process_time()
        fileset = generate(cfg, events=per_dataset, seed=args.seed, out=out, datasets=datasets)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        files = [Path(p) for entry in json.loads(fileset.read_text()).values()
                 for p in entry["files"]]
        size = sum(p.stat().st_size for p in files)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)

    total = per_dataset * len(datasets)
    result = {
        "channel": args.channel,
        "datasets": ", ".join(datasets),
        "events": total,
        "files": len(files),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_s_wall": round(total / wall),
        "events_per_s_cpu": round(total / cpu),
        "bytes_per_event": round(size / total, 1),
        "compression": f"ZSTD({COMPRESSION_LEVEL})",
        "chunk_size": CHUNK_SIZE,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{total} events ({', '.join(datasets)}) in {len(files)} files, "
          f"{result['bytes_per_event']} B/event, {result['compression']}")
    print(f"wall {wall:.2f} s: {result['events_per_s_wall']:,} events/s")
    print(f"cpu  {cpu:.2f} s: {result['events_per_s_cpu']:,} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
