"""Tests that pin what a mutation audit of the windowed dataset importers found unguarded:
bp-benchmark's fold files (``innpar_freia/data/bp_benchmark.py``), the MATLAB v5 / v7.3
reader under them (``innpar_freia/data/matfile.py``) and the original INN-PAR release's
``ppg/`` + ``abp/`` ``.npy`` folders (``innpar_freia/data/innpar_npy.py``). Each one fails
when the bug named in its docstring is put into the package.

Every file is written here, small (4-6 windows of 1 s at 125 Hz), with scipy's ``savemat``,
h5py (MATLAB's v7.3 conventions: arrays transposed, char as uint16 code points) or numpy;
the expected values are worked out from what was written, never by calling the importer.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import sine_windows, write_matlab_header
from scipy.io import savemat

from innpar_freia.data.importers import import_bp_benchmark, import_innpar_npy
from innpar_freia.data.matfile import load_mat
from innpar_freia.data.store import read_info, read_reference, read_signals
from innpar_freia.errors import DataError

L = 125  # 1-s windows keep the files tiny


def _signals(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return sine_windows(n, L, seed)


def _fold(n: int = 4, seed: int = 0, **columns: np.ndarray) -> dict[str, np.ndarray]:
    """One fold file's variables as bp-benchmark writes them (``np.vstack`` of columns)."""
    ppg, abp = _signals(n, seed)
    patients = [f"s{seed}_{i % 2}" for i in range(n)]
    cols = {
        "patient": np.vstack(patients),
        "trial": np.vstack([f"{p}_{625 * i:06d}" for i, p in enumerate(patients)]),
        "signal": ppg,
        "abp_signal": abp,
        "SP": abp.max(axis=1, keepdims=True),
    }
    cols.update(columns)
    return cols


