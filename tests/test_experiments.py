"""The experiment runner and the U-Net baseline, end to end on synthetic data."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch
from helpers import git_in

from innpar_freia.checks import run_checks
from innpar_freia.config import resolve_config
from innpar_freia.errors import ConfigError, DataError
from innpar_freia.evaluate import evaluate
from innpar_freia.experiments import load_experiment, run_experiment
from innpar_freia.nn.model import build_model
from innpar_freia.train import train

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENT = """
name = "mini"
description = "test"
[data]
file = "{data}"
[protocol]
test_folds = [0, 1]
seeds = [1, 2]
evaluate = ["val", "test"]
checkpoints = ["best", "last"]
reference = "a"
[base]
preset = "tiny"
train = {{ epochs = 1, batch_size = 32 }}
[[variants]]
name = "a"
[[variants]]
name = "b"
train = {{ grad_weight = 0.5 }}
"""


def one_run(data: Path) -> str:
    """:data:`EXPERIMENT` on ``data`` with one test fold (0) and one seed (1): one run a
    variant."""
    return EXPERIMENT.format(data=data).replace("[0, 1]", "[0]").replace("[1, 2]", "[1]")


def diverging_run(data: Path) -> str:
    """:func:`one_run` with variant b as ``boom``, whose learning rate makes its loss NaN."""
    return (
        one_run(data)
        .replace('name = "b"\n', 'name = "boom"\n')
        .replace("grad_weight = 0.5", "lr = 1000.0")
    )


def test_runner_trains_evaluates_and_tabulates(synth_file: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file))
    results = run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    a = results["variants"]["a"]
    assert len(a["runs"]) == 4  # 2 folds x 2 seeds
    agg = a["aggregate"]["test/best"]
    assert agg["wave_mae"]["n"] == 4 and agg["wave_mae"]["sd"] is not None
    assert {"naive_wave_mae", "linear_wave_mae", "carry_forward_sbp_mae"} <= set(agg)
    md = (tmp_path / "out" / "mini" / "results.md").read_text()
    assert "## val/best" in md and "| a |" in md and "carry-forward baseline" in md
    assert "commit" in md and "hardware" in md
    # Each run records where it trained; the table says so, next to where it was written.
    hardware = {r["hardware"] for v in results["variants"].values() for r in v["runs"]}
    assert hardware == {results["hardware"]}
    assert f"Runs trained on: {results['hardware']} (8)." in md
    assert "Paired differences against `a`" in md
    from innpar_freia.experiments import paired_differences

    diff = paired_differences(results, "test/best", "a")["b"]["wave_mae"]
    runs_a = {(r["test_fold"], r["seed"]): r for r in a["runs"]}
    expected = [
        r["evaluations"]["test/best"]["wave_mae"]
        - runs_a[(r["test_fold"], r["seed"])]["evaluations"]["test/best"]["wave_mae"]
        for r in results["variants"]["b"]["runs"]
    ]
    assert diff["n"] == 4 and diff["mean"] == pytest.approx(sum(expected) / 4)
    assert diff["wins"] == sum(x < 0 for x in expected)
    # results.json carries the same paired tables as the Markdown, per split and reference.
    saved = json.loads((tmp_path / "out" / "mini" / "results.json").read_text())
    assert saved["paired"]["test/best"]["a"]["b"]["wave_mae"] == pytest.approx(diff)
    assert set(saved["paired"]) == {"val/best", "val/last", "test/best", "test/last"}
    # A second invocation skips finished runs and gives the same table.
    done = tmp_path / "out" / "mini" / "runs" / "a" / "fold0-seed1" / "done.json"
    stamp = done.stat().st_mtime_ns
    again = run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    assert done.stat().st_mtime_ns == stamp
    assert json.dumps(again["variants"]["b"]["aggregate"]) == json.dumps(
        results["variants"]["b"]["aggregate"]
    )
    # Several references: one table of paired differences against each, on the same runs.
    cfg.write_text(EXPERIMENT.format(data=synth_file).replace('"a"\n[base]', '["a", "b"]\n[base]'))
    run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    md = (tmp_path / "out" / "mini" / "results.md").read_text()
    against_b = md.split("## val/best")[1].split("Paired differences against `b`")[1]
    assert "Paired differences against `a`" in md and "| a | 4 |" in against_b.split("##")[0]
    assert done.stat().st_mtime_ns == stamp  # tables rewritten, nothing retrained
    cfg.write_text(EXPERIMENT.format(data=synth_file).replace('"a"\n[base]', '"c"\n[base]'))
    with pytest.raises(ConfigError, match=r"reference variant\(s\) \['c'\] are not among"):
        load_experiment(cfg)
    cfg.write_text(EXPERIMENT.format(data=synth_file))
    # --folds picks among the configured test folds; another fold is an error, not a no-op.
    with pytest.raises(ValueError, match=r"test fold\(s\) \[3\] are not in .*\[0, 1\]"):
        run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None, folds=[3])
    with pytest.raises(ValueError, match=r"seed\(s\) \[7\] are not in the experiment's seeds"):
        run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None, seeds=[7])
    # A misspelt --only is an error too, not an empty table.
    with pytest.raises(ValueError, match=r"variant\(s\) \['bb'\] are not in the experiment"):
        run_experiment(cfg, tmp_path / "none", device="cpu", log=lambda s: None, only=["a", "bb"])
    assert not (tmp_path / "none").exists()
    # --seeds picks seeds the way --folds picks folds (e.g. one seed per CPU core).
    one = run_experiment(
        cfg, tmp_path / "one", device="cpu", log=lambda s: None, seeds=[2], folds=[1]
    )
    assert [(r["test_fold"], r["seed"]) for r in one["variants"]["b"]["runs"]] == [(1, 2)]


def test_runner_command_line_rejects_bad_lists(tmp_path: Path) -> None:
    from click.testing import CliRunner

    spec = importlib.util.spec_from_file_location("run_script", ROOT / "experiments" / "run.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=tmp_path / "none.h5"))
    for option in ("--folds", "--seeds"):
        result = CliRunner().invoke(script.main, [str(cfg), option, "1,x"])
        assert result.exit_code == 2 and "expected comma-separated integers" in result.output
        assert option in result.output and "Traceback" not in result.output
    # An empty list (an unset shell variable) meant "all": the whole experiment started.
    for option in ("--folds", "--seeds", "--only"):
        for value in ("", "a,,b"):
            result = CliRunner().invoke(script.main, [str(cfg), option, value])
            assert result.exit_code == 2 and "without empty items" in result.output, option
            assert option in result.output and "Traceback" not in result.output


def test_a_variant_can_reuse_another_experiments_runs(synth_file: Path, tmp_path: Path):
    first = tmp_path / "mini.toml"
    first.write_text(EXPERIMENT.format(data=synth_file))
    run_experiment(first, tmp_path / "out", device="cpu", log=lambda s: None)
    last = tmp_path / "out" / "mini" / "runs" / "a" / "fold1-seed2" / "checkpoints" / "last.pt"
    stamp = last.stat().st_mtime_ns
    second = tmp_path / "final.toml"
    second.write_text(
        EXPERIMENT.format(data=synth_file)
        .replace('name = "mini"', 'name = "final"')
        .replace('evaluate = ["val", "test"]', 'evaluate = ["test", "train"]')
        .replace('name = "a"', 'name = "chosen"\nreuse = "mini/a"')
        .replace('reference = "a"', 'reference = "chosen"')
    )
    logs: list[str] = []
    results = run_experiment(
        second, tmp_path / "out", device="cpu", log=logs.append, only=["chosen"]
    )
    assert last.stat().st_mtime_ns == stamp  # evaluated, not retrained
    assert not any("training" in line for line in logs)
    agg = results["variants"]["chosen"]["aggregate"]
    assert agg["train/best"]["wave_mae"]["n"] == 4 and agg["test/best"]["wave_mae"]["n"] == 4
    # The reused runs also carry the first experiment's validation scores: the second
    # experiment tabulates only the splits it asks for, and the first never shows its
    # runs' new training-split scores.
    assert set(agg) == {"test/best", "test/last", "train/best", "train/last"}
    md = (tmp_path / "out" / "final" / "results.md").read_text()
    assert "## test/best" in md and "## val/best" not in md
    again = run_experiment(first, tmp_path / "out", device="cpu", log=lambda s: None)
    assert set(again["variants"]["a"]["aggregate"]) == {
        "val/best",
        "val/last",
        "test/best",
        "test/last",
    }
    # Nor do the runs' records in either results.json carry the other's scores.
    for name, variant, keys in (
        ("mini", "a", {"val", "test"}),
        ("final", "chosen", {"test", "train"}),
    ):
        saved = json.loads((tmp_path / "out" / name / "results.json").read_text())
        for run in saved["variants"][variant]["runs"]:
            assert {k.split("/")[0] for k in run["evaluations"]} == keys


def test_experiment_files_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[data]\nfile = "f.h5"\n[base]\npreset = "nope"\n')
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_experiment(bad)
    bad.write_text('name = "x"\n[data]\nfile = "f.h5"\n[base]\n[protocol]\nfolds = [1]\n')
    with pytest.raises(ConfigError, match="unknown protocol setting"):
        load_experiment(bad)
    # Protocol values are checked before anything trains: a misspelt checkpoint or
    # calibration used to fail only when the first finished run was scored.
    for setting, message in (
        ('evaluate = ["tset"]', "evaluate must be a list of splits"),
        ('checkpoints = ["bset"]', 'checkpoints must be a list of "best", "last"'),
        ('val_fold = "nxt"', "val_fold must be"),
        ('calibration = "ofset"', "calibration must be one of offset-scale, offset"),
        ('seeds = "1"', "seeds must be a list of distinct integers"),
        ("test_folds = [0, 0]", "test_folds must be a list of distinct integers"),
    ):
        bad.write_text(f'name = "x"\n[data]\nfile = "f.h5"\n[protocol]\n{setting}\n[base]\n')
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_experiment(bad)
    bad.write_text(
        'name = "x"\n[data]\nfile = "f.h5"\n[protocol]\nval_fold = -1\n'
        'checkpoints = ["epoch-0010", "last"]\nevaluate = ["test"]\n[base]\n'
        "train = { keep_checkpoints = [10] }\n"
    )
    assert load_experiment(bad).protocol["checkpoints"] == ["epoch-0010", "last"]
    # What the protocol scores must exist for every run: found after the first run had
    # trained, it could not be fixed (another keep_checkpoints is another recipe).
    for protocol, settings, message in (
        ('checkpoints = ["epoch-0010"]', "epochs = 20", "'epoch-0010': variant 'base' does not"),
        ('checkpoints = ["epoch-0030"]', "epochs = 20, keep_checkpoints = [30]", "trains 20"),
        ("test_folds = [0]\nval_fold = -1", "epochs = 2", '"best" is chosen on the validation'),
        (
            'test_folds = [0]\nval_fold = -1\ncheckpoints = ["last"]\nevaluate = ["val"]',
            "epochs = 2",
            'evaluate "val" needs a validation split',
        ),
    ):
        bad.write_text(
            f'name = "x"\n[data]\nfile = "f.h5"\n[protocol]\n{protocol}\n[base]\n'
            f"train = {{ {settings} }}\n"
        )
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_experiment(bad)
    # Without test folds the file's own splits apply, which may have a validation split.
    bad.write_text('name = "x"\n[data]\nfile = "f.h5"\n[protocol]\nval_fold = -1\n[base]\n')
    assert load_experiment(bad).protocol["checkpoints"] == ["best"]
    # A misspelt key in [base] or [data] would otherwise train the wrong recipe silently;
    # malformed tables are one message each, never a traceback.
    head = 'name = "x"\n[data]\nfile = "f.h5"\n'
    for text, message in (
        (head + "[base]\ntrian = { epochs = 1 }\n", r"unknown base setting\(s\) \['trian'\]"),
        (head + '[base]\n[[variants]]\npreset = "tiny"\n', "every variant needs a 'name'"),
        (head + '[base]\n[[variants]]\nname = "a"\nreuse = "a"\n', "reuse must be"),
        (head + "[base]\ntrain = 3\n", r"train of \[base\] must be a table"),
        (head + 'imprt = ["a", "b"]\n[base]\n', r"unknown data setting\(s\) \['imprt'\]"),
        (head + 'import = "bp-benchmark"\n[base]\n', r"import must be \[FORMAT, SOURCE"),
        (head + "synth = { subject = 3 }\n[base]\n", r"synth must be a table of .*subjects"),
        ('name = "x"\n[data]\nimport = ["a", "b"]\n[base]\n', "needs 'file'"),
        # Names become folders under --out: nothing that leaves it, nothing but a string.
        ('name = 5\n[data]\nfile = "f.h5"\n[base]\n', "name must be a folder name"),
        ('name = "../evil"\n[data]\nfile = "f.h5"\n[base]\n', "got '../evil'"),
        (head + '[base]\n[[variants]]\nname = ".."\n', "variant name must be a folder name"),
        # The settings a file may give, not those the runner sets for every run.
        (head + "[base]\ntrain = { epoch = 3 }\n", r"unknown train setting\(s\): epoch; .*lr,"),
        (head + '[base]\ntrain = { device = "cpu" }\n', "by the runner's --device option"),
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_experiment(bad)
    bad.write_text(head + "[base]\ntrain = { epoch = 3 }\n")
    with pytest.raises(ConfigError) as err:
        load_experiment(bad)
    known = str(err.value).split("known settings are: ")[1].split(", ")
    assert "epochs" in known and not {"seed", "test_fold", "val_fold", "device"} & set(known)


def test_runs_are_scored_on_another_dataset(synth_file: Path, tmp_path: Path) -> None:
    """The paper's BCG setting: every run is also scored on another window file (other
    people), and those scores get their own tables; a bad [[extra_eval]] fails before any
    training, with a message that names it."""
    from innpar_freia.data.store import read_info
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.errors import DataError

    other = synthesize_dataset(tmp_path / "other.h5", subjects=4, minutes=1.0, seed=11)
    one_run = EXPERIMENT.replace("test_folds = [0, 1]", "test_folds = [0]").replace(
        "seeds = [1, 2]", "seeds = [1]"
    )
    extra = '[[extra_eval]]\nname = "other"\nfile = "{other}"\n'
    cfg = tmp_path / "mini.toml"
    cfg.write_text(one_run.format(data=synth_file) + extra.format(other=other))
    results = run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    run = results["variants"]["a"]["runs"][0]
    scored = run["evaluations"]["other/best"]
    assert scored["n_windows"] == read_info(other).n_windows  # split "all": every window
    assert scored["wave_mae"] != run["evaluations"]["test/best"]["wave_mae"]
    agg = results["variants"]["b"]["aggregate"]
    assert {"other/best", "other/last", "test/best", "val/best"} <= set(agg)
    md = (tmp_path / "out" / "mini" / "results.md").read_text()
    assert "## other/best" in md and "## other/last" in md
    assert Path(run["run_dir"], "eval-other-best.json").is_file()

    def fails(text: str, error: type[Exception], match: str) -> None:
        cfg.write_text(one_run.format(data=synth_file) + text)
        with pytest.raises(error, match=match):
            run_experiment(cfg, tmp_path / "bad", device="cpu", log=lambda s: None)
        assert not (tmp_path / "bad").exists()  # nothing trained, nothing written

    fails(
        extra.format(other=other) + 'spilt = "all"\n', ConfigError, r"unknown key\(s\) \['spilt'\]"
    )
    fails('[[extra_eval]]\nname = "other"\n', ConfigError, "needs a 'file'")
    fails(extra.format(other=other) + 'split = "tset"\n', ConfigError, "split 'tset'")
    fails(extra.format(other=other).replace('"other"', '"test"'), ConfigError, "confused")
    fails(extra.format(other=other) * 2, ConfigError, "must be unique")
    fails(extra.format(other=tmp_path / "absent.h5"), DataError, "absent.h5 not found")
    slow = synthesize_dataset(tmp_path / "100hz.h5", subjects=3, minutes=0.5, fs=100.0, seed=1)
    fails(extra.format(other=slow), DataError, "500 samples at 100 Hz, but the experiment")


@pytest.mark.parametrize("config", sorted(Path("experiments/configs").glob("*.toml")))
def test_shipped_experiment_configs_are_valid(config: Path) -> None:
    exp = load_experiment(config)
    assert exp.variants and exp.name


def test_unet_baseline_trains_and_evaluates(synth_file: Path, tmp_path: Path) -> None:
    cfg = resolve_config(
        "unet",
        model={"features": 4, "unet_depth": 2},
        train={"epochs": 1, "batch_size": 32, "device": "cpu"},
    )
    result = train(cfg, synth_file, tmp_path / "u")
    metrics, preds = evaluate(result.best_checkpoint, synth_file, "test")
    assert metrics["calibration_free"]["waveform"]["mae"] > 0
    assert metrics["inverse"] is None and preds.ppg_pred is None
    with pytest.raises(ConfigError, match="apply to INN-PAR"):
        run_checks(build_model(cfg.model, seed=0))
    with pytest.raises(ConfigError, match="no inverse pass"):
        resolve_config("unet", train={"inverse_weight": 0.5})


def test_level_error_splits_the_waveform_error_into_level_and_shape() -> None:
    import numpy as np

    spec = importlib.util.spec_from_file_location(
        "level_error", ROOT / "experiments" / "level_error.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    t = np.linspace(0, 2 * np.pi, 50)
    pulse = 20 * np.sin(t) - 20 * np.sin(t).mean()  # zero-mean shape
    # Two subjects, two windows each: reference levels 80/84 and 100/96.
    levels = np.array([80.0, 84.0, 100.0, 96.0])
    ref = levels[:, None] + pulse
    subjects = np.array(["a", "a", "b", "b"])
    # A right shape at a level 5 mmHg too high everywhere: the whole error is the level.
    d = script.decompose(ref + 5.0, ref, subjects)
    assert d["wave"] == pytest.approx(5.0) and d["level"] == pytest.approx(5.0)
    assert d["shape"] == pytest.approx(0.0, abs=1e-12) and d["bias"] == pytest.approx(5.0)
    # Two subjects' means always correlate at +-1: not shown as a correlation (NaN).
    assert np.isnan(d["r_between"]) and d["r_within"] == pytest.approx(1.0)
    assert d["sd_between"] == pytest.approx((8.0, 8.0))  # subject means 82 and 98
    assert d["sd_within"] == pytest.approx((2.0, 2.0))
    # The population's mean level for everyone, with a right shape: level error only,
    # and no between-subject spread in the prediction.
    flat = np.full(4, 90.0)[:, None] + pulse
    d = script.decompose(flat, ref, subjects)
    assert d["level"] == pytest.approx(np.abs(90.0 - levels).mean())
    assert d["shape"] == pytest.approx(0.0, abs=1e-12)
    assert d["sd_between"][0] == pytest.approx(0.0) and d["sd_within"][0] == pytest.approx(0.0)
    assert np.isnan(d["r_between"]) and np.isnan(d["r_within"])  # undefined, not a number
    # The right levels and no pulse at all: shape error only.
    d = script.decompose(np.repeat(levels[:, None], 50, axis=1), ref, subjects)
    assert d["level"] == pytest.approx(0.0) and d["shape"] == pytest.approx(np.abs(pulse).mean())


def test_ppg_information_separates_between_and_within_subject_correlation() -> None:
    import numpy as np

    spec = importlib.util.spec_from_file_location(
        "ppg_information", ROOT / "experiments" / "ppg_information.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = np.random.default_rng(0)
    subjects = np.repeat(np.arange(40), 25).astype(str)
    codes = np.repeat(np.arange(40), 25)
    person = rng.normal(0, 10, 40)[codes]  # a level that differs between people only
    change = rng.normal(0, 3, len(codes))  # changes within a person
    # A feature that tells people apart but not their changes, and one the other way round.
    between, within, n_subjects, n = script.correlations(person, person + change, subjects)
    assert between == pytest.approx(1.0, abs=0.02) and abs(within) < 0.15
    assert (n_subjects, n) == (40, 1000)
    between, within, _, _ = script.correlations(change, person + change, subjects)
    assert abs(between) < 0.4 and within == pytest.approx(1.0, abs=0.02)
    # Windows without a value (no heart rate) are left out, not counted as zeros.
    feature = person.copy()
    feature[:5] = np.nan
    assert script.correlations(feature, person + change, subjects)[3] == 995
    # The heart rate comes from the PPG's beats: 72 bpm on a clean 1.2 Hz pulse.
    fs = 125.0
    t = np.arange(625) / fs
    ppg = np.stack([np.sin(2 * np.pi * 1.2 * t), np.zeros_like(t)])
    hr = script.heart_rate(ppg, fs)
    assert hr[0] == pytest.approx(72.0, rel=0.02) and np.isnan(hr[1])


def test_a_fresh_checkout_keeps_the_committed_rows(synth_file: Path, tmp_path: Path) -> None:
    """Run directories are not versioned: with only results.json, running one variant must
    not drop the other variants' measured rows from the table, and a run on disk wins."""
    import shutil

    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file).replace("[1, 2]", "[1]"))
    out = tmp_path / "out"
    first = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    kept = first["variants"]["a"]["runs"]
    assert len(kept) == 2
    shutil.rmtree(out / "mini" / "runs")  # what a fresh clone has: the table only
    second = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["b"])
    assert second["variants"]["a"]["runs"] == kept  # not retrained, not dropped
    assert len(second["variants"]["b"]["runs"]) == 2
    assert second["variants"]["a"]["aggregate"] == first["variants"]["a"]["aggregate"]
    assert "| b | 2 |" in (out / "mini" / "results.md").read_text()  # b paired against a
    # A run retrained on disk replaces its old row.
    rerun = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"], folds=[0])
    fresh = [r for r in rerun["variants"]["a"]["runs"] if r["test_fold"] == 0]
    assert len(fresh) == 1 and (out / "mini" / "runs" / "a" / "fold0-seed1" / "done.json").exists()
    assert len(rerun["variants"]["a"]["runs"]) == 2


