"""The ranges of ``innpar reconstruct``'s numbers, by :class:`ReconstructOptions` field:
the CLI's option types and ``ReconstructOptions`` (which the Python API builds without the
CLI) read them here, so that both refuse the same values. Nothing is imported: the CLI
reads this module when it starts."""

from __future__ import annotations

# field: (lowest, highest), both allowed.
RANGES = {
    # The rate of INPUT in Hz.
    "fs": (1, 100_000),
    # Overlap of consecutive model windows: at 1 the windows would not advance.
    "overlap": (0.0, 0.9),
    # Seconds the PPG trails the ABP (--ppg-delay).
    "delay_s": (0.0, 5.0),
    # Length of the calibration segment in seconds.
    "calibration_seconds": (1.0, 3600.0),
}

# field: the ``innpar reconstruct`` option that sets it. The CLI builds ReconstructOptions
# from its options, so one message reaches a Python caller and a command-line user: it
# names both (see option_name).
FLAGS = {
    "direction": "--direction",
    "fs": "--fs",
    "overlap": "--overlap",
    "delay_s": "--ppg-delay",
    "calibration": "--calibration",
    "calibration_mode": "--calibration-mode",
    "calibration_at": "--calibration-at",
    "calibration_seconds": "--calibration-seconds",
    "reference_abp": "--reference-abp",
    "plot": "--plot",
    "force": "--force",
}


def option_name(field: str, direction: str = "ppg2abp") -> str:
    """``field`` of ReconstructOptions as a message names it, with its option:
    ``delay_s (--ppg-delay)``; ``channel`` is ``--ppg-channel`` or ``--abp-channel`` by the
    ``direction`` it is the input of."""
    if field == "channel":
        return f"channel (--{direction[:3]}-channel)"
    return f"{field} ({FLAGS[field]})"


def seconds_text(t: float) -> str:
    """A time ``t`` in seconds as a message, title or axis label prints it: to the
    millisecond, trailing zeros dropped, never an exponent ("1700000104.2", "3600",
    "12.25"). ``:g`` kept 6 significant figures, so a time on a Unix clock read
    "1.7e+09 s", and a suggested ``--calibration-at 1.7e+09`` was the recording's start."""
    t = float(t)
    if t != t or t in (float("inf"), float("-inf")):
        return str(t)
    text = f"{t:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
