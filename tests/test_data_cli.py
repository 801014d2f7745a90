"""`innpar data split/check/info`, the window file as commands read it, and `innpar check`:
an interrupted split leaves the file as it was, hand-written columns and attributes are
read as the writer makes them, and a file in use or read-only is refused, a link followed."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_clean_failure, run_cli

from innpar_freia.data.store import WindowWriter, read_info

_STR = h5py.string_dtype()


def _write(path: Path, subjects: int = 6, per_subject: int = 2, length: int = 16) -> Path:
    n = subjects * per_subject
    rng = np.random.default_rng(0)
    with WindowWriter(path, fs=50.0, window_length=length, source_format="test") as w:
        w.append(
            rng.normal(size=(n, length)),
            80 + 20 * rng.random((n, length)),
            subject=[f"s{i // per_subject}" for i in range(n)],
            window_id=[f"w{i}" for i in range(n)],
            fold=[(i // per_subject) % 3 for i in range(n)],
        )
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _no_hidden_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "failure",
    [KeyboardInterrupt(), OSError(errno.ENOSPC, "Can't write data (No space left on device)")],
    ids=["ctrl-c", "full-disk"],
)
def test_a_split_stopped_while_writing_leaves_the_file_as_it_was(tmp_path, monkeypatch, failure):
    """`data split` wrote the split column into the file, then the folds: stopped between
    the two (Ctrl-C, a failed write), the file kept a split column drawn from new folds over
    its old folds (a full disk was a traceback), and HDF5, which has no journal, could be
    left unreadable by a kill -9 during the write."""
    path = _write(tmp_path / "d.h5")
    before = _digest(path)
    real = h5py.Dataset.__setitem__

    def stop_at_the_folds(self, key, value):
        if self.name == "/fold":
            raise failure
        real(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", stop_at_the_folds)
    result = run_cli("data", "split", path, "--folds", 3, "--seed", 1)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    if isinstance(failure, OSError):
        assert f"Error: cannot update {path}: No space left on device" in result.output
    assert _digest(path) == before
    assert _no_hidden_files(tmp_path)


def test_a_split_killed_outright_leaves_the_file_and_the_next_one_removes_its_copy(tmp_path):
    path = _write(tmp_path / "d.h5")
    before = _digest(path)
    code = (
        "import os, signal, h5py\n"
        "from innpar_freia.data.splits import split_file\n"
        "real = h5py.Dataset.__setitem__\n"
        "def kill(self, key, value):\n"
        "    real(self, key, value)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "h5py.Dataset.__setitem__ = kill\n"
        f"split_file({str(path)!r}, 3, 1, 0)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _digest(path) == before
    result = run_cli("data", "split", path, "--folds", 3)
    assert result.exit_code == 0, result.output
    assert _no_hidden_files(tmp_path)  # the killed update's copy is gone


def test_split_refuses_a_file_another_program_has_open(tmp_path):
    path = _write(tmp_path / "d.h5")
    before = _digest(path)
    with h5py.File(path, "r"):  # as a training run reading it
        result = run_cli("data", "split", path, "--folds", 3, "--seed", 1)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"Error: cannot update {path}" in result.output and "another program" in result.output
    assert _digest(path) == before and _no_hidden_files(tmp_path)


def test_split_refuses_a_file_a_training_run_uses(synth_file, tmp_path, monkeypatch):
    """A run that has read its windows into memory (preloaded) closed the file, and `data
    split` gave it new folds under the running run, whose evaluation and resume then
    refused it ("its folds or split column have changed"). Guards against that: the run
    holds the file, and the split is refused while it trains."""
    import shutil

    import innpar_freia.train as train_module
    from innpar_freia.config import resolve_config

    path = tmp_path / "d.h5"
    shutil.copy(synth_file, path)
    before = _digest(path)
    real, seen = train_module._train, []

    def splitting_meanwhile(*args, **kwargs):
        seen.append(run_cli("data", "split", path, "--folds", 3, "--seed", 1))
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train", splitting_meanwhile)
    train_module.train(resolve_config("tiny", train={"epochs": 1}), path, tmp_path / "run")
    assert seen[0].exit_code == 1 and "another program has it open" in seen[0].output
    assert _digest(path) == before
    # Once the run is over, the file is free again.
    assert run_cli("data", "split", path, "--folds", 3, "--seed", 1).exit_code == 0


def test_split_refuses_a_read_only_file(tmp_path, monkeypatch):
    """The copy replacing the file would overwrite a write-protected one. (As root every
    file is writable: os.access is what a read-only file answers to.)"""
    path = _write(tmp_path / "d.h5")
    before = _digest(path)
    real_access = os.access
    writable = (path, os.W_OK)
    monkeypatch.setattr(os, "access", lambda p, m: (Path(p), m) != writable and real_access(p, m))
    result = run_cli("data", "split", path, "--folds", 3, "--seed", 1)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"Error: cannot update {path}: it is read-only" in result.output
    assert _digest(path) == before and _no_hidden_files(tmp_path)


def test_split_through_a_symbolic_link_updates_the_file_it_names(tmp_path):
    path = _write(tmp_path / "d.h5")
    link = tmp_path / "link.h5"
    link.symlink_to(path)
    assert run_cli("data", "split", link, "--folds", 3).exit_code == 0
    assert link.is_symlink() and read_info(path).has_splits


def _hand_written(path: Path, split: np.ndarray, fold: np.ndarray, subjects: int) -> Path:
    """A window file as a user writes one with h5py: text as fixed-length bytes."""
    n, length = len(split), 8
    with h5py.File(path, "w") as fh:
        fh.attrs.update(
            schema="innpar-freia.windows", schema_version=1, fs=16.0, window_length=length,
            n_windows=n, provenance="{}", source_format="hand",
        )  # fmt: skip
        rng = np.random.default_rng(0)
        fh["ppg"] = rng.normal(size=(n, length)).astype(np.float32)
        fh["abp"] = (80 + 20 * rng.random((n, length))).astype(np.float32)
        fh["subject"] = np.array([f"p{i % subjects}".encode() for i in range(n)])
        fh["window_id"] = np.array([f"w{i}".encode() for i in range(n)])
        fh.create_dataset(
            "split", data=split, dtype=split.dtype if split.dtype.kind == "S" else _STR
        )
        fh["fold"] = fold
        fh["start"] = np.full(n, -1, dtype=np.int64)
    return path


def test_split_of_a_hand_written_file_with_fixed_length_text(tmp_path):
    """`np.array([b"train", ...])` is stored as fixed-length strings, which `data info` and
    `data check` read, but `data split` failed on with h5py's "Can't synchronously write
    data (no appropriate function for conversion path)", naming neither file nor column."""
    split = np.array([b"train"] * 8 + [b"test"] * 4)
    path = _hand_written(tmp_path / "h.h5", split, np.zeros(12, np.int16), subjects=6)
    result = run_cli("data", "split", path, "--folds", 3)
    assert result.exit_code == 0, result.output
    info = read_info(path)
    assert sorted(set(info.split)) == ["test", "train", "val"]
    for k in range(3):
        assert set(info.subjects[info.fold == k]).isdisjoint(info.subjects[info.fold != k])
    assert run_cli("data", "check", path).exit_code == 0


