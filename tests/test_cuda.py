"""The checks that need a GPU, where there is one (CI never needs one):

    python -m pytest tests/test_cuda.py -v        # on a CUDA machine; skipped elsewhere

Exact invertibility and agreement with the CPU on the device, CUDA training with bf16
autocast, the training windows preloaded into device memory or streamed through pinned
DataLoader workers, ``torch.compile``, and inference of a CUDA-trained checkpoint.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import max_weight_difference

from innpar_freia.checkpoint import full_float32, load_checkpoint
from innpar_freia.checks import run_checks, synthetic_windows
from innpar_freia.config import ModelConfig, resolve_config
from innpar_freia.data.dataset import Normalisation
from innpar_freia.evaluate import evaluate
from innpar_freia.nn.model import build_model
from innpar_freia.train import train

DEVICE = "cuda"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def on_device(**train_overrides):
    """Preset ``tiny`` for 2 epochs on the GPU; each test says whether it uses autocast."""
    return resolve_config("tiny", train={"device": DEVICE, "epochs": 2, **train_overrides})


# How a caller may have set TF32 before predicting: the legacy flags, the global matmul
# precision, or PyTorch >= 2.9's per-backend settings (after which reading a legacy flag
# raises "mix of the legacy and new APIs").
CALLER_TF32 = {
    "default": "pass",
    "legacy": "torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True",
    "matmul_precision": "torch.set_float32_matmul_precision('high')",
    "per_backend": "torch.backends.cuda.matmul.fp32_precision = 'tf32'\n"
    "torch.backends.cudnn.conv.fp32_precision = 'tf32'",
    "generic": "torch.backends.fp32_precision = 'tf32'",
}

TF32_CHILD = """
import torch
from innpar_freia.checkpoint import full_float32

def read(get):
    try:
        return get()
    except RuntimeError as exc:
        return "mixed" if "mix" in str(exc) else repr(exc)

def state():
    b = torch.backends
    return {
        "legacy matmul": read(lambda: b.cuda.matmul.allow_tf32),
        "legacy cudnn": read(lambda: b.cudnn.allow_tf32),
        "matmul precision": read(torch.get_float32_matmul_precision),
        **{name: read(lambda o=o: o.fp32_precision) for name, o in [
            ("generic", b), ("cuda matmul", b.cuda.matmul), ("cudnn", b.cudnn),
            ("cudnn conv", b.cudnn.conv), ("cudnn rnn", b.cudnn.rnn),
            ("mkldnn matmul", b.mkldnn.matmul)]},
    }

CALLER
before = state()
try:
    with full_float32():
        inside = state()
        raise RuntimeError("inside")
except RuntimeError as exc:
    assert str(exc) == "inside", exc
