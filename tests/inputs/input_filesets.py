"""Filesets of single real files for the input-profile tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def one_file_fileset(path: Path, tree: str, dataset: str = "sample",
                     **metadata: Any) -> dict[str, Any]:
    meta = {"kind": "background", "xsec_fb": 1.0, "sumw": 1.0, **metadata}
    return {dataset: {"files": {str(path): tree}, "metadata": meta}}


def write_physlite_ttree(rntuple: Path, dst: Path) -> Path:
    """The PHYSLITE RNTuple's electrons, muons, jets and event info as a PHYSLITE-style
    TTree ``CollectionTree`` (branches ``AnalysisJetsAuxDyn.pt`` ...; without the
    b-tagging container and link)."""
    import awkward as ak
    import uproot
    from coffea.nanoevents import NanoEventsFactory
    from ewpolar.inputs.schemas import PHYSLITESchema

    events = NanoEventsFactory.from_root({str(rntuple): "EventData"}, schemaclass=PHYSLITESchema,
                                         mode="virtual").events()
    fields = {
        "Electrons": ["pt", "eta", "phi", "m", "charge", "DFCommonElectronsLHTight",
                      "ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000"],
        "Muons": ["pt", "eta", "phi", "charge", "quality",
                  "ptvarcone30_Nonprompt_All_MaxWeightTTVA_pt1000"],
        "Jets": ["pt", "eta", "phi", "m", "NNJvtPass"],
    }
    branches: dict[str, Any] = {
        f"Analysis{name}AuxDyn": ak.zip({f: events[name][f] for f in names})
        for name, names in fields.items()}
    info = events.EventInfo
    branches["EventInfoAuxDyn.runNumber"] = ak.to_numpy(info.runNumber)
    branches["EventInfoAuxDyn.eventNumber"] = ak.to_numpy(info.eventNumber)
    branches["EventInfoAuxDyn.mcEventWeights"] = info.mcEventWeights
    with uproot.recreate(dst) as f:
        f.mktree("CollectionTree",
                 {k: v.type.content if isinstance(v, ak.Array) else v.dtype
                  for k, v in branches.items()},
                 field_name=lambda outer, inner: f"{outer}.{inner}",
                 counter_name=lambda counted: f"{counted}_n")
        f["CollectionTree"].extend(branches)
    return dst