def test_seed_ensemble_scores_the_average_of_the_seeds(
    synth_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    spec = importlib.util.spec_from_file_location(
        "seed_ensemble", ROOT / "experiments" / "seed_ensemble.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cfg = tmp_path / "mini.toml"
    cfg.write_text(
        EXPERIMENT.replace("test_folds = [0, 1]", "test_folds = [0]").format(data=synth_file)
    )
    run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None, only=["a"])
    runs = tmp_path / "out" / "mini" / "runs" / "a"
    paths = sorted(runs.glob("fold0-seed*/checkpoints/last.pt"))
    singles, ens = script.fold_errors(paths, synth_file, "val")
    # Each seed's numbers are the runner's own scores of that run.
    for path, single in zip(paths, singles, strict=True):
        scored = json.loads((path.parents[1] / "eval-val-last.json").read_text())
        assert single[0] == pytest.approx(scored["calibration_free"]["waveform"]["mae"])
        assert single[5] == pytest.approx(scored["calibrated"]["sbp"]["mae"])
    # An average is never further from the reference, sample by sample, than the average of
    # the distances: the mean prediction's waveform MAE cannot exceed the seeds' mean.
    assert ens[0] <= np.mean([s[0] for s in singles]) + 1e-9
    assert all(ens[0] != s[0] for s in singles)  # the average, scored: not one of the seeds
    assert script.main([str(tmp_path / "out" / "mini"), "a", "--data", str(synth_file)]) == 0
    out = capsys.readouterr().out
    assert "fold0 mean of 2" in out and "difference (folds won)" in out
    # A run still training (no done.json) has a last.pt that is not its last: left out.
    (runs / "fold0-seed2" / "done.json").unlink()
    with pytest.raises(SystemExit):
        script.main([str(tmp_path / "out" / "mini"), "a", "--data", str(synth_file)])
    assert "has two or more finished runs" in capsys.readouterr().err
    (runs / "fold0-seed2" / "done.json").write_text("{}")
    # Scoring the runs on data they were not trained on is refused, in one line.
    other = tmp_path / "other.h5"
    shutil.copy(synth_file, other)
    with h5py.File(other, "r+") as fh:
        fh["window_id"][0] = "renamed"
    argv = [str(tmp_path / "out" / "mini"), "a", "--data", str(other)]
    assert script.script_main(script.main, argv) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "was trained on other windows than" in captured.err
    assert "Traceback" not in captured.err


def test_results_name_the_commit_the_runs_were_made_from(synth_file: Path, tmp_path: Path):
    """The runner rewrites its (versioned) table after every run; that must not stamp the
    next table "+dirty", while a change to the code must."""
    git = git_in(tmp_path)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = x\n")
    cfg = tmp_path / "experiments" / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file).replace("[1, 2]", "[1]"))
    out = tmp_path / "experiments" / "results"
    git("init", "-q")
    first = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"], folds=[0])
    assert first["commit"] == "unknown"  # no commit yet
    (out / ".gitignore").write_text("*/runs/\n")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "--short", "HEAD").strip()
    second = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    assert len(second["variants"]["a"]["runs"]) == 2 and second["commit"] == head
    assert f"commit {head}," in (out / "mini" / "results.md").read_text()
    # Which the next runner finds changed (a variant added, a second config in one
    # command): it is the runner's output, not the code.
    again = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["b"], folds=[0])
    assert git("status", "--porcelain", "--untracked-files=no").strip()
    assert again["commit"] == head
    # An experiment file git does not hold: the commit does not say what ran.
    untracked = cfg.with_name("mini2.toml")
    untracked.write_text(cfg.read_text().replace('"mini"', '"mini2"'))
    other = run_experiment(untracked, out, device="cpu", log=lambda s: None, only=["a"], folds=[0])
    assert other["commit"] == head + "+dirty"
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = y\n")
    third = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    assert third["commit"] == head + "+dirty"


