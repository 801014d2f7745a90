"""Seeded, deterministic synthetic paired PPG/ABP: the embedded default dataset.

Each subject has its own heart rate, systolic/diastolic pressure and pulse shape, all
drifting slowly over minutes and modulated by breathing. ABP is built beat by beat from a
sum-of-Gaussians pulse with a dicrotic notch, scaled to the beat's DBP..SBP. The PPG is a
delayed, low-passed, non-linearly compressed copy of the pressure pulse whose amplitude and
reflected-wave content depend on the subject's pressure (so the level is partly
learnable), plus baseline wander, noise and an arbitrary per-subject gain and offset.
Windows are cut after aligning the PPG to the ABP by the known delay, as in bp-benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from scipy import signal as sps

from innpar_freia.data.limits import SYNTH_RANGES, check_in_range, check_whole_in_range
from innpar_freia.data.splits import MIN_FOLDS
from innpar_freia.data.store import WindowWriter
from innpar_freia.errors import DataError, check_flag

MIN_FS = 16.0
HR_RANGE = (50.0, 120.0)
SBP_RANGE = (90.0, 180.0)
DBP_RANGE = (50.0, 110.0)
MIN_PULSE_PRESSURE = 25.0
# Cross-validation folds of a synthetic file unless asked otherwise.
DEFAULT_FOLDS = 5


@dataclass
class Recording:
    """One synthetic subject: continuous signals at ``fs`` (PPG not yet aligned)."""

    subject: str
    fs: float
    ppg: np.ndarray
    abp: np.ndarray
    delay_s: float
    beat_onsets_s: np.ndarray
    beat_sbp: np.ndarray
    beat_dbp: np.ndarray
    beat_hr: np.ndarray


def _slow_drift(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
    """Sum of three random sinusoids with periods of 40 s to 10 min, peak ~``amplitude``."""
    out = np.zeros_like(t)
    for _ in range(3):
        period = rng.uniform(40.0, 600.0)
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 2.0


def _pulse(tau: np.ndarray, period: np.ndarray, shape: dict[str, float]) -> np.ndarray:
    """Normalised pressure pulse (0 at beat onset and end, 1 at systolic peak).

    ``tau``: seconds since beat onset; ``period``: beat duration (s), per sample. Timings
    scale with sqrt(period / 0.8 s) like systole does (Bazett).
    """
    f = np.sqrt(np.clip(period, 0.3, 2.0) / 0.8)

    def g(mu: float, sigma: float) -> np.ndarray:
        return np.exp(-0.5 * ((tau - mu * f) / (sigma * f)) ** 2)

    p = (
        g(0.12, 0.05)
        + shape["reflected"] * g(0.23, 0.07)
        - shape["notch"] * g(0.335, 0.016)
        + shape["dicrotic"] * g(0.39, 0.05)
    )
    # Diastolic run-off after valve closure: an exponential decay towards the next beat.
    after = tau - 0.33 * f
    runoff = 0.45 / (1 + np.exp(-after / 0.02)) * np.exp(-np.clip(after, 0, None) / 0.55)
    p = p + runoff
    return p


def synthesize_recording(subject_index: int, minutes: float, fs: float, seed: int = 0) -> Recording:
    """One subject's continuous PPG (delayed, monitor units) and ABP (mmHg) at ``fs`` Hz."""
    if not np.isfinite(fs) or fs < MIN_FS:
        raise DataError(f"fs must be at least {MIN_FS:g} Hz for synthetic data, but is {fs}")
    if minutes <= 0:
        raise DataError(f"minutes must be positive, but is {minutes}")
    rng = np.random.default_rng([seed, subject_index])
    duration = minutes * 60.0
    # Simulate a 3 s lead-in and drop it, so the recording does not start on a cut beat.
    lead = round(3.0 * fs)
    n_out = round(duration * fs)
    n = n_out + lead
    t = np.arange(n) / fs

    # Per-subject levels, then slow drifts and breathing.
    hr0 = rng.uniform(58.0, 100.0)
    sbp0 = rng.uniform(100.0, 160.0)
    dbp0 = float(np.clip(sbp0 * rng.uniform(0.50, 0.64), 55.0, 95.0))
    resp_hz = rng.uniform(0.2, 0.33)
    resp = np.sin(2 * np.pi * resp_hz * t + rng.uniform(0, 2 * np.pi))
    common = _slow_drift(rng, t, 1.0)
    hr = np.clip(hr0 + 8.0 * common + _slow_drift(rng, t, 4.0) + 1.5 * resp, *HR_RANGE)
    sbp = sbp0 + 12.0 * common + _slow_drift(rng, t, 6.0) + 3.0 * resp
    dbp = dbp0 + 6.0 * common + _slow_drift(rng, t, 3.0) + 1.5 * resp
    sbp = np.clip(sbp, SBP_RANGE[0], SBP_RANGE[1])
    dbp = np.clip(np.minimum(dbp, sbp - MIN_PULSE_PRESSURE), *DBP_RANGE)

    # Beat timing from the instantaneous heart rate, with a little beat-to-beat jitter.
    phase = np.cumsum(hr / 60.0) / fs + rng.uniform(0, 1)
    phase += 0.01 * np.cumsum(rng.standard_normal(n)) / np.sqrt(fs)  # tiny HRV random walk
    phase = np.maximum.accumulate(phase)
    beat = np.floor(phase).astype(np.int64)
    onset_idx = np.flatnonzero(np.diff(beat, prepend=beat[0] - 1))
    onsets = onset_idx / fs
    # The beat that the end cuts is shaped whole (its length from the heart rate at its
    # onset), then cut: not squeezed into what is left of it.
    whole = onset_idx[-1] + round(60.0 * fs / hr[onset_idx[-1]])
    ends = np.append(onset_idx[1:], max(n, whole))
    period = np.repeat((ends - onset_idx) / fs, ends - onset_idx)
    tau = np.arange(ends[-1]) / fs - np.repeat(onsets, ends - onset_idx)

    # Pulse shape: stiffer arteries (higher pressure) carry a larger reflected wave.
    stiffness = np.clip((sbp0 - 100.0) / 60.0, 0, 1)
    shape = {
        "reflected": 0.25 + 0.35 * stiffness + rng.uniform(-0.05, 0.05),
        "notch": rng.uniform(0.05, 0.10),
        "dicrotic": 0.20 - 0.10 * stiffness + rng.uniform(-0.03, 0.03),
    }
    raw = _pulse(tau, period, shape)
    # Make every beat start and end at 0 (continuous at beat boundaries), peak at 1.
    beat_pos = np.repeat(np.arange(len(onset_idx)), ends - onset_idx)
    first = raw[onset_idx]
    last = raw[ends - 1]
    frac = tau / period
    pulse = raw - (first[beat_pos] + (last - first)[beat_pos] * frac)
    peak = np.maximum.reduceat(pulse, onset_idx)
    # (A guard: every beat, the cut one shaped whole, has a rise to normalise.)
    pulse = (pulse / np.where(peak > 1e-6, peak, 1.0)[beat_pos])[:n]
    beat_sbp = sbp[onset_idx]
    beat_dbp = dbp[onset_idx]
    abp = dbp + (sbp - dbp) * pulse + 0.3 * rng.standard_normal(n)

    # PPG: delayed, smoothed, compressed pressure pulse with pressure-dependent amplitude.
    delay = rng.uniform(0.15, 0.35)
    shift = round(delay * fs)
    compliance = rng.uniform(0.6, 1.4)
    amplitude = compliance * np.sqrt(np.clip(sbp - dbp, 1, None) / 50.0)
    vessel = 1.0 - np.exp(-2.5 * pulse)  # non-linear pressure -> volume
    sos = sps.butter(2, min(4.0, 0.4 * fs) / (fs / 2), output="sos")
    vessel = sps.sosfiltfilt(sos, vessel)
    ppg = amplitude * vessel * (1.0 - 0.15 * (sbp - sbp0) / 30.0)
    ppg = np.concatenate([np.full(shift, ppg[0]), ppg[: n - shift]])
    wander = 0.08 * resp + 0.1 * _slow_drift(rng, t, 1.0)
    ppg = ppg + wander + 0.008 * rng.standard_normal(n)
    gain, offset = rng.uniform(0.5, 3.0), rng.uniform(-1.0, 2.0)
    ppg = gain * ppg + offset

    keep = onset_idx >= lead
    return Recording(
        subject=f"synth_{subject_index:03d}",
        fs=float(fs),
        ppg=ppg[lead:],
        abp=abp[lead:],
        delay_s=shift / fs,
        beat_onsets_s=onsets[keep] - lead / fs,
        beat_sbp=beat_sbp[keep],
        beat_dbp=beat_dbp[keep],
        beat_hr=hr[onset_idx][keep],
    )


