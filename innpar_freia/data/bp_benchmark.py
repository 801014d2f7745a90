"""bp-benchmark fold files (``signal_fold_<k>.mat``, MAT 5 or v7.3) -> window file."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.config import MIN_WINDOW_LENGTH
from innpar_freia.data.import_report import (
    DEFAULT_FS,
    ImportReport,
    Progress,
    SourceReport,
    abp_units_warning,
    check_output,
    heart_rate_warning,
    provenance,
    refuse_input_as_output,
    repeated_ids_warning,
    shared_subjects_warning,
    start_from_id,
    summarise,
)
from innpar_freia.data.limits import IMPORT_RANGES, check_in_range
from innpar_freia.data.matfile import load_mat
from innpar_freia.data.qc import constant_rows
from innpar_freia.data.store import FOLD_MAX, WindowWriter, storable
from innpar_freia.errors import DataError, check_flag, option

FOLD_FILE = re.compile(r"^signal_fold_(\d+)\.mat$", re.IGNORECASE)


def _fold_files(path: Path) -> list[tuple[int, Path]]:
    if path.is_file():
        m = FOLD_FILE.match(path.name)
        if not m:
            raise DataError(f"{path} is not named signal_fold_<k>.mat, so its fold is unknown")
        if int(m.group(1)) > FOLD_MAX:
            raise DataError(f"{path}: fold numbers go up to {FOLD_MAX}")
        return [(int(m.group(1)), path)]
    if not path.is_dir():
        raise DataError(f"bp-benchmark folder not found: {path}")
    found = sorted((int(m.group(1)), p) for p in path.iterdir() if (m := FOLD_FILE.match(p.name)))
    if not found:
        others = sorted(p.name for p in path.glob("*.mat"))
        hint = f" (it has {', '.join(others[:5])})" if others else ""
        raise DataError(f"{path} has no signal_fold_<k>.mat files{hint}")
    folds = [k for k, _ in found]
    too_large = [p.name for k, p in found if k > FOLD_MAX]
    if too_large:
        raise DataError(f"{path}: fold numbers go up to {FOLD_MAX}, not as in {too_large[0]}")
    if len(set(folds)) != len(folds):
        raise DataError(f"{path} has two files for the same fold: {[p.name for _, p in found]}")
    return found


def _text_column(values: np.ndarray, n: int, name: str, where: Path) -> np.ndarray:
    """A per-window text column (patient, trial) from strings or numbers."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise DataError(
                f"{where}: column {name!r} must hold one value per window, but has shape "
                f"{arr.shape}"
            )
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise DataError(
                f"{where}: column {name!r} has {int((~np.isfinite(arr)).sum())} missing (NaN "
                "or inf) values; every window needs one"
            )
        arr = np.array([str(int(v)) if float(v).is_integer() else repr(float(v)) for v in arr])
    arr = arr.reshape(-1)
    if arr.shape != (n,):
        raise DataError(f"{where}: column {name!r} has {arr.size} values, expected {n}")
    out = np.array([str(v).strip() for v in arr], dtype=object)
    # A cell array's numbers arrive as text: NaN and inf (MATLAB's missing value) as
    # "nan"/"inf", which would pool every window without an id into one "subject".
    missing = sum(v.lower() in ("nan", "inf", "-inf") for v in out)
    if missing:
        raise DataError(
            f"{where}: column {name!r} has {missing} missing (NaN or inf) values; every "
            "window needs one"
        )
    if name == "patient" and any(not v for v in out):
        raise DataError(f"{where}: column 'patient' has empty subject ids")
    return out


