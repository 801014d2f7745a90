"""Tests that pin what a mutation audit of the folds and splits (innpar_freia.data.splits:
the seeded greedy fold assignment, the nested split column, ``innpar data split``'s
summary and refusals) and of the training data plumbing (innpar_freia.data.dataset: the
ABP normalisation, the split plan training and evaluation use, the lazy dataset and the
preloaded loader) found unguarded: each one fails when the bug named in its docstring is
put into the package. Expected values are worked out by hand from tiny files whose
subjects' window counts are chosen for it."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import distinct_windows

import innpar_freia.data.dataset as dataset_mod
from innpar_freia.data.dataset import (
    Normalisation,
    PreloadedLoader,
    WindowDataset,
    fit_normalisation,
    load_split_arrays,
    plan_splits,
    split_bytes,
)
from innpar_freia.data.splits import (
    assign_folds,
    fold_assignment_phrase,
    nested_split,
    split_file,
)
from innpar_freia.data.store import WindowWriter, read_info
from innpar_freia.errors import DataError

L = 16  # samples per window in the small files below

# Ten windows of four subjects, interleaved: a has 4 windows, b 3, c 2, d 1. By hand, 3
# folds, largest first to the fold with the fewest windows (no ties, so any seed): a -> 0,
# b -> 1, c -> 2, then d to fold 2 (2 windows, fewer than 3 and 4): folds of 4 | 3 | 3
# windows and 1 | 1 | 2 subjects.
SUBJECTS = ["a", "b", "c", "a", "d", "b", "a", "c", "b", "a"]
FOLDS = [0, 1, 2, 0, 2, 1, 0, 2, 1, 0]


def _write(path: Path, subjects=SUBJECTS, length: int = L, ppg=None, abp=None, **columns):
    """One window per entry of ``subjects``, ids w0.., fs 50 Hz; random signals unless
    given; ``columns`` (fold, split) as the writer takes them."""
    n = len(subjects)
    rng = np.random.default_rng(0)
    ppg = rng.normal(size=(n, length)) if ppg is None else ppg
    abp = 80 + 20 * rng.random((n, length)) if abp is None else abp
    with WindowWriter(path, fs=50.0, window_length=length, source_format="test") as w:
        w.append(ppg, abp, subject=list(subjects), window_id=[f"w{i}" for i in range(n)], **columns)
    return path


# ---- assign_folds ----------------------------------------------------------------------


def test_one_fold_is_refused() -> None:
    """Bug: the check ``k < 2`` weakened to ``k < 1``: one "fold" holding every subject
    was accepted, a cross-validation without anything to test on."""
    with pytest.raises(DataError, match="at least 2, but is 1"):
        assign_folds(np.array(SUBJECTS), 1)


def test_the_largest_subject_goes_to_fold_0_and_ties_to_the_lowest_fold() -> None:
    """Bug: equal folds chosen from the last one (``-j`` in the tie-break): the same seed
    numbered the folds the other way round, so a file's test fold 0 changed. By hand (see
    SUBJECTS): a -> 0, b -> 1, c -> 2, d -> 2, whatever the seed (no equal subjects)."""
    for seed in range(3):
        assert assign_folds(np.array(SUBJECTS), 3, seed=seed) == {"a": 0, "b": 1, "c": 2, "d": 2}


def test_equal_window_counts_go_to_the_fold_with_fewer_subjects() -> None:
    """Bug: the number of subjects left out of the tie-break (or never counted), so that
    two folds with as many windows were told apart by their number alone. By hand, 2
    folds, subjects of 4, 3, 3, 1, 1, 1 windows: 4 -> 0; 3 -> 1; 3 -> 1 (3 < 4): 4 | 6;
    1 -> 0, 1 -> 0: 6 | 6 with 3 | 2 subjects; the last 1 to fold 1, which has fewer
    subjects: 6 windows of 3 subjects | 7 of 3 (not 7 of 4 | 6 of 2)."""
    subjects = np.repeat(["p", "q", "r", "s", "t", "u"], [4, 3, 3, 1, 1, 1])
    for seed in range(4):  # the equal subjects' order does not change the counts
        fold_of = assign_folds(subjects, 2, seed=seed)
        per_fold = [
            (sum(fold_of[s] == f for s in subjects), sum(v == f for v in fold_of.values()))
            for f in (0, 1)
        ]
        assert per_fold == [(6, 3), (7, 3)], seed


def test_the_folds_do_not_depend_on_the_order_of_the_windows() -> None:
    """Bug: subjects numbered in order of first appearance instead of sorted by name: the
    seeded order of equally large subjects then followed the row order of the file, and
    the same subjects and seed gave other folds once a file's windows were reordered."""
    names = [f"s{i}" for i in range(6)]
    rows = np.array(names * 2)  # six subjects of 2 windows: all tied
    shuffled = np.array([*reversed(names), *names[::2], *names[1::2]])
    for seed in range(5):
        assert assign_folds(rows, 3, seed=seed) == assign_folds(shuffled, 3, seed=seed)


