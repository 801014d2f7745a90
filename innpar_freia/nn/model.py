"""Build the INN-PAR network as a FrEIA SequenceINN, and wrap it with the signal plumbing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from FrEIA.framework import SequenceINN
from FrEIA.modules import AllInOneBlock, GLOWCouplingBlock, RNVPCouplingBlock
from torch import Tensor, nn

from innpar_freia.config import OUTPUT_LOWPASS_ORDER, ModelConfig
from innpar_freia.nn.invertible import INNPARCouplingBlock, InvertibleConv1x1LU
from innpar_freia.nn.mscm import mscm_constructor

# The release's central-difference kernel, not halved: g[n] = x[n+1] - x[n-1].
GRADIENT_KERNEL = (-1.0, 0.0, 1.0)


class _OutOfPlace(nn.Module):
    """Return a fresh tensor from a subnet.

    FrEIA 0.2's ``AllInOneBlock`` scales the subnet output in place (``a *= 0.1``), which
    breaks autograd when the subnet's last op saved its output for backward (Tanh,
    Sigmoid). Every MSCM variant here ends in a convolution, which is safe; the clone keeps
    it safe whatever subnet is plugged in (a test shows the failure with a Tanh ending).
    """

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x).clone()


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed torch and numpy for model construction without touching the caller's RNGs.

    FrEIA 0.2 draws AllInOneBlock's permutation from numpy's *global* RNG, so numpy's global
    state is seeded too and restored afterwards.
    """
    if seed is None:
        yield
        return
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        # "1" failed in numpy's seed % 2**32 ("not all arguments converted during string
        # formatting"), 1.5 in torch.manual_seed.
        raise TypeError(f"seed must be a whole number or None, not {seed!r}")
    seed = int(seed)
    np_state = np.random.get_state()  # noqa: NPY002 - FrEIA draws from the global RNG
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002
        try:
            yield
        finally:
            np.random.set_state(np_state)  # noqa: NPY002


@contextlib.contextmanager
def _float32() -> Iterator[None]:
    """Build in float32 whatever torch's default dtype, and restore the caller's.

    The package's models and checkpoints are float32 (``model.double()`` gives a float64
    copy, as ``innpar check`` does). Built under ``torch.set_default_dtype(torch.float64)``,
    common in notebooks, the weights came out float64 but for the 1x1 convolutions', a
    model of two dtypes that failed on any input, and checkpoints were loaded into it.
    """
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(default)


class CheckedSequenceINN(SequenceINN):
    """FrEIA's ``SequenceINN``, which checks the channels and dtype of what it is given.

    FrEIA 0.2's ``SequenceINN`` does not: a 1-channel input went through the whole network,
    broadcast to 2 channels by the 1x1 convolution, and came out as a map that is not
    invertible, without an error; the same tensor in a list or tuple (which FrEIA also
    takes) likewise. The length may differ from the nominal one (every module works along
    time at any length; ``innpar check`` takes Jacobians on short inputs). A tensor of
    another dtype than the weights is refused by name (torch's error names neither), unless
    autocast runs the network in float16 or bfloat16. The modules and their weights are
    FrEIA's own.
    """

    def forward(
        self, x_or_z: Tensor | Sequence[Tensor], c: Any = None, rev: bool = False, jac: bool = True
    ) -> tuple[Tensor, Tensor]:
        channels = (self.shapes[-1] if rev else self.shapes[0])[0]
        x = x_or_z
        # FrEIA passes a list or tuple on to the modules as it is, and they read its first
        # tensor: a 1-channel tensor in a list went through unchecked, and the coupling
        # blocks ignore any further tensors.
        if isinstance(x, (list, tuple)):
            if len(x) != 1:
                raise ValueError(
                    f"expected a tensor or a list/tuple of one tensor, but got a "
                    f"{type(x).__name__} of {len(x)} items"
                )
            (x,) = x
        if not torch.is_tensor(x):
            raise TypeError(
                f"expected a (batch, {channels}, time) torch tensor, but got {type(x).__name__}"
            )
        if x.ndim != 3 or x.shape[1] != channels:
            raise ValueError(
                f"expected a (batch, {channels}, time) tensor, but got shape {tuple(x.shape)}"
            )
        weight = next(self.parameters(), None)
        # torch's own error names neither ("expected scalar type Double but found Float").
        # Under autocast a float16/bfloat16 tensor is what the network itself returns.
        reduced = x.dtype in (torch.float16, torch.bfloat16) and _autocast_on(x.device.type)
        if weight is not None and x.dtype != weight.dtype and not reduced:
            fix = f"cast it (x{_cast(weight.dtype)})"
            if x.is_floating_point():
                fix += f" or the network (inn{_cast(x.dtype)})"
            raise TypeError(
                f"expected a {weight.dtype} tensor, the dtype of the network's weights, but "
                f"got {x.dtype}: {fix}"
            )
        given = c is not None and not (isinstance(c, (list, tuple)) and len(c) == 0)
        if given and all(k is None for k in self.conditions):
            # FrEIA 0.2 drops the conditions of a network without conditional modules
            # without a word: the caller believes the output depends on them.
            raise ValueError(
                "this network takes no conditions (none of its modules is conditional), "
                f"but c was given ({type(c).__name__})"
            )
        return super().forward(x_or_z, c=c, rev=rev, jac=jac)


