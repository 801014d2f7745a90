"""Nothing a user has is lost to a mistake: runs, reports, data and checkpoints survive a
wrong option, and every refusal is one message with a non-zero exit code."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import leave_a_killed_force, terminate_when

from innpar_freia.cli import cli


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): digest(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the session's tiny run, free to be damaged by a test."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def tiny_train(data: Path, out: Path, *extra: object):
    return run(
        "train", "--data", data, "--preset", "tiny", "--epochs", "1", "--device", "cpu",
        "--out", out, "--quiet", *extra,
    )  # fmt: skip


def test_force_with_bad_data_or_fold_keeps_the_run(run_copy: Path, synth_file: Path, tmp_path):
    before = tree_digest(run_copy)
    foreign = tmp_path / "foreign.h5"
    foreign.write_bytes(b"not hdf5 at all")
    for extra in ([], ["--test-fold", "9"]):
        data = foreign if not extra else synth_file
        r = tiny_train(data, run_copy, "--force", *extra)
        assert r.exit_code == 1 and r.output.startswith("Error: ")
        assert "Traceback" not in r.output
        assert tree_digest(run_copy) == before  # the run that was there is untouched
    # With good inputs --force does start over.
    r = tiny_train(synth_file, run_copy, "--force")
    assert r.exit_code == 0, r.output
    assert tree_digest(run_copy) != before


def test_resume_refuses_other_data_and_contradicting_flags(run_copy, synth_file, tmp_path):
    other = tmp_path / "other.h5"
    assert (
        run("data", "synth", "--out", other, "--subjects", "5", "--minutes", "0.5").exit_code == 0
    )
    before = tree_digest(run_copy)
    r = run("train", "--data", other, "--out", run_copy, "--resume", "--epochs", "3")
    assert r.exit_code == 1
    assert "is not the data the run being resumed was trained on" in r.output
    assert str(synth_file.resolve()) in r.output  # names the file to resume with
    r = run("train", "--data", synth_file, "--out", run_copy, "--resume", "--force")
    assert r.exit_code == 1 and "--resume and --force contradict each other" in r.output
    assert tree_digest(run_copy) == before
    # The same windows from another place resume fine (the check is on content, not path).
    moved = tmp_path / "moved.h5"
    shutil.copy(synth_file, moved)
    r = run("train", "--data", moved, "--out", run_copy, "--resume", "--epochs", "3", "--quiet")
    assert r.exit_code == 0, r.output


def test_resume_refuses_a_last_pt_copied_in_from_another_run(run_copy, synth_file, tmp_path):
    config = tmp_path / "b3.toml"
    config.write_text('preset = "tiny"\n[model]\nblocks = 3\n')
    other = tmp_path / "other"
    r = run("train", "--data", synth_file, "--config", config, "--epochs", "1",
            "--device", "cpu", "--out", other, "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    shutil.copy(other / "checkpoints" / "last.pt", run_copy / "checkpoints" / "last.pt")
    before = tree_digest(run_copy)
    r = run("train", "--data", synth_file, "--out", run_copy, "--resume", "--epochs", "3")
    # Was: exit 0, the other run's epochs appended to this run's metrics.jsonl, its best.pt
    # replaced and config.json rewritten to describe the other network.
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "is not the checkpoint of the run in" in r.output and "blocks 2 vs 3" in r.output
    assert tree_digest(run_copy) == before


def test_eval_replaces_a_report_only_with_force_and_drops_stale_files(
    tiny_run: Path, synth_file: Path, tmp_path: Path
) -> None:
    ckpt = tiny_run / "checkpoints" / "best.pt"
    out = tmp_path / "ev"
    assert run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out).exit_code == 0
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures
    stale = out / "figures" / "another-model" / "errors.png"  # an earlier comparison's
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    before = tree_digest(out)
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out, "--no-figures")
    assert r.exit_code == 1 and "already holds a report; pass --force" in r.output
    assert tree_digest(out) == before
    r = run(
        "eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out, "--no-figures", "--force"
    )
    assert r.exit_code == 0, r.output
    # The new report has no figures, so none of the old ones may pose as its own.
    assert not (out / "figures").exists() or not any((out / "figures").rglob("*.png"))
    assert json.loads((out / "metrics.json").read_text())["checkpoint"] == str(ckpt)
    assert "figures/" not in (out / "report.md").read_text()


def test_eval_never_writes_predictions_over_its_inputs(
    run_copy: Path, synth_file: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data.h5"
    shutil.copy(synth_file, data)
    ckpt = run_copy / "checkpoints" / "best.pt"
    sums = {p: digest(p) for p in (data, ckpt)}
    for target in (data, ckpt):
        for force in ([], ["--force"]):
            r = run(
                "eval", "--checkpoint", ckpt, "--data", data, "--out", tmp_path / "ev",
                "--no-figures", "--save-predictions", target, *force,
            )  # fmt: skip
            if target == ckpt:  # not even a predictions file's name
                assert r.exit_code == 2 and "predictions are an HDF5 file" in r.output
            else:
                assert r.exit_code == 1 and f"is the input {target}" in r.output, r.output
    assert {p: digest(p) for p in sums} == sums
    # Nor over any file that is not an HDF5 file by its name (another run's last.pt).
    r = run(
        "eval", "--checkpoint", ckpt, "--data", data, "--out", tmp_path / "ev", "--no-figures",
        "--save-predictions", tmp_path / "preds.txt", "--force",
    )  # fmt: skip
    assert r.exit_code == 2 and "give a name ending in .h5, such as preds.h5" in r.output
    assert not (tmp_path / "preds.txt").exists()
    assert not (tmp_path / "ev").exists()
    preds = tmp_path / "preds.h5"
    preds.write_bytes(b"keep me")
    args = ["eval", "--checkpoint", ckpt, "--data", data, "--out", tmp_path / "ev2"]
    r = run(*args, "--no-figures", "--save-predictions", preds)
    assert r.exit_code == 1 and f"output exists: {preds}; pass --force" in r.output
    assert preds.read_bytes() == b"keep me"
    r = run(*args, "--no-figures", "--save-predictions", preds, "--force")
    assert r.exit_code == 0, r.output
    assert preds.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"


def test_config_files_that_are_not_utf8_or_set_what_the_data_decides(
    synth_file: Path, tmp_path: Path
) -> None:
    utf16 = tmp_path / "notepad.toml"
    utf16.write_text('preset = "tiny"\n', encoding="utf-16")
    r = run("train", "--data", synth_file, "--config", utf16, "--dry-run")
    assert r.exit_code == 1 and "is not UTF-8 text" in r.output
    assert "Traceback" not in r.output
    for key, value in (("fs", "250.0"), ("window_length", "100")):
        toml = tmp_path / f"{key}.toml"
        toml.write_text(f'preset = "tiny"\n[model]\n{key} = {value}\n')
        r = run("train", "--data", synth_file, "--config", toml, "--dry-run")
        assert r.exit_code == 1
        assert f"{key} in [model] of {toml}: the network takes the sampling rate" in r.output


def test_plots_replace_only_with_force_and_read_no_binary_as_history(
    tiny_run: Path, synth_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "t.png"
    assert run("plot", "training", tiny_run, "--out", out).exit_code == 0
    first = digest(out)
    r = run("plot", "training", tiny_run, "--out", out)
    assert r.exit_code == 1 and f"output exists: {out}; pass --force" in r.output
    assert digest(out) == first
    assert run("plot", "training", tiny_run, "--out", out, "--force").exit_code == 0
    # A figure or an HDF5 file given instead of metrics.jsonl: a message, not a traceback.
    for wrong in (out, synth_file):
        r = run("plot", "training", wrong, "--out", tmp_path / "t2.png")
        assert r.exit_code == 1 and f"{wrong} holds no epoch records" in r.output


def test_garbage_checkpoint_message_gives_no_unsafe_advice(tmp_path: Path, synth_file: Path):
    garbage = tmp_path / "g.pt"
    garbage.write_bytes(bytes(range(256)) * 20)
    for ckpt in (garbage, synth_file):
        r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", tmp_path / "e")
        assert r.exit_code == 1 and "is not a readable innpar-freia checkpoint" in r.output
        assert "weights_only" not in r.output and "code execution" not in r.output


def test_reconstruct_refuses_unknown_suffix_and_its_own_input(tiny_run: Path, tmp_path: Path):
    import numpy as np

    from innpar_freia.data.synthetic import synthesize_recording

    rec = synthesize_recording(1, 0.5, 125.0, seed=2)
    src = tmp_path / "rec.npz"
    np.savez(src, PPG=rec.ppg, ABP=rec.abp, fs=125.0)
    before = digest(src)
    ckpt = tiny_run / "checkpoints" / "best.pt"
    r = run("reconstruct", "--checkpoint", ckpt, src, "--out", tmp_path / "abp.txt")
    assert r.exit_code == 1 and "unknown output suffix '.txt'" in r.output
    assert not list(tmp_path.glob("abp*"))
    r = run("reconstruct", "--checkpoint", ckpt, src, "--out", src, "--force")
    assert r.exit_code == 1 and "is the input" in r.output
    assert digest(src) == before


def test_resume_of_damaged_windows_read_by_workers_is_one_clear_message(synth_file, tmp_path):
    """Resuming with lazy loading reads the windows first in DataLoader workers: a file damaged
    since the first run is named in one message (no worker traceback), the run kept as it was."""
    import h5py
    import numpy as np

    data = tmp_path / "d.h5"
    shutil.copy(synth_file, data)
    config = tmp_path / "lazy.toml"
    config.write_text('preset = "tiny"\n[train]\nepochs = 1\nnum_workers = 1\npreload = "never"\n')
    run_dir = tmp_path / "run"
    assert (
        run("train", "--data", data, "--config", config, "--out", run_dir, "--quiet").exit_code == 0
    )
    with h5py.File(data, "r+") as fh:
        fh["ppg"][:, 100:110] = np.nan
        n = fh["ppg"].shape[0]
    before = tree_digest(run_dir)
    r = run("train", "--data", data, "--out", run_dir, "--resume", "--epochs", "2")
    assert r.exit_code == 1
    assert f"Error: {data}: {n} windows of 'ppg' hold NaN or inf (first: window 0" in r.output
    assert "Traceback" not in r.output and "worker" not in r.output
    assert tree_digest(run_dir) == before


def test_sigterm_stops_a_command_like_ctrl_c_and_leaves_nothing_half_written(tmp_path: Path):
    """``kill`` or a scheduler's time limit: the hidden temporary file goes too."""
    out = tmp_path / "big.h5"
    cmd = [sys.executable, "-m", "innpar_freia", "data", "synth", "--out", str(out)]
    terminate_when(
        [*cmd, "--subjects", "400", "--minutes", "10"],
        lambda: bool(list(tmp_path.glob(".big.h5.*"))),
    )
    assert list(tmp_path.iterdir()) == []


