"""Both processors on the real ATLAS PHYSLITE file (RNTuple, 100 events) through
``--input physlite``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from ewpolar.cli import main
from ewpolar.inputs.schemas import PHYSLITESchema
from input_filesets import one_file_fileset

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def test_coffea_physlite_schema_fails_on_rntuple_and_the_fixed_one_reads_it(physlite_file):
    from coffea.nanoevents import NanoEventsFactory
    from coffea.nanoevents import PHYSLITESchema as CoffeaPHYSLITESchema

    with pytest.raises(KeyError):
        NanoEventsFactory.from_root({str(physlite_file): "EventData"},
                                    schemaclass=CoffeaPHYSLITESchema, mode="virtual").events()
    events = NanoEventsFactory.from_root({str(physlite_file): "EventData"},
                                         schemaclass=PHYSLITESchema, mode="virtual").events()
    assert len(events) == 100
    assert {"Electrons", "Muons", "Jets", "EventInfo", "BTagging_AntiKt4EMPFlow"} <= set(
        events.fields)
    assert "m" in events.Muons.fields


@pytest.mark.parametrize("channel", ["ssww", "wh"])
def test_processors_run_on_physlite(channel, physlite_file, tmp_path):
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps(one_file_fileset(physlite_file, "EventData", "physlite")))
    result = CliRunner().invoke(main, [
        "run", "--config", channel, "--fileset", str(fileset), "--input", "physlite",
        "--no-progress", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["events_processed"] == 100
    assert metrics["input"] == {"profile": "physlite", "source": metrics["input"]["source"],
                                "format": "physlite"}
    # the file has no final MET container: the run says how the MET was made
    assert any("MET rebuilt from all electrons, muons and jets" in n for n in metrics["notes"])
    cutflow = json.loads((tmp_path / "out" / "cutflow.json").read_text())
    for flow in cutflow["physlite"].values():
        assert flow["raw"][0] == 100


def test_physlite_objects_in_gev_with_gn2_btagging(physlite_file):
    import awkward as ak
    from coffea.nanoevents import NanoEventsFactory
    from ewpolar.inputs.adapt import adapt_events
    from ewpolar.inputs.profile import load_profile

    events = NanoEventsFactory.from_root({str(physlite_file): "EventData"},
                                         schemaclass=PHYSLITESchema, mode="virtual").events()
    notes: set[str] = set()
    adapted = adapt_events(events, load_profile("physlite"), notes)
    # MeV to GeV
    assert ak.max(adapted.Jet.pt) < 5000
    assert ak.all(ak.flatten(adapted.Jet.pt) * 1000 > 5000)
    # GN2 discriminant through the b-tagging link; the 77% working point tags some jets
    n_tagged = int(ak.sum(adapted.Jet.passBtag))
    assert 0 < n_tagged < int(ak.count(adapted.Jet.pt))
    assert ak.all(adapted.Jet.passBtag == (adapted.Jet.btag >= 2.669))
    # electron likelihood ID and muon quality as pass flags
    assert adapted.Electron.passId.layout.content.dtype == bool
    assert "passId" in ak.fields(adapted.Muon)
    assert adapted.genWeight.ndim == 1


def test_physlite_met_from_the_met_container_when_present(physlite_file):
    """With a MET_AnalysisMET container, its Final term is the MET (and a note says so)."""
    import awkward as ak
    import numpy as np
    from coffea.nanoevents import NanoEventsFactory
    from ewpolar.inputs.adapt import adapt_events
    from ewpolar.inputs.profile import load_profile

    events = NanoEventsFactory.from_root({str(physlite_file): "EventData"},
                                         schemaclass=PHYSLITESchema, mode="virtual").events()
    n = len(events)
    terms = ak.Array([[{"mpx": 1000.0, "mpy": 0.0, "name": "RefJet"},
                       {"mpx": 3000.0, "mpy": 4000.0, "name": "Final"}]] * n)
    with_met = ak.with_field(events, terms, "MET_AnalysisMET")
    notes: set[str] = set()
    adapted = adapt_events(with_met, load_profile("physlite"), notes)
    np.testing.assert_allclose(ak.to_numpy(adapted.MET.pt), 5.0)
    assert "input: MET from the file's MET_AnalysisMET (term Final)" in notes
    assert not any("rebuilt" in note for note in notes)


def test_physlite_ttree(physlite_file, ssww_config, tmp_path):
    """The same events as a PHYSLITE TTree (no b-tagging container): the run goes
    through and says that the jets have no b-tag information."""
    from ewpolar.runner.run import run_analysis
    from input_filesets import write_physlite_ttree

    path = write_physlite_ttree(physlite_file, tmp_path / "physlite.root")
    result = run_analysis(ssww_config, one_file_fileset(path, "CollectionTree", "physlite"),
                          input="physlite")
    assert result.metrics["events_processed"] == 100
    notes = " | ".join(result.metrics["notes"])
    assert "no b-tag information for the jets" in notes
    assert "MET rebuilt" in notes
