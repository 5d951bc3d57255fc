"""Event weights and systematic variations of the processors."""

from __future__ import annotations

import awkward as ak
import hist
import numpy as np
import pytest
import uproot
from ewpolar.core.config import Systematic
from ewpolar.processors.ssww import SSWWProcessor
from ewpolar.processors.wh import WHProcessor
from ewpolar.selections.objects import build_objects
from ewpolar.selections.regions import region_cuts, region_selection
from ewpolar.selections.variables import EventVariables

SSWW_CATEGORIES = {
    "nominal", "lumi_up", "lumi_down", "scale_up", "scale_down", "pdf_up", "pdf_down",
    "jes_up", "jes_down", "kfactor_up", "kfactor_down",
}  # fmt: skip


def first_file(fileset, dataset):
    return next(iter(fileset[dataset]["files"]))


def gen_weights(path, stop=None):
    return uproot.open(path)["Events"]["genWeight"].array(library="np", entry_stop=stop)


def signal_mask(events, config, variation="nominal", region="signal"):
    variables = EventVariables(build_objects(events, config.objects, variation))
    reg = config.regions[region]
    return region_selection(variables, reg).all(*region_cuts(reg))


def total(h, **where):
    return h[where].sum(flow=True).value


@pytest.mark.parametrize("dataset", ["ssww_TT", "wz"])
def test_all_events_weight_is_xsec_lumi_genweight_over_sumw(ssww_output, ssww_fileset,
                                                            ssww_config, dataset):
    meta = ssww_fileset[dataset]["metadata"]
    sum_gen = sum(gen_weights(f).astype(np.float64).sum() for f in ssww_fileset[dataset]["files"])
    expected = meta["xsec_fb"] * ssww_config.luminosity_fb * sum_gen / meta["sumw"]
    for region in ssww_config.regions:
        flow = ssww_output["cutflow"][dataset][region]
        assert flow["cuts"][0] == "all events"
        assert flow["weighted"][0] == pytest.approx(expected, rel=1e-9)
    assert ssww_output["entries"][dataset] == meta["n_events"]


def test_single_chunk_weight(ssww_config, ssww_fileset, events_of):
    """One chunk: Σ weights = xsec × lumi × (Σ genWeight of the chunk) / sumw."""
    path = first_file(ssww_fileset, "wz")
    meta = {"dataset": "wz", **ssww_fileset["wz"]["metadata"]}
    events = events_of(path, meta)[:400]
    out = SSWWProcessor(ssww_config, regions=["wz_cr"]).process(events)
    expected = (meta["xsec_fb"] * ssww_config.luminosity_fb
                * gen_weights(path, 400).astype(np.float64).sum() / meta["sumw"])
    assert out["cutflow"]["wz"]["wz_cr"]["weighted"][0] == pytest.approx(expected)
    assert out["cutflow"]["wz"]["wz_cr"]["raw"][0] == 400


def test_systematic_categories(ssww_output, wh_output):
    for h in ssww_output["hists"].values():
        assert set(h.axes["systematic"]) == SSWW_CATEGORIES
    wh_cats = SSWW_CATEGORIES - {"kfactor_up", "kfactor_down"} | {"cp_int", "cp_quad"}
    for h in wh_output["hists"].values():
        assert set(h.axes["systematic"]) == wh_cats
    # the CP categories are filled for the signal only
    h = wh_output["hists"]["mbb"]
    assert total(h, dataset="ttbar", systematic="cp_int") == 0.0
    assert total(h, dataset="wh", systematic="cp_quad") > 0.0


def test_luminosity_variation(ssww_output, ssww_config):
    size = ssww_config.systematics["luminosity"].size
    h = ssww_output["hists"]["mjj"]
    nominal = total(h, dataset="ssww_TT", region="signal", systematic="nominal")
    assert total(h, dataset="ssww_TT", region="signal", systematic="lumi_up") == pytest.approx(
        nominal * (1 + size))
    assert total(h, dataset="ssww_TT", region="signal", systematic="lumi_down") == pytest.approx(
        nominal * (1 - size))


def test_scale_envelope_and_hessian_pdf(ssww_config, ssww_fileset, events_of):
    path = first_file(ssww_fileset, "ssww_TT")
    meta = {"dataset": "ssww_TT", **ssww_fileset["ssww_TT"]["metadata"]}
    out = SSWWProcessor(ssww_config, regions=["signal"]).process(events_of(path, meta))
    mask = signal_mask(events_of(path, meta), ssww_config)

    tree = uproot.open(path)["Events"]
    w = gen_weights(path).astype(np.float64) * (
        meta["xsec_fb"] * ssww_config.luminosity_fb / meta["sumw"])
    scale = ak.to_numpy(tree["LHEScaleWeight"].array()).astype(np.float64)
    ratios = scale[:, [0, 1, 3, 5, 7, 8]] / scale[:, [4]]
    pdf = ak.to_numpy(tree["LHEPdfWeight"].array()).astype(np.float64)
    assert pdf.shape[1] == 31
    delta = np.sqrt(((pdf[:, 1:] / pdf[:, :1] - 1) ** 2).sum(axis=1))

    h = out["hists"]["met"][{"dataset": "ssww_TT", "region": "signal"}]
    expect = {
        "nominal": w[mask].sum(),
        "scale_up": (w * ratios.max(axis=1))[mask].sum(),
        "scale_down": (w * ratios.min(axis=1))[mask].sum(),
        "pdf_up": (w * (1 + delta))[mask].sum(),
        "pdf_down": (w * (1 - delta))[mask].sum(),
    }
    for cat, value in expect.items():
        assert total(h, systematic=cat) == pytest.approx(value, rel=1e-9), cat
    assert expect["scale_up"] > expect["nominal"] > expect["scale_down"]


