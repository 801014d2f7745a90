"""Tests that pin what a mutation audit of ``innpar reconstruct FOLDER`` found unguarded: in
innpar_freia.reconstruct_folder, what names a cuff table, how --include matches a WFDB record,
how a cuff table is read and how its rows are matched to records, where each recording's
outputs (and figure) go and which exist already, what is refused before any work, which
errors stop the run, and each row of the table of them all; in the folder branch of
innpar_freia.cli.reconstruct, which INPUT is a folder, the refusal of a folder name for a
file's output, the line printed per recording, the notes and warnings, and the final error.
Each one fails when the bug named in its docstring is put into the package.

Most run a folder with ``reconstruct_file`` replaced by a stand-in (``stand_in``): the
recordings are then files that are only listed, never read, and a folder takes milliseconds.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from innpar_freia.checkpoint import Checkpoint, load_checkpoint
from innpar_freia.errors import DataError
from innpar_freia.reconstruct_file import ReconstructOptions
from innpar_freia.reconstruct_folder import (
    find_recordings,
    is_cuff_table,
    read_cuff_table,
    reconstruct_folder,
)
from tests.helpers import pulse_recording, run_cli, write_csv, write_wfdb
from tests.test_cli_reconstruct_folder import table


@pytest.fixture(scope="module")
def ckpt_path(tiny_run: Path) -> Path:
    return tiny_run / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def ckpt(ckpt_path: Path) -> Checkpoint:
    return load_checkpoint(ckpt_path)


def files(folder: Path, *names: str) -> Path:
    """``folder`` with a small file of each name (a WFDB header for ``.hea``): recordings to
    list, never read."""
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("r 1 125 2000\n" if name.endswith(".hea") else "t,PPG\n0,1\n")
    return folder


def summary_for(out: Path, **changes) -> dict:
    """What ``reconstruct_file`` returns, every number distinct."""
    summary = {
        "duration_s": 16.0,
        "reconstructed_fraction": 0.123456789,
        "gaps": [[1.0, 2.0], [5.0, 6.0]],
        "beats": {
            "n": 17,
            "sbp_median": 121.54,
            "dbp_median": 71.25,
            "map_median": 88.5,
            "hr_median": 66.5,
        },
        "reference": {
            "n_windows": 3,
            "waveform": {"mae": 5.5},
            "sbp": {"mae": 6.5},
            "dbp": {"mae": 7.5},
            "map": {"mae": 8.5},
        },
        "calibration": {"source": "cuff", "ref_sbp": 131.0, "ref_dbp": 72.0},
        "warning": "3 % of the reconstructed ABP is outside 20-250 mmHg",
        "outputs": {"recording": [str(out)], "summary": f"{out}.summary.json"},
    }
    summary.update(changes)
    return summary


@pytest.fixture
def stand_in(monkeypatch) -> SimpleNamespace:
    """``reconstruct_file`` replaced: each call is recorded (``calls``: path, out, options)
    and returns :func:`summary_for`, changed by ``changes[file name]``; a file name in
    ``fail`` raises that exception instead. Nothing is read or written."""
    import innpar_freia.reconstruct_folder as rf

    state = SimpleNamespace(calls=[], fail={}, changes={})

    def reconstruct_file(ckpt, path, out, opts):
        path, out = Path(path), Path(out)
        state.calls.append(SimpleNamespace(path=path, out=out, opts=opts))
        if path.name in state.fail:
            raise state.fail[path.name]
        return summary_for(out, **state.changes.get(path.name, {}))

    monkeypatch.setattr(rf, "reconstruct_file", reconstruct_file)
    return state


# ----------------------------------------------------------------- finding the recordings


def test_what_names_a_cuff_table(tmp_path, monkeypatch):
    """Mutants: ``reference`` no longer set apart (a file of that name in the working folder
    made ``--calibration reference`` a cuff table); the suffix compared in its case
    (``CUFFS.CSV``, not there, was taken for one cuff reading: "one cuff reading is one
    person's" instead of "cuff table not found"); a table named other than .csv no
    longer recognised as the file it is."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reference").write_text("record,sbp,dbp\n")
    (tmp_path / "cuffs.txt").write_text("record,sbp,dbp\nc2,120,80\n")
    assert not is_cuff_table("reference")
    assert not is_cuff_table("120/80") and not is_cuff_table(None)
    assert is_cuff_table("CUFFS.CSV")
    assert is_cuff_table("cuffs.txt")


