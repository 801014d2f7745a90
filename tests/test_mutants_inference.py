"""Tests that pin what a mutation audit of the inference path (innpar_freia.reconstruct,
reconstruct_file, predictions and evaluate, with Checkpoint.predict_abp/predict_ppg and the
recording's calibration: a recording reconstructed window by window, its gaps, time axes,
summary and beats table; a window file's predictions file and windows table; a checkpoint
scored on a split) found unguarded: each one fails when the bug named in its docstring is
put into the package. Expected values are worked out by hand, never by the code under
test; the file-level tests use the tiny network's checkpoint with its forward pass replaced
by a known line, so that what is done with a model's output can be checked sample by
sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from innpar_freia.checkpoint import Checkpoint
from innpar_freia.cli.reconstruct import reconstruct_cmd
from innpar_freia.config import resolve_config
from innpar_freia.data.dataset import Normalisation
from innpar_freia.data.store import WindowWriter, read_info
from innpar_freia.errors import CheckpointError, DataError
from innpar_freia.evaluate import (
    Predictions,
    check_compatible,
    evaluate,
    inverse_metrics,
    predict,
    split_indices,
    trained_windows,
)
from innpar_freia.nn.model import build_model
from innpar_freia.predictions import read_predictions, write_predictions
from innpar_freia.reconstruct import GAP_MARGIN, Gap, detect_gaps, reconstruct_array
from innpar_freia.reconstruct_file import ReconstructOptions, beats_csv, reconstruct_file
from innpar_freia.reconstruct_folder import reconstruct_folder
from innpar_freia.recording_bp import Beats, calibrate_recording
from innpar_freia.train import windows_fingerprint

# --------------------------------------------------------------------------------------
# Gaps of a recording (reconstruct.detect_gaps, Gap)
# --------------------------------------------------------------------------------------

FS = 250.0


def sine(seconds: float, fs: float = FS, hz: float = 1.2) -> np.ndarray:
    """``sin(2 pi hz t)``: a PPG-like trace with a peak-to-peak of 2 in every 1-s block."""
    return np.sin(2 * np.pi * hz * np.arange(round(seconds * fs)) / fs)


def test_a_gap_s_duration_is_its_end_minus_its_start():
    """Guards against a gap's ``duration_s`` taken as its end time (``stop / fs``): a gap of
    samples 500-750 at 250 Hz on a clock starting at 3600 s lasts 1 s, from 3602 to 3603 s."""
    d = Gap(500, 750, "missing (NaN or inf)").to_dict(FS, origin_s=3600.0)
    assert d == {
        "start_s": 3602.0,
        "end_s": 3603.0,
        "duration_s": 1.0,
        "reason": "missing (NaN or inf)",
    }


def test_abp_above_250_mmhg_is_a_gap():
    """Guards against checking ABP against the lower limit (20 mmHg) only: a transducer
    flush reads 300 mmHg, which no pressure trace is; it is a gap (and its reason says so)."""
    abp = 100.0 + 20.0 * sine(10.0)
    abp[1000:1250] = 300.0 + sine(1.0)  # 4-5 s, not flat: only its range marks it
    valid, gaps = detect_gaps(abp, FS, "abp", margin_seconds=0.0)
    assert not valid[1000:1250].any() and valid[:1000].all() and valid[1250:].all()
    assert [(g.start, g.stop, g.reason) for g in gaps] == [(1000, 1250, "ABP out of 20-250 mmHg")]


def test_a_few_huge_artefacts_do_not_make_the_rest_lost_contact():
    """Guards against the typical block peak-to-peak taken as the mean rather than the
    median of the recording's 1-s blocks: 3 s of an artefact 2,000 times the pulse in a
    minute raised the mean to ~200, and every ordinary block (peak-to-peak 2 < 0.02 x 200)
    was called lost contact. With the median (2) only blocks below 0.04 are."""
    x = sine(60.0)
    for k in (10, 30, 50):
        x[round(k * FS) : round((k + 1) * FS)] *= 2000.0
    valid, gaps = detect_gaps(x, FS, margin_seconds=0.0)
    assert valid.all() and gaps == []


# --------------------------------------------------------------------------------------
# A recording through a window model (reconstruct.reconstruct_array)
# --------------------------------------------------------------------------------------

MODEL_FS, L = 125.0, 625


def identity(windows: np.ndarray) -> np.ndarray:
    """A "model" that returns its windows: the output is the input where it is valid."""
    return windows


def test_a_run_exactly_one_model_window_long_is_reconstructed():
    """Guards against ``seg.size <= window_length`` for "shorter than one window": 5 s at
    250 Hz resample to exactly the 625 samples of one model window, the length of every
    window of a 250 Hz window file of 5 s windows, and were all left NaN."""
    x = sine(5.0)
    r = reconstruct_array(x, FS, identity, MODEL_FS, L)
    assert r.n_windows == 1 and r.valid.all() and r.gaps == []
    assert np.max(np.abs(r.signal - x)) < 0.03 * np.ptp(x)


def test_windows_are_counted_over_every_valid_run():
    """Guards against ``n_windows`` (the summary's ``windows``) counting the last valid run
    only. 30 s at 250 Hz with samples 3750-4000 lost: runs of 3688 and 3438 samples (the
    gap widened by round(0.25 x 250) = 62), at 125 Hz 1844 and 1719, mirror-padded by 78 on
    each side to 2000 and 1875; windows of 625 every 312: starts 0, 312, ..., 1248 and the
    last one ending at the end (1375, 1250): 6 + 6 = 12."""
    x = sine(30.0)
    x[3750:4000] = np.nan
    r = reconstruct_array(x, FS, identity, MODEL_FS, L)
    assert [(g.start, g.stop) for g in r.gaps] == [(3688, 4062)]
    assert r.n_windows == 12


def test_gaps_are_listed_in_time_order():
    """Guards against leaving out the sort of the gaps when no ``delay_s`` shifts them: the
    recording's first 0.25 s (added after the detected gaps) came last in the summary."""
    x = sine(30.0)
    x[3750:4000] = np.nan
    r = reconstruct_array(x, FS, identity, MODEL_FS, L, start_margin_s=GAP_MARGIN)
    assert [(g.start, g.stop) for g in r.gaps] == [(0, 62), (3688, 4062)]
    assert "start-up transient" in r.gaps[0].reason


def test_abp_out_of_range_is_not_reconstructed_into_ppg():
    """Guards against ``reconstruct_array`` checking the input as a PPG whatever the
    direction: for ``abp2ppg`` a transducer flush at 300 mmHg is no pressure trace, and the
    PPG made from it was written as a reconstruction. It is a gap, widened by 62 samples."""
    abp = 100.0 + 20.0 * sine(30.0)
    abp[3750:4000] = 300.0 + sine(1.0)
    r = reconstruct_array(abp, FS, identity, MODEL_FS, L, direction="abp2ppg")
    assert [(g.start, g.stop, g.reason) for g in r.gaps] == [(3688, 4062, "ABP out of 20-250 mmHg")]
    assert np.isnan(r.signal[3688:4062]).all()
    assert r.valid[:3688].all() and r.valid[4062:].all()


# --------------------------------------------------------------------------------------
# A recording file in, a reconstruction out (reconstruct_file.reconstruct_file)
# --------------------------------------------------------------------------------------


def tiny_checkpoint(path: Path, data: dict | None = None, **train) -> Checkpoint:
    """The tiny network (seed 0) as a checkpoint at ``path``, scaling ABP 60..160 mmHg."""
    cfg = resolve_config("tiny", train=train)
    return Checkpoint(
        path=path,
        model=build_model(cfg.model, seed=0),
        run_config=cfg,
        normalisation=Normalisation("minmax", 60.0, 100.0),
        baselines=None,
        data=data or {},
    )


def linear_checkpoint(tmp_path: Path, data: dict | None = None, **train) -> Checkpoint:
    """The tiny network's checkpoint whose forward pass is replaced by ``100 + 20 x`` (and
    its reverse pass by the inverse): a "model" whose output is known sample by sample, so
    that what the file layer does with it can be checked by hand. ``data``: what the
    checkpoint says of its training data; ``train``: its run's training settings."""
    ckpt = tiny_checkpoint(tmp_path / "linear.pt", data, **train)
    ckpt.predict_abp = lambda w, batch_size=512: 100.0 + 20.0 * np.asarray(w)  # type: ignore[method-assign]
    ckpt.predict_ppg = lambda w, batch_size=512, dtype=np.float64: (  # type: ignore[method-assign]
        (np.asarray(w, dtype=np.float64) - 100.0) / 20.0
    ).astype(dtype)
    return ckpt


def npz_recording(path: Path, seconds: float = 60.0, start_s: float | None = None) -> Path:
    """A PPG ``sin(2 pi 1.2 t)`` and the ABP ``100 + 20 x`` it maps to (120/80 mmHg at
    72 bpm) at 250 Hz, as an NPZ file (with a clock starting at ``start_s`` if given)."""
    ppg = sine(seconds)
    extra = {} if start_s is None else {"start_s": np.float64(start_s)}
    np.savez(path, pleth=ppg, abp=100.0 + 20.0 * ppg, fs=np.float64(FS), **extra)
    return path


def test_a_recording_s_first_quarter_second_is_left_out(tmp_path: Path):
    """Guards against ``reconstruct_file`` not passing ``start_margin_s=GAP_MARGIN``: a
    monitor's first PLETH sample (0.74 x the next in 13 of the 34 real records) reached the
    output through the mirror padding (a real network answered with -400 mmHg). The first
    62 samples (0.25 s at 250 Hz) are NaN, and the summary's first gap says why."""
    src = npz_recording(tmp_path / "rec.npz", seconds=20.0)
    summary = reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "abp.npz")
    abp = np.load(tmp_path / "abp.npz")["ABP"]
    assert np.isnan(abp[:62]).all() and np.isfinite(abp[62:]).all()
    assert summary["gaps"][0]["start_s"] == 0.0 and summary["gaps"][0]["end_s"] == 0.248
    assert "start-up transient" in summary["gaps"][0]["reason"]


