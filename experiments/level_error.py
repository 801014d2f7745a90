"""Where the calibration-free waveform error comes from: each window's mean level, or the
pulse's shape around it.

For every run of a variant (``experiments/run.py``'s run directories), on a split of the
data it was trained on: the waveform MAE; the MAE of the windows' mean levels (predicted
mean - reference mean); the MAE of the shapes (each window minus its own mean); the mean
level bias; and how the predicted levels follow the reference's, between subjects (each
subject's mean level) and within them (each window's level around its subject's mean).
Trains nothing.

    python experiments/level_error.py experiments/results/ablation-tracking-c2015 pair-3 \\
        --checkpoint last --split val

The runs' folders (their checkpoints) are not versioned, only their tables: the example
needs the variant's runs trained here first, e.g. ``python experiments/run.py
experiments/configs/ablation_tracking_c2015.toml --only pair-3`` (8 runs of 40 epochs; it
makes experiments/data/challenge2015.h5 from ../shared on first use). Runs trained without
a validation split (``val_fold = -1``, the anchor_*.toml configs) are scored with
``--split test``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from innpar_freia.evaluate import predict  # noqa: E402
from innpar_freia.experiments import (  # noqa: E402
    finished_checkpoints,
    load_run_checkpoint,
    no_runs_message,
    runs_parser,
    script_main,
)
from innpar_freia.metrics import pearson_r  # noqa: E402

COLUMNS = (
    ("wave", "waveform MAE"),
    ("level", "MAE of the windows' mean levels"),
    ("shape", "MAE of the windows minus their means"),
    ("bias", "mean level error (predicted - reference)"),
    ("SD p/r", "between-subject SD of the mean level, predicted / reference"),
    ("r betw.", "correlation of subjects' mean levels, predicted vs reference"),
    ("SD w p/r", "within-subject SD of window levels, predicted / reference"),
    ("r within", "correlation of window levels around their subject's mean"),
)


def decompose(pred: np.ndarray, ref: np.ndarray, subjects: np.ndarray) -> dict[str, float]:
    """The level/shape split of one run's windows (mmHg)."""
    lp, lr = pred.mean(axis=1), ref.mean(axis=1)
    codes = np.unique(subjects, return_inverse=True)[1].ravel()
    n = np.bincount(codes)
    sp, sr = np.bincount(codes, lp) / n, np.bincount(codes, lr) / n  # subjects' mean levels
    wp, wr = lp - sp[codes], lr - sr[codes]  # window levels around their subject's mean
    return {
        "wave": float(np.abs(pred - ref).mean()),
        "level": float(np.abs(lp - lr).mean()),
        "shape": float(np.abs((pred - lp[:, None]) - (ref - lr[:, None])).mean()),
        "bias": float((lp - lr).mean()),
        "sd_between": (float(sp.std()), float(sr.std())),
        "r_between": pearson_r(sp, sr),
        "sd_within": (float(wp.std()), float(wr.std())),
        "r_within": pearson_r(wp, wr),
    }


def row(name: str, d: dict) -> str:
    cells = [
        f"{d['wave']:.2f}",
        f"{d['level']:.2f}",
        f"{d['shape']:.2f}",
        f"{d['bias']:+.2f}",
        f"{d['sd_between'][0]:.1f}/{d['sd_between'][1]:.1f}",
        f"{d['r_between']:.2f}",
        f"{d['sd_within'][0]:.1f}/{d['sd_within'][1]:.1f}",
        f"{d['r_within']:.2f}",
    ]
    return f"{name:<16}" + "".join(f"{c:>11}" for c in cells)


def main(argv: list[str] | None = None) -> int:
    data = ROOT / "experiments/data/challenge2015.h5"
    ap = runs_parser(__doc__.split("\n\n")[0], "the variant whose runs are analysed", data)
    args = ap.parse_args(argv)

    paths = finished_checkpoints(args.results, args.variant, args.checkpoint)
    if not paths:
        ap.error(no_runs_message(args.results, args.variant, args.checkpoint))
    # The table is printed once complete: an error on a later run leaves no half of it.
    out = [
        f"{args.variant}, checkpoint {args.checkpoint}, {args.split} split (mmHg); runs are "
        "named by their test fold"
    ]
    out += [f"  {short:<9} {long}" for short, long in COLUMNS]
    out.append(f"{'':<16}" + "".join(f"{short:>11}" for short, _ in COLUMNS))
    for path in paths:
        ckpt = load_run_checkpoint(path, args.data)
        p = predict(ckpt, args.data, args.split, inverse=False)
        d = decompose(p.abp_pred.astype(np.float64), p.abp.astype(np.float64), p.subjects)
        out.append(row(path.parts[-3], d))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(script_main(main))
