"""The predictions file: a model's reconstructed windows in physical units, with the ids
needed to score them with any tool (``innpar eval --save-predictions``, ``innpar reconstruct``
on a window file).

Layout (schema ``innpar-freia.predictions``, version 1)::

    /                attrs: schema, schema_version, fs (Hz), window_length, n_windows,
                            direction ("ppg2abp" | "abp2ppg"), units, checkpoint, data,
                            split, calibration, created_utc, package_version
    /window_id       (N,)   str, the window file's window ids
    /subject         (N,)   str
    /start           (N,)   int64, first sample of the window in its recording (-1 unknown)
    /index           (N,)   int64, row of the window in the source window file
    /prediction      (N, L) float32: ABP in mmHg (ppg2abp) or z-scored PPG (abp2ppg)
    /reference       (N, L) float32, optional: the reference signal in the same units
    /calibrated      (N, L) float32, optional: prediction after the calibrated protocol
    /scored          (N,)   bool, optional: windows the calibrated protocol scores (False
                            for each subject's calibration window)
    /ppg_inverse     (N, L) float32, optional: z-scored PPG from ABP by the reverse pass
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from innpar_freia import __version__
from innpar_freia.data.store import (
    create_h5,
    discard_h5,
    finish_h5,
    h5_open_error,
    write_failure,
)
from innpar_freia.errors import DataError, option
from innpar_freia.outputs import remove_stale_temporaries, replace_durably

SCHEMA = "innpar-freia.predictions"
SCHEMA_VERSION = 1
_STR = h5py.string_dtype(encoding="utf-8")
_OPTIONAL_2D = ("reference", "calibrated", "ppg_inverse")
# Windows written or read at once (a multiple of the datasets' 64-row chunks): 4096 windows
# of 625 samples are 20 MB in float64 for each dataset.
BLOCK = 4096


@dataclass
class PredictionFile:
    """The contents of a predictions file (arrays as float64)."""

    path: Path
    attrs: dict[str, Any]
    window_id: np.ndarray
    subject: np.ndarray
    start: np.ndarray
    index: np.ndarray
    prediction: np.ndarray
    reference: np.ndarray | None = None
    calibrated: np.ndarray | None = None
    scored: np.ndarray | None = None
    ppg_inverse: np.ndarray | None = None

    @property
    def fs(self) -> float:
        return float(self.attrs["fs"])

    @property
    def units(self) -> str:
        return str(self.attrs.get("units", ""))


def write_predictions(
    path: str | Path,
    *,
    fs: float,
    window_id: np.ndarray,
    subject: np.ndarray,
    prediction: np.ndarray,
    start: np.ndarray | None = None,
    index: np.ndarray | None = None,
    direction: str = "ppg2abp",
    reference: np.ndarray | None = None,
    calibrated: np.ndarray | None = None,
    scored: np.ndarray | None = None,
    ppg_inverse: np.ndarray | None = None,
    attrs: dict[str, Any] | None = None,
) -> Path:
    """Write a predictions file atomically (temporary name, then rename)."""
    path = Path(path)
    prediction = np.asarray(prediction)
    if prediction.ndim != 2:
        raise ValueError(f"prediction must be (windows, samples), got {prediction.shape}")
    n, length = prediction.shape
    columns = {
        "window_id": np.asarray(window_id).astype(str),
        "subject": np.asarray(subject).astype(str),
        "start": np.full(n, -1) if start is None else np.asarray(start),
        "index": np.arange(n) if index is None else np.asarray(index),
    }
    for name, values in columns.items():
        if values.shape != (n,):
            raise ValueError(f"{name} has shape {values.shape}, expected ({n},)")
    extra = {"reference": reference, "calibrated": calibrated, "ppg_inverse": ppg_inverse}
    for name, values in extra.items():
        if values is not None and np.shape(values) != (n, length):
            raise ValueError(f"{name} has shape {np.shape(values)}, expected ({n}, {length})")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)  # of writes killed outright
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fh = create_h5(tmp, path)
    try:
        a = fh.attrs
        a["schema"] = SCHEMA
        a["schema_version"] = SCHEMA_VERSION
        a["fs"] = float(fs)
        a["window_length"] = int(length)
        a["n_windows"] = int(n)
        a["direction"] = direction
        a["units"] = "mmHg" if direction == "ppg2abp" else "z-scored PPG"
        a["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        a["package_version"] = __version__
        for key, value in (attrs or {}).items():
            a[key] = "" if value is None else value
        for name in ("window_id", "subject"):
            fh.create_dataset(name, data=columns[name].astype(object), dtype=_STR)
        fh.create_dataset("start", data=columns["start"].astype(np.int64))
        fh.create_dataset("index", data=columns["index"].astype(np.int64))
        big = {"prediction": prediction, **extra}
        for name, values in big.items():
            if values is None:
                continue
            values = np.asarray(values)
            dataset = fh.create_dataset(
                name,
                shape=(n, length),
                dtype=np.float32,
                chunks=(min(64, max(1, n)), length),
                compression="gzip",
                compression_opts=4,
                shuffle=True,
            )
            # A block of rows at a time: a float32 copy of the whole array would be half
            # its memory again (1 GB for 100k float64 windows of 625 samples).
            for s in range(0, n, BLOCK):
                dataset[s : s + BLOCK] = np.asarray(values[s : s + BLOCK], np.float32)
        if scored is not None:
            scored = np.asarray(scored, dtype=bool)
            if scored.shape != (n,):
                raise ValueError(f"scored has shape {scored.shape}, expected ({n},)")
            fh.create_dataset("scored", data=scored)
        finish_h5(fh, path)
        replace_durably(tmp, path)
    except (OSError, RuntimeError) as exc:  # a full disk while h5py writes the datasets
        raise DataError(f"cannot write {path}: {write_failure(exc)}") from None
    finally:
        discard_h5(fh, tmp)  # once renamed, nothing is left to discard
    return path


def read_predictions(path: str | Path) -> PredictionFile:
    """Read a predictions file, with a clear error for anything else. It holds every window
    in memory as float64 (5 KB a window of 625 samples for each 2-D dataset):
    :class:`PredictionReader` reads a large file a block of windows at a time."""
    path = Path(path)
    fh, attrs = _open(path)
    with fh:

        def read(name: str) -> np.ndarray:
            return _as_read(name, fh[name][:])

        opt = {name: read(name) if name in fh else None for name in _OPTIONAL_2D}
        return PredictionFile(
            path=path,
            attrs=attrs,
            window_id=read("window_id"),
            subject=read("subject"),
            start=read("start"),
            index=read("index"),
            prediction=read("prediction"),
            scored=read("scored") if "scored" in fh else None,
            **opt,
        )


class PredictionReader:
    """A predictions file open for reading, checked as :func:`read_predictions` checks it,
    whose windows are read a block of :data:`BLOCK` rows at a time (:meth:`blocks`) or a few
    chosen rows at a time (:meth:`rows`), as :func:`read_predictions` gives them (float64
    windows, bool, int64, str): what it holds does not grow with the file's window count.
    Use it in a ``with`` statement, or :meth:`close` it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh, self.attrs = _open(self.path)

    def __enter__(self) -> PredictionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()

    @property
    def fs(self) -> float:
        return float(self.attrs["fs"])

    def __len__(self) -> int:
        """The file's window count."""
        return int(self._fh["prediction"].shape[0])

    def __contains__(self, name: str) -> bool:
        """Whether the file has the (optional) dataset ``name``."""
        return name in self._fh

    def rows(self, name: str, index: np.ndarray | slice) -> np.ndarray:
        """Rows ``index`` (a slice, or increasing row numbers) of dataset ``name``."""
        return _as_read(name, self._fh[name][index])

    def blocks(self, *names: str) -> Iterator[tuple[int, list[np.ndarray]]]:
        """``(first row, [rows of each of names])`` for each block of :data:`BLOCK` rows in
        turn, the last one shorter."""
        block = BLOCK  # read when called: tests make it small
        for first in range(0, len(self), block):
            rows = slice(first, min(first + block, len(self)))
            yield first, [self.rows(name, rows) for name in names]


