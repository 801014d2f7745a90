"""Matplotlib figures of reconstructions and results; each function saves one figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

from innpar_freia.signal import diastolic_troughs, systolic_peaks

# One palette for every figure: reference in dark grey, prediction in blue, markers by value.
COLORS = {
    "reference": "#333333",
    "prediction": "#1f77b4",
    "sbp": "#d62728",
    "dbp": "#2ca02c",
    "map": "#9467bd",
    "baseline": "#ff7f0e",
}


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Save as PNG or PDF (by suffix) through a temporary name, then close the figure."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf"):
        raise ValueError(f"figures are saved as .png or .pdf, not {path.suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def plot_reconstructions(
    ref: np.ndarray,
    pred: np.ndarray,
    fs: float,
    path: str | Path,
    titles: Sequence[str] | None = None,
    max_windows: int = 4,
) -> Path:
    """Reference vs predicted ABP (mmHg) of a few windows, with detected SBP/DBP markers."""
    n = min(max_windows, len(ref))
    if n == 0:
        raise ValueError("no windows to plot")
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.4 * n), squeeze=False, sharex=True)
    t = np.arange(ref.shape[1]) / fs
    for i, ax in enumerate(axes[:, 0]):
        r, p = ref[i], pred[i]
        ax.plot(t, r, color=COLORS["reference"], lw=1.4, label="reference ABP")
        ax.plot(t, p, color=COLORS["prediction"], lw=1.2, label="reconstructed ABP")
        for x, style in ((r, "o"), (p, "x")):
            pk, tr = systolic_peaks(x, fs), diastolic_troughs(x, fs)
            ax.plot(t[pk], x[pk], style, color=COLORS["sbp"], ms=4)
            ax.plot(t[tr], x[tr], style, color=COLORS["dbp"], ms=4)
        mae = float(np.abs(p - r).mean())
        label = titles[i] if titles is not None else f"window {i}"
        ax.set_title(f"{label}  (MAE {mae:.1f} mmHg)", fontsize=9, loc="left")
        ax.set_ylabel("ABP (mmHg)")
        ax.grid(alpha=0.3)
    axes[0, 0].plot([], [], "o", color=COLORS["sbp"], label="SBP (o ref, x pred)")
    axes[0, 0].plot([], [], "o", color=COLORS["dbp"], label="DBP (o ref, x pred)")
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=2)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return save_figure(fig, path)
