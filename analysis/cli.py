"""The ``ewpolar`` command line: a thin layer over the library functions."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from analysis.errors import EwpolarError

__all__ = ["main"]

log = logging.getLogger("ewpolar")


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a user mistake into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EwpolarError as exc:
            click.echo(f"ewpolar: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("ewpolar: interrupted", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ewpolar")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """ewpolar: polarization and CP analyses of electroweak bosons on coffea."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--channel", type=click.Choice(["ssww", "wh"]), required=True,
              help="Which analysis' samples to make.")
@click.option("--events", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Events per dataset.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (output is deterministic for a seed).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder for the ROOT files and fileset.json.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Analysis config with the samples (default: the shipped config of the channel).")
@_user_errors
def generate(channel: str, events: int, seed: int, out: Path, config_path: Path | None) -> None:
    """Generate toy samples as NanoAOD-schema ROOT files plus a coffea fileset.json."""
    from analysis.config import load_config
    from analysis.generator import generate as run_generator

    cfg = load_config(config_path if config_path is not None else channel)
    if cfg.channel != channel:
        raise EwpolarError(f"--config {config_path}: config is for channel '{cfg.channel}', not '{channel}'")
    fileset = run_generator(cfg, events=events, seed=seed, out=out, progress=True)
    click.echo(f"wrote {fileset}")


if __name__ == "__main__":  # pragma: no cover
    main()
