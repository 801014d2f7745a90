"""Subject-disjoint cross-validation folds and bp-benchmark's nested train/val/test split.

``innpar data split`` writes two per-window columns of the HDF5 file:

* ``fold``: ``0..K-1``, every subject's windows in one fold. Subjects go, largest first
  (ties in a seeded random order), to the fold with the fewest windows so far, so the
  folds hold nearly equal numbers of windows (the data README's "seeded greedy split").
  With ``--join-shared``, subjects whose windows share signal (copies found as the
  leakage check finds them, across the whole file) are placed as one.
* ``split``: the nested scheme for one test fold ``t``: ``test`` = fold ``t``, ``val`` =
  fold ``(t + 1) mod K``, ``train`` = the other folds. Training with ``--test-fold``
  applies the same scheme to any ``t``; the column is what training uses without it.
"""

from __future__ import annotations

import numbers
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.data.import_report import Progress
from innpar_freia.data.leakage import shared_signal
from innpar_freia.data.store import read_info, write_assignments
from innpar_freia.errors import DataError, option

# The nested scheme: a test fold, the next one for validation, the rest for training.
MIN_FOLDS = 3


def assign_folds(
    subjects: np.ndarray, k: int, seed: int = 0, unit: str = "subjects"
) -> dict[str, int]:
    """Seeded greedy assignment of subjects to ``k`` folds balancing window counts.

    Args:
        subjects: the subject id of every window (``(n,)``), or of its group of subjects.
        k: number of folds, at least 2 and at most the number of subjects.
        seed: seed of the order in which equally large subjects are placed.
        unit: what ``subjects`` holds, as error messages name it.
    """
    counts = Counter(str(s) for s in subjects)
    _check_fold_count(k, len(counts), unit)
    names = sorted(counts)
    order = np.random.default_rng(seed).permutation(len(names))
    # Largest subjects first; the permutation breaks ties reproducibly.
    ranked = sorted(range(len(names)), key=lambda i: (-counts[names[i]], int(order[i])))
    windows = [0] * k
    members = [0] * k
    fold_of: dict[str, int] = {}
    for i in ranked:
        f = min(range(k), key=lambda j: (windows[j], members[j], j))
        fold_of[names[i]] = f
        windows[f] += counts[names[i]]
        members[f] += 1
    return fold_of


def _check_fold_count(k: int, units: int, unit: str) -> None:
    """Refuse ``k`` folds of ``units`` subjects (or groups): fewer than 2, or more than them."""
    if k < 2:
        raise DataError(f"the number of folds must be at least 2, but is {k}")
    if units < k:
        raise DataError(
            f"{k} subject-disjoint folds need at least {k} {unit}, but there are {units}"
        )


def _check_kept_folds_disjoint(path: str | Path, subjects: np.ndarray, fold: np.ndarray) -> None:
    """Refuse to keep folds that put a subject in two of them (edited by hand, written by
    another tool): the split column drawn from them was not subject-disjoint, and training
    on it is refused (plan_splits) only after the file has been rewritten."""
    names, code = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    pairs = np.unique(np.stack([code.ravel(), np.asarray(fold)]), axis=1)  # (subject, fold)
    shared = np.flatnonzero(np.bincount(pairs[0], minlength=len(names)) > 1)
    if not shared.size:
        return
    listed = ", ".join(
        f"{str(names[i])!r} (folds {', '.join(str(int(k)) for k in pairs[1][pairs[0] == i])})"
        for i in shared[:5]
    )
    more = f" and {len(shared) - 5} more" if len(shared) > 5 else ""
    raise DataError(
        f"{path}: its folds put subject{'s' if len(shared) > 1 else ''} {listed}{more} in more "
        f"than one fold, but folds must be subject-disjoint; assign folds with {_new_folds()}"
    )


def _new_folds() -> str:
    """New folds instead of the file's, as split_file's caller asks for them."""
    return option("--folds K instead of --keep-folds", "folds=K instead of folds=None")


def nested_split(fold: np.ndarray, test_fold: int, folds: np.ndarray | None = None) -> np.ndarray:
    """``split`` column of the nested scheme: test fold ``t``, validation the next fold
    (cyclically, in the sorted order of the folds present), training the rest. Windows
    without a fold (-1) get ``""``."""
    fold = np.asarray(fold)
    present = np.unique(fold[fold >= 0]) if folds is None else np.asarray(folds)
    if test_fold not in present:
        raise DataError(f"test fold {test_fold} is not one of the folds {present.tolist()}")
    if len(present) < 3:
        raise DataError(
            f"the nested scheme needs at least {MIN_FOLDS} folds, but there are {len(present)}"
        )
    val_fold = present[(int(np.searchsorted(present, test_fold)) + 1) % len(present)]
    split = np.full(fold.shape, "", dtype=object)
    split[fold >= 0] = "train"
    split[fold == val_fold] = "val"
    split[fold == test_fold] = "test"
    return split


