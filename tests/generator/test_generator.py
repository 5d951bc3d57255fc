"""Tests of the toy generator: physics closure from GenPart, CP weights, NanoAOD files.

The closure tests compute cos θ* and cos δ⁺ with their own Lorentz boosts, written
here and independent of ``ewpolar.generator.kinematics``.
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from ewpolar.core.config import load_config
from ewpolar.core.errors import InputError
from ewpolar.generator import expected_helicity_fractions, generate, simulate

SIGNALS = ("ssww_LL", "ssww_LT", "ssww_TT")
CLOSURE_EVENTS = 40_000
WH_EVENTS = 60_000
SEED = 11


# --------------------------------------------------------------------------- helpers
def four_vector(pt, eta, phi, mass):
    """(px, py, pz, E) float64 from pt, eta, phi, mass."""
    pt, eta, phi, mass = (np.asarray(x, dtype=np.float64) for x in (pt, eta, phi, mass))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)])


def boost_into(v, frame):
    """``v`` seen in the rest frame of ``frame`` (both (4, n) arrays), standard boost by −β."""
    b = -frame[:3] / frame[3]
    b2 = (b**2).sum(0)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = (b * v[:3]).sum(0)
    p = v[:3] + ((gamma - 1.0) * bp / b2 + gamma * v[3]) * b
    return np.vstack([p, gamma * (v[3] + bp)])


def unit(p3):
    return p3 / np.sqrt((p3**2).sum(0))


def read(files: dict[str, str], branches: list[str]) -> ak.Array:
    return ak.concatenate([uproot.open(path)[tree].arrays(branches) for path, tree in files.items()])


def genpart_vectors(gp, index):
    """Four-vectors of GenPart entry ``index`` (one per event)."""
    rows = np.arange(len(gp))
    return four_vector(*(ak.to_numpy(ak.flatten(gp[f][rows[:, None], index[:, None]]))
                         for f in ("pt", "eta", "phi", "mass")))


def weighted_fractions(cos_theta, charge):
    """Moment estimates (f0, fL, fR) and their statistical errors (docs/physics.md §2)."""
    sign = np.where(charge > 0, -1.0, 1.0)  # f_L − f_R = ∓2⟨cosθ*⟩, upper sign W⁺
    f0 = 2.0 - 5.0 * cos_theta**2
    diff = sign * 2.0 * cos_theta
    per_event = {"f0": f0, "fL": (1.0 - f0 + diff) / 2.0, "fR": (1.0 - f0 - diff) / 2.0}
    n = len(cos_theta)
    return {k: (v.mean(), v.std(ddof=1) / np.sqrt(n)) for k, v in per_event.items()}


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ssww_cfg():
    return load_config("ssww")


@pytest.fixture(scope="module")
def wh_cfg():
    return load_config("wh")


@pytest.fixture(scope="module")
def ssww_fileset(ssww_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("ssww")
    generate(ssww_cfg, events=CLOSURE_EVENTS, seed=SEED, out=out, datasets=list(SIGNALS))
    path = generate(ssww_cfg, events=3000, seed=SEED, out=out,
                    datasets=["ssww_qcd", "wz", "ttbar_nonprompt"])
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def wh_fileset(wh_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("wh")
    generate(wh_cfg, events=WH_EVENTS, seed=SEED, out=out, datasets=["wh"])
    path = generate(wh_cfg, events=3000, seed=SEED, out=out, datasets=["ttbar", "wbb"])
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- W helicity closure
@pytest.mark.parametrize("dataset", SIGNALS)
def test_helicity_fractions_close_from_genpart(ssww_cfg, ssww_fileset, dataset):
    files = ssww_fileset[dataset]["files"]
    arrays = read(files, ["GenPart_pt", "GenPart_eta", "GenPart_phi", "GenPart_mass",
                          "GenPart_pdgId", "GenPart_genPartIdxMother"])
    gp = ak.zip({k.removeprefix("GenPart_"): arrays[k] for k in arrays.fields})
    pdg, mother = gp.pdgId, gp.genPartIdxMother
    local = ak.local_index(pdg)
    w_idx = local[np.abs(pdg) == 24]
    assert ak.all(ak.num(w_idx) == 2)
    mother_pdg = pdg[ak.where(mother >= 0, mother, 0)]
    is_lep = ((np.abs(pdg) == 11) | (np.abs(pdg) == 13)) & (mother >= 0) & (np.abs(mother_pdg) == 24)
    lep_idx = local[is_lep]
    assert ak.all(ak.num(lep_idx) == 2)

    w1 = genpart_vectors(gp, ak.to_numpy(w_idx[:, 0]))
    w2 = genpart_vectors(gp, ak.to_numpy(w_idx[:, 1]))
    ww = w1 + w2
    cos_all, charge_all = [], []
    for i in range(2):
        li = ak.to_numpy(lep_idx[:, i])
        lep = genpart_vectors(gp, li)
        w = genpart_vectors(gp, ak.to_numpy(ak.flatten(mother[np.arange(len(gp))[:, None], li[:, None]])))
        w_ww = boost_into(w, ww)
        lep_w = boost_into(boost_into(lep, ww), w_ww)
        cos_all.append((unit(lep_w[:3]) * unit(w_ww[:3])).sum(0))
        charge_all.append(-np.sign(ak.to_numpy(ak.flatten(pdg[np.arange(len(gp))[:, None], li[:, None]]))))
    cos_theta, charge = np.concatenate(cos_all), np.concatenate(charge_all)
    assert np.all(np.abs(cos_theta) <= 1.0 + 1e-6)

    f0_exp, fl_exp, fr_exp = expected_helicity_fractions(ssww_cfg, dataset)
    expected = {"f0": f0_exp, "fL": fl_exp, "fR": fr_exp}
    for q in (1, -1):
        sel = charge == q
        assert sel.sum() > 0.25 * len(charge)  # W⁺W⁺ ≈ 2 × W⁻W⁻
        got = weighted_fractions(cos_theta[sel], q)
        for key, (value, sigma) in got.items():
            assert sigma < 0.02, (dataset, q, key, sigma)
            assert abs(value - expected[key]) < 3.0 * sigma, (dataset, q, key, value, expected[key], sigma)


def test_w_pairs_have_same_charge_and_plus_dominates(ssww_fileset):
    files = ssww_fileset["ssww_TT"]["files"]
    pdg = read(files, ["GenPart_pdgId"]).GenPart_pdgId
    ws = pdg[np.abs(pdg) == 24]
    assert ak.all(ws[:, 0] == ws[:, 1])
    frac_plus = ak.mean(ws[:, 0] > 0)
    assert 0.62 < frac_plus < 0.71


def test_polarization_states_differ_in_kinematics(ssww_fileset):
    means = {}
    for ds in SIGNALS:
        arrays = read(ssww_fileset[ds]["files"], ["GenPart_pt", "GenPart_pdgId", "Jet_pt"])
        wpt = arrays.GenPart_pt[np.abs(arrays.GenPart_pdgId) == 24]
        means[ds] = (ak.mean(wpt), ak.mean(arrays.Jet_pt[:, :1]))
    assert means["ssww_LL"][0] < means["ssww_LT"][0] < means["ssww_TT"][0]
    assert means["ssww_LL"][1] < means["ssww_TT"][1]


def test_w_masses_are_the_generated_ones(ssww_fileset):
    arrays = read(ssww_fileset["ssww_LT"]["files"], ["GenPart_mass", "GenPart_pdgId"])
    mw = ak.to_numpy(ak.flatten(arrays.GenPart_mass[np.abs(arrays.GenPart_pdgId) == 24]))
    assert abs(np.median(mw) - 80.379) < 0.1
    assert 1.0 < np.percentile(mw, 75) - np.percentile(mw, 25) < 3.0  # ≈ Γ_W = 2.085


# --------------------------------------------------------------------------- WH CP weights
def test_wh_interference_asymmetry(wh_fileset, wh_cfg):
    files = wh_fileset["wh"]["files"]
    arrays = read(files, ["GenPart_pt", "GenPart_eta", "GenPart_phi", "GenPart_mass",
                          "GenPart_pdgId", "GenPart_genPartIdxMother", "genWeight",
                          "CPWeight_sm", "CPWeight_int", "CPWeight_quad"])
    gp = ak.zip({k.removeprefix("GenPart_"): arrays[k] for k in arrays.fields if k.startswith("GenPart_")})
    pdg, mother = gp.pdgId, gp.genPartIdxMother
    local = ak.local_index(pdg)
    mother_pdg = pdg[ak.where(mother >= 0, mother, 0)]
    from_w = (mother >= 0) & (np.abs(mother_pdg) == 24)
    lep_i = ak.to_numpy(ak.flatten(local[from_w & ((np.abs(pdg) == 11) | (np.abs(pdg) == 13))]))
    nu_i = ak.to_numpy(ak.flatten(local[from_w & ((np.abs(pdg) == 12) | (np.abs(pdg) == 14))]))
    h_i = ak.to_numpy(ak.flatten(local[pdg == 25]))
    lep, nu, higgs = (genpart_vectors(gp, i) for i in (lep_i, nu_i, h_i))
    rows = np.arange(len(gp))
    q = -np.sign(ak.to_numpy(ak.flatten(pdg[rows[:, None], lep_i[:, None]])))

    w = lep + nu
    normal = np.cross(higgs[:3].T, w[:3].T).T
    cos_delta = (unit(boost_into(lep, w)[:3]) * unit(normal)).sum(0)
    x = q * cos_delta
    ptw = np.hypot(w[0], w[1])

    sm = ak.to_numpy(arrays.CPWeight_sm).astype(np.float64)
    w_int = ak.to_numpy(arrays.CPWeight_int).astype(np.float64)
    w_quad = ak.to_numpy(arrays.CPWeight_quad).astype(np.float64)
    np.testing.assert_array_equal(arrays.CPWeight_sm, arrays.genWeight)
    assert np.all(w_quad >= 0)
    # the interference follows this test's own Q_l cos δ⁺ (sign) and grows with p_T^W
    agree = np.sign(w_int) == np.sign(x)
    assert agree[np.abs(x) > 1e-3].mean() > 0.999
    for c in (-3.0, -1.0, 1.0, 3.0):
        assert np.all(sm + c * w_int + c * c * w_quad > 0)

    def asym(c, sel):
        wc = (sm + c * w_int + c * c * w_quad)[sel]
        pos, neg = wc[x[sel] > 0].sum(), wc[x[sel] < 0].sum()
        return (pos - neg) / (pos + neg)

    low, high = ptw < 150.0, ptw > 250.0
    assert high.sum() > 1500
    a0 = asym(0.0, np.ones_like(low))
    assert abs(a0) < 3.0 / np.sqrt(len(x))  # SM symmetric in Q_l cos δ⁺
    for sel in (low, high):
        assert asym(1.0, sel) > 0 > asym(-1.0, sel)
        assert asym(1.0, sel) == pytest.approx(-asym(-1.0, sel), rel=0.05)
    assert asym(1.0, high) > 2.0 * asym(1.0, low)
    assert asym(1.0, high) - asym(1.0, low) > 5.0 / np.sqrt(high.sum())

    meta = wh_fileset["wh"]["metadata"]
    assert meta["sumw_int"] == pytest.approx(w_int.sum(), rel=1e-6, abs=1e-3)
    assert meta["sumw_quad"] == pytest.approx(w_quad.sum(), rel=1e-6)


def test_wh_backgrounds_have_zero_cp_terms(wh_fileset):
    for ds in ("ttbar", "wbb"):
        arrays = read(wh_fileset[ds]["files"], ["genWeight", "CPWeight_sm", "CPWeight_int",
                                                "CPWeight_quad"])
        np.testing.assert_array_equal(arrays.CPWeight_sm, arrays.genWeight)
        assert ak.all(arrays.CPWeight_int == 0)
        assert ak.all(arrays.CPWeight_quad == 0)
        assert wh_fileset[ds]["metadata"]["sumw_int"] == 0.0


# --------------------------------------------------------------------------- files and schema
@pytest.mark.parametrize("mode", ["eager", "virtual"])
@pytest.mark.parametrize(("channel", "dataset"), [("ssww", "ssww_LT"), ("ssww", "ttbar_nonprompt"),
                                                  ("wh", "wh")])
def test_files_open_in_coffea_nanoaod_schema(ssww_fileset, wh_fileset, channel, dataset, mode):
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    fileset = ssww_fileset if channel == "ssww" else wh_fileset
    path = next(iter(fileset[dataset]["files"]))
    events = NanoEventsFactory.from_root({path: "Events"}, schemaclass=NanoAODSchema,
                                         mode=mode).events()
    if mode == "virtual":
        events = events[:2000]
    assert type(events.Jet).__name__ == "JetArray"
    assert type(events.Electron).__name__ == "ElectronArray"
    assert type(events.MET).__name__ == "MissingETArray"
    dijet = events[ak.num(events.Jet) >= 2]
    mjj = ak.to_numpy((dijet.Jet[:, 0] + dijet.Jet[:, 1]).mass)
    assert len(mjj) > 100
    assert np.all(np.isfinite(mjj))
    assert np.all(mjj >= 0)
    assert ak.all(events.Jet.pt[:, :-1] >= events.Jet.pt[:, 1:])
    leptons = events.GenPart[(np.abs(events.GenPart.pdgId) == 11) | (np.abs(events.GenPart.pdgId) == 13)]
    assert ak.all(np.abs(leptons.parent.pdgId) == 24 if channel == "wh" and dataset == "wh"
                  else np.isin(np.abs(ak.flatten(leptons.parent.pdgId)), [23, 24]))
    prompt_e = events.Electron[events.Electron.genPartIdx >= 0]
    assert ak.all(np.abs(prompt_e.matched_gen.pdgId) == 11)
    assert ak.all(events.Electron.pdgId == -11 * events.Electron.charge)
    assert ak.all(events.LHEScaleWeight[:, 4] == 1.0)
    assert ak.all(events.LHEPdfWeight[:, 0] == 1.0)


@pytest.mark.parametrize("dataset", ["ssww_TT", "wz", "ttbar_nonprompt"])
def test_branch_contract(ssww_fileset, dataset):
    path = next(iter(ssww_fileset[dataset]["files"]))
    tree = uproot.open(path)["Events"]
    assert tree.classname == "TTree"
    dtypes = {
        "run": "uint32", "luminosityBlock": "uint32", "event": "uint64", "genWeight": "float32",
        "nJet": "int32", "Jet_pt": "float32", "Jet_jetId": "int32", "Jet_hadronFlavour": "int32",
        "Jet_btagDeepFlavB": "float32", "Jet_pt_jesTotalUp": "float32", "Jet_eta": "float32",
        "Jet_pt_jesTotalDown": "float32",
        "Jet_mass_jesTotalDown": "float32", "Electron_charge": "int32", "Electron_pdgId": "int32",
        "Electron_cutBased": "int32", "Electron_pfRelIso03_all": "float32",
        "Electron_genPartIdx": "int32", "Muon_tightId": "bool", "Muon_pfRelIso04_all": "float32",
        "Muon_genPartIdx": "int32", "GenPart_pdgId": "int32", "GenPart_genPartIdxMother": "int32",
        "GenPart_status": "int32", "GenPart_statusFlags": "int32", "MET_pt": "float32",
        "MET_phi_jesTotalUp": "float32", "MET_sumEt": "float32", "LHEScaleWeight": "float32",
        "LHEPdfWeight": "float32", "nLHEScaleWeight": "int32", "nLHEPdfWeight": "int32",
    }
    contract = {
        "MET_pt", "MET_phi", "MET_sumEt", "MET_pt_jesTotalUp", "MET_pt_jesTotalDown",
        "MET_phi_jesTotalUp", "MET_phi_jesTotalDown", "nGenPart", "GenPart_pt", "GenPart_eta",
        "GenPart_phi", "GenPart_mass", "nElectron", "Electron_pt", "Electron_eta",
        "Electron_phi", "Electron_mass", "nMuon", "Muon_pt", "Muon_eta", "Muon_phi",
        "Muon_mass", "Muon_charge", "Muon_pdgId", "Jet_eta", "Jet_phi", "Jet_mass",
        "Jet_mass_jesTotalUp", *dtypes,
    }
    names = set(tree.keys())
    assert contract <= names
    assert not any(k.startswith("CPWeight") for k in names)
    arrays = tree.arrays()
    for name, dtype in dtypes.items():
        assert str(ak.type(arrays[name]).content).split("* ")[-1] == dtype, name
    assert ak.all(arrays.nLHEScaleWeight == 9)
    assert ak.all(arrays.nLHEPdfWeight == 31)
    assert ak.all(arrays.genWeight > 0)
    assert ak.all(arrays.Jet_pt_jesTotalUp > arrays.Jet_pt)
    assert ak.all(arrays.Jet_pt_jesTotalDown < arrays.Jet_pt)
    assert ak.all((arrays.Jet_btagDeepFlavB >= 0) & (arrays.Jet_btagDeepFlavB <= 1))
    assert set(np.unique(ak.flatten(arrays.Jet_jetId))) <= {0, 2, 6}
    assert ak.mean(arrays.MET_pt_jesTotalUp != arrays.MET_pt) > 0.9
    # scale weights change shapes: their spread is not a pure normalisation
    scale = ak.to_numpy(arrays.LHEScaleWeight)
    assert np.std(scale, axis=0).max() > 3e-3
    assert np.all(scale[:, 4] == 1.0)
    flags = ak.flatten(arrays.GenPart_statusFlags)
    assert ak.all((flags & (1 << 7)) != 0)  # isHardProcess
    if dataset == "ttbar_nonprompt":
        fake = arrays.Electron_genPartIdx < 0
        assert ak.sum(fake) > 0
        assert ak.mean(arrays.Electron_pfRelIso03_all[fake]) > 3 * ak.mean(
            arrays.Electron_pfRelIso03_all[~fake])
        bflav = arrays.Jet_btagDeepFlavB[(np.abs(arrays.Jet_eta) < 2.5)]
        assert ak.mean(bflav > 0.2783) > 0.2
    if dataset == "wz":
        # a lepton can fall outside the acceptance: fewer than three reconstructed sometimes
        nlep = tree["nElectron"].array() + tree["nMuon"].array()
        assert 0.05 < ak.mean(nlep < 3) < 0.6


def test_event_ids_unique_per_dataset(ssww_fileset, ssww_cfg):
    for name, entry in ssww_fileset.items():
        ids = read(entry["files"], ["run", "luminosityBlock", "event"])
        assert len(ids) == entry["metadata"]["n_events"]
        assert len(np.unique(ak.to_numpy(ids.event))) == len(ids), name
        np.testing.assert_array_equal(np.sort(ak.to_numpy(ids.event)), np.arange(1, len(ids) + 1))
        assert ak.all(ids.run == 1)
        assert len(entry["files"]) == ssww_cfg.generator.files_per_dataset
        lumis = [set(np.unique(uproot.open(p)["Events"]["luminosityBlock"].array(library="np")))
                 for p in entry["files"]]
        assert lumis == [{i + 1} for i in range(len(lumis))]


def test_fileset_metadata(ssww_fileset, ssww_cfg):
    assert set(ssww_fileset) == set(ssww_cfg.samples)
    for name, entry in ssww_fileset.items():
        sample = ssww_cfg.samples[name]
        meta = entry["metadata"]
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in entry["files"])
        assert set(entry["files"].values()) == {"Events"}
        assert meta["channel"] == "ssww"
        assert meta["process"] == sample.process
        assert meta["kind"] == sample.kind
        assert meta["xsec_fb"] == sample.xsec_fb
        assert meta["seed"] == SEED
        assert ("polarization" in meta) == (sample.kind == "signal")
        if sample.kind == "signal":
            assert meta["polarization"] == sample.polarization
        gw = read(entry["files"], ["genWeight"]).genWeight
        assert meta["sumw"] == pytest.approx(float(np.sum(ak.to_numpy(gw), dtype=np.float64)), rel=1e-9)
        assert "sumw_int" not in meta


# --------------------------------------------------------------------------- determinism
def test_simulate_is_deterministic(ssww_cfg):
    a = simulate(ssww_cfg, "ssww_LT", 500, np.random.default_rng(5))
    b = simulate(ssww_cfg, "ssww_LT", 500, np.random.default_rng(5))
    c = simulate(ssww_cfg, "ssww_LT", 500, np.random.default_rng(6))
    assert list(a) == list(b)
    for key in a:
        assert ak.array_equal(a[key], b[key]), key
    assert not ak.array_equal(a["Jet_pt"], c["Jet_pt"])


def test_generate_is_deterministic(wh_cfg, tmp_path):
    paths = [generate(wh_cfg, events=300, seed=s, out=tmp_path / f"run{i}", datasets=["wh"])
             for i, s in enumerate((4, 4, 5))]
    filesets = [json.loads(p.read_text()) for p in paths]
    trees = [[uproot.open(f)["Events"].arrays() for f in fs["wh"]["files"]] for fs in filesets]
    for x, y in zip(trees[0], trees[1], strict=True):
        assert x.fields == y.fields
        for field in x.fields:
            assert ak.array_equal(x[field], y[field]), field
    assert not ak.array_equal(trees[0][0].Jet_pt, trees[2][0].Jet_pt)
    assert filesets[0]["wh"]["metadata"]["sumw"] == filesets[1]["wh"]["metadata"]["sumw"]


def test_dataset_stream_does_not_depend_on_other_datasets(ssww_cfg):
    from ewpolar.generator.writer import dataset_seed

    a = np.random.default_rng(dataset_seed(1, "wz", 0)).random(3)
    b = np.random.default_rng(dataset_seed(1, "wz", 1)).random(3)
    c = np.random.default_rng(dataset_seed(1, "ssww_qcd", 0)).random(3)
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, c)


# --------------------------------------------------------------------------- API and CLI
def test_expected_fractions(ssww_cfg):
    assert expected_helicity_fractions(ssww_cfg, "ssww_LL") == (1.0, 0.0, 0.0)
    f0, fl, fr = expected_helicity_fractions(ssww_cfg, "ssww_LT")
    assert (f0, fl, fr) == pytest.approx((0.5, 0.35, 0.15))
    with pytest.raises(InputError, match="wz"):
        expected_helicity_fractions(ssww_cfg, "wz")


def test_unknown_dataset_is_a_user_error(ssww_cfg, tmp_path):
    with pytest.raises(InputError, match="nosuch"):
        generate(ssww_cfg, events=10, seed=1, out=tmp_path, datasets=["nosuch"])


def test_fewer_events_than_files(ssww_cfg, tmp_path):
    path = generate(ssww_cfg, events=1, seed=1, out=tmp_path, datasets=["wz"])
    files = json.loads(path.read_text())["wz"]["files"]
    entries = [uproot.open(f)["Events"].num_entries for f in files]
    assert sorted(entries) == [0, 1]
    assert not list(tmp_path.glob(".*tmp*"))


def test_cli_generate(tmp_path):
    from click.testing import CliRunner
    from ewpolar.cli import main

    out = tmp_path / "samples"
    result = CliRunner().invoke(main, ["generate", "--channel", "wh", "--events", "200",
                                       "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    fileset = json.loads((out / "fileset.json").read_text())
    assert set(fileset) == {"wh", "ttbar", "wbb"}
    assert all(len(e["files"]) == 2 for e in fileset.values())
    assert all(e["metadata"]["n_events"] == 200 for e in fileset.values())


def test_cli_unwritable_output(tmp_path):
    from click.testing import CliRunner
    from ewpolar.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["generate", "--channel", "ssww", "--events", "10",
                                       "--out", str(blocker / "out")])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(blocker) in lines[0]
    assert "Traceback" not in result.output


def test_rare_backgrounds_are_oversampled_with_smaller_weights(ssww_cfg, tmp_path):
    """A sample's ``oversample`` multiplies its events; its events' weights (xsec × lumi / sumw)
    shrink by the same factor, so the expected yield stays the same."""
    factor = ssww_cfg.samples["ttbar_nonprompt"].oversample
    assert factor > 1
    names = ["ttbar_nonprompt", "wz"]
    fileset = json.loads(generate(ssww_cfg, events=300, seed=4, out=tmp_path,
                                  datasets=names).read_text())
    n = {name: fileset[name]["metadata"]["n_events"] for name in names}
    assert n == {"ttbar_nonprompt": 300 * factor, "wz": 300}
    data = ssww_cfg.model_dump()
    data["samples"]["ttbar_nonprompt"]["oversample"] = 1
    once = type(ssww_cfg).model_validate(data)
    single = json.loads(generate(once, events=300, seed=4, out=tmp_path / "once",
                                 datasets=["ttbar_nonprompt"]).read_text())
    ratio = fileset["ttbar_nonprompt"]["metadata"]["sumw"] / single["ttbar_nonprompt"]["metadata"]["sumw"]
    assert ratio == pytest.approx(factor, rel=0.1)
