"""Synthetic histogram files for the workspace and fit tests (and the fit benchmark).

The histograms follow the contract of ``ewpolar.core.histio``: one hist per observable
with axes dataset, region, systematic and the observable axes, written with
``write_histograms``. Shapes are smooth toy functions with yields of the order
of the shipped configs' cross sections times luminosity; only the structure matters.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import hist
import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.histio import write_histograms

EVENT_WEIGHT = 0.05  # squared-weight sum per unit yield: MC statistics of a few per cent
REFERENCE_LUMI_FB = 140.0
# expected events at 140 fb^-1 per sample and region (toy numbers of a plausible size;
# the configs' generator cross sections are before any selection)
SSWW_EVENTS = {
    "signal": {"ssww_LL": 10.0, "ssww_LT": 45.0, "ssww_TT": 75.0, "ssww_qcd": 15.0, "wz": 35.0,
               "ttbar_nonprompt": 25.0},
    "wz_cr": {"wz": 150.0, "ttbar_nonprompt": 5.0},
    "btag_cr": {"ttbar_nonprompt": 120.0, "wz": 8.0},
    "low_mjj_cr": {"ssww_qcd": 60.0, "wz": 40.0, "ttbar_nonprompt": 30.0},
}
WH_EVENTS = {"signal": {"wh": 300.0, "ttbar": 900.0, "wbb": 400.0},
             "ttbar_cr": {"ttbar": 5000.0, "wbb": 200.0, "wh": 10.0}}
OTHER_EVENTS = 5.0  # any sample and region not listed above


def _empty(datasets: Iterable[str], regions: Iterable[str], systematics: Iterable[str],
           *axes: hist.axis.AxesMixin) -> hist.Hist:
    return hist.Hist(
        hist.axis.StrCategory(list(datasets), name="dataset"),
        hist.axis.StrCategory(list(regions), name="region"),
        hist.axis.StrCategory(list(systematics), name="systematic"),
        *axes,
        storage=hist.storage.Weight(),
    )


def _put(h: hist.Hist, dataset: str, region: str, systematic: str, values: np.ndarray) -> None:
    view = h.view(flow=False)
    idx = (h.axes["dataset"].index(dataset), h.axes["region"].index(region),
           h.axes["systematic"].index(systematic))
    view.value[idx] = values
    view.variance[idx] = np.abs(values) * EVENT_WEIGHT


def _profile(n: int, power: float, rising: bool) -> np.ndarray:
    x = np.arange(1, n + 1, dtype=float)
    p = x**power if rising else x[::-1] ** power
    return p / p.sum()


def _events(table: dict[str, dict[str, float]], dataset: str, region: str, lumi: float) -> float:
    return table.get(region, {}).get(dataset, OTHER_EVENTS) * lumi / REFERENCE_LUMI_FB


def _variations(nominal: np.ndarray, *, signal: bool, kfactor: bool, scale_members: bool
                ) -> dict[str, np.ndarray]:
    """Toy systematic variations: normalisation changes plus a tilt along the first axis."""
    tilt = np.linspace(-1.0, 1.0, nominal.shape[0]).reshape((-1,) + (1,) * (nominal.ndim - 1))
    out = {
        "pdf_up": nominal * 1.02, "pdf_down": nominal * 0.98,
        "jes_up": nominal * (1.0 + 0.03 * tilt), "jes_down": nominal * (1.0 - 0.03 * tilt),
    }
    scale = 0.06 if signal else 0.04
    if scale_members:
        # NanoAOD LHEScaleWeight order; the anti-correlated members 2 and 6 move most
        for k, f in enumerate((-0.6, -0.3, -1.0, -0.2, 0.0, 0.2, 1.0, 0.3, 0.6)):
            out[f"scale_{k}"] = nominal * (1.0 + scale * f * (1 + 0.2 * tilt))
    else:
        out["scale_up"] = nominal * (1.0 + scale) * (1 + 0.01 * tilt)
        out["scale_down"] = nominal * (1.0 - scale)
    if kfactor:
        out["kfactor_up"] = nominal * 1.10
        out["kfactor_down"] = nominal * 0.92
    return out


def ssww_histograms(config: AnalysisConfig, path: Path, *, skip: Iterable[tuple[str, str]] = (),
                    scale_members: bool = False, bins_per_axis: int | None = None) -> Path:
    """Write toy ssWW histograms for ``config`` to ``path``.

    ``skip``: (dataset, observable) pairs left out of the file (for missing-input tests).
    """
    lumi = config.luminosity_fb
    samples = {d: s for d, s in config.samples.items() if s.kind != "data"}
    systs = ["nominal", "scale_up", "scale_down", "pdf_up", "pdf_down", "jes_up", "jes_down",
             "kfactor_up", "kfactor_down", *(f"scale_{k}" for k in range(9))]
    skip = set(skip)
    hists: dict[str, hist.Hist] = {}
    for key, t in config.templates.items():
        nx = bins_per_axis or t.x_bins
        ny = bins_per_axis or t.y_bins
        h = _empty([d for d in samples if (d, f"template_{key}") not in skip], ["signal"], systs,
                   hist.axis.Regular(nx, 0, 1, name=t.x), hist.axis.Regular(ny, 0, 1, name=t.y))
        pol_rising = {"ll": {"LL"}, "lx": {"LL", "LT"}}.get(key, {"LL"})
        for d, s in samples.items():
            if (d, f"template_{key}") in skip:
                continue
            total = _events(SSWW_EVENTS, d, "signal", lumi)
            is_sig = s.kind == "signal"
            px = _profile(nx, 2.0, rising=is_sig)
            py = _profile(ny, 1.5, rising=s.polarization in pol_rising) if is_sig else _profile(ny, 0.0, True)
            nominal = total * np.outer(px, py)
            _put(h, d, "signal", "nominal", nominal)
            for name, v in _variations(nominal, signal=is_sig, kfactor=is_sig,
                                       scale_members=scale_members).items():
                _put(h, d, "signal", name, v)
        hists[f"template_{key}"] = h
    obs = config.fit.control_observable
    if obs:
        edges = np.asarray(config.histograms[obs].edges, dtype=float)
        nb = len(edges) - 1
        h = _empty([d for d in samples if (d, obs) not in skip], ["signal", *config.fit.control_regions],
                   systs, hist.axis.Variable(edges, name=obs))
        for region in config.fit.control_regions:
            for d, s in samples.items():
                if (d, obs) in skip:
                    continue
                total = _events(SSWW_EVENTS, d, region, lumi)
                nominal = total * _profile(nb, 1.0, rising=False)
                _put(h, d, region, "nominal", nominal)
                for name, v in _variations(nominal, signal=s.kind == "signal", kfactor=s.kind == "signal",
                                           scale_members=scale_members).items():
                    _put(h, d, region, name, v)
        hists[obs] = h
    return write_histograms(hists, path)


def wh_histograms(config: AnalysisConfig, path: Path, *, interference: float = 1.0,
                  ptw_edges: list[float] | None = None) -> Path:
    """Write toy WH histograms: signal SM, ``cp_int`` (odd in Q_l cos δ⁺), ``cp_quad``."""
    lumi = config.luminosity_fb
    samples = {d: s for d, s in config.samples.items() if s.kind != "data"}
    q_ax = config.histograms["q_cos_delta_plus"]
    q_edges = np.linspace(q_ax.start, q_ax.stop, q_ax.bins + 1)
    p_edges = np.asarray(ptw_edges or config.histograms["ptw"].edges, dtype=float)
    q_c = 0.5 * (q_edges[1:] + q_edges[:-1])
    p_c = 0.5 * (p_edges[1:] + p_edges[:-1])
    systs = ["nominal", "scale_up", "scale_down", "pdf_up", "pdf_down", "jes_up", "jes_down",
             "cp_int", "cp_quad"]
    obs = config.fit.signal_observable
    h = _empty(samples, ["signal"], systs, hist.axis.Variable(q_edges, name="q_cos_delta_plus"),
               hist.axis.Variable(p_edges, name="ptw"))
    ptw_shape = np.exp(-p_c / 150.0)
    ptw_shape /= ptw_shape.sum()
    for d, s in samples.items():
        total = _events(WH_EVENTS, d, "signal", lumi)
        nominal = total * np.outer(np.full(q_c.size, 1 / q_c.size), ptw_shape)
        _put(h, d, "signal", "nominal", nominal)
        for name, v in _variations(nominal, signal=s.kind == "signal", kfactor=False,
                                   scale_members=False).items():
            _put(h, d, "signal", name, v)
        if s.kind == "signal":
            growth = np.clip(p_c / 100.0, 0.3, 6.0)
            _put(h, d, "signal", "cp_int", interference * 0.4 * nominal * np.outer(q_c, growth))
            _put(h, d, "signal", "cp_quad", 0.1 * nominal * np.outer(np.ones_like(q_c), growth**2))
    hists = {obs: h}
    cr_obs = config.fit.control_observable
    ax = config.histograms[cr_obs]
    edges = np.linspace(ax.start, ax.stop, ax.bins + 1)
    hc = _empty(samples, config.fit.control_regions, systs, hist.axis.Variable(edges, name=cr_obs))
    for region in config.fit.control_regions:
        for d, s in samples.items():
            nominal = _events(WH_EVENTS, d, region, lumi) * _profile(edges.size - 1, 1.0, rising=False)
            _put(hc, d, region, "nominal", nominal)
            for name, v in _variations(nominal, signal=s.kind == "signal", kfactor=False,
                                       scale_members=False).items():
                _put(hc, d, region, name, v)
    hists[cr_obs] = hc
    return write_histograms(hists, path)
