"""Read whole raw recordings (WFDB, CSV, NPY, NPZ) into named channels at a known rate.

This is the layer below the importers and ``innpar reconstruct``: it only reads files and
finds channels; windowing, alignment and quality control happen above it. Invalid samples
are NaN (WFDB marks them so); nothing is dropped or interpolated here.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import itertools
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.errors import DataError, UnknownRateError, option
from innpar_freia.outputs import START_COMMENT
from innpar_freia.reconstruct_limits import seconds_text

# Channel names as monitors and databases (MIMIC, PhysioNet, VitalDB) spell them,
# compared case-insensitively after stripping spaces, dots, underscores and dashes, in
# order of preference: "spo2" and "pulse" come last, as they are as often the saturation
# and the pulse rate (numbers once a second) as the waveform.
PPG_NAMES = (
    "pleth",
    "ppg",
    "pleth40",
    "plethysmogram",
    "spo2wave",
    "plethwave",
    "pg",
    "ir",
    "red",
    "spo2",
    "pulse",
)
ABP_NAMES = (
    "abp",
    "art",
    "arterial",
    "aobp",
    "ibp",
    "ibp1",
    "artbp",
    "fap",
    "radial",
    "rabp",
    "bp",
    "pressure",
    "iabp1",
)
RECORDING_FORMATS = ("wfdb", "csv", "npz", "npy")
MIN_FS, MAX_FS = 1.0, 100_000.0
# A rate given on the command line may differ this much (relative) from the rate a file
# states (an NPZ ``fs`` key) or implies (a CSV time column); beyond it, one of them is wrong.
FS_AGREEMENT = 0.01
# A CSV time column implying a rate below this (Hz) is read as milliseconds given for
# seconds (a common export) when a thousand times the rate is plausible: no pulse signal
# is sampled this slowly.
MS_HINT_BELOW_HZ = 10.0
# A step of a CSV time column may be off a whole number of sample periods by this fraction
# of a period. Float jitter is far smaller; timestamps rounded to the millisecond are up to
# ~0.2 periods off at, e.g., 128 or 300 Hz. A step of 1.5 periods is not missing samples.
TIME_STEP_TOLERANCE = 0.25
# Missing rows are filled with NaN, but a time jump that would grow a recording beyond this
# many times its rows is a broken time column rather than a gap.
MAX_GAP_FILL = 100


def channel_key(name: str) -> str:
    """A channel name as channels are matched: without case, spaces or punctuation."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass
class RawRecording:
    """One recording: 1-D float64 channels of equal length at ``fs`` Hz (NaN = invalid)."""

    path: Path
    format: str
    fs: float
    signals: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(next(iter(self.signals.values()))) if self.signals else 0

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    @property
    def channels(self) -> list[str]:
        return list(self.signals)

    def fingerprint(self, channel: str) -> str:
        """sha256 of a channel's samples as read (float64): what ``innpar reconstruct``
        stores in its summary, so that a reconstruction can be matched to its input when
        recordings share a length and a rate (every Challenge 2015 record: 300 s)."""
        x = np.ascontiguousarray(self.signals[channel], dtype=np.float64)
        return hashlib.sha256(x).hexdigest()  # the array's buffer: no bytes copy of it

    def find(
        self,
        kind: str,
        override: str | None = None,
        required: bool = True,
        flag: str | None = None,
    ) -> str | None:
        """Name of the ``kind`` ("ppg" or "abp") channel: ``override`` if given (must exist),
        else the first channel whose name is a known spelling. ``flag``: the option that
        names it, for the error message (default ``--ppg-channel``/``--abp-channel``)."""
        where = str(self.path)
        ignored = self.meta.get("ignored_arrays")
        if ignored:  # so that "no PPG channel" does not hide an array that is not a channel
            where += f" (arrays that are not 1-D real channels: {', '.join(ignored)})"
        return find_channel(self.channels, kind, override, required, where=where, flag=flag)


def find_channel(
    channels: list[str],
    kind: str,
    override: str | None = None,
    required: bool = True,
    where: str = "recording",
    flag: str | None = None,
) -> str | None:
    """Pick a PPG/ABP channel by name; errors name the file and the channels it has."""
    if kind not in ("ppg", "abp"):
        raise ValueError(f"kind must be 'ppg' or 'abp', not {kind!r}")
    if override is not None:
        if override in channels:  # exactly as named, before another spelling of it
            return override
        for name in channels:
            if channel_key(name) == channel_key(override):
                return name
        raise DataError(
            f"{where} has no channel {override!r}; "
            f"its channels are: {', '.join(channels) or 'none'}"
        )
    known = PPG_NAMES if kind == "ppg" else ABP_NAMES
    by_key: dict[str, str] = {}
    for n in channels:  # the first of two spellings of one name, as the docstring says
        by_key.setdefault(channel_key(n), n)
    for candidate in known:
        if candidate in by_key:
            return by_key[candidate]
    if required:
        label = "PPG (e.g. PLETH, PPG)" if kind == "ppg" else "ABP (e.g. ABP, ART)"
        flag = flag or ("--ppg-channel" if kind == "ppg" else "--abp-channel")
        raise DataError(
            f"{where} has no {label} channel; its channels are: {', '.join(channels) or 'none'}. "
            f"Name it with {flag}"
        )
    return None


def give_rate(fs_option: str | None) -> str:
    """How a message asks for the rate: a command's option with its value (``--fs HZ``), or
    an option named for the Python API as well as it is (``fs (--fs)``: reconstruct_file's,
    whose callers have no --fs to give). None: the readers' own ``fs``, as the caller
    gives it (a Python caller of read_csv has no --fs)."""
    if fs_option is None:
        return option("--fs HZ", "fs=HZ")
    return f"{fs_option} HZ" if fs_option.startswith("--") else fs_option


def refuse_no_recording(
    path: Path,
    exc: UnknownRateError,
    kinds: dict[str, str | None],
    fs_option: str = "--fs",
    flags: dict[str, str] | None = None,
) -> None:
    """Before ``exc`` (the file states no rate) is raised: a file that lacks a channel of
    ``kinds`` (``{"ppg": override, ...}``) is, first, no recording (the Challenge 2015
    folder's ``records.csv``, a table of records), and is refused as such; it was asked for
    its rate, which would only have led to "no PPG channel" next. A channel named by an
    override and not there is refused as reading the file at a rate would refuse it.
    ``flags``: what names each kind's channel (an importer's ``ppg_channel``), where not
    the option ``fs_option``'s spelling implies."""
    channels = exc.channels
    if channels is None:
        return
    lacking = []
    for kind, override in kinds.items():
        if override is not None:
            find_channel(channels, kind, override, where=str(path))
        elif find_channel(channels, kind, required=False) is None:
            lacking.append(kind)
    if lacking:
        what = " or ".join(
            "PPG (e.g. PLETH, PPG)" if kind == "ppg" else "ABP (e.g. ABP, ART)" for kind in lacking
        )
        # Named as the rate's option is: reconstruct_file's "channel (--ppg-channel)".
        python = not fs_option.startswith("--")
        named = ", ".join(
            f"its {kind.upper()} column with "
            + (
                flags[kind]
                if flags
                else f"channel (--{kind}-channel)"
                if python
                else f"--{kind}-channel"
            )
            for kind in lacking
        )
        raise DataError(
            f"{path} is not a recording: it has no {what} channel and states no sampling "
            f"rate; its columns are: {', '.join(channels) or 'none'}. If it is one, name "
            f"{named}{',' if len(lacking) > 1 else ''} and give its rate with "
            + give_rate(fs_option)
        )


def check_fs(
    fs: Any, where: str, fs_option: str | None = None, channels: list[str] | None = None
) -> float:
    """A sampling rate that is a number in a plausible range, or a clear error (which
    names ``fs_option``, what gives the rate (:func:`give_rate`); an unknown rate's
    error carries the file's ``channels``, where given)."""
    if fs is None:
        raise UnknownRateError(
            f"{where}: the sampling rate is unknown; give it with {give_rate(fs_option)}",
            channels=channels,
        )
    try:
        value = float(fs)
    except (TypeError, ValueError):
        raise DataError(f"{where}: sampling rate {fs!r} is not a number") from None
    if not np.isfinite(value) or not MIN_FS <= value <= MAX_FS:
        raise DataError(f"{where}: sampling rate {value:g} Hz is outside {MIN_FS:g}..{MAX_FS:g} Hz")
    return value


def files_under(folder: Path, suffix: str) -> list[Path]:
    """Files under ``folder`` whose name ends in ``suffix`` in any case (``.csv``, ``.CSV``),
    searched recursively through symlinked folders too (each folder once, so a link loop
    ends), sorted. ``Path.rglob`` on Python 3.11 follows no folder link and matches case:
    a folder import skipped records linked in from elsewhere, or named ``B.CSV``, without
    a word. A folder that cannot be read is an error that names it: ``os.walk`` skips it
    silently, and its records were left out of an import that said nothing of them."""
    found, seen = [], set()
    for root, dirs, names in os.walk(folder, followlinks=True, onerror=_unreadable_folder):
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        here = Path(root)
        found += [here / n for n in names if n.lower().endswith(suffix) and (here / n).is_file()]
    return sorted(found)


