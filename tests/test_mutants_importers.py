"""Tests that pin what a mutation audit of the recording importers
(innpar_freia.data.recording_importers: ``innpar data import wfdb/csv/npz`` of whole
recordings, their discovery, subjects, windows and provenance), of the import report
(innpar_freia.data.import_report: the counts, the warnings, the subject map and the
refusals every importer shares) and of the importer registry
(innpar_freia.data.importers) found unguarded: each one fails when the bug named in its
docstring is put into the package. Expected values are worked out by hand from tiny
recordings at the output rate (125 Hz in, 125 Hz out: no resampling), cut into 10-sample
windows without alignment or quality control, so that a window is kept exactly when it
holds no NaN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import write_csv, write_wfdb

from innpar_freia.data.import_report import (
    ImportReport,
    Progress,
    abp_units_warning,
    check_output,
    read_subject_map,
    summarise,
    unused_map_rows,
)
from innpar_freia.data.importers import import_data
from innpar_freia.data.recording_importers import import_recordings
from innpar_freia.data.store import read_info, read_signals
from innpar_freia.data.synthetic import synthesize_recording
from innpar_freia.errors import DataError

# Short windows, at the lowest rate and the shortest window import allows.
FS = 20.0
L = 10  # samples per window
PLAIN = {"input_fs": FS, "fs": FS, "window_s": L / FS, "align": False, "qc": False}


def recording(n: int, nan_at: tuple[int, ...] = (), abp_nan: bool = False) -> dict:
    """``n`` samples of PPG and ABP (about 100 mmHg), ABP NaN at ``nan_at`` (or all)."""
    i = np.arange(n, dtype=float)
    abp = 100 + 10 * np.cos(i)
    abp[list(nan_at)] = np.nan
    if abp_nan:
        abp[:] = np.nan
    return {"PPG": np.sin(i), "ABP": abp}


def three_records(root: Path) -> Path:
    """b: 20 samples, NaN at 15 -> windows at 0 and 10, the second rejected (nan);
    c: ABP all NaN -> the record is rejected (abp_nan);
    x/a: 35 samples, NaN at 12 -> windows at 0, 10, 20, the second rejected (nan)."""
    (root / "x").mkdir(parents=True)
    write_csv(root / "b.csv", recording(20, (15,)))
    write_csv(root / "c.csv", recording(20, abp_nan=True))
    write_csv(root / "x" / "a.csv", recording(35, (12,)))
    return root


class Recorded(Progress):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, total: int, label: str) -> None:
        self.calls.append(("start", total, label))

    def advance(self, item: str) -> None:
        self.calls.append(("advance", item))

    def finish(self) -> None:
        self.calls.append(("finish",))


# ---------------------------------------------------------------- counts of an import


def test_the_report_counts_windows_records_and_subjects(tmp_path: Path) -> None:
    """Kills: windows_kept summing windows_total; windows_rejected counting only the last
    record's rejections; the report's 'rejected' windows as the number of reasons; records
    'kept' ignoring the rejected ones; records 'rejected_by_reason' of windows' reasons; a
    record's windows_kept = windows_total, or windows_total = windows_kept; a record's
    rejected windows dropped; n_subjects of records rather than subjects, or of windows, or
    0; a record with exactly one kept window not written; a source's subject not kept."""
    root = three_records(tmp_path / "db")
    smap = tmp_path / "map.csv"
    smap.write_text("record,subject\nb,S1\nc,S2\nx/a,S1\n")
    out = tmp_path / "o.h5"
    report = import_recordings("csv", root, out, subject_map=smap, **PLAIN)
    d = report.to_dict()
    assert d["windows"] == {"kept": 3, "rejected": 2, "rejected_by_reason": {"nan": 2}}
    assert d["records"] == {
        "total": 3,
        "kept": 2,
        "rejected": 1,
        "rejected_by_reason": {"abp_nan": 1},
    }
    assert d["n_subjects"] == 1  # S2's only record kept nothing
    b, c, a = d["sources"]
    assert b == {
        "id": "b",
        "path": str(root / "b.csv"),
        "subject": "S1",
        "status": "kept",
        "windows_total": 2,
        "windows_kept": 1,
        "rejected": {"nan": 1},
    }
    assert a["windows_total"] == 3 and a["windows_kept"] == 2 and a["rejected"] == {"nan": 1}
    assert c["status"] == "rejected" and c["reason"] == "abp_nan" and c["subject"] == "S2"
    assert c["windows_total"] == 0 and c["windows_kept"] == 0 and c["rejected"] == {}
    assert c["detail"]  # the reason in words
    info = read_info(out)
    assert list(info.window_ids) == ["b_000000", "x/a_000000", "x/a_000020"]
    assert list(info.start) == [0, 0, 20] and list(info.subjects) == ["S1"] * 3
    ppg, abp = read_signals(out)
    np.testing.assert_allclose(abp[2], recording(35)["ABP"][20:30], rtol=1e-6)
    np.testing.assert_allclose(ppg[2], np.sin(np.arange(20, 30)), atol=1e-6)


