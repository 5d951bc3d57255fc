"""Optuna hyperparameter search: resuming from its database, pruning."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("torch")
pytest.importorskip("optuna")

import optuna
from ewpolar.core.errors import InputError
from ewpolar.models.training.optimize import (
    SearchSpace,
    _summarise,
    optimize_hyperparameters,
)
from training_cases import TINY, gaussian_classes

SPACE = SearchSpace(n_layers=(1, 2), width=(4, 16), learning_rate=(1e-3, 3e-2),
                    batch_size=(64, 128), dropout=(0.0, 0.2), activation=None, initialiser=None,
                    l1=None, l2=None, adam_beta1=None, adam_beta2=None, adam_eps=None,
                    class_weight=None)
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


def test_the_wide_search_space_reaches_the_network() -> None:
    ts = gaussian_classes(600, 1.5, seed=7)
    base = replace(TINY, max_epochs=3, patience=3)
    space = replace(SPACE, activation=("tanh", "elu"), initialiser=("orthogonal",),
                    l1=(1e-6, 1e-4), l2=(1e-6, 1e-4), adam_beta1=(0.8, 0.9),
                    adam_beta2=(0.99, 0.999), adam_eps=(1e-9, 1e-7), class_weight=(0.5, 2.0))
    result = optimize_hyperparameters(ts, base, n_trials=2, k=2, n_objective_folds=1,
                                      search_space=space, pruner="asha")
    params = result.best_params
    assert {"activation", "initialiser", "l1", "weight_decay", "adam_beta1", "adam_beta2",
            "adam_eps", "class_weight"} <= set(params)
    config = result.best_config
    assert config.initialiser == "orthogonal"
    assert 1e-6 <= config.l1 <= 1e-4
    assert 0.5 <= config.class_weight <= 2.0
    assert isinstance(result.study.pruner, optuna.pruners.SuccessiveHalvingPruner)
    assert all(t["overtraining"] is not None for t in result.trials)


def test_the_best_trial_rule_rejects_overtrained_trials() -> None:
    study = optuna.create_study(direction="maximize")
    dist = {"width": optuna.distributions.IntDistribution(4, 64)}
    for width, value, gap in ((8, 0.80, 0.005), (64, 0.86, 0.08), (16, 0.82, 0.015)):
        study.add_trial(optuna.trial.create_trial(params={"width": width}, distributions=dist,
                                                  value=value,
                                                  user_attrs={"overtraining": gap}))
    result = _summarise(study, "s", None, TINY, max_overtraining=0.02)
    # the highest held-out AUC overtrains by 0.08: the best trial within 0.02 is chosen
    assert result.best_params == {"width": 16}
    assert result.best_value == pytest.approx(0.82)
    assert result.rejected_overtrained == [1]
    assert not result.overtraining_fallback
    strict = _summarise(study, "s", None, TINY, max_overtraining=0.001)
    assert strict.overtraining_fallback
    assert strict.best_params == {"width": 8}  # the smallest gap
    loose = _summarise(study, "s", None, TINY, max_overtraining=1.0)
    assert loose.best_params == {"width": 64}


def test_journal_storage_is_resumed(tmp_path) -> None:
    ts = gaussian_classes(400, 1.5, seed=7)
    base = replace(TINY, max_epochs=2, patience=2)
    journal = tmp_path / "study.journal"
    kwargs = {"storage": journal, "study_name": "j", "k": 2, "n_objective_folds": 1,
              "search_space": SPACE}
    first = optimize_hyperparameters(ts, base, n_trials=2, **kwargs)
    assert first.storage == f"journal:///{journal.resolve()}"
    assert journal.is_file()
    second = optimize_hyperparameters(ts, base, n_trials=3, **kwargs)
    assert second.n_trials == 3
    assert second.trials[:2] == first.trials


def test_trials_run_on_a_two_worker_dask_cluster(tmp_path) -> None:
    pytest.importorskip("distributed")
    from ewpolar.models.training.distributed import n_workers, search_client

    ts = gaussian_classes(600, 1.5, seed=7)
    base = replace(TINY, max_epochs=3, patience=3)
    kwargs = {"storage": tmp_path / "study.journal", "study_name": "d", "k": 2,
              "n_objective_folds": 1, "search_space": SPACE}
    seen = []
    with search_client("dask", workers=2) as client:
        assert n_workers(client) == 2
        result = optimize_hyperparameters(ts, base, n_trials=4, client=client,
                                          callbacks=[lambda study, trial: seen.append(trial)],
                                          **kwargs)
        hosts = client.run(lambda: __import__("os").getpid())
    assert result.n_trials == 4
    assert len(seen) >= 2
    assert 0.6 < result.best_value <= 1.0
    assert len(hosts) == 2
    # the study is shared and resumable: here, in this process, two more trials
    more = optimize_hyperparameters(ts, base, n_trials=6, **kwargs)
    assert more.n_trials == 6
    assert more.trials[:4] == result.trials


def test_trials_run_on_a_scheduler_given_by_address(tmp_path) -> None:
    pytest.importorskip("distributed")
    from ewpolar.models.training.distributed import search_client
    from ewpolar.runner.local import local_cluster

    ts = gaussian_classes(400, 1.5, seed=7)
    base = replace(TINY, max_epochs=2, patience=2)
    with local_cluster(1) as cluster:  # TLS with temporary credentials, as --scheduler would be
        with search_client("dask", scheduler=cluster.scheduler_address,
                           security=cluster.security) as client:
            result = optimize_hyperparameters(
                ts, base, n_trials=2, client=client, storage=tmp_path / "s.journal",
                study_name="a", k=2, n_objective_folds=1, search_space=SPACE)
        assert cluster.scheduler_address.startswith("tls://")
    assert result.n_trials == 2
    with pytest.raises(InputError, match="needs a storage"):
        optimize_hyperparameters(ts, base, n_trials=1, client=object(), k=2,
                                 n_objective_folds=1, search_space=SPACE)
