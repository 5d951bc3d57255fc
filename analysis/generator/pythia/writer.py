"""Write Pythia datasets as NanoAOD-schema ROOT files plus a coffea ``fileset.json``.

The file layout is the toy's (:mod:`ewpolar.generator.writer`): each dataset is
split into ``generator.files_per_dataset`` files ``<out>/<dataset>_<i>.root``.
Each file is made of blocks of at most :data:`BLOCK_EVENTS` events, block j of
file i seeded by ``SeedSequence([seed, crc32(dataset), i, j])``; the blocks run
in ``jobs`` worker processes and are written in order, so the files are the
same for any number of jobs.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import zlib
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path

from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import InputError
from ewpolar.generator.nanoaod import EventColumns
from ewpolar.generator.pythia.processes import pythia_sample
from ewpolar.generator.pythia.run import BlockTask, run_block
from ewpolar.generator.writer import (
    existing_fileset,
    prepare_folder,
    split_events,
    write_columns_file,
    write_json_atomic,
)

__all__ = ["BLOCK_EVENTS", "generate", "shower_lhe"]

log = logging.getLogger(__name__)

BLOCK_EVENTS = 1000


class _Inline(Executor):
    """Runs tasks in the calling process when it is reached (one job)."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        future.set_result(_Deferred(fn, args, kwargs))
        return future


class _Deferred:
    def __init__(self, fn, args, kwargs) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def __call__(self):
        return self.fn(*self.args, **self.kwargs)


def _result(future: Future) -> EventColumns:
    value = future.result()
    return value() if isinstance(value, _Deferred) else value


def _executor(jobs: int) -> contextlib.AbstractContextManager:
    if jobs <= 1:
        return contextlib.nullcontext(_Inline())
    # fork: the workers start without importing everything again; the parent never
    # creates a Pythia instance when jobs > 1
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context)


def _progress(enabled: bool, total: int):
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeRemainingColumn(), transient=True)

    @contextlib.contextmanager
    def running():
        with bar:
            yield bar, bar.add_task("showering", total=total)

    return running()


def _require_extra() -> None:
    """One-line error when Pythia or fastjet is missing (the ``pythia`` extra)."""
    import importlib.util

    missing = [m for m in ("pythia8mc", "fastjet") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"the Pythia backend needs {', '.join(missing)}: "
                         "pip install 'ewpolar[pythia]'")


