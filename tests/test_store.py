"""The canonical HDF5 window file: schema, validation, atomic writes, lazy dataset."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import assert_clean_failure, run_cli
from torch.utils.data import DataLoader

from innpar_freia.data.dataset import (
    Normalisation,
    WindowDataset,
    fit_normalisation,
    load_split_arrays,
    plan_splits,
)
from innpar_freia.data.leakage import check_leakage
from innpar_freia.data.store import WindowWriter, read_info, read_signals, write_assignments
from innpar_freia.errors import DataError


def _write(path: Path, n: int = 6, length: int = 16, **kw) -> Path:
    rng = np.random.default_rng(0)
    with WindowWriter(path, fs=50.0, window_length=length, source_format="test", **kw) as w:
        w.append(
            rng.normal(size=(n, length)),
            80 + 20 * rng.random((n, length)),
            subject=[f"s{i % 3}" for i in range(n)],
            window_id=[f"w{i}" for i in range(n)],
            split=["train", "train", "val", "train", "test", "val"][:n],
            fold=[i % 3 for i in range(n)],
            start=np.arange(n) * length,
            reference={"sbp": np.arange(n, dtype=float), "sex": ["f", "m"] * (n // 2)},
        )
    return path


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.h5", provenance={"source": "unit"}, ppg_units="NU")
    info = read_info(path)
    assert (info.fs, info.window_length, info.n_windows) == (50.0, 16, 6)
    assert info.ppg_units == "NU" and info.abp_units == "mmHg"
    assert info.provenance == {"source": "unit"}
    assert list(info.subjects) == ["s0", "s1", "s2", "s0", "s1", "s2"]
    assert list(info.split) == ["train", "train", "val", "train", "test", "val"]
    assert list(info.fold) == [0, 1, 2, 0, 1, 2]
    assert info.reference_fields == ["sbp", "sex"]
    ppg, _abp = read_signals(path, np.array([4, 1]))
    all_ppg, _ = read_signals(path)
    assert np.array_equal(ppg, all_ppg[[4, 1]])
    summary = info.summary()
    assert summary["splits"] == {"train": 3, "val": 2, "test": 1, "unassigned": 0}
    assert summary["folds"]["0"] == {"windows": 2, "subjects": 1}


def test_a_file_of_another_schema_fails_clearly(tmp_path: Path) -> None:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as fh:
        fh["x"] = np.zeros(3)
    with pytest.raises(DataError, match="is not an innpar-freia window file"):
        read_info(other)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(DataError, match="is not a readable HDF5 file"):
        read_info(text)
    with pytest.raises(DataError, match="data file not found"):
        read_info(tmp_path / "nope.h5")


def test_a_file_another_program_is_writing_is_named_as_busy_not_corrupt(tmp_path: Path):
    path = _write(tmp_path / "a.h5")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import h5py, sys; f = h5py.File({str(path)!r}, 'r+'); "
         "print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        result = run_cli("data", "info", path)
    finally:
        holder.communicate("")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is open for writing in another program" in result.output, result.output
    assert "not a readable HDF5 file" not in result.output


def test_nothing_half_written(tmp_path: Path) -> None:
    path = tmp_path / "b.h5"
    with (
        pytest.raises(DataError, match="NaN"),
        WindowWriter(path, fs=50.0, window_length=8, source_format="t") as w,
    ):
        w.append(np.ones((2, 8)), np.ones((2, 8)), subject="a", window_id=["1", "2"])
        w.append(np.full((1, 8), np.nan), np.ones((1, 8)), subject="a", window_id="3")
    assert list(tmp_path.iterdir()) == []
    _write(path)
    with pytest.raises(DataError, match="already exists"):
        _write(path)


def test_split_plans(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.h5")
    with h5py.File(path, "r+") as fh:
        # Each window its own subject: the split column puts s1's two windows in train and
        # test, which a plan refuses (test_a_plan_whose_parts_share_a_subject_is_refused).
        fh["subject"][:] = [f"s{i}" for i in range(6)]
    info = read_info(path)
    column = plan_splits(info)
    assert column.scheme == "split-column"
    assert list(column.train) == [0, 1, 3] and list(column.test) == [4]
    nested = plan_splits(info, test_fold=1)
    assert (nested.test_fold, nested.val_fold) == (1, 2)
    assert list(nested.test) == [1, 4] and list(nested.val) == [2, 5]
    assert list(nested.train) == [0, 3]
    with pytest.raises(DataError, match="test fold 7 is not in"):
        plan_splits(info, test_fold=7)
    write_assignments(info.path, split=np.full(6, ""), fold=None)
    # no split column any more: the nested scheme with the last fold as test
    assert plan_splits(read_info(info.path)).test_fold == 2


def test_normalisation_uses_training_windows_only(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.h5")
    _, abp = read_signals(path)
    train = np.array([0, 1, 3])
    norm = fit_normalisation(path, train, "minmax")
    assert norm.abp_offset == pytest.approx(abp[train].min())
    assert norm.abp_scale == pytest.approx(abp[train].max() - abp[train].min())
    z = fit_normalisation(path, train, "zscore")
    assert z.abp_offset == pytest.approx(abp[train].mean(), rel=1e-6)
    assert z.abp_scale == pytest.approx(abp[train].std(), rel=1e-5)
    x = np.array([90.0, 100.0])
    assert np.allclose(norm.denormalise_abp(norm.normalise_abp(x)), x)


def test_dataset_reads_lazily_in_workers(tmp_path: Path) -> None:
    path = _write(tmp_path / "e.h5")
    norm = Normalisation("minmax", 80.0, 20.0)
    ds = WindowDataset(path, np.array([5, 0, 3]), norm)
    assert ds._fh is None  # not opened until used
    ppg, abp, idx = ds[0]
    assert int(idx) == 5 and ppg.shape == (16,)
    assert abs(float(ppg.mean())) < 1e-5 and abs(float(ppg.std(unbiased=False)) - 1) < 1e-4
    _raw_ppg, raw_abp = read_signals(path, np.array([5]))
    assert torch.allclose(abp, torch.tensor(norm.normalise_abp(raw_abp[0]), dtype=torch.float32))
    loader = DataLoader(ds, batch_size=2, num_workers=2)
    got = torch.cat([b[2] for b in loader]).tolist()
    assert got == [5, 0, 3]


def _corrupt_chunk(path: Path, name: str) -> None:
    """Overwrite the middle of the first stored chunk of ``name``: the header stays valid."""
    with h5py.File(path, "r") as fh:
        chunk = fh[name].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    mid = chunk.byte_offset + chunk.size // 2
    data[mid - 8 : mid + 8] = b"\xff" * 16
    path.write_bytes(bytes(data))


def test_corrupt_chunks_name_the_file_and_the_dataset(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.h5")
    _corrupt_chunk(path, "abp")
    assert read_info(path).n_windows == 6  # the metadata is intact
    message = rf"{path}: cannot read dataset 'abp' \(the file is corrupt or truncated: "
    for read in (
        lambda: read_signals(path),
        lambda: read_signals(path, np.array([1])),
        lambda: load_split_arrays(path, np.array([0, 2])),
        lambda: fit_normalisation(path, np.array([0, 1]), "minmax"),
        lambda: WindowDataset(path, np.array([3]), Normalisation("minmax", 80.0, 20.0))[0],
        lambda: check_leakage(path),
    ):
        with pytest.raises(DataError, match=message):
            read()
    result = run_cli("data", "check", path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"Error: {path}: cannot read dataset 'abp' (the file is corrupt" in result.output


def test_damage_met_in_a_dataloader_worker_keeps_its_message(tmp_path: Path) -> None:
    """torch re-raises a worker's DataError with the worker's traceback as its text: the
    message a user sees must be the one raised in the worker, nothing else."""
    norm = Normalisation("minmax", 80.0, 20.0)
    corrupt = _write(tmp_path / "c.h5")
    _corrupt_chunk(corrupt, "abp")
    nan = _with_nan(_write(tmp_path / "n.h5"), "ppg", [4, 2])
    for path in (corrupt, nan):
        with pytest.raises(DataError) as in_process:
            WindowDataset(path, np.array([0, 4]), norm)[1]
        loader = DataLoader(
            WindowDataset(path, np.array([0, 4]), norm), batch_size=2, num_workers=1
        )
        with pytest.raises(DataError) as in_worker:
            next(iter(loader))
        assert str(in_worker.value) == str(in_process.value)
        assert str(path) in str(in_worker.value)


def test_worker_text_unwrapping_takes_the_raised_exception_only() -> None:
    """A chained cause comes first in the worker's text, and a message may span lines."""
    text = (
        "Caught DataError in DataLoader worker process 3.\n"
        "Original Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "OSError: Can't read data\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        '  File "y.py", line 2, in g\n'
        "innpar_freia.errors.DataError: f.h5: cannot read\nsecond line\n"
    )
    assert str(DataError(text)) == "f.h5: cannot read\nsecond line"
    # Anything else, including text that merely mentions a worker, is kept as it is.
    for kept in ("f.h5: Caught DataError in DataLoader worker process 0.", "plain"):
        assert str(DataError(kept)) == kept
    assert DataError("a", 2).args == ("a", 2)


