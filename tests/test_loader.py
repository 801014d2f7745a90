"""WindowDataset at scale: several DataLoader workers, several DDP ranks, bounded chunks."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from innpar_freia.data.dataset import WindowDataset, fit_normalisation, plan_splits
from innpar_freia.data.store import read_info


def _dataset(path: Path) -> WindowDataset:
    plan = plan_splits(read_info(path), test_fold=0)
    return WindowDataset(path, plan.train, fit_normalisation(path, plan.train, "minmax"))


def _collect(loader: DataLoader) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    out = {}
    for ppg, abp, idx in loader:
        assert ppg.shape == abp.shape and ppg.dtype == torch.float32
        for p, a, i in zip(ppg, abp, idx.tolist(), strict=True):
            out[i] = (p, a)
    return out


def test_two_workers_read_every_window_once(synth_file: Path) -> None:
    ds = _dataset(synth_file)
    # Touch the file in the parent first: forked workers must open their own handle.
    reference = ds[0]
    assert ds._fh is not None
    single = _collect(DataLoader(ds, batch_size=16, num_workers=0))
    loader = DataLoader(ds, batch_size=16, num_workers=2, shuffle=True, persistent_workers=False)
    items = _collect(loader)
    assert sorted(items) == sorted(single) == sorted(ds.indices.tolist())
    for i, (p, a) in items.items():
        assert torch.equal(p, single[i][0]) and torch.equal(a, single[i][1])
    assert torch.equal(single[int(reference[2])][0], reference[0])
    ds.close()


def test_two_ddp_ranks_partition_the_windows(synth_file: Path) -> None:
    ds = _dataset(synth_file)
    per_rank = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=7)
        sampler.set_epoch(3)
        workers = 2 if rank == 1 else 0  # a rank with workers, a rank without
        loader = DataLoader(ds, batch_size=8, sampler=sampler, num_workers=workers)
        per_rank.append(_collect(loader))
    a, b = (set(r) for r in per_rank)
    everything = set(ds.indices.tolist())
    assert a | b == everything
    # DistributedSampler pads the shorter rank with repeats to equal lengths, nothing more.
    assert len(a & b) <= len(everything) % 2
    assert abs(len(a) - len(b)) <= 1
    # Same seed and epoch on both ranks: they take alternate items of one permutation.
    s0, s1 = (list(DistributedSampler(ds, num_replicas=2, rank=r, seed=7)) for r in (0, 1))
    merged = [i for pair in zip(s0, s1, strict=True) for i in pair]
    assert sorted(merged[: len(ds)]) == list(range(len(ds)))


def test_file_is_chunked_for_bounded_memory(synth_file: Path) -> None:
    with h5py.File(synth_file, "r") as fh:
        for name in ("ppg", "abp"):
            chunks = fh[name].chunks
            assert chunks is not None and chunks[0] <= 64 and chunks[1] == fh[name].shape[1]
            assert fh[name].compression == "gzip"
    ds = _dataset(synth_file)
    # A batch read touches only the rows it asks for.
    rows = ds.indices[[5, 1, 5]]
    ppg, _, idx = ds._batch(np.array([5, 1, 5]))
    assert idx.tolist() == rows.tolist() and torch.equal(ppg[0], ppg[2])


def test_loader_benchmark_runs(synth_file: Path, capsys) -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "experiments" / "loader_benchmark.py"
    spec = importlib.util.spec_from_file_location("loader_benchmark", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--data", str(synth_file), "--preset", "tiny", "--batch-size", "16"]
    result = module.main([*args, "--batches", "3", "--steps", "1", "--workers", "0", "1"])
    assert [r["workers"] for r in result["loader"]] == [0, 1]
    assert all(r["windows_per_second"] > 0 and r["windows"] == 48 for r in result["loader"])
    assert result["train_step"]["preset"] == "tiny"
    assert result["train_step"]["windows_per_second"] > 0
    out = capsys.readouterr().out
    assert "loader, 1 worker(s), batch 16" in out and "train step, tiny, cpu" in out


def test_loader_benchmark_times_the_default_recipe(synth_file: Path) -> None:
    """innpar-plus-pair3, train's default, needs each window's subject for its
    within-subject loss: the benchmark crashed on it."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "experiments" / "loader_benchmark.py"
    spec = importlib.util.spec_from_file_location("loader_benchmark", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--data", str(synth_file), "--preset", "innpar-plus-pair3", "--batch-size", "16"]
    result = module.main([*args, "--batches", "1", "--steps", "1", "--workers", "0"])
    assert result["train_step"]["preset"] == "innpar-plus-pair3"
    assert result["train_step"]["windows_per_second"] > 0