def test_the_overlap_asked_for_is_the_overlap_used(tmp_path: Path):
    """Guards against ``reconstruct_file`` leaving ``overlap`` out of ``reconstruct_array``
    (the default 0.5 always): 20 s at 250 Hz less the first 62 samples is 4938 samples,
    2469 at 125 Hz, mirror-padded to 2625; without overlap windows start every 625 samples
    at 0, 625, 1250, 1875 and 2000 (the last ending at the end): 5 windows, not 8."""
    src = npz_recording(tmp_path / "rec.npz", seconds=20.0)
    ckpt = linear_checkpoint(tmp_path)
    opts = ReconstructOptions(overlap=0.0)
    summary = reconstruct_file(ckpt, src, tmp_path / "abp.npz", opts)
    assert summary["overlap"] == 0.0 and summary["windows"] == 5
    half = reconstruct_file(ckpt, src, tmp_path / "half.npz")
    assert half["windows"] == 8


def test_a_cuff_calibration_by_default_starts_where_the_input_s_clock_starts(tmp_path: Path):
    """Guards against calibrating at 0 s when no ``calibration_at`` is given: on an input
    whose clock starts at 3600 s (a CSV time column, an NPZ ``start_s``) the segment then
    lay before the recording and every cuff calibration was refused. The first 20 s on the
    input's clock are the segment, and the cuff's 110/70 is the calibrated ABP there."""
    src = npz_recording(tmp_path / "rec.npz", start_s=3600.0)
    opts = ReconstructOptions(calibration="110/70", calibration_seconds=20.0)
    summary = reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "abp.npz", opts)
    cal = summary["calibration"]
    assert cal["source"] == "cuff" and cal["segment_s"] == [3600.0, 3620.0]
    # 100 + 20 sin reads 120/80: moved to 110/70 by the offset alone (scale ~1).
    assert cal["scale"] == pytest.approx(1.0, abs=2e-3)  # sampled crests: PP 39.96
    assert summary["beats"]["sbp_median"] == pytest.approx(110.0, abs=0.05)
    assert summary["beats"]["dbp_median"] == pytest.approx(70.0, abs=0.05)


def test_a_cuff_calibration_with_a_reference_to_compare_with(tmp_path: Path):
    """Guards against passing the reference ABP to ``calibrate_recording`` beside a cuff
    reading (``--calibration 120/80 --reference-abp ABP``: calibrate to the cuff, compare
    with the reference), which raised "give exactly one of cuff and reference"; and against
    leaving the cuff's segment out of the comparison as if the reference had calibrated it.
    60 s in 5-s windows: the first touches the first 0.25 s, left out; 11 are compared."""
    src = npz_recording(tmp_path / "rec.npz")
    opts = ReconstructOptions(calibration="120/80", calibration_seconds=20.0, reference_abp="abp")
    summary = reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "abp.npz", opts)
    assert summary["calibration"]["source"] == "cuff"
    ref = summary["reference"]
    assert ref["calibration_segment_excluded"] is False and ref["n_windows"] == 11
    assert ref["waveform"]["mae"] < 0.1  # the cuff is the reference's own 120/80