def _blocks(n: int) -> list[int]:
    return split_events(n, max(1, -(-n // BLOCK_EVENTS))) if n else [0]


def _write_dataset(folder: Path, config: AnalysisConfig, name: str,
                   tasks: list[list[tuple[BlockTask, Future]]], bar, metadata: dict) -> dict:
    files: dict[str, str] = {}
    totals = {"sumw": 0.0, "sumw_int": 0.0, "sumw_quad": 0.0}
    first = 1
    made = 0

    def advance(m: int) -> None:
        if bar is not None:
            bar[0].advance(bar[1], m)

    for i, file_tasks in enumerate(tasks):
        path = folder / f"{name}_{i}.root"
        counted = [0]

        def chunks(file_tasks=file_tasks, counted=counted) -> Iterator[EventColumns]:
            for _task, future in file_tasks:
                cols = _result(future)
                counted[0] += cols.n
                yield cols

        sums = write_columns_file(path, chunks(), first, i + 1, advance)
        for key in totals:
            totals[key] += sums[key]
        files[str(path)] = "Events"
        first += counted[0]
        made += counted[0]
    metadata = {**metadata, "sumw": totals["sumw"], "n_events": made}
    if config.channel == "wh":
        metadata["sumw_int"] = totals["sumw_int"]
        metadata["sumw_quad"] = totals["sumw_quad"]
    log.info("%s: %d events in %d files, sumw = %.6g", name, made, len(files), totals["sumw"])
    return {"files": files, "metadata": metadata}


def generate(config: AnalysisConfig, *, events: int, seed: int, out: Path,
             datasets: list[str] | None = None, progress: bool = False, jobs: int = 1,
             mpi: bool = False) -> Path:
    """Generate ``events`` Pythia events per dataset and write them with a coffea fileset.

    Args:
        config: analysis config; its ``samples`` are the datasets.
        events: events per dataset (split over ``generator.files_per_dataset`` files).
        seed: random seed; the output is identical for the same seed and any ``jobs``.
        out: output folder (created if needed).
        datasets: subset of the config's samples (default: all).
        progress: show a progress bar.
        jobs: worker processes.
        mpi: multi-parton interactions (off by default: about 10 times faster).

    Returns:
        Path of ``out/fileset.json`` (entries of other datasets are kept).

    Raises:
        InputError: unknown dataset or process, or the folder cannot be written.
    """
    if events < 1:
        raise InputError(f"--events {events}: need at least one event per dataset")
    _require_extra()
    names = list(config.samples) if datasets is None else list(datasets)
    samples = {name: pythia_sample(config, name) for name in names}
    folder = prepare_folder(Path(out))
    n_files = config.generator.files_per_dataset
    fileset_path = folder / "fileset.json"
    fileset = existing_fileset(fileset_path)
    # rare backgrounds: the config's samples.*.oversample, as for the toy
    counts = {name: events * config.samples[name].oversample for name in names}
    with _executor(jobs) as pool, _progress(progress, sum(counts.values())) as bar:
        planned = {}
        for name in names:
            crc = zlib.crc32(name.encode())
            planned[name] = [
                [(task, pool.submit(run_block, task)) for task in (
                    BlockTask(config, name, samples[name].process, m, (seed % 2**64, crc, i, j), j,
                              mpi=mpi)
                    for j, m in enumerate(_blocks(n)))]
                for i, n in enumerate(split_events(counts[name], n_files))]
        for name in names:
            sample = samples[name]
            if bar is not None:
                bar[0].update(bar[1], description=f"showering {name}")
            metadata: dict[str, object] = {
                "channel": config.channel, "process": sample.process, "kind": sample.kind,
                "xsec_fb": sample.xsec_fb, "generator": "pythia8", "mpi": mpi, "seed": seed,
            }
            if sample.polarization is not None:
                metadata["polarization"] = sample.polarization
            fileset[name] = _write_dataset(folder, config, name, planned[name], bar, metadata)
    write_json_atomic(fileset_path, fileset)
    return fileset_path


def _count_lhe_events(path: Path) -> int:
    count = 0
    with path.open("rb") as f:
        for line in f:
            if line.lstrip().startswith(b"<event"):
                count += 1
    return count


def shower_lhe(config: AnalysisConfig, lhe: Path, *, out: Path, dataset: str | None = None,
               events: int | None = None, seed: int = 1, progress: bool = False, jobs: int = 1,
               mpi: bool = False) -> Path:
    """Shower the events of an LHE file into one dataset, keeping its weights.

    ``genWeight`` is each event's ``XWGTUP``; the file's weight groups become
    ``LHEScaleWeight``, ``LHEPdfWeight`` and ``LHEReweightingWeight``
    (:mod:`.lhe`). The dataset is named ``dataset`` (default: the file's stem);
    when the config has a sample of that name its metadata is used.
    """
    _require_extra()
    path = Path(lhe)
    if not path.is_file():
        raise InputError(f"--lhe {lhe}: no such file")
    available = _count_lhe_events(path)
    if available == 0:
        raise InputError(f"--lhe {lhe}: no <event> blocks in the file")
    n_total = available if events is None else min(events, available)
    name = dataset or path.stem
    sample = config.samples.get(name)
    folder = prepare_folder(Path(out))
    fileset_path = folder / "fileset.json"
    fileset = existing_fileset(fileset_path)
    n_files = config.generator.files_per_dataset
    crc = zlib.crc32(name.encode())
    process = sample.process if sample is not None else "lhe"
    with _executor(jobs) as pool, _progress(progress, n_total) as bar:
        planned = []
        skip = 0
        for i, n in enumerate(split_events(n_total, n_files)):
            file_tasks = []
            for j, m in enumerate(_blocks(n)):
                task = BlockTask(config, name, process, m, (seed % 2**64, crc, i, j), j, mpi=mpi,
                                 lhe=str(path.resolve()), lhe_skip=skip)
                file_tasks.append((task, pool.submit(run_block, task)))
                skip += m
            planned.append(file_tasks)
        metadata: dict[str, object] = {
            "channel": config.channel, "process": process,
            "kind": sample.kind if sample is not None else "signal",
            "xsec_fb": sample.xsec_fb if sample is not None else 1.0,
            "generator": "pythia8", "mpi": mpi, "seed": seed, "lhe": str(path.resolve()),
        }
        if sample is not None and sample.polarization is not None:
            metadata["polarization"] = sample.polarization
        fileset[name] = _write_dataset(folder, config, name, planned, bar, metadata)
    write_json_atomic(fileset_path, fileset)
    return fileset_path
