"""Run Pythia 8 on one block of events and return its NanoAOD branches.

A block is the unit of work of :func:`ewpolar.generator.pythia.generate`: a
fixed number of events of one dataset file with its own seed sequence
``[seed, crc32(dataset), file, block]``, which seeds both Pythia
(``Random:seed``) and the detector's numpy generator. Blocks do not depend on
which process runs them, so the output is the same for any number of jobs.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import InputError
from ewpolar.generator.nanoaod import EventColumns
from ewpolar.generator.processes import hard_process
from ewpolar.generator.pythia.events import EventBlock, read_event
from ewpolar.generator.pythia.hadron import block_columns
from ewpolar.generator.pythia.lhe import LHE_LISTS, weight_groups, write_toy_lhe
from ewpolar.generator.pythia.processes import PYTHIA_PROCESSES, base_settings, process_settings

__all__ = ["BlockTask", "interleave", "run_block", "shower"]

log = logging.getLogger(__name__)

MAX_FAILURES = 100


@dataclass(frozen=True)
class BlockTask:
    """One block: ``n`` events of ``dataset`` (``process``), or events ``lhe_skip`` … of ``lhe``."""

    config: AnalysisConfig
    dataset: str
    process: str
    n: int
    entropy: tuple[int, ...]
    block: int
    mpi: bool = False
    lhe: str | None = None
    lhe_skip: int = 0


def _pythia(settings: list[str]):
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            raise InputError(f"Pythia rejected the setting '{line}'")
    if not pythia.init():
        raise InputError("Pythia failed to initialise (settings: " + "; ".join(settings) + ")")
    return pythia


def shower(settings: list[str], n: int, *, lhe_groups: dict[str, list[str]] | None = None,
           lhe_range: bool = False) -> tuple[EventBlock, dict[str, np.ndarray]]:
    """Generate up to ``n`` events with ``settings``; returns them and their LHE weight lists.

    With LHE input (``lhe_groups`` not None) ``genWeight`` is the event's ``XWGTUP``
    and the block ends early at the end of the file; with ``lhe_range`` it ends
    once ``n`` LHE events have been read (accepted or not), so that blocks of a
    file never share an event. Events that
    Pythia rejects are retried (at most :data:`MAX_FAILURES` in a row).
    """
    pythia = _pythia(settings)
    block = EventBlock()
    lists: dict[str, list[list[float]]] = {k: [] for k in (lhe_groups or {})}
    failures = 0
    while block.n < n:
        if not pythia.next():
            info = pythia.infoPython()
            if info.atEndOfFile() or (lhe_range and info.nTried() >= n):
                break
            failures += 1
            if failures > MAX_FAILURES:
                raise InputError(f"Pythia failed {MAX_FAILURES} events in a row")
            continue
        failures = 0
        info = pythia.infoPython()
        read_event(pythia.event, info, block)
        if lhe_groups is not None:
            block.weight[-1] = info.eventWeightLHEF  # XWGTUP as in the file
            w0 = block.weight[-1]
            for key, ids in lhe_groups.items():
                lists[key].append([_lhe_weight(info, i, w0) for i in ids])
        if lhe_range and info.nTried() >= n:
            break
    return block, {k: np.asarray(v, dtype=np.float64).reshape(block.n, -1) for k, v in lists.items()}


def _lhe_weight(info, weight_id: str, nominal: float) -> float:
    value = info.getWeightsDetailedValue(weight_id)
    return value / nominal if nominal else 1.0


def interleave(first: EventBlock, second: EventBlock) -> EventBlock:
    """Events of two blocks alternating (first[0], second[0], first[1], ...)."""
    order = np.argsort(np.concatenate([2 * np.arange(first.n), 2 * np.arange(second.n) + 1]),
                       kind="stable")
    out = EventBlock()
    for name in vars(out):
        values = getattr(first, name) + getattr(second, name)
        setattr(out, name, [values[k] for k in order])
    return out


def run_block(task: BlockTask) -> EventColumns:
    """Shower one block and turn it into NanoAOD branches (runs in a worker process)."""
    seq = np.random.SeedSequence(task.entropy)
    pythia_seed, second_seed = (int(x % 900_000_000) + 1 for x in seq.generate_state(2))
    toy_seq, det_seq = seq.spawn(2)
    settings = base_settings(pythia_seed, mpi=task.mpi)
    spec = PYTHIA_PROCESSES.get(task.process)
    tmpdir = None
    groups = None
    try:
        if task.lhe is not None:
            groups = weight_groups(Path(task.lhe))
            settings += ["Beams:frameType = 4", f"Beams:LHEF = {task.lhe}",
                         f"Beams:nSkipLHEFatInit = {task.lhe_skip}"]
        elif spec is not None and spec.from_toy_lhe:
            tmpdir = tempfile.TemporaryDirectory(prefix="ewpolar-lhe-")
            path = Path(tmpdir.name) / "toy.lhe"
            # a few spare events replace those Pythia rejects
            n_toy = task.n + task.n // 20 + 10
            hard = hard_process(task.config, task.dataset, n_toy, np.random.default_rng(toy_seq))
            write_toy_lhe(path, hard, task.process)
            groups = weight_groups(path)
            settings += ["Beams:frameType = 4", f"Beams:LHEF = {path}"]
            if task.process != "wbb":  # VBS-like: recoil within the colour dipoles
                settings.append("SpaceShower:dipoleRecoil = on")
        elif spec is not None and spec.charge_split:
            plus, _ = shower(settings + process_settings(task.process, 1), task.n - task.n // 2)
            minus, _ = shower(base_settings(second_seed, mpi=task.mpi)
                              + process_settings(task.process, -1), task.n // 2)
            settings = []
            block, lists = interleave(plus, minus), {}
        else:
            settings += process_settings(task.process)
        if settings:
            block, lists = shower(settings, task.n, lhe_groups=groups,
                                  lhe_range=task.lhe is not None)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
    lhe_lists = {k: v for k, v in lists.items() if k in LHE_LISTS and v.shape[1]}
    rng = np.random.default_rng(det_seq)
    log.debug("block %s of %s: %d events (pid %d)", task.block, task.dataset, block.n, os.getpid())
    return block_columns(task.config, task.process, block, rng,
                         cp=bool(spec is not None and spec.cp_weights) or task.lhe is not None,
                         lhe_lists=lhe_lists)
