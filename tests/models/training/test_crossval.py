"""k-fold cross-validation: each fold scored by its held-out model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from ewpolar.models.training.crossval import cross_validate, holdout_mask
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


def test_offset_rotates_the_trained_folds() -> None:
    ts = gaussian_classes(900, 1.0, seed=5)
    cv = cross_validate(ts, TINY, k=3, folds=range(2), offset=2)
    assert cv.folds == (2, 0)
    assert cv.offset == 2
    folds = ts.folds(3)
    # fold identities stay event % k: fold 1 was not held out, so it has no scores
    assert np.isnan(cv.oof_scores[folds == 1]).all()
    assert not np.isnan(cv.oof_scores[folds != 1]).any()
    full = cross_validate(ts, TINY, k=3, offset=1)
    assert full.folds == (1, 2, 0)
    assert full.complete


def test_a_fixed_test_set_is_never_trained_on() -> None:
    ts = gaussian_classes(1200, 1.0, seed=6)
    test = holdout_mask(ts.event, 0.25)
    # a property of the event number alone, about the requested fraction, independent of folds
    np.testing.assert_array_equal(test, holdout_mask(ts.event[::-1], 0.25)[::-1])
    assert 0.2 < test.mean() < 0.3
    for f in range(3):
        assert 0.15 < test[ts.folds(3) == f].mean() < 0.35
    cv = cross_validate(ts, TINY, k=3, test=test)
    assert np.isnan(cv.oof_scores[test]).all()  # in no fold
    assert not np.isnan(cv.oof_scores[~test]).any()
    scores = np.mean([m.predict_proba(ts.features[test]) for m in cv.models], axis=0)
    assert cv.test_auc == pytest.approx(
        weighted_roc_auc(scores, ts.labels[test], ts.weights[test]))
    assert len(cv.test_fold_auc) == 3
    # unit shift between unit Gaussians: the optimal AUC is Φ(1/√2) = 0.760
    assert cv.test_auc == pytest.approx(0.760, abs=0.05)
    # training only on the non-test events: the same models as on that subset alone
    alone = cross_validate(ts.subset(~test), TINY, k=3)
    np.testing.assert_allclose(cv.fold_auc, alone.fold_auc)
