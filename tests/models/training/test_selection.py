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
