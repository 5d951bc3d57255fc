"""An `ewpolar run` killed mid-way and restarted with the same --checkpoint folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ewpolar.core.config import default_config_path, load_config
from ewpolar.generator import generate
from same_outputs import assert_same_histograms


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_run_resumes_without_double_counting(sig: signal.Signals, tmp_path: Path) -> None:
    fileset = generate(load_config("ssww"), events=6000, seed=41, out=tmp_path / "samples",
                       datasets=["ssww_LT", "wz"])
    base = [sys.executable, "-m", "ewpolar.cli", "run", "--config", str(default_config_path("ssww")),
            "--fileset", str(fileset), "--region", "signal", "--chunksize", "200", "--no-progress"]
    subprocess.run([*base, "--out", str(tmp_path / "ref")], check=True, capture_output=True)

    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen([*base, "--checkpoint", str(ckpt), "--out", str(tmp_path / "run")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(ckpt.rglob("*.json.gz"))) < 5:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    done = len(list(ckpt.rglob("*.json.gz")))
    assert 0 < done < 60, "interrupted part-way"
    assert not (tmp_path / "run" / "histograms.root").exists(), "no output that looks complete"

    subprocess.run([*base, "--checkpoint", str(ckpt), "--out", str(tmp_path / "run")],
                   check=True, capture_output=True)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["events_processed"] == metrics["events_total"] == 12000  # no chunk twice
    assert_same_histograms(tmp_path / "ref" / "histograms.root", tmp_path / "run" / "histograms.root")