def test_force_gives_the_run_back_when_the_new_one_fails_before_its_first_checkpoint(
    run_copy: Path, synth_file: Path, tmp_path: Path
):
    import h5py
    import numpy as np

    before = tree_digest(run_copy)
    nan = tmp_path / "nan.h5"
    shutil.copy(synth_file, nan)
    with h5py.File(nan, "r+") as fh:  # a training window, met only when fitting on them
        row = int(np.flatnonzero(fh["split"][:] == b"train")[-1])
        fh["ppg"][row, 10] = np.nan
    r = tiny_train(nan, run_copy, "--force")
    assert r.exit_code == 1 and "NaN or inf" in r.output, r.output
    assert tree_digest(run_copy) == before
    r = tiny_train(synth_file, run_copy, "--force", "--lr", "1000", "--epochs", "2")
    assert r.exit_code == 1 and "nothing was kept" in r.output, r.output
    assert tree_digest(run_copy) == before
    assert [p.name for p in run_copy.iterdir() if p.name.startswith(".")] == []


def test_resuming_on_a_file_resplit_since_says_so(synth_file: Path, tmp_path: Path):
    """The message named the very file given as the one to resume with."""
    data = tmp_path / "data.h5"
    shutil.copy(synth_file, data)
    out = tmp_path / "run"
    assert tiny_train(data, out).exit_code == 0
    assert run("data", "split", data, "--folds", 5, "--seed", 7, "--test-fold", 3).exit_code == 0
    r = run("train", "--data", data, "--out", out, "--resume", "--epochs", "3")
    assert r.exit_code == 1, r.output
    assert f"{data} has changed since the run being resumed started" in r.output
    assert "splits or folds were redrawn" in r.output and "resume it with" not in r.output


