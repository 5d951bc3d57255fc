"""Local worker processes that are bounded, die with their run, and are not open to others.

* :func:`check_workers`: a run asks for at most as many local worker processes as the
  machine can hold. Each worker holds its own interpreter, the analysis' imports, the
  compiled kernels and one chunk's arrays (about 250 MB at the default chunk size,
  benchmarks/README.md), and a worker beyond the usable cores only competes for them.
  So the bound is four workers per usable core and, at most, what the available memory
  holds at 250 MB each. Beyond it the run stops with one line instead of forking
  thousands of processes.
* :func:`process_pool`: the futures executor's pool. Its workers ask the kernel for
  SIGKILL when their parent dies (Linux ``PR_SET_PDEATHSIG``), so a run killed with
  SIGKILL leaves no orphaned worker behind holding memory; and they freeze the
  analysis' imports for the garbage collector, which then runs after every chunk.
* :func:`local_cluster`: the dask LocalCluster of ``--executor dask --workers N``. It
  listens on the loopback interface only, speaks TLS with temporary credentials made
  for this run (``Security.temporary``), so another local user can neither connect
  to the scheduler nor run code in its workers, and serves its dashboard on
  127.0.0.1 only.
"""

from __future__ import annotations

import ctypes
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ewpolar.core.errors import InputError

__all__ = [
    "WORKERS_PER_CORE",
    "WORKER_MEMORY_BYTES",
    "check_workers",
    "local_cluster",
    "max_local_workers",
    "process_pool",
]

#: memory of one worker process at the default chunk size (measured: 220-250 MB)
WORKER_MEMORY_BYTES = 250 * 1024**2
#: workers per usable core before more only compete for the same cores
WORKERS_PER_CORE = 4
_PR_SET_PDEATHSIG = 1


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def max_local_workers() -> int:
    """The most local worker processes a run may start on this machine."""
    bound = WORKERS_PER_CORE * _usable_cores()
    memory = _available_memory()
    if memory is not None:
        bound = min(bound, max(1, memory // WORKER_MEMORY_BYTES))
    return max(1, bound)


def check_workers(workers: int) -> int:
    """``workers`` if this machine can hold that many local workers.

    Raises:
        InputError: ``workers`` is below 1 or above :func:`max_local_workers`.
    """
    if workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    bound = max_local_workers()
    if workers > bound:
        raise InputError(
            f"--workers {workers}: at most {bound} local workers on this machine "
            f"({_usable_cores()} usable cores, {WORKERS_PER_CORE} workers per core, about "
            f"{WORKER_MEMORY_BYTES // 1024**2} MB of memory each); for more, use a dask "
            "cluster (--scheduler or --executor condor)")
    return workers


def _die_with_parent() -> None:
    """The kernel sends this process SIGKILL when its parent process dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still applies
        return
    # the parent may have died between the fork and the prctl
    if os.getppid() == 1:
        os._exit(1)


def _pool_worker_setup() -> None:
    """Pool initializer: die with the run, and freeze the analysis' imports for the
    collector (as dask workers do, :func:`ewpolar.runner.workers.freeze_imports`), so the
    collection after each chunk does not walk them."""
    _die_with_parent()
    from ewpolar.runner.workers import freeze_imports

    freeze_imports()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` whose processes end when the run's process ends."""
    return ProcessPoolExecutor(max_workers=check_workers(workers), initializer=_pool_worker_setup)


def local_cluster(workers: int) -> Any:
    """The dask LocalCluster of ``ewpolar run --executor dask --workers N``.

    One thread per worker process, on 127.0.0.1, TLS with this run's temporary
    credentials, the dashboard on a free loopback port. The workers' malloc and
    garbage-collector settings come from :class:`ewpolar.runner.workers.WorkerSetup`,
    which every dask run registers with its cluster (this one or a ``--scheduler``'s).
    """
    from distributed import LocalCluster
    from distributed.security import Security

    return LocalCluster(n_workers=check_workers(workers), threads_per_worker=1, processes=True,
                        host="127.0.0.1", security=Security.temporary(),
                        dashboard_address="127.0.0.1:0")
