"""Tests that pin behaviour a mutation audit of the synthetic generator
(``innpar_freia/data/synthetic.py``) found unguarded: each one fails when the bug named in its
docstring is put into the generator. Bounds follow from the generator's documented physiology
and formulas (ranges, pulse shape, noise levels), with slack; each was checked to pass on the
generator and fail on the named bug.

The generator's subjects rarely drift to its limits (of 100 000 subjects of seed 0 over
10 minutes only two dip below the 25 mmHg pulse-pressure floor, by under 0.3 mmHg), so limits
are checked on a subject whose slow drifts are pushed past them: ``_slow_drift`` is wrapped to
add a large swing to the heart-rate (amplitude 4), SBP (6) and DBP (3) drifts, leaving the
random draws (and so everything else about the subject) as they were.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from innpar_freia.data import synthetic
from innpar_freia.data.synthetic import Recording, synthesize_recording

FS = 125.0
_REAL_DRIFT = synthetic._slow_drift


def _pushed(monkeypatch: pytest.MonkeyPatch) -> Recording:
    """One minute of subject 0 (seed 0, 125 Hz) with its HR, SBP and DBP drifts swung far
    past the documented ranges: HR +-60 bpm (40 s period), SBP +-80 mmHg and DBP +-70 mmHg
    (60 s, a quarter apart), so that SBP hits 90 and 180, DBP hits 50 and 110 and rises past
    SBP - 25, and HR hits 50 and 120."""
    push = {
        4.0: lambda t: 60.0 * np.sin(2 * np.pi * t / 40.0),
        6.0: lambda t: 80.0 * np.sin(2 * np.pi * t / 60.0),
        3.0: lambda t: 70.0 * np.cos(2 * np.pi * t / 60.0),
    }

    def drift(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
        out = _REAL_DRIFT(rng, t, amplitude)  # same random draws as the real generator
        return out + push[amplitude](t) if amplitude in push else out

    monkeypatch.setattr(synthetic, "_slow_drift", drift)
    return synthesize_recording(0, 1.0, FS, seed=0)


def _beat_pulse_pressures(rec: Recording) -> np.ndarray:
    """Per whole beat of the ABP waveform: highest minus lowest pressure (mmHg)."""
    onsets = np.round(rec.beat_onsets_s * rec.fs).astype(int)
    return np.array([np.ptp(rec.abp[a:b]) for a, b in itertools.pairwise(onsets)])


def test_pulse_pressure_floor_holds_when_dbp_drifts_up_to_sbp(monkeypatch) -> None:
    """Bugs: the clip ``dbp <= sbp - 25`` removed, or its 25 mmHg changed (e.g. to 20 or 30):
    the ABP then has beats whose pulse pressure is below 25 mmHg (DBP at or above SBP)."""
    rec = _pushed(monkeypatch)
    pp = rec.beat_sbp - rec.beat_dbp
    assert pp.min() >= 25.0 - 1e-9
    # The floor is active (and exactly 25, not more) on a good part of the recording ...
    floored = np.isclose(pp, 25.0, rtol=0, atol=1e-9)
    assert floored.mean() > 0.2
    # ... and the ABP waveform itself keeps >= ~25 mmHg from foot to peak in every beat
    # (0.3 mmHg noise and the within-beat drift move it by well under 2 mmHg).
    wave_pp = _beat_pulse_pressures(rec)
    assert wave_pp.min() > 23.0
    assert np.median(wave_pp[floored[:-1]]) < 28.0  # not a floor higher than 25
    # Premise: without the floor this subject's DBP would come close to or pass its SBP.
    monkeypatch.setattr(synthetic, "MIN_PULSE_PRESSURE", 0.0)
    unfloored = _pushed(monkeypatch)
    assert (unfloored.beat_sbp - unfloored.beat_dbp).min() < 5.0


def test_pulse_pressure_floor_in_an_unpushed_subject() -> None:
    """Bug: the pulse-pressure clip removed. Subject 42353 of seed 0 is one of the rare real
    subjects whose DBP drifts to within 25 mmHg of its SBP (about 6 minutes in)."""
    rec = synthesize_recording(42353, 8.0, 16.0, seed=0)
    pp = rec.beat_sbp - rec.beat_dbp
    assert pp.min() >= 25.0 - 1e-9
    assert np.isclose(pp, 25.0, rtol=0, atol=1e-9).sum() >= 3


def test_documented_ranges_hold_when_drifts_push_past_them(monkeypatch) -> None:
    """Bugs: HR_RANGE, SBP_RANGE or DBP_RANGE widened or narrowed (e.g. HR down to 40 bpm,
    SBP up to 200 mmHg), or a clip dropped: a subject pushed past every limit must sit
    exactly on them (HR 50..120 bpm, SBP 90..180 mmHg, DBP 50..110 mmHg)."""
    rec = _pushed(monkeypatch)
    for values, (lo, hi) in (
        (rec.beat_hr, (50.0, 120.0)),
        (rec.beat_sbp, (90.0, 180.0)),
        (rec.beat_dbp, (50.0, 110.0)),
    ):
        assert values.min() == pytest.approx(lo, abs=1e-9)
        assert values.max() == pytest.approx(hi, abs=1e-9)
    # The beats really come at the clipped rate: 50 bpm = 1.2 s, 120 bpm = 0.5 s apart.
    intervals = np.diff(rec.beat_onsets_s)
    assert 1.15 < intervals.max() < 1.3 and 0.45 < intervals.min() < 0.55
    # and the waveform's peaks and feet follow the clipped SBP and DBP
    onsets = np.round(rec.beat_onsets_s * rec.fs).astype(int)
    peaks = np.array([rec.abp[a:b].max() for a, b in itertools.pairwise(onsets)])
    assert 178.0 < peaks.max() < 182.0 and 88.0 < peaks.min() < 92.0


# ----------------------------------------------------------------- pulse shape of the ABP


def _at(rec: Recording, systole_fraction: float) -> np.ndarray:
    """Per beat but the last: the ABP ``systole_fraction`` * sqrt(RR / 0.8 s) seconds after
    the beat's foot (the generator's Bazett-scaled clock), above the beat's DBP, over its
    pulse pressure (0 at the foot, 1 at the systolic peak, noise aside)."""
    on, rr = rec.beat_onsets_s[:-1], np.diff(rec.beat_onsets_s)
    idx = np.round((on + systole_fraction * np.sqrt(rr / 0.8)) * rec.fs).astype(int)
    dbp = rec.beat_dbp[:-1]
    return (rec.abp[idx] - dbp) / (rec.beat_sbp[:-1] - dbp)


def _dip(rec: Recording, centre: float, half_width: float = 0.02) -> float:
    """Median over beats of how far the ABP at ``centre`` lies below the chord between
    ``centre`` +- ``half_width`` (fractions of the Bazett clock, as in :func:`_at`)."""
    chord = (_at(rec, centre - half_width) + _at(rec, centre + half_width)) / 2
    return float(np.median(chord - _at(rec, centre)))


@pytest.mark.parametrize(("subject", "seed"), [(0, 0), (3, 0), (1, 1)])
def test_abp_has_a_sharp_incisura_at_valve_closure(subject: int, seed: int) -> None:
    """Bugs: the dicrotic-notch Gaussian removed (the diastolic run-off and dicrotic wave
    still give a local minimum, so a min-then-max test misses it), or moved away from the
    end of systole. At aortic valve closure (0.335 s at 75 bpm, Bazett-scaled) the pressure
    has a narrow incisura: within +-20 ms it dips >= 1.5 % of the pulse pressure below the
    chord of its neighbours (the notch is 5..10 % deep with a 16 ms width; without it the
    dip is under 0.5 %), more than 50 ms earlier or later."""
    rec = synthesize_recording(subject, 1.0, 500.0, seed=seed)
    at_closure = _dip(rec, 0.335)
    assert at_closure > 0.015
    assert at_closure > 2 * _dip(rec, 0.285) and at_closure > 2 * _dip(rec, 0.385)


@pytest.mark.parametrize(("subject", "seed"), [(0, 0), (3, 0), (1, 1)])
def test_abp_has_a_dicrotic_wave_after_the_notch(subject: int, seed: int) -> None:
    """Bug: the dicrotic-wave Gaussian removed (the run-off step alone still rises after the
    notch). The dicrotic wave (peak ~0.39 s after the foot at 75 bpm) stands >= 17 % of the
    pulse pressure above the diastolic pressure 0.15 s later; the run-off alone decays by
    only ~13 % over that time."""
    rec = synthesize_recording(subject, 1.0, 500.0, seed=seed)
    assert np.median(_at(rec, 0.39) - _at(rec, 0.54)) > 0.17


def test_stiffer_subjects_carry_a_larger_reflected_wave() -> None:
    """Bug: the pulse shape made independent of the subject's pressure (the module promises
    that stiffer arteries, i.e. higher pressure, carry a larger reflected wave). Across ten
    subjects the late-systolic pressure (0.23 s after the foot at 75 bpm, where the reflected
    wave peaks) rises with the subject's mean SBP: rank correlation above 0.7."""
    from scipy.stats import spearmanr

    recs = [synthesize_recording(i, 1.0, 250.0, seed=0) for i in range(10)]
    late = [np.median(_at(rec, 0.23)) for rec in recs]
    assert spearmanr([rec.beat_sbp.mean() for rec in recs], late)[0] > 0.7