def test_resume_refuses_resplit_or_changed_windows_and_going_backwards(
    run_copy: Path, synth_file: Path, tmp_path: Path
):
    import h5py

    before = tree_digest(run_copy)
    resplit = tmp_path / "resplit.h5"
    shutil.copy(synth_file, resplit)
    assert run("data", "split", resplit, "--folds", 5, "--seed", 7, "--test-fold", 3).exit_code == 0
    r = run("train", "--data", resplit, "--out", run_copy, "--resume", "--epochs", "3")
    assert r.exit_code == 1 and "other train/val/test windows" in r.output, r.output
    changed = tmp_path / "changed.h5"
    shutil.copy(synth_file, changed)
    with h5py.File(changed, "r+") as fh:  # same ids and splits, other signals
        fh["abp"][0] = fh["abp"][0] + 5.0
    r = run("train", "--data", changed, "--out", run_copy, "--resume", "--epochs", "3")
    assert r.exit_code == 1 and "other signals in the same windows" in r.output, r.output
    r = run("train", "--data", synth_file, "--out", run_copy, "--resume", "--epochs", "1")
    assert r.exit_code == 1 and "has completed 2 epochs" in r.output, r.output
    assert tree_digest(run_copy) == before


def test_resume_drops_a_metrics_line_cut_short_by_a_kill(run_copy: Path, synth_file: Path):
    with (run_copy / "metrics.jsonl").open("a") as fh:
        fh.write('{"epoch": 3, "lr"')
    r = run("train", "--data", synth_file, "--out", run_copy, "--resume", "--epochs", "3")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in (run_copy / "metrics.jsonl").read_text().splitlines()]
    assert [rec["epoch"] for rec in records] == [1, 2, 3]


