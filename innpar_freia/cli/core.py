"""``innpar train``, ``eval``, ``check``, ``demo`` and ``presets``."""

from __future__ import annotations

import json
import os
import shlex
import signal
from pathlib import Path
from typing import Any

import click

from innpar_freia.cli.common import (
    CheckpointFile,
    ConsoleCallbacks,
    FloatRange,
    NonEmptyPath,
    counted,
    echo_json,
    file_name,
    fmt,
    to_json,
)
from innpar_freia.config import (
    MAX_LR,
    PRESETS,
    TRAIN_DEFAULT_PRESET,
    invertible_preset_names,
    preset_names,
)

EXISTING_FILE = NonEmptyPath(exists=True, dir_okay=False, path_type=Path)


@click.command("train")
@click.option("--data", type=EXISTING_FILE, required=True, help="HDF5 window file to train on.")
@click.option(
    "--preset",
    type=click.Choice(preset_names()),
    default=None,
    help=f"Named architecture and recipe  [default: {TRAIN_DEFAULT_PRESET}].",
)
@click.option(
    "--config",
    "config_file",
    type=EXISTING_FILE,
    default=None,
    help="TOML file with preset, [model] and [train] settings.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Global batch size.")
@click.option(
    "--lr",
    type=FloatRange(min=0, min_open=True, max=MAX_LR),
    default=None,
    help="Adam learning rate.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="Where to train  [default: auto = CUDA when present].",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Seed of init and shuffling."
)
@click.option(
    "--test-fold",
    type=click.IntRange(min=0),
    default=None,
    help="With a foldwise file: test fold k (validation k+1 mod K, training the rest)  "
    "[default: the file's split column, else its last fold].",
)
@click.option(
    "--val-fold",
    type=click.IntRange(min=-1),
    default=None,
    help="Override the validation fold of the nested scheme (-1: none, train on the rest).",
)
@click.option(
    "--num-workers", type=click.IntRange(min=0), default=None, help="DataLoader worker processes."
)
@click.option(
    "--out",
    "run_dir",
    type=NonEmptyPath(file_okay=False, path_type=Path),
    default=None,
    help="Run directory  [default: runs/NNNNN-PRESET].",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--force", is_flag=True, help="Start over in --out even if it holds a run.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary at the end.")
def train_cmd(
    data: Path,
    preset: str | None,
    config_file: Path | None,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    device: str | None,
    seed: int | None,
    test_fold: int | None,
    val_fold: int | None,
    num_workers: int | None,
    run_dir: Path | None,
    resume: bool,
    force: bool,
    dry_run: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Train INN-PAR on the training split of DATA, validating every epoch.

    Writes config.json, metrics.jsonl and checkpoints/{last,best}.pt into the run
    directory. Under `torchrun --nproc_per_node=N` it trains with DistributedDataParallel.

    \b
    Examples:
      innpar train --data data.h5
      innpar train --data folds.h5 --test-fold 3 --epochs 100 --out runs/fold3
      innpar train --data folds.h5 --out runs/fold3 --resume
      innpar train --data data.h5 --config recipe.toml --dry-run
    """
    from innpar_freia.config import load_run_config
    from innpar_freia.outputs import remove_if_empty
    from innpar_freia.train import RESUME_OVERRIDES, claim_run_dir, train

    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "device": device,
            "seed": seed,
            "test_fold": test_fold,
            "val_fold": val_fold,
            "num_workers": num_workers,
        }.items()
        if v is not None
    }
    claimed: list[Path] = []
    if resume:
        if run_dir is None:
            raise click.UsageError("--resume needs --out RUN_DIR, the run to continue")
        if preset or config_file:
            raise click.UsageError(
                "--resume continues a run with its own configuration: drop --preset/--config"
            )
        bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if bad:
            raise click.UsageError(
                "--resume keeps the run's configuration; only --epochs, --device and "
                "--num-workers may be given (not "
                + ", ".join("--" + b.replace("_", "-") for b in bad)
                + ")"
            )
        if dry_run:
            raise click.UsageError("--dry-run shows a new run's configuration; not with --resume")
        run_config = None
    else:
        run_config = load_run_config(preset, config_file, train_overrides=overrides)
        if dry_run:
            # What the run would train with: checked against the data as a run checks it
            # (the network at the data's rate and window length, the splits it would use).
            from innpar_freia.train import (
                check_global_batch,
                check_run_dir,
                fit_to_data,
                resolve_device,
            )

            run_config, _, plan = fit_to_data(run_config, Path(data))
            resolve_device(run_config.train.device)  # --device cuda on a machine without
            # Under torchrun, the processes the batch is shared over.
            check_global_batch(run_config.train.batch_size, int(os.environ.get("WORLD_SIZE", 1)))
            if run_dir is not None:  # a run there is replaced only with --force
                from innpar_freia.outputs import check_writable

                check_run_dir(Path(run_dir), resume=False, force=force)
                check_writable(Path(run_dir) / "config.json")  # a read-only folder: not 0
            if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, said once
                click.echo(to_json({**run_config.to_dict(), "split": plan.describe()}))
            return
        if run_dir is None:
            if "LOCAL_RANK" in os.environ:
                # Each process would number its own folder, and they must share one.
                raise click.UsageError(
                    "under torchrun, give the run directory with --out: every process must "
                    "name the same one"
                )
            run_dir, claimed = claim_run_dir("runs", run_config.preset)
    last = Path(run_dir) / "checkpoints" / "last.pt"
    before = last.stat().st_mtime_ns if last.is_file() else None
    try:
        try:
            result = train(
                run_config,
                data,
                run_dir,
                resume=resume,
                force=force,
                resume_overrides=overrides if resume else None,
                callbacks=ConsoleCallbacks(quiet=quiet or as_json),
            )
        except BaseException:
            remove_if_empty(claimed)  # the numbered folder made for a run that wrote nothing
            raise
    except (KeyboardInterrupt, SystemExit) as exc:
        # Ctrl-C, or SIGTERM (see innpar_freia.cli): say how to go on, if this command's
        # run can go on: a resumed one, or a new one that wrote its first checkpoint (not a
        # run that --force was replacing, which is put back as it was).
        interrupted = isinstance(exc, KeyboardInterrupt) or exc.code == 128 + signal.SIGTERM
        hint = _resume_hint(data, run_dir, last, before, resume, overrides)
        if interrupted and hint and int(os.environ.get("RANK", "0")) == 0:
            click.echo(f"\ninterrupted; {hint}", err=True)
        raise
    except Exception as exc:
        from innpar_freia.cli import lost_a_peer

        if "LOCAL_RANK" not in os.environ or not lost_a_peer(exc):
            raise
        # Another process of this run ended (killed, out of memory): rank 0's collective
        # fails with gloo's or NCCL's traceback of a closed connection, which says neither
        # what happened nor how to go on. (Other ranks say so in innpar_freia.cli.)
        hint = _resume_hint(data, run_dir, last, before, resume, overrides)
        raise click.ClickException(
            "lost the connection to another process of this run (it ended: see torchrun's "
            "report); " + (hint or f"nothing of {run_dir} was kept: run the same command again")
        ) from None
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun only rank 0 reports
    summary = {
        "run_dir": str(result.run_dir),
        "best_checkpoint": str(result.best_checkpoint),
        "last_checkpoint": str(result.last_checkpoint),
        "epochs_completed": result.epochs_completed,
        "best_epoch": result.best_epoch,
        "best_val_mae": result.best_val_mae,
        "stopped_early": result.stopped_early,
    }
    if as_json:
        echo_json(summary)
    else:
        best = f"{result.best_val_mae:.2f} mmHg" if result.best_val_mae is not None else "n/a"
        click.echo(
            f"done: {counted(result.epochs_completed, 'epoch')}; best validation MAE {best} "
            f"at epoch {result.best_epoch}\nbest checkpoint: {result.best_checkpoint}"
        )


def _resume_hint(
    data: str,
    run_dir: str | Path,
    last: Path,
    before: int | None,
    resume: bool,
    overrides: dict[str, Any],
) -> str | None:
    """ "RUN continues from its last completed epoch with: COMMAND", if this command's run
    can go on after it stopped: a resumed one, or a new one that wrote its first checkpoint
    (``before``: last.pt's mtime when the command began); not a run that --force was
    replacing, which is put back as it was."""
    after = last.stat().st_mtime_ns if last.is_file() else None
    if after is None or not (resume or after != before):
        return None
    epochs_opt = f" --epochs {overrides['epochs']}" if "epochs" in overrides else ""
    # Under torchrun, the same launcher again: a plain command would resume in one
    # process (it can, but the user asked for several).
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    nodes = f"--nnodes={world // local} " if world > local else ""
    launcher = (
        f"torchrun {nodes}--nproc_per_node={local} -m innpar_freia"
        if world > 1 and "LOCAL_RANK" in os.environ
        else "innpar"
    )
    command = (
        f"{launcher} train --data {shlex.quote(str(data))} "
        f"--out {shlex.quote(str(run_dir))} --resume{epochs_opt}"
    )
    return f"{run_dir} continues from its last completed epoch with:\n  {command}"


def _predictions_file(path: Path | None) -> Path | None:
    """A predictions file is HDF5, named so: any name was taken, and with --force
    ``--save-predictions runs/a/checkpoints/last.pt`` replaced a run's checkpoint (or a
    figure) by an HDF5 file."""
    if path is not None and path.suffix.lower() not in (".h5", ".hdf5"):
        raise click.BadParameter(
            f"{str(path)!r}: predictions are an HDF5 file; give a name ending in .h5, such as "
            "preds.h5"
        )
    return path


def format_metrics(m: dict[str, Any]) -> str:
    """A human-readable summary of an evaluation result."""
    from innpar_freia.report_content import aami_text, mae_text, mesd_text, r_text

    lines = [f"{m['checkpoint']} (epoch {m['epoch']}) on {m['data']} [{m['split']}]"]

    def row(name: str, r: dict[str, Any]) -> str:
        w = r["waveform"]
        bp = "  ".join(
            f"{k.upper()} {mae_text(r[k]['mae'])} ({mesd_text(r[k], ascii_pm=True)})"
            for k in ("sbp", "dbp", "map")
        )
        return f"  {name:<22} wave MAE {fmt(w['mae'])} RMSE {fmt(w['rmse'])} r {r_text(w)}  {bp}"

    free = m["calibration_free"]
    lines.append(
        f"calibration-free: {counted(free['n_windows'], 'window')}, "
        f"{counted(free['n_subjects'], 'subject')} "
        "(mmHg; BP as MAE (ME +- SD))"
    )
    lines.append(row("model", free))
    for name in ("naive", "linear"):
        if name in m["baselines"]:
            lines.append(row(name, m["baselines"][name]))
    if "calibrated" in m:
        cal = m["calibrated"]
        lines.append(
            f"calibrated ({cal['calibration']}, first window per subject, not scored): "
            f"{counted(cal['n_windows'], 'window')}"
        )
        lines.append(row("model", cal))
        lines.append(row("carry-forward", m["baselines"]["carry_forward"]))
    for label, r in (("calibration-free", free), ("calibrated", m.get("calibrated"))):
        if r is None or r["n_windows"] == 0:
            continue  # no window to grade (the line above says so)
        grades = "  ".join(
            f"{k.upper()}: BHS {r[k]['bhs_grade']}, AAMI 1 {aami_text(r[k]['aami_pass'])} "
            f"2 {aami_text(r[k].get('aami2', {}).get('pass'))}, IEEE {r[k]['ieee_grade']}"
            for k in ("sbp", "dbp", "map")
        )
        lines.append(f"standards ({label}, {counted(r['n_subjects'], 'subject')} pooled): {grades}")
    if m.get("inverse"):
        inv = m["inverse"]
        lines.append(
            f"inverse (ABP -> PPG, z units): MAE {fmt(inv['mae'], 3)} "
            f"RMSE {fmt(inv['rmse'], 3)} r {r_text(inv)}"
        )
    return "\n".join(lines)


@click.command("eval")
@click.option(
    "--checkpoint",
    "checkpoints",
    type=CheckpointFile(),
    multiple=True,
    required=True,
    help="Checkpoint to evaluate; repeat to compare several on the same windows.",
)
@click.option("--data", type=EXISTING_FILE, required=True, help="HDF5 window file.")
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test", "all"]),
    default="test",
    help="Windows to score (chosen as in the checkpoint's run).",
)
@click.option(
    "--test-fold",
    type=click.IntRange(min=0),
    default=None,
    help="Score this fold as the test split instead of the run's.",
)
@click.option(
    "--calibration",
    type=click.Choice(["offset-scale", "offset", "none"]),
    default="offset-scale",
    help="Calibrated protocol's rule (none: skip it).",
)
@click.option(
    "--out",
    "out_dir",
    type=NonEmptyPath(file_okay=False, path_type=Path),
    default=None,
    help="Report directory  [default: <run>/eval-<split> of the checkpoint; required with "
    "several checkpoints].",
)
@click.option(
    "--save-predictions",
    type=NonEmptyPath(dir_okay=False),
    callback=lambda ctx, param, value: _predictions_file(file_name("preds.h5")(ctx, param, value)),
    default=None,
    help="Also write an HDF5 file of predicted ABP (mmHg) per window with window and subject "
    "ids (FILE-<model>.h5 per model with several checkpoints).",
)
@click.option("--no-figures", is_flag=True, help="Skip the figures (faster; tables only).")
@click.option(
    "--force", is_flag=True, help="Replace an earlier report in --out and predictions files."
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def eval_cmd(
    checkpoints: tuple[Path, ...],
    data: Path,
    split: str,
    test_fold: int | None,
    calibration: str,
    out_dir: Path | None,
    save_predictions: Path | None,
    no_figures: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Evaluate checkpoints with the project's protocol (docs/protocol.md) and write the
    report.

    Predictions are de-normalised to mmHg and scored on the real samples: waveform
    MAE/RMSE/r; SBP/DBP/MAP MAE and ME +- SD with BHS, AAMI and IEEE 1708 grades; pooled
    and per subject; calibration-free and calibrated; next to the naive, linear and
    carry-forward baselines; and the inverse direction (PPG from ABP). Writes
    metrics.json, report.md, report.html (figures embedded) and figures/ into the report
    directory, all or nothing. An earlier report there is replaced only with --force.

    \b
    Examples:
      innpar eval --checkpoint runs/00000-innpar-plus-pair3/checkpoints/best.pt --data data.h5
      innpar eval --checkpoint runs/a/checkpoints/best.pt --checkpoint runs/b/checkpoints/best.pt \\
          --data folds.h5 --test-fold 3 --out eval-compare
      innpar eval --checkpoint best.pt --data data.h5 --save-predictions preds.h5 --json
    """
    from innpar_freia.report import (
        check_report_outputs,
        default_out_dir,
        evaluate_checkpoints,
        write_report,
    )

    if out_dir is None:
        if len(checkpoints) > 1:
            raise click.UsageError("with several --checkpoint options, name the report with --out")
        out_dir = default_out_dir(checkpoints[0], split, test_fold)
    # The windows to score first: a --split or --test-fold the data cannot give was said
    # only after "--out already holds a report", and the user added --force in vain.
    from innpar_freia.checkpoint import load_checkpoint
    from innpar_freia.data.store import read_info
    from innpar_freia.evaluate import split_indices

    info = read_info(data)
    for path in checkpoints:
        split_indices(load_checkpoint(path), info, split, test_fold)
    check_report_outputs(
        out_dir, list(checkpoints), data, save_predictions, force, figures=not no_figures
    )
    entries = evaluate_checkpoints(
        list(checkpoints),
        data,
        split,
        test_fold=test_fold,
        calibration=None if calibration == "none" else calibration,
    )
    written = write_report(
        entries, out_dir, save_predictions=save_predictions, figures=not no_figures
    )
    for e in entries:
        if e.metrics.get("warning"):
            click.echo(f"warning: {e.name}: {e.metrics['warning']}", err=True)
    if as_json:  # what metrics.json holds (with several models, their comparison too)
        metrics = json.loads(Path(written["metrics.json"]).read_text())
        echo_json({**metrics, "outputs": written})
        return
    for e in entries:
        click.echo(format_metrics(e.metrics))
    if len(entries) > 1:
        click.echo(Path(written["comparison"][0]).read_text())
    click.echo(f"report: {written['report.html']}  (and report.md, metrics.json)")
    for path in written.get("predictions", []):
        click.echo(f"predictions: {path}")


@click.command("check")
@click.option(
    "--preset",
    type=click.Choice(invertible_preset_names()),
    default=None,
    help="Check a freshly initialised preset; with --data, built at the file's rate and "
    "window length, as innpar train builds it  [default: paper].",
)
@click.option("--checkpoint", type=CheckpointFile(), default=None, help="Check a trained model.")
@click.option(
    "--data",
    type=EXISTING_FILE,
    default=None,
    help="Use real windows of this HDF5 file (up to 64, spread over it; flat lines left "
    "out) instead of synthetic ones; with --checkpoint they must be of the rate and length "
    "it was trained on.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Seed of init and test inputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def check_cmd(
    preset: str | None, checkpoint: Path | None, data: Path | None, seed: int, as_json: bool
) -> None:
    """Prove exact invertibility of a fresh or trained model.

    Round trip max|x - f^-1(f(x))| in float32 (<= 1e-5) and float64 (<= 1e-10), log-det
    against the autograd Jacobian, forward/reverse log-dets cancelling, a gradient for every
    parameter, identical outputs after state_dict save/load. Exit code 1 if any fails.

    A preset with --data is the network 'innpar train --preset NAME --data FILE' would
    train: at the file's rate and window length. A checkpoint takes windows of the rate
    and length it was trained on, and a file of others is refused.

    \b
    Examples:
      innpar check --preset paper --json
      innpar check --preset tiny --data data_250hz.h5
      innpar check --checkpoint runs/00000-innpar-plus-pair3/checkpoints/best.pt --data data.h5
    """
    import numpy as np

    from innpar_freia.checks import run_checks

    if preset and checkpoint:
        raise click.UsageError("give --preset or --checkpoint, not both")
    norm = None
    if checkpoint is not None:
        from innpar_freia.checkpoint import load_checkpoint

        ckpt = load_checkpoint(checkpoint)
        model, norm, source = ckpt.model, ckpt.normalisation, str(checkpoint)
    else:
        from innpar_freia.config import ModelConfig

        name = preset or "paper"
        model_cfg, source = ModelConfig.from_preset(name), f"preset {name}"
    ppg = abp = None
    if data is not None:
        from innpar_freia.data.store import read_info
        from innpar_freia.errors import DataError

        info = read_info(data)
        if info.n_windows == 0:
            raise DataError(f"{data} holds no windows")
        if checkpoint is None:
            # The preset as 'innpar train --preset' builds it for this file: at its rate and
            # window length. Its 125 Hz, 625 samples were refused for the 250 Hz windows a
            # user was about to train it on, which train itself takes.
            from innpar_freia.train import fit_model_to_data

            model_cfg = fit_model_to_data(model_cfg, info)
            source += (
                f" at {info.fs:g} Hz, {info.window_length} samples, as train builds it for {data}"
            )
        elif info.window_length != model.config.window_length or not np.isclose(
            info.fs, model.config.fs
        ):
            # A trained network takes windows of the length and rate it was trained on.
            raise DataError(
                f"{data} has windows of {info.window_length} samples at {info.fs:g} Hz, but "
                f"the model takes {model.config.window_length} samples at "
                f"{model.config.fs:g} Hz ({checkpoint} was trained on such windows)"
            )
        from innpar_freia.checks import windows_to_check

        ppg, abp = windows_to_check(data, info.n_windows)
    if checkpoint is None:
        from innpar_freia.nn.model import build_model

        model = build_model(model_cfg, seed=seed)
    result = run_checks(model, ppg, abp, norm, seed=seed)
    result["model"] = source
    result["inputs"] = str(data) if data is not None else "synthetic windows"
    if as_json:
        echo_json(result)
    else:
        click.echo(f"{source}: {result['n_params']:,} parameters; inputs: {result['inputs']}")
        values = {
            "roundtrip_float32": f"max|x - f^-1(f(x))| = {result['roundtrip_max_abs_float32']:.2e}",
            "roundtrip_float64": f"max|x - f^-1(f(x))| = {result['roundtrip_max_abs_float64']:.2e}",
            "logdet_vs_autograd_jacobian": f"max error {result['logdet_max_abs_error']:.2e}",
            "logdet_forward_reverse_cancel": f"max |sum| {result['logdet_cancel_max_abs']:.2e}",
            "every_parameter_gets_gradient": ", ".join(result["params_without_gradient"]) or "all",
            "state_dict_save_load_identical": f"max diff {result['state_dict_max_abs_diff']:.1e}",
        }
        for name, ok in result["checks"].items():
            click.echo(f"  {'PASS' if ok else 'FAIL'}  {name:<32} {values[name]}")
        click.echo("all checks passed" if result["passed"] else "SOME CHECKS FAILED")
    if not result["passed"]:
        raise SystemExit(1)


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=NonEmptyPath(file_okay=False, path_type=Path),
    default=Path("innpar-demo"),
    help="Directory for data, run and figures.",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Training epochs  [default: 30]."
)
@click.option("--force", is_flag=True, help="Replace a previous demo in --out.")
def demo_cmd(out_dir: Path, epochs: int | None, force: bool) -> None:
    """Synthesise data, train the paper's network briefly on CPU, evaluate and plot.

    Takes about 1.5 minutes on two CPU cores and prints where everything is.

    \b
    Examples:
      innpar demo
      innpar demo --out my-demo --epochs 5
      innpar demo --force              # run it again over an earlier demo
    """
    from innpar_freia.demo import run_demo

    r = run_demo(out_dir, epochs=epochs, force=force, callbacks=ConsoleCallbacks())
    s = r.summary
    click.echo(
        f"\ntest set ({s['test_windows']} windows of unseen subjects, "
        f"best epoch {s['best_epoch']}):\n"
        f"  waveform MAE {s['wave_mae']:.2f} mmHg (naive baseline {s['naive_wave_mae']:.2f})\n"
        f"  SBP MAE {s['sbp_mae']:.2f}, DBP MAE {s['dbp_mae']:.2f}, "
        f"MAP MAE {s['map_mae']:.2f} mmHg\n"
        f"data:        {r.data}\nrun:         {r.run_dir}\ncheckpoint:  {r.checkpoint}\n"
        f"metrics:     {r.metrics}\nfigure:      {r.figure}"
    )


@click.command("presets")
@click.option("--json", "as_json", is_flag=True, help="Print the presets as JSON.")
def presets_cmd(as_json: bool) -> None:
    """List the named presets (architecture + training recipe).

    \b
    Examples:
      innpar presets
      innpar presets --json
      innpar train --data data.h5 --preset paper --dry-run   # one preset in full
    """
    from innpar_freia.config import resolve_config
    from innpar_freia.nn.model import build_model, count_parameters

    out = {}
    for name in preset_names():
        cfg = resolve_config(name)
        out[name] = {
            "description": PRESETS[name]["description"],
            "n_params": count_parameters(build_model(cfg.model, seed=0)),
            **cfg.to_dict(),
        }
    if as_json:
        echo_json(out)
        return
    width = max(len(name) for name in out)
    for name, d in out.items():
        default = "  [default of innpar train]" if name == TRAIN_DEFAULT_PRESET else ""
        click.echo(f"{name:<{width}} {d['n_params']:>9,} parameters  {d['description']}{default}")
