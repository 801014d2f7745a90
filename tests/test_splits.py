"""Subject-disjoint folds, the nested split column, and the leakage check."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import distinct_windows, run_cli

from innpar_freia.data.dataset import plan_splits
from innpar_freia.data.importers import import_bp_benchmark
from innpar_freia.data.leakage import check_leakage, signatures
from innpar_freia.data.splits import assign_folds, nested_split
from innpar_freia.data.store import WindowWriter, read_info, read_signals
from innpar_freia.errors import DataError


def test_assign_folds_is_subject_disjoint_balanced_and_seeded() -> None:
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 60, size=40)
    subjects = np.repeat([f"s{i}" for i in range(40)], sizes)
    fold_of = assign_folds(subjects, 5, seed=3)
    assert sorted(fold_of) == sorted({f"s{i}" for i in range(40)})
    counts = np.bincount([fold_of[s] for s in subjects], minlength=5)
    # Greedy largest-first: the spread is at most the largest subject's size.
    assert counts.max() - counts.min() <= sizes.max()
    assert counts.max() - counts.min() <= 0.1 * counts.mean()
    assert assign_folds(subjects, 5, seed=3) == fold_of
    # Equally sized subjects are placed in seeded order.
    same = np.repeat([f"t{i}" for i in range(20)], 10)
    assert assign_folds(same, 4, seed=0) != assign_folds(same, 4, seed=1)
    with pytest.raises(DataError, match="at least 5 subjects"):
        assign_folds(np.array(["a", "b", "c"]), 5)


def test_nested_split_matches_training_plan(synth_file: Path) -> None:
    info = read_info(synth_file)
    for t in range(5):
        split = nested_split(info.fold, t)
        plan = plan_splits(info, test_fold=t)
        for name in ("train", "val", "test"):
            assert np.array_equal(np.flatnonzero(split == name), plan.indices(name)), (t, name)
    with pytest.raises(DataError, match="at least 3 folds"):
        nested_split(np.array([0, 1, 0]), 0)


def test_split_cli_then_check_is_clean(synth_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    shutil.copy(synth_file, path)
    result = run_cli("data", "split", path, "--folds", 4, "--seed", 2, "--test-fold", 1, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    info = read_info(path)
    assert sorted(summary["folds"]) == ["0", "1", "2", "3"]
    for subject in np.unique(info.subjects):
        assert len(np.unique(info.fold[info.subjects == subject])) == 1
    assert np.array_equal(info.split == "test", info.fold == 1)
    assert np.array_equal(info.split == "val", info.fold == 2)
    assert summary["splits"]["train"] == int(np.sum(np.isin(info.fold, [0, 3])))
    # plan_splits (what training uses) follows the split column without --test-fold
    plan = plan_splits(info)
    assert plan.scheme == "split-column"
    assert np.array_equal(plan.test, np.flatnonzero(info.fold == 1))
    # The synthetic pulses are so regular that two subjects' windows can reach r = 0.991
    # on 64-point signatures (near duplicates at the default 0.99); copies are above 0.999.
    # In a synthetic file that is expected, and not leakage (the demo's data was "LEAKAGE
    # FOUND", exit 3).
    result = run_cli("data", "check", path, "--json")
    assert result.exit_code == 0, result.output
    for part in json.loads(result.stdout)["partitions"]:
        assert part["subjects_in_several_parts"] == 0 and part["exact_duplicate_windows"] == 0
        assert part["near_duplicate_pairs_above_0_999"] == 0
        assert part["near_duplicates_expected"] and not part["leakage"]
    result = run_cli("data", "check", path, "--threshold", 0.995)
    assert result.exit_code == 0, result.output
    assert "OK  no leakage across splits" in result.output
    assert "OK  no leakage across folds" in result.output


def _leaky_file(source: Path, out: Path, source_format: str = "t") -> dict[str, int]:
    """A copy of ``source`` plus windows leaked into other folds: 3 exact copies, 2 near
    copies (rescaled, offset, lightly noised) under new subject names, and one subject
    split across two folds."""
    info = read_info(source)
    ppg, abp = read_signals(source)
    rng = np.random.default_rng(0)
    k = int(info.fold.max()) + 1
    with WindowWriter(
        out, fs=info.fs, window_length=info.window_length, source_format=source_format
    ) as w:
        w.append(ppg, abp, subject=info.subjects, window_id=info.window_ids, fold=info.fold)
        for n, i in enumerate([0, 40, 80]):
            w.append(ppg[i : i + 1], abp[i : i + 1], subject=f"copy{n}", window_id=f"copy{n}",
                     fold=(info.fold[i] + 1) % k)  # fmt: skip
        for n, i in enumerate([10, 50]):
            noisy_p = 3.0 * ppg[i] + 7.0 + rng.normal(0, 0.02 * ppg[i].std(), ppg.shape[1])
            noisy_a = abp[i] + 0.5 + rng.normal(0, 0.3, abp.shape[1])
            w.append(noisy_p[None], noisy_a[None], subject=f"near{n}", window_id=f"near{n}",
                     fold=(info.fold[i] + 2) % k)  # fmt: skip
        i = 20
        other_abp = 90 + 20 * np.sin(np.arange(abp.shape[1]) / 9)[None]
        w.append(ppg[i : i + 1] * 0.5 + 1, other_abp, subject=info.subjects[i],
                 window_id="moved", fold=(info.fold[i] + 1) % k)  # fmt: skip
    return {"exact": 3, "near": 2}


@pytest.mark.parametrize("source_format", ["t", "synthetic"])
def test_check_flags_duplicates_across_folds(
    synth_file: Path, tmp_path: Path, source_format: str
) -> None:
    # Copies are leakage in synthetic files too: only their subjects' likeness is expected.
    path = tmp_path / "leaky.h5"
    _leaky_file(synth_file, path, source_format)
    report = check_leakage(path).to_dict()
    assert report["leakage"] and report["checked"] == ["fold"]
    p = report["partitions"][0]
    assert p["subjects_in_several_parts"] == 1
    assert p["exact_duplicate_windows"] == 6 and p["exact_duplicate_pairs"] == {"ppg": 3, "abp": 3}
    assert p["near_duplicate_pairs"] == p["near_duplicate_pairs_above_0_999"] == 2
    assert {e["b"]["window"] for e in p["near_examples"]} == {"near0", "near1"}
    result = run_cli("data", "check", path)
    assert result.exit_code == 3
    assert "LEAKAGE FOUND across folds" in result.output
    assert "identical windows (same float32 PPG or ABP): 6 windows" in result.output
    assert "near-identical windows" in result.output and "near0" in result.output
    result = run_cli("data", "check", path, "--json")
    assert result.exit_code == 3 and json.loads(result.stdout)["leakage"] is True


def test_check_without_partitions_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with WindowWriter(path, fs=125.0, window_length=16, source_format="t") as w:
        w.append(np.ones((2, 16)), np.ones((2, 16)), subject="a", window_id=["x", "y"])
    result = run_cli("data", "check", path)
    assert result.exit_code == 1 and "nothing to check" in result.output


def test_signatures_are_unit_correlations() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 625))
    s = signatures(np.vstack([x, 2 * x + 3, np.ones((1, 625))]))
    assert s.shape == (11, 64)
    np.testing.assert_allclose((s[:5] * s[5:10]).sum(axis=1), 1.0, atol=1e-6)
    assert not s[10].any()  # a constant window matches nothing


@pytest.mark.realdata
def test_check_real_folds(real_data: Path, tmp_path: Path) -> None:
    bpb = tmp_path / "bpb.h5"
    import_bp_benchmark(real_data / "bp_benchmark", bpb)
    # The provided folds share signal: records training/133 (fold 1) and test/554 (fold 2)
    # overlap by 140 s (same patient, two alarms), with different ADC gains.
    report = check_leakage(bpb).to_dict()["partitions"][0]
    assert report["subjects_in_several_parts"] == 0 and report["exact_duplicate_windows"] == 0
    assert report["near_duplicate_pairs_above_0_999"] == 2
    top = report["near_examples"][0]
    assert {top["a"]["window"], top["b"]["window"]} == {
        "c2015_training_133_000625",
        "c2015_test_554_024375",
    }
    # Windows copied across folds are flagged, exactly and approximately.
    leaky = tmp_path / "leaky.h5"
    _leaky_file(bpb, leaky)
    p = check_leakage(leaky).to_dict()["partitions"][0]
    assert p["exact_duplicate_windows"] == 6
    assert p["near_duplicate_pairs"] == report["near_duplicate_pairs"] + 2
    assert p["subjects_in_several_parts"] == 1
    result = run_cli("data", "check", leaky)
    assert result.exit_code == 3 and "LEAKAGE FOUND across folds" in result.output


def test_check_of_a_one_fold_file_and_split_keeping_folds_say_what_is_wrong(
    synth_file: Path, tmp_path: Path
) -> None:
    """A file with one fold (one bp-benchmark fold imported) was said to have "neither a
    split column nor folds"; --keep-folds ignored an explicit --folds without a word."""
    import h5py

    one = tmp_path / "one.h5"
    shutil.copy(synth_file, one)
    with h5py.File(one, "r+") as fh:
        fh["fold"][:] = 1
        fh["split"][:] = ""
    result = run_cli("data", "check", one)
    assert result.exit_code == 1 and "has one fold (1) and no split column" in result.output
    before = one.read_bytes()
    result = run_cli("data", "split", one, "--keep-folds", "--folds", "4")
    assert result.exit_code == 2 and "--folds does not apply" in result.output
    assert one.read_bytes() == before
    # Was "the nested scheme needs at least 3 folds, but there are 1": no file, no way out.
    result = run_cli("data", "split", one, "--keep-folds", "--test-fold", "1")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{one} has 1 fold(s) (1) to keep" in result.output
    assert "--folds K instead of --keep-folds" in result.output
    assert one.read_bytes() == before


