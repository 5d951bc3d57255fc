"""The analysis chain as library functions: the fit of a channel and the end-to-end demo.

The command line (``ewpolar fit``, ``ewpolar demo``) and the notebook call these
same functions; the figures come from :func:`ewpolar.plots.make_plots`, the summary
lines and the HTML page from :mod:`ewpolar.report`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ewpolar.core.config import AnalysisConfig, load_config
from ewpolar.core.errors import InputError
from ewpolar.core.outputs import atomic_write_json, ensure_writable_dir
from ewpolar.core.results import Results

__all__ = ["DemoResult", "fit_channel", "run_demo"]

log = logging.getLogger(__name__)


def fit_channel(config: AnalysisConfig, histograms: str | Path, out: str | Path, *,
                pseudo_data: str | None = None, seed: int | None = None, toys: int = 0) -> Results:
    """Fit the histograms of one channel; writes FIT/workspace_*.json and FIT/results.json.

    ``toys``: a toy-based CLs limit beside the asymptotic one (ssWW). Returns the
    results written to results.json (:mod:`ewpolar.core.results`).
    """
    if config.channel == "ssww":
        from ewpolar.stats.ssww import fit_ssww

        return fit_ssww(config, histograms, pseudo_data=pseudo_data, seed=seed, out=out, toys=toys)
    from ewpolar.stats.wh import fit_wh

    return fit_wh(config, histograms, pseudo_data=pseudo_data, seed=seed, out=out)




@dataclass
class DemoResult:
    """Where the demo wrote its outputs, and its headline numbers."""

    out: Path
    runs: dict[str, Path] = field(default_factory=dict)
    fits: dict[str, Path] = field(default_factory=dict)
    results: dict[str, Results] = field(default_factory=dict)
    report: Path | None = None
    lines: list[str] = field(default_factory=list)


def run_demo(out: str | Path, *, events: int = 20_000, wh_events: int | None = None, seed: int = 1,
             executor: str = "futures", workers: int = 2, chunksize: int = 50_000,
             progress: bool = False, report: bool = True, backend: str = "toy") -> DemoResult:
    """The main job on the embedded default: generate, run, fit, plot and report both channels.

    Args:
        out: output folder; per channel ``samples/``, ``run/``, ``fit/``, ``plots/``.
        events: events per dataset for the ssWW channel.
        wh_events: events per dataset for WH (default: ``events``).
        backend: ``toy`` (the toy generator) or ``pythia`` (Pythia 8 at hadron level,
            ``workers`` generation jobs; needs the ``pythia`` extra).
    """
    if backend == "pythia":
        from functools import partial

        from ewpolar.generator.pythia import generate as pythia_generate

        generate = partial(pythia_generate, jobs=workers)
    elif backend == "toy":
        from ewpolar.generator import generate
    else:
        raise InputError(f"--backend {backend}: choose toy or pythia")
    from ewpolar.plots import make_plots
    from ewpolar.report import headline, write_report
    from ewpolar.runner.run import load_fileset, run_analysis

    out = ensure_writable_dir(out)
    result = DemoResult(out=out)
    for channel, n in (("ssww", events), ("wh", wh_events or events)):
        cfg = load_config(channel)
        base = out / channel
        _step(progress, f"{channel}: generating {n} events per dataset ({backend})")
        # rare backgrounds are oversampled by the generator (the config's samples.*.oversample)
        fileset = generate(cfg, events=n, seed=seed, out=base / "samples", progress=progress)
        _step(progress, f"{channel}: running the analysis")
        run_analysis(cfg, load_fileset(fileset), executor=executor, workers=workers,
                     chunksize=chunksize, progress=progress, out=base / "run")
        result.runs[channel] = base / "run"
        _step(progress, f"{channel}: fitting")
        try:
            result.results[channel] = fit_channel(cfg, base / "run" / "histograms.root",
                                                  base / "fit")
        except InputError as err:
            if backend == "toy":
                raise
            # small hadron-level samples can leave a control region empty (Pythia's WZ is
            # inclusive and seldom reaches the VBS region): the channel's fit is skipped,
            # saying why, and the rest of the demo goes on
            line = f"{channel}: fit skipped on {n} {backend} events per dataset: {err}"
            log.warning(line)
            result.lines.append(line)
            make_plots(cfg, base / "run" / "histograms.root", base / "plots", progress=progress)
            continue
        result.fits[channel] = base / "fit"
        make_plots(cfg, base / "run" / "histograms.root", base / "plots", fit_dir=base / "fit",
                   progress=progress)
        result.lines += headline(result.results[channel])
    if report:
        _step(progress, "writing the report")
        # the report embeds the figures drawn above instead of drawing them again
        result.report = write_report(out / "report.html", runs=result.runs, fits=result.fits,
                                     plots={c: out / c / "plots" for c in result.runs})
    atomic_write_json(out / "summary.json", {"headline": result.lines,
                                             "report": str(result.report) if result.report else None})
    return result


def _step(progress: bool, text: str) -> None:
    """Log a step of the demo; with ``progress`` also show it on stderr."""
    log.info(text)
    if progress:
        from rich.console import Console

        Console(stderr=True).print(f"[bold]ewpolar demo[/bold] {text}")
