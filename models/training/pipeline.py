"""One classifier from training set to ONNX file: cross-validate, export, describe.

:func:`train_classifier` is what ``ewpolar train`` runs per classifier: k-fold
cross-validation (:mod:`ewpolar.models.training.crossval`) and the export of the k fold
models as one ONNX file with its model card (:mod:`ewpolar.models.training.export`).
The card records the samples and label meaning of the training set, the regions
the events were selected in, the event counts and each fold's epochs.

:func:`model_filename` names the file after the config's ``models`` entry, so
that a trained classifier can be copied to where the config expects it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ewpolar.core.config import AnalysisConfig
from ewpolar.models.runtime import ModelCard
from ewpolar.models.training.crossval import CrossValidationResult, cross_validate
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.export import export_cross_validation
from ewpolar.models.training.mlp import MLPConfig

__all__ = ["TrainedClassifier", "model_filename", "train_classifier"]

log = logging.getLogger(__name__)


@dataclass
class TrainedClassifier:
    """A cross-validated, exported classifier.

    Attributes:
        name: classifier name (the config's ``models`` key, e.g. ``ll_vs_tx``).
        path: the ``.onnx`` file (its card is ``path.with_suffix(".json")``).
        card: the model card written.
        cv: the cross-validation (fold models, per-fold AUC, histories).
    """

    name: str
    path: Path
    card: ModelCard
    cv: CrossValidationResult

    def summary(self) -> dict[str, Any]:
        """Plain dict (JSON-ready): file, per-fold AUC, epochs and event counts."""
        return {
            "file": self.path.name,
            "sha256": self.card.sha256,
            "inputs": list(self.card.inputs),
            "k": self.cv.k,
            "fold_auc": [round(a, 6) for a in self.cv.fold_auc],
            "mean_auc": round(self.cv.mean_auc, 6),
            "std_auc": round(self.cv.std_auc, 6),
            "epochs": [len(h.val_loss) for h in self.cv.histories],
            "best_epoch": [h.best_epoch for h in self.cv.histories],
            "events": self.card.training.get("events"),
            "hyperparameters": self.cv.config.to_dict(),
        }


def model_filename(config: AnalysisConfig, classifier: str) -> str:
    """File name of a classifier: that of the config's ``models`` entry, else ``<channel>_<name>.onnx``."""
    ref = config.models.get(classifier)
    if ref is not None and ref.path.endswith(".onnx"):
        return Path(ref.path).name
    return f"{config.channel}_{classifier}.onnx"


def train_classifier(
    training_set: TrainingSet,
    mlp_config: MLPConfig,
    *,
    name: str,
    path: str | Path,
    k: int = 5,
    training_extra: Mapping[str, Any] | None = None,
    on_epoch: Callable[[int, int, float], None] | None = None,
) -> TrainedClassifier:
    """Cross-validate one classifier and export its k fold models with a model card.

    Args:
        training_set: events, labels and weights; its metadata's ``samples``,
            ``labels``, ``events`` and ``regions`` go into the card.
        mlp_config: network and training settings (fold ``f`` uses seed + f).
        name: classifier name, recorded in the card's ``training.classifier``.
        path: output ``.onnx`` file.
        k: number of folds (``event % k``).
        training_extra: further facts for the card's ``training`` section.
        on_epoch: progress callback ``on_epoch(fold position, epoch, val_loss)``.

    Returns:
        The exported classifier.

    Raises:
        ValueError: a fold without events or without one of the classes.
    """
    path = Path(path)
    cv = cross_validate(training_set, mlp_config, k=k, on_epoch=on_epoch)
    meta = training_set.metadata
    extra = {
        "classifier": name,
        "regions": meta.get("regions"),
        "events": meta.get("events"),
        "events_per_dataset": meta.get("events_per_dataset"),
        "epochs": [len(h.val_loss) for h in cv.histories],
        "best_epoch": [h.best_epoch for h in cv.histories],
        **dict(training_extra or {}),
    }
    card = export_cross_validation(
        cv,
        path,
        samples=meta.get("samples", {}),
        labels=meta.get("labels"),
        training_extra={key: value for key, value in extra.items() if value is not None},
        reference_features=training_set.features,
    )
    log.info("%s: mean AUC %.4f ± %.4f over %d folds -> %s",
             name, cv.mean_auc, cv.std_auc, cv.k, path)
    return TrainedClassifier(name=name, path=path, card=card, cv=cv)
