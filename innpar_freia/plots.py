"""Matplotlib figures of reconstructions and results; each function saves one figure.

Every figure uses :data:`COLORS`, labels its axes with units (mmHg, s, bpm) and is saved
as PNG or PDF by :func:`save_figure` (through a temporary name).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, MaxNLocator

from innpar_freia.errors import DataError
from innpar_freia.metrics import (
    AAMI_MAX_ABS_ME,
    AAMI_MAX_SD,
    BHS_GRADES,
    BHS_THRESHOLDS,
    graded_text,
)
from innpar_freia.outputs import make_folder, remove_stale_temporaries
from innpar_freia.reconstruct import detect_gaps
from innpar_freia.reconstruct_limits import seconds_text
from innpar_freia.signal import diastolic_troughs, systolic_peaks

# One palette for every figure: reference in dark grey, prediction in blue, markers by value.
COLORS = {
    "reference": "#333333",
    "prediction": "#1f77b4",
    "sbp": "#d62728",
    "dbp": "#2ca02c",
    "map": "#9467bd",
    "baseline": "#ff7f0e",
    "naive": "#ff7f0e",
    "linear": "#8c564b",
    "carry_forward": "#e377c2",
    "input": "#555555",
    "gap": "#f2c2c2",
    "grid": "#cccccc",
}
BP_LABELS = {"sbp": "SBP", "dbp": "DBP", "map": "MAP"}
BHS_GRADE_A = BHS_GRADES[0][1]  # what BHS grade A needs at 5, 10, 15 mmHg (%)
# Beats in the running median of the whole-recording figure (about 10 s at rest).
RUNNING_BEATS = 9


def figure_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, refused unless it names a .png or .pdf file (not a folder)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder: name a .png or .pdf file to save the figure as")
    if path.suffix.lower() not in (".png", ".pdf"):
        suffix = f"not {path.suffix!r}" if path.suffix else "but it has no suffix"
        raise ValueError(f"figures are saved as .png or .pdf, {suffix}: {path}")
    return path


def new_figure(*args: Any, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """A figure and its axes as ``plt.subplots`` gives them, but outside pyplot: no global
    backend is switched (a notebook's inline display kept working) and no figure is left
    open in pyplot's registry; savefig picks the renderer from the suffix, headless too."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)  # measures text before saving; a PDF is still written as PDF
    return fig, fig.subplots(*args, **kwargs)


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Save as PNG or PDF (by suffix) through a temporary name, then close the figure."""
    try:
        path = figure_path(path)
    except ValueError:
        _close(fig)
        raise
    make_folder(path.parent)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        tmp.replace(path)
    except OSError as exc:
        # A full disk fails a write() that names no file ("No space left on device" alone).
        if exc.filename is not None or exc.errno is None:
            raise
        raise DataError(f"cannot write {path}: {os.strerror(exc.errno)}", errno=exc.errno) from None
    finally:
        _close(fig)
        tmp.unlink(missing_ok=True)
    return path


def _close(fig: Figure) -> None:
    # A figure made by pyplot (a caller's) stays in its registry until closed; ours are not
    # in it, and importing pyplot for them would pick a backend.
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(fig)


def plot_reconstructions(
    ref: np.ndarray,
    pred: np.ndarray,
    fs: float,
    path: str | Path,
    titles: Sequence[str] | None = None,
    max_windows: int = 4,
    *,
    ylabel: str = "ABP (mmHg)",
    what: str = "ABP",
    units: str = "mmHg",
    markers: bool = True,
    title: str | None = None,
) -> Path:
    """Reference vs reconstructed windows ``(windows, time)`` at ``fs`` Hz, the first
    ``max_windows`` of them, each titled with its MAE; with ``markers`` (ABP in mmHg) the
    protocol's systolic peaks and diastolic troughs of both (o reference, x prediction).
    ``title`` heads the figure (the model and protocol: calibrated and calibration-free
    windows look alike)."""
    path = figure_path(path)  # before drawing: a bad name leaves no figure made
    if isinstance(max_windows, bool) or not isinstance(max_windows, numbers.Integral):
        raise TypeError(f"max_windows must be a whole number, not {max_windows!r}")
    if max_windows < 1:
        # -2 failed in matplotlib: "figure size must be positive finite".
        raise ValueError(f"max_windows, the windows to draw, must be >= 1, not {max_windows}")
    n = min(max_windows, len(ref))
    if n == 0:
        raise ValueError("no windows to plot")
    fig, axes = new_figure(n, 1, figsize=(10, 2.4 * n + 0.4), squeeze=False, sharex=True)
    t = np.arange(ref.shape[1]) / fs
    for i, ax in enumerate(axes[:, 0]):
        r, p = ref[i], pred[i]
        ax.plot(t, r, color=COLORS["reference"], lw=1.4, label=f"reference {what}")
        ax.plot(t, p, color=COLORS["prediction"], lw=1.2, label=f"reconstructed {what}")
        if markers:
            for x, style in ((r, "o"), (p, "x")):
                pk, tr = systolic_peaks(x, fs), diastolic_troughs(x, fs)
                ax.plot(t[pk], x[pk], style, color=COLORS["sbp"], ms=4)
                ax.plot(t[tr], x[tr], style, color=COLORS["dbp"], ms=4)
        mae = float(np.nanmean(np.abs(p - r)))
        label = titles[i] if titles is not None else f"window {i}"
        ax.set_title(f"{label}  (MAE {mae:.2f} {units})", fontsize=9, loc="left")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if markers:
        for key, name in (("sbp", "SBP"), ("dbp", "DBP")):
            axes[0, 0].plot(
                [], [], "o", color=COLORS[key], label=f"{name} (o reference, x reconstructed)"
            )
    axes[-1, 0].set_xlabel("time (s)")
    # The legend goes below the panels, where it cannot hide a waveform.
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    height = 2.4 * n + 0.4
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.3 / height, 1, 1 - (0.3 / height if title else 0)))
    return save_figure(fig, path)


def limits_of_agreement(err: np.ndarray) -> tuple[float, float | None, float | None]:
    """Bland-Altman mean error and limits of agreement ``(ME, ME - 1.96 SD, ME + 1.96 SD)``
    with the sample SD (ddof=1), as in the protocol's ME +- SD; one error has no SD, and no
    limits (``None``)."""
    err = np.asarray(err, dtype=np.float64)
    me = float(err.mean())
    if err.size < 2:
        return me, None, None
    sd = float(err.std(ddof=1))
    return me, me - 1.96 * sd, me + 1.96 * sd


def plot_bland_altman(
    bp_pred: np.ndarray, bp_ref: np.ndarray, path: str | Path, title: str | None = None
) -> Path:
    """Bland-Altman plots of SBP, DBP and MAP (mmHg), ``bp_*`` of shape ``(windows, 3)``:
    error (prediction - reference) against the mean of both, with the mean error and the
    ME +- 1.96 SD limits of agreement drawn and labelled."""
    path = figure_path(path)  # before drawing: a bad name leaves no figure made
    bp_pred = np.asarray(bp_pred, dtype=np.float64)
    bp_ref = np.asarray(bp_ref, dtype=np.float64)
    if bp_pred.shape != bp_ref.shape or bp_pred.ndim != 2 or bp_pred.shape[1] != 3:
        raise ValueError(f"expected (windows, 3) arrays, got {bp_pred.shape} and {bp_ref.shape}")
    if bp_pred.shape[0] == 0:
        raise ValueError("no windows to plot")
    if not (np.isfinite(bp_pred).all() and np.isfinite(bp_ref).all()):
        raise ValueError("the BP values hold NaN or infinite values: leave those windows out")
    fig, axes = new_figure(1, 3, figsize=(13, 4.2))
    n = bp_pred.shape[0]
    alpha = float(np.clip(30.0 / np.sqrt(n), 0.15, 0.8))
    labels: list[list[Any]] = [[], [], []]
    extremes: list[float] = []
    for j, (key, label) in enumerate(BP_LABELS.items()):
        ax = axes[j]
        mean = 0.5 * (bp_pred[:, j] + bp_ref[:, j])
        err = bp_pred[:, j] - bp_ref[:, j]
        me, lo, hi = limits_of_agreement(err)
        ax.scatter(mean, err, s=9, alpha=alpha, color=COLORS[key], edgecolors="none")
        ax.axhline(0.0, color=COLORS["grid"], lw=1.0)
        ax.axhline(me, color=COLORS["reference"], lw=1.4)
        lines = [(me, "ME")]
        if lo is not None and hi is not None:
            for limit in (lo, hi):
                ax.axhline(limit, color=COLORS["reference"], lw=1.1, ls="--")
            lines = [(hi, "+1.96 SD"), (me, "ME"), (lo, "-1.96 SD")]
        # Labels sit at the right edge, inside the axes, above their line.
        for value, text in lines:
            labels[j].append(
                ax.annotate(
                    f"{text} {value:+.1f}",
                    xy=(1.0, value),
                    xycoords=("axes fraction", "data"),
                    xytext=(-3, 2),
                    textcoords="offset points",
                    ha="right",
                    va="bottom",
                    fontsize=8,
                    color=COLORS["reference"],
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                )
            )
        span = max(*(abs(v) for v, _ in lines), float(np.max(np.abs(err))), 5.0)
        ax.set_ylim(-1.1 * span, 1.1 * span)
        extremes.append(float(np.max(np.abs(err))))
        ax.set_xlabel(f"mean of predicted and reference {label} (mmHg)")
        ax.set_ylabel(f"{label} error, predicted - reference (mmHg)")
        # As the report's tables show them: 4.96 is not rounded onto the AAMI limit of 5.
        ax.set_title(
            f"{label}: ME {graded_text(me, 1, (AAMI_MAX_ABS_ME,), sign=True)} mmHg, "
            + (
                f"SD {graded_text((hi - me) / 1.96, 1, (AAMI_MAX_SD,))} mmHg"
                if hi is not None
                else "no SD"
            )
            + f" (n={n})",
            fontsize=10,
            loc="left",
        )
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    # Twice: the wider limits' tick labels move the panels, which the second layout
    # makes room for, and the axes it leaves may be a little shorter.
    for _ in range(2):
        for ax, texts, extreme in zip(axes, labels, extremes, strict=True):
            _room_above_labels(ax, texts, extreme)
        fig.tight_layout()
    return save_figure(fig, path)


# How close (a share of the axes' height) a point may come to the frame.
POINT_MARGIN = 0.08


def _room_above_labels(ax: Any, texts: Sequence[Any], extreme: float) -> None:
    """Widen ``ax``'s symmetric y limits until each of ``texts`` (a label drawn above its
    horizontal line, at a height in data units) lies inside the axes and the points, the
    largest of them ``extreme`` from 0, stay clear of the frame: 10 % headroom left the
    '+1.96 SD' label of a limit near the largest error cut by the frame, and a lone
    window's point on the frame."""
    renderer = ax.figure.canvas.get_renderer()
    height = ax.get_window_extent(renderer).height
    # 5 points between a label and the frame: its white box (1.2), the frame line, a gap.
    margin = 5.0 * ax.figure.dpi / 72.0
    need = max(ax.get_ylim()[1], extreme / (1.0 - 2.0 * POINT_MARGIN))
    for text in texts:
        value = float(text.xy[1])
        line = ax.transData.transform((0.0, value))[1]
        # The label's height above its line, in pixels: as much at any y limits.
        share = (text.get_window_extent(renderer).y1 - line + margin) / height
        if value > 0 and share < 0.45:
            need = max(need, value / (1.0 - 2.0 * share))
    ax.set_ylim(-need, need)


