"""``innpar reconstruct FOLDER --out OUTDIR``: every recording of a folder, each as one file
would be reconstructed, in the folder's layout, with one table of them all; a recording that
fails is listed and the others are kept; what would stop them all is refused before any work."""

from __future__ import annotations

import csv
import errno
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from innpar_freia.data.recordings import read_recording
from innpar_freia.errors import DataError
from innpar_freia.reconstruct_file import ReconstructOptions
from innpar_freia.reconstruct_folder import find_recordings, reconstruct_folder
from tests.helpers import assert_clean_failure, pulse_recording, run_cli, write_csv, write_wfdb

FS = 125.0


@pytest.fixture(scope="module")
def ckpt(tiny_run: Path) -> Path:
    return tiny_run / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four recordings of 16 s at 125 Hz, one per format, one in a subfolder."""
    d = tmp_path_factory.mktemp("records") / "in"
    ppg, abp = pulse_recording(16, seed=1)
    write_wfdb(d / "icu", "r1", {"PLETH": ppg, "ABP": abp}, fs=FS)
    ppg, abp = pulse_recording(16, seed=2)
    write_csv(d / "c2.csv", {"t": np.arange(ppg.size) / FS, "PPG": ppg, "ABP": abp})
    ppg, _ = pulse_recording(16, seed=3)
    np.save(d / "n3.npy", ppg)
    ppg, abp = pulse_recording(16, seed=4)
    np.savez(d / "z4.npz", pleth=ppg, abp=abp, fs=FS)
    return d


def table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_every_recording_is_reconstructed_as_one_file_would_be(folder, ckpt, tmp_path):
    out = tmp_path / "abp"
    r = run_cli("reconstruct", "--checkpoint", ckpt, folder, "--out", out, "--fs", FS)
    assert r.exit_code == 0, r.output
    assert "4 of 4 recordings reconstructed" in r.output
    assert "[2/4] icu/r1: 16.0 s" in r.output  # sorted by record id
    # The folder's layout, each in its input's format, with its beats and summary.
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        [
            "c2.csv", "c2.beats.csv", "c2.summary.json",
            "icu/r1.hea", "icu/r1.dat", "icu/r1.beats.csv", "icu/r1.summary.json",
            "n3.npy", "n3.beats.csv", "n3.summary.json",
            "z4.npz", "z4.beats.csv", "z4.summary.json",
            "reconstructions.csv", "reconstructions.json",
        ]
    )  # fmt: skip
    rows = {row["record"]: row for row in table(out / "reconstructions.csv")}
    assert list(rows) == ["c2", "icu/r1", "n3", "z4"]
    for name, single_in, suffix in (
        ("c2", folder / "c2.csv", ".csv"),
        ("icu/r1", folder / "icu" / "r1", ".hea"),
        ("n3", folder / "n3.npy", ".npy"),
        ("z4", folder / "z4.npz", ".npz"),
    ):
        one = tmp_path / "single" / name.replace("/", "_")
        r1 = run_cli(
            "reconstruct", "--checkpoint", ckpt, single_in, "--out", f"{one}{suffix}",
            "--fs", FS,
        )  # fmt: skip
        assert r1.exit_code == 0, r1.output
        ours = read_recording(out / f"{name}{suffix}", fs=FS if suffix == ".npy" else None)
        theirs = read_recording(f"{one}{suffix}", fs=FS if suffix == ".npy" else None)
        assert ours.fs == theirs.fs == FS
        a, b = next(iter(ours.signals.values())), next(iter(theirs.signals.values()))
        np.testing.assert_array_equal(a, b)
        summary = json.loads((out / f"{name}.summary.json").read_text())
        assert rows[name]["status"] == "reconstructed"
        assert rows[name]["beats"] == str(summary["beats"]["n"])
        assert float(rows[name]["sbp_median"]) == pytest.approx(
            summary["beats"]["sbp_median"], rel=1e-5
        )
    index = json.loads((out / "reconstructions.json").read_text())
    assert (index["n_recordings"], index["n_reconstructed"], index["n_failed"]) == (4, 4, 0)
    assert index["calibration"] == "calibration-free"


def test_format_include_and_figures(folder, ckpt, tmp_path):
    out, figs = tmp_path / "abp", tmp_path / "figs"
    r = run_cli(
        "reconstruct", "--checkpoint", ckpt, folder, "--out", out, "--format", "csv",
        "--include", "*.np?", "--plot", figs, "--fs", FS,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "2 of 2 recordings reconstructed" in r.output
    assert sorted(p.name for p in out.iterdir()) == [
        "n3.beats.csv", "n3.csv", "n3.summary.json", "reconstructions.csv",
        "reconstructions.json", "z4.beats.csv", "z4.csv", "z4.summary.json",
    ]  # fmt: skip
    assert read_recording(out / "z4.csv").fs == FS
    assert sorted(p.name for p in figs.iterdir()) == ["n3.png", "z4.png"]
    assert (figs / "z4.png").read_bytes().startswith(b"\x89PNG")
    # The subfolder's record, by its path.
    r = run_cli("reconstruct", "--checkpoint", ckpt, folder, "--out", tmp_path / "w",
                "--include", "icu/*")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [row["record"] for row in table(tmp_path / "w" / "reconstructions.csv")] == ["icu/r1"]


def test_a_recording_that_fails_is_listed_and_the_others_are_kept(folder, ckpt, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("c2.csv", "z4.npz"):
        (src / name).write_bytes((folder / name).read_bytes())
    (src / "ecg.csv").write_text((folder / "c2.csv").read_text().replace("PPG", "ECG", 1))
    out = tmp_path / "abp"
    r = run_cli("reconstruct", "--checkpoint", ckpt, src, "--out", out)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    error = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1
    assert "1 of 3 recordings could not be reconstructed" in error[0]
    assert "ecg: " in error[0] and "has no PPG" in error[0]
    assert "[2/3] ecg: not reconstructed:" in r.output
    rows = {row["record"]: row for row in table(out / "reconstructions.csv")}
    assert rows["ecg"]["status"] == "failed" and "has no PPG" in rows["ecg"]["reason"]
    assert rows["ecg"]["output"] == ""
    assert rows["c2"]["status"] == rows["z4"]["status"] == "reconstructed"
    assert (out / "c2.csv").is_file() and (out / "z4.npz").is_file()
    assert not list(out.glob("ecg*"))
    index = json.loads((out / "reconstructions.json").read_text())
    assert (index["n_reconstructed"], index["n_failed"]) == (2, 1)


def test_a_ppg_channel_in_a_pressure_unit_is_warned_of_for_each_recording(ckpt, tmp_path):
    """A folder read with ``--ppg-channel ABP`` reconstructed every record's pressure with at
    most a warning of implausible values; each record's warning now names the channel."""
    src = tmp_path / "in"
    for i in (1, 2):
        ppg, abp = pulse_recording(16, seed=i)
        write_wfdb(src, f"r{i}", {"PLETH": ppg, "ABP": abp}, fs=FS)
    out = tmp_path / "abp"
    r = run_cli("reconstruct", "--checkpoint", ckpt, src, "--out", out, "--ppg-channel", "ABP")
    assert r.exit_code == 0, r.output
    said = "PPG channel 'ABP' is in 'mmHg' (a pressure unit, as the file declares)"
    for record in ("r1", "r2"):
        assert f"warning: {record}: {said}" in r.stderr, r.stderr
    rows = table(out / "reconstructions.csv")
    assert [said in row["warning"] for row in rows] == [True, True]