def test_the_provenance_keeps_the_options_the_summary_and_each_input(tmp_path: Path) -> None:
    """Kills: the provenance's options losing input_fs, skip_bad or subject_map; its
    summary emptied; an input's bytes not its size; the report's fs_source not
    'resampled'; the file's default description dropped."""
    root = three_records(tmp_path / "db")
    smap = tmp_path / "map.csv"
    smap.write_text("record,subject\nb,S1\nc,S2\nx/a,S1\n")
    out = tmp_path / "o.h5"
    report = import_recordings("csv", root, out, subject_map=smap, skip_bad=True, **PLAIN)
    assert report.fs_source == "resampled"
    info = read_info(out)
    prov = info.provenance
    assert prov["options"]["input_fs"] == FS
    assert prov["options"]["skip_bad"] is True
    assert prov["options"]["subject_map"] == str(smap)
    assert prov["summary"]["windows"]["kept"] == 3 and prov["summary"]["n_subjects"] == 1
    inputs = {i["path"]: i["bytes"] for i in prov["inputs"]}
    assert inputs == {
        "b.csv": (root / "b.csv").stat().st_size,
        "c.csv": (root / "c.csv").stat().st_size,
        "x/a.csv": (root / "x" / "a.csv").stat().st_size,
    }
    assert info.description == f"csv recordings imported from {root}"


def test_a_single_file_s_inputs_are_named_relative_to_its_folder(tmp_path: Path) -> None:
    """Kills: the provenance root of a single-file import being the file itself (its
    input then named by an absolute path, the source by the file)."""
    path = write_csv(tmp_path / "r.csv", recording(20))
    out = tmp_path / "o.h5"
    import_recordings("csv", path, out, time_column=None, **PLAIN)
    prov = read_info(out).provenance
    assert [i["path"] for i in prov["inputs"]] == ["r.csv"]
    assert prov["source"] == str(tmp_path.resolve())


def test_a_csv_time_column_named_by_the_user_is_used_and_recorded(tmp_path: Path) -> None:
    """Kills: time_column not passed to the CSV reader, and not recorded in the
    provenance's options."""
    rec = recording(175)
    path = write_csv(tmp_path / "r.csv", {"secs": np.arange(175) / 50.0, **rec})
    out = tmp_path / "o.h5"
    # The column 'secs' says 50 Hz: 175 samples are 3.5 s, 70 samples at 20 Hz, 7 windows.
    report = import_recordings(
        "csv", path, out, time_column="secs", fs=FS, window_s=L / FS, align=False, qc=False
    )
    assert report.sources[0].windows_total == 7
    assert read_info(out).provenance["options"]["time_column"] == "secs"


def test_the_defaults_of_the_python_api_are_recorded(tmp_path: Path) -> None:
    """Kills: import_recordings' default max_lag_s (2 s) or edges ('line') changed. The
    CLI passes its own values, so only the Python API used them, and only a test on the
    real data (skipped without it) saw the change."""
    rec = synthesize_recording(0, 40 / 60, 250.0, seed=5)
    path = tmp_path / "r.npz"
    np.savez(path, PPG=rec.ppg, ABP=rec.abp, fs=250.0)
    out = tmp_path / "o.h5"
    import_recordings("npz", path, out)
    options = read_info(out).provenance["options"]
    assert options["lag"]["max_lag_s"] == 2.0 and options["edges"] == "line"


