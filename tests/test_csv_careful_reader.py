# ruff: noqa: E501  (EXPECTED holds the messages whole, as the reader gives them)
"""The careful CSV reader (``recordings._careful_table``: every file that is not a plain
table of numbers, PhysioNet's CSV export above all) on awkward files: quoted names, units
rows, clock strings, empty cells, text in a column of numbers, blank lines, ragged rows,
lines above the table, a byte-order mark, undecodable bytes. Each file's channels, rate,
units, meta (warnings too) or error message are pinned as the reader gave them when it held
every cell of the file as text (``EXPECTED`` was printed by that reader, at commit
c4b5dd7): reading row by row into float64 columns must change none of them. And what it
holds: about 420 bytes a row of PhysioNet's three columns as text, now the numbers."""

from __future__ import annotations

import hashlib
import tracemalloc
from math import nan
from pathlib import Path
from typing import Any

import pytest

from innpar_freia.data import recordings
from innpar_freia.errors import DataError

# name -> (the file's text, read_csv's keyword arguments)
PN = "'Elapsed time','PLETH','ABP'\n'hh:mm:ss.mmm','NU','mmHg'\n"
CASES = {
    "physionet_clock": (
        PN + "'[00:00:00.000]',0.5,80\n'[00:00:00.008]',0.6,81\n'[00:00:00.016]',,82\n"
        "'[00:00:00.024]',0.8,-\n'[00:00:00.032]',0.9,84\n",
        {},
    ),
    "physionet_clock_over_an_hour_given_fs": (
        PN + "'[1:00:59.992]',0.5,80\n'[1:01:00.000]',0.6,81\n'[1:01:00.008]',0.7,82\n",
        {"fs": 125.0},
    ),
    "physionet_clock_gap_and_text": (
        PN + "'[00:00:00.000]',0.5,80\n'[00:00:00.008]',oops,81\n'[00:00:00.024]',0.8,x\n"
        "'[00:00:00.032]',0.9,84\n\n\n",
        {},
    ),
    "physionet_clock_unreadable_time": (
        PN + "'[00:00:00.000]',0.5,80\n'soon',0.6,81\n'[00:00:00.016]',0.7,82\n",
        {},
    ),
    "physionet_seconds_kpa": (
        "'Elapsed time','PLETH','ABP'\n'seconds','NU','kPa'\n0.000,0.5,10.6\n0.008,0.6,10.8\n"
        "0.016,0.7,11.0\n",
        {},
    ),
    "physionet_ms_crlf": (
        "'Elapsed time','PLETH'\r\n'ms','NU'\r\n1000,0.5\r\n1004,0.6\r\n1008,0.7\r\n",
        {},
    ),
    "physionet_bom": (
        "\ufeff'Elapsed time','PLETH','ABP'\n'seconds','NU','mmHg'\n0,1,80\n0.008,2,81\n",
        {},
    ),
    "physionet_two_clocks": (
        "'Elapsed time','time_ms','PLETH'\n'hh:mm:ss.mmm','ms','NU'\n'[00:00:00.000]',0,1\n"
        "'[00:00:00.008]',8,2\n'[00:00:00.016]',16,3\n",
        {},
    ),
    "physionet_two_clocks_disagree": (
        "'Elapsed time','time_ms','PLETH'\n'hh:mm:ss.mmm','ms','NU'\n'[00:00:00.000]',0,1\n"
        "'[00:00:00.008]',8,2\n'[00:00:00.016]',20,3\n",
        {},
    ),
    "clock_strings_two_time_columns_given_fs": (
        "time,time_ms,PPG\n12:00:00.000,0,1\n12:00:00.008,8,2\n12:00:00.016,16,3\n",
        {"fs": 125.0},
    ),
    "clock_strings_without_fs": ("time,PPG\n12:00:00.000,1\n12:00:00.008,2\n", {}),
    "quoted_names_given_fs": ("'PLETH','ABP'\n0.5,80\n0.6,81\n", {"fs": 100.0}),
    "double_quoted_bom_time_column": (
        '\ufeff"time","PPG"\n0,1\n0.008,\n0.016,3\n',
        {"time_column": "time"},
    ),
    "no_such_time_column": ("'PLETH','ABP'\n0.5,80\n", {"fs": 100.0, "time_column": "sec"}),
    "text_and_missing_marks": (
        "time,PPG,ABP,label\n0,1,80,a\n0.008,abc,81,b\n0.016,3,oops,c\n0.024,n/a,NULL,d\n"
        "0.032,?,84,e\n0.040,,85,f\n",
        {},
    ),
    "units_row_of_missing_marks_is_a_sample": ("PPG,ABP\nn/a,N/A\n1,80\n2,81\n", {"fs": 125.0}),
    "units_row_with_a_decimal_comma_unit": ('PPG,ABP\n"0,5",mmHg\n1,80\n2,81\n', {"fs": 125.0}),
    "t_not_increasing_with_text": ("t,PPG\n36.5,1\n36.4,zz\n36.6,3\n", {"fs": 125.0}),
    "blank_line_between_rows": ("time,PPG\n0,1\n\n0.016,3\n", {}),
    "blank_lines_and_empty_rows_at_the_end": ("time,PPG\n0,1\n0.008,2\n0.016,3\n\n,\n \n", {}),
    "row_of_empty_cells_between_rows": ("time,PPG,ABP\n0,1,80\n,,\n0.016,3,82\n", {}),
    "short_row": ("PPG,ABP\n1,80\n2,81\n3\n", {"fs": 125.0}),
    "long_row": ("PPG,ABP\n1,80\n2,81,7\n3,82\n", {"fs": 125.0}),
    "short_row_then_decimal_comma": ('PPG,ABP\n1,80\n"2,5",81\n3\n', {"fs": 125.0}),
    "decimal_comma_then_short_row": ('PPG,ABP\n1,80\n3\n"2,5",81\n', {"fs": 125.0}),
    "decimal_comma_in_time": ('time,PPG\n"0","1,5"\n"0,008","2,5"\n', {}),
    "trailing_unnamed_columns": ("time,PPG,,\n0,1,,\n0.008,2\n0.016,3,,\n", {}),
    "unnamed_column_with_values": ("time,PPG,,\n0,1,,\n0.008,2,5,6\n0.016,3,,\n", {}),
    "unnamed_column_before_units": ("time,,PPG\ns,,NU\n0,,1\n0.008,,2\n0.016,,3\n", {}),
    "lines_above_the_table": (
        "Device: X\nSampling rate: 250 Hz\n\ntime,PLETH,ABP\n0,1,80\n0.008,2,81\n0.016,3,82\n",
        {},
    ),
    "blank_lines_above_the_table": ("Device: X\n\n\ntime,PPG\n0,1\n0.008,2\n", {}),
    "text_in_the_first_row_and_later": ("PPG,ABP\nabc,80\nxyz,81\n3,oops\n", {"fs": 125.0}),
    "one_line_above_the_table": ("Exported by Y\ntime,PPG\n0,1\n0.008,2\n", {}),
    "semicolons": ("time;PLETH\n0;1\n0.008;2\n", {}),
    "tabs": ("time\tPLETH\n0\t1\n0.008\t2\n", {}),
    # A spreadsheet's export in a European locale: split at its decimal commas, its rows
    # were wider than the header, and the advice was to remove the header as a line above.
    "semicolons_and_decimal_commas": ("time;PLETH;ABP\n0,0000;2,01357;80,5\n0,0040;2,02;81\n", {}),
    "tabs_and_decimal_commas": ("time\tPLETH\n0\t1,25\n0,004\t2,5\n", {}),
    "duplicate_names": ("time,PPG, PPG\n0,1,2\n0.008,3,4\n", {}),
    "header_of_numbers": ("0,0.5,80\n0.008,0.6,81\n", {}),
    "header_only": ("'time','PPG'\n", {}),
    "header_and_blank_rows": ("time,PPG\n\n,\n", {}),
    "empty_file": ("", {}),
    "first_line_blank": ("\ntime,PPG\n0,1\n", {}),
    "not_utf8": (b"time,PPG\n\xff\xfe\x81,1\n", {}),
    "not_utf8_after_a_duplicate_name": (b"time,PPG,PPG\n0,1,2\n0.008,2,3\n\xff,1,1\n", {}),
    # A spreadsheet's Latin-1 export and Excel's "Unicode Text" (UTF-16, with its mark or
    # without): the decoder's "'utf-8' codec can't decode byte 0xb5 in position 11", and a
    # header of NUL characters taken for a line above the table.
    "latin1_micro": (b"time,PLETH \xb5V,ABP\n0,1,80\n0.008,2,81\n", {}),
    "utf16_with_its_mark": ("time,PPG\r\n0,1\r\n0.008,2\r\n".encode("utf-16"), {}),
    "utf16_without_a_mark": ("time,PPG\r\n0,1\r\n0.008,2\r\n".encode("utf-16-le"), {}),
    "utf8_bom_micro": ("\ufefftime,PLETH \u00b5V\n0,1\n0.008,2\n".encode(), {}),
    "multiline_quoted_cell": ('time,PPG,note\n0,1,"a\nb"\n0.008,2,c\n0.016,3,d\n', {}),
    "old_mac_line_ends": ("'time','PPG'\r0,1\r0.008,2\r0.016,3\r0.024,4\r0.032,5\r", {}),
    "unix_seconds_quoted": (
        "'time','PPG'\n'1700000000.000',1\n'1700000000.008',2\n'1700000000.016',x\n",
        {},
    ),
    "irregular_quoted": ("'time','PPG'\n0,1\n0.010,2\n0.025,3\n0.035,4\n", {}),
    "time_in_minutes": ("'time','PPG'\n'min','NU'\n0,1\n0.001,2\n", {}),
    "no_rate": ("'PLETH','ABP'\n0.5,80\n0.6,81\n", {}),
    "label_column_only_text": ("time,PPG,who\n0,1,ann\n0.008,2,bob\n0.016,3,cy\n", {}),
}


