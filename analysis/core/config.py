"""Analysis configuration: YAML files validated into pydantic models.

Every error becomes one line, ``<file>: <key.path>: <problem>``, raised as
:class:`~ewpolar.core.errors.ConfigError`. YAML is read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import logging
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from ewpolar.core.errors import ConfigError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "AnalysisConfig",
    "HistAxis",
    "Region",
    "Sample",
    "config_hash",
    "default_config_path",
    "load_config",
]

log = logging.getLogger(__name__)

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sample(_Strict):
    """One dataset: its physics process, role and cross section (fb)."""

    process: str
    kind: Literal["signal", "background", "data"]
    xsec_fb: PositiveFloat
    polarization: Literal["LL", "LT", "TT"] | None = None
    #: name in legends and titles (default: the dataset name)
    label: str | None = None
    #: one matplotlib colour for this sample in every figure (default: a fixed palette)
    colour: str | None = None
    #: ``ewpolar generate`` makes this many times the requested events of the sample, each
    #: with a correspondingly smaller weight: for rare backgrounds with a tiny selection
    #: efficiency, whose templates would otherwise rest on a handful of heavy events
    oversample: Annotated[int, Field(ge=1, le=1000)] = 1

    @model_validator(mode="after")
    def _colour_is_a_colour(self) -> Sample:
        if self.colour is not None:
            from matplotlib.colors import is_color_like

            if not is_color_like(self.colour):
                raise ValueError(f"colour: '{self.colour}' is not a matplotlib colour")
        return self


class GeneratorSettings(_Strict):
    """Settings of the toy generator (``ewpolar generate``)."""

    files_per_dataset: Annotated[int, Field(ge=1, le=1000)] = 2
    transverse_left_fraction: Annotated[float, Field(ge=0, le=1)] = 0.7
    cp_interference_scale: NonNegFloat = 0.4


class LeptonCuts(_Strict):
    pt_min: NonNegFloat
    eta_max: PositiveFloat
    id_min: Annotated[int, Field(ge=0)] = 0
    iso_max: PositiveFloat | None = None


class JetCuts(_Strict):
    pt_min: NonNegFloat
    eta_max: PositiveFloat
    id_min: Annotated[int, Field(ge=0)] = 0


class BJetCuts(_Strict):
    """b-jets: kinematics and a cut on the tagger's score.

    ``score_min`` is any real number: a probability-like score (NanoAOD's
    ``btagDeepFlavB`` in [0, 1]) or a log-likelihood-ratio discriminant (ATLAS
    GN2 or DL1, working points near 2.7). An input profile whose jets carry a
    pass flag or their own working point (``objects.jet.btag_min``) replaces it.
    """

    pt_min: NonNegFloat
    eta_max: PositiveFloat
    score_min: float


class ObjectSelection(_Strict):
    """Object definitions shared by all regions of an analysis."""

    electron: LeptonCuts
    muon: LeptonCuts
    jet: JetCuts
    bjet: BJetCuts
    overlap_dr: NonNegFloat = 0.4


class Region(_Strict):
    """Event-level cuts of one region; a cut left out (None) is not applied."""

    n_leptons: Annotated[int, Field(ge=1, le=4)]
    same_sign: bool = False
    mll_min: NonNegFloat | None = None
    dr_ll_min: NonNegFloat | None = None
    met_min: NonNegFloat | None = None
    jet1_pt_min: NonNegFloat | None = None
    jet2_pt_min: NonNegFloat | None = None
    mjj_min: NonNegFloat | None = None
    mjj_max: PositiveFloat | None = None
    dy_jj_min: NonNegFloat | None = None
    n_jets_min: Annotated[int, Field(ge=0)] | None = None
    n_jets_max: Annotated[int, Field(ge=0)] | None = None
    n_bjets_min: Annotated[int, Field(ge=0)] | None = None
    n_bjets_max: Annotated[int, Field(ge=0)] | None = None
    zveto_ee: NonNegFloat | None = None
    require_sfos_z: PositiveFloat | None = None
    mbb_min: NonNegFloat | None = None
    mbb_max: PositiveFloat | None = None
    neutrino_rule: Literal["min_abs", "wh_beta"] = "min_abs"

    @model_validator(mode="after")
    def _ranges(self) -> Region:
        for lo, hi in (("mjj_min", "mjj_max"), ("n_jets_min", "n_jets_max"),
                       ("n_bjets_min", "n_bjets_max"), ("mbb_min", "mbb_max")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{lo} = {a} is larger than {hi} = {b}")
        return self


class HistAxis(_Strict):
    """A histogram axis: regular (bins, start, stop) or variable (edges)."""

    label: str = ""
    bins: Annotated[int, Field(ge=1, le=10000)] | None = None
    start: float | None = None
    stop: float | None = None
    edges: list[float] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> HistAxis:
        regular = (self.bins, self.start, self.stop)
        if self.edges is not None:
            if any(v is not None for v in regular):
                raise ValueError("give either edges or bins/start/stop, not both")
            if len(self.edges) < 2 or any(b <= a for a, b in itertools.pairwise(self.edges)):
                raise ValueError("edges must be at least two strictly increasing numbers")
        else:
            if any(v is None for v in regular):
                raise ValueError("a regular axis needs bins, start and stop (or give edges)")
            if self.stop <= self.start:
                raise ValueError(f"stop = {self.stop} must be larger than start = {self.start}")
        return self


class ModelRef(_Strict):
    path: str
    #: axis label of its score in figures (default: "<name> score")
    label: str | None = None


class EstimatorRef(_Strict):
    """An ONNX estimator whose output is histogrammed as an observable (WH).

    ``path``: the ``.onnx`` file (its card next to it); ``output``: the graph
    output used, e.g. ``score`` of SALLY or ``log_ratio`` of ALICES;
    ``parameter``: the value given to a parameterised estimator's parameter input
    (e.g. the reference c of an ALICES ratio r̂(x|c)). The binning is the
    ``histograms`` entry of the same name; the WH processor also books it
    against p_T^W (``<name>_ptw``) for the fit (``fit.signal_observable``).
    """

    path: str
    output: str = "score"
    parameter: float | None = None


class Template(_Strict):
    """A 2D score template: x and y are model names, binned uniformly on [0, 1].

    ``regions``: the regions the template is filled in (None: every region). The
    events of the other regions are not scored for it.
    """

    x: str
    y: str
    x_bins: Annotated[int, Field(ge=1, le=100)] = 4
    y_bins: Annotated[int, Field(ge=1, le=100)] = 4
    regions: list[str] | None = None


class Systematic(_Strict):
    """One systematic uncertainty.

    ``mode`` applies to scale variations (envelope of the 7-point variations, or
    every LHEScaleWeight member as its own category); ``pdf_scheme`` tells how
    the LHEPdfWeight members combine: Hessian eigenvectors (quadrature sum of
    the deviations) or Monte Carlo replicas (standard deviation).
    """

    kind: Literal["normsys", "scale", "pdf", "jes", "correction"]
    size: PositiveFloat | None = None
    mode: Literal["envelope", "all"] = "envelope"
    pdf_scheme: Literal["hessian", "replicas"] = "hessian"
    file: str | None = None


class FitSpec(_Strict):
    """One ssWW fit: the 2D template, the samples scaled by the POI and those floating."""

    template: str
    poi_samples: list[str]
    floating_samples: list[str] = []
    # SM fiducial cross section of the POI samples (fb); default: their summed xsec_fb
    sm_fiducial_xsec_fb: PositiveFloat | None = None


class CPScan(_Strict):
    parameter: str = "c_HWtilde"
    min: float = -2.0
    max: float = 2.0
    points: Annotated[int, Field(ge=3, le=10001)] = 81


class FitSettings(_Strict):
    pseudo_data: Literal["asimov", "poisson"] = "asimov"
    seed: int = 1
    fits: dict[str, FitSpec] = {}
    cp_scan: CPScan | None = None
    control_regions: list[str] = []
    # 1D histogram fitted in each control region (one bin per histogram bin)
    control_observable: str | None = None
    # WH: the 2D Q_l cos(delta+) x pT^W histogram of the signal region
    signal_observable: str | None = None
    free_normalisations: dict[str, str] = {}


class CondorSettings(_Strict):
    """HTCondor batch jobs for dask workers (``ewpolar run --executor condor``, dask-jobqueue)."""

    cores: Annotated[int, Field(ge=1, le=256)] = 1
    processes: Annotated[int, Field(ge=1, le=256)] | None = None
    memory: str = "4 GB"
    disk: str = "4 GB"
    job_extra_directives: dict[str, str] = {}
    log_directory: str | None = None
    # fixed number of jobs, or adaptive bounds
    jobs: Annotated[int, Field(ge=1)] | None = 2
    adapt_minimum: Annotated[int, Field(ge=0)] | None = None
    adapt_maximum: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _scaling(self) -> CondorSettings:
        if (self.adapt_minimum is None) != (self.adapt_maximum is None):
            raise ValueError("give both adapt_minimum and adapt_maximum, or neither")
        if self.adapt_maximum is not None and self.adapt_minimum > self.adapt_maximum:
            raise ValueError("adapt_minimum is larger than adapt_maximum")
        return self


class AnalysisConfig(_Strict):
    """A whole analysis config (``config/ssww.yaml`` or ``config/wh.yaml``)."""

    channel: Literal["ssww", "wh"]
    luminosity_fb: PositiveFloat
    samples: dict[str, Sample]
    generator: GeneratorSettings = GeneratorSettings()
    objects: ObjectSelection
    regions: dict[str, Region]
    histograms: dict[str, HistAxis]
    stxs_ptv_edges: list[float] | None = None
    models: dict[str, ModelRef] = {}
    # optional: ONNX estimators (SALLY score, ALICES ratio) histogrammed as observables
    estimators: dict[str, EstimatorRef] = {}
    templates: dict[str, Template] = {}
    systematics: dict[str, Systematic] = {}
    fit: FitSettings = FitSettings()
    condor: CondorSettings = CondorSettings()

    # Path of the YAML file this config came from (set by load_config).
    source: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _cross_references(self) -> AnalysisConfig:
        if not self.samples:
            raise ValueError("samples: at least one sample is needed")
        if not self.regions:
            raise ValueError("regions: at least one region is needed")
        for name, s in self.samples.items():
            if self.channel == "ssww" and s.kind == "signal" and s.polarization is None:
                raise ValueError(f"samples.{name}.polarization: ssWW signal samples need LL, LT or TT")
        for name in self.estimators:
            if name not in self.histograms:
                raise ValueError(f"estimators.{name}: needs a histograms.{name} entry "
                                 "(the binning of its output)")
        for name, t in self.templates.items():
            for ax in ("x", "y"):
                ref = getattr(t, ax)
                if ref not in self.models:
                    raise ValueError(f"templates.{name}.{ax}: unknown model '{ref}'"
                                     f" (models: {', '.join(self.models) or 'none'})")
            for r in t.regions or []:
                if r not in self.regions:
                    raise ValueError(f"templates.{name}.regions: unknown region '{r}'"
                                     f" (regions: {', '.join(self.regions)})")
        for name, f in self.fit.fits.items():
            if f.template not in self.templates:
                raise ValueError(f"fit.fits.{name}.template: unknown template '{f.template}'")
            filled = self.templates[f.template].regions
            if filled is not None and "signal" not in filled:
                raise ValueError(f"fit.fits.{name}.template: the fit uses template "
                                 f"'{f.template}' in region 'signal', which its regions "
                                 f"({', '.join(filled)}) leave out")
            for s in [*f.poi_samples, *f.floating_samples]:
                if s not in self.samples:
                    raise ValueError(f"fit.fits.{name}: unknown sample '{s}'")
        for r in self.fit.control_regions:
            if r not in self.regions:
                raise ValueError(f"fit.control_regions: unknown region '{r}'")
        for s, r in self.fit.free_normalisations.items():
            if s not in self.samples:
                raise ValueError(f"fit.free_normalisations: unknown sample '{s}'")
            if r not in self.regions:
                raise ValueError(f"fit.free_normalisations.{s}: unknown region '{r}'")
        return self

    def config_dir(self) -> Path:
        """Folder of the YAML file; relative file names in the config resolve from here."""
        return Path(self.source).parent if self.source else default_config_dir()

    def resolve(self, relpath: str) -> Path:
        """Resolve a path named in the config: absolute, relative to the config, or the project."""
        p = Path(relpath)
        if p.is_absolute():
            return p
        # beside the config, the project root, or the installed `ewpolar` package
        # (models/*.onnx ship inside `ewpolar.models`)
        for base in (self.config_dir(), self.config_dir().parent, _package_root()):
            if (base / p).exists():
                return base / p
        return self.config_dir() / p


def _package_root() -> Path:
    """The folder that holds ``models/`` and the configs: the repository root in a checkout or
    editable install (analysis/core/config.py), the ``ewpolar`` package in a wheel
    (ewpolar/core/config.py)."""
    framework = Path(__file__).resolve().parent.parent
    return framework.parent if (framework.parent / "config").is_dir() else framework


def default_config_dir() -> Path:
    """The shipped config folder (repository checkout or installed package data)."""
    root = _package_root()
    for cand in (root / "config", root / "_default_config"):
        if cand.is_dir():
            return cand
    raise ConfigError("no default config folder found (expected config/ beside the framework)")


def default_config_path(channel: str) -> Path:
    """Path of the shipped config for ``channel`` ('ssww' or 'wh')."""
    return default_config_dir() / f"{channel}.yaml"


def _closest(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _unwrap(ann: Any) -> Any:
    """Strip Optional/Annotated wrappers from a field annotation."""
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            ann = typing.get_args(ann)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            ann = args[0] if len(args) == 1 else ann
            if len(args) != 1:
                return ann
        else:
            return ann


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc`` (for 'did you mean')."""
    ann: Any = AnalysisConfig
    for key in loc[:-1]:
        ann = _unwrap(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = ann.model_fields.get(str(key))
            if field is None:
                return None
            ann = field.annotation
        elif typing.get_origin(ann) is dict:
            ann = typing.get_args(ann)[1]
        else:
            return None
    ann = _unwrap(ann)
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _format_error(source: str, err: ValidationError) -> str:
    errors = err.errors(include_url=False)
    # a misspelt key also makes the right one "missing": report the unknown key first
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(first["loc"])
    path = ".".join(str(p) for p in loc) or "(top level)"
    etype = first["type"]
    if etype == "extra_forbidden":
        owner = _model_at(loc)
        hint = _closest(str(loc[-1]), list(owner.model_fields)) if owner else ""
        problem = f"unknown key{hint}"
    elif etype == "missing":
        problem = "required key is missing"
    elif etype == "value_error":
        problem = str(first["msg"]).removeprefix("Value error, ")
    else:
        given = first.get("input")
        shown = repr(given) if not isinstance(given, dict | list) else type(given).__name__
        problem = f"{first['msg']} (got {shown})"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    msg = f"{source}: {problem}{more}" if not loc else f"{source}: {path}: {problem}{more}"
    # keys and values can hold line breaks: keep the message on one line
    return msg.replace("\r", "\\r").replace("\n", "\\n")


def load_config(path: str | Path) -> AnalysisConfig:
    """Read and validate an analysis config.

    Args:
        path: YAML file, or a channel name ('ssww', 'wh') for the shipped default.

    Raises:
        ConfigError: one line ``<file>: <key path>: <problem>``.
    """
    if str(path) in ("ssww", "wh"):
        path = default_config_path(str(path))
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(parse)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}: invalid YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of keys, got {type(raw).__name__}")
    try:
        cfg = AnalysisConfig.model_validate({**raw, "source": str(path)})
    except ValidationError as exc:
        raise ConfigError(_format_error(str(path), exc)) from None
    for name, sys_ in cfg.systematics.items():
        if sys_.file is not None and not cfg.resolve(sys_.file).is_file():
            raise ConfigError(f"{path}: systematics.{name}.file: file not found: {sys_.file}")
    log.debug("loaded config %s (%d samples, %d regions)", path, len(cfg.samples), len(cfg.regions))
    return cfg


def config_hash(cfg: AnalysisConfig) -> str:
    """sha256 of the validated config's canonical JSON (recorded in run metrics).

    Optional sections that are empty are left out, so adding an optional key to
    the schema does not change the hash of the configs that do not use it.
    """
    exclude = {"estimators"} if not cfg.estimators else None
    return hashlib.sha256(cfg.model_dump_json(exclude=exclude).encode()).hexdigest()