def cannot_read(path: str | Path, exc: OSError) -> DataError:
    """The error for a file that cannot be opened (no permission, a folder by its name):
    "cannot read FILE: REASON", so that it is rejected as unreadable where a record's
    problems are (``--skip-bad-records``), and not taken for a corrupt file."""
    return DataError(f"cannot read {path}: {exc.strerror or exc}")


def not_utf8_text(path: str | Path, what: str = "") -> DataError:
    """The error for a text file (a CSV, ``what`` names it: "cuff table") that is not UTF-8:
    a spreadsheet's plain export (Latin-1, Windows-1252) or Excel's "Unicode Text" (UTF-16).
    It was the decoder's "'utf-8' codec can't decode byte 0xb5 in position 11", whose
    position is counted from where the decoder's last chunk began, not from the file's."""
    name = f"{what} {path}" if what else f"{path}"
    advice = "save it as UTF-8 (a spreadsheet's 'CSV UTF-8')"
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return DataError(
                f"{name} is not UTF-8 text: it seems to be UTF-16 (it starts with UTF-16's "
                f"byte-order mark, as Excel's 'Unicode Text' does); {advice}"
            )
        if _utf16_without_mark(head):
            return DataError(
                f"{name} is not UTF-8 text: it seems to be UTF-16 (every other byte of its "
                f"start is 0); {advice}"
            )
        fh.seek(0)
        # Line by line: no UTF-8 character holds the byte of a line end.
        for line, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = raw[exc.start]
                try:
                    seen = f" ({bytes([byte]).decode('cp1252')!r} in Latin-1 or Windows-1252)"
                except UnicodeDecodeError:
                    seen = ""
                return DataError(
                    f"{name} is not UTF-8 text: line {line} holds byte 0x{byte:02x}{seen}, "
                    f"which UTF-8 does not allow there; {advice}"
                )
    return DataError(f"{name} is not UTF-8 text; {advice}")