def plot_error_distributions(
    methods: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Error histograms (top) and cumulative |error| curves (bottom) of SBP, DBP and MAP.

    ``methods`` maps a name (``model``, ``naive``, ``linear``, ``carry-forward``, ...) to
    ``(bp_pred, bp_ref)`` arrays of shape ``(windows, 3)`` in mmHg. The histogram shows the
    first method, over bands of |error| <= 5, 10 and 15 mmHg (the BHS thresholds); the
    cumulative panels compare all methods and mark what BHS grade A needs at those
    thresholds (60, 85, 95 %). Each cumulative panel's title gives the first method's BHS
    percentages and grade.
    """
    path = figure_path(path)  # before drawing: a bad name leaves no figure made
    from innpar_freia.metrics import BHS_MINIMA, bhs_grade, bhs_percentages, graded_text

    if not methods:
        raise ValueError("no methods to plot")
    names = list(methods)
    errors = {}
    for name, (p, r) in methods.items():
        p, r = np.asarray(p, dtype=np.float64), np.asarray(r, dtype=np.float64)
        if p.shape != r.shape:
            raise ValueError(
                f"{name}: prediction and reference differ in shape, {p.shape} and {r.shape}"
            )
        errors[name] = p - r
    for name, err in errors.items():
        if err.ndim != 2 or err.shape[1] != 3 or err.shape[0] == 0:
            raise ValueError(f"{name}: expected (windows, 3) arrays with windows, got {err.shape}")
        if not np.isfinite(err).all():
            raise ValueError(f"{name}: the BP values hold NaN or infinite values")
    fig, axes = new_figure(2, 3, figsize=(13, 7.4))
    for j, (key, label) in enumerate(BP_LABELS.items()):
        top, bottom = axes[0, j], axes[1, j]
        first = errors[names[0]][:, j]
        everything = np.abs(np.concatenate([e[:, j] for e in errors.values()]))
        lim = max(20.0, 5.0 * np.ceil(float(np.percentile(everything, 99)) / 5.0))
        # Darker bands for stricter BHS thresholds: the share of the histogram inside each.
        for t, shade in zip(BHS_THRESHOLDS[::-1], (0.06, 0.10, 0.16), strict=True):
            top.axvspan(-t, t, color=COLORS["reference"], alpha=shade, lw=0)
        _, _, bars = top.hist(
            np.clip(first, -lim, lim), bins=np.linspace(-lim, lim, 41), color=COLORS[key], alpha=0.8
        )
        if j == 0:
            legend_bars = bars  # the legend goes on this panel
        top.axvline(float(first.mean()), color=COLORS["reference"], lw=1.4, ls="--")
        outside = int(np.sum(np.abs(first) > lim))
        if outside:
            top.annotate(
                f"{outside} beyond ±{lim:g} mmHg\n(in the edge bins)",
                xy=(0.99, 0.97),
                xycoords="axes fraction",
                ha="right",
                va="top",
                fontsize=8,
                color=COLORS["reference"],
            )
        top.set_xlim(-lim, lim)
        top.set_xlabel(f"{label} error, predicted - reference (mmHg)")
        top.set_ylabel("windows")
        # Counts: a few windows were shown on ticks of 0.2, 0.4, ... windows.
        top.yaxis.set_major_locator(MaxNLocator(integer=True))
        top.set_title(
            f"{label}, {names[0]}: ME {first.mean():+.1f}, MAE {np.abs(first).mean():.1f} mmHg",
            fontsize=10,
            loc="left",
        )
        top.grid(alpha=0.3)
        x = np.linspace(0.0, lim, 400)
        drawn: dict[str, np.ndarray] = {}
        for name in names:
            abs_err = np.sort(np.abs(errors[name][:, j]))
            cum = 100.0 * np.searchsorted(abs_err, x, side="right") / abs_err.size
            # A method whose errors equal an earlier one's (linear and naive on MAP: a
            # z-scored PPG has mean 0) would hide it: dashed, and said in the legend.
            same = next((d for d, e in drawn.items() if np.allclose(e, errors[name][:, j])), None)
            bottom.plot(
                x,
                cum,
                color=_method_color(name, key),
                lw=2.2 if name == names[0] else 1.5,
                ls="--" if same else "-",
                label=f"{name} (= {same})" if same else name,
            )
            drawn[name] = errors[name][:, j]
        if j and any("(= " in line.get_label() for line in bottom.get_lines()):
            bottom.legend(fontsize=8, loc="lower right")  # this panel's lines differ
        for t, need in zip(BHS_THRESHOLDS, BHS_GRADE_A, strict=True):
            bottom.axvline(t, color=COLORS["grid"], lw=0.9, ls=":")
            bottom.plot([t], [need], marker="_", ms=14, mew=2.2, color=COLORS["reference"])
        # The tables' percentages (with their threshold slack), shown so that rounding
        # cannot put 59.6 % on the 60 % of the grade next to it.
        pct = bhs_percentages(np.abs(first))
        shown = " / ".join(graded_text(v, 0, m) for v, m in zip(pct, BHS_MINIMA, strict=True))
        bottom.set_title(
            f"{names[0]}: {shown} % within 5 / 10 / 15 mmHg (BHS {bhs_grade(pct)})",
            fontsize=10,
            loc="left",
        )
        bottom.set_xlim(0, lim)
        bottom.set_ylim(0, 101)
        bottom.set_xlabel(f"|{label} error| (mmHg)")
        bottom.set_ylabel("windows with |error| <= x (%)")
        bottom.grid(alpha=0.3)
    top = axes[0, 0]
    top.plot([], [], color=COLORS["reference"], ls="--", label="mean error (ME)")
    for t, shade in zip(BHS_THRESHOLDS, (0.32, 0.16, 0.06), strict=True):
        top.fill_between([], [], color=COLORS["reference"], alpha=shade, label=f"|error| <= {t:g}")
    legend = top.legend(fontsize=8, loc="upper left")
    axes[1, 0].plot(
        [],
        [],
        marker="_",
        ls="",
        ms=14,
        mew=2.2,
        color=COLORS["reference"],
        label="BHS grade A needs",
    )
    axes[1, 0].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    _room_below_legend(top, legend, legend_bars)
    return save_figure(fig, path)


def _room_below_legend(ax: Any, legend: Any, bars: Sequence[Any]) -> None:
    """Raise ``ax``'s top y limit until the ``bars`` under ``legend`` (in its upper left
    corner) end below it: a lone window's bar, as tall as the axes, was hidden by it."""
    renderer = ax.figure.canvas.get_renderer()
    frame, box = ax.get_window_extent(renderer), legend.get_window_extent(renderer)
    under = [
        b.get_height()
        for b in bars
        if b.get_height() > 0
        and b.get_window_extent(renderer).x0 < box.x1
        and b.get_window_extent(renderer).x1 > box.x0
    ]
    share = (frame.y1 - box.y0 + 3.0 * ax.figure.dpi / 72.0) / frame.height
    if under and share < 0.8:
        low, high = ax.get_ylim()
        ax.set_ylim(low, max(high, low + (max(under) - low) / (1.0 - share)))


