"""DistributedDataParallel through torchrun: 2 processes (gloo on CPU, NCCL on 2+ GPUs)
against one process with the same global batch, and resuming a distributed run."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import dead_aside, hold_run_dir, leave_a_killed_force, max_weight_difference

from innpar_freia.checkpoint import load_checkpoint
from innpar_freia.data.dataset import plan_splits
from innpar_freia.data.store import read_info

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices"),
    ),
]
# Largest weight difference accepted against the single process. On CPU the two runs do
# the same float32 sums up to the order of the gradient all-reduce; NCCL and cuDNN's
# backward kernels also sum in their own order, amplified by 2 epochs of Adam.
TOLERANCE = {"cpu": 1e-4, "cuda": 1e-3}


def _common(synth_file: Path, config: Path, device: str, epochs: int) -> list[str]:
    n_train = len(plan_splits(read_info(synth_file)).train)
    # A global batch that divides the training split evenly over 2 ranks: then rank r's
    # batch b is exactly every other window of the single process's batch b.
    batch = next(b for b in range(16, 2, -2) if n_train % b == 0)
    return [
        "--data",
        str(synth_file),
        "--config",
        str(config),
        "--epochs",
        str(epochs),
        "--batch-size",
        str(batch),
        "--device",
        device,
        "--quiet",
        "--json",
    ]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
REPO = Path(__file__).resolve().parents[1]


def _single(args: list[str], out: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "innpar_freia", "train", *args, "--out", str(out)],
        check=True,
        env=ENV,
        capture_output=True,
    )


def _torchrun(args: list[str], out: Path) -> dict:
    """``torchrun --nproc_per_node=2 -m innpar_freia train ARGS --out OUT``; its summary."""
    proc = _launch(args, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)  # one summary: only rank 0 prints it


def _launch(args: list[str], out: Path, preexec_fn: object = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "innpar_freia",
            "train",
            *args,
            "--out",
            str(out),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=preexec_fn,
    )
    return proc


def _last_weights_difference(a: Path, b: Path) -> float:
    return max_weight_difference(a / "checkpoints" / "last.pt", b / "checkpoints" / "last.pt")


def _history(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("recipe", ["", "pair_weight = 1.0", "ppg_noise = 0.2"])
def test_two_processes_match_one_process(
    synth_file: Path, tmp_path: Path, recipe: str, device: str
) -> None:
    # With the within-subject loss, pairs must be formed over the global batch, not within
    # each rank's half of it, for the two runs to agree; with PPG noise, each rank must add
    # the noise of its own windows of the global batch.
    config = tmp_path / "recipe.toml"
    config.write_text(f'preset = "tiny"\n[train]\n{recipe}\n')
    with_pairs = "pair_weight" in recipe
    args = _common(synth_file, config, device, epochs=2)
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _single(args, single)
    summary = _torchrun(args, ddp)
    assert summary["epochs_completed"] == 2
    assert json.loads((ddp / "config.json").read_text())["environment"]["world_size"] == 2

    worst = _last_weights_difference(single, ddp)
    assert worst < TOLERANCE[device], f"DDP weights differ from single-process ones by {worst}"
    # Rank 0, which alone saves, keeps the keys of every training window, not of its share.
    keys = [
        load_checkpoint(run / "checkpoints" / "last.pt").training_copies for run in (single, ddp)
    ]
    assert all(len(k["ppg"]) > 0 for k in keys)
    assert all(np.array_equal(keys[0][n], keys[1][n]) for n in ("ppg", "abp"))
    ma, mb = _history(single), _history(ddp)
    assert len(mb) == 2  # rank 0 alone writes the log
    for ra, rb in zip(ma, mb, strict=True):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-4)
        for key in (k for k in ra if k.startswith("val_")):  # every rank validated its share
            assert rb[key] == pytest.approx(ra[key], rel=1e-3), key
        if with_pairs:
            assert ra["train_pair_loss"] > 0  # the batches did hold same-subject pairs
            assert rb["train_pair_loss"] == pytest.approx(ra["train_pair_loss"], rel=1e-4)


def _validate_on_rank(rank: int, world: int, store: str, data: str, n_val: int, out: str):
    """One process of :func:`test_every_rank_validates_its_share`: its share of the first
    ``n_val`` validation windows, in batches of 16; rank 0 saves the record."""
    import torch.distributed as dist
    from torch.utils.data import DataLoader

    from innpar_freia.config import resolve_config
    from innpar_freia.data.dataset import WindowDataset, fit_normalisation
    from innpar_freia.distributed import DistInfo
    from innpar_freia.nn.model import build_model
    from innpar_freia.train import validate, validation_share

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        run = resolve_config("tiny")
        info, plan = read_info(data), plan_splits(read_info(data))
        norm = fit_normalisation(data, plan.train, run.train.abp_norm)
        model = build_model(run.model, seed=0)
        dist_info = DistInfo(rank=rank, world_size=world)
        share = validation_share(plan.val[:n_val], info.subjects, dist_info)
        loader = DataLoader(WindowDataset(data, share, norm), batch_size=16) if len(share) else None
        record = validate(model, loader, norm, run.train, info, torch.device("cpu"), dist_info)
        assert (record is None) == (rank != 0)
        if rank == 0:
            Path(out).write_text(json.dumps({"record": record, "share": share.tolist()}))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(("world", "n_val"), [(3, None), (3, 2)])
def test_every_rank_validates_its_share(
    synth_file: Path, tmp_path: Path, world: int, n_val: int | None
) -> None:
    """Under torchrun each rank predicts and scores whole subjects of the validation split
    and rank 0 adds up the errors: the record is one process's, with shares of unequal size
    and with a rank whose share is empty (rank 0 used to predict and then score the whole
    split while the others waited in a collective, past the group's timeout on a large
    split)."""
    from torch.utils.data import DataLoader

    from innpar_freia.config import resolve_config
    from innpar_freia.data.dataset import WindowDataset, fit_normalisation
    from innpar_freia.nn.model import build_model
    from innpar_freia.train import validate

    plan = plan_splits(read_info(synth_file))
    n_val = n_val or len(plan.val)
    assert n_val % world or n_val < world  # shares of unequal size, or an empty one
    out = tmp_path / "record.json"
    torch.multiprocessing.spawn(
        _validate_on_rank,
        args=(world, str(tmp_path / "store"), str(synth_file), n_val, str(out)),
        nprocs=world,
    )
    shared = json.loads(out.read_text())
    info = read_info(synth_file)
    val = plan.val[:n_val]
    mine = set(info.subjects[shared["share"]].tolist())
    assert set(shared["share"]) <= set(val.tolist())  # whole subjects: all their windows
    assert sorted(shared["share"]) == sorted(v for v in val if info.subjects[v] in mine)
    if len(set(info.subjects[val].tolist())) > 1:
        assert len(shared["share"]) < n_val  # rank 0 validated its share, not all

    run = resolve_config("tiny")
    norm = fit_normalisation(synth_file, plan.train, run.train.abp_norm)
    loader = DataLoader(WindowDataset(synth_file, plan.val[:n_val], norm), batch_size=256)
    alone = validate(
        build_model(run.model, seed=0), loader, norm, run.train, read_info(synth_file), "cpu"
    )
    assert alone is not None and set(shared["record"]) == set(alone)
    for key, value in alone.items():
        assert shared["record"][key] == pytest.approx(value, rel=1e-6, nan_ok=True), key


@pytest.mark.parametrize(("world", "loads"), [(1, [16]), (2, [8, 8]), (3, [5, 5, 6])])
def test_validation_shares_are_whole_subjects_dealt_evenly_in_split_order(
    world: int, loads: list[int]
) -> None:
    """Each rank validates whole subjects (the calibrated protocol calibrates a subject on
    its first window), dealt largest first to the least loaded rank, in the split's order;
    together the shares are the split, each window once."""
    from innpar_freia.distributed import DistInfo
    from innpar_freia.train import validation_share

    counts = {"a": 5, "b": 3, "c": 3, "d": 1, "e": 4}
    subjects = np.array([s for s, n in counts.items() for _ in range(n)] + ["train"] * 4)
    val = np.random.default_rng(0).permutation(16)  # file rows 16-19 are not validated
    shares = [
        validation_share(val, subjects, DistInfo(rank=r, world_size=world)) for r in range(world)
    ]
    assert sorted(len(sh) for sh in shares) == loads
    assert sorted(np.concatenate(shares).tolist()) == list(range(16))
    position = {v: i for i, v in enumerate(val.tolist())}
    for sh in shares:
        assert [position[v] for v in sh] == sorted(position[v] for v in sh)  # split order
    owners = [{str(s) for s in subjects[sh]} for sh in shares]
    assert sum(len(o) for o in owners) == len(counts)  # no subject on two ranks
    assert validation_share(val[:0], subjects, DistInfo(rank=1, world_size=world)).size == 0


def test_a_distributed_run_resumes_where_it_stopped(synth_file: Path, tmp_path: Path) -> None:
    """1 epoch under torchrun, then ``--resume --epochs 2`` under torchrun: the same weights
    and log as 2 epochs in one process."""
    config = tmp_path / "recipe.toml"
    config.write_text('preset = "tiny"\n')
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _single(_common(synth_file, config, "cpu", epochs=2), single)
    assert _torchrun(_common(synth_file, config, "cpu", epochs=1), ddp)["epochs_completed"] == 1
    resume = ["--data", str(synth_file), "--resume", "--epochs", "2", "--quiet", "--json"]
    resumed = _torchrun(resume, ddp)
    assert resumed["epochs_completed"] == 2
    assert [r["epoch"] for r in _history(ddp)] == [1, 2]
    assert _last_weights_difference(single, ddp) < TOLERANCE["cpu"]
    for ra, rb in zip(_history(single), _history(ddp), strict=True):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-4)


def test_a_resume_under_torchrun_waits_for_rank_0_to_put_back_a_replaced_run(
    synth_file: Path, tmp_path: Path
) -> None:
    """A --force killed outright left the old run set aside; rank 0 puts it back at the
    start of the next command while rank 1 checked the folder at the same time and found
    "nothing to resume" (2 runs in 3)."""

    config = tmp_path / "recipe.toml"
    config.write_text('preset = "tiny"\n')
    ddp = tmp_path / "ddp"
    assert _torchrun(_common(synth_file, config, "cpu", epochs=1), ddp)["epochs_completed"] == 1
    leave_a_killed_force(ddp)
    resume = ["--data", str(synth_file), "--resume", "--epochs", "2", "--quiet", "--json"]
    proc = _launch(resume, ddp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("warning: put back the run") == 1
    assert json.loads(proc.stdout)["epochs_completed"] == 2


def test_resuming_on_processes_that_do_not_divide_the_batch_says_which_do(
    synth_file: Path, tmp_path: Path
) -> None:
    config = tmp_path / "recipe.toml"
    config.write_text('preset = "tiny"\n')
    run = tmp_path / "run"
    _single([*_common(synth_file, config, "cpu", epochs=1)[:-2], "--batch-size", "9"], run)
    proc = _launch(["--data", str(synth_file), "--resume", "--epochs", "2"], run)
    assert proc.returncode != 0
    assert (
        proc.stderr.count(
            f"batch_size 9 must be divisible by the number of processes (2): it is the global "
            f"batch; resume {run} with a number of processes that divides it (1, 3, 9)"
        )
        == 1
    ), proc.stderr[-3000:]


def test_other_ranks_wait_while_rank_0_recovers(tmp_path: Path) -> None:
    import socket
    import threading
    import time

    from innpar_freia.outputs import wait_for_recovery

    aside = dead_aside(tmp_path)
    threading.Timer(0.5, aside.rmdir).start()  # rank 0 finishing the recovery
    start = time.monotonic()
    wait_for_recovery(tmp_path)
    assert not aside.exists() and time.monotonic() - start >= 0.4
    # A --force still running (its owner alive) is not waited for.
    live = tmp_path / f".replaced.{socket.gethostname()}.{os.getppid()}.abc"
    live.mkdir()
    start = time.monotonic()
    wait_for_recovery(tmp_path, timeout_s=5)
    assert time.monotonic() - start < 1


def test_every_process_stops_and_rank_0_says_why_when_the_run_exists(
    synth_file: Path, tmp_path: Path
) -> None:
    """A run directory that holds a run: every rank stops, rather than rank 1 waiting at a
    barrier for rank 0 and dying on a closed connection; the message is printed once (by
    rank 0), not once per process."""
    config = tmp_path / "recipe.toml"
    config.write_text('preset = "tiny"\n')
    ddp = tmp_path / "ddp"
    args = _common(synth_file, config, "cpu", epochs=1)
    assert _torchrun(args, ddp)["epochs_completed"] == 1
    before = (ddp / "checkpoints" / "last.pt").read_bytes()
    proc = _launch(args, ddp)
    assert proc.returncode != 0
    assert proc.stderr.count(f"Error: {ddp} already holds a run") == 1, proc.stderr[-3000:]
    # torchrun itself then reports the failed children (its ChildFailedError); the ranks
    # print nothing but the message.
    assert "Connection closed" not in proc.stderr and "[rank1]" not in proc.stderr
    assert (ddp / "checkpoints" / "last.pt").read_bytes() == before
    # A usage error (click's own) is printed once too.
    proc = _launch([*args, "--lr", "fast"], ddp)
    assert proc.returncode != 0
    assert proc.stderr.count("Invalid value for '--lr'") == 1, proc.stderr[-3000:]


def test_a_run_another_process_trains_is_refused_once_and_left_alone(
    synth_file: Path, tmp_path: Path
) -> None:
    """Rank 0 alone holds the run directory, and a run under torchrun leaves no lock file;
    a torchrun --force on a folder that another process trains is refused, once, and sets
    nothing aside."""
    config = tmp_path / "recipe.toml"
    config.write_text('preset = "tiny"\n')
    ddp = tmp_path / "ddp"
    args = _common(synth_file, config, "cpu", epochs=1)
    assert _torchrun(args, ddp)["epochs_completed"] == 1
    assert sorted(p.name for p in ddp.iterdir()) == ["checkpoints", "config.json", "metrics.jsonl"]
    before = {p: p.read_bytes() for p in ddp.rglob("*") if p.is_file()}
    holder = hold_run_dir(ddp)
    try:
        proc = _launch([*args, "--force"], ddp)
    finally:
        holder.kill()
        holder.communicate()
    assert proc.returncode != 0
    message = f"Error: {ddp} is being trained by another process (pid {holder.pid})"
    assert proc.stderr.count(message) == 1, proc.stderr[-3000:]
    assert {
        p: p.read_bytes() for p in ddp.rglob("*") if p.is_file() and p.name != ".train.lock"
    } == before


def test_nan_in_a_validation_window_stops_every_process_with_one_message(
    synth_file: Path, tmp_path: Path
) -> None:
    """When rank 0 alone validated, NaN met there stopped it alone, and rank 1 died in a
    collective with a gloo traceback, leaving an empty run folder. Every rank checks the
    whole validation split before training."""
    import shutil

    import h5py

    data = Path(shutil.copy(synth_file, tmp_path / "nan_val.h5"))
    first_val = int(plan_splits(read_info(data)).val[0])
    with h5py.File(data, "r+") as fh:
        fh["abp"][first_val, 10] = float("nan")
    config = tmp_path / "recipe.toml"
    # Read lazily, the bad window used to be met only at the end of the first epoch.
    config.write_text('preset = "tiny"\n[train]\npreload = "never"\n')
    out = tmp_path / "ddp"
    proc = _launch(_common(data, config, "cpu", epochs=2), out)
    assert proc.returncode != 0
    assert proc.stderr.count(f"Error: {data}: 1 window of 'abp' holds NaN or inf") == 1, proc.stderr
    # torchrun's own report of the stopped children (ChildFailedError) follows; the ranks
    # print nothing else.
    assert "[rank1]" not in proc.stderr and "Connection closed" not in proc.stderr
    assert not out.exists()


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_an_error_of_rank_0_alone_is_said_once(synth_file: Path, tmp_path: Path) -> None:
    """Rank 0 alone writes checkpoints: a full disk stopped it with one clear message, and
    rank 1 then printed a 50-line gloo traceback of the closed connection."""

    def full_disk() -> None:  # inherited by torchrun's workers; see tests/test_full_disk.py
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    config = tmp_path / "recipe.toml"
    config.write_text('preset = "tiny"\n')
    out = tmp_path / "ddp"
    proc = _launch(_common(synth_file, config, "cpu", epochs=2), out, preexec_fn=full_disk)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: cannot write {out}/checkpoints/last.pt: File too large"], (
        proc.stderr[-3000:]
    )
    # torchrun's own report of the stopped children (ChildFailedError) follows; the ranks
    # print nothing else.
    assert "[rank1]" not in proc.stderr and "by peer" not in proc.stderr, proc.stderr[-3000:]
    assert not out.exists()


def test_a_split_that_does_not_divide_over_the_processes_is_said(tmp_path: Path) -> None:
    """The sampler repeats windows to give every rank as many: the run is then not exactly
    a single process's, and training says so (once, on rank 0)."""
    from innpar_freia.data.synthetic import synthesize_dataset

    data = synthesize_dataset(tmp_path / "s9.h5", subjects=9, minutes=1.5, seed=3)
    n_train = len(plan_splits(read_info(data)).train)
    assert n_train % 2 == 1
    config = tmp_path / "recipe.toml"
    config.write_text('preset = "tiny"\n')
    proc = _launch(["--data", str(data), "--config", str(config), "--epochs", "1",
                    "--device", "cpu"], tmp_path / "run")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    note = f"note: {n_train} training windows do not divide over 2 processes"
    assert (proc.stdout + proc.stderr).count(note) == 1