def test_include_matches_a_wfdb_record_by_its_header(tmp_path):
    """Mutant: --include matched against a WFDB record's path without its ``.hea``, so
    ``--include '*.hea'`` (the docs: "whose file (a record's .hea) matches") found none."""
    d = files(tmp_path / "in", "icu/r1.hea", "c2.csv", "n3.npy")
    assert [(r.id, r.format) for r in find_recordings(d, "*.hea")] == [("icu/r1", "wfdb")]
    assert [r.id for r in find_recordings(d, "icu/r1.hea")] == ["icu/r1"]


# ---------------------------------------------------------------------------- cuff tables


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("record,sbp,dbp\n", "has no rows"),
        ("record,sbp,dbp\nc2,120,80\nz4,130,85,12\n", "row 3 has more cells than the header"),
        ("record,sbp,dbp\n,120,80\n", "row 2 has no record"),
        (
            "record,sbp,dbp,at\nc2,120,80,inf\n",
            "row 2 (c2): at must be a time in seconds, not 'inf'",
        ),
    ],
)
def test_a_cuff_table_is_refused_naming_its_row(text, message, tmp_path):
    """Mutants: a header without rows not refused (an IndexError); a row with more cells
    than the header not refused (an AttributeError on csv's ``None`` key); a row without a
    record accepted (a reading for no one); ``at`` infinite accepted (refused only later,
    without naming the row)."""
    path = tmp_path / "cuffs.csv"
    path.write_text(text)
    with pytest.raises(DataError) as exc:
        read_cuff_table(path)
    assert message in str(exc.value)


def test_the_record_column_may_be_name_and_record_comes_before_id(tmp_path):
    """Mutants: a ``name`` column not taken for the record column (the docs: "record, name
    or id"); ``id`` (a patient number, say) taken before ``record``."""
    path = tmp_path / "cuffs.csv"
    path.write_text("Name,SBP,DBP\nc2,120,80\n")
    assert list(read_cuff_table(path)) == ["c2"]
    path.write_text("id,record,sbp,dbp\n7,c2,120,80\n")
    table_ = read_cuff_table(path)
    assert list(table_) == ["c2"] and table_["c2"].text == "120/80"


def test_cuff_rows_match_a_record_by_its_id_or_its_only_file_name(tmp_path, ckpt, stand_in):
    """Mutants: a row matched by file name only (``a/x`` and ``b/x``, each with its own row,
    had none); a file name that two recordings have matched to both (the docs: "the file
    name without extension where only one recording has it"); the file name taken without
    every dot (``y.v2`` is the name of ``c/y.v2.csv``); a reading of half a mmHg rounded
    away (140.5 calibrated as 140)."""
    d = files(tmp_path / "in", "a/x.csv", "b/x.csv", "c/y.v2.csv")
    cuffs = tmp_path / "cuffs.csv"
    cuffs.write_text("record,sbp,dbp\na/x,131,72\nb/x,140.5,85\ny.v2,118,66\nold,120,80\n")
    opts = ReconstructOptions(calibration=str(cuffs))
    index = reconstruct_folder(ckpt, d, tmp_path / "out", opts)
    used = {c.path.relative_to(d).as_posix(): c.opts.calibration for c in stand_in.calls}
    assert used == {"a/x.csv": "131/72", "b/x.csv": "140.5/85", "c/y.v2.csv": "118/66"}
    assert index["unused_cuff_rows"] == ["old"]
    cuffs.write_text("record,sbp,dbp\nx,131,72\ny.v2,118,66\n")
    with pytest.raises(DataError, match="has no reading for 2 of the 3 recordings: a/x, b/x;"):
        reconstruct_folder(ckpt, d, tmp_path / "out2", opts)


