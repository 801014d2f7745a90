"""Whole-recording reconstruction as array maths: windows, cross-fade stitching (no seams),
gaps, resampling back to the input's rate; and the recording's blood pressure: beats,
calibration, reference comparison."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import beat_cycles, pulse_train, suggested_calibration_at

from innpar_freia.errors import DataError
from innpar_freia.reconstruct import (
    EDGE_PAD,
    GAP_MARGIN,
    Reconstruction,
    crossfade_weights,
    detect_gaps,
    implausible_fraction,
    min_samples,
    reconstruct_array,
    runs,
    stitch,
    window_starts,
)
from innpar_freia.reconstruct_file import calibration_phrase
from innpar_freia.reconstruct_limits import seconds_text
from innpar_freia.recording_bp import (
    calibrate_recording,
    compare_with_reference,
    detect_beats,
    parse_cuff,
)

FS_IN, FS_MODEL, L = 250.0, 125.0, 625


def ppg_like(seconds: float, fs: float = FS_IN, seed: int = 0) -> np.ndarray:
    """A pulsatile signal with a drifting baseline (arbitrary units)."""
    t = np.arange(round(seconds * fs)) / fs
    rng = np.random.default_rng(seed)
    return (
        np.sin(2 * np.pi * 1.2 * t)
        + 0.3 * np.sin(2 * np.pi * 2.4 * t + 1.0)
        + 0.2 * np.sin(2 * np.pi * 0.05 * t)
        + 0.01 * rng.standard_normal(t.size)
    )


def identity(windows: np.ndarray) -> np.ndarray:
    return windows


def level_jumping_model(seed: int = 0):
    """Like a real model: each window is z-scored and mapped to mmHg with its own level (+-8
    mmHg), so neighbouring windows disagree where they overlap."""
    rng = np.random.default_rng(seed)

    def predict(w: np.ndarray) -> np.ndarray:
        z = (w - w.mean(axis=1, keepdims=True)) / w.std(axis=1, keepdims=True)
        return 100.0 + 15.0 * z + rng.uniform(-8.0, 8.0, size=(len(w), 1))

    return predict


def seam_ratio(out: np.ndarray, n_model: int, overlap: float) -> float:
    """Largest sample-to-sample step within 3 input samples of a window boundary, over the
    largest step anywhere else (the signal's own variation)."""
    pad = round(EDGE_PAD * L)
    hop = max(1, round(L * (1 - overlap)))
    starts = window_starts(n_model + 2 * pad, L, hop)
    ratio = FS_IN / FS_MODEL
    bounds = {round((s - pad) * ratio) for s in starts} | {
        round((s + L - pad) * ratio) for s in starts
    }
    d = np.abs(np.diff(out))
    near = np.zeros(d.size, dtype=bool)
    for b in bounds:
        if 0 < b < d.size:
            near[max(0, b - 3) : b + 3] = True
    return float(d[near].max() / d[~near].max())


def test_window_starts_cover_the_signal():
    assert window_starts(1000, 625, 312).tolist() == [0, 312, 375]
    assert window_starts(625, 625, 312).tolist() == [0]
    assert window_starts(624, 625, 312).size == 0
    s = window_starts(10_000, 625, 312)
    assert s[-1] + 625 == 10_000 and np.all(np.diff(s) <= 312)


def test_crossfade_weights_overlap_add_to_one():
    w = crossfade_weights(600)
    assert w.min() > 0  # a sample covered by one window keeps its value
    np.testing.assert_allclose(w[300:] + w[:300], 1.0, atol=1e-12)
    # Stitching a constant per window gives exactly the constants where only one window is.
    out = stitch(np.array([np.full(600, 1.0), np.full(600, 3.0)]), np.array([0, 300]), 900)
    assert out[0] == pytest.approx(1.0) and out[-1] == pytest.approx(3.0)
    assert np.all(np.diff(out) > -1e-12)  # a monotonic ramp from 1 to 3, no step
    assert np.max(np.diff(out)) < 2.0 / 100  # spread over the 300-sample overlap


def test_no_seams_at_window_boundaries():
    x = ppg_like(60.0)
    r = reconstruct_array(x, FS_IN, level_jumping_model(), FS_MODEL, L, overlap=0.5)
    assert r.valid.all() and r.signal.size == x.size
    n_model = round(x.size * FS_MODEL / FS_IN)
    # Cross-faded: no step at a boundary beyond the signal's own sample-to-sample variation
    # (a few % above it from blending two levels over half a window).
    assert seam_ratio(r.signal, n_model, 0.5) < 1.15
    # Control: the same model with abutting windows (no cross-fade) has visible seams, so the
    # check above can fail.
    hard = reconstruct_array(x, FS_IN, level_jumping_model(), FS_MODEL, L, overlap=0.0)
    assert seam_ratio(hard.signal, n_model, 0.0) > 2.0


@pytest.mark.parametrize("fs", [250.0, 100.0, 125.0, 64.0])
def test_resampling_round_trip_keeps_rate_length_and_values(fs):
    x = ppg_like(30.0, fs=fs)
    r = reconstruct_array(x, fs, identity, FS_MODEL, L)
    assert r.signal.shape == x.shape and r.fs == fs
    # With an identity "model" the chain resample -> windows -> stitch -> resample returns
    # the input, edges included (mirror padding, line-extended resampling).
    assert np.max(np.abs(r.signal - x)) < 0.03 * np.ptp(x)


@pytest.mark.parametrize("fs", [999.7, 2048.0])
def test_a_rate_without_a_simple_ratio_keeps_its_timing(fs):
    """To the model's rate and back by one factor and its exact inverse: approximated apart,
    the two ratios were not inverses, and 10 min at 999.7 Hz came back 170 ms late (33 mmHg
    errors on a pressure wave); at 2048 Hz 44 ms after 20 min."""
    x = ppg_like(600.0, fs=fs)
    r = reconstruct_array(x, fs, identity, FS_MODEL, L)
    assert r.signal.shape == x.shape
    # The exact ratio (1250/9997 at 999.7 Hz) leaves the recording's last model sample half
    # a sample short of its end: the last few input samples (4 ms) lie beyond it and are
    # extrapolated, a few % off, as a recording's first and last samples can be.
    edge = round(fs / FS_MODEL / 2)
    assert np.max(np.abs(r.signal - x)[:-edge]) < 0.03 * np.ptp(x)
    assert np.max(np.abs(r.signal - x)[-edge:]) < 0.05 * np.ptp(x)
    # The last minute too, where a drift is largest.
    tail = slice(-round(60 * fs), None)
    assert np.corrcoef(r.signal[tail], x[tail])[0, 1] > 0.999


def test_the_recording_start_is_left_out_with_its_transient():
    """A monitor's first PLETH sample (0.74 x the next in 13 of the 34 real records) was
    mirrored into a notch by the edge padding: the output then depended on it (a real
    network answered with -400 mmHg). The first GAP_MARGIN is a gap, and that sample no
    longer reaches any window."""
    x = ppg_like(30.0)
    glitch = x.copy()
    glitch[0] = x[1] + 5 * np.ptp(x)
    first = round(GAP_MARGIN * FS_IN)
    a, b = (
        reconstruct_array(s, FS_IN, level_jumping_model(), FS_MODEL, L, start_margin_s=GAP_MARGIN)
        for s in (x, glitch)
    )
    np.testing.assert_array_equal(a.signal, b.signal)
    assert np.isnan(a.signal[:first]).all() and a.valid[first:].all()
    assert [(g.start, g.stop) for g in a.gaps] == [(0, first)]
    assert "start-up" in a.gaps[0].reason
    # Control: without the margin the glitch reaches the output.
    a0, b0 = (reconstruct_array(s, FS_IN, level_jumping_model(), FS_MODEL, L) for s in (x, glitch))
    assert np.max(np.abs(a0.signal - b0.signal)) > 1.0


def test_implausible_fraction_counts_reconstructed_abp_outside_20_to_250():
    signal = np.array([np.nan, 10.0, 50.0, 100.0, 260.0, 250.0, 20.0, np.nan])
    r = Reconstruction(signal, np.isfinite(signal), FS_IN, "ppg2abp", [], 1)
    assert implausible_fraction(r) == pytest.approx(2 / 6)
    assert (
        implausible_fraction(Reconstruction(signal, np.isfinite(signal), FS_IN, "abp2ppg", [], 1))
        == 0
    )


def test_gaps_are_not_reconstructed_across():
    x = ppg_like(90.0)
    fs = FS_IN
    x[int(20 * fs) : int(25 * fs)] = np.nan  # lost samples
    x[int(40 * fs) : int(46 * fs)] = x[int(40 * fs)]  # flat line
    x[int(60 * fs) : int(63 * fs)] = np.nan  # 60-63 s gap, then a 3 s valid run, then:
    x[int(66 * fs) : int(70 * fs)] = np.nan
    r = reconstruct_array(x, fs, identity, FS_MODEL, L)
    for a, b in ((20, 25), (40, 46), (60, 70)):
        assert np.isnan(r.signal[int(a * fs) : int(b * fs)]).all()
    assert np.isfinite(r.signal[int(26 * fs) : int(39 * fs)]).all()
    assert np.isfinite(r.signal[int(71 * fs) :]).all()
    reasons = [(round(g.start / fs), round(g.stop / fs), g.reason) for g in r.gaps]
    assert (20, 25, "missing (NaN or inf)") in reasons
    assert any(a == 40 and "flat" in why for a, _, why in reasons)
    assert any(
        a == 63 and b == 66 and "shorter than one 5 s window" in why for a, b, why in reasons
    )
    # Each gap is widened by GAP_MARGIN (0.25 s) on both sides.
    expected = 1 - (5 + 6 + 10 + 3 * 0.5) / 90
    assert r.reconstructed_fraction == pytest.approx(expected, abs=0.005)


def test_lost_contact_with_noise_is_a_gap():
    x = ppg_like(30.0)
    rng = np.random.default_rng(1)
    x[int(10 * FS_IN) : int(16 * FS_IN)] = 0.001 * rng.standard_normal(int(6 * FS_IN))
    valid, gaps = detect_gaps(x, FS_IN)
    assert not valid[int(10.5 * FS_IN) : int(15.5 * FS_IN)].any()
    assert valid[: int(9 * FS_IN)].all()
    assert all(g.reason == "flat line / lost contact" for g in gaps)


def test_abp_input_out_of_range_is_a_gap():
    abp = 100.0 + 20.0 * np.sin(np.arange(2500) / 20.0)
    abp[1000:1200] = 0.0
    valid, gaps = detect_gaps(abp, FS_IN, "abp")
    margin = round(GAP_MARGIN * FS_IN)
    assert not valid[1000 - margin : 1200 + margin].any()
    assert valid[: 1000 - margin].all() and valid[1200 + margin :].all()
    assert gaps[0].reason == "ABP out of 20-250 mmHg"
    no_margin, _ = detect_gaps(abp, FS_IN, "abp", margin_seconds=0.0)
    assert no_margin.sum() == abp.size - 200


def test_runs():
    assert runs(np.array([0, 1, 1, 0, 1], dtype=bool)) == [(1, 3), (4, 5)]
    assert runs(np.zeros(3, dtype=bool)) == []


def test_delay_shifts_output_onto_the_abp_time_axis():
    x = ppg_like(20.0)
    r = reconstruct_array(x, FS_IN, identity, FS_MODEL, L, delay_s=0.2)
    d = 50  # 0.2 s at 250 Hz
    np.testing.assert_allclose(r.signal[:-d], x[d:], atol=0.03 * np.ptp(x))
    assert np.isnan(r.signal[-d:]).all() and r.delay_s == pytest.approx(0.2)
    assert [(g.start, g.stop) for g in r.gaps] == [(x.size - d, x.size)]
    y = x.copy()
    y[3000:3500] = np.nan  # 12-14 s: the valid stretches on both sides are over 5 s
    gapped = reconstruct_array(y, FS_IN, identity, FS_MODEL, L, delay_s=0.2)
    margin = round(GAP_MARGIN * FS_IN)
    assert (gapped.gaps[0].start, gapped.gaps[0].stop) == (3000 - margin - d, 3500 + margin - d)
    assert np.isnan(gapped.signal[gapped.gaps[0].start : gapped.gaps[0].stop]).all()
    # The input's own gaps stay where the input has them (what its figure panel shades).
    assert [(g.start, g.stop) for g in gapped.input_gaps] == [(3000 - margin, 3500 + margin)]
    assert reconstruct_array(y, FS_IN, identity, FS_MODEL, L).input_gaps is None
    back = reconstruct_array(x, FS_IN, identity, FS_MODEL, L, direction="abp2ppg", delay_s=0.2)
    assert np.isnan(back.signal[:d]).all()


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"delay_s": -1.0}, r"delay_s must be a finite number of seconds from 0 to 5, not -1\.0"),
        ({"delay_s": float("nan")}, r"delay_s must be .* from 0 to 5, not nan"),
        ({"delay_s": 5.5}, r"delay_s must be .* from 0 to 5, not 5\.5"),
        ({"delay_s": True}, r"delay_s must be .*, not True"),
        ({"start_margin_s": -1.0}, r"start_margin_s must be .* of at least 0, not -1\.0"),
        ({"start_margin_s": float("inf")}, r"start_margin_s must be a finite number"),
    ],
)
def test_a_delay_or_start_margin_out_of_range_is_refused_by_name(given, needle):
    """A negative or NaN delay failed inside numpy ("could not broadcast input array",
    "cannot convert float NaN to integer"); a negative start margin reconstructed only the
    recording's last second, with a gap named "the recording's first -1 s". The delay's
    range is ReconstructOptions' (--ppg-delay's)."""
    with pytest.raises(ValueError, match=needle):
        reconstruct_array(ppg_like(20.0), FS_IN, identity, FS_MODEL, L, **given)
    edge = reconstruct_array(ppg_like(20.0), FS_IN, identity, FS_MODEL, L, delay_s=5)
    assert edge.delay_s == 5.0


