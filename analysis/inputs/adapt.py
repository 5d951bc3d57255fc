"""One chunk of events of any input format as the collections the selections read.

:func:`adapt_events` turns the NanoEvents of a chunk, read with the profile's
schema (:mod:`ewpolar.inputs.schemas`), into an awkward record array with the
NanoAOD-like fields the object selection and the processors use:

* ``Electron``, ``Muon``, ``Jet``: jagged records with ``pt``, ``eta``, ``phi``, ``mass``
  (GeV, float32) and ``charge`` (int32, leptons), and what the profile names of:

  - identification: a pass flag ``passId`` (boolean column), else NanoAOD's
    ``cutBased`` (electrons), ``tightId`` (muons) or ``jetId`` (jets);
  - isolation: a pass flag ``passIso``, else the relative isolation
    ``pfRelIso03_all`` (electrons) or ``pfRelIso04_all`` (muons);
  - b-tagging (jets): a pass flag ``passBtag`` (a boolean column, or the score
    against the profile's ``btag_min``) and the score ``btag`` (any real number);

* ``MET``: records with ``pt`` and ``phi`` (GeV);
* per shape variation (the profile's ``systematics`` other than nominal), the
  fields it changes as ``<field>__<category>`` (``Jet.pt__jes_up``); a varied
  branch absent from the file is the nominal one, and adds no field;
* event level: every ``branches`` entry under its analysis name (``genWeight``,
  ``LHEScaleWeight``; a name ``A_b`` becomes field ``b`` of record ``A``, as
  NanoAOD groups ``CPWeight_int``), ``run``, ``event`` and ``luminosityBlock``
  from ``event``, and the weight variations of ``weights`` as ratios to the
  nominal weight in the record ``ProfileWeights`` (``<name>_up``, ``<name>_down``).

What the input lacks is added to ``notes`` (one line each, starting ``input:``).
The default ``nanoaod`` profile leaves the events as they are.
"""

from __future__ import annotations

import logging
import operator
import re
from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np
from ewpolar.core.errors import InputError
from ewpolar.inputs.profile import FLAG_EXPRESSION, MetSpec, ObjectSpec, Profile

__all__ = [
    "PROFILE_WEIGHTS",
    "VARIATION_SEP",
    "BranchReader",
    "adapt_events",
    "add_profile_weights",
    "preload_columns",
    "shape_categories",
]

log = logging.getLogger(__name__)

#: separator of a field and the shape variation it belongs to (``pt__jes_up``)
VARIATION_SEP = "__"
#: the record of the profile's weight variations (ratios to the nominal weight)
PROFILE_WEIGHTS = "ProfileWeights"

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}
_MEMBER = re.compile(r"^(?P<name>.+)\[(?P<k>\d+)\]$")
#: canonical collections and the NanoAOD names of their numeric id / isolation columns
_COLLECTIONS = {"electron": ("Electron", "cutBased", "pfRelIso03_all"),
                "muon": ("Muon", "tightId", "pfRelIso04_all"),
                "jet": ("Jet", "jetId", None)}
#: GN2 / DL1 discriminant: charm and tau fractions of the background hypothesis
_TAGGER_FRACTIONS = {"GN2": (0.2, 0.01), "DL1": (0.018, 0.0)}