class _Exited(BaseException):
    """Stands in for os._exit, which would end the test process."""


@pytest.mark.parametrize(
    ("argv", "status", "stream", "needle"),
    [
        (["presets"], 0, "out", "innpar-plus-pair3"),
        (["train", "--lr", "fast"], 2, "err", "Invalid value for '--lr'"),
        (["data", "info", "{bad}"], 1, "err", "is not a readable HDF5 file"),
    ],
)
def test_a_process_that_joined_a_process_group_ends_without_interpreter_shutdown(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
    argv: list[str],
    status: int,
    stream: str,
    needle: str,
) -> None:
    """DDP leaves the group's threads running after destroy_process_group, and they can abort
    the interpreter's shutdown: a command that joined a group ends with os._exit, with its
    exit status and everything it printed; one that did not exits normally."""
    import innpar_freia.distributed as distributed
    from innpar_freia import cli as cli_module

    exits: list[int] = []

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise _Exited

    monkeypatch.setattr(cli_module.os, "_exit", fake_exit)
    bad = tmp_path / "bad.h5"
    bad.write_text("not HDF5")
    monkeypatch.setattr(sys, "argv", ["innpar", *(a.format(bad=bad) for a in argv)])
    monkeypatch.setattr(distributed, "_JOINED", [True])
    with pytest.raises(_Exited):
        cli_module.main()
    assert exits == [status]
    assert needle in getattr(capsys.readouterr(), stream)

    monkeypatch.setattr(distributed, "_JOINED", [])
    with pytest.raises(SystemExit) as exc:
        cli_module.main()
    assert exc.value.code == status and exits == [status]
    assert needle in getattr(capsys.readouterr(), stream)


