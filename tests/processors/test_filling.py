"""The processors' histogram filler against ``hist.Hist.fill``, bin by bin."""

from __future__ import annotations

import hist
import numpy as np
import pytest
from ewpolar.processors.filling import HistFiller, HistSpec, category_axes

REGIONS = ["signal", "control"]
X_EDGES = (10, 0.0, 1.0)  # regular: 0.1 wide bins
M_EDGES = [200.0, 500.0, 750.0, 1000.0, 1500.0, 3000.0]  # variable


def _axes() -> dict[str, hist.axis.AxesMixin]:
    return {
        "x": hist.axis.Regular(*X_EDGES, name="x"),
        "m": hist.axis.Variable(M_EDGES, name="m"),
        "c": hist.axis.Regular(4, -1.0, 1.0, name="c"),
    }


SPECS = [HistSpec("x", ("x",)), HistSpec("m", ("m",)), HistSpec("x_m", ("x", "m")),
         HistSpec("c", ("c",)), HistSpec("c_m", ("c", "m"))]


def _book() -> dict[str, hist.Hist]:
    axes = _axes()
    return {spec.name: hist.Hist(*category_axes(REGIONS), *(axes[k] for k in spec.axes),
                                 storage=hist.storage.Weight(), name=spec.name)
            for spec in SPECS}


def _features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Values in range, below and above it, exactly on every bin edge, and NaN."""
    x_edges = np.linspace(X_EDGES[1], X_EDGES[2], X_EDGES[0] + 1)
    x_special = [*x_edges, *np.nextafter(x_edges, -np.inf), -np.inf, np.inf, np.nan]
    m_special = [*M_EDGES, *np.nextafter(M_EDGES, np.inf), np.nan, 1e9, -1.0]
    size = n + max(len(x_special), len(m_special))
    x = rng.permutation(np.concatenate([x_special, rng.uniform(-0.3, 1.3, size - len(x_special))]))
    m = rng.permutation(np.concatenate([m_special,
                                        rng.uniform(100.0, 4000.0, size - len(m_special))]))
    # two entries per event (e.g. one per lepton), on the edges too
    c = rng.choice(np.concatenate([rng.uniform(-1.2, 1.2, 50), np.linspace(-1.0, 1.0, 5),
                                   [np.nan]]), size=(size, 2))
    return {"x": x, "m": m, "c": c}


def _weights(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    w = rng.normal(1.0, 0.7, n) * rng.choice([1e-3, 1.0, 250.0], n)  # negative ones too
    return {"nominal": w, "lumi_up": 1.017 * w, "lumi_down": 0.983 * w,
            "scale_up": w * rng.uniform(0.8, 1.3, n)}


def _fill_with_hist(h: hist.Hist, spec: HistSpec, dataset: str, region: str,
                    features: dict[str, np.ndarray], cat_weights: dict[str, np.ndarray]) -> None:
    """What the filler must give: ``Hist.fill`` with every entry, NaN entries left out."""
    values = [features[k] for k in spec.axes]
    n = len(values[0])
    width = max(v.shape[1] if v.ndim == 2 else 1 for v in values)
    cols = [np.broadcast_to(v.reshape(n, -1), (n, width)).reshape(-1) for v in values]
    ok = np.logical_and.reduce([~np.isnan(c) for c in cols])
    for cat, w in cat_weights.items():
        if not ok.any():
            continue
        weight = np.repeat(w, width)[ok]
        h.fill(dataset=dataset, region=region, systematic=cat,
               **{k: c[ok] for k, c in zip(spec.axes, cols, strict=True)}, weight=weight)


def _assert_same(got: hist.Hist, want: hist.Hist) -> None:
    for a, b in zip(got.axes, want.axes, strict=True):
        assert list(a) == list(b) if isinstance(a, hist.axis.StrCategory) else a == b
    np.testing.assert_array_equal(got.values(flow=True), want.values(flow=True))
    np.testing.assert_array_equal(got.variances(flow=True), want.variances(flow=True))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_filler_gives_the_bins_of_hist_fill(seed):
    rng = np.random.default_rng(seed)
    got, want = _book(), _book()
    filler = HistFiller(got, SPECS, REGIONS, "sample")
    # as in a chunk: each region once with the weight categories, then a shape
    # variation (its own features) of one region
    fills = [("signal", _features(rng, 400), None), ("control", _features(rng, 300), None),
             ("signal", _features(rng, 200), "jes_up")]
    for region, features, shape_category in fills:
        n = len(features["x"])
        cat_weights = _weights(rng, n)
        if shape_category is not None:
            cat_weights = {shape_category: cat_weights["nominal"]}
        filler.fill(region, features, cat_weights)
        for spec in SPECS:
            _fill_with_hist(want[spec.name], spec, "sample", region, features, cat_weights)
    filler.finish()
    for spec in SPECS:
        _assert_same(got[spec.name], want[spec.name])
    assert list(filler.categories) == ["nominal", "lumi_up", "lumi_down", "scale_up", "jes_up"]
    # the flow bins and the edges are exercised: otherwise this test proves little
    x = want["x"][{"dataset": "sample", "region": "signal", "systematic": "nominal"}]
    flow = x.values(flow=True)
    assert flow[0] != 0
    assert flow[-1] != 0


def test_filler_skips_empty_and_all_nan_fills_as_hist_fill_does():
    got, want = _book(), _book()
    filler = HistFiller(got, SPECS, REGIONS, "sample")
    empty = {"x": np.zeros(0), "m": np.zeros(0), "c": np.zeros((0, 2))}
    filler.fill("signal", empty, {"nominal": np.zeros(0)})
    nan = {"x": np.full(3, np.nan), "m": np.array([300.0, 600.0, 2000.0]),
           "c": np.full((3, 2), 0.5)}
    weights = {"nominal": np.array([1.0, 2.0, -0.5])}
    filler.fill("control", nan, weights)
    for spec in SPECS:
        _fill_with_hist(want[spec.name], spec, "sample", "control", nan, weights)
    filler.finish()
    for spec in SPECS:
        _assert_same(got[spec.name], want[spec.name])
    # x is NaN everywhere: the histograms of x get no dataset, the others one entry per event
    assert list(got["x"].axes["dataset"]) == []
    assert got["m"].sum(flow=True).value == pytest.approx(2.5)
