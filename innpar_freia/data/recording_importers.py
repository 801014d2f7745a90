"""Import continuous recordings (WFDB, CSV, NPZ) through one windowing pipeline.

Each input file (or WFDB record) is one recording. Its record id is its path relative to
the input folder without the extension (``training/85``), or its stem for a single file;
the subject id is the record id unless a subject map (CSV ``record,subject``) says
otherwise. Recordings that cannot be aligned, or that keep no window, are rejected with a
reason code; unreadable ones stop the import unless ``skip_bad`` is set, in which case
they are rejected with code ``unreadable`` or ``missing_channel``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from innpar_freia.data.import_report import (
    ImportReport,
    Progress,
    SourceReport,
    check_output,
    heart_rate_warning,
    median_rate,
    provenance,
    read_subject_map,
    refuse_input_as_output,
    repeated_ids_warning,
    summarise,
    unused_map_rows,
    window_heart_rate,
)
from innpar_freia.data.limits import IMPORT_RANGES, check_in_range
from innpar_freia.data.qc import LagConfig, WindowQC
from innpar_freia.data.recordings import (
    ABP_NAMES,
    RawRecording,
    channel_key,
    files_under,
    find_channel,
    read_csv,
    read_npz,
    read_wfdb,
    recording_files,
    refuse_no_recording,
)
from innpar_freia.data.store import WindowWriter
from innpar_freia.data.windowing import PipelineOptions, window_recording
from innpar_freia.errors import DataError, UnknownRateError, check_flag, option

RECORDING_FORMATS = ("wfdb", "csv", "npz")
_SUFFIX = {"csv": ".csv", "npz": ".npz", "wfdb": ".hea"}


def _input_fs() -> str:
    """What gives the inputs' rate, as the caller gives it (give_rate adds " HZ" to an option)."""
    return option("--input-fs", "input_fs=HZ")


def _channel_option(kind: str) -> str:
    """What names the ``kind`` channel: the option, or import_recordings' parameter."""
    return option(f"--{kind}-channel", f"{kind}_channel='NAME'")


@dataclass
class Unit:
    """One recording to import: its record id and the path to read."""

    id: str
    path: Path


def _multi_segment_members(header: Path) -> list[str]:
    """Segment record names listed by a multi-segment master header (none otherwise)."""
    try:
        lines = [ln.split() for ln in header.read_text(encoding="utf-8-sig").splitlines()]
    except (UnicodeDecodeError, OSError):
        return []  # reported properly when the record is read
    lines = [ln for ln in lines if ln and not ln[0].startswith("#")]
    if not lines or "/" not in lines[0][0]:
        return []
    return [ln[0] for ln in lines[1:] if ln[0] != "~"]


def discover(fmt: str, path: Path) -> list[Unit]:
    """The recordings of ``fmt`` at ``path`` (a file, or a folder searched recursively), in
    sorted order. WFDB segments listed by a multi-segment master header are read through
    the master, not on their own."""
    if fmt not in _SUFFIX:
        raise DataError(f"unknown recording format {fmt!r}; use one of wfdb, csv, npz")
    suffix = _SUFFIX[fmt]
    if not path.is_dir() and (path.is_file() or path.with_suffix(".hea").is_file()):
        if fmt == "wfdb":
            base = path.with_suffix("") if path.suffix.lower() in (".hea", ".dat", ".mat") else path
            if not base.with_suffix(".hea").is_file():
                raise DataError(f"WFDB header not found: {base.with_suffix('.hea')}")
            return [Unit(base.name, base)]
        if path.suffix.lower() != suffix:
            raise DataError(f"{path} is not a {suffix} file")
        return [Unit(path.stem, path)]
    if not path.is_dir():
        raise DataError(f"{path} does not exist")
    files = files_under(path, suffix)
    if fmt == "wfdb":
        # wfdb reads a record's header as NAME.hea only: a .HEA would be skipped silently.
        upper = [f for f in files if f.suffix != suffix]
        if upper:
            raise DataError(
                f"{upper[0]}: wfdb reads headers named .hea (lower case) only; rename "
                f"{'it' if len(upper) == 1 else f'the {len(upper)} such headers'}"
            )
        covered = set()
        for header in files:
            for seg in _multi_segment_members(header):
                covered.add(header.parent / seg)
        files = [f.with_suffix("") for f in files if f.with_suffix("") not in covered]
    if not files:
        what = "WFDB records (.hea files)" if fmt == "wfdb" else f"{suffix} files"
        # Recordings of another format there were left unnamed: a folder of .npz files
        # imported as csv said only that it had no .csv files.
        others = [
            f"{len(found)} {other_suffix} file{'s' if len(found) != 1 else ''}: import "
            f"{'them' if len(found) != 1 else 'it'} with 'innpar data import {other} {path}'"
            for other, other_suffix in _SUFFIX.items()
            if other != fmt and (found := files_under(path, other_suffix))
        ]
        hint = f" (it has {'; '.join(others)})" if others else ""
        raise DataError(f"{path} has no {what}{hint}")
    units = []
    for f in files:
        rel = f.relative_to(path)
        units.append(Unit(rel.with_suffix("").as_posix() if fmt != "wfdb" else rel.as_posix(), f))
    return units


