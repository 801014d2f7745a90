"""Read the variables of a MATLAB file, v4/v5/v7 (scipy) or v7.3 (HDF5, h5py), the same way.

bp-benchmark writes its folds with ``scipy.io.savemat`` (MAT 5), but files re-saved from
MATLAB with ``-v7.3`` are HDF5 with MATLAB's own conventions: arrays stored transposed
(column-major), char arrays as ``uint16`` code points, cell arrays as object references,
and a ``MATLAB_class`` attribute on every dataset. Both come back here as numpy arrays in
MATLAB's row/column orientation: numeric ``(rows, cols)`` arrays, and text columns as 1-D
object arrays of Python strings with MATLAB's space padding removed.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.errors import DataError

# Variables written by MATLAB/scipy that are not data.
_META = ("__header__", "__version__", "__globals__", "#refs#", "#subsystem#")
_NUMERIC_CLASSES = {
    "double",
    "single",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "logical",
}


def is_v73(path: Path) -> bool:
    """True for a MATLAB v7.3 (HDF5) file, judged by its header and HDF5 signature. An HDF5
    file without MATLAB's header (written with h5py, or an innpar-freia window file) is a
    ``DataError``: MATLAB stores arrays transposed and such a file may not, so reading it
    either way would be a guess (h5py's (windows, samples) read as MATLAB's came out as
    "column 'patient' has 40 values, expected 625")."""
    import h5py

    with path.open("rb") as fh:
        head = fh.read(128)
    if b"MATLAB 7.3" in head:
        return True
    if h5py.is_hdf5(str(path)):
        raise DataError(
            f"{path} is an HDF5 file without MATLAB's v7.3 header, not a MATLAB file: write "
            "it with MATLAB (save -v7.3), hdf5storage.savemat or scipy.io.savemat (an "
            "innpar-freia window file needs no import)"
        )
    return False


def load_mat(path: str | Path, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Variables of a MATLAB file as numpy arrays (all of them, or only ``names``).

    Numeric variables keep their MATLAB shape ``(rows, cols)``. Char matrices and cell
    arrays of strings become 1-D object arrays of stripped strings, one per row.

    Raises:
        DataError: the file is missing, truncated, corrupt or holds a variable type that
            cannot be converted (MATLAB ``string`` objects, structs); the message names it.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a MATLAB file")
    if not path.is_file():
        raise DataError(f"MATLAB file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes)")
    wanted = None if names is None else list(names)
    if is_v73(path):
        return _load_v73(path, wanted)
    return _load_v5(path, wanted)


def _load_v5(path: Path, names: list[str] | None) -> dict[str, np.ndarray]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        raw = loadmat(str(path), variable_names=names, chars_as_strings=True)
    except NotImplementedError as exc:  # scipy's answer to v7.3 files it cannot read
        raise DataError(f"{path}: {exc}") from None
    # IndexError and KeyError: what scipy raises on a header cut short or a mangled tag.
    except (
        MatReadError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        OSError,
        EOFError,
        zlib.error,
    ) as exc:
        raise DataError(
            f"{path} is not a readable MATLAB file (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    out = {}
    for key, value in raw.items():
        if key in _META:
            continue
        out[key] = _convert_v5(value, path, key)
    return out


def _convert_v5(value: Any, path: Path, key: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        # savemat of strings gives an (N, 1) array of space-padded, equal-length strings.
        return np.array([s.rstrip() for s in arr.reshape(-1)], dtype=object)
    if arr.dtype.kind == "O":
        # A cell array: every element must itself be a string or a scalar.
        flat = arr.reshape(-1)
        return np.array([_cell_text(v, path, key) for v in flat], dtype=object)
    if arr.dtype.kind in "biuf":
        return arr
    raise DataError(
        f"{path}: variable {key!r} has MATLAB type {arr.dtype} that cannot be read as a "
        "column (structs and objects are not supported)"
    )


def _cell_text(value: Any, path: Path, key: str) -> str:
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return "".join(arr.reshape(-1)).rstrip()
    if arr.dtype.kind in "biuf" and arr.size == 1:
        return _number_text(arr.reshape(-1)[0])
    if arr.size == 0:
        return ""
    raise DataError(f"{path}: cell array {key!r} holds a {arr.dtype} of shape {arr.shape}")


def _number_text(x: Any) -> str:
    x = float(x)
    return str(int(x)) if np.isfinite(x) and x == int(x) else repr(x)


def _load_v73(path: Path, names: list[str] | None) -> dict[str, np.ndarray]:
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(
            f"{path} looks like a MATLAB v7.3 (HDF5) file but cannot be opened "
            f"(truncated or corrupt?): {exc}"
        ) from None
    with fh:
        keys = [k for k in fh.keys() if k not in _META] if names is None else names
        out = {}
        for key in keys:
            if key not in fh:
                continue
            node = fh[key]
            if not isinstance(node, h5py.Dataset):
                raise DataError(
                    f"{path}: variable {key!r} is a MATLAB struct/group, expected an array"
                )
            try:
                out[key] = _convert_v73(fh, node, path, key)
            except (OSError, KeyError, RuntimeError) as exc:
                raise DataError(
                    f"{path}: variable {key!r} cannot be read (truncated or corrupt?): {exc}"
                ) from None
        return out


def _matlab_class(node: Any) -> str:
    cls = node.attrs.get("MATLAB_class", b"double")
    return cls.decode() if isinstance(cls, bytes) else str(cls)


def _convert_v73(fh: Any, node: Any, path: Path, key: str) -> np.ndarray:
    cls = _matlab_class(node)
    if node.attrs.get("MATLAB_empty", 0):
        return np.empty((0, 0))
    data = node[()]
    if cls == "char":
        # (chars, rows) uint16 code points -> one string per MATLAB row.
        codes = np.atleast_2d(np.asarray(data)).T
        return np.array(["".join(map(chr, row)).rstrip(" \x00") for row in codes], dtype=object)
    if cls == "cell":
        refs = np.atleast_2d(np.asarray(data)).T.reshape(-1)
        return np.array([_cell_text_v73(fh[r], path, key) for r in refs], dtype=object)
    if cls in _NUMERIC_CLASSES:
        arr = np.asarray(data)
        if arr.dtype.names:  # complex numbers are stored as a (real, imag) compound
            raise DataError(f"{path}: variable {key!r} is complex, expected real numbers")
        return arr.T if arr.ndim == 2 else arr
    raise DataError(
        f"{path}: variable {key!r} has MATLAB class {cls!r}, which cannot be read as a column "
        "(save text as char arrays or cell arrays of char, not string objects)"
    )


def _cell_text_v73(node: Any, path: Path, key: str) -> str:
    cls = _matlab_class(node)
    if node.attrs.get("MATLAB_empty", 0):
        return ""
    data = np.asarray(node[()])
    if cls == "char":
        return "".join(map(chr, data.T.reshape(-1))).rstrip(" \x00")
    if cls in _NUMERIC_CLASSES and data.size == 1:
        return _number_text(data.reshape(-1)[0])
    raise DataError(f"{path}: cell array {key!r} holds a {cls} of shape {data.shape}")
