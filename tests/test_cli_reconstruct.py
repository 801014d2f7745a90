"""``innpar reconstruct`` as a person uses it: every input format, calibration, gaps, and bad
input that ends with one clear message, exit code 1 and no file written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from innpar_freia.cli import cli
from innpar_freia.data.recordings import read_recording
from innpar_freia.data.synthetic import synthesize_recording
from innpar_freia.reconstruct import GAP_MARGIN

FS = 250.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One synthetic subject, 70 s at 250 Hz, with 4 s of lost PPG, in every format."""
    rec = synthesize_recording(0, 70 / 60, FS, seed=5)
    ppg, abp = rec.ppg.copy(), rec.abp.copy()
    ppg[round(30 * FS) : round(34 * FS)] = np.nan
    d = tmp_path_factory.mktemp("recording")
    import wfdb

    wfdb.wrsamp(
        "rec",
        fs=FS,
        units=["NU", "mmHg"],
        sig_name=["PLETH", "ABP"],
        p_signal=np.column_stack([ppg, abp]),
        fmt=["16", "16"],
        write_dir=str(d),
    )
    t = np.arange(ppg.size) / FS
    lines = ["time,PPG,ABP"] + [
        f"{a:.4f},{'' if np.isnan(b) else f'{b:.5f}'},{c:.3f}"
        for a, b, c in zip(t, ppg, abp, strict=True)
    ]
    (d / "rec.csv").write_text("\n".join(lines) + "\n")
    np.save(d / "ppg.npy", ppg)
    np.savez(d / "rec.npz", pleth=ppg, abp=abp, fs=FS)
    return {"dir": d, "ppg": ppg, "abp": abp, "delay": rec.delay_s}


@pytest.fixture(scope="module")
def ckpt(tiny_run: Path) -> Path:
    return tiny_run / "checkpoints" / "best.pt"