def test_a_list_cut_short_says_how_many_more(tmp_path, ckpt, stand_in):
    """Mutant: "and N more" left out when exactly one more than shown (the sixth recording
    without a row went unmentioned)."""
    d = files(tmp_path / "in", *(f"{c}.csv" for c in "abcdef"))
    cuffs = tmp_path / "cuffs.csv"
    cuffs.write_text("record,sbp,dbp\nzz,120,80\n")
    with pytest.raises(DataError) as exc:
        reconstruct_folder(ckpt, d, tmp_path / "out", ReconstructOptions(calibration=str(cuffs)))
    assert "has no reading for 6 of the 6 recordings: a, b, c, d, e and 1 more;" in str(exc.value)
    assert stand_in.calls == []


def test_a_rows_time_comes_before_calibration_at(tmp_path, ckpt, stand_in):
    """Mutants: --calibration-at taken over a row's own ``at``; a row without ``at``
    calibrated at the recording's start though --calibration-at was given (the docs:
    "empty: the recording's start, or --calibration-at")."""
    d = files(tmp_path / "in", "c2.csv", "z4.csv")
    cuffs = tmp_path / "cuffs.csv"
    cuffs.write_text("record,sbp,dbp,at\nc2,131,72,4.5\nz4,140,85,\n")
    opts = ReconstructOptions(calibration=str(cuffs), calibration_at=2.0)
    reconstruct_folder(ckpt, d, tmp_path / "out", opts)
    got = {c.path.name: (c.opts.calibration, c.opts.calibration_at) for c in stand_in.calls}
    assert got == {"c2.csv": ("131/72", 4.5), "z4.csv": ("140/85", 2.0)}


# ------------------------------------------------------------ refused before any work


@pytest.mark.parametrize("case", ["not_a_folder", "h5_format", "out_a_file", "plot_a_file"])
def test_what_the_library_refuses_before_any_work(case, tmp_path, ckpt, stand_in):
    """Mutants: INPUT not checked to be a folder (a file was "a folder without recordings");
    a format other than the four not refused (a KeyError); an --out or --plot that is an
    existing file without a suffix (``results``) taken for a folder (every recording then
    failed on it, after the work)."""
    d = files(tmp_path / "in", "c2.csv")
    (tmp_path / "results").write_text("a file\n")
    src, out, kwargs = d, tmp_path / "out", {}
    message = {
        "not_a_folder": "is not a folder",
        "h5_format": "output format must be one of wfdb, csv, npz, npy, not 'h5'",
        "out_a_file": "for a folder INPUT, out_dir names a folder",
        "plot_a_file": "for a folder INPUT, plot_dir names a folder",
    }[case]
    if case == "not_a_folder":
        src = d / "c2.csv"
    elif case == "h5_format":
        kwargs["out_format"] = "h5"
    elif case == "out_a_file":
        out = tmp_path / "results"
    else:
        kwargs["plot_dir"] = tmp_path / "results"
    with pytest.raises(DataError) as exc:
        reconstruct_folder(ckpt, src, out, ReconstructOptions(), **kwargs)
    assert message in str(exc.value)
    assert stand_in.calls == []


def test_an_existing_figure_is_refused_before_any_work(tmp_path, ckpt, stand_in):
    """Mutant: the figures left out of the outputs checked first; an earlier run's figure
    was replaced without --force."""
    d = files(tmp_path / "in", "c2.csv", "icu/r1.hea")
    figs = tmp_path / "figs"
    files(figs, "icu/r1.png")
    with pytest.raises(DataError, match=r"outputs exist: .*r1\.png; pass force=True"):
        reconstruct_folder(ckpt, d, tmp_path / "out", ReconstructOptions(), plot_dir=figs)
    assert stand_in.calls == []


