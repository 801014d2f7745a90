"""Recording importers (WFDB, CSV, NPZ) and the innpar-npy window folders, through the CLI."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import wfdb
from helpers import assert_clean_failure, run_cli, write_wfdb

from innpar_freia.data.importers import import_innpar_npy
from innpar_freia.data.recording_importers import import_recordings
from innpar_freia.data.recordings import read_csv, read_recording, read_wfdb
from innpar_freia.data.store import read_info, read_reference, read_signals
from innpar_freia.data.synthetic import synthesize_recording
from innpar_freia.errors import DataError
from innpar_freia.signal import resample

FS_IN = 250.0


@pytest.fixture(scope="module")
def recs():
    """Three synthetic 40-s recordings at 250 Hz with known PPG delays."""
    return [synthesize_recording(i, 40 / 60, FS_IN, seed=5) for i in range(3)]


def write_csv(path: Path, channels: dict[str, np.ndarray], fs: float | None = FS_IN) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        names = list(channels)
        w.writerow((["time"] if fs else []) + names)
        for i in range(len(channels[names[0]])):
            row = [repr(float(channels[k][i])) for k in names]
            w.writerow(([repr(i / fs)] if fs else []) + row)
    return path


# ------------------------------------------------------------------------------ WFDB


def test_wfdb_folder_import(tmp_path: Path, recs) -> None:
    root = tmp_path / "db"
    for i, rec in enumerate(recs):
        write_wfdb(
            root / f"site{i % 2}", f"r{i}", {"II": rec.abp * 0, "PLETH": rec.ppg, "ABP": rec.abp}
        )
    out = tmp_path / "w.h5"
    result = run_cli("data", "import", "wfdb", root, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records"] == {"total": 3, "kept": 3, "rejected": 0, "rejected_by_reason": {}}
    info = read_info(out)
    assert info.fs == 125.0 and info.window_length == 625 and info.source_format == "wfdb"
    assert sorted(set(info.subjects)) == ["site0/r0", "site0/r2", "site1/r1"]
    assert info.window_ids[0] == "site0/r0_000000" and info.start[1] == 625
    by_id = {s["id"]: s for s in info.provenance["records"]}
    for i, rec in enumerate(recs):
        src = by_id[f"site{i % 2}/r{i}"]
        assert abs(src["lag_samples"] - rec.delay_s * 125) <= 2, (src, rec.delay_s)
        assert src["windows_total"] == 7 and src["windows_kept"] >= 6
    # every input file is hashed: 3 headers + 3 signal files
    assert len(info.provenance["inputs"]) == 6
    assert info.provenance["options"]["align"] is True
    sp, dp = read_reference(out, "SP"), read_reference(out, "DP")
    assert np.all(sp > dp + 10) and np.all(dp > 30)


def test_wfdb_single_record_subject_map_and_channel_overrides(tmp_path: Path, recs) -> None:
    rec = recs[0]
    base = write_wfdb(tmp_path / "db", "rec7", {"finger": rec.ppg, "radial_line": rec.abp})
    out = tmp_path / "w.h5"
    result = run_cli("data", "import", "wfdb", base.with_suffix(".hea"), "--out", out)
    assert_clean_failure(result, out, "rec7", "no PPG", "finger, radial_line", "--ppg-channel")
    smap = tmp_path / "map.csv"
    smap.write_text("record,subject\nrec7,patient-A\n")
    result = run_cli(
        "data", "import", "wfdb", base, "--out", out, "--ppg-channel", "finger",
        "--abp-channel", "radial_line", "--subject-map", smap, "--window-seconds", 4,
        "--fs", 100,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    info = read_info(out)
    assert set(info.subjects) == {"patient-A"} and info.window_length == 400 and info.fs == 100
    smap.write_text("record,subject\nother,patient-B\n")
    result = run_cli(
        "data", "import", "wfdb", base, "--out", out, "--force", "--ppg-channel", "finger",
        "--abp-channel", "radial_line", "--subject-map", smap,
    )  # fmt: skip
    assert result.exit_code == 1 and "has no subject for record(s) rec7" in result.output
    assert "without the extension" not in result.output
    # A map naming the record by its header file is told why it matches nothing.
    smap.write_text("record,subject\nrec7.hea,patient-A\n")
    result = run_cli(
        "data", "import", "wfdb", base, "--out", out, "--force", "--ppg-channel", "finger",
        "--abp-channel", "radial_line", "--subject-map", smap,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "without the extension (rec7, not rec7.hea)" in result.output
    # A row that names no record here (a typo, or another dataset's map) is said.
    smap.write_text("record,subject\nrec7,patient-A\nrec70,patient-B\n")
    result = run_cli(
        "data", "import", "wfdb", base, "--out", out, "--force", "--ppg-channel", "finger",
        "--abp-channel", "radial_line", "--subject-map", smap,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 row(s) name no record here (rec70)" in result.output


def test_wfdb_bad_records(tmp_path: Path, recs) -> None:
    rec = recs[0]
    out = tmp_path / "w.h5"
    root = tmp_path / "db"
    write_wfdb(root, "good", {"PLETH": rec.ppg, "ABP": rec.abp})
    write_wfdb(root, "noabp", {"PLETH": rec.ppg, "II": rec.abp})
    result = run_cli("data", "import", "wfdb", root, "--out", out)
    assert_clean_failure(result, out, "noabp", "no ABP (e.g. ABP, ART) channel", "PLETH, II")
    # --skip-bad-records rejects it and keeps going
    result = run_cli("data", "import", "wfdb", root, "--out", out, "--skip-bad-records")
    assert result.exit_code == 0, result.output
    assert "1 x missing_channel" in result.output
    out.unlink()

    (root / "noabp.hea").unlink()
    (root / "noabp.dat").unlink()
    dat = root / "good.dat"
    data = dat.read_bytes()
    dat.write_bytes(data[: len(data) // 3])
    result = run_cli("data", "import", "wfdb", root, "--out", out)
    assert_clean_failure(result, out, "good.dat", "truncated")
    dat.unlink()
    dat.mkdir()  # a folder where the signal file should be was "missing"
    result = run_cli("data", "import", "wfdb", root, "--out", out)
    assert_clean_failure(result, out, f"signal file {dat} named in", "good.hea is not a file")
    dat.rmdir()
    dat.write_bytes(data)

    header = root / "good.hea"
    text = header.read_text()
    header.write_text("this is not a header\n" + text)
    assert_clean_failure(
        run_cli("data", "import", "wfdb", root, "--out", out),
        out,
        "good.hea",
        "the record line's number of signals is 'is', not a number",
    )
    first, rest = text.split("\n", 1)
    fields = first.split()
    # wfdb reads a rate that is not a number as 250 Hz and a signal line too few as a
    # record it fails on with an IndexError: both are one message naming the header.
    for damaged, message in (
        (" ".join([*fields[:2], "abc", *fields[3:]]) + "\n" + rest, "sampling rate is 'abc'"),
        (" ".join([*fields[:3], "1e4"]) + "\n" + rest, "number of samples is '1e4'"),
        (" ".join([*fields[:2], "2.5e2", *fields[3:]]) + "\n" + rest, "rate is '2.5e2'"),  # 2.5 Hz
        # A number, though not as WFDB writes one: "'1e9', not a number" said otherwise.
        (" ".join([*fields[:2], "1e9", *fields[3:]]) + "\n" + rest,
         "sampling rate is '1e9', not a number as WFDB headers write them (digits, and one "
         "point)"),
        # A rate of -125 was "not a number"; of 0, "outside 1..100000 Hz".
        (" ".join([*fields[:2], "-125", *fields[3:]]) + "\n" + rest,
         "sampling rate is '-125'; it must be a positive number"),
        (" ".join([*fields[:2], "0", *fields[3:]]) + "\n" + rest,
         "sampling rate is '0'; it must be a positive number"),
        # And of its counter frequency: "250/-1" was "not a number".
        (" ".join([*fields[:2], "125/-1", *fields[3:]]) + "\n" + rest,
         "sampling rate is '125/-1'; it must be a positive number"),
        (" ".join([*fields[:2], "125/0", *fields[3:]]) + "\n" + rest,
         "sampling rate is '125/0'; it must be a positive number"),
        (" ".join([*fields[:3], "-7"]) + "\n" + rest,
         "number of samples is '-7'; it must be a whole number, 0 or more"),
        # A signal format WFDB does not define was "cannot read WFDB record: KeyError: '999'".
        (first + "\n" + re.sub(r"^(\S+) \S+", r"\1 999", rest),
         "signal 'PLETH' is stored in format '999', not one of the WFDB signal formats innpar "
         "reads (8, 16, 24, 32, 61, 80, 160, 212, 310, 311, 508, 516, 524)"),
        (first + "\n" + rest.split("\n", 1)[1], "declares 2 signal(s) on its record line but "
         "describes 1"),
    ):  # fmt: skip
        header.write_text(damaged)
        assert_clean_failure(
            run_cli("data", "import", "wfdb", root, "--out", out), out, "good.hea", message
        )
    # A header without a sampling rate: wfdb would assume 250 Hz; we ask instead.
    first, rest = text.split("\n", 1)
    # "250." is a rate WFDB reads as 250 Hz: accepted.
    header.write_text(" ".join([*first.split()[:2], "250.", *first.split()[3:]]) + "\n" + rest)
    result = run_cli("data", "import", "wfdb", root, "--out", out)
    assert result.exit_code == 0 and read_info(out).fs == 125.0, result.output
    out.unlink()
    header.write_text(" ".join(first.split()[:2]) + "\n" + rest)
    assert_clean_failure(
        run_cli("data", "import", "wfdb", root, "--out", out),
        out,
        "good.hea",
        "does not state the sampling rate",
        "--input-fs",
    )
    result = run_cli("data", "import", "wfdb", root, "--out", out, "--input-fs", 250)
    assert result.exit_code == 0, result.output


def _two_records(root: Path, recs, fmt: str) -> Path:
    """Records r0 and r1 (``recs[0]``, ``recs[1]``) in ``root``, as WFDB or CSV files."""
    for i in range(2):
        if fmt == "wfdb":
            write_wfdb(root, f"r{i}", {"PLETH": recs[i].ppg, "ABP": recs[i].abp})
        else:
            root.mkdir(exist_ok=True)
            write_csv(root / f"r{i}.csv", {"PLETH": recs[i].ppg, "ABP": recs[i].abp})
    return root


@pytest.mark.parametrize("fmt,locked", [("wfdb", "r1.dat"), ("wfdb", "r1.hea"), ("csv", "r1.csv")])
def test_a_record_without_read_permission_is_skipped_like_other_unreadable_ones(
    tmp_path: Path, recs, no_access, fmt: str, locked: str
) -> None:
    """A file that could not be opened stopped the import with "Permission denied"
    (an OSError) even with --skip-bad-records, which rejects unreadable records."""
    root = _two_records(tmp_path / "db", recs, fmt)
    no_access(root / locked)
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", fmt, root, "--out", out)
    assert_clean_failure(result, out, f"cannot read {root / locked}: Permission denied")
    result = run_cli("data", "import", fmt, root, "--out", out, "--skip-bad-records", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records"]["kept"] == 1
    assert report["records"]["rejected_by_reason"] == {"unreadable": 1}
    assert set(read_info(out).subjects) == {"r0"}


@pytest.mark.parametrize("fmt,locked", [("wfdb", "r1.dat"), ("csv", "r1.csv")])
def test_reconstruct_names_a_recording_file_without_read_permission_as_import_does(
    tmp_path: Path, recs, no_access, tiny_run: Path, fmt: str, locked: str
) -> None:
    """innpar reconstruct said "Permission denied: FILE" of a CSV in a folder (the CLI's
    line for any OSError) and "cannot read WFDB record REC: PermissionError: [Errno 13]
    Permission denied: 'REC.dat'" of a WFDB signal file; now "cannot read FILE: Permission
    denied", as innpar data import says, alone and in a folder (the others reconstructed).
    A CSV named alone is refused by its argument's check, which names it too."""
    root = _two_records(tmp_path / "db", recs, fmt)
    no_access(root / locked)
    ckpt = tiny_run / "checkpoints" / "best.pt"
    said = f"cannot read {root / locked}: Permission denied"
    record = root / ("r1" if fmt == "wfdb" else locked)
    alone = run_cli("reconstruct", "--checkpoint", ckpt, record, "--out", tmp_path / "a")
    if fmt == "wfdb":
        assert alone.exit_code == 1 and alone.output == f"Error: {said}\n", alone.output
    else:
        assert alone.exit_code == 2 and f"Path '{root / locked}' is not readable." in alone.output
    result = run_cli("reconstruct", "--checkpoint", ckpt, root, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"r1: {said} (" in result.output and "Errno" not in result.output, result.output
    with (tmp_path / "out" / "reconstructions.csv").open() as fh:
        rows = {row["record"]: row for row in csv.DictReader(fh)}
    assert (rows["r0"]["status"], rows["r1"]["status"]) == ("reconstructed", "failed")
    assert rows["r1"]["reason"] == said


def test_wfdb_all_nan_and_empty_folder(tmp_path: Path, recs) -> None:
    out = tmp_path / "w.h5"
    base = write_wfdb(tmp_path / "db", "nan", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    # WFDB marks invalid samples with the format's minimum value: set every ABP sample so.
    rec = wfdb.rdrecord(str(base), physical=False)
    rec.d_signal[:, 1] = -32768
    rec.wrsamp(write_dir=str(base.parent))
    assert np.isnan(wfdb.rdrecord(str(base)).p_signal[:, 1]).all()
    assert_clean_failure(
        run_cli("data", "import", "wfdb", base.parent, "--out", out),
        out,
        "no window",
        "nan: abp_nan",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_failure(
        run_cli("data", "import", "wfdb", empty, "--out", out), out, str(empty), "no WFDB records"
    )


# -------------------------------------------------------------------------- CSV / NPZ


def test_csv_and_npz_share_the_pipeline(tmp_path: Path, recs) -> None:
    rec = recs[1]
    csv_dir, npz_dir = tmp_path / "csv", tmp_path / "npz"
    csv_dir.mkdir()
    npz_dir.mkdir()
    write_csv(csv_dir / "a.csv", {"PPG": rec.ppg, "ABP": rec.abp})
    np.savez(npz_dir / "a.npz", PPG=rec.ppg, ABP=rec.abp, fs=FS_IN)
    r1 = import_recordings("csv", csv_dir, tmp_path / "c.h5")
    r2 = import_recordings("npz", npz_dir, tmp_path / "n.h5")
    assert r1.windows_kept == r2.windows_kept > 0
    assert r1.sources[0].lag_samples == r2.sources[0].lag_samples
    for a, b in zip(read_signals(tmp_path / "c.h5"), read_signals(tmp_path / "n.h5"), strict=True):
        np.testing.assert_array_equal(a, b)
    # Without alignment the delayed PPG fails QC (beats and correlation do not line up);
    # without QC too, every window is kept and the PPG stays where it was.
    with pytest.raises(DataError, match="no_good_windows"):
        import_recordings("npz", npz_dir, tmp_path / "u.h5", align=False)
    r3 = import_recordings("npz", npz_dir, tmp_path / "u.h5", align=False, qc=False)
    assert r3.sources[0].lag_samples is None and r3.windows_kept == 8
    ppg = read_signals(tmp_path / "u.h5")[0]
    np.testing.assert_allclose(ppg[1], resample(rec.ppg, FS_IN, 125.0)[625:1250], atol=1e-5)


def test_csv_npz_bad_inputs(tmp_path: Path, recs) -> None:
    rec = recs[0]
    out = tmp_path / "o.h5"
    nofs = write_csv(tmp_path / "nofs.csv", {"PLETH": rec.ppg, "ABP": rec.abp}, fs=None)
    assert_clean_failure(
        run_cli("data", "import", "csv", nofs, "--out", out),
        out,
        "nofs.csv",
        "sampling rate is unknown",
        "--input-fs",
    )
    result = run_cli("data", "import", "csv", nofs, "--out", out, "--input-fs", FS_IN)
    assert result.exit_code == 0, result.output
    out.unlink()
    np.savez(tmp_path / "bad.npz", PLETH=rec.ppg, ABP=rec.abp[:-10], fs=FS_IN)
    assert_clean_failure(
        run_cli("data", "import", "npz", tmp_path / "bad.npz", "--out", out),
        out,
        "bad.npz",
        "different lengths",
    )
    (tmp_path / "cut.npz").write_bytes((tmp_path / "bad.npz").read_bytes()[:300])
    assert_clean_failure(
        run_cli("data", "import", "npz", tmp_path / "cut.npz", "--out", out),
        out,
        "cut.npz",
        "not a readable .npz",
    )
    np.savez(tmp_path / "nan.npz", PLETH=rec.ppg * np.nan, ABP=rec.abp, fs=FS_IN)
    assert_clean_failure(
        run_cli("data", "import", "npz", tmp_path / "nan.npz", "--out", out),
        out,
        "nan.npz",
        "pleth_nan",
    )
    # Options of other formats are refused, not ignored.
    result = run_cli(
        "data", "import", "npz", tmp_path / "nan.npz", "--out", out, "--time-column", "t"
    )
    assert result.exit_code == 2 and "--time-column does not apply to npz" in result.output


def test_rate_that_contradicts_the_file_is_refused(tmp_path: Path, recs) -> None:
    """As for WFDB headers: --input-fs must agree with a CSV time column or an NPZ 'fs'."""
    rec = recs[0]
    out = tmp_path / "o.h5"
    write_csv(tmp_path / "a.csv", {"PLETH": rec.ppg, "ABP": rec.abp})
    np.savez(tmp_path / "a.npz", PLETH=rec.ppg, ABP=rec.abp, fs=FS_IN)
    assert_clean_failure(
        run_cli("data", "import", "csv", tmp_path / "a.csv", "--out", out, "--input-fs", 100),
        out,
        "a.csv: sampling rate 100 Hz contradicts the time column 'time'",
        "250 Hz",
    )
    assert_clean_failure(
        run_cli("data", "import", "npz", tmp_path / "a.npz", "--out", out, "--input-fs", 100),
        out,
        "a.npz: sampling rate 100 Hz contradicts the file's 'fs' of 250 Hz",
    )
    # An agreeing rate changes nothing.
    for fmt in ("csv", "npz"):
        args = ("data", "import", fmt, tmp_path / f"a.{fmt}", "--out", out, "--force")
        assert run_cli(*args).exit_code == 0
        expected = read_signals(out)[0]
        result = run_cli(*args, "--input-fs", FS_IN)
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(read_signals(out)[0], expected)


def test_rows_missing_from_a_csv_time_column_are_a_nan_gap(tmp_path: Path, recs) -> None:
    rec = recs[0]
    whole = write_csv(tmp_path / "whole.csv", {"PLETH": rec.ppg, "ABP": rec.abp})
    lines = whole.read_text().splitlines(keepends=True)
    # Rows 30 s .. 32 s are gone (line 0 is the header).
    gap = slice(round(30 * FS_IN), round(32 * FS_IN))
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(lines[: gap.start + 1] + lines[gap.stop + 1 :]))
    got = read_csv(cut)
    assert got.fs == pytest.approx(FS_IN) and got.n_samples == rec.ppg.size
    assert got.meta["missing_samples"] == gap.stop - gap.start
    expected = rec.ppg.copy()
    expected[gap] = np.nan
    np.testing.assert_array_equal(got.signals["PLETH"], expected)
    # The windows across the gap are rejected as NaN windows, not stitched across it.
    r_whole = import_recordings("csv", whole, tmp_path / "whole.h5")
    r_cut = import_recordings("csv", cut, tmp_path / "cut.h5")
    src = r_cut.sources[0]
    assert src.windows_total == r_whole.sources[0].windows_total
    assert src.rejected.get("nan", 0) >= 1 and src.windows_kept < r_whole.windows_kept


def test_text_in_a_csv_s_columns_of_numbers_is_warned_of_on_import(tmp_path: Path, recs) -> None:
    """A row ``abc,def`` in a CSV recording became a gap without a word. Empty cells, marks of
    a missing value and a column of text only (labels) are no surprise; other text in a
    column of numbers is counted, with the first cell, and the import's report says so."""
    rec = recs[0]
    whole = write_csv(tmp_path / "whole.csv", {"PLETH": rec.ppg, "ABP": rec.abp, "note": rec.abp})
    lines = whole.read_text().splitlines()
    for i in range(1, len(lines)):  # a column of labels: text only
        lines[i] = lines[i].rsplit(",", 1)[0] + ",ok"
    lines[1000] = f"{999 / FS_IN!r},,n/a,ok"  # missing, as it says
    lines[2001] = f"{2000 / FS_IN!r},abc,def,ok"  # line 2002 of the file
    lines[3000] = f"{2999 / FS_IN!r},-,x,ok"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    said = (
        f"{bad}: 3 cells of text in columns of numbers were read as missing samples (a gap); "
        "the first: row 2002, column 'PLETH': 'abc'"
    )
    assert read_csv(bad).meta["warnings"] == [said]
    assert "warnings" not in read_csv(whole).meta
    assert import_recordings("csv", bad, tmp_path / "bad.h5").warnings == [f"bad: {said}"]


def test_a_csv_table_that_is_no_recording_is_said_to_be_none_before_its_rate(tmp_path: Path):
    """A table of records (the Challenge 2015 folder's records.csv) among CSV recordings was
    "the sampling rate is unknown; give it with --input-fs HZ", which would not have mended
    it: it is said to be no recording, naming its columns, and skipped as a missing channel."""
    table = tmp_path / "in" / "records.csv"
    table.parent.mkdir()
    table.write_text("record,subfolder\n167,training\n")
    with pytest.raises(DataError) as err:
        import_recordings("csv", table.parent, tmp_path / "a.h5")
    assert str(err.value) == (
        f"{table} is not a recording: it has no PPG (e.g. PLETH, PPG) or ABP (e.g. ABP, ART) "
        "channel and states no sampling rate; its columns are: record, subfolder. If it is "
        "one, name its PPG column with ppg_channel='NAME', its ABP column with "
        "abp_channel='NAME', and give its rate with input_fs=HZ"
    )
    with pytest.raises(DataError, match=r"has no PPG .* channel and states no sampling rate"):
        import_recordings("csv", table, tmp_path / "b.h5", abp_channel="record")
    with pytest.raises(DataError, match=r"records: missing_channel \(.* is not a recording"):
        import_recordings("csv", table.parent, tmp_path / "b.h5", skip_bad=True)
    (tmp_path / "in" / "rec.csv").write_text("PLETH,ABP\n1,80\n")
    with pytest.raises(DataError, match=r"rec.csv: the sampling rate is unknown; give it with"):
        import_recordings("csv", tmp_path / "in" / "rec.csv", tmp_path / "c.h5")


def test_a_csv_header_without_data_rows_is_said_to_have_no_data_rows(tmp_path: Path) -> None:
    """A CSV with a header row and no data rows was said to have "no header row and data
    rows", as if the header were missing too; an empty file is said to be empty."""
    only = tmp_path / "only.csv"
    only.write_text("time,PPG\n\n,\n")  # blank rows after the header are no samples
    with pytest.raises(DataError) as err:
        read_csv(only, fs=100)
    assert str(err.value) == f"{only} has a header row (time, PPG) but no data rows: no samples"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty: it has no header row and no data rows"):
        read_csv(empty, fs=100)


def test_an_import_of_one_subject_says_subject(tmp_path: Path, recs) -> None:
    """The import's report said "from 1 subjects"."""
    path = write_csv(tmp_path / "a.csv", {"PPG": recs[0].ppg, "ABP": recs[0].abp})
    r = run_cli("data", "import", "csv", path, "--out", tmp_path / "a.h5")
    assert r.exit_code == 0, r.output
    assert " at 125 Hz from 1 subject\n" in r.stdout, r.stdout


def test_a_recording_whose_windows_all_fail_for_their_beats_points_at_the_rate(
    tmp_path: Path, recs
) -> None:
    """A 250 Hz CSV imported with --input-fs 25 was refused as "none of N windows passed
    quality control", without a word of why or of the rate: the rejections are counted, and
    when most were for the beats (what a wrong rate does to them), the rate is named."""
    path = write_csv(tmp_path / "a.csv", {"PPG": recs[0].ppg, "ABP": recs[0].abp}, fs=None)
    with pytest.raises(DataError) as err:
        import_recordings("csv", path, tmp_path / "a.h5", input_fs=25)
    said = str(err.value)
    assert "a: no_good_windows (none of " in said and " windows passed quality control: " in said
    assert " few_beats" in said or " heart_rate" in said
    assert (
        "; most were rejected for their beats (too few, too many, or a heart rate outside "
        "35-140 bpm), which a wrong sampling rate gives too: check the rate (the file's, or "
        "input_fs)"
    ) in said
    assert import_recordings("csv", path, tmp_path / "b.h5", input_fs=FS_IN).windows_kept > 0


def test_a_rate_read_twice_too_high_is_warned_of_though_qc_kept_only_slow_windows(
    tmp_path: Path,
) -> None:
    """250 Hz recordings given --input-fs 500 double every heart rate. QC keeps windows of
    35-140 bpm, so only the slowest windows were kept, at a median under 150 bpm, and the
    import said nothing of the rate. The rate is now taken over every window without NaN.
    Guards against judging by the kept windows, and against warning at the right rate."""
    from innpar_freia.data.import_report import window_heart_rate

    folder = tmp_path / "csv"
    folder.mkdir()
    for i in range(6):
        rec = synthesize_recording(i, 1.0, FS_IN, seed=7)
        write_csv(folder / f"r{i}.csv", {"PPG": rec.ppg, "ABP": rec.abp}, fs=None)
    right = import_recordings("csv", folder, tmp_path / "right.h5", input_fs=FS_IN)
    assert not [w for w in right.warnings if "heart rate" in w]
    wrong = import_recordings("csv", folder, tmp_path / "wrong.h5", input_fs=2 * FS_IN)
    said = [w for w in wrong.warnings if "heart rate" in w]
    assert len(said) == 1 and said[0].startswith("the windows' median heart rate is 159 bpm")
    assert "the recordings' sampling rate may be wrong (at half theirs, 79 bpm)" in said[0]
    # What the kept windows alone say: within the 50-150 bpm of a group of people.
    kept = read_signals(tmp_path / "wrong.h5")[1]
    assert 50 < window_heart_rate(kept, read_info(tmp_path / "wrong.h5").fs) < 150


def test_the_rate_check_falls_back_on_the_kept_windows_where_most_have_no_pulse(
    tmp_path: Path,
) -> None:
    """Recordings mostly of noise (a detached line, artefact) have a regular pulse in under
    half of their windows, too few to judge the rate by; the windows QC kept still have
    one, and a rate read 2x too low is still warned of. Guards against the check of every
    window silencing the check of the kept ones."""
    folder = tmp_path / "csv"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        rec = synthesize_recording(i, 1.0, FS_IN, seed=7)
        noise = 2 * rec.abp.size
        abp = np.concatenate([rec.abp, 100 + 15 * rng.standard_normal(noise)])
        ppg = np.concatenate([rec.ppg, rng.standard_normal(noise)])
        write_csv(folder / f"r{i}.csv", {"PPG": ppg, "ABP": abp}, fs=None)
    right = import_recordings("csv", folder, tmp_path / "right.h5", input_fs=FS_IN)
    assert not [w for w in right.warnings if "heart rate" in w]
    wrong = import_recordings("csv", folder, tmp_path / "wrong.h5", input_fs=FS_IN / 2)
    said = [w for w in wrong.warnings if "heart rate" in w]
    assert len(said) == 1 and said[0].startswith("the windows' median heart rate is 43 bpm")


def test_csv_time_jitter_is_fine_but_irregular_steps_are_refused(tmp_path: Path, recs) -> None:
    rec = recs[0]
    n = rec.ppg.size
    t = np.arange(n) / FS_IN

    def write(name: str, times: np.ndarray, fmt: str = "{:.6f}") -> Path:
        rows = [
            f"{fmt.format(a)},{float(b)!r},{float(c)!r}\n"
            for a, b, c in zip(times, rec.ppg, rec.abp, strict=True)
        ]
        (tmp_path / name).write_text("time,PLETH,ABP\n" + "".join(rows))
        return tmp_path / name

    rng = np.random.default_rng(1)
    # Float jitter and timestamps rounded to the millisecond at 128 Hz keep working.
    assert read_csv(write("jitter.csv", t + rng.uniform(-0.03, 0.03, n) / FS_IN)).fs == (
        pytest.approx(FS_IN, rel=1e-4)
    )
    ms = np.arange(n) / 128.0
    got = read_csv(write("ms.csv", ms, "{:.3f}"))
    assert got.fs == pytest.approx(128.0, rel=1e-3) and "missing_samples" not in got.meta

    # Rows are named as lines of the file (the header is row 1).
    out = tmp_path / "o.h5"
    half = t.copy()
    half[1000:] += 0.5 / FS_IN  # one step of 1.5 sample periods: not whole missing rows
    assert_clean_failure(
        run_cli("data", "import", "csv", write("half.csv", half), "--out", out),
        out,
        "half.csv: time column 'time' is irregular at row 1002 (4.002 s)",
        "1.50 sample periods",
    )
    shaky = t + rng.uniform(-0.4, 0.4, n) / FS_IN
    assert_clean_failure(
        run_cli("data", "import", "csv", write("shaky.csv", shaky), "--out", out),
        out,
        "shaky.csv: time column 'time' is irregular at row",
    )
    back = t.copy()
    back[500] = back[498]
    with pytest.raises(DataError, match=r"back.csv: time column 'time' is not increasing: row 502"):
        read_csv(write("back.csv", back))
    # With --input-fs the time column is still checked, not ignored.
    with pytest.raises(DataError, match="irregular at row 1002"):
        read_csv(tmp_path / "half.csv", FS_IN)
    lines = (tmp_path / "jitter.csv").read_text().splitlines()
    lines[7] = "," + lines[7].split(",", 1)[1]
    (tmp_path / "hole.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"hole.csv: row 8 has no time \(seconds\) in column"):
        read_csv(tmp_path / "hole.csv")
    far = t.copy()
    far[-1] = 1e6  # a broken last time, not a gap to fill with NaN
    with pytest.raises(DataError, match=f"far.csv: time column 'time' jumps by .* at row {n + 1}"):
        read_csv(write("far.csv", far))
    # Clock strings rather than seconds: the rate must be given, and then it is used.
    lines = (tmp_path / "jitter.csv").read_text().splitlines()
    clock = ["time,PLETH,ABP"] + [
        f"12:00:{i},{x.split(',', 1)[1]}" for i, x in enumerate(lines[1:])
    ]
    (tmp_path / "clock.csv").write_text("\n".join(clock) + "\n")
    with pytest.raises(DataError, match=r"clock.csv: time column 'time' holds no times in seconds"):
        read_csv(tmp_path / "clock.csv")
    assert read_csv(tmp_path / "clock.csv", FS_IN).n_samples == n
    # A second time column beside clock strings has nothing to be checked against: a
    # clock, not a channel, and the file is read (it was refused as "disagreeing").
    both = [clock[0].replace("time,", "time,time_s,")] + [
        x.replace(",", f",{i / FS_IN},", 1) for i, x in enumerate(clock[1:])
    ]
    (tmp_path / "clocks.csv").write_text("\n".join(both) + "\n")
    rec = read_csv(tmp_path / "clocks.csv", FS_IN)
    assert rec.n_samples == n and "time_s" not in rec.signals


# ------------------------------------------------------------------------- innpar-npy


def _npy_folder(root: Path, n: int = 6, shape_1l: bool = True) -> dict[str, tuple]:
    rng = np.random.default_rng(0)
    made = {}
    for sub in ("ppg", "abp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = f"s{i % 3}_{625 * i:06d}"
        p = rng.normal(size=(1, 625) if shape_1l else 625).astype(np.float32)
        a = (90 + 20 * rng.normal(size=p.shape)).astype(np.float32)
        np.save(root / "ppg" / f"{name}.npy", p)
        np.save(root / "abp" / f"{name}.npy", a)
        made[name] = (p.reshape(-1), a.reshape(-1))
    return made


def test_innpar_npy_round_trip(tmp_path: Path) -> None:
    made = _npy_folder(tmp_path / "lay")
    out = tmp_path / "o.h5"
    report = import_innpar_npy(tmp_path / "lay", out)
    assert any("assumed 125 Hz" in w for w in report.warnings)
    info = read_info(out)
    assert list(info.window_ids) == sorted(made)
    assert sorted(set(info.subjects)) == ["s0", "s1", "s2"]
    assert list(info.start) == [625 * int(n[-6:]) // 625 for n in sorted(made)]
    ppg, abp = read_signals(out)
    for i, name in enumerate(sorted(made)):
        assert np.array_equal(ppg[i], made[name][0]) and np.array_equal(abp[i], made[name][1])


def test_innpar_npy_constant_windows_are_rejected_and_counted(tmp_path: Path) -> None:
    made = _npy_folder(tmp_path / "lay")
    flat = sorted(made)[2]
    np.save(tmp_path / "lay" / "ppg" / f"{flat}.npy", np.full((1, 625), 0.5, dtype=np.float32))
    report = import_innpar_npy(tmp_path / "lay", tmp_path / "o.h5")
    assert report.windows_kept == 5 and report.windows_rejected == {"constant": 1}
    assert flat not in read_info(tmp_path / "o.h5").window_ids


def test_innpar_npy_splits_and_subject_rules(tmp_path: Path) -> None:
    _npy_folder(tmp_path / "lay" / "train", n=4, shape_1l=False)
    _npy_folder(tmp_path / "lay" / "test", n=2)
    out = tmp_path / "o.h5"
    report = import_innpar_npy(tmp_path / "lay", out, fs=100.0)
    assert report.splits == {"test": 2, "train": 4}
    # The two test windows have the names (and ids, and subjects) of two training windows:
    # imported as they are, since 'innpar data check' shows the leak, but said (the shared
    # subjects were not, while bp-benchmark folds sharing subjects were).
    assert report.warnings == [
        "2 subjects have windows in several splits (e.g. s0, s1): the splits are not "
        "subject-disjoint; see 'innpar data check'",
        "2 window id(s) occur more than once (e.g. s0_000000, s1_000625); ids should be "
        "unique: see 'innpar data check'",
    ]
    # A custom pattern: the subject is the letter-digit prefix.
    result = run_cli(
        "data", "import", "innpar-npy", tmp_path / "lay", "--out", tmp_path / "p.h5",
        "--subject-pattern", r"^(s)\d+_", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_subjects"] == 1
    bad = tmp_path / "bad.h5"
    assert_clean_failure(
        run_cli(
            "data",
            "import",
            "innpar-npy",
            tmp_path / "lay",
            "--out",
            bad,
            "--subject-pattern",
            r"^x(?P<subject>\d)",
        ),
        bad,
        "does not match the subject pattern",
        "--subject-map",
    )


def test_innpar_npy_bad_inputs(tmp_path: Path) -> None:
    out = tmp_path / "o.h5"
    lay = tmp_path / "lay"
    made = _npy_folder(lay)
    victim = sorted(made)[2]
    (lay / "abp" / f"{victim}.npy").unlink()
    assert_clean_failure(
        run_cli("data", "import", "innpar-npy", lay, "--out", out),
        out,
        f"abp/{victim}.npy is missing",
        f"ppg/{victim}.npy has no partner",
    )
    np.save(lay / "abp" / f"{victim}.npy", np.zeros((1, 600), dtype=np.float32))
    assert_clean_failure(
        run_cli("data", "import", "innpar-npy", lay, "--out", out),
        out,
        f"{victim}.npy has 625 samples but",
        "600",
    )
    (lay / "abp" / f"{victim}.npy").write_bytes(b"\x93NUMPY garbage")
    assert_clean_failure(
        run_cli("data", "import", "innpar-npy", lay, "--out", out),
        out,
        f"{victim}.npy is not a readable .npy",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_failure(
        run_cli("data", "import", "innpar-npy", empty, "--out", out), out, "has no ppg/ and abp/"
    )


def test_a_numpy_file_without_read_permission_is_said_to_be_unreadable_not_corrupt(
    tmp_path: Path, recs, no_access
) -> None:
    """ "(truncated or corrupt?): [Errno 13] Permission denied" guessed wrong: the file was
    never opened."""
    lay = tmp_path / "lay"
    name = sorted(_npy_folder(lay))[0]
    window = no_access(lay / "ppg" / f"{name}.npy")
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "innpar-npy", lay, "--out", out)
    assert_clean_failure(result, out, f"Error: cannot read {window}: Permission denied\n")
    assert "corrupt" not in result.output and "Errno" not in result.output
    np.save(tmp_path / "r.npy", recs[0].ppg)
    np.savez(tmp_path / "r.npz", PLETH=recs[0].ppg, ABP=recs[0].abp, fs=FS_IN)
    for f in (no_access(tmp_path / "r.npy"), no_access(tmp_path / "r.npz")):
        with pytest.raises(DataError) as caught:
            read_recording(f, fs=FS_IN)
        assert str(caught.value) == f"cannot read {f}: Permission denied"


def _halves(root: Path, rec, prefix: str) -> int:
    """``rec`` written as two WFDB segment records ``<prefix>1`` and ``<prefix>2`` in
    ``root``, its halves; returns the length of each."""
    half = rec.abp.size // 2
    for i in range(2):
        part = slice(i * half, (i + 1) * half)
        write_wfdb(root, f"{prefix}{i + 1}", {"PLETH": rec.ppg[part], "ABP": rec.abp[part]})
    return half


def test_wfdb_multi_segment_record_is_read_through_its_master(tmp_path: Path, recs) -> None:
    rec = recs[2]
    root = tmp_path / "db"
    half = _halves(root, rec, "m_000")
    (root / "m.hea").write_text(f"m/2 2 250 {2 * half}\nm_0001 {half}\nm_0002 {half}\n")
    out = tmp_path / "m.h5"
    report = import_recordings("wfdb", root, out)
    assert [s.id for s in report.sources] == ["m"]  # not the segments on their own
    assert report.sources[0].windows_total == 7 and report.windows_kept >= 6
    names = sorted(Path(i["path"]).name for i in read_info(out).provenance["inputs"])
    assert names == ["m.hea", "m_0001.dat", "m_0001.hea", "m_0002.dat", "m_0002.hea"]


def test_a_record_with_a_missing_segment_is_skipped_like_other_unreadable_ones(
    tmp_path: Path, recs
) -> None:
    root = tmp_path / "db"
    write_wfdb(root, "good", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    half = recs[1].abp.size // 2
    write_wfdb(root, "m_0001", {"PLETH": recs[1].ppg[:half], "ABP": recs[1].abp[:half]})
    (root / "m.hea").write_text(f"m/2 2 250 {2 * half}\nm_0001 {half}\nm_0002 {half}\n")
    out = tmp_path / "o.h5"
    assert_clean_failure(
        run_cli("data", "import", "wfdb", root, "--out", out),
        out,
        "segment header",
        "m_0002.hea named in",
        "is missing",
    )
    result = run_cli("data", "import", "wfdb", root, "--out", out, "--skip-bad-records", "--json")
    assert result.exit_code == 0, result.output
    sources = {s["id"]: s for s in json.loads(result.stdout)["sources"]}
    assert sources["m"]["status"] == "rejected" and sources["m"]["reason"] == "unreadable"
    assert sources["good"]["status"] == "kept"
    assert set(read_info(out).subjects) == {"good"}


def test_one_channel_cannot_be_both_ppg_and_abp(tmp_path: Path, recs) -> None:
    rec = write_csv(tmp_path / "a.csv", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    out = tmp_path / "o.h5"
    result = run_cli(
        "data", "import", "csv", rec, "--out", out, "--ppg-channel", "ABP", "--abp-channel", "ABP"
    )
    assert result.exit_code == 2 and "both name 'ABP'" in result.output
    assert not out.exists()
    # Channels are matched without case: these two options name one channel too.
    channels = ("--ppg-channel", "PLETH", "--abp-channel", "pleth")
    result = run_cli("data", "import", "csv", rec, "--out", out, *channels)
    assert result.exit_code == 2 and "both name 'PLETH'" in result.output
    assert not out.exists()
    # Spelled differently, the same channel is still one channel.
    assert_clean_failure(
        run_cli("data", "import", "csv", rec, "--out", out, "--ppg-channel", "abp"),
        out,
        "channel 'ABP' was chosen as both PPG and ABP",
    )


def test_npz_arrays_that_are_not_channels_are_named(tmp_path: Path, recs) -> None:
    out = tmp_path / "o.h5"
    as_npy = tmp_path / "a.npz"
    with as_npy.open("wb") as fh:
        np.save(fh, recs[0].ppg)
    assert_clean_failure(
        run_cli("data", "import", "npz", as_npy, "--out", out, "--input-fs", 250),
        out,
        "holds a single .npy array, not an .npz archive",
    )
    boolean = tmp_path / "b.npz"
    np.savez(boolean, PPG=recs[0].ppg > 0, ABP=recs[0].abp, fs=250.0)
    assert_clean_failure(
        run_cli("data", "import", "npz", boolean, "--out", out),
        out,
        "has no PPG (e.g. PLETH, PPG) channel",
        "arrays that are not 1-D real channels: PPG (bool of shape",
    )
    complex_ = tmp_path / "c.npz"
    np.savez(complex_, PPG=recs[0].ppg.astype(complex), ABP=recs[0].abp, fs=250.0)
    assert_clean_failure(
        run_cli("data", "import", "npz", complex_, "--out", out),
        out,
        "array 'PPG' holds complex numbers",
    )


def test_an_npz_key_of_python_objects_is_named_and_the_channels_imported(
    tmp_path: Path, recs
) -> None:
    """One object array beside good channels made the whole file "not a NumPy file of
    numbers (random bytes, or pickled Python objects)", naming no key."""
    meta = np.array({"subject": 1}, dtype=object)
    f = tmp_path / "r.npz"
    np.savez(f, PLETH=recs[0].ppg, ABP=recs[0].abp, fs=FS_IN, meta=meta)
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "npz", f, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    said = "key 'meta' holds Python objects, which are not read (allow_pickle is off)"
    assert any(said in w for w in json.loads(result.stdout)["warnings"]), result.output
    assert set(read_info(out).subjects) == {"r"}
    np.savez(f, PLETH=recs[0].ppg, fs=FS_IN, meta=meta)
    assert_clean_failure(
        run_cli("data", "import", "npz", f, "--out", tmp_path / "o2.h5"),
        tmp_path / "o2.h5",
        "no ABP (e.g. ABP, ART) channel",
        "meta (Python objects, not read: allow_pickle is off)",
    )


def test_an_npz_rate_is_read_from_its_common_spellings_and_never_from_a_boolean(
    tmp_path: Path, recs
) -> None:
    """FS=250 or sampling_rate=250 were ignored ("the sampling rate is unknown"), and
    fs=True was read as 1 Hz (every window then failed for its beats)."""
    f = tmp_path / "r.npz"
    for key in ("fs", "FS", "Fs", "sampling_rate", "Sample_Rate", "sfreq", "srate"):
        np.savez(f, PLETH=recs[0].ppg, ABP=recs[0].abp, **{key: FS_IN})
        rec = read_recording(f)
        assert (rec.fs, rec.channels) == (FS_IN, ["PLETH", "ABP"]), key
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "npz", f, "--out", out, "--input-fs", 125)
    assert_clean_failure(result, out, "contradicts the file's 'srate' of 250 Hz")
    np.savez(f, PLETH=recs[0].ppg, ABP=recs[0].abp, FS=FS_IN)
    result = run_cli("data", "import", "npz", f, "--out", out)
    assert result.exit_code == 0 and read_info(out).fs == 125.0, result.output
    out.unlink()
    for rate, said in (
        ({"fs": True}, "key 'fs' is True, not a sampling rate in Hz"),
        ({"fs": FS_IN, "sampling_rate": FS_IN / 2}, "keys 'fs' = 250 Hz, 'sampling_rate' = "
         "125 Hz give different sampling rates; keep one"),
        ({"Fs": 250.1, "srate": 250.1, "sfreq": 250.2}, "keys 'Fs' = 250.1 Hz, 'srate' = "
         "250.1 Hz, 'sfreq' = 250.2 Hz give different sampling rates; keep one"),
    ):  # fmt: skip
        np.savez(f, PLETH=recs[0].ppg, ABP=recs[0].abp, **rate)
        assert_clean_failure(run_cli("data", "import", "npz", f, "--out", out), out, said)


def test_npz_rate_keys_that_agree_are_one_rate(tmp_path: Path, recs) -> None:
    """An NPZ with both 'fs' and 'sampling_rate' (as some exporters write) was refused
    ("each give a sampling rate; keep one") even when the two were equal; equal to float32's
    rounding, they give the rate, and --input-fs is held to it as to one key."""
    f = tmp_path / "r.npz"
    out = tmp_path / "o.h5"
    for rate in (
        {"fs": FS_IN, "sampling_rate": FS_IN},
        {"fs": np.int16(250), "Sample_Rate": 250.0, "srate": np.float32(250)},
        {"fs": np.float32(128.1), "sampling_rate": 128.1},  # float32: 128.1000061
    ):
        np.savez(f, PLETH=recs[0].ppg, ABP=recs[0].abp, **rate)
        rec = read_recording(f)
        assert rec.channels == ["PLETH", "ABP"] and rec.fs == pytest.approx(
            float(next(iter(rate.values()))), rel=1e-12
        ), rate
    np.savez(f, PLETH=recs[0].ppg, ABP=recs[0].abp, fs=FS_IN, sampling_rate=FS_IN)
    result = run_cli("data", "import", "npz", f, "--out", out)
    assert result.exit_code == 0 and read_info(out).fs == 125.0, result.output
    result = run_cli("data", "import", "npz", f, "--out", tmp_path / "b.h5", "--input-fs", 125)
    assert_clean_failure(result, tmp_path / "b.h5", "contradicts the file's 'fs' of 250 Hz")


def test_npz_channels_of_no_samples_are_said_to_be_empty(tmp_path: Path, recs) -> None:
    """Channels of 0 samples were rejected as abp_nan ("every sample is invalid (NaN)")."""
    f = tmp_path / "r.npz"
    out = tmp_path / "o.h5"
    np.savez(f, PLETH=recs[0].ppg[:0], ABP=recs[0].abp[:0], fs=FS_IN)
    result = run_cli("data", "import", "npz", f, "--out", out)
    assert_clean_failure(result, out, "channels 'PLETH', 'ABP' are empty (0 samples)")
    np.savez(f, PLETH=recs[0].ppg, ABP=recs[0].abp[:0], fs=FS_IN)
    result = run_cli("data", "import", "npz", f, "--out", out)
    assert_clean_failure(result, out, "channel 'ABP' is empty (0 samples)")


def test_values_beyond_float32_are_rejected_not_stored_as_inf(tmp_path: Path) -> None:
    lay = tmp_path / "lay"
    made = _npy_folder(lay)
    victim = sorted(made)[1]
    huge = made[victim][1].astype(np.float64)
    huge[10] = 1e39  # finite in float64, inf in the file's float32
    np.save(lay / "abp" / f"{victim}.npy", huge)
    out = tmp_path / "o.h5"
    report = import_innpar_npy(lay, out)
    assert report.windows_kept == len(made) - 1
    assert report.sources[0].rejected == {"non_finite": 1}
    assert victim not in set(read_info(out).window_ids)
    _, abp = read_signals(out)  # refuses windows holding inf
    assert np.isfinite(abp).all()


def test_start_group_of_a_subject_pattern_must_be_a_number(tmp_path: Path) -> None:
    lay = tmp_path / "lay"
    _npy_folder(lay)
    out = tmp_path / "o.h5"
    pat = r"^(?P<subject>s\d)(?P<start>_.+)$"
    result = run_cli("data", "import", "innpar-npy", lay, "--out", out, "--subject-pattern", pat)
    assert_clean_failure(
        result,
        out,
        "'start' group matches '_000000'",
        "not a sample number",
    )


def test_subject_maps_from_spreadsheets_and_with_stray_cells(tmp_path: Path) -> None:
    lay = tmp_path / "lay"
    made = _npy_folder(lay)
    out = tmp_path / "o.h5"
    bom = tmp_path / "bom.csv"
    rows = "".join(f"{name},person_{name[:2]}\r\n" for name in sorted(made))
    bom.write_bytes(("\ufeffwindow,subject\r\n" + rows).encode("utf-8"))
    result = run_cli("data", "import", "innpar-npy", lay, "--out", out, "--subject-map", bom)
    assert result.exit_code == 0, result.output
    assert sorted(set(read_info(out).subjects)) == ["person_s0", "person_s1", "person_s2"]
    assert "name no window" not in result.output
    extra = tmp_path / "extra.csv"
    extra.write_text("window,subject\n" + rows.replace("\r\n", "\n") + "s9_000000,person_s9\n")
    result = run_cli("data", "import", "innpar-npy", lay, "--out", tmp_path / "e.h5",
                     "--subject-map", extra)  # fmt: skip
    assert result.exit_code == 0 and "1 row(s) name no window here (s9_000000)" in result.output
    stray = tmp_path / "stray.csv"
    stray.write_text("window,subject\n" + rows.replace("\r\n", "\n").replace("\n", ",x\n", 1))
    bad = tmp_path / "bad.h5"
    assert_clean_failure(
        run_cli("data", "import", "innpar-npy", lay, "--out", bad, "--subject-map", stray),
        bad,
        "row 2 has more cells than the header has columns",
    )


def test_a_csv_without_a_header_row_is_said_to_have_none(tmp_path: Path) -> None:
    """Its first sample was taken for channel names ("its channels are: -0.920306, ...")."""
    path = tmp_path / "bare.csv"
    path.write_text("-0.920306,49.868910\n-0.91,50.1\n")
    with pytest.raises(DataError, match=r"has no header row: its first row holds numbers"):
        read_csv(path, fs=100.0)


def test_the_ppg_waveform_is_preferred_to_saturation_and_pulse_rate_columns() -> None:
    from innpar_freia.data.recordings import find_channel

    # A monitor's export: saturation and pulse rate next to the infrared waveform.
    assert find_channel(["time", "SpO2", "Pulse", "IR"], "ppg") == "IR"
    assert find_channel(["SpO2", "Pulse"], "ppg") == "SpO2"  # alone, it may be the wave
    assert find_channel(["SpO2", "PLETH"], "ppg") == "PLETH"


def test_options_that_cannot_take_effect_or_are_not_numbers_are_usage_errors(
    tmp_path: Path, recs
) -> None:
    rec = write_csv(tmp_path / "a.csv", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "csv", rec, "--out", out, "--no-align", "--max-lag", 1)
    assert result.exit_code == 2 and "--max-lag has no effect with --no-align" in result.output
    # click's own float ranges let NaN through every bound: --input-fs nan was accepted
    # and stored, --fs nan and --window-seconds nan gave tracebacks.
    for option in ("--input-fs", "--fs", "--window-seconds", "--max-lag"):
        result = run_cli("data", "import", "csv", rec, "--out", out, option, "nan")
        assert result.exit_code == 2, (option, result.output)
        assert "'nan' is not a finite number" in result.output
    assert not out.exists()


def test_wfdb_rate_given_as_nan_is_refused(tmp_path: Path, recs) -> None:
    from innpar_freia.data.recordings import read_wfdb

    write_wfdb(tmp_path, "r", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    with pytest.raises(DataError, match="sampling rate nan Hz is outside"):
        read_wfdb(tmp_path / "r", fs=float("nan"))


def test_samples_beyond_float32_are_invalid_like_nan(tmp_path: Path, recs) -> None:
    """They used to overflow the resampling and alignment (RuntimeWarnings) and get the
    whole record rejected as badly correlated; only their windows go, as with NaN."""
    import warnings

    rec = recs[1]
    ppg = rec.ppg.copy()
    ppg[100:110] = 1e300
    np.savez(tmp_path / "big.npz", PLETH=ppg, ABP=rec.abp, fs=FS_IN)
    np.savez(tmp_path / "nan.npz", PLETH=np.where(ppg > 1e38, np.nan, ppg), ABP=rec.abp, fs=FS_IN)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        big = import_recordings("npz", tmp_path / "big.npz", tmp_path / "big.h5")
    nan = import_recordings("npz", tmp_path / "nan.npz", tmp_path / "nan.h5")
    assert big.sources[0].status == "kept"
    assert big.sources[0].rejected == nan.sources[0].rejected != {}
    for a, b in zip(
        read_signals(tmp_path / "big.h5"), read_signals(tmp_path / "nan.h5"), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_innpar_npy_split_folders_that_would_be_left_out_are_errors(tmp_path: Path) -> None:
    """A split folder missing abp/, or windows in a folder that is not a split, were left
    out without a word."""
    lay = tmp_path / "lay"
    _npy_folder(lay / "train", n=4)
    _npy_folder(lay / "test", n=2)
    (lay / "figures").mkdir()  # no windows: not ours, ignored
    out = tmp_path / "o.h5"
    (lay / "val" / "ppg").mkdir(parents=True)
    np.save(lay / "val" / "ppg" / "s9_000000.npy", np.zeros((1, 625), dtype=np.float32))
    assert_clean_failure(
        run_cli("data", "import", "innpar-npy", lay, "--out", out), out, "val has no abp/ folder"
    )
    (lay / "val").rename(lay / "dev")
    (lay / "dev" / "abp").mkdir()
    assert_clean_failure(
        run_cli("data", "import", "innpar-npy", lay, "--out", out),
        out,
        "dev holds windows but is not a split folder",
    )
    (lay / "dev" / "ppg" / "s9_000000.npy").rename(lay / "s9.npy")
    (lay / "dev" / "ppg").rmdir()
    (lay / "dev" / "abp").rmdir()
    assert import_innpar_npy(lay, out).splits == {"test": 2, "train": 4}


def test_innpar_npy_windows_in_subfolders_of_ppg_and_abp_are_named_not_left_out(
    tmp_path: Path,
) -> None:
    """ppg/b2/*.npy and abp/b2/*.npy were left out without a word (40 of 120 windows gone,
    exit 0); a subfolder without .npy files (a notebook's checkpoints) is not ours."""
    lay = tmp_path / "lay"
    _npy_folder(lay, n=6)
    for sub in ("ppg", "abp"):
        (lay / sub / ".ipynb_checkpoints").mkdir()
        (lay / sub / "b2").mkdir()
        for f in sorted((lay / sub).glob("s0_*.npy")):
            f.rename(lay / sub / "b2" / f.name)
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "innpar-npy", lay, "--out", out)
    assert_clean_failure(
        result, out, f"{lay / 'ppg'} has subfolders with .npy files (b2/), which would be left out"
    )
    for sub in ("ppg", "abp"):
        for f in sorted((lay / sub / "b2").glob("*.npy")):
            f.rename(lay / sub / f.name)
    assert import_innpar_npy(lay, out).windows_kept == 6


def test_an_npz_rate_of_several_values_and_an_empty_wfdb_record_are_named(tmp_path: Path):
    """An 'fs' key of two values was dropped and the rate called unknown ("give it with
    --fs"); a WFDB header of length 0 gave wfdb's "sampto must be greater than sampfrom"."""

    rng = np.random.default_rng(0)
    npz = tmp_path / "two.npz"
    np.savez(npz, pleth=rng.random(5000), abp=90 + rng.random(5000), fs=np.array([125.0, 250]))
    with pytest.raises(DataError, match=r"key 'fs' must be one number .* holds 2 values"):
        read_recording(npz)
    signals = {"units": ["NU", "mmHg"], "sig_name": ["PLETH", "ABP"], "fmt": ["16", "16"]}
    wfdb.wrsamp("z", fs=125, p_signal=rng.random((100, 2)), write_dir=str(tmp_path), **signals)
    header = (tmp_path / "z.hea").read_text().split("\n")
    header[0] = "z 2 125 0"
    (tmp_path / "z.hea").write_text("\n".join(header))
    with pytest.raises(DataError, match=r"holds no samples: .*z\.hea gives a length of 0"):
        read_recording(tmp_path / "z")


def test_a_record_name_wfdb_cannot_read_is_named(tmp_path: Path):
    """wfdb drops non-ASCII characters from a header's names: record "rëc" was reported as
    missing its signal file "rc.mat" beside the "rëc.dat" that is there."""
    from innpar_freia.data.recordings import read_recording

    rng = np.random.default_rng(0)
    signals = {"units": ["NU", "mmHg"], "sig_name": ["PLETH", "ABP"], "fmt": ["16", "16"]}
    wfdb.wrsamp("rec", fs=125, p_signal=rng.random((500, 2)), write_dir=str(tmp_path), **signals)
    header = (tmp_path / "rec.hea").read_text().replace("rec", "rëc")
    (tmp_path / "rëc.hea").write_text(header)
    (tmp_path / "rec.dat").rename(tmp_path / "rëc.dat")
    with pytest.raises(DataError, match="record name 'rëc' has characters that WFDB names"):
        read_recording(tmp_path / "rëc")


def test_a_wfdb_header_with_a_byte_order_mark_is_read(tmp_path: Path, recs) -> None:
    """A header saved as "UTF-8 with BOM" was refused with the mark in the record name
    ('\ufeffr0' has characters WFDB names may not have ... rename the record): wrong
    advice for a file wfdb reads."""
    base = write_wfdb(tmp_path / "db", "r0", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    header = base.with_suffix(".hea")
    header.write_bytes(b"\xef\xbb\xbf" + header.read_bytes())
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "wfdb", tmp_path / "db", "--out", out)
    assert result.exit_code == 0, result.output
    assert set(read_info(out).subjects) == {"r0"}


# ------------------------------------------------------------- what a folder import finds


def test_a_folder_import_follows_linked_folders_and_any_suffix_case(tmp_path: Path, recs) -> None:
    """``rglob`` skipped records in a symlinked folder and ``B.CSV`` without a word (a
    single-file import of ``B.CSV`` worked); a link loop must still end."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_csv(elsewhere / "r0.csv", {"PPG": recs[0].ppg, "ABP": recs[0].abp})
    root = tmp_path / "db"
    root.mkdir()
    write_csv(root / "B.CSV", {"PPG": recs[1].ppg, "ABP": recs[1].abp})
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(root, target_is_directory=True)
    report = import_recordings("csv", root, tmp_path / "o.h5")
    assert sorted(s.id for s in report.sources) == ["B", "linked/r0"]
    assert set(read_info(tmp_path / "o.h5").subjects) == {"B", "linked/r0"}


def test_a_subfolder_that_cannot_be_read_is_named_not_skipped(
    tmp_path: Path, recs, no_access
) -> None:
    """os.walk skipped a folder it could not list without a word: the import said "1 kept"
    and its records were never mentioned."""
    root = tmp_path / "db"
    write_wfdb(root, "r0", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    write_wfdb(root / "sub", "r1", {"PLETH": recs[1].ppg, "ABP": recs[1].abp})
    no_access(root / "sub")
    out = tmp_path / "o.h5"
    for extra in ((), ("--skip-bad-records",)):
        result = run_cli("data", "import", "wfdb", root, "--out", out, *extra)
        assert_clean_failure(result, out, f"cannot read folder {root / 'sub'}: Permission denied")


def test_a_wfdb_header_in_capitals_is_named_not_skipped(tmp_path: Path, recs) -> None:
    base = write_wfdb(tmp_path / "db", "r0", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    base.with_suffix(".hea").rename(base.with_suffix(".HEA"))
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "wfdb", tmp_path / "db", "--out", out)
    assert_clean_failure(result, out, "r0.HEA: wfdb reads headers named .hea (lower case)")


def test_innpar_npy_windows_in_capitals_are_imported(tmp_path: Path) -> None:
    made = _npy_folder(tmp_path / "lay")
    name = sorted(made)[0]
    for sub in ("ppg", "abp"):
        (tmp_path / "lay" / sub / f"{name}.npy").rename(tmp_path / "lay" / sub / f"{name}.NPY")
    report = import_innpar_npy(tmp_path / "lay", tmp_path / "o.h5")
    assert report.windows_kept == len(made) == 6
    assert name in read_info(tmp_path / "o.h5").window_ids
    # A file given where the folder belongs says so ("folder not found" before).
    with pytest.raises(DataError, match="is a file; innpar-npy imports a folder"):
        import_innpar_npy(tmp_path / "lay" / "ppg" / f"{name}.NPY", tmp_path / "p.h5")


def test_an_abp_channel_in_kpa_is_converted_to_mmhg(tmp_path: Path, recs) -> None:
    """Kept in kPa with a warning, the record was then rejected as out of range (median
    15.5 "mmHg"), and the warning was lost when no window was kept."""
    rec = recs[0]
    mmhg = write_wfdb(tmp_path / "a", "r0", {"PLETH": rec.ppg, "ABP": rec.abp})
    kpa = tmp_path / "b"
    kpa.mkdir()
    wfdb.wrsamp("r0", fs=FS_IN, units=["NU", "kPa"], sig_name=["PLETH", "ABP"],
                p_signal=np.column_stack([rec.ppg, rec.abp / 7.500617]), fmt=["16", "32"],
                write_dir=str(kpa))  # fmt: skip
    ref = import_recordings("wfdb", mmhg, tmp_path / "a.h5")
    got = import_recordings("wfdb", kpa / "r0", tmp_path / "b.h5")
    assert got.windows_kept == ref.windows_kept > 0
    assert got.warnings == ["r0: ABP channel 'ABP' was in 'kPa': converted to mmHg (x 7.50062)"]
    converted, direct = read_signals(tmp_path / "b.h5")[1], read_signals(tmp_path / "a.h5")[1]
    np.testing.assert_allclose(converted, direct, atol=0.01)
    # A channel in another unit is taken as mmHg; when nothing is kept, the error says it.
    volts = tmp_path / "c"
    volts.mkdir()
    wfdb.wrsamp("r0", fs=FS_IN, units=["NU", "mV"], sig_name=["PLETH", "ABP"],
                p_signal=np.column_stack([rec.ppg, rec.abp / 100]), fmt=["16", "32"],
                write_dir=str(volts))  # fmt: skip
    with pytest.raises(
        DataError, match="warning: r0: ABP channel 'ABP' is in 'mV', not a pressure"
    ):
        import_recordings("wfdb", volts / "r0", tmp_path / "c.h5")


def test_a_ppg_channel_that_is_a_pressure_is_warned_of_on_import(tmp_path: Path, recs) -> None:
    """Only the ABP's unit was checked: ``--ppg-channel ABP`` imported the arterial pressure
    as the PPG without a word (reconstruct warns of it by the same rule)."""
    rec = recs[0]
    base = write_wfdb(tmp_path / "db", "r0", {"PLETH": rec.ppg, "ABP": rec.abp, "ART": rec.abp})
    out = tmp_path / "w.h5"
    result = run_cli("data", "import", "wfdb", base, "--out", out, "--json",
                     "--ppg-channel", "ABP", "--abp-channel", "ART")  # fmt: skip
    assert result.exit_code == 0, result.output
    said = (
        "r0: PPG channel 'ABP' is in 'mmHg' (a pressure unit, as the file declares) and is "
        "named as arterial pressure channels are: it looks like an arterial blood pressure, "
        "not a PPG. If it is not the PPG, name the PPG with --ppg-channel PLETH"
    )
    assert [w for w in json.loads(result.stdout)["warnings"] if "PPG channel" in w] == [
        f"{said} (its channels: PLETH, ABP, ART)"
    ]
    assert import_recordings("wfdb", base, tmp_path / "ok.h5").warnings == []


def test_an_output_rate_the_quality_control_cannot_use_is_refused(tmp_path: Path, recs) -> None:
    """``--fs 1`` ended in a ValueError traceback from the band-pass filter."""
    path = write_csv(tmp_path / "r.csv", {"PPG": recs[0].ppg, "ABP": recs[0].abp})
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "csv", path, "--out", out, "--fs", "1")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'--fs': 1.0 is not in the range 16<=x<=100000" in result.output
    assert not out.exists()


def test_resampling_keeps_a_record_s_first_samples_at_its_level(tmp_path: Path, recs) -> None:
    """Zero padding (bp-benchmark's, ``--edges zeros``) pulls the first samples of each
    record's first window towards 0 mmHg; the default extends the signal by a line."""
    rec = recs[0]
    path = write_csv(tmp_path / "r.csv", {"PPG": rec.ppg, "ABP": rec.abp})
    raw = rec.abp[0:16:2]  # 250 Hz to 125 Hz
    first = {}
    for edges in ("line", "zeros"):
        out = tmp_path / f"{edges}.h5"
        result = run_cli("data", "import", "csv", path, "--out", out, "--edges", edges)
        assert result.exit_code == 0, result.output
        info = read_info(out)
        assert info.provenance["options"]["edges"] == edges
        assert info.start[0] == 0
        first[edges] = np.abs(read_signals(out)[1][0, :8] - raw).max()
    assert first["line"] < 2.0 < 10.0 < first["zeros"], first


def test_a_wfdb_header_that_disagrees_with_its_signal_file_is_refused(tmp_path: Path, recs) -> None:
    """A header declaring fewer samples than its signal file holds imported part of the
    record without a word (31 windows of 65); one declaring fewer signals read the samples
    interleaved wrongly and rejected the record as "ABP median 2.1 mmHg"; a checksum that
    the samples do not add up to was not looked at."""
    rec = recs[0]
    base = write_wfdb(tmp_path / "db", "r0", {"II": rec.abp * 0, "PLETH": rec.ppg, "ABP": rec.abp})
    header = base.with_suffix(".hea")
    good = header.read_text()
    lines = good.splitlines(keepends=True)
    n = rec.abp.size
    out = tmp_path / "o.h5"
    header.write_text(good.replace(f"r0 3 250 {n}", "r0 3 250 5000", 1))
    assert_clean_failure(
        run_cli("data", "import", "wfdb", base, "--out", out),
        out,
        f"signal file {base.with_suffix('.dat')} holds more than {header} declares",
        f"room for {n} samples of its 3 signal(s)",
        "describes 5000 samples",
    )
    header.write_text(lines[0].replace("r0 3 ", "r0 2 ", 1) + "".join(lines[2:]))
    assert_clean_failure(
        run_cli("data", "import", "wfdb", base, "--out", out),
        out,
        f"room for {n * 3 // 2} samples of its 2 signal(s)",
        "too few samples or too few signals",
    )
    fields = lines[3].split()
    fields[6] = str((int(fields[6]) + 32769) % 65536 - 32768)  # the checksum, one more
    header.write_text("".join(lines[:3]) + " ".join(fields) + "\n")
    assert_clean_failure(
        run_cli("data", "import", "wfdb", base, "--out", out),
        out,
        "the samples of signal 'ABP' do not match the checksum",
        f"({fields[6]}; the samples give ",
    )
    header.write_text(good)
    assert run_cli("data", "import", "wfdb", base, "--out", out).exit_code == 0


def test_a_multi_segment_master_must_agree_with_its_segments_lengths(tmp_path: Path, recs) -> None:
    """The master's length of a segment was taken over the segment's own: the rest of a
    longer segment was dropped and the record spliced across the cut, without a word."""
    rec = recs[2]
    root = tmp_path / "db"
    half = _halves(root, rec, "m_")
    (root / "m.hea").write_text(f"m/2 2 250 {2 * half - 1000}\nm_1 {half - 1000}\nm_2 {half}\n")
    out = tmp_path / "o.h5"
    assert_clean_failure(
        run_cli("data", "import", "wfdb", root / "m", "--out", out),
        out,
        f"gives segment m_1 {half - 1000} samples, but {root / 'm_1.hea'} gives it {half}",
    )
    # The record's length must be its segments' (shorter cut the record without a word).
    for total in (2 * half - 1000, 2 * half + 1000):
        (root / "m.hea").write_text(f"m/2 2 250 {total}\nm_1 {half}\nm_2 {half}\n")
        assert_clean_failure(
            run_cli("data", "import", "wfdb", root / "m", "--out", out),
            out,
            f"gives the record {total} samples, but its segments' lengths add up to {2 * half}",
        )


def test_the_checksums_of_a_multi_segment_record_s_segments_are_checked(
    tmp_path: Path, recs
) -> None:
    """Only a single-segment record's checksums were checked: a segment whose samples do
    not add up to its header's checksum (a damaged signal file) was read as signal through
    its master, with or without a gap ("~") in the layout. The error names the record, the
    segment, the signal and its header, as a single record's does."""
    rec = recs[2]
    root = tmp_path / "db"
    half = _halves(root, rec, "m_")
    masters = {
        "m": (f"m/2 2 250 {2 * half}\nm_1 {half}\nm_2 {half}\n", 2 * half),
        "g": (f"g/3 2 250 {2 * half + 1250}\nm_1 {half}\n~ 1250\nm_2 {half}\n", 2 * half + 1250),
    }
    for name, (text, length) in masters.items():
        (root / f"{name}.hea").write_text(text)
        assert read_wfdb(root / name).n_samples == length  # intact: read
    segment = root / "m_2.hea"
    lines = segment.read_text().splitlines(keepends=True)
    fields = lines[2].split()  # the ABP line
    assert fields[-1] == "ABP" and int(fields[6]) != 0
    fields[6] = str((int(fields[6]) + 32769) % 65536 - 32768)  # the checksum, one more
    segment.write_text("".join(lines[:2]) + " ".join(fields) + "\n" + "".join(lines[3:]))
    for name in masters:
        out = tmp_path / f"{name}.h5"
        assert_clean_failure(
            run_cli("data", "import", "wfdb", root / name, "--out", out),
            out,
            f"WFDB record {root / name}, segment m_2: the samples of signal 'ABP' do not "
            f"match the checksum in {segment} ({fields[6]}; the samples give ",
            "the signal file or the header is damaged",
        )
    segment.write_text("".join(lines))
    assert run_cli("data", "import", "wfdb", root / "m", "--out", tmp_path / "ok.h5").exit_code == 0


def test_a_gap_in_a_fixed_layout_multi_segment_record_is_read_as_nan(tmp_path: Path, recs) -> None:
    """A "~" segment of a fixed-layout record failed inside wfdb ("'NoneType' object has
    no attribute 'p_signal'"); gaps read as NaN, as in a variable-layout record."""
    rec = recs[2]
    root = tmp_path / "db"
    half = _halves(root, rec, "g_")
    (root / "g.hea").write_text(f"g/3 2 250 {2 * half + 1250}\ng_1 {half}\n~ 1250\ng_2 {half}\n")
    raw = read_wfdb(root / "g")
    assert raw.n_samples == 2 * half + 1250 and raw.units["ABP"] == "mmHg"
    abp = raw.signals["ABP"]
    assert np.isnan(abp[half : half + 1250]).all() and not np.isnan(abp[:half]).any()
    np.testing.assert_allclose(abp[half + 1250 :], rec.abp[half : 2 * half], atol=0.01)
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "wfdb", root, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    (source,) = json.loads(result.stdout)["sources"]
    assert source["id"] == "g" and source["windows_kept"] >= 5


def test_a_multi_segment_record_s_base_time_is_the_master_header_s(tmp_path: Path, recs) -> None:
    """The base time and date of a fixed-layout record with a gap are its master header's
    (``08:15:00 02/03/2023``), not its first segment's (none): ``innpar reconstruct``
    writes them into its output."""
    rec = recs[2]
    root = tmp_path / "db"
    half = _halves(root, rec, "g_")
    (root / "g.hea").write_text(
        f"g/3 2 250 {2 * half + 1250} 08:15:00 02/03/2023\ng_1 {half}\n~ 1250\ng_2 {half}\n"
    )
    raw = read_wfdb(root / "g")
    assert (raw.meta["base_time"], raw.meta["base_date"]) == ("08:15:00", "2023-03-02")
    (root / "g.hea").write_text(f"g/3 2 250 {2 * half + 1250}\ng_1 {half}\n~ 1250\ng_2 {half}\n")
    assert "base_time" not in read_wfdb(root / "g").meta


def test_an_abp_channel_in_hpa_or_mbar_is_converted_and_mm_hg_spelt_apart_is_mmhg(
    tmp_path: Path, recs
) -> None:
    """hPa and mbar were taken as mmHg (a third too high) with a warning that they were
    "not a pressure unit"; "mm Hg" in a CSV's units row is mmHg, with no warning."""
    rec = recs[0]
    ref = import_recordings(
        "wfdb",
        write_wfdb(tmp_path / "a", "r0", {"PLETH": rec.ppg, "ABP": rec.abp}),
        tmp_path / "a.h5",
    )
    direct = read_signals(tmp_path / "a.h5")[1]
    for unit in ("hPa", "mbar"):
        folder = tmp_path / unit
        folder.mkdir()
        wfdb.wrsamp("r0", fs=FS_IN, units=["NU", unit], sig_name=["PLETH", "ABP"],
                    p_signal=np.column_stack([rec.ppg, rec.abp / 0.7500617]), fmt=["16", "32"],
                    write_dir=str(folder))  # fmt: skip
        got = import_recordings("wfdb", folder / "r0", tmp_path / f"{unit}.h5")
        assert got.warnings == [
            f"r0: ABP channel 'ABP' was in '{unit}': converted to mmHg (x 0.750062)"
        ]
        assert got.windows_kept == ref.windows_kept > 0
        np.testing.assert_allclose(read_signals(tmp_path / f"{unit}.h5")[1], direct, atol=0.01)
    path = tmp_path / "c.csv"
    lines = ["time,PLETH,ABP", "s,NU,mm Hg"]
    lines += [
        f"{i / FS_IN!r},{p!r},{a!r}"
        for i, (p, a) in enumerate(zip(rec.ppg.tolist(), rec.abp.tolist(), strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")
    got = import_recordings("csv", path, tmp_path / "c.h5")
    assert got.warnings == [] and got.windows_kept == ref.windows_kept


def test_windows_too_short_for_the_beats_are_said_to_be_too_short_not_a_wrong_rate(
    tmp_path: Path, recs
) -> None:
    """Record 85 cut into 0.5-s windows lost all 665 as "few_beats", and the error blamed
    the sampling rate; the rate is right, the windows cannot hold two beats."""
    path = write_csv(tmp_path / "a.csv", {"PPG": recs[0].ppg, "ABP": recs[0].abp})
    out = tmp_path / "a.h5"
    result = run_cli("data", "import", "csv", path, "--out", out, "--window-seconds", "0.5")
    assert_clean_failure(
        result,
        out,
        "few_beats; most were rejected for their beats: a 0.5-s window is too short to hold "
        "the 2 beats quality control needs (3.4 s at 35 bpm, the slowest heart rate it "
        "accepts): use longer windows (--window-seconds)",
    )
    assert "sampling rate" not in result.output


def test_a_csv_that_starts_with_lines_that_are_not_its_table_says_where_the_header_is(
    tmp_path: Path, recs
) -> None:
    """A device's export (``Device: X``, ``Sampling rate: 250 Hz``, a blank line, then the
    table) was refused as "row 3 has 0 values, the header has 1"."""
    table = write_csv(tmp_path / "t.csv", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    path = tmp_path / "a.csv"
    path.write_text("Device: X\nSampling rate: 250 Hz\n\n" + table.read_text())
    out = tmp_path / "a.h5"
    assert_clean_failure(
        run_cli("data", "import", "csv", path, "--out", out),
        out,
        "seems to start with 3 line(s) that are not its table ('Device: X'; 'Sampling rate: "
        "250 Hz'; ''): its header seems to be line 4 (time, PLETH, ABP); remove the lines",
    )


def test_a_csv_of_semicolons_and_decimal_commas_is_named_so_not_as_lines_above_its_table(
    tmp_path: Path, recs
) -> None:
    """A spreadsheet's export in a European locale (``time;PLETH;ABP`` over ``0,0000;2,01;
    80,5``) was split at its decimal commas into rows wider than the header, and refused
    with advice to remove the header as a line above the table."""
    table = write_csv(tmp_path / "t.csv", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    path = tmp_path / "eu.csv"
    path.write_text(table.read_text().replace(",", ";").replace(".", ","))
    out = tmp_path / "eu.h5"
    result = run_cli("data", "import", "csv", path, "--input-fs", "250", "--out", out)
    assert_clean_failure(
        result,
        out,
        "its columns are separated by semicolons and its numbers have decimal commas",
    )
    assert "save it with ',' between columns and '.' as the decimal separator" in result.output
    assert "remove the lines above it" not in result.output


def test_a_csv_that_is_not_utf8_is_named_so_with_how_to_save_it(tmp_path: Path, recs) -> None:
    """A spreadsheet's Latin-1 export (a 'µV' in the header) was refused with the decoder's
    "'utf-8' codec can't decode byte 0xb5 in position 11: invalid start byte"."""
    table = write_csv(tmp_path / "t.csv", {"PLETH": recs[0].ppg, "ABP": recs[0].abp})
    path = tmp_path / "latin.csv"
    path.write_bytes(table.read_text().replace("PLETH", "PLETH \u00b5V").encode("latin-1"))
    out = tmp_path / "latin.h5"
    result = run_cli("data", "import", "csv", path, "--input-fs", "250", "--out", out)
    assert_clean_failure(
        result,
        out,
        "latin.csv is not UTF-8 text: line 1 holds byte 0xb5 ('\u00b5' in Latin-1 or "
        "Windows-1252), which UTF-8 does not allow there; save it as UTF-8",
    )
    assert "codec" not in result.output


def test_a_column_named_t_that_does_not_increase_is_a_channel_when_the_rate_is_given(
    tmp_path: Path, recs
) -> None:
    """A temperature column "T" was forced as the time column even with --input-fs given,
    and the import refused with advice to remove the column."""
    rec = recs[0]
    temperature = 36.5 + 0.1 * np.sin(np.arange(rec.ppg.size) / 500)
    path = write_csv(tmp_path / "a.csv", {"PLETH": rec.ppg, "ABP": rec.abp, "T": temperature}, None)
    out = tmp_path / "a.h5"
    result = run_cli("data", "import", "csv", path, "--out", out, "--input-fs", "250")
    assert result.exit_code == 0, result.output
    assert (
        "column 'T' does not increase, so it is read as a channel, not as time (the rate "
        "given is used)"
    ) in result.output
    assert read_info(out).window_length == 625
    # A "t" that is time (it increases) is still the time column, and checked against the rate.
    channels = {"t": np.arange(rec.ppg.size) / 125, "PLETH": rec.ppg, "ABP": rec.abp}
    times = write_csv(tmp_path / "b.csv", channels, None)
    result = run_cli("data", "import", "csv", times, "--out", tmp_path / "b.h5", "--input-fs", 250)
    assert result.exit_code == 1 and "contradicts the time column 't'" in result.output


def test_a_second_time_column_is_the_clock_in_another_unit_or_is_refused(
    tmp_path: Path, recs
) -> None:
    """A CSV with two time columns (time and time_ms, t and time) took the first as the
    clock and read the second as a channel, and a second one that said other times went
    unseen. A second time column that says the first's times (from their first rows, each
    in its own unit, to a quarter of a sample period) is that clock, not a channel; one that
    says others is refused, naming both columns and the row. A "T" that does not increase
    beside a clock is still a channel (a temperature)."""
    rec = recs[0]
    k = np.arange(rec.ppg.size)
    signals = {"PLETH": rec.ppg, "ABP": rec.abp}
    one = write_csv(tmp_path / "one.csv", signals)
    temperature = 36.5 + 0.1 * np.sin(k / 500)
    jitter = np.where(k == 100, 0.9, 0.0)  # ms: a timestamp rounded, within a quarter period
    agree = {
        "ms": {"time": k / FS_IN, "time_ms": 4.0 * k, **signals},
        "t": {"t": k / FS_IN, "time": k / FS_IN + jitter / 1000, **signals},
        "unix": {"Elapsed time": 10 + k / FS_IN, "timestamp_ms": 1.7e12 + 4.0 * k + jitter,
                 **signals, "T": temperature},
    }  # fmt: skip
    for name, columns in agree.items():
        got = read_csv(write_csv(tmp_path / f"{name}.csv", columns, None))
        clock = next(iter(columns))
        assert got.fs == FS_IN and got.meta["time_column"] == clock, name
        assert got.meta["start_s"] == columns[clock][0], name
        assert got.channels == ["PLETH", "ABP", *(["T"] if name == "unix" else [])], name
    out, base = tmp_path / "ms.h5", tmp_path / "one.h5"
    assert run_cli("data", "import", "csv", tmp_path / "ms.csv", "--out", out).exit_code == 0
    assert run_cli("data", "import", "csv", one, "--out", base).exit_code == 0
    for a, b in zip(read_signals(out), read_signals(base), strict=True):
        np.testing.assert_array_equal(a, b)

    disagree = {
        "8ms": ({"time": k / FS_IN, "time_ms": 8.0 * k, **signals},
                "at row 3, 'time' says 0.004 s and 'time_ms' 0.008 s"),
        "late": ({"t": k / FS_IN, "time": k / FS_IN + np.where(k == 100, 0.0015, 0.0), **signals},
                 "at row 102, 't' says 0.4 s and 'time' 0.4015 s"),
        "counter": ({"time_ms": 4.0 * k, "t": k.astype(float), **signals},
                    "at row 3, 'time_ms' says 0.004 s and 't' 1 s"),
    }  # fmt: skip
    for name, (columns, where) in disagree.items():
        path = write_csv(tmp_path / f"{name}.csv", columns, None)
        out = tmp_path / f"{name}.h5"
        assert_clean_failure(
            run_cli("data", "import", "csv", path, "--out", out),
            out,
            f"{path} has two time columns that disagree: {where} (from their first rows); "
            "remove the one that is not the recording's time, or rename it if it is no time",
        )


def test_a_folder_without_the_format_s_files_names_the_recordings_it_has(tmp_path: Path) -> None:
    """A folder of .npz recordings imported as csv said only "has no .csv files"; it names
    what it has and the command that imports it. A folder with neither says no more."""
    folder = tmp_path / "recs"
    folder.mkdir()
    for k in range(2):
        np.savez(folder / f"r{k}.npz", PLETH=np.zeros(10), ABP=np.zeros(10), fs=125.0)
    out = tmp_path / "o.h5"
    assert_clean_failure(
        run_cli("data", "import", "csv", folder, "--out", out),
        out,
        f"{folder} has no .csv files (it has 2 .npz files: import them with 'innpar data "
        f"import npz {folder}')",
    )
    (folder / "r0.npz").unlink()
    (folder / "r1.npz").rename(folder / "notes.txt")
    result = run_cli("data", "import", "wfdb", folder, "--out", out)
    assert result.exit_code == 1
    assert f"Error: {folder} has no WFDB records (.hea files)\n" in result.output


def _csv_variants(tmp_path: Path) -> dict[str, Path]:
    """Tables of numbers as devices and scripts write them, each a file."""
    k = np.arange(2000)
    ppg = [str(v) for v in np.round(np.sin(k / 20.0), 4)]
    abp = [str(v) for v in np.round(90 + 20 * np.sin(k / 20.0 + 1), 2)]
    seconds = [f"{v / 125:.3f}" for v in k]
    holed = ["nan" if j % 97 == 0 else v for j, v in enumerate(ppg)]
    tables = {
        "seconds": ("time,PLETH,ABP", [seconds, ppg, abp]),
        "units": ("time,PLETH,ABP\ns,NU,mmHg", [seconds, ppg, abp]),
        "unix": ("time,PLETH,ABP", [[f"{1.7e9 + v / 125:.3f}" for v in k], ppg, abp]),
        "ms": ("time_ms,PPG,ART", [[str(8 * v) for v in k], ppg, abp]),
        "no_time": ("PLETH,ABP", [ppg, abp]),
        "nan": ("time,PLETH,ABP", [seconds, holed, abp]),
        # Two clocks: one in two units (by their names, by a units row), then two that
        # disagree (a rate of 125 Hz in seconds, 250 Hz in ms).
        "two_clocks": ("time,time_ms,PLETH,ABP", [seconds, [str(8 * v) for v in k], ppg, abp]),
        "clocks_units": (
            "t,Time,PLETH,ABP\ns,ms,NU,mmHg",
            [seconds, [str(8 * v) for v in k], ppg, abp],
        ),
        "clocks_disagree": ("time,time_ms,PLETH,ABP", [seconds, [str(4 * v) for v in k], ppg, abp]),
    }
    out = {}
    for name, (head, columns) in tables.items():
        out[name] = tmp_path / f"{name}.csv"
        lines = map(",".join, zip(*columns, strict=True))
        out[name].write_text(head + "\n" + "\n".join(lines) + "\n")
    crlf = out["seconds"].read_text().rstrip("\n").replace("\n", "\r\n")  # no last line end
    out["crlf"] = tmp_path / "crlf.csv"
    out["crlf"].write_bytes(crlf.encode())
    return out


def test_csv_tables_of_numbers_are_read_in_c_as_the_careful_reader_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The careful reader held every cell as text: a 24-hour recording at 250 Hz (a 505 MB
    CSV) took 9.9 GB. A table of numbers is read by numpy's parser (a 6-hour one, 124 MB:
    0.8 GB and 5.6 s against 2.5 GB and 18 s, AMD EPYC), with the same channels, rate,
    units, clock and warnings as the careful reader gives. Guards against the fast reader
    being skipped for such files, or reading them differently."""
    from innpar_freia.data import recordings

    numeric, careful = recordings._numeric_table, recordings._careful_table

    def not_careful(path):
        raise AssertionError(f"{path} was read cell by cell")

    def read(path, fs):  # the recording, or the message it is refused with
        try:
            return read_csv(path, fs=fs)
        except DataError as exc:
            return str(exc)

    for name, path in _csv_variants(tmp_path).items():
        fs = 125.0 if name == "no_time" else None
        monkeypatch.setattr(recordings, "_careful_table", not_careful)
        fast = read(path, fs)
        monkeypatch.setattr(recordings, "_careful_table", careful)
        monkeypatch.setattr(recordings, "_numeric_table", lambda path: None)
        slow = read(path, fs)
        monkeypatch.setattr(recordings, "_numeric_table", numeric)
        if name == "clocks_disagree":
            assert isinstance(fast, str) and fast == slow, (name, fast, slow)
            assert "two time columns that disagree: at row 3, 'time' says 0.008 s and " \
                   "'time_ms' 0.004 s" in fast  # fmt: skip
            continue
        assert (fast.fs, fast.units, fast.meta) == (slow.fs, slow.units, slow.meta), name
        assert list(fast.signals) == list(slow.signals), name
        for k in fast.signals:
            assert np.array_equal(fast.signals[k], slow.signals[k], equal_nan=True), (name, k)
    assert read_csv(tmp_path / "unix.csv").meta["start_s"] == 1.7e9
    for name in ("two_clocks", "clocks_units"):  # one clock in two units: no channel
        rec = read_csv(tmp_path / f"{name}.csv")
        assert (rec.fs, rec.channels) == (125.0, ["PLETH", "ABP"]), name
        assert set(rec.units) <= {"PLETH", "ABP"}, name  # a clock's unit is no channel's


@pytest.mark.parametrize(
    "text",
    [
        "'time','PLETH'\n0,1\n0.008,2\n",  # PhysioNet's quoted names
        "time,PLETH\n0,1\n\n0.008,2\n",  # a blank line between rows (refused, not skipped)
        "time,PLETH\n0,1\n0.008,2\n\n",  # a blank line after them (dropped)
        "time,PLETH\n0,1\n0.008,\n",  # an empty cell (a gap)
        "time,PLETH\n0,1\n0.008,n/a\n",  # a mark of a missing value
        "time,PLETH,\n0,1,\n0.008,2,\n",  # a spreadsheet's trailing comma
        "time,time\n0,1\n0.008,2\n",  # names twice (refused)
        "time;PLETH\n0;1\n0.008;2\n",  # semicolons (refused)
    ],
)
def test_csv_files_that_are_not_plain_tables_of_numbers_take_the_careful_reader(
    tmp_path: Path, text: str
) -> None:
    """numpy's parser skips blank lines and knows no quotes, missing marks or units: such
    files are read cell by cell, with the careful reader's checks and messages."""
    from innpar_freia.data.recordings import _numeric_table

    path = tmp_path / "x.csv"
    path.write_text(text)
    assert _numeric_table(path) is None


PERMISSION_TESTS = "without_read_permission or subfolder_that_cannot_be_read"
NO_OVERRIDE = ["--bounding-set=-dac_override,-dac_read_search",
               "--inh-caps=-dac_override,-dac_read_search"]  # fmt: skip


def test_the_permission_tests_run_as_root_too(tmp_path: Path) -> None:
    """Root reads any file, so the tests that take a file's permissions skip when run as
    root (as this project's CI is); that left them unrun where the suite runs. Here they
    run again without root's override (``setpriv``), and must pass, none skipped."""
    import shutil
    import subprocess
    import sys

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("not root, or no setpriv: the permission tests run as they are")
    if subprocess.run([setpriv, *NO_OVERRIDE, "true"], capture_output=True).returncode:
        pytest.skip("setpriv cannot drop capabilities here")
    proc = subprocess.run(
        [setpriv, *NO_OVERRIDE, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-k", PERMISSION_TESTS, str(Path(__file__))],
        capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=600,
    )  # fmt: skip
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert summary.startswith("7 passed") and "skipped" not in summary, summary


def test_a_csv_of_a_header_only_is_one_message_without_numpy_s_warning(tmp_path: Path) -> None:
    """Guards against numpy's "loadtxt: input contained no data" UserWarning printed on
    stderr (with its source line) before the one message that says the file has no rows."""
    import warnings

    path = tmp_path / "empty.csv"
    path.write_text("time,PLETH,ABP\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="but no data rows"):
            read_csv(path)


def test_a_checksum_mismatch_is_told_in_the_header_s_own_form(tmp_path: Path) -> None:
    """Guards against a checksum written 0-65535 (as some writers put it) set against a
    signed sum of the samples: "(43493; the samples give -5659)" read as two unrelated
    numbers. WFDB's own signed form stays signed."""
    from types import SimpleNamespace

    from innpar_freia.data.recordings import _check_checksums

    digital = np.array([[30000], [20000]])  # sums to 50000: -15536 signed
    for stated, given in ((40000, "50000"), (-1000, "-15536")):
        hdr = SimpleNamespace(sig_name=["ABP"], checksum=[stated])
        with pytest.raises(DataError, match=rf"\({stated}; the samples give {given}\)"):
            _check_checksums(tmp_path / "r1", hdr, digital)


def test_every_pressure_unit_converted_is_named_where_units_are_listed() -> None:
    """``reconstruct --help`` named kPa, cmH2O and Pa as converted, though hPa, mbar and
    mmH2O are too; the warning for another unit left out torr and mmH2O. Both name every
    unit of the conversion table."""
    import re as _re

    from click.testing import CliRunner

    from innpar_freia.cli import cli
    from innpar_freia.data.recording_importers import PRESSURE_UNITS, TO_MMHG, abp_in_mmhg

    assert sorted(u.lower() for u in PRESSURE_UNITS) == sorted(TO_MMHG)
    help_text = " ".join(CliRunner().invoke(cli, ["reconstruct", "--help"]).output.split())
    listed = _re.search(r"--reference-abp CHANNEL ABP channel of INPUT \(mmHg; one in ([^)]*)\)",
                        help_text).group(1)  # fmt: skip
    words = set(_re.findall(r"\w+", listed))
    assert {u for u in PRESSURE_UNITS if u not in ("mmHg", "torr")} <= words, listed
    _, warning = abp_in_mmhg(np.ones(3), "NU")
    assert all(f"{u}," in warning or f"{u})" in warning for u in PRESSURE_UNITS)
