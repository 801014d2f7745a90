"""Pure numpy/scipy signal functions. Every function that depends on time takes ``fs`` in Hz."""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Real
from typing import Any

import numpy as np
from scipy import signal as sps


def central_gradient(x: np.ndarray) -> np.ndarray:
    """The release's gradient along the last axis: ``g[n] = x[n+1] - x[n-1]`` with zeros
    outside the window (so ``g[0] = x[1]`` and ``g[-1] = -x[-2]``); not divided by 2."""
    x = np.asarray(x, dtype=np.float64)
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(1, 1)])
    return padded[..., 2:] - padded[..., :-2]


def zscore(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Z-score along ``axis`` (per window). A constant window maps to zeros, not NaN."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=axis, keepdims=True)
    std = x.std(axis=axis, keepdims=True)
    return (x - mean) / np.where(std > 0, std, 1.0)


def bandpass(
    x: np.ndarray, fs: float, low: float = 0.5, high: float = 8.0, order: int = 4
) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis (``low``..``high`` Hz)."""
    if not 0 < low < high:
        raise ValueError(f"band-pass needs 0 < low < high, but got low={low}, high={high}")
    high = min(high, 0.45 * fs)
    if high <= low:
        raise ValueError(f"fs={fs} Hz is too low for a {low} Hz high-pass band")
    sos = sps.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1)


# The largest numerator or denominator of an exact rate ratio that resampling uses as it
# is: scipy's polyphase filter has 20 x max(up, down) taps, i.e. 20 x down / up multiplies
# per output sample (16384 Hz to 125 Hz: 2,600, about a second per hour of recording).
MAX_RATIO_TERMS = 1 << 16


def _rational(fs: float) -> Fraction | None:
    """``fs`` as a fraction of small terms (250, 2048, 62.5 or 999.7 Hz), or None for a
    rate such as 124.99937 Hz (one measured from time stamps), which only a fraction of
    large terms gives exactly."""
    fs = float(fs)  # a numpy float32 is no Fraction's argument
    r = Fraction(fs).limit_denominator(1000)
    return r if abs(float(r) - fs) <= 1e-12 * fs else None


def check_rate(name: str, rate: Any) -> float:
    """``rate`` (Hz) as a float, or a ``ValueError`` naming ``name`` when it is not a finite
    number above 0: a NaN rate failed deep inside ("cannot convert float NaN to integer"),
    or was told as "the windows are at nan Hz"."""
    if isinstance(rate, bool) or not isinstance(rate, Real) or not 0 < rate < math.inf:
        raise ValueError(f"{name} must be a finite rate above 0 Hz, not {rate!r}")
    return float(rate)


def real_numbers(values: Any, what: str) -> np.ndarray:
    """``values`` as an array (not copied), or a ``TypeError`` naming ``what`` when they are
    not real numbers: bools, complex numbers and text are no signal (a bool array was taken
    as 0/1, a complex one lost its imaginary part with only numpy's warning)."""
    given = np.asarray(values)
    if given.dtype.kind not in "iuf":
        raise TypeError(f"{what} must be real numbers, not {given.dtype}")
    return given


def rate_ratio(fs_in: float, fs_out: float) -> Fraction:
    """``fs_out / fs_in`` as the rational factor :func:`resample` applies: exact where both
    rates are fractions of small terms and the ratio's terms are at most
    ``MAX_RATIO_TERMS``; otherwise the nearest fraction with a denominator of at most 1000.
    That approximation was once used for every pair: 2048 Hz to 125 Hz became 13/213, not
    125/2048, 3.8e-5 short, and a window file that says 125 Hz drifted 135 ms an hour
    from its source (14 mmHg of ABP off in a record's last window)."""
    check_rate("fs_in", fs_in)  # (a NaN passed "<= 0")
    check_rate("fs_out", fs_out)
    r_in, r_out = _rational(fs_in), _rational(fs_out)
    if r_in is not None and r_out is not None:
        exact = r_out / r_in
        if max(exact.numerator, exact.denominator) <= MAX_RATIO_TERMS:
            return exact
    return Fraction(float(fs_out) / float(fs_in)).limit_denominator(1000)


def resample(
    x: np.ndarray, fs_in: float, fs_out: float, axis: int = -1, padtype: str = "constant"
) -> np.ndarray:
    """Polyphase resampling from ``fs_in`` to ``fs_out`` Hz (by :func:`rate_ratio`).

    ``padtype`` is scipy's ``resample_poly`` edge extension: the default ``constant`` pads
    with zeros, which pulls the first and last few samples towards 0; ``line`` extends the
    signal by a line and keeps a signal with a level (ABP in mmHg) level at its edges.
    """
    if fs_in == fs_out and fs_in > 0:
        return np.asarray(x, dtype=np.float64)
    return resample_by(x, rate_ratio(fs_in, fs_out), axis=axis, padtype=padtype)


def resample_by(
    x: np.ndarray, ratio: Fraction, axis: int = -1, padtype: str = "constant"
) -> np.ndarray:
    """Polyphase resampling by the exact factor ``ratio`` (output rate / input rate). A
    round trip must use one factor and its inverse: two rates approximated apart (999.7 Hz
    to 125 Hz and back) are not inverses, and the signal drifts in time (170 ms in 10 min)."""
    x = np.asarray(x, dtype=np.float64)
    if ratio == 1:
        return x
    return sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=axis, padtype=padtype)


def prominence_thresholds(x: np.ndarray) -> np.ndarray:
    """The protocol's peak prominence ``max(5, 0.3 * (P95 - P5))`` (mmHg) of each row of
    ``(n, L)`` windows, in one percentile call (one call per window was half the time of
    scoring)."""
    p95, p5 = np.percentile(np.asarray(x, dtype=np.float64), [95, 5], axis=-1)
    return np.maximum(5.0, 0.3 * (p95 - p5))


def prominence_threshold(x: np.ndarray) -> float:
    """The protocol's peak prominence of one window (:func:`prominence_thresholds`)."""
    return float(prominence_thresholds(np.asarray(x)[None])[0])


def systolic_peaks(x: np.ndarray, fs: float, prominence: float | None = None) -> np.ndarray:
    """Indices of systolic peaks of one ABP window (mmHg) by the evaluation protocol
    (``prominence``: the window's :func:`prominence_threshold`, when already known)."""
    prom = prominence_threshold(x) if prominence is None else prominence
    return sps.find_peaks(x, distance=max(1, int(0.3 * fs)), prominence=prom)[0]


def diastolic_troughs(x: np.ndarray, fs: float, prominence: float | None = None) -> np.ndarray:
    """Indices of diastolic troughs of one ABP window (mmHg) by the evaluation protocol."""
    prom = prominence_threshold(x) if prominence is None else prominence
    return sps.find_peaks(-x, distance=max(1, int(0.3 * fs)), prominence=prom)[0]


def _median_sample(x: np.ndarray, idx: np.ndarray, fallback: int) -> tuple[int, int]:
    """Sample indices of the lower and upper middle of ``x[idx]`` (equal for an odd count), so
    that their mean is ``np.median(x[idx])``; ``(fallback, fallback)`` when ``idx`` is empty."""
    if idx.size == 0:
        return fallback, fallback
    order = idx[np.argsort(x[idx], kind="stable")]
    return int(order[(idx.size - 1) // 2]), int(order[idx.size // 2])


def bp_sample_indices(x: np.ndarray, fs: float, prominence: float | None = None) -> np.ndarray:
    """Where the protocol's SBP and DBP of one ABP window (mmHg) come from: sample indices
    ``[s_lo, s_hi, d_lo, d_hi]`` with ``SBP = (x[s_lo] + x[s_hi]) / 2`` (the median systolic
    peak, or the maximum when no peak is found) and ``DBP = (x[d_lo] + x[d_hi]) / 2`` (the
    median diastolic trough, or the minimum). Indexing a tensor with them gives the same
    values, differentiably (the within-subject loss's ``pair_pp = "peaks"``)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"bp_sample_indices needs one non-empty window, got shape {x.shape}")
    prom = prominence_threshold(x) if prominence is None else prominence
    s = _median_sample(x, systolic_peaks(x, fs, prom), int(np.argmax(x)))
    d = _median_sample(x, diastolic_troughs(x, fs, prom), int(np.argmin(x)))
    return np.array([*s, *d], dtype=np.int64)


def bp_sample_indices_batch(x: np.ndarray, fs: float) -> np.ndarray:
    """:func:`bp_sample_indices` of each row of ``(n, L)`` windows -> ``(n, 4)``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"expected non-empty (windows, samples), got shape {x.shape}")
    out = np.zeros((x.shape[0], 4), dtype=np.int64)
    for i, (window, prom) in enumerate(zip(x, prominence_thresholds(x), strict=True)):
        out[i] = bp_sample_indices(window, fs, float(prom))
    return out


def _bp_from_indices(x: np.ndarray, idx: np.ndarray) -> tuple[float, float, float]:
    s_lo, s_hi, d_lo, d_hi = idx
    # 0.5 * (a + b) is bit for bit np.median's mean of the two middle values (and a itself
    # when they are one sample).
    sbp = float(0.5 * (x[s_lo] + x[s_hi]))
    dbp = float(0.5 * (x[d_lo] + x[d_hi]))
    return sbp, dbp, float(x.mean())


def bp_values(x: np.ndarray, fs: float) -> tuple[float, float, float]:
    """SBP, DBP, MAP (mmHg) of one ABP window, exactly as ``docs/protocol.md`` defines them.

    SBP is the median systolic peak (the window's max when no peak is found), DBP the
    median diastolic trough (the min when none), MAP the mean of the window.
    """
    x = np.asarray(x, dtype=np.float64)
    fs = check_rate("fs", fs)  # a rate of 0 or below put the peaks 1 sample apart, silently
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"bp_values needs one non-empty window, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("bp_values needs a window of numbers: it holds NaN or inf")
    return _bp_from_indices(x, bp_sample_indices(x, fs))


def bp_values_batch(x: np.ndarray, fs: float) -> np.ndarray:
    """``(n, L)`` windows -> ``(n, 3)`` array of SBP, DBP, MAP (mmHg): :func:`bp_values` of
    each window, bit for bit."""
    x = np.asarray(x, dtype=np.float64)
    fs = check_rate("fs", fs)  # once a call; the windows below take it as checked
    if x.ndim != 2:
        raise ValueError(f"expected (windows, samples), got shape {x.shape}")
    if x.size and not np.isfinite(x).all():
        raise ValueError("bp_values needs a window of numbers: it holds NaN or inf")
    out = np.empty((x.shape[0], 3))
    if x.shape[0] == 0:
        return out
    for i, (window, idx) in enumerate(zip(x, bp_sample_indices_batch(x, fs), strict=True)):
        out[i] = _bp_from_indices(window, idx)
    return out
