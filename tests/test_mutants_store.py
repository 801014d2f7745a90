"""Tests that pin what a mutation audit of the HDF5 window store (innpar_freia.data.store:
the writer's checks, the validation of files on opening, the metadata read back, the
finite checks of windows read, the in-place update of split and fold columns) and of the
leakage check (innpar_freia.data.leakage: shared subjects and ids, exact and near
duplicates, which windows and partitions are compared) found unguarded: each one fails
when the bug named in its docstring is put into the package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from innpar_freia.data.leakage import check_leakage, signatures
from innpar_freia.data.store import (
    FLOAT32_MAX,
    WindowWriter,
    check_rows_finite,
    read_info,
    read_reference,
    read_signals,
    write_assignments,
)
from innpar_freia.errors import DataError

L = 16  # samples per window in the small files below


def _windows(n: int, length: int = L, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, length)), 80 + 20 * rng.random((n, length))


def _write(path: Path, n: int = 6, length: int = L, **columns) -> Path:
    """``n`` windows of 3 subjects (s0 s1 s2 s0 s1 s2 ...), ids w0.., fs 50 Hz."""
    ppg, abp = _windows(n, length)
    columns.setdefault("subject", [f"s{i % 3}" for i in range(n)])
    columns.setdefault("window_id", [f"w{i}" for i in range(n)])
    with WindowWriter(path, fs=50.0, window_length=length, source_format="test") as w:
        w.append(ppg, abp, **columns)
    return path


# ---- what read_info says about a file -------------------------------------------------


def test_summary_counts_distinct_subjects_and_window_seconds(tmp_path: Path) -> None:
    """Guards against ``n_subjects`` counting windows instead of distinct subjects, and
    ``window_seconds`` multiplying the window length by the rate instead of dividing."""
    s = read_info(_write(tmp_path / "a.h5")).summary()
    assert s["n_subjects"] == 3  # s0, s1, s2 over 6 windows
    assert s["window_seconds"] == pytest.approx(16 / 50)  # 0.32 s


def test_has_folds_needs_every_window_in_a_fold_and_some_windows(tmp_path: Path) -> None:
    """Guards against ``has_folds`` being true when only some windows have a fold (any
    instead of all), and for a file of no windows (all() of nothing is true)."""
    some = read_info(_write(tmp_path / "some.h5", fold=[0, 1, 2, -1, 1, 2]))
    assert not some.has_folds
    every = read_info(_write(tmp_path / "every.h5", fold=[0, 1, 2, 0, 1, 2]))
    assert every.has_folds
    with WindowWriter(tmp_path / "empty.h5", fs=50.0, window_length=L, source_format="t"):
        pass
    empty = read_info(tmp_path / "empty.h5")
    assert empty.n_windows == 0 and not empty.has_folds


def test_has_splits_when_some_windows_are_assigned(tmp_path: Path) -> None:
    """Guards against ``has_splits`` asking that every window be in a split (all instead of
    any): a file with a few unassigned windows has a split column all the same."""
    info = read_info(_write(tmp_path / "a.h5", split=["train", "val", "test", "", "", "train"]))
    assert info.has_splits
    assert not read_info(_write(tmp_path / "b.h5")).has_splits  # all unassigned


# ---- validation on opening ---------------------------------------------------------------


def _del_attr(name: str):
    def damage(fh: h5py.File) -> None:
        del fh.attrs[name]

    return damage


def _set_attr(name: str, value: object):
    def damage(fh: h5py.File) -> None:
        fh.attrs[name] = value

    return damage


def _grow(name: str):
    def damage(fh: h5py.File) -> None:
        fh[name].resize(fh[name].shape[0] + 1, axis=0)

    return damage


def _retype(name: str, dtype: type):
    def damage(fh: h5py.File) -> None:
        values = fh[name][()]
        del fh[name]
        fh[name] = values.astype(dtype)

    return damage


def _delete(name: str):
    def damage(fh: h5py.File) -> None:
        del fh[name]

    return damage


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_del_attr("schema_version"), "has schema version -1, but this innpar-freia reads"),
        (_set_attr("schema_version", 2), "has schema version 2, but this innpar-freia reads"),
        (_delete("start"), "is missing dataset(s) start"),
        (_grow("ppg"), "dataset 'ppg' has shape (7, 16), expected (6, 16)"),
        (_grow("abp"), "dataset 'abp' has shape (7, 16), expected (6, 16)"),
        (_retype("ppg", bool), "dataset 'ppg' holds bool, expected numbers"),
        (_grow("subject"), "dataset 'subject' has shape (7,), expected (6,)"),
        (_grow("start"), "dataset 'start' has shape (7,), expected (6,)"),
        (_retype("start", float), "dataset 'start' holds float64, expected integers"),
        (_set_attr("fs", 0.0), "sampling rate fs must be a positive number, but is 0.0"),
        (_set_attr("fs", np.nan), "sampling rate fs must be a positive number, but is nan"),
        (_set_attr("fs", np.inf), "sampling rate fs must be a positive number, but is inf"),
        (_set_attr("fs", np.bytes_(b"abc")), "attribute 'fs' is 'abc', not a number"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_damaged_file_is_refused_on_opening(tmp_path: Path, damage, message: str) -> None:
    """Guards against each check of ``_validate`` being dropped or loosened: a file without
    (or with another) schema version, without its ``start`` column, with more PPG or ABP
    rows than windows (only the row length checked, or only the PPG), with a PPG of
    booleans, a per-window column of another length, float starts, or a rate of 0, NaN
    or inf was read as if it were whole."""
    path = _write(tmp_path / "d.h5")
    with h5py.File(path, "r+") as fh:
        damage(fh)
    with pytest.raises(DataError) as err:
        read_info(path)
    assert message in str(err.value)


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    """Guards against the directory check being dropped: h5py's own error then said the
    folder was "not a readable HDF5 file"."""
    with pytest.raises(DataError, match="is a directory, expected an HDF5 window file"):
        read_info(tmp_path)


# ---- the writer -------------------------------------------------------------------------


def test_values_up_to_float32_s_largest_are_kept_and_beyond_it_refused(tmp_path: Path) -> None:
    """Guards against the writer checking only ``isfinite`` (1e39 is finite in float64 and
    inf in the file's float32) and against refusing float32's largest value itself, which
    the file holds exactly."""
    ppg, abp = _windows(2)
    ppg[1, 3] = FLOAT32_MAX
    path = tmp_path / "max.h5"
    with WindowWriter(path, fs=50.0, window_length=L, source_format="t") as w:
        w.append(ppg, abp, subject="a", window_id=["0", "1"])
    assert read_signals(path)[0][1, 3] == np.float32(3.4028234663852886e38)
    for signal in (0, 1):
        pair = list(_windows(2))
        pair[signal][0, 5] = 1e39
        with (
            pytest.raises(DataError, match="beyond float32's range"),
            WindowWriter(tmp_path / f"big{signal}.h5", fs=50.0, window_length=L,
                         source_format="t") as w,
        ):  # fmt: skip
            w.append(*pair, subject="a", window_id=["0", "1"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["max.h5"]


@pytest.mark.parametrize("name", ["out.csv", "out.CSV", "out.Npz"])
def test_a_window_file_is_not_named_like_another_format(tmp_path: Path, name: str) -> None:
    """Guards against the suffix check being dropped or made case-sensitive: ``x.CSV``
    would later be read as a CSV file by the commands that pick a format by suffix."""
    with pytest.raises(DataError, match=r"a window file is HDF5; name it with \.h5"):
        WindowWriter(tmp_path / name, fs=50.0, window_length=L, source_format="t")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"fs": 0.0}, "sampling rate fs must be a positive number, but is 0.0"),
        ({"fs": float("nan")}, "sampling rate fs must be a positive number, but is nan"),
        ({"window_length": 0}, "window_length must be at least 8 samples"),
    ],
)
def test_the_writer_refuses_a_rate_or_length_no_file_may_hold(tmp_path: Path, kw, message):
    """Guards against the writer's checks of ``fs`` (zero, NaN) and of a zero window length
    being dropped or loosened: it wrote a file that every reader then refused."""
    args = {"fs": 50.0, "window_length": L, **kw}
    with pytest.raises(DataError, match=re.escape(message)):
        WindowWriter(tmp_path / "x.h5", source_format="t", **args)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"fs": "125"}, "sampling rate fs must be a positive number, but is '125'"),
        ({"fs": True}, "sampling rate fs must be a positive number, but is True"),
        ({"window_length": 625.7}, "window_length must be a whole number of samples, but is 625.7"),
        ({"window_length": "625"}, "window_length must be a whole number of samples, but is '625'"),
        ({"window_length": 3}, "window_length must be at least 8 samples, the shortest window the"),
    ],
)
def test_the_writer_names_a_rate_or_length_of_the_wrong_kind(tmp_path: Path, kw, message):
    """``fs="125"`` was numpy's "ufunc 'isfinite' not supported", 625.7 samples silently 625,
    and 3-sample windows were written although no network takes fewer than 8."""
    args = {"fs": 50.0, "window_length": L, **kw}
    with pytest.raises(DataError, match=re.escape(message)):
        WindowWriter(tmp_path / "x.h5", source_format="t", **args)
    assert list(tmp_path.iterdir()) == []


def test_the_writer_takes_numpy_numbers_and_the_shortest_window(tmp_path: Path) -> None:
    with WindowWriter(
        tmp_path / "x.h5", fs=np.float32(50.0), window_length=np.int64(8), source_format="t"
    ) as w:
        w.append(*_windows(2, 8), subject="a", window_id=["0", "1"], start=np.array([-1, 0]))
    info = read_info(tmp_path / "x.h5")
    assert (info.fs, info.window_length, info.n_windows) == (50.0, 8, 2)


def test_the_writer_takes_whole_numbers_held_as_floats(tmp_path: Path) -> None:
    """Starts of 0.0 and 8.0 and a window length of 8.0 were refused as "not whole"."""
    with WindowWriter(tmp_path / "x.h5", fs=50.0, window_length=8.0, source_format="t") as w:
        w.append(*_windows(2, 8), subject="a", window_id=["0", "1"], start=np.array([0.0, 8.0]))
    info = read_info(tmp_path / "x.h5")
    assert info.window_length == 8
    with h5py.File(tmp_path / "x.h5") as fh:
        assert fh["start"][...].tolist() == [0, 8] and fh["start"].dtype == np.int64


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"start": [0.7, 16.9]}, "start must be whole sample numbers (-1: unknown), got float64"),
        ({"start": "abc"}, "start must be whole sample numbers (-1: unknown), got <U3"),
        ({"start": -5}, "start -5 is out of range: starts are 0 or more (-1: unknown)"),
        ({"subject": None}, "subject must name every window's subject, but one is None or empty"),
        ({"subject": ["a", ""]}, "subject must name every window's subject, but one is None"),
        ({"window_id": "w"}, "window_id must be unique, but 1 id(s) repeat (e.g. 'w')"),
        ({"ppg": np.ones((2, L), bool)}, "PPG windows must be real numbers, but are bool (bool)"),
        ({"abp": np.ones((2, L), complex)}, "ABP windows must be real numbers, but are complex"),
        ({"ppg": np.full((2, L), "x")}, "PPG windows must be numbers, but are <U1"),
    ],
)
def test_the_writer_names_a_column_it_would_have_stored_wrongly(tmp_path, columns, message):
    """Were stored without a word: starts truncated (0.7 -> 0) or below -1, the subject
    "None", one id for every window, a bool PPG as 0/1, a complex ABP stripped of its
    imaginary part; "abc" as a start was numpy's "invalid literal for int()"."""
    ppg, abp = _windows(2)
    values = {"ppg": ppg, "abp": abp, "subject": "a", "window_id": ["0", "1"], **columns}
    with pytest.raises(DataError, match=re.escape(message)):
        with WindowWriter(tmp_path / "x.h5", fs=50.0, window_length=L, source_format="t") as w:
            w.append(values.pop("ppg"), values.pop("abp"), **values)
    assert list(tmp_path.iterdir()) == []


def test_the_writer_refuses_an_id_an_earlier_append_wrote(tmp_path: Path) -> None:
    """Unless told that the source repeats ids (an importer, which warns), as the schema says."""
    with WindowWriter(tmp_path / "x.h5", fs=50.0, window_length=L, source_format="t") as w:
        w.append(*_windows(2), subject="a", window_id=["0", "1"])
        with pytest.raises(DataError, match=re.escape("repeat (e.g. '1')")):
            w.append(*_windows(2), subject="a", window_id=["2", "1"])
        w.append(*_windows(2), subject="a", window_id=["2", "3"])  # nothing of the refused kept
    assert read_info(tmp_path / "x.h5").window_ids.tolist() == ["0", "1", "2", "3"]


def test_the_writer_refuses_a_folder_as_output_and_a_missing_folder(tmp_path: Path) -> None:
    """Guards against dropping the checks that the output is not a directory (even with
    ``overwrite``) and that its folder exists: h5py's errors named the hidden temporary
    file instead."""
    (tmp_path / "d.h5").mkdir()
    with pytest.raises(DataError, match="exists and is not a regular file"):
        WindowWriter(tmp_path / "d.h5", fs=50.0, window_length=L, source_format="t",
                     overwrite=True)  # fmt: skip
    with pytest.raises(DataError, match=r"output directory .*nope does not exist"):
        WindowWriter(tmp_path / "nope" / "x.h5", fs=50.0, window_length=L, source_format="t")
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]


