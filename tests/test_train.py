"""Training: run directory contract, checkpoints, exact resume after a kill, NaN handling."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import KILLED_RUN_CONFIG

import innpar_freia.train as train_mod
from innpar_freia.checkpoint import load_checkpoint, read_checkpoint
from innpar_freia.config import ModelConfig, resolve_config
from innpar_freia.data.dataset import fit_normalisation, plan_splits
from innpar_freia.data.store import read_info
from innpar_freia.errors import CheckpointError, ConfigError, RunDirError, TrainingDiverged
from innpar_freia.nn.model import build_inn, build_model
from innpar_freia.train import channel_l1, lr_factor, train


def tiny(**train_overrides):
    return resolve_config("tiny", train={"device": "cpu", "epochs": 2, **train_overrides})


def test_run_directory_contract(synth_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(tiny(), synth_file, run)
    assert (run / "config.json").is_file()
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "tiny" and cfg["train"]["epochs"] == 2
    assert cfg["data"]["split"]["scheme"] == "split-column"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert r["val_mae"] > 0 and np.isfinite(r["train_loss"])
        assert {"val_sbp_mae", "val_dbp_mae", "val_map_mae", "windows_per_second"} <= set(r)
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    assert result.best_epoch == int(np.argmin([r["val_mae"] for r in records])) + 1


def test_checkpoint_rebuilds_model_and_normalisation_alone(synth_file: Path, tmp_path: Path):
    result = train(tiny(abp_norm="zscore"), synth_file, tmp_path / "run")
    ckpt = load_checkpoint(result.last_checkpoint)
    info = read_info(synth_file)
    plan = plan_splits(info)
    assert ckpt.normalisation == fit_normalisation(synth_file, plan.train, "zscore")
    assert ckpt.normalisation != fit_normalisation(synth_file, np.arange(info.n_windows), "zscore")
    assert ckpt.run_config.model.window_length == info.window_length
    assert ckpt.baselines is not None and 40 < ckpt.baselines.abp_mean < 140
    raw = read_checkpoint(result.last_checkpoint)
    assert raw["epoch"] == 2 and raw["data"]["split"]["windows"]["train"] == len(plan.train)
    # The loaded model gives the same predictions as the one in memory at the end.
    ppg = np.random.default_rng(0).normal(size=(3, info.window_length))
    again = load_checkpoint(result.last_checkpoint)
    assert np.array_equal(ckpt.predict_abp(ppg), again.predict_abp(ppg))
    # A window with a gap is refused by name, not returned as NaN in both directions.
    ppg[1, 7] = np.nan
    message = (
        r"1 of 3 PPG window\(s\) hold NaN, inf or values beyond float32's range \(first: window 1\)"
    )
    with pytest.raises(ValueError, match=message):
        ckpt.predict_abp(ppg)
    with pytest.raises(ValueError, match=r"1 of 3 ABP window\(s\) hold NaN, inf"):
        ckpt.predict_ppg(np.where(np.isnan(ppg), np.inf, 90.0))
    # Finite in float64 but not in float32, where the network runs: blamed on the weights
    # ("damaged or diverged") before.
    with pytest.raises(ValueError, match=r"2 of 2 ABP window\(s\) hold NaN, inf or values beyond"):
        ckpt.predict_ppg(np.full((2, info.window_length), 1e300))


def test_predictions_refuse_what_would_give_silent_garbage(tiny_run: Path) -> None:
    """Each of these returned numbers without a word: uninitialised memory for a negative
    batch size, ABP from windows at another rate than training's."""
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    ppg = np.random.default_rng(0).normal(size=(4, ckpt.window_length))
    for batch_size in (-1, 0, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
            ckpt.predict_abp(ppg, batch_size=batch_size)
    with pytest.raises(ValueError, match=r"the windows are at 250 Hz, but best.pt was trained"):
        ckpt.predict_abp(ppg, fs=250.0)
    with pytest.raises(ValueError, match="fs must be a finite rate above 0 Hz, not nan"):
        ckpt.predict_ppg(np.full_like(ppg, 90.0), fs=float("nan"))
    assert np.array_equal(ckpt.predict_abp(ppg, fs=ckpt.fs), ckpt.predict_abp(ppg))
    assert np.array_equal(ckpt.predict_abp(ppg, batch_size=np.int64(512)), ckpt.predict_abp(ppg))
    for odd in (ppg > 0, ppg + 1j):  # became 0/1, or lost their imaginary part
        with pytest.raises(TypeError, match="PPG windows must be real numbers, not"):
            ckpt.predict_abp(odd)
    # The network itself: torch tensors of its own dtype, named when they are not.
    x = torch.as_tensor(ppg)
    with pytest.raises(TypeError, match=r"expected a torch.float32 tensor.*got torch.float64"):
        ckpt.model.ppg_to_abp(x)
    with pytest.raises(TypeError, match="expected a torch tensor, but got ndarray"):
        ckpt.model.ppg_to_abp(ppg)
    assert ckpt.model.ppg_to_abp(x.float()).shape == x.shape
    # A shorter window was zero-padded into a prediction the model was never trained for.
    for model in (ckpt.model, build_model(ModelConfig.from_preset("unet"))):
        with pytest.raises(ValueError, match=r"expected a \(batch, 625\) tensor of 625-sample"):
            model.ppg_to_abp(x.float()[:, :100])


def test_a_checkpoint_loaded_onto_a_missing_device_says_so(tiny_run: Path) -> None:
    """torch's error from inside torch.load made a good file read as corrupt."""
    best = tiny_run / "checkpoints" / "best.pt"
    with pytest.raises(ConfigError, match="device 'bogus' cannot be used here"):
        load_checkpoint(best, device="bogus")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device 'cuda' cannot be used here"):
            load_checkpoint(best, device="cuda")
    assert load_checkpoint(best, device=torch.device("cpu")).epoch == 2


def test_weights_that_do_not_fit_are_named(tiny_run: Path, tmp_path: Path) -> None:
    raw = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=True)
    key = next(k for k, v in raw["model_state"].items() if v.ndim == 3)
    raw["model_state"][key] = raw["model_state"][key][:1]  # one output channel too few
    torch.save(raw, tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match=f"do not fit its own configuration.*{key}"):
        load_checkpoint(tmp_path / "cut.pt")


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable innpar-freia checkpoint"):
        load_checkpoint(bad)
    # Text decodes to a KeyError of some byte ("... another format: 101"): not passed on.
    bad.write_text("hello this is text\n")
    with pytest.raises(CheckpointError, match=r"another format: not a PyTorch file\)$"):
        load_checkpoint(bad)
    # Random bytes make torch's unpickler fail in many ways (IndexError, KeyError, ...):
    # every one of them must come out as the same clear error.
    rng = np.random.default_rng(0)
    for size in [1, 2, 10, 100, 1000] * 40:
        bad.write_bytes(rng.bytes(size))
        with pytest.raises(CheckpointError, match="not a readable innpar-freia checkpoint"):
            load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="is not an innpar-freia checkpoint"):
        load_checkpoint(foreign)


def test_run_dir_is_never_overwritten_silently(synth_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny(epochs=1), synth_file, run)
    refusal = r"already holds a run; pass resume=True .* or force=True"
    with pytest.raises(RunDirError, match=refusal):
        train(tiny(epochs=1), synth_file, run)
    with pytest.raises(RunDirError, match="nothing to resume"):
        train(None, synth_file, tmp_path / "empty", resume=True)
    # A run killed outright before its first checkpoint (SIGKILL; SIGTERM under torchrun)
    # leaves config.json alone: both commands say what happened and what to do.
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "config.json").write_text(KILLED_RUN_CONFIG)
    advice = "was killed before its first epoch ended; if no innpar train is writing it, start"
    with pytest.raises(RunDirError, match=f"holds a run without a checkpoint: .*{advice}"):
        train(tiny(epochs=1), synth_file, killed)
    with pytest.raises(RunDirError, match=f"nothing to resume: .*{advice}"):
        train(None, synth_file, killed, resume=True)
    # A finished run whose last.pt was deleted is not called killed.
    (killed / "checkpoints").mkdir()
    (killed / "checkpoints" / "best.pt").write_bytes(b"x")
    with pytest.raises(RunDirError, match="already holds a run; pass resume=True"):
        train(tiny(epochs=1), synth_file, killed)
    with pytest.raises(RunDirError, match="cannot change"):
        train(None, synth_file, run, resume=True, resume_overrides={"lr": 0.1})
    train(tiny(epochs=1, seed=4), synth_file, run, force=True)
    assert json.loads((run / "config.json").read_text())["train"]["seed"] == 4
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_resume_extends_a_finished_run(synth_file: Path, tmp_path: Path) -> None:
    straight = train(tiny(epochs=3), synth_file, tmp_path / "a")
    train(tiny(epochs=1), synth_file, tmp_path / "b")
    resumed = train(None, synth_file, tmp_path / "b", resume=True, resume_overrides={"epochs": 3})
    assert resumed.epochs_completed == 3
    _assert_same_weights(straight.last_checkpoint, resumed.last_checkpoint)


