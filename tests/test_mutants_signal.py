"""Tests that pin behaviour a mutation audit of the signal functions
(``innpar_freia/signal.py``: central gradient, z-score, band-pass, rational resampling,
prominence thresholds, systolic peaks / diastolic troughs, per-window SBP/DBP/MAP) and of the
synthetic generator (``innpar_freia/data/synthetic.py``) found unguarded: each one fails when
the bug named in its docstring is put into the package. Expected values are worked out by
hand, never by the code under test."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from innpar_freia.signal import (
    bandpass,
    bp_sample_indices_batch,
    bp_values,
    central_gradient,
    diastolic_troughs,
    prominence_thresholds,
    rate_ratio,
    resample,
    systolic_peaks,
    zscore,
)

FS = 100.0


def pulse(mid: float, amp: float, length: int = 500, period: int = 100) -> np.ndarray:
    """Troughs (mid - amp) at multiples of ``period``, peaks (mid + amp) half-way."""
    n = np.arange(length)
    return mid - amp * np.cos(2 * np.pi * n / period)


def test_central_gradient_of_windows_runs_along_the_last_axis() -> None:
    """Bug: the zero padding goes on the first axis, so a (windows, samples) batch gets the
    gradient across windows instead of along each window."""
    x = np.array([[1.0, 2.0, 4.0], [0.0, 0.0, 3.0]])
    # g[n] = x[n+1] - x[n-1], zeros outside: row 0 -> 2-0, 4-1, 0-2; row 1 -> 0, 3-0, 0-0
    assert np.array_equal(central_gradient(x), [[2.0, 3.0, -2.0], [0.0, 3.0, 0.0]])


def test_zscore_of_a_constant_window_is_zeros_not_nan() -> None:
    """Bug: the guard against a zero standard deviation never fires (``std >= 0``), so a flat
    window becomes 0/0 = NaN."""
    z = zscore(np.array([[5.0, 5.0, 5.0], [1.0, 2.0, 3.0]]))
    s = np.sqrt(1.5)  # 1 / population std of (1, 2, 3) = 1 / sqrt(2/3)
    assert np.allclose(z, [[0.0, 0.0, 0.0], [-s, 0.0, s]], rtol=0, atol=1e-12)


def test_bandpass_refuses_a_band_it_cannot_make() -> None:
    """Bugs: ``low = 0`` accepted (no high-pass at all), or a sampling rate whose clamped upper
    edge (0.45 fs) meets the lower edge reaching scipy instead of the package's message."""
    x = np.zeros(200)
    with pytest.raises(ValueError, match="0 < low < high"):
        bandpass(x, FS, low=0.0)
    with pytest.raises(ValueError, match=r"too low for a 4\.5 Hz high-pass"):
        bandpass(x, 10.0, low=4.5)  # high = min(8, 0.45 * 10) = 4.5 = low


def test_bandpass_clamps_its_upper_edge_below_nyquist() -> None:
    """Bug: the 8 Hz upper edge clamped to 0.5 fs (Nyquist, which Butterworth design refuses)
    instead of 0.45 fs, so a 10 Hz recording cannot be band-passed."""
    y = bandpass(np.sin(np.arange(300) / 3.0), 10.0)
    assert y.shape == (300,) and np.all(np.isfinite(y))


def test_bandpass_is_zero_phase() -> None:
    """Bug: a one-pass filter (``sosfilt``) instead of forward-backward, which delays the
    pulse and so every peak and the PPG-ABP alignment."""
    t = np.arange(1000) / FS
    x = np.sin(2 * np.pi * 5.0 * t)
    y = bandpass(x, FS)
    core = slice(200, 800)
    lags = range(-10, 11)
    best = max(lags, key=lambda k: float(np.dot(y[200 + k : 800 + k], x[core])))
    assert best == 0


