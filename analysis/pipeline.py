"""The analysis chain as library functions: fit, plot, and the end-to-end demo.

The command line (``ewpolar fit``, ``ewpolar plot``, ``ewpolar demo``) and the
notebook call these same functions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ewpolar.core.config import AnalysisConfig, load_config
from ewpolar.core.errors import InputError
from ewpolar.core.outputs import atomic_write_json, ensure_writable_dir

__all__ = ["DemoResult", "fit_channel", "headline", "make_plots", "run_demo"]

log = logging.getLogger(__name__)


def fit_channel(config: AnalysisConfig, histograms: str | Path, out: str | Path, *,
                pseudo_data: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """Fit the histograms of one channel; writes FIT/workspace_*.json and FIT/results.json.

    Returns the content of results.json.
    """
    from ewpolar.stats.fit import fit_ssww, fit_wh

    if config.channel == "ssww":
        res = fit_ssww(config, histograms, pseudo_data=pseudo_data, seed=seed, out=out)
    else:
        res = fit_wh(config, histograms, pseudo_data=pseudo_data, seed=seed, out=out)
    return res.to_dict()


def _read_json(path: Path) -> dict[str, Any]:
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
    from ewpolar.core.histio import read_histograms
    from ewpolar.plots import (
        plot_fit_channels,
        plot_pulls,
        plot_scan,
        plot_stacks,
        plot_template_2d,
    )

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
    results = _read_json(fit_dir / "results.json")
    fits = results.get("fits", {})
    for name, info in fits.items():
        ws_file = info.get("workspace")
        if not ws_file or not (fit_dir / ws_file).is_file():
            continue
        ws = _read_json(fit_dir / ws_file)
        params = info.get("parameters")
        paths += plot_fit_channels(ws, out / "fit" / name, tag="prefit")
        if params:
            paths += plot_fit_channels(ws, out / "fit" / name, parameters=params, tag="postfit")
            paths += plot_pulls(params, out / "fit", name=f"pulls_{name}", title=f"fit {name}")
    if "cp_scan" in results:
        paths += plot_scan(results["cp_scan"], out / "fit")
    return paths


def headline(results: dict[str, Any]) -> list[str]:
    """A few lines with the main numbers of a results.json (ssWW or WH)."""
    lines = []
    if results.get("channel") == "ssww":
        for name in ("LL", "LX"):
            if f"mu_{name}" not in results:
                continue
            mu = results[f"mu_{name}"]
            sig = results[f"significance_{name}"]
            lim = results[f"upper_limit_fb_{name}"]
            xs = results["sm_fiducial_xsec_fb"][name]
            lines.append(
                f"ssWW {name}: mu = {mu['value']:.2f} +- {mu['uncertainty']:.2f}; significance "
                f"{sig['observed']:.2f} sigma observed ({sig['expected']:.2f} expected); "
                f"sigma({'W_L W_L' if name == 'LL' else 'W_L W_X'}) < {lim['observed']:.3g} fb "
                f"({lim['expected']:.3g} fb expected) at 95% CL, SM {xs:.3g} fb")
    elif results.get("channel") == "wh":
        scan = results["cp_scan"]

        def fmt(iv: list[float | None]) -> str:
            lo, hi = iv
            return f"[{'-inf' if lo is None else f'{lo:.3f}'}, {'+inf' if hi is None else f'{hi:.3f}'}]"

        lines.append(f"WH: {scan['parameter']} best fit {scan['best_fit']:.3f}; "
                     f"68% CL {fmt(scan['interval_68'])}, 95% CL {fmt(scan['interval_95'])}")
        mus = results.get("mu", {})
        if mus:
            vals = ", ".join(f"{k} {v['mu']['value']:.2f}+-{v['mu']['uncertainty']:.2f}"
                             for k, v in list(mus.items())[:4])
            lines.append(f"WH: mu per STXS x Q cos(delta+) category: {vals}, ...")
    return lines


# Datasets with a tiny selection efficiency, generated RARE_FACTOR times larger in the demo.
RARE_DATASETS = ("ttbar_nonprompt",)
RARE_FACTOR = 10


@dataclass
class DemoResult:
    """Where the demo wrote its outputs, and its headline numbers."""

    out: Path
    runs: dict[str, Path] = field(default_factory=dict)
    fits: dict[str, Path] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: Path | None = None
    lines: list[str] = field(default_factory=list)


def run_demo(out: str | Path, *, events: int = 20_000, wh_events: int | None = None, seed: int = 1,
             executor: str = "futures", workers: int = 2, chunksize: int = 50_000,
             progress: bool = False, report: bool = True) -> DemoResult:
    """The main job on the embedded default: generate, run, fit, plot and report both channels.

    Args:
        out: output folder; per channel ``samples/``, ``run/``, ``fit/``, ``plots/``.
        events: events per dataset for the ssWW channel.
        wh_events: events per dataset for WH (default: ``events``).
    """
    from ewpolar.generator import generate
    from ewpolar.runner.run import load_fileset, run_analysis

    out = ensure_writable_dir(out)
    result = DemoResult(out=out)
    for channel, n in (("ssww", events), ("wh", wh_events or events)):
        cfg = load_config(channel)
        base = out / channel
        log.info("%s: generating %d events per dataset", channel, n)
        rare = [d for d in cfg.samples if d in RARE_DATASETS]
        common = [d for d in cfg.samples if d not in RARE_DATASETS]
        fileset = generate(cfg, events=n, seed=seed, out=base / "samples", datasets=common,
                           progress=progress)
        if rare:
            # few of these events pass the selection: generate more of them so that their
            # templates are not made of a handful of heavily weighted events
            fileset = generate(cfg, events=n * RARE_FACTOR, seed=seed, out=base / "samples",
                               datasets=rare, progress=progress)
        log.info("%s: running the analysis", channel)
        run_analysis(cfg, load_fileset(fileset), executor=executor, workers=workers,
                     chunksize=chunksize, progress=progress, out=base / "run")
        result.runs[channel] = base / "run"
        log.info("%s: fitting", channel)
        result.results[channel] = fit_channel(cfg, base / "run" / "histograms.root", base / "fit")
        result.fits[channel] = base / "fit"
        make_plots(cfg, base / "run" / "histograms.root", base / "plots", fit_dir=base / "fit")
        result.lines += headline(result.results[channel])
    if report:
        from ewpolar.report import write_report

        result.report = write_report(out / "report.html", runs=result.runs, fits=result.fits)
    atomic_write_json(out / "summary.json", {"headline": result.lines,
                                             "report": str(result.report) if result.report else None})
    return result
