"""Throughput of ONNX classifier inference with onnxruntime on one thread.

Exports k-fold MLP classifiers of several sizes (random weights; speed does not
depend on the values) with ``ewpolar.models.training.export``, loads them with
``ewpolar.models.runtime.load_classifier`` (one intra-op and one inter-op thread)
and scores N events in batches of 100k. Reports events per second (best and
median of the repeats).

``--compare-all-folds`` also times the alternative graph that runs every event
through all k fold networks and then picks fold ``event % k`` (GatherElements),
to show what the in-graph routing of the exported graph saves.

Then each classifier the shipped ssWW config names (``models/ssww_*.onnx``) is
timed the same way, with as many input columns as its card lists.
``--shipped-only`` skips the generic sizes.

Usage:
    python benchmarks/bench_inference.py [--events 2000000] [--repeats 5]
        [--inputs 20] [--compare-all-folds] [--shipped-only] [--json results.json]

``--json`` writes a flat mapping ``{figure: value}``, e.g.
``"3x64_k5_routed_best_mevents_per_s"`` or ``"shipped_ll_vs_tx_best_mevents_per_s"``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from ewpolar.core.config import load_config
from ewpolar.models.runtime import load_classifier
from ewpolar.models.training.export import (
    OPSET,
    _fold_network,
    _GraphBuilder,
    export_classifier,
)
from ewpolar.models.training.mlp import MLP, MLPConfig
from onnx import TensorProto, helper

# (hidden layers, width, folds)
SIZES = [(2, 32, 5), (3, 64, 5), (3, 64, 3), (3, 128, 5), (4, 128, 5)]
BATCH = 100_000


def make_models(n_inputs: int, n_layers: int, width: int, k: int) -> list[MLP]:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    return [
        MLP(n_inputs, n_layers=n_layers, width=width,
            input_mean=rng.normal(size=n_inputs), input_scale=rng.uniform(0.5, 2.0, n_inputs)).eval()
        for _ in range(k)
    ]


def all_folds_graph(models: list[MLP]) -> bytes:
    """Reference design: every event through all k networks, then select ``event % k``."""
    k, d = len(models), models[0].n_inputs
    g = _GraphBuilder()
    g.const("axis1", np.array([1], dtype=np.int64))
    logits = [g.node("Unsqueeze", [_fold_network(g, m, f, "features"), "axis1"], f"u{f}")
              for f, m in enumerate(models)]
    stacked = g.node("Concat", logits, "stacked", axis=1)
    fold = g.node("Mod", ["event", g.const("k", np.array(k, dtype=np.int64))], "fold")
    fold = g.node("Unsqueeze", [fold, "axis1"], "fold_col")
    picked = g.node("GatherElements", [stacked, fold], "picked", axis=1)
    g.node("Sigmoid", [g.node("Squeeze", [picked, "axis1"], "logit")], "probability")
    graph = helper.make_graph(
        g.nodes, "all_folds",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", d]),
         helper.make_tensor_value_info("event", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N"])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def time_calls(run, repeats: int) -> list[float]:
    run()  # warm-up: allocations, first-call graph setup
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def _time_classifier(clf, features: np.ndarray, event: np.ndarray,
                     repeats: int) -> tuple[float, float]:
    """(best, median) millions of events per second of ``clf.predict`` in batches of BATCH."""
    times = time_calls(lambda: clf.predict(features, event, chunk_size=BATCH), repeats)
    n = features.shape[0]
    return n / min(times) / 1e6, n / statistics.median(times) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inputs", type=int, default=20)
    parser.add_argument("--compare-all-folds", action="store_true")
    parser.add_argument("--shipped-only", action="store_true",
                        help="time only the classifiers of the shipped ssWW config")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    event = rng.integers(0, 2**40, size=args.events, dtype=np.uint64)
    print(f"onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.events} events, batches of {BATCH}, 1 thread")
    figures: dict[str, float] = {}
    if not args.shipped_only:
        features = rng.normal(size=(args.events, args.inputs)).astype(np.float32)
        names = [f"x{i}" for i in range(args.inputs)]
        print(f"random-weight MLPs with {args.inputs} inputs")
        print(f"{'layers x width':>15} {'k':>3} {'graph':>10} {'best Mev/s':>11} "
              f"{'median Mev/s':>13}")
        with tempfile.TemporaryDirectory() as tmp:
            for n_layers, width, k in SIZES:
                models = make_models(args.inputs, n_layers, width, k)
                path = Path(tmp) / f"mlp_{n_layers}x{width}_k{k}.onnx"
                export_classifier(models, path, inputs=names, fold_auc=[0.5] * k,
                                  config=MLPConfig())
                clf = load_classifier(path)
                variants = {"routed": lambda clf=clf: clf.predict(features, event,
                                                                  chunk_size=BATCH)}
                if args.compare_all_folds:
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = 1
                    options.inter_op_num_threads = 1
                    session = ort.InferenceSession(all_folds_graph(models), options,
                                                   providers=["CPUExecutionProvider"])
                    ev64 = (event % np.uint64(k)).astype(np.int64)

                    def all_folds(session=session, ev64=ev64) -> None:
                        for start in range(0, args.events, BATCH):
                            session.run(None, {"features": features[start:start + BATCH],
                                               "event": ev64[start:start + BATCH]})

                    variants["all folds"] = all_folds
                for label, run in variants.items():
                    times = time_calls(run, args.repeats)
                    best = args.events / min(times) / 1e6
                    median = args.events / statistics.median(times) / 1e6
                    print(f"{f'{n_layers} x {width}':>15} {k:>3} {label:>10} {best:>11.2f} "
                          f"{median:>13.2f}")
                    key = f"{n_layers}x{width}_k{k}_{label.replace(' ', '_')}"
                    figures[f"{key}_best_mevents_per_s"] = round(best, 3)
                    figures[f"{key}_median_mevents_per_s"] = round(median, 3)

    config = load_config("ssww")
    print("shipped classifiers (config/ssww.yaml)")
    print(f"{'model':>12} {'inputs':>7} {'k':>3} {'best Mev/s':>11} {'median Mev/s':>13}")
    for name, ref in config.models.items():
        path = config.resolve(ref.path)
        if not path.is_file():
            print(f"{name:>12} missing: {path}")
            continue
        clf = load_classifier(path, intra_op_threads=1, inter_op_threads=1)
        features = rng.normal(size=(args.events, len(clf.inputs))).astype(np.float32)
        best, median = _time_classifier(clf, features, event, args.repeats)
        print(f"{name:>12} {len(clf.inputs):>7} {clf.card.k:>3} {best:>11.2f} {median:>13.2f}")
        figures[f"shipped_{name}_best_mevents_per_s"] = round(best, 3)
        figures[f"shipped_{name}_median_mevents_per_s"] = round(median, 3)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
