"""Workspace building: schema validity, modifiers from the config, unrolling, pseudo-data, WH models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyhf
import pytest
from ewpolar.core.config import load_config
from ewpolar.core.errors import InputError
from ewpolar.core.histio import HistKey, read_histograms
from ewpolar.stats.likelihood import significance
from ewpolar.stats.ssww import ssww_workspace
from ewpolar.stats.wh import (
    stxs_categories,
    wh_category_workspace,
    wh_cp_workspace,
    wh_observations,
)
from ewpolar.stats.workspace import (
    build_workspace,
    config_modifier_names,
    load_histograms,
    model_and_data,
    modifier_names,
    split_variation,
    unroll,
    validate,
    with_pseudo_data,
)
from fit_fixtures import ssww_histograms, wh_histograms

SSWW = load_config("ssww")
WH = load_config("wh")


@pytest.fixture(scope="module")
def ssww_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssww_histograms(SSWW, tmp_path_factory.mktemp("ssww") / "histograms.root")


@pytest.fixture(scope="module")
def wh_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wh_histograms(WH, tmp_path_factory.mktemp("wh") / "histograms.root")


def _channel(ws: dict, name: str) -> dict:
    return next(c for c in ws["channels"] if c["name"] == name)


def _sample(ws: dict, channel: str, sample: str) -> dict:
    return next(s for s in _channel(ws, channel)["samples"] if s["name"] == sample)


# --------------------------------------------------------------------------- generic builder


@pytest.mark.parametrize(("s", "b"), [(10.0, 50.0), (5.0, 1.0), (30.0, 400.0)])
def test_counting_experiment_significance_matches_asimov_formula(s: float, b: float) -> None:
    ws = build_workspace({"sr": {"signal": {"yields": [s], "normfactors": ["mu"]}, "background": [b]}},
                         poi="mu", staterror=False)
    model, data = model_and_data(ws)
    assert data == pytest.approx([s + b])  # Asimov at mu = 1
    z_asimov = np.sqrt(2 * ((s + b) * np.log(1 + s / b) - s))
    sig = significance(model, data)
    assert sig.expected == pytest.approx(z_asimov, rel=0.01)
    assert sig.observed == pytest.approx(z_asimov, rel=0.01)


def test_generic_workspace_validates_and_has_requested_modifiers() -> None:
    ws = build_workspace(
        {"sr": {"sig": {"yields": [3.0, 4.0], "variances": [0.1, 0.2], "normfactors": ["mu"],
                        "variations": {"jes": ([3.3, 4.0], [2.7, 4.0])}},
                "bkg": {"yields": [20.0, 10.0], "variances": [1.0, 0.5],
                        "normsys": {"lumi": (1.02, 0.98)}}}},
        poi="mu")
    validate(ws)
    assert modifier_names(ws, types=["normfactor"]) == {"mu"}
    assert modifier_names(ws, types=["staterror"]) == {"staterror_sr"}
    assert modifier_names(ws, types=["normsys"]) == {"lumi", "jes"}
    assert "jes" in modifier_names(ws, types=["histosys"])  # only the first bin moves
    with pytest.raises(pyhf.exceptions.InvalidSpecification):
        validate({**ws, "channels": [{"name": "sr"}]})  # a channel without samples


def test_zero_samples_and_empty_bins_are_dropped() -> None:
    ws = build_workspace({"sr": {"sig": {"yields": [1.0, 0.0, 2.0], "normfactors": ["mu"]},
                                 "bkg": [5.0, 0.0, 1.0], "empty": [0.0, 0.0, 0.0]}},
                         poi="mu", staterror=False)
    ch = _channel(ws, "sr")
    assert [s["name"] for s in ch["samples"]] == ["sig", "bkg"]
    assert _sample(ws, "sr", "bkg")["data"] == [5.0, 1.0]
    assert next(o for o in ws["observations"] if o["name"] == "sr")["data"] == [6.0, 3.0]


def test_variation_split_rule() -> None:
    nom = np.array([10.0, 20.0, 30.0])
    # pure normalisation: normsys only
    norm, shape = split_variation(nom, nom * 1.05, nom * 0.97)
    assert norm == pytest.approx((1.05, 0.97))
    assert shape is None
    # one-sided: symmetrised around nominal
    norm, shape = split_variation(nom, nom * 1.1, None)
    assert norm == pytest.approx((1.1, 0.9))
    assert shape is None
    # a shape change above the threshold: histosys normalised to the nominal total
    up = nom * np.array([1.2, 1.0, 0.9])
    norm, shape = split_variation(nom, up, None)
    assert shape is not None
    assert shape[0].sum() == pytest.approx(nom.sum())
    assert shape[1].sum() == pytest.approx(nom.sum())
    # no effect at all: nothing
    assert split_variation(nom, nom, nom) == (None, None)


def test_unroll_is_row_major() -> None:
    values = np.arange(12.0).reshape(3, 4)  # (n_x, n_y)
    flat = unroll(values)
    assert flat[1 * 4 + 2] == values[1, 2]


# --------------------------------------------------------------------------- ssWW


@pytest.mark.parametrize("fit_name", ["LL", "LX"])
def test_ssww_workspace_structure(ssww_file: Path, fit_name: str) -> None:
    ws = ssww_workspace(SSWW, ssww_file, fit_name)
    validate(ws)
    assert {c["name"] for c in ws["channels"]} == {"signal", *SSWW.fit.control_regions}
    systematic = modifier_names(ws, types=["normsys", "histosys"])
    assert systematic == config_modifier_names(SSWW) == {"lumi", "scale", "pdf", "jes", "kfactor"}
    floating = {"LL": "mu_TX", "LX": "mu_TT"}[fit_name]
    assert modifier_names(ws, types=["normfactor"]) == {f"mu_{fit_name}", floating, "mu_wz",
                                                        "mu_ttbar_nonprompt"}
    assert modifier_names(ws, types=["staterror"]) == {f"staterror_{c}" for c in
                                                       ["signal", *SSWW.fit.control_regions]}
    assert ws["measurements"][0]["config"]["poi"] == f"mu_{fit_name}"
    # lumi on every MC sample, kfactor only on the signal
    for ch in ws["channels"]:
        for s in ch["samples"]:
            names = {m["name"] for m in s["modifiers"]}
            assert "lumi" in names
            assert ("kfactor" in names) == (SSWW.samples[s["name"]].kind == "signal")
    poi_samples = SSWW.fit.fits[fit_name].poi_samples
    for s in _channel(ws, "signal")["samples"]:
        nfs = {m["name"] for m in s["modifiers"] if m["type"] == "normfactor"}
        assert (f"mu_{fit_name}" in nfs) == (s["name"] in poi_samples)


def test_ssww_signal_channel_is_unrolled_template(ssww_file: Path) -> None:
    ws = ssww_workspace(SSWW, ssww_file, "LL")
    hists = read_histograms(ssww_file)
    template = hists[HistKey("ssww_LL", "signal", "nominal", "template_ll")].values
    assert template.shape == (SSWW.templates["ll"].x_bins, SSWW.templates["ll"].y_bins)
    assert _sample(ws, "signal", "ssww_LL")["data"] == pytest.approx(template.reshape(-1).tolist())
    lumi = next(m for m in _sample(ws, "signal", "wz")["modifiers"] if m["name"] == "lumi")
    size = SSWW.systematics["luminosity"].size
    assert lumi["data"] == pytest.approx({"hi": 1 + size, "lo": 1 - size})


def test_scale_envelope_in_all_mode(tmp_path: Path) -> None:
    systs = dict(SSWW.systematics)
    systs["scale"] = systs["scale"].model_copy(update={"mode": "all"})
    cfg = SSWW.model_copy(update={"systematics": systs})
    path = ssww_histograms(cfg, tmp_path / "h.root", scale_members=True)
    ws = ssww_workspace(cfg, path, "LL")
    hs = load_histograms(path)
    nom = hs.nominal("wz", "signal", "template_ll").values
    # the 7-point envelope: members 2 and 6 (anti-correlated muR, muF) are left out
    members = [hs.variation("wz", "signal", f"scale_{k}", "template_ll").values for k in (0, 1, 3, 4, 5, 7, 8)]
    env_up = np.max([nom, *members], axis=0).sum() / nom.sum()
    env_down = np.min([nom, *members], axis=0).sum() / nom.sum()
    scale = next(m for m in _sample(ws, "signal", "wz")["modifiers"]
                 if m["name"] == "scale" and m["type"] == "normsys")
    assert scale["data"] == pytest.approx({"hi": env_up, "lo": env_down})


def test_variations_beyond_the_config_become_modifiers(ssww_file: Path) -> None:
    """An input profile's own categories (here jer_up/jer_down on wz) enter the fit as
    modifiers of their own: the systematic model is what the histograms hold."""
    from dataclasses import replace

    hists = dict(read_histograms(ssww_file))
    for key, template in list(hists.items()):
        if key.dataset == "wz" and key.systematic == "nominal":
            tilt = np.linspace(0.9, 1.1, template.values.size).reshape(template.values.shape)
            for side, factor in (("jer_up", tilt), ("jer_down", 2 - tilt)):
                hists[replace(key, systematic=side)] = replace(template,
                                                              values=template.values * factor)
    ws = ssww_workspace(SSWW, hists, "LL")
    validate(ws)
    assert "jer" in modifier_names(ws, types=["normsys", "histosys"])
    for ch in ws["channels"]:
        for s in ch["samples"]:
            assert ("jer" in {m["name"] for m in s["modifiers"]}) == (s["name"] == "wz")
    # without them, the workspace is the config's alone
    assert "jer" not in modifier_names(ssww_workspace(SSWW, ssww_file, "LL"))


def test_pseudo_data_poisson_and_injection(ssww_file: Path) -> None:
    asimov = ssww_workspace(SSWW, ssww_file, "LX")
    p1 = ssww_workspace(SSWW, ssww_file, "LX", pseudo_data="poisson", seed=3)
    p2 = ssww_workspace(SSWW, ssww_file, "LX", pseudo_data="poisson", seed=3)
    p3 = ssww_workspace(SSWW, ssww_file, "LX", pseudo_data="poisson", seed=4)
    obs = {w: next(o for o in ws["observations"] if o["name"] == "signal")["data"]
           for w, ws in {"a": asimov, "p1": p1, "p2": p2, "p3": p3}.items()}
    assert obs["p1"] == obs["p2"]
    assert obs["p1"] != obs["p3"]
    assert all(float(x).is_integer() for x in obs["p1"])
    injected = ssww_workspace(SSWW, ssww_file, "LX", parameters={"mu_LX": 2.0})
    sr = next(o for o in injected["observations"] if o["name"] == "signal")["data"]
    lx = np.add(_sample(asimov, "signal", "ssww_LL")["data"], _sample(asimov, "signal", "ssww_LT")["data"])
    assert np.sum(sr) == pytest.approx(np.sum(obs["a"]) + lx.sum())
    again = with_pseudo_data(asimov)  # regenerating Asimov data changes nothing
    assert again["observations"] == asimov["observations"]


# --------------------------------------------------------------------------- WH


def test_stxs_categories_merge_and_misalignment() -> None:
    cats = stxs_categories(WH.histograms["ptw"].edges, WH.stxs_ptv_edges)
    assert [c.ptw_bins for c in cats] == [(0,), (1,), (2,), (3,), (4, 5)]
    assert (cats[-1].low, cats[-1].high) == (400.0, 100000.0)
    with pytest.raises(InputError, match=r"STXS edge 100 GeV is not a p_T\^W histogram edge"):
        stxs_categories([0, 75, 150, 250, 400], [0, 100, 400])
    with pytest.raises(InputError, match="below"):
        stxs_categories([0, 75, 150, 250, 400], [0, 75, 150])


def test_wh_category_workspace(wh_file: Path) -> None:
    ws = wh_category_workspace(WH, wh_file)
    validate(ws)
    n_cat = len(WH.stxs_ptv_edges) - 1
    assert {c["name"] for c in ws["channels"]} == {*(f"stxs{i}" for i in range(n_cat)), "ttbar_cr"}
    nfs = modifier_names(ws, types=["normfactor"])
    assert nfs == {*(f"mu_stxs{i}_{h}" for i in range(n_cat) for h in ("neg", "pos")), "mu_ttbar"}
    assert modifier_names(ws, types=["normsys", "histosys"]) == config_modifier_names(WH)
    neg = _sample(ws, "stxs0", "wh_neg")["data"]
    pos = _sample(ws, "stxs0", "wh_pos")["data"]
    assert neg[3:] == [0, 0, 0]
    assert pos[:3] == [0, 0, 0]
    # the last STXS bin takes both p_T^W bins above 400 GeV
    hs = load_histograms(wh_file)
    sm = hs.nominal("wh", "signal", WH.fit.signal_observable).values
    assert np.add(neg, pos) == pytest.approx(sm[:, 0])
    last = np.add(_sample(ws, f"stxs{n_cat - 1}", "wh_neg")["data"],
                  _sample(ws, f"stxs{n_cat - 1}", "wh_pos")["data"])
    assert last == pytest.approx(sm[:, 4] + sm[:, 5])


def test_wh_cp_model_yields_follow_the_coupling(wh_file: Path) -> None:
    ws = wh_cp_workspace(WH, wh_file)
    validate(ws)
    model, _ = model_and_data(ws)
    hs = load_histograms(wh_file)
    obs = WH.fit.signal_observable
    cats = stxs_categories(hs.nominal("wh", "signal", obs).edges[1], WH.stxs_ptv_edges)

    def flat(v: np.ndarray) -> np.ndarray:
        return np.concatenate([v[:, list(c.ptw_bins)].sum(axis=1) for c in cats])

    sm, bkg = flat(hs.nominal("wh", "signal", obs).values), 0.0
    for d in ("ttbar", "wbb"):
        bkg = bkg + flat(hs.nominal(d, "signal", obs).values)
    interference = flat(hs.variation("wh", "signal", "cp_int", obs).values)
    quad = flat(hs.variation("wh", "signal", "cp_quad", obs).values)
    jes_ratio = {d: flat(hs.variation(d, "signal", "jes_up", obs).values)
                 / flat(hs.nominal(d, "signal", obs).values) for d in ("wh", "ttbar", "wbb")}
    sr = model.config.channel_slices["signal"]
    for c in (-1.5, 0.0, 0.7):
        pars = np.asarray(model.config.suggested_init())
        pars[model.config.par_slice("c_HWtilde")] = c
        pars[model.config.par_slice("c_HWtilde_sq")] = c * c
        expected = np.asarray(model.expected_actualdata(pars))[sr]
        assert expected == pytest.approx(bkg + sm + c * interference + c * c * quad, rel=1e-9)
        # a nuisance parameter at +1σ moves the whole signal by the SM's relative variation
        pars[model.config.par_slice("jes")] = 1.0
        shifted = np.asarray(model.expected_actualdata(pars))[sr]
        signal = (sm + c * interference + c * c * quad) * jes_ratio["wh"]
        background = sum(flat(hs.nominal(d, "signal", obs).values) * jes_ratio[d] for d in ("ttbar", "wbb"))
        assert shifted == pytest.approx(signal + background, rel=1e-9)


def test_wh_pseudo_data_shared_between_models(wh_file: Path) -> None:
    data = wh_observations(WH, wh_file, pseudo_data="poisson", seed=5, c_true=0.5)
    cat = wh_category_workspace(WH, wh_file, observations=data)
    cp = wh_cp_workspace(WH, wh_file, observations=data)
    cat_sr = np.concatenate([next(o["data"] for o in cat["observations"] if o["name"] == f"stxs{i}")
                             for i in range(len(WH.stxs_ptv_edges) - 1)])
    cp_sr = next(o["data"] for o in cp["observations"] if o["name"] == "signal")
    assert cat_sr.tolist() == cp_sr


# --------------------------------------------------------------------------- bad input


def test_missing_histogram_is_one_line_input_error(tmp_path: Path) -> None:
    path = ssww_histograms(SSWW, tmp_path / "h.root", skip=[("wz", "mjj")])
    with pytest.raises(InputError) as err:
        ssww_workspace(SSWW, path, "LL")
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert "wz__" in msg
    assert "__nominal__mjj" in msg


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        ssww_workspace(SSWW, tmp_path / "nope.root", "LL")
