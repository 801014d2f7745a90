"""``innpar plot ...``: the report's figures from files, as PNG or PDF."""

from __future__ import annotations

from pathlib import Path

import click

from innpar_freia.cli.common import FloatRange, NonEmptyPath

FIGURE = NonEmptyPath(dir_okay=False, path_type=Path)
EXISTING_FILE = NonEmptyPath(exists=True, dir_okay=False, path_type=Path)
PROTOCOL = click.Choice(["calibration-free", "calibrated"])


def _figure_suffix(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    if value is not None and value.suffix.lower() not in (".png", ".pdf"):
        raise click.BadParameter(f"must end in .png or .pdf, not {value.name!r}")
    return value


def _done(path: Path) -> None:
    click.echo(f"figure: {path}")


FORCE = click.option("--force", is_flag=True, help="Replace --out if it exists.")


def _check_out(out: Path, force: bool, *inputs: Path) -> None:
    """Before drawing: an existing figure is replaced only with --force, an input never."""
    from innpar_freia.outputs import check_outputs

    check_outputs([out], force, inputs=inputs)


@click.group("plot")
def plot() -> None:
    """Draw figures (PNG or PDF, by the --out suffix).

    \b
    Examples:
      innpar plot training runs/00000-innpar-plus-pair3 --out training.pdf
      innpar eval --checkpoint best.pt --data data.h5 --save-predictions preds.h5
      innpar plot bland-altman preds.h5 --out ba.png --protocol calibrated
      innpar plot recording 85_abp --input wfdb/training/85 --reference-abp ABP --out 85.png
    """


@plot.command("training")
@click.argument("run", type=NonEmptyPath(exists=True, path_type=Path))
@click.option(
    "--out",
    type=FIGURE,
    required=True,
    callback=_figure_suffix,
    help="Figure file (.png or .pdf).",
)
@FORCE
def training_cmd(run: Path, out: Path, force: bool) -> None:
    """Training loss and validation MAE per epoch of RUN (a run directory or metrics.jsonl).

    \b
    Examples:
      innpar plot training runs/00000-innpar-plus-pair3 --out training.png
      innpar plot training runs/a/metrics.jsonl --out training.pdf
    """
    from innpar_freia.figures import training_figure

    _check_out(out, force, run)
    _done(training_figure(run, out))


def _predictions_command(kind: str, doc: str):
    doc += (
        "\n\n\b\nExamples:\n"
        "  innpar eval --checkpoint best.pt --data data.h5 --save-predictions preds.h5\n"
        f"  innpar plot {kind} preds.h5 --out {kind}.png\n"
        f"  innpar plot {kind} preds.h5 --out {kind}-cal.pdf --protocol calibrated"
    )

    @plot.command(kind, help=doc)
    @click.argument("predictions", type=EXISTING_FILE)
    @click.option(
        "--out",
        type=FIGURE,
        required=True,
        callback=_figure_suffix,
        help="Figure file (.png or .pdf).",
    )
    @click.option(
        "--protocol",
        type=PROTOCOL,
        default="calibration-free",
        show_default=True,
        help="calibrated: the calibrated predictions, calibration windows left out.",
    )
    @FORCE
    def command(predictions: Path, out: Path, protocol: str, force: bool, n: int = 4) -> None:
        from innpar_freia.figures import predictions_figure

        _check_out(out, force, predictions)
        _done(predictions_figure(predictions, kind, out, protocol, n))

    if kind == "reconstructions":  # the others draw every window
        command = click.option(
            "--windows",
            "n",
            type=click.IntRange(min=1, max=32),
            default=4,
            show_default=True,
            help="How many windows to draw.",
        )(command)
    return command


_predictions_command(
    "reconstructions",
    "Reference vs reconstructed windows of PREDICTIONS (innpar eval --save-predictions), "
    "with detected SBP/DBP.",
)
_predictions_command(
    "bland-altman",
    "Bland-Altman plots of SBP, DBP and MAP of PREDICTIONS, with ME and ME +- 1.96 SD.",
)
_predictions_command(
    "errors",
    "Error histograms and cumulative |error| curves with the BHS 5/10/15 mmHg thresholds.",
)


@plot.command("recording")
@click.argument("reconstruction", type=NonEmptyPath(path_type=Path))
@click.option(
    "--input",
    "source",
    type=NonEmptyPath(path_type=Path),
    required=True,
    help="The recording that was reconstructed.",
)
@click.option(
    "--out",
    type=FIGURE,
    required=True,
    callback=_figure_suffix,
    help="Figure file (.png or .pdf).",
)
@click.option(
    "--fs",
    type=FloatRange(min=1, max=100_000),
    default=None,
    help="--input's rate (Hz), where it states none  [default: an .npy's is the one its "
    "reconstruction's summary states].",
)
@click.option("--channel", default=None, help="Input channel  [default: found by name].")
@click.option("--reference-abp", metavar="CHANNEL", default=None, help="Reference ABP channel.")
@click.option(
    "--direction",
    type=click.Choice(["ppg2abp", "abp2ppg"]),
    default=None,
    help="What RECONSTRUCTION holds  [default: from its channel name].",
)
@FORCE
def recording_cmd(
    reconstruction: Path,
    source: Path,
    out: Path,
    fs: float | None,
    channel: str | None,
    reference_abp: str | None,
    direction: str | None,
    force: bool,
) -> None:
    """A whole reconstructed recording (innpar reconstruct's output) over its input.

    \b
    Examples:
      innpar reconstruct --checkpoint best.pt wfdb/training/85 --out 85_abp
      innpar plot recording 85_abp --input wfdb/training/85 --reference-abp ABP --out 85.png
      innpar plot recording abp.csv --input finger.csv --out finger.pdf
    """
    from innpar_freia.figures import recording_figure

    _check_out(out, force, reconstruction, source)
    _done(
        recording_figure(
            reconstruction,
            source,
            out,
            fs=fs,
            channel=channel,
            reference_abp=reference_abp,
            direction=direction,
            on_warning=lambda text: click.echo(f"warning: {text}", err=True),
        )
    )