# ---- nested_split ----------------------------------------------------------------------


def test_a_test_fold_that_is_not_there_is_refused() -> None:
    """Bug: the check that the test fold is one of the folds dropped: test fold 7 of folds
    0-2 gave a split column with no test windows (and fold 0 as validation)."""
    with pytest.raises(DataError, match=r"test fold 7 is not one of the folds \[0, 1, 2\]"):
        nested_split(np.array([0, 1, 2, 0, 1, 2]), 7)


def test_validation_is_the_next_fold_present_not_test_plus_one() -> None:
    """Bug: the validation fold taken as ``(t + 1) mod K`` rather than the next of the
    folds present: folds 0, 1, 3 (fold 2 left out of a file) gave test fold 1 the absent
    fold 2 for validation, so none. By hand: t = 1 -> val 3; t = 3 -> val 0 (cyclic)."""
    fold = np.array([0, 1, 3, 3, 1, 0])
    assert nested_split(fold, 1).tolist() == ["train", "test", "val", "val", "test", "train"]
    assert nested_split(fold, 3).tolist() == ["val", "train", "test", "test", "train", "val"]


def test_the_folds_given_decide_the_validation_fold() -> None:
    """Bug: the ``folds`` argument ignored (the folds taken from the windows given): a part
    of a file holding folds 0 and 2 of 0-2 was refused as two folds, and with fold 1 as
    validation its fold-2 windows belong to training."""
    split = nested_split(np.array([0, 0, 2, 2]), 0, folds=np.array([0, 1, 2]))
    assert split.tolist() == ["test", "test", "train", "train"]


# ---- fold_assignment_phrase ------------------------------------------------------------


def test_the_phrase_names_joined_subjects_only_when_they_were_joined() -> None:
    """Bug: "subjects sharing signal joined" said whenever the record has a
    ``join_shared`` entry, false included; and a record that is not a dict shown as its
    str (a string record looked like the phrase itself) rather than its repr."""
    assert fold_assignment_phrase({"folds": 4, "seed": 1, "join_shared": False}) == (
        "4 folds, seed 1"
    )
    assert fold_assignment_phrase({"folds": 3, "seed": 0, "join_shared": True}) == (
        "3 folds, seed 0, subjects sharing signal joined"
    )
    assert fold_assignment_phrase("4 folds") == "'4 folds'"


# ---- split_file ------------------------------------------------------------------------


def test_split_summary_counts_each_fold_and_split_by_hand(tmp_path: Path) -> None:
    """Bugs: a fold's windows counted as those outside it, its subjects as every subject
    of the file, the split counts of val and test exchanged, or the test fold left out of
    the summary (what ``innpar data split`` prints). By hand (see SUBJECTS): folds 0 | 1 |
    2 hold 4 | 3 | 3 windows of 1 | 1 | 2 subjects; test fold 0: test 4, val 3, train 3."""
    path = _write(tmp_path / "s.h5")
    summary = split_file(path, folds=3, seed=0, test_fold=0)
    assert summary["folds"] == {
        "0": {"windows": 4, "subjects": 1},
        "1": {"windows": 3, "subjects": 1},
        "2": {"windows": 3, "subjects": 2},
    }
    assert summary["splits"] == {"train": 3, "val": 3, "test": 4}
    assert summary["test_fold"] == 0
    info = read_info(path)
    assert info.fold.tolist() == FOLDS
    assert info.split.tolist() == [
        "test" if f == 0 else "val" if f == 1 else "train" for f in FOLDS
    ]