# Off through both APIs, which agree (cuBLAS and cuDNN check that on every call).
assert inside["legacy matmul"] is False and inside["legacy cudnn"] is False, inside
assert inside["cuda matmul"] == inside["cudnn conv"] == inside["cudnn rnn"] == "ieee", inside
assert state() == before, (state(), before)
print("ok")
"""


@pytest.mark.skipif(
    not hasattr(torch.backends.cudnn, "conv"), reason="PyTorch before 2.9 has only legacy flags"
)
@pytest.mark.parametrize("caller", list(CALLER_TF32))
def test_full_float32_switches_tf32_off_and_restores_it(caller: str) -> None:
    # The settings are the process's: in a child process, so that no other test sees them.
    code = TF32_CHILD.replace("CALLER", CALLER_TF32[caller])
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


@needs_cuda
def test_paper_network_on_cuda_inverts_and_matches_the_cpu() -> None:
    model = build_model(ModelConfig.from_preset("paper"), seed=0).eval()
    ppg, _ = synthetic_windows(model, n=32)
    ppg_n = torch.tensor(Normalisation.normalise_ppg(ppg), dtype=torch.float32)
    gpu = copy.deepcopy(model).to(DEVICE)
    with torch.no_grad(), full_float32():
        y_cpu, ld_cpu = model(model.make_input(ppg_n))
        x = gpu.make_input(ppg_n.to(DEVICE))
        y, ld = gpu(x)
        x_back, ld_back = gpu(y, rev=True)
    # The same float32 arithmetic on another device: rounding-level differences only.
    assert float((y.cpu() - y_cpu).abs().max()) < 1e-4
    assert torch.allclose(ld.cpu(), ld_cpu, rtol=1e-4, atol=1e-2)
    # Exactly invertible on the GPU, to the bound the CPU checks use.
    assert float((x_back - x).abs().max()) <= 1e-5
    assert float((ld + ld_back).abs().max()) <= 1e-2  # float32 sums of 2 x 628 log-scales


@needs_cuda
def test_bf16_training_on_cuda_gives_a_float32_invertible_checkpoint(
    synth_file: Path, tmp_path: Path
) -> None:
    result = train(on_device(amp=True), synth_file, tmp_path / "run")
    assert result.epochs_completed == 2
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_mae"]) for r in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    env = json.loads((tmp_path / "run" / "config.json").read_text())["environment"]
    assert env["device"].startswith("cuda") and "CUDA" in env["hardware"]  # recorded
    ckpt = load_checkpoint(result.last_checkpoint)  # on the CPU, from a CUDA run
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in ckpt.model.parameters())
    checks = run_checks(ckpt.model, seed=0)
    assert checks["passed"], checks["checks"]
    # Served on the GPU, the checkpoint predicts what it predicts on the CPU.
    ppg, _ = synthetic_windows(ckpt.model, n=16)
    on_gpu = load_checkpoint(result.last_checkpoint, device=DEVICE)
    assert np.abs(on_gpu.predict_abp(ppg) - ckpt.predict_abp(ppg)).max() < 1e-2  # mmHg
    metrics, _ = evaluate(on_gpu, synth_file, "test")
    assert np.isfinite(metrics["calibration_free"]["waveform"]["mae"])


@needs_cuda
def test_cuda_training_in_float32_follows_the_cpu(synth_file: Path, tmp_path: Path) -> None:
    # TF32 off (training does not switch it off by itself): the same float32 steps on two
    # devices, so the losses agree to float32 rounding amplified by 2 epochs of Adam.
    with full_float32():
        gpu = train(on_device(amp=False), synth_file, tmp_path / "gpu")
    cpu = train(on_device(amp=False, device="cpu"), synth_file, tmp_path / "cpu")
    for a, b in zip(gpu.history, cpu.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
        assert a["val_mae"] == pytest.approx(b["val_mae"], rel=1e-2)


@needs_cuda
def test_preloaded_and_streamed_windows_train_alike_on_cuda(
    synth_file: Path, tmp_path: Path
) -> None:
    # Preloaded into GPU memory vs read by 2 DataLoader workers into pinned host memory:
    # the same windows in the same order. cuDNN's backward kernels may sum in a different
    # order from run to run, so the comparison allows float32 rounding, not bitwise equality.
    held = train(on_device(amp=False, preload="always"), synth_file, tmp_path / "held")
    streamed = train(
        on_device(amp=False, preload="never", num_workers=2), synth_file, tmp_path / "streamed"
    )
    for a, b in zip(held.history, streamed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    assert max_weight_difference(held.last_checkpoint, streamed.last_checkpoint) < 1e-3


@needs_cuda
def test_compiled_training_on_cuda_matches_eager(synth_file: Path, tmp_path: Path) -> None:
    eager = train(on_device(amp=True), synth_file, tmp_path / "eager")
    compiled = train(on_device(amp=True, compile=True), synth_file, tmp_path / "compiled")
    for a, b in zip(eager.history, compiled.history, strict=True):
        # bf16 autocast, fused differently by the compiler: close, not equal.
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=2e-2)
    ckpt = load_checkpoint(compiled.last_checkpoint)  # plain state-dict keys, loads as usual
    assert run_checks(ckpt.model, seed=0)["passed"]
