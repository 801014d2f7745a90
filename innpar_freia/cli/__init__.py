"""The ``innpar`` command line: a thin layer that parses options and calls the library.

Heavy imports (torch, FrEIA, h5py) happen inside the commands so that ``--help`` is fast.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import weakref
from typing import Any, NoReturn

import click

from innpar_freia import __version__
from innpar_freia.cli.common import InnparGroup, exit_other_rank, other_rank


@click.group(
    cls=InnparGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True}
)
@click.version_option(__version__, prog_name="innpar-freia")
def cli() -> None:
    """INN-PAR on FrEIA: reconstruct arterial blood pressure (ABP) from PPG.

    \b
    First steps:
      innpar demo                         train on built-in synthetic data (~1.5 min, CPU)
      innpar data synth --out data.h5     make a synthetic dataset
      innpar train --data data.h5         train (default recipe innpar-plus-pair3)
      innpar eval --checkpoint runs/00000-innpar-plus-pair3/checkpoints/best.pt --data data.h5
      innpar check --preset paper         prove exact invertibility
      innpar reconstruct --checkpoint best.pt record --out record_abp --plot record.png
      innpar plot training runs/00000-innpar-plus-pair3 --out training.png
    """


def _register() -> None:
    from innpar_freia.cli import core, data, plot, reconstruct

    for command in (
        core.train_cmd,
        core.eval_cmd,
        core.check_cmd,
        core.demo_cmd,
        core.presets_cmd,
        data.data,
        reconstruct.reconstruct_cmd,
        plot.plot,
    ):
        cli.add_command(command)


_register()


def stop_on_sigterm() -> None:
    """Make SIGTERM (``kill``, a batch scheduler's time limit) stop a command the way Ctrl-C
    does, by an exception in the main thread, so that its cleanup runs: staged outputs and
    temporary files are removed, and a run that wrote no checkpoint is discarded. Python's
    default is to die at once, which left a half-written hidden file behind. Both signals
    wait for a finaliser (a ``__del__``, a weakref callback) to return: raised inside one,
    the exception is printed and ignored, and the command runs on.

    Not under torchrun: a rank blocked in a collective would only see the exception once
    the collective returns, and torchrun stops its ranks with SIGTERM expecting them gone.
    Forked DataLoader workers inherit the handler and die as before.
    """
    if "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ:
        return
    main_pid = os.getpid()

    def stop(signum: int, frame: Any) -> None:
        if os.getpid() != main_pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if _in_finaliser(frame):
            # Raised in a weakref callback or a __del__ (h5py's objects run them often),
            # the exception would be printed as "Exception ignored" and the command would
            # run on: the signal comes again shortly, to be handled once the finaliser has
            # returned (raise_signal would call this handler again at once, inside it).
            again = threading.Timer(0.01, os.kill, (os.getpid(), signum))
            again.daemon = True
            again.start()
            return
        _TERMINATED.append(signum)
        raise SystemExit(128 + signum)

    def interrupt(signum: int, frame: Any) -> None:
        # Ctrl-C as Python's own handler has it (KeyboardInterrupt), but never inside a
        # finaliser, where the exception was printed with a traceback and ignored, and the
        # command ran on to its end and exited 0: it comes again once the finaliser is done.
        if os.getpid() == main_pid and _in_finaliser(frame):
            again = threading.Timer(0.01, os.kill, (os.getpid(), signum))
            again.daemon = True
            again.start()
            return
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not one set by a caller
        signal.signal(signal.SIGINT, interrupt)


def _in_finaliser(frame: Any) -> bool:
    """Whether ``frame`` runs inside a finaliser, where Python prints and ignores an
    exception: a ``__del__``, or a weakref callback (the standard library's own, such as
    ``WeakValueDictionary``'s)."""
    weakref_file = weakref.__file__
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code.co_filename == weakref_file:
            return True
        frame = frame.f_back
    return False


# Signals the handler turned into SystemExit. Python ignores an exception raised while it
# runs a weakref callback or a __del__ (it prints "Exception ignored"), so the command can
# run on to its end; it still exits with the status of a terminated process.
_TERMINATED: list[int] = []


def _main_quietly() -> None:
    """Under torchrun, ranks other than 0: every rank parses the same command line and
    meets the same usage errors, so only rank 0 prints them (and "Aborted!" on Ctrl-C)."""
    try:
        code = cli(prog_name="innpar", standalone_mode=False)
    except click.exceptions.Abort:
        raise SystemExit(1) from None
    except click.ClickException as exc:
        exit_other_rank(exc.exit_code, f"Error: {exc.format_message()}")
    except Exception as exc:
        if not lost_a_peer(exc):
            raise
        # Another rank stopped (rank 0 met an error of its own, such as a full disk while
        # checkpointing, and said why): this rank's collective failed with it. Its own
        # traceback of a closed connection would bury rank 0's message.
        exit_other_rank(1, "Error: lost the connection to the other processes (see above)")
    raise SystemExit(code if isinstance(code, int) else 0)


# What a collective raises when a peer process has gone (gloo's and NCCL's wording).
_PEER_GONE = re.compile(
    r"connection (closed|reset) by peer|broken pipe|NCCL communicator was aborted|"
    r"remote process exited",
    re.IGNORECASE,
)


def lost_a_peer(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it came from) is a collective failing because
    another process of the group has gone."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in ("DistBackendError", "DistNetworkError"):
            return True
        if isinstance(current, RuntimeError) and _PEER_GONE.search(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def _exit_now(code: object) -> NoReturn:
    """End the process with ``code`` (a ``SystemExit`` code: None, a number or a message)
    without interpreter shutdown, once what it printed is flushed."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # what Python does with SystemExit("message")
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(status)


def main() -> None:
    stop_on_sigterm()
    try:
        try:
            if other_rank():
                _main_quietly()
            cli(prog_name="innpar")
        finally:
            if _TERMINATED:  # even if the SystemExit was swallowed (see _TERMINATED)
                raise SystemExit(128 + _TERMINATED[0])
    except SystemExit as exc:
        # A process that joined a process group (torchrun) may still run the group's
        # threads, which can abort the interpreter's shutdown: see
        # innpar_freia.distributed.joined_a_group. Everything is written by now (files are
        # closed when the command returns), so the process ends here with its exit code.
        distributed = sys.modules.get("innpar_freia.distributed")  # imported only if used
        if distributed is not None and distributed.joined_a_group():
            _exit_now(exc.code)
        raise
