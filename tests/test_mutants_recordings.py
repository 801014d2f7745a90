"""Tests that pin what a mutation audit of the whole-recording readers
(``innpar_freia/data/recordings.py``: channel matching, rate checks, WFDB headers and their
signal files, CSV time columns, NPZ/NPY arrays, format detection) found unguarded: each
one fails when the bug named in its docstring is put into the package.

Every file is written here, small (a few to a few thousand samples), with ``wfdb.wrsamp``,
numpy or plain text; the expected values are worked out from what was written, never by
calling the reader under test. One test also reads a provided PhysioNet record from
``../shared`` and skips cleanly when it is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb
from helpers import write_csv

from innpar_freia.data.recordings import (
    RawRecording,
    check_fs,
    check_wfdb_files,
    detect_format,
    files_under,
    find_channel,
    read_csv,
    read_npy,
    read_npz,
    read_recording,
    read_wfdb,
    wfdb_record_base,
)
from innpar_freia.errors import DataError, UnknownRateError


def _wfdb(folder: Path, name: str = "r", n: int = 8, fs: float = 125.0, **kw) -> Path:
    """A 1-channel WFDB record (PLETH, format 16) of the values 0, 1, ... n-1."""
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["NU"],
        sig_name=["PLETH"],
        p_signal=np.arange(float(n))[:, None],
        fmt=["16"],
        write_dir=str(folder),
        **kw,
    )
    return folder / name


def _raw_record(folder: Path, header: str, data: bytes, name: str = "r") -> Path:
    """A record written as text and bytes: ``header`` for ``name.hea``, ``data`` for
    ``name.dat``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.hea").write_text(header)
    (folder / f"{name}.dat").write_bytes(data)
    return folder / name


# ------------------------------------------------------------------------------ channels


def test_a_named_channel_is_matched_whole_not_by_its_start() -> None:
    """``--abp-channel ABP`` picks ``ABP`` (also spelled ``abp`` or ``A.B.P``), never
    ``ABP2`` listed before it. Guards against matching the option as a prefix of a name
    (the second ABP channel of a monitor was reconstructed against)."""
    channels = ["ABP2", "PLETH", "ABP"]
    for given in ("ABP", "abp", "A.B.P"):
        assert find_channel(channels, "abp", override=given) == "ABP"
    with pytest.raises(DataError, match="has no channel 'AB'; its channels are: ABP2, PLETH"):
        find_channel(channels, "abp", override="AB")


def test_of_two_spellings_of_one_name_the_first_or_the_exact_one_is_picked() -> None:
    """``Pleth`` and ``PLETH``: found by name, the first is the PPG (the docstring's "the
    first channel whose name is a known spelling"); named with ``--ppg-channel PLETH``,
    the channel of exactly that name. Bug found by the audit: the last spelling was
    picked, and ``--ppg-channel PLETH`` gave ``Pleth``."""
    assert find_channel(["Pleth", "PLETH", "ABP"], "ppg") == "Pleth"
    assert find_channel(["Pleth", "PLETH", "ABP"], "ppg", override="PLETH") == "PLETH"
    assert find_channel(["Pleth", "PLETH", "ABP"], "ppg", override="pleth") == "Pleth"


def test_two_wfdb_signals_of_one_name_are_both_kept_the_first_under_the_name(
    tmp_path: Path,
) -> None:
    """A header with two signals named ABP (a monitor's two pressure lines). Bug: the
    second overwrote the first in the channels, so the ABP found by name was the second
    and the first could not be named at all; now the first keeps the name and the
    second is 'ABP (2)', which --abp-channel can name."""
    folder = tmp_path / "dup"
    folder.mkdir()
    k = np.arange(4.0)
    wfdb.wrsamp("r", fs=125, units=["NU", "mmHg", "mmHg"], sig_name=["PLETH", "ABP", "ART"],
                p_signal=np.column_stack([k, 80 + k, 40 + k]), fmt=["16", "16", "16"],
                write_dir=str(folder))  # fmt: skip
    header = folder / "r.hea"
    header.write_text(header.read_text().replace(" ART", " ABP"))
    rec = read_wfdb(folder / "r")
    assert rec.channels == ["PLETH", "ABP", "ABP (2)"]
    assert rec.find("abp") == "ABP" and rec.find("abp", "ABP (2)") == "ABP (2)"
    np.testing.assert_allclose(rec.signals["ABP"], [80, 81, 82, 83], atol=1e-3)
    np.testing.assert_allclose(rec.signals["ABP (2)"], [40, 41, 42, 43], atol=1e-3)
    assert rec.units == {"PLETH": "NU", "ABP": "mmHg", "ABP (2)": "mmHg"}


def test_a_rate_of_exactly_1_or_100000_hz_is_accepted_and_none_is_unknown() -> None:
    """The plausible range 1..100000 Hz includes its ends; no rate at all is an
    ``UnknownRateError`` (the importers ask for ``--input-fs`` on it). Guards against
    either bound made strict and against a missing rate raising a plain ``DataError``."""
    assert check_fs(1.0, "r") == 1.0 and check_fs("100000", "r") == 100_000.0
    for bad in (0.999, 100_000.5, float("nan"), float("inf")):
        with pytest.raises(DataError, match=r"outside 1\.\.100000 Hz"):
            check_fs(bad, "r")
    with pytest.raises(UnknownRateError, match="r: the sampling rate is unknown; give it with -x"):
        check_fs(None, "r", "-x")


