"""The results schema: results.json written and read back gives the same typed containers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from ewpolar.core.config import load_config
from ewpolar.core.errors import InputError
from ewpolar.core.results import (
    RESULTS_FILE,
    CouplingScan,
    FitResults,
    Impact,
    Interval,
    PolarizationFit,
    Significance,
    SsWWResults,
    UpperLimit,
    WHCategory,
    WHResults,
    read_results,
    write_results,
)
from ewpolar.stats.ssww import fit_ssww
from ewpolar.stats.wh import fit_wh
from fit_fixtures import ssww_histograms, wh_histograms


def _fit_results(poi: str = "mu") -> FitResults:
    return FitResults([poi, "lumi", "staterror_sr[0]"], np.array([1.25, -0.1, 1.0 / 3.0]),
                      np.array([0.5, 0.9, 0.02]), np.eye(3), 12.345678901234567, True,
                      {poi: Interval(poi, 1.25, 0.8, 1.9, 0.5, stat_low=0.85, stat_high=1.8)},
                      {poi: [Impact("lumi", -0.1, 0.9, 0.05, -0.04, 0.045, -0.036)]}, 1e-4)


def _ssww() -> SsWWResults:
    fits = {name: PolarizationFit(name, f"mu_{name}", _fit_results(f"mu_{name}"),
                                  Significance(2.5, 2.25, 0.006, 0.012),
                                  UpperLimit(2.0, 1.5, (0.8, 1.1, 1.5, 2.1, 2.9), 1 - 0.05),
                                  0.7 if name == "LL" else float("inf"),
                                  "generator cross section", workspace={"channels": []})
            for name in ("LL", "LX")}
    return SsWWResults(fits, {"kind": "poisson", "seed": 3, "mu_inject": {"LL": None, "LX": 2.0}},
                       140.0, 1.5, ["a note"])


def _wh() -> WHResults:
    values = np.linspace(-2, 2, 9)
    scan = CouplingScan("c_HWtilde", values, (values - 0.1) ** 2, 0.1, (-0.9, 1.1), (None, 2.0), 0.0)
    nan = float("nan")
    cats = {"stxs0_neg": WHCategory("stxs0_neg", 0.0, 75.0, "neg",
                                    Interval("mu_stxs0_neg", 1.0, 0.0, 1.4, 0.3, low_open=True,
                                             low_at_bound=0.5), -0.2, 0.05),
            "stxs0_pos": WHCategory("stxs0_pos", 400.0, 100000.0, "pos",
                                    Interval("mu_stxs0_pos", nan, nan, nan, nan), 0.2, 0.05)}
    return WHResults(cats, _fit_results(), scan, {"kind": "asimov", "seed": None, "c_true": 0.0,
                                                  "interference_scale": 1.0}, 140.0, seconds=2.0)


@pytest.mark.parametrize("make", [_ssww, _wh])
def test_round_trip_of_built_results(make, tmp_path: Path) -> None:
    results = make()
    path = write_results(results, tmp_path)
    assert path == tmp_path / RESULTS_FILE
    back = read_results(path)
    assert type(back) is type(results)
    assert back == results
    # the file reads the same from its folder, and writing it again gives the same bytes
    assert read_results(tmp_path) == results
    again = tmp_path / "again"
    again.mkdir()
    write_results(back, again)
    assert (again / RESULTS_FILE).read_bytes() == path.read_bytes()


def test_written_workspaces_and_what_is_not_stored(tmp_path: Path) -> None:
    results = _ssww()
    write_results(results, tmp_path)
    assert json.loads((tmp_path / "workspace_LL.json").read_text()) == {"channels": []}
    back = read_results(tmp_path)
    assert isinstance(back, SsWWResults)
    assert back.fits["LL"].workspace == {}  # the workspaces live in their own files
    assert np.array_equal(back.fits["LL"].fit.corr_mat, np.eye(3))  # stored as "correlation"
    assert back.fits["LL"].interval.mc_stat_fraction == pytest.approx(1 - (0.95 / 1.1) ** 2)
    assert back.notes == ["a note"]
    assert back.fits["LX"].limit_fb.observed == float("inf")
    assert back.fits["LL"].limit.level == pytest.approx(0.05)


@pytest.mark.parametrize("change", [
    lambda r: dataclasses.replace(r, luminosity_fb=139.0),
    lambda r: dataclasses.replace(r, fits={**r.fits, "LL": dataclasses.replace(
        r.fits["LL"], limit=UpperLimit(2.0, 1.5, (0.8, 1.1, 1.5, 2.1, 3.0)))}),
    lambda r: dataclasses.replace(r, fits={**r.fits, "LX": dataclasses.replace(
        r.fits["LX"], fit=dataclasses.replace(r.fits["LX"].fit, bestfit=np.array([1.25, -0.1, 0.3])))}),
    lambda r: dataclasses.replace(r, fits={"LL": r.fits["LL"]}),
])
def test_a_changed_number_is_a_different_result(change, tmp_path: Path) -> None:
    results = _ssww()
    write_results(change(results), tmp_path)
    assert read_results(tmp_path) != results


def test_a_changed_scan_is_a_different_result() -> None:
    results = _wh()
    other = dataclasses.replace(results, scan=dataclasses.replace(
        results.scan, interval_95=(-2.0, 2.0)))
    assert other != results
    assert dataclasses.replace(results, workspaces={"cp": {"x": 1}}) == results


def test_fit_outputs_round_trip(tmp_path: Path) -> None:
    ssww, wh = load_config("ssww"), load_config("wh")
    fitted = fit_ssww(ssww, ssww_histograms(ssww, tmp_path / "ssww.root"), fits=["LL"],
                      out=tmp_path / "ssww")
    assert read_results(tmp_path / "ssww") == fitted
    fitted_wh = fit_wh(wh, wh_histograms(wh, tmp_path / "wh.root"), scan_points=5, out=tmp_path / "wh")
    assert read_results(tmp_path / "wh" / RESULTS_FILE) == fitted_wh


def test_unreadable_results_are_one_line_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_results(tmp_path)
    (tmp_path / RESULTS_FILE).write_text(json.dumps({"channel": "zz"}))
    with pytest.raises(InputError, match="channel: expected 'ssww', 'wh'"):
        read_results(tmp_path)
    data = _ssww().to_dict()
    del data["significance_LL"]
    (tmp_path / RESULTS_FILE).write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        read_results(tmp_path)
    assert "significance_LL" in str(err.value)
    assert "\n" not in str(err.value)