def test_replaced_folds_only_when_a_file_had_other_folds(tmp_path: Path) -> None:
    """Bugs: ``replaced_folds`` (the command's "replaced the folds FILE had before") said
    of a file that had no folds, or of folds drawn again exactly as they were."""
    path = _write(tmp_path / "r.h5")
    assert split_file(path, folds=3, seed=0)["replaced_folds"] is False  # had none
    assert split_file(path, folds=3, seed=1)["replaced_folds"] is False  # the same again
    assert split_file(path, folds=4, seed=0)["replaced_folds"] is True  # a | b | c | d


def test_new_folds_without_a_test_fold_leave_the_split_column(tmp_path: Path) -> None:
    """Bug: the split column drawn again (for test fold 0) when no test fold is given:
    ``split_file(test_fold=None)`` promises to leave it."""
    split = ["train", "val", "test", "train", "", "val", "train", "test", "train", "val"]
    path = _write(tmp_path / "k.h5", split=split)
    summary = split_file(path, folds=3, seed=0, test_fold=None)
    assert "splits" not in summary
    info = read_info(path)
    assert info.split.tolist() == split and info.fold.tolist() == FOLDS


def test_kept_folds_must_cover_every_window(tmp_path: Path) -> None:
    """Bug: keeping the file's folds (``--keep-folds``) without checking that every window
    has one: windows without a fold silently dropped out of every split."""
    path = _write(tmp_path / "p.h5", fold=[0, 1, 2, 0, -1, 1, 0, 2, 1, 0])
    before = path.read_bytes()
    with pytest.raises(DataError, match="has no folds on every window to keep"):
        split_file(path, folds=None, test_fold=0)
    assert path.read_bytes() == before


