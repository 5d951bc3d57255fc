"""k-fold cross-validation by event number.

Fold ``f`` holds the events with ``event % k == f``. Model ``f`` is trained on
the other k − 1 folds and evaluated on fold ``f``; its weighted ROC AUC there is
the per-fold AUC, and its scores there are the out-of-fold scores. Exported, the
same model scores exactly the events of fold ``f`` at inference.

A partial cross-validation (``folds``) trains only some of the k models; an
``offset`` rotates which ones: ``folds=range(2), offset=3`` trains the models of
folds 3 and 4. Fold identities stay ``event % k``, so any model can still be
exported with its routing. An optional fixed *test set* (``test``: a mask, e.g.
:func:`holdout_mask`) is kept out of every training and every fold: each model
scores it, and ``test_auc`` is the AUC of the mean score of the trained models
there, a number no choice made on the fold AUCs has seen.

Example:
    >>> import numpy as np
    >>> from ewpolar.models.training.data import TrainingSet
    >>> rng = np.random.default_rng(1)
    >>> y = rng.integers(0, 2, 600)
    >>> ts = TrainingSet((rng.normal(size=(600, 1)) + 2 * y[:, None]), y, np.ones(600),
    ...                  np.arange(600, dtype=np.uint64), ("x",))
    >>> cv = cross_validate(ts, MLPConfig(n_layers=1, width=4, max_epochs=5), k=3)
    >>> len(cv.models), cv.mean_auc > 0.8
    (3, True)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.metrics import weighted_roc_auc
from ewpolar.models.training.mlp import MLP, MLPConfig, TrainingHistory, train_mlp

__all__ = ["CrossValidationResult", "cross_validate", "fold_seed", "holdout_mask"]

log = logging.getLogger(__name__)


def holdout_mask(event: np.ndarray, fraction: float) -> np.ndarray:
    """A fixed test set of about ``fraction`` of the events, by event number.

    Chosen by a multiplicative hash of the event number (Knuth's 2654435761 mod
    2³²), so it does not depend on the order of the events, is the same in every
    run, and is independent of the folds ``event % k``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"test fraction must be in (0, 1), got {fraction}")
    e = np.asarray(event).astype(np.uint64)
    hashed = (e * np.uint64(2654435761)) % np.uint64(2**32)
    return hashed.astype(np.float64) / 2.0**32 < fraction


def fold_seed(seed: int, fold: int) -> int:
    """Seed of fold ``fold``'s training: distinct per fold, fixed by the base seed."""
    return int(seed) + int(fold)


@dataclass
class CrossValidationResult:
    """Models and scores of a (possibly partial) k-fold cross-validation.

    Attributes:
        k: number of folds the events are split into.
        folds: folds that were trained, in order (all of ``range(k)`` for a
            full cross-validation, fewer for a cheap proxy).
        models: ``models[i]`` was trained without fold ``folds[i]``.
        fold_auc: weighted ROC AUC of ``models[i]`` on fold ``folds[i]``.
        histories: training history of each model.
        oof_scores: out-of-fold probability for every event of the training
            set; NaN for events in folds that were not trained.
        inputs: ordered input names.
        config: settings of fold 0 (fold ``f`` used seed ``fold_seed(seed, f)``).
        offset: rotation of the trained folds (see the module docstring).
        test_auc: AUC on the fixed test set of the trained models' mean score
            (None without a test set).
        test_fold_auc: AUC of each model on the test set.
    """

    k: int
    folds: tuple[int, ...]
    models: list[MLP]
    fold_auc: list[float]
    histories: list[TrainingHistory]
    oof_scores: np.ndarray
    inputs: tuple[str, ...]
    config: MLPConfig
    offset: int = 0
    test_auc: float | None = None
    test_fold_auc: list[float] | None = None

    @property
    def mean_auc(self) -> float:
        """Mean of the per-fold AUCs."""
        return float(np.mean(self.fold_auc))

    @property
    def std_auc(self) -> float:
        """Standard deviation of the per-fold AUCs."""
        return float(np.std(self.fold_auc))

    @property
    def complete(self) -> bool:
        """All k folds were trained (needed for export)."""
        return tuple(sorted(self.folds)) == tuple(range(self.k))

    def model_for_fold(self, fold: int) -> MLP:
        """The model that scores the events of ``fold`` (trained without it)."""
        return self.models[self.folds.index(fold)]


