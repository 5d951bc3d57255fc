"""Figures with mplhep: stacked distributions with a ratio panel, 2D templates, and the fit's
pre/post-fit channels, pulls and scans; :func:`make_plots` makes all of a run and its fit.

Every figure is saved as PNG and PDF; functions return the paths they wrote.
Matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import mplhep
import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import InputError
from ewpolar.core.histio import Template, read_histograms
from ewpolar.core.naming import NOMINAL, HistKey
from ewpolar.core.outputs import ensure_writable_dir
from ewpolar.core.results import CouplingScan, WHResults, read_results

__all__ = ["make_plots", "plot_fit_channels", "plot_pulls", "plot_region_stack", "plot_scan",
           "plot_stacks", "plot_template_2d", "save_figure"]

log = logging.getLogger(__name__)


def _label(ax: plt.Axes, config: AnalysisConfig, text: str) -> None:
    mplhep.label.exp_label(exp="ewpolar", llabel=f"toy simulation, {text}", data=False,
                           lumi=config.luminosity_fb, com=13, ax=ax, loc=0)


def save_figure(fig: plt.Figure, stem: str | Path) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.pdf``, close it, return both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for p in paths:
        fig.savefig(p, dpi=110 if p.suffix == ".png" else None, bbox_inches="tight")
    plt.close(fig)
    return paths


def _axis_label(config: AnalysisConfig, observable: str) -> str:
    ax = config.histograms.get(observable)
    return ax.label if ax is not None and ax.label else observable


def plot_region_stack(
    histograms: Mapping[HistKey, Template],
    config: AnalysisConfig,
    region: str,
    observable: str,
    out_dir: str | Path,
    *,
    systematic: str = NOMINAL,
    data: np.ndarray | None = None,
    data_label: str = "Pseudo-data",
    scale: Mapping[str, np.ndarray | float] | None = None,
    tag: str = "prefit",
) -> list[Path]:
    """Stacked MC of every dataset in ``region`` for a 1D ``observable``, with a ratio panel.

    Args:
        histograms: from :func:`ewpolar.core.histio.read_histograms`.
        config: the analysis config (sample kinds, axis labels, luminosity).
        region, observable, systematic: which histograms to draw.
        data: observed counts per bin; default: the summed MC (Asimov pseudo-data).
        scale: per-dataset factors (e.g. post-fit yields / pre-fit yields per bin).
        tag: file-name suffix, e.g. 'prefit' or 'postfit'.
    """
    entries = []
    for key, tmpl in histograms.items():
        if (key.region, key.observable, key.systematic) != (region, observable, systematic):
            continue
        if tmpl.values.ndim != 1:
            return []
        values = tmpl.values * (np.asarray(scale[key.dataset]) if scale and key.dataset in scale else 1.0)
        entries.append((key.dataset, values, tmpl.variances, tmpl.edges[0]))
    if not entries:
        return []
    order = {name: i for i, name in enumerate(config.samples)}
    # backgrounds at the bottom of the stack, signals on top
    entries.sort(key=lambda e: (config.samples[e[0]].kind == "signal" if e[0] in config.samples else False,
                                order.get(e[0], 99)))
    edges = entries[0][3]
    total = np.sum([e[1] for e in entries], axis=0)
    total_var = np.sum([e[2] for e in entries], axis=0)
    obs = total if data is None else np.asarray(data, dtype=float)

    mplhep.style.use("ATLAS")
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(7, 7), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    mplhep.histplot([e[1] for e in entries], edges, stack=True, histtype="fill",
                    label=[e[0] for e in entries], ax=ax)
    ax.stairs(total + np.sqrt(total_var), edges, baseline=total - np.sqrt(total_var),
              fill=True, alpha=0.3, color="grey", hatch="///", label="MC stat. unc.")
    centers = 0.5 * (edges[1:] + edges[:-1])
    ax.errorbar(centers, obs, yerr=np.sqrt(np.clip(obs, 0, None)), fmt="ko", label=data_label)
    ax.set_ylabel("Events")
    ax.set_ylim(0, max(1e-9, float(np.max(np.maximum(total, obs)))) * 1.5)
    ax.legend(ncol=2, fontsize="small")
    _label(ax, config, region)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total > 0, obs / total, np.nan)
        rerr = np.where(total > 0, np.sqrt(np.clip(obs, 0, None)) / total, np.nan)
        band = np.where(total > 0, np.sqrt(total_var) / total, 0.0)
    rax.stairs(1 + band, edges, baseline=1 - band, fill=True, alpha=0.3, color="grey")
    rax.errorbar(centers, ratio, yerr=rerr, fmt="ko")
    rax.axhline(1.0, color="k", lw=0.8)
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("Data / MC")
    rax.set_xlabel(_axis_label(config, observable))
    return save_figure(fig, Path(out_dir) / f"{region}_{observable}_{tag}")


def plot_stacks(histograms: Mapping[HistKey, Template], config: AnalysisConfig,
                out_dir: str | Path, *, regions: Sequence[str] | None = None) -> list[Path]:
    """Pre-fit stacks of every 1D observable in every region present in ``histograms``."""
    keys = {(k.region, k.observable) for k in histograms if k.systematic == NOMINAL}
    paths: list[Path] = []
    for region, observable in sorted(keys):
        if regions is not None and region not in regions:
            continue
        paths += plot_region_stack(histograms, config, region, observable, out_dir)
    return paths


def plot_template_2d(histograms: Mapping[HistKey, Template], config: AnalysisConfig,
                     observable: str, datasets: Sequence[str], out_dir: str | Path, *,
                     region: str = "signal", xlabel: str = "", ylabel: str = "",
                     name: str | None = None) -> list[Path]:
    """The summed 2D template of ``datasets`` (e.g. a score template) in ``region``."""
    total = None
    edges = None
    for ds in datasets:
        t = histograms.get(HistKey(ds, region, NOMINAL, observable))
        if t is None or t.values.ndim != 2:
            continue
        total = t.values if total is None else total + t.values
        edges = t.edges
    if total is None:
        return []
    mplhep.style.use("ATLAS")
    fig, ax = plt.subplots(figsize=(7, 6))
    mplhep.hist2dplot(total, edges[0], edges[1], ax=ax, cmap="viridis")
    ax.set_xlabel(xlabel or f"{observable} x")
    ax.set_ylabel(ylabel or f"{observable} y")
    _label(ax, config, f"{region}: {' + '.join(datasets)}")
    return save_figure(fig, Path(out_dir) / (name or f"{region}_{observable}_{'_'.join(datasets)}"))


def _is_nuisance(name: str) -> bool:
    """Constrained nuisance parameters (not POIs, free normalisations or MC-stat gammas)."""
    return not name.startswith(("mu_", "staterror_", "c_HW"))


def plot_pulls(parameters: Mapping[str, Mapping[str, float]], out_dir: str | Path, *,
               name: str = "pulls", title: str = "") -> list[Path]:
    """Pulls (best fit) and constraints (post-fit uncertainty) of the nuisance parameters.

    ``parameters`` is :attr:`ewpolar.core.results.FitResults.parameters`:
    ``{name: {"value": θ̂, "uncertainty": σ̂}}``; Gaussian-constrained nuisance
    parameters have a pre-fit value 0 and width 1.
    """
    names = [n for n in parameters if _is_nuisance(n)]
    if not names:
        return []
    vals = np.array([parameters[n]["value"] for n in names])
    errs = np.array([parameters[n]["uncertainty"] for n in names])
    y = np.arange(len(names))[::-1]
    mplhep.style.use("ATLAS")
    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.45 * len(names)))
    ax.axvspan(-2, 2, color="yellow", alpha=0.5)
    ax.axvspan(-1, 1, color="limegreen", alpha=0.5)
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.errorbar(vals, y, xerr=errs, fmt="ko")
    ax.set_yticks(y, names)
    ax.set_xlim(-3, 3)
    ax.set_xlabel(r"$(\hat\theta - \theta_0)/\Delta\theta$")
    if title:
        ax.set_title(title, loc="right", fontsize="small")
    return save_figure(fig, Path(out_dir) / name)


def plot_scan(scan: CouplingScan, out_dir: str | Path, *, name: str = "cp_scan") -> list[Path]:
    """−2Δln L against the coupling, with the 68 % and 95 % CL thresholds (1 and 3.84)."""
    values = np.asarray(scan.values, dtype=float)
    curve = np.asarray(scan.twice_delta_nll, dtype=float)
    mplhep.style.use("ATLAS")
    fig, ax = plt.subplots(figsize=(7, 5.5))
    ax.plot(values, curve, "k-", lw=2, label="expected")
    for level, text in ((1.0, "68% CL"), (3.84, "95% CL")):
        ax.axhline(level, color="grey", ls="--", lw=1)
        ax.text(values[0], level + 0.1, text, color="grey", fontsize="small")
    ax.set_xlabel(r"$c_{H\tilde{W}}$")
    ax.set_ylabel(r"$-2\Delta\ln L$")
    ax.set_ylim(0, max(6.0, min(float(np.nanmax(curve)), 20.0)))
    ax.legend()
    return save_figure(fig, Path(out_dir) / name)


def plot_fit_channels(workspace: Mapping[str, object], out_dir: str | Path, *,
                      parameters: Mapping[str, Mapping[str, float]] | None = None,
                      tag: str = "prefit") -> list[Path]:
    """Stacked expected yields per sample in every channel of a pyhf workspace, with the data.

    Pre-fit with ``parameters=None`` (the suggested initial values), post-fit with
    the best-fit ``parameters`` of a fit (:attr:`ewpolar.core.results.FitResults.parameters`).
    2D templates are shown unrolled.
    """
    import pyhf
    from ewpolar.stats.workspace import model_and_data

    model, data = model_and_data(workspace)
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    if parameters is not None:
        for i, label in enumerate(model.config.par_names):
            if label in parameters:
                pars[i] = parameters[label]["value"]
    with np.errstate(all="ignore"):
        by_sample = np.asarray(pyhf.tensorlib.to_numpy(
            model.main_model.expected_data(pars, return_by_sample=True)))
    main = np.asarray(data[: model.config.nmaindata], dtype=float)
    paths: list[Path] = []
    for channel in model.config.channels:
        sl = model.config.channel_slices[channel]
        yields = by_sample[:, sl]
        obs = main[sl]
        edges = np.arange(yields.shape[1] + 1, dtype=float)
        keep = [i for i in range(len(model.config.samples)) if np.any(yields[i] != 0)]
        mplhep.style.use("ATLAS")
        fig, (ax, rax) = plt.subplots(2, 1, figsize=(7, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
        mplhep.histplot([yields[i] for i in keep], edges, stack=True, histtype="fill",
                        label=[model.config.samples[i] for i in keep], ax=ax)
        total = yields.sum(axis=0)
        centers = edges[:-1] + 0.5
        ax.errorbar(centers, obs, yerr=np.sqrt(np.clip(obs, 0, None)), fmt="ko", label="Pseudo-data")
        ax.set_ylabel("Events / bin")
        ax.set_ylim(0, max(1e-9, float(np.max(np.maximum(total, obs)))) * 1.5)
        ax.legend(ncol=2, fontsize="small")
        ax.text(0.02, 0.95, f"{channel} ({tag})", transform=ax.transAxes, va="top")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(total > 0, obs / total, np.nan)
            rerr = np.where(total > 0, np.sqrt(np.clip(obs, 0, None)) / total, np.nan)
        rax.errorbar(centers, ratio, yerr=rerr, fmt="ko")
        rax.axhline(1.0, color="k", lw=0.8)
        rax.set_ylim(0.5, 1.5)
        rax.set_ylabel("Data / fit" if parameters is not None else "Data / MC")
        rax.set_xlabel("bin (2D templates unrolled)")
        paths += save_figure(fig, Path(out_dir) / f"fit_{channel}_{tag}")
    return paths


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


def make_plots(config: AnalysisConfig, histograms: str | Path, out: str | Path, *,
               fit_dir: str | Path | None = None) -> list[Path]:
    """Every figure of a run (and of its fit, when ``fit_dir`` is given), PNG and PDF.

    Pre-fit stacks of each 1D observable per region; the 2D score templates of the
    signal samples; pre- and post-fit stacks of each fit channel; pulls and
    constraints of the nuisance parameters; the c_HW̃ scan for WH.
    """
    out = ensure_writable_dir(out)
    hists = read_histograms(histograms)
    paths = plot_stacks(hists, config, out / "distributions")
    signals = [n for n, s in config.samples.items() if s.kind == "signal"]
    for name, tmpl in config.templates.items():
        for ds in signals:
            paths += plot_template_2d(hists, config, f"template_{name}", [ds], out / "templates",
                                      xlabel=f"{tmpl.x} score", ylabel=f"{tmpl.y} score",
                                      name=f"template_{name}_{ds}")
    if fit_dir is None:
        return paths
    fit_dir = Path(fit_dir)
    results = read_results(fit_dir)
    for entry in results.workspace_fits():
        if not (fit_dir / entry.workspace).is_file():
            continue
        ws = _read_json(fit_dir / entry.workspace)
        paths += plot_fit_channels(ws, out / "fit" / entry.name, tag="prefit")
        if entry.fit is not None:
            params = entry.fit.parameters
            paths += plot_fit_channels(ws, out / "fit" / entry.name, parameters=params, tag="postfit")
            paths += plot_pulls(params, out / "fit", name=f"pulls_{entry.name}",
                                title=f"fit {entry.name}")
    if isinstance(results, WHResults):
        paths += plot_scan(results.scan, out / "fit")
    return paths