def test_a_table_that_cannot_be_written_is_refused_before_any_work(tmp_path, ckpt, stand_in):
    """Mutant: the table's names not checked (a folder, or a folder not writable) before the
    work: found only after every recording was reconstructed."""
    d = files(tmp_path / "in", "c2.csv")
    (tmp_path / "out" / "reconstructions.json").mkdir(parents=True)
    with pytest.raises(DataError, match=r"reconstructions\.json exists and is not a regular file"):
        reconstruct_folder(ckpt, d, tmp_path / "out", ReconstructOptions(force=True))
    assert stand_in.calls == []


@pytest.mark.parametrize(
    ("names", "out_format", "message"),
    [
        (["x.csv", "x.beats.csv"], None, "recording 'x.beats' and recording 'x' would both be "),
        (["c2.csv", "reconstructions.csv"], None, "and the table of them all would both be"),
    ],
)
def test_two_outputs_of_one_name_are_refused_before_any_work(
    names, out_format, message, tmp_path, ckpt, stand_in
):
    """A bug this audit found: two recordings writing one file were not seen. ``x.beats.csv``
    is recording ``x.beats`` and recording ``x``'s beats table (the second to be written
    failed on "output exists", its note calling this run's file an earlier run's, and with
    --force replaced the first); a recording ``reconstructions.csv`` was written, then
    replaced by the table without a word (exit 0, even without --force)."""
    d = files(tmp_path / "in", *names)
    with pytest.raises(DataError) as exc:
        reconstruct_folder(ckpt, d, tmp_path / "out", ReconstructOptions(), out_format=out_format)
    assert message in str(exc.value)
    assert stand_in.calls == []


def test_without_a_beats_table_a_beats_table_there_is_not_an_output(tmp_path, ckpt, stand_in):
    """Mutant: the beats table counted among the outputs of --direction abp2ppg, which
    writes none: a file of that name (an earlier ppg2abp run's) refused the run."""
    d = files(tmp_path / "in", "c2.csv")
    files(tmp_path / "out", "c2.beats.csv")
    index = reconstruct_folder(ckpt, d, tmp_path / "out", ReconstructOptions(direction="abp2ppg"))
    assert index["n_reconstructed"] == 1 and len(stand_in.calls) == 1


def test_a_name_no_wfdb_record_can_have_is_refused_for_a_wfdb_output(tmp_path, ckpt, stand_in):
    """A bug this audit found: with --format wfdb, recording ``s1.v1`` was written as record
    ``s1`` (``OUT/s1.hea`` beside ``OUT/s1.v1.summary.json``; a record name keeps no dot),
    not as the docs' ``OUT/<id>.hea``, and ``s1.v2`` into the same record: the second failed
    on "output exists", and with --force replaced the first, whose summary still named it.
    As CSV both keep their names."""
    d = files(tmp_path / "in", "s1.v1.csv", "s1.v2.csv", "ok-1_a.csv")
    out = tmp_path / "out"
    with pytest.raises(DataError) as exc:
        reconstruct_folder(ckpt, d, out, ReconstructOptions(), out_format="wfdb")
    assert (
        "recording 's1.v1' cannot be written as a WFDB record: "
        f"{out / 's1.v1.hea'}: a WFDB record name may hold only ASCII letters, digits, '_' "
        "and '-', not 's1.v1'; give out_format='csv', 'npz' or 'npy', or leave it out with "
        "include"
    ) in str(exc.value)
    assert stand_in.calls == []
    reconstruct_folder(ckpt, d, out, ReconstructOptions(), out_format="wfdb", include="ok*")
    reconstruct_folder(ckpt, d, tmp_path / "csv", ReconstructOptions(), include="s1*")
    assert [c.out for c in stand_in.calls] == [
        out / "ok-1_a.hea",
        tmp_path / "csv" / "s1.v1.csv",
        tmp_path / "csv" / "s1.v2.csv",
    ]


