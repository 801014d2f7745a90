"""Import windows from the formats researchers have into the canonical HDF5 window file.

Window formats are stored as they are (no resampling, no quality control, since their
authors already chose the windows): ``bp-benchmark`` fold files and the original
release's ``innpar-npy`` folders. Recording formats (``wfdb``, ``csv``, ``npz``) go
through one pipeline (:mod:`innpar_freia.data.windowing`): resample, align PPG to ABP,
cut windows and quality-check each of them. Every importer returns an
:class:`ImportReport` of what was kept and rejected and why, and writes the same facts,
with the sha256 of every input file and the options used, into the file's provenance.
Files are written atomically: on any error no output file is left behind.
"""

from __future__ import annotations

import csv
import hashlib
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.data.matfile import load_mat
from innpar_freia.data.store import WindowWriter
from innpar_freia.errors import DataError

FORMATS = ("bp-benchmark", "innpar-npy", "wfdb", "csv", "npz")
WINDOW_FORMATS = ("bp-benchmark", "innpar-npy")
# Every dataset bp-benchmark distributes (Sensors, BCG, UCI, PPGBP) is at 125 Hz, and so
# are the original INN-PAR release's windows; neither layout stores the rate.
DEFAULT_FS = 125.0
FOLD_FILE = re.compile(r"^signal_fold_(\d+)\.mat$", re.IGNORECASE)
# A trailing ``_<digits>`` of a window id is its start sample (bp-benchmark's trial ids).
START_SUFFIX = re.compile(r"_(\d+)$")
# The original release names windows ``<subject>_<start>``.
DEFAULT_SUBJECT_PATTERN = r"^(?P<subject>.+)_(?P<start>\d+)$"
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}


class Progress:
    """Progress of an import, one step per input unit (file or record). Silent here; the
    CLI passes a subclass that draws a bar on a terminal."""

    def start(self, total: int, label: str) -> None:
        """Called once before the first unit."""

    def advance(self, item: str) -> None:
        """Called after each unit."""

    def finish(self) -> None:
        """Called once at the end, also on errors."""


@dataclass
class SourceReport:
    """What happened to one input unit: a fold file, a window pair or a recording."""

    id: str
    path: str
    subject: str | None = None
    status: str = "kept"  # "kept" or "rejected"
    reason: str | None = None  # rejection code of the whole unit
    detail: str = ""
    fold: int | None = None
    lag_samples: int | None = None
    lag_seconds: float | None = None
    windows_total: int = 0
    windows_kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ""}


