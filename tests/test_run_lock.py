"""One training per run directory: a second ``innpar train`` (new, ``--resume`` or
``--force``) on a directory that another process is training is refused at once, and a
holder killed outright (SIGKILL) leaves nothing that blocks the next run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import KILLED_RUN_CONFIG, hold_run_dir

from innpar_freia.config import resolve_config
from innpar_freia.errors import RunDirError
from innpar_freia.train import train

REPO = Path(__file__).resolve().parents[1]
BUSY = "is being trained by another process"

# `innpar ARGS`, run once the test creates the file GO: both commands have imported
# everything by then, so they reach the run directory at the same moment.
CLI_AT_ONCE = """
import sys, time
from pathlib import Path
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
import innpar_freia.train
from innpar_freia.cli import main
ready.touch()
while not go.exists():
    time.sleep(0.001)
sys.argv = ["innpar", *sys.argv[3:]]
main()
"""


def _env() -> dict[str, str]:
    # This checkout's code, whatever the installed package points at.
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def tiny(**train_kw: object):
    return resolve_config("tiny", train={"device": "cpu", **train_kw})


def epochs_logged(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines]


def test_two_trainings_started_together_one_trains_the_other_is_refused(
    synth_file: Path, tmp_path: Path
) -> None:
    run, go = tmp_path / "k1", tmp_path / "go"
    args = ["train", "--data", synth_file, "--preset", "tiny", "--epochs", "3"]
    args += ["--device", "cpu", "--out", run, "--quiet"]
    procs, ready = [], []
    for i in range(2):
        ready.append(tmp_path / f"ready{i}")
        cmd = [sys.executable, "-c", CLI_AT_ONCE, ready[i], go, *args]
        procs.append(
            subprocess.Popen(
                [str(c) for c in cmd],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(),
                cwd=tmp_path,
            )
        )
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    go.touch()
    results = [(p.pid, *p.communicate(timeout=300), p.returncode) for p in procs]
    codes = sorted(rc for *_, rc in results)
    assert codes == [0, 1], results
    (winner, *_), (_, _, err, _) = sorted(results, key=lambda r: r[3])
    assert err.count("Error:") == 1 and "Traceback" not in err, err
    assert f"{run} {BUSY} (pid {winner}); wait for it to end or choose another --out" in err
    # The winner's run, whole and alone: every epoch once, its checkpoints, nothing else.
    assert epochs_logged(run) == [1, 2, 3]
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 3
    names = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    assert names == [
        "checkpoints",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "config.json",
        "metrics.jsonl",
    ]


@pytest.fixture
def holder():
    """``hold(run)``: :func:`hold_run_dir`; the processes are SIGKILLed at the end of the
    test if the test has not killed them."""
    procs: list[subprocess.Popen] = []

    def hold(run: Path) -> subprocess.Popen:
        procs.append(hold_run_dir(run))
        return procs[-1]

    yield hold
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_a_held_run_is_not_resumed_replaced_or_trained_again(
    synth_file: Path, tmp_path: Path, holder
) -> None:
    run = tmp_path / "run"
    train(tiny(epochs=1), synth_file, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = holder(run)
    message = f"{run} {BUSY} \\(pid {proc.pid}\\); wait for it to end or choose another run_dir"
    t0 = time.monotonic()
    with pytest.raises(RunDirError, match=message):
        train(tiny(epochs=1), synth_file, run, force=True)
    with pytest.raises(RunDirError, match=message):
        train(None, synth_file, run, resume=True, resume_overrides={"epochs": 2})
    with pytest.raises(RunDirError, match=message):
        train(tiny(epochs=1), synth_file, run)
    assert time.monotonic() - t0 < 30  # refused at once, not after the data were read
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".train.lock"}
    assert after == before
    assert not list(run.glob(".replaced.*"))
    # A new folder being claimed (it holds nothing yet) is refused as well, and kept.
    fresh = tmp_path / "new" / "run"
    holder(fresh)
    with pytest.raises(RunDirError, match=BUSY):
        train(tiny(epochs=1), synth_file, fresh)
    assert fresh.is_dir()


def test_a_killed_holder_does_not_block_the_next_run(
    synth_file: Path, tmp_path: Path, holder
) -> None:
    run = tmp_path / "runs" / "k1"
    proc = holder(run)
    # As a run killed before its first epoch leaves.
    (run / "config.json").write_text(KILLED_RUN_CONFIG)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with pytest.raises(RunDirError, match="holds a run without a checkpoint"):
        train(tiny(epochs=1), synth_file, run)
    result = train(tiny(epochs=1), synth_file, run, force=True)
    assert result.epochs_completed == 1
    # The lock the killed process left is gone with the run that ended: the folder holds
    # what any finished run holds.
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.json", "metrics.jsonl"]
    # A new run in a folder that the killed holder made and left otherwise empty trains too.
    empty = tmp_path / "runs" / "k2"
    proc = holder(empty)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    train(tiny(epochs=1), synth_file, empty)
    assert epochs_logged(empty) == [1]


def _mini(tmp_path: Path, synth_file: Path) -> Path:
    """An experiment of one variant, `tiny` for 1 epoch, on test folds 0 and 1."""
    cfg = tmp_path / "mini.toml"
    cfg.write_text(
        f'name = "mini"\ndescription = "t"\n[data]\nfile = "{synth_file}"\n[protocol]\n'
        'test_folds = [0, 1]\nseeds = [1]\nevaluate = ["test"]\ncheckpoints = ["best"]\n'
        'reference = "a"\n[base]\npreset = "tiny"\ntrain = { epochs = 1, batch_size = 32 }\n'
        '[[variants]]\nname = "a"\n'
    )
    return cfg


def test_a_runner_skips_a_run_another_process_holds_and_trains_the_rest(
    synth_file: Path, tmp_path: Path, holder
) -> None:
    """Two runners on one experiment: the second does not train the run the first is
    training (not train it again with force=True, setting the first's files aside), and
    leaves its folder; it trains the other runs, says which it skipped, and writes a table
    of what is finished. Once the first has gone, the run trains."""
    from innpar_freia.experiments import run_experiment

    cfg = _mini(tmp_path, synth_file)
    out = tmp_path / "out"
    run = out / "mini" / "runs" / "a" / "fold0-seed1"
    proc = holder(run)  # the first runner's run, starting
    said: list[str] = []
    results = run_experiment(cfg, out, device="cpu", log=said.append)
    assert [p.name for p in run.iterdir()] == [".train.lock"]  # its folder stays
    assert [r["test_fold"] for r in results["variants"]["a"]["runs"]] == [1]
    assert f"a fold0-seed1: being trained by another process (pid {proc.pid}); skipped" in (
        "\n".join(said)
    )
    assert "not in the table yet, being trained by other processes: a fold0-seed1." in said[-1]
    assert not (out / "mini" / ".results.lock").exists()  # a results folder is versioned
    proc.kill()
    proc.wait(timeout=30)
    said.clear()
    results = run_experiment(cfg, out, device="cpu", log=said.append)
    assert sorted(r["test_fold"] for r in results["variants"]["a"]["runs"]) == [0, 1]
    assert not (run / ".train.lock").exists() and (run / "done.json").is_file()
    assert not any("not in the table" in line for line in said)


def test_a_run_being_trained_with_another_recipe_is_skipped_not_called_stale(
    synth_file: Path, tmp_path: Path, holder
) -> None:
    """A run that another process is training with another recipe (a runner of an edited
    config, an innpar train) was judged by what it held so far: "made with another
    configuration ... delete it", of a folder another process was writing."""
    from innpar_freia.experiments import run_experiment

    cfg = _mini(tmp_path, synth_file)
    out = tmp_path / "out"
    run = out / "mini" / "runs" / "a" / "fold0-seed1"
    train(tiny(epochs=1, lr=0.002, test_fold=0), synth_file, run)  # so far, another recipe
    proc = holder(run)  # ... and still training
    said: list[str] = []
    results = run_experiment(cfg, out, device="cpu", log=said.append)
    assert [r["test_fold"] for r in results["variants"]["a"]["runs"]] == [1]
    assert (
        f"[mini] a fold0-seed1: being trained by another process (pid {proc.pid}); skipped" in said
    )
    assert not (run / "done.json").exists()  # left to the process training it


def test_a_run_whose_trainer_died_meanwhile_is_trained_before_the_runner_ends(
    synth_file: Path, tmp_path: Path, holder
) -> None:
    """A runner skipped a run another process held; that process was then killed, and the
    runner ended saying the run was "being trained by other processes", with a table
    without it. It tries the runs it skipped once more before it ends."""
    from innpar_freia.experiments import run_experiment
    from innpar_freia.train import SilentCallbacks

    cfg = _mini(tmp_path, synth_file)
    out = tmp_path / "out"
    run = out / "mini" / "runs" / "a" / "fold0-seed1"
    proc = holder(run)

    class KillHolder(SilentCallbacks):
        def on_start(self, info):  # fold 1's training: the holder of fold 0 dies
            proc.kill()
            proc.wait(timeout=30)

    said: list[str] = []
    results = run_experiment(cfg, out, device="cpu", log=said.append, callbacks=KillHolder())
    assert sorted(r["test_fold"] for r in results["variants"]["a"]["runs"]) == [0, 1]
    assert (run / "done.json").is_file()
    assert sum("fold0-seed1: being trained by another process" in line for line in said) == 1
    assert not any("not in the table" in line for line in said)


def test_runners_writing_one_table_wait_for_each_other(tmp_path: Path) -> None:
    """The results table's lock is held by one runner at a time: a second waits for it
    (it does not write an older table over a newer one), and takes it once it is free."""
    import threading

    from innpar_freia.run_lock import table_lock

    folder = tmp_path / "exp"
    folder.mkdir()
    order: list[str] = []
    with table_lock(folder):
        script = (
            "import sys; from pathlib import Path\n"
            "from innpar_freia.run_lock import table_lock\n"
            "with table_lock(Path(sys.argv[1])):\n    print('took it', flush=True)\n"
        )
        other = subprocess.Popen(
            [sys.executable, "-c", script, str(folder)],
            stdout=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        reader = threading.Thread(target=lambda: order.append(other.stdout.readline().strip()))
        reader.start()
        reader.join(timeout=3)
        assert reader.is_alive() and order == []  # still waiting after 3 s
        order.append("released")
    reader.join(timeout=60)
    assert other.wait(timeout=60) == 0
    assert order == ["released", "took it"]
    assert list(folder.iterdir()) == []  # the lock file goes with its last holder


@pytest.mark.parametrize("left", ["", "999999999 {host}\n"])
def test_a_look_at_the_lock_at_the_moment_a_training_takes_it_does_not_refuse_it(
    tmp_path: Path, left: str
) -> None:
    """A runner's look (``held_by_another``) holds a shared lock for an instant. A training
    that took its lock at that instant was refused as busy, naming no holder."""
    import fcntl
    import socket
    import threading

    from innpar_freia.run_lock import LOCK_NAME, training_lock

    run = tmp_path / "run"
    run.mkdir()
    # empty, as a new lock file is; or naming a dead process, as one killed outright leaves it
    (run / LOCK_NAME).write_text(left.format(host=socket.gethostname()))
    fd = os.open(run / LOCK_NAME, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    threading.Timer(0.2, os.close, (fd,)).start()  # the look ends, later than any real one
    with training_lock(run):
        assert (run / LOCK_NAME).read_text().split()[0] == str(os.getpid())
    assert not (run / LOCK_NAME).exists()


def test_eval_of_a_run_another_process_is_training_says_so(
    tiny_run: Path, synth_file: Path, tmp_path: Path, holder
) -> None:
    """``innpar eval`` does not take the lock (a look at a run in training is fair), but
    its report said nothing of the epoch it scored being one on the way."""
    import shutil

    from click.testing import CliRunner

    from innpar_freia.cli import cli
    from innpar_freia.evaluate import evaluate

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    best = run / "checkpoints" / "best.pt"
    metrics, _ = evaluate(best, synth_file, "test")
    assert metrics["warning"] is None
    proc = holder(run)
    metrics, _ = evaluate(best, synth_file, "test")
    assert metrics["warning"] == (
        f"its run {run} is being trained by another process (pid {proc.pid}): this scores "
        f"its best.pt of epoch {metrics['epoch']} as it was then, not the run's final one"
    )
    out = tmp_path / "report"
    args = ["eval", "--checkpoint", str(best), "--data", str(synth_file), "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--no-figures"])
    assert result.exit_code == 0, result.output
    assert f"being trained by another process (pid {proc.pid})" in result.stderr
    assert "being trained by another process" in (out / "report.md").read_text()