@pytest.mark.parametrize(("dtype", "name"), [(bool, "bool"), (complex, "complex128")])
def test_a_bool_or_complex_signal_is_refused(dtype, name):
    """A bool array was taken as a 0/1 signal (nothing reconstructed, no error) and a
    complex one lost its imaginary part with only numpy's warning, as
    Checkpoint.predict_abp refuses them."""
    x = ppg_like(20.0).astype(dtype)
    with pytest.raises(TypeError, match=rf"x \(the PPG\) must be real numbers, not {name}"):
        reconstruct_array(x, FS_IN, identity, FS_MODEL, L)
    with pytest.raises(TypeError, match=rf"x \(the ABP\) must be real numbers, not {name}"):
        reconstruct_array(x, FS_IN, identity, FS_MODEL, L, direction="abp2ppg")
    as_ints = reconstruct_array((100 * ppg_like(20.0)).astype(int), FS_IN, identity, FS_MODEL, L)
    assert as_ints.reconstructed_fraction == 1.0


def test_detect_beats_by_hand():
    x = pulse_train(20.0, 125.0, 100.0, 20.0, hz=1.25)  # 75 bpm, 120/80
    b = detect_beats(x, 125.0)
    # Feet at 0.8, 1.6, ..., 19.2 s (the one at 0 s is the edge, not a detected trough):
    # 24 feet, 23 beats between them.
    assert len(b) == 23
    np.testing.assert_allclose(b.sbp, 120.0, atol=1e-6)
    np.testing.assert_allclose(b.dbp, 80.0, atol=1e-6)
    np.testing.assert_allclose(b.map, 100.0, atol=1e-6)
    np.testing.assert_allclose(b.hr_bpm, 75.0)
    np.testing.assert_allclose(b.peak_s - b.onset_s, 0.4)
    y = x.copy()
    y[500:700] = np.nan  # no beat is made across a gap
    assert len(detect_beats(y, 125.0)) < len(b)
    assert len(b.between(0.0, 5.0)) == 5  # systolic peaks at 1.2, 2.0, 2.8, 3.6, 4.4 s