def test_blood_pressure_is_modulated_by_breathing() -> None:
    """Bugs: the respiratory swing of SBP (3 mmHg) or DBP (1.5 mmHg) dropped, or DBP swung
    against SBP. Beat to beat, after removing a 15-beat running mean (the slow drifts), SBP
    swings with a standard deviation of 1.2..3 mmHg and DBP with about half that,
    0.5..1.5 mmHg, the two in phase (correlation above 0.8)."""
    for subject in range(3):
        rec = synthesize_recording(subject, 1.0, 125.0, seed=0)
        swings = []
        for values, (lo, hi) in ((rec.beat_sbp, (1.2, 3.0)), (rec.beat_dbp, (0.5, 1.5))):
            swings.append(values[7:-7] - np.convolve(values, np.ones(15) / 15, mode="valid"))
            assert lo < swings[-1].std() < hi
        assert np.corrcoef(*swings)[0, 1] > 0.8


def test_breathing_rate_is_12_to_20_per_minute() -> None:
    """Bug: the breathing rate drawn from a wider range (e.g. from 6 per minute). The beat
    to beat SBP swing (slow drifts removed) of each of eight subjects peaks at a frequency
    within 0.2..0.33 Hz (slack for the 2-minute resolution: 0.18..0.35 Hz)."""
    from scipy import signal as sps

    freqs = np.linspace(0.05, 0.6, 400)
    for subject in range(8):
        rec = synthesize_recording(subject, 2.0, 125.0, seed=0)
        sbp = rec.beat_sbp
        fast = sbp[7:-7] - np.convolve(sbp, np.ones(15) / 15, mode="valid")
        power = sps.lombscargle(rec.beat_onsets_s[7:-7], fast - fast.mean(), 2 * np.pi * freqs)
        assert 0.18 < freqs[np.argmax(power)] < 0.35