def test_runs_of_an_edited_config_are_not_reported_under_it(synth_file: Path, tmp_path: Path):
    """A finished run is reused only if the configuration still describes it."""
    cfg = tmp_path / "mini.toml"
    text = one_run(synth_file)
    cfg.write_text(text)
    out = tmp_path / "out"
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    for edit, message in (
        (text.replace('preset = "tiny"', 'preset = "paper"'), "preset 'tiny', now 'paper'"),
        (text.replace("epochs = 1,", "epochs = 2,"), "train.epochs 1, now 2"),
    ):
        cfg.write_text(edit)
        with pytest.raises(ConfigError, match=re.escape(message)):
            run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    cfg.write_text(text)  # as it was: reused, nothing retrained
    again = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    assert len(again["variants"]["a"]["runs"]) == 1


def test_a_failing_first_run_leaves_no_empty_folders(synth_file: Path, tmp_path: Path):
    cfg = tmp_path / "mini.toml"
    text = EXPERIMENT.format(data=synth_file).replace("[0, 1]", "[7]").replace("[1, 2]", "[1]")
    cfg.write_text(text)  # fold 7 does not exist: the first run fails
    out = tmp_path / "out"
    with pytest.raises(DataError, match="fold"):
        run_experiment(cfg, out, device="cpu", log=lambda s: None)
    assert not out.exists()
    # Another runner on the same experiment has just made its run folder (still empty while
    # its training starts): this runner's failure (a NaN met while training) removes its
    # own folders, not that one.
    from innpar_freia.data.dataset import plan_splits
    from innpar_freia.data.store import read_info

    bad = Path(shutil.copy(synth_file, tmp_path / "nan.h5"))
    with h5py.File(bad, "r+") as fh:
        fh["abp"][int(plan_splits(read_info(bad), 0).train[0]), 5] = float("nan")
    cfg.write_text(text.replace("[7]", "[0]").replace(str(synth_file), str(bad)))
    other = out / "mini" / "runs" / "b" / "fold0-seed2"
    with pytest.raises(DataError, match="NaN"):
        run_experiment(
            cfg, out, device="cpu", log=lambda s: other.mkdir(parents=True, exist_ok=True),
            only=["a"],
        )  # fmt: skip
    assert other.is_dir() and sorted(p.name for p in (out / "mini" / "runs").iterdir()) == ["b"]
    shutil.rmtree(out)
    cfg.write_text(text.replace('file = "', 'synth = { subjects = 0 }\nfile = "x/y/'))
    with pytest.raises(DataError, match=r"subjects \(--subjects\) is 0, not in the range 1"):
        run_experiment(cfg, out, device="cpu", log=lambda s: None)
    assert not (tmp_path / "x").exists()


