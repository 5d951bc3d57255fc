"""A self-contained HTML report of runs and fits (figures embedded as base64 PNG), and the
headline lines that summarise a fit.

The page holds, per channel: the configuration, the cutflow of every region, a
yields table, the main distributions, the fit results with pulls and post-fit
plots, and the run metrics (events/s, bytes read). It needs no network and no
files beside it. Fit results are read with :func:`ewpolar.core.results.read_results`.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ewpolar import __version__
from ewpolar.core.config import load_config
from ewpolar.core.errors import InputError
from ewpolar.core.outputs import atomic_path
from ewpolar.core.results import Results, SsWWResults, WorkspaceResults, read_results

__all__ = ["headline", "write_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #333; } h2 { margin-top: 2em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #eee; }
figure { display: inline-block; margin: 0.5em; text-align: center; }
figure img { width: 380px; } figcaption { font-size: 0.8em; color: #555; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }
.headline { background: #eef6ee; padding: 0.5em 1em; border-left: 4px solid #393; }
"""


# Records on <body> how many figures decoded, so a headless browser can check the page.
_LOAD_CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.querySelectorAll('img.plot'));
  document.body.setAttribute('data-figures-total', imgs.length);
  document.body.setAttribute('data-figures-loaded',
    imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length);
});
</script>"""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


def _table(header: list[str], rows: list[list[Any]], table_id: str = "") -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))

    tid = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table{tid}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _caption(png: Path, root: Path) -> str:
    """A caption that tells figures of the same name apart: ``fit LL: signal, post-fit``."""
    rel = png.relative_to(root).with_suffix("")
    stem = rel.name.replace("_postfit", ", post-fit").replace("_prefit", ", pre-fit")
    if rel.parts[0] == "fit" and len(rel.parts) == 3:  # fit/<fit name>/fit_<channel>_<tag>
        return f"fit {rel.parts[1]}: {stem.removeprefix('fit_')}"
    return stem.replace("_", " ")


def _figure(png: Path, caption: str | None = None) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    cap = html.escape(caption or png.stem)
    return (f'<figure><img class="plot" alt="{cap}" src="data:image/png;base64,{data}">'
            f"<figcaption>{cap}</figcaption></figure>")


def _cutflow_section(cutflow: Mapping[str, Any]) -> str:
    regions = sorted({r for flows in cutflow.values() for r in flows})
    parts = []
    for region in regions:
        datasets = [d for d in cutflow if region in cutflow[d]]
        if not datasets:
            continue
        cuts = cutflow[datasets[0]][region]["cuts"]
        rows = []
        for i, cut in enumerate(cuts):
            row: list[Any] = [cut]
            for d in datasets:
                flow = cutflow[d][region]
                row += [flow["raw"][i], float(flow["weighted"][i])]
            rows.append(row)
        header = ["cut"] + [f"{d} {k}" for d in datasets for k in ("raw", "weighted")]
        parts.append(f"<h4>region {html.escape(region)}</h4>" + _table(header, rows))
    return "".join(parts)


def _yields_section(cutflow: Mapping[str, Any]) -> str:
    regions = sorted({r for flows in cutflow.values() for r in flows})
    rows = []
    for d in cutflow:
        rows.append([d] + [float(cutflow[d][r]["weighted"][-1]) if r in cutflow[d] else "" for r in regions])
    return _table(["dataset", *regions], rows, table_id="yields")


_SSWW_FITS = ("LL", "LX")
_SSWW_STATES = {"LL": "W_L W_L", "LX": "W_L W_X"}


def _asimov(results: Results) -> bool:
    return results.pseudo_data.get("kind") == "asimov"


def _warnings(results: Results) -> list[str]:
    """The notes a reader of the headline must not miss (MC statistics, convergence)."""
    return [f"warning: {n}" for n in results.notes if "dominate" in n or "NOT converge" in n]


def headline(results: Results) -> list[str]:
    """A few lines with the main numbers of a fit (ssWW, WH or any workspace).

    Intervals are the profile-likelihood 68 % CL ones (asymmetric), with the Hesse
    error in brackets; numbers on Asimov pseudo-data are labelled as expected.
    """
    lines = []
    asimov = _asimov(results)
    if isinstance(results, WorkspaceResults):
        iv, sig, lim = results.interval, results.significance, results.limit
        lines.append(f"{Path(results.source).name}{' + ' + ', '.join(Path(p).name for p in results.patches) if results.patches else ''}:"
                     f" {results.poi} = {iv.describe('.3g')} (68% CL profile; Hesse +- {iv.hesse:.3g});"
                     f" significance {sig.observed:.2f} sigma observed ({sig.expected:.2f} expected);"
                     f" {results.poi} < {lim.observed:.3g} observed ({lim.expected:.3g} expected,"
                     f" band {lim.expected_band[1]:.3g}-{lim.expected_band[3]:.3g}) at 95% CL")
        for c in results.cls:
            lines.append(f"CLs({results.poi} = {c.mu:g}) = {c.observed:.4g} observed,"
                         f" {c.expected:.4g} expected")
        return lines + _warnings(results)
    if isinstance(results, SsWWResults):
        for name in _SSWW_FITS:
            if name not in results.fits:
                continue
            f = results.fits[name]
            iv, sig, lim = f.interval, f.significance, f.limit_fb
            if asimov:
                stat = (f"significance {sig.expected:.2f} sigma expected (Asimov);"
                        f" sigma({_SSWW_STATES[name]}) < {lim.observed:.3g} fb on the Asimov data"
                        f" with signal ({lim.expected:.3g} fb median expected without signal)")
            else:
                stat = (f"significance {sig.observed:.2f} sigma observed ({sig.expected:.2f} expected);"
                        f" sigma({_SSWW_STATES[name]}) < {lim.observed:.3g} fb observed"
                        f" ({lim.expected:.3g} fb expected)")
            lines.append(f"ssWW {name}: mu = {iv.describe()} (68% CL profile; Hesse +- {iv.hesse:.2f});"
                         f" {stat} at 95% CL; SM {f.sm_xsec_fb:.3g} fb"
                         f" ({'generator cross section' if 'generator' in f.xsec_definition else 'fiducial'})")
        return lines + _warnings(results)
    scan = results.scan

    def fmt(iv: tuple[float | None, float | None]) -> str:
        lo, hi = iv
        return f"[{'-inf' if lo is None else f'{lo:.3f}'}, {'+inf' if hi is None else f'{hi:.3f}'}]"

    kind = "expected (Asimov)" if asimov else "observed"
    lines.append(f"WH: {scan.parameter} best fit {scan.best_fit:.3f}; {kind} 68% CL {fmt(scan.interval_68)},"
                 f" 95% CL {fmt(scan.interval_95)}")
    if results.categories:
        vals = ", ".join(f"{k} {c.interval.describe()}" for k, c in list(results.categories.items())[:4])
        lines.append(f"WH: mu per STXS x Q cos(delta+) category ({kind}, 68% CL profile): {vals}, ...")
    return lines + _warnings(results)


def _fit_section(results: Results) -> str:
    rows: list[list[Any]] = []
    notes = ("<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in results.notes)
             + "</ul>") if results.notes else ""
    obs = "Asimov" if _asimov(results) else "obs"
    if isinstance(results, WorkspaceResults):
        iv, sig, lim = results.interval, results.significance, results.limit
        rows.append([results.poi, iv.describe(".3g"), iv.hesse, sig.observed, sig.expected,
                     lim.observed, lim.expected])
        return notes + _table(["POI", "best fit (68% CL profile)", "Hesse", "Z obs [σ]", "Z exp [σ]",
                               "95% CL limit obs", "95% CL limit exp"], rows, table_id="results")
    if isinstance(results, SsWWResults):
        for name in _SSWW_FITS:
            if name not in results.fits:
                continue
            f = results.fits[name]
            iv, sig, lim = f.interval, f.significance, f.limit_fb
            rows.append([name, iv.describe(".3f"), iv.hesse, sig.observed, sig.expected,
                         lim.observed, lim.expected, f.sm_xsec_fb])
        return notes + _table(["fit", "μ (68% CL profile)", "μ Hesse", f"Z {obs} [σ]", "Z exp [σ]",
                               f"95% CL limit {obs} [fb]", "95% CL limit exp [fb]",
                               "SM σ (generator) [fb]"], rows, table_id="results")
    scan = results.scan

    def interval(iv: tuple[float | None, float | None]) -> str:
        lo, hi = iv
        return f"[{'−∞' if lo is None else f'{lo:.3f}'}, {'+∞' if hi is None else f'{hi:.3f}'}]"

    rows.append([scan.parameter, float(scan.best_fit), interval(scan.interval_68),
                 interval(scan.interval_95),
                 interval(scan.stat_interval_95) if scan.stat_interval_95 else ""])
    table = _table(["coupling", "best fit", "68% CL", "95% CL", "95% CL without MC stat."], rows,
                   table_id="results")
    mus = [[k, c.ptw_label, c.q_cos_delta_plus, c.interval.describe(".3f"), c.interval.hesse, c.a, c.b]
           for k, c in results.categories.items()]
    return notes + table + _table(["category", "p_T^W [GeV]", "Q cos δ⁺", "μ (68% CL profile)",
                                   "μ Hesse", "A", "B"], mus)


def _metrics_section(metrics: Mapping[str, Any]) -> str:
    keys = ["events_total", "events_processed", "events_skipped", "chunks", "seconds",
            "events_per_second", "bytes_read"]
    rows = [[k, metrics.get(k)] for k in keys]
    rows.append(["columns read", len(metrics.get("columns_read", []))])
    rows.append(["skipped files", len(metrics.get("skipped_files", []))])
    rows.append(["config hash", str(metrics.get("config_hash", ""))[:16]])
    rows += [[f"version {k}", v] for k, v in metrics.get("versions", {}).items()]
    return _table(["metric", "value"], rows, table_id="metrics")


def write_report(path: str | Path, *, runs: Mapping[str, str | Path],
                 fits: Mapping[str, str | Path] | None = None,
                 plots: Mapping[str, str | Path] | None = None, title: str = "ewpolar report") -> Path:
    """Write the HTML report for runs (``{label: run folder}``) and their fits.

    Args:
        path: the HTML file to write (atomically).
        runs: folders of ``ewpolar run`` (histograms.root, cutflow.json, metrics.json).
        fits: folders of ``ewpolar fit`` (results.json, workspaces), same labels.
        plots: folders with figures already made by :func:`ewpolar.plots.make_plots`;
            figures are made in a temporary folder where none is given.
    """
    from ewpolar.plots import make_plots

    fits = fits or {}
    plots = plots or {}
    path = Path(path)
    sections = []
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, run_dir in runs.items():
            run_dir = Path(run_dir)
            for name in ("histograms.root", "cutflow.json", "metrics.json"):
                if not (run_dir / name).is_file():
                    raise InputError(f"{run_dir}: not a run folder (no {name})")
            metrics = _read_json(run_dir / "metrics.json")
            cutflow = _read_json(run_dir / "cutflow.json")
            cfg_path = metrics.get("config") or label
            cfg = load_config(cfg_path)
            fit_dir = Path(fits[label]) if label in fits else None
            results = read_results(fit_dir) if fit_dir else None
            plot_dir = Path(plots[label]) if label in plots else None
            if plot_dir is None or not plot_dir.is_dir():
                plot_dir = Path(tmp) / label
                make_plots(cfg, run_dir / "histograms.root", plot_dir, fit_dir=fit_dir)
            dist = sorted((plot_dir / "distributions").glob("*.png"))
            # main distributions: the signal region first, then the control regions
            dist.sort(key=lambda p: (not p.stem.startswith("signal_"), p.stem))
            tmpl = sorted((plot_dir / "templates").glob("*.png"))
            fitfigs = sorted((plot_dir / "fit").rglob("*.png"))
            part = [f"<h2>{html.escape(label)} ({html.escape(cfg.channel)})</h2>"]
            if results:
                hl = headline(results)
                lines += hl
                part.append("<h3>Fit results</h3>" + _fit_section(results))
            part.append("<h3>Configuration</h3>"
                        f"<details><summary>{html.escape(str(cfg.source))}</summary><pre>"
                        f"{html.escape(Path(cfg.source).read_text(encoding='utf-8'))}</pre></details>")
            part.append("<h3>Yields (weighted, after all cuts)</h3>" + _yields_section(cutflow))
            part.append("<h3>Cutflows</h3>" + _cutflow_section(cutflow))
            part.append("<h3>Distributions</h3>"
                        + "".join(_figure(p, _caption(p, plot_dir)) for p in dist))
            if tmpl:
                part.append("<h3>Score templates</h3>"
                            + "".join(_figure(p, _caption(p, plot_dir)) for p in tmpl))
            if fitfigs:
                part.append("<h3>Fit: pre/post-fit, pulls, ranking, correlations, scans</h3>"
                            + "".join(_figure(p, _caption(p, plot_dir)) for p in fitfigs))
            part.append("<h3>Run metrics</h3>" + _metrics_section(metrics))
            sections.append("".join(part))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = "".join(f"<li>{html.escape(x)}</li>" for x in lines)
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>ewpolar {html.escape(__version__)}, {now}</p>"
            + (f"<div class='headline'><ul>{head}</ul></div>" if head else "")
            + "".join(sections) + _LOAD_CHECK + "</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp_file:
        tmp_file.write_text(page, encoding="utf-8")
    return path
