"""From one continuous PPG/ABP recording to quality-checked, aligned windows.

The same steps for every recording format (WFDB, CSV, NPZ), in this order:

1. resample both channels to ``fs`` with polyphase filtering, gaps (NaN) interpolated
   before and set back to NaN, widened, after (:func:`qc.resample_gapped`);
2. estimate the delay of the PPG behind the ABP (:func:`qc.estimate_lag`); a record
   that cannot be aligned is rejected with a reason code (:func:`qc.classify_unaligned`);
3. shift the PPG earlier by the delay (only the PPG moves, as bp-benchmark's
   ``align_pair`` does): ``abp[s:s+L]`` pairs with ``ppg[s+lag:s+lag+L]``;
4. cut non-overlapping windows at multiples of ``L`` and quality-check each one
   (:func:`qc.check_window`), counting rejections per reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from innpar_freia.data.import_report import window_rate
from innpar_freia.data.limits import IMPORT_RANGES, check_in_range
from innpar_freia.data.qc import (
    LagConfig,
    WindowQC,
    abp_beats,
    check_window,
    classify_unaligned,
    estimate_lag,
    ppg_inverted,
    resample_gapped,
)
from innpar_freia.data.store import FLOAT32_MAX, storable
from innpar_freia.errors import DataError, option


@dataclass
class PipelineOptions:
    """Options of the recording pipeline. ``qc=None`` keeps every window without NaN.
    ``fs``, ``window_s`` and the lag's ``max_lag_s`` are checked against the ranges of
    ``innpar data import`` (:data:`~innpar_freia.data.limits.IMPORT_RANGES`)."""

    fs: float = 125.0  # Hz, of the output windows
    window_s: float = 5.0
    align: bool = True
    lag: LagConfig = field(default_factory=LagConfig)
    qc: WindowQC | None = field(default_factory=WindowQC)
    edges: str = "line"  # resampling beyond a recording's ends: qc.EDGES

    def __post_init__(self) -> None:
        # The Python API's import builds these without the CLI's option types.
        self.fs = check_in_range("fs", self.fs, IMPORT_RANGES)
        self.window_s = check_in_range("window_s", self.window_s, IMPORT_RANGES)
        self.lag.max_lag_s = check_in_range("max_lag_s", self.lag.max_lag_s, IMPORT_RANGES)

    @property
    def window_length(self) -> int:
        return round(self.window_s * self.fs)

    def to_dict(self) -> dict:
        return {
            "fs": self.fs,
            "window_seconds": self.window_s,
            "window_length": self.window_length,
            "align": self.align,
            "lag": self.lag.__dict__ if self.align else None,
            "qc": self.qc.to_dict() if self.qc is not None else None,
            "edges": self.edges,
        }


@dataclass
class RecordWindows:
    """The kept windows of one recording and what happened to the rest."""

    ppg: np.ndarray  # (n, L), source units
    abp: np.ndarray  # (n, L), mmHg
    starts: np.ndarray  # (n,) first ABP sample of each window at fs
    sbp: np.ndarray  # (n,) mmHg
    dbp: np.ndarray  # (n,) mmHg
    status: str = "kept"
    reason: str | None = None
    detail: str = ""
    lag: int | None = None
    ppg_inverted: bool = False  # the PPG was upside down and turned over (qc.ppg_inverted)
    windows_total: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    # The heart rate (bpm) of each window without NaN that has a regular pulse, kept or
    # rejected (qc's 35-140 bpm limit would hide a rate read 2x too high), and how many
    # windows without NaN there were: for the import's check of the sampling rate.
    rates: list[float] = field(default_factory=list)
    rate_windows: int = 0


def _empty(length: int, **kw) -> RecordWindows:
    z = np.empty((0, length))
    e = np.empty(0)
    return RecordWindows(z, z.copy(), e.astype(np.int64), e, e.copy(), **kw)


# Window rejections for the beats found: what a recording read at a wrong rate gets, its beats
# slowed or sped up by the ratio (a 250 Hz CSV given --input-fs 50: 264 of 329 windows
# "heart_rate", 64 "few_beats"; --input-fs 25: all 659 "few_beats"). No record of the
# Challenge 2015 folder loses every window so: its rejected records fail earlier checks.
BEAT_REJECTIONS = ("few_beats", "too_many_beats", "heart_rate")


def _none_passed(n: int, rejected: Counter[str], qc: WindowQC | None, window_s: float) -> str:
    """Why no window of a recording was kept: the rejections by reason, most first, and when
    most were for the beats, that a wrong sampling rate gives that too (the rate was never
    named: "none of 329 windows passed quality control" was all that was said), or, for a
    window too short to be sure of holding the beats QC needs, that the window is too short
    (0.5-s windows of record 85 were all "few_beats", and the rate was blamed)."""
    counts = ", ".join(f"{v} {k}" for k, v in rejected.most_common())
    detail = f"none of {n} windows passed quality control: {counts}"
    if qc is not None and 2 * sum(rejected[k] for k in BEAT_REJECTIONS) > n:
        low, high = qc.hr_range
        # A window holds min_beats beats wherever it starts once it spans min_beats periods.
        needed = qc.min_beats * 60.0 / low
        if window_s < needed:
            return detail + (
                f"; most were rejected for their beats: a {window_s:g}-s window is too short "
                f"to hold the {qc.min_beats} beats quality control needs ({needed:.1f} s at "
                f"{low:g} bpm, the slowest heart rate it accepts): use longer windows "
                f"({option('--window-seconds', 'window_s')})"
            )
        detail += (
            "; most were rejected for their beats (too few, too many, or a heart rate outside "
            f"{low:g}-{high:g} bpm), which a wrong sampling rate gives too: check the rate (the "
            f"file's, or {option('--input-fs', 'input_fs')})"
        )
    return detail


def window_recording(
    ppg_raw: np.ndarray, abp_raw: np.ndarray, fs_in: float, opts: PipelineOptions
) -> RecordWindows:
    """Aligned, quality-checked windows of one recording.

    Args:
        ppg_raw: PPG at ``fs_in`` Hz, any units, NaN where invalid.
        abp_raw: ABP at ``fs_in`` Hz in mmHg, NaN where invalid, same length.
        fs_in: sampling rate of the inputs in Hz.
        opts: output rate, window length, alignment and QC settings.
    """
    ppg_raw = np.asarray(ppg_raw, dtype=np.float64)
    abp_raw = np.asarray(abp_raw, dtype=np.float64)
    if ppg_raw.shape != abp_raw.shape or ppg_raw.ndim != 1:
        raise DataError(
            f"PPG {ppg_raw.shape} and ABP {abp_raw.shape} must be 1-D signals of equal length"
        )
    # Samples beyond float32's range (inf in the file) and infinities are invalid, like NaN:
    # left in, they overflow the resampling and the alignment into a wrong rejection.
    ppg_raw, abp_raw = (np.where(np.abs(x) <= FLOAT32_MAX, x, np.nan) for x in (ppg_raw, abp_raw))
    length, fs = opts.window_length, opts.fs
    if length < 8:
        raise DataError(f"a {opts.window_s} s window at {fs:g} Hz has only {length} samples")
    ppg = resample_gapped(ppg_raw, fs_in, fs, edges=opts.edges)
    abp = resample_gapped(abp_raw, fs_in, fs, edges=opts.edges)
    lag = 0
    inverted = False
    if opts.align:
        est = estimate_lag(ppg, abp, fs, opts.lag)
        if ppg_inverted(est):
            # Upside down (raw photodiode counts): turned over, and aligned as it then is.
            ppg, ppg_raw, inverted = -ppg, -ppg_raw, True
            est = estimate_lag(ppg, abp, fs, opts.lag)
        if est.lag is None:
            code, detail = classify_unaligned(ppg_raw, abp_raw, est)
            return _empty(length, status="rejected", reason=code, detail=detail)
        lag = est.lag
    else:
        for name, x in (("abp", abp), ("pleth", ppg)):
            if not np.isfinite(x).any():
                return _empty(
                    length,
                    status="rejected",
                    reason=f"{name}_nan",
                    detail=f"{name.upper()} channel present but every sample is invalid (NaN)",
                )
    starts = np.arange(0, min(abp.size, ppg.size - lag) - length + 1, length, dtype=np.int64)
    keep, sbp, dbp = [], [], []
    rejected: Counter[str] = Counter()
    rates, rate_windows = [], 0
    for s in starts:
        p, a = ppg[s + lag : s + lag + length], abp[s : s + length]
        if storable(a):
            rate_windows += 1
            rate = window_rate(a, fs)
            if rate is not None:
                rates.append(rate)
        if opts.qc is None:
            reason = None if storable(p) and storable(a) else "nan"
            if reason is None:
                peaks, troughs = abp_beats(a, fs)
                hi = float(np.median(a[peaks])) if peaks.size else float(a.max())
                lo = float(np.median(a[troughs])) if troughs.size else float(a.min())
        else:
            reason, hi, lo = check_window(p, a, fs, opts.qc)
        if reason is None:
            keep.append(s)
            sbp.append(hi)
            dbp.append(lo)
        else:
            rejected[reason] += 1
    if not keep:
        out = _empty(length, status="rejected", reason="no_good_windows")
        out.detail = (
            _none_passed(starts.size, rejected, opts.qc, opts.window_s)
            if starts.size
            else f"shorter than one {opts.window_s:g}-s window after alignment"
        )
    else:
        kept = np.array(keep, dtype=np.int64)
        idx = kept[:, None] + np.arange(length)
        out = RecordWindows(ppg[idx + lag], abp[idx], kept, np.array(sbp), np.array(dbp))
    out.lag = lag if opts.align else None
    out.ppg_inverted = inverted
    out.windows_total = int(starts.size)
    out.rejected = dict(sorted(rejected.items()))
    out.rates, out.rate_windows = rates, rate_windows
    return out
