"""Hyperparameter search with Optuna: TPE sampling, pruning, resumable and distributed studies.

Each trial draws its settings from a :class:`SearchSpace`: the number of hidden
layers, the width, the learning rate (log scale), the batch size and the
dropout, and (unless switched off with ``None``) the activation, the weight
initialiser, L1 and L2 penalties, Adam's β1, β2 and ε and the weight of the
positive class. It cross-validates on ``n_objective_folds`` folds and returns
the mean held-out AUC (maximised). After every epoch the trial reports minus
the validation loss (larger is better, like the objective) to the pruner:
``"median"`` (stop a trial whose curve lies below the median of earlier trials
at the same step), ``"asha"`` (asynchronous successive halving: at rungs of
min_resource · 3^k epochs only the best third continues; made for many trials
running in parallel) or ``"none"``.

The best trial is chosen with an overtraining condition: each complete trial
records the mean AUC of its fold models on their own training events next to
the held-out AUC, and a trial whose gap (train − held-out) is above
``max_overtraining`` (default 0.02) is not chosen, however high its held-out
AUC; when no trial passes, the one with the smallest gap is chosen and the
result says so (``overtraining_fallback``).

A study kept in a storage is resumed when called again with the same study
name: ``n_trials`` is the number of finished trials the study should hold, so
re-running an interrupted search finishes it and a larger ``n_trials`` extends
it. Storages: ``sqlite:///study.db`` or any RDB URL, a plain file path (SQLite),
or a path ending in ``.journal`` (Optuna's journal file, safe for many
processes writing at once; :func:`storage_url`).

Distributed (``client``, a dask client of
:func:`ewpolar.models.training.distributed.search_client`): every trial is a
dask task that opens the shared study from its storage (which the workers must
reach: a file on a shared file system, or a database server), draws its
settings there, reports its epochs to the same storage (so the pruner sees
every worker's trials) and writes its result. At most as many trials as there
are workers run at once, so that each new trial's draw knows the finished ones.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from ewpolar.core.errors import InputError
from ewpolar.models.training.crossval import CrossValidationResult, cross_validate
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.metrics import weighted_roc_auc
from ewpolar.models.training.mlp import ACTIVATIONS, INITIALISERS, MLPConfig

__all__ = [
    "DEFAULT_MAX_OVERTRAINING",
    "PRUNERS",
    "OptimizationResult",
    "SearchSpace",
    "open_storage",
    "optimize_hyperparameters",
    "storage_url",
]

log = logging.getLogger(__name__)

#: pruners of :func:`optimize_hyperparameters`
PRUNERS = ("median", "asha", "none")
#: largest accepted gap between the training-event and held-out AUC of the best trial
DEFAULT_MAX_OVERTRAINING = 0.02
_JOURNAL_SCHEME = "journal:///"


@dataclass(frozen=True)
class SearchSpace:
    """Ranges searched by :func:`optimize_hyperparameters` (None: not searched, kept as in
    the base settings).

    Attributes:
        n_layers: inclusive range of hidden layers.
        width: inclusive range of neurons per layer (sampled on a log scale).
        learning_rate: range of the Adam learning rate (log scale).
        batch_size: choices of batch size.
        dropout: range of the dropout probability.
        activation: choices of activation (:data:`~ewpolar.models.training.mlp.ACTIVATIONS`).
        initialiser: choices of weight initialiser.
        l1: range of the L1 penalty (log scale).
        l2: range of the L2 penalty, Adam's weight decay (log scale).
        adam_beta1, adam_beta2: ranges of Adam's moment decays.
        adam_eps: range of Adam's ε (log scale).
        class_weight: range of the positive class's weight factor (log scale).
    """

    n_layers: tuple[int, int] = (1, 4)
    width: tuple[int, int] = (16, 256)
    learning_rate: tuple[float, float] = (1e-4, 1e-2)
    batch_size: tuple[int, ...] = (128, 256, 512, 1024)
    dropout: tuple[float, float] = (0.0, 0.3)
    activation: tuple[str, ...] | None = ("relu", "elu", "tanh", "silu", "gelu")
    initialiser: tuple[str, ...] | None = ("default", "xavier_uniform", "kaiming_uniform",
                                           "orthogonal")
    l1: tuple[float, float] | None = (1e-7, 1e-3)
    l2: tuple[float, float] | None = (1e-7, 1e-3)
    adam_beta1: tuple[float, float] | None = (0.8, 0.95)
    adam_beta2: tuple[float, float] | None = (0.99, 0.9999)
    adam_eps: tuple[float, float] | None = (1e-9, 1e-6)
    class_weight: tuple[float, float] | None = (0.5, 2.0)

    def __post_init__(self) -> None:
        bad = [a for a in self.activation or () if a not in ACTIVATIONS]
        bad += [i for i in self.initialiser or () if i not in INITIALISERS]
        if bad:
            raise ValueError(f"unknown activations or initialisers {bad}")

    def suggest(self, trial: optuna.Trial, base: MLPConfig) -> MLPConfig:
        """Settings for one trial: ``base`` with the searched fields drawn."""
        drawn: dict[str, Any] = {
            "n_layers": trial.suggest_int("n_layers", *self.n_layers),
            "width": trial.suggest_int("width", *self.width, log=True),
            "learning_rate": trial.suggest_float("learning_rate", *self.learning_rate, log=True),
            "batch_size": trial.suggest_categorical("batch_size", list(self.batch_size)),
            "dropout": trial.suggest_float("dropout", *self.dropout),
        }
        if self.activation:
            drawn["activation"] = trial.suggest_categorical("activation", list(self.activation))
        if self.initialiser:
            drawn["initialiser"] = trial.suggest_categorical("initialiser",
                                                             list(self.initialiser))
        if self.l1:
            drawn["l1"] = trial.suggest_float("l1", *self.l1, log=True)
        if self.l2:
            drawn["weight_decay"] = trial.suggest_float("weight_decay", *self.l2, log=True)
        if self.adam_beta1:
            drawn["adam_beta1"] = trial.suggest_float("adam_beta1", *self.adam_beta1)
        if self.adam_beta2:
            drawn["adam_beta2"] = trial.suggest_float("adam_beta2", *self.adam_beta2)
        if self.adam_eps:
            drawn["adam_eps"] = trial.suggest_float("adam_eps", *self.adam_eps, log=True)
        if self.class_weight:
            drawn["class_weight"] = trial.suggest_float("class_weight", *self.class_weight,
                                                        log=True)
        return replace(base, **drawn)


@dataclass
class OptimizationResult:
    """Outcome of a (possibly resumed) search.

    Attributes:
        study_name: name of the study in its storage.
        storage: storage URL, or None for an in-memory study.
        best_value: held-out mean AUC of the chosen trial.
        best_params: the searched settings of the chosen trial.
        best_config: the full settings of the chosen trial.
        n_complete: trials that finished.
        n_pruned: trials stopped by the pruner.
        n_failed: trials that raised (e.g. a diverging loss).
        trials: one dict per trial: number, state, value, params, overtraining gap.
        study: the Optuna study itself.
        max_overtraining: the overtraining condition of the choice.
        rejected_overtrained: complete trials not chosen because of their gap.
        overtraining_fallback: no trial met the condition (the smallest gap was chosen).
        best_trial: number of the chosen trial.
    """

    study_name: str
    storage: str | None
    best_value: float
    best_params: dict[str, Any]
    best_config: MLPConfig
    n_complete: int
    n_pruned: int
    n_failed: int
    trials: list[dict[str, Any]] = field(default_factory=list)
    study: optuna.Study | None = None
    max_overtraining: float = DEFAULT_MAX_OVERTRAINING
    rejected_overtrained: list[int] = field(default_factory=list)
    overtraining_fallback: bool = False
    best_trial: int | None = None

    @property
    def n_trials(self) -> int:
        """Finished trials of any state."""
        return self.n_complete + self.n_pruned + self.n_failed


def storage_url(storage: str | Path | None) -> str | None:
    """Storage URL: a plain ``.journal`` path becomes ``journal:///path``, any other plain
    file path an SQLite URL; URLs are kept."""
    if storage is None:
        return None
    text = str(storage)
    if "://" in text:
        return text
    path = Path(text).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".journal":
        return f"{_JOURNAL_SCHEME}{path}"
    return f"sqlite:///{path}"


def open_storage(url: str | None) -> Any:
    """What ``optuna.create_study(storage=...)`` takes for a :func:`storage_url`."""
    if url is None or not url.startswith(_JOURNAL_SCHEME):
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend("/" + url[len(_JOURNAL_SCHEME):].lstrip("/")))


_FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def _pruner(name: str, startup_trials: int, warmup_steps: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials,
                                           n_warmup_steps=warmup_steps)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, warmup_steps),
                                                      reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")


@dataclass(frozen=True)
class _Objective:
    """One trial: draw the settings, cross-validate, record the overtraining gap (picklable)."""

    training_set: TrainingSet
    base_config: MLPConfig
    space: SearchSpace
    k: int
    n_folds: int

    def __call__(self, trial: optuna.Trial) -> float:
        config = self.space.suggest(trial, self.base_config)
        steps_per_fold = self.base_config.max_epochs

        def report(position: int, epoch: int, val_loss: float) -> None:
            trial.report(-val_loss, step=position * steps_per_fold + epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        cv = cross_validate(self.training_set, config, k=self.k, folds=range(self.n_folds),
                            on_epoch=report)
        train_auc = _training_auc(cv, self.training_set)
        trial.set_user_attr("fold_auc", cv.fold_auc)
        trial.set_user_attr("train_auc", train_auc)
        trial.set_user_attr("overtraining", float(np.mean(train_auc) - cv.mean_auc))
        return cv.mean_auc


def _training_auc(cv: CrossValidationResult, training_set: TrainingSet) -> list[float]:
    """AUC of each fold model on the events it was trained on (its other folds)."""
    fold_of = training_set.folds(cv.k)
    out = []
    for fold, model in zip(cv.folds, cv.models, strict=True):
        train = fold_of != fold
        out.append(weighted_roc_auc(model.predict_proba(training_set.features[train]),
                                    training_set.labels[train], training_set.weights[train]))
    return out


def _run_trial(url: str, study_name: str, objective: _Objective, seed: int, pruner: str,
               startup_trials: int, warmup_steps: int) -> None:
    """One trial of a shared study, in a dask worker."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=open_storage(url),
                              sampler=optuna.samplers.TPESampler(seed=seed),
                              pruner=_pruner(pruner, startup_trials, warmup_steps))
    study.optimize(objective, n_trials=1, catch=(FloatingPointError,))