def test_a_fractional_rate_and_the_description_are_kept(tmp_path: Path) -> None:
    """Guards against the writer storing ``fs`` as an integer (62.5 Hz read back as 62) and
    dropping the description."""
    path = tmp_path / "f.h5"
    with WindowWriter(path, fs=62.5, window_length=L, source_format="t",
                      description="two windows") as w:  # fmt: skip
        w.append(*_windows(2), subject="a", window_id=["0", "1"])
    info = read_info(path)
    assert info.fs == 62.5 and info.description == "two windows"


def _refused(tmp_path: Path, message: str, ppg=None, abp=None, **columns) -> None:
    """Appending these two windows (with ``columns``) is refused with ``message``, and the
    output is not written."""
    default_ppg, default_abp = _windows(2)
    columns = {"subject": "a", "window_id": ["0", "1"], **columns}
    with (
        pytest.raises(DataError, match=re.escape(message)),
        WindowWriter(tmp_path / "r.h5", fs=50.0, window_length=L, source_format="t") as w,
    ):
        w.append(default_ppg if ppg is None else ppg, default_abp if abp is None else abp,
                 **columns)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_append_refuses_windows_of_the_wrong_shape(tmp_path: Path) -> None:
    """Guards against dropping the checks that PPG and ABP have as many windows as each
    other and the file's window length: the extra ABP rows, or windows one sample short,
    gave h5py's broadcast errors or a file whose columns disagree."""
    ppg, abp = _windows(3)
    _refused(tmp_path, "PPG (2, 16) and ABP (3, 16) windows must both have shape (n, 16)",
             ppg=ppg[:2], abp=abp)  # fmt: skip
    _refused(tmp_path, "PPG (2, 15) and ABP (2, 15) windows must both have shape (n, 16)",
             ppg=ppg[:2, :15], abp=abp[:2, :15])  # fmt: skip


