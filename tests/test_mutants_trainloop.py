"""Tests that pin what a mutation audit of the training loop and its run management
(innpar_freia.train's _train, validate and early stopping, best/last checkpoints, the run
directory, resuming and its fingerprints; innpar_freia.distributed) found unguarded: each
one fails when the bug named in its docstring is put into the package."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import innpar_freia.train as train_mod
from innpar_freia import distributed
from innpar_freia.checkpoint import read_checkpoint, save_checkpoint
from innpar_freia.config import RunConfig, resolve_config
from innpar_freia.data.dataset import WindowDataset, fit_normalisation, plan_splits
from innpar_freia.data.store import WindowWriter, read_info
from innpar_freia.distributed import DistInfo
from innpar_freia.errors import CheckpointError, DataError, RunDirError, TrainingDiverged
from innpar_freia.nn.model import build_model
from innpar_freia.train import (
    check_data,
    check_resume_data,
    check_run_dir,
    claim_run_dir,
    complete_epoch_checkpoints,
    content_fingerprint,
    discard_unstarted_run,
    fit_baselines,
    fit_to_data,
    next_run_dir,
    read_history,
    resume_config,
    run_reports,
    split_fingerprint,
    train,
    validate,
    windows_fingerprint,
)

# --------------------------------------------------------------------------------------
# The run directory
# --------------------------------------------------------------------------------------


def test_the_next_run_number_is_never_an_existing_entry(tmp_path: Path) -> None:
    """Every numbered entry takes its number: a run folder, a file, a dangling link (a
    run moved to a disk that is not mounted). Guards against counting folders only: a
    file or dangling link with the next run's name was then named again and again, and
    claim_run_dir's mkdir failed on it for ever (the command hung)."""
    (tmp_path / "00000-tiny").mkdir()
    (tmp_path / "00001-tiny").symlink_to(tmp_path / "unmounted" / "00001-tiny")
    assert next_run_dir(tmp_path, "tiny") == tmp_path / "00002-tiny"
    (tmp_path / "00002-tiny").write_text("a log kept beside the runs")
    assert next_run_dir(tmp_path, "tiny") == tmp_path / "00003-tiny"
    run_dir, _ = claim_run_dir(tmp_path, "tiny")
    assert run_dir == tmp_path / "00003-tiny" and run_dir.is_dir()


def test_a_name_starting_with_a_digit_int_refuses_is_not_a_run_number(tmp_path: Path) -> None:
    """Guards against taking every Unicode digit for a run number: "²-notes" passed
    ``isdigit`` and ``int`` then raised a ValueError (a traceback instead of a run)."""
    (tmp_path / "00004-tiny").mkdir()
    (tmp_path / "²-notes").mkdir()
    assert next_run_dir(tmp_path, "tiny") == tmp_path / "00005-tiny"


def test_a_number_taken_meanwhile_is_not_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two commands started together both see 00000 free; the one whose mkdir comes second
    takes the next number. Guards against creating the folder with exist_ok (both runs
    then wrote into one folder, and one was lost)."""
    real = train_mod.next_run_dir
    taken = tmp_path / "00000-tiny"
    taken.mkdir()  # the other command's mkdir, between our look and ours
    answers = iter([taken])

    def looked_too_early(root, preset):
        return next(answers, None) or real(root, preset)

    monkeypatch.setattr(train_mod, "next_run_dir", looked_too_early)
    run_dir, made = claim_run_dir(tmp_path, "tiny")
    assert run_dir == tmp_path / "00001-tiny" and run_dir.is_dir()
    assert made == [run_dir]


def test_the_folders_a_claimed_run_made_come_deepest_first(tmp_path: Path) -> None:
    """``remove_if_empty`` removes a failed run's folders in the order given, innermost
    first: the outer one is not empty until the inner one is gone. Guards against the
    parents coming back outermost first (then a failed run left runs/ behind)."""
    run_dir, made = claim_run_dir(tmp_path / "a" / "b", "tiny")
    assert run_dir == tmp_path / "a" / "b" / "00000-tiny"
    assert made == [run_dir, tmp_path / "a" / "b", tmp_path / "a"]


def test_only_eval_folders_with_a_report_are_the_run_s_reports(tmp_path: Path) -> None:
    """``--force`` sets aside the reports ``innpar eval`` wrote into the run (an
    ``eval-*`` folder holding metrics.json); a user's own ``eval-notes`` folder is not
    one. Guards against taking every ``eval-*`` entry."""
    for name in ("eval-val", "eval-test-fold2", "eval-notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "eval-val" / "metrics.json").write_text("{}")
    (tmp_path / "eval-test-fold2" / "metrics.json").write_text("{}")
    (tmp_path / "eval-notes" / "todo.txt").write_text("")
    (tmp_path / "eval-file").write_text("")
    assert run_reports(tmp_path) == ("eval-test-fold2", "eval-val")
    # A report written into the run folder itself: its files and its own figures only.
    (tmp_path / "report.md").write_text("")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "reconstructions.png").write_text("")
    (tmp_path / "figures" / "mine.png").write_text("")
    assert run_reports(tmp_path) == (
        "eval-test-fold2",
        "eval-val",
        "figures/reconstructions.png",
        "report.md",
    )


@pytest.mark.parametrize(("resume", "force"), [(False, False), (False, True), (True, False)])
def test_a_run_directory_that_is_a_file_is_refused(tmp_path: Path, resume, force) -> None:
    """Guards against the check that ``--out`` names a file going missing (the run then
    failed later with FileExistsError, or --force went on to replace a file)."""
    path = tmp_path / "run"
    path.write_text("a file")
    with pytest.raises(RunDirError, match="is a file"):
        check_run_dir(path, resume=resume, force=force)
    # A file above it: was "Not a directory: .../run/sub" from mkdir, after the data loaded.
    with pytest.raises(RunDirError, match=f"cannot write in {path}/sub/x: {path} is a file"):
        check_run_dir(path / "sub" / "x", resume=resume, force=force)


# --------------------------------------------------------------------------------------
# Resuming: the data a run was trained on
# --------------------------------------------------------------------------------------


def test_the_windows_fingerprint_covers_the_subjects() -> None:
    """The same window ids with their subjects relabelled is other data (the subject-wise
    folds and the calibrated validation group windows by subject). Guards against
    hashing the window ids alone."""
    ids = np.array(["w0", "w1", "w2"])
    a = SimpleNamespace(window_ids=ids, subjects=np.array(["s1", "s1", "s2"]))
    b = SimpleNamespace(window_ids=ids, subjects=np.array(["s1", "s2", "s2"]))
    assert windows_fingerprint(a) != windows_fingerprint(b)
    assert windows_fingerprint(a) == windows_fingerprint(
        SimpleNamespace(window_ids=ids.copy(), subjects=np.array(["s1", "s1", "s2"]))
    )


def test_the_split_fingerprint_covers_the_test_split() -> None:
    """Train and validation unchanged but other test windows (a test fold redrawn from
    windows no split used) is another experiment: its test report would no longer be held
    out from the same run. Guards against hashing the train and val splits only."""
    info = SimpleNamespace(window_ids=np.array([f"w{i}" for i in range(6)]))
    plan = SimpleNamespace(train=np.array([0, 1]), val=np.array([2]), test=np.array([3]))
    other_test = SimpleNamespace(train=np.array([0, 1]), val=np.array([2]), test=np.array([4]))
    assert split_fingerprint(info, plan) != split_fingerprint(info, other_test)
    # and each split is named: the same windows in another split are another plan
    swapped = SimpleNamespace(train=np.array([0, 1]), val=np.array([3]), test=np.array([2]))
    assert split_fingerprint(info, plan) != split_fingerprint(info, swapped)


@pytest.mark.parametrize("signal", ["ppg", "abp"])
def test_the_content_fingerprint_covers_both_signals(
    synth_file: Path, tmp_path: Path, signal: str
) -> None:
    """A file whose ids are unchanged but whose ABP (or PPG) was rewritten (re-imported
    with another filter, another calibration) is other data for a resumed run. Guards
    against hashing one of the two signals only. Row 0 is always among the windows
    hashed (the first of the evenly spaced rows)."""
    changed = tmp_path / "changed.h5"
    shutil.copy(synth_file, changed)
    with h5py.File(changed, "r+") as fh:
        fh[signal][0, :] = fh[signal][0, :] + 1.0
    n = read_info(synth_file).n_windows
    assert content_fingerprint(changed, n) != content_fingerprint(synth_file, n)


def _desc(**changes) -> dict:
    """A run's recorded ``data`` description, with ``changes``."""
    desc = {
        "path": "/data/windows.h5",
        "n_windows": 120,
        "windows_sha256": "w" * 64,
        "split_sha256": "s" * 64,
        "content_sha256": "c" * 64,
        "split": {"scheme": "split-column", "windows": {"train": 80, "val": 20, "test": 20}},
    }
    return {**desc, **changes}


