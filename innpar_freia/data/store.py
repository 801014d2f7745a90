"""The canonical HDF5 window file: schema, atomic writing, validated reading.

Layout (schema ``innpar-freia.windows``, version 1)::

    /                attrs: schema, schema_version, fs (Hz), window_length, n_windows,
                            ppg_units, abp_units, source_format, provenance (JSON),
                            created_utc, package_version, description
    /ppg             (N, L) float32, PPG per window (source units, not normalised)
    /abp             (N, L) float32, ABP per window in mmHg
    /subject         (N,)   str, subject (or record) id
    /window_id       (N,)   str, window id (unique unless the source repeats one: imports warn)
    /split           (N,)   str, "train" / "val" / "test" or "" (unassigned)
    /fold            (N,)   int16, cross-validation fold, -1 when none
    /start           (N,)   int64, first sample of the window in its recording at fs, -1 unknown
    /reference/<name> (N,)  optional reference fields (SBP/DBP labels, demographics, ...)

PPG and ABP are chunked by rows and gzip-compressed, so files larger than memory are read
a batch at a time. Files are written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import numbers
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from innpar_freia import __version__
from innpar_freia.config import MIN_WINDOW_LENGTH
from innpar_freia.errors import DataError, option
from innpar_freia.outputs import remove_stale_temporaries, replace_durably

SCHEMA = "innpar-freia.windows"
SCHEMA_VERSION = 1
SPLITS = ("train", "val", "test")
CHUNK_ROWS = 64
# The writer's HDF5 chunk cache: none, so that rows reach the disk as they are appended and a
# full disk fails in append(), where it is an error; rows held back in the cache were written
# only by h5py's close, where a failure is not raised and crashed the interpreter.
RAW_CACHE_BYTES = 0
# Per-handle chunk cache: bounded memory per DataLoader worker, but large enough that a
# training epoch over a file of a few thousand windows decompresses every chunk once.
CHUNK_CACHE_BYTES = 64 * 2**20

_STR = h5py.string_dtype(encoding="utf-8")
FLOAT32_MAX = float(np.finfo(np.float32).max)
FOLD_MAX = int(np.iinfo(np.int16).max)  # the fold column is int16


def storable(values: Any, axis: int | None = None) -> Any:
    """Whether ``values`` are finite and within float32's range (all of them, or along
    ``axis``). Windows are stored as float32, where a larger finite value becomes inf, so
    checking ``isfinite`` on the float64 input alone lets such windows through."""
    x = np.asarray(values)
    if x.dtype.kind == "f" and x.dtype.itemsize <= 4:
        # float16/float32 hold nothing beyond float32's range (and comparing float16 with
        # it cast the bound to float16: numpy's "overflow encountered in cast" warning).
        return np.isfinite(x).all(axis=axis)
    return (np.isfinite(x) & (np.abs(x) <= FLOAT32_MAX)).all(axis=axis)


@dataclass
class StoreInfo:
    """What a window file holds, without its signals."""

    path: Path
    fs: float
    window_length: int
    n_windows: int
    ppg_units: str
    abp_units: str
    source_format: str
    provenance: dict[str, Any]
    subjects: np.ndarray
    window_ids: np.ndarray
    split: np.ndarray
    fold: np.ndarray
    start: np.ndarray
    reference_fields: list[str] = field(default_factory=list)
    description: str = ""
    created_utc: str = ""
    package_version: str = ""

    @property
    def has_folds(self) -> bool:
        return bool(self.n_windows) and bool(np.all(self.fold >= 0))

    @property
    def has_splits(self) -> bool:
        return bool(np.any(np.isin(self.split, SPLITS)))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``innpar data info --json`` prints)."""
        splits = {s: int(np.sum(self.split == s)) for s in SPLITS}
        splits["unassigned"] = int(np.sum(self.split == ""))
        # Values no command accepts (read with check_split=False, as `data info` does).
        splits_invalid = odd_split_values(self.split)
        # Likewise fold numbers outside the schema's range, and windows naming no subject
        # (read with check_folds=False and check_subjects=False): counted apart, not as a
        # fold or a subject.
        odd = odd_fold_rows(self.fold)
        values, counts = np.unique(self.fold[odd], return_counts=True)
        folds_invalid = {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
        named = np.ones(self.n_windows, dtype=bool)
        named[empty_subject_rows(self.subjects)] = False
        folds = {}
        valid = self.fold >= 0
        valid[odd] = False
        if self.n_windows and np.any(valid):
            for k in np.unique(self.fold[valid]):
                sel = self.fold == k
                folds[str(int(k))] = {
                    "windows": int(sel.sum()),
                    "subjects": len(np.unique(self.subjects[sel & named])),
                }
        return {
            "path": str(self.path),
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "fs": self.fs,
            "window_length": self.window_length,
            "window_seconds": self.window_length / self.fs,
            "n_windows": self.n_windows,
            "n_subjects": len(np.unique(self.subjects[named])) if self.n_windows else 0,
            "subjects_empty": int(np.sum(~named)),
            "ppg_units": self.ppg_units,
            "abp_units": self.abp_units,
            "source_format": self.source_format,
            "splits": splits,
            "splits_invalid": splits_invalid,
            "folds": folds,
            "folds_invalid": folds_invalid,
            "reference_fields": self.reference_fields,
            "description": self.description,
            "created_utc": self.created_utc,
            "package_version": self.package_version,
            "provenance": self.provenance,
        }


def _decode(values: Any) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def h5_open_error(path: Path, exc: OSError) -> DataError:
    """The error for an HDF5 file h5py cannot open: one that another program holds open for
    writing (HDF5's file lock) is not a corrupt file, and is named as such."""
    if "unable to lock file" in str(exc):
        return DataError(
            f"{path} is open for writing in another program (HDF5 file lock); "
            "wait for it to finish, then try again"
        )
    return DataError(f"{path} is not a readable HDF5 file ({exc})")


def open_h5(path: str | Path) -> h5py.File:
    """Open a window file read-only, with a clear error for missing or non-HDF5 files."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_dir():
        raise DataError(f"data file {path} is a directory, expected an HDF5 window file")
    try:
        fh = h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
    except OSError as exc:
        raise h5_open_error(path, exc) from None
    try:
        _validate(fh, path)
    except Exception:
        fh.close()
        raise
    return fh


def _attr_text(fh: h5py.File, name: str, default: str = "") -> str:
    """The root attribute ``name`` as text. A fixed-length string attribute (what MATLAB's
    ``h5writeatt`` or numpy bytes write) reads back as bytes, and ``str()`` of it gave
    ``"b'mmHg'"``: training then refused the file's ABP as not in mmHg."""
    value = fh.attrs.get(name, default)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _validate(fh: h5py.File, path: Path) -> None:
    schema = fh.attrs.get("schema")
    if isinstance(schema, bytes):
        schema = schema.decode(errors="replace")
    if schema != SCHEMA:
        raise DataError(
            f"{path} is not an innpar-freia window file (schema {schema!r}, expected {SCHEMA!r}); "
            "create one with 'innpar data synth' or 'innpar data import'"
        )
    version = _attr_number(fh, path, "schema_version", int, default=-1)
    if version != SCHEMA_VERSION:
        raise DataError(
            f"{path} has schema version {version}, but this innpar-freia reads version "
            f"{SCHEMA_VERSION}"
        )
    required = ("ppg", "abp", "subject", "window_id", "split", "fold", "start")
    missing = [name for name in required if name not in fh]
    if missing:
        raise DataError(
            f"{path} is missing dataset(s) {', '.join(missing)}: the file is incomplete"
        )
    not_arrays = [name for name in required if not isinstance(fh[name], h5py.Dataset)]
    if not_arrays:
        raise DataError(f"{path}: {', '.join(not_arrays)} must be dataset(s), not group(s)")
    if "reference" in fh and not isinstance(fh["reference"], h5py.Group):
        raise DataError(f"{path}: 'reference' must be a group of per-window fields")
    n = _attr_number(fh, path, "n_windows", int)
    length = _attr_number(fh, path, "window_length", int)
    if length < 1:
        raise DataError(f"{path}: window_length must be positive, but is {length}")
    for name in ("ppg", "abp"):
        if fh[name].shape != (n, length):
            raise DataError(
                f"{path}: dataset {name!r} has shape {fh[name].shape}, expected ({n}, {length})"
            )
        if fh[name].dtype.kind not in "iuf":
            raise DataError(f"{path}: dataset {name!r} holds {fh[name].dtype}, expected numbers")
    for name in ("subject", "window_id", "split", "fold", "start"):
        if fh[name].shape != (n,):
            raise DataError(f"{path}: dataset {name!r} has shape {fh[name].shape}, expected ({n},)")
    for name in ("fold", "start"):
        if fh[name].dtype.kind not in "iu":
            raise DataError(f"{path}: dataset {name!r} holds {fh[name].dtype}, expected integers")
    fs = _attr_number(fh, path, "fs", float)
    if not np.isfinite(fs) or fs <= 0:
        raise DataError(f"{path}: sampling rate fs must be a positive number, but is {fs}")
    try:
        provenance = json.loads(fh.attrs.get("provenance", "{}"))
    except (TypeError, ValueError):
        raise DataError(f"{path}: its provenance attribute is not valid JSON (damaged?)") from None
    # The writers store an object; a list or null written by hand passed here and stopped
    # the experiment runner with a traceback where it looks up what made the file.
    if not isinstance(provenance, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(provenance), "a number"
        )
        raise DataError(
            f"{path}: its provenance attribute is {kind} in JSON, "
            "expected an object of key-value pairs (damaged?)"
        )


def _attr_number(fh: h5py.File, path: Path, name: str, kind: type, default: Any = None) -> Any:
    """The root attribute ``name`` as an ``int`` or ``float``; a missing or non-numeric
    value is a ``DataError`` (a damaged or hand-made file), not a ``KeyError``."""
    value = fh.attrs.get(name, default)
    if value is None:
        raise DataError(f"{path} has no {name!r} attribute: the file is damaged or incomplete")
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    elif isinstance(value, np.generic):
        value = value.item()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{path}: attribute {name!r} is {value!r}, not a number") from None
    if kind is int:
        if not number.is_integer():
            raise DataError(f"{path}: attribute {name!r} is {number:g}, not a whole number")
        return int(number)
    return number


def read_dataset(dataset: h5py.Dataset, selection: Any = slice(None)) -> np.ndarray:
    """``dataset[selection]``; a failing read (corrupt or truncated chunks behind a valid
    header) is a ``DataError`` naming the file and the dataset, not h5py's bare message."""
    try:
        return dataset[selection]
    except (OSError, RuntimeError) as exc:
        raise DataError(
            f"{dataset.file.filename}: cannot read dataset {dataset.name.lstrip('/')!r} "
            f"(the file is corrupt or truncated: {exc})"
        ) from None


def check_finite(dataset: h5py.Dataset, values: np.ndarray) -> None:
    """Refuse windows of ``dataset`` (``ppg``/``abp``) holding NaN or inf, given ``values``,
    the rows just read from it.

    The importers never write such windows, so the file is damaged or hand-made; letting
    them through gives NaN metrics or a diverging loss that hide the cause. Checking what
    is read anyway costs one pass over memory; only on failure is the whole dataset
    scanned, to say how many windows are affected and which is the first.
    """
    if np.isfinite(values).all():
        return
    bad: list[np.ndarray] = []
    block = CHUNK_ROWS * 64
    for s in range(0, dataset.shape[0], block):
        rows = read_dataset(dataset, slice(s, s + block))
        bad.append(s + np.flatnonzero(~np.isfinite(rows).all(axis=1)))
    rows_bad = np.concatenate(bad)
    first = int(rows_bad[0]) if rows_bad.size else -1
    where = f"window {first}"
    if first >= 0 and "window_id" in dataset.file:
        try:
            where += f", id {_decode([dataset.file['window_id'][first]])[0]!r}"
        except (OSError, RuntimeError, IndexError):
            pass  # the id is a courtesy; the index already names the window
    n = len(rows_bad)
    raise DataError(
        f"{dataset.file.filename}: {n} window{'s' if n != 1 else ''} of "
        f"{dataset.name.lstrip('/')!r} hold{'' if n != 1 else 's'} NaN or inf (first: {where}); "
        "re-import the data or drop those windows"
    )


def read_block(dataset: h5py.Dataset, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Windows ``start:stop`` of ``ppg`` or ``abp``, checked to be readable and finite."""
    values = read_dataset(dataset, slice(start, stop))
    check_finite(dataset, values)
    return values


def read_info(
    path: str | Path,
    *,
    check_split: bool = True,
    check_folds: bool = True,
    check_subjects: bool = True,
) -> StoreInfo:
    """Read and validate a window file's metadata (no signals). ``check_split=False``
    accepts a split column with values other than ``SPLITS`` and ``""`` (for ``innpar data
    split``, which replaces them), ``check_folds=False`` fold numbers other than 0 to
    ``FOLD_MAX`` and -1 (for ``innpar data split --folds K``, which replaces them), and
    ``check_subjects=False`` empty subject ids (for ``innpar data info``, which reports
    all three)."""
    path = Path(path)
    with open_h5(path) as fh:
        a = fh.attrs
        split = _text_column(fh, "split")
        if check_split:
            _check_split_values(path, split)
        window_ids = _text_column(fh, "window_id")
        fold = read_dataset(fh["fold"]).astype(np.int64)
        if check_folds:
            _check_fold_values(path, fold, window_ids)
        subjects = _text_column(fh, "subject")
        if check_subjects:
            _check_subject_values(path, subjects, window_ids)
        return StoreInfo(
            path=path,
            # As _validate read them: a hand-written "625.0" is a number there, not for int().
            fs=_attr_number(fh, path, "fs", float),
            window_length=_attr_number(fh, path, "window_length", int),
            n_windows=_attr_number(fh, path, "n_windows", int),
            ppg_units=_attr_text(fh, "ppg_units"),
            abp_units=_attr_text(fh, "abp_units", "mmHg"),
            source_format=_attr_text(fh, "source_format"),
            provenance=json.loads(a.get("provenance", "{}")),
            subjects=subjects,
            window_ids=window_ids,
            split=split,
            fold=fold,
            start=read_dataset(fh["start"]).astype(np.int64),
            reference_fields=sorted(fh["reference"].keys()) if "reference" in fh else [],
            description=_attr_text(fh, "description"),
            created_utc=_attr_text(fh, "created_utc"),
            package_version=_attr_text(fh, "package_version"),
        )


def odd_split_values(split: np.ndarray) -> dict[str, int]:
    """The split column's values other than ``SPLITS`` and ``""``, with their window counts."""
    values, counts = np.unique(split, return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True) if v not in (*SPLITS, "")}


def _check_split_values(path: Path, split: np.ndarray) -> None:
    """Refuse split values other than ``SPLITS`` and ``""``: a hand-written ``"validation"``
    or ``"Train"`` would otherwise leave those windows out of training and evaluation
    without a word."""
    odd = list(odd_split_values(split).items())
    if odd:
        listed = ", ".join(f"{v!r} ({c} window{'s' if c != 1 else ''})" for v, c in odd[:5])
        more = f" and {len(odd) - 5} more" if len(odd) > 5 else ""
        raise DataError(
            f"{path}: the split column holds {listed}{more}; its values must be "
            f"{', '.join(SPLITS)} or empty (unassigned). Draw them again with "
            f"'innpar data split {path}'"
        )


def odd_fold_rows(fold: np.ndarray) -> np.ndarray:
    """Rows whose fold number is outside the schema's 0 to ``FOLD_MAX`` and -1 (no fold)."""
    fold = np.asarray(fold)
    return np.flatnonzero((fold < -1) | (fold > FOLD_MAX))


def empty_subject_rows(subjects: np.ndarray) -> np.ndarray:
    """Rows whose subject id is empty: they name no subject."""
    return np.flatnonzero(np.asarray(subjects, dtype=object) == "")


def _first_windows(rows: np.ndarray, window_ids: np.ndarray, values: np.ndarray | None) -> str:
    """The first (up to three) of ``rows`` by index and id, with their ``values``, and how
    many more there are: "window 12 (id 'a_12') has fold -5, ... and 4 more"."""
    named = [
        f"window {int(i)} (id {str(window_ids[i])!r})"
        + ("" if values is None else f" has fold {int(values[i])}")
        for i in rows[:3]
    ]
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    return ", ".join(named) + more


def _check_fold_values(path: Path, fold: np.ndarray, window_ids: np.ndarray) -> None:
    """Refuse fold numbers the schema has no meaning for (what the writer refuses): a -5
    made the file one "without folds" for training, and ``data info`` counted the window
    in no fold without a word."""
    rows = odd_fold_rows(fold)
    if rows.size:
        raise DataError(
            f"{path}: {_first_windows(rows, window_ids, fold)}, but folds are 0 to "
            f"{FOLD_MAX} (-1: no fold); assign folds again with 'innpar data split {path} "
            "--folds K'"
        )


def _check_subject_values(path: Path, subjects: np.ndarray, window_ids: np.ndarray) -> None:
    """Refuse empty subject ids (what the writer refuses): the split by subject, the
    leakage check and the calibrated protocol took the windows for one subject named ""."""
    rows = empty_subject_rows(subjects)
    if rows.size:
        raise DataError(
            f"{path}: {_first_windows(rows, window_ids, None)} "
            f"{'has' if len(rows) == 1 else 'have'} an empty subject id, but every window "
            "must name its subject; import the data again, or write their subjects into the file"
        )


def _text_column(fh: h5py.File, name: str) -> np.ndarray:
    try:
        return _decode(read_dataset(fh[name]))
    except UnicodeDecodeError:
        raise DataError(
            f"{fh.filename}: dataset {name!r} holds text that is not UTF-8 (damaged?)"
        ) from None


def read_signals(
    path: str | Path, indices: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """PPG and ABP ``(n, L)`` float32 for ``indices`` (all windows when ``None``): a 1-D
    sequence of window numbers, or a slice; one window is ``[i]``."""
    with open_h5(path) as fh:
        if indices is None:
            return read_block(fh["ppg"]), read_block(fh["abp"])
        if isinstance(indices, slice):
            indices = np.arange(fh["ppg"].shape[0])[indices]
        given = np.asarray(indices)
        if given.ndim != 1:
            # A single number gave 1-D arrays, a 2-D index 3-D ones: not the (n, L) promised.
            one = f"; for one window, pass [{given.item()}]" if given.ndim == 0 else ""
            raise TypeError(
                f"indices must be a 1-D sequence of window numbers or a slice, not an array "
                f"of shape {given.shape}{one}"
            )
        if given.size and given.dtype.kind not in "iu":
            # 0.5 was truncated to window 0, and a boolean mask read as windows 0 and 1.
            raise TypeError(f"indices must be window numbers (integers), not {given.dtype}")
        n = fh["ppg"].shape[0]
        outside = given[(given < 0) | (given >= n)] if given.size else given
        if outside.size:
            raise IndexError(f"window {outside[0]} is not in {path}: it has windows 0..{n - 1}")
        return read_rows(fh["ppg"], given), read_rows(fh["abp"], given)


def check_rows_finite(path: str | Path, indices: np.ndarray) -> None:
    """Refuse (``DataError``, :func:`check_finite`) when a window ``indices`` of ``path``
    holds NaN or inf in its PPG or ABP, reading a block of rows at a time."""
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    block = CHUNK_ROWS * 64
    with open_h5(path) as fh:
        for name in ("ppg", "abp"):
            for s in range(0, indices.size, block):
                read_rows(fh[name], indices[s : s + block])


def read_rows(dataset: h5py.Dataset, indices: np.ndarray) -> np.ndarray:
    """Rows ``indices`` (any order, repeats allowed) of ``ppg`` or ``abp`` in one sorted
    read, checked to be readable and finite (:func:`check_finite`)."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        return np.empty((0, *dataset.shape[1:]), dtype=dataset.dtype)
    unique, inverse = np.unique(indices, return_inverse=True)
    values = read_dataset(dataset, unique)
    check_finite(dataset, values)
    if unique.size == indices.size and np.array_equal(unique, indices):
        return values  # sorted, no repeats: no second copy of the rows
    return values[inverse]


def read_reference(path: str | Path, name: str) -> np.ndarray:
    with open_h5(path) as fh:
        if "reference" not in fh or name not in fh["reference"]:
            raise DataError(f"{path} has no reference field {name!r}")
        return read_dataset(fh["reference"][name])


def write_failure(exc: BaseException) -> str:
    """Why a file could not be written: the operating system's reason (``No space left on
    device``) where the error carries an errno (h5py puts it in its text), else the
    error's first line."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    found = re.search(r"errno = (\d+)", str(exc))
    if found:
        return os.strerror(int(found.group(1)))
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def create_h5(tmp: Path, final: Path) -> h5py.File:
    """A new HDF5 file at ``tmp``, the temporary name of ``final``, opened for writing
    without a chunk cache (:data:`RAW_CACHE_BYTES`); finish it with :func:`finish_h5` or
    :func:`discard_h5`. The error names ``final``, not the hidden temporary file."""
    theirs = tmp.exists()  # another writer of this process's: not this one's to remove
    try:
        return h5py.File(tmp, "w", rdcc_nbytes=RAW_CACHE_BYTES)
    except OSError as exc:
        if not theirs:
            tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {final}: {write_failure(exc)}") from None
    except BaseException:  # Ctrl-C or SIGTERM while h5py creates the file
        if not theirs:
            tmp.unlink(missing_ok=True)
        raise


def finish_h5(fh: h5py.File, final: Path) -> None:
    """Write out and close a file made by :func:`create_h5`. HDF5 holds metadata back
    until here, and a write that fails inside h5py's close (a full disk) is only printed,
    once per open object, after which the close crashed the interpreter (segmentation
    fault): flushing first makes the failure an error (then :func:`discard_h5` the file)."""
    try:
        fh.flush()
        fh.close()
    except (OSError, RuntimeError) as exc:
        raise DataError(f"cannot write {final}: {write_failure(exc)}") from None


def discard_h5(fh: h5py.File, tmp: Path) -> None:
    """Close and remove a file made by :func:`create_h5` that will not be finished."""
    try:
        if fh.id.valid:
            # Empty the file first: after a failed write (a full disk) the close still
            # writes what HDF5 holds, which now finds room, instead of failing again.
            try:
                os.truncate(tmp, 0)
            except OSError:
                pass  # gone already: closing is what is left to do
            fh.close()
    except (OSError, RuntimeError):
        pass  # the file is removed below either way
    finally:
        tmp.unlink(missing_ok=True)


# Suffixes of the other formats the package reads or writes: not a window file's name.
OTHER_FORMAT_SUFFIXES = frozenset(
    ".csv .npy .npz .mat .hea .dat .json .pt .png .pdf .svg .md .html .txt .toml .edf".split()
)


def _check_folds(folds: np.ndarray) -> None:
    """Refuse fold numbers the int16 column (-1 = no fold) cannot hold: a larger number
    would silently wrap around, and a fraction be truncated."""
    if folds.dtype.kind not in "iu":
        raise DataError(f"fold numbers must be integers, got {folds.dtype}")
    out_of_range = odd_fold_rows(folds)
    if out_of_range.size:
        raise DataError(
            f"fold number {folds[out_of_range[0]]} is out of range: folds are 0 to {FOLD_MAX} "
            "(-1: none)"
        )


def _check_rate_and_length(fs: Any, window_length: Any) -> None:
    """A window file's rate and window length, before anything is written: ``"125"`` was
    numpy's "ufunc 'isfinite' not supported", and 625.7 samples silently 625."""
    if isinstance(fs, bool) or not isinstance(fs, numbers.Real) or not np.isfinite(fs) or fs <= 0:
        raise DataError(f"sampling rate fs must be a positive number, but is {fs!r}")
    whole_float = isinstance(window_length, numbers.Real) and float(window_length).is_integer()
    if isinstance(window_length, bool) or not (
        isinstance(window_length, numbers.Integral) or whole_float
    ):
        raise DataError(
            f"window_length must be a whole number of samples, but is {window_length!r}"
        )
    if window_length < MIN_WINDOW_LENGTH:
        # No network can take shorter windows (training would refuse the file only then).
        raise DataError(
            f"window_length must be at least {MIN_WINDOW_LENGTH} samples, the shortest "
            f"window the network takes, but is {window_length}"
        )


def _signal(values: Any, name: str) -> np.ndarray:
    """``values`` as float64 windows; bool and complex ones are refused rather than read as
    0/1 or stripped of their imaginary part (numpy only warns)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "bc":
        kind = "bool" if arr.dtype.kind == "b" else "complex"
        raise DataError(f"{name} windows must be real numbers, but are {kind} ({arr.dtype})")
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} windows must be numbers, but are {arr.dtype}") from None


def _check_starts(starts: np.ndarray) -> np.ndarray:
    """A window's first sample in its recording (-1: unknown), as integers: 0.7 was
    truncated to 0, and "abc" gave numpy's "invalid literal for int()". Whole numbers held
    as floats (625.0, numpy's arange of a float step) are taken."""
    if starts.dtype.kind == "f" and np.all(np.isfinite(starts) & (starts == np.round(starts))):
        starts = starts.astype(np.int64)
    if starts.dtype.kind not in "iu":
        raise DataError(
            f"start must be whole sample numbers (-1: unknown), got {starts.dtype} "
            f"({starts[:3].tolist()})"
        )
    below = starts[starts < -1]
    if below.size:
        raise DataError(f"start {below[0]} is out of range: starts are 0 or more (-1: unknown)")
    return starts


def _check_subjects(subjects: np.ndarray) -> None:
    """None (stored as the subject "None") and "" name no subject: the split by subject
    and the calibrated protocol would take them for one."""
    if any(s is None or str(s) == "" for s in subjects):
        raise DataError("subject must name every window's subject, but one is None or empty")


class WindowWriter:
    """Write a window file incrementally, atomically: appended rows go to a temporary file
    that is renamed to ``path`` by :meth:`close`; :meth:`abort` (or an exception inside a
    ``with`` block) removes it, so no half-written file is ever left at ``path``.

    Every window needs a subject and an id of its own (``repeated_ids=True`` lets a source
    that repeats ids through, for :meth:`repeated_window_ids` to warn of); ``start`` is the
    window's first sample in its recording, -1 when unknown. A column that would be stored
    otherwise than given (a fractional start, a bool or complex signal) is a DataError.

    Example:
        >>> with WindowWriter("out.h5", fs=125.0, window_length=625,
        ...                   source_format="csv") as w:      # doctest: +SKIP
        ...     w.append(ppg, abp, subject=ids, window_id=wids)
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fs: float,
        window_length: int,
        source_format: str,
        provenance: Mapping[str, Any] | None = None,
        ppg_units: str = "a.u.",
        abp_units: str = "mmHg",
        description: str = "",
        overwrite: bool = False,
        repeated_ids: bool = False,
    ):
        self.path = Path(path)
        if self.path.suffix.lower() in OTHER_FORMAT_SUFFIXES:
            # Other commands pick a format by suffix: x.csv would be taken for a CSV file.
            raise DataError(
                f"output {self.path}: a window file is HDF5; name it with .h5, not "
                f"{self.path.suffix}"
            )
        _check_rate_and_length(fs, window_length)
        if self.path.exists() and not self.path.is_file():
            raise DataError(f"output {self.path} exists and is not a regular file")
        if self.path.exists() and not overwrite:
            raise DataError(
                f"output file {self.path} already exists; choose another name or use "
                + option("--force", "overwrite=True")
            )
        if not self.path.parent.exists():
            raise DataError(f"output directory {self.path.parent} does not exist")
        # An import killed outright (kill -9) left its copy, as large as the file would be.
        remove_stale_temporaries(self.path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.length = int(window_length)
        self.n = 0
        # Window ids so far, to refuse a repeated one; an importer whose source repeats ids
        # passes ``repeated_ids=True`` and warns (:meth:`repeated_window_ids`).
        self._ids: set[str] | None = None if repeated_ids else set()
        self._reference: dict[str, h5py.Dataset] = {}
        self.fh = create_h5(self.tmp, self.path)
        try:
            self._layout(fs, source_format, provenance, ppg_units, abp_units, description)
        except BaseException:
            # Interrupted before the caller's ``with`` has begun, which would abort it.
            self.abort()
            raise

    def _layout(
        self,
        fs: float,
        source_format: str,
        provenance: Mapping[str, Any] | None,
        ppg_units: str,
        abp_units: str,
        description: str,
    ) -> None:
        """The new file's attributes and empty datasets."""
        a = self.fh.attrs
        a["schema"] = SCHEMA
        a["schema_version"] = SCHEMA_VERSION
        a["fs"] = float(fs)
        a["window_length"] = self.length
        a["n_windows"] = 0
        a["ppg_units"] = ppg_units
        a["abp_units"] = abp_units
        a["source_format"] = source_format
        a["provenance"] = json.dumps(dict(provenance or {}), sort_keys=True, default=str)
        a["description"] = description
        a["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        a["package_version"] = __version__
        chunks = (CHUNK_ROWS, self.length)
        for name in ("ppg", "abp"):
            self.fh.create_dataset(
                name,
                shape=(0, self.length),
                maxshape=(None, self.length),
                dtype=np.float32,
                chunks=chunks,
                compression="gzip",
                compression_opts=4,
                shuffle=True,
            )
        for name, dtype in (("subject", _STR), ("window_id", _STR), ("split", _STR)):
            self.fh.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(4096,))
        self.fh.create_dataset("fold", shape=(0,), maxshape=(None,), dtype=np.int16, chunks=(4096,))
        self.fh.create_dataset(
            "start", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,)
        )

    def set_provenance(self, provenance: Mapping[str, Any]) -> None:
        self.fh.attrs["provenance"] = json.dumps(dict(provenance), sort_keys=True, default=str)

    def append(
        self,
        ppg: np.ndarray,
        abp: np.ndarray,
        *,
        subject: Any,
        window_id: Any,
        split: Any = "",
        fold: Any = -1,
        start: Any = -1,
        reference: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append ``n`` windows; per-window fields may be scalars (broadcast) or length ``n``."""
        ppg, abp = _signal(ppg, "PPG"), _signal(abp, "ABP")
        if ppg.ndim != 2 or ppg.shape != abp.shape or ppg.shape[1] != self.length:
            raise DataError(
                f"PPG {ppg.shape} and ABP {abp.shape} windows must both have shape "
                f"(n, {self.length})"
            )
        if not (storable(ppg) and storable(abp)):
            raise DataError(
                "windows contain NaN, infinite values or values beyond float32's range "
                f"(+-{FLOAT32_MAX:.3g}); remove or repair them first"
            )
        n = ppg.shape[0]

        def column(values: Any, name: str) -> np.ndarray:
            arr = np.asarray(values)
            if arr.ndim == 0:
                arr = np.full(n, arr.item())
            if arr.shape != (n,):
                raise DataError(f"{name} has shape {arr.shape}, expected ({n},)")
            return arr

        splits = column(split, "split").astype(str)
        bad = sorted({str(v) for v in splits} - {*SPLITS, ""})
        if bad:
            raise DataError(f"split values must be train, val, test or empty, got {bad}")
        folds = column(fold, "fold")
        _check_folds(folds)
        starts = _check_starts(column(start, "start"))
        subjects = column(subject, "subject")
        _check_subjects(subjects)
        ids = column(window_id, "window_id").astype(str)
        self._check_new_ids(ids)
        # Every column is checked and converted before the first row is written: a bad
        # column found after PPG and ABP had grown left the file's columns of unequal
        # lengths for a caller that caught the error and went on appending.
        columns = [
            ("ppg", ppg.astype(np.float32)),
            ("abp", abp.astype(np.float32)),
            ("subject", subjects.astype(str).astype(object)),
            ("window_id", ids.astype(object)),
            ("split", splits.astype(object)),
            ("fold", folds.astype(np.int16)),
            ("start", starts.astype(np.int64)),
        ]
        references = [
            (name, self._reference_values(name, column(values, f"reference field {name!r}")))
            for name, values in (reference or {}).items()
        ]
        new = self.n + n
        for name, values in columns:
            self._write(self.fh[name], values, new)
        for name, values in references:
            if name not in self._reference:
                self._reference[name] = self.fh.require_group("reference").create_dataset(
                    name,
                    shape=(0,),
                    maxshape=(None,),
                    dtype=_STR if values.dtype.kind == "O" else np.float64,
                    chunks=(4096,),
                )
            self._write(self._reference[name], values, new)
        self.n = new
        if self._ids is not None:
            self._ids.update(ids.tolist())

    def _check_new_ids(self, ids: np.ndarray) -> None:
        """Refuse a window id given twice (in this append or an earlier one): ids name the
        windows in predictions and reports, where two of one name cannot be told apart."""
        if self._ids is None:
            return
        values, counts = np.unique(ids, return_counts=True)
        repeated = [*values[counts > 1].tolist(), *(i for i in values.tolist() if i in self._ids)]
        if repeated:
            raise DataError(
                f"window_id must be unique, but {len(repeated)} id(s) repeat (e.g. "
                f"{', '.join(map(repr, repeated[:3]))})"
            )

    def _write(self, ds: h5py.Dataset, values: np.ndarray, new: int) -> None:
        """Rows ``self.n:new`` of ``ds``; a failed write (a full disk) is a DataError."""
        try:
            ds.resize(new, axis=0)
            ds[self.n : new] = values
        except (OSError, RuntimeError) as exc:
            raise DataError(f"cannot write {self.path}: {write_failure(exc)}") from None

    def _reference_values(self, name: str, values: np.ndarray) -> np.ndarray:
        """A reference field's values as its dataset stores them: text (object) for a field
        first given as text, float64 otherwise; a field must be given from the first append
        on (every window has a value)."""
        if name in self._reference:
            string = self._reference[name].dtype.kind == "O"
        elif self.n:
            raise DataError(f"reference field {name!r} must be given for every append")
        else:
            string = values.dtype.kind in "OUS"
        if string:
            return values.astype(str).astype(object)
        try:
            return values.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"reference field {name!r} holds numbers, but these values are not: "
                f"{values[:3].tolist()}"
            ) from None

    def repeated_window_ids(self) -> list[str]:
        """Window ids written more than once so far (most frequent first)."""
        ids = Counter(self.fh["window_id"][: self.n])
        return [_decode([k])[0] for k, c in ids.most_common() if c > 1]

    def close(self) -> Path:
        """Finish the file and move it to its final name."""
        missing = [n for n, ds in self._reference.items() if ds.shape[0] != self.n]
        if missing:
            self.abort()
            raise DataError(f"reference field(s) {missing} were not given for every window")
        try:
            self.fh.attrs["n_windows"] = self.n
            finish_h5(self.fh, self.path)
            replace_durably(self.tmp, self.path)
        except BaseException:
            self.abort()  # no hidden temporary file left behind
            raise
        return self.path

    def abort(self) -> None:
        """Discard everything written so far."""
        discard_h5(self.fh, self.tmp)

    def __enter__(self) -> WindowWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _lock_exclusively(path: Path, shown: Path) -> int:
    """A descriptor of ``path`` holding an exclusive lock, as HDF5 takes one for writing: a
    file that another program has open (a training run reading it) is refused, and so is a
    read-only file, which the copy replacing it would otherwise overwrite."""
    if not os.access(path, os.W_OK):
        raise DataError(f"cannot update {shown}: it is read-only")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise DataError(f"cannot update {shown}: {write_failure(exc)}") from None
    try:
        import fcntl  # not on Windows, where HDF5 locks nothing either
    except ImportError:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            return fd  # a file system without locks (some NFS): HDF5 goes on without too
        os.close(fd)
        raise DataError(
            f"cannot update {shown}: another program has it open ({write_failure(exc)})"
        ) from None
    return fd


@contextmanager
def held_for_reading(path: str | Path) -> Iterator[None]:
    """Hold a shared lock on a window file while a run uses it, as HDF5 does while the file
    is open: ``innpar data split`` (which needs the exclusive lock) is then refused. A run
    that preloads its windows closes the file after reading them, and a split meanwhile
    gave the file new folds under the finished run, which its evaluation and resume then
    refused. Where locks cannot be taken (Windows, some NFS), nothing is held."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield  # the reader that opens it next says why it cannot
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pass  # being updated (held exclusively): reading it fails with HDF5's own lock
        yield
    finally:
        os.close(fd)


@contextmanager
def update_in_place(path: str | Path) -> Iterator[h5py.File]:
    """Open a validated window file for small edits (split/fold columns), made on a copy
    that replaces the file once complete. HDF5 has no journal: edits written into the file
    itself and interrupted (Ctrl-C between two columns, kill -9, a full disk) left it with
    a new split column over its old folds, or a split column no command could read."""
    path = Path(path)
    open_h5(path).close()
    target = path.resolve()  # through a symbolic link: the file it names is replaced
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = _lock_exclusively(target, path)
    try:
        # The copies earlier updates killed outright left, each as large as the file.
        remove_stale_temporaries(target)
        try:
            shutil.copyfile(target, tmp)
            shutil.copymode(target, tmp)
            fh = h5py.File(tmp, "r+", rdcc_nbytes=RAW_CACHE_BYTES)
        except BaseException as exc:  # a full disk, or Ctrl-C while copying
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise DataError(f"cannot update {path}: {write_failure(exc)}") from None
            raise
        try:
            try:
                yield fh
                finish_h5(fh, path)
                replace_durably(tmp, target)
            except (OSError, RuntimeError) as exc:  # a write that failed (a full disk)
                raise DataError(f"cannot update {path}: {write_failure(exc)}") from None
        except BaseException:
            discard_h5(fh, tmp)
            raise
    finally:
        os.close(fd)


def _replace_column(fh: h5py.File, name: str, values: np.ndarray, dtype: Any) -> None:
    """Write a whole per-window column; one of another type (a hand-written file's
    fixed-length strings, which h5py cannot convert, or int8 folds) is made anew as the
    writer makes it."""
    ds = fh[name]
    if ds.dtype != dtype:
        del fh[name]
        fh.create_dataset(name, data=values, dtype=dtype, maxshape=(None,), chunks=(4096,))
    else:
        ds[:] = values


def write_assignments(
    path: str | Path,
    split: np.ndarray | None,
    fold: np.ndarray | None,
    fold_assignment: Mapping[str, Any] | None = None,
) -> None:
    """Overwrite the per-window split and/or fold columns of an existing file. New folds
    are recorded in the provenance as ``fold_assignment`` (how they were made, e.g. ``{"folds":
    4, "seed": 0, "join_shared": true}``), so that a file whose folds were reassigned is not
    taken for the importer's; without it, new folds drop an older record."""
    with update_in_place(path) as fh:
        n = _attr_number(fh, path, "n_windows", int)
        if split is not None:
            split = np.asarray(split).astype(str)
            if split.shape != (n,):
                raise DataError(f"split has shape {split.shape}, expected ({n},)")
            bad = sorted({str(v) for v in split} - {*SPLITS, ""})
            if bad:
                raise DataError(f"split values must be train, val, test or empty, got {bad}")
            _replace_column(fh, "split", split.astype(object), _STR)
        if fold is not None:
            fold = np.asarray(fold)
            if fold.shape != (n,):
                raise DataError(f"fold has shape {fold.shape}, expected ({n},)")
            _check_folds(fold)
            _replace_column(fh, "fold", fold.astype(np.int16), np.dtype(np.int16))
            provenance = json.loads(fh.attrs.get("provenance", "{}"))
            provenance.pop("fold_assignment", None)
            if fold_assignment is not None:
                provenance["fold_assignment"] = dict(fold_assignment)
            fh.attrs["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