def test_a_checkpoint_keeps_the_keys_of_its_training_windows_and_a_resume_adds_them(
    synth_file: Path, tmp_path: Path
) -> None:
    """innpar eval knows a run's training windows in any file by these keys: those of the
    PPG and of the ABP of every training window, and of no other (constant lines left
    out). A run from before they were kept gets them when resumed."""
    import h5py

    from innpar_freia.checkpoint import save_checkpoint
    from innpar_freia.data.dataset import load_split_arrays
    from innpar_freia.data.leakage import copy_keys

    done = train(tiny(epochs=1), synth_file, tmp_path / "r")
    ckpt = load_checkpoint(done.last_checkpoint)
    tcfg = ckpt.run_config.train
    plan = plan_splits(read_info(synth_file), tcfg.test_fold, tcfg.val_fold)
    ppg, abp = load_split_arrays(synth_file, plan.train, dtype=None)
    signals = {"ppg": ppg, "abp": abp}
    for name, x in signals.items():
        assert ckpt.training_copies[name].tolist() == np.unique(copy_keys(x)).tolist()
        assert len(ckpt.training_copies[name]) == len(plan.train)
        other = load_split_arrays(synth_file, np.concatenate([plan.val, plan.test]))
        assert not np.isin(copy_keys(other[name == "abp"]), ckpt.training_copies[name]).any()
    payload = read_checkpoint(done.last_checkpoint)
    del payload["training_copies"]
    save_checkpoint(done.last_checkpoint, payload)
    assert load_checkpoint(done.last_checkpoint).training_copies is None
    resumed = train(None, synth_file, tmp_path / "r", resume=True, resume_overrides={"epochs": 2})
    again = load_checkpoint(resumed.last_checkpoint).training_copies
    assert {k: v.tolist() for k, v in again.items()} == {
        k: v.tolist() for k, v in ckpt.training_copies.items()
    }
    flat = tmp_path / "flat.h5"
    flat.write_bytes(synth_file.read_bytes())
    with h5py.File(flat, "r+") as fh:
        fh["abp"][plan.train[4]] = 90.0
    keys = train_mod.training_copy_keys(flat, plan.train)
    assert len(keys["abp"]) == len(plan.train) - 1 and len(keys["ppg"]) == len(plan.train)


def test_extending_a_cosine_run_says_where_its_learning_rate_goes(
    synth_file: Path, tmp_path: Path
) -> None:
    messages: list[str] = []

    class Told(train_mod.SilentCallbacks):
        def on_message(self, text):
            messages.append(text)

    train(tiny(epochs=3, lr_schedule="cosine", warmup_epochs=1), synth_file, tmp_path / "r")
    config = tmp_path / "r" / "config.json"
    first = json.loads(config.read_text())
    assert "resumed" not in first  # trained straight
    resumed = train(
        None, synth_file, tmp_path / "r", resume=True, resume_overrides={"epochs": 7},
        callbacks=Told(),
    )  # fmt: skip
    assert resumed.epochs_completed == 7
    # config.json says 7 epochs, and that the first 3 were trained as a 3-epoch run.
    stored = json.loads(config.read_text())
    assert stored["train"]["epochs"] == 7
    assert stored["resumed"] == [
        {"after_epoch": 3, "epochs": 3, "environment": first["environment"]}
    ]
    train(None, synth_file, tmp_path / "r", resume=True, resume_overrides={"epochs": 8})
    again = json.loads(config.read_text())["resumed"]
    assert again[0] == stored["resumed"][0] and again[1]["after_epoch"] == 7
    assert again[1]["epochs"] == 7 and again[1]["environment"] == stored["environment"]
    # Cosine over 2 post-warm-up epochs: epoch 3 at 0.5 x lr, the curve's middle; over 6,
    # epoch 4 is a third of the way down it: 0.75 x lr, up again.
    assert any(
        "recomputed over 7 epochs instead of 3" in m and "epoch 3 ran at 0.5 x lr" in m
        and "epoch 4 runs at 0.75 x lr" in m for m in messages
    ), messages  # fmt: skip