def test_scale_mode_all(ssww_config, ssww_fileset, events_of):
    systs = dict(ssww_config.systematics)
    systs["scale"] = Systematic(kind="scale", mode="all")
    cfg = ssww_config.model_copy(update={"systematics": systs})
    path = first_file(ssww_fileset, "ssww_TT")
    meta = {"dataset": "ssww_TT", **ssww_fileset["ssww_TT"]["metadata"]}
    out = SSWWProcessor(cfg, regions=["signal"]).process(events_of(path, meta))
    h = out["hists"]["mll"]
    cats = set(h.axes["systematic"])
    assert {f"scale_{i}" for i in range(9)} <= cats
    assert not {"scale_up", "scale_down"} & cats
    np.testing.assert_allclose(h[{"systematic": "scale_4"}].values(flow=True),
                               h[{"systematic": "nominal"}].values(flow=True), rtol=1e-9)


def test_jes_shifts_move_the_selection(ssww_config, ssww_fileset, ssww_output, events_of):
    """Jets scaled up pass the jet pT and m_jj thresholds more often: up > nominal > down."""
    path = first_file(ssww_fileset, "ssww_TT")
    counts = {v: int(signal_mask(events_of(path, {"dataset": "x"}), ssww_config, v).sum())
              for v in ("jes_down", "nominal", "jes_up")}
    assert counts["jes_up"] > counts["nominal"] > counts["jes_down"], counts

    h = ssww_output["hists"]["mjj"]
    sums = {c: total(h, dataset="ssww_TT", region="signal", systematic=c)
            for c in ("jes_down", "nominal", "jes_up")}
    assert sums["jes_up"] > sums["nominal"] > sums["jes_down"], sums
    # a shape variation: more events at high m_jj
    high = {c: h[{"dataset": "ssww_TT", "region": "signal", "systematic": c}][
        hist.loc(1000.0)::sum].value for c in ("jes_down", "jes_up")}
    assert high["jes_up"] > high["jes_down"]


def _kfactor_file(tmp_path, values):
    """A K-factor correction with flat K per polarization state and ±10 % variations."""
    import correctionlib.schemav2 as cs

    def binning(k):
        return cs.Binning(nodetype="binning", input="mjj", edges=[0.0, 1000.0, 13000.0],
                          content=[k, k], flow="clamp")

    data = cs.Category(nodetype="category", input="polarization", default=1.0, content=[
        cs.CategoryItem(key=pol, value=cs.Category(nodetype="category", input="syst", content=[
            cs.CategoryItem(key="nominal", value=binning(k)),
            cs.CategoryItem(key="up", value=binning(1.1 * k)),
            cs.CategoryItem(key="down", value=binning(0.9 * k)),
        ])) for pol, k in values.items()])
    corr = cs.Correction(name="kfactor", version=1, output=cs.Variable(name="K", type="real"),
                         inputs=[cs.Variable(name="polarization", type="string"),
                                 cs.Variable(name="mjj", type="real"),
                                 cs.Variable(name="syst", type="string")], data=data)
    path = tmp_path / "k.json"
    path.write_text(cs.CorrectionSet(schema_version=2, corrections=[corr]).model_dump_json())
    return path


def test_kfactor_by_polarization(ssww_config, ssww_fileset, events_of, tmp_path):
    kfile = _kfactor_file(tmp_path, {"LL": 2.0, "LT": 3.0, "TT": 0.5})
    systs = dict(ssww_config.systematics)
    systs["kfactor"] = Systematic(kind="correction", file=str(kfile))
    cfg = ssww_config.model_copy(update={"systematics": systs})
    for dataset, k in (("ssww_TT", 0.5), ("wz", 1.0)):
        path = first_file(ssww_fileset, dataset)
        meta = {"dataset": dataset, **ssww_fileset[dataset]["metadata"]}
        with_k = SSWWProcessor(cfg, regions=["signal"]).process(events_of(path, meta))
        shipped = SSWWProcessor(ssww_config, regions=["signal"]).process(events_of(path, meta))
        flow_k = with_k["cutflow"][dataset]["signal"]["weighted"]
        flow_1 = shipped["cutflow"][dataset]["signal"]["weighted"]
        assert flow_k[0] == pytest.approx(k * flow_1[0])
        h = with_k["hists"]["mjj"]
        nominal = total(h, systematic="nominal")
        if dataset == "wz":
            assert total(h, systematic="kfactor_up") == pytest.approx(nominal)
        else:
            assert nominal > 0
            assert total(h, systematic="kfactor_up") == pytest.approx(1.1 * nominal)
            assert total(h, systematic="kfactor_down") == pytest.approx(0.9 * nominal)


def test_missing_metadata_falls_back_to_genweight(wh_config, wh_fileset, events_of):
    path = first_file(wh_fileset, "wh")
    out = WHProcessor(wh_config).process(events_of(path, {"dataset": "mystery"}))
    flow = out["cutflow"]["mystery"]["signal"]["weighted"]
    assert flow[0] == pytest.approx(gen_weights(path).astype(np.float64).sum())
    assert any("no xsec_fb/sumw" in n for n in out["notes"])
