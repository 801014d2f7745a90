"""Does averaging the seeds of a variant help? The mean of the predicted ABP (mmHg) of a
variant's runs on each fold, scored with the protocol, against the runs one by one.

If the seeds' errors were independent noise, their mean would score better; if the error is
what every seed gets wrong alike (an unseen person's level), it would not. Reads the runs of
an experiment (``experiments/run.py``) and the data file they were trained on; trains nothing.

    python experiments/seed_ensemble.py experiments/results/ablation-tracking-c2015 pair-3 \\
        --checkpoint last --split val
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from innpar_freia.checkpoint import load_checkpoint  # noqa: E402
from innpar_freia.evaluate import predict  # noqa: E402
from innpar_freia.experiments import finished_checkpoints, runs_parser  # noqa: E402
from innpar_freia.metrics import evaluate_predictions  # noqa: E402

COLUMNS = ("wave", "SBP", "DBP", "MAP", "cal. wave", "cal. SBP", "cal. DBP", "cal. MAP")


def errors(result: dict) -> list[float]:
    """The eight MAEs of the README's tables (mmHg)."""
    free, cal = result["calibration_free"], result["calibrated"]
    return [r[k]["mae"] for r in (free, cal) for k in ("waveform", "sbp", "dbp", "map")]


def fold_errors(paths: list[Path], data: Path, split: str) -> tuple[list[list[float]], list[float]]:
    """The eight MAEs of each run's checkpoint in ``paths`` (one fold's seeds) on ``split``
    of ``data``, and those of the mean of their predictions, on the same windows."""
    preds, rows = [], []
    first = None
    for path in paths:
        ckpt = load_checkpoint(path)
        p = predict(ckpt, data, split, inverse=False)
        if first is None:
            first = p
        elif not np.array_equal(p.window_ids, first.window_ids):
            raise SystemExit(f"{path} was scored on other windows than {paths[0]}")
        preds.append(p.abp_pred.astype(np.float64))
        args = (first.abp, first.ppg, first.subjects, first.start, ckpt.fs)
        rows.append(errors(evaluate_predictions(preds[-1], *args, baselines=ckpt.baselines)))
    mean = np.mean(preds, axis=0)
    return rows, errors(evaluate_predictions(mean, *args, baselines=ckpt.baselines))


def main(argv: list[str] | None = None) -> int:
    data = ROOT / "experiments/data/challenge2015.h5"
    ap = runs_parser(__doc__.split("\n\n")[0], "the variant whose seeds are averaged", data)
    args = ap.parse_args(argv)

    runs = args.results / "runs" / args.variant
    folds: dict[str, list[Path]] = {}
    for path in finished_checkpoints(args.results, args.variant, args.checkpoint):
        folds.setdefault(path.parts[-3].split("-")[0], []).append(path)
    folds = {fold: paths for fold, paths in folds.items() if len(paths) > 1}
    if not folds:
        ap.error(f"no fold of {runs} has two or more finished runs")
    print(f"{args.variant}, checkpoint {args.checkpoint}, {args.split} split (MAE, mmHg)")
    print(f"{'':<24}" + "".join(f"{c:>13}" for c in COLUMNS))
    ensembles = []
    for fold, paths in sorted(folds.items()):
        rows, row = fold_errors(paths, args.data, args.split)
        for path, single in zip(paths, rows, strict=True):
            print(f"{path.parts[-3]:<24}" + "".join(f"{x:>10.2f}" for x in single))
        ensembles.append((row, np.mean(rows, axis=0)))
        print(f"{fold + ' mean of ' + str(len(paths)):<24}" + "".join(f"{x:>10.2f}" for x in row))
    ens = np.array([e for e, _ in ensembles])
    members = np.array([m for _, m in ensembles])
    print(f"{'runs, mean':<24}" + "".join(f"{x:>10.2f}" for x in members.mean(0)))
    print(f"{'seed means, mean':<24}" + "".join(f"{x:>10.2f}" for x in ens.mean(0)))
    diff = ens - members
    wins = (diff < 0).sum(0)
    cells = [f"{d:+.2f} ({w}/{len(diff)})" for d, w in zip(diff.mean(0), wins, strict=True)]
    print(f"{'difference (folds won)':<24}" + "".join(f"{c:>13}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
