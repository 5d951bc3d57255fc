"""The processors histogram the features of :mod:`ewpolar.models.features`: the same events
and numbers as the feature tables of the estimators."""

from __future__ import annotations

import hist
import numpy as np
from ewpolar.models.features import build_features, read_branches
from ewpolar.processors.wh import WHProcessor


def test_wh_histograms_are_the_feature_table_histogrammed(wh_config, wh_fileset, events_of):
    path = next(iter(wh_fileset["wh"]["files"]))
    meta = {"dataset": "wh", **wh_fileset["wh"]["metadata"]}
    out = WHProcessor(wh_config, regions=["signal"]).process(events_of(path, meta))
    names = ("q_cos_delta_plus", "ptw", "mbb", "mt_tot")
    table = build_features(read_branches([path]), wh_config, region="signal", names=names)
    assert len(table) > 100
    weight = table.weights["genWeight"] * (meta["xsec_fb"] * wh_config.luminosity_fb
                                           / meta["sumw"])
    for name, h in out["hists"].items():
        got = h[{"dataset": "wh", "region": "signal", "systematic": "nominal"}]
        want = hist.Hist(*got.axes, storage=hist.storage.Weight())
        want.fill(*(table.column(ax.name) for ax in got.axes), weight=weight)
        np.testing.assert_allclose(got.values(flow=True), want.values(flow=True), rtol=1e-9,
                                   err_msg=name)
        np.testing.assert_allclose(got.variances(flow=True), want.variances(flow=True),
                                   rtol=1e-9, err_msg=name)
