"""``innpar reconstruct``: a recording file (WFDB, CSV, NPY, NPZ) or a window file in, the
reconstruction out in the matching format at the input's rate, with a per-beat table, a
JSON summary and optionally a figure; everything written together or not at all.

Calibration-free levels are the training population's: for a person the model has never
seen, absolute mmHg values are unreliable (see ``docs/evaluation-report.md``); a cuff reading
(``calibration="120/80"``) or a reference ABP segment fixes level and pulse pressure.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.checkpoint import Checkpoint, load_checkpoint
from innpar_freia.data.limits import number_in_range
from innpar_freia.errors import DataError, UnknownRateError, check_flag, option
from innpar_freia.metrics import CALIBRATIONS
from innpar_freia.outputs import (
    StagedOutputs,
    check_outputs,
    json_text,
    output_format,
    recording_paths,
    same_file,
    write_recording,
)
from innpar_freia.reconstruct import (
    ABP_RANGE,
    DEFAULT_OVERLAP,
    DIRECTIONS,
    GAP_MARGIN,
    START_REASON,
    Reconstruction,
    detect_gaps,
    implausible_fraction,
    min_samples,
    reconstruct_array,
)
from innpar_freia.reconstruct_limits import RANGES, option_name, seconds_text
from innpar_freia.recording_bp import (
    Beats,
    CalibrationNames,
    calibrate_recording,
    compare_with_reference,
    detect_beats,
    offset_only_warning,
    parse_cuff,
)

# Below this rate a PPG/ABP cannot resolve beats; upsampling would only invent them.
MIN_INPUT_FS = 10.0
WINDOW_FILE_SUFFIXES = (".h5", ".hdf5")
CALIBRATION_FREE_NOTE = (
    "calibration-free: the reconstructed level (mmHg) is the training population's, not this "
    "person's; absolute values are unreliable for anyone not in the training data. Give a "
    "cuff reading with --calibration SBP/DBP for absolute values."
)

# What the calibration's messages call its settings: fields of the options (as
# reconstruct_folder's messages say "force=True in options").
OPTIONS_CALIBRATION_NAMES = CalibrationNames(
    "calibration_at", "calibration_seconds", "calibration='SBP/DBP'", " in options"
)


@dataclass
class ReconstructOptions:
    """What ``innpar reconstruct`` was asked to do (see the command's help)."""

    direction: str = "ppg2abp"
    channel: str | None = None
    fs: float | None = None
    overlap: float = DEFAULT_OVERLAP
    delay_s: float = 0.0
    calibration: str | None = None
    calibration_mode: str = "offset-scale"
    # Seconds on the input's clock (a CSV time column's, else from the first sample);
    # None: the recording's start.
    calibration_at: float | None = None
    calibration_seconds: float = 60.0
    reference_abp: str | None = None
    plot: Path | None = None
    force: bool = False

    def __post_init__(self) -> None:
        # The CLI's option types refuse these before they get here; the Python API did not
        # (calibration_seconds=0 was called a segment starting after the recording's end).
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if value is None and name == "fs":
                continue  # the rate from the file
            number_in_range(f"ReconstructOptions.{name}", value, low, high)
        if self.calibration_at is not None and (
            isinstance(self.calibration_at, bool)
            or not isinstance(self.calibration_at, (int, float, np.number))
        ):
            raise TypeError(
                "ReconstructOptions.calibration_at must be a time in seconds or None, not "
                f"{self.calibration_at!r}"
            )
        self._check_kinds()
        if self.plot is not None:
            self.plot = _plot_path(self.plot)
        if self.direction not in DIRECTIONS:
            raise DataError(
                f"direction must be one of {', '.join(DIRECTIONS)}, not {self.direction!r}"
            )
        if self.calibration_mode not in CALIBRATIONS:
            raise DataError(
                f"calibration mode must be one of {', '.join(CALIBRATIONS)}, "
                f"not {self.calibration_mode!r}"
            )
        self._check_together()

    def _check_kinds(self) -> None:
        """A flag that is not a bool and a channel that is not a name: ``force="no"`` was
        taken as true and replaced the outputs, ``channel=1`` ended in "AttributeError:
        'int' object has no attribute 'lower'"."""
        self.force = check_flag("ReconstructOptions.force", self.force)
        for name in ("channel", "reference_abp"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(
                    f"ReconstructOptions.{name} must be a channel's name (a str) or None, not "
                    f"{value!r}"
                )

    def _check_together(self) -> None:
        """The checks of fields against each other. Their messages name each field with its
        option, ``calibration_at (--calibration-at)``: the CLI builds these options from its
        own, so a Python caller and a command-line user read the same message."""
        if self.calibration is not None and self.direction != "ppg2abp":
            raise DataError(
                f"{option_name('calibration')} calibrates reconstructed ABP: only with "
                f"{option_name('direction')} ppg2abp"
            )
        if self.reference_abp is not None and self.direction != "ppg2abp":
            # Was read, plotted in mmHg over the reconstructed PPG, and compared with nothing.
            raise DataError(
                f"{option_name('reference_abp')} is the ABP a reconstructed ABP is compared with; "
                f"with {option_name('direction')} abp2ppg the output is PPG: drop it"
            )
        if self.calibration == "reference" and self.reference_abp is None:
            raise DataError(
                f"{option_name('calibration')} 'reference' needs "
                f"{option_name('reference_abp')}, the channel of the reference ABP"
            )
        given = [
            option_name(field)
            for field, default in (
                ("calibration_at", None),
                ("calibration_seconds", 60.0),
                ("calibration_mode", "offset-scale"),
            )
            if getattr(self, field) != default
        ]
        if self.calibration is None and given:
            # Ignored, the output would be uncalibrated while the user meant otherwise.
            raise DataError(
                f"{', '.join(given)} set{'s' if len(given) == 1 else ''} how to calibrate, "
                f"but no {option_name('calibration')} was given (SBP/DBP, or reference)"
            )
        if self.calibration_at is not None and not np.isfinite(self.calibration_at):
            raise DataError(
                f"{option_name('calibration_at')} must be a time in seconds, not "
                f"{self.calibration_at}"
            )


def _plot_path(value: Any) -> Path:
    """``ReconstructOptions.plot`` as a ``Path``: a str was kept as it was and failed later
    on ``.suffix``; a name of a folder would lose its slash (the CLI refuses both too)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"ReconstructOptions.plot must be a file name or None, not {value!r}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise DataError(
            f"ReconstructOptions.plot must be a file name such as abp.png, not {value!r}"
        )
    if text.endswith(("/", "\\")) or Path(text).is_dir():
        raise DataError(
            f"ReconstructOptions.plot {text!r} names a folder; give a file name such as abp.png"
        )
    if Path(text).suffix.lower() not in (".png", ".pdf"):
        # Refused here, not only once the reconstruction ran: the options are checked whole.
        raise DataError(f"{option_name('plot')} must end in .png or .pdf, not {Path(text).name!r}")
    return Path(text)


def names_folder(value: str | os.PathLike[str], example: str) -> str | None:
    """Why the output file name ``value`` is refused when it names a folder (an existing
    one, or ending in a slash, which ``Path`` would drop), else ``None``: the outputs,
    named after it, would be written beside the folder."""
    text = os.fspath(value)
    if text.endswith(("/", "\\")) or Path(text).is_dir():
        return (
            f"{text!r} names a folder; give a file name such as {example} (a folder is for "
            "a folder INPUT)"
        )
    return None


def _base(path: Path) -> Path:
    return path.with_suffix("") if path.suffix else path


def side_paths(out: Path, fmt: str) -> dict[str, Path]:
    """Where the reconstruction's companions go: ``<out>.beats.csv`` (or ``.windows.csv``
    for a window file) and ``<out>.summary.json``, next to the output."""
    base = _base(out)
    table = "windows" if fmt == "hdf5" else "beats"
    return {
        "table": base.with_name(f"{base.name}.{table}.csv"),
        "summary": base.with_name(f"{base.name}.summary.json"),
    }


def as_options(options: ReconstructOptions | Mapping[str, Any] | None) -> ReconstructOptions:
    """``options`` as :class:`ReconstructOptions`: a mapping of its fields is taken too (a
    dict ended in "AttributeError: 'dict' object has no attribute 'direction'")."""
    if options is None:
        return ReconstructOptions()
    if isinstance(options, ReconstructOptions):
        # A checked copy: a field set after construction (force="no", plot="x.png",
        # overlap=5) skipped the constructor's checks and replaced outputs or failed deep in.
        return dataclasses.replace(options)
    if isinstance(options, Mapping):
        known = {f.name for f in fields(ReconstructOptions)}
        unknown = sorted(str(k) for k in options if k not in known)
        if unknown:
            raise TypeError(
                f"unknown reconstruct option(s) {', '.join(unknown)}; the options are "
                f"{', '.join(sorted(known))}"
            )
        return ReconstructOptions(**options)
    raise TypeError(
        f"options must be ReconstructOptions or a mapping of its fields, not {options!r}"
    )


def reconstruct_file(
    checkpoint: str | Path | Checkpoint,
    input_path: str | Path,
    out: str | Path,
    options: ReconstructOptions | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Reconstruct ``input_path`` with ``checkpoint`` into ``out``; returns the summary
    (also written to ``<out>.summary.json``). ``options``: :class:`ReconstructOptions`, or a
    dict of its fields. Raises ``DataError``/``CheckpointError`` for bad input, before
    anything is written."""
    opts = as_options(options)
    named_folder = names_folder(out, "abp.csv")
    if named_folder:
        # The outputs were written beside the folder (rec.hea, rec.dat next to rec/).
        raise DataError(f"out (--out) {named_folder}; reconstruct_folder takes a folder")
    input_path, out = Path(input_path), Path(out)
    for named in {out, _base(out)}:
        # Outputs are named after --out (``/dev/null`` -> ``/dev/null.csv``): a device
        # given there would have the files written beside it, into /dev.
        if named.exists() and not (named.is_file() or named.is_dir()):
            raise DataError(
                f"{option('--out', 'out')} {out}: {named} is a device or other special file; "
                "give the name the output files should take"
            )
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    if opts.direction == "abp2ppg":
        ckpt.check_reversible()  # before the recording is read
    if input_path.suffix.lower() in WINDOW_FILE_SUFFIXES:
        if not out.suffix:  # without a suffix, INPUT's format (as for recordings)
            out = out.with_name(f"{out.name}.h5")
        return _reconstruct_window_file(ckpt, input_path, out, opts)
    return _reconstruct_recording(ckpt, input_path, out, opts)


def _predictor(ckpt: Checkpoint, direction: str):
    return ckpt.predict_abp if direction == "ppg2abp" else ckpt.predict_ppg


def input_files(input_path: Path) -> list[Path]:
    """The input and, for a WFDB record, its header and the signal files the header names
    (any name: ``rec.hea`` may keep its samples in ``abp.dat``, which an output named
    ``abp`` would have replaced)."""
    from innpar_freia.data.recordings import check_wfdb_files, wfdb_record_base

    files = [input_path, *(input_path.with_suffix(s) for s in (".hea", ".dat", ".mat"))]
    try:
        files += check_wfdb_files(wfdb_record_base(input_path))
    except DataError:
        pass  # not a WFDB record (or a damaged one, which reading it reports)
    return files


def _check_outputs(finals: list[Path], force: bool, input_path: Path, ckpt: Checkpoint) -> None:
    """Existing outputs are replaced only with ``force``; the input (a WFDB record's files
    too) and the checkpoint never."""
    inputs = [*input_files(input_path), Path(ckpt.path)]
    check_outputs(finals, force, inputs=inputs, force_option=option_name("force"))


def _reconstruct_recording(
    ckpt: Checkpoint, input_path: Path, out: Path, opts: ReconstructOptions
) -> dict[str, Any]:
    from innpar_freia.data.recordings import (
        check_recording_exists,
        read_recording,
        refuse_no_recording,
    )

    kind = "ppg" if opts.direction == "ppg2abp" else "abp"
    check_recording_exists(input_path, "input")
    if input_path.is_dir() and not input_path.with_suffix(".hea").is_file():
        # Was "cannot tell the format of DIR: expected a WFDB record (.hea), .csv, ...".
        raise DataError(
            f"{input_path} is a folder; reconstruct_file reads one recording (a WFDB record, "
            ".csv, .npz or .npy file); reconstruct_folder reads every recording of a folder "
            "('innpar reconstruct FOLDER --out OUTDIR')"
        )
    fmt_in = None
    kwargs: dict[str, Any] = {"fs_option": option_name("fs")}
    if input_path.suffix.lower() == ".npy":
        kwargs["channel"] = opts.channel or kind
    try:
        rec = read_recording(input_path, fmt_in, fs=opts.fs, **kwargs)
    except UnknownRateError as exc:
        refuse_no_recording(input_path, exc, {kind: opts.channel}, option_name("fs"))
        raise
    if rec.fs < MIN_INPUT_FS:
        raise DataError(
            f"{input_path}: sampling rate {rec.fs:g} Hz is too low to resolve heart beats "
            f"(at least {MIN_INPUT_FS:g} Hz)"
        )
    channel = rec.find(kind, opts.channel)
    x = rec.signals[channel]
    # What the reader warned of (text in a CSV's columns of numbers, read as a gap).
    warnings: list[str] = list(rec.meta.get("warnings", []))
    source_units = rec.units.get(channel) or "a.u."
    if kind == "ppg":
        # The importers' rule: a PPG channel in mmHg or named ABP is likely the pressure.
        warnings += _pressure_as_ppg(rec, channel)
    if kind == "abp":
        # As the importers do: an ABP in kPa was normalised as if it were mmHg.
        x = _abp_in_mmhg(rec, channel, "ABP channel", warnings)
        source_units = "mmHg" if x is not rec.signals[channel] else source_units
    window_s = ckpt.window_length / ckpt.fs
    # One window after the start-up margin: a recording 5.04 s long passed a check against
    # the 5 s window alone, and was refused as if its channel held no valid stretch.
    need = min_samples(rec.fs, ckpt.fs, ckpt.window_length, GAP_MARGIN)
    if rec.n_samples < need:
        raise DataError(
            f"{input_path} is {rec.duration_s:.2f} s long ({rec.n_samples} samples at "
            f"{rec.fs:g} Hz), shorter than one model window ({window_s:g} s) after its first "
            f"{GAP_MARGIN:g} s, which are left out ({START_REASON}): a recording must be at "
            f"least {math.ceil(100 * need / rec.fs) / 100:.2f} s long ({need} samples)"
        )
    if not np.any(np.isfinite(x)):
        raise DataError(f"{input_path}: channel {channel!r} holds no valid samples (all NaN)")
    reference = None
    ref_channel = None
    if opts.reference_abp is not None:
        ref_channel = rec.find("abp", opts.reference_abp)
        if ref_channel == channel:
            # Compared with (or calibrated by) the channel it was reconstructed from.
            raise DataError(
                f"{option('--reference-abp', 'reference_abp')} {opts.reference_abp} names "
                f"channel {ref_channel!r}, the {kind.upper()} the output is reconstructed from; "
                f"name the reference ABP channel (its channels: {', '.join(rec.channels)})"
            )
        # A reference in kPa had "no valid beats anywhere" (12-16 "mmHg").
        reference = _abp_in_mmhg(rec, ref_channel, "reference ABP channel", warnings)

    fmt_out = output_format(out, rec.format)
    side = side_paths(out, fmt_out)
    finals = [*recording_paths(out, fmt_out), side["summary"]]
    if opts.direction == "ppg2abp":
        finals.append(side["table"])
    # Replacing a reconstruction (its summary) with one that has no beats table: the old
    # table would sit beside the new summary as if it were its own. Never an input, though.
    stale_table = (
        side["table"]
        if opts.direction != "ppg2abp"
        and side["summary"].is_file()
        and side["table"].is_file()
        and not any(same_file(side["table"], p) for p in input_files(input_path))
        else None
    )
    if opts.plot is not None:
        finals.append(opts.plot)
    _check_outputs(finals, opts.force, input_path, ckpt)

    # Only the channels used are kept (an ABP beside the PPG was held to the end), and what
    # the input alone warns of is worked out now, before the reconstruction is held beside
    # it; the warnings take their place in the list below.
    channels = rec.channels
    for other in set(channels) - {channel, ref_channel}:
        del rec.signals[other]
    pulse_warnings = _pulse_rate_warnings(x, rec.fs, opts.fs is not None, channel)
    upside_warnings = (
        _upside_down_warnings(x, rec.fs, channel) if opts.direction == "ppg2abp" else []
    )
    result = reconstruct_array(
        x,
        rec.fs,
        _predictor(ckpt, opts.direction),
        ckpt.fs,
        ckpt.window_length,
        direction=opts.direction,
        overlap=opts.overlap,
        delay_s=opts.delay_s,
        start_margin_s=GAP_MARGIN,
    )
    if not result.valid.any():
        reasons = sorted({g.reason for g in result.gaps})
        others = [c for c in channels if c != channel and c != ref_channel]
        hint = (
            f"; it was picked by its name: if one of {', '.join(others)} is the "
            f"{'PPG' if kind == 'ppg' else 'ABP'}, name it with "
            f"{option(f'--{kind}-channel', 'channel in options')}"
            if opts.channel is None and others
            else ""
        )
        raise DataError(
            f"{input_path}: nothing could be reconstructed from channel {channel!r}: no valid "
            f"stretch of at least {window_s:g} s ({'; '.join(reasons) or 'no valid samples'})"
            + hint
        )
    signal = result.signal
    # The input's clock (a CSV time column that starts at 3600 s, or at a Unix time): every
    # time written or read (outputs, beats, summary, --calibration-at) is on it.
    origin = float(rec.meta.get("start_s", 0.0))
    cal_info = None
    if opts.calibration is not None:
        cuff = None if opts.calibration == "reference" else parse_cuff(opts.calibration)
        cal, cal_info = calibrate_recording(
            signal,
            rec.fs,
            origin if opts.calibration_at is None else opts.calibration_at,
            opts.calibration_seconds,
            cuff=cuff,
            reference=reference if cuff is None else None,
            mode=opts.calibration_mode,
            origin_s=origin,
            names=OPTIONS_CALIBRATION_NAMES,
        )
        signal = cal.apply(signal)
        result.signal, result.calibration = signal, cal
        fell_back = offset_only_warning(cal_info)
        if fell_back:
            warnings.append(fell_back)
    beats = detect_beats(signal, rec.fs) if opts.direction == "ppg2abp" else None
    comparison = None
    if reference is not None and opts.direction == "ppg2abp":
        exclude = None
        if cal_info is not None and cal_info["source"] == "reference ABP":
            exclude = tuple(cal_info["segment_s"])
        comparison = compare_with_reference(
            signal, reference, rec.fs, window_s, exclude, origin_s=origin
        )
        comparison["channel"] = ref_channel
        comparison["calibration_segment_excluded"] = exclude is not None
        comparison["lag_s"] = _lag_behind(signal, reference, rec.fs)

    out_name = "ABP" if opts.direction == "ppg2abp" else "PPG"
    summary = _summary(ckpt, rec, channel, result, beats, opts, cal_info, comparison, origin)
    lag = comparison.get("lag_s") if comparison else None
    if lag is not None and lag >= LAG_WARNING_S and not opts.delay_s:
        # A PPG trails the ABP by the pulse transit time; without --ppg-delay the output
        # stays on the PPG's clock, and every comparison with the reference was off by it.
        warnings.append(
            f"the reconstruction trails the reference ABP by about {lag:.2f} s (the PPG's "
            f"delay behind the ABP): give {option_name('delay_s')} {lag:.2f} to put it on the "
            "ABP's clock"
        )
    if beats is not None:
        # First: a wrong rate is also why the pressures below would be implausible.
        warnings += _beat_warnings(summary["beats"], rec.fs, opts.fs is not None)
    if not any("sampling rate" in w for w in warnings):
        warnings += pulse_warnings
    warnings += upside_warnings
    implausible = summary.get("implausible_fraction")
    if implausible:
        # Written as the model gave it (it is the model's answer), but not a pressure trace.
        warnings.append(
            f"{100 * implausible:.3g} % of the reconstructed ABP is outside "
            f"{ABP_RANGE[0]:g}-{ABP_RANGE[1]:g} mmHg, which no pressure trace is: an "
            "undertrained checkpoint, or artefacts in the PPG"
        )
    if warnings:
        # One line of them all (the folder table's cell), and each apart: several on one
        # "warning:" line, "; "-joined, were hard to read.
        summary["warning"] = "; ".join(warnings)
        summary["warnings"] = warnings
    with StagedOutputs() as staged:
        units = "mmHg" if opts.direction == "ppg2abp" else "z"
        written = write_recording(
            staged,
            out,
            fmt_out,
            rec.fs,
            out_name,
            signal,
            units,
            start_s=origin,
            base_time=rec.meta.get("base_time"),
            base_date=rec.meta.get("base_date"),
        )
        summary["outputs"] = {"recording": [str(p) for p in written]}
        if beats is not None:
            staged.write_text(side["table"], beats_csv(beats.shifted(origin)))
            summary["outputs"]["beats"] = str(side["table"])
        if opts.plot is not None:
            from innpar_freia.plots import plot_recording

            plot_recording(
                rec.fs,
                x,
                signal,
                staged.stage(opts.plot),
                direction=opts.direction,
                source_label=f"{channel} ({source_units})",
                reference=reference,
                beats=beats,
                reference_beats=_reference_beats(reference, rec.fs),
                gaps=[(g.start / rec.fs, g.stop / rec.fs) for g in result.gaps],
                # The input panel on the input's clock: a PPG gap is where the PPG has it.
                source_gaps=[
                    (g.start / rec.fs, g.stop / rec.fs)
                    for g in (result.input_gaps if result.input_gaps is not None else result.gaps)
                ],
                source_lag_s=result.delay_s if opts.direction == "ppg2abp" else -result.delay_s,
                calibration_s=(
                    tuple(t - origin for t in cal_info["segment_s"]) if cal_info else None
                ),
                title=_plot_title(input_path, ckpt, opts, cal_info),
                origin_s=origin,
            )
            summary["outputs"]["plot"] = str(opts.plot)
        summary["outputs"]["summary"] = str(side["summary"])
        staged.write_text(side["summary"], json_text(summary))
    if stale_table is not None:  # after the new outputs are all in place
        stale_table.unlink(missing_ok=True)
    return summary


def _pressure_as_ppg(rec: Any, channel: str) -> list[str]:
    """The importers' warning (:func:`pressure_as_ppg`) when the PPG ``channel`` of ``rec``
    is declared in a pressure unit or named as an ABP: ``--ppg-channel ABP`` gave an exit
    0 and only a generic "outside 20-250 mmHg" warning."""
    from innpar_freia.data.recording_importers import pressure_as_ppg

    said = pressure_as_ppg(rec, channel)
    return [said] if said else []


def _abp_in_mmhg(rec: Any, channel: str, what: str, warnings: list[str]) -> np.ndarray:
    """``channel`` of ``rec`` in mmHg (another pressure unit of a WFDB header or CSV units
    row converted, as the importers do; the same array when nothing was converted); what
    was done is added to ``warnings``."""
    from innpar_freia.data.recording_importers import abp_in_mmhg

    values, problem = abp_in_mmhg(rec.signals[channel], rec.units.get(channel, ""))
    if problem:
        warnings.append(f"{what} {channel!r} {problem}")
    return values


def _reference_beats(reference: np.ndarray | None, fs: float) -> Beats | None:
    if reference is None:
        return None
    valid, _ = detect_gaps(reference, fs, "abp")
    return detect_beats(np.where(valid, reference, np.nan), fs)


# A reconstruction this far behind its reference gets a warning (a beat is ~0.5-1 s).
LAG_WARNING_S = 0.1
# A median heart rate outside this range (bpm) over a whole recording is no person's: below
# 40 is a sustained severe bradycardia (the beats table cannot go below 30: longer beats are
# pauses), above 220 faster than any adult's maximum. On the real Challenge 2015 records
# (ICU patients with arrhythmia alarms) the reference ABP's medians are 52-163 bpm. Read at a
# wrong rate, a recording's beats are slowed or sped up by the ratio: record 85 at 250 Hz
# given --fs 50 or 25 gave a median 32 or 38 bpm from a handful of beats, or none.
HR_RANGE = (40.0, 220.0)


def _the_rate(fs: float, fs_given: bool) -> str:
    """The sampling rate as a warning of a wrong one names it, with where it came from: "the
    sampling rate, 50 Hz given with fs (--fs)," (a comma pair, not parentheses, around the
    option's own)."""
    source = f"given with {option_name('fs')}" if fs_given else "from the file"
    return f"the sampling rate, {fs:g} Hz {source},"


def _beat_warnings(beats: dict[str, Any], fs: float, fs_given: bool) -> list[str]:
    """Warnings that the reconstructed beats are no person's: none found, or a median heart
    rate outside :data:`HR_RANGE`. Both are what a wrong sampling rate gives, so they say
    where the rate came from and to check it."""
    rate = _the_rate(fs, fs_given)
    if not beats.get("n"):
        return [
            f"no heart beats were found in the reconstructed ABP: {rate} may be wrong "
            "(check it), or the PPG holds no pulse wave"
        ]
    hr = beats["hr_median"]
    if not HR_RANGE[0] <= hr <= HR_RANGE[1]:
        return [
            f"the median heart rate of the reconstructed ABP is {hr:.0f} bpm, outside "
            f"{HR_RANGE[0]:g}-{HR_RANGE[1]:g} bpm: {rate} may be wrong (check it)"
        ]
    return []


# The input's pulse, from its spectrum: the search band (Hz), the Welch segment (s), and
# the share of the strongest peak's power that a peak at half its frequency must reach for
# the strongest to be a harmonic (the pulse's second harmonic can be the strongest).
PULSE_BAND = (0.5, 30.0)
PULSE_SEGMENT_S = 16.0
SUBHARMONIC_SHARE = 0.2


def pulse_rate_bpm(x: np.ndarray, fs: float) -> float | None:
    """How often ``x`` (a PPG or ABP at ``fs`` Hz, NaN in gaps) repeats, per minute: the
    strongest frequency of its spectrum in :data:`PULSE_BAND`, when nothing at half that
    frequency reaches :data:`SUBHARMONIC_SHARE` of its power (then it is a pulse's
    fundamental, not its harmonic); ``None`` when it cannot be told (under 10 s of valid
    samples, or a harmonic). Beat detection cannot see a pulse this fast: beats are at
    least 0.3 s apart, so a recording read at 4x its rate gave a plausible 115 bpm from
    every other beat of a 232 bpm pulse."""
    from scipy import signal as sps

    from innpar_freia.data.qc import fill_gaps

    x = np.asarray(x, dtype=np.float64)
    if np.count_nonzero(np.isfinite(x)) < 10 * fs:
        return None
    x, _ = fill_gaps(x)  # gaps bridged by lines: no false frequencies
    x -= x.mean()  # in place: a copy of the recording fewer beside what welch holds
    f, power = sps.welch(
        x, fs=fs, nperseg=min(x.size, round(PULSE_SEGMENT_S * fs)), detrend="linear"
    )
    band = (f >= PULSE_BAND[0]) & (f <= min(PULSE_BAND[1], fs / 2))
    if not band.any():
        return None
    f, power = f[band], power[band]
    k = int(np.argmax(power))
    half = np.abs(f - f[k] / 2) <= 0.1 * f[k] / 2
    if half.any() and power[half].max() >= SUBHARMONIC_SHARE * power[k]:
        return None
    return float(60.0 * f[k])


def _pulse_rate_warnings(x: np.ndarray, fs: float, fs_given: bool, channel: str) -> list[str]:
    """A warning when the input's pulse (:func:`pulse_rate_bpm`) repeats faster than
    :data:`HR_RANGE` allows: what a sampling rate given too high gives. On the 34 Challenge
    2015 records it warns of none of the 68 PPG and ABP channels at their rate, and of 22 of
    the 34 PPGs read at 4x their rate (the others' spectra are led by noise there)."""
    bpm = pulse_rate_bpm(x, fs)
    if bpm is None or bpm <= HR_RANGE[1]:
        return []
    return [
        f"channel {channel!r} repeats about {bpm:.0f} times a minute (its spectrum's "
        f"strongest frequency), faster than any heart beats: {_the_rate(fs, fs_given)} may "
        "be too high (check it)"
    ]


# A PPG whose steps are skewed below this falls much faster than it rises: upside down.
# On the Challenge 2015 records the upright PPGs' skewness is -0.85 to 6.1 (-0.85: record
# 4's), so this warns of none of them, and of 24 of the 34 negated.
UPSIDE_DOWN_SKEW = -1.0


def _upside_down_warnings(x: np.ndarray, fs: float, channel: str) -> list[str]:
    """A warning when the PPG falls much faster than it rises (:func:`qc.step_skewness`
    below :data:`UPSIDE_DOWN_SKEW`): raw photodiode counts are upside down (the light
    reaching the sensor falls as blood volume rises), and the network, trained on upright
    PPG, turned them into pressures without a word. Import turns such a PPG over (it has
    the ABP to check against); here there is nothing to check against, so it is said."""
    from innpar_freia.data.qc import band, fill_gaps, step_skewness

    filled, bad = fill_gaps(x)
    if bad.all() or filled.size < 10 * fs:
        return []
    skew = step_skewness(band(filled, fs))
    if skew >= UPSIDE_DOWN_SKEW:
        return []
    return [
        f"channel {channel!r} falls much faster than it rises (skewness of its steps "
        f"{skew:.2f}), as an upside-down PPG does (raw photodiode counts fall as blood "
        "volume rises): if it is, negate it, as the network takes upright PPG"
    ]


def _lag_behind(signal: np.ndarray, reference: np.ndarray, fs: float) -> float | None:
    """Seconds by which ``signal`` trails ``reference`` (the importers' cross-correlation,
    0-2 s); ``None`` when it cannot be told (too short, too few clean windows)."""
    from innpar_freia.data.qc import estimate_lag

    est = estimate_lag(signal, reference, fs)
    return None if est.lag is None else round(est.lag / fs, 3)


def _plot_title(path: Path, ckpt: Checkpoint, opts: ReconstructOptions, cal: Any) -> str:
    what = "ABP from PPG" if opts.direction == "ppg2abp" else "PPG from ABP"
    how = calibration_phrase(cal)
    model = checkpoint_phrase(str(ckpt.path), ckpt.epoch, ckpt.run_config.preset)
    return f"{path.name}: {what}, {how}  [{model}]"


def checkpoint_phrase(path: Any, epoch: Any = None, preset: Any = None) -> str:
    """The checkpoint a reconstruction was made with, in a figure's title ("best.pt epoch
    5, tiny"): a run's best.pt is replaced as it trains, so its name alone does not say
    which model drew the figure."""
    text = Path(str(path)).name if path else "checkpoint"
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        text += f" epoch {epoch}"
    return text + (f", {preset}" if isinstance(preset, str) and preset else "")


def calibration_phrase(cal: dict[str, Any] | None) -> str:
    """How a reconstruction was calibrated (its summary's ``calibration``), in words."""
    if cal is None:
        return "calibration-free"
    # What was matched, not only to what: a reference is matched in its mean level (and
    # pulse pressure), not its SBP/DBP, so the calibrated beats' medians in the segment
    # may differ from the reference's by mmHg, which read as a failed calibration.
    scaled = cal.get("scale", 1.0) != 1.0
    if cal["source"] == "cuff":
        cuff = f"cuff {cal['ref_sbp']:g}/{cal['ref_dbp']:g} mmHg"
        to = cuff if scaled else f"the mid-point of {cuff}"
    else:
        to = "the reference ABP's mean level" + (" and pulse pressure" if scaled else "")
    # A fallback to the offset alone read as offset and scale ("to the mid-point of cuff").
    mode = cal["mode"] + (", the offset alone" if cal.get("offset_only") else "")
    return (
        f"calibrated ({mode}) to {to} at {seconds_text(cal['segment_s'][0])}-"
        f"{seconds_text(cal['segment_s'][1])} s"
    )


def beats_csv(beats: Beats) -> str:
    """The per-beat table as CSV text (times in s, pressures in mmHg, heart rate in bpm)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["beat", *beats.columns])
    for i, row in enumerate(beats.rows()):
        writer.writerow([i + 1, *(f"{v:.3f}" if k < 2 else f"{v:.2f}" for k, v in enumerate(row))])
    return buf.getvalue()


def _summary(
    ckpt: Checkpoint,
    rec: Any,
    channel: str,
    result: Reconstruction,
    beats: Beats | None,
    opts: ReconstructOptions,
    cal_info: dict[str, Any] | None,
    comparison: dict[str, Any] | None,
    origin: float = 0.0,
) -> dict[str, Any]:
    n = result.signal.size
    return {
        "input": str(rec.path),
        "format": rec.format,
        "channel": channel,
        # The channel's samples as read: 'innpar plot recording' checks its --input by it.
        "input_sha256": rec.fingerprint(channel),
        "fs": rec.fs,
        "n_samples": n,
        # The input's clock: every time in the outputs (gaps, calibration, beats) is on it.
        "start_s": origin,
        # The wall clock of the first sample where the input states it (a WFDB header's
        # base time and date, ISO text; the output's first sample is the input's).
        "base_time": rec.meta.get("base_time"),
        "base_date": rec.meta.get("base_date"),
        "duration_s": n / rec.fs,
        "direction": opts.direction,
        "units": result.units,
        "checkpoint": str(ckpt.path),
        "epoch": ckpt.epoch,
        "preset": ckpt.run_config.preset,
        "model_fs": ckpt.fs,
        "window_length": ckpt.window_length,
        "overlap": opts.overlap,
        "delay_s": result.delay_s,
        "windows": result.n_windows,
        "reconstructed_samples": int(result.valid.sum()),
        "reconstructed_s": float(result.valid.sum() / rec.fs),
        "reconstructed_fraction": result.reconstructed_fraction,
        "implausible_fraction": implausible_fraction(result),
        "gaps": [g.to_dict(rec.fs, origin) for g in result.gaps],
        "calibration": cal_info,
        "note": None
        if cal_info is not None or opts.direction != "ppg2abp"
        else (CALIBRATION_FREE_NOTE),
        "beats": beats.summary() if beats is not None else None,
        "reference": comparison,
    }


# ----------------------------------------------------------------------------- window files


def _reconstruct_window_file(
    ckpt: Checkpoint, input_path: Path, out: Path, opts: ReconstructOptions
) -> dict[str, Any]:
    """Every window of a project window file, each reconstructed as a short recording at the
    file's rate and length, into a predictions file (``innpar_freia.predictions``)."""
    from innpar_freia.data.store import read_info, read_signals
    from innpar_freia.predictions import write_predictions
    from innpar_freia.signal import bp_values_batch, zscore

    if opts.calibration is not None:
        raise DataError(
            f"{option_name('calibration')} is for one person's recording; a window file is "
            "scored with the calibrated protocol by 'innpar eval --calibration offset-scale'"
        )
    named = [
        f"{option_name(field, opts.direction)} {value}"
        for field, value in (
            ("channel", opts.channel),
            ("reference_abp", opts.reference_abp),  # was told to drop "--*-channel options"
        )
        if value is not None
    ]
    if named:
        raise DataError(
            f"a window file has fixed ppg/abp datasets (its abp is the reference): drop "
            f"{' and '.join(named)}"
        )
    if opts.delay_s:
        raise DataError(
            f"{option_name('delay_s')} is for recordings: the windows of a window file were "
            "aligned when they were imported"
        )
    if out.suffix.lower() not in WINDOW_FILE_SUFFIXES:
        raise DataError(f"a window file is reconstructed into an HDF5 file (.h5), not {out.name}")
    info = read_info(input_path)
    if opts.fs is not None and abs(opts.fs - info.fs) > 0.01 * info.fs:
        raise DataError(
            f"{input_path} states its sampling rate, {info.fs:g} Hz, which "
            f"{option_name('fs')} {opts.fs:g} contradicts"
        )
    if info.n_windows == 0:
        raise DataError(f"{input_path} holds no windows")
    window_s = ckpt.window_length / ckpt.fs
    if info.window_length / info.fs < window_s - 1e-9:
        raise DataError(
            f"{input_path} has {info.window_length / info.fs:g} s windows, shorter than one "
            f"model window ({window_s:g} s)"
        )
    whole = info.window_length == ckpt.window_length and np.isclose(info.fs, ckpt.fs)
    if whole and opts.overlap != DEFAULT_OVERLAP:
        raise DataError(
            f"{option_name('overlap')} has no effect here: the windows of {input_path} are "
            "model windows "
            f"({info.window_length} samples at {info.fs:g} Hz), each reconstructed whole"
        )
    side = side_paths(out, "hdf5")
    finals = [out, side["summary"], side["table"]] + ([opts.plot] if opts.plot else [])
    _check_outputs(finals, opts.force, input_path, ckpt)
    ppg, abp = read_signals(input_path)
    ppg, abp = ppg.astype(np.float64), abp.astype(np.float64)
    source = ppg if opts.direction == "ppg2abp" else abp
    predict = _predictor(ckpt, opts.direction)
    if whole:
        pred = predict(source)  # the file's windows are model windows: one batch
        n_model_windows = len(source)
    else:
        pred = np.empty_like(source)
        n_model_windows = 0
        for i, x in enumerate(source):
            r = reconstruct_array(
                x,
                info.fs,
                predict,
                ckpt.fs,
                ckpt.window_length,
                direction=opts.direction,
                overlap=opts.overlap,
            )
            pred[i], n_model_windows = r.signal, n_model_windows + r.n_windows
    reference = abp if opts.direction == "ppg2abp" else zscore(ppg)
    # Every window is reconstructed, the checkpoint's training windows too (a user may want
    # them), but the errors beside them would not measure generalisation: say so.
    from innpar_freia.evaluate import trained_windows

    try:
        trained = trained_windows(ckpt, info)
        n_trained = 0 if trained is None else int(trained.size)
        warning = (
            f"{n_trained} of the {info.n_windows} windows were in the training split of "
            "this checkpoint's run: their errors do not measure generalisation ('innpar "
            "eval' scores the test split)"
            if n_trained
            else None
        )
    except DataError as exc:
        n_trained, warning = None, str(exc)
    summary: dict[str, Any] = {
        "input": str(input_path),
        "format": "hdf5",
        "fs": info.fs,
        "window_length": info.window_length,
        "n_windows": info.n_windows,
        "direction": opts.direction,
        "units": "mmHg" if opts.direction == "ppg2abp" else "z-scored PPG",
        "checkpoint": str(ckpt.path),
        "preset": ckpt.run_config.preset,
        "model_fs": ckpt.fs,
        "model_windows": n_model_windows,
        "reconstructed_fraction": float(np.isfinite(pred).mean()),
        "note": CALIBRATION_FREE_NOTE if opts.direction == "ppg2abp" else None,
        "training_windows": n_trained,
        "warning": warning,
    }
    with StagedOutputs() as staged:
        write_predictions(
            staged.stage(out),
            fs=info.fs,
            window_id=info.window_ids,
            subject=info.subjects,
            start=info.start,
            index=np.arange(info.n_windows),
            prediction=pred,
            reference=reference,
            direction=opts.direction,
            attrs={"checkpoint": str(ckpt.path), "data": str(input_path), "split": "all"},
        )
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if opts.direction == "ppg2abp":
            # A window at another rate is a short recording: a stretch of it left out as a
            # gap (a flat second) leaves NaN, and no blood pressure of the whole window.
            whole_windows = np.isfinite(pred).all(axis=1)
            bp_p = np.full((len(pred), 3), np.nan)
            if whole_windows.any():
                bp_p[whole_windows] = bp_values_batch(pred[whole_windows], info.fs)
            bp_r = bp_values_batch(abp, info.fs)
            writer.writerow(
                [
                    "window_id",
                    "subject",
                    "sbp_mmHg",
                    "dbp_mmHg",
                    "map_mmHg",
                    "ref_sbp_mmHg",
                    "ref_dbp_mmHg",
                    "ref_map_mmHg",
                ]
            )
            for w, s, p, r in zip(info.window_ids, info.subjects, bp_p, bp_r, strict=True):
                writer.writerow([w, s, *(f"{v:.2f}" if np.isfinite(v) else "" for v in (*p, *r))])
        else:
            err = np.abs(pred - reference).mean(axis=1)
            writer.writerow(["window_id", "subject", "mae_z"])
            for w, s, e in zip(info.window_ids, info.subjects, err, strict=True):
                writer.writerow([w, s, f"{e:.4f}"])
        staged.write_text(side["table"], buf.getvalue())
        if opts.plot is not None:
            from innpar_freia.plots import plot_reconstructions

            abp_units = opts.direction == "ppg2abp"
            # It had no title: the model, and that these are the file's first windows.
            model = checkpoint_phrase(str(ckpt.path), ckpt.epoch, ckpt.run_config.preset)
            what = "ABP from PPG, calibration-free" if abp_units else "PPG from ABP"
            n = min(4, len(pred))  # plot_reconstructions' max_windows
            plot_reconstructions(
                reference,
                pred,
                info.fs,
                staged.stage(opts.plot),
                titles=[f"{s} ({w})" for s, w in zip(info.subjects, info.window_ids, strict=True)],
                ylabel="ABP (mmHg)" if abp_units else "PPG (z-score)",
                what="ABP" if abp_units else "PPG",
                units="mmHg" if abp_units else "z",
                markers=abp_units,
                max_windows=n,
                title=f"{input_path.name}: {what}, first {n} windows in file order  [{model}]",
            )
        summary["outputs"] = {
            "predictions": str(out),
            "windows": str(side["table"]),
            "summary": str(side["summary"]),
            **({"plot": str(opts.plot)} if opts.plot else {}),
        }
        staged.write_text(side["summary"], json_text(summary))
    return summary
