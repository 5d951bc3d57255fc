"""coffea NanoEvents schemas of the input formats.

* ``nanoaod``: coffea's :class:`~coffea.nanoevents.NanoAODSchema`;
* ``physlite``: :class:`PHYSLITESchema`, coffea's PHYSLITE schema that also reads
  RNTuples. An RNTuple names the fields of a PHYSLITE container
  ``AnalysisJetsAuxDyn:pt`` where a TTree has the branch ``AnalysisJetsAuxDyn.pt``;
  coffea's schema splits names at ``.`` only and fails (``KeyError: 'pt'`` while
  zipping the muons). The subclass gives it the TTree spelling of each name; the
  columns are still read by their names in the file (the form keys are unchanged);
* ``flat``: coffea's :class:`~coffea.nanoevents.BaseSchema` (every branch a field).
"""

from __future__ import annotations

from typing import Any

from coffea.nanoevents import BaseSchema, NanoAODSchema
from coffea.nanoevents import PHYSLITESchema as _CoffeaPHYSLITESchema

__all__ = ["PHYSLITESchema", "schema_for"]


class PHYSLITESchema(_CoffeaPHYSLITESchema):
    """coffea's PHYSLITE schema, for TTrees and RNTuples (``:`` in field names read as ``.``)."""

    def __init__(self, base_form: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        base_form = dict(base_form)
        base_form["fields"] = [f.replace(":", ".") for f in base_form["fields"]]
        super().__init__(base_form, *args, **kwargs)


_SCHEMAS = {"nanoaod": NanoAODSchema, "physlite": PHYSLITESchema, "flat": BaseSchema}


def schema_for(fmt: str) -> type[BaseSchema]:
    """The NanoEvents schema class of an input format (``nanoaod``, ``physlite``, ``flat``)."""
    return _SCHEMAS[fmt]
