"""Figures with mplhep: stacked distributions with a ratio panel, 2D templates, and the fit's
pre/post-fit channels, pulls and scans; :func:`make_plots` makes all of a run and its fit.

Every figure is saved as PNG and PDF; functions return the paths they wrote.
Matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")

import itertools

import matplotlib.pyplot as plt
import mplhep
import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import InputError
from ewpolar.core.histio import Template, read_histograms
from ewpolar.core.naming import NOMINAL, HistKey
from ewpolar.core.outputs import ensure_writable_dir
from ewpolar.core.results import OPEN_PTW_GEV, CouplingScan, FitResults, WHResults, read_results

__all__ = ["make_plots", "plot_correlation", "plot_fit_channels", "plot_pulls", "plot_ranking",
           "plot_region_stack", "plot_scan", "plot_stacks", "plot_template_2d", "process_colours",
           "save_figure"]

log = logging.getLogger(__name__)


def _label(ax: plt.Axes, config: AnalysisConfig | None, text: str = "",
           lumi: float | None = None) -> None:
    """Experiment-style label with the luminosity (and ``text``, e.g. the region)."""
    lumi = config.luminosity_fb if config is not None else lumi
    mplhep.label.exp_label(exp="ewpolar", llabel=f"Simulation{', ' + text if text else ''}",
                           data=False, lumi=lumi, com=13, ax=ax, loc=0, fontsize="small")


# tab10 without grey and olive: distinct, readable on print
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#17becf", "#bcbd22", "#7f7f7f"]


def process_colours(config: AnalysisConfig) -> dict[str, str]:
    """One colour per sample for every figure: the config's ``colour`` where given, else a
    fixed palette in config order (so a sample has the same colour everywhere)."""
    out = {}
    for i, (name, sample) in enumerate(config.samples.items()):
        out[name] = sample.colour or _PALETTE[i % len(_PALETTE)]
    return out


def _sample_colour(colours: Mapping[str, str], name: str) -> str | None:
    """Colour of a sample or of a sample split by the fit (``wh_neg``, ``wh_int``)."""
    if name in colours:
        return colours[name]
    base, _, part = name.rpartition("_")
    colour = colours.get(base)
    if colour is not None and part in ("pos", "quad"):  # the second part a lighter shade
        rgb = np.asarray(mpl.colors.to_rgb(colour))
        return mpl.colors.to_hex(rgb + 0.45 * (1 - rgb))
    return colour


_PART_LABEL = {"neg": r"$Q_\ell\cos\delta^+ < 0$", "pos": r"$Q_\ell\cos\delta^+ > 0$",
               "int": "interference", "quad": "quadratic"}


def _sample_label(config: AnalysisConfig | None, name: str) -> str:
    """Legend entry of a sample from the config's ``label`` (a fit's split samples with their part)."""
    if config is None:
        return name
    if name in config.samples:
        return config.samples[name].label or name
    base, part = name.rsplit("_", 1) if "_" in name else (name, "")
    if base in config.samples and part in _PART_LABEL:
        return f"{config.samples[base].label or base}, {_PART_LABEL[part]}"
    return name


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
    data_label: str | None = None,
    scale: Mapping[str, np.ndarray | float] | None = None,
    tag: str = "prefit",
) -> list[Path]:
    """Stacked MC of every dataset in ``region`` for a 1D ``observable``, with a ratio panel.

    Args:
        histograms: from :func:`ewpolar.core.histio.read_histograms`.
        config: the analysis config (sample kinds, axis labels, luminosity).
        region, observable, systematic: which histograms to draw.
        data: observed counts per bin; default: the summed MC (Asimov pseudo-data).
        data_label: legend entry of ``data`` (default: "Asimov pseudo-data" without data).
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
    data_label = data_label or ("Asimov pseudo-data" if data is None else "Pseudo-data")

    mplhep.style.use("ATLAS")
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(7, 7), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    colours = process_colours(config)
    mplhep.histplot([e[1] for e in entries], edges, stack=True, histtype="fill",
                    label=[_sample_label(config, e[0]) for e in entries],
                    color=[_sample_colour(colours, e[0]) or "grey" for e in entries], ax=ax)
    ax.stairs(total + np.sqrt(total_var), edges, baseline=total - np.sqrt(total_var),
              fill=True, alpha=0.3, color="grey", hatch="///", label="MC stat. unc.")
    centers = 0.5 * (edges[1:] + edges[:-1])
    drawn = (obs > 0) | (total > 0)  # a bin empty of data and of MC is not a measurement of 0
    ax.errorbar(centers[drawn], obs[drawn], yerr=np.sqrt(np.clip(obs[drawn], 0, None)), fmt="ko",
                label=data_label)
    ax.set_ylabel("Events")
    ax.set_ylim(0, max(1e-9, float(np.max(np.maximum(total, obs)))) * 1.5)
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)  # no ×10ⁿ over the label
    ax.legend(ncol=2, fontsize="small")
    _label(ax, config, region)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total > 0, obs / total, np.nan)
        rerr = np.where(total > 0, np.sqrt(np.clip(obs, 0, None)) / total, np.nan)
        band = np.where(total > 0, np.sqrt(total_var) / total, 0.0)
    rax.stairs(1 + band, edges, baseline=1 - band, fill=True, alpha=0.3, color="grey")
    rax.errorbar(centers[drawn], ratio[drawn], yerr=rerr[drawn], fmt="ko")
    rax.axhline(1.0, color="k", lw=0.8)
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("Data / MC")
    rax.set_xlabel(_axis_label(config, observable))
    rax.set_xlim(edges[0], edges[-1])
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
    art = mplhep.hist2dplot(total, edges[0], edges[1], ax=ax, cmap="viridis")
    art.cbar.set_label("Expected events")
    ax.set_xlabel(xlabel or f"{observable} x")
    ax.set_ylabel(ylabel or f"{observable} y")
    _label(ax, config, f"{region}, {' + '.join(_sample_label(config, d) for d in datasets)}")
    return save_figure(fig, Path(out_dir) / (name or f"{region}_{observable}_{'_'.join(datasets)}"))


