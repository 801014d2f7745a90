"""Shared CLI plumbing: user-error handling, JSON output, progress display."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from innpar_freia.errors import (  # noqa: F401 (counted: used by the CLI)
    InnparError,
    cli_spelling,
    counted,
)


class InnparGroup(click.Group):
    """A click group that turns every user error into one message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            # The library's messages name this command's options, not the API's parameters.
            with cli_spelling():
                return super().invoke(ctx)
        except InnparError as exc:
            _fail(str(exc))
        except BrokenPipeError:
            # The reader went away (innpar data check FILE | head): there is nobody to tell.
            # Exit as a command killed by SIGPIPE does, with stdout sent nowhere so that
            # the flush at exit fails no more.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(128 + 13) from None
        except OSError as exc:
            # Unwritable output directories, full disks, unreadable inputs.
            _fail(os_error_message(exc))
        except MemoryError as exc:
            # numpy's "Unable to allocate 1.40 GiB for an array with shape (301140, 625)"
            # came with 40 lines of traceback (eval of 300k windows under an 8 GB limit).
            # Outputs staged so far are gone by now, as for any error.
            detail = f": {exc}" if str(exc) else ""
            _fail(
                f"out of memory{detail}; the input is too large to be held at once here: "
                "give the command less of it (fewer windows or a shorter recording), or run it "
                "on a machine with more memory"
            )


@contextmanager
def output_folder(out: Path) -> Iterator[None]:
    """The missing folders of ``out`` (one output file) made for the command in the
    ``with``, and removed again, if still empty, when it fails: ``data import`` and ``data
    synth`` refused a folder that did not exist, where reconstruct and plot make it."""
    from innpar_freia.outputs import make_folder, remove_if_empty

    created = make_folder(Path(out).parent)
    try:
        yield
    except BaseException:
        remove_if_empty(reversed(created))
        raise


class NonEmptyPath(click.Path):
    """``click.Path`` that refuses an empty value: ``--out "$RUN"`` with the variable unset
    gave ``""``, which became the current folder, and a run or a report was written there."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path (an unset shell variable?); give a name", param, ctx)
        return super().convert(value, param, ctx)


class CheckpointFile(NonEmptyPath):
    """An existing checkpoint file. One that is missing because an ``innpar train --force``
    into its run was killed outright (its run set aside in ``RUN/.replaced.*``, put back by
    the next ``innpar train`` there) says so: click's "does not exist" alone sent the user
    looking for a lost run."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            path = Path(value) if isinstance(value, (str, Path)) else None
            if path is None or path.exists() or path.parent.name != "checkpoints":
                raise
            from innpar_freia.outputs import abandoned_asides

            run = path.parent.parent
            kept = [a for a in abandoned_asides(run) if (a / "checkpoints" / path.name).is_file()]
            if not kept:
                raise
            self.fail(
                f"{str(path)!r} does not exist: an 'innpar train --force' into {run} was "
                f"stopped outright before its first checkpoint, and the run it was replacing "
                f"is set aside in {kept[0]}; any 'innpar train' with --out {run} puts it back "
                f"before it starts ('innpar train --data DATA --out {run} --resume' then "
                "continues it, or says it is finished)",
                param,
                ctx,
            )