def _utf16_without_mark(head: bytes) -> bool:
    """Whether a file's first bytes are UTF-16 text of ASCII characters without a
    byte-order mark: a 0 every other byte (UTF-8 reads them as NUL characters, and the
    header 't\\x00i\\x00m\\x00e' was taken for a line above the table)."""
    head = head[: len(head) // 2 * 2]
    return len(head) >= 4 and any(
        not any(half) and all(other)
        for half, other in ((head[1::2], head[::2]), (head[::2], head[1::2]))
    )


def check_readable(path: str | Path) -> None:
    """Refuse a file that cannot be opened for reading (see :func:`cannot_read`)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise cannot_read(path, exc) from None


def _unreadable_folder(exc: OSError) -> None:
    raise DataError(
        f"cannot read folder {exc.filename}: {exc.strerror or exc} (the files in it would be "
        "left out); give it read permission, or move it out of the folder"
    )


def wfdb_record_base(path: str | Path) -> Path:
    """The record path without extension, from ``rec``, ``rec.hea``, ``rec.dat`` or ``rec.mat``."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix.lower() in (".hea", ".dat", ".mat") else path
    if not base.with_suffix(".hea").is_file():
        raise DataError(f"WFDB header not found: {base.with_suffix('.hea')}")
    return base


# Bytes per sample of WFDB's fixed-size storage formats (212/310/311 pack samples).
_WFDB_BYTES = {
    "8": 1.0,
    "16": 2.0,
    "61": 2.0,
    "24": 3.0,
    "32": 4.0,
    "80": 1.0,
    "160": 2.0,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
}
# The formats wfdb reads: the fixed-size ones and FLAC (508/516/524). Of another (999, or
# 0, a signal not stored) rdrecord said only "KeyError: '999'".
_WFDB_FORMATS = (*_WFDB_BYTES, "508", "516", "524")


# Bytes a signal file may hold beyond the samples its header describes: a MATLAB .mat
# (wfdb2mat's) pads its data to 8 bytes, and a packed format's last byte may be half used.
_WFDB_SLACK_BYTES = 8


def _record_line(header: Path) -> list[str]:
    # Line by line, the comments undecoded: a comment in Latin-1 ("# Patient \xe2ge 63",
    # which wfdb reads) made the whole header "not a text WFDB header". A header saved
    # with a byte-order mark (Windows editors) was read with the mark in the record name
    # ('\ufeff85', "rename the record"); wfdb itself reads it.
    try:
        with header.open("rb") as fh:
            for raw in fh:
                text = raw.removeprefix(codecs.BOM_UTF8).strip()
                if not text or text.startswith(b"#"):
                    continue
                try:
                    return text.decode("utf-8").split()
                except UnicodeDecodeError:
                    raise DataError(f"{header} is not a text WFDB header (corrupt?)") from None
    except OSError as exc:
        raise cannot_read(header, exc) from None
    raise DataError(f"WFDB header {header} is empty")


# The record line's fields after the name (WFDB's header(5)):
# N_SIG [FS[/COUNTER_FREQ[(BASE_COUNTER)]] [SIG_LEN ...]].
# Decimal only, as wfdb reads them: it takes "1e3" for 1 Hz, and "250." is 250 Hz.
_NUMBER = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
_FS_FIELD = re.compile(rf"{_NUMBER}(?:/{_NUMBER}(?:\(-?{_NUMBER}\))?)?")


def _check_record_line(header: Path, fields: list[str]) -> None:
    """Refuse a record line whose signal count, sampling rate or length is not a number:
    ``wfdb`` reads ``rec 4 abc 75000`` as 250 Hz with no length and returns garbage."""
    checks = (
        ("number of signals", r"[0-9]+", "a whole number, 0 or more"),
        ("sampling rate", _FS_FIELD.pattern, "a positive number"),
        ("number of samples", r"[0-9]+", "a whole number, 0 or more"),
    )
    if len(fields) < 2:
        raise DataError(f"{header}: the record line {' '.join(fields)!r} names no signals")
    name = fields[0].split("/", 1)[0]
    if not re.fullmatch(r"[-\w]+", name, flags=re.ASCII):
        # wfdb drops other characters: "rëc" becomes "rc", and its signal file "rc.mat"
        # was then reported missing beside an "rëc.mat" that is there.
        raise DataError(
            f"{header}: the record name {name!r} has characters that WFDB names may not have "
            "(only ASCII letters, digits, '-' and '_'); rename the record and its files"
        )
    for value, (what, pattern, must) in zip(fields[1:], checks, strict=False):
        # Signs aside (of the value, or of a rate's counter frequency: "250/-1").
        number = value.removeprefix("-").replace("/-", "/", 1)
        if not re.fullmatch(pattern, number):
            try:
                float(number)
            except ValueError:
                kind = "not a number"
            else:  # "1e9", "inf": a number, not written as WFDB writes one
                kind = "not a number as WFDB headers write them (digits, and one point)"
            raise DataError(
                f"{header}: the record line's {what} is {value!r}, {kind}: the header is damaged"
            )
        # A negative value was "not a number", which it is; a rate of 0 (of its frequency,
        # before any "/") was refused later as "outside 1..100000 Hz".
        parts = re.split("[/(]", number)[:2]  # a rate's frequency and counter frequency
        if number != value or (what == "sampling rate" and not all(map(float, parts))):
            raise DataError(
                f"{header}: the record line's {what} is {value!r}; it must be {must}: the "
                "header is damaged"
            )


def wfdb_header_states_fs(base: Path) -> bool:
    """Whether the header's record line gives the sampling rate (``wfdb`` silently
    assumes 250 Hz when it does not)."""
    return len(_record_line(base.with_suffix(".hea"))) >= 3


def check_wfdb_files(base: Path) -> list[Path]:
    """The header and signal files of a record; errors when one is missing or shorter
    than the header says (a truncated download), naming the file."""
    import wfdb

    header = base.with_suffix(".hea")
    fields = _record_line(header)
    _check_record_line(header, fields)
    try:
        hdr = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises many types for malformed headers
        raise DataError(
            f"{header} is not a valid WFDB header: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(hdr, wfdb.MultiRecord) and len(hdr.sig_name or []) != hdr.n_sig:
        # wfdb reads such a header, then fails in rdrecord with an IndexError.
        raise DataError(
            f"{header} declares {hdr.n_sig} signal(s) on its record line but describes "
            f"{len(hdr.sig_name or [])}: the header is damaged"
        )
    unknown = [
        (name, fmt)
        for name, fmt in zip(hdr.sig_name or [], getattr(hdr, "fmt", None) or [], strict=False)
        if fmt not in _WFDB_FORMATS
    ]
    if unknown:
        name, fmt = unknown[0]
        raise DataError(
            f"{header}: signal {name!r} is stored in format {fmt!r}, not one of the WFDB "
            f"signal formats innpar reads ({', '.join(sorted(_WFDB_FORMATS, key=int))}): the "
            "header is damaged, or the record must be converted to one of them (e.g. with "
            "WFDB's xform)"
        )
    if not isinstance(hdr, wfdb.MultiRecord) and hdr.sig_len == 0:
        # wfdb's own words: "sampto must be greater than sampfrom".
        raise DataError(f"WFDB record {base} holds no samples: {header} gives a length of 0")
    files = [header]
    if isinstance(hdr, wfdb.MultiRecord):
        seg_lens = hdr.seg_len or [None] * len(hdr.seg_name or [])
        total = sum(n or 0 for n in seg_lens)
        if hdr.sig_len and hdr.seg_len and hdr.sig_len != total:
            # Shorter, wfdb cut the record there without a word; longer, it failed with
            # "ValueError: True is not in list".
            raise DataError(
                f"{header} gives the record {hdr.sig_len} samples, but its segments' lengths "
                f"add up to {total}: the header is damaged"
            )
        for seg, seg_len in zip(hdr.seg_name or [], seg_lens, strict=False):
            if seg and seg != "~":
                segment = base.parent / seg
                if not segment.with_suffix(".hea").is_file():
                    raise DataError(
                        f"segment header {segment.with_suffix('.hea')} named in {header} is missing"
                    )
                if seg_len == 0:
                    # A variable layout's layout segment (MIMIC): the channels, no samples
                    # and no signal file ("~"); checked as a record, it "held no samples".
                    files.append(segment.with_suffix(".hea"))
                else:
                    files.extend(check_wfdb_files(segment))
                    own = wfdb.rdheader(str(segment)).sig_len
                    if seg_len is not None and own != seg_len:
                        # wfdb places each segment by the master's length: the rest of a
                        # longer segment was dropped, and the record spliced across the cut.
                        raise DataError(
                            f"{header} gives segment {seg} {seg_len} samples, but "
                            f"{segment.with_suffix('.hea')} gives it {own}: the headers "
                            "contradict each other"
                        )
        return files
    per_file: dict[str, list[float]] = {}
    offsets = hdr.byte_offset or [None] * len(hdr.file_name or [])
    for name, fmt, offset in zip(hdr.file_name or [], hdr.fmt or [], offsets, strict=False):
        entry = per_file.setdefault(name, [float(offset or 0), 0.0])
        # Compressed (FLAC) formats have no fixed size: -1 marks the file as unchecked.
        known = fmt in _WFDB_BYTES and entry[1] >= 0
        entry[1] = entry[1] + _WFDB_BYTES[fmt] if known else -1.0
    for name, (offset, bytes_per_frame) in per_file.items():
        path = base.parent / name
        if not path.is_file():
            state = "is not a file" if path.exists() else "is missing"
            raise DataError(f"signal file {path} named in {header} {state}")
        files.append(path)
        if hdr.sig_len and bytes_per_frame > 0:
            expected = int(offset + np.ceil(hdr.sig_len * bytes_per_frame))
            actual = path.stat().st_size
            if actual < expected:
                raise DataError(
                    f"signal file {path} is truncated: {actual} bytes, but {header} describes "
                    f"{hdr.sig_len} samples ({expected} bytes)"
                )
            if actual - expected >= _WFDB_SLACK_BYTES:
                # A header declaring fewer samples read part of the record without a word;
                # one declaring fewer signals read the samples interleaved wrongly (garbage).
                n_sig = sum(1 for f in hdr.file_name if f == name)
                room = (actual - offset) / bytes_per_frame
                raise DataError(
                    f"signal file {path} holds more than {header} declares: {actual} bytes, "
                    f"room for {room:.0f} samples of its {n_sig} signal(s), but the header "
                    f"describes {hdr.sig_len} samples ({expected} bytes); the header gives "
                    "too few samples or too few signals"
                )
    return files


def read_wfdb(
    path: str | Path, fs: float | None = None, fs_option: str | None = None
) -> RawRecording:
    """A WFDB record (header + signal files) in physical units, read with ``wfdb``.

    ``fs`` (Hz) is needed only when the header does not state the rate; when both do,
    they must agree.
    """
    base = wfdb_record_base(path)
    check_wfdb_files(base)
    try:
        rec = _rdrecord(base)
    except DataError:
        raise
    except Exception as exc:  # wfdb raises many types for truncated/corrupt files
        raise DataError(f"cannot read WFDB record {base}: {type(exc).__name__}: {exc}") from None
    if rec.p_signal is None or rec.sig_name is None:
        raise DataError(f"WFDB record {base} holds no signals")
    if not wfdb_header_states_fs(base):
        fs = check_fs(fs, f"{base.with_suffix('.hea')} does not state the sampling rate", fs_option)
    elif fs is not None and (
        # check_fs first: NaN would pass the comparison (every comparison with it is False)
        abs(check_fs(fs, str(base), fs_option) - float(rec.fs)) > FS_AGREEMENT * float(rec.fs)
    ):
        raise DataError(f"{base}: sampling rate {fs:g} Hz contradicts the header's {rec.fs:g} Hz")
    else:
        fs = check_fs(rec.fs, str(base), fs_option)
    # Two signals of one name (two ABP lines, a header edited by hand): the second was
    # dropped from the dict, and picked over the first. The first keeps the name; the
    # others are "ABP (2)", ... , there to be named with --abp-channel.
    names = _unique_names(rec.sig_name)
    signals = {name: rec.p_signal[:, i].astype(np.float64) for i, name in enumerate(names)}
    units = dict(zip(names, rec.units or [""] * len(names), strict=False))
    comments = list(rec.comments or [])
    meta: dict[str, Any] = {"record_name": rec.record_name, "comments": comments}
    start = _start_comment(comments)
    if start is not None:  # a record innpar reconstruct wrote keeps its input's clock
        meta["start_s"] = start
    # The header's wall clock at the first sample (a time of day, and a date), as ISO text:
    # a reconstruction writes it back into its WFDB output and its summary.
    for key in ("base_time", "base_date"):
        value = getattr(rec, key, None)
        if value is not None:
            meta[key] = value.isoformat()
    return RawRecording(base, "wfdb", fs, signals, units, meta)


def _rdrecord(base: Path) -> Any:
    """``wfdb.rdrecord`` of ``base``, with the header's checksums checked (where
    :func:`_has_checksums`) and a fixed-layout multi-segment record's gaps (segments named
    "~") read as NaN, as wfdb reads a variable layout's: wfdb joins a fixed layout's
    segments without a look for gaps, and failed with an AttributeError."""
    import wfdb

    hdr = wfdb.rdheader(str(base))
    if isinstance(hdr, wfdb.MultiRecord):
        _check_segment_checksums(base, hdr)
    if _has_checksums(hdr):
        # Read as stored once, checked, then converted as rdrecord converts (physical=True).
        rec = wfdb.rdrecord(str(base), physical=False)
        _check_checksums(base, hdr, rec.d_signal)
        rec.dac(expanded=False, return_res=64, inplace=True)
        return rec
    if not (isinstance(hdr, wfdb.MultiRecord) and hdr.layout == "fixed" and "~" in hdr.seg_name):
        return wfdb.rdrecord(str(base))
    multi = wfdb.rdrecord(str(base), m2s=False)
    present = [seg for seg in multi.segments if seg is not None]
    if not present:
        raise DataError(f"WFDB record {base} holds no signals: every segment is a gap ('~')")
    rec = present[0]
    signal = np.full((int(sum(multi.seg_len)), rec.n_sig), np.nan)
    start = 0
    for name, seg, length in zip(multi.seg_name, multi.segments, multi.seg_len, strict=True):
        if seg is not None:
            if list(seg.sig_name) != list(rec.sig_name):
                raise DataError(
                    f"WFDB record {base}: segment {name} has signals {', '.join(seg.sig_name)}, "
                    f"segment {rec.record_name} {', '.join(rec.sig_name)}; a fixed-layout "
                    "record's segments must have the same signals"
                )
            signal[start : start + length] = seg.p_signal
        start += length
    rec.p_signal, rec.record_name, rec.comments = signal, multi.record_name, multi.comments
    rec.base_time, rec.base_date = multi.base_time, multi.base_date  # not the segment's
    rec.fs = multi.fs
    return rec


def _has_checksums(hdr: Any) -> bool:
    """Whether a single-segment header gives checksums that the samples wfdb returns can be
    checked against: one sample per frame (several are averaged) and no skew (wfdb shifts
    skewed signals and pads their ends)."""
    return (
        not hasattr(hdr, "seg_name")
        and bool(hdr.sig_len)
        and any(c for c in hdr.checksum or [])
        and all(n in (None, 1) for n in hdr.samps_per_frame or [])
        and not any(hdr.skew or [])
    )


def _check_segment_checksums(base: Path, hdr: Any) -> None:
    """:func:`_check_checksums` of each segment of the multi-segment record ``base`` that has
    samples and checksums (where :func:`_has_checksums`): only single-segment records'
    were checked, and a damaged segment read as signal."""
    import wfdb

    for name, length in zip(hdr.seg_name or [], hdr.seg_len or [], strict=False):
        if name == "~" or not length:  # a gap, or a variable layout's layout segment
            continue
        segment = base.parent / name
        seg_hdr = wfdb.rdheader(str(segment))
        if _has_checksums(seg_hdr):
            digital = wfdb.rdrecord(str(segment), physical=False).d_signal
            _check_checksums(segment, seg_hdr, digital, f"WFDB record {base}, segment {name}")


def _check_checksums(base: Path, hdr: Any, digital: np.ndarray, record: str = "") -> None:
    """Refuse samples whose sum disagrees with the header's checksum (WFDB's: the 16-bit sum
    of a signal's samples): a damaged signal file, or a header of another recording. A
    checksum of 0 is not checked: headers written by hand put 0 there to reach the fields
    after it (the block size, the description). ``record``: how the error names the record
    (``WFDB record <base>`` unless given)."""
    sums = np.asarray(digital, dtype=np.int64).sum(axis=0)
    for name, stated, total in zip(hdr.sig_name, hdr.checksum, sums, strict=False):
        if stated and (int(total) - int(stated)) % 65536 != 0:
            # In the header's own form: signed (WFDB's), or 0-65535 as some writers put it;
            # the message had set an unsigned 43493 against a signed -5659.
            got = int(total) % 65536
            if int(stated) <= 32767:
                got = (got + 32768) % 65536 - 32768
            raise DataError(
                f"{record or f'WFDB record {base}'}: the samples of signal {name!r} do not match "
                f"the checksum in {base.with_suffix('.hea')} ({stated}; the samples give {got}): "
                "the signal file or the header is damaged"
            )


def _unique_names(names: list[str]) -> list[str]:
    """``names`` with each repeat of a name numbered by its occurrence: "ABP (2)"."""
    seen: dict[str, int] = {}
    unique: list[str] = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        candidate, k = name, seen[name]
        while candidate in unique or (k > 1 and candidate in names):
            candidate = f"{name} ({k})"  # past a channel that is itself named "ABP (2)"
            k += 1
        unique.append(candidate)
    return unique


def _start_comment(comments: list[str]) -> float | None:
    """The clock ``innpar_freia.outputs.write_recording`` leaves in a WFDB header comment."""
    for line in comments:
        text = line.strip()
        if text.startswith(START_COMMENT):
            try:
                value = float(text[len(START_COMMENT) :])
            except ValueError:
                return None
            return value if np.isfinite(value) else None
    return None


def read_csv(
    path: str | Path,
    fs: float | None = None,
    time_column: str | None = None,
    fs_option: str | None = None,
) -> RawRecording:
    """A CSV with a header row of channel names and one numeric row per sample.

    Empty cells and non-numeric values become NaN; text that is not a mark of a missing
    value (``n/a``, ``-``, ...) in a column of numbers is counted in ``meta["warnings"]``
    (messages for the user, naming the first such cell). A time column in seconds (``time``,
    ``t``, ``time_s``, ``timestamp``, ``Elapsed time``, or ``time_column``; in milliseconds,
    microseconds or nanoseconds when its name says so: ``time_ms``, ``Time [ms]``,
    ``timestamp_us``, ``time_ns``) gives the rate;
    ``fs``, when also given, must agree with it within 1 % (the column's rate is used). Rows
    missing from the time grid (a step of several sample periods) become NaN samples, i.e. a
    gap; times that are not on a regular grid are an error; the first time is
    ``meta["start_s"]``. Without a time column, ``fs`` is needed. Of two time columns
    (``time`` and ``time_ms``) the first, or ``time_column``, is the clock; the other is no
    channel where it says the same times in its unit, and an error where it does not.

    PhysioNet's CSV (``rdsamp -c -p -v``, the PhysioBank ATM's ``samples.csv``) is read as
    it is: names and cells in single quotes, and a row of units under the header, which
    gives the channels' units (an ABP in kPa is converted by its users) and the time
    column's: seconds, ms, us, ns, or elapsed ``hh:mm:ss.mmm``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}")
    table = _numeric_table(path) or _careful_table(path)
    header, units, data, first = table.header, table.units, table.data, table.first
    text_cells, numeric = table.text_cells, table.numeric
    signals = {name: data[:, j] for j, name in enumerate(header)}
    # A column named only "T" or "t" may as well be a temperature: with the rate given, one
    # that does not increase is a channel (it was forced as time, and the import refused
    # with advice to remove the column). Other time names, and --time-column, are time.
    not_time = [
        h
        for h in header
        if time_column is None
        and fs is not None
        and channel_key(h) == "t"
        and not _increasing(signals[h])
    ]
    tcol = time_column or next((h for h in header if _time_name(h) and h not in not_time), None)
    if time_column is not None and time_column not in signals:
        raise DataError(f"{path} has no time column {time_column!r}; columns: {', '.join(header)}")
    # Time columns beside the clock (time and time_ms: one clock in two units) are clocks
    # too, checked against it below; one was read as a channel, and one that disagreed
    # with the clock was not seen. A "t" that does not increase is no clock (a temperature).
    clocks = [
        h
        for h in header
        if tcol is not None
        and h != tcol
        and _time_name(h)
        and not (channel_key(h) == "t" and not _increasing(signals[h]))
    ]
    meta: dict[str, Any] = {}
    notes = [
        f"{path}: column {h!r} does not increase, so it is read as a channel, not as time "
        "(the rate given is used); rename it 'time' if it is time"
        for h in not_time
    ]
    # Text in a column of numbers ("abc" in a PPG column: a typo, a note, an export's error
    # marker) was a gap of "missing (NaN or inf)" without a word. A column of text only is
    # no channel (a label column), and the time column's text has its own errors.
    text = {header[j]: seen for j, seen in text_cells.items() if j in numeric and header[j] != tcol}
    if text:
        n = sum(seen[0] for seen in text.values())
        column, (_, line, cell) = min(text.items(), key=lambda item: item[1][1])
        meta["warnings"] = [
            f"{path}: {n} cell{'s' if n != 1 else ''} of text in columns of numbers "
            f"{'were' if n != 1 else 'was'} read as missing samples (a gap); the first: row "
            f"{line}, column {column!r}: {cell!r}"
        ]
    if notes:
        meta["warnings"] = notes + meta.get("warnings", [])
    if tcol is not None:
        t = signals.pop(tcol)
        meta["time_column"] = tcol
        # Its unit: the units row's, else the name's ('time_ms', 'Time [ms]'; a column
        # of milliseconds read as seconds was a rate 1000 times too low).
        unit = units.pop(tcol, None) or _time_name(tcol)
        column = table.cells(tcol)
        t, origin = _time_in_seconds(t, column, unit or "seconds", path, tcol)
        if fs is not None and not np.any(np.isfinite(t)):
            # A column of clock strings (not seconds): the given rate is all there is.
            fs = check_fs(fs, str(path), fs_option)
            # Other time columns have no seconds to be checked against here: clocks still,
            # not channels (refusing them as "disagreeing" refused a readable file).
            for other in clocks:
                signals.pop(other)
                units.pop(other, None)
        else:
            time_fs, positions = _time_grid(t, path, tcol, fs_option, first, origin)
            # The recording's clock: outputs keep it (reconstruct writes its times on it).
            meta["start_s"] = float(origin + t[0])
            if fs is not None:
                given = check_fs(fs, str(path), fs_option)
                if abs(given - time_fs) > FS_AGREEMENT * time_fs:
                    raise DataError(
                        f"{path}: sampling rate {given:g} Hz contradicts the time column "
                        f"{tcol!r}, which steps at {time_fs:g} Hz (times in seconds)"
                    )
            # The file's clock wins over a rate given within FS_AGREEMENT of it (as an NPZ
            # 'fs' or a WFDB header does): with --fs 126 for 125 Hz times, every output
            # time drifted 0.8 % from the input's (0.5 s after one minute).
            fs = check_fs(time_fs, str(path), fs_option)
            _same_clock(t, clocks, signals, units, table, path, tcol, fs)
            n_filled = int(positions[-1]) + 1
            if n_filled > len(t):
                # Rows missing from the time grid become NaN samples: a gap, like lost contact.
                for name, values in signals.items():
                    filled = np.full(n_filled, np.nan)
                    filled[positions] = values
                    signals[name] = filled
                meta["missing_samples"] = n_filled - len(t)
    else:
        fs = check_fs(fs, str(path), fs_option, channels=list(signals))
    return RawRecording(path, "csv", fs, signals, units, meta)


def _same_clock(
    t: np.ndarray,
    clocks: list[str],
    signals: dict[str, np.ndarray],
    units: dict[str, str],
    table: _Table,
    path: Path,
    tcol: str,
    fs: float,
) -> None:
    """Take the time columns ``clocks`` out of ``signals`` (and their units): each is the
    clock ``tcol`` (``t``: its seconds from its first row, at ``fs`` Hz) in a unit of its
    own, saying the same time from its first row in every row, to a quarter of a sample
    period; a column that says another time is refused, naming both and the row."""
    for other in clocks:
        unit = units.pop(other, None) or _time_name(other) or "seconds"
        seconds, _ = _time_in_seconds(signals.pop(other), table.cells(other), unit, path, other)
        off = ~(np.abs(seconds - t) <= TIME_STEP_TOLERANCE / fs)
        if off.any():
            i = int(np.argmax(off))
            said = [f"{x[i]:g} s" if np.isfinite(x[i]) else "no time" for x in (t, seconds)]
            raise DataError(
                f"{path} has two time columns that disagree: at row {i + table.first}, "
                f"{tcol!r} says {said[0]} and {other!r} {said[1]} (from their first rows); "
                "remove the one that is not the recording's time, or rename it if it is no time"
            )


@dataclass
class _Table:
    """A CSV's channel names, units and numbers, as :func:`read_csv` works on them."""

    header: list[str]
    units: dict[str, str]
    data: np.ndarray  # (rows, channels), NaN where a cell holds no number
    first: int  # the file's line of the first data row
    text_cells: dict[int, list[Any]]  # column -> [count, first line, first text]
    numeric: set[int]  # the columns that hold a number somewhere
    cells: Callable[[str], Sequence[str]]  # a column's cells as written (a clock's decimals)


def _careful_table(path: Path) -> _Table:
    """Any CSV :func:`read_csv` reads, row by row in Python, with every check of its layout
    (quotes, units rows, missing marks, decimal commas, lines above the table, ...). Each
    row's cells become float64 as it is read (:class:`_Rows`); of the text it keeps what the
    checks and messages need, and a clock's cells are read again from the file when looked
    at. It held every cell as text: about 450 bytes a sample of three channels."""
    try:
        # utf-8-sig: a spreadsheet's byte-order mark was kept in the first name ('\ufefftime'
        # is no time column 'time'; '\ufeff"time"' kept its quotes).
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = _Rows([_unquoted(h) for h in header or ()], _count_lines(path))
            for row in reader:
                rows.add(row)
    except UnicodeDecodeError:
        raise not_utf8_text(path) from None
    except csv.Error as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from None
    if not header:
        raise DataError(f"{path} is empty: it has no header row and no data rows")
    if "\x00" in header[0]:
        with path.open("rb") as fh:
            if _utf16_without_mark(fh.read(64)):
                raise not_utf8_text(path)
    header = rows.header
    if all(_is_number(h) for h in header):
        # Read as names, the first sample would be lost and the channels called "-0.92".
        raise DataError(
            f"{path} has no header row: its first row holds numbers ({', '.join(header[:4])}"
            f"{', ...' if len(header) > 4 else ''}); add a first row of channel names, "
            "e.g. time,PPG"
        )
    if not rows.n:
        # Was "has no header row and data rows" for a header without samples. Blank lines
        # or rows of empty cells (",,": a spreadsheet's) after the last row are no samples:
        # with a time column they were "row N has no time", or "N values".
        raise DataError(
            f"{path} has a header row ({', '.join(header)}) but no data rows: no samples"
        )
    # Before the lines above the table: a file of semicolons and decimal commas split
    # ("0,5;80,2": "0", "5;80", "2") into rows wider than its header, which were taken for
    # the table, and the advice was to remove the header.
    _refuse_other_separators(path, header, rows)
    _refuse_lines_above_the_table(path, header, rows)
    # Columns with neither a name nor a value (a spreadsheet's trailing ",,") are no
    # channels; two of them were refused as "duplicate column names".
    kept = [j for j, h in enumerate(header) if h or j in rows.valued]
    names = [header[j] for j in kept]
    if len(set(names)) != len(names):
        raise DataError(f"{path} has duplicate column names: {names}")
    units: dict[str, str] = {}
    first = 2  # the line of the first data row in the file (the header is line 1)
    top = [[c for j, c in enumerate(r) if j in kept or j >= len(header)] for r in rows.top]
    if _units_row(top, names):
        # A row of units under the header (PhysioNet's 'seconds','mV','NU','mmHg'): the
        # channels' units, not a sample.
        units = {h: u for h, u in zip(names, top[0], strict=True) if u}
        first = 3
    elif rows.held is not None:
        rows.take(0, rows.held)
    rows.refuse_bad_rows(path, kept)
    data = rows.data[first - 2 : rows.n]
    if len(kept) < len(header):
        data = data[:, kept]
    column = {j: k for k, j in enumerate(kept)}
    # In column order: of text cells on one line, the first named is the leftmost (the
    # first row is taken last, so the order the cells were met in is not the file's).
    text_cells = {column[j]: rows.text_cells[j] for j in sorted(rows.text_cells)}
    numeric = {column[j] for j in rows.numeric if j in column}

    def cells(name: str) -> Sequence[str]:
        return _ColumnText(path, kept[names.index(name)], first, len(data))

    return _Table(names, units, data, first, text_cells, numeric, cells)


class _Rows:
    """A CSV's data rows as :func:`_careful_table` reads them, one at a time: each row's
    cells as float64 (NaN where a cell holds no number) in a table of a row a line end of
    the file (grown for lines that end in "\\r" alone), and of their text only what the
    checks and messages after the reading need. A row's line in the file is its index here
    plus 2 (the header is line 1).

    Blank rows (empty cells only) are held back as counts until a row with a value comes:
    after the last row they are no samples. The first data row waits (``held``) until the
    units row is known: as units it is no sample, and its text is not "text in a column of
    numbers". Rows of a length other than the header's may still be right (a short row
    whose missing cells are in columns with neither name nor value), so the first of each
    length, and the first decimal comma in rows of each length, are kept for
    :meth:`refuse_bad_rows`."""

    def __init__(self, header: list[str], lines: int) -> None:
        self.header = header
        self.width = len(header)
        self.data = np.empty((max(lines, 1), self.width))
        self.n = 0  # rows up to the last that is not blank
        self.read = 0  # rows read, blank ones after the last included
        self.blank: list[list[int]] = []  # [first row, length, count] of blank rows held back
        self.unnamed = [j for j, h in enumerate(header) if not h]  # not yet given a value
        self.valued: set[int] = set()  # columns without a name that hold a value somewhere
        self.top: list[list[str]] = []  # the first two rows' cells (a units row, a message)
        self.held: list[str] | None = None  # the first row, until its units are known
        self.run = (-1, 0, [""])  # the last run of rows of one length: length, start, row
        self.lengths: dict[int, int] = {}  # row length -> its first row
        self.commas: dict[int, tuple[int, int, str]] = {}  # length -> first (row, column, cell)
        self.text_cells: dict[int, list[Any]] = {}  # column -> [count, first line, first text]
        self.numeric: set[int] = set()  # the columns that hold a number or an empty cell
        self.all_numeric = 0  # columns below this one are all in numeric
        self.mixed = False  # whether the last row taken held text

    def add(self, raw: list[str]) -> None:
        i = self.read
        self.read += 1
        if i == len(self.data):  # more rows than line ends: lines ended by "\r" alone
            self.data = np.concatenate([self.data, np.empty_like(self.data)])
        if not "".join(raw).strip():
            self.data[i] = np.nan
            if self.blank and self.blank[-1][1] == len(raw):  # held back rows follow each other
                self.blank[-1][2] += 1
            else:
                self.blank.append([i, len(raw), 1])
            return
        if self.blank:
            for start, length, count in self.blank:
                self.data[start : start + count] = np.nan
                self._numeric_up_to(min(length, self.width))
                self._seen(start, [""] * length, count)
            self.blank = []
        # _unquoted, written out: a call a cell took about a tenth of the reading's time.
        row = [
            c[1:-1].strip() if c[:1] == c[-1:] == "'" and len(c) > 1 else c
            for c in map(str.strip, raw)
        ]
        if self.unnamed:
            for j in self.unnamed:
                if j < len(row) and row[j]:
                    self.valued.add(j)
                    self.unnamed = [k for k in self.unnamed if k != j]
        if i < 2 or len(row) != self.run[0]:
            self._seen(i, row)
        self.n = i + 1
        if i == 0:
            self.held = row
        else:
            self.take(i, row)

    def _seen(self, i: int, row: list[str], count: int = 1) -> None:
        """Rows ``i`` to ``i + count - 1``, each ``row``, are rows of the table."""
        self.lengths.setdefault(len(row), i)
        if len(row) != self.run[0]:
            self.run = (len(row), i, row)
        while len(self.top) < min(2, i + count):
            self.top.append(row)

    def _numeric_up_to(self, m: int) -> None:
        if m > self.all_numeric:
            self.numeric.update(range(self.all_numeric, m))
            self.all_numeric = m

    def take(self, i: int, row: list[str]) -> None:
        """Row ``i``'s cells as numbers, with its text cells and decimal commas noted."""
        m = min(len(row), self.width)
        cells = row if m == len(row) else row[:m]
        if self.mixed:  # the row before held text (a clock's): so will this one, likely
            values = self._cells(i, cells, len(row))
        else:
            try:
                values = [float(c) if c else np.nan for c in cells]
            except ValueError:
                values = self._cells(i, cells, len(row))
            else:
                if m > self.all_numeric:
                    self._numeric_up_to(m)
        self.data[i, :m] = values
        if m < self.width:
            self.data[i, m:] = np.nan

    def _cells(self, i: int, cells: list[str], length: int) -> list[float]:
        """The numbers of a row of ``length`` cells that holds text (a clock's, a note)."""
        values, numeric, self.mixed = [], self.numeric, False
        for j, cell in enumerate(cells):
            try:
                values.append(float(cell) if cell else np.nan)
            except ValueError:
                values.append(np.nan)
                self._text(i, j, cell, length)
                self.mixed = True
            else:
                numeric.add(j)
        return values

    def _text(self, i: int, j: int, cell: str, length: int) -> None:
        if "," in cell and _is_number(cell.replace(",", ".", 1)):
            # A quoted "0,004" read as text: every time or sample NaN, and the error was
            # "no times in seconds" or "holds no valid samples".
            if length not in self.commas or i < self.commas[length][0]:
                self.commas[length] = (i, j, cell)
        elif cell.lower() not in _MISSING:
            # Per column: cells of text (not empty, not a missing marker) read as NaN, and
            # the first of them as (line, text). The first row is taken last.
            seen = self.text_cells.setdefault(j, [0, i + 2, cell])
            seen[0] += 1
            if i + 2 < seen[1]:
                seen[1:] = [i + 2, cell]

    def refuse_bad_rows(self, path: Path, kept: list[int]) -> None:
        """The first row, in the file's order, that is not as long as the header (the
        columns without name or value aside), or that holds a number with a decimal comma."""
        gone = set(range(self.width)) - set(kept)
        bad = []
        for length, i in self.lengths.items():
            if length > self.width or not gone.issuperset(range(length, self.width)):
                bad.append(
                    (
                        i,
                        f"{path}: row {i + 2} has {length - len([j for j in gone if j < length])} "
                        f"values, the header has {len(kept)}",
                    )
                )
            elif length in self.commas:
                row, j, cell = self.commas[length]
                bad.append(
                    (
                        row,
                        f"{path}: row {row + 2}, column {self.header[j]!r} holds {cell!r}, a "
                        "number with a decimal comma; innpar reads decimal points (save the "
                        "file with '.' as the decimal separator)",
                    )
                )
        if bad:
            raise DataError(min(bad)[1])


def _numeric_table(path: Path) -> _Table | None:
    """The common CSV, a row of names (and a row of units) over rows of numbers only, read
    by numpy's C parser in a few bytes a sample; ``None`` for any other, which
    :func:`_careful_table` reads with its checks and messages. The careful reader held
    every cell as text: a 24-hour recording at 250 Hz (a 505 MB CSV) took 9.9 GB.

    A file takes this way only where both readers give the same numbers: names without
    quotes, unique, not numbers; every line after them a row of as many numbers (no empty
    cell, no text, no blank line: numpy skips blank lines, which the careful reader refuses
    between rows), counted against the file's lines."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            head = [fh.readline() for _ in range(3)]
            header = [c.strip() for c in next(csv.reader([head[0]]), [])]
            if (
                len(header) < 2
                or any(not h or "'" in h or '"' in h for h in header)
                or len(set(header)) != len(header)
                or all(_is_number(h) for h in header)
            ):
                return None
            second = [c.strip() for c in next(csv.reader([head[1]]), [])]
            third = [c.strip() for c in next(csv.reader([head[2]]), [])]
            units: dict[str, str] = {}
            pending = head[1:]
            if _units_row([second, third], header) and not any("'" in c for c in second):
                units = {h: u for h, u in zip(header, second, strict=True) if u}
                pending = head[2:]
            with warnings.catch_warnings():
                # A header with no rows: numpy warns "input contained no data" on stderr
                # before the careful reader says so in one message.
                warnings.simplefilter("ignore", UserWarning)
                data = np.loadtxt(
                    itertools.chain(pending, fh),
                    delimiter=",",
                    dtype=np.float64,
                    comments=None,
                    ndmin=2,
                )
    except (ValueError, UnicodeDecodeError, csv.Error, IndexError):
        return None
    if data.shape[0] == 0 or data.shape[1] != len(header):
        return None
    if _count_lines(path) != data.shape[0] + 1 + bool(units):  # no blank line numpy skipped
        return None
    first = 3 if units else 2

    def cells(name: str) -> Sequence[str]:
        return _ColumnText(path, header.index(name), first, len(data))

    return _Table(header, units, data, first, {}, set(range(len(header))), cells)


def _count_lines(path: Path) -> int:
    """A file's lines: its line ends (``\\n``), and one more for a last line without one."""
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    return lines + (last != b"\n")


class _ColumnText(Sequence[str]):
    """The cells of column ``column`` of a CSV as written (unquoted), its ``rows`` data rows
    from line ``first``, read from the file each time they are looked at and never held:
    only a clock read from its text needs them (elapsed ``hh:mm:ss``, Unix times'
    decimals), and held they were a Python string a sample (a 6-hour recording's time
    column: 0.2 GB)."""

    def __init__(self, path: Path, column: int, first: int, rows: int) -> None:
        self.path, self.column, self.first, self.rows = path, column, first, rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i: Any) -> Any:  # an index or a slice, as a list's
        if isinstance(i, slice):
            return list(self)[i]
        return next(itertools.islice(self, range(self.rows)[i], None))

    def __iter__(self) -> Iterator[str]:
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            rows = itertools.islice(csv.reader(fh), self.first - 1, self.first - 1 + self.rows)
            for row in rows:
                yield _unquoted(row[self.column])


def _refuse_other_separators(path: Path, header: list[str], rows: _Rows) -> None:
    """Refuse a CSV whose columns are separated by semicolons or tabs (a header of one name
    holding them), naming its decimal commas too where its first rows have them (a
    spreadsheet's export in a European locale: ``time;PLETH`` over ``0,004;1,25``)."""
    if len(header) != 1:
        return
    for sep, name in ((";", "semicolons"), ("\t", "tabs")):
        if sep not in header[0]:
            continue
        # The csv reader split the rows at their decimal commas: joined again, a row's
        # cells are its line (spaces and single quotes around cells aside).
        cells = [c.strip() for row in rows.top for c in ",".join(row).split(sep)]
        comma = next((c for c in cells if "," in c and _is_number(c.replace(",", ".", 1))), None)
        if comma is None:
            raise DataError(
                f"{path}: its columns are separated by {name}; innpar reads "
                "comma-separated CSV (save it with commas)"
            )
        raise DataError(
            f"{path}: its columns are separated by {name} and its numbers have decimal "
            f"commas ({comma!r}); innpar reads comma-separated CSV with decimal points "
            "(save it with ',' between columns and '.' as the decimal separator)"
        )


def _refuse_lines_above_the_table(path: Path, header: list[str], rows: _Rows) -> None:
    """Refuse a CSV that starts with lines that are not its table (a device's export:
    ``Device: X``, ``Sampling rate: 250 Hz``, a blank line, then ``time,PLETH,ABP``): the
    first line was taken as the header, and the error was "row 3 has 0 values, the header
    has 1". The table is the run of rows as wide as the last one; when the header is not
    that wide and the run starts with a row of names, that row is where the header seems to
    be. Lines before it are not skipped: what they say (a rate, units) might matter."""
    width, k, names = rows.run  # the last run of rows of one length: from row k, names
    if len(header) == width:
        return
    if k + 1 >= rows.n or all(_is_number(c) or not c for c in names):
        return  # no row of names heads the run: the row-by-row error says what is wrong
    above = [", ".join(header)] + [", ".join(r) for r in rows.top[:k]]
    shown = "; ".join(repr(line) for line in above[:3]) + ("; ..." if k + 1 > 3 else "")
    raise DataError(
        f"{path} seems to start with {k + 1} line(s) that are not its table ({shown}): "
        f"its header seems to be line {k + 2} ({', '.join(names)}); remove the lines above it"
    )


def _increasing(x: np.ndarray) -> bool:
    """Whether a column's numbers rise from row to row (missing cells aside)."""
    x = x[np.isfinite(x)]
    return x.size >= 2 and bool(np.all(np.diff(x) > 0))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _unquoted(cell: str) -> str:
    """A CSV cell without spaces around it and without the single quotes PhysioNet's
    ``rdsamp -c`` puts around names, units and elapsed times (``'ABP'``)."""
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == "'":
        cell = cell[1:-1].strip()
    return cell


def _units_row(rows: list[list[str]], header: list[str]) -> bool:
    """Whether the first data row is a row of units: a text in every column (none a number,
    none a mark of a missing value: such a row is a sample of NaN), and numbers in the row
    after it."""
    return (
        len(rows) > 1
        and len(rows[0]) == len(header)
        and all(c and not _is_number(c) and c.lower() not in _MISSING for c in rows[0])
        and any(_is_number(c) for c in rows[1])
    )


# Cells that say a value is missing, not a unit.
_MISSING = ("n/a", "na", "null", "none", "-", "--", "?", "missing")


# Time-column names (as channel_key has them); "elapsedtime" is PhysioNet's rdsamp's.
TIME_NAMES = ("time", "t", "times", "timestamp", "elapsedtime")
_SECONDS = ("s", "sec", "secs", "second", "seconds")
_MILLISECONDS = ("ms", "msec", "msecs", "millisecond", "milliseconds")
# Time units as channel_key has them, with the number of them in a second: device exports
# count in ms, and some in microseconds or nanoseconds (Unix times in ns, as pandas writes
# them). "µs" is the micro sign's, "μs" the Greek mu's: both are typed.
_TIME_UNITS = {
    **dict.fromkeys(_SECONDS, 1.0),
    **dict.fromkeys(_MILLISECONDS, 1e3),
    **dict.fromkeys(("us", "µs", "μs", "usec", "usecs", "microsecond", "microseconds"), 1e6),
    **dict.fromkeys(("ns", "nsec", "nsecs", "nanosecond", "nanoseconds"), 1e9),
}
# The short name of each, as messages give it.
_UNIT_NAMES = {1.0: "s", 1e3: "ms", 1e6: "us", 1e9: "ns"}
# Elapsed time as rdsamp -pe prints it: [hh:]mm:ss[.mmm], in brackets or not.
_ELAPSED = re.compile(r"^\[?(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)\]?$")


def _time_name(name: str) -> str | None:
    """Whether ``name`` names a time column, with the unit it implies: the unit its name
    ends with (``time_ms``, ``Time [ms]``, ``timestamp_us``, ``time_ns``, ``Time (sec)``),
    "seconds" for the others (``time``, ``t``, ``time_s``, ``Elapsed time``); None for a
    name that is no time column."""
    key = channel_key(name)
    if key in TIME_NAMES:
        return "seconds"
    for stem in ("elapsedtime", "timestamp", "time"):
        if key.startswith(stem) and key[len(stem) :] in _TIME_UNITS:
            return key[len(stem) :]
    return None


def _time_in_seconds(
    t: np.ndarray, cells: Sequence[str], unit: str, path: Path, tcol: str
) -> tuple[np.ndarray, float]:
    """A time column in seconds from its unit (its units row's or its name's): seconds as
    they are, milliseconds, microseconds and nanoseconds divided, elapsed ``hh:mm:ss.mmm``
    strings parsed; another unit is named. Returned as seconds from the first time, and that
    time (0.0 if it is missing): Unix times in ms divided as they are (1.7e12 / 1000) kept
    1e-7 s of rounding each, and 125 Hz came out as 124.999997 Hz in every output's header."""
    key = channel_key(unit)
    if key in _TIME_UNITS:
        scale = _TIME_UNITS[key]
    elif ":" in unit:
        scale = 1.0
        t = np.full(len(cells), np.nan)
        for i, cell in enumerate(cells):
            found = _ELAPSED.match(cell)
            if found:
                h, m, sec = found.groups()
                t[i] = int(h or 0) * 3600 + int(m) * 60 + float(sec)
    else:
        raise DataError(
            f"{path}: time column {tcol!r} is in {unit!r} (its units row); innpar reads times "
            "in seconds, ms, us, ns or elapsed hh:mm:ss.mmm"
        )
    first = float(t[0]) if t.size and np.isfinite(t[0]) else 0.0
    offsets = t - first
    if abs(first) >= LARGE_CLOCK and ":" not in unit:
        # Unix seconds with ms decimals (1700000000.008): float64 holds them to 2.4e-7 s,
        # and a few seconds of them gave 124.999997 Hz; subtracted in decimal, exactly.
        offsets = _decimal_offsets(cells, offsets)
    return offsets / scale, first / scale


# A clock this large (Unix times) is read to its last decimal by _decimal_offsets.
LARGE_CLOCK = 1e6


def _decimal_offsets(cells: Sequence[str], offsets: np.ndarray) -> np.ndarray:
    """Each cell's time minus the first's, subtracted in decimal from the text as written
    (``offsets`` where a cell is not a decimal number: those are NaN there already)."""
    from decimal import Decimal, InvalidOperation

    try:
        base = Decimal(cells[0].strip())
    except InvalidOperation:
        return offsets
    exact = offsets.copy()
    for i, cell in enumerate(cells):
        if np.isfinite(offsets[i]):
            try:
                exact[i] = float(Decimal(cell.strip()) - base)
            except InvalidOperation:
                pass
    return exact


def _time_grid(
    t: np.ndarray,
    path: Path,
    tcol: str,
    fs_option: str | None,
    first: int = 2,
    origin: float = 0.0,
) -> tuple[float, np.ndarray]:
    """The rate a CSV time column ``t`` (seconds from ``origin``, one per data row) implies,
    and each row's sample index on that rate's grid (steps of several periods are missing
    rows). Messages give times on the file's clock (``origin + t``).

    Raises ``DataError`` naming the row for missing or non-increasing times and for steps
    that are not a whole number of sample periods (irregular sampling, heavy jitter).
    """
    missing = ~np.isfinite(t)
    if missing.all():
        raise DataError(
            f"{path}: time column {tcol!r} holds no times in seconds; give {give_rate(fs_option)}"
        )
    if missing.any():
        row = int(np.argmax(missing))
        raise DataError(f"{path}: row {row + first} has no time (seconds) in column {tcol!r}")
    if t.size < 2:
        raise DataError(f"{path}: one row cannot give a sampling rate; give {give_rate(fs_option)}")
    dt = np.diff(t)
    back = dt <= 0
    if back.any():
        i = int(np.argmax(back))
        raise DataError(
            f"{path}: time column {tcol!r} is not increasing: row {i + 1 + first} is at "
            f"{seconds_text(origin + t[i + 1])} s, the row before at "
            f"{seconds_text(origin + t[i])} s; fix the times, "
            f"or remove the column and give {give_rate(fs_option)}"
        )
    # The median step is one period unless most rows are missing. Refined by the whole
    # span, the period averages out jitter and timestamp rounding.
    period = float(np.median(dt))
    for _ in range(2):
        steps = np.maximum(np.rint(dt / period), 1.0)
        period = float(t[-1] - t[0]) / float(steps.sum())
    ratio = dt / period
    steps = np.maximum(np.rint(ratio), 1.0)
    off = np.abs(ratio - steps) > TIME_STEP_TOLERANCE
    if off.any():
        i = int(np.argmax(off))
        raise DataError(
            f"{path}: time column {tcol!r} is irregular at row {i + 1 + first} "
            f"({seconds_text(origin + t[i + 1])} s): a "
            f"step of {dt[i]:g} s is {ratio[i]:.2f} sample periods of {period:g} s, not a "
            "whole number; resample the recording to a regular rate first"
        )
    if steps.sum() + 1 > MAX_GAP_FILL * t.size:
        i = int(np.argmax(steps))
        raise DataError(
            f"{path}: time column {tcol!r} jumps by {dt[i]:g} s at row {i + 1 + first} "
            f"({seconds_text(origin + t[i + 1])} s): as a gap, that is more than "
            f"{MAX_GAP_FILL} times the "
            f"{t.size} rows recorded; check the time column"
        )
    positions = np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)
    # To 9 significant digits: times of 1/125 s steps give 124.99999999999962 Hz, which
    # would be written into output headers as it is.
    rate = float(f"{1.0 / period:.9g}")
    # A column read as seconds whose rate would be a recording's in a smaller unit.
    scale = next((k for k in (1e3, 1e6, 1e9) if MIN_FS <= k * rate <= MAX_FS), None)
    if rate < MS_HINT_BELOW_HZ and scale is not None:
        what = {1e3: "milliseconds", 1e6: "microseconds", 1e9: "nanoseconds"}[scale]
        short = _UNIT_NAMES[scale]
        raise DataError(
            f"{path}: time column {tcol!r} steps by {period:g} per sample: {rate:g} Hz if "
            f"the times are in seconds ({scale * rate:g} Hz if they are {what}); for "
            f"{what} name the column time_{short} or put a row of units (s, {short}) under "
            f"the names, or remove it and give {give_rate(fs_option)}"
        )
    return rate, positions


