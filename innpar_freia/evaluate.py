"""Evaluate a checkpoint on a split of a window file with the project's protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.checkpoint import Checkpoint, load_checkpoint
from innpar_freia.data.dataset import (
    Normalisation,
    SplitPlan,
    check_subject_disjoint,
    load_split_arrays,
    plan_splits,
)
from innpar_freia.data.leakage import NO_KEY, copy_keys
from innpar_freia.data.store import StoreInfo, read_info
from innpar_freia.errors import DataError, option
from innpar_freia.metrics import (
    Scored,
    WaveErrors,
    blocks,
    evaluate_predictions,
    protocol_windows,
    time_order,
)

EVAL_SPLITS = ("train", "val", "test", "all")

# How the messages name a split and the data scored where evaluate's caller did not choose
# them: the experiment runner scores what an experiment file names, and its caller has
# neither --split nor split= to give (see scored_as). None: evaluate's caller chose them.
_CHOSEN_IN: ContextVar[tuple[Callable[[str], str], str] | None] = ContextVar(
    "innpar_eval_chosen_in", default=None
)


@contextmanager
def scored_as(split: Callable[[str], str], data: str) -> Iterator[None]:
    """Messages made in the ``with`` name a split ``name`` as ``split(name)`` and the data
    scored as ``data``: where they were chosen (an experiment file's setting)."""
    token = _CHOSEN_IN.set((split, data))
    try:
        yield
    finally:
        _CHOSEN_IN.reset(token)


@dataclass
class Predictions:
    """A checkpoint's predictions on the windows of one split, in file order."""

    indices: np.ndarray  # (n,) window index in the file
    window_ids: np.ndarray
    subjects: np.ndarray
    start: np.ndarray  # first sample in its recording, as the file says (-1 unknown)
    ppg: np.ndarray  # (n, L) raw PPG, float32 as the window file stores it
    abp: np.ndarray  # (n, L) reference ABP, mmHg, float32 as the window file stores it
    abp_pred: np.ndarray  # (n, L) predicted ABP, mmHg, float64
    # (n, L) z-scored PPG from the reverse pass: float32, the network's own precision
    ppg_pred: np.ndarray | None = None

    @property
    def order(self) -> np.ndarray:
        """The protocol's time order within a subject (:func:`time_order`)."""
        return time_order(self.start, self.indices, self.subjects)


def check_compatible(ckpt: Checkpoint, info: StoreInfo) -> None:
    """A checkpoint only takes windows of its own length and sampling rate."""
    if info.window_length != ckpt.window_length or not np.isclose(info.fs, ckpt.fs):
        raise DataError(
            f"{info.path} has windows of {info.window_length} samples at {info.fs:g} Hz, but "
            f"checkpoint {ckpt.path} was trained on {ckpt.window_length} samples at "
            f"{ckpt.fs:g} Hz; import the data at that rate and window length"
        )


def _split(name: str) -> str:
    """The split ``name`` as the caller chooses it: ``--split test``, ``split="test"``."""
    chosen = _CHOSEN_IN.get()
    return chosen[0](name) if chosen else option(f"--split {name}", f"split={name!r}")


def _split_value(name: str) -> str:
    """The split ``name`` alone, as a value the caller gives: ``val``, ``'val'``, ``"val"``."""
    return f'"{name}"' if _CHOSEN_IN.get() else option(name, repr(name))


def _data() -> str:
    """What chooses the data scored: ``--data``, ``data`` (or an experiment file's key)."""
    chosen = _CHOSEN_IN.get()
    return chosen[1] if chosen else option("--data", "data")


def _drop_test_fold() -> str:
    """The advice to score a file's split column, not a fold: the caller gave one."""
    return f"drop {option('--test-fold', 'test_fold')}"


def split_indices(
    ckpt: Checkpoint, info: StoreInfo, split: str, test_fold: int | None = None
) -> np.ndarray:
    """Window indices of ``split``, chosen the way the checkpoint's run chose them (its
    test/validation folds) unless ``test_fold`` says otherwise. ``all``: every window."""
    if split not in EVAL_SPLITS:
        raise DataError(f"split must be one of {', '.join(EVAL_SPLITS)}, but is {split!r}")
    if split == "all":
        if test_fold is not None:
            # A test fold chooses the test and validation windows; "all" takes every
            # window, so the fold would be recorded in the report without meaning anything.
            raise DataError(
                f"{option(f'--test-fold {test_fold}', f'test_fold={test_fold}')} chooses the "
                f"test split, but {_split('all')} scores every window; drop one of them"
            )
        idx = np.arange(info.n_windows)
        # On the file the checkpoint trained on, "all" holds its training windows: scored
        # with the rest without a word, they made half of a pooled "test" of 4,780 windows.
        _refuse_training_windows(ckpt, info, idx, split)
        return idx
    plan = scored_plan(ckpt, info, test_fold)
    val_fold = plan.val_fold
    idx = plan.indices(split)
    if len(idx) == 0:
        if split == "val" and val_fold == -1:
            # --split all would be refused here: on the run's own file it holds the
            # training windows.
            how = f"the run was trained without one (val_fold = -1); score {_split('test')}"
        elif trained_windows(ckpt, info) is not None:
            # --split all was advised here too, and refused (it holds the training
            # windows), its own message pointing back at this split: say what works.
            how = (
                f"this checkpoint was trained on this file, so {_split('all')} would score its "
                "training windows; hold out windows with 'innpar data split' and train on it "
                f"again, or score another data set ({_data()})"
            )
        else:
            how = f"use {_split('all')} for every window"
        raise DataError(f"{info.path}: the {split} split is empty: {how}")
    if split in ("test", "val"):
        _refuse_training_windows(ckpt, info, idx, split)
    return idx


def scored_plan(ckpt: Checkpoint, info: StoreInfo, test_fold: int | None = None) -> SplitPlan:
    """The train/val/test plan of ``info``'s file that :func:`split_indices` scores: the
    checkpoint run's test and validation folds unless ``test_fold`` says otherwise, and
    where the run gave none on a file with folds, :func:`plan_splits`'s own choice (the
    last fold), whose number the plan tells and the run's configuration does not."""
    tcfg = ckpt.run_config.train
    if test_fold is not None and not info.has_folds:
        raise DataError(
            f"{info.path} has no cross-validation folds, so test fold {test_fold} cannot be "
            f"used; {_drop_test_fold()} to score its split column"
        )
    if test_fold is None and info.has_folds:
        test_fold = tcfg.test_fold
    val_fold = tcfg.val_fold if test_fold == tcfg.test_fold else None
    if not info.has_splits and not info.has_folds:
        # plan_splits would point only at 'innpar data split'; a file to score as a whole
        # (a recording's windows, an external dataset) wants --split all.
        raise DataError(
            f"{info.path} assigns no windows to train/val/test and has no folds: score every "
            f"window with {_split('all')}, or assign splits with 'innpar data split'"
        )
    from innpar_freia.train import windows_fingerprint

    plan = plan_splits(info, test_fold, val_fold, check_subjects=False)
    # Parts that share a subject matter where the model trained on one of them: on another
    # data set (a Sensors model scored on BCG) it trained on none, and that set's own
    # train/test overlap does not touch the score.
    if ckpt.data.get("windows_sha256") == windows_fingerprint(info):
        try:
            check_subject_disjoint(info, plan)
        except DataError as exc:
            # New splits alone are no way out: the file's windows would no longer be the
            # ones its run trained on, and eval refuses that too.
            raise DataError(
                f"{exc}; this checkpoint was trained on this file's splits, so train it again "
                "on the new ones"
            ) from None
    return plan


def trained_windows(ckpt: Checkpoint, info: StoreInfo) -> np.ndarray | None:
    """Indices of the windows of ``info``'s file that were in the training split of the
    checkpoint's run, when it is the file the run trained on (same window ids and signals);
    ``None`` for another data set. A ``DataError`` when it is that file but its folds or
    split column have changed since, so that its training windows can no longer be told."""
    plan = _run_plan(ckpt, info)
    return None if plan is None else plan.train


class _NoPlan:
    """The run's own split does not apply to the file any more: no window is known."""

    train = val = np.zeros(0, dtype=np.int64)


def _run_plan(ckpt: Checkpoint, info: StoreInfo) -> Any:
    """The checkpoint's run's split plan on ``info``'s file, if it is the run's file."""
    from innpar_freia.train import content_fingerprint, split_fingerprint, windows_fingerprint

    stored = ckpt.data
    if stored.get("windows_sha256") != windows_fingerprint(info):
        return None  # other windows: another data set
    if "content_sha256" in stored and stored["content_sha256"] != content_fingerprint(
        info.path, info.n_windows
    ):
        return None  # the same ids with other signals: another data set
    tcfg = ckpt.run_config.train
    try:
        # The windows the run used, as it planned them: a file whose parts share a subject
        # is refused where its test windows are chosen (scored_plan), not taken here for
        # one whose folds have changed.
        run_plan = plan_splits(info, tcfg.test_fold, tcfg.val_fold, check_subjects=False)
    except DataError:
        run_plan = None  # the run's own split does not apply to this file any more
    if "split_sha256" in stored and (
        run_plan is None or split_fingerprint(info, run_plan) != stored["split_sha256"]
    ):
        raise DataError(
            f"{info.path} is the file this checkpoint was trained on, but its folds or split "
            "column have changed since, so its training windows cannot be told from test "
            "windows; score it on the file as it was (or another data set)"
        )
    return run_plan if run_plan is not None else _NoPlan()


def _refuse_training_windows(ckpt: Checkpoint, info: StoreInfo, idx: np.ndarray, split: str):
    """Scores of windows a model was trained on are not a test: refuse them when ``data``
    is the file the checkpoint was trained on and ``idx`` reaches into the training split
    the run used, or when that file's folds or split column have changed since
    (:func:`trained_windows`)."""
    plan = _run_plan(ckpt, info)
    if plan is None:
        return
    seen = np.intersect1d(idx, plan.train)
    if seen.size:
        held = [name for name in ("test", "val") if len(getattr(plan, name))]
        if split == "all" and held:
            how = (
                f"score {_split('test')} (or {_split_value('val')})"
                if len(held) == 2
                else f"score {_split(held[0])}"
            )
        elif split == "all":
            # Advising --split test here sent a file without held-out windows back to the
            # message that advised --split all.
            how = (
                "the file holds no test or validation windows of that run: hold out "
                "windows with 'innpar data split' and train on it again, or score another "
                f"data set ({_data()})"
            )
        elif plan.test_fold is not None:  # also where the nested scheme chose it
            how = f"give that run's test fold ({plan.test_fold})"
        else:
            how = f"{_drop_test_fold()} (the run used the file's split column)"
        raise DataError(
            f"{seen.size} of the {len(idx)} {_windows_of(split)} were in the training split "
            f"of this checkpoint's run: their scores would not measure generalisation; "
            f"{how}, or {_split('train')} to score training windows"
        )


def _refuse_copies_of_training_windows(
    ckpt: Checkpoint, info: StoreInfo, ppg: np.ndarray, abp: np.ndarray, split: str
) -> None:
    """Windows whose PPG or ABP is, sample for sample, that of a window the checkpoint was
    trained on are refused whatever their ids and file: renaming the ids of the training
    file (or importing its records again) had got round :func:`_refuse_training_windows`,
    and a test subject holding a training subject's signal is leakage the folds do not
    show (the exact duplicates of ``innpar data check``). Constant lines are no copies."""
    if ckpt.training_copies is None:
        return  # a checkpoint from before the keys were kept
    copied = np.zeros(len(ppg), dtype=bool)
    for name, x in (("ppg", ppg), ("abp", abp)):
        keys = copy_keys(x)
        copied |= (keys != NO_KEY) & np.isin(keys, ckpt.training_copies[name])
    n = int(copied.sum())
    if not n:
        return
    what = f"{n} of the {len(ppg)} {_windows_of(split)} of {info.path}"
    if trained_windows(ckpt, info) is not None:
        raise DataError(
            f"{what} have the PPG or the ABP, sample for sample, of a window in the training "
            "split of this checkpoint's run (copies in other subjects): their scores would not "
            f"measure generalisation; 'innpar data check {info.path}' lists the copies, and "
            f"'innpar data split {info.path} --folds K --join-shared' puts subjects that "
            "share signal in one fold (then train again)"
        )
    raise DataError(
        f"{what} have the PPG or the ABP, sample for sample, of a window this checkpoint was "
        "trained on (its training file under other window ids, or a file sharing its "
        "records): their scores would not measure generalisation; score data the run did "
        "not train on"
    )


def _windows_of(split: str) -> str:
    """ "test windows", or "windows" for ``all``."""
    return "windows" if split == "all" else f"{split} windows"


def predict(
    ckpt: Checkpoint,
    data: str | Path,
    split: str = "test",
    *,
    test_fold: int | None = None,
    inverse: bool = True,
    batch_size: int = 512,
) -> Predictions:
    """Run the checkpoint on ``split`` of ``data``; predictions de-normalised to mmHg.

    The windows are held as the file stores them (float32) and the reverse pass's PPG in
    float32 too (the network's precision), so that a split takes 20 bytes a sample."""
    info = read_info(data)
    check_compatible(ckpt, info)
    idx = split_indices(ckpt, info, split, test_fold)
    ppg, abp = load_split_arrays(data, idx, dtype=None)
    if split != "train":
        _refuse_copies_of_training_windows(ckpt, info, ppg, abp, split)
    abp_pred = ckpt.predict_abp(ppg, batch_size=batch_size)
    ppg_pred = None
    if inverse and getattr(ckpt.model, "invertible", True):
        ppg_pred = ckpt.predict_ppg(abp, batch_size=batch_size, dtype=np.float32)
    return Predictions(
        indices=idx,
        window_ids=info.window_ids[idx],
        subjects=info.subjects[idx].astype(str),
        start=np.asarray(info.start[idx], dtype=np.int64),
        ppg=ppg,
        abp=abp,
        abp_pred=abp_pred,
        ppg_pred=ppg_pred,
    )


def inverse_metrics(p: Predictions) -> dict[str, Any] | None:
    """PPG reconstructed from ABP by the reverse pass vs the z-scored PPG (z units).

    ``baseline_zero`` is the error of predicting 0 (every window's mean) for every sample:
    the yardstick an inverse MAE has to beat, as naive is for ABP.
    """
    if p.ppg_pred is None:
        return None
    n, length = p.ppg.shape
    errors, zero = WaveErrors.empty(n, length), WaveErrors.empty(n, length)
    for rows in blocks(n, length):
        ref = Normalisation.normalise_ppg(p.ppg[rows])
        errors.fill(rows, p.ppg_pred[rows], ref)
        zero.fill(rows, np.zeros_like(ref), ref)
    stats, baseline = errors.stats(), zero.stats()
    return {
        "units": "z-scored PPG",
        "mae": stats["mae"],
        "rmse": stats["rmse"],
        "r": stats["r"],
        "n_windows": stats["n_windows"],
        "r_windows": stats["r_windows"],
        "baseline_zero": {"mae": baseline["mae"], "rmse": baseline["rmse"]},
    }


def evaluate_full(
    checkpoint: str | Path | Checkpoint,
    data: str | Path,
    split: str = "test",
    *,
    test_fold: int | None = None,
    calibration: str | None = "offset-scale",
    batch_size: int = 512,
) -> tuple[dict[str, Any], Predictions, dict[str, Scored]]:
    """:func:`evaluate`, also returning the scored windows of every protocol and method
    (:func:`innpar_freia.metrics.protocol_windows`) for figures and predictions files."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    preds = predict(ckpt, data, split, test_fold=test_fold, batch_size=batch_size)
    args = (preds.abp_pred, preds.abp, preds.ppg, preds.subjects, preds.order, ckpt.fs)
    windows = protocol_windows(*args, baselines=ckpt.baselines, calibration=calibration)
    result = evaluate_predictions(
        *args, baselines=ckpt.baselines, calibration=calibration, windows=windows
    )
    info = read_info(data)
    result = {
        "checkpoint": str(ckpt.path),
        "epoch": ckpt.epoch,
        "preset": ckpt.run_config.preset,
        "data": str(Path(data)),
        "split": split,
        "test_fold": test_fold,
        "fold": scored_fold(ckpt, info, split, test_fold),
        "warning": "; ".join(
            w
            for w in (_selection_warning(ckpt, info, preds.indices, split), _training_warning(ckpt))
            if w
        )
        or None,
        "fs": ckpt.fs,
        "window_length": ckpt.window_length,
        **result,
        "inverse": inverse_metrics(preds),
    }
    return result, preds, windows


def scored_fold(
    ckpt: Checkpoint, info: StoreInfo, split: str, test_fold: int | None = None
) -> int | None:
    """The fold whose windows ``split`` scored, for the report: that of
    :func:`scored_plan`, not the run's configured test fold, which is ``None`` where the
    run let the nested scheme take the file's last fold (and the report then named no
    fold). ``None`` for ``train``, ``all`` and a file's split column."""
    if split not in ("test", "val") or not info.has_folds:
        return None
    plan = scored_plan(ckpt, info, test_fold)
    return plan.test_fold if split == "test" else plan.val_fold


