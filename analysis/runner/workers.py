"""Process settings of the workers that run chunks: glibc malloc and the garbage collector.

**malloc.** distributed's nannies start their workers with
``MALLOC_TRIM_THRESHOLD_=65536`` (config ``distributed.nanny.pre-spawn-environ``) so
that freed memory goes back to the system early. Setting any malloc threshold also
switches off glibc's dynamic mmap threshold, which would otherwise rise to the size
of the arrays a program frees: every allocation above 128 kiB is then mapped, zeroed
and unmapped afresh. The processor allocates many per-chunk arrays of 0.1–10 MB, and
ran about 1.7 times slower in such a worker than in a plain process
(benchmarks/README.md). :func:`tune_malloc` sets the two thresholds to the values
glibc's dynamic threshold ends at: allocations below 32 MiB come from the heap, and
the heap is trimmed when 64 MiB at its top are free. Peak memory per worker stays
bounded by the chunk size (``benchmarks/bench_memory.py``). Outside glibc (macOS,
musl) nothing is changed.

**Garbage collector.** A worker holds some 400 000 objects of the modules it
imports (coffea, awkward, dask, onnxruntime, ...). NanoEvents leave reference
cycles behind every chunk, so the collector runs full collections, and each of
them walked all those objects: 0.25–0.3 s per worker for every ten chunks of
100 000 events. :func:`freeze_imports` imports the analysis stack, collects, and
moves the survivors to the collector's permanent generation (:func:`gc.freeze`),
so full collections scan only what the chunks create. Objects made later are
collected as before. Importing at set-up, before the first chunk, also keeps a
worker's peak RSS level: with the imports made during the first chunks it grew
run after run, with page faults that made two-worker runs scatter
(benchmarks/README.md).

:class:`WorkerSetup` is a dask ``WorkerPlugin`` applying both in every worker of
the cluster, including workers that join later (a nanny's replacement of a lost
worker, new HTCondor jobs, a facility's adaptive workers). Unlike an environment
variable, this reaches workers whose environment ``ewpolar`` does not control
(``--scheduler``, ``--executor condor``).

The futures executor's worker processes need no malloc tuning: they start afresh
for each run, forked from a process with glibc's defaults. They do freeze their
imports (:func:`freeze_imports`, from the pool's initializer in
:mod:`ewpolar.runner.local`), because the runner collects garbage after every
chunk and the collection then does not walk the imports.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["ANALYSIS_MODULES", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "WorkerSetup",
           "allocation_is_mapped", "freeze_imports", "tune_malloc"]

#: glibc's largest dynamic mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_THRESHOLD = 32 * 1024 * 1024
#: twice the mmap threshold, as glibc sets it when it raises the dynamic threshold
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
#: what a worker imports to process chunks (the processors import the rest)
ANALYSIS_MODULES = ("ewpolar.processors.ssww", "ewpolar.processors.wh", "coffea.nanoevents", "onnxruntime")

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _glibc() -> Any | None:
    """glibc's C library, or None on another C library."""
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None
    return libc


def tune_malloc() -> bool:
    """Set this process's mmap and trim thresholds (see the module docstring).

    Returns:
        True when both were set (glibc), False otherwise.
    """
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok


def allocation_is_mapped(nbytes: int = 1 << 20) -> bool | None:
    """Whether malloc serves an allocation of ``nbytes`` with its own mmap in this process.

    Measured with glibc's ``mallinfo2`` (the count of mmapped blocks while the
    allocation is held); None where that is not available.
    """
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    before = libc.mallinfo2().hblks
    ptr = libc.malloc(nbytes)
    try:
        return libc.mallinfo2().hblks > before
    finally:
        libc.free(ptr)


_frozen = False


def freeze_imports(modules: tuple[str, ...] = ANALYSIS_MODULES) -> int:
    """Import ``modules``, collect, and exempt every object alive from later collections.

    Done once per process: every dask run registers :class:`WorkerSetup` again, and
    a long-lived worker (``--scheduler``) must not freeze, run after run, objects
    that are alive then but garbage later (frozen, they would never be collected).

    Returns:
        The number of objects in the collector's permanent generation.
    """
    global _frozen
    if not _frozen:
        for name in modules:
            importlib.import_module(name)
        gc.collect()
        gc.freeze()
        _frozen = True
    return gc.get_freeze_count()


class WorkerSetup(WorkerPlugin):
    """Applies :func:`tune_malloc` and :func:`freeze_imports` in every worker of a dask
    cluster, now and later."""

    name = "ewpolar-worker-setup"

    def setup(self, worker: Any) -> None:
        tune_malloc()
        freeze_imports()
