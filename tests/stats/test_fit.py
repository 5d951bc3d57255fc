"""Fits: Asimov closure, injection, significance and limits against pyhf, the WH CP scan, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ewpolar.core.config import load_config
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.core.histio import Template
from ewpolar.core.results import SsWWResults, WHResults, read_results
from ewpolar.stats.likelihood import fit, interval_from_scan, significance, upper_limit
from ewpolar.stats.ssww import fit_ssww, sm_xsec_fb, ssww_workspace
from ewpolar.stats.wh import fit_wh
from ewpolar.stats.workspace import (
    HistogramSet,
    build_workspace,
    load_histograms,
    model_and_data,
    validate,
)
from fit_fixtures import ssww_histograms, wh_histograms

SSWW = load_config("ssww")
WH = load_config("wh")
SCAN_POINTS = 21  # a coarser grid than the config's keeps the WH tests quick


@pytest.fixture(scope="module")
def ssww_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssww_histograms(SSWW, tmp_path_factory.mktemp("ssww") / "histograms.root")


@pytest.fixture(scope="module")
def ssww_asimov(ssww_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[SsWWResults, Path]:
    out = tmp_path_factory.mktemp("fit")
    return fit_ssww(SSWW, ssww_file, out=out), out


@pytest.fixture(scope="module")
def wh_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wh_histograms(WH, tmp_path_factory.mktemp("wh") / "histograms.root")


@pytest.fixture(scope="module")
def wh_asimov(wh_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[WHResults, Path]:
    out = tmp_path_factory.mktemp("fit_wh")
    return fit_wh(WH, wh_file, scan_points=SCAN_POINTS, out=out), out


# --------------------------------------------------------------------------- ssWW


def test_asimov_fit_returns_sm(ssww_asimov: tuple[SsWWResults, Path]) -> None:
    results, _ = ssww_asimov
    assert set(results.fits) == {"LL", "LX"}
    for name, f in results.fits.items():
        assert f.poi == f"mu_{name}"
        assert f.fit.converged
        assert f.mu["value"] == pytest.approx(1.0, abs=1e-3)
        assert 0 < f.mu["hesse"] < 10
        assert 0 < f.mu["error_low"] <= 1.0
        assert 0 < f.mu["error_high"] < 10
        assert f.fit.ranking[f.poi]  # nuisance parameters ranked by their impact on the POI
        for label in f.fit.labels:  # nuisance parameters stay at their nominal values
            if label.startswith(("lumi", "scale", "pdf", "jes", "kfactor")):
                assert f.fit.value(label) == pytest.approx(0.0, abs=1e-2)
        assert f.significance.expected == pytest.approx(f.significance.observed, rel=1e-3)
        assert f.significance.expected > 0
        lim = f.limit
        assert list(lim.expected_band) == sorted(lim.expected_band)
        assert lim.expected == lim.expected_band[2]
        # Asimov data with the signal present: the observed limit lies above the median expected
        assert lim.observed > lim.expected
    # the LX fit (LL + LT) is more sensitive than the LL fit
    assert results.fits["LX"].significance.expected > results.fits["LL"].significance.expected


def test_results_json_contract(ssww_asimov: tuple[SsWWResults, Path]) -> None:
    _, out = ssww_asimov
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for name in ("LL", "LX"):
        assert {"value", "error_low", "error_high", "interval", "hesse", "low_open",
                "interval_without_mc_stat"} <= set(data[f"mu_{name}"])
        assert {"observed", "expected"} <= set(data[f"significance_{name}"])
        assert {"observed", "expected"} <= set(data[f"upper_limit_fb_{name}"])
        xsec = data["sm_xsec_fb"][name]
        assert xsec == pytest.approx(sm_xsec_fb(SSWW, name)[0])
        assert "generator cross section" in data["sm_xsec_definition"][name]
        assert data["fits"][name]["correlation"]["labels"] == list(data["fits"][name]["parameters"])
        assert data[f"upper_limit_fb_{name}"]["observed"] == pytest.approx(
            data[f"upper_limit_{name}"]["observed"] * xsec)
        ws = json.loads((out / f"workspace_{name}.json").read_text(encoding="utf-8"))
        validate(ws)
    assert data["sm_xsec_fb"]["LL"] == pytest.approx(SSWW.samples["ssww_LL"].xsec_fb)
    assert data["pseudo_data"]["kind"] == "asimov"
    assert any("Asimov" in n for n in data["notes"])
    assert not list(out.glob("*.tmp"))


@pytest.mark.parametrize("poi", ["mu_LL", "mu_LX"])
def test_injected_signal_is_recovered(ssww_file: Path, poi: str) -> None:
    name = poi.removeprefix("mu_")
    ws = ssww_workspace(SSWW, ssww_file, name, pseudo_data="poisson", seed=11, parameters={poi: 2.0})
    model, data = model_and_data(ws)
    best = fit(model, data)
    assert abs(best.value(poi) - 2.0) < best.error(poi)


def test_fit_ssww_injection_and_poisson_options(ssww_file: Path, tmp_path: Path) -> None:
    results = fit_ssww(SSWW, ssww_file, pseudo_data="poisson", seed=7, mu_inject={"LX": 2.0},
                       fits=["LX"])
    assert set(results.fits) == {"LX"}
    lx = results.fits["LX"]
    assert lx.mu["interval"][0] - lx.mu["error_low"] < 2.0 < lx.mu["interval"][1] + lx.mu["error_high"]
    assert results.pseudo_data == {"kind": "poisson", "seed": 7, "mu_inject": {"LX": 2.0}}
    assert lx.significance.observed != pytest.approx(lx.significance.expected, rel=1e-3)


def test_statistics_agree_with_pyhf() -> None:
    ws = build_workspace(
        {"sr": {"signal": {"yields": [6.0, 9.0, 4.0], "variances": [0.2, 0.3, 0.2], "normfactors": ["mu"]},
                "background": {"yields": [40.0, 30.0, 10.0], "variances": [2.0, 2.0, 1.0],
                               "variations": {"bkg_shape": ([44.0, 30.0, 9.0], [36.0, 30.0, 11.0])}}}},
        poi="mu", observations={"sr": [44.0, 41.0, 12.0]})
    model, data = model_and_data(ws)
    ours, ref = significance(model, data), significance(model, data, engine="pyhf")
    assert ours.observed == pytest.approx(ref.observed, rel=1e-3)
    assert ours.expected == pytest.approx(ref.expected, rel=1e-3)
    ours_ul, ref_ul = upper_limit(model, data), upper_limit(model, data, engine="pyhf")
    assert ours_ul.observed == pytest.approx(ref_ul.observed, rel=5e-3)
    assert ours_ul.expected_band == pytest.approx(ref_ul.expected_band, rel=5e-3)


# --------------------------------------------------------------------------- WH


def test_wh_scan_minimum_at_sm(wh_asimov: tuple[WHResults, Path]) -> None:
    results, out = wh_asimov
    scan = results.scan
    assert scan.values.size == SCAN_POINTS
    assert scan.values[np.argmin(scan.twice_delta_nll)] == pytest.approx(0.0, abs=1e-12)
    assert scan.best_fit == pytest.approx(0.0, abs=1e-3)
    lo68, hi68 = scan.interval_68
    lo95, hi95 = scan.interval_95
    assert lo95 < lo68 < 0 < hi68 < hi95
    for cat in results.categories.values():
        assert cat.mu == pytest.approx(1.0, abs=1e-3)
        assert cat.interval.low < 1.0 < cat.interval.high
        assert results.fit.ranking[f"mu_{cat.name}"]  # impacts on every category's mu
    assert scan.stat_interval_95 is not None
    # the CP-odd interference changes sign between the Q_l cos(delta+) halves
    assert results.categories["stxs2_neg"].a == pytest.approx(-results.categories["stxs2_pos"].a)
    assert results.categories["stxs2_pos"].a > 0
    written = read_results(out)
    assert isinstance(written, WHResults)
    assert set(written.categories) == set(results.categories)
    assert written.scan.interval_68 == (lo68, hi68)
    assert written.scan.twice_delta_nll.size == SCAN_POINTS
    for name in ("workspace_wh_categories.json", "workspace_wh_cp.json"):
        validate(json.loads((out / name).read_text(encoding="utf-8")))


def test_wh_interval_shrinks_with_larger_interference(wh_asimov: tuple[WHResults, Path],
                                                      tmp_path: Path) -> None:
    base = wh_asimov[0].scan
    stronger = fit_wh(WH, wh_histograms(WH, tmp_path / "h.root", interference=2.0),
                      scan_points=SCAN_POINTS).scan
    width = {k: (s.interval_68[1] - s.interval_68[0]) for k, s in {"base": base, "x2": stronger}.items()}
    assert width["x2"] < 0.75 * width["base"]


def test_wh_scan_finds_true_coupling(wh_file: Path) -> None:
    scan = fit_wh(WH, wh_file, c_true=0.6, scan_points=SCAN_POINTS).scan
    assert scan.best_fit == pytest.approx(0.6, abs=0.05)
    assert scan.interval_68[0] < 0.6 < scan.interval_68[1]


def test_interval_from_scan() -> None:
    c = np.linspace(-2, 2, 41)
    t = (c - 0.3) ** 2 / 0.25  # σ = 0.5 around 0.3
    lo, hi = interval_from_scan(c, t, 1.0)
    assert (lo, hi) == pytest.approx((-0.2, 0.8), abs=1e-9)  # exact for a parabola
    lo, hi = interval_from_scan(c, (c - 1.9) ** 2, 1.0)
    assert hi is None
    assert lo == pytest.approx(0.9, abs=1e-9)


# --------------------------------------------------------------------------- bad input


def test_missing_histograms_file_is_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.root"
    with pytest.raises(InputError) as err:
        fit_ssww(SSWW, missing)
    assert str(missing) in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_template_is_one_line_error(tmp_path: Path) -> None:
    path = ssww_histograms(SSWW, tmp_path / "h.root", skip=[("ssww_TT", "template_lx")])
    with pytest.raises(InputError) as err:
        fit_ssww(SSWW, path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert "'ssww_TT__signal__nominal__template_lx'" in msg


def test_partial_run_names_the_regions_the_fit_needs(ssww_file: Path) -> None:
    full = load_histograms(ssww_file)
    partial = HistogramSet({k: v for k, v in full.histograms.items() if k.region == "signal"},
                           "partial/histograms.root")
    with pytest.raises(InputError) as err:
        fit_ssww(SSWW, partial)
    msg = str(err.value)
    assert "\n" not in msg
    assert "needs the regions signal, wz_cr" in msg
    assert "missing" in msg


def test_wrong_channel_config_is_config_error(ssww_file: Path) -> None:
    with pytest.raises(ConfigError, match="'ssww' config"):
        fit_wh(SSWW, ssww_file)


def test_misaligned_stxs_edges_is_input_error(tmp_path: Path) -> None:
    path = wh_histograms(WH, tmp_path / "h.root", ptw_edges=[0, 100, 200, 300, 400, 600, 2000])
    with pytest.raises(InputError, match="STXS edge 75 GeV is not a p_T\\^W histogram edge"):
        fit_wh(WH, path, scan_points=5)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_small_sample_significance_is_finite(ssww_file: Path, seed: int) -> None:
    """A template whose backgrounds are empty in some bins (a small MC sample): with Poisson
    pseudo-data such bins hold events; merged, they never make the significance infinite."""
    full = load_histograms(ssww_file)
    hollow = {}
    for key, t in full.histograms.items():
        # everything but the POI's sample (ssww_LL) is background at mu_LL = 0
        if key.region == "signal" and key.dataset != "ssww_LL" and key.observable == "template_ll":
            values, variances = t.values.copy(), t.variances.copy()
            values[-1, :] = 0.0  # the most signal-like score column: no background MC event
            variances[-1, :] = 0.0
            t = Template(values, variances, t.edges)
        hollow[key] = t
    results = fit_ssww(SSWW, HistogramSet(hollow, "small.root"), fits=["LL"], pseudo_data="poisson",
                       seed=seed, mu_inject=5.0)
    sig = results.fits["LL"].significance
    assert np.isfinite(sig.observed)
    assert np.isfinite(sig.expected)
    assert any("with signal but no expected background" in n for n in results.notes)