def test_the_reference_calibration_segment_is_left_out_on_the_input_s_clock(tmp_path: Path):
    """Guards against comparing with the reference on a clock from 0 s while the calibration
    segment is on the input's (a clock starting at 3600 s): no window was left out, and the
    windows the reference calibrated were scored against it. Of 60 s in 5-s windows the
    first touches the first 0.25 s (not reconstructed) and the 3610-3620 s segment takes
    the windows at 10 and 15 s: 9 compared."""
    src = npz_recording(tmp_path / "rec.npz", start_s=3600.0)
    opts = ReconstructOptions(
        calibration="reference",
        reference_abp="abp",
        calibration_at=3610.0,
        calibration_seconds=10.0,
    )
    summary = reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "abp.npz", opts)
    assert summary["calibration"]["segment_s"] == [3610.0, 3620.0]
    ref = summary["reference"]
    assert ref["calibration_segment_excluded"] is True and ref["n_windows"] == 9


def test_the_summary_s_reconstructed_seconds_are_at_the_input_s_rate(tmp_path: Path):
    """Guards against ``reconstructed_s`` counted at the model's rate (125 Hz) instead of
    the input's (250 Hz), which doubled it: 20 s less the first 62 samples is 4938 samples,
    19.752 s."""
    src = npz_recording(tmp_path / "rec.npz", seconds=20.0)
    summary = reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "abp.npz")
    assert summary["reconstructed_samples"] == 4938
    assert summary["reconstructed_s"] == pytest.approx(19.752)
    assert summary["duration_s"] == pytest.approx(20.0)


def test_ppg_from_abp_carries_no_note_about_mmhg_levels(tmp_path: Path):
    """Guards against the calibration-free note (about the training population's mmHg
    levels) on an ``abp2ppg`` reconstruction, which is z-scored PPG and has no level."""
    src = npz_recording(tmp_path / "rec.npz", seconds=20.0)
    opts = ReconstructOptions(direction="abp2ppg")
    summary = reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "ppg.npz", opts)
    assert summary["units"] == "z-scored PPG" and summary["note"] is None
    ppg = np.load(tmp_path / "ppg.npz")["PPG"]
    np.testing.assert_allclose(ppg[62:], sine(20.0)[62:], atol=0.03)


def test_the_beats_table_numbers_beats_from_one_with_times_to_the_millisecond():
    """Guards against the beats table numbering beats from 0, and against its peak times
    written to 10 ms like the pressures (2 decimals) instead of to 1 ms like the onsets."""
    beats = Beats(
        onset_s=np.array([0.804, 1.6]),
        peak_s=np.array([1.2083, 2.0]),
        sbp=np.array([120.004, 119.5]),
        dbp=np.array([80.0, 79.996]),
        map=np.array([100.0, 99.754]),
        hr_bpm=np.array([75.1879, 75.0]),
    )
    assert beats_csv(beats).splitlines() == [
        "beat,onset_s,peak_s,sbp_mmHg,dbp_mmHg,map_mmHg,hr_bpm",
        "1,0.804,1.208,120.00,80.00,100.00,75.19",
        "2,1.600,2.000,119.50,80.00,99.75,75.00",
    ]


# --------------------------------------------------------------------------------------
# A window file in, a predictions file out (reconstruct_file, predictions)
# --------------------------------------------------------------------------------------


def window_file(
    path: Path, fs: float, length: int, n: int = 2, ppg: np.ndarray | None = None, **kw
) -> Path:
    """``n`` windows of ``length`` samples at ``fs`` (subject "s0", ids w0, w1, ...): PPG
    ``sin(2 pi 1.2 t)`` from a start 0.1 s later each window unless given, ABP
    ``100 + 20 x`` (what :func:`linear_checkpoint` predicts) unless given in ``kw``."""
    if ppg is None:
        t = np.arange(length) / fs
        ppg = np.stack([np.sin(2 * np.pi * 1.2 * (t + 0.1 * i)) for i in range(n)])
    abp = kw.pop("abp", 100.0 + 20.0 * ppg)
    with WindowWriter(path, fs=fs, window_length=length, source_format="test") as w:
        w.append(ppg, abp, subject="s0", window_id=[f"w{i}" for i in range(n)], **kw)
    return path


def read_table(path: Path) -> list[list[str]]:
    """The rows of a CSV table written by ``innpar reconstruct`` (no quoted cells)."""
    return [row.split(",") for row in path.read_text().splitlines()]


def test_windows_at_another_rate_are_resampled_even_with_the_model_s_sample_count(tmp_path):
    """Guards against taking a file's windows whole when only their length in samples is the
    model's: 625 samples at 62.5 Hz are 10 s, fed to a 125 Hz model as if 5 s (pulses at
    twice their rate). Resampled, each is 1250 samples, mirror-padded by 78 to 1406: model
    windows at 0, 312, 624 and 781, so 4 per window."""
    src = window_file(tmp_path / "w62.h5", 62.5, 625)
    summary = reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "p.h5")
    assert summary["model_windows"] == 2 * 4
    p = read_predictions(tmp_path / "p.h5")
    np.testing.assert_allclose(p.prediction, p.reference, atol=0.5)


def test_windows_shorter_in_seconds_than_the_model_s_are_refused(tmp_path: Path):
    """Guards against comparing a window file's window length with the model's in samples
    rather than seconds: 1000 samples at 250 Hz (4 s) pass for longer than 625 at 125 Hz,
    and every window came back NaN instead of a message."""
    src = window_file(tmp_path / "w250.h5", 250.0, 1000)
    with pytest.raises(DataError, match="has 4 s windows, shorter than one model window"):
        reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "p.h5")
    assert not (tmp_path / "p.h5").exists()


def test_ppg_from_a_window_file_is_scored_against_the_z_scored_ppg(tmp_path: Path):
    """Guards against the predictions file's ``reference`` for ``abp2ppg`` being the raw
    PPG, and the windows table's ``mae_z`` measured against it: the prediction is z-scored
    PPG, its reference must be too. The linear checkpoint gives back ``sin`` itself; 6 whole
    cycles of a sine have an SD of 1/sqrt(2), so the z-scored PPG is sqrt(2) sin and the
    error mean |sin| (sqrt(2) - 1) = (2 / pi)(sqrt(2) - 1) = 0.2637 (0 against the raw PPG)."""
    src = window_file(tmp_path / "w.h5", 125.0, 625)
    opts = ReconstructOptions(direction="abp2ppg")
    reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "p.h5", opts)
    p = read_predictions(tmp_path / "p.h5")
    ppg = np.stack([np.sin(2 * np.pi * 1.2 * (np.arange(625) / 125.0 + 0.1 * i)) for i in (0, 1)])
    np.testing.assert_allclose(p.reference, np.sqrt(2) * ppg, atol=1e-5)  # float32 in the file
    assert p.attrs["units"] == "z-scored PPG"
    assert read_table(tmp_path / "p.windows.csv") == [
        ["window_id", "subject", "mae_z"],
        ["w0", "s0", "0.2637"],
        ["w1", "s0", "0.2637"],
    ]


