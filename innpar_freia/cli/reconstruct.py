"""``innpar reconstruct``: a whole recording through a checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from innpar_freia.cli.common import (
    CheckpointFile,
    FloatRange,
    NonEmptyPath,
    counted,
    echo_json,
    fmt,
)
from innpar_freia.errors import DataError
from innpar_freia.reconstruct_limits import RANGES

EXISTING_FILE = NonEmptyPath(exists=True, dir_okay=False, path_type=Path)
DIRECTIONS = ("ppg2abp", "abp2ppg")
CALIBRATION_MODES = ("offset-scale", "offset")
FOLDER_OUTPUT_FORMATS = ("csv", "npy", "npz", "wfdb")


def _file_option(value: str | None, flag: str, example: str) -> Path | None:
    """A file name given to ``flag`` for a file INPUT; one ending in a slash names a folder
    (``Path`` would drop the slash and the file would be written under the folder's name)."""
    from innpar_freia.reconstruct_file import names_folder

    # An existing folder was written beside, as FOLDER.csv (click's Path(dir_okay=False)
    # had refused it, until --out named a folder for a folder INPUT).
    why = None if value is None else names_folder(value, example)
    if why:
        raise click.BadParameter(why, param_hint=f"'{flag}'")
    return None if value is None else Path(value)


@click.command("reconstruct")
@click.argument("input_path", metavar="INPUT", type=NonEmptyPath(path_type=Path))
@click.option("--checkpoint", type=CheckpointFile(), required=True, help="Trained checkpoint.")
@click.option(
    "--out",
    metavar="PATH",
    required=True,
    help="Output: .csv, .npy, .npz, a WFDB record (name or .hea), or .h5 for a window-file "
    "INPUT; without a suffix, INPUT's format. For a folder INPUT, a folder.",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(FOLDER_OUTPUT_FORMATS),
    default=None,
    help="For a folder INPUT: write every output in this format  [default: each input's].",
)
@click.option(
    "--include",
    metavar="PATTERN",
    default=None,
    help="For a folder INPUT: only the recordings whose file (a record's .hea) matches this "
    "glob pattern, relative to the folder (e.g. '*.csv', 'training/*').",
)
@click.option(
    "--fs",
    type=FloatRange(*RANGES["fs"]),
    default=None,
    help="INPUT's sampling rate in Hz (for .npy, or CSV/NPZ without a time column / fs key; "
    "must agree with them where they state one).",
)
@click.option(
    "--ppg-channel", default=None, help="PPG channel of INPUT  [default: found by name, PLETH...]."
)
@click.option(
    "--abp-channel",
    default=None,
    help="ABP channel of INPUT for --direction abp2ppg  [default: found by name, ABP/ART...].",
)
@click.option(
    "--direction",
    type=click.Choice(DIRECTIONS),
    default="ppg2abp",
    help="ppg2abp: ABP (mmHg) from PPG; abp2ppg: z-scored PPG from ABP by the reverse pass.",
)
@click.option(
    "--overlap",
    type=FloatRange(*RANGES["overlap"]),
    default=0.5,
    help="Overlap of consecutive model windows (cross-faded).",
)
@click.option(
    "--ppg-delay",
    type=FloatRange(*RANGES["delay_s"]),
    default=0.0,
    help="Seconds the PPG trails the ABP in INPUT (pulse transit + monitor delay; the lag the "
    "training windows were aligned by). The output is shifted onto the ABP's time axis.",
)
@click.option(
    "--calibration",
    default=None,
    metavar="SBP/DBP|reference|TABLE.csv",
    help="Calibrate with a cuff reading in mmHg (e.g. 120/80), or with the --reference-abp "
    "channel ('reference'), over the calibration segment. For a folder INPUT, a CSV table "
    "of one reading per recording (columns record, sbp, dbp, and optionally at in s).",
)
@click.option(
    "--calibration-mode",
    type=click.Choice(CALIBRATION_MODES),
    default="offset-scale",
    help="The protocol's rule: offset and scale (pulse pressure), or offset only.",
)
@click.option(
    "--calibration-at",
    type=float,
    default=None,
    help="Start of the calibration segment in seconds (when the cuff reading was taken), "
    "on the recording's clock: a CSV time column's, else from the first sample.  "
    "[default: the recording's start]",
)
@click.option(
    "--calibration-seconds",
    type=FloatRange(*RANGES["calibration_seconds"]),
    default=60.0,
    help="Length of the calibration segment in seconds.",
)
@click.option(
    "--reference-abp",
    metavar="CHANNEL",
    default=None,
    help="ABP channel of INPUT (mmHg; one in kPa, hPa, mbar, Pa, cmH2O or mmH2O by its WFDB "
    "header or CSV units row is converted) to compare with, plot, and calibrate with "
    "--calibration reference (ppg2abp only).",
)
@click.option(
    "--plot",
    metavar="PATH",
    default=None,
    help="Also draw the whole recording (.png or .pdf). For a folder INPUT, a folder for "
    "one figure per recording (RECORD.png).",
)
@click.option("--force", is_flag=True, help="Replace existing output files.")
@click.option(
    "--resume",
    is_flag=True,
    help="For a folder INPUT: go on with the run in OUT that was interrupted or had "
    "failures; what it reconstructed is kept (unless its input changed since), the rest "
    "done (same settings required).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def reconstruct_cmd(
    input_path: Path,
    checkpoint: Path,
    out: str,
    out_format: str | None,
    include: str | None,
    fs: float | None,
    ppg_channel: str | None,
    abp_channel: str | None,
    direction: str,
    overlap: float,
    ppg_delay: float,
    calibration: str | None,
    calibration_mode: str,
    calibration_at: float | None,
    calibration_seconds: float,
    reference_abp: str | None,
    plot: str | None,
    force: bool,
    resume: bool,
    as_json: bool,
) -> None:
    """Reconstruct ABP from the PPG of a whole recording (or PPG from ABP).

    INPUT is a WFDB record, CSV (header row; a time column in s, or in ms by its name or
    units row, gives the rate), NPY (one signal; give --fs), NPZ (1-D arrays, optional fs
    key), or a project window file (.h5).
    It is resampled to the model's rate, cut into overlapping windows, each normalised as
    in training, reconstructed, stitched with a cross-fade and resampled back: the output
    has INPUT's rate and length. Gaps in a recording (NaN, flat line, lost contact) are not
    reconstructed across; they are NaN in the output and listed in the summary (the
    windows of a window file are reconstructed as they are: imported from recordings,
    they passed quality control; from windowed layouts, windows with NaN or a constant
    line were left out). Beside OUT go
    STEM.beats.csv (per-beat SBP/DBP/MAP; for a window file STEM.windows.csv, per window)
    and STEM.summary.json, STEM being OUT without its suffix (abp.csv -> abp.beats.csv).

    INPUT may also be a folder: every recording under it (WFDB records, .csv, .npz, .npy;
    recursively) is reconstructed into the folder --out, OUT/RECORD.FORMAT with its beats
    table and summary, RECORD being its path under INPUT without the extension, and
    OUT/reconstructions.csv (and .json) lists them all. A recording that cannot be
    reconstructed is listed there with its reason and the others go on; the command then
    ends with exit code 1 naming it.

    Without calibration the mmHg level is the training population's, not this person's:
    give a cuff reading (--calibration 120/80) for absolute values.

    \b
    Examples:
      innpar reconstruct --checkpoint best.pt wfdb/training/85 --out 85_abp --plot 85.png
      innpar reconstruct --checkpoint best.pt finger.csv --out abp.csv --calibration 118/76
      innpar reconstruct --checkpoint best.pt ppg.npy --fs 100 --out abp.npy
      innpar reconstruct --checkpoint best.pt rec --out rec_abp --reference-abp ABP \\
          --calibration reference --calibration-at 30
      innpar reconstruct --checkpoint best.pt wfdb/training --out abp/ --format csv \\
          --calibration cuffs.csv --plot figures/
    """
    from innpar_freia.reconstruct_file import (
        ReconstructOptions,
        calibration_phrase,
        reconstruct_file,
    )
    from innpar_freia.report_content import r_text

    if direction == "ppg2abp" and abp_channel is not None:
        raise click.UsageError("--abp-channel names the input of --direction abp2ppg")
    if direction == "abp2ppg" and ppg_channel is not None:
        raise click.UsageError("--ppg-channel names the input of --direction ppg2abp")
    from innpar_freia.reconstruct_folder import is_cuff_table

    folder = input_path.is_dir() and not input_path.with_suffix(".hea").is_file()
    if not folder:
        if resume:
            raise click.UsageError(
                f"--resume goes on with the run of a folder INPUT; {input_path} is one file"
            )
        for flag, value in (("--format", out_format), ("--include", include)):
            if value is not None:
                raise click.UsageError(
                    f"{flag} is for a folder INPUT; a file's output format is --out's suffix"
                    if flag == "--format"
                    else f"{flag} picks recordings of a folder INPUT; {input_path} is one file"
                )
        if is_cuff_table(calibration):
            raise DataError(
                f"a cuff table ({calibration}) is for a folder INPUT; give this recording's "
                "reading as SBP/DBP (e.g. --calibration 120/80)"
            )
    options = ReconstructOptions(
        direction=direction,
        channel=ppg_channel if direction == "ppg2abp" else abp_channel,
        fs=fs,
        overlap=overlap,
        delay_s=ppg_delay,
        calibration=calibration,
        calibration_mode=calibration_mode,
        calibration_at=calibration_at,
        calibration_seconds=calibration_seconds,
        reference_abp=reference_abp,
        plot=None if folder else _file_option(plot, "--plot", "abp.png"),
        force=force,
    )
    if folder:
        _reconstruct_folder(
            checkpoint,
            input_path,
            Path(out),
            options,
            out_format,
            plot,
            include,
            resume,
            as_json,
        )
        return
    summary = reconstruct_file(
        checkpoint, input_path, _file_option(out, "--out", "abp.csv"), options
    )
    said = summary.get("warning")
    for text in summary.get("warnings") or ([said] if said else []):
        click.echo(f"warning: {text}", err=True)
    if as_json:
        echo_json(summary)
        return
    outputs = summary["outputs"]
    if summary["format"] == "hdf5":
        click.echo(
            f"{counted(summary['n_windows'], 'window')} of {summary['input']} reconstructed "
            f"({summary['direction']}) into {outputs['predictions']}"
        )
    else:
        click.echo(
            f"{summary['input']}: {summary['channel']}, {summary['duration_s']:.1f} s at "
            f"{summary['fs']:g} Hz; reconstructed {summary['reconstructed_s']:.1f} s "
            f"({100 * summary['reconstructed_fraction']:.1f} %), {len(summary['gaps'])} gap(s)"
        )
        beats = summary.get("beats") or {}
        if beats.get("n"):
            click.echo(
                f"  {counted(beats['n'], 'beat')}; median SBP {fmt(beats['sbp_median'], 1)}, DBP "
                f"{fmt(beats['dbp_median'], 1)}, MAP {fmt(beats['map_median'], 1)} mmHg, "
                f"HR {fmt(beats['hr_median'], 0)} bpm"
            )
        ref = summary.get("reference")
        if ref and not ref.get("n_windows"):
            click.echo(f"  no comparison with reference {ref['channel']}: {ref['why_none']}")
        if ref and ref.get("n_windows"):
            click.echo(
                f"  vs reference {ref['channel']} ({ref['n_windows']} windows): waveform MAE "
                f"{fmt(ref['waveform']['mae'])} mmHg, r {r_text(ref['waveform'])}; SBP MAE "
                f"{fmt(ref['sbp']['mae'])}, DBP MAE {fmt(ref['dbp']['mae'])}, MAP MAE "
                f"{fmt(ref['map']['mae'])}"
            )
        if summary.get("calibration"):
            # The calibration-free run says so in a note; a calibrated one said nothing.
            click.echo(f"  {calibration_phrase(summary['calibration'])}")
        if summary.get("note"):
            click.echo(f"  note: {summary['note']}")
        click.echo("  output: " + ", ".join(outputs["recording"]))
        if "beats" in outputs:
            click.echo(f"  beats: {outputs['beats']}")
    if "plot" in outputs:
        click.echo(f"  plot: {outputs['plot']}")
    click.echo(f"  summary: {outputs['summary']}")


def _reconstruct_folder(
    checkpoint: Path,
    folder: Path,
    out: Path,
    options,
    out_format: str | None,
    plot: str | None,
    include: str | None,
    resume: bool,
    as_json: bool,
) -> None:
    """``innpar reconstruct FOLDER``: a line per recording as it is done, then the table."""
    from innpar_freia.metrics import MIN_CALIBRATION_PP
    from innpar_freia.reconstruct_folder import INPUT_CHANGED, reconstruct_folder

    def on_record(i: int, n: int, record: str, row: dict) -> None:
        if as_json:
            return
        head = f"[{i + 1}/{n}] {record}: "
        if row.get("resumed"):
            click.echo(head + "reconstructed by the run resumed, kept")
            return
        if row.get("redone"):  # reconstructed by the run resumed, from another input
            head += f"{row['redone']}; "
        if row["status"] == "failed":
            click.echo(head + f"not reconstructed: {row['reason']}")
            return
        if row.get("redone"):
            head += "reconstructed again: "
        line = (
            f"{row['duration_s']:.1f} s, {100 * row['reconstructed_fraction']:.1f} % reconstructed"
        )
        if row.get("beats"):
            line += (
                f", {counted(row['beats'], 'beat')}, median SBP {fmt(row['sbp_median'], 1)}, DBP "
                f"{fmt(row['dbp_median'], 1)}, MAP {fmt(row['map_median'], 1)} mmHg"
            )
        if row.get("ref_waveform_mae") is not None:
            line += f"; vs reference: waveform MAE {fmt(row['ref_waveform_mae'])} mmHg"
        elif row.get("ref_note"):
            line += f"; no comparison with the reference: {row['ref_note']}"
        click.echo(head + line)
        if row.get("warning"):
            click.echo(f"warning: {record}: {row['warning']}", err=True)

    def on_interrupt(partial: dict) -> None:
        # What was handled, failures too: "after 10 of 35" had counted only the
        # reconstructed, when 11 were done (10 reconstructed, 1 failed).
        handled = partial["n_reconstructed"] + partial["n_failed"]
        failed = f", {partial['n_failed']} failed" if partial["n_failed"] else ""
        click.echo(
            f"interrupted after {handled} of {counted(partial['n_recordings'], 'recording')} "
            f"({partial['n_reconstructed']} reconstructed{failed}): "
            f"{partial['outputs']['table']} lists them; the same command with --resume goes "
            "on with the others",
            err=True,
        )

    index = reconstruct_folder(
        checkpoint,
        folder,
        out,
        options,
        out_format=out_format,
        plot_dir=None if plot is None else Path(plot),
        include=include,
        on_record=on_record,
        resume=resume,
        on_interrupt=on_interrupt,
    )
    if index["unused_cuff_rows"]:
        rows = index["unused_cuff_rows"]
        click.echo(
            f"warning: {len(rows)} row(s) of the cuff table match no recording: "
            + ", ".join(rows[:5])
            + (" ..." if len(rows) > 5 else ""),
            err=True,
        )
    if as_json:
        echo_json(index)
    else:
        # "(10 by the run resumed)" read as if this run had done 10; it kept them.
        now = index["n_reconstructed"] - index["n_resumed"]
        redone = [
            r["redone"]
            for r in index["recordings"]
            if r.get("redone") and r["status"] == "reconstructed"
        ]
        changed = len(redone)
        why = (
            f"{'its' if changed == 1 else 'their'} input changed"
            if set(redone) == {INPUT_CHANGED}
            else f"{'its line says' if changed == 1 else 'their lines say'} why"
        )
        again = f", {changed} of them again: {why}"
        kept = (
            f" ({index['n_resumed']} kept from the run resumed, {now} now"
            f"{again if changed else ''})"
        )
        click.echo(
            f"{index['n_reconstructed']} of {counted(index['n_recordings'], 'recording')} "
            f"reconstructed{kept if index['n_resumed'] or changed else ''} into {out}; "
            f"table: {index['outputs']['table']}"
        )
        if index["n_offset_only"]:
            click.echo(
                f"  note: {counted(index['n_offset_only'], 'recording')} calibrated with the "
                "offset alone, not offset and scale: a pulse pressure in the calibration "
                f"segment was below {MIN_CALIBRATION_PP:g} mmHg (see each one's warning)"
            )
        if index["calibration"] == "calibration-free" and options.direction == "ppg2abp":
            click.echo(
                "  note: calibration-free: the mmHg levels are the training population's, "
                "not each person's; give --calibration TABLE.csv (one cuff reading per "
                "recording) for absolute values"
            )
    failed = [r for r in index["recordings"] if r["status"] == "failed"]
    if failed:
        shown = "; ".join(f"{r['record']}: {r['reason']}" for r in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        raise DataError(
            f"{len(failed)} of {counted(index['n_recordings'], 'recording')} could not be "
            "reconstructed "
            f"(listed in {index['outputs']['table']}): {shown}{more}"
            # Not when only outputs failed: a file too large for the output disk said to
            # leave out "files that are not recordings".
            + (
                ""
                if include or all(r["reason"].startswith("cannot write ") for r in failed)
                else " (leave out files that are not recordings with --include)"
            )
        )
