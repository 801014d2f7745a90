"""Whole recordings of any length and rate through a window model: gaps, overlapping windows,
cross-fade stitching, resampling back to the recording's rate.

Everything here is a pure array function with an explicit ``fs`` in Hz; per-beat blood
pressure and calibration are :mod:`innpar_freia.recording_bp`, reading and writing files
:mod:`innpar_freia.reconstruct_file`. The model enters as a ``predict`` callable
that maps windows ``(n, L)`` at the model's rate to windows ``(n, L)``, e.g.
:meth:`Checkpoint.predict_abp` (raw PPG in, mmHg out; it z-scores each window itself).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from innpar_freia.metrics import Calibration
from innpar_freia.reconstruct_limits import RANGES, option_name
from innpar_freia.signal import check_rate, rate_ratio, real_numbers, resample_by

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
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Mirror-padding of each valid run, as a fraction of the window (see reconstruct_array).
EDGE_PAD = 0.125
# Windows predicted and stitched at a time (reconstruct_array's block_windows): a multiple of
# Checkpoint.predict_abp/predict_ppg's batch of 512, so the network sees the batches it saw
# when a run's windows went in at once.
BLOCK_WINDOWS = 2048

GAP_REASONS = {
    1: "missing (NaN or inf)",
    2: "flat line / lost contact",
    3: "ABP out of 20-250 mmHg",
    # Finite, but not representable where the model runs (float32): a logger's overflow.
    4: "beyond float32's range (|x| > 3.4e38)",
}

START_REASON = "a monitor's start-up transient"
# How a gap shifted in by the delay names it: "delay_s (--ppg-delay)", the summary's reader
# may have given either.
DELAY = option_name("delay_s")

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class Gap:
    """Samples ``start:stop`` (at the recording's rate) that are not reconstructed."""

    start: int
    stop: int
    reason: str

    def to_dict(self, fs: float, origin_s: float = 0.0) -> dict[str, Any]:
        """Start and end in seconds on the clock where sample 0 is at ``origin_s``."""
        return {
            "start_s": round(origin_s + self.start / fs, 4),
            "end_s": round(origin_s + self.stop / fs, 4),
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
    # Values beyond float32's range are invalid as NaN is (as the importers have them): the
    # model runs in float32, and a PPG of such values ended in a traceback.
    finite = np.isfinite(x) & (np.abs(x) <= FLOAT32_MAX)
    code[~np.isfinite(x)] = 1
    code[np.isfinite(x) & ~finite] = 4  # was "missing (NaN or inf)" for a value of 1e40
    x = np.where(finite, x, np.nan)
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
    out = np.full(n, np.nan)
    pieces = _stitched(starts, windows.shape[1], max(1, len(starts)), lambda i, j: windows[i:j])
    for a, values in pieces:
        out[a : a + values.size] = values
    return out


def _stitched(
    starts: np.ndarray,
    length: int,
    block: int,
    windows_of: Callable[[int, int], np.ndarray],
) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`stitch`'s overlap-add, ``block`` windows at a time: ``windows_of(i, j)`` gives
    windows ``i:j`` ``(j - i, length)`` (predicted only then), and ``(a, values)`` pieces
    of the stitched signal come out in order as soon as no later window reaches them (NaN
    where no window does). Only one block's windows and the samples they reach are held,
    not every window of a run (twice the run at an overlap of one half): the same sums in
    the same order, so the same values as stitching all at once. ``starts`` increasing
    beyond the first block."""
    w = crossfade_weights(length)
    lo = 0  # the first sample not yet given out; acc[0] and wsum[0] are at it
    acc = wsum = np.zeros(0)
    for i in range(0, len(starts), block):
        j = min(i + block, len(starts))
        windows = np.asarray(windows_of(i, j), dtype=np.float64)
        reach = int(np.max(starts[i:j])) + length - lo
        if reach > acc.size:
            acc = np.concatenate([acc, np.zeros(reach - acc.size)])
            wsum = np.concatenate([wsum, np.zeros(reach - wsum.size)])
        for s, win in zip(starts[i:j] - lo, windows, strict=True):
            acc[s : s + length] += w * win
            wsum[s : s + length] += w
        done = int(starts[j]) - lo if j < len(starts) else acc.size
        values = np.full(done, np.nan)
        covered = wsum[:done] > 0
        values[covered] = acc[:done][covered] / wsum[:done][covered]
        yield lo, values
        acc, wsum, lo = acc[done:], wsum[done:], lo + done


def _predicted_windows(
    seg: np.ndarray, pad: int, starts: np.ndarray, length: int, predict: Predictor
) -> Callable[[int, int], np.ndarray]:
    """``windows_of`` for :func:`_stitched`: windows ``i:j`` of ``seg`` mirror-padded by
    ``pad`` (cut at ``starts``), through ``predict``."""

    def predicted(i: int, j: int) -> np.ndarray:
        lo = int(starts[i])
        padded = _reflected(seg, pad, lo, int(starts[j - 1]) + length)
        windows = np.stack([padded[s - lo : s - lo + length] for s in starts[i:j]])
        pred = np.asarray(predict(windows), dtype=np.float64)
        if pred.shape != windows.shape:
            raise ValueError(f"predict returned shape {pred.shape} for windows {windows.shape}")
        return pred

    return predicted


def _reflected(seg: np.ndarray, pad: int, lo: int, hi: int) -> np.ndarray:
    """``np.pad(seg, pad, mode="reflect")[lo:hi]`` without padding the whole of ``seg``
    (``pad < seg.size``)."""
    at = np.abs(np.arange(lo - pad, hi - pad))
    last = seg.size - 1
    return seg[np.where(at > last, 2 * last - at, at)]


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
    # The gaps on the input's clock, before the delay_s shift moved them onto the output's
    # (None: no shift, they are ``gaps``): what a figure shades on the input it draws.
    input_gaps: list[Gap] | None = None

    @property
    def units(self) -> str:
        return "mmHg" if self.direction == "ppg2abp" else "z-scored PPG"

    @property
    def reconstructed_fraction(self) -> float:
        return float(self.valid.mean()) if self.valid.size else 0.0


def implausible_fraction(result: Reconstruction) -> float:
    """The fraction of the reconstructed ABP outside :data:`ABP_RANGE` (0 for ``abp2ppg``):
    not a pressure trace there (an undertrained checkpoint, or an artefact of the PPG)."""
    valid = int(np.count_nonzero(result.valid))
    if result.direction != "ppg2abp" or not valid:
        return 0.0
    # Counted in place (NaN is neither below nor above): a copy of the reconstructed samples
    # was the recording's size again.
    x = result.signal
    outside = np.count_nonzero(result.valid & ((x < ABP_RANGE[0]) | (x > ABP_RANGE[1])))
    return outside / valid


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or edge-pad a resampled segment to exactly ``n`` samples (rounding of the rate
    ratio can leave one sample more or less)."""
    if y.size >= n:
        return y[:n]
    return np.pad(y, (0, n - y.size), mode="edge")


def _seconds(name: str, value: Any, low: float, high: float = math.inf) -> float:
    """``value`` (s) as a float, or a ``ValueError`` naming ``name`` when it is not a finite
    number from ``low`` to ``high``: a negative or NaN delay failed inside numpy ("could not
    broadcast", "cannot convert float NaN to integer"), and a negative start margin left out
    all of the recording but its last seconds, without a word."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not (low <= value <= high and math.isfinite(value))  # NaN fails it too
    ):
        bounds = f"from {low:g} to {high:g}" if high < math.inf else f"of at least {low:g}"
        raise ValueError(f"{name} must be a finite number of seconds {bounds}, not {value!r}")
    return float(value)


def min_samples(fs: float, model_fs: float, window_length: int, start_margin_s: float = 0.0) -> int:
    """The fewest samples at ``fs`` a gapless recording must hold for
    :func:`reconstruct_array` (with that ``start_margin_s``) to reconstruct any of it: the
    start margin, then a run that resamples to ``model_fs`` in at least one window of
    ``window_length`` (``resample_poly`` makes ``ceil(m * up / down)`` samples of ``m``).
    A recording one window long passed a check against the window alone, and had nothing
    reconstructed: its first 0.25 s are left out."""
    to_model = rate_ratio(fs, model_fs)
    run = math.floor((window_length - 1) / to_model) + 1
    return round(start_margin_s * fs) + run


def _told_the_rate(predict: Predictor, model_fs: float) -> Predictor:
    """``predict`` given ``fs=model_fs`` where it takes an ``fs`` (``Checkpoint.predict_abp``
    does): it then refuses a ``model_fs`` that is not its network's rate, which otherwise
    went through silently, every window at the wrong rate."""
    network_fs = getattr(getattr(predict, "__self__", None), "fs", None)
    if isinstance(network_fs, (int, float)) and not math.isclose(network_fs, model_fs):
        # A checkpoint's own predict_abp/predict_ppg: its refusal said "resample them",
        # where the fix is the model_fs given here.
        raise ValueError(
            f"model_fs is {model_fs:g} Hz, but the checkpoint's network takes windows at "
            f"{network_fs:g} Hz: pass model_fs={network_fs:g} (Checkpoint.fs)"
        )
    try:
        takes_fs = "fs" in inspect.signature(predict).parameters
    except (TypeError, ValueError):  # a callable without a signature: told nothing
        return predict
    return functools.partial(predict, fs=model_fs) if takes_fs else predict


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
    start_margin_s: float = 0.0,
    block_windows: int | None = None,
) -> Reconstruction:
    """Reconstruct a whole 1-D recording ``x`` (PPG in any units, or ABP in mmHg) at ``fs``.

    Each run of valid samples (see :func:`detect_gaps`) is resampled to ``model_fs``, cut
    into windows of ``window_length`` overlapping by ``overlap``, passed through
    ``predict`` (which normalises each window as in training and de-normalises its output;
    one that takes an ``fs``, as ``Checkpoint.predict_abp`` does, is given ``fs=model_fs``
    and so refuses a ``model_fs`` other than its network's rate), stitched with a
    cross-fade (:func:`stitch`) and resampled back to ``fs``. Each run is
    mirror-padded by :data:`EDGE_PAD` of a window first (when longer than one window), so its
    first and last samples do not come from a window's edge only. Gaps and runs shorter than
    one window are not reconstructed across: the output is NaN there.

    ``delay_s``: how much the PPG trails the ABP in this recording (the pulse-transit and
    monitor delay the training windows were aligned by). The output is shifted by it so that
    reconstructed ABP is on the ABP's time axis (``ppg2abp``) or reconstructed PPG on the
    PPG's (``abp2ppg``); samples shifted in from outside the recording are NaN, and the gaps
    are reported on the output's time axis.

    ``start_margin_s``: seconds at the recording's start left out like a gap's edge (a
    recording from a monitor: :data:`GAP_MARGIN`; windows cut from a dataset: 0).

    ``block_windows``: how many windows go to ``predict`` at a time (default
    :data:`BLOCK_WINDOWS`); each block is stitched before the next is cut, so a run's
    windows never exist all at once. The output does not depend on it as long as
    ``predict`` gives a window the same answer in any batch.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), but is {overlap}")
    block_windows = BLOCK_WINDOWS if block_windows is None else block_windows
    if (
        isinstance(block_windows, bool)
        or not isinstance(block_windows, Integral)  # numpy integers too
        or block_windows < 1
    ):
        raise ValueError(f"block_windows must be a whole number >= 1, not {block_windows!r}")
    block_windows = int(block_windows)
    # The range innpar reconstruct's --ppg-delay and ReconstructOptions.delay_s allow.
    delay_s = _seconds("delay_s", delay_s, *RANGES["delay_s"])
    start_margin_s = _seconds("start_margin_s", start_margin_s, 0.0)
    check_rate("fs", fs)
    check_rate("model_fs", model_fs)
    predict = _told_the_rate(predict, model_fs)
    kind = "ppg" if direction == "ppg2abp" else "abp"
    x = real_numbers(x, f"x (the {kind.upper()})").astype(np.float64, copy=False)
    n = x.size
    valid_in, gaps = detect_gaps(x, fs, kind)
    # A monitor's filter starts up at the recording's start (the first PLETH sample of 13
    # of the 34 Challenge 2015 records is 0.74 x the next); the edge padding mirrors it into a
    # notch, and a network answers that with a spike to -400 mmHg.
    start = min(n, round(start_margin_s * fs))
    for a, b in runs(valid_in[:start]):
        gaps.append(Gap(a, b, f"the recording's first {start_margin_s:g} s ({START_REASON})"))
    valid_in[:start] = False
    out = np.full(n, np.nan)
    hop = max(1, round(window_length * (1.0 - overlap)))
    n_windows = 0
    # One factor there and its inverse back: the model sees the recording at fs * to_model
    # (within 0.1 % of model_fs), and the output keeps the input's timing exactly.
    to_model = rate_ratio(fs, model_fs)
    for a, b in runs(valid_in):
        seg = resample_by(x[a:b], to_model, padtype="line")
        if seg.size < window_length:
            short = f"valid run shorter than one {window_length / model_fs:g} s window"
            gaps.append(Gap(a, b, short))
            continue
        # The first and last samples of a run are covered by one window only, near its edge,
        # where networks are least reliable (zero padding of the convolutions): mirror the
        # run by EDGE_PAD of a window at both ends so that they fall inside a window.
        pad = min(round(EDGE_PAD * window_length), seg.size - 1) if seg.size > window_length else 0
        starts = window_starts(seg.size + 2 * pad, window_length, hop)
        predicted = _predicted_windows(seg, pad, starts, window_length, predict)
        n_windows += len(starts)
        stitched = np.empty(seg.size)
        for lo, values in _stitched(starts, window_length, block_windows, predicted):
            keep = values[max(0, pad - lo) : max(0, pad + seg.size - lo)]  # the run's own
            stitched[max(0, lo - pad) : max(0, lo - pad) + keep.size] = keep
        out[a:b] = _fit_length(resample_by(stitched, 1 / to_model, padtype="line"), b - a)
    gaps.sort(key=lambda g: g.start)
    input_gaps = None
    shift = min(round(delay_s * fs), n)
    if shift:
        input_gaps = gaps
        shifted = np.full(n, np.nan)
        # ppg2abp: ABP at t comes from PPG at t + delay; abp2ppg: PPG at t + delay from ABP at t.
        sign = -1 if direction == "ppg2abp" else 1
        if direction == "ppg2abp":
            shifted[: n - shift] = out[shift:]
            edge = Gap(n - shift, n, f"beyond the input's end after the {DELAY} shift")
        else:
            shifted[shift:] = out[: n - shift]
            edge = Gap(0, shift, f"before the input's start after the {DELAY} shift")
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
        input_gaps=input_gaps,
    )
