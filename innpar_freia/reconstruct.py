"""Whole recordings of any length and rate through a window model: gaps, overlapping windows,
cross-fade stitching, per-beat blood pressure, and calibration from a cuff or a reference.

Everything here is a pure array function with an explicit ``fs`` in Hz; reading and writing
files is :mod:`innpar_freia.reconstruct_file`. The model enters as a ``predict`` callable
that maps windows ``(n, L)`` at the model's rate to windows ``(n, L)``, e.g.
:meth:`Checkpoint.predict_abp` (raw PPG in, mmHg out; it z-scores each window itself).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import signal as sps

from innpar_freia.errors import DataError
from innpar_freia.metrics import (
    BP_NAMES,
    Calibration,
    calibration_for,
    error_stats,
    waveform_stats,
)
from innpar_freia.signal import bp_values_batch, prominence_threshold, resample

DIRECTIONS = ("ppg2abp", "abp2ppg")
DEFAULT_OVERLAP = 0.5
# A run of identical samples this long (s) is a flat line (monitor hold, lost contact).
FLAT_SECONDS = 1.0
# A block of FLAT_SECONDS whose peak-to-peak is below this fraction of the recording's median
# block is "flat" too: a probe off the finger leaves a near-constant trace with some noise.
FLAT_RELATIVE = 0.02
# Samples this close (s) to a gap are left out too: a probe coming off or back on, or a
# monitor's invalid-data marker, corrupts the trace around the flagged stretch itself.
GAP_MARGIN = 0.25
# ABP outside this range (mmHg) is not a pressure trace (transducer open, flushed, damped);
# the bp-benchmark cleaning limits.
ABP_RANGE = (20.0, 250.0)
# Mirror-padding of each valid run, as a fraction of the window (see reconstruct_array).
EDGE_PAD = 0.125
# Beats longer than this (s) are pauses, not beats (30 bpm).
MAX_BEAT_SECONDS = 2.0

GAP_REASONS = {1: "missing (NaN)", 2: "flat line / lost contact", 3: "ABP out of 20-250 mmHg"}

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class Gap:
    """Samples ``start:stop`` (at the recording's rate) that are not reconstructed."""

    start: int
    stop: int
    reason: str

    def to_dict(self, fs: float) -> dict[str, Any]:
        return {
            "start_s": round(self.start / fs, 4),
            "end_s": round(self.stop / fs, 4),
            "duration_s": round((self.stop - self.start) / fs, 4),
            "reason": self.reason,
        }


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of every run of ``True`` in a 1-D boolean array."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def detect_gaps(
    x: np.ndarray,
    fs: float,
    kind: str = "ppg",
    *,
    flat_seconds: float = FLAT_SECONDS,
    flat_relative: float = FLAT_RELATIVE,
    margin_seconds: float = GAP_MARGIN,
) -> tuple[np.ndarray, list[Gap]]:
    """Samples of a 1-D signal that must not be reconstructed, and why.

    Invalid: non-finite samples; runs of identical values lasting ``flat_seconds``; blocks
    of ``flat_seconds`` whose peak-to-peak is below ``flat_relative`` times the recording's
    median block (lost contact); for ``kind="abp"`` (mmHg) values outside 20-250 mmHg;
    and ``margin_seconds`` on either side of each of these. Returns ``(valid, gaps)``: a
    boolean mask ``(n,)`` and the invalid runs with reasons.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {x.shape}")
    n = x.size
    code = np.zeros(n, dtype=np.int8)
    finite = np.isfinite(x)
    code[~finite] = 1
    block = max(2, round(flat_seconds * fs))
    # Exactly repeated values: ``same[i]`` says x[i+1] == x[i]; a run of block-1 equal steps
    # is block identical samples.
    same = np.zeros(n, dtype=bool)
    same[1:] = (np.diff(x) == 0) & finite[1:] & finite[:-1]
    for a, b in runs(same[1:]):
        if b - a + 1 >= block:
            code[a : b + 1][code[a : b + 1] == 0] = 2
    n_blocks = n // block
    if n_blocks:
        blocks = x[: n_blocks * block].reshape(n_blocks, block)
        usable = np.all(np.isfinite(blocks), axis=1)
        ptp = np.where(usable, np.ptp(np.where(usable[:, None], blocks, 0.0), axis=1), np.nan)
        typical = np.nanmedian(ptp[ptp > 0]) if np.any(ptp > 0) else 0.0
        if typical > 0:
            low = np.flatnonzero(usable & (ptp < flat_relative * typical))
            for i in low:
                seg = code[i * block : (i + 1) * block]
                seg[seg == 0] = 2
    if kind == "abp":
        out = finite & ((x < ABP_RANGE[0]) | (x > ABP_RANGE[1]))
        code[out & (code == 0)] = 3
    elif kind != "ppg":
        raise ValueError(f"kind must be 'ppg' or 'abp', not {kind!r}")
    margin = round(margin_seconds * fs)
    if margin:
        # Widen every gap (in order of the codes' severity) into the valid samples beside it.
        for value in GAP_REASONS:
            for a, b in runs(code == value):
                for lo, hi in ((max(0, a - margin), a), (b, min(n, b + margin))):
                    seg = code[lo:hi]
                    seg[seg == 0] = value
    gaps = []
    for value, reason in GAP_REASONS.items():
        gaps += [Gap(a, b, reason) for a, b in runs(code == value)]
    gaps.sort(key=lambda g: g.start)
    return code == 0, gaps


def crossfade_weights(length: int) -> np.ndarray:
    """Stitching weights of one window ``(length,)``: ``sin^2`` over the window, so that two
    windows overlapping by half sum to ~1 and each window fades out where the next fades in.
    Never exactly 0, so a sample covered by one window only keeps that window's value."""
    return np.sin(np.pi * (np.arange(length) + 0.5) / length) ** 2