def test_a_config_outside_any_repository_names_the_code_s_commit(synth_file: Path, tmp_path: Path):
    from innpar_freia.experiments import PACKAGE_ROOT, _in_work_tree, git_commit

    cfg = tmp_path / "mini.toml"  # tmp_path is in no git repository
    cfg.write_text(one_run(synth_file))
    assert not _in_work_tree(tmp_path)
    results = run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None, only=["a"])
    expected = git_commit(PACKAGE_ROOT) if _in_work_tree(PACKAGE_ROOT) else "unknown"
    # The config is in no repository, so not committed either: "+dirty" (see below).
    assert results["commit"] == (
        expected if expected == "unknown" else expected.split("+")[0] + "+dirty"
    )


def test_a_config_outside_the_repository_marks_the_commit_dirty(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A config outside any repository was stamped with the code's clean commit, while the
    same config untracked inside the repository got "+dirty": neither is committed, so the
    commit does not hold what ran. The code's checkout is a clean throwaway repository here,
    so that the test does not depend on the state of this checkout."""
    from innpar_freia import experiments

    code = tmp_path / "code"
    code.mkdir()
    git = git_in(code)
    (code / "setup.cfg").write_text("[metadata]\nname = x\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "--short", "HEAD").strip()
    monkeypatch.setattr(experiments, "PACKAGE_ROOT", code)
    cfg = tmp_path / "elsewhere" / "mini.toml"
    cfg.parent.mkdir()
    cfg.write_text(one_run(synth_file))
    out = tmp_path / "out"
    results = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    assert results["commit"] == head + "+dirty"
    assert f"commit {head}+dirty," in (out / "mini" / "results.md").read_text()
    assert results["variants"]["a"]["runs"][0]["commit"] == head + "+dirty"


def test_a_failing_runner_looks_only_at_its_own_folders():
    """A reused run lives under another experiment: a failing runner never removes it or
    its folders, even when empty."""
    from innpar_freia.experiments import _own_folders

    new, old = Path("/r/new"), Path("/r/old")
    runs = [old / "runs" / "a" / "fold0-seed1", new / "runs" / "b" / "fold0-seed1"]
    assert _own_folders(runs, new) == [
        new / "runs" / "b" / "fold0-seed1",
        new / "runs" / "b",
        new / "runs",
    ]


def test_a_reused_run_must_exist_and_be_the_variant_s_recipe(synth_file: Path, tmp_path: Path):
    """A reuse with a typo trained a new run under another experiment's name, and a reuse
    of another recipe reported those runs under the variant's description."""
    one = one_run(synth_file)
    first = tmp_path / "mini.toml"
    first.write_text(one)
    out = tmp_path / "out"
    run_experiment(first, out, device="cpu", log=lambda s: None, only=["a"])
    second = tmp_path / "final.toml"
    reusing = one.replace('name = "mini"', 'name = "final"').replace('reference = "a"\n', "")
    second.write_text(reusing.replace('name = "a"', 'name = "chosen"\nreuse = "nothere/a"'))
    with pytest.raises(ConfigError, match=r"reuses 'nothere/a', but .* holds no run"):
        run_experiment(second, out, device="cpu", log=lambda s: None, only=["chosen"])
    assert sorted(p.name for p in out.iterdir()) == ["mini"]  # no "nothere", no "final"
    second.write_text(
        reusing.replace('name = "a"', 'name = "chosen"\nreuse = "mini/a"\npreset = "paper"')
    )
    with pytest.raises(ConfigError, match=r"was made with another configuration"):
        run_experiment(second, out, device="cpu", log=lambda s: None, only=["chosen"])
    second.write_text(reusing.replace('name = "a"', 'name = "chosen"\nreuse = "mini/a"'))
    results = run_experiment(second, out, device="cpu", log=lambda s: None, only=["chosen"])
    assert len(results["variants"]["chosen"]["runs"]) == 1


def test_a_reusing_experiment_never_rescores_the_other_experiment_s_runs(
    synth_file: Path, tmp_path: Path
):
    """A reusing experiment with another calibration scored the reused runs again, in the
    other experiment's records: their scores changed under it, and its own table then left
    those rows out (its reference's) "until it is scored again"."""
    one = one_run(synth_file)
    first = tmp_path / "mini.toml"
    first.write_text(one)
    out = tmp_path / "out"
    run_experiment(first, out, device="cpu", log=lambda s: None, only=["a"])
    done = out / "mini" / "runs" / "a" / "fold0-seed1" / "done.json"
    stored = done.read_bytes()
    second = tmp_path / "final.toml"
    reusing = (
        one.replace('name = "mini"', 'name = "final"')
        .replace('reference = "a"\n', 'calibration = "offset"\n')
        .replace('name = "a"', 'name = "chosen"\nreuse = "mini/a"')
    )
    second.write_text(reusing)
    logs: list[str] = []
    message = (
        r"reuses 'mini/a', whose run .* holds val/best scored with calibration "
        r"'offset-scale', now 'offset' \(this experiment's\): scoring it again would overwrite"
    )
    with pytest.raises(ConfigError, match=message):
        run_experiment(second, out, device="cpu", log=logs.append, only=["chosen"])
    assert done.read_bytes() == stored and not logs  # nothing scored, nothing trained
    # The other experiment keeps its reference's rows in its table.
    results = run_experiment(first, out, device="cpu", log=lambda s: None, only=["b"])
    assert results["variants"]["a"]["aggregate"]["test/best"]["wave_mae"]["n"] == 1
    assert results["paired"]["test/best"]["a"]["b"]["wave_mae"]["n"] == 1
    # A split the reused runs were not scored on is scored with this experiment's
    # calibration: nothing of the other experiment's is changed.
    second.write_text(reusing.replace('evaluate = ["val", "test"]', 'evaluate = ["train"]'))
    again = run_experiment(second, out, device="cpu", log=lambda s: None, only=["chosen"])
    assert again["variants"]["chosen"]["aggregate"]["train/best"]["wave_mae"]["n"] == 1
    record = json.loads(done.read_text())
    assert record["scoring"]["test/best"]["calibration"] == "offset-scale"
    assert record["evaluations"]["test/best"] == json.loads(stored)["evaluations"]["test/best"]


def test_an_unfinished_reused_run_is_refused(synth_file: Path, tmp_path: Path):
    """A reused run of the other experiment that was interrupted (no done.json) was resumed
    and finished by the reusing experiment, under the other experiment's name."""
    one = one_run(synth_file)
    first = tmp_path / "mini.toml"
    first.write_text(one)
    out = tmp_path / "out"
    run_experiment(first, out, device="cpu", log=lambda s: None, only=["a"])
    run = out / "mini" / "runs" / "a" / "fold0-seed1"
    (run / "done.json").unlink()  # as if killed before its scores were written
    stamp = (run / "checkpoints" / "last.pt").stat().st_mtime_ns
    second = tmp_path / "final.toml"
    second.write_text(
        one.replace('name = "mini"', 'name = "final"')
        .replace('reference = "a"\n', "")
        .replace('name = "a"', 'name = "chosen"\nreuse = "mini/a"')
    )
    logs: list[str] = []
    with pytest.raises(ConfigError, match=r"reuses 'mini/a', but .*fold0-seed1 is unfinished"):
        run_experiment(second, out, device="cpu", log=logs.append, only=["chosen"])
    assert not logs and not (run / "done.json").exists()
    assert (run / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp
    assert not (out / "final").exists()


def test_scoring_the_training_windows_whole_is_refused_before_training(
    synth_file: Path, tmp_path: Path
):
    """Split "all" of the windows the runs train on (protocol evaluate, or an extra_eval of
    the [data] file or a copy of it) holds their training windows: evaluate refused it only
    after the first run had trained (an hour on a real config)."""
    one = one_run(synth_file)
    cfg = tmp_path / "mini.toml"
    out = tmp_path / "out"
    cfg.write_text(one.replace('evaluate = ["val", "test"]', 'evaluate = ["all"]'))
    with pytest.raises(ConfigError, match=r'protocol evaluate "all" would score every window'):
        run_experiment(cfg, out, device="cpu", log=lambda s: None)
    copy = shutil.copy(synth_file, tmp_path / "copy.h5")
    for file, which in ((synth_file, ", the windows"), (copy, f" \\(a copy of {synth_file}\\)")):
        cfg.write_text(one + f'[[extra_eval]]\nname = "own"\nfile = "{file}"\n')
        logs: list[str] = []
        with pytest.raises(
            ConfigError, match=rf"extra_eval 'own' scores split \"all\" of .*{which}"
        ):
            run_experiment(cfg, out, device="cpu", log=logs.append)
        assert not logs and not out.exists()  # nothing trained
    # Another split of the runs' folds on that file is no training window.
    cfg.write_text(one + f'[[extra_eval]]\nname = "own"\nfile = "{copy}"\nsplit = "test"\n')
    results = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    assert results["variants"]["a"]["aggregate"]["own/best"]["wave_mae"]["n"] == 1


def test_an_epoch_early_stopping_never_reached_is_named(synth_file: Path, tmp_path: Path):
    """A kept epoch that early stopping ended the run before failed with "checkpoint not
    found", after training and again on every re-run, without naming the cause."""
    # lr 1e-30 leaves the weights as they were: no better validation MAE after epoch 1.
    recipe = "epochs = 4, batch_size = 32, lr = 1e-30, early_stopping = 1, keep_checkpoints = [4]"
    cfg = tmp_path / "mini.toml"
    cfg.write_text(
        one_run(synth_file)
        .replace('checkpoints = ["best", "last"]', 'checkpoints = ["epoch-0004"]')
        .replace("epochs = 1, batch_size = 32", recipe)
    )
    message = (
        r"early stopping \(early_stopping = 1\) ended run .*fold0-seed1 at epoch 2, before "
        r"epoch 4 was reached, so protocol checkpoint 'epoch-0004' was never saved"
    )
    for _ in range(2):  # and the same on a re-run
        with pytest.raises(ConfigError, match=message):
            run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None, only=["a"])


def test_the_runner_says_whether_it_trains_resumes_or_only_scores_a_run(
    synth_file: Path, tmp_path: Path
):
    """A run whose training had ended (early stopping, or its last epoch) before the runner
    was stopped was announced as "training", though nothing trained: it is only scored."""
    # lr 1e-30 leaves the weights as they were: no better validation MAE after epoch 1.
    recipe = "epochs = 4, batch_size = 32, lr = 1e-30, early_stopping = 1"
    cfg = tmp_path / "mini.toml"
    text = one_run(synth_file)
    cfg.write_text(text.replace("epochs = 1, batch_size = 32", recipe))
    out = tmp_path / "out"
    said: list[str] = []
    run_experiment(cfg, out, device="cpu", log=said.append, only=["a"])
    assert "[mini] a fold0-seed1: training" in said
    run = out / "mini" / "runs" / "a" / "fold0-seed1"
    (run / "done.json").unlink()  # stopped after training, before its record
    said.clear()
    run_experiment(cfg, out, device="cpu", log=said.append, only=["a"])
    assert "[mini] a fold0-seed1: its training stopped early at epoch 2; scoring it" in said
    # A run that trained all its epochs, and one stopped after its first of two.
    cfg.write_text(text.replace("epochs = 1,", "epochs = 2, keep_checkpoints = [1],"))
    shutil.rmtree(out)
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    (run / "done.json").unlink()
    said.clear()
    run_experiment(cfg, out, device="cpu", log=said.append, only=["a"])
    assert "[mini] a fold0-seed1: its training finished its 2 epochs; scoring it" in said
    (run / "done.json").unlink()
    (run / "checkpoints" / "last.pt").unlink()
    (run / "checkpoints" / "epoch-0001.pt").rename(run / "checkpoints" / "last.pt")
    said.clear()
    run_experiment(cfg, out, device="cpu", log=said.append, only=["a"])
    assert "[mini] a fold0-seed1: resuming after epoch 1 of 2" in said


def test_a_kept_row_of_another_recipe_is_left_out(synth_file: Path, tmp_path: Path):
    """With its run folder gone, a row of results.json was averaged with new runs of an
    edited recipe as one mean ± SD."""
    text = EXPERIMENT.format(data=synth_file).replace("[1, 2]", "[1]")
    cfg = tmp_path / "mini.toml"
    cfg.write_text(text)
    out = tmp_path / "out"
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    shutil.rmtree(out / "mini" / "runs")
    cfg.write_text(text.replace("epochs = 1,", "epochs = 2,"))
    notes: list[str] = []
    results = run_experiment(cfg, out, device="cpu", log=notes.append, only=["a"], folds=[0])
    runs = results["variants"]["a"]["runs"]
    assert [(r["test_fold"], r["recipe"]["train"]["epochs"]) for r in runs] == [(0, 2)]
    assert any("fold 1 seed 1: the row in" in n and "train.epochs 1, now 2" in n for n in notes)
    # A run folder on disk of another recipe stops the runner, also when it is not to be
    # run this time, and before anything trains (it used to train b's run first).
    cfg.write_text(text.replace("epochs = 1,", "epochs = 3,"))
    with pytest.raises(ConfigError, match=re.escape("train.epochs 2, now 3")):
        run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["b"], folds=[1])
    assert not (out / "mini" / "runs" / "b").exists()


