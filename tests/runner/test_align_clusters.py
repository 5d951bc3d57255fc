"""``ewpolar run --align-clusters``: chunks end at cluster edges, with the same results.

The files are generated with clusters of 700 events (the generator's write size),
so chunks of 1000 entries cut through clusters unless aligned.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import ewpolar.generator.writer as writer
import pytest
import uproot
from click.testing import CliRunner
from ewpolar.cli import main
from ewpolar.core.config import load_config
from ewpolar.generator import generate
from same_outputs import assert_same_histograms

CLUSTER = 700


def _chunk_ranges(checkpoints: Path) -> dict[str, set[tuple[int, int]]]:
    ranges: dict[str, set[tuple[int, int]]] = {}
    for path in checkpoints.rglob("*"):
        if not path.is_file():
            continue
        with gzip.open(path, "rt") as fh:
            record = json.loads(json.load(fh)["payload"])
        for item in record["processed"]:
            ranges.setdefault(Path(item["filename"]).name, set()).add(
                (item["entrystart"], item["entrystop"]))
    return ranges


def test_aligned_chunks_end_at_cluster_edges_with_the_same_histograms(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "CHUNK_SIZE", CLUSTER)
    cfg = load_config("ssww")
    fileset = generate(cfg, events=6000, seed=11, out=tmp_path / "s", datasets=["ssww_LL"])
    files = sorted((tmp_path / "s").glob("*.root"))
    edges = {}
    for path in files:
        with uproot.open(path) as f:
            edges[path.name] = set(int(e) for e in f["Events"].common_entry_offsets())
    assert all(len(e) > 3 for e in edges.values())  # several clusters per file

    runs = {}
    for name, extra in (("plain", []), ("aligned", ["--align-clusters"])):
        out = tmp_path / name
        result = CliRunner().invoke(main, [
            "run", "--config", "ssww", "--fileset", str(fileset), "--chunksize", "1000",
            "--checkpoint", str(tmp_path / f"ckpt_{name}"), "--no-progress", "--out", str(out),
            *extra])
        assert result.exit_code == 0, result.output
        runs[name] = json.loads((out / "metrics.json").read_text())

    plain, aligned = _chunk_ranges(tmp_path / "ckpt_plain"), _chunk_ranges(tmp_path / "ckpt_aligned")
    assert set(plain) == set(aligned) == set(edges)
    for fname, chunks in aligned.items():
        assert all(start in edges[fname] and stop in edges[fname] for start, stop in chunks)
        assert min(stop - start for start, stop in chunks if stop != max(edges[fname])) >= 1000
    # without alignment some chunk boundary falls inside a cluster
    assert any(start not in edges[f] for f, chunks in plain.items() for start, _ in chunks)
    # each basket is read once when aligned, more than once when not
    assert runs["aligned"]["bytes_read"] < runs["plain"]["bytes_read"]
    assert runs["aligned"]["options"]["align_clusters"] is True
    assert runs["aligned"]["events_processed"] == runs["plain"]["events_processed"] == 6000
    assert_same_histograms(tmp_path / "plain" / "histograms.root",
                           tmp_path / "aligned" / "histograms.root")
    flows = [json.loads((tmp_path / name / "cutflow.json").read_text())["ssww_LL"]
             for name in ("plain", "aligned")]
    assert flows[0].keys() == flows[1].keys()
    for region, flow in flows[0].items():
        other = flows[1][region]
        assert flow["cuts"] == other["cuts"]
        assert flow["raw"] == other["raw"]
        # the same sums, added up over other chunks
        assert flow["weighted"] == pytest.approx(other["weighted"], rel=1e-12)