def test_eval_of_a_file_without_splits_points_at_split_all(
    run_copy: Path, synth_file: Path, tmp_path: Path
):
    from innpar_freia.data.store import WindowWriter, read_info, read_signals

    info = read_info(synth_file)
    ppg, abp = read_signals(synth_file)
    rows = np.flatnonzero(info.split != "train")[:40]  # (training windows would be refused)
    plain = tmp_path / "plain.h5"
    with WindowWriter(plain, fs=info.fs, window_length=info.window_length,
                      source_format="t") as w:  # fmt: skip
        w.append(ppg[rows], abp[rows], subject=info.subjects[rows], window_id=info.window_ids[rows])
    ckpt = run_copy / "checkpoints" / "best.pt"
    r = run("eval", "--checkpoint", ckpt, "--data", plain, "--out", tmp_path / "e", "--no-figures")
    assert r.exit_code == 1 and "score every window with --split all" in r.output, r.output
    assert not (tmp_path / "e").exists()
    r = run("eval", "--checkpoint", ckpt, "--data", plain, "--split", "all", "--no-figures",
            "--out", tmp_path / "e")  # fmt: skip
    assert r.exit_code == 0, r.output


def test_eval_refuses_folds_that_are_not_a_test_of_the_checkpoint(tmp_path: Path):
    data = tmp_path / "folds.h5"
    assert run("data", "synth", "--out", data, "--subjects", 6, "--minutes", 0.5).exit_code == 0
    assert run("data", "split", data, "--folds", 3, "--test-fold", 0).exit_code == 0
    r = tiny_train(data, tmp_path / "run", "--test-fold", 0)
    assert r.exit_code == 0, r.output
    ckpt = tmp_path / "run" / "checkpoints" / "best.pt"
    r = run("eval", "--checkpoint", ckpt, "--data", data, "--test-fold", 2, "--out", tmp_path / "e")
    assert r.exit_code == 1 and "were in the training split of this checkpoint's run" in r.output
    assert not (tmp_path / "e").exists()
    r = run("eval", "--checkpoint", ckpt, "--data", data, "--out", tmp_path / "e", "--no-figures")
    assert r.exit_code == 0, r.output  # its own test fold
    nofolds = tmp_path / "nofolds.h5"
    assert run("data", "synth", "--out", nofolds, "--subjects", 6, "--minutes", 0.5,
               "--folds", 0).exit_code == 0  # fmt: skip
    r = run(
        "eval", "--checkpoint", ckpt, "--data", nofolds, "--test-fold", 1, "--out", tmp_path / "f"
    )
    assert r.exit_code == 1 and "has no cross-validation folds" in r.output