def assign_subject_splits(
    subjects: list[str], seed: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> dict[str, str]:
    """Subject-disjoint train/val/test assignment (at least one subject each when possible)."""
    order = list(np.random.default_rng(seed).permutation(len(subjects)))
    n = len(subjects)
    n_test = max(1, round(fractions[2] * n)) if n >= 3 else 0
    n_val = max(1, round(fractions[1] * n)) if n >= 3 else 0
    out = {}
    for rank, i in enumerate(order):
        out[subjects[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def synthesize_dataset(
    path: str | Path,
    *,
    subjects: int = 24,
    minutes: float = 4.0,
    fs: float = 125.0,
    window_seconds: float = 5.0,
    seed: int = 0,
    folds: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic window file: aligned, non-overlapping windows of every subject,
    with subject-disjoint train/val/test splits and ``folds`` subject-disjoint folds
    (0: none; otherwise at least 3 and at most ``subjects``; ``None``: ``DEFAULT_FOLDS``,
    or one per subject when there are fewer, and none below 3 subjects)."""
    # Checked for their kind first: subjects="8" failed as "'<' not supported".
    for name, value in (("subjects", subjects), ("seed", seed), ("folds", folds)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral)):
            raise TypeError(f"{name} must be a whole number, not {value!r}")
    for name, value in (("minutes", minutes), ("fs", fs), ("window_seconds", window_seconds)):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"{name} must be a number, not {value!r}")
    overwrite = check_flag("overwrite", overwrite)
    # The ranges of `innpar data synth`, every one: fs=1e7 ran for minutes before failing,
    # subjects=10**6 or minutes=1e6 filled the disk, minutes=nan was "cannot convert float
    # NaN to integer" and seed=-1 numpy's "expected non-negative integer".
    subjects = check_whole_in_range("subjects", subjects, SYNTH_RANGES)
    minutes = check_in_range("minutes", minutes, SYNTH_RANGES)
    fs = check_in_range("fs", fs, SYNTH_RANGES)
    window_seconds = check_in_range("window_seconds", window_seconds, SYNTH_RANGES)
    seed = check_whole_in_range("seed", seed, SYNTH_RANGES)
    if folds is not None:
        folds = check_whole_in_range("folds", folds, SYNTH_RANGES)
    if folds is None:
        folds = min(DEFAULT_FOLDS, subjects) if subjects >= MIN_FOLDS else 0
    # As 'innpar data split' refuses them, before anything is written: with fewer subjects
    # than folds some folds would be empty, and the nested scheme that training uses (test
    # fold, validation fold, training folds) needs at least three.
    if 0 < folds < MIN_FOLDS or folds < 0:
        raise DataError(
            f"the number of folds must be 0 (none) or at least {MIN_FOLDS} (test, validation "
            f"and training folds), but is {folds}"
        )
    if folds > subjects:
        raise DataError(
            f"{folds} subject-disjoint folds need at least {folds} subjects, but there are "
            f"{subjects}"
        )
    length = round(window_seconds * fs)
    if length < 8:
        raise DataError(f"window of {window_seconds} s at {fs} Hz has {length} samples, need >= 8")
    names = [f"synth_{i:03d}" for i in range(subjects)]
    split_of = assign_subject_splits(names, seed)
    order = np.random.default_rng([seed, 1]).permutation(subjects)
    fold_of = {names[i]: (rank % folds if folds >= 2 else -1) for rank, i in enumerate(order)}
    provenance = {
        "generator": "innpar_freia.data.synthetic",
        "seed": seed,
        "subjects": subjects,
        "minutes": minutes,
        "fs": fs,
        "window_seconds": window_seconds,
        "folds": folds,
    }
    with WindowWriter(
        path,
        fs=fs,
        window_length=length,
        source_format="synthetic",
        provenance=provenance,
        ppg_units="a.u.",
        description="synthetic paired PPG/ABP (innpar-freia embedded default data)",
        overwrite=overwrite,
    ) as writer:
        for i in range(subjects):
            rec = synthesize_recording(i, minutes, fs, seed)
            shift = round(rec.delay_s * fs)
            # Align as bp-benchmark does: the PPG moves earlier by the delay.
            ppg = rec.ppg[shift:]
            abp = rec.abp[: len(ppg)]
            starts = np.arange(0, len(abp) - length + 1, length)
            if len(starts) == 0:
                raise DataError(
                    f"{minutes} min is shorter than one {window_seconds} s window after alignment"
                )
            idx = starts[:, None] + np.arange(length)
            writer.append(
                ppg[idx],
                abp[idx],
                subject=rec.subject,
                window_id=[f"{rec.subject}_{s:07d}" for s in starts],
                split=split_of[rec.subject],
                fold=fold_of[rec.subject],
                start=starts,
            )
    return Path(path)
