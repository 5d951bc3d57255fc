"""Run an analysis processor over a fileset with coffea's Runner.

The runner is the library side of ``ewpolar run``: it checks the fileset, builds the
processor of the config's channel, runs it with coffea's ``Runner`` on the chosen
executor (iterative, futures or dask-distributed), and writes the outputs of
docs/design.md atomically: ``histograms.root``, ``cutflow.json`` and ``metrics.json``.
:func:`run_processor` runs any other processor (e.g. the collector of the
classifiers' training events) with the same executors and options.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import json
import logging
import os
import re
import time
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uproot
from awkward.operations import ak_from_buffers
from coffea import processor
from ewpolar.core.config import AnalysisConfig, CondorSettings, config_hash
from ewpolar.core.errors import InputError, MissingBranchesError
from ewpolar.core.histio import write_histograms
from ewpolar.core.outputs import OutputLock, atomic_write_json, ensure_writable_dir, staged_outputs
from ewpolar.inputs.check import check_profile
from ewpolar.inputs.profile import Profile, load_profile
from ewpolar.inputs.schemas import schema_for
from ewpolar.runner.checkpoint import JSONCheckpointer
from ewpolar.runner.local import local_cluster, process_pool

if TYPE_CHECKING:
    from ewpolar.processors.base import AnalysisProcessor

__all__ = ["EXECUTORS", "ProcessorRun", "RunResult", "build_processor", "condor_cluster",
           "load_fileset", "run_analysis", "run_processor", "scaled_condor_cluster", "tls_security",
           "uproot_options"]

log = logging.getLogger(__name__)

EXECUTORS = ("iterative", "futures", "dask", "condor")

# Exceptions that mark an input file as bad (unreadable, truncated, no tree, corrupt
# baskets). With --skip-bad-files coffea skips the file; otherwise the run stops.
BAD_FILE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    uproot.exceptions.KeyInFileError,
    ValueError,
    EOFError,
    zlib.error,
    MissingBranchesError,
)


@dataclass
class RunResult:
    """What a run produced: the accumulated output, metrics and where files went."""

    output: dict[str, Any]
    metrics: dict[str, Any]
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)


def load_fileset(path: str | Path, tree: str = "Events") -> dict[str, Any]:
    """Read a coffea fileset JSON and check that every file it names exists.

    Remote URLs (``root://``, ``https://`` ...) are passed through unchecked. Files
    given as a list (no tree names) read ``tree`` (the input profile's tree).

    Raises:
        InputError: the fileset is missing, not JSON, malformed, or names a missing file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: fileset not found")
    try:
        fileset = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid JSON fileset: {exc}") from None
    if not isinstance(fileset, dict) or not fileset:
        raise InputError(f"{path}: a fileset is a non-empty mapping {{dataset: {{files, metadata}}}}")
    seen: dict[str, tuple[str, str]] = {}
    for dataset, entry in fileset.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict | list):
            raise InputError(f"{path}: dataset '{dataset}': needs a 'files' mapping {{path: tree}}")
        files = entry["files"]
        if isinstance(files, list):
            entry["files"] = files = dict.fromkeys(files, tree)
        metadata = entry.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise InputError(f"{path}: dataset '{dataset}': 'metadata' must be a mapping, "
                             f"not {type(metadata).__name__}")
        resolved = {}
        for fname, treename in files.items():
            if not isinstance(fname, str) or not fname:
                raise InputError(f"{path}: dataset '{dataset}': a file name must be a non-empty string")
            if not isinstance(treename, str) or not treename:
                raise InputError(f"{path}: dataset '{dataset}': file {fname}: the tree name must be "
                                 f"a string, not {treename!r}")
            name = fname
            if "://" not in fname:
                fpath = Path(fname)
                if not fpath.is_absolute():
                    fpath = path.parent / fpath
                # one spelling per file: /a/../a/x.root and a symbolic link are the same file
                fpath = fpath.resolve()
                if not fpath.is_file():
                    raise InputError(f"{path}: dataset '{dataset}': file not found: {fname}")
                name = str(fpath)
            # the same events counted twice would double their yields
            if name in seen:
                other, spelled = seen[name]
                also = "" if spelled == fname else f" (as {spelled})"
                raise InputError(f"{path}: dataset '{dataset}': file {fname} is already listed in "
                                 f"dataset '{other}'{also}; each file may appear once")
            seen[name] = (dataset, fname)
            resolved[name] = treename
        entry["files"] = resolved
    return fileset


def checkpoint_fingerprint(config: AnalysisConfig | None, proc: processor.ProcessorABC,
                           profile: Profile | None = None) -> str:
    """What a chunk's output depends on besides its events: the config, the regions filled,
    the processor, the input profile and the package version (a checkpoint of another
    fingerprint is not reused)."""
    from ewpolar import __version__

    regions = getattr(proc, "regions", None)
    parts = {"config": config_hash(config) if config is not None else None,
             "regions": sorted(regions) if regions is not None else None,
             "processor": f"{type(proc).__module__}.{type(proc).__qualname__}",
             "input": [profile.name, str(profile.source)] if profile is not None else None,
             "version": __version__}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def build_processor(config: AnalysisConfig, regions: list[str] | None = None,
                    profile: Profile | None = None) -> AnalysisProcessor:
    """The coffea processor of the config's channel, restricted to ``regions``, reading
    its input through ``profile`` (None: NanoAOD as it is)."""
    if config.channel == "ssww":
        from ewpolar.processors.ssww import SSWWProcessor

        proc: AnalysisProcessor = SSWWProcessor(config, regions=regions)
    else:
        from ewpolar.processors.wh import WHProcessor

        proc = WHProcessor(config, regions=regions)
    if profile is not None and not profile.identity:
        proc.input_profile = profile
    return proc


def condor_cluster(settings: CondorSettings) -> Any:
    """An HTCondorCluster (dask-jobqueue) with the config's resources; not yet scaled."""
    try:
        from dask_jobqueue import HTCondorCluster
    except ImportError:
        raise InputError("--executor condor: needs dask-jobqueue (pip install 'ewpolar[condor]')") from None
    return HTCondorCluster(
        cores=settings.cores,
        processes=settings.processes or settings.cores,
        memory=settings.memory,
        disk=settings.disk,
        job_extra_directives=dict(settings.job_extra_directives),
        log_directory=settings.log_directory,
        scheduler_options={"dashboard_address": ":0"},
    )


def scaled_condor_cluster(settings: CondorSettings) -> Any:
    """:func:`condor_cluster`, adaptive between the settings' bounds or scaled to its jobs."""
    cluster = condor_cluster(settings)
    if settings.adapt_maximum is not None:
        cluster.adapt(minimum=settings.adapt_minimum, maximum=settings.adapt_maximum)
    else:
        cluster.scale(jobs=settings.jobs or 1)
    return cluster


def tls_security(ca_file: str | None, cert: str | None, key: str | None) -> Any:
    """A distributed ``Security`` for a TLS scheduler, or None without certificates."""
    if not any((ca_file, cert, key)):
        return None
    from distributed.security import Security

    for option, value in (("--tls-ca-file", ca_file), ("--tls-cert", cert), ("--tls-key", key)):
        if value is None:
            raise InputError(f"{option}: TLS needs --tls-ca-file, --tls-cert and --tls-key together")
        if not Path(value).is_file():
            raise InputError(f"{option} {value}: file not found")
    return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)