def test_baseline_rows_count_each_test_fold_once(synth_file: Path, tmp_path: Path):
    """The baselines came from the first variant's runs: with 2 seeds each fold counted
    twice (a smaller SD), and a variant run on fewer folds gave them on its folds only."""
    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file))
    out = tmp_path / "out"
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"], folds=[0], seeds=[1])
    results = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["b"])
    base = results["baselines"]["test/best"]
    assert base["folds"] == 2
    per_fold = {
        r["test_fold"]: r["evaluations"]["test/best"]["naive_wave_mae"]
        for r in results["variants"]["b"]["runs"]
    }
    assert base["aggregate"]["naive_wave_mae"]["mean"] == pytest.approx(sum(per_fold.values()) / 2)
    # The baselines' numbers only: the first run's whole evaluation was aggregated, so a
    # model's waveform MAE sat under the baselines' key in results.json.
    baselines = ("naive_", "linear_", "carry_forward_")
    assert base["aggregate"] and all(m.startswith(baselines) for m in base["aggregate"])
    md = (out / "mini" / "results.md").read_text()
    assert "| a | 1 |" in md and "| b | 4 |" in md and "| naive baseline | 2 folds |" in md


# The [protocol] table of EXPERIMENT (no braces in it: the same before and after format).
PROTOCOL_TABLE = EXPERIMENT[EXPERIMENT.index("[protocol]") : EXPERIMENT.index("[base]")]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("batch_size = 32 }", "batch_size = 32, seed = 5 }", r"\[base\] train: seed belong in"),
        ("grad_weight = 0.5 }", "grad_weight = 0.5, test_fold = 3 }", "b: test_fold belong in"),
        (PROTOCOL_TABLE, "", "'protocol' must be a table"),  # and protocol = "x" on top
        ('file = "', 'synth = { subjects = "ten" }\nfile = "', "synth subjects must be an integer"),
        ('file = "', 'synth = { minutes = true }\nfile = "', "synth minutes must be a number"),
    ],
)
def test_experiment_settings_the_runner_would_misuse_are_refused(tmp_path, old, new, message):
    """A seed or test fold in a train table was overridden by the protocol's without a word
    (config.json recorded seed 1); a protocol that is not a table, or synth settings of the
    wrong type, gave a TypeError traceback."""
    text = EXPERIMENT.format(data=tmp_path / "none.h5")
    assert old in text
    text = text.replace(old, new, 1)
    if old == PROTOCOL_TABLE:
        text = 'protocol = "x"\n' + text
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_experiment(cfg)


def test_a_failed_import_is_one_message(tmp_path: Path):
    cfg = tmp_path / "bad.toml"
    source = tmp_path / "src"
    source.mkdir()
    cfg.write_text(
        EXPERIMENT.format(data=tmp_path / "made.h5").replace(
            'file = "', f'import = ["bp-benchmark", "{source}"]\nfile = "'
        )
    )
    with pytest.raises(DataError, match=r"importing .*src \(bp-benchmark\) into .*made.h5 failed"):
        run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    assert not (tmp_path / "made.h5").exists() and not (tmp_path / "out").exists()


def test_sigterm_stops_the_runner_like_ctrl_c(synth_file: Path, tmp_path: Path):
    """Killed before its first checkpoint, the runner left a run folder holding only
    config.json, which a later run of an edited config refused as another recipe."""
    import sys

    from helpers import terminate_when

    cfg = tmp_path / "mini.toml"
    text = one_run(synth_file)
    cfg.write_text(text.replace("epochs = 1,", "epochs = 500,"))
    out = tmp_path / "out"
    config = out / "mini" / "runs" / "a" / "fold0-seed1" / "config.json"
    err = terminate_when(
        [sys.executable, str(ROOT / "experiments" / "run.py"), str(cfg), "--out", str(out),
         "--device", "cpu", "--only", "a", "--quiet"],
        config.exists,
    )  # fmt: skip
    assert not out.exists(), sorted(out.rglob("*"))
    # It says how to go on (it had ended without a word).
    assert err.decode().endswith(
        "interrupted; the same command goes on: finished runs are kept, and the interrupted "
        "one resumes from its last checkpoint (or starts again, if it had none)\n"
    )