def test_a_dicrotic_notch_is_not_taken_for_a_foot():
    # 120/80 at 75 bpm, a notch at 90 mmHg and a dicrotic wave 15 mmHg above it: deep enough
    # for the protocol's trough rule, which split every beat at the notch (119 and 203 bpm).
    x = beat_cycles(30.0, 125.0, 75, [(0, 80), (0.12, 120), (0.30, 90), (0.36, 105)])
    b = detect_beats(x, 125.0)
    # Peaks at 0.12 + 0.8 k s (38 of them); the first foot is the edge, the last beat has no
    # end: 36 beats.
    assert len(b) == 36
    np.testing.assert_allclose(b.hr_bpm, 75.0)
    np.testing.assert_allclose(b.dbp, 80.0)
    np.testing.assert_allclose(b.sbp, 120.0)
    np.testing.assert_allclose(b.onset_s, 0.8 * np.arange(1, 37), atol=0.5 / 125.0)


def test_the_foot_is_where_the_upstroke_starts():
    # 140 bpm with a catheter's undershoot to 95 mmHg just after systole; the pressure then
    # recovers and the next upstroke starts at 100 mmHg (the end-diastolic pressure).
    x = beat_cycles(30.0, 125.0, 140, [(0, 100), (0.08, 150), (0.16, 95), (0.24, 108)])
    b = detect_beats(x, 125.0)
    assert len(b) == 68
    np.testing.assert_allclose(b.dbp, 100.0, atol=0.5)
    np.testing.assert_allclose(np.median(b.hr_bpm), 140.0, rtol=0.02)
    # A two-humped systole: the dip between the humps is not a foot either.
    y = beat_cycles(30.0, 125.0, 75, [(0, 70), (0.096, 160), (0.16, 150), (0.216, 165), (0.5, 100)])
    b = detect_beats(y, 125.0)
    assert len(b) == 36
    np.testing.assert_allclose(b.dbp, 70.0)
    np.testing.assert_allclose(b.sbp, 165.0)
    np.testing.assert_allclose(b.hr_bpm, 75.0)


