"""``innpar data ...``: make, import and inspect HDF5 window files."""

from __future__ import annotations

import time
from pathlib import Path

import click

from innpar_freia.cli.common import (
    FloatRange,
    NonEmptyPath,
    counted,
    echo_json,
    file_name,
    fmt,
    output_folder,
)
from innpar_freia.data.limits import IMPORT_RANGES, SYNTH_RANGES
from innpar_freia.errors import listed


@click.group("data")
def data() -> None:
    """Create, import and inspect the canonical HDF5 window file.

    \b
    Examples:
      innpar data synth --out data.h5 --subjects 40 --minutes 5
      innpar data import bp-benchmark bp_benchmark/ --out c2015.h5
      innpar data import wfdb challenge2015/wfdb --out raw.h5
      innpar data info c2015.h5
      innpar data split mine.h5 --folds 5 --seed 0 --test-fold 4
      innpar data check c2015.h5
    """


_file_name = file_name("data.h5")
# Subjects of a group sharing signal that 'innpar data split --join-shared' names in a line.
JOINED_SHOWN = 5


@data.command("synth")
@click.option(
    "--out",
    type=NonEmptyPath(dir_okay=False),
    callback=_file_name,
    required=True,
    help="HDF5 file to write (must not exist unless --force).",
)
@click.option(
    "--subjects",
    type=click.IntRange(*SYNTH_RANGES["subjects"][:2]),
    default=24,
    help="Number of synthetic subjects.",
)
@click.option(
    "--minutes",
    type=FloatRange(*SYNTH_RANGES["minutes"][:2]),
    default=4.0,
    help="Recording length per subject.",
)
@click.option(
    "--fs", type=FloatRange(*SYNTH_RANGES["fs"][:2]), default=125.0, help="Sampling rate in Hz."
)
@click.option(
    "--window-seconds",
    type=FloatRange(*SYNTH_RANGES["window_seconds"][:2]),
    default=5.0,
    help="Window length in seconds.",
)
@click.option(
    "--folds",
    type=click.IntRange(*SYNTH_RANGES["folds"][:2]),
    default=None,
    help="Subject-disjoint cross-validation folds: 0 (none) or 3 up to --subjects "
    "[default: 5, or one per subject when there are fewer, none below 3 subjects].",
)
@click.option(
    "--seed", type=click.IntRange(*SYNTH_RANGES["seed"][:2]), default=0, help="Generator seed."
)
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option("--json", "as_json", is_flag=True, help="Print the file summary as JSON.")
def synth_cmd(
    out: Path,
    subjects: int,
    minutes: float,
    fs: float,
    window_seconds: float,
    folds: int | None,
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

    with output_folder(out):
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
            f"wrote {path}: {counted(info.n_windows, 'window')} of {info.window_length} samples "
            f"at {info.fs:g} Hz from {counted(subjects, 'subject')}"
        )


