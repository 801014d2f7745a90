"""``innpar data ...``: make, import and inspect HDF5 window files."""

from __future__ import annotations

from pathlib import Path

import click

from innpar_freia.cli.common import echo_json, fmt


@click.group("data")
def data() -> None:
    """Create, import and inspect the canonical HDF5 window file."""


@data.command("synth")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="HDF5 file to write (must not exist unless --force).",
)
@click.option(
    "--subjects",
    type=click.IntRange(min=1, max=100_000),
    default=24,
    help="Number of synthetic subjects.",
)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0.1, max=24 * 60),
    default=4.0,
    help="Recording length per subject.",
)
@click.option(
    "--fs", type=click.FloatRange(min=16, max=10_000), default=125.0, help="Sampling rate in Hz."
)
@click.option(
    "--window-seconds",
    type=click.FloatRange(min=0.5, max=60),
    default=5.0,
    help="Window length in seconds.",
)
@click.option(
    "--folds",
    type=click.IntRange(min=0, max=100),
    default=5,
    help="Subject-disjoint cross-validation folds (0: none).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Generator seed.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option("--json", "as_json", is_flag=True, help="Print the file summary as JSON.")
def synth_cmd(
    out: Path,
    subjects: int,
    minutes: float,
    fs: float,
    window_seconds: float,
    folds: int,
    seed: int,
    force: bool,
    as_json: bool,
) -> None:
    """Write a synthetic paired PPG/ABP dataset (the embedded default data).

    Subjects have their own, slowly drifting heart rate and blood pressure; ABP has a
    dicrotic notch; the PPG is a delayed, smoothed, non-linearly related pulse with
    baseline wander and noise. Splits and folds are subject-disjoint.

    \b
    Example:
      innpar data synth --out data.h5 --subjects 40 --minutes 5 --seed 1
    """
    from innpar_freia.data.store import read_info
    from innpar_freia.data.synthetic import synthesize_dataset

    path = synthesize_dataset(
        out,
        subjects=subjects,
        minutes=minutes,
        fs=fs,
        window_seconds=window_seconds,
        seed=seed,
        folds=folds,
        overwrite=force,
    )
    info = read_info(path)
    if as_json:
        echo_json(info.summary())
    else:
        click.echo(
            f"wrote {path}: {info.n_windows} windows of {info.window_length} samples "
            f"at {info.fs:g} Hz from {subjects} subjects"
        )


@data.command("info")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info_cmd(file: Path, as_json: bool) -> None:
    """Describe an HDF5 window file: sampling, windows, subjects, splits, folds, provenance."""
    from innpar_freia.data.store import read_info

    s = read_info(file).summary()
    if as_json:
        echo_json(s)
        return
    click.echo(f"{s['path']}  ({s['schema']} v{s['schema_version']}, source: {s['source_format']})")
    click.echo(
        f"  {s['n_windows']} windows x {s['window_length']} samples at {s['fs']:g} Hz "
        f"({fmt(s['window_seconds'], 2)} s); {s['n_subjects']} subjects"
    )
    click.echo(f"  units: PPG {s['ppg_units']}, ABP {s['abp_units']}")
    sp = s["splits"]
    click.echo(
        f"  splits: train {sp['train']}, val {sp['val']}, test {sp['test']}, "
        f"unassigned {sp['unassigned']}"
    )
    if s["folds"]:
        folds = ", ".join(
            f"{k}: {v['windows']} windows / {v['subjects']} subjects" for k, v in s["folds"].items()
        )
        click.echo(f"  folds: {folds}")
    if s["reference_fields"]:
        click.echo(f"  reference fields: {', '.join(s['reference_fields'])}")
    click.echo(f"  created {s['created_utc']} by innpar-freia {s['package_version']}")
