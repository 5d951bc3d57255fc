"""Shape variations: the systematic categories whose objects and selection are recomputed.

Two sources, one per kind of input:

* NanoAOD read as it is: the config's ``jes`` systematic gives ``<key>_up`` /
  ``<key>_down`` from ``Jet_{pt,mass}_jesTotal{Up,Down}`` (and the MET's), when the
  input has them;
* an input read through a profile (:mod:`ewpolar.inputs`): every systematic the
  profile names (``jes_up``, ``jer_down``, ``el_scale_up``, ``met_soft_up``, ...) is a
  category of its own, whatever the config lists; its objects read the fields
  ``<field>__<category>`` of the adapted events. A category for which the file has
  no varied branch at all is not filled (a note says so).

A variation that changes no lepton and no jet identification or direction shares
the nominal leptons and, when every variation of the input is of that kind (JES,
JER, MET), is made only for the events that pass some region's lepton cuts; one
that changes leptons is selected anew on all events of the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import awkward as ak
import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.naming import variation_names
from ewpolar.inputs.adapt import VARIATION_SEP
from ewpolar.selections.objects import JES_VARIATIONS, build_objects, has_jes_variations
from ewpolar.selections.regions import lepton_preselection
from ewpolar.selections.variables import EventVariables

__all__ = ["input_variations", "shape_variations"]

_COLLECTIONS = ("Electron", "Muon", "Jet", "MET")


def input_variations(events: ak.Array) -> set[str]:
    """The shape variations an adapted input carries (fields ``<field>__<category>``)."""
    found: set[str] = set()
    for name in _COLLECTIONS:
        if name in events.fields:
            found.update(f.split(VARIATION_SEP, 1)[1] for f in ak.fields(events[name])
                         if VARIATION_SEP in f)
    return found


def _preselected(nominal: EventVariables, config: AnalysisConfig,
                 regions: Sequence[str]) -> EventVariables:
    # a variation that changes no lepton cut is made only for the events that pass
    # some region's lepton cuts
    preselected = np.flatnonzero(np.logical_or.reduce(
        [lepton_preselection(nominal, config.regions[name]) for name in regions]))
    return nominal.subset(preselected)


def shape_variations(nominal: EventVariables, config: AnalysisConfig, regions: Sequence[str],
                     is_data: bool, notes: set[str],
                     categories: Sequence[str] | None = None) -> list[tuple[str, EventVariables]]:
    """The (category, variables) of every shape variation of a chunk, nominal excluded.

    Args:
        nominal: the nominal variables of the chunk.
        config: the analysis config (its ``jes`` systematic, for NanoAOD).
        regions: the regions of the run.
        is_data: data get no variations.
        notes: set collecting what was skipped.
        categories: the shape systematics of the input profile, or None for NanoAOD
            read as it is.
    """
    if is_data:
        return []
    events = nominal.objects.events
    if categories is None:
        keys = [k for k, s in config.systematics.items() if s.kind == "jes"]
        if not keys:
            return []
        if not has_jes_variations(events):
            notes.add("jes: no Jet_pt_jesTotalUp/Down branches; JES variations skipped")
            return []
        base = _preselected(nominal, config, regions)
        return [(name, base.varied(variation))
                for name, variation in zip(variation_names(keys[0]), JES_VARIATIONS, strict=True)]
    if not categories and any(s.kind == "jes" for s in config.systematics.values()):
        notes.add("jes: the input profile names no shape systematics; no JES variation filled")
    present = input_variations(events)
    made: list[tuple[str, object]] = []
    for category in categories:
        if category not in present:
            notes.add(f"input: systematic {category}: no varied branch in the file; not filled")
            continue
        made.append((category, build_objects(events, config.objects, category,
                                             nominal.objects.notes)))
    # the processor takes each variation's variables of the events some variation
    # selects: a lepton-changing variation may select events that fail the nominal
    # lepton cuts, so then no variation is restricted to the nominal preselection
    restrict = all(objects.shares_leptons for _, objects in made)
    base = _preselected(nominal, config, regions) if made and restrict else nominal
    out: list[tuple[str, EventVariables]] = []
    for category, objects in made:
        if objects.shares_leptons:
            out.append((category, base.varied(category)))
        else:
            out.append((category, EventVariables(objects)))
    return out
