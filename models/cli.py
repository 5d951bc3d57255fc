"""The ML commands of ``ewpolar``: ``train``, ``optimize``, ``select-inputs``, ``reweight``, ``sbi``.

Classifier training (``train``, ``optimize``, ``select-inputs``): each command
takes its events either from a fileset (``--fileset``: the training events are
selected with the project's runner, :mod:`ewpolar.models.training.build`, and
written to ``OUT/training_events.parquet`` for reuse) or from such a file
(``--training-set``), and writes everything it makes into one folder ``--out``.
They are thin layers over :mod:`ewpolar.models.training`.

Studies: ``reweight`` trains a DCTR reweighting and tests its closure
(:mod:`ewpolar.models.reweighting`); ``sbi`` computes the expected limits on
c_HW̃ of the simulation-based inference methods (:mod:`ewpolar.models.sbi`).

The commands (:data:`COMMANDS`) are registered on the ``ewpolar`` group and also
run as ``python -m ewpolar.models.cli COMMAND``. Heavy imports (torch, optuna,
coffea) happen inside the commands, so that ``ewpolar --help`` works without
the ``train`` extra.

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

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np
from ewpolar.clitools import TRAIN_EXTRA, user_errors
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.models.training.inputs import SSWW_CLASSIFIERS

if TYPE_CHECKING:
    from ewpolar.core.config import AnalysisConfig
    from ewpolar.models.training.data import TrainingSet
    from ewpolar.models.training.mlp import MLPConfig

__all__ = ["COMMANDS", "cli", "optimize", "reweight", "sbi", "select_inputs", "train"]

log = logging.getLogger(__name__)

TRAINING_EVENTS_FILE = "training_events.parquet"
#: ratio estimators of ``sbi --methods``
_SBI_METHODS = ("carl", "alice", "alices")


def _data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by the three commands: where the events come from, folds, seed, output."""
    options = [
        click.option("--config", "config_path", type=click.Path(path_type=Path), required=True,
                     help="Analysis config (config/ssww.yaml): regions, samples, model file names."),
        click.option("--fileset", type=click.Path(path_type=Path), default=None,
                     help="coffea fileset JSON: select the training events from it "
                          f"(also written to OUT/{TRAINING_EVENTS_FILE})."),
        click.option("--training-set", "training_set", type=click.Path(path_type=Path),
                     default=None,
                     help=f"Training events of an earlier run (OUT/{TRAINING_EVENTS_FILE}), or "
                          "one classifier's training set (parquet with a 'label' column)."),
        click.option("--region", "regions", multiple=True,
                     help="Config region to take the events from; repeat for the union "
                          "(default: signal). Only with --fileset."),
        click.option("--classifier", type=click.Choice([*SSWW_CLASSIFIERS, "all"]),
                     default="all", show_default=True, help="Which classifier(s)."),
        click.option("--inputs", "inputs_spec", default=None,
                     help="Inputs to use: comma-separated names, or an elimination JSON written "
                          "by select-inputs (default: every input of the training events)."),
        click.option("--hyperparameters", "hyper_files", multiple=True,
                     type=click.Path(path_type=Path),
                     help="JSON of MLP settings, or a hyperparameters_<classifier>.json written "
                          "by optimize (applies to that classifier); repeatable."),
        click.option("--k", "k", type=click.IntRange(min=2), default=5, show_default=True,
                     help="Folds: event e is held out in fold e % k."),
        click.option("--seed", type=int, default=None,
                     help="Training seed; fold f trains with seed + f (default: 0, or the "
                          "--hyperparameters file's)."),
        click.option("--epochs", type=click.IntRange(min=1), default=None,
                     help="Maximum epochs per fold (default: 100, or the --hyperparameters "
                          "file's); training stops earlier when the validation loss stalls."),
        click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Processes for selecting the events from --fileset; with "
                          "--executor dask (optimize, select-inputs), the LocalCluster's "
                          "workers."),
        click.option("--chunksize", type=click.IntRange(min=1), default=100_000,
                     show_default=True, help="Entries per chunk when reading --fileset."),
        click.option("--progress/--no-progress", default=True, show_default=True,
                     help="Progress display (on stderr)."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
                     help="Output folder for everything the command writes."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _search_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Where optimize and select-inputs run their trainings: the executors of ``ewpolar run``."""
    options = [
        click.option("--executor", type=click.Choice(["local", "dask", "condor"]),
                     default="local", show_default=True,
                     help="Run the trainings here, on a dask cluster (LocalCluster of "
                          "--workers, or --scheduler), or on HTCondor dask workers "
                          "(the config's condor settings)."),
        click.option("--scheduler", default=None,
                     help="Address of an existing dask scheduler (with --executor dask)."),
        click.option("--tls-ca-file", type=click.Path(dir_okay=False), default=None,
                     help="TLS: CA certificate of the scheduler."),
        click.option("--tls-cert", type=click.Path(dir_okay=False), default=None,
                     help="TLS: client certificate."),
        click.option("--tls-key", type=click.Path(dir_okay=False), default=None,
                     help="TLS: client private key."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@contextmanager
def _search_client(executor: str, workers: int, scheduler: str | None, tls: Sequence[str | None],
                   config: AnalysisConfig) -> Iterator[Any]:
    from ewpolar.models.training.distributed import search_client
    from ewpolar.runner.run import tls_security

    with search_client(executor, workers=workers, scheduler=scheduler,
                       security=tls_security(*tls), condor=config.condor) as client:
        yield client


@dataclass
class _Data:
    """Training sets of the chosen classifiers and where they came from."""

    config: AnalysisConfig
    sets: dict[str, TrainingSet]
    source: dict[str, Any] = field(default_factory=dict)


def _parse_inputs(spec: str | None) -> list[str] | None:
    if spec is None:
        return None
    path = Path(spec)
    if path.suffix == ".json" or path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"--inputs {spec}: file not found") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"--inputs {spec}: cannot read the JSON: {exc}") from None
        names = data.get("selected_inputs") if isinstance(data, dict) else data
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError(f"--inputs {spec}: expected 'selected_inputs' (a list of names)")
        return names
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise InputError("--inputs: give at least one input name")
    return names


def _load_data(config_path: Path, fileset: Path | None, training_set: Path | None,
               regions: Sequence[str], classifier: str, inputs_spec: str | None,
               workers: int, chunksize: int, progress: bool, out: Path) -> _Data:
    from ewpolar.core.config import load_config
    from ewpolar.models.training.build import TrainingEvents, build_training_events
    from ewpolar.models.training.data import TrainingSet

    if (fileset is None) == (training_set is None):
        raise click.UsageError("give exactly one of --fileset or --training-set")
    if regions and fileset is None:
        raise click.UsageError("--region selects events from --fileset; a training set is "
                               "already selected")
    config = load_config(config_path)
    if training_set is not None and not training_set.is_file():
        raise InputError(f"{training_set}: training set file not found")
    wanted = list(SSWW_CLASSIFIERS) if classifier == "all" else [classifier]
    source: dict[str, Any]
    if fileset is not None:
        from ewpolar.runner.run import load_fileset

        events = build_training_events(
            config, load_fileset(fileset), regions=list(regions) or None,
            executor="futures" if workers > 1 else "iterative", workers=workers,
            chunksize=chunksize, progress=progress)
        written = events.write_parquet(out / TRAINING_EVENTS_FILE)
        click.echo(f"selected {len(events)} events in region(s) "
                   f"{', '.join(events.metadata['regions'])}; wrote {written}", err=True)
        sets = {name: events.training_set(name) for name in wanted}
        source = {"fileset": fileset.name, "regions": events.metadata["regions"],
                  "datasets": events.metadata["datasets"]}
    elif TrainingEvents.is_training_events_file(training_set):
        events = TrainingEvents.read_parquet(training_set)
        sets = {name: events.training_set(name) for name in wanted}
        source = {"training_events": training_set.name, "regions": events.metadata.get("regions"),
                  "datasets": events.metadata.get("datasets")}
    else:
        if classifier == "all":
            raise click.UsageError(f"--training-set {training_set} holds one classifier's "
                                   "events: name it with --classifier")
        sets = {classifier: TrainingSet.read_parquet(training_set)}
        source = {"training_set": training_set.name}
    names = _parse_inputs(inputs_spec)
    if names is not None:
        for name, ts in sets.items():
            unknown = [n for n in names if n not in ts.inputs]
            if unknown:
                raise InputError(f"--inputs: {name}: unknown input(s) {unknown} "
                                 f"(the training set has {', '.join(ts.inputs)})")
            sets[name] = ts.select_inputs(names)
    return _Data(config, sets, source)


def _read_hyperparameters(files: Sequence[Path]) -> list[tuple[str | None, dict[str, Any]]]:
    """(classifier or None for all, settings) from each --hyperparameters file."""
    out = []
    for path in files:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"--hyperparameters {path}: file not found") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"--hyperparameters {path}: cannot read the JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"--hyperparameters {path}: expected a JSON object of MLP settings")
        if "hyperparameters" in data:
            settings = data["hyperparameters"]
            if not isinstance(settings, dict):
                raise InputError(f"--hyperparameters {path}: 'hyperparameters' must be an object")
            out.append((data.get("classifier"), settings))
        else:
            out.append((None, data))
    return out


def _mlp_config(hyper: list[tuple[str | None, dict[str, Any]]], classifier: str,
                seed: int | None, epochs: int | None) -> MLPConfig:
    from ewpolar.models.training.mlp import MLPConfig

    settings: dict[str, Any] = {}
    for target, values in hyper:
        if target is None or target == classifier:
            settings.update(values)
    if seed is not None:
        settings["seed"] = seed
    if epochs is not None:
        settings["max_epochs"] = epochs
    try:
        return MLPConfig.from_dict({**MLPConfig().to_dict(), **settings})
    except (TypeError, ValueError) as exc:
        raise InputError(f"--hyperparameters: {classifier}: {exc}") from None


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                   transient=True, disable=not enabled)
    with bar:
        yield bar


def _prepare_out(out: Path) -> Path:
    from ewpolar.core.outputs import ensure_writable_dir

    return ensure_writable_dir(out)


# -- ewpolar train -------------------------------------------------------------------------------

@click.command("train")
@_data_options
@user_errors(extra_packages=TRAIN_EXTRA)
def train(config_path: Path, fileset: Path | None, training_set: Path | None,
          regions: tuple[str, ...], classifier: str, inputs_spec: str | None,
          hyper_files: tuple[Path, ...], k: int, seed: int | None, epochs: int | None,
          workers: int, chunksize: int, progress: bool, out: Path) -> None:
    """Train k-fold MLP classifiers and export each as ONNX with its model card.

    Writes OUT/<model>.onnx and OUT/<model>.json per classifier (file names as in
    the config's models section, e.g. ssww_ll_vs_tx.onnx) and
    OUT/training_summary.json with the per-fold AUCs.
    """
    from ewpolar.core.outputs import atomic_write_json
    from ewpolar.models.training.pipeline import model_filename, train_classifier

    out = _prepare_out(out)
    data = _load_data(config_path, fileset, training_set, regions, classifier, inputs_spec,
                      workers, chunksize, progress, out)
    hyper = _read_hyperparameters(hyper_files)
    summary: dict[str, Any] = {"k": k, "config": config_path.name, "source": data.source,
                               "classifiers": {}}
    trained = []
    with _progress(progress) as bar:
        for name, ts in data.sets.items():
            mlp = _mlp_config(hyper, name, seed, epochs)
            task = bar.add_task(f"{name}: fold 1/{k}", total=k)

            def on_epoch(position: int, epoch: int, val_loss: float, task: Any = task,
                         name: str = name) -> None:
                bar.update(task, completed=position, description=(
                    f"{name}: fold {position + 1}/{k}, epoch {epoch + 1}, "
                    f"validation loss {val_loss:.4f}"))

            try:
                result = train_classifier(
                    ts, mlp, name=name, path=out / model_filename(data.config, name), k=k,
                    training_extra={"config": config_path.name, "source": data.source},
                    on_epoch=on_epoch)
            except ValueError as exc:
                raise InputError(f"{name}: cannot train on these events: {exc}") from None
            bar.update(task, completed=k, description=f"{name}: done")
            summary["classifiers"][name] = result.summary()
            trained.append(result)
    atomic_write_json(out / "training_summary.json", summary)
    for result in trained:
        aucs = " ".join(f"{a:.4f}" for a in result.cv.fold_auc)
        click.echo(f"{result.name}: AUC per fold {aucs} (mean {result.cv.mean_auc:.4f}); "
                   f"wrote {result.path} and {result.path.with_suffix('.json').name}")


# -- ewpolar optimize ----------------------------------------------------------------------------

@click.command("optimize")
@_data_options
@click.option("--trials", type=click.IntRange(min=1), required=True,
              help="Finished trials the study should hold (a resumed study runs only the rest).")
@click.option("--storage", default=None,
              help="Optuna storage, e.g. sqlite:///study.db or a file path "
                   "(default: OUT/optuna.db); an interrupted search resumes from it.")
@click.option("--study-name", default=None,
              help="Study name prefix in the storage (default: the config's channel); the "
                   "classifier name is appended.")
@click.option("--objective-folds", type=click.IntRange(min=1), default=2, show_default=True,
              help="Folds cross-validated per trial (the objective is their mean AUC).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop starting trials after this many seconds (per classifier).")
@click.option("--pruner", type=click.Choice(["median", "asha", "none"]), default="median",
              show_default=True,
              help="Stop unpromising trials: below the median of earlier trials, or "
                   "asynchronous successive halving (ASHA).")
@click.option("--space", type=click.Choice(["wide", "basic"]), default="wide", show_default=True,
              help="Search activations, initialisers, L1/L2, Adam's betas and epsilon and the "
                   "class weight too (wide), or only layers, width, learning rate, batch size "
                   "and dropout (basic).")
@click.option("--max-overtraining", type=click.FloatRange(min=0), default=0.02,
              show_default=True,
              help="The best trial's largest gap between its AUC on its training events and "
                   "the held-out AUC.")
@_search_options
@user_errors(extra_packages=TRAIN_EXTRA)
def optimize(config_path: Path, fileset: Path | None, training_set: Path | None,
             regions: tuple[str, ...], classifier: str, inputs_spec: str | None,
             hyper_files: tuple[Path, ...], k: int, seed: int | None, epochs: int | None,
             workers: int, chunksize: int, progress: bool, out: Path, trials: int,
             storage: str | None, study_name: str | None, objective_folds: int,
             timeout: float | None, pruner: str, space: str, max_overtraining: float,
             executor: str, scheduler: str | None, tls_ca_file: str | None,
             tls_cert: str | None, tls_key: str | None) -> None:
    """Search MLP hyperparameters with Optuna (TPE, pruning, resumable, distributed).

    Writes OUT/hyperparameters_<classifier>.json (best settings; pass it to
    'train --hyperparameters') and OUT/trials_<classifier>.json per classifier.
    With --executor dask or condor the trials run as tasks on the cluster's
    workers, sharing one study in --storage (default OUT/optuna.journal; remote
    workers need it on a shared file system).
    """
    import optuna
    from ewpolar.core.outputs import atomic_write_json
    from ewpolar.models.training.optimize import SearchSpace, optimize_hyperparameters

    if objective_folds > k:
        raise click.BadParameter(f"{objective_folds} is more than --k {k}",
                                 param_hint="--objective-folds")
    out = _prepare_out(out)
    data = _load_data(config_path, fileset, training_set, regions, classifier, inputs_spec,
                      workers, chunksize, progress, out)
    hyper = _read_hyperparameters(hyper_files)
    storage = storage or str(out / ("optuna.db" if executor == "local" else "optuna.journal"))
    prefix = study_name or data.config.channel
    search_space = SearchSpace() if space == "wide" else SearchSpace(
        activation=None, initialiser=None, l1=None, l2=None, adam_beta1=None, adam_beta2=None,
        adam_eps=None, class_weight=None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                       optuna.trial.TrialState.FAIL)
    lines = []
    with (_search_client(executor, workers, scheduler, (tls_ca_file, tls_cert, tls_key),
                         data.config) as client, _progress(progress) as bar):
        for name, ts in data.sets.items():
            base = _mlp_config(hyper, name, seed, epochs)
            task = bar.add_task(f"{name}: trials", total=trials)

            def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial | None,
                         task: Any = task, name: str = name) -> None:
                done = sum(t.state in finished_states for t in study.trials)
                complete = [t for t in study.trials
                            if t.state == optuna.trial.TrialState.COMPLETE]
                best = f", best AUC {study.best_value:.4f}" if complete else ""
                what = f"trial {trial.number} {trial.state.name}" if trial else "trials"
                bar.update(task, completed=done, description=f"{name}: {what}{best}")

            try:
                result = optimize_hyperparameters(
                    ts, base, n_trials=trials, storage=storage, study_name=f"{prefix}_{name}",
                    seed=seed or 0, k=k, n_objective_folds=objective_folds, timeout=timeout,
                    search_space=search_space, pruner=pruner, max_overtraining=max_overtraining,
                    callbacks=[on_trial], client=client)
            except ValueError as exc:
                raise InputError(f"{name}: cannot train on these events: {exc}") from None
            record = {
                "classifier": name,
                "best_value": result.best_value,
                "best_params": result.best_params,
                "hyperparameters": result.best_config.to_dict(),
                "n_complete": result.n_complete,
                "n_pruned": result.n_pruned,
                "n_failed": result.n_failed,
                "best_trial": result.best_trial,
                "max_overtraining": result.max_overtraining,
                "rejected_overtrained": result.rejected_overtrained,
                "overtraining_fallback": result.overtraining_fallback,
                "pruner": pruner,
                "executor": executor,
                "study_name": result.study_name,
                "storage": result.storage,
                "k": k,
                "objective_folds": objective_folds,
                "inputs": list(ts.inputs),
                "source": data.source,
            }
            best_path = atomic_write_json(out / f"hyperparameters_{name}.json", record)
            atomic_write_json(out / f"trials_{name}.json", result.trials)
            lines.append(f"{name}: best mean AUC {result.best_value:.4f} with "
                         f"{json.dumps(result.best_params)} ({result.n_complete} complete, "
                         f"{result.n_pruned} pruned, {result.n_failed} failed); wrote {best_path}")
    for line in lines:
        click.echo(line)


# -- ewpolar select-inputs -----------------------------------------------------------------------

@click.command("select-inputs")
@_data_options
@click.option("--mode", type=click.Choice(["shuffle", "retrain", "hybrid"]), default="shuffle",
              show_default=True,
              help="Input importance: AUC loss when the input is shuffled in the held-out "
                   "folds (fast), when the network is retrained without it (slow), or "
                   "shuffling to rank and retraining the --hybrid-candidates least important.")
@click.option("--criterion", type=click.Choice(["absolute", "relative", "std"]),
              default="absolute", show_default=True,
              help="Acceptance of a step with AUC loss Δ against all inputs: Δ ≤ tolerance, "
                   "Δ ≤ tolerance·(AUC − 0.5), or Δ ≤ tolerance standard errors of the AUC.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.005, show_default=True,
              help="Parameter of the acceptance criterion.")
@click.option("--patience", type=click.IntRange(min=1), default=1, show_default=True,
              help="Stop after this many rejected steps in a row.")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Cross-validations (network seeds) per input set, averaged.")
@click.option("--hybrid-candidates", type=click.IntRange(min=1), default=3, show_default=True,
              help="Inputs retrained per iteration in hybrid mode.")
@click.option("--min-inputs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Stop when this many inputs remain.")
@click.option("--folds", "n_folds", type=click.IntRange(min=1), default=None,
              help="Cross-validate only N folds at each step (default: all k); the other "
                   "folds re-evaluate the choice without bias.")
@click.option("--cv-offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Rotate the folds used for the choice: folds (f + offset) % k.")
@click.option("--test-fraction", type=click.FloatRange(0, 0.9, min_open=True), default=None,
              help="Keep this fraction of the events (by event number) as a fixed test set, "
                   "used only for the final re-evaluation.")
@_search_options
@user_errors(extra_packages=TRAIN_EXTRA)
def select_inputs(config_path: Path, fileset: Path | None, training_set: Path | None,
                  regions: tuple[str, ...], classifier: str, inputs_spec: str | None,
                  hyper_files: tuple[Path, ...], k: int, seed: int | None, epochs: int | None,
                  workers: int, chunksize: int, progress: bool, out: Path, mode: str,
                  criterion: str, tolerance: float, patience: int, repeats: int,
                  hybrid_candidates: int, min_inputs: int, n_folds: int | None,
                  cv_offset: int, test_fraction: float | None, executor: str,
                  scheduler: str | None, tls_ca_file: str | None, tls_cert: str | None,
                  tls_key: str | None) -> None:
    """Backwards elimination of inputs, judged by the cross-validated AUC.

    Writes OUT/elimination_<classifier>.json (AUC and importances at every
    iteration, the selected inputs: pass it to 'train --inputs', and their
    re-evaluation on events no choice was made on) and
    OUT/elimination_<classifier>.png (AUC against the iteration).
    """
    from ewpolar.core.outputs import atomic_write_json
    from ewpolar.models.training.crossval import holdout_mask
    from ewpolar.models.training.distributed import client_mapper
    from ewpolar.models.training.selection import backward_elimination, save_elimination_plot

    if n_folds is not None and n_folds > k:
        raise click.BadParameter(f"{n_folds} is more than --k {k}", param_hint="--folds")
    out = _prepare_out(out)
    data = _load_data(config_path, fileset, training_set, regions, classifier, inputs_spec,
                      workers, chunksize, progress, out)
    hyper = _read_hyperparameters(hyper_files)
    lines = []
    with (_search_client(executor, workers, scheduler, (tls_ca_file, tls_cert, tls_key),
                         data.config) as client, _progress(progress) as bar):
        for name, ts in data.sets.items():
            mlp = _mlp_config(hyper, name, seed, epochs)
            d = ts.n_inputs
            low = min(min_inputs, d)
            # upper bound of the cross-validations: one per step, or one per input per step
            per_step = {"shuffle": lambda m: 1, "retrain": lambda m: m,
                        "hybrid": lambda m: min(hybrid_candidates, m)}[mode]
            total = 1 + sum(per_step(m) for m in range(low + 1, d + 1)) + 2
            task = bar.add_task(f"{name}: all {d} inputs", total=total)

            def on_cv(inputs: tuple[str, ...], task: Any = task, name: str = name) -> None:
                bar.advance(task)
                bar.update(task, description=f"{name}: cross-validating {len(inputs)} inputs")

            try:
                test = (holdout_mask(ts.event, test_fraction) if test_fraction is not None
                        else None)
                result = backward_elimination(
                    ts, mlp, mode=mode, k=k, n_folds=n_folds, offset=cv_offset, test=test,
                    min_inputs=low, tolerance=tolerance, criterion=criterion, repeats=repeats,
                    patience=patience, hybrid_candidates=hybrid_candidates, seed=seed or 0,
                    on_cross_validation=on_cv, mapper=client_mapper(client))
            except ValueError as exc:
                raise InputError(f"{name}: cannot train on these events: {exc}") from None
            bar.update(task, completed=total, description=f"{name}: done")
            record = {"classifier": name, **result.to_dict(), "k": k, "n_folds": n_folds or k,
                      "cv_offset": cv_offset, "test_fraction": test_fraction,
                      "executor": executor,
                      "hyperparameters": mlp.to_dict(), "source": data.source}
            json_path = atomic_write_json(out / f"elimination_{name}.json", record)
            png_path = save_elimination_plot(result, out / f"elimination_{name}.png")
            accepted = [s for s in result.steps if s.accepted][-1]
            final = result.final
            unbiased = (f"; on the {final['method']}: {final['auc_all_inputs']:.4f} with all, "
                        f"{final['auc_selected']:.4f} kept" if final.get("method") != "none"
                        else "; no unbiased re-evaluation (every fold chose; use --folds or "
                             "--test-fraction)")
            lines.append(
                f"{name}: kept {len(result.selected_inputs)} of {d} inputs (AUC "
                f"{result.baseline_auc:.4f} with all, {accepted.auc:.4f} kept{unbiased}); "
                f"dropped {', '.join(result.dropped) or 'none'}; wrote {json_path} and "
                f"{png_path.name}")
    for line in lines:
        click.echo(line)


# --------------------------------------------------------------------------- studies


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


def _study_mlp_config(layers: int, width: int, epochs: int, seed: int, threads: int,
                activation: str) -> Any:
    from ewpolar.models.training.mlp import MLPConfig

    return MLPConfig(n_layers=layers, width=width, dropout=0.0, activation=activation,
                     learning_rate=1e-3, batch_size=1024, max_epochs=epochs,
                     patience=max(2, min(10, epochs // 4)), seed=seed, num_threads=threads)


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

    config = DCTRConfig(mlp=_study_mlp_config(layers, width, epochs, seed, threads, "tanh"),
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
                          trained=inputs, paired=target is None)
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
    from ewpolar.models.sbi.study import SBISettings, run_wh_sbi

    chosen = () if methods.strip().lower() == "none" else _names(methods)
    unknown = [m for m in chosen or () if m not in _SBI_METHODS]
    if unknown:
        raise InputError(f"--methods: unknown {unknown}; choose from {', '.join(_SBI_METHODS)} "
                         "or 'none'")
    cfg = _load_config(config_path, "wh")
    if cfg.channel != "wh":
        raise ConfigError(f"--config {config_path}: SBI needs the WH config, got channel "
                          f"'{cfg.channel}'")
    settings = SBISettings(mlp=_study_mlp_config(layers, width, epochs, seed, threads, "tanh"),
                           methods=tuple(chosen or ()), inputs=_names(features), c_max=c_max,
                           theta_draws=theta_draws, alpha=alpha, test_fraction=test_fraction,
                           sally_bins=sally_bins, scan_points=scan_points,
                           analysis_fit=analysis_fit)
    results = run_wh_sbi(cfg, events=events, seed=seed, settings=settings, out=out)
    click.echo(results.to_markdown())
    for m in results.methods.values():
        if m.warning:
            click.echo(f"ewpolar: warning: {m.label}: {m.warning}", err=True)
    click.echo(f"wrote {Path(out) / 'limits.md'}, limits.json, likelihood_scans.png and "
               f"{len(results.models)} ONNX estimators ({results.seconds:.0f} s)")


#: the commands to register on the ``ewpolar`` group
COMMANDS = (train, optimize, select_inputs, reweight, sbi)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """ML commands: classifier training, reweighting and SBI (the same as the ewpolar ones)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


for _command in COMMANDS:
    cli.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    cli()
