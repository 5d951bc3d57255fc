"""SBI likelihoods: the unbinned Asimov scan of the exact ratio is the binned one."""

from __future__ import annotations

import numpy as np
import pytest
from ewpolar.models.sbi.information import (
    binned_asimov_scan,
    binned_fisher_information,
    unbinned_asimov_scan,
)


def test_unbinned_likelihood_with_the_exact_ratio_equals_the_binned_one() -> None:
    # a discrete observable: the unbinned likelihood is the binned one
    rng = np.random.default_rng(5)
    category = rng.integers(0, 4, 3000)
    sm = rng.uniform(0.5, 1.5, 3000)
    int_ = sm * np.array([-0.4, -0.1, 0.2, 0.5])[category]
    quad = sm * np.array([0.2, 0.1, 0.1, 0.3])[category]
    values = np.linspace(-1, 1, 21)
    hist = [np.bincount(category, weights=w, minlength=4) for w in (sm, int_, quad)]
    binned = binned_asimov_scan(*hist, values)
    ratio_bins = np.stack([(hist[0] + c * hist[1] + c * c * hist[2]) / hist[0] for c in values])
    nu = np.array([(hist[0] + c * hist[1] + c * c * hist[2]).sum() for c in values])
    log_r = np.log(ratio_bins[:, category] * hist[0].sum() / nu[:, None])
    unbinned = unbinned_asimov_scan(log_r, sm, nu)
    np.testing.assert_allclose(unbinned, binned, rtol=1e-9, atol=1e-9)
    # curvature at 0 is the Fisher information (shape + rate)
    info = binned_fisher_information(hist[0], hist[1]) + hist[1].sum() ** 2 / hist[0].sum()
    h = values[1] - values[0]
    assert (binned[11] + binned[9] - 2 * binned[10]) / h**2 == pytest.approx(
        2 * info, rel=0.05)