def _open(path: Path) -> tuple[h5py.File, dict[str, Any]]:
    """``path`` open for reading and its attributes (str, not bytes), once it is known to
    be a predictions file with what every reader relies on; one message otherwise."""
    if not path.is_file():
        raise DataError(f"predictions file not found: {path}")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise h5_open_error(path, exc) from None
    try:
        schema = fh.attrs.get("schema")
        schema = schema.decode() if isinstance(schema, bytes) else schema
        if schema != SCHEMA:
            raise DataError(
                f"{path} is not an innpar-freia predictions file (schema {schema!r}, expected "
                f"{SCHEMA!r}); write one with "
                + option(
                    "'innpar eval --save-predictions FILE'",
                    "write_predictions (or 'innpar eval --save-predictions FILE')",
                )
            )
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in fh.attrs.items()}
        _validate(fh, path, attrs)
    except BaseException:
        fh.close()
        raise
    return fh, attrs


def _as_read(name: str, values: np.ndarray) -> np.ndarray:
    """Values read from dataset ``name`` as the readers give them."""
    if name in ("window_id", "subject"):
        return np.array(
            [v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object
        )
    if name in ("start", "index"):
        return values.astype(np.int64)
    if name == "scored":
        return values.astype(bool)
    return values.astype(np.float64)


_REQUIRED_1D = ("window_id", "subject", "start", "index")


def _validate(fh: h5py.File, path: Path, attrs: dict[str, Any]) -> None:
    """The datasets and attributes every reader relies on, with matching shapes; a damaged
    or hand-edited file is one message naming what is wrong, not a KeyError in a plot."""
    missing = [n for n in ("prediction", *_REQUIRED_1D) if not isinstance(fh.get(n), h5py.Dataset)]
    if missing:
        raise DataError(f"{path} is damaged: it has no {', '.join(missing)} dataset(s)")
    shape = fh["prediction"].shape
    if len(shape) != 2 or shape[1] == 0:
        raise DataError(f"{path}: 'prediction' has shape {shape}, expected (windows, samples)")
    for name in _REQUIRED_1D:
        if fh[name].shape != (shape[0],):
            raise DataError(
                f"{path}: {name!r} has shape {fh[name].shape}, expected ({shape[0]},) like "
                "'prediction'"
            )
    for name in _OPTIONAL_2D:
        if name in fh and fh[name].shape != shape:
            raise DataError(
                f"{path}: {name!r} has shape {fh[name].shape}, but 'prediction' has {shape}"
            )
    if "scored" in fh and fh["scored"].shape != (shape[0],):
        raise DataError(f"{path}: 'scored' has shape {fh['scored'].shape}, expected ({shape[0]},)")
    try:
        fs = float(attrs["fs"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path} is damaged: no sampling rate (attribute 'fs')") from None
    if not (np.isfinite(fs) and fs > 0):
        raise DataError(f"{path}: sampling rate fs must be a positive number, but is {fs}")
