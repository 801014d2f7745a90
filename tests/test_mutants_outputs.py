"""Tests that pin what a mutation audit of innpar_freia.outputs (outputs written
all-or-nothing, existing outputs and inputs never overwritten, a replaced run set aside and
put back, the recording writer, JSON) and innpar_freia.checkpoint (checkpoints written
atomically, read and validated, model, configuration, normalisation and run record
rebuilt, the predict helpers) found unguarded: each one fails when the bug named in its
docstring is put into the package. Expected values are worked out by hand, never by the
code under test; checkpoints are made of the tiny preset's untrained network (no training)."""

from __future__ import annotations

import csv
import errno
import importlib.metadata
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import innpar_freia
from innpar_freia.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    check_freia_version,
    full_float32,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from innpar_freia.config import resolve_config
from innpar_freia.data.store import WindowWriter, write_assignments
from innpar_freia.errors import CheckpointError, DataError
from innpar_freia.nn.model import build_model
from innpar_freia.outputs import (
    StagedOutputs,
    check_outputs,
    json_text,
    jsonable,
    make_folder,
    output_format,
    process_alive,
    put_back,
    recording_paths,
    recover_set_aside,
    remove_if_empty,
    set_aside,
    signals_deferred,
    wait_for_recovery,
    write_recording,
)
from innpar_freia.train import write_bytes_atomic


def listing(folder: Path) -> list[str]:
    """Every path under ``folder`` (hidden ones too), relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------


def test_make_folder_returns_what_it_created_outermost_first(tmp_path: Path):
    """Guards against make_folder listing the folders it made innermost first (or not at
    all): StagedOutputs.abort removes them in reverse, and an outer folder tried before the
    inner one in it is "not empty" and stayed behind."""
    assert make_folder(tmp_path / "a" / "b" / "c") == [
        tmp_path / "a",
        tmp_path / "a" / "b",
        tmp_path / "a" / "b" / "c",
    ]
    assert make_folder(tmp_path / "a" / "b") == []  # there already


def test_make_folder_names_a_parent_that_is_a_file(tmp_path: Path):
    """Guards against dropping make_folder's check of the nearest existing parent: mkdir
    under a file says only "File exists" (or "Not a directory") about the folder asked for,
    as an OSError the commands report as a crash."""
    (tmp_path / "notes").write_text("a file")
    with pytest.raises(DataError, match=r"cannot write in .*notes/x/y: .*notes is a file, not a"):
        make_folder(tmp_path / "notes" / "x" / "y")


def test_remove_if_empty_keeps_a_folder_that_holds_something(tmp_path: Path):
    """Guards against remove_if_empty passing on the error of a folder that is not empty
    (or already gone): that folder holds something else, and is simply kept."""
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    remove_if_empty([tmp_path / "full", tmp_path / "empty", tmp_path / "gone"])
    assert listing(tmp_path) == ["full", "full/keep.txt"]


# --------------------------------------------------------------------------------------
# StagedOutputs
# --------------------------------------------------------------------------------------


def test_a_staged_file_is_hidden_beside_its_output_with_its_suffix(tmp_path: Path):
    """Guards against a staged name that is not hidden (a half-written 'report.png.123...'
    shown as an output) or that loses its suffix (matplotlib picks the format from it:
    a staged figure without .png is refused)."""
    staged = StagedOutputs()
    tmp = staged.stage(tmp_path / "fig" / "report.png")
    assert tmp.parent == tmp_path / "fig" and tmp.parent.is_dir()
    assert tmp.name.startswith(".report.png.") and tmp.suffix == ".png"
    other = staged.stage(tmp_path / "b.json")
    assert staged.staged_path(tmp_path / "fig" / "report.png") == tmp
    assert staged.staged_path(tmp_path / "b.json") == other
    staged.abort()


def test_commit_moves_every_staged_file_and_leaves_no_hidden_one(tmp_path: Path):
    """Guards against a commit that copies rather than renames (the hidden staged files
    stayed beside the outputs), and against a second commit on leaving the ``with`` block
    after an explicit one (which found no staged file and raised)."""
    with StagedOutputs() as staged:
        staged.write_text(tmp_path / "a.txt", "A")
        staged.write_text(tmp_path / "sub" / "b.txt", "B")
        assert staged.commit() == [tmp_path / "a.txt", tmp_path / "sub" / "b.txt"]
    assert listing(tmp_path) == ["a.txt", "sub", "sub/b.txt"]
    assert (tmp_path / "a.txt").read_text() == "A" and (
        tmp_path / "sub" / "b.txt"
    ).read_text() == "B"


def test_staging_an_output_removes_what_killed_writes_of_it_left(tmp_path: Path):
    """A write killed outright (kill -9, a power cut) leaves its hidden copy, as large as the
    output; the next write of that output removes the copies of ended processes. Guards
    against removing a running process's copy (another run writing it now), another
    output's, a hidden file of another shape (the user's), and against leaving them all."""
    dead, alive = dead_pid(), os.getppid()
    stale = [
        tmp_path / f".abp.csv.{dead}.staged.csv",
        tmp_path / f".abp.csv.{dead}.tmp",
        tmp_path / f".abp.csv.{dead}.tmp.csv",
    ]
    kept = [
        tmp_path / f".abp.csv.{alive}.staged.csv",  # still being written
        tmp_path / f".ppg.csv.{dead}.staged.csv",  # another output's
        tmp_path / f".abp.csv.{dead}.staged.txt",  # not the shape of our names
        tmp_path / f".abp.csv.x{dead}.tmp",
        tmp_path / ".abp.csv.swp",
    ]
    for path in stale + kept:
        path.write_text("half")
    with StagedOutputs() as staged:
        staged.write_text(tmp_path / "abp.csv", "new")
    assert (tmp_path / "abp.csv").read_text() == "new"
    assert not any(path.exists() for path in stale)
    assert all(path.read_text() == "half" for path in kept)


def test_a_run_of_many_outputs_lists_each_folder_once(tmp_path: Path):
    """Within ``folders_listed_once`` (a folder run) a folder is listed once, not once per
    output (a folder of 10,000 reconstructions would be listed 10,000 times); outside it
    every write lists its folder, so that a later command, in this process too, finds what
    a write killed meanwhile left. Guards against listing per output in a run, and against
    keeping the listings beyond it (a resumed folder run, in the process of the run it goes
    on with, then left the killed write's copies)."""
    from innpar_freia.outputs import folders_listed_once, remove_stale_temporaries

    dead = dead_pid()
    first, later = tmp_path / f".a.h5.{dead}.tmp", tmp_path / f".b.h5.{dead}.tmp"
    first.write_bytes(b"copy")
    with folders_listed_once():
        with folders_listed_once():  # nested: the outer listing holds
            assert remove_stale_temporaries(tmp_path / "a.h5") == [first]
        later.write_bytes(b"copy")  # after the folder was listed
        assert remove_stale_temporaries(tmp_path / "b.h5") == [] and later.exists()
    assert remove_stale_temporaries(tmp_path / "b.h5") == [later]
    assert not later.exists()


@pytest.mark.parametrize("writer", ["checkpoint", "atomic", "predictions"])
def test_checkpoint_run_file_and_predictions_writes_remove_killed_writes_copies(
    tmp_path: Path, writer
):
    """A checkpoint (a run's config/results file, a predictions file) written while the
    process was killed outright leaves its ``.NAME.PID.tmp``, a checkpoint's size; the next
    write of it removes it, not a running process's. Guards against each writer leaving
    them for good."""
    from innpar_freia.predictions import write_predictions

    dead, alive = dead_pid(), os.getppid()
    final = tmp_path / {"checkpoint": "last.pt", "atomic": "results.json"}.get(writer, "p.h5")
    stale, running = (tmp_path / f".{final.name}.{pid}.tmp" for pid in (dead, alive))
    for path in (stale, running):
        path.write_bytes(b"half")
    if writer == "checkpoint":
        save_checkpoint(final, {"weights": {}})
    elif writer == "atomic":
        write_bytes_atomic(final, b"{}")
    else:
        write_predictions(
            final, fs=125.0, window_id=["a"], subject=["s"], prediction=np.zeros((1, 8))
        )
    assert listing(tmp_path) == sorted([final.name, running.name])


def test_a_figure_write_removes_a_killed_one_s_copy(tmp_path: Path):
    """Figures are written through ``.NAME.PID.tmp.SUFFIX`` (the suffix picks the format):
    a copy of an ended process goes with the next figure of that name. Guards against
    figures' copies being of another shape (``.STEM.PID...``), which no clean-up found."""
    import matplotlib.pyplot as plt

    from innpar_freia.plots import save_figure

    stale = tmp_path / f".fig.png.{dead_pid()}.tmp.png"
    stale.write_bytes(b"half a png")
    written = []
    fig = plt.figure()
    real = fig.savefig
    fig.savefig = lambda path, **kw: (written.append(Path(path).name), real(path, **kw))
    save_figure(fig, tmp_path / "fig.png")
    assert written == [f".fig.png.{os.getpid()}.tmp.png"]
    assert listing(tmp_path) == ["fig.png"]


def test_a_wfdb_write_removes_the_record_folders_of_killed_writes(tmp_path: Path, monkeypatch):
    """WFDB records are written in a hidden folder ``.innpar-PID-*`` before they are
    staged: a killed write leaves it, the next WFDB write in that folder removes it (a
    running write's stays). Guards against the folder naming no process (nothing could
    tell whose it was) and against removing a running write's."""
    dead, alive = dead_pid(), os.getppid()
    (tmp_path / f".innpar-{dead}-k1ll3d00").mkdir()
    (tmp_path / f".innpar-{dead}-k1ll3d00" / "abp.dat").write_bytes(b"half")
    (tmp_path / f".innpar-{alive}-w0rk1ng0").mkdir()
    import wfdb

    real, folders = wfdb.wrsamp, []
    monkeypatch.setattr(
        wfdb,
        "wrsamp",
        lambda *a, **kw: (folders.append(Path(kw["write_dir"]).name), real(*a, **kw)),
    )
    with StagedOutputs() as staged:
        write_recording(staged, tmp_path / "abp.hea", "wfdb", 125.0, "ABP", np.ones(10), "mmHg")
    assert listing(tmp_path) == sorted(["abp.dat", "abp.hea", f".innpar-{alive}-w0rk1ng0"])
    assert len(folders) == 1 and folders[0].startswith(f".innpar-{os.getpid()}-")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_during_a_commit_comes_after_every_output_is_in_place(
    tmp_path: Path, signum, capsys
):
    """Ctrl-C (or SIGTERM) while outputs are renamed into place, one by one, left them half
    new and half old (a new abp.csv without its beats and summary, an old report beside new
    figures), the rest under hidden names. Guards against renaming with the signals not
    held: here one arrives at the first rename, and is raised once all are in place, said
    first (click's "Aborted!" alone read as if nothing had been written)."""
    for name in ("abp.csv", "abp.beats.csv", "old-figure.png"):
        (tmp_path / name).write_text("old")
    real_replace, renamed = os.replace, []

    def replace(src, dst) -> None:
        if not renamed:
            signal.raise_signal(signum)  # as if the user pressed Ctrl-C now
        renamed.append(Path(dst).name)
        real_replace(src, dst)

    def stop(got, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signum, stop)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "replace", replace)
            with pytest.raises(KeyboardInterrupt):
                with StagedOutputs() as staged:
                    for name in ("abp.csv", "abp.beats.csv", "abp.summary.json"):
                        staged.write_text(tmp_path / name, "new")
                    staged.remove_on_commit([tmp_path / "old-figure.png"])
    finally:
        signal.signal(signum, previous)
    assert renamed == ["abp.csv", "abp.beats.csv", "abp.summary.json"]
    assert (
        capsys.readouterr().err == f"interrupted once all 3 outputs (in {tmp_path}) were in place\n"
    )
    assert listing(tmp_path) == ["abp.beats.csv", "abp.csv", "abp.summary.json"]
    assert all((tmp_path / n).read_text() == "new" for n in listing(tmp_path))
    assert signal.getsignal(signum) is previous  # the handlers are put back


