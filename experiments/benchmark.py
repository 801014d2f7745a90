"""Throughput, latency and peak memory of INN-PAR training and inference.

    python experiments/benchmark.py --device cpu
    python experiments/benchmark.py --device cuda --json > bench.json
    python experiments/benchmark.py --device cuda --out bench.json   # rewritten after each row
    python experiments/benchmark.py --device cpu --batch-sizes 1,32,128 --modes fp32,bf16 --release

For each precision mode and batch size: training throughput (windows/s of full steps:
forward, L1 loss on the real samples, backward, Adam), inference throughput (PPG -> ABP,
no grad), latency of one batch (median, ms) and peak memory (CUDA: the allocator's peak;
CPU: the peak RSS of a fresh process per measurement). ``--release`` adds the plain-PyTorch
transcription of the original release for comparison on the same machine.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from innpar_freia.cli.common import FloatRange

DEFAULT_BATCHES = "1,8,32,128,512,1024,4096"
# The largest batch measured, the top of the README's Speed table: one training step of
# batch 4096 already peaks at about 11 GB in float32 on the CPU (2.7 MB a window), so a
# larger one fails, after the smaller sizes were measured, with "can't allocate" (or,
# far larger, with the last line of a C++ stack dump).
MAX_BATCH = 4096


def _timed(fn, min_reps: int, min_seconds: float) -> list[float]:
    for _ in range(2):  # warm-up (allocator, oneDNN primitive cache, cuDNN autotune)
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) >= 200:
            break
    return times


def measure(
    model_kind: str, mode: str, batch: int, device: str, compile_: bool, min_seconds: float
) -> dict:
    import torch

    from innpar_freia.config import ModelConfig, TrainConfig
    from innpar_freia.nn.model import build_model
    from innpar_freia.nn.reference import ReleaseINNPAR
    from innpar_freia.train import TrainStep

    dev = torch.device(device)
    cfg = ModelConfig.from_preset("paper")
    model = build_model(cfg, seed=0).to(dev)
    if model_kind == "release":
        torch.manual_seed(0)
        release = ReleaseINNPAR().to(dev)

        class Wrapped(torch.nn.Module):  # the release's network behind the port's interface
            def __init__(self):
                super().__init__()
                self.net = release
                self.make_input = model.make_input

            def forward(self, x, rev=False, jac=True):
                return self.net(x)

        model = Wrapped()
    step_module = TrainStep(model, TrainConfig())
    if compile_:
        step_module = torch.compile(step_module)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    amp = mode == "bf16"
    gen = torch.Generator(device="cpu").manual_seed(0)
    ppg = torch.randn(batch, cfg.window_length, generator=gen).to(dev)
    abp = torch.randn(batch, cfg.window_length, generator=gen).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def train_step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            loss, _, _ = step_module(ppg, abp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()

    x = model.make_input(ppg)
    infer_fn = torch.compile(model.forward) if compile_ else model.forward

    @torch.no_grad()
    def infer():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            infer_fn(x)
        sync()

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    reps = 3 if batch >= 512 and dev.type == "cpu" else 5
    t_train = _timed(train_step, reps, min_seconds)
    t_infer = _timed(infer, reps, min_seconds)
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": model_kind,
        "mode": mode,
        "batch": batch,
        "train_windows_per_s": batch / statistics.median(t_train),
        "infer_windows_per_s": batch / statistics.median(t_infer),
        "infer_latency_ms": 1000 * statistics.median(t_infer),
        "train_step_ms": 1000 * statistics.median(t_train),
        "peak_memory_mb": peak_mb,
    }


@click.command(context_settings={"show_default": True})
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu")
@click.option("--batch-sizes", default=DEFAULT_BATCHES, help="Comma-separated batch sizes.")
@click.option("--modes", default="fp32,bf16", help="fp32 and/or bf16 (autocast).")
@click.option("--release", is_flag=True, help="Also time the release's plain-PyTorch network.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the step and forward.")
@click.option(
    "--min-seconds",
    type=FloatRange(min=0),
    default=2.0,
    help="Minimum timed seconds per measurement.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON report to this file, rewritten after every measurement (a run "
    "stopped by a time limit keeps what it measured).",
)
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
@click.option("--_one", hidden=True, default=None)
def main(
    device: str,
    batch_sizes: str,
    modes: str,
    release: bool,
    compile_: bool,
    min_seconds: float,
    as_json: bool,
    out_file: Path | None,
    force: bool,
    _one: str | None,
) -> None:
    """Benchmark INN-PAR (preset paper) training and inference."""
    if _one is not None:  # child process: one measurement, JSON on stdout
        kind, mode, batch = _one.split(":")
        click.echo(json.dumps(measure(kind, mode, int(batch), device, compile_, min_seconds)))
        return
    import torch

    from innpar_freia.distributed import hardware_description, native_bf16

    if device == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda, but no CUDA device is available")
    # Every value is checked before the first measurement, which can take minutes.
    mode_list = modes.split(",")
    bad_modes = [m for m in mode_list if m not in ("fp32", "bf16")]
    if bad_modes:
        raise click.BadParameter(
            f"unknown mode(s) {bad_modes}; use fp32, bf16", param_hint="--modes"
        )
    try:
        batches = [int(b) for b in batch_sizes.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"{batch_sizes!r} is not a comma-separated list of whole numbers",
            param_hint="--batch-sizes",
        ) from None
    repeated = sorted({b for b in batches if batches.count(b) > 1})
    if repeated:  # measured twice, they were two rows of one point
        raise click.BadParameter(
            f"batch size(s) {', '.join(map(str, repeated))} given more than once",
            param_hint="--batch-sizes",
        )
    repeated_modes = sorted({m for m in mode_list if mode_list.count(m) > 1})
    if repeated_modes:
        raise click.BadParameter(
            f"mode(s) {', '.join(repeated_modes)} given more than once", param_hint="--modes"
        )
    bad_batches = [b for b in batches if not 1 <= b <= MAX_BATCH]
    if bad_batches:
        raise click.BadParameter(
            f"batch sizes must be 1 to {MAX_BATCH} (batch {MAX_BATCH} already peaks at about "
            f"11 GB in float32 on a CPU), not {', '.join(map(str, bad_batches))}",
            param_hint="--batch-sizes",
        )
    if out_file is not None:
        # Said now, not after the first measurement (minutes in), which it would lose.
        from innpar_freia.errors import InnparError, cli_spelling
        from innpar_freia.outputs import check_outputs

        try:
            # In the command line's terms: this script's option is --force.
            with cli_spelling():
                check_outputs([out_file], force)  # an existing report only with --force
        except InnparError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            out_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.ClickException(f"cannot create {out_file.parent}: {exc.strerror}") from None
        if not os.access(out_file.parent, os.W_OK):
            raise click.ClickException(f"cannot write in {out_file.parent}")
    kinds = ["port", "release"] if release else ["port"]
    rows: list[dict] = []
    report = {
        "hardware": hardware_description(device),
        "native_bf16": native_bf16(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "compile": compile_,
        # What was asked for: a report a time limit cut short has fewer rows than these
        # make, and is told from a complete one by them.
        "requested": {"models": kinds, "modes": mode_list, "batch_sizes": batches},
        "complete": False,
        "rows": rows,
    }
    for kind in kinds:
        for mode in mode_list:
            for batch in batches:
                if device == "cpu":
                    # A fresh process per point: its peak RSS is this measurement's alone.
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--device",
                            device,
                            "--min-seconds",
                            str(min_seconds),
                            "--_one",
                            f"{kind}:{mode}:{batch}",
                            *(["--compile"] if compile_ else []),
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                        env=os.environ,
                    )
                    if out.returncode != 0:  # say what the measurement said, not "exit 1"
                        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
                        raise click.ClickException(
                            f"measuring {kind} {mode} batch {batch} failed: {last}"
                        )
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                else:
                    row = measure(kind, mode, batch, device, compile_, min_seconds)
                rows.append(row)
                report["complete"] = len(rows) == len(kinds) * len(mode_list) * len(batches)
                # Each row as it is measured (stderr: stdout may hold the JSON), and in the
                # --out file, so that a time limit loses only the measurement it stopped.
                click.echo(
                    f"{kind:>7} {mode:>4} batch {batch:>5}: train "
                    f"{row['train_windows_per_s']:8.0f} win/s, infer "
                    f"{row['infer_windows_per_s']:8.0f} win/s, latency "
                    f"{row['infer_latency_ms']:9.2f} ms, peak {row['peak_memory_mb']:8.0f} MB",
                    err=True,
                )
                if out_file is not None:
                    tmp = out_file.with_name(f".{out_file.name}.tmp")
                    try:
                        tmp.write_text(json.dumps(report, indent=2) + "\n")
                        tmp.replace(out_file)
                    except OSError as exc:  # a full disk: the rows above were printed
                        tmp.unlink(missing_ok=True)
                        raise click.ClickException(
                            f"cannot write {out_file}: {exc.strerror or exc}"
                        ) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    compiled = ", torch.compile" if compile_ else ""
    click.echo(f"\n{report['hardware']}, torch {report['torch']}{compiled}")
    click.echo(
        "| model | precision | batch | train windows/s | inference windows/s | "
        "latency (ms/batch) | peak memory (MB) |"
    )
    click.echo("|---|---|---|---|---|---|---|")
    for r in rows:
        click.echo(
            f"| {r['model']} | {r['mode']} | {r['batch']} | "
            f"{r['train_windows_per_s']:.0f} | {r['infer_windows_per_s']:.0f} | "
            f"{r['infer_latency_ms']:.2f} | {r['peak_memory_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