def test_the_missing_channel_message_names_the_arrays_that_are_not_channels(
    tmp_path: Path,
) -> None:
    """An NPZ whose PPG was saved as a (2, L) array has no PPG channel; the error says the
    array is there in another shape. Guards against losing that hint (from ``meta`` or from
    ``RawRecording.find``): "no PPG channel" while the user sees one in the file."""
    np.savez(tmp_path / "r.npz", ABP=np.zeros(10), PPG=np.zeros((2, 10)), fs=125.0)
    rec = read_npz(tmp_path / "r.npz")
    assert rec.channels == ["ABP"]
    with pytest.raises(
        DataError,
        match=r"not 1-D real channels: PPG \(float64 of shape \(2, 10\)\)\) has no PPG",
    ):
        rec.find("ppg")


def test_duration_is_samples_over_rate() -> None:
    """250 samples at 125 Hz last 2 s. Guards against counting intervals ((n - 1) / fs)."""
    rec = RawRecording(Path("x"), "npy", 125.0, {"ppg": np.zeros(250)})
    assert rec.n_samples == 250 and rec.duration_s == 2.0


# ---------------------------------------------------------------------------------- WFDB


def test_a_wfdb_path_with_a_mat_or_capital_suffix_is_its_record(tmp_path: Path) -> None:
    """``rec.mat`` (PhysioNet's signal files) and ``rec.HEA`` name the record ``rec``.
    Guards against ``.mat`` or a suffix in capitals being taken for part of the record
    name ("WFDB header not found: rec.mat.hea")."""
    base = _wfdb(tmp_path)
    for given in ("r.mat", "r.HEA", "r.Dat", "r"):
        assert wfdb_record_base(tmp_path / given) == base
    assert detect_format(tmp_path / "r.mat") == "wfdb"
    assert detect_format(tmp_path / "r") == "wfdb"


def test_a_header_that_begins_with_comments_is_read(tmp_path: Path) -> None:
    """WFDB headers may begin with comment lines; the record line is the first other one.
    Guards against taking the first non-empty line (``# made by ...``) for the record line
    (every such record refused as damaged)."""
    base = _wfdb(tmp_path, n=6)
    header = base.with_suffix(".hea")
    header.write_text("# exported by a monitor\n\n" + header.read_text())
    rec = read_wfdb(base)
    assert rec.fs == 125.0 and rec.n_samples == 6


def test_rates_with_a_fraction_or_a_counter_frequency_are_read(tmp_path: Path) -> None:
    """``62.5`` and ``125/1000`` (rate / counter frequency, header(5)) are sampling rates.
    Guards against the record-line check taking integers only or no counter frequency
    (valid records refused as damaged headers)."""
    base = _wfdb(tmp_path / "a", fs=62.5, n=5)
    assert base.with_suffix(".hea").read_text().startswith("r 1 62.5 5\n")
    assert read_wfdb(base).fs == 62.5
    header = base.with_suffix(".hea")
    header.write_text(header.read_text().replace("r 1 62.5 5", "r 1 125/1000(-3) 5"))
    assert read_wfdb(base).fs == 125.0


def test_a_binary_header_is_named(tmp_path: Path) -> None:
    """A ``.hea`` of bytes that are not text (a corrupt download). Guards against a
    ``UnicodeDecodeError`` traceback."""
    base = _raw_record(tmp_path, "", b"")
    base.with_suffix(".hea").write_bytes(b"\xff\xfe\x81 1 125 4\n")
    with pytest.raises(DataError, match="is not a text WFDB header"):
        read_wfdb(base)


def test_a_header_comment_in_latin1_is_read(tmp_path: Path) -> None:
    """A comment line in Latin-1 ("# Patient \xe2ge 63", which wfdb reads) made the whole
    header "not a text WFDB header"; the comments are not decoded, the record line is."""
    base = _wfdb(tmp_path, n=6)
    header = base.with_suffix(".hea")
    header.write_bytes(b"# Patient \xe2ge 63\n" + header.read_bytes())
    rec = read_wfdb(base)
    assert rec.fs == 125.0 and rec.n_samples == 6


@pytest.mark.parametrize("fmt", ["310", "311"])
def test_formats_310_and_311_take_4_bytes_per_3_samples(tmp_path: Path, fmt: str) -> None:
    """Three 10-bit samples in 4 bytes: 6 samples are 8 bytes (zeros read as 0), 7 bytes
    are truncated. Guards against another size for either format (intact records called
    truncated)."""
    header = f"r 1 125 6\nr.dat {fmt} 1/NU 10 0 0 0 0 PLETH\n"
    base = _raw_record(tmp_path, header, bytes(8))
    np.testing.assert_array_equal(read_wfdb(base).signals["PLETH"], np.zeros(6))
    (tmp_path / "r.dat").write_bytes(bytes(7))
    with pytest.raises(DataError, match=r"truncated: 7 bytes, .* 6 samples \(8 bytes\)"):
        read_wfdb(base)


def test_a_record_line_without_signals_is_named(tmp_path: Path) -> None:
    """A record line of only a name says it names no signals. Guards against the check
    accepting a lone name (wfdb then failed with its own words)."""
    base = _raw_record(tmp_path, "r\n", b"")
    with pytest.raises(DataError, match="the record line 'r' names no signals"):
        read_wfdb(base)


def test_a_header_declaring_more_signals_than_it_describes_is_named(tmp_path: Path) -> None:
    """``r 2 125 4`` followed by one signal line is a damaged header. Guards against
    dropping the count check (wfdb reads it and fails later with an IndexError)."""
    data = np.arange(4, dtype="<i2").tobytes()
    base = _raw_record(tmp_path, "r 2 125 4\nr.dat 16 1/NU 16 0 0 0 0 PLETH\n", data)
    with pytest.raises(
        DataError, match=r"declares 2 signal\(s\) on its record line but describes 1"
    ):
        read_wfdb(base)


def test_a_record_of_length_0_is_named(tmp_path: Path) -> None:
    """Guards against dropping the zero-length check (wfdb's words: "sampto must be
    greater than sampfrom")."""
    base = _raw_record(tmp_path, "r 1 125 0\nr.dat 16 1/NU 16 0 0 0 0 PLETH\n", b"")
    with pytest.raises(DataError, match=r"holds no samples: .*gives a length of 0"):
        read_wfdb(base)


