"""DistributedDataParallel through torchrun: 2 CPU processes (gloo) vs one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from innpar_freia.checkpoint import read_checkpoint
from innpar_freia.data.dataset import plan_splits
from innpar_freia.data.store import read_info

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)


@pytest.mark.parametrize("pair_weight", [0.0, 1.0])
def test_two_gloo_processes_match_one_process(
    synth_file: Path, tmp_path: Path, pair_weight: float
) -> None:
    n_train = len(plan_splits(read_info(synth_file)).train)
    # A global batch that divides the training split evenly over 2 ranks: then rank r's
    # batch b is exactly every other window of the single process's batch b.
    batch = next(b for b in range(16, 2, -2) if n_train % b == 0)
    # With the within-subject loss, pairs must be formed over the global batch, not within
    # each rank's half of it, for the two runs to agree.
    config = tmp_path / "recipe.toml"
    config.write_text(f'preset = "tiny"\n[train]\npair_weight = {pair_weight}\n')
    common = [
        "--data",
        str(synth_file),
        "--config",
        str(config),
        "--epochs",
        "2",
        "--batch-size",
        str(batch),
        "--device",
        "cpu",
        "--quiet",
        "--json",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tmp_path / "single"
    subprocess.run(
        [sys.executable, "-m", "innpar_freia", "train", *common, "--out", str(single)],
        check=True,
        env=env,
        capture_output=True,
    )
    ddp = tmp_path / "ddp"
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
            *common,
            "--out",
            str(ddp),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # one summary: only rank 0 prints it
    assert summary["epochs_completed"] == 2

    a = read_checkpoint(single / "checkpoints" / "last.pt")
    b = read_checkpoint(ddp / "checkpoints" / "last.pt")
    assert json.loads((ddp / "config.json").read_text())["environment"]["world_size"] == 2
    worst = max(
        float((a["model_state"][k] - b["model_state"][k]).abs().max()) for k in a["model_state"]
    )
    assert worst < 1e-4, f"DDP weights differ from single-process weights by {worst}"
    ma = [json.loads(x) for x in (single / "metrics.jsonl").read_text().splitlines()]
    mb = [json.loads(x) for x in (ddp / "metrics.jsonl").read_text().splitlines()]
    assert len(mb) == 2  # rank 0 alone writes the log
    for ra, rb in zip(ma, mb, strict=True):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-4)
        assert rb["val_mae"] == pytest.approx(ra["val_mae"], rel=1e-3)
        if pair_weight:
            assert ra["train_pair_loss"] > 0  # the batches did hold same-subject pairs
            assert rb["train_pair_loss"] == pytest.approx(ra["train_pair_loss"], rel=1e-4)
