"""Hostile inputs through the CLI: each gives one clear line (or a reported skip) and no partial output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml
from click.testing import CliRunner
from ewpolar.cli import main
from ewpolar.core.config import default_config_path, load_config
from ewpolar.generator import generate, simulate

SSWW_CFG = default_config_path("ssww")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hostile_samples")
    return generate(load_config("ssww"), events=1500, seed=21, out=out, datasets=["ssww_LL", "wz"])


def _first_file(fileset: Path) -> tuple[str, str]:
    data = json.loads(fileset.read_text())
    ds = next(iter(data))
    return ds, next(iter(data[ds]["files"]))


def _write_tree(path: Path, branches: dict[str, np.ndarray | ak.Array]) -> None:
    with uproot.recreate(path) as f:
        types = {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()}
        tree = f.mktree("Events", types, counter_name=lambda c: "n" + c,
                        field_name=lambda outer, inner: f"{outer}_{inner}")
        tree.extend(branches)


def _truncated(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _bitflipped(src: Path, dst: Path) -> None:
    data = bytearray(src.read_bytes())
    # flip bytes in the middle of the file, where the compressed baskets are
    for i in range(len(data) // 3, len(data) // 3 + 4000, 3):
        data[i] ^= 0x5A
    dst.write_bytes(bytes(data))


def _missing_tree(src: Path, dst: Path) -> None:
    with uproot.recreate(dst) as f:
        f["NotEvents"] = {"x": np.arange(3)}


def _empty_file(src: Path, dst: Path) -> None:
    dst.write_bytes(b"")


def _missing_branches(src: Path, dst: Path) -> None:
    # a NanoAOD-like tree without muons, jets or MET
    n = 10
    _write_tree(dst, {"run": np.ones(n, np.uint32), "luminosityBlock": np.ones(n, np.uint32),
                      "event": np.arange(n, dtype=np.uint64), "genWeight": np.ones(n, np.float32)})


BAD_FILES = {
    "truncated": _truncated,
    "bit-flipped": _bitflipped,
    "missing tree": _missing_tree,
    "empty file": _empty_file,
    "missing branches": _missing_branches,
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_input_file(kind: str, samples: Path, tmp_path: Path) -> None:
    ds, src = _first_file(samples)
    bad = tmp_path / f"bad_{kind.replace(' ', '_')}.root"
    BAD_FILES[kind](Path(src), bad)
    fileset = json.loads(samples.read_text())
    fileset[ds]["files"][str(bad)] = "Events"
    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps(fileset))
    out = tmp_path / "out"
    args = ["run", "--config", str(SSWW_CFG), "--fileset", str(fs_path), "--region", "signal",
            "--chunksize", "800", "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert str(bad) in lines[0]
    assert not (out / "histograms.root").exists(), "no partial output that looks complete"
    assert not (out / "metrics.json").exists()

    result = CliRunner().invoke(main, [*args, "--skip-bad-files"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert [s["file"] for s in metrics["skipped_files"]] == [str(bad)]
    assert metrics["events_processed"] + metrics["events_skipped"] == metrics["events_total"]
    assert (out / "histograms.root").exists()


def test_zero_entry_file_is_not_an_error(samples: Path, tmp_path: Path) -> None:
    ds, _ = _first_file(samples)
    branches = {k: v[:0] for k, v in simulate(load_config("ssww"), "ssww_LL", 5,
                                              np.random.default_rng(1)).items()}
    empty = tmp_path / "zero_entries.root"
    _write_tree(empty, branches)
    fileset = json.loads(samples.read_text())
    fileset[ds]["files"][str(empty)] = "Events"
    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps(fileset))
    result = CliRunner().invoke(main, ["run", "--config", str(SSWW_CFG), "--fileset", str(fs_path),
                                       "--region", "signal", "--no-progress", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["skipped_files"] == []
    assert metrics["events_processed"] == metrics["events_total"]


def test_nan_and_inf_kinematics(tmp_path: Path) -> None:
    cfg = load_config("ssww")
    branches = simulate(cfg, "ssww_LL", 400, np.random.default_rng(3))
    pt = ak.to_numpy(ak.flatten(branches["Jet_pt"])).copy() if "Jet_pt" in branches else None
    assert pt is not None
    pt[::7] = np.nan
    pt[3::11] = np.inf
    branches["Jet_pt"] = ak.unflatten(pt, ak.num(branches["Jet_pt"]))
    met = np.asarray(branches["MET_pt"]).copy()
    met[::5] = np.nan
    branches["MET_pt"] = met
    path = tmp_path / "nan.root"
    _write_tree(path, branches)
    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps({"ssww_LL": {"files": {str(path): "Events"},
                                               "metadata": {"xsec_fb": 0.2, "sumw": 400.0,
                                                            "kind": "signal", "polarization": "LL"}}}))
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["run", "--config", str(SSWW_CFG), "--fileset", str(fs_path),
                                       "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    cut = json.loads((out / "cutflow.json").read_text())["ssww_LL"]["signal"]
    assert cut["raw"][0] == 400
    assert all(np.isfinite(cut["weighted"]))


def test_unknown_config_key_through_run(samples: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load(SSWW_CFG.read_text(encoding="utf-8"))
    raw["regions"]["signal"]["mjj_minimum"] = 400
    bad = tmp_path / "ssww.yaml"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    for extra in SSWW_CFG.parent.glob("*.json"):
        (tmp_path / extra.name).write_bytes(extra.read_bytes())
    result = CliRunner().invoke(main, ["run", "--config", str(bad), "--fileset", str(samples),
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "regions.signal.mjj_minimum: unknown key" in result.stderr
    assert not (tmp_path / "o").exists()


def test_fileset_with_missing_path(tmp_path: Path) -> None:
    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps({"d": {"files": {"relative/missing.root": "Events"}}}))
    result = CliRunner().invoke(main, ["run", "--config", str(SSWW_CFG), "--fileset", str(fs_path),
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "missing.root" in result.stderr
    assert "file not found" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else False,
                    reason="root can write into read-only folders; see the parent-is-a-file case")
def test_unwritable_output_folder_readonly(samples: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    result = CliRunner().invoke(main, ["run", "--config", str(SSWW_CFG), "--fileset", str(samples),
                                       "--out", str(ro / "out")])
    assert result.exit_code == 2
    assert "not writable" in result.stderr


def test_unwritable_output_folder(samples: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["run", "--config", str(SSWW_CFG), "--fileset", str(samples),
                                       "--out", str(blocker / "out")])
    assert result.exit_code == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert "not writable" in lines[0]
