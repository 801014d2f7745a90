"""Training: one readable loop, validation every epoch, atomic checkpoints, exact resume, DDP.

``train(run_config, data, run_dir)`` trains on the training split of an HDF5 window file,
evaluates the validation split every epoch (waveform MAE in mmHg), writes ``config.json``,
``metrics.jsonl`` (one JSON object per epoch) and ``checkpoints/{last,best}.pt`` into the
run directory. Under ``torchrun`` it runs DistributedDataParallel with one process per
device; every rank validates (predicts and scores) whole subjects of the validation
split, rank 0 adds up their errors, logs and writes checkpoints.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import re
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from innpar_freia import __version__, distributed
from innpar_freia.checkpoint import FORMAT as CHECKPOINT_FORMAT
from innpar_freia.checkpoint import (
    check_freia_version,
    freia_version,
    is_zip,
    needs_code,
    read_checkpoint,
    save_checkpoint,
)
from innpar_freia.config import ModelConfig, RunConfig, TrainConfig, stored_model_table
from innpar_freia.data.dataset import (
    STATS_BLOCK,
    Normalisation,
    PreloadedLoader,
    SplitPlan,
    WindowDataset,
    fit_normalisation,
    load_split_arrays,
    plan_splits,
    split_bytes,
)
from innpar_freia.data.import_report import abp_units_warning
from innpar_freia.data.leakage import NO_KEY, copy_keys
from innpar_freia.data.sampler import SubjectPairSampler
from innpar_freia.data.store import StoreInfo, check_rows_finite, held_for_reading, read_info
from innpar_freia.distributed import DistInfo, gather_rows, hardware_description, native_bf16
from innpar_freia.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    RunDirError,
    TrainingDiverged,
    check_flag,
    counted,
    option,
)
from innpar_freia.metrics import BaselineAccumulator, protocol_windows, time_order
from innpar_freia.nn.model import INNPAR, build_model, count_parameters, postprocess_abp
from innpar_freia.outputs import (
    drop_aside,
    is_temporary,
    jsonable,
    make_folder,
    put_back,
    recover_set_aside,
    remove_if_empty,
    remove_stale_temporaries,
    replace_durably,
    set_aside,
    wait_for_recovery,
)
from innpar_freia.run_lock import training_lock
from innpar_freia.signal import bp_sample_indices_batch

RUN_ARTIFACTS = ("config.json", "metrics.jsonl", "checkpoints")
PRELOAD_LIMIT = 2**30  # bytes: splits smaller than this are held in device memory


class Callbacks(Protocol):
    """What a caller (the CLI) is told while training runs; the loop itself never prints.

    An object given to :func:`train` needs all four methods (one that lacks any is refused
    by name before training starts): subclass :class:`SilentCallbacks`, which does nothing
    in each, and override the ones wanted::

        class Progress(SilentCallbacks):
            def on_epoch(self, record):
                print(record["epoch"], record["val_loss"])
    """

    def on_start(self, info: dict[str, Any]) -> None: ...
    def on_batch(self, epoch: int, step: int, steps: int, loss: float) -> None: ...
    def on_epoch(self, record: dict[str, Any]) -> None: ...
    def on_message(self, text: str) -> None: ...


CALLBACK_METHODS = ("on_start", "on_batch", "on_epoch", "on_message")


class SilentCallbacks:
    """:class:`Callbacks` that are told everything and do nothing: the base to subclass."""

    def on_start(self, info: dict[str, Any]) -> None:
        pass

    def on_batch(self, epoch: int, step: int, steps: int, loss: float) -> None:
        pass

    def on_epoch(self, record: dict[str, Any]) -> None:
        pass

    def on_message(self, text: str) -> None:
        pass


class WarningCallbacks(SilentCallbacks):
    """:func:`train`'s callbacks when it is given none: silent, but for its warnings (the
    messages starting "warning:"), each a :class:`UserWarning`. With no callbacks a Python
    caller was told nothing, not even that its early stopping was off."""

    def on_message(self, text: str) -> None:
        if text.startswith("warning:"):
            warnings.warn(
                text.removeprefix("warning:").strip(), UserWarning, stacklevel=_caller_level()
            )


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this package, for a warning issued in
    it: stacklevel=2 named a line of train.py (and Python's default filter then showed a
    second train()'s warning of the same text no more). ``skip_file_prefixes`` would do it,
    from Python 3.12 on."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1  # the frame that calls warnings.warn: stacklevel 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


class _Told:
    """``callbacks``, keeping every message for :attr:`TrainResult.messages`."""

    def __init__(self, callbacks: Callbacks) -> None:
        self.callbacks = callbacks
        self.messages: list[str] = []

    def on_start(self, info: dict[str, Any]) -> None:
        self.callbacks.on_start(info)

    def on_batch(self, epoch: int, step: int, steps: int, loss: float) -> None:
        self.callbacks.on_batch(epoch, step, steps, loss)

    def on_epoch(self, record: dict[str, Any]) -> None:
        self.callbacks.on_epoch(record)

    def on_message(self, text: str) -> None:
        self.messages.append(text)
        self.callbacks.on_message(text)


@dataclass
class TrainResult:
    """What :func:`train` returns: the run directory and its last and best checkpoints
    (``checkpoints/last.pt``, ``checkpoints/best.pt``), the epochs completed (of this run
    and any it resumed), the best epoch and its validation waveform MAE (``None`` without
    validation windows), whether early stopping ended the run, and ``history``, the
    per-epoch records also written to ``metrics.jsonl``, and ``messages``, every message
    the run gave its callbacks."""

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path
    epochs_completed: int
    best_epoch: int
    best_val_mae: float | None
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    # Every message the run gave its callbacks (warnings, notes): what the CLI prints.
    messages: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- loss


def channel_l1(out: Tensor, target: Tensor, length: int, region: str, grad_weight: float) -> Tensor:
    """L1 between ``(B, 2, T)`` tensors: channel 0 plus ``grad_weight`` x channel 1, as a
    weighted mean (``grad_weight=1`` is the release's plain mean over both channels).
    ``region="real"`` scores samples ``0..length-1``; ``"padded"`` the whole tensor."""
    if region == "real":
        out, target = out[..., :length], target[..., :length]
    err = (out - target).abs()
    return (err[:, 0].mean() + grad_weight * err[:, 1].mean()) / (1.0 + grad_weight)


def diff_l1(out: Tensor, target: Tensor, length: int) -> Tensor:
    """L1 between the first differences of channel 0 (the ABP) over the real samples: it
    penalises ringing that a sample-wise L1 barely sees."""
    d_out = torch.diff(out[:, 0, :length], dim=-1)
    d_target = torch.diff(target[:, 0, :length], dim=-1)
    return (d_out - d_target).abs().mean()


def extremes_l1(out: Tensor, target: Tensor, length: int) -> Tensor:
    """L1 between each window's maximum and minimum of channel 0 (the ABP) over the real
    samples and the reference's: the systolic and diastolic extremes, which a sample-wise
    L1 regresses towards the mean (the predicted pulse pressure comes out too small, and the
    calibrated protocol's scale ``PP_ref / PP_pred`` then amplifies the prediction's noise)."""
    return extremes_gap(out[:, 0, :length], target[:, 0, :length])


def extremes_gap(pred: Tensor, ref: Tensor) -> Tensor:
    """Mean L1 between the rows' maxima and minima of ``(N, L)`` predictions and references."""
    top = (pred.amax(dim=-1) - ref.amax(dim=-1)).abs()
    bottom = (pred.amin(dim=-1) - ref.amin(dim=-1)).abs()
    return 0.5 * (top + bottom).mean()


# Most ordered pairs scored per batch by the within-subject loss: a batch drawn from one
# subject would otherwise make B * (B - 1) pairs. Beyond it, an evenly spaced subset.
MAX_PAIRS_PER_WINDOW = 8


def subject_pairs(groups: Tensor) -> tuple[Tensor, Tensor]:
    """Ordered pairs ``(c, t)`` of distinct batch positions with the same subject code
    (``c`` calibrates, ``t`` is scored), at most ``MAX_PAIRS_PER_WINDOW * B`` of them."""
    same = groups[:, None] == groups[None, :]
    same.fill_diagonal_(False)
    c_idx, t_idx = same.nonzero(as_tuple=True)
    limit = MAX_PAIRS_PER_WINDOW * len(groups)
    if len(c_idx) > limit:
        keep = torch.linspace(0, len(c_idx) - 1, limit, device=c_idx.device).long()
        c_idx, t_idx = c_idx[keep], t_idx[keep]
    return c_idx, t_idx


def peak_indices(x: Tensor, norm: Normalisation, fs: float) -> Tensor:
    """``(B, L)`` normalised ABP windows -> ``(B, 4)`` sample indices of the protocol's SBP
    and DBP (:func:`innpar_freia.signal.bp_sample_indices_batch`), found on the detached windows
    in mmHg (the protocol's prominence threshold is in mmHg)."""
    mmhg = norm.denormalise_abp(x.detach().double().cpu().numpy())
    idx = bp_sample_indices_batch(mmhg, fs) if len(mmhg) else np.zeros((0, 4))
    return torch.as_tensor(idx, dtype=torch.long, device=x.device)


def peak_pulse_pressure(x: Tensor, idx: Tensor) -> Tensor:
    """The protocol's pulse pressure ``SBP - DBP`` of ``(B, L)`` windows from their
    :func:`peak_indices`, differentiable in the window's values (like max - min is)."""
    v = x.gather(1, idx)
    return 0.5 * (v[:, 0] + v[:, 1]) - 0.5 * (v[:, 2] + v[:, 3])


def pair_calibrate(
    out: Tensor,
    target: Tensor,
    length: int,
    groups: Tensor,
    mode: str,
    peaks: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor] | None:
    """Every ordered pair of windows ``(c, t)`` of one subject in the batch, window ``c``
    calibrating window ``t`` exactly as the calibrated protocol does with a subject's first
    window: ``t' = (pred_t - mean(pred_c)) * PP(ref_c) / PP(pred_c) + mean(ref_c)``
    (``mode="offset"`` drops the scale), over the ABP channel's real samples. PP is
    max - min, or with ``peaks`` (the :func:`peak_indices` of the predictions and of the
    references) the protocol's own median peak minus median trough.

    Returns the calibrated predictions ``t'`` and the references ``ref_t``, one row per
    pair, or None when the batch holds no two windows of one subject.
    """
    pred, ref = out[:, 0, :length], target[:, 0, :length]
    c_idx, t_idx = subject_pairs(groups)
    if len(c_idx) == 0:
        return None

    # index_select, not pred[idx]: the backward pass of advanced indexing adds the gradients
    # of a window's repeated rows in an order that varies between CPU threads, so a run was
    # not reproducible (nor a resumed one exact) with more than one thread.
    def rows(x: Tensor, idx: Tensor) -> Tensor:
        return x.index_select(0, idx)

    offset_pred = rows(pred.mean(dim=-1), c_idx)[:, None]
    offset_ref = rows(ref.mean(dim=-1), c_idx)[:, None]
    if mode == "offset-scale":
        if peaks is None:
            pp_ref = ref.amax(dim=-1) - ref.amin(dim=-1)
            pp_pred = pred.amax(dim=-1) - pred.amin(dim=-1)
        else:
            pp_pred = peak_pulse_pressure(pred, peaks[0])
            pp_ref = peak_pulse_pressure(ref, peaks[1])
        # A flat prediction would make the scale explode; 1e-3 of the normalised range is
        # ~0.2 mmHg with the min-max normalisation.
        scale = rows(pp_ref / pp_pred.clamp_min(1e-3), c_idx)[:, None]
    else:
        scale = 1.0
    return (rows(pred, t_idx) - offset_pred) * scale + offset_ref, rows(ref, t_idx)


def pair_losses(
    out: Tensor,
    target: Tensor,
    length: int,
    groups: Tensor,
    mode: str,
    peaks: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """The within-subject losses of a batch, from one calibration of its pairs
    (:func:`pair_calibrate`):

    - the mean L1 of every calibrated pair's prediction against its reference. A network
      whose level error is the same in every window of a person pays nothing here, so the
      loss rewards tracking changes within a person rather than guessing an unseen person's
      level (which the plain L1 handles);
    - the L1 between each calibrated pair's maximum and minimum and its reference's, i.e.
      the calibrated systolic and diastolic pressures, which a sample-wise L1 spreads over
      the whole window (:func:`extremes_gap`).

    A batch without such pairs contributes zero to both.
    """
    pairs = pair_calibrate(out, target, length, groups, mode, peaks)
    if pairs is None:
        zero = out.sum() * 0.0  # keeps the graph connected (DDP expects every gradient)
        return zero, zero
    calibrated, ref = pairs
    return (calibrated - ref).abs().mean(), extremes_gap(calibrated, ref)


def pair_l1(*args: Any, **kwargs: Any) -> Tensor:
    """The first of :func:`pair_losses` (same arguments): the within-subject L1."""
    return pair_losses(*args, **kwargs)[0]


class TrainStep(nn.Module):
    """Forward (and optionally reverse) pass of one batch as a single module call, so that
    DistributedDataParallel sees exactly one forward per backward."""

    def __init__(self, model: INNPAR, cfg: TrainConfig, norm: Normalisation | None = None):
        super().__init__()
        self.model = model
        self.cfg = cfg
        # The ABP normalisation, which pair_pp = "peaks" needs to find peaks in mmHg.
        self.norm = norm
        if cfg.pair_pp == "peaks" and norm is None:
            raise ValueError('pair_pp = "peaks" needs the ABP normalisation')

    def forward(
        self, ppg: Tensor, abp: Tensor, groups: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Total loss, and the inverse and within-subject terms (unweighted) for the log;
        ``groups`` holds each window's subject code (needed by the within-subject losses)."""
        length = ppg.shape[-1]
        x = self.model.make_input(ppg)
        y = self.model.make_input(abp)
        out, _ = self.model(x, jac=False)
        loss = channel_l1(out.float(), y, length, self.cfg.loss_region, self.cfg.grad_weight)
        if self.cfg.diff_weight > 0:
            loss = loss + self.cfg.diff_weight * diff_l1(out.float(), y, length)
        if self.cfg.extremes_weight > 0:
            loss = loss + self.cfg.extremes_weight * extremes_l1(out.float(), y, length)
        inverse = torch.zeros((), device=loss.device)
        if self.cfg.inverse_weight > 0:
            back, _ = self.model(y, rev=True, jac=False)
            inverse = channel_l1(
                back.float(), x, length, self.cfg.loss_region, self.cfg.grad_weight
            )
            loss = loss + self.cfg.inverse_weight * inverse
        pair = torch.zeros((), device=loss.device)
        if self.cfg.pair_weight > 0 or self.cfg.pair_extremes_weight > 0:
            if groups is None:
                raise ValueError("the within-subject loss needs the subject code of every window")
            # Under DDP the pairs are formed over the global batch (all ranks' windows),
            # so that N processes train what one process with the same batch would: exactly,
            # unless a batch holds more than MAX_PAIRS_PER_WINDOW pairs per window, when
            # the subset kept depends on the windows' order (rank order vs. the sampler's).
            pair_out, pair_y = gather_rows(out[:, :1].float()), gather_rows(y[:, :1])
            peaks = None
            if self.cfg.pair_pp == "peaks":
                assert self.norm is not None  # checked in __init__
                fs = self.model.config.fs
                peaks = (
                    peak_indices(pair_out[:, 0, :length], self.norm, fs),
                    peak_indices(pair_y[:, 0, :length], self.norm, fs),
                )
            pair_args = (
                pair_out,
                pair_y,
                length,
                gather_rows(groups),
                self.cfg.pair_calibration,
                peaks,
            )
            calibrated_l1, extremes = pair_losses(*pair_args)
            if self.cfg.pair_weight > 0:
                pair = calibrated_l1  # logged only when it is trained
                loss = loss + self.cfg.pair_weight * pair
            if self.cfg.pair_extremes_weight > 0:
                loss = loss + self.cfg.pair_extremes_weight * extremes
        return loss, inverse, pair


def ppg_noise(cfg: TrainConfig, epoch: int, rows: Tensor, like: Tensor) -> Tensor:
    """The Gaussian noise (SD ``cfg.ppg_noise``) added to one training batch's PPG ``like``,
    whose windows are the file's rows ``rows``.

    Each window's noise comes from a generator seeded by (seed, epoch, window): a resumed
    run and ``N`` processes add exactly the noise that one uninterrupted process adds,
    however the sampler deals windows to processes (the subject-group sampler deals whole
    groups, not every ``N``-th window), and the global RNG (whose CUDA state a checkpoint
    does not keep) plays no part.
    """
    noise = torch.empty(like.shape, dtype=torch.float32)
    for i, window in enumerate(rows.tolist()):
        state = np.random.SeedSequence([cfg.seed, epoch, int(window)]).generate_state(1, np.uint64)
        generator = torch.Generator().manual_seed(int(state[0]))
        noise[i] = torch.randn(like.shape[1:], generator=generator)
    return cfg.ppg_noise * noise.to(like.device, like.dtype)


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Learning-rate multiplier for a (0-based) epoch: linear warm-up, then constant or cosine.

    Warm-up epoch ``k < W`` runs at ``(k + 1) / W`` of the rate, so the last of the ``W``
    warm-up epochs is already at the full rate (``W = 2``: 0.5, then 1.0; ``W = 1`` changes
    nothing), and a cosine schedule then starts from the full rate at epoch ``W``. The
    committed results were trained so; ``(k + 1) / (W + 1)`` would change the recipe."""
    if cfg.warmup_epochs and epoch < cfg.warmup_epochs:
        return (epoch + 1) / cfg.warmup_epochs
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.epochs - cfg.warmup_epochs)
        progress = (epoch - cfg.warmup_epochs) / span
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return 1.0


# ----------------------------------------------------------------------------- run directory


def next_run_dir(root: str | Path, preset: str) -> Path:
    """``root/NNNNN-preset`` with the next free number, StyleGAN-style. Every numbered
    entry takes its number, not only folders: a file or a dangling link with the next
    name made :func:`claim_run_dir` try that name for ever."""
    root = Path(root)
    numbers = (
        # isdecimal, not isdigit: "²" is a digit that int() refuses.
        [
            int(p.name.split("-", 1)[0])
            for p in root.glob("*")
            if p.name.split("-", 1)[0].isdecimal()
        ]
        if root.exists()
        else []
    )
    return root / f"{max(numbers, default=-1) + 1:05d}-{preset}"


def claim_run_dir(root: str | Path, preset: str) -> tuple[Path, list[Path]]:
    """A new ``root/NNNNN-preset`` (:func:`next_run_dir`), created here: ``mkdir`` is atomic,
    so two commands started in the same second get two folders rather than one that both
    write (one run was lost). Also returns the folders made, deepest first, for
    ``remove_if_empty`` should the run fail before writing anything."""
    made = make_folder(Path(root))
    while True:
        run_dir = next_run_dir(root, preset)
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue  # another command took the number meanwhile: the next one
        return run_dir, [run_dir, *reversed(made)]


def holds_run(run_dir: Path) -> bool:
    """``run_dir`` holds a run: files of a run's names (:data:`RUN_ARTIFACTS`), none of
    them another program's (:func:`foreign_run_files`)."""
    present = any((run_dir / name).exists() for name in RUN_ARTIFACTS)
    return present and not foreign_run_files(run_dir)


def foreign_run_files(run_dir: Path) -> list[str]:
    """The files in ``run_dir`` with a run's names that no run wrote: a config.json without
    what train writes into it (:func:`_is_run_config`), and without one, a metrics.jsonl of
    other lines or a ``checkpoints`` that is a file. A folder holding the user's own
    config.json was taken for a run, and ``--force`` replaced the file."""
    config = run_dir / "config.json"
    if config.exists():
        return [] if _is_run_config(config) else ["config.json"]
    foreign = []
    metrics = run_dir / "metrics.jsonl"
    if metrics.exists() and not _is_run_metrics(metrics):
        foreign.append("metrics.jsonl")
    checkpoints = run_dir / "checkpoints"
    if checkpoints.exists() and not checkpoints.is_dir():
        foreign.append("checkpoints")
    elif checkpoints.is_dir():
        foreign.extend(f"checkpoints/{name}" for name in _foreign_checkpoints(checkpoints))
    return foreign


# The names train gives the checkpoints it writes into checkpoints/, and the hidden files
# that say nothing of whose the folder is: this package's own atomic writes
# (``.NAME.PID.tmp``, left by a run killed mid-write: outputs.is_temporary) and what file
# systems leave (macOS's ``.DS_Store`` and ``._NAME``, NFS's ``.nfsXXXX``). Other hidden
# files (a ``.git``, a user's ``.notes.tmp``) are the user's.
_RUN_CHECKPOINT = re.compile(r"(last|best|epoch-\d{4,})\.pt")
_LEFT_BY_SYSTEMS = re.compile(r"\.DS_Store|\._.+|\.nfs[0-9A-Fa-f]+")


def _foreign_checkpoints(checkpoints: Path) -> list[str]:
    """The files in a ``checkpoints`` folder, of a folder without config.json, that no run
    wrote: another name than a run's checkpoints', or a ``.pt`` that another program saved
    (it loads, without the innpar-freia format marker). Another program's
    ``checkpoints/model.pt`` made the folder a run, and ``--force`` deleted it. The files
    of :data:`_LEFT_BY_SYSTEMS` are not looked at. Called only for a folder without
    config.json (a run writes it before its first checkpoint, and it tells whose the folder
    is without opening a checkpoint); each file is memory-mapped, not read whole."""
    foreign = []
    for path in sorted(checkpoints.iterdir()):
        if _LEFT_BY_SYSTEMS.fullmatch(path.name) or is_temporary(path.name):
            continue
        if _RUN_CHECKPOINT.fullmatch(path.name) is None or not path.is_file():
            foreign.append(path.name)
        elif not _is_run_checkpoint(path):
            foreign.append(path.name)
    return foreign


def _is_run_checkpoint(path: Path) -> bool:
    """``path``, named as a run's checkpoint, is not another program's: it holds the
    innpar-freia format marker (of any format version), or it is a PyTorch (zip) file too
    damaged to read that still shows the marker near its start. A run's checkpoint cut
    short (an interrupted copy) was refused as "not written by innpar train", so that even
    ``--force`` could not replace the run; resuming it still names it unreadable
    (read_checkpoint). A file that reads only with code (another program's whole model,
    refused by ``weights_only``), a damaged zip without the marker (another program's
    ``last.pt`` cut short, which ``--force`` deleted) or no PyTorch file at all is another
    program's."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        return is_zip(path) and not needs_code(exc) and _marker_in_head(path)
    return isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT


def _marker_in_head(path: Path) -> bool:
    """The format marker is in the first bytes of ``path``. save_checkpoint puts it first in
    its dict, and torch writes the pickled dict (uncompressed) as the zip's first entry, so
    it is about 90 bytes in: a checkpoint cut anywhere after that still shows it."""
    try:
        with path.open("rb") as fh:
            return CHECKPOINT_FORMAT.encode() in fh.read(4096)
    except OSError:
        return False


# What train writes into config.json, every version of it and at once (atomically, before
# the first epoch): the run's configuration (RunConfig.to_dict), what it trained on.
RUN_CONFIG_TABLES = ("model", "train", "data", "normalisation", "environment")


def _is_run_config(path: Path) -> bool:
    """A JSON object holding what train writes, each of its kind (and a list of resumes,
    where it has one). Other keys are allowed: a run's config.json edited by hand (a
    ``"notes"``), or written by a later version. A user's own ``{"my": "settings"}`` is not
    a run's, nor ``{"preset": "tiny", "train": {...}}`` shaped like a part of one, nor a
    file that is not JSON."""
    try:
        described = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(described, dict):
        return False
    kinds = {"preset": str, **dict.fromkeys(RUN_CONFIG_TABLES, dict)}
    return all(isinstance(described.get(key), kind) for key, kind in kinds.items()) and (
        isinstance(described.get("resumed", []), list)
    )


def _is_run_metrics(path: Path) -> bool:
    """Every line an epoch's record (empty: a run killed before its first epoch ended)."""
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError):
        return False
    return all(isinstance(r, dict) and "epoch" in r for r in records)


def run_reports(run_dir: Path) -> tuple[str, ...]:
    """The evaluation reports ``innpar eval`` wrote into the run: by default
    (``eval-<split>[-fold<k>]/`` holding a metrics.json), and a report written into the run
    folder itself (``--out RUN``: its report files and figures, by their relative paths;
    they had stayed, describing the old model, and made the next eval refuse to replace
    "an earlier report"). They describe its model, so ``--force`` replaces them with it
    (set aside, then dropped with the old run)."""
    from innpar_freia.report import existing_report  # (report imports evaluate, and more)

    folders = [p.name for p in run_dir.glob("eval-*") if (p / "metrics.json").is_file()]
    files = [p.relative_to(run_dir).as_posix() for p in existing_report(run_dir)]
    return tuple(sorted(folders + files))


def fit_to_data(
    run_config: RunConfig, data: Path, *, resumed: bool = False
) -> tuple[RunConfig, StoreInfo, SplitPlan]:
    """The configuration a run on ``data`` trains with (the network at the data's rate and
    window length), the data's description and the split plan: the checks a run makes
    before it writes anything (``--dry-run`` shows their result). A ``resumed`` run's model
    is at the rate of the file it was trained on; a file at another is refused apart."""
    info = read_info(data)
    check_data(info)
    if not resumed:
        check_rate_not_set_otherwise(run_config.model, info)
    model_cfg = fit_model_to_data(run_config.model, info)
    cfg = run_config.train
    plan = plan_splits(info, cfg.test_fold, cfg.val_fold)
    if len(plan.train) == 0:
        raise DataError(f"{data}: the training split is empty")
    return RunConfig(preset=run_config.preset, model=model_cfg, train=cfg), info, plan


def check_global_batch(batch_size: int, world_size: int, resumed: Path | None = None) -> None:
    """The batch is the global one: it must split evenly over the ``world_size`` processes.
    ``resumed``: the run directory of a run being resumed (it keeps its batch: only the
    number of processes can change)."""
    if batch_size % world_size == 0:
        return
    divisors = [n for n in range(1, min(batch_size, 64) + 1) if batch_size % n == 0]
    raise ConfigError(
        f"batch_size {batch_size} must be divisible by the number of processes "
        f"({world_size}): it is the global batch"
        + (
            f"; resume {resumed} with a number of processes that divides it "
            f"({', '.join(map(str, divisors))})"
            if resumed is not None
            else ""
        )
    )


def check_rate_not_set_otherwise(model: ModelConfig, info: StoreInfo) -> None:
    """Refuse a network set to another rate or window length than the data file's.

    Training takes both from the file, so such a value was dropped without a word. A value
    other than the default is one the caller set (``resolve_config(model={"fs": 250.0})``,
    another run's configuration): presets and TOML files name neither (load_run_config
    refuses them), nor does ``innpar train`` or an experiment's runner, whose networks are
    fitted to the file as before. A default set explicitly cannot be told apart from none."""
    default = ModelConfig()
    differ = []
    if model.fs != default.fs and not math.isclose(model.fs, info.fs):
        differ.append(f"fs = {model.fs:g} Hz (the file: {info.fs:g} Hz)")
    if model.window_length not in (default.window_length, info.window_length):
        differ.append(f"window_length = {model.window_length} (the file: {info.window_length})")
    if differ:
        raise ConfigError(
            f"the model is set to {' and '.join(differ)}, but training takes the sampling "
            f"rate and window length of the data file {info.path}: leave them out of the "
            "model's settings, or import the data at the rate and window length you want "
            "(innpar data import --fs / --window-seconds)"
        )


def fit_model_to_data(model: ModelConfig, info: StoreInfo) -> ModelConfig:
    """The network ``model`` at the rate and window length of the window file ``info``, as a
    run on that file trains it (:func:`fit_to_data`) and ``innpar check --preset --data``
    checks it: a preset's 125 Hz and 625 samples are only its defaults."""
    try:
        fitted = model.replace(fs=info.fs, window_length=info.window_length)
        fitted.check_rate()
    except ConfigError as exc:
        raise DataError(f"{info.path}: the network cannot take these windows: {exc}") from None
    return fitted


def check_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    """Refuse to overwrite a run unless told to (``resume`` continues it, ``force`` restarts).

    Reads only: every process of a distributed run calls it, so that all of them stop
    with this message rather than the others failing on a closed connection.
    """
    if resume and force:
        raise RunDirError(
            f"{option('--resume', 'resume=True')} and {option('--force', 'force=True')} "
            "contradict each other: choose one"
        )
    check_run_path(run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    foreign = foreign_run_files(run_dir)
    if foreign:
        # With --resume too: a config.json of the user's beside a run's last.pt was
        # resumed, and the resume rewrote the file.
        them = "it is" if len(foreign) == 1 else "they are"
        raise RunDirError(
            f"{run_dir} holds {' and '.join(foreign)} that innpar train did not write: "
            f"{them} not a run's and will not be replaced, even with "
            f"{option('--force', 'force=True')} or {option('--resume', 'resume=True')}; give "
            "the run another folder"
        )
    if resume:
        if not last.is_file():
            unfinished = holds_run(run_dir) and not any((run_dir / "checkpoints").glob("*.pt"))
            raise RunDirError(
                f"nothing to resume: {run_dir} has no checkpoints/last.pt"
                + (_unfinished() if unfinished else "")
            )
        return
    if holds_run(run_dir) and not force:
        if not any((run_dir / "checkpoints").glob("*.pt")):
            raise RunDirError(f"{run_dir} holds a run without a checkpoint" + _unfinished())
        raise RunDirError(
            f"{run_dir} already holds a run; pass {option('--resume', 'resume=True')} to "
            f"continue it or {option('--force', 'force=True')} to start over (its checkpoints "
            "and metrics will be deleted)"
        )


def check_run_path(run_dir: Path) -> None:
    """``run_dir`` can be a folder: it is one, or it and the missing folders above it can be
    made (nothing above it is a file)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} is a file")
    # A file above it (--out data.h5/run) was "Not a directory: data.h5/run" from mkdir.
    above = next((p for p in run_dir.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise RunDirError(f"cannot write in {run_dir}: {above} is a file, not a folder")


# A run folder with no checkpoint: a run still starting, or one killed outright before its
# first epoch ended (SIGKILL, or SIGTERM under torchrun, skip the clean-up that removes it).
# A training holds the run directory (train's lock), so train() itself meets only the
# killed one (a run still starting is refused as busy first); "still starting" is for the
# callers that hold nothing: --dry-run, the other ranks under torchrun, and a folder an
# earlier innpar-freia (without the lock) is writing.
def _unfinished() -> str:
    """The advice on such a folder, in the caller's spelling (see errors.option)."""
    return (
        ": it is still starting, or was killed before its first epoch ended; if no innpar "
        f"train is writing it, start it again with {option('--force', 'force=True')}"
    )


def windows_fingerprint(info: StoreInfo) -> str:
    """SHA-256 of a window file's window ids and subjects, in file order: which windows a
    run was trained on, independent of where the file lies now."""
    h = hashlib.sha256()
    for values in (info.window_ids, info.subjects):
        h.update("\x1f".join(str(v) for v in np.asarray(values).ravel()).encode())
        h.update(b"\x1e")
    return h.hexdigest()


def split_fingerprint(info: StoreInfo, plan: Any) -> str:
    """SHA-256 of the window ids in each of the train/val/test splits: same counts with
    other windows (re-split folds, another seed) is other data for a resumed run."""
    h = hashlib.sha256()
    for split in ("train", "val", "test"):
        h.update(f"{split}:".encode())
        h.update("\x1f".join(str(v) for v in info.window_ids[getattr(plan, split)]).encode())
    return h.hexdigest()


# Windows whose signals are hashed to tell files with the same ids apart (cheap: a fixed
# number of rows, spread over the file, not the whole file).
CONTENT_SAMPLE = 64


def content_fingerprint(path: Path, n_windows: int) -> str:
    """SHA-256 of the PPG and ABP of up to :data:`CONTENT_SAMPLE` evenly spaced windows."""
    rows = np.unique(np.linspace(0, max(n_windows - 1, 0), CONTENT_SAMPLE).round().astype(int))
    ppg, abp = load_split_arrays(path, rows[:n_windows])
    h = hashlib.sha256(np.ascontiguousarray(ppg, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(abp, dtype=np.float32).tobytes())
    return h.hexdigest()


def check_resume_data(data: Path, desc: dict[str, Any], stored: dict[str, Any]) -> None:
    """A resumed run must see the windows it was trained on: another file would change its
    training split mid-run and compare validation errors of different windows."""
    differences = [
        f"{key} {stored[key]} -> {desc[key]}"
        for key in ("n_windows", "windows_sha256")
        if key in stored and stored[key] != desc[key]
    ]
    # Runs from before a fingerprint existed are checked on what they recorded.
    if any(k in stored and stored[k] != desc[k] for k in ("split", "split_sha256")):
        differences.append("other train/val/test windows")
    if "content_sha256" in stored and stored["content_sha256"] != desc["content_sha256"]:
        differences.append("other signals in the same windows")
    if differences:
        recorded = stored.get("path")
        if recorded and Path(recorded) == data.resolve():
            # The same file, changed since: naming it as the one to resume with would not help.
            raise DataError(
                f"{data} has changed since the run being resumed started "
                f"({'; '.join(differences[:2])}): its splits or folds were redrawn ('innpar "
                "data split') or its windows rewritten; the run resumes only on the windows "
                "it was trained on"
            )
        raise DataError(
            f"{data} is not the data the run being resumed was trained on "
            f"({'; '.join(differences[:2])}); resume it with {recorded or 'that file'}"
        )


def check_checkpoint_is_the_runs(run_dir: Path, last: Path, stored: RunConfig) -> None:
    """A ``last.pt`` whose network is not the one ``config.json`` describes (a checkpoint
    copied in from another run) would continue that other run here: its epochs appended to
    this run's metrics.jsonl and its best.pt set against this run's. An unreadable
    config.json says nothing either way; settings only one side has are not compared."""
    try:
        before = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(before, dict):
        return
    differ = []
    if isinstance(before.get("preset"), str) and before["preset"] != stored.preset:
        differ.append(f"preset {before['preset']!r} vs {stored.preset!r}")
    model = before.get("model")
    if isinstance(model, dict):
        model = stored_model_table(model)  # read as the checkpoint's was
        mine = stored.model.to_dict()
        differ += [
            f"{k} {model[k]!r} vs {mine[k]!r}" for k in mine if k in model and model[k] != mine[k]
        ]
    if differ:
        raise RunDirError(
            f"{last} is not the checkpoint of the run in {run_dir} (config.json vs "
            f"checkpoint: {'; '.join(differ[:4])}); put that run's own last.pt back, or "
            f"start over with {option('--force', 'force=True')}"
        )


def resume_config(path: Path, state: dict[str, Any]) -> RunConfig:
    """The configuration stored in the checkpoint ``path`` that a run resumes from, once
    the checkpoint is known to hold what resuming reads. A configuration this version
    cannot read (a run from another innpar-freia) or a damaged checkpoint is one error
    naming the file, rather than "unknown train setting(s)" about settings the user never
    gave, or a KeyError traceback."""
    if not isinstance(state["run_config"], dict):
        raise CheckpointError(f"{path} is damaged: its run_config cannot be read")
    try:
        stored = RunConfig.from_stored(state["run_config"])
    except (ConfigError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{path} holds a configuration this innpar-freia ({__version__}) cannot resume: {exc}"
        ) from None
    ts = state.get("training_state")
    epoch = state.get("epoch")
    damaged = [
        name
        for name, ok in (
            ("epoch", isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1),
            ("optimizer_state", isinstance(state.get("optimizer_state"), dict)),
            ("data", isinstance(state.get("data", {}), dict)),
            (
                "training_state",
                isinstance(ts, dict)
                and all(k in ts for k in ("best_val_mae", "best_epoch", "bad_epochs", "torch_rng")),
            ),
        )
        if not ok
    ]
    if damaged:
        raise CheckpointError(
            f"{path} is damaged: its {', '.join(damaged)} cannot be read, so the run cannot "
            "continue from it"
        )
    return stored


def complete_epoch_checkpoints(
    ckpt_dir: Path, state: dict[str, Any], keep: tuple[int, ...]
) -> list[str]:
    """Write the checkpoints that the last epoch of a run stopped between its writes did
    not (names returned). An epoch writes ``last.pt``, then its kept ``epoch-NNNN.pt`` and,
    when it improved, ``best.pt``, all the same body: ``last.pt`` of epoch N with a
    ``best.pt`` of an earlier epoch, while its own record says that N was the best, is such
    a run, and its ``best.pt`` is ``last.pt`` (``keep``: the run's ``keep_checkpoints``)."""
    done = int(state["epoch"])
    wanted = []
    if done in keep:
        wanted.append(ckpt_dir / f"epoch-{done:04d}.pt")
    if state["training_state"].get("best_epoch") == done:
        wanted.append(ckpt_dir / "best.pt")
    written = []
    for path in wanted:
        if path.is_file():
            try:
                if read_checkpoint(path).get("epoch") == done:
                    continue
            except CheckpointError:
                pass  # a damaged copy is replaced as well
        write_bytes_atomic(path, (ckpt_dir / "last.pt").read_bytes())
        written.append(path.name)
    return written


def resumes(previous_config: bytes | None, state: dict[str, Any]) -> list[dict[str, Any]]:
    """``config.json``'s record of a run's resumes, this one last: the epoch each continued
    after, the ``epochs`` the run was set to until then and the ``environment`` that trained
    it until then. The rest of ``config.json`` describes the last session, so without it a
    run extended with ``--resume --epochs`` (a cosine schedule recomputed for the new
    length) or moved to another machine could not be told from one trained straight."""
    try:
        before = json.loads(previous_config) if previous_config else {}
    except ValueError:  # an unreadable config.json: the record starts here
        before = {}
    if not isinstance(before, dict):
        before = {}
    earlier = before.get("resumed")
    earlier = earlier if isinstance(earlier, list) else []
    last = earlier[-1] if earlier and isinstance(earlier[-1], dict) else {}
    if last.get("after_epoch") == int(state["epoch"]):
        # The resume before this one continued after the same epoch and wrote no checkpoint:
        # it was killed outright (torchrun's SIGTERM to its processes) before it could put
        # config.json back. Its record stands for this one; the environment it names
        # trained up to that epoch, while config.json's is the killed session's.
        return earlier
    return [
        *earlier,
        {
            "after_epoch": int(state["epoch"]),
            "epochs": int(state["run_config"]["train"]["epochs"]),
            "environment": before.get("environment"),
        },
    ]


def write_bytes_atomic(path: Path, content: bytes) -> None:
    """Replace ``path`` by ``content`` at once, through a temporary file of this process
    (another process may be writing the same file), which a failure does not leave behind,
    and without those that writes of it killed outright (kill -9) left."""
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(content)
        replace_durably(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    write_bytes_atomic(path, text.encode())


def read_history(path: Path, up_to_epoch: int) -> list[dict[str, Any]]:
    """Epoch records of ``metrics.jsonl`` up to a checkpoint's epoch (a resumed run drops
    the records of epochs it is about to redo). A line a kill cut short while it was being
    appended is not a record: it is dropped with the epochs to redo."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        epoch = record.get("epoch") if isinstance(record, dict) else None
        if isinstance(epoch, int) and epoch <= up_to_epoch:
            out.append(record)
    return out


# ----------------------------------------------------------------------------- data


def check_data(info: StoreInfo) -> None:
    if info.n_windows == 0:
        raise DataError(f"{info.path} holds no windows")
    if info.abp_units.lower() != "mmhg":
        raise DataError(f"{info.path}: ABP must be in mmHg, but the file says {info.abp_units!r}")


def fit_baselines(path: Path, indices: np.ndarray, fs: float) -> tuple[dict[str, float], Flat]:
    """The baselines' parameters fitted on the windows ``indices`` (the training split),
    and how many of those windows are flat, read in the same pass."""
    acc = BaselineAccumulator(fs)
    flat = Flat(windows=len(indices))
    for s in range(0, len(indices), STATS_BLOCK):
        ppg, abp = load_split_arrays(path, np.sort(indices[s : s + STATS_BLOCK]))
        acc.add(ppg, abp)
        flat.ppg += int(np.sum(np.ptp(ppg, axis=1) == 0))
        flat.abp += int(np.sum(np.ptp(abp, axis=1) == 0))
        flat.abp_medians.append(np.median(abp, axis=1))
    return acc.result().to_dict(), flat


def training_copy_keys(path: Path, indices: np.ndarray) -> dict[str, torch.Tensor]:
    """The sorted, distinct :func:`copy_keys` of the PPG and of the ABP of the windows
    ``indices`` (the training split), constant lines left out, as int64 tensors (what a
    checkpoint loaded with ``weights_only=True`` may hold)."""
    keys: dict[str, list[np.ndarray]] = {"ppg": [], "abp": []}
    for s in range(0, len(indices), STATS_BLOCK):
        ppg, abp = load_split_arrays(path, np.sort(indices[s : s + STATS_BLOCK]), dtype=None)
        keys["ppg"].append(copy_keys(ppg))
        keys["abp"].append(copy_keys(abp))
    out = {}
    for name, parts in keys.items():
        found = np.unique(np.concatenate([np.zeros(0, np.int64), *parts]))
        out[name] = torch.from_numpy(found[found != NO_KEY])
    return out


@dataclass
class Flat:
    """Training windows whose PPG or ABP is a constant line (a lost sensor, a flushed
    arterial line): they hold no pulse to learn from. The importers reject them; a file
    made elsewhere can hold them, and a file made of them trained without a word, to a
    flat output (and ``data check`` called the identical lines leakage)."""

    windows: int
    ppg: int = 0
    abp: int = 0
    # Each window's median ABP, a block at a time: the units check below (8 bytes a window).
    abp_medians: list[np.ndarray] = field(default_factory=list)

    def check(self, data: Path) -> list[str]:
        """Refuse (``DataError``) when every window's PPG or every window's ABP is flat;
        otherwise the warnings to print: one if any are, and the units warning:
        a file edited after its import (ABP normalised, in kPa) trained without a word,
        and every number in mmHg (the protocol's thresholds, BHS, AAMI) was then wrong."""
        for name, n in (("PPG", self.ppg), ("ABP", self.abp)):
            if n == self.windows:
                raise DataError(
                    f"{data}: the {name} of every training window is a constant line: "
                    "there is no pulse to learn from"
                )
        said = []
        if self.ppg or self.abp:
            said.append(self._flat_warning())
        found = self.abp_medians and abp_units_warning(
            np.concatenate(self.abp_medians), f"{data}'s training windows"
        )
        if found:
            said.append(f"warning: {found}; the protocol's thresholds (BHS, AAMI) are in mmHg")
        return said

    def _flat_warning(self) -> str:
        (name, n), *more = [(k, n) for k, n in (("PPG", self.ppg), ("ABP", self.abp)) if n]
        which = f"{n} of the {self.windows} training windows {'has' if n == 1 else 'have'} "
        which += f"a constant {name}" + "".join(f" and {m} a constant {k}" for k, m in more)
        return (
            f"warning: {which} (no pulse): the network learns nothing from them and is "
            "pulled toward a flat output; drop them ('innpar data import' rejects such windows)"
        )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but no CUDA device is available")
    return torch.device(name)


def validation_share(val: np.ndarray, subjects: np.ndarray, dist_info: DistInfo) -> np.ndarray:
    """The validation windows this process validates, in the split's order: whole subjects
    (``subjects``: the subject of each file row), dealt largest first to the rank with the
    fewest windows so far (all of them in a single process). Under torchrun every rank
    predicts *and scores* its share, and rank 0 adds up the errors (:func:`validate`), so
    no rank works on the whole split while the others wait in a collective (the process
    group's timeout is 10 min with NCCL) and no predictions travel between ranks. Whole
    subjects, because the calibrated protocol calibrates each subject on its first window.
    One subject's windows cannot be split: a split of one subject is validated by one rank."""
    val = np.asarray(val)
    world = dist_info.world_size
    if world == 1 or len(val) == 0:
        return val
    names, inverse, counts = np.unique(
        np.asarray(subjects)[val].astype(str), return_inverse=True, return_counts=True
    )
    load = np.zeros(world, dtype=np.int64)
    owner = np.empty(len(names), dtype=np.int64)
    for s in np.lexsort((np.arange(len(names)), -counts)):  # largest first, ties by name
        owner[s] = int(np.argmin(load))
        load[owner[s]] += counts[s]
    return val[owner[inverse.ravel()] == dist_info.rank]


def error_sums(windows: Any) -> np.ndarray:
    """What the validation record's errors are made of, summed so that the shares of
    several ranks add up: ``[sum |e|, sum e^2, samples, |e_SBP|, |e_DBP|, |e_MAP| summed,
    windows]`` of one protocol's :class:`~innpar_freia.metrics.Scored` windows (mmHg)."""
    wave, n = windows.wave, len(windows)
    bp = np.abs(windows.bp_pred - windows.bp_ref).sum(axis=0) if n else np.zeros(3)
    sums = [wave.abs_sum.sum(), wave.sq_sum.sum(), n * wave.length, *bp, n]
    return np.array(sums, dtype=float)


@torch.no_grad()
def validate(
    model: INNPAR,
    loader: Any,
    norm: Normalisation,
    cfg: TrainConfig,
    info: StoreInfo,
    device: torch.device,
    dist_info: DistInfo | None = None,
) -> dict[str, float] | None:
    """Validation loss (normalised units, mean over windows) and mmHg errors by the
    protocol: waveform MAE/RMSE on real samples of de-normalised predictions and
    SBP/DBP/MAP MAE, without calibration and calibrated (offset and scale from each
    subject's first window).

    Under torchrun every rank calls it with a loader over its :func:`validation_share`
    (``None`` for a rank whose share is empty), predicts and scores those subjects; rank
    0 gathers each rank's :func:`error_sums` and returns the record of the whole split,
    the same as one process's; the other ranks get ``None``."""
    dist_info = dist_info or DistInfo()
    model.eval()
    loss_sum, n_windows = 0.0, 0
    empty = np.zeros((0, info.window_length))
    preds, refs, rows = [empty], [empty], [np.zeros(0, dtype=np.int64)]
    for ppg, abp, idx in loader if loader is not None else ():
        ppg, abp = ppg.to(device), abp.to(device)
        x = model.make_input(ppg)
        out, _ = model(x, jac=False)
        y = model.make_input(abp)
        loss = channel_l1(out.float(), y, ppg.shape[-1], cfg.loss_region, cfg.grad_weight)
        loss_sum += float(loss) * len(ppg)
        n_windows += len(ppg)
        preds.append(
            postprocess_abp(
                norm.denormalise_abp(out[:, 0, : ppg.shape[-1]].double().cpu().numpy()),
                model.config,
            )
        )
        refs.append(norm.denormalise_abp(abp.double().cpu().numpy()))
        rows.append(np.asarray(idx, dtype=np.int64))
    model.train()
    row = np.concatenate(rows)
    pred = np.concatenate(preds)
    if np.isfinite(pred).all():
        order = time_order(info.start[row], row, info.subjects[row])  # as evaluate.predict
        windows = protocol_windows(
            pred,
            np.concatenate(refs),
            None,
            info.subjects[row],
            order,
            info.fs,
            calibration="offset-scale",
        )
        share = (loss_sum, n_windows, error_sums(windows["model"]))
        share += (error_sums(windows["model_calibrated"]),)
    else:
        # Finite weights can still give NaN or infinite predictions (a step at a huge
        # learning rate), whose BP values cannot be read: bp_values' ValueError stopped the
        # run (and the experiment runner) with a traceback. Its MAE is NaN instead, and the
        # run stops as diverged (every rank still takes part in the gather below).
        nan = np.full(7, np.nan)
        share = (loss_sum, n_windows, nan, nan)
    shares = distributed.gather_object(share, dist_info)
    if shares is None:
        return None  # another rank: rank 0 adds up the shares
    total = sum(int(sh[1]) for sh in shares)
    record = {"val_loss": sum(float(sh[0]) for sh in shares) / max(1, total)}
    for prefix, k in (("val", 2), ("val_cal", 3)):
        abs_sum, sq_sum, samples, *bp_sum, n = np.sum([sh[k] for sh in shares], axis=0)
        bp_mae = np.asarray(bp_sum) / n if n else np.full(3, np.nan)
        record[f"{prefix}_mae"] = float(abs_sum / samples) if samples else math.nan
        if prefix == "val":
            record["val_rmse"] = float(np.sqrt(sq_sum / samples)) if samples else math.nan
        record.update(
            {
                f"{prefix}_sbp_mae": float(bp_mae[0]),
                f"{prefix}_dbp_mae": float(bp_mae[1]),
                f"{prefix}_map_mae": float(bp_mae[2]),
            }
        )
    return record


# ----------------------------------------------------------------------------- training


# Settings a resumed run may change: how long, and where it runs.
RESUME_OVERRIDES = ("epochs", "device", "num_workers")
# How a Python caller gives a resumed run its epochs (the command line's --epochs).
EPOCHS_OVERRIDE = 'resume_overrides["epochs"]'


def _epochs_given(epochs: int) -> str:
    """The epochs a resumed run was given, as its caller gave them."""
    return option(f"--epochs {epochs}", f"{EPOCHS_OVERRIDE} = {epochs}")


def train(
    run_config: RunConfig | None,
    data: str | Path,
    run_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    resume_overrides: dict[str, Any] | None = None,
    callbacks: Callbacks | None = None,
) -> TrainResult:
    """Train ``run_config`` on the window file ``data``; everything goes into ``run_dir``.

    With ``resume`` the run continues from ``checkpoints/last.pt`` with its own stored
    configuration (``run_config`` must be ``None``); ``resume_overrides`` may change only
    epochs, device and num_workers. On CPU a resumed run ends with exactly the weights of
    an uninterrupted one.

    Not thread-safe: training seeds and draws from torch's and numpy's global RNGs and
    switches torch's default dtype, so two runs in threads of one process give other
    weights than each alone. Run concurrent trainings in separate processes.

    ``callbacks`` are told of its progress and given its messages; without them each
    warning (a message starting "warning:", such as an early stopping that is off for want
    of validation windows) is a :class:`UserWarning`. Every message, the notes too, is also
    in the result's ``messages``.

    Gradients are on while it trains, also under a caller's ``torch.no_grad()``; under
    ``torch.inference_mode()`` it raises a RuntimeError, since that mode cannot be left.
    """
    if run_config is not None and not isinstance(run_config, RunConfig):
        # A dict of settings gave "'dict' object has no attribute 'train'".
        raise ConfigError(
            "run_config must be a RunConfig (resolve_config(preset, model=..., train=...) or "
            f"RunConfig.from_dict(...) makes one), but is: {run_config!r}"
        )
    missing = [m for m in CALLBACK_METHODS if callbacks is not None and not hasattr(callbacks, m)]
    if missing:
        # Found only when training got there ("AttributeError: ... 'on_start'").
        raise TypeError(
            f"callbacks lack {', '.join(missing)}: subclass innpar_freia.train.SilentCallbacks "
            "and override only the methods you need"
        )
    resume, force = check_flag("resume", resume), check_flag("force", force)
    if torch.is_inference_mode_enabled():
        # Tensors made under it can never require grad, and enable_grad does not leave it:
        # the first step failed with "element 0 of tensors does not require grad".
        raise RuntimeError(
            "train() cannot run under torch.inference_mode(), which gradients cannot leave; "
            "call it outside that block"
        )
    run_dir = Path(run_dir)
    if resume and force:
        raise RunDirError(
            f"{option('--resume', 'resume=True')} and {option('--force', 'force=True')} "
            "contradict each other: choose one"
        )
    check_run_path(run_dir)
    # Whether this run makes run_dir and the folders above it (--out new/dirs/run), deepest
    # first: a run that leaves nothing removes them again. Read before the lock makes them.
    existed = run_dir.exists()
    new_parents = [p for p in run_dir.parents if not p.exists()]
    # The run directory is this run's alone until it ends, from before anything in it is
    # looked at: a second training started meanwhile (also --resume, --force) is refused
    # here, touching nothing. Under torchrun rank 0 holds it for all its ranks: the others
    # take nothing (their own rank 0 would refuse them), and write nothing before rank 0
    # has joined the group.
    claim = training_lock(run_dir) if os.environ.get("RANK", "0") == "0" else nullcontext()
    # Under a caller's torch.no_grad() the loss had no gradient: training makes its own.
    told = _Told(callbacks or WarningCallbacks())
    with claim, torch.enable_grad():
        result = _train_claimed(
            run_config,
            data,
            run_dir,
            resume=resume,
            force=force,
            resume_overrides=resume_overrides,
            callbacks=told,
            existed=existed,
            new_parents=new_parents,
        )
    result.messages = told.messages
    return result


def _train_claimed(
    run_config: RunConfig | None,
    data: str | Path,
    run_dir: Path,
    *,
    resume: bool,
    force: bool,
    resume_overrides: dict[str, Any] | None,
    callbacks: Callbacks | None,
    existed: bool,
    new_parents: list[Path],
) -> TrainResult:
    """:func:`train` once the run directory is held."""
    cb = callbacks or SilentCallbacks()
    data = Path(data)
    if os.environ.get("RANK", "0") == "0":
        recover_replaced_run(run_dir, cb)
    else:
        wait_for_recovery(run_dir)  # by rank 0, before the checks below
    state: dict[str, Any] | None = None
    # What _train has begun (the clean-up below reads it), and a note for it to give.
    started: dict[str, Any] = {}
    if resume:
        if run_config is not None:
            raise RunDirError("resume continues a run with its stored configuration; give none")
        check_run_dir(run_dir, resume=True, force=force)
        last = run_dir / "checkpoints" / "last.pt"
        state = read_checkpoint(last)
        stored = resume_config(last, state)
        check_checkpoint_is_the_runs(run_dir, last, stored)
        # Resuming would also record the installed version and so hide the mismatch.
        check_freia_version(last, state, stored.model.coupling)
        if os.environ.get("RANK", "0") == "0":  # rank 0 writes checkpoints
            for name in complete_epoch_checkpoints(
                last.parent, state, stored.train.keep_checkpoints
            ):
                cb.on_message(
                    f"{name} of epoch {state['epoch']} was not written (the run stopped "
                    "between its checkpoints): written from last.pt"
                )
        overrides = dict(resume_overrides or {})
        bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if bad:
            raise RunDirError(
                f"a resumed run keeps its configuration; {', '.join(bad)} cannot change "
                f"(only {', '.join(RESUME_OVERRIDES)} can)"
            )
        done = int(state["epoch"])
        # Before the configuration checks the new epochs: "warmup_epochs must be <= 1" was
        # the answer to an --epochs below what the run had done.
        epochs = int(overrides.get("epochs", stored.train.epochs))
        if done <= epochs < stored.train.warmup_epochs:
            raise RunDirError(
                f"{_epochs_given(epochs)} would end {run_dir} inside its "
                f"{stored.train.warmup_epochs}-epoch warm-up, which a resumed run keeps; give at "
                f"least {stored.train.warmup_epochs}"
            )
        if epochs < done:
            raise RunDirError(
                f"{run_dir} has completed {done} epochs; {_epochs_given(epochs)} "
                f"would end before that (give at least {done})"
            )
        run_config = RunConfig(stored.preset, stored.model, stored.train.replace(**overrides))
        new_train = run_config.train
        ts = state["training_state"]
        if ts.get("stopped_early") or done == epochs:
            # Finished: resuming a run its early stopping ended would train on past the
            # point its own rule stopped it, and replace its best checkpoint. Nothing is
            # touched, nor said about epochs to come (a cosine schedule recomputed for
            # them): there are none, and config.json must not come to describe a device
            # or setting (--num-workers) that trained nothing.
            if os.environ.get("RANK", "0") == "0":  # only rank 0 talks
                cb.on_message(
                    f"{run_dir} stopped early at epoch {done} (no better validation MAE for "
                    f"{counted(stored.train.early_stopping, 'epoch')}): it is finished; nothing "
                    "to resume"
                    if ts.get("stopped_early")
                    else f"{run_dir} has completed its {done} epochs: it is finished; nothing "
                    f"to resume ({option('--epochs', EPOCHS_OVERRIDE)} above {done} trains it "
                    "further)"
                )
            best = ts.get("best_val_mae")
            return TrainResult(
                run_dir=run_dir,
                last_checkpoint=run_dir / "checkpoints" / "last.pt",
                best_checkpoint=run_dir / "checkpoints" / "best.pt",
                epochs_completed=done,
                best_epoch=int(ts.get("best_epoch", 0)),
                best_val_mae=None if best is None else float(best),
                stopped_early=bool(ts.get("stopped_early")),
                history=read_history(run_dir / "metrics.jsonl", done),
            )
        if (
            epochs != stored.train.epochs
            and new_train.lr_schedule == "cosine"
            and done > new_train.warmup_epochs
        ):
            # lr_factor follows the run's epochs: a cosine schedule stretched over more (or
            # fewer) epochs continues at another point of its curve. Said once the data
            # has been checked (_train): a refused resume runs no epoch at any rate.
            started["schedule_note"] = (
                f"the cosine learning-rate schedule of {run_dir} is recomputed over {epochs} "
                f"epochs instead of {stored.train.epochs}: epoch {done} ran at "
                f"{lr_factor(stored.train, done - 1):.3g} x lr, epoch {done + 1} runs at "
                f"{lr_factor(new_train, done):.3g} x lr"
            )
    elif run_config is None:
        raise ConfigError("a new run needs a configuration")
    device = resolve_device(run_config.train.device)
    dist_info = distributed.setup(device.type)
    try:
        with held_for_reading(data), callers_rng_kept(device):  # no `data split` under the run
            return _train(run_config, data, run_dir, state, force, cb, device, dist_info, started)
    except BaseException:
        if dist_info.is_main and not started.get("checkpointed"):
            if "aside" in started:  # --force: the run that was there comes back
                put_back(run_dir, started["aside"], RUN_ARTIFACTS)
            elif started.get("config"):
                discard_unstarted_run(run_dir, remove_dir=not existed)
                if not run_dir.exists():
                    remove_if_empty(new_parents)
            elif "previous_config" in started:
                # A resume that failed before its first checkpoint (damaged data, interrupted)
                # must not leave config.json describing a continuation that never happened.
                write_bytes_atomic(run_dir / "config.json", started["previous_config"])
        raise
    finally:
        distributed.teardown(dist_info)


def callers_rng_kept(device: torch.device) -> Any:
    """Torch's global generator as the caller had it, given back when training ends.

    A run draws from it (a DataLoader's worker seeds; a resumed run sets it to the state
    it stopped in), whereas the rest of the API (build_model(seed=), load_checkpoint,
    evaluate, predict_abp) leaves it alone: a caller's own random numbers must not depend
    on whether a run was trained in between. The run starts from the caller's state as
    before, so it computes what it did. Only the run's own CUDA device is forked: the
    others would be initialised for nothing (torch warns about forking many devices)."""
    cuda = []
    if device.type == "cuda":  # distributed.setup has made the rank's device current
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    return torch.random.fork_rng(devices=cuda)


def recover_replaced_run(run_dir: Path, cb: Callbacks) -> None:
    """Finish what a ``--force`` run killed outright (SIGKILL, torchrun stopping its ranks)
    left undone. Its old run is in ``run_dir/.replaced.*``: put back if the new run never
    wrote a checkpoint, deleted if it did (the new run is the one to resume). A ``--force``
    run still going (its process alive) is left alone."""
    finished = (run_dir / "checkpoints" / "last.pt").is_file()
    if recover_set_aside(run_dir, RUN_ARTIFACTS, finished):
        cb.on_message(
            f"warning: put back the run in {run_dir} that an interrupted --force had set aside"
        )


def discard_unstarted_run(run_dir: Path, remove_dir: bool) -> None:
    """A new run that stopped before its first checkpoint (diverged, interrupted, failed)
    holds nothing to resume; its config.json alone would make the directory "hold a run"
    that only --force could reuse. Remove what it wrote (and ``run_dir`` itself if this
    run created it and it is empty), so that the same command can simply be run again."""
    ckpt_dir = run_dir / "checkpoints"
    if (ckpt_dir / "last.pt").exists():
        return
    for name in ("config.json", "metrics.jsonl"):
        (run_dir / name).unlink(missing_ok=True)
    # An epoch writes last.pt before best.pt and kept epochs, so without last.pt this run
    # wrote none of them; any there (left by a version that wrote best.pt first, when a
    # full disk stopped it in between) would make the folder hold a run --resume cannot use.
    for written in [ckpt_dir / "best.pt", *ckpt_dir.glob("epoch-*.pt")]:
        written.unlink(missing_ok=True)
    for stale in [*run_dir.glob(".*.tmp"), *ckpt_dir.glob(".*.tmp")]:
        stale.unlink(missing_ok=True)
    # Absent, or holding something this run did not write: left as it is.
    remove_if_empty((ckpt_dir, run_dir) if remove_dir else (ckpt_dir,))


def _train(
    run_config: RunConfig,
    data: Path,
    run_dir: Path,
    state: dict[str, Any] | None,
    force: bool,
    cb: Callbacks,
    device: torch.device,
    dist_info: distributed.DistInfo,
    started: dict[str, Any],
) -> TrainResult:
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    main = dist_info.is_main
    if state is None:
        check_run_dir(run_dir, resume=False, force=force)
    cfg = run_config.train

    # The data and the configuration are checked before anything in run_dir is touched:
    # a typo in --data with --force must not cost the run that is there.
    try:
        run_config, info, plan = fit_to_data(run_config, data, resumed=state is not None)
    except DataError:
        stored_data = state.get("data", {}) if state is not None else {}
        if "windows_sha256" in stored_data:
            # Resumed on a file it was not trained on: say so, rather than that this file
            # lacks the run's test fold (which only the wrong file's folds answer).
            other = read_info(data)
            desc = {"n_windows": other.n_windows, "windows_sha256": windows_fingerprint(other)}
            kept = ("n_windows", "windows_sha256", "path")
            check_resume_data(data, desc, {k: stored_data[k] for k in kept if k in stored_data})
        raise
    if state is not None and run_config.model != RunConfig.from_stored(state["run_config"]).model:
        raise DataError(
            f"{data} has windows of {info.window_length} samples at {info.fs} Hz, but the run "
            "being resumed was trained on other windows"
        )
    check_global_batch(cfg.batch_size, dist_info.world_size, run_dir if state is not None else None)
    has_val = len(plan.val) > 0
    data_desc = {
        "path": str(data.resolve()),
        "fs": info.fs,
        "window_length": info.window_length,
        "n_windows": info.n_windows,
        "windows_sha256": windows_fingerprint(info),
        "split_sha256": split_fingerprint(info, plan),
        "content_sha256": content_fingerprint(data, info.n_windows),
        "source_format": info.source_format,
        "provenance": info.provenance,
        "split": plan.describe(),
    }
    if state is not None:
        check_resume_data(data, data_desc, state.get("data", {}))
        if "schedule_note" in started and main:  # only rank 0 talks
            cb.on_message(started.pop("schedule_note"))
    # Every process has passed the checks before the main one deletes anything.
    distributed.barrier(dist_info)
    if state is None and main and force and holds_run(run_dir):
        # Kept until the new run can be resumed (its first checkpoint): bad data met while
        # fitting the normalisation, divergence or Ctrl-C before then give it back.
        started["aside"] = set_aside(run_dir, (*RUN_ARTIFACTS, *run_reports(run_dir)))
    distributed.barrier(dist_info)

    # Kept in the checkpoint, for innpar eval to find copies of the training windows in any
    # file (renamed ids, a re-import): a run from before they were kept gets them on resume.
    # Rank 0 alone writes checkpoints, so the others do not read the training split for it.
    copies = state.get("training_copies") if state is not None else None
    if copies is None and main:
        copies = training_copy_keys(data, plan.train)
    if state is not None:
        norm = Normalisation.from_dict(state["normalisation"])
        baselines = state.get("baselines")
    else:
        norm = fit_normalisation(data, plan.train, cfg.abp_norm)
        baselines, flat = fit_baselines(data, plan.train, info.fs)
        said = flat.check(data)  # every rank: each refuses a file of flat windows
        for warning in said if main else []:  # only rank 0 talks
            cb.on_message(warning)
    if has_val:
        # Before the first epoch, and every rank the whole split: NaN met while validating
        # would come after a whole epoch of training (lazily read data) and read as a
        # diverged run; a rank checking only its share would stop alone, leaving the
        # others blocked in a collective (a gloo traceback).
        check_rows_finite(data, plan.val)

    model = build_model(run_config.model, seed=cfg.seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # With EMA, `averaged` holds the moving average used for validation and checkpoints.
    averaged = copy.deepcopy(model) if cfg.ema_decay > 0 else model
    start_epoch, best_mae, best_epoch, bad_epochs = 0, math.inf, 0, 0
    if state is not None:
        ts = state["training_state"]
        try:
            model.load_state_dict(ts.get("raw_model_state", state["model_state"]))
            averaged.load_state_dict(state["model_state"])
            optimizer.load_state_dict(state["optimizer_state"])
            best_mae = float(ts["best_val_mae"]) if ts["best_val_mae"] is not None else math.inf
            best_epoch, bad_epochs = int(ts["best_epoch"]), int(ts["bad_epochs"])
            torch.set_rng_state(ts["torch_rng"])
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # torch's first line names no key; the next say which weights differ.
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            detail = " ".join(lines[1:3] if len(lines) > 1 else lines)[:300]
            raise CheckpointError(
                f"{run_dir / 'checkpoints' / 'last.pt'} is damaged: its weights or training "
                f"state do not fit its own configuration ({detail or type(exc).__name__})"
            ) from None
        start_epoch = int(state["epoch"])

    step_module: nn.Module = TrainStep(model, cfg, norm)
    if dist_info.enabled:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile:
        step_module = torch.compile(step_module)

    train_set = WindowDataset(data, plan.train, norm)
    # Subject code of every window in the file, for the within-subject loss.
    subject_code = torch.from_numpy(np.unique(info.subjects, return_inverse=True)[1].ravel())
    per_rank_batch = cfg.batch_size // dist_info.world_size
    # The same sampler in one process and under DDP: rank r of W takes every W-th index of
    # one seeded permutation per epoch, so the union of the ranks' batch b is exactly the
    # single-process batch b.
    sampler: DistributedSampler | SubjectPairSampler
    if cfg.paired_sampling:
        sampler = SubjectPairSampler(
            subject_code[plan.train].numpy(),
            num_replicas=dist_info.world_size,
            rank=dist_info.rank,
            seed=cfg.seed,
            group_size=cfg.subject_group,
        )
    else:
        sampler = DistributedSampler(
            train_set,
            num_replicas=dist_info.world_size,
            rank=dist_info.rank,
            shuffle=True,
            seed=cfg.seed,
            drop_last=False,
        )
    pin = device.type == "cuda"
    preload = cfg.preload == "always" or (
        cfg.preload == "auto"
        and split_bytes(len(plan.train) + len(plan.val), info.window_length) < PRELOAD_LIMIT
    )
    val_share = validation_share(plan.val, info.subjects, dist_info)
    val_set = WindowDataset(data, val_share, norm) if len(val_share) else None
    val_batch = max(256, per_rank_batch)
    loader: Any
    if preload:
        loader = PreloadedLoader(train_set, per_rank_batch, device, sampler)
        val_loader = PreloadedLoader(val_set, val_batch, device) if val_set else None
    else:
        loader = DataLoader(
            train_set,
            batch_size=per_rank_batch,
            sampler=sampler,
            num_workers=cfg.num_workers,
            pin_memory=pin,
            persistent_workers=cfg.num_workers > 0,
        )
        val_loader = (
            DataLoader(val_set, batch_size=val_batch, shuffle=False, pin_memory=pin)
            if val_set
            else None
        )

    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = run_dir / "checkpoints"
    if main:
        # A process killed while writing leaves its temporary file (the rename never
        # happened, so the previous checkpoint is intact): clear them before continuing.
        for stale in [*run_dir.glob(".*.tmp"), *ckpt_dir.glob(".*.tmp")]:
            stale.unlink(missing_ok=True)
    metrics_path = run_dir / "metrics.jsonl"
    environment = {
        "package_version": __version__,
        "torch_version": torch.__version__,
        # FrEIA's AllInOneBlock clamps as clamp*tanh(a) in 0.2 and clamp*tanh(a/clamp) after:
        # its weights mean another function under another version (setup.cfg pins 0.2).
        "freia_version": freia_version(),
        "python": platform.python_version(),
        "device": str(device),
        "hardware": hardware_description(device),
        "world_size": dist_info.world_size,
    }
    history: list[dict[str, Any]] = []
    if main:
        if state is not None and (run_dir / "config.json").is_file():
            started["previous_config"] = (run_dir / "config.json").read_bytes()
        described = {
            **run_config.to_dict(),
            "data": data_desc,
            "normalisation": norm.to_dict(),
            "environment": environment,
        }
        if state is not None:
            described["resumed"] = resumes(started.get("previous_config"), state)
        write_json_atomic(run_dir / "config.json", described)
        started["config"] = state is None  # a resumed run's directory is never discarded
        if state is not None:
            history = read_history(metrics_path, start_epoch)
            text = "".join(json.dumps(r) + "\n" for r in history)
            write_bytes_atomic(metrics_path, text.encode())
        elif metrics_path.exists():
            metrics_path.unlink()
    if not main:
        cb = SilentCallbacks()  # only rank 0 talks
    cb.on_start(
        {
            "run_dir": str(run_dir),
            "device": str(device),
            "world_size": dist_info.world_size,
            "n_params": count_parameters(model),
            "split": plan.describe(),
            "resumed_at": start_epoch,
            "epochs": cfg.epochs,
            "has_val": has_val,
        }
    )
    if not has_val:
        cb.on_message("no validation windows: best.pt will be the last epoch")
        if cfg.early_stopping:
            # Asked for, but it has nothing to watch: the run trains every epoch. Said even
            # with --quiet, like every warning, since the run is not the one configured.
            cb.on_message(
                f"warning: early_stopping = {cfg.early_stopping} watches the validation "
                f"MAE, and this run has no validation windows: it is off, and the run "
                f"trains all {cfg.epochs} epochs"
            )
    # The samplers give every rank as many windows (pairs: groups): they repeat a few of
    # the epoch's windows at its end, more than one process does when the split does not
    # divide over the ranks. Weighting the repeats out would need every loss term to know
    # its global count; the user is told instead.
    unit = cfg.subject_group if cfg.paired_sampling else 1
    n_train = len(plan.train)
    spare = -n_train % (unit * dist_info.world_size) - (-n_train % unit)
    if cfg.batch_size > n_train:  # said after the header, as every note of the run
        cb.on_message(
            f"note: batch_size {cfg.batch_size} is more than the {n_train} training "
            f"windows: every step takes all {n_train} (full-batch training)"
            + (", and the repeats of the next note" if spare else "")
        )
    if spare:
        cb.on_message(
            f"note: {n_train} training windows do not divide over {dist_info.world_size} "
            f"processes: each epoch ends by repeating {spare} more of them than one process "
            "would, so the run differs slightly from a single process's"
        )
    if cfg.paired_sampling and dist_info.enabled and per_rank_batch % cfg.subject_group:
        # Each process's batches are made of whole groups: a share that splits a group
        # makes the processes' batches other windows than one process's.
        cb.on_message(
            f"note: each process's share of a batch ({per_rank_batch} windows) is not a "
            f"multiple of subject_group ({cfg.subject_group}), so the batches hold other "
            "windows than a single process's; make batch_size a multiple of "
            f"{cfg.subject_group * dist_info.world_size} for the same run"
        )
    if cfg.amp and not native_bf16(device):
        # The run is kept as configured (bf16 and float32 runs are not bitwise alike), but
        # a user should know what emulated bf16 costs before waiting hours for it.
        if device.type == "cuda":
            lacks, cost = "a GPU before Ampere", "slower than float32"
        else:
            lacks, cost = "no AVX512-BF16 or AMX", "5-7x slower than float32 on an AVX2 CPU"
        cb.on_message(
            f"warning: amp (bf16 autocast) on {device.type}, which has no native bf16 "
            f"({lacks}): PyTorch emulates it, {cost}; set amp = false in the configuration"
        )

    def payload(epoch: int, record: dict[str, Any], stopped_early: bool) -> dict[str, Any]:
        training_state: dict[str, Any] = {
            "best_val_mae": None if math.isinf(best_mae) else best_mae,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
            "torch_rng": torch.get_rng_state(),
            "stopped_early": stopped_early,
        }
        if averaged is not model:
            training_state["raw_model_state"] = model.state_dict()
        return {
            "run_config": run_config.to_dict(),
            "model_state": averaged.state_dict(),
            "normalisation": norm.to_dict(),
            "baselines": baselines,
            "data": data_desc,
            "training_copies": copies,
            "epoch": epoch,
            "metrics": record,
            "optimizer_state": optimizer.state_dict(),
            "training_state": training_state,
        }

    def diverged(what: str) -> TrainingDiverged:
        """The error that stops a run whose loss, weights or predictions stopped being
        numbers, naming the last good checkpoint (only good epochs write one)."""
        last = ckpt_dir / "last.pt"
        kept = (
            f"; the last good checkpoint is {last}"
            if last.exists()
            else "; no epoch had finished, so nothing was kept"
            + (" (the run that was there is put back)" if "aside" in started else "")
        )
        return TrainingDiverged(
            f"{what}: training stopped{kept}. Try a lower learning rate "
            f"({option('--lr', 'train.lr')}) or gradient "
            "clipping (grad_clip)."
        )

    stopped_early = False
    use_amp = cfg.amp
    step_module.train()
    epoch = start_epoch
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg, epoch)
        sampler.set_epoch(epoch)
        loss_sum = torch.zeros(3, dtype=torch.float64)
        steps = len(loader)
        for step, (ppg, abp, rows) in enumerate(loader):
            ppg = ppg.to(device, non_blocking=pin)
            abp = abp.to(device, non_blocking=pin)
            groups = subject_code[rows].to(device, non_blocking=pin)
            if cfg.ppg_noise > 0:
                ppg = ppg + ppg_noise(cfg, epoch, rows, ppg)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, inverse, pair = step_module(ppg, abp, groups)
            # Every rank sees the same global loss, so all stop together on NaN.
            global_loss = (
                distributed.all_reduce_sum(
                    torch.stack([loss.detach(), inverse.detach(), pair.detach()]).double(),
                    dist_info,
                ).cpu()
                / dist_info.world_size
            )
            if not torch.isfinite(global_loss).all():
                raise diverged(
                    f"loss became {float(global_loss[0])} at epoch {epoch + 1}, step {step + 1}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if averaged is not model:
                with torch.no_grad():
                    for p_avg, p in zip(averaged.parameters(), model.parameters(), strict=True):
                        p_avg.lerp_(p, 1.0 - cfg.ema_decay)
            loss_sum += global_loss
            if main:
                cb.on_batch(epoch + 1, step + 1, steps, float(global_loss[0]))
        train_time = time.perf_counter() - t0
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": float(loss_sum[0] / max(1, steps)),
        }
        if cfg.inverse_weight > 0:
            record["train_inverse_loss"] = float(loss_sum[1] / max(1, steps))
        if cfg.pair_weight > 0:
            record["train_pair_loss"] = float(loss_sum[2] / max(1, steps))
        # A finite loss can still leave weights that overflow (a step at a huge learning
        # rate): such an epoch is not checkpointed, and the run says it diverged. The
        # weights are alike on every rank, so all ranks stop together.
        if not all(bool(torch.isfinite(p).all()) for p in averaged.parameters()):
            raise diverged(f"the weights became NaN or infinite in epoch {epoch + 1}")
        stop = False
        broken = None
        if has_val:  # every rank validates its share; rank 0 gets the record
            scored = validate(averaged, val_loader, norm, cfg, info, device, dist_info)
            if scored is not None:
                record.update(scored)
                if not math.isfinite(record["val_mae"]):
                    broken = f"validation MAE became {record['val_mae']} after epoch {epoch + 1}"
        if main and broken is None:
            if has_val:
                improved = record["val_mae"] < best_mae
            else:
                improved = True
            if improved:
                best_mae = record.get("val_mae", math.inf)
                best_epoch, bad_epochs = epoch + 1, 0
            else:
                bad_epochs += 1
            record["best_epoch"] = best_epoch
            record["train_seconds"] = round(train_time, 3)
            record["windows_per_second"] = round(len(train_set) / train_time, 1)
            record["epoch_seconds"] = round(time.perf_counter() - t0, 3)
            # Crash-safe order: a kill before last.pt is written resumes from the previous
            # last.pt, drops the metrics lines after it and redoes the epoch (identically on
            # CPU); a kill after it leaves resuming to write the epoch's other checkpoints.
            try:
                with metrics_path.open("a") as fh:
                    # NaN (no calibrated validation window) is not JSON: strict readers
                    # want null.
                    fh.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
            except OSError as exc:
                # A full disk fails write() or close(), which name no file: "No space left
                # on device" alone did not say what could not be written.
                if exc.filename is not None or exc.errno is None:
                    raise
                raise DataError(
                    f"cannot write {metrics_path}: {os.strerror(exc.errno)}", errno=exc.errno
                ) from None
            # Decided before the checkpoint, which records it: resuming a run its early
            # stopping ended does not train it on.
            stop = bool(cfg.early_stopping and has_val and bad_epochs >= cfg.early_stopping)
            body = payload(epoch + 1, record, stop)
            # last.pt first: a kill before it redoes the epoch with no checkpoint of it
            # anywhere; a kill after it leaves the epoch's other checkpoints to resuming,
            # which writes them from last.pt (complete_epoch_checkpoints). With best.pt
            # first, a kill before last.pt left a best.pt of an attempt that the redone
            # epoch (not bit for bit the same on a GPU) need not have chosen.
            save_checkpoint(ckpt_dir / "last.pt", body)
            if epoch + 1 in cfg.keep_checkpoints:
                save_checkpoint(ckpt_dir / f"epoch-{epoch + 1:04d}.pt", body)
            if improved:
                save_checkpoint(ckpt_dir / "best.pt", body)
            started["checkpointed"] = True
            if "aside" in started:  # the new run can be resumed: the old one goes
                drop_aside(started.pop("aside"))
            history.append(record)
            cb.on_epoch(record)
        # Rank 0 alone holds the validation record: one broadcast tells the others whether
        # to stop, and whether the epoch broke down (then it was not checkpointed, and all
        # ranks raise).
        stop, broken = distributed.broadcast_object((stop, broken), dist_info)
        if broken is not None:
            raise diverged(str(broken))
        if stop:
            stopped_early = True
            if main:
                cb.on_message(
                    "early stopping: no better validation MAE for "
                    f"{counted(cfg.early_stopping, 'epoch')} "
                    f"(best {best_mae:.2f} mmHg at epoch {best_epoch})"
                )
            break
    distributed.barrier(dist_info)
    train_set.close()
    completed = epoch + 1 if cfg.epochs > start_epoch else start_epoch
    return TrainResult(
        run_dir=run_dir,
        last_checkpoint=ckpt_dir / "last.pt",
        best_checkpoint=ckpt_dir / "best.pt",
        epochs_completed=completed,
        best_epoch=best_epoch,
        best_val_mae=None if math.isinf(best_mae) else best_mae,
        stopped_early=stopped_early,
        history=history,
    )
