"""``innpar demo``: synthesise a small dataset, train briefly on CPU, evaluate, plot."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innpar_freia.config import TRAIN_DEFAULT_PRESET, resolve_config
from innpar_freia.data.synthetic import synthesize_dataset
from innpar_freia.errors import RunDirError, check_flag, option
from innpar_freia.evaluate import evaluate
from innpar_freia.figures import scope_phrase
from innpar_freia.outputs import (
    drop_aside,
    make_folder,
    put_back,
    recover_set_aside,
    remove_if_empty,
    remove_stale_temporaries,
    set_aside,
)
from innpar_freia.plots import plot_reconstructions
from innpar_freia.report import model_names
from innpar_freia.train import Callbacks, train

# Small enough to train in well under 3 minutes on 2 CPU cores with the paper's network.
DEMO_DATA = {"subjects": 16, "minutes": 3.0, "fs": 125.0, "seed": 0}
DEMO_TRAIN = {"epochs": 30, "batch_size": 32, "device": "cpu"}
DEMO_FIGURE_WINDOWS = 4  # the test split's first windows, drawn in eval/reconstructions.png


@dataclass
class DemoResult:
    out_dir: Path
    data: Path
    run_dir: Path
    checkpoint: Path
    metrics: Path
    figure: Path
    summary: dict[str, Any]


# What a demo folder holds; --force replaces a folder that holds nothing else.
DEMO_ITEMS = ("data.h5", "run", "eval")


def _is_demo(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a demo (or what is left of one) and nothing else: only
    :data:`DEMO_ITEMS`, with ``data.h5``, if there, a synthetic window file."""
    from innpar_freia.data.store import read_info
    from innpar_freia.errors import DataError

    names = {p.name for p in out_dir.iterdir()}
    if not names <= set(DEMO_ITEMS):
        return False
    if (out_dir / "data.h5").exists():
        try:
            return read_info(out_dir / "data.h5").source_format == "synthetic"
        except DataError:
            return False
    return True


def run_demo(
    out_dir: str | Path,
    *,
    epochs: int | None = None,
    force: bool = False,
    callbacks: Callbacks | None = None,
) -> DemoResult:
    """Make the demo in ``out_dir``. ``force`` replaces an earlier demo there, and only a
    demo: it is moved aside while the new one is made, and put back if that fails."""
    force = check_flag("force", force)
    out_dir = Path(out_dir)
    aside = None
    if out_dir.is_dir():
        # A demo killed outright (kill -9) left its old demo set aside and a temporary
        # data file: the old demo comes back, the temporary file goes.
        recover_set_aside(out_dir, DEMO_ITEMS, finished=False)
        remove_stale_temporaries(out_dir / "data.h5")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise RunDirError(
                f"{out_dir} is not empty; pass {option('--force', 'force=True')} to replace the "
                "demo in it"
            )
        if not _is_demo(out_dir):
            others = sorted(p.name for p in out_dir.iterdir() if p.name not in DEMO_ITEMS)
            what = ", ".join(others[:3]) or "its data.h5 is not the synthetic demo data"
            raise RunDirError(
                f"{out_dir} holds more than a demo ({what}); {option('--force', 'force=True')} "
                "replaces only a demo: choose an empty folder"
            )
        aside = set_aside(out_dir, DEMO_ITEMS)
    if callbacks is not None:
        # Once the folder is known to be usable: it was said before "X is not empty".
        callbacks.on_message(
            f"innpar demo: synthetic data, the paper's network, CPU; in {out_dir}/"
        )
    created = make_folder(out_dir)
    try:
        result = _make_demo(out_dir, epochs, callbacks)
    except BaseException:
        if aside is not None:
            put_back(out_dir, aside, DEMO_ITEMS)
        else:
            # A new demo stopped halfway (Ctrl-C, an error) was left as data.h5 and half a
            # run, which the next `innpar demo` refused as "not empty": the folder was empty
            # (or not there), so all of the demo's items in it are this one's.
            for name in DEMO_ITEMS:
                path = out_dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            remove_if_empty(reversed(created))
        raise
    if aside is not None:
        drop_aside(aside)
    return result


def _make_demo(out_dir: Path, epochs: int | None, callbacks: Callbacks | None) -> DemoResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = synthesize_dataset(out_dir / "data.h5", **DEMO_DATA)
    overrides = dict(DEMO_TRAIN)
    if epochs is not None:
        overrides["epochs"] = epochs
    cfg = resolve_config(TRAIN_DEFAULT_PRESET, train=overrides)  # innpar train's recipe
    result = train(cfg, data, out_dir / "run", callbacks=callbacks)
    metrics, preds = evaluate(result.best_checkpoint, data, "test")
    eval_dir = out_dir / "eval"
    eval_dir.mkdir(exist_ok=True)
    metrics_path = eval_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    # Titled as innpar eval titles its figures (which model, which windows, which
    # protocol), and saying that these are the split's first windows, not chosen ones.
    n = min(DEMO_FIGURE_WINDOWS, len(preds.abp))
    scope = scope_phrase(metrics.get("split"), metrics.get("fold"))
    figure = plot_reconstructions(
        preds.abp,
        preds.abp_pred,
        cfg.model.fs,
        eval_dir / "reconstructions.png",
        titles=[f"{s} ({w})" for s, w in zip(preds.subjects, preds.window_ids, strict=True)],
        max_windows=n,
        title=(
            f"{model_names([result.best_checkpoint])[0]} (epoch {result.best_epoch}), {scope}: "
            f"calibration-free, first {n} windows in file order"
        ),
    )
    free = metrics["calibration_free"]
    naive = metrics["baselines"]["naive"]
    summary = {
        "epochs": result.epochs_completed,
        "best_epoch": result.best_epoch,
        "test_windows": free["n_windows"],
        "wave_mae": free["waveform"]["mae"],
        "naive_wave_mae": naive["waveform"]["mae"],
        "sbp_mae": free["sbp"]["mae"],
        "dbp_mae": free["dbp"]["mae"],
        "map_mae": free["map"]["mae"],
    }
    return DemoResult(
        out_dir, data, result.run_dir, result.best_checkpoint, metrics_path, figure, summary
    )
