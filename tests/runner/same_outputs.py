"""Comparison of two runs' outputs, shared by the runner, retry, resume and worker-loss tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ewpolar.core.histio import read_histograms


def assert_same_histograms(a: Path, b: Path, *, exact: bool = False) -> None:
    """Both ``histograms.root`` files hold the same, non-empty set of histograms with the same
    contents and variances: bit for bit with ``exact``, else to 1e-12 (another summation order)."""
    ha, hb = read_histograms(a), read_histograms(b)
    assert ha.keys() == hb.keys()
    assert ha, f"{a} holds no histogram"
    tol = {"rtol": 0.0, "atol": 0.0} if exact else {"rtol": 1e-12, "atol": 1e-12}
    for key in ha:
        np.testing.assert_allclose(ha[key].values, hb[key].values, err_msg=str(key), **tol)
        np.testing.assert_allclose(ha[key].variances, hb[key].variances, err_msg=str(key), **tol)