def test_a_signal_file_behind_a_byte_offset_is_checked_with_it(tmp_path: Path) -> None:
    """``16+24``: samples start after 24 bytes, so 5 samples need 24 + 10 = 34 bytes; 33
    is truncated. Guards against ignoring the offset (PhysioNet's ``.mat`` files have
    one: a file short by up to 24 bytes passed)."""
    samples = np.array([3, 1, 4, 1, 5], dtype="<i2").tobytes()
    header = "r 1 125 5\nr.dat 16+24 1/NU 16 0 0 0 0 PLETH\n"
    base = _raw_record(tmp_path, header, bytes(24) + samples)
    np.testing.assert_array_equal(read_wfdb(base).signals["PLETH"], [3.0, 1.0, 4.0, 1.0, 5.0])
    (tmp_path / "r.dat").write_bytes(bytes(24) + samples[:-1])
    with pytest.raises(DataError, match=r"truncated: 33 bytes, .* 5 samples \(34 bytes\)"):
        read_wfdb(base)


def test_two_signals_in_one_file_need_both_their_bytes(tmp_path: Path) -> None:
    """Two format-16 signals interleaved in one file take 4 bytes a sample: 6 samples are
    24 bytes, and a file of 12 is truncated. Guards against counting only one signal's
    bytes (a file cut in half passed the check)."""
    frames = np.arange(12, dtype="<i2").tobytes()
    header = "r 2 125 6\nr.dat 16 1/NU 16 0 0 0 0 PLETH\nr.dat 16 1/mmHg 16 0 0 0 0 ABP\n"
    base = _raw_record(tmp_path, header, frames)
    rec = read_wfdb(base)
    np.testing.assert_array_equal(rec.signals["ABP"], [1.0, 3.0, 5.0, 7.0, 9.0, 11.0])
    (tmp_path / "r.dat").write_bytes(frames[:12])
    with pytest.raises(DataError, match=r"truncated: 12 bytes, .* \(24 bytes\)"):
        read_wfdb(base)


def test_an_odd_format_212_record_needs_its_last_half_frame(tmp_path: Path) -> None:
    """5 samples of format 212 take 7.5 bytes, i.e. 8: a file of 7 is truncated. Guards
    against rounding the size down."""
    base = tmp_path / "r"
    wfdb.wrsamp("r", fs=125, units=["NU"], sig_name=["PLETH"],
                p_signal=np.arange(5.0)[:, None], fmt=["212"], write_dir=str(tmp_path))  # fmt: skip
    dat = base.with_suffix(".dat")
    assert dat.stat().st_size == 8
    dat.write_bytes(dat.read_bytes()[:7])
    with pytest.raises(DataError, match="truncated: 7 bytes"):
        read_wfdb(base)


def test_a_wfdb_start_comment_is_the_recording_s_clock(tmp_path: Path) -> None:
    """``start_s=42.5`` (what ``innpar reconstruct`` writes) is ``meta["start_s"]``; a
    comment that is not a finite number is no clock. Guards against ignoring the comment,
    reading it one character late (``2.5``), or keeping ``nan``."""
    assert read_wfdb(_wfdb(tmp_path / "a", comments=["start_s=42.5"])).meta["start_s"] == 42.5
    for text in ("start_s=nan", "start_s=soon"):
        rec = read_wfdb(_wfdb(tmp_path / text[8:], comments=["note", text]))
        assert "start_s" not in rec.meta and rec.meta["comments"] == ["note", text]


def test_wfdb_channels_are_float64(tmp_path: Path) -> None:
    """Guards against reading channels in single precision (values of 16-bit records
    with a fine gain rounded)."""
    rec = read_wfdb(_wfdb(tmp_path))
    assert rec.signals["PLETH"].dtype == np.float64 and rec.units == {"PLETH": "NU"}


def test_a_mimic_style_variable_layout_record_with_a_gap_is_read(tmp_path: Path) -> None:
    """Bug found by the audit: a variable-layout multi-segment record (MIMIC's waveform
        databases) starts with a layout segment of length 0 whose header names no signal file
        (``~``), and a ``~`` segment is a gap. It was refused: "m_layout holds no samples". The
        layout is a list of channels, listed among the record's files (provenance, and outputs
    that must not replace them) but not checked as a record; the gap is NaN."""
    for name, start, n in (("m_0001", 1.0, 4), ("m_0002", 2.0, 3)):
        values = (start + np.arange(n))[:, None]
        wfdb.wrsamp(name, fs=125, units=["NU"], sig_name=["PLETH"], p_signal=values,
                    fmt=["16"], write_dir=str(tmp_path))  # fmt: skip
    (tmp_path / "m_layout.hea").write_text("m_layout 1 125 0\n~ 0 1/NU 16 0 0 0 0 PLETH\n")
    (tmp_path / "m.hea").write_text("m/4 1 125 9\nm_layout 0\nm_0001 4\n~ 2\nm_0002 3\n")
    assert [p.name for p in check_wfdb_files(tmp_path / "m")] == [
        "m.hea", "m_layout.hea", "m_0001.hea", "m_0001.dat", "m_0002.hea", "m_0002.dat"
    ]  # fmt: skip
    rec = read_wfdb(tmp_path / "m")
    np.testing.assert_allclose(
        rec.signals["PLETH"], [1, 2, 3, 4, np.nan, np.nan, 2, 3, 4], rtol=1e-4
    )
    (tmp_path / "m_0002.dat").write_bytes(b"\0\0")  # 2 of 6 bytes: still checked
    with pytest.raises(DataError, match=r"m_0002\.dat is truncated"):
        read_wfdb(tmp_path / "m")