def test_append_refuses_columns_it_cannot_store(tmp_path: Path) -> None:
    """Guards against dropping the checks of the per-window columns: a subject list of
    another length, a split value that is not train/val/test/empty, and fold numbers that
    are not integers or not -1..32767 (int16: 32768 wrapped around to -32768)."""
    _refused(tmp_path, "subject has shape (3,), expected (2,)", subject=["a", "b", "c"])
    _refused(tmp_path, "split values must be train, val, test or empty, got ['validation']",
             split=["train", "validation"])  # fmt: skip
    _refused(tmp_path, "fold numbers must be integers, got float64", fold=[0.0, 1.5])
    _refused(tmp_path, "fold number 32768 is out of range", fold=[0, 32768])
    _refused(tmp_path, "fold number -2 is out of range", fold=[-2, 0])


def test_the_extreme_folds_and_large_starts_are_kept(tmp_path: Path) -> None:
    """Guards against refusing fold 32767 (the int16 column's largest) or -1 (none), and
    against storing ``start`` in 32 bits: a window 3e9 samples into a recording (about
    9.5 months at 125 Hz, or 35 days at 1 kHz) came back negative."""
    path = tmp_path / "x.h5"
    with WindowWriter(path, fs=50.0, window_length=L, source_format="t") as w:
        w.append(*_windows(2), subject="a", window_id=["0", "1"], fold=[32767, -1],
                 start=[3_000_000_000, 0])  # fmt: skip
    info = read_info(path)
    assert info.fold.tolist() == [32767, -1]
    assert info.start.tolist() == [3_000_000_000, 0]