# Pressure units of an ABP channel (lower case, without spaces, brackets, "_", "." or "-")
# and their factor to mmHg. A WFDB header states the unit; CSV and NPZ channels have none (mmHg).
# hPa and mbar (100 Pa) were taken as mmHg, a third too high; torr is mmHg to 1e-7.
TO_MMHG = {
    "mmhg": 1.0,
    "torr": 1.0,
    "kpa": 7.500617,
    "hpa": 0.7500617,
    "mbar": 0.7500617,
    "pa": 0.007500617,
    "cmh2o": 0.7355592,
    "mmh2o": 0.07355592,
}
PRESSURE_UNITS = ("mmHg", "torr", "kPa", "hPa", "mbar", "Pa", "cmH2O", "mmH2O")  # as written


def _unit_key(units: str | None) -> str:
    """A unit as :data:`TO_MMHG` spells it: "mm Hg", "mm_Hg", "[mmHg]" are "mmhg"."""
    return re.sub(r"[\s\[\]()_.-]", "", units or "").lower()


def pressure_as_ppg(rec: RawRecording, channel: str, parameter: str | None = None) -> str | None:
    """What to warn of when ``channel``, chosen as the PPG of ``rec``, looks like an arterial
    pressure: the file declares it in a pressure unit (:data:`TO_MMHG`: a WFDB header's or a
    CSV units row's mmHg, kPa, cmH2O, ...) or it has an ABP channel's name
    (:data:`ABP_NAMES`); None when neither. ``--ppg-channel ABP`` was reconstructed into
    nonsense pressures (SBP 184, DBP 6 on Challenge 2015 record 85) with only a warning of
    implausible values, and imported as PPG without a word. A warning, not a refusal: the
    user may know better (a pressure-like name on a PPG). The name of an ``.npy``'s one
    channel is the user's own, not the file's, so it is not judged. ``parameter``: the
    Python caller's name of the PPG channel (``ppg_channel``); None names the option only
    (reconstruct_file's channel is no parameter of that name)."""
    said = []
    units = rec.units.get(channel, "")
    if _unit_key(units) in TO_MMHG:
        said.append(f"is in {units!r} (a pressure unit, as the file declares)")
    if rec.format != "npy" and channel_key(channel) in ABP_NAMES:
        said.append("is named as arterial pressure channels are")
    if not said:
        return None
    others = [c for c in rec.channels if c != channel]
    ppg = find_channel(others, "ppg", required=False)
    hint = f"--ppg-channel {ppg}" if ppg else "--ppg-channel"
    if parameter is not None:
        hint = option(hint, f"{parameter}={ppg!r}" if ppg else parameter)
    listed = f" (its channels: {', '.join(rec.channels)})" if others else ""
    return (
        f"PPG channel {channel!r} {' and '.join(said)}: it looks like an arterial blood "
        f"pressure, not a PPG. If it is not the PPG, name the PPG with {hint}{listed}"
    )


def abp_in_mmhg(abp: np.ndarray, units: str) -> tuple[np.ndarray, str | None]:
    """``abp`` in mmHg, and what to warn of (None when nothing). A channel in kPa was kept in
    kPa with a warning and then rejected as out of range (ABP median 15.5 "mmHg"): pressure
    units are converted. Another unit (a channel named by --abp-channel in ADC units, "NU")
    is taken as mmHg, with a warning."""
    key = _unit_key(units)
    if not key:
        return abp, None
    if key not in TO_MMHG:
        return abp, (
            f"is in {units!r}, not a pressure unit ({', '.join(PRESSURE_UNITS)}): taken as mmHg"
        )
    factor = TO_MMHG[key]
    if factor == 1.0:
        return abp, None
    return abp * factor, f"was in {units!r}: converted to mmHg (x {factor:g})"


def _read(fmt: str, unit: Unit, input_fs: float | None, time_column: str | None):
    if fmt == "wfdb":
        return read_wfdb(unit.path, input_fs, fs_option=_input_fs())
    if fmt == "csv":
        return read_csv(unit.path, input_fs, time_column, fs_option=_input_fs())
    return read_npz(unit.path, input_fs, fs_option=_input_fs())


def _input_files(fmt: str, unit: Unit) -> list[Path]:
    """A record's files, each readable: a file without read permission was read (and
    hashed) as it was, and its PermissionError stopped the import with --skip-bad-records
    too. Refused as a DataError, it is a record rejected as unreadable there."""
    return recording_files(unit.path, fmt)