def _is_nuisance(name: str) -> bool:
    """Constrained nuisance parameters (not POIs, free normalisations or MC-stat gammas)."""
    return not name.startswith(("mu_", "staterror_", "c_HW"))


@contextlib.contextmanager
def _quiet_mathtext() -> Iterator[None]:
    """cabinetry's axis labels use TeX sizing commands that mathtext renders but logs about."""
    logger = logging.getLogger("matplotlib.mathtext")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _cabinetry_fit(fit: FitResults) -> Any:
    import cabinetry

    corr = fit.corr_mat if fit.corr_mat is not None else np.eye(len(fit.labels))
    return cabinetry.fit.FitResults(np.asarray(fit.bestfit), np.asarray(fit.uncertainty),
                                    list(fit.labels), np.asarray(corr), fit.twice_nll)


def plot_pulls(fit: FitResults, out_dir: str | Path, *, name: str = "pulls", title: str = "",
               lumi: float | None = None) -> list[Path]:
    """Pulls (best fit) and constraints (post-fit uncertainty) of the constrained nuisance
    parameters (cabinetry's figure; POIs, free normalisations and MC-statistics gammas left out)."""
    import cabinetry

    names = [n for n in fit.labels if _is_nuisance(n)]
    if not names:
        return []
    exclude = [n for n in fit.labels if n not in names]
    with _quiet_mathtext():
        fig = cabinetry.visualize.pulls(_cabinetry_fit(fit), exclude=exclude, close_figure=False,
                                        save_figure=False)
        width, height = fig.get_size_inches()
        fig.set_size_inches(width, max(height, 1.5 + 0.5 * len(names)))  # readable for few parameters
        _finish(fig, title, lumi)
        return save_figure(fig, Path(out_dir) / name)


def plot_ranking(fit: FitResults, poi: str, out_dir: str | Path, *, name: str = "ranking",
                 title: str = "", lumi: float | None = None, max_pars: int = 15) -> list[Path]:
    """Nuisance-parameter ranking: pre- and post-fit impacts on ``poi`` (cabinetry's figure)."""
    import cabinetry

    impacts = fit.ranking.get(poi)
    if not impacts:
        return []
    rr = cabinetry.fit.RankingResults(
        np.array([i.pull for i in impacts]), np.array([i.constraint for i in impacts]),
        [i.parameter for i in impacts],
        *(np.nan_to_num(np.array([getattr(i, k) for i in impacts])) for k in
          ("prefit_up", "prefit_down", "postfit_up", "postfit_down")))
    with _quiet_mathtext():
        fig = cabinetry.visualize.ranking(rr, max_pars=max_pars, close_figure=False, save_figure=False)
        _finish(fig, title, lumi)
        return save_figure(fig, Path(out_dir) / name)