def test_noise_on_the_upstroke_does_not_move_the_feet():
    # 1 mmHg of noise at 1 kHz (a raw arterial line): walking back from the upstroke on the
    # raw samples stopped at noise and put the feet up to 0.1 s late (heart rates off by
    # 5.5 bpm on average). Feet are found on a 20-ms moving average.
    fs = 1000.0
    x = beat_cycles(60.0, fs, 75, [(0, 80), (0.12, 120), (0.30, 90), (0.36, 105)])
    x += np.random.default_rng(0).normal(0.0, 1.0, x.size)
    b = detect_beats(x, fs)
    assert len(b) == 73
    assert np.mean(np.abs(b.hr_bpm - 75.0)) < 1.0
    assert np.median(b.dbp) == pytest.approx(80.0, abs=0.6)
    # Feet at multiples of 0.8 s, within 15 ms (either side).
    np.testing.assert_allclose((b.onset_s + 0.4) % 0.8 - 0.4, 0.0, atol=0.015)


def test_noise_does_not_raise_sbp_or_lower_dbp():
    # 2 mmHg of white noise at 2 kHz: the raw sample at each crest is the highest of the
    # noise there (SBP read 4-5 mmHg high, DBP 2 mmHg low), and a bump of noise in diastole
    # passed for a peak (a beat of 1,579 bpm). Peaks, SBP and DBP come from a quadratic fit
    # over 20 ms, which follows the rounded crest and trough.
    fs = 2000.0
    x = pulse_train(60.0, fs, 100.0, 20.0, hz=1.25)  # 120/80 at 75 bpm
    b = detect_beats(x + np.random.default_rng(1).normal(0.0, 2.0, x.size), fs)
    # 75 peaks; the first foot is where the recording starts (found or not, with noise).
    assert len(b) in (73, 74) and np.all((b.hr_bpm > 60.0) & (b.hr_bpm < 95.0))
    assert np.median(b.hr_bpm) == pytest.approx(75.0, abs=0.5)
    # The peak is the fit's highest sample, so the fit's own noise (SD ~0.5 mmHg) still
    # leaves SBP 0.6 mmHg high on this broad crest.
    assert np.median(b.sbp) == pytest.approx(120.0, abs=1.0)
    assert np.median(b.dbp) == pytest.approx(80.0, abs=1.0)
    assert np.all((b.dbp <= b.map) & (b.map <= b.sbp))


