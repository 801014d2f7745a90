"""Tests that pin what a mutation audit of how the experiment runner scores its runs and
gathers its table (innpar_freia.experiments: _evaluate_run, scorings, scored_with,
scoring_diffs, finished_records) found unguarded: each one fails when the bug named in its
docstring is put into the package.

The runs here are the ``tiny`` preset trained for one epoch on small synthetic files
(seconds); the tests of finished_records train nothing: their records are written by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from innpar_freia.errors import ConfigError
from innpar_freia.evaluate import evaluate
from innpar_freia.experiments import load_experiment, run_experiment

EXPERIMENT = """
name = "mini"
[data]
file = "{data}"
[protocol]
test_folds = [0]
seeds = [1]
evaluate = [{evaluate}]
checkpoints = [{checkpoints}]
calibration = "offset-scale"
[base]
preset = "tiny"
train = {{ epochs = 1, batch_size = 32 }}
[[extra_eval]]
name = "other"
file = "{other}"
"""


def quiet(s: str) -> None:
    pass


@pytest.fixture(scope="module")
def other_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two window files of other people, of different sizes, to score runs on."""
    from innpar_freia.data.synthetic import synthesize_dataset

    folder = tmp_path_factory.mktemp("other")
    return (
        synthesize_dataset(folder / "other.h5", subjects=4, minutes=1.0, seed=11),
        synthesize_dataset(folder / "bigger.h5", subjects=6, minutes=1.0, seed=12),
    )


def experiment(tmp_path: Path, data: Path, other: Path, **kw: str) -> Path:
    cfg = tmp_path / "mini.toml"
    settings = {"evaluate": '"test"', "checkpoints": '"best"', **kw}
    cfg.write_text(EXPERIMENT.format(data=data, other=other, **settings))
    return cfg


def only_run(results: dict) -> dict:
    (run,) = results["variants"]["base"]["runs"]
    return run


# --------------------------------------------------------------------------------------
# Scoring a finished run again (_evaluate_run, scorings)
# --------------------------------------------------------------------------------------


def test_an_edited_calibration_rescores_old_records_and_extra_evals(
    synth_file: Path, tmp_path: Path, other_files
):
    """A record from before records kept their 'scoring' is read from its eval files, and
    an [[extra_eval]] is scored with the protocol's calibration too. Mutants looked only at
    the record (the old run kept its offset-scale numbers under "offset") or left the
    calibration out of the extra_eval's scoring (its tables kept the old one)."""
    other, _ = other_files
    cfg = experiment(tmp_path, synth_file, other)
    out = tmp_path / "out"
    run_dir = Path(only_run(run_experiment(cfg, out, device="cpu", log=quiet))["run_dir"])
    done = run_dir / "done.json"
    record = json.loads(done.read_text())
    del record["scoring"]  # as an older runner wrote it
    done.write_text(json.dumps(record))

    cfg.write_text(cfg.read_text().replace('"offset-scale"', '"offset"'))
    logs: list[str] = []
    run = only_run(run_experiment(cfg, out, device="cpu", log=logs.append))
    best = run_dir / "checkpoints" / "best.pt"
    for label, file, split in (("test", synth_file, "test"), ("other", other, "all")):
        metrics, _ = evaluate(best, file, split, calibration="offset")
        scored = run["evaluations"][f"{label}/best"]["cal_wave_mae"]
        assert scored == pytest.approx(metrics["calibrated"]["waveform"]["mae"]), label
        assert any(
            f"{label}/best was scored with calibration 'offset-scale', now 'offset'" in s
            for s in logs
        ), logs


def test_each_evaluation_remembers_its_windows(synth_file: Path, tmp_path: Path, other_files):
    """Every evaluation of a run keeps how it was scored, so an [[extra_eval]] given
    another file is scored again at every checkpoint, and the log says why ("other
    windows"). A mutant kept the scoring of the last evaluation only: other/best kept the
    old file's numbers."""
    from innpar_freia.data.store import read_info

    other, bigger = other_files
    cfg = experiment(tmp_path, synth_file, other, checkpoints='"best", "last"')
    out = tmp_path / "out"
    run_experiment(cfg, out, device="cpu", log=quiet)
    cfg.write_text(cfg.read_text().replace(str(other), str(bigger)))
    logs: list[str] = []
    run = only_run(run_experiment(cfg, out, device="cpu", log=logs.append))
    n = read_info(bigger).n_windows
    assert n != read_info(other).n_windows
    assert run["evaluations"]["other/best"]["n_windows"] == n
    assert run["evaluations"]["other/last"]["n_windows"] == n
    assert any("other/best was scored with other windows: scoring it again" in s for s in logs)