def window_starts(n: int, length: int, hop: int) -> np.ndarray:
    """Starts of windows of ``length`` every ``hop`` samples covering ``0..n`` (the last one
    ends exactly at ``n``); empty when ``n < length``."""
    if n < length:
        return np.empty(0, dtype=np.int64)
    starts = list(range(0, n - length + 1, max(1, hop)))
    if starts[-1] != n - length:
        starts.append(n - length)
    return np.asarray(starts, dtype=np.int64)


def stitch(windows: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Overlap-add ``windows (k, L)`` placed at ``starts`` into one signal ``(n,)`` with
    :func:`crossfade_weights`, normalised by the summed weights (a weighted average)."""
    windows = np.asarray(windows, dtype=np.float64)
    length = windows.shape[1]
    w = crossfade_weights(length)
    acc = np.zeros(n)
    wsum = np.zeros(n)
    for s, win in zip(starts, windows, strict=True):
        acc[s : s + length] += w * win
        wsum[s : s + length] += w
    out = np.full(n, np.nan)
    covered = wsum > 0
    out[covered] = acc[covered] / wsum[covered]
    return out


@dataclass
class Reconstruction:
    """A reconstructed recording at the input's rate.

    ``signal`` ``(n,)``: ABP in mmHg (``ppg2abp``) or z-scored PPG (``abp2ppg``), NaN where
    nothing was reconstructed; ``valid`` ``(n,)`` marks reconstructed samples.
    """

    signal: np.ndarray
    valid: np.ndarray
    fs: float
    direction: str
    gaps: list[Gap]
    n_windows: int
    delay_s: float = 0.0
    calibration: Calibration | None = None

    @property
    def units(self) -> str:
        return "mmHg" if self.direction == "ppg2abp" else "z-scored PPG"

    @property
    def reconstructed_fraction(self) -> float:
        return float(self.valid.mean()) if self.valid.size else 0.0


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or edge-pad a resampled segment to exactly ``n`` samples (rounding of the rate
    ratio can leave one sample more or less)."""
    if y.size >= n:
        return y[:n]
    return np.pad(y, (0, n - y.size), mode="edge")


def reconstruct_array(
    x: np.ndarray,
    fs: float,
    predict: Predictor,
    model_fs: float,
    window_length: int,
    *,
    direction: str = "ppg2abp",
    overlap: float = DEFAULT_OVERLAP,
    delay_s: float = 0.0,
) -> Reconstruction:
    """Reconstruct a whole 1-D recording ``x`` (PPG in any units, or ABP in mmHg) at ``fs``.

    Each run of valid samples (see :func:`detect_gaps`) is resampled to ``model_fs``, cut
    into windows of ``window_length`` overlapping by ``overlap``, passed through
    ``predict`` (which normalises each window as in training and de-normalises its output),
    stitched with a cross-fade (:func:`stitch`) and resampled back to ``fs``. Each run is
    mirror-padded by :data:`EDGE_PAD` of a window first (when longer than one window), so its
    first and last samples do not come from a window's edge only. Gaps and runs shorter than
    one window are not reconstructed across: the output is NaN there.

    ``delay_s``: how much the PPG trails the ABP in this recording (the pulse-transit and
    monitor delay the training windows were aligned by). The output is shifted by it so that
    reconstructed ABP is on the ABP's time axis (``ppg2abp``) or reconstructed PPG on the
    PPG's (``abp2ppg``); samples shifted in from outside the recording are NaN, and the gaps
    are reported on the output's time axis.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), but is {overlap}")
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    kind = "ppg" if direction == "ppg2abp" else "abp"
    valid_in, gaps = detect_gaps(x, fs, kind)
    out = np.full(n, np.nan)
    hop = max(1, round(window_length * (1.0 - overlap)))
    n_windows = 0
    for a, b in runs(valid_in):
        seg = resample(x[a:b], fs, model_fs, padtype="line")
        if seg.size < window_length:
            short = f"valid run shorter than one {window_length / model_fs:g} s window"
            gaps.append(Gap(a, b, short))
            continue
        # The first and last samples of a run are covered by one window only, near its edge,
        # where networks are least reliable (zero padding of the convolutions): mirror the
        # run by EDGE_PAD of a window at both ends so that they fall inside a window.
        pad = min(round(EDGE_PAD * window_length), seg.size - 1) if seg.size > window_length else 0
        padded = np.pad(seg, pad, mode="reflect") if pad else seg
        starts = window_starts(padded.size, window_length, hop)
        windows = np.stack([padded[s : s + window_length] for s in starts])
        pred = np.asarray(predict(windows), dtype=np.float64)
        if pred.shape != windows.shape:
            raise ValueError(f"predict returned shape {pred.shape} for windows {windows.shape}")
        n_windows += len(starts)
        stitched = stitch(pred, starts, padded.size)[pad : pad + seg.size]
        out[a:b] = _fit_length(resample(stitched, model_fs, fs, padtype="line"), b - a)
    gaps.sort(key=lambda g: g.start)
    shift = min(round(delay_s * fs), n)
    if shift:
        shifted = np.full(n, np.nan)
        # ppg2abp: ABP at t comes from PPG at t + delay; abp2ppg: PPG at t + delay from ABP at t.
        sign = -1 if direction == "ppg2abp" else 1
        if direction == "ppg2abp":
            shifted[: n - shift] = out[shift:]
            edge = Gap(n - shift, n, "beyond the input's end after the --ppg-delay shift")
        else:
            shifted[shift:] = out[: n - shift]
            edge = Gap(0, shift, "before the input's start after the --ppg-delay shift")
        moved = [
            Gap(max(0, g.start + sign * shift), min(n, g.stop + sign * shift), g.reason)
            for g in gaps
        ]
        gaps = sorted([g for g in moved if g.stop > g.start] + [edge], key=lambda g: g.start)
        out = shifted
    return Reconstruction(
        signal=out,
        valid=np.isfinite(out),
        fs=fs,
        direction=direction,
        gaps=gaps,
        n_windows=n_windows,
        delay_s=shift / fs,
    )


# ----------------------------------------------------------------------------- beats


@dataclass
class Beats:
    """Per-beat blood pressure of an ABP signal (mmHg): one row per beat, from one diastolic
    foot to the next. Times in seconds from the start of the recording."""

    onset_s: np.ndarray
    peak_s: np.ndarray
    sbp: np.ndarray
    dbp: np.ndarray
    map: np.ndarray
    hr_bpm: np.ndarray
    columns: ClassVar[tuple[str, ...]] = (
        "onset_s",
        "peak_s",
        "sbp_mmHg",
        "dbp_mmHg",
        "map_mmHg",
        "hr_bpm",
    )

    def __len__(self) -> int:
        return int(self.sbp.size)

    def rows(self) -> np.ndarray:
        """``(beats, 6)`` in the order of :attr:`columns`."""
        return np.column_stack(
            [self.onset_s, self.peak_s, self.sbp, self.dbp, self.map, self.hr_bpm]
        )

    def between(self, t0: float, t1: float) -> Beats:
        """The beats whose systolic peak lies in ``[t0, t1)`` seconds."""
        sel = (self.peak_s >= t0) & (self.peak_s < t1)
        return Beats(*(getattr(self, k)[sel] for k in _BEAT_FIELDS))

    def summary(self) -> dict[str, Any]:
        if not len(self):
            return {"n": 0}
        return {
            "n": len(self),
            "sbp_median": float(np.median(self.sbp)),
            "dbp_median": float(np.median(self.dbp)),
            "map_median": float(np.median(self.map)),
            "hr_median": float(np.median(self.hr_bpm)),
        }


_BEAT_FIELDS = ("onset_s", "peak_s", "sbp", "dbp", "map", "hr_bpm")


def beat_prominence(x: np.ndarray, fs: float, window_seconds: float = 5.0) -> float:
    """Prominence (mmHg) for beat detection in a long ABP run: the protocol's per-window
    rule (:func:`innpar_freia.signal.prominence_threshold`) on ``window_seconds`` tiles, median
    over tiles, so that slow level changes over minutes do not inflate it."""
    tile = max(1, round(window_seconds * fs))
    starts = range(0, max(1, x.size - tile + 1), tile)
    values = [prominence_threshold(x[s : s + tile]) for s in starts]
    return float(np.median(values))


def detect_beats(abp: np.ndarray, fs: float) -> Beats:
    """Beats of an ABP signal ``(n,)`` in mmHg (NaN = not available).

    In each finite run, diastolic feet are the protocol's troughs (``find_peaks`` on
    ``-x``, 0.3 s apart, prominence from :func:`beat_prominence`); a beat runs from one foot
    to the next (at most 2 s): DBP is the foot's value, SBP the maximum in the beat, MAP the
    mean over the beat, heart rate 60 / beat duration.
    """
    abp = np.asarray(abp, dtype=np.float64)
    cols: dict[str, list[float]] = {k: [] for k in _BEAT_FIELDS}
    for a, b in runs(np.isfinite(abp)):
        x = abp[a:b]
        if x.size < round(0.6 * fs):
            continue
        troughs = sps.find_peaks(
            -x, distance=max(1, int(0.3 * fs)), prominence=beat_prominence(x, fs)
        )[0]
        for t0, t1 in itertools.pairwise(troughs):
            if (t1 - t0) / fs > MAX_BEAT_SECONDS:
                continue
            beat = x[t0:t1]
            peak = int(np.argmax(beat))
            cols["onset_s"].append((a + t0) / fs)
            cols["peak_s"].append((a + t0 + peak) / fs)
            cols["sbp"].append(float(beat[peak]))
            cols["dbp"].append(float(x[t0]))
            cols["map"].append(float(beat.mean()))
            cols["hr_bpm"].append(60.0 * fs / (t1 - t0))
    return Beats(*(np.asarray(cols[k], dtype=np.float64) for k in _BEAT_FIELDS))


# ----------------------------------------------------------------------------- calibration


def parse_cuff(text: str) -> tuple[float, float]:
    """``"120/80"`` -> ``(120.0, 80.0)`` mmHg, with a clear error for anything else."""
    parts = str(text).replace(" ", "").split("/")
    try:
        if len(parts) != 2:
            raise ValueError
        sbp, dbp = float(parts[0]), float(parts[1])
    except ValueError:
        raise DataError(
            f"calibration must be a cuff reading SBP/DBP in mmHg such as 120/80, not {text!r}"
        ) from None
    if not (ABP_RANGE[0] <= dbp < sbp <= ABP_RANGE[1]):
        raise DataError(
            f"cuff reading {text!r} is not plausible: need {ABP_RANGE[0]:g} <= DBP < SBP <= "
            f"{ABP_RANGE[1]:g} mmHg"
        )
    return sbp, dbp


def calibrate_recording(
    pred: np.ndarray,
    fs: float,
    start_s: float,
    duration_s: float,
    *,
    cuff: tuple[float, float] | None = None,
    reference: np.ndarray | None = None,
    mode: str = "offset-scale",
) -> tuple[Calibration, dict[str, Any]]:
    """The protocol's calibration rule (:func:`innpar_freia.metrics.calibration_for`) from
    one segment ``[start_s, start_s + duration_s)`` of a reconstructed ABP ``pred`` (mmHg).

    The prediction's level is its mean over the segment and its SBP/DBP the medians of its
    beats there. The target is a cuff reading ``(SBP, DBP)`` (level from the prediction's
    shape, see ``calibration_for``), or a reference ABP ``(n,)`` in mmHg on the same time
    axis: its valid samples' mean level and its beats' median SBP/DBP in the segment.
    Returns the calibration and a JSON-ready description of what it used.
    """
    if (cuff is None) == (reference is None):
        raise ValueError("give exactly one of cuff and reference")
    n = pred.size
    a = max(0, round(start_s * fs))
    b = min(n, round((start_s + duration_s) * fs))
    t0, t1 = a / fs, b / fs
    if b <= a:
        raise DataError(
            f"the calibration segment starts at {start_s:g} s, after the recording's end "
            f"({n / fs:g} s)"
        )
    seg = pred[a:b]
    beats = detect_beats(pred, fs).between(t0, t1)
    if not np.any(np.isfinite(seg)) or len(beats) == 0:
        raise DataError(
            f"no reconstructed beats between {t0:g} and {t1:g} s to calibrate with; the "
            "recording has a gap there: choose another time with --calibration-at"
        )
    pred_sbp, pred_dbp = float(np.median(beats.sbp)), float(np.median(beats.dbp))
    pred_level = float(np.nanmean(seg))
    info: dict[str, Any] = {
        "mode": mode,
        "segment_s": [round(t0, 4), round(t1, 4)],
        "pred_beats": len(beats),
        "pred_sbp": pred_sbp,
        "pred_dbp": pred_dbp,
        "pred_level": pred_level,
    }
    if cuff is not None:
        ref_sbp, ref_dbp = cuff
        ref_level = None
        info.update({"source": "cuff", "ref_sbp": ref_sbp, "ref_dbp": ref_dbp})
    else:
        ref = np.asarray(reference, dtype=np.float64)
        valid, _ = detect_gaps(ref, fs, "abp")
        ref = np.where(valid, ref, np.nan)
        ref_beats = detect_beats(ref, fs).between(t0, t1)
        if len(ref_beats) == 0:
            raise DataError(
                f"the reference ABP has no valid beats between {t0:g} and {t1:g} s; choose "
                "another time with --calibration-at"
            )
        ref_sbp, ref_dbp = float(np.median(ref_beats.sbp)), float(np.median(ref_beats.dbp))
        ref_level = float(np.nanmean(ref[a:b]))
        info.update(
            {
                "source": "reference ABP",
                "ref_beats": len(ref_beats),
                "ref_sbp": ref_sbp,
                "ref_dbp": ref_dbp,
                "ref_level": ref_level,
            }
        )
    cal = calibration_for(pred_level, pred_sbp, pred_dbp, ref_sbp, ref_dbp, ref_level, mode)
    info.update(cal.to_dict())
    return cal, info


# ----------------------------------------------------------------------------- reference


def compare_with_reference(
    pred: np.ndarray,
    ref: np.ndarray,
    fs: float,
    window_seconds: float = 5.0,
    exclude: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Protocol metrics of a reconstructed ABP ``(n,)`` against a reference ABP ``(n,)``
    (both mmHg at ``fs``) on consecutive ``window_seconds`` windows where both are valid,
    leaving out windows that touch ``exclude`` (the calibration segment, seconds)."""
    valid_ref, _ = detect_gaps(ref, fs, "abp")
    ok = valid_ref & np.isfinite(pred)
    length = round(window_seconds * fs)
    keep = []
    for s in range(0, pred.size - length + 1, length):
        if exclude is not None and s / fs < exclude[1] and (s + length) / fs > exclude[0]:
            continue
        if ok[s : s + length].all():
            keep.append(s)
    out: dict[str, Any] = {"window_seconds": window_seconds, "n_windows": len(keep)}
    if not keep:
        return out
    p = np.stack([pred[s : s + length] for s in keep])
    r = np.stack([ref[s : s + length] for s in keep])
    out["waveform"] = waveform_stats(p, r)
    bp_p, bp_r = bp_values_batch(p, fs), bp_values_batch(r, fs)
    for j, name in enumerate(BP_NAMES):
        out[name] = error_stats(bp_p[:, j], bp_r[:, j])
    return out
