"""Per-chunk checkpoints as gzipped JSON, for coffea's Runner.

coffea's ``SimpleCheckpointer`` stores each chunk's output with cloudpickle; a
pickle read back from disk can run arbitrary code. :class:`JSONCheckpointer`
implements the same ``CheckpointerABC`` interface with a data-only format:
histograms in the UHI JSON schema (``hist.serialization``), cutflows, entry
counts and notes as plain JSON, and the chunk's coffea ``WorkItem`` as its
fields. A file that cannot be read back (truncated by an interruption, edited,
from another version) is ignored and the chunk is processed again.

Each file also carries

* the run's *fingerprint* (the config's hash, the regions, the input profile,
  the package version: whatever changes what a chunk's output is). A checkpoint
  written by a run with another fingerprint belongs to another analysis and is not
  loaded: reusing it would mix results of two configs into one set of histograms;
* the sha256 of its payload, so that a file edited after it was written (valid
  JSON, but no longer what the run wrote) is not trusted either.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from coffea.processor.checkpointer import CheckpointerABC
from coffea.processor.executor import WorkItem
from ewpolar.core.outputs import atomic_path
from ewpolar.selections.cutflow import CutCounts, CutNames
from hist import serialization

__all__ = ["FORMAT", "JSONCheckpointer"]

log = logging.getLogger(__name__)

FORMAT = "ewpolar-checkpoint/2"
_OUT_KEYS = {"hists", "cutflow", "entries", "bad_weights", "notes"}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _encode(output: dict[str, Any]) -> dict[str, Any]:
    out = output["out"]
    if set(out) - _OUT_KEYS:
        raise TypeError(f"unknown output keys {sorted(set(out) - _OUT_KEYS)}")
    items = []
    for item in output.get("processed", ()):
        items.append({"dataset": item.dataset, "filename": item.filename, "treename": item.treename,
                      "entrystart": int(item.entrystart), "entrystop": int(item.entrystop),
                      "fileuuid": item.fileuuid.hex() if isinstance(item.fileuuid, bytes)
                      else str(item.fileuuid),
                      "fileuuid_bytes": isinstance(item.fileuuid, bytes)})
    metrics = dict(output.get("metrics", {}))
    if "columns" in metrics:
        metrics["columns"] = sorted(metrics["columns"])
    return {
        "out": {
            "hists": {name: serialization.to_uhi(h) for name, h in out.get("hists", {}).items()},
            "cutflow": {ds: {r: {k: list(v) for k, v in flow.items()} for r, flow in regions.items()}
                        for ds, regions in out.get("cutflow", {}).items()},
            "entries": dict(out.get("entries", {})),
            "bad_weights": dict(out.get("bad_weights", {})),
            "notes": sorted(out.get("notes", ())),
        },
        "metrics": metrics,
        "processed": items,
    }


def _decode(data: dict[str, Any]) -> dict[str, Any]:
    raw = data["out"]
    out = {
        "hists": {name: serialization.from_uhi(h) for name, h in raw["hists"].items()},
        "cutflow": {ds: {r: {"cuts": CutNames(flow["cuts"]), "raw": CutCounts(flow["raw"]),
                             "weighted": CutCounts(flow["weighted"])}
                         for r, flow in regions.items()}
                    for ds, regions in raw["cutflow"].items()},
        "entries": dict(raw["entries"]),
        "bad_weights": dict(raw["bad_weights"]),
        "notes": set(raw["notes"]),
    }
    for name, h in out["hists"].items():
        h.name = name
    processed = set()
    for it in data["processed"]:
        uuid = bytes.fromhex(it["fileuuid"]) if it["fileuuid_bytes"] else it["fileuuid"]
        processed.add(WorkItem(it["dataset"], it["filename"], it["treename"], it["entrystart"],
                               it["entrystop"], uuid))
    metrics = dict(data.get("metrics", {}))
    if "columns" in metrics:
        metrics["columns"] = set(metrics["columns"])
    result: dict[str, Any] = {"out": out, "processed": processed}
    if metrics:
        result["metrics"] = metrics
    return result


def _digest(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JSONCheckpointer(CheckpointerABC):
    """coffea checkpointer writing ``DIR/<dataset>/<fileuuid>/<tree>/<start>-<stop>.json.gz``.

    Args:
        checkpoint_dir: the folder of the checkpoints.
        fingerprint: what identifies the analysis whose chunks these are; a file with
            another fingerprint is not loaded (the chunk is processed again).
    """

    def __init__(self, checkpoint_dir: str | Path, fingerprint: str = "") -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.fingerprint = fingerprint

    def filepath(self, metadata: Any) -> Path:
        return (self.checkpoint_dir / str(metadata["dataset"]) / str(metadata["fileuuid"])
                / str(metadata["treename"]) / f"{metadata['entrystart']}-{metadata['entrystop']}.json.gz")

    def load(self, metadata: Any, processor_instance: Any) -> Any:
        path = self.filepath(metadata)
        if not path.is_file():
            return None
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                envelope = json.load(f)
            if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            if envelope.get("fingerprint") != self.fingerprint:
                raise ValueError("written by a run of another config, regions or input")
            payload = envelope["payload"]
            if _digest(payload) != envelope.get("sha256"):
                raise ValueError("its content does not match its checksum")
            return _decode(json.loads(payload))
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            log.warning("checkpoint %s not used (%s); the chunk is processed again", path, exc)
            return None

    def save(self, output: Any, metadata: Any, processor_instance: Any) -> None:
        path = self.filepath(metadata)
        try:
            payload = json.dumps(_encode(output), default=_json_default)
        except (TypeError, ValueError) as exc:
            log.warning("chunk output cannot be checkpointed (%s)", exc)
            return
        envelope = {"format": FORMAT, "fingerprint": self.fingerprint, "sha256": _digest(payload),
                    "payload": payload}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as f:
            json.dump(envelope, f)