def _cast(dtype: torch.dtype) -> str:
    """The method call that casts a tensor or module to ``dtype``: ``.float()``, ..."""
    names = {
        torch.float32: "float",
        torch.float64: "double",
        torch.float16: "half",
        torch.bfloat16: "bfloat16",
    }
    return f".{names[dtype]}()" if dtype in names else f".to({dtype})"


def _autocast_on(device_type: str) -> bool:
    """Whether autocast is on for tensors on ``device_type`` ("cpu", "cuda", ...)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device type, and means CUDA
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return device_type == "cuda" and torch.is_autocast_enabled()


def check_windows(model: nn.Module, signal: Any) -> None:
    """``signal`` must be a ``(batch, window_length)`` tensor of the dtype of ``model``'s
    weights, on their device: a clear error otherwise, not a deep torch error, and not a
    shorter window zero-padded into a prediction the model was never trained for.

    Values are not checked: like any torch module, the network passes NaN through
    (:meth:`innpar_freia.checkpoint.Checkpoint.predict_abp` refuses it); a check here
    would cost a device synchronisation in every training step."""
    if not torch.is_tensor(signal):
        raise TypeError(
            f"expected a torch tensor, but got {type(signal).__name__} "
            "(Checkpoint.predict_abp and predict_ppg take numpy arrays)"
        )
    weight = next(model.parameters(), None)
    if weight is not None and signal.dtype != weight.dtype:
        raise TypeError(
            f"expected a {weight.dtype} tensor, the dtype of the model's weights, but got "
            f"{signal.dtype}: convert it (.to({weight.dtype})) or the model"
        )
    if weight is not None and signal.device != weight.device:
        # torch's error comes from deep inside the first convolution
        raise ValueError(
            f"expected a tensor on {weight.device}, the device of the model's weights, but "
            f"got one on {signal.device}: move it (.to({str(weight.device)!r})) or the model"
        )
    length = model.config.window_length
    if signal.ndim != 2 or signal.shape[1] != length:
        raise ValueError(
            f"expected a (batch, {length}) tensor of {length}-sample windows, but got shape "
            f"{tuple(signal.shape)}"
        )
    if signal.shape[0] == 0:  # torch's reshape error from deep in an MSCM otherwise
        raise ValueError("expected at least one window, but the batch is empty")


def build_inn(config: ModelConfig, seed: int | None = None) -> SequenceINN:
    """The invertible core: a FrEIA ``SequenceINN`` over ``(batch, 2, padded_length)``.

    Each of ``config.blocks`` blocks is an optional learned LU 1x1 convolution followed by a
    coupling (INN-PAR's by default, or FrEIA's GLOW / RealNVP / AllInOne) whose subnetworks
    are MSCMs. FrEIA orders the modules, runs the reverse pass and sums the log-dets. The
    weights are float32 whatever torch's default dtype (``.double()`` for float64).

    Args:
        config: the architecture.
        seed: seeds the initialisation (Xavier weights, 1x1-conv rotations, permutations)
            without changing the global RNG state; ``None`` draws from the global RNGs.

    Not thread-safe: the seed is applied to torch's and numpy's global RNGs and torch's
    default dtype is switched while building, process-wide, so builds in concurrent threads
    change each other's weights. Build in separate processes.
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(
            f"build_inn takes a ModelConfig (e.g. ModelConfig.from_preset('paper')), "
            f"not {type(config).__name__}"
        )
    if config.arch != "innpar":
        raise ValueError(
            f"build_inn builds the invertible network; this configuration's arch is "
            f"{config.arch!r} (build_model builds any arch)"
        )
    subnet = mscm_constructor(
        config.features,
        config.kernel_size,
        relu_everywhere=config.subnet == "mscm-relu",
        global_context=config.subnet == "mscm-global",
    )
    with _seeded(seed), _float32():
        inn = CheckedSequenceINN(2, config.padded_length)
        for _ in range(config.blocks):
            if config.invertible_1x1:
                inn.append(InvertibleConv1x1LU)
            if config.coupling == "innpar":
                inn.append(INNPARCouplingBlock, subnet_constructor=subnet, clamp=config.clamp)
            elif config.coupling == "glow":
                inn.append(
                    GLOWCouplingBlock,
                    subnet_constructor=subnet,
                    clamp=config.clamp,
                    clamp_activation="SIGMOID",
                )
            elif config.coupling == "rnvp":
                inn.append(
                    RNVPCouplingBlock,
                    subnet_constructor=subnet,
                    clamp=config.clamp,
                    clamp_activation="SIGMOID",
                )
            else:  # allinone
                inn.append(
                    AllInOneBlock,
                    subnet_constructor=lambda ci, co: _OutOfPlace(subnet(ci, co)),
                    affine_clamping=config.clamp,
                    permute_soft=False,
                )
                _force_channel_swap(inn[-1])
    return inn


