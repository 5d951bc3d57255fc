"""Toy NanoAOD files rewritten as CP-algorithm / TopCPToolkit-style flat ntuples.

Each NanoAOD file of a fileset becomes a TTree ``reco`` with the branch names of the
shipped ``atlas-flat`` profile: ``_NOSYS`` (nominal) and ``_JET_JES__1up`` /
``_JET_JES__1down`` (jets and MET) branches, momenta in MeV, and pass flags (``char``
branches) made from the NanoAOD columns with the config's cuts, so that the flat run
selects what the NanoAOD run selects. Momenta are written as float64 MeV: a float32
GeV number times 1000 is exact in float64 and comes back exactly. Jets and leptons
carry both the mass (``_m_``, read by the test's own profile) and the energy
(``_e_``, read by ``atlas-flat``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot
from ewpolar.core.config import AnalysisConfig

#: the profile of these files with masses (exact); atlas-flat reads the energies instead
FLAT_PROFILE = """\
format: flat
tree: reco
units: MeV
systematics: {nominal: NOSYS, jes_up: JET_JES__1up, jes_down: JET_JES__1down}
event: {run: runNumber, event: eventNumber}
branches:
  genWeight: weight_mc_NOSYS
  LHEScaleWeight: mc_scale_weights
  LHEPdfWeight: mc_pdf_weights
  CPWeight_sm: weight_cp_sm
  CPWeight_int: weight_cp_int
  CPWeight_quad: weight_cp_quad
objects:
  electron: {pt: "el_pt_{syst}", eta: el_eta, phi: el_phi, mass: "el_m_{syst}",
             charge: el_charge, id: "el_select_tight_{syst}", iso: "el_select_isolated_{syst}"}
  muon: {pt: "mu_pt_{syst}", eta: mu_eta, phi: mu_phi, mass: "mu_m_{syst}",
         charge: mu_charge, id: "mu_select_medium_{syst}", iso: "mu_select_isolated_{syst}"}
  jet: {pt: "jet_pt_{syst}", eta: jet_eta, phi: jet_phi, mass: "jet_m_{syst}",
        id: "jet_select_jvt_{syst}", btag: jet_ftag_select_GN2v01_FixedCutBEff_77}
  met: {pt: "met_met_{syst}", phi: "met_phi_{syst}"}
