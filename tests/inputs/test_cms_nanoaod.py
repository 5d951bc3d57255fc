"""Real CMS 2015 open-data NanoAOD, TTree and RNTuple: read as NanoAOD (the run says
what the file lacks) and through the 2015 open-data profile (CSVv2 b-tagging, PF muons)."""

from __future__ import annotations

import pytest
from ewpolar.runner.run import run_analysis
from ewpolar.selections.cutflow import by_cut
from input_filesets import one_file_fileset

pytestmark = [
    pytest.mark.filterwarnings("ignore:Missing cross-reference index:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:Branch Photon_.* already exists:RuntimeWarning"),
]


@pytest.mark.parametrize("kind", ["cms_ttree", "cms_rntuple"])
def test_cms_nanoaod_says_it_has_no_btag_information(kind, request, wh_config):
    path = request.getfixturevalue(kind)
    result = run_analysis(wh_config, one_file_fileset(path, "Events", "cms"))
    assert result.metrics["events_processed"] > 0
    notes = " | ".join(result.metrics["notes"])
    assert "the input has no b-tag information" in notes
    flow = by_cut(result.output["cutflow"]["cms"]["signal"])
    assert flow.get("n_bjets", 0) == 0


@pytest.mark.parametrize("kind", ["cms_ttree", "cms_rntuple"])
def test_cms_open_data_profile_tags_b_jets_with_csvv2(kind, request, wh_config):
    path = request.getfixturevalue(kind)
    result = run_analysis(wh_config, one_file_fileset(path, "Events", "cms"),
                          input="cms-opendata-2015")
    assert result.metrics["events_processed"] > 0
    notes = " | ".join(result.metrics["notes"])
    assert "no b-tag information" not in notes
    assert "Muon_tightId is False" not in notes


def test_cms_open_data_profile_tags_jets_and_identifies_muons(cms_ttree, wh_config):
    import awkward as ak
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory
    from ewpolar.inputs.adapt import adapt_events
    from ewpolar.inputs.profile import load_profile

    plain = run_analysis(wh_config, one_file_fileset(cms_ttree, "Events", "cms"))
    assert "Muon_tightId is False for every muon" in " | ".join(plain.metrics["notes"])
    events = NanoEventsFactory.from_root({str(cms_ttree): "Events"}, schemaclass=NanoAODSchema,
                                         mode="virtual").events()
    adapted = adapt_events(events, load_profile("cms-opendata-2015"), set())
    assert 0 < int(ak.sum(adapted.Jet.passBtag)) < int(ak.count(adapted.Jet.pt))
    assert int(ak.sum(adapted.Muon.passId)) > 0