@pytest.mark.parametrize("minutes", [round(0.5 + 0.0015 * k, 4) for k in range(14)])
def test_a_beat_cut_by_the_end_is_not_squeezed(minutes: float) -> None:
    """Bug (fixed): the last beat, cut by the end of the recording, was shaped into what was
    left of it: a whole pulse (DBP, SBP, DBP) squeezed into as little as 4 samples (a spike
    at the very end), or a pulse back at DBP 0.18 s after its foot. It is the beginning of a
    beat like the one before it: sample for sample it stays within 6 mmHg of that beat
    (same shape; SBP, DBP and rate drift little from one beat to the next)."""
    rec = synthesize_recording(0, minutes, FS, seed=0)  # cut 0.03..0.76 s into its last beat
    a, b = np.round(rec.beat_onsets_s[-2:] * FS).astype(int)
    cut = rec.abp[b:]
    assert len(cut) < b - a  # the last beat is cut
    assert np.abs(cut - rec.abp[a : a + len(cut)]).max() < 6.0


# ------------------------------------------------------------------------------ the PPG


def _high_band_sigma(x: np.ndarray, fs: float, cut: float = 30.0) -> float:
    """Standard deviation of white noise in ``x`` estimated from its band above ``cut`` Hz
    (where the generated pulses have essentially no power)."""
    from scipy import signal as sps

    sos = sps.butter(4, cut / (fs / 2), btype="high", output="sos")
    return float(sps.sosfiltfilt(sos, x).std() / np.sqrt(1 - cut / (fs / 2)))


