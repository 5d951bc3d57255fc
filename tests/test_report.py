"""fit / plot / report on a small WH run, and the report rendered by a headless browser."""

from __future__ import annotations

import html.parser
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from ewpolar.cli import main
from ewpolar.core.config import default_config_path, load_config
from ewpolar.generator import generate
from ewpolar.runner.run import load_fileset, run_analysis

WH_CFG = str(default_config_path("wh"))


@pytest.fixture(scope="module")
def wh_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("wh_chain")
    cfg = load_config("wh")
    fileset = generate(cfg, events=4000, seed=5, out=base / "samples")
    run_analysis(cfg, load_fileset(fileset), chunksize=4000, out=base / "run")
    result = CliRunner().invoke(main, ["fit", "--config", WH_CFG, "--histograms",
                                       str(base / "run" / "histograms.root"), "--out", str(base / "fit")])
    assert result.exit_code == 0, result.output
    assert "c_HWtilde best fit" in result.output
    return {"base": base, "run": base / "run", "fit": base / "fit"}


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.tables: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        if tag in ("link", "script") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src") or "")
        if tag == "table" and a.get("id"):
            self.tables.append(a["id"] or "")
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def test_fit_results_and_plots(wh_run: dict[str, Path]) -> None:
    results = json.loads((wh_run["fit"] / "results.json").read_text())
    assert results["channel"] == "wh"
    scan = results["cp_scan"]
    # SM Asimov pseudo-data: the scan minimum sits at c = 0 and the 95% interval contains the 68% one
    assert abs(scan["best_fit"]) < 0.05
    lo68, hi68 = scan["interval_68"]
    lo95, hi95 = scan["interval_95"]
    assert lo95 < lo68 < 0 < hi68 < hi95
    out = wh_run["base"] / "plots"
    result = CliRunner().invoke(main, ["plot", "--config", WH_CFG, "--histograms",
                                       str(wh_run["run"] / "histograms.root"), "--fit", str(wh_run["fit"]),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "fit" / "cp_scan.png").is_file()
    assert (out / "fit" / "cp_scan.pdf").is_file()
    assert sorted(out.glob("distributions/signal_*_prefit.png"))
    assert sorted(out.glob("fit/categories/fit_stxs0_postfit.png"))


def test_report_is_self_contained(wh_run: dict[str, Path]) -> None:
    out = wh_run["base"] / "report.html"
    result = CliRunner().invoke(main, ["report", "--run", str(wh_run["run"]), "--fit", str(wh_run["fit"]),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = _Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert page.title == "ewpolar report"
    assert {"results", "yields", "metrics"} <= set(page.tables)
    assert len(page.imgs) >= 5
    assert all(src.startswith("data:image/png;base64,") for src in page.imgs)
    assert page.links == [], "the report must not load anything from outside"
    text = out.read_text(encoding="utf-8")
    assert "c_HWtilde" in text
    assert "region signal" in text


def test_report_rejects_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", "--run", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "not a run folder" in result.stderr


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_browser(wh_run: dict[str, Path], tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (Debian package 'chromium'; .ci/run installs it)")
    out = wh_run["base"] / "report_browser.html"
    result = CliRunner().invoke(main, ["report", "--run", str(wh_run["run"]), "--fit", str(wh_run["fit"]),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False).stdout
    page = _Page()
    page.feed(dom)
    assert page.title == "ewpolar report"
    assert "results" in page.tables
    body = dom[dom.index("<body"):].split(">", 1)[0]
    total = int(body.split('data-figures-total="')[1].split('"')[0])
    loaded = int(body.split('data-figures-loaded="')[1].split('"')[0])
    assert total == len(page.imgs) > 0
    assert loaded == total, f"{total - loaded} figure(s) did not decode"
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, "--window-size=1280,1600", f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.is_file()
    assert shot.stat().st_size > 10_000
