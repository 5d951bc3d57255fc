"""A profile checked against the first file of each dataset, before a run.

Every branch the profile names must be in the file, with the nominal tag in place of
``{syst}`` (varied branches may be absent: they fall back to the nominal one), except
where the profile allows its absence (``objects.met`` with ``rebuild: true``, a PHYSLITE
b-tagger reached through the b-tagging link, the weight variations). A missing branch is
one line, ``<profile>: <key>: branch '<name>' not in <file>``. A file that coffea cannot
turn into events with the profile's schema ("Failed creating nanoevents", a schema
error) is one line naming the file.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

from ewpolar.core.errors import InputError
from ewpolar.inputs.profile import Profile

__all__ = ["check_profile", "open_events"]

log = logging.getLogger(__name__)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def open_events(path: str, tree: str, profile: Profile, entry_stop: int | None = None) -> Any:
    """NanoEvents of a file (virtual) with the profile's schema.

    Raises:
        InputError: coffea cannot read the file with that schema (one line naming it).
    """
    from coffea.nanoevents import NanoEventsFactory
    from ewpolar.inputs.schemas import schema_for

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return NanoEventsFactory.from_root(
                {path: tree}, schemaclass=schema_for(profile.format), mode="virtual",
                entry_stop=entry_stop).events()
    except Exception as exc:  # any failure to build events is a property of the file
        raise InputError(f"{path}: cannot read tree '{tree}' as {profile.format} "
                         f"(input profile {profile.name or profile.source}): "
                         f"{_one_line(exc)}") from None


def _optional(profile: Profile, key: str) -> bool:
    """Keys whose branch may be missing (the run notes what it does instead)."""
    if key.startswith("weights."):
        return True
    if key.startswith("objects.met.") and profile.objects is not None and profile.objects.met.rebuild:
        return True
    return bool(key == "objects.jet.btag" and profile.format == "physlite"
                and profile.objects is not None and profile.objects.jet.btag is not None
                and profile.objects.jet.btag.startswith("BTagging"))


def check_profile(profile: Profile, fileset: Mapping[str, Any]) -> dict[str, str]:
    """Check ``profile`` against the first file of each dataset of ``fileset``.

    Returns:
        file → reason, for files coffea cannot read with the profile's schema
        (the caller stops or, with ``--skip-bad-files``, skips them).

    Raises:
        InputError: a branch the profile names is not in a file (one line naming
            the profile, the key and the branch).
    """
    from ewpolar.inputs.adapt import BranchReader

    bad: dict[str, str] = {}
    named = profile.named_branches()
    for entry in fileset.values():
        for path, tree in entry["files"].items():
            try:
                events = open_events(path, tree, profile, entry_stop=1)
            except InputError as err:
                bad[path] = str(err)
                continue
            reader = BranchReader(events, profile)
            for key, name in named.items():
                if _optional(profile, key):
                    continue
                missing = reader.missing(name)
                if missing is not None:
                    raise InputError(f"{profile.source}: {key}: branch '{missing}' not in {path}")
            break
    return bad
