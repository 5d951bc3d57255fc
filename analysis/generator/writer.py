"""Write toy datasets as NanoAOD-schema ROOT files plus a coffea ``fileset.json``.

Each dataset is split into ``generator.files_per_dataset`` files
``<out>/<dataset>_<i>.root`` with one TTree ``Events`` (ZSTD level 1), filled in
chunks of :data:`CHUNK_SIZE` events. File i of a dataset uses its own random
stream, ``np.random.SeedSequence([seed, crc32(dataset), i])``, so files are
independent, reproducible, and do not depend on which other datasets are made.
Files are written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import InputError
from ewpolar.generator.nanoaod import EventColumns, simulate_columns, to_tree_data
from ewpolar.generator.processes import sample_of

__all__ = ["CHUNK_SIZE", "COMPRESSION_LEVEL", "dataset_seed", "existing_fileset", "generate",
           "prepare_folder", "split_events", "write_columns_file", "write_json_atomic"]

log = logging.getLogger(__name__)

CHUNK_SIZE = 50_000
COMPRESSION_LEVEL = 1
TREE_NAME = "Events"


def dataset_seed(seed: int, dataset: str, file_index: int) -> np.random.SeedSequence:
    """Seed sequence of one file: independent of the other datasets and files."""
    return np.random.SeedSequence([seed % 2**64, zlib.crc32(dataset.encode()), file_index])


def split_events(events: int, parts: int) -> list[int]:
    base, extra = divmod(events, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def prepare_folder(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".ewpolar-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{out}: cannot write to the output folder ({reason})") from None
    return out.resolve()


def write_columns_file(path: Path, chunks: Iterable[EventColumns], first_event: int, lumi: int,
                       advance: Callable[[int], None]) -> dict[str, float]:
    """Write the chunks of one ROOT file atomically; returns the sums of its weights.

    ``luminosityBlock`` is set to ``lumi`` and ``event`` numbers run on from
    ``first_event``; ``chunks`` must yield at least one (possibly empty) chunk.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    sums = {"sumw": 0.0, "sumw_int": 0.0, "sumw_quad": 0.0}
    try:
        with uproot.recreate(tmp, compression=uproot.ZSTD(COMPRESSION_LEVEL)) as f:
            tree = None
            done = 0
            for cols in chunks:
                m = cols.n
                cols.set_scalar("luminosityBlock", np.full(m, lumi, dtype=np.uint32))
                cols.set_scalar("event", np.arange(first_event + done, first_event + done + m,
                                                   dtype=np.uint64))
                scalars = cols.scalars()
                sums["sumw"] += float(scalars["genWeight"].sum(dtype=np.float64))
                if "CPWeight_int" in scalars:
                    sums["sumw_int"] += float(scalars["CPWeight_int"].sum(dtype=np.float64))
                    sums["sumw_quad"] += float(scalars["CPWeight_quad"].sum(dtype=np.float64))
                data = to_tree_data(cols)
                if tree is None:
                    tree = f.mktree(TREE_NAME, {k: (v.type if isinstance(v, ak.Array) else v.dtype)
                                                for k, v in data.items()}, title=TREE_NAME)
                if m:
                    tree.extend(data)
                done += m
                advance(m)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise InputError(f"{path.parent}: cannot write {path.name} ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return sums


def _toy_chunks(config: AnalysisConfig, dataset: str, n: int,
                rng: np.random.Generator) -> Iterator[EventColumns]:
    done = 0
    while True:
        m = min(CHUNK_SIZE, n - done)
        yield simulate_columns(config, dataset, m, rng)
        done += m
        if done >= n:
            return


def write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise InputError(f"{path.parent}: cannot write {path.name} ({exc.strerror or exc})") from None


def existing_fileset(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("%s: unreadable, replacing it", path)
        return {}
    return old if isinstance(old, dict) else {}


def generate(config: AnalysisConfig, *, events: int, seed: int, out: Path,
             datasets: list[str] | None = None, progress: bool = False) -> Path:
    """Generate ``events`` events per dataset and write them with a coffea fileset.

    Args:
        config: analysis config; its ``samples`` are the datasets and
            ``generator`` holds the toy settings.
        events: events per dataset (split over ``generator.files_per_dataset`` files),
            times the sample's ``oversample`` factor.
        seed: random seed; the output is identical for the same seed.
        out: output folder (created if needed).
        datasets: subset of the config's samples (default: all).
        progress: show a progress bar.

    Returns:
        Path of ``out/fileset.json``. Entries of datasets not made by this call
        are kept from an existing ``fileset.json`` in the same folder.

    Raises:
        InputError: unknown dataset, or the folder cannot be written.
    """
    if events < 1:
        raise InputError(f"--events {events}: need at least one event per dataset")
    names = list(config.samples) if datasets is None else list(datasets)
    for name in names:
        sample_of(config, name)
    folder = prepare_folder(Path(out))
    n_files = config.generator.files_per_dataset
    fileset_path = folder / "fileset.json"

    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        bar = Progress("[progress.description]{task.description}", BarColumn(),
                       MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
    with bar if bar is not None else contextlib.nullcontext():
        counts = {name: events * config.samples[name].oversample for name in names}
        task = bar.add_task("generating", total=sum(counts.values())) if bar is not None else None

        def advance(m: int) -> None:
            if bar is not None:
                bar.advance(task, m)

        fileset = existing_fileset(fileset_path)
        for name in names:
            sample = config.samples[name]
            if bar is not None:
                bar.update(task, description=f"generating {name}")
            files: dict[str, str] = {}
            totals = {"sumw": 0.0, "sumw_int": 0.0, "sumw_quad": 0.0}
            first = 1
            for i, n in enumerate(split_events(counts[name], n_files)):
                path = folder / f"{name}_{i}.root"
                rng = np.random.default_rng(dataset_seed(seed, name, i))
                sums = write_columns_file(path, _toy_chunks(config, name, n, rng), first, i + 1,
                                          advance)
                for key in totals:
                    totals[key] += sums[key]
                files[str(path)] = "Events"
                first += n
            metadata: dict[str, object] = {
                "channel": config.channel,
                "process": sample.process,
                "kind": sample.kind,
                "xsec_fb": sample.xsec_fb,
            }
            if sample.polarization is not None:
                metadata["polarization"] = sample.polarization
            metadata.update({"sumw": totals["sumw"], "n_events": counts[name], "seed": seed})
            if config.channel == "wh":
                metadata["sumw_int"] = totals["sumw_int"]
                metadata["sumw_quad"] = totals["sumw_quad"]
            fileset[name] = {"files": files, "metadata": metadata}
            log.info("%s: %d events in %d files, sumw = %.6g", name, events, len(files),
                     totals["sumw"])
    write_json_atomic(fileset_path, fileset)
    return fileset_path
