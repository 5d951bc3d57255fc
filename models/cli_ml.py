"""Command-line front ends of the reweighting and SBI studies: ``reweight`` and ``sbi``.

Both are click commands meant to be registered on the ``ewpolar`` group; this
module also has a small group of its own, so that
``python -m ewpolar.models.cli_ml sbi --help`` works without it. The library
functions (:mod:`ewpolar.models.reweighting`, :mod:`ewpolar.models.sbi`) do the work; torch
is imported only when a command runs.

Sample specifications of ``reweight --source/--target``:

=============================  ===============================================
``path/fileset.json:DATASET``  one dataset of a coffea fileset (its files are
                               read with uproot)
``path/fileset.json``          the same, for a fileset with a single dataset
``path/file.root``             one NanoAOD-schema ROOT file (tree ``Events``)
``generate:DATASET``           toy events of the config's sample ``DATASET``,
                               generated on the fly (``--events``, ``--seed``)
=============================  ===============================================

Event weights are ``genWeight`` when the input has it, else 1.
``--target-weight NAME[:INDEX]`` makes the target the *source events* with their
weight multiplied by that branch (e.g. ``LHEScaleWeight:8`` for μR = μF = 2):
the reweighting then learns a weight variation as a function of the features.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import numpy as np
from ewpolar.clitools import TRAIN_EXTRA, user_errors
from ewpolar.core.errors import ConfigError, InputError

__all__ = ["main", "reweight", "sbi"]

log = logging.getLogger("ewpolar")

_SBI_METHODS = ("carl", "alice", "alices")


def _load_config(path: str | None, default: str) -> Any:
    from ewpolar.core.config import load_config

    return load_config(path if path is not None else default)


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise InputError(f"--features {text!r}: no feature names")
    return names


def _mlp_config(layers: int, width: int, epochs: int, seed: int, threads: int,
                activation: str) -> Any:
    from ewpolar.models.training.mlp import MLPConfig

    return MLPConfig(n_layers=layers, width=width, dropout=0.0, activation=activation,
                     learning_rate=1e-3, batch_size=1024, max_epochs=epochs,
                     patience=max(2, min(10, epochs // 4)), seed=seed, num_threads=threads)


# --------------------------------------------------------------------------- reweight


def _fileset_files(path: Path, dataset: str | None) -> list[str]:
    from ewpolar.runner.run import load_fileset

    fileset = load_fileset(path)
    if dataset is None:
        if len(fileset) != 1:
            raise InputError(f"{path}: the fileset has {len(fileset)} datasets "
                             f"({', '.join(fileset)}); name one as {path}:DATASET")
        dataset = next(iter(fileset))
    if dataset not in fileset:
        raise InputError(f"{path}: no dataset '{dataset}' (datasets: {', '.join(fileset)})")
    files = fileset[dataset]["files"]
    return list(files) if isinstance(files, dict | list) else [files]


def _read_spec(spec: str, config: Any, events: int, seed: int) -> dict[str, Any]:
    """Branches of a sample specification (see the module docstring)."""
    from ewpolar.models.features import read_branches

    if spec.startswith("generate:"):
        from ewpolar.generator import simulate

        dataset = spec.split(":", 1)[1]
        if dataset not in config.samples:
            raise InputError(f"{spec}: '{dataset}' is not a sample of the {config.channel} "
                             f"config (samples: {', '.join(config.samples)})")
        return simulate(config, dataset, events, np.random.default_rng(seed))
    path_text, _, dataset = spec.partition(".json:")
    if dataset:
        return read_branches(_fileset_files(Path(path_text + ".json"), dataset),
                             max_events=events)
    path = Path(spec)
    if path.suffix == ".json":
        return read_branches(_fileset_files(path, None), max_events=events)
    if path.suffix == ".root":
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        return read_branches([path], max_events=events)
    raise InputError(f"{spec}: a sample is 'FILESET.json[:DATASET]', 'FILE.root' or "
                     "'generate:DATASET'")


def _event_weights(table: Any, extra: str | None, spec: str) -> np.ndarray:
    base = table.weights.get("genWeight", np.ones(len(table)))
    if extra is None:
        return base
    name, _, index = extra.partition(":")
    values = table.weights.get(name)
    if values is None:
        raise InputError(f"--target-weight {extra}: {spec} has no per-event weight '{name}' "
                         f"(have: {', '.join(table.weights) or 'none'})")
    if values.ndim == 2:
        if not index:
            raise InputError(f"--target-weight {extra}: '{name}' has {values.shape[1]} entries "
                             f"per event; give one as {name}:INDEX")
        try:
            i = int(index)
        except ValueError:
            raise InputError(f"--target-weight {extra}: INDEX must be an integer") from None
        if not 0 <= i < values.shape[1]:
            raise InputError(f"--target-weight {extra}: index out of range 0..{values.shape[1] - 1}")
        values = values[:, i]
    return base * values


@click.command("reweight")
@click.option("--source", required=True, metavar="SPEC",
              help="Sample to reweight: FILESET.json[:DATASET], FILE.root or generate:DATASET.")
@click.option("--target", default=None, metavar="SPEC",
              help="Sample to reweight to (same forms); optional with --target-weight.")
@click.option("--target-weight", default=None, metavar="NAME[:INDEX]",
              help="Target = the source events weighted by this branch (e.g. LHEScaleWeight:8).")
@click.option("--config", "config_path", default=None,
              help="Analysis config: object and region cuts, samples for generate: "
                   "[default: the shipped WH config].")
@click.option("--features", default=None,
              help="Comma-separated training inputs [default: the channel's feature set].")
@click.option("--region", default="signal", show_default=True,
              help="Region of the config the events must pass ('none': no selection).")
@click.option("--events", type=click.IntRange(min=100), default=100_000, show_default=True,
              help="Events read (or generated) per sample, before the selection.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of generation, split and network.")
@click.option("--test-fraction", type=click.FloatRange(0.05, 0.95), default=0.5, show_default=True,
              help="Fraction of each sample kept out of training for the closure test.")
@click.option("--epochs", type=click.IntRange(min=1), default=50, show_default=True, help="Maximum epochs.")
@click.option("--layers", type=click.IntRange(min=1), default=3, show_default=True, help="Hidden layers.")
@click.option("--width", type=click.IntRange(min=1), default=64, show_default=True, help="Neurons per layer.")
@click.option("--calibrate", "calibration_bins", type=click.IntRange(min=2), default=None,
              help="Histogram calibration of the classifier output with this many bins.")
@click.option("--clip-min", type=float, default=None, help="Lower limit of the weights.")
@click.option("--clip-max", type=float, default=None, help="Upper limit of the weights.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch threads.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: dctr.onnx + dctr.json, closure.md/.json, closure_*.png.")
@user_errors(extra_packages=TRAIN_EXTRA)
def reweight(source: str, target: str | None, target_weight: str | None, config_path: str | None,
             features: str | None, region: str, events: int, seed: int, test_fraction: float,
             epochs: int, layers: int, width: int, calibration_bins: int | None,
             clip_min: float | None, clip_max: float | None, threads: int, out: Path) -> None:
    """Train a DCTR reweighting from a source sample to a target and test its closure.

    The classifier separates source (label 0) from target (label 1); each source
    event gets the weight f/(1 − f). The closure test compares the reweighted
    source with the target, on events not used in training, in every input and
    in the channel's other features.
    """
    from ewpolar.core.outputs import atomic_write_json, ensure_writable_dir
    from ewpolar.models.features import build_features, default_features

    if (target is None) == (target_weight is None):
        raise InputError("give exactly one of --target and --target-weight")
    if clip_min is not None and clip_max is not None and clip_min >= clip_max:
        raise InputError(f"--clip-min {clip_min} must be below --clip-max {clip_max}")
    cfg = _load_config(config_path, "wh")
    inputs = _names(features) or default_features(cfg)
    closure_names = tuple(dict.fromkeys((*inputs, *default_features(cfg))))
    region_name = None if region.lower() == "none" else region
    out_dir = ensure_writable_dir(out)

    src_table = build_features(_read_spec(source, cfg, events, seed), cfg, region=region_name,
                               names=closure_names)
    src_w = _event_weights(src_table, None, source)
    if target is not None:
        tgt_table = build_features(_read_spec(target, cfg, events, seed + 1), cfg,
                                   region=region_name, names=closure_names)
        tgt_w = _event_weights(tgt_table, None, target)
    else:
        tgt_table, tgt_w = src_table, _event_weights(src_table, target_weight, source)
    for name, table in (("source", src_table), ("target", tgt_table)):
        if len(table) < 20:
            raise InputError(f"--{name}: only {len(table)} events pass the selection")

    rng = np.random.default_rng(seed)
    src_order = rng.permutation(len(src_table))
    # a weight variation shares the events: split both the same way
    tgt_order = src_order if target is None else rng.permutation(len(tgt_table))

    def split(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_test = max(1, round(test_fraction * order.size))
        return np.sort(order[n_test:]), np.sort(order[:n_test])

    (s_tr, s_te), (t_tr, t_te) = split(src_order), split(tgt_order)
    from ewpolar.models.reweighting import DCTRConfig, closure_test, plot_closure, train_dctr

    config = DCTRConfig(mlp=_mlp_config(layers, width, epochs, seed, threads, "tanh"),
                        calibration_bins=calibration_bins, clip_min=clip_min, clip_max=clip_max)
    result = train_dctr(src_table.subset(inputs)[s_tr], tgt_table.subset(inputs)[t_tr],
                        inputs=inputs, source_weights=src_w[s_tr], target_weights=tgt_w[t_tr],
                        config=config)
    rw = result.reweighter
    rw.training.update({"source": source, "target": target or f"source × {target_weight}",
                        "region": region_name, "config": str(cfg.source) if cfg.source else None})
    rw.export(out_dir / "dctr.onnx", reference_features=src_table.subset(inputs)[s_te])
    weights = rw.weights(src_table.subset(inputs)[s_te])
    report = closure_test(src_table.subset(closure_names)[s_te], src_w[s_te], weights,
                          tgt_table.subset(closure_names)[t_te], tgt_w[t_te], closure_names,
                          trained=inputs)
    plot_closure(report, out_dir, source_label="source", target_label="target")
    atomic_write_json(out_dir / "closure.json", {"training": result.to_dict(), **report.to_dict()})
    (out_dir / "closure.md").write_text(
        f"# DCTR closure: {source} → {target or 'source × ' + str(target_weight)}\n\n"
        f"AUC on the training events: {result.auc:.4f}; test events: {s_te.size} source, "
        f"{t_te.size} target.\n\n" + report.to_markdown(), encoding="utf-8")
    click.echo(report.to_markdown())
    click.echo(f"wrote {out_dir / 'dctr.onnx'} and the closure test in {out_dir}")


# --------------------------------------------------------------------------- sbi


@click.command("sbi")
@click.option("--config", "config_path", default=None,
              help="WH analysis config [default: the shipped config/wh.yaml].")
@click.option("--events", type=click.IntRange(min=1000), default=200_000, show_default=True,
              help="Generated WH events (before the signal-region selection).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of generation, splits, c draws and networks.")
@click.option("--methods", default=",".join(_SBI_METHODS), show_default=True,
              help="Ratio estimators to train (comma-separated; 'none' for SALLY only).")
@click.option("--features", default=None, help="Comma-separated estimator inputs [default: WH set].")
@click.option("--c-max", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Half-width of the c range (training prior and scan) [default: 6/√I_exact].")
@click.option("--theta-draws", type=click.IntRange(min=1), default=2, show_default=True,
              help="c values drawn per training event (ratio estimators).")
@click.option("--alpha", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of the score term of ALICES.")
@click.option("--sally-bins", type=click.IntRange(min=2), default=20, show_default=True,
              help="Bins of the SALLY score for the binned likelihood (b).")
@click.option("--scan-points", type=click.IntRange(min=5), default=81, show_default=True,
              help="Points of the c scan.")
@click.option("--test-fraction", type=click.FloatRange(0.05, 0.95), default=0.5, show_default=True,
              help="Fraction of the selected events held out for the limits.")
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True,
              help="Maximum epochs (early stopping on a validation split).")
@click.option("--layers", type=click.IntRange(min=1), default=3, show_default=True, help="Hidden layers.")
@click.option("--width", type=click.IntRange(min=1), default=64, show_default=True, help="Neurons per layer.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch threads.")
@click.option("--analysis-fit", is_flag=True,
              help="Add row (a′): generate all datasets (--events each), run the processor and "
                   "fit_wh with backgrounds and systematics.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: limits.md, limits.json, likelihood_scans.png, <method>.onnx.")
@user_errors(extra_packages=TRAIN_EXTRA)
def sbi(config_path: str | None, events: int, seed: int, methods: str, features: str | None,
        c_max: float | None, theta_draws: int, alpha: float, sally_bins: int, scan_points: int,
        test_fraction: float, epochs: int, layers: int, width: int, threads: int,
        analysis_fit: bool, out: Path) -> None:
    """Expected limits on c_HW̃ from the binned fit observable, SALLY, CARL, ALICE and ALICES.

    Generates WH events with their SM, interference and quadratic weights,
    trains the estimators on half of the selected events and computes the
    Asimov −2Δln L(c) of every method on the other half (see ewpolar.models.sbi).
    """
    from ewpolar.models.sbi import SBISettings, run_wh_sbi

    chosen = () if methods.strip().lower() == "none" else _names(methods)
    unknown = [m for m in chosen or () if m not in _SBI_METHODS]
    if unknown:
        raise InputError(f"--methods: unknown {unknown}; choose from {', '.join(_SBI_METHODS)} "
                         "or 'none'")
    cfg = _load_config(config_path, "wh")
    if cfg.channel != "wh":
        raise ConfigError(f"--config {config_path}: SBI needs the WH config, got channel "
                          f"'{cfg.channel}'")
    settings = SBISettings(mlp=_mlp_config(layers, width, epochs, seed, threads, "tanh"),
                           methods=tuple(chosen or ()), inputs=_names(features), c_max=c_max,
                           theta_draws=theta_draws, alpha=alpha, test_fraction=test_fraction,
                           sally_bins=sally_bins, scan_points=scan_points,
                           analysis_fit=analysis_fit)
    results = run_wh_sbi(cfg, events=events, seed=seed, settings=settings, out=out)
    click.echo(results.to_markdown())
    click.echo(f"wrote {Path(out) / 'limits.md'}, limits.json, likelihood_scans.png and "
               f"{len(results.models)} ONNX estimators ({results.seconds:.0f} s)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Reweighting and simulation-based inference (also available as ewpolar commands)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


main.add_command(reweight)
main.add_command(sbi)

if __name__ == "__main__":
    main()