def test_the_windows_table_puts_predicted_and_reference_bp_in_their_own_columns(tmp_path):
    """Guards against the windows table's reference and predicted SBP/DBP/MAP swapped. The
    prediction is 100 + 20 sin (120/80, MAP 100: 6 whole cycles), the reference ABP
    110 + 30 sin (140/80, MAP 110); sampled crests read a hair under the peak."""
    ppg = np.sin(2 * np.pi * 1.2 * np.arange(625) / 125.0)[None]
    src = window_file(tmp_path / "w.h5", 125.0, 625, n=1, ppg=ppg, abp=110.0 + 30.0 * ppg)
    reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "p.h5")
    header, row = read_table(tmp_path / "p.windows.csv")
    assert header[2:] == [
        "sbp_mmHg", "dbp_mmHg", "map_mmHg", "ref_sbp_mmHg", "ref_dbp_mmHg", "ref_map_mmHg"
    ]  # fmt: skip
    np.testing.assert_allclose([float(v) for v in row[2:]], [120, 80, 100, 140, 80, 110], atol=0.1)


def test_the_predictions_file_keeps_each_window_s_start(tmp_path: Path):
    """Guards against the predictions file of a window file leaving out the windows' start
    samples (all -1, "unknown"): the calibrated protocol orders a subject's windows by
    them, and another tool scoring the file could not."""
    src = window_file(tmp_path / "w.h5", 125.0, 625, n=3, start=[1250, 0, 625])
    reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "p.h5")
    p = read_predictions(tmp_path / "p.h5")
    assert p.start.tolist() == [1250, 0, 625] and p.index.tolist() == [0, 1, 2]
    assert p.window_id.tolist() == ["w0", "w1", "w2"]


def test_the_windows_table_reads_blood_pressure_at_the_file_s_rate(tmp_path: Path):
    """Guards against the windows table's SBP/DBP found at the model's rate (125 Hz) on a
    250 Hz file: peaks must be 0.3 s apart, int(0.3 x 125) = 37 samples read at 250 Hz
    are 0.15 s, and a second hump 0.2 s after each systolic peak (114 mmHg, 14 above the
    notch before it: more than the 12-mmHg prominence threshold) passed for a beat of its
    own; SBP became the median of 120 and 114. The systolic peaks alone read 120."""
    fs = 250.0
    beat = [(0.0, -1.0), (0.12, 1.0), (0.22, 0.0), (0.32, 0.7), (0.45, -0.2)]
    u = (np.arange(1250) / fs) % (60 / 72)
    times, values = zip(*beat, strict=True)
    ppg = np.interp(u, [*times, 60 / 72], [*values, -1.0])[None]
    src = window_file(tmp_path / "w.h5", fs, 1250, n=1, ppg=ppg)
    reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "p.h5")
    _, row = read_table(tmp_path / "p.windows.csv")
    # Crests fall between samples (72 bpm at 250 Hz): they read 119.7 rather than 120.
    assert float(row[2]) == pytest.approx(120.0, abs=0.5)  # the reconstruction's SBP
    assert float(row[5]) == pytest.approx(120.0, abs=0.5)  # the reference's


def test_a_window_file_with_a_gap_in_a_window_is_reconstructed_and_tabled(tmp_path: Path):
    """A window at another rate is a short recording, and a flat second in it (8-9 s of a
    10 s window at 250 Hz, widened by 62 samples) leaves 1938 valid samples before it and a
    188-sample run after it, too short for a model window: 562 of the 5000 samples of 2
    windows are NaN. The windows table then died on that window ("bp_values needs a window
    of numbers", a traceback, nothing written): it leaves its predicted SBP/DBP/MAP empty.
    Guards too against ``reconstructed_fraction`` given as 1 for a window file."""
    src_ppg = np.stack([np.sin(2 * np.pi * 1.2 * np.arange(2500) / 250.0) for _ in (0, 1)])
    src_ppg[1, 2000:2250] = src_ppg[1, 2000]
    src = window_file(tmp_path / "w.h5", 250.0, 2500, ppg=src_ppg)
    summary = reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "p.h5")
    assert summary["reconstructed_fraction"] == pytest.approx(1 - 562 / 5000)
    pred = read_predictions(tmp_path / "p.h5").prediction
    assert np.isfinite(pred[0]).all() and np.isnan(pred[1, 1938:]).all()
    _, whole, gapped = read_table(tmp_path / "p.windows.csv")
    np.testing.assert_allclose([float(v) for v in whole[2:]], [120, 80, 100] * 2, atol=0.1)
    assert gapped[:5] == ["w1", "s0", "", "", ""]
    ref_map = 100.0 + 20.0 * src_ppg[1].mean()  # the flat second moves it off 100
    np.testing.assert_allclose([float(v) for v in gapped[5:]], [120, 80, ref_map], atol=0.01)


def test_a_calibration_is_refused_for_ppg_from_abp():
    """Guards against accepting ``--calibration`` with ``abp2ppg``: a cuff reading
    calibrates pressures, and the output is z-scored PPG."""
    with pytest.raises(DataError, match=r"only with direction \(--direction\) ppg2abp"):
        ReconstructOptions(direction="abp2ppg", calibration="120/80")


@pytest.mark.parametrize(
    ("field", "bad", "flag", "limits"),
    [
        ("calibration_seconds", 0.0, "--calibration-seconds", "1 to 3600"),
        ("overlap", 0.95, "--overlap", "0 to 0.9"),
        ("delay_s", -1.0, "--ppg-delay", "0 to 5"),
        ("fs", float("nan"), "--fs", "1 to 100000"),
    ],
)
def test_options_out_of_the_cli_s_range_are_refused_by_name(field, bad, flag, limits):
    """Guards against the Python API taking what the CLI refuses: calibration_seconds=0 was
    reported as a calibration segment 'after the recording's end'. The range is the CLI
    option's own (the same numbers), and a value that is not a number is a TypeError."""
    with pytest.raises(
        ValueError, match=f"^ReconstructOptions.{field} is .*, not in the range {limits}$"
    ):
        ReconstructOptions(calibration="118/76", **{field: bad})
    param = next(p for p in reconstruct_cmd.params if p.opts[0] == flag)
    assert (param.type.min, param.type.max) == tuple(float(x) for x in limits.split(" to "))
    with pytest.raises(TypeError, match=rf"ReconstructOptions\.{field} must be a number, not '2'"):
        ReconstructOptions(calibration="118/76", **{field: "2"})