def plot_correlation(fit: FitResults, out_dir: str | Path, *, name: str = "correlation",
                     title: str = "", lumi: float | None = None) -> list[Path]:
    """Correlation matrix of the fit's parameters (cabinetry's figure; MC-statistics gammas
    with no correlation above 0.1 are pruned)."""
    import cabinetry

    if fit.corr_mat is None:
        return []
    with _quiet_mathtext():
        fig = cabinetry.visualize.correlation_matrix(_cabinetry_fit(fit), pruning_threshold=0.1,
                                                     close_figure=False, save_figure=False)
        _finish(fig, title, lumi)
        return save_figure(fig, Path(out_dir) / name)


def _finish(fig: plt.Figure, title: str, lumi: float | None) -> None:
    """Experiment-style label with the luminosity on a figure made by cabinetry."""
    if lumi is not None:
        fig.suptitle(f"ewpolar Simulation, {title}, {lumi:g} fb$^{{-1}}$ (13 TeV)", fontsize="small",
                     x=0.02, ha="left")
    elif title:
        fig.suptitle(title, fontsize="small")


def plot_scan(scan: CouplingScan, out_dir: str | Path, *, name: str = "cp_scan",
              config: AnalysisConfig | None = None, asimov: bool = True) -> list[Path]:
    """−2Δln L against the coupling, with the 68 % and 95 % CL thresholds (1 and 3.84), and the
    curve without the MC-statistics parameters when it was computed."""
    values = np.asarray(scan.values, dtype=float)
    curve = np.asarray(scan.twice_delta_nll, dtype=float)
    mplhep.style.use("ATLAS")
    fig, ax = plt.subplots(figsize=(7, 5.5))
    ax.plot(values, curve, "k-", lw=2, label="expected (Asimov)" if asimov else "observed")
    if scan.stat_twice_delta_nll is not None:
        ax.plot(values, scan.stat_twice_delta_nll, "b--", lw=1.5, label="without MC stat. parameters")
    if config is not None:
        _label(ax, config, "WH")
    for level, text in ((1.0, "68% CL"), (3.84, "95% CL")):
        ax.axhline(level, color="grey", ls="--", lw=1)
        ax.text(values[-1], level + 0.15, text, color="grey", fontsize="small", ha="right")
    ax.set_xlabel(r"$c_{H\tilde{W}}$")
    ax.set_ylabel(r"$-2\Delta\ln L$")
    ax.set_ylim(0, max(6.0, min(float(np.nanmax(curve)), 20.0)))
    ax.legend()
    return save_figure(fig, Path(out_dir) / name)


