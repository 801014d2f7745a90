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
from innpar_freia.experiments import runs_parser  # noqa: E402
from innpar_freia.metrics import evaluate_predictions  # noqa: E402

COLUMNS = ("wave", "SBP", "DBP", "MAP", "cal. wave", "cal. SBP", "cal. DBP", "cal. MAP")


def errors(result: dict) -> list[float]:
    """The eight MAEs of the README's tables (mmHg)."""
    free, cal = result["calibration_free"], result["calibrated"]
    return [r[k]["mae"] for r in (free, cal) for k in ("waveform", "sbp", "dbp", "map")]


def main(argv: list[str] | None = None) -> int:
    data = ROOT / "experiments/data/challenge2015.h5"
    ap = runs_parser(__doc__.split("\n\n")[0], "the variant whose seeds are averaged", data)
    args = ap.parse_args(argv)

    runs = args.results / "runs" / args.variant
    folds = sorted({p.name.split("-")[0] for p in runs.glob("fold*-seed*")})
    if not folds:
        ap.error(f"no runs in {runs}")
    print(f"{args.variant}, checkpoint {args.checkpoint}, {args.split} split (MAE, mmHg)")
    print(f"{'':<24}" + "".join(f"{c:>13}" for c in COLUMNS))
    singles, ensembles = [], []
    for fold in folds:
        paths = sorted(runs.glob(f"{fold}-seed*/checkpoints/{args.checkpoint}.pt"))
        if len(paths) < 2:
            continue
        preds = []
        for path in paths:
            ckpt = load_checkpoint(path)
            p = predict(ckpt, args.data, args.split, inverse=False)
            preds.append(p.abp_pred.astype(np.float64))
            args_ = (p.abp, p.ppg, p.subjects, p.start, ckpt.fs)
            row = errors(evaluate_predictions(preds[-1], *args_, baselines=ckpt.baselines))
            singles.append(row)
            print(f"{path.parts[-3]:<24}" + "".join(f"{x:>10.2f}" for x in row))
        mean = np.mean(preds, axis=0)
        row = errors(evaluate_predictions(mean, *args_, baselines=ckpt.baselines))
        ensembles.append((row, np.mean(singles[-len(paths) :], axis=0)))
        print(f"{fold + ' mean of ' + str(len(paths)):<24}" + "".join(f"{x:>10.2f}" for x in row))
    if not ensembles:
        ap.error(f"no fold of {runs} has two or more runs")
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