def test_an_interrupted_runner_names_the_failed_runs_of_the_experiments_before(
    synth_file: Path, tmp_path: Path
):
    """Stopped (SIGTERM, Ctrl-C) in its second experiment, the runner said how to go on
    but not that a run of the first had failed, which only its table then told."""
    import sys

    from helpers import terminate_when

    first = tmp_path / "mini.toml"
    first.write_text(diverging_run(synth_file))
    second = tmp_path / "long.toml"
    second.write_text(  # its runs a (stopped) and boom (never reached)
        first.read_text()
        .replace('name = "mini"', 'name = "long"')
        .replace("epochs = 1,", "epochs = 500,")
    )
    out = tmp_path / "out"
    started = out / "long" / "runs" / "a" / "fold0-seed1" / "config.json"
    err = terminate_when(
        [sys.executable, str(ROOT / "experiments" / "run.py"), str(first), str(second),
         "--out", str(out), "--device", "cpu", "--only", "a,boom", "--quiet"],
        started.exists,
        timeout=300,
    ).decode()  # fmt: skip
    assert err.endswith(
        "(or starts again, if it had none); before it, "
        f"{first}: 1 run failed in training (boom fold0-seed1), why is in "
        f"{out / 'mini' / 'results.md'}\n"
    ), err


def test_benchmark_writes_its_report_after_every_measurement(tmp_path: Path):
    """A benchmark stopped by a time limit (the GPU slot's) printed nothing with --json:
    its report came only at the end. --out is rewritten after each measurement."""
    import subprocess
    import sys

    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "benchmark.py"), "--device", "cpu",
         "--batch-sizes", "1,2", "--modes", "fp32", "--min-seconds", "0.05", "--out", str(out),
         "--json"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report == json.loads(done.stdout)
    assert [(r["model"], r["mode"], r["batch"]) for r in report["rows"]] == [
        ("port", "fp32", 1),
        ("port", "fp32", 2),
    ]
    assert all(r["train_windows_per_s"] > 0 and r["peak_memory_mb"] > 0 for r in report["rows"])
    assert "port fp32 batch     1: train" in done.stderr  # each row as it is measured
    # What was asked for, so that a report a time limit cut short is told from a whole one.
    assert report["requested"] == {"models": ["port"], "modes": ["fp32"], "batch_sizes": [1, 2]}
    assert report["complete"] is True
    assert not list(tmp_path.glob(".*.tmp"))


