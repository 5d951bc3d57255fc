"""A CP-algorithm-style flat ntuple of the same events gives the NanoAOD run's outputs.

The toy samples are rewritten as flat ntuples (:mod:`flat_writer`: ``_NOSYS`` and JES
branches, MeV, pass flags made with the config's cuts); read through a profile, every
cutflow and every histogram bin (values and variances, every systematic category,
the JES shapes included) equals that of the NanoAOD run. Generator-level histograms
are the exception: the flat ntuple has no generator record, and the run says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ewpolar.runner.run import run_analysis

#: generator-level observables: a reconstruction ntuple has no generator record
TRUTH = {"cos_theta_star_truth"}


def _assert_same(a, b) -> None:
    assert a.output["cutflow"] == b.output["cutflow"]
    assert a.output["hists"].keys() == b.output["hists"].keys()
    for name, h in a.output["hists"].items():
        if name in TRUTH:
            assert any(f"{name}: no GenPart collection" in n for n in b.metrics["notes"])
            continue
        g = b.output["hists"][name]
        assert set(h.axes["systematic"]) == set(g.axes["systematic"]), name
        assert set(h.axes["dataset"]) == set(g.axes["dataset"]), name
        for syst in h.axes["systematic"]:
            for dataset in h.axes["dataset"]:
                x = h[{"systematic": syst, "dataset": dataset}].view(flow=True)
                y = g[{"systematic": syst, "dataset": dataset}].view(flow=True)
                where = f"{name} {dataset} {syst}"
                np.testing.assert_array_equal(x["value"], y["value"], err_msg=where)
                np.testing.assert_array_equal(x["variance"], y["variance"], err_msg=where)


@pytest.mark.parametrize("channel", ["ssww", "wh"])
def test_flat_ntuple_equals_nanoaod_bin_by_bin(channel, request, tmp_path):
    config = request.getfixturevalue(f"{channel}_config")
    nano, flat = request.getfixturevalue(f"{channel}_samples")
    profile = Path(next(iter(next(iter(flat.values()))["files"]))).parent / "profile.yaml"
    a = run_analysis(config, nano, chunksize=700)
    b = run_analysis(config, flat, input=profile, chunksize=700, out=tmp_path / "flat")
    _assert_same(a, b)
    # the JES shapes come from the flat file's JET_JES branches
    h = b.output["hists"]["mbb" if channel == "wh" else "mjj"]
    assert {"jes_up", "jes_down"} <= set(h.axes["systematic"])
    assert b.metrics["input"]["format"] == "flat"
    assert not any("input:" in n or "objects:" in n for n in b.metrics["notes"])


def test_shipped_atlas_flat_profile_reads_the_flat_ntuple(ssww_config, ssww_samples):
    """atlas-flat reads energies (``_e_``) instead of masses: the same selection, the
    masses up to rounding."""
    nano, flat = ssww_samples
    a = run_analysis(ssww_config, nano)
    b = run_analysis(ssww_config, flat, input="atlas-flat")
    for dataset, regions in a.output["cutflow"].items():
        for region, flow in regions.items():
            other = b.output["cutflow"][dataset][region]
            assert other["raw"][:3] == flow["raw"][:3]
            np.testing.assert_allclose(other["weighted"], flow["weighted"], rtol=0.05)
    # atlas-flat has no LHE weight branches: the run says so
    assert any("scale: no LHEScaleWeight" in n for n in b.metrics["notes"])


def test_lepton_shape_variation_is_a_category_with_its_own_selection(ssww_config, ssww_samples,
                                                                     tmp_path):
    """A profile systematic that changes the electrons (not a JES one) is a category of
    its own: leptons selected anew, observables recomputed; a scale of 1 gives nominal."""
    from flat_writer import write_flat_fileset

    nano, _ = ssww_samples
    outputs = {}
    for scale in (1.0, 1.1):
        flat = write_flat_fileset(nano, ssww_config, tmp_path / str(scale), electron_scale=scale)
        profile = (tmp_path / str(scale) / "profile.yaml").read_text().replace(
            "jes_down: JET_JES__1down}", "jes_down: JET_JES__1down, eg_up: EG_SCALE_ALL__1up}")
        (tmp_path / f"profile_{scale}.yaml").write_text(profile)
        outputs[scale] = run_analysis(ssww_config, flat, input=tmp_path / f"profile_{scale}.yaml",
                                      regions=["signal", "wz_cr"])
    for scale, result in outputs.items():
        h = result.output["hists"]["lep1_pt"]
        assert "eg_up" in set(h.axes["systematic"])
        nominal = h[{"systematic": "nominal"}].values(flow=True)
        varied = h[{"systematic": "eg_up"}].values(flow=True)
        if scale == 1.0:
            np.testing.assert_array_equal(varied, nominal)
        else:
            assert not np.array_equal(varied, nominal)


def test_weight_variations_from_profile_branches(ssww_config, ssww_samples, tmp_path):
    _, flat = ssww_samples
    profile = Path(next(iter(next(iter(flat.values()))["files"]))).parent / "profile.yaml"
    text = profile.read_text().replace(
        "objects:", "weights:\n  pileup: {up: weight_pileup_UP, down: weight_pileup_DOWN}\n"
                    "objects:")
    (tmp_path / "profile.yaml").write_text(text)
    result = run_analysis(ssww_config, flat, input=tmp_path / "profile.yaml", regions=["signal"])
    h = result.output["hists"]["mjj"]
    assert {"pileup_up", "pileup_down"} <= set(h.axes["systematic"])
    nominal = h[{"systematic": "nominal"}].values(flow=True)
    np.testing.assert_allclose(h[{"systematic": "pileup_up"}].values(flow=True), 1.1 * nominal,
                               rtol=1e-6)
    np.testing.assert_allclose(h[{"systematic": "pileup_down"}].values(flow=True),
                               0.9 * nominal, rtol=1e-6)
