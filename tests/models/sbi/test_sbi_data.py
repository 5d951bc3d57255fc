"""SBI joint quantities: the joint score and likelihood ratio from the WH CP weights."""

from __future__ import annotations

import numpy as np
import pytest
from ewpolar.core.config import load_config
from ewpolar.generator import simulate
from ewpolar.models.sbi.data import cp_weight, joint_likelihood_ratio, joint_score


@pytest.fixture(scope="module")
def wh_weights():
    branches = simulate(load_config("wh"), "wh", 5000, np.random.default_rng(4))
    return tuple(np.asarray(branches[f"CPWeight_{k}"], dtype=np.float64)
                 for k in ("sm", "int", "quad"))


@pytest.mark.parametrize("c", [-0.7, 0.0, 0.3, 1.5])
def test_joint_score_is_the_derivative_of_the_normalised_weight(wh_weights, c) -> None:
    sm, int_, quad = wh_weights
    assert np.all(cp_weight(sm, int_, quad, c) > 0)

    def log_density(cc: float) -> np.ndarray:
        w = cp_weight(sm, int_, quad, cc)
        return np.log(w / w.sum())

    h = 1e-5
    finite_difference = (log_density(c + h) - log_density(c - h)) / (2 * h)
    np.testing.assert_allclose(joint_score(sm, int_, quad, c), finite_difference, atol=1e-7)


@pytest.mark.parametrize(("c0", "c1"), [(0.5, 0.0), (-1.0, 0.4), (0.2, 0.2)])
def test_joint_ratio_from_the_weights(wh_weights, c0, c1) -> None:
    sm, int_, quad = wh_weights
    w0 = sm + c0 * int_ + c0**2 * quad
    w1 = sm + c1 * int_ + c1**2 * quad
    expected = (w0 / w0.sum()) / (w1 / w1.sum())
    r = joint_likelihood_ratio(sm, int_, quad, c0, c1)
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    # E_{c1}[r] = 1: the ratio of normalised densities
    assert np.sum(r * w1 / w1.sum()) == pytest.approx(1.0, rel=1e-12)
    # the joint score is the derivative of ln r in c0
    h = 1e-5
    d = (np.log(joint_likelihood_ratio(sm, int_, quad, c0 + h, c1))
         - np.log(joint_likelihood_ratio(sm, int_, quad, c0 - h, c1))) / (2 * h)
    np.testing.assert_allclose(joint_score(sm, int_, quad, c0), d, atol=1e-7)