# ------------------------------------------------------------------- failures, the table


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_a_full_or_read_only_disk_stops_the_run(code, tmp_path, ckpt, stand_in):
    """Mutant: a file system gone read-only (or a quota) not among the errors that stop the
    run: every later recording was tried, failed alike, and the table said each was one
    recording's failure."""
    d = files(tmp_path / "in", "a.csv", "b.csv", "c.csv")
    stand_in.fail["a.csv"] = OSError(code, "cannot write", str(tmp_path / "out" / "a.csv"))
    with pytest.raises(OSError) as exc:
        reconstruct_folder(ckpt, d, tmp_path / "out", ReconstructOptions())
    assert exc.value.errno == code
    assert len(stand_in.calls) == 1
    # The table as it stood when the disk failed (written as the run goes on): nothing done.
    index = json.loads((tmp_path / "out" / "reconstructions.json").read_text())
    assert index["interrupted"] is True
    assert [row["status"] for row in index["recordings"]] == ["pending"] * 3


def test_a_failure_under_force_names_the_earlier_outputs_of_its_format_and_figure(
    tmp_path, ckpt, stand_in
):
    """Mutants: the earlier outputs looked for in the input's format, not --format's (an
    earlier z4.csv left unmentioned); the figure left out of them."""
    d = files(tmp_path / "in", "z4.npz")
    out, figs = tmp_path / "out", tmp_path / "figs"
    files(out, "z4.csv")
    files(figs, "z4.png")
    stand_in.fail["z4.npz"] = DataError("z4.npz has no PPG channel")
    index = reconstruct_folder(
        ckpt, d, out, ReconstructOptions(force=True), out_format="csv", plot_dir=figs
    )
    (row,) = index["recordings"]
    assert row["reason"] == (
        "z4.npz has no PPG channel (the outputs of an earlier run are left as they were: "
        f"{out / 'z4.csv'}, {figs / 'z4.png'})"
    )


def test_a_cuff_table_that_is_not_text_is_refused(tmp_path):
    """Mutant: a table that is not UTF-8 (a spreadsheet's Latin-1 export) let through as a
    UnicodeDecodeError traceback."""
    path = tmp_path / "cuffs.csv"
    path.write_bytes(b"record,sbp,dbp\n\xe9t\xe9,120,80\n")
    with pytest.raises(DataError, match=r"cuffs\.csv is not UTF-8 text: line 2 holds byte 0xe9"):
        read_cuff_table(path)


def test_each_row_holds_its_summary_and_the_csv_rounds_it(tmp_path, ckpt, stand_in):
    """Mutants: a row's output the summary's path; its gaps the list, not their number;
    DBP, MAP, heart rate, the SBP/DBP/MAP errors against the reference, the warning or the
    input left out or taken from another field; a failed row without its input; the CSV's
    numbers written with every digit (0.123456789) instead of six significant ones."""
    d = files(tmp_path / "in", "a.csv", "b.csv")
    stand_in.fail["b.csv"] = DataError("b.csv has no PPG channel")
    out = tmp_path / "out"
    index = reconstruct_folder(ckpt, d, out, ReconstructOptions())
    a, b = index["recordings"]
    # What --resume compares: the sha256 of the files it was read from.
    digest = a.pop("input_files_sha256")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert a == {
        "record": "a",
        "status": "reconstructed",
        "reason": None,
        "input": str(d / "a.csv"),
        "output": str(out / "a.csv"),
        "duration_s": 16.0,
        "reconstructed_fraction": 0.123456789,
        "gaps": 2,
        "beats": 17,
        "sbp_median": 121.54,
        "dbp_median": 71.25,
        "map_median": 88.5,
        "hr_median": 66.5,
        "calibration": "cuff 131/72",
        "calibration_offset_only": False,
        "ref_waveform_mae": 5.5,
        "ref_sbp_mae": 6.5,
        "ref_dbp_mae": 7.5,
        "ref_map_mae": 8.5,
        "ref_note": None,
        "warning": "3 % of the reconstructed ABP is outside 20-250 mmHg",
        "summary": f"{out / 'a.csv'}.summary.json",
    }
    assert (b["status"], b["input"], b["output"]) == ("failed", str(d / "b.csv"), None)
    assert b["reason"] == "b.csv has no PPG channel"
    assert json.loads((out / "reconstructions.json").read_text())["recordings"] == [
        {**a, "input_files_sha256": digest},
        b,
    ]
    a_csv, b_csv = table(out / "reconstructions.csv")
    assert a_csv["reconstructed_fraction"] == "0.123457"
    assert (a_csv["gaps"], a_csv["dbp_median"], a_csv["ref_map_mae"]) == ("2", "71.25", "8.5")
    assert (b_csv["input"], b_csv["output"], b_csv["beats"]) == (str(d / "b.csv"), "", "")


