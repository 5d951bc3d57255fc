"""`ewpolar run --retries`: transient read errors are retried a bounded number of times,
on every executor, and the attempts are reported in metrics.json.

A read error is simulated by patching the uproot source that the runner's ``uproot.open``
uses for local paths (``LOCAL_HANDLER``, uproot's ``MemmapSource``): its ``chunks``
method, which fetches the baskets, raises ``OSError`` for one chosen file. The patch
reaches the futures executor's forked workers and the threads of an in-process dask
cluster; what it counts is kept in files, which every process sees.
The failure is armed only while ``Runner.run`` processes chunks, so preprocessing
(which reads the file too) is not disturbed. Opening a file reads its header with
``chunk``, not ``chunks``, so the first basket read of a chunk attempt is the first
patched call of that attempt, and a failing call ends the attempt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uproot
from click.testing import CliRunner
from coffea import processor
from coffea.nanoevents import NanoAODSchema
from ewpolar.cli import main
from ewpolar.core.config import default_config_path, load_config
from ewpolar.core.errors import InputError
from ewpolar.generator import generate
from ewpolar.runner.run import LOCAL_HANDLER, RunResult, load_fileset, run_analysis, uproot_options
from same_outputs import assert_same_histograms

CHUNK = 300  # 1000-entry files -> 3 chunks per file
REGIONS = ["signal"]
SSWW_CFG = str(default_config_path("ssww"))
MESSAGE = "simulated transient read error"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("retry_samples")
    return generate(load_config("ssww"), events=2000, seed=17, out=out, datasets=["ssww_LL", "wz"])


@pytest.fixture(scope="module")
def target(samples: Path) -> str:
    """The file whose reads fail: the first file of the 'wz' dataset."""
    return next(iter(load_fileset(samples)["wz"]["files"]))


@pytest.fixture(scope="module")
def target_chunks(samples: Path, target: str) -> int:
    """Chunks of the failing file, as coffea's preprocessing splits it."""
    runner = processor.Runner(executor=processor.IterativeExecutor(), chunksize=CHUNK,
                              schema=NanoAODSchema)
    n = sum(item.filename == target for item in runner.preprocess(load_fileset(samples)))
    assert n >= 2, "the failing file has several chunks"
    return n