NO_CALIBRATION = "but no calibration (--calibration) was given (SBP/DBP, or reference)"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"calibration_at": 10.0},
            f"calibration_at (--calibration-at) sets how to calibrate, {NO_CALIBRATION}",
        ),
        (
            {"calibration_seconds": 30.0, "calibration_mode": "offset"},
            "calibration_seconds (--calibration-seconds), calibration_mode "
            f"(--calibration-mode) set how to calibrate, {NO_CALIBRATION}",
        ),
        (
            {"direction": "abp2ppg", "reference_abp": "ABP"},
            "reference_abp (--reference-abp) is the ABP a reconstructed ABP is compared with; "
            "with direction (--direction) abp2ppg the output is PPG: drop it",
        ),
        (
            {"direction": "abp2ppg", "calibration": "120/80"},
            "calibration (--calibration) calibrates reconstructed ABP: only with direction "
            "(--direction) ppg2abp",
        ),
        (
            {"calibration": "reference"},
            "calibration (--calibration) 'reference' needs reference_abp (--reference-abp), "
            "the channel of the reference ABP",
        ),
        (
            {"calibration": "120/80", "calibration_at": float("nan")},
            "calibration_at (--calibration-at) must be a time in seconds, not nan",
        ),
    ],
)
def test_options_checked_together_name_each_field_with_its_option(given, message):
    """Guards against the checks of fields against each other naming only command-line
    options ("--calibration-at sets how to calibrate, but no --calibration was given"),
    which a Python caller does not have: the README promises the field's name. The CLI
    builds these options, so its users read the same message, with their option."""
    with pytest.raises(DataError) as err:
        ReconstructOptions(**given)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"force": "no"}, "ReconstructOptions.force must be True or False, not 'no'"),
        ({"force": 1}, "ReconstructOptions.force must be True or False, not 1"),
        (
            {"channel": 1},
            "ReconstructOptions.channel must be a channel's name (a str) or None, not 1",
        ),
        (
            {"reference_abp": ["ABP"]},
            "ReconstructOptions.reference_abp must be a channel's name (a str) or None, "
            "not ['ABP']",
        ),
    ],
)
def test_a_flag_that_is_no_bool_or_a_channel_that_is_no_name_is_refused(tmp_path, given, message):
    """Guards against ``force="no"`` taken as true (the outputs replaced) and ``channel=1``
    ending in "AttributeError: 'int' object has no attribute 'lower'", from a dict of
    options too."""
    with pytest.raises(TypeError) as err:
        ReconstructOptions(**given)
    assert str(err.value) == message
    with pytest.raises(TypeError, match="must be"):
        reconstruct_file(tmp_path / "none.pt", tmp_path / "rec.npz", tmp_path / "o.npz", given)
    assert ReconstructOptions(force=np.bool_(True)).force is True


def test_reconstruct_file_names_the_fs_force_and_delay_s_it_asks_for(tmp_path: Path):
    """Guards against reconstruct_file telling a Python caller to give --fs, pass --force or
    drop --ppg-delay, options it does not have: each message names the field of
    ReconstructOptions with the command's option, as do a delayed output's edge gap and
    the warning of a rate given by hand."""
    ckpt = linear_checkpoint(tmp_path)
    np.save(tmp_path / "ppg.npy", sine(20.0))
    with pytest.raises(DataError, match=r"the sampling rate is unknown; give it with fs \(--fs\)$"):
        reconstruct_file(ckpt, tmp_path / "ppg.npy", tmp_path / "abp.npy")
    src = npz_recording(tmp_path / "rec.npz", seconds=20.0)
    summary = reconstruct_file(ckpt, src, tmp_path / "abp.npz", {"delay_s": 0.2})
    assert summary["gaps"][-1]["reason"] == (
        "beyond the input's end after the delay_s (--ppg-delay) shift"
    )
    with pytest.raises(DataError, match=r"; pass force \(--force\) to replace them$"):
        reconstruct_file(ckpt, src, tmp_path / "abp.npz")
    windows = window_file(tmp_path / "w.h5", FS, 1250)
    with pytest.raises(DataError, match=r"^delay_s \(--ppg-delay\) is for recordings"):
        reconstruct_file(ckpt, windows, tmp_path / "p.h5", {"delay_s": 0.2})
    with pytest.raises(DataError, match=r"250 Hz, which fs \(--fs\) 125 contradicts$"):
        reconstruct_file(ckpt, windows, tmp_path / "p.h5", {"fs": 125.0})
    slow = reconstruct_file(ckpt, tmp_path / "ppg.npy", tmp_path / "slow.npy", {"fs": 50.0})
    assert "50 Hz given with fs (--fs), may be" in slow["warning"]


def test_a_plot_named_by_a_str_is_drawn(tmp_path: Path):
    """Guards against ``plot`` given as a str failing with "'str' object has no attribute
    'suffix'": it is a Path; an empty name or a folder is refused as the CLI refuses it."""
    src = npz_recording(tmp_path / "rec.npz", seconds=20.0)
    opts = ReconstructOptions(plot=str(tmp_path / "abp.png"))
    summary = reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "abp.npz", opts)
    assert summary["outputs"]["plot"] == str(tmp_path / "abp.png")
    assert (tmp_path / "abp.png").is_file()
    with pytest.raises(ValueError, match=r"ReconstructOptions\.plot .* names a folder"):
        ReconstructOptions(plot=str(tmp_path) + "/")
    with pytest.raises(ValueError, match=r"ReconstructOptions\.plot must be a file name"):
        ReconstructOptions(plot="")
    with pytest.raises(TypeError, match=r"ReconstructOptions\.plot must be a file name or None"):
        ReconstructOptions(plot=3)


def test_a_predictions_file_keeps_its_ids_and_says_its_shape(tmp_path: Path):
    """Guards against the predictions file's ``index`` (the windows' rows in the source
    window file) replaced by 0, 1, ...; its ``start`` read back from ``index``; a missing
    ``start`` written as sample 0 rather than -1 (unknown); and the attributes
    ``window_length`` and ``n_windows`` swapped."""
    pred = np.arange(6.0).reshape(2, 3)
    path = write_predictions(
        tmp_path / "p.h5",
        fs=125.0,
        window_id=np.array(["a", "b"]),
        subject=np.array(["s1", "s2"]),
        prediction=pred,
        start=np.array([1250, 0]),
        index=np.array([7, 3]),
    )
    p = read_predictions(path)
    assert p.start.tolist() == [1250, 0] and p.index.tolist() == [7, 3]
    assert (p.attrs["window_length"], p.attrs["n_windows"]) == (3, 2)
    assert p.window_id.tolist() == ["a", "b"] and p.subject.tolist() == ["s1", "s2"]
    np.testing.assert_array_equal(p.prediction, pred)
    unknown = read_predictions(
        write_predictions(
            tmp_path / "q.h5", fs=125.0, window_id=["a", "b"], subject=["s", "s"], prediction=pred
        )
    )
    assert unknown.start.tolist() == [-1, -1] and unknown.index.tolist() == [0, 1]