def test_each_score_is_of_its_own_split_and_checkpoint(
    synth_file: Path, tmp_path: Path, other_files
):
    """val/epoch-0001 is the score of the weights after epoch 1 on the validation fold,
    test/last that of the last weights on the test fold, and so on (nested folds:
    validation fold 1 for test fold 0). Mutants scored every label on the test split (the
    val tables showed the test numbers), or every checkpoint's label with last.pt."""
    cfg = experiment(
        tmp_path,
        synth_file,
        other_files[0],
        evaluate='"val", "test"',
        checkpoints='"epoch-0001", "last"',
    )
    cfg.write_text(cfg.read_text().replace("epochs = 1,", "epochs = 2, keep_checkpoints = [1],"))
    run = only_run(run_experiment(cfg, tmp_path / "out", device="cpu", log=quiet))
    maes = {}
    for checkpoint in ("epoch-0001", "last"):
        weights = Path(run["run_dir"]) / "checkpoints" / f"{checkpoint}.pt"
        for split in ("val", "test"):
            metrics, _ = evaluate(weights, synth_file, split, calibration="offset-scale")
            maes[split, checkpoint] = metrics["calibration_free"]["waveform"]["mae"]
            scored = run["evaluations"][f"{split}/{checkpoint}"]["wave_mae"]
            assert scored == pytest.approx(maes[split, checkpoint]), (split, checkpoint)
    assert len({round(mae, 6) for mae in maes.values()}) == 4  # four different numbers


def test_without_a_validation_split_the_test_split_is_scored_and_val_refused(
    synth_file: Path, tmp_path: Path, other_files
):
    """With val_fold = -1 a run has no validation split: its test split is still scored (a
    mutant skipped every score of such a run: an empty table), and an extra_eval on "val"
    is refused when the experiment is read, as protocol evaluate "val" is (it was skipped
    without a word, its tables missing)."""
    cfg = experiment(tmp_path, synth_file, other_files[0], checkpoints='"last"')
    text = cfg.read_text().replace("seeds = [1]", "seeds = [1]\nval_fold = -1")
    cfg.write_text(text + 'split = "test"\n')
    run = only_run(run_experiment(cfg, tmp_path / "out", device="cpu", log=quiet))
    assert set(run["evaluations"]) == {"test/last", "other/last"}
    assert run["evaluations"]["test/last"]["n_windows"] > 0
    cfg.write_text(text + 'split = "val"\n')
    with pytest.raises(ConfigError, match=re.escape('scores split "val", but val_fold = -1')):
        load_experiment(cfg)


# --------------------------------------------------------------------------------------
# How an evaluation was scored (scored_with): files it cannot read
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "known"),
    [
        ("{not json", {}),
        ("[1, 2]", {}),
        ('{"split": "test", "calibrated": {"waveform": {}}}', {"split": "test"}),
        ('{"split": 3, "calibrated": {"calibration": "offset"}}', {"calibration": "offset"}),
    ],
)
def test_an_unreadable_eval_file_says_only_what_it_can(tmp_path: Path, text: str, known: dict):
    """An eval file that is not JSON, not a table, or older than calibrated.calibration
    tells what it holds and no more, without stopping the runner. Mutants raised on it
    (JSONDecodeError, AttributeError, KeyError) or took a null 'scoring' entry of the record
    for a scoring."""
    from innpar_freia.experiments import scored_with

    (tmp_path / "eval-test-best.json").write_text(text)
    assert scored_with({}, "test/best", tmp_path) == known
    assert scored_with({"scoring": {"test/best": None}}, "test/best", tmp_path) == known


# --------------------------------------------------------------------------------------
# The table's rows (finished_records), from records written by hand
# --------------------------------------------------------------------------------------


def by_hand(tmp_path: Path):
    """An experiment of one variant ("a"), test folds 0 and 1, seed 1, scoring test/best
    with offset-scale."""
    from innpar_freia.experiments import PROTOCOL_DEFAULTS, Experiment, Variant

    protocol = {**PROTOCOL_DEFAULTS, "test_folds": [0, 1], "seeds": [1]}
    return Experiment(
        tmp_path / "mini.toml",
        "mini",
        "by hand",
        {"file": "x.h5"},
        protocol,
        [Variant("a", "", "tiny", {}, {})],
    )


