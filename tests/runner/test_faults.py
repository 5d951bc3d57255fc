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
import numpy as np
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


def _set_value(path: str, branch: str, entries: list[int], value: float, fmt: str) -> None:
    """Overwrite entries of a flat 4-byte branch in its first (uncompressed) basket."""
    with uproot.open(path) as f:
        br = f["Events"][branch]
        assert br.compression is None
        seek = int(br.member("fBasketSeek")[0])
        keylen = br.basket(0).member("fKeylen")
    data = bytearray(Path(path).read_bytes())
    for entry in entries:
        pos = seek + keylen + 4 * entry
        data[pos:pos + 4] = struct.pack(fmt, value)
    Path(path).write_bytes(bytes(data))


def _set_counter(path: str, branch: str, entry: int, value: int) -> None:
    _set_value(path, branch, [entry], value, ">i")


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


# ---------------------------------------------------------------- outputs of a run


def test_two_runs_into_one_folder_do_not_mix(uncompressed: Path, tmp_path: Path) -> None:
    from ewpolar.core.outputs import OutputLock

    out = tmp_path / "o"
    out.mkdir()
    # another run holds the folder: this one stops at once, in one line, writing nothing
    with OutputLock(out):
        code, err = _run("--fileset", str(uncompressed), "--out", str(out))
    assert code == 2
    assert "another ewpolar run" in _one_line(err)
    assert not (out / "histograms.root").exists()
    # the lock ends with its run
    code, err = _run("--fileset", str(uncompressed), "--out", str(out))
    assert code == 0, err


def test_a_full_disk_leaves_no_partial_output(uncompressed: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from ewpolar.runner import run as run_module

    real = run_module.atomic_write_json

    def no_room(path, data, *args, **kwargs):
        if Path(path).name == "metrics.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, *args, **kwargs)

    monkeypatch.setattr(run_module, "atomic_write_json", no_room)
    out = tmp_path / "o"
    code, err = _run("--fileset", str(uncompressed), "--out", str(out))
    assert code == 2
    assert "no space left" in _one_line(err)
    # histograms.root and cutflow.json were written, but not left behind without metrics.json
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".ewpolar.lock")) == []


# ---------------------------------------------------------------- models


def test_a_model_file_that_is_not_a_model_is_one_line(tmp_path: Path) -> None:
    import hashlib

    import yaml

    models = tmp_path / "models"
    shutil.copytree(Path(default_config_path("ssww")).parent.parent / "models", models)
    bad = models / "ssww_sig_vs_bkg.onnx"
    bad.write_bytes(b"this is not an ONNX protobuf" * 100)
    card = json.loads(bad.with_suffix(".json").read_text())
    card["sha256"] = hashlib.sha256(bad.read_bytes()).hexdigest()  # the card agrees
    bad.with_suffix(".json").write_text(json.dumps(card))
    cfg = yaml.safe_load(Path(SSWW).read_text())
    for spec in cfg["models"].values():
        spec["path"] = str(models / Path(spec["path"]).name)
    cfg["systematics"]["kfactor"]["file"] = str(Path(SSWW).parent / cfg["systematics"]["kfactor"]["file"])
    config = tmp_path / "ssww.yaml"
    config.write_text(yaml.safe_dump(cfg))
    fileset = generate(load_config("ssww"), events=200, seed=2, out=tmp_path / "s", datasets=["wz"])
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--fileset", str(fileset),
                                       "--no-progress", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    line = _one_line(result.stderr)
    assert "ssww_sig_vs_bkg.onnx" in line
    assert "sig_vs_bkg" in line


def test_metrics_name_the_models_behind_the_results(uncompressed: Path, tmp_path: Path) -> None:
    code, err = _run("--fileset", str(uncompressed), "--out", str(tmp_path / "o"))
    assert code == 0, err
    models = json.loads((tmp_path / "o" / "metrics.json").read_text())["models"]
    assert set(models) == {"sig_vs_bkg", "ll_vs_tx", "lx_vs_tt"}
    for spec in models.values():
        assert spec["sha256"] == hashlib_file(spec["path"])


def hashlib_file(path: str) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- dask schedulers


