"""Splits, normalisation and a lazy torch Dataset over the HDF5 window file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from innpar_freia.data.store import SPLITS, StoreInfo, open_h5, read_rows
from innpar_freia.errors import DataError
from innpar_freia.signal import zscore

# Windows read per pass when computing statistics: bounded memory for any file size.
STATS_BLOCK = 4096


@dataclass(frozen=True)
class Normalisation:
    """How signals are normalised for the network, and undone before any metric.

    PPG is z-scored per window (its units are arbitrary). ABP (mmHg) is mapped to
    ``(abp - abp_offset) / abp_scale`` with constants computed on the training split only:
    ``minmax`` uses the training minimum and range, ``zscore`` the training mean and SD.
    """

    method: str
    abp_offset: float
    abp_scale: float

    def normalise_abp(self, abp: Any) -> Any:
        return (abp - self.abp_offset) / self.abp_scale

    def denormalise_abp(self, abp: Any) -> Any:
        return abp * self.abp_scale + self.abp_offset

    @staticmethod
    def normalise_ppg(ppg: np.ndarray) -> np.ndarray:
        return zscore(ppg, axis=-1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "abp_offset": self.abp_offset,
            "abp_scale": self.abp_scale,
            "ppg": "zscore-per-window",
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalisation:
        return cls(str(d["method"]), float(d["abp_offset"]), float(d["abp_scale"]))


def fit_normalisation(path: str | Path, indices: np.ndarray, method: str) -> Normalisation:
    """ABP normalisation constants from the windows ``indices`` (the training split),
    streamed a block at a time."""
    if len(indices) == 0:
        raise DataError("cannot fit the ABP normalisation: the training split is empty")
    lo, hi, total, total_sq, count = np.inf, -np.inf, 0.0, 0.0, 0
    with open_h5(path) as fh:
        abp = fh["abp"]
        for s in range(0, len(indices), STATS_BLOCK):
            block = read_rows(abp, np.sort(indices[s : s + STATS_BLOCK])).astype(np.float64)
            lo, hi = min(lo, block.min()), max(hi, block.max())
            total += block.sum()
            total_sq += (block * block).sum()
            count += block.size
    if method == "minmax":
        offset, scale = float(lo), float(hi - lo)
    elif method == "zscore":
        mean = total / count
        offset, scale = float(mean), float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    else:
        raise DataError(f"unknown ABP normalisation {method!r}; use minmax or zscore")
    # A constant ABP has no spread, though zscore's sums of squares can leave it one of
    # rounding error (1000 windows of 120.1 mmHg: an SD of 1e-6 mmHg).
    if not np.isfinite(scale) or scale <= 0 or lo == hi:
        raise DataError(f"training ABP is constant ({offset} mmHg): cannot normalise it")
    return Normalisation(method, offset, scale)


@dataclass(frozen=True)
class SplitPlan:
    """Window indices of the train / val / test splits and how they were chosen."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    scheme: str
    test_fold: int | None = None
    val_fold: int | None = None

    def indices(self, split: str) -> np.ndarray:
        if split == "all":
            return np.sort(np.concatenate([self.train, self.val, self.test]))
        if split not in SPLITS:
            raise DataError(f"split must be one of train, val, test, all, but is {split!r}")
        return getattr(self, split)

    def describe(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "test_fold": self.test_fold,
            "val_fold": self.val_fold,
            "windows": {s: len(getattr(self, s)) for s in SPLITS},
        }


def plan_splits(
    info: StoreInfo,
    test_fold: int | None = None,
    val_fold: int | None = None,
    *,
    check_subjects: bool = True,
) -> SplitPlan:
    """Choose train/val/test windows of a file.

    With ``test_fold`` (or a file with folds but no split column), bp-benchmark's nested
    scheme: test fold k, validation fold k+1 mod K (unless ``val_fold`` is given), training
    on the rest. Otherwise the file's own ``split`` column. A plan whose parts share a
    subject is refused (:func:`check_subject_disjoint`) unless ``check_subjects`` is False
    (to tell which windows a run of before the check used).
    """
    plan = _plan_splits(info, test_fold, val_fold)
    if check_subjects:
        check_subject_disjoint(info, plan)
    return plan


