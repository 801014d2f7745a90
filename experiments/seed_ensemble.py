"""Does averaging the seeds of a variant help? The mean of the predicted ABP (mmHg) of a
variant's runs on each fold, scored with the protocol, against the runs one by one.

If the seeds' errors were independent noise, their mean would score better; if the error is
what every seed gets wrong alike (an unseen person's level), it would not. Reads the runs of
an experiment (``experiments/run.py``) and the data file they were trained on; trains nothing.

    python experiments/seed_ensemble.py experiments/results/ablation-tracking-c2015 pair-3 \\
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
from innpar_freia.metrics import evaluate_predictions  # noqa: E402

COLUMNS = ("wave", "SBP", "DBP", "MAP", "cal. wave", "cal. SBP", "cal. DBP", "cal. MAP")


def errors(result: dict) -> list[float]:
    """The eight MAEs of the README's tables (mmHg)."""
    free, cal = result["calibration_free"], result["calibrated"]
    return [r[k]["mae"] for r in (free, cal) for k in ("waveform", "sbp", "dbp", "map")]


def fold_of(run_name: str) -> str:
    """The test fold in a run directory's name ("fold0-seed1" -> "fold0"); "" for the runs
    on a file's own split column ("seed1"), whose seeds all score the same windows."""
    return run_name.rpartition("seed")[0].rstrip("-")


def fold_errors(paths: list[Path], data: Path, split: str) -> tuple[list[list[float]], list[float]]:
    """The eight MAEs of each run's checkpoint in ``paths`` (one fold's seeds) on ``split``
    of ``data``, and those of the mean of their predictions, on the same windows."""
    preds, rows = [], []
    first = None
    for path in paths:
        ckpt = load_run_checkpoint(path, data)
        p = predict(ckpt, data, split, inverse=False)
        if first is None:
            first = p
        elif not np.array_equal(p.window_ids, first.window_ids):
            raise SystemExit(f"{path} was scored on other windows than {paths[0]}")
        preds.append(p.abp_pred.astype(np.float64))
        args = (first.abp, first.ppg, first.subjects, first.order, ckpt.fs)
        rows.append(errors(evaluate_predictions(preds[-1], *args, baselines=ckpt.baselines)))
    mean = np.mean(preds, axis=0)
    return rows, errors(evaluate_predictions(mean, *args, baselines=ckpt.baselines))


def main(argv: list[str] | None = None) -> int:
    data = ROOT / "experiments/data/challenge2015.h5"
    ap = runs_parser(__doc__.split("\n\n")[0], "the variant whose seeds are averaged", data)
    args = ap.parse_args(argv)

    runs = args.results / "runs" / args.variant
    paths_found = finished_checkpoints(args.results, args.variant, args.checkpoint)
    if not paths_found:
        ap.error(no_runs_message(args.results, args.variant, args.checkpoint))
    folds: dict[str, list[Path]] = {}
    for path in paths_found:
        folds.setdefault(fold_of(path.parts[-3]), []).append(path)
    folds = {fold: paths for fold, paths in folds.items() if len(paths) > 1}
    if not folds:
        ap.error(f"no fold of {runs} has two or more finished runs (seeds) to average")

    def line(label: str, cells: list[str]) -> str:
        return f"{label:<24}" + "".join(f"{c:>13}" for c in cells)

    def numbers(values) -> list[str]:
        return [f"{x:.2f}" for x in values]

    # The table is printed once complete: an error on a later run leaves no half of it.
    out = [
        f"{args.variant}, checkpoint {args.checkpoint}, {args.split} split (MAE, mmHg); "
        f"runs are named by their test fold",
        line("", list(COLUMNS)),
    ]
    ensembles = []
    for fold, paths in sorted(folds.items()):
        rows, row = fold_errors(paths, args.data, args.split)
        for path, single in zip(paths, rows, strict=True):
            out.append(line(path.parts[-3], numbers(single)))
        ensembles.append((row, np.mean(rows, axis=0)))
        out.append(line(f"{fold} mean of {len(paths)}".strip(), numbers(row)))
    ens = np.array([e for e, _ in ensembles])
    members = np.array([m for _, m in ensembles])
    out.append(line("runs, mean", numbers(members.mean(0))))
    out.append(line("seed means, mean", numbers(ens.mean(0))))
    diff = ens - members
    wins = (diff < 0).sum(0)
    cells = [f"{d:+.2f} ({w}/{len(diff)})" for d, w in zip(diff.mean(0), wins, strict=True)]
    out.append(line("difference (folds won)", cells))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(script_main(main))