def test_a_message_as_exit_code_is_printed_before_the_process_ends(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from innpar_freia import cli as cli_module

    exits: list[int] = []

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise _Exited

    monkeypatch.setattr(cli_module.os, "_exit", fake_exit)
    for code, status in ((None, 0), (3, 3), ("stopped: disk full", 1)):
        with pytest.raises(_Exited):
            cli_module._exit_now(code)
        assert exits.pop() == status
    assert capsys.readouterr().err == "stopped: disk full\n"


# Runs `innpar ARGV[2:]`; rank 1 kills itself outright once the run has its first
# checkpoint, as the out-of-memory killer would.
_RANK_1_DIES = """
import os, signal, sys, threading, time
from pathlib import Path
out = Path(sys.argv[1])
sys.argv = ["innpar", *sys.argv[2:]]
if os.environ.get("RANK") == "1":
    def die():
        while not (out / "checkpoints" / "last.pt").exists():
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=die, daemon=True).start()
from innpar_freia.cli import main
main()
"""


def test_rank_0_says_how_to_resume_when_another_process_dies(
    synth_file: Path, tmp_path: Path
) -> None:
    """A rank killed outright (out of memory) made rank 0's next collective fail with a
    50-line gloo traceback of a closed connection, and no word on how to go on."""
    script = tmp_path / "rank1_dies.py"
    script.write_text(_RANK_1_DIES)
    config = tmp_path / "recipe.toml"
    config.write_text('preset = "tiny"\n')
    out = tmp_path / "ddp"
    args = _common(synth_file, config, "cpu", epochs=30)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*launch, str(script), str(out), "train", *args, "--out", str(out)],
        env={**ENV, "PYTHONPATH": os.pathsep.join([str(REPO), ENV.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    error = next(i for i, line in enumerate(lines) if line.startswith("Error:"))
    assert lines[error] == (
        "Error: lost the connection to another process of this run (it ended: see "
        f"torchrun's report); {out} continues from its last completed epoch with:"
    ), proc.stderr[-3000:]
    assert lines[error + 1] == (
        f"  torchrun --nproc_per_node=2 -m innpar_freia train --data {synth_file} "
        f"--out {out} --resume --epochs 30"
    )
    # torchrun's own report of the stopped children (ChildFailedError) follows.
    assert "[rank0]" not in proc.stderr and "by peer" not in proc.stderr, proc.stderr[-3000:]
    assert (out / "checkpoints" / "last.pt").is_file()  # what it says to resume from


def test_a_dry_run_under_torchrun_says_it_once_and_checks_the_batch(
    synth_file: Path, tmp_path: Path
) -> None:
    """Every process printed the dry run's configuration (two JSON documents in one
    output), and a batch the processes cannot share was shown as fine, then refused by
    the run itself."""
    out = tmp_path / "dry"
    common = ["--data", str(synth_file), "--preset", "tiny", "--dry-run", "--json"]
    proc = _launch([*common, "--batch-size", "8"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["train"]["batch_size"] == 8  # one document
    proc = _launch([*common, "--batch-size", "9"], out)
    assert proc.returncode != 0 and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: batch_size 9 must be divisible by the number of processes (2): it is the "
        "global batch"
    ], proc.stderr[-3000:]
    assert not out.exists()