@dataclass
class ImportReport:
    """The outcome of an import: counts, reasons, and where the file went."""

    format: str
    source: str
    out: str
    fs: float
    fs_source: str
    window_length: int
    sources: list[SourceReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_subjects: int = 0
    folds: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def windows_kept(self) -> int:
        return sum(s.windows_kept for s in self.sources)

    @property
    def windows_rejected(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for s in self.sources:
            total.update(s.rejected)
        return dict(sorted(total.items()))

    @property
    def records_rejected(self) -> dict[str, int]:
        return dict(sorted(Counter(s.reason for s in self.sources if s.status != "kept").items()))

    def to_dict(self) -> dict[str, Any]:
        rejected = self.windows_rejected
        n_rejected_sources = sum(1 for s in self.sources if s.status != "kept")
        return {
            "format": self.format,
            "source": self.source,
            "out": self.out,
            "fs": self.fs,
            "fs_source": self.fs_source,
            "window_length": self.window_length,
            "windows": {
                "kept": self.windows_kept,
                "rejected": sum(rejected.values()),
                "rejected_by_reason": rejected,
            },
            "records": {
                "total": len(self.sources),
                "kept": len(self.sources) - n_rejected_sources,
                "rejected": n_rejected_sources,
                "rejected_by_reason": self.records_rejected,
            },
            "n_subjects": self.n_subjects,
            "folds": self.folds,
            "splits": self.splits,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
            "sources": [s.to_dict() for s in self.sources],
        }


# ----------------------------------------------------------------------------- helpers


def sha256_file(path: str | Path, block: int = 2**20) -> str:
    """Hex sha256 of a file's bytes, read a block at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def check_output(out: str | Path, overwrite: bool) -> Path:
    """Fail before any work when the output cannot be written (same rules as the writer)."""
    out = Path(out)
    if out.is_dir():
        raise DataError(f"output {out} is a directory; give a file name such as data.h5")
    if out.exists() and not overwrite:
        raise DataError(f"output file {out} already exists; choose another name or use --force")
    if not out.parent.exists():
        raise DataError(f"output directory {out.parent} does not exist")
    return out


def start_from_id(window_id: str) -> int:
    """The start sample encoded as a trailing ``_<digits>`` of a window id, else -1."""
    m = START_SUFFIX.search(window_id)
    return int(m.group(1)) if m else -1


def read_subject_map(path: str | Path) -> dict[str, str]:
    """A CSV with a header naming a key column (``record``, ``window`` or ``name``) and a
    ``subject`` column; other columns are ignored."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"subject map not found: {path}")
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from None
    if not rows:
        raise DataError(f"subject map {path} has no rows")
    columns = [c.strip() for c in rows[0]]
    key = next((c for c in ("record", "window", "name", "id") if c in columns), None)
    if key is None or "subject" not in columns:
        raise DataError(
            f"subject map {path} needs a 'subject' column and a key column named record, "
            f"window, name or id; it has: {', '.join(columns)}"
        )
    out: dict[str, str] = {}
    for i, row in enumerate(rows):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        name, subject = row[key], row["subject"]
        if not name or not subject:
            raise DataError(f"subject map {path}: row {i + 2} has an empty {key} or subject")
        if out.get(name, subject) != subject:
            raise DataError(f"subject map {path}: {name!r} is mapped to two subjects")
        out[name] = subject
    return out


def _summarise(report: ImportReport, subjects: list[str], folds: list[int], splits: list[str]):
    report.n_subjects = len(set(subjects))
    report.folds = {str(k): v for k, v in sorted(Counter(f for f in folds if f >= 0).items())}
    report.splits = {k: v for k, v in sorted(Counter(s for s in splits if s).items())}


def _provenance(report: ImportReport, inputs: Sequence[Path], root: Path, options: dict) -> dict:
    def rel(p: Path) -> str:
        try:
            return p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(p.resolve())

    return {
        "source_format": report.format,
        "source": str(root.resolve()),
        "inputs": [
            {"path": rel(p), "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in inputs
        ],
        "options": options,
        "fs_source": report.fs_source,
        "summary": {k: v for k, v in report.to_dict().items() if k != "sources"},
        "records": [s.to_dict() for s in report.sources],
    }


def _abp_units_warning(abp: np.ndarray, where: str) -> str | None:
    median = float(np.median(abp))
    if not 20.0 <= median <= 250.0:
        return (
            f"{where}: median ABP is {median:.3g}, which is not a blood pressure in mmHg; "
            "ABP must be in mmHg (is it normalised?)"
        )
    return None


# ------------------------------------------------------------------------ bp-benchmark


def _fold_files(path: Path) -> list[tuple[int, Path]]:
    if path.is_file():
        m = FOLD_FILE.match(path.name)
        if not m:
            raise DataError(f"{path} is not named signal_fold_<k>.mat, so its fold is unknown")
        return [(int(m.group(1)), path)]
    if not path.is_dir():
        raise DataError(f"bp-benchmark folder not found: {path}")
    found = sorted((int(m.group(1)), p) for p in path.iterdir() if (m := FOLD_FILE.match(p.name)))
    if not found:
        others = sorted(p.name for p in path.glob("*.mat"))
        hint = f" (it has {', '.join(others[:5])})" if others else ""
        raise DataError(f"{path} has no signal_fold_<k>.mat files{hint}")
    folds = [k for k, _ in found]
    if len(set(folds)) != len(folds):
        raise DataError(f"{path} has two files for the same fold: {[p.name for _, p in found]}")
    return found


def _text_column(values: np.ndarray, n: int, name: str, where: Path) -> np.ndarray:
    """A per-window text column (patient, trial) from strings or numbers."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        arr = np.array([str(int(v)) if float(v).is_integer() else repr(float(v)) for v in arr])
    arr = arr.reshape(-1)
    if arr.shape != (n,):
        raise DataError(f"{where}: column {name!r} has {arr.size} values, expected {n}")
    out = np.array([str(v).strip() for v in arr], dtype=object)
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
    counted (reason ``non_finite``). ``fs`` (Hz) is not stored in the layout: 125 Hz when
    not given, which is what bp-benchmark distributes.

    Raises:
        DataError: no fold files, a file without ABP waveform (PPGBP), unreadable or
            inconsistent files; nothing is written then.
    """
    t0 = time.monotonic()
    path, out = Path(path), check_output(out, overwrite)
    progress = progress or Progress()
    files = _fold_files(path)
    fs_source = "option" if fs is not None else "default"
    fs = DEFAULT_FS if fs is None else float(fs)
    report = ImportReport("bp-benchmark", str(path), str(out), fs, fs_source, 0)
    if fs_source == "default":
        report.warnings.append(
            f"the bp-benchmark layout does not store the sampling rate; assumed {fs:g} Hz "
            "(pass --fs if the windows are at another rate)"
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
            finite = np.isfinite(cols["ppg"]).all(axis=1) & np.isfinite(cols["abp"]).all(axis=1)
            src = SourceReport(
                id=file.stem,
                path=str(file),
                fold=fold,
                windows_total=len(finite),
                windows_kept=int(finite.sum()),
            )
            if not finite.all():
                src.rejected["non_finite"] = int((~finite).sum())
            if not finite.any():
                raise DataError(f"{file}: every window contains NaN or infinite values")
            if cols["ignored"]:
                report.warnings.append(f"{file.name}: ignored columns {', '.join(cols['ignored'])}")
            if not cols["has_trial"]:
                report.warnings.append(f"{file.name}: no 'trial' column; window ids generated")
            warning = _abp_units_warning(cols["abp"][finite], str(file))
            if warning:
                report.warnings.append(warning)
            trials = cols["trials"][finite]
            writer.append(
                cols["ppg"][finite],
                cols["abp"][finite],
                subject=cols["subjects"][finite],
                window_id=trials,
                fold=fold,
                start=np.array([start_from_id(t) for t in trials], dtype=np.int64),
                reference={k: v[finite] for k, v in cols["reference"].items()},
            )
            subjects_all.extend(cols["subjects"][finite])
            folds_all.extend([fold] * int(finite.sum()))
            report.sources.append(src)
            progress.advance(file.name)
            del cols
        if writer is None:  # pragma: no cover - _fold_files returns at least one file
            raise DataError(f"{path} has no fold files")
        _summarise(report, subjects_all, folds_all, [])
        report.seconds = time.monotonic() - t0
        writer.set_provenance(
            _provenance(report, [p for _, p in files], path, {"fs": fs, "fs_source": fs_source})
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


# -------------------------------------------------------------------------- innpar-npy

NPY_BATCH = 1024  # windows read and written at a time: bounded memory for any folder size


def _npy_split_dirs(path: Path) -> list[tuple[str, Path]]:
    """``[(split, folder with ppg/ and abp/)]``: the folder itself (split ""), or its
    train/val/test subfolders."""
    if not path.is_dir():
        raise DataError(f"innpar-npy folder not found: {path}")
    if (path / "ppg").is_dir() or (path / "abp").is_dir():
        for sub in ("ppg", "abp"):
            if not (path / sub).is_dir():
                raise DataError(f"{path} has no {sub}/ folder (the layout is ppg/ and abp/)")
        return [("", path)]
    found = []
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        split = SPLIT_FOLDERS.get(child.name.lower())
        if split and (child / "ppg").is_dir() and (child / "abp").is_dir():
            found.append((split, child))
    if not found:
        raise DataError(
            f"{path} has no ppg/ and abp/ folders (nor train/, val/, test/ subfolders with them)"
        )
    return found


def _npy_pairs(folder: Path) -> list[str]:
    """Sorted window names present in both ``ppg/`` and ``abp/``; a missing partner is an
    error that names it."""
    ppg = {p.stem for p in (folder / "ppg").glob("*.npy")}
    abp = {p.stem for p in (folder / "abp").glob("*.npy")}
    for have, other, names in (("ppg", "abp", ppg - abp), ("abp", "ppg", abp - ppg)):
        if names:
            first = sorted(names)[0]
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            raise DataError(
                f"{folder / other / (first + '.npy')} is missing: {have}/{first}.npy has no "
                f"partner in {other}/{more}"
            )
    if not ppg:
        raise DataError(f"{folder / 'ppg'} holds no .npy files")
    return sorted(ppg)


def _load_window(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(
            f"{path} is not a readable .npy file (truncated or corrupt?): {exc}"
        ) from None
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.dtype.kind not in "biuf":
        raise DataError(
            f"{path} must hold one numeric window of shape (L,) or (1, L), "
            f"got {arr.dtype} of shape {arr.shape}"
        )
    return arr


def _npy_subject(name: str, pattern: re.Pattern[str], mapping: dict[str, str] | None):
    m = pattern.match(name)
    start = -1
    if m and "start" in pattern.groupindex and m.group("start") is not None:
        start = int(m.group("start"))
    if mapping is not None:
        if name not in mapping:
            raise DataError(f"the subject map has no entry for window {name!r}")
        return mapping[name], start
    if not m:
        raise DataError(
            f"window name {name!r} does not match the subject pattern {pattern.pattern!r}; "
            "give --subject-pattern (a regex with a 'subject' group) or --subject-map"
        )
    group = "subject" if "subject" in pattern.groupindex else 1 if pattern.groups else 0
    subject = m.group(group)
    if not subject:
        raise DataError(f"the subject pattern gives an empty subject for window {name!r}")
    return subject, start


def import_innpar_npy(
    path: str | Path,
    out: str | Path,
    *,
    fs: float | None = None,
    subject_pattern: str = DEFAULT_SUBJECT_PATTERN,
    subject_map: str | Path | None = None,
    description: str = "",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the original INN-PAR release's layout: ``ppg/<name>.npy`` and
    ``abp/<name>.npy`` pairs (shape ``(1, L)`` or ``(L,)``; ABP in mmHg), in sorted name
    order, optionally under ``train/``, ``val/``, ``test/`` subfolders (which fill the
    split column).

    The subject of a window is the ``subject`` group of ``subject_pattern`` matched
    against its name (default: ``<subject>_<start>``, the release's naming), or its entry
    in ``subject_map`` (CSV ``window,subject``); a ``start`` group gives the start sample.
    The layout does not store the rate: ``fs`` is 125 Hz when not given, and the report
    says so. Windows with NaN are rejected and counted (reason ``non_finite``).
    """
    t0 = time.monotonic()
    path, out = Path(path), check_output(out, overwrite)
    progress = progress or Progress()
    try:
        pattern = re.compile(subject_pattern)
    except re.error as exc:
        raise DataError(
            f"subject pattern {subject_pattern!r} is not a valid regex: {exc}"
        ) from None
    mapping = read_subject_map(subject_map) if subject_map is not None else None
    groups = [(split, folder, _npy_pairs(folder)) for split, folder in _npy_split_dirs(path)]
    fs_source = "option" if fs is not None else "default"
    fs = DEFAULT_FS if fs is None else float(fs)
    report = ImportReport("innpar-npy", str(path), str(out), fs, fs_source, 0)
    if fs_source == "default":
        report.warnings.append(
            f"the innpar-npy layout does not store the sampling rate; assumed {fs:g} Hz "
            "(pass --fs if the windows are at another rate)"
        )
    total = sum(len(names) for _, _, names in groups)
    writer: WindowWriter | None = None
    inputs: list[Path] = []
    subjects_all: list[str] = []
    splits_all: list[str] = []
    progress.start(total, "innpar-npy windows")
    try:
        for split, folder, names in groups:
            src = SourceReport(id=split or folder.name, path=str(folder))
            report.sources.append(src)
            for b in range(0, len(names), NPY_BATCH):
                ppg, abp, ids, subjects, starts = [], [], [], [], []
                for name in names[b : b + NPY_BATCH]:
                    pair = [folder / "ppg" / f"{name}.npy", folder / "abp" / f"{name}.npy"]
                    p, a = (_load_window(f) for f in pair)
                    if p.shape != a.shape:
                        raise DataError(
                            f"{pair[0]} has {p.size} samples but {pair[1]} has {a.size}; "
                            "PPG and ABP windows must have the same length"
                        )
                    length = report.window_length or p.size
                    if p.size != length:
                        raise DataError(
                            f"{pair[0]} has {p.size} samples, but earlier windows have {length}"
                        )
                    report.window_length = length
                    inputs.extend(pair)
                    src.windows_total += 1
                    progress.advance(name)
                    if not (np.isfinite(p).all() and np.isfinite(a).all()):
                        src.rejected["non_finite"] = src.rejected.get("non_finite", 0) + 1
                        continue
                    subject, start = _npy_subject(name, pattern, mapping)
                    ppg.append(p)
                    abp.append(a)
                    ids.append(name)
                    subjects.append(subject)
                    starts.append(start)
                if not ids:
                    continue
                if writer is None:
                    writer = WindowWriter(
                        out,
                        fs=fs,
                        window_length=report.window_length,
                        source_format="innpar-npy",
                        ppg_units="a.u.",
                        abp_units="mmHg",
                        description=description or f"innpar-npy windows imported from {path}",
                        overwrite=overwrite,
                    )
                writer.append(
                    np.stack(ppg),
                    np.stack(abp),
                    subject=subjects,
                    window_id=ids,
                    split=split,
                    start=starts,
                )
                src.windows_kept += len(ids)
                subjects_all.extend(subjects)
                splits_all.extend([split] * len(ids))
        if writer is None:
            raise DataError(f"every window in {path} contains NaN or infinite values")
        abp_median = writer.fh["abp"][: min(writer.n, 4096)]
        warning = _abp_units_warning(abp_median, str(path))
        if warning:
            report.warnings.append(warning)
        _summarise(report, subjects_all, [], splits_all)
        report.seconds = time.monotonic() - t0
        writer.set_provenance(
            _provenance(
                report,
                inputs,
                path,
                {
                    "fs": fs,
                    "fs_source": fs_source,
                    "subject_pattern": subject_pattern,
                    "subject_map": None if subject_map is None else str(subject_map),
                },
            )
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


def import_data(fmt: str, path: str | Path, out: str | Path, **options: Any) -> ImportReport:
    """Import ``path`` in format ``fmt`` (one of :data:`FORMATS`) into the window file
    ``out``; ``options`` are those of the format's importer."""
    if fmt == "bp-benchmark":
        return import_bp_benchmark(path, out, **options)
    if fmt == "innpar-npy":
        return import_innpar_npy(path, out, **options)
    if fmt in ("wfdb", "csv", "npz"):
        from innpar_freia.data.recording_importers import import_recordings

        return import_recordings(fmt, path, out, **options)
    raise DataError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