def _training_warning(ckpt: Checkpoint) -> str | None:
    """A warning when another process is training the checkpoint's run now: its
    checkpoints are replaced as it goes, and the report is of one epoch on the way."""
    from innpar_freia.report import run_dir_of
    from innpar_freia.run_lock import held_by_another

    run = run_dir_of(ckpt.path)
    holder = held_by_another(run)
    if holder is None:
        return None
    return (
        f"its run {run} is being trained by another process{holder}: this scores its "
        f"{Path(ckpt.path).name} of epoch {ckpt.epoch} as it was then, not the run's final one"
    )


def _selection_warning(ckpt: Checkpoint, info: StoreInfo, idx: np.ndarray, split: str):
    """A warning when scored windows are the ones that chose the checkpoint (its run's
    validation split: ``--split val``, or ``--test-fold`` of the run's validation fold):
    their scores are optimistic, as the epoch was picked on them. ``None`` otherwise."""
    plan = _run_plan(ckpt, info)
    chose = None if plan is None else plan.val
    # Chosen on them: the epoch that was the best on validation when it was saved (best.pt,
    # or a last.pt whose last epoch was the best); other epochs only saw them scored.
    best = (ckpt.metrics or {}).get("best_epoch")
    if chose is None or best is None or int(best) != ckpt.epoch:
        return None
    seen = np.intersect1d(idx, chose)
    if not seen.size:
        return None
    # The plan's test fold, not the configuration's: None where the nested scheme chose it.
    fold = getattr(plan, "test_fold", None)
    better = f"; score the run's test fold ({fold}) for a test" if fold is not None else ""
    return (
        f"{seen.size} of the {len(idx)} {_windows_of(split)} are the validation windows this "
        f"checkpoint's run chose its epoch on (best.pt, early stopping): their scores are "
        f"optimistic{better}"
    )


def evaluate(
    checkpoint: str | Path | Checkpoint,
    data: str | Path,
    split: str = "test",
    *,
    test_fold: int | None = None,
    calibration: str | None = "offset-scale",
    batch_size: int = 512,
) -> tuple[dict[str, Any], Predictions]:
    """Score a checkpoint on ``split`` of ``data`` with the whole protocol.

    Returns the metrics dict (``calibration_free``, ``calibrated``, ``baselines``,
    ``inverse``, and what was evaluated) and the predictions.
    """
    result, preds, _ = evaluate_full(
        checkpoint,
        data,
        split,
        test_fold=test_fold,
        calibration=calibration,
        batch_size=batch_size,
    )
    return result, preds
