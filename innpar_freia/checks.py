"""Exact-invertibility checks of an INN-PAR network, as maths (``innpar check``)."""

from __future__ import annotations

import copy
import io
import math
from typing import Any

import numpy as np
import torch

from innpar_freia.checkpoint import Checkpoint, network_windows
from innpar_freia.data.dataset import Normalisation
from innpar_freia.data.qc import constant_rows
from innpar_freia.errors import ConfigError, DataError
from innpar_freia.nn.model import INNPAR, build_model, count_parameters

ROUNDTRIP_TOL_FLOAT32 = 1e-5
ROUNDTRIP_TOL_FLOAT64 = 1e-10
LOGDET_TOL = 1e-8
JACOBIAN_LENGTH = 8  # tiny input for the brute-force Jacobian: (1, 2, 8) -> 16 x 16


def synthetic_windows(model: INNPAR, n: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Real-scale raw PPG and ABP (mmHg) windows at the model's fs and window length."""
    from innpar_freia.data.synthetic import synthesize_recording

    fs, length = model.config.fs, model.config.window_length
    minutes = (n + 2) * length / fs / 60.0
    rec = synthesize_recording(0, minutes, fs, seed)
    idx = np.arange(n)[:, None] * length + np.arange(length)
    return rec.ppg[idx], rec.abp[idx]


def _roundtrip(model: INNPAR, ppg: torch.Tensor, abp: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        x = model.make_input(ppg)
        y, ld_f = model(x)
        x_rec, ld_r = model(y, rev=True)
        y_ref = model.make_input(abp)
        x_back, _ = model(y_ref, rev=True)
        y_rec, _ = model(x_back)
    return {
        "forward": float((x - x_rec).abs().max()),
        "reverse": float((y_ref - y_rec).abs().max()),
        "logdet_cancel": float((ld_f + ld_r).abs().max()),
    }


def _logdet_error(model: INNPAR, seed: int) -> float:
    """max |log-det(model) - log|det J|| of the autograd Jacobian on tiny float64 inputs."""
    inn = model.inn
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(2):
        x = torch.randn(1, 2, JACOBIAN_LENGTH, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            _, log_det = model(x)

        def flat(v: torch.Tensor) -> torch.Tensor:
            return inn(v.view(1, 2, JACOBIAN_LENGTH))[0].reshape(-1)

        jac = torch.autograd.functional.jacobian(flat, x.reshape(-1))
        if not bool(torch.isfinite(jac).all()):
            return math.inf  # weights that overflow: slogdet raises on a NaN matrix
        try:
            _, logabs = torch.linalg.slogdet(jac)
        except torch.linalg.LinAlgError:
            return math.inf
        error = float((logabs - log_det[0]).abs())
        worst = max(worst, error) if math.isfinite(error) else math.inf  # max() drops NaN
    return worst


def _params_without_gradient(model: INNPAR, ppg: torch.Tensor) -> list[str]:
    """Parameters that get no (or an all-zero) gradient through the SequenceINN.

    The second input channel is replaced by noise of the same scale: with the ``zeros``
    ablation the signal's second channel is identically zero, which makes some 1x1-conv
    entries irrelevant for that input although the network itself uses them.
    """
    model.zero_grad(set_to_none=True)
    x = model.make_input(ppg)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(x[:, 1].shape, generator=gen, dtype=x.dtype)
    x = torch.stack([x[:, 0], noise * x[:, 0].std()], dim=1)
    y, log_det = model(x)
    weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
    ((y * weights).sum() + log_det.sum()).backward()
    missing = [
        name
        for name, p in model.named_parameters()
        # A NaN gradient is != 0 but is no gradient either.
        if p.requires_grad
        and (p.grad is None or not torch.any((p.grad != 0) & torch.isfinite(p.grad)))
    ]
    model.zero_grad(set_to_none=True)
    return missing


def _state_dict_roundtrip(model: INNPAR, ppg: torch.Tensor) -> float:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    clone = build_model(model.config, seed=0)  # its weights are loaded: leave the RNGs be
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    clone = clone.to(dtype=next(model.parameters()).dtype).eval()
    with torch.no_grad():
        return float((model.ppg_to_abp(ppg) - clone.ppg_to_abp(ppg)).abs().max())


# Windows of a file that ``innpar check --data`` runs on, spread over the file.
CHECK_WINDOWS = 64


def windows_to_check(path: Any, n_windows: int, n: int = CHECK_WINDOWS):
    """Raw PPG and ABP arrays of up to ``n`` windows of the window file ``path`` (of
    ``n_windows``) whose PPG and ABP are not constant lines: evenly spread over the file,
    then, where some of those were flat, the first others in file order. A flat PPG
    z-scores to zeros, on which some parameters get no gradient: the network failed a
    check for the data's fault. ``DataError`` when every window is flat."""
    from innpar_freia.data.dataset import load_split_arrays
    from innpar_freia.data.qc import constant_rows

    def usable(idx: np.ndarray) -> np.ndarray:
        ppg, abp = load_split_arrays(path, idx)
        return idx[~(constant_rows(ppg) | constant_rows(abp))]

    picked = usable(np.unique(np.linspace(0, n_windows - 1, min(n, n_windows)).round()).astype(int))
    for start in range(0, n_windows, 4096):
        if len(picked) >= min(n, n_windows):
            break
        rest = np.setdiff1d(np.arange(start, min(start + 4096, n_windows)), picked)
        picked = np.union1d(picked, usable(rest)[: n - len(picked)])
    if not len(picked):
        raise DataError(
            f"{path}: the PPG or the ABP of every window is a constant line: there is no "
            "pulse to check the network on"
        )
    return load_split_arrays(path, picked.astype(np.int64))


def run_checks(
    model: INNPAR | Checkpoint,
    ppg: np.ndarray | torch.Tensor | None = None,
    abp: np.ndarray | torch.Tensor | None = None,
    norm: Normalisation | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Invertibility, log-det, gradient and save/load checks of ``model`` (a network, or a
    :class:`~innpar_freia.checkpoint.Checkpoint`: its network, with its ABP normalisation
    when ``norm`` is ``None``).

    ``ppg``/``abp``: raw windows ``(n, L)`` (numpy or torch; PPG any units, ABP mmHg) at
    real signal scale; synthetic windows when ``None``. PPG is z-scored per window and ABP
    normalised with ``norm`` (the training constants; min-max over the windows when
    ``None``). Windows the checks cannot judge the network on are refused (``ValueError``),
    as :meth:`Checkpoint.predict_abp` refuses them: of another length than the model's
    ``window_length``, NaN or inf (every check failed), or a flat PPG (it z-scores to
    zeros, on which some parameters get no gradient). Runs under ``torch.no_grad()`` too
    (the gradient check turns gradients on for itself), not under
    ``torch.inference_mode()``.
    """
    if isinstance(model, Checkpoint):
        norm = model.normalisation if norm is None else norm
        model = model.model
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise TypeError(
            f"run_checks takes an INNPAR network or a Checkpoint, not a {type(model).__name__}"
        )
    if torch.is_inference_mode_enabled():
        # Tensors made there can never take part in autograd: the gradient check cannot run.
        raise RuntimeError(
            "run_checks cannot run under torch.inference_mode(): its gradient check needs "
            "autograd; call it outside that block (torch.no_grad() is fine)"
        )
    if not getattr(model, "invertible", True):
        raise ConfigError(
            f"invertibility checks apply to INN-PAR; this is a {model.config.arch} model"
        )
    if (ppg is None) != (abp is None):
        # One of them was replaced by synthetic windows: the check ran on none of the user's.
        given, absent = ("ppg", "abp") if abp is None else ("abp", "ppg")
        raise DataError(
            f"run_checks was given {given} windows without {absent}: the check runs both "
            "directions on pairs; give both, or neither for synthetic windows"
        )
    if ppg is None or abp is None:
        ppg, abp = synthetic_windows(model, seed=seed)
    if np.shape(ppg) != np.shape(abp):
        raise DataError(
            f"run_checks needs ppg and abp windows of one shape, not {tuple(np.shape(ppg))} "
            f"and {tuple(np.shape(abp))}"
        )
    # Of the model's length, as predict_abp takes them: another length was refused by the
    # network in tensor terms after the ABP was normalised, and one of 0 or 1 samples was
    # called "a constant line".
    ppg = network_windows(ppg, "PPG", model.config.window_length)
    abp = network_windows(abp, "ABP", model.config.window_length)
    flat = np.flatnonzero(constant_rows(ppg))
    if flat.size:
        raise ValueError(
            f"{flat.size} of {len(ppg)} PPG window(s) are a constant line (first: window "
            f"{flat[0]}); a flat PPG z-scores to zeros and fails the gradient check for the "
            "data's fault: drop them"
        )
    ppg_n = Normalisation.normalise_ppg(ppg)
    if norm is None:
        lo, hi = float(np.min(abp)), float(np.max(abp))
        norm = Normalisation("minmax", lo, max(hi - lo, 1.0))
    abp_n = norm.normalise_abp(np.asarray(abp, dtype=np.float64))

    m32 = copy.deepcopy(model).float().eval()
    m64 = copy.deepcopy(model).double().eval()
    r32 = _roundtrip(
        m32, torch.tensor(ppg_n, dtype=torch.float32), torch.tensor(abp_n, dtype=torch.float32)
    )
    p64, a64 = torch.tensor(ppg_n, dtype=torch.float64), torch.tensor(abp_n, dtype=torch.float64)
    r64 = _roundtrip(m64, p64, a64)
    with torch.enable_grad():  # a caller's torch.no_grad() left nothing to differentiate
        logdet_err = _logdet_error(m64, seed)
        missing = _params_without_gradient(m64, p64[:4])
    save_load = _state_dict_roundtrip(m32, torch.tensor(ppg_n[:4], dtype=torch.float32))

    roundtrip32 = float(np.max([r32["forward"], r32["reverse"]]))  # keeps a NaN, as max() does not
    roundtrip64 = float(np.max([r64["forward"], r64["reverse"]]))
    results = {
        "n_params": count_parameters(model),
        "n_windows": len(ppg_n),
        "window_length": int(ppg_n.shape[1]),
        "roundtrip_max_abs_float32": roundtrip32,
        "roundtrip_max_abs_float64": roundtrip64,
        "roundtrip_forward_float64": r64["forward"],
        "roundtrip_reverse_float64": r64["reverse"],
        "logdet_max_abs_error": logdet_err,
        "logdet_cancel_max_abs": r64["logdet_cancel"],
        "params_without_gradient": missing,
        "state_dict_max_abs_diff": save_load,
    }
    results["checks"] = {
        "roundtrip_float32": roundtrip32 <= ROUNDTRIP_TOL_FLOAT32,
        "roundtrip_float64": roundtrip64 <= ROUNDTRIP_TOL_FLOAT64,
        "logdet_vs_autograd_jacobian": logdet_err <= LOGDET_TOL,
        "logdet_forward_reverse_cancel": r64["logdet_cancel"] <= LOGDET_TOL,
        "every_parameter_gets_gradient": not missing,
        "state_dict_save_load_identical": save_load == 0.0,
    }
    results["passed"] = all(results["checks"].values())
    return results


def check_preset(name: str, seed: int = 0) -> dict[str, Any]:
    """:func:`run_checks` on a freshly initialised preset."""
    from innpar_freia.config import ModelConfig

    return run_checks(build_model(ModelConfig.from_preset(name), seed=seed), seed=seed)
