"""Writing results all-or-nothing: files are staged under hidden names next to their final
place and moved there together, so an error leaves no half-written output behind; and a
recording writer for the formats ``read_recording`` reads (WFDB, CSV, NPY, NPZ)."""

from __future__ import annotations

import csv
import datetime
import errno
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.errors import DataError, option

OUTPUT_FORMATS = ("wfdb", "csv", "npy", "npz")


def replace_durably(tmp: Path, final: Path) -> None:
    """``os.replace(tmp, final)`` that a power failure cannot undo halfway, not only a
    crash: ``tmp``'s data reach the disk before the rename, and the folder's new entry after
    it. Without the first sync a file system that delays allocation (ext4, XFS) may commit
    the rename before the data, and a power loss leaves an empty file under the final name
    (an empty ``last.pt`` where a run's progress was). A failed sync (a full disk found only
    now) is an ``OSError`` before anything is replaced."""
    sync_file(tmp)
    os.replace(tmp, final)
    sync_folder(Path(final).parent)


def sync_file(path: Path) -> None:
    """Make ``path``'s data reach the disk (before a rename puts it in place)."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: Path) -> None:
    """Make ``folder``'s entries (a rename into it) reach the disk, where that can be done."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # a folder that cannot be opened for syncing (Windows): the rename stands
    try:
        os.fsync(fd)
    except OSError:
        pass  # a file system that cannot sync a folder: the file itself is on disk
    finally:
        os.close(fd)


@contextmanager
def signals_deferred(notice: str = "") -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM while outputs are put in place, and deliver them
    afterwards: a set of outputs renamed one by one and interrupted halfway was left half
    new and half old (a new ``abp.csv`` without its beats and summary, an old report beside
    new figures), with the rest still under hidden names. ``notice``, printed on stderr
    before a held signal is delivered, says what the block had done by then (the command's
    "Aborted!" alone read as if nothing had been written). Only the main thread can change
    signal handlers; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    saved: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        if previous is None:
            continue  # a handler set outside Python: it could not be put back
        saved[signum] = previous
        signal.signal(signum, lambda got, frame: pending.append(got))
    completed = False
    try:
        yield
        completed = True
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)
        if pending and notice and completed:
            print(notice, file=sys.stderr, flush=True)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)  # as it would have come: now, to its own handler