def test_resuming_on_windows_of_other_subjects_is_refused(tmp_path: Path) -> None:
    """Same number of windows, same ids in each split, same signals, but the windows'
    subjects differ (only the windows fingerprint sees that): another file. Guards against
    check_resume_data comparing the number of windows alone."""
    other = tmp_path / "other.h5"
    with pytest.raises(DataError, match=r"windows_sha256 w+ -> x+"):
        check_resume_data(other, _desc(path=str(other), windows_sha256="x" * 64), _desc())
    check_resume_data(other, _desc(path=str(other)), _desc())  # same windows: accepted


# --------------------------------------------------------------------------------------
# Resuming: what the checkpoint must hold
# --------------------------------------------------------------------------------------


def _resumable() -> dict:
    """The parts of a checkpoint that resuming reads, as an epoch writes them."""
    return {
        "run_config": resolve_config("tiny").to_dict(),
        "epoch": 2,
        "optimizer_state": {"state": {}, "param_groups": []},
        "data": _desc(),
        "training_state": {
            "best_val_mae": 9.5,
            "best_epoch": 1,
            "bad_epochs": 1,
            "torch_rng": torch.get_rng_state(),
        },
    }


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda s: s.update(epoch=0), "epoch"),  # no epoch done: nothing to continue from
        (lambda s: s.update(epoch=True), "epoch"),  # a bool is an int to isinstance
        (lambda s: s["training_state"].pop("torch_rng"), "training_state"),
        (lambda s: s.update(data=["not", "a", "description"]), "data"),
    ],
)
def test_a_checkpoint_without_what_resuming_reads_is_named_damaged(edit, named) -> None:
    """Resuming reads the epoch (>= 1, an int but not a bool), the optimiser state, the
    data description and the training state with its random generator's state; a
    checkpoint without one is "damaged" naming it, not a KeyError or a run that starts
    over at epoch 0. Guards against each check going missing."""
    path = Path("run/checkpoints/last.pt")
    assert isinstance(resume_config(path, _resumable()), RunConfig)
    state = _resumable()
    edit(state)
    with pytest.raises(CheckpointError, match=f"last.pt is damaged: its {named} cannot be read"):
        resume_config(path, state)


def test_a_damaged_best_checkpoint_of_the_last_epoch_is_rewritten(tmp_path: Path) -> None:
    """Resuming writes the last epoch's checkpoints that are missing from last.pt; a
    best.pt (or kept epoch) that cannot be read is replaced the same way. Guards against
    the damaged copy stopping the resume with its read error."""
    ckpt = tmp_path / "checkpoints"
    body = {"epoch": 3, "run_config": {}, "model_state": {}, "normalisation": {}}
    save_checkpoint(ckpt / "last.pt", body)
    (ckpt / "best.pt").write_bytes(b"half a checkpoint")
    (ckpt / "epoch-0003.pt").write_bytes(b"")
    state = {"epoch": 3, "training_state": {"best_epoch": 3}}
    written = complete_epoch_checkpoints(ckpt, state, keep=(3,))
    assert written == ["epoch-0003.pt", "best.pt"]
    last = (ckpt / "last.pt").read_bytes()
    assert (ckpt / "best.pt").read_bytes() == last
    assert (ckpt / "epoch-0003.pt").read_bytes() == last
    # A second resume finds them whole: nothing to write.
    assert complete_epoch_checkpoints(ckpt, state, keep=(3,)) == []


# --------------------------------------------------------------------------------------
# The data a run is fitted on
# --------------------------------------------------------------------------------------


