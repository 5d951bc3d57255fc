"""The figure of the SBI study: −2Δln L(c) of every method."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ewpolar.stats.likelihood import DELTA_68, DELTA_95

if TYPE_CHECKING:
    from ewpolar.models.sbi.study import SBIResults

__all__ = ["plot_scans"]


def plot_scans(results: SBIResults, path: str | Path) -> Path:
    """−2Δln L(c) of every method in one PNG."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    # matplotlib's default style (DejaVu fonts have ℓ, δ, ⁺, ′), whatever style is active
    with plt.style.context("default"):
        return _draw_scans(plt, results, path)


def _draw_scans(plt: Any, results: SBIResults, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 5))
    styles = {"truth": ("black", ":"), "analysis_fit": ("tab:cyan", "-."), "binned": ("tab:blue", "-"), "sally": ("tab:orange", "-"),
              "carl": ("tab:green", "--"), "alice": ("tab:red", "--"),
              "alices": ("tab:purple", "--")}
    top = 0.0
    for key, m in results.methods.items():
        color, style = styles.get(key, (None, "-"))
        label = f"{m.label} (NOT USABLE: too little information)" if m.warning else m.label
        ax.plot(m.scan.values, m.scan.twice_delta_nll, style, color=color, label=label,
                alpha=0.35 if m.warning else 1.0)
        top = max(top, float(np.max(m.scan.twice_delta_nll)))
        if m.calibrated is not None:
            ax.plot(m.calibrated.values, m.calibrated.twice_delta_nll, ":", color=color,
                    linewidth=1.0, label=f"{m.label.replace(', unbinned', '')}, calibrated")
    for level in (DELTA_68, DELTA_95):
        ax.axhline(level, color="gray", linewidth=0.7)
    ax.set_ylim(0, min(max(top, 5.0), 8.0))
    # wide enough for every 95 % interval that was found
    half = max([results.c_max] + [abs(v) * 1.2 for m in results.methods.values()
                                  for v in m.scan.interval_95 if v is not None])
    ax.set_xlim(-half, half)
    ax.set_xlabel(r"$c_{H\tilde{W}}$")
    ax.set_ylabel(r"expected $-2\Delta\ln L$ (Asimov, SM)")
    extra = "; (a′) with backgrounds and systematics" if "analysis_fit" in results.methods else ""
    ax.set_title(f"WH, {results.luminosity_fb:g} fb$^{{-1}}$, signal only{extra}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
