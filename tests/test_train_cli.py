"""``innpar train`` as a user meets it: resuming runs whose checkpoint cannot be continued,
what a finished run says when asked for more epochs, early stopping without validation
windows, and a config file with a byte-order mark."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import run_cli

from innpar_freia.config import resolve_config
from innpar_freia.train import train


def tree_digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def edit_last(run_dir: Path, edit) -> None:
    path = run_dir / "checkpoints" / "last.pt"
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def assert_one_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert sum(line.startswith("Error:") for line in result.output.splitlines()) == 1
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        # A run written by an innpar-freia with a setting this one does not know.
        (
            lambda p: p["run_config"]["train"].update(new_setting=1),
            ["last.pt holds a configuration", "new_setting"],
        ),
        (lambda p: p.pop("training_state"), ["last.pt is damaged", "training_state"]),
        (lambda p: p.pop("optimizer_state"), ["last.pt is damaged", "optimizer_state"]),
        (lambda p: p.update(epoch="x"), ["last.pt is damaged", "epoch"]),
        (
            lambda p: p["model_state"].pop(next(iter(p["model_state"]))),
            ["last.pt is damaged", "Missing key"],
        ),
        (
            lambda p: p["optimizer_state"].update(param_groups=[]),
            ["last.pt is damaged", "parameter groups"],
        ),
    ],
)
def test_resuming_a_checkpoint_that_cannot_continue_names_it(
    run_copy: Path, synth_file: Path, edit, fragments
) -> None:
    edit_last(run_copy, edit)
    before = tree_digest(run_copy)
    r = run_cli("train", "--data", synth_file, "--out", run_copy, "--resume", "--epochs", "3")
    assert_one_error(r, str(run_copy / "checkpoints" / "last.pt"), *fragments)
    assert tree_digest(run_copy) == before  # config.json and metrics.jsonl as they were


def test_extending_a_run_early_stopping_ended_says_only_that_it_is_finished(
    synth_file: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    # A learning rate this high makes the validation error rise within a few epochs.
    cfg = resolve_config(
        "tiny",
        train={
            "epochs": 12, "lr": 0.05, "early_stopping": 1, "lr_schedule": "cosine",
            "device": "cpu",
        },
    )  # fmt: skip
    result = train(cfg, synth_file, run_dir)
    assert result.stopped_early, "the run did not stop early: raise its learning rate"
    before = tree_digest(run_dir)
    r = run_cli("train", "--data", synth_file, "--out", run_dir, "--resume", "--epochs", "40")
    assert r.exit_code == 0, r.output
    assert "it is finished; nothing to resume" in r.output
    # No learning rate for epochs that will not run.
    assert "runs at" not in r.output and "recomputed" not in r.output, r.output
    assert tree_digest(run_dir) == before


def test_early_stopping_without_validation_windows_is_said_even_when_quiet(
    synth_file: Path, tmp_path: Path
) -> None:
    config = tmp_path / "es.toml"
    config.write_text('preset = "tiny"\n[train]\nepochs = 2\nearly_stopping = 1\n')
    r = run_cli(
        "train", "--data", synth_file, "--config", config, "--device", "cpu",
        "--test-fold", "0", "--val-fold", "-1", "--out", tmp_path / "run", "--quiet",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "warning: early_stopping = 1 watches the validation MAE" in r.stderr
    assert "trains all 2 epochs" in r.stderr


def test_a_config_file_saved_with_a_byte_order_mark_is_read(synth_file: Path, tmp_path) -> None:
    config = tmp_path / "notepad.toml"
    config.write_bytes(b'\xef\xbb\xbfpreset = "tiny"\r\n[train]\r\nepochs = 3\r\n')
    r = run_cli("train", "--data", synth_file, "--config", config, "--dry-run")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert shown["preset"] == "tiny" and shown["train"]["epochs"] == 3


def test_resuming_a_run_that_did_all_its_epochs_touches_nothing(
    run_copy: Path, synth_file: Path
) -> None:
    before = tree_digest(run_copy)
    r = run_cli("train", "--data", synth_file, "--out", run_copy, "--resume", "--num-workers", "2")
    assert r.exit_code == 0, r.output
    assert "has completed its 2 epochs: it is finished; nothing to resume" in r.stderr
    assert "resuming after epoch" not in r.stderr  # nothing trains
    assert r.stdout.startswith("done: 2 epochs; best validation MAE"), r.stdout
    # config.json does not come to say num_workers 2 for a run that trained nothing.
    assert tree_digest(run_copy) == before


def test_resuming_on_other_data_says_nothing_of_a_recomputed_schedule(
    synth_file: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    cfg = resolve_config("tiny", train={"epochs": 2, "lr_schedule": "cosine", "device": "cpu"})
    train(cfg, synth_file, run_dir)
    other = tmp_path / "other.h5"
    r = run_cli("data", "synth", "--out", other, "--subjects", "5", "--minutes", "0.5")
    assert r.exit_code == 0, r.output
    before = tree_digest(run_dir)
    r = run_cli("train", "--data", other, "--out", run_dir, "--resume", "--epochs", "4")
    assert_one_error(r, "is not the data the run being resumed was trained on")
    # The epochs it would train do not run: no learning rate (nor batch) is announced for
    # them, and nothing is said of the refused file's training windows.
    assert "recomputed" not in r.output and "runs at" not in r.output, r.output
    assert "full-batch" not in r.output, r.output
    assert tree_digest(run_dir) == before
    # With its own data the extension says how the schedule changes, and runs.
    r = run_cli("train", "--data", synth_file, "--out", run_dir, "--resume", "--epochs", "4")
    assert r.exit_code == 0, r.output
    assert "recomputed over 4 epochs instead of 2" in r.output, r.output


def test_a_learning_rate_above_the_limit_is_a_usage_error_with_the_range(synth_file: Path):
    """``--lr`` showed ``[x>0]`` in --help, yet 1e6 was refused only later, as a run error
    (exit 1, "lr must be <= 1000"): the option states and checks the same range."""
    r = run_cli("train", "--data", synth_file, "--lr", "1e6", "--dry-run")
    assert r.exit_code == 2 and "'--lr': 1000000.0 is not in the range 0<x<=1000" in r.output
    assert "0<x<=1000" in run_cli("train", "--help").output
    r = run_cli("train", "--data", synth_file, "--val-fold", "1", "--dry-run")
    assert r.exit_code == 1
    assert "val_fold (--val-fold) is set but test_fold (--test-fold) is not" in r.output
