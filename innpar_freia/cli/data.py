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


class _BarProgress:
    """A progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, quiet: bool = False):
        import sys

        self.stream = sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.total, self.done, self.label = 0, 0, ""

    def start(self, total: int, label: str) -> None:
        self.total, self.done, self.label = total, 0, label
        self._draw("")

    def advance(self, item: str) -> None:
        self.done += 1
        self._draw(item)

    def finish(self) -> None:
        if self.enabled and self.total:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()

    def _draw(self, item: str) -> None:
        if not self.enabled or not self.total:
            return
        width = 24
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        line = f"{self.label} [{bar}] {self.done}/{self.total} {item}"
        self.stream.write("\r" + line[:79].ljust(79))
        self.stream.flush()


def _print_import_report(report: dict) -> None:
    w, r = report["windows"], report["records"]
    click.echo(
        f"wrote {report['out']}: {w['kept']} windows of {report['window_length']} samples at "
        f"{report['fs']:g} Hz from {report['n_subjects']} subjects"
    )
    if report["folds"]:
        click.echo("  folds: " + ", ".join(f"{k}: {v}" for k, v in report["folds"].items()))
    if report["splits"]:
        click.echo("  splits: " + ", ".join(f"{k}: {v}" for k, v in report["splits"].items()))
    click.echo(f"  records: {r['kept']} kept, {r['rejected']} rejected of {r['total']}")
    for reason, n in r["rejected_by_reason"].items():
        click.echo(f"    rejected {n:>5} x {reason}")
    for src in report["sources"]:
        if src.get("status") == "rejected":
            click.echo(f"    {src['id']}: {src.get('reason')}: {src.get('detail', '')}")
    click.echo(f"  windows: {w['kept']} kept, {w['rejected']} rejected")
    for reason, n in w["rejected_by_reason"].items():
        click.echo(f"    rejected {n:>5} x {reason}")
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@data.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(["bp-benchmark"]))
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="HDF5 window file to write (must not exist unless --force).",
)
@click.option(
    "--fs",
    type=click.FloatRange(min=1, max=100_000),
    default=None,
    help="Sampling rate of the windows in Hz; the layout does not store it  [default: 125].",
)
@click.option("--description", default="", help="Free text stored in the file.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
def import_cmd(
    fmt: str,
    path: Path,
    out: Path,
    fs: float | None,
    description: str,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Import windows from FORMAT files at PATH into one HDF5 window file.

    \b
    bp-benchmark  a folder of signal_fold_<k>.mat (MAT 5 or v7.3): PPG 'signal', ABP
                  'abp_signal' (mmHg), subject 'patient', window id 'trial', fold k;
                  SP, DP and demographics become reference fields.

    \b
    Example:
      innpar data import bp-benchmark ../shared/data/challenge2015/bp_benchmark --out c2015.h5
    """
    from innpar_freia.data.importers import import_bp_benchmark

    report = import_bp_benchmark(
        path,
        out,
        fs=fs,
        description=description,
        overwrite=force,
        progress=_BarProgress(quiet or as_json),
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        _print_import_report(report.to_dict())
