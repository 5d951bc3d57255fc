"""Exceptions for user mistakes: each carries one line that names what is wrong."""

from __future__ import annotations

__all__ = ["BranchTypeError", "ConfigError", "EwpolarError", "InputError", "MissingBranchesError"]


class EwpolarError(Exception):
    """A user-facing error; ``str(err)`` is one line naming the file, field or option."""


class ConfigError(EwpolarError):
    """An analysis config that cannot be read or does not validate."""


class InputError(EwpolarError):
    """An input file, fileset or option that cannot be used."""


class MissingBranchesError(InputError):
    """An input file lacks collections the analysis needs (a bad file, not a bug)."""


class BranchTypeError(MissingBranchesError):
    """A branch the analysis reads holds values of the wrong type (a bad file, not a bug):
    e.g. an integer momentum, or floating-point event numbers."""