def _subjects(units: list[Unit], subject_map: str | Path | None) -> tuple[dict[str, str], list]:
    """Each record's subject, and the map's rows that name no record (for a warning)."""
    if subject_map is None:
        return {u.id: u.id for u in units}, []
    mapping = read_subject_map(subject_map)
    out, missing, used = {}, [], set()
    for u in units:
        key = u.id if u.id in mapping else Path(u.id).name
        if key not in mapping:
            missing.append(u.id)
        else:
            out[u.id] = mapping[key]
            used.add(key)
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        # A map naming records by a file (167.hea, a.csv) matched none of them, unexplained.
        by_file = [
            k for k in mapping if Path(k).suffix.lower() in (".hea", ".dat", ".mat", ".csv", ".npz")
        ]
        hint = (
            f"; name records without the extension ({Path(by_file[0]).with_suffix('')}, not "
            f"{by_file[0]})"
            if by_file
            else ""
        )
        raise DataError(
            f"subject map {subject_map} has no subject for record(s) {', '.join(missing[:5])}"
            f"{more}{hint}"
        )
    return out, [k for k in mapping if k not in used]


def _window_ids(record: str, starts: np.ndarray) -> Iterator[str]:
    for s in starts:
        yield f"{record}_{int(s):06d}"


def import_recordings(
    fmt: str,
    path: str | Path,
    out: str | Path,
    *,
    fs: float = 125.0,
    input_fs: float | None = None,
    window_s: float = 5.0,
    ppg_channel: str | None = None,
    abp_channel: str | None = None,
    time_column: str | None = None,
    align: bool = True,
    max_lag_s: float = 2.0,
    qc: bool = True,
    edges: str = "line",
    subject_map: str | Path | None = None,
    skip_bad: bool = False,
    description: str = "",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import WFDB records, CSV or NPZ recordings: resample to ``fs`` Hz, align the PPG to
    the ABP, cut ``window_s``-second windows and quality-check each (see
    :mod:`innpar_freia.data.windowing`).

    ``input_fs`` (Hz) is the rate of CSV/NPZ inputs without a time column or ``fs`` key
    (and of WFDB headers that do not state it). SBP/DBP labels (mmHg) of every kept
    window are stored as reference fields ``SP``/``DP``. ``edges``: how resampling extends
    a recording beyond its ends (``"line"``; ``"zeros"`` as bp-benchmark made its windows,
    see :data:`innpar_freia.data.qc.EDGES`).

    Raises:
        DataError: nothing to import, an unreadable file or a missing channel (unless
            ``skip_bad``), or no window kept at all; nothing is written then.
    """
    align, qc, skip_bad, overwrite = (
        check_flag(name, value)
        for name, value in (
            ("align", align),
            ("qc", qc),
            ("skip_bad", skip_bad),
            ("overwrite", overwrite),
        )
    )
    t0 = time.monotonic()
    path, out = Path(path), check_output(out, overwrite)
    progress = progress or Progress()
    if input_fs is not None:
        input_fs = check_in_range("input_fs", input_fs, IMPORT_RANGES)
    opts = PipelineOptions(
        fs=fs,
        window_s=window_s,
        align=align,
        lag=LagConfig(max_lag_s=max_lag_s),
        qc=WindowQC() if qc else None,
        edges=edges,
    )
    if opts.window_length < 8:
        raise DataError(f"a {window_s} s window at {fs:g} Hz has only {opts.window_length} samples")
    units = discover(fmt, path)
    refuse_input_as_output(
        out, [u.path.with_suffix(".hea") if fmt == "wfdb" else u.path for u in units]
    )
    subjects, unused = _subjects(units, subject_map)
    # The output rate of recordings is whatever they were resampled to (--fs, default 125).
    report = ImportReport(fmt, str(path), str(out), opts.fs, "resampled", opts.window_length)
    if unused:
        report.warnings.append(unused_map_rows(subject_map, unused, "record"))
    inputs: list[Path] = []
    kept_subjects: list[str] = []
    rates: list[float] = []  # heart rates of the windows (window_recording's), for the rate
    rate_windows = 0
    writer = WindowWriter(
        out,
        fs=opts.fs,
        window_length=opts.window_length,
        source_format=fmt,
        ppg_units="a.u.",
        abp_units="mmHg",
        description=description or f"{fmt} recordings imported from {path}",
        overwrite=overwrite,
        repeated_ids=True,  # two records of one name (a.csv, a.CSV): warned of below
    )
    progress.start(len(units), f"{fmt} records")
    try:
        for unit in units:
            src = SourceReport(id=unit.id, path=str(unit.path), subject=subjects[unit.id])
            report.sources.append(src)
            stage = "unreadable"
            try:
                inputs.extend(_input_files(fmt, unit))
                try:
                    rec = _read(fmt, unit, input_fs, time_column)
                except UnknownRateError as exc:
                    # A file without the channels is a missing channel first (records.csv).
                    stage = "missing_channel"
                    kinds = {"ppg": ppg_channel, "abp": abp_channel}
                    flags = {kind: _channel_option(kind) for kind in kinds}
                    refuse_no_recording(unit.path, exc, kinds, _input_fs(), flags)
                    stage = "unreadable"
                    raise
                stage = "missing_channel"
                ppg_name = rec.find("ppg", ppg_channel, flag=_channel_option("ppg"))
                abp_name = rec.find("abp", abp_channel, flag=_channel_option("abp"))
                if ppg_name == abp_name:
                    raise DataError(
                        f"{unit.path}: channel {ppg_name!r} was chosen as both PPG and ABP; "
                        "name two different channels with "
                        f"{option('--ppg-channel', 'ppg_channel')} and "
                        f"{option('--abp-channel', 'abp_channel')}"
                    )
            except DataError as exc:
                if not skip_bad:
                    raise
                src.status, src.reason, src.detail = "rejected", stage, str(exc)
                progress.advance(unit.id)
                continue
            # What the reader warned of (text in a CSV's columns of numbers, read as a gap).
            report.warnings += [f"{unit.id}: {w}" for w in rec.meta.get("warnings", [])]
            said = pressure_as_ppg(rec, ppg_name, "ppg_channel")
            if said:  # only the ABP's unit was looked at, and a pressure imported as PPG
                report.warnings.append(f"{unit.id}: {said}")
            abp, said = abp_in_mmhg(rec.signals[abp_name], rec.units.get(abp_name, ""))
            if said:
                report.warnings.append(f"{unit.id}: ABP channel {abp_name!r} {said}")
            win = window_recording(rec.signals[ppg_name], abp, rec.fs, opts)
            rates += win.rates
            rate_windows += win.rate_windows
            src.status, src.reason, src.detail = win.status, win.reason, win.detail
            src.lag_samples = win.lag
            src.lag_seconds = None if win.lag is None else round(win.lag / opts.fs, 6)
            if win.ppg_inverted:
                src.ppg_inverted = True
                report.warnings.append(
                    f"{unit.id}: PPG channel {ppg_name!r} is upside down (raw photodiode "
                    "counts fall as blood volume rises): turned over, as the windows store it"
                )
            src.windows_total, src.windows_kept = win.windows_total, len(win.starts)
            src.rejected = win.rejected
            if len(win.starts):
                writer.append(
                    win.ppg,
                    win.abp,
                    subject=subjects[unit.id],
                    window_id=list(_window_ids(unit.id, win.starts)),
                    start=win.starts,
                    reference={"SP": win.sbp, "DP": win.dbp},
                )
                kept_subjects.extend([subjects[unit.id]] * len(win.starts))
            progress.advance(unit.id)
        if writer.n == 0:
            reasons = "; ".join(f"{s.id}: {s.reason} ({s.detail})" for s in report.sources[:5])
            more = f"; and {len(report.sources) - 5} more" if len(report.sources) > 5 else ""
            said = "".join(f"; warning: {w}" for w in report.warnings)
            raise DataError(f"no window of {path} was kept: {reasons}{more}{said}")
        warning = repeated_ids_warning(writer)
        if warning:
            report.warnings.append(warning)
        # From every window without NaN, not only the kept: QC keeps windows of 35-140 bpm,
        # which hid a rate off by 2. The first 12 usable Challenge 2015 records as CSV (at
        # 250 Hz): 84 bpm given --input-fs 250, 163 given 500, 43 given 125; the kept
        # windows' median given 125 was 51 bpm (not warned of).
        # Where under half of all windows have a regular pulse (the 34 records' 1,469:
        # 54 %), the kept windows' rate is still a check (theirs: 69 %).
        hr = median_rate(rates, rate_windows)
        if hr is None:
            hr = window_heart_rate(writer.fh["abp"], opts.fs)
        warning = heart_rate_warning(None, opts.fs, None, hr=hr)
        if warning:
            report.warnings.append(warning)
        summarise(report, kept_subjects, [], [])
        report.seconds = time.monotonic() - t0
        writer.set_provenance(
            provenance(
                report,
                inputs,
                path if path.is_dir() else path.parent,
                {
                    **opts.to_dict(),
                    "input_fs": input_fs,
                    "ppg_channel": ppg_channel,
                    "abp_channel": abp_channel,
                    "time_column": time_column,
                    "subject_map": None if subject_map is None else str(subject_map),
                    "skip_bad": skip_bad,
                },
            )
        )
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        progress.finish()
    report.seconds = time.monotonic() - t0
    return report