def optimize_hyperparameters(
    training_set: TrainingSet,
    base_config: MLPConfig,
    *,
    n_trials: int,
    storage: str | Path | None = None,
    study_name: str = "ewpolar",
    seed: int = 0,
    k: int = 5,
    n_objective_folds: int | None = None,
    search_space: SearchSpace | None = None,
    pruner: str = "median",
    pruner_startup_trials: int = 5,
    pruner_warmup_steps: int = 5,
    max_overtraining: float = DEFAULT_MAX_OVERTRAINING,
    timeout: float | None = None,
    enqueue: Sequence[Mapping[str, Any]] = (),
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    client: Any = None,
) -> OptimizationResult:
    """Search hyperparameters maximising the mean held-out AUC.

    Args:
        training_set: events to cross-validate on.
        base_config: settings not searched (epochs, patience, seed, ...).
        n_trials: number of finished trials the study should hold; only the
            missing ones are run.
        storage: a storage URL, a database file path, a ``.journal`` path, or
            None (memory; not with ``client``).
        study_name: study name inside the storage.
        seed: seed of the TPE sampler (offset by the trials already in the
            study, and per trial in a distributed search, so that no draws repeat).
        k: number of folds.
        n_objective_folds: cross-validate only the first n folds per trial
            (default: all k).
        search_space: ranges to search (default: :class:`SearchSpace`).
        pruner: ``"median"``, ``"asha"`` or ``"none"``.
        pruner_startup_trials: trials completed before median pruning starts.
        pruner_warmup_steps: epochs of a trial before it can be pruned (the first
            rung of ``"asha"``).
        max_overtraining: the best trial's largest gap between its training-event
            and held-out AUC.
        timeout: stop starting trials after this many seconds.
        enqueue: settings to try first (e.g. the current defaults), as
            ``{"n_layers": 3, "width": 64, ...}``; used only by a new study.
        callbacks: called as ``callback(study, trial)`` after each finished trial.
        client: a dask client: run the trials as tasks on its workers.

    Returns:
        The chosen settings and the trial summary.

    Raises:
        InputError: the stored study was made with other inputs or folds, or a
            distributed search without a storage.
    """
    space = search_space or SearchSpace()
    n_folds = k if n_objective_folds is None else int(n_objective_folds)
    if not 1 <= n_folds <= k:
        raise ValueError(f"n_objective_folds must be in [1, {k}], got {n_objective_folds}")
    url = storage_url(storage)
    if client is not None and url is None:
        raise InputError("a distributed search needs a storage the workers share (--storage)")
    study = optuna.create_study(
        storage=open_storage(url),
        study_name=study_name,
        direction="maximize",
        pruner=_pruner(pruner, pruner_startup_trials, pruner_warmup_steps),
        load_if_exists=True,
    )
    _check_study_matches(study, training_set, k, n_folds, url)
    existing = len(study.trials)
    # a resumed study must not replay the sampler's first draws
    study.sampler = optuna.samplers.TPESampler(seed=seed + existing)
    if not existing:
        for params in enqueue:
            study.enqueue_trial(dict(params))
    finished = sum(t.state in _FINISHED for t in study.trials)
    remaining = max(0, int(n_trials) - finished)
    log.info("study %r: %d finished trials, running %d more", study_name, finished, remaining)
    objective = _Objective(training_set, base_config, space, k, n_folds)
    if remaining and client is None:
        study.optimize(objective, n_trials=remaining, timeout=timeout,
                       catch=(FloatingPointError,), callbacks=list(callbacks))
    elif remaining:
        _optimize_on_cluster(client, study, url, study_name, objective, remaining,
                             seed=seed + existing, pruner=pruner,
                             startup_trials=pruner_startup_trials,
                             warmup_steps=pruner_warmup_steps, timeout=timeout,
                             callbacks=callbacks)
    return _summarise(study, study_name, url, base_config, max_overtraining)