def test_rate_ratio_is_exact_for_rates_of_small_terms_and_refuses_zero() -> None:
    """Bugs: a coarser rational approximation (denominator at most 100) that resamples 1000
    Hz to 999 Hz by the wrong factor; a zero rate accepted."""
    assert rate_ratio(1000.0, 999.0) == Fraction(999, 1000)
    assert rate_ratio(360.0, 125.0) == Fraction(25, 72)
    # Exact where the rates are: 2048 Hz was 13/213 (drifting 135 ms an hour), 999.7 Hz
    # 1/8 short by 3e-4 of the exact 1250/9997.
    assert rate_ratio(2048.0, 125.0) == Fraction(125, 2048)
    assert rate_ratio(125.0, 16384.0) == Fraction(16384, 125)
    assert rate_ratio(999.7, 125.0) == Fraction(1250, 9997)
    assert rate_ratio(np.float32(250.0), np.int64(125)) == Fraction(1, 2)  # numpy's rates
    # A rate no small fraction gives: the nearest fraction with a denominator of at most
    # 1000, as before.
    assert rate_ratio(124.99937, 125.0) == Fraction(125 / 124.99937).limit_denominator(1000)
    with pytest.raises(ValueError, match=r"^fs_in must be a finite rate above 0 Hz, not 0.0"):
        rate_ratio(0.0, 125.0)
    with pytest.raises(ValueError, match=r"^fs_out must be a finite rate above 0 Hz, not -"):
        rate_ratio(125.0, -125.0)
    with pytest.raises(ValueError, match=r"^fs_in must be a finite rate above 0 Hz, not nan"):
        rate_ratio(float("nan"), 125.0)  # (it passed "<= 0")
    with pytest.raises(ValueError, match="must be a finite rate above 0 Hz"):
        resample(np.ones(10), 0.0, 0.0)  # equal rates, but not a rate


def test_resample_passes_padtype_and_axis_on() -> None:
    """Bugs: ``padtype`` dropped (ABP in mmHg sags towards 0 at both ends even when asked to
    extend by a line), or ``axis`` ignored (a (samples, channels) array resampled along the
    channels)."""
    level = np.full(200, 100.0)
    line = resample(level, 100.0, 50.0, padtype="line")
    assert line.shape == (100,) and np.allclose(line, 100.0, atol=1e-6)
    assert resample(level, 100.0, 50.0)[0] < 99.0  # the zero-padded default sags
    two = np.stack([level, 2 * level], axis=1)  # (200 samples, 2 channels)
    out = resample(two, 100.0, 50.0, axis=0, padtype="line")
    assert out.shape == (100, 2)
    assert np.allclose(out[:, 0], 100.0, atol=1e-6) and np.allclose(out[:, 1], 200.0, atol=1e-6)


def test_prominence_thresholds_by_hand() -> None:
    """Bugs: another floor than 5 mmHg, another fraction than 0.3, other percentiles than
    P95/P5, or the percentiles taken across windows instead of along each."""
    ramp = np.arange(101.0)  # P95 = 95, P5 = 5 -> 0.3 * 90 = 27
    small = 100.0 + np.arange(101.0) / 10.0  # P95 - P5 = 9 -> 2.7, floored at 5
    assert np.allclose(prominence_thresholds(np.stack([ramp, small])), [27.0, 5.0])


def test_peaks_closer_than_0_3_s_count_once() -> None:
    """Bug: a shorter refractory distance than 0.3 s for peaks or troughs, so a notch or a
    second bump 0.28 s after a beat counts as its own beat."""
    x = np.full(300, 80.0)
    x[[100, 128, 250]] = [120.0, 110.0, 120.0]  # 128 is 0.28 s after 100
    assert list(systolic_peaks(x, FS)) == [100, 250]
    y = np.full(300, 120.0)
    y[[100, 128, 250]] = [80.0, 90.0, 80.0]
    assert list(diastolic_troughs(y, FS)) == [100, 250]


