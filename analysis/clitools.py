"""Shared pieces of the click commands: user mistakes as one line and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from ewpolar.core.errors import EwpolarError

__all__ = ["TRAIN_EXTRA", "user_errors"]

#: packages of the ``train`` extra; a missing one is a user error with the install hint
TRAIN_EXTRA = ("torch", "optuna", "onnx", "pyarrow")


def user_errors(func: Callable[..., Any] | None = None, *,
                extra_packages: Sequence[str] = ()) -> Any:
    """Turn a user mistake into ``ewpolar: error: <one line>`` on stderr and exit code 2.

    ``extra_packages``: optional dependencies whose absence is reported with the
    install hint of the ``train`` extra instead of a traceback.
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return f(*args, **kwargs)
            except EwpolarError as exc:
                click.echo(f"ewpolar: error: {exc}", err=True)
                sys.exit(2)
            except ModuleNotFoundError as exc:
                if (exc.name or "").split(".")[0] not in extra_packages:
                    raise
                click.echo(f"ewpolar: error: {exc.name} is not installed; this command needs "
                           "the 'train' extra (pip install 'ewpolar[train]')", err=True)
                sys.exit(2)
            except KeyboardInterrupt:
                click.echo("ewpolar: interrupted", err=True)
                sys.exit(130)

        return wrapper

    return decorate(func) if func is not None else decorate