def run(*args: str) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def files_in(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_wfdb_in_wfdb_out_at_the_input_rate(recording, ckpt, tmp_path):
    out = tmp_path / "rec_abp"
    r = run(
        "reconstruct",
        "--checkpoint",
        ckpt,
        recording["dir"] / "rec",
        "--out",
        out,
        "--reference-abp",
        "ABP",
        "--plot",
        tmp_path / "rec.png",
        "--ppg-delay",
        recording["delay"],
        "--json",
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    back = read_recording(tmp_path / "rec_abp.hea")
    assert back.fs == FS and back.n_samples == recording["ppg"].size
    assert back.channels == ["ABP"] and back.units["ABP"] == "mmHg"
    abp = back.signals["ABP"]
    # The 30-34 s PPG gap is not reconstructed across; the rest is.
    assert np.isnan(abp[round(30.5 * FS) : round(33.5 * FS)]).all()
    assert np.isfinite(abp[round(1 * FS) : round(29 * FS)]).all()
    assert summary["reconstructed_fraction"] == pytest.approx(1 - 4.3 / 70, abs=0.01)
    assert summary["gaps"][0]["reason"] == "missing (NaN or inf)"
    assert summary["calibration"] is None and "calibration-free" in summary["note"]
    assert summary["reference"]["n_windows"] > 5
    beats = (tmp_path / "rec_abp.beats.csv").read_text().splitlines()
    assert beats[0] == "beat,onset_s,peak_s,sbp_mmHg,dbp_mmHg,map_mmHg,hr_bpm"
    assert len(beats) - 1 == summary["beats"]["n"] > 40
    assert json.loads((tmp_path / "rec_abp.summary.json").read_text())["windows"] > 10
    assert (tmp_path / "rec.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in files_in(tmp_path) if n.startswith(".")]


def test_csv_with_a_cuff_calibration(recording, ckpt, tmp_path):
    out = tmp_path / "abp.csv"
    r = run(
        "reconstruct",
        "--checkpoint",
        ckpt,
        recording["dir"] / "rec.csv",
        "--out",
        out,
        "--calibration",
        "120/80",
        "--calibration-seconds",
        "20",
        "--json",
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    cal = summary["calibration"]
    assert cal["source"] == "cuff" and cal["segment_s"] == [0.0, 20.0]
    assert summary["note"] is None
    header = out.read_text().splitlines()[0]
    assert header == "time_s,ABP"
    back = read_recording(out)
    assert back.fs == pytest.approx(FS) and back.n_samples == recording["ppg"].size
    rows = np.loadtxt(tmp_path / "abp.beats.csv", delimiter=",", skiprows=1)
    first = rows[rows[:, 2] < 20.0]
    # The calibration segment's beats now read the cuff's 120/80 (medians).
    assert np.median(first[:, 3]) == pytest.approx(120.0, abs=0.5)
    assert np.median(first[:, 4]) == pytest.approx(80.0, abs=0.5)


def test_npy_needs_fs_and_npz_carries_it(recording, ckpt, tmp_path):
    r = run(
        "reconstruct",
        "--checkpoint",
        ckpt,
        recording["dir"] / "ppg.npy",
        "--out",
        tmp_path / "abp.npy",
    )
    assert r.exit_code == 1
    assert "sampling rate is unknown; give it with fs (--fs)\n" in r.output
    assert files_in(tmp_path) == []
    r = run(
        "reconstruct",
        "--checkpoint",
        ckpt,
        recording["dir"] / "ppg.npy",
        "--fs",
        FS,
        "--out",
        tmp_path / "abp.npy",
    )
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "abp.npy").shape == recording["ppg"].shape
    r = run(
        "reconstruct",
        "--checkpoint",
        ckpt,
        recording["dir"] / "rec.npz",
        "--out",
        tmp_path / "abp2",
    )
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "abp2.npz") as z:
        assert float(z["fs"]) == FS and z["ABP"].shape == recording["ppg"].shape


def test_abp_to_ppg_direction(recording, ckpt, tmp_path):
    r = run(
        "reconstruct",
        "--checkpoint",
        ckpt,
        recording["dir"] / "rec",
        "--out",
        tmp_path / "ppg",
        "--direction",
        "abp2ppg",
        "--json",
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["channel"] == "ABP" and summary["units"] == "z-scored PPG"
    back = read_recording(tmp_path / "ppg")
    assert back.channels == ["PPG"] and back.n_samples == recording["abp"].size
    assert not (tmp_path / "ppg.beats.csv").exists()
    assert summary["reconstructed_fraction"] > 0.95  # ABP has no gap


def test_a_replaced_reconstruction_leaves_no_beats_table_of_the_old_one(recording, ckpt, tmp_path):
    """--force from ABP to PPG over an earlier ABP reconstruction left its beats table
    beside the new summary; a beats table that is the input is never removed."""
    csv = recording["dir"] / "rec.csv"
    out = tmp_path / "st.csv"
    assert run("reconstruct", "--checkpoint", ckpt, csv, "--out", out).exit_code == 0
    assert (tmp_path / "st.beats.csv").is_file()
    r = run("reconstruct", "--checkpoint", ckpt, csv, "--out", out, "--force",
            "--direction", "abp2ppg", "--abp-channel", "ABP")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["st.csv", "st.summary.json"]
    own = tmp_path / "in" / "x.beats.csv"  # an input that happens to bear the name
    own.parent.mkdir()
    own.write_bytes(csv.read_bytes())
    (own.parent / "x.summary.json").write_text("{}")
    r = run("reconstruct", "--checkpoint", ckpt, own, "--out", own.parent / "x.csv",
            "--force", "--direction", "abp2ppg", "--abp-channel", "ABP")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert own.read_bytes() == csv.read_bytes()


def test_window_file_in_predictions_file_out(synth_file, ckpt, tmp_path, captured):
    from innpar_freia.checkpoint import load_checkpoint
    from innpar_freia.predictions import read_predictions

    out = tmp_path / "preds.h5"
    r = run(
        "reconstruct", "--checkpoint", ckpt, synth_file, "--out", out, "--plot", tmp_path / "w.pdf"
    )
    assert r.exit_code == 0, r.output
    p = read_predictions(out)
    assert p.prediction.shape == p.reference.shape and p.units == "mmHg"
    assert (tmp_path / "preds.windows.csv").read_text().startswith("window_id,subject,sbp_mmHg")
    assert (tmp_path / "w.pdf").read_bytes()[:5] == b"%PDF-"
    # Its figure had no title: which model, and which of the file's windows it draws.
    assert captured[-1]._suptitle.get_text() == (
        f"{synth_file.name}: ABP from PPG, calibration-free, first 4 windows in file order  "
        f"[best.pt epoch {load_checkpoint(ckpt).epoch}, tiny]"
    )
    # The checkpoint was trained on this file: its training windows are reconstructed too,
    # with a warning ('innpar eval' refuses to score them as a test).
    from innpar_freia.config import resolve_config
    from innpar_freia.data.dataset import plan_splits
    from innpar_freia.data.store import read_info

    tcfg = resolve_config("tiny").train
    n_train = len(plan_splits(read_info(synth_file), tcfg.test_fold, tcfg.val_fold).train)
    summary = json.loads((tmp_path / "preds.summary.json").read_text())
    assert summary["training_windows"] == n_train > 0
    assert (
        f"warning: {n_train} of the {p.prediction.shape[0]} windows were in the training"
        in r.output
    )


def test_existing_output_needs_force(recording, ckpt, tmp_path):
    args = [
        "reconstruct",
        "--checkpoint",
        ckpt,
        recording["dir"] / "rec.npz",
        "--out",
        tmp_path / "a.npz",
    ]
    assert run(*args).exit_code == 0
    r = run(*args)
    assert r.exit_code == 1 and "pass force (--force) to replace them" in r.output
    assert run(*args, "--force").exit_code == 0


@pytest.mark.parametrize("suffix", ["", ".csv"])
def test_an_out_naming_a_device_is_refused(recording, ckpt, tmp_path, suffix):
    """``--out /dev/null`` wrote /dev/null.csv, /dev/null.beats.csv and .summary.json into
    /dev (as root). A FIFO stands in for the device."""
    import os

    special = tmp_path / "special"
    os.mkfifo(special)
    out = tmp_path / f"special{suffix}"
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec.npz", "--out", out)
    assert r.exit_code == 1 and f"{special} is a device or other special file" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["special"]


def test_rows_missing_from_a_csv_are_a_gap_not_stitched(recording, ckpt, tmp_path):
    """10 s of rows deleted from a CSV: the output keeps the input's time axis, and the
    missing stretch is a gap (NaN), not reconstructed across."""
    lines = (recording["dir"] / "rec.csv").read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.csv"
    gap = (round(50 * FS), round(60 * FS))
    cut.write_text("".join(lines[: gap[0] + 1] + lines[gap[1] + 1 :]))
    out = tmp_path / "abp.csv"
    r = run("reconstruct", "--checkpoint", ckpt, cut, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["duration_s"] == pytest.approx(70.0)
    spans = [(g["start_s"], g["end_s"]) for g in summary["gaps"]]
    assert any(a <= 50.0 and b >= 60.0 for a, b in spans), spans
    abp = read_recording(out).signals["ABP"]
    assert abp.size == recording["ppg"].size
    assert np.isnan(abp[gap[0] : gap[1]]).all()
    assert np.isfinite(abp[round(GAP_MARGIN * FS) : round(25 * FS)]).all()  # after the start


def test_a_calibrated_run_says_how_it_was_calibrated(recording, ckpt, tmp_path, captured):
    """A calibrated run never said in its printed output that it was calibrated, while a
    calibration-free one prints a note: one line says how (a cuff reading or the reference).
    It, and the figure's title, say what was matched: calibrated to a reference, the
    reconstructed SBP/DBP medians in the segment sat mmHg from the reference's, read as a
    failed calibration, as its mean level (and pulse pressure) is what is matched."""
    csv_in = recording["dir"] / "rec.csv"
    r = run("reconstruct", "--checkpoint", ckpt, csv_in, "--out", tmp_path / "a.csv",
            "--calibration", "118/76", "--calibration-seconds", "20")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "\n  calibrated (offset-scale) to cuff 118/76 mmHg at 0-20 s\n" in r.stdout
    assert "calibration-free" not in r.stdout
    r = run("reconstruct", "--checkpoint", ckpt, csv_in, "--out", tmp_path / "b.csv",
            "--reference-abp", "ABP", "--calibration", "reference", "--calibration-seconds",
            "20", "--calibration-mode", "offset")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "\n  calibrated (offset) to the reference ABP's mean level at 0-20 s\n" in r.stdout
    r = run("reconstruct", "--checkpoint", ckpt, csv_in, "--out", tmp_path / "d.csv",
            "--reference-abp", "ABP", "--calibration", "reference", "--calibration-seconds",
            "20", "--plot", tmp_path / "d.png")  # fmt: skip
    assert r.exit_code == 0, r.output
    said = (
        "calibrated (offset-scale) to the reference ABP's mean level and pulse pressure at 0-20 s"
    )
    assert f"\n  {said}\n" in r.stdout and said in captured[-1]._suptitle.get_text()
    # The offset alone moves the cuff's mid-point, not its SBP and DBP, to the beats'.
    r = run("reconstruct", "--checkpoint", ckpt, csv_in, "--out", tmp_path / "e.csv",
            "--calibration", "118/76", "--calibration-seconds", "20",
            "--calibration-mode", "offset")  # fmt: skip
    assert "\n  calibrated (offset) to the mid-point of cuff 118/76 mmHg at 0-20 s\n" in r.stdout
    r = run("reconstruct", "--checkpoint", ckpt, csv_in, "--out", tmp_path / "c.csv")
    assert "calibrated (" not in r.stdout and "note: calibration-free" in r.stdout


def test_a_calibration_that_applied_the_offset_alone_is_said(recording, ckpt, tmp_path):
    """offset-scale falls back on the offset alone when a pulse pressure of the calibration
    segment is below 1 mmHg (a cuff reading of 120/119.5): the run said it had calibrated
    with offset-scale, to the mid-point of the cuff reading, and its summary held a scale
    of 1 as if measured. It now warns, says so in its line and its summary; a reading with
    a pulse pressure does not."""
    csv_in = recording["dir"] / "rec.csv"
    args = ("reconstruct", "--checkpoint", ckpt, csv_in, "--calibration-seconds", "20")
    r = run(*args, "--out", tmp_path / "a.csv", "--calibration", "120/119.5")
    assert r.exit_code == 0, r.output
    said = (
        "offset-scale calibration applied the offset alone: in the calibration segment "
        "(0-20 s), the cuff reading's pulse pressure (0.50 mmHg) is below 1 mmHg, too small "
        "to scale by"
    )
    assert f"warning: {said}\n" in r.stderr
    assert (
        "\n  calibrated (offset-scale, the offset alone) to the mid-point of cuff 120/119.5 "
        "mmHg at 0-20 s\n"
    ) in r.stdout
    summary = json.loads((tmp_path / "a.summary.json").read_text())
    assert summary["calibration"]["offset_only"] is True and said in summary["warnings"]
    r = run(*args, "--out", tmp_path / "b.csv", "--calibration", "118/76", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["calibration"]["offset_only"] is False
    assert "offset alone" not in r.output


def test_text_in_a_csv_recording_is_warned_of(recording, ckpt, tmp_path):
    """A row ``abc,def`` in the middle of a CSV was reported only as a gap of "missing (NaN or
    inf)", exit 0: text in a column of numbers is now a warning naming the first cell; an
    empty cell or a mark of a missing value (n/a) is not."""
    lines = (recording["dir"] / "rec.csv").read_text().splitlines()
    lines[1000] = f"{999 / FS:.4f},n/a,"
    lines[5000] = f"{4999 / FS:.4f},abc,def"
    path = tmp_path / "text.csv"
    path.write_text("\n".join(lines) + "\n")
    r = run("reconstruct", "--checkpoint", ckpt, path, "--out", tmp_path / "o.csv")
    assert r.exit_code == 0, r.output
    said = (
        f"{path}: 2 cells of text in columns of numbers were read as missing samples (a gap); "
        "the first: row 5001, column 'PPG': 'abc'"
    )
    assert f"warning: {said}" in r.stderr
    assert said in json.loads((tmp_path / "o.summary.json").read_text())["warning"]
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec.csv", "--out",
            tmp_path / "clean.csv")  # fmt: skip
    assert r.exit_code == 0 and "text" not in r.stderr, r.output


# ----------------------------------------------------------------------------- bad input


def write_csv(path: Path, seconds: float, values=None) -> Path:
    n = round(seconds * 100)
    x = np.sin(np.arange(n) / 10.0) if values is None else values
    path.write_text("t,PPG\n" + "".join(f"{i / 100:.2f},{v}\n" for i, v in enumerate(x)))
    return path


def test_a_recording_just_over_one_window_says_how_long_a_recording_must_be(
    recording, ckpt, tmp_path
):
    """5.04 s and 5.2 s at 250 Hz passed the check against the 5 s window, but the first
    0.25 s are left out: nothing was reconstructed, and the message blamed the channel
    ("it was picked by its name: if one of ABP is the PPG, name it"). The length check
    counts the margin and says the length a recording needs: 1311 samples (62 of the
    margin, then 1249 that resample to 625 at 125 Hz), which is reconstructed."""
    import wfdb

    for n in (1260, 1300, 1310, 1311):
        wfdb.wrsamp(
            f"r{n}",
            fs=FS,
            units=["NU", "mmHg"],
            sig_name=["PLETH", "ABP"],
            p_signal=np.column_stack([recording["ppg"][:n], recording["abp"][:n]]),
            fmt=["16", "16"],
            write_dir=str(tmp_path),
        )
        r = run(
            "reconstruct", "--checkpoint", ckpt, tmp_path / f"r{n}", "--out", tmp_path / "o.csv"
        )
        if n < 1311:
            assert r.exit_code == 1, r.output
            assert (
                f"is {n / FS:.2f} s long ({n} samples at 250 Hz), shorter than one model window "
                "(5 s) after its first 0.25 s, which are left out (a monitor's start-up "
                "transient): a recording must be at least 5.25 s long (1311 samples)"
            ) in r.output
            assert "picked by its name" not in r.output and not (tmp_path / "o.csv").exists()
        else:
            assert r.exit_code == 0, r.output
            summary = json.loads((tmp_path / "o.summary.json").read_text())
            assert summary["reconstructed_samples"] > 0


@pytest.fixture
def bad_ckpts(ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    (d / "corrupt.pt").write_bytes(os.urandom(2000))
    torch.save({"state_dict": {"w": torch.zeros(3)}}, d / "foreign.pt")
    payload = torch.load(ckpt, weights_only=True)
    payload["run_config"]["model"]["features"] = 8  # another model: weights do not fit
    torch.save(payload, d / "other.pt")
    paths = {"corrupt": d / "corrupt.pt", "foreign": d / "foreign.pt", "other": d / "other.pt"}
    # Our format marker, damaged contents: what a crash, an edit or another release leaves.
    damage = {
        "bad_norm": lambda p: p.update(normalisation={}),
        "bad_baselines": lambda p: p.update(baselines={"foo": 1.0}),
        "bad_state": lambda p: p.update(model_state="weights"),
        "bad_version": lambda p: p.update(format_version="abc"),
        "nan_weights": lambda p: [w.fill_(float("nan")) for w in p["model_state"].values()],
    }
    for name, how in damage.items():
        payload = torch.load(ckpt, weights_only=True)
        how(payload)
        torch.save(payload, d / f"{name}.pt")
        paths[name] = d / f"{name}.pt"
    return paths


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("short", "shorter than one model window (5 s)"),
        ("absurd_fs", "sampling rate 1e+09 Hz is outside"),
        ("low_fs", "too low to resolve heart beats"),
        ("channel", "has no channel 'FINGER'; its channels are: PPG"),
        ("all_nan", "channel 'PPG' holds no valid samples (all NaN)"),
        ("all_flat", "nothing could be reconstructed from channel 'PPG'"),
        ("no_ppg", "has no PPG (e.g. PLETH, PPG) channel; its channels are: ECG"),
        ("missing", "input not found: "),
        ("corrupt", "is not a readable innpar-freia checkpoint"),
        ("foreign", "is not an innpar-freia checkpoint"),
        ("other", "weights do not fit its own configuration"),
        ("cuff", "calibration must be a cuff reading SBP/DBP in mmHg such as 120/80"),
        ("cal_late", "after the recording's end"),
        ("h5_out", "HDF5 output is for a window-file input"),
        ("fs_contradiction", "sampling rate 250 Hz contradicts the time column 't'"),
        ("npz_fs_contradiction", "sampling rate 100 Hz contradicts the file's 'fs' of 250 Hz"),
        ("bad_norm", "its normalisation, baselines or run record cannot be read"),
        ("bad_baselines", "its normalisation, baselines or run record cannot be read"),
        ("bad_state", "is damaged: its weights are a str"),
        ("bad_version", "is damaged: its format version is 'abc'"),
        ("nan_weights", "is damaged: some of its weights are NaN or infinite"),
        ("semicolons", "its columns are separated by semicolons"),
        # Was "seems to start with 1 line(s) that are not its table": remove the header.
        (
            "semicolons_and_decimal_commas",
            "separated by semicolons and its numbers have decimal commas",
        ),
        ("out_under_a_file", "ok.csv is a file, not a folder"),
        ("random_npy", "not a NumPy file of numbers"),
        ("reference_is_input", "names channel 'PPG', the PPG the output is reconstructed from"),
        ("beyond_float32", "nothing could be reconstructed from channel 'PPG'"),
        ("folder", "for a folder INPUT, --out names a folder"),
        ("reference_of_a_ppg", "with direction (--direction) abp2ppg the output is PPG: drop it"),
        # Was written as record abp (beside abp.v2.summary.json); a space failed at the end.
        ("wfdb_dotted_name", "may hold only ASCII letters, digits, '_' and '-', not 'abp.v2'"),
        (
            "wfdb_space",
            "record name may hold only ASCII letters, digits, '_' and '-', not 'my abp'",
        ),
    ],
)
def test_bad_input_one_message_exit_1_nothing_written(case, message, ckpt, bad_ckpts, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    out_dir = tmp_path / "out"
    good = write_csv(src / "ok.csv", 12.0)
    args = {"input": good, "ckpt": ckpt, "out": out_dir / "abp.csv", "extra": []}
    if case == "short":
        args["input"] = write_csv(src / "short.csv", 3.0)
    elif case == "absurd_fs":  # a rate stated by the file (--fs itself is bounded by click)
        np.savez(src / "x.npz", PPG=np.sin(np.arange(2000) / 10.0), fs=1e9)
        args.update(input=src / "x.npz", out=out_dir / "abp.npz")
    elif case == "low_fs":
        np.save(src / "x.npy", np.sin(np.arange(2000) / 10.0))
        args.update(input=src / "x.npy", extra=["--fs", "2"], out=out_dir / "abp.npy")
    elif case == "channel":
        args["extra"] = ["--ppg-channel", "FINGER"]
    elif case == "all_nan":
        args["input"] = write_csv(src / "nan.csv", 12.0, ["nan"] * 1200)
    elif case == "all_flat":
        args["input"] = write_csv(src / "flat.csv", 12.0, [3.0] * 1200)
    elif case == "no_ppg":
        (src / "ecg.csv").write_text(good.read_text().replace("t,PPG", "t,ECG"))
        args["input"] = src / "ecg.csv"
    elif case == "missing":
        args["input"] = src / "nothing"
    elif case in bad_ckpts:
        args["ckpt"] = bad_ckpts[case]
    elif case == "semicolons":
        (src / "semi.csv").write_text(good.read_text().replace(",", ";"))
        args["input"] = src / "semi.csv"
    elif case == "semicolons_and_decimal_commas":
        (src / "eu.csv").write_text(good.read_text().replace(",", ";").replace(".", ","))
        args["input"] = src / "eu.csv"
    elif case == "out_under_a_file":
        args["out"] = good / "abp.csv"
    elif case == "random_npy":
        (src / "x.npy").write_bytes(os.urandom(3000))
        args.update(input=src / "x.npy", extra=["--fs", "100"], out=out_dir / "abp.npy")
    elif case == "reference_is_input":  # was compared with itself, or "flat, missing"
        args["extra"] = ["--reference-abp", "PPG"]
    elif case == "beyond_float32":  # was a ValueError traceback from the model's input check
        np.savez(src / "x.npz", PPG=1e40 * np.sin(np.arange(2000) / 10.0), fs=100.0)
        args.update(input=src / "x.npz", out=out_dir / "abp.npz")
    elif case == "folder":  # was "cannot tell the format of ...in: expected a WFDB record"
        args["input"] = src
    elif case == "wfdb_dotted_name":
        args["out"] = out_dir / "abp.v2.hea"
    elif case == "wfdb_space":
        args["out"] = out_dir / "my abp.hea"
    elif case == "reference_of_a_ppg":  # was read, drawn over the PPG, compared with nothing
        (src / "two.csv").write_text(good.read_text().replace("t,PPG", "t,ABP"))
        args.update(input=src / "two.csv", extra=["--direction", "abp2ppg", "--reference-abp",
                                                  "ART", "--abp-channel", "ABP"])  # fmt: skip
    elif case == "cuff":
        args["extra"] = ["--calibration", "high"]
    elif case == "cal_late":
        args["extra"] = ["--calibration", "120/80", "--calibration-at", "100"]
    elif case == "h5_out":
        args["out"] = out_dir / "abp.h5"
    elif case == "fs_contradiction":
        args["extra"] = ["--fs", "250"]  # the time column steps at 100 Hz
    elif case == "npz_fs_contradiction":
        x = np.sin(np.arange(5000) / 10.0)
        np.savez(src / "x.npz", PPG=x, fs=250.0)
        args.update(input=src / "x.npz", extra=["--fs", "100"], out=out_dir / "abp.npz")
    r = run(
        "reconstruct",
        "--checkpoint",
        args["ckpt"],
        args["input"],
        "--out",
        args["out"],
        "--plot",
        out_dir / "fig.png",
        *args["extra"],
    )
    assert r.exit_code == 1, r.output
    assert message in r.output
    assert r.output.startswith("Error: ") and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert files_in(out_dir) == []


def test_option_bounds_are_checked_by_click(ckpt, tmp_path):
    csv = write_csv(tmp_path / "ok.csv", 12.0)
    for fs in ("0", "0.01", "200000"):  # the help states the range that is accepted
        r = run("reconstruct", "--checkpoint", ckpt, csv, "--out", tmp_path / "o.csv", "--fs", fs)
        assert r.exit_code == 2 and "Invalid value for '--fs'" in r.output
        assert "1<=x<=100000" in r.output
    r = run(
        "reconstruct",
        "--checkpoint",
        ckpt,
        csv,
        "--out",
        tmp_path / "o.csv",
        "--abp-channel",
        "ABP",
    )
    assert r.exit_code == 2 and "--abp-channel names the input of --direction abp2ppg" in r.output


def test_failure_while_writing_leaves_nothing(recording, ckpt, tmp_path, monkeypatch):
    from innpar_freia import plots

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "plot_recording", broken)
    out_dir = tmp_path / "out"
    r = run(
        "reconstruct",
        "--checkpoint",
        ckpt,
        recording["dir"] / "rec",
        "--out",
        out_dir / "rec_abp",
        "--plot",
        out_dir / "rec.png",
    )
    assert r.exit_code == 1 and "No space left on device" in r.output
    assert not out_dir.exists()  # not even the directory it made, nor hidden staged files


def test_window_file_at_another_rate_is_reconstructed_window_by_window(ckpt, tmp_path):
    from innpar_freia.data.store import WindowWriter
    from innpar_freia.predictions import read_predictions

    # 10 s windows at 250 Hz: each is resampled to 125 Hz, cut into overlapping 5 s model
    # windows, stitched and resampled back, like a short recording.
    fs, n = 250.0, 2500
    rec = synthesize_recording(2, 1.0, fs, seed=9)
    ppg = np.stack([rec.ppg[i * n : (i + 1) * n] for i in range(5)])
    abp = np.stack([rec.abp[i * n : (i + 1) * n] for i in range(5)])
    path = tmp_path / "w250.h5"
    with WindowWriter(path, fs=fs, window_length=n, source_format="test") as w:
        w.append(ppg, abp, subject="s2", window_id=[f"w{i}" for i in range(5)])
    r = run("reconstruct", "--checkpoint", ckpt, path, "--out", tmp_path / "p.h5", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["model_windows"] == 5 * 4  # 2500 -> 1250 samples + mirror pads: 4 windows
    p = read_predictions(tmp_path / "p.h5")
    assert p.fs == fs and p.prediction.shape == (5, n)
    assert np.isfinite(p.prediction).all()
    rows = (tmp_path / "p.windows.csv").read_text().splitlines()
    assert len(rows) == 6 and rows[1].startswith("w0,s2,")


def test_window_file_with_short_windows_is_refused(synth_file, ckpt, tmp_path):
    from innpar_freia.data.store import WindowWriter

    path = tmp_path / "short.h5"
    with WindowWriter(path, fs=125.0, window_length=300, source_format="test") as w:
        w.append(
            np.ones((2, 300)) + np.arange(300),
            np.full((2, 300), 90.0) + np.arange(300),
            subject="a",
            window_id=["x", "y"],
        )
    r = run("reconstruct", "--checkpoint", ckpt, path, "--out", tmp_path / "p.h5")
    assert r.exit_code == 1 and "has 2.4 s windows, shorter than one model window (5 s)" in r.output
    r = run(
        "reconstruct",
        "--checkpoint",
        ckpt,
        synth_file,
        "--out",
        tmp_path / "p.h5",
        "--calibration",
        "120/80",
    )
    assert r.exit_code == 1 and "innpar eval --calibration" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.h5"]


def test_window_file_input_refuses_recording_options_and_takes_a_bare_name(
    synth_file, ckpt, tmp_path
):
    base = ("reconstruct", "--checkpoint", ckpt, synth_file)
    delay = run(*base, "--out", tmp_path / "p.h5", "--ppg-delay", "0.5")
    assert delay.exit_code == 1 and "delay_s (--ppg-delay) is for recordings" in delay.output
    fs = run(*base, "--out", tmp_path / "p.h5", "--fs", "250")
    assert fs.exit_code == 1 and "125 Hz, which fs (--fs) 250 contradicts" in fs.output
    ref = run(*base, "--out", tmp_path / "p.h5", "--reference-abp", "ABP")  # not "--*-channel"
    assert (
        ref.exit_code == 1 and "reference): drop reference_abp (--reference-abp) ABP" in ref.output
    )
    assert files_in(tmp_path) == []
    bare = run(*base, "--out", tmp_path / "p", "--fs", "125")  # the help: INPUT's format
    assert bare.exit_code == 0, bare.output
    assert sorted(files_in(tmp_path)) == ["p.h5", "p.summary.json", "p.windows.csv"]


def test_a_reference_that_allows_no_comparison_is_said(recording, ckpt, tmp_path):
    d = recording["dir"]
    n = recording["ppg"].size
    flat = d.parent / "flat_ref.npz"
    np.savez(flat, pleth=recording["ppg"], abp=np.full(n, 90.0), fs=FS)
    r = run(
        "reconstruct", "--checkpoint", ckpt, flat, "--out", tmp_path / "a.npz",
        "--reference-abp", "abp",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "no comparison with reference abp: no 5 s window where both" in r.output
    # Calibrating with the reference over the whole recording leaves nothing to compare.
    r = run(
        "reconstruct", "--checkpoint", ckpt, d / "rec.npz", "--out", tmp_path / "b.npz",
        "--reference-abp", "abp", "--calibration", "reference", "--calibration-seconds", "70",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "every 5 s window with a valid reference overlaps the calibration segment" in r.output


def test_an_abp_in_kpa_is_converted_to_mmhg_as_the_importers_do(recording, ckpt, tmp_path):
    """A WFDB ABP channel in kPa (12-16 "mmHg") had "no valid beats anywhere" as a reference,
    and was normalised as mmHg as the input of abp2ppg; the importers convert it."""
    import wfdb

    wfdb.wrsamp("kpa", fs=FS, units=["NU", "kPa"], sig_name=["PLETH", "ABP"],
                p_signal=np.column_stack([recording["ppg"], recording["abp"] / 7.500617]),
                fmt=["16", "16"], write_dir=str(tmp_path))  # fmt: skip
    r = run("reconstruct", "--checkpoint", ckpt, tmp_path / "kpa", "--out", tmp_path / "a.csv",
            "--reference-abp", "ABP", "--calibration", "reference", "--calibration-seconds", "10",
            "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "reference ABP channel 'ABP' was in 'kPa': converted to mmHg" in r.stderr
    summary = json.loads(r.stdout)
    assert summary["calibration"]["ref_sbp"] > 80 and summary["reference"]["n_windows"] > 5
    for name, rec in (("kpa", tmp_path / "kpa"), ("mmhg", recording["dir"] / "rec")):
        r = run("reconstruct", "--checkpoint", ckpt, rec, "--out", tmp_path / f"{name}.npy",
                "--direction", "abp2ppg")  # fmt: skip
        assert r.exit_code == 0, r.output
    assert "was in" not in r.stderr  # the mmHg run
    np.testing.assert_allclose(
        np.load(tmp_path / "kpa.npy"), np.load(tmp_path / "mmhg.npy"), atol=0.05, equal_nan=True
    )


def test_a_ppg_channel_declared_in_a_pressure_unit_or_named_abp_is_warned_of(
    recording, ckpt, tmp_path
):
    """``--ppg-channel ABP`` on Challenge 2015 record 85 exited 0 with a reconstruction from
    the arterial pressure (SBP 184, DBP 6) and only a generic "outside 20-250 mmHg"
    warning. It is still reconstructed (the user may know better), with one warning that
    names the channel and its unit, in the summary too."""
    said = "PPG channel 'ABP' is in 'mmHg' (a pressure unit, as the file declares) and is named"
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec", "--out",
            tmp_path / "a.csv", "--ppg-channel", "ABP", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if said in line]
    assert len(lines) == 1 and lines[0].startswith("warning: "), r.stderr
    assert r.stderr.count("PPG channel 'ABP'") == 1
    assert "name the PPG with --ppg-channel PLETH (its channels: PLETH, ABP)" in lines[0]
    assert said in json.loads(r.stdout)["warning"]
    # Each warning on a line of its own (they had been "; "-joined on one), as listed in
    # the summary's "warnings"; "warning" keeps them on one line, as the folder table does.
    warnings = json.loads(r.stdout)["warnings"]
    assert len(warnings) >= 2, warnings  # the pressure read as PPG gives implausible ABP too
    told = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert told == [f"warning: {w}" for w in warnings]
    assert json.loads(r.stdout)["warning"] == "; ".join(warnings)
    # A unit alone (a channel named otherwise, in cmH2O) and a name alone (a CSV's ABP
    # column, no units row) are each enough.
    import wfdb

    wfdb.wrsamp("cm", fs=FS, units=["NU", "cmH2O"], sig_name=["PLETH", "CH2"],
                p_signal=np.column_stack([recording["ppg"], recording["abp"] / 0.7355592]),
                fmt=["16", "16"], write_dir=str(tmp_path))  # fmt: skip
    r = run("reconstruct", "--checkpoint", ckpt, tmp_path / "cm", "--out", tmp_path / "b.csv",
            "--ppg-channel", "CH2")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "warning: PPG channel 'CH2' is in 'cmH2O' (a pressure unit" in r.stderr
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec.csv", "--out",
            tmp_path / "c.csv", "--ppg-channel", "ABP")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "warning: PPG channel 'ABP' is named as arterial pressure channels are" in r.stderr
    # The PPG itself (in NU, named PLETH) is not warned of, nor an .npy's one channel, whose
    # name is the user's own word, not the file's.
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec", "--out",
            tmp_path / "d.csv")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "PPG channel" not in r.stderr
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "ppg.npy", "--out",
            tmp_path / "e.csv", "--fs", FS, "--ppg-channel", "ABP")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "PPG channel" not in r.stderr


def test_a_calibration_segment_cut_short_by_the_end_is_not_called_a_gap(recording, ckpt, tmp_path):
    r = run(
        "reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec.npz", "--out",
        tmp_path / "a.npz", "--calibration", "120/80", "--calibration-at", "69.8",
        "--calibration-seconds", "1",
    )  # fmt: skip
    assert r.exit_code == 1
    assert "too short to hold a whole beat" in r.output and "has a gap" not in r.output
    assert files_in(tmp_path) == []


def test_a_csv_time_column_s_clock_is_kept(recording, ckpt, tmp_path):
    """A time column starting at 3600 s gave outputs, beats and the calibration time counted
    from 0: the user could not line them up with the input."""
    rows = (recording["dir"] / "rec.csv").read_text().splitlines()
    lines = [rows[0]]
    for row in rows[1:]:
        t, rest = row.split(",", 1)
        lines.append(f"{float(t) + 3600:.4f},{rest}")
    later = tmp_path / "later.csv"
    later.write_text("\n".join(lines) + "\n")
    out = tmp_path / "abp.csv"
    args = ("reconstruct", "--checkpoint", ckpt, later, "--out", out, "--json")
    r = run(*args, "--reference-abp", "ABP", "--calibration", "reference",
            "--calibration-at", "3610", "--calibration-seconds", "15")  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)  # stderr may hold a warning
    assert summary["start_s"] == pytest.approx(3600.0)
    assert summary["calibration"]["segment_s"] == pytest.approx([3610.0, 3625.0])
    assert all(3600 <= g["start_s"] < g["end_s"] <= 3670 for g in summary["gaps"])
    assert any(g["start_s"] <= 3630 and g["end_s"] >= 3634 for g in summary["gaps"])
    times = np.loadtxt(out, delimiter=",", skiprows=1, usecols=0)
    assert times[0] == pytest.approx(3600.0) and times[-1] == pytest.approx(3600 + 70 - 1 / FS)
    beats = np.loadtxt(tmp_path / "abp.beats.csv", delimiter=",", skiprows=1)
    assert beats.shape[0] > 50 and 3600 < beats[:, 1].min() and beats[:, 1].max() < 3670
    # The same recording from 0 s: the same reconstruction, its times 3600 s earlier.
    base = tmp_path / "base.csv"
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec.csv", "--out", base,
            "--reference-abp", "ABP", "--calibration", "reference", "--calibration-at", "10",
            "--calibration-seconds", "15")  # fmt: skip
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(
        np.genfromtxt(out, delimiter=",", skip_header=1)[:, 1],
        np.genfromtxt(base, delimiter=",", skip_header=1)[:, 1],
    )
    base_beats = np.loadtxt(tmp_path / "base.beats.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(beats[:, 1:3] - 3600, base_beats[:, 1:3], atol=1e-3)
    # A calibration time before the recording's clock starts, or not a number.
    for at, message in (("10", "before the recording's start (3600 s"),
                        ("nan", "(--calibration-at) must be a time in seconds")):  # fmt: skip
        r = run(*args, "--force", "--calibration", "120/80", "--calibration-at", at)
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output


def _shifted_csv(recording: dict, path: Path, origin: float, scale: float = 1.0) -> Path:
    """The fixture's CSV with its times ``origin + scale * t``."""
    rows = (recording["dir"] / "rec.csv").read_text().splitlines()
    lines = [rows[0]]
    for row in rows[1:]:
        t, rest = row.split(",", 1)
        lines.append(f"{origin + scale * float(t):.6f},{rest}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".npz", ".hea"])
def test_npz_and_wfdb_outputs_keep_the_input_s_clock(recording, ckpt, tmp_path, suffix):
    """From a CSV whose times start at 3600 s, the beats table said 3600 s while a WFDB or
    NPZ output started at 0; they carry start_s now, and read back with it."""
    later = _shifted_csv(recording, tmp_path / "later.csv", 3600.0)
    out = tmp_path / f"ppg{suffix}"  # PPG from the CSV's ABP: its values are all valid input
    r = run("reconstruct", "--checkpoint", ckpt, later, "--out", out, "--direction", "abp2ppg")
    assert r.exit_code == 0, r.output
    back = read_recording(out)
    assert back.meta["start_s"] == pytest.approx(3600.0) and back.fs == FS
    # Reconstructed again from that output, the times stay on the input's clock.
    again = tmp_path / "abp.csv"
    r = run("reconstruct", "--checkpoint", ckpt, out, "--out", again, "--ppg-channel", "PPG")
    assert r.exit_code == 0, r.output
    assert np.loadtxt(again, delimiter=",", skiprows=1, usecols=0)[0] == pytest.approx(3600.0)


def test_a_wfdb_record_s_base_time_and_date_are_kept(recording, ckpt, tmp_path):
    """A header's ``10:30:00 01/05/2024`` was dropped: the output header said ``bt 1 250
    17500`` and the summary had no wall clock. The WFDB output keeps them (its first sample
    is the input's, with --ppg-delay too), and the summary says them in any format."""
    import datetime

    import wfdb

    src = tmp_path / "in"
    src.mkdir()
    wfdb.wrsamp(
        "bt",
        fs=FS,
        units=["NU", "mmHg"],
        sig_name=["PLETH", "ABP"],
        p_signal=np.column_stack([recording["ppg"], recording["abp"]]),
        fmt=["16", "16"],
        base_time=datetime.time(10, 30, 0),
        base_date=datetime.date(2024, 5, 1),
        write_dir=str(src),
    )
    assert "10:30:00 01/05/2024" in (src / "bt.hea").read_text().splitlines()[0]
    out = tmp_path / "bt_abp.hea"
    r = run("reconstruct", "--checkpoint", ckpt, src / "bt", "--out", out, "--ppg-delay", "0.28")
    assert r.exit_code == 0, r.output
    assert out.read_text().splitlines()[0].endswith(" 10:30:00 01/05/2024")
    header = wfdb.rdheader(str(tmp_path / "bt_abp"))
    assert header.base_time == datetime.time(10, 30) and header.base_date == datetime.date(
        2024, 5, 1
    )
    summary = json.loads((tmp_path / "bt_abp.summary.json").read_text())
    assert (summary["base_time"], summary["base_date"]) == ("10:30:00", "2024-05-01")
    # A CSV output has no place for them: its summary keeps them.
    r = run("reconstruct", "--checkpoint", ckpt, src / "bt", "--out", tmp_path / "bt.csv")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "bt.summary.json").read_text())
    assert (summary["base_time"], summary["base_date"]) == ("10:30:00", "2024-05-01")
    # A header without them gives none.
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec", "--out", tmp_path / "p")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "p.summary.json").read_text())
    assert summary["base_time"] is None and summary["base_date"] is None
    assert len((tmp_path / "p.hea").read_text().splitlines()[0].split()) == 4


def test_a_csv_time_column_states_the_rate_over_a_close_fs(recording, ckpt, tmp_path):
    """``--fs 126`` on 250 Hz times... within 1 %: the given rate won, and the output's
    times drifted from the input's (0.5 s after a minute at 125 vs 126 Hz)."""
    src = recording["dir"] / "rec.csv"
    out = tmp_path / "abp.csv"
    r = run("reconstruct", "--checkpoint", ckpt, src, "--fs", "252", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["fs"] == FS
    t_in = np.loadtxt(src, delimiter=",", skiprows=1, usecols=0)
    t_out = np.loadtxt(out, delimiter=",", skiprows=1, usecols=0)
    np.testing.assert_allclose(t_out, t_in, atol=1e-6)
    # A rate worked out from rounded times is the rate, not 249.99999999999962 Hz.
    assert read_recording(src).fs == FS


def test_a_time_column_in_milliseconds_is_named(recording, ckpt, tmp_path):
    ms = _shifted_csv(recording, tmp_path / "ms.csv", 0.0, scale=1000.0)
    out = tmp_path / "abp.csv"
    r = run("reconstruct", "--checkpoint", ckpt, ms, "--out", out)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "0.25 Hz if the times are in seconds (250 Hz if they are milliseconds)" in r.output
    assert "name the column time_ms or put a row of units (s, ms)" in r.output
    assert not out.exists()
    # Named so, the same file is read at 250 Hz.
    named = tmp_path / "named.csv"
    named.write_text(ms.read_text().replace("time,", "time_ms,", 1))
    assert run("reconstruct", "--checkpoint", ckpt, named, "--out", out).exit_code == 0
    assert json.loads((tmp_path / "abp.summary.json").read_text())["fs"] == FS


def test_a_second_time_column_is_the_clock_or_is_refused(recording, ckpt, tmp_path):
    """A CSV with 'time' and 'time_ms' took 'time' as the clock and read 'time_ms' as a
    channel, and one that said other times than 'time' (here: the rows twice as far apart)
    was not seen. The same clock in ms reconstructs as the file without it; the other is
    refused as the importer refuses it, naming both columns, and nothing is written."""
    rows = (recording["dir"] / "rec.csv").read_text().splitlines()
    base = tmp_path / "base.csv"
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec.csv", "--out", base)
    assert r.exit_code == 0, r.output
    for scale, agrees in ((1000, True), (2000, False)):
        lines = ["time,time_ms,PPG,ABP"]
        for row in rows[1:]:
            t, rest = row.split(",", 1)
            lines.append(f"{t},{scale * float(t):.1f},{rest}")
        two = tmp_path / f"two{scale}.csv"
        two.write_text("\n".join(lines) + "\n")
        out = tmp_path / f"abp{scale}.csv"
        r = run("reconstruct", "--checkpoint", ckpt, two, "--out", out)
        if agrees:
            assert r.exit_code == 0, r.output
            assert out.read_text() == base.read_text()
        else:
            assert r.exit_code == 1 and "Traceback" not in r.output
            assert r.output.count("Error:") == 1, r.output
            assert (
                f"{two} has two time columns that disagree: at row 3, 'time' says 0.004 s "
                "and 'time_ms' 0.008 s (from their first rows)"
            ) in r.output
            assert not [p for p in files_in(tmp_path) if "abp2000" in p]


def test_implausible_reconstructed_abp_is_counted_and_said(recording, ckpt, tmp_path):
    """The test checkpoint (2 epochs of ``tiny``) answers with pressures no trace has: the
    summary counts them, and a warning says so."""
    out = tmp_path / "abp.npz"
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "rec.npz", "--out", out,
            "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    abp = np.load(out)["ABP"]
    abp = abp[np.isfinite(abp)]
    outside = float(np.mean((abp < 20) | (abp > 250)))
    assert outside > 0.01  # what the test checkpoint does
    summary = json.loads(r.stdout)
    assert summary["implausible_fraction"] == pytest.approx(outside)
    assert f"warning: {100 * outside:.3g} % of the reconstructed ABP is outside 20-250" in r.stderr


def test_a_wrong_sampling_rate_that_leaves_no_beats_is_warned_of(recording, ckpt, tmp_path):
    """A 250 Hz recording given as --fs 25 was reconstructed with exit 0 and "100.0 %", its
    beats line simply missing: no word that the rate was wrong. One file and a folder (its
    table's warning column) both say so now; the right rate does not."""
    npy = recording["dir"] / "ppg.npy"
    r = run("reconstruct", "--checkpoint", ckpt, npy, "--fs", 25, "--out", tmp_path / "o.npy")
    assert r.exit_code == 0, r.output
    said = "no heart beats were found in the reconstructed ABP: the sampling rate, 25 Hz "
    assert f"warning: {said}given with fs (--fs), may be wrong" in r.stderr
    summary = json.loads((tmp_path / "o.summary.json").read_text())
    assert summary["beats"] == {"n": 0} and said in summary["warning"]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "p.npy").write_bytes(npy.read_bytes())
    r = run("reconstruct", "--checkpoint", ckpt, folder, "--fs", 25, "--out", tmp_path / "abp")
    assert r.exit_code == 0, r.output
    assert f"warning: p: {said}" in r.stderr
    index = json.loads((tmp_path / "abp" / "reconstructions.json").read_text())
    assert said in index["recordings"][0]["warning"]
    assert said in (tmp_path / "abp" / "reconstructions.csv").read_text()
    r = run("reconstruct", "--checkpoint", ckpt, npy, "--fs", FS, "--out", tmp_path / "ok.npy")
    assert r.exit_code == 0 and "sampling rate" not in r.stderr, r.output


def test_a_sampling_rate_too_high_for_the_beats_to_show_is_warned_of(recording, ckpt, tmp_path):
    """A PPG read at 4x its rate pulses 4x as fast, but beats are found at least 0.3 s
    apart: every other one of a 232 bpm pulse gave a plausible 115 bpm, SBP 127-163 and
    no warning. The input's spectrum says how fast it repeats; the right rate says nothing."""
    npy = recording["dir"] / "ppg.npy"
    r = run("reconstruct", "--checkpoint", ckpt, npy, "--fs", 4 * FS, "--out", tmp_path / "o.npy")
    assert r.exit_code == 0, r.output
    assert (
        "warning: channel 'ppg' repeats about 405 times a minute (its spectrum's strongest "
        "frequency), faster than any heart beats: the sampling rate, 1000 Hz given with fs "
        "(--fs), may be too high (check it)"
    ) in r.stderr
    r = run("reconstruct", "--checkpoint", ckpt, npy, "--fs", FS, "--out", tmp_path / "ok.npy")
    assert r.exit_code == 0 and "repeats about" not in r.stderr, r.output


def test_an_upside_down_ppg_is_warned_of(recording, ckpt, tmp_path):
    """Raw photodiode counts are upside down: the network, trained on upright PPG, turned
    them into pressures without a word. One that falls much faster than it rises is said
    to be upside down; the upright recording is not."""
    upright = np.load(recording["dir"] / "ppg.npy")
    np.save(tmp_path / "down.npy", -upright)
    r = run("reconstruct", "--checkpoint", ckpt, tmp_path / "down.npy", "--fs", FS, "--out",
            tmp_path / "o.npy")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (
        "warning: channel 'ppg' falls much faster than it rises (skewness of its steps -1.08), "
        "as an upside-down PPG does (raw photodiode counts fall as blood volume rises): if it "
        "is, negate it, as the network takes upright PPG"
    ) in r.stderr
    r = run("reconstruct", "--checkpoint", ckpt, recording["dir"] / "ppg.npy", "--fs", FS,
            "--out", tmp_path / "up.npy")  # fmt: skip
    assert r.exit_code == 0 and "upside-down" not in r.stderr, r.output


def test_the_pulse_rate_is_a_fundamental_not_a_harmonic() -> None:
    """A pulse whose second harmonic is its strongest frequency (a sharp upstroke) repeats
    at the fundamental: the harmonic alone would call a 130 bpm pulse 260 bpm."""
    from innpar_freia.reconstruct_file import pulse_rate_bpm

    fs = 100.0
    t = np.arange(round(60 * fs)) / fs
    assert pulse_rate_bpm(np.sin(2 * np.pi * 5.0 * t), fs) == pytest.approx(300.0, abs=4)
    harmonic = 0.6 * np.sin(2 * np.pi * (130 / 60) * t) + np.sin(2 * np.pi * (260 / 60) * t)
    assert pulse_rate_bpm(harmonic, fs) is None
    assert pulse_rate_bpm(np.sin(2 * np.pi * 5.0 * t[: round(9 * fs)]), fs) is None  # < 10 s


@pytest.mark.parametrize(
    ("hr", "warned"), [(32.0, True), (39.6, True), (40.0, False), (134.0, False), (220.0, False),
                       (221.0, True)],
)  # fmt: skip
def test_a_median_heart_rate_no_person_has_is_warned_of(hr, warned):
    """Record 85 (250 Hz) given as --fs 50 gave "HR 33 bpm" without a warning: beats read at
    a wrong rate are slowed or sped up by the ratio. A median outside 40-220 bpm says the
    rate may be wrong, and where it came from."""
    from innpar_freia.reconstruct_file import _beat_warnings

    said = _beat_warnings({"n": 16, "hr_median": hr}, 50.0, True)
    assert bool(said) == warned
    if warned:
        assert said == [
            f"the median heart rate of the reconstructed ABP is {hr:.0f} bpm, outside 40-220 "
            "bpm: the sampling rate, 50 Hz given with fs (--fs), may be wrong (check it)"
        ]
        from_file = _beat_warnings({"n": 3, "hr_median": hr}, 50.0, False)[0]
        assert "the sampling rate, 50 Hz from the file, may be wrong" in from_file


def test_a_channel_picked_by_name_that_holds_no_signal_points_at_the_others(ckpt, tmp_path):
    """A saturation column taken for the PPG failed as a flat line, without a word about
    the other channels."""
    n = 2000
    rows = "".join(f"{i / 100:.2f},97,{np.sin(i / 10.0):.4f}\n" for i in range(n))
    path = tmp_path / "monitor.csv"
    path.write_text("t,SpO2,wave\n" + rows)
    r = run("reconstruct", "--checkpoint", ckpt, path, "--out", tmp_path / "o.csv")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "from channel 'SpO2'" in r.output
    assert "if one of wave is the PPG, name it with --ppg-channel" in r.output
    assert not (tmp_path / "o.csv").exists()


def test_a_signal_file_the_header_names_is_never_replaced(recording, ckpt, tmp_path):
    """A header may keep its samples in a file of any name: ``rec.hea`` naming ``abp.dat``.
    Only ``rec.dat``/``rec.mat`` were protected, so ``--out abp --force`` replaced the
    input's samples with the output's and destroyed the recording."""
    import shutil

    d = tmp_path / "w"
    d.mkdir()
    shutil.copy(recording["dir"] / "rec.dat", d / "abp.dat")
    header = (recording["dir"] / "rec.hea").read_text().replace("rec.dat", "abp.dat")
    (d / "rec.hea").write_text(header)
    before = (d / "abp.dat").read_bytes()
    for force in ([], ["--force"]):
        result = run("reconstruct", "--checkpoint", ckpt, d / "rec", "--out", d / "abp", *force)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "abp.dat" in result.output and "input" in result.output, result.output
    assert (d / "abp.dat").read_bytes() == before
    assert files_in(d) == ["abp.dat", "rec.hea"]


def test_abp_to_ppg_needs_an_invertible_checkpoint(recording, synth_file, tmp_path):
    """The U-Net has no reverse pass: that was a traceback (ValueError), raised after the
    recording had been read and resampled."""
    from innpar_freia.checkpoint import load_checkpoint
    from innpar_freia.config import resolve_config
    from innpar_freia.errors import CheckpointError
    from innpar_freia.train import train

    cfg = resolve_config("unet", train={"epochs": 1, "batch_size": 32, "device": "cpu"})
    unet = train(cfg, synth_file, tmp_path / "unet").best_checkpoint
    for inp in (recording["dir"] / "rec", synth_file):
        out = tmp_path / "out" / "p.csv"
        result = run(
            "reconstruct", "--checkpoint", unet, inp, "--out", out, "--direction", "abp2ppg"
        )
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "not invertible: it cannot map ABP to PPG" in result.output, result.output
        assert not (tmp_path / "out").exists()
    with pytest.raises(CheckpointError, match="not invertible"):
        load_checkpoint(unet).predict_ppg(np.full((1, 625), 90.0), fs=125.0)


def test_options_that_would_be_ignored_are_refused(recording, ckpt, synth_file, tmp_path):
    """Calibration settings without --calibration gave an uncalibrated output, and --overlap
    on a file of model windows did nothing, both without a word."""
    rec = recording["dir"] / "rec"
    out = tmp_path / "o" / "abp.csv"
    for extra, flags in (
        (["--calibration-at", "10"], "calibration_at (--calibration-at) sets"),
        (["--calibration-seconds", "30"], "calibration_seconds (--calibration-seconds) sets"),
        (["--calibration-mode", "offset"], "calibration_mode (--calibration-mode) sets"),
    ):
        result = run("reconstruct", "--checkpoint", ckpt, rec, "--out", out, *extra)
        assert result.exit_code == 1 and flags in result.output, result.output
        assert "no calibration (--calibration) was given" in result.output
    result = run("reconstruct", "--checkpoint", ckpt, synth_file, "--out", tmp_path / "o" / "w.h5",
                 "--overlap", "0.8")  # fmt: skip
    assert result.exit_code == 1 and "overlap (--overlap) has no effect here" in result.output
    assert not (tmp_path / "o").exists()
    result = run("reconstruct", "--checkpoint", ckpt, rec, "--out", out, "--overlap", "0.8")
    assert result.exit_code == 0, result.output  # a recording: the windows overlap


def test_plot_recording_names_a_table_given_for_the_reconstruction(recording, ckpt, tmp_path):
    """A beats table given as the reconstruction said "the sampling rate is unknown; give it
    with --fs", which sets --input's rate and could not help."""
    rec = recording["dir"] / "rec.csv"
    out = tmp_path / "abp.csv"
    assert run("reconstruct", "--checkpoint", ckpt, rec, "--out", out).exit_code == 0
    figure = tmp_path / "f.png"
    result = run("plot", "recording", tmp_path / "abp.beats.csv", "--input", rec, "--out", figure)
    assert result.exit_code == 1 and "not an output of innpar reconstruct" in result.output
    assert "--fs" not in result.output and not figure.exists()
    result = run("plot", "recording", out, "--input", rec, "--out", figure)
    assert result.exit_code == 0 and figure.is_file(), result.output


def test_the_figure_shades_the_input_panel_on_the_input_s_clock(
    recording, ckpt, tmp_path, captured
):
    """With --ppg-delay 0.28 the PPG gap at 30-34 s was shaded at 29.47-33.97 s on the PPG
    panel too (the output's clock, one list for both panels), and the calibration segment
    0.28 s before the PPG that made it. Each panel is shaded on its own clock now, by
    ``reconstruct --plot`` and by ``plot recording`` alike."""
    rec = recording["dir"] / "rec"
    out = tmp_path / "abp.csv"
    result = run(
        "reconstruct", "--checkpoint", ckpt, rec, "--out", out, "--ppg-delay", "0.28",
        "--calibration", "118/76", "--calibration-at", "10", "--calibration-seconds", "4",
        "--plot", tmp_path / "r.png",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "abp.summary.json").read_text())
    (gap,) = [g for g in summary["gaps"] if g["reason"] == "missing (NaN or inf)"]
    g0, g1 = gap["start_s"], gap["end_s"]
    assert 29.4 < g0 < 29.5 and 33.9 < g1 < 34.0  # 30-34 s, 0.25 s wider, 0.28 s earlier
    result = run("plot", "recording", out, "--input", rec, "--out", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    assert len(captured) == 2
    for fig in captured:
        top, mid, _ = fig.axes
        assert (pytest.approx(g0), pytest.approx(g1)) in spans_of(mid)
        assert (pytest.approx(g0 + 0.28), pytest.approx(g1 + 0.28)) in spans_of(top)
        assert (pytest.approx(10.0), pytest.approx(14.0)) in spans_of(mid)
        assert (pytest.approx(10.28), pytest.approx(14.28)) in spans_of(top)
        assert (pytest.approx(g0), pytest.approx(g1)) not in spans_of(top)


def spans_of(ax) -> list[tuple[float, float]]:
    """The x extents of an axes' shaded spans (axvspan rectangles spanning its height)."""
    return [
        (p.get_x(), p.get_x() + p.get_width())
        for p in ax.patches
        if p.get_height() == pytest.approx(1.0) and p.get_y() == 0.0
    ]


def test_a_reference_the_output_trails_is_said(recording, ckpt, tmp_path):
    """Without --ppg-delay the output stays on the PPG's clock, behind the reference ABP by
    the pulse transit time: the comparison was off by it, without a hint."""
    rec = recording["dir"] / "rec"
    result = run("reconstruct", "--checkpoint", ckpt, rec, "--out", tmp_path / "a.csv",
                 "--reference-abp", "ABP")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "a.summary.json").read_text())
    lag = summary["reference"]["lag_s"]
    assert abs(lag - recording["delay"]) < 0.05, (lag, recording["delay"])
    assert f"give delay_s (--ppg-delay) {lag:.2f}" in result.output and summary["warning"]
    delay = f"{recording['delay']:.3f}"
    result = run("reconstruct", "--checkpoint", ckpt, rec, "--out", tmp_path / "b.csv",
                 "--reference-abp", "ABP", "--ppg-delay", delay)  # fmt: skip
    assert result.exit_code == 0 and "--ppg-delay" not in result.output, result.output
    assert abs(json.loads((tmp_path / "b.summary.json").read_text())["reference"]["lag_s"]) < 0.05