def test_a_force_killed_outright_is_finished_by_the_next_command(run_copy: Path, synth_file):
    """SIGKILL, or torchrun stopping its ranks, between setting the old run aside and the
    new run's first checkpoint: the next innpar train puts the old run back."""
    import socket

    before = tree_digest(run_copy)
    # A set-aside folder is named after its owner: while that process lives (here: the
    # test's parent process), it is a --force still running, and nothing is touched.
    live = run_copy / f".replaced.{socket.gethostname()}.{os.getppid()}.abc"
    live.mkdir()
    r = tiny_train(synth_file, run_copy)
    assert r.exit_code == 1 and "put back" not in r.output and live.is_dir()
    live.rmdir()
    leave_a_killed_force(run_copy)
    r = tiny_train(synth_file, run_copy)
    assert r.exit_code == 1 and "already holds a run" in r.output, r.output
    assert "warning: put back the run" in r.output
    assert tree_digest(run_copy) == before
    assert not list(run_copy.glob(".replaced.*"))


def test_a_checkpoint_a_killed_force_set_aside_says_where_it_is(run_copy: Path, synth_file):
    """After a --force killed outright, eval, check and reconstruct said only that
    checkpoints/best.pt "does not exist", with nothing pointing at the run set aside."""
    before = tree_digest(run_copy)
    aside = leave_a_killed_force(run_copy)
    best = run_copy / "checkpoints" / "best.pt"
    said = (
        f"{str(best)!r} does not exist: an 'innpar train --force' into {run_copy} was stopped "
        f"outright before its first checkpoint, and the run it was replacing is set aside in "
        f"{aside}; any 'innpar train' with --out {run_copy} puts it back"
    )
    for args in (
        ("eval", "--checkpoint", best, "--data", synth_file),
        ("check", "--checkpoint", best),
        ("reconstruct", "--checkpoint", best, synth_file, "--out", run_copy.parent / "r.h5"),
    ):
        r = run(*args)
        assert r.exit_code == 2 and said in " ".join(r.output.split()), r.output
    # As it says: the run is back, and scored as before.
    r = run("train", "--data", synth_file, "--out", run_copy, "--resume")
    assert "warning: put back the run" in r.output, r.output
    assert tree_digest(run_copy) == before
    r = run("eval", "--checkpoint", best, "--data", synth_file, "--out", run_copy.parent / "ev")
    assert r.exit_code == 0, r.output
    # A checkpoint simply missing is click's message, as before.
    r = run("eval", "--checkpoint", run_copy / "checkpoints" / "nope.pt", "--data", synth_file)
    assert r.exit_code == 2 and "does not exist." in r.output and "set aside" not in r.output


