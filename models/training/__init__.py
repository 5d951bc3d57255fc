"""Training pipeline for the analysis classifiers.

k-fold cross-validated MLPs (torch), Optuna hyperparameter search, backwards
elimination of inputs and ONNX export with a model card. The submodules follow
the workflow:

- :mod:`models.training.data`: the training set container and fold assignment
- :mod:`models.training.mlp`: the network and its trainer
- :mod:`models.training.metrics`: weighted ROC AUC
- :mod:`models.training.crossval`: k-fold cross-validation
- :mod:`models.training.optimize`: Optuna hyperparameter search
- :mod:`models.training.selection`: backwards elimination of inputs
- :mod:`models.training.export`: one ONNX file per classifier and its model card

Names are imported lazily so that ``models.training.data`` works without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "MLP",
    "CrossValidationResult",
    "EliminationResult",
    "EliminationStep",
    "FoldEnsemble",
    "MLPConfig",
    "OptimizationResult",
    "SearchSpace",
    "TrainResult",
    "TrainingHistory",
    "TrainingSet",
    "backward_elimination",
    "cross_validate",
    "export_classifier",
    "kfold_index",
    "optimize_hyperparameters",
    "permutation_importance",
    "save_elimination_plot",
    "train_mlp",
    "weighted_roc_auc",
]

_WHERE = {
    "TrainingSet": "data",
    "kfold_index": "data",
    "weighted_roc_auc": "metrics",
    "MLP": "mlp",
    "MLPConfig": "mlp",
    "TrainResult": "mlp",
    "TrainingHistory": "mlp",
    "train_mlp": "mlp",
    "CrossValidationResult": "crossval",
    "cross_validate": "crossval",
    "OptimizationResult": "optimize",
    "SearchSpace": "optimize",
    "optimize_hyperparameters": "optimize",
    "EliminationResult": "selection",
    "EliminationStep": "selection",
    "backward_elimination": "selection",
    "permutation_importance": "selection",
    "save_elimination_plot": "selection",
    "FoldEnsemble": "export",
    "export_classifier": "export",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