def test_a_signal_held_during_a_failed_block_is_delivered_without_the_notice(capsys):
    """The notice says the outputs are in place: not when the block failed before its end
    (a rename refused), where the error is what the user must read. The signal still comes."""

    def stop(got, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_deferred("interrupted once OUT was in place"):
                signal.raise_signal(signal.SIGINT)
                raise OSError("rename refused")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert capsys.readouterr().err == ""


def test_a_sync_that_fails_in_a_commit_leaves_every_output_as_it_was(tmp_path: Path):
    """A full disk found only by the sync (delayed allocation) stops the commit before any
    rename: the old outputs stay, the staged files go, and the error names the output.
    Guards against the staged files staying (the commit's failure skipped the abort)."""
    (tmp_path / "a.txt").write_text("old a")
    calls = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", fsync)
        with pytest.raises(DataError) as err:
            with StagedOutputs() as staged:
                staged.write_text(tmp_path / "a.txt", "new a")
                staged.write_text(tmp_path / "b.txt", "new b")
    assert listing(tmp_path) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old a"
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    assert str(err.value) == f"cannot write {a}, {b}: No space left on device"


@pytest.mark.parametrize("case", ["folder", "own folder", "twice"])
def test_a_commit_that_a_rename_would_fail_replaces_none_of_the_outputs(tmp_path: Path, case):
    """An output that is a folder (report.md made a folder; --save-predictions naming the
    report's own folder, made by the staging) failed at its rename, after the outputs
    before it were in place: the command said it had failed and left a report. Guards
    against renaming before every output is known to be replaceable: nothing is written,
    and the staged files and the folders made for them go."""
    (tmp_path / "metrics.json").write_text("old")
    if case == "folder":
        (tmp_path / "report.md").mkdir()
    with pytest.raises(DataError) as err:
        with StagedOutputs() as staged:
            staged.write_text(tmp_path / "metrics.json", "new")
            if case == "own folder":
                staged.write_text(tmp_path / "out" / "report.md", "new")
                staged.write_text(tmp_path / "out", "predictions")
            else:
                staged.write_text(tmp_path / "report.md", "new")
                if case == "twice":
                    staged.write_text(tmp_path / "report.md", "again")
    final = tmp_path / ("out" if case == "own folder" else "report.md")
    assert str(err.value) == (
        f"{final} would be written twice by one command"
        if case == "twice"
        else f"cannot write {final}: it is a folder; give a file name"
    )
    assert (tmp_path / "metrics.json").read_text() == "old"
    expected = ["metrics.json", "report.md"] if case == "folder" else ["metrics.json"]
    assert listing(tmp_path) == expected


def test_commit_with_a_file_never_written_replaces_none_of_the_outputs(tmp_path: Path):
    """Guards against commit renaming as it goes without first checking that every staged
    file was written: the first output was replaced, then the commit failed, leaving a
    mix of the old and the new outputs."""
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")
    staged = StagedOutputs()
    staged.write_text(tmp_path / "a.txt", "new a")
    staged.stage(tmp_path / "b.txt")  # never written
    with pytest.raises(FileNotFoundError, match="staged output was never written"):
        staged.commit()
    assert (tmp_path / "a.txt").read_text() == "old a" and (
        tmp_path / "b.txt"
    ).read_text() == "old b"


def test_an_error_in_the_block_commits_nothing_and_removes_what_it_made(tmp_path: Path):
    """Guards against __exit__ committing on an exception, or not aborting: the outputs of
    a failed command appeared, or its hidden files and the folders made for them stayed."""
    (tmp_path / "keep.txt").write_text("old")

    class Stopped(Exception):
        pass

    with pytest.raises(Stopped), StagedOutputs() as staged:
        staged.write_text(tmp_path / "keep.txt", "new")
        staged.write_text(tmp_path / "x" / "y" / "z" / "out.txt", "new")
        raise Stopped
    assert listing(tmp_path) == ["keep.txt"] and (tmp_path / "keep.txt").read_text() == "old"


def test_abort_removes_staged_files_and_the_folders_it_made(tmp_path: Path):
    """Guards against abort leaving the staged files, or the folders it created (removed
    innermost first: outermost first, each is "not empty" and stays)."""
    (tmp_path / "mine").mkdir()
    staged = StagedOutputs()
    staged.write_text(tmp_path / "mine" / "a.txt", "a")
    staged.write_text(tmp_path / "new" / "deep" / "b.txt", "b")
    staged.abort()
    assert listing(tmp_path) == ["mine"]


def test_a_failed_write_names_the_output_not_the_hidden_file(tmp_path: Path):
    """Guards against __exit__ passing on an OSError that names the hidden staged file
    (gone by then) instead of the output the user asked for."""
    final = tmp_path / "out.txt"
    with pytest.raises(OSError) as info, StagedOutputs() as staged:
        tmp = staged.stage(final)
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert info.value.filename == str(final)
    assert listing(tmp_path) == []


def test_a_failed_write_without_a_file_name_is_one_message_naming_the_outputs(tmp_path: Path):
    """Guards against a write() error that names no file (a full disk met in the middle of
    a write) escaping as a bare OSError, or naming the hidden staged files."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    with pytest.raises(DataError) as info, StagedOutputs() as staged:
        staged.write_text(a, "x")
        staged.stage(b)
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(info.value) == f"cannot write {a}, {b}: No space left on device"
    assert listing(tmp_path) == []


def test_a_data_error_about_a_staged_file_names_the_output(tmp_path: Path):
    """Guards against a DataError raised while writing (by a writer that names the file it
    writes) passing on the hidden staged name instead of the output's."""
    final = tmp_path / "p.h5"
    with pytest.raises(DataError) as info, StagedOutputs() as staged:
        tmp = staged.stage(final)
        raise DataError(f"{tmp}: the windows do not fit")
    assert str(info.value) == f"{final}: the windows do not fit"


# --------------------------------------------------------------------------------------
# check_outputs, check_writable
# --------------------------------------------------------------------------------------


def test_existing_outputs_are_refused_without_force_and_all_are_named(tmp_path: Path):
    """Guards against the --force logic inverted, and against naming only the first of
    several existing outputs."""
    a, b, c = tmp_path / "a.json", tmp_path / "b.md", tmp_path / "c.html"
    a.write_text("a")
    b.write_text("b")
    with pytest.raises(DataError) as info:
        check_outputs([a, b, c], force=False)
    assert str(info.value) == f"output exists: {a}, {b}; pass force=True to replace them"
    check_outputs([a, b, c], force=True)
    check_outputs([c], force=False)


@pytest.mark.parametrize("force", [False, True])
def test_an_output_that_is_a_folder_or_a_device_is_refused_even_with_force(tmp_path, force):
    """Guards against checking only for folders (``/dev/null`` is not a folder, and root
    replaced it with a file) or not checking at all."""
    for target in (tmp_path, Path(os.devnull)):
        with pytest.raises(DataError, match=f"output {target} exists and is not a regular file"):
            check_outputs([target], force=force)


def test_an_output_that_is_an_input_by_another_name_is_refused(tmp_path: Path):
    """Guards against the same-file check compared by resolved path (a hard link is the
    same file under another name, and --force replaced the input) and against a message
    that swaps which is the output and which the input."""
    data = tmp_path / "data.h5"
    data.write_text("the input")
    link = tmp_path / "linked.h5"
    os.link(data, link)
    with pytest.raises(DataError) as info:
        check_outputs([link], force=True, inputs=[data])
    assert str(info.value) == f"output {link} is the input {data}; choose another output name"
    check_outputs([tmp_path / "new.h5"], force=True, inputs=[data])


def test_a_read_only_folder_is_found_however_deep_the_output_is(tmp_path: Path, monkeypatch):
    """Guards against check_writable going up one missing folder only (an output two new
    folders below a read-only one was found unwritable after the work), asking for read
    rather than write permission, or not being run by check_outputs. (Simulated: this may
    run as root; os.access answers what a read-only file system would.)"""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access

    def access(path, mode):
        if Path(path) == locked and mode & os.W_OK:
            return False
        return real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    for out in (locked / "a.json", locked / "new" / "deeper" / "a.json"):
        with pytest.raises(DataError) as info:
            check_outputs([out], force=False)
        assert str(info.value) == (
            f"cannot write {out}: {locked} is not writable (read-only, or no permission)"
        )
    check_outputs([tmp_path / "new" / "deeper" / "a.json"], force=False)


# --------------------------------------------------------------------------------------
# Recording formats
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("abp.CSV", "csv"),
        ("abp.NPZ", "npz"),
        ("rec.dat", "wfdb"),
        ("rec.hea", "wfdb"),
        ("rec", "npy"),
    ],
)
def test_output_format_follows_the_suffix_whatever_its_case(name: str, fmt: str):
    """Guards against a case-sensitive suffix ("ABP.CSV" refused as unknown), a WFDB
    output named by its .dat file refused, and a bare name not taking the input's format."""
    assert output_format(name, "npy") == fmt


