"""Training pipeline for the analysis classifiers.

k-fold cross-validated MLPs (torch), Optuna hyperparameter search, backwards
elimination of inputs and ONNX export with a model card. The submodules follow
the workflow:

- :mod:`ewpolar.models.training.inputs`: the ssWW classifier inputs and label definitions
- :mod:`ewpolar.models.training.build`: training events selected from a fileset with coffea
- :mod:`ewpolar.models.training.data`: the training set container and fold assignment
- :mod:`ewpolar.models.training.mlp`: the network and its trainer
- :mod:`ewpolar.models.training.metrics`: weighted ROC AUC
- :mod:`ewpolar.models.training.crossval`: k-fold cross-validation
- :mod:`ewpolar.models.training.optimize`: Optuna hyperparameter search
- :mod:`ewpolar.models.training.distributed`: where the searches run (here, dask, HTCondor)
- :mod:`ewpolar.models.training.selection`: backwards elimination of inputs
- :mod:`ewpolar.models.training.export`: one ONNX file per classifier and its model card
- :mod:`ewpolar.models.training.pipeline`: cross-validate and export one classifier

Names are imported lazily so that ``ewpolar.models.training.data``, ``inputs`` and
``build`` work without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "MLP",
    "SSWW_CLASSIFIERS",
    "SSWW_INPUTS",
    "ClassifierTarget",
    "CrossValidationResult",
    "EliminationResult",
    "EliminationStep",
    "FoldEnsemble",
    "InputCollector",
    "MLPConfig",
    "OptimizationResult",
    "SearchSpace",
    "TrainResult",
    "TrainedClassifier",
    "TrainingEvents",
    "TrainingHistory",
    "TrainingSet",
    "backward_elimination",
    "build_training_events",
    "cross_validate",
    "export_classifier",
    "kfold_index",
    "optimize_hyperparameters",
    "permutation_importance",
    "save_elimination_plot",
    "train_classifier",
    "train_mlp",
    "weighted_roc_auc",
]

_WHERE = {
    "SSWW_CLASSIFIERS": "inputs",
    "SSWW_INPUTS": "inputs",
    "ClassifierTarget": "inputs",
    "InputCollector": "build",
    "TrainingEvents": "build",
    "build_training_events": "build",
    "TrainedClassifier": "pipeline",
    "train_classifier": "pipeline",
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