def _one_leak_file(path: Path, ppg: np.ndarray, abp: np.ndarray, subjects, ids, folds) -> Path:
    # An imported file may repeat a window id (the writer refuses one unless told).
    with WindowWriter(path, fs=125.0, window_length=625, source_format="t", repeated_ids=True) as w:
        w.append(ppg, abp, subject=list(subjects), window_id=list(ids), fold=list(folds))
    return path


def test_each_kind_of_leak_alone_is_leakage(tmp_path: Path) -> None:
    """Every detector has to count on its own: with subjects, exact copies and near copies
    all in one file, dropping any one of them from the verdict went unnoticed."""
    ppg, abp = distinct_windows(6)
    subjects, ids, folds = (
        ["a", "b", "c", "d", "e", "f"],
        [f"w{i}" for i in range(6)],
        [0, 0, 0, 1, 1, 1],
    )
    clean = check_leakage(_one_leak_file(tmp_path / "clean.h5", ppg, abp, subjects, ids, folds))
    assert not clean.leaks
    # A near copy (rescaled, offset, noised) of window 0 as window 5, in the other fold.
    rng = np.random.default_rng(1)
    near_ppg, near_abp = ppg.copy(), abp.copy()
    near_ppg[5] = 2.0 * ppg[0] + 3.0 + rng.normal(0, 0.01 * ppg[0].std(), 625)
    near_abp[5] = abp[0] + 1.0 + rng.normal(0, 0.05, 625)
    path = _one_leak_file(tmp_path / "near.h5", near_ppg, near_abp, subjects, ids, folds)
    p = check_leakage(path).to_dict()["partitions"][0]
    assert p["leakage"] and p["near_duplicate_pairs"] == p["near_duplicate_pairs_above_0_999"] == 1
    assert p["exact_duplicate_windows"] == p["subjects_in_several_parts"] == 0
    assert run_cli("data", "check", path).exit_code == 3
    # One window id under two subject names in two folds.
    path = _one_leak_file(tmp_path / "ids.h5", ppg, abp, subjects, [*ids[:5], "w0"], folds)
    p = check_leakage(path).to_dict()["partitions"][0]
    assert p["leakage"] and p["window_ids_in_several_parts"] == 1
    assert p["subjects_in_several_parts"] == p["near_duplicate_pairs"] == 0