def make_folder(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; returns those created, outermost
    first. A parent that is a file is a ``DataError`` that says so (``mkdir`` would only
    say "File exists")."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    if not d.is_dir():
        raise DataError(f"cannot write in {directory}: {d} is a file, not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def remove_if_empty(folders: Iterable[Path]) -> None:
    """Remove each of ``folders`` (give the innermost first) that is empty; one that is
    not holds something else, and stays."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty, or already gone


def set_aside(folder: Path, names: tuple[str, ...]) -> Path:
    """Move the entries ``names`` of ``folder`` into a hidden ``folder/.replaced.<pid>``:
    what ``--force`` replaces is kept until the replacement is complete (then
    :func:`drop_aside`), and :func:`put_back` restores it if that fails. A process killed
    outright leaves them there, and :func:`recover_set_aside` finishes the job later. The
    folder is named after its owner (host and process id), so that a replacement still
    running is not mistaken for an abandoned one."""
    owner = f".replaced.{socket.gethostname()}.{os.getpid()}."
    aside = Path(tempfile.mkdtemp(prefix=owner, dir=folder))
    moved = [name for name in names if (folder / name).exists()]
    # The list of what is moved is written (atomically) before anything moves, so that a
    # put-back interrupted at any point can be finished without losing anything.
    listing = aside / f"{_MOVED}.tmp"
    listing.write_text("".join(f"{name}\n" for name in moved))
    os.replace(listing, aside / _MOVED)
    for name in moved:
        # A name may lie in a subfolder (a report's figures/x.png): its folder is made in
        # the set-aside one, and left behind in ``folder`` only if something else is in it.
        (aside / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder / name, aside / name)
        _remove_empty_parents(folder, name)
    return aside


def _remove_empty_parents(folder: Path, name: str) -> None:
    """Remove the folders between ``folder`` and its entry ``name`` that are now empty."""
    for parent in Path(name).parents:
        if parent == Path("."):
            break
        try:
            (folder / parent).rmdir()
        except OSError:
            break  # not empty: what else is in it stays, and so do the folders above


# The file in a set-aside folder that lists the entries moved into it.
_MOVED = ".moved"


def _owner_gone(aside: Path) -> bool:
    """Whether the process that made ``aside`` (``.replaced.<host>.<pid>.<random>``) has
    ended: it ran on this host and no process has its id. Unknown owners count as alive,
    so nothing a running replacement set aside is ever touched."""
    parts = aside.name.split(".")
    if len(parts) < 5 or not parts[-2].isdigit():
        return False
    host, pid = ".".join(parts[2:-2]), int(parts[-2])
    return host == socket.gethostname() and pid != os.getpid() and not process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True


def abandoned_asides(folder: Path) -> list[Path]:
    """The ``folder/.replaced.*`` folders whose replacement was killed outright (their
    owner process has ended): what :func:`recover_set_aside` finishes."""
    return [a for a in sorted(folder.glob(".replaced.*")) if a.is_dir() and _owner_gone(a)]


def recover_set_aside(folder: Path, names: tuple[str, ...], finished: bool) -> bool:
    """Finish what a replacement killed outright left in ``folder/.replaced.*``: put the
    old entries back, or, when ``finished`` (the replacement got far enough to keep),
    drop them. Only folders whose owner process has ended are touched. Returns whether
    anything was put back."""
    restored = False
    for aside in abandoned_asides(folder):
        if finished:
            drop_aside(aside)
        else:
            put_back(folder, aside, names)
            restored = True
    return restored


def wait_for_recovery(folder: Path, timeout_s: float = 120.0) -> None:
    """Wait (at most ``timeout_s``) until no ``folder/.replaced.*`` is left for
    :func:`recover_set_aside` to finish. Under torchrun rank 0 alone recovers, before the
    process group exists; another rank checking the folder meanwhile would find the old run
    still set aside ("nothing to resume")."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(
        aside.is_dir() and _owner_gone(aside) for aside in folder.glob(".replaced.*")
    ):
        time.sleep(0.1)


def put_back(folder: Path, aside: Path, names: tuple[str, ...]) -> None:
    """Undo :func:`set_aside`: remove what the failed replacement wrote under ``names``
    and move the old entries back. Safe to run again after being interrupted: an entry
    that was set aside and is no longer in ``aside`` is already back (or was never moved)
    and is left alone; only entries that were not set aside are the replacement's own."""
    moved: set[str] | None
    try:
        moved = set((aside / _MOVED).read_text().splitlines())
    except FileNotFoundError:
        if not any((aside / name).exists() for name in names):
            drop_aside(aside)  # killed in set_aside before the list: nothing was moved
            return
        moved = None  # set aside by a version that kept no list: every target is new
    # Whatever was set aside comes back, also entries beyond ``names`` (a run's reports).
    extra = sorted(moved - set(names)) if moved is not None else []
    for name in (*names, *extra):
        target, old = folder / name, aside / name
        if moved is not None and name in moved and not old.exists():
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        if old.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, target)
    drop_aside(aside)


def drop_aside(aside: Path) -> None:
    """The replacement is complete: what was set aside goes."""
    shutil.rmtree(aside, ignore_errors=True)


# The hidden names this package writes through: ".NAME.PID.tmp" (checkpoints, data files),
# ".NAME.PID.staged.SUFFIX" (StagedOutputs), ".NAME.PID.tmp.SUFFIX" (figures),
# ".NAME.PID.making.SUFFIX" (the runner's data file); the suffix is NAME's own. A write
# killed outright (kill -9, a power cut) leaves one behind, as large as the output it was
# writing: the next write of that output removes it.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.(?:tmp|staged|making)(?P<suffix>\.[^.]+)?")


def is_temporary(name: str) -> bool:
    """``name`` is one of the hidden names this package writes an output through."""
    return _TEMPORARY.fullmatch(name) is not None