def _dask_client(client: Any) -> Any:
    """``client``, with every worker of its cluster (present and future) set up.

    Raises:
        InputError: the workers cannot set the plugin up, typically because
            ewpolar is not installed where they run (they need it for the
            processor as well).
    """
    from ewpolar.runner.workers import WorkerSetup

    try:
        client.register_plugin(WorkerSetup())
    except Exception as exc:
        where = getattr(client.scheduler, "address", None) or "the dask scheduler"
        # a remote worker's ImportError may arrive as a plain Exception naming it
        if any(isinstance(c, ImportError) or "ModuleNotFoundError" in str(c)
               or "ImportError" in str(c) for c in _exception_chain(exc)):
            cause = "the workers need ewpolar installed"
        else:
            # e.g. a worker that died or lost its connection meanwhile: not an install problem
            cause = "a worker failed while setting it up; check the workers' logs"
        raise InputError(f"dask workers of {where}: cannot set up ewpolar's worker plugin "
                         f"({_one_line(exc)}); {cause}") from None
    return client


@contextmanager
def _quiet_unless(progress: bool) -> Iterator[None]:
    """Silence coffea's progress bars unless ``progress``.

    coffea's executors draw their bars on ``coffea.util.coffea_console`` even with
    ``status=False`` (the flag only reaches the task's fields), so the console is
    made quiet for the run instead.
    """
    from coffea.util import coffea_console

    before = coffea_console.quiet
    coffea_console.quiet = before or not progress
    try:
        yield
    finally:
        coffea_console.quiet = before


