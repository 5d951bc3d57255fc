"""The nuisance-parameter ranking agrees with cabinetry's, an independent implementation.

The project's engine shares its refits between the POI's interval, the ranking and
the limits; cabinetry fits afresh for each. Both fix each parameter at its best fit
± its pre-fit and post-fit width and refit; the impacts agree to the minimisers'
tolerances (a few 1e-3 on a POI whose uncertainty is about 1).
"""

from __future__ import annotations

import logging

import numpy as np
import pyhf
import pytest
from ewpolar.stats.likelihood import ranking

cabinetry = pytest.importorskip("cabinetry")

SPEC = {
    "channels": [{"name": "sr", "samples": [
        {"name": "sig", "data": [5.0, 10.0, 8.0], "modifiers": [
            {"name": "mu", "type": "normfactor", "data": None},
            {"name": "lumi", "type": "normsys", "data": {"hi": 1.02, "lo": 0.98}}]},
        {"name": "bkg", "data": [50.0, 40.0, 30.0], "modifiers": [
            {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.10, "lo": 0.92}},
            {"name": "jes", "type": "histosys",
             "data": {"hi_data": [53.0, 41.0, 29.0], "lo_data": [47.0, 39.5, 31.5]}},
            {"name": "lumi", "type": "normsys", "data": {"hi": 1.02, "lo": 0.98}}]}]}],
    "observations": [{"name": "sr", "data": [58.0, 52.0, 40.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}


def test_impacts_agree_with_cabinetry(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    ws = pyhf.Workspace(SPEC)
    model = ws.model()
    data = ws.data(model)
    ours = {imp.parameter: imp for imp in ranking(model, data)["mu"]}
    theirs = cabinetry.fit.ranking(model, data, fit_results=cabinetry.fit.fit(model, data))
    assert set(ours) == set(theirs.labels) == {"lumi", "bkg_norm", "jes"}
    for i, name in enumerate(theirs.labels):
        mine = ours[name]
        for field in ("prefit_up", "prefit_down", "postfit_up", "postfit_down"):
            expected = float(getattr(theirs, field)[i])
            assert getattr(mine, field) == pytest.approx(expected, abs=5e-3, rel=2e-2), (name, field)
    # the ranking order (largest post-fit impact first) is the same
    size = {n: max(abs(ours[n].postfit_up), abs(ours[n].postfit_down)) for n in ours}
    theirs_size = dict(zip(theirs.labels, np.maximum(np.abs(theirs.postfit_up),
                                                     np.abs(theirs.postfit_down)), strict=True))
    assert sorted(size, key=size.get) == sorted(theirs_size, key=theirs_size.get)