def test_duplicates_inside_one_fold_are_counted_not_leakage(tmp_path: Path) -> None:
    ppg, abp = distinct_windows(6)
    ppg[1], abp[1] = ppg[0], abp[0]  # both in fold 0
    path = _one_leak_file(tmp_path / "within.h5", ppg, abp, "abcdef", [f"w{i}" for i in range(6)],
                          [0, 0, 0, 1, 1, 1])  # fmt: skip
    p = check_leakage(path).to_dict()["partitions"][0]
    assert not p["leakage"] and p["windows_duplicated_within_a_part"] == 2
    assert p["exact_duplicate_windows"] == 0


def test_an_identical_ppg_is_an_exact_duplicate_and_copies_need_both_signals(
    tmp_path: Path,
) -> None:
    """A pair sharing its PPG bytes is an exact duplicate, not also a near one; a pair is
    a copy (r >= 0.999) only when PPG *and* ABP signatures say so."""
    ppg, abp = distinct_windows(6)
    ppg[5] = ppg[0]  # same PPG, unrelated ABP: exact (PPG) only
    ids, folds = [f"w{i}" for i in range(6)], [0, 0, 0, 1, 1, 1]
    p = check_leakage(_one_leak_file(tmp_path / "x.h5", ppg, abp, "abcdef", ids, folds))
    d = p.to_dict()["partitions"][0]
    assert d["exact_duplicate_pairs"] == {"ppg": 1, "abp": 0} and d["near_duplicate_pairs"] == 0
    ppg, abp = distinct_windows(6)
    rng = np.random.default_rng(2)
    ppg[5] = ppg[0] + rng.normal(0, 0.001 * ppg[0].std(), 625)  # PPG r ~ 1
    abp[5] = abp[0] + 0.1 * (abp[1] - abp[1].mean())  # ABP r ~ 0.995
    d = check_leakage(_one_leak_file(tmp_path / "y.h5", ppg, abp, "abcdef", ids, folds))
    d = d.to_dict()["partitions"][0]
    example = d["near_examples"][0]
    assert example["ppg_corr"] >= 0.999 and 0.99 < example["abp_corr"] < 0.999
    assert d["near_duplicate_pairs"] == 1 and d["near_duplicate_pairs_above_0_999"] == 0