class BranchReader:
    """Reads a profile's branch names from the events of one chunk."""

    def __init__(self, events: Any, profile: Profile) -> None:
        self.events = events
        self.profile = profile
        self.fields = set(events.fields)
        self._sub: dict[str, set[str]] = {}

    def _subfields(self, coll: str) -> set[str]:
        if coll not in self._sub:
            self._sub[coll] = set(ak.fields(self.events[coll]))
        return self._sub[coll]

    def branch(self, name: str) -> ak.Array | None:
        """A column by its profile name, None when the file lacks it."""
        m = _MEMBER.match(name)
        if m:
            lists = self.branch(m.group("name"))
            if lists is None:
                return None
            return ak.fill_none(ak.pad_none(lists, int(m.group("k")) + 1)[:, int(m.group("k"))],
                                np.nan)
        if name in self.fields:
            return self.events[name]
        fmt = self.profile.format
        seps = (".",) if fmt == "physlite" else ("_",) if fmt == "nanoaod" else ()
        for sep in seps:
            if sep in name:
                coll, field = name.split(sep, 1)
                if coll in self.fields and field in self._subfields(coll):
                    return self.events[coll][field]
        return None

    def has(self, name: str) -> bool:
        m = _MEMBER.match(name)
        if m:
            return self.has(m.group("name"))
        if name in self.fields:
            return True
        sep = "." if self.profile.format == "physlite" else "_"
        if self.profile.format != "flat" and sep in name:
            coll, field = name.split(sep, 1)
            return coll in self.fields and field in self._subfields(coll)
        return False

    def missing(self, expr: str) -> str | None:
        """The first branch of a profile entry (with its tag in place) the file lacks."""
        m = FLAG_EXPRESSION.match(expr)
        if m:
            return self.missing(m.group("branch"))
        if "/" in expr:
            num_name, den_name = (x.strip() for x in expr.split("/", 1))
            if self.profile.format == "physlite" and "." not in den_name:
                den_name = f"{num_name.split('.', 1)[0]}.{den_name}"
            return self.missing(num_name) or self.missing(den_name)
        return None if self.has(expr.strip()) else _MEMBER.sub(r"\g<name>", expr.strip())

    def value(self, template: str, tag: str) -> tuple[ak.Array | None, bool]:
        """The column of a profile entry for systematic ``tag``: (array, varied).

        ``varied`` is False when the entry does not depend on the tag or the varied
        branch is absent (then the nominal column is returned).
        """
        nominal_tag = self.profile.nominal_tag
        if "{syst}" in template and tag != nominal_tag:
            varied = self._evaluate(template.replace("{syst}", tag))
            if varied is not None:
                return varied, True
        return self._evaluate(template.replace("{syst}", nominal_tag)), False

    def _evaluate(self, expr: str) -> ak.Array | None:
        m = FLAG_EXPRESSION.match(expr)
        if m:
            column = self._evaluate(m.group("branch"))
            if column is None:
                return None
            if m.group("mask") is not None:
                column = column & int(m.group("mask"))
            return _OPS[m.group("op")](column, float(m.group("value")))
        if "/" in expr:
            num_name, den_name = (s.strip() for s in expr.split("/", 1))
            if self.profile.format == "physlite" and "." not in den_name:
                den_name = f"{num_name.split('.', 1)[0]}.{den_name}"
            num, den = self.branch(num_name), self.branch(den_name)
            if num is None or den is None:
                return None
            return num / den
        return self.branch(expr)


def _parts(array: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets from 0, flat numpy content) of a jagged array of numbers or booleans."""
    layout = ak.to_layout(array)
    while isinstance(layout, ak.contents.IndexedOptionArray | ak.contents.UnmaskedArray):
        layout = layout.content
    counts = np.asarray(ak.num(array, axis=1), dtype=np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    content = np.asarray(ak.to_numpy(ak.flatten(array, axis=1)))
    return offsets, content


def _is_flag(content: np.ndarray) -> bool:
    """A pass-flag column: booleans, or CP-algorithm ``char`` flags (only 0 and 1)."""
    if content.dtype == np.bool_:
        return True
    return content.dtype in (np.int8, np.uint8) and bool(np.all((content == 0) | (content == 1)))


def _gev(content: np.ndarray, scale: float) -> np.ndarray:
    """Momenta in GeV as float32 (MeV divided by 1000 in float64: a float32 GeV value
    written as float64 MeV comes back exactly)."""
    if scale == 1.0:
        return content.astype(np.float32, copy=False)
    return (content.astype(np.float64) / 1000.0).astype(np.float32)


class _Collection:
    """The flat columns of one canonical collection, built field by field."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.offsets: np.ndarray | None = None
        self.columns: dict[str, np.ndarray] = {}

    def add(self, field: str, array: ak.Array, where: str) -> np.ndarray:
        offsets, content = _parts(array)
        if self.offsets is None:
            self.offsets = offsets
        elif not np.array_equal(offsets, self.offsets):
            raise InputError(f"{where}: has another number of entries per event than "
                             f"the {self.name} pt")
        self.columns[field] = content
        return content

    def to_awkward(self) -> ak.Array:
        assert self.offsets is not None
        record = ak.contents.RecordArray(
            [ak.contents.NumpyArray(c) for c in self.columns.values()], list(self.columns),
            length=int(self.offsets[-1]))
        return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(self.offsets), record))