def _with_nan(path: Path, name: str, rows: list[int]) -> Path:
    """Put NaN into ``rows`` of ``name`` behind the writer's back (a damaged file)."""
    with h5py.File(path, "r+") as fh:
        for row in rows:
            fh[name][row, 3:5] = np.nan
    return path


def test_windows_with_nan_are_refused_where_they_are_read(tmp_path: Path) -> None:
    path = _with_nan(_write(tmp_path / "n.h5"), "ppg", [4, 2])
    message = (
        rf"{path}: 2 windows of 'ppg' hold NaN or inf \(first: window 2, id 'w2'\); "
        "re-import the data or drop those windows"
    )
    norm = Normalisation("minmax", 80.0, 20.0)
    for read in (
        lambda: read_signals(path),
        lambda: load_split_arrays(path, np.array([0, 4])),
        lambda: WindowDataset(path, np.array([0, 4]), norm)[1],
        lambda: check_leakage(path),
    ):
        with pytest.raises(DataError, match=message):
            read()
    # Windows without NaN are read as before: the check is on what is read.
    ppg, _ = load_split_arrays(path, np.array([0, 1, 3]))
    assert np.isfinite(ppg).all()
    ds = WindowDataset(path, np.array([0, 4]), norm)
    with pytest.raises(DataError, match="2 windows of 'ppg'"):
        DataLoader(ds, batch_size=2).__iter__().__next__()
    # Training's ABP normalisation says why rather than "training ABP is constant (nan)".
    abp_path = _with_nan(_write(tmp_path / "a.h5"), "abp", [1])
    with pytest.raises(DataError, match=r"1 window of 'abp' holds NaN or inf \(first: window 1"):
        fit_normalisation(abp_path, np.array([0, 1, 3]), "minmax")