def test_output_format_refuses_hdf5_and_unknown_suffixes_with_their_reasons():
    """Guards against an unknown suffix taken as the input's format (abp.txt written as
    abp.txt.csv) and against HDF5 given the generic message instead of its own."""
    with pytest.raises(DataError, match=r"abp\.txt: unknown output suffix '\.txt'"):
        output_format("abp.txt", "csv")
    with pytest.raises(DataError, match=r"p\.h5: HDF5 output is for a window-file input"):
        output_format("p.h5", "csv")


def test_recording_paths_of_each_format():
    """Guards against a WFDB record without its .dat file, and an upper-case suffix
    doubled (out.CSV written as out.CSV.csv)."""
    assert recording_paths("d/rec.dat", "wfdb") == [Path("d/rec.hea"), Path("d/rec.dat")]
    assert recording_paths("d/rec", "wfdb") == [Path("d/rec.hea"), Path("d/rec.dat")]
    assert recording_paths("out.CSV", "csv") == [Path("out.CSV")]
    assert recording_paths("out", "npz") == [Path("out.npz")]


def test_a_csv_recording_has_the_input_s_clock_and_empty_cells_for_nan(tmp_path: Path):
    """Guards against the CSV's time column starting at 0 instead of the input's clock,
    rounded times, values rounded to 3 digits, and NaN written as "nan" (read back as a
    number by spreadsheets, not as a gap)."""
    values = np.array([101.23456, np.nan, 99.5])
    with StagedOutputs() as staged:
        finals = write_recording(
            staged, tmp_path / "abp.csv", "csv", 4.0, "abp", values, "mmHg", 3600.125
        )
    assert finals == [tmp_path / "abp.csv"]
    rows = list(csv.reader((tmp_path / "abp.csv").open()))
    assert rows == [
        ["time_s", "abp"],
        ["3600.125000", "101.235"],
        ["3600.375000", ""],
        ["3600.625000", "99.5"],
    ]