def test_set_provenance_replaces_the_provenance(tmp_path: Path) -> None:
    """Guards against ``set_provenance`` doing nothing: the importers write the report into
    the file's provenance there, after the windows."""
    path = tmp_path / "p.h5"
    with WindowWriter(path, fs=50.0, window_length=L, source_format="t",
                      provenance={"a": 1}) as w:  # fmt: skip
        w.append(*_windows(2), subject="a", window_id=["0", "1"])
        w.set_provenance({"summary": {"kept": 2}})
    assert read_info(path).provenance == {"summary": {"kept": 2}}


# ---- windows read back are checked to be finite -------------------------------------------


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4100 windows of 8 samples: more than one block (4096 rows) of the finite checks."""
    path = tmp_path_factory.mktemp("long") / "long.h5"
    n = 4100
    ppg, abp = _windows(n, 8)
    with WindowWriter(path, fs=50.0, window_length=8, source_format="t") as w:
        w.append(ppg, abp, subject="a", window_id=[f"w{i}" for i in range(n)])
    return path


def _with_nan(long_file: Path, tmp_path: Path, name: str, row: int) -> Path:
    path = tmp_path / "nan.h5"
    path.write_bytes(long_file.read_bytes())
    with h5py.File(path, "r+") as fh:
        fh[name][row, 2] = np.nan
    return path


def test_a_nan_beyond_the_first_block_is_named_by_its_own_window(long_file, tmp_path) -> None:
    """Guards against the scan for the first bad window forgetting each block's offset:
    a NaN in window 4097 was reported as window 1 (and another window's id)."""
    path = _with_nan(long_file, tmp_path, "ppg", 4097)
    with pytest.raises(DataError) as err:
        read_signals(path)
    assert "1 window of 'ppg' holds NaN or inf (first: window 4097, id 'w4097')" in str(err.value)


def test_check_rows_finite_reads_every_row_of_both_signals(long_file, tmp_path) -> None:
    """Guards against ``check_rows_finite`` checking only the PPG, and against its blocks
    leaving out the last row of each (window 4095, the 4096th): a NaN there in the ABP
    reached training."""
    check_rows_finite(long_file, np.arange(4100))  # clean: no error
    path = _with_nan(long_file, tmp_path, "abp", 4095)
    with pytest.raises(DataError, match=r"'abp' holds NaN or inf \(first: window 4095"):
        check_rows_finite(path, np.arange(4100)[::-1])
    check_rows_finite(path, np.arange(4095))  # the other windows are fine


# ---- the split column's values -------------------------------------------------------------


def test_odd_split_values_are_listed_five_and_the_rest_counted(tmp_path: Path) -> None:
    """Guards against the refusal listing fewer than five odd values, or not saying how many
    more there are: the user could not tell how much of the column was wrong."""
    path = _write(tmp_path / "a.h5", n=8)
    odd = ["a", "b", "c", "d", "e", "f", "g", "train"]  # seven odd values, one window each
    with h5py.File(path, "r+") as fh:
        fh["split"][:] = odd
    with pytest.raises(DataError) as err:
        read_info(path)
    text = str(err.value)
    assert "'a' (1 window), 'b' (1 window), 'c' (1 window), 'd' (1 window), 'e' (1 window)" in text
    assert "'f'" not in text and " and 2 more;" in text
    assert read_info(path, check_split=False).summary()["splits_invalid"] == dict.fromkeys(
        "abcdefg", 1
    )


def test_reference_fields_are_given_from_the_first_append_and_kept_in_float64(tmp_path):
    """Guards against a reference field first given in a later append being accepted (its
    earlier windows would have no value), and against numeric fields stored in float32:
    0.1 came back as 0.10000000149011612."""
    with (
        pytest.raises(DataError, match="reference field 'sbp' must be given for every append"),
        WindowWriter(tmp_path / "a.h5", fs=50.0, window_length=L, source_format="t") as w,
    ):
        w.append(*_windows(1), subject="a", window_id="0")
        w.append(*_windows(1), subject="a", window_id="1", reference={"sbp": [120.0]})
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "b.h5"
    with WindowWriter(path, fs=50.0, window_length=L, source_format="t") as w:
        w.append(*_windows(2), subject="a", window_id=["0", "1"], reference={"x": [0.1, 1e300]})
    assert read_reference(path, "x").tolist() == [0.1, 1e300]


@pytest.mark.parametrize(
    ("ids", "repeated"),
    [(["a", "b", "a"], ["a"]), (["a", "b", "b"], ["b"]), (["a", "b", "c"], [])],
)
def test_repeated_window_ids_counts_every_window_written(tmp_path, ids, repeated) -> None:
    """Guards against an id written twice not counting as repeated (more than two asked
    for), and against the last window written being left out of the count; the import
    report's warning about repeated ids comes from here."""
    with WindowWriter(
        tmp_path / "r.h5", fs=50.0, window_length=L, source_format="t", repeated_ids=True
    ) as w:
        w.append(*_windows(3), subject="a", window_id=ids)
        assert w.repeated_window_ids() == repeated


def test_a_reference_field_left_out_of_a_later_append_is_refused_on_close(tmp_path) -> None:
    """Guards against ``close`` not checking that every reference field has a value for
    every window: the file said n windows and held fewer values of the field."""
    with (
        pytest.raises(DataError, match=re.escape("reference field(s) ['sbp'] were not given")),
        WindowWriter(tmp_path / "a.h5", fs=50.0, window_length=L, source_format="t") as w,
    ):
        w.append(*_windows(1), subject="a", window_id="0", reference={"sbp": [120.0]})
        w.append(*_windows(1), subject="a", window_id="1")
    assert list(tmp_path.iterdir()) == []


# ---- updating the split and fold columns in place ------------------------------------------


def test_write_assignments_refuses_a_file_that_is_not_a_window_file(tmp_path: Path) -> None:
    """Guards against ``update_in_place`` not validating the file first: another HDF5 file
    got a confusing message about a missing attribute, after a copy of it was made."""
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as fh:
        fh.attrs["n_windows"] = 2
        fh["split"] = np.array([b"train", b"test"])
    before = path.read_bytes()
    with pytest.raises(DataError, match="is not an innpar-freia window file"):
        write_assignments(path, split=np.array(["train", "val"]), fold=None)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["other.h5"]


def test_write_assignments_keeps_the_file_s_permissions(tmp_path: Path) -> None:
    """Guards against the updated copy not taking the file's mode: a file shared read-only
    with the group (0640) became readable by everyone (0644 under the usual umask)."""
    path = _write(tmp_path / "a.h5")
    path.chmod(0o640)
    write_assignments(path, split=np.array(["train"] * 4 + ["val", "test"]), fold=None)
    assert path.stat().st_mode & 0o777 == 0o640
    assert read_info(path).split.tolist() == ["train"] * 4 + ["val", "test"]


def test_a_copy_that_fails_half_way_leaves_no_copy_behind(tmp_path, monkeypatch) -> None:
    """Guards against the half-written copy being left beside the file when copying it
    fails (a full disk): as large as the file, hidden, and never removed by this process."""
    path = _write(tmp_path / "a.h5")
    before = path.read_bytes()

    def copy_half(src, dst, *args, **kwargs):
        Path(dst).write_bytes(Path(src).read_bytes()[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("innpar_freia.data.store.shutil.copyfile", copy_half)
    with pytest.raises(DataError, match=r"cannot update .*a\.h5: No space left on device"):
        write_assignments(path, split=np.full(6, "train"), fold=None)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.h5"]


def _dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("write", ["update", "import"])
def test_a_write_removes_only_its_own_file_s_copies_of_ended_processes(tmp_path, write) -> None:
    """An update (or an import) killed outright (kill -9) leaves its hidden copy, as large as
    the file; the next update or import of that file removes it. Guards against such copies
    staying for good, and against the clean-up removing copies whose process still runs (an
    update or an import of that file in progress), or the hidden files of another window
    file in the same folder."""
    path = _write(tmp_path / "a.h5") if write == "update" else tmp_path / "a.h5"
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".a.h5.{dead}.tmp"
    running = tmp_path / f".a.h5.{alive}.tmp"
    other = tmp_path / f".b.h5.{dead}.tmp"
    for p in (stale, running, other):
        p.write_bytes(b"partial copy")
    if write == "update":
        write_assignments(path, split=np.full(6, "test"), fold=None)
    else:
        _write(path)
    assert not stale.exists()
    assert running.read_bytes() == other.read_bytes() == b"partial copy"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"split": np.full(5, "train")}, "split has shape (5,), expected (6,)"),
        ({"split": np.array(["train"] * 5 + ["validation"])},
         "split values must be train, val, test or empty, got ['validation']"),
        ({"fold": np.zeros(7, int)}, "fold has shape (7,), expected (6,)"),
        ({"fold": np.array([0, 1, 2, 0, 1, 32768])}, "fold number 32768 is out of range"),
        ({"fold": np.array([0, 1, 2, 0, 1, -2])}, "fold number -2 is out of range"),
        ({"fold": np.array([0, 1, 2, 0, 1, 1.5])}, "fold numbers must be integers, got float64"),
    ],
)  # fmt: skip
def test_write_assignments_refuses_columns_the_file_cannot_hold(tmp_path, kw, message) -> None:
    """Guards against ``write_assignments`` dropping its checks of the columns' length and
    of the split values, and against it storing folds the int16 column cannot hold (32768
    wrapped to -32768, -2 and 1.5 were taken as they came, where the writer refuses them),
    and the file is left as it was."""
    path = _write(tmp_path / "a.h5", fold=[0, 1, 2, 0, 1, 2])
    before = path.read_bytes()
    with pytest.raises(DataError, match=re.escape(message)):
        write_assignments(path, **{"split": None, "fold": None, **kw})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.h5"]


