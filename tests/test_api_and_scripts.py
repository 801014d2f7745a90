"""The Python API and the analysis scripts the README cites, used as a researcher uses them:
``load_checkpoint``, ``innpar plot training``, ``experiments/*.py``."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from innpar_freia.experiments import run_experiment

ROOT = Path(__file__).resolve().parents[1]

# Two seeds on the file's split column: no test_folds, so the runs are named seed1, seed2.
SPLIT_COLUMN_EXPERIMENT = """
name = "column"
description = "two seeds on the file's split column"
[data]
file = "{data}"
[protocol]
seeds = [1, 2]
evaluate = ["val"]
checkpoints = ["last"]
[base]
preset = "tiny"
train = {{ epochs = 1, batch_size = 32 }}
[[variants]]
name = "a"
"""


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_ensemble_averages_seeds_trained_on_the_split_column(
    synth_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An experiment without test folds (the file's train/val/test column) has its seeds in
    run directories seed1, seed2: they score the same windows and are averaged."""
    cfg = tmp_path / "column.toml"
    cfg.write_text(SPLIT_COLUMN_EXPERIMENT.format(data=synth_file))
    run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    results = tmp_path / "out" / "column"
    assert sorted(p.name for p in (results / "runs" / "a").iterdir()) == ["seed1", "seed2"]
    script = _script("seed_ensemble")
    assert script.main([str(results), "a", "--data", str(synth_file)]) == 0
    out = capsys.readouterr().out
    assert "mean of 2" in out and "difference (folds won)" in out
    assert "seed1" in out and "seed2" in out


