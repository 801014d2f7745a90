"""Is the data loader ever the bottleneck? Loader throughput against training throughput.

Measures, on one window file (a synthetic one by default):

* loader throughput: windows/s delivered by ``DataLoader(WindowDataset)`` over the training
  split, shuffled like training, with 0, 1 and 2 worker processes (HDF5 read, gzip
  decompression, per-window z-score and ABP normalisation, collation);
* training throughput: windows/s of full training steps (forward, L1 loss, backward, Adam)
  of a preset's network (``paper`` by default) on the same batch size and device.

The loader keeps up when its windows/s exceeds the training step's. Examples::

    python experiments/loader_benchmark.py
    python experiments/loader_benchmark.py --data experiments/data/challenge2015.h5 \
        --device cuda --json

The real windows are made once by importing them (or by any experiments/run.py config on
the challenge data, which imports them on first use)::

    innpar data import bp-benchmark ../shared/data/challenge2015/bp_benchmark \
        --out experiments/data/challenge2015.h5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

# This checkout's package, not an installed one (another checkout's, or none).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from innpar_freia.config import MAX_WORKERS, ModelConfig, TrainConfig, preset_names
from innpar_freia.data.dataset import WindowDataset, fit_normalisation, plan_splits
from innpar_freia.data.store import read_info
from innpar_freia.data.synthetic import synthesize_dataset
from innpar_freia.distributed import hardware_description
from innpar_freia.errors import DataError
from innpar_freia.experiments import script_main
from innpar_freia.nn.model import build_model, count_parameters
from innpar_freia.train import TrainStep, resolve_device


def loader_throughput(
    ds: WindowDataset, batch_size: int, workers: int, batches: int, pin: bool
) -> dict[str, Any]:
    """Windows/s over ``batches`` batches after the first (worker start-up timed apart)."""
    loader = DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=workers, pin_memory=pin, drop_last=True
    )
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter() - t0
    n, t1 = 0, time.perf_counter()
    for _ in range(batches):
        try:
            ppg, _, _ = next(it)
        except StopIteration:  # a small file: start another epoch
            it = iter(loader)
            ppg, _, _ = next(it)
        n += ppg.shape[0]
    seconds = time.perf_counter() - t1
    del it
    return {
        "workers": workers,
        "windows": n,
        "seconds": round(seconds, 4),
        "windows_per_second": round(n / seconds, 1),
        "first_batch_seconds": round(first, 3),
    }


def train_throughput(
    ds: WindowDataset, preset: str, batch_size: int, steps: int, device: torch.device
) -> dict[str, Any]:
    """Windows/s of full training steps of ``preset`` on one fixed batch."""
    info = read_info(ds.path)
    model_cfg = ModelConfig.from_preset(preset).replace(
        fs=info.fs, window_length=info.window_length
    )
    cfg = TrainConfig.from_preset(preset)
    model = build_model(model_cfg, seed=0).to(device)
    step = TrainStep(model, cfg, ds.norm)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ppg, abp, rows = next(iter(DataLoader(ds, batch_size=batch_size, shuffle=False)))
    ppg, abp = ppg.to(device), abp.to(device)
    # The subject of every window, as training passes it: the within-subject loss of the
    # default recipe (innpar-plus-pair3) pairs windows of one subject.
    subject_code = np.unique(info.subjects, return_inverse=True)[1].ravel()
    groups = torch.from_numpy(subject_code[rows.numpy()]).to(device)

    def one() -> None:
        opt.zero_grad(set_to_none=True)
        loss, _, _ = step(ppg, abp, groups)
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up: allocator, kernels
        one()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    return {
        "preset": preset,
        "parameters": count_parameters(model),
        "device": str(device),
        "steps": steps,
        "batch_size": ppg.shape[0],
        "seconds": round(seconds, 4),
        "windows_per_second": round(steps * ppg.shape[0] / seconds, 1),
    }


def _at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value

    return parse


def _workers(text: str) -> int:
    """DataLoader workers, 0 to what training takes (``num_workers``): unbounded, a slip
    such as ``--workers 20000`` would start processes until the machine ran out of them."""
    value = _at_least(0)(text)
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{value} is above {MAX_WORKERS}, the most DataLoader workers training takes"
        )
    return value


def _cores() -> int:
    """The CPU cores this process may run on (its affinity, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _threads(text: str) -> int:
    """torch threads, 0 to the cores this process may use: more threads than cores only
    take turns (--threads 1000 on 2 cores ran for minutes), and a hundred thousand failed
    to allocate their buffers, which the HDF5 reader reported as a corrupt file."""
    value = _at_least(0)(text)
    if value > _cores():
        raise argparse.ArgumentTypeError(
            f"{value} is above the {_cores()} CPU cores this process may use (the most "
            "threads that can run at once)"
        )
    return value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="window file (default: a synthetic one)")
    parser.add_argument("--preset", default="paper", choices=preset_names())
    parser.add_argument("--batch-size", type=_at_least(1), default=128)
    parser.add_argument("--batches", type=_at_least(1), default=30, help="loader batches timed")
    parser.add_argument("--steps", type=_at_least(1), default=5, help="training steps timed")
    parser.add_argument("--workers", type=_workers, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--threads",
        type=_threads,
        default=0,
        help="torch threads, at most the CPU cores this process may use (0: default)",
    )
    parser.add_argument(
        "--test-fold",
        type=_at_least(0),
        default=None,
        help="time the training split of this test fold (default: the file's split "
        "column, as innpar train without --test-fold)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = synthesize_dataset(Path(tmp) / "bench.h5", subjects=20, minutes=5, seed=0)
        try:
            info = read_info(data)
            plan = plan_splits(info, test_fold=args.test_fold)  # as innpar train chooses
            if len(plan.train) < args.batch_size:
                raise DataError(
                    f"{data}: the training split has {len(plan.train)} windows, fewer than "
                    f"one batch of {args.batch_size}; give a smaller --batch-size"
                )
        except DataError as exc:
            if args.data is not None:
                raise
            # The user gave no file: the temporary one is deleted when this ends.
            raise DataError(str(exc).replace(str(data), "the synthetic data")) from None
        ds = WindowDataset(data, plan.train, fit_normalisation(data, plan.train, "minmax"))
        loaders = [
            loader_throughput(ds, args.batch_size, w, args.batches, device.type == "cuda")
            for w in args.workers
        ]
        ds.close()
        training = train_throughput(ds, args.preset, args.batch_size, args.steps, device)
    result = {
        "data": str(args.data or "synthetic (20 subjects x 5 min, 125 Hz)"),
        "train_windows": len(plan.train),
        "window_length": info.window_length,
        "hardware": hardware_description(device),
        "torch_threads": torch.get_num_threads(),
        "loader": loaders,
        "train_step": training,
        "loader_over_training": {
            str(r["workers"]): round(r["windows_per_second"] / training["windows_per_second"], 2)
            for r in loaders
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['data']}: {result['train_windows']} training windows of "
            f"{info.window_length} samples; {result['hardware']}"
        )
        print(f"{'what':<42}{'windows/s':>12}{'x training':>12}")
        for r in loaders:
            what = f"loader, {r['workers']} worker(s), batch {args.batch_size}"
            ratio = result["loader_over_training"][str(r["workers"])]
            print(f"{what:<42}{r['windows_per_second']:>12.0f}{ratio:>12.1f}")
        what = f"train step, {args.preset}, {training['device']}, batch {training['batch_size']}"
        print(f"{what:<42}{training['windows_per_second']:>12.0f}{1.0:>12.1f}")
    return result


def _cli(argv: list[str] | None = None) -> int:
    main(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(script_main(_cli))