def test_npy_and_npz_recordings_keep_float64_rate_and_clock(tmp_path: Path):
    """Guards against an NPY written in the caller's dtype (float32 values rounded, while
    the docs promise float64), and an NPZ without its ``fs`` or with its clock reset."""
    values = np.array([1.0 + 1e-9, 2.0, np.nan], dtype=np.float64)
    with StagedOutputs() as staged:
        write_recording(
            staged, tmp_path / "a.npy", "npy", 125.0, "abp", values.astype(np.float32), "mmHg"
        )
        write_recording(staged, tmp_path / "b.npz", "npz", 125.0, "abp", values, "mmHg", 12.5)
    a = np.load(tmp_path / "a.npy")
    assert a.dtype == np.float64 and a[0] == np.float64(np.float32(1.0 + 1e-9))
    b = np.load(tmp_path / "b.npz")
    assert sorted(b.files) == ["abp", "fs", "start_s"]
    assert b["fs"] == 125.0 and b["start_s"] == 12.5
    np.testing.assert_array_equal(b["abp"], values)
    assert listing(tmp_path) == ["a.npy", "b.npz"]


def test_a_wfdb_recording_keeps_16_bit_values_and_its_clock(tmp_path: Path):
    """Guards against a WFDB record in 8-bit format (ABP to about 1 mmHg in 256 levels),
    without its start_s comment, or with a record name WFDB cannot read back; and against
    the temporary folder wfdb.wrsamp writes into being left behind."""
    import wfdb

    values = 80.0 + 40.0 * np.sin(np.linspace(0.0, 6.0, 500))
    with StagedOutputs() as staged:
        finals = write_recording(
            staged, tmp_path / "rec.hea", "wfdb", 125.0, "abp", values, "mmHg", 42.0
        )
    assert finals == [tmp_path / "rec.hea", tmp_path / "rec.dat"]
    assert listing(tmp_path) == ["rec.dat", "rec.hea"]
    record = wfdb.rdrecord(str(tmp_path / "rec"))
    assert record.fmt == ["16"] and record.comments == ["start_s=42.0"]
    # 16 bits over a range of 80 mmHg: steps of about 0.0012 mmHg.
    assert np.abs(record.p_signal[:, 0] - values).max() < 0.01
    with (
        pytest.raises(DataError, match="a WFDB record name may hold only ASCII letters"),
        StagedOutputs() as staged,
    ):
        write_recording(staged, tmp_path / "my rec.hea", "wfdb", 125.0, "abp", values, "mmHg")
    # Letters outside ASCII too: "ö12" was written, and then refused by read_wfdb.
    with (
        pytest.raises(
            DataError, match="may hold only ASCII letters, digits, '_' and '-', not 'ö12'"
        ),
        StagedOutputs() as staged,
    ):
        write_recording(staged, tmp_path / "ö12.hea", "wfdb", 125.0, "abp", values, "mmHg")
    assert listing(tmp_path) == ["rec.dat", "rec.hea"]


def test_an_unknown_recording_format_is_refused(tmp_path: Path):
    """Bug found by the audit: write_recording's DataError for a format it does not know
    was never reached, since recording_paths, called first, failed with a bare KeyError
    ('edf') for it."""
    message = r"cannot write format 'edf'; use one of wfdb, csv, npy, npz"
    with pytest.raises(DataError, match=message):
        recording_paths(tmp_path / "a.edf", "edf")
    with pytest.raises(DataError, match=message), StagedOutputs() as staged:
        write_recording(staged, tmp_path / "a.edf", "edf", 125.0, "abp", np.zeros(3), "mmHg")
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------


def test_jsonable_converts_numpy_paths_and_non_finite_values():
    """Guards against jsonable leaving NaN (json.dumps(allow_nan=False) raises), numpy
    arrays, numpy keys, paths or tuples holding numpy values unconverted, and Python
    booleans turned into 0/1."""
    obj = {
        np.int64(3): (np.float32(0.5), np.nan),
        "flag": True,
        "np_flag": np.bool_(False),
        "path": Path("a/b.h5"),
        "arr": np.array([[1, 2]], dtype=np.int32),
        "inf": float("inf"),
    }
    assert jsonable(obj) == {
        "3": [0.5, None],
        "flag": True,
        "np_flag": False,
        "path": "a/b.h5",
        "arr": [[1, 2]],
        "inf": None,
    }
    assert jsonable(True) is True
    text = json_text({"a": np.float64(1.5), "b": (np.int16(2),)})
    assert text == '{\n  "a": 1.5,\n  "b": [\n    2\n  ]\n}\n'


# --------------------------------------------------------------------------------------
# Setting a run aside, putting it back, finishing after a kill
# --------------------------------------------------------------------------------------


def test_set_aside_moves_what_exists_and_is_named_after_its_owner(tmp_path: Path):
    """Guards against set_aside trying to move names that do not exist (FileNotFoundError),
    moving nothing, writing no list of what it moved, or naming its folder after anything
    but this host and process (then a running replacement could be taken for a dead one)."""
    (tmp_path / "config.json").write_text("c")
    (tmp_path / "mine.txt").write_text("m")
    aside = set_aside(tmp_path, ("config.json", "checkpoints"))
    assert aside.name.startswith(f".replaced.{socket.gethostname()}.{os.getpid()}.")
    assert sorted(os.listdir(aside)) == [".moved", "config.json"]
    assert (aside / ".moved").read_text() == "config.json\n"
    assert sorted(os.listdir(tmp_path)) == [aside.name, "mine.txt"]