def test_resume_does_again_a_recording_whose_input_changed_or_is_not_known(
    tmp_path, ckpt, stand_in
):
    """A bug an audit found: --resume kept every recording the run resumed had
    reconstructed, its outputs there, though its input had changed since (another record's
    signal put in its place): the stale reconstruction was kept, "kept from the run
    resumed". A recording whose input files are not the bytes the run resumed read, or whose
    row (an older version's) has no sha256 of them, is reconstructed again, and its row says
    why; one unchanged is kept."""
    from innpar_freia.reconstruct_folder import INPUT_CHANGED, INPUT_UNKNOWN

    d = files(tmp_path / "in", "a.csv", "b.csv", "icu/r1.hea", "icu/r1.dat")
    out = tmp_path / "out"
    reconstruct_folder(ckpt, d, out, ReconstructOptions())
    # The stand-in writes nothing: the outputs a real run leaves.
    files(out, *(f"{r}.{s}" for r in ("a", "b") for s in ("csv", "beats.csv", "summary.json")))
    files(out, *(f"icu/r1.{s}" for s in ("hea", "dat", "beats.csv", "summary.json")))
    index_path = out / "reconstructions.json"
    index = json.loads(index_path.read_text())
    del index["recordings"][1]["input_files_sha256"]  # b's row, as an older version wrote it
    index_path.write_text(json.dumps(index))
    (d / "icu" / "r1.dat").write_bytes(b"another record's samples")  # the header as it was
    stand_in.calls.clear()
    index = reconstruct_folder(ckpt, d, out, ReconstructOptions(), resume=True)
    assert sorted(c.path.name for c in stand_in.calls) == ["b.csv", "r1"]
    rows = {row["record"]: row for row in index["recordings"]}
    assert rows["a"]["resumed"] and "redone" not in rows["a"]
    assert rows["b"]["redone"] == INPUT_UNKNOWN and not rows["b"].get("resumed")
    assert rows["icu/r1"]["redone"] == INPUT_CHANGED and not rows["icu/r1"].get("resumed")
    assert index["n_resumed"] == 1 and index["n_reconstructed"] == 3
    # Done again, they are this run's: the next resume keeps all three, without a "redone".
    stand_in.calls.clear()
    index = reconstruct_folder(ckpt, d, out, ReconstructOptions(), resume=True)
    assert stand_in.calls == [] and index["n_resumed"] == 3
    assert not any("redone" in row for row in index["recordings"])