def test_plot_recording_says_how_the_reconstruction_was_calibrated(
    recording, ckpt, tmp_path, captured
):
    """The figure of a calibrated reconstruction said nothing of the calibration (no title,
    no calibration segment), unlike the one reconstruct --plot draws. Both now name the
    checkpoint and its epoch ('[best.pt, tiny]' did not say which best.pt of a run that
    goes on training; innpar plot recording named none)."""
    import innpar_freia.figures as figures
    from innpar_freia.checkpoint import load_checkpoint

    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        return Path(args[3])

    rec = recording["dir"] / "rec.csv"
    out = tmp_path / "abp.csv"
    result = run("reconstruct", "--checkpoint", ckpt, rec, "--out", out, "--calibration",
                 "120/80", "--calibration-at", "10", "--plot", tmp_path / "r.png")  # fmt: skip
    assert result.exit_code == 0, result.output
    model = f"[best.pt epoch {load_checkpoint(ckpt).epoch}, tiny]"
    assert captured[-1]._suptitle.get_text().endswith(model)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("innpar_freia.plots.plot_recording", capture)
        figures.recording_figure(out, rec, tmp_path / "f.png")
    assert "calibrated (offset-scale) to cuff 120/80 mmHg at 10-70 s" in seen["title"]
    assert seen["title"].endswith(model)
    assert seen["calibration_s"] == pytest.approx((10.0, 70.0))
    (tmp_path / "abp.summary.json").unlink()  # a reconstruction without its summary
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("innpar_freia.plots.plot_recording", capture)
        figures.recording_figure(out, rec, tmp_path / "f.png")
    assert seen["calibration_s"] is None and "calibrat" not in seen["title"]


