"""Tests of the Pythia 8 backend: physics from the written GenPart, CP weights, LHE, files.

Samples are small (a few thousand events); statistical tolerances are three
standard deviations estimated from the sample itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from click.testing import CliRunner

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from ewpolar import observables as obs
from ewpolar.cli import main
from ewpolar.core.config import load_config
from ewpolar.generator.constants import MASS_T, STATUS_FLAGS
from ewpolar.generator.nanoaod import to_branches
from ewpolar.generator.processes import hard_process
from ewpolar.generator.pythia import generate, shower_lhe
from ewpolar.generator.pythia import writer as pythia_writer
from ewpolar.generator.pythia.lhe import event_weights, write_toy_lhe
from ewpolar.generator.pythia.run import BlockTask, run_block
from ewpolar.generator.wh import QUAD_COEFFICIENT

HARD = STATUS_FLAGS["isHardProcess"]
MASS_W_PYTHIA = 80.385
WH_EVENTS = 1000
TOP_EVENTS = 800
# tree-level longitudinal W fraction in the WH rest frame for qq̄' → WH at 13 TeV
WH_F0_TREE = 0.537


def _block(channel: str, dataset: str, process: str, n: int, seed: int = 3) -> dict:
    cfg = load_config(channel)
    cols = run_block(BlockTask(cfg, dataset, process, n, (seed, 1, 0, 0), 0))
    return to_branches(cols)


def _genpart(b: dict):
    counts = np.asarray(b["nGenPart"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    flat = {f: np.asarray(ak.flatten(b[f"GenPart_{f}"]))
            for f in ("pdgId", "genPartIdxMother", "statusFlags", "status")}
    return counts, offsets, flat


def _hard_w_decays(b: dict, mother_pdg: int | None = None):
    """Flat GenPart indices (lepton, its W, the W's non-W ancestor) of hard W → ℓν decays."""
    counts, offsets, g = _genpart(b)
    event = np.repeat(np.arange(counts.size), counts)
    out = []
    for j in np.nonzero((np.isin(np.abs(g["pdgId"]), (11, 13, 15)))
                        & ((g["statusFlags"] & HARD) != 0))[0]:
        m = g["genPartIdxMother"][j]
        if m < 0:
            continue
        w = offsets[event[j]] + m
        if abs(g["pdgId"][w]) != 24:
            continue
        a = w
        while a >= 0 and abs(g["pdgId"][a]) == 24:
            mm = g["genPartIdxMother"][a]
            a = offsets[event[j]] + mm if mm >= 0 else -1
        if mother_pdg is not None and (a < 0 or abs(g["pdgId"][a]) != mother_pdg):
            continue
        out.append((j, w, a, event[j]))
    return np.asarray(out, dtype=np.int64).reshape(-1, 4)


def _flat_p4(b: dict, flat_index: np.ndarray):
    cols = [np.asarray(ak.flatten(b[f"GenPart_{f}"]), dtype=np.float64)[flat_index]
            for f in ("pt", "eta", "phi", "mass")]
    return obs.ptetaphim_to_pxpypze(*cols)


def _fractions(cos: np.ndarray) -> tuple[float, float, float, float]:
    """(f0, f_L, f_R, σ(f0)) from the moments of dN/dcos θ*.

    ⟨c²⟩ = (2 − f0)/5 and ⟨c⟩ = (f_R − f_L)/2 for
    dN/dc = ¾ f0 (1 − c²) + ⅜ f_L (1 − c)² + ⅜ f_R (1 + c)².
    """
    c = cos[np.isfinite(cos)]
    f0 = 2.0 - 5.0 * np.mean(c * c)
    mean = np.mean(c)
    f_left = (1.0 - f0 - 2.0 * mean) / 2.0
    f_right = 1.0 - f0 - f_left
    return f0, f_left, f_right, 5.0 * np.std(c * c) / np.sqrt(c.size)


@pytest.fixture(scope="module")
def wh() -> dict:
    return _block("wh", "wh", "wh", WH_EVENTS)


# --------------------------------------------------------------------------- physics
@pytest.mark.slow
def test_top_decay_w_helicity_fractions_from_genpart():
    """f0 = m_t²/(m_t² + 2 m_W²) ≈ 0.70 and f_L ≈ 0.30 in t → W b from the written GenPart."""
    b = _block("wh", "ttbar", "ttbar_dileptonic", TOP_EVENTS, seed=5)
    found = _hard_w_decays(b, mother_pdg=6)
    assert found.shape[0] > 1.8 * TOP_EVENTS
    lep, w, top = (_flat_p4(b, found[:, k]) for k in range(3))
    cos = obs.cos_theta_star(*lep, *w, *top)
    f0, f_left, f_right, sigma = _fractions(cos)
    lo_f0 = MASS_T**2 / (MASS_T**2 + 2.0 * MASS_W_PYTHIA**2)
    assert abs(f0 - lo_f0) < 3.0 * sigma + 0.01, (f0, sigma)
    assert abs(f_left - (1.0 - lo_f0)) < 3.0 * sigma + 0.01, (f_left, sigma)
    assert abs(f_right) < 3.0 * sigma + 0.01


def test_wh_w_polarisation_matches_tree_level(wh):
    found = _hard_w_decays(wh, mother_pdg=None)
    assert found.shape[0] == WH_EVENTS  # every event has its W → ℓν in GenPart
    _counts, offsets, g = _genpart(wh)
    event = found[:, 3]
    higgs = np.array([offsets[e] + np.nonzero((g["pdgId"][offsets[e]:offsets[e + 1]] == 25)
                                              & (g["status"][offsets[e]:offsets[e + 1]] == 62))[0][0]
                      for e in event])
    lep, w, h = _flat_p4(wh, found[:, 0]), _flat_p4(wh, found[:, 1]), _flat_p4(wh, higgs)
    frame = tuple(a + c for a, c in zip(w, h, strict=True))
    f0, _, _, sigma = _fractions(obs.cos_theta_star(*lep, *w, *frame))
    assert abs(f0 - WH_F0_TREE) < 3.0 * sigma + 0.01, (f0, sigma)


def _truth_cp_inputs(b: dict):
    """(Q_ℓ cos δ⁺, p_T^W) of each event from the written GenPart (hard W → ℓν, H)."""
    found = _hard_w_decays(b)
    counts, offsets, g = _genpart(b)
    out_q = np.full(counts.size, np.nan)
    out_pt = np.full(counts.size, np.nan)
    for lep_i, w_i, _, e in found:
        sl = slice(offsets[e], offsets[e + 1])
        nu = offsets[e] + np.nonzero((np.isin(np.abs(g["pdgId"][sl]), (12, 14, 16)))
                                     & (g["genPartIdxMother"][sl] == w_i - offsets[e]))[0][0]
        h = offsets[e] + np.nonzero((g["pdgId"][sl] == 25) & (g["status"][sl] == 62))[0][0]
        lv, nv, hv, wv = (_flat_p4(b, np.array([k])) for k in (lep_i, nu, h, w_i))
        cdp = obs.cos_delta_plus(*lv, *nv, *hv)[0]
        out_q[e] = np.sign(g["pdgId"][w_i]) * cdp
        out_pt[e] = np.hypot(wv[0][0], wv[1][0])
    return out_q, out_pt


def test_q_cos_delta_plus_symmetric_at_sm(wh):
    q, _ = _truth_cp_inputs(wh)
    w = np.asarray(wh["CPWeight_sm"], dtype=np.float64)
    mean = np.average(q, weights=w)
    assert abs(mean) < 3.0 * np.std(q) / np.sqrt(q.size)
    # the reconstructed one: lepton + MET + two leading b-tagged jets
    rec = _reco_wh(wh)
    qr = rec["q_cos_delta_plus"][np.isfinite(rec["q_cos_delta_plus"])]
    assert qr.size > 100
    assert abs(np.mean(qr)) < 3.0 * np.std(qr) / np.sqrt(qr.size) + 0.02


def test_cp_weights_closure(wh):
    """CPWeight_int/quad are the toy's formula on the hard record; reweighting to c ≠ 0 closes."""
    q, ptw = _truth_cp_inputs(wh)
    kappa = load_config("wh").generator.cp_interference_scale
    sm = np.asarray(wh["CPWeight_sm"], dtype=np.float64)
    a = np.asarray(wh["CPWeight_int"], dtype=np.float64) / sm
    bq = np.asarray(wh["CPWeight_quad"], dtype=np.float64) / sm
    x = kappa * ptw / 100.0
    np.testing.assert_allclose(a, x * q, atol=2e-3, rtol=2e-3)
    np.testing.assert_allclose(bq, QUAD_COEFFICIENT * x * x, atol=2e-3, rtol=5e-3)
    for c in (-1.0, 1.5):
        w_c = sm * (1.0 + c * a + c * c * bq)
        assert np.all(w_c > 0)
        expected = np.sum(sm * (1 + c * x * q + c * c * QUAD_COEFFICIENT * x * x) * q) / np.sum(
            sm * (1 + c * x * q + c * c * QUAD_COEFFICIENT * x * x))
        assert np.average(q, weights=w_c) == pytest.approx(expected, rel=1e-2, abs=1e-3)
        assert np.sign(np.average(q, weights=w_c)) == np.sign(c)


def _reco_wh(b: dict) -> dict[str, np.ndarray]:
    """Leading lepton, MET, two leading b-jets: Q cos δ⁺ and the neutrino roots."""
    n = len(b["MET_pt"])
    lep = np.full((4, n), np.nan)
    charge = np.zeros(n)
    gen_idx = np.full(n, -1)
    for coll, mass in (("Electron", 0.000511), ("Muon", 0.10566)):
        pt = b[f"{coll}_pt"]
        has = ak.to_numpy(ak.num(pt) > 0) & ~np.isfinite(lep[0])
        first = ak.to_numpy(ak.fill_none(ak.firsts(pt), np.nan))
        vec = obs.ptetaphim_to_pxpypze(first, ak.to_numpy(ak.fill_none(ak.firsts(b[f"{coll}_eta"]), 0)),
                                       ak.to_numpy(ak.fill_none(ak.firsts(b[f"{coll}_phi"]), 0)),
                                       np.full(n, mass))
        for k in range(4):
            lep[k] = np.where(has, vec[k], lep[k])
        charge = np.where(has, ak.to_numpy(ak.fill_none(ak.firsts(b[f"{coll}_charge"]), 0)), charge)
        gen_idx = np.where(has, ak.to_numpy(ak.fill_none(ak.firsts(b[f"{coll}_genPartIdx"]), -1)),
                           gen_idx)
    btag = b["Jet_btagDeepFlavB"] > 0.2783
    good = btag & (b["Jet_pt"] > 20) & (abs(b["Jet_eta"]) < 2.5)
    jets = [ak.to_numpy(ak.fill_none(ak.pad_none(b[f"Jet_{f}"][good], 2)[:, :2], np.nan))
            for f in ("pt", "eta", "phi", "mass")]
    b1 = obs.ptetaphim_to_pxpypze(*(j[:, 0] for j in jets))
    b2 = obs.ptetaphim_to_pxpypze(*(j[:, 1] for j in jets))
    met_pt, met_phi = np.asarray(b["MET_pt"], float), np.asarray(b["MET_phi"], float)
    mx, my = met_pt * np.cos(met_phi), met_pt * np.sin(met_phi)
    cdp = obs.wh_cos_delta_plus_p4(tuple(lep), b1, b2, mx, my, rule="wh_beta")
    higgs = tuple(x + y for x, y in zip(b1, b2, strict=True))
    nu_beta = obs.neutrino_pz(*lep, mx, my, rule="wh_beta", h_px=higgs[0], h_py=higgs[1],
                              h_pz=higgs[2], h_e=higgs[3])
    return {"q_cos_delta_plus": charge * cdp, "nu_pz": nu_beta, "lep": lep, "met": (mx, my),
            "gen_idx": gen_idx}


def test_neutrino_root_choice_fraction(wh, capsys):
    """Fraction of events where the wh_beta rule picks the p_z root closer to the true ν."""
    rec = _reco_wh(wh)
    counts, offsets, g = _genpart(wh)
    lep, (mx, my) = rec["lep"], rec["met"]
    mw = obs.MW_GEV
    pt_l = np.hypot(lep[0], lep[1])
    mu = (mw**2 - (lep[3] ** 2 - pt_l**2 - lep[2] ** 2)) / 2.0 + lep[0] * mx + lep[1] * my
    a = lep[3] ** 2 - lep[2] ** 2
    big_a = mu * lep[2] / a
    delta = big_a**2 - (lep[3] ** 2 * (mx**2 + my**2) - mu**2) / a
    true_pz = np.full(counts.size, np.nan)
    for e in range(counts.size):
        sl = slice(offsets[e], offsets[e + 1])
        nus = np.nonzero(np.isin(np.abs(g["pdgId"][sl]), (12, 14))
                         & ((g["statusFlags"][sl] & HARD) != 0))[0]
        if nus.size == 1:
            true_pz[e] = _flat_p4(wh, np.array([offsets[e] + nus[0]]))[2][0]
    ok = np.isfinite(rec["nu_pz"]) & np.isfinite(true_pz) & (delta > 0) & (rec["gen_idx"] >= 0)
    chosen = rec["nu_pz"][ok]
    other = 2.0 * big_a[ok] - chosen
    correct = np.abs(chosen - true_pz[ok]) <= np.abs(other - true_pz[ok])
    fraction = correct.mean()
    with capsys.disabled():
        print(f"\nwh_beta correct neutrino root: {fraction:.3f} of {ok.sum()} events "
              "with two roots")
    assert ok.sum() > 50
    assert fraction > 0.55


# --------------------------------------------------------------------------- LHE
def test_toy_ssww_lhe_readable_and_showered_keeps_polarisation(tmp_path):
    import pylhe

    cfg = load_config("ssww")
    hard = hard_process(cfg, "ssww_LL", 50, np.random.default_rng(4))
    path = tmp_path / "ll.lhe"
    write_toy_lhe(path, hard, "ssww_ew")
    events = list(pylhe.LHEFile.fromfile(str(path)).events)
    assert len(events) == 50
    w_spins = [p.spin for p in events[0].particles if abs(p.id) == 24]
    assert w_spins == [0.0, 0.0]
    for e in events[:10]:
        tot = np.sum([[p.px, p.py, p.pz, p.e] for p in e.particles if p.status == 1], axis=0)
        inc = np.sum([[p.px, p.py, p.pz, p.e] for p in e.particles if p.status == -1], axis=0)
        np.testing.assert_allclose(tot, inc, atol=1e-5)
    nominal, lists = event_weights(path)
    assert nominal.shape == (50,)
    assert lists["LHEScaleWeight"].shape == (50, 9)

    b = _block("ssww", "ssww_LL", "ssww_ew", 200)
    assert len(b["genWeight"]) == 200
    found = _hard_w_decays(b)
    # two W → ℓν per event, longitudinal: ⟨cos² θ*⟩ = 1/5 in the WW frame
    event = found[:, 3]
    assert np.all(np.bincount(event, minlength=200) == 2)
    first = found[::2]
    second = found[1::2]
    l1, w1 = _flat_p4(b, first[:, 0]), _flat_p4(b, first[:, 1])
    l2, w2 = _flat_p4(b, second[:, 0]), _flat_p4(b, second[:, 1])
    frame = tuple(x + y for x, y in zip(w1, w2, strict=True))
    cos = np.concatenate([obs.cos_theta_star(*l1, *w1, *frame), obs.cos_theta_star(*l2, *w2, *frame)])
    f0, _, _, sigma = _fractions(cos)
    assert abs(f0 - 1.0) < 3.0 * sigma + 0.01


def test_shower_user_lhe_keeps_weights(tmp_path):
    cfg = load_config("ssww")
    hard = hard_process(cfg, "ssww_TT", 40, np.random.default_rng(8))
    plain = tmp_path / "plain.lhe"
    write_toy_lhe(plain, hard, "ssww_ew")
    text = plain.read_text()
    # a weighted file (strategy −4) with a reweighting group, like MadGraph's
    text = text.replace("247000 247000 3 1", "247000 247000 -4 1")
    text = text.replace("</initrwgt>", '<weightgroup name="mg_reweighting">\n'
                        '<weight id="rw0000"> set cHWtil 1 </weight>\n</weightgroup>\n</initrwgt>')
    lines = text.splitlines()
    out, k = [], 0
    for i, line in enumerate(lines):
        if i > 0 and lines[i - 1] == "<event>":
            parts = line.split()
            parts[2] = f"{(-1.0) ** k * (1.0 + 0.1 * k):.6e}"
            line = " ".join(parts)
            k += 1
        if line == "</rwgt>":
            out.append(f'<wgt id="rw0000"> {0.5 * (1.0 + 0.1 * (k - 1)):.6e} </wgt>')
        out.append(line)
    weighted = tmp_path / "mg.lhe"
    weighted.write_text("\n".join(out) + "\n")
    fileset = shower_lhe(cfg, weighted, out=tmp_path / "out", dataset="ssww_TT", seed=2)
    entry = json.loads(fileset.read_text())["ssww_TT"]
    arrays = [uproot.open(f)["Events"].arrays(["genWeight", "LHEReweightingWeight",
                                                "LHEScaleWeight"]) for f in entry["files"]]
    gen_weight = np.concatenate([ak.to_numpy(a["genWeight"]) for a in arrays])
    assert entry["metadata"]["n_events"] == gen_weight.size >= 36
    signs = np.sign(gen_weight)
    assert (signs < 0).any()
    assert (signs > 0).any()
    rw = np.concatenate([ak.to_numpy(ak.flatten(a["LHEReweightingWeight"])) for a in arrays])
    np.testing.assert_allclose(rw, 0.5 * np.abs(gen_weight) / gen_weight, rtol=1e-5)
    assert entry["metadata"]["polarization"] == "TT"


# --------------------------------------------------------------------------- files, CLI
def test_same_seed_same_files_for_any_job_count(tmp_path, monkeypatch):
    monkeypatch.setattr(pythia_writer, "BLOCK_EVENTS", 20)
    cfg = load_config("wh")
    outs = []
    for jobs in (1, 2):
        fileset = generate(cfg, events=80, seed=9, out=tmp_path / f"j{jobs}", datasets=["wh"],
                           jobs=jobs)
        entry = json.loads(fileset.read_text())["wh"]
        outs.append([uproot.open(f)["Events"].arrays() for f in entry["files"]])
    for a, b in zip(*outs, strict=True):
        assert a.fields == b.fields
        for field in a.fields:
            assert ak.all(ak.ravel(a[field]) == ak.ravel(b[field])), field


@pytest.mark.slow
def test_run_and_fit_on_pythia_wh_samples(tmp_path):
    # a few hundred events leave the high-p_T^W STXS bins empty: two bins here
    text = (Path(__file__).resolve().parents[2] / "config" / "wh.yaml").read_text()
    text = text.replace("stxs_ptv_edges: [0, 75, 150, 250, 400, 100000]", "stxs_ptv_edges: [0, 150, 100000]")
    text = text.replace("ptw: {edges: [0, 75, 150, 250, 400, 600, 2000]", "ptw: {edges: [0, 150, 2000]")
    config_path = str(tmp_path / "wh.yaml")
    Path(config_path).write_text(text)
    cfg = load_config(config_path)
    fileset = generate(cfg, events=250, seed=4, out=tmp_path / "samples", jobs=2)
    runner = CliRunner()
    run = runner.invoke(main, ["run", "--config", config_path, "--fileset", str(fileset),
                               "--out", str(tmp_path / "run"), "--no-progress"])
    assert run.exit_code == 0, run.output[-2000:]
    fit = runner.invoke(main, ["fit", "--config", config_path, "--histograms",
                               str(tmp_path / "run" / "histograms.root"), "--out", str(tmp_path / "fit")])
    assert fit.exit_code == 0, fit.output[-2000:]
    assert (tmp_path / "fit" / "results.json").is_file()


@pytest.mark.slow
def test_demo_runs_on_pythia_samples(tmp_path):
    from ewpolar.pipeline import run_demo

    res = run_demo(tmp_path, events=200, seed=2, executor="iterative", workers=1, report=False,
                   backend="pythia")
    metrics = {c: json.loads((run / "metrics.json").read_text()) for c, run in res.runs.items()}
    assert set(metrics) == {"ssww", "wh"}
    assert all(m["events_processed"] == m["events_total"] > 0 for m in metrics.values())
    # every channel either has its fit's headline or says why its fit was skipped
    for channel, label in (("ssww", "ssWW"), ("wh", "WH")):
        assert channel in res.results or any(
            line.startswith(f"{channel}: fit skipped") for line in res.lines), res.lines
        if channel in res.results:
            assert any(line.startswith(label) for line in res.lines)
