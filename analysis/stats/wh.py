"""WH: the STXS × Q_l cos δ⁺ category model, the CP-coupling model and the fit driver.

The signal histogram is 2D (Q_l cos δ⁺, p_T^W). Its p_T^W bins are merged into the
STXS bins of ``stxs_ptv_edges`` (:func:`stxs_categories`); each STXS bin is split
into its Q_l cos δ⁺ < 0 and > 0 halves.

* :func:`wh_category_workspace`: a signal strength ``mu_stxs{i}_{neg|pos}`` per
  category, one channel ``stxs{i}`` per STXS bin;
* :func:`wh_cp_workspace`: the signal is SM + c·int + c²·quad (the ``cp_int`` /
  ``cp_quad`` templates) with c and c² fixed normfactors named
  ``{cp_scan.parameter}`` and ``{cp_scan.parameter}_sq``;
* :func:`fit_wh`: μ per category and the profile-likelihood scan of c, both on
  the same pseudo-data (:func:`wh_observations`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyhf
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.core.naming import CP_INT, CP_QUAD, NOMINAL, histogram_name
from ewpolar.core.outputs import ensure_writable_dir
from ewpolar.core.results import Interval, WHCategory, WHResults, write_results
from ewpolar.stats.likelihood import MC_STAT_DOMINANT, fit, numpy_backend, scan_coupling
from ewpolar.stats.workspace import (
    SHAPE_THRESHOLD,
    SIGNAL_REGION,
    HistogramSet,
    SampleInput,
    build_workspace,
    channel_config,
    check_free_normalisations,
    check_regions,
    control_channels,
    load_histograms,
    mc_samples,
    model_and_data,
    sample_input,
    split_variation,
)

__all__ = [
    "StxsCategory",
    "cp_parameter_names",
    "fit_wh",
    "stxs_categories",
    "wh_category_workspace",
    "wh_cp_workspace",
    "wh_observations",
]

log = logging.getLogger(__name__)

#: the systematic names of the signal's CP templates: interference (∝ c) and quadratic (∝ c²)
_CP_TEMPLATES = {"int": CP_INT, "quad": CP_QUAD}


# --------------------------------------------------------------------------- categories


@dataclass(frozen=True)
class StxsCategory:
    """One STXS p_T^W bin: its edges (GeV) and the histogram p_T^W bins merged into it."""

    index: int
    low: float
    high: float
    ptw_bins: tuple[int, ...]


def stxs_categories(ptw_edges: Sequence[float], stxs_edges: Sequence[float], *,
                    source: str = "histograms") -> list[StxsCategory]:
    """Map histogram p_T^W bins onto STXS bins.

    Every STXS edge inside the histogram range must be a histogram edge; the
    first edges must agree; the last STXS bin is open-ended, so its upper edge
    may lie above the histogram's last edge (it then takes all bins above its
    lower edge).

    Raises:
        InputError: the edges do not align.
    """
    h = np.asarray(ptw_edges, dtype=float)
    s = np.asarray(stxs_edges, dtype=float)
    if not np.isclose(h[0], s[0]):
        raise InputError(f"{source}: p_T^W histogram starts at {h[0]:g} GeV, STXS bins at {s[0]:g} GeV")
    if s[-1] < h[-1] and not np.isclose(s[-1], h[-1]):
        raise InputError(f"{source}: STXS bins end at {s[-1]:g} GeV, below the p_T^W histogram's"
                         f" last edge {h[-1]:g} GeV")
    idx = []
    for e in s[1:-1]:
        match = np.flatnonzero(np.isclose(h, e))
        if match.size == 0:
            raise InputError(f"{source}: STXS edge {e:g} GeV is not a p_T^W histogram edge"
                             f" ({', '.join(f'{x:g}' for x in h)})")
        idx.append(int(match[0]))
    bounds = [0, *idx, len(h) - 1]
    return [StxsCategory(i, float(s[i]), float(s[i + 1]), tuple(range(bounds[i], bounds[i + 1])))
            for i in range(len(s) - 1)]


def _wh_signal_geometry(config: AnalysisConfig, hs: HistogramSet) -> tuple[str, list[StxsCategory], int]:
    obs = config.fit.signal_observable
    if obs is None:
        raise ConfigError(f"{config.source or 'config'}: fit.signal_observable: required for WH")
    if config.stxs_ptv_edges is None:
        raise ConfigError(f"{config.source or 'config'}: stxs_ptv_edges: required for WH")
    signal = [d for d, s in config.samples.items() if s.kind == "signal"]
    if not signal:
        raise ConfigError(f"{config.source or 'config'}: samples: no signal sample")
    nom = hs.nominal(signal[0], SIGNAL_REGION, obs)
    name = histogram_name(signal[0], SIGNAL_REGION, NOMINAL, obs)
    if len(nom.edges) != 2:
        raise InputError(f"{hs.source}: histogram '{name}' must be 2D (Q_l cos delta+, p_T^W)")
    cats = stxs_categories(nom.edges[1], config.stxs_ptv_edges, source=f"{hs.source}: {name}")
    zero = np.flatnonzero(np.isclose(nom.edges[0], 0.0, atol=1e-9))
    if zero.size == 0:
        raise InputError(f"{hs.source}: histogram '{name}': no Q_l cos delta+ bin edge at 0")
    return obs, cats, int(zero[0])


def _merge(values: np.ndarray, cat: StxsCategory) -> np.ndarray:
    """Sum the p_T^W bins of one STXS category: (n_cos, n_ptw) -> (n_cos,)."""
    return np.asarray(values, dtype=float)[:, list(cat.ptw_bins)].sum(axis=1)


def _half(values: np.ndarray, split: int, which: str) -> np.ndarray:
    out = np.array(values, dtype=float)
    if which == "neg":
        out[split:] = 0
    else:
        out[:split] = 0
    return out


def _wh_backgrounds(config: AnalysisConfig) -> tuple[list[str], list[str]]:
    signal = [d for d, s in config.samples.items() if s.kind == "signal"]
    background = [d for d in mc_samples(config) if d not in signal]
    return signal, background


def wh_observations(config: AnalysisConfig, histograms: str | Path | HistogramSet, *,
                    pseudo_data: str | None = None, seed: int | None = None,
                    c_true: float = 0.0, interference_scale: float = 1.0) -> dict[str, np.ndarray]:
    """WH pseudo-data per category channel (``stxs{i}``, control regions) at coupling ``c_true``.

    Asimov: expected counts at nominal nuisance parameters, backgrounds at their
    nominal normalisation and the signal SM + c·int + c²·quad. Poisson: one draw
    of these per bin with ``seed``, channels in a fixed order, so that the
    category and CP workspaces see the same counts. ``interference_scale``
    multiplies the interference template.
    """
    hs = load_histograms(histograms)
    check_regions(config, hs)
    obs, cats, _ = _wh_signal_geometry(config, hs)
    signal, background = _wh_backgrounds(config)
    sr = sum(np.clip(hs.nominal(d, SIGNAL_REGION, obs).values, 0, None) for d in background)
    for d in signal:
        sr = sr + np.clip(hs.nominal(d, SIGNAL_REGION, obs).values, 0, None)
        for part, power in (("int", 1), ("quad", 2)):
            t = hs.variation(d, SIGNAL_REGION, _CP_TEMPLATES[part], obs)
            if t is not None and c_true != 0:
                scale = interference_scale if part == "int" else 1.0
                sr = sr + scale * c_true**power * t.values
    out = {f"stxs{cat.index}": _merge(sr, cat) for cat in cats}
    if config.fit.control_regions:
        cr_obs = config.fit.control_observable
        for region in config.fit.control_regions:
            out[region] = sum(np.clip(hs.nominal(d, region, cr_obs).values, 0, None).ravel()
                              for d in mc_samples(config))
    kind = pseudo_data or config.fit.pseudo_data
    if kind == "poisson":
        rng = np.random.default_rng(config.fit.seed if seed is None else seed)
        out = {k: rng.poisson(np.clip(v, 0, None)).astype(float) for k, v in out.items()}
    elif kind != "asimov":
        raise ValueError(f"pseudo-data kind must be 'asimov' or 'poisson', not '{kind}'")
    return out


def wh_category_workspace(config: AnalysisConfig, histograms: str | Path | HistogramSet, *,
                          pseudo_data: str | None = None, seed: int | None = None,
                          c_true: float = 0.0, observations: Mapping[str, Any] | None = None,
                          shape_threshold: float = SHAPE_THRESHOLD,
                          notes: list[str] | None = None) -> pyhf.Workspace:
    """WH workspace with a signal strength per STXS p_T^W bin and Q_l cos δ⁺ half.

    One channel ``stxs{i}`` per STXS bin (the Q_l cos δ⁺ bins of the merged p_T^W
    bins); the signal is split into samples ``{signal}_neg`` / ``{signal}_pos``
    (Q_l cos δ⁺ < 0 / > 0) with normfactors ``mu_stxs{i}_neg`` / ``mu_stxs{i}_pos``.
    Control regions as in ssWW. The POI is the first category's. The data are
    ``observations`` (per channel, as returned by :func:`wh_observations`) or
    else made by :func:`wh_observations` from ``pseudo_data``, ``seed``, ``c_true``.
    """
    hs = load_histograms(histograms)
    obs, cats, split = _wh_signal_geometry(config, hs)
    signal, background = _wh_backgrounds(config)
    check_free_normalisations(config)
    bkg_nf = {d: ([f"mu_{d}"] if d in config.fit.free_normalisations else []) for d in background}
    channels: dict[str, dict[str, SampleInput]] = {}
    for cat in cats:
        ch: dict[str, SampleInput] = {}
        for d in signal:
            for which in ("neg", "pos"):
                def tf(v, cat=cat, which=which):
                    return _half(_merge(v, cat), split, which)
                ch[f"{d}_{which}"] = sample_input(config, hs, d, SIGNAL_REGION, obs,
                                                   [f"mu_stxs{cat.index}_{which}"], tf)
        for d in background:
            ch[d] = sample_input(config, hs, d, SIGNAL_REGION, obs, bkg_nf[d],
                                  lambda v, cat=cat: _merge(v, cat))
        channels[f"stxs{cat.index}"] = ch
    channels.update(control_channels(config, hs, {**bkg_nf, **{d: [] for d in signal}}))
    data = observations if observations is not None else wh_observations(
        config, hs, pseudo_data=pseudo_data, seed=seed, c_true=c_true)
    signal_nf = [f"mu_stxs{cat.index}_{which}" for cat in cats for which in ("neg", "pos")]
    return build_workspace(channels, poi=f"mu_stxs{cats[0].index}_neg", observations=data,
                           shape_threshold=shape_threshold, signal_normfactors=signal_nf,
                           notes=notes)


def cp_parameter_names(config: AnalysisConfig) -> tuple[str, str]:
    """Names of the fixed normfactors carrying c and c² in the WH CP model."""
    name = config.fit.cp_scan.parameter if config.fit.cp_scan else "c_HWtilde"
    return name, f"{name}_sq"


def wh_cp_workspace(config: AnalysisConfig, histograms: str | Path | HistogramSet, *,
                    coupling: float = 0.0, pseudo_data: str | None = None, seed: int | None = None,
                    c_true: float = 0.0, interference_scale: float = 1.0,
                    observations: Mapping[str, Any] | None = None,
                    shape_threshold: float = SHAPE_THRESHOLD,
                    notes: list[str] | None = None) -> pyhf.Workspace:
    """WH model whose signal is SM + c·int + c²·quad in every Q_l cos δ⁺ × STXS bin.

    The signal is three samples: ``{signal}`` (SM, with all its modifiers),
    ``{signal}_int`` and ``{signal}_quad`` (the ``cp_int`` / ``cp_quad``
    templates) scaled by the fixed normfactors ``c`` and ``c_sq`` (see
    :func:`cp_parameter_names`). The interference and quadratic samples carry the
    SM's relative systematic variations, so the summed signal at any c is
    modified exactly as the SM one; this equals building one model per c.
    Their own MC statistics are not included.

    Args:
        coupling: value of c at which the parameters are fixed in the returned workspace.
        pseudo_data, seed, c_true: see :func:`wh_observations`.
        observations: per category channel, as returned by :func:`wh_observations`
            (overrides pseudo_data, seed, c_true).
        interference_scale: factor on the interference template (studies of sensitivity).
    """
    hs = load_histograms(histograms)
    obs, cats, _ = _wh_signal_geometry(config, hs)
    signal, background = _wh_backgrounds(config)
    c_name, c2_name = cp_parameter_names(config)
    check_free_normalisations(config)
    bkg_nf = {d: ([f"mu_{d}"] if d in config.fit.free_normalisations else []) for d in background}

    def tf(v):
        return np.concatenate([_merge(v, cat) for cat in cats])

    sr: dict[str, SampleInput] = {}
    for d in signal:
        sm = sample_input(config, hs, d, SIGNAL_REGION, obs, [], tf)
        sr[d] = sm
        nominal = np.clip(np.asarray(sm.yields, float), 0, None)
        for part, nf, scale in (("int", c_name, interference_scale), ("quad", c2_name, 1.0)):
            t = hs.variation(d, SIGNAL_REGION, _CP_TEMPLATES[part], obs)
            if t is None:
                name = histogram_name(d, SIGNAL_REGION, _CP_TEMPLATES[part], obs)
                raise InputError(f"{hs.source}: missing histogram '{name}' (CP {part} template)")
            sr[f"{d}_{part}"] = _transfer_modifiers(sm, nominal, scale * tf(t.values), nf, shape_threshold)
    for d in background:
        sr[d] = sample_input(config, hs, d, SIGNAL_REGION, obs, bkg_nf[d], tf)
    channels: dict[str, dict[str, SampleInput]] = {SIGNAL_REGION: sr}
    channels.update(control_channels(config, hs, {**bkg_nf, **{d: [] for d in signal}}))
    fixed = {c_name: coupling, c2_name: coupling**2}
    cat_data = observations if observations is not None else wh_observations(
        config, hs, pseudo_data=pseudo_data, seed=seed, c_true=c_true,
        interference_scale=interference_scale)
    data = {SIGNAL_REGION: np.concatenate([cat_data[f"stxs{cat.index}"] for cat in cats]),
            **{r: cat_data[r] for r in config.fit.control_regions}}
    return build_workspace(channels, poi=c_name, observations=data, shape_threshold=shape_threshold,
                           fixed_parameters=fixed, notes=notes,
                           parameter_bounds={c_name: (-1e3, 1e3), c2_name: (0.0, 1e6)})


def _transfer_modifiers(sm: SampleInput, sm_nominal: np.ndarray, template: np.ndarray,
                        normfactor: str, shape_threshold: float) -> SampleInput:
    """A CP template carrying the SM sample's normsys and relative shape variations."""
    normsys = dict(sm.normsys)
    histosys = {}
    ratio_safe = np.where(sm_nominal > 0, sm_nominal, 1.0)
    for name, (up, down) in sm.variations.items():
        norm, shape = split_variation(sm_nominal, up, down, shape_threshold=shape_threshold)
        if norm is not None:
            normsys[name] = norm
        if shape is not None:
            histosys[name] = (template * shape[0] / ratio_safe, template * shape[1] / ratio_safe)
    return SampleInput(yields=template, normfactors=[normfactor], normsys=normsys, histosys=histosys,
                       signed=True)