def test_new_folds_are_recorded_in_the_provenance_and_kept_folds_keep_the_record(
    synth_file: Path, tmp_path: Path
) -> None:
    """A file whose folds `innpar data split` replaced says so (the experiment runner
    tells such a file from the importer's by it); keeping the folds keeps the record, and
    folds written without one drop an older record that no longer describes them."""
    from innpar_freia.data.splits import split_file
    from innpar_freia.data.store import write_assignments

    path = tmp_path / "w.h5"
    shutil.copy(synth_file, path)
    assert "fold_assignment" not in read_info(path).provenance
    before = read_info(path).provenance
    split_file(path, folds=3, seed=2)
    after = read_info(path).provenance
    assert after.pop("fold_assignment") == {"folds": 3, "seed": 2, "join_shared": False}
    assert after == before  # the importer's record is left as it was
    split_file(path, folds=None, test_fold=1)  # --keep-folds: the same folds
    assert read_info(path).provenance["fold_assignment"]["seed"] == 2
    assert "folds made by" not in run_cli("data", "info", synth_file).output
    split_file(path, folds=4, seed=0, join_shared=True)
    assert read_info(path).provenance["fold_assignment"] == {
        "folds": 4,
        "seed": 0,
        "join_shared": True,
    }
    assert (
        "  folds made by innpar data split: 4 folds, seed 0, subjects sharing signal joined\n"
        in run_cli("data", "info", path).output
    )
    write_assignments(path, None, read_info(path).fold[::-1].copy())
    assert "fold_assignment" not in read_info(path).provenance


