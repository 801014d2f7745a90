"""The ranges of the numbers ``innpar data import`` and ``innpar data synth`` take, by the
argument of the Python function they set: the CLI's option types and the functions (which
a Python caller calls without the CLI) read them here, so that both refuse the same values.
Outside them an import failed deep inside (``fs=1e9`` asked for 2 TiB, ``fs=nan`` was
"cannot convert float NaN to integer") or wrote a file no run could use (``fs=10``: the
quality control needs 16 Hz). Nothing heavy is imported: the CLI reads this module
when it starts."""

from __future__ import annotations

from numbers import Integral, Real

from innpar_freia.errors import DataError

# argument: (lowest, highest, its option), both allowed. Whole numbers are ints: click
# shows a range as it is given ("16<=x<=100000").
IMPORT_RANGES = {
    # The rate of the output windows in Hz: the quality control's 0.5-8 Hz band-pass and
    # beat rules need 16 Hz (at 1 Hz a traceback, at 2 Hz no window kept).
    "fs": (16, 100_000, "--fs"),
    # The rate of the input recordings, when they do not state it.
    "input_fs": (1, 100_000, "--input-fs"),
    "window_s": (0.5, 600, "--window-seconds"),
    # The largest PPG delay searched, in seconds.
    "max_lag_s": (0.1, 10, "--max-lag"),
}
# synthesize_dataset's: every number ``innpar data synth`` takes. A highest of None: no
# upper bound (click's IntRange takes it as such).
SYNTH_RANGES = {
    "subjects": (1, 100_000, "--subjects"),
    "minutes": (0.1, 24 * 60, "--minutes"),
    "fs": (16, 10_000, "--fs"),
    "window_seconds": (0.5, 60, "--window-seconds"),
    "folds": (0, 100, "--folds"),
    "seed": (0, None, "--seed"),
}


def check_in_range(name: str, value: object, ranges: dict[str, tuple[float, float, str]]) -> float:
    """``value`` of the argument ``name`` as a float, or an error naming it, its option and
    its range (:func:`number_in_range`)."""
    low, high, option = ranges[name]
    return number_in_range(f"{name} ({option})", value, low, high)


def check_whole_in_range(
    name: str, value: object, ranges: dict[str, tuple[float, float | None, str]]
) -> int:
    """``value`` of the whole-number argument ``name`` as an int, or an error naming it, its
    option and its range: a TypeError for what is not a whole number (a numpy integer is
    one), else a DataError. Compared as the int it is, so a huge seed is no OverflowError."""
    low, high, option = ranges[name]
    label = f"{name} ({option})"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{label} must be a whole number, not {value!r}")
    number = int(value)
    if high is None:
        if number < low:
            raise DataError(f"{label} is {number}, not at least {low:g}")
    elif not low <= number <= high:
        raise DataError(f"{label} is {number}, not in the range {low:g} to {high:g}")
    return number


def number_in_range(label: str, value: object, low: float, high: float) -> float:
    """``value`` as a float, or an error naming it by ``label`` with its range: a TypeError
    for what is not a number, else a DataError (NaN too). ``ReconstructOptions`` checks its
    fields with it as well."""
    if isinstance(value, bool) or not isinstance(value, Real):  # numpy's numbers are Real
        raise TypeError(f"{label} must be a number, not {value!r}")
    number = float(value)
    if not low <= number <= high:  # NaN fails it too
        raise DataError(f"{label} is {number:g}, not in the range {low:g} to {high:g}")
    return number