def test_put_back_restores_entries_beyond_the_names_and_removes_the_new_ones(tmp_path: Path):
    """Guards against put_back returning only ``names`` (a run's report set aside with it
    was lost), leaving what the failed replacement wrote under a name that was not set
    aside, or keeping the set-aside folder."""
    (tmp_path / "config.json").write_text("old config")
    (tmp_path / "eval-test").mkdir()
    (tmp_path / "eval-test" / "m.json").write_text("old report")
    aside = set_aside(tmp_path, ("config.json", "eval-test", "checkpoints"))
    (tmp_path / "config.json").write_text("new config")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_text("new")
    put_back(tmp_path, aside, ("config.json", "checkpoints"))
    assert listing(tmp_path) == ["config.json", "eval-test", "eval-test/m.json"]
    assert (tmp_path / "config.json").read_text() == "old config"


def test_put_back_of_a_set_aside_killed_before_its_list_touches_nothing(tmp_path: Path):
    """Guards against put_back, finding neither a list nor anything set aside (killed in
    set_aside before the list), going on as if the current entries were the replacement's:
    they are the old run's, never moved."""
    (tmp_path / "config.json").write_text("old config")
    aside = tmp_path / ".replaced.h.1.x"
    aside.mkdir()
    put_back(tmp_path, aside, ("config.json",))
    assert listing(tmp_path) == ["config.json"]
    assert (tmp_path / "config.json").read_text() == "old config"


def test_put_back_without_a_list_restores_what_was_set_aside(tmp_path: Path):
    """Guards against put_back dropping a set-aside folder that has no list (made by a
    version that kept none) even though old entries are in it: they were lost."""
    aside = tmp_path / ".replaced.h.1.x"
    aside.mkdir()
    (aside / "config.json").write_text("old config")
    (tmp_path / "config.json").write_text("new config")
    (tmp_path / "checkpoints").mkdir()
    put_back(tmp_path, aside, ("config.json", "checkpoints"))
    assert listing(tmp_path) == ["config.json"]
    assert (tmp_path / "config.json").read_text() == "old config"


def test_put_back_removes_a_symlink_the_replacement_made_not_what_it_points_to(tmp_path: Path):
    """Guards against put_back treating a symlink to a folder as a folder: rmtree refuses
    a symlink (an OSError, the old run stayed set aside)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "best.pt").write_text("old")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "f").write_text("kept")
    aside = set_aside(run, ("checkpoints",))
    (run / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    put_back(run, aside, ("checkpoints",))
    assert listing(run) == ["checkpoints", "checkpoints/best.pt"]
    assert not (run / "checkpoints").is_symlink() and (elsewhere / "f").read_text() == "kept"


def test_put_back_replaces_a_file_written_where_a_folder_was(tmp_path: Path):
    """Guards against put_back moving an old entry back without first removing what the
    replacement wrote there (a folder cannot replace a file)."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.pt").write_text("old")
    aside = set_aside(tmp_path, ("checkpoints",))
    (tmp_path / "checkpoints").write_text("a file now")
    put_back(tmp_path, aside, ("checkpoints",))
    assert listing(tmp_path) == ["checkpoints", "checkpoints/best.pt"]


def abandoned(folder: Path, host: str, pid: int, entries: dict[str, str]) -> Path:
    """A set-aside folder as a replacement killed outright leaves it."""
    aside = folder / f".replaced.{host}.{pid}.abc123"
    aside.mkdir()
    for name, text in entries.items():
        (aside / name).write_text(text)
    (aside / ".moved").write_text("".join(f"{n}\n" for n in entries))
    return aside


@pytest.mark.parametrize("finished", [False, True])
def test_recover_puts_back_or_drops_what_a_dead_replacement_left(tmp_path: Path, finished: bool):
    """Guards against recover_set_aside swapping its two cases (an unfinished replacement's
    old run dropped; a finished one's brought back over it) and not saying it put back."""
    (tmp_path / "config.json").write_text("new")
    abandoned(tmp_path, socket.gethostname(), dead_pid(), {"config.json": "old"})
    assert recover_set_aside(tmp_path, ("config.json",), finished) is (not finished)
    assert listing(tmp_path) == ["config.json"]
    assert (tmp_path / "config.json").read_text() == ("new" if finished else "old")


def test_recover_leaves_alone_what_it_cannot_tell_is_abandoned(tmp_path: Path):
    """Guards against recover_set_aside touching a folder of another host (its process
    ids mean nothing here), of a live process, a name not of set_aside's form (int() of
    a non-number raised), or a file that happens to have such a name."""
    (tmp_path / "config.json").write_text("new")
    others = [
        abandoned(tmp_path, "another-host", dead_pid(), {"config.json": "old"}),
        abandoned(tmp_path, socket.gethostname(), os.getppid(), {"config.json": "old"}),
    ]
    (tmp_path / ".replaced.by.me.notes").mkdir()
    (tmp_path / f".replaced.{socket.gethostname()}.{dead_pid()}.file").write_text("x")
    before = listing(tmp_path)
    assert recover_set_aside(tmp_path, ("config.json",), finished=False) is False
    assert recover_set_aside(tmp_path, ("config.json",), finished=True) is False
    assert listing(tmp_path) == before and all(o.is_dir() for o in others)


def test_recover_reads_a_host_name_with_dots(tmp_path: Path, monkeypatch):
    """Guards against taking the host as the first dot-separated part of the folder name:
    on a host named node1.cluster nothing a killed replacement left was ever recovered."""
    monkeypatch.setattr(socket, "gethostname", lambda: "node1.cluster")
    (tmp_path / "config.json").write_text("new")
    abandoned(tmp_path, "node1.cluster", dead_pid(), {"config.json": "old"})
    assert recover_set_aside(tmp_path, ("config.json",), finished=False) is True
    assert (tmp_path / "config.json").read_text() == "old"


def test_process_alive(monkeypatch):
    """Guards against process_alive swapping its answers: an ended process alive (what it
    left was never recovered), or one of another user (PermissionError) dead (what it is
    still writing was put back under it)."""
    assert process_alive(os.getpid()) is True
    assert process_alive(dead_pid()) is False

    def not_mine(pid, sig):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "kill", not_mine)
    assert process_alive(12345) is True


def test_wait_for_recovery_waits_while_something_is_left_to_recover(tmp_path: Path):
    """Guards against wait_for_recovery returning at once: another rank then found the old
    run still set aside ("nothing to resume")."""
    abandoned(tmp_path, socket.gethostname(), dead_pid(), {"config.json": "old"})
    start = time.monotonic()
    wait_for_recovery(tmp_path, timeout_s=0.5)
    assert time.monotonic() - start >= 0.5
    start = time.monotonic()
    wait_for_recovery(tmp_path / "elsewhere", timeout_s=5.0)
    assert time.monotonic() - start < 1.0


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------

NORM = {"method": "minmax", "abp_offset": 40.0, "abp_scale": 160.0, "ppg": "zscore-per-window"}
BASELINES = {
    "abp_mean": 90.0,
    "sbp_mean": 120.0,
    "dbp_mean": 70.0,
    "map_mean": 87.0,
    "linear_a": 3.0,
    "linear_b": 88.0,
}


def tiny_payload(preset: str = "tiny") -> dict:
    config = resolve_config(preset, train={"device": "cpu"})
    model = build_model(config.model, seed=1)
    return {
        "run_config": config.to_dict(),
        "model_state": model.state_dict(),
        "normalisation": dict(NORM),
        "baselines": dict(BASELINES),
        "data": {"file": "synth.h5", "fs": 125.0},
        "epoch": 7,
        "metrics": {"val_loss": 0.25},
    }