def test_abp_units_are_read_whatever_their_case() -> None:
    """ "mmHg", "mmhg" and "MMHG" are one unit (files written by other tools spell it their
    way); anything else is refused. Guards against comparing the spelling exactly."""
    for units in ("mmHg", "mmhg", "MMHG"):
        check_data(SimpleNamespace(path="f.h5", n_windows=3, abp_units=units))
    with pytest.raises(DataError, match="ABP must be in mmHg, but the file says 'kPa'"):
        check_data(SimpleNamespace(path="f.h5", n_windows=3, abp_units="kPa"))


def test_a_file_without_windows_is_said_to_hold_none() -> None:
    """Guards against the empty file passing the check (it then failed later with a
    message about an empty training split or a reduction over nothing)."""
    with pytest.raises(DataError, match=r"f\.h5 holds no windows"):
        check_data(SimpleNamespace(path="f.h5", n_windows=0, abp_units="mmHg"))


def test_the_baselines_see_every_training_window_in_blocks(
    synth_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The baselines are fitted block by block (bounded memory); every block counts,
    the last short one too. With blocks of 4 windows, 9 windows make blocks of 4, 4 and 1.
    Guards against the loop stopping after the first block or before a last block of one
    window; the mean ABP is checked against numpy's mean of the nine windows."""
    monkeypatch.setattr(train_mod, "STATS_BLOCK", 4)
    rows = np.array([30, 2, 17, 5, 41, 11, 23, 8, 36])  # any order: blocks are sorted
    with h5py.File(synth_file, "r") as fh:
        abp = fh["abp"][np.sort(rows)].astype(np.float64)
    fitted, _ = fit_baselines(synth_file, rows, 125.0)
    assert fitted["abp_mean"] == pytest.approx(abp.mean(), rel=1e-12)
    # The alternatives the bugs give are other numbers.
    assert abs(abp[:4].mean() - abp.mean()) > 1e-3 and abs(abp[:8].mean() - abp.mean()) > 1e-3


# --------------------------------------------------------------------------------------
# Processes under torchrun
# --------------------------------------------------------------------------------------


def test_a_plain_process_is_a_single_rank(no_group, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without torchrun's variables (or with WORLD_SIZE=1) a run is rank 0 of 1 and joins
    no group. Guards against WORLD_SIZE=1 being read as a distributed run (which then
    wanted RANK, or tried to join a group of one)."""
    assert distributed.setup("cpu") == DistInfo()
    monkeypatch.setenv("WORLD_SIZE", "1")
    info = distributed.setup("cpu")
    assert info == DistInfo() and not info.enabled and info.is_main
    assert no_group == [] and not distributed.joined_a_group()


def test_torchrun_s_variables_make_the_rank(no_group, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank, world size and local rank come from RANK, WORLD_SIZE and LOCAL_RANK (the
    local rank picks the GPU: on the second node of two, RANK 3 is LOCAL_RANK 1); a CPU
    run joins a gloo group, which this process created and so tears down. Guards against
    the local rank read from RANK, NCCL on CPU, the group not being recorded as joined,
    and a group this process did not create being destroyed."""
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = distributed.setup("cpu")
    assert info == DistInfo(rank=3, world_size=4, local_rank=1, initialised_here=True)
    assert info.enabled and not info.is_main
    assert no_group == [("init", "gloo")] and distributed.joined_a_group()
    # A second setup in the same process finds the group: it did not create it.
    again = distributed.setup("cpu")
    assert again == DistInfo(rank=3, world_size=4, local_rank=1, initialised_here=False)
    distributed.teardown(again)
    assert no_group == [("init", "gloo")]
    distributed.teardown(info)
    assert no_group == [("init", "gloo"), ("destroy", None)]


def test_the_history_keeps_every_record_up_to_the_checkpoint(tmp_path: Path) -> None:
    """read_history keeps the epoch records up to the checkpoint's epoch and skips what is
    not a record wherever it is (NUL bytes a power loss left inside the file, a line that
    is not an object, an epoch that is not a number). Guards against stopping at the
    first unreadable line (the records after it were lost with the resume's rewrite)."""
    path = tmp_path / "metrics.jsonl"
    lines = [
        '{"epoch": 1, "val_mae": 9.0}',
        "\x00\x00\x00\x00",
        "[1, 2]",
        '{"epoch": "2", "val_mae": 1.0}',
        '{"epoch": 2, "val_mae": 8.0}',
        '{"epoch": 3, "val_mae": 7.0}',
        '{"epoch": 4, "val_m',
    ]
    path.write_text("\n".join(lines))
    assert read_history(path, 2) == [{"epoch": 1, "val_mae": 9.0}, {"epoch": 2, "val_mae": 8.0}]
    assert read_history(path, 3)[-1] == {"epoch": 3, "val_mae": 7.0}
    assert read_history(tmp_path / "absent.jsonl", 2) == []


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _validation_setup(synth_file: Path, preset: str = "tiny"):
    """The ``preset`` network (seed 0), the validation split in batches of 7 windows (the
    split is not a multiple of 7: the last batch is shorter), the normalisation."""
    run = resolve_config(preset)
    info = read_info(synth_file)
    plan = plan_splits(info)
    norm = fit_normalisation(synth_file, plan.train, run.train.abp_norm)
    model = build_model(run.model, seed=0)
    loader = DataLoader(WindowDataset(synth_file, plan.val, norm), batch_size=7)
    assert len(plan.val) > 7 and len(plan.val) % 7
    return run, info, plan, norm, model, loader


def test_the_validation_loss_and_rmse_by_hand(synth_file: Path) -> None:
    """val_loss is the mean over validation windows of each window's L1 (channel 0 plus
    grad_weight x channel 1 over the real samples), whatever the batches; val_rmse the
    root of the mean squared error in mmHg over every real sample. Guards against
    averaging the batches' means (the short last batch then weighs as much as a full one)
    and against reporting the mean squared error as the RMSE."""
    run, info, _, norm, model, loader = _validation_setup(synth_file)
    cfg = run.train
    assert (cfg.loss_region, cfg.grad_weight, run.model.output_lowpass_hz) == ("real", 1.0, 0)
    record = validate(model, loader, norm, cfg, info, torch.device("cpu"))
    assert record is not None

    per_window, squared = [], []
    with torch.no_grad():
        for ppg, abp, rows in loader:
            length = ppg.shape[-1]
            out, _ = model(model.make_input(ppg), jac=False)
            err = (out.double() - model.make_input(abp).double())[..., :length].abs()
            per_window += ((err[:, 0].mean(-1) + err[:, 1].mean(-1)) / 2).tolist()
            pred = out[:, 0, :length].double().numpy() * norm.abp_scale + norm.abp_offset
            with h5py.File(synth_file, "r") as fh:
                ref = fh["abp"][np.sort(rows.numpy())].astype(np.float64)
            assert np.array_equal(np.sort(rows.numpy()), rows.numpy())  # the split's order
            squared.append(((pred - ref) ** 2).ravel())
    assert record["val_loss"] == pytest.approx(np.mean(per_window), rel=1e-5)
    assert record["val_rmse"] == pytest.approx(np.sqrt(np.concatenate(squared).mean()), rel=1e-5)
    assert record["val_rmse"] > 1.5  # (its square is another number)


def test_validation_scores_in_eval_mode_and_gives_the_network_back_training(
    synth_file: Path,
) -> None:
    """The U-Net baseline has batch normalisation: validating in training mode would score
    with the batch's statistics and move the running ones (the checkpoint's weights would
    change by being validated), and training on in eval mode would freeze them. Guards
    against validate not switching to eval mode, or not back to training mode after."""
    run, info, _, norm, model, loader = _validation_setup(synth_file, "unet")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert any("running_mean" in k for k in before)
    validate(model, loader, norm, run.train, info, torch.device("cpu"))
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


# --------------------------------------------------------------------------------------
# The loop: best epoch, early stopping, divergence, the record of an epoch
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 subjects x 30 s: 15 training windows, 5 validation windows (fast epochs)."""
    from innpar_freia.data.synthetic import synthesize_dataset

    path = tmp_path_factory.mktemp("small") / "small.h5"
    return synthesize_dataset(path, subjects=5, minutes=0.5, fs=125.0, seed=3)


def tiny(**train_overrides) -> RunConfig:
    return resolve_config("tiny", train={"device": "cpu", "epochs": 2, **train_overrides})


class Told(train_mod.SilentCallbacks):
    """Keeps what a run tells its caller."""

    def __init__(self) -> None:
        self.start: dict = {}
        self.messages: list[str] = []

    def on_start(self, info):
        self.start = info
        self.said_before_start = list(self.messages)

    def on_message(self, text):
        self.messages.append(text)


def scripted_validation(monkeypatch: pytest.MonkeyPatch, maes: list[float]) -> None:
    """Make epoch k's validation MAE ``maes[k - 1]`` (in the order validate is called)."""
    it = iter(maes)

    def fake_validate(*args, **kwargs):
        m = next(it)
        keys = ("val_loss", "val_mae", "val_rmse", "val_sbp_mae", "val_dbp_mae", "val_map_mae")
        return dict.fromkeys(keys, m)

    monkeypatch.setattr(train_mod, "validate", fake_validate)


def test_an_equal_validation_mae_is_not_better(
    small_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Early stopping waits for a *better* validation MAE: an equal one is a bad epoch,
    and best.pt stays the first epoch that reached it. Guards against ``<=`` (a plateau
    then moved best.pt on and never stopped the run)."""
    scripted_validation(monkeypatch, [5.0, 5.0, 5.0, 1.0])
    result = train(tiny(epochs=4, early_stopping=2), small_file, tmp_path / "r")
    assert result.stopped_early and result.epochs_completed == 3
    assert result.best_epoch == 1 and result.best_val_mae == 5.0
    assert read_checkpoint(result.best_checkpoint)["epoch"] == 1
    assert [r["best_epoch"] for r in result.history] == [1, 1, 1]


def test_an_improvement_restarts_the_count_of_bad_epochs(
    small_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAEs 5, 6, 4, 7, 8 with early_stopping = 2: epoch 2 is bad, epoch 3 the best,
    epochs 4 and 5 bad: the run stops after epoch 5, not 4. Guards against an improvement
    leaving the count of bad epochs where it was."""
    scripted_validation(monkeypatch, [5.0, 6.0, 4.0, 7.0, 8.0, 1.0])
    result = train(tiny(epochs=6, early_stopping=2), small_file, tmp_path / "r")
    assert result.stopped_early and result.epochs_completed == 5 and result.best_epoch == 3


def test_bad_epochs_count_on_across_a_resume(
    small_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run with one bad epoch behind it, resumed with early_stopping = 2, stops after
    its next bad epoch, as the uninterrupted run does. Guards against the checkpoint
    recording no bad epochs, or resuming not reading them back."""
    scripted_validation(monkeypatch, [5.0, 6.0])
    train(tiny(epochs=2, early_stopping=2), small_file, tmp_path / "r")
    assert (
        read_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["training_state"]["bad_epochs"]
        == 1
    )
    scripted_validation(monkeypatch, [7.0, 1.0])
    again = train(None, small_file, tmp_path / "r", resume=True, resume_overrides={"epochs": 4})
    assert again.stopped_early and again.epochs_completed == 3 and again.best_epoch == 1


def test_a_validation_mae_that_is_not_a_number_stops_the_run_unsaved(
    small_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finite weights can still predict infinities (float32 overflow in the output): the
    epoch whose validation MAE is not a number is not logged nor checkpointed, and the run
    says it diverged, naming the last good checkpoint. Guards against the broken epoch
    being ignored (a NaN MAE then never improved, and the run trained on silently)."""
    scripted_validation(monkeypatch, [5.0, math.inf, 4.0])
    run = tmp_path / "r"
    with pytest.raises(TrainingDiverged, match=r"validation MAE became inf after epoch 2.*last"):
        train(tiny(epochs=3), small_file, run)
    assert read_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_the_epoch_s_training_loss_is_the_mean_of_its_steps(
    small_file: Path, tmp_path: Path
) -> None:
    """``train_loss`` is the mean of the epoch's batch losses (those the progress display
    was given), over ceil(windows / batch) steps (15 windows in batches of 4: 4 steps).
    Guards against dividing by one step more or less."""
    losses: dict[int, list[float]] = {}

    class Record(train_mod.SilentCallbacks):
        def on_batch(self, epoch, step, steps, loss):
            losses.setdefault(epoch, []).append(loss)

    result = train(tiny(epochs=1, batch_size=4), small_file, tmp_path / "r", callbacks=Record())
    n_train = len(plan_splits(read_info(small_file)).train)
    for record in result.history:
        steps = losses[record["epoch"]]
        assert len(steps) == math.ceil(n_train / 4)
        assert record["train_loss"] == pytest.approx(sum(steps) / len(steps), rel=1e-9)


def test_a_resume_redoes_the_epochs_after_its_checkpoint_once(
    small_file: Path, tmp_path: Path
) -> None:
    """A run killed after logging epoch 2 but before its last.pt resumes from epoch 1's
    checkpoint: the log keeps epoch 1's line, drops epoch 2's, and the redone epoch 2 is
    logged once. Stale temporary files of the killed writes are removed. Guards against
    keeping the records after the checkpoint's epoch (epoch 2 then appeared twice), and
    against the stale temporary files staying."""
    run = tmp_path / "r"
    train(tiny(epochs=2, keep_checkpoints=[1]), small_file, run)
    ckpt = run / "checkpoints"
    (ckpt / "epoch-0001.pt").replace(ckpt / "last.pt")  # as if killed before epoch 2's last.pt
    stale = [ckpt / ".last.pt.4242.tmp", run / ".config.json.4242.tmp"]
    for path in stale:
        path.write_bytes(b"half written")
    result = train(None, small_file, run, resume=True)
    epochs = [
        json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().split("\n")[:-1]
    ]
    assert epochs == [1, 2] and [r["epoch"] for r in result.history] == [1, 2]
    assert not any(path.exists() for path in stale)


def test_a_run_without_validation_has_no_best_mae(small_file: Path, tmp_path: Path) -> None:
    """Without validation windows every epoch is the best and there is no best MAE: None
    in the result, the checkpoint (not infinity, which strict JSON cannot hold) and the
    result of resuming the finished run, whose history is the run's log. Guards against
    checkpointing infinity, and against the finished run's result losing its history."""
    run = tmp_path / "r"
    result = train(tiny(epochs=1, test_fold=0, val_fold=-1), small_file, run)
    assert result.best_val_mae is None and result.best_epoch == 1
    assert read_checkpoint(result.last_checkpoint)["training_state"]["best_val_mae"] is None
    again = train(None, small_file, run, resume=True)
    assert again.epochs_completed == 1 and again.best_val_mae is None
    assert again.history == result.history and len(again.history) == 1


def test_resuming_to_the_epoch_it_stopped_at_inside_the_warm_up_is_refused(
    small_file: Path, tmp_path: Path
) -> None:
    """A 4-epoch run with a 3-epoch warm-up, stopped after epoch 2 and resumed with
    ``--epochs 2``, would be "finished" inside its warm-up: refused like any --epochs
    that ends inside it. Guards against the check leaving out --epochs equal to the epochs
    done (such a run was then reported finished)."""
    run = train(tiny(epochs=4, warmup_epochs=3, keep_checkpoints=[2]), small_file, tmp_path / "r")
    ckpts = run.run_dir / "checkpoints"
    shutil.copy(ckpts / "epoch-0002.pt", ckpts / "last.pt")  # as if stopped after epoch 2
    refusal = r'resume_overrides\["epochs"\] = 2 would end .* inside its 3-epoch warm-up'
    with pytest.raises(RunDirError, match=refusal):
        train(None, small_file, run.run_dir, resume=True, resume_overrides={"epochs": 2})


def _parameters(state: dict, names: set[str]) -> dict:
    return {k: v.double() for k, v in state.items() if k in names}


def test_ema_weights_after_one_step_by_hand(small_file: Path, tmp_path: Path) -> None:
    """With ema_decay d the averaged weights move by (1 - d) of the way to the trained
    ones at each step: after the one step of a full-batch epoch, init + (1 - d)(raw -
    init). Guards against moving by d instead (the average then followed the raw weights
    and averaged nothing)."""
    cfg = tiny(epochs=1, ema_decay=0.999, batch_size=32)  # 15 windows: one step
    ckpt = read_checkpoint(train(cfg, small_file, tmp_path / "r").last_checkpoint)
    model = build_model(RunConfig.from_dict(ckpt["run_config"]).model, seed=cfg.train.seed)
    names = {name for name, _ in model.named_parameters()}
    init = _parameters(model.state_dict(), names)
    raw = _parameters(ckpt["training_state"]["raw_model_state"], names)
    averaged = _parameters(ckpt["model_state"], names)
    assert max(float((raw[k] - init[k]).abs().max()) for k in names) > 1e-4  # it trained
    for k in names:
        expected = init[k] + 0.001 * (raw[k] - init[k])
        assert torch.allclose(averaged[k], expected, rtol=0, atol=1e-7), k


def test_gradient_clipping_bounds_the_step(small_file: Path, tmp_path: Path) -> None:
    """Adam's first step moves each weight by lr x g / (|g| + 1e-8): about lr for an
    ordinary gradient, but at most lr x 1e-12 / 1e-8 = 1e-7 once the gradient is clipped
    to a norm of 1e-12. Guards against grad_clip being ignored."""
    cfg = tiny(epochs=1, grad_clip=1e-12, batch_size=32, lr=1e-3)  # one step
    ckpt = read_checkpoint(train(cfg, small_file, tmp_path / "r").last_checkpoint)
    model = build_model(RunConfig.from_dict(ckpt["run_config"]).model, seed=cfg.train.seed)
    names = {name for name, _ in model.named_parameters()}
    init = _parameters(model.state_dict(), names)
    trained = _parameters(ckpt["model_state"], names)
    assert max(float((trained[k] - init[k]).abs().max()) for k in names) < 2e-7


# --------------------------------------------------------------------------------------
# A run that stopped before its first checkpoint
# --------------------------------------------------------------------------------------


def test_an_unstarted_run_leaves_only_what_it_did_not_write(tmp_path: Path) -> None:
    """A new run that failed before its last.pt removes what it wrote (config.json,
    metrics.jsonl, a best.pt and kept epochs written before a failing last.pt, its
    temporary files) and the folders it made that are then empty, and leaves the user's
    own files. Guards against each of these staying behind (the folder then "held a run"
    that only --force could reuse)."""
    run = tmp_path / "run"
    ckpt = run / "checkpoints"
    ckpt.mkdir(parents=True)
    written = [
        run / "config.json",
        run / "metrics.jsonl",
        run / ".config.json.77.tmp",
        ckpt / "best.pt",
        ckpt / "epoch-0001.pt",
        ckpt / ".last.pt.77.tmp",
    ]
    for path in written:
        path.write_text("x")
    (run / "notes.txt").write_text("the user's")
    discard_unstarted_run(run, remove_dir=True)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    (run / "notes.txt").unlink()
    (run / "config.json").write_text("x")
    discard_unstarted_run(run, remove_dir=True)
    assert not run.exists()


def test_a_run_with_a_last_checkpoint_is_not_discarded(tmp_path: Path) -> None:
    """A run whose last.pt exists can be resumed: nothing of it is removed. Guards
    against the check going missing (a failure after the first epoch deleted the run's
    config, log and best checkpoint)."""
    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    names = ["config.json", "metrics.jsonl", "checkpoints/last.pt", "checkpoints/best.pt"]
    for name in names:
        (tmp_path / "run" / name).write_text("x")
    discard_unstarted_run(tmp_path / "run", remove_dir=True)
    assert all((tmp_path / "run" / name).is_file() for name in names)


def test_validation_calibrates_each_subject_on_its_earliest_window(
    synth_file: Path, tmp_path: Path
) -> None:
    """The calibrated validation errors calibrate each subject on its first window in
    time (the file's ``start``), as ``innpar eval`` does, not on its first row: the same
    windows stored in another row order score the same. Guards against ordering the
    windows by row (a file written out of time order then validated another protocol)."""
    info = read_info(synth_file)
    rows = np.flatnonzero(np.isin(info.subjects, np.unique(info.subjects)[:3]))
    with h5py.File(synth_file, "r") as fh:
        ppg, abp = fh["ppg"][rows].astype(np.float64), fh["abp"][rows].astype(np.float64)
    subjects, ids = info.subjects[rows], info.window_ids[rows]
    start = np.arange(len(rows)) * 625  # in time order as stored in synth_file
    # The same windows, each subject's rows reversed (its latest window stored first).
    flipped = np.concatenate([np.flatnonzero(subjects == s)[::-1] for s in np.unique(subjects)])
    assert not np.array_equal(flipped, np.arange(len(rows)))
    records = []
    for name, order in (("timed.h5", np.arange(len(rows))), ("flipped.h5", flipped)):
        path = tmp_path / name
        with WindowWriter(path, fs=125.0, window_length=625, source_format="test") as w:
            w.append(ppg[order], abp[order], subject=subjects[order], window_id=ids[order],
                     start=start[order])  # fmt: skip
        every = np.arange(len(rows))
        norm = fit_normalisation(path, every, "minmax")
        loader = DataLoader(WindowDataset(path, every, norm), batch_size=256)
        model = build_model(resolve_config("tiny").model, seed=0)
        run = resolve_config("tiny").train
        records.append(validate(model, loader, norm, run, read_info(path), torch.device("cpu")))
    timed, stored_flipped = records
    assert stored_flipped["val_cal_mae"] == pytest.approx(timed["val_cal_mae"], rel=1e-9)
    assert stored_flipped["val_cal_sbp_mae"] == pytest.approx(timed["val_cal_sbp_mae"], rel=1e-9)


# --------------------------------------------------------------------------------------
# A resumed run that fails
# --------------------------------------------------------------------------------------


def poison_loss_after(monkeypatch: pytest.MonkeyPatch, epochs: int) -> train_mod.SilentCallbacks:
    """Make the training loss NaN once ``epochs`` epochs have ended (counted from the
    epochs this process ran); returns the callbacks that count them."""
    ended = {"n": 0}
    real = train_mod.channel_l1
    monkeypatch.setattr(
        train_mod,
        "channel_l1",
        lambda *a, **k: real(*a, **k) * (math.nan if ended["n"] >= epochs else 1.0),
    )

    class Count(train_mod.SilentCallbacks):
        def on_epoch(self, record):
            ended["n"] += 1

    return Count()


def test_a_resume_that_fails_before_its_first_checkpoint_restores_config_json(
    small_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config.json is rewritten when a resume starts (its environment, a ``resumed``
    record); a resume that fails before checkpointing anything continued nothing, so the
    file is put back as it was. Guards against config.json being left describing a
    continuation that never happened."""
    run = tmp_path / "r"
    train(tiny(epochs=1), small_file, run)
    before = (run / "config.json").read_bytes()
    told = poison_loss_after(monkeypatch, 0)
    with pytest.raises(TrainingDiverged, match="epoch 2, step 1"):
        train(None, small_file, run, resume=True, resume_overrides={"epochs": 3}, callbacks=told)
    assert (run / "config.json").read_bytes() == before


def test_a_resume_that_fails_after_a_checkpoint_keeps_its_config_json(
    small_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume that checkpointed epoch 2 and then diverged did continue the run: its
    config.json keeps the record of the resume (after epoch 1), which the next resume
    extends. Guards against the clean-up of a failed run ignoring that it had checkpointed
    (it put the old config.json back under a last.pt of the resumed run)."""
    run = tmp_path / "r"
    train(tiny(epochs=1), small_file, run)
    told = poison_loss_after(monkeypatch, 1)
    with pytest.raises(TrainingDiverged, match="epoch 3, step 1"):
        train(None, small_file, run, resume=True, resume_overrides={"epochs": 3}, callbacks=told)
    assert read_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 2
    resumed = json.loads((run / "config.json").read_text())["resumed"]
    assert [(r["after_epoch"], r["epochs"]) for r in resumed] == [(1, 1)]


@pytest.fixture(scope="module")
def small_run(small_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1-epoch run of the tiny preset on ``small_file`` (not to be changed)."""
    run = tmp_path_factory.mktemp("small-run") / "run"
    train(tiny(epochs=1), small_file, run)
    return run


def test_a_resume_refuses_to_change_other_settings(small_run: Path, small_file: Path) -> None:
    """Only epochs, device and num_workers may change when resuming (through the Python
    API as well as the command line). Guards against other settings being taken."""
    with pytest.raises(RunDirError, match=r"lr, seed cannot change \(only epochs, device"):
        train(None, small_file, small_run, resume=True, resume_overrides={"seed": 1, "lr": 0.1})


# --------------------------------------------------------------------------------------
# Fitting a run to its data
# --------------------------------------------------------------------------------------


def _write_windows(path: Path, fs: float, length: int, split: list[str]) -> Path:
    """A window file of ``len(split)`` sine windows (a subject each) in those splits."""
    t = np.arange(length) / fs
    n = len(split)
    abp = 90 + 20 * np.sin(2 * np.pi * 1.1 * t + np.arange(n)[:, None])
    with WindowWriter(path, fs=fs, window_length=length, source_format="test") as w:
        w.append(np.sin(2 * np.pi * 1.1 * t - 0.4 + np.arange(n)[:, None]), abp,
                 subject=[f"s{i}" for i in range(n)], window_id=[f"w{i}" for i in range(n)],
                 split=split)  # fmt: skip
    return path


def test_the_network_is_fitted_to_the_data_s_rate_and_window_length(tmp_path: Path) -> None:
    """A run takes the data's sampling rate and window length (here 250 Hz, 8 s), not
    its preset's 125 Hz and 5 s. Guards against the model configuration being kept."""
    data = _write_windows(tmp_path / "w.h5", 250.0, 2000, ["train", "train", "val", "test"])
    fitted, info, plan = fit_to_data(resolve_config("tiny"), data)
    assert (fitted.model.fs, fitted.model.window_length) == (250.0, 2000)
    assert (fitted.preset, fitted.train) == ("tiny", resolve_config("tiny").train)
    assert plan.train.tolist() == [0, 1] and info.n_windows == 4


def test_a_file_without_training_windows_is_refused(tmp_path: Path) -> None:
    """The check a run makes before it writes anything (and ``--dry-run`` shows). Guards
    against fit_to_data passing an empty training split on to the run."""
    data = _write_windows(tmp_path / "w.h5", 125.0, 625, ["val", "test", "test"])
    with pytest.raises(DataError, match="the training split is empty"):
        fit_to_data(resolve_config("tiny"), data)


def test_resuming_on_windows_of_another_shape_says_so(small_run: Path, tmp_path: Path) -> None:
    """A run resumed on windows of another rate or length (the network's input) is told
    that its windows differ, naming them. Guards against that check going missing (the
    resume was then refused only as "not the data the run was trained on", without the
    reason)."""
    run = Path(shutil.copytree(small_run, tmp_path / "run"))
    data = _write_windows(tmp_path / "w.h5", 250.0, 2000, ["train", "train", "val", "test"])
    with pytest.raises(DataError, match=r"windows of 2000 samples at 250\.0 Hz, but the run"):
        train(None, data, run, resume=True, resume_overrides={"epochs": 3})


def test_extending_a_cosine_run_just_past_its_warm_up_says_where_its_rate_goes(
    small_file: Path, tmp_path: Path
) -> None:
    """A 2-epoch cosine run with a 1-epoch warm-up ran epoch 2 at the top of its curve
    (x 1); extended to 4 epochs, epoch 3 runs a third of the way down the new one:
    0.5 (1 + cos(pi / 3)) = 0.75. The first epoch after the warm-up is already on the
    curve, so the change is said. Guards against saying it only from the second epoch
    after the warm-up on."""
    told = Told()
    run = tmp_path / "r"
    train(tiny(epochs=2, lr_schedule="cosine", warmup_epochs=1), small_file, run)
    train(None, small_file, run, resume=True, resume_overrides={"epochs": 4}, callbacks=told)
    assert any(
        "recomputed over 4 epochs instead of 2" in m
        and "epoch 2 ran at 1 x lr, epoch 3 runs at 0.75 x lr" in m
        for m in told.messages
    ), told.messages


# --------------------------------------------------------------------------------------
# What the caller is told
# --------------------------------------------------------------------------------------


def test_a_single_validation_window_is_validated(tmp_path: Path) -> None:
    """One validation window is a validation split: the run scores it every epoch and
    chooses best.pt by it. Guards against needing more than one window."""
    data = _write_windows(tmp_path / "w.h5", 125.0, 625, ["train", "train", "val", "test"])
    told = Told()
    result = train(tiny(epochs=1), data, tmp_path / "r", callbacks=told)
    assert told.start["has_val"] and "val_mae" in result.history[0]
    assert result.best_val_mae == result.history[0]["val_mae"]


def test_a_run_without_validation_says_what_best_pt_is(small_file: Path, tmp_path: Path):
    """Guards against the note that best.pt is then the last epoch going missing."""
    told = Told()
    train(tiny(epochs=1, test_fold=0, val_fold=-1), small_file, tmp_path / "r", callbacks=told)
    assert not told.start["has_val"]
    assert "no validation windows: best.pt will be the last epoch" in told.messages


def test_a_resume_killed_before_its_first_checkpoint_is_not_recorded_twice(
    small_file: Path, tmp_path: Path
) -> None:
    """A resume killed outright before its first checkpoint (torchrun's SIGTERM to its
    processes) cannot put config.json back: it is left with that resume's record and the
    killed session's environment. The next resume, after the same epoch, added a second
    record, of a session that trained nothing, and the environment that trained the run
    was lost."""
    run = tmp_path / "r"
    train(tiny(epochs=1), small_file, run)
    trained_by = json.loads((run / "config.json").read_text())["environment"]
    killed = dict(json.loads((run / "config.json").read_text()))
    killed["resumed"] = [{"after_epoch": 1, "epochs": 1, "environment": trained_by}]
    killed["environment"] = {**trained_by, "hardware": "the killed session's"}
    (run / "config.json").write_text(json.dumps(killed))
    train(None, small_file, run, resume=True, resume_overrides={"epochs": 2})
    resumed = json.loads((run / "config.json").read_text())["resumed"]
    assert resumed == [{"after_epoch": 1, "epochs": 1, "environment": trained_by}]
    # A resume that trained (epoch 2) is recorded when the run is resumed again.
    train(None, small_file, run, resume=True, resume_overrides={"epochs": 3})
    resumed = json.loads((run / "config.json").read_text())["resumed"]
    assert [(r["after_epoch"], r["epochs"]) for r in resumed] == [(1, 1), (2, 2)]


def test_a_batch_one_window_larger_than_the_split_is_said(small_file: Path, tmp_path: Path):
    """15 training windows in batches of 16: every step takes all 15 (full-batch
    training), which is said. Guards against saying it only from two windows more."""
    told = Told()
    train(tiny(epochs=1, batch_size=16), small_file, tmp_path / "r", callbacks=told)
    assert any("batch_size 16 is more than the 15 training windows" in m for m in told.messages)
    # After the run's header, as the run's other notes: it was printed above it.
    assert told.said_before_start == []


def test_a_resumed_run_says_after_which_epoch_it_resumes(
    small_run: Path, small_file: Path, tmp_path: Path
) -> None:
    """The start of a resumed run names the epoch it continues after (the command line
    prints "resuming after epoch N"). Guards against it being given as 0."""
    run = Path(shutil.copytree(small_run, tmp_path / "run"))
    told = Told()
    train(None, small_file, run, resume=True, resume_overrides={"epochs": 2}, callbacks=told)
    assert told.start["resumed_at"] == 1 and told.start["epochs"] == 2


# --------------------------------------------------------------------------------------
# Flat training windows (a constant PPG or ABP)
# --------------------------------------------------------------------------------------


def flattened(source: Path, out: Path, ppg_rows: list[int], abp_rows: list[int]) -> Path:
    """A copy of ``source`` whose PPG is a constant line in ``ppg_rows`` and whose ABP is
    one in ``abp_rows``, as a file made outside the importers can hold (a lost sensor)."""
    shutil.copy(source, out)
    with h5py.File(out, "r+") as fh:
        for name, rows, value in (("ppg", ppg_rows, 0.0), ("abp", abp_rows, 90.0)):
            block = fh[name][...]
            block[rows] = value
            fh[name][...] = block
    return out


def test_training_says_how_many_of_its_windows_have_a_constant_ppg_or_abp(
    small_file: Path, tmp_path: Path
) -> None:
    """Training windows with a flat PPG or ABP hold no pulse to learn from, and pull the
    network toward a flat output; a file made elsewhere trained on them without a word.
    Guards against counting the whole file or the validation split, and against counting
    a window as flat when only part of it is."""
    info = read_info(small_file)
    train_rows = np.flatnonzero(info.split == "train")
    val_row = int(np.flatnonzero(info.split == "val")[0])
    path = flattened(small_file, tmp_path / "f.h5", [*train_rows[:3], val_row], [train_rows[5]])
    with h5py.File(path, "r+") as fh:  # half a window flat is a pulse still
        block = fh["ppg"][...]
        block[train_rows[7], :300] = 0.0
        fh["ppg"][...] = block
    told = Told()
    train(tiny(epochs=1), path, tmp_path / "r", callbacks=told)
    n = len(train_rows)
    warning = [m for m in told.messages if "constant" in m]
    assert warning == [
        f"warning: 3 of the {n} training windows have a constant PPG and 1 a constant ABP "
        "(no pulse): the network learns nothing from them and is pulled toward a flat "
        "output; drop them ('innpar data import' rejects such windows)"
    ]
    told = Told()
    train(tiny(epochs=1), small_file, tmp_path / "clean", callbacks=told)
    assert not [m for m in told.messages if "constant" in m]


def test_training_warns_of_training_abp_that_is_not_in_mmhg(
    small_file: Path, tmp_path: Path
) -> None:
    """A window file whose ABP was normalised (or turned to kPa) after its import trained
    without a word, and its report gave BHS/AAMI grades of numbers that are not mmHg: the
    import warns of it, but a file edited afterwards is not imported again. Guards against
    warning on mmHg data, and against judging by the validation windows or by one window."""
    info = read_info(small_file)
    train_rows = np.flatnonzero(info.split == "train")
    scaled = tmp_path / "kpa.h5"
    shutil.copy(small_file, scaled)
    with h5py.File(scaled, "r+") as fh:
        block = fh["abp"][...]
        block[train_rows] *= 0.1333  # mmHg to kPa, the training windows only
        fh["abp"][...] = block
    told = Told()
    train(tiny(epochs=1), scaled, tmp_path / "r", callbacks=told)
    warning = [m for m in told.messages if "not a blood pressure" in m]
    assert len(warning) == 1
    assert warning[0].startswith(f"warning: {scaled}'s training windows: median ABP is 1")
    assert warning[0].endswith(
        "which is not a blood pressure in mmHg; ABP must be in mmHg (is it normalised?); "
        "the protocol's thresholds (BHS, AAMI) are in mmHg"
    )
    one = tmp_path / "one.h5"
    shutil.copy(small_file, one)
    with h5py.File(one, "r+") as fh:  # a single odd window is no file in other units
        block = fh["abp"][...]
        block[train_rows[0]] *= 0.01
        block[np.flatnonzero(info.split == "val")] *= 0.01
        fh["abp"][...] = block
    for path in (small_file, one):
        told = Told()
        train(tiny(epochs=1), path, tmp_path / path.stem, callbacks=told)
        assert not [m for m in told.messages if "not a blood pressure" in m]
    # Beside flat windows, two warnings, each a message of its own (they came as one, the
    # second's "warning:" inside the first).
    both = flattened(scaled, tmp_path / "both.h5", [int(train_rows[0])], [])
    told = Told()
    train(tiny(epochs=1), both, tmp_path / "both", callbacks=told)
    said = [m for m in told.messages if "constant" in m or "not a blood pressure" in m]
    assert len(said) == 2 and all(m.count("warning:") == 1 for m in said)


def test_training_refuses_a_file_whose_every_training_ppg_is_flat(
    small_file: Path, tmp_path: Path
) -> None:
    """Every training window's PPG a constant line (the PPG lost or replaced on export)
    trained a network on nothing, to a flat output, and said nothing. Guards against the
    check only warning, and against it needing the validation windows flat too."""
    info = read_info(small_file)
    train_rows = [int(i) for i in np.flatnonzero(info.split == "train")]
    path = flattened(small_file, tmp_path / "f.h5", train_rows, [])
    run = tmp_path / "r"
    with pytest.raises(DataError) as err:
        train(tiny(epochs=1), path, run)
    assert str(err.value) == (
        f"{path}: the PPG of every training window is a constant line: there is no pulse "
        "to learn from"
    )
    assert not (run / "checkpoints").exists()
