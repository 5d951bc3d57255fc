"""Process settings of the workers that run chunks (ewpolar.runner.workers): malloc and gc."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest
from ewpolar.core.config import load_config
from ewpolar.core.errors import InputError
from ewpolar.generator import generate
from ewpolar.runner.run import load_fileset, run_analysis
from ewpolar.runner.workers import MMAP_THRESHOLD, WorkerSetup, allocation_is_mapped

CHILD = """
import json
from ewpolar.runner.workers import MMAP_THRESHOLD, allocation_is_mapped, tune_malloc
sizes = [1 << 20, 16 << 20, 2 * MMAP_THRESHOLD]
before = [allocation_is_mapped(n) for n in sizes]
applied = tune_malloc()
print(json.dumps({"before": before, "applied": applied,
                  "after": [allocation_is_mapped(n) for n in sizes]}))
"""

@pytest.mark.skipif(allocation_is_mapped() is None, reason="needs glibc's mallinfo2")
def test_tuning_serves_arrays_below_32_mib_from_the_heap() -> None:
    # the environment distributed's nannies give their workers
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         check=True)
    state = json.loads(out.stdout)
    assert state["before"] == [True, True, True]  # each mapped on its own
    assert state["applied"] is True
    assert state["after"] == [False, False, True]  # above the threshold: still mapped
    assert MMAP_THRESHOLD == 32 * 1024 * 1024


FREEZE_CHILD = """
import gc, json, sys
from ewpolar.runner.workers import freeze_imports
tracked = len(gc.get_objects())
frozen = freeze_imports()
import ewpolar.processors.ssww
after = len(gc.get_objects())
later = [[]]  # made after the set-up: a second set-up (the next run's) must not freeze it
again = freeze_imports()
print(json.dumps({"tracked": tracked, "frozen": frozen, "after": after, "again": again,
                  "ssww_imported": "ewpolar.processors.ssww" in sys.modules,
                  "process_tracked": any(o is ewpolar.processors.ssww.SSWWProcessor.process
                                         for o in gc.get_objects()),
                  "later_tracked": any(o is later for o in gc.get_objects())}))
"""


def test_freezing_leaves_full_collections_only_the_new_objects() -> None:
    out = subprocess.run([sys.executable, "-c", FREEZE_CHILD], capture_output=True, text=True,
                         check=True)
    state = json.loads(out.stdout)
    assert state["ssww_imported"]
    # the analysis stack's objects (far more than the interpreter starts with) are frozen:
    # a full collection no longer walks them, a processor method among them
    assert state["frozen"] > 2 * state["tracked"]
    assert state["after"] < state["frozen"] / 50
    assert not state["process_tracked"]
    # freezing is done once per process
    assert state["again"] == state["frozen"]
    assert state["later_tracked"]


class _NotOnTheWorkers(WorkerSetup):
    """A plugin whose class the workers cannot import (as without ewpolar installed)."""

    def __reduce__(self):
        return (importlib.import_module, ("ewpolar_is_not_installed_here",))


class _FailsOnTheWorkers(WorkerSetup):
    """A plugin that the workers load but whose set-up fails (as when a worker dies)."""

    def setup(self, worker):
        raise RuntimeError("worker lost during set-up")


@pytest.mark.parametrize(("plugin", "named", "cause"), [
    (_NotOnTheWorkers, "ewpolar_is_not_installed_here", "need ewpolar installed"),
    (_FailsOnTheWorkers, "worker lost during set-up", "check the workers' logs"),
], ids=["not-installed", "set-up-fails"])
def test_a_plugin_that_cannot_be_set_up_is_one_line_naming_its_cause(
        monkeypatch: pytest.MonkeyPatch, tmp_path, plugin, named: str, cause: str) -> None:
    distributed = pytest.importorskip("distributed")
    import ewpolar.runner.workers

    cfg = load_config("ssww")
    fileset = load_fileset(generate(cfg, events=300, seed=5, out=tmp_path / "s",
                                    datasets=["ssww_LL"]))
    monkeypatch.setattr(ewpolar.runner.workers, "WorkerSetup", plugin)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            pytest.raises(InputError) as info:
        run_analysis(cfg, fileset, executor="dask", scheduler=cluster.scheduler_address,
                     out=tmp_path / "out")
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert cluster.scheduler_address in msg
    assert named in msg
    assert cause in msg
    # a plugin that imports but fails is not blamed on the installation
    assert ("installed" in msg) == (plugin is _NotOnTheWorkers)
    assert not (tmp_path / "out" / "histograms.root").exists()