def _force_channel_swap(block: AllInOneBlock) -> None:
    """Make AllInOneBlock's output permutation the swap of the two channels.

    AllInOneBlock transforms one half only and relies on its permutation to mix. With two
    channels FrEIA's random hard permutation is the identity half of the time (the same
    channel would never be transformed), and its soft SO(2) rotation is stored as two
    separately float32-rounded matrices whose product is not the identity in float64
    (round trip ~3e-7). The swap is exact at any precision.
    """
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).view(2, 2, 1)
    with torch.no_grad():
        block.w_perm.copy_(swap)
        block.w_perm_inv.copy_(swap)


def second_channel(x: Tensor, kind: str) -> Tensor:
    """The second input/target channel for ``(batch, 1, time)`` signals.

    ``gradient``: the release's central difference, a conv with kernel ``[-1, 0, 1]`` and
    zero padding 1, so ``g[n] = x[n+1] - x[n-1]``, ``g[0] = x[1]``, ``g[L-1] = -x[L-2]``.
    ``gradient-onesided``: the same inside, ``2 (x[1] - x[0])`` and ``2 (x[L-1] - x[L-2])``
    at the edges. ``zeros``: a zero channel. ``copy``: the signal again.
    """
    if kind in ("gradient", "gradient-onesided"):
        kernel = torch.tensor(GRADIENT_KERNEL, dtype=x.dtype, device=x.device).view(1, 1, 3)
        g = F.conv1d(x, kernel, padding=1)
        if kind == "gradient-onesided" and x.shape[-1] > 1:
            # one-sided differences at the edges, on the same (not halved) scale
            g = torch.cat(
                [2 * (x[..., 1:2] - x[..., :1]), g[..., 1:-1], 2 * (x[..., -1:] - x[..., -2:-1])],
                dim=-1,
            )
        return g
    if kind == "zeros":
        return torch.zeros_like(x)
    if kind == "copy":
        return x.clone()
    raise ValueError(f"second channel must be gradient, zeros or copy, but is: {kind!r}")


