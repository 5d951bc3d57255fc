"""Filesets of single real files for the input-profile tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def one_file_fileset(path: Path, tree: str, dataset: str = "sample",
                     **metadata: Any) -> dict[str, Any]:
    meta = {"kind": "background", "xsec_fb": 1.0, "sumw": 1.0, **metadata}
    return {dataset: {"files": {str(path): tree}, "metadata": meta}}
