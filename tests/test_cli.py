"""The command line as a person uses it: exit codes, messages, JSON, no tracebacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import KILLED_RUN_CONFIG, assert_clean_failure, dead_aside

from innpar_freia.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = run(
        "train",
        "--data",
        synth_file,
        "--preset",
        "tiny",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        run_dir,
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["epochs_completed"] == 2
    return Path(summary["best_checkpoint"])


def test_check_paper_preset_json() -> None:
    result = run("check", "--preset", "paper", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n_params"] == 372_340
    assert out["roundtrip_max_abs_float32"] <= 1e-5
    assert out["roundtrip_max_abs_float64"] <= 1e-10
    assert out["logdet_max_abs_error"] <= 1e-8
    assert out["passed"] is True


def test_check_trained_checkpoint_on_real_windows(trained: Path, synth_file: Path) -> None:
    result = run("check", "--checkpoint", trained, "--data", synth_file)
    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.stdout
    assert result.stdout.count("PASS") == 6


def test_check_builds_a_preset_for_data_as_train_does(tmp_path: Path, tiny_run: Path) -> None:
    """``check --preset tiny --data`` on windows of 1250 samples at 250 Hz said "the model
    takes 625", though ``train --preset tiny`` on that file builds the preset at 250 Hz and
    1250 samples: the model a user was about to train could not be checked. A checkpoint
    takes only windows of its own length and rate."""
    from innpar_freia.data.synthetic import synthesize_dataset

    data = synthesize_dataset(tmp_path / "r250.h5", subjects=4, minutes=1, fs=250.0, seed=1)
    result = run("check", "--preset", "tiny", "--data", data, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["passed"] is True and out["window_length"] == 1250 and out["inputs"] == str(data)
    assert out["model"] == f"preset tiny at 250 Hz, 1250 samples, as train builds it for {data}"
    dry = run("train", "--preset", "tiny", "--data", data, "--dry-run")
    assert dry.exit_code == 0, dry.output
    model = json.loads(dry.stdout)["model"]
    assert (model["fs"], model["window_length"]) == (250.0, 1250)
    ckpt, nothing = tiny_run / "checkpoints" / "best.pt", tmp_path / "nothing"
    assert_clean_failure(
        run("check", "--checkpoint", ckpt, "--data", data),
        nothing,
        f"{data} has windows of 1250 samples at 250 Hz, but the model takes 625 samples at 125 Hz",
    )
    # The checkpoint's length at another rate is not its windows either (was checked).
    short = synthesize_dataset(
        tmp_path / "s.h5", subjects=4, minutes=1, fs=250.0, window_seconds=2.5, seed=1
    )
    assert_clean_failure(
        run("check", "--checkpoint", ckpt, "--data", short),
        nothing,
        "has windows of 625 samples at 250 Hz, but the model takes 625 samples at 125 Hz",
    )


def test_data_synth_and_info(tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    result = run(
        "data", "synth", "--out", out, "--subjects", "4", "--minutes", "0.5", "--fs", "100"
    )
    assert result.exit_code == 0, result.output
    info = json.loads(run("data", "info", out, "--json").stdout)
    assert info["fs"] == 100 and info["window_length"] == 500 and info["n_subjects"] == 4
    again = run("data", "synth", "--out", out)
    assert again.exit_code == 1 and "already exists" in again.output
    assert "Traceback" not in again.output


def test_eval_reports_the_protocol(trained: Path, synth_file: Path, tmp_path: Path) -> None:
    result = run(
        "eval", "--checkpoint", trained, "--data", synth_file, "--json", "--out", tmp_path / "ev"
    )
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    free = m["calibration_free"]
    for key in ("sbp", "dbp", "map"):
        assert {"mae", "me", "sd", "bhs_grade", "aami_pass", "ieee_grade"} <= set(free[key])
    assert free["waveform"]["mae"] > 0 and "naive" in m["baselines"]
    assert m["calibrated"]["n_windows"] == free["n_windows"] - free["n_subjects"]
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["split"] == "test"
    text = run("eval", "--checkpoint", trained, "--data", synth_file).stdout
    assert "calibration-free" in text and "carry-forward" in text


def test_train_dry_run_prints_resolved_config(synth_file: Path, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "tiny"\n[train]\nlr = 0.003\n')
    result = run("train", "--data", synth_file, "--config", toml, "--epochs", "4", "--dry-run")
    assert result.exit_code == 0
    cfg = json.loads(result.stdout)
    assert cfg["preset"] == "tiny" and cfg["train"]["lr"] == 0.003 and cfg["train"]["epochs"] == 4
    # Nothing is written; with no preset named, the recipe chosen on the real data's
    # validation folds is trained, not the release's.
    result = run("train", "--data", synth_file, "--out", tmp_path / "r", "--dry-run")
    assert result.exit_code == 0 and not (tmp_path / "r").exists()
    cfg = json.loads(result.stdout)
    assert cfg["preset"] == "innpar-plus-pair3"
    assert cfg["train"]["lr"] == 1e-3 and cfg["train"]["lr_schedule"] == "cosine"
    assert cfg["train"]["grad_weight"] == 0.25 and cfg["train"]["epochs"] == 40
    assert cfg["train"]["pair_weight"] == 3.0
    assert cfg["train"]["pair_calibration"] == "offset-scale"
    assert cfg["model"] == json.loads(run("presets", "--json").stdout)["paper"]["model"]


def test_dry_run_shows_the_run_the_data_gives_and_refuses_what_a_run_would(tmp_path: Path):
    """It printed the configuration's default 125 Hz and 625 samples for 250 Hz data, and
    exited 0 for a data file or test fold that a real run refuses at once."""
    from innpar_freia.data.synthetic import synthesize_dataset

    fast = synthesize_dataset(tmp_path / "250.h5", subjects=6, minutes=0.5, fs=250.0, folds=3)
    result = run("train", "--data", fast, "--preset", "tiny", "--test-fold", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.stdout)
    assert (cfg["model"]["fs"], cfg["model"]["window_length"]) == (250.0, 1250)
    assert cfg["split"]["test_fold"] == 1 and cfg["split"]["windows"]["train"] > 0
    text = tmp_path / "text.h5"
    text.write_text("not HDF5")
    (tmp_path / "taken" / "checkpoints").mkdir(parents=True)
    (tmp_path / "taken" / "checkpoints" / "last.pt").write_bytes(b"x")
    (tmp_path / "taken" / "config.json").write_text(KILLED_RUN_CONFIG)
    for args, message in (
        (("--data", text), "is not a readable HDF5 file"),
        (("--data", fast, "--test-fold", "9"), "fold"),
        (("--data", fast, "--out", tmp_path / "taken"), "already holds a run"),
    ):
        result = run("train", *args, "--preset", "tiny", "--dry-run")
        assert (
            result.exit_code == 1 and message in result.output and "Traceback" not in result.output
        )


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--preset", "huge"], 2, "'huge' is not one of"),
        (["--epochs", "0"], 2, "0 is not in the range x>=1"),
        (["--lr", "-1"], 2, "-1.0 is not in the range 0<x<=1000"),
        (["--lr", "inf"], 2, "inf is not in the range 0<x<=1000"),  # an open end let it through
        (["--lr", "nan"], 2, "'nan' is not a finite number"),
        (["--resume"], 2, "--resume needs --out RUN_DIR"),
    ],
)
def test_train_bad_options(synth_file: Path, args, code, needle) -> None:
    result = run("train", "--data", synth_file, *args)
    assert result.exit_code == code
    assert needle in result.output and "Traceback" not in result.output


def test_train_user_errors_are_one_message(synth_file: Path, tmp_path: Path, trained: Path):
    toml = tmp_path / "bad.toml"
    toml.write_text("[model]\nkernel_size = 4\n")
    result = run("train", "--data", synth_file, "--config", toml, "--out", tmp_path / "r")
    assert result.exit_code == 1
    assert "Error: kernel_size must be odd" in result.output
    assert not (tmp_path / "r").exists()

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as fh:
        fh["abp"] = np.zeros((2, 5))
    result = run("train", "--data", other, "--out", tmp_path / "r2")
    assert result.exit_code == 1 and "is not an innpar-freia window file" in result.output

    run_dir = trained.parent.parent
    result = run("train", "--data", synth_file, "--preset", "tiny", "--out", run_dir)
    assert result.exit_code == 1 and "already holds a run" in result.output


def test_eval_of_incompatible_or_corrupt_checkpoint(trained: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.h5"
    result = run(
        "data", "synth", "--out", other, "--subjects", "3", "--minutes", "0.5", "--fs", "100"
    )
    assert result.exit_code == 0
    result = run("eval", "--checkpoint", trained, "--data", other, "--out", tmp_path / "e")
    assert result.exit_code == 1
    assert "was trained on 625 samples at 125 Hz" in result.output
    corrupt = tmp_path / "c.pt"
    corrupt.write_bytes(trained.read_bytes()[:1000])
    result = run("eval", "--checkpoint", corrupt, "--data", other, "--out", tmp_path / "e")
    assert result.exit_code == 1 and "not a readable innpar-freia checkpoint" in result.output


def test_presets_and_help() -> None:
    result = run("presets")
    assert result.exit_code == 0 and "372,340" in result.stdout
    marked = [line.split()[0] for line in result.stdout.splitlines() if "[default" in line]
    assert marked == ["innpar-plus-pair3"]  # the one `innpar train` uses without --preset
    for cmd in (["--help"], ["train", "--help"], ["eval", "--help"], ["data", "synth", "--help"]):
        assert run(*cmd).exit_code == 0


def test_every_command_help_shows_examples() -> None:
    """The README promises `--help` with examples on every command; each example names the
    command it documents (so a copied block cannot pass for another command's)."""
    import click

    def leaves(group: click.Group, path: list[str]):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from leaves(command, [*path, name])
            else:
                yield [*path, name]

    commands = list(leaves(cli, []))
    assert len(commands) >= 15  # train, eval, reconstruct, check, presets, demo, data x5, plot x5
    for path in commands:
        result = run(*path, "--help")
        assert result.exit_code == 0, path
        examples = re.split(r"\n  Examples?:\n", result.output, maxsplit=1)
        assert len(examples) == 2, f"innpar {' '.join(path)} --help has no examples"
        assert f"innpar {' '.join(path)}" in examples[1].split("\nOptions:")[0], path


def test_help_examples_that_name_a_file_of_the_repository_can_take_it() -> None:
    """``innpar train --help`` showed ``--config experiments/configs/smoke.toml``, a config
    of experiments/run.py, which innpar train refuses (unknown top-level settings). An
    example naming a TOML that exists in the repository must name one its command loads."""
    from innpar_freia.config import load_run_config

    root = Path(__file__).resolve().parents[1]
    help_text = run("train", "--help").output + run("check", "--help").output
    named = re.findall(r"--config (\S+\.toml)", help_text)
    assert named, "no --config example to check"
    for name in named:
        if (root / name).is_file():
            load_run_config(config_file=root / name)


def test_demo_end_to_end(tmp_path: Path, captured) -> None:
    out = tmp_path / "demo"
    result = run("demo", "--out", out, "--epochs", "2")
    assert result.exit_code == 0, result.output
    # Its figure had no title: which model, windows and protocol it draws are said as
    # innpar eval says them.
    from innpar_freia.checkpoint import load_checkpoint

    epoch = load_checkpoint(out / "run/checkpoints/best.pt").epoch
    assert captured[-1]._suptitle.get_text() == (
        f"run/best (epoch {epoch}), test split: calibration-free, first 4 windows in file order"
    )
    for name in (
        "data.h5",
        "run/checkpoints/best.pt",
        "eval/metrics.json",
        "eval/reconstructions.png",
    ):
        assert (out / name).is_file(), name
    assert "figure:" in result.stdout and "innpar demo: synthetic data" in result.output
    r = run("demo", "--out", out, "--epochs", "1")
    # One message, not the demo's opening line and then its refusal.
    assert r.exit_code == 1 and r.output.startswith("Error:") and "is not empty" in r.output
    # --force replaces a demo, and only a demo; a failure gives the old one back.
    best = (out / "run/checkpoints/best.pt").read_bytes()
    r = run("demo", "--out", out, "--epochs", "0", "--force")
    assert r.exit_code == 2 and (out / "run/checkpoints/best.pt").read_bytes() == best
    (out / "notes.txt").write_text("mine")
    r = run("demo", "--out", out, "--epochs", "1", "--force")
    assert r.exit_code == 1 and "holds more than a demo (notes.txt)" in r.output
    assert (out / "notes.txt").read_text() == "mine" and (out / "data.h5").is_file()
    (out / "notes.txt").unlink()
    import innpar_freia.demo as demo_module

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo_module, "evaluate", fail)  # after the new data and run are made
        with pytest.raises(KeyboardInterrupt):
            demo_module.run_demo(out, epochs=1, force=True)
    assert (out / "run/checkpoints/best.pt").read_bytes() == best
    assert sorted(p.name for p in out.iterdir()) == ["data.h5", "eval", "run"]
    # Killed outright (kill -9) mid-replacement: the next demo command puts the old back.
    aside = dead_aside(out)
    dead = aside.name.split(".")[-2]
    for name in ("data.h5", "eval", "run"):
        (out / name).rename(aside / name)
    (out / f".data.h5.{dead}.tmp").write_bytes(b"half")
    r = run("demo", "--out", out, "--epochs", "1")
    assert r.exit_code == 1 and "pass --force to replace the demo" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["data.h5", "eval", "run"]
    assert (out / "run/checkpoints/best.pt").read_bytes() == best