def _optimize_on_cluster(client: Any, study: optuna.Study, url: str, study_name: str,
                         objective: _Objective, remaining: int, *, seed: int, pruner: str,
                         startup_trials: int, warmup_steps: int, timeout: float | None,
                         callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial],
                                                      None]]) -> None:
    """Run ``remaining`` trials as dask tasks, at most one per worker at a time."""
    from distributed import wait
    from ewpolar.models.training.distributed import n_workers

    shared = client.scatter(objective, broadcast=True)
    start = time.monotonic()
    in_flight: set[Any] = set()
    submitted = 0
    while True:
        while (submitted < remaining and len(in_flight) < n_workers(client)
               and (timeout is None or time.monotonic() - start < timeout)):
            in_flight.add(client.submit(_run_trial, url, study_name, shared, seed + submitted,
                                        pruner, startup_trials, warmup_steps, pure=False))
            submitted += 1
        if not in_flight:
            break
        done, in_flight = wait(in_flight, return_when="FIRST_COMPLETED")
        for future in done:
            future.result()  # a worker's error ends the search here
        trials = study.get_trials(deepcopy=False, states=_FINISHED)
        for callback in callbacks:
            callback(study, trials[-1] if trials else None)
    log.info("%d trials ran on %d dask workers", submitted, n_workers(client))