def test_split_into_more_folds_than_a_hand_written_int8_column_holds(tmp_path):
    """Folds 128 and up were written into an int8 fold column, where HDF5 clipped them to
    127: subjects of different folds shared fold 127 (the command printed 130 folds)."""
    subjects = 130
    split = np.array([""] * subjects, dtype=object)
    fold = np.full(subjects, -1, dtype=np.int8)
    path = _hand_written(tmp_path / "h.h5", split, fold, subjects)
    assert run_cli("data", "split", path, "--folds", subjects).exit_code == 0
    info = read_info(path)
    assert sorted(info.fold.tolist()) == list(range(subjects))  # one subject per fold


def test_a_window_length_written_as_text_is_read_as_the_validation_reads_it(tmp_path):
    """The validation took the attribute "16.0" for 16, then read_info's int("16.0")
    raised a traceback in every command."""
    path = _write(tmp_path / "d.h5")
    with h5py.File(path, "r+") as fh:
        fh.attrs["window_length"] = "16.0"
    result = run_cli("data", "info", path)
    assert result.exit_code == 0, result.output
    assert "12 windows x 16 samples" in result.output


def test_windows_of_no_samples_are_refused(tmp_path):
    """A hand-written file with window_length 0 passed validation; `data check` then found
    every window identical to every other (empty bytes) and reported leakage (exit 3)."""
    path = tmp_path / "z.h5"
    _hand_written(path, np.array([b"train"] * 8 + [b"test"] * 4), np.zeros(12, np.int16), 12)
    with h5py.File(path, "r+") as fh:
        for name in ("ppg", "abp"):
            del fh[name]
            fh[name] = np.zeros((12, 0), np.float32)
        fh.attrs["window_length"] = 0
    for command in (("data", "check"), ("data", "info")):
        result = run_cli(*command, path)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "window_length must be positive, but is 0" in result.output