"""

_JES = {"JET_JES__1up": "jesTotalUp", "JET_JES__1down": "jesTotalDown"}


def _mev(array: ak.Array) -> ak.Array:
    return ak.values_astype(array, np.float64) * 1000.0


def _energy(pt: ak.Array, eta: ak.Array, mass: ak.Array) -> ak.Array:
    pt, eta, mass = (ak.values_astype(a, np.float64) for a in (pt, eta, mass))
    p = pt * np.cosh(eta)
    return np.sqrt(p * p + mass * mass) * 1000.0


def _flag(array: ak.Array) -> ak.Array:
    return ak.values_astype(array, np.int8)


def _flat_file(src: str, dst: Path, config: AnalysisConfig,
               electron_scale: float | None = None) -> None:
    t = uproot.open(src)["Events"]
    a = t.arrays()
    cuts = config.objects
    el = {
        "pt_NOSYS": _mev(a.Electron_pt), "eta": a.Electron_eta, "phi": a.Electron_phi,
        "m_NOSYS": _mev(a.Electron_mass),
        "e_NOSYS": _energy(a.Electron_pt, a.Electron_eta, a.Electron_mass),
        "charge": ak.values_astype(a.Electron_charge, np.float32),
        "select_tight_NOSYS": _flag(a.Electron_cutBased >= cuts.electron.id_min),
        "select_isolated_NOSYS": _flag(a.Electron_pfRelIso03_all <= cuts.electron.iso_max),
    }
    mu = {
        "pt_NOSYS": _mev(a.Muon_pt), "eta": a.Muon_eta, "phi": a.Muon_phi,
        "m_NOSYS": _mev(a.Muon_mass),
        "e_NOSYS": _energy(a.Muon_pt, a.Muon_eta, a.Muon_mass),
        "charge": ak.values_astype(a.Muon_charge, np.float32),
        "select_medium_NOSYS": _flag(a.Muon_tightId),
        "select_isolated_NOSYS": _flag(a.Muon_pfRelIso04_all <= cuts.muon.iso_max),
    }
    jet = {
        "pt_NOSYS": _mev(a.Jet_pt), "eta": a.Jet_eta, "phi": a.Jet_phi,
        "m_NOSYS": _mev(a.Jet_mass), "e_NOSYS": _energy(a.Jet_pt, a.Jet_eta, a.Jet_mass),
        "select_jvt_NOSYS": _flag(a.Jet_jetId >= cuts.jet.id_min),
        "ftag_select_GN2v01_FixedCutBEff_77": _flag(a.Jet_btagDeepFlavB >= cuts.bjet.score_min),
    }
    scalars = {
        "runNumber": a.run, "eventNumber": a.event, "weight_mc_NOSYS": a.genWeight,
        "met_met_NOSYS": _mev(a.MET_pt), "met_phi_NOSYS": a.MET_phi,
        # a weight systematic: the generator weight ±10 %
        "weight_pileup_UP": a.genWeight * np.float32(1.1),
        "weight_pileup_DOWN": a.genWeight * np.float32(0.9),
    }
    for tag, suffix in _JES.items():
        jet[f"pt_{tag}"] = _mev(a[f"Jet_pt_{suffix}"])
        jet[f"m_{tag}"] = _mev(a[f"Jet_mass_{suffix}"])
        jet[f"e_{tag}"] = _energy(a[f"Jet_pt_{suffix}"], a.Jet_eta, a[f"Jet_mass_{suffix}"])
        scalars[f"met_met_{tag}"] = _mev(a[f"MET_pt_{suffix}"])
        scalars[f"met_phi_{tag}"] = a[f"MET_phi_{suffix}"]
    if electron_scale is not None:  # an electron energy-scale variation (pT only)
        el["pt_EG_SCALE_ALL__1up"] = el["pt_NOSYS"] * electron_scale
    fields = set(a.fields)
    for name in ("sm", "int", "quad"):
        if f"CPWeight_{name}" in fields:
            scalars[f"weight_cp_{name}"] = a[f"CPWeight_{name}"]
    lists = {"el": ak.zip(el), "mu": ak.zip(mu), "jet": ak.zip(jet),
             "mc": ak.zip({"scale_weights": a.LHEScaleWeight}),
             "mcpdf": ak.zip({"weights": a.LHEPdfWeight})}
    branches = {**lists, **scalars}
    names = {"mc": "mc", "mcpdf": "mc_pdf"}
    with uproot.recreate(dst) as f:
        f.mktree("reco", {k: v.type.content for k, v in branches.items()},
                 field_name=lambda outer, inner: f"{names.get(outer, outer)}_{inner}",
                 counter_name=lambda counted: f"n{counted}")
        f["reco"].extend(branches)


def write_flat_fileset(nano: dict[str, Any], config: AnalysisConfig, out: Path,
                       electron_scale: float | None = None) -> dict[str, Any]:
    """The fileset ``nano`` rewritten file by file as flat ntuples in ``out`` (same
    datasets and metadata); also writes ``out/profile.yaml`` (:data:`FLAT_PROFILE`,
    without the CP weights for ssWW). With ``electron_scale``, the files also have
    ``el_pt_EG_SCALE_ALL__1up`` = nominal × ``electron_scale``."""
    flat: dict[str, Any] = {}
    for dataset, entry in nano.items():
        files = {}
        for i, src in enumerate(entry["files"]):
            dst = out / f"{dataset}_{i}.root"
            _flat_file(src, dst, config, electron_scale)
            files[str(dst)] = "reco"
        flat[dataset] = {"files": files, "metadata": dict(entry["metadata"])}
    profile = FLAT_PROFILE
    if config.channel != "wh":  # the CP weights are WH's only
        profile = "\n".join(line for line in profile.splitlines() if "CPWeight" not in line)
    (out / "profile.yaml").write_text(profile + "\n", encoding="utf-8")
    (out / "fileset.json").write_text(json.dumps(flat, indent=1), encoding="utf-8")
    return flat
