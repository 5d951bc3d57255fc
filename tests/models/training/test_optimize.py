"""Optuna hyperparameter search: resuming from its database, pruning."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("torch")
pytest.importorskip("optuna")

from ewpolar.core.errors import InputError
from ewpolar.models.training.optimize import SearchSpace, optimize_hyperparameters
from training_cases import TINY, gaussian_classes

SPACE = SearchSpace(n_layers=(1, 2), width=(4, 16), learning_rate=(1e-3, 3e-2),
                    batch_size=(64, 128), dropout=(0.0, 0.2))
GOOD = {"n_layers": 1, "width": 8, "learning_rate": 2e-2, "batch_size": 64, "dropout": 0.0}


def test_optuna_search_resumes_from_its_database(tmp_path) -> None:
    ts = gaussian_classes(600, 1.5, seed=7)
    base = replace(TINY, max_epochs=4, patience=4)
    db = tmp_path / "study.db"
    kwargs = {"storage": db, "study_name": "tiny", "seed": 1, "k": 2, "n_objective_folds": 1,
              "search_space": SPACE}
    first = optimize_hyperparameters(ts, base, n_trials=3, **kwargs)
    assert first.n_trials == 3
    assert first.storage == f"sqlite:///{db.resolve()}"
    assert 0.6 < first.best_value <= 1.0
    second = optimize_hyperparameters(ts, base, n_trials=5, **kwargs)
    assert second.n_trials == 5
    assert second.trials[:3] == first.trials  # the stored trials are kept, not redone
    assert len({str(t["params"]) for t in second.trials}) == 5  # no replayed draws
    again = optimize_hyperparameters(ts, base, n_trials=5, **kwargs)
    assert again.n_trials == 5  # nothing left to do
    assert set(second.best_params) == {"n_layers", "width", "learning_rate", "batch_size",
                                       "dropout"}
    with pytest.raises(InputError, match="cannot resume"):
        optimize_hyperparameters(ts.select_inputs(["signal"]), base, n_trials=6,
                                 **{**kwargs, "k": 3})


def test_optuna_prunes_a_trial_that_does_not_learn() -> None:
    ts = gaussian_classes(600, 1.5, seed=8)
    base = replace(TINY, max_epochs=6, patience=6)
    # two good trials set the median; a learning rate of 1e-7 leaves the loss at ln 2
    hopeless = {**GOOD, "learning_rate": 1e-7}
    space = replace(SPACE, learning_rate=(1e-7, 3e-2))
    result = optimize_hyperparameters(
        ts, base, n_trials=3, k=2, n_objective_folds=1, search_space=space,
        pruner_startup_trials=2, pruner_warmup_steps=1, enqueue=[GOOD, GOOD, hopeless],
    )
    states = [t["state"] for t in result.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert result.best_params == GOOD