def cross_validate(
    training_set: TrainingSet,
    config: MLPConfig,
    *,
    k: int = 5,
    folds: Sequence[int] | None = None,
    offset: int = 0,
    test: np.ndarray | None = None,
    on_epoch: Callable[[int, int, float], None] | None = None,
) -> CrossValidationResult:
    """Train one model per fold and evaluate each on the fold it did not see.

    Args:
        training_set: events with inputs, labels, weights and event numbers.
        config: network and training settings; fold ``f`` trains with seed
            ``fold_seed(config.seed, f)``.
        k: number of folds (``event % k``).
        folds: train only these folds (default: all k), e.g. ``range(2)`` as a
            cheaper proxy during hyperparameter search.
        offset: train folds ``(f + offset) % k`` for ``f`` in ``folds``.
        test: boolean mask of a fixed test set, excluded from all training and
            all folds and scored by every model (see :func:`holdout_mask`).
        on_epoch: called as ``on_epoch(position, epoch, val_loss)`` where
            ``position`` counts the trained folds from 0; may raise to abort.

    Returns:
        The models, per-fold AUCs and out-of-fold scores.

    Raises:
        ValueError: a fold is out of range, or a held-out fold lacks one class.
    """
    k = int(k)
    chosen = tuple(range(k)) if folds is None else tuple(int(f) for f in folds)
    if not chosen or any(not 0 <= f < k for f in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(f"folds must be distinct integers in [0, {k}), got {chosen}")
    chosen = tuple((f + int(offset)) % k for f in chosen)
    fold_of = training_set.folds(k)
    if test is not None:
        test = np.asarray(test, dtype=bool)
        if test.shape != (len(training_set),):
            raise ValueError(f"test mask of shape {test.shape} for {len(training_set)} events")
        fold_of = np.where(test, -1, fold_of)  # in no fold: never trained on, never a fold
    test_scores: list[np.ndarray] = []
    oof = np.full(len(training_set), np.nan, dtype=np.float32)
    models: list[MLP] = []
    aucs: list[float] = []
    histories: list[TrainingHistory] = []
    for position, fold in enumerate(chosen):
        held = fold_of == fold
        train = (fold_of != fold) & (fold_of >= 0)
        if not held.any():
            raise ValueError(f"fold {fold} of {k} has no events")
        fold_config = replace(config, seed=fold_seed(config.seed, fold))
        callback = None
        if on_epoch is not None:
            pos = position

            def callback(epoch: int, val_loss: float, pos: int = pos) -> None:
                on_epoch(pos, epoch, val_loss)

        result = train_mlp(
            training_set.features[train],
            training_set.labels[train],
            training_set.weights[train],
            fold_config,
            on_epoch=callback,
        )
        scores = result.model.predict_proba(training_set.features[held])
        oof[held] = scores
        auc = weighted_roc_auc(scores, training_set.labels[held], training_set.weights[held])
        if test is not None:
            test_scores.append(result.model.predict_proba(training_set.features[test]))
        log.info(
            "fold %d/%d: AUC %.4f (best epoch %d of %d)",
            fold, k, auc, result.history.best_epoch, len(result.history.val_loss),
        )
        models.append(result.model)
        aucs.append(auc)
        histories.append(result.history)
    test_auc = test_fold_auc = None
    if test is not None:
        y, w = training_set.labels[test], training_set.weights[test]
        test_fold_auc = [weighted_roc_auc(sc, y, w) for sc in test_scores]
        test_auc = weighted_roc_auc(np.mean(test_scores, axis=0), y, w)
        log.info("test set (%d events): AUC %.4f", int(test.sum()), test_auc)
    return CrossValidationResult(
        k=k,
        folds=chosen,
        models=models,
        fold_auc=aucs,
        histories=histories,
        oof_scores=oof,
        inputs=training_set.inputs,
        config=config,
        offset=int(offset) % k,
        test_auc=test_auc,
        test_fold_auc=test_fold_auc,
    )
