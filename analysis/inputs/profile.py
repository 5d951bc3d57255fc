"""Input profiles: how the branches of a file map onto what the selections read.

A profile is a small YAML file (the shipped ones are in ``ewpolar/inputs/profiles``)::

    format: flat            # nanoaod | physlite | flat
    tree: reco              # TTree or RNTuple name
    units: MeV              # MeV | GeV: momenta, energies and masses
    systematics: {nominal: NOSYS, jes_up: JET_JES__1up, jes_down: JET_JES__1down}
    event: {run: runNumber, event: eventNumber}
    branches:               # event-level name the analysis uses: branch in the file
      genWeight: weight_mc_NOSYS
      LHEScaleWeight: scale_weights
    weights:                # weight variations: category prefix -> up/down weight branches
      pileup: {up: weight_pileup_PRW_DATASF__1up, down: weight_pileup_PRW_DATASF__1down}
    objects:                # fields: pt, eta, phi, mass or energy, charge, id, iso, btag
      electron: {pt: "el_pt_{syst}", eta: el_eta, phi: el_phi, mass: el_m, charge: el_charge,
                 id: el_select_tight, iso: el_isolated}
      muon: {...}
      jet: {pt: "jet_pt_{syst}", eta: jet_eta, phi: jet_phi, mass: "jet_m_{syst}",
            id: jet_select_id, btag: jet_select_btag}
      met: {pt: "met_met_{syst}", phi: "met_phi_{syst}"}

Branch names:

* ``{syst}`` is replaced by a systematic's tag; every entry of ``systematics`` other
  than ``nominal`` is a shape variation, and its name (``jes_up``) is the category
  of the histograms' ``systematic`` axis. A varied branch the file does not have
  falls back to the nominal one (the CP-algorithm convention).
* ``name[k]`` takes member ``k`` of a per-event list (``EventInfo.mcEventWeights[0]``).
* ``branch OP number`` (OP one of ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``) is a
  pass flag made from a number, ``branch & MASK OP number`` one made from some bits
  of it (``Muons.quality & 3 <= 1``: medium muons);
* ``branch / other`` is a ratio (a relative isolation: ``Muons.ptvarcone30/pt``; in
  PHYSLITE a bare ``other`` is a field of the same collection).
* NanoAOD files name collection fields ``Jet_btagCSVV2``, PHYSLITE files
  ``Jets.pt`` (collections as coffea's PHYSLITE schema names them); flat files
  use the branch names as they are.

Object fields: ``id``, ``iso`` and ``btag`` columns that hold booleans are pass
flags, which replace the numeric cuts of the config (``id_min``, ``iso_max``,
``bjet.score_min``); numeric columns keep those cuts (an electron ``id`` as
NanoAOD's ``cutBased`` level, a muon ``id`` as a 0/1 flag, a jet ``id`` as
NanoAOD's ``jetId`` bits, ``iso`` as a relative isolation). A numeric ``btag``
is any real-valued score; ``btag_min`` gives the profile's own working point
(replacing the config's ``bjet.score_min``, which is chosen for its own tagger).
PHYSLITE jets may name a tagger of the b-tagging container
(``btag: BTagging_AntiKt4EMPFlow.GN2v01``), reached through the jets'
``btaggingLink``. The MET is given as ``pt``/``phi`` or as ``mpx``/``mpy`` of a
container with a ``term`` (PHYSLITE); with ``rebuild: true`` a file without it
gets the MET rebuilt from the electrons, muons and jets, and a note says so.

A profile whose ``objects`` are left out reads the file as NanoAOD as it is (the
default ``nanoaod`` profile). Flat files have no luminosity block; none is needed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from ewpolar.core.errors import InputError
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

__all__ = [
    "NOMINAL",
    "PROFILE_DIR",
    "MetSpec",
    "ObjectSpec",
    "Profile",
    "WeightVariation",
    "branch_name",
    "load_profile",
    "shipped_profiles",
]

NOMINAL = "nominal"

#: folder of the shipped profiles (``<name>.yaml``)
PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

#: a pass flag made from a number: ``branch OP value``
FLAG_EXPRESSION = re.compile(r"^\s*(?P<branch>[^\s<>=!&]+)\s*(?:&\s*(?P<mask>\d+)\s*)?"
                             r"(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[-+0-9.eE]+)\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectSpec(_Strict):
    """Branches of one object collection (electron, muon or jet)."""

    pt: str
    eta: str
    phi: str
    mass: str | None = None
    energy: str | None = None
    charge: str | None = None
    id: str | None = None
    iso: str | None = None
    btag: str | None = None
    #: the profile's own b-tagging working point on a numeric ``btag`` score
    btag_min: float | None = None

    @model_validator(mode="after")
    def _mass_or_energy(self) -> ObjectSpec:
        if self.mass is not None and self.energy is not None:
            raise ValueError("give mass or energy, not both")
        return self


class MetSpec(_Strict):
    """Branches of the missing transverse momentum."""

    pt: str | None = None
    phi: str | None = None
    mpx: str | None = None
    mpy: str | None = None
    #: with mpx/mpy of a container of terms: the term's ``name`` (e.g. ``Final``)
    term: str | None = None
    #: rebuild the MET from electrons, muons and jets when the file lacks these branches
    rebuild: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> MetSpec:
        polar = self.pt is not None or self.phi is not None
        cartesian = self.mpx is not None or self.mpy is not None
        if polar and cartesian:
            raise ValueError("give pt/phi or mpx/mpy, not both")
        if polar and (self.pt is None or self.phi is None):
            raise ValueError("pt and phi go together")
        if cartesian and (self.mpx is None or self.mpy is None):
            raise ValueError("mpx and mpy go together")
        if not (polar or cartesian or self.rebuild):
            raise ValueError("give pt/phi, mpx/mpy or rebuild: true")
        return self


class ProfileObjects(_Strict):
    electron: ObjectSpec
    muon: ObjectSpec
    jet: ObjectSpec
    met: MetSpec


class WeightVariation(_Strict):
    """A weight systematic: per-event weights of the up and down variations.

    The category weight is the nominal weight × up / ``nominal`` (the branch
    ``nominal``, by default the profile's ``genWeight``)."""

    up: str
    down: str | None = None
    nominal: str | None = None


class Profile(_Strict):
    """A validated input profile (see the module docstring for the keys)."""

    format: Literal["nanoaod", "physlite", "flat"]
    tree: str
    units: Literal["MeV", "GeV"] = "GeV"
    systematics: dict[str, str] = {NOMINAL: ""}
    event: dict[Literal["run", "event", "luminosityBlock"], str] = {}
    branches: dict[str, str] = {}
    weights: dict[str, WeightVariation] = {}
    objects: ProfileObjects | None = None
    #: the file the profile was read from (or the shipped profile's name)
    source: str = ""
    name: str = ""

    @model_validator(mode="after")
    def _nominal(self) -> Profile:
        if NOMINAL not in self.systematics:
            raise ValueError("systematics: needs a 'nominal' entry (its tag, '' for none)")
        for key in self.systematics:
            if "__" in key or not key:
                raise ValueError(f"systematics: '{key}' is no valid category name "
                                 "(non-empty, no '__')")
        if self.format != "nanoaod" and self.objects is None:
            raise ValueError(f"objects: a '{self.format}' profile needs objects")
        return self

    @property
    def identity(self) -> bool:
        """True for a NanoAOD profile without objects: the events are read as they are."""
        return self.format == "nanoaod" and self.objects is None

    @property
    def momentum_scale(self) -> float:
        """Factor to GeV of the file's momenta."""
        return 1e-3 if self.units == "MeV" else 1.0

    @property
    def nominal_tag(self) -> str:
        return self.systematics[NOMINAL]

    @property
    def shape_systematics(self) -> dict[str, str]:
        """Shape variations: category name → tag (every entry but ``nominal``)."""
        return {k: v for k, v in self.systematics.items() if k != NOMINAL}

    def named_branches(self) -> dict[str, str]:
        """Profile key (``objects.jet.pt``) → entry, with the nominal tag for ``{syst}``."""
        out: dict[str, str] = {}
        for key, name in self.branches.items():
            out[f"branches.{key}"] = name
        for key, name in self.event.items():
            out[f"event.{key}"] = name
        for key, var in self.weights.items():
            for side in ("up", "down", "nominal"):
                value = getattr(var, side)
                if value is not None:
                    out[f"weights.{key}.{side}"] = value
        if self.objects is not None:
            for obj in ("electron", "muon", "jet", "met"):
                spec = getattr(self.objects, obj)
                for field, value in spec.model_dump().items():
                    if isinstance(value, str) and field != "term":
                        out[f"objects.{obj}.{field}"] = value
        return {k: v.replace("{syst}", self.nominal_tag) for k, v in out.items()}


def branch_name(template: str, tag: str) -> str:
    """The branch a profile entry reads for a systematic ``tag``: ``{syst}`` replaced,
    without a pass-flag comparison or a list member (``w[0]`` → ``w``)."""
    name = template.replace("{syst}", tag)
    m = FLAG_EXPRESSION.match(name)
    if m:
        name = m.group("branch")
    return re.sub(r"\[\d+\]$", "", name.strip())


def shipped_profiles() -> list[str]:
    """Names of the profiles that come with ewpolar."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def _location(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-")) or "(top level)"


def load_profile(name_or_path: str | Path | Profile | None = None) -> Profile:
    """Read and validate an input profile.

    Args:
        name_or_path: a shipped profile's name (``nanoaod``, ``physlite``,
            ``atlas-flat``, ``cms-opendata-2015``), a YAML file, an already loaded
            profile, or None for ``nanoaod``.

    Raises:
        InputError: one line ``<file>: <key>: <problem>``.
    """
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = str(name_or_path) if name_or_path is not None else "nanoaod"
    path = Path(text)
    name = path.stem
    if text in shipped_profiles():
        path, name = PROFILE_DIR / f"{text}.yaml", text
    elif not path.is_file():
        raise InputError(f"--input {text}: no such profile file or shipped profile "
                         f"(shipped: {', '.join(shipped_profiles())})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(parse)"
        raise InputError(f"{path}: {where}: invalid YAML: "
                         f"{getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: (top level): expected a mapping of keys")
    try:
        return Profile.model_validate({**raw, "source": str(path), "name": name})
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        where = _location(err["loc"])
        raise InputError(f"{path}: {msg}" if where == "(top level)" and ": " in msg
                         else f"{path}: {where}: {msg}") from None
