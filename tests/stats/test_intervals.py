"""Profile-likelihood intervals against a pyhf scan, Hesse determinism, empty-background bins,
CLs at a POI value and any pyhf workspace against pyhf."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pyhf
import pytest
from ewpolar.core.errors import InputError
from ewpolar.core.results import read_results
from ewpolar.stats.generic import fit_workspace
from ewpolar.stats.likelihood import cls_at, fit, interval_from_scan, significance
from ewpolar.stats.workspace import build_workspace, merge_plan, model_and_data


def _workspace(observed: list[float] | None = None):
    return build_workspace(
        {"sr": {"signal": {"yields": [3.0, 6.0, 4.0], "variances": [0.2, 0.4, 0.3], "normfactors": ["mu"]},
                "background": {"yields": [20.0, 9.0, 2.0], "variances": [1.0, 0.6, 0.3],
                               "variations": {"bkg_norm": ([22.0, 10.0, 2.1], [18.0, 8.0, 1.9])}}}},
        poi="mu", observations=None if observed is None else {"sr": observed},
        parameter_bounds={"mu": (-1.0, 20.0)})


def _pyhf_interval(model, data, lo: float, hi: float, n: int = 161) -> tuple[float, float]:
    """The 68 % CL interval from a fine pyhf profile scan (pyhf's own minimiser)."""
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    best = float(pyhf.infer.mle.fit(data, model, return_fitted_val=True)[1])
    grid = np.linspace(lo, hi, n)
    nll = np.array([float(pyhf.infer.mle.fixed_poi_fit(mu, data, model, return_fitted_val=True)[1])
                    for mu in grid])
    low, high = interval_from_scan(grid, nll - min(best, nll.min()), 1.0)
    return low, high


@pytest.mark.parametrize("observed", [None, [24.0, 18.0, 9.0]])
def test_profile_interval_agrees_with_pyhf_scan(observed) -> None:
    model, data = model_and_data(_workspace(observed))
    result = fit(model, data)
    iv = result.intervals["mu"]
    assert not iv.low_open
    assert not iv.high_open
    assert iv.error_high != pytest.approx(iv.error_low, rel=1e-3)  # asymmetric
    lo, hi = _pyhf_interval(model, data, iv.value - 2 * iv.hesse, iv.value + 2 * iv.hesse)
    width = hi - lo
    assert iv.low == pytest.approx(lo, abs=0.01 * width)
    assert iv.high == pytest.approx(hi, abs=0.01 * width)
    assert iv.error_low == pytest.approx(iv.value - lo, rel=0.01)
    assert iv.error_high == pytest.approx(hi - iv.value, rel=0.01)


def test_interval_reaching_the_bound_is_open_not_clipped() -> None:
    ws = build_workspace({"sr": {"signal": {"yields": [1.0], "normfactors": ["mu"]}, "bkg": [50.0]}},
                         poi="mu", staterror=False, observations={"sr": [51.0]})
    model, data = model_and_data(ws)
    iv = fit(model, data).intervals["mu"]
    assert iv.low_open
    assert iv.low == 0.0
    assert 0 <= iv.low_at_bound < 1
    # the curvature error of the unbounded parametrisation: σ ≈ √51 / 1 for one bin
    assert iv.hesse == pytest.approx(np.sqrt(51.0), rel=0.02)
    assert not iv.high_open
    assert iv.high > iv.value + iv.hesse * 0.9


def test_repeated_hesse_is_deterministic() -> None:
    from ewpolar.stats.likelihood import _Likelihood

    model, data = model_and_data(_workspace())
    first, second = fit(model, data), fit(model, data)
    assert np.array_equal(first.uncertainty, second.uncertainty)
    assert np.array_equal(first.corr_mat, second.corr_mat)
    # at one minimum, Hesse gives the same numbers however many fits ran in between
    # (MINUIT's own repeated hesse() does not: each call starts from the last errors)
    lik = _Likelihood(model, data)
    best = lik.minimize(lik.init, hesse=True)
    errors, corr, ok = lik.hesse(best)
    assert ok
    for mu in (0.0, 2.0, 5.0):
        lik.profile(mu)
    again, corr_again, _ = lik.hesse(best)
    assert np.array_equal(errors, again)
    assert np.array_equal(corr, corr_again)


def test_merge_plan() -> None:
    assert merge_plan([0.0, 2.0, 0.0, 0.0, 1.0, 0.0]).tolist() == [0, 0, 0, 1, 1, 1]
    assert merge_plan([1.0, 1.0]).tolist() == [0, 1]


@pytest.mark.parametrize("seed", range(8))
def test_no_infinite_significance_with_empty_background_bins(seed: int) -> None:
    """Small samples: some bins have signal but no background; Poisson data there is often > 0."""
    rng = np.random.default_rng(seed)
    bkg = rng.poisson(1.0, size=6).astype(float)  # a few MC events: zeros are common
    bkg[2] = 0.0
    bkg[5] = max(bkg[5], 1.0)
    sig = rng.uniform(0.5, 2.0, size=6)
    notes: list[str] = []
    ws = build_workspace({"sr": {"signal": {"yields": sig, "normfactors": ["mu"]},
                                 "background": {"yields": bkg, "variances": 0.3 * bkg}}},
                         poi="mu", notes=notes,
                         observations={"sr": rng.poisson(sig + bkg).astype(float) + np.eye(6)[2]})
    assert notes
    assert "merged" in notes[0]
    model, data = model_and_data(ws)
    assert model.config.channel_nbins["sr"] == int((bkg > 0).sum())
    sig_result = significance(model, data)
    assert np.isfinite(sig_result.observed)
    assert np.isfinite(sig_result.expected)


def test_cls_at_agrees_with_pyhf() -> None:
    model, data = model_and_data(_workspace([24.0, 18.0, 9.0]))
    ours = cls_at(model, data, [0.5, 1.5])
    for point in ours:
        obs, band = pyhf.infer.hypotest(point.mu, data, model, test_stat="qtilde",
                                        return_expected_set=True)
        assert point.observed == pytest.approx(float(obs), rel=2e-3)
        assert point.expected_band == pytest.approx([float(b) for b in band], rel=2e-3)


@pytest.fixture(scope="module")
def sbottom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    skhep_testdata = pytest.importorskip("skhep_testdata")
    archive = skhep_testdata.data_path("pyhf-ins1748602-probability-models.tar.gz")
    out = tmp_path_factory.mktemp("sbottom")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers()
                   if m.name.endswith(("RegionA/BkgOnly.json", "RegionA/patch.sbottom_1300_205_60.json"))]
        tar.extractall(out, members=members, filter="data")
    return next(out.rglob("RegionA"))


