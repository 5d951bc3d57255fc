"""Fault injection: damaged files, mistaken filesets and a user's bad day.

Each case damages one input the way a real one gets damaged and asserts what the user
gets: one line naming the file, branch or option (exit code 2), or, with
``--skip-bad-files``, a clean skip that is counted (processed + skipped = total) and
explained in metrics.json. The README's reliability section lists the cases.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import awkward as ak
import pytest
import uproot
from click.testing import CliRunner
from ewpolar.cli import main
from ewpolar.core.config import default_config_path, load_config
from ewpolar.generator import generate, writer

SSWW = str(default_config_path("ssww"))


@pytest.fixture(scope="module")
def uncompressed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two files of 500 events, written without compression so that a test can change
    the bytes of a basket where it wants to (in a compressed file a flipped bit lands
    somewhere in the decompressed data)."""
    out = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(writer.uproot, "ZSTD", lambda level: None)
        return generate(load_config("ssww"), events=1000, seed=3, out=out, datasets=["wz"])


def _files(fileset: Path) -> list[str]:
    return list(json.loads(fileset.read_text())["wz"]["files"])


def _copy_sample(fileset: Path, dest: Path) -> Path:
    """A copy of the sample's files and a fileset that names the copies."""
    dest.mkdir()
    data = json.loads(fileset.read_text())
    for entry in data.values():
        files = {}
        for name, tree in entry["files"].items():
            files[str(dest / Path(name).name)] = tree
            shutil.copy(name, dest / Path(name).name)
        entry["files"] = files
    out = dest / fileset.name
    out.write_text(json.dumps(data))
    return out


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["run", "--config", SSWW, "--no-progress", *args])
    return result.exit_code, result.stderr


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _set_counter(path: str, branch: str, entry: int, value: int) -> None:
    """Overwrite one entry of a flat int32 branch in its first (uncompressed) basket."""
    with uproot.open(path) as f:
        br = f["Events"][branch]
        assert br.compression is None
        seek = int(br.member("fBasketSeek")[0])
        keylen = br.basket(0).member("fKeylen")
    data = bytearray(Path(path).read_bytes())
    pos = seek + keylen + 4 * entry
    data[pos:pos + 4] = struct.pack(">i", value)
    Path(path).write_bytes(bytes(data))


def test_corrupt_basket_is_one_line_or_a_counted_skip(uncompressed: Path, tmp_path: Path) -> None:
    fileset = _copy_sample(uncompressed, tmp_path / "s")
    bad = _files(fileset)[0]
    # a counter that claims 1000 jets: the jet baskets no longer match the file's form
    _set_counter(bad, "nJet", 10, 1000)
    code, err = _run("--fileset", str(fileset), "--out", str(tmp_path / "stop"))
    assert code == 2
    assert bad in _one_line(err)
    assert not (tmp_path / "stop" / "histograms.root").exists()

    code, err = _run("--fileset", str(fileset), "--skip-bad-files", "--out", str(tmp_path / "skip"))
    assert code == 0, err
    metrics = json.loads((tmp_path / "skip" / "metrics.json").read_text())
    assert metrics["events_processed"] + metrics["events_skipped"] == metrics["events_total"] == 1000
    assert metrics["events_skipped"] == 500
    [skipped] = metrics["skipped_files"]
    assert skipped["file"] == bad
    assert "size of array" in skipped["reason"]


def test_missing_branch_is_named_and_not_retried(uncompressed: Path, tmp_path: Path) -> None:
    fileset = _copy_sample(uncompressed, tmp_path / "s")
    bad = _files(fileset)[0]
    # the same file without its jets
    with uproot.open(bad) as f:
        arrays = f["Events"].arrays(filter_name=["/^(Muon|Electron)_/", "MET_*", "genWeight", "event",
                                                 "run", "luminosityBlock"])
    content = {c: ak.zip({k[len(c) + 1:]: arrays[k] for k in arrays.fields if k.startswith(c + "_")})
               for c in ("Muon", "Electron")}
    content |= {k: arrays[k] for k in arrays.fields if not k.startswith(("Muon_", "Electron_"))}
    with uproot.recreate(bad) as f:
        f.mktree("Events", {k: v.type for k, v in content.items()})
        f["Events"].extend(content)
    code, err = _run("--fileset", str(fileset), "--retries", "3", "--skip-bad-files",
                     "--out", str(tmp_path / "o"))
    assert code == 0, err
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    [skipped] = metrics["skipped_files"]
    assert skipped["file"] == bad
    assert "Jet" in skipped["reason"]
    assert "tree" not in skipped["reason"]
    # a file that lacks a branch lacks it at every attempt
    assert not metrics["retries"]


@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink", "other_dataset"])
def test_a_file_listed_twice_is_refused(uncompressed: Path, tmp_path: Path, spelling: str) -> None:
    data = json.loads(uncompressed.read_text())
    first = _files(uncompressed)[0]
    entry = data["wz"]
    if spelling == "same":
        entry["files"] = [first, first]
    elif spelling == "dotdot":
        p = Path(first)
        entry["files"] = {first: "Events", str(p.parent / ".." / p.parent.name / p.name): "Events"}
    elif spelling == "symlink":
        link = tmp_path / "link.root"
        link.symlink_to(first)
        entry["files"] = {first: "Events", str(link): "Events"}
    else:
        data["wz_copy"] = {"files": {first: "Events"}, "metadata": entry["metadata"]}
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps(data))
    code, err = _run("--fileset", str(fileset), "--out", str(tmp_path / "o"))
    if spelling == "same":
        # a JSON list of the same name twice is one file
        assert code == 0, err
        metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
        assert metrics["events_skipped"] == 0
        assert metrics["events_processed"] == 500
        return
    assert code == 2
    line = _one_line(err)
    assert str(fileset) in line
    assert "listed" in line


@pytest.mark.parametrize(("change", "named"), [
    (lambda e: e.update(files={next(iter(e["files"])): 7}), "tree name"),
    (lambda e: e.update(metadata="xsec=3"), "'metadata'"),
    (lambda e: e.update(files={"": "Events"}), "file name"),
])
def test_fileset_entries_of_the_wrong_type_are_one_line(uncompressed: Path, tmp_path: Path,
                                                         change, named: str) -> None:
    data = json.loads(uncompressed.read_text())
    change(data["wz"])
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps(data))
    code, err = _run("--fileset", str(fileset), "--out", str(tmp_path / "o"))
    assert code == 2
    assert named in _one_line(err)