def test_progress_is_told_of_every_record_once(tmp_path: Path) -> None:
    """Kills: progress started with one record too few; a record rejected for a missing
    channel (skip_bad) not advancing the progress, or counted as kept."""
    root = three_records(tmp_path / "db")
    write_csv(root / "d.csv", {"PPG": np.ones(10), "II": np.ones(10)})  # no ABP channel
    progress = Recorded()
    report = import_recordings("csv", root, tmp_path / "o.h5", skip_bad=True, progress=progress,
                               **PLAIN)  # fmt: skip
    assert progress.calls == [
        ("start", 4, "csv records"),
        ("advance", "b"),
        ("advance", "c"),
        ("advance", "d"),
        ("advance", "x/a"),
        ("finish",),
    ]
    assert report.to_dict()["records"]["rejected_by_reason"] == {"abp_nan": 1, "missing_channel": 1}
    assert report.to_dict()["records"]["kept"] == 2


def test_a_repeated_record_id_is_warned_of(tmp_path: Path) -> None:
    """Kills: the repeated-window-id warning of recording imports dropped. ``a.csv`` and
    ``a.CSV`` are both record ``a``: their first windows are both ``a_000000``."""
    root = tmp_path / "db"
    root.mkdir()
    write_csv(root / "a.csv", recording(10))
    write_csv(root / "a.CSV", recording(10))
    report = import_recordings("csv", root, tmp_path / "o.h5", **PLAIN)
    assert report.warnings == [
        "1 window id(s) occur more than once (e.g. a_000000); ids should be unique: see "
        "'innpar data check'"
    ]


# ------------------------------------------------------------------ what is imported


def test_a_single_file_named_in_capitals_is_imported(tmp_path: Path) -> None:
    """Kills: a single file's suffix compared with its case (``B.CSV`` refused as 'not a
    .csv file', though a folder import takes it)."""
    path = write_csv(tmp_path / "B.CSV", recording(20))
    report = import_recordings("csv", path, tmp_path / "o.h5", **PLAIN)
    assert [s.id for s in report.sources] == ["B"] and report.windows_kept == 2


def test_a_wfdb_record_named_by_its_dat_file_is_that_record(tmp_path: Path) -> None:
    """Kills: ``.dat`` left out of the suffixes a WFDB record path may end in (the record
    was then called ``r7.dat``)."""
    base = write_wfdb(tmp_path / "db", "r7", recording(20), fs=FS)
    report = import_recordings("wfdb", base.with_suffix(".dat"), tmp_path / "o.h5", **PLAIN)
    assert [s.id for s in report.sources] == ["r7"]
    assert list(read_info(tmp_path / "o.h5").window_ids) == ["r7_000000", "r7_000010"]


def test_a_wfdb_data_file_without_its_header_is_named(tmp_path: Path) -> None:
    """Kills: the 'WFDB header not found' refusal of a single record path dropped."""
    base = write_wfdb(tmp_path / "db", "r7", recording(20), fs=FS)
    base.with_suffix(".hea").unlink()
    with pytest.raises(DataError, match=r"WFDB header not found: .*r7\.hea"):
        import_recordings("wfdb", base.with_suffix(".dat"), tmp_path / "o.h5", **PLAIN)


def test_a_multi_segment_master_with_a_leading_comment_is_still_a_master(
    tmp_path: Path,
) -> None:
    """Kills: comment lines not skipped before a master header's record line (its
    segments were then imported again as records of their own)."""
    root = tmp_path / "db"
    write_wfdb(root, "m_0001", recording(20), fs=FS)
    write_wfdb(root, "m_0002", recording(20), fs=FS)
    (root / "m.hea").write_text("# two segments\nm/2 2 20 40\nm_0001 20\nm_0002 20\n")
    report = import_recordings("wfdb", root, tmp_path / "o.h5", **PLAIN)
    assert [s.id for s in report.sources] == ["m"]
    assert report.sources[0].windows_total == 4


def test_several_wfdb_headers_in_capitals_are_counted(tmp_path: Path) -> None:
    """Kills: the refusal of .HEA headers saying 'rename it' of several headers."""
    for name in ("r0", "r1"):
        base = write_wfdb(tmp_path / "db", name, recording(20), fs=FS)
        base.with_suffix(".hea").rename(base.with_suffix(".HEA"))
    with pytest.raises(DataError, match=r"r0.HEA: wfdb reads .* rename the 2 such headers$"):
        import_recordings("wfdb", tmp_path / "db", tmp_path / "o.h5", **PLAIN)