@pytest.fixture
def ckpt_path(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "tiny.pt", tiny_payload())


def edited(ckpt_path: Path, edit) -> Path:
    payload = torch.load(ckpt_path, weights_only=True)
    edit(payload)
    path = ckpt_path.with_name("edited.pt")
    torch.save(payload, path)
    return path


def test_a_checkpoint_round_trips_everything_it_holds(ckpt_path: Path):
    """Guards against save or load dropping or swapping what a checkpoint holds: the
    baselines, epoch, data description, metrics, package and FrEIA versions, the
    normalisation's offset and scale; and against a model not left in eval mode."""
    raw = torch.load(ckpt_path, weights_only=True)
    assert raw["format"] == FORMAT and raw["format_version"] == FORMAT_VERSION
    assert raw["package_version"] == innpar_freia.__version__
    try:
        freia = importlib.metadata.version("FrEIA")
    except importlib.metadata.PackageNotFoundError:
        freia = "unknown"
    assert raw["freia_version"] == freia
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt.normalisation.abp_offset == 40.0 and ckpt.normalisation.abp_scale == 160.0
    assert ckpt.baselines is not None and ckpt.baselines.to_dict() == BASELINES
    assert ckpt.epoch == 7 and ckpt.metrics == {"val_loss": 0.25}
    assert ckpt.data == {"file": "synth.h5", "fs": 125.0}
    assert ckpt.package_version == innpar_freia.__version__
    assert ckpt.model.training is False
    for key, value in tiny_payload()["model_state"].items():
        assert torch.equal(ckpt.model.state_dict()[key], value), key


def test_save_checkpoint_makes_its_folder(tmp_path: Path):
    """Guards against save_checkpoint not creating the checkpoint's folder (a new run's
    checkpoints/ folder)."""
    path = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", tiny_payload())
    assert listing(tmp_path) == ["run", "run/checkpoints", "run/checkpoints/best.pt"]
    assert load_checkpoint(path).epoch == 7


@pytest.mark.parametrize(
    "error", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError("unexpected pos 64")]
)
def test_a_failed_save_keeps_the_old_checkpoint_and_leaves_no_temporary_file(
    ckpt_path: Path, monkeypatch, error
):
    """Guards against writing the checkpoint in place (a failure midway truncated the last
    good one), leaving the temporary file, letting torch's zip-writer RuntimeError through,
    and a message naming the temporary file."""
    before = ckpt_path.read_bytes()

    def failing_save(obj, fh):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise error

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(ckpt_path, tiny_payload())
    assert str(info.value).startswith(f"cannot write {ckpt_path}: ")
    assert ckpt_path.read_bytes() == before and os.listdir(ckpt_path.parent) == [ckpt_path.name]


def test_a_full_disk_while_saving_a_checkpoint_says_so(ckpt_path: Path, monkeypatch):
    """A disk that fills while a checkpoint is written (a small tmpfs: "No space left on
    device" after some bytes). Guards against torch.save writing to the file itself: its
    zip writer swallowed the error and said "unexpected pos 832 vs 726", without the
    reason; the old checkpoint stays and no temporary file is left."""
    import builtins

    before = ckpt_path.read_bytes()
    real_open = builtins.open

    class FillingFile:
        """A file on a disk with 1,000 bytes left."""

        def __init__(self, fh):
            self.fh, self.left = fh, 1000

        def write(self, data) -> int:
            size = memoryview(data).nbytes
            if size > self.left:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.left -= size
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.fh.close()

    def filling_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return FillingFile(fh) if "w" in mode and ".tmp" in str(file) else fh

    monkeypatch.setattr(builtins, "open", filling_open)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(ckpt_path, tiny_payload())
    assert str(info.value) == f"cannot write {ckpt_path}: No space left on device"
    assert ckpt_path.read_bytes() == before and os.listdir(ckpt_path.parent) == [ckpt_path.name]


def test_a_folder_given_as_a_checkpoint_is_said_to_be_one(tmp_path: Path):
    """Guards against a folder reported as "checkpoint not found" (it is there: the user
    gave the run's folder instead of the file in it)."""
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint file"):
        read_checkpoint(tmp_path)


def test_a_fifo_given_as_a_checkpoint_is_refused_without_reading_it(tmp_path: Path):
    """Guards against checking only that the checkpoint path exists: torch.load then opened
    a FIFO (or /dev/stdin) and waited for a writer for ever. (It was refused, but as
    "checkpoint not found", which it is not: the message now says what it is.)"""
    fifo = tmp_path / "best.pt"
    os.mkfifo(fifo)
    errors: list[str] = []

    def read() -> None:
        try:
            read_checkpoint(fifo)
        except CheckpointError as exc:
            errors.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5.0)
    blocked = reader.is_alive()
    if blocked:  # give the blocked reader an end of file, so that it ends
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        reader.join(5.0)
    assert not blocked and errors == [f"{fifo} is not a regular file, not a checkpoint file"]


class Foreign:
    """Not a tensor nor a plain value: refused by ``weights_only=True``."""


def test_a_file_with_objects_is_not_unpickled_and_no_unsafe_advice_is_given(tmp_path: Path):
    """Guards against loading with ``weights_only=False`` (a checkpoint's code would run)
    and against passing on torch's advice to do so."""
    path = tmp_path / "foreign.pt"
    torch.save({"format": FORMAT, "format_version": 1, "thing": Foreign()}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == (
        f"{path} is not a readable innpar-freia checkpoint (corrupt or another format: "
        "not a PyTorch file of tensors and plain values)"
    )


def test_a_truncated_or_empty_checkpoint_is_named_so(ckpt_path: Path, tmp_path: Path):
    """A checkpoint cut short (an interrupted copy) was "corrupt or another format: [Errno
    22] Invalid argument", or torch's paragraph about miniz; an empty file "EOFError"."""
    cut = tmp_path / "cut.pt"
    data = ckpt_path.read_bytes()
    for size in (5000, len(data) // 2):
        cut.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match="truncated or damaged") as info:
            read_checkpoint(cut)
        assert "Errno" not in str(info.value) and "miniz" not in str(info.value)
    cut.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"another format: the file is empty\)$"):
        read_checkpoint(cut)


def test_a_dict_without_the_format_marker_is_not_a_checkpoint(tmp_path: Path):
    """Guards against reading any PyTorch dict as a checkpoint: a foreign file's keys
    were then called missing, as if it were a damaged checkpoint of ours."""
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "format_version": 1}, path)
    with pytest.raises(CheckpointError, match=f"no '{FORMAT}' format marker"):
        read_checkpoint(path)


@pytest.mark.parametrize("version", [True, "1", 1.0])
def test_a_format_version_that_is_not_a_whole_number_is_damage(ckpt_path, version):
    """Guards against a format version of True (== 1) accepted, or a string compared with
    an int (a TypeError traceback)."""
    path = edited(ckpt_path, lambda p: p.update(format_version=version))
    with pytest.raises(CheckpointError, match=rf"is damaged: its format version is {version!r}"):
        read_checkpoint(path)


