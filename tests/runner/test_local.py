"""Local workers: bounded in number, gone with their run, and closed to other users."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import distributed
import psutil
import pytest
from click.testing import CliRunner
from distributed.security import Security
from ewpolar.cli import main
from ewpolar.core.config import default_config_path, load_config
from ewpolar.core.errors import InputError
from ewpolar.generator import generate
from ewpolar.runner.local import check_workers, local_cluster, max_local_workers, process_pool


def test_workers_beyond_the_machine_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--workers 0"):
        check_workers(0)
    assert check_workers(1) == 1
    too_many = max_local_workers() + 1
    with pytest.raises(InputError, match=f"--workers {too_many}: at most {too_many - 1} local workers"):
        process_pool(too_many)
    fileset = tmp_path / "fileset.json"
    fileset.write_text('{"x": {"files": {}}}')
    for executor in ("futures", "dask"):
        tic = time.monotonic()
        result = CliRunner().invoke(main, ["run", "--config", str(default_config_path("ssww")),
                                           "--fileset", str(fileset), "--executor", executor,
                                           "--workers", "100000", "--out", str(tmp_path / "o")])
        assert result.exit_code == 2, result.output
        assert "--workers 100000" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert time.monotonic() - tic < 30


def _pool_workers(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
def test_killed_futures_run_leaves_no_worker(tmp_path: Path) -> None:
    fileset = generate(load_config("ssww"), events=4000, seed=3, out=tmp_path / "samples",
                       datasets=["ssww_LT", "wz"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "ewpolar.cli", "run", "--config", str(default_config_path("ssww")),
         "--fileset", str(fileset), "--executor", "futures", "--workers", "2", "--chunksize", "100",
         "--no-progress", "--out", str(tmp_path / "run")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _pool_workers(proc.pid)
        if len(workers) >= 2:
            break
        time.sleep(0.05)
    assert len(workers) >= 2, "the run ended before its pool started"
    proc.kill()
    proc.wait(timeout=30)
    _, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, f"orphaned workers: {[w.pid for w in alive]}"


@pytest.mark.slow
def test_local_dask_cluster_is_loopback_tls_only() -> None:
    with local_cluster(1) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        assert "127.0.0.1" in cluster.dashboard_link
        # the run's own client speaks TLS with the cluster's temporary credentials
        with distributed.Client(cluster) as client:
            assert client.submit(sum, [1, 2]).result() == 3
        # without them, another local user cannot connect: not in plain TCP, and not in TLS
        # with credentials of their own
        with pytest.raises((OSError, TimeoutError)):
            distributed.Client(address.replace("tls://", "tcp://"), timeout="3s")
        with pytest.raises((OSError, TimeoutError)):
            distributed.Client(address, timeout="3s", security=Security.temporary())
