"""Cost of the classifier score templates: the ssWW processor with and without ONNX inference.

The same generated ssWW-channel fileset is run through ``run_analysis`` (iterative
executor, one core, all regions and systematics) twice per repeat: with the
shipped config (three ONNX classifiers, ``template_ll`` and ``template_lx`` for
every dataset, region and systematic) and with the config's ``models`` removed
(no inference, no templates), alternately. Reports the best wall time of each
over the repeats, coffea's summed time inside ``process`` (``process_seconds``,
without the file opening and preprocessing) and the ratios.

    python benchmarks/bench_templates.py [--events 240000] [--repeats 5] [--json out.json]

Target: with templates ≤ 1.3 × without.
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

from ewpolar.core.config import load_config
from ewpolar.generator import generate
from ewpolar.runner.run import load_fileset, run_analysis


def _timed(cfg, fileset, chunksize: int) -> tuple[float, float, dict]:
    tic = time.perf_counter()
    result = run_analysis(cfg, fileset, executor="iterative", chunksize=chunksize)
    return time.perf_counter() - tic, result.metrics["process_seconds"], result.output


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=240_000, help="total ssWW-channel events")
    ap.add_argument("--chunksize", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--samples", type=Path, default=None, help="reuse samples in this folder")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    with_models = load_config("ssww")
    without = with_models.model_copy(update={"models": {}})
    tmp = tempfile.TemporaryDirectory()
    out = args.samples or Path(tmp.name)
    fileset_path = out / "fileset.json"
    if not fileset_path.exists():
        generate(with_models, events=max(1, args.events // len(with_models.samples)), seed=7,
                 out=out)
    fileset = load_fileset(fileset_path)

    # warm-up: numba kernels, onnxruntime sessions, page cache
    for cfg in (with_models, without):
        run_analysis(cfg, fileset, executor="iterative", chunksize=args.chunksize, maxchunks=1)

    # interleaved repeats, best of each: the two runs see the same machine load
    t_plain = p_plain = t_tmpl = p_tmpl = float("inf")
    output: dict = {}
    for _ in range(args.repeats):
        wall, proc, _ = _timed(without, fileset, args.chunksize)
        t_plain, p_plain = min(t_plain, wall), min(p_plain, proc)
        wall, proc, output = _timed(with_models, fileset, args.chunksize)
        t_tmpl, p_tmpl = min(t_tmpl, wall), min(p_tmpl, proc)
    assert {"template_ll", "template_lx"} <= set(output["hists"])
    n = sum(output["entries"].values())
    scored = sum(flow["raw"][-1] for regions in output["cutflow"].values()
                 for flow in regions.values())
    rows = {
        "events": n,
        "selected_events_nominal": scored,
        "without_templates_seconds": round(t_plain, 3),
        "without_templates_events_per_s": round(n / t_plain),
        "with_templates_seconds": round(t_tmpl, 3),
        "with_templates_events_per_s": round(n / t_tmpl),
        "with_over_without": round(t_tmpl / t_plain, 3),
        "without_templates_process_seconds": round(p_plain, 3),
        "with_templates_process_seconds": round(p_tmpl, 3),
        "process_with_over_without": round(p_tmpl / p_plain, 3),
    }
    print("| quantity | value |\n|---|---|")
    for key, value in rows.items():
        print(f"| {key} | {value} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