def _tagger_score(reader: BranchReader, name: str, jets_coll: str, notes: set[str]) -> ak.Array | None:
    """A PHYSLITE tagger's discriminant through the jets' ``btaggingLink``."""
    container, tagger = name.split(".", 1)
    link = reader.branch(f"{jets_coll}.btaggingLink")
    if link is None or container not in reader.fields:
        return None
    cont = reader.events[container]
    fields = set(ak.fields(cont))
    if not {f"{tagger}_pb", f"{tagger}_pc", f"{tagger}_pu"} <= fields:
        return None
    fc, ftau = next((v for k, v in _TAGGER_FRACTIONS.items() if tagger.startswith(k)),
                    (0.2, 0.0))
    index = link["m_persIndex"] if "m_persIndex" in ak.fields(link) else link
    n_tagged = ak.num(cont[f"{tagger}_pb"], axis=1)
    valid = index < n_tagged
    safe = ak.where(valid, index, 0)

    def prob(p: str) -> ak.Array:
        return cont[f"{tagger}_{p}"][safe]

    background = fc * prob("pc") + (1 - fc - ftau) * prob("pu")
    if ftau and f"{tagger}_ptau" in fields:
        background = background + ftau * prob("ptau")
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.log(prob("pb") / background)
    if not ak.all(valid):
        notes.add("input: some jets have no b-tagging link entry; their b-tag score is -inf")
    return ak.where(valid, score, -np.inf)


