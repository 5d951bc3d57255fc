"""Names shared by the processors that fill histograms and the statistics that read them.

One place says how a systematic variation and a histogram are named:

* ``nominal``; two-sided variations ``<prefix>_up`` / ``<prefix>_down`` where the prefix
  is the config's systematic key, except ``luminosity``, whose histograms say ``lumi``;
* ``scale_0`` … ``scale_8``: the LHEScaleWeight members one by one (``mode: all``);
* ``cp_int`` / ``cp_quad``: the WH interference and quadratic CP templates;
* histograms ``{dataset}__{region}__{systematic}__{observable}``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CATEGORY_AXES",
    "CP_INT",
    "CP_QUAD",
    "DOWN",
    "NOMINAL",
    "SCALE_7POINT",
    "SCALE_NOMINAL_MEMBER",
    "SEP",
    "UP",
    "HistKey",
    "histogram_name",
    "parse_histogram_name",
    "scale_member",
    "systematic_prefix",
    "variation_names",
]

NOMINAL = "nominal"
UP = "up"
DOWN = "down"
CP_INT = "cp_int"
CP_QUAD = "cp_quad"

#: LHEScaleWeight members of the seven-point scale envelope, NanoAOD order (μR, μF):
#: 0 (½,½) 1 (½,1) 2 (½,2) 3 (1,½) 4 (1,1) 5 (1,2) 6 (2,½) 7 (2,1) 8 (2,2); the two
#: anti-correlated points (½,2) and (2,½) are left out.
SCALE_7POINT = (0, 1, 3, 4, 5, 7, 8)
#: the (1,1) member of a nine-member LHEScaleWeight
SCALE_NOMINAL_MEMBER = 4

#: the category axes every histogram starts with, in order
CATEGORY_AXES = ("dataset", "region", "systematic")
#: separator of the parts of a histogram name (so no part may contain it)
SEP = "__"

_PREFIX = {"luminosity": "lumi"}


def systematic_prefix(key: str) -> str:
    """Prefix of the histograms of the config's systematic ``key`` (``luminosity`` → ``lumi``)."""
    return _PREFIX.get(key, key)


def variation_names(key: str) -> tuple[str, str]:
    """The ``(up, down)`` systematic names of a two-sided variation of config key ``key``."""
    prefix = systematic_prefix(key)
    return f"{prefix}_{UP}", f"{prefix}_{DOWN}"


def scale_member(key: str, member: int) -> str:
    """Name of one LHEScaleWeight member's variation (``mode: all``): ``scale_3``."""
    return f"{systematic_prefix(key)}_{member}"


@dataclass(frozen=True)
class HistKey:
    """The four parts of a histogram's name."""

    dataset: str
    region: str
    systematic: str
    observable: str


def histogram_name(dataset: str, region: str, systematic: str, observable: str) -> str:
    """``{dataset}__{region}__{systematic}__{observable}``; no part may be empty or hold ``__``."""
    parts = (dataset, region, systematic, observable)
    for p in parts:
        if SEP in p or not p:
            raise ValueError(f"histogram name part '{p}' is empty or contains '{SEP}'")
    return SEP.join(parts)


def parse_histogram_name(name: str) -> HistKey | None:
    """The parts of a histogram name, or None for a name of another shape."""
    parts = name.split(SEP)
    return HistKey(*parts) if len(parts) == 4 else None