@pytest.mark.parametrize("made", [False, True])
def test_a_new_demo_stopped_halfway_leaves_nothing(tmp_path: Path, made: bool) -> None:
    """Ctrl-C during a new demo left data.h5 and half a run, and the next `innpar demo`
    refused the folder as "not empty" without a hint. Guards against that: the demo's items
    go, the folder too if the demo made it, and the same command starts again."""
    import innpar_freia.demo as demo_module

    out = tmp_path / "demo"
    if made:
        out.mkdir()  # the user's empty folder stays

    def interrupted(cfg, data, run_dir, callbacks=None):
        (Path(run_dir) / "checkpoints").mkdir(parents=True)
        (Path(run_dir) / "config.json").write_text(KILLED_RUN_CONFIG)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo_module, "train", interrupted)
        with pytest.raises(KeyboardInterrupt):
            demo_module.run_demo(out, epochs=1)
    assert (list(out.iterdir()) == []) if made else not out.exists()


@pytest.mark.parametrize("native", [False, True])
def test_train_warns_when_bf16_would_be_emulated(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """bf16 autocast on a CPU without AVX512-BF16/AMX runs 5-7x slower than float32: the
    user is told, even with --quiet/--json (on stderr), and the run still does what its
    configuration says."""
    import innpar_freia.train as train_module

    monkeypatch.setattr(train_module, "native_bf16", lambda device: native)
    config = tmp_path / "amp.toml"
    config.write_text('preset = "tiny"\n[train]\namp = true\nepochs = 1\n')
    result = run(
        "train", "--data", synth_file, "--config", config, "--device", "cpu",
        "--out", tmp_path / "run", "--quiet", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs_completed"] == 1
    warned = "warning: amp (bf16 autocast) on cpu, which has no native bf16" in result.stderr
    assert warned is not native
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["train"]["amp"] is True


def test_the_readme_python_snippet_runs_as_written(
    tiny_run: Path, synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """It used a ppg_windows it never defined (NameError when pasted)."""
    import re
    import shutil

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = re.search(r"### Python API\n\n```python\n(.*?)```", readme, re.S).group(1)
    shutil.copytree(tiny_run, tmp_path / "runs" / "a")
    shutil.copy(synth_file, tmp_path / "data.h5")
    from tests.helpers import pulse_recording, write_csv

    ppg, _ = pulse_recording(30, seed=0)
    seconds = np.arange(ppg.size) / 125.0
    write_csv(tmp_path / "finger.csv", {"t": seconds, "PPG": ppg})
    (tmp_path / "recordings").mkdir()
    write_csv(tmp_path / "recordings" / "r1.csv", {"t": seconds, "PPG": ppg})
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["abp_mmhg"].shape == scope["ppg_windows"].shape == scope["ppg_z"].shape
    cal = scope["summary"]["calibration"]
    assert (cal["ref_sbp"], cal["ref_dbp"]) == (118, 76) and (tmp_path / "abp.csv").is_file()
    assert scope["index"]["n_reconstructed"] == 1 and (tmp_path / "abp" / "r1.csv").is_file()
    from FrEIA.framework import SequenceINN

    assert isinstance(scope["inn"], SequenceINN)


def test_a_reader_that_goes_away_is_not_an_error(synth_file: Path) -> None:
    """'innpar data check FILE | head' printed "Error: Broken pipe" and exited 1. The
    command now ends quietly, as one killed by SIGPIPE does (141)."""
    import subprocess
    import sys

    for args in (["presets"], ["data", "check", str(synth_file)]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "innpar_freia", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.close()  # before the command writes anything
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141, err
        assert err == ""


def test_runs_without_out_get_a_folder_each(synth_file: Path, tmp_path: Path, monkeypatch):
    """Two trainings started in the same second without --out chose the same numbered
    folder and wrote into it together: one run was lost."""
    from innpar_freia.train import claim_run_dir

    monkeypatch.chdir(tmp_path)
    first, made = claim_run_dir("runs", "tiny")
    second, _ = claim_run_dir("runs", "tiny")
    assert (first.name, second.name) == ("00000-tiny", "00001-tiny")
    assert first.is_dir() and second.is_dir() and made == [first, Path("runs")]
    # A run that fails before writing anything leaves no numbered folder behind.
    for folder in (first, second, Path("runs")):
        folder.rmdir()
    args = ["train", "--data", str(synth_file), "--preset", "tiny", "--epochs", "1"]
    result = CliRunner().invoke(cli, [*args, "--test-fold", "9"])
    assert result.exit_code != 0 and not Path("runs").exists(), result.output
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and Path("runs/00000-tiny/checkpoints/last.pt").is_file()
    # Under torchrun every process would number its own folder.
    monkeypatch.setenv("LOCAL_RANK", "0")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "under torchrun, give the run directory with --out" in (
        result.output
    )
    assert sorted(p.name for p in Path("runs").iterdir()) == ["00000-tiny"]


def test_dry_run_refuses_a_device_the_run_would_refuse(synth_file: Path, monkeypatch) -> None:
    """--device cuda --dry-run on a machine without CUDA printed the configuration and exit
    code 0; the run itself then failed. (CUDA is hidden, so this runs on a GPU machine too.)"""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["train", "--data", str(synth_file), "--preset", "tiny", "--dry-run"]
    result = CliRunner().invoke(cli, [*args, "--device", "cuda"])
    assert result.exit_code == 1 and "no CUDA device is available" in result.output


def test_eval_warns_when_test_windows_chose_the_checkpoint(synth_file: Path, tmp_path: Path):
    """--test-fold of the run's validation fold scored the windows best.pt was chosen on as
    a test, without a word; the report did not say which fold it scored."""
    base = ["--data", str(synth_file)]
    args = ["train", *base, "--preset", "tiny", "--epochs", "2", "--test-fold", "0"]
    assert CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "r")]).exit_code == 0
    best = str(tmp_path / "r" / "checkpoints" / "best.pt")
    result = CliRunner().invoke(
        cli, ["eval", "--checkpoint", best, *base, "--test-fold", "1", "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 0, result.output
    assert "validation windows this checkpoint's run chose its epoch on" in result.output
    report = (tmp_path / "e" / "report.md").read_text()
    assert "split **test** (fold 1)" in report and "**Warning:**" in report
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["fold"] == 1 and "score the run's test fold (0)" in metrics["warning"]
    result = CliRunner().invoke(
        cli, ["eval", "--checkpoint", best, *base, "--out", str(tmp_path / "f")]
    )
    assert result.exit_code == 0 and "warning" not in result.output
    assert "split **test** (fold 0)" in (tmp_path / "f" / "report.md").read_text()


def test_sigterm_inside_a_finaliser_waits_until_it_has_returned():
    """SIGTERM arriving while a weakref callback or __del__ ran (h5py's objects run them
    often) raised SystemExit there, which Python printed as "Exception ignored" with a
    traceback, and the command ran on to its end."""
    import sys

    from innpar_freia.cli import _in_finaliser

    seen = []

    class Finalised:
        def __del__(self):
            seen.append(_in_finaliser(sys._getframe()))

    Finalised()  # collected at once: its __del__ runs
    assert seen == [True] and not _in_finaliser(sys._getframe())


def test_running_out_of_memory_is_one_message(synth_file: Path, monkeypatch) -> None:
    """numpy's MemoryError ('Unable to allocate 1.40 GiB for an array with shape (301140,
    625)', eval of 300k windows under an 8 GB limit) came with 40 lines of traceback."""
    from innpar_freia.data import store

    def too_large(*args, **kwargs):
        raise MemoryError(
            "Unable to allocate 1.40 GiB for an array with shape (301140, 625) and data "
            "type float64"
        )

    monkeypatch.setattr(store, "read_info", too_large)
    result = CliRunner().invoke(cli, ["data", "info", str(synth_file)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.splitlines() == [
        "Error: out of memory: Unable to allocate 1.40 GiB for an array with shape (301140, "
        "625) and data type float64; the input is too large to be held at once here: give "
        "the command less of it (fewer windows or a shorter recording), or run it on a "
        "machine with more memory"
    ]