def test_a_checkpoint_without_a_format_version_is_read_as_an_old_one(ckpt_path: Path):
    """Guards against a missing format version raising KeyError (a traceback): a
    checkpoint with the marker and no version predates versions, and is read."""
    path = edited(ckpt_path, lambda p: p.pop("format_version"))
    assert "format_version" not in read_checkpoint(path)


@pytest.mark.parametrize("key", ["run_config", "model_state", "normalisation"])
def test_a_checkpoint_missing_a_part_is_incomplete(ckpt_path: Path, key: str):
    """Guards against dropping any of the three from the completeness check: each missing
    one then failed later (a KeyError traceback, or a message blaming another part)."""
    path = edited(ckpt_path, lambda p: p.pop(key))
    with pytest.raises(CheckpointError, match=f"is incomplete: it has no '{key}'"):
        load_checkpoint(path)


def test_an_invalid_configuration_is_a_checkpoint_error(ckpt_path: Path):
    """Guards against the configuration's ConfigError escaping load_checkpoint without
    saying which checkpoint holds it."""
    path = edited(ckpt_path, lambda p: p["run_config"]["model"].update(blocks=-3))
    with pytest.raises(CheckpointError, match=f"{path} holds an invalid configuration: "):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.update(model_state=[1, 2]), "is damaged: its weights are a list"),
        (lambda p: p["model_state"].pop(next(iter(p["model_state"]))), "weights do not fit"),
        (
            lambda p: p["model_state"].update({k: "x" for k in list(p["model_state"])[:1]}),
            "weights do not fit",
        ),
        (lambda p: p["model_state"].update({1: torch.zeros(1)}), "weights do not fit"),
    ],
)
def test_weights_that_do_not_fit_are_one_message(ckpt_path: Path, edit, message):
    """Guards against weights loaded with strict=False (a missing weight kept its random
    initial value), and a list of weights, a weight of the wrong type or a key that is not
    a name (torch's AttributeError) crashing in torch."""
    path = edited(ckpt_path, edit)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_non_finite_weights_are_damage(ckpt_path: Path):
    """Guards against loading NaN weights: every prediction would be NaN, blamed on the
    input."""

    def edit(payload):
        key = next(k for k, v in payload["model_state"].items() if v.is_floating_point())
        payload["model_state"][key] = torch.full_like(payload["model_state"][key], float("nan"))

    with pytest.raises(
        CheckpointError, match="is damaged: some of its weights are NaN or infinite"
    ):
        load_checkpoint(edited(ckpt_path, edit))


@pytest.mark.parametrize(
    ("field", "value"), [("abp_offset", float("nan")), ("abp_scale", float("inf"))]
)
def test_non_finite_normalisation_is_damage(ckpt_path: Path, field: str, value: float):
    """Guards against checking only the scale's sign: a NaN offset or infinite scale made
    every prediction NaN."""
    path = edited(ckpt_path, lambda p: p["normalisation"].update({field: value}))
    with pytest.raises(CheckpointError, match="is damaged: its ABP normalisation is offset"):
        load_checkpoint(path)


UNREADABLE = "normalisation, baselines or run record cannot be read"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.update(normalisation=["minmax", 40.0, 160.0]), "normalisation is a list"),
        (lambda p: p.update(baselines={"abp_mean": 1.0}), UNREADABLE),
        (lambda p: p.update(epoch="seven"), UNREADABLE),
    ],
)
def test_an_unreadable_run_record_is_one_message(ckpt_path: Path, edit, message):
    """Guards against catching only KeyError there: a normalisation of the wrong type,
    baselines missing fields (TypeError) or a non-numeric epoch (ValueError) were
    tracebacks."""
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(edited(ckpt_path, edit))


def test_loading_does_not_draw_from_the_caller_s_random_numbers(ckpt_path: Path):
    """Guards against building the model unseeded: the caller's seeded script got other
    random numbers after loading a checkpoint."""
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_checkpoint(ckpt_path)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("saved", "coupling", "refused"),
    [
        ("0.2", "allinone", True),
        ("0.2", "innpar", False),
        (None, "allinone", False),
        ("unknown", "allinone", False),
        ("9.9", "allinone", False),  # the installed one (patched below)
    ],
)
def test_check_freia_version(monkeypatch, saved, coupling, refused):
    """Guards against the FrEIA check applied to the wrong coupling, refusing the version
    that is installed, or comparing versions that cannot be read."""
    import innpar_freia.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "freia_version", lambda: "9.9")
    payload = {} if saved is None else {"freia_version": saved}
    if refused:
        with pytest.raises(CheckpointError, match=r"trained with FrEIA 0\.2, but FrEIA 9\.9"):
            check_freia_version("c.pt", payload, coupling)
    else:
        check_freia_version("c.pt", payload, coupling)
    monkeypatch.setattr(checkpoint, "freia_version", lambda: "unknown")
    check_freia_version("c.pt", {"freia_version": "0.2"}, "allinone")


# --------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------


@pytest.fixture
def ckpt(ckpt_path: Path):
    return load_checkpoint(ckpt_path)


def ppg_windows(n: int, length: int) -> np.ndarray:
    t = np.arange(length) / 125.0
    return np.stack([np.sin(2 * np.pi * (1.0 + 0.1 * k) * t) + 0.2 * k for k in range(n)])


def test_predictions_do_not_depend_on_the_batch_size(ckpt):
    """Guards against the batch loop stopping one window short (the last window of a
    batch size of 1 left uninitialised)."""
    ppg = ppg_windows(3, ckpt.window_length)
    # In reverse order first: a window left out of the loop holds some other window's output.
    whole = ckpt.predict_abp(ppg[::-1], batch_size=512)[::-1]
    assert np.abs(whole[0] - whole[2]).max() > 1.0
    np.testing.assert_allclose(ckpt.predict_abp(ppg, batch_size=1), whole, atol=1e-3)
    np.testing.assert_allclose(ckpt.predict_abp(ppg, batch_size=2), whole, atol=1e-3)


def test_ppg_is_z_scored_per_window_before_the_network(ckpt):
    """Guards against PPG passed to the network in its own units: PPG's units are
    arbitrary, so a window scaled and shifted must give the same ABP."""
    ppg = ppg_windows(2, ckpt.window_length)
    np.testing.assert_allclose(
        ckpt.predict_abp(3.0 * ppg + 7.0), ckpt.predict_abp(ppg), rtol=1e-5, atol=1e-4
    )