def _ppg_beats(rec: Recording) -> list[np.ndarray]:
    """The PPG cut at the beat feet moved by the PPG's delay."""
    onsets = np.round(rec.beat_onsets_s * rec.fs).astype(int) + round(rec.delay_s * rec.fs)
    onsets = onsets[onsets < len(rec.ppg)]
    return [rec.ppg[a:b] for a, b in itertools.pairwise(onsets)]


@pytest.mark.parametrize("subject", range(4))
def test_ppg_carries_noise_and_baseline_wander(subject: int) -> None:
    """Bugs: the PPG's white noise dropped or made ten times larger, or its baseline wander
    dropped (the module promises "baseline wander, noise" on the PPG). The noise is about
    1 % of the pulse (0.3..2 % of the median beat's peak-to-peak); the beat feet wander by
    3..20 % of it (breathing and slow drift), where without wander they would sit within
    about 1 %."""
    rec = synthesize_recording(subject, 1.0, 250.0, seed=0)
    beats = _ppg_beats(rec)
    pulse = np.median([np.ptp(b) for b in beats])
    assert 0.003 < _high_band_sigma(rec.ppg, rec.fs) / pulse < 0.02
    assert 0.03 < np.std([b.min() for b in beats]) / pulse < 0.2


@pytest.mark.parametrize("subject", range(4))
def test_ppg_baseline_drifts_over_minutes(subject: int) -> None:
    """Bug: the slow part of the PPG's baseline wander dropped (only the breathing part
    left). Averaged over 31 beats (breathing averages out), the beat feet still move over
    5 minutes by more than 8 % of the pulse (the drift is 0.1 * up to 1.5 units against a
    pulse of about 1); without it they stay within about 3 %."""
    rec = synthesize_recording(subject, 5.0, 50.0, seed=0)
    beats = _ppg_beats(rec)
    pulse = np.median([np.ptp(b) for b in beats])
    feet = np.convolve([b.min() for b in beats], np.ones(31) / 31, mode="valid")
    assert np.ptp(feet) > 0.08 * pulse


@pytest.mark.parametrize("subject", [0, 1, 4])
def test_ppg_is_low_passed_relative_to_the_abp(subject: int) -> None:
    """Bug: the PPG's 4 Hz low-pass widened (e.g. to 8 Hz). Relative to the ABP it is a copy
    of, the PPG keeps its 1..2 Hz content but loses most of its 7..9 Hz content (a 4 Hz
    second-order Butterworth run forward and backward passes 6 % at 8 Hz): the amplitude
    ratio PPG/ABP at 7..9 Hz is under a quarter of that at 1..2 Hz."""
    from scipy import signal as sps

    rec = synthesize_recording(subject, 1.0, 250.0, seed=0)
    f, abp = sps.welch(rec.abp - rec.abp.mean(), rec.fs, nperseg=1000)
    _, ppg = sps.welch(rec.ppg - rec.ppg.mean(), rec.fs, nperseg=1000)
    ratio = np.sqrt(ppg / abp)
    assert ratio[(f >= 7) & (f <= 9)].mean() < 0.25 * ratio[(f >= 1) & (f <= 2)].mean()


