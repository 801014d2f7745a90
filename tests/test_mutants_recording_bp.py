"""Tests that pin what a mutation audit of the beat-by-beat blood pressure of a recording
(innpar_freia.recording_bp: the beats and their feet, the cuff reading, the calibration to a
cuff or a reference ABP segment and its hints, the comparison with a reference ABP) found
unguarded: each one fails when the bug named in its docstring is put into the package.
Expected values are worked out by hand from trains of beats whose corners lie on samples, so
that pressures, times and means are exact."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import beat_cycles, pulse_train, suggested_calibration_at

from innpar_freia.errors import DataError
from innpar_freia.recording_bp import (
    calibrate_recording,
    compare_with_reference,
    detect_beats,
    offset_only_warning,
    parse_cuff,
)

# --------------------------------------------------------------------------------------
# Beats
# --------------------------------------------------------------------------------------


def test_a_beat_of_two_seconds_is_kept_and_one_of_2_4_seconds_is_a_pause():
    """Guards against another longest beat than MAX_BEAT_SECONDS = 2 s (1.5 s or 2.5 s), and
    against leaving out a beat of exactly 2 s (``<`` for ``<=``, or its length counted one
    sample long). 1-s beats (80/120 at 60 bpm, 100 Hz) with a 1-s pause at 80 mmHg after
    the sixth and a 1.4-s pause after the twelfth: feet at 1..5 s, at 7 s (where the rise
    leaves the first pause) to 12 s, at 14.4 s (the second) to 19.4 s. The beat from 5 to
    7 s (30 bpm) is kept; the one from 12 to 14.4 s is not."""
    fs = 100.0
    one = pulse_train(1.0, fs, 100.0, 20.0)
    x = np.concatenate(
        [np.tile(one, 6), np.full(100, 80.0), np.tile(one, 6), np.full(140, 80.0), np.tile(one, 6)]
    )
    b = detect_beats(x, fs)
    onsets = [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 14.4, 15.4, 16.4, 17.4, 18.4]
    np.testing.assert_allclose(b.onset_s, onsets, atol=1e-9)
    np.testing.assert_allclose(b.hr_bpm, [60.0] * 4 + [30.0] + [60.0] * 10)
    np.testing.assert_allclose(b.sbp, 120.0)
    np.testing.assert_allclose(b.dbp, 80.0)


def _short_and_long(short: int, cycles: int = 20) -> np.ndarray:
    """At 125 Hz, cycles of 88 samples: a short beat 80 -> 120 (sample 10) -> 80 (sample
    ``short``), then a long one up to 120 at sample 50 (40 samples, 0.32 s, after the first
    peak) and down to 80 at 88 (48 samples before the next peak)."""
    i = np.arange(88 * cycles) % 88
    return np.interp(i, [0, 10, short, 50, 88], [80.0, 120.0, 80.0, 120.0, 80.0])


def test_a_beat_of_0_2_seconds_is_kept_and_one_of_0_16_seconds_is_not():
    """Guards against another shortest beat than MIN_BEAT_SECONDS = 0.2 s (0.1 s or 0.3 s).
    Short beats of 25 samples (0.2 s, 300 bpm) between long ones of 63 samples (0.504 s):
    the first short beat has no foot, the last long one no end, so 19 long and 19 short
    beats, alternating from the first long one at sample 25. Short beats of 20 samples
    (0.16 s) are left out: only the 19 long ones (68 samples, 0.544 s) remain."""
    b = detect_beats(_short_and_long(25), 125.0)
    onsets = np.sort(np.concatenate([88 * np.arange(19) + 25, 88 * np.arange(1, 20)])) / 125.0
    np.testing.assert_allclose(b.onset_s, onsets, atol=1e-9)
    np.testing.assert_allclose(b.hr_bpm, [60 * 125 / 63, 300.0] * 19)
    b = detect_beats(_short_and_long(20), 125.0)
    np.testing.assert_allclose(b.onset_s, (88 * np.arange(19) + 20) / 125.0, atol=1e-9)
    np.testing.assert_allclose(b.hr_bpm, 60 * 125 / 68)


def test_an_undershoot_after_systole_is_not_the_next_foot():
    """Guards against a smaller FOOT_TOLERANCE (0.1 for 0.3), and against measuring it from
    the foot (0.3 x (peak - foot)) instead of from the lowest pressure since the previous
    peak: at 125 bpm a catheter's undershoot to 90 mmHg 0.08 s after the 150 mmHg peak,
    a recovery to 110 and the next upstroke from 106 mmHg. The foot lies (106 - 90) /
    (150 - 90) = 0.27 of the rise above the undershoot, within 0.3: it stays the foot (DBP
    106). A tolerance of 0.1, or one of 0.3 x (150 - 106) = 13.2 above 90, moved it back to
    the undershoot (DBP 90). Corners on samples (0.48-s beats, 60 samples); 63 peaks, the
    first without a foot, the last without an end: 61 beats."""
    x = beat_cycles(30.0, 125.0, 125, [(0, 106), (0.08, 150), (0.16, 90), (0.24, 110)])
    b = detect_beats(x, 125.0)
    assert len(b) == 61
    np.testing.assert_allclose(b.dbp, 106.0, atol=1e-9)
    np.testing.assert_allclose(b.sbp, 150.0, atol=1e-9)
    np.testing.assert_allclose(b.onset_s, 0.48 * np.arange(1, 62), atol=1e-9)
    np.testing.assert_allclose(b.hr_bpm, 125.0)


def test_the_upstroke_is_looked_for_in_the_last_0_3_seconds_before_the_peak():
    """Guards against another UPSTROKE_SECONDS than 0.3 s (0.5 s or 0.2 s), at 125 Hz.
    A beat of 100 samples rising 1.6 mmHg a sample from its 80 mmHg foot to 120 (sample 25),
    down to a notch at 84 (68) and a dicrotic rise to 92 (71), steeper than the upstroke:
    0.43-0.46 s before the next peak, it was taken for the upstroke with a window of 0.5 s
    (its notch, within 0.3 of the rise, the foot: DBP 84). And a beat whose steep first rise
    (100 -> 140 mmHg in 5 samples) lies 0.24-0.28 s before its 150 mmHg peak, after a dip
    to 135 and a slow second rise: with 0.2 s only that slow rise was seen, its start (the
    dip) lay too high, and the foot went to the undershoot (90 mmHg) after the previous
    peak. In both the foot is the start of the cycle."""
    i = np.arange(100 * 20) % 100
    x = np.interp(i, [0, 25, 68, 71, 100], [80.0, 120.0, 84.0, 92.0, 80.0])
    b = detect_beats(x, 125.0)
    np.testing.assert_allclose(b.onset_s, 0.8 * np.arange(1, 19), atol=1e-9)
    np.testing.assert_allclose(b.dbp, 80.0)
    x = np.interp(i, [0, 5, 10, 35, 45, 55, 100], [100.0, 140.0, 135.0, 150.0, 90.0, 108.0, 100.0])
    b = detect_beats(x, 125.0)
    np.testing.assert_allclose(b.onset_s, 0.8 * np.arange(1, 19), atol=1e-9)
    np.testing.assert_allclose(b.dbp, 100.0)
    np.testing.assert_allclose(b.sbp, 150.0)


def test_a_shoulder_on_the_upstroke_is_walked_through_to_the_foot():
    """Guards against stopping the walk back at a flat step of the upstroke (``<`` for
    ``<=``): a beat of 98 samples at 125 Hz rising 1 mmHg a sample from its 80 mmHg foot to
    a shoulder at 88 mmHg (samples 8-14, within 0.3 of the rise of the foot), then 4 mmHg a
    sample to 120 (sample 22), down to 92 (sample 50) and 80 (sample 98); all values are
    multiples of 0.25, so the moving average is exact. The foot is at the start of each
    cycle (DBP 80), not at the shoulder's end (DBP 88, 0.112 s late). 20 cycles: the first
    peak has no foot in the run, the last no end: 18 beats."""
    i = np.arange(98 * 20) % 98
    x = np.interp(i, [0, 8, 14, 22, 50, 98], [80.0, 88.0, 88.0, 120.0, 92.0, 80.0])
    b = detect_beats(x, 125.0)
    np.testing.assert_allclose(b.onset_s, 98 * np.arange(1, 19) / 125.0, atol=1e-9)
    np.testing.assert_allclose(b.dbp, 80.0)
    np.testing.assert_allclose(b.sbp, 120.0)


def test_a_foot_found_only_at_the_run_s_start_is_not_a_foot():
    """Guards against keeping a foot that the rules put on the run's first sample, or that
    the walk back reaches the run's start for. 75 bpm with a two-humped systole whose second
    rise is the steeper (70 -> 130 in 0.12 s, a dip to 125, 165 at 0.2 s): the walk back
    from it stops at the dip, more than 0.3 of the rise above the lowest pressure, so the
    foot is that lowest pressure; for the first beat it is the run's first sample, where the
    beat may have started earlier. And a run that starts on a 0.4-s flat bottom: the walk
    back runs down the flat to the start, so the first beat is left out there too (it was
    given the flat's end as its foot). 36 beats from 0.8 s; 3 beats from 1.4 s."""
    x = beat_cycles(30.0, 125.0, 75, [(0, 70), (0.12, 130), (0.16, 125), (0.2, 165)])
    b = detect_beats(x, 125.0)
    np.testing.assert_allclose(b.onset_s, 0.8 * np.arange(1, 37), atol=1e-9)
    np.testing.assert_allclose(b.dbp, 70.0)
    np.testing.assert_allclose(b.sbp, 165.0)
    one = pulse_train(1.0, 125.0, 100.0, 20.0)
    b = detect_beats(np.concatenate([np.full(50, 80.0), np.tile(one, 5)]), 125.0)
    np.testing.assert_allclose(b.onset_s, [1.4, 2.4, 3.4], atol=1e-9)


def test_a_flat_stretch_does_not_lower_the_prominence_of_the_beats_around_it():
    """Guards against the lowest tile's prominence (``min``) in place of the median, and
    against half the prominence: a 5-s flat stretch at 80 mmHg (a damped line) has the
    protocol's floor of 5 mmHg; beats of 80/200 at 60 bpm with a dicrotic wave 20 mmHg above
    its notch, 0.43 s after the systolic peak, have 0.3 (P95 - P5) of about 30. With the
    floor (or 15) the dicrotic waves became peaks and every beat was split at the notch
    (150 bpm). With the median (30) they are not: beats at peaks 1.12..8.12 s (the one at
    9.12 s runs into the flat stretch, 6 s) and 15.12..23.12 s (24.12 s has no end)."""
    fs = 125.0
    x = beat_cycles(25.0, fs, 60, [(0, 80), (0.12, 200), (0.40, 110), (0.55, 130)])
    x[round(10 * fs) : round(15 * fs)] = 80.0
    b = detect_beats(x, fs)
    np.testing.assert_allclose(b.hr_bpm, 60.0)
    np.testing.assert_allclose(b.sbp, 200.0)
    np.testing.assert_allclose(b.peak_s, [*(0.12 + np.arange(1, 9)), *(0.12 + np.arange(15, 24))])


def test_a_run_of_one_second_between_gaps_holds_its_beat():
    """Guards against skipping finite runs shorter than 1.6 s (for 0.6 s): 80/120 at 120 bpm
    and 100 Hz (feet at multiples of 0.5 s, peaks 0.25 s later), valid only from 0.3 to
    1.45 s. The run holds the feet at 0.5 and 1.0 s and the peaks at 0.75 and 1.25 s (the
    pressure falls to 85 mmHg after it, so it stands out): one beat, from 0.5 to 1.0 s."""
    x = pulse_train(3.0, 100.0, 100.0, 20.0, hz=2.0)
    x[:30] = np.nan
    x[145:] = np.nan
    b = detect_beats(x, 100.0)
    np.testing.assert_allclose(b.rows(), [[0.5, 0.75, 120.0, 80.0, 100.0, 120.0]], atol=1e-9)


def test_a_beat_whose_mean_lies_below_its_diastolic_pressure_is_left_out():
    """Guards against dropping the check that a beat's mean lies between its DBP and SBP. At
    100 Hz, 2-s cycles of two beats from a 100 mmHg foot to 150 mmHg: a plain one (down to
    110 at 0.3 s, 100 at 1 s; mean 112) and one that falls to 85 mmHg for 0.65 s and comes
    back over a 104 mmHg hump (its next foot is 100, within 0.3 of the rise of 85). Its mean,
    0.1 x 125 + 0.1 x 117.5 + 0.65 x 85 + 0.08 x 94.5 + 0.07 x 102 = 94.2, is below its DBP:
    it is not reported. The plain beats are, from 2 s (the one at 0 s has no foot)."""
    i = np.arange(2000) % 200
    x = np.interp(
        i,
        [0, 10, 30, 100, 110, 120, 185, 193, 200],
        [100.0, 150.0, 110.0, 100.0, 150.0, 85.0, 85.0, 104.0, 100.0],
    )
    b = detect_beats(x, 100.0)
    np.testing.assert_allclose(b.onset_s, [2, 4, 6, 8, 10, 12, 14, 16, 18], atol=1e-9)
    np.testing.assert_allclose(b.map, 112.0)


def test_a_recording_without_beats_has_an_empty_summary():
    """Guards against the summary of no beats claiming one (``{"n": 1}``): a flat line and a
    line of NaN hold no beat."""
    for x in (np.full(2500, 90.0), np.full(2500, np.nan)):
        b = detect_beats(x, 125.0)
        assert len(b) == 0 and b.summary() == {"n": 0}


# --------------------------------------------------------------------------------------
# The cuff reading
# --------------------------------------------------------------------------------------


def test_a_cuff_reading_may_lie_on_the_bounds_of_the_plausible_range():
    """Guards against a strict bound in ``20 <= DBP < SBP <= 250`` (20 or 250 refused), and
    against dropping the upper bound (251 accepted)."""
    assert parse_cuff("250/20") == (250.0, 20.0)
    for text in ("250.5/80", "120/19.5"):
        with pytest.raises(DataError, match="need 20 <= DBP < SBP <= 250 mmHg"):
            parse_cuff(text)


@pytest.mark.parametrize("text", ["80/80", "80/400", "10/120"])
def test_no_swap_is_suggested_where_the_swapped_reading_is_not_plausible(text):
    """Guards against suggesting 'SBP comes first' for a reading whose swap is not plausible
    either: SBP equal to DBP (80/80 swapped is 80/80), or a swapped value outside 20-250
    mmHg (80/400 as 400/80, 10/120 as 120/10)."""
    with pytest.raises(DataError, match="not plausible") as exc:
        parse_cuff(text)
    assert "comes first" not in str(exc.value)


def test_a_cuff_reading_may_be_written_with_spaces_in_its_unit():
    """Guards against keeping the spaces of a reading: "118 / 76 mm Hg" (the unit as often
    written) was refused."""
    assert parse_cuff("118 / 76 mm Hg") == (118.0, 76.0)


# --------------------------------------------------------------------------------------
# Calibration of a recording and its hints
# --------------------------------------------------------------------------------------


def test_a_segment_starting_at_the_recording_s_end_is_after_it():
    """Guards against accepting a segment that starts exactly where the recording ends
    (``b < a`` for ``b <= a``): it is empty, and was reported as 'too short to hold a beat'
    rather than after the recording's end (60 s)."""
    pred = pulse_train(60.0, 125.0, 70.0, 10.0)
    with pytest.raises(DataError, match=r"starts at 60 s, after the recording's end \(60 s\)"):
        calibrate_recording(pred, 125.0, 60.0, 10.0, cuff=(120.0, 80.0))


def test_a_segment_starting_before_the_input_s_clock_is_refused():
    """Guards against dropping the refusal of a segment that starts before the recording (on
    a clock whose first time is 1000 s, 995 s): it was cut silently to 1000-1015 s."""
    pred = pulse_train(60.0, 125.0, 70.0, 10.0)
    with pytest.raises(DataError, match=r"starts at 995 s, before the recording's start \(1000 s"):
        calibrate_recording(pred, 125.0, 995.0, 20.0, cuff=(120.0, 80.0), origin_s=1000.0)


def test_the_suggested_time_is_the_first_onset_at_or_after_the_segment_rounded_down():
    """Guards against the hint naming the first beat of the recording rather than the first
    at or after the segment, against leaving out a beat whose onset is the segment's start
    (``>`` for ``>=``), against looking after the segment's end, and against rounding the
    time to the nearest 0.1 s (a time after the onset, so the suggested segment misses that
    beat); and against going on to calibrate with a segment that has no gap and no beat (a
    ValueError, not this message), or calling such a segment a gap. 70 - 10 cos(2 pi (t -
    0.08)): feet at 0.08 + k s; the first 30 s are a gap, so the first onset is 30.08 s
    (sample 10 of the run), then 31.08 s, ..."""
    fs = 125.0
    t = np.arange(round(60 * fs)) / fs
    pred = 70.0 - 10.0 * np.cos(2 * np.pi * (t - 0.08))
    pred[: round(30 * fs)] = np.nan
    with pytest.raises(DataError, match=r"between 0 and 20 s.*has a gap there") as exc:
        calibrate_recording(pred, fs, 0.0, 20.0, cuff=(120.0, 80.0))
    assert suggested_calibration_at(str(exc.value)) == 30.0  # 30.08 rounded down, not 30.1
    # 31.08-31.48 s holds no systolic peak (31.58 s) and no gap; the beat whose onset is
    # 31.08 s is the first at or after it.
    with pytest.raises(DataError, match=r"between 31\.08 and 31\.48 s.*too short") as exc:
        calibrate_recording(pred, fs, 31.08, 0.4, cuff=(120.0, 80.0))
    assert suggested_calibration_at(str(exc.value)) == 31.0


def test_a_recording_without_any_beat_gets_no_suggestion():
    """Guards against the hint looking for the first beat of a recording that has none (an
    IndexError instead of the message)."""
    pred = np.full(round(30 * 125.0), np.nan)
    with pytest.raises(DataError, match="has a gap there") as exc:
        calibrate_recording(pred, 125.0, 0.0, 20.0, cuff=(120.0, 80.0))
    assert suggested_calibration_at(str(exc.value)) is None


def test_a_reference_calibration_uses_the_segment_s_mean_levels_and_beats_only():
    """Guards against the levels taken as medians (``nanmedian``) or over the whole
    recording, and against the reference's SBP/DBP taken from all its beats or the beat
    counts from the whole recording. At 100 Hz, 60 bpm, a beat through 60 (foot), 100
    (0.12 s), 75 (0.30 s), 85 (0.36 s): its sample mean is the trapezoid integral,
    0.12 x 80 + 0.18 x 87.5 + 0.06 x 80 + 0.64 x 72.5 = 76.55 mmHg (its median is not).
    Over 0-20 s the reference is 2 pred + 10 (130/210, level 163.1); after 20 s the
    prediction is 15 mmHg higher and the reference 3 pred - 90 (DBP 90). The segment
    0-20 s holds the beats with peaks at 1.12..19.12 s (0.12 s has no foot): 19."""
    fs = 100.0
    t = np.arange(round(60 * fs)) / fs
    shape = beat_cycles(60.0, fs, 60, [(0, 60), (0.12, 100), (0.30, 75), (0.36, 85)])
    pred = shape + 15.0 * (t >= 20.0)
    ref = np.where(t < 20.0, 2.0 * shape + 10.0, 3.0 * shape - 90.0)
    cal, info = calibrate_recording(pred, fs, 0.0, 20.0, reference=ref)
    assert info["pred_beats"] == info["ref_beats"] == 19
    assert info["pred_sbp"] == pytest.approx(100.0) and info["pred_dbp"] == pytest.approx(60.0)
    assert info["ref_sbp"] == pytest.approx(210.0) and info["ref_dbp"] == pytest.approx(130.0)
    assert info["pred_level"] == pytest.approx(76.55)
    assert info["ref_level"] == pytest.approx(163.1)
    assert info["scale"] == pytest.approx(2.0)
    np.testing.assert_allclose(cal.apply(pred)[: round(20 * fs)], ref[: round(20 * fs)], atol=1e-9)


def test_the_reference_dbp_is_the_median_beat_of_the_segment():
    """Guards against the reference's DBP taken as the mean over the segment's beats: a
    30 mmHg dip at the foot at 5 s (a flush artefact) gives one of the 19 beats of 0-20 s
    (peaks at 1.5..19.5 s) a DBP of 50; their mean is 80 - 30 / 19 = 78.42, their median
    the 80 of 100 - 20 cos(2 pi t) (at 100 Hz, crests and feet on samples)."""
    fs = 100.0
    ref = pulse_train(30.0, fs, 100.0, 20.0)
    dip = slice(round(4.9 * fs), round(5.1 * fs) + 1)
    ref[dip] -= 30.0 * np.sin(np.pi * np.linspace(0.0, 1.0, dip.stop - dip.start))
    _, info = calibrate_recording(pulse_train(30.0, fs, 70.0, 10.0), fs, 0.0, 20.0, reference=ref)
    assert info["ref_beats"] == 19
    assert info["ref_dbp"] == pytest.approx(80.0, abs=1e-6)
    assert info["ref_sbp"] == pytest.approx(120.0, abs=1e-6)


def test_an_offset_scale_calibration_that_applied_the_offset_alone_says_so():
    """Guards against the fallback of offset-scale to the offset alone (a pulse pressure
    below 1 mmHg: a cuff reading of 120/119.5) left out of the description: its scale of 1
    read as one measured. Asked for the offset alone, or given a pulse pressure to scale
    by, nothing fell back."""
    pred = pulse_train(60.0, 125.0, 70.0, 10.0)  # beats 80/60
    cal, info = calibrate_recording(pred, 125.0, 10.0, 20.0, cuff=(120.0, 119.5))
    assert cal.scale == 1.0 and info["offset_only"] is True
    assert offset_only_warning(info) == (
        "offset-scale calibration applied the offset alone: in the calibration segment "
        "(10-30 s), the cuff reading's pulse pressure (0.50 mmHg) is below 1 mmHg, too "
        "small to scale by"
    )
    for cuff, mode in (((120.0, 80.0), "offset-scale"), ((120.0, 119.5), "offset")):
        _, info = calibrate_recording(pred, 125.0, 10.0, 20.0, cuff=cuff, mode=mode)
        assert info["offset_only"] is False and offset_only_warning(info) is None
    # Beat detection's 5 mmHg prominence keeps the beats' own pulse pressures above 1 mmHg;
    # the wording for them, from a description made by hand.
    info.update(offset_only=True, source="reference ABP", pred_sbp=70.4, ref_sbp=80.7)
    info.update(pred_dbp=70.0, ref_dbp=80.0, segment_s=[0.0, 60.0])
    assert offset_only_warning(info) == (
        "offset-scale calibration applied the offset alone: in the calibration segment "
        "(0-60 s), the reconstructed beats' pulse pressure (0.40 mmHg) and the reference "
        "ABP beats' pulse pressure (0.70 mmHg) are below 1 mmHg, too small to scale by"
    )


# --------------------------------------------------------------------------------------
# Comparison with a reference ABP
# --------------------------------------------------------------------------------------


def test_the_comparison_leaves_out_the_calibration_segment_on_the_input_s_clock():
    """Guards against comparing windows on a clock from 0 s while the calibration segment is
    on the input's (starting at 1000 s), and against taking a reference window as valid
    because it is finite (10 mmHg is out of 20-250: a gap, with 0.25-s margins). 60 s in
    5-s windows: 1010-1020 s is the calibration (2 windows), 31-34 s of the reference is
    out of range (the window 30-35 s): 9 compared, each 3 mmHg high."""
    fs = 125.0
    ref = pulse_train(60.0, fs, 100.0, 20.0)
    pred = ref + 3.0
    ref[round(31 * fs) : round(34 * fs)] = 10.0
    c = compare_with_reference(pred, ref, fs, 5.0, exclude=(1010.0, 1020.0), origin_s=1000.0)
    assert c["n_windows"] == 9
    assert c["waveform"]["mae"] == pytest.approx(3.0)
    assert c["sbp"]["me"] == pytest.approx(3.0) and c["dbp"]["me"] == pytest.approx(3.0)