def row(fold: int, calibration: str = "offset-scale", **evaluations: float) -> dict:
    evaluations = evaluations or {"test/best": 1.0 + fold}
    return {
        "variant": "a",
        "test_fold": fold,
        "seed": 1,
        "evaluations": {k.replace("_", "/"): {"wave_mae": v} for k, v in evaluations.items()},
        "scoring": {
            k.replace("_", "/"): {"calibration": calibration, "split": "test"} for k in evaluations
        },
    }


def on_disk(out: Path, record: dict) -> None:
    run_dir = out / "runs" / "a" / f"fold{record['test_fold']}-seed1"
    run_dir.mkdir(parents=True)
    (run_dir / "done.json").write_text(json.dumps(record))


def test_a_left_out_score_says_whether_it_can_be_scored_again(tmp_path: Path):
    """A stale score of a run on disk is left out "until it is scored again" (rerunning
    the runner does), one of a kept row whose run is gone "(its run is gone)" (it never
    will be). A mutant swapped the two notes, and told the user to rerun in vain."""
    from innpar_freia.experiments import finished_records

    out = tmp_path / "out"
    on_disk(out, row(0, "offset"))
    table = {"variants": {"a": {"runs": [row(1, "offset")]}}}
    (out / "results.json").write_text(json.dumps(table))
    notes: list[str] = []
    records = finished_records(by_hand(tmp_path), out, tmp_path / "x.h5", log=notes.append)
    assert [(r["test_fold"], r["evaluations"]) for r in records] == [(0, {}), (1, {})]
    (disk,) = [n for n in notes if "fold0-seed1" in n]
    (kept,) = [n for n in notes if "fold 1 seed 1" in n]
    assert disk.endswith("left out until it is scored again")
    assert kept.endswith("left out (its run is gone)")


def test_scores_the_experiment_no_longer_asks_for_do_not_stop_it(tmp_path: Path):
    """An [[extra_eval]] removed from the file (or a split no longer evaluated) leaves its
    scores in old records and rows; the table is still gathered. A mutant looked their
    label up among today's scorings and stopped the runner with a KeyError."""
    from innpar_freia.experiments import finished_records

    out = tmp_path / "out"
    on_disk(out, row(0, test_best=1.0, bcg_best=5.0))
    table = {"variants": {"a": {"runs": [row(1, test_best=2.0, val_best=3.0)]}}}
    (out / "results.json").write_text(json.dumps(table))
    records = finished_records(by_hand(tmp_path), out, tmp_path / "x.h5", log=quiet)
    assert [r["evaluations"]["test/best"]["wave_mae"] for r in records] == [1.0, 2.0]


@pytest.mark.parametrize(
    "text",
    [
        "{ half written",
        "[]",
        '{"variants": {"a": {"runs": [ROW]}, "b": {"runs": 5}}}',
    ],
)
def test_an_unreadable_table_stops_the_runner_and_is_left_as_it_is(tmp_path: Path, text: str):
    """A results.json that cannot be read (not JSON, not a table, a part of it malformed: a
    merge conflict in the versioned table) holds the rows of runs whose folders are gone.
    Guards against rewriting it from the runs on disk, which dropped those rows without a
    word (and earlier mutants stopped on it with an AttributeError or TypeError traceback):
    the runner stops, naming the table and what to do, and leaves it as it was."""
    from innpar_freia.experiments import finished_records

    out = tmp_path / "out"
    on_disk(out, row(0))
    damaged = text.replace("ROW", json.dumps(row(1)))
    (out / "results.json").write_text(damaged)
    with pytest.raises(ConfigError) as err:
        finished_records(by_hand(tmp_path), out, tmp_path / "x.h5", log=quiet)
    message = str(err.value)
    assert message.startswith(f"the results table {out / 'results.json'} is damaged (")
    assert message.endswith(
        "it holds the rows of runs whose folders may be gone: restore it (git checkout it), "
        "or remove it to rebuild the table from the runs on disk"
    )
    assert (out / "results.json").read_text() == damaged


def test_a_run_another_runner_is_training_is_not_a_finished_run(tmp_path: Path):
    """Several runner processes share one table: a run folder another one is still
    training (no done.json yet) is not a row, and gathering the table does not stop on it.
    A mutant took any run folder for a finished run and failed on its missing done.json."""
    from innpar_freia.experiments import finished_records

    out = tmp_path / "out"
    on_disk(out, row(0))
    (out / "runs" / "a" / "fold1-seed1" / "checkpoints").mkdir(parents=True)
    records = finished_records(by_hand(tmp_path), out, tmp_path / "x.h5", log=quiet)
    assert [r["test_fold"] for r in records] == [0]