def _objects(reader: BranchReader, key: str, spec: ObjectSpec, notes: set[str]) -> ak.Array:
    profile = reader.profile
    name, id_name, iso_name = _COLLECTIONS[key]
    scale = profile.momentum_scale
    coll = _Collection(name)
    where = f"{profile.source}: objects.{key}"

    def read(field: str, tag: str) -> tuple[ak.Array | None, bool]:
        template = getattr(spec, field)
        if template is None:
            return None, False
        return reader.value(template, tag)

    def required(field: str, tag: str) -> tuple[ak.Array, bool]:
        array, varied = read(field, tag)
        if array is None:
            raise InputError(f"{where}.{field}: branch "
                             f"'{getattr(spec, field).replace('{syst}', tag)}' not in the file")
        return array, varied

    def kinematics(tag: str) -> tuple[dict[str, ak.Array], set[str]]:
        out, changed = {}, set()
        for field in ("pt", "eta", "phi"):
            out[field], v = required(field, tag)
            if v:
                changed.add(field)
        if spec.mass is not None:
            out["mass"], v = required("mass", tag)
            if v:
                changed.add("mass")
        elif spec.energy is not None:
            energy, v = required("energy", tag)
            p = out["pt"] * np.cosh(out["eta"])
            out["mass"] = np.sqrt(np.maximum(energy * energy - p * p, 0.0))
            if v or changed & {"pt", "eta"}:
                changed.add("mass")
        else:
            out["mass"] = ak.zeros_like(out["pt"])
            if key == "jet":
                notes.add(f"input: objects.{key} has no mass or energy; massless jets")
        return out, changed

    nominal_tag = profile.nominal_tag
    kin, _ = kinematics(nominal_tag)
    coll.add("pt", kin["pt"], f"{where}.pt")
    coll.columns["pt"] = _gev(coll.columns["pt"], scale)
    for field in ("eta", "phi"):
        coll.columns[field] = coll.add(field, kin[field], f"{where}.{field}").astype(
            np.float32, copy=False)
    coll.columns["mass"] = _gev(coll.add("mass", kin["mass"], f"{where}.mass"), scale)
    if key != "jet":
        charge, _ = read("charge", nominal_tag)
        if charge is None:
            raise InputError(f"{where}.charge: a lepton needs a charge branch")
        coll.columns["charge"] = coll.add("charge", charge, f"{where}.charge").astype(np.int32)

    def flags(tag: str, suffix: str) -> None:
        for field, numeric in (("id", id_name), ("iso", iso_name)):
            array, varied = read(field, tag)
            if array is None or (suffix and not varied):
                continue
            content = coll.add(field, array, f"{where}.{field}")
            del coll.columns[field]
            if _is_flag(content):
                coll.columns[f"pass{field.capitalize()}{suffix}"] = content.astype(bool)
            elif numeric is not None:
                coll.columns[f"{numeric}{suffix}"] = content
        if key == "jet" and spec.btag is not None:
            array, varied = read("btag", tag)
            if (array is None and profile.format == "physlite" and "." in spec.btag
                    and spec.btag.startswith("BTagging")):
                array = _tagger_score(reader, spec.btag, spec.pt.split(".", 1)[0], notes)
            if array is None or (suffix and not varied):
                return
            content = coll.add("btag", array, f"{where}.btag")
            if _is_flag(content):
                coll.columns[f"passBtag{suffix}"] = content.astype(bool)
                coll.columns[f"btag{suffix}"] = content.astype(np.float32)
            else:
                coll.columns[f"btag{suffix}"] = content
                if spec.btag_min is not None:
                    coll.columns[f"passBtag{suffix}"] = content >= spec.btag_min

    flags(nominal_tag, "")
    if spec.id is None:
        notes.add(f"input: objects.{key} has no id; identification not applied")
    if spec.iso is None and key != "jet":
        notes.add(f"input: objects.{key} has no iso; isolation not applied")
    if key == "jet" and "btag" not in coll.columns:
        notes.add("input: no b-tag information for the jets; no jet is b-tagged")
    for category, tag in profile.shape_systematics.items():
        kin, changed = kinematics(tag)
        suffix = f"{VARIATION_SEP}{category}"
        for field in sorted(changed):
            content = coll.add(f"{field}{suffix}", kin[field], f"{where}.{field}")
            coll.columns[f"{field}{suffix}"] = (
                content.astype(np.float32, copy=False) if field in ("eta", "phi")
                else _gev(content, scale))
        flags(tag, suffix)
    return coll.to_awkward()


