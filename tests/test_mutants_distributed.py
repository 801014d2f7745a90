"""Tests that pin what a mutation audit of the torchrun helpers (innpar_freia.distributed:
joining the process group, the collectives, barriers, native bf16 and the hardware line)
and of ``innpar demo`` (innpar_freia.demo: its recipe, what it evaluates and reports, and
which folders it writes into or replaces) found unguarded: each one fails when the bug
named in its docstring is put into the package."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch

import innpar_freia.demo as demo
from innpar_freia import distributed
from innpar_freia.config import TRAIN_DEFAULT_PRESET, resolve_config
from innpar_freia.data.synthetic import synthesize_dataset
from innpar_freia.distributed import DistInfo
from innpar_freia.errors import RunDirError
from innpar_freia.train import TrainResult

# --------------------------------------------------------------------------------------
# Joining the process group
# --------------------------------------------------------------------------------------


def test_a_gpu_process_joins_nccl_on_its_local_gpu(
    no_group, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under torchrun on GPUs each process selects the GPU of its local rank before it
    joins an NCCL group (the object collectives and barriers run on the current GPU).
    Guards against gloo on GPUs, the GPU not being selected (every rank on GPU 0), and
    the GPU picked by the global rank (RANK 3 is GPU 1 on the second node of two)."""
    selected: list[int] = []
    monkeypatch.setattr(torch.cuda, "set_device", selected.append)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = distributed.setup("cuda")
    assert info == DistInfo(rank=3, world_size=4, local_rank=1, initialised_here=True)
    assert no_group == [("init", "nccl")] and selected == [1]


def _collectives_on_rank(rank: int, world: int, store: str, out: str) -> None:
    """One process of :func:`test_the_collectives_of_two_processes`: what each helper gives
    this rank, written to ``out/rank<r>.json``."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        info = DistInfo(rank=rank, world_size=world)
        seen: dict[str, object] = {}
        marker = Path(out) / "rank0-was-here"
        if rank == 0:  # rank 0 is late: the others must wait for it at the barrier
            time.sleep(1.0)
            marker.write_text("")
        distributed.barrier(info)
        seen["rank_0_done_at_the_barrier"] = marker.exists()
        seen["broadcast"] = distributed.broadcast_object(f"from rank {rank}", info)
        seen["gathered"] = distributed.gather_object(10 * rank, info)
        seen["sum"] = distributed.all_reduce_sum(torch.tensor([rank + 1.0]), info).tolist()
        mine = torch.tensor([rank + 1.0, rank + 5.0], requires_grad=True)
        rows = distributed.gather_rows(mine)
        # The same loss on every rank, from the global batch.
        (rows * torch.arange(1.0, 2 * world + 1)).sum().backward()
        seen["rows"] = rows.detach().tolist()
        seen["grad"] = mine.grad.tolist()
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(seen))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)
def test_the_collectives_of_two_processes(tmp_path: Path) -> None:
    """Two gloo processes: a barrier waits for every rank; broadcast_object gives rank 0's
    object to all (rank 0 alone decides early stopping and a broken validation); gather
    collects in rank order on rank 0; the sum is over ranks; gather_rows concatenates in
    rank order and sends back each rank's rows the gradient summed over ranks. Guards
    against a barrier that does not wait (rank 0 setting a run aside while the others go
    on), the broadcast taking another rank's object (the other ranks never stopped early
    with rank 0), and the gradient of the global batch not being summed over ranks or
    sliced at another rank's rows."""
    world = 2
    torch.multiprocessing.spawn(
        _collectives_on_rank, args=(world, str(tmp_path / "store"), str(tmp_path)), nprocs=world
    )
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]
    assert [s["rank_0_done_at_the_barrier"] for s in seen] == [True, True]
    assert [s["broadcast"] for s in seen] == ["from rank 0", "from rank 0"]
    assert [s["gathered"] for s in seen] == [[0, 10], None]
    assert [s["sum"] for s in seen] == [[3.0], [3.0]]
    assert [s["rows"] for s in seen] == [[1.0, 5.0, 2.0, 6.0]] * 2
    # d(loss)/d(row i) is i + 1 on each of the 2 ranks: summed, 2 (i + 1).
    assert [s["grad"] for s in seen] == [[2.0, 4.0], [6.0, 8.0]]