def _bp_columns(cols: dict[str, np.ndarray], where: Path) -> dict[str, Any]:
    if "abp_signal" not in cols:
        if "signal" in cols:
            raise DataError(
                f"{where} has no ABP waveform (no 'abp_signal' variable): it looks like "
                "PPGBP, which has only SBP/DBP labels, so it cannot train PPG-to-ABP "
                "reconstruction"
            )
        raise DataError(
            f"{where} is not in the bp-benchmark layout: it has no 'signal' (PPG) and "
            f"'abp_signal' (ABP) variables; variables: {', '.join(sorted(cols)) or 'none'}"
        )
    if "signal" not in cols:
        raise DataError(f"{where} has an ABP waveform but no PPG waveform ('signal')")
    ppg, abp = np.asarray(cols["signal"]), np.asarray(cols["abp_signal"])
    for name, arr in (("signal", ppg), ("abp_signal", abp)):
        if arr.ndim != 2 or arr.dtype.kind not in "biuf":
            raise DataError(
                f"{where}: {name!r} must be a numeric (windows, samples) matrix, "
                f"got {arr.dtype} of shape {arr.shape}"
            )
    if ppg.shape != abp.shape:
        raise DataError(
            f"{where}: PPG ('signal') has shape {ppg.shape} but ABP ('abp_signal') has "
            f"shape {abp.shape}; they must match window by window"
        )
    n = ppg.shape[0]
    if n == 0:
        raise DataError(f"{where} holds no windows")
    if "patient" not in cols:
        raise DataError(f"{where} has no 'patient' column, so windows cannot be split by subject")
    per_window = np.asarray(cols["patient"]).size
    if per_window != n and per_window == ppg.shape[1]:
        # Saved as (samples, windows), the error was "column 'patient' has 1195 values,
        # expected 625", which named the column that was right.
        raise DataError(
            f"{where}: 'signal' and 'abp_signal' look transposed: their shape is {ppg.shape}, "
            f"but 'patient' has {per_window} values, one per window, so the windows are their "
            "columns; save them as (windows, samples) matrices"
        )
    subjects = _text_column(cols["patient"], n, "patient", where)
    trials = (
        _text_column(cols["trial"], n, "trial", where)
        if "trial" in cols
        else np.array([f"{s}_{i:06d}" for i, s in enumerate(subjects)], dtype=object)
    )
    reference, ignored = {}, []
    for name, values in sorted(cols.items()):
        if name in ("signal", "abp_signal", "patient", "trial"):
            continue
        arr = np.asarray(values)
        if arr.dtype.kind == "O" and arr.shape == (n,):
            reference[name] = arr.astype(str)
        elif arr.dtype.kind in "biuf" and arr.size == n and (arr.ndim == 1 or 1 in arr.shape):
            reference[name] = arr.reshape(-1).astype(np.float64)
        else:
            ignored.append(f"{name} {arr.shape}")
    return {
        "ppg": ppg,
        "abp": abp,
        "subjects": subjects,
        "trials": trials,
        "has_trial": "trial" in cols,
        "reference": reference,
        "ignored": ignored,
    }