def test_plot_recording_knows_the_input_by_its_samples(recording, ckpt, tmp_path):
    """Records of one database share length and rate (every Challenge 2015 record is 300 s
    at 250 Hz), so 'same length, same rate' let record 85's reconstruction be drawn over
    record 86 as if it were its own. The summary's fingerprint of the input channel now
    tells them apart; a renamed copy of the input is still its input."""
    import shutil

    rec = recording["dir"] / "rec.csv"
    out = tmp_path / "abp.csv"
    assert run("reconstruct", "--checkpoint", ckpt, rec, "--out", out).exit_code == 0
    other = tmp_path / "other.csv"
    lines = rec.read_text().splitlines()
    other.write_text("\n".join([lines[0], *lines[1:-1], lines[-1].replace(",", ",1", 1)]) + "\n")
    r = CliRunner().invoke(cli, ["plot", "recording", str(out), "--input", str(other),
                                 "--out", str(tmp_path / "f.png")])  # fmt: skip
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"abp.csv is not a reconstruction of {other}" in r.output
    assert f"reconstructed from channel 'PPG' of {rec}, whose samples differ" in r.output
    assert not (tmp_path / "f.png").exists()
    copy = shutil.copy(rec, tmp_path / "renamed.csv")
    r = run("plot", "recording", out, "--input", copy, "--out", tmp_path / "f.png")
    assert r.exit_code == 0 and (tmp_path / "f.png").is_file(), r.output
    no_ppg = tmp_path / "no_ppg.csv"
    no_ppg.write_text(rec.read_text().replace("time,PPG,ABP", "time,X,ABP", 1))
    r = CliRunner().invoke(cli, ["plot", "recording", str(out), "--input", str(no_ppg),
                                 "--out", str(tmp_path / "g.png")])  # fmt: skip
    assert r.exit_code == 1 and f"channel 'PPG' of {rec}, which {no_ppg} does not have" in r.output