@data.command("info")
@click.argument("file", type=NonEmptyPath(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info_cmd(file: Path, as_json: bool) -> None:
    """Describe an HDF5 window file: sampling, windows, subjects, splits, folds, provenance.

    \b
    Examples:
      innpar data info c2015.h5
      innpar data info c2015.h5 --json
    """
    from innpar_freia.data.store import FOLD_MAX, SPLITS, read_info

    # Shown even when its split column, fold column or subject ids hold values the other
    # commands refuse: this is the command that tells the user what the file holds.
    s = read_info(file, check_split=False, check_folds=False, check_subjects=False).summary()
    if s["splits_invalid"]:
        listed = ", ".join(f"{v!r} ({n})" for v, n in s["splits_invalid"].items())
        click.echo(
            f"warning: split values other than {', '.join(SPLITS)} or empty: {listed} "
            f"windows; the other commands refuse this file until 'innpar data split "
            f"{file}' draws the splits again",
            err=True,
        )
    if s["folds_invalid"]:
        listed = ", ".join(f"{v} ({n})" for v, n in s["folds_invalid"].items())
        click.echo(
            f"warning: fold numbers other than 0 to {FOLD_MAX} or -1 (no fold): {listed} "
            f"windows; the other commands refuse this file until 'innpar data split {file} "
            "--folds K' assigns folds again",
            err=True,
        )
    if s["subjects_empty"]:
        n = s["subjects_empty"]
        click.echo(
            f"warning: {counted(n, 'window')} {'has' if n == 1 else 'have'} an empty subject "
            "id; the other commands refuse this file until every window names its subject",
            err=True,
        )
    if as_json:
        echo_json(s)
        return
    click.echo(f"{s['path']}  ({s['schema']} v{s['schema_version']}, source: {s['source_format']})")
    click.echo(
        f"  {s['n_windows']} windows x {s['window_length']} samples at {s['fs']:g} Hz "
        f"({fmt(s['window_seconds'], 2)} s); {counted(s['n_subjects'], 'subject')}"
    )
    click.echo(f"  units: PPG {s['ppg_units']}, ABP {s['abp_units']}")
    sp = s["splits"]
    click.echo(
        f"  splits: train {sp['train']}, val {sp['val']}, test {sp['test']}, "
        f"unassigned {sp['unassigned']}"
        + (f", invalid {sum(s['splits_invalid'].values())}" if s["splits_invalid"] else "")
    )
    if s["folds"]:
        folds = ", ".join(
            f"{k}: {counted(v['windows'], 'window')} / {counted(v['subjects'], 'subject')}"
            for k, v in s["folds"].items()
        )
        click.echo(f"  folds: {folds}")
        made = s["provenance"].get("fold_assignment")
        if made is not None:
            from innpar_freia.data.splits import fold_assignment_phrase

            click.echo(f"  folds made by innpar data split: {fold_assignment_phrase(made)}")
    if s["folds_invalid"]:
        listed = ", ".join(f"{v} ({counted(n, 'window')})" for v, n in s["folds_invalid"].items())
        click.echo(f"  invalid folds: {listed}")
    if s["reference_fields"]:
        click.echo(f"  reference fields: {', '.join(s['reference_fields'])}")
    click.echo(f"  created {s['created_utc']} by innpar-freia {s['package_version']}")


class _BarProgress:
    """A progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, quiet: bool = False, stream=None):
        import sys

        self.stream = stream or sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.done, self.label = 0, 0, ""
        self._last = 0.0
        self._shown = False  # a bar is on the line: finish clears it

    def start(self, total: int, label: str) -> None:
        self.total, self.done, self.label = total, 0, label
        self._draw("")

    def advance(self, item: str) -> None:
        self.done += 1
        self._draw(item)

    def finish(self) -> None:
        # Whatever stage drew it: a last stage with nothing to do (total 0) left the bar of
        # the stage before on the line, and the report was printed after it.
        if self._shown:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()
            self._shown = False

    def _draw(self, item: str) -> None:
        if not self.enabled or not self.total:
            return
        now = time.monotonic()
        if self.done not in (0, self.total) and now - self._last < 0.1:
            return  # a redraw per item would flood the terminal on 100k-file imports
        self._last = now
        width = 24
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        line = f"{self.label} [{bar}] {self.done}/{self.total} {item}"
        self.stream.write("\r" + line[:79].ljust(79))
        self.stream.flush()
        self._shown = True


def _print_import_report(report: dict) -> None:
    w, r = report["windows"], report["records"]
    click.echo(
        f"wrote {report['out']}: {counted(w['kept'], 'window')} of {report['window_length']} "
        f"samples at {report['fs']:g} Hz from {counted(report['n_subjects'], 'subject')}"
    )
    if report["folds"]:
        click.echo("  folds: " + ", ".join(f"{k}: {v}" for k, v in report["folds"].items()))
    if report["splits"]:
        click.echo("  splits: " + ", ".join(f"{k}: {v}" for k, v in report["splits"].items()))
    unit = {"bp-benchmark": "fold files", "innpar-npy": "folders"}.get(report["format"], "records")
    click.echo(f"  {unit}: {r['kept']} kept, {r['rejected']} rejected of {r['total']}")
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


# Options of ``innpar data import`` and the formats they apply to; giving one to another
# format is an error rather than silently ignored.
_IMPORT_OPTION_FORMATS = {
    "input_fs": ("wfdb", "csv", "npz"),
    "window_seconds": ("wfdb", "csv", "npz"),
    "ppg_channel": ("wfdb", "csv", "npz"),
    "abp_channel": ("wfdb", "csv", "npz"),
    "time_column": ("csv",),
    "align": ("wfdb", "csv", "npz"),
    "max_lag": ("wfdb", "csv", "npz"),
    "qc": ("wfdb", "csv", "npz"),
    "edges": ("wfdb", "csv", "npz"),
    "skip_bad_records": ("wfdb", "csv", "npz"),
    "subject_map": ("innpar-npy", "wfdb", "csv", "npz"),
    "subject_pattern": ("innpar-npy",),
}


@data.command("import")
@click.argument(
    "fmt",
    metavar="FORMAT",
    type=click.Choice(["bp-benchmark", "innpar-npy", "wfdb", "csv", "npz"]),
)
# Not click.Path(exists=True): a WFDB record is named without its extension.
@click.argument("path", type=NonEmptyPath(path_type=Path))
@click.option(
    "--out",
    type=NonEmptyPath(),
    callback=_file_name,
    required=True,
    help="HDF5 window file to write (must not exist unless --force).",
)
@click.option(
    "--fs",
    type=FloatRange(*IMPORT_RANGES["fs"][:2]),
    default=None,
    help="Sampling rate of the output windows in Hz. bp-benchmark/innpar-npy: the rate of "
    "the given windows (their files do not store it); wfdb/csv/npz: resample to it  "
    "[default: 125].",
)
@click.option(
    "--input-fs",
    type=FloatRange(*IMPORT_RANGES["input_fs"][:2]),
    default=None,
    help="wfdb/csv/npz: rate of the input files in Hz, when they do not state it (no time "
    "column, no 'fs' or 'sampling_rate' key, no rate in the WFDB header).",
)
@click.option(
    "--window-seconds",
    type=FloatRange(*IMPORT_RANGES["window_s"][:2]),
    default=5.0,
    help="wfdb/csv/npz: window length in seconds.",
)
@click.option(
    "--ppg-channel", default=None, help="wfdb/csv/npz: PPG channel name  [default: by name]."
)
@click.option(
    "--abp-channel", default=None, help="wfdb/csv/npz: ABP channel name  [default: by name]."
)
@click.option(
    "--time-column",
    default=None,
    help="csv: column of times that gives the rate (seconds; ms if its name or units row "
    "says so)  [default: time/t/time_ms/... if present].",
)
@click.option(
    "--align/--no-align",
    default=True,
    help="wfdb/csv/npz: estimate the PPG-to-ABP delay per record and shift the PPG earlier.",
)
@click.option(
    "--max-lag",
    type=FloatRange(*IMPORT_RANGES["max_lag_s"][:2]),
    default=2.0,
    help="wfdb/csv/npz: largest PPG delay searched, in seconds.",
)
@click.option(
    "--qc/--no-qc",
    default=True,
    help="wfdb/csv/npz: quality-check every window (--no-qc drops only windows with NaN).",
)
@click.option(
    "--edges",
    type=click.Choice(["line", "zeros"]),
    default="line",
    show_default=True,
    help="wfdb/csv/npz: how resampling extends a recording beyond its ends: 'line' keeps "
    "its level; 'zeros' is bp-benchmark's (its windows exactly, with 10-33 mmHg of filter "
    "ringing in the first samples of a record).",
)
@click.option(
    "--skip-bad-records",
    is_flag=True,
    help="wfdb/csv/npz: reject unreadable records and records without a PPG/ABP channel "
    "(counted in the report) instead of stopping.",
)
@click.option(
    "--subject-map",
    type=NonEmptyPath(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSV with a 'subject' column and a 'record' (or 'window') column: the subject of "
    "each record (wfdb/csv/npz; record = path without extension, or its name) or window "
    "(innpar-npy)  [default: subject = record id].",
)
@click.option(
    "--subject-pattern",
    default=None,
    help="innpar-npy: regex on the window name with a 'subject' (and optional 'start') "
    "group  [default: ^(?P<subject>.+)_(?P<start>\\d+)$].",
)
@click.option("--description", default="", help="Free text stored in the file.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@click.pass_context
def import_cmd(ctx: click.Context, fmt: str, path: Path, out: Path, **kw) -> None:
    """Import FORMAT data at PATH into one HDF5 window file, with a report of what was kept
    and rejected and why (stored in the file's provenance too, with input sha256s).

    \b
    FORMAT
      bp-benchmark  folder of signal_fold_<k>.mat (MAT 5 or v7.3): PPG 'signal', ABP
                    'abp_signal' (mmHg), subject 'patient', window id 'trial', fold k;
                    SP, DP and demographics become reference fields
      innpar-npy    folder with ppg/ and abp/ holding <subject>_<start>.npy pairs of
                    shape (1, L) or (L,) (or train/ val/ test/ subfolders with them)
      wfdb          a WFDB record or a folder of them (searched recursively)
      csv           a .csv recording (header of channel names) or a folder of them
      npz           a .npz recording (one 1-D array per channel) or a folder of them

    \b
    wfdb/csv/npz recordings are resampled to --fs, the PPG is aligned to the ABP (delay
    by cross-correlation), cut into --window-seconds windows and every window is
    quality-checked (see docs/data.md).

    \b
    Examples:
      innpar data import bp-benchmark ../shared/data/challenge2015/bp_benchmark --out c2015.h5
      innpar data import wfdb ../shared/data/challenge2015/wfdb --out raw.h5 --json
      innpar data import innpar-npy ../shared/data/challenge2015/innpar_layout --out npy.h5
      innpar data import csv recordings/ --input-fs 500 --ppg-channel pleth --out mine.h5
    """
    from innpar_freia.data.importers import import_data
    from innpar_freia.data.recordings import channel_key

    as_json, quiet = kw.pop("as_json"), kw.pop("quiet")
    for name, formats in _IMPORT_OPTION_FORMATS.items():
        given = ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
        if given and fmt not in formats:
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(f"{flag} does not apply to {fmt} (only to {', '.join(formats)})")
    # Channels are matched by name without case or punctuation ("PLETH" is "Pleth"), so
    # two options that differ only there name one channel.
    same = kw["ppg_channel"] is not None and kw["abp_channel"] is not None
    if same and channel_key(kw["ppg_channel"]) == channel_key(kw["abp_channel"]):
        raise click.UsageError(
            f"--ppg-channel and --abp-channel both name {kw['ppg_channel']!r}; they must differ"
        )
    if (
        not kw["align"]
        and ctx.get_parameter_source("max_lag") == click.core.ParameterSource.COMMANDLINE
    ):
        raise click.UsageError("--max-lag has no effect with --no-align (no delay is searched)")
    options: dict = {
        "fs": kw["fs"],
        "description": kw["description"],
        "overwrite": kw["force"],
        "progress": _BarProgress(quiet or as_json),
    }
    if fmt == "innpar-npy":
        options["subject_map"] = kw["subject_map"]
        if kw["subject_pattern"] is not None:
            options["subject_pattern"] = kw["subject_pattern"]
    elif fmt in ("wfdb", "csv", "npz"):
        options.update(
            fs=125.0 if kw["fs"] is None else kw["fs"],
            input_fs=kw["input_fs"],
            window_s=kw["window_seconds"],
            ppg_channel=kw["ppg_channel"],
            abp_channel=kw["abp_channel"],
            time_column=kw["time_column"],
            align=kw["align"],
            max_lag_s=kw["max_lag"],
            qc=kw["qc"],
            edges=kw["edges"],
            subject_map=kw["subject_map"],
            skip_bad=kw["skip_bad_records"],
        )
    with output_folder(out):
        report = import_data(fmt, path, out, **options).to_dict()
    if as_json:
        echo_json(report)
    else:
        _print_import_report(report)


@data.command("split")
@click.argument("file", type=NonEmptyPath(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--folds",
    type=click.IntRange(min=3, max=1000),
    default=5,
    help="Number of subject-disjoint folds to assign.",
)
@click.option(
    "--keep-folds",
    is_flag=True,
    help="Keep the file's folds (e.g. bp-benchmark's) and only fill the split column.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Seed of the fold order.")
@click.option(
    "--test-fold",
    type=click.IntRange(min=0),
    default=0,
    help="Fold that the split column makes 'test' (validation: the next fold, mod K).",
)
@click.option(
    "--join-shared",
    is_flag=True,
    help="Put subjects whose windows share signal (exact, near or shifted copies, as "
    "'innpar data check' finds them, looked for across the whole file) in one fold.",
)
@click.option("--quiet", is_flag=True, help="No progress bar (of --join-shared).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def split_cmd(
    file: Path,
    folds: int,
    keep_folds: bool,
    seed: int,
    test_fold: int,
    join_shared: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Assign subject-disjoint folds and the train/val/test split column of FILE, in place.

    \b
    Writes two per-window columns:
      fold   0..K-1; all windows of a subject in one fold. Subjects go, largest first
             (ties in a seeded order), to the fold with the fewest windows so far.
      split  bp-benchmark's nested scheme for --test-fold t: test = fold t,
             val = fold (t+1) mod K, train = the other folds.
    Training uses the split column unless given --test-fold (the same scheme for any
    fold); every fold is a test fold once in a K-fold run. Subjects are ids: records of
    one patient under other ids (the same minutes recorded twice) leak across folds;
    --join-shared finds them by their signal and keeps them in one fold, so that
    'innpar data check' finds nothing across the new folds. It compares every window
    with every other: minutes at 100,000 windows, with a progress bar on stderr when it
    is a terminal (not with --quiet or --json).

    \b
    Examples:
      innpar data split data.h5 --folds 5 --seed 0
      innpar data split c2015.h5 --keep-folds --test-fold 1
      innpar data split c2015.h5 --folds 4 --join-shared
    """
    from innpar_freia.data.splits import split_file

    given = click.get_current_context().get_parameter_source("folds")
    if keep_folds and given is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--keep-folds keeps the file's folds: --folds does not apply")
    if keep_folds and join_shared:
        raise click.UsageError("--keep-folds keeps the file's folds: --join-shared does not apply")
    summary = split_file(
        file,
        None if keep_folds else folds,
        seed,
        test_fold,
        join_shared,
        _BarProgress(quiet or as_json),
    )
    if summary["replaced_folds"] and not as_json:  # the JSON says it as replaced_folds
        click.echo(
            f"note: replaced the folds {file} had before; --keep-folds keeps a file's folds",
            err=True,
        )
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{file}: folds ({summary['fold_assignment']})")
    for k, v in summary["folds"].items():
        click.echo(
            f"  fold {k}: {counted(v['windows'], 'window')}, {counted(v['subjects'], 'subject')}"
        )
    # A group can hold hundreds of subjects: a line names the first few, --json them all.
    for group in summary.get("joined_subjects", []):
        names = listed(group, JOINED_SHOWN)
        if len(group) > JOINED_SHOWN:
            names = f"{len(group)} subjects: {names} (--json lists them all)"
        click.echo(f"  one fold for subjects sharing signal: {names}")
    sp = summary["splits"]
    click.echo(
        f"  split for test fold {test_fold}: train {sp['train']}, val {sp['val']}, "
        f"test {sp['test']} windows"
    )


def _print_partition(p: dict) -> None:
    name = p["partition"]
    parts = ", ".join(f"{k}: {v}" for k, v in p["parts"].items())
    expected = (
        "    note: {} near-identical window pairs across {}s (r < 0.999): expected in synthetic "
        "data, whose subjects share one waveform model; not leakage"
    )
    if not p["leakage"]:
        click.echo(f"OK  no leakage across {name}s ({parts})")
        if p["near_duplicates_expected"] and p["near_duplicate_pairs"]:
            click.echo(expected.format(p["near_duplicate_pairs"], name))
        if p["windows_duplicated_within_a_part"]:
            n = p["windows_duplicated_within_a_part"]
            have = "has" if n == 1 else "have"
            click.echo(
                f"    note: {counted(n, 'window')} {have} an identical copy in their own {name}"
            )
        return
    click.echo(f"LEAKAGE FOUND across {name}s ({parts})")
    click.echo(f"  subjects in several {name}s:   {p['subjects_in_several_parts']}")
    for e in p["subject_examples"]:
        click.echo(f"    {e['id']}: windows per {name} {e['windows_per_part']}")
    click.echo(f"  window ids in several {name}s: {p['window_ids_in_several_parts']}")
    for e in p["window_id_examples"]:
        click.echo(f"    {e['id']}: {e['windows_per_part']}")
    pairs = p["exact_duplicate_pairs"]
    click.echo(
        "  identical windows (same float32 PPG or ABP): "
        f"{counted(p['exact_duplicate_windows'], 'window')} "
        f"(pairs: PPG {pairs.get('ppg', 0)}, ABP {pairs.get('abp', 0)})"
    )

    def pair(e: dict) -> str:
        a, b = e["a"], e["b"]
        return f"{a['window']} ({name} {a[name]}) = {b['window']} ({name} {b[name]})"

    for e in p["exact_examples"]:
        click.echo(f"    {pair(e)}: identical {e['identical'].upper()}")
    click.echo(
        f"  near-identical windows (signature r > threshold for PPG and ABP): "
        f"{counted(p['near_duplicate_pairs'], 'pair')}, "
        f"{counted(p['near_duplicate_windows'], 'window')}; "
        f"{counted(p['near_duplicate_pairs_above_0_999'], 'pair')} with r >= 0.999 (copies)"
    )
    for e in p["near_examples"]:
        click.echo(f"    {pair(e)}: r PPG {e['ppg_corr']:.4f}, ABP {e['abp_corr']:.4f}")
    click.echo(
        f"  shifted copies (one stretch of signal at another place in the window): "
        f"{counted(p['shifted_copy_pairs'], 'pair')}, "
        f"{counted(p['shifted_copy_windows'], 'window')}, "
        f"{counted(p['shifted_subject_pairs'], 'pair')} of subjects"
    )
    for e in p["shifted_examples"]:
        shift = e["shift_seconds"]
        when = f"{abs(shift):.3f} s {'after' if shift >= 0 else 'before'}"
        click.echo(
            f"    {pair(e)}: the second starts {when} the first, "
            f"{e['overlap_seconds']:.2f} s shared, r PPG {e['ppg_corr']:.6f}, "
            f"ABP {e['abp_corr']:.6f}"
        )
    for e in p["shifted_subject_examples"]:
        click.echo(
            f"    subjects {e['a']} ({name} {e['a_' + name]}) and {e['b']} "
            f"({name} {e['b_' + name]}) share signal: {e['window_pairs']} window pairs"
        )


@data.command("check")
@click.argument("file", type=NonEmptyPath(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--threshold",
    type=FloatRange(min=0.5, max=1.0, max_open=True),
    default=0.99,
    help="Signature correlation above which two windows are near-identical.",
)
@click.option(
    "--signature-points",
    type=click.IntRange(min=8, max=4096),
    default=64,
    help="Block means per window in the signature.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def check_cmd(
    ctx: click.Context,
    file: Path,
    threshold: float,
    signature_points: int,
    quiet: bool,
    as_json: bool,
) -> None:
    """Check FILE for leakage between its splits and between its folds.

    \b
    Reports, for the split column (train/val/test) and for the folds:
      - subjects and window ids with windows in more than one split/fold;
      - identical windows across them (sha256 of the float32 PPG or ABP);
      - near-identical windows: correlation above --threshold of both the PPG and the
        ABP signature (block means, z-scored), compared with blocked matrix products;
      - shifted copies: one stretch of signal (2 s or more) at another place in two
        windows, found from 2-s segments that start at each ABP beat, and confirmed
        sample by sample (r >= 0.999 in both signals and >= 0.9999 in one);
        the pairs of subjects they join are listed ('innpar data split --join-shared'
        draws folds that keep such subjects together).
    Every window is compared with every other of the other parts: minutes at 100,000
    windows, with a progress bar on stderr when it is a terminal (not with --quiet or
    --json).
    Exit code: 0 no leakage, 3 leakage found, 1 unreadable file or nothing to check.

    \b
    Example:
      innpar data check data.h5 --json
    """
    from innpar_freia.data.leakage import check_leakage
    from innpar_freia.errors import DataError

    report = check_leakage(file, threshold, signature_points, _BarProgress(quiet or as_json))
    if not report.partitions:
        from innpar_freia.data.store import read_info

        folds = sorted({int(k) for k in read_info(file, check_split=False).fold if k >= 0})
        what = (
            f"one fold ({folds[0]}) and no split column: nothing lies across two parts"
            if len(folds) == 1
            else "neither a split column nor folds"
        )
        raise DataError(
            f"{file} has {what}, so there is nothing to check; assign them with 'innpar data split'"
        )
    d = report.to_dict()
    if as_json:
        echo_json(d)
    else:
        click.echo(
            f"{file}: {counted(d['n_windows'], 'window')}, checked "
            f"{' and '.join(d['checked'])}s in {d['seconds']:.1f} s"
        )
        flat = [(n, k.upper()) for k, n in d["flat_windows"].items() if n]
        if flat:
            (n, name), *more = flat
            click.echo(
                f"note: {counted(n, 'window')} {'has' if n == 1 else 'have'} a constant {name}"
                + "".join(f" and {m} a constant {k}" for m, k in more)
                + " (no pulse): not copies of one another, so not compared; drop them before "
                "training ('innpar data import' rejects such windows)"
            )
        for p in d["partitions"]:
            _print_partition(p)
    if report.leaks:
        if not as_json:
            click.echo(
                "leakage found: fix the splits before training ('innpar data split --folds K "
                "--join-shared' keeps subjects sharing signal in one fold) (exit code 3)",
                err=True,
            )
        ctx.exit(3)
