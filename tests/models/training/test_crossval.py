"""k-fold cross-validation: each fold scored by its held-out model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from ewpolar.models.training.crossval import cross_validate
from ewpolar.models.training.export import (
    export_cross_validation,
)
from ewpolar.models.training.metrics import weighted_roc_auc
from training_cases import TINY, gaussian_classes


def test_cross_validation_scores_each_fold_with_its_held_out_model() -> None:
    ts = gaussian_classes(900, 1.0, seed=5)
    cv = cross_validate(ts, TINY, k=3)
    folds = ts.folds(3)
    assert cv.complete
    assert not np.isnan(cv.oof_scores).any()
    for f in range(3):
        held = folds == f
        expected = cv.model_for_fold(f).predict_proba(ts.features[held])
        np.testing.assert_array_equal(cv.oof_scores[held], expected)
        assert cv.fold_auc[f] == pytest.approx(
            weighted_roc_auc(expected, ts.labels[held], ts.weights[held])
        )
    partial = cross_validate(ts, TINY, k=3, folds=[1])
    assert not partial.complete
    assert np.isnan(partial.oof_scores[folds != 1]).all()
    with pytest.raises(ValueError, match="export needs all"):
        export_cross_validation(partial, "unused.onnx")