# --------------------------------------------------------------------------------------
# A checkpoint scored on a split of a window file (evaluate)
# --------------------------------------------------------------------------------------


def fold_file(path: Path, sizes: tuple[int, ...] = (2, 2, 1, 2, 2), **kw) -> Path:
    """Subject ``s{k}`` in fold k with ``sizes[k]`` windows (625 samples at 125 Hz, ids w0,
    w1, ... in file order, each subject's windows starting at 0, 625, ...); ``kw`` go to
    every ``append`` (a ``split`` column)."""
    t = np.arange(625) / 125.0
    with WindowWriter(path, fs=125.0, window_length=625, source_format="test") as w:
        row = 0
        for k, size in enumerate(sizes):
            ppg = np.stack([np.sin(2 * np.pi * 1.2 * (t + 0.1 * (row + i))) for i in range(size)])
            ids = [f"w{row + i}" for i in range(size)]
            start = 625 * np.arange(size)
            w.append(ppg, 100.0 + 20.0 * ppg, subject=f"s{k}", window_id=ids, fold=k,
                     start=start, **kw)  # fmt: skip
            row += size
    return path


def trained_on(tmp_path: Path, path: Path, **train) -> Checkpoint:
    """The linear checkpoint of a run that trained on the window file ``path``."""
    return linear_checkpoint(
        tmp_path, {"windows_sha256": windows_fingerprint(read_info(path))}, **train
    )


def test_a_window_file_at_another_rate_is_refused_by_eval(tmp_path: Path):
    """Guards against ``check_compatible`` comparing window lengths only: 625 samples at
    250 Hz (2.5 s) fed to a model of 625 samples at 125 Hz gave numbers for pulses at
    twice their rate, without a word."""
    info = read_info(window_file(tmp_path / "w.h5", 250.0, 625))
    with pytest.raises(DataError, match="625 samples at 250 Hz, but checkpoint"):
        check_compatible(linear_checkpoint(tmp_path), info)


def test_validation_windows_of_another_test_fold_that_were_trained_on_are_refused(tmp_path):
    """Guards against refusing training windows for ``--split test`` only: a run with test
    fold 0 (validation 1) trained on folds 2-4; ``--split val --test-fold 2`` takes fold 3,
    which it trained on, and scored it as if it were a validation."""
    path = fold_file(tmp_path / "f.h5")
    ckpt, info = trained_on(tmp_path, path, test_fold=0), read_info(path)
    with pytest.raises(DataError, match="2 of the 2 val windows were in the training split"):
        split_indices(ckpt, info, "val", test_fold=2)
    assert split_indices(ckpt, info, "val").tolist() == [2, 3]  # the run's own: fold 1


def test_a_single_training_window_in_the_test_split_is_refused(tmp_path: Path):
    """Guards against the refusal counting more than one training window: fold 2 holds one
    window, which the run with test fold 0 trained on; ``--test-fold 2`` scored it."""
    path = fold_file(tmp_path / "f.h5")
    ckpt, info = trained_on(tmp_path, path, test_fold=0), read_info(path)
    with pytest.raises(DataError, match="1 of the 1 test windows were in the training split"):
        split_indices(ckpt, info, "test", test_fold=2)


def test_a_training_file_whose_run_s_fold_is_gone_cannot_be_scored(tmp_path: Path):
    """Guards against taking a training file whose folds no longer hold the run's test
    fold (re-split since) as a file without known training windows: its training windows
    cannot be told from the others, and ``--split all`` scored them as a test."""
    path = fold_file(tmp_path / "f.h5")
    info = read_info(path)
    data = {"windows_sha256": windows_fingerprint(info), "split_sha256": "of the old folds"}
    ckpt = linear_checkpoint(tmp_path, data, test_fold=7)
    with pytest.raises(DataError, match="folds or split column have changed since"):
        trained_windows(ckpt, info)


def test_an_empty_split_is_said(tmp_path: Path):
    """Guards against scoring an empty split: a split column without validation windows
    gave ``--split val`` no windows and a protocol of nothing."""
    path = fold_file(tmp_path / "f.h5", sizes=(2, 2), split="train")
    with pytest.raises(DataError, match="the val split is empty"):
        split_indices(linear_checkpoint(tmp_path), read_info(path), "val")


def test_a_training_file_without_held_out_windows_gets_hints_that_lead_somewhere(tmp_path):
    """Guards against the two hints that pointed at each other on the run's own file with
    every window in train (``innpar data synth --subjects 2``): an empty test split said to
    use --split all, and --split all, refused for its training windows, said to score
    --split test. Both now say to hold out windows with 'innpar data split' (or to score
    another data set); a file with a test split but no validation one is sent to the test
    split alone."""
    path = fold_file(tmp_path / "f.h5", sizes=(2, 2), split="train")
    ckpt, info = trained_on(tmp_path, path), read_info(path)
    for split in ("test", "val"):
        with pytest.raises(DataError) as empty:
            split_indices(ckpt, info, split)
        assert str(empty.value) == (
            f"{path}: the {split} split is empty: this checkpoint was trained on this file, "
            "so split='all' would score its training windows; hold out windows with 'innpar "
            "data split' and train on it again, or score another data set (data)"
        )
    with pytest.raises(DataError) as everything:
        split_indices(ckpt, info, "all")
    assert str(everything.value).endswith(
        "the file holds no test or validation windows of that run: hold out windows with "
        "'innpar data split' and train on it again, or score another data set (data), or "
        "split='train' to score training windows"
    )
    # Another data set without a test split can be scored whole.
    other = fold_file(tmp_path / "o.h5", sizes=(1, 1), split="train")
    with pytest.raises(DataError, match="use split='all' for every window"):
        split_indices(ckpt, read_info(other), "test")
    assert len(split_indices(ckpt, read_info(other), "all")) == 2
    path = fold_file(tmp_path / "g.h5")
    ckpt, info = trained_on(tmp_path, path, test_fold=0, val_fold=-1), read_info(path)
    with pytest.raises(DataError, match=r"; score split='test', or split='train' to score"):
        split_indices(ckpt, info, "all")