@pytest.mark.slow
def test_tls_refusals_are_one_line(uncompressed: Path, tmp_path: Path) -> None:
    from distributed.security import Security
    from ewpolar.runner.local import local_cluster

    other = Security.temporary()  # credentials of somebody else
    files = {}
    for option, pem in (("--tls-ca-file", other.tls_ca_file), ("--tls-cert", other.tls_client_cert),
                        ("--tls-key", other.tls_client_key)):
        path = tmp_path / option.strip("-")
        path.write_text(pem)
        files[option] = str(path)
    tls_args = [x for kv in files.items() for x in kv]
    base = ["--fileset", str(uncompressed), "--executor", "dask", "--out", str(tmp_path / "o")]
    with local_cluster(1) as cluster:
        address = cluster.scheduler_address
        cases = {
            "no certificates for a TLS scheduler": ([*base, "--scheduler", address], "needs --tls-ca-file"),
            "TLS options with a tcp:// address": (
                [*base, "--scheduler", address.replace("tls://", "tcp://"), *tls_args], "not a tls://"),
            "certificates the scheduler does not trust": (
                [*base, "--scheduler", address, *tls_args], "cannot connect"),
        }
        for case, (args, expected) in cases.items():
            code, err = _run(*args)
            assert code == 2, case
            assert expected in _one_line(err), case
            assert address.split("//")[1] in err, case


# ---------------------------------------------------------------- weights


def test_nan_generator_weights_are_left_out_and_counted(uncompressed: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    fileset = _copy_sample(uncompressed, tmp_path / "s")
    bad = _files(fileset)[0]
    entries = list(range(0, 500, 100))  # 1 % of the events
    _set_value(bad, "genWeight", entries, float("nan"), ">f")
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["run", "--config", SSWW, "--no-progress", "--fileset",
                                       str(fileset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["events_with_bad_weights"] == {"wz": len(entries)}
    assert any("genWeight is NaN" in n for n in metrics["notes"])
    # a warning on stderr (the CLI's log handler) as well
    assert any("genWeight" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    for name, h in uproot.open(out / "histograms.root").items(cycle=False):
        assert np.isfinite(h.values(flow=True)).all(), name
        assert np.isfinite(h.variances(flow=True)).all(), name
    cutflow = json.loads((out / "cutflow.json").read_text())
    for regions in cutflow.values():
        for flow in regions.values():
            assert np.isfinite(flow["weighted"]).all()


# ---------------------------------------------------------------- types of branches


def _rewrite(path: str, change) -> None:
    """Rewrite a NanoAOD-layout file with ``change(name, array) -> array`` applied to every
    branch (collections as zipped records with their ``n<Collection>`` counters)."""
    with uproot.open(path) as f:
        arrays = f["Events"].arrays()
    collections = {name[1:] for name in arrays.fields if name.startswith("n")
                   and any(f.startswith(name[1:] + "_") for f in arrays.fields)}
    content = {}
    for c in sorted(collections):
        content[c] = ak.zip({f[len(c) + 1:]: change(f, arrays[f]) for f in arrays.fields
                             if f.startswith(c + "_")})
    for name in arrays.fields:
        if name.split("_", 1)[0] not in collections and name[1:] not in collections:
            content[name] = change(name, arrays[name])
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: v.type for k, v in content.items()})
        f["Events"].extend(content)


@pytest.mark.parametrize(("branch", "dtype", "named"), [
    ("Muon_pt", np.int8, "Muon_pt holds int8"),
    ("event", np.float64, "event holds float64"),
])
def test_branches_of_the_wrong_type_are_one_line_or_a_counted_skip(
        uncompressed: Path, tmp_path: Path, branch: str, dtype, named: str) -> None:
    fileset = _copy_sample(uncompressed, tmp_path / "s")
    bad = _files(fileset)[0]
    _rewrite(bad, lambda name, a: ak.values_astype(a, dtype) if name == branch else a)
    code, err = _run("--fileset", str(fileset), "--out", str(tmp_path / "stop"))
    assert code == 2
    line = _one_line(err)
    assert bad in line
    assert named in line
    code, err = _run("--fileset", str(fileset), "--skip-bad-files", "--retries", "2",
                     "--out", str(tmp_path / "skip"))
    assert code == 0, err
    metrics = json.loads((tmp_path / "skip" / "metrics.json").read_text())
    assert [s["file"] for s in metrics["skipped_files"]] == [bad]
    assert metrics["events_processed"] + metrics["events_skipped"] == metrics["events_total"]
    assert not metrics["retries"]