def test_read_reference_names_a_field_the_file_does_not_have(tmp_path: Path) -> None:
    """Guards against the check for the field itself being dropped (only the group's
    checked): h5py's KeyError instead of one message naming the field."""
    path = _write(tmp_path / "a.h5", reference={"sbp": np.arange(6.0)})
    with pytest.raises(DataError, match="has no reference field 'dbp'"):
        read_reference(path, "dbp")


def test_text_attributes_written_as_fixed_length_strings_are_read_as_text(tmp_path) -> None:
    """A file whose text attributes are fixed-length strings (MATLAB's ``h5writeatt``, or
    numpy bytes from h5py) passed validation, whose schema check decodes bytes, but
    ``read_info`` gave ``str(b"mmHg")``: the units read "b'mmHg'", training refused the ABP
    as not in mmHg, and a synthetic file's source no longer said "synthetic"."""
    path = _write(tmp_path / "a.h5")
    texts = {
        "schema": "innpar-freia.windows",
        "ppg_units": "a.u.",
        "abp_units": "mmHg",
        "source_format": "synthetic",
        "description": "by hand",
        "package_version": "0.1",
    }
    with h5py.File(path, "r+") as fh:
        for name, text in texts.items():
            fh.attrs[name] = np.bytes_(text.encode())
    info = read_info(path)
    assert (info.ppg_units, info.abp_units, info.source_format) == ("a.u.", "mmHg", "synthetic")
    assert (info.description, info.package_version) == ("by hand", "0.1")