def _method_color(name: str, bp_key: str) -> str:
    key = name.replace("-", "_")
    if key in COLORS and key not in BP_LABELS:
        return COLORS[key]
    return COLORS["prediction"]


# Terms of the training loss that metrics.jsonl logs (unweighted) beside train_loss, by
# the TrainConfig weight that adds them, and those it does not log.
LOGGED_LOSS_TERMS = {"pair_weight": "train_pair_loss", "inverse_weight": "train_inverse_loss"}
UNLOGGED_LOSS_TERMS = ("diff_weight", "extremes_weight", "pair_extremes_weight")


def training_l1(
    history: Sequence[Mapping[str, Any]], weights: Mapping[str, Any] | None
) -> tuple[np.ndarray, str | None]:
    """The L1 part of each record's ``train_loss`` (the term ``val_loss`` measures) and
    ``None``; or ``train_loss`` as it is and why it is not that L1.

    ``weights`` are the run's training configuration (``config.json``'s ``train``). The
    logged terms are epoch means of the unweighted terms, so ``train_loss`` minus each
    weight times its term is exactly the mean L1; a term that is not logged (or a run whose
    weights are unknown while it logged terms) cannot be taken out.
    """
    loss = np.array([_number(r.get("train_loss")) for r in history])
    logged = [k for k, col in LOGGED_LOSS_TERMS.items() if any(col in r for r in history)]
    if weights is None:
        return loss, "the run's loss weights are unknown" if logged else None
    unlogged = [k for k in UNLOGGED_LOSS_TERMS if float(weights.get(k) or 0) > 0]
    if unlogged:
        return loss, f"{', '.join(unlogged)} not logged"
    for key in logged:
        term = np.array([_number(r.get(LOGGED_LOSS_TERMS[key])) for r in history])
        loss = loss - float(weights.get(key) or 0) * term
    return loss, None