def test_on_a_quantised_signal_the_foot_is_where_the_rise_leaves_the_flat_bottom():
    # An exponential diastole rounded to whole mmHg at 250 Hz sits on its lowest value for
    # several samples: the foot is the last of them (it used to be the first, 40 ms early).
    fs = 250.0
    u = (np.arange(round(30 * fs)) / fs) % 0.8
    rise = 80 + 40 * np.sin(np.pi / 2 * u / 0.12)
    x = np.where(u < 0.12, rise, 75 + 45 * np.exp(-(u - 0.12) / 0.3))
    b = detect_beats(np.round(x), fs)
    assert len(b) == 36
    np.testing.assert_allclose((b.onset_s + 0.4) % 0.8 - 0.4, 0.0, atol=0.5 / fs)
    np.testing.assert_allclose(b.hr_bpm, 75.0)


def test_cuff_calibration_gives_the_cuff_values_in_the_segment():
    pred = pulse_train(120.0, 125.0, 70.0, 10.0)  # predicted 80/60
    cal, info = calibrate_recording(pred, 125.0, 0.0, 60.0, cuff=(120.0, 80.0))
    beats = detect_beats(cal.apply(pred), 125.0).between(0.0, 60.0)
    np.testing.assert_allclose(np.median(beats.sbp), 120.0, atol=1e-6)
    np.testing.assert_allclose(np.median(beats.dbp), 80.0, atol=1e-6)
    # Sampled peaks miss the crest by a hair (PP_pred 19.99 mmHg): the scale is ~2.
    assert info["source"] == "cuff" and info["scale"] == pytest.approx(2.0, rel=1e-3)
    off, _ = calibrate_recording(pred, 125.0, 0.0, 60.0, cuff=(120.0, 80.0), mode="offset")
    assert off.scale == 1.0 and off.apply(pred).max() == pytest.approx(110.0, abs=0.01)


