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
