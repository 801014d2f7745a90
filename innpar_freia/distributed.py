"""PyTorch distributed (DDP) helpers for runs launched by ``torchrun``."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch
import torch.distributed as dist

# Whether this process has joined a process group (see ``joined_a_group``).
_JOINED: list[bool] = []


def joined_a_group() -> bool:
    """Whether this process joined a process group. Once a DistributedDataParallel wrapper
    has been built on a group, the group outlives ``destroy_process_group``: measured with
    torch 2.13 and gloo, its two worker threads and its TCP loop are still running at exit
    (a group used only for collectives stops them). At interpreter shutdown those threads
    race the teardown and can abort the process (SIGABRT, "terminate called without an
    active exception"; seen after finished 2-process CPU runs in 2 of 8 runs of the test
    suite), and torchrun then reports a finished run as failed. The command line therefore ends such
    a process with ``os._exit`` once its output is flushed (``innpar_freia.cli.main``)."""
    return bool(_JOINED)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_type: str) -> DistInfo:
    """Join the process group ``torchrun`` describes in the environment (NCCL on GPUs, gloo
    on CPU); a plain single-process run gets ``DistInfo()``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    created = False
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
        _JOINED.append(True)
        created = True
    return DistInfo(rank=rank, world_size=world, local_rank=local, initialised_here=created)


def teardown(info: DistInfo) -> None:
    if info.initialised_here and dist.is_initialized():
        # The group's threads may outlive this call: see joined_a_group.
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks (a no-op for one process)."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


class _GatherRows(torch.autograd.Function):
    """All ranks' rows concatenated in rank order; the gradient flows back to each rank's
    own rows. Every rank computes the same loss from the gathered rows, so the backward pass
    sums the gradient over ranks before taking this rank's slice: after DDP averages the
    parameter gradients, they equal those of one process that saw the whole batch."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        # all_reduce rather than reduce_scatter: gloo has no reduce_scatter.
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """The global batch from every rank's share (dim 0, rank order), differentiable; the
    tensor itself in a single process. Every rank must call it with the same shape."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherRows.apply(x)


def broadcast_object(obj: object, info: DistInfo) -> object:
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_object(obj: object, info: DistInfo) -> list[object] | None:
    """Every rank's ``obj`` in rank order on rank 0, ``None`` on the others (``[obj]`` in a
    single process)."""
    if not info.enabled:
        return [obj]
    box: list[object] | None = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, box, dst=0)
    return box


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` has bf16 instructions: a CUDA GPU that supports bf16, or a CPU
    with AVX512-BF16 or AMX. Elsewhere PyTorch converts or emulates bf16, and autocast makes
    training several times slower than float32 (measured: 5-7x on an AVX2-only Zen 3 EPYC)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)  # Ampere and later
    if device.type != "cpu":
        return False
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def hardware_description(device: torch.device | str = "cpu") -> str:
    """A one-line description of the hardware a number was measured on: for a CPU, its
    vector extensions and whether bf16 is native (two CPUs with one model name, e.g. "AMD
    EPYC", can differ 5x in bf16 throughput)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    bf16 = "native bf16" if native_bf16(device) else "bf16 emulated"
    return (
        f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"{torch.backends.cpu.get_cpu_capability()}, {bf16}"
    )