def plot_fit_channels(workspace: Mapping[str, object], out_dir: str | Path, *,
                      parameters: Mapping[str, Mapping[str, float]] | None = None,
                      tag: str = "prefit", config: AnalysisConfig | None = None,
                      data_label: str = "Pseudo-data", unrolled: Sequence[str] = (),
                      titles: Mapping[str, str] | None = None,
                      fit: FitResults | None = None) -> list[Path]:
    """Stacked expected yields per sample in every channel of a pyhf workspace, with the data.

    Pre-fit with ``parameters=None`` (the suggested initial values), post-fit with
    the best-fit ``parameters`` of a fit (:attr:`ewpolar.core.results.FitResults.parameters`).
    The hatched band is the uncertainty of the total yield: pre-fit from the
    parameters' pre-fit widths, post-fit (with ``fit``) from the post-fit Hesse
    errors and correlations (cabinetry's ``model_utils.yield_stdev``).
    Channels named in ``unrolled`` are 2D templates shown unrolled; ``titles`` names
    channels in the figure label (default: the channel name).
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
    band = _yield_band(model, pars, fit)
    paths: list[Path] = []
    for ich, channel in enumerate(model.config.channels):
        sl = model.config.channel_slices[channel]
        yields = by_sample[:, sl]
        obs = main[sl]
        edges = np.arange(yields.shape[1] + 1, dtype=float)
        keep = [i for i in range(len(model.config.samples)) if np.any(yields[i] != 0)]
        mplhep.style.use("ATLAS")
        fig, (ax, rax) = plt.subplots(2, 1, figsize=(7, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
        colours = process_colours(config) if config is not None else {}
        names = [model.config.samples[i] for i in keep]
        mplhep.histplot([yields[i] for i in keep], edges, stack=True, histtype="fill",
                        label=[_sample_label(config, n) for n in names],
                        color=[_sample_colour(colours, n) or _PALETTE[k % len(_PALETTE)]
                               for k, n in enumerate(names)], ax=ax)
        total = yields.sum(axis=0)
        centers = edges[:-1] + 0.5
        drawn = (obs > 0) | (total > 0)
        unc = np.asarray(band[ich]) if band is not None else None
        if unc is not None:
            ax.stairs(total + unc, edges, baseline=total - unc, fill=False, hatch="///", color="grey",
                      lw=0, label="post-fit unc." if parameters is not None else "pre-fit unc.")
        ax.errorbar(centers[drawn], obs[drawn], yerr=np.sqrt(np.clip(obs[drawn], 0, None)), fmt="ko",
                    label=data_label)
        ax.set_ylabel("Events / bin")
        ax.set_ylim(0, max(1e-9, float(np.max(np.maximum(total, obs)))) * 1.6)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.legend(ncol=2, fontsize="small")
        name = (titles or {}).get(channel, channel)
        _label(ax, config, f"{name}, {tag.replace('postfit', 'post-fit').replace('prefit', 'pre-fit')}")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(total > 0, obs / total, np.nan)
            rerr = np.where(total > 0, np.sqrt(np.clip(obs, 0, None)) / total, np.nan)
        if unc is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(total > 0, unc / total, 0.0)
            rax.stairs(1 + rel, edges, baseline=1 - rel, fill=True, alpha=0.3, color="grey")
        rax.errorbar(centers[drawn], ratio[drawn], yerr=rerr[drawn], fmt="ko")
        rax.axhline(1.0, color="k", lw=0.8)
        rax.set_ylim(0.5, 1.5)
        rax.set_ylabel("Data / fit" if parameters is not None else "Data / MC")
        rax.set_xlabel("bin of the unrolled 2D template" if channel in unrolled else f"{channel} bin")
        rax.set_xlim(edges[0], edges[-1])
        paths += save_figure(fig, Path(out_dir) / f"fit_{channel}_{tag}")
    return paths


def _yield_band(model: Any, pars: np.ndarray, fit: FitResults | None) -> list[list[float]] | None:
    """Standard deviation of the total yield per channel and bin (None if it cannot be computed)."""
    import cabinetry

    try:
        if fit is not None and fit.corr_mat is not None and list(fit.labels) == list(model.config.par_names):
            unc, corr = np.asarray(fit.uncertainty), np.asarray(fit.corr_mat)
        elif fit is None:
            unc = np.asarray(cabinetry.model_utils.prefit_uncertainties(model))
            corr = np.eye(len(unc))
        else:
            return None
        per_bin, _ = cabinetry.model_utils.yield_stdev(model, pars, unc, corr)
    except Exception as exc:  # a band is an aid to the eye: draw the figure without it
        log.warning("no uncertainty band: %s", exc)
        return None
    return [channel[-1] for channel in per_bin]  # the last sample is the sum over samples


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


def _score_label(config: AnalysisConfig, model: str) -> str:
    """A classifier score's axis label: the config's ``models.<name>.label`` or "<name> score"."""
    ref = config.models.get(model)
    return ref.label if ref is not None and ref.label else f"{model} score"


def make_plots(config: AnalysisConfig, histograms: str | Path, out: str | Path, *,
               fit_dir: str | Path | None = None, progress: bool = False) -> list[Path]:
    """Every figure of a run (and of its fit, when ``fit_dir`` is given), PNG and PDF.

    Pre-fit stacks of each 1D observable per region; the 2D score templates of the
    signal samples; pre- and post-fit stacks of each fit channel; pulls and
    constraints, ranking and correlation matrix of each fit; the c_HW̃ scan for WH.
    ``progress``: a progress bar on stderr (rich).
    """
    from rich.progress import Progress

    out = ensure_writable_dir(out)
    hists = read_histograms(histograms)
    jobs: list[tuple[str, Any]] = []
    keys = sorted({(k.region, k.observable) for k in hists if k.systematic == NOMINAL})
    for region, observable in keys:
        jobs.append((f"{region} {observable}", lambda r=region, o=observable: plot_region_stack(
            hists, config, r, o, out / "distributions")))
    signals = [n for n, s in config.samples.items() if s.kind == "signal"]
    for name, tmpl in config.templates.items():
        for ds in signals:
            jobs.append((f"template {name} {ds}", lambda name=name, tmpl=tmpl, ds=ds: plot_template_2d(
                hists, config, f"template_{name}", [ds], out / "templates",
                xlabel=_score_label(config, tmpl.x), ylabel=_score_label(config, tmpl.y), name=f"template_{name}_{ds}")))
    if fit_dir is not None:
        jobs += _fit_jobs(config, Path(fit_dir), out)
    paths: list[Path] = []
    with Progress(transient=True, disable=not progress,
                  console=_stderr_console()) as bar:
        task = bar.add_task(f"figures of {config.channel}", total=len(jobs))
        for label, job in jobs:
            bar.update(task, description=f"{config.channel}: {label}")
            paths += job()
            bar.advance(task)
    return paths


def _stxs_titles(config: AnalysisConfig) -> dict[str, str]:
    """``stxs{i}`` -> its p_T^W range; the last, open-ended bin as ``≥ low``."""
    edges = config.stxs_ptv_edges or []
    out = {}
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        text = f"≥ {lo:g}" if hi >= OPEN_PTW_GEV else f"{lo:g}–{hi:g}"
        out[f"stxs{i}"] = f"$p_T^W$ {text} GeV"
    return out


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _fit_jobs(config: AnalysisConfig, fit_dir: Path, out: Path) -> list[tuple[str, Any]]:
    results = read_results(fit_dir)
    asimov = results.pseudo_data.get("kind") == "asimov"
    data_label = "Asimov pseudo-data" if asimov else "Pseudo-data"
    unrolled = ["signal"] if config.channel == "ssww" else []
    titles = _stxs_titles(config)
    jobs: list[tuple[str, Any]] = []
    for entry in results.workspace_fits():
        if not (fit_dir / entry.workspace).is_file():
            continue
        ws = _read_json(fit_dir / entry.workspace)
        fdir = out / "fit" / entry.name
        jobs.append((f"fit {entry.name} pre-fit", lambda ws=ws, fdir=fdir: plot_fit_channels(
            ws, fdir, tag="prefit", config=config, data_label=data_label, unrolled=unrolled,
            titles=titles)))
        if entry.fit is None:
            continue
        fit = entry.fit
        title = f"fit {entry.name}"
        jobs.append((f"fit {entry.name} post-fit", lambda ws=ws, fdir=fdir, fit=fit: plot_fit_channels(
            ws, fdir, parameters=fit.parameters, tag="postfit", config=config, data_label=data_label,
            unrolled=unrolled, titles=titles, fit=fit)))
        jobs.append((f"pulls {entry.name}", lambda fit=fit, t=title, n=entry.name: plot_pulls(
            fit, out / "fit", name=f"pulls_{n}", title=t, lumi=config.luminosity_fb)))
        jobs.append((f"correlation {entry.name}", lambda fit=fit, t=title, n=entry.name: plot_correlation(
            fit, out / "fit", name=f"correlation_{n}", title=t, lumi=config.luminosity_fb)))
        for poi in fit.ranking:
            stem = f"ranking_{entry.name}" + (f"_{poi}" if len(fit.ranking) > 1 else "")
            jobs.append((f"ranking {poi}", lambda fit=fit, poi=poi, t=title, stem=stem: plot_ranking(
                fit, poi, out / "fit", name=stem, title=f"{t}: {poi}", lumi=config.luminosity_fb)))
    if isinstance(results, WHResults):
        jobs.append(("cp scan", lambda: plot_scan(results.scan, out / "fit", config=config,
                                                   asimov=asimov)))
    return jobs
