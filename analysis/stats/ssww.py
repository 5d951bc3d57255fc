"""Same-sign WW polarization: the workspace of each fit (LL, LX) and the fit driver.

Each fit of ``config.fit.fits`` is one pyhf workspace (:func:`ssww_workspace`):
channel ``signal`` is the unrolled 2D score template ``template_{spec.template}``
(signal-vs-background score along x, polarization score along y; see
:func:`ewpolar.stats.workspace.unroll`), each control region a channel of
``fit.control_observable``. Normalisation factors: ``mu_{fit}`` (the POI, on the
fit's ``poi_samples``), one floating factor on its ``floating_samples`` named after
the polarization states it scales (``mu_TX``, ``mu_TT``, ...), and ``mu_{sample}``
for ``fit.free_normalisations``. :func:`fit_ssww` fits each workspace, computes the
discovery significance and the CLs upper limit on the POI and its cross section.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import pyhf
from ewpolar.core.config import AnalysisConfig, FitSpec
from ewpolar.core.errors import ConfigError
from ewpolar.core.outputs import ensure_writable_dir
from ewpolar.core.results import FitResults, PolarizationFit, SsWWResults, write_results
from ewpolar.stats.likelihood import (
    MC_STAT_DOMINANT,
    fit_significance_limit,
    numpy_backend,
    upper_limit_toys,
)
from ewpolar.stats.workspace import (
    SHAPE_THRESHOLD,
    SIGNAL_REGION,
    HistogramSet,
    build_workspace,
    channel_config,
    check_free_normalisations,
    check_regions,
    control_channels,
    load_histograms,
    mc_samples,
    model_and_data,
    sample_input,
    with_pseudo_data,
)

__all__ = ["fit_ssww", "sm_xsec_fb", "ssww_fit_parameters", "ssww_workspace"]

log = logging.getLogger(__name__)

_POLARIZATION_GROUPS = {
    frozenset({"LT", "TT"}): "TX",
    frozenset({"LL", "LT"}): "LX",
    frozenset({"LL"}): "LL",
    frozenset({"LT"}): "LT",
    frozenset({"TT"}): "TT",
}


# --------------------------------------------------------------------------- workspace


def _group_name(config: AnalysisConfig, fit_name: str, samples: Sequence[str]) -> str:
    pols = {config.samples[s].polarization for s in samples}
    label = None if None in pols else _POLARIZATION_GROUPS.get(frozenset(pols))
    return f"mu_{label}" if label and label != fit_name else f"mu_{fit_name}_floating"


def ssww_fit_parameters(config: AnalysisConfig, fit_name: str) -> tuple[str, str | None]:
    """The POI (``mu_{fit}``) and floating normfactor names of an ssWW fit."""
    spec = _fit_spec(config, fit_name)
    floating = _group_name(config, fit_name, spec.floating_samples) if spec.floating_samples else None
    return f"mu_{fit_name}", floating


def _fit_spec(config: AnalysisConfig, fit_name: str) -> FitSpec:
    try:
        return config.fit.fits[fit_name]
    except KeyError:
        raise ConfigError(f"{config.source or 'config'}: fit.fits: no fit named '{fit_name}'"
                          f" (fits: {', '.join(config.fit.fits) or 'none'})") from None


def ssww_workspace(config: AnalysisConfig, histograms: str | Path | HistogramSet, fit_name: str, *,
                   pseudo_data: str | None = None, seed: int | None = None,
                   parameters: Mapping[str, float] | None = None,
                   shape_threshold: float = SHAPE_THRESHOLD,
                   notes: list[str] | None = None) -> pyhf.Workspace:
    """Workspace of one ssWW polarization fit (``config.fit.fits[fit_name]``).

    Channel ``signal`` is the unrolled 2D template ``template_{spec.template}``;
    each control region is a channel of ``fit.control_observable``. The POI
    ``mu_{fit_name}`` scales ``poi_samples``, one free normfactor scales
    ``floating_samples``, ``fit.free_normalisations`` get ``mu_{sample}``.

    Args:
        pseudo_data: ``asimov`` or ``poisson``; default ``config.fit.pseudo_data``.
        seed: seed of the Poisson draw; default ``config.fit.seed``.
        parameters: values to generate the pseudo-data at (e.g. ``{"mu_LL": 2.0}``).
        notes: a list to which the bin merges of the build are appended.
    """
    hs = load_histograms(histograms)
    check_regions(config, hs)
    spec = _fit_spec(config, fit_name)
    poi, floating = ssww_fit_parameters(config, fit_name)
    check_free_normalisations(config)
    normfactors: dict[str, list[str]] = {d: [] for d in mc_samples(config)}
    for d in spec.poi_samples:
        normfactors[d].append(poi)
    for d in spec.floating_samples:
        normfactors[d].append(floating)
    for d in config.fit.free_normalisations:
        if normfactors.get(d):
            log.warning("sample %s has a free normalisation and is a fitted polarization state", d)
        normfactors.setdefault(d, []).append(f"mu_{d}")
    observable = f"template_{spec.template}"
    channels = {SIGNAL_REGION: {d: sample_input(config, hs, d, SIGNAL_REGION, observable, normfactors[d])
                                for d in mc_samples(config)}}
    channels.update(control_channels(config, hs, normfactors))
    ws = build_workspace(channels, poi=poi, shape_threshold=shape_threshold, notes=notes)
    return _pseudo_data(config, ws, pseudo_data, seed, parameters)


def _pseudo_data(config: AnalysisConfig, ws: pyhf.Workspace, pseudo_data: str | None,
                 seed: int | None, parameters: Mapping[str, float] | None) -> pyhf.Workspace:
    kind = pseudo_data or config.fit.pseudo_data
    seed = config.fit.seed if seed is None else seed
    if kind == "asimov" and not parameters:
        return ws
    return with_pseudo_data(ws, kind=kind, seed=seed, parameters=parameters)


# --------------------------------------------------------------------------- fit


def sm_xsec_fb(config: AnalysisConfig, fit_name: str) -> tuple[float, str]:
    """SM cross section (fb) that converts a fit's μ limit into fb, and what it is.

    The FitSpec's ``sm_fiducial_xsec_fb`` when given (a fiducial cross section);
    otherwise the summed generator cross sections of the POI samples: the total
    in the generator's phase space, with no fiducial acceptance applied.
    """
    spec = config.fit.fits[fit_name]
    if spec.sm_fiducial_xsec_fb is not None:
        return float(spec.sm_fiducial_xsec_fb), "fiducial cross section from the config (fit.fits)"
    return (float(sum(config.samples[s].xsec_fb for s in spec.poi_samples)),
            f"generator cross section of {' + '.join(spec.poi_samples)} (no fiducial acceptance"
            " applied)")


def fit_ssww(config: AnalysisConfig | str | Path, histograms_path: str | Path | HistogramSet, *,
             pseudo_data: Literal["asimov", "poisson"] | None = None, seed: int | None = None,
             mu_inject: float | Mapping[str, float] | None = None,
             fits: Sequence[str] | None = None, out: str | Path | None = None,
             toys: int = 0) -> SsWWResults:
    """Fit the ssWW polarization fits of the config (LL and LX).

    For each fit: maximum-likelihood fit (all parameters with uncertainties),
    observed/expected discovery significance, 95 % CL CLs upper limit on the POI,
    and the limit in fb (times :func:`sm_xsec_fb`). The POI's uncertainty is its
    profile-likelihood interval, also computed without the MC-statistics
    parameters; the nuisance parameters are ranked by their impact on the POI.
    All workspaces are built before the first fit, so bad input fails at once.
    ``results.notes`` says what a reader must know: Asimov pseudo-data, merged
    bins, an interval dominated by MC statistics, a fit that did not converge.

    Args:
        config: the analysis config (or its path / channel name).
        histograms_path: the ``histograms.root`` of ``ewpolar run``.
        pseudo_data: ``asimov`` or ``poisson``; default ``config.fit.pseudo_data``.
        seed: seed of the Poisson draw; default ``config.fit.seed``.
        mu_inject: POI value of the pseudo-data (one for all fits, or per fit name);
            default 1 (the SM).
        fits: names of the fits to run (default: all of ``config.fit.fits``).
        out: folder for ``workspace_{fit}.json`` and ``results.json``; None: write nothing.
        toys: pseudo-experiments per POI value for a toy-based CLs limit beside the
            asymptotic one (0: none).

    Raises:
        InputError: a histogram the fit needs is missing, or the file is unreadable.
        ConfigError: not an ssWW config, or an unknown fit name.
    """
    t0 = time.perf_counter()
    cfg = channel_config(config, "ssww")
    out_dir = ensure_writable_dir(out) if out is not None else None
    hs = load_histograms(histograms_path)
    kind = pseudo_data or cfg.fit.pseudo_data
    seed = cfg.fit.seed if seed is None else seed
    names = list(cfg.fit.fits) if fits is None else list(fits)
    workspaces: dict[str, pyhf.Workspace] = {}
    pois: dict[str, str] = {}
    injected: dict[str, float | None] = {}
    notes: list[str] = []
    if kind == "asimov":
        notes.append("pseudo-data are Asimov (the expected yields): 'observed' numbers are expected"
                     " ones, not a measurement")
    for name in names:
        pois[name], _ = ssww_fit_parameters(cfg, name)
        mu = mu_inject.get(name) if isinstance(mu_inject, Mapping) else mu_inject
        injected[name] = None if mu is None else float(mu)
        merged: list[str] = []
        workspaces[name] = ssww_workspace(cfg, hs, name, pseudo_data=kind, seed=seed,
                                          parameters=None if mu is None else {pois[name]: float(mu)},
                                          notes=merged)
        notes += [f"fit {name}: {m}" for m in merged]
    results_per_fit: dict[str, PolarizationFit] = {}
    for name, ws in workspaces.items():
        poi = pois[name]
        with numpy_backend():
            model, data = model_and_data(ws)
            best, sig, lim = fit_significance_limit(model, data)
            lim_toys = upper_limit_toys(model, data, ntoys=toys, seed=seed, asymptotic=lim) \
                if toys else None
        xsec, definition = sm_xsec_fb(cfg, name)
        results_per_fit[name] = PolarizationFit(name, poi, best, sig, lim, xsec, definition, dict(ws),
                                                lim_toys)
        notes += _fit_notes(name, poi, best)
        iv = best.interval(poi)
        log.info("fit %s: %s = %s (Hesse ± %.3f), Z = %.2f (exp. %.2f), mu_up = %.3g (exp. %.3g)",
                 name, poi, iv.describe(".3f"), iv.hesse, sig.observed, sig.expected,
                 lim.observed, lim.expected)
    results = SsWWResults(results_per_fit, {"kind": kind, "seed": seed if kind == "poisson" else None,
                                            "mu_inject": injected},
                          cfg.luminosity_fb, time.perf_counter() - t0, notes)
    if out_dir is not None:
        write_results(results, out_dir)
    return results




def _fit_notes(name: str, poi: str, best: FitResults) -> list[str]:
    """Notes on one fit: convergence, open interval edges, MC statistics dominating the interval."""
    notes = []
    if not best.converged:
        text = f"fit {name}: the fit did NOT converge (edm {best.edm:.3g}); its numbers are unreliable"
        log.warning(text)
        notes.append(text)
    iv = best.interval(poi)
    for flag, side, edge, at in ((iv.low_open, "lower", iv.low, iv.low_at_bound),
                                 (iv.high_open, "upper", iv.high, iv.high_at_bound)):
        if flag:
            notes.append(f"fit {name}: the {side} edge of the 68% CL interval of {poi} is the"
                         f" parameter bound {edge:g} (-2 delta ln L there {at or 0:.2f} < 1): open")
    frac = iv.mc_stat_fraction
    if frac is not None and frac > MC_STAT_DOMINANT:
        text = (f"fit {name}: MC statistics dominate the interval of {poi}: {100 * frac:.0f}% of its"
                f" squared width (without the staterror parameters [{iv.stat_low:.3g},"
                f" {iv.stat_high:.3g}]); generate more events")
        log.warning(text)
        notes.append(text)
    return notes
