"""Hyperparameter search with Optuna: TPE sampling, median pruning, resumable studies.

Each trial draws the number of hidden layers, the width, the learning rate (log
scale), the batch size and the dropout, cross-validates on the first
``n_objective_folds`` folds and returns the mean validation AUC (maximised).
After every epoch the trial reports minus the validation loss (larger is better,
like the objective) so that the median pruner stops trials whose loss curve
lies below the median of earlier trials at the same step.

A study kept in a database (``storage="sqlite:///study.db"`` or a plain file
path) is resumed when called again with the same study name: ``n_trials`` is the
number of finished trials the study should hold, so re-running an interrupted
search finishes it and a larger ``n_trials`` extends it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from ewpolar.core.errors import InputError
from ewpolar.models.training.crossval import cross_validate
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.mlp import MLPConfig

__all__ = ["OptimizationResult", "SearchSpace", "optimize_hyperparameters", "storage_url"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSpace:
    """Ranges searched by :func:`optimize_hyperparameters`.

    Attributes:
        n_layers: inclusive range of hidden layers.
        width: inclusive range of neurons per layer (sampled on a log scale).
        learning_rate: range of the Adam learning rate (log scale).
        batch_size: choices of batch size.
        dropout: range of the dropout probability.
    """

    n_layers: tuple[int, int] = (1, 4)
    width: tuple[int, int] = (16, 256)
    learning_rate: tuple[float, float] = (1e-4, 1e-2)
    batch_size: tuple[int, ...] = (128, 256, 512, 1024)
    dropout: tuple[float, float] = (0.0, 0.3)

    def suggest(self, trial: optuna.Trial, base: MLPConfig) -> MLPConfig:
        """Settings for one trial: ``base`` with the searched fields drawn."""
        return replace(
            base,
            n_layers=trial.suggest_int("n_layers", *self.n_layers),
            width=trial.suggest_int("width", *self.width, log=True),
            learning_rate=trial.suggest_float("learning_rate", *self.learning_rate, log=True),
            batch_size=trial.suggest_categorical("batch_size", list(self.batch_size)),
            dropout=trial.suggest_float("dropout", *self.dropout),
        )


@dataclass
class OptimizationResult:
    """Outcome of a (possibly resumed) search.

    Attributes:
        study_name: name of the study in its storage.
        storage: storage URL, or None for an in-memory study.
        best_value: best mean validation AUC.
        best_params: the searched settings of the best trial.
        best_config: the full settings of the best trial.
        n_complete: trials that finished.
        n_pruned: trials stopped by the pruner.
        n_failed: trials that raised (e.g. a diverging loss).
        trials: one dict per trial: number, state, value, params.
        study: the Optuna study itself.
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

    @property
    def n_trials(self) -> int:
        """Finished trials of any state."""
        return self.n_complete + self.n_pruned + self.n_failed


def storage_url(storage: str | Path | None) -> str | None:
    """Optuna storage URL: a plain file path becomes an SQLite URL."""
    if storage is None:
        return None
    text = str(storage)
    if "://" in text:
        return text
    path = Path(text).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


_FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


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
    pruner_startup_trials: int = 5,
    pruner_warmup_steps: int = 5,
    timeout: float | None = None,
    enqueue: Sequence[Mapping[str, Any]] = (),
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
) -> OptimizationResult:
    """Search hyperparameters maximising the mean validation AUC.

    Args:
        training_set: events to cross-validate on.
        base_config: settings not searched (epochs, patience, seed, activation ...).
        n_trials: number of finished trials the study should hold; only the
            missing ones are run.
        storage: ``sqlite:///path`` URL, a database file path, or None (memory).
        study_name: study name inside the storage.
        seed: seed of the TPE sampler (offset by the trials already in the
            study, so a resumed search does not repeat the same draws).
        k: number of folds.
        n_objective_folds: cross-validate only the first n folds per trial
            (default: all k).
        search_space: ranges to search (default: :class:`SearchSpace`).
        pruner_startup_trials: trials completed before pruning starts.
        pruner_warmup_steps: epochs of a trial before it can be pruned.
        timeout: stop starting trials after this many seconds.
        enqueue: settings to try first (e.g. the current defaults), as
            ``{"n_layers": 3, "width": 64, ...}``; used only by a new study.
        callbacks: called as ``callback(study, trial)`` after each finished
            trial (Optuna's ``study.optimize`` callbacks, e.g. a progress bar).

    Returns:
        The best settings and the trial summary.

    Raises:
        InputError: the stored study was made with other inputs or folds.
    """
    space = search_space or SearchSpace()
    n_folds = k if n_objective_folds is None else int(n_objective_folds)
    if not 1 <= n_folds <= k:
        raise ValueError(f"n_objective_folds must be in [1, {k}], got {n_objective_folds}")
    url = storage_url(storage)
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=pruner_startup_trials, n_warmup_steps=pruner_warmup_steps
    )
    study = optuna.create_study(
        storage=url,
        study_name=study_name,
        direction="maximize",
        pruner=pruner,
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
    log.info(
        "study %r: %d finished trials, running %d more", study_name, finished, remaining
    )
    steps_per_fold = base_config.max_epochs

    def objective(trial: optuna.Trial) -> float:
        config = space.suggest(trial, base_config)

        def report(position: int, epoch: int, val_loss: float) -> None:
            trial.report(-val_loss, step=position * steps_per_fold + epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        cv = cross_validate(training_set, config, k=k, folds=range(n_folds), on_epoch=report)
        trial.set_user_attr("fold_auc", cv.fold_auc)
        return cv.mean_auc

    if remaining:
        study.optimize(
            objective, n_trials=remaining, timeout=timeout, catch=(FloatingPointError,),
            callbacks=list(callbacks),
        )
    return _summarise(study, study_name, url, base_config)


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


def _summarise(
    study: optuna.Study, study_name: str, url: str | None, base_config: MLPConfig
) -> OptimizationResult:
    states = optuna.trial.TrialState
    trials = [
        {"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params)}
        for t in study.trials
    ]
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    if complete:
        best = study.best_trial
        best_params: Mapping[str, Any] = best.params
        best_value = float(best.value)
    else:
        best_params, best_value = {}, float("nan")
    return OptimizationResult(
        study_name=study_name,
        storage=url,
        best_value=best_value,
        best_params=dict(best_params),
        best_config=replace(base_config, **best_params),
        n_complete=len(complete),
        n_pruned=sum(t.state == states.PRUNED for t in study.trials),
        n_failed=sum(t.state == states.FAIL for t in study.trials),
        trials=trials,
        study=study,
    )
