"""Does averaging the seeds of a recipe help where one run does not?

For every test fold of a variant that has runs with several seeds (``experiments/run.py``'s
run directories), the ABP that each seed's checkpoint predicts on a split of the data is
averaged sample by sample (mmHg), and the average is scored with the protocol like any
model. Printed per fold: the seeds' mean error and the ensemble's, calibration-free and
calibrated, and the mean over folds. An average of invertible networks is not itself
invertible: this asks whether a user who has trained several seeds should average them.
Trains nothing.

    python experiments/ensemble.py experiments/results/ablation-fp32-c2015 pair-3 \\
        --checkpoint last --split val
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from innpar_freia.checkpoint import load_checkpoint  # noqa: E402
from innpar_freia.evaluate import predict  # noqa: E402
from innpar_freia.experiments import PAIRED_COLUMNS, runs_parser, summarise  # noqa: E402
from innpar_freia.metrics import evaluate_predictions  # noqa: E402


def score(pred: np.ndarray, p, fs: float, baselines) -> dict[str, float]:
    """The protocol's summarised numbers (mmHg) for predictions ``pred`` of windows ``p``."""
    m = evaluate_predictions(pred, p.abp, p.ppg, p.subjects, p.start, fs, baselines=baselines)
    return summarise(m)


def ensemble_fold(paths: list[Path], data: Path, split: str) -> tuple[list[dict], dict]:
    """Each seed's scores and the scores of their average, on the same windows."""
    preds, singles = [], []
    first = None
    for path in paths:
        ckpt = load_checkpoint(path)
        p = predict(ckpt, data, split, inverse=False)
        if first is None:
            first, fs, baselines = p, ckpt.fs, ckpt.baselines
        elif not np.array_equal(p.window_ids, first.window_ids):
            raise SystemExit(f"{path} was scored on other windows than {paths[0]}")
        preds.append(p.abp_pred.astype(np.float64))
        singles.append(score(preds[-1], first, fs, baselines))
    return singles, score(np.mean(preds, axis=0), first, fs, baselines)


def main(argv: list[str] | None = None) -> int:
    ap = runs_parser(
        __doc__.split("\n\n")[0],
        "the variant whose seeds are averaged",
        ROOT / "experiments" / "data" / "challenge2015.h5",
    )
    args = ap.parse_args(argv)
    folds: dict[str, list[Path]] = {}
    for path in sorted(
        (args.results / "runs" / args.variant).glob(f"*/checkpoints/{args.checkpoint}.pt")
    ):
        match = re.fullmatch(r"(fold\d+)-seed\d+", path.parts[-3])
        if match:
            folds.setdefault(match.group(1), []).append(path)
    folds = {k: v for k, v in folds.items() if len(v) > 1}
    if not folds:
        ap.error(f"no fold of {args.results / 'runs' / args.variant} has two seeds' runs")
    header = "".join(f"{label:>15}" for _, label in PAIRED_COLUMNS)
    print(f"{args.variant}, checkpoint {args.checkpoint}, {args.split} split (MAE, mmHg)")
    print(f"{'':<22}{header}")
    gains = []
    for fold, paths in folds.items():
        singles, ens = ensemble_fold(paths, args.data, args.split)
        mean = {m: float(np.mean([s[m] for s in singles])) for m, _ in PAIRED_COLUMNS}
        gains.append({m: ens[m] - mean[m] for m, _ in PAIRED_COLUMNS})
        print(f"{fold + f' ({len(paths)} seeds)':<22}" + _cells(mean))
        print(f"{'  their average':<22}" + _cells(ens))
    print(
        f"{'average - seeds, mean':<22}"
        + _cells({m: float(np.mean([g[m] for g in gains])) for m, _ in PAIRED_COLUMNS}, sign=True)
    )
    return 0


def _cells(values: dict[str, float], sign: bool = False) -> str:
    return "".join(
        f"{values[m]:>+15.2f}" if sign else f"{values[m]:>15.2f}" for m, _ in PAIRED_COLUMNS
    )


if __name__ == "__main__":
    raise SystemExit(main())