def _dask_executor(client: Any, progress: bool) -> processor.DaskExecutor:
    """coffea's executor on ``client``, its workers set up (:func:`_dask_client`).

    dask's own task retries are off: the attempts are those of :func:`_attempts`,
    and dask would run a chunk again that those have given up.
    """
    return processor.DaskExecutor(client=_dask_client(client), status=progress, retries=0)


def _connect(scheduler: str, security: Any) -> Any:
    """A client of the scheduler at ``scheduler``, or one line saying why not.

    Raises:
        InputError: TLS options with a plain address, a TLS address without them, a
            refused TLS handshake, or no scheduler answering.
    """
    import dask
    from distributed import Client

    tls = scheduler.startswith("tls://")
    if security is not None and not tls:
        raise InputError(f"--scheduler {scheduler}: --tls-ca-file/--tls-cert/--tls-key given, "
                         "but the address is not a tls:// one")
    if tls and security is None and not dask.config.get("distributed.comm.tls.ca-file", None):
        raise InputError(f"--scheduler {scheduler}: a TLS scheduler needs --tls-ca-file, "
                         "--tls-cert and --tls-key")
    try:
        return Client(scheduler, timeout="20s", security=security)
    except (OSError, TimeoutError, TypeError, ValueError) as exc:
        raise InputError(f"--scheduler {scheduler}: cannot connect: {_one_line(exc)}") from None


@contextmanager
def _executor(name: str, workers: int, scheduler: str | None, progress: bool,
              retries: int, config: AnalysisConfig | None = None,
              security: Any = None) -> Iterator[processor.executor.ExecutorBase]:
    if name == "iterative":
        yield processor.IterativeExecutor(status=progress, retries=retries)
    elif name == "futures":
        # one pool for the whole run: preprocessing and every runner.run share its workers
        # (and their imports and compiled kernels) instead of starting a pool each
        with process_pool(workers) as pool:
            yield processor.FuturesExecutor(pool=pool, workers=workers, status=progress,
                                            retries=retries)
    elif name == "dask":
        from distributed import Client

        if scheduler:
            client = _connect(scheduler, security)
            cluster = None
        else:
            cluster = local_cluster(workers)
            client = Client(cluster)
        try:
            yield _dask_executor(client, progress)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif name == "condor":
        from distributed import Client

        cluster = scaled_condor_cluster(config.condor if config is not None else CondorSettings())
        client = Client(cluster)
        try:
            yield _dask_executor(client, progress)
        finally:
            client.close()
            cluster.close()
    else:
        raise InputError(f"--executor {name}: unknown executor (choose from {', '.join(EXECUTORS)})")


def _known_files(runner: processor.Runner) -> dict[tuple[str, str], int]:
    """(file, tree) → entries, for the files coffea's preprocessing has read."""
    return {(meta.filename, meta.treename): int(md["numentries"])
            for meta, md in list(runner.metadata_cache.items()) if md and "numentries" in md}


