"""Run experiments: train and evaluate every variant x test fold x seed, write result tables.

    python experiments/run.py experiments/configs/smoke.toml
    python experiments/run.py experiments/configs/cv_c2015.toml --device cuda
    python experiments/run.py experiments/configs/ablation_c2015.toml --only paper,grad-weight-0.25

Runs go to ``experiments/results/<name>/runs/...``; tables to ``results.md`` and
``results.json`` beside them (mean ± SD over folds and seeds, hardware, date, commit).
Interrupted runs resume; finished ones are skipped, so the command can be repeated. A run
whose training diverges is reported and the others go on; the runner then exits 1 naming
it, and running again trains it again.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from innpar_freia.cli import stop_on_sigterm  # noqa: E402
from innpar_freia.cli.common import (  # noqa: E402
    ConsoleCallbacks,
    NonEmptyPath,
    os_error_message,
)
from innpar_freia.errors import InnparError, cli_spelling, listed  # noqa: E402
from innpar_freia.experiments import (  # noqa: E402
    check_selection,
    load_experiment,
    run_experiment,
)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument(
    "configs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    type=NonEmptyPath(file_okay=False, path_type=Path),
    default=HERE / "results",
    help="Results directory.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    help="auto = CUDA when present.",
)
@click.option("--only", default=None, help="Comma-separated variant names to run.")
@click.option("--folds", default=None, help="Comma-separated test folds (default: the config's).")
@click.option("--seeds", default=None, help="Comma-separated seeds (default: the config's).")
@click.option("--quiet", is_flag=True, help="No per-epoch lines.")
def main(
    configs: tuple[Path, ...],
    out: Path,
    device: str,
    only: str | None,
    folds: str | None,
    seeds: str | None,
    quiet: bool,
) -> None:
    """Train and evaluate the experiments in CONFIGS (TOML files)."""
    # SIGTERM (kill, a batch scheduler's limit) cleans up as Ctrl-C does: a run killed
    # before its first checkpoint leaves no folder that a later, edited config trips on.
    stop_on_sigterm()
    fold_list = _integers(folds, "--folds")
    seed_list = _integers(seeds, "--seeds")
    only_list = _names(only, "--only")
    # Every file, and the variants, folds and seeds chosen in it, before anything trains: a
    # typo in the second of two experiments was found after the first had run (hours).
    names: dict[str, Path] = {}
    for config in configs:
        try:
            exp = check_selection(load_experiment(config), only_list, fold_list, seed_list)
        except InnparError as exc:
            raise click.ClickException(_message(config, exc)) from None
        other = names.setdefault(exp.name, config)
        if other.resolve() != config.resolve():
            # One results folder: the second would rewrite the first's tables.
            raise click.ClickException(
                f"{other} and {config} are both experiment {exp.name!r}, whose results "
                f"go to {out / exp.name}: give one of them another name"
            )
    failures: list[str] = []  # of the experiments that have run, for an interruption too
    try:
        # The library's messages in a command line's terms, as they were before they
        # followed their caller: this script is run as a command, not called from Python.
        with cli_spelling():
            _run_all(configs, out, device, only_list, fold_list, seed_list, quiet, failures)
    except (KeyboardInterrupt, SystemExit) as exc:
        # SIGTERM (see stop_on_sigterm) had ended the runner without a word, and Ctrl-C
        # with click's "Aborted!" alone: say how to go on, and which runs of the
        # experiments before the interrupted one failed (named nowhere else on screen).
        if isinstance(exc, KeyboardInterrupt) or exc.code == 128 + signal.SIGTERM:
            before = f"; before it, {'; '.join(failures)}" if failures else ""
            click.echo(
                "\ninterrupted; the same command goes on: finished runs are kept, and the "
                "interrupted one resumes from its last checkpoint (or starts again, if it "
                f"had none){before}",
                err=True,
            )
        raise


def _run_all(
    configs: tuple[Path, ...],
    out: Path,
    device: str,
    only_list: list[str] | None,
    fold_list: list[int] | None,
    seed_list: list[int] | None,
    quiet: bool,
    failures: list[str],
) -> None:
    """Each experiment in turn, its results table when it is done; at the end, an error
    naming the runs whose training failed (each experiment has gone on without them). An
    experiment that stops with an error ends the command with it, naming those failures
    of the experiments before it too (they were dropped). ``failures`` gathers them, one
    line per experiment, as each ends."""
    for config in configs:
        try:
            results = run_experiment(
                config,
                out,
                device=device,
                only=only_list,
                folds=fold_list,
                seeds=seed_list,
                log=lambda s: click.echo(s, err=True),
                callbacks=ConsoleCallbacks(quiet=quiet),
            )
        except InnparError as exc:
            raise click.ClickException(_with_failures(_message(config, exc), failures)) from None
        except OSError as exc:  # a folder made read-only or a disk filled while it ran
            message = _message(config, os_error_message(exc))
            raise click.ClickException(_with_failures(message, failures)) from None
        table = out / results["experiment"] / "results.md"
        click.echo(f"{config}: {table}")
        # The runs this command selected: the table also lists the failed runs that --only,
        # --folds or --seeds left out, which this command did not try (nor will a rerun).
        failed = [
            f"{f['variant']} {Path(f['run_dir']).name}"
            for f in results["failed"]
            if (only_list is None or f["variant"] in only_list)
            and (fold_list is None or f["test_fold"] in fold_list)
            and (seed_list is None or f["seed"] in seed_list)
        ]
        if failed:
            failures.append(
                f"{config}: {len(failed)} run{'s' if len(failed) != 1 else ''} failed in "
                f"training ({listed(failed, 6)}), why is in {table}"
            )
    if failures:
        # One line, after every experiment has run the rest of its runs.
        raise click.ClickException(
            "; ".join(failures) + "; running again trains them again (they are seeded: expect them "
            "to fail again unless the configuration changes)"
        )


def _with_failures(message: str, failures: list[str]) -> str:
    """``message`` (the error that stopped an experiment), and the failed runs of the
    experiments before it, which the command had gone on without."""
    if not failures:
        return message
    return f"{message}; before it, {'; '.join(failures)}"


def _message(config: Path, exc: Exception | str) -> str:
    """The error, naming the experiment file (most errors of one name it already)."""
    msg = str(exc)
    return msg if msg.startswith(str(config)) else f"{config}: {msg}"


def _names(text: str | None, option: str) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]``; None when the option was not given. An empty item is an
    error: ``--only "$VARIANTS"`` with the variable unset would otherwise run everything."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise click.BadParameter(
            f"expected a comma-separated list without empty items, got {text!r}",
            param_hint=option,
        )
    return items


def _integers(text: str | None, option: str) -> list[int] | None:
    """``"0,2"`` -> ``[0, 2]``; None when the option was not given."""
    items = _names(text, option)
    if items is None:
        return None
    try:
        return [int(f) for f in items]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers, got {text!r}", param_hint=option
        ) from None


if __name__ == "__main__":
    main()