def test_kept_folds_must_be_subject_disjoint(tmp_path: Path) -> None:
    """Bug: keeping folds that put a subject in two of them (here "a" in folds 0 and 1)
    wrote a split column that was not subject-disjoint, which training then refused."""
    path = _write(tmp_path / "s.h5", fold=[0, 1, 2, 0, 2, 1, 0, 2, 1, 1])
    before = path.read_bytes()
    message = (
        f"{path}: its folds put subject 'a' (folds 0, 1) in more than one fold, but folds must "
        "be subject-disjoint; assign folds with folds=K instead of folds=None"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        split_file(path, folds=None, test_fold=0)
    assert path.read_bytes() == before
    split_file(_write(tmp_path / "ok.h5", fold=FOLDS), folds=None, test_fold=0)


def test_joining_subjects_needs_new_folds(tmp_path: Path) -> None:
    """Bug: the refusal of ``join_shared`` with the file's own folds dropped: the file's
    split column was rewritten and then the call crashed (no groups were looked for)."""
    path = _write(tmp_path / "j.h5", fold=FOLDS)
    before = path.read_bytes()
    with pytest.raises(DataError, match="needs new folds, not the file's"):
        split_file(path, folds=None, test_fold=1, join_shared=True)
    assert path.read_bytes() == before


def test_a_file_without_windows_is_named_as_such(tmp_path: Path) -> None:
    """Bug: the empty-file check dropped: the error then spoke of "at least 3 subjects, but
    there are 0" instead of saying the file holds no windows."""
    path = tmp_path / "empty.h5"
    with WindowWriter(path, fs=50.0, window_length=L, source_format="test"):
        pass
    with pytest.raises(DataError, match="holds no windows"):
        split_file(path, folds=3)


def _shared_file(path: Path) -> Path:
    """Subjects a and b of 3 windows each, c and d of 2; b's first window is a copy of a's
    first (the same patient under two ids)."""
    subjects = ["a", "a", "a", "b", "b", "b", "c", "c", "d", "d"]
    ppg, abp = distinct_windows(len(subjects))
    ppg[3], abp[3] = ppg[0], abp[0]
    with WindowWriter(path, fs=125.0, window_length=625, source_format="test") as w:
        w.append(ppg, abp, subject=subjects, window_id=[f"w{i}" for i in range(10)])
    return path


def test_subjects_sharing_signal_are_placed_as_one(tmp_path: Path) -> None:
    """Bugs: the groups found not used for the assignment (a and b, 3 windows each, then
    go to folds 0 and 1), or the joined subjects left out of the summary. By hand: the
    group a+b (6 windows) -> fold 0, c and d (2 each) -> folds 1 and 2."""
    path = _shared_file(tmp_path / "g.h5")
    summary = split_file(path, folds=3, seed=0, test_fold=0, join_shared=True)
    assert summary["joined_subjects"] == [["a", "b"]]
    assert summary["fold_assignment"] == (
        "seeded greedy, seed 0; 2 subjects sharing signal joined in 1 group"
    )
    fold = read_info(path).fold.tolist()
    assert fold[:6] == [0] * 6 and sorted({fold[6], fold[8]}) == [1, 2]
    assert summary["folds"]["0"] == {"windows": 6, "subjects": 2}


def test_too_few_groups_for_the_folds_names_groups(tmp_path: Path) -> None:
    """Bug: the error counting groups of subjects called them subjects: "4 folds need at
    least 4 subjects, but there are 3" of a file of 4 subjects."""
    path = _shared_file(tmp_path / "few.h5")
    with pytest.raises(
        DataError, match="need at least 4 groups of subjects sharing signal, but there are 3"
    ):
        split_file(path, folds=4, join_shared=True)


# ---- Normalisation and fit_normalisation ------------------------------------------------


def test_the_normalisation_record_round_trips() -> None:
    """Bugs: offset and scale read back exchanged from a checkpoint's record, or the record
    no longer saying how the PPG was normalised (z-scored per window)."""
    norm = Normalisation("zscore", 92.5, 14.25)
    record = norm.to_dict()
    assert record == {
        "method": "zscore",
        "abp_offset": 92.5,
        "abp_scale": 14.25,
        "ppg": "zscore-per-window",
    }
    assert Normalisation.from_dict(record) == norm


def _abp_rows(path: Path, abp: np.ndarray) -> Path:
    n, length = abp.shape
    ppg = np.random.default_rng(0).normal(size=(n, length))
    return _write(path, [f"s{i}" for i in range(n)], length=length, ppg=ppg, abp=abp)


def test_the_training_extremes_found_in_any_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bugs: the running minimum or maximum replaced by the last block's, so that extremes
    in an earlier block of the stream are lost. Training rows 0-4 in blocks of 2 (0-1,
    2-3, 4): the minimum 50 and maximum 200 are both in the first block; minmax: offset 50,
    scale 150. The mean by hand: 50 + 15 x 100, 15 x 100 + 200, 3 x (16 x 90 + 0 + ... +
    15) over 80 samples: (1550 + 1700 + 4680) / 80 = 99.125. Row 5 (10 and 300) is not
    training."""
    abp = np.tile(90.0 + np.arange(16.0), (6, 1))
    abp[0], abp[1] = 100.0, 100.0
    abp[0, 0], abp[1, 15] = 50.0, 200.0
    abp[5, 0], abp[5, 1] = 10.0, 300.0
    path = _abp_rows(tmp_path / "x.h5", abp)
    monkeypatch.setattr(dataset_mod, "STATS_BLOCK", 2)
    train = np.arange(5)
    minmax = fit_normalisation(path, train, "minmax")
    assert (minmax.abp_offset, minmax.abp_scale) == (50.0, 150.0)
    assert fit_normalisation(path, train, "zscore").abp_offset == 99.125


def test_an_empty_training_split_or_an_unknown_method_is_named(tmp_path: Path) -> None:
    """Bugs: the empty-split check dropped (minmax then spoke of a "constant" ABP of inf
    mmHg, zscore divided by zero), or an unknown method fitted as one of the two."""
    path = _write(tmp_path / "e.h5")
    for method in ("minmax", "zscore"):
        with pytest.raises(DataError, match="the training split is empty"):
            fit_normalisation(path, np.array([], dtype=np.int64), method)
    with pytest.raises(DataError, match="unknown ABP normalisation 'robust'; use minmax or zscore"):
        fit_normalisation(path, np.arange(10), "robust")


def test_a_constant_training_abp_is_refused_by_either_method(tmp_path: Path) -> None:
    """Bugs: the refusal of a constant training ABP weakened (``scale < 0`` for ``scale <=
    0``: minmax's scale of 0 then divided by zero). And a real one this audit found (fixed
    by refusing any training ABP whose minimum is its maximum): zscore summed the squares
    of 1000 windows of 120.1 mmHg to a variance of rounding error, a scale of 1.3e-6 mmHg
    that was accepted (any other ABP then normalised to millions)."""
    path = _abp_rows(tmp_path / "c.h5", np.full((3, L), 100.0))
    for method in ("minmax", "zscore"):
        with pytest.raises(DataError, match=r"training ABP is constant \(100.0 mmHg\)"):
            fit_normalisation(path, np.arange(3), method)
    path = _abp_rows(tmp_path / "c1000.h5", np.full((1000, L), 120.1))
    for method in ("minmax", "zscore"):
        with pytest.raises(DataError, match="training ABP is constant"):
            fit_normalisation(path, np.arange(1000), method)


def test_a_zscore_scale_that_rounds_to_zero_is_refused(tmp_path: Path) -> None:
    """Bug: ``scale < 0`` for ``scale <= 0``. Training ABP of 93.7 mmHg with one sample a
    float32 step higher is not constant, but zscore's sums of squares leave it a variance
    of exactly 0 (clamped from rounding): a scale of 0 must never come out (it divides by
    zero); minmax gives the one step (7.6e-6 mmHg)."""
    abp = np.full((10, L), np.float32(93.7))
    abp[0, 0] = np.nextafter(np.float32(93.7), np.float32(1000))
    path = _abp_rows(tmp_path / "z.h5", abp.astype(np.float64))
    try:
        norm = fit_normalisation(path, np.arange(10), "zscore")
    except DataError as e:
        assert "training ABP is constant" in str(e)
    else:
        assert norm.abp_scale > 0
    step = float(abp[0, 0]) - float(abp[0, 1])
    assert fit_normalisation(path, np.arange(10), "minmax").abp_scale == step > 0


# ---- SplitPlan and plan_splits ---------------------------------------------------------

# Each window its own subject: any fold or split column is subject-disjoint, as a plan must be.
OWN = [f"s{i}" for i in range(10)]
COLUMN = ["val", "train", "test", "train", "val", "train", "test", "train", "", "train"]


def test_a_split_column_plan_by_hand(tmp_path: Path) -> None:
    """Bugs: the split column's val windows taken from its test ones, ``indices("all")``
    left in train, val, test order instead of sorted, a split name other than the four
    (``validation``) answered with something other than a clear error, or ``describe``
    counting another split's windows. By hand from COLUMN: train 1 3 5 7 9, val 0 4, test
    2 6, row 8 in none."""
    plan = plan_splits(read_info(_write(tmp_path / "c.h5", OWN, split=COLUMN)))
    assert plan.train.tolist() == [1, 3, 5, 7, 9]
    assert plan.val.tolist() == [0, 4] and plan.test.tolist() == [2, 6]
    assert plan.indices("all").tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9]
    with pytest.raises(
        DataError, match="split must be one of train, val, test, all, but is 'validation'"
    ):
        plan.indices("validation")
    assert plan.describe() == {
        "scheme": "split-column",
        "test_fold": None,
        "val_fold": None,
        "windows": {"train": 5, "val": 2, "test": 2},
    }


def test_fold_numbers_must_be_whole_numbers_not_bools_or_floats(tmp_path: Path) -> None:
    """Bugs: ``True`` taken for fold 1 (a bool is an int to Python), or any type let
    through (``1.0`` equals fold 1); a NumPy integer is a whole number and is taken."""
    info = read_info(_write(tmp_path / "f.h5", fold=FOLDS))
    with pytest.raises(TypeError, match="test_fold must be a whole number, not True"):
        plan_splits(info, test_fold=True)
    with pytest.raises(TypeError, match=r"val_fold must be a whole number, not 1\.0"):
        plan_splits(info, test_fold=0, val_fold=1.0)
    plan = plan_splits(info, test_fold=np.int64(2))
    assert (plan.test_fold, plan.val_fold) == (2, 0)


def test_folds_asked_of_a_file_without_folds_or_splits_are_named(tmp_path: Path) -> None:
    """Bugs: the check that a file has folds dropped (the message then listed no folds:
    "test fold 0 is not in FILE (folds: )"), or the check that a file without folds has a
    split column dropped (an empty plan trained on nothing)."""
    info = read_info(_write(tmp_path / "n.h5"))
    with pytest.raises(DataError, match="has no cross-validation folds, so test fold 0 cannot"):
        plan_splits(info, test_fold=0)
    with pytest.raises(DataError, match="assigns no windows to train/val/test and has no folds"):
        plan_splits(info)


def test_two_folds_train_only_without_validation(tmp_path: Path) -> None:
    """Bugs: ``val_fold = -1`` (the release's recipe: no validation) refused on a file of 2
    folds, or refused as a fold that is not there; and 2 folds accepted for the nested
    scheme with validation (its training split would be empty)."""
    two = [0, 1, 0, 1, 1, 0, 1, 0, 0, 1]
    info = read_info(_write(tmp_path / "two.h5", OWN, fold=two))
    plan = plan_splits(info, test_fold=0, val_fold=-1)
    assert plan.train.tolist() == [1, 3, 4, 6, 9] and plan.val.tolist() == []
    assert plan.test.tolist() == [0, 2, 5, 7, 8] and plan.val_fold == -1
    with pytest.raises(DataError, match="has 2 folds; the nested scheme needs at least 3"):
        plan_splits(info, test_fold=0)
    plan = plan_splits(read_info(_write(tmp_path / "three.h5", fold=FOLDS)), 1, val_fold=-1)
    assert plan.train.tolist() == [0, 2, 3, 4, 6, 7, 9] and plan.val.tolist() == []


def test_the_plan_s_validation_fold_is_the_next_present_and_must_exist(tmp_path: Path) -> None:
    """Bugs: validation fold ``(t + 1) mod K`` instead of the next fold present: with
    folds 0, 1, 3 test fold 1 got the absent fold 2 (no validation windows); and a
    validation fold given that the file does not have accepted (an empty validation)."""
    fold = [0, 1, 3, 3, 1, 0, 1, 3, 0, 0]
    info = read_info(_write(tmp_path / "g.h5", OWN, fold=fold))
    plan = plan_splits(info, test_fold=1)
    assert plan.val_fold == 3 and plan.val.tolist() == [2, 3, 7]
    assert plan.train.tolist() == [0, 5, 8, 9] and plan.test.tolist() == [1, 4, 6]
    assert plan_splits(info, test_fold=3).val_fold == 0
    with pytest.raises(DataError, match="validation fold 2 is not in"):
        plan_splits(info, test_fold=1, val_fold=2)


# ---- WindowDataset, PreloadedLoader, split_bytes, load_split_arrays ---------------------


def _dataset(tmp_path: Path) -> WindowDataset:
    path = _write(tmp_path / "d.h5")
    return WindowDataset(
        path, np.array([7, 2, 9, 0, 4, 5, 1, 8, 3]), Normalisation("minmax", 80.0, 20.0)
    )


def test_a_dataset_reopens_its_file_in_another_process_and_after_close(tmp_path: Path) -> None:
    """Bugs: a handle opened by another process reused (a forked DataLoader worker reading
    through its parent's HDF5 handle), a closed handle kept (reading after ``close``
    fails), or the handle pickled along to spawned workers (h5py handles cannot be)."""
    ds = _dataset(tmp_path)
    first = ds[0]
    handle = ds._fh
    ds._pid = -1  # as a forked worker sees the handle its parent opened
    assert torch.equal(ds[0][0], first[0]) and ds._fh is not handle
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._fh is None and torch.equal(copy[0][1], first[1])
    ds.close()
    assert torch.equal(ds[0][1], first[1])  # opened again
    ds.close()
    copy.close()


def test_the_preloaded_loader_holds_every_window_in_blocks_and_closes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bugs: a window dropped at the end of each preloaded block (seen with blocks of 4 of
    9 windows), the last window left out without a sampler or ``len`` counting one batch
    short, or the dataset's file left open once everything is in memory."""
    ds = _dataset(tmp_path)
    expected = [ds[i] for i in range(len(ds))]
    monkeypatch.setattr(dataset_mod, "STATS_BLOCK", 4)
    loader = PreloadedLoader(ds, 4, torch.device("cpu"))
    assert ds._fh is None
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and [len(b[2]) for b in batches] == [4, 4, 1]
    rows = torch.cat([b[2] for b in batches])
    assert rows.tolist() == [7, 2, 9, 0, 4, 5, 1, 8, 3]
    assert torch.equal(torch.cat([b[0] for b in batches]), torch.stack([e[0] for e in expected]))
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.stack([e[1] for e in expected]))


def test_split_bytes_counts_ppg_and_abp_as_float32() -> None:
    """Bug: the memory of one signal only (the preload decision then let through splits
    twice the limit). 10 windows of 625 samples, two signals of 4 bytes: 50 000 bytes."""
    assert split_bytes(10, 625) == 50_000


def test_load_split_arrays_gives_ppg_then_abp_as_float64_in_the_order_asked(
    tmp_path: Path,
) -> None:
    """Bugs: ABP and PPG returned the other way round, or the float32 of the file returned
    as it is (the protocol computes in float64). ABP rows are 100 + row, PPG rows -row."""
    rows = np.arange(4.0)[:, None] * np.ones(L)
    path = _write(tmp_path / "a.h5", subjects=["a", "b", "c", "d"], ppg=-rows, abp=100 + rows)
    ppg, abp = load_split_arrays(path, np.array([2, 0, 3]))
    assert ppg.dtype == abp.dtype == np.float64
    assert ppg[:, 0].tolist() == [-2.0, 0.0, -3.0] and abp[:, 0].tolist() == [102.0, 100.0, 103.0]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"folds": 2.5},
            "folds must be a whole number >= 0 (or None: keep the file's folds), but is 2.5",
        ),
        (
            {"folds": "4"},
            "folds must be a whole number >= 0 (or None: keep the file's folds), but is '4'",
        ),
        ({"seed": -1}, "seed must be a whole number >= 0, but is -1"),
        ({"seed": True}, "seed must be a whole number >= 0, but is True"),
        ({"test_fold": "0"}, "test_fold must be a whole number >= 0 (or None: leave the split"),
    ],
)
def test_split_file_names_a_number_of_the_wrong_kind(tmp_path: Path, kw, message) -> None:
    """folds=2.5 was "can't multiply sequence by non-int of type 'float'", folds="4" a
    failed comparison, seed=-1 numpy's "expected non-negative integer"; the file is left
    as it was."""
    path = _write(tmp_path / "a.h5")
    before = path.read_bytes()
    with pytest.raises(DataError) as err:
        split_file(path, **{"folds": 3, **kw})
    assert message in str(err.value)
    assert path.read_bytes() == before


def test_split_file_takes_numpy_integers(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.h5")
    assert len(split_file(path, folds=np.int64(3), seed=np.int32(1))["folds"]) == 3
    made = read_info(path).provenance["fold_assignment"]
    assert (made["folds"], made["seed"]) == (3, 1)