def _file_entries(fileset: dict[str, Any], runner: processor.Runner) -> dict[str, dict[str, Any]]:
    """Entries of every input file, or the reason it cannot be read.

    Entries come from coffea's preprocessing (its metadata cache); only files it
    could not read are opened again here, to name the reason.
    """
    known = _known_files(runner)
    info: dict[str, dict[str, Any]] = {}
    for dataset, entry in fileset.items():
        for fname, tree in entry["files"].items():
            rec: dict[str, Any] = {"dataset": dataset, "tree": tree}
            if (fname, tree) in known:
                rec["entries"] = known[(fname, tree)]
            else:
                try:
                    with uproot.open(fname) as f:
                        if tree not in f:
                            raise uproot.exceptions.KeyInFileError(tree, file_path=fname)
                        rec["entries"] = int(f[tree].num_entries)
                    # readable now: coffea failed on it for a reason of its own
                    rec["error"] = "coffea could not read its metadata"
                except Exception as exc:  # any failure to open is a property of the file
                    rec["error"] = _one_line(exc)
            info[fname] = rec
    return info


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions behind it (``__cause__``, else ``__context__``), outermost first."""
    chain = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def _one_line(exc: BaseException) -> str:
    """The innermost useful message of an exception chain, on one line."""
    root = _exception_chain(exc)[-1]
    if isinstance(root, uproot.exceptions.KeyInFileError):
        # uproot raises it for a missing tree and for a missing branch alike
        what = "branch" if getattr(root, "object_path", None) else "tree"
        msg = f"no '{root.key}' {what} in the file"
    elif isinstance(root, InputError):
        msg = str(root)
    else:
        msg = f"{type(root).__name__}: {root}"
    return " ".join(msg.split())[:300]


_ITEM_FILE = re.compile(r"filename='([^']+)'")


def _failed_file(exc: BaseException) -> str | None:
    for cur in _exception_chain(exc):
        m = _ITEM_FILE.search(str(cur))
        if m:
            return m.group(1)
    return None


#: coffea's message when a schema cannot make events of a file (e.g. NanoAOD's of PHYSLITE)
NANOEVENTS_FAILED = "Failed creating nanoevents"

_READ_PACKAGES = ("uproot", "cramjam", "zlib", "lzma", "lz4", "zstandard")
#: source whose frames mean "reading the file": an exception raised below one of them
#: is a property of the file's bytes, not of the analysis code. uproot reads and
#: decompresses the baskets; awkward's from_buffers turns the read buffers into the
#: (lazy) arrays of the file's form, and fails when a corrupt basket or counter gives
#: buffers whose sizes contradict that form.
_READ_FRAMES = (str(Path(uproot.__file__).parent) + os.sep, ak_from_buffers.__file__)


def _raised_while_reading(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(_READ_FRAMES):
            return True
        tb = tb.tb_next
    return False


def _is_bad_file_error(exc: BaseException) -> bool:
    """True when the exception chain holds an I/O or deserialisation error, any error
    raised while uproot was reading the file, or coffea could not make events of the
    file with the input's schema."""
    return any(isinstance(cur, BAD_FILE_ERRORS) or type(cur).__module__.startswith(_READ_PACKAGES)
               or _raised_while_reading(cur) or NANOEVENTS_FAILED in str(cur)
               for cur in _exception_chain(exc))


def _cannot_change_on_retry(exc: BaseException) -> bool:
    """A file that lacks a branch or tree lacks it at the next attempt too."""
    return any(isinstance(cur, MissingBranchesError | uproot.exceptions.KeyInFileError)
               for cur in _exception_chain(exc))


#: key of a chunk's output under which :func:`_attempts` reports its retries
ATTEMPTS = "attempts"


def _attempts(retries: int, report: bool, _coffea_retries: int, skipbadfiles: Any, func: Any,
              *args: Any, use_result_type: bool = False, **kwargs: Any) -> Any:
    """One task of coffea's (a file's metadata, or a chunk), tried at most ``retries + 1``
    times, on every executor.

    It takes the place of coffea's ``Runner.automatic_retries``, with the same call
    (see :func:`_retrying`), and differs in two ways:

    - the attempts are those of ``--retries`` on every executor. coffea gives a
      dask run 0 here and leaves the retries to dask, which then never retries a
      task whose error ``--skip-bad-files`` (or preprocessing, which always skips)
      skips: one transient read error on a facility lost a chunk, or a whole file;
    - with ``report`` (chunks), what happened comes back in the chunk's output,
      under :data:`ATTEMPTS`: ``retried`` (failed attempts that were tried again)
      and ``skipped`` (file, attempts, last error of a chunk given up). coffea's
      warnings of the same stay in the worker process that emits them, so a
      futures or dask run could report neither. Preprocessing returns what
      coffea's does (None for a file given up; :func:`_file_entries` names why).
    """
    skip = bool(skipbadfiles)
    attempt = 0
    while True:
        try:
            out = func(*args, **kwargs)
            break
        except Exception as exc:
            item = args[0][0] if args and isinstance(args[0], tuple) else (args[0] if args else None)
            fname = getattr(item, "filename", None) or _failed_file(exc) or "?"
            if attempt < retries and not _cannot_change_on_retry(exc):
                log.info("%s: attempt %d of %d failed: %s", fname, attempt + 1, retries + 1,
                         _one_line(exc))
                attempt += 1
                continue
            # the runner skips BAD_FILE_ERRORS or nothing: a bad file is what
            # _is_bad_file_error says (also errors raised while reading, schema failures)
            if use_result_type or not skip or not _is_bad_file_error(exc):
                raise
            if not report:
                return None
            # an empty output merges with the others (coffea reads "out" of every run)
            return {"out": {}, ATTEMPTS: {"retried": attempt,
                                          "skipped": {(fname, attempt + 1, _one_line(exc))}}}
    if report:
        # the chunk's arrays sit in reference cycles (events, their behaviours and
        # caches) that the collector's generation thresholds reach only now and then:
        # without a collection per chunk a worker's memory grows with the number of
        # chunks it has processed, not with the chunk size (benchmarks/bench_memory.py)
        gc.collect()
        if attempt:
            out[ATTEMPTS] = {"retried": attempt, "skipped": set()}
    return out


