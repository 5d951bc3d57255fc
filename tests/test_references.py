"""Every document the repository's files refer to is in the repository.

Code comments, docstrings, configs and documentation name other documents
(``docs/physics.md §1b``, ``benchmarks/README.md``, ``models/README.md``); each such
name must be a file of the repository, so that a reader can follow it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_DOC = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")
#: names that are not references to files of this repository: reports the commands write
_NOT_REFERENCES = {"closure.md", "limits.md"}


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / f for f in out if f.endswith((".py", ".md", ".yaml", ".toml", ".ipynb"))]


def test_referenced_documents_exist() -> None:
    files = _tracked()
    assert files
    missing = []
    for path in files:
        for name in set(_DOC.findall(path.read_text(encoding="utf-8", errors="replace"))):
            if name in _NOT_REFERENCES:
                continue
            where = (ROOT / name, path.parent / name, ROOT / "docs" / name)
            if not any(p.is_file() for p in where):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "references to documents not in the repository:\n" + "\n".join(missing)
