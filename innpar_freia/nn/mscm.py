"""The multi-scale convolution module (MSCM) of INN-PAR, and subnet constructors for FrEIA."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn


def squeeze1d(x: Tensor, factor: int = 2) -> Tensor:
    """``(B, C, L) -> (B, C*factor, L/factor)``: each channel's ``factor`` phases become channels.

    Channel ``c * factor + p`` holds samples ``p, p + factor, ...`` of input channel ``c``.
    """
    b, c, length = x.shape
    if length % factor:
        raise ValueError(f"squeeze1d needs a length divisible by {factor}, but got {length}")
    return x.view(b, c, length // factor, factor).permute(0, 1, 3, 2).reshape(b, c * factor, -1)


def unsqueeze1d(x: Tensor, factor: int = 2) -> Tensor:
    """Exact inverse of :func:`squeeze1d`: ``(B, C*factor, L) -> (B, C, L*factor)``."""
    b, cf, length = x.shape
    if cf % factor:
        raise ValueError(f"unsqueeze1d needs channels divisible by {factor}, but got {cf}")
    c = cf // factor
    return x.view(b, c, factor, length).permute(0, 1, 3, 2).reshape(b, c, length * factor)


class MSCM(nn.Module):
    r"""Multi-scale convolution module, the subnetwork of every INN-PAR coupling.

    Three time scales through two squeeze/unsqueeze steps (Kundu et al., ICASSP 2025)::

        conv(c_in->f) -> ReLU -> squeeze2 -> conv(2f->2f) -> squeeze2 -> conv(4f->4f)
        -> unsqueeze2 -> conv(2f->2f) -> unsqueeze2 -> conv(f->c_out)

    All convolutions use kernel ``k``, 'same' zero padding and a bias. In the paper's
    variant (``relu_everywhere=False``) the first ReLU is the only nonlinearity; with
    ``relu_everywhere=True`` a ReLU follows every hidden convolution. Every Conv1d is
    re-initialised Xavier-normal with zero bias, as in the release. With ``c_in=c_out=1``,
    ``f=16``, ``k=5`` the module has 31,025 parameters.

    ``global_context=True`` adds a window-level path: the time average of the first
    (post-ReLU) features goes through a two-layer MLP (``f -> 4f -> 4f``, ReLU between) and
    is added to every time step of the coarsest scale. The convolutions see about a second
    of signal around each sample; this path lets every output sample depend on the whole
    window (heart rate, the pulse's shape), which is what a person's blood-pressure *level*
    can only be read from. Its last layer starts at zero, so a fresh module computes exactly
    what the plain MSCM computes. A coupling's subnet may be any function of its input, so
    the network stays exactly invertible.

    Shapes: ``(batch, c_in, time) -> (batch, c_out, time)``; ``time`` divisible by 4.

    Example:
        >>> import torch
        >>> m = MSCM(1, 1)
        >>> sum(p.numel() for p in m.parameters())
        31025
        >>> m(torch.randn(2, 1, 628)).shape
        torch.Size([2, 1, 628])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        features: int = 16,
        kernel_size: int = 5,
        relu_everywhere: bool = False,
        global_context: bool = False,
    ):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, but is: {kernel_size}")
        f, pad = features, kernel_size // 2

        def conv(a: int, b: int) -> nn.Conv1d:
            return nn.Conv1d(a, b, kernel_size, padding=pad)

        self.conv_in = conv(c_in, f)
        self.conv_down1 = conv(2 * f, 2 * f)
        self.conv_mid = conv(4 * f, 4 * f)
        self.conv_up1 = conv(2 * f, 2 * f)
        self.conv_out = conv(f, c_out)
        self.act = nn.ReLU()
        self.hidden_act: nn.Module = nn.ReLU() if relu_everywhere else nn.Identity()
        self.context: nn.Sequential | None = None
        if global_context:
            self.context = nn.Sequential(nn.Linear(f, 4 * f), nn.ReLU(), nn.Linear(4 * f, 4 * f))
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)
        if self.context is not None:
            nn.init.zeros_(self.context[2].weight)
            nn.init.zeros_(self.context[2].bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 4:
            raise ValueError(f"MSCM needs a length divisible by 4, but got {x.shape[-1]}")
        h = self.act(self.conv_in(x))
        g = None if self.context is None else self.context(h.mean(dim=-1)).unsqueeze(-1)
        h = self.hidden_act(self.conv_down1(squeeze1d(h)))
        h = self.conv_mid(squeeze1d(h))
        h = self.hidden_act(h if g is None else h + g)
        h = self.hidden_act(self.conv_up1(unsqueeze1d(h)))
        return self.conv_out(unsqueeze1d(h))


def mscm_constructor(
    features: int = 16,
    kernel_size: int = 5,
    relu_everywhere: bool = False,
    global_context: bool = False,
) -> Callable[[int, int], nn.Module]:
    """A FrEIA subnet constructor ``(c_in, c_out) -> MSCM`` with fixed width and kernel."""

    def construct(c_in: int, c_out: int) -> nn.Module:
        return MSCM(c_in, c_out, features, kernel_size, relu_everywhere, global_context)

    return construct