def check_subject_disjoint(info: StoreInfo, plan: SplitPlan) -> None:
    """Refuse a plan with a subject in two of train, validation and test (the protocol's
    splits are always subject-disjoint): a model would be scored on subjects it trained or
    was selected on. Folds or a split column edited by hand, or written by another tool,
    had trained without a word; only ``innpar data check`` told."""
    parts = [name for name in SPLITS if len(getattr(plan, name))]
    if len(parts) < 2:
        return
    names, code = np.unique(np.asarray(info.subjects).astype(str), return_inverse=True)
    present = np.zeros((len(parts), len(names)), dtype=bool)
    for k, name in enumerate(parts):
        present[k, code.ravel()[getattr(plan, name)]] = True
    shared = np.flatnonzero(present.sum(axis=0) > 1)
    if not shared.size:
        return

    def where(i: int) -> str:
        *first, last = [p for k, p in enumerate(parts) if present[k, i]]
        return f"{', '.join(first)} and {last}"

    listed = ", ".join(f"{str(names[i])!r} ({where(i)})" for i in shared[:5])
    more = f" and {len(shared) - 5} more" if len(shared) > 5 else ""
    what = (
        f"the nested split for test fold {plan.test_fold}"
        if plan.scheme == "nested-folds"
        else "the split column"
    )
    if plan.scheme != "nested-folds" and _folds_subject_disjoint(info, code.ravel()):
        # Folds that are fine (bp-benchmark's own) are kept: --folds K would redraw them.
        fix = "--keep-folds' draws a subject-disjoint split column from its folds"
    else:
        fix = "--folds K' draws subject-disjoint folds"
        fix += "" if plan.scheme == "nested-folds" else " and a split column"
    raise DataError(
        f"{info.path}: {what} puts subject{'s' if len(shared) > 1 else ''} {listed}{more} in "
        "more than one of train, val and test, but splits must be subject-disjoint; "
        f"'innpar data check {info.path}' shows the leakage, and 'innpar data split "
        f"{info.path} {fix}"
    )


def _folds_subject_disjoint(info: StoreInfo, code: np.ndarray) -> bool:
    """Whether ``info``'s file has folds on every window and each subject (``code``: its
    index per window) in one fold."""
    fold = np.asarray(info.fold)
    if not info.has_folds or np.any(fold < 0):
        return False
    pairs = np.unique(np.stack([code, fold]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1]


def _plan_splits(info: StoreInfo, test_fold: int | None, val_fold: int | None) -> SplitPlan:
    """:func:`plan_splits` without the check of its subjects."""
    for name, value in (("test_fold", test_fold), ("val_fold", val_fold)):
        # "3" from a text file is not fold 3: "test fold 3 is not in FILE (folds: 0, ... 3)".
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral)):
            raise TypeError(f"{name} must be a whole number, not {value!r}")
    folds = np.unique(info.fold[info.fold >= 0])
    if test_fold is None and not info.has_splits and info.has_folds:
        test_fold = int(folds.max())
    if test_fold is not None:
        if not info.has_folds:
            raise DataError(
                f"{info.path} has no cross-validation folds, so test fold {test_fold} cannot be "
                "used; assign folds with 'innpar data split' or train on its split column"
            )
        if test_fold not in folds:
            raise DataError(
                f"test fold {test_fold} is not in {info.path} (folds: {', '.join(map(str, folds))})"
            )
        if len(folds) < (2 if val_fold == -1 else 3):
            raise DataError(
                f"{info.path} has {len(folds)} folds; the nested scheme needs at least 3"
            )
        k = len(folds)
        if val_fold is None:
            val_fold = int(folds[(int(np.searchsorted(folds, test_fold)) + 1) % k])
        elif val_fold != -1 and val_fold not in folds:
            raise DataError(f"validation fold {val_fold} is not in {info.path}")
        idx = np.arange(info.n_windows)
        return SplitPlan(
            train=idx[(info.fold != test_fold) & (info.fold != val_fold)],
            val=idx[info.fold == val_fold],
            test=idx[info.fold == test_fold],
            scheme="nested-folds",
            test_fold=int(test_fold),
            val_fold=int(val_fold),
        )
    if not info.has_splits:
        raise DataError(
            f"{info.path} assigns no windows to train/val/test and has no folds; "
            "assign them with 'innpar data split'"
        )
    idx = np.arange(info.n_windows)
    return SplitPlan(
        train=idx[info.split == "train"],
        val=idx[info.split == "val"],
        test=idx[info.split == "test"],
        scheme="split-column",
    )


