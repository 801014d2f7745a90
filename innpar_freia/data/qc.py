"""Quality control of paired PPG/ABP recordings: gaps, PPG-to-ABP delay, window checks.

These are the rules the provided real data was made with
(``../shared/data/challenge2015/README.md``); with the defaults they reproduce its
records' delays and kept windows exactly. Every function takes ``fs`` in Hz; ABP is in
mmHg; PPG is in arbitrary units; invalid samples are NaN.

The band-pass everywhere is a 2nd-order Butterworth, 0.5-8 Hz, applied forwards and
backwards (zero phase). Its order matters: order 4 moves about one window in a hundred
across the QC thresholds and one record's delay by one sample.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import signal as sps

from innpar_freia.data.store import storable
from innpar_freia.signal import bandpass, rate_ratio, resample

BAND = (0.5, 8.0)  # Hz
BAND_ORDER = 2
# Output samples on each side of an invalid input sample that are also invalid after
# resampling: the polyphase filter smears what was interpolated into the gap (4 at 125 Hz).
GAP_MARGIN_S = 4 / 125

# Record rejection codes (records.csv's vocabulary, plus the cases it does not contain).
RECORD_REASONS = {
    "abp_nan": "ABP channel present but every sample is invalid (NaN)",
    "pleth_nan": "PPG channel present but every sample is invalid (NaN)",
    "abp_flat": "ABP is a constant line, sometimes with isolated artefact spikes",
    "abp_near_zero": "ABP stays near 0 mmHg (no pressure signal, e.g. transducer open or zeroed)",
    "abp_out_of_range": "ABP outside 20-250 mmHg in most windows",
    "abp_not_pulsatile": "ABP in range but pulse amplitude below 15 mmHg in most windows",
    "pleth_flat": "PPG is a flat line in most windows",
    "signal_gaps": "invalid (NaN) samples in most windows",
    "low_xcorr": "ABP and PPG never reach a cross-correlation above 0.5",
    "too_short": "too short for the delay estimate",
    "no_good_windows": "no window passed quality control",
}
# Window rejection codes, in the order they are tested.
WINDOW_REASONS = {
    "nan": "invalid samples (NaN, inf or beyond float32) in PPG or ABP",
    "flat": "more than 10 % of consecutive samples equal (flat line) in PPG or ABP",
    "abp_out_of_range": "ABP outside 20-250 mmHg",
    "few_beats": "fewer than 2 ABP peaks, 2 ABP troughs or 2 PPG peaks",
    "too_many_beats": "more than 13 ABP peaks per 5 s",
    "heart_rate": "heart rate outside 35-140 bpm",
    "irregular": "beat-interval SD of ABP or PPG >= 0.24 s",
    "beat_mismatch": "PPG and ABP peak counts differ by more than 1",
    "bp_limits": "SBP > 220, DBP < 30 or SBP - DBP < 10 mmHg",
    "low_corr": "band-passed ABP and PPG correlate below 0.5",
}


def band(x: np.ndarray, fs: float) -> np.ndarray:
    """The QC band-pass (0.5-8 Hz, zero-phase 2nd-order Butterworth) along the last axis."""
    return bandpass(x, fs, BAND[0], BAND[1], order=BAND_ORDER)


def _near_constant(x: np.ndarray) -> np.ndarray:
    """Per-sample tolerance for "equal": resampled flat lines differ in the last bits."""
    return 1e-9 * np.maximum(1.0, np.abs(x))


def flat_fraction(x: np.ndarray) -> float:
    """Fraction of consecutive sample pairs that are equal (finite samples only)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return 1.0
    return float(np.mean(np.abs(np.diff(x)) <= _near_constant(x[1:])))


def is_constant(x: np.ndarray) -> bool:
    x = np.asarray(x, dtype=np.float64)
    return bool(np.ptp(x) <= _near_constant(np.array([np.max(np.abs(x))]))[0])


def constant_rows(x: np.ndarray) -> np.ndarray:
    """Which windows (rows of ``x``, finite) hold one value throughout (as :func:`is_constant`):
    a flat PPG cannot be z-scored, a flat ABP is no pressure signal. Importers of windowed
    layouts (bp-benchmark, innpar-npy), which run no quality control, reject them as
    ``constant``."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if x.shape[1] == 0:
        return np.ones(x.shape[0], dtype=bool)
    return np.ptp(x, axis=1) <= _near_constant(np.max(np.abs(x), axis=1))


def fill_gaps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` with NaN/inf replaced by linear interpolation (edges held), and the mask of
    invalid samples. An all-invalid signal stays all-NaN."""
    x = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(x)
    if not bad.any() or bad.all():
        return x.copy(), bad
    out = x.copy()
    # Each gap is interpolated between the valid samples on either side of it, so those are
    # all np.interp needs: the same values as from every valid sample's index and value,
    # which were four more arrays of the signal's length.
    edges = np.flatnonzero(bad[1:] != bad[:-1])
    beside = np.unique(np.where(bad[edges], edges + 1, edges))
    out[bad] = np.interp(np.flatnonzero(bad), beside, x[beside])
    return out, bad