def test_reference_calibration_is_the_protocol_rule():
    ref = pulse_train(120.0, 125.0, 100.0, 20.0)
    pred = 0.5 * ref + 20.0  # right shape, half the pulse pressure, wrong level
    cal, info = calibrate_recording(pred, 125.0, 30.0, 60.0, reference=ref)
    np.testing.assert_allclose(cal.apply(pred), ref, atol=1e-6)
    assert info["segment_s"] == [30.0, 90.0] and info["source"] == "reference ABP"


def test_calibration_needs_beats_in_the_segment():
    pred = pulse_train(60.0, 125.0, 70.0, 10.0)
    pred[: 125 * 30] = np.nan
    with pytest.raises(DataError, match="no reconstructed beats between 0 and 20 s"):
        calibrate_recording(pred, 125.0, 0.0, 20.0, cuff=(120.0, 80.0))
    with pytest.raises(DataError, match="after the recording's end"):
        calibrate_recording(pred, 125.0, 100.0, 20.0, cuff=(120.0, 80.0))


def test_a_segment_without_beats_names_where_the_first_beats_start():
    # The advice to choose another --calibration-at names a time that works: the onset of
    # the first beat after the segment asked for (feet every second; the first 30 s a gap).
    pred = pulse_train(60.0, 125.0, 70.0, 10.0)
    pred[: 125 * 30] = np.nan
    with pytest.raises(DataError, match="no reconstructed beats between 0 and 20 s") as exc:
        calibrate_recording(pred, 125.0, 0.0, 20.0, cuff=(120.0, 80.0))
    at = suggested_calibration_at(str(exc.value))
    assert 30.0 <= at <= 31.0
    _, info = calibrate_recording(pred, 125.0, at, 20.0, cuff=(120.0, 80.0))
    assert info["pred_beats"] >= 18
    # On a CSV's clock (first time 1000 s) the suggestion is on that clock too.
    with pytest.raises(DataError) as exc:
        calibrate_recording(pred, 125.0, 1000.0, 20.0, cuff=(120.0, 80.0), origin_s=1000.0)
    assert suggested_calibration_at(str(exc.value)) == at + 1000.0