def test_benchmark_output_problems_are_said_before_measuring(tmp_path: Path):
    """A missing folder gave a traceback after the first measurement (lost), and an
    existing report was replaced without a word."""
    from click.testing import CliRunner

    spec = importlib.util.spec_from_file_location(
        "benchmark", ROOT / "experiments" / "benchmark.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    measured: list = []
    module.measure = lambda *args: measured.append(args)  # the CPU path runs a subprocess
    base = ["--device", "cpu", "--batch-sizes", "1", "--modes", "fp32"]
    old = tmp_path / "old.json"
    old.write_text('{"rows": ["finished"]}')
    result = CliRunner().invoke(module.main, [*base, "--out", str(old)])
    assert result.exit_code == 1 and f"output exists: {old}; pass --force" in result.output
    assert old.read_text() == '{"rows": ["finished"]}'
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = CliRunner().invoke(module.main, [*base, "--out", str(blocked / "b.json")])
    assert result.exit_code == 1 and f"cannot create {blocked}" in result.output
    assert "Traceback" not in result.output and measured == []
    # A point given twice was measured twice, two rows of one point.
    for option, value, said in [
        ("--batch-sizes", "1,8,1", "batch size(s) 1 given more than once"),
        ("--modes", "fp32,bf16,fp32", "mode(s) fp32 given more than once"),
    ]:
        args = [*base, "--force", "--out", str(old)]
        args[args.index(option) + 1] = value
        result = CliRunner().invoke(module.main, args)
        assert result.exit_code == 2 and said in result.output and measured == []


def test_a_fold_the_data_does_not_have_stops_the_runner_before_any_training(
    synth_file: Path, tmp_path: Path
) -> None:
    """Found only at that run's turn, after the runs before it had trained (hours on a real
    config)."""
    cfg = tmp_path / "mini.toml"
    cfg.write_text(EXPERIMENT.format(data=synth_file).replace("[0, 1]", "[0, 9]"))
    with pytest.raises(DataError, match="test fold 9 is not in"):
        run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    assert not (tmp_path / "out").exists()
    text = EXPERIMENT.format(data=synth_file).replace(
        'reference = "a"', 'reference = "a"\nval_fold = 7'
    )
    cfg.write_text(text)
    with pytest.raises(DataError, match="validation fold 7 is not in"):
        run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    assert not (tmp_path / "out").exists()


def test_sigterm_to_the_runner_while_it_imports_leaves_no_half_written_file(
    real_data: Path, tmp_path: Path
):
    """The importer runs as a child process, which subprocess.run killed outright when the
    runner was stopped: its hidden half-written file stayed for good."""
    import sys

    from helpers import terminate_when

    target = tmp_path / "data" / "c2015.h5"
    cfg = tmp_path / "imp.toml"
    cfg.write_text(
        EXPERIMENT.format(data=target).replace(
            "[data]\n", f'[data]\nimport = ["bp-benchmark", "{real_data / "bp_benchmark"}"]\n'
        )
    )
    target.parent.mkdir()
    terminate_when(
        [sys.executable, str(ROOT / "experiments" / "run.py"), str(cfg), "--out",
         str(tmp_path / "out"), "--device", "cpu", "--quiet"],
        lambda: any(target.parent.glob(".c2015.h5.*")),
    )  # fmt: skip
    assert list(target.parent.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_the_cuda_check_stops_with_one_line_without_cuda(tmp_path: Path):
    """It printed a Python traceback first, and left an empty results folder."""
    import subprocess
    import sys

    done = subprocess.run(
        ["bash", str(ROOT / "experiments" / "cuda_check.sh"), str(tmp_path / "res")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "cuda_check: needs torch with CUDA and FrEIA (carry .whl, see the header): "
        "AssertionError: torch sees no CUDA device"
    ]
    assert not (tmp_path / "res").exists()


def test_an_existing_window_file_must_be_what_data_describes(tmp_path: Path):
    """An edited [data] was ignored once its file existed, and the runs on the old file were
    reported as the new data's."""
    from scipy.io import savemat
    from test_importers import _fold_columns, make_bp_benchmark

    from innpar_freia.experiments import prepare_data

    cfg = tmp_path / "x.toml"

    def prepare(data: str) -> Path:
        cfg.write_text(f'name = "x"\n[base]\npreset = "tiny"\n[data]\n{data}')
        return prepare_data(load_experiment(cfg), log=lambda s: None)

    made = tmp_path / "s.h5"
    synth = f'file = "{made}"\nsynth = {{ subjects = 4, minutes = 0.5, seed = 1 }}\n'
    assert prepare(synth) == made and prepare(synth) == made  # made, then used as it is
    for edit, message in (
        (("seed = 1", "seed = 2"), "synth seed 1, now 2"),
        (("subjects = 4", "subjects = 5"), "synth subjects 4, now 5"),
        (("seed = 1", "seed = 1, folds = 3"), "synth folds 4, now 3"),  # 4 subjects: 4 folds
    ):
        with pytest.raises(ConfigError, match=re.escape(f"{made} was made from other data")):
            prepare(synth.replace(*edit))
        with pytest.raises(ConfigError, match=re.escape(message)):
            prepare(synth.replace(*edit))
    source = make_bp_benchmark(tmp_path / "bpb")
    imported = tmp_path / "i.h5"
    imp = f'file = "{imported}"\nimport = ["bp-benchmark", "{source}"]\n'
    assert prepare(imp) == imported and prepare(imp) == imported
    assert prepare(imp.replace('"]', '", "--fs", "125"]')) == imported  # the default, given
    for data, message in (
        (imp.replace('"]', '", "--fs", "100"]'), "fs 125, now 100"),
        (imp.replace('"]', '", "--fs=100"]'), "fs 125, now 100"),
        (imp.replace("bp-benchmark", "innpar-npy"), "format 'bp-benchmark', now 'innpar-npy'"),
        (f'file = "{imported}"\nsynth = {{ subjects = 4 }}\n', "it was not synthesised"),
        (f'file = "{made}"\nimport = ["bp-benchmark", "{source}"]\n', "format 'synthetic'"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            prepare(data)
    savemat(source / "signal_fold_0.mat", _fold_columns(0, n=9))  # other windows, same name
    with pytest.raises(ConfigError, match=r"signal_fold_0\.mat has changed size"):
        prepare(imp)
    (source / "signal_fold_0.mat").unlink()
    with pytest.raises(ConfigError, match=r"input signal_fold_0\.mat is not in"):
        prepare(imp)


def test_an_interrupted_run_with_more_epochs_stops_the_runner_before_training(
    synth_file: Path, tmp_path: Path
):
    """A run interrupted after more epochs than an edited config trains was found only when
    its turn came, after the runs before it had trained, and named the CLI's --epochs."""
    cfg = tmp_path / "mini.toml"
    text = EXPERIMENT.format(data=synth_file).replace("[1, 2]", "[1]")
    cfg.write_text(text.replace("epochs = 1,", "epochs = 2,"))
    out = tmp_path / "out"
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"], folds=[1])
    run = out / "mini" / "runs" / "a" / "fold1-seed1"
    (run / "done.json").unlink()  # as if stopped after its last epoch, before its record
    cfg.write_text(text)  # now 1 epoch
    with pytest.raises(ConfigError, match=re.escape(f"{run} was interrupted after 2 epochs")):
        run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    assert not (out / "mini" / "runs" / "a" / "fold0-seed1").exists()


def test_atomic_writes_of_several_processes_do_not_collide(tmp_path: Path):
    """Runners sharing one table wrote results.md through one temporary name: one process
    renamed the other's file away and crashed (FileNotFoundError)."""
    import multiprocessing

    from innpar_freia.train import write_bytes_atomic

    target = tmp_path / "results.md"
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pool.starmap(_write_many, [(target, b"a" * 5000), (target, b"b" * 5000)])
    assert target.read_bytes() in (b"a" * 5000, b"b" * 5000)
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]
    # A write that fails leaves no temporary file behind.
    (tmp_path / "folder").mkdir()
    with pytest.raises(OSError):
        write_bytes_atomic(tmp_path / "folder", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "results.md"]


def _write_many(path: Path, content: bytes) -> None:
    from innpar_freia.train import write_bytes_atomic

    for _ in range(300):
        write_bytes_atomic(path, content)


@pytest.mark.parametrize(
    "split, message",
    [
        ("4", "split must be a table with 'folds'"),
        ("{ seed = 1 }", "split must be a table with 'folds'"),
        ("{ folds = 4, join = true }", "unknown [data] split setting(s) ['join']"),
        ("{ folds = 2 }", "split folds must be an integer >= 3, not 2"),
        ("{ folds = 4.0 }", "split folds must be an integer >= 3, not 4.0"),
        ("{ folds = 4, seed = true }", "split seed must be an integer >= 0, not True"),
        ("{ folds = 4, seed = -1 }", "split seed must be an integer >= 0, not -1"),
        ('{ folds = 4, join_shared = "yes" }', "join_shared must be true or false, not 'yes'"),
    ],
)
def test_a_bad_data_split_is_refused_when_the_experiment_is_loaded(tmp_path, split, message):
    cfg = tmp_path / "x.toml"
    cfg.write_text(
        f'name = "x"\n[base]\npreset = "tiny"\n[data]\nfile = "d.h5"\n'
        f"synth = {{ subjects = 6 }}\nsplit = {split}\n"
    )
    with pytest.raises(ConfigError, match=re.escape(f"{cfg}: ") + ".*" + re.escape(message)):
        load_experiment(cfg)


def test_data_split_gives_the_made_file_new_folds_and_an_edit_of_it_stops_the_runner(
    tmp_path: Path, monkeypatch
):
    """[data] split makes the file as `innpar data split` would (cv_joined_c2015.toml: the
    real windows in folds that keep records sharing signal together), once; a file whose
    folds are not those the config asks for stops the runner, as other data does."""
    import numpy as np

    from innpar_freia.data import splits
    from innpar_freia.data.store import read_info
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.experiments import prepare_data

    cfg = tmp_path / "x.toml"
    made = tmp_path / "data" / "s.h5"
    synth = f'file = "{made}"\nsynth = {{ subjects = 6, minutes = 0.5, seed = 1 }}\n'

    def prepare(data: str) -> Path:
        cfg.write_text(f'name = "x"\n[base]\npreset = "tiny"\n[data]\n{data}')
        return prepare_data(load_experiment(cfg), log=lambda s: None)

    asked = synth + "split = { folds = 3, seed = 2 }\n"
    # A runner killed outright (kill -9) while making it left its hidden copy: removed.
    made.parent.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    (made.parent / f".s.h5.{child.pid}.making.h5").write_bytes(b"half made")
    assert prepare(asked) == made
    assert sorted(p.name for p in made.parent.iterdir()) == ["s.h5"]  # no hidden file left
    expected = synthesize_dataset(tmp_path / "by-hand.h5", subjects=6, minutes=0.5, seed=1)
    splits.split_file(expected, folds=3, seed=2)
    assert np.array_equal(read_info(made).fold, read_info(expected).fold)
    assert len(set(read_info(made).fold)) == 3  # not the generator's own folds
    assert prepare(asked) == made  # used as it is: the same folds asked for
    for data, message in (
        (
            asked.replace("seed = 2", "seed = 0"),
            "folds by innpar data split (3 folds, seed 2), "
            "now by innpar data split (3 folds, seed 0)",
        ),
        (
            asked.replace("seed = 2", "seed = 2, join_shared = true"),
            "now by innpar data split (3 folds, seed 2, subjects sharing signal joined)",
        ),
        (synth, "(3 folds, seed 2), now as imported or synthesised"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            prepare(data)
    # A file made before the config asked for new folds is not split behind its runs' back.
    plain = tmp_path / "plain.h5"
    plain_cfg = f'file = "{plain}"\nsynth = {{ subjects = 6, minutes = 0.5, seed = 1 }}\n'
    prepare(plain_cfg)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "folds as imported or synthesised, now by innpar data split (3 folds, seed 0)"
        ),
    ):
        prepare(plain_cfg + "split = { folds = 3 }\n")

    # Stopped while splitting: neither the file nor a hidden half-made one is left.
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(splits, "split_file", interrupted)
    made.unlink()
    made.parent.rmdir()
    with pytest.raises(KeyboardInterrupt):
        prepare(asked)
    assert not made.parent.exists()


def test_a_finished_run_on_a_file_split_again_stops_the_runner(synth_file: Path, tmp_path: Path):
    """The same windows in other folds passed as the run's data: a finished run kept its
    scores from the old folds, and the table reported them as the new folds'."""
    from innpar_freia.data.store import read_info, write_assignments
    from innpar_freia.errors import DataError

    data = tmp_path / "d.h5"
    shutil.copy(synth_file, data)
    cfg = tmp_path / "mini.toml"
    cfg.write_text(one_run(data))
    out = tmp_path / "out"
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    fold = read_info(data).fold
    write_assignments(data, None, fold)  # the same folds written again: nothing to say
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    write_assignments(data, None, (fold + 1) % (fold.max() + 1))  # the folds moved round
    run = out / "mini" / "runs" / "a" / "fold0-seed1"
    with pytest.raises(ConfigError, match=re.escape(f"{run} was made with another config")):
        run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    with pytest.raises(ConfigError, match=re.escape(f"other folds of {data} (split again")):
        run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    write_assignments(data, None, fold % 3 + 1)  # 3 folds, none of them the run's test fold
    with pytest.raises(DataError, match=re.escape(f"test fold 0 is not in {data} (folds: 1")):
        run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])


def test_an_extra_eval_file_with_other_signals_is_scored_again(synth_file: Path, tmp_path: Path):
    """The extra file made again with another seed: the same window ids and subjects, other
    signals (ABP up to ~90 mmHg apart). Only ids and subjects were compared, so nothing was
    scored again and the old file's scores were reported as the new one's. Evaluations
    recorded before the signals were fingerprinted are scored again where the checkpoints
    are there to do it."""
    from innpar_freia.data.store import read_info
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.train import windows_fingerprint

    other = synthesize_dataset(tmp_path / "other.h5", subjects=4, minutes=0.5, seed=7)
    ids = windows_fingerprint(read_info(other))
    cfg = tmp_path / "mini.toml"
    one_run = EXPERIMENT.replace("[0, 1]", "[0]").replace("[1, 2]", "[1]")
    cfg.write_text(
        one_run.format(data=synth_file) + f'[[extra_eval]]\nname = "other"\nfile = "{other}"\n'
    )
    out = tmp_path / "out"

    def other_best(log) -> float:
        results = run_experiment(cfg, out, device="cpu", log=log, only=["a"])
        return results["variants"]["a"]["runs"][0]["evaluations"]["other/best"]["wave_mae"]

    before = other_best(lambda s: None)
    synthesize_dataset(other, subjects=4, minutes=0.5, seed=8, overwrite=True)
    assert windows_fingerprint(read_info(other)) == ids  # what was compared before
    said: list[str] = []
    after = other_best(said.append)
    assert after != pytest.approx(before)
    assert any(
        "other/best was scored with other signals in the same windows: scoring it again" in s
        for s in said
    )
    # Scored again, and then left alone.
    said.clear()
    assert other_best(said.append) == after and not any("scoring it again" in s for s in said)
    # A record from before the signals were fingerprinted: scored again, not trusted.
    done = out / "mini" / "runs" / "a" / "fold0-seed1" / "done.json"
    record = json.loads(done.read_text())
    for scoring in record["scoring"].values():
        scoring.pop("content_sha256", None)
    done.write_text(json.dumps(record))
    said.clear()
    assert other_best(said.append) == after
    assert any(
        "other/best was scored with signals not fingerprinted then: scoring it" in s for s in said
    )
    assert "content_sha256" in json.loads(done.read_text())["scoring"]["other/best"]
    # Not by an experiment that reuses the run: its record is the other experiment's.
    for scoring in record["scoring"].values():
        scoring.pop("content_sha256", None)
    done.write_text(json.dumps(record))
    stored = done.read_bytes()
    reusing = tmp_path / "final.toml"
    reusing.write_text(
        cfg.read_text()
        .replace('name = "mini"', 'name = "final"')
        .replace('reference = "a"\n', "")
        .replace('name = "a"', 'name = "chosen"\nreuse = "mini/a"')
    )
    said.clear()
    results = run_experiment(reusing, out, device="cpu", log=said.append, only=["chosen"])
    assert results["variants"]["chosen"]["runs"][0]["evaluations"]["other/best"]["wave_mae"] == (
        pytest.approx(after)
    )
    assert done.read_bytes() == stored and not any("scoring it again" in s for s in said)


def test_an_edited_val_fold_is_named_as_the_config_names_it(synth_file: Path, tmp_path: Path):
    """val_fold changed from "next" to 3: the message said "train.val_fold None, now 3"
    (None is how a run records "next") and "other folds of FILE (split again since)",
    though the file had not been split again."""
    cfg = tmp_path / "mini.toml"
    text = one_run(synth_file)
    cfg.write_text(text)
    out = tmp_path / "out"
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    cfg.write_text(text.replace("seeds = [1]", "seeds = [1]\nval_fold = 3"))
    with pytest.raises(ConfigError) as err:
        run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    assert "protocol val_fold 'next', now 3" in str(err.value)
    assert "split again" not in str(err.value) and "None" not in str(err.value)


def test_val_fold_next_and_the_fold_it_names_are_one_recipe(synth_file: Path, tmp_path: Path):
    """A run made with val_fold "next" (test fold 0: fold 1) is the run a config writing
    ``val_fold = 1`` asks for, and the other way round: it was refused as "another
    configuration" and had to be trained again, for the same folds."""
    cfg = tmp_path / "mini.toml"
    text = one_run(synth_file)
    cfg.write_text(text)
    out = tmp_path / "out"
    first = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    said: list[str] = []
    cfg.write_text(text.replace("seeds = [1]", "seeds = [1]\nval_fold = 1"))
    again = run_experiment(cfg, out, device="cpu", log=said.append, only=["a"])
    assert again["variants"]["a"]["runs"] == first["variants"]["a"]["runs"]
    assert not any("training" in s for s in said)
    # The row kept in results.json when the run's folder is gone: kept, not left out.
    shutil.rmtree(out / "mini" / "runs")
    said.clear()
    kept = run_experiment(cfg, out, device="cpu", log=said.append, seeds=[])
    assert kept["variants"]["a"]["runs"] == first["variants"]["a"]["runs"]
    assert not any("left out" in s for s in said)


def test_a_failed_run_stays_in_the_table_of_runners_that_did_not_try_it(
    synth_file: Path, tmp_path: Path
):
    """The table's "Failed runs" held only the failures of the runner that wrote it: after
    a run of variant boom diverged, a runner with --only a (or another runner sharing the
    experiment) rewrote the table without it, and boom's reason was gone. A runner that
    selects the failed run trains it again, and once it finishes it is no longer listed."""
    diverging = diverging_run(synth_file)
    cfg = tmp_path / "mini.toml"
    cfg.write_text(diverging)
    out = tmp_path / "out"
    table = out / "mini"
    said: list[str] = []
    first = run_experiment(cfg, out, device="cpu", log=said.append, only=["boom"])
    [failure] = first["failed"]
    assert failure["message"].startswith("loss became nan")

    def failures_listed() -> tuple[list, str]:
        saved = json.loads((table / "results.json").read_text())
        md = (table / "results.md").read_text()
        listed = [(f["variant"], f["test_fold"], f["seed"], f["message"]) for f in saved["failed"]]
        return listed, md

    expected = [("boom", 0, 1, failure["message"])]
    said.clear()
    second = run_experiment(cfg, out, device="cpu", log=said.append, only=["a"])
    assert not any(line.startswith("[mini] boom") for line in said), said  # not tried again
    assert second["variants"]["a"]["runs"] and second["failed"] == [failure]
    listed, md = failures_listed()
    assert listed == expected
    assert "`boom` (no finished run; 1 failed in training, see Failed runs)" in md
    assert "- boom fold0-seed1: loss became nan" in md.split("## Failed runs")[1]
    # Edited since, and not selected: the failure is of the earlier recipe, and says so.
    cfg.write_text(diverging.replace("lr = 1000.0", "lr = 0.001"))
    [stale] = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])["failed"]
    assert stale["message"] == failure["message"]
    assert stale["changed_since"] == ["train.lr 1000.0, now 0.001"]
    assert (
        "- boom fold0-seed1: loss became nan" in failures_listed()[1]
        and "(with an earlier configuration: train.lr 1000.0, now 0.001; the present one "
        "has not run)"
        in failures_listed()[1]
    )
    cfg.write_text(diverging)
    assert (
        "changed_since"
        not in run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])["failed"][0]
    )
    # A fresh checkout (run folders are not versioned): the table's own list keeps it.
    shutil.rmtree(table / "runs" / "boom")
    run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])
    assert failures_listed()[0] == expected
    # Selected again, it is trained again; once it finishes, it is no longer a failure.
    cfg.write_text(diverging.replace("lr = 1000.0", "lr = 0.001"))
    said.clear()
    third = run_experiment(cfg, out, device="cpu", log=said.append)
    assert "[mini] boom fold0-seed1: training" in said
    assert third["failed"] == [] and third["variants"]["boom"]["runs"]
    listed, md = failures_listed()
    assert listed == [] and "## Failed runs" not in md
    assert not (table / "runs" / "boom" / "fold0-seed1" / "failed.json").exists()