def test_an_output_that_is_a_wfdb_signal_file_is_refused_at_the_end(tmp_path: Path) -> None:
    """Kills: the provenance's refusal of an output that is one of the inputs dropped.
    Only the header is known before reading; a signal file the header names ``sig.h5``
    (which the writer's suffix rule lets through) was replaced with --force."""
    base = write_wfdb(tmp_path / "db", "r7", recording(20), fs=FS)
    header = base.with_suffix(".hea")
    header.write_text(header.read_text().replace("r7.dat", "sig.h5"))
    base.with_suffix(".dat").rename(base.parent / "sig.h5")
    signal = (base.parent / "sig.h5").read_bytes()
    with pytest.raises(DataError, match=r"output .*sig\.h5 is the input .*sig\.h5"):
        import_recordings("wfdb", base, base.parent / "sig.h5", overwrite=True, **PLAIN)
    assert (base.parent / "sig.h5").read_bytes() == signal
    assert sorted(p.name for p in base.parent.iterdir()) == ["r7.hea", "sig.h5"]


def test_an_unknown_recording_format_is_a_data_error(tmp_path: Path) -> None:
    """Kills: discover's refusal of an unknown format dropped (a KeyError then)."""
    write_csv(tmp_path / "r.csv", recording(20))
    with pytest.raises(DataError, match="unknown recording format 'tsv'"):
        import_recordings("tsv", tmp_path / "r.csv", tmp_path / "o.h5")


def test_an_eight_sample_window_is_allowed(tmp_path: Path) -> None:
    """Kills: the shortest window allowed raised from 8 to 9 samples. The ranges of fs and
    window_s (16 Hz, 0.5 s) allow no shorter one."""
    path = write_csv(tmp_path / "r.csv", recording(16))
    report = import_recordings("csv", path, tmp_path / "o.h5", input_fs=16, fs=16, window_s=0.5,
                               align=False, qc=False)  # fmt: skip
    assert report.window_length == 8 and report.windows_kept == 2
    with pytest.raises(DataError, match=r"window_s \(--window-seconds\) is 0.4375, not in the"):
        import_recordings("csv", path, tmp_path / "p.h5", input_fs=16, fs=16, window_s=7 / 16,
                          align=False, qc=False)  # fmt: skip


# -------------------------------------------------------------------------- subjects


def test_a_subject_map_matches_a_record_by_id_or_by_name(tmp_path: Path) -> None:
    """Kills: a record matched only by its full id (``x/a``), or only by its name
    (``a``)."""
    root = three_records(tmp_path / "db")
    smap = tmp_path / "map.csv"
    for rows, subject_a in (("b,S1\nc,S2\nx/a,S3\n", "S3"), ("b,S1\nc,S2\na,S4\n", "S4")):
        smap.write_text("record,subject\n" + rows)
        out = tmp_path / "o.h5"
        report = import_recordings("csv", root, out, subject_map=smap, **PLAIN)
        assert [s.subject for s in report.sources] == ["S1", "S2", subject_a]
        assert list(read_info(out).subjects) == ["S1", subject_a, subject_a]
        out.unlink()


def test_records_missing_from_a_subject_map_are_listed(tmp_path: Path) -> None:
    """Kills: the first five missing records listed as one; the 'and N more' dropped; the
    hint for a map naming records by their .csv file dropped."""
    root = tmp_path / "db"
    root.mkdir()
    for name in "abcdefg":
        write_csv(root / f"{name}.csv", recording(10))
    smap = tmp_path / "map.csv"
    smap.write_text("record,subject\nz.csv,S1\n")
    with pytest.raises(DataError) as err:
        import_recordings("csv", root, tmp_path / "o.h5", subject_map=smap, **PLAIN)
    assert str(err.value) == (
        f"subject map {smap} has no subject for record(s) a, b, c, d, e and 2 more; name "
        "records without the extension (z, not z.csv)"
    )


# ---------------------------------------------------------------- when nothing is kept


def test_when_no_window_is_kept_the_first_five_records_are_named(tmp_path: Path) -> None:
    """Kills: fewer than five records named; the 'and N more' dropped; the warnings left
    out of the error."""
    root = tmp_path / "db"
    root.mkdir()
    for name in "abcdef":
        write_csv(root / f"{name}.csv", recording(10, abp_nan=True))
    with pytest.raises(DataError) as err:
        import_recordings("csv", root, tmp_path / "o.h5", subject_map=None, **PLAIN)
    message = str(err.value)
    for name in "abcde":
        assert f"{name}: abp_nan (" in message
    assert "f: abp_nan" not in message and message.endswith("; and 1 more")
    # A warning (here: a subject-map row naming no record) is said in the error too.
    smap = tmp_path / "map.csv"
    smap.write_text("record,subject\n" + "".join(f"{n},S\n" for n in "abcdef") + "q,S\n")
    with pytest.raises(DataError, match=r"; warning: subject map .*: 1 row\(s\) name no record"):
        import_recordings("csv", root, tmp_path / "o.h5", subject_map=smap, **PLAIN)


