"""Output files written atomically: a temporary file in the same folder, then a rename.

A reader never sees a half-written file under the final name, and an interrupted
run leaves the previous complete output (or none) in place.

A run's several outputs appear together or not at all (:func:`staged_outputs`): they
are written into a staging folder inside the output folder first, where a full disk
or any other failure stops them, and only then renamed into place (a rename needs no
space). An output folder is held by one run at a time (:class:`OutputLock`): a second
run into the same folder stops with one line instead of mixing its files with the
first run's.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ewpolar.core.errors import InputError

__all__ = ["OutputLock", "atomic_path", "atomic_write_json", "ensure_writable_dir", "staged_outputs"]

LOCK_NAME = ".ewpolar.lock"
_STAGING_PREFIX = ".ewpolar-staging-"


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


def _write_error(path: Path, exc: OSError) -> InputError:
    if exc.errno == errno.ENOSPC:
        return InputError(f"{path}: no space left on the device; no output of this run was written")
    if exc.errno == errno.EDQUOT:
        return InputError(f"{path}: disk quota exceeded; no output of this run was written")
    reason = exc.strerror or type(exc).__name__
    return InputError(f"{path}: cannot write the outputs ({reason}); none of them was written")


class OutputLock:
    """An exclusive lock on an output folder for the lifetime of a run.

    ``flock`` on ``DIR/.ewpolar.lock``: the kernel releases it when the process ends,
    however it ends, so a killed run leaves no stale lock behind.

    Raises:
        InputError: another process holds the folder.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        path = self.folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError(f"{self.folder}: another ewpolar run (pid {holder}) is writing into "
                             "this output folder; wait for it or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@contextmanager
def staged_outputs(folder: str | Path) -> Iterator[Path]:
    """Yield a staging folder inside ``folder``; on success move every file in it to ``folder``.

    Files of an earlier run of the same names are replaced only once all of this run's
    outputs are complete. On failure nothing is moved and the staging folder is removed.

    Raises:
        InputError: writing failed for lack of space or another OS error (one line).
    """
    folder = Path(folder)
    stage = Path(tempfile.mkdtemp(dir=folder, prefix=_STAGING_PREFIX))
    try:
        try:
            yield stage
        except OSError as exc:
            raise _write_error(folder, exc) from None
        for path in sorted(stage.iterdir()):
            path.replace(folder / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
