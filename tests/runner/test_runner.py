"""`ewpolar run`: executors agree, event accounting, bad files, lazy reading, checkpoints."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner
from ewpolar.cli import main
from ewpolar.core.config import default_config_path, load_config
from ewpolar.core.histio import read_histograms
from ewpolar.generator import generate
from ewpolar.runner.run import load_fileset, run_analysis
from same_outputs import assert_same_histograms

CHUNK = 1500
SSWW_CFG = str(default_config_path("ssww"))


@pytest.fixture(scope="module")
def ssww_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ssww_samples")
    return generate(load_config("ssww"), events=3000, seed=11, out=out)


@pytest.fixture(scope="module")
def wh_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wh_samples")
    return generate(load_config("wh"), events=2000, seed=12, out=out)


def _cutflow(path: Path) -> dict:
    return json.loads((path / "cutflow.json").read_text())


def _assert_same_cutflow(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for ds in a:
        assert a[ds].keys() == b[ds].keys()
        for region in a[ds]:
            assert a[ds][region]["cuts"] == b[ds][region]["cuts"]
            assert a[ds][region]["raw"] == b[ds][region]["raw"]
            np.testing.assert_allclose(a[ds][region]["weighted"], b[ds][region]["weighted"], rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("channel", ["ssww", "wh"])
def test_executors_give_identical_results(channel: str, ssww_samples: Path, wh_samples: Path,
                                          tmp_path: Path) -> None:
    cfg = load_config(channel)
    fileset = load_fileset(ssww_samples if channel == "ssww" else wh_samples)
    outs = {}
    for name, workers in (("iterative", 1), ("futures", 2), ("dask", 2)):
        outs[name] = tmp_path / name
        res = run_analysis(cfg, fileset, executor=name, workers=workers, chunksize=CHUNK, out=outs[name])
        assert res.metrics["events_processed"] == res.metrics["events_total"] > 0
        assert res.metrics["chunks"] > len(fileset), "several chunks per dataset"
    for name in ("futures", "dask"):
        assert_same_histograms(outs["iterative"] / "histograms.root", outs[name] / "histograms.root")
        _assert_same_cutflow(_cutflow(outs["iterative"]), _cutflow(outs[name]))
    # the signal region selects something on the toy samples (the comparison is not vacuous)
    cut = _cutflow(outs["iterative"])
    assert any(cut[ds]["signal"]["raw"][-1] > 0 for ds in cut)


def test_cli_run_writes_outputs_and_accounts_events(ssww_samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--config", SSWW_CFG, "--fileset", str(ssww_samples),
                                       "--region", "signal", "--chunksize", str(CHUNK), "--no-progress",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    entries = sum(uproot.open(f)["Events"].num_entries
                  for ds in json.loads(ssww_samples.read_text()).values() for f in ds["files"])
    assert metrics["events_total"] == entries
    assert metrics["events_processed"] + metrics["events_skipped"] == entries
    assert metrics["events_skipped"] == 0
    assert metrics["skipped_files"] == []
    for key in ("seconds", "events_per_second", "columns_read", "bytes_read", "versions", "config_hash"):
        assert key in metrics
    assert metrics["bytes_read"] > 0
    hists = read_histograms(out / "histograms.root")
    assert {k.region for k in hists} == {"signal"}
    cut = _cutflow(out)
    assert set(cut) == set(json.loads(ssww_samples.read_text()))
    assert all(set(regions) == {"signal"} for regions in cut.values())


def test_reading_is_lazy(ssww_samples: Path, tmp_path: Path) -> None:
    cfg = load_config("ssww")
    res = run_analysis(cfg, load_fileset(ssww_samples), regions=["signal"], chunksize=CHUNK)
    columns = set(res.metrics["columns_read"])
    first_file = next(iter(json.loads(ssww_samples.read_text()).values()))["files"]
    all_branches = set(uproot.open(next(iter(first_file)))["Events"].keys())
    assert {"Jet_pt", "Muon_pt", "Electron_pt", "MET_pt"} <= columns
    assert columns < all_branches
    # branches no region, weight or observable of the signal region needs are never read
    assert not {"Muon_genPartIdx", "Electron_genPartIdx", "Jet_hadronFlavour"} & columns


@pytest.mark.parametrize("channel", ["ssww", "wh"])
def test_bulk_preload_reads_the_declared_branches_with_the_same_results(
        channel: str, ssww_samples: Path, wh_samples: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from coffea.nanoevents import NanoEventsFactory
    from ewpolar.runner.run import build_processor

    cfg = load_config(channel)
    samples = ssww_samples if channel == "ssww" else wh_samples
    fileset = load_fileset(samples)
    lazy = run_analysis(cfg, fileset, chunksize=CHUNK, preload=False, out=tmp_path / "lazy")
    preloads: list[frozenset[str] | None] = []
    from_root = NanoEventsFactory.from_root.__func__

    def spy(cls, *args, **kwargs):
        preloads.append(kwargs.get("preload"))
        return from_root(cls, *args, **kwargs)

    monkeypatch.setattr(NanoEventsFactory, "from_root", classmethod(spy))
    bulk = run_analysis(cfg, fileset, chunksize=CHUNK, out=tmp_path / "bulk")
    assert_same_histograms(tmp_path / "lazy" / "histograms.root", tmp_path / "bulk" / "histograms.root")
    _assert_same_cutflow(_cutflow(tmp_path / "lazy"), _cutflow(tmp_path / "bulk"))
    assert bulk.metrics["events_processed"] == lazy.metrics["events_processed"]
    assert bulk.metrics["chunks"] == lazy.metrics["chunks"] == len(preloads)
    # every chunk preloads the processor's declared branches ...
    declared = build_processor(cfg).columns()
    assert set(preloads) == {declared}
    # ... which are exactly those a lazy run reads, where the files have them
    in_files = set()
    for entry in fileset.values():
        for fname in entry["files"]:
            in_files |= set(uproot.open(fname)["Events"].keys())
    assert declared & in_files == set(lazy.metrics["columns_read"])
    assert bulk.metrics["columns_read"] == lazy.metrics["columns_read"]


@pytest.mark.parametrize("progress", [False, True])
def test_progress_bars_only_when_asked(progress: bool, ssww_samples: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from coffea.util import coffea_console

    capsys.readouterr()
    with coffea_console.capture() as captured:
        run_analysis(load_config("ssww"), load_fileset(ssww_samples), regions=["signal"],
                     chunksize=CHUNK, maxchunks=1, progress=progress)
    printed = captured.get() + "".join(capsys.readouterr())
    assert ("Processing" in printed) is progress
    assert not coffea_console.quiet  # the console is given back as it was


def test_a_run_leaves_no_garbage_and_the_collector_as_it_was(ssww_samples: Path) -> None:
    """The chunks' reference cycles are collected when a run ends, so repeated runs in
    one process (a notebook) do not pile them up; nothing stays frozen."""
    import gc

    cfg, fileset = load_config("ssww"), load_fileset(ssww_samples)
    run_analysis(cfg, fileset, chunksize=CHUNK, maxchunks=2)  # first-use garbage (imports, caches)
    gc.collect()
    run_analysis(cfg, fileset, chunksize=CHUNK, maxchunks=2)
    assert gc.get_freeze_count() == 0
    assert gc.collect() == 0


def _corrupt_files(fileset_path: Path, tmp_path: Path) -> tuple[Path, Path]:
    fileset = json.loads(fileset_path.read_text())
    ds = next(iter(fileset))
    files = list(fileset[ds]["files"])
    data = Path(files[0]).read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(data[: len(data) // 3])
    notree = tmp_path / "notree.root"
    with uproot.recreate(notree) as f:
        f["Other"] = {"x": np.arange(5)}
    return truncated, notree


@pytest.mark.parametrize("bad", ["truncated", "notree"])
def test_bad_file_one_line_error_or_skip(bad: str, ssww_samples: Path, tmp_path: Path) -> None:
    truncated, notree = _corrupt_files(ssww_samples, tmp_path)
    bad_file = truncated if bad == "truncated" else notree
    fileset = json.loads(ssww_samples.read_text())
    ds = next(iter(fileset))
    fileset[ds]["files"][str(bad_file)] = "Events"
    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps(fileset))

    out = tmp_path / "out"
    args = ["run", "--config", SSWW_CFG, "--fileset", str(fs_path), "--region", "signal",
            "--chunksize", str(CHUNK), "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert str(bad_file) in lines[0]
    assert "--skip-bad-files" in lines[0]
    assert not (out / "histograms.root").exists()

    result = CliRunner().invoke(main, [*args, "--skip-bad-files"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    skipped = {s["file"]: s for s in metrics["skipped_files"]}
    assert set(skipped) == {str(bad_file)}
    reason = skipped[str(bad_file)]["reason"]
    assert ("Events" in reason) if bad == "notree" else reason
    assert str(bad_file) in result.stderr
    good_entries = sum(uproot.open(f)["Events"].num_entries
                       for d in json.loads(ssww_samples.read_text()).values() for f in d["files"])
    assert metrics["events_processed"] == good_entries
    assert metrics["events_processed"] + metrics["events_skipped"] == metrics["events_total"]


def test_missing_fileset_entry_is_one_line(tmp_path: Path) -> None:
    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps({"d": {"files": {str(tmp_path / "gone.root"): "Events"}}}))
    result = CliRunner().invoke(main, ["run", "--config", SSWW_CFG, "--fileset", str(fs_path),
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "gone.root" in result.stderr
    assert "file not found" in result.stderr


def test_unknown_region_is_one_line(ssww_samples: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--config", SSWW_CFG, "--fileset", str(ssww_samples),
                                       "--region", "signl", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "signl" in result.stderr


def test_checkpoint_resume_processes_only_missing_chunks(ssww_samples: Path, tmp_path: Path) -> None:
    cfg = load_config("ssww")
    fileset = load_fileset(ssww_samples)
    ref = tmp_path / "ref"
    run_analysis(cfg, fileset, regions=["signal"], chunksize=CHUNK, out=ref)

    ckpt = tmp_path / "ckpt"
    run_analysis(cfg, fileset, regions=["signal"], chunksize=CHUNK, checkpoint=ckpt, out=tmp_path / "first")
    saved = sorted(ckpt.rglob("*.json.gz"))
    assert len(saved) >= 4
    # an interrupted run: half of the chunks never finished
    lost = saved[::2]
    for p in lost:
        p.unlink()
    kept_mtimes = {p: p.stat().st_mtime_ns for p in saved if p.exists()}

    res = run_analysis(cfg, fileset, regions=["signal"], chunksize=CHUNK, checkpoint=ckpt, out=tmp_path / "resumed")
    assert all(p.exists() for p in saved)
    # chunks already done were loaded, not recomputed (their checkpoints were not rewritten)
    assert all(p.stat().st_mtime_ns == t for p, t in kept_mtimes.items())
    assert res.metrics["events_processed"] == res.metrics["events_total"]
    assert_same_histograms(ref / "histograms.root", tmp_path / "resumed" / "histograms.root")
    _assert_same_cutflow(_cutflow(ref), _cutflow(tmp_path / "resumed"))

    # checkpoints are data, not pickles: gzipped JSON in the documented format
    with gzip.open(saved[0], "rt", encoding="utf-8") as f:
        assert json.load(f)["format"] == "ewpolar-checkpoint/2"
    # a checkpoint cut short by an interruption is not trusted: the chunk is processed again
    saved[1].write_bytes(saved[1].read_bytes()[:50])
    res = run_analysis(cfg, fileset, regions=["signal"], chunksize=CHUNK, checkpoint=ckpt,
                       out=tmp_path / "again")
    assert res.metrics["events_processed"] == res.metrics["events_total"]
    assert_same_histograms(ref / "histograms.root", tmp_path / "again" / "histograms.root")


def test_run_on_real_cms_nanoaod(tmp_path: Path) -> None:
    skhep_testdata = pytest.importorskip("skhep_testdata")
    try:
        path = skhep_testdata.data_path("nanoAOD_2015_CMS_Open_Data_ttbar.root")
    except Exception as exc:  # no cache and no network
        pytest.skip(f"CMS open-data NanoAOD not available: {exc}")
    local = tmp_path / "cms.root"
    shutil.copy(path, local)
    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps({"cms_opendata": {"files": {str(local): "Events"}, "metadata": {}}}))
    for channel in ("ssww", "wh"):
        out = tmp_path / channel
        result = CliRunner().invoke(main, ["run", "--config", str(default_config_path(channel)), "--fileset",
                                           str(fs_path), "--no-progress", "--out", str(out)])
        assert result.exit_code == 0, result.output
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["events_processed"] == metrics["events_total"] == 200
        cut = _cutflow(out)["cms_opendata"]
        for region, flow in cut.items():
            # the cutflow starts from all events and never grows
            assert flow["raw"][0] == 200, region
            assert all(b <= a for a, b in zip(flow["raw"], flow["raw"][1:], strict=False)), region