# --------------------------------------------------------------------------- fit


def _category_coefficients(config: AnalysisConfig, hs: HistogramSet) -> dict[str, tuple[float, float]]:
    """A = Σ int / Σ SM and B = Σ quad / Σ SM of the signal in each category."""
    obs = config.fit.signal_observable
    signal = [d for d, s in config.samples.items() if s.kind == "signal"]
    out: dict[str, tuple[float, float]] = {}
    sm = sum(hs.nominal(d, SIGNAL_REGION, obs).values for d in signal)
    parts = {}
    for p in ("int", "quad"):
        arrs = [hs.variation(d, SIGNAL_REGION, _CP_TEMPLATES[p], obs) for d in signal]
        parts[p] = sum(a.values for a in arrs if a is not None) if any(a is not None for a in arrs) \
            else np.zeros_like(sm)
    edges = hs.nominal(signal[0], SIGNAL_REGION, obs).edges
    split = int(np.flatnonzero(np.isclose(edges[0], 0.0, atol=1e-9))[0])
    for cat in stxs_categories(edges[1], config.stxs_ptv_edges, source=hs.source):
        cols = list(cat.ptw_bins)
        for half, rows in (("neg", slice(0, split)), ("pos", slice(split, None))):
            s = float(sm[rows][:, cols].sum())
            a = float(parts["int"][rows][:, cols].sum()) / s if s > 0 else 0.0
            b = float(parts["quad"][rows][:, cols].sum()) / s if s > 0 else 0.0
            out[f"stxs{cat.index}_{half}"] = (a, b)
    return out


