"""The original INN-PAR release's layout (``ppg/`` and ``abp/`` folders of ``.npy``) ->
window file."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

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
    read_subject_map,
    repeated_ids_warning,
    shared_subjects_warning,
    summarise,
    unused_map_rows,
)
from innpar_freia.data.limits import IMPORT_RANGES, check_in_range
from innpar_freia.data.qc import constant_rows
from innpar_freia.data.recordings import cannot_read, files_under, numpy_load_problem
from innpar_freia.data.store import WindowWriter, storable
from innpar_freia.errors import DataError, check_flag, option

# The release names windows ``<subject>_<start>``.
DEFAULT_SUBJECT_PATTERN = r"^(?P<subject>.+)_(?P<start>\d+)$"
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
NPY_BATCH = 1024  # windows read and written at a time: bounded memory for any folder size


def _npy_split_dirs(path: Path) -> list[tuple[str, Path]]:
    """``[(split, folder with ppg/ and abp/)]``: the folder itself (split ""), or its
    train/val/test subfolders."""
    if path.is_file():
        raise DataError(f"{path} is a file; innpar-npy imports a folder with ppg/ and abp/")
    if not path.is_dir():
        raise DataError(f"innpar-npy folder not found: {path}")
    if (path / "ppg").is_dir() or (path / "abp").is_dir():
        for sub in ("ppg", "abp"):
            if not (path / sub).is_dir():
                raise DataError(f"{path} has no {sub}/ folder (the layout is ppg/ and abp/)")
        # train/ (or any subfolder) with windows beside them would be left out without a word.
        nested = sorted(
            f"{child.name}/"
            for child in path.iterdir()
            if child.is_dir() and any((child / sub).is_dir() for sub in ("ppg", "abp"))
        )
        if nested:
            raise DataError(
                f"{path} has ppg/ and abp/ and also subfolders with windows "
                f"({', '.join(nested)}), which would be left out; move its ppg/ and abp/ "
                "into a split folder (train/, val/, test/), or import each on its own"
            )
        return [("", path)]
    found = []
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        has = [sub for sub in ("ppg", "abp") if (child / sub).is_dir()]
        if not has:  # not a window folder (figures/, .ipynb_checkpoints/): not ours
            continue
        split = SPLIT_FOLDERS.get(child.name.lower())
        if split is None:  # windows that would silently be left out
            names = ", ".join(f"{name}/" for name in SPLIT_FOLDERS)
            raise DataError(
                f"{child} holds windows but is not a split folder ({names}); rename it, "
                "or import it on its own"
            )
        if len(has) < 2:
            missing = "abp" if has == ["ppg"] else "ppg"
            raise DataError(f"{child} has no {missing}/ folder (the layout is ppg/ and abp/)")
        found.append((split, child))
    if not found:
        raise DataError(
            f"{path} has no ppg/ and abp/ folders (nor train/, val/, test/ subfolders with them)"
        )
    return found


def _npy_files(folder: Path) -> dict[str, Path]:
    """The ``.npy`` files of one folder by window name, the suffix in any case (``.NPY``
    windows were skipped without a word). Subfolders holding ``.npy`` files are refused,
    named: their windows (``ppg/b2/*.npy``) were left out without a word."""
    nested = sorted(f"{d.name}/" for d in folder.iterdir() if d.is_dir() and files_under(d, ".npy"))
    if nested:
        raise DataError(
            f"{folder} has subfolders with .npy files ({', '.join(nested)}), which would be "
            f"left out: innpar-npy reads the windows directly in ppg/ and abp/; move them "
            f"into {folder}, or remove them"
        )
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() == ".npy" and f.is_file():
            if f.stem in found:
                raise DataError(f"{found[f.stem]} and {f} name the same window; keep one")
            found[f.stem] = f
    return found


def _npy_pairs(folder: Path) -> list[tuple[str, Path, Path]]:
    """Sorted ``(window name, ppg file, abp file)`` of the windows present in both ``ppg/``
    and ``abp/``; a missing partner is an error that names it."""
    ppg_files, abp_files = _npy_files(folder / "ppg"), _npy_files(folder / "abp")
    ppg, abp = set(ppg_files), set(abp_files)
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
    return [(name, ppg_files[name], abp_files[name]) for name in sorted(ppg)]


def _load_window(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            # Not opened (no permission): "truncated or corrupt?" was a wrong guess.
            raise cannot_read(path, exc) from None
        raise DataError(
            f"{path} is not a readable .npy file (truncated or corrupt?): {numpy_load_problem(exc)}"
        ) from None
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.dtype.kind not in "biuf" or arr.size == 0:
        raise DataError(
            f"{path} must hold one numeric window of shape (L,) or (1, L) with L > 0, "
            f"got {arr.dtype} of shape {arr.shape}"
        )
    return arr


def _subject_group(pattern: re.Pattern[str]) -> str | int:
    r"""The group of ``pattern`` that is the subject: its ``subject`` group, else its one
    group that is not ``start``, else (no group at all) the whole match.

    Was: else group 1, whatever it was. ``(?P<start>\d+)_(.+)`` made every start sample a
    subject, and ``^.+_(?P<start>\d+)$`` (no subject group) the whole name: every window
    its own subject, so one person's windows were spread over every fold."""
    if "subject" in pattern.groupindex:
        return "subject"
    start = pattern.groupindex.get("start")
    others = [i for i in range(1, pattern.groups + 1) if i != start]
    if len(others) == 1:
        return others[0]
    if not others and start is None:
        return 0
    raise DataError(
        f"subject pattern {pattern.pattern!r} has "
        + ("only a 'start' group" if not others else f"{len(others)} groups")
        + ", none named 'subject': mark the subject's part with (?P<subject>...)"
    )


def _npy_subject(
    name: str,
    pattern: re.Pattern[str],
    mapping: dict[str, str] | None,
    map_path: str | Path | None = None,
) -> tuple[str, int]:
    m = pattern.match(name)
    start = -1
    if m and "start" in pattern.groupindex and m.group("start") is not None:
        text = m.group("start")
        if not (text.isascii() and text.isdigit()):
            raise DataError(
                f"the subject pattern's 'start' group matches {text!r} in window {name!r}, "
                r"which is not a sample number; make the group match digits only ((?P<start>\d+))"
            )
        start = int(text)
    if mapping is not None:
        if name not in mapping:
            # Was "the subject map has no entry for window X": which map, and for a map
            # naming its windows by file name (X.npy), not why.
            hint = (
                f"; name windows without the extension ({name!r}, not '{name}.npy')"
                if any(k.lower().endswith(".npy") for k in mapping)
                else ""
            )
            raise DataError(f"subject map {map_path} has no subject for window {name!r}{hint}")
        return mapping[name], start
    if not m:
        raise DataError(
            f"window name {name!r} does not match the subject pattern {pattern.pattern!r}; "
            f"give {option('--subject-pattern', 'subject_pattern')} (a regex with a 'subject' "
            f"group) or {option('--subject-map', 'subject_map')}"
        )
    subject = m.group(_subject_group(pattern))
    if not subject:
        raise DataError(f"the subject pattern gives an empty subject for window {name!r}")
    return subject, start


def crowded_starts_warning(subjects: list[str], starts: list[int], length: int) -> str:
    """A warning when windows of one subject start within a tenth of a window of each
    other: no recording is cut so, but names that are not ``<subject>_<start>`` parse so
    (``c2015_test_552``, ``c2015_test_554``: record numbers read as starts, and five records
    made one subject "c2015_test", whose windows then sit on both sides of every split)."""
    by_subject: dict[str, list[int]] = {}
    for subject, start in zip(subjects, starts, strict=True):
        if start >= 0:
            by_subject.setdefault(subject, []).append(start)
    crowded = []
    for subject, found in by_subject.items():
        found = sorted(set(found))  # one window name twice is a repeated id, warned of apart
        close = [(a, b) for a, b in itertools.pairwise(found) if b - a < length / 10]
        if close:
            crowded.append((subject, len(found), close[0]))
    if not crowded:
        return ""
    subject, n, (a, b) = crowded[0]
    more = f" (and {len(crowded) - 1} more subjects)" if len(crowded) > 1 else ""
    return (
        f"windows of subject {subject!r}{more} start within a tenth of a window of each "
        f"other ({n} windows; starts {a} and {b}, windows of {length} samples): the part of "
        "their names read as a start may be part of the subject (a record number), making "
        "several subjects one; check the subjects ('innpar data info') or give "
        f"{option('--subject-pattern', 'subject_pattern')} or "
        f"{option('--subject-map', 'subject_map')}"
    )


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
    says so. Windows with NaN are rejected and counted (reason ``non_finite``), and so are
    windows whose PPG or ABP is one constant value (``constant``).
    """
    overwrite = check_flag("overwrite", overwrite)
    if fs is not None:  # the CLI's range: the Python API goes without its option types
        fs = check_in_range("fs", fs, IMPORT_RANGES)
    t0 = time.monotonic()
    path, out = Path(path), check_output(out, overwrite)
    progress = progress or Progress()
    try:
        pattern = re.compile(subject_pattern)
    except re.error as exc:
        raise DataError(
            f"subject pattern {subject_pattern!r} is not a valid regex: {exc}"
        ) from None
    if subject_map is None:
        _subject_group(pattern)  # before any work: a pattern that cannot say who it is
    mapping = read_subject_map(subject_map) if subject_map is not None else None
    seen: set[str] = set()  # window names, for the map's rows that name none
    groups = [(split, folder, _npy_pairs(folder)) for split, folder in _npy_split_dirs(path)]
    fs_source = "option" if fs is not None else "default"
    fs = DEFAULT_FS if fs is None else fs
    report = ImportReport("innpar-npy", str(path), str(out), fs, fs_source, 0)
    if fs_source == "default":
        report.warnings.append(
            f"the innpar-npy layout does not store the sampling rate; assumed {fs:g} Hz "
            f"(pass {option('--fs', 'fs=HZ')} if the windows are at another rate)"
        )
    total = sum(len(names) for _, _, names in groups)
    writer: WindowWriter | None = None
    inputs: list[Path] = []
    subjects_all: list[str] = []
    splits_all: list[str] = []
    starts_all: list[int] = []
    progress.start(total, "innpar-npy windows")
    try:
        for split, folder, names in groups:
            src = SourceReport(id=split or folder.name, path=str(folder))
            report.sources.append(src)
            for b in range(0, len(names), NPY_BATCH):
                ppg, abp, ids, subjects, starts = [], [], [], [], []
                for name, ppg_file, abp_file in names[b : b + NPY_BATCH]:
                    pair = [ppg_file, abp_file]
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
                    if length < MIN_WINDOW_LENGTH:  # the writer's message names no file
                        raise DataError(
                            f"{pair[0]} is a window of {length} samples; windows need at least "
                            f"{MIN_WINDOW_LENGTH}, the shortest the network takes"
                        )
                    report.window_length = length
                    inputs.extend(pair)
                    src.windows_total += 1
                    seen.add(name)
                    progress.advance(name)
                    if not (storable(p) and storable(a)):
                        src.rejected["non_finite"] = src.rejected.get("non_finite", 0) + 1
                        continue
                    if constant_rows(p)[0] or constant_rows(a)[0]:
                        src.rejected["constant"] = src.rejected.get("constant", 0) + 1
                        continue
                    subject, start = _npy_subject(name, pattern, mapping, subject_map)
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
                        repeated_ids=True,  # the source may repeat ids: warned of below
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
                starts_all.extend(starts)
        if writer is None:
            raise DataError(
                f"every window in {path} contains NaN or infinite values or is a constant line"
            )
        unused = [k for k in mapping or {} if k not in seen]
        if unused:
            report.warnings.append(unused_map_rows(subject_map, unused, "window"))
        abp_median = writer.fh["abp"][: min(writer.n, 4096)]
        warning = abp_units_warning(abp_median, str(path))
        if warning:
            report.warnings.append(warning)
        warning = shared_subjects_warning(subjects_all, splits_all, "splits")
        if warning:
            report.warnings.append(warning)
        warning = crowded_starts_warning(subjects_all, starts_all, report.window_length)
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
        summarise(report, subjects_all, [], splits_all)
        report.seconds = time.monotonic() - t0
        writer.set_provenance(
            provenance(
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