def test_plot_recording_calls_another_recording_at_another_rate_not_the_input(
    recording, ckpt, tmp_path
):
    """Another recording at 125 Hz given as the input of a 250 Hz reconstruction was told
    it was 'read at 125 Hz here; drop --fs', though no --fs was given and it is not the
    input: that it is another recording is now said first."""
    rec = recording["dir"] / "rec.csv"
    out = tmp_path / "abp.csv"
    assert run("reconstruct", "--checkpoint", ckpt, rec, "--out", out).exit_code == 0
    other = tmp_path / "other.csv"
    half = rec.read_text().splitlines()[::2]  # every other row: time steps of 8 ms
    other.write_text("\n".join(["time,PPG,ABP", *half[1:]]) + "\n")
    r = CliRunner().invoke(cli, ["plot", "recording", str(out), "--input", str(other),
                                 "--out", str(tmp_path / "f.png")])  # fmt: skip
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"abp.csv is not a reconstruction of {other}" in r.output
    assert "drop --fs" not in r.output and "125 Hz" not in r.output
    # Its own samples at another rate (a time column rewritten) are the input at a wrong
    # rate, and --fs, not given, is not advised against.
    lines = rec.read_text().splitlines()
    slow = tmp_path / "slow.csv"
    slow.write_text("\n".join([lines[0]] + [
        f"{2 * float(x.split(',', 1)[0]):.4f},{x.split(',', 1)[1]}" for x in lines[1:]
    ]) + "\n")  # fmt: skip
    r = CliRunner().invoke(cli, ["plot", "recording", str(out), "--input", str(slow),
                                 "--out", str(tmp_path / "f.png")])  # fmt: skip
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{slow} is read at 125 Hz here" in r.output and "drop --fs" not in r.output
    assert not (tmp_path / "f.png").exists()