@contextmanager
def _retrying(runner: processor.Runner, retries: int, *, report: bool) -> Iterator[None]:
    """``runner``'s tasks tried by :func:`_attempts` meanwhile.

    An instance attribute: coffea sends ``self.automatic_retries`` to the workers,
    and a partial of a module function pickles without the runner and its executor.
    """
    runner.automatic_retries = functools.partial(_attempts, retries, report)
    try:
        yield
    finally:
        del runner.automatic_retries


def _attempt_report(wrapped: dict[str, Any]) -> tuple[int, dict[str, str]]:
    """Failed-and-retried chunk attempts of a run, and the last error of each file whose
    chunks were given up (from the outputs of :func:`_attempts`)."""
    report = wrapped.pop(ATTEMPTS, None) or {}
    last: dict[str, str] = {}
    for fname, attempts, error in sorted(report.get("skipped", ())):
        last[fname] = f"after {attempts} attempts: {error}"
    return int(report.get("retried", 0)), last


#: uproot's source for local files: memory-mapped reads, no I/O thread
LOCAL_HANDLER = uproot.source.file.MemmapSource


def uproot_options(fileset: dict[str, Any]) -> dict[str, Any]:
    """Options of every ``uproot.open`` of a run: memory-mapped reads when all files are local.

    uproot's default source for a local path (fsspec) reads through an I/O thread,
    and every read is a hand-over between the chunk's thread and that one. With
    two dask workers busy on two cores those hand-overs made the chunks wait:
    their wall time summed to 1.24–1.41 times that of one worker alone, against
    1.04–1.22 with memory-mapped reads (benchmarks/README.md). Remote
    files (``root://``, ``https://`` ...) keep uproot's defaults.
    """
    local = all("://" not in fname for entry in fileset.values() for fname in entry["files"])
    return {"handler": LOCAL_HANDLER} if local else {}


def _run_chunks(runner: processor.Runner, chunks: list[Any], proc: AnalysisProcessor,
                preload: bool, options: dict[str, Any], retries: int) -> dict[str, Any]:
    """``runner.run`` over ``chunks``; with ``preload``, each chunk reads its branches in bulk.

    Each chunk is tried at most ``retries + 1`` times on every executor, and the
    attempts come back in the output (:func:`_attempts`, :func:`_attempt_report`).

    The branches are those the processor declares (``proc.columns()``; see
    :meth:`ewpolar.processors.base.AnalysisProcessor.columns`), given to every work item
    as coffea's ``preload``: a chunk reads them in one ``tree.arrays`` call, as
    ``uproot.iterate`` does, instead of one lazy read per branch. A branch a file
    lacks is not asked for, and one the processor reads without declaring it is
    still read lazily, so preloading changes the speed, never the results.
    """
    if preload:
        wanted = frozenset(proc.columns())
        chunks = [dataclasses.replace(item, preload=wanted) for item in chunks]
    with _retrying(runner, retries, report=True):
        return runner.run(chunks, proc, uproot_options=options)


@dataclass
class ProcessorRun:
    """What running a processor over a fileset gave (:func:`run_processor`).

    Attributes:
        output: the processor's accumulated output.
        files: per input file, its dataset, tree and entries, or ``error``: why
            it could not be read.
        runner_output: coffea's whole result (``out``, ``processed`` work items,
            ``metrics``).
        retried: failed chunk attempts that were tried again.
        last_errors: per file whose chunks were given up, its attempts and last error.
        seconds: wall time of the run (preprocessing included).
    """

    output: dict[str, Any]
    files: dict[str, dict[str, Any]]
    runner_output: dict[str, Any]
    retried: int
    last_errors: dict[str, str]
    seconds: float


def _check_options(executor: str, scheduler: str | None, chunksize: int, retries: int) -> None:
    if executor not in EXECUTORS:
        raise InputError(f"--executor {executor}: unknown executor (choose from {', '.join(EXECUTORS)})")
    if scheduler and executor != "dask":
        raise InputError("--scheduler: only used with --executor dask")
    if chunksize < 1:
        raise InputError(f"--chunksize {chunksize}: must be a positive number of entries")
    if retries < 0:
        raise InputError(f"--retries {retries}: must be 0 or more (attempts after a failed chunk)")


