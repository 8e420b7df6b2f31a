"""Figures for the calibration report: the DET curve and the score distributions, as PNG bytes (matplotlib Agg).

The DET curve plots the false-reject rate against the false-accept rate on normal-deviate axes
(``scipy.stats.norm.ppf`` of each probability), where Gaussian score distributions make straight lines
(Martin et al., 1997). Rates of exactly 0 or 1 cannot be drawn on those axes and are clipped to the plot edge.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.stats import norm  # noqa: E402

from voiceauth.calibration.stats import Trials  # noqa: E402
from voiceauth.scoring.metrics import det_curve  # noqa: E402

__all__ = ["DET_TICKS", "det_png", "distribution_png"]

#: tick positions of the DET axes (probabilities)
DET_TICKS = (0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6)
_LO, _HI = DET_TICKS[0], DET_TICKS[-1]  # zero rates are drawn on the edge


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _dev(p: np.ndarray | float) -> np.ndarray:
    return np.asarray(norm.ppf(np.clip(p, _LO, _HI)))


def det_png(trials: Trials, marks: Mapping[str, float] | None = None, title: str = "DET curve") -> bytes:
    """The DET curve (FRR vs FAR, normal-deviate axes) with the EER line and ``marks`` (name -> threshold)."""
    _, p_miss, p_fa = det_curve(trials.tar, trials.non)
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    ax.plot(_dev(p_fa), _dev(p_miss), color="#1f4e9a", lw=2, label="system")
    ticks = _dev(np.array(DET_TICKS))
    labels = [f"{100 * t:g}" for t in DET_TICKS]
    ax.plot(ticks, ticks, color="#999999", lw=0.8, ls=":", label="EER line")
    tar, non = np.sort(trials.tar), np.sort(trials.non)
    colours = ["#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    for k, (name, thr) in enumerate((marks or {}).items()):
        frr = np.searchsorted(tar, thr, side="left") / tar.size
        far = (non.size - np.searchsorted(non, thr, side="left")) / non.size
        ax.plot(
            _dev(far), _dev(frr), "o", ms=8, color=colours[k % len(colours)], clip_on=False,
            label=f"{name} (thr {thr:.1f}): FAR {100 * far:.2f}%, FRR {100 * frr:.2f}%",
        )  # fmt: skip
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylim(ticks[0], ticks[-1])
    ax.set_xlabel("False accept rate (%)")
    ax.set_ylabel("False reject rate (%)")
    ax.set_title(f"{title}  ({tar.size} target / {non.size} impostor trials)")
    ax.grid(True, color="#dddddd")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def distribution_png(trials: Trials, marks: Mapping[str, float] | None = None) -> bytes:
    """Histograms (density) of target and impostor scores on the calibrated 0-100 scale, thresholds as lines."""
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    bins = [2.0 * k for k in range(51)]
    ax.hist(trials.non, bins=bins, density=True, alpha=0.55, color="#d62728", label=f"impostor ({trials.non.size})")
    ax.hist(trials.tar, bins=bins, density=True, alpha=0.55, color="#1f77b4", label=f"genuine ({trials.tar.size})")
    for name, thr in (marks or {}).items():
        ax.axvline(thr, color="black", ls="--", lw=1)
        ax.text(thr, ax.get_ylim()[1] * 0.95, f" {name}", rotation=90, va="top", fontsize=8)
    ax.set_xlabel("Calibrated score (0-100)")
    ax.set_ylabel("Density")
    ax.set_title("Score distributions")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _png(fig)