def test_check_with_a_data_file_without_windows_is_one_message(tmp_path):
    """`innpar check --data` on a file with no windows was a ValueError traceback (from
    NumPy's minimum of an empty array)."""
    path = tmp_path / "empty.h5"
    with WindowWriter(path, fs=125.0, window_length=625, source_format="test"):
        pass
    result = run_cli("check", "--preset", "tiny", "--data", path)
    assert_clean_failure(result, tmp_path / "out", f"{path} holds no windows")
    assert os.path.exists(path)


def test_import_and_synth_make_the_output_folder_and_leave_none_when_they_fail(
    tmp_path: Path,
) -> None:
    """``data import --out new/sub/x.h5`` said "output directory new/sub does not exist"
    while reconstruct and plot make their folders. Now the folders are made; an import
    that fails leaves none of them behind."""
    r = run_cli("data", "synth", "--out", tmp_path / "a" / "b" / "s.h5", "--subjects", 4,
                "--minutes", 0.5, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert read_info(tmp_path / "a" / "b" / "s.h5").n_windows > 0
    bad = tmp_path / "bad"
    (bad / "ppg").mkdir(parents=True)
    (bad / "abp").mkdir()
    (bad / "ppg" / "s1_0.npy").write_bytes(b"not a numpy file")
    (bad / "abp" / "s1_0.npy").write_bytes(b"not a numpy file")
    out = tmp_path / "new" / "sub" / "x.h5"
    assert_clean_failure(run_cli("data", "import", "innpar-npy", bad, "--out", out), out, "s1_0")
    assert not (tmp_path / "new").exists()
    # A file where a folder should be is named.
    (tmp_path / "f").write_text("")
    r = run_cli("data", "synth", "--out", tmp_path / "f" / "s.h5")
    assert r.exit_code == 1 and "is a file, not a folder" in r.output


def test_check_says_how_many_windows_are_flat_and_finds_no_leakage_in_them(tmp_path):
    """A file whose PPG was lost in some windows (a constant line, as a file made outside
    the importers can hold) was reported as LEAKAGE (exit code 3): its flat windows were
    identical across folds. They are counted and left out of the comparison instead."""
    path = tmp_path / "s.h5"
    assert run_cli("data", "synth", "--out", path, "--subjects", 6, "--minutes", 1).exit_code == 0
    with h5py.File(path, "r+") as fh:
        ppg = fh["ppg"][...]
        ppg[::3] = 0.0  # every third window: each fold holds some
        fh["ppg"][...] = ppg
        n = len(ppg[::3])
    result = run_cli("data", "check", path)
    assert result.exit_code == 0, result.output
    assert (
        f"note: {n} windows have a constant PPG (no pulse): not copies of one another, so not "
        "compared; drop them before training ('innpar data import' rejects such windows)"
    ) in result.output.splitlines()
    assert "LEAKAGE" not in result.output
