"""Checkpoints are reused only by the analysis that wrote them, and only as written."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from ewpolar.core.config import load_config
from ewpolar.generator import generate
from ewpolar.runner.run import load_fileset, run_analysis
from same_outputs import assert_same_histograms

CHUNK = 1000


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(load_config("ssww"), events=2000, seed=5, out=tmp_path_factory.mktemp("ckpt_samples"))


def _cutflow(out: Path) -> dict:
    return json.loads((out / "cutflow.json").read_text())


def test_a_checkpoint_of_another_config_or_region_set_is_not_reused(samples: Path, tmp_path: Path) -> None:
    fileset = load_fileset(samples)
    cfg = load_config("ssww")
    ckpt = tmp_path / "ckpt"
    run_analysis(cfg, fileset, regions=["signal"], chunksize=CHUNK, checkpoint=ckpt, out=tmp_path / "a")

    # a tighter lepton cut: the stale chunks would keep the old cut's counts
    data = cfg.model_dump()
    data["objects"]["muon"]["pt_min"] = data["objects"]["muon"]["pt_min"] + 15.0
    tighter = type(cfg).model_validate(data)
    fresh = tmp_path / "fresh"
    run_analysis(tighter, fileset, regions=["signal"], chunksize=CHUNK, out=fresh)
    reused = tmp_path / "reused"
    run_analysis(tighter, fileset, regions=["signal"], chunksize=CHUNK, checkpoint=ckpt, out=reused)
    assert _cutflow(reused) == _cutflow(fresh)
    assert_same_histograms(fresh / "histograms.root", reused / "histograms.root", exact=True)

    # more regions than the checkpoints were written for
    fresh_all = tmp_path / "fresh_all"
    run_analysis(cfg, fileset, chunksize=CHUNK, out=fresh_all)
    reused_all = tmp_path / "reused_all"
    run_analysis(cfg, fileset, chunksize=CHUNK, checkpoint=ckpt, out=reused_all)
    assert _cutflow(reused_all) == _cutflow(fresh_all)
    assert_same_histograms(fresh_all / "histograms.root", reused_all / "histograms.root", exact=True)


def test_an_edited_checkpoint_is_not_loaded(samples: Path, tmp_path: Path) -> None:
    fileset = load_fileset(samples)
    cfg = load_config("ssww")
    ckpt = tmp_path / "ckpt"
    ref = tmp_path / "ref"
    run_analysis(cfg, fileset, regions=["signal"], chunksize=CHUNK, checkpoint=ckpt, out=ref)
    # a valid file with one count changed: it still decodes, but is not what the run wrote
    path = sorted(ckpt.rglob("*.json.gz"))[0]
    with gzip.open(path, "rt", encoding="utf-8") as f:
        envelope = json.load(f)
    payload = json.loads(envelope["payload"])
    flow = next(iter(next(iter(payload["out"]["cutflow"].values())).values()))
    flow["raw"][0] += 1000
    envelope["payload"] = json.dumps(payload)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(envelope, f)
    again = tmp_path / "again"
    run_analysis(cfg, fileset, regions=["signal"], chunksize=CHUNK, checkpoint=ckpt, out=again)
    assert _cutflow(again) == _cutflow(ref)
