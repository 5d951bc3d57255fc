"""A dask worker killed while tasks run: its tasks are recomputed and the result is unchanged.

The cluster is the one ``ewpolar run --executor dask`` starts (:func:`local_cluster`).
The run registers :class:`ewpolar.runner.workers.WorkerSetup` with it: its workers, and the
one the nanny starts in place of the killed one, serve 1 MiB allocations from the
heap, although distributed's ``MALLOC_TRIM_THRESHOLD_`` has them mapped one by one,
and hold the objects of their imports in the collector's permanent generation.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from ewpolar.core.config import load_config
from ewpolar.generator import generate
from ewpolar.runner.local import local_cluster
from ewpolar.runner.run import load_fileset, run_analysis
from ewpolar.runner.workers import allocation_is_mapped
from same_outputs import assert_same_histograms


@pytest.mark.slow
def test_killed_worker_gives_identical_histograms(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    cfg = load_config("ssww")
    fileset = load_fileset(generate(cfg, events=4000, seed=31, out=tmp_path / "samples",
                                    datasets=["ssww_LL", "ssww_TT", "wz"]))
    ref = run_analysis(cfg, fileset, regions=["signal"], chunksize=250, out=tmp_path / "ref")

    def worker_state() -> tuple[str | None, bool | None, bool]:
        return (os.environ.get("MALLOC_TRIM_THRESHOLD_"), allocation_is_mapped(1 << 20),
                gc.get_freeze_count() > 100_000)

    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        # distributed's trim threshold switches off glibc's dynamic mmap threshold
        assert set(client.run(worker_state).values()) == {("65536", True, False)}
        killed: dict[str, int] = {}

        def kill_when_busy() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = {w: tasks for w, tasks in client.processing().items() if tasks}
                # wait for the processing tasks (not the preprocessing) to be in flight
                if busy and any("Processor" in str(t) or "work" in str(t) for ts in busy.values()
                                for t in ts):
                    worker = next(iter(busy))
                    pid = client.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed[worker] = pid
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        res = run_analysis(cfg, fileset, regions=["signal"], executor="dask", chunksize=250,
                           scheduler=cluster.scheduler_address, security=cluster.security,
                           out=tmp_path / "dask")
        killer.join()
        client.wait_for_workers(2, timeout=60)
        restarted = client.run(worker_state)
    assert killed, "no moment with tasks in flight was found"
    # both workers, the nanny's replacement of the killed one too, are set up
    assert len(restarted) == 2
    assert set(restarted.values()) == {("65536", False, True)}
    assert res.metrics["events_processed"] == ref.metrics["events_processed"] == res.metrics["events_total"]
    assert_same_histograms(tmp_path / "ref" / "histograms.root", tmp_path / "dask" / "histograms.root")