@pytest.mark.parametrize("subject", range(4))
def test_ppg_pulse_is_compressed(subject: int) -> None:
    """Bug: the non-linear pressure-to-volume compression dropped. Compressed, a PPG beat
    spends much of its time near its peak: its mean level is above 43 % of its
    peak-to-peak (the uncompressed, ABP-like pulse sits below 41 %)."""
    rec = synthesize_recording(subject, 1.0, 250.0, seed=0)
    beats = _ppg_beats(rec)
    assert np.median([np.mean((b - b.min()) / np.ptp(b)) for b in beats]) > 0.43


def test_ppg_amplitude_follows_pulse_pressure_and_sbp(monkeypatch) -> None:
    """Bugs: the PPG amplitude made independent of the pulse pressure, or of the SBP (the
    module promises an amplitude that depends on the subject's pressure). The generator
    scales a beat by sqrt(PP / 50) * (1 - 0.15 * (SBP - SBP0) / 30), SBP0 the subject's level
    (100..160 mmHg): fitted as a * sqrt(PP) + b * sqrt(PP) * SBP over the beats of a subject
    whose pressures swing widely, a > 0 and b / a = -0.005 / (1 + 0.005 * SBP0), i.e.
    between -0.0034 and -0.0028 (slack: -0.004..-0.0025)."""
    rec = _pushed(monkeypatch)
    beats = _ppg_beats(rec)
    n = len(beats)
    root_pp = np.sqrt(rec.beat_sbp[:n] - rec.beat_dbp[:n])
    amp = np.array([np.ptp(b) for b in beats])
    (a, b), *_ = np.linalg.lstsq(np.c_[root_pp, root_pp * rec.beat_sbp[:n]], amp, rcond=None)
    assert a > 0 and -0.004 < b / a < -0.0025


def test_ppg_gain_and_offset_are_per_subject() -> None:
    """Bugs: the per-subject PPG gain (0.5..3) or offset (-1..2) dropped. Across eight
    subjects the median beat's peak-to-peak varies more than 3-fold (compliance and pressure
    alone give about 2-fold) and the median level spans more than 2 units."""
    recs = [synthesize_recording(i, 1.0, 250.0, seed=0) for i in range(8)]
    pulses = [np.median([np.ptp(b) for b in _ppg_beats(rec)]) for rec in recs]
    levels = [np.median(rec.ppg) for rec in recs]
    assert max(pulses) > 3 * min(pulses)
    assert max(levels) - min(levels) > 2.0


@pytest.mark.parametrize("subject", range(3))
def test_abp_carries_0_3_mmhg_of_measurement_noise(subject: int) -> None:
    """Bug: the ABP's measurement noise dropped or changed: it is white, 0.3 mmHg."""
    rec = synthesize_recording(subject, 1.0, 250.0, seed=0)
    assert 0.25 < _high_band_sigma(rec.abp, rec.fs) < 0.35


def test_noise_differs_between_subjects_and_seeds() -> None:
    """Bug: every subject (or seed) given the same noise: the high-band residuals of two
    subjects, or of one subject under two seeds, are uncorrelated."""
    from scipy import signal as sps

    sos = sps.butter(4, 30.0 / 62.5, btype="high", output="sos")
    res = [
        sps.sosfiltfilt(sos, synthesize_recording(i, 0.5, 125.0, seed=s).ppg)
        for i, s in ((0, 0), (1, 0), (0, 1))
    ]
    for a, b in itertools.combinations(res, 2):
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.1


# -------------------------------------------------------------------- the window file


def test_default_is_five_folds(tmp_path) -> None:
    """Bug: DEFAULT_FOLDS changed: a file of 6 subjects gets 5 folds unless asked."""
    from innpar_freia.data.store import read_info
    from innpar_freia.data.synthetic import synthesize_dataset

    info = read_info(synthesize_dataset(tmp_path / "f.h5", subjects=6, minutes=0.1, fs=50.0))
    assert sorted(set(info.fold)) == [0, 1, 2, 3, 4]
    assert info.provenance["folds"] == 5