class FloatRange(click.FloatRange):
    """click's ``FloatRange`` for a number that must be finite. click's own lets "nan"
    through every bound (NaN fails each comparison that would refuse it) and "inf" through
    an open end: ``--threshold nan`` found no leakage, ``--fs nan`` gave a traceback."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def file_name(example: str):
    """A click callback for an option naming a file to write: the name as a ``Path``,
    refusing one that ends in a slash (``Path`` would drop the slash and the file would be
    written under the folder's name). The option's type must not convert to ``Path``."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
        if value is not None and value.endswith(("/", "\\")):
            raise click.BadParameter(
                f"{value!r} names a folder; give a file name such as {example}"
            )
        return None if value is None else Path(value)

    return callback


def _fail(message: str) -> None:
    """Exit 1 with ``message``; under torchrun, once (see :func:`exit_other_rank`)."""
    if other_rank():
        exit_other_rank(1, f"Error: {message}")
    raise click.ClickException(message) from None


def other_rank() -> bool:
    """A torchrun process other than rank 0."""
    return "LOCAL_RANK" in os.environ and os.environ.get("RANK", "0") != "0"


# How long a rank other than 0 waits before it reports a user error itself.
OTHER_RANK_WAIT_S = 10.0


def exit_other_rank(code: int, message: str) -> None:
    """End a rank other than 0 on a user error without printing the line rank 0 prints:
    the checks behind user errors (options, data, run directory) run alike on every rank.
    Exiting at once would let torchrun stop rank 0 before it has said why; so this rank
    waits, and torchrun stops it when rank 0 fails. Should rank 0 not fail (an error of
    this rank's alone), the message is printed after the wait."""
    time.sleep(OTHER_RANK_WAIT_S)
    click.echo(f"[rank {os.environ.get('RANK')}] {message}", err=True)
    raise SystemExit(code)


# Outputs are written under hidden names next to their final place (".abp.csv.123.staged.csv",
# ".fig.123.tmp.png") and renamed when complete: naming those would puzzle the user.
_STAGED_NAME = re.compile(r"^\..+\.\d+\.(staged|tmp)")


def os_error_message(exc: OSError) -> str:
    """One line for an ``OSError``: what went wrong and where, naming the folder rather
    than a hidden temporary file inside it."""
    reason = exc.strerror or str(exc)
    filename = getattr(exc, "filename", None)
    if not filename:
        return reason
    path = Path(str(filename))
    if _STAGED_NAME.match(path.name):
        return f"cannot write in {path.parent}: {reason}"
    return f"{reason}: {path}"


def to_json(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON (no NaN, which strict readers refuse): numpy values as Python's, paths
    as strings, and a number that is not finite as null, in dicts and lists too."""
    from innpar_freia.outputs import jsonable  # numpy: not needed for --help

    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def echo_json(obj: Any) -> None:
    click.echo(to_json(obj))


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class ConsoleCallbacks:
    """Progress for humans: a progress bar on a terminal, one summary line per epoch."""

    def __init__(self, quiet: bool = False, stream: Any = None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.epochs = 0
        self._t = 0.0

    def _line(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def on_start(self, info: dict[str, Any]) -> None:
        self.epochs = info["epochs"]
        w = info["split"]["windows"]
        split = f"train {w['train']}, val {w['val']}, test {w['test']} windows"
        resumed = f", resuming after epoch {info['resumed_at']}" if info["resumed_at"] else ""
        self._line(
            f"training {info['n_params']:,} parameters on {info['device']} "
            f"(x{info['world_size']}); {split}{resumed}\nrun directory: {info['run_dir']}"
        )

    def on_batch(self, epoch: int, step: int, steps: int, loss: float) -> None:
        if self.quiet or not self.tty:
            return
        now = time.monotonic()
        if step != steps and now - self._t < 0.2:
            return
        self._t = now
        width = 30
        done = int(width * step / steps)
        bar = "#" * done + "-" * (width - done)
        self.stream.write(f"\repoch {epoch}/{self.epochs} [{bar}] {step}/{steps} loss {loss:.4f}")
        self.stream.flush()

    def on_epoch(self, r: dict[str, Any]) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\r" + " " * 79 + "\r")
        val = ""
        if "val_mae" in r:
            val = (
                f"  val MAE {r['val_mae']:.2f} mmHg (SBP {r['val_sbp_mae']:.1f}, "
                f"DBP {r['val_dbp_mae']:.1f}, MAP {r['val_map_mae']:.1f})"
            )
        self._line(
            f"epoch {r['epoch']:>4}/{self.epochs}  loss {r['train_loss']:.5f}{val}  "
            f"best {r['best_epoch']}  {r['epoch_seconds']:.1f} s  "
            f"{r['windows_per_second']:.0f} win/s"
        )

    def on_message(self, text: str) -> None:
        if text.startswith("warning:"):
            click.echo(text, err=True)  # shown with --quiet and --json too (stderr)
        else:
            self._line(text)