def test_a_failed_run_being_trained_again_is_no_longer_listed_as_failed(
    synth_file: Path, tmp_path: Path
):
    """A failed run kept its failed.json while a runner trained it again: another runner,
    skipping it as held, listed it as failed and exited 1 naming it, and so did every
    table after that retry was interrupted."""
    from innpar_freia.train import SilentCallbacks

    cfg = tmp_path / "mini.toml"
    cfg.write_text(diverging_run(synth_file))
    out = tmp_path / "out"
    first = run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["boom"])
    assert [f["variant"] for f in first["failed"]] == ["boom"]
    failed_json = out / "mini" / "runs" / "boom" / "fold0-seed1" / "failed.json"
    assert failed_json.exists()

    class Interrupt(SilentCallbacks):
        def on_batch(self, *args) -> None:
            assert not failed_json.exists()  # what a runner skipping it now reads
            raise KeyboardInterrupt

    cfg.write_text(diverging_run(synth_file).replace("lr = 1000.0", "lr = 0.001"))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(
            cfg, out, device="cpu", log=lambda s: None, only=["boom"], callbacks=Interrupt()
        )
    assert not failed_json.exists()
    assert run_experiment(cfg, out, device="cpu", log=lambda s: None, only=["a"])["failed"] == []


def test_the_runner_s_last_line_names_the_failed_runs_of_every_experiment_it_ran(
    synth_file: Path, tmp_path: Path
):
    """A later experiment that stopped with an error (here a data file that is not there)
    ended the command with its error alone: the runs of the experiments before it whose
    training had failed were named nowhere but in their tables. And a command whose --only
    left out a failed run named that run as its own failure, though it had not tried it."""
    from click.testing import CliRunner

    spec = importlib.util.spec_from_file_location("run_script", ROOT / "experiments" / "run.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    first = tmp_path / "mini.toml"
    first.write_text(diverging_run(synth_file))
    second = tmp_path / "other.toml"
    second.write_text(
        first.read_text()
        .replace('name = "mini"', 'name = "other"')
        .replace(str(synth_file), str(tmp_path / "missing.h5"))
    )
    out = tmp_path / "out"
    common = ["--out", str(out), "--device", "cpu", "--quiet"]
    result = CliRunner().invoke(script.main, [str(first), str(second), *common, "--only", "boom"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    error = result.output.split("Error: ")[1]
    assert error.startswith(f"{second}: data file {tmp_path / 'missing.h5'} not found")
    assert f"; before it, {first}: 1 run failed in training (boom fold0-seed1)" in error
    assert error.count("\n") == 1
    # --only a: the table still lists boom's failure, but this command did not try it.
    result = CliRunner().invoke(script.main, [str(first), *common, "--only", "a"])
    assert result.exit_code == 0 and "failed in training" not in result.output, result.output
    md = (out / "mini" / "results.md").read_text()
    assert "- boom fold0-seed1: loss became nan" in md.split("## Failed runs")[1]