def test_the_index_names_its_calibration_table_and_files(tmp_path, ckpt, stand_in):
    """Mutants: a calibration by each recording's reference called "calibration-free" (and
    the CLI's note then said the levels were the population's); the cuff table's path left
    out; the table and the index swapped in ``outputs`` (the CLI's last line named the
    .json as the table)."""
    d = files(tmp_path / "in", "c2.csv")
    out = tmp_path / "out"
    opts = ReconstructOptions(calibration="reference", reference_abp="ABP")
    index = reconstruct_folder(ckpt, d, out, opts)
    assert (index["calibration"], index["cuff_table"]) == ("reference", None)
    assert index["outputs"] == {
        "table": str(out / "reconstructions.csv"),
        "index": str(out / "reconstructions.json"),
    }
    cuffs = tmp_path / "cuffs.csv"
    cuffs.write_text("record,sbp,dbp\nc2,120,80\n")
    index = reconstruct_folder(ckpt, d, tmp_path / "o2", ReconstructOptions(calibration=str(cuffs)))
    assert (index["calibration"], index["cuff_table"]) == ("cuff table", str(cuffs))


# ----------------------------------------------------------------------------- the CLI


def test_a_folder_beside_its_wfdb_record_is_the_record(tmp_path, ckpt_path):
    """Mutant: every folder taken for a folder INPUT: ``data/85`` with ``data/85.hea``
    beside it (the record's name, as a WFDB record is given) was refused as a folder whose
    --out names a file."""
    ppg, abp = pulse_recording(8, seed=5)
    rec = write_wfdb(tmp_path / "data", "85", {"PLETH": ppg, "ABP": abp}, fs=125.0)
    files(rec, "notes.csv")  # a folder of the record's name
    out = tmp_path / "abp.csv"
    r = run_cli("reconstruct", "--checkpoint", ckpt_path, rec, "--out", out)
    assert r.exit_code == 0, r.output
    assert out.is_file() and "recordings reconstructed" not in r.output


def test_a_folder_input_takes_plot_as_a_folder_with_its_slash(tmp_path, ckpt_path, stand_in):
    """Mutant: --plot checked as a file's for a folder INPUT too: ``--plot figures/``, the
    docs' own example, was refused as "names a folder"."""
    d = files(tmp_path / "in", "c2.csv", "icu/r1.hea")
    figs = f"{tmp_path / 'figs'}/"
    r = run_cli("reconstruct", "--checkpoint", ckpt_path, d, "--out", tmp_path / "out",
                "--plot", figs)  # fmt: skip
    assert r.exit_code == 0, r.output
    got = sorted(c.opts.plot.relative_to(tmp_path).as_posix() for c in stand_in.calls)
    assert got == ["figs/c2.png", "figs/icu/r1.png"]


@pytest.mark.parametrize(("flag", "value"), [("--out", "abp/"), ("--plot", "figs\\")])
def test_a_folder_name_for_a_files_output_is_refused(flag, value, tmp_path, ckpt_path):
    """Mutants: --out ending in a slash no longer refused for a file INPUT (``abp/`` wrote
    a file named ``abp``); a backslash (Windows) not taken for a folder's end."""
    src = write_csv(tmp_path / "c2.csv", {"PPG": pulse_recording(8, seed=5)[0]})
    named = f"{tmp_path / 'w'}/{value}"
    outputs = {"--out": tmp_path / "w" / "abp.csv", "--plot": tmp_path / "w" / "abp.png"}
    outputs[flag] = named
    r = run_cli("reconstruct", "--checkpoint", ckpt_path, src, "--fs", 125,
                *(a for item in outputs.items() for a in item))  # fmt: skip
    assert r.exit_code == 2, r.output
    assert f"{named!r} names a folder; give a file name such as" in r.output
    assert not (tmp_path / "w").exists()


