"""A 1-D U-Net signal-to-signal baseline in the style of bp-benchmark's, with INN-PAR's interface.

It maps ``[PPG, grad PPG]`` to ``[ABP, grad ABP]`` like INN-PAR does, so the same training
loop, loss and evaluation apply; it has no inverse (``rev=True`` raises).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from innpar_freia.config import ModelConfig
from innpar_freia.nn.model import check_windows, second_channel


def _block(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    pad = kernel // 2
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=pad),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv1d(c_out, c_out, kernel, padding=pad),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet1D(nn.Module):
    """Encoder-decoder with skip connections: ``depth`` levels, channels doubling from
    ``features``, max-pool down, linear upsampling + conv up. ``(B, 2, L) -> (B, 2, L)``
    for ``L`` divisible by ``2**depth``.
    """

    def __init__(self, features: int = 16, depth: int = 4, kernel_size: int = 5):
        super().__init__()
        chans = [features * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c_in = 2
        for c in chans[:-1]:
            self.down.append(_block(c_in, c, kernel_size))
            c_in = c
        self.bottom = _block(chans[-2], chans[-1], kernel_size)
        self.up = nn.ModuleList()
        self.reduce = nn.ModuleList()
        for c_skip, c_deep in zip(reversed(chans[:-1]), reversed(chans[1:]), strict=True):
            self.reduce.append(nn.Conv1d(c_deep, c_skip, 1))
            self.up.append(_block(2 * c_skip, c_skip, kernel_size))
        self.head = nn.Conv1d(chans[0], 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool1d(x, 2)
        x = self.bottom(x)
        for reduce, block, skip in zip(self.reduce, self.up, reversed(skips), strict=True):
            x = F.interpolate(x, scale_factor=2, mode="linear", align_corners=False)
            x = block(torch.cat([reduce(x), skip], dim=1))
        return self.head(x)


class UNetBaseline(nn.Module):
    """:class:`UNet1D` behind the same methods as :class:`~innpar_freia.nn.model.INNPAR`."""

    invertible = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.net = UNet1D(config.features, config.unet_depth, config.kernel_size)

    @property
    def padded_length(self) -> int:
        m = 2**self.config.unet_depth
        return -(-self.config.window_length // m) * m

    def make_input(self, signal: Tensor) -> Tensor:
        check_windows(self, signal)
        x = signal.unsqueeze(1)
        x = torch.cat([x, second_channel(x, self.config.second_channel)], dim=1)
        return F.pad(x, (0, self.padded_length - x.shape[-1]))

    def forward(self, x: Tensor, rev: bool = False, jac: bool = True) -> tuple[Tensor, Tensor]:
        if rev:
            raise ValueError("the U-Net baseline is not invertible: it has no reverse pass")
        return self.net(x), torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def ppg_to_abp(self, ppg: Tensor) -> Tensor:
        out, _ = self.forward(self.make_input(ppg))
        return out[:, 0, : ppg.shape[-1]]

    def abp_to_ppg(self, abp: Tensor) -> Tensor:
        raise ValueError("the U-Net baseline is not invertible: it cannot map ABP to PPG")