def test_interrupted_training_says_how_to_resume_only_its_own_run(
    run_copy: Path, synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import innpar_freia.train as train_module

    def interrupted_after_a_checkpoint(*args, **kwargs):
        (Path(args[2]) / "checkpoints" / "last.pt").write_bytes(b"new")
        raise KeyboardInterrupt

    def interrupted_before(*args, **kwargs):
        raise KeyboardInterrupt

    spaced = tmp_path / "my runs" / "r"
    shutil.copytree(run_copy, spaced)
    monkeypatch.setattr(train_module, "train", interrupted_after_a_checkpoint)
    r = run("train", "--data", synth_file, "--out", spaced, "--resume", "--epochs", "5")
    assert r.exit_code == 1
    assert f"innpar train --data {synth_file} --out '{spaced}' --resume --epochs 5" in r.output
    # Under torchrun, the hint keeps the launcher: a plain command resumes in one process.
    with monkeypatch.context() as env:
        env.setenv("LOCAL_RANK", "0")
        env.setenv("WORLD_SIZE", "4")
        r = run("train", "--data", synth_file, "--out", spaced, "--resume")
    assert r.exit_code == 1
    assert f"torchrun --nproc_per_node=4 -m innpar_freia train --data {synth_file}" in r.output
    with monkeypatch.context() as env:  # 2 machines of 4 processes
        env.setenv("LOCAL_RANK", "0")
        env.setenv("WORLD_SIZE", "8")
        env.setenv("LOCAL_WORLD_SIZE", "4")
        r = run("train", "--data", synth_file, "--out", spaced, "--resume")
    assert "torchrun --nnodes=2 --nproc_per_node=4 -m innpar_freia train" in r.output
    # A --force stopped before the new run's first checkpoint: the old run is put back, and
    # resuming it is not what the user asked for.
    monkeypatch.setattr(train_module, "train", interrupted_before)
    r = tiny_train(synth_file, run_copy, "--force")
    assert r.exit_code == 1 and "--resume" not in r.output, r.output


def test_eval_refuses_a_resplit_training_file_but_not_other_data_with_its_ids(
    tiny_run: Path, synth_file: Path, tmp_path: Path
):
    import h5py

    ckpt = tiny_run / "checkpoints" / "best.pt"
    resplit = tmp_path / "resplit.h5"
    shutil.copy(synth_file, resplit)
    assert run("data", "split", resplit, "--folds", 5, "--seed", 7, "--test-fold", 2).exit_code == 0
    r = run("eval", "--checkpoint", ckpt, "--data", resplit, "--out", tmp_path / "a")
    assert r.exit_code == 1 and "folds or split column have changed since" in r.output
    other = tmp_path / "other.h5"
    shutil.copy(resplit, other)
    with h5py.File(other, "r+") as fh:  # the same ids, other signals: another data set
        fh["ppg"][...] = fh["ppg"][...][:, ::-1]  # (the same PPG would be the training windows')
        fh["abp"][...] = fh["abp"][...] + 1.0
    r = run("eval", "--checkpoint", ckpt, "--data", other, "--out", tmp_path / "b", "--no-figures")
    assert r.exit_code == 0, r.output


def test_eval_refuses_copies_of_training_windows_whatever_their_ids_and_file(
    tiny_run: Path, synth_file: Path, tmp_path: Path
):
    """The training file with every window id renamed had been scored as another data set,
    training windows and all; so would a file holding some of its windows. Windows whose
    PPG or ABP is a training window's, sample for sample, are refused in any file, before
    anything is written. A test split holding such a copy in another subject (leakage the
    folds do not show) is refused on the run's own file too, pointing at the fix."""
    import h5py

    from innpar_freia.checkpoint import load_checkpoint
    from innpar_freia.data.store import read_info
    from innpar_freia.evaluate import trained_windows
    from innpar_freia.train import CONTENT_SAMPLE

    ckpt = tiny_run / "checkpoints" / "best.pt"
    info = read_info(synth_file)
    train_rows = trained_windows(load_checkpoint(ckpt), info)
    test_rows = np.flatnonzero(info.split == "test")
    renamed = tmp_path / "renamed.h5"
    shutil.copy(synth_file, renamed)
    with h5py.File(renamed, "r+") as fh:
        ids = fh["window_id"][...]
        del fh["window_id"]
        fh["window_id"] = np.array([b"copy-" + i for i in ids])
    out = tmp_path / "a"
    r = run("eval", "--checkpoint", ckpt, "--data", renamed, "--split", "all", "--out", out)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert (
        f"{len(train_rows)} of the {info.n_windows} windows of {renamed} have the PPG or the "
        "ABP, sample for sample, of a window this checkpoint was trained on" in r.output
    )
    assert not out.exists()
    # One training window's PPG in an otherwise new file (time-reversed signals) is enough;
    # its ABP need not be the training window's.
    with h5py.File(renamed, "r+") as fh:
        ppg, abp = fh["ppg"][...], fh["abp"][...]
        fh["ppg"][...], fh["abp"][...] = ppg[:, ::-1], abp[:, ::-1]
        fh["ppg"][5] = ppg[train_rows[0]]
    r = run("eval", "--checkpoint", ckpt, "--data", renamed, "--split", "all", "--out", out)
    assert r.exit_code == 1 and f"1 of the {info.n_windows} windows of" in r.output
    # A constant line is nobody's copy.
    with h5py.File(renamed, "r+") as fh:
        fh["ppg"][5] = ppg[5, ::-1]
        fh["abp"][5] = 80.0
    with h5py.File(synth_file) as fh:
        assert np.ptp(fh["abp"][train_rows[0]]) > 0
    r = run("eval", "--checkpoint", ckpt, "--data", renamed, "--split", "all", "--out", out)
    assert r.exit_code == 0, r.output
    # On the run's own file: a test window carrying a training window's ABP.
    own = tmp_path / "own.h5"
    shutil.copy(synth_file, own)
    sampled = np.linspace(0, info.n_windows - 1, CONTENT_SAMPLE).round()
    row = next(r for r in test_rows if r not in sampled)  # still the run's file, then
    with h5py.File(own, "r+") as fh:
        fh["abp"][row] = fh["abp"][train_rows[7]]
    r = run("eval", "--checkpoint", ckpt, "--data", own, "--out", tmp_path / "b")
    assert r.exit_code == 1, r.output
    assert f"1 of the {len(test_rows)} test windows of {own} have the PPG or the ABP" in r.output
    assert f"'innpar data check {own}' lists the copies" in r.output


def test_putting_a_run_back_can_be_finished_after_being_interrupted(tmp_path: Path):
    """A put-back killed halfway is finished by the next one: what is already back stays,
    and only what the replacement wrote is removed."""
    from innpar_freia.outputs import put_back, set_aside

    names = ("config.json", "checkpoints", "report")
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.json").write_text("old config")
    (run_dir / "checkpoints" / "best.pt").write_text("old weights")
    before = tree_digest(run_dir)
    aside = set_aside(run_dir, names)
    assert not (run_dir / "config.json").exists()
    # The replacement writes all three, then fails; its put-back is killed after moving
    # the old config back.
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_text("new")
    (run_dir / "report").mkdir()
    (run_dir / "config.json").write_text("new config")
    os.replace(aside / "config.json", run_dir / "config.json")
    put_back(run_dir, aside, names)
    assert tree_digest(run_dir) == before and sorted(os.listdir(run_dir)) == [
        "checkpoints",
        "config.json",
    ]
    # Killed in set_aside after listing what it moves, before moving it: nothing changes.
    aside = set_aside(run_dir, ())
    (aside / ".moved").write_text("config.json\ncheckpoints\n")
    put_back(run_dir, aside, names)
    assert tree_digest(run_dir) == before and not aside.exists()


def test_force_replaces_the_old_run_s_own_reports_with_it(run_copy: Path, synth_file: Path):
    """A report innpar eval wrote into the run (eval-test/) stayed beside the new run after
    --force, describing the old model under the new one's checkpoint paths."""
    ckpt = run_copy / "checkpoints" / "best.pt"
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--no-figures")
    assert r.exit_code == 0 and (run_copy / "eval-test" / "metrics.json").is_file(), r.output
    # A report written into the run folder itself, figures and all, had stayed behind.
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", run_copy)
    assert r.exit_code == 0 and (run_copy / "report.html").is_file(), r.output
    figures = sorted(p.name for p in (run_copy / "figures").iterdir())
    assert figures, "the report drew no figures"
    mine = run_copy / "notes.txt"
    mine.write_text("the user's")
    my_figure = run_copy / "figures" / "mine.png"
    my_figure.write_text("the user's figure")
    # A replacement that fails gives everything back, the report too.
    before = tree_digest(run_copy)
    r = tiny_train(synth_file, run_copy, "--force", "--lr", "1000")
    assert r.exit_code == 1 and "nothing was kept" in r.output, r.output
    assert tree_digest(run_copy) == before
    # One that succeeds takes the old report away with the old run; the user's file stays.
    r = tiny_train(synth_file, run_copy, "--force")
    assert r.exit_code == 0, r.output
    assert not (run_copy / "eval-test").exists() and mine.read_text() == "the user's"
    assert not list(run_copy.glob(".replaced.*"))
    assert not any((run_copy / n).exists() for n in ("report.html", "report.md", "metrics.json"))
    assert [p.name for p in (run_copy / "figures").iterdir()] == ["mine.png"]
    assert my_figure.read_text() == "the user's figure"
    # With no file of the user's among them, the report's figures folder goes with them.
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", run_copy, "--force")
    assert r.exit_code == 0, r.output
    my_figure.unlink()
    r = tiny_train(synth_file, run_copy, "--force")
    assert r.exit_code == 0, r.output
    assert not (run_copy / "figures").exists() and not (run_copy / "report.md").exists()
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", run_copy)
    assert r.exit_code == 0, r.output  # no earlier report in the way
