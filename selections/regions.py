"""Event selection of the analysis regions as coffea ``PackedSelection`` objects.

Each :class:`ewpolar.core.config.Region` becomes a list of named cuts, always in the
order of :data:`CUT_ORDER`; a cut whose config value is None is not applied
(and not listed), so cutflows read the same way in every region. The cuts:

==============  ================================================================
name            passes when
==============  ================================================================
``n_leptons``   exactly ``n_leptons`` selected leptons (vetoes any extra lepton)
``same_sign``   all selected leptons have one charge (``same_sign: true`` only)
``mll``         m_ℓℓ(ℓ1, ℓ2) > ``mll_min``
``dr_ll``       ΔR(ℓ1, ℓ2) ≥ ``dr_ll_min``
``z_veto_ee``   not (ℓ1, ℓ2 both electrons and |m_ee − m_Z| ≤ ``zveto_ee``)
``sfos_z``      some same-flavour opposite-charge pair has |m_ℓℓ − m_Z| < ``require_sfos_z``
``met``         E_T^miss > ``met_min``
``n_jets``      ``n_jets_min`` ≤ number of jets ≤ ``n_jets_max`` (either bound optional)
``jet1_pt``     leading-jet pT > ``jet1_pt_min``
``jet2_pt``     subleading-jet pT > ``jet2_pt_min``
``mjj``         ``mjj_min`` ≤ m_jj < ``mjj_max`` (either bound optional)
``dy_jj``       |Δy_jj| ≥ ``dy_jj_min``
``n_bjets``     ``n_bjets_min`` ≤ number of b-jets ≤ ``n_bjets_max``
``mbb``         ``mbb_min`` < m_bb < ``mbb_max`` (either bound optional)
==============  ================================================================

Masses in GeV; objects as defined in :mod:`ewpolar.selections.objects`, pair quantities
as in :mod:`ewpolar.selections.variables`. :func:`region_masks` and :func:`cumulative_masks`
give the same cuts as boolean arrays, each computed once per chunk and JES variation
and shared by the regions that apply it (the ssWW regions share most of their cuts);
the processors use those. Thresholds follow docs/physics.md §1a (m_ℓℓ > 20,
ΔR_ℓℓ ≥ 0.3, m_jj ≥ 500, |Δy_jj| ≥ 2; the low-m_jj region 200 ≤ m_jj < 500).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from coffea.analysis_tools import PackedSelection
from ewpolar.core.config import AnalysisConfig, Region
from ewpolar.core.errors import ConfigError
from ewpolar.selections.variables import Z_MASS_GEV, EventVariables

__all__ = [
    "CUT_ORDER",
    "cumulative_masks",
    "describe_cuts",
    "lepton_preselection",
    "region_cuts",
    "region_masks",
    "region_selection",
    "resolve_regions",
]

#: every cut a region can apply, in the order they are applied and listed
CUT_ORDER = (
    "n_leptons",
    "same_sign",
    "mll",
    "dr_ll",
    "z_veto_ee",
    "sfos_z",
    "met",
    "n_jets",
    "jet1_pt",
    "jet2_pt",
    "mjj",
    "dy_jj",
    "n_bjets",
    "mbb",
)


def _active(region: Region) -> dict[str, bool]:
    r = region
    return {
        "n_leptons": True,
        "same_sign": r.same_sign,
        "mll": r.mll_min is not None,
        "dr_ll": r.dr_ll_min is not None,
        "z_veto_ee": r.zveto_ee is not None,
        "sfos_z": r.require_sfos_z is not None,
        "met": r.met_min is not None,
        "n_jets": r.n_jets_min is not None or r.n_jets_max is not None,
        "jet1_pt": r.jet1_pt_min is not None,
        "jet2_pt": r.jet2_pt_min is not None,
        "mjj": r.mjj_min is not None or r.mjj_max is not None,
        "dy_jj": r.dy_jj_min is not None,
        "n_bjets": r.n_bjets_min is not None or r.n_bjets_max is not None,
        "mbb": r.mbb_min is not None or r.mbb_max is not None,
    }


def region_cuts(region: Region) -> list[str]:
    """Names of the cuts ``region`` applies, in :data:`CUT_ORDER`.

    Example:
        >>> from ewpolar.core.config import Region
        >>> region_cuts(Region(n_leptons=1, met_min=30.0, n_bjets_min=2))
        ['n_leptons', 'met', 'n_bjets']
    """
    active = _active(region)
    return [name for name in CUT_ORDER if active[name]]


def _range_text(lo: float | None, hi: float | None, what: str, lo_op: str, hi_op: str,
                unit: str = "") -> str:
    parts = []
    if lo is not None:
        parts.append(f"{lo:g}{unit} {lo_op}")
    parts.append(what)
    if hi is not None:
        parts.append(f"{hi_op} {hi:g}{unit}")
    return " ".join(parts)


def describe_cuts(region: Region) -> dict[str, str]:
    """A readable line per applied cut, e.g. ``{"mjj": "m_jj ≥ 500 GeV"}``."""
    r = region
    text = {
        "n_leptons": f"exactly {r.n_leptons} lepton{'s' if r.n_leptons > 1 else ''}",
        "same_sign": "same-sign leptons",
        "mll": f"m_ll > {r.mll_min:g} GeV" if r.mll_min is not None else "",
        "dr_ll": f"ΔR_ll ≥ {r.dr_ll_min:g}" if r.dr_ll_min is not None else "",
        "z_veto_ee": f"ee: |m_ee − m_Z| > {r.zveto_ee:g} GeV" if r.zveto_ee is not None else "",
        "sfos_z": (f"SFOS pair with |m_ll − m_Z| < {r.require_sfos_z:g} GeV"
                   if r.require_sfos_z is not None else ""),
        "met": f"E_T^miss > {r.met_min:g} GeV" if r.met_min is not None else "",
        "n_jets": _range_text(r.n_jets_min, r.n_jets_max, "n_jets", "≤", "≤"),
        "jet1_pt": f"p_T(j1) > {r.jet1_pt_min:g} GeV" if r.jet1_pt_min is not None else "",
        "jet2_pt": f"p_T(j2) > {r.jet2_pt_min:g} GeV" if r.jet2_pt_min is not None else "",
        "mjj": _range_text(r.mjj_min, r.mjj_max, "m_jj", "GeV ≤", "<") + (
            " GeV" if r.mjj_max is not None else ""),
        "dy_jj": f"|Δy_jj| ≥ {r.dy_jj_min:g}" if r.dy_jj_min is not None else "",
        "n_bjets": _range_text(r.n_bjets_min, r.n_bjets_max, "n_bjets", "≤", "≤"),
        "mbb": _range_text(r.mbb_min, r.mbb_max, "m_bb", "GeV <", "<") + (
            " GeV" if r.mbb_max is not None else ""),
    }
    return {name: text[name] for name in region_cuts(region)}


def _in_range(x: np.ndarray, lo: float | None, hi: float | None, *, lo_strict: bool,
              hi_strict: bool) -> np.ndarray:
    ok = np.ones(len(x), dtype=bool)
    if lo is not None:
        ok &= (x > lo) if lo_strict else (x >= lo)
    if hi is not None:
        ok &= (x < hi) if hi_strict else (x <= hi)
    return ok


#: cuts that only look at the leptons (their masks are shared by the JES variations)
_LEPTON_CUTS = frozenset({"n_leptons", "same_sign", "mll", "dr_ll", "z_veto_ee", "sfos_z"})


def _cut_parameters(region: Region, name: str) -> tuple:
    """The config values a cut depends on (with the cut name, the key of its cached mask)."""
    r = region
    return {
        "n_leptons": (r.n_leptons,),
        "same_sign": (),
        "mll": (r.mll_min,),
        "dr_ll": (r.dr_ll_min,),
        "z_veto_ee": (r.zveto_ee,),
        "sfos_z": (r.require_sfos_z,),
        "met": (r.met_min,),
        "n_jets": (r.n_jets_min, r.n_jets_max),
        "jet1_pt": (r.jet1_pt_min,),
        "jet2_pt": (r.jet2_pt_min,),
        "mjj": (r.mjj_min, r.mjj_max),
        "dy_jj": (r.dy_jj_min,),
        "n_bjets": (r.n_bjets_min, r.n_bjets_max),
        "mbb": (r.mbb_min, r.mbb_max),
    }[name]


def region_masks(variables: EventVariables, region: Region) -> dict[str, np.ndarray]:
    """Each applied cut of ``region`` as a boolean array (names and order of :func:`region_cuts`).

    Only the quantities an applied cut needs are computed (and their branches
    read). A mask is computed once per chunk and JES variation and shared by
    every region applying the same cut with the same value (lepton cuts also
    by the JES variations, see :meth:`EventVariables.mask`); do not modify it.
    """
    r = region
    v = variables
    masks = {
        "n_leptons": lambda: v.n_leptons == r.n_leptons,
        "same_sign": lambda: v.same_sign,
        "mll": lambda: v.mll > r.mll_min,
        "dr_ll": lambda: v.dr_ll >= r.dr_ll_min,
        "z_veto_ee": lambda: ~(v.is_ee & (np.abs(v.mll - Z_MASS_GEV) <= r.zveto_ee)),
        "sfos_z": lambda: v.sfos_z_distance < r.require_sfos_z,
        "met": lambda: v.met > r.met_min,
        "n_jets": lambda: _in_range(v.n_jets, r.n_jets_min, r.n_jets_max,
                                    lo_strict=False, hi_strict=False),
        "jet1_pt": lambda: v.jet1_pt > r.jet1_pt_min,
        "jet2_pt": lambda: v.jet2_pt > r.jet2_pt_min,
        "mjj": lambda: _in_range(v.mjj, r.mjj_min, r.mjj_max, lo_strict=False, hi_strict=True),
        "dy_jj": lambda: v.dy_jj >= r.dy_jj_min,
        "n_bjets": lambda: _in_range(v.n_bjets, r.n_bjets_min, r.n_bjets_max,
                                     lo_strict=False, hi_strict=False),
        "mbb": lambda: _in_range(v.mbb, r.mbb_min, r.mbb_max, lo_strict=True, hi_strict=True),
    }
    out = {}
    for name in region_cuts(region):
        def compute(name: str = name) -> np.ndarray:
            return np.asarray(masks[name](), dtype=bool)

        out[name] = v.mask(("cut", name, *_cut_parameters(r, name)), compute,
                           leptons_only=name in _LEPTON_CUTS)
    return out


def cumulative_masks(variables: EventVariables, region: Region) -> list[np.ndarray]:
    """The events passing the region's first 1, 2, … cuts (one array per cut of
    :func:`region_cuts`); the last one is the region's selection.

    Regions that start with the same cuts share these arrays (cached like the
    masks of :func:`region_masks`); do not modify them.
    """
    masks = region_masks(variables, region)
    out: list[np.ndarray] = []
    key: tuple = ("cumulative",)
    leptons_only = True
    for name, mask in masks.items():
        key = (*key, name, *_cut_parameters(region, name))
        leptons_only = leptons_only and name in _LEPTON_CUTS
        previous = out[-1] if out else None

        def compute(mask: np.ndarray = mask, previous: np.ndarray | None = previous) -> np.ndarray:
            return mask.copy() if previous is None else previous & mask

        out.append(variables.mask(key, compute, leptons_only=leptons_only))
    return out


def lepton_preselection(variables: EventVariables, region: Region) -> np.ndarray:
    """The events passing the region's leading lepton-only cuts (every region starts with
    ``n_leptons``): no JES variation changes them (cached like :func:`cumulative_masks`)."""
    passed = cumulative_masks(variables, region)
    cuts = region_cuts(region)
    n = next((i for i, name in enumerate(cuts) if name not in _LEPTON_CUTS), len(cuts))
    return passed[max(n, 1) - 1]


def region_selection(variables: EventVariables, region: Region) -> PackedSelection:
    """The region's cuts as a ``PackedSelection`` (names from :func:`region_cuts`).

    Only the quantities an applied cut needs are computed (and their branches read).
    """
    selection = PackedSelection()
    for name, mask in region_masks(variables, region).items():
        selection.add(name, mask)
    return selection


def resolve_regions(config: AnalysisConfig, names: Sequence[str] | str | None) -> list[str]:
    """Region names to run: all of the config's for None or "all", else the given ones.

    Raises:
        ConfigError: a name the config does not define (one line naming it and the valid ones).
    """
    if names is None or names == "all":
        return list(config.regions)
    if isinstance(names, str):
        names = [names]
    names = list(dict.fromkeys(names))
    for name in names:
        if name not in config.regions:
            where = config.source or f"{config.channel} config"
            raise ConfigError(f"{where}: unknown region '{name}' "
                              f"(regions: {', '.join(config.regions)})")
    if not names:
        raise ConfigError("no region selected (give at least one region name)")
    return names