def _check_study_matches(
    study: optuna.Study, training_set: TrainingSet, k: int, n_folds: int, url: str | None
) -> None:
    """Record the inputs and folds in a new study; refuse to resume a different one."""
    wanted = {"inputs": list(training_set.inputs), "k": k, "n_objective_folds": n_folds}
    stored = study.user_attrs
    if not stored:
        for key, value in wanted.items():
            study.set_user_attr(key, value)
        return
    differing = [key for key, value in wanted.items() if stored.get(key) != value]
    if differing:
        raise InputError(
            f"study {study.study_name!r} in {url}: cannot resume, it was made with other "
            + ", ".join(f"{key} ({stored.get(key)!r})" for key in differing)
        )


def _gap(trial: optuna.trial.FrozenTrial) -> float:
    gap = trial.user_attrs.get("overtraining")
    return float(gap) if gap is not None and math.isfinite(gap) else 0.0


def _summarise(
    study: optuna.Study, study_name: str, url: str | None, base_config: MLPConfig,
    max_overtraining: float = DEFAULT_MAX_OVERTRAINING,
) -> OptimizationResult:
    states = optuna.trial.TrialState
    trials = [
        {"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params),
         "overtraining": t.user_attrs.get("overtraining")}
        for t in study.trials
    ]
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    passing = [t for t in complete if _gap(t) <= max_overtraining]
    rejected = sorted(t.number for t in complete if _gap(t) > max_overtraining)
    fallback = bool(complete) and not passing
    if passing:
        best = max(passing, key=lambda t: (t.value, -t.number))
    elif complete:
        best = min(complete, key=lambda t: (_gap(t), -t.value))
        log.warning("no trial has an overtraining gap ≤ %g; chose trial %d with the smallest "
                    "gap (%.4f)", max_overtraining, best.number, _gap(best))
    else:
        best = None
    if rejected:
        log.info("trials rejected for overtraining (gap > %g): %s", max_overtraining, rejected)
    return OptimizationResult(
        study_name=study_name,
        storage=url,
        best_value=float(best.value) if best is not None else float("nan"),
        best_params=dict(best.params) if best is not None else {},
        best_config=replace(base_config, **(best.params if best is not None else {})),
        n_complete=len(complete),
        n_pruned=sum(t.state == states.PRUNED for t in study.trials),
        n_failed=sum(t.state == states.FAIL for t in study.trials),
        trials=trials,
        study=study,
        max_overtraining=max_overtraining,
        rejected_overtrained=rejected,
        overtraining_fallback=fallback,
        best_trial=best.number if best is not None else None,
    )
