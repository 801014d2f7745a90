"""``innpar reconstruct`` on real ICU records of ../shared/data/challenge2015 (skipped when
the data is absent): a whole 250 Hz WFDB record in, an ABP record at 250 Hz out, no seams;
records with flat or missing channels handled with gaps and clear messages.

The checkpoint is the tiny model trained on synthetic data (seconds to train): these tests
check the pipeline on real inputs, not the accuracy of a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from innpar_freia.cli import cli
from innpar_freia.data.recordings import read_recording
from innpar_freia.reconstruct import EDGE_PAD, detect_gaps, runs, window_starts

pytestmark = pytest.mark.realdata


def run(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def boundary_mask(valid: np.ndarray, fs: float, model_fs: float, length: int) -> np.ndarray:
    """Samples within 3 of a window boundary, as reconstruct_array places windows."""
    near = np.zeros(valid.size - 1, dtype=bool)
    for a, b in runs(valid):
        m = round((b - a) * model_fs / fs)
        if m < length:
            continue
        pad = round(EDGE_PAD * length) if m > length else 0
        for s in window_starts(m + 2 * pad, length, length // 2):
            for edge in (s - pad, s + length - pad):
                if 0 < edge < m:
                    i = a + round(edge * fs / model_fs)
                    near[max(0, i - 3) : i + 3] = True
    return near


def test_whole_wfdb_record_to_abp_record_without_seams(real_data, tiny_run, tmp_path):
    record = real_data / "wfdb" / "training" / "85"
    out = tmp_path / "85_abp"
    r = run(
        "reconstruct",
        "--checkpoint",
        tiny_run / "checkpoints" / "best.pt",
        record,
        "--out",
        out,
        "--reference-abp",
        "ABP",
        "--ppg-delay",
        9 / 125,
        "--json",
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    src = read_recording(record)
    back = read_recording(out)
    assert back.fs == src.fs == 250.0
    assert back.n_samples == src.n_samples == 330 * 250
    abp = back.signals["ABP"]
    assert summary["reconstructed_fraction"] > 0.99
    assert summary["reference"]["n_windows"] > 50
    # No seams: near window boundaries no step beyond the largest step elsewhere.
    valid, _ = detect_gaps(src.signals["PLETH"], src.fs)
    near = boundary_mask(valid, src.fs, 125.0, 625)
    d = np.abs(np.diff(abp))
    ok = np.isfinite(d)
    assert near.sum() > 100
    assert d[near & ok].max() <= d[~near & ok].max()
    rows = (tmp_path / "85_abp.beats.csv").read_text().splitlines()
    assert len(rows) - 1 == summary["beats"]["n"] > 300  # ~5.5 min of beats


def test_record_with_flat_pleth_is_mostly_gaps(real_data, tiny_run, tmp_path):
    # Record 577 was rejected: PLETH flat in most windows (README, records.csv).
    r = run(
        "reconstruct",
        "--checkpoint",
        tiny_run / "checkpoints" / "best.pt",
        real_data / "wfdb" / "test" / "577",
        "--out",
        tmp_path / "577_abp",
        "--json",
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["reconstructed_fraction"] < 0.3
    assert any("flat" in g["reason"] for g in summary["gaps"])
    abp = read_recording(tmp_path / "577_abp").signals["ABP"]
    assert np.isnan(abp).mean() == pytest.approx(1 - summary["reconstructed_fraction"], abs=1e-3)


def test_record_with_all_nan_abp_cannot_calibrate_from_it(real_data, tiny_run, tmp_path):
    # Record 14: the ABP channel is entirely NaN; reconstruction from PLETH still works, but
    # the reference cannot calibrate, and nothing is written.
    r = run(
        "reconstruct",
        "--checkpoint",
        tiny_run / "checkpoints" / "best.pt",
        real_data / "wfdb" / "training" / "14",
        "--out",
        tmp_path / "14_abp",
        "--reference-abp",
        "ABP",
        "--calibration",
        "reference",
    )
    assert r.exit_code == 1
    assert "the reference ABP has no valid beats anywhere in the recording" in r.output
    assert list(tmp_path.iterdir()) == []


def test_unknown_channel_of_a_real_record(real_data, tiny_run, tmp_path):
    r = run(
        "reconstruct",
        "--checkpoint",
        tiny_run / "checkpoints" / "best.pt",
        real_data / "wfdb" / "training" / "85",
        "--out",
        tmp_path / "x",
        "--ppg-channel",
        "SPO2X",
    )
    assert r.exit_code == 1
    assert "has no channel 'SPO2X'; its channels are: II, V, PLETH, ABP" in r.output
    assert list(tmp_path.iterdir()) == []


def test_the_abp_of_a_real_record_named_as_the_ppg_is_warned_of(real_data, tiny_run, tmp_path):
    """``--ppg-channel ABP`` on record 85 (ABP in mmHg by its header) reconstructed the
    pressure with only a warning of implausible values; it is now named as a pressure."""
    r = run(
        "reconstruct", "--checkpoint", tiny_run / "checkpoints" / "best.pt",
        real_data / "wfdb" / "training" / "85", "--out", tmp_path / "x3", "--ppg-channel", "ABP",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (
        "warning: PPG channel 'ABP' is in 'mmHg' (a pressure unit, as the file declares)"
        in r.stderr
    )
    assert "name the PPG with --ppg-channel PLETH (its channels: II, V, PLETH, ABP)" in r.stderr
    summary = json.loads((tmp_path / "x3.summary.json").read_text())
    assert "PPG channel 'ABP' is in 'mmHg'" in summary["warning"]


def test_reference_segment_calibration_on_a_real_record(real_data, tiny_run, tmp_path):
    record = real_data / "wfdb" / "training" / "232"
    r = run(
        "reconstruct",
        "--checkpoint",
        tiny_run / "checkpoints" / "best.pt",
        record,
        "--out",
        tmp_path / "232.csv",
        "--reference-abp",
        "ABP",
        "--calibration",
        "reference",
        "--calibration-at",
        "30",
        "--ppg-delay",
        35 / 125,
        "--json",
    )
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["calibration"]["segment_s"] == [30.0, 90.0]
    assert s["reference"]["calibration_segment_excluded"] is True
    # Calibrated to this person, the level is right even from a model trained on synthetic
    # data: the mean error of MAP over the rest of the record is small.
    assert abs(s["reference"]["map"]["me"]) < 10.0
    assert Path(tmp_path / "232.csv").read_text().startswith("time_s,ABP\n")


def test_every_beat_of_the_real_records_is_a_whole_beat(real_data: Path):
    """The beats table's rows are beats: a dicrotic notch taken for a foot gave rows with
    MAP below DBP (78 of the 11,303 beats of these records), and heart rates twice the
    record's. Anchored on the systolic peaks, record 577 (a fast rhythm) comes out at its
    140 bpm; finding feet as troughs missed a quarter of its beats (median 103 bpm)."""
    from innpar_freia.recording_bp import detect_beats

    n, seen_577 = 0, False
    for header in sorted((real_data / "wfdb").rglob("*.hea")):
        try:
            rec = read_recording(header.with_suffix(""))
        except Exception:  # the records the importer rejects as unreadable
            continue
        name = rec.find("abp", required=False)
        if name is None:
            continue
        beats = detect_beats(rec.signals[name], rec.fs)
        assert np.all((beats.dbp <= beats.map) & (beats.map <= beats.sbp)), header.name
        # A misplaced foot made beats of 0.03-0.2 s (up to 1,875 bpm) in 12 records.
        assert np.all((beats.hr_bpm >= 30.0) & (beats.hr_bpm <= 300.0)), header.name
        if header.stem == "577":
            assert np.median(beats.hr_bpm) == pytest.approx(140.0, abs=3.0)
            seen_577 = True
        n += len(beats.map)
    assert n > 10_000 and seen_577


def test_a_folder_of_real_records_each_calibrated_with_its_own_reference(
    real_data, tiny_run, tmp_path
):
    """The 7 test records of the WFDB folder (its records.csv left out by --include): the two
    whose ABP is flat throughout (623, 718) cannot be calibrated from it and are listed as
    failed, the other five are written; 577's reference is valid only in its calibration
    segment, so it has no comparison and the table says why."""
    out = tmp_path / "abp"
    r = run(
        "reconstruct", "--checkpoint", tiny_run / "checkpoints" / "best.pt",
        real_data / "wfdb", "--out", out, "--include", "test/*",
        "--reference-abp", "ABP", "--calibration", "reference",
    )  # fmt: skip
    assert r.exit_code == 1
    assert "2 of 7 recordings could not be reconstructed" in r.output
    index = json.loads((out / "reconstructions.json").read_text())
    rows = {row["record"]: row for row in index["recordings"]}
    assert sorted(rows) == [f"test/{n}" for n in (554, 577, 580, 586, 623, 679, 718)]
    for name, row in rows.items():
        if name in ("test/623", "test/718"):
            assert row["status"] == "failed" and "no valid beats" in row["reason"]
            assert not list((out / "test").glob(f"{name[5:]}.*"))
            continue
        assert row["status"] == "reconstructed" and row["calibration"] == "reference"
        summary = json.loads(Path(row["summary"]).read_text())
        assert read_recording(out / f"{name}.hea").fs == summary["fs"] == 250.0
        assert row["reconstructed_fraction"] == summary["reconstructed_fraction"]
        assert (row["ref_waveform_mae"] is None) == (name == "test/577")
    assert "calibration segment" in rows["test/577"]["ref_note"]
