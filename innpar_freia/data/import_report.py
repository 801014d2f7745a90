"""What every importer shares: progress, the import report, provenance, id rules."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from innpar_freia.errors import DataError, option
from innpar_freia.outputs import check_outputs

if TYPE_CHECKING:
    from innpar_freia.data.store import WindowWriter

# Every dataset bp-benchmark distributes (Sensors, BCG, UCI, PPGBP) is at 125 Hz, and so
# are the original INN-PAR release's windows; neither layout stores the rate.
DEFAULT_FS = 125.0
# A trailing ``_<digits>`` of a window id is its start sample (bp-benchmark's trial ids).
START_SUFFIX = re.compile(r"_(\d+)$")


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
    ppg_inverted: bool | None = None  # True: its PPG was upside down and turned over
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
    if out.exists() and not out.is_file():  # a device or a pipe: --force must not replace it
        raise DataError(f"output {out} exists and is not a regular file; give a file name")
    if out.exists() and not overwrite:
        raise DataError(
            f"output file {out} already exists; choose another name or use "
            + option("--force", "overwrite=True")
        )
    if not out.parent.exists():
        raise DataError(f"output directory {out.parent} does not exist")
    return out


def start_from_id(window_id: str) -> int:
    """The start sample encoded as a trailing ``_<digits>`` of a window id, else -1."""
    m = START_SUFFIX.search(window_id)
    return int(m.group(1)) if m else -1


def unused_map_rows(subject_map: str | Path | None, unused: list[str], what: str) -> str:
    """The warning for subject-map rows that name no imported record or window: a typo, or
    a map of other data."""
    more = f" and {len(unused) - 5} more" if len(unused) > 5 else ""
    return (
        f"subject map {subject_map}: {len(unused)} row(s) name no {what} here "
        f"({', '.join(unused[:5])}{more})"
    )


def read_csv_table(path: str | Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """A small CSV table a user writes (a subject map, cuff readings): its column names as
    written, and its rows with the names lower-cased and every cell stripped; ``what``
    names it in the messages (missing file, not a CSV, no rows, a row of too many cells)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        # utf-8-sig: spreadsheet programs start a CSV with a byte-order mark, which would
        # otherwise become part of the first column's name.
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except UnicodeDecodeError:
        from innpar_freia.data.recordings import not_utf8_text

        raise not_utf8_text(path, what) from None
    except csv.Error as exc:
        raise DataError(f"{what} {path} is not a readable CSV file: {exc}") from None
    if not rows:
        raise DataError(f"{what} {path} has no rows")
    columns = [c.strip() for c in rows[0] if c is not None]
    cleaned = []
    for i, row in enumerate(rows):
        if None in row:  # csv.DictReader's key for the cells beyond the header's columns
            raise DataError(
                f"{what} {path}: row {i + 2} has more cells than the header has columns"
            )
        cleaned.append({k.strip().lower(): (v or "").strip() for k, v in row.items()})
    return columns, cleaned


def read_subject_map(path: str | Path) -> dict[str, str]:
    """A CSV with a header naming a key column (``record``, ``window`` or ``name``) and a
    ``subject`` column; other columns are ignored."""
    columns, rows = read_csv_table(path, "subject map")
    # A spreadsheet's "Record,Subject" header was refused as having neither column.
    lower = [c.lower() for c in columns]
    key = next((c for c in ("record", "window", "name", "id") if c in lower), None)
    if key is None or "subject" not in lower:
        sep = next((f"{d!r}" for d in (";", "\t") if len(columns) == 1 and d in columns[0]), "")
        raise DataError(
            f"subject map {path} needs a 'subject' column and a key column named record, "
            f"window, name or id; it has: {', '.join(columns)}"
            + (f" (separated by {sep}; the map must be comma-separated)" if sep else "")
        )
    out: dict[str, str] = {}
    for i, row in enumerate(rows):
        name, subject = row[key], row["subject"]
        if not name or not subject:
            raise DataError(f"subject map {path}: row {i + 2} has an empty {key} or subject")
        if out.get(name, subject) != subject:
            raise DataError(f"subject map {path}: {name!r} is mapped to two subjects")
        out[name] = subject
    return out


def summarise(
    report: ImportReport, subjects: list[str], folds: list[int], splits: list[str]
) -> None:
    report.n_subjects = len(set(subjects))
    report.folds = {str(k): v for k, v in sorted(Counter(f for f in folds if f >= 0).items())}
    report.splits = {k: v for k, v in sorted(Counter(s for s in splits if s).items())}


def shared_subjects_warning(subjects: list[str], parts: list[Any], what: str) -> str | None:
    """A warning when subjects have windows in several ``parts`` (folds, splits) of an
    import: then those parts are not subject-disjoint, and a model tested on one has seen
    the people of it."""
    parts_of: dict[str, set[Any]] = {}
    for subject, part in zip(subjects, parts, strict=True):
        parts_of.setdefault(subject, set()).add(part)
    shared = sorted(s for s, f in parts_of.items() if len(f) > 1)
    if not shared:
        return None
    return (
        f"{len(shared)} subject{'s have' if len(shared) > 1 else ' has'} windows in several "
        f"{what} (e.g. {', '.join(shared[:3])}): the {what} are not subject-disjoint; see "
        "'innpar data check'"
    )


def repeated_ids_warning(writer: WindowWriter) -> str | None:
    """A warning when the source gave several windows the same id (the schema expects
    unique ids; across splits it is a sign of leakage, which 'innpar data check' reports)."""
    repeated = writer.repeated_window_ids()
    if not repeated:
        return None
    return (
        f"{len(repeated)} window id(s) occur more than once (e.g. {', '.join(repeated[:3])}); "
        "ids should be unique: see 'innpar data check'"
    )