class INNPAR(nn.Module):
    """INN-PAR: the SequenceINN plus its signal plumbing (second channel, padding, cropping).

    Signals go in and come out as ``(batch, time)`` tensors of *normalised* values (PPG
    z-scored per window, ABP scaled with the training constants; see
    :class:`innpar_freia.data.dataset.Normalisation`).

    Example:
        >>> from innpar_freia.config import OUTPUT_LOWPASS_ORDER, ModelConfig
        >>> model = build_model(ModelConfig.from_preset("tiny"), seed=0)
        >>> abp = model.ppg_to_abp(torch.randn(4, 625))
        >>> abp.shape
        torch.Size([4, 625])
    """

    invertible = True

    def __init__(self, config: ModelConfig, inn: SequenceINN):
        super().__init__()
        self.config = config
        self.inn = inn

    @property
    def window_length(self) -> int:
        return self.config.window_length

    def make_input(self, signal: Tensor) -> Tensor:
        """``(batch, time)`` -> ``(batch, 2, padded)``: [signal, second channel], zero-padded."""
        check_windows(self, signal)
        x = signal.unsqueeze(1)
        x = torch.cat([x, second_channel(x, self.config.second_channel)], dim=1)
        pad = self.config.padded_length - x.shape[-1]
        return F.pad(x, (0, pad)) if pad else x

    def forward(self, x: Tensor, rev: bool = False, jac: bool = True) -> tuple[Tensor, Tensor]:
        """Run the SequenceINN on ``(batch, 2, padded)``; returns ``(out, log|det J|)``."""
        out, log_det = self.inn(x, rev=rev, jac=jac)
        if not torch.is_tensor(log_det):
            # FrEIA 0.2's SequenceINN returns a Python float when every module is
            # volume-preserving; keep the (batch,) tensor contract.
            log_det = torch.full((x.shape[0],), float(log_det), dtype=x.dtype, device=x.device)
        return out, log_det

    def ppg_to_abp(self, ppg: Tensor) -> Tensor:
        """Normalised PPG ``(batch, time)`` -> normalised ABP ``(batch, time)``."""
        out, _ = self.forward(self.make_input(ppg), jac=False)
        return out[:, 0, : ppg.shape[-1]]

    def abp_to_ppg(self, abp: Tensor) -> Tensor:
        """Normalised ABP ``(batch, time)`` -> normalised PPG, through the reverse pass."""
        out, _ = self.forward(self.make_input(abp), rev=True, jac=False)
        return out[:, 0, : abp.shape[-1]]


def build_model(config: ModelConfig, seed: int | None = None) -> INNPAR:
    """:func:`build_inn` wrapped in :class:`INNPAR` (or, with ``arch="unet"``, the
    non-invertible U-Net baseline with the same interface). Not thread-safe, as
    :func:`build_inn` is not: a seeded build in concurrent threads gives other weights."""
    if not isinstance(config, ModelConfig):
        raise TypeError(
            f"build_model takes a ModelConfig (e.g. ModelConfig.from_preset('paper')), "
            f"not {type(config).__name__}"
        )
    config.check_rate()
    if config.arch == "unet":
        from innpar_freia.nn.unet import UNetBaseline

        with _seeded(seed), _float32():
            return UNetBaseline(config)  # type: ignore[return-value]
    return INNPAR(config, build_inn(config, seed=seed))


def postprocess_abp(abp: np.ndarray, config: ModelConfig) -> np.ndarray:
    """The configured post-processing of predicted ABP windows ``(n, time)``: a zero-phase
    Butterworth low-pass of order :data:`OUTPUT_LOWPASS_ORDER` at
    ``config.output_lowpass_hz`` (none when 0)."""
    if not config.output_lowpass_hz:
        return abp
    from scipy import signal as sps

    sos = sps.butter(OUTPUT_LOWPASS_ORDER, config.output_lowpass_hz, fs=config.fs, output="sos")
    return sps.sosfiltfilt(sos, abp, axis=-1)


def count_parameters(module: nn.Module) -> int:
    """Number of learned (trainable) scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