def test_a_line_per_recording_then_the_table(tmp_path, ckpt_path, stand_in):
    """Mutants: the beats, the error against the reference, or why there is no comparison
    left out of a recording's line; a recording's warning dropped, or printed on stdout
    with the lines; the last line without the table's path."""
    d = files(tmp_path / "in", "a.csv", "b.csv")
    stand_in.changes["b.csv"] = {
        "beats": {},
        "reference": {"n_windows": 0, "why_none": "the reference ABP is flat"},
        "warning": None,
    }
    out = tmp_path / "out"
    r = run_cli("reconstruct", "--checkpoint", ckpt_path, d, "--out", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "[1/2] a: 16.0 s, 12.3 % reconstructed, 17 beats, median SBP 121.5, DBP 71.2, MAP "
        "88.5 mmHg; vs reference: waveform MAE 5.50 mmHg",
        "[2/2] b: 16.0 s, 12.3 % reconstructed; no comparison with the reference: the "
        "reference ABP is flat",
        f"2 of 2 recordings reconstructed into {out}; table: {out / 'reconstructions.csv'}",
        "  note: calibration-free: the mmHg levels are the training population's, not each "
        "person's; give --calibration TABLE.csv (one cuff reading per recording) for absolute "
        "values",
    ]
    assert r.stderr == "warning: a: 3 % of the reconstructed ABP is outside 20-250 mmHg\n"


@pytest.mark.parametrize("case", ["cuff_table", "abp2ppg"])
def test_the_calibration_free_note_only_where_it_is_true(case, tmp_path, ckpt_path, stand_in):
    """Mutants: the calibration-free note printed after a calibration by a cuff table, or
    for --direction abp2ppg (a PPG has no mmHg levels); the warning of cuff rows that match
    no recording printed on stdout with the lines."""
    d = files(tmp_path / "in", "c2.csv")
    extra: list[object] = ["--direction", "abp2ppg"]
    if case == "cuff_table":
        cuffs = tmp_path / "cuffs.csv"
        cuffs.write_text("record,sbp,dbp\nc2,120,80\nold,120,80\n")
        extra = ["--calibration", cuffs]
    r = run_cli("reconstruct", "--checkpoint", ckpt_path, d, "--out", tmp_path / "out", *extra)
    assert r.exit_code == 0, r.output
    assert "note:" not in r.output
    assert "1 row(s) of the cuff table" not in r.stdout
    if case == "cuff_table":
        assert "warning: 1 row(s) of the cuff table match no recording: old\n" in r.stderr


def test_json_is_printed_whole_when_a_recording_fails(tmp_path, ckpt_path, stand_in):
    """Mutant: the index not printed by --json when a recording failed (a script reading
    stdout got nothing, though the table was written); stdout holds the JSON alone, the
    error goes to stderr."""
    d = files(tmp_path / "in", "a.csv", "b.csv")
    stand_in.fail["b.csv"] = DataError("b.csv has no PPG channel")
    out = tmp_path / "out"
    r = run_cli("reconstruct", "--checkpoint", ckpt_path, d, "--out", out, "--json")
    assert r.exit_code == 1
    index = json.loads(r.stdout)
    assert index == json.loads((out / "reconstructions.json").read_text())
    assert (index["n_reconstructed"], index["n_failed"]) == (1, 1)
    assert "Error: 1 of 2 recordings could not be reconstructed" in r.stderr


@pytest.mark.parametrize("include", [None, "*.csv"])
def test_the_final_error_names_three_and_counts_the_rest(include, tmp_path, ckpt_path, stand_in):
    """Mutants: every failed recording named in the final error (a folder of 400 wrong
    files, one line of 400); the rest not counted; the hint to leave out files that are not
    recordings with --include given although --include was, or never given."""
    d = files(tmp_path / "in", *(f"{c}.csv" for c in "abcde"))
    for c in "abcde":
        stand_in.fail[f"{c}.csv"] = DataError(f"{c}.csv has no PPG channel")
    extra = [] if include is None else ["--include", include]
    r = run_cli("reconstruct", "--checkpoint", ckpt_path, d, "--out", tmp_path / "out", *extra)
    assert r.exit_code == 1
    (error,) = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert error.startswith(
        f"Error: 5 of 5 recordings could not be reconstructed (listed in "
        f"{tmp_path / 'out' / 'reconstructions.csv'}): a: a.csv has no PPG channel; b: "
        "b.csv has no PPG channel; c: c.csv has no PPG channel; and 2 more"
    )
    hint = " (leave out files that are not recordings with --include)"
    assert error.endswith("and 2 more" + ("" if include else hint))
