"""One training per run directory: an advisory lock (``flock``) that a training holds on
``RUN_DIR/.train.lock`` from before it looks at the directory until it ends.

Two ``innpar train`` started within a second of each other both found the directory free
(the check reads files the other had not written yet) and both trained into it: every
epoch twice in ``metrics.jsonl``, the last writer's checkpoints. The lock is taken before
any check or write that assumes the directory is this run's, so the second is refused at
once, touching nothing. The kernel releases it when its holder ends, also when killed
outright (SIGKILL): a lock file left behind then blocks nothing, and the next run takes it.
The holder removes the file when it is done, so a finished run folder holds only its run.

Linux and macOS (``fcntl``). Under torchrun rank 0 alone takes it (see ``train``).

The experiment runner also takes ``.results.lock`` in an experiment's output folder while
it gathers the finished runs and writes the results table (``table_lock``): runners that
share an experiment each rewrite the table after every run, and one that read the runs
before another's run finished must not write its older table over the other's newer one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from innpar_freia.errors import RunDirError, option
from innpar_freia.outputs import make_folder, process_alive, remove_if_empty

LOCK_NAME = ".train.lock"
TABLE_LOCK_NAME = ".results.lock"

# Run directories this process holds (resolved path -> how many holds are nested): the
# experiment runner holds a run around its training and scoring, and train() inside it
# takes the same lock (a second flock of this process's own would refuse it).
_HELD: dict[Path, int] = {}


class RunDirBusy(RunDirError):
    """The run directory is being trained by another process; ``holder`` names it
    (`` (pid N)``, or "" where it has not said)."""

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder


def _holder(fd: int, wait_s: float = 1.0) -> str:
    """`` (pid N)`` (`` (pid N on HOST)`` from another host) as the holder wrote it into the
    lock file, or "" if it has not within ``wait_s``: it writes it just after it took the
    lock, and until then the file is empty, or names the holder before it (killed)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            # Its first line: the holder writes it over a longer one, then cuts the rest.
            text = os.pread(fd, 200, 0).decode(errors="replace").split("\n")[0].strip()
        except OSError:
            return ""
        pid, _, host = text.partition(" ")
        here = host == socket.gethostname()
        if pid.isdigit() and not (here and not process_alive(int(pid))):
            return f" (pid {pid}{'' if here else f' on {host}'})"
        if time.monotonic() > deadline:
            return ""
        time.sleep(0.01)


def held_by_another(run_dir: Path) -> str | None:
    """Whether another process is training ``run_dir`` now: `` (pid N)`` (or "" where it
    has not said) if so, ``None`` if not. Looks only; creates nothing (a folder without a
    lock file is held by no one)."""
    if _HELD.get(Path(run_dir).resolve()):
        return None  # this process's own hold
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    except OSError:
        return None  # no locks on this file system: no one can hold it
    finally:
        os.close(fd)  # closing lets go of a shared lock taken to look
    return None


def busy_message(run_dir: Path, holder: str = "") -> str:
    return (
        f"{run_dir} is being trained by another process{holder}; wait for it to end or "
        f"choose another {option('--out', 'run_dir')}"
    )


def _lock_exclusive(fd: int, wait: bool) -> None:
    """``flock(fd, LOCK_EX)``, at once unless ``wait``. Refused (``BlockingIOError``) only
    while a trainer holds it: a lock that no live process claims within a second is a
    look (:func:`held_by_another` holds a shared lock for an instant), and it is tried
    once more rather than refuse a training because a runner looked at that moment."""
    if wait:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if _holder(fd):
            raise
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _acquire(
    run_dir: Path, made: list[Path], name: str = LOCK_NAME, wait: bool = False
) -> int | None:
    """The open, locked lock file ``name`` of ``run_dir``, created with the folder if need
    be (the folders made are added to ``made``, outermost first); ``None`` where the folder
    cannot be written (nothing of this user's can train there) or its file system has no
    locks. If another process holds it: ``RunDirBusy``, or with ``wait`` wait for it."""
    path = run_dir / name
    for _ in range(1000):
        made += make_folder(run_dir)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue  # the folder was removed meanwhile (a run that left nothing): again
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                return None  # read-only: a write there fails, with its own message
            raise
        try:
            _lock_exclusive(fd, wait)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunDirBusy(busy_message(run_dir, holder), holder) from None
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                # A file system without locks (some network mounts): no one can hold it,
                # and the run goes on as before the lock existed, leaving no file.
                path.unlink(missing_ok=True)
                return None
            raise
        except BaseException:
            os.close(fd)
            raise
        # The holder before us removes the file as it lets go: a lock on the file it
        # removed is no lock on the run directory; take the one now there.
        try:
            ours = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            ours = False
        if not ours:
            os.close(fd)
            continue
        try:
            owner = f"{os.getpid()} {socket.gethostname()}\n".encode()
            os.pwrite(fd, owner, 0)
            os.ftruncate(fd, len(owner))
        except OSError:
            pass  # the pid is only for the message of a command refused
        return fd
    raise RunDirError(f"cannot take the lock {path}: it keeps being replaced")


def _release(run_dir: Path, fd: int, made: list[Path], name: str = LOCK_NAME) -> None:
    """Let go: the lock file goes first (while it is still held, so that whoever takes it
    next takes a file of its own), then the folders the lock made, if nothing else is in
    them (a run that failed before writing anything leaves no folder)."""
    path = run_dir / name
    try:
        if os.path.samestat(os.fstat(fd), os.stat(path)):
            path.unlink()
    except OSError:
        pass
    finally:
        os.close(fd)
    remove_if_empty(reversed(made))


@contextmanager
def _locked(folder: Path, name: str, wait: bool) -> Iterator[None]:
    """Hold the lock file ``name`` of ``folder`` (created with the folder if need be) for
    the duration (see :func:`_acquire`); folders created here and left empty are removed
    on the way out, with the lock file."""
    made: list[Path] = []
    try:
        fd = _acquire(folder, made, name, wait)
    except BaseException:
        remove_if_empty(reversed(made))
        raise
    try:
        yield
    finally:
        if fd is not None:
            _release(folder, fd, made, name)
        else:
            remove_if_empty(reversed(made))


@contextmanager
def training_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` (created if need be) for the duration, or raise ``RunDirBusy``
    naming the process that holds it. Nested holds of one process on one folder are one.
    Folders created here and left empty are removed on the way out."""
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    with _locked(run_dir, LOCK_NAME, wait=False):
        key = run_dir.resolve()  # the folder exists now
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]


@contextmanager
def table_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s results-table lock for the duration, waiting for another runner
    that holds it (it holds it for the seconds it takes to gather and write the table).
    The lock file is removed on the way out: a results folder is versioned."""
    with _locked(Path(folder), TABLE_LOCK_NAME, wait=True):
        yield
