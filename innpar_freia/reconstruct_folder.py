"""``innpar reconstruct FOLDER``: every recording under a folder, each as ``innpar reconstruct``
reconstructs one file, into an output folder of the same layout, with one table of them all.

A recording is a WFDB record (its ``.hea``), or a ``.csv``, ``.npz`` or ``.npy`` file, found
recursively; its record id is its path under the folder without the extension
(``training/85``), and its outputs are ``OUT/<id>.<format>`` with ``<id>.beats.csv`` and
``<id>.summary.json`` beside them (``<id>.png`` under the figures folder).

Each recording is written whole or not at all, as for one file. A recording that cannot be
reconstructed (unreadable, no PPG channel, too short, nothing valid) does not stop the
others: it is listed with its reason in ``OUT/reconstructions.csv`` / ``.json``, and the run
ends with an error naming it. Everything that would stop every recording alike (outputs
that exist without ``force``, a cuff table that misses a record, an output folder inside the
input folder, an output that is an input, even with ``force``, two recordings that would write
one file) is refused before any work.
Interrupted (or killed: the table is rewritten as the run goes on), the table lists what was
done, and ``resume`` goes on with the same run (a recording whose input changed since is
reconstructed again).
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import fnmatch
import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innpar_freia.checkpoint import Checkpoint, load_checkpoint
from innpar_freia.errors import DataError, check_flag, listed, option
from innpar_freia.outputs import (
    StagedOutputs,
    check_outputs,
    folders_listed_once,
    json_text,
    recording_paths,
)
from innpar_freia.reconstruct_file import (
    ReconstructOptions,
    as_options,
    input_files,
    reconstruct_file,
    side_paths,
)
from innpar_freia.recording_bp import parse_cuff

# The recording formats found in a folder, by the suffix that marks one recording.
FOLDER_FORMATS = {"wfdb": ".hea", "csv": ".csv", "npz": ".npz", "npy": ".npy"}
# An --out or --plot that names a file where a folder is wanted.
_FILE_SUFFIXES = {".csv", ".npy", ".npz", ".hea", ".dat", ".h5", ".hdf5", ".png", ".pdf", ".json"}
INDEX_NAMES = ("reconstructions.csv", "reconstructions.json")
# The table is rewritten at most this often while a run goes on (each time whole: a run
# of thousands of recordings would write it thousands of times after each).
PROGRESS_SECONDS = 30.0
# Why --resume reconstructs again a recording the run resumed had reconstructed.
INPUT_CHANGED = "its input changed since the earlier run read it"
INPUT_UNKNOWN = (
    "the run resumed kept no sha256 of its input (an older version), so it may have changed"
)
# Errors of the machine, not of one recording: every later recording would fail alike.
_FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
_INDEX_COLUMNS = (
    "record",
    "status",
    "reason",
    "input",
    "output",
    "duration_s",
    "reconstructed_fraction",
    "gaps",
    "beats",
    "sbp_median",
    "dbp_median",
    "map_median",
    "hr_median",
    "calibration",
    "calibration_offset_only",
    "ref_waveform_mae",
    "ref_sbp_mae",
    "ref_dbp_mae",
    "ref_map_mae",
    "ref_note",
    "warning",
)


@dataclass
class Recording:
    """One recording of the folder: its record id, the path to read and its format."""

    id: str
    path: Path
    format: str


@dataclass
class CuffReading:
    """One row of a cuff table: the reading in mmHg and when it was taken (``None``: at the
    recording's start)."""

    sbp: float
    dbp: float
    at: float | None = None

    @property
    def text(self) -> str:
        return f"{self.sbp:g}/{self.dbp:g}"


def is_cuff_table(calibration: str | None) -> bool:
    """Whether a ``--calibration`` value names a table of cuff readings (a ``.csv`` name, or
    a file), not one reading (``120/80``) or ``reference``."""
    if calibration is None or calibration == "reference":
        return False
    return Path(calibration).suffix.lower() == ".csv" or Path(calibration).is_file()


def find_recordings(folder: Path, include: str | None = None) -> list[Recording]:
    """The recordings under ``folder`` (see the module's docstring), sorted by record id;
    with ``include``, only those whose file (a record's ``.hea``) matches the glob pattern,
    relative to ``folder`` (``*.csv``, ``training/*``)."""
    from innpar_freia.data.recording_importers import discover
    from innpar_freia.data.recordings import files_under

    found: list[Recording] = []
    for fmt, suffix in FOLDER_FORMATS.items():
        if not files_under(folder, suffix):
            continue
        if fmt == "npy":  # one signal per file: data import has no such format
            for f in files_under(folder, suffix):
                rel = f.relative_to(folder)
                found.append(Recording(rel.with_suffix("").as_posix(), f, fmt))
        else:
            found += [Recording(u.id, u.path, fmt) for u in discover(fmt, folder)]
    if include is not None:
        found = [r for r in found if fnmatch.fnmatch(_marker(r, folder), include)]
    if not found:
        kinds = "WFDB records (.hea), .csv, .npz or .npy files"
        raise DataError(
            f"{folder} has no recordings ({kinds})"
            + (
                f" whose path matches {option('--include', 'include')} {include!r}"
                if include is not None
                else ""
            )
        )
    ids: dict[str, Recording] = {}
    for r in sorted(found, key=lambda r: (r.id, r.format)):
        if r.id in ids:
            # Their outputs would share OUT/<id>.summary.json and .beats.csv.
            raise DataError(
                f"{_marker(ids[r.id], folder)} and {_marker(r, folder)} are both recording "
                f"{r.id!r}: their outputs would have the same names; keep one, or pick with "
                f"{option('--include', 'include')}"
            )
        ids[r.id] = r
    return list(ids.values())


def _marker(rec: Recording, folder: Path) -> str:
    """The file that makes ``rec`` a recording, relative to ``folder``."""
    path = rec.path.with_suffix(".hea") if rec.format == "wfdb" else rec.path
    return path.relative_to(folder).as_posix()


def read_cuff_table(path: str | Path) -> dict[str, CuffReading]:
    """A CSV of cuff readings, one row per recording: a key column (``record``, ``name`` or
    ``id``: the record id, or its file name without the extension), ``sbp`` and ``dbp`` in
    mmHg, and optionally ``at``, the reading's time in seconds on the recording's clock."""
    from innpar_freia.data.import_report import read_csv_table

    names, rows = read_csv_table(path, "cuff table")
    columns = {c.lower(): c for c in names}
    key = next((c for c in ("record", "name", "id") if c in columns), None)
    if key is None or "sbp" not in columns or "dbp" not in columns:
        raise DataError(
            f"cuff table {path} needs a record column (record, name or id), sbp and dbp "
            f"(mmHg), and optionally at (s); it has: {', '.join(names)}"
        )
    table: dict[str, CuffReading] = {}
    for line, cells in enumerate(rows, start=2):
        name = cells[key]
        if not name:
            raise DataError(f"cuff table {path}: row {line} has no {key}")
        if name in table:
            raise DataError(f"cuff table {path}: {name!r} has two rows ({line} and an earlier)")
        try:
            sbp, dbp = parse_cuff(f"{cells['sbp']}/{cells['dbp']}")
        except DataError as exc:
            raise DataError(f"cuff table {path}, row {line} ({name}): {exc}") from None
        at = None
        if cells.get("at"):
            try:
                at = float(cells["at"])
            except ValueError:
                at = float("nan")
            if at != at or at in (float("inf"), float("-inf")):
                raise DataError(
                    f"cuff table {path}, row {line} ({name}): at must be a time in seconds, "
                    f"not {cells['at']!r}"
                )
        table[name] = CuffReading(sbp, dbp, at)
    return table


def _cuffs_for(
    recordings: list[Recording], table: dict[str, CuffReading], path: Path
) -> tuple[dict[str, CuffReading], list[str]]:
    """Each recording's row of ``table`` (by record id, or by its file name when that is one
    recording's only), and the rows that matched none; every recording needs its row."""
    stems: dict[str, list[str]] = {}
    for r in recordings:
        stems.setdefault(r.id.rsplit("/", 1)[-1], []).append(r.id)
    readings: dict[str, CuffReading] = {}
    used: set[str] = set()
    for r in recordings:
        stem = r.id.rsplit("/", 1)[-1]
        key = r.id if r.id in table else stem if len(stems[stem]) == 1 else None
        if key in table:
            readings[r.id] = table[key]
            used.add(key)
    missing = [r.id for r in recordings if r.id not in readings]
    if missing:
        raise DataError(
            f"cuff table {path} has no reading for {len(missing)} of the {len(recordings)} "
            f"recordings: {listed(missing, 5)}; add their rows, or leave them out with "
            f"{option('--include', 'include')}"
        )
    return readings, sorted(set(table) - used)


def _out_path(out_dir: Path, rec: Recording, out_format: str | None) -> Path:
    """Where ``rec``'s reconstruction goes: ``OUT/<id>`` with the suffix of its format (the
    input's unless ``out_format``); the suffix is always given, so a record id with a dot
    (``rec.v2``) is not taken for a name with a suffix. A name no WFDB record can have
    (``s1.v1``) is refused, by ``recording_paths``'s check, with what to do instead."""
    fmt = out_format or rec.format
    out = out_dir / f"{rec.id}{FOLDER_FORMATS[fmt]}"
    try:
        recording_paths(out, fmt)
    except DataError as exc:
        raise DataError(
            f"recording {rec.id!r} cannot be written as a WFDB record: {exc}; give "
            + option("--format csv, npz or npy", "out_format='csv', 'npz' or 'npy'")
            + f", or leave it out with {option('--include', 'include')}"
        ) from None
    return out


def _finals(out: Path, fmt: str, opts: ReconstructOptions) -> list[Path]:
    side = side_paths(out, fmt)
    finals = [*recording_paths(out, fmt), side["summary"]]
    if opts.direction == "ppg2abp":
        finals.append(side["table"])
    if opts.plot is not None:
        finals.append(opts.plot)
    return finals


# force and calibration are settings of reconstruct_folder's options (ReconstructOptions or
# a mapping), not parameters of its own: a Python caller is told where they go.
FORCE_IN_OPTIONS = "force=True in options"
CALIBRATION_TABLE_IN_OPTIONS = "calibration='TABLE.csv' in options"


def reconstruct_folder(
    checkpoint: str | Path | Checkpoint,
    folder: str | Path,
    out_dir: str | Path,
    options: ReconstructOptions | Mapping[str, Any] | None = None,
    *,
    out_format: str | None = None,
    plot_dir: str | Path | None = None,
    include: str | None = None,
    on_record: Callable[[int, int, str, dict[str, Any]], None] | None = None,
    resume: bool = False,
    on_interrupt: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Reconstruct every recording under ``folder`` into ``out_dir`` (see the module's
    docstring); returns the index, also written to ``out_dir/reconstructions.json`` and
    ``.csv``. ``options`` apply to every recording (their ``plot`` is ignored: with
    ``plot_dir`` each recording's figure goes to ``plot_dir/<id>.png``); their
    ``calibration`` may name a cuff table (:func:`read_cuff_table`), which calibrates each
    recording with its own reading. ``on_record(i, n, id, row)`` is called after each
    recording with its row of the index. A ``DataError``, before any work, for what would stop
    every recording; a recording that fails is a row with its reason (``status`` "failed"),
    and the others go on. The index is also written as the run goes on (the rest "pending")
    and when it is interrupted (Ctrl-C, SIGTERM: the rest "interrupted", and given to
    ``on_interrupt``); ``resume`` then continues that run: the recordings it reconstructed
    (their outputs all there, their input files the same bytes) are kept, the others done
    (a row done again because its input changed says so in ``redone``), when the settings
    are the same (an error names those that differ)."""
    opts = as_options(options)
    resume = check_flag("resume", resume)
    folder, out_dir = Path(folder), Path(out_dir)
    if resume and opts.force:
        raise DataError(
            f"{option('--resume', 'resume=True')} keeps what an earlier run reconstructed, "
            f"{option('--force', FORCE_IN_OPTIONS)} replaces it: give one"
        )
    plot_dir = None if plot_dir is None else Path(plot_dir)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    if out_format is not None and out_format not in FOLDER_FORMATS:
        raise DataError(
            f"output format must be one of {', '.join(FOLDER_FORMATS)}, not {out_format!r}"
        )
    for what, target, each in (
        (option("--out", "out_dir"), out_dir, "output"),
        (option("--plot", "plot_dir"), plot_dir, "figure"),
    ):
        if target is None:
            continue
        if (target.exists() and not target.is_dir()) or (
            not target.exists() and target.suffix.lower() in _FILE_SUFFIXES
        ):
            raise DataError(
                f"{what} {target}: for a folder INPUT, {what} names a folder (each "
                f"recording's {each} goes in it, named "
                "by its record)"
            )
        if target.resolve().is_relative_to(folder.resolve()):
            # A second run would find the first one's outputs as recordings.
            raise DataError(
                f"{what} {target} is inside the input folder {folder}; write the "
                "reconstructions elsewhere"
            )
    # Each recording is given its own reading from the table (every one has a row).
    cuff_table = Path(str(opts.calibration)) if is_cuff_table(opts.calibration) else None
    if cuff_table is None and opts.calibration is not None and opts.calibration != "reference":
        given = option(
            f"--calibration {opts.calibration}", f"calibration={opts.calibration!r} in options"
        )
        raise DataError(
            f"{given}: one cuff reading is one person's; for a folder, give a table of "
            f"readings ({option('--calibration TABLE.csv', CALIBRATION_TABLE_IN_OPTIONS)} with "
            "columns record, sbp, dbp and optionally at)"
        )
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    if opts.direction == "abp2ppg":
        ckpt.check_reversible()
    recordings = find_recordings(folder, include)
    cuffs: dict[str, CuffReading] = {}
    unused: list[str] = []
    if cuff_table is not None:
        cuffs, unused = _cuffs_for(recordings, read_cuff_table(cuff_table), cuff_table)

    plans: list[tuple[Recording, Path, ReconstructOptions]] = []
    for rec in recordings:
        rec_opts = dataclasses.replace(
            opts, plot=None if plot_dir is None else plot_dir / f"{rec.id}.png"
        )
        if rec.id in cuffs:
            cuff = cuffs[rec.id]
            rec_opts = dataclasses.replace(
                rec_opts,
                calibration=cuff.text,
                calibration_at=cuff.at if cuff.at is not None else opts.calibration_at,
            )
        plans.append((rec, _out_path(out_dir, rec, out_format), rec_opts))
    index_paths = [out_dir / name for name in INDEX_NAMES]
    # One file written twice loses the first (x.beats.csv: x's beats table, or recording
    # x.beats; reconstructions.csv: the table, or recording reconstructions).
    owners: dict[Path, str] = {p: "the table of them all" for p in index_paths}
    for rec, out, o in plans:
        for p in _finals(out, out_format or rec.format, o):
            if p in owners:
                raise DataError(
                    f"recording {rec.id!r} and {owners[p]} would both be written to {p}; "
                    f"rename one, or leave one out with {option('--include', 'include')}"
                )
            owners[p] = f"recording {rec.id!r}"
    finals = list(owners)  # every output of the run: the table's and each recording's
    # Even with --force: an --out that holds the input folder (``--out .`` for INPUT ``fin``)
    # has recording fin/fin/b's output at fin/b.csv, recording fin/b's input.
    inputs = [p for rec in recordings for p in input_files(rec.path)]
    _check_not_inputs(finals, [*inputs, Path(ckpt.path), *([cuff_table] if cuff_table else [])])
    settings = _settings(folder, ckpt, opts, out_format, plot_dir, include, cuff_table)
    done: dict[str, dict[str, Any]] = {}
    redo: dict[str, str] = {}  # reconstructed by the earlier run, done again: why
    if resume:
        # The earlier run's outputs are this run's: those it finished are kept, the others
        # (failed, interrupted, or whose input changed since) replaced.
        done, redo = _resumable(out_dir, settings, plans, out_format)
        plans = [(r, o, dataclasses.replace(ro, force=True)) for r, o, ro in plans]
    else:
        # All at once, before any work: a run that stopped at the 40th recording on "output
        # exists" would have spent the time of 39 for nothing.
        existing = [p for p in finals if p.exists()]
        if existing and not opts.force:
            raise DataError(
                f"outputs exist: {listed(existing, 3)}; pass {option('--force', FORCE_IN_OPTIONS)} "
                "to replace them"
                + (
                    f" (or {option('--resume', 'resume=True')} to go on with the run they are from)"
                    if index_paths[1].is_file()
                    else ""
                )
            )
    check_outputs(index_paths, opts.force or resume, inputs=[Path(ckpt.path)])

    def index_of(rows: list[dict[str, Any]], interrupted: bool = False) -> dict[str, Any]:
        failed = [r for r in rows if r["status"] == "failed"]
        n_done = sum(r["status"] == "reconstructed" for r in rows)
        return {
            "input": str(folder),
            "out": str(out_dir),
            "checkpoint": str(ckpt.path),
            "preset": ckpt.run_config.preset,
            "direction": opts.direction,
            "calibration": (
                "cuff table" if cuff_table is not None else opts.calibration or "calibration-free"
            ),
            "cuff_table": None if cuff_table is None else str(cuff_table),
            "unused_cuff_rows": unused,
            "interrupted": interrupted,
            "n_recordings": len(rows),
            "n_reconstructed": n_done,
            "n_failed": len(failed),
            "n_resumed": sum(bool(r.get("resumed")) for r in rows),
            "n_offset_only": sum(bool(r.get("calibration_offset_only")) for r in rows),
            "recordings": rows,
            "settings": settings,
            "outputs": {"table": str(index_paths[0]), "index": str(index_paths[1])},
        }

    def write_index(index: dict[str, Any]) -> None:
        with StagedOutputs() as staged:
            staged.write_text(index_paths[0], _index_csv(index["recordings"]))
            staged.write_text(index_paths[1], json_text(index))

    rows: list[dict[str, Any]] = []

    def progress() -> dict[str, Any]:
        # The table as it stands, the recordings not done yet "pending": what a run killed
        # outright (SIGKILL, a power cut) leaves for --resume.
        pending = [_failed(rec, "not reached yet", "pending") for rec, _, _ in plans[len(rows) :]]
        return index_of(rows + pending, interrupted=True)

    # Each output folder is listed once for what killed writes left, not once per output.
    with folders_listed_once():
        write_index(progress())
        written = time.monotonic()
        try:
            for i, (rec, out, rec_opts) in enumerate(plans):
                row = done.get(rec.id)
                if row is None:
                    row = _reconstruct_one(ckpt, rec, out, rec_opts, out_format)
                    if rec.id in redo:
                        row["redone"] = redo[rec.id]
                rows.append(row)
                if on_record is not None:
                    on_record(i, len(plans), rec.id, row)
                if time.monotonic() - written >= PROGRESS_SECONDS and len(rows) < len(plans):
                    write_index(progress())
                    written = time.monotonic()
        except (KeyboardInterrupt, SystemExit):
            # What was done is listed, for --resume; the rest was not reached.
            rows += [_failed(rec, "interrupted", "interrupted") for rec, _, _ in plans[len(rows) :]]
            partial = index_of(rows, interrupted=True)
            write_index(partial)
            if on_interrupt is not None:
                on_interrupt(partial)
            raise
        index = index_of(rows)
        write_index(index)
        return index


def _check_not_inputs(finals: list[Path], inputs: list[Path]) -> None:
    """Refuse an output that is (or is a link to) one of the run's inputs: its recordings'
    files, the checkpoint, the cuff table; one look at each file, not one per pair."""
    by_file: dict[tuple[int, int], Path] = {}
    for path in inputs:
        try:
            st = path.stat()
        except OSError:
            continue  # not there (a WFDB record's .dat that it does not have)
        by_file.setdefault((st.st_dev, st.st_ino), path)
    for final in finals:
        try:
            st = final.stat()
        except OSError:
            continue  # to be written: no input yet
        source = by_file.get((st.st_dev, st.st_ino))
        if source is not None:
            raise DataError(
                f"output {final} is the input {source}; write the reconstructions elsewhere"
            )


def _reconstruct_one(
    ckpt: Checkpoint,
    rec: Recording,
    out: Path,
    rec_opts: ReconstructOptions,
    out_format: str | None,
) -> dict[str, Any]:
    """One recording's row of the index: reconstructed, or failed with its reason."""
    try:
        # Before it is read: a change while it is read is then a change for --resume too.
        try:
            digest: str | None = _input_sha256(rec)
        except OSError:
            # Unreadable (no read permission): reconstruct_file says so in its own words,
            # as the importers do; a row that is reconstructed regardless has no digest,
            # and --resume then does it again.
            digest = None
        summary = reconstruct_file(ckpt, rec.path, out, rec_opts)
        return {**_row(rec, summary), "input_files_sha256": digest}
    except DataError as exc:
        if exc.errno in _FATAL_ERRNOS:  # an output that the disk refused
            raise
        reason = str(exc)
    except OSError as exc:
        if exc.errno in _FATAL_ERRNOS:
            raise
        from innpar_freia.cli.common import os_error_message

        reason = os_error_message(exc)
    # With --force, an earlier run's outputs of this recording are still there (each is
    # replaced whole or not at all): not to be taken for this run's.
    stale = [p for p in _finals(out, out_format or rec.format, rec_opts) if p.exists()]
    if stale:
        reason += f" (the outputs of an earlier run are left as they were: {listed(stale, 2)})"
    return _failed(rec, reason)


def _settings(
    folder: Path,
    ckpt: Checkpoint,
    opts: ReconstructOptions,
    out_format: str | None,
    plot_dir: Path | None,
    include: str | None,
    cuff_table: Path | None,
) -> dict[str, Any]:
    """What makes a run's outputs what they are, for ``resume`` to compare: the input, the
    checkpoint (and its bytes), the options, and the cuff table's bytes."""
    options = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in dataclasses.asdict(opts).items()
        if k not in ("force", "plot")
    }
    return {
        "input": str(folder.resolve()),
        "checkpoint": str(Path(ckpt.path).resolve()),
        "checkpoint_sha256": _sha256(Path(ckpt.path)),
        "format": out_format,
        "plot": None if plot_dir is None else str(plot_dir.resolve()),
        "include": include,
        "cuff_table_sha256": None if cuff_table is None else _sha256(cuff_table),
        "options": options,
    }


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _input_sha256(rec: Recording) -> str:
    """sha256 of the files ``rec`` is read from (a WFDB record's header and the signal and
    segment files it names), by name and bytes: what ``resume`` compares to tell a recording
    that changed since it was reconstructed."""
    import hashlib

    digest = hashlib.sha256()
    seen: set[Path] = set()
    for path in input_files(rec.path):
        if path.resolve() in seen or not path.is_file():
            continue
        seen.add(path.resolve())
        digest.update(f"{path.name}\0{_sha256(path)}\n".encode())
    return digest.hexdigest()


def _resumable(
    out_dir: Path,
    settings: dict[str, Any],
    plans: list[tuple[Recording, Path, ReconstructOptions]],
    out_format: str | None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The rows of the earlier run in ``out_dir`` to keep: recordings it reconstructed,
    with every output still there, from the input that is there now (its files' sha256);
    and, of the others it reconstructed, why each is done again. Refused when there is no
    such run, or when it was made with other settings."""
    import json

    path = out_dir / INDEX_NAMES[1]
    if not path.is_file():
        raise DataError(
            f"{option('--resume', 'resume=True')}: {out_dir} holds no {INDEX_NAMES[1]} of an "
            "earlier run to go on with"
        )
    try:
        earlier = json.loads(path.read_text())
        rows, before = earlier["recordings"], earlier["settings"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise DataError(
            f"{option('--resume', 'resume=True')}: {path} is not the table of an innpar "
            "reconstruct run (damaged, or from an older version); run with "
            f"{option('--force', FORCE_IN_OPTIONS)} to start again"
        ) from None
    if before != settings:
        differ = sorted(
            {k for k in settings if k != "options" and before.get(k) != settings[k]}
            | {
                k
                for k in settings["options"]
                if (before.get("options") or {}).get(k) != settings["options"][k]
            }
        )
        raise DataError(
            f"{option('--resume', 'resume=True')}: the run in {out_dir} was made with other "
            f"settings (they differ in: {', '.join(differ) or 'their layout'}); give the same "
            f"ones, or {option('--force', FORCE_IN_OPTIONS)} to replace it"
        )
    by_id = {rec.id: (rec, out, o) for rec, out, o in plans}
    done, redo = {}, {}
    for row in rows:
        plan = by_id.get(row.get("record"))
        if plan is None or row.get("status") != "reconstructed":
            continue
        rec, out, o = plan
        if not all(p.exists() for p in _finals(out, out_format or rec.format, o)):
            continue
        before = row.get("input_files_sha256")
        if before is None:
            redo[rec.id] = INPUT_UNKNOWN
            continue
        try:
            now = _input_sha256(rec)
        except OSError:
            now = None  # unreadable now: reconstructing it again says why
        if now != before:
            redo[rec.id] = INPUT_CHANGED
            continue
        kept = {**row, "resumed": True}
        kept.pop("redone", None)  # this run's row: it kept the recording, did not redo it
        done[rec.id] = kept
    return done, redo


def _row(rec: Recording, summary: dict[str, Any]) -> dict[str, Any]:
    beats = summary.get("beats") or {}
    ref = summary.get("reference") or {}
    cal = summary.get("calibration")
    outputs = summary["outputs"]
    row = {
        "record": rec.id,
        "status": "reconstructed",
        "reason": None,
        "input": str(rec.path),
        "output": outputs["recording"][0],
        "duration_s": summary["duration_s"],
        "reconstructed_fraction": summary["reconstructed_fraction"],
        "gaps": len(summary["gaps"]),
        "beats": beats.get("n"),
        "sbp_median": beats.get("sbp_median"),
        "dbp_median": beats.get("dbp_median"),
        "map_median": beats.get("map_median"),
        "hr_median": beats.get("hr_median"),
        "calibration": None if cal is None else _calibration_name(cal),
        # offset-scale asked, the offset alone applied (its warning says why).
        "calibration_offset_only": None if cal is None else bool(cal.get("offset_only")),
        "ref_waveform_mae": (ref.get("waveform") or {}).get("mae"),
        "ref_sbp_mae": (ref.get("sbp") or {}).get("mae"),
        "ref_dbp_mae": (ref.get("dbp") or {}).get("mae"),
        "ref_map_mae": (ref.get("map") or {}).get("mae"),
        # A reference that could not be compared with: why (a flat or missing ABP).
        "ref_note": ref.get("why_none") or None,
        "warning": summary.get("warning"),
        "summary": outputs["summary"],
    }
    return row


def _calibration_name(cal: dict[str, Any]) -> str:
    if cal["source"] == "cuff":
        return f"cuff {cal['ref_sbp']:g}/{cal['ref_dbp']:g}"
    return "reference"


def _failed(rec: Recording, reason: str, status: str = "failed") -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in _INDEX_COLUMNS}
    row.update(record=rec.id, status=status, reason=reason, input=str(rec.path))
    row["summary"] = None
    return row


def _index_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_INDEX_COLUMNS)
    for row in rows:
        cells = []
        for c in _INDEX_COLUMNS:
            v = row.get(c)
            cells.append("" if v is None else f"{v:.6g}" if isinstance(v, float) else v)
        writer.writerow(cells)
    return buf.getvalue()
