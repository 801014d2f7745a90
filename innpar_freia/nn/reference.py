"""A plain-PyTorch transcription of the original INN-PAR release's network, without FrEIA.

It follows ``docs/innpar-reference.md`` step by step with hand-written blocks, as the
release does. It exists for two reasons: tests check that the FrEIA port computes the same
function when given the same weights (:func:`copy_weights_to_port`), and benchmarks time
the release's structure against the port on the same machine. Use :mod:`innpar_freia.nn.model`
for everything else.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from innpar_freia.nn.mscm import MSCM


class ReleaseInvConv(nn.Module):
    """The release's LU 1x1 convolution over 2 channels (10 learned numbers)."""

    def __init__(self, channels: int = 2):
        super().__init__()
        w, _ = torch.linalg.qr(torch.randn(channels, channels, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("w_p", p.float())
        self.register_buffer("s_sign", torch.sign(s).float())
        self.register_buffer("l_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.w_l = nn.Parameter(lower.float())
        self.w_s = nn.Parameter(torch.log(torch.abs(s)).float())
        self.w_u = nn.Parameter(torch.triu(upper, 1).float())

    def weight(self) -> Tensor:
        return (
            self.w_p
            @ (self.w_l * self.l_mask + self.eye)
            @ (self.w_u * self.l_mask.T + torch.diag(self.s_sign * torch.exp(self.w_s)))
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return F.conv1d(x, self.weight().unsqueeze(2)), x.shape[-1] * self.w_s.sum()

    def reverse(self, y: Tensor) -> Tensor:
        return F.conv1d(y, self.weight().inverse().unsqueeze(2))


class ReleaseBlock(nn.Module):
    """1x1 conv, then ``y1 = x1 + F(x2)``, ``y2 = x2 exp(0.8 (2 sigmoid(H(y1)) - 1)) + G(y1)``."""

    def __init__(self, features: int = 16, kernel_size: int = 5, clamp: float = 0.8):
        super().__init__()
        self.invconv = ReleaseInvConv(2)
        self.F = MSCM(1, 1, features, kernel_size)
        self.G = MSCM(1, 1, features, kernel_size)
        self.H = MSCM(1, 1, features, kernel_size)
        self.clamp = clamp

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x, logdet = self.invconv(x)
        x1, x2 = x[:, :1], x[:, 1:]
        y1 = x1 + self.F(x2)
        s = self.clamp * (torch.sigmoid(self.H(y1)) * 2 - 1)
        y2 = x2 * torch.exp(s) + self.G(y1)
        return torch.cat([y1, y2], 1), logdet + s.sum(dim=(1, 2))

    def reverse(self, y: Tensor) -> Tensor:
        y1, y2 = y[:, :1], y[:, 1:]
        s = self.clamp * (torch.sigmoid(self.H(y1)) * 2 - 1)
        x2 = (y2 - self.G(y1)) * torch.exp(-s)
        x1 = y1 - self.F(x2)
        return self.invconv.reverse(torch.cat([x1, x2], 1))


class ReleaseINNPAR(nn.Module):
    """The release's network: ``blocks`` x :class:`ReleaseBlock` over ``(B, 2, L)``."""

    def __init__(self, blocks: int = 4, features: int = 16, kernel_size: int = 5):
        super().__init__()
        self.blocks = nn.ModuleList(ReleaseBlock(features, kernel_size) for _ in range(blocks))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for block in self.blocks:
            x, ld = block(x)
            logdet = logdet + ld
        return x, logdet

    def reverse(self, y: Tensor) -> Tensor:
        for block in reversed(self.blocks):
            y = block.reverse(y)
        return y


def copy_weights_to_port(release: ReleaseINNPAR, port: nn.Module) -> None:
    """Load the release network's weights into an ``INNPAR`` port with the same architecture
    (``invertible_1x1=True``, ``coupling="innpar"``)."""
    inn = port.inn
    modules = list(inn.module_list)
    if len(modules) != 2 * len(release.blocks):
        raise ValueError("the port must have a 1x1 conv and an INN-PAR coupling per release block")
    with torch.no_grad():
        for i, block in enumerate(release.blocks):
            conv, coupling = modules[2 * i], modules[2 * i + 1]
            conv.perm.copy_(block.invconv.w_p)
            conv.sign_s.copy_(block.invconv.s_sign)
            conv.lower.copy_(block.invconv.w_l)
            conv.upper.copy_(block.invconv.w_u)
            conv.log_s.copy_(block.invconv.w_s)
            for name in ("F", "G", "H"):
                getattr(coupling, name).load_state_dict(getattr(block, name).state_dict())
