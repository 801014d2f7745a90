"""The experiment runner as a user meets it: an edited protocol never shows
numbers scored the old way under its new description, and every experiment file given to
``experiments/run.py`` is checked before the first one trains."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import git_in

from innpar_freia.errors import ConfigError
from innpar_freia.evaluate import evaluate
from innpar_freia.experiments import load_experiment, run_experiment

ROOT = Path(__file__).resolve().parents[1]

# Two variants, one run each: seconds on a CPU.
EXPERIMENT = """
name = "mini"
[data]
file = "{data}"
[protocol]
test_folds = [0]
seeds = [1]
evaluate = ["test"]
checkpoints = ["best"]
calibration = "offset-scale"
[base]
preset = "tiny"
train = {{ epochs = 1, batch_size = 32 }}
[[variants]]
name = "a"
[[variants]]
name = "b"
train = {{ grad_weight = 0.5 }}
"""


def _script():
    spec = importlib.util.spec_from_file_location("run_script", ROOT / "experiments" / "run.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_an_edited_calibration_is_not_shown_with_the_old_scores(synth_file: Path, tmp_path: Path):
    """The calibration is a protocol setting, not a recipe: after it was edited, the
    finished runs' scores (made with the old one) were tabulated under the new one's name,
    their numbers unchanged."""
    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file))
    out = tmp_path / "out"
    old = run_experiment(cfg, out, device="cpu", log=lambda s: None)
    old_a = old["variants"]["a"]["runs"][0]["evaluations"]["test/best"]["cal_wave_mae"]
    # b's run folder is gone (a fresh checkout): its row lives on in results.json only,
    # here as a table written before rows said how they were scored.
    shutil.rmtree(out / "mini" / "runs" / "b")
    table = out / "mini" / "results.json"
    saved = json.loads(table.read_text())
    for run in saved["variants"]["b"]["runs"]:
        run.pop("scoring", None)
    table.write_text(json.dumps(saved))

    cfg.write_text(EXPERIMENT.format(data=synth_file).replace('"offset-scale"', '"offset"'))
    logs: list[str] = []
    new = run_experiment(cfg, out, device="cpu", log=logs.append, only=["a"])
    run = new["variants"]["a"]["runs"][0]
    best = Path(run["run_dir"]) / "checkpoints" / "best.pt"
    metrics, _ = evaluate(best, synth_file, "test", calibration="offset")
    assert run["evaluations"]["test/best"]["cal_wave_mae"] == pytest.approx(
        metrics["calibrated"]["waveform"]["mae"]
    )
    assert run["evaluations"]["test/best"]["cal_wave_mae"] != pytest.approx(old_a)
    assert any("calibration 'offset-scale', now 'offset': scoring it again" in s for s in logs)
    # b's row was scored with offset-scale and cannot be scored again: left out, said so.
    assert not new["variants"]["b"]["aggregate"].get("test/best")
    assert any("b fold 0 seed 1" in s and "left out" in s for s in logs)
    md = (out / "mini" / "results.md").read_text()
    assert "calibrated = offset from" in md and "| b |" not in md
    # Scored again once: the record now says how it was scored, and a rerun keeps it.
    logs.clear()
    again = run_experiment(cfg, out, device="cpu", log=logs.append, only=["a"])
    assert again["variants"]["a"]["runs"][0]["evaluations"] == run["evaluations"]
    assert not any("scor" in s for s in logs)


def test_an_edited_extra_eval_is_scored_again(synth_file: Path, tmp_path: Path):
    """An [[extra_eval]] given another file or split kept the old scores under the same
    table name; a run pruned to its records (no weights to score again) leaves them out of
    the table instead of stopping the runner."""
    from innpar_freia.data.dataset import plan_splits
    from innpar_freia.data.store import read_info
    from innpar_freia.data.synthetic import synthesize_dataset

    other = synthesize_dataset(tmp_path / "other.h5", subjects=5, minutes=1.0, seed=11)
    bigger = synthesize_dataset(tmp_path / "bigger.h5", subjects=6, minutes=1.0, seed=12)
    cfg = tmp_path / "mini.toml"
    extra = '[[extra_eval]]\nname = "other"\nfile = "{file}"\nsplit = "{split}"\n'
    text = EXPERIMENT.format(data=synth_file)
    out = tmp_path / "out"

    def windows(file: Path, split: str) -> int:
        cfg.write_text(text + extra.format(file=file, split=split))
        results = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
        return results["variants"]["a"]["runs"][0]["evaluations"]["other/best"]["n_windows"]

    assert windows(other, "all") == read_info(other).n_windows
    assert windows(bigger, "all") == read_info(bigger).n_windows != read_info(other).n_windows
    n_test = len(plan_splits(read_info(bigger), 0, None).test)
    assert windows(bigger, "test") == n_test < read_info(bigger).n_windows

    shutil.rmtree(out / "mini" / "runs" / "a" / "fold0-seed1" / "checkpoints")
    cfg.write_text(text + extra.format(file=bigger, split="all"))
    logs: list[str] = []
    results = run_experiment(cfg, out, device="cpu", log=logs.append, only=["a"])
    assert not results["variants"]["a"]["aggregate"].get("other/best")
    assert results["variants"]["a"]["aggregate"]["test/best"]["wave_mae"]["n"] == 1
    assert any("cannot score other/best" in s and "holds no checkpoints" in s for s in logs)


def test_data_that_is_both_imported_and_synthesised_is_refused(tmp_path: Path):
    """Only ``synth`` made the file; an ``import`` beside it was ignored without a word."""
    cfg = tmp_path / "mini.toml"
    cfg.write_text(
        EXPERIMENT.format(data=tmp_path / "made.h5").replace(
            "[protocol]",
            'import = ["bp-benchmark", "/somewhere"]\nsynth = { subjects = 10 }\n[protocol]',
        )
    )
    with pytest.raises(ConfigError, match="both 'import' and 'synth'; give one"):
        load_experiment(cfg)


def test_every_experiment_file_is_checked_before_the_first_trains(synth_file: Path, tmp_path: Path):
    """``run.py good.toml bad.toml`` trained the whole first experiment (hours, on a real
    config) before saying what was wrong with the second; two files of one experiment name
    wrote one results folder, the second rewriting the first's tables."""
    good = tmp_path / "good.toml"
    good.write_text(EXPERIMENT.format(data=synth_file))
    out = tmp_path / "out"
    cases = {
        "typo": (
            EXPERIMENT.format(data=synth_file)
            .replace('name = "mini"', 'name = "other"')
            .replace('name = "b"', 'name = "b"\ndescripton = "x"'),
            [],
            "variant 'b' has unknown key(s) ['descripton']",
        ),
        "same name": (
            EXPERIMENT.format(data=synth_file).replace('evaluate = ["test"]', 'evaluate = ["val"]'),
            [],
            "are both experiment 'mini', whose results go to",
        ),
        "no such variant": (
            EXPERIMENT.format(data=synth_file)
            .replace('name = "mini"', 'name = "other"')
            .replace('name = "a"', 'name = "c"'),
            ["--only", "a"],
            "variant(s) ['a'] are not in the experiment (it has c, b)",
        ),
    }
    script = _script()
    for case, (text, options, message) in cases.items():
        second = tmp_path / f"{case.replace(' ', '-')}.toml"
        second.write_text(text)
        args = [str(good), str(second), "--out", str(out), "--device", "cpu", *options]
        result = CliRunner().invoke(script.main, args)
        assert result.exit_code == 1, (case, result.output)
        assert message in result.output and "Traceback" not in result.output, case
        assert result.output.count("Error:") == 1, case
        assert not out.exists(), case  # nothing trained, nothing written
    # The same file twice is not refused: its second pass finds every run finished.
    result = CliRunner().invoke(
        script.main, [str(good), str(good), "--out", str(out), "--device", "cpu", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "mini" / "results.md").is_file()


def test_each_run_says_which_commit_trained_it(synth_file: Path, tmp_path: Path):
    """A table names the commit of the runner that wrote it; a run trained earlier, by
    other code (a resumed experiment), was reported under that commit without a word."""
    git = git_in(tmp_path)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = x\n")
    cfg = tmp_path / "experiments" / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file).replace("[0]", "[0, 1]"))
    out = tmp_path / "experiments" / "results"
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    first = git("rev-parse", "--short", "HEAD").strip()
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"], folds=[0])
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = y\n")  # the code changes
    (out / ".gitignore").write_text("*/runs/\n")
    git("add", "-A")
    git("commit", "-q", "-m", "second")
    second = git("rev-parse", "--short", "HEAD").strip()
    results = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    assert results["commit"] == second
    made = {r["test_fold"]: r["commit"] for r in results["variants"]["a"]["runs"]}
    assert made == {0: first, 1: second}
    md = (out / "mini" / "results.md").read_text()
    counts = "; ".join(f"{c} (1)" for c in sorted([first, second]))
    assert f"Runs trained at commit: {counts}." in md