def numpy_load_problem(exc: Exception) -> str:
    """What ``np.load`` said, minus its advice to load with pickles allowed: for a corrupt
    or foreign file that would run whatever code it holds."""
    text = str(exc)
    if "pickle" in text.lower():
        return "not a NumPy file of numbers (random bytes, or pickled Python objects)"
    return text


# Keys of an NPZ that give its sampling rate, as channel_key has them (any case, with or
# without "_"): fs (FS, Fs), sampling_rate, sample_rate, sfreq (MNE's), srate (EEGLAB's).
# Only 'fs' was read: FS=250 or sampling_rate=250 were ignored, and the rate "unknown".
NPZ_RATE_KEYS = ("fs", "samplingrate", "samplerate", "sfreq", "srate")


def read_npz(
    path: str | Path, fs: float | None = None, fs_option: str | None = None
) -> RawRecording:
    """An ``.npz`` of 1-D arrays, one per channel; a scalar key of :data:`NPZ_RATE_KEYS`
    (``fs``, ``sampling_rate``, ...) gives the rate; several such keys must agree (to
    float32's rounding).
    Keys that hold Python objects are not read (pickles run code), with a warning in
    ``meta["warnings"]``: one such key made the whole file "not a NumPy file of numbers"."""
    path = Path(path)
    objects: list[str] = []
    try:
        loaded = np.load(path, allow_pickle=False)
        arrays = None
        if isinstance(loaded, np.lib.npyio.NpzFile):  # else an .npy under an .npz name
            arrays = {}
            with loaded as z:
                for k in z.files:
                    try:
                        arrays[k] = np.asarray(z[k])
                    except ValueError as exc:
                        if "allow_pickle" not in str(exc):
                            raise
                        objects.append(k)
    except FileNotFoundError:
        raise DataError(f"NPZ file not found: {path}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise cannot_read(path, exc) from None  # not opened: no sign of a corrupt file
        raise DataError(f"{path} is not a readable .npz file: {numpy_load_problem(exc)}") from None
    if arrays is None:
        raise DataError(f"{path} holds a single .npy array, not an .npz archive of named channels")
    rates: dict[str, float] = {}
    for key in [k for k in [*arrays, *objects] if channel_key(k) in NPZ_RATE_KEYS]:
        if key in objects:
            raise DataError(
                f"{path}: key {key!r} (the sampling rate) holds Python objects, which are not "
                "read (allow_pickle is off); save it as a number"
            )
        stated = arrays.pop(key)
        if stated.size != 1:
            # Dropped without a word, the rate was then "unknown" with advice to pass --fs.
            raise DataError(
                f"{path}: key {key!r} must be one number (the sampling rate in Hz), but holds "
                f"{stated.size} values of shape {stated.shape}"
            )
        if stated.dtype.kind == "b":
            # float(True) is 1.0: fs=True was read as a rate of 1 Hz.
            raise DataError(f"{path}: key {key!r} is {stated.item()!r}, not a sampling rate in Hz")
        rates[key] = check_fs(stated.item(), f"{path}: key {key!r}", fs_option)
    # Two keys that state one rate (fs and sampling_rate, as some exporters write both)
    # were refused even when equal; only rates that differ beyond float32's rounding are.
    values = list(rates.values())
    if values and not np.allclose(values, values[0], rtol=1e-6, atol=0):
        stated_rates = ", ".join(f"{k!r} = {r:.10g} Hz" for k, r in rates.items())
        raise DataError(f"{path}: keys {stated_rates} give different sampling rates; keep one")
    if rates:
        key, stated_fs = next(iter(rates.items()))
        if fs is not None and abs(float(fs) - stated_fs) > FS_AGREEMENT * stated_fs:
            raise DataError(
                f"{path}: sampling rate {float(fs):g} Hz contradicts the file's {key!r} of "
                f"{stated_fs:g} Hz"
            )
        fs = stated_fs
    meta: dict[str, Any] = {}
    if objects:
        meta["warnings"] = [
            f"{path}: key {k!r} holds Python objects, which are not read (allow_pickle is off)"
            for k in objects
        ]
    start = arrays.pop("start_s", None)  # the clock innpar reconstruct keeps
    if start is not None and start.size == 1 and np.isfinite(start.item()):
        meta["start_s"] = float(start.item())
    elif start is not None:
        arrays["start_s"] = start  # not a clock: listed like any other array
    signals, ignored = {}, []
    for key in list(arrays):
        # Each array leaves ``arrays`` as it becomes a channel, and a float64 one is kept as
        # it was read: a copy of every channel beside the arrays read was twice the file.
        arr = np.squeeze(arrays.pop(key))
        if np.iscomplexobj(arr):
            raise DataError(f"{path}: array {key!r} holds complex numbers; channels must be real")
        if arr.ndim == 1 and arr.dtype.kind in "iuf":
            signals[key] = arr.astype(np.float64, copy=False)
        elif arr.dtype.kind in "biuf":
            # Text arrays are metadata; numeric ones that are not 1-D (or booleans) might
            # be a channel in the wrong shape, so errors about channels name them.
            ignored.append(f"{key} ({arr.dtype} of shape {arr.shape})")
    ignored += [f"{k} (Python objects, not read: allow_pickle is off)" for k in objects]
    if not signals:
        detail = f" (it has: {', '.join(ignored)})" if ignored else ""
        raise DataError(f"{path} holds no 1-D numeric arrays{detail}")
    if ignored:
        meta["ignored_arrays"] = ignored
    empty = [k for k, v in signals.items() if v.size == 0]
    if empty:
        # Read on, channels of 0 samples were rejected as "every sample is invalid (NaN)".
        raise DataError(
            f"{path}: channel{'s' if len(empty) > 1 else ''} {', '.join(map(repr, empty))} "
            f"{'are' if len(empty) > 1 else 'is'} empty (0 samples)"
        )
    return RawRecording(
        path,
        "npz",
        check_fs(fs, str(path), fs_option, channels=list(signals)),
        _equal_lengths(signals, path),
        meta=meta,
    )


def read_npy(
    path: str | Path,
    fs: float | None = None,
    channel: str = "ppg",
    fs_option: str | None = None,
) -> RawRecording:
    """An ``.npy`` with one signal, shape ``(L,)`` or ``(1, L)``, named ``channel``; it states
    no rate, which ``fs`` gives (``fs_option``: the option that gives it, for the message)."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"NPY file not found: {path}") from None
    except (ValueError, OSError, EOFError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise cannot_read(path, exc) from None  # not opened: no sign of a corrupt file
        raise DataError(f"{path} is not a readable .npy file: {numpy_load_problem(exc)}") from None
    arr = np.squeeze(arr)
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        # "got (15000,)" for an array of booleans named the shape, which was right.
        raise DataError(
            f"{path} must hold one numeric signal of shape (L,) or (1, L), got "
            f"{arr.dtype} of shape {arr.shape}"
        )
    rate = check_fs(fs, str(path), fs_option)
    return RawRecording(path, "npy", rate, {channel: arr.astype(np.float64)})


def _equal_lengths(signals: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    lengths = {k: len(v) for k, v in signals.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{path}: channels have different lengths: {lengths}")
    return signals


def check_recording_exists(path: str | Path, what: str = "recording") -> None:
    """Refuse a recording that is not there (a typo) as not found: a WFDB record is named
    without its suffix, so its header counts. Detecting a format first had said "cannot
    tell the format", as if the file were of a wrong kind."""
    path = Path(path)
    if not path.exists() and not path.with_suffix(".hea").is_file():
        raise DataError(f"{what} not found: {path}")


def detect_format(path: str | Path) -> str:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".npz":
        return "npz"
    if suffix == ".npy":
        return "npy"
    if suffix in (".hea", ".dat", ".mat", "") and path.with_suffix(".hea").is_file():
        return "wfdb"
    raise DataError(
        f"cannot tell the format of {path}: expected a WFDB record (.hea), .csv, .npz or .npy"
    )


def recording_files(path: str | Path, fmt: str) -> list[Path]:
    """A recording's files (a WFDB record's header and the signal files it names, checked
    by :func:`check_wfdb_files`), each readable: one without read permission is refused
    as "cannot read FILE: Permission denied" (see :func:`cannot_read`)."""
    files = check_wfdb_files(wfdb_record_base(path)) if fmt == "wfdb" else [Path(path)]
    for f in files:
        check_readable(f)
    return files


def read_recording(
    path: str | Path, fmt: str | None = None, fs: float | None = None, **kwargs: Any
) -> RawRecording:
    """Read a recording of any supported format (detected from the name unless ``fmt``).
    Its files must be readable (:func:`recording_files`): a CSV without read permission
    was "Permission denied: FILE", a WFDB signal file one "cannot read WFDB record REC:
    PermissionError: [Errno 13] ...", where an import says "cannot read FILE: ..."."""
    check_recording_exists(path)
    fmt = fmt or detect_format(path)
    recording_files(path, fmt)
    if fmt == "wfdb":
        return read_wfdb(path, fs, **kwargs)
    if fmt == "csv":
        return read_csv(path, fs, **kwargs)
    if fmt == "npz":
        return read_npz(path, fs, **kwargs)
    if fmt == "npy":
        return read_npy(path, fs, **kwargs)
    raise DataError(f"unknown recording format {fmt!r}; use one of {', '.join(RECORDING_FORMATS)}")