def test_a_real_record_and_its_truncated_copy(real_data: Path, tmp_path: Path) -> None:
    """Record 100 of the provided data: 4 signals at 250 Hz, 75000 samples in a ``.mat``
    file of 24 + 75000 * 4 * 2 = 600024 bytes; a copy one byte short is truncated. Guards
    against the byte offset or the per-signal bytes being left out of the size check."""
    for suffix in (".hea", ".mat"):
        shutil.copy(real_data / "wfdb" / "training" / f"100{suffix}", tmp_path / f"100{suffix}")
    rec = read_wfdb(tmp_path / "100")
    assert rec.fs == 250.0 and rec.n_samples == 75000
    assert rec.channels == ["II", "V", "PLETH", "ABP"] and rec.units["ABP"] == "mmHg"
    mat = tmp_path / "100.mat"
    assert mat.stat().st_size == 600024
    mat.write_bytes(mat.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"truncated: 600023 bytes.*600024 bytes"):
        read_wfdb(tmp_path / "100")


# ----------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("name", ["timestamp", "Time (s)", "time_s", "T"])
def test_time_columns_are_found_under_their_usual_names(tmp_path: Path, name: str) -> None:
    """Times 3600, 3600.01, ... in a column called ``timestamp``, ``Time (s)``, ``time_s``
    or ``T`` give 100 Hz and the clock 3600 s. Guards against names compared as written
    (``time_s`` and ``Time (s)`` became channels), ``timestamp`` left out, and the clock
    starting at 0 instead of the first time."""
    t = 3600.0 + np.arange(50) / 100.0
    rec = read_csv(write_csv(tmp_path / "r.csv", {name: t, "PPG": np.ones(50)}))
    assert rec.fs == 100.0 and rec.channels == ["PPG"]
    assert rec.meta["time_column"] == name and rec.meta["start_s"] == 3600.0


def test_a_named_time_column_that_is_not_there_is_named(tmp_path: Path) -> None:
    """Guards against dropping the check (a ``KeyError`` traceback)."""
    path = write_csv(tmp_path / "r.csv", {"PPG": np.ones(5)})
    with pytest.raises(DataError, match="has no time column 'sec'; columns: PPG"):
        read_csv(path, 125.0, time_column="sec")