# How resampling extends a recording beyond its ends (scipy's resample_poly padtype).
# "zeros" is bp-benchmark's (resample_poly's default): it pulls the first and last ~20
# samples at 125 Hz towards 0, 10-33 mmHg off the recording's ABP in the first window of
# a record (a false diastolic trough in 3 of the 18 such windows of the real records);
# "line" extends the signal by a line and keeps its level.
EDGES = {"line": "line", "zeros": "constant"}


def _keep_flat_runs(x: np.ndarray, y: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """``y`` (``x`` polyphase-resampled) with each sample whose filter reaches only samples
    of one value of ``x`` set to that value.

    A flat line is how the QC sees a lost signal, but when the rate ratio is not 1/n (128,
    200 or 256 Hz to 125 Hz) the filter's phases differ in gain by up to ~1e-3: a flat line
    came out as a ripple that the flat rule did not see, and windows with a held PPG or
    ABP were kept.
    """
    ratio = rate_ratio(fs_in, fs_out)
    up, down = ratio.numerator, ratio.denominator
    reach = 10 * max(up, down) / up  # resample_poly's filter half-length, in input samples
    t = np.arange(y.size) * (down / up)
    lo = np.ceil(t - reach).astype(np.int64)
    hi = np.floor(t + reach).astype(np.int64)
    inside = np.flatnonzero((lo >= 0) & (hi < x.size))
    lo, hi = lo[inside], hi[inside]
    equal_pairs = np.concatenate([[0], np.cumsum(np.diff(x) == 0)])
    flat = equal_pairs[hi] - equal_pairs[lo] == hi - lo
    out = y.copy()
    out[inside[flat]] = x[lo[flat]]
    return out


def resample_gapped(
    x: np.ndarray,
    fs_in: float,
    fs_out: float,
    margin_s: float = GAP_MARGIN_S,
    edges: str = "line",
) -> np.ndarray:
    """Polyphase-resample a signal with invalid (NaN) samples from ``fs_in`` to ``fs_out`` Hz.

    Gaps are interpolated before filtering (a NaN would spread through the whole filter)
    and set back to NaN afterwards, widened by ``margin_s`` seconds on each side. Where
    the input holds one value, so does the output (:func:`_keep_flat_runs`).

    ``edges``: how the filter extends the signal beyond its ends (see :data:`EDGES`).
    """
    filled, bad = fill_gaps(x)
    if fs_in == fs_out:
        return np.where(bad, np.nan, filled)
    n_out = int(np.ceil(x.size * fs_out / fs_in))
    if bad.all():
        return np.full(n_out, np.nan)
    if edges not in EDGES:
        raise ValueError(f"edges must be one of {', '.join(EDGES)}, not {edges!r}")
    y = resample(filled, fs_in, fs_out, padtype=EDGES[edges])
    y = _keep_flat_runs(filled, y, fs_in, fs_out)
    if bad.any():
        # An output sample is invalid when an invalid input sample lies within half an
        # output period of it, then the mask is widened by the filter margin.
        t_bad = np.flatnonzero(bad) * (fs_out / fs_in)
        margin = round(margin_s * fs_out)
        lo = np.clip(np.ceil(t_bad - 0.5).astype(np.int64) - margin, 0, y.size)
        hi = np.clip(np.floor(t_bad + 0.5).astype(np.int64) + margin + 1, 0, y.size)
        delta = np.zeros(y.size + 1, dtype=np.int64)
        np.add.at(delta, lo, 1)
        np.add.at(delta, hi, -1)
        y[np.cumsum(delta[:-1]) > 0] = np.nan
    return y


@dataclass
class LagConfig:
    """How the PPG-to-ABP delay is estimated (defaults: the data README's method)."""

    max_lag_s: float = 2.0
    window_s: float = 10.0
    step_s: float = 5.0
    abp_range: tuple[float, float] = (20.0, 250.0)  # mmHg
    min_abp_swing: float = 15.0  # mmHg
    min_window_corr: float = 0.5  # a window counts only if its correlation exceeds this
    peak_fraction: float = 0.8  # first local maximum reaching this fraction of the maximum
    min_windows: int = 3


@dataclass
class LagEstimate:
    """The delay of the PPG behind the ABP, in samples at ``fs`` (``None``: no estimate)."""

    lag: int | None
    fs: float
    windows_total: int
    windows_used: int
    skipped: dict[str, int] = field(default_factory=dict)
    curve: np.ndarray | None = None
    peak_corr: float | None = None
    # The PPG upside down (see ``ppg_inverted``): the strongest correlation of the mean
    # curve of the windows where -PPG correlates above 0.5, and the skewness of the
    # band-passed PPG's steps (positive: it rises faster than it falls, as a pulse does).
    inverted_corr: float | None = None
    rise_skew: float | None = None

    @property
    def lag_seconds(self) -> float | None:
        return None if self.lag is None else self.lag / self.fs


# How much better -PPG must match the ABP than the PPG itself (mean correlation curves)
# before the PPG is taken as upside down; see ``ppg_inverted``.
INVERTED_MARGIN = 0.05


def ppg_inverted(est: LagEstimate) -> bool:
    """Whether the PPG of ``est`` is upside down, as raw photodiode counts often are (the
    light that reaches the sensor falls as blood volume rises): its negation correlates
    with the ABP better than it does, by ``INVERTED_MARGIN``, *and* it falls faster than it
    rises. Either alone misleads on real records: a PPG inverted this way was aligned half
    a beat off, where its falls met the ABP's rises, and kept. On the 34 Challenge 2015
    records with both signals, no upright PPG is flagged (record 317's negation
    correlates better, 0.68 against 0.57, but it rises faster than it falls; record 4's
    falls are steeper, but it correlates upright), and negated, 22 of the 24 that can be
    aligned either way are found (all but those two), among them records 331 and 376, which
    the lag estimate alone lost when negated."""
    if est.inverted_corr is None or est.rise_skew is None:
        return False
    upright = float(est.curve.max()) if est.curve is not None else 0.0
    return est.inverted_corr >= upright + INVERTED_MARGIN and est.rise_skew < 0


def step_skewness(banded: np.ndarray) -> float:
    """Skewness of the steps of a band-passed pulse signal (:func:`band`, gaps filled):
    positive when it rises faster than it falls, as a pulse does (PPG and ABP alike), so
    negative for an upside-down PPG."""
    steps = np.diff(banded)
    sd = steps.std()
    if not sd > 0:
        return 0.0
    # In place: the same numbers as ((steps - mean) / sd) ** 3 without its three temporaries.
    steps -= steps.mean()
    steps /= sd
    steps **= 3
    return float(np.mean(steps))


def _window_corr(a: np.ndarray, p_ext: np.ndarray, n_lags: int) -> np.ndarray:
    """Pearson correlation of ``a`` (length W) with ``p_ext[d:d + W]`` for d < n_lags."""
    w = a.size
    ac = a - a.mean()
    num = sps.correlate(p_ext, ac, mode="valid")[:n_lags]
    c1 = np.concatenate([[0.0], np.cumsum(p_ext)])
    c2 = np.concatenate([[0.0], np.cumsum(p_ext * p_ext)])
    s1 = c1[w : w + n_lags] - c1[:n_lags]
    s2 = c2[w : w + n_lags] - c2[:n_lags]
    var = np.maximum(s2 - s1 * s1 / w, 0.0)
    den = np.sqrt(var) * np.linalg.norm(ac)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def first_strong_peak(curve: np.ndarray, fraction: float = 0.8) -> int:
    """Index of the first local maximum of ``curve`` that reaches ``fraction`` x its
    maximum (the ends count as local maxima when they are not below their neighbour).

    With a periodic pulse the correlation has a peak every beat and the true delay's peak
    is not always the highest, so the earliest strong one is taken instead of the arg-max.
    """
    curve = np.asarray(curve, dtype=np.float64)
    padded = np.concatenate([[-np.inf], curve, [-np.inf]])
    local_max = (padded[1:-1] >= padded[:-2]) & (padded[1:-1] >= padded[2:])
    top = curve.max()
    threshold = fraction * top if top > 0 else top
    return int(np.flatnonzero(local_max & (curve >= threshold))[0])


def estimate_lag(
    ppg: np.ndarray, abp: np.ndarray, fs: float, cfg: LagConfig | None = None
) -> LagEstimate:
    """Delay of the PPG behind the ABP of one record (both at ``fs`` Hz, NaN = invalid).

    Both signals are band-passed over the whole record (gaps interpolated) and the Pearson
    correlation of each 10-s ABP window with the PPG delayed by 0..2 s is computed (windows
    every 5 s). Windows with NaN, ABP outside 20-250 mmHg, ABP swing below 15 mmHg, a
    constant PPG, or no delay with correlation above 0.5, are skipped. ``lag`` is the
    smallest delay at a local maximum of the mean curve that reaches 0.8 x the curve's
    maximum: a plain arg-max can land one beat late when consecutive beats correlate
    almost equally. Fewer than 3 usable windows give ``lag=None``.
    """
    cfg = cfg or LagConfig()
    ppg = np.asarray(ppg, dtype=np.float64)
    abp = np.asarray(abp, dtype=np.float64)
    w = round(cfg.window_s * fs)
    d = round(cfg.max_lag_s * fs)
    step = max(1, round(cfg.step_s * fs))
    n = min(ppg.size, abp.size)
    starts = range(0, n - w - d + 1, step)
    skipped: Counter[str] = Counter()
    est = LagEstimate(None, fs, len(starts), 0)
    if len(starts) < cfg.min_windows:  # never enough windows, however clean the signals
        est.skipped = {"too_short": 1}
        return est
    pf, pbad = fill_gaps(ppg[:n])
    af, abad = fill_gaps(abp[:n])
    if pbad.all() or abad.all():
        est.skipped = {"nan": len(starts)}
        return est
    pb, ab = band(pf, fs), band(af, fs)
    curves, inverted = [], []
    for s in starts:
        a_raw = abp[s : s + w]
        if abad[s : s + w].any() or pbad[s : s + w + d].any():
            skipped["nan"] += 1
        elif a_raw.min() < cfg.abp_range[0] or a_raw.max() > cfg.abp_range[1]:
            skipped["abp_out_of_range"] += 1
        elif np.ptp(a_raw) < cfg.min_abp_swing:
            skipped["abp_not_pulsatile"] += 1
        elif is_constant(ppg[s : s + w + d]):
            skipped["pleth_flat"] += 1
        else:
            r = _window_corr(ab[s : s + w], pb[s : s + w + d], d + 1)
            if r.max() <= cfg.min_window_corr:
                skipped["low_xcorr"] += 1
            else:
                curves.append(r)
            if -r.min() > cfg.min_window_corr:
                inverted.append(r)
    est.skipped = dict(skipped)
    est.windows_used = len(curves)
    if len(inverted) >= cfg.min_windows:
        est.inverted_corr = float(-np.mean(inverted, axis=0).min())
        est.rise_skew = step_skewness(pb)
    if len(curves) < cfg.min_windows:
        return est
    curve = np.mean(curves, axis=0)
    est.lag = first_strong_peak(curve, cfg.peak_fraction)
    est.curve = curve
    est.peak_corr = float(curve[est.lag])
    return est


def classify_unaligned(
    ppg_raw: np.ndarray, abp_raw: np.ndarray, est: LagEstimate
) -> tuple[str, str]:
    """Why a record could not be aligned: a code of :data:`RECORD_REASONS` and a detail.

    ``ppg_raw``/``abp_raw`` are the record's channels at their own rate (flatness is a
    property of the recording, not of the resampled signal). Whole-record conditions come
    first (all invalid, flat, near zero); otherwise the most common reason the 10-s windows
    were skipped.
    """
    abp = np.asarray(abp_raw, dtype=np.float64)
    ppg = np.asarray(ppg_raw, dtype=np.float64)
    a = abp[np.isfinite(abp)]
    p = ppg[np.isfinite(ppg)]
    if a.size == 0:
        return "abp_nan", RECORD_REASONS["abp_nan"]
    if p.size == 0:
        return "pleth_nan", RECORD_REASONS["pleth_nan"]
    stats = f"ABP median {np.median(a):.1f} mmHg, range {a.min():.1f}..{a.max():.1f}"
    flat_a = flat_fraction(a)
    if flat_a > 0.5:
        return "abp_flat", f"ABP is a constant line in {flat_a:.0%} of samples ({stats})"
    p5, p95 = np.percentile(a, [5, 95])
    if abs(p5) <= 5.0 and abs(p95) <= 5.0:
        return "abp_near_zero", f"ABP near 0 mmHg, no pressure signal ({stats})"
    if "too_short" in est.skipped:
        return "too_short", (
            f"{abp.size} samples is too short for 3 delay-estimation windows ({stats})"
        )
    order = list(RECORD_REASONS)
    counts = {("signal_gaps" if k == "nan" else k): v for k, v in est.skipped.items() if v > 0}
    if not counts:
        return "low_xcorr", f"only {est.windows_used} usable windows ({stats})"
    code = max(counts, key=lambda k: (counts[k], -order.index(k)))
    n = est.windows_total
    detail = f"{RECORD_REASONS[code]}: {counts[code]} of {n} 10-s windows ({stats}"
    if code in ("pleth_flat", "low_xcorr"):
        detail += f"; PPG {flat_fraction(p):.0%} flat samples"
    return code, detail + ")"


@dataclass
class WindowQC:
    """Window quality rules (defaults: the data README's, i.e. bp-benchmark's cleaning)."""

    max_flat_fraction: float = 0.1
    abp_range: tuple[float, float] = (20.0, 250.0)  # mmHg
    abp_prominence: float = 10.0  # mmHg
    ppg_prominence: float = 0.5  # z-scored band-passed PPG
    min_peak_distance_s: float = 0.33
    min_beats: int = 2
    max_beats_per_s: float = 13 / 5  # 13 peaks in a 5-s window
    hr_range: tuple[float, float] = (35.0, 140.0)  # bpm
    max_interval_sd_s: float = 0.24
    max_peak_count_difference: int = 1
    max_sbp: float = 220.0
    min_dbp: float = 30.0
    min_pulse_pressure: float = 10.0
    min_corr: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def abp_beats(
    abp: np.ndarray, fs: float, qc: WindowQC | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Systolic peak and diastolic trough indices of one ABP window (mmHg), QC rules."""
    qc = qc or WindowQC()
    dist = max(1, int(qc.min_peak_distance_s * fs))
    peaks = sps.find_peaks(abp, prominence=qc.abp_prominence, distance=dist)[0]
    troughs = sps.find_peaks(-abp, prominence=qc.abp_prominence, distance=dist)[0]
    return peaks, troughs


def ppg_beats(ppg: np.ndarray, fs: float, qc: WindowQC | None = None) -> np.ndarray:
    """Peak indices of one PPG window (band-passed, z-scored), QC rules."""
    qc = qc or WindowQC()
    x = band(ppg, fs)
    sd = x.std()
    z = (x - x.mean()) / (sd if sd > 0 else 1.0)
    dist = max(1, int(qc.min_peak_distance_s * fs))
    return sps.find_peaks(z, prominence=qc.ppg_prominence, distance=dist)[0]


def check_window(
    ppg: np.ndarray, abp: np.ndarray, fs: float, qc: WindowQC | None = None
) -> tuple[str | None, float, float]:
    """QC of one aligned window pair: ``(reason or None, SBP, DBP)``.

    SBP/DBP (mmHg) are the medians of the systolic peaks and diastolic troughs, as
    bp-benchmark labels windows (NaN when the window is rejected before beats are found).
    ``reason`` is the first failed rule of :data:`WINDOW_REASONS`.
    """
    qc = qc or WindowQC()
    nan = float("nan")
    if not (storable(ppg) and storable(abp)):
        return "nan", nan, nan
    if max(flat_fraction(abp), flat_fraction(ppg)) > qc.max_flat_fraction:
        return "flat", nan, nan
    if abp.min() < qc.abp_range[0] or abp.max() > qc.abp_range[1]:
        return "abp_out_of_range", nan, nan
    peaks, troughs = abp_beats(abp, fs, qc)
    ppg_peaks = ppg_beats(ppg, fs, qc)
    if min(peaks.size, troughs.size, ppg_peaks.size) < qc.min_beats:
        return "few_beats", nan, nan
    sbp, dbp = float(np.median(abp[peaks])), float(np.median(abp[troughs]))
    if peaks.size > int(qc.max_beats_per_s * abp.size / fs + 1e-9):
        return "too_many_beats", sbp, dbp
    hr = 60.0 * fs / float(np.median(np.diff(peaks)))
    if not qc.hr_range[0] <= hr <= qc.hr_range[1]:
        return "heart_rate", sbp, dbp
    if (
        np.std(np.diff(peaks)) / fs >= qc.max_interval_sd_s
        or np.std(np.diff(ppg_peaks)) / fs >= qc.max_interval_sd_s
    ):
        return "irregular", sbp, dbp
    if abs(int(ppg_peaks.size) - int(peaks.size)) > qc.max_peak_count_difference:
        return "beat_mismatch", sbp, dbp
    if sbp > qc.max_sbp or dbp < qc.min_dbp or sbp - dbp < qc.min_pulse_pressure:
        return "bp_limits", sbp, dbp
    if np.corrcoef(band(abp, fs), band(ppg, fs))[0, 1] < qc.min_corr:
        return "low_corr", sbp, dbp
    return None, sbp, dbp
