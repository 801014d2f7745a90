"""The canonical HDF5 window file: schema, validation, atomic writes, lazy dataset."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from innpar_freia.data.dataset import (
    Normalisation,
    WindowDataset,
    fit_normalisation,
    plan_splits,
)
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


def test_nothing_half_written(tmp_path: Path) -> None:
    path = tmp_path / "b.h5"
    with (
        pytest.raises(DataError, match="NaN"),
        WindowWriter(path, fs=50.0, window_length=4, source_format="t") as w,
    ):
        w.append(np.ones((2, 4)), np.ones((2, 4)), subject="a", window_id=["1", "2"])
        w.append(np.full((1, 4), np.nan), np.ones((1, 4)), subject="a", window_id="3")
    assert list(tmp_path.iterdir()) == []
    _write(path)
    with pytest.raises(DataError, match="already exists"):
        _write(path)


def test_split_plans(tmp_path: Path) -> None:
    info = read_info(_write(tmp_path / "c.h5"))
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