def fold_assignment_phrase(assignment: Any) -> str:
    """How ``innpar data split`` made a file's folds (its provenance's ``fold_assignment``),
    in words: "4 folds, seed 0, subjects sharing signal joined"."""
    if not isinstance(assignment, dict):
        return repr(assignment)
    joined = ", subjects sharing signal joined" if assignment.get("join_shared") else ""
    return f"{assignment.get('folds')} folds, seed {assignment.get('seed')}{joined}"


def _whole(name: str, value: Any, none: str = "") -> int | None:
    """``value`` as an int (a numpy one too); None where ``none`` says what it means."""
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise DataError(f"{name} must be a whole number >= 0{none}, but is {value!r}")
    return int(value)


def _split_arguments(folds: Any, seed: Any, test_fold: Any) -> tuple[Any, int, Any]:
    """split_file's numbers, named when wrong: folds=2.5 was "can't multiply sequence by
    non-int of type 'float'", folds="4" a failed comparison, seed=-1 numpy's "expected
    non-negative integer"."""
    return (
        _whole("folds", folds, " (or None: keep the file's folds)"),
        _whole("seed", seed),
        _whole("test_fold", test_fold, " (or None: leave the split column)"),
    )


def split_file(
    path: str | Path,
    folds: int | None = 5,
    seed: int = 0,
    test_fold: int | None = 0,
    join_shared: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Assign subject-disjoint folds (unless ``folds`` is ``None``: keep the file's folds)
    and fill the split column by the nested scheme for ``test_fold`` (unless ``None``:
    leave it). With ``join_shared``, subjects whose windows share signal (the leakage
    check's exact, near and shifted copies, looked for across the whole file) go to one
    fold together; ``progress`` is told of that search's stages and steps (it compares
    every window with every other: minutes at 100,000 windows). Returns a JSON-ready
    summary of what was written."""
    folds, seed, test_fold = _split_arguments(folds, seed, test_fold)
    if join_shared and folds is None:
        raise DataError("joining subjects that share signal needs new folds, not the file's")
    # A split column or fold column being replaced may hold anything; one kept must be valid.
    info = read_info(path, check_split=test_fold is None, check_folds=folds is None)
    if info.n_windows == 0:
        raise DataError(f"{path} holds no windows")
    if folds is None:
        if not info.has_folds:
            raise DataError(
                f"{path} has no folds on every window to keep; assign them with "
                + option("--folds K", "folds=K")
            )
        fold = info.fold
        _check_kept_folds_disjoint(path, info.subjects, fold)
        scheme = "kept"
        kept = np.unique(fold)
        if test_fold is not None and len(kept) < MIN_FOLDS:
            # Was "the nested scheme needs at least 3 folds, but there are 1", which named
            # neither the file nor the way out.
            raise DataError(
                f"{path} has {len(kept)} fold(s) ({', '.join(str(int(f)) for f in kept)}) to "
                f"keep; a train/val/test split needs at least {MIN_FOLDS}: assign folds with "
                + _new_folds()
            )
    else:
        units = np.array([str(s) for s in info.subjects], dtype=object)
        scheme = f"seeded greedy, seed {seed}"
        if join_shared:
            # Joining only merges subjects, so what the subjects alone rule out is told
            # before the comparison of every window with every other (minutes on a big file).
            _check_fold_count(folds, len(np.unique(units)), "subjects")
            if test_fold is not None:
                nested_split(np.arange(folds), test_fold)
            shared = shared_signal(path, progress=progress)
            units = np.array([shared.groups[u] for u in units], dtype=object)
            joined = shared.joined
            scheme += (
                f"; {sum(len(g) for g in joined)} subjects sharing signal joined in "
                f"{len(joined)} group{'s' if len(joined) != 1 else ''}"
            )
        what = "groups of subjects sharing signal" if join_shared else "subjects"
        fold_of = assign_folds(units, folds, seed, unit=what)
        fold = np.array([fold_of[u] for u in units], dtype=np.int64)
    split = None if test_fold is None else nested_split(fold, test_fold)
    made = {"folds": folds, "seed": seed, "join_shared": join_shared}
    write_assignments(path, split, *((fold, made) if folds is not None else (None, None)))
    summary: dict[str, Any] = {
        "path": str(path),
        "folds": {
            str(int(k)): {
                "windows": int(np.sum(fold == k)),
                "subjects": len(np.unique(info.subjects[fold == k])),
            }
            for k in np.unique(fold)
        },
        "fold_assignment": scheme,
        # Folds the file had before (e.g. bp-benchmark's), now replaced by new ones.
        "replaced_folds": folds is not None
        and bool(np.any(info.fold >= 0))
        and not np.array_equal(fold, info.fold),
        "test_fold": test_fold,
    }
    if split is not None:
        summary["splits"] = {s: int(np.sum(split == s)) for s in ("train", "val", "test")}
    if join_shared:
        summary["joined_subjects"] = joined
        summary["shared_signal"] = shared.links
    return summary
