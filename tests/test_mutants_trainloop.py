"""Tests that pin what a mutation audit of the training loop and its run management
(innpar_freia.train's _train, validate and early stopping, best/last checkpoints, the run
directory, resuming and its fingerprints; innpar_freia.distributed) found unguarded: each
one fails when the bug named in its docstring is put into the package."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import innpar_freia.train as train_mod
from innpar_freia.errors import RunDirError
from innpar_freia.train import (
    check_run_dir,
    claim_run_dir,
    next_run_dir,
    run_reports,
    windows_fingerprint,
)

# --------------------------------------------------------------------------------------
# The run directory
# --------------------------------------------------------------------------------------


def test_the_next_run_number_counts_folders_only(tmp_path: Path) -> None:
    """Runs are the numbered folders: a file named like one (notes kept beside the runs)
    does not take a number. Guards against counting every entry of the folder."""
    (tmp_path / "00001-tiny").mkdir()
    (tmp_path / "00007-notes.txt").write_text("not a run")
    assert next_run_dir(tmp_path, "paper") == tmp_path / "00002-paper"


def test_a_number_taken_meanwhile_is_not_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two commands started together both see 00000 free; the one whose mkdir comes second
    takes the next number. Guards against creating the folder with exist_ok (both runs
    then wrote into one folder, and one was lost)."""
    real = train_mod.next_run_dir
    taken = tmp_path / "00000-tiny"
    taken.mkdir()  # the other command's mkdir, between our look and ours
    answers = iter([taken])

    def looked_too_early(root, preset):
        return next(answers, None) or real(root, preset)

    monkeypatch.setattr(train_mod, "next_run_dir", looked_too_early)
    run_dir, made = claim_run_dir(tmp_path, "tiny")
    assert run_dir == tmp_path / "00001-tiny" and run_dir.is_dir()
    assert made == [run_dir]


def test_the_folders_a_claimed_run_made_come_deepest_first(tmp_path: Path) -> None:
    """``remove_if_empty`` removes a failed run's folders in the order given, innermost
    first: the outer one is not empty until the inner one is gone. Guards against the
    parents coming back outermost first (then a failed run left runs/ behind)."""
    run_dir, made = claim_run_dir(tmp_path / "a" / "b", "tiny")
    assert run_dir == tmp_path / "a" / "b" / "00000-tiny"
    assert made == [run_dir, tmp_path / "a" / "b", tmp_path / "a"]


def test_only_eval_folders_with_a_report_are_the_run_s_reports(tmp_path: Path) -> None:
    """``--force`` sets aside the reports ``innpar eval`` wrote into the run (an
    ``eval-*`` folder holding metrics.json); a user's own ``eval-notes`` folder is not
    one. Guards against taking every ``eval-*`` entry."""
    for name in ("eval-val", "eval-test-fold2", "eval-notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "eval-val" / "metrics.json").write_text("{}")
    (tmp_path / "eval-test-fold2" / "metrics.json").write_text("{}")
    (tmp_path / "eval-notes" / "todo.txt").write_text("")
    (tmp_path / "eval-file").write_text("")
    assert run_reports(tmp_path) == ("eval-test-fold2", "eval-val")


@pytest.mark.parametrize(("resume", "force"), [(False, False), (False, True), (True, False)])
def test_a_run_directory_that_is_a_file_is_refused(tmp_path: Path, resume, force) -> None:
    """Guards against the check that ``--out`` names a file going missing (the run then
    failed later with FileExistsError, or --force went on to replace a file)."""
    path = tmp_path / "run"
    path.write_text("a file")
    with pytest.raises(RunDirError, match="is a file"):
        check_run_dir(path, resume=resume, force=force)


# --------------------------------------------------------------------------------------
# Resuming: the data a run was trained on
# --------------------------------------------------------------------------------------


def test_the_windows_fingerprint_covers_the_subjects() -> None:
    """The same window ids with their subjects relabelled is other data (the subject-wise
    folds and the calibrated validation group windows by subject). Guards against
    hashing the window ids alone."""
    ids = np.array(["w0", "w1", "w2"])
    a = SimpleNamespace(window_ids=ids, subjects=np.array(["s1", "s1", "s2"]))
    b = SimpleNamespace(window_ids=ids, subjects=np.array(["s1", "s2", "s2"]))
    assert windows_fingerprint(a) != windows_fingerprint(b)
    assert windows_fingerprint(a) == windows_fingerprint(
        SimpleNamespace(window_ids=ids.copy(), subjects=np.array(["s1", "s1", "s2"]))
    )
