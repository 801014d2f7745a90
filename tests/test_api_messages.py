"""The messages of a user error name what the caller can change: the parameter to pass when
the Python API was called (``resume=True``), the option when the command line ran
(``--resume``). They named the CLI's options to a Python caller, who has none to pass."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from innpar_freia.config import resolve_config
from innpar_freia.errors import DataError, RunDirError, cli_spelling, option
from innpar_freia.evaluate import evaluate
from innpar_freia.reconstruct_file import reconstruct_file
from innpar_freia.reconstruct_folder import reconstruct_folder
from innpar_freia.report import check_report_outputs
from innpar_freia.train import train
from tests.helpers import pulse_recording, run_cli, write_csv

FS = 125.0


def tiny():
    return resolve_config("tiny", train={"epochs": 1, "device": "cpu"})


@pytest.fixture(scope="module")
def ckpt(tiny_run: Path) -> Path:
    return tiny_run / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One recording of 16 s at 125 Hz, with a PPG and an ABP channel."""
    d = tmp_path_factory.mktemp("records") / "in"
    d.mkdir()
    ppg, abp = pulse_recording(16, seed=1)
    write_csv(d / "c1.csv", {"t": np.arange(ppg.size) / FS, "PPG": ppg, "ABP": abp})
    return d


def test_option_follows_the_caller_and_the_cli_spelling_does_not_leak():
    assert option("--force", "force=True") == "force=True"
    with cli_spelling():
        assert option("--force", "force=True") == "--force"
    assert option("--force", "force=True") == "force=True"
    # Reset however the block ends: the CLI leaves its commands by exceptions.
    with pytest.raises(RuntimeError), cli_spelling():
        raise RuntimeError
    assert option("--force", "force=True") == "force=True"


def test_train_on_a_run_names_resume_and_force_as_parameters(synth_file: Path, tiny_run: Path):
    with pytest.raises(RunDirError) as err:
        train(tiny(), synth_file, tiny_run)
    assert str(err.value) == (
        f"{tiny_run} already holds a run; pass resume=True to continue it or force=True to "
        "start over (its checkpoints and metrics will be deleted)"
    )
    with pytest.raises(RunDirError) as err:
        train(None, synth_file, tiny_run, resume=True, force=True)
    assert str(err.value) == "resume=True and force=True contradict each other: choose one"


def test_resume_with_fewer_epochs_names_resume_overrides(synth_file: Path, tiny_run: Path):
    with pytest.raises(RunDirError) as err:
        train(None, synth_file, tiny_run, resume=True, resume_overrides={"epochs": 1})
    assert 'has completed 2 epochs; resume_overrides["epochs"] = 1 would end' in str(err.value)
    assert "--" not in str(err.value)


def test_the_cli_still_names_its_options_and_the_api_is_answered_in_its_terms_after_it(
    synth_file: Path, tiny_run: Path
):
    result = run_cli("train", "--data", synth_file, "--preset", "tiny", "--out", tiny_run)
    assert result.exit_code == 1
    assert "pass --resume to continue it or --force to start over" in result.output
    # The same process, after the command: the API's spelling again.
    with pytest.raises(RunDirError, match=r"pass resume=True to continue it or force=True"):
        train(tiny(), synth_file, tiny_run)


def test_evaluate_names_split_and_test_fold_as_parameters(ckpt: Path, synth_file: Path):
    with pytest.raises(DataError) as err:
        evaluate(ckpt, synth_file, "all", test_fold=1)
    assert str(err.value) == (
        "test_fold=1 chooses the test split, but split='all' scores every window; drop one of them"
    )
    # Every window of the file the checkpoint was trained on holds its training windows.
    with pytest.raises(DataError) as err:
        evaluate(ckpt, synth_file, "all")
    message = str(err.value)
    assert "score split='test' (or 'val'), or split='train' to score training windows" in message
    assert "--" not in message


def test_eval_through_the_cli_still_names_split_and_test_fold(ckpt: Path, synth_file: Path):
    result = run_cli(
        "eval", "--checkpoint", ckpt, "--data", synth_file, "--split", "all", "--test-fold", 1
    )
    assert result.exit_code == 1
    assert "--test-fold 1 chooses the test split, but --split all scores every" in result.output
    with pytest.raises(DataError, match=re.escape("test_fold=1 chooses the test split")):
        evaluate(ckpt, synth_file, "all", test_fold=1)


