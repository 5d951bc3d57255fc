"""Output files written atomically: a temporary file in the same folder, then a rename.

A reader never sees a half-written file under the final name, and an interrupted
run leaves the previous complete output (or none) in place.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ewpolar.core.errors import InputError

__all__ = ["atomic_path", "atomic_write_json", "ensure_writable_dir"]


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be written there.

    Raises:
        InputError: one line naming the folder when it cannot be created or written.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".ewpolar-write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{path}: output folder is not writable ({reason})") from None
    return path


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` on success."""
    final = Path(final)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private; give it the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)
    try:
        yield tmp_path
        tmp_path.replace(final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_json(final: str | Path, data: Any, default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``data`` as indented JSON to ``final`` atomically; returns the path."""
    final = Path(final)
    with atomic_path(final) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=default) + "\n",
                       encoding="utf-8")
    return final