@pytest.mark.slow
def test_fit_workspace_reproduces_pyhf_cls_on_a_published_likelihood(sbottom: Path, tmp_path: Path) -> None:
    bkg, patch = sbottom / "BkgOnly.json", sbottom / "patch.sbottom_1300_205_60.json"
    results = fit_workspace(bkg, patches=[str(patch)], mu=[1.0], mc_stat=False, out=tmp_path)
    spec = json.loads(bkg.read_text())
    import jsonpatch

    ws = pyhf.Workspace(jsonpatch.apply_patch(spec, json.loads(patch.read_text())))
    model = ws.model()
    data = ws.data(model)
    obs, band = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
    point = results.cls[0]
    assert point.observed == pytest.approx(float(obs), rel=1e-3)
    assert point.expected_band == pytest.approx([float(b) for b in band], rel=1e-3)
    back = read_results(tmp_path)
    assert back == results
    assert (tmp_path / "workspace.json").is_file()


def test_fit_workspace_bad_patch_is_one_line_error(tmp_path: Path) -> None:
    ws_file = tmp_path / "ws.json"
    ws_file.write_text(json.dumps(dict(_workspace())))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"op": "remove", "path": "/channels/7"}]))
    with pytest.raises(InputError) as err:
        fit_workspace(ws_file, patches=[str(bad)])
    assert "\n" not in str(err.value)
    assert "bad.json" in str(err.value)


def test_cli_fit_workspace(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from ewpolar.cli import main

    ws_file = tmp_path / "ws.json"
    ws_file.write_text(json.dumps(dict(_workspace([24.0, 18.0, 9.0]))))
    result = CliRunner().invoke(main, ["fit", "--workspace", str(ws_file), "--mu", "1.5",
                                       "--out", str(tmp_path / "fit")])
    assert result.exit_code == 0, result.output
    assert "CLs(mu = 1.5)" in result.output
    back = read_results(tmp_path / "fit")
    model, data = model_and_data(_workspace([24.0, 18.0, 9.0]))
    obs = pyhf.infer.hypotest(1.5, data, model, test_stat="qtilde")
    assert back.cls[0].observed == pytest.approx(float(obs), rel=2e-3)
    assert back.limit.observed > 0
    assert back.interval.low < back.interval.value < back.interval.high


@pytest.mark.slow
def test_toy_limit_agrees_with_asymptotic_at_high_counts() -> None:
    from ewpolar.stats.likelihood import upper_limit, upper_limit_toys

    ws = build_workspace({"sr": {"signal": {"yields": [2.0, 3.0], "normfactors": ["mu"]},
                                 "bkg": [40.0, 30.0]}}, poi="mu", staterror=False,
                         observations={"sr": [40.0, 30.0]})
    model, data = model_and_data(ws)
    asym = upper_limit(model, data)
    toys = upper_limit_toys(model, data, ntoys=300, seed=1, asymptotic=asym)
    assert toys.observed == pytest.approx(asym.observed, rel=0.15)
    assert toys.expected == pytest.approx(asym.expected, rel=0.15)
