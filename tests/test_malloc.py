"""glibc malloc settings of dask workers (analysis.malloc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from analysis.malloc import MMAP_THRESHOLD, allocation_is_mapped

CHILD = """
import json
from analysis.malloc import MMAP_THRESHOLD, allocation_is_mapped, tune_malloc
sizes = [1 << 20, 16 << 20, 2 * MMAP_THRESHOLD]
before = [allocation_is_mapped(n) for n in sizes]
applied = tune_malloc()
print(json.dumps({"before": before, "applied": applied,
                  "after": [allocation_is_mapped(n) for n in sizes]}))
"""

pytestmark = pytest.mark.skipif(allocation_is_mapped() is None, reason="needs glibc's mallinfo2")


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