def run_processor(
    proc: processor.ProcessorABC,
    fileset: dict[str, Any],
    *,
    executor: str = "iterative",
    workers: int = 1,
    scheduler: str | None = None,
    chunksize: int = 100_000,
    align_clusters: bool = False,
    maxchunks: int | None = None,
    skip_bad_files: bool = False,
    checkpoint: str | Path | None = None,
    retries: int = 1,
    preload: bool = True,
    progress: bool = False,
    security: Any = None,
    config: AnalysisConfig | None = None,
    profile: Profile | None = None,
) -> ProcessorRun:
    """Run any coffea processor over ``fileset`` with the project's executors and options.

    The executor, retries, bad-file handling, checkpoints and preloading are those
    of :func:`run_analysis` (which runs the channel's processor with it); the
    options mean the same. ``preload`` reads the branches the processor declares
    (its ``columns()``, when it has one).

    Args:
        proc: the processor.
        fileset: coffea fileset (see :func:`load_fileset`).
        config: the analysis config, for the resources of the condor executor.
        profile: the input profile (:mod:`ewpolar.inputs`; None: NanoAOD as it is): it
            chooses the coffea schema, and is checked against the first file of each
            dataset before the run.

    Raises:
        InputError: a bad input file (without ``skip_bad_files``), no readable
            event, or an unusable option.
    """
    _check_options(executor, scheduler, chunksize, retries)
    profile = profile if profile is not None else load_profile(None)
    open_options = uproot_options(fileset)
    preload = preload and callable(getattr(proc, "columns", None))
    unreadable = {} if profile.identity else check_profile(profile, fileset)
    if unreadable and not skip_bad_files:
        raise InputError(f"{next(iter(unreadable.values()))} (use --skip-bad-files to skip it)")
    checked = fileset
    if unreadable:
        fileset = _without_files(fileset, unreadable)

    checkpointer = None
    if checkpoint is not None:
        checkpointer = JSONCheckpointer(ensure_writable_dir(checkpoint),
                                        fingerprint=checkpoint_fingerprint(config, proc, profile))

    tic = time.perf_counter()
    caught: list[warnings.WarningMessage] = []
    with _quiet_unless(progress), \
            _executor(executor, workers, scheduler, progress, retries, config, security) as exe:
        runner = processor.Runner(
            executor=exe,
            chunksize=chunksize,
            align_clusters=align_clusters,
            maxchunks=maxchunks,
            # preprocessing always skips: unreadable files are found below, with their reasons
            skipbadfiles=BAD_FILE_ERRORS,
            savemetrics=True,
            schema=schema_for(profile.format),
            checkpointer=checkpointer,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with _retrying(runner, retries, report=False):
                chunks = list(runner.preprocess(fileset, uproot_options=open_options))
        files = _file_entries(fileset, runner)
        for fname, reason in unreadable.items():
            dataset, tree = next((d, e["files"][fname]) for d, e in checked.items()
                                 if fname in e["files"])
            files[fname] = {"dataset": dataset, "tree": tree, "error": reason}
        bad = {f: r for f, r in files.items() if "error" in r and f not in unreadable}
        if bad and not skip_bad_files:
            fname, rec = next(iter(bad.items()))
            raise InputError(f"{fname}: {rec['error']} (use --skip-bad-files to skip it)")
        if not chunks:
            if bad or unreadable:
                raise InputError("no readable input file in the fileset")
            raise InputError("the fileset's files hold no events")
        runner.skipbadfiles = BAD_FILE_ERRORS if skip_bad_files else False
        # objects alive now (modules, config, fileset) need no scanning by the collector
        gc.freeze()
        try:
            with warnings.catch_warnings(record=True) as more:
                warnings.simplefilter("always")
                wrapped = _run_chunks(runner, chunks, proc, preload, open_options, retries)
            caught += more
            retried, last_errors = _attempt_report(wrapped)
            if not wrapped.get("processed"):
                fname, reason = next(iter(last_errors.items()), ("?", "no chunk returned"))
                raise InputError(f"no chunk of any file could be read ({fname}: {reason})")
        except Exception as exc:
            fname = _failed_file(exc)
            if fname is None or not _is_bad_file_error(exc):
                raise
            reason = _one_line(exc)
            if any(NANOEVENTS_FAILED in str(c) for c in _exception_chain(exc)):
                reason = (f"coffea cannot make events of it with the {profile.format} schema "
                          f"of input profile '{profile.name}' ({reason[:120]}); choose the input "
                          "profile of the file's format with --input")
            elif profile.identity and any(isinstance(c, MissingBranchesError)
                                          for c in _exception_chain(exc)):
                reason += " (not NanoAOD? choose its input profile with --input)"
            raise InputError(f"{fname}: {reason} (use --skip-bad-files to skip it)") from None
        finally:
            # the chunks' reference cycles (events and their arrays) that reached the
            # oldest generation go now, not at some later full collection: repeated
            # runs in one process (a notebook, a benchmark) then do not pile them up.
            # Collected before the unfreeze, so only the run's own objects are scanned.
            gc.collect()
            gc.unfreeze()
    seconds = time.perf_counter() - tic
    for w in caught:
        log.info("coffea: %s", w.message)
    return ProcessorRun(output=wrapped["out"], files=files, runner_output=wrapped,
                        retried=retried, last_errors=last_errors, seconds=seconds)


def run_analysis(
    config: AnalysisConfig,
    fileset: dict[str, Any],
    *,
    regions: list[str] | None = None,
    executor: str = "iterative",
    workers: int = 1,
    scheduler: str | None = None,
    chunksize: int = 100_000,
    align_clusters: bool = False,
    maxchunks: int | None = None,
    skip_bad_files: bool = False,
    checkpoint: str | Path | None = None,
    retries: int = 1,
    preload: bool = True,
    progress: bool = False,
    security: Any = None,
    input: str | Path | Profile | None = None,
    out: str | Path | None = None,
) -> RunResult:
    """Run the channel's processor over ``fileset`` and (optionally) write the outputs.

    Args:
        config: validated analysis config.
        fileset: coffea fileset (see :func:`load_fileset`).
        regions: region names, or None for all regions of the config.
        executor: 'iterative', 'futures', 'dask', or 'condor' (HTCondor jobs from config.condor).
        workers: processes for futures, or LocalCluster workers for dask.
        scheduler: address of an existing dask scheduler (dask executor only).
        security: a ``distributed.security.Security`` for a TLS scheduler (see :func:`tls_security`).
        chunksize: entries per chunk.
        align_clusters: end every chunk at a cluster boundary of its file (coffea's
            ``align_clusters``), so that no basket is decompressed by two chunks; a
            chunk then holds at least ``chunksize`` entries, up to the next cluster
            edge (a file of one cluster is one chunk). Worth it for files with large
            clusters (benchmarks/README.md).
        maxchunks: process at most this many chunks per dataset (quick looks).
        skip_bad_files: skip unreadable files (coffea's skipbadfiles) and report them.
        checkpoint: folder for per-chunk checkpoints (gzipped JSON, no pickle); a rerun
            loads the chunks already done instead of processing them again.
        retries: attempts after a failed chunk before the file counts as bad (0: none).
            The same on every executor (dask's own task retries are not used).
            ``metrics["retries"]`` counts the failed attempts that were retried.
        preload: read each chunk's branches in one bulk read (those the processor
            declares; see :func:`_run_chunks`) rather than one lazy read per branch.
            The results are the same either way.
        progress: show a progress bar.
        input: the input profile (:mod:`ewpolar.inputs`): a shipped profile's name
            (``nanoaod``, the default; ``physlite``, ``atlas-flat``,
            ``cms-opendata-2015``), a profile YAML file, or a loaded profile. It
            chooses the coffea schema and how the processors read the files; it is
            checked against the first file of each dataset before the run.
        out: output folder for histograms.root, cutflow.json, metrics.json.

    Raises:
        InputError: a bad input file (without ``skip_bad_files``), or an unusable option.
    """
    _check_options(executor, scheduler, chunksize, retries)
    profile = load_profile(input)
    out_dir = ensure_writable_dir(out) if out is not None else None
    # one run at a time per output folder, for the whole run: a second run into the
    # same folder stops at once instead of interleaving its files with this one's
    with OutputLock(out_dir) if out_dir is not None else contextlib.nullcontext():
        proc = build_processor(config, regions, profile)
        run = run_processor(
            proc, fileset, executor=executor, workers=workers, scheduler=scheduler,
            chunksize=chunksize, align_clusters=align_clusters, maxchunks=maxchunks,
            skip_bad_files=skip_bad_files, checkpoint=checkpoint, retries=retries,
            preload=preload, progress=progress, security=security, config=config,
            profile=profile)

        output = run.output
        raw_metrics = run.runner_output.get("metrics", {})
        metrics = _metrics(config, fileset, run.files, run.runner_output, raw_metrics,
                           run.seconds, retried=run.retried, last_errors=run.last_errors,
                           executor=executor, workers=workers, chunksize=chunksize,
                           align_clusters=align_clusters, regions=regions,
                           retries=retries)
        # what the processors skipped or assumed (missing branches, metadata)
        metrics["notes"] = sorted(output.get("notes", []))
        metrics["events_with_bad_weights"] = {
            ds: n for ds, n in sorted(output.get("bad_weights", {}).items()) if n}
        metrics["models"] = proc.models
        metrics["input"] = {"profile": profile.name, "source": profile.source,
                            "format": profile.format}
        _warn_input_notes(metrics["notes"])
        for dataset, n in metrics["events_with_bad_weights"].items():
            log.warning("dataset '%s': %d events with a NaN or infinite genWeight got weight 0",
                        dataset, n)

        result = RunResult(output=output, metrics=metrics, out_dir=out_dir)
        if out_dir is not None:
            # the three files appear together or not at all (a full disk stops them all)
            with staged_outputs(out_dir) as stage:
                write_histograms(output["hists"], stage / "histograms.root")
                atomic_write_json(stage / "cutflow.json", output.get("cutflow", {}))
                atomic_write_json(stage / "metrics.json", metrics)
            result.files = {"histograms": out_dir / "histograms.root",
                            "cutflow": out_dir / "cutflow.json",
                            "metrics": out_dir / "metrics.json"}
    return result


def _without_files(fileset: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """The fileset without ``files`` (datasets left without files are dropped)."""
    out = {}
    for dataset, entry in fileset.items():
        kept = {f: t for f, t in entry["files"].items() if f not in files}
        if kept:
            out[dataset] = {**entry, "files": kept}
    return out


#: notes that say what an input lacks (warned about on stderr as well as in metrics.json)
_INPUT_NOTES = ("input: ", "objects: ")


def _warn_input_notes(notes: list[str]) -> None:
    """One warning per thing the inputs lack (each note is ``<dataset>: <what>``)."""
    seen: set[str] = set()
    for note in notes:
        what = note.split(": ", 1)[-1]
        if what.startswith(_INPUT_NOTES) and what not in seen:
            seen.add(what)
            log.warning("%s", note)


def _metrics(config: AnalysisConfig, fileset: dict[str, Any], files: dict[str, dict[str, Any]],
             wrapped: dict[str, Any], raw: dict[str, Any], seconds: float, *, retried: int | None = None,
             last_errors: dict[str, str] | None = None, **options: Any) -> dict[str, Any]:
    """The metrics record of a run (AGC style): accounting, throughput, I/O, versions.

    ``retried``: failed chunk attempts that were retried (None: not known for the executor);
    ``last_errors``: per file skipped after retries, its attempts and last error (one line).
    """
    import awkward
    import coffea
    import numba
    import uproot as _uproot
    from ewpolar import __version__

    processed_items = wrapped.get("processed", set())
    processed_by_file: dict[str, int] = {}
    for item in processed_items:
        processed_by_file[item.filename] = processed_by_file.get(item.filename, 0) + (
            item.entrystop - item.entrystart)
    total = sum(r.get("entries", 0) for r in files.values())
    processed = sum(processed_by_file.values())
    skipped = []
    for fname, rec in files.items():
        done = processed_by_file.get(fname, 0)
        entries = rec.get("entries")
        if "error" in rec:
            skipped.append({"file": fname, "dataset": rec["dataset"], "entries_skipped": entries,
                            "reason": rec["error"]})
        elif entries is not None and done < entries:
            last = (last_errors or {}).get(fname)
            skipped.append({"file": fname, "dataset": rec["dataset"],
                            "entries_skipped": entries - done,
                            "reason": f"chunks failed while reading {last}" if last
                            else "chunks failed while reading (see log)"})
    columns = sorted({c.rsplit("-", 1)[0] for c in raw.get("columns", [])})
    return {
        "events_total": total,
        "events_processed": processed,
        "events_skipped": total - processed,
        "chunks": raw.get("chunks", 0),
        "retries": retried,
        "seconds": round(seconds, 4),
        "events_per_second": round(processed / seconds, 1) if seconds > 0 else None,
        "process_seconds": round(float(raw.get("processtime", 0.0)), 4),
        "columns_read": columns,
        "bytes_read": int(raw.get("bytesread", 0)),
        "skipped_files": skipped,
        "datasets": sorted(fileset),
        "options": {k: v for k, v in options.items()},
        "config": config.source,
        "config_hash": config_hash(config),
        "versions": {
            "ewpolar": __version__,
            "coffea": coffea.__version__,
            "awkward": awkward.__version__,
            "uproot": _uproot.__version__,
            "numba": numba.__version__,
        },
    }