def _long_clock(rows: int, eol: str) -> str:
    """PhysioNet's clock strings over ``rows`` rows at 125 Hz, some cells text or empty."""
    lines = [f"'Elapsed time','PLETH','ABP'{eol}'hh:mm:ss.mmm','NU','mmHg'"]
    for i in range(rows):
        ms = 8 * i + 3_599_000
        clock = (
            f"'[{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}]'"
        )
        ppg = "lost" if i % 997 == 5 else "" if i % 13 == 0 else f"{(i * 37) % 101 / 100:.2f}"
        lines.append(f"{clock},{ppg},{80 + (i * 7) % 41}")
    return eol.join(lines) + eol


CASES["long_physionet_clock"] = (_long_clock(3000, "\n"), {})
CASES["long_physionet_clock_old_mac"] = (_long_clock(3000, "\r"), {})


# fmt: off
EXPECTED = {
    'physionet_clock': (125.0, {'PLETH': 'NU', 'ABP': 'mmHg'}, {'time_column': 'Elapsed time', 'start_s': 0.0}, {'PLETH': [0.5, 0.6, nan, 0.8, 0.9], 'ABP': [80.0, 81.0, 82.0, nan, 84.0]}),
    'physionet_clock_over_an_hour_given_fs': (125.0, {'PLETH': 'NU', 'ABP': 'mmHg'}, {'time_column': 'Elapsed time', 'start_s': 3659.992}, {'PLETH': [0.5, 0.6, 0.7], 'ABP': [80.0, 81.0, 82.0]}),
    'physionet_clock_gap_and_text': (125.0, {'PLETH': 'NU', 'ABP': 'mmHg'}, {'warnings': ["{path}: 2 cells of text in columns of numbers were read as missing samples (a gap); the first: row 4, column 'PLETH': 'oops'"], 'time_column': 'Elapsed time', 'start_s': 0.0, 'missing_samples': 1}, {'PLETH': [0.5, nan, nan, 0.8, 0.9], 'ABP': [80.0, 81.0, nan, nan, 84.0]}),
    'physionet_clock_unreadable_time': ('DataError', "{path}: row 4 has no time (seconds) in column 'Elapsed time'"),
    'physionet_seconds_kpa': (125.0, {'PLETH': 'NU', 'ABP': 'kPa'}, {'time_column': 'Elapsed time', 'start_s': 0.0}, {'PLETH': [0.5, 0.6, 0.7], 'ABP': [10.6, 10.8, 11.0]}),
    'physionet_ms_crlf': (250.0, {'PLETH': 'NU'}, {'time_column': 'Elapsed time', 'start_s': 1.0}, {'PLETH': [0.5, 0.6, 0.7]}),
    'physionet_bom': (125.0, {'PLETH': 'NU', 'ABP': 'mmHg'}, {'time_column': 'Elapsed time', 'start_s': 0.0}, {'PLETH': [1.0, 2.0], 'ABP': [80.0, 81.0]}),
    'physionet_two_clocks': (125.0, {'PLETH': 'NU'}, {'time_column': 'Elapsed time', 'start_s': 0.0}, {'PLETH': [1.0, 2.0, 3.0]}),
    'physionet_two_clocks_disagree': ('DataError', "{path} has two time columns that disagree: at row 5, 'Elapsed time' says 0.016 s and 'time_ms' 0.02 s (from their first rows); remove the one that is not the recording's time, or rename it if it is no time"),
    'clock_strings_two_time_columns_given_fs': (125.0, {}, {'time_column': 'time'}, {'PPG': [1.0, 2.0, 3.0]}),
    'clock_strings_without_fs': ('DataError', "{path}: time column 'time' holds no times in seconds; give fs=HZ"),
    'quoted_names_given_fs': (100.0, {}, {}, {'PLETH': [0.5, 0.6], 'ABP': [80.0, 81.0]}),
    'double_quoted_bom_time_column': (125.0, {}, {'time_column': 'time', 'start_s': 0.0}, {'PPG': [1.0, nan, 3.0]}),
    'no_such_time_column': ('DataError', "{path} has no time column 'sec'; columns: PLETH, ABP"),
    'text_and_missing_marks': (125.0, {}, {'warnings': ["{path}: 2 cells of text in columns of numbers were read as missing samples (a gap); the first: row 3, column 'PPG': 'abc'"], 'time_column': 'time', 'start_s': 0.0}, {'PPG': [1.0, nan, 3.0, nan, nan, nan], 'ABP': [80.0, 81.0, nan, nan, 84.0, 85.0], 'label': [nan, nan, nan, nan, nan, nan]}),
    'units_row_of_missing_marks_is_a_sample': (125.0, {}, {}, {'PPG': [nan, 1.0, 2.0], 'ABP': [nan, 80.0, 81.0]}),
    'units_row_with_a_decimal_comma_unit': (125.0, {'PPG': '0,5', 'ABP': 'mmHg'}, {}, {'PPG': [1.0, 2.0], 'ABP': [80.0, 81.0]}),
    't_not_increasing_with_text': (125.0, {}, {'warnings': ["{path}: column 't' does not increase, so it is read as a channel, not as time (the rate given is used); rename it 'time' if it is time", "{path}: 1 cell of text in columns of numbers was read as missing samples (a gap); the first: row 3, column 'PPG': 'zz'"]}, {'t': [36.5, 36.4, 36.6], 'PPG': [1.0, nan, 3.0]}),
    'blank_line_between_rows': ('DataError', '{path}: row 3 has 0 values, the header has 2'),
    'blank_lines_and_empty_rows_at_the_end': (125.0, {}, {'time_column': 'time', 'start_s': 0.0}, {'PPG': [1.0, 2.0, 3.0]}),
    'row_of_empty_cells_between_rows': ('DataError', "{path}: row 3 has no time (seconds) in column 'time'"),
    'short_row': ('DataError', '{path}: row 4 has 1 values, the header has 2'),
    'long_row': ('DataError', '{path}: row 3 has 3 values, the header has 2'),
    'short_row_then_decimal_comma': ('DataError', "{path}: row 3, column 'PPG' holds '2,5', a number with a decimal comma; innpar reads decimal points (save the file with '.' as the decimal separator)"),
    'decimal_comma_then_short_row': ('DataError', '{path}: row 3 has 1 values, the header has 2'),
    'decimal_comma_in_time': ('DataError', "{path}: row 2, column 'PPG' holds '1,5', a number with a decimal comma; innpar reads decimal points (save the file with '.' as the decimal separator)"),
    'trailing_unnamed_columns': (125.0, {}, {'time_column': 'time', 'start_s': 0.0}, {'PPG': [1.0, 2.0, 3.0]}),
    'unnamed_column_with_values': ('DataError', "{path} has duplicate column names: ['time', 'PPG', '', '']"),
    'unnamed_column_before_units': (125.0, {'PPG': 'NU'}, {'time_column': 'time', 'start_s': 0.0}, {'PPG': [1.0, 2.0, 3.0]}),
    'lines_above_the_table': ('DataError', "{path} seems to start with 3 line(s) that are not its table ('Device: X'; 'Sampling rate: 250 Hz'; ''): its header seems to be line 4 (time, PLETH, ABP); remove the lines above it"),
    'blank_lines_above_the_table': ('DataError', "{path} seems to start with 3 line(s) that are not its table ('Device: X'; ''; ''): its header seems to be line 4 (time, PPG); remove the lines above it"),
    'text_in_the_first_row_and_later': (125.0, {}, {'warnings': ["{path}: 3 cells of text in columns of numbers were read as missing samples (a gap); the first: row 2, column 'PPG': 'abc'"]}, {'PPG': [nan, nan, 3.0], 'ABP': [80.0, 81.0, nan]}),
    'one_line_above_the_table': ('DataError', "{path} seems to start with 1 line(s) that are not its table ('Exported by Y'): its header seems to be line 2 (time, PPG); remove the lines above it"),
    'semicolons': ('DataError', '{path}: its columns are separated by semicolons; innpar reads comma-separated CSV (save it with commas)'),
    'tabs': ('DataError', '{path}: its columns are separated by tabs; innpar reads comma-separated CSV (save it with commas)'),
    'semicolons_and_decimal_commas': ('DataError', "{path}: its columns are separated by semicolons and its numbers have decimal commas ('0,0000'); innpar reads comma-separated CSV with decimal points (save it with ',' between columns and '.' as the decimal separator)"),
    'tabs_and_decimal_commas': ('DataError', "{path}: its columns are separated by tabs and its numbers have decimal commas ('1,25'); innpar reads comma-separated CSV with decimal points (save it with ',' between columns and '.' as the decimal separator)"),
    'duplicate_names': ('DataError', "{path} has duplicate column names: ['time', 'PPG', 'PPG']"),
    'header_of_numbers': ('DataError', '{path} has no header row: its first row holds numbers (0, 0.5, 80); add a first row of channel names, e.g. time,PPG'),
    'header_only': ('DataError', '{path} has a header row (time, PPG) but no data rows: no samples'),
    'header_and_blank_rows': ('DataError', '{path} has a header row (time, PPG) but no data rows: no samples'),
    'empty_file': ('DataError', '{path} is empty: it has no header row and no data rows'),
    'first_line_blank': ('DataError', '{path} is empty: it has no header row and no data rows'),
    'not_utf8': ('DataError', "{path} is not UTF-8 text: line 2 holds byte 0xff ('ÿ' in Latin-1 or Windows-1252), which UTF-8 does not allow there; save it as UTF-8 (a spreadsheet's 'CSV UTF-8')"),
    'not_utf8_after_a_duplicate_name': ('DataError', "{path} is not UTF-8 text: line 4 holds byte 0xff ('ÿ' in Latin-1 or Windows-1252), which UTF-8 does not allow there; save it as UTF-8 (a spreadsheet's 'CSV UTF-8')"),
    'latin1_micro': ('DataError', "{path} is not UTF-8 text: line 1 holds byte 0xb5 ('µ' in Latin-1 or Windows-1252), which UTF-8 does not allow there; save it as UTF-8 (a spreadsheet's 'CSV UTF-8')"),
    'utf16_with_its_mark': ('DataError', "{path} is not UTF-8 text: it seems to be UTF-16 (it starts with UTF-16's byte-order mark, as Excel's 'Unicode Text' does); save it as UTF-8 (a spreadsheet's 'CSV UTF-8')"),
    'utf16_without_a_mark': ('DataError', "{path} is not UTF-8 text: it seems to be UTF-16 (every other byte of its start is 0); save it as UTF-8 (a spreadsheet's 'CSV UTF-8')"),
    'utf8_bom_micro': (125.0, {}, {'time_column': 'time', 'start_s': 0.0}, {'PLETH µV': [1.0, 2.0]}),
    'multiline_quoted_cell': (125.0, {}, {'time_column': 'time', 'start_s': 0.0}, {'PPG': [1.0, 2.0, 3.0], 'note': [nan, nan, nan]}),
    'old_mac_line_ends': (125.0, {}, {'time_column': 'time', 'start_s': 0.0}, {'PPG': [1.0, 2.0, 3.0, 4.0, 5.0]}),
    'unix_seconds_quoted': (125.0, {}, {'warnings': ["{path}: 1 cell of text in columns of numbers was read as missing samples (a gap); the first: row 4, column 'PPG': 'x'"], 'time_column': 'time', 'start_s': 1700000000.0}, {'PPG': [1.0, 2.0, nan]}),
    'irregular_quoted': ('DataError', "{path}: time column 'time' is irregular at row 4 (0.025 s): a step of 0.015 s is 1.29 sample periods of 0.0116667 s, not a whole number; resample the recording to a regular rate first"),
    'time_in_minutes': ('DataError', "{path}: time column 'time' is in 'min' (its units row); innpar reads times in seconds, ms, us, ns or elapsed hh:mm:ss.mmm"),
    'no_rate': ('UnknownRateError', '{path}: the sampling rate is unknown; give it with fs=HZ'),
    'label_column_only_text': (125.0, {}, {'time_column': 'time', 'start_s': 0.0}, {'PPG': [1.0, 2.0, 3.0], 'who': [nan, nan, nan]}),
    'long_physionet_clock': (125.0, {'PLETH': 'NU', 'ABP': 'mmHg'}, {'warnings': ["{path}: 4 cells of text in columns of numbers were read as missing samples (a gap); the first: row 8, column 'PLETH': 'lost'"], 'time_column': 'Elapsed time', 'start_s': 3599.0}, {'PLETH': '94aed3e1ed149294', 'ABP': '4efa7de63a1dc917'}),
    'long_physionet_clock_old_mac': (125.0, {'PLETH': 'NU', 'ABP': 'mmHg'}, {'warnings': ["{path}: 4 cells of text in columns of numbers were read as missing samples (a gap); the first: row 8, column 'PLETH': 'lost'"], 'time_column': 'Elapsed time', 'start_s': 3599.0}, {'PLETH': '94aed3e1ed149294', 'ABP': '4efa7de63a1dc917'}),
}
# fmt: on


