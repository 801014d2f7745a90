"""Tests that pin what a mutation audit of the data-import numeric core (innpar_freia.data:
qc's gap-aware resampling, delay estimation and window rules; the windowing pipeline; the
rates and time grids of the recording readers; the recording importer's units, options and
report; import_report's subject maps, counts and units warning) found unguarded: each one
fails when the bug named in its docstring is put into the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from helpers import write_csv
from scipy import signal as sps

from innpar_freia.data.import_report import abp_units_warning, read_subject_map
from innpar_freia.data.qc import (
    LagConfig,
    abp_beats,
    band,
    check_window,
    estimate_lag,
    flat_fraction,
    resample_gapped,
)
from innpar_freia.data.recording_importers import abp_in_mmhg, import_recordings
from innpar_freia.data.recordings import read_csv, read_npz, read_wfdb
from innpar_freia.data.store import read_info
from innpar_freia.data.synthetic import Recording, synthesize_recording
from innpar_freia.data.windowing import PipelineOptions, window_recording
from innpar_freia.errors import DataError
from innpar_freia.signal import bandpass, resample

FS = 125.0
Window = tuple[np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def rec125() -> Recording:
    """One clean synthetic minute at 125 Hz, the output rate (nothing is resampled)."""
    return synthesize_recording(0, 1.0, FS, seed=1)


@pytest.fixture(scope="module")
def rec250() -> Recording:
    """One clean synthetic minute at 250 Hz."""
    return synthesize_recording(0, 1.0, 250.0, seed=1)


@pytest.fixture(scope="module")
def window(rec250: Recording) -> Window:
    """A window pair (PPG, ABP) at 125 Hz that passes every QC rule."""
    out = window_recording(rec250.ppg, rec250.abp, 250.0, PipelineOptions())
    p, a = out.ppg[0].copy(), out.abp[0].copy()
    assert check_window(p, a, FS)[0] is None
    return p, a


# --------------------------------------------------------------------------------------
# Resampling with gaps
# --------------------------------------------------------------------------------------


def test_a_gap_at_either_end_of_a_recording_is_masked_to_its_outermost_sample() -> None:
    """Input samples 0-9 and 2490-2499 at 250 Hz are invalid: output samples 0-4.5 and
    1245-1249.5 (at 125 Hz), widened by 4, are NaN: 0-9 and 1241-1249. Guards against the
    mask's start not being clipped at 0 (a negative index wrapped to the end and the gap
    at the start stayed) or its end clipped one short (the last sample stayed)."""
    x = 100.0 + 20.0 * np.sin(2 * np.pi * 1.2 * np.arange(2500) / 250.0)
    x[:10] = np.nan
    x[-10:] = np.nan
    y = resample_gapped(x, 250.0, FS)
    assert y.size == 1250
    expected = np.zeros(1250, dtype=bool)
    expected[:10] = True
    expected[1241:] = True
    np.testing.assert_array_equal(np.isnan(y), expected)


def test_gaps_are_bridged_by_a_line_and_the_ends_held_before_filtering() -> None:
    """A ramp with gaps at its start, middle and end resamples to the ramp wherever it is
    valid (within 1e-3; 0.0003 from the edges' line extension). Guards against filling gaps
    with 0 beyond the last valid sample (0.97 off next to the masked start) or with the
    signal's mean (0.22 off next to the middle gap): the filter carries a fill's step
    beyond the 4-sample mask."""
    i = np.arange(2500)
    x = 60.0 + 0.02 * i
    x[:30] = np.nan
    x[1000:1100] = np.nan
    x[-30:] = np.nan
    y = resample_gapped(x, 250.0, FS)
    ramp = 60.0 + 0.04 * np.arange(1250)
    ok = np.isfinite(y)
    assert ok.sum() == 1250 - 20 - 59 - 19  # outputs 0-19, 496-554 and 1231-1249 masked
    assert np.abs(y[ok] - ramp[ok]).max() < 1e-3


def test_a_recording_already_at_the_output_rate_keeps_its_gaps(rec125: Recording) -> None:
    """At the output rate nothing is resampled, but gaps must stay NaN (not widened) and
    their windows be rejected. Guards against returning the gap-filled signal as it is
    (a linear bridge across a lost second was then kept as signal)."""
    abp = rec125.abp.copy()
    abp[1300:1425] = np.nan  # 1 s in the third window
    y = resample_gapped(abp, FS, FS)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(abp))
    np.testing.assert_array_equal(y[~np.isnan(abp)], abp[~np.isnan(abp)])
    out = window_recording(rec125.ppg, abp, FS, PipelineOptions())
    assert out.rejected.get("nan", 0) >= 1 and np.isfinite(out.abp).all()


# --------------------------------------------------------------------------------------
# Flat lines
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["abp", "ppg"])
def test_a_window_whose_abp_or_ppg_holds_still_for_15_percent_is_flat(
    window: Window, channel: str
) -> None:
    """Either signal held for 94 of 625 samples (15 %) is more than the 10 % of flat
    sample pairs the rule allows. Guards against testing the PPG only, and against a 20 %
    limit (the existing test's half-flat staircase passed both)."""
    p, a = (x.copy() for x in window)
    x = a if channel == "abp" else p
    x[200:294] = x[200]
    assert 0.14 < flat_fraction(x) < 0.16
    assert check_window(p, a, FS)[0] == "flat"


@pytest.mark.parametrize("fs_in", [250.0, 128.0, 200.0])
def test_a_held_signal_is_flat_at_any_input_rate(fs_in: float) -> None:
    """A PPG or ABP held for 1.2 s of every 5 s fails the flat rule in every window,
    whatever the input rate, and a held stretch resamples to exactly its value. Bug fixed:
    from 128 or 200 Hz (a ratio that is not 1/n) the polyphase filter's phases differ in
    gain by ~1e-3 and a held value came out as a ripple: the flat rule saw nothing, 9
    windows of 11 were rejected for other reasons and 2 with a held PPG were kept, and a
    record with a flat PPG was rejected as ``low_xcorr``, not ``pleth_flat``."""
    rec = synthesize_recording(0, 1.0, fs_in, seed=1)
    step, hold = round(5 * fs_in), round(1.2 * fs_in)
    for channel in ("ppg", "abp"):
        x = getattr(rec, channel).copy()
        for s in range(round(2 * fs_in), x.size - hold, step):
            x[s : s + hold] = x[s]
        ppg, abp = (x, rec.abp) if channel == "ppg" else (rec.ppg, x)
        out = window_recording(ppg, abp, fs_in, PipelineOptions())
        assert out.windows_total == 11 and out.rejected == {"flat": 11}, (channel, out.rejected)
    flat = window_recording(np.full(rec.ppg.size, 3.0), rec.abp, fs_in, PipelineOptions())
    assert flat.reason == "pleth_flat"
    # A flat stretch of the input (samples 256-639) is exactly flat, at its own value, in
    # the output; samples whose filter reaches beyond it are resampled as they were.
    x = np.concatenate([np.linspace(60, 79, 256), np.full(384, 80.0), np.linspace(79, 60, 256)])
    y = resample_gapped(x, fs_in, FS)
    t = np.arange(y.size) * fs_in / FS  # output samples' positions in input samples
    assert np.all(y[(t > 300) & (t < 600)] == 80.0)
    edges = (t < 256 + 9) | (t > 639 - 9)  # the filter reaches >= 10 input samples
    np.testing.assert_array_equal(y[edges], resample(x, fs_in, FS, padtype="line")[edges])


# --------------------------------------------------------------------------------------
# Window rules
# --------------------------------------------------------------------------------------


def test_dbp_below_30_mmhg_breaks_the_bp_limits(window: Window) -> None:
    """The window shifted to a DBP of 25 mmHg (every sample still above 20) is outside the
    bp-benchmark cleaning limits. Guards against dropping the DBP >= 30 rule or lowering
    it to 20 mmHg (only SBP > 220 was tested)."""
    p, a = window
    dbp = check_window(p, a, FS)[2]
    low = a - (dbp - 25.0)
    assert low.min() > 20.0
    reason, _, dbp_low = check_window(p, low, FS)
    assert reason == "bp_limits" and dbp_low == pytest.approx(25.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])
def test_an_invalid_abp_sample_rejects_a_window_as_nan(window: Window, bad: float) -> None:
    """One invalid ABP sample (NaN, inf, beyond float32) makes the window ``nan``. Guards
    against checking the PPG only (an ABP gap then went on through the beat rules)."""
    p, a = (x.copy() for x in window)
    a[300] = bad
    assert check_window(p, a, FS)[0] == "nan"


def test_a_window_needs_two_diastolic_troughs_and_two_ppg_peaks(window: Window) -> None:
    """Two pressure pulses 1.5 s apart on a rising line have two systolic peaks but one
    diastolic trough; a PPG of one slow bump has one peak: both windows have too few
    beats. Guards against leaving out the trough count (the DBP label was then the value
    of one trough) or the PPG's peak count."""
    t = np.arange(625) / FS

    def pulse(c: float) -> np.ndarray:
        return np.exp(-0.5 * ((t - c) / 0.12) ** 2)

    abp = 80.0 + 2.0 * t + 40.0 * (pulse(1.5) + pulse(3.0))
    ppg = pulse(1.6) + pulse(3.1) + 0.05 * t
    peaks, troughs = abp_beats(abp, FS)
    assert peaks.size == 2 and troughs.size == 1
    assert check_window(ppg, abp, FS)[0] == "few_beats"
    one_bump = np.exp(-0.5 * ((t - 2.5) / 0.4) ** 2)
    assert check_window(one_bump, window[1], FS)[0] == "few_beats"


def test_one_abp_sample_above_250_mmhg_puts_a_window_out_of_range(window: Window) -> None:
    """A single systolic peak at 255 mmHg is enough. Guards against an upper limit of
    300 mmHg (the test shifted the whole window 150 mmHg up, which any limit caught)."""
    p, a = (x.copy() for x in window)
    a[abp_beats(a, FS)[0][1]] = 255.0
    assert check_window(p, a, FS)[0] == "abp_out_of_range"


# --------------------------------------------------------------------------------------
# The delay of the PPG behind the ABP
# --------------------------------------------------------------------------------------


def test_the_shortest_record_that_can_be_aligned(rec125: Recording) -> None:
    """22 s at 125 Hz (2750 samples) hold exactly 3 delay windows of 10 s + 2 s every 5 s,
    enough for a delay; one sample less holds 2 and is ``too_short``. Guards against
    dropping the range's last start, and against asking for more than 3 windows or more
    than 3 usable ones (``<=`` for ``<``)."""
    est = estimate_lag(rec125.ppg[:2750], rec125.abp[:2750], FS)
    assert est.windows_total == est.windows_used == 3 and est.lag is not None
    short = estimate_lag(rec125.ppg[:2749], rec125.abp[:2749], FS)
    assert short.lag is None and short.skipped == {"too_short": 1}


def test_the_delay_search_covers_0_to_max_lag_inclusive(rec125: Recording) -> None:
    """The correlation curve has one value per delay of 0..2 s at 125 Hz, both ends
    included: 251; 126 for ``max_lag_s=1``. Guards against a default other than 2 s and
    against leaving out the longest delay."""
    assert estimate_lag(rec125.ppg, rec125.abp, FS).curve.size == 251
    assert estimate_lag(rec125.ppg, rec125.abp, FS, LagConfig(max_lag_s=1.0)).curve.size == 126


def _noise_abp(seconds: float) -> np.ndarray:
    """Band-limited noise (0.5-8 Hz) as ABP around 100 mmHg: not periodic, so the
    correlation curve has one peak per delayed copy and none per beat."""
    n = round(seconds * FS)
    x = bandpass(np.random.default_rng(0).normal(size=n + 400), FS, 0.5, 8.0)[200 : 200 + n]
    return 100.0 + 20.0 * x / x.std()


def _delayed(x: np.ndarray, d: int) -> np.ndarray:
    """``x`` delayed by ``d`` samples, its first value held."""
    return np.concatenate([np.full(d, x[0]), x[: x.size - d]])


def test_the_delay_is_the_earliest_peak_reaching_0_8_of_the_maximum() -> None:
    """A PPG that is the ABP delayed by 0.8 s plus a weaker copy delayed by 0.24 s: the
    weaker copy's correlation peak is 0.76 of the maximum with weight 0.75 (the later
    delay is taken) and 0.86 with weight 0.85 (the earlier one is). Guards against a
    fraction of 0.7 (or 0.9)."""
    abp = _noise_abp(60.0)
    for weight, expected in ((0.75, 100), (0.85, 30)):
        est = estimate_lag(weight * _delayed(abp, 30) + _delayed(abp, 100), abp, FS)
        assert est.lag == expected, (weight, est.lag)


def test_the_delay_curve_is_the_mean_pearson_correlation_written_out(rec125: Recording) -> None:
    """``curve[d]`` is the mean over the 10-s windows (every 5 s) of the Pearson
    correlation of the band-passed ABP with the band-passed PPG ``d`` samples later.
    Guards against the fast correlation not centring the ABP window, or leaving the
    PPG's mean out of its variance."""
    est = estimate_lag(rec125.ppg, rec125.abp, FS)
    pb, ab = band(rec125.ppg, FS), band(rec125.abp, FS)
    starts = range(0, rec125.abp.size - 1250 - 250 + 1, 625)
    assert est.windows_used == len(starts) == 10
    for d in (0, 37, 180, 250):
        r = [np.corrcoef(ab[s : s + 1250], pb[s + d : s + d + 1250])[0, 1] for s in starts]
        assert est.curve[d] == pytest.approx(np.mean(r), abs=1e-12), d


def test_a_ppg_gap_in_the_2_s_after_a_delay_window_skips_it(rec125: Recording) -> None:
    """A PPG gap at 10.4-10.6 s lies in the 2 s of delayed PPG of the window at 0 s and in
    the windows at 5 and 10 s: 3 are skipped. Guards against checking only the window's
    first 10 s of PPG (the correlation then ran over the gap's interpolation)."""
    ppg = rec125.ppg.copy()
    ppg[1300:1325] = np.nan
    assert estimate_lag(ppg, rec125.abp, FS).skipped == {"nan": 3}


def test_abp_swinging_less_than_15_mmhg_is_not_pulsatile(rec125: Recording) -> None:
    """A pressure of 12 mmHg swing (in range) cannot be aligned: ``abp_not_pulsatile``.
    Guards against a limit of 10 mmHg (the test's 5 mmHg swing passed both)."""
    abp = 90.0 + (rec125.abp - rec125.abp.mean()) * 12.0 / np.ptp(rec125.abp)
    out = window_recording(rec125.ppg, abp, FS, PipelineOptions())
    assert out.status == "rejected" and out.reason == "abp_not_pulsatile"


# --------------------------------------------------------------------------------------
# Windowing without quality control or alignment
# --------------------------------------------------------------------------------------


def test_without_qc_labels_are_the_median_peak_and_trough_else_the_extremes(
    rec125: Recording,
) -> None:
    """``qc=None`` labels a window with the median systolic peak and diastolic trough, and
    a window without beats (a pressure ramp) with its maximum and minimum. Guards against
    the highest peak as SBP, and against the maximum as the beatless window's DBP."""
    opts = PipelineOptions(align=False, qc=None)
    out = window_recording(rec125.ppg, rec125.abp, FS, opts)
    assert len(out.starts) == 12
    for a, sbp, dbp in zip(out.abp, out.sbp, out.dbp, strict=True):
        peaks, troughs = sps.find_peaks(a, prominence=10, distance=41)[0], abp_beats(a, FS)[1]
        assert (sbp, dbp) == (np.median(a[peaks]), np.median(a[troughs]))
        assert sbp < a[peaks].max()
    ramp = np.linspace(60.0, 160.0, 1250)
    flat = window_recording(rec125.ppg[:1250], ramp, FS, opts)
    np.testing.assert_array_equal(flat.sbp, flat.abp.max(axis=1))
    np.testing.assert_array_equal(flat.dbp, flat.abp.min(axis=1))


def test_without_qc_a_window_with_a_ppg_gap_is_rejected(rec125: Recording) -> None:
    """``qc=None`` keeps every window without invalid samples, in either signal. Guards
    against checking the ABP only (a PPG with NaN was stored)."""
    ppg = rec125.ppg.copy()
    ppg[700:710] = np.nan
    out = window_recording(ppg, rec125.abp, FS, PipelineOptions(align=False, qc=None))
    assert out.rejected == {"nan": 1} and len(out.starts) == 11
    assert np.isfinite(out.ppg).all() and 625 not in out.starts


def test_without_alignment_a_gap_rejects_windows_not_the_record(rec125: Recording) -> None:
    """Without alignment a record is rejected as ``abp_nan`` only when every ABP sample is
    invalid. Guards against rejecting it for any invalid sample."""
    abp = rec125.abp.copy()
    abp[700:710] = np.nan
    out = window_recording(rec125.ppg, abp, FS, PipelineOptions(align=False, qc=None))
    assert out.status == "kept" and out.rejected == {"nan": 1}


def test_the_window_length_is_rounded_not_truncated() -> None:
    """2.3 s at 100 Hz is 230 samples (2.3 * 100 is 229.99999999999997 in floating point).
    Guards against ``int`` for ``round``."""
    assert PipelineOptions(fs=100.0, window_s=2.3).window_length == 230


# --------------------------------------------------------------------------------------
# Rates and time grids of the recording readers
# --------------------------------------------------------------------------------------


def test_a_csv_time_column_of_1_over_125_s_steps_is_exactly_125_hz(tmp_path: Path) -> None:
    """The rate a time column implies is rounded to 9 significant digits. Guards against
    the unrounded 1 / period (125.00000000000003 Hz for 285 rows), which outputs wrote into
    their headers."""
    t = np.arange(285) / 125.0
    assert 1.0 / ((t[-1] - t[0]) / 284) != 125.0
    rec = read_csv(write_csv(tmp_path / "r.csv", {"time": t, "PPG": np.sin(t)}))
    assert rec.fs == 125.0


def test_one_row_missing_from_a_csv_is_a_one_sample_gap(tmp_path: Path) -> None:
    """Row 100 of 250 missing from the time grid becomes one NaN sample and later samples
    keep their times. Guards against filling only when more than one row is missing (the
    samples after a single lost row moved one period early)."""
    t = np.arange(250) / 125.0
    x = np.cos(t)
    keep = np.arange(250) != 100
    rec = read_csv(write_csv(tmp_path / "r.csv", {"time": t[keep], "PPG": x[keep]}))
    assert rec.n_samples == 250 and rec.meta["missing_samples"] == 1
    np.testing.assert_array_equal(np.isnan(rec.signals["PPG"]), ~keep)
    np.testing.assert_array_equal(rec.signals["PPG"][keep], x[keep])


def _wfdb(folder: Path, fs: float, n: int = 1000, fmt: str = "16") -> Path:
    """A WFDB record ``folder/r`` of ``n`` samples at ``fs``: PLETH (NU), ABP (mmHg)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(n) / fs
    signals = np.column_stack([np.sin(2 * np.pi * t), 100 + 20 * np.sin(2 * np.pi * t)])
    wfdb.wrsamp("r", fs=fs, units=["NU", "mmHg"], sig_name=["PLETH", "ABP"],
                p_signal=signals, fmt=[fmt, fmt], write_dir=str(folder))  # fmt: skip
    return folder / "r"


def test_the_file_s_rate_wins_over_a_given_rate_within_1_percent(tmp_path: Path) -> None:
    """A CSV time column, a WFDB header or an NPZ ``fs`` states the rate; a given rate
    within 1 % of it is taken as the same (the file's is used), 1.2 % off is refused.
    Guards against the given rate winning (output times drift 0.8 % at 126 Hz for 125) and
    against a looser agreement than 1 %."""
    t = np.arange(2000) / 125.0
    path = write_csv(tmp_path / "r.csv", {"time": t, "PPG": np.sin(t)})
    np.savez(tmp_path / "r.npz", PPG=np.sin(t), fs=125.0)
    base = _wfdb(tmp_path / "w", 125.0)
    readers = (
        lambda fs: read_csv(path, fs),
        lambda fs: read_npz(tmp_path / "r.npz", fs),
        lambda fs: read_wfdb(base, fs),
    )
    for read in readers:
        assert read(126.0).fs == 125.0
        with pytest.raises(DataError, match="contradicts"):
            read(126.5)


def test_a_1000_hz_time_column_in_milliseconds_is_named(tmp_path: Path) -> None:
    """Times 0, 1, 2 ... (milliseconds at 1000 Hz) read as seconds are 1 Hz: an error
    that names milliseconds. Guards against hinting only below 1 Hz (1000-Hz data in ms
    was read as a 1-Hz recording)."""
    path = write_csv(tmp_path / "r.csv", {"time": np.arange(3000.0), "PPG": np.ones(3000)})
    with pytest.raises(DataError, match="1000 Hz if they are milliseconds"):
        read_csv(path)


def test_a_format_212_wfdb_record_is_read_and_its_truncation_found(tmp_path: Path) -> None:
    """Format 212 (MIMIC's) packs two 12-bit samples in 3 bytes: a whole record reads,
    one a byte short is refused as truncated. Guards against 2 bytes per sample (every
    intact 212 record was then called truncated)."""
    base = _wfdb(tmp_path, 125.0, n=1000, fmt="212")
    assert base.with_suffix(".dat").stat().st_size == 3000
    rec = read_wfdb(base)
    assert rec.n_samples == 1000 and rec.fs == 125.0
    abp = 100 + 20 * np.sin(2 * np.pi * np.arange(1000) / 125.0)
    np.testing.assert_allclose(rec.signals["ABP"], abp, atol=0.1)
    dat = base.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:-1])
    with pytest.raises(DataError, match="truncated"):
        read_wfdb(base)


def test_integer_npz_channels_are_read(tmp_path: Path) -> None:
    """A device's ADC values saved as int16 are channels like floats. Guards against
    reading float arrays only ("no 1-D numeric arrays")."""
    ppg = np.arange(500, dtype=np.int16)
    np.savez(tmp_path / "r.npz", PLETH=ppg, ABP=(ppg + 60).astype(np.int32), fs=125)
    rec = read_npz(tmp_path / "r.npz")
    assert rec.channels == ["PLETH", "ABP"] and rec.signals["PLETH"].dtype == np.float64
    np.testing.assert_array_equal(rec.signals["ABP"], np.arange(60.0, 560.0))


# --------------------------------------------------------------------------------------
# The recording importer: units, options, report
# --------------------------------------------------------------------------------------


def test_pressure_units_are_converted_to_mmhg_and_mmhg_is_left_alone() -> None:
    """1 kPa = 7.500617 mmHg, 1 cmH2O = 0.7355592 mmHg, 1 Pa = 0.007500617 mmHg; spaces,
    brackets and case do not matter; mmHg needs no word. Guards against a factor off by
    ten or inverted, units compared as written, and a warning for every mmHg channel."""
    one = np.array([1.0, 2.0])
    for unit, factor in (("kPa", 7.500617), ("cm H2O", 0.7355592), ("[Pa]", 0.007500617)):
        got, said = abp_in_mmhg(one, unit)
        np.testing.assert_allclose(got, factor * one, rtol=1e-12)
        assert said is not None and "converted to mmHg" in said
    for unit in ("mmHg", "mm Hg", "(MMHG)", ""):
        got, said = abp_in_mmhg(one, unit)
        assert got is one and said is None, unit


@pytest.fixture(scope="module")
def csv_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 40-s synthetic recordings at 250 Hz as CSV files in a subfolder ``ward``."""
    folder = tmp_path_factory.mktemp("csv")
    (folder / "ward").mkdir()
    for i in range(2):
        rec = synthesize_recording(i, 40 / 60, 250.0, seed=5)
        t = np.arange(rec.ppg.size) / 250.0
        write_csv(folder / "ward" / f"r{i}.csv", {"time": t, "PPG": rec.ppg, "ABP": rec.abp})
    return folder


def test_the_report_gives_the_delay_in_seconds_at_the_output_rate(
    csv_folder: Path, tmp_path: Path
) -> None:
    """``lag_seconds`` is ``lag_samples`` (at the output rate) over the output rate.
    Guards against dividing by the input rate (250 Hz here): half the delay."""
    report = import_recordings("csv", csv_folder, tmp_path / "o.h5")
    for src in report.sources:
        assert src.lag_samples > 0 and src.lag_seconds == round(src.lag_samples / FS, 6)


def test_max_lag_reaches_the_delay_search(csv_folder: Path, tmp_path: Path) -> None:
    """``max_lag_s`` limits the delay search: with 0.1 s no delay is above 12 samples
    (the recordings' delays are longer) and the provenance says 0.1. Guards against the
    importer building its delay options without it."""
    long = import_recordings("csv", csv_folder, tmp_path / "a.h5")
    assert all(s.lag_samples > 12 for s in long.sources)
    report = import_recordings("csv", csv_folder, tmp_path / "b.h5", max_lag_s=0.1)
    assert all(s.lag_samples is None or s.lag_samples <= 12 for s in report.sources)
    assert read_info(tmp_path / "b.h5").provenance["options"]["lag"]["max_lag_s"] == 0.1


def test_a_subject_map_may_name_records_by_their_file_name(
    csv_folder: Path, tmp_path: Path
) -> None:
    """Records ``ward/r0`` and ``ward/r1`` found in a map by ``r0`` and ``r1``, both of
    subject P: one subject in the file and in the report. Guards against looking up the
    record id only (the import then failed), and against counting records as subjects."""
    smap = tmp_path / "subjects.csv"
    smap.write_text("record,subject\nr0,P\nr1,P\n")
    report = import_recordings("csv", csv_folder, tmp_path / "o.h5", subject_map=smap)
    assert report.n_subjects == 1
    assert set(read_info(tmp_path / "o.h5").subjects) == {"P"}


def test_the_report_counts_kept_and_rejected_records(csv_folder: Path, tmp_path: Path) -> None:
    """A folder of two good recordings and one of flat ABP: the report's records are 3 in
    all, 2 kept and 1 rejected (``abp_flat``). Guards against counting every record as
    kept in the report's dictionary (the JSON output and the provenance summary)."""
    folder = tmp_path / "in"
    (folder / "ward").mkdir(parents=True)
    for f in (csv_folder / "ward").iterdir():
        (folder / "ward" / f.name).write_bytes(f.read_bytes())
    t = np.arange(10_000) / 250.0
    write_csv(folder / "flat.csv", {"time": t, "PPG": np.sin(7 * t), "ABP": np.full(t.size, 6.8)})
    records = import_recordings("csv", folder, tmp_path / "o.h5").to_dict()["records"]
    assert records == {"total": 3, "kept": 2, "rejected": 1, "rejected_by_reason": {"abp_flat": 1}}


def test_a_subject_map_s_cells_are_stripped_and_contradictions_refused(tmp_path: Path) -> None:
    """``r0, P`` (a space after the comma) maps r0 to P; r0 mapped to P and to Q is an
    error. Guards against keeping the spaces of the cells (the subject was " P", and
    record r1 was " r1 ") and against reading a contradictory map silently (the
    last row won)."""
    smap = tmp_path / "subjects.csv"
    smap.write_text("record, subject\nr0, P\n r1 ,Q \nr0,P\n")
    assert read_subject_map(smap) == {"r0": "P", "r1": "Q"}
    smap.write_text("record,subject\nr0,P\nr1,Q\nr0,Q\n")
    with pytest.raises(DataError, match="'r0' is mapped to two subjects"):
        read_subject_map(smap)


def test_a_subject_map_s_header_is_read_in_any_case_and_a_wrong_separator_named(tmp_path):
    """A spreadsheet's ``Record,Subject`` header is the same map (it was refused as having
    neither column), and a map separated by ';' or tabs is told so."""
    smap = tmp_path / "subjects.csv"
    smap.write_text("Record,SUBJECT\nr0,P\nr1,Q\n")
    assert read_subject_map(smap) == {"r0": "P", "r1": "Q"}
    smap.write_text("record;subject\nr0;P\n")
    with pytest.raises(DataError, match="separated by ';'; the map must be comma-separated"):
        read_subject_map(smap)
    smap.write_text("rec,subj\nr0,P\n")
    with pytest.raises(DataError, match=r"it has: rec, subj$"):
        read_subject_map(smap)


def test_abp_that_is_not_mmhg_is_warned_of_above_and_below() -> None:
    """A median ABP outside 20-250 is not mmHg: in Pa (13,000) as well as normalised (0.5).
    Guards against a check of the lower end only."""
    assert abp_units_warning(np.full(5, 100.0), "f") is None
    for level in (13_000.0, 0.5):
        said = abp_units_warning(np.full(5, level), "f")
        assert said is not None and "not a blood pressure in mmHg" in said