def refuse_input_as_output(out: str | Path, inputs: Sequence[Path]) -> None:
    """``--force`` replaces the output file: refuse when it is one of the files imported."""
    check_outputs([Path(out)], force=True, inputs=inputs)


def provenance(report: ImportReport, inputs: Sequence[Path], root: Path, options: dict) -> dict:
    """The file's provenance: every input with its sha256, the options and the report.

    Called once every input has been read, just before the output is moved into place, so
    this is also where an output that would replace one of the inputs is refused.
    """
    refuse_input_as_output(report.out, inputs)

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


# The median heart rate of a window file's ABP (bpm) outside which its sampling rate is more
# likely wrong than its people: a group's median at rest is 60-100 bpm (a neonatal ward's
# ~140). On the Challenge 2015 windows (ICU patients with arrhythmia alarms) it is 82 bpm
# at their 125 Hz, and 166 or 41 bpm read as 250 or 62.5 Hz: a rate off by a factor of 2,
# which neither QC nor the per-recording checks catch.
DATASET_HR_RANGE = (50.0, 150.0)
# Windows read for it: evenly spaced over the file, a second or so of peak finding.
HR_SAMPLE_WINDOWS = 400
# A window whose peak intervals vary by more than this share of their median (SD) has no
# regular pulse; the rate is taken only where half of the windows read have one. Of the
# Challenge 2015 windows 69 % have one (arrhythmias do not); of white noise, whose peaks
# the 0.2-s distance spaces out evenly too, none (its SDs are 0.16-0.28 of the median).
IRREGULAR_SHARE = 0.1


def window_rate(x: np.ndarray, fs: float) -> float | None:
    """The heart rate (bpm) of one ABP window (mmHg, NaN where missing): the median
    interval of its systolic peaks, found as the protocol finds them but at least 0.2 s
    apart, not 0.3 (200 bpm), so that a rate read 2x too high shows in full. ``None`` where
    the window has no regular pulse (:data:`IRREGULAR_SHARE`)."""
    from scipy.signal import find_peaks

    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    if finite.size < 3:
        return None
    spread = np.percentile(finite, 95) - np.percentile(finite, 5)
    peaks, _ = find_peaks(
        np.nan_to_num(x, nan=float(np.min(finite))),
        distance=max(1, int(0.2 * fs)),
        prominence=max(5.0, 0.3 * spread),
    )
    intervals = np.diff(peaks)
    # A pulse's peaks come at regular intervals; noise's, found as peaks too, do not.
    if peaks.size >= 2 and np.std(intervals) <= IRREGULAR_SHARE * np.median(intervals):
        return 60.0 * fs / float(np.median(intervals))
    return None


def median_rate(rates: Sequence[float], windows: int) -> float | None:
    """The median of ``rates``, the heart rates of the windows among ``windows`` read
    that have a regular pulse; ``None`` where fewer than half have one (not ABP: noise, a
    test's random numbers)."""
    return float(np.median(rates)) if rates and 2 * len(rates) >= windows else None


def window_heart_rate(abp: Any, fs: float) -> float | None:
    """The :func:`median_rate` over up to :data:`HR_SAMPLE_WINDOWS` evenly spaced windows
    of ``abp`` (an array or HDF5 dataset ``(n, length)``, mmHg) of each window's
    :func:`window_rate`."""
    n = len(abp)
    rows = np.unique(np.linspace(0, n - 1, min(n, HR_SAMPLE_WINDOWS)).astype(np.int64))
    rates = [r for x in np.asarray(abp[rows]) if (r := window_rate(x, fs)) is not None]
    return median_rate(rates, len(rows))


def heart_rate_warning(
    abp: Any, fs: float, given: str | None, hr: float | None = None
) -> str | None:
    """A warning when the median heart rate of the windows (:func:`window_heart_rate`, or
    ``hr`` where given, with ``abp`` None) is outside :data:`DATASET_HR_RANGE`: what a
    sampling rate off by a factor of 2 gives. ``given``: how the window rate ``fs`` was
    set (``"given with --fs"``, ``"assumed"``); ``None`` for windows cut from recordings,
    where it is the recordings' rate (their files' or ``--input-fs``) that may be wrong, not
    the windows'."""
    if abp is not None:
        hr = window_heart_rate(abp, fs)
    if hr is None or DATASET_HR_RANGE[0] <= hr <= DATASET_HR_RANGE[1]:
        return None
    factor = 0.5 if hr > DATASET_HR_RANGE[1] else 2.0
    lo, hi = DATASET_HR_RANGE
    said = (
        f"the windows' median heart rate is {hr:.0f} bpm, outside the {lo:g}-{hi:g} bpm of "
        "a group of people"
    )
    if given is None:
        other = "half" if factor < 1 else "twice"
        return (
            f"{said}: the recordings' sampling rate may be wrong (at {other} theirs, "
            f"{hr * factor:.0f} bpm); check it (their files' own, or "
            f"{option('--input-fs', 'input_fs')})"
        )
    return (
        f"{said}: the sampling rate, {fs:g} Hz {given}, may be wrong (at {fs * factor:g} Hz, "
        f"{hr * factor:.0f} bpm); pass the windows' rate with {option('--fs', 'fs')}"
    )


def abp_units_warning(abp: np.ndarray, where: str) -> str | None:
    median = float(np.median(abp))
    if not 20.0 <= median <= 250.0:
        return (
            f"{where}: median ABP is {median:.3g}, which is not a blood pressure in mmHg; "
            "ABP must be in mmHg (is it normalised?)"
        )
    return None