@pytest.fixture(scope="module")
def reference(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """An undisturbed run."""
    out = tmp_path_factory.mktemp("reference")
    res = run_analysis(load_config("ssww"), load_fileset(samples), regions=REGIONS, chunksize=CHUNK, out=out)
    assert res.metrics["retries"] == 0
    assert res.metrics["skipped_files"] == []
    assert res.metrics["events_processed"] == res.metrics["events_total"] > 0
    return res


@dataclass
class FlakyReads:
    """Reads of ``path`` while chunks are processed: how many, and how many to fail.

    ``state`` is a folder shared by every process that reads: ``armed`` exists while
    chunks are processed, each read appends a line to ``reads``, and a read fails when
    it can create one of the ``fail_first`` files ``fail-K`` (atomically, so each
    failure is taken once whichever process reads).
    """

    path: str
    state: Path
    fail_first: int | None  # None: every read fails

    @property
    def attempts(self) -> int:
        reads = self.state / "reads"
        return len(reads.read_text().splitlines()) if reads.exists() else 0

    @property
    def failed(self) -> int:
        return len(list(self.state.glob("fail-*")))

    def read_fails(self) -> bool:
        with (self.state / "reads").open("a") as f:
            f.write("read\n")
        if self.fail_first is None:
            return True
        for k in range(self.fail_first):
            try:
                os.close(os.open(self.state / f"fail-{k}", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            return True
        return False


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch, target: str, tmp_path: Path) -> FlakyReads:
    state = FlakyReads(path=target, state=tmp_path / "flaky", fail_first=0)
    state.state.mkdir()
    armed = state.state / "armed"
    source = LOCAL_HANDLER
    # the source the runner's uproot.open uses for a local path (the patch would be void otherwise)
    with uproot.open(target, **uproot_options({"ds": {"files": {target: "Events"}}})) as f:
        assert isinstance(f.file.source, source)
    original_chunks = source.chunks
    original_run = processor.Runner.run

    def chunks(self: Any, ranges: Any, notifications: Any) -> Any:
        if self._file_path == state.path and armed.exists() and state.read_fails():
            raise OSError(MESSAGE)
        return original_chunks(self, ranges, notifications)

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        armed.touch()  # after preprocessing: only chunk processing is disturbed
        try:
            return original_run(self, *args, **kwargs)
        finally:
            armed.unlink()

    monkeypatch.setattr(source, "chunks", chunks)
    monkeypatch.setattr(processor.Runner, "run", run)
    return state


@pytest.fixture(scope="module")
def threaded_cluster() -> Any:
    """A dask cluster of 2 worker threads in this process, which see the patched source."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        yield cluster


def executor_options(executor: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """``run_analysis`` arguments of one executor: futures with 2 worker processes, dask on
    the threaded cluster (coffea leaves a dask run's retries to dask, so it takes its own path)."""
    if executor == "dask":
        return {"executor": "dask", "scheduler": request.getfixturevalue("threaded_cluster").scheduler_address}
    if executor == "futures":
        return {"executor": "futures", "workers": 2}
    return {}


EXECUTORS = ["iterative", "futures", "dask"]


@pytest.fixture
def flaky_open(monkeypatch: pytest.MonkeyPatch, target: str, tmp_path: Path) -> FlakyReads:
    """Opening ``target`` through the runner's source fails ``fail_first`` times (the first
    open is coffea's preprocessing, whose metadata cache is emptied for that)."""
    from coffea.processor.executor import DEFAULT_METADATA_CACHE

    DEFAULT_METADATA_CACHE.clear()
    state = FlakyReads(path=target, state=tmp_path / "flaky-open", fail_first=0)
    state.state.mkdir()
    original_init = LOCAL_HANDLER.__init__

    def init(self: Any, file_path: str, **options: Any) -> None:
        if file_path == state.path and state.read_fails():
            raise OSError(MESSAGE)
        original_init(self, file_path, **options)

    monkeypatch.setattr(LOCAL_HANDLER, "__init__", init)
    return state


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize(("failures", "retries"), [(1, 1), (2, 3)])
def test_transient_errors_are_retried(failures: int, retries: int, executor: str, samples: Path,
                                      reference: RunResult, flaky: FlakyReads, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    flaky.fail_first = failures
    res = run_analysis(load_config("ssww"), load_fileset(samples), regions=REGIONS, chunksize=CHUNK,
                       retries=retries, out=tmp_path / "out", **executor_options(executor, request))
    # the first `failures` reads of the file fail, each ending one attempt of a chunk
    # (with several workers, not necessarily the same chunk); the next attempt succeeds
    assert flaky.failed == failures
    assert res.metrics["retries"] == failures
    assert res.metrics["options"]["retries"] == retries
    assert res.metrics["events_processed"] == res.metrics["events_total"] == reference.metrics["events_total"]
    assert res.metrics["events_skipped"] == 0
    assert res.metrics["skipped_files"] == []
    assert res.metrics["chunks"] == reference.metrics["chunks"]
    # bit for bit in the same summation order (the iterative reference); other executors
    # add the chunks up in another order
    assert_same_histograms(reference.out_dir / "histograms.root", tmp_path / "out" / "histograms.root",
                           exact=executor == "iterative")
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["retries"] == failures


def test_more_failures_than_retries_is_a_bad_file(samples: Path, flaky: FlakyReads, target: str) -> None:
    flaky.fail_first = 2
    with pytest.raises(InputError) as err:
        run_analysis(load_config("ssww"), load_fileset(samples), regions=REGIONS, chunksize=CHUNK, retries=1)
    assert flaky.attempts == flaky.failed == 2  # one chunk, tried retries + 1 = 2 times
    assert target in str(err.value)


@pytest.mark.parametrize("executor", ["iterative", "dask"])
def test_persistent_error_stops_the_run_in_one_line(executor: str, samples: Path, flaky: FlakyReads,
                                                    target: str, request: pytest.FixtureRequest) -> None:
    flaky.fail_first = None
    retries = 2
    with pytest.raises(InputError) as err:
        run_analysis(load_config("ssww"), load_fileset(samples), regions=REGIONS, chunksize=CHUNK,
                     retries=retries, **executor_options(executor, request))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{target}: ")
    assert MESSAGE in msg
    assert "--skip-bad-files" in msg
    # the run stops at the first chunk of the file that fails all its attempts (another
    # worker may have begun another chunk of the file meanwhile)
    if executor == "iterative":
        assert flaky.attempts == retries + 1
    else:
        assert flaky.attempts >= retries + 1


@pytest.mark.parametrize("executor", EXECUTORS)
def test_persistent_error_skips_the_file_after_bounded_attempts(executor: str, samples: Path,
                                                                reference: RunResult,
                                                                flaky: FlakyReads, target: str,
                                                                target_chunks: int, tmp_path: Path,
                                                                request: pytest.FixtureRequest) -> None:
    flaky.fail_first = None
    retries = 2
    res = run_analysis(load_config("ssww"), load_fileset(samples), regions=REGIONS, chunksize=CHUNK,
                       retries=retries, skip_bad_files=True, out=tmp_path / "out",
                       **executor_options(executor, request))
    m = res.metrics
    # every chunk of the file: retries + 1 attempts, each ending at its first read
    assert flaky.attempts == (retries + 1) * target_chunks
    assert m["retries"] == retries * target_chunks
    with uproot.open(target) as f:
        entries = f["Events"].num_entries
    assert m["events_total"] == reference.metrics["events_total"]
    assert m["events_processed"] == m["events_total"] - entries
    assert m["events_processed"] + m["events_skipped"] == m["events_total"]
    assert [s["file"] for s in m["skipped_files"]] == [target]
    skip = m["skipped_files"][0]
    assert skip["dataset"] == "wz"
    assert skip["entries_skipped"] == entries
    reason = skip["reason"]
    assert "\n" not in reason
    assert len(reason) <= 400
    assert reason.startswith("chunks failed while reading")
    assert f"after {retries + 1} attempts" in reason
    assert f"OSError: {MESSAGE}" in reason
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["skipped_files"] == m["skipped_files"]


def test_zero_retries_means_one_attempt(samples: Path, flaky: FlakyReads, target_chunks: int) -> None:
    flaky.fail_first = None
    res = run_analysis(load_config("ssww"), load_fileset(samples), regions=REGIONS, chunksize=CHUNK,
                       retries=0, skip_bad_files=True)
    assert flaky.attempts == target_chunks
    assert res.metrics["retries"] == 0
    assert [s["file"] for s in res.metrics["skipped_files"]] == [flaky.path]


def test_negative_retries_is_an_input_error(samples: Path) -> None:
    with pytest.raises(InputError, match="--retries"):
        run_analysis(load_config("ssww"), load_fileset(samples), regions=REGIONS, retries=-1)


def test_cli_negative_retries_is_one_line(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", SSWW_CFG, "--fileset", str(samples),
                                       "--region", "signal", "--no-progress", "--retries", "-1",
                                       "--out", str(out)])
    assert result.exit_code == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "--retries" in lines[0]
    assert lines[0].startswith("ewpolar: error:")
    assert not (out / "metrics.json").exists()


def test_cli_retries_reaches_metrics(samples: Path, flaky: FlakyReads, tmp_path: Path) -> None:
    flaky.fail_first = 2
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", SSWW_CFG, "--fileset", str(samples),
                                       "--region", "signal", "--chunksize", str(CHUNK), "--no-progress",
                                       "--retries", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["retries"] == 2
    assert metrics["options"]["retries"] == 2
    assert metrics["events_processed"] == metrics["events_total"]


def test_every_chunk_given_up_is_one_line(samples: Path, flaky: FlakyReads, target: str) -> None:
    flaky.fail_first = None
    fileset = {"wz": {"files": {target: "Events"}}}
    with pytest.raises(InputError) as err:
        run_analysis(load_config("ssww"), fileset, regions=REGIONS, chunksize=CHUNK, retries=1,
                     skip_bad_files=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("no chunk of any file could be read")
    assert f"{target}: after 2 attempts: OSError: {MESSAGE}" in msg


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("skip", [False, True])
def test_transient_error_in_preprocessing_is_retried(executor: str, skip: bool, samples: Path,
                                                      reference: RunResult, flaky_open: FlakyReads,
                                                      request: pytest.FixtureRequest) -> None:
    # coffea retries a dask run's preprocessing nowhere (it leaves retries to dask, and
    # skipping bad files ends the task at its first error): the runner asks again
    flaky_open.fail_first = 1
    res = run_analysis(load_config("ssww"), load_fileset(samples), regions=REGIONS, chunksize=CHUNK,
                       retries=1, skip_bad_files=skip, **executor_options(executor, request))
    assert flaky_open.failed == 1
    assert res.metrics["skipped_files"] == []
    assert res.metrics["events_processed"] == res.metrics["events_total"] == reference.metrics["events_total"]
    assert res.metrics["chunks"] == reference.metrics["chunks"]