@pytest.mark.parametrize("fs", [97.0, 100.0, 125.0, 250.0, 360.0, 999.7, 1000.0])
def test_min_samples_is_the_shortest_recording_with_a_reconstructed_window(fs):
    # One sample fewer than min_samples leaves nothing reconstructed after the start margin;
    # min_samples itself gives a window (a check against the window alone let 5.04 s through).
    n = min_samples(fs, FS_MODEL, L, GAP_MARGIN)
    x = np.sin(2 * np.pi * 1.2 * np.arange(n) / fs)
    kept = reconstruct_array(x, fs, lambda w: w, FS_MODEL, L, start_margin_s=GAP_MARGIN)
    assert kept.valid.any()
    short = reconstruct_array(x[:-1], fs, lambda w: w, FS_MODEL, L, start_margin_s=GAP_MARGIN)
    assert not short.valid.any()


def test_times_on_a_unix_clock_are_printed_to_the_millisecond_not_rounded():
    # A CSV whose times start at 1.7e9 (Unix seconds): ":g" printed every time as
    # "1.7e+09", and the suggested --calibration-at 1.7e+09 was the recording's start.
    origin = 1_700_000_000.0
    pred = pulse_train(60.0, 125.0, 70.0, 10.0)
    pred[: 125 * 30] = np.nan
    with pytest.raises(DataError) as exc:
        calibrate_recording(pred, 125.0, origin + 2.0, 2.0, cuff=(118.0, 76.0), origin_s=origin)
    message = str(exc.value)
    assert "no reconstructed beats between 1700000002 and 1700000004 s" in message
    at = suggested_calibration_at(message)
    assert origin + 30.0 <= at <= origin + 31.0
    _, info = calibrate_recording(pred, 125.0, at, 20.0, cuff=(118.0, 76.0), origin_s=origin)
    assert info["segment_s"][0] == pytest.approx(at, abs=0.01)
    phrase = calibration_phrase(info)
    assert f"at {seconds_text(at)}-{seconds_text(at + 20.0)} s" in phrase
    assert "e+09" not in phrase
    with pytest.raises(DataError, match=r"before the recording's start \(1700000000 s"):
        calibrate_recording(pred, 125.0, 5.0, 2.0, cuff=(118.0, 76.0), origin_s=origin)
    assert seconds_text(1_700_000_104.25) == "1700000104.25"
    assert seconds_text(12.0) == "12" and seconds_text(0.0004) == "0"