def test_troughs_and_peaks_below_the_prominence_threshold_are_not_beats() -> None:
    """Bugs: troughs held to a lower prominence than peaks, or an explicit ``prominence``
    ignored in favour of the window's own threshold."""
    x = np.full(300, 100.0)
    x[150] = 96.0  # a 4 mmHg dip; threshold max(5, 0) = 5
    assert diastolic_troughs(x, FS).size == 0
    assert list(diastolic_troughs(x, FS, prominence=3.0)) == [150]
    y = np.full(300, 100.0)
    y[150] = 104.0
    assert systolic_peaks(y, FS).size == 0
    assert list(systolic_peaks(y, FS, prominence=3.0)) == [150]


def test_map_is_the_mean_and_dbp_the_median_of_an_even_number_of_troughs() -> None:
    """Bugs: MAP as the window's median instead of its mean; DBP as the lower middle trough
    instead of the mean of the two middle ones."""
    step = np.r_[np.full(300, 70.0), np.full(100, 110.0)]  # no peak, no trough
    assert bp_values(step, FS) == pytest.approx((110.0, 70.0, 80.0))
    x = pulse(100.0, 20.0)  # troughs at 100, 200, 300, 400; peaks of 120 half-way
    x[[100, 200, 300, 400]] -= [0.0, 2.0, 4.0, 6.0]  # 80, 78, 76, 74 -> median 77
    sbp, dbp, _ = bp_values(x, FS)
    assert sbp == pytest.approx(120.0) and dbp == pytest.approx(77.0)


def test_bp_values_and_batch_refuse_what_they_cannot_score() -> None:
    """Bugs: a NaN in one window scored (find_peaks silently skips it), or empty windows in a
    batch reaching numpy's percentile instead of a clear message."""
    x = pulse(100.0, 20.0)
    x[7] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        bp_values(x, FS)
    with pytest.raises(ValueError, match="non-empty"):
        bp_sample_indices_batch(np.zeros((2, 0)), FS)


def test_bp_sample_indices_refuses_an_empty_window() -> None:
    """Bug: the empty-window check dropped, so an empty window fails deep inside numpy's
    percentile instead of with the package's message."""
    from innpar_freia.signal import bp_sample_indices

    with pytest.raises(ValueError, match="one non-empty window"):
        bp_sample_indices(np.array([]), FS)


# ------------------------------------------------------------------- synthetic generator


def test_synthetic_settings_at_their_limits() -> None:
    """Bugs: 16 Hz (the documented minimum) refused, or zero minutes accepted."""
    from innpar_freia.data.synthetic import synthesize_recording
    from innpar_freia.errors import DataError

    rec = synthesize_recording(0, minutes=0.25, fs=16.0)
    assert len(rec.abp) == 240 == len(rec.ppg)  # 15 s at 16 Hz
    with pytest.raises(DataError, match="minutes must be positive"):
        synthesize_recording(0, minutes=0.0, fs=125.0)


def test_synthetic_beats_and_delay_are_on_the_recordings_own_clock() -> None:
    """Bugs: beat onsets not moved back by the dropped 3 s lead-in, per-beat heart rates
    that include lead-in beats, or a delay that is not the whole number of samples the PPG
    was actually shifted by."""
    from innpar_freia.data.synthetic import synthesize_recording

    fs = 125.0
    rec = synthesize_recording(3, minutes=1.0, fs=fs, seed=2)
    onsets = rec.beat_onsets_s
    assert 0.0 <= onsets[0] < 1.25 and onsets[-1] < 60.0  # a beat within the first 1.25 s
    assert len(rec.beat_hr) == len(onsets) == len(rec.beat_sbp) == len(rec.beat_dbp)
    shift = rec.delay_s * fs
    assert shift == round(shift)