def _met_components(reader: BranchReader, spec: MetSpec, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(pt, phi) of the MET in the file's units as float64, None when the file lacks it."""
    if spec.pt is not None:
        pt, _ = reader.value(spec.pt, tag)
        phi, _ = reader.value(spec.phi, tag)
        if pt is None or phi is None:
            return None
        return (np.asarray(ak.to_numpy(pt), dtype=np.float64),
                np.asarray(ak.to_numpy(phi), dtype=np.float64))
    if spec.mpx is None:
        return None
    mpx, _ = reader.value(spec.mpx, tag)
    mpy, _ = reader.value(spec.mpy, tag)
    if mpx is None or mpy is None:
        return None
    if spec.term is not None and mpx.ndim > 1:
        container = spec.mpx.split(".", 1)[0]
        names = reader.branch(f"{container}.name")
        if names is None:
            return None
        pick = names == spec.term
        mpx, mpy = ak.firsts(mpx[pick]), ak.firsts(mpy[pick])
    px = np.asarray(ak.to_numpy(ak.fill_none(mpx, np.nan)), dtype=np.float64)
    py = np.asarray(ak.to_numpy(ak.fill_none(mpy, np.nan)), dtype=np.float64)
    return np.hypot(px, py), np.arctan2(py, px)


def _rebuilt_met(collections: Mapping[str, ak.Array], category: str | None) -> tuple[np.ndarray, np.ndarray]:
    """MET (GeV) as minus the vector sum of every electron, muon and jet (no soft term)."""
    px = py = 0.0
    for objs in collections.values():
        pt_field = f"pt{VARIATION_SEP}{category}" if category else "pt"
        phi_field = f"phi{VARIATION_SEP}{category}" if category else "phi"
        fields = ak.fields(objs)
        pt = objs[pt_field if pt_field in fields else "pt"]
        phi = objs[phi_field if phi_field in fields else "phi"]
        px = px + ak.sum(pt * np.cos(phi), axis=1)
        py = py + ak.sum(pt * np.sin(phi), axis=1)
    px = -np.asarray(ak.to_numpy(px), dtype=np.float64)
    py = -np.asarray(ak.to_numpy(py), dtype=np.float64)
    return np.hypot(px, py), np.arctan2(py, px)


def _met(reader: BranchReader, spec: MetSpec, collections: Mapping[str, ak.Array],
         notes: set[str]) -> ak.Array:
    profile = reader.profile
    scale = profile.momentum_scale
    columns: dict[str, np.ndarray] = {}
    nominal = _met_components(reader, spec, profile.nominal_tag)
    rebuilt = nominal is None
    if rebuilt:
        if not spec.rebuild:
            raise InputError(f"{profile.source}: objects.met: MET branches not in the file "
                             "(set rebuild: true to rebuild it from the objects)")
        what = spec.mpx.split(".", 1)[0] if spec.mpx else spec.pt
        notes.add(f"input: no {what} in the file; MET rebuilt from all electrons, muons "
                  "and jets (no soft term)")
        nominal = _rebuilt_met(collections, None)
    else:
        nominal = (nominal[0] * scale, nominal[1])
        if spec.mpx is not None:
            container = spec.mpx.split(".", 1)[0]
            notes.add(f"input: MET from the file's {container}"
                      + (f" (term {spec.term})" if spec.term else ""))
    columns["pt"], columns["phi"] = (c.astype(np.float32) for c in nominal)
    for category, tag in profile.shape_systematics.items():
        if rebuilt:
            varied = _rebuilt_met(collections, category)
        else:
            templates = [t for t in (spec.pt, spec.phi, spec.mpx, spec.mpy) if t]
            if not any("{syst}" in t and reader.has(t.replace("{syst}", tag))
                       for t in templates):
                continue
            found = _met_components(reader, spec, tag)
            if found is None:
                continue
            varied = (found[0] * scale, found[1])
        columns[f"pt{VARIATION_SEP}{category}"] = varied[0].astype(np.float32)
        columns[f"phi{VARIATION_SEP}{category}"] = varied[1].astype(np.float32)
    return ak.zip(columns, depth_limit=1)


def _event_level(reader: BranchReader, out: dict[str, Any], notes: set[str]) -> None:
    profile = reader.profile
    grouped: dict[str, dict[str, ak.Array]] = {}
    for key, name in profile.branches.items():
        array, _ = reader.value(name, profile.nominal_tag)
        if array is None:
            notes.add(f"input: branches.{key}: no branch '{name}'; not used")
            continue
        if "_" in key:
            head, tail = key.split("_", 1)
            grouped.setdefault(head, {})[tail] = array
        else:
            out[key] = array
    for head, fields in grouped.items():
        out[head] = ak.zip(fields, depth_limit=1)
    for key, name in profile.event.items():
        array, _ = reader.value(name, profile.nominal_tag)
        if array is not None:
            out[key] = array
    if profile.weights:
        ratios: dict[str, np.ndarray] = {}
        for key, var in profile.weights.items():
            base_name = var.nominal or profile.branches.get("genWeight")
            base = reader.branch(base_name) if base_name else None
            for side in ("up", "down"):
                name = getattr(var, side)
                array = reader.branch(name) if name else None
                if array is None:
                    if name:
                        notes.add(f"input: weights.{key}.{side}: no branch '{name}'; skipped")
                    continue
                value = np.asarray(ak.to_numpy(array), dtype=np.float64)
                if base is not None:
                    den = np.asarray(ak.to_numpy(base), dtype=np.float64)
                    value = np.divide(value, den, out=np.ones_like(value), where=den != 0)
                ratios[f"{key}_{side}"] = value
        if ratios:
            out[PROFILE_WEIGHTS] = ak.zip(ratios, depth_limit=1)


def adapt_events(events: Any, profile: Profile | None, notes: set[str]) -> Any:
    """The chunk's events as the NanoAOD-like collections the selections read.

    Args:
        events: NanoEvents of one chunk, read with the profile's schema.
        profile: the input profile; None or the default ``nanoaod`` profile return
            ``events`` unchanged.
        notes: set collecting one line per thing the input lacks.

    Raises:
        InputError: a branch the profile needs is not in the file.
    """
    if profile is None or profile.identity:
        return events
    reader = BranchReader(events, profile)
    objects = profile.objects
    assert objects is not None
    out: dict[str, Any] = {}
    collections = {}
    for key in ("electron", "muon", "jet"):
        collections[key] = _objects(reader, key, getattr(objects, key), notes)
        out[_COLLECTIONS[key][0]] = collections[key]
    out["MET"] = _met(reader, objects.met, collections, notes)
    _event_level(reader, out, notes)
    return ak.zip(out, depth_limit=1)


def add_profile_weights(events: Any, weights: Any, notes: set[str]) -> dict[str, str]:
    """The profile's weight variations (``ProfileWeights``) added to coffea ``Weights``.

    Returns the systematic categories they give (``<name>_up`` / ``<name>_down``)
    and their ``Weights`` modifiers; nothing for an input without them.
    """
    if PROFILE_WEIGHTS not in events.fields:
        return {}
    record = events[PROFILE_WEIGHTS]
    fields = ak.fields(record)
    n = len(events)
    categories: dict[str, str] = {}
    for key in dict.fromkeys(f.rsplit("_", 1)[0] for f in fields):
        up = np.asarray(record[f"{key}_up"], dtype=np.float64) if f"{key}_up" in fields else None
        down = (np.asarray(record[f"{key}_down"], dtype=np.float64)
                if f"{key}_down" in fields else None)
        if up is None:
            notes.add(f"input: weights.{key}: no up variation; skipped")
            continue
        weights.add(f"profile_{key}", np.ones(n), up, down)
        categories[f"{key}_up"] = f"profile_{key}Up"
        if down is not None:
            categories[f"{key}_down"] = f"profile_{key}Down"
    return categories


def shape_categories(profile: Profile | None) -> list[str] | None:
    """The shape systematics of a profile (categories), None for NanoAOD read as it is
    (whose JES variations the config's ``jes`` systematic gives)."""
    if profile is None or profile.identity:
        return None
    return list(profile.shape_systematics)


def preload_columns(profile: Profile | None, default: frozenset[str]) -> frozenset[str]:
    """Branches a run reads with ``profile``, for the runner to preload in bulk.

    ``default`` (the processor's NanoAOD branches) for the ``nanoaod`` profile; the
    branches the profile names, with every systematic's tag, for a flat profile;
    none for the others (their columns are read as the events use them).
    """
    if profile is None or profile.identity:
        return default
    if profile.format != "flat":
        return frozenset()
    names: set[str] = set()
    for key, template in _templates(profile):
        del key
        for tag in profile.systematics.values():
            name = template.replace("{syst}", tag)
            m = FLAG_EXPRESSION.match(name)
            if m:
                name = m.group("branch")
            for part in name.split("/"):
                names.add(_MEMBER.sub(r"\g<name>", part.strip()))
    return frozenset(names)


def _templates(profile: Profile) -> list[tuple[str, str]]:
    out = [(f"branches.{k}", v) for k, v in profile.branches.items()]
    out += [(f"event.{k}", v) for k, v in profile.event.items()]
    for k, var in profile.weights.items():
        out += [(f"weights.{k}.{s}", getattr(var, s)) for s in ("up", "down", "nominal")
                if getattr(var, s)]
    if profile.objects is not None:
        for obj in ("electron", "muon", "jet", "met"):
            for field, value in getattr(profile.objects, obj).model_dump().items():
                if isinstance(value, str) and field != "term":
                    out.append((f"objects.{obj}.{field}", value))
    return out