def _outcome(path: Path, kw: dict[str, Any]) -> tuple[Any, ...]:
    """What read_csv gives: (rate, units, meta, signals) or (error type, message), with the
    file's path as ``{path}``; signals of more than 10 samples by their float64 bytes'
    sha256 (the first 16 hex digits)."""
    try:
        rec = recordings.read_csv(path, **kw)
    except DataError as exc:
        return (type(exc).__name__, str(exc).replace(str(path), "{path}"))
    signals = {
        k: [float(x) for x in v]
        if len(v) <= 10
        else hashlib.sha256(v.astype("float64").tobytes()).hexdigest()[:16]
        for k, v in rec.signals.items()
    }
    meta = {
        k: [w.replace(str(path), "{path}") for w in v] if k == "warnings" else v
        for k, v in rec.meta.items()
    }
    return (rec.fs, rec.units, meta, signals)


@pytest.mark.parametrize("name", list(CASES))
def test_awkward_csv_files_read_as_the_text_holding_reader_read_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Guards against the row-by-row reader changing a number, a unit, a warning or which
    error comes first (a blank line between rows before a decimal comma after it, a
    duplicate name before an undecodable byte further down, ...)."""
    monkeypatch.setattr(recordings, "_numeric_table", lambda path: None)  # all read carefully
    text, kw = CASES[name]
    path = tmp_path / f"{name}.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    got = _outcome(path, kw)
    assert repr(got) == repr(EXPECTED[name])  # repr: NaN equal to NaN


def test_the_careful_reader_holds_the_numbers_not_the_text(tmp_path: Path) -> None:
    """50,000 rows of PhysioNet's export (a clock string and two channels): every cell held
    as text took 421 bytes a row at the most (tracemalloc), 53 times a float64 sample; read
    row by row into float64 columns, 43 bytes a row, and 97 for the whole of read_csv (the
    clock parsed to seconds and checked). Guards against holding the rows, or the clock's
    cells, as text again."""
    n = 50_000
    path = tmp_path / "samples.csv"
    path.write_text(_long_clock(n, "\n"))
    for read, bound in (
        (lambda: recordings._careful_table(path), 8),
        (lambda: recordings.read_csv(path), 20),
    ):
        tracemalloc.start()
        try:
            read()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < bound * n * 8
    rec = recordings.read_csv(path)
    assert rec.n_samples == n and rec.fs == 125.0 and rec.meta["start_s"] == 3599.0


def test_text_cells_on_one_line_are_named_from_the_left(tmp_path: Path) -> None:
    """Guards against the first row's text cells named in the order the reader met them:
    it takes the first row last (it may be a units row), so a column with text further
    down came first, and the warning named 'ECG' of row 2 where 'ABP' stands before it."""
    path = tmp_path / "notes.csv"
    path.write_text("ABP,PLETH,ECG\nx,1,y\n1,2,z\n4,5,6\n")
    warning = recordings.read_csv(path, 125.0).meta["warnings"][-1]
    assert warning.endswith("the first: row 2, column 'ABP': 'x'"), warning