def test_a_table_that_is_no_recording_is_said_to_be_none_before_its_rate(folder, ckpt, tmp_path):
    """The Challenge 2015 folder's records.csv (a table of records) failed with "the sampling
    rate is unknown; give it with --fs HZ", which --fs would not have mended: a CSV without a
    PPG channel that states no rate is said to be no recording, naming its columns; the
    folder's --include hint stays. A --ppg-channel it lacks is named before its rate too."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "c2.csv").write_bytes((folder / "c2.csv").read_bytes())
    (src / "records.csv").write_text("record,subfolder,n_windows\n167,training,49\n4,test,52\n")
    out = tmp_path / "abp"
    r = run_cli("reconstruct", "--checkpoint", ckpt, src, "--out", out)
    assert r.exit_code == 1, r.output
    said = (
        f"{src / 'records.csv'} is not a recording: it has no PPG (e.g. PLETH, PPG) channel and "
        "states no sampling rate; its columns are: record, subfolder, n_windows. If it is one, "
        "name its PPG column with channel (--ppg-channel) and give its rate with fs (--fs)"
    )
    assert table(out / "reconstructions.csv")[1]["reason"] == said
    assert f"records: {said} (leave out files that are not recordings with --include)" in r.output
    assert "sampling rate is unknown" not in r.output
    r = run_cli("reconstruct", "--checkpoint", ckpt, src / "records.csv", "--out",
                tmp_path / "o.csv", "--ppg-channel", "PPG")  # fmt: skip
    assert r.exit_code == 1 and "has no channel 'PPG'; its channels are: record" in r.output


def test_each_recording_is_calibrated_with_its_row_of_a_cuff_table(folder, ckpt, tmp_path):
    cuffs = tmp_path / "cuffs.csv"
    # A spreadsheet's export: byte-order mark, capitalised header; a record by its file
    # name (r1) or its path (c2), a reading taken later (at), and a row for no recording.
    cuffs.write_text(
        "\ufeffRecord,SBP,DBP,at\nr1,131,72,\nc2,118,66,4.5\nz4,140,139.5,\nn3,101,60,\n"
        "old,120,80,\n",
        encoding="utf-8",
    )
    out = tmp_path / "abp"
    r = run_cli(
        "reconstruct", "--checkpoint", ckpt, folder, "--out", out, "--fs", FS,
        "--calibration", cuffs, "--calibration-seconds", 5,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "1 row(s) of the cuff table match no recording: old" in r.output
    expected = {"icu/r1": (131, 72, 0.0), "c2": (118, 66, 4.5), "z4": (140, 139.5, 0.0)}
    for name, (sbp, dbp, at) in expected.items():
        cal = json.loads((out / f"{name}.summary.json").read_text())["calibration"]
        assert (cal["source"], cal["ref_sbp"], cal["ref_dbp"]) == ("cuff", sbp, dbp)
        assert cal["segment_s"] == pytest.approx([at, at + 5], abs=1 / FS)
    rows = {row["record"]: row for row in table(out / "reconstructions.csv")}
    assert rows["c2"]["calibration"] == "cuff 118/66"
    index = json.loads((out / "reconstructions.json").read_text())
    assert index["calibration"] == "cuff table" and index["unused_cuff_rows"] == ["old"]
    # z4's reading has a pulse pressure of 0.5 mmHg: offset-scale applied the offset alone,
    # which its row, its warning and the run's last lines say.
    offset_only = {r["record"]: r["calibration_offset_only"] for r in rows.values()}
    assert offset_only == {"c2": "False", "icu/r1": "False", "n3": "False", "z4": "True"}
    assert index["n_offset_only"] == 1
    assert "warning: z4: offset-scale calibration applied the offset alone: in the " in r.stderr
    assert "note: 1 recording calibrated with the offset alone, not offset and scale" in r.stdout


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_row", "has no reading for 1 of the 4 recordings: z4"),
        ("no_sbp_column", "needs a record column (record, name or id), sbp and dbp"),
        ("implausible", "row 3 (c2): cuff reading '66/118' is not plausible"),
        ("two_rows", "'c2' has two rows"),
        ("bad_at", "row 2 (r1): at must be a time in seconds, not 'soon'"),
        ("not_found", "cuff table not found"),
        ("one_reading", "one cuff reading is one person's; for a folder, give a table"),
    ],
)
def test_a_cuff_table_that_does_not_fit_is_refused_before_any_work(
    case, message, folder, ckpt, tmp_path
):
    cuffs = tmp_path / "cuffs.csv"
    rows = {"r1": "131,72,", "c2": "118,66,", "n3": "101,60,", "z4": "140,85,"}
    header = "record,sbp,dbp,at"
    if case == "missing_row":
        del rows["z4"]
    elif case == "no_sbp_column":
        header = "record,systolic,dbp,at"
    elif case == "implausible":
        rows["c2"] = "66,118,"
    elif case == "bad_at":
        rows["r1"] = "131,72,soon"
    body = "".join(f"{k},{v}\n" for k, v in rows.items())
    if case == "two_rows":
        body += "c2,120,70,\n"
    if case != "not_found":
        cuffs.write_text(f"{header}\n{body}")
    cal = "120/80" if case == "one_reading" else cuffs
    out = tmp_path / "abp"
    r = run_cli("reconstruct", "--checkpoint", ckpt, folder, "--out", out, "--fs", FS,
                "--calibration", cal)  # fmt: skip
    assert_clean_failure(r, out, message)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("out_inside", "is inside the input folder"),
        ("out_a_file_name", "for a folder INPUT, --out names a folder"),
        ("plot_a_file_name", "for a folder INPUT, --plot names a folder"),
        ("empty", "has no recordings (WFDB records (.hea), .csv, .npz or .npy files)"),
        ("include_nothing", "whose path matches --include '*.wav'"),
        ("same_record", "c2.csv and c2.npz are both recording 'c2'"),
        (
            "abp2ppg_table",
            "calibration (--calibration) calibrates reconstructed ABP: only with direction "
            "(--direction) ppg2abp",
        ),
    ],
)
def test_what_would_stop_every_recording_is_refused_before_any_work(
    case, message, folder, ckpt, tmp_path
):
    src, out = folder, tmp_path / "abp"
    extra: list[object] = ["--fs", FS]
    if case == "out_inside":
        out = folder / "abp"
    elif case == "out_a_file_name":
        out = tmp_path / "abp.csv"
    elif case == "plot_a_file_name":
        extra += ["--plot", tmp_path / "figs.png"]
    elif case == "empty":
        src = tmp_path / "empty"
        src.mkdir()
        (src / "notes.txt").write_text("nothing here")
    elif case == "include_nothing":
        extra += ["--include", "*.wav"]
    elif case == "same_record":
        src = tmp_path / "in"
        src.mkdir()
        (src / "c2.csv").write_bytes((folder / "c2.csv").read_bytes())
        (src / "c2.npz").write_bytes((folder / "z4.npz").read_bytes())
    elif case == "abp2ppg_table":
        (tmp_path / "cuffs.csv").write_text("record,sbp,dbp\nc2,120,80\n")
        extra += ["--direction", "abp2ppg", "--calibration", tmp_path / "cuffs.csv"]
    before = snapshot(folder)
    r = run_cli("reconstruct", "--checkpoint", ckpt, src, "--out", out, *extra)
    assert_clean_failure(r, out, message)
    assert snapshot(folder) == before
    assert not (tmp_path / "figs.png").exists()


def test_existing_outputs_are_refused_before_any_work_and_replaced_with_force(
    folder, ckpt, tmp_path
):
    out = tmp_path / "abp"
    args = ["reconstruct", "--checkpoint", ckpt, folder, "--out", out, "--fs", FS]
    assert run_cli(*args).exit_code == 0
    (out / "z4.summary.json").unlink()  # one recording's outputs are all that is missing
    (out / "c2.csv").write_text("edited by hand\n")
    before = snapshot(out)
    r = run_cli(*args)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "outputs exist: " in r.output and "and 11 more; pass --force to replace them" in r.output
    assert "[1/4]" not in r.output  # nothing was reconstructed
    assert snapshot(out) == before
    r = run_cli(*args, "--force")
    assert r.exit_code == 0, r.output
    assert (out / "z4.summary.json").is_file()
    assert read_recording(out / "c2.csv").n_samples == round(16 * FS)


@pytest.mark.parametrize("link", ["nested", "hard_link"])
def test_an_output_that_is_an_input_is_refused_even_with_force(link, folder, ckpt, tmp_path):
    """A bug an audit found: an --out that holds the input folder (``--out .`` for INPUT
    ``fin``) was refused only as "outputs exist", and with --force recording fin/fin/b's
    reconstruction replaced recording fin/b's input, fin/b.csv (exit 0). Any output that is
    an input (or a hard link of one) is refused before anything is written, whatever the
    nesting, as for one file."""
    if link == "nested":
        out = tmp_path / "nest"
        src = out / "fin"
        for name in ("b.csv", "fin/b.csv"):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((folder / "c2.csv").read_bytes())
        victim = src / "b.csv"
    else:
        src, out = tmp_path / "in", tmp_path / "abp"
        src.mkdir()
        out.mkdir()
        (src / "b.csv").write_bytes((folder / "c2.csv").read_bytes())
        victim = out / "b.csv"
        victim.hardlink_to(src / "b.csv")
    before = snapshot(out)
    for force in (["--force"], []):
        r = run_cli("reconstruct", "--checkpoint", ckpt, src, "--out", out, *force)
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert f"Error: output {victim} is the input " in r.output, r.output
        assert "[1/" not in r.output  # nothing was reconstructed
        assert snapshot(out) == before


def test_json_prints_the_index(folder, ckpt, tmp_path):
    out = tmp_path / "abp"
    r = run_cli("reconstruct", "--checkpoint", ckpt, folder, "--out", out, "--fs", FS,
                "--include", "c2.csv", "--json", "--reference-abp", "ABP")  # fmt: skip
    assert r.exit_code == 0, r.output
    index = json.loads(r.output)
    assert index == json.loads((out / "reconstructions.json").read_text())
    (row,) = index["recordings"]
    assert row["record"] == "c2" and row["ref_waveform_mae"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv"], "--format is for a folder INPUT"),
        (["--include", "*.csv"], "--include picks recordings of a folder INPUT"),
        (["--calibration", "cuffs.csv"], "a cuff table (cuffs.csv) is for a folder INPUT"),
        (["--plot", "figs/"], "'figs/' names a folder; give a file name such as abp.png"),
        (["--plot", "{tmp}"], "names a folder; give a file name such as abp.png"),
    ],
)
def test_folder_options_with_one_file_are_refused(args, message, folder, ckpt, tmp_path):
    out = tmp_path / "abp.csv"
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    r = run_cli("reconstruct", "--checkpoint", ckpt, folder / "c2.csv", "--out", out, *args)
    assert r.exit_code in (1, 2), r.output
    assert message in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_an_existing_folder_as_the_output_of_one_file_is_refused(folder, ckpt, tmp_path):
    """It was written beside the folder, as FOLDER.csv (click had refused it before --out
    could name a folder for a folder INPUT)."""
    out = tmp_path / "abp"
    out.mkdir()
    r = run_cli("reconstruct", "--checkpoint", ckpt, folder / "c2.csv", "--out", out)
    assert r.exit_code == 2 and "names a folder; give a file name such as abp.csv" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abp"] and not list(out.iterdir())


def test_a_full_disk_stops_the_run_and_an_unreadable_file_is_one_failure(
    folder, ckpt, tmp_path, monkeypatch
):
    import innpar_freia.reconstruct_folder as rf

    real = rf.reconstruct_file

    def failing(ckpt_, path, out, opts):
        if Path(path).name == "n3.npy":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        if Path(path).name == "z4.npz" and failing.full:
            raise OSError(errno.ENOSPC, "No space left on device", str(out))
        return real(ckpt_, path, out, opts)

    failing.full = False
    monkeypatch.setattr(rf, "reconstruct_file", failing)
    opts = ReconstructOptions(fs=FS)
    index = reconstruct_folder(ckpt, folder, tmp_path / "a", opts)
    rows = {row["record"]: row for row in index["recordings"]}
    assert rows["n3"]["status"] == "failed"
    assert rows["n3"]["reason"] == f"Permission denied: {folder / 'n3.npy'}"
    assert rows["z4"]["status"] == "reconstructed"
    failing.full = True
    with pytest.raises(OSError, match="No space left"):
        reconstruct_folder(ckpt, folder, tmp_path / "b", opts)
    # The table as last written while the run went on (at its start, here), for --resume.
    index = json.loads((tmp_path / "b" / "reconstructions.json").read_text())
    assert index["interrupted"] is True and index["n_reconstructed"] == 0


def test_a_disk_that_fills_while_outputs_are_written_stops_the_run(
    folder, ckpt, tmp_path, monkeypatch
):
    """A write() that fails with ENOSPC names no file; the staged outputs turn it into "cannot
    write OUTPUTS: No space left on device". Guards against that message being taken for one
    recording's failure: every later recording failed alike, each listed, and the command
    ended with the hint to leave out files that are not recordings."""
    from innpar_freia.outputs import StagedOutputs

    real = StagedOutputs.write_text

    def full(self, final, text):
        if Path(final).name.endswith(".beats.csv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, final, text)

    monkeypatch.setattr(StagedOutputs, "write_text", full)
    out = tmp_path / "abp"
    with pytest.raises(DataError, match="No space left on device") as err:
        reconstruct_folder(ckpt, folder, out, ReconstructOptions(fs=FS))
    assert str(err.value) == f"cannot write {out / 'c2.csv'}: No space left on device"
    r = run_cli("reconstruct", "--checkpoint", ckpt, folder, "--out", tmp_path / "b", "--fs", FS)
    assert r.exit_code == 1 and "No space left on device" in r.output
    assert "could not be reconstructed" not in r.output and "--include" not in r.output


def test_recordings_are_found_recursively_with_segments_read_through_their_master(tmp_path):
    d = tmp_path / "in"
    ppg, abp = pulse_recording(8, seed=5)
    write_wfdb(d / "a", "x", {"PLETH": ppg, "ABP": abp}, fs=FS)
    (d / "b").mkdir()
    write_csv(d / "b" / "y.v2.csv", {"PPG": ppg})
    # A multi-segment record: the master lists its segments, read through it, not alone.
    write_wfdb(d / "m", "m_1", {"PLETH": ppg}, fs=FS)
    (d / "m" / "m.hea").write_text(f"m/1 1 {FS:g} {ppg.size}\nm_1 {ppg.size}\n")
    found = find_recordings(d)
    assert [(r.id, r.format) for r in found] == [
        ("a/x", "wfdb"), ("b/y.v2", "csv"), ("m/m", "wfdb"),
    ]  # fmt: skip
    with pytest.raises(DataError, match="has no recordings"):
        find_recordings(d, include="*.npz")


def test_a_failure_with_force_says_that_the_earlier_outputs_are_left(folder, ckpt, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("c2.csv", "z4.npz"):
        (src / name).write_bytes((folder / name).read_bytes())
    out = tmp_path / "abp"
    assert run_cli("reconstruct", "--checkpoint", ckpt, src, "--out", out).exit_code == 0
    earlier = (out / "c2.csv").read_bytes()
    (src / "c2.csv").write_text((folder / "c2.csv").read_text().replace("PPG", "ECG", 1))
    r = run_cli("reconstruct", "--checkpoint", ckpt, src, "--out", out, "--force")
    assert r.exit_code == 1
    (row,) = [row for row in table(out / "reconstructions.csv") if row["record"] == "c2"]
    assert row["status"] == "failed"
    assert "the outputs of an earlier run are left as they were: " in row["reason"]
    assert str(out / "c2.csv") in row["reason"]
    assert (out / "c2.csv").read_bytes() == earlier


def test_an_interrupted_run_lists_what_it_did_and_resume_goes_on_with_the_rest(
    folder, ckpt, tmp_path, monkeypatch
):
    import innpar_freia.reconstruct_folder as rf

    real, calls = rf.reconstruct_file, []

    def stopping(ckpt_, path, out, opts):
        calls.append(Path(path).name)
        if len(calls) == 3 and stopping.stop:
            raise KeyboardInterrupt  # Ctrl-C during the third recording
        return real(ckpt_, path, out, opts)

    stopping.stop = True
    monkeypatch.setattr(rf, "reconstruct_file", stopping)
    out = tmp_path / "abp"
    args = ["reconstruct", "--checkpoint", ckpt, folder, "--out", out, "--fs", FS]
    r = run_cli(*args)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "interrupted after 2 of 4 recordings (2 reconstructed): " in r.output
    assert "--resume" in r.output
    index = json.loads((out / "reconstructions.json").read_text())
    assert index["interrupted"] is True
    assert [row["status"] for row in index["recordings"]] == [
        "reconstructed", "reconstructed", "interrupted", "interrupted",
    ]  # fmt: skip
    assert not list(out.glob("n3.*")) and not list(out.glob("z4.*"))
    done_before = (out / "c2.csv").read_bytes()
    # Without --resume, the outputs are refused, and the message says how to go on.
    r = run_cli(*args)
    assert r.exit_code == 1 and "or --resume to go on with the run they are from" in r.output
    stopping.stop, calls[:] = False, []
    r = run_cli(*args, "--resume")
    assert r.exit_code == 0, r.output
    assert calls == ["n3.npy", "z4.npz"]  # the first two were kept, not redone
    assert "[1/4] c2: reconstructed by the run resumed, kept" in r.output
    # "(2 by the run resumed)" read as if this run had done them.
    assert "4 of 4 recordings reconstructed (2 kept from the run resumed, 2 now)" in r.output
    assert (out / "c2.csv").read_bytes() == done_before
    index = json.loads((out / "reconstructions.json").read_text())
    assert index["interrupted"] is False and index["n_resumed"] == 2
    assert all(row["status"] == "reconstructed" for row in index["recordings"])
    # A kept recording whose outputs went missing since is done again.
    (out / "c2.beats.csv").unlink()
    calls[:] = []
    assert run_cli(*args, "--resume").exit_code == 0
    assert calls == ["c2.csv"] and (out / "c2.beats.csv").is_file()


def test_resume_reconstructs_again_a_recording_whose_input_changed_since(folder, ckpt, tmp_path):
    """A bug an audit found: after a record's .hea/.dat were replaced by another record's,
    --resume said "2 kept from the run resumed, 0 now" and kept the reconstruction of the
    signal that was gone. The record is reconstructed again, and its line says why."""
    src = tmp_path / "in"
    ppg, abp = pulse_recording(16, seed=1)
    write_wfdb(src, "100", {"PLETH": ppg, "ABP": abp}, fs=FS)
    (src / "c2.csv").write_bytes((folder / "c2.csv").read_bytes())
    out = tmp_path / "abp"
    args = ["reconstruct", "--checkpoint", ckpt, src, "--out", out]
    assert run_cli(*args).exit_code == 0
    stale, kept = (out / "100.summary.json").read_bytes(), (out / "c2.csv").read_bytes()
    ppg, abp = pulse_recording(16, seed=7)  # another record's signal, in its place
    other = write_wfdb(tmp_path / "other", "100", {"PLETH": ppg, "ABP": abp}, fs=FS)
    for suffix in (".hea", ".dat"):
        (src / f"100{suffix}").write_bytes(other.with_suffix(suffix).read_bytes())
    r = run_cli(*args, "--resume")
    assert r.exit_code == 0, r.output
    assert (
        "[1/2] 100: its input changed since the earlier run read it; reconstructed again: 16.0 s"
        in r.output
    )
    assert "[2/2] c2: reconstructed by the run resumed, kept" in r.output
    assert "(1 kept from the run resumed, 1 now, 1 of them again: its input changed)" in r.output
    summary = json.loads((out / "100.summary.json").read_text())
    assert (out / "100.summary.json").read_bytes() != stale
    rec = read_recording(src / "100")
    assert summary["input_sha256"] == rec.fingerprint("PLETH")  # the signal there now
    assert (out / "c2.csv").read_bytes() == kept
    # The table now holds what was read: a resume keeps both.
    r = run_cli(*args, "--resume")
    assert r.exit_code == 0 and "(2 kept from the run resumed, 0 now)" in r.output, r.output
    # A row of an older version (no sha256 of its input) is done again, and counted so: the
    # last line counted only those whose input changed.
    table = json.loads((out / "reconstructions.json").read_text())
    (row,) = [row for row in table["recordings"] if row["record"] == "c2"]
    del row["input_files_sha256"]
    (out / "reconstructions.json").write_text(json.dumps(table))
    r = run_cli(*args, "--resume")
    assert r.exit_code == 0, r.output
    assert "(1 kept from the run resumed, 1 now, 1 of them again: its line says why)" in r.output


def test_an_interrupted_run_counts_the_failed_among_what_it_handled(
    folder, ckpt, tmp_path, monkeypatch
):
    """Ctrl-C said "interrupted after 1 of 4" when 2 were handled (1 reconstructed, 1
    failed): what was handled is counted, failures too."""
    import innpar_freia.reconstruct_folder as rf

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.csv").write_text((folder / "c2.csv").read_text().replace("PPG", "ECG", 1))
    for name in ("c2.csv", "n3.npy", "z4.npz"):
        (src / name).write_bytes((folder / name).read_bytes())
    real, calls = rf.reconstruct_file, []

    def stopping(ckpt_, path, out, opts):
        calls.append(Path(path).name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C during the third recording
        return real(ckpt_, path, out, opts)

    monkeypatch.setattr(rf, "reconstruct_file", stopping)
    r = run_cli("reconstruct", "--checkpoint", ckpt, src, "--out", tmp_path / "abp", "--fs", FS)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "interrupted after 2 of 4 recordings (1 reconstructed, 1 failed): " in r.output


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("nothing_to_resume", "holds no reconstructions.json of an earlier run to go on with"),
        ("other_overlap", "was made with other settings (they differ in: overlap)"),
        ("other_format", "they differ in: format"),
        ("other_checkpoint_bytes", "they differ in: checkpoint_sha256"),
        ("with_force", "--resume keeps what an earlier run reconstructed, --force replaces it"),
        ("damaged", "is not the table of an innpar reconstruct run"),
        ("one_file", "--resume goes on with the run of a folder INPUT"),
    ],
)
def test_resume_refuses_what_is_not_the_same_run(case, message, folder, ckpt, tmp_path):
    out = tmp_path / "abp"
    if case == "other_checkpoint_bytes":
        (tmp_path / "ck.pt").write_bytes(ckpt.read_bytes())
        ckpt = tmp_path / "ck.pt"
    args: list[object] = ["reconstruct", "--checkpoint", ckpt, folder, "--out", out,
                          "--fs", FS, "--include", "c2.csv"]  # fmt: skip
    if case != "nothing_to_resume":
        assert run_cli(*args).exit_code == 0
    if case == "other_checkpoint_bytes":  # retrained in place: the same path, other weights
        import torch

        payload = torch.load(ckpt, weights_only=True)
        for weights in payload["model_state"].values():
            weights.add_(0.01)
        torch.save(payload, ckpt)
    if case == "damaged":
        (out / "reconstructions.json").write_text("{not json")
    extra = {
        "other_overlap": ["--overlap", "0.25"],
        "other_format": ["--format", "npz"],
        "with_force": ["--force"],
    }.get(case, [])
    if case == "one_file":
        args[3] = folder / "c2.csv"
    before = snapshot(out) if out.exists() else {}
    r = run_cli(*args, *extra, "--resume")
    assert r.exit_code in (1, 2) and message in r.output and "Traceback" not in r.output
    assert (snapshot(out) if out.exists() else {}) == before


def test_sigterm_leaves_the_list_of_what_was_done_as_ctrl_c_does(
    folder, ckpt, tmp_path, monkeypatch
):
    """`kill` (SIGTERM) stops a command as SystemExit(143) (cli.stop_on_sigterm): the run's
    table is written as for Ctrl-C, for --resume."""
    import innpar_freia.reconstruct_folder as rf

    def killed(ckpt_, path, out, opts):
        raise SystemExit(143)

    monkeypatch.setattr(rf, "reconstruct_file", killed)
    seen = []
    with pytest.raises(SystemExit):
        reconstruct_folder(ckpt, folder, tmp_path / "a", ReconstructOptions(fs=FS),
                           on_interrupt=seen.append)  # fmt: skip
    index = json.loads((tmp_path / "a" / "reconstructions.json").read_text())
    assert index["interrupted"] is True and index["n_reconstructed"] == 0
    assert [row["status"] for row in index["recordings"]] == ["interrupted"] * 4
    assert seen and seen[0]["n_recordings"] == 4


def test_a_run_killed_outright_leaves_a_table_that_resume_goes_on_from(
    folder, ckpt, tmp_path, monkeypatch
):
    """SIGKILL (or a power cut) runs no clean-up: the table written as the run goes on (here
    after every recording) is what is left, with the recordings not reached "pending", and
    --resume keeps the two done, and removes the hidden copies the killed writes left."""
    import innpar_freia.reconstruct_folder as rf

    class Killed(BaseException):
        """Nothing catches it, as nothing runs after SIGKILL."""

    real, calls = rf.reconstruct_file, []

    def killed_at_the_third(ckpt_, path, out, opts):
        calls.append(Path(path).name)
        if len(calls) == 3:
            raise Killed
        return real(ckpt_, path, out, opts)

    monkeypatch.setattr(rf, "reconstruct_file", killed_at_the_third)
    monkeypatch.setattr(rf, "PROGRESS_SECONDS", 0.0)
    out, opts = tmp_path / "abp", ReconstructOptions(fs=FS)
    with pytest.raises(Killed):
        reconstruct_folder(ckpt, folder, out, opts)
    index = json.loads((out / "reconstructions.json").read_text())
    assert index["interrupted"] is True
    assert [row["status"] for row in index["recordings"]] == [
        "reconstructed", "reconstructed", "pending", "pending",
    ]  # fmt: skip
    assert [row["status"] for row in table(out / "reconstructions.csv")][2:] == ["pending"] * 2
    # What the killed process was writing is left under hidden names: the third recording's
    # outputs and the table's (here of an ended process, as after a real kill).
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    left = [
        out / f".n3.npy.{child.pid}.staged.npy",
        out / f".n3.beats.csv.{child.pid}.staged.csv",
        out / f".reconstructions.json.{child.pid}.staged.json",
    ]
    for path in left:
        path.write_bytes(b"half written")
    monkeypatch.setattr(rf, "reconstruct_file", real)
    index = reconstruct_folder(ckpt, folder, out, opts, resume=True)
    assert index["n_resumed"] == 2 and index["n_reconstructed"] == 4
    assert index["interrupted"] is False
    assert not [p.name for p in out.rglob(".*")]  # the resumed run removed them