def _number(value: Any) -> float:
    return float(value) if value is not None else np.nan


def plot_training_curves(
    history: Sequence[Mapping[str, Any]],
    path: str | Path,
    title: str | None = None,
    loss_weights: Mapping[str, Any] | None = None,
) -> Path:
    """Training curves from ``metrics.jsonl`` records: the training (and validation) loss,
    and the validation waveform and SBP/DBP/MAP MAE (mmHg) per epoch, with the best epoch.

    ``loss_weights`` (the run's training configuration) let the training line be the L1
    part of the training loss, which the validation loss measures (:func:`training_l1`);
    where it cannot be, the line is labelled as the whole loss."""
    path = figure_path(path)  # before drawing: a bad name leaves no figure made
    history = [r for r in history if "epoch" in r]
    if not history:
        raise ValueError("no epoch records to plot")
    epochs = np.array([r["epoch"] for r in history])

    def col(key: str) -> np.ndarray:
        return np.array([float(r[key]) if r.get(key) is not None else np.nan for r in history])

    has_val = any("val_mae" in r for r in history)
    fig, axes = new_figure(1, 2 if has_val else 1, figsize=(12 if has_val else 6.5, 4.2))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    # The validation loss is the plain L1 of the ABP channel; the training loss adds the
    # recipe's other terms (3 x the within-subject L1 by default), which would make the
    # validation line look far better than the training one: like is set against like.
    train, mixed = training_l1(history, loss_weights)
    ax.plot(
        epochs,
        train,
        color=COLORS["prediction"],
        lw=1.8,
        marker=".",
        label="training L1" if mixed is None else f"training loss (all terms; {mixed})",
    )
    if any("val_loss" in r for r in history):
        ax.plot(
            epochs,
            col("val_loss"),
            color=COLORS["reference"],
            lw=1.8,
            marker=".",
            label="validation L1",
        )
    if any("train_inverse_loss" in r for r in history):
        ax.plot(
            epochs,
            col("train_inverse_loss"),
            color=COLORS["linear"],
            lw=1.4,
            ls="--",
            marker=".",
            label="training inverse loss (ABP -> PPG)",
        )
    ax.set_yscale("log")
    # Plain numbers on the log axis (0.06, 0.1, 0.2), not 6 x 10^-2.
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("epoch")
    ax.set_ylabel(("L1 loss" if mixed is None else "loss") + " (normalised units, log scale)")
    ax.set_title("loss", fontsize=10, loc="left")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    best = history[-1].get("best_epoch")
    if has_val:
        ax = axes[1]
        ax.plot(
            epochs, col("val_mae"), color=COLORS["prediction"], lw=2.0, marker=".", label="waveform"
        )
        for key, label in BP_LABELS.items():
            # Marked: a run after its first epoch has one point, which a bare line hides.
            ax.plot(
                epochs, col(f"val_{key}_mae"), color=COLORS[key], lw=1.4, marker=".", label=label
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation MAE (mmHg)")
        ax.set_title("validation error (calibration-free)", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        if best:
            ax.axvline(best, color=COLORS["reference"], ls="--", lw=1.0)
            right = best > 0.5 * (epochs.min() + epochs.max())
            ax.annotate(
                f"best epoch {best}",
                xy=(best, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(-4 if right else 4, -12),
                textcoords="offset points",
                ha="right" if right else "left",
                fontsize=8,
            )
        ax.legend(fontsize=8, ncol=2)
    for a in axes:
        # min_n_ticks=1: with one epoch in view the default (2) fell back to 0.96, 0.98, ...
        a.xaxis.set_major_locator(MaxNLocator("auto", integer=True, min_n_ticks=1))
    if title:
        fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_recording(
    fs: float,
    source: np.ndarray,
    output: np.ndarray,
    path: str | Path,
    *,
    direction: str = "ppg2abp",
    source_label: str = "input PPG (a.u.)",
    reference: np.ndarray | None = None,
    beats: Any = None,
    reference_beats: Any = None,
    gaps: Sequence[tuple[float, float]] = (),
    calibration_s: tuple[float, float] | None = None,
    zoom_s: tuple[float, float] | None = None,
    title: str | None = None,
    origin_s: float = 0.0,
    source_gaps: Sequence[tuple[float, float]] | None = None,
    source_lag_s: float = 0.0,
) -> Path:
    """A whole reconstructed recording: the input (top), the reconstruction over the whole
    recording with per-beat SBP/DBP (middle), and a zoom of a few seconds (bottom).

    ``source`` and ``output`` (and ``reference``) are ``(n,)`` at ``fs`` Hz; the output is
    ABP in mmHg for ``ppg2abp`` or z-scored PPG for ``abp2ppg``. ``beats``: an object with
    ``peak_s``, ``onset_s``, ``sbp``, ``dbp`` arrays (:class:`innpar_freia.reconstruct.Beats`).
    ``reference_beats``: the same for ``reference``; the middle panel draws per-beat SBP and
    DBP as lines over a faint waveform. ``gaps``: ``(start_s, end_s)`` spans that were not
    reconstructed (shaded red). ``calibration_s``: the calibration segment (shaded green).
    Times are seconds from the first sample, which is at ``origin_s`` on the input's clock
    (the axis label says so: a clock at a Unix time would make unreadable tick labels).

    ``gaps``, ``calibration_s`` and ``zoom_s`` are on the output's clock; the input panel is
    shaded on its own: the output at ``t`` was made from the input at ``t + source_lag_s``
    (with ``--ppg-delay D``: ``D`` for ``ppg2abp``, ``-D`` for ``abp2ppg``), and
    ``source_gaps`` are the input's gaps (default: ``gaps`` moved by ``source_lag_s``). One
    list for both panels shaded a PPG gap at 100-103 s at 99.47-102.97 s with a 0.28 s delay.
    """
    path = figure_path(path)  # before drawing: a bad name leaves no figure made
    source = np.asarray(source, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64)
    n = output.size
    t = np.arange(n) / fs
    duration = n / fs
    if zoom_s is None:
        zoom_s = _default_zoom(output, fs)
    abp = direction == "ppg2abp"
    out_label = "reconstructed ABP" if abp else "reconstructed PPG"
    out_units = "ABP (mmHg)" if abp else "PPG (z-score)"
    fig, axes = new_figure(3, 1, figsize=(13, 8.6), gridspec_kw={"height_ratios": [1.0, 1.6, 1.6]})
    top, mid, bottom = axes
    top.plot(t, source, color=COLORS["input"], lw=0.5)
    top.set_ylabel(source_label)
    top.set_xlim(0, duration)
    top.set_title("input", fontsize=10, loc="left")
    ref_label = "reference ABP"
    if reference is not None:
        # Only where it is a pressure trace (as the comparison scores it): a saturated
        # channel at 6.8 mmHg was drawn under the reconstruction as if it were the truth.
        valid, _ = detect_gaps(np.asarray(reference, dtype=np.float64), fs, "abp")
        reference = np.where(valid, reference, np.nan)
        if not valid.any():
            ref_label += " (none valid: flat, missing or out of 20-250 mmHg)"
    # Over minutes a waveform is a solid band; per-beat values (dots) and their running
    # median (lines) are what a reader can follow.
    if reference is not None:
        mid.plot(t, reference, color=COLORS["reference"], lw=0.3, alpha=0.2)
    mid.plot(t, output, color=COLORS["prediction"], lw=0.3, alpha=0.25)
    # The reference's SBP and DBP share its colour: they differ by line style.
    drew_beats = False
    for b, who, color_s, color_d, ls_s, ls_d in (
        (reference_beats, "reference", COLORS["reference"], COLORS["reference"], "--", ":"),
        (beats if abp else None, "reconstructed", COLORS["sbp"], COLORS["dbp"], "-", "-"),
    ):
        if b is None or not len(b.sbp):
            continue
        drew_beats = True
        for values, times, name, color, ls in (
            (b.sbp, b.peak_s, "SBP", color_s, ls_s),
            (b.dbp, b.onset_s, "DBP", color_d, ls_d),
        ):
            mid.plot(times, values, ".", ms=2.0, color=color, alpha=0.35)
            tt, vv = running_median(times, values)
            mid.plot(tt, vv, ls, color=color, lw=1.5, label=f"{who} {name}")
    lag = float(source_lag_s)
    if source_gaps is None:
        source_gaps = [(g0 + lag, g1 + lag) for g0, g1 in gaps]
    if calibration_s is not None:
        for ax, at in ((top, lag), (mid, 0.0)):
            ax.axvspan(
                calibration_s[0] + at, calibration_s[1] + at, color=COLORS["dbp"], alpha=0.10, lw=0
            )
        mid.annotate(
            "calibration",
            xy=(calibration_s[0], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -11),
            textcoords="offset points",
            fontsize=8,
            color=COLORS["dbp"],
        )
    mid.set_xlim(0, duration)
    mid.set_ylabel(out_units)
    frac = float(np.isfinite(output).mean()) if n else 0.0
    # A reconstructed PPG without a reference has no beats drawn: its title said it had.
    beats_phrase = (
        f"per-beat SBP and DBP (dots) with their {RUNNING_BEATS}-beat running median (lines); "
        if drew_beats
        else ""
    )
    mid.set_title(
        f"whole recording: {duration:.0f} s, {100 * frac:.1f} % reconstructed; {beats_phrase}"
        "shaded pink: gaps, not reconstructed",
        fontsize=10,
        loc="left",
    )
    z0, z1 = zoom_s
    for ax, spans, at in ((top, source_gaps, lag), (mid, gaps, 0.0)):
        for g0, g1 in spans:
            ax.axvspan(g0, g1, color=COLORS["gap"], alpha=0.6, lw=0)
        ax.axvspan(z0 + at, z1 + at, color=COLORS["prediction"], alpha=0.08, lw=0)
        ax.grid(alpha=0.3)
    sel = (t >= z0) & (t < z1)
    if reference is not None:
        bottom.plot(t[sel], reference[sel], color=COLORS["reference"], lw=1.4, label=ref_label)
    bottom.plot(t[sel], output[sel], color=COLORS["prediction"], lw=1.3, label=out_label)
    if beats is not None and abp and len(beats.sbp):
        inz = (beats.peak_s >= z0) & (beats.peak_s < z1)
        bottom.plot(
            beats.peak_s[inz], beats.sbp[inz], "x", color=COLORS["sbp"], ms=6, label="beat SBP"
        )
        inz = (beats.onset_s >= z0) & (beats.onset_s < z1)
        bottom.plot(
            beats.onset_s[inz], beats.dbp[inz], "x", color=COLORS["dbp"], ms=6, label="beat DBP"
        )
    for g0, g1 in gaps:
        if g1 > z0 and g0 < z1:
            bottom.axvspan(max(g0, z0), min(g1, z1), color=COLORS["gap"], alpha=0.6, lw=0)
    bottom.set_xlim(z0, z1)
    bottom.set_xlabel(
        "time (s)"
        if origin_s == 0
        else f"time (s) from the first sample, at {seconds_text(origin_s)} s"
    )
    bottom.set_ylabel(out_units)
    bottom.set_title(f"zoom {z0:.0f}-{z1:.0f} s (the shaded span above)", fontsize=10, loc="left")
    bottom.grid(alpha=0.3)
    # Room above the data for the legends, which covered the highest peaks.
    for ax in (mid, bottom):
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.2 * (hi - lo))
    bottom.legend(fontsize=8, loc="upper right", ncol=4)
    if mid.get_legend_handles_labels()[0]:
        mid.legend(fontsize=8, loc="upper right", ncol=4)
    if title:
        fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    return save_figure(fig, path)


def running_median(
    times: np.ndarray, values: np.ndarray, beats: int | None = None, max_gap_s: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Running median over ``beats`` consecutive beats (centred; shorter at the ends), with
    NaN inserted where beats are more than ``max_gap_s`` apart so that lines break at gaps."""
    beats = beats or RUNNING_BEATS
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    half = beats // 2
    med = np.array([np.median(values[max(0, i - half) : i + half + 1]) for i in range(values.size)])
    breaks = np.flatnonzero(np.diff(times) > max_gap_s) + 1
    return np.insert(times, breaks, np.nan), np.insert(med, breaks, np.nan)


def _default_zoom(output: np.ndarray, fs: float, seconds: float = 10.0) -> tuple[float, float]:
    """The first ``seconds`` span after the middle of the recording that is fully
    reconstructed (or the middle itself)."""
    n = output.size
    width = min(n, round(seconds * fs))
    ok = np.isfinite(output)
    for s in list(range(n // 2, n - width + 1, width // 2 or 1)) + list(
        range(0, n // 2, width // 2 or 1)
    ):
        if ok[s : s + width].all():
            return s / fs, (s + width) / fs
    s = max(0, n // 2 - width // 2)
    return s / fs, (s + width) / fs