def test_a_time_column_of_clock_strings_takes_the_given_rate(tmp_path: Path) -> None:
    """``12:00:00.000`` is not seconds: with ``fs`` given, the column is set aside and the
    rate is the given one, with no clock. Guards against refusing such files ("holds no
    times in seconds") even when the rate is given."""
    path = tmp_path / "r.csv"
    path.write_text("time,PPG\n12:00:00.000,1\n12:00:00.008,2\n12:00:00.016,3\n")
    rec = read_csv(path, 125.0)
    assert rec.fs == 125.0 and rec.meta == {"time_column": "time"}
    np.testing.assert_array_equal(rec.signals["PPG"], [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="holds no times in seconds; give fs=HZ"):
        read_csv(path)


def test_cells_that_are_not_numbers_are_nan_and_short_rows_named_by_line(tmp_path: Path) -> None:
    """A cell ``n/a`` or an empty one is NaN (the docstring's rule); a row with too few
    values names its line in the file (the header is line 1). Guards against refusing
    the file for one text cell and against counting lines from 0 or from the data."""
    path = tmp_path / "r.csv"
    path.write_text("PPG,ABP\n1,80\nn/a,81\n3,\n")
    rec = read_csv(path, 125.0)
    np.testing.assert_array_equal(rec.signals["PPG"], [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(rec.signals["ABP"], [80.0, 81.0, np.nan])
    path.write_text("PPG,ABP\n1,80\n2,81\n3\n")
    with pytest.raises(DataError, match="row 4 has 1 values, the header has 2"):
        read_csv(path, 125.0)


def test_blank_lines_after_the_last_row_are_no_samples(tmp_path: Path) -> None:
    """An editor's or exporter's empty lines, or a spreadsheet's rows of empty cells, at the
    end of a file. Guards against refusing the file ("row 5 has 0 values", "row 6 has no
    time") and against skipping a blank line between rows."""
    path = tmp_path / "r.csv"
    path.write_text("time,PPG\n0,1\n0.008,2\n0.016,3\n\n,\n \n")
    rec = read_csv(path)
    assert rec.fs == 125.0
    np.testing.assert_array_equal(rec.signals["PPG"], [1.0, 2.0, 3.0])
    path.write_text("time,PPG\n0,1\n\n0.016,3\n")
    with pytest.raises(DataError, match="row 3 has 0 values"):
        read_csv(path)


def test_a_row_of_units_under_the_header_gives_the_units_and_is_no_sample(tmp_path: Path) -> None:
    """A device's export with units under the names. Guards against "row 2 has no time
    (seconds)" (with a time column) and against a first sample of NaN (without one)."""
    path = tmp_path / "r.csv"
    path.write_text("time,PPG,ABP\ns,a.u.,kPa\n10,1,10\n10.008,2,11\n10.016,3,12\n")
    rec = read_csv(path)
    assert rec.fs == 125.0 and rec.meta["start_s"] == 10.0
    assert rec.units == {"PPG": "a.u.", "ABP": "kPa"}
    np.testing.assert_array_equal(rec.signals["ABP"], [10.0, 11.0, 12.0])
    path.write_text("PPG,ABP\na.u.,mmHg\n1,80\n2,81\n")
    rec = read_csv(path, 125.0)
    np.testing.assert_array_equal(rec.signals["PPG"], [1.0, 2.0])
    # A first row of missing values is a sample (NaN), not units: the clock stays put.
    path.write_text("PPG,ABP\nn/a,N/A\n1,80\n2,81\n")
    rec = read_csv(path, 125.0)
    np.testing.assert_array_equal(rec.signals["PPG"], [np.nan, 1.0, 2.0])
    assert rec.units == {}
    # Lines are still counted from the header: the units row is line 2.
    path.write_text("time,PPG\ns,a.u.\n0,1\n0.008,2\n0.004,3\n")
    with pytest.raises(DataError, match=r"not increasing: row 5 is at 0\.004 s"):
        read_csv(path)


def test_physionet_rdsamp_csv_is_read_as_it_is(tmp_path: Path) -> None:
    """``rdsamp -r 100 -c -p -v`` (and the PhysioBank ATM's samples.csv): names and units in
    single quotes, a units row, the time column 'Elapsed time' in seconds, or with ``-pe``
    as elapsed hh:mm:ss.mmm strings. Guards against reading it as channels named "'ABP'"
    with no rate ("rate unknown")."""
    path = tmp_path / "samples.csv"
    path.write_text(
        "'Elapsed time','PLETH','ABP'\n'seconds','NU','mmHg'\n"
        "0.000,0.5,80.0\n0.008,0.6,90.0\n0.016,0.7,100.0\n"
    )
    rec = read_csv(path)
    assert rec.fs == 125.0 and list(rec.signals) == ["PLETH", "ABP"]
    assert rec.units == {"PLETH": "NU", "ABP": "mmHg"}
    assert rec.meta == {"time_column": "Elapsed time", "start_s": 0.0}
    np.testing.assert_array_equal(rec.signals["ABP"], [80.0, 90.0, 100.0])
    path.write_text(
        "'Elapsed time','PLETH'\n'hh:mm:ss.mmm','NU'\n"
        "'[1:00:59.992]',0.5\n'[1:01:00.000]',0.6\n'[1:01:00.008]',0.7\n"
    )
    rec = read_csv(path)
    assert rec.fs == pytest.approx(125.0) and rec.meta["start_s"] == pytest.approx(3659.992)
    np.testing.assert_array_equal(rec.signals["PLETH"], [0.5, 0.6, 0.7])
    path.write_text("'Elapsed time','PLETH'\n'ms','NU'\n1000,0.5\n1004,0.6\n1008,0.7\n")
    rec = read_csv(path)
    assert rec.fs == pytest.approx(250.0) and rec.meta["start_s"] == 1.0


def test_a_time_column_named_in_milliseconds_is_read_as_milliseconds(tmp_path: Path) -> None:
    """Wearables and loggers name their clock 'time_ms', 'Time [ms]' or 'timestamp_ms'.
    Bug: such a column was no time column at all (a channel named 'time_ms', and 'give
    --fs'), and 'Time (sec)' neither; now each gives the rate on its unit's clock."""
    path = tmp_path / "r.csv"
    for name in ("time_ms", "Time [ms]", "timestamp_ms", "TimeMilliseconds"):
        path.write_text(f"{name},PPG\n1000,0.5\n1004,0.6\n1008,0.7\n")
        rec = read_csv(path)
        assert rec.fs == pytest.approx(250.0) and rec.meta["start_s"] == 1.0, name
        assert list(rec.signals) == ["PPG"] and rec.meta["time_column"] == name
    for name in ("Time (sec)", "time_seconds", "Timestamp [s]"):
        path.write_text(f"{name},PPG\n1.000,0.5\n1.004,0.6\n1.008,0.7\n")
        rec = read_csv(path)
        assert rec.fs == pytest.approx(250.0) and rec.meta["start_s"] == 1.0, name
    # A units row still says what the column holds, whatever its name.
    path.write_text("time_ms,PPG\ns,NU\n1.000,0.5\n1.004,0.6\n1.008,0.7\n")
    assert read_csv(path).fs == pytest.approx(250.0)
    # Names that only start like one are channels: 'timer' is no clock.
    path.write_text("timer,PPG\n1,0.5\n2,0.6\n3,0.7\n")
    rec = read_csv(path, 100.0)
    assert list(rec.signals) == ["timer", "PPG"] and "time_column" not in rec.meta


def test_time_columns_in_microseconds_and_nanoseconds(tmp_path: Path) -> None:
    """Some loggers count their clock in microseconds, and pandas writes Unix times in
    nanoseconds (1.7e18, beyond float64's whole numbers). Bug: 'time_us' and 'timestamp_ns'
    were channels ('give --fs'), and a units row of 'us' was refused as another unit; each
    now gives the rate on its unit's clock, and its first time as the start in seconds."""
    path = tmp_path / "r.csv"
    for name, unit_row in (("time_us", ""), ("Time [µs]", ""), ("Time [μs]", ""),
                           ("time", "us,NU\n"), ("TimeMicroseconds", "")):  # fmt: skip
        path.write_text(f"{name},PPG\n{unit_row}1000000,0.5\n1008000,0.6\n1016000,0.7\n")
        rec = read_csv(path)
        assert rec.fs == 125.0 and rec.meta["start_s"] == 1.0, name
        assert list(rec.signals) == ["PPG"], name
    t = [1_700_000_000_123_456_789 + 8_000_000 * i for i in range(500)]
    for name, unit_row in (("timestamp_ns", ""), ("time", "ns,NU\n")):
        path.write_text(f"{name},PPG\n{unit_row}" + "".join(f"{a},{a % 7}\n" for a in t))
        rec = read_csv(path)
        assert rec.fs == 125.0 and rec.n_samples == 500, name
        assert rec.meta["start_s"] == pytest.approx(1_700_000_000.123456789, abs=1e-6), name


def test_a_time_column_of_a_smaller_unit_read_as_seconds_names_the_unit(tmp_path: Path):
    """A column of microseconds named 'time' steps by 8000 'seconds' per sample: the message
    says what rate it would be in microseconds and how to say so, as it does for ms. Guards
    against the hint naming ms (0.125 Hz) where the times are microseconds or nanoseconds."""
    path = tmp_path / "r.csv"
    for step, what in ((8, "milliseconds"), (8000, "microseconds"), (8_000_000, "nanoseconds")):
        path.write_text("time,PPG\n" + "".join(f"{i * step},{i % 7}\n" for i in range(50)))
        with pytest.raises(DataError) as err:
            read_csv(path)
        short = {"milliseconds": "ms", "microseconds": "us", "nanoseconds": "ns"}[what]
        assert f"(125 Hz if they are {what}); for {what} name the column time_{short}" in str(
            err.value
        ) and f"or put a row of units (s, {short})" in str(err.value)


def test_unix_times_in_ms_give_the_rate_exactly(tmp_path: Path) -> None:
    """A logger's Unix clock in ms (1.7e12) at 125 Hz. Bug: divided as they were, the times
    kept 1e-7 s of rounding each, and the rate came out as 124.999997 Hz, written so into
    every output's header; steps are now taken before the division. Messages still give
    the file's clock."""
    path = tmp_path / "r.csv"
    t = 1_700_000_000_000 + 8 * np.arange(500)
    path.write_text("timestamp_ms,PPG\n" + "".join(f"{a},{a % 7}\n" for a in t))
    rec = read_csv(path)
    assert rec.fs == 125.0 and rec.meta["start_s"] == 1_700_000_000.0
    path.write_text("time,PPG\n3600.0,1\n3600.5,2\n3600.25,3\n")
    with pytest.raises(DataError, match=r"row 4 is at 3600\.25 s, the row before at 3600\.5 s"):
        read_csv(path)


def test_unix_seconds_with_ms_decimals_give_the_rate_exactly(tmp_path: Path) -> None:
    """A logger's Unix clock in seconds with ms decimals (1700000000.008) at 125 Hz, 4 s of
    it. Bug: float64 holds such times to 2.4e-7 s, and the rate came out as 124.999997 Hz;
    the times are now subtracted from the first in decimal, as written. A time column of
    small times, and rows after a missing time, read as before."""
    path = tmp_path / "r.csv"
    t = 1_700_000_000_000 + 8 * np.arange(500)
    path.write_text("time,PPG\n" + "".join(f"{a // 1000}.{a % 1000:03d},{a % 7}\n" for a in t))
    rec = read_csv(path)
    assert rec.fs == 125.0 and rec.meta["start_s"] == 1_700_000_000.0
    assert rec.n_samples == 500
    rows = path.read_text().splitlines()
    rows[5] = "," + rows[5].split(",")[1]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="row 6 has no time"):
        read_csv(path)


def test_a_time_column_in_another_unit_is_named(tmp_path: Path) -> None:
    """Guards against taking a time column in minutes (its units row says so) as seconds."""
    path = tmp_path / "r.csv"
    path.write_text("time,PPG\nmin,NU\n0,1\n0.001,2\n0.002,3\n")
    with pytest.raises(DataError, match="time column 'time' is in 'min' \\(its units row\\)"):
        read_csv(path)


def test_numbers_with_a_decimal_comma_are_named(tmp_path: Path) -> None:
    """A spreadsheet in a European locale quotes its "0,008" in a comma-separated file.
    Guards against reading them as text (NaN): the error was "time column 'time' holds no
    times in seconds", or, with a rate, "holds no valid samples (all NaN)"."""
    path = tmp_path / "r.csv"
    path.write_text('time,PPG\n"0","1,5"\n"0,008","2,5"\n')
    with pytest.raises(DataError, match=r"row 2, column 'PPG' holds '1,5', a number with a dec"):
        read_csv(path)
    path.write_text('PPG,ABP\n1,80\n"2,5",81\n')
    with pytest.raises(DataError, match=r"row 3, column 'PPG' holds '2,5'"):
        read_csv(path, 125.0)


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    """Spreadsheets save "CSV UTF-8" with a byte-order mark. Guards against reading it as
    text: ``--time-column time`` was "no time column 'time'; columns: time, PPG" (the mark
    is invisible), and a quoted first name kept its quotes (``\ufeff"time"``)."""
    path = tmp_path / "r.csv"
    path.write_bytes(b'\xef\xbb\xbf"time","PPG"\n0,1\n0.008,2\n')
    rec = read_csv(path, time_column="time")
    assert rec.channels == ["PPG"] and rec.fs == 125.0 and rec.meta["time_column"] == "time"


def test_tab_separated_files_are_named(tmp_path: Path) -> None:
    """Guards against naming only semicolons: a tab-separated file was one channel called
    ``time\\tPPG`` and "has no PPG channel"."""
    path = tmp_path / "r.csv"
    path.write_text("time\tPPG\n0\t1\n0.008\t2\n")
    with pytest.raises(DataError, match="separated by tabs"):
        read_csv(path)


def test_channels_named_by_numbers_beside_a_time_column_are_a_header(tmp_path: Path) -> None:
    """``time,1,2`` is a header (a device numbering its inputs); only a first row of
    numbers throughout is data. Guards against refusing a header with any numeric name."""
    path = tmp_path / "r.csv"
    path.write_text("time,1,2\n0,5,6\n0.008,7,8\n0.016,9,10\n")
    rec = read_csv(path)
    assert rec.channels == ["1", "2"] and rec.fs == 125.0
    np.testing.assert_array_equal(rec.signals["2"], [6.0, 8.0, 10.0])


def test_duplicate_and_padded_column_names(tmp_path: Path) -> None:
    """Names are stripped (`` PPG`` is ``PPG``) and two columns of one name are refused.
    Guards against keeping the spaces and against dropping the duplicate check (the
    second column silently replaced the first)."""
    path = tmp_path / "r.csv"
    path.write_text("time, PPG , ABP\n0,1,80\n0.008,2,81\n")
    assert read_csv(path).channels == ["PPG", "ABP"]
    path.write_text("time,PPG, PPG\n0,1,2\n0.008,3,4\n")
    with pytest.raises(DataError, match="duplicate column names"):
        read_csv(path)


def test_empty_unnamed_columns_are_no_channels(tmp_path: Path) -> None:
    """A spreadsheet's export with two empty columns after the last (``time,PPG,,``).
    Guards against refusing it as "duplicate column names" and against dropping an
    unnamed column that holds values."""
    path = tmp_path / "r.csv"
    path.write_text("time,PPG,,\n0,1,,\n0.008,2,,\n0.016,3,,\n")
    rec = read_csv(path)
    assert rec.channels == ["PPG"]
    np.testing.assert_array_equal(rec.signals["PPG"], [1.0, 2.0, 3.0])
    path.write_text("time,PPG,,\n0,1,,\n0.008,2,5,6\n0.016,3,,\n")
    with pytest.raises(DataError, match="duplicate column names"):
        read_csv(path)


def test_a_csv_that_is_not_text_is_named(tmp_path: Path) -> None:
    """Guards against a ``UnicodeDecodeError`` traceback for a binary file named .csv."""
    path = tmp_path / "r.csv"
    path.write_bytes(b"time,PPG\n\xff\xfe\x81,1\n")
    with pytest.raises(DataError, match="is not UTF-8 text: line 2 holds byte 0xff"):
        read_csv(path)


def test_a_missing_time_is_named_by_its_line(tmp_path: Path) -> None:
    """The time cell of line 3 (the second data row) is empty. Guards against naming
    line 2."""
    path = tmp_path / "r.csv"
    path.write_text("time,PPG\n0,1\n,2\n0.016,3\n")
    with pytest.raises(DataError, match="row 3 has no time"):
        read_csv(path)


def test_one_row_or_a_repeated_time_cannot_give_a_rate(tmp_path: Path) -> None:
    """One row has no step; a time repeated is not increasing (named as such, with its
    line). Guards against accepting one row and against letting equal times through to
    the irregular-step check."""
    path = tmp_path / "r.csv"
    path.write_text("time,PPG\n0,1\n")
    with pytest.raises(DataError, match="one row cannot give a sampling rate"):
        read_csv(path)
    path.write_text("time,PPG\n0,1\n0.008,2\n0.008,3\n0.024,4\n")
    with pytest.raises(DataError, match=r"is not increasing: row 4 is at 0\.008 s"):
        read_csv(path)


def test_a_bad_row_on_a_unix_clock_is_named_by_its_time_to_the_millisecond(
    tmp_path: Path,
) -> None:
    """A time column in Unix seconds (1.7e9) repeats a time: the row is named at
    1700000000.008 s. Guards against ":g", which named both rows at "1.7e+09 s"."""
    path = tmp_path / "r.csv"
    path.write_text(
        "time,PPG\n1700000000,1\n1700000000.008,2\n1700000000.008,3\n1700000000.024,4\n"
    )
    with pytest.raises(
        DataError, match=r"row 4 is at 1700000000\.008 s, the row before at 1700000000\.008 s"
    ):
        read_csv(path)


def test_a_step_of_one_and_a_half_periods_is_irregular(tmp_path: Path) -> None:
    """Steps of 10 ms with one of 15 ms: 1.5 periods is neither one sample nor a missing
    one. Guards against a tolerance of half a period (the step rounded to 2 periods and
    filled with a NaN sample that was never missing)."""
    t = np.arange(40) * 0.01
    t[20:] += 0.005
    path = write_csv(tmp_path / "r.csv", {"time": t, "PPG": np.ones(40)})
    with pytest.raises(DataError, match="irregular at row 22"):
        read_csv(path)


def test_128_hz_times_rounded_to_the_millisecond_are_128_hz(tmp_path: Path) -> None:
    """128 Hz timestamps rounded to 1 ms step by 7 or 8 ms (0.90-1.02 periods, up to 0.104
    period off): accepted, and the rate is the span's, 128 Hz (the median step, 8 ms,
    would say 125 Hz). Guards against a tolerance below 0.1 period and against taking the
    median step for the period."""
    n = 1281
    t = np.round(np.arange(n) / 128.0, 3)
    assert set(np.round(np.diff(t), 3)) == {0.007, 0.008} and t[-1] == 10.0
    rec = read_csv(write_csv(tmp_path / "r.csv", {"time": t, "PPG": np.ones(n)}))
    assert rec.fs == 128.0 and rec.n_samples == n and "missing_samples" not in rec.meta


def test_a_jump_far_beyond_the_rows_is_a_broken_time_column(tmp_path: Path) -> None:
    """10 rows at 100 Hz, then a jump of 1 hour: 360000 samples for 10 rows is not a gap.
    Guards against filling it (a 2.9 MB array of NaN per channel from a typo)."""
    t = np.concatenate([np.arange(10) * 0.01, 3600.0 + np.arange(10) * 0.01])
    path = write_csv(tmp_path / "r.csv", {"time": t, "PPG": np.ones(20)})
    with pytest.raises(DataError, match=r"jumps by 3599\.91 s at row 12"):
        read_csv(path)


def test_a_10_hz_time_column_is_10_hz_not_milliseconds(tmp_path: Path) -> None:
    """The milliseconds hint is for rates below 10 Hz; 10 Hz itself is read. Guards
    against the bound made inclusive."""
    path = write_csv(tmp_path / "r.csv", {"time": np.arange(30) / 10.0, "PPG": np.ones(30)})
    assert read_csv(path).fs == 10.0


# ------------------------------------------------------------------------------ NPZ, NPY


def test_an_npz_clock_that_is_not_a_number_is_listed_not_used(tmp_path: Path) -> None:
    """``start_s=nan`` is not a clock; it is listed among the arrays that are not
    channels. Guards against keeping ``nan`` as the recording's start."""
    np.savez(tmp_path / "r.npz", PPG=np.ones(4), fs=125.0, start_s=np.nan)
    rec = read_npz(tmp_path / "r.npz")
    assert "start_s" not in rec.meta and rec.meta["ignored_arrays"] == [
        "start_s (float64 of shape ())"
    ]
    np.savez(tmp_path / "r.npz", PPG=np.ones(4), fs=125.0, start_s=7.25)
    assert read_npz(tmp_path / "r.npz").meta == {"start_s": 7.25}


def test_npz_channels_of_shape_1_by_l_are_read_and_others_set_aside(tmp_path: Path) -> None:
    """A (1, L) array is a channel; a boolean mask is not (it is listed); a complex array
    is an error. Guards against not squeezing, reading booleans as channels, and complex
    arrays dropped without a word."""
    np.savez(tmp_path / "r.npz", PPG=np.arange(4.0)[None, :], valid=np.ones(4, bool), fs=125)
    rec = read_npz(tmp_path / "r.npz")
    assert rec.channels == ["PPG"] and rec.meta["ignored_arrays"] == ["valid (bool of shape (4,))"]
    np.testing.assert_array_equal(rec.signals["PPG"], [0.0, 1.0, 2.0, 3.0])
    np.savez(tmp_path / "c.npz", PPG=np.ones(4), IQ=np.ones(4) * 1j, fs=125)
    with pytest.raises(DataError, match="array 'IQ' holds complex numbers"):
        read_npz(tmp_path / "c.npz")


def test_npz_channels_of_different_lengths_are_refused(tmp_path: Path) -> None:
    """Guards against accepting channels of three different lengths (the check compared
    with two)."""
    np.savez(tmp_path / "r.npz", a=np.ones(3), b=np.ones(4), c=np.ones(5), fs=125.0)
    with pytest.raises(DataError, match="channels have different lengths"):
        read_npz(tmp_path / "r.npz")


def test_a_corrupt_zip_named_npz_is_named(tmp_path: Path) -> None:
    """A file that starts like a zip but is cut short. Guards against a
    ``BadZipFile`` traceback."""
    path = tmp_path / "r.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(DataError, match=r"is not a readable \.npz file"):
        read_npz(path)


def test_random_bytes_do_not_advise_allowing_pickles(tmp_path: Path) -> None:
    """np.load's advice ("allow_pickle=True") would run code from a foreign file. Guards
    against passing its message on."""
    (tmp_path / "r.npy").write_bytes(b"\x80\x04junk" * 10)
    with pytest.raises(DataError, match="not a NumPy file of numbers") as err:
        read_npy(tmp_path / "r.npy", 125.0)
    assert "allow_pickle" not in str(err.value)


def test_an_npy_of_one_row_is_read_and_one_of_text_is_refused(tmp_path: Path) -> None:
    """Shape (1, L) is one signal; an array of strings is not a signal. Guards against not
    squeezing and against a ``ValueError`` traceback converting text to float."""
    np.save(tmp_path / "r.npy", np.arange(3.0)[None, :])
    rec = read_npy(tmp_path / "r.npy", 125.0, channel="pleth")
    assert rec.channels == ["pleth"]
    np.testing.assert_array_equal(rec.signals["pleth"], [0.0, 1.0, 2.0])
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(DataError, match="must hold one numeric signal"):
        read_npy(tmp_path / "s.npy", 125.0)


def test_an_npy_of_booleans_or_complex_numbers_is_refused_by_its_type(tmp_path: Path) -> None:
    """Guards against naming only the shape, which was right ("got (3,)"), and against
    reading complex numbers as their real part (NPZ channels refuse them)."""
    np.save(tmp_path / "b.npy", np.array([True, False, True]))
    with pytest.raises(DataError, match=r"got bool of shape \(3,\)"):
        read_npy(tmp_path / "b.npy", 125.0)
    np.save(tmp_path / "c.npy", np.array([1 + 2j, 3, 4]))
    with pytest.raises(DataError, match=r"got complex128 of shape \(3,\)"):
        read_npy(tmp_path / "c.npy", 125.0)


# ---------------------------------------------------------------- detection and folders


def test_suffixes_in_capitals_and_an_explicit_format(tmp_path: Path) -> None:
    """``R.CSV`` is CSV; ``--format csv`` reads ``r.txt`` as CSV. Guards against the
    suffix compared as written and against the given format being ignored."""
    write_csv(tmp_path / "R.CSV", {"time": np.arange(3) / 125.0, "PPG": np.ones(3)})
    assert detect_format(tmp_path / "R.CSV") == "csv"
    shutil.copy(tmp_path / "R.CSV", tmp_path / "r.txt")
    assert read_recording(tmp_path / "r.txt", "csv").fs == 125.0


def test_files_under_are_sorted(tmp_path: Path) -> None:
    """Guards against returning files in the folder's order (imports were then in a
    different order on another machine)."""
    for name in ("b.csv", "a.csv", "c.CSV"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "0.csv").write_text("x")
    names = [p.relative_to(tmp_path).as_posix() for p in files_under(tmp_path, ".csv")]
    assert names == ["a.csv", "b.csv", "c.CSV", "sub/0.csv"]


def test_a_recording_that_is_not_there_is_not_found(tmp_path: Path) -> None:
    """Guards against "cannot tell the format of ...", which reads as a file of a wrong kind,
    for a path that is not there at all (a typo), whatever its suffix."""
    for name in ("rec", "rec.hea", "rec.csv", "rec.npz"):
        with pytest.raises(DataError, match=f"recording not found: .*{name}$"):
            read_recording(tmp_path / name)
    path = tmp_path / "rec.txt"
    path.write_text("x")
    with pytest.raises(DataError, match="cannot tell the format"):
        read_recording(path)
