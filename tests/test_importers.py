"""Importers: bp-benchmark (.mat v5 and v7.3), innpar-npy, WFDB, CSV and NPZ."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_clean_failure, run_cli, sine_windows, write_matlab_header
from scipy.io import savemat

from innpar_freia.data.importers import import_bp_benchmark, start_from_id
from innpar_freia.data.matfile import load_mat
from innpar_freia.data.store import read_info, read_reference, read_signals
from innpar_freia.errors import DataError

L = 125  # 1-s windows at 125 Hz keep the files tiny


def _windows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return sine_windows(n, L, seed)


def _fold_columns(fold: int, n: int = 6, subjects: int = 2) -> dict[str, np.ndarray]:
    ppg, abp = _windows(n, fold)
    patient = [f"p{fold}_{i % subjects}" for i in range(n)]
    trial = [f"{p}_{625 * i:06d}" for i, p in enumerate(patient)]
    return {
        "patient": np.vstack(patient),
        "trial": np.vstack(trial),
        "signal": ppg,
        "abp_signal": abp,
        "SP": abp.max(axis=1, keepdims=True),
        "DP": abp.min(axis=1, keepdims=True),
        "age": np.full((n, 1), 40.0 + fold),
        "gender": np.vstack(["F" if i % 2 else "M" for i in range(n)]),
    }


def make_bp_benchmark(folder: Path, folds: int = 3, **kw) -> Path:
    """A folder of bp-benchmark fold files written like bp-benchmark does (MAT 5)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(folds):
        savemat(folder / f"signal_fold_{k}.mat", _fold_columns(k, **kw), do_compression=True)
    return folder