def test_commands_refuse_a_window_file_with_nan(synth_file: Path, tiny_run: Path, tmp_path):
    """train, eval, check and reconstruct name the file, not NaN metrics or a diverged loss."""
    path = tmp_path / "nan.h5"
    path.write_bytes(synth_file.read_bytes())
    with h5py.File(path, "r+") as fh:
        fh["ppg"][:, 100:110] = np.nan
        n = fh["ppg"].shape[0]
    message = f"{path}: {n} windows of 'ppg' hold NaN or inf (first: window 0, id "
    ckpt = tiny_run / "checkpoints" / "best.pt"
    run_dir, pred, nothing = tmp_path / "run", tmp_path / "p.h5", tmp_path / "nothing"
    for args, out in (
        (("train", "--data", path, "--preset", "tiny", "--out", run_dir), run_dir),
        (("eval", "--checkpoint", ckpt, "--data", path), nothing),
        (("check", "--checkpoint", ckpt, "--data", path), nothing),
        (("data", "check", path), nothing),
        (("reconstruct", "--checkpoint", ckpt, path, "--out", pred), pred),
    ):
        result = run_cli(*args)
        assert_clean_failure(result, out, message)


def _damage_attr(fh: h5py.File, name: str, value: object) -> None:
    if value is None:
        del fh.attrs[name]
    else:
        fh.attrs[name] = value


def _as_group(fh: h5py.File, name: str) -> None:
    del fh[name]
    fh.create_group(name)


def _as_text(fh: h5py.File, name: str) -> None:
    n = fh[name].shape[0]
    del fh[name]
    fh.create_dataset(name, data=np.array(["x"] * n, dtype=object), dtype=h5py.string_dtype())


def _reference_as_dataset(fh: h5py.File) -> None:
    del fh["reference"]
    fh["reference"] = np.arange(3)


