"""Training sets: fold assignment, parquet round trip, checks of the arrays."""

from __future__ import annotations

import numpy as np
import pytest
from ewpolar.core.errors import InputError
from ewpolar.models.training.data import TrainingSet, kfold_index
from training_cases import gaussian_classes


def test_kfold_index_is_event_modulo_k() -> None:
    event = np.array([0, 1, 2, 3, 4, 5, 2**63 + 7, 2**64 - 1], dtype=np.uint64)
    assert kfold_index(event, 5).tolist() == [int(e) % 5 for e in event.tolist()]
    assert kfold_index(np.array([-1, 6]), 5).tolist() == [4, 1]  # like ONNX Mod(fmod=0)
    with pytest.raises(ValueError, match="k >= 2"):
        kfold_index(event, 1)


def test_training_set_parquet_round_trip(tmp_path) -> None:
    ts = gaussian_classes(50, 1.0, seed=1, n_noise=2)
    path = ts.write_parquet(tmp_path / "set.parquet")
    back = TrainingSet.read_parquet(path)
    assert back.inputs == ts.inputs
    assert back.metadata == ts.metadata
    for attr in ("features", "labels", "weights", "event"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(ts, attr))
        assert getattr(back, attr).dtype == getattr(ts, attr).dtype
    picked = TrainingSet.read_parquet(path, inputs=["noise1", "signal"])
    np.testing.assert_array_equal(picked.features, ts.features[:, [2, 0]])
    with pytest.raises(InputError, match="lacks the input"):
        TrainingSet.read_parquet(path, inputs=["mjj"])
    with pytest.raises(InputError, match="not found"):
        TrainingSet.read_parquet(tmp_path / "absent.parquet")


def test_training_set_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        TrainingSet(np.zeros((2, 1)), [0, 2], [1, 1], np.arange(2), ("x",))
    with pytest.raises(ValueError, match="NaN"):
        TrainingSet(np.array([[0.0], [np.nan]]), [0, 1], [1, 1], np.arange(2), ("x",))