def save_v73(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Write ``columns`` the way MATLAB's ``save -v7.3`` does: an HDF5 file with a 512-byte
    MATLAB header, arrays transposed (column-major), char matrices as uint16 code points
    and a ``MATLAB_class`` attribute on every variable."""
    with h5py.File(path, "w", userblock_size=512) as fh:
        for name, value in columns.items():
            arr = np.asarray(value)
            if arr.dtype.kind == "U":
                rows = [s.ljust(arr.dtype.itemsize // 4) for s in arr.reshape(-1)]
                codes = np.array([[ord(c) for c in r] for r in rows], dtype=np.uint16)
                ds = fh.create_dataset(name, data=codes.T)
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                ds.attrs["MATLAB_int_decode"] = np.int32(2)
            else:
                ds = fh.create_dataset(name, data=np.asarray(arr, dtype=np.float64).T)
                ds.attrs["MATLAB_class"] = np.bytes_("double")
    write_matlab_header(path)


# ------------------------------------------------------------------------ bp-benchmark


def test_start_from_id() -> None:
    assert start_from_id("c2015_training_85_001250") == 1250
    assert start_from_id("subject-3") == -1
    assert start_from_id("a_b") == -1


def test_bp_benchmark_v5_keeps_folds_subjects_and_reference(tmp_path: Path) -> None:
    folder = make_bp_benchmark(tmp_path / "bpb")
    out = tmp_path / "out.h5"
    report = import_bp_benchmark(folder, out)
    info = read_info(out)
    assert info.n_windows == 18 and report.windows_kept == 18
    assert info.window_length == L and info.fs == 125.0 and info.source_format == "bp-benchmark"
    assert list(np.unique(info.fold)) == [0, 1, 2]
    # Space padding of MATLAB char matrices is stripped.
    assert set(info.subjects) == {f"p{k}_{i}" for k in range(3) for i in range(2)}
    assert info.window_ids[1] == "p0_1_000625" and info.start[1] == 625
    assert info.reference_fields == ["DP", "SP", "age", "gender"]
    cols = _fold_columns(1)
    ppg, abp = read_signals(out, np.arange(6, 12))
    np.testing.assert_array_equal(ppg, cols["signal"].astype(np.float32))
    np.testing.assert_array_equal(abp, cols["abp_signal"].astype(np.float32))
    np.testing.assert_allclose(read_reference(out, "SP")[6:12], cols["SP"][:, 0])
    assert list(read_reference(out, "gender")[:2]) == [b"M", b"F"]
    prov = info.provenance
    assert prov["source_format"] == "bp-benchmark" and len(prov["inputs"]) == 3
    assert all(len(i["sha256"]) == 64 for i in prov["inputs"])
    assert prov["fs_source"] == "default"
    assert any("assumed 125 Hz" in w for w in report.warnings)


def test_bp_benchmark_v73_matches_v5(tmp_path: Path) -> None:
    v5, v73 = tmp_path / "v5", tmp_path / "v73"
    make_bp_benchmark(v5, folds=2)
    v73.mkdir()
    for k in range(2):
        save_v73(v73 / f"signal_fold_{k}.mat", _fold_columns(k))
    a = load_mat(v5 / "signal_fold_1.mat")
    b = load_mat(v73 / "signal_fold_1.mat")
    assert sorted(a) == sorted(b)
    for key in a:
        if a[key].dtype.kind == "O":
            assert list(a[key]) == list(b[key]), key
        else:
            np.testing.assert_array_equal(a[key], b[key])
    import_bp_benchmark(v5, tmp_path / "a.h5")
    import_bp_benchmark(v73, tmp_path / "b.h5")
    ia, ib = read_info(tmp_path / "a.h5"), read_info(tmp_path / "b.h5")
    assert list(ia.subjects) == list(ib.subjects) and list(ia.window_ids) == list(ib.window_ids)
    np.testing.assert_array_equal(read_signals(tmp_path / "a.h5")[1], read_signals(ib.path)[1])


def test_bp_benchmark_cli_json(tmp_path: Path) -> None:
    import json

    folder = make_bp_benchmark(tmp_path / "bpb", folds=2)
    out = tmp_path / "out.h5"
    result = run_cli("data", "import", "bp-benchmark", folder, "--out", out, "--fs", 125, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["windows"]["kept"] == 12 and report["folds"] == {"0": 6, "1": 6}
    assert report["fs_source"] == "option" and not report["warnings"]


def test_bp_benchmark_warns_about_subjects_in_several_folds(tmp_path: Path) -> None:
    folder = tmp_path / "bpb"
    folder.mkdir()
    for k in range(2):
        cols = _fold_columns(k)
        cols["patient"][0, 0] = "shared"
        savemat(folder / f"signal_fold_{k}.mat", cols)
    report = import_bp_benchmark(folder, tmp_path / "out.h5")
    assert any("1 subject has windows in several folds" in w for w in report.warnings)


def test_bp_benchmark_nan_windows_are_counted_not_silently_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "bpb"
    folder.mkdir()
    cols = _fold_columns(0)
    cols["abp_signal"][2, 10] = np.nan
    savemat(folder / "signal_fold_0.mat", cols)
    report = import_bp_benchmark(folder, tmp_path / "out.h5")
    assert report.windows_kept == 5 and report.windows_rejected == {"non_finite": 1}
    assert "p0_0_001250" not in read_info(tmp_path / "out.h5").window_ids


def test_bp_benchmark_constant_windows_are_rejected_and_counted(tmp_path: Path) -> None:
    """A flat-line PPG (a lost sensor) cannot be z-scored: imported without a word, it
    trained and was scored as any window."""
    folder = tmp_path / "bpb"
    folder.mkdir()
    cols = _fold_columns(0)
    cols["signal"][1] = 0.0
    cols["abp_signal"][3] = 80.0
    savemat(folder / "signal_fold_0.mat", cols)
    report = import_bp_benchmark(folder, tmp_path / "out.h5")
    assert report.windows_kept == 4 and report.windows_rejected == {"constant": 2}
    ppg, abp = read_signals(tmp_path / "out.h5")
    assert np.ptp(ppg, axis=1).min() > 0 and np.ptp(abp, axis=1).min() > 0
    cols["signal"][:] = 1.0
    savemat(folder / "signal_fold_0.mat", cols)
    with pytest.raises(DataError, match=r"every window .* is a constant line"):
        import_bp_benchmark(folder, tmp_path / "out2.h5")


def test_bp_benchmark_refuses_ppgbp(tmp_path: Path) -> None:
    folder = tmp_path / "ppgbp"
    folder.mkdir()
    cols = _fold_columns(0)
    del cols["abp_signal"]
    savemat(folder / "signal_fold_0.mat", cols)
    out = tmp_path / "out.h5"
    result = run_cli("data", "import", "bp-benchmark", folder, "--out", out)
    assert_clean_failure(result, out, "signal_fold_0.mat", "no ABP waveform", "PPGBP")


@pytest.mark.parametrize("version", ["v5", "v73"])
def test_bp_benchmark_truncated_file(tmp_path: Path, version: str) -> None:
    folder = tmp_path / "bpb"
    folder.mkdir()
    good = folder / "signal_fold_0.mat"
    if version == "v5":
        savemat(good, _fold_columns(0), do_compression=True)
    else:
        save_v73(good, _fold_columns(0))
    savemat(folder / "signal_fold_1.mat", _fold_columns(1))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.h5"
    result = run_cli("data", "import", "bp-benchmark", folder, "--out", out)
    assert_clean_failure(result, out, "signal_fold_0.mat", "corrupt")


def test_bp_benchmark_bad_inputs(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", empty, "--out", out),
        out,
        str(empty),
        "no signal_fold_<k>.mat",
    )
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "signal_fold_0.mat").write_bytes(b"not a MATLAB file at all" * 10)
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", garbage, "--out", out),
        out,
        "signal_fold_0.mat",
        "not a readable MATLAB file",
    )
    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    cols = _fold_columns(0)
    cols["abp_signal"] = cols["abp_signal"][:, :-5]
    savemat(mismatch / "signal_fold_0.mat", cols)
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", mismatch, "--out", out),
        out,
        "signal_fold_0.mat",
        "must match",
    )
    nan = tmp_path / "nan"
    nan.mkdir()
    cols = _fold_columns(0)
    cols["signal"][:] = np.nan
    savemat(nan / "signal_fold_0.mat", cols)
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", nan, "--out", out),
        out,
        "signal_fold_0.mat",
        "every window contains NaN",
    )
    # A good second fold must not leave a partial file behind when the first one fails.
    savemat(nan / "signal_fold_1.mat", _fold_columns(1))
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", nan, "--out", out), out, "signal_fold_0.mat"
    )


def test_existing_output_is_not_overwritten(tmp_path: Path) -> None:
    folder = make_bp_benchmark(tmp_path / "bpb", folds=1)
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    result = run_cli("data", "import", "bp-benchmark", folder, "--out", out)
    assert result.exit_code == 1 and "already exists" in result.output
    assert "Traceback" not in result.output
    assert out.read_bytes() == b"precious"
    result = run_cli("data", "import", "bp-benchmark", folder, "--out", out, "--force")
    assert result.exit_code == 0, result.output
    assert read_info(out).n_windows == 6


@pytest.mark.realdata
def test_bp_benchmark_real_folds(real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "c2015.h5"
    report = import_bp_benchmark(real_data / "bp_benchmark", out)
    info = read_info(out)
    assert report.folds == {"0": 1195, "1": 1195, "2": 1195, "3": 1195}
    assert {k: v["subjects"] for k, v in info.summary()["folds"].items()} == {
        "0": 30,
        "1": 30,
        "2": 29,
        "3": 30,
    }
    assert len(np.unique(info.subjects)) == 119 and info.abp_units == "mmHg"
    assert all(s.startswith("c2015_") and s == s.strip() for s in info.subjects)
    assert np.all(info.start >= 0) and np.all(info.start % 625 == 0)
    sbp, dbp = read_reference(out, "SP"), read_reference(out, "DP")
    # The README's QC limits (SBP <= 220, DBP >= 30, SBP - DBP >= 10 mmHg) hold for every
    # window, and SBP/DBP are physiological: hypotensive ICU windows go down to ~55 mmHg.
    assert np.all((sbp > 40) & (sbp <= 220)) and np.all((dbp >= 30) & (dbp < 160))
    assert np.all(sbp - dbp >= 10)
    _, abp = read_signals(out)
    assert 60 < float(abp.mean()) < 120  # mmHg, not normalised
    assert abp.min() >= 20 and abp.max() <= 250
    assert not any("heart rate" in w for w in report.warnings)
    # Read at twice their rate, the windows' people's hearts would beat twice as fast.
    report = import_bp_benchmark(real_data / "bp_benchmark", out, fs=250, overwrite=True)
    assert any(
        w.startswith("the windows' median heart rate is 166 bpm") and "(at 125 Hz, 83 bpm)" in w
        for w in report.warnings
    )


@pytest.mark.parametrize(("fs", "said"), [(62.5, "39 bpm"), (125.0, None), (250.0, "156 bpm")])
def test_windows_read_at_a_rate_off_by_two_are_warned_of(
    tmp_path: Path, fs: float, said: str | None
) -> None:
    """bp-benchmark and innpar-npy files do not store their rate: one given (or assumed)
    twice or half the true rate imported every window, and the network then trained on
    pulses it took for 156 or 39 bpm, without a word."""
    rng = np.random.default_rng(0)
    t = np.arange(625) / 125.0  # 5-s windows of a 78 bpm pulse at 125 Hz
    phase = rng.uniform(0, 2 * np.pi, (8, 1))
    abp = 90 + 25 * np.sin(2 * np.pi * 1.3 * t + phase) + rng.normal(0, 1, (8, 625))
    ppg = np.sin(2 * np.pi * 1.3 * t + phase - 0.5)
    folder = tmp_path / "bpb"
    folder.mkdir()
    patient = np.vstack([f"p{i % 2}" for i in range(8)])
    savemat(folder / "signal_fold_0.mat", {"patient": patient, "signal": ppg, "abp_signal": abp})
    report = import_bp_benchmark(folder, tmp_path / "out.h5", fs=fs)
    warned = [w for w in report.warnings if "heart rate" in w]
    if said is None:
        assert not warned
        return
    other = {62.5: "at 125 Hz, 78 bpm", 250.0: "at 125 Hz, 78 bpm"}[fs]
    assert warned == [
        f"the windows' median heart rate is {said}, outside the 50-150 bpm of a group of "
        f"people: the sampling rate, {fs:g} Hz given with fs, may be wrong ({other}); pass "
        "the windows' rate with fs"
    ]


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    import io

    from innpar_freia.cli.data import _BarProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    folder = make_bp_benchmark(tmp_path / "bpb", folds=2)
    term = Terminal()
    import_bp_benchmark(folder, tmp_path / "a.h5", progress=_BarProgress(stream=term))
    drawn = term.getvalue()
    assert "bp-benchmark folds [" in drawn and "2/2 signal_fold_1.mat" in drawn
    assert drawn.endswith("\r")  # the bar is cleared at the end
    pipe = io.StringIO()
    import_bp_benchmark(folder, tmp_path / "b.h5", progress=_BarProgress(stream=pipe))
    assert pipe.getvalue() == ""
    result = run_cli("data", "import", "bp-benchmark", folder, "--out", tmp_path / "c.h5")
    assert result.exit_code == 0 and "\r" not in result.output


def test_cell_arrays_of_text_in_v5_and_v73(tmp_path: Path) -> None:
    names = ["p1", "patient-22", "p1"]
    v5 = tmp_path / "cell5.mat"
    cell = np.empty((3, 1), dtype=object)
    for i, name in enumerate(names):
        cell[i, 0] = name
    savemat(v5, {"patient": cell, "age": np.array([[30.0], [41.0], [30.0]])})
    assert list(load_mat(v5)["patient"]) == names
    v73 = tmp_path / "cell73.mat"
    with h5py.File(v73, "w", userblock_size=512) as fh:
        refs = fh.create_group("#refs#")
        targets = []
        for i, name in enumerate(names):
            ds = refs.create_dataset(f"s{i}", data=np.array([[ord(c)] for c in name], np.uint16))
            ds.attrs["MATLAB_class"] = np.bytes_("char")
            targets.append(ds.ref)
        cells = fh.create_dataset("patient", data=np.array([targets]), dtype=h5py.ref_dtype)
        cells.attrs["MATLAB_class"] = np.bytes_("cell")
    write_matlab_header(v73)
    loaded = load_mat(v73)
    assert list(loaded["patient"]) == names and "#refs#" not in loaded


def test_corrupt_window_file_for_split_and_check(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 50)
    for command in ("split", "check"):
        result = run_cli("data", command, bad)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"{bad} is not a readable HDF5 file" in result.output


def test_force_never_replaces_an_input_or_a_special_file(tmp_path: Path) -> None:
    folder = make_bp_benchmark(tmp_path / "bpb", folds=2)
    source = folder / "signal_fold_0.mat"
    before = source.read_bytes()
    result = run_cli("data", "import", "bp-benchmark", folder, "--out", source, "--force")
    assert result.exit_code == 1 and "is the input" in result.output, result.output
    assert source.read_bytes() == before
    assert not list(folder.glob(".*"))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for cmd in (
        ("data", "import", "bp-benchmark", folder),
        ("data", "synth", "--subjects", 3, "--minutes", 0.2),
    ):
        result = run_cli(*cmd, "--out", fifo, "--force")
        assert result.exit_code == 1 and "is not a regular file" in result.output, result.output
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        # A name ending in a slash is a folder: no file named after it.
        result = run_cli(*cmd, "--out", f"{tmp_path / 'newdir'}/")
        assert result.exit_code == 2 and "names a folder" in result.output, result.output
        assert not (tmp_path / "newdir").exists()
        # An HDF5 file named like another format would be taken for one.
        result = run_cli(*cmd, "--out", tmp_path / "windows.csv")
        assert result.exit_code == 1, result.output
        assert "a window file is HDF5; name it with .h5, not .csv" in result.output
        assert not list(tmp_path.glob("*windows*")) and not list(tmp_path.glob(".*"))


def test_bp_benchmark_damaged_headers_and_odd_layouts(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    cut = make_bp_benchmark(tmp_path / "cut", folds=1)
    data = (cut / "signal_fold_0.mat").read_bytes()
    (cut / "signal_fold_0.mat").write_bytes(data[:100])  # within the 128-byte header
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", cut, "--out", out),
        out,
        "signal_fold_0.mat is not a readable MATLAB file",
    )
    big = tmp_path / "big"
    big.mkdir()
    savemat(big / "signal_fold_40000.mat", _fold_columns(0))
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", big, "--out", out),
        out,
        "fold numbers go up to 32767",
        "signal_fold_40000.mat",
    )
    empty = tmp_path / "zero"
    empty.mkdir()
    cols = _fold_columns(0)
    cols["signal"], cols["abp_signal"] = np.zeros((6, 0)), np.zeros((6, 0))
    savemat(empty / "signal_fold_0.mat", cols)
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", empty, "--out", out),
        out,
        "signal_fold_0.mat",
        "no samples",
    )
    folder = tmp_path / "dir"
    (folder / "signal_fold_0.mat").mkdir(parents=True)
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", folder, "--out", out),
        out,
        "signal_fold_0.mat is a folder, not a MATLAB file",
    )


def test_split_says_when_it_replaces_the_files_folds(tmp_path: Path) -> None:
    folder = make_bp_benchmark(tmp_path / "bpb", folds=3)
    out = tmp_path / "out.h5"
    assert run_cli("data", "import", "bp-benchmark", folder, "--out", out).exit_code == 0
    kept = run_cli("data", "split", out, "--keep-folds")
    assert kept.exit_code == 0 and "note:" not in kept.output
    replaced = run_cli("data", "split", out, "--folds", 3, "--seed", 1)
    assert replaced.exit_code == 0
    assert "note: replaced the folds" in replaced.output and "--keep-folds" in replaced.output
    again = run_cli("data", "split", out, "--folds", 3, "--seed", 1)  # the same folds again
    assert again.exit_code == 0 and "note:" not in again.output


def test_bp_benchmark_without_trial_column_has_unknown_starts(tmp_path: Path) -> None:
    """Generated ids end in the row number, which is not a start sample."""
    folder = tmp_path / "bpb"
    folder.mkdir()
    for k in range(2):
        cols = _fold_columns(k)
        del cols["trial"]
        savemat(folder / f"signal_fold_{k}.mat", cols)
    out = tmp_path / "out.h5"
    report = import_bp_benchmark(folder, out)
    assert any("no 'trial' column" in w for w in report.warnings)
    info = read_info(out)
    assert info.window_ids[1] == "p0_1_000001" and set(info.start) == {-1}


def test_a_threshold_that_is_not_a_number_is_refused_not_passed_as_clean(tmp_path: Path) -> None:
    """NaN passed click's range check and made every comparison False: 'no leakage', exit 0,
    on a file that leaks."""
    folder = make_bp_benchmark(tmp_path / "bpb")
    out = tmp_path / "out.h5"
    import_bp_benchmark(folder, out)
    with h5py.File(out, "r+") as fh:  # a window of fold 0 copied into fold 1: a leak
        fh["ppg"][6], fh["abp"][6] = fh["ppg"][0], fh["abp"][0]
    assert run_cli("data", "check", out).exit_code == 3
    result = run_cli("data", "check", out, "--threshold", "nan")
    assert result.exit_code == 2 and "'nan' is not a finite number" in result.output
    assert run_cli("data", "check", out, "--threshold", "inf").exit_code == 2


@pytest.mark.parametrize(
    ("patient", "message"),
    [
        (np.arange(12.0).reshape(6, 2), "must hold one value per window, but has shape (6, 2)"),
        (np.array([[1.0], [2.0], [np.nan], [1], [2], [1]]), "has 1 missing (NaN or inf) values"),
    ],
)
def test_numeric_subject_ids_that_are_not_one_per_window_are_refused(
    tmp_path: Path, patient: np.ndarray, message: str
) -> None:
    """A (N, 2) matrix ended in a TypeError traceback; NaN ids made every such window one
    subject called "nan"."""
    folder = tmp_path / "bp"
    folder.mkdir()
    savemat(folder / "signal_fold_0.mat", {**_fold_columns(0), "patient": patient})
    out = tmp_path / "o.h5"
    result = run_cli("data", "import", "bp-benchmark", folder, "--out", out)
    assert_clean_failure(result, out, message)


def test_bp_benchmark_signals_saved_transposed_are_said_to_be(tmp_path: Path) -> None:
    """``signal``/``abp_signal`` saved as (samples, windows) were refused as "column
    'patient' has 6 values, expected 125", blaming the column that was right."""
    folder = tmp_path / "bpb"
    folder.mkdir()
    cols = _fold_columns(0)
    cols["signal"], cols["abp_signal"] = cols["signal"].T, cols["abp_signal"].T
    savemat(folder / "signal_fold_0.mat", cols)
    out = tmp_path / "o.h5"
    assert_clean_failure(
        run_cli("data", "import", "bp-benchmark", folder, "--out", out),
        out,
        "'signal' and 'abp_signal' look transposed: their shape is (125, 6), but 'patient' "
        "has 6 values, one per window, so the windows are their columns",
    )


def test_windows_cut_from_recordings_name_the_recordings_rate() -> None:
    """Windows cut from recordings are at the rate the import resampled them to: it is
    the recordings' rate (their files' or --input-fs) that a user must check."""
    from innpar_freia.data.import_report import heart_rate_warning

    t = np.arange(625) / 125.0
    slow = 90 + 25 * np.sin(2 * np.pi * 0.7 * t + np.arange(6)[:, None])  # 42 bpm
    assert heart_rate_warning(slow, 125.0, None) == (
        "the windows' median heart rate is 42 bpm, outside the 50-150 bpm of a group of "
        "people: the recordings' sampling rate may be wrong (at twice theirs, 84 bpm); check "
        "it (their files' own, or input_fs)"
    )
    assert heart_rate_warning(slow[:, :2], 125.0, None) is None  # no two peaks: no rate