def test_a_reference_without_beats_in_the_segment_names_where_its_beats_start():
    ref = pulse_train(120.0, 125.0, 100.0, 20.0)
    pred = 0.5 * ref + 20.0
    ref[: 125 * 70] = np.nan  # the reference starts after 70 s (a flushed line before)
    with pytest.raises(
        DataError, match="reference ABP has no valid beats between 0 and 60 s"
    ) as exc:
        calibrate_recording(pred, 125.0, 0.0, 60.0, reference=ref)
    at = suggested_calibration_at(str(exc.value))
    assert 70.0 <= at <= 71.5
    cal, _ = calibrate_recording(pred, 125.0, at, 40.0, reference=ref)
    np.testing.assert_allclose(cal.apply(pred)[125 * 80 :], ref[125 * 80 :], atol=1e-6)


@pytest.mark.parametrize("bad", ["nan", "flat"])
def test_a_reference_without_any_beat_says_so_instead_of_asking_for_another_time(bad):
    # Record 100 of Challenge 2015 has a flat ABP line for all its 300 s: no time would do.
    pred = pulse_train(120.0, 125.0, 80.0, 20.0)
    ref = np.full_like(pred, np.nan if bad == "nan" else 6.83)
    with pytest.raises(DataError, match="no valid beats anywhere in the recording") as exc:
        calibrate_recording(pred, 125.0, 0.0, 60.0, reference=ref)
    # No time to choose (start_s), a cuff reading instead (named as calibrate_recording's).
    assert "calibrate with a cuff reading (cuff=(SBP, DBP)) instead" in str(exc.value)
    assert "start_s" not in str(exc.value)


@pytest.mark.parametrize("text", ["120", "120/80/90", "abc/80", "80/120", "400/80", "120/5"])
def test_parse_cuff_rejects_what_is_not_a_reading(text):
    with pytest.raises(DataError):
        parse_cuff(text)


def test_parse_cuff():
    assert parse_cuff(" 118 / 76 ") == (118.0, 76.0)
    assert parse_cuff("118/76 mmHg") == parse_cuff("118/76mmhg") == (118.0, 76.0)


def test_a_cuff_reading_written_the_wrong_way_round_is_named():
    with pytest.raises(DataError, match=r"not plausible.*\(SBP comes first: 120/80\?\)"):
        parse_cuff("80/120")
    with pytest.raises(DataError) as exc:
        parse_cuff("400/80")  # implausible either way round: no suggestion
    assert "comes first" not in str(exc.value)


def test_compare_with_reference_by_hand():
    ref = pulse_train(60.0, 125.0, 100.0, 20.0)
    pred = ref + 3.0
    pred[:625] = np.nan  # the first window is not reconstructed
    c = compare_with_reference(pred, ref, 125.0, 5.0, exclude=(5.0, 15.0))
    assert c["n_windows"] == 12 - 1 - 2
    assert c["waveform"]["mae"] == pytest.approx(3.0)
    assert c["sbp"]["me"] == pytest.approx(3.0) and c["sbp"]["sd"] == pytest.approx(0.0)


def test_values_beyond_float32_are_a_gap_named_as_such():
    """A logger's overflow (1e40: finite, but not a float32, the model's type) was a gap
    'missing (NaN or inf)', which sent its user looking for NaNs that the file has not."""
    fs = 50.0
    x = np.sin(2 * np.pi * 1.2 * np.arange(3000) / fs)
    x[1000:1100] = 1e40
    x[2000:2100] = np.inf
    valid, gaps = detect_gaps(x, fs, margin_seconds=0.0)
    assert [(g.start, g.stop, g.reason) for g in gaps] == [
        (1000, 1100, "beyond float32's range (|x| > 3.4e38)"),
        (2000, 2100, "missing (NaN or inf)"),
    ]
    assert valid.sum() == 2800