def test_a_plan_whose_parts_share_a_subject_is_refused(
    synth_file: Path, tiny_run: Path, tmp_path: Path
) -> None:
    """Splits are always subject-disjoint, but a file whose folds (or split column) put a
    subject in two of train, val and test trained without a word: only `innpar data check`
    told. Training and evaluation refuse the plan, naming the subject and the way out."""
    import h5py
    from helpers import assert_clean_failure

    path = tmp_path / "shared.h5"
    shutil.copy(synth_file, path)
    info = read_info(path)
    subject, test = str(info.subjects[0]), int(info.fold[0])
    folds = np.unique(info.fold).tolist()
    # A training fold of the nested split for ``test``: neither it nor the next (validation).
    train_fold = folds[(folds.index(test) + 2) % len(folds)]
    with h5py.File(path, "r+") as fh:
        fh["fold"][0] = train_fold
    info = read_info(path)
    message = (
        f"{path}: the nested split for test fold {test} puts subject {subject!r} (train and "
        "test) in more than one of train, val and test, but splits must be subject-disjoint; "
        f"'innpar data check {path}' shows the leakage, and 'innpar data split {path} "
        "--folds K' draws subject-disjoint folds"
    )
    assert plan_splits(info, test, val_fold=None, check_subjects=False).test_fold == test
    with pytest.raises(DataError) as err:
        plan_splits(info, test)
    assert str(err.value) == message
    ckpt = tiny_run / "checkpoints" / "best.pt"
    run_dir = tmp_path / "run"
    for args, out in (
        (
            ("train", "--data", path, "--preset", "tiny", "--test-fold", test, "--out", run_dir),
            run_dir,
        ),
        (("eval", "--checkpoint", ckpt, "--data", path, "--test-fold", test), tmp_path / "none"),
    ):
        assert_clean_failure(run_cli(*args), out, message)
    # Eval of a checkpoint trained on this file: new splits alone would not do.
    assert "; this checkpoint was trained on this file's splits, so train it again on the new" in (
        run_cli(*args).output
    )
    # The split column: one of the subject's windows moved to another part.
    with h5py.File(path, "r+") as fh:
        fh["fold"][0] = test
        split = fh["split"][0].decode()
        fh["split"][0] = "test" if split != "test" else "train"
    info = read_info(path)
    parts = sorted(
        {split, "test" if split != "test" else "train"}, key=["train", "val", "test"].index
    )
    with pytest.raises(
        DataError,
        match=re.escape(f"the split column puts subject {subject!r} ({parts[0]} and {parts[1]})"),
    ):
        plan_splits(info)
    plan_splits(info, test)  # the folds alone are subject-disjoint again
    # Folds that are subject-disjoint are kept: the way out is --keep-folds, not --folds K,
    # which would redraw a benchmark's folds.
    with pytest.raises(DataError, match=re.escape(f"'innpar data split {path} --keep-folds'")):
        plan_splits(info)


def test_another_data_set_s_own_overlap_does_not_stop_its_scoring(
    tiny_run: Path, tmp_path: Path
) -> None:
    """A model scored on a data set it never trained on (a Sensors model on BCG) touches
    none of its subjects: that set's train and test sharing a subject was refused by eval,
    and by the runner after training, though the score does not depend on it."""
    import h5py

    from innpar_freia.data.synthetic import synthesize_dataset

    other = synthesize_dataset(tmp_path / "other.h5", subjects=6, minutes=1, fs=125.0, seed=9)
    with h5py.File(other, "r+") as fh:
        split = [s.decode() for s in fh["split"][:]]
        first_test = split.index("test")
        subject = fh["subject"][first_test]
        # one training window of the first test subject... or any window of it in train
        same = [i for i, s in enumerate(fh["subject"][:]) if s == subject and split[i] != "test"]
        i = same[0] if same else next(i for i, s in enumerate(split) if s == "train")
        fh["subject"][i] = subject
    ckpt = tiny_run / "checkpoints" / "best.pt"
    with pytest.raises(DataError, match="must be subject-disjoint"):
        plan_splits(read_info(other))
    result = run_cli(
        "eval", "--checkpoint", ckpt, "--data", other, "--out", tmp_path / "r", "--no-figures"
    )
    assert result.exit_code == 0, result.output