# The folders WFDB records are written in before they are staged (``_tempdir``).
_TEMPDIR = re.compile(r"\.innpar-(?P<pid>\d+)-[^.]+")
_TEMPDIRS = "/"  # their key below: no file has that name
# Within ``folders_listed_once``: the folders listed for them, each with its stale
# temporaries by NAME; outside it (None), every write lists its folder.
_STALE: dict[Path, dict[str, list[Path]]] | None = None


@contextmanager
def folders_listed_once() -> Iterator[None]:
    """Within this, a folder is listed for stale temporaries once, not once per output
    written into it (a run of 10,000 reconstructions into one folder); what a process killed
    meanwhile leaves is then removed by the next run."""
    global _STALE
    if _STALE is not None:  # nested: the outer one's listings hold
        yield
        return
    _STALE = {}
    try:
        yield
    finally:
        _STALE = None


def _stale_in(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found  # not there yet, or not listable: nothing to remove
    for entry in entries:
        if m := _TEMPORARY.fullmatch(entry.name):
            if m["suffix"] not in (None, Path(m["name"]).suffix):
                continue
            key = m["name"]
        elif m := _TEMPDIR.fullmatch(entry.name):
            key = _TEMPDIRS
        else:
            continue
        pid = int(m["pid"])
        if pid != os.getpid() and not process_alive(pid):
            found.setdefault(key, []).append(Path(entry.path))
    return found


def _remove_stale(folder: Path, key: str) -> list[Path]:
    folder = folder.absolute()
    if _STALE is None:
        listed = _stale_in(folder)
    elif folder in _STALE:
        listed = _STALE[folder]
    else:
        listed = _STALE[folder] = _stale_in(folder)
    removed = []
    for path in listed.pop(key, []):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            pass  # removed meanwhile
        except OSError:
            continue  # a read-only folder: left, and the write's own error says why
        removed.append(path)
    return removed


def remove_stale_temporaries(final: str | Path) -> list[Path]:
    """Remove what writes of ``final`` killed outright left next to it: its temporary
    copies whose process has ended (a running one's, another run writing it now, stay).
    Only ``final``'s own temporaries go: a hidden file of another name is not this write's
    to remove. Returns the paths removed."""
    final = Path(final)
    return _remove_stale(final.parent, final.name)


def _outputs_named(finals: list[Path]) -> str:
    """``finals`` in a few words: "OUT was", "its 10 outputs (in DIR) were"."""
    if len(finals) == 1:
        return f"{finals[0]} was"
    folders = list(dict.fromkeys(f.parent for f in finals))
    where = f"in {folders[0]}" if len(folders) == 1 else f"in {len(folders)} folders"
    return f"all {len(finals)} outputs ({where}) were"


class StagedOutputs:
    """Collects output files and moves them into place on :meth:`commit`.

    ``stage(final)`` returns a hidden path in ``final``'s directory to write to; ``commit``
    renames every staged file over its final name (same file system, so each rename is
    atomic); ``abort`` deletes them, and removes directories this object created if they
    are left empty. Use as a context manager: commit on success, abort on an exception.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []
        self._created: list[Path] = []
        self._replaced: list[Path] = []

    def _mkdir(self, directory: Path) -> None:
        self._created.extend(make_folder(directory))

    def stage(self, final: str | Path) -> Path:
        final = Path(final)
        self._mkdir(final.parent)
        remove_stale_temporaries(final)
        # The staged name keeps the suffix: writers that check it (figures) accept it.
        tmp = final.with_name(f".{final.name}.{os.getpid()}.staged{final.suffix}")
        self._staged.append((tmp, final))
        return tmp

    def write_text(self, final: str | Path, text: str) -> Path:
        self.stage(final).write_text(text)
        return Path(final)

    def staged_path(self, final: str | Path) -> Path:
        """Where ``final`` is staged (to read back what was written before the commit)."""
        for tmp, f in self._staged:
            if f == Path(final):
                return tmp
        raise KeyError(f"{final} was not staged")

    @property
    def finals(self) -> list[Path]:
        return [final for _, final in self._staged]

    def remove_on_commit(self, paths: Iterable[Path]) -> None:
        """Remove ``paths`` (an earlier run's outputs that these do not replace) in the
        commit, as the outputs are put in place: not before (an error would leave neither),
        nor after, where an interruption would leave them beside the new ones."""
        self._replaced += [Path(p) for p in paths]

    def commit(self) -> list[Path]:
        for tmp, _ in self._staged:
            if not tmp.exists():
                raise FileNotFoundError(f"staged output was never written: {tmp}")
        # What a rename would fail on, before any is made: one that failed halfway left
        # some outputs in place and the command said it had failed (a report whose
        # report.md was a folder; --save-predictions naming the report's own folder).
        finals = self.finals
        for final in finals:
            if final.is_dir() and not final.is_symlink():
                raise DataError(f"cannot write {final}: it is a folder; give a file name")
        twice = sorted({str(f) for f in finals if finals.count(f) > 1})
        if twice:
            raise DataError(f"{', '.join(twice)} would be written twice by one command")
        # Every file's data on disk before any output is replaced: a full disk that only a
        # sync finds stops the commit with every output as it was. Then the renames, a few
        # milliseconds with Ctrl-C and SIGTERM held, so that they all happen or none does.
        for tmp, _ in self._staged:
            sync_file(tmp)
        with signals_deferred(f"interrupted once {_outputs_named(finals)} in place"):
            for tmp, final in self._staged:
                os.replace(tmp, final)
            for path in self._replaced:
                path.unlink(missing_ok=True)
            for folder in dict.fromkeys(final.parent for _, final in self._staged):
                sync_folder(folder)
        done = self.finals
        self._staged, self._created, self._replaced = [], [], []
        return done

    def abort(self) -> None:
        for tmp, _ in self._staged:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                # Not there on a read-only folder, which says EROFS, not "missing": the
                # clean-up goes on, and the error that stopped the work is the one reported.
                pass
        self._staged = []
        remove_if_empty(reversed(self._created))
        self._created = []

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException as failure:
                # A sync that failed (a full disk) left every output as it was: the staged
                # files go, as for an error in the block.
                self._failed(failure)
                raise
            return
        self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        """Abort, and name the outputs in ``exc``'s message rather than the staged files
        (raising a ``DataError`` that does so where the message needs rewording)."""
        names = {str(tmp): str(final) for tmp, final in self._staged}
        self.abort()
        # A failed write (a full disk) names the hidden staged file, which is gone now:
        # the message names the output the user asked for.
        code = write_errno(exc)
        if isinstance(exc, OSError) and str(exc.filename) in names:
            exc.filename = names[str(exc.filename)]
        elif isinstance(exc, OSError) and exc.filename is None and code and names:
            # A failed write() names no file: which outputs were being written.
            why = SHORT_WRITE if exc.errno is None else os.strerror(code)
            raise DataError(
                f"cannot write {', '.join(names.values())}: {why}",
                errno=code,  # a full disk stays one: a folder run stops on it
            ) from None
        elif isinstance(exc, DataError):
            text = str(exc)
            for tmp, final in names.items():
                text = text.replace(tmp, final)
            if text != str(exc):
                raise DataError(text, errno=exc.errno) from None  # a full disk stays one


# numpy's tofile (wfdb.wrsamp writes through it) reports a write the disk cut short as
# OSError("75000 requested and 38384 written"), with no errno and no file name: the
# message named neither the output nor the cause, and a folder run took it for one bad
# recording and went on to fail every other one. The cause is not told (a full disk, a
# quota, a file-size limit); each stops a folder run as a full disk does.
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
SHORT_WRITE = "the disk took only part of it (it is full, or a quota or file size limit)"


def write_errno(exc: BaseException) -> int | None:
    """The errno of a failed write: its own, or ENOSPC for numpy's short write."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno is None and _SHORT_WRITE.fullmatch(str(exc)):
        return errno.ENOSPC
    return exc.errno


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(
    finals: list[Path],
    force: bool,
    inputs: list[Path] | tuple[Path, ...] = (),
    force_option: str | None = None,
) -> None:
    """Refuse to replace existing outputs unless ``force``, and, even with ``force``, an
    output that is one of the command's ``inputs`` (its data, checkpoint or recording):
    replacing what is being read would lose it; or that is not a regular file (a folder,
    or a device such as /dev/null, which running as root would replace with a file).
    ``force_option``: how the refusal names ``force`` (reconstruct_file's callers have no
    --force: "force (--force)"); by default the caller's spelling, "--force" on the command
    line and "force=True" in Python."""
    for final in finals:
        if Path(final).exists() and not Path(final).is_file():
            raise DataError(
                f"output {final} exists and is not a regular file; give the name of a file"
            )
        for source in inputs:
            if same_file(Path(final), Path(source)):
                raise DataError(f"output {final} is the input {source}; choose another output name")
    existing = [str(p) for p in finals if Path(p).exists()]
    if existing and not force:
        them = "it" if len(existing) == 1 else "them"
        raise DataError(
            f"output exists: {', '.join(existing)}; pass "
            f"{force_option or option('--force', 'force=True')} to replace {them}"
        )
    for final in finals:
        check_writable(Path(final))


def check_writable(path: Path) -> None:
    """Before the work that ``path`` is written after (an evaluation, a reconstruction):
    the folder it goes into, or the nearest one that exists, must be writable; a read-only
    one was found only at the end, the work lost."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(
            f"cannot write {path}: {folder} is not writable (read-only, or no permission)"
        )


def output_format(path: str | Path, input_format: str) -> str:
    """The recording format to write: from ``path``'s suffix (``.csv``, ``.npy``, ``.npz``,
    ``.hea`` or ``.dat`` for WFDB), else the input's format."""
    suffix = Path(path).suffix.lower()
    by_suffix = {".csv": "csv", ".npy": "npy", ".npz": "npz", ".hea": "wfdb", ".dat": "wfdb"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix in (".h5", ".hdf5"):
        raise DataError(
            f"{path}: HDF5 output is for a window-file input; write a recording as .csv, .npy, "
            ".npz or a WFDB record"
        )
    if suffix:
        # Otherwise "abp.txt" would become "abp.txt.csv" next to "abp.beats.csv".
        raise DataError(
            f"{path}: unknown output suffix {suffix!r}; use .csv, .npy, .npz, .hea (WFDB) or "
            "no suffix (the input's format)"
        )
    return input_format


def recording_paths(path: str | Path, fmt: str) -> list[Path]:
    """The files a recording written to ``path`` in ``fmt`` consists of; a ``DataError``
    for a format :func:`write_recording` cannot write."""
    if fmt not in OUTPUT_FORMATS:
        raise DataError(f"cannot write format {fmt!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    path = Path(path)
    if fmt == "wfdb":
        base = path.with_suffix("") if path.suffix.lower() in (".hea", ".dat") else path
        # Checked here, before the work the record is written after: ``abp.v2.hea`` was
        # written as record ``abp`` (``with_suffix`` took ``.v2`` for the suffix), beside
        # ``abp.v2.summary.json``; a space failed only at the end.
        # ASCII only, as WFDB names are (and read_wfdb reads them): "ö12" was written, then
        # refused when read back.
        if not re.fullmatch(r"[-\w]+", base.name, flags=re.ASCII):
            raise DataError(
                f"{path}: a WFDB record name may hold only ASCII letters, digits, '_' and '-', "
                f"not {base.name!r}"
            )
        return [base.with_suffix(".hea"), base.with_suffix(".dat")]
    suffix = {"csv": ".csv", "npy": ".npy", "npz": ".npz"}[fmt]
    return [path if path.suffix.lower() == suffix else Path(f"{path}{suffix}")]


# How a WFDB record written by write_recording keeps the input's clock (see there).
START_COMMENT = "start_s="


# Rows of a CSV recording written at a time.
CSV_BLOCK = 1 << 16


def write_recording(
    staged: StagedOutputs,
    path: str | Path,
    fmt: str,
    fs: float,
    name: str,
    values: np.ndarray,
    units: str,
    start_s: float = 0.0,
    base_time: str | None = None,
    base_date: str | None = None,
) -> list[Path]:
    """Stage one channel ``values (n,)`` at ``fs`` Hz as a recording (NaN = not available).

    WFDB: a 16-bit record named after ``path`` (``wfdb.wrsamp``; NaN becomes WFDB's invalid
    sample), with a header comment ``start_s=...`` when the clock does not start at 0, and
    the base time and date (ISO text: ``"10:30:00"``, ``"2024-05-01"``) of the input's
    header in its own; the other formats have no place for them (the summary keeps them). CSV:
    columns ``time_s`` (from ``start_s``, the input's clock) and ``name``, empty cells for
    NaN. NPY: the 1-D float64 array (no clock: the summary's ``start_s`` gives it). NPZ:
    ``name``, ``fs`` and ``start_s``. Returns the final paths.
    """
    values = np.asarray(values, dtype=np.float64)
    finals = recording_paths(path, fmt)
    if fmt == "wfdb":
        import wfdb

        record = finals[0].stem  # a valid name: recording_paths checked it
        targets = [staged.stage(final) for final in finals]
        with _tempdir(finals[0].parent) as tmpdir:
            wfdb.wrsamp(
                record,
                fs=float(fs),
                units=[units],
                sig_name=[name],
                p_signal=values[:, None],
                fmt=["16"],
                # A WFDB header's base time is a time of day; the input's clock (a CSV time
                # column at 3600 s, or a Unix time) is kept as a comment read_wfdb reads.
                comments=[f"{START_COMMENT}{float(start_s)!r}"] if start_s else None,
                # The wall clock of the first sample, as the input's header gave it: the
                # output starts where the input does (same rate, same length).
                base_time=None if base_time is None else datetime.time.fromisoformat(base_time),
                base_date=None if base_date is None else datetime.date.fromisoformat(base_date),
                write_dir=str(tmpdir),
            )
            for final, target in zip(finals, targets, strict=True):
                shutil.move(str(tmpdir / final.name), target)
    elif fmt == "csv":
        # Into the file a block of rows at a time: the whole text in memory first took about
        # 50 bytes a sample (a day at 125 Hz: 0.5 GB).
        with staged.stage(finals[0]).open("w") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["time_s", name])
            for a in range(0, values.size, CSV_BLOCK):
                t = start_s + np.arange(a, min(a + CSV_BLOCK, values.size)) / fs
                for ti, v in zip(t, values[a : a + CSV_BLOCK], strict=True):
                    writer.writerow([f"{ti:.6f}", "" if not np.isfinite(v) else f"{v:.6g}"])
    elif fmt == "npy":
        with staged.stage(finals[0]).open("wb") as fh:
            # Through the file object's write() (_Writes), not numpy's tofile: a full disk
            # then fails with its own errno (see write_errno), which tofile does not keep.
            np.save(_Writes(fh), values)
    else:  # npz: recording_paths has refused any other format
        with staged.stage(finals[0]).open("wb") as fh:
            np.savez(fh, **{name: values, "fs": np.float64(fs), "start_s": np.float64(start_s)})
    return finals


class _Writes:
    """A file that numpy does not recognise as one, so that ``np.save`` writes to it in
    chunks by ``write()`` rather than by ``ndarray.tofile``."""

    def __init__(self, fh: Any) -> None:
        self.write = fh.write


@contextmanager
def _tempdir(parent: Path) -> Iterator[Path]:
    _remove_stale(parent, _TEMPDIRS)  # of writes killed outright
    d = Path(tempfile.mkdtemp(prefix=f".innpar-{os.getpid()}-", dir=parent))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars and arrays as Python values, non-finite floats as ``None``
    and paths as strings, ready for ``json.dumps(..., allow_nan=False)``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def json_text(obj: Any) -> str:
    """Indented JSON of :func:`jsonable` ``obj``, with a final newline."""
    return json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n"