def _assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = read_checkpoint(a)["model_state"], read_checkpoint(b)["model_state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_killed_run_resumes_to_identical_weights(synth_file: Path, tmp_path: Path) -> None:
    """SIGKILL a real `innpar train` process mid-training, resume it, compare weights."""
    args = [
        "--data",
        str(synth_file),
        "--preset",
        "paper",
        "--epochs",
        "5",
        "--batch-size",
        "32",
        "--lr",
        "0.001",
        "--device",
        "cpu",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "innpar_freia", "train"]
    straight = tmp_path / "straight"
    subprocess.run([*cmd, *args, "--out", str(straight)], check=True, env=env)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, *args, "--out", str(killed)], env=env)
    metrics = killed / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = metrics.read_text().count("\n")
    assert 2 <= done < 5
    subprocess.run(
        [*cmd, "--data", str(synth_file), "--out", str(killed), "--resume", "--quiet"],
        check=True,
        env=env,
    )
    _assert_same_weights(straight / "checkpoints" / "last.pt", killed / "checkpoints" / "last.pt")
    _assert_same_weights(straight / "checkpoints" / "best.pt", killed / "checkpoints" / "best.pt")
    epochs = [json.loads(x)["epoch"] for x in metrics.read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5]
    assert not list((killed / "checkpoints").glob(".*tmp"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poisoned = {"on": False}
    real_l1 = train_mod.channel_l1

    def l1(*args, **kwargs):
        value = real_l1(*args, **kwargs)
        return value * float("nan") if poisoned["on"] else value

    monkeypatch.setattr(train_mod, "channel_l1", l1)

    class Poison(train_mod.SilentCallbacks):
        def on_epoch(self, record):
            poisoned["on"] = True

    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 1.*last good"):
        train(tiny(epochs=4), synth_file, run, callbacks=Poison())
    assert read_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_weights_that_overflow_stop_the_run_like_a_nan_loss(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finite loss can leave weights whose predictions are NaN (lr 100): the run went on,
    exited 0, named a best.pt it never wrote, and called the broken last.pt good."""
    real = train_mod.validate
    calls = {"n": 0}

    def validate(*args, **kwargs):
        calls["n"] += 1
        record = real(*args, **kwargs)
        return {**record, "val_mae": float("nan")} if calls["n"] == 2 else record

    monkeypatch.setattr(train_mod, "validate", validate)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"validation MAE became nan after epoch 2.*last"):
        train(tiny(epochs=4), synth_file, run)
    assert read_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    # Weights that are no longer numbers after an epoch's last step (whose loss was fine):
    # the epoch is not checkpointed either.
    monkeypatch.setattr(train_mod, "validate", real)
    built = []
    real_build = train_mod.build_model

    def build(*args, **kwargs):
        built.append(real_build(*args, **kwargs))
        return built[-1]

    class Break(train_mod.SilentCallbacks):
        def on_batch(self, epoch, step, steps, loss):
            if epoch == 2 and step == steps:
                with torch.no_grad():
                    next(built[-1].parameters()).fill_(float("inf"))

    monkeypatch.setattr(train_mod, "build_model", build)
    run = tmp_path / "inf"
    with pytest.raises(TrainingDiverged, match=r"weights became NaN or infinite in epoch 2.*last"):
        train(tiny(epochs=4), synth_file, run, callbacks=Break())
    assert read_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    # At a learning rate of 100 the run breaks down in its first epoch: nothing is kept.
    with pytest.raises(TrainingDiverged, match=r"became.*nothing was kept"):
        train(tiny(epochs=1, lr=100.0), synth_file, tmp_path / "wild")
    assert not (tmp_path / "wild").exists()


def test_metrics_lines_are_strict_json(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value that is not a number (no calibrated validation window) was written as NaN,
    which strict JSON readers refuse; it is null."""
    real = train_mod.validate
    monkeypatch.setattr(
        train_mod, "validate", lambda *a, **k: {**real(*a, **k), "val_cal_mae": float("nan")}
    )
    run = tmp_path / "run"
    train(tiny(epochs=1), synth_file, run)

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    line = (run / "metrics.jsonl").read_text().splitlines()[0]
    record = json.loads(line, parse_constant=refuse)
    assert record["val_cal_mae"] is None and record["val_mae"] > 0


def test_a_run_that_diverges_before_its_first_checkpoint_leaves_nothing_behind(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_l1 = train_mod.channel_l1
    poisoned = {"on": True}

    def l1(*args, **kwargs):
        value = real_l1(*args, **kwargs)
        return value * float("nan") if poisoned["on"] else value

    monkeypatch.setattr(train_mod, "channel_l1", l1)
    run = tmp_path / "new" / "deeper" / "run"
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1.*nothing was kept"):
        train(tiny(epochs=2), synth_file, run)
    # It created the directory and the folders above it, so it takes them away again.
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's")
    with pytest.raises(TrainingDiverged):
        train(tiny(epochs=2), synth_file, kept)
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
    # The same command simply runs again: no --force needed for a run that never started.
    poisoned["on"] = False
    assert train(tiny(epochs=1), synth_file, run).epochs_completed == 1


def test_loss_covers_real_samples_only_unless_padded() -> None:
    out = torch.zeros(2, 2, 8)
    target = torch.zeros(2, 2, 8)
    target[..., 6:] = 10.0  # only in the padding
    assert float(channel_l1(out, target, 6, "real", 1.0)) == 0.0
    assert float(channel_l1(out, target, 6, "padded", 1.0)) == pytest.approx(2.5)
    target = torch.zeros(2, 2, 8)
    target[:, 1] = 1.0
    assert float(channel_l1(out, target, 8, "real", 1.0)) == pytest.approx(0.5)
    assert float(channel_l1(out, target, 8, "real", 0.0)) == 0.0
    assert float(channel_l1(out, target, 8, "real", 3.0)) == pytest.approx(0.75)


def test_learning_rate_schedule() -> None:
    cfg = tiny(epochs=10, warmup_epochs=2, lr_schedule="cosine").train
    factors = [lr_factor(cfg, e) for e in range(10)]
    assert factors[:2] == [0.5, 1.0]
    assert factors[2] == pytest.approx(1.0) and factors[-1] < 0.1
    assert all(a >= b for a, b in itertools.pairwise(factors[1:]))
    assert lr_factor(cfg, 12) == 0.0  # past the schedule's end: it stays at its end


def test_train_step_weighs_the_inverse_loss() -> None:
    """The PPG reconstruction loss of the inverse pass enters with its weight (a weight
    ignored, i.e. taken as 1, went unnoticed)."""
    from innpar_freia.train import TrainStep

    model, ppg, abp, groups = _tiny_step_inputs()
    losses = {}
    with torch.no_grad():
        for w in (0.0, 0.5, 1.0):
            cfg = resolve_config("tiny", train={"device": "cpu", "inverse_weight": w})
            losses[w] = float(TrainStep(model, cfg.train)(ppg, abp, groups)[0])
    inverse = losses[1.0] - losses[0.0]
    assert inverse > 0
    assert losses[0.5] == pytest.approx(losses[0.0] + 0.5 * inverse, rel=1e-5)


VAL_KEYS = ("val_loss", "val_mae", "val_rmse", "val_sbp_mae", "val_dbp_mae", "val_map_mae")


def test_early_stopping_keeps_the_best_epoch(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maes = iter([5.0, 4.0, 6.0, 7.0, 3.0, 2.0])

    monkeypatch.setattr(train_mod, "validate", lambda *a, **k: dict.fromkeys(VAL_KEYS, next(maes)))
    result = train(tiny(epochs=6, early_stopping=2), synth_file, tmp_path / "r")
    assert result.stopped_early and result.epochs_completed == 4
    assert result.best_epoch == 2 and result.best_val_mae == 4.0
    assert read_checkpoint(result.best_checkpoint)["epoch"] == 2
    assert read_checkpoint(result.last_checkpoint)["epoch"] == 4
    # The early stop is where the run ends: resuming it (even with more epochs) used to
    # train on and replace its best checkpoint.
    stamps = {p.name: p.stat().st_mtime_ns for p in result.last_checkpoint.parent.iterdir()}
    messages: list[str] = []

    class Told(train_mod.SilentCallbacks):
        def on_message(self, text):
            messages.append(text)

    again = train(
        None, synth_file, tmp_path / "r", resume=True, resume_overrides={"epochs": 8},
        callbacks=Told(),
    )  # fmt: skip
    assert again.stopped_early and again.epochs_completed == 4 and again.best_epoch == 2
    assert {p.name: p.stat().st_mtime_ns for p in result.last_checkpoint.parent.iterdir()} == stamps
    assert any("stopped early at epoch 4" in m and "nothing to resume" in m for m in messages)


def test_early_stopping_after_one_epoch_says_one_epoch(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``early_stopping = 1`` printed "no better validation MAE for 1 epochs", when
    stopping and when the finished run was resumed."""
    maes = iter([5.0, 6.0])
    monkeypatch.setattr(train_mod, "validate", lambda *a, **k: dict.fromkeys(VAL_KEYS, next(maes)))
    messages: list[str] = []

    class Told(train_mod.SilentCallbacks):
        def on_message(self, text):
            messages.append(text)

    train(tiny(epochs=4, early_stopping=1), synth_file, tmp_path / "r", callbacks=Told())
    train(None, synth_file, tmp_path / "r", resume=True, callbacks=Told())
    said = [m for m in messages if "no better validation MAE" in m]
    assert len(said) == 2 and all("for 1 epoch)" in m or "for 1 epoch " in m for m in said)


def test_a_run_stopped_between_its_checkpoints_gets_them_when_resumed(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An epoch writes last.pt first, then its kept and best checkpoints; a run stopped
    after last.pt gets the others from it when resumed (best.pt first left a best.pt of an
    attempt that the redone epoch, not bit for bit the same on a GPU, need not choose)."""
    from helpers import run_cli

    written: list[str] = []
    save = train_mod.save_checkpoint
    monkeypatch.setattr(
        train_mod,
        "save_checkpoint",
        lambda path, body: written.append(Path(path).name) or save(path, body),
    )
    run = tmp_path / "run"
    cfg = {"epochs": 2, "device": "cpu", "keep_checkpoints": [1, 2], "test_fold": 0, "val_fold": -1}
    train(resolve_config("tiny", train=cfg), synth_file, run)  # no validation: every epoch is best
    assert written == ["last.pt", "epoch-0001.pt", "best.pt", "last.pt", "epoch-0002.pt", "best.pt"]
    ck = run / "checkpoints"
    # Epoch 2 wrote last.pt and was stopped: its kept checkpoint and best.pt are missing.
    (ck / "epoch-0002.pt").unlink()
    (ck / "best.pt").write_bytes((ck / "epoch-0001.pt").read_bytes())
    r = run_cli("train", "--data", synth_file, "--out", run, "--resume")
    assert r.exit_code == 0, r.output
    assert "epoch-0002.pt of epoch 2 was not written" in r.stderr
    assert "best.pt of epoch 2 was not written" in r.stderr
    assert (ck / "best.pt").read_bytes() == (ck / "last.pt").read_bytes()
    assert (ck / "epoch-0002.pt").read_bytes() == (ck / "last.pt").read_bytes()
    r = run_cli("train", "--data", synth_file, "--out", run, "--resume")
    assert r.exit_code == 0 and "was not written" not in r.stderr, r.output


def test_resuming_with_too_few_epochs_says_so_before_any_other_check(
    synth_file: Path, tmp_path: Path
) -> None:
    """With warm-up epochs, --epochs below the epochs done answered "warmup_epochs must be
    <= 1", a setting the user never gave."""
    train(tiny(epochs=2, warmup_epochs=2), synth_file, tmp_path / "r")
    too_few = r'has completed 2 epochs; resume_overrides\["epochs"\] = 1 would end before'
    with pytest.raises(RunDirError, match=too_few):
        train(None, synth_file, tmp_path / "r", resume=True, resume_overrides={"epochs": 1})


def test_ema_weights_are_checkpointed_and_resume_exactly(synth_file: Path, tmp_path: Path):
    straight = train(tiny(epochs=3, ema_decay=0.9), synth_file, tmp_path / "a")
    train(tiny(epochs=1, ema_decay=0.9), synth_file, tmp_path / "b")
    resumed = train(None, synth_file, tmp_path / "b", resume=True, resume_overrides={"epochs": 3})
    _assert_same_weights(straight.last_checkpoint, resumed.last_checkpoint)
    a, b = read_checkpoint(straight.last_checkpoint), read_checkpoint(resumed.last_checkpoint)
    raw_a, raw_b = a["training_state"]["raw_model_state"], b["training_state"]["raw_model_state"]
    assert all(torch.equal(raw_a[k], raw_b[k]) for k in raw_a)
    # the averaged weights are not the raw ones, and the checkpoint serves the averaged ones
    assert any(not torch.equal(raw_a[k], a["model_state"][k]) for k in raw_a)
    ckpt = load_checkpoint(straight.last_checkpoint)
    for k, v in ckpt.model.state_dict().items():
        assert torch.equal(v, a["model_state"][k])


def test_ppg_noise_belongs_to_the_window_not_its_place_in_a_batch() -> None:
    """The noise was the global batch's, dealt to ranks as every N-th row: the subject-group
    sampler deals whole groups, so under DDP windows got other windows' noise."""
    cfg = tiny(ppg_noise=0.25).train
    rows = torch.arange(100, 108)
    one = train_mod.ppg_noise(cfg, 3, rows, torch.zeros(8, 625))
    assert abs(float(one.std()) - 0.25) < 0.01 and abs(float(one.mean())) < 0.01
    # Any split of the batch over processes, in any order, gives each window its noise.
    for part in (rows[::2], rows[1::2], rows[4:], rows.flip(0)):
        got = train_mod.ppg_noise(cfg, 3, part, torch.zeros(len(part), 625))
        assert torch.equal(got, one[part - 100])
    # fresh noise every epoch, for every window, reproducible from the seed alone
    assert not torch.equal(one, train_mod.ppg_noise(cfg, 4, rows, torch.zeros(8, 625)))
    assert not torch.equal(one[0], one[1])
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(one, train_mod.ppg_noise(cfg, 3, rows, torch.zeros(8, 625)))


def test_ppg_noise_changes_training_and_resumes_exactly(synth_file: Path, tmp_path: Path):
    plain = train(tiny(epochs=3), synth_file, tmp_path / "plain")
    straight = train(tiny(epochs=3, ppg_noise=0.2), synth_file, tmp_path / "a")
    a, p = read_checkpoint(straight.last_checkpoint), read_checkpoint(plain.last_checkpoint)
    assert any(not torch.equal(a["model_state"][k], p["model_state"][k]) for k in p["model_state"])
    train(tiny(epochs=1, ppg_noise=0.2), synth_file, tmp_path / "b")
    resumed = train(None, synth_file, tmp_path / "b", resume=True, resume_overrides={"epochs": 3})
    _assert_same_weights(straight.last_checkpoint, resumed.last_checkpoint)
    assert [r["val_mae"] for r in straight.history] == [r["val_mae"] for r in resumed.history]


def test_bf16_autocast_trains_and_stays_invertible(synth_file: Path, tmp_path: Path) -> None:
    from innpar_freia.checks import run_checks

    result = train(tiny(epochs=2, amp=True), synth_file, tmp_path / "amp")
    assert all(np.isfinite(r["val_mae"]) for r in result.history)
    # Weights stay float32: the trained model is exactly invertible at full precision.
    ckpt = load_checkpoint(result.best_checkpoint)
    assert all(p.dtype == torch.float32 for p in ckpt.model.parameters())
    checks = run_checks(ckpt.model, seed=0)
    assert checks["roundtrip_max_abs_float32"] <= 1e-5 and checks["passed"]


def test_preloaded_and_lazy_loading_train_identically(synth_file: Path, tmp_path: Path):
    lazy = train(tiny(epochs=2, preload="never"), synth_file, tmp_path / "lazy")
    held = train(tiny(epochs=2, preload="always"), synth_file, tmp_path / "held")
    _assert_same_weights(lazy.last_checkpoint, held.last_checkpoint)
    assert [r["val_mae"] for r in lazy.history] == [r["val_mae"] for r in held.history]


def test_training_leaves_the_callers_random_numbers_alone(synth_file: Path, tmp_path: Path):
    """A lazily read run (its DataLoader draws worker seeds) and a resumed one (set to the
    state it stopped in) moved torch's global generator; build_model(seed=), evaluate and
    predict_abp do not, and neither does train now."""
    expected = torch.random.manual_seed(123).get_state()
    torch.random.manual_seed(123)
    train(tiny(epochs=1, preload="never"), synth_file, tmp_path / "r")
    assert torch.equal(torch.random.get_rng_state(), expected)
    torch.random.manual_seed(123)
    train(None, synth_file, tmp_path / "r", resume=True, resume_overrides={"epochs": 2})
    assert torch.equal(torch.random.get_rng_state(), expected)


def test_difference_loss_sees_ringing_the_sample_loss_hardly_sees() -> None:
    from innpar_freia.train import diff_l1

    target = torch.zeros(1, 2, 100)
    ringing = torch.zeros(1, 2, 100)
    ringing[0, 0, ::2] = 0.1  # sawtooth of amplitude 0.1
    assert float(channel_l1(ringing, target, 100, "real", 1.0)) == pytest.approx(0.025)
    assert float(diff_l1(ringing, target, 100)) == pytest.approx(0.1)
    assert float(diff_l1(target + 5.0, target, 100)) == 0.0  # an offset is not penalised


def test_extremes_loss_scores_the_pulse_pressure_the_sample_loss_shrinks() -> None:
    from innpar_freia.train import extremes_l1

    t = torch.linspace(0, 4 * np.pi, 100)
    target = torch.zeros(2, 2, 110)
    target[:, 0, :100] = torch.sin(t)  # extremes +1 / -1
    target[:, 0, 100:] = 9.0  # padding beyond the real samples is never scored
    flat = target.clone()
    flat[:, 0, :100] = 0.5 * torch.sin(t)  # the same beats at half the pulse pressure
    assert float(extremes_l1(flat, target, 100)) == pytest.approx(0.5, abs=1e-4)
    assert float(extremes_l1(target, target, 100)) == 0.0
    shifted = target.clone()
    shifted[:, 0, :100] += 0.2  # a level error moves both extremes
    assert float(extremes_l1(shifted, target, 100)) == pytest.approx(0.2, abs=1e-6)
    shifted[:, 1] += 3.0  # the gradient channel is not part of it
    assert float(extremes_l1(shifted, target, 100)) == pytest.approx(0.2, abs=1e-6)
    with pytest.raises(ValueError, match="extremes_weight"):
        resolve_config("tiny", train={"extremes_weight": -1.0})


def _tiny_step_inputs():
    """A tiny-preset network and a batch of 4 windows (2 subjects) for TrainStep tests."""
    from innpar_freia.nn.model import build_model

    model = build_model(resolve_config("tiny").model, seed=0)
    gen = torch.Generator().manual_seed(0)
    ppg, abp = torch.randn(4, 625, generator=gen), torch.rand(4, 625, generator=gen)
    return model, ppg, abp, torch.tensor([0, 0, 1, 1])


def test_train_step_adds_the_weighted_extremes_loss() -> None:
    from innpar_freia.train import TrainStep, extremes_l1

    plain = resolve_config("tiny", train={"device": "cpu"})
    weighted = resolve_config("tiny", train={"device": "cpu", "extremes_weight": 0.5})
    model, ppg, abp, _ = _tiny_step_inputs()
    with torch.no_grad():
        base, _, _ = TrainStep(model, plain.train)(ppg, abp)
        total, _, _ = TrainStep(model, weighted.train)(ppg, abp)
        out, _ = model(model.make_input(ppg), jac=False)
        extra = extremes_l1(out, model.make_input(abp), 625)
    assert float(extra) > 0
    assert float(total) == pytest.approx(float(base) + 0.5 * float(extra), rel=1e-5)


def test_output_lowpass_is_applied_to_predictions_and_validation(
    synth_file: Path, tmp_path: Path
) -> None:
    from scipy import signal as sps

    from innpar_freia.data.dataset import Normalisation
    from innpar_freia.evaluate import evaluate

    cfg = resolve_config(
        "tiny",
        model={"output_lowpass_hz": 10.0},
        train={"device": "cpu", "epochs": 1, "diff_weight": 0.5},
    )
    result = train(cfg, synth_file, tmp_path / "lp")
    ckpt = load_checkpoint(result.best_checkpoint)
    ppg = np.random.default_rng(0).normal(size=(2, 625))
    z = torch.tensor(Normalisation.normalise_ppg(ppg), dtype=torch.float32)
    raw = ckpt.normalisation.denormalise_abp(ckpt.model.ppg_to_abp(z).detach().double().numpy())
    expected = sps.sosfiltfilt(sps.butter(4, 10.0, fs=125.0, output="sos"), raw, axis=-1)
    assert np.allclose(ckpt.predict_abp(ppg), expected, atol=1e-4)
    # The validation MAE of training is the evaluation's on the same (low-passed) predictions.
    scored, _ = evaluate(ckpt, synth_file, "val")
    assert result.history[-1]["val_mae"] == pytest.approx(
        scored["calibration_free"]["waveform"]["mae"], abs=1e-3
    )
    # The limit is the data's Nyquist frequency, known once the data is: 70 Hz is too high
    # for 125 Hz windows, and 80 Hz fine for 250 Hz ones (the configuration's default rate,
    # 125 Hz, used to refuse it before the data was read).
    high = resolve_config(
        "tiny", model={"output_lowpass_hz": 70.0}, train={"device": "cpu", "epochs": 1}
    )
    with pytest.raises(ValueError, match=r"below the Nyquist frequency 62\.5 Hz"):
        train(high, synth_file, tmp_path / "too-high")
    assert not (tmp_path / "too-high").exists()
    from innpar_freia.data.synthetic import synthesize_dataset

    fast = synthesize_dataset(tmp_path / "250.h5", subjects=6, minutes=0.5, fs=250.0, seed=1)
    lp80 = resolve_config(
        "tiny", model={"output_lowpass_hz": 80.0}, train={"device": "cpu", "epochs": 1}
    )
    run = train(lp80, fast, tmp_path / "fast")
    assert load_checkpoint(run.last_checkpoint).run_config.model.fs == 250.0


def test_a_rate_or_window_length_set_otherwise_than_the_files_is_refused(
    synth_file: Path, tmp_path: Path
) -> None:
    """Training takes both from the data file: a value the caller set was replaced by the
    file's without a word (a 250-Hz, 1250-sample network trained at 125 Hz, 625)."""
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.train import fit_to_data

    wrong = resolve_config("tiny", model={"fs": 250.0, "window_length": 1250}, train={"epochs": 1})
    with pytest.raises(ConfigError) as err:
        train(wrong, synth_file, tmp_path / "wrong")
    assert "the model is set to fs = 250 Hz (the file: 125 Hz) and window_length = 1250 " in str(
        err.value
    )
    assert "(the file: 625), but training takes the sampling rate and window length" in str(
        err.value
    )
    assert not (tmp_path / "wrong").exists()
    with pytest.raises(ConfigError, match=r"set to window_length = 600 \(the file: 625\)"):
        fit_to_data(resolve_config("tiny", model={"window_length": 600}), synth_file)
    # A preset's defaults are fitted to the file, and a value that is the file's is kept.
    fast = synthesize_dataset(tmp_path / "250.h5", subjects=4, minutes=0.3, fs=250.0, seed=1)
    for model in ({}, {"fs": 250.0, "window_length": 1250}, {"fs": 250.0}):
        fitted, _, _ = fit_to_data(resolve_config("tiny", model=model), fast)
        assert (fitted.model.fs, fitted.model.window_length) == (250.0, 1250)


def test_a_dict_for_a_run_config_is_named(synth_file: Path, tmp_path: Path) -> None:
    """Was "'dict' object has no attribute 'train'", from deep inside the run."""
    with pytest.raises(ConfigError, match=r"run_config must be a RunConfig \(resolve_config"):
        train({"preset": "tiny"}, synth_file, tmp_path / "r")  # type: ignore[arg-type]
    assert not (tmp_path / "r").exists()


def _pair_batch(n: int = 6, length: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, T) reference tensor with distinct windows and subject codes 0,0,0,1,1,2."""
    gen = torch.Generator().manual_seed(1)
    ref = torch.rand(n, 2, length, generator=gen)
    return ref, torch.tensor([0, 0, 0, 1, 1, 2])


def test_pair_loss_is_blind_to_a_persons_constant_error() -> None:
    from innpar_freia.train import pair_l1

    ref, groups = _pair_batch()
    offsets = torch.tensor([0.3, 0.3, 0.3, -0.2, -0.2, 5.0])[:, None, None]
    scales = torch.tensor([1.5, 1.5, 1.5, 0.5, 0.5, 3.0])[:, None, None]
    # A level error that is the same in every window of a person costs nothing once a
    # window of that person calibrates the others, and so does a scale error with the
    # offset-scale calibration; the plain L1 charges both in full.
    assert float(pair_l1(ref + offsets, ref, 50, groups, "offset")) < 1e-6
    assert float(pair_l1(ref * scales + offsets, ref, 50, groups, "offset-scale")) < 1e-6
    assert float(pair_l1(ref * scales + offsets, ref, 50, groups, "offset")) > 0.01
    # A level error that changes within a person is charged by the change.
    drift = ref.clone()
    drift[1, 0] += 0.4  # subject 0: window 1 off by 0.4 against windows 0 and 2
    # pairs of subject 0: (0,1) (0,2) (1,0) (1,2) (2,0) (2,1); subject 1: (3,4) (4,3)
    # window 1 scored: +0.4 twice; window 1 calibrating: -0.4 twice; the rest 0.
    assert float(pair_l1(drift, ref, 50, groups, "offset")) == pytest.approx(4 * 0.4 / 8)
    # Samples beyond `length` (the padding) are not scored.
    padded = ref.clone()
    padded[1, 0, 50:] += 9.0
    assert float(pair_l1(padded[..., :60], ref[..., :60], 50, groups, "offset")) < 1e-6


def _hand_pair() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two windows of one subject, small enough to calibrate by hand: prediction, reference
    and subject codes."""
    ref = torch.zeros(2, 2, 4)
    ref[0, 0] = torch.tensor([80.0, 120.0, 90.0, 100.0])  # mean 97.5, PP 40
    ref[1, 0] = torch.tensor([85.0, 125.0, 95.0, 105.0])  # mean 102.5, PP 40
    pred = torch.zeros(2, 2, 4)
    pred[0, 0] = torch.tensor([0.0, 20.0, 5.0, 15.0])  # mean 10, PP 20 -> scale 2
    pred[1, 0] = torch.tensor([2.0, 22.0, 7.0, 17.0])  # mean 12, PP 20 -> scale 2
    return pred, ref, torch.tensor([7, 7])


def test_pair_loss_matches_the_calibration_formula_by_hand() -> None:
    from innpar_freia.train import pair_l1

    pred, ref, groups = _hand_pair()
    # window 1 calibrated by window 0: (pred - 10) * 2 + 97.5 = [81.5, 121.5, 91.5, 111.5]
    # window 0 calibrated by window 1: (pred - 12) * (40 / 20) + 102.5 = [78.5, ...]
    cal_1 = (pred[1, 0] - 10.0) * 2.0 + 97.5
    cal_0 = (pred[0, 0] - 12.0) * 2.0 + 102.5
    expected = 0.5 * float((cal_1 - ref[1, 0]).abs().mean() + (cal_0 - ref[0, 0]).abs().mean())
    assert float(pair_l1(pred, ref, 4, groups, "offset-scale")) == pytest.approx(expected)


def test_pair_loss_scales_by_the_calibrating_window() -> None:
    """The scale of a pair is its calibrating window's PP_ref / PP_pred: taking the scored
    window's went unnoticed while both windows had the same pulse pressures."""
    from innpar_freia.train import pair_l1

    pred, ref, groups = _hand_pair()
    ref[1, 0] = torch.tensor([85.0, 135.0, 95.0, 105.0])  # mean 105, PP 50: scale 2.5
    cal_1 = (pred[1, 0] - 10.0) * (40.0 / 20.0) + 97.5  # window 0 calibrates window 1
    cal_0 = (pred[0, 0] - 12.0) * (50.0 / 20.0) + 105.0  # window 1 calibrates window 0
    expected = 0.5 * float((cal_1 - ref[1, 0]).abs().mean() + (cal_0 - ref[0, 0]).abs().mean())
    assert float(pair_l1(pred, ref, 4, groups, "offset-scale")) == pytest.approx(expected)


def test_pair_extremes_loss_scores_the_calibrated_extremes_by_hand() -> None:
    from innpar_freia.train import pair_losses

    pred, ref, groups = _hand_pair()
    # Calibrated as in the waveform test above: window 1 -> [81.5, 121.5, 91.5, 111.5]
    # (max 121.5 vs 125, min 81.5 vs 85), window 0 -> [78.5, 118.5, 88.5, 108.5] (max
    # 118.5 vs 120, min 78.5 vs 80): mean of |3.5|, |3.5|, |1.5|, |1.5|.
    assert float(pair_losses(pred, ref, 4, groups, "offset-scale")[1]) == pytest.approx(2.5)
    # Offset only: window 1 -> pred - 10 + 97.5, window 0 -> pred - 12 + 102.5.
    expected = 0.25 * (abs(22 - 10 + 97.5 - 125) + abs(2 - 10 + 97.5 - 85))
    expected += 0.25 * (abs(20 - 12 + 102.5 - 120) + abs(0 - 12 + 102.5 - 80))
    assert float(pair_losses(pred, ref, 4, groups, "offset")[1]) == pytest.approx(expected)
    # A person's constant level and scale error costs nothing; a window that changes does.
    offsets = torch.tensor([0.3, 0.3])[:, None, None]
    assert float(pair_losses(ref * 1.7 + offsets, ref, 4, groups, "offset-scale")[1]) < 1e-4
    stretched = ref.clone()
    stretched[1, 0, 1] += 10.0  # window 1's systolic peak only
    assert float(pair_losses(stretched, ref, 4, groups, "offset-scale")[1]) > 1.0
    # No two windows of one subject: zero, with a gradient for DDP.
    lone = pred.clone().requires_grad_(True)
    loss = pair_losses(lone, ref, 4, torch.tensor([0, 1]), "offset-scale")[1]
    loss.backward()
    assert float(loss.detach()) == 0.0 and lone.grad is not None
    with pytest.raises(ValueError, match="pair_extremes_weight"):
        resolve_config("tiny", train={"pair_extremes_weight": -1.0})


def test_train_step_adds_the_weighted_pair_extremes_loss() -> None:
    from innpar_freia.train import TrainStep, pair_losses

    plain = resolve_config("tiny", train={"device": "cpu", "pair_weight": 1.0})
    both = resolve_config(
        "tiny", train={"device": "cpu", "pair_weight": 1.0, "pair_extremes_weight": 2.0}
    )
    alone = resolve_config("tiny", train={"device": "cpu", "pair_extremes_weight": 2.0})
    model, ppg, abp, groups = _tiny_step_inputs()
    with torch.no_grad():
        base, _, pair = TrainStep(model, plain.train)(ppg, abp, groups)
        total, _, pair_both = TrainStep(model, both.train)(ppg, abp, groups)
        only, _, pair_alone = TrainStep(model, alone.train)(ppg, abp, groups)
        nothing, _, _ = TrainStep(model, resolve_config("tiny").train)(ppg, abp, groups)
        out, _ = model(model.make_input(ppg), jac=False)
        extra = pair_losses(out, model.make_input(abp), 625, groups, "offset-scale")[1]
    assert float(extra) > 0
    assert float(total) == pytest.approx(float(base) + 2.0 * float(extra), rel=1e-5)
    assert float(only) == pytest.approx(float(nothing) + 2.0 * float(extra), rel=1e-5)
    # The logged within-subject term stays the waveform one (zero when that is off).
    assert float(pair_both) == pytest.approx(float(pair)) and float(pair_alone) == 0.0
    with pytest.raises(ValueError, match="subject code"):
        TrainStep(model, alone.train)(ppg, abp)


def test_pair_loss_with_peaks_scales_pairs_as_the_protocol_does() -> None:
    from innpar_freia.data.dataset import Normalisation
    from innpar_freia.metrics import calibration_for
    from innpar_freia.signal import bp_values
    from innpar_freia.train import pair_l1, peak_indices

    fs, length = 100.0, 500
    n = np.arange(length)

    def pulse(mid: float, amp: float) -> np.ndarray:  # peaks at 50, 150, ..., 450
        return mid - amp * np.cos(2 * np.pi * n / 100)

    norm = Normalisation("minmax", 20.0, 200.0)
    ref_mm = np.stack([pulse(100.0, 20.0), pulse(105.0, 25.0)])
    # Half a period late: systolic peaks at 100, ..., 400 (an even count, so the median is
    # the mean of two), troughs where the reference has its peaks, which reading the
    # reference at the prediction's indices would take for its PP.
    pred_mm = np.stack([pulse(60.0, -10.0), pulse(62.0, -12.0)])
    pred_mm[0, 200] += 15.0  # one tall systolic peak: the range grows, the median peak not
    pred_mm[0, 300] += 3.0  # the two middle peaks differ
    pred_mm[1, 100] += 2.0

    def as_batch(x: np.ndarray) -> torch.Tensor:
        return torch.tensor(norm.normalise_abp(x), dtype=torch.float64)[:, None, :]

    pred, ref = as_batch(pred_mm).requires_grad_(True), as_batch(ref_mm)
    groups = torch.tensor([3, 3])
    peaks = (peak_indices(pred[:, 0], norm, fs), peak_indices(ref[:, 0], norm, fs))
    loss = pair_l1(pred, ref, length, groups, "offset-scale", peaks)
    # The protocol's own calibration (metrics.calibration_for) of each window by the other.
    expected = 0.0
    for c, t in ((0, 1), (1, 0)):
        p_sbp, p_dbp, p_map = bp_values(pred_mm[c], fs)
        r_sbp, r_dbp, r_map = bp_values(ref_mm[c], fs)
        cal = calibration_for(p_map, p_sbp, p_dbp, r_sbp, r_dbp, r_map)
        expected += np.abs(cal.apply(pred_mm[t]) - ref_mm[t]).mean() / norm.abp_scale / 2
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)
    # max - min sees the tall peak, so the range-scaled loss is another number.
    ranged = float(pair_l1(pred, ref, length, groups, "offset-scale").detach())
    assert abs(ranged - expected) > 0.1 * expected
    loss.backward()  # differentiable in the values at the peaks and troughs
    assert pred.grad is not None and float(pred.grad[0, 0, peaks[0][0]].abs().sum()) > 0


def test_train_step_with_peak_pulse_pressure() -> None:
    from innpar_freia.data.dataset import Normalisation
    from innpar_freia.train import TrainStep, pair_l1, peak_indices

    cfg = resolve_config("tiny", train={"device": "cpu", "pair_weight": 0.5, "pair_pp": "peaks"})
    plain = resolve_config("tiny", train={"device": "cpu"})
    model, ppg, abp, groups = _tiny_step_inputs()
    norm = Normalisation("minmax", 20.0, 200.0)
    with torch.no_grad():
        base, _, _ = TrainStep(model, plain.train)(ppg, abp, groups)
        total, _, pair = TrainStep(model, cfg.train, norm)(ppg, abp, groups)
        out, _ = model(model.make_input(ppg), jac=False)
        y = model.make_input(abp)
        fs = model.config.fs
        peaks = (peak_indices(out[:, 0, :625], norm, fs), peak_indices(y[:, 0, :625], norm, fs))
        extra = pair_l1(out, y, 625, groups, "offset-scale", peaks)
        ranged = pair_l1(out, y, 625, groups, "offset-scale")
    assert float(pair) == pytest.approx(float(extra), rel=1e-6) and float(extra) != float(ranged)
    assert float(total) == pytest.approx(float(base) + 0.5 * float(extra), rel=1e-5)
    with pytest.raises(ValueError, match="normalisation"):
        TrainStep(model, cfg.train)
    with pytest.raises(ValueError, match="pair_pp"):
        resolve_config("tiny", train={"pair_pp": "median"})
    with pytest.raises(ValueError, match="only pair_calibration"):
        resolve_config("tiny", train={"pair_pp": "peaks", "pair_calibration": "offset"})


def test_pair_loss_without_pairs_is_zero_but_connected() -> None:
    from innpar_freia.train import pair_l1, subject_pairs

    ref, _ = _pair_batch()
    pred = (ref + 0.1).requires_grad_(True)
    loss = pair_l1(pred, ref, 50, torch.arange(6), "offset-scale")
    assert float(loss.detach()) == 0.0
    loss.backward()  # DistributedDataParallel needs a gradient for every parameter
    assert pred.grad is not None and float(pred.grad.abs().sum()) == 0.0
    # One subject filling a large batch: the pairs are capped, evenly spread.
    c_idx, t_idx = subject_pairs(torch.zeros(100, dtype=torch.long))
    assert len(c_idx) == 800 and bool((c_idx != t_idx).all())
    assert len(set(c_idx.tolist())) == 100


def test_train_step_adds_the_weighted_pair_loss() -> None:
    from innpar_freia.train import TrainStep, pair_l1

    plain = resolve_config("tiny", train={"device": "cpu"})
    weighted = resolve_config("tiny", train={"device": "cpu", "pair_weight": 0.5})
    model, ppg, abp, groups = _tiny_step_inputs()
    with torch.no_grad():
        base, _, _ = TrainStep(model, plain.train)(ppg, abp, groups)
        total, _, pair = TrainStep(model, weighted.train)(ppg, abp, groups)
        out, _ = model(model.make_input(ppg), jac=False)
        extra = pair_l1(out, model.make_input(abp), 625, groups, "offset-scale")
    assert float(extra) > 0 and float(pair) == pytest.approx(float(extra), rel=1e-6)
    assert float(total) == pytest.approx(float(base) + 0.5 * float(extra), rel=1e-5)
    with pytest.raises(ValueError, match="subject code"):
        TrainStep(model, weighted.train)(ppg, abp)
    with pytest.raises(ValueError, match="pair_calibration"):
        resolve_config("tiny", train={"pair_calibration": "scale"})
    with pytest.raises(ValueError, match="pair_weight"):
        resolve_config("tiny", train={"pair_weight": -0.1})


def test_training_with_the_pair_loss_logs_it(synth_file: Path, tmp_path: Path) -> None:
    result = train(tiny(pair_weight=1.0, batch_size=64), synth_file, tmp_path / "pairs")
    losses = [r["train_pair_loss"] for r in result.history]
    # The synthetic training split has 6 subjects, so every batch holds same-subject pairs.
    assert all(np.isfinite(v) and v > 0 for v in losses)
    assert "train_pair_loss" not in train(tiny(), synth_file, tmp_path / "plain").history[0]
    # The same with the protocol's peak-based pulse pressure: the normalisation reaches it.
    cfg = tiny(pair_weight=1.0, pair_pp="peaks", batch_size=64)
    peaks = train(cfg, synth_file, tmp_path / "pk")
    pk_losses = [r["train_pair_loss"] for r in peaks.history]
    assert all(np.isfinite(v) and v > 0 for v in pk_losses) and pk_losses != losses


def test_validation_reports_the_protocols_calibrated_errors(
    synth_file: Path, tmp_path: Path
) -> None:
    from innpar_freia.evaluate import evaluate

    result = train(tiny(epochs=1), synth_file, tmp_path / "cal")
    record = result.history[-1]
    scored, _ = evaluate(load_checkpoint(result.best_checkpoint), synth_file, "val")
    free, cal = scored["calibration_free"], scored["calibrated"]
    assert record["val_mae"] == pytest.approx(free["waveform"]["mae"], abs=1e-3)
    assert record["val_sbp_mae"] == pytest.approx(free["sbp"]["mae"], abs=1e-3)
    # Every epoch also shows what the calibrated protocol would score, with the same rule.
    assert record["val_cal_mae"] == pytest.approx(cal["waveform"]["mae"], abs=1e-3)
    for name in ("sbp", "dbp", "map"):
        assert record[f"val_cal_{name}_mae"] == pytest.approx(cal[name]["mae"], abs=1e-3)
    assert record["val_cal_mae"] != record["val_mae"]


def test_paired_sampling_feeds_same_subject_pairs(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[np.ndarray] = []
    original = train_mod.pair_losses

    def spy(out, target, length, groups, mode, peaks=None):
        seen.append(groups.numpy().copy())
        return original(out, target, length, groups, mode, peaks)

    monkeypatch.setattr(train_mod, "pair_losses", spy)
    cfg = tiny(epochs=1, batch_size=4, pair_weight=1.0, paired_sampling=True)
    train(cfg, synth_file, tmp_path / "paired")
    info = read_info(synth_file)
    n_train = int((info.split == "train").sum())
    assert sum(len(g) for g in seen) >= n_train  # every training window, in batches of 4
    # Batches of 4 from 6 subjects: each is two pairs of one person (bar the odd leftovers).
    paired = sum(g[0] == g[1] and g[2] == g[3] for g in seen if len(g) == 4)
    assert paired >= len(seen) - 3
    # Groups of 4 (subject_group): each batch of 4 is one person's, bar the left-overs.
    seen.clear()
    cfg = tiny(epochs=1, batch_size=4, pair_weight=1.0, paired_sampling=True, subject_group=4)
    train(cfg, synth_file, tmp_path / "grouped")
    one_person = sum(len(set(g.tolist())) == 1 for g in seen if len(g) == 4)
    assert sum(len(g) for g in seen) >= n_train and one_person >= len(seen) - 3
    with pytest.raises(ConfigError, match="subject_group"):
        tiny(batch_size=4, paired_sampling=True, subject_group=8)
    with pytest.raises(ConfigError, match="subject_group"):
        tiny(subject_group=1)


def test_hardware_line_says_whether_bf16_is_native(monkeypatch: pytest.MonkeyPatch) -> None:
    """Results name the CPU's vector extensions and its bf16 support: one model name
    ("AMD EPYC") covers CPUs that differ 5x in bf16 throughput."""
    import torch

    import innpar_freia.distributed as distributed

    for native, words in ((True, "native bf16"), (False, "bf16 emulated")):
        monkeypatch.setattr(distributed, "native_bf16", lambda device, n=native: n)
        line = distributed.hardware_description("cpu")
        assert line.endswith(f"{torch.backends.cpu.get_cpu_capability()}, {words}"), line
    # The real test agrees with the CPU's own flags where Linux reports them.
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "flags" in flags:
        has = " avx512_bf16" in flags or " amx_bf16" in flags
        monkeypatch.undo()
        assert distributed.native_bf16("cpu") == has


def test_nan_in_a_validation_window_stops_training_before_its_first_batch(
    synth_file: Path, tmp_path: Path
):
    """Read lazily, a bad validation window was met only after a whole epoch of training
    (and under torchrun only by rank 0, leaving the others in a collective): every process
    checks the validation windows first."""
    import shutil

    import h5py

    from innpar_freia.errors import DataError
    from innpar_freia.train import SilentCallbacks

    data = Path(shutil.copy(synth_file, tmp_path / "nan_val.h5"))
    bad = int(plan_splits(read_info(data)).val[-1])
    with h5py.File(data, "r+") as fh:
        fh["ppg"][bad, 3] = float("inf")

    class Count(SilentCallbacks):
        batches = 0

        def on_batch(self, epoch, step, steps, loss):
            Count.batches += 1

    with pytest.raises(DataError, match="1 window of 'ppg' holds NaN or inf"):
        train(tiny(preload="never"), data, tmp_path / "run", callbacks=Count())
    assert Count.batches == 0 and not (tmp_path / "run").exists()


def test_allinone_weights_are_refused_under_another_freia_version(synth_file: Path, tmp_path: Path):
    """FrEIA 0.2's AllInOneBlock clamps as clamp*tanh(a), later versions as
    clamp*tanh(a/clamp): a checkpoint records the FrEIA it was trained with, and
    AllInOneBlock weights are not loaded under another one (they would compute another
    function without a word)."""
    from innpar_freia.checkpoint import freia_version, save_checkpoint

    cfg = resolve_config(
        "tiny", model={"coupling": "allinone"}, train={"device": "cpu", "epochs": 1}
    )
    result = train(cfg, synth_file, tmp_path / "run")
    path = result.last_checkpoint
    payload = read_checkpoint(path)
    assert payload["freia_version"] == freia_version()
    assert (
        json.loads((tmp_path / "run" / "config.json").read_text())["environment"]["freia_version"]
        == freia_version()
    )
    payload["freia_version"] = "0.3"
    save_checkpoint(path, payload)
    with pytest.raises(CheckpointError, match=r"trained with FrEIA 0\.3, but FrEIA .* installed"):
        load_checkpoint(path)
    # Resuming would record the installed version in the next checkpoint: refused too.
    with pytest.raises(CheckpointError, match=r"trained with FrEIA 0\.3"):
        train(None, synth_file, tmp_path / "run", resume=True, resume_overrides={"epochs": 2})
    assert read_checkpoint(path)["freia_version"] == "0.3"
    del payload["freia_version"]  # a checkpoint from before versions were recorded
    torch.save(payload, path)
    assert load_checkpoint(path).run_config.model.coupling == "allinone"


def test_a_batch_larger_than_the_training_split_is_said(synth_file: Path, tmp_path: Path):
    """config.json records batch_size 100000 while every step took the 30-odd windows
    there are: the user is told it is full-batch training."""
    messages: list[str] = []

    class Told(train_mod.SilentCallbacks):
        def on_message(self, text):
            messages.append(text)

    train(tiny(epochs=1, batch_size=100_000), synth_file, tmp_path / "r", callbacks=Told())
    assert any("batch_size 100000 is more than the" in m and "full-batch" in m for m in messages)


def test_predictions_leave_the_caller_s_state_alone(tiny_run: Path, synth_file: Path, tmp_path):
    """Loading drew from the caller's random numbers; predicting touched process-wide TF32
    flags on the CPU (breaking torch.get_float32_matmul_precision for a caller of the newer
    API), and ran a model left in training mode as it was: the U-Net's batch norm made a
    window's prediction depend on its batch and changed its running statistics."""
    best = tiny_run / "checkpoints" / "best.pt"
    torch.manual_seed(123)
    np.random.seed(7)  # noqa: NPY002 - the global RNG is what a script seeds
    expected = torch.rand(1), np.random.rand()  # noqa: NPY002
    torch.manual_seed(123)
    np.random.seed(7)  # noqa: NPY002
    ckpt = load_checkpoint(best)
    assert (torch.rand(1), np.random.rand()) == expected  # noqa: NPY002
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        ppg = np.random.default_rng(0).normal(size=(5, ckpt.window_length))
        ckpt.predict_abp(ppg)
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags
    cfg = resolve_config("unet", train={"epochs": 1, "batch_size": 32, "device": "cpu"})
    unet = load_checkpoint(train(cfg, synth_file, tmp_path / "unet").best_checkpoint)
    alone = unet.predict_abp(ppg[:1])
    stats = [b.clone() for b in unet.model.buffers()]
    unet.model.train()
    assert np.allclose(unet.predict_abp(ppg)[:1], alone, atol=1e-4)
    assert unet.model.training  # as the caller left it
    assert all(torch.equal(a, b) for a, b in zip(stats, unet.model.buffers(), strict=True))
    # Odd inputs are named, not a numpy or torch error from deep inside.
    for bad, error, message in (
        (3.0, ValueError, r"must be an array of shape \(n, 625\), got shape \(\)"),
        (ppg[0], ValueError, r"one window: add an axis"),
        (ppg, TypeError, r"fs must be one number"),
    ):
        with pytest.raises(error, match=message):
            ckpt.predict_abp(bad, fs=np.array([125.0]) if error is TypeError else None)
    grad = torch.tensor(ppg, requires_grad=True)
    assert np.array_equal(ckpt.predict_abp(grad), ckpt.predict_abp(ppg))
    with pytest.raises(ValueError, match="the batch is empty"):
        ckpt.model.ppg_to_abp(torch.zeros(0, ckpt.window_length))
    with pytest.raises(TypeError, match="build_model takes a ModelConfig"):
        build_model("paper")
    with pytest.raises(ValueError, match="arch is 'unet'"):
        build_inn(ModelConfig.from_preset("unet"))


def test_the_within_subject_loss_is_reproducible_on_several_threads(synth_file: Path, tmp_path):
    """The pair loss picked rows by advanced indexing, whose backward pass adds a window's
    repeated rows in an order that varies between CPU threads: two runs of the default
    recipe with the same seed ended with other weights (and a resumed one was not exact)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = [
            train(tiny(pair_weight=1.0, epochs=3), synth_file, tmp_path / name)
            for name in ("a", "b")
        ]
    finally:
        torch.set_num_threads(threads)
    a, b = (load_checkpoint(r.last_checkpoint).model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_inside_the_warm_up_names_the_warm_up(synth_file: Path, tmp_path: Path):
    """'warmup_epochs must be >= 0 and <= 2' named a setting --resume cannot change."""
    import shutil

    run = train(tiny(epochs=4, warmup_epochs=3, keep_checkpoints=[1]), synth_file, tmp_path / "r")
    ckpts = run.run_dir / "checkpoints"
    shutil.copy(ckpts / "epoch-0001.pt", ckpts / "last.pt")  # as if stopped after epoch 1
    with pytest.raises(RunDirError, match=r"inside its 3-epoch warm-up.*give at least 3"):
        train(None, synth_file, run.run_dir, resume=True, resume_overrides={"epochs": 2})


def test_a_full_disk_while_an_epoch_is_logged_names_the_log(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk fails the write() of an epoch's line in metrics.jsonl, which names no
    file: `innpar train` said "No space left on device" alone. Guards against that."""
    import errno

    def full(record):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_mod, "jsonable", full)
    run = tmp_path / "run"
    from innpar_freia.errors import DataError

    with pytest.raises(DataError) as err:
        train(tiny(epochs=1), synth_file, run)
    assert str(err.value) == f"cannot write {run / 'metrics.jsonl'}: No space left on device"


def test_a_resume_on_other_data_says_so_before_what_the_data_lacks(
    synth_file: Path, tmp_path: Path
) -> None:
    """Guards against `innpar train --resume` on another file that lacks the run's test
    fold saying "test fold 4 is not in OTHER" (the user then looks for a fold) rather than
    that OTHER is not the data the run was trained on."""
    from innpar_freia.data.splits import split_file
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.errors import DataError

    run = tmp_path / "run"
    train(tiny(epochs=1, test_fold=4), synth_file, run)
    other = synthesize_dataset(tmp_path / "other.h5", subjects=6, minutes=0.5, seed=7)
    split_file(other, folds=3, seed=0)
    with pytest.raises(DataError) as err:
        train(None, other, run, resume=True, resume_overrides={"epochs": 2})
    assert str(err.value).startswith(
        f"{other} is not the data the run being resumed was trained on (n_windows"
    )


def test_callbacks_that_lack_a_method_are_refused_by_name_before_training(
    synth_file: Path, tmp_path: Path
) -> None:
    """Bug: callbacks with only on_epoch failed once training got there, with
    "AttributeError: ... has no attribute 'on_start'"; a SilentCallbacks subclass that
    overrides on_epoch alone is the documented way."""

    class OnlyEpoch:
        def on_epoch(self, record):
            pass

    with pytest.raises(TypeError, match=r"lack on_start, on_batch, on_message: subclass .*Silent"):
        train(tiny(epochs=1), synth_file, tmp_path / "run", callbacks=OnlyEpoch())
    assert not (tmp_path / "run").exists()

    epochs = []

    class Progress(train_mod.SilentCallbacks):
        def on_epoch(self, record):
            epochs.append(record["epoch"])

    train(tiny(epochs=1), synth_file, tmp_path / "run", callbacks=Progress())
    assert epochs == [1]


def test_train_under_a_callers_no_grad_trains_and_under_inference_mode_says_why_not(
    synth_file: Path, tmp_path: Path
) -> None:
    """Under ``torch.no_grad()`` the first step failed with "element 0 of tensors does not
    require grad"; ``torch.inference_mode()`` cannot be left, so it is refused by name."""
    with torch.no_grad():
        result = train(tiny(epochs=1), synth_file, tmp_path / "run")
        assert not torch.is_grad_enabled()  # the caller's mode is back
    assert result.epochs_completed == 1 and result.last_checkpoint.is_file()
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match=r"^train\(\) cannot run under torch\.inference"):
            train(tiny(epochs=1), synth_file, tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_train_without_callbacks_gives_its_warnings_as_python_warnings(
    synth_file: Path, tmp_path: Path
) -> None:
    """With the default ``callbacks=None`` a Python caller was told nothing, not even that
    its early stopping was off: each warning is a UserWarning, and every message, the
    notes too, is in the result. A caller's callbacks get them instead, not warned twice."""
    config = tiny(epochs=1, test_fold=0, val_fold=-1, early_stopping=1)
    with pytest.warns(UserWarning) as caught:
        result = train(config, synth_file, tmp_path / "run")
    said = [str(w.message) for w in caught if w.category is UserWarning]
    # Each points at the caller's line, not at train.py's (where Python's default filter
    # then showed a second train()'s warning of the same text no more).
    assert {w.filename for w in caught if w.category is UserWarning} == {__file__}
    assert [s for s in said if "watches the validation MAE" in s] == [
        "early_stopping = 1 watches the validation MAE, and this run has no validation "
        "windows: it is off, and the run trains all 1 epochs"
    ]
    assert "no validation windows: best.pt will be the last epoch" in result.messages
    assert any(m.startswith("warning: early_stopping = 1") for m in result.messages)

    class Told(train_mod.SilentCallbacks):
        def __init__(self) -> None:
            self.messages: list[str] = []

        def on_message(self, text: str) -> None:
            self.messages.append(text)

    told = Told()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        again = train(config, synth_file, tmp_path / "told", callbacks=told)
    assert told.messages == again.messages == result.messages


def test_a_folder_with_the_users_own_config_json_is_no_run_and_force_keeps_the_file(
    synth_file: Path, tmp_path: Path
) -> None:
    """A folder holding the user's own config.json was "a run without a checkpoint ...
    start it again with --force", and --force replaced the user's file. A run is told by
    what its files hold; other files of its names are refused, even with force."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "config.json").write_text('{"my": "settings"}')
    refusal = (
        r"proj holds config.json that innpar train did not write: it is not a run's and "
        r"will not be replaced, even with force=True or resume=True; give the run another "
        r"folder"
    )
    for force in (False, True):
        with pytest.raises(RunDirError, match=refusal):
            train(tiny(epochs=1), synth_file, project, force=force)
    with pytest.raises(RunDirError, match=refusal):
        train(None, synth_file, project, resume=True)
    assert train_mod.holds_run(project) is False
    assert (project / "config.json").read_text() == '{"my": "settings"}'
    assert sorted(p.name for p in project.iterdir()) == ["config.json"]
    # Without a config.json, a metrics.jsonl of other lines is the user's too.
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "metrics.jsonl").write_text("step,loss\n")
    with pytest.raises(RunDirError, match=r"logs holds metrics\.jsonl that innpar train did not"):
        train(tiny(epochs=1), synth_file, logs, force=True)
    assert (logs / "metrics.jsonl").read_text() == "step,loss\n"
    # Shaped like a part of a run's ("{}", a preset and a train table) is still the user's.
    for own in ("{}", '{"preset": "tiny", "train": {"epochs": 5}}'):
        (project / "config.json").write_text(own)
        with pytest.raises(RunDirError, match=refusal):
            train(tiny(epochs=1), synth_file, project, force=True)
        assert (project / "config.json").read_text() == own


def test_a_run_whose_config_json_was_edited_by_hand_is_still_a_run(
    synth_file: Path, tmp_path: Path
) -> None:
    """A key added to a run's config.json (notes, or a later version's) made the run "not a
    run's" config.json: --force refused it while --resume went on. Guards against asking
    for nothing but the keys train writes."""
    run = tmp_path / "r"
    train(tiny(epochs=1), synth_file, run)
    described = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**described, "notes": "baseline"}))
    assert train_mod.holds_run(run) and not train_mod.foreign_run_files(run)
    with pytest.raises(RunDirError, match="already holds a run; pass resume=True"):
        train(tiny(epochs=1), synth_file, run)
    assert train(tiny(epochs=1), synth_file, run, force=True).epochs_completed == 1


def test_resume_and_force_keep_a_users_files_beside_a_runs_checkpoints(
    synth_file: Path, tmp_path: Path
) -> None:
    """The user's config.json beside a run's checkpoints/last.pt was resumed, and the
    resume rewrote the file; another program's checkpoints/ folder (model.pt, no
    config.json) counted as a run, and --force deleted it. A run's own files still are one:
    its checkpoints without config.json (deleted by hand) are replaced by --force."""
    run = tmp_path / "r"
    train(tiny(epochs=1), synth_file, run)
    (run / "config.json").write_text('{"my": "settings"}')
    with pytest.raises(RunDirError, match=r"r holds config\.json that innpar train did not"):
        train(None, synth_file, run, resume=True, resume_overrides={"epochs": 2})
    assert (run / "config.json").read_text() == '{"my": "settings"}'
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 1

    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    torch.save({"weights": torch.zeros(3)}, other / "checkpoints" / "model.pt")
    torch.save({"weights": torch.ones(3)}, other / "checkpoints" / "last.pt")
    assert train_mod.foreign_run_files(other) == ["checkpoints/last.pt", "checkpoints/model.pt"]
    assert train_mod.holds_run(other) is False
    for force, resume in ((True, False), (False, True)):
        with pytest.raises(RunDirError, match=r"other holds checkpoints/last\.pt and checkpoints/"):
            train(None if resume else tiny(epochs=1), synth_file, other, force=force, resume=resume)
    assert sorted(p.name for p in (other / "checkpoints").iterdir()) == ["last.pt", "model.pt"]

    # A whole model saved with its code (weights_only refuses it) is another program's too.
    torch.save(torch.nn.Linear(2, 1), other / "checkpoints" / "last.pt")
    assert train_mod.foreign_run_files(other) == ["checkpoints/last.pt", "checkpoints/model.pt"]

    (run / "config.json").unlink()
    assert train_mod.holds_run(run) and not train_mod.foreign_run_files(run)
    # What a file system or a killed write leaves there is no reason to refuse the run, nor
    # is its own checkpoint cut short (an interrupted copy): --force can replace it.
    (run / "checkpoints" / ".DS_Store").write_bytes(b"\0\1")
    (run / "checkpoints" / ".last.pt.123.tmp").write_bytes(b"PK")
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    assert train_mod.holds_run(run) and not train_mod.foreign_run_files(run)
    # Another hidden file is the user's (a .git of their own): not replaced.
    (run / "checkpoints" / ".git").mkdir()
    assert train_mod.foreign_run_files(run) == ["checkpoints/.git"]
    (run / "checkpoints" / ".git").rmdir()
    (run / "checkpoints" / ".notes.tmp").write_text("mine")  # not a name train writes
    assert train_mod.foreign_run_files(run) == ["checkpoints/.notes.tmp"]
    (run / "checkpoints" / ".notes.tmp").unlink()
    # Another program's last.pt cut short is a damaged zip too, but without the format
    # marker that a run's own shows in its first bytes: it is not replaced.
    torch.save({"weights": torch.ones(3)}, other / "checkpoints" / "last.pt")
    theirs = other / "checkpoints" / "last.pt"
    theirs.write_bytes(theirs.read_bytes()[:300])
    (other / "checkpoints" / "model.pt").unlink()
    assert train_mod.foreign_run_files(other) == ["checkpoints/last.pt"]
    with pytest.raises(RunDirError, match=r"other holds checkpoints/last\.pt"):
        train(tiny(epochs=1), synth_file, other, force=True)
    assert train(tiny(epochs=1), synth_file, run, force=True).epochs_completed == 1


def test_a_unet_run_made_before_the_unet_refused_invertible_settings_still_loads_and_resumes(
    synth_file: Path, tmp_path: Path
) -> None:
    """A U-Net over the tiny preset stored its 2 blocks (which built nothing); since
    ModelConfig refuses them with arch 'unet', such a run's checkpoint stopped loading and
    resuming ("holds an invalid configuration"). Stored settings the U-Net never acted on
    are taken as their defaults."""
    from innpar_freia.checkpoint import save_checkpoint

    run = tmp_path / "unet"
    train(resolve_config("unet", train={"epochs": 1, "batch_size": 32}), synth_file, run)
    older = {"preset": "tiny", "blocks": 2, "clamp": 1.0}
    for name in ("last.pt", "best.pt"):
        payload = read_checkpoint(run / "checkpoints" / name)
        payload["run_config"]["preset"] = older["preset"]
        payload["run_config"]["model"].update(blocks=older["blocks"], clamp=older["clamp"])
        save_checkpoint(run / "checkpoints" / name, payload)
    described = json.loads((run / "config.json").read_text())
    described["preset"] = older["preset"]
    described["model"].update(blocks=older["blocks"], clamp=older["clamp"])
    (run / "config.json").write_text(json.dumps(described))
    with pytest.raises(ConfigError, match=r"blocks = 2 and clamp = 1\.0 are settings"):
        ModelConfig.from_dict(described["model"])

    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt.run_config.model.arch == "unet"
    assert ckpt.run_config.model.blocks == ModelConfig().blocks
    again = train(None, synth_file, run, resume=True, resume_overrides={"epochs": 2})
    assert again.epochs_completed == 2


def test_predictions_that_overflow_with_finite_weights_stop_the_run_as_diverged(
    tmp_path: Path,
) -> None:
    """A step at a huge learning rate left finite weights whose validation predictions were
    NaN: reading their BP values raised "bp_values needs a window of numbers" (a ValueError
    with a traceback, which also stopped the experiment runner instead of its listing the
    run as failed). The run now stops as diverged, keeping nothing of the bad epoch."""
    from innpar_freia.data.synthetic import synthesize_dataset

    data = tmp_path / "s.h5"
    synthesize_dataset(data, subjects=10, minutes=0.5, seed=3, folds=5)
    config = resolve_config("tiny", train={"epochs": 2, "lr": 1000.0, "batch_size": 32})
    with pytest.raises(TrainingDiverged, match=r"^validation MAE became nan after epoch 1: "):
        train(config, data, tmp_path / "run")
    assert not (tmp_path / "run").exists()