@pytest.mark.parametrize(
    ("name", "text", "what"),
    [
        ("done.json", "", "the record of a finished run"),
        ("done.json", "<<<<<<< HEAD\n", "the record of a finished run"),
        ("config.json", "[1, 2]", "the configuration of run"),
        # Valid JSON of the wrong shape: an AttributeError or TypeError traceback.
        ("done.json", '{"evaluations": 3}', "the record of a finished run"),
        (
            "done.json",
            '{"evaluations": {"test/best": {"wave_mae": "x"}}}',
            "the record of a finished run",
        ),
        ("config.json", '{"model": 3}', "the configuration of run"),
    ],
)
def test_a_damaged_run_file_is_named_and_nothing_trains(
    synth_file: Path, tmp_path: Path, name: str, text: str, what: str
):
    """A run's done.json or config.json that is not a JSON object (an empty file, a merge
    conflict in the versioned record). Guards against the JSON decoder's traceback, which
    named neither the file nor what to do."""
    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file))
    out = tmp_path / "out"
    run_experiment(cfg, out, device="cpu", only=["a"], log=lambda s: None)
    damaged = out / "mini" / "runs" / "a" / "fold0-seed1" / name
    damaged.write_text(text)
    args = [str(cfg), "--out", str(out), "--device", "cpu", "--quiet"]
    result = CliRunner().invoke(_script().main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{what} {damaged} is damaged (" in result.output
    assert "remove the run's folder to train it again" in result.output
    assert not (out / "mini" / "runs" / "b").exists()  # found before b trained


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda row: row.update(evaluations=5), "evaluations"),
        (lambda row: row["evaluations"]["test/best"].update(wave_mae="x"), "wave_mae"),
        (lambda row: row.update(recipe={"model": 3}), "recipe"),
        (lambda row: row.update(commit=["x"]), "commit"),
    ],
)
def test_a_results_table_of_the_wrong_shape_is_named_and_nothing_trains(
    synth_file: Path, tmp_path: Path, edit, message: str
):
    """A row of results.json edited by hand into valid JSON of the wrong shape (evaluations
    that are not a table, a score that is not a number) ended in an AttributeError, or in
    numpy's TypeError when the table was written, after b had trained. a's run folder is
    gone, so the row is all there is of its run: the table is left as it is."""
    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file))
    out = tmp_path / "out"
    run_experiment(cfg, out, device="cpu", only=["a"], log=lambda s: None)
    shutil.rmtree(out / "mini" / "runs")
    table = out / "mini" / "results.json"
    results = json.loads(table.read_text())
    edit(results["variants"]["a"]["runs"][0])
    table.write_text(json.dumps(results))
    damaged = table.read_text()
    args = [str(cfg), "--out", str(out), "--device", "cpu", "--quiet", "--only", "b"]
    result = CliRunner().invoke(_script().main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"the results table {table} is damaged (" in result.output
    assert message in result.output and result.output.count("Error:") == 1
    assert table.read_text() == damaged
    assert not (out / "mini" / "runs").exists()  # found before anything trained


def test_a_results_folder_that_cannot_be_written_stops_the_runner_before_any_work(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A read-only results folder was found by the first run folder (after the data import)
    or by the table at the very end (after every run had trained), with a PermissionError
    traceback. Guards against checking it late: nothing is made or trained. Root may write
    anywhere, so os.access stands in for the read-only folder."""
    import innpar_freia.outputs as outputs

    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file))
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(outputs.os, "access", lambda p, m: Path(p) != locked and real(p, m))
    args = [str(cfg), "--out", str(locked / "out"), "--device", "cpu", "--quiet"]
    result = CliRunner().invoke(_script().main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot write {locked / 'out' / 'mini' / 'results.json'}: {locked} is not writable" in (
        result.output
    )
    assert list(locked.iterdir()) == []


def test_an_os_error_while_the_runner_works_is_one_message(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A folder made read-only, or a disk filled, while runs train. Guards against the
    PermissionError traceback that ended such a run."""
    script = _script()

    def failing(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out" / "mini" / "x"))

    monkeypatch.setattr(script, "run_experiment", failing)
    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file))
    result = CliRunner().invoke(script.main, [str(cfg), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().endswith(
        f"Error: {cfg}: Permission denied: {tmp_path / 'out' / 'mini' / 'x'}"
    )


def test_an_empty_out_is_refused(synth_file: Path, tmp_path: Path, monkeypatch):
    """``--out "$RESULTS"`` with the variable unset: click made "" the current folder, and
    the results were written there. Guards against that."""
    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = CliRunner().invoke(_script().main, [str(cfg), "--out", ""])
    assert result.exit_code == 2 and "an empty path (an unset shell variable?)" in result.output
    assert list(here.iterdir()) == []


def test_ctrl_c_in_an_analysis_script_is_one_line_and_130(capsys: pytest.CaptureFixture):
    """Guards against Ctrl-C in level_error.py, seed_ensemble.py, ppg_information.py or
    loader_benchmark.py printing a KeyboardInterrupt traceback."""
    from innpar_freia.experiments import script_main

    def main(argv):
        raise KeyboardInterrupt

    assert script_main(main, []) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_the_runner_takes_h_for_help_as_innpar_does() -> None:
    """``experiments/run.py -h`` was a usage error (exit 2) where ``innpar -h`` helps."""
    for flag in ("-h", "--help"):
        result = CliRunner().invoke(_script().main, [flag])
        assert result.exit_code == 0 and "Train and evaluate the experiments" in result.output


def test_a_run_that_diverges_is_reported_and_the_others_still_run(synth_file: Path, tmp_path: Path):
    """A run whose loss became NaN stopped the runner: the variants after it were never
    trained (a rerun stopped at it again), the table left its variant out without a word,
    printed a paired-differences header without rows, and the hint named ``--lr``, an
    option the runner does not have."""
    text = (
        EXPERIMENT.format(data=synth_file)
        .replace('name = "b"\n', 'name = "boom"\n')
        .replace("grad_weight = 0.5", "lr = 1000.0")
        .replace("[protocol]", '[protocol]\nreference = "a"')
        + '[[variants]]\nname = "c"\n'
    )
    cfg = tmp_path / "mini.toml"
    cfg.write_text(text)
    out = tmp_path / "out"
    args = [str(cfg), "--out", str(out), "--device", "cpu", "--quiet"]
    result = CliRunner().invoke(_script().main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "boom fold0-seed1: failed: loss became nan" in result.output
    assert result.output.count("Error:") == 1
    error = result.output.split("Error: ")[1]
    assert error.startswith(f"{cfg}: 1 run failed in training (boom fold0-seed1)")
    assert "running again trains them again" in error and error.count("\n") == 1
    assert "(--lr)" not in result.output and "(the variant's train.lr)" in result.output
    table = out / "mini"
    # The variant after the one that failed was trained and tabulated.
    assert (table / "runs" / "c" / "fold0-seed1" / "done.json").is_file()
    md = (table / "results.md").read_text()
    assert "| c | 1 |" in md and "| a | 1 |" in md
    assert "Not in this table: `boom` (no finished run; 1 failed in training" in md
    failed_section = md.split("## Failed runs")[1]
    assert "- boom fold0-seed1: loss became nan" in failed_section
    assert "(the variant's train.lr)" in failed_section
    saved = json.loads((table / "results.json").read_text())
    assert saved["variants"]["boom"]["runs"] == []
    [failure] = saved["failed"]
    assert (failure["variant"], failure["test_fold"], failure["seed"]) == ("boom", 0, 1)
    assert failure["message"].startswith("loss became nan")
    # Run again: the failed run is tried again (and fails again), the others are kept.
    done = table / "runs" / "a" / "fold0-seed1" / "done.json"
    stamp = done.stat().st_mtime_ns
    result = CliRunner().invoke(_script().main, args)
    assert result.exit_code == 1 and "boom fold0-seed1: training" in result.output
    assert done.stat().st_mtime_ns == stamp
    # Only the reference finished: no paired-differences table without rows.
    result = CliRunner().invoke(
        _script().main, [*args[:2], str(tmp_path / "other"), *args[3:], "--only", "a,boom"]
    )
    assert result.exit_code == 1, result.output
    md = (tmp_path / "other" / "mini" / "results.md").read_text()
    assert "Paired differences against" not in md
    assert "No paired differences against `a`: no other variant has a run" in md
    assert "`c` (no finished run)" in md
