"""The wheel holds every package of the source tree, under the one import root ``ewpolar``."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_source_package_is_packaged() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    found = set()
    # each mapped folder (analysis/ -> ewpolar, models/ -> ewpolar.models, ...) and the
    # folders with an __init__.py below it
    for package, folder in setup["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            found.add(".".join([package, *init.parent.relative_to(ROOT / folder).parts]))
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert {p.split(".")[0] for p in listed} == {"ewpolar"}
