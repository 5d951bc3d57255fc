"""Histogram files: hist objects to ROOT (uproot) and back.

``histograms.root`` holds one TH1D/TH2D per dataset × region × systematic ×
observable, named ``{dataset}__{region}__{systematic}__{observable}`` (so names
must not contain a double underscore). Bin contents are weighted sums, errors the
square root of the summed squared weights. A non-nominal slice that was never
filled (zero summed squared weights; e.g. the WH interference weights for a
background) is not written: a missing variation means "same as nominal".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import hist
import numpy as np
import uproot
from ewpolar.core.errors import InputError
from ewpolar.core.naming import (
    CATEGORY_AXES,
    NOMINAL,
    HistKey,
    histogram_name,
    parse_histogram_name,
)
from ewpolar.core.outputs import atomic_path

__all__ = ["CATEGORY_AXES", "HistKey", "Template", "histogram_name", "read_histograms",
           "write_histograms"]

log = logging.getLogger(__name__)

@dataclass
class Template:
    """One histogram read back: bin contents, variances and edges per axis."""

    values: np.ndarray
    variances: np.ndarray
    edges: tuple[np.ndarray, ...]


def _split(h: hist.Hist, observable: str):
    names = [ax.name for ax in h.axes]
    if names[:3] != list(CATEGORY_AXES):
        raise ValueError(f"histogram '{observable}' must start with axes {CATEGORY_AXES}, has {names}")
    for dataset in h.axes["dataset"]:
        for region in h.axes["region"]:
            for syst in h.axes["systematic"]:
                sub = h[{"dataset": dataset, "region": region, "systematic": syst}]
                if syst != NOMINAL and not np.any(sub.variances(flow=True)):
                    continue
                yield histogram_name(dataset, region, syst, observable), sub


def write_histograms(hists: Mapping[str, hist.Hist], path: str | Path) -> Path:
    """Write every dataset × region × systematic slice of ``hists`` to ``path`` atomically."""
    path = Path(path)
    n = 0
    with atomic_path(path) as tmp, uproot.recreate(tmp) as f:
        for observable, h in hists.items():
            for name, sub in _split(h, observable):
                f[name] = sub
                n += 1
    log.info("wrote %d histograms to %s", n, path)
    return path


def read_histograms(path: str | Path) -> dict[HistKey, Template]:
    """Read a histograms.root written by :func:`write_histograms`.

    Raises:
        InputError: the file is missing or not a histograms file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: histograms file not found")
    out: dict[HistKey, Template] = {}
    try:
        with uproot.open(path) as f:
            for name, cls in f.classnames(recursive=False).items():
                name = name.split(";")[0]
                key = parse_histogram_name(name)
                if key is None or not cls.startswith(("TH1", "TH2", "TH3")):
                    continue
                obj = f[name]
                out[key] = Template(
                    values=obj.values(flow=False),
                    variances=obj.variances(flow=False),
                    edges=tuple(ax.edges(flow=False) for ax in obj.axes),
                )
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read histograms: {exc}") from None
    if not out:
        raise InputError(f"{path}: no histograms named dataset__region__systematic__observable")
    return out