@pytest.mark.parametrize(
    "name", ["seed_ensemble", "level_error", "ppg_information", "loader_benchmark"]
)
def test_the_scripts_run_the_checkout_they_are_in(name: str, tmp_path: Path) -> None:
    """``python experiments/X.py`` imports this checkout's innpar_freia, not whichever one
    is installed (another checkout's, or none): site-packages without its .pth files, so
    that an editable install elsewhere cannot supply the package."""
    import site
    import subprocess
    import sys

    paths = [*site.getsitepackages(), site.getusersitepackages()]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(paths)}
    script = ROOT / "experiments" / f"{name}.py"
    cmd = [sys.executable, "-S", str(script), "--help"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_plot_training_of_a_run_after_its_first_epoch_draws_every_series(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run still in its second epoch has one record: every curve of the legend must show
    (a lone point drawn as a line is invisible), on whole-numbered epochs."""
    import json

    import numpy as np

    from innpar_freia import plots
    from tests.helpers import run_cli

    figures = []
    real = plots.save_figure
    monkeypatch.setattr(
        plots, "save_figure", lambda fig, path: figures.append(fig) or real(fig, path)
    )
    run = tmp_path / "run"
    run.mkdir()
    record = {
        "epoch": 1,
        "train_loss": 0.24,
        "train_inverse_loss": 0.5,
        "val_loss": 0.067,
        "val_mae": 22.3,
        "val_sbp_mae": 26.3,
        "val_dbp_mae": 33.6,
        "val_map_mae": 13.1,
        "best_epoch": 1,
    }
    # and the next epoch's line, cut by the write that is still going on
    (run / "metrics.jsonl").write_text(json.dumps(record) + '\n{"epoch": 2, "train_lo')
    result = run_cli("plot", "training", run, "--out", tmp_path / "t.png")
    assert result.exit_code == 0, result.output
    (fig,) = figures
    assert {"SBP", "DBP", "MAP"} <= {line.get_label() for line in fig.axes[1].get_lines()}
    for ax in fig.axes:
        lines = ax.get_lines()
        labels = {line.get_label() for line in lines if not line.get_label().startswith("_")}
        drawn = {
            line.get_label()
            for line in lines
            if line.get_marker() not in (None, "", " ", "None")
            or np.isfinite(np.asarray(line.get_ydata(), dtype=float)).sum() > 1
        }
        assert labels <= drawn, (ax.get_title(loc="left"), labels - drawn)
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_load_checkpoint_of_a_run_directory_says_where_its_checkpoints_are(
    tmp_path: Path,
) -> None:
    """The README loads runs/a/checkpoints/best.pt; given runs/a itself, the error must not
    claim that a folder that is there was not found."""
    from innpar_freia import load_checkpoint
    from innpar_freia.errors import CheckpointError

    run = tmp_path / "a"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="is a directory") as err:
        load_checkpoint(run)
    assert "not found" not in str(err.value)
    assert "checkpoints/best.pt" in str(err.value)


def test_ppg_information_on_one_subject_has_no_between_subject_correlation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One person's windows: the within-subject r is measured, the between-subject one is
    undefined and shown as nan, without numpy's warnings in the middle of the table."""
    import warnings

    from innpar_freia.data.synthetic import synthesize_dataset

    data = synthesize_dataset(tmp_path / "one.h5", subjects=1, minutes=1.0, seed=0)
    script = _script("ppg_information")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert script.main([str(data)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert len(rows) == 4
    for row in rows:
        cells = row[34:].split()  # "between / within" for SBP, DBP, MAP
        assert cells[0::3] == ["nan"] * 3 and all(c != "nan" for c in cells[2::3]), row


def test_evaluate_with_a_test_fold_given_as_text_names_the_type(
    tiny_run: Path, synth_file: Path
) -> None:
    """test_fold="3" (read from a text file, say) is not fold 3: the error said "test fold 3
    is not in FILE (folds: 0, 1, 2, 3, 4)", contradicting itself."""
    from innpar_freia.evaluate import evaluate

    best = tiny_run / "checkpoints" / "best.pt"
    with pytest.raises(TypeError, match=r"test_fold must be a whole number, not '3'"):
        evaluate(best, synth_file, "test", test_fold="3")


# A stand-in for the GPU machine's Python: the CUDA check passes, and benchmark.py --out
# refuses an existing report without --force, as the real one does.
FAKE_PYTHON = """#!/bin/bash
echo "$*" >> "$FAKE_LOG"
case "$1" in
    -c) echo "python 3 | torch fake | cuda fake"; exit 0;;
    -m) exit 0;;
esac
out=""; force=0
while [ $# -gt 0 ]; do
    case "$1" in --out) out=$2; shift;; --force) force=1;; esac
    shift
done
if [ -d "$out" ]; then  # the runner's results folder
    mkdir -p "$out/cuda-amp-c2015" && echo "run $FAKE_RUN" > "$out/cuda-amp-c2015/results.md"
elif [ -n "$out" ]; then
    if [ -e "$out" ] && [ $force = 0 ]; then
        echo "output exists: $out; pass --force" >&2
        exit 1
    fi
    echo "run $FAKE_RUN" > "$out"
fi
"""


def _fake_tool(bin_: Path, name: str, text: str) -> None:
    bin_.mkdir(exist_ok=True)
    (bin_ / name).write_text(text)
    (bin_ / name).chmod(0o755)


def _cuda_check(tmp_path: Path, *args: str, run: int = 1):
    """experiments/cuda_check.sh ARGS in a fake GPU machine: a checkout in ``tmp_path/repo``
    with the data file, a Python whose torch sees CUDA, and nvidia-smi."""
    import os
    import subprocess

    repo, bin_ = tmp_path / "repo", tmp_path / "bin"
    if not repo.exists():
        (repo / "experiments" / "data").mkdir(parents=True)
        (repo / "experiments" / "data" / "challenge2015.h5").write_bytes(b"")
        _fake_tool(bin_, "python", FAKE_PYTHON)
        _fake_tool(bin_, "nvidia-smi", "#!/bin/sh\necho fake GPU\n")
    env = {
        "PATH": f"{bin_}:{os.environ['PATH']}",
        "PYTHON": str(bin_ / "python"),
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_RUN": str(run),
    }
    script = ROOT / "experiments" / "cuda_check.sh"
    return subprocess.run(
        ["bash", str(script), *args], cwd=repo, env=env, capture_output=True, text=True
    )


def test_cuda_check_refuses_a_results_folder_that_holds_a_run_unless_forced(
    tmp_path: Path,
) -> None:
    """A second run into the same RESULTS_DIR lost its benchmarks (benchmark.py refused the
    old --out file) while env.txt and the logs were overwritten: a scarce GPU slot spent on a
    mix of two runs. It must be refused before any step, or with --force replace them all."""
    res = tmp_path / "res"
    first = _cuda_check(tmp_path, str(res), run=1)
    assert first.returncode == 0, first.stderr
    assert (res / "benchmark-cuda.json").read_text() == "run 1\n"
    before = {p.name: p.read_bytes() for p in res.iterdir()}
    calls = (tmp_path / "calls.log").read_text()

    again = _cuda_check(tmp_path, str(res), run=2)
    assert again.returncode == 1
    assert again.stderr.splitlines() == [
        f"cuda_check: {res} already holds the results of a run (env.txt benchmark-cuda.log "
        "benchmark-cuda.json cuda-amp.log cuda-amp.tgz pytest-cuda.log "
        "benchmark-cuda-compile.log benchmark-cuda-compile.json); give another folder, or "
        "--force to replace them"
    ]
    assert {p.name: p.read_bytes() for p in res.iterdir()} == before
    assert (tmp_path / "calls.log").read_text() == calls  # nothing was run

    forced = _cuda_check(tmp_path, "--force", str(res), run=3)
    assert forced.returncode == 0, forced.stderr
    assert (res / "benchmark-cuda.json").read_text() == "run 3\n"
    assert (res / "benchmark-cuda-compile.json").read_text() == "run 3\n"
    # The amp runs go to a new folder each time, not experiments/results/, where a warm
    # machine kept the last call's runs and the next call skipped them as finished.
    amp = [
        line.split("--out ")[1].split()[0]
        for line in (tmp_path / "calls.log").read_text().splitlines()
        if "cuda_amp_c2015.toml" in line
    ]
    assert len(amp) == 2 and amp[0] != amp[1], amp
    assert all("experiments/results" not in a for a in amp)
    import tarfile

    with tarfile.open(res / "cuda-amp.tgz") as tar:
        packed = tar.extractfile("./cuda-amp-c2015/results.md").read()
    assert packed == b"run 3\n"


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_cuda_check_stops_at_once_when_results_dir_cannot_be_a_folder(
    tmp_path: Path, where: str
) -> None:
    """A RESULTS_DIR that is a file ran all four steps, each failing with "Not a directory":
    one line and exit 1 before any check or step, the file left as it was."""
    taken = tmp_path / "taken"
    taken.write_text("mine\n")
    res = taken if where == "file" else taken / "res"
    done = _cuda_check(tmp_path, str(res))
    assert done.returncode == 1
    expected = (
        f"{taken} is not a folder; give a folder for the results"
        if where == "file"
        else f"cannot create {res}: {taken} is not a folder"
    )
    assert done.stderr.splitlines() == [f"cuda_check: {expected}"]
    assert done.stdout == ""
    assert not (tmp_path / "calls.log").exists()
    assert taken.read_text() == "mine\n"


def test_cuda_check_stops_at_once_when_results_dir_is_not_writable(tmp_path: Path) -> None:
    """A RESULTS_DIR that cannot be written ran every step, each failing on its log: one
    line and exit 1 before any check or step. (Tests run as root, who writes everywhere:
    a mktemp that fails, as it does in a read-only folder, stands in for it.)"""
    _fake_tool(tmp_path / "bin", "mktemp", "#!/bin/sh\nexit 1\n")
    res = tmp_path / "res"
    res.mkdir()
    done = _cuda_check(tmp_path, str(res))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"cuda_check: cannot write in {res}"]
    assert done.stdout == "" and list(res.iterdir()) == []
    assert not (tmp_path / "calls.log").exists()


# Two seeds on test fold 0 without a validation split, as the anchor_*.toml configs train.
NO_VALIDATION_EXPERIMENT = (
    SPLIT_COLUMN_EXPERIMENT.replace('name = "column"', 'name = "noval"')
    .replace('description = "two seeds on the file\'s split column"\n', "")
    .replace("[protocol]\n", "[protocol]\ntest_folds = [0]\nval_fold = -1\n")
    .replace('evaluate = ["val"]', 'evaluate = ["test"]')
)


@pytest.fixture(scope="module")
def no_val_results(synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results folder of an experiment whose runs had no validation split."""
    tmp = tmp_path_factory.mktemp("noval")
    cfg = tmp / "noval.toml"
    cfg.write_text(NO_VALIDATION_EXPERIMENT.format(data=synth_file))
    run_experiment(cfg, tmp / "out", device="cpu", log=lambda s: None)
    return tmp / "out" / "noval"


@pytest.mark.parametrize("name", ["level_error", "seed_ensemble"])
def test_analysis_scripts_on_runs_without_validation_give_advice_that_works(
    name: str, no_val_results: Path, synth_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default --split val on runs trained with val_fold = -1 said "use --split all",
    which these scripts refuse (and which would score the runs' training windows): the
    advice must be a split that the script takes and that works."""
    from innpar_freia.experiments import script_main

    main = _script(name).main
    args = [str(no_val_results), "a", "--data", str(synth_file)]
    assert script_main(main, args) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: {synth_file}: the val split is empty: the run was trained without one "
        "(val_fold = -1); score --split test"
    ]
    assert script_main(main, [*args, "--split", "test"]) == 0
    assert "test split" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["level_error", "seed_ensemble"])
@pytest.mark.parametrize("case", ["missing", "config", "file", "misspelt", "tables only"])
def test_analysis_scripts_say_why_a_variant_has_no_runs(
    name: str,
    case: str,
    no_val_results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ "no finished run under X/runs/Y" was said for a results folder that is not there, a
    config or other file given in its place, and a misspelt variant: the message must say
    which, and list the variants that are there."""
    results, variant = no_val_results, "a"
    if case == "missing":
        results = tmp_path / "nowhere"
        expected = f"no results folder {results}: give an experiment's results folder"
    elif case in ("config", "file"):
        results = tmp_path / ("noval.toml" if case == "config" else "notes.txt")
        results.write_text("")
        what = "an experiment's config" if case == "config" else "a file"
        expected = f"{results} is {what}, not a results folder: give an experiment's"
    elif case == "misspelt":
        variant = "A"
        expected = f"no variant 'A' in {results / 'runs'}; it has a"
    else:  # as the repository has them: results.json and results.md, no runs/
        results = tmp_path / "versioned"
        results.mkdir()
        (results / "results.md").write_text("")
        expected = f"{results} holds no runs (no runs/ folder with a variant)"
    with pytest.raises(SystemExit) as exit_:
        _script(name).main([str(results), variant])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {expected}" in err
    assert "no finished run" not in err and "Traceback" not in err


def test_an_unreadable_checkpoint_is_not_called_corrupt(
    no_val_results: Path,
    synth_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A checkpoint this user may not read was reported as "corrupt or another format:
    [Errno 13] Permission denied": a user would delete a good file. (Tests run as root, who
    reads every file: torch.load fails as open() does for another user.)"""
    import errno
    import os

    import torch

    from innpar_freia.experiments import script_main

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(torch, "load", denied)
    args = [str(no_val_results), "a", "--data", str(synth_file), "--split", "test"]
    assert script_main(_script("level_error").main, args) == 1
    first = no_val_results / "runs" / "a" / "fold0-seed1" / "checkpoints" / "last.pt"
    assert capsys.readouterr().err.splitlines() == [
        f"error: cannot read {first}: Permission denied"
    ]


def test_loader_benchmark_refuses_more_threads_than_cores_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--threads had no upper bound: 1000 on 2 cores ran for minutes, and 100000 reported a
    good file as corrupt. It must be refused, naming the limit, before any data is made."""
    script = _script("loader_benchmark")
    monkeypatch.setattr(script, "_cores", lambda: 2)

    def no_work(*args, **kwargs):
        raise AssertionError("data was made before --threads was checked")

    monkeypatch.setattr(script, "synthesize_dataset", no_work)
    with pytest.raises(SystemExit) as exit_:
        script.main(["--threads", "3"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --threads: 3 is above the 2 CPU cores this process may use" in err


def test_loader_benchmark_refuses_more_workers_than_training_takes_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--workers had no upper bound: each worker is a process. It must be refused above
    what training takes (num_workers <= 256), naming the limit, before any data is made;
    256 itself is accepted by the parser."""
    script = _script("loader_benchmark")

    def no_work(*args, **kwargs):
        raise AssertionError("data was made before --workers was checked")

    monkeypatch.setattr(script, "synthesize_dataset", no_work)
    with pytest.raises(SystemExit) as exit_:
        script.main(["--workers", "0", "257"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --workers: 257 is above 256, the most DataLoader workers training takes" in err
    with pytest.raises(AssertionError, match="data was made"):
        script.main(["--workers", "256"])


def test_loader_benchmark_errors_on_its_synthetic_data_name_no_deleted_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --data the errors named the temporary file the benchmark made and deleted
    ("test fold 9 is not in /tmp/tmpuxddmm0x/bench.h5"): they must name the synthetic data."""
    from innpar_freia.experiments import script_main

    script = _script("loader_benchmark")
    assert script_main(script._cli, ["--test-fold", "9"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: test fold 9 is not in the synthetic data (folds: 0, 1, 2, 3, 4)"
    ]


@pytest.mark.parametrize("sizes", ["1,8,100000000", "99999999999999999999999"])
def test_benchmark_checks_every_batch_size_before_the_first_measurement(
    sizes: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch sizes were only tried in turn: 1,8,100000000 failed with "can't allocate
    250000000000 bytes" after minutes of measuring 1 and 8, and a 23-digit size with the last
    line of a C++ stack dump. The list must be refused at once, naming the limit."""
    from click.testing import CliRunner

    script = _script("benchmark")

    def no_measurement(*args, **kwargs):
        raise AssertionError("measured before every batch size was checked")

    monkeypatch.setattr(script, "measure", no_measurement)
    monkeypatch.setattr(script.subprocess, "run", no_measurement)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(script.main, ["--batch-sizes", sizes, "--out", str(out)])
    assert result.exit_code == 2, result.output
    bad = ", ".join(b for b in sizes.split(",") if not 1 <= int(b) <= 4096)
    assert "Invalid value for --batch-sizes: batch sizes must be 1 to 4096" in result.output
    assert f"not {bad}" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_api_rates_and_options_that_are_not_what_they_should_be_are_one_clear_error(
    tiny_run: Path, tmp_path: Path
) -> None:
    """A NaN or zero rate was "the windows are at nan Hz, but ..." in predict_abp and
    "cannot convert float NaN to integer" in reconstruct_array; reconstruct_file given a
    dict of options ended in "AttributeError: 'dict' object has no attribute 'direction'".
    A dict of ReconstructOptions' fields is taken; others are one error naming them."""

    import numpy as np

    from innpar_freia.checkpoint import load_checkpoint
    from innpar_freia.reconstruct import reconstruct_array
    from innpar_freia.reconstruct_file import ReconstructOptions, reconstruct_file

    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    windows = np.random.default_rng(0).normal(size=(2, ckpt.window_length))
    for fs in (float("nan"), 0.0, -125.0, float("inf")):
        with pytest.raises(ValueError, match=r"fs must be a finite rate above 0 Hz, not "):
            ckpt.predict_abp(windows, fs=fs)
        with pytest.raises(ValueError, match=r"^fs must be a finite rate above 0 Hz, not "):
            reconstruct_array(np.ones(2000), fs, ckpt.predict_abp, ckpt.fs, ckpt.window_length)
    with pytest.raises(ValueError, match=r"^model_fs must be a finite rate above 0 Hz"):
        reconstruct_array(np.ones(2000), 125.0, ckpt.predict_abp, 0, ckpt.window_length)
    t = np.arange(0, 60, 1 / 125)
    ppg = np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(2 * np.pi * 2.4 * t)
    source = tmp_path / "ppg.npy"
    np.save(source, ppg)
    as_dict = reconstruct_file(ckpt, source, tmp_path / "a.csv", {"fs": 125.0, "overlap": 0.25})
    as_options = reconstruct_file(
        ckpt, source, tmp_path / "b.csv", ReconstructOptions(fs=125.0, overlap=0.25)
    )
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert as_dict["n_samples"] == as_options["n_samples"] == ppg.size
    with pytest.raises(TypeError, match=r"unknown reconstruct option\(s\) fz; the options are"):
        reconstruct_file(ckpt, source, tmp_path / "c.csv", {"fz": 125.0})
    with pytest.raises(TypeError, match=r"options must be ReconstructOptions or a mapping"):
        reconstruct_file(ckpt, source, tmp_path / "c.csv", "fs=125")
    assert not list(tmp_path.glob("c*"))


def test_a_correlation_of_two_points_is_not_shown_as_one() -> None:
    """level_error.py showed "r betw. 1.00" for a fold of 2 subjects: two points always
    correlate at +-1. Under 3 points, or with a side that does not vary, r is NaN."""
    from innpar_freia.metrics import pearson_r

    assert np.isnan(pearson_r([1.0, 2.0], [5.0, 1.0]))
    assert np.isnan(pearson_r([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert pearson_r([1.0, 2.0, 3.0], [2.0, 4.0, 6.5]) == pytest.approx(0.997949, abs=1e-6)


def test_dir_of_the_package_lists_its_lazy_exports() -> None:
    """They are imported on first use, so dir() and tab completion showed none of them."""
    import innpar_freia

    assert set(innpar_freia.__all__) <= set(dir(innpar_freia))


def test_api_arguments_of_the_wrong_kind_are_one_clear_error(
    tiny_run: Path, synth_file: Path, tmp_path: Path
) -> None:
    """Bug: seed="1" failed as "not all arguments converted during string formatting",
    subjects="8" as "'<' not supported", n=-2 in matplotlib ("figure size must be positive
    finite"), a slice as "...not object"; read_signals(D, 3) gave 1-D arrays; and
    load_checkpoint refused device="auto", which TrainConfig.device takes."""
    from innpar_freia import ModelConfig, build_model, load_checkpoint
    from innpar_freia.data.store import read_signals
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.figures import predictions_figure

    with pytest.raises(TypeError, match=r"^seed must be a whole number or None, not '1'$"):
        build_model(ModelConfig.from_preset("tiny"), seed="1")
    with pytest.raises(TypeError, match=r"^subjects must be a whole number, not '8'$"):
        synthesize_dataset(tmp_path / "s.h5", subjects="8")
    with pytest.raises(ValueError, match=r"n, the windows to draw, must be a whole number >= 1"):
        predictions_figure(tmp_path / "p.h5", "reconstructions", tmp_path / "f.png", n=-2)
    ppg, abp = read_signals(synth_file, slice(0, 3))
    assert ppg.shape[0] == abp.shape[0] == 3 and ppg.ndim == abp.ndim == 2
    for index, hint in ((3, r"; for one window, pass \[3\]"), ([[0, 1]], "")):
        with pytest.raises(TypeError, match=r"indices must be a 1-D sequence .*" + hint):
            read_signals(synth_file, index)
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt", device="auto")
    assert next(ckpt.model.parameters()).device.type in ("cpu", "cuda")


def test_api_flags_that_are_not_a_bool_are_refused_and_replace_nothing(
    tiny_run: Path, tmp_path: Path
) -> None:
    """``force="no"`` replaced a run, ``resume="no"`` resumed one, ``overwrite="no"``
    replaced a data file: a flag was taken by its truth. It is True or False (numpy's
    bools too), as ``ReconstructOptions(force=...)`` already required."""
    from innpar_freia.config import resolve_config
    from innpar_freia.data.importers import import_data
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.demo import run_demo
    from innpar_freia.reconstruct_folder import reconstruct_folder
    from innpar_freia.train import train

    before = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")}
    with pytest.raises(TypeError, match=r"^force must be True or False, not 'no'$"):
        train(resolve_config("tiny"), tiny_run.parent, tiny_run, force="no")
    with pytest.raises(TypeError, match=r"^resume must be True or False, not 'no'$"):
        train(None, tiny_run.parent, tiny_run, resume="no")
    assert {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")} == before
    data = tmp_path / "data.h5"
    data.write_bytes(b"mine")
    for fmt, flag in [
        ("wfdb", "overwrite"),
        ("csv", "skip_bad"),
        ("npz", "align"),
        ("wfdb", "qc"),
        ("bp-benchmark", "overwrite"),
        ("innpar-npy", "overwrite"),
    ]:
        with pytest.raises(TypeError, match=rf"^{flag} must be True or False, not 'no'$"):
            import_data(fmt, tmp_path / "recs", data, **{flag: "no"})
    with pytest.raises(TypeError, match=r"^overwrite must be True or False, not 1$"):
        synthesize_dataset(data, overwrite=1)
    assert data.read_bytes() == b"mine"
    with pytest.raises(TypeError, match=r"^resume must be True or False, not 'no'$"):
        reconstruct_folder(
            tiny_run / "checkpoints" / "best.pt", tmp_path, tmp_path / "o", resume="no"
        )
    demo = tmp_path / "demo"
    (demo / "data.h5").parent.mkdir()
    (demo / "data.h5").write_bytes(b"mine")
    with pytest.raises(TypeError, match=r"^force must be True or False, not 'no'$"):
        run_demo(demo, force="no")
    assert (demo / "data.h5").read_bytes() == b"mine"
    synthesize_dataset(data, subjects=3, minutes=0.5, folds=0, overwrite=np.True_)
    assert data.read_bytes() != b"mine"


def test_api_import_and_synth_refuse_numbers_outside_the_clis_ranges(tmp_path: Path) -> None:
    """From Python, import_data took every number the CLI refuses: fs=10 wrote a 10 Hz file
    the quality control cannot judge, fs=1e9 asked for 2 TiB, fs=nan and window_s=nan were
    "cannot convert float NaN to integer", max_lag_s=-1 a numpy broadcast error; synthesize
    _dataset(fs=1e7) ran for minutes. Each is one error naming the argument, its option and
    its range, before anything is read or written."""
    from innpar_freia.data.importers import import_data
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.errors import DataError

    out = tmp_path / "out.h5"
    for given, message in [
        ({"fs": 10}, "fs (--fs) is 10, not in the range 16 to 100000"),
        ({"fs": 1e9}, "fs (--fs) is 1e+09, not in the range 16 to 100000"),
        ({"fs": float("nan")}, "fs (--fs) is nan, not in the range 16 to 100000"),
        ({"window_s": float("nan")}, "window_s (--window-seconds) is nan, not in the range 0.5"),
        (
            {"window_s": 0.1, "fs": 100},
            "window_s (--window-seconds) is 0.1, not in the range 0.5 to 600",
        ),
        ({"max_lag_s": -1}, "max_lag_s (--max-lag) is -1, not in the range 0.1 to 10"),
        ({"max_lag_s": float("inf")}, "max_lag_s (--max-lag) is inf, not in the range 0.1 to 10"),
        ({"input_fs": 0}, "input_fs (--input-fs) is 0, not in the range 1 to 100000"),
    ]:
        with pytest.raises(DataError, match=rf"^{re.escape(message)}"):
            import_data("wfdb", tmp_path / "recs", out, **given)
    for fmt in ("bp-benchmark", "innpar-npy"):
        with pytest.raises(DataError, match=r"^fs \(--fs\) is 10, not in the range 16 to 100000"):
            import_data(fmt, tmp_path / "recs", out, fs=10)
    with pytest.raises(TypeError, match=r"^fs \(--fs\) must be a number, not '125'"):
        import_data("csv", tmp_path / "recs", out, fs="125")
    with pytest.raises(DataError, match=r"^fs \(--fs\) is 1e\+07, not in the range 16 to 10000"):
        synthesize_dataset(out, fs=1e7)
    with pytest.raises(DataError, match=r"^window_seconds \(--window-seconds\) is 61, not in"):
        synthesize_dataset(out, window_seconds=61)
    assert not out.exists()