def import_bp_benchmark(
    path: str | Path,
    out: str | Path,
    *,
    fs: float | None = None,
    description: str = "",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import bp-benchmark fold files ``signal_fold_<k>.mat`` (MAT 5 or v7.3).

    ``signal`` (PPG) and ``abp_signal`` (ABP, mmHg) become the windows; ``patient`` (space
    padding stripped) the subject; ``trial`` the window id (its trailing ``_<digits>``, if
    any, the start sample); ``k`` the fold. ``SP``, ``DP`` and every other per-window
    column (demographics) are kept as reference fields. Windows with NaN are rejected and
    counted (reason ``non_finite``), and so are windows whose PPG or ABP is one constant
    value (``constant``: a flat PPG cannot be z-scored). ``fs`` (Hz) is not stored in the
    layout: 125 Hz when not given, which is what bp-benchmark distributes.

    Raises:
        DataError: no fold files, a file without ABP waveform (PPGBP), unreadable or
            inconsistent files; nothing is written then.
    """
    overwrite = check_flag("overwrite", overwrite)
    if fs is not None:  # the CLI's range: the Python API goes without its option types
        fs = check_in_range("fs", fs, IMPORT_RANGES)
    t0 = time.monotonic()
    path, out = Path(path), check_output(out, overwrite)
    progress = progress or Progress()
    files = _fold_files(path)
    refuse_input_as_output(out, [f for _, f in files])
    fs_source = "option" if fs is not None else "default"
    fs = DEFAULT_FS if fs is None else fs
    report = ImportReport("bp-benchmark", str(path), str(out), fs, fs_source, 0)
    if fs_source == "default":
        report.warnings.append(
            f"the bp-benchmark layout does not store the sampling rate; assumed {fs:g} Hz "
            f"(pass {option('--fs', 'fs=HZ')} if the windows are at another rate)"
        )
    subjects_all: list[str] = []
    folds_all: list[int] = []
    reference_names: dict[str, str] | None = None
    writer: WindowWriter | None = None
    progress.start(len(files), "bp-benchmark folds")
    try:
        for fold, file in files:
            cols = _bp_columns(load_mat(file), file)
            length = cols["ppg"].shape[1]
            if length == 0:
                raise DataError(f"{file}: its windows have no samples")
            if length < MIN_WINDOW_LENGTH:  # the writer's message names no file
                raise DataError(
                    f"{file}: its windows have {length} samples; windows need at least "
                    f"{MIN_WINDOW_LENGTH}, the shortest the network takes"
                )
            kinds = {k: v.dtype.kind for k, v in cols["reference"].items()}
            if writer is None:
                report.window_length = length
                reference_names = kinds
                writer = WindowWriter(
                    out,
                    fs=fs,
                    window_length=length,
                    source_format="bp-benchmark",
                    ppg_units="a.u.",
                    abp_units="mmHg",
                    description=description or f"bp-benchmark folds imported from {path}",
                    overwrite=overwrite,
                    repeated_ids=True,  # the source may repeat ids: warned of below
                )
            elif length != report.window_length:
                raise DataError(
                    f"{file} has windows of {length} samples, but {files[0][1].name} has "
                    f"{report.window_length}; all folds must have the same window length"
                )
            elif kinds != reference_names:
                raise DataError(
                    f"{file} has columns {sorted(kinds)} but {files[0][1].name} has "
                    f"{sorted(reference_names or {})}; all folds must have the same columns"
                )
            storable_rows = storable(cols["ppg"], axis=1) & storable(cols["abp"], axis=1)
            constant = np.zeros_like(storable_rows)
            constant[storable_rows] = constant_rows(cols["ppg"][storable_rows]) | constant_rows(
                cols["abp"][storable_rows]
            )
            # "finite": the windows kept (the name the code below has always used).
            finite = storable_rows & ~constant
            src = SourceReport(
                id=file.stem,
                path=str(file),
                fold=fold,
                windows_total=len(finite),
                windows_kept=int(finite.sum()),
            )
            if not storable_rows.all():
                src.rejected["non_finite"] = int((~storable_rows).sum())
            if constant.any():
                src.rejected["constant"] = int(constant.sum())
            if not finite.any():
                raise DataError(
                    f"{file}: every window contains NaN or infinite values or is a constant "
                    "line (PPG or ABP)"
                )
            if cols["ignored"]:
                report.warnings.append(f"{file.name}: ignored columns {', '.join(cols['ignored'])}")
            if not cols["has_trial"]:
                report.warnings.append(f"{file.name}: no 'trial' column; window ids generated")
            warning = abp_units_warning(cols["abp"][finite], str(file))
            if warning:
                report.warnings.append(warning)
            trials = cols["trials"][finite]
            writer.append(
                cols["ppg"][finite],
                cols["abp"][finite],
                subject=cols["subjects"][finite],
                window_id=trials,
                fold=fold,
                # Generated ids end in the row number, not a start sample: unknown (-1).
                start=np.array(
                    [start_from_id(t) if cols["has_trial"] else -1 for t in trials],
                    dtype=np.int64,
                ),
                reference={k: v[finite] for k, v in cols["reference"].items()},
            )
            subjects_all.extend(cols["subjects"][finite])
            folds_all.extend([fold] * int(finite.sum()))
            report.sources.append(src)
            progress.advance(file.name)
            del cols
        if writer is None:  # pragma: no cover - _fold_files returns at least one file
            raise DataError(f"{path} has no fold files")
        warning = shared_subjects_warning(subjects_all, folds_all, "folds")
        if warning:
            report.warnings.append(warning)
        warning = repeated_ids_warning(writer)
        if warning:
            report.warnings.append(warning)
        warning = heart_rate_warning(
            writer.fh["abp"],
            fs,
            option("given with --fs", "given with fs") if fs_source == "option" else "assumed",
        )
        if warning:
            report.warnings.append(warning)
        summarise(report, subjects_all, folds_all, [])
        report.seconds = time.monotonic() - t0
        writer.set_provenance(
            provenance(report, [p for _, p in files], path, {"fs": fs, "fs_source": fs_source})
        )
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        progress.finish()
    report.seconds = time.monotonic() - t0
    return report