# --------------------------------------------------------------------------------------
# Native bf16 and the hardware line
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "native"),
    [(True, False, True), (False, True, True), (False, False, False)],
)
def test_a_cpu_with_either_bf16_extension_runs_bf16_natively(
    monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, native: bool
) -> None:
    """AVX512-BF16 (Zen 4, Cooper Lake) or AMX is enough for native bf16; a torch that
    cannot tell (no such check: torch>=2.1 is supported) counts as emulated. Guards against
    asking for both extensions (a Zen 4 CPU warned about emulated bf16 and its results
    said "bf16 emulated"), and against a missing check counting as native."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert distributed.native_bf16("cpu") is native
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert distributed.native_bf16("cpu") is False


def test_a_gpu_that_emulates_bf16_has_no_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU before Ampere runs bf16 only emulated (torch's is_bf16_supported says True
    for it by default). Guards against counting emulation as native, which dropped the
    warning that amp is slower than float32 there."""

    def pre_ampere(including_emulation: bool = True) -> bool:
        return including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", pre_ampere)
    assert distributed.native_bf16("cuda") is False
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert distributed.native_bf16("cuda") is True


CPUINFO = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
    "model name\t: AMD EPYC 7B13 64-Core Processor\nflags\t\t: fpu avx2\n"
)