def test_plot_recording_refuses_another_channel_or_direction_and_warns_without_summary(
    recording, ckpt, tmp_path
):
    """Guards against drawing what the figure is not: a --channel the reconstruction was not
    made from (an ECG as the input of a PPG's ABP), a --direction its summary contradicts
    (mmHg labelled "PPG (z-score)"), and, without the summary, another record of the same
    length and rate under it without a word (now a warning that it cannot be checked)."""
    rec = recording["dir"] / "rec.csv"
    out = tmp_path / "abp.csv"
    assert run("reconstruct", "--checkpoint", ckpt, rec, "--out", out).exit_code == 0
    figure = tmp_path / "f.png"
    base = ["plot", "recording", out, "--input", rec, "--out", figure]
    r = run(*base, "--channel", "ABP")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert (
        f"abp.csv was reconstructed from channel 'PPG' of {rec} (its summary says so), "
        in (r.output)
        and "not 'ABP': drop --channel" in r.output
    )
    r = run(*base, "--direction", "abp2ppg")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert (
        "abp.csv is a ppg2abp reconstruction (its summary says so), not abp2ppg: drop "
        in (r.output)
        and not figure.exists()
    )
    r = run(*base, "--channel", "PPG", "--direction", "ppg2abp")  # what it was: drawn
    assert r.exit_code == 0 and figure.is_file() and "warning" not in r.output, r.output
    (tmp_path / "abp.summary.json").unlink()
    r = run(*base, "--force")
    assert r.exit_code == 0, r.output
    assert f"warning: {tmp_path / 'abp.summary.json'} is missing or unreadable: that {rec} is" in (
        r.output
    )


