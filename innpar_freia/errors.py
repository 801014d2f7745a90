"""Exceptions for problems a user can fix; the CLI shows their message without a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# Who is asking, for the messages that tell how to mend a call: "cli" while a command of the
# command line runs, so that they name its options (--resume), else "api", so that a Python
# caller is told the parameter to pass (resume=True), which an option's name is not. A
# ContextVar, not a global: the CLI's tests run it in-process, and a call to the API after
# a command must be answered in the API's terms again.
_SPELLING: ContextVar[str] = ContextVar("innpar_spelling", default="api")


def option(cli: str, api: str) -> str:
    """``cli`` (an option, "--resume") while the command line runs, else ``api`` (the
    parameter of the function called, "resume=True")."""
    return cli if _SPELLING.get() == "cli" else api


@contextmanager
def cli_spelling() -> Iterator[None]:
    """Messages made in the ``with`` name the command line's options (see :func:`option`);
    the spelling before it is back afterwards, however the block ends."""
    token = _SPELLING.set("cli")
    try:
        yield
    finally:
        _SPELLING.reset(token)


# torch's DataLoader re-raises an exception from a worker process as ``type(exc)(text)``,
# where ``text`` is "Caught DataError in DataLoader worker process 0.\nOriginal Traceback
# ...": the worker's whole formatted traceback, which the CLI would print as the message.
_WORKER_RERAISE = re.compile(
    r"\ACaught (?P<name>\w+) in DataLoader worker process \d+\.\nOriginal Traceback"
)


def _worker_message(text: str) -> str:
    """The original message inside a DataLoader worker's re-raised text, else ``text``."""
    match = _WORKER_RERAISE.match(text)
    if match is None:
        return text
    # The traceback ends with "module.Name: message" (the message may span lines); a chained
    # cause comes before it, so the last such line is the exception that was raised.
    heads = list(re.finditer(rf"^(?:[\w.]+\.)?{match['name']}: ", text, re.MULTILINE))
    return text[heads[-1].end() :].rstrip("\n") if heads else text


def counted(n: int, word: str, plural: str | None = None) -> str:
    """``n`` and ``word`` in the number ``n`` takes: "1 epoch", "2 epochs" ("done: 1 epochs"
    was printed after a one-epoch run). Here, beside the errors, for the messages of every
    layer (training's too, which must not import the command line)."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


class InnparError(Exception):
    """Base class of every error caused by user input (files, options, configurations)."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (_worker_message(args[0]),)
        super().__init__(*args)


class ConfigError(InnparError, ValueError):
    """An invalid configuration value, preset or key."""


class DataError(InnparError, ValueError):
    """A data file that is missing, corrupt, of another schema, or holds invalid values.
    ``errno``: the operating system's error behind it, where there was one (a full disk
    written through a staged output or a figure), so that a folder run still stops on it."""

    def __init__(self, *args: object, errno: int | None = None) -> None:
        super().__init__(*args)
        self.errno = errno


class UnknownRateError(DataError):
    """A recording that states no sampling rate, and none was given. ``channels``: the file's
    channels where they were read (a CSV's columns), so that a caller can say first that a
    file without the channel it needs is no recording (a table of records), which --fs would
    not mend."""

    def __init__(self, *args: object, channels: list[str] | None = None) -> None:
        super().__init__(*args)
        self.channels = channels


class CheckpointError(InnparError, ValueError):
    """A checkpoint that is missing, corrupt or from another model."""


class RunDirError(InnparError, ValueError):
    """A run directory that cannot be used as asked (it holds a run, or holds none to resume)."""


class TrainingDiverged(InnparError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def check_flag(name: str, value: object) -> bool:
    """``value`` of the flag ``name`` as a bool, or a TypeError: a flag is True or False (a
    numpy bool too). Anything else was taken by its truth: ``force="no"`` replaced a run,
    ``overwrite="no"`` a data file."""
    import numpy as np  # here: the CLI reads this module when it starts

    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def listed(items: list[Any], first: int) -> str:
    """The first ``first`` of ``items``, and how many more there are: a line of a message
    that stays short however many there are ("a, b and 7 more")."""
    more = f" and {len(items) - first} more" if len(items) > first else ""
    return ", ".join(map(str, items[:first])) + more