class WindowDataset(Dataset):
    """Normalised (PPG, ABP) windows of one split, read lazily from the HDF5 file.

    The file is opened on first access in each process (so every DataLoader worker and
    every DDP rank has its own handle) with a bounded chunk cache. ``__getitems__`` reads a
    whole batch in one sorted HDF5 call. Items are ``(ppg, abp, index)``: float32 tensors
    of shape ``(time,)`` (PPG z-scored, ABP normalised) and the window's index in the file.
    """

    def __init__(self, path: str | Path, indices: np.ndarray, norm: Normalisation):
        self.path = Path(path)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.norm = norm
        self._fh: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def _file(self) -> h5py.File:
        if self._fh is None or self._pid != os.getpid():
            self._fh = open_h5(self.path)
            self._pid = os.getpid()
        return self._fh

    def __getstate__(self) -> dict[str, Any]:
        # h5py handles cannot be pickled to worker processes; each worker opens its own.
        state = dict(self.__dict__)
        state["_fh"], state["_pid"] = None, None
        return state

    def _batch(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = self.indices[positions]
        fh = self._file()
        ppg = Normalisation.normalise_ppg(read_rows(fh["ppg"], rows))
        abp = self.norm.normalise_abp(read_rows(fh["abp"], rows).astype(np.float64))
        return (
            torch.from_numpy(ppg.astype(np.float32)),
            torch.from_numpy(abp.astype(np.float32)),
            torch.from_numpy(rows),
        )

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ppg, abp, rows = self._batch(np.array([i]))
        return ppg[0], abp[0], rows[0]

    def __getitems__(self, positions: list[int]) -> list[tuple[torch.Tensor, ...]]:
        ppg, abp, rows = self._batch(np.asarray(positions, dtype=np.int64))
        return list(zip(ppg, abp, rows, strict=True))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class PreloadedLoader:
    """A split's normalised windows held in memory (on the training device), batched in
    the order of a sampler: a drop-in for the DataLoader when the split is small.

    The values come from :meth:`WindowDataset._batch`, the lazy path's own code, and the
    batches follow the same sampler, so training sees exactly the same numbers in the same
    order; it only skips the per-batch HDF5 reads and host-to-device copies that would
    otherwise bound a GPU's throughput.
    """

    def __init__(
        self,
        dataset: WindowDataset,
        batch_size: int,
        device: torch.device,
        sampler: Any = None,
    ):
        parts = [
            dataset._batch(np.arange(s, min(s + STATS_BLOCK, len(dataset))))
            for s in range(0, len(dataset), STATS_BLOCK)
        ]
        dataset.close()
        self.ppg = torch.cat([p[0] for p in parts]).to(device)
        self.abp = torch.cat([p[1] for p in parts]).to(device)
        self.rows = torch.cat([p[2] for p in parts])
        self.batch_size = batch_size
        self.sampler = sampler

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.rows)
        return -(-n // self.batch_size)

    def __iter__(self):
        order = list(self.sampler) if self.sampler is not None else range(len(self.rows))
        order = torch.as_tensor(list(order), dtype=torch.long)
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            dev_idx = idx.to(self.ppg.device)
            yield self.ppg[dev_idx], self.abp[dev_idx], self.rows[idx]


def split_bytes(n_windows: int, window_length: int) -> int:
    """Memory of a split's normalised PPG and ABP as float32 tensors."""
    return 2 * 4 * n_windows * window_length


def load_split_arrays(
    path: str | Path, indices: np.ndarray, dtype: Any = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Raw PPG and ABP (mmHg) arrays ``(n, L)`` of ``indices``, in that order: float64, or
    with ``dtype=None`` as the file stores them (float32: the same numbers in half the
    memory)."""
    with open_h5(path) as fh:
        ppg, abp = read_rows(fh["ppg"], indices), read_rows(fh["abp"], indices)
    if dtype is None:
        return ppg, abp
    return ppg.astype(dtype, copy=False), abp.astype(dtype, copy=False)