def fit_wh(config: AnalysisConfig | str | Path, histograms_path: str | Path | HistogramSet, *,
           pseudo_data: Literal["asimov", "poisson"] | None = None, seed: int | None = None,
           c_true: float = 0.0, interference_scale: float = 1.0, scan_points: int | None = None,
           out: str | Path | None = None) -> WHResults:
    """WH: μ per STXS × Q_l cos δ⁺ category and the profile-likelihood scan of the CP coupling.

    Both fits use the same pseudo-data, generated with the signal at ``c_true``
    (default 0, the SM). The scan grid is ``config.fit.cp_scan`` (min, max, points;
    ``scan_points`` overrides the number of points).

    Args:
        interference_scale: factor on the interference template in the scan model.
        out: folder for ``workspace_wh_categories.json``, ``workspace_wh_cp.json``
            and ``results.json``; None: write nothing.

    Raises:
        InputError: a histogram is missing, or the p_T^W and STXS edges do not align.
        ConfigError: not a WH config.
    """
    t0 = time.perf_counter()
    cfg = channel_config(config, "wh")
    out_dir = ensure_writable_dir(out) if out is not None else None
    hs = load_histograms(histograms_path)
    kind = pseudo_data or cfg.fit.pseudo_data
    seed = cfg.fit.seed if seed is None else seed
    scan_cfg = cfg.fit.cp_scan
    lo, hi, n = ((scan_cfg.min, scan_cfg.max, scan_cfg.points) if scan_cfg is not None else (-2.0, 2.0, 81))
    n = scan_points or n
    c_name, c2_name = cp_parameter_names(cfg)

    observations = wh_observations(cfg, hs, pseudo_data=kind, seed=seed, c_true=c_true,
                                   interference_scale=interference_scale)
    notes: list[str] = []
    if kind == "asimov":
        notes.append("pseudo-data are Asimov (the expected yields): the intervals are expected ones,"
                     " not a measurement")
    merged_cat: list[str] = []
    merged_cp: list[str] = []
    ws_cat = wh_category_workspace(cfg, hs, observations=observations, notes=merged_cat)
    ws_cp = wh_cp_workspace(cfg, hs, observations=observations, interference_scale=interference_scale,
                            notes=merged_cp)
    notes += [f"categories: {m}" for m in merged_cat] + [f"cp scan: {m}" for m in merged_cp]
    with numpy_backend():
        model, data = model_and_data(ws_cat)
        cat_pars = [f"mu_{name}" for name in _category_names(model)]
        best = fit(model, data, intervals=cat_pars, impacts=True)
    if not best.converged:
        text = f"categories: the fit did NOT converge (edm {best.edm:.3g}); its numbers are unreliable"
        log.warning(text)
        notes.append(text)
    coeffs = _category_coefficients(cfg, hs)
    edges = {f"stxs{c.index}": (c.low, c.high) for c in stxs_categories(
        _signal_edges(cfg, hs), cfg.stxs_ptv_edges, source=hs.source)}
    categories = {}
    for name, (a, b) in coeffs.items():
        stxs, half = name.rsplit("_", 1)
        par = f"mu_{name}"
        nan = float("nan")
        iv = best.interval(par) if par in best.labels else Interval(par, nan, nan, nan, nan)
        categories[name] = WHCategory(name, *edges[stxs], half, iv, a * interference_scale, b)
        for flag, side in ((iv.low_open, "lower"), (iv.high_open, "upper")):
            if flag:
                notes.append(f"categories: the {side} edge of the 68% CL interval of {par} is the"
                             " parameter bound: open")
    scan = scan_coupling(ws_cp, np.linspace(lo, hi, n), parameter=c_name, parameter_sq=c2_name,
                         c_true=c_true, mc_stat=True)
    frac = scan.mc_stat_fraction
    if frac is not None and frac > MC_STAT_DOMINANT:
        text = (f"cp scan: MC statistics dominate the 95% CL interval of {c_name}: {100 * frac:.0f}%"
                f" of its squared width (without the staterror parameters"
                f" [{scan.stat_interval_95[0]:.3g}, {scan.stat_interval_95[1]:.3g}]); generate more events")
        log.warning(text)
        notes.append(text)
    log.info("WH %s: best fit %.3f, 68%% CL [%s, %s], 95%% CL [%s, %s]", c_name, scan.best_fit,
             *scan.interval_68, *scan.interval_95)
    results = WHResults(categories, best, scan,
                        {"kind": kind, "seed": seed if kind == "poisson" else None, "c_true": c_true,
                         "interference_scale": interference_scale},
                        cfg.luminosity_fb, {"categories": dict(ws_cat), "cp": dict(ws_cp)},
                        time.perf_counter() - t0, notes)
    if out_dir is not None:
        write_results(results, out_dir)
    return results


def _category_names(model: pyhf.pdf.Model) -> list[str]:
    """The category names (``stxs{i}_{half}``) whose signal strengths the model has."""
    return [n.removeprefix("mu_") for n in model.config.par_order
            if n.startswith("mu_stxs")]


def _signal_edges(config: AnalysisConfig, hs: HistogramSet) -> np.ndarray:
    signal = next(d for d, s in config.samples.items() if s.kind == "signal")
    return hs.nominal(signal, SIGNAL_REGION, config.fit.signal_observable).edges[1]