def _subject_not_utf8(fh: h5py.File) -> None:
    n = fh["subject"].shape[0]
    del fh["subject"]
    fh.create_dataset("subject", data=np.array([b"\xff\xfe"] * n, dtype=object),
                      dtype=h5py.string_dtype("utf-8"))  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda fh: _damage_attr(fh, "fs", None), "has no 'fs' attribute"),
        (lambda fh: _damage_attr(fh, "n_windows", None), "has no 'n_windows' attribute"),
        (lambda fh: _damage_attr(fh, "fs", "abc"), "attribute 'fs' is 'abc', not a number"),
        (lambda fh: _damage_attr(fh, "window_length", 2.5), "'window_length' is 2.5, not a whole"),
        (lambda fh: _damage_attr(fh, "provenance", "{oops"), "provenance attribute is not valid"),
        (
            lambda fh: _damage_attr(fh, "provenance", "[1, 2]"),
            "provenance attribute is an array in JSON",
        ),
        (lambda fh: _damage_attr(fh, "provenance", "null"), "is null in JSON, expected an object"),
        (lambda fh: _as_group(fh, "ppg"), "ppg must be dataset(s), not group(s)"),
        (lambda fh: _as_text(fh, "fold"), "dataset 'fold' holds object, expected integers"),
        (_reference_as_dataset, "'reference' must be a group of per-window fields"),
        (_subject_not_utf8, "dataset 'subject' holds text that is not UTF-8"),
    ],
)
def test_damaged_metadata_is_one_message_for_every_command(tmp_path: Path, damage, message):
    path = _write(tmp_path / "d.h5")
    with h5py.File(path, "r+") as fh:
        damage(fh)
    for command in (("info",), ("check",), ("split", "--folds", 3)):
        result = run_cli("data", *command, path)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert message in result.output, (command, result.output)


