"""Backwards elimination of inputs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.selection import (
    backward_elimination,
    save_elimination_plot,
)
from training_cases import TINY, gaussian_classes


@pytest.mark.parametrize("mode", ["shuffle", "retrain"])
def test_backward_elimination_drops_noise_and_keeps_the_signal(tmp_path, mode: str) -> None:
    ts = gaussian_classes(1500, 2.0, seed=9, n_noise=2)
    result = backward_elimination(ts, TINY, mode=mode, k=2, min_inputs=1, tolerance=0.02)
    assert sorted(result.dropped) == ["noise0", "noise1"]
    assert result.selected_inputs == ("signal",)
    assert [s.iteration for s in result.steps] == [0, 1, 2]
    assert result.steps[1].importances["signal"] > 0.2  # shuffling/removing it kills the AUC
    assert abs(result.steps[-1].auc - result.baseline_auc) < 0.02
    png = save_elimination_plot(result, tmp_path / "elimination.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backward_elimination_stops_beyond_the_tolerance() -> None:
    # both inputs carry separation: dropping either costs more than the tolerance
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 2, 1500)
    x = rng.normal(size=(1500, 2)) + 1.2 * labels[:, None]
    ts = TrainingSet(x, labels, np.ones(1500), np.arange(1500, dtype=np.uint64), ("a", "b"))
    result = backward_elimination(ts, TINY, mode="shuffle", k=2, tolerance=0.01)
    assert [s.accepted for s in result.steps] == [True, False]
    assert result.selected_inputs == ("a", "b")
    assert result.to_dict()["selected_inputs"] == ["a", "b"]


def test_hybrid_mode_retrains_only_the_least_important_candidates() -> None:
    ts = gaussian_classes(1500, 2.0, seed=9, n_noise=2)
    seen: list[tuple[str, ...]] = []
    result = backward_elimination(ts, TINY, mode="hybrid", k=2, tolerance=0.02,
                                  hybrid_candidates=1, on_cross_validation=seen.append)
    assert sorted(result.dropped) == ["noise0", "noise1"]
    assert result.selected_inputs == ("signal",)
    # one retraining per iteration (plus the start), then the full-fold check is impossible
    assert len(seen) == 3
    assert any(key.endswith("(retrained)") for key in result.steps[1].importances)
    assert result.final["method"] == "none"


def test_the_final_evaluation_uses_folds_not_used_for_the_choice() -> None:
    ts = gaussian_classes(1500, 2.0, seed=9, n_noise=1)
    result = backward_elimination(ts, TINY, mode="shuffle", k=3, n_folds=2, offset=1,
                                  tolerance=0.02)
    final = result.final
    assert final["method"] == "unused folds"
    assert final["folds"] == [0]  # folds 1 and 2 chose, fold 0 re-evaluates
    # shift 2 between unit Gaussians: AUC Φ(√2) = 0.921 with or without the noise input
    assert final["auc_selected"] == pytest.approx(0.921, abs=0.03)
    assert final["auc_all_inputs"] == pytest.approx(0.921, abs=0.03)
    assert result.to_dict()["final"] == final


def test_the_final_evaluation_uses_the_test_set() -> None:
    from ewpolar.models.training.crossval import holdout_mask

    ts = gaussian_classes(1500, 2.0, seed=9, n_noise=1)
    test = holdout_mask(ts.event, 0.3)
    result = backward_elimination(ts, TINY, k=2, test=test, tolerance=0.02, repeats=2)
    assert result.final["method"] == "test set"
    assert result.final["test_events"] == int(test.sum())
    assert result.final["auc_selected"] == pytest.approx(0.921, abs=0.03)
    assert result.repeats == 2


def test_acceptance_criteria() -> None:
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 2, 1500)
    x = rng.normal(size=(1500, 2)) + 1.2 * labels[:, None]
    ts = TrainingSet(x, labels, np.ones(1500), np.arange(1500, dtype=np.uint64), ("a", "b"))
    # dropping either input costs ≈ 0.05 of AUC (0.88 → 0.83): rejected by a relative
    # tolerance of 5 % of AUC − 0.5, accepted by 50 %; and by 1000 standard errors
    strict = backward_elimination(ts, TINY, k=2, criterion="relative", tolerance=0.05)
    loose = backward_elimination(ts, TINY, k=2, criterion="relative", tolerance=0.5)
    noisy = backward_elimination(ts, TINY, k=2, criterion="std", tolerance=1000.0)
    assert [s.accepted for s in strict.steps] == [True, False]
    assert loose.steps[1].accepted
    assert noisy.steps[1].accepted
    with pytest.raises(ValueError, match="criterion"):
        backward_elimination(ts, TINY, k=2, criterion="nope")


def test_patience_continues_after_a_rejected_step() -> None:
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 2, 1500)
    x = rng.normal(size=(1500, 3)) + np.array([1.2, 1.2, 0.0]) * labels[:, None]
    ts = TrainingSet(x, labels, np.ones(1500), np.arange(1500, dtype=np.uint64),
                     ("a", "b", "noise"))
    result = backward_elimination(ts, TINY, k=2, tolerance=0.01, patience=2)
    assert [s.accepted for s in result.steps] == [True, True, False]
    assert result.selected_inputs == ("a", "b")
    assert result.dropped == ["noise"]
