"""The command line: help texts and option errors."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner
from ewpolar.cli import main


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
              if line.strip()}
    assert {"generate", "run", "fit", "plot", "report", "demo", "train", "optimize",
            "select-inputs", "reweight", "sbi"} <= listed


def test_console_script_help() -> None:
    # the installed entry point, as a user types it
    proc = subprocess.run([sys.executable, "-m", "ewpolar.cli", "--help"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert "Usage:" in proc.stdout


def test_bad_option_value_names_the_option() -> None:
    result = CliRunner().invoke(main, ["generate", "--channel", "zz", "--out", "x"])
    assert result.exit_code == 2
    assert "--channel" in result.output


def test_dask_run_logs_distributed_events_only_with_verbose(tmp_path) -> None:
    from ewpolar.core.config import load_config
    from ewpolar.generator import generate

    fileset = generate(load_config("ssww"), events=300, seed=2, out=tmp_path / "s",
                       datasets=["ssww_LL"])
    args = ["run", "--config", "ssww", "--fileset", str(fileset), "--executor", "dask",
            "--workers", "2", "--no-progress", "--out", str(tmp_path / "out")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    quiet = subprocess.run([sys.executable, "-m", "ewpolar.cli", *args], env=env,
                           capture_output=True, text=True, check=False)
    assert quiet.returncode == 0, quiet.stderr
    assert "processed 300 of 300 events" in quiet.stdout
    # the scheduler's, nannies' and workers' INFO records (start, register, close) are not shown
    assert "distributed" not in quiet.stderr, quiet.stderr
    verbose = subprocess.run([sys.executable, "-m", "ewpolar.cli", "-v", *args], env=env,
                             capture_output=True, text=True, check=False)
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO distributed.scheduler" in verbose.stderr