def test_the_hardware_line_names_the_cpu_its_cores_and_torch_s_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hardware a result was measured on: the CPU's model name as Linux gives it, the
    machine's cores, torch's threads; without /proc/cpuinfo (macOS) the platform's name.
    Guards against the model name being the field's label ("model name"), the cores being
    torch's threads, and a missing /proc/cpuinfo stopping the run."""

    def cpuinfo(path: str) -> io.StringIO:
        assert path == "/proc/cpuinfo"
        return io.StringIO(CPUINFO)

    monkeypatch.setattr(distributed, "open", cpuinfo, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    monkeypatch.setattr(distributed, "native_bf16", lambda device: False)
    capability = torch.backends.cpu.get_cpu_capability()
    assert distributed.hardware_description("cpu") == (
        f"AMD EPYC 7B13 64-Core Processor, 64 cores, 8 torch threads, {capability}, bf16 emulated"
    )

    def no_cpuinfo(path: str) -> io.StringIO:
        raise FileNotFoundError(path)

    monkeypatch.setattr(distributed, "open", no_cpuinfo)
    monkeypatch.setattr(distributed.platform, "processor", lambda: "")
    monkeypatch.setattr(distributed.platform, "machine", lambda: "arm64")
    assert distributed.hardware_description("cpu").startswith("arm64, 64 cores, 8 torch threads")


def test_the_hardware_line_of_a_gpu_gives_its_cuda_version(monkeypatch: pytest.MonkeyPatch):
    """A GPU's line: its name and the CUDA version torch was built with. Guards against
    dropping the CUDA version (one GPU differs in speed between CUDA releases)."""
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100")
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    assert distributed.hardware_description("cuda") == "NVIDIA H100 (CUDA 12.4)"


# --------------------------------------------------------------------------------------
# innpar demo
# --------------------------------------------------------------------------------------

METRICS = {
    "calibration_free": {
        "n_windows": 12,
        "waveform": {"mae": 9.5},
        "sbp": {"mae": 11.0},
        "dbp": {"mae": 6.0},
        "map": {"mae": 7.0},
    },
    "baselines": {"naive": {"n_windows": 12, "waveform": {"mae": 15.25}}},
}


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """``run_demo`` with training, evaluation and the figure replaced by stand-ins that
    record what they are asked (the synthetic data is made for real: under a second).
    Training writes ``run/checkpoints/{best,last}.pt``, numbered by the call. The tests of
    refusals use it too: a folder wrongly accepted then fails in a second, not after a
    real 30-epoch demo."""
    asked = SimpleNamespace(train=[], evaluate=[], plot=[], messages=[])

    def train(cfg, data, run_dir, callbacks=None):
        asked.train.append((cfg, data, run_dir))
        (run_dir / "checkpoints").mkdir(parents=True)
        for name in ("best.pt", "last.pt"):
            (run_dir / "checkpoints" / name).write_text(f"{name} of call {len(asked.train)}")
        ckpt = run_dir / "checkpoints"
        return TrainResult(run_dir, ckpt / "last.pt", ckpt / "best.pt", 7, 4, 9.0, False)

    def evaluate(checkpoint, data, split):
        asked.evaluate.append((checkpoint, data, split))
        preds = SimpleNamespace(
            abp=np.zeros((2, 5)),
            abp_pred=np.ones((2, 5)),
            subjects=np.array(["s01", "s07"]),
            window_ids=np.array([3, 8]),
        )
        return METRICS, preds

    def plot(abp, abp_pred, fs, path, titles, max_windows=None, title=None):
        asked.plot.append((fs, titles))
        path.write_bytes(b"png")
        return path

    monkeypatch.setattr(demo, "train", train)
    monkeypatch.setattr(demo, "evaluate", evaluate)
    monkeypatch.setattr(demo, "plot_reconstructions", plot)
    asked.callbacks = SimpleNamespace(on_message=asked.messages.append)
    return asked


def test_the_demo_trains_the_default_recipe_30_epochs_of_batch_32_on_the_cpu(
    stand_ins: SimpleNamespace, tmp_path: Path
) -> None:
    """What the README and --help promise: the default recipe (the paper's network), 30
    epochs, batch 32, on the CPU, on the synthetic data it made; --epochs changes only the
    epochs; the opening line says where the demo goes. Guards against another preset,
    another number of epochs or batch size, a GPU when there is one ("auto"), and the
    opening line losing the folder."""
    out = tmp_path / "demo"
    demo.run_demo(out, callbacks=stand_ins.callbacks)
    cfg, data, run_dir = stand_ins.train[0]
    recipe = {"epochs": 30, "batch_size": 32, "device": "cpu"}
    assert cfg == resolve_config(TRAIN_DEFAULT_PRESET, train=recipe)
    assert (data, run_dir) == (out / "data.h5", out / "run")
    assert stand_ins.messages[0].endswith(f"CPU; in {out}/")
    other = tmp_path / "other"
    demo.run_demo(other, epochs=5)
    assert stand_ins.train[1][0] == resolve_config(
        TRAIN_DEFAULT_PRESET, train={**recipe, "epochs": 5}
    )


def test_the_demo_reports_the_best_checkpoint_on_the_test_split(
    stand_ins: SimpleNamespace, tmp_path: Path
) -> None:
    """The printed numbers are the best checkpoint's on the test split (unseen subjects),
    each under its own name, beside the naive baseline; the figure's panels are titled
    "subject (window)". Guards against scoring the validation split or the last epoch,
    swapping the summary's numbers (SBP for DBP, the model's for the baseline's, the
    epochs run for the best epoch), and titles with subject and window swapped."""
    out = tmp_path / "demo"
    result = demo.run_demo(out)
    assert stand_ins.evaluate == [(out / "run/checkpoints/best.pt", out / "data.h5", "test")]
    assert result.summary == {
        "epochs": 7,
        "best_epoch": 4,
        "test_windows": 12,
        "wave_mae": 9.5,
        "naive_wave_mae": 15.25,
        "sbp_mae": 11.0,
        "dbp_mae": 6.0,
        "map_mae": 7.0,
    }
    assert json.loads(result.metrics.read_text()) == METRICS
    assert result.checkpoint == out / "run/checkpoints/best.pt"
    assert stand_ins.plot == [(125.0, ["s01 (3)", "s07 (8)"])]


def test_a_demo_replaced_with_force_leaves_the_new_demo_alone(
    stand_ins: SimpleNamespace, tmp_path: Path
) -> None:
    """--force over an earlier demo: once the new demo is made, the old one is gone, not
    left hidden in the folder. Guards against keeping what was set aside (the next `innpar
    demo` found it abandoned and put the old demo back over the new one)."""
    out = tmp_path / "demo"
    demo.run_demo(out)
    demo.run_demo(out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["data.h5", "eval", "run"]
    assert (out / "run/checkpoints/best.pt").read_text() == "best.pt of call 2"
    demo.run_demo(out, force=True)  # and the folder is a demo again, with nothing aside
    assert sorted(p.name for p in out.iterdir()) == ["data.h5", "eval", "run"]


def test_force_replaces_what_is_left_of_a_demo_without_its_data(
    stand_ins: SimpleNamespace, tmp_path: Path
) -> None:
    """A demo folder whose data.h5 is gone (deleted to save space) holds what is left of a
    demo: --force replaces it. Guards against refusing it with "its data.h5 is not the
    synthetic demo data", about a file that is not there."""
    out = tmp_path / "demo"
    demo.run_demo(out)
    (out / "data.h5").unlink()
    demo.run_demo(out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["data.h5", "eval", "run"]
    assert (out / "run/checkpoints/best.pt").read_text() == "best.pt of call 2"


def test_the_demo_goes_into_an_empty_folder_or_new_nested_folders(
    stand_ins: SimpleNamespace, tmp_path: Path
) -> None:
    """`innpar demo --out DIR` takes an empty DIR without --force, and creates DIR with the
    folders above it. Guards against an empty folder being refused as "not empty" and
    against --out a/b/c failing when a/b does not exist."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert demo.run_demo(empty).data == empty / "data.h5"
    nested = tmp_path / "a" / "b" / "demo"
    assert demo.run_demo(nested).data.is_file()


def _not_the_demo_s(path: Path) -> None:
    """A window file that is not synthetic: the demo's data with another source."""
    synthesize_dataset(path, subjects=3, minutes=0.5)
    with h5py.File(path, "r+") as fh:
        fh.attrs["source_format"] = "csv"


@pytest.mark.parametrize("data", ["not HDF5", "another window file"])
def test_force_refuses_a_folder_whose_data_h5_is_not_the_demo_s(
    stand_ins: SimpleNamespace, tmp_path: Path, data: str
) -> None:
    """A folder holding only a data.h5 that the demo did not make (a file of one's own
    data named data.h5, or not a window file at all) is not a demo: --force refuses it and
    says why, and the file stays. Guards against replacing any data.h5 (the user's data
    was moved aside and deleted) or one that cannot be read, and against the message
    losing the reason."""
    out = tmp_path / "demo"
    out.mkdir()
    if data == "not HDF5":
        (out / "data.h5").write_text("mine")
    else:
        _not_the_demo_s(out / "data.h5")
    before = (out / "data.h5").read_bytes()
    with pytest.raises(RunDirError, match=r"its data\.h5 is not the synthetic demo data"):
        demo.run_demo(out, force=True)
    assert [p.name for p in out.iterdir()] == ["data.h5"]
    assert (out / "data.h5").read_bytes() == before


def test_force_names_the_entries_that_are_not_the_demo_s(
    stand_ins: SimpleNamespace, tmp_path: Path
) -> None:
    """The refusal lists what else the folder holds (up to 3 names). Guards against
    naming only the first of them."""
    out = tmp_path / "demo"
    out.mkdir()
    for name in ("notes.txt", "results.csv", "data.h5"):
        (out / name).write_text("mine")
    with pytest.raises(RunDirError, match=r"holds more than a demo \(notes\.txt, results\.csv\)"):
        demo.run_demo(out, force=True)


def test_the_temporary_data_file_of_a_demo_still_running_is_left_alone(
    stand_ins: SimpleNamespace, tmp_path: Path
) -> None:
    """Two demos into one folder: the second finds the first's temporary data file, owned
    by a live process, and refuses the folder, leaving the file to its writer. Guards
    against removing it as if its demo had been killed (the running demo then failed
    writing its data)."""
    out = tmp_path / "demo"
    out.mkdir()
    writing = out / f".data.h5.{os.getpid()}.tmp"
    writing.write_bytes(b"half")
    with pytest.raises(RunDirError, match="is not empty"):
        demo.run_demo(out)
    assert writing.read_bytes() == b"half"