def _save(folder: Path, name: str, cols: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    savemat(folder / name, cols)
    return folder / name


def _save_v73(path: Path, datasets: dict[str, tuple[np.ndarray, str]]) -> Path:
    """An HDF5 file with MATLAB's 512-byte header; ``datasets`` are written as given (already
    in HDF5 orientation) with their ``MATLAB_class``."""
    with h5py.File(path, "w", userblock_size=512) as fh:
        for name, (data, cls) in datasets.items():
            fh.create_dataset(name, data=data).attrs["MATLAB_class"] = np.bytes_(cls)
    write_matlab_header(path)
    return path


def _chars(rows: list[str]) -> np.ndarray:
    """A MATLAB char matrix as v7.3 stores it: uint16 code points, (chars, rows)."""
    width = max(len(r) for r in rows)
    return np.array([[ord(c) for c in r.ljust(width)] for r in rows], dtype=np.uint16).T


# ------------------------------------------------------------------ bp-benchmark: fold files


def test_fold_files_in_capitals_are_folds_and_backups_are_not(tmp_path: Path) -> None:
    """Guards against the fold-file pattern losing ``re.IGNORECASE`` (``SIGNAL_FOLD_2.MAT``
    from a Windows share was skipped: "no signal_fold_<k>.mat files") or its ``$`` anchor
    (``signal_fold_1.mat.bak``, an editor's backup, became a second fold 1 or fold 1)."""
    folder = tmp_path / "bpb"
    _save(folder, "SIGNAL_FOLD_2.MAT", _fold(seed=2))
    _save(folder, "signal_fold_0.mat", _fold(seed=0))
    (folder / "signal_fold_1.mat.bak").write_bytes((folder / "signal_fold_0.mat").read_bytes())
    report = import_bp_benchmark(folder, tmp_path / "o.h5")
    assert report.folds == {"0": 4, "2": 4}
    assert [s.id for s in report.sources] == ["signal_fold_0", "SIGNAL_FOLD_2"]


def test_a_single_fold_file_keeps_the_fold_of_its_name(tmp_path: Path) -> None:
    """Guards against a single file given as PATH getting fold 0 or its number plus one
    (the folder path's numbering and the file path's must agree)."""
    file = _save(tmp_path / "bpb", "signal_fold_3.mat", _fold())
    report = import_bp_benchmark(file, tmp_path / "o.h5")
    assert report.folds == {"3": 4}
    assert set(read_info(tmp_path / "o.h5").fold) == {3}


def test_the_largest_int16_fold_is_accepted_and_the_next_refused(tmp_path: Path) -> None:
    """Guards against the fold limit being off by one (fold 32767 refused) or dropped, for a
    single file and for a folder: the fold column is int16 (largest 32767)."""
    ok = _save(tmp_path / "ok", "signal_fold_32767.mat", _fold())
    assert import_bp_benchmark(ok, tmp_path / "a.h5").folds == {"32767": 4}
    assert import_bp_benchmark(ok.parent, tmp_path / "b.h5").folds == {"32767": 4}
    big = _save(tmp_path / "big", "signal_fold_32768.mat", _fold())
    for path in (big, big.parent):
        with pytest.raises(DataError, match="fold numbers go up to 32767"):
            import_bp_benchmark(path, tmp_path / "c.h5")
        assert not (tmp_path / "c.h5").exists()


def test_two_files_for_one_fold_are_refused(tmp_path: Path) -> None:
    """Guards against dropping the duplicate-fold check: ``signal_fold_1.mat`` and
    ``signal_fold_01.mat`` are both fold 1, and were imported as one fold of both."""
    folder = tmp_path / "bpb"
    _save(folder, "signal_fold_1.mat", _fold(seed=1))
    _save(folder, "signal_fold_01.mat", _fold(seed=5))
    with pytest.raises(DataError, match="two files for the same fold"):
        import_bp_benchmark(folder, tmp_path / "o.h5")


def test_a_folder_without_fold_files_names_the_mat_files_it_has(tmp_path: Path) -> None:
    """Guards against losing the hint that lists the ``.mat`` files found instead (a user
    with ``fold0.mat`` learns why nothing matched)."""
    folder = tmp_path / "bpb"
    _save(folder, "fold0.mat", _fold())
    with pytest.raises(DataError, match=r"no signal_fold_<k>\.mat files \(it has fold0\.mat\)"):
        import_bp_benchmark(folder, tmp_path / "o.h5")


# --------------------------------------------------------- bp-benchmark: ids and subjects


def test_numeric_subject_ids_as_a_row_or_a_column_keep_their_values(tmp_path: Path) -> None:
    """Guards against numeric ``patient`` ids (MATLAB numbers) being accepted only as an
    (N, 1) column (a (1, N) row, what ``[85 85 7 7]`` is in MATLAB, was refused), against
    whole numbers written as ``85.0`` (the record's id is ``85``) and against fractional
    ones cut to integers (``7.5`` and ``7`` merged into one subject)."""
    folder = tmp_path / "bpb"
    _save(folder, "signal_fold_0.mat", _fold(patient=np.array([[85.0, 85.0, 7.5, 7.0]])))
    import_bp_benchmark(folder, tmp_path / "o.h5")
    assert list(read_info(tmp_path / "o.h5").subjects) == ["85", "85", "7.5", "7"]


def test_subject_ids_are_read_in_window_order(tmp_path: Path) -> None:
    """Guards against the subject column being written in another order than the windows
    (a window labelled with another window's subject leaks across folds)."""
    folder = tmp_path / "bpb"
    _save(folder, "signal_fold_0.mat", _fold(patient=np.vstack(["a", "b", "c", "d"])))
    import_bp_benchmark(folder, tmp_path / "o.h5")
    info = read_info(tmp_path / "o.h5")
    assert list(info.subjects) == ["a", "b", "c", "d"]
    assert list(info.window_ids) == ["s0_0_000000", "s0_1_000625", "s0_0_001250", "s0_1_001875"]
    assert list(info.start) == [0, 625, 1250, 1875]


def test_subject_ids_padded_on_the_left_are_stripped(tmp_path: Path) -> None:
    """Guards against stripping only the right (MATLAB's char padding): ``num2str([7; 85])``
    pads on the left, ``[' 7'; '85']``, and `` 7`` became a subject of its own beside ``7``."""
    folder = tmp_path / "bpb"
    _save(folder, "signal_fold_0.mat", _fold(patient=np.array([" 7", "85", " 7", "7 "])))
    import_bp_benchmark(folder, tmp_path / "o.h5")
    assert list(read_info(tmp_path / "o.h5").subjects) == ["7", "85", "7", "7"]


def test_a_window_without_a_subject_id_is_refused(tmp_path: Path) -> None:
    """Guards against an empty ``patient`` entry being imported as a subject called ""
    (one blank among named ones is enough: all such windows become one "subject")."""
    folder = tmp_path / "bpb"
    cell = np.empty((4, 1), dtype=object)
    cell[:, 0] = ["a", "", "b", "a"]
    _save(folder, "signal_fold_0.mat", _fold(patient=cell))
    with pytest.raises(DataError, match="column 'patient' has empty subject ids"):
        import_bp_benchmark(folder, tmp_path / "o.h5")


@pytest.mark.parametrize("missing", [np.nan, np.inf])
def test_a_missing_number_in_a_cell_of_subject_ids_is_refused(
    tmp_path: Path, missing: float
) -> None:
    """Bug: a cell array of numeric ``patient`` ids (``{85; NaN; 7; NaN}``, MATLAB's
    missing value) imported the NaN entries as one subject called "nan" (every window
    without an id pooled into one subject, across folds), while the same ids as a numeric
    column were refused."""
    cell = np.empty((4, 1), dtype=object)
    for i, value in enumerate([85.0, missing, 7.0, missing]):
        cell[i, 0] = np.array([[value]])
    folder = tmp_path / "bpb"
    _save(folder, "signal_fold_0.mat", _fold(patient=cell))
    with pytest.raises(DataError, match=r"column 'patient' has 2 missing \(NaN or inf\) values"):
        import_bp_benchmark(folder, tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()
    cell[1, 0] = cell[3, 0] = np.array([[9.0]])
    _save(folder, "signal_fold_0.mat", _fold(patient=cell))
    import_bp_benchmark(folder, tmp_path / "o.h5")
    assert list(read_info(tmp_path / "o.h5").subjects) == ["85", "9", "7", "9"]


@pytest.mark.parametrize("count", [3, 5])
def test_a_subject_column_of_another_length_is_refused(tmp_path: Path, count: int) -> None:
    """Guards against accepting more subject ids than windows (the surplus was dropped and
    every id after a missing row shifted onto the wrong window)."""
    folder = tmp_path / "bpb"
    ids = np.vstack([f"p{i}" for i in range(count)])
    _save(folder, "signal_fold_0.mat", _fold(patient=ids))
    with pytest.raises(DataError, match=f"column 'patient' has {count} values, expected 4"):
        import_bp_benchmark(folder, tmp_path / "o.h5")


def test_missing_patient_or_ppg_variables_are_named(tmp_path: Path) -> None:
    """Guards against dropping the checks for ``patient`` and ``signal`` (a KeyError
    traceback instead of a message saying which variable the file lacks)."""
    cols = _fold()
    del cols["patient"]
    _save(tmp_path / "a", "signal_fold_0.mat", cols)
    with pytest.raises(DataError, match="has no 'patient' column"):
        import_bp_benchmark(tmp_path / "a", tmp_path / "o.h5")
    cols = _fold()
    del cols["signal"]
    _save(tmp_path / "b", "signal_fold_0.mat", cols)
    with pytest.raises(DataError, match=r"has an ABP waveform but no PPG waveform \('signal'\)"):
        import_bp_benchmark(tmp_path / "b", tmp_path / "o.h5")


# ------------------------------------------------------ bp-benchmark: signals and columns


def test_ppg_and_abp_with_different_window_counts_are_refused(tmp_path: Path) -> None:
    """Guards against comparing only the window lengths of PPG and ABP: 4 PPG windows with 3
    ABP windows paired window i of one with another window's pressure."""
    cols = _fold()
    cols["abp_signal"] = cols["abp_signal"][:3]
    _save(tmp_path / "bpb", "signal_fold_0.mat", cols)
    with pytest.raises(DataError, match=r"shape \(4, 125\) but ABP .* shape \(3, 125\)"):
        import_bp_benchmark(tmp_path / "bpb", tmp_path / "o.h5")


def test_signals_that_are_not_matrices_or_hold_no_windows_are_refused(tmp_path: Path) -> None:
    """Guards against dropping the (windows, samples) shape check (a 3-D array ended in a
    numpy traceback) and the "holds no windows" check (0 windows)."""
    ppg, abp = _signals(4)
    cols = _fold(signal=ppg.reshape(4, 25, 5), abp_signal=abp.reshape(4, 25, 5))
    _save(tmp_path / "a", "signal_fold_0.mat", cols)
    with pytest.raises(DataError, match=r"'signal' must be a numeric \(windows, samples\) matrix"):
        import_bp_benchmark(tmp_path / "a", tmp_path / "o.h5")
    cols = _fold(signal=np.zeros((0, L)), abp_signal=np.zeros((0, L)))
    cols["patient"] = cols["trial"] = np.zeros((0, 1))
    _save(tmp_path / "b", "signal_fold_0.mat", cols)
    with pytest.raises(DataError, match="holds no windows"):
        import_bp_benchmark(tmp_path / "b", tmp_path / "o.h5")


def test_variables_that_are_not_per_window_columns_are_ignored_with_a_warning(
    tmp_path: Path,
) -> None:
    """Guards against taking as reference fields variables that are not one value per
    window: a scalar ``fs``, a (2, 2) calibration matrix holding as many numbers as there
    are windows, a single text note. They broke the import or became bogus columns."""
    cols = _fold(
        fs=np.array([[125.0]]),
        calib=np.arange(4.0).reshape(2, 2),
        note=np.array(["made by hand"]),
    )
    _save(tmp_path / "bpb", "signal_fold_0.mat", cols)
    report = import_bp_benchmark(tmp_path / "bpb", tmp_path / "o.h5")
    assert read_info(tmp_path / "o.h5").reference_fields == ["SP"]
    ignored = [w for w in report.warnings if "ignored columns" in w]
    assert ignored == ["signal_fold_0.mat: ignored columns calib (2, 2), fs (1, 1), note (1,)"]


def test_reference_values_are_kept_in_double_precision(tmp_path: Path) -> None:
    """Guards against reference fields (SP, DP, demographics) going through float32: 120.1
    mmHg came back as 120.09999847."""
    sp = np.array([[120.1], [95.3], [101.7], [88.8]])
    _save(tmp_path / "bpb", "signal_fold_0.mat", _fold(SP=sp))
    import_bp_benchmark(tmp_path / "bpb", tmp_path / "o.h5")
    assert read_reference(tmp_path / "o.h5", "SP").tolist() == [120.1, 95.3, 101.7, 88.8]


def test_folds_must_agree_on_window_length_and_columns(tmp_path: Path) -> None:
    """Guards against dropping the checks that every fold has the first one's window length
    and columns: a column missing from one fold, or text in one fold and numbers in the
    next, ended in a store error or text like ``'1.0'`` mixed with ``'F'``."""
    first = _fold(seed=0, sex=np.vstack(["F", "M", "F", "M"]))
    _save(tmp_path / "len", "signal_fold_0.mat", first)
    ppg, abp = _signals(4, 1)
    _save(
        tmp_path / "len",
        "signal_fold_1.mat",
        _fold(seed=1, signal=ppg[:, :100], abp_signal=abp[:, :100], sex=first["sex"]),
    )
    with pytest.raises(DataError, match=r"has windows of 100 samples, but signal_fold_0\.mat has"):
        import_bp_benchmark(tmp_path / "len", tmp_path / "o.h5")
    _save(tmp_path / "cols", "signal_fold_0.mat", first)
    _save(tmp_path / "cols", "signal_fold_1.mat", _fold(seed=1))
    with pytest.raises(DataError, match="all folds must have the same columns"):
        import_bp_benchmark(tmp_path / "cols", tmp_path / "o.h5")
    _save(tmp_path / "kind", "signal_fold_0.mat", first)
    _save(tmp_path / "kind", "signal_fold_1.mat", _fold(seed=1, sex=np.ones((4, 1))))
    with pytest.raises(DataError, match="all folds must have the same columns"):
        import_bp_benchmark(tmp_path / "kind", tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()


def test_the_rate_given_is_the_rate_stored(tmp_path: Path) -> None:
    """Guards against ``fs`` being ignored (every import stored at 125 Hz)."""
    _save(tmp_path / "bpb", "signal_fold_0.mat", _fold())
    report = import_bp_benchmark(tmp_path / "bpb", tmp_path / "o.h5", fs=100)
    assert read_info(tmp_path / "o.h5").fs == 100.0 and report.fs == 100.0
    assert read_info(tmp_path / "o.h5").provenance["fs_source"] == "option"


def test_rejections_are_counted_per_reason_and_per_file(tmp_path: Path) -> None:
    """Guards against a constant window being counted as ``non_finite`` too, and against
    a file's ``windows_total`` counting only the windows kept."""
    cols = _fold(n=6)
    cols["signal"][1, 7] = np.nan
    cols["abp_signal"][4] = 70.0
    _save(tmp_path / "bpb", "signal_fold_0.mat", cols)
    report = import_bp_benchmark(tmp_path / "bpb", tmp_path / "o.h5")
    assert report.windows_rejected == {"constant": 1, "non_finite": 1}
    (src,) = report.sources
    assert (src.windows_total, src.windows_kept) == (6, 4)
    assert list(read_info(tmp_path / "o.h5").start) == [0, 1250, 1875, 3125]


def test_a_window_id_in_two_folds_is_imported_with_a_warning(tmp_path: Path) -> None:
    """Guards against dropping the repeated-id warning: the same ``trial`` in two fold files
    (a window copied between folds, a leak) was imported without a word."""
    folder = tmp_path / "bpb"
    first = _fold(seed=0)
    _save(folder, "signal_fold_0.mat", first)
    _save(folder, "signal_fold_1.mat", _fold(seed=1, trial=first["trial"]))
    report = import_bp_benchmark(folder, tmp_path / "o.h5")
    assert report.windows_kept == 8
    (warning,) = [w for w in report.warnings if "occur more than once" in w]
    assert warning.startswith("4 window id(s) occur more than once")


# ------------------------------------------------------------- matfile: MATLAB v5 (scipy)


def test_v5_text_loses_only_its_right_padding(tmp_path: Path) -> None:
    """Guards against char matrices and cells of char keeping MATLAB's right padding (a text
    reference field ``'icu    '`` beside ``'cardiac'``) or losing left spaces that are part
    of the text (only the padding, on the right, is MATLAB's)."""
    cell = np.empty((3, 1), dtype=object)
    cell[:, 0] = ["icu  ", " ward", "x"]
    path = _save(tmp_path, "t.mat", {"unit": np.array(["icu", "cardiac", "  or"]), "note": cell})
    loaded = load_mat(path)
    assert list(loaded["unit"]) == ["icu", "cardiac", "  or"]
    assert list(loaded["note"]) == ["icu", " ward", "x"]
    folder = tmp_path / "bpb"
    _save(folder, "signal_fold_0.mat", _fold(unit=np.array(["icu", "cardiac", "icu", "or"])))
    import_bp_benchmark(folder, tmp_path / "o.h5")
    assert list(read_reference(tmp_path / "o.h5", "unit")) == [b"icu", b"cardiac", b"icu", b"or"]


@pytest.mark.parametrize("version", ["v5", "v73"])
def test_load_mat_reads_only_the_variables_named(tmp_path: Path, version: str) -> None:
    """Guards against ``names`` being ignored (every variable read, a fold file's signals
    loaded to look at one column)."""
    if version == "v5":
        path = _save(tmp_path, "f.mat", {"SP": np.array([[1.0], [2.0]]), "x": np.eye(2)})
    else:
        sp = (np.array([[1.0, 2.0]]), "double")
        path = _save_v73(tmp_path / "f.mat", {"SP": sp, "x": (np.eye(2), "double")})
    loaded = load_mat(path, ["SP", "absent"])
    assert list(loaded) == ["SP"]
    assert loaded["SP"].tolist() == [[1.0], [2.0]]


def test_an_empty_file_is_said_to_be_empty(tmp_path: Path) -> None:
    """Guards against dropping the 0-byte check: a file cut to nothing (a failed copy) was
    reported as a MATLAB read error instead of "empty (0 bytes)"."""
    folder = tmp_path / "bpb"
    folder.mkdir()
    (folder / "signal_fold_0.mat").write_bytes(b"")
    with pytest.raises(DataError, match=r"signal_fold_0\.mat is empty \(0 bytes\)"):
        import_bp_benchmark(folder, tmp_path / "o.h5")


def test_v5_cells_hold_text_numbers_or_nothing_but_not_vectors(tmp_path: Path) -> None:
    """Guards against a cell element that is a vector being read as its first number (a
    cell ``{[1 2]}`` is not one value per window) and against an empty cell ``{[]}`` (a
    missing entry) being refused instead of read as no text."""
    cell = np.empty((3, 1), dtype=object)
    cell[0, 0], cell[1, 0], cell[2, 0] = "a", np.array([[7.0]]), np.zeros((0, 0))
    loaded = load_mat(_save(tmp_path, "ok.mat", {"c": cell}))
    assert list(loaded["c"]) == ["a", "7", ""]
    cell[1, 0] = np.array([[1.0, 2.0]])
    with pytest.raises(DataError, match=r"cell array 'c' holds a float64 of shape \(1, 2\)"):
        load_mat(_save(tmp_path, "bad.mat", {"c": cell}))


# -------------------------------------------------------------- matfile: MATLAB v7.3 (HDF5)


def _cells_v73(path: Path, elements: list[tuple[np.ndarray, str, bool]], shape: tuple) -> Path:
    """A v7.3 file with one cell array ``c`` of MATLAB shape ``shape``: ``elements`` are
    ``(data in HDF5 orientation, MATLAB class, empty?)`` in MATLAB's (column-major) order,
    stored as MATLAB does: object references into ``#refs#``, the cell transposed."""
    with h5py.File(path, "w", userblock_size=512) as fh:
        refs = fh.create_group("#refs#")
        targets = []
        for i, (data, cls, empty) in enumerate(elements):
            ds = refs.create_dataset(f"e{i}", data=data)
            ds.attrs["MATLAB_class"] = np.bytes_(cls)
            if empty:
                ds.attrs["MATLAB_empty"] = np.uint8(1)
            targets.append(ds.ref)
        # MATLAB order is column-major: element k is at (k % rows, k // rows); HDF5 holds
        # the transpose, (cols, rows), whose row-major order is MATLAB's linear order.
        grid = np.empty((shape[1], shape[0]), dtype=h5py.ref_dtype)
        for k, ref in enumerate(targets):
            grid[k // shape[0], k % shape[0]] = ref
        fh.create_dataset("c", data=grid, dtype=h5py.ref_dtype).attrs["MATLAB_class"] = np.bytes_(
            "cell"
        )
    head = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
    with path.open("r+b") as fh:
        fh.write(head.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    return path


def test_v73_char_matrices_lose_only_their_right_padding(tmp_path: Path) -> None:
    """Guards against v7.3 char matrices keeping NUL or space padding on the right (HDF5
    writers pad with NUL) or losing left spaces that are part of the text."""
    rows = ["ab\x00\x00", "  c ", "dddd"]
    path = _save_v73(tmp_path / "c.mat", {"t": (_chars(rows), "char")})
    assert list(load_mat(path)["t"]) == ["ab", "  c", "dddd"]


def test_v73_numbers_without_a_matlab_class_are_doubles_in_matlab_orientation(
    tmp_path: Path,
) -> None:
    """Guards against a dataset without ``MATLAB_class`` being taken for text, and against
    numeric matrices not being transposed back from HDF5's (cols, rows) storage."""
    ppg = np.arange(6.0).reshape(2, 3)  # 2 windows of 3 samples, as MATLAB sees them
    path = _save_v73(tmp_path / "m.mat", {"other": (np.ones((1, 1)), "double")})
    with h5py.File(path, "r+") as fh:
        fh.create_dataset("signal", data=ppg.T)
    assert load_mat(path)["signal"].tolist() == ppg.tolist()


def test_hdf5_without_the_matlab_header_is_refused(tmp_path: Path) -> None:
    """Guards against an HDF5 file written with h5py (no MATLAB header) being read as
    MATLAB's transposed arrays: a (windows, samples) ``signal`` came back as (samples,
    windows), and the import stopped with "column 'patient' has 40 values, expected 625"
    instead of saying the file is not a MATLAB file."""
    with h5py.File(tmp_path / "plain.mat", "w") as fh:
        fh.create_dataset("signal", data=np.zeros((40, 625)))
    with pytest.raises(DataError, match="HDF5 file without MATLAB's v7\\.3 header"):
        load_mat(tmp_path / "plain.mat")


def test_v73_empty_arrays_complex_numbers_and_groups(tmp_path: Path) -> None:
    """Guards against MATLAB's empty-array marker being ignored (MATLAB stores ``[]`` and
    ``zeros(0, 625)`` as the uint64 dimensions with ``MATLAB_empty``: read as the numbers
    0 and 625), against complex data (a (real, imag) compound) being returned as a record
    array, and against a struct (an HDF5 group) ending in a traceback."""
    path = _save_v73(tmp_path / "e.mat", {"x": (np.array([[0], [625]], np.uint64), "double")})
    with h5py.File(path, "r+") as fh:
        fh["x"].attrs["MATLAB_empty"] = np.uint8(1)
    assert load_mat(path)["x"].shape == (0, 0)
    cplx = np.zeros((2, 3), dtype=[("real", "<f8"), ("imag", "<f8")])
    path = _save_v73(tmp_path / "z.mat", {"signal": (cplx, "double")})
    with pytest.raises(DataError, match="variable 'signal' is complex"):
        load_mat(path)
    path = _save_v73(tmp_path / "s.mat", {"SP": (np.ones((1, 2)), "double")})
    with h5py.File(path, "r+") as fh:
        fh.create_group("info").attrs["MATLAB_class"] = np.bytes_("struct")
    with pytest.raises(DataError, match="variable 'info' is a MATLAB struct/group"):
        load_mat(path)


def test_v73_cells_read_like_v5_cells(tmp_path: Path) -> None:
    """Guards against v7.3 cells disagreeing with the same cell saved as MAT 5: padding kept
    on a cell's text, an empty cell ``{[]}`` read as its stored dimensions, a multi-row
    char or a 2-D cell read in another order, a cell holding a vector read as one number."""
    ab, cd = np.array(["ab ", "cd "]), np.array(["xy"])
    cell5 = np.empty((2, 2), dtype=object)
    cell5[0, 0], cell5[1, 0], cell5[0, 1], cell5[1, 1] = ab, np.zeros((0, 0)), np.array([[3.0]]), cd
    v5 = load_mat(_save(tmp_path, "c5.mat", {"c": cell5}))["c"]
    elements = [  # MATLAB order: (0,0), (1,0), (0,1), (1,1)
        (_chars(["ab ", "cd "]), "char", False),
        (np.array([0, 0], np.uint64), "double", True),  # {[]}: its dims, marked empty
        (np.array([[3.0]]), "double", False),
        (_chars(["xy  "]), "char", False),
    ]
    v73 = load_mat(_cells_v73(tmp_path / "c73.mat", elements, (2, 2)))["c"]
    assert list(v5) == ["ab cd", "3", "", "xy"]  # row by row, like numpy
    assert list(v73) == list(v5)
    vector = [(np.array([[1.0], [2.0]]), "double", False)]
    with pytest.raises(DataError, match="cell array 'c' holds a double of shape"):
        load_mat(_cells_v73(tmp_path / "v.mat", vector, (1, 1)))


def test_a_v73_variable_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    """Guards against an unreadable v7.3 dataset (a damaged compressed chunk: the file opens,
    reading fails with OSError) ending in a traceback instead of a message naming it."""
    path = tmp_path / "signal_fold_0.mat"
    with h5py.File(path, "w", userblock_size=512) as fh:
        ds = fh.create_dataset("signal", data=np.ones((L, 4)), chunks=(L, 4), compression="gzip")
        ds.attrs["MATLAB_class"] = np.bytes_("double")
        offset, size = ds.id.get_chunk_info(0).byte_offset, ds.id.get_chunk_info(0).size
    write_matlab_header(path)
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * size)
    with pytest.raises(DataError, match=r"variable 'signal' cannot be read \(truncated or corr"):
        load_mat(path)


@pytest.mark.parametrize(
    ("cls", "dtype"),
    [
        ("double", np.float64),
        ("single", np.float32),
        ("int8", np.int8),
        ("uint8", np.uint8),
        ("int16", np.int16),
        ("uint16", np.uint16),
        ("int32", np.int32),
        ("uint32", np.uint32),
        ("int64", np.int64),
        ("uint64", np.uint64),
        ("logical", np.uint8),
    ],
)
def test_every_matlab_numeric_class_is_read_as_numbers(tmp_path: Path, cls: str, dtype) -> None:
    """Guards against a numeric MATLAB class missing from the reader's list: ``single``
    signals (``save -v7.3`` of ``single(x)``), ``int32`` ids and ``logical`` flags were
    refused as "cannot be read as a column"."""
    path = _save_v73(tmp_path / "n.mat", {"x": (np.array([[1, 0, 1]], dtype=dtype), cls)})
    x = load_mat(path)["x"]
    assert x.dtype == dtype and x.tolist() == [[1], [0], [1]]


def test_a_damaged_compressed_v5_file_is_named(tmp_path: Path) -> None:
    """Guards against dropping ``zlib.error`` from the read errors caught: bp-benchmark's
    fold files are zlib-compressed MAT 5, and a damaged byte in the compressed data ended in
    a zlib traceback instead of a message naming the file."""
    folder = tmp_path / "bpb"
    folder.mkdir()
    path = folder / "signal_fold_0.mat"
    savemat(path, _fold(), do_compression=True)
    data = bytearray(path.read_bytes())
    data[400:416] = b"\xff" * 16  # inside the first variable's compressed stream
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"signal_fold_0\.mat is not a readable MATLAB file"):
        import_bp_benchmark(folder, tmp_path / "o.h5")


# ------------------------------------------------------------------------- innpar-npy


def _layout(root: Path, windows: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """``root/ppg/<name>.npy`` and ``root/abp/<name>.npy``, as the release saves them."""
    for sub in ("ppg", "abp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, (ppg, abp) in windows.items():
        np.save(root / "ppg" / f"{name}.npy", ppg)
        np.save(root / "abp" / f"{name}.npy", abp)
    return root


def _pairs(names: list[str], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    ppg, abp = _signals(len(names), seed)
    return {
        n: (p[None].astype(np.float32), a[None].astype(np.float32))
        for n, p, a in zip(names, ppg, abp, strict=True)
    }


@pytest.mark.parametrize("name", ["c2015_training_85_001250x", "_001250"])
def test_names_that_are_not_subject_and_start_are_refused(tmp_path: Path, name: str) -> None:
    """Guards against the default ``<subject>_<start>`` pattern losing its ``$`` (a name
    with text after the number got the subject ``c2015_training_85`` and start 1250) or
    accepting an empty subject (``_001250``)."""
    lay = _layout(tmp_path / "lay", _pairs([name]))
    with pytest.raises(DataError, match=f"window name '{name}' does not match the subject"):
        import_innpar_npy(lay, tmp_path / "o.h5")


def test_windows_of_one_subject_starting_samples_apart_are_warned_of(tmp_path: Path) -> None:
    """Names that are not ``<subject>_<start>`` can still parse so: ``c2015_test_552``,
    ``c2015_test_554`` and ``c2015_test_562`` made one subject "c2015_test" of three
    records, starting 2 and 8 samples apart (their record numbers), without a word. Windows
    a tenth of a window apart or more (the release's are one or more windows apart) say
    nothing. Guards against the check comparing starts across subjects."""
    names = ["c2015_test_552", "c2015_test_554", "c2015_test_562", "s1_000000", "s2_000030"]
    report = import_innpar_npy(_layout(tmp_path / "a", _pairs(names)), tmp_path / "a.h5", fs=25.0)
    assert report.warnings == [
        "windows of subject 'c2015_test' start within a tenth of a window of each other (3 "
        "windows; starts 552 and 554, windows of 125 samples): the part of their names read "
        "as a start may be part of the subject (a record number), making several subjects "
        "one; check the subjects ('innpar data info') or give subject_pattern or subject_map"
    ]
    apart = ["s1_000000", "s1_000013", "s1_000625", "s2_000005"]
    report = import_innpar_npy(_layout(tmp_path / "b", _pairs(apart)), tmp_path / "b.h5", fs=25.0)
    assert report.warnings == []


def test_split_folders_by_their_long_names_in_any_case(tmp_path: Path) -> None:
    """Guards against the split folders' long names (``training/``, ``valid/``,
    ``validation/``) or names in capitals (``Test/``) being refused as "not a split
    folder", or ``validation/`` filling the split column with ``validation``, which
    training refuses."""
    root = tmp_path / "a"
    _layout(root / "training", _pairs(["s1_000000", "s1_000625"]))
    _layout(root / "validation", _pairs(["s2_000000"], 1))
    _layout(root / "Test", _pairs(["s3_000000", "s3_000625", "s3_001250"], 2))
    report = import_innpar_npy(root, tmp_path / "a.h5")
    assert report.splits == {"test": 3, "train": 2, "val": 1}
    assert [s.id for s in report.sources] == ["test", "train", "val"]
    info = read_info(tmp_path / "a.h5")
    assert list(info.split) == ["test"] * 3 + ["train"] * 2 + ["val"]
    root = tmp_path / "b"
    _layout(root / "TRAIN", _pairs(["s1_000000"]))
    _layout(root / "valid", _pairs(["s2_000000"], 1))
    assert import_innpar_npy(root, tmp_path / "b.h5").splits == {"train": 1, "val": 1}


@pytest.mark.parametrize("missing", ["abp", "ppg"])
def test_a_layout_with_one_of_ppg_and_abp_names_the_other(tmp_path: Path, missing: str) -> None:
    """Guards against a folder with only ``ppg/`` (or only ``abp/``) being searched for
    split subfolders ("has no ppg/ and abp/ folders", though one is there) or imported
    without the check for its partner."""
    lay = _layout(tmp_path / "lay", _pairs(["s1_000000"]))
    for f in (lay / missing).iterdir():
        f.unlink()
    (lay / missing).rmdir()
    with pytest.raises(DataError, match=f"lay has no {missing}/ folder"):
        import_innpar_npy(lay, tmp_path / "o.h5")


def test_folders_named_like_npy_files_are_not_windows(tmp_path: Path) -> None:
    """Guards against taking every name ending in ``.npy`` for a window: a folder
    ``ppg/old.npy/`` (a copy tool's leftovers) ended the import as an unreadable file."""
    lay = _layout(tmp_path / "lay", _pairs(["s1_000000", "s1_000625"]))
    (lay / "ppg" / "old.npy").mkdir()
    (lay / "abp" / "old.npy").mkdir()
    report = import_innpar_npy(lay, tmp_path / "o.h5")
    assert report.windows_kept == 2
    assert list(read_info(tmp_path / "o.h5").window_ids) == ["s1_000000", "s1_000625"]


def test_two_files_for_one_window_are_refused(tmp_path: Path) -> None:
    """Guards against dropping the check that ``w.npy`` and ``w.NPY`` name one window: the
    second silently replaced the first."""
    lay = _layout(tmp_path / "lay", _pairs(["s1_000000"]))
    np.save(lay / "ppg" / "tmp.npy", np.zeros(3))
    (lay / "ppg" / "tmp.npy").rename(lay / "ppg" / "s1_000000.NPY")
    with pytest.raises(DataError, match=r"s1_000000\.NPY and \S*s1_000000\.npy name the same"):
        import_innpar_npy(lay, tmp_path / "o.h5")


def test_missing_partners_are_named_first_by_name_with_a_count(tmp_path: Path) -> None:
    """Guards against checking partners in one direction only (an ABP window without PPG was
    dropped), against naming an arbitrary one of several missing files (set order, which
    changes from run to run: 12 missing files make a wrong pick show in 11 runs of 12),
    and against losing the count of the others."""
    missing = [f"s{i:02d}_000625" for i in range(12)]
    lay = _layout(tmp_path / "lay", _pairs(["s00_000000", *missing[::-1]]))
    for name in missing:
        (lay / "ppg" / f"{name}.npy").unlink()
    with pytest.raises(DataError) as err:
        import_innpar_npy(lay, tmp_path / "o.h5")
    assert str(err.value) == (
        f"{lay / 'ppg' / 's00_000625.npy'} is missing: abp/s00_000625.npy has no partner in "
        "ppg/ (and 11 more)"
    )


def test_empty_ppg_and_abp_folders_are_refused(tmp_path: Path) -> None:
    """Guards against an empty layout (``ppg/`` and ``abp/`` without files) getting past the
    folder check to a misleading "every window contains NaN" message."""
    lay = _layout(tmp_path / "lay", {})
    with pytest.raises(DataError, match=r"lay/ppg holds no \.npy files"):
        import_innpar_npy(lay, tmp_path / "o.h5")


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((2, L), np.float32),  # two windows in one file
        ((L, 1), np.float32),  # a column: not the release's (1, L)
        ((1, 1, L), np.float32),
        ((0,), np.float32),
        ((L,), np.complex64),
    ],
)
def test_files_that_are_not_one_numeric_window_are_refused(
    tmp_path: Path, shape: tuple, dtype
) -> None:
    """Guards against the window-shape check accepting a (2, L) file (its first row or both
    rows joined became one window), an (L, 1) column (read as a 1-sample window), a 3-D
    array, an empty array or complex numbers."""
    lay = _layout(tmp_path / "lay", _pairs(["s1_000000"]))
    bad = np.resize(np.arange(1.0, 50.0), shape).astype(dtype)  # not constant
    np.save(lay / "ppg" / "s1_000625.npy", bad)
    np.save(lay / "abp" / "s1_000625.npy", bad)
    with pytest.raises(DataError, match=r"s1_000625\.npy must hold one numeric window of shape"):
        import_innpar_npy(lay, tmp_path / "o.h5")


def test_a_pickled_npy_file_is_refused_without_running_it(tmp_path: Path) -> None:
    """Guards against ``np.load(..., allow_pickle=True)``: an object ``.npy`` is a pickle,
    and loading it runs code from the file (here: creating a marker file)."""
    marker = tmp_path / "ran"
    lay = _layout(tmp_path / "lay", _pairs(["s1_000000"]))
    payload = np.empty(1, dtype=object)
    payload[0] = _Touch(marker)
    np.save(lay / "ppg" / "s1_000000.npy", payload, allow_pickle=True)
    with pytest.raises(DataError, match=r"s1_000000\.npy is not a readable \.npy file"):
        import_innpar_npy(lay, tmp_path / "o.h5")
    assert not marker.exists()


class _Touch:
    """Unpickling this creates ``path``: the code a pickle can run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_an_optional_start_group_that_did_not_match_means_an_unknown_start(
    tmp_path: Path,
) -> None:
    """Guards against reading the ``start`` group when it took no part in the match (the
    CLI documents it as optional): ``None.isascii`` ended the import in a traceback."""
    lay = _layout(tmp_path / "lay", _pairs(["rec7", "rec7_000625"]))
    pattern = r"^(?P<subject>[a-z]+\d+)(?:_(?P<start>\d+))?$"
    import_innpar_npy(lay, tmp_path / "o.h5", subject_pattern=pattern)
    info = read_info(tmp_path / "o.h5")
    assert list(info.window_ids) == ["rec7", "rec7_000625"]
    assert list(info.subjects) == ["rec7", "rec7"] and list(info.start) == [-1, 625]


def test_a_start_of_digits_int_cannot_read_is_refused(tmp_path: Path) -> None:
    """Guards against taking ``str.isdigit`` alone for a sample number: ``'²'`` is a digit
    to ``isdigit`` but ``int('²')`` raises ValueError (a traceback, not a message)."""
    lay = _layout(tmp_path / "lay", _pairs(["s1_\u00b2"]))
    with pytest.raises(DataError, match="which is not a sample number"):
        import_innpar_npy(
            lay, tmp_path / "o.h5", subject_pattern=r"^(?P<subject>.+)_(?P<start>\S+)$"
        )


def test_a_subject_map_must_name_every_window_and_starts_still_come_from_names(
    tmp_path: Path,
) -> None:
    """Guards against a window the subject map does not name being imported with its file
    name (or nothing) as subject instead of being refused, and against the map making
    every start unknown (the map gives the subject; the name's ``_<start>`` still gives
    the start sample)."""
    lay = _layout(tmp_path / "lay", _pairs(["w_000125", "w_000250"]))
    smap = tmp_path / "map.csv"
    smap.write_text("window,subject\nw_000125,alice\n")
    with pytest.raises(
        DataError, match=f"subject map {smap} has no subject for window 'w_000250'$"
    ):
        import_innpar_npy(lay, tmp_path / "o.h5", subject_map=smap)
    # A map naming the windows by their files is told why it matches none.
    smap.write_text("window,subject\nw_000125.npy,alice\nw_000250.npy,bob\n")
    with pytest.raises(DataError, match=r"without the extension \('w_000125', not 'w_000125.npy'"):
        import_innpar_npy(lay, tmp_path / "o.h5", subject_map=smap)
    smap.write_text("window,subject\nw_000125,alice\nw_000250,bob\n")
    import_innpar_npy(lay, tmp_path / "o.h5", subject_map=smap)
    info = read_info(tmp_path / "o.h5")
    assert list(info.subjects) == ["alice", "bob"] and list(info.start) == [125, 250]


def test_the_subject_group_is_found_by_name_and_must_not_be_empty(tmp_path: Path) -> None:
    """Guards against taking the pattern's first group for the subject when a ``subject``
    group comes later (the site became the subject), against an empty ``subject`` match
    being imported as a subject called "", and against the provenance recording the
    default pattern instead of the one given."""
    lay = _layout(tmp_path / "lay", _pairs(["icu-7_000125", "icu-9_000125"]))
    pattern = r"^(?P<site>[a-z]+)-(?P<subject>\d*)_(?P<start>\d+)$"
    import_innpar_npy(lay, tmp_path / "o.h5", subject_pattern=pattern)
    info = read_info(tmp_path / "o.h5")
    assert list(info.subjects) == ["7", "9"]
    assert info.provenance["options"]["subject_pattern"] == pattern  # the one used, not the default
    lay = _layout(tmp_path / "lay2", _pairs(["icu-_000125"]))
    with pytest.raises(DataError, match="gives an empty subject for window 'icu-_000125'"):
        import_innpar_npy(lay, tmp_path / "e.h5", subject_pattern=pattern)


def test_a_pattern_without_a_subject_group_takes_its_one_other_group_or_is_refused(
    tmp_path: Path,
) -> None:
    r"""Bug: without a ``subject`` group the subject was group 1, whatever it was:
    ``(?P<start>\d+)_(.+)`` made each window's start sample its subject, and a pattern
    with only a ``start`` group the whole name, every window its own subject (one person
    spread over every fold). Now the one group that is not ``start`` is the subject, a
    pattern without any group its match, and otherwise the import is refused before
    anything is written."""
    lay = _layout(tmp_path / "lay", _pairs(["000125_ann", "000250_ann", "000125_bob"]))
    import_innpar_npy(lay, tmp_path / "o.h5", subject_pattern=r"^(?P<start>\d+)_(.+)$")
    info = read_info(tmp_path / "o.h5")
    # In sorted name order: 000125_ann, 000125_bob, 000250_ann.
    assert list(info.subjects) == ["ann", "bob", "ann"] and list(info.start) == [125, 125, 250]
    import_innpar_npy(lay, tmp_path / "w.h5", subject_pattern=r"\d")
    assert list(read_info(tmp_path / "w.h5").subjects) == ["0", "0", "0"]
    for pattern, why in (
        (r"^.+_?(?P<start>\d+)", "has only a 'start' group, none named 'subject'"),
        (r"^(\d)(\d+)_(\w+)$", "has 3 groups, none named 'subject'"),
    ):
        with pytest.raises(DataError, match=re.escape(why)):
            import_innpar_npy(lay, tmp_path / "e.h5", subject_pattern=pattern)
        assert not (tmp_path / "e.h5").exists()


def test_npy_rate_given_is_the_rate_stored(tmp_path: Path) -> None:
    """Guards against ``fs`` being ignored by the innpar-npy importer (stored at 125 Hz)."""
    lay = _layout(tmp_path / "lay", _pairs(["s1_000000"]))
    report = import_innpar_npy(lay, tmp_path / "o.h5", fs=250)
    assert read_info(tmp_path / "o.h5").fs == 250.0 and report.fs_source == "option"
    assert not any("assumed" in w for w in report.warnings)


def test_npy_rejections_are_counted_per_reason_and_signal(tmp_path: Path) -> None:
    """Guards against checking only one signal of a pair for NaN or a constant line (a NaN
    PPG or a flat ABP was imported), against a rejected window counting twice, and against
    ``windows_total`` not counting the windows read."""
    windows = _pairs(["s1_000000", "s1_000625", "s1_001250", "s1_001875", "s1_002500", "s2_0"])
    windows["s1_000625"][0][0, 3] = np.nan  # PPG
    windows["s2_0"][1][0, 9] = np.inf  # ABP
    windows["s1_001250"][1][0, :] = 80.0  # ABP flat
    windows["s1_001875"][0][0, :] = 0.5  # PPG flat
    report = import_innpar_npy(_layout(tmp_path / "lay", windows), tmp_path / "o.h5")
    assert report.windows_rejected == {"constant": 2, "non_finite": 2}
    (src,) = report.sources
    assert (src.id, src.windows_total, src.windows_kept) == ("lay", 6, 2)
    assert list(read_info(tmp_path / "o.h5").window_ids) == ["s1_000000", "s1_002500"]


def test_npy_windows_of_another_length_are_refused(tmp_path: Path) -> None:
    """Guards against dropping the check that every window has the first one's length (a
    125-sample window after 100-sample ones broke the store, or was cut)."""
    windows = _pairs(["a_000000", "b_000000"])
    windows["a_000000"] = (windows["a_000000"][0][:, :100], windows["a_000000"][1][:, :100])
    lay = _layout(tmp_path / "lay", windows)
    with pytest.raises(
        DataError, match=r"b_000000\.npy has 125 samples, but earlier windows have 100"
    ):
        import_innpar_npy(lay, tmp_path / "o.h5")


def test_windows_too_short_for_the_network_are_named_with_their_file(tmp_path: Path) -> None:
    """5-sample windows were refused by the window writer, whose message named neither the
    folder nor a file of the import."""
    windows = {k: (p[:, :5], a[:, :5]) for k, (p, a) in _pairs(["a_000000"]).items()}
    with pytest.raises(DataError, match=r"a_000000\.npy is a window of 5 samples; windows need"):
        import_innpar_npy(_layout(tmp_path / "lay", windows), tmp_path / "o.h5")
    ppg, abp = _signals(4)
    file = _save(
        tmp_path / "bpb", "signal_fold_0.mat", _fold(signal=ppg[:, :5], abp_signal=abp[:, :5])
    )
    with pytest.raises(DataError, match=rf"{re.escape(str(file))}: its windows have 5 samples"):
        import_bp_benchmark(file, tmp_path / "b.h5")
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "b.h5").exists()


def test_folders_larger_than_one_batch_are_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards against the batched reading (1024 windows at a time) losing windows: only the
    first batch read, a window dropped at each batch boundary, or the windows after a batch
    whose windows were all rejected. The batch is made 2 windows so that 5 windows span
    three batches."""
    from innpar_freia.data import innpar_npy

    monkeypatch.setattr(innpar_npy, "NPY_BATCH", 2)
    names = [f"s{i}_000000" for i in range(5)]
    windows = _pairs(names)
    for name in names[:2]:  # the whole first batch is rejected
        windows[name][1][0, 0] = np.nan
    report = import_innpar_npy(_layout(tmp_path / "lay", windows), tmp_path / "o.h5")
    assert report.windows_kept == 3 and report.windows_rejected == {"non_finite": 2}
    assert list(read_info(tmp_path / "o.h5").window_ids) == names[2:]
    _, abp = read_signals(tmp_path / "o.h5")
    np.testing.assert_array_equal(abp, np.concatenate([windows[n][1] for n in names[2:]]))


def test_split_folders_beside_top_level_ppg_and_abp_are_not_left_out(tmp_path: Path) -> None:
    """Bug: a folder with ``ppg/`` and ``abp/`` and also ``train/`` (or ``val/``,
    ``test/``) holding windows imported the top-level windows only: the split folders'
    windows were left out without a word (a subfolder that is not a split is refused for
    that reason)."""
    root = _layout(tmp_path / "lay", _pairs(["s1_000000"]))
    _layout(root / "test", _pairs(["s2_000000"], 1))
    (root / "figures").mkdir()  # no windows: not ours, not in the way
    with pytest.raises(
        DataError, match=r"has ppg/ and abp/ and also subfolders with windows \(test/\)"
    ):
        import_innpar_npy(root, tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()
    (root / "test" / "abp" / "s2_000000.npy").unlink()
    (root / "test" / "abp").rmdir()  # a subfolder with ppg/ alone is left out as well
    with pytest.raises(DataError, match=r"and also subfolders with windows \(test/\)"):
        import_innpar_npy(root, tmp_path / "o.h5")