def test_synthetic_file_windows_splits_and_folds(tmp_path) -> None:
    """Bugs: overlapping or one-short windows, a split that is not 70/15/15 by subjects,
    folds that are not one subject each when there are fewer subjects than the default 5,
    window ids not zero-padded to 7 digits, or the folds left out of the provenance."""
    from innpar_freia.data.store import read_info
    from innpar_freia.data.synthetic import synthesize_dataset

    path = synthesize_dataset(tmp_path / "s.h5", subjects=4, minutes=1.0, fs=100.0, seed=3)
    info = read_info(path)
    # 6000 samples less a 15..35 sample delay -> 11 whole 500-sample windows per subject
    assert info.n_windows == 4 * 11
    for subject in np.unique(info.subjects):
        mine = info.subjects == subject
        assert list(info.start[mine]) == list(range(0, 5001, 500))
        assert info.window_ids[mine][1] == f"{subject}_0000500"
    assert sorted(set(info.fold)) == [0, 1, 2, 3]  # min(5, 4) folds, one subject each
    assert info.provenance["folds"] == 4
    # 4 subjects: round(0.15 * 4) = 1 test and 1 val (at least one), 2 train
    per_subject = {s: info.split[info.subjects == s][0] for s in np.unique(info.subjects)}
    assert sorted(per_subject.values()) == ["test", "train", "train", "val"]

    big = synthesize_dataset(tmp_path / "b.h5", subjects=20, minutes=0.2, fs=50.0, folds=0)
    info = read_info(big)
    per_subject = {s: info.split[info.subjects == s][0] for s in np.unique(info.subjects)}
    counts = {k: list(per_subject.values()).count(k) for k in ("train", "val", "test")}
    assert counts == {"train": 14, "val": 3, "test": 3}  # round(0.15 * 20) = 3 each
    assert set(info.fold) == {-1}


def test_synthetic_file_edge_cases_and_seeds(tmp_path) -> None:
    """Bugs: a window that exactly fills the aligned recording dropped (the last start one
    short), two subjects given a test and a val subject (no training data), a 7-sample window
    accepted, the file's seed not passed to the recordings, or splits and folds that ignore
    the seed."""
    from innpar_freia.data.store import read_info, read_signals
    from innpar_freia.data.synthetic import synthesize_dataset, synthesize_recording
    from innpar_freia.errors import DataError

    fs = 50.0
    rec = synthesize_recording(0, minutes=0.2, fs=fs, seed=4)  # 600 samples
    shift = round(rec.delay_s * fs)
    whole = (600 - shift) / fs  # one window exactly as long as the aligned recording
    path = synthesize_dataset(
        tmp_path / "one.h5", subjects=1, minutes=0.2, fs=fs, window_seconds=whole, seed=4
    )
    assert read_info(path).n_windows == 1
    ppg, abp = read_signals(path)
    assert np.allclose(abp[0], rec.abp[: 600 - shift], rtol=1e-6, atol=0)  # float32
    assert np.allclose(ppg[0], rec.ppg[shift:], rtol=1e-6, atol=1e-6)

    two = read_info(synthesize_dataset(tmp_path / "two.h5", subjects=2, minutes=0.2, fs=fs))
    assert set(two.split) == {"train"}
    # 7 samples (0.07 s at 100 Hz): refused by the command's range, the shortest window it
    # takes (0.5 s, 8 samples at its lowest 16 Hz) before the 8-sample floor is reached.
    with pytest.raises(DataError, match=r"window_seconds \(--window-seconds\) is 0.07, not in"):
        synthesize_dataset(
            tmp_path / "w.h5", subjects=3, minutes=0.2, fs=100.0, window_seconds=0.07
        )

    tests, folds = set(), set()
    for seed in range(4):
        info = read_info(
            synthesize_dataset(tmp_path / f"s{seed}.h5", subjects=5, minutes=0.1, fs=fs, seed=seed)
        )
        subjects = np.unique(info.subjects)
        tests.add(tuple(s for s in subjects if info.split[info.subjects == s][0] == "test"))
        folds.add(tuple(int(info.fold[info.subjects == s][0]) for s in subjects))
    assert len(tests) > 1 and len(folds) > 1