def test_plot_recording_draws_the_channel_and_direction_it_was_reconstructed_with(
    recording, ckpt, tmp_path
):
    """The input channel was found again by its name, not the one reconstructed (a second
    PPG named with --ppg-channel was drawn as the first); an ABP .npy reconstructed to PPG
    could not be drawn at all ('abp.npy has no ABP channel; its channels are: ppg')."""
    import innpar_freia.figures as figures

    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs, source=args[1], fs=args[0])
        return Path(args[3])

    ppg = np.nan_to_num(recording["ppg"])
    two = tmp_path / "two.npz"
    np.savez(two, pleth=ppg, finger=-ppg, fs=FS)
    out = tmp_path / "two_abp.csv"
    r = run("reconstruct", "--checkpoint", ckpt, two, "--out", out, "--ppg-channel", "finger")
    assert r.exit_code == 0, r.output
    abp_npy = tmp_path / "abp.npy"
    np.save(abp_npy, recording["abp"])
    ppg_out = tmp_path / "ppg_out.npy"
    r = run("reconstruct", "--checkpoint", ckpt, abp_npy, "--fs", FS, "--out", ppg_out,
            "--direction", "abp2ppg")  # fmt: skip
    assert r.exit_code == 0, r.output
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("innpar_freia.plots.plot_recording", capture)
        figures.recording_figure(out, two, tmp_path / "f.png")
        assert seen["source_label"].startswith("finger ")
        np.testing.assert_array_equal(seen["source"], -ppg)
        figures.recording_figure(ppg_out, abp_npy, tmp_path / "g.png", fs=FS)
        assert seen["direction"] == "abp2ppg" and seen["beats"] is None
        np.testing.assert_array_equal(seen["source"], recording["abp"])
        # An .npy states no rate: the summary's is the one it was reconstructed at, and
        # another --fs (which had drawn it at twice its length without a word) is refused.
        figures.recording_figure(ppg_out, abp_npy, tmp_path / "g.png")
        assert seen["fs"] == FS
    r = run("plot", "recording", ppg_out, "--input", abp_npy, "--fs", FS / 2,
            "--out", tmp_path / "g2.png")  # fmt: skip
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert (
        f"{ppg_out} was reconstructed from {abp_npy} at {FS:g} Hz (its summary says so), but "
        f"{abp_npy} is read at {FS / 2:g} Hz here; drop --fs" in r.output
    )
    assert not (tmp_path / "g2.png").exists()
    # A reference ABP was drawn in mmHg over the reconstructed PPG.
    r = CliRunner().invoke(cli, ["plot", "recording", str(ppg_out), "--input", str(abp_npy),
                                 "--fs", str(FS), "--reference-abp", "abp",
                                 "--out", str(tmp_path / "h.png")])  # fmt: skip
    assert r.exit_code == 1 and "is a reconstructed PPG (abp2ppg): --reference-abp" in r.output
    assert not (tmp_path / "h.png").exists()