def test_predict_ppg_normalises_abp_with_the_checkpoint_s_constants(ckpt):
    """Guards against ABP in mmHg passed to the reverse pass unnormalised: the network
    expects (abp - 40) / 160 for this checkpoint's constants."""
    abp = 80.0 + 30.0 * ppg_windows(2, ckpt.window_length)
    with torch.no_grad():
        expected = ckpt.model.abp_to_ppg(torch.as_tensor((abp - 40.0) / 160.0, dtype=torch.float32))
    np.testing.assert_allclose(
        ckpt.predict_ppg(abp), expected.double().numpy(), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("batch_size", [0, True, 2.0])
def test_a_batch_size_that_is_not_a_whole_number_from_1_is_refused(ckpt, batch_size):
    """Guards against a batch size of 0 (range() with step 0) or True (taken as 1) let
    through."""
    with pytest.raises(ValueError, match=r"batch_size must be a whole number >= 1"):
        ckpt.predict_abp(ppg_windows(1, ckpt.window_length), batch_size=batch_size)


def test_windows_of_another_length_or_rate_or_type_are_refused(ckpt):
    """Guards against windows of another length reaching the network, windows at another
    rate accepted, booleans taken as a signal, and a tensor that requires grad failing in
    numpy."""
    n = ckpt.window_length
    with pytest.raises(
        ValueError, match=rf"expected windows of shape \(n, {n}\), got \(1, {n - 1}\)"
    ):
        ckpt.predict_abp(np.ones((1, n - 1)))
    with pytest.raises(
        ValueError,
        match=r"the windows are at 250 Hz, but tiny\.pt was trained on windows at 125 Hz",
    ):
        ckpt.predict_abp(ppg_windows(1, n), fs=250.0)
    with pytest.raises(TypeError, match="PPG windows must be real numbers, not bool"):
        ckpt.predict_abp(np.ones((1, n), dtype=bool))
    x = torch.as_tensor(ppg_windows(1, n), dtype=torch.float32).requires_grad_()
    assert ckpt.predict_abp(x).shape == (1, n)


def test_predictions_leave_the_model_s_mode_as_they_found_it(ckpt):
    """Guards against predicting in training mode (batch norm then depends on the batch)
    and against leaving the model in eval mode when the caller had it training."""
    seen = []
    for module in ckpt.model.modules():
        module.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    ckpt.model.train()
    ckpt.predict_abp(ppg_windows(1, ckpt.window_length))
    assert seen and not any(seen)
    assert ckpt.model.training is True and all(m.training for m in ckpt.model.modules())
    ckpt.model.eval()
    ckpt.predict_abp(ppg_windows(1, ckpt.window_length))
    assert ckpt.model.training is False


def test_full_float32_on_a_cpu_leaves_the_process_s_flags_alone():
    """Guards against full_float32 changing TF32 flags for a CPU device, disturbing the
    caller's own settings."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cudnn.allow_tf32 = True
    try:
        with full_float32("cpu"):
            assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_predicted_abp_gets_the_configured_low_pass(ckpt_path: Path, tmp_path: Path):
    """Guards against predict_abp returning the denormalised output without the configured
    post-processing: a checkpoint with ``output_lowpass_hz = 10`` gives its network's ABP
    through a zero-phase 4th-order Butterworth low-pass at 10 Hz."""
    from scipy import signal as sps

    plain = load_checkpoint(ckpt_path)
    payload = tiny_payload()
    payload["run_config"]["model"]["output_lowpass_hz"] = 10.0
    filtered = load_checkpoint(save_checkpoint(tmp_path / "lowpass.pt", payload))
    ppg = ppg_windows(2, plain.window_length)
    raw = plain.predict_abp(ppg)
    sos = sps.butter(4, 10.0, fs=125.0, output="sos")
    expected = sps.sosfiltfilt(sos, raw, axis=-1)
    assert np.abs(expected - raw).max() > 0.1  # the filter changes this output
    np.testing.assert_allclose(filtered.predict_abp(ppg), expected, atol=1e-3)


def test_predict_ppg_of_the_u_net_says_it_is_not_invertible(tmp_path: Path):
    """Guards against predict_ppg skipping check_reversible: the U-Net's own ValueError
    came out, not the CheckpointError naming the checkpoint and what to use instead."""
    path = save_checkpoint(tmp_path / "unet.pt", tiny_payload("unet"))
    ckpt = load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"holds the 'unet' model, which is not invertible"):
        ckpt.predict_ppg(80.0 + 30.0 * ppg_windows(1, ckpt.window_length))


def test_weights_that_overflow_are_said_to_be_damaged(ckpt_path: Path):
    """Guards against predictions returned with NaN or inf when finite weights overflow
    (weights edited by hand, or a run at the edge of divergence): they were scored as
    numbers or plotted."""

    def edit(payload):
        for key, value in payload["model_state"].items():
            if value.is_floating_point():
                payload["model_state"][key] = value * 1e30

    ckpt = load_checkpoint(edited(ckpt_path, edit))
    with pytest.raises(CheckpointError, match=r"forward pass gives NaN or inf for 2 of 2 windows"):
        ckpt.predict_abp(ppg_windows(2, ckpt.window_length))


# ---- durable renames: the data on disk before the name ---------------------------------


def _record_syncs(monkeypatch) -> list[tuple[str, str]]:
    """Record, in order, each fsync (of a file or a folder) and each os.replace's target."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(("fsync", kind))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _write_window_file(path: Path) -> None:
    with WindowWriter(path, fs=50.0, window_length=8, source_format="t") as w:
        w.append(np.ones((2, 8)) * [[1], [2]], np.full((2, 8), 90.0), subject="a",
                 window_id=["0", "1"])  # fmt: skip


def _stage_two(tmp_path: Path) -> None:
    with StagedOutputs() as staged:
        staged.write_text(tmp_path / "report.md", "# r\n")
        staged.write_text(tmp_path / "metrics.json", "{}\n")
        staged.commit()


@pytest.mark.parametrize(
    ("write", "names"),
    [
        (lambda d: save_checkpoint(d / "last.pt", tiny_payload()), ["last.pt"]),
        (lambda d: write_bytes_atomic(d / "config.json", b"{}\n"), ["config.json"]),
        (_stage_two, ["report.md", "metrics.json"]),
        (lambda d: _write_window_file(d / "w.h5"), ["w.h5"]),
        (
            lambda d: (_write_window_file(d / "w.h5"), write_assignments(d / "w.h5", None, [0, 1])),
            ["w.h5", "w.h5"],
        ),
    ],
    ids=["checkpoint", "run-json", "staged-report", "window-file", "data-split"],
)
def test_a_finished_output_is_synced_before_its_rename_and_its_folder_after(
    tmp_path: Path, monkeypatch, write, names: list[str]
):
    """Guards against renaming a freshly written file over its final name before its data
    are on disk: on a file system that delays allocation (ext4, XFS) a power failure can
    commit the rename first, and leave an empty last.pt (a run's progress lost) or an
    empty window file where the user's data were."""
    events = _record_syncs(monkeypatch)
    write(tmp_path)
    if write is _stage_two:
        # A set of outputs: every file synced, then all renamed together (a Ctrl-C held
        # meanwhile), then their folder once.
        expected = [("fsync", "file")] * len(names) + [("replace", n) for n in names]
        expected.append(("fsync", "folder"))
    else:
        synced = [("fsync", "file"), ("replace", "?"), ("fsync", "folder")]
        expected = [(e[0], name if e[0] == "replace" else e[1]) for name in names for e in synced]
    assert events == expected


def test_a_sync_that_fails_keeps_the_old_checkpoint(ckpt_path: Path, monkeypatch):
    """Guards against a full disk found only by the sync (delayed allocation) replacing the
    last good checkpoint anyway, or ending in a traceback: it is the save's own error, and
    the old file is untouched with no temporary file left."""
    before = ckpt_path.read_bytes()

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(CheckpointError, match=f"cannot write {re.escape(str(ckpt_path))}: "):
        save_checkpoint(ckpt_path, tiny_payload())
    assert ckpt_path.read_bytes() == before and os.listdir(ckpt_path.parent) == [ckpt_path.name]
