"""Does the PPG that the per-window z-score throws away carry blood pressure?

The network sees every PPG window z-scored: its mean (the DC level) and its SD (the pulse
amplitude) are gone. This script asks whether they were worth keeping, on a window file's
real data: for each PPG feature, how it follows the reference SBP, DBP and MAP (the
protocol's beat-based values) between people (each subject's mean feature against its mean
pressure) and within them (each window's feature and pressure around its subject's means,
pooled over subjects; the change a calibrated model has to track). The heart rate, which
the z-scored PPG keeps, is the comparison. Trains nothing.

    python experiments/ppg_information.py [experiments/data/challenge2015.h5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from innpar_freia.data.qc import ppg_beats  # noqa: E402
from innpar_freia.data.store import read_info, read_signals  # noqa: E402
from innpar_freia.experiments import script_main  # noqa: E402
from innpar_freia.metrics import pearson_r  # noqa: E402
from innpar_freia.signal import bp_values_batch  # noqa: E402


def heart_rate(ppg: np.ndarray, fs: float) -> np.ndarray:
    """Beats per minute of every window from its PPG beats (NaN where fewer than 3)."""
    out = np.full(len(ppg), np.nan)
    for i, window in enumerate(ppg):
        beats = ppg_beats(window, fs)
        if len(beats) >= 3:
            out[i] = 60.0 * fs / float(np.median(np.diff(beats)))
    return out


def correlations(feature: np.ndarray, target: np.ndarray, subjects: np.ndarray) -> tuple:
    """Between-subject and pooled within-subject Pearson r of one feature and one target,
    over the windows where both are finite."""
    ok = np.isfinite(feature) & np.isfinite(target)
    f, t, s = feature[ok], target[ok], subjects[ok]
    codes = np.unique(s, return_inverse=True)[1].ravel()
    n = np.bincount(codes)
    fm, tm = np.bincount(codes, f) / n, np.bincount(codes, t) / n
    return pearson_r(fm, tm), pearson_r(f - fm[codes], t - tm[codes]), len(n), int(ok.sum())


def _cell(r: float) -> str:
    return f"{r:+.2f}" if np.isfinite(r) else "nan"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "data",
        nargs="?",
        type=Path,
        default=ROOT / "experiments/data/challenge2015.h5",
        help="a window file (innpar data import)",
    )
    args = ap.parse_args(argv)
    if not args.data.exists():
        ap.error(f"{args.data} does not exist (experiments/run.py or innpar data import makes it)")
    info = read_info(args.data)
    ppg, abp = (x.astype(np.float64) for x in read_signals(args.data))
    bp = bp_values_batch(abp, info.fs)
    features = {
        "PPG mean (DC level)": ppg.mean(axis=1),
        "PPG log SD (amplitude)": np.log(np.maximum(ppg.std(axis=1), 1e-12)),
        "PPG max - min": np.ptp(ppg, axis=1),
        "heart rate (kept by the z-score)": heart_rate(ppg, info.fs),
    }
    n_subjects = len(np.unique(info.subjects))
    print(
        f"{args.data}: {info.n_windows} windows, {n_subjects} "
        f"subject{'s' if n_subjects != 1 else ''}; "
        "Pearson r between subjects (subject means) / within subjects (pooled deviations "
        "from the subject's means)"
    )
    print(f"{'feature':<34}" + "".join(f"{name:>16}" for name in ("SBP", "DBP", "MAP")))
    for name, feature in features.items():
        cells = []
        for j in range(3):
            between, within, _, _ = correlations(feature, bp[:, j], info.subjects)
            cells.append(f"{_cell(between)} / {_cell(within)}")
        print(f"{name:<34}" + "".join(f"{c:>16}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(script_main(main))
