"""Blood pressure of a reconstructed recording: per-beat SBP/DBP/MAP, calibration from a cuff
reading or a reference ABP segment (the protocol's rule), and protocol metrics against a
reference ABP. Pure array functions with an explicit ``fs`` in Hz; pressures in mmHg."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import signal as sps
from scipy.ndimage import uniform_filter1d

from innpar_freia.errors import DataError, option
from innpar_freia.metrics import (
    BP_NAMES,
    MIN_CALIBRATION_PP,
    Calibration,
    calibration_for,
    error_stats,
    waveform_stats,
)
from innpar_freia.reconstruct import ABP_RANGE, detect_gaps, runs
from innpar_freia.reconstruct_limits import seconds_text
from innpar_freia.signal import bp_values_batch, prominence_threshold

# Beats longer than this (s) are pauses, not beats (30 bpm).
MAX_BEAT_SECONDS = 2.0
# Beats shorter than this (s) are not beats either (300 bpm): peaks are 0.3 s apart, so a
# shorter beat has a misplaced foot (on the real WFDB records 42 of 11,494, down to 0.03 s).
MIN_BEAT_SECONDS = 0.2


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

    def shifted(self, seconds: float) -> Beats:
        """The same beats with their times moved by ``seconds`` (onto the input's clock)."""
        return Beats(self.onset_s + seconds, self.peak_s + seconds, *self.rows().T[2:])

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


# How far before its systolic peak a beat's upstroke is looked for (s).
UPSTROKE_SECONDS = 0.3
# How far (a fraction of the beat's rise) the start of the upstroke may lie above the lowest
# pressure since the previous peak and still be the beat's foot.
FOOT_TOLERANCE = 0.3
# Feet are located on the signal smoothed by a moving average this long (s), so that noise
# on the upstroke does not stop the walk back early. SBP and DBP are read from a quadratic
# least-squares (Savitzky-Golay) fit over as long: the raw sample at a peak is the highest
# of the noise there (2 mmHg of noise at 2 kHz read SBP 4 mmHg high), and a quadratic
# follows a rounded crest that a moving average would flatten. At 125 Hz the fit spans 3
# samples and is the signal itself.
FOOT_SMOOTH_SECONDS = 0.02


def beat_foot(x: np.ndarray, peak: int, start: int, fs: float) -> int | None:
    """The diastolic foot of the beat whose systolic peak is ``x[peak]``: where its upstroke
    starts, found by walking back from the steepest rise in the last
    :data:`UPSTROKE_SECONDS` before the peak while the pressure keeps falling (backwards in
    time) to the local minimum where the rise begins; on a flat bottom (a quantised signal)
    the foot is its last sample, where the rise leaves it. ``start`` is the previous peak (or
    the start of the run): no foot lies before it. When that point lies more than
    :data:`FOOT_TOLERANCE` of the beat's rise above the lowest pressure since ``start`` (a dip
    inside a two-humped upstroke), the lowest point is the foot. ``None`` when the walk
    reaches ``start``: the foot is not in the signal."""
    lo = max(start, peak - round(UPSTROKE_SECONDS * fs))
    if peak - lo < 2:
        return None
    steep = lo + int(np.argmax(np.diff(x[lo : peak + 1])))
    foot = steep
    while foot > start and x[foot - 1] <= x[foot]:
        foot -= 1
    if foot == start:
        return None
    while foot < steep and x[foot + 1] == x[foot]:
        foot += 1  # the end of a flat bottom, not its start
    lowest = start + int(np.argmin(x[start:peak]))
    if x[foot] > x[lowest] + FOOT_TOLERANCE * (x[peak] - x[lowest]):
        foot = lowest
    return foot if foot > start else None


def _downhill(x: np.ndarray, i: int, reach: int) -> int:
    """From sample ``i``, step to the lower neighbour while there is one, at most ``reach``
    samples away: the foot found on the smoothed signal, moved to the signal's own low
    point (smoothing moves a sharp foot's minimum by a sample or two); on a flat bottom, to
    its last sample."""
    lo, hi = max(0, i - reach), min(x.size - 1, i + reach)
    while True:
        if i > lo and x[i - 1] < x[i]:
            i -= 1
        elif i < hi and x[i + 1] < x[i]:
            i += 1
        else:
            break
    while i < hi and x[i + 1] == x[i]:
        i += 1  # a flat bottom's last sample, where the rise leaves it
    return i


def detect_beats(abp: np.ndarray, fs: float) -> Beats:
    """Beats of an ABP signal ``(n,)`` in mmHg (NaN = not available).

    In each finite run, systolic peaks are found as the protocol finds them (``find_peaks``,
    0.3 s apart, prominence from :func:`beat_prominence`), on the quadratic fit described at
    :data:`FOOT_SMOOTH_SECONDS` (the signal itself at 125 Hz), and each peak's foot by
    :func:`beat_foot` (on a moving average over as long); a beat runs from its foot to the
    next beat's foot (at most 2 s): SBP is the fit's value at the peak and DBP its lowest
    within the smoothing span around the foot; MAP the mean of the signal over the beat,
    heart rate 60 / beat duration. Anchoring beats on the systolic peaks keeps a dicrotic
    notch from being taken for a foot (finding feet as troughs split beats there and missed
    beats in fast rhythms), unless the dicrotic wave after it is late and large enough
    (0.3 s after the systolic peak, with the prominence of a beat) to be found as a peak of
    its own.
    A beat is left out when its foot or its end is not in the run, when it lasts less than
    :data:`MIN_BEAT_SECONDS` or more than :data:`MAX_BEAT_SECONDS`, when it holds a higher
    pressure than its peak (a peak that was not found), or when its mean lies below its DBP.
    """
    abp = np.asarray(abp, dtype=np.float64)
    cols: dict[str, list[float]] = {k: [] for k in _BEAT_FIELDS}
    for a, b in runs(np.isfinite(abp)):
        x = abp[a:b]
        if x.size < round(0.6 * fs):
            continue
        half = round(FOOT_SMOOTH_SECONDS * fs / 2)
        smooth = uniform_filter1d(x, 2 * half + 1, mode="nearest")  # odd width: no shift
        fit = sps.savgol_filter(x, 2 * half + 1, 2) if half else x
        # Peaks on the fit: on the raw samples, 2 mmHg of noise at 2 kHz made a bump in
        # diastole prominent enough to pass for a beat about once a minute.
        peaks = sps.find_peaks(
            fit, distance=max(1, int(0.3 * fs)), prominence=beat_prominence(fit, fs)
        )[0]
        if peaks.size < 2:
            continue  # a beat needs the next beat's foot as its end
        starts = [0, *peaks[:-1]]
        feet = [
            _downhill(x, foot, half) if foot is not None else None
            for foot in (
                beat_foot(smooth, int(p), int(s), fs) for s, p in zip(starts, peaks, strict=True)
            )
        ]
        for j in range(peaks.size - 1):
            t0, t1, peak = feet[j], feet[j + 1], int(peaks[j])
            if t0 is None or t1 is None:
                continue
            if not MIN_BEAT_SECONDS <= (t1 - t0) / fs <= MAX_BEAT_SECONDS:
                continue
            beat = x[t0:t1]
            sbp, dbp = float(fit[peak]), float(fit[max(0, t0 - half) : t0 + half + 1].min())
            if fit[t0:t1].max() > sbp or not dbp <= beat.mean() <= sbp:
                continue
            cols["onset_s"].append((a + t0) / fs)
            cols["peak_s"].append((a + peak) / fs)
            cols["sbp"].append(sbp)
            cols["dbp"].append(dbp)
            cols["map"].append(float(beat.mean()))
            cols["hr_bpm"].append(60.0 * fs / (t1 - t0))
    return Beats(*(np.asarray(cols[k], dtype=np.float64) for k in _BEAT_FIELDS))


# ----------------------------------------------------------------------------- calibration


def parse_cuff(text: str) -> tuple[float, float]:
    """``"120/80"`` -> ``(120.0, 80.0)`` mmHg, with a clear error for anything else."""
    parts = str(text).replace(" ", "").split("/")
    if parts[-1].lower().endswith("mmhg"):  # "120/80 mmHg", as a cuff reading is written
        parts[-1] = parts[-1][: -len("mmhg")]
    try:
        if len(parts) != 2:
            raise ValueError
        sbp, dbp = float(parts[0]), float(parts[1])
    except ValueError:
        raise DataError(
            f"calibration must be a cuff reading SBP/DBP in mmHg such as 120/80, not {text!r}"
        ) from None
    if not (ABP_RANGE[0] <= dbp < sbp <= ABP_RANGE[1]):
        swapped = ABP_RANGE[0] <= sbp < dbp <= ABP_RANGE[1]
        raise DataError(
            f"cuff reading {text!r} is not plausible: need {ABP_RANGE[0]:g} <= DBP < SBP <= "
            f"{ABP_RANGE[1]:g} mmHg" + (f" (SBP comes first: {dbp:g}/{sbp:g}?)" if swapped else "")
        )
    return sbp, dbp


@dataclass(frozen=True)
class CalibrationNames:
    """How a message tells a Python caller to set the calibration segment's start and
    length and a cuff reading: the names it passed them under, and where those sit
    (``where``: " in options"). The command line's options are named while it runs."""

    start: str = "start_s"
    length: str = "duration_s"
    cuff: str = "cuff=(SBP, DBP)"
    where: str = ""

    def another_time(self, longer: bool = False) -> str:
        """Which setting picks another segment (and, with ``longer``, a longer one)."""
        if longer:
            return option(
                "--calibration-at (or a longer --calibration-seconds)",
                f"{self.start} (or a longer {self.length}){self.where}",
            )
        return option("--calibration-at", f"{self.start}{self.where}")

    def start_at(self, text: str) -> str:
        return option(f"--calibration-at {text}", f"{self.start}={text}{self.where}")

    def a_cuff(self) -> str:
        return option("--calibration SBP/DBP", f"{self.cuff}{self.where}")


def calibrate_recording(
    pred: np.ndarray,
    fs: float,
    start_s: float,
    duration_s: float,
    *,
    cuff: tuple[float, float] | None = None,
    reference: np.ndarray | None = None,
    mode: str = "offset-scale",
    origin_s: float = 0.0,
    names: CalibrationNames = CalibrationNames(),
) -> tuple[Calibration, dict[str, Any]]:
    """The protocol's calibration rule (:func:`innpar_freia.metrics.calibration_for`) from
    one segment ``[start_s, start_s + duration_s)`` of a reconstructed ABP ``pred`` (mmHg).

    The prediction's level is its mean over the segment and its SBP/DBP the medians of its
    beats there (:func:`detect_beats`, what the per-beat table shows, so that its beats at
    the calibration time read the cuff's values; not the protocol's window peak and trough
    medians, see docs/protocol.md). The target is a cuff reading ``(SBP, DBP)`` (level
    from the prediction's shape, see ``calibration_for``), or a reference ABP ``(n,)`` in
    mmHg on the same time axis: its valid samples' mean level and its beats' median
    SBP/DBP in the segment.
    ``origin_s``: the time of ``pred[0]`` on the clock ``start_s`` is given in (a CSV time
    column's); messages and the description use that clock. ``names``: what messages call
    ``start_s``, ``duration_s`` and ``cuff`` (a caller that takes them under other names,
    such as ``reconstruct_file``'s options, gives its own).
    Returns the calibration and a JSON-ready description of what it used.
    """
    if (cuff is None) == (reference is None):
        raise ValueError("give exactly one of cuff and reference")
    n = pred.size
    if start_s < origin_s:
        raise DataError(
            f"the calibration segment starts at {seconds_text(start_s)} s, before the recording's "
            f"start ({seconds_text(origin_s)} s, its first time)"
        )
    a = max(0, round((start_s - origin_s) * fs))
    b = min(n, round((start_s - origin_s + duration_s) * fs))
    t0, t1 = a / fs, b / fs
    if b <= a:
        raise DataError(
            f"the calibration segment starts at {seconds_text(start_s)} s, after the recording's "
            f"end ({seconds_text(origin_s + n / fs)} s)"
        )
    seg = pred[a:b]
    all_beats = detect_beats(pred, fs)
    beats = all_beats.between(t0, t1)
    if not np.any(np.isfinite(seg)) or len(beats) == 0:
        why = (
            "the recording has a gap there"
            if not np.all(np.isfinite(seg))
            else "the segment is too short to hold a whole beat"
        )
        raise DataError(
            f"no reconstructed beats between {seconds_text(origin_s + t0)} and "
            f"{seconds_text(origin_s + t1)} s to "
            f"calibrate with; {why}: "
            f"choose another time with {names.another_time(longer=True)}"
            + _first_beats_hint(all_beats, origin_s, t0, names)
        )
    pred_sbp, pred_dbp = float(np.median(beats.sbp)), float(np.median(beats.dbp))
    pred_level = float(np.nanmean(seg))
    info: dict[str, Any] = {
        "mode": mode,
        "segment_s": [round(origin_s + t0, 4), round(origin_s + t1, 4)],
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
        all_ref_beats = detect_beats(ref, fs)
        ref_beats = all_ref_beats.between(t0, t1)
        if len(all_ref_beats) == 0:
            # Suggesting another time would send the user searching a channel that holds
            # nothing to calibrate with (record 100 of Challenge 2015: ABP a flat line).
            raise DataError(
                "the reference ABP has no valid beats anywhere in the recording (a flat "
                "line, missing or not a pressure signal); calibrate with a cuff reading "
                f"({names.a_cuff()}) instead"
            )
        if len(ref_beats) == 0:
            raise DataError(
                f"the reference ABP has no valid beats between {seconds_text(origin_s + t0)} and "
                f"{seconds_text(origin_s + t1)} s; choose another time with "
                f"{names.another_time()}" + _first_beats_hint(all_ref_beats, origin_s, t0, names)
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
    # offset-scale asked, the offset alone applied (a pulse pressure below
    # MIN_CALIBRATION_PP): the scale of 1 would otherwise pass for a measured one.
    info["offset_only"] = cal.offset_only
    return cal, info


def offset_only_warning(info: dict[str, Any]) -> str | None:
    """Why an offset-scale calibration (its description from :func:`calibrate_recording`)
    applied the offset alone: which pulse pressure of the calibration segment was below
    :data:`~innpar_freia.metrics.MIN_CALIBRATION_PP`; ``None`` when it did not."""
    if not info.get("offset_only"):
        return None
    source = "the cuff reading's" if info["source"] == "cuff" else "the reference ABP beats'"
    low = [
        f"{what} pulse pressure ({pp:.2f} mmHg)"
        for what, pp in (
            ("the reconstructed beats'", info["pred_sbp"] - info["pred_dbp"]),
            (source, info["ref_sbp"] - info["ref_dbp"]),
        )
        if pp < MIN_CALIBRATION_PP
    ]
    a, b = info["segment_s"]
    return (
        f"offset-scale calibration applied the offset alone: in the calibration segment "
        f"({seconds_text(a)}-{seconds_text(b)} s), {' and '.join(low)} "
        f"{'is' if len(low) == 1 else 'are'} below {MIN_CALIBRATION_PP:g} mmHg, too small "
        "to scale by"
    )


def _first_beats_hint(
    beats: Beats, origin_s: float, after_s: float, names: CalibrationNames
) -> str:
    """Where a segment with beats starts, for a message that asks for another start
    (``--calibration-at``, or what ``names`` calls it): the onset of the first beat after
    ``after_s`` (the segment asked for; else of the first beat at all), rounded down to 0.1 s
    on the recording's clock. Empty when there is no beat at all."""
    if len(beats) == 0:
        return ""
    later = beats.onset_s[beats.onset_s >= after_s]
    onset = float(later[0] if later.size else beats.onset_s[0])
    at = math.floor((origin_s + onset) * 10) / 10
    return f" (the first beats start at {seconds_text(at)} s: {names.start_at(seconds_text(at))})"


# ----------------------------------------------------------------------------- reference


def compare_with_reference(
    pred: np.ndarray,
    ref: np.ndarray,
    fs: float,
    window_seconds: float = 5.0,
    exclude: tuple[float, float] | None = None,
    origin_s: float = 0.0,
) -> dict[str, Any]:
    """Protocol metrics of a reconstructed ABP ``(n,)`` against a reference ABP ``(n,)``
    (both mmHg at ``fs``) on consecutive ``window_seconds`` windows where both are valid,
    leaving out windows that touch ``exclude`` (the calibration segment, seconds on the
    clock where ``pred[0]`` is at ``origin_s``)."""
    valid_ref, _ = detect_gaps(ref, fs, "abp")
    ok = valid_ref & np.isfinite(pred)
    length = round(window_seconds * fs)
    keep, excluded = [], 0
    for s in range(0, pred.size - length + 1, length):
        if not ok[s : s + length].all():
            continue
        t0, t1 = origin_s + s / fs, origin_s + (s + length) / fs
        if exclude is not None and t0 < exclude[1] and t1 > exclude[0]:
            excluded += 1
            continue
        keep.append(s)
    out: dict[str, Any] = {"window_seconds": window_seconds, "n_windows": len(keep)}
    if not keep:
        # Say why there is nothing to compare, rather than leave the comparison out.
        if excluded:
            out["why_none"] = (
                f"every {window_seconds:g} s window with a valid reference overlaps the "
                f"calibration segment ({seconds_text(exclude[0])}-{seconds_text(exclude[1])} s)"
            )
        else:
            out["why_none"] = (
                f"no {window_seconds:g} s window where both the reference and the "
                "reconstruction are valid (the reference is flat, missing or too short)"
            )
        return out
    p = np.stack([pred[s : s + length] for s in keep])
    r = np.stack([ref[s : s + length] for s in keep])
    out["waveform"] = waveform_stats(p, r)
    bp_p, bp_r = bp_values_batch(p, fs), bp_values_batch(r, fs)
    for j, name in enumerate(BP_NAMES):
        out[name] = error_stats(bp_p[:, j], bp_r[:, j])
    return out
