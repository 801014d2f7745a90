"""Tests that pin what a mutation audit of the command line (innpar_freia.cli: option
parsing and defaults, the refusals of contradicting options, exit codes, messages and the
``--json`` outputs) found unguarded: each one fails when the bug named in its docstring is
put into the package.

Expected messages, exit codes and defaults are written out by hand from the README
("Command line") and each command's ``--help``, never computed by the code under test.
Most refusals are usage errors met before any file is read, so these tests need no trained
model; the few that train use one epoch of the ``tiny`` preset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import KILLED_RUN_CONFIG

from innpar_freia.cli import cli


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def usage_error(result, *fragments: str) -> None:
    """click's usage error: exit code 2, one 'Error:' line with every fragment, no
    traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert sum(line.startswith("Error:") for line in result.output.splitlines()) == 1
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


@pytest.fixture
def junk(tmp_path: Path) -> Path:
    """An existing file for options that must name one; never read by a usage error."""
    path = tmp_path / "junk.h5"
    path.write_text("not read")
    return path


# --------------------------------------------------------------------------------------
# innpar train
# --------------------------------------------------------------------------------------


def test_resume_refuses_a_config_file(junk: Path, tmp_path: Path):
    """Guards against --resume refusing only --preset: with --config the file was ignored
    without a word and the run continued with its own configuration."""
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "tiny"\n')
    r = run("train", "--data", junk, "--out", tmp_path / "r", "--resume", "--config", toml)
    usage_error(r, "--resume continues a run with its own configuration: drop --preset/--config")


def test_resume_names_the_options_it_cannot_take(junk: Path, tmp_path: Path):
    """Guards against dropping the command line's check of --resume's options: the message
    names the options as typed, in alphabetical order, and says which ones may be given."""
    r = run(
        "train", "--data", junk, "--out", tmp_path / "r", "--resume",
        "--test-fold", "1", "--batch-size", "8", "--epochs", "5",
    )  # fmt: skip
    usage_error(
        r,
        "--resume keeps the run's configuration; only --epochs, --device and --num-workers "
        "may be given (not --batch-size, --test-fold)",
    )


def test_dry_run_is_refused_with_resume(junk: Path, tmp_path: Path):
    """Guards against dropping the refusal of --dry-run with --resume: the 'dry run' went
    on to resume (train) the run."""
    r = run("train", "--data", junk, "--out", tmp_path / "r", "--resume", "--dry-run")
    usage_error(r, "--dry-run shows a new run's configuration; not with --resume")


def test_dry_run_with_force_accepts_a_run_directory_that_holds_a_run(
    synth_file: Path, tmp_path: Path
):
    """Guards against --dry-run checking --out as if --force were not given: the README
    says the dry run checks '--out unless --force', and the run --force would replace was
    refused (exit 1). Nothing is written or replaced."""
    taken = tmp_path / "taken"
    (taken / "checkpoints").mkdir(parents=True)
    (taken / "checkpoints" / "last.pt").write_bytes(b"old")
    (taken / "config.json").write_text(KILLED_RUN_CONFIG)
    args = ["train", "--data", synth_file, "--preset", "tiny", "--out", taken, "--dry-run"]
    refused = run(*args)
    assert refused.exit_code == 1 and "already holds a run" in refused.output
    r = run(*args, "--force")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["preset"] == "tiny"
    assert (taken / "checkpoints" / "last.pt").read_bytes() == b"old"
    assert (taken / "config.json").read_text() == KILLED_RUN_CONFIG
    assert sorted(p.name for p in taken.iterdir()) == ["checkpoints", "config.json"]


