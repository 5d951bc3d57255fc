"""The command line: help texts and option errors."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from analysis.cli import main


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("generate", "run"):
        assert command in result.output


def test_console_script_help() -> None:
    # the installed entry point, as a user types it
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "--help"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert "Usage:" in proc.stdout


def test_bad_option_value_names_the_option() -> None:
    result = CliRunner().invoke(main, ["generate", "--channel", "zz", "--out", "x"])
    assert result.exit_code == 2
    assert "--channel" in result.output