def test_predictions_carry_the_ids_of_the_windows_they_are_of(tmp_path: Path):
    """Guards against a split's window ids taken from the top of the file: the test split
    (fold 4 of folds 0-4, the highest when the run gives none) is windows 7 and 8, and their
    ids, subjects and starts go with them into ``innpar eval``'s predictions file."""
    path = fold_file(tmp_path / "f.h5")
    p = predict(linear_checkpoint(tmp_path), path, "test")
    assert p.indices.tolist() == [7, 8] and p.window_ids.tolist() == ["w7", "w8"]
    assert p.subjects.tolist() == ["s4", "s4"] and p.start.tolist() == [0, 625]
    np.testing.assert_allclose(p.abp_pred, p.abp, atol=1e-9)  # 100 + 20 x, both


def test_the_inverse_pass_is_scored_against_the_z_scored_ppg_by_hand():
    """Guards against scoring the reverse pass (ABP -> PPG, z units) against the raw PPG
    instead of its per-window z-score; against an RMSE without its square root, a median
    instead of the mean per-window r, and the zero baseline measured on the raw PPG.
    The PPG is 6 whole cycles of sin, z-scored sqrt(2) sin = z (mean |z| = 2 sqrt(2) / pi,
    mean z^2 = 1); the reverse pass gives z + 0.5, z and -z: errors 0.5, 0 and -2z, so
    MAE = (0.5 + 4 sqrt(2) / pi) / 3, RMSE = sqrt((0.25 + 4) / 3), r = (1 + 1 - 1) / 3."""
    ppg = np.tile(sine(5.0, fs=125.0), (3, 1))
    z = np.sqrt(2.0) * ppg
    p = Predictions(
        indices=np.arange(3),
        window_ids=np.array(["a", "b", "c"]),
        subjects=np.array(["s", "s", "s"]),
        start=np.arange(3),
        ppg=3.0 + 7.0 * ppg,  # raw PPG in any units
        abp=100.0 + 20.0 * ppg,
        abp_pred=100.0 + 20.0 * ppg,
        ppg_pred=np.stack([z[0] + 0.5, z[1], -z[2]]),
    )
    m = inverse_metrics(p)
    assert m["units"] == "z-scored PPG"
    assert m["mae"] == pytest.approx((0.5 + 4 * np.sqrt(2) / np.pi) / 3, rel=1e-3)
    assert m["rmse"] == pytest.approx(np.sqrt(4.25 / 3), rel=1e-9)
    assert m["r"] == pytest.approx(1 / 3, rel=1e-9)
    assert m["baseline_zero"]["mae"] == pytest.approx(2 * np.sqrt(2) / np.pi, rel=1e-3)
    assert m["baseline_zero"]["rmse"] == pytest.approx(1.0, rel=1e-9)


def test_only_the_epoch_chosen_on_the_validation_windows_is_warned_about(tmp_path: Path):
    """Guards against the optimistic-scores warning for every checkpoint of a run scored on
    its validation windows: only the epoch that was the best on them when it was saved
    (``best_epoch``) was chosen there; a ``last.pt`` of epoch 5 after the best epoch 3 was
    only scored on them. And against ``fold`` reported for ``--split train``, which is no
    fold's test or validation."""
    path = fold_file(tmp_path / "f.h5")
    ckpt = trained_on(tmp_path, path, test_fold=0)
    ckpt.metrics, ckpt.epoch = {"best_epoch": 3}, 3
    best, _ = evaluate(ckpt, path, "val")
    assert best["fold"] == 1
    assert best["warning"].startswith("2 of the 2 val windows are the validation windows")
    ckpt.epoch = 5
    last, _ = evaluate(ckpt, path, "val")
    assert last["warning"] is None
    train, _ = evaluate(ckpt, path, "train")
    assert train["fold"] is None and train["test_fold"] is None


def test_the_fold_the_nested_scheme_chose_by_itself_is_reported(tmp_path: Path):
    """A run on a file with folds but no split column tests on its last fold without a
    test_fold in its configuration: ``evaluate`` reported ``"fold": None`` for the test
    split (the report and the figure titles then named no fold), though it scored fold 4."""
    from innpar_freia.figures import scope_phrase
    from innpar_freia.report import scored_text, what_was_scored

    path = fold_file(tmp_path / "f.h5")
    ckpt = trained_on(tmp_path, path)  # no test_fold: the nested scheme's last fold, 4
    assert ckpt.run_config.train.test_fold is None
    test, preds = evaluate(ckpt, path, "test")
    assert preds.indices.tolist() == [7, 8] and test["fold"] == 4
    assert test["test_fold"] is None  # what was asked for, which was nothing
    assert scope_phrase(test["split"], test["fold"]) == "test fold 4"
    assert "split **test** (fold 4)" in scored_text(what_was_scored(test))
    val, preds = evaluate(ckpt, path, "val")  # validation fold 4 + 1 mod 5
    assert preds.indices.tolist() == [0, 1] and val["fold"] == 0


def test_advice_names_the_test_fold_the_nested_scheme_chose_by_itself(tmp_path: Path):
    """The same run (test fold 4, chosen by the scheme, not configured): scoring a fold it
    trained on was told "drop --test-fold (the run used the file's split column)", which
    it did not, and its validation scores' warning left out which fold to score instead."""
    path = fold_file(tmp_path / "f.h5")
    ckpt = trained_on(tmp_path, path)
    with pytest.raises(DataError, match=r"give that run's test fold \(4\)"):
        evaluate(ckpt, path, "test", test_fold=1)
    ckpt.metrics, ckpt.epoch = {"best_epoch": 3}, 3
    val, _ = evaluate(ckpt, path, "val")
    assert val["warning"].endswith("optimistic; score the run's test fold (4) for a test")


# --------------------------------------------------------------------------------------
# Windows through a checkpoint (Checkpoint.predict_abp / predict_ppg)
# --------------------------------------------------------------------------------------


def test_predictions_are_the_network_s_output_de_normalised_to_mmhg(tmp_path: Path):
    """Guards against de-normalising the network's ABP by its scale alone (the training
    minimum, 50 mmHg, dropped), against normalising the ABP of the reverse pass by its
    offset alone, against z-scoring the PPG over the whole batch instead of per window, and
    against a batch's outputs put back in another order. Written out: PPG z-scored per window
    into the tiny network, its output x 100 + 50 mmHg; ABP (mmHg - 50) / 100 into the
    reverse pass."""
    cfg = resolve_config("tiny")
    model = build_model(cfg.model, seed=0)
    ckpt = Checkpoint(tmp_path / "t.pt", model, cfg, Normalisation("minmax", 50.0, 100.0), None)
    wave = sine(5.0, fs=125.0)
    ppg = np.stack([3.0 + 7.0 * wave, 100.0 + 0.5 * np.roll(wave, 40)])  # any units, levels
    abp = np.stack([100.0 + 20.0 * wave, 90.0 + 30.0 * np.roll(wave, 40)])
    z = (ppg - ppg.mean(axis=1, keepdims=True)) / ppg.std(axis=1, keepdims=True)
    with torch.no_grad():
        net_abp = model.ppg_to_abp(torch.as_tensor(z, dtype=torch.float32)).double().numpy()
        net_ppg = model.abp_to_ppg(torch.as_tensor((abp - 50.0) / 100.0, dtype=torch.float32))
    np.testing.assert_allclose(ckpt.predict_abp(ppg), 50.0 + 100.0 * net_abp, atol=1e-4)
    np.testing.assert_allclose(ckpt.predict_ppg(abp), net_ppg.double().numpy(), atol=1e-6)