def test_train_json_prints_no_progress_lines(synth_file: Path, tmp_path: Path):
    """Guards against --json training with progress output: the per-epoch lines ('epoch
    1/1 loss ...') and the 'training N parameters' header went to stderr beside the JSON
    summary, as if --quiet had not been implied."""
    r = run(
        "train", "--data", synth_file, "--preset", "tiny", "--epochs", "1", "--device", "cpu",
        "--out", tmp_path / "r", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["epochs_completed"] == 1 and summary["run_dir"] == str(tmp_path / "r")
    assert summary["best_checkpoint"] == str(tmp_path / "r" / "checkpoints" / "best.pt")
    assert summary["last_checkpoint"] == str(tmp_path / "r" / "checkpoints" / "last.pt")
    assert "epoch" not in r.stderr and "training" not in r.stderr, r.stderr


# --------------------------------------------------------------------------------------
# Messages for errors of the operating system
# --------------------------------------------------------------------------------------


def test_an_os_error_on_a_staged_file_names_its_folder_not_the_hidden_name():
    """Guards against naming the hidden staging file ('.abp.csv.123.staged.csv') in the
    message of a full disk: the user is told the folder that could not be written in."""
    from innpar_freia.cli.common import os_error_message

    staged = OSError(28, "No space left on device", "/out/dir/.abp.csv.4242.staged.csv")
    assert os_error_message(staged) == "cannot write in /out/dir: No space left on device"
    tmp = OSError(28, "No space left on device", "/out/.fig.png.17.tmp.png")
    assert os_error_message(tmp) == "cannot write in /out: No space left on device"
    plain = OSError(13, "Permission denied", "/out/abp.csv")
    assert os_error_message(plain) == "Permission denied: /out/abp.csv"
    assert os_error_message(OSError(28, "No space left on device")) == "No space left on device"


# --------------------------------------------------------------------------------------
# innpar check
# --------------------------------------------------------------------------------------


def test_check_refuses_a_preset_and_a_checkpoint_together(junk: Path):
    """Guards against dropping the refusal of --preset with --checkpoint: the checkpoint
    was checked and the preset ignored without a word."""
    r = run("check", "--preset", "tiny", "--checkpoint", junk)
    usage_error(r, "give --preset or --checkpoint, not both")


def test_check_without_options_checks_the_paper_preset(monkeypatch: pytest.MonkeyPatch):
    """Guards against another default for `innpar check` than the one its --help and the
    README give (--preset paper): the paper's network has 372,340 parameters."""
    import innpar_freia.checks as checks
    from innpar_freia.nn.model import count_parameters

    seen = []

    def quick(model, ppg, abp, norm, seed=0):
        seen.append((count_parameters(model), ppg, seed))
        return {"n_params": count_parameters(model), "checks": {}, "passed": True}

    monkeypatch.setattr(checks, "run_checks", quick)
    r = run("check", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["model"] == "preset paper" and out["inputs"] == "synthetic windows"
    assert seen == [(372_340, None, 0)]


def test_a_failed_check_is_exit_code_1_and_said(monkeypatch: pytest.MonkeyPatch):
    """Guards against `innpar check` exiting 0 when a check fails (its --help: 'Exit code 1
    if any fails'). The float32 round trip is made to fail by a tolerance below zero."""
    import innpar_freia.checks as checks

    monkeypatch.setattr(checks, "ROUNDTRIP_TOL_FLOAT32", -1.0)
    r = run("check", "--preset", "tiny")
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert lines[-1] == "SOME CHECKS FAILED"
    assert [line.split()[:2] for line in lines[1:-1]] == [
        ["FAIL", "roundtrip_float32"],
        ["PASS", "roundtrip_float64"],
        ["PASS", "logdet_vs_autograd_jacobian"],
        ["PASS", "logdet_forward_reverse_cancel"],
        ["PASS", "every_parameter_gets_gradient"],
        ["PASS", "state_dict_save_load_identical"],
    ]
    r = run("check", "--preset", "tiny", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["passed"] is False


def test_check_refuses_windows_of_another_length_than_the_model_s(tmp_path: Path, tiny_run: Path):
    """Guards against dropping the window-length check of `innpar check --checkpoint
    --data`: windows of 500 samples (5 s at 100 Hz) went into a network trained on 625 (5 s
    at 125 Hz). A preset is built for the file instead, as train builds it (test_cli)."""
    from helpers import assert_clean_failure

    from innpar_freia.data.synthetic import synthesize_dataset

    data = synthesize_dataset(tmp_path / "100.h5", subjects=3, minutes=0.2, fs=100.0, folds=0)
    r = run("check", "--checkpoint", tiny_run / "checkpoints" / "best.pt", "--data", data)
    assert_clean_failure(
        r,
        tmp_path / "none",
        f"{data} has windows of 500 samples at 100 Hz, but the model takes 625 samples at 125 Hz",
    )


# --------------------------------------------------------------------------------------
# Under torchrun: what the ranks other than 0 print
# --------------------------------------------------------------------------------------


def fake_result(run_dir: Path, best_val_mae: float | None):
    from innpar_freia.train import TrainResult

    return TrainResult(
        run_dir=run_dir,
        last_checkpoint=run_dir / "checkpoints" / "last.pt",
        best_checkpoint=run_dir / "checkpoints" / "best.pt",
        epochs_completed=3,
        best_epoch=2,
        best_val_mae=best_val_mae,
        stopped_early=True,
    )


def test_train_summary_is_printed_by_rank_0_only(
    junk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Guards against every torchrun process printing the end-of-training summary (it was
    printed N times), and against the JSON summary carrying another number than the best
    validation MAE. (train is replaced: what is checked is what the command prints.)"""
    import innpar_freia.train as train_module

    out = tmp_path / "r"
    monkeypatch.setattr(train_module, "train", lambda *a, **k: fake_result(out, 7.125))
    args = ["train", "--data", junk, "--preset", "tiny", "--out", out]
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    r = run(*args, "--json")
    assert r.exit_code == 0 and r.output == "", r.output
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("RANK", "0")
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "run_dir": str(out),
        "best_checkpoint": str(out / "checkpoints" / "best.pt"),
        "last_checkpoint": str(out / "checkpoints" / "last.pt"),
        "epochs_completed": 3,
        "best_epoch": 2,
        "best_val_mae": 7.125,
        "stopped_early": True,
    }
    r = run(*args)
    assert r.stdout == (
        f"done: 3 epochs; best validation MAE 7.12 mmHg at epoch 2\n"
        f"best checkpoint: {out / 'checkpoints' / 'best.pt'}\n"
    )
    monkeypatch.setattr(train_module, "train", lambda *a, **k: fake_result(out, None))
    assert "best validation MAE n/a at epoch 2" in run(*args).stdout


def test_a_one_epoch_run_says_epoch(junk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Training's last line said "done: 1 epochs"; counts users see take their number."""
    from dataclasses import replace

    import innpar_freia.train as train_module
    from innpar_freia.cli.common import counted

    out = tmp_path / "r"
    one = replace(fake_result(out, 7.125), epochs_completed=1, best_epoch=1)
    monkeypatch.setattr(train_module, "train", lambda *a, **k: one)
    r = run("train", "--data", junk, "--preset", "tiny", "--out", out)
    assert r.stdout.startswith("done: 1 epoch; best validation MAE 7.12 mmHg at epoch 1\n")
    assert [counted(n, "subject") for n in (0, 1, 2)] == ["0 subjects", "1 subject", "2 subjects"]
    assert counted(1, "analysis", "analyses") == "1 analysis"
    assert counted(3, "analysis", "analyses") == "3 analyses"


def test_other_ranks_report_a_usage_error_with_their_rank_and_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """Guards against a rank other than 0 losing a usage error's exit code (2) or printing
    it as rank 0 does: after its wait it says '[rank N] Error: ...' once."""
    import innpar_freia.cli as cli_module
    import innpar_freia.cli.common as common

    monkeypatch.setattr(common, "OTHER_RANK_WAIT_S", 0.0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setattr("sys.argv", ["innpar", "train", "--epochs", "0"])
    with pytest.raises(SystemExit) as stop:
        cli_module._main_quietly()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("[rank 3] Error: ") and err.count("Error") == 1, err
    assert "'--epochs'" in err and "0 is not in the range x>=1" in err


def train_as_rank_1(monkeypatch: pytest.MonkeyPatch, data: Path, out: Path) -> None:
    """The command line of `innpar train` on ``data`` as torchrun's second process runs it."""
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    argv = ["innpar", "train", "--data", str(data), "--preset", "tiny", "--out", str(out)]
    monkeypatch.setattr("sys.argv", argv)


def test_other_ranks_report_a_user_error_with_exit_code_1(
    junk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """Guards against a rank other than 0 exiting 0, or with a traceback, on a user error
    that the package raises (here: a data file that is not HDF5)."""
    import innpar_freia.cli as cli_module
    import innpar_freia.cli.common as common

    monkeypatch.setattr(common, "OTHER_RANK_WAIT_S", 0.0)
    train_as_rank_1(monkeypatch, junk, tmp_path / "r")
    with pytest.raises(SystemExit) as stop:
        cli_module._main_quietly()
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("[rank 1] Error: ") and "is not a readable HDF5 file" in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("exc", "lost"),
    [
        (RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer"), True),
        (RuntimeError("Connection reset by peer"), True),
        (RuntimeError("NCCL communicator was aborted on rank 1"), True),
        (RuntimeError("the remote process exited"), True),
        (RuntimeError("CUDA out of memory"), False),
        (ValueError("connection closed by peer"), False),  # only a RuntimeError's wording
    ],
)
def test_a_collective_failing_for_a_lost_peer_is_recognised(exc: Exception, lost: bool):
    """Guards against the other ranks printing their traceback of a closed connection
    (burying rank 0's message) or hiding a real error of their own as 'lost the
    connection'."""
    from innpar_freia.cli import lost_a_peer

    assert lost_a_peer(exc) is lost
    try:  # the peer's failure as the cause of what the command raised
        try:
            raise exc
        except Exception as inner:
            raise KeyError("during the epoch") from inner
    except KeyError as outer:
        assert lost_a_peer(outer) is lost

    class DistBackendError(RuntimeError):  # torch.distributed's, by name
        pass

    assert lost_a_peer(DistBackendError("anything")) is True


# --------------------------------------------------------------------------------------
# innpar demo
# --------------------------------------------------------------------------------------


def test_demo_writes_into_innpar_demo_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Guards against another default folder for `innpar demo` than the README's
    ('innpar-demo/' by default), and against --epochs/--force not reaching the demo.
    (run_demo is replaced: what is checked is what the command asks of it and prints.)"""
    import innpar_freia.demo as demo_module

    asked = []

    def fake_demo(out_dir, *, epochs=None, force=False, callbacks=None):
        asked.append((out_dir, epochs, force))
        callbacks.on_message(f"opening line, {out_dir}")  # run_demo says where it writes
        out = Path(out_dir)
        summary = {
            "test_windows": 12, "best_epoch": 3, "wave_mae": 9.5, "naive_wave_mae": 15.25,
            "sbp_mae": 11.0, "dbp_mae": 6.0, "map_mae": 7.0,
        }  # fmt: skip
        return demo_module.DemoResult(
            out, out / "data.h5", out / "run", out / "run/checkpoints/best.pt",
            out / "eval/metrics.json", out / "eval/reconstructions.png", summary,
        )  # fmt: skip

    monkeypatch.setattr(demo_module, "run_demo", fake_demo)
    monkeypatch.chdir(tmp_path)
    r = run("demo")
    assert r.exit_code == 0, r.output
    assert asked == [(Path("innpar-demo"), None, False)]
    assert "opening line, innpar-demo" in r.output  # the command's callbacks reach it
    assert "waveform MAE 9.50 mmHg (naive baseline 15.25)" in r.stdout
    assert "SBP MAE 11.00, DBP MAE 6.00, MAP MAE 7.00 mmHg" in r.stdout
    assert f"checkpoint:  {Path('innpar-demo/run/checkpoints/best.pt')}" in r.stdout
    r = run("demo", "--out", "mine", "--epochs", "2", "--force")
    assert r.exit_code == 0 and asked[-1] == (Path("mine"), 2, True)


# --------------------------------------------------------------------------------------
# innpar data
# --------------------------------------------------------------------------------------


def test_data_synth_defaults_are_the_ones_its_help_gives(tmp_path: Path):
    """Guards against other defaults of `innpar data synth` than its --help states: 24
    subjects, 4 minutes each, 125 Hz, 5-s windows (625 samples), 5 folds, seed 0."""
    out = tmp_path / "d.h5"
    r = run("data", "synth", "--out", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"wrote {out}: ")
    assert r.stdout.rstrip().endswith(" windows of 625 samples at 125 Hz from 24 subjects")
    info = json.loads(run("data", "info", out, "--json").stdout)
    assert info["provenance"] == {
        "generator": "innpar_freia.data.synthetic",
        "subjects": 24,
        "minutes": 4.0,
        "fs": 125.0,
        "window_seconds": 5.0,
        "folds": 5,
        "seed": 0,
    }
    assert (info["n_subjects"], info["window_length"], len(info["folds"])) == (24, 625, 5)
    # 4 minutes are 48 windows of 5 s; a subject keeps all but the edge its PPG delay eats.
    assert 24 * 46 <= info["n_windows"] <= 24 * 48


def test_data_split_defaults_are_5_folds_and_test_fold_0(tmp_path: Path):
    """Guards against other defaults of `innpar data split` than its --help gives (--folds
    5, --test-fold 0): test = fold 0, validation = fold 1, training the other three."""
    from innpar_freia.data.store import read_info
    from innpar_freia.data.synthetic import synthesize_dataset

    # 6 subjects of 5 windows (30 s each): five folds, one of them with two subjects.
    path = synthesize_dataset(tmp_path / "s.h5", subjects=6, minutes=0.5, fs=125.0, folds=0)
    r = run("data", "split", path, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["test_fold"] == 0 and s["fold_assignment"] == "seeded greedy, seed 0"
    folds = {k: v["windows"] for k, v in s["folds"].items()}
    assert sorted(folds) == ["0", "1", "2", "3", "4"] and sum(folds.values()) == 30
    assert sorted(folds.values()) == [5, 5, 5, 5, 10]
    assert s["splits"] == {
        "train": 30 - folds["0"] - folds["1"],
        "val": folds["1"],
        "test": folds["0"],
    }
    info = read_info(path)
    fold, split = info.fold.tolist(), info.split.tolist()
    expected = {0: "test", 1: "val", 2: "train", 3: "train", 4: "train"}
    assert split == [expected[k] for k in fold]
    text = run("data", "split", path).stdout
    assert f"split for test fold 0: train {30 - folds['0'] - folds['1']}, " in text
    text = run("data", "split", path, "--test-fold", "2").stdout
    assert f"  split for test fold 2: train {30 - folds['2'] - folds['3']}, " in text


def test_data_check_defaults_are_threshold_0_99_and_64_points(tmp_path: Path):
    """Guards against other defaults of `innpar data check` than its --help gives
    (--threshold 0.99, --signature-points 64); exit code 0 for a file without leakage."""
    from innpar_freia.data.synthetic import synthesize_dataset

    path = synthesize_dataset(tmp_path / "s.h5", subjects=6, minutes=0.5, fs=125.0, folds=3)
    r = run("data", "check", path, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert (report["near_threshold"], report["signature_points"]) == (0.99, 64)
    assert report["leakage"] is False and report["checked"] == ["split", "fold"]


def test_import_json_draws_no_progress_bar_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Guards against `innpar data import --json` drawing its progress bar on a terminal's
    stderr, as --quiet would not: --json implies --quiet."""
    import io

    import numpy as np
    from helpers import sine_windows

    import innpar_freia.cli.data as data_cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    layout = tmp_path / "npy"
    ppg, abp = sine_windows(4, 625)
    for kind, windows in (("ppg", ppg), ("abp", abp)):
        (layout / kind).mkdir(parents=True)
        for i, w in enumerate(windows):
            np.save(layout / kind / f"s{i % 2}_{i * 625}.npy", w)
    terminal = Terminal()
    real = data_cli._BarProgress
    monkeypatch.setattr(data_cli, "_BarProgress", lambda quiet=False: real(quiet, terminal))
    for n, flags in enumerate((["--json"], ["--quiet"], [])):
        r = run("data", "import", "innpar-npy", layout, "--out", tmp_path / f"{n}.h5", *flags)
        assert r.exit_code == 0, r.output
        drawn = terminal.getvalue()
        assert (drawn == "") is bool(flags), (flags, drawn)
    assert "4/4" in drawn  # the bar of the import without either flag


# --------------------------------------------------------------------------------------
# innpar plot
# --------------------------------------------------------------------------------------


def write_history(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['{"epoch": 1, "train_loss": 0.5}', '{"epoch": 2, "train_loss": 0.3}']
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_plot_suffix_is_read_without_case(tmp_path: Path):
    """Guards against refusing 'T.PNG' or 'T.Pdf' (the suffix compared with its case): the
    figure is written in the format its suffix names, whatever its case."""
    run_dir = write_history(tmp_path / "run")
    for name, magic in (("T.PNG", b"\x89PNG"), ("T.Pdf", b"%PDF")):
        r = run("plot", "training", run_dir, "--out", tmp_path / name)
        assert r.exit_code == 0, r.output
        assert r.stdout == f"figure: {tmp_path / name}\n"
        assert (tmp_path / name).read_bytes().startswith(magic)
    r = run("plot", "training", run_dir, "--out", tmp_path / "T.svg")
    usage_error(r, "must end in .png or .pdf, not 'T.svg'")
    assert not (tmp_path / "T.svg").exists()


# --------------------------------------------------------------------------------------
# innpar eval: what it prints
# --------------------------------------------------------------------------------------


def test_eval_text_shows_every_part_of_the_protocol_and_the_comparison(
    tiny_run: Path, synth_file: Path, tmp_path: Path
):
    """Guards against the printed summary of `innpar eval` losing a part: a baseline row
    (naive, linear, carry-forward), the calibrated protocol, the standards' grades, the
    inverse direction, the comparison table of several checkpoints, or the lines naming
    the report and the predictions files; and against --json leaving out 'outputs'."""
    best, last = (tiny_run / "checkpoints" / f"{n}.pt" for n in ("best", "last"))
    out, preds = tmp_path / "cmp", tmp_path / "p.h5"
    args = ["eval", "--checkpoint", best, "--checkpoint", last, "--data", synth_file]
    args += ["--out", out, "--no-figures", "--save-predictions", preds]
    r = run(*args)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    for path in (best, last):
        head, tail = f"{path} (epoch ", f" on {synth_file} [test]"
        assert sum(ln.startswith(head) and ln.endswith(tail) for ln in lines) == 1

    def count(prefix: str) -> int:
        return sum(line.startswith(prefix) for line in lines)

    assert count("calibration-free: ") == 2
    assert count("  model ") == 4  # calibration-free and calibrated, per checkpoint
    assert count("  naive ") == count("  linear ") == count("  carry-forward ") == 2
    assert count("calibrated (offset-scale, first window per subject, not scored): ") == 2
    assert count("standards (calibration-free, ") == count("standards (calibrated, ") == 2
    assert count("inverse (ABP -> PPG, z units): MAE ") == 2
    assert "# Comparison" in lines
    assert count("| 00000-tiny/best |") == count("| 00000-tiny/last |") == 1
    assert count("| baseline: carry-forward |") == 1
    assert lines[-3:] == [
        f"report: {out / 'report.html'}  (and report.md, metrics.json)",
        f"predictions: {tmp_path / 'p-00000-tiny_best.h5'}",
        f"predictions: {tmp_path / 'p-00000-tiny_last.h5'}",
    ]
    # The numbers printed are the report's (metrics.json), two decimals.
    m = json.loads((out / "metrics.json").read_text())["models"][0]
    first_model_row = next(line for line in lines if line.startswith("  model "))
    assert f"wave MAE {m['calibration_free']['waveform']['mae']:.2f} " in first_model_row
    r = run(*args, "--force", "--json")
    assert r.exit_code == 0, r.output
    outputs = json.loads(r.stdout)["outputs"]
    assert outputs["report.html"] == str(out / "report.html")
    assert outputs["predictions"] == [
        str(tmp_path / "p-00000-tiny_best.h5"),
        str(tmp_path / "p-00000-tiny_last.h5"),
    ]


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_plot_refuses_to_draw_over_any_of_its_inputs(tmp_path: Path, force: list[str]):
    """Guards against a plot command leaving an input out of its output check: the README's
    'an input is never overwritten by an output (--force or not)' held only by luck, the
    refusal was another message ('output exists', 'holds no epoch records'). Each input
    below is named like a figure and given as --out too."""
    inputs = {
        "training": ["training", tmp_path / "run.png"],
        "predictions": ["bland-altman", tmp_path / "preds.png"],
        "reconstruction": ["recording", tmp_path / "abp.png", "--input", tmp_path / "in.csv"],
        "recording": ["recording", tmp_path / "abp.csv", "--input", tmp_path / "in.png"],
    }
    for args in inputs.values():
        for path in args[1:]:
            if isinstance(path, Path):
                path.write_bytes(b"the user's own file")
    for name, args in inputs.items():
        victim = next(p for p in args[1:] if isinstance(p, Path) and p.suffix == ".png")
        r = run("plot", *args, "--out", victim, *force)
        assert r.exit_code == 1, (name, r.output)
        assert f"Error: output {victim} is the input {victim}; choose another output name" in (
            r.output
        ), (name, r.output)
        assert victim.read_bytes() == b"the user's own file", name


def test_plot_reconstructions_draws_4_windows_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Guards against another default of `innpar plot reconstructions --windows` than its
    --help gives (4), and against the protocol's default (calibration-free) changing.
    (The figure is replaced: what is checked is what the command asks for.)"""
    import innpar_freia.figures as figures

    asked = []

    def fake_figure(predictions, kind, out, protocol, n):
        asked.append((kind, protocol, n))
        return out

    monkeypatch.setattr(figures, "predictions_figure", fake_figure)
    preds = tmp_path / "p.h5"
    preds.write_bytes(b"not read")
    assert run("plot", "reconstructions", preds, "--out", tmp_path / "a.png").exit_code == 0
    r = run("plot", "reconstructions", preds, "--out", tmp_path / "b.png", "--windows", "7")
    assert r.exit_code == 0
    r = run("plot", "reconstructions", preds, "--out", tmp_path / "c.png", "--windows", "33")
    usage_error(r, "33 is not in the range 1<=x<=32")
    assert asked == [
        ("reconstructions", "calibration-free", 4),
        ("reconstructions", "calibration-free", 7),
    ]


# --------------------------------------------------------------------------------------
# innpar reconstruct
# --------------------------------------------------------------------------------------


def test_reconstruct_refuses_the_channel_option_of_the_other_direction(junk: Path, tmp_path: Path):
    """Guards against dropping the refusal of --ppg-channel with --direction abp2ppg: the
    option was ignored without a word (the ABP channel was found by name instead)."""
    out = tmp_path / "o.csv"
    args = ["reconstruct", "--checkpoint", junk, tmp_path / "in.csv", "--out", out]
    r = run(*args, "--direction", "abp2ppg", "--ppg-channel", "PLETH")
    usage_error(r, "--ppg-channel names the input of --direction ppg2abp")
    r = run(*args, "--abp-channel", "ABP")  # the default direction is ppg2abp
    usage_error(r, "--abp-channel names the input of --direction abp2ppg")
    assert not out.exists()


# --------------------------------------------------------------------------------------
# Signals and Ctrl-C
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["LOCAL_RANK", "TORCHELASTIC_RUN_ID"])
def test_sigterm_is_left_to_python_under_torchrun(monkeypatch: pytest.MonkeyPatch, variable):
    """Guards against installing the SIGTERM handler under torchrun (either variable it
    sets): a rank blocked in a collective would see the exception only once it returns,
    and torchrun stops its ranks with SIGTERM expecting them gone. Outside torchrun the
    handler is installed."""
    import signal

    from innpar_freia.cli import stop_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    try:
        for name in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(variable, "0")
        stop_on_sigterm()
        assert signal.getsignal(signal.SIGTERM) is before
        monkeypatch.delenv(variable)
        stop_on_sigterm()
        assert signal.getsignal(signal.SIGTERM) is not before
    finally:
        signal.signal(signal.SIGTERM, before)


def test_ctrl_c_on_another_rank_exits_1_without_a_word(
    junk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """Guards against a rank other than 0 exiting 0 on Ctrl-C (click's Abort), or printing
    "Aborted!" that rank 0 prints already."""
    import innpar_freia.cli as cli_module
    import innpar_freia.train as train_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", interrupted)
    train_as_rank_1(monkeypatch, junk, tmp_path / "r")
    with pytest.raises(SystemExit) as stop:
        cli_module.main()
    assert stop.value.code == 1
    captured = capsys.readouterr()  # click ends the line ^C was typed on: a newline
    assert captured.out == "" and captured.err.strip() == "", captured.err


def test_reconstruct_abp2ppg_reads_the_abp_channel_it_is_given(tiny_run: Path, tmp_path: Path):
    """Guards against --abp-channel not reaching the reverse direction: the channel named
    was ignored and the ABP found by name reconstructed instead (exit 0), where a channel
    the recording lacks must be one message naming it."""
    from helpers import assert_clean_failure

    src = tmp_path / "in.csv"
    rows = [f"{i / 100:.2f},{(i % 100) / 100:.2f},{90 + (i % 100) / 4:.2f}" for i in range(1500)]
    src.write_text("t,PPG,ABP\n" + "\n".join(rows) + "\n")
    out = tmp_path / "o.csv"
    r = run(
        "reconstruct", "--checkpoint", tiny_run / "checkpoints" / "best.pt", src, "--out", out,
        "--direction", "abp2ppg", "--abp-channel", "ART2",
    )  # fmt: skip
    assert_clean_failure(r, out, "has no channel 'ART2'; its channels are: PPG, ABP")


def test_reconstruct_defaults_and_what_it_prints(tiny_run: Path, tmp_path: Path):
    """Guards against other defaults of `innpar reconstruct` than its --help gives
    (--overlap 0.5, --ppg-delay 0, --calibration-mode offset-scale), against
    --calibration-mode not reaching the reconstruction, and against the printed summary
    losing its beats line or the lines naming the outputs. With a cuff reading of 120/80
    over the whole recording (shorter than the 60-s segment), offset and scale make the
    median beat exactly 120/80 mmHg."""
    src = tmp_path / "in.csv"
    rows = [f"{i / 100:.2f},{np.sin(i / 10):.4f}" for i in range(1500)]  # 15 s at 100 Hz
    src.write_text("t,PPG\n" + "\n".join(rows) + "\n")
    out = tmp_path / "abp.csv"
    args = ["reconstruct", "--checkpoint", tiny_run / "checkpoints" / "best.pt", src]
    args += ["--out", out, "--calibration", "120/80"]
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["overlap"], s["delay_s"], s["direction"], s["fs"]) == (0.5, 0.0, "ppg2abp", 100.0)
    assert s["calibration"]["mode"] == "offset-scale"
    assert s["calibration"]["segment_s"] == [0.0, 15.0]
    assert s["beats"]["sbp_median"] == pytest.approx(120.0, abs=1e-6)
    assert s["beats"]["dbp_median"] == pytest.approx(80.0, abs=1e-6)
    r = run(*args, "--force")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    # The first 0.25 s are left out as a monitor's start-up transient (README): one gap,
    # 14.75 of 15 s reconstructed.
    assert lines[0] == f"{src}: PPG, 15.0 s at 100 Hz; reconstructed 14.8 s (98.3 %), 1 gap(s)"
    assert " beats; median SBP 120.0, DBP 80.0, MAP " in lines[1]
    assert lines[-3:] == [
        f"  output: {out}",
        f"  beats: {tmp_path / 'abp.beats.csv'}",
        f"  summary: {tmp_path / 'abp.summary.json'}",
    ]
    r = run(*args, "--force", "--json", "--calibration-mode", "offset")
    assert r.exit_code == 0 and json.loads(r.stdout)["calibration"]["mode"] == "offset"


def test_sigterm_during_training_says_how_to_resume(
    junk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Guards against the resume hint being given on Ctrl-C only: SIGTERM (kill, a batch
    scheduler's time limit), which the handler turns into SystemExit(143), stopped a run
    that had written a checkpoint without saying how to continue it. Another SystemExit
    (not a signal) gets no hint."""
    import innpar_freia.train as train_module

    run_dir = tmp_path / "r"
    code = []

    def stopped_after_a_checkpoint(*args, **kwargs):
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints" / "last.pt").write_bytes(b"epoch 1")
        raise SystemExit(code[-1])

    monkeypatch.setattr(train_module, "train", stopped_after_a_checkpoint)
    args = ["train", "--data", junk, "--preset", "tiny", "--out", run_dir, "--epochs", "9"]
    code.append(143)
    r = run(*args)
    assert r.exit_code == 143
    assert f"interrupted; {run_dir} continues from its last completed epoch with:" in r.stderr
    assert f"  innpar train --data {junk} --out {run_dir} --resume --epochs 9" in r.stderr
    code.append(1)
    r = run(*args, "--force")
    assert r.exit_code == 1 and "interrupted" not in r.output


def test_data_info_text_lists_units_splits_and_folds(tmp_path: Path):
    """Guards against `innpar data info` leaving a line out of its text summary (the folds
    line was dropped without a test noticing). 6 synthetic subjects of 30 s: 6 windows of
    5 s each, one of which the PPG's delay eats, so 5 per subject; 3 folds of 2 subjects;
    the split column, drawn apart from the folds, gives 4/1/1 subjects."""
    from innpar_freia import __version__
    from innpar_freia.data.synthetic import synthesize_dataset

    path = synthesize_dataset(tmp_path / "s.h5", subjects=6, minutes=0.5, fs=125.0, folds=3)
    r = run("data", "info", path)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[:5] == [
        f"{path}  (innpar-freia.windows v1, source: synthetic)",
        "  30 windows x 625 samples at 125 Hz (5.00 s); 6 subjects",
        "  units: PPG a.u., ABP mmHg",
        "  splits: train 20, val 5, test 5, unassigned 0",
        "  folds: 0: 10 windows / 2 subjects, 1: 10 windows / 2 subjects, "
        "2: 10 windows / 2 subjects",
    ]
    assert lines[5].startswith("  created ") and lines[5].endswith(
        f" by innpar-freia {__version__}"
    )
    assert len(lines) == 6


def test_check_data_uses_up_to_64_windows(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Guards against `innpar check --data` taking another number of windows than its
    --help says ('up to 64'): all of a smaller file's, 64 of a larger one's, first and
    last included. (The checks are replaced: what is checked is what they are given.)"""
    import innpar_freia.checks as checks
    from innpar_freia.data.synthetic import synthesize_dataset

    given = []

    def quick(model, ppg, abp, norm, seed=0):
        given.append((ppg.shape, abp.shape))
        return {"n_params": 1, "checks": {}, "passed": True}

    monkeypatch.setattr(checks, "run_checks", quick)
    small = synthesize_dataset(tmp_path / "s.h5", subjects=6, minutes=0.5, fs=125.0, folds=0)
    for data, n in ((small, 30), (synth_file, 64)):  # synth_file: 10 subjects of 90 s
        r = run("check", "--preset", "tiny", "--data", data, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["inputs"] == str(data)
        assert given[-1] == ((n, 625), (n, 625))


def test_check_data_checks_the_network_on_windows_with_a_pulse(
    synth_file: Path, tmp_path: Path
) -> None:
    """A file whose windows were mostly flat lines (a lost sensor) made `innpar check
    --data` say the network FAILed 'every_parameter_gets_gradient': a flat PPG z-scores
    to zeros. The flat windows are left out; a file of nothing else is the data's fault."""
    import shutil

    import h5py

    data = tmp_path / "flat.h5"
    shutil.copy(synth_file, data)
    with h5py.File(data, "r+") as fh:
        n = fh["ppg"].shape[0]
        flat = np.arange(n) % 4 != 0  # 3 windows in 4, every one of the 64 spread ones
        ppg = fh["ppg"][:]
        ppg[flat] = 0.5
        fh["ppg"][:] = ppg
    r = run("check", "--preset", "tiny", "--data", data)
    assert r.exit_code == 0, r.output
    assert r.stdout.count("PASS") == 6 and "all checks passed" in r.stdout
    with h5py.File(data, "r+") as fh:
        abp = fh["abp"][:]
        abp[~flat] = 80.0
        fh["abp"][:] = abp
    r = run("check", "--preset", "tiny", "--data", data)
    assert r.exit_code == 1 and "Traceback" not in r.output and "FAIL" not in r.output
    assert r.output.strip() == (
        f"Error: {data}: the PPG or the ABP of every window is a constant line: there is no "
        "pulse to check the network on"
    )


def test_eval_report_goes_to_eval_split_in_the_run_by_default(
    tiny_run: Path, synth_file: Path, tmp_path: Path
):
    """Guards against the default report folder ignoring --split: `--split val` wrote
    into <run>/eval-test, the folder of the test split's report (--help: '<run>/eval-<split>
    of the checkpoint')."""
    import shutil

    run_copy = Path(shutil.copytree(tiny_run, tmp_path / "00001-tiny"))
    ckpt = run_copy / "checkpoints" / "best.pt"
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--split", "val",
            "--calibration", "none", "--no-figures")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"report: {run_copy / 'eval-val' / 'report.html'}" in r.stdout
    assert json.loads((run_copy / "eval-val" / "metrics.json").read_text())["split"] == "val"
    assert not (run_copy / "eval-test").exists()


def test_import_report_names_fold_files_and_warns_and_info_lists_reference_fields(
    tmp_path: Path,
):
    """Guards against `innpar data import` dropping its warnings (printed on stderr) or
    counting bp-benchmark's fold files as 'records', and against `innpar data info`
    leaving out the reference fields line. Two fold files of 6 windows, subjects s0/s1 in
    fold 0 and s1/s2 in fold 1: s1 lies in both folds."""
    from helpers import sine_windows
    from scipy.io import savemat

    folder = tmp_path / "bpb"
    folder.mkdir()
    for k in range(2):
        ppg, abp = sine_windows(6, 125, seed=k)
        patients = [f"s{k + i % 2}" for i in range(6)]
        savemat(
            folder / f"signal_fold_{k}.mat",
            {
                "patient": np.vstack(patients),
                "trial": np.vstack([f"{p}_{i:06d}" for i, p in enumerate(patients)]),
                "signal": ppg,
                "abp_signal": abp,
                "SP": abp.max(axis=1, keepdims=True),
                "DP": abp.min(axis=1, keepdims=True),
            },
        )
    out = tmp_path / "bpb.h5"
    r = run("data", "import", "bp-benchmark", folder, "--out", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == (
        f"wrote {out}: 12 windows of 125 samples at 125 Hz from 3 subjects"
    )
    assert "  fold files: 2 kept, 0 rejected of 2" in r.stdout.splitlines()
    assert "warning: 1 subject has windows in several folds (e.g. s1)" in r.stderr
    assert "warning: the bp-benchmark layout does not store the sampling rate" in r.stderr
    assert "warning" not in r.stdout
    r = run("data", "info", out)
    assert "  reference fields: DP, SP" in r.stdout.splitlines()


def test_data_check_says_leakage_on_stderr_and_near_pairs_of_synthetic_data_are_a_note(
    tmp_path: Path,
):
    """Guards against `innpar data check` dropping its closing line on stderr when it finds
    leakage (exit code 3), or printing it with --json, and against dropping the note that
    near-identical pairs of synthetic data (below r 0.999) are expected, not leakage."""
    import re

    from helpers import sine_windows

    from innpar_freia.data.store import WindowWriter
    from innpar_freia.data.synthetic import synthesize_dataset

    leaky = tmp_path / "leaky.h5"
    ppg, abp = sine_windows(6, 625)
    with WindowWriter(leaky, fs=125.0, window_length=625, source_format="t") as w:
        # Subject a has a window in fold 0 and one in fold 1.
        w.append(ppg, abp, subject=["a", "b", "c", "a", "e", "f"],
                 window_id=[f"w{i}" for i in range(6)], fold=[0, 0, 0, 1, 1, 1])  # fmt: skip
    r = run("data", "check", leaky)
    assert r.exit_code == 3, r.output
    assert "LEAKAGE FOUND across folds (0: 3, 1: 3)" in r.stdout
    assert r.stderr == (
        "leakage found: fix the splits before training ('innpar data split --folds K "
        "--join-shared' keeps subjects sharing signal in one fold) (exit code 3)\n"
    )
    r = run("data", "check", leaky, "--json")
    assert r.exit_code == 3 and r.stderr == "" and json.loads(r.stdout)["leakage"] is True

    synthetic = synthesize_dataset(tmp_path / "s.h5", subjects=6, minutes=0.5, fs=125.0, folds=3)
    r = run("data", "check", synthetic, "--threshold", "0.5")  # near pairs, none a copy
    assert r.exit_code == 0, r.output
    notes = re.findall(
        r"^    note: \d+ near-identical window pairs across (\w+)s \(r < 0.999\): expected in "
        r"synthetic data, whose subjects share one waveform model; not leakage$",
        r.stdout,
        re.M,
    )
    assert notes == ["split", "fold"], r.stdout


def test_plot_recording_passes_every_option_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Guards against `innpar plot recording` dropping --fs, --channel, --reference-abp or
    --direction on the way to the figure (each was replaced by its default without a
    test noticing). (The figure is replaced: what is checked is what it is asked for.)"""
    import innpar_freia.figures as figures

    asked = []

    def fake_figure(reconstruction, source, out, on_warning=None, **options):
        asked.append((reconstruction, source, out, options))
        return out

    monkeypatch.setattr(figures, "recording_figure", fake_figure)
    rec, src, out = tmp_path / "ppg.csv", tmp_path / "in.npy", tmp_path / "f.pdf"
    r = run("plot", "recording", rec, "--input", src, "--out", out, "--fs", "250",
            "--channel", "ART", "--reference-abp", "ABP2", "--direction", "abp2ppg")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stdout == f"figure: {out}\n"
    options = {"fs": 250.0, "channel": "ART", "reference_abp": "ABP2", "direction": "abp2ppg"}
    assert asked == [(rec, src, out, options)]
    run("plot", "recording", rec, "--input", src, "--out", tmp_path / "g.png")
    defaults = {"fs": None, "channel": None, "reference_abp": None, "direction": None}
    assert asked[-1][3] == defaults


def test_sigterm_swallowed_by_a_finaliser_still_ends_the_command_with_143(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """Guards against a command that SIGTERM stopped inside a finaliser (where Python prints
    and ignores the exception, and the command runs on to its end) exiting 0 as if it had
    finished: it exits with a terminated command's status, 143."""
    import signal

    import innpar_freia.cli as cli_module

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli_module, "_TERMINATED", [signal.SIGTERM])
    monkeypatch.setattr("sys.argv", ["innpar", "--version"])
    try:
        with pytest.raises(SystemExit) as stop:
            cli_module.main()
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stop.value.code == 143
    assert "innpar-freia, version " in capsys.readouterr().out


def test_the_sigterm_handler_raises_systemexit_143_and_knows_weakref_callbacks(
    monkeypatch: pytest.MonkeyPatch,
):
    """Guards against the SIGTERM handler ending a command with another status than a
    terminated process's (128 + 15) or forgetting the signal (the exit status when a
    finaliser swallows the exception), and against it taking a weakref callback of the
    standard library (weakref.finalize, WeakValueDictionary) for ordinary code, where
    the exception would be printed as "Exception ignored" and lost."""
    import signal
    import sys
    import weakref

    import innpar_freia.cli as cli_module

    before = signal.getsignal(signal.SIGTERM)
    terminated: list[int] = []
    monkeypatch.setattr(cli_module, "_TERMINATED", terminated)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    try:
        cli_module.stop_on_sigterm()
        handler = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, before)
    with pytest.raises(SystemExit) as stop:
        handler(signal.SIGTERM, sys._getframe())
    assert stop.value.code == 143 and terminated == [signal.SIGTERM]

    seen = []

    class Watched:
        pass

    watched = Watched()
    weakref.finalize(watched, lambda: seen.append(cli_module._in_finaliser(sys._getframe())))
    del watched  # collected at once: weakref.finalize (in weakref.py) calls the lambda
    assert seen == [True]


def test_ctrl_c_inside_a_finaliser_comes_again_once_it_has_returned(
    monkeypatch: pytest.MonkeyPatch,
):
    """Guards against Ctrl-C raised inside a finaliser (h5py's objects run weakref
    callbacks often): Python printed "Exception ignored ... KeyboardInterrupt" with a
    traceback, and the command ran on to its end and exited 0. The handler sends the signal
    again instead, to be handled once the finaliser has returned; elsewhere it raises
    KeyboardInterrupt as Python's own does."""
    import os
    import signal
    import sys
    import threading
    import weakref

    import innpar_freia.cli as cli_module

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cli_module.stop_on_sigterm()
        handler = signal.getsignal(signal.SIGINT)
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)
    assert handler is not signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, sys._getframe())

    timers, raised = [], []

    class Timer:
        def __init__(self, delay, function, args):
            timers.append((delay, function, args))

        def start(self) -> None:
            pass

    monkeypatch.setattr(threading, "Timer", Timer)

    class Watched:
        pass

    def callback() -> None:
        try:
            handler(signal.SIGINT, sys._getframe())
        except KeyboardInterrupt:
            raised.append(True)

    watched = Watched()
    weakref.finalize(watched, callback)
    del watched  # collected at once: weakref.finalize (in weakref.py) runs the callback
    assert raised == [] and timers == [(0.01, os.kill, (os.getpid(), signal.SIGINT))]


# --------------------------------------------------------------------------------------
# Progress lines of innpar train
# --------------------------------------------------------------------------------------


def test_training_progress_lines(capsys: pytest.CaptureFixture):
    """Guards against the progress lines of `innpar train` losing a part: the resumed
    epoch in the header, the validation MAEs of an epoch line; and against --quiet hiding
    a warning (it is shown with --quiet and --json, on stderr)."""
    from innpar_freia.cli.common import ConsoleCallbacks

    info = {
        "epochs": 3, "split": {"windows": {"train": 10, "val": 4, "test": 2}},
        "resumed_at": 2, "n_params": 12345, "device": "cpu", "world_size": 1,
        "run_dir": "runs/x",
    }  # fmt: skip
    epoch = {
        "epoch": 3, "train_loss": 0.123456, "val_mae": 7.891, "val_sbp_mae": 9.87,
        "val_dbp_mae": 5.43, "val_map_mae": 6.04, "best_epoch": 2, "epoch_seconds": 1.26,
        "windows_per_second": 812.4,
    }  # fmt: skip
    loud = ConsoleCallbacks()
    loud.on_start(info)
    loud.on_epoch(epoch)
    loud.on_epoch({k: v for k, v in epoch.items() if not k.startswith("val_")})
    loud.on_message("lr 1e-3")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "training 12,345 parameters on cpu (x1); train 10, val 4, test 2 windows, "
        "resuming after epoch 2",
        "run directory: runs/x",
        "epoch    3/3  loss 0.12346  val MAE 7.89 mmHg (SBP 9.9, DBP 5.4, MAP 6.0)  best 2  "
        "1.3 s  812 win/s",
        "epoch    3/3  loss 0.12346  best 2  1.3 s  812 win/s",
        "lr 1e-3",
    ]
    loud.on_start({**info, "resumed_at": 0})
    assert capsys.readouterr().err.splitlines()[0] == (
        "training 12,345 parameters on cpu (x1); train 10, val 4, test 2 windows"
    )
    quiet = ConsoleCallbacks(quiet=True)
    quiet.on_start(info)
    quiet.on_epoch(epoch)
    quiet.on_message("lr 1e-3")
    quiet.on_message("warning: amp on cpu")
    assert capsys.readouterr().err == "warning: amp on cpu\n"


# --------------------------------------------------------------------------------------
# Option bounds
# --------------------------------------------------------------------------------------

# (command, option, [value below, value above], the range --help states). Every value is
# refused by click before any file is read; should one be let through, the command stops
# at once on the existing --out (or unreadable input) rather than doing the work.
BOUNDS = [
    ("synth", "--subjects", ["0", "100001"], "1<=x<=100000"),
    ("synth", "--minutes", ["0.09", "1441"], "0.1<=x<=1440."),
    ("synth", "--fs", ["15.9", "10001"], "16<=x<=10000."),
    ("synth", "--window-seconds", ["0.4", "61"], "0.5<=x<=60."),
    ("synth", "--folds", ["-1", "101"], "0<=x<=100."),
    ("import", "--fs", ["15", "100001"], "16<=x<=100000."),
    ("import", "--input-fs", ["0.5", "100001"], "1<=x<=100000."),
    ("import", "--window-seconds", ["0.4", "601"], "0.5<=x<=600."),
    ("import", "--max-lag", ["0.05", "11"], "0.1<=x<=10."),
    ("split", "--folds", ["2", "1001"], "3<=x<=1000."),
    ("check", "--threshold", ["0.49", "1.0"], "0.5<=x<1.0."),  # 1.0: every pair is >= 1
    ("check", "--signature-points", ["7", "4097"], "8<=x<=4096."),
    ("reconstruct", "--overlap", ["-0.1", "0.95"], "0.0<=x<=0.9."),
    ("reconstruct", "--ppg-delay", ["-0.1", "5.1"], "0.0<=x<=5.0."),
    ("reconstruct", "--calibration-seconds", ["0.9", "3601"], "1.0<=x<=3600.0."),
    ("train", "--batch-size", ["0"], "x>=1."),
    ("train", "--num-workers", ["-1"], "x>=0."),
    ("train", "--seed", ["-1"], "x>=0."),
    ("train", "--val-fold", ["-2"], "x>=-1."),
    ("train", "--test-fold", ["-1"], "x>=0."),
    ("eval", "--test-fold", ["-1"], "x>=0."),
    ("check-model", "--seed", ["-1"], "x>=0."),
]


@pytest.mark.parametrize(("command", "option", "values", "bounds"), BOUNDS)
def test_option_bounds_are_the_documented_ones(junk, tmp_path, command, option, values, bounds):
    """Guards against a bound of an option moving (a range's end, or an open end made
    closed): each value just outside the range --help states is refused with it."""
    prefix = {
        "synth": ["data", "synth", "--out", junk],
        "import": ["data", "import", "csv", junk, "--out", junk],
        "split": ["data", "split", junk],
        "check": ["data", "check", junk],
        "reconstruct": ["reconstruct", "--checkpoint", junk, junk, "--out", tmp_path / "o.csv"],
        "train": ["train", "--data", junk],
        "eval": ["eval", "--checkpoint", junk, "--data", junk],
        "check-model": ["check"],
    }[command]
    for value in values:
        r = run(*prefix, option, value)
        usage_error(r, f"Invalid value for '{option}': ", f" is not in the range {bounds}")
    assert list(tmp_path.iterdir()) == [junk]


# --------------------------------------------------------------------------------------
# Bugs found by the audit
# --------------------------------------------------------------------------------------


def test_a_file_option_ending_in_a_slash_is_refused_not_written_under_the_folder_s_name(
    tiny_run: Path, synth_file: Path, tmp_path: Path
):
    """`innpar eval --save-predictions preds/` wrote an HDF5 file named 'preds' (no
    suffix), and `innpar reconstruct --out abp/` wrote abp.csv, abp.beats.csv and
    abp.summary.json beside the folder the user named: the trailing slash was dropped,
    as `innpar data synth/import --out` already refuse it. Now a usage error before any
    work, and nothing written."""
    ckpt = tiny_run / "checkpoints" / "best.pt"
    src = tmp_path / "in.csv"
    src.write_text(
        "t,PPG\n" + "".join(f"{i / 100:.2f},{np.sin(i / 10):.4f}\n" for i in range(1500))
    )
    out = tmp_path / "out"
    out.mkdir()
    cases = [
        (["eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out / "ev"],
         "--save-predictions", "preds.h5"),
        (["reconstruct", "--checkpoint", ckpt, src], "--out", "abp.csv"),
        (["reconstruct", "--checkpoint", ckpt, src, "--out", out / "abp.csv"], "--plot", "abp.png"),
    ]  # fmt: skip
    for args, option, example in cases:
        named = f"{out / 'x'}/"
        r = run(*args, option, named)
        usage_error(r, f"Invalid value for '{option}': '{named}' names a folder; give a file "
                    f"name such as {example}")  # fmt: skip
        assert list(out.iterdir()) == [], (option, sorted(out.iterdir()))


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "DATA", "--preset", "tiny", "--epochs", "1", "--out", ""],
        ["eval", "--checkpoint", "CKPT", "--data", "DATA", "--out", " "],
        ["data", "synth", "--out", ""],
        ["plot", "training", "RUN", "--out", ""],
        ["data", "info", ""],
    ],
    ids=["train", "eval", "synth", "plot", "an input"],
)
def test_an_empty_path_is_refused_before_any_work(
    args, tiny_run: Path, synth_file: Path, tmp_path: Path, monkeypatch
):
    """``--out "$RUN"`` with the variable unset: click made "" the current folder, and
    `innpar train` trained into it, `innpar eval` wrote its report there. Guards against
    taking an empty (or blank) path for any folder or file."""
    where = {
        "DATA": str(synth_file),
        "CKPT": str(tiny_run / "checkpoints" / "best.pt"),
        "RUN": str(tiny_run),
    }
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    r = run(*[where.get(a, a) for a in args])
    assert r.exit_code == 2 and "an empty path (an unset shell variable?)" in r.output
    assert list(here.iterdir()) == []


def test_a_dry_run_checks_that_out_can_be_written(synth_file: Path, tmp_path: Path, monkeypatch):
    """The README says --dry-run checks --out; a read-only one passed (exit 0) and the run
    itself failed on it. Guards against that. Root may write anywhere, so os.access stands
    in for the read-only folder."""
    import os

    import innpar_freia.outputs as outputs

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(outputs.os, "access", lambda p, m: Path(p) != locked and real(p, m))
    args = ["train", "--data", synth_file, "--preset", "tiny", "--dry-run"]
    r = run(*args, "--out", locked / "run")
    assert r.exit_code == 1 and f"cannot write {locked / 'run' / 'config.json'}: " in r.output
    r = run(*args, "--out", tmp_path / "free" / "run")
    assert r.exit_code == 0 and not (tmp_path / "free").exists()


def test_eval_says_what_the_data_cannot_give_before_what_out_holds(
    tiny_run: Path, synth_file: Path, tmp_path: Path
):
    """Guards against `innpar eval --test-fold 99` over an earlier report saying only
    "already holds a report; pass --force": the user added --force and only then heard that
    the file has no fold 99."""
    ckpt = tiny_run / "checkpoints" / "best.pt"
    args = ["eval", "--checkpoint", ckpt, "--data", synth_file, "--out", tmp_path / "ev"]
    assert run(*args, "--no-figures").exit_code == 0
    r = run(*args, "--no-figures", "--test-fold", "99")
    assert r.exit_code == 1 and "test fold 99 is not in" in r.output
    assert "already holds a report" not in r.output