# ---- the leakage check -----------------------------------------------------------------------

N = 128  # samples per window in the leakage files: signatures are means of sample pairs


def _distinct(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` windows of smoothed noise: no two correlate anywhere near 0.99."""
    rng = np.random.default_rng(seed)
    kernel = np.ones(5) / 5
    smooth = [np.convolve(rng.normal(size=N), kernel, "same") for _ in range(2 * n)]
    return np.array(smooth[:n]), 90 + 10 * np.array(smooth[n:])


def _leak_file(path: Path, ppg, abp, subjects, fold=-1, split="", ids=None, source="t") -> Path:
    n = len(ppg)
    ids = [f"w{i}" for i in range(n)] if ids is None else ids
    with WindowWriter(path, fs=125.0, window_length=N, source_format=source) as w:
        w.append(ppg, abp, subject=list(subjects), window_id=ids, fold=fold, split=split)
    return path


def _part(report, name: str = "fold") -> dict:
    return next(p for p in report.to_dict()["partitions"] if p["partition"] == name)


def test_signature_products_are_the_correlations_of_block_means() -> None:
    """Guards against signatures kept in float16: their products were off by ~1e-3, the
    width of the band between a near duplicate (0.99) and a copy (0.999)."""
    ppg, _ = _distinct(2)
    x = np.vstack([ppg[0], ppg[0] + 0.3 * ppg[1]])
    means = x.reshape(2, 64, 2).mean(axis=2)  # 64 blocks of 2 samples, by hand
    r = np.corrcoef(means)[0, 1]
    s = signatures(x)
    assert s.dtype == np.float32 and s.shape == (2, 64)
    assert float(s[0] @ s[1]) == pytest.approx(r, abs=2e-6)
    assert float(s[0] @ s[0]) == pytest.approx(1.0, abs=2e-6)


def test_windows_a_float32_step_apart_are_not_exact_duplicates(tmp_path: Path) -> None:
    """Guards against hashing the windows at a lower precision than the file's float32:
    copies with one sample one float32 step (ulp) away were "identical" bytes in float16,
    and reported as exact duplicates rather than near ones."""
    ppg, abp = (x.astype(np.float32) for x in _distinct(4))
    ppg[3], abp[3] = ppg[0], abp[0]
    ppg[3, 10] = np.nextafter(ppg[0, 10], np.float32(np.inf))
    abp[3, 20] = np.nextafter(abp[0, 20], np.float32(np.inf))
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "abcd", fold=[0, 0, 1, 1])
    p = _part(check_leakage(path))
    assert p["exact_duplicate_windows"] == 0 and p["exact_duplicate_pairs"] == {"ppg": 0, "abp": 0}
    assert p["near_duplicate_pairs"] == p["near_duplicate_pairs_above_0_999"] == 1


def test_a_shared_subject_alone_and_an_exact_duplicate_alone_are_leakage(tmp_path) -> None:
    """Guards against the verdict leaving out shared subjects, or exact duplicates: each
    alone made a leaking file pass as clean (the other detectors found nothing); and
    against the example saying the PPG is identical when it is the ABP."""
    ppg, abp = _distinct(4)
    subject = _leak_file(tmp_path / "s.h5", ppg, abp, "abcb", fold=[0, 0, 1, 1])
    p = _part(check_leakage(subject))
    assert p["subjects_in_several_parts"] == 1 and p["leakage"]
    assert p["exact_duplicate_windows"] == p["near_duplicate_pairs"] == 0
    exact_abp = abp.copy()
    exact_abp[3] = abp[0]  # the same ABP under another PPG: exact, not near
    exact = _leak_file(tmp_path / "e.h5", ppg, exact_abp, "abcd", fold=[0, 0, 1, 1])
    p = _part(check_leakage(exact))
    assert p["exact_duplicate_windows"] == 2 and p["exact_duplicate_pairs"] == {"ppg": 0, "abp": 1}
    assert p["subjects_in_several_parts"] == p["near_duplicate_pairs"] == 0 and p["leakage"]
    assert p["exact_examples"][0]["identical"] == "abp"
    assert check_leakage(exact).leaks


def test_a_leak_across_folds_is_leakage_when_the_splits_are_clean(tmp_path: Path) -> None:
    """Guards against the file's verdict asking every partition to leak (all instead of
    any), or looking at the first (the split column) only."""
    ppg, abp = _distinct(6)
    split = ["train", "train", "val", "val", "test", "test"]
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "aabbcc", fold=[0, 1, 0, 1, 0, 1], split=split)
    report = check_leakage(path)
    assert [p.name for p in report.partitions] == ["split", "fold"]
    assert not _part(report, "split")["leakage"] and _part(report, "fold")["leakage"]
    assert report.leaks and report.to_dict()["leakage"]


def test_near_duplicate_windows_count_windows_not_pairs(tmp_path: Path) -> None:
    """Guards against ``near_duplicate_windows`` reporting the number of pairs: one window
    copied (rescaled) twice into the other fold is 2 pairs of 3 windows; and against an
    example giving its second window the first one's fold."""
    ppg, abp = _distinct(5)
    for k in (3, 4):
        ppg[k], abp[k] = 2 * ppg[0] + k, abp[0] + k
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "abcde", fold=[0, 0, 0, 1, 1])
    p = _part(check_leakage(path))
    assert p["near_duplicate_pairs"] == 2 and p["near_duplicate_windows"] == 3
    for example in p["near_examples"]:
        assert (example["a"]["window"], example["a"]["fold"]) == ("w0", "0")
        assert example["b"]["window"] in ("w3", "w4") and example["b"]["fold"] == "1"


def test_windows_without_a_fold_are_in_no_part(tmp_path: Path) -> None:
    """Guards against windows with fold -1 (none) being taken as a part of their own: a
    subject with windows in fold 0 and without a fold was "in several parts", and -1 was
    listed among the parts and compared with the folds."""
    ppg, abp = _distinct(6)
    ppg[5], abp[5] = ppg[0], abp[0]  # an exact copy of a fold-0 window, without a fold
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "abcdea", fold=[0, 0, 1, 1, 2, -1])
    p = _part(check_leakage(path))
    assert p["parts"] == {"0": 2, "1": 2, "2": 1}
    assert p["subjects_in_several_parts"] == 0 and p["exact_duplicate_windows"] == 0
    assert not p["leakage"]


def test_exact_duplicates_count_the_pairs_across_parts(tmp_path: Path) -> None:
    """Guards against counting one pair per duplicated signal instead of the pairs across
        parts, and against the example naming one window twice: one window four times, twice
        in each of two folds, is 2 x 2 = 4 pairs across the folds (the 2 inside them are not
        leakage) of 4 windows, each also duplicated within its fold; a window once in each fold
    is 1 more pair and duplicated within neither."""
    ppg, abp = _distinct(6)
    for k in (1, 3, 4):
        ppg[k], abp[k] = ppg[0], abp[0]
    ppg[5], abp[5] = ppg[2], abp[2]  # and window 2 once in each fold: 1 more pair
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "abcdef", fold=[0, 0, 0, 1, 1, 1])
    p = _part(check_leakage(path))
    assert p["exact_duplicate_pairs"] == {"ppg": 5, "abp": 5}
    assert p["exact_duplicate_windows"] == 6 and p["windows_duplicated_within_a_part"] == 4
    example = p["exact_examples"][0]
    assert (example["a"]["window"], example["a"]["fold"]) == ("w0", "0")
    assert (example["b"]["window"], example["b"]["fold"]) == ("w3", "1")


@pytest.mark.parametrize("same", ["ppg", "abp"])
def test_a_pair_with_one_identical_signal_is_exact_not_also_near(tmp_path, same: str) -> None:
    """Guards against a pair being counted as a near duplicate as well when one of its
    signals is identical (the skip asked for both identical, or looked at the PPG only):
    one copy was reported twice, once as an exact and once as a near duplicate."""
    ppg, abp = _distinct(4)
    if same == "ppg":
        ppg[3], abp[3] = ppg[0], 0.5 * abp[0] + 40  # identical PPG, rescaled ABP
    else:
        ppg[3], abp[3] = 3 * ppg[0] + 1, abp[0]  # rescaled PPG, identical ABP
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "abcd", fold=[0, 0, 1, 1])
    p = _part(check_leakage(path))
    assert p["exact_duplicate_pairs"] == {"ppg": int(same == "ppg"), "abp": int(same == "abp")}
    assert p["exact_duplicate_windows"] == 2 and p["near_duplicate_pairs"] == 0


def test_the_threshold_given_is_the_one_used_for_both_signals(tmp_path: Path) -> None:
    """Guards against the PPG comparison using the default 0.99 instead of the threshold
    given (``--threshold``): a pair at r = 0.95 (PPG) and 1 (ABP) was missed at 0.9; and
    against the report naming the default threshold instead of the one used."""
    ppg, abp = _distinct(4)
    ppg[3] = ppg[0] + 0.33 * ppg[1]  # PPG r ~ 0.95
    abp[3] = 2 * abp[0]  # ABP r = 1
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "abcd", fold=[0, 0, 1, 1])
    sig = signatures(np.vstack([ppg[0], ppg[3]]))
    assert 0.9 < float(sig[0] @ sig[1]) < 0.99  # the premise, by the signatures
    assert _part(check_leakage(path))["near_duplicate_pairs"] == 0
    report = check_leakage(path, threshold=0.9)
    assert _part(report)["near_duplicate_pairs"] == 1
    assert report.to_dict()["near_threshold"] == 0.9


def test_near_duplicates_are_found_in_every_block_of_rows(tmp_path: Path) -> None:
    """Guards against the blocks of 2048 rows compared at a time leaving out the last row
    of each: a copy of window 2047 in another fold went unseen."""
    ppg, abp = _distinct(2050, seed=3)
    ppg[2049], abp[2049] = 2 * ppg[2047] + 1, abp[2047] - 5
    path = _leak_file(tmp_path / "a.h5", ppg, abp, [f"s{i}" for i in range(2050)],
                      fold=[0] * 2049 + [1])  # fmt: skip
    p = _part(check_leakage(path))
    assert p["near_duplicate_pairs"] == 1
    assert {p["near_examples"][0]["a"]["index"], p["near_examples"][0]["b"]["index"]} == {
        2047,
        2049,
    }


def test_unassigned_windows_are_in_no_split(tmp_path: Path) -> None:
    """Guards against windows of no split ("") being taken as a part of the split column:
    a subject with training windows and unassigned ones was "in several splits"."""
    ppg, abp = _distinct(6)
    split = ["train", "train", "val", "test", "", ""]
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "abcdaa", split=split)
    report = check_leakage(path)
    p = _part(report, "split")
    assert p["parts"] == {"test": 1, "train": 2, "val": 1}
    assert p["subjects_in_several_parts"] == 0 and not report.leaks


def test_a_signature_length_other_than_64_is_used(tmp_path: Path) -> None:
    """Guards against the signatures of the PPG being made with the default 64 points
    whatever ``--signature-points`` says (the file could not be checked at all), and the
    report naming another length than the one used."""
    ppg, abp = _distinct(4)
    ppg[3], abp[3] = 2 * ppg[0], abp[0] + 3
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "abcd", fold=[0, 0, 1, 1])
    report = check_leakage(path, points=16)
    assert report.to_dict()["signature_points"] == 16
    assert _part(report)["near_duplicate_pairs"] == 1
    assert check_leakage(path, points=1000).to_dict()["signature_points"] == N  # one a sample


def test_duplicates_within_a_part_are_counted_by_either_signal(tmp_path: Path) -> None:
    """Windows duplicated within their part were counted by the PPG only, where an exact
    duplicate across parts is one of the PPG *or* the ABP: two windows of one fold sharing
    their ABP bytes were not counted, as windows sharing their PPG were."""
    ppg, abp = _distinct(6)
    ppg[1] = ppg[0]  # the same PPG, in fold 0
    abp[3] = abp[2]  # the same ABP, in fold 0
    path = _leak_file(tmp_path / "a.h5", ppg, abp, "abcdef", fold=[0, 0, 0, 0, 1, 1])
    p = _part(check_leakage(path))
    assert p["windows_duplicated_within_a_part"] == 4 and not p["leakage"]
    assert p["exact_duplicate_windows"] == 0 and p["exact_duplicate_pairs"] == {"ppg": 0, "abp": 0}


@pytest.mark.parametrize("go_on", [True, False], ids=["append-more", "close"])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"subject": ["a", "b", "c"]}, "subject has shape (3,), expected (2,)"),
        ({"start": [0, 1, 2]}, "start has shape (3,), expected (2,)"),
        ({"reference": {"sbp": ["high", "low"]}}, "reference field 'sbp' holds numbers"),
        ({"reference": {"dbp": [70.0, 71.0]}}, "'dbp' must be given for every append"),
    ],
)
def test_a_refused_append_writes_nothing(
    tmp_path: Path, bad: dict, message: str, go_on: bool
) -> None:
    """Guards against a column checked after the file's columns have grown. A reference
    field was: when it was refused (text for a numeric field, or a new field after the first
    append), PPG to start already had the new rows, and a caller that caught the error and
    closed the file got a file no command could open (PPG of 4 rows, n_windows 2); text for a
    numeric field was a bare ValueError. Appending more after the refusal must give the rows
    in order."""
    path = tmp_path / "r.h5"
    ppg, abp = _windows(4)
    good = {"subject": ["a", "b"], "reference": {"sbp": [120.0, 121.0]}}
    with WindowWriter(path, fs=50.0, window_length=L, source_format="t") as w:
        w.append(ppg[:2], abp[:2], window_id=["0", "1"], **good)
        with pytest.raises(DataError, match=re.escape(message)):
            w.append(ppg[2:], abp[2:], **{**good, "window_id": ["2", "3"], **bad})
        if go_on:
            w.append(ppg[2:], abp[2:], window_id=["2", "3"], **good)
    n = 4 if go_on else 2
    info = read_info(path)
    assert info.n_windows == n
    assert list(info.window_ids) == ["0", "1", "2", "3"][:n]
    assert list(info.subjects) == ["a", "b", "a", "b"][:n]
    got_ppg, got_abp = read_signals(path, np.arange(n))
    np.testing.assert_array_equal(got_ppg, ppg[:n].astype(np.float32))
    np.testing.assert_array_equal(got_abp, abp[:n].astype(np.float32))
    np.testing.assert_array_equal(read_reference(path, "sbp"), [120.0, 121.0, 120.0, 121.0][:n])