def test_a_window_with_one_sample_the_network_overflowed_is_refused(tmp_path: Path):
    """Guards against refusing only windows whose every sample is NaN or inf: a network
    that overflows in one sample of one window (damaged weights, a diverged run) gave a
    window with a NaN in it, scored as numbers or drawn with a hole."""
    cfg = resolve_config("tiny")
    model = build_model(cfg.model, seed=0)

    def one_nan(x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y[1, 300] = float("nan")
        return y

    model.ppg_to_abp = one_nan  # type: ignore[method-assign]
    ckpt = Checkpoint(tmp_path / "t.pt", model, cfg, Normalisation("minmax", 50.0, 100.0), None)
    with pytest.raises(CheckpointError, match=r"for 1 of 2 windows \(first: window 1\)"):
        ckpt.predict_abp(np.tile(sine(5.0, fs=125.0), (2, 1)))


# --------------------------------------------------------------------------------------
# Calibration of a recording (recording_bp.calibrate_recording)
# --------------------------------------------------------------------------------------


def test_a_cuff_calibration_takes_the_median_beat_of_the_segment():
    """Guards against the segment's predicted SBP/DBP taken as the mean over its beats: one
    beat of an artefact (its peak 60 mmHg higher) among the 19 beats of 20 s at 60 bpm
    moved the mean SBP by 60 / 19 = 3.2 mmHg, and every calibrated value with it. The median
    beat reads the 120/80 of 100 - 20 cos(2 pi t)."""
    fs = 125.0
    pred = 100.0 - 20.0 * np.cos(2 * np.pi * np.arange(round(30 * fs)) / fs)
    beat = slice(round(5.25 * fs), round(5.75 * fs))  # around the peak at 5.5 s
    pred[beat] += 60.0 * np.sin(np.pi * np.linspace(0.0, 1.0, beat.stop - beat.start))
    _, info = calibrate_recording(pred, fs, 0.0, 20.0, cuff=(120.0, 80.0))
    assert info["pred_beats"] == 19
    assert info["pred_sbp"] == pytest.approx(120.0, abs=0.01)  # crests between samples
    assert info["pred_dbp"] == pytest.approx(80.0, abs=0.01)


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("force", "no", TypeError, "ReconstructOptions.force must be True or False, not 'no'"),
        ("overlap", 5, DataError, "ReconstructOptions.overlap is 5, not in the range 0 to 0.9"),
        ("plot", "x.svg", DataError, "plot (--plot) must end in .png or .pdf, not 'x.svg'"),
    ],
)
def test_options_changed_after_construction_are_checked_when_used(
    tmp_path, field, value, error, message
):
    """Bug: the options were checked only by their constructor: ``o.force = "no"`` replaced
    the outputs, ``o.overlap = 5`` failed deep inside, and a str plot failed on
    ``.suffix``."""
    src = npz_recording(tmp_path / "rec.npz", seconds=20.0)
    (tmp_path / "abp.npz").write_bytes(b"old")
    opts = ReconstructOptions()
    setattr(opts, field, value)
    with pytest.raises(error) as err:
        reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "abp.npz", opts)
    assert str(err.value) == message
    assert (tmp_path / "abp.npz").read_bytes() == b"old"
    with pytest.raises(error) as err:
        reconstruct_folder(linear_checkpoint(tmp_path), tmp_path, tmp_path / "out", opts)
    assert str(err.value) == message


def test_a_plot_name_that_is_not_png_or_pdf_is_refused_at_construction(tmp_path):
    """Bug: ``ReconstructOptions(plot="x.svg")`` was taken, and refused only once the
    recording had been read, as "--plot must end in .png or .pdf"; a str plot set after
    construction failed with "'str' object has no attribute 'suffix'"."""
    with pytest.raises(DataError, match=r"^plot \(--plot\) must end in .png or .pdf, not 'x.svg'$"):
        ReconstructOptions(plot="x.svg")
    opts = ReconstructOptions()
    opts.plot = str(tmp_path / "x.png")
    src = npz_recording(tmp_path / "rec.npz", seconds=20.0)
    reconstruct_file(linear_checkpoint(tmp_path), src, tmp_path / "abp.npz", opts)
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"


def test_reconstruct_file_refuses_an_out_that_names_a_folder(tmp_path):
    """Bug: an existing folder as ``out`` had the outputs written beside it (rec.hea,
    rec.dat next to rec/), where the CLI refuses such an --out."""
    src = npz_recording(tmp_path / "rec.npz", seconds=20.0)
    (tmp_path / "rec").mkdir()
    for out in (tmp_path / "rec", f"{tmp_path / 'new'}/"):
        with pytest.raises(DataError, match=r"names a folder; give a file name such as abp\.csv"):
            reconstruct_file(linear_checkpoint(tmp_path), src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec", "rec.npz"]


def test_reconstruct_array_tells_a_checkpoint_s_predict_the_model_rate(tmp_path):
    """Bug: ``reconstruct_array(x, fs, ckpt.predict_abp, model_fs=100.0, ...)`` with a
    125 Hz checkpoint ran silently: predict was called without fs, so no rate was checked,
    and every window reached the network at the wrong rate."""
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    x = sine(30.0)
    wrong = ckpt.fs * 0.8
    with pytest.raises(ValueError) as err:
        reconstruct_array(x, FS, ckpt.predict_abp, wrong, ckpt.window_length)
    # The fix named is this call's model_fs (predict_abp's own refusal said "resample").
    assert str(err.value) == (
        f"model_fs is {wrong:g} Hz, but the checkpoint's network takes windows at "
        f"{ckpt.fs:g} Hz: pass model_fs={ckpt.fs:g} (Checkpoint.fs)"
    )
    r = reconstruct_array(x, FS, ckpt.predict_abp, ckpt.fs, ckpt.window_length)
    assert r.n_windows > 0 and np.isfinite(r.signal).any()