# -------------------------------------------------------------- the report's helpers


def test_check_output_refusals() -> None:
    """Kills: an output that is a folder, or a device, or in a missing folder, not
    refused up front (each with its own message)."""
    with pytest.raises(DataError, match="is a directory; give a file name"):
        check_output(Path("/tmp"), overwrite=True)
    with pytest.raises(DataError, match="exists and is not a regular file"):
        check_output(Path("/dev/null"), overwrite=True)
    with pytest.raises(DataError, match="output directory /nonexistent-dir does not exist"):
        check_output(Path("/nonexistent-dir/o.h5"), overwrite=False)


def test_unused_map_rows_names_five_and_counts_the_rest() -> None:
    """Kills: fewer than five rows named; the 'and N more' dropped."""
    assert unused_map_rows("m.csv", list("abcdefg"), "record") == (
        "subject map m.csv: 7 row(s) name no record here (a, b, c, d, e and 2 more)"
    )


def test_subject_map_columns_and_rows(tmp_path: Path) -> None:
    """Kills: 'id' not accepted as the key column; the separator hint given for a header
    of several columns; the row number of an empty cell off by one; a row with a record
    but no subject accepted; a record mapped to two subjects accepted (the last one won);
    a header without rows accepted."""
    smap = tmp_path / "m.csv"
    smap.write_text("id,subject\nr1,S1\n")
    assert read_subject_map(smap) == {"r1": "S1"}
    smap.write_text("rec;ord,subj\nr1,S1\n")
    with pytest.raises(DataError) as err:
        read_subject_map(smap)
    assert "it has: rec;ord, subj" in str(err.value) and "separated by" not in str(err.value)
    smap.write_text("record,subject\nr1,S1\nr2,\n")
    with pytest.raises(DataError, match=r"row 3 has an empty record or subject"):
        read_subject_map(smap)
    smap.write_text("record,subject\nr1,S1\nr1,S2\n")
    with pytest.raises(DataError, match="'r1' is mapped to two subjects"):
        read_subject_map(smap)
    smap.write_text("record,subject\n")
    with pytest.raises(DataError, match="has no rows"):
        read_subject_map(smap)


def test_summarise_counts_folds_from_zero_and_named_splits() -> None:
    """Kills: fold 0 left out of the fold counts; windows of no split ('') counted as a
    split; n_subjects counting windows."""
    report = ImportReport("x", "src", "out", 125.0, "given", 10)
    summarise(report, ["a", "a", "b", "c"], [0, 0, 1, -1], ["train", "", "test", "train"])
    assert report.n_subjects == 3
    assert report.folds == {"0": 2, "1": 1}
    assert report.splits == {"test": 1, "train": 2}


def test_abp_units_warning_bounds() -> None:
    """Kills: the plausible median ABP range 20-250 mmHg widened at either end."""
    assert abp_units_warning(np.array([20.0]), "f") is None
    assert abp_units_warning(np.array([250.0]), "f") is None
    assert "median ABP is 260" in abp_units_warning(np.array([260.0]), "f")
    assert "median ABP is 15" in abp_units_warning(np.array([15.0]), "f")


# ------------------------------------------------------------------------ the registry


def test_import_data_dispatches_every_recording_format(tmp_path: Path) -> None:
    """Kills: npz left out of import_data's recording formats; the format not passed on
    (an npz imported as WFDB); an unknown format returning None instead of an error."""
    path = tmp_path / "r.npz"
    np.savez(path, **recording(20), fs=FS)
    report = import_data("npz", path, tmp_path / "o.h5", **PLAIN)
    assert report.format == "npz" and report.windows_kept == 2
    assert json.loads(json.dumps(report.to_dict()))["records"]["kept"] == 1
    with pytest.raises(DataError, match="unknown format 'tsv'; use one of bp-benchmark"):
        import_data("tsv", path, tmp_path / "p.h5")