def test_reconstruct_folder_names_force_resume_and_calibration_as_parameters(
    ckpt: Path, folder: Path, tmp_path: Path
):
    out = tmp_path / "abp"
    reconstruct_folder(ckpt, folder, out, {"fs": FS})
    with pytest.raises(DataError) as err:
        reconstruct_folder(ckpt, folder, out, {"fs": FS})
    message = str(err.value)
    assert message.startswith("outputs exist: ")
    assert message.endswith(
        "; pass force=True in options to replace them (or resume=True to go on with the run "
        "they are from)"
    )
    with pytest.raises(DataError) as err:
        reconstruct_folder(ckpt, folder, out, {"fs": FS, "force": True}, resume=True)
    assert str(err.value) == (
        "resume=True keeps what an earlier run reconstructed, force=True in options replaces "
        "it: give one"
    )
    with pytest.raises(DataError) as err:
        reconstruct_folder(ckpt, folder, tmp_path / "cal", {"fs": FS, "calibration": "120/80"})
    assert str(err.value).startswith(
        "calibration='120/80' in options: one cuff reading is one person's; for a folder, give "
        "a table of readings (calibration='TABLE.csv' in options with columns"
    )
    with pytest.raises(DataError, match=r"out_dir .* names a folder"):
        reconstruct_folder(ckpt, folder, tmp_path / "x.csv", {"fs": FS})


def test_reconstruct_folder_through_the_cli_still_names_its_options(
    ckpt: Path, folder: Path, tmp_path: Path
):
    out = tmp_path / "abp"
    args = ("reconstruct", "--checkpoint", ckpt, folder, "--out", out, "--fs", FS)
    assert run_cli(*args).exit_code == 0
    result = run_cli(*args)
    assert result.exit_code == 1
    assert "; pass --force to replace them (or --resume to go on with" in result.output
    with pytest.raises(DataError, match=r"pass force=True in options to replace them \(or resume"):
        reconstruct_folder(ckpt, folder, out, {"fs": FS})


def test_reconstruct_file_names_its_parameters(ckpt: Path, folder: Path, tmp_path: Path):
    recording = folder / "c1.csv"
    with pytest.raises(DataError) as err:
        reconstruct_file(ckpt, recording, tmp_path / "abp", {"fs": FS, "reference_abp": "PPG"})
    assert str(err.value).startswith(
        "reference_abp PPG names channel 'PPG', the PPG the output is reconstructed from"
    )
    with pytest.raises(DataError) as err:
        reconstruct_file(ckpt, recording, "/dev/null", {"fs": FS})
    assert str(err.value).startswith("out /dev/null: /dev/null is a device or other special")
    result = run_cli(
        "reconstruct", "--checkpoint", ckpt, recording, "--out", tmp_path / "abp", "--fs", FS,
        "--reference-abp", "PPG",
    )  # fmt: skip
    assert result.exit_code == 1 and "--reference-abp PPG names channel 'PPG'" in result.output


def test_report_names_force_and_out_dir_as_parameters(ckpt: Path, synth_file: Path, tmp_path: Path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("an earlier report")
    with pytest.raises(DataError) as err:
        check_report_outputs(out, [ckpt], synth_file, None, force=False)
    assert str(err.value) == (
        f"{out} already holds a report; pass force=True to replace it, or choose another out_dir"
    )


def test_run_demo_names_force_as_a_parameter(tmp_path: Path):
    from innpar_freia.demo import run_demo

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError) as err:
        run_demo(tmp_path)
    assert str(err.value) == f"{tmp_path} is not empty; pass force=True to replace the demo in it"
    result = run_cli("demo", "--out", tmp_path)
    assert result.exit_code == 1
    assert "is not empty; pass --force to replace the demo in it" in result.output


def test_run_experiment_names_the_variants_setting_in_either_spelling():
    """run_experiment is called from Python and by the runner's script (in the command
    line's spelling): training's "(--lr)" or "(train.lr)" is a variant's setting in both."""
    from innpar_freia.experiments import in_config_terms

    for spelled in ("--lr", "train.lr"):
        message = f"loss became nan: training stopped. Try a lower learning rate ({spelled})"
        assert in_config_terms(message).endswith("learning rate (the variant's train.lr)")