def test_writer_refuses_folds_the_file_cannot_hold(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    with pytest.raises(DataError, match="fold number 40000 is out of range"):
        with WindowWriter(path, fs=50.0, window_length=8, source_format="test") as w:
            w.append(np.zeros((1, 8)), np.zeros((1, 8)), subject="a", window_id="a", fold=40000)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_split_values_other_than_train_val_test_are_refused_until_split_again(tmp_path: Path):
    """A hand-written "validation" would leave those windows out of training and evaluation
    without a word (they counted as unassigned); `data split` replaces the column."""
    path = _write(tmp_path / "odd.h5")
    with h5py.File(path, "r+") as fh:
        fh["split"][2] = "validation"
        fh["split"][5] = "validation"
        fh["split"][0] = "Train"
    message = "the split column holds 'Train' (1 window), 'validation' (2 windows)"
    with pytest.raises(DataError, match=re.escape(message)):
        read_info(path)
    run_dir = tmp_path / "run"
    for args, out in (
        (("data", "check", path), None),
        (("train", "--data", path, "--preset", "tiny", "--out", run_dir), run_dir),
    ):
        result = run_cli(*args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert message in result.output and f"innpar data split {path}" in result.output
        assert out is None or not out.exists()
    # `data info` shows such a file (it is how a user finds out what it holds), with a
    # warning, and counts the odd values apart from the unassigned windows.
    result = run_cli("data", "info", path)
    assert result.exit_code == 0, result.output
    assert "'Train' (1), 'validation' (2) windows" in result.output
    assert f"innpar data split {path}" in result.output
    assert "splits: train 2, val 0, test 1, unassigned 0, invalid 3" in result.output
    summary = json.loads(run_cli("data", "info", path, "--json").stdout)
    assert summary["splits_invalid"] == {"Train": 1, "validation": 2}
    assert summary["splits"]["unassigned"] == 0
    result = run_cli("data", "split", path, "--folds", 3)
    assert result.exit_code == 0, result.output
    assert set(read_info(path).split) == {"train", "val", "test"}


def test_a_writer_interrupted_while_it_creates_the_file_leaves_nothing(tmp_path, monkeypatch):
    """SIGTERM (turned into SystemExit) or Ctrl-C can arrive while the new file's layout is
    being written, before the caller's ``with`` block has begun: the hidden file goes too
    (a CI run once found it left behind)."""

    def interrupted(self, *args):
        raise SystemExit(143)

    monkeypatch.setattr(WindowWriter, "_layout", interrupted)
    with pytest.raises(SystemExit):
        WindowWriter(tmp_path / "x.h5", fs=50.0, window_length=8, source_format="test")
    assert list(tmp_path.iterdir()) == []


def test_a_second_writer_to_the_same_output_leaves_the_first_one_s_file_alone(tmp_path):
    """Two writers of one process to one output share a temporary name: the second fails
    to open it, and must not remove the first one's file while that one is writing."""
    out = tmp_path / "x.h5"
    with WindowWriter(out, fs=50.0, window_length=8, source_format="test") as first:
        with pytest.raises(DataError, match=f"cannot write {re.escape(str(out))}"):
            WindowWriter(out, fs=50.0, window_length=8, source_format="test")
        first.append(np.zeros((2, 8)), np.full((2, 8), 80.0), subject="a", window_id=["a", "b"])
    assert read_info(out).n_windows == 2


def test_a_writer_whose_final_rename_fails_leaves_no_hidden_file(tmp_path, monkeypatch):
    """The last step (flush and rename into place) can fail: an immutable or full target.
    ``data synth --force`` left its hidden temporary file behind then; the importers, which
    wrap the close themselves, did not."""
    import innpar_freia.data.store as store

    def refused(src, dst):
        raise PermissionError(1, "Operation not permitted", str(dst))

    monkeypatch.setattr(store.os, "replace", refused)
    out = tmp_path / "x.h5"
    with pytest.raises(PermissionError):
        with WindowWriter(out, fs=50.0, window_length=8, source_format="test") as w:
            w.append(np.zeros((2, 8)), np.full((2, 8), 80.0), subject="a", window_id=["a", "b"])
    assert list(tmp_path.iterdir()) == []
    from innpar_freia.data.synthetic import synthesize_dataset

    with pytest.raises(PermissionError):
        synthesize_dataset(out, subjects=2, minutes=0.2, seed=1)
    assert list(tmp_path.iterdir()) == []


def test_read_signals_names_indices_that_are_not_windows(tmp_path):
    """A float index was truncated (0.5 read window 0), a mask read windows 0 and 1, and an
    index past the end gave h5py's own message."""
    path = tmp_path / "x.h5"
    with WindowWriter(path, fs=50.0, window_length=8, source_format="test") as w:
        w.append(np.zeros((3, 8)), np.full((3, 8), 80.0), subject="a", window_id=["a", "b", "c"])
    for bad in (np.array([0.5]), np.array([True, False, True])):
        with pytest.raises(TypeError, match="indices must be window numbers"):
            read_signals(path, bad)
    for bad in ([3], [-1]):
        with pytest.raises(IndexError, match=r"window -?\d is not in .*: it has windows 0..2"):
            read_signals(path, bad)
    assert read_signals(path, [2, 0])[1].shape == (2, 8) and read_signals(path, [])[0].shape == (
        0,
        8,
    )


def test_storable_takes_half_precision_without_numpy_s_warning() -> None:
    """float16 windows (ckpt.predict_abp(x.astype(np.float16))) gave numpy's "overflow
    encountered in cast" warning: float32's largest value was cast to float16 to compare.
    float16 and float32 hold nothing beyond float32's range; wider types are compared."""
    import warnings

    import numpy as np

    from innpar_freia.data.store import storable

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert storable(np.ones(4, np.float16))
        assert not storable(np.array([1.0, np.inf], np.float16))
        assert storable(np.array([3e38], np.float32))
        assert not storable(np.array([1e39]))  # float64 beyond float32's range
        assert storable(np.array([3], np.int64))
        assert storable(np.array([[1, 1e39], [1, 2]]), axis=1).tolist() == [False, True]


def _fold_of_window_0(value: int):
    def damage(fh: h5py.File) -> None:
        fh["fold"][0] = value

    return damage


def _no_subject_for_window_0(fh: h5py.File) -> None:
    fh["subject"][0] = ""


@pytest.mark.parametrize(
    ("damage", "message", "shown"),
    [
        (
            _fold_of_window_0(-5),
            "has fold -5, but folds are 0 to 32767 (-1: no fold); assign folds again with "
            "'innpar data split {path} --folds K'",
            "  invalid folds: -5 (1 window)\n",
        ),
        (
            _no_subject_for_window_0,
            "has an empty subject id, but every window must name its subject; import the data "
            "again, or write their subjects into the file",
            "warning: 1 window has an empty subject id",
        ),
    ],
)
def test_a_fold_number_outside_the_schema_or_an_empty_subject_is_refused_by_every_command(
    synth_file: Path, tiny_run: Path, tmp_path: Path, damage, message: str, shown: str
) -> None:
    """A fold of -5 made training and evaluation say the file "has no cross-validation
    folds" (while `data info` listed its folds, leaving the window out of them without a
    word), and `data split --keep-folds` that it "has no folds on every window"; an empty
    subject id was taken for a subject by split, check and train. The writer refuses both;
    reading refuses them too, naming the window, and `data info` shows them."""
    path = tmp_path / "bad.h5"
    path.write_bytes(synth_file.read_bytes())
    with h5py.File(path, "r+") as fh:
        damage(fh)
        first_id = fh["window_id"][0].decode()
    message = f"{path}: window 0 (id {first_id!r}) " + message.format(path=path)
    with pytest.raises(DataError) as err:
        read_info(path)
    assert str(err.value) == message
    before = path.read_bytes()
    ckpt = tiny_run / "checkpoints" / "best.pt"
    run_dir, pred, nothing = tmp_path / "run", tmp_path / "p.h5", tmp_path / "nothing"
    for args, out in (
        (
            ("train", "--data", path, "--preset", "tiny", "--test-fold", 0, "--out", run_dir),
            run_dir,
        ),
        (("train", "--data", path, "--preset", "tiny", "--out", run_dir), run_dir),
        (("eval", "--checkpoint", ckpt, "--data", path, "--test-fold", 0), nothing),
        (("data", "check", path), nothing),
        (("data", "split", path, "--keep-folds", "--test-fold", 0), nothing),
        (("reconstruct", "--checkpoint", ckpt, path, "--out", pred), pred),
    ):
        assert_clean_failure(run_cli(*args), out, message)
    if damage is _no_subject_for_window_0:  # new folds would take "" for a subject
        assert_clean_failure(run_cli("data", "split", path, "--folds", 3), nothing, message)
    assert path.read_bytes() == before  # nothing written on refusal
    result = run_cli("data", "info", path)
    assert result.exit_code == 0 and shown in result.output, result.output
    summary = json.loads(run_cli("data", "info", path, "--json").stdout)
    # The window counts in no fold and as no subject.
    in_folds = summary["n_windows"] - sum(summary["folds_invalid"].values())
    assert sum(f["windows"] for f in summary["folds"].values()) == in_folds
    assert summary["subjects_empty"] == (damage is _no_subject_for_window_0)
    assert summary["n_subjects"] == len(set(read_info(synth_file).subjects))


def test_new_folds_replace_fold_numbers_outside_the_schema(synth_file: Path, tmp_path: Path):
    """`data split --folds K` is the way out the refusal names: it replaces the column (an
    int32 one too, which can hold numbers beyond int16's) without refusing it first."""
    path = tmp_path / "wide.h5"
    path.write_bytes(synth_file.read_bytes())
    with h5py.File(path, "r+") as fh:
        fold = fh["fold"][:].astype(np.int32)
        fold[[3, 5]] = [40000, -2]
        del fh["fold"]
        fh.create_dataset("fold", data=fold)
    with pytest.raises(DataError, match=r"window 3 \(id '\w+'\) has fold 40000, window 5 "):
        read_info(path)
    summary = json.loads(run_cli("data", "info", path, "--json").stdout)
    assert summary["folds_invalid"] == {"-2": 1, "40000": 1}
    assert run_cli("data", "split", path, "--folds", 3).exit_code == 0
    assert set(read_info(path).fold) == {0, 1, 2}


def test_no_fold_on_some_windows_keeps_its_message(synth_file: Path, tmp_path: Path) -> None:
    """-1 is the schema's "no fold": a file with it on one window has no folds to test on,
    which is what training says (not that -1 is out of range)."""
    path = tmp_path / "m1.h5"
    path.write_bytes(synth_file.read_bytes())
    with h5py.File(path, "r+") as fh:
        fh["fold"][0] = -1
    run_dir = tmp_path / "run"
    result = run_cli(
        "train", "--data", path, "--preset", "tiny", "--test-fold", 0, "--out", run_dir
    )
    assert_clean_failure(result, run_dir, f"{path} has no cross-validation folds")
    assert "invalid folds" not in run_cli("data", "info", path).output
