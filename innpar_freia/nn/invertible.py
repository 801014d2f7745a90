"""Invertible FrEIA modules for 1-D signals: a learned LU 1x1 conv and the INN-PAR coupling."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from FrEIA.modules import InvertibleModule
from FrEIA.modules.coupling_layers import _BaseCouplingBlock
from torch import Tensor, nn

SubnetConstructor = Callable[[int, int], nn.Module]


class InvertibleConv1x1LU(InvertibleModule):
    r"""Learned invertible 1x1 convolution over channels with Glow's LU parametrisation.

    FrEIA 0.2 has only a fixed 1x1 convolution (``Fixed1x1Conv``, 2-D only), so this is
    the learned one of Glow (Kingma & Dhariwal, 2018) for ``(batch, channels, time)`` data:

    .. math::

        W = P \, (L \odot M_L + I) \, (U \odot M_U + \mathrm{diag}(\mathrm{sign}(s)\, e^{\log|s|}))

    with a fixed permutation ``P`` and ``sign(s)`` (buffers), learned ``L`` (used strictly
    below the diagonal), ``U`` (strictly above) and ``log|s|``. ``L`` and ``U`` are stored
    as full matrices with masks, as in the INN-PAR release, so the module has ``2C^2 + C``
    parameters (10 for two channels). ``log|det J| = T * sum(log|s|)`` for ``T`` samples.

    Args:
        dims_in: ``[(channels, time)]``, as FrEIA passes it.
        dims_c: conditions (unsupported; must be empty).

    Example:
        >>> conv = InvertibleConv1x1LU([(2, 16)])
        >>> x = torch.randn(3, 2, 16)
        >>> (y,), logdet = conv([x])
        >>> (x_rec,), _ = conv([y], rev=True)
        >>> bool(torch.allclose(x, x_rec, atol=1e-5))
        True
    """

    def __init__(self, dims_in: Sequence[tuple[int, ...]], dims_c: Sequence = ()):
        super().__init__(dims_in, list(dims_c))
        if len(dims_c) > 0:
            raise ValueError(f"InvertibleConv1x1LU takes no conditions, but got dims_c={dims_c}")
        if len(dims_in) != 1 or len(dims_in[0]) != 2:
            raise ValueError(
                f"InvertibleConv1x1LU needs one (channels, time) input, but got dims_in={dims_in}"
            )
        channels = dims_in[0][0]
        # Initialise from a random rotation, as Glow does (QR of a Gaussian matrix).
        w_init, _ = torch.linalg.qr(torch.randn(channels, channels, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(w_init)
        s = torch.diagonal(upper)
        # In torch's default dtype, as the masks below and every torch module: forced to
        # float32, they made a module of two dtypes under a float64 default, which failed
        # in its first matrix product.
        dtype = torch.get_default_dtype()
        self.register_buffer("perm", p.to(dtype))
        self.register_buffer("sign_s", torch.sign(s).to(dtype))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower.to(dtype))
        self.upper = nn.Parameter(torch.triu(upper, 1).to(dtype))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).to(dtype))

    def weight(self) -> Tensor:
        """The ``(C, C)`` matrix ``W`` applied to every time step."""
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def forward(
        self, x: Sequence[Tensor], c: Sequence[Tensor] = (), rev: bool = False, jac: bool = True
    ) -> tuple[tuple[Tensor], Tensor]:
        (h,) = x
        w = self.weight()
        if rev:
            # inv_ex: a W made singular by degenerate weights (exp(log_s) -> 0) gives NaN or
            # inf outputs, which the callers report, instead of raising from inside FrEIA.
            w, _ = torch.linalg.inv_ex(w)
        out = torch.einsum("ij,bjt->bit", w, h)
        log_det = self.log_s.sum() * h.shape[-1]
        log_det = log_det.expand(h.shape[0])
        return (out,), -log_det if rev else log_det

    def output_dims(self, input_dims: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
        if len(input_dims) != 1:
            raise ValueError(f"InvertibleConv1x1LU takes one input, but got {len(input_dims)}")
        return list(input_dims)


class INNPARCouplingBlock(_BaseCouplingBlock):
    r"""The INN-PAR coupling (Kundu et al., ICASSP 2025) as a FrEIA coupling block.

    For input halves ``x1, x2`` (one channel each for 2-channel data):

    .. math::

        y_1 &= x_1 + F(x_2) \\
        y_2 &= x_2 \odot \exp\big(0.8\,(2\,\sigma(H(y_1)) - 1)\big) + G(y_1)

    FrEIA's ``_BaseCouplingBlock`` supplies the channel split, the order of the two
    couplings, the reverse pass and the ``SIGMOID`` clamp ``2 (sigmoid(u) - 0.5)``, so
    ``clamp * f_clamp(H)`` is exactly the paper's soft-clamped log-scale. ``log|det J| =
    sum(s)`` over channels and time (the additive step is volume-preserving).

    Args:
        dims_in: ``[(channels, time)]``.
        dims_c: conditions, concatenated to the passive half as in every FrEIA coupling.
        subnet_constructor: ``(c_in, c_out) -> nn.Module`` keeping the length; called three
            times, for F, G and H.
        clamp: maximum |log-scale| (0.8 in the paper).
        split_len: channels in the first half (FrEIA semantics).

    Example:
        >>> from innpar_freia.nn.mscm import mscm_constructor
        >>> block = INNPARCouplingBlock([(2, 16)], subnet_constructor=mscm_constructor(4, 3))
        >>> x = torch.randn(3, 2, 16)
        >>> (y,), logdet = block([x])
        >>> (x_rec,), _ = block([y], rev=True)
        >>> bool(torch.allclose(x, x_rec, atol=1e-5))
        True
    """

    def __init__(
        self,
        dims_in: Sequence[tuple[int, ...]],
        dims_c: Sequence[tuple[int, ...]] = (),
        subnet_constructor: SubnetConstructor | None = None,
        clamp: float = 0.8,
        split_len: float | int = 0.5,
    ):
        super().__init__(
            dims_in, list(dims_c), clamp=clamp, clamp_activation="SIGMOID", split_len=split_len
        )
        if subnet_constructor is None:
            raise ValueError("INNPARCouplingBlock needs a subnet_constructor(c_in, c_out)")
        if self.split_len1 == 0 or self.split_len2 == 0:
            raise ValueError(
                f"INNPARCouplingBlock needs at least 2 channels to split, but got dims_in={dims_in}"
            )
        c = self.condition_length
        self.F = subnet_constructor(self.split_len2 + c, self.split_len1)
        self.G = subnet_constructor(self.split_len1 + c, self.split_len2)
        self.H = subnet_constructor(self.split_len1 + c, self.split_len2)

    def _coupling1(self, x1: Tensor, u2: Tensor, rev: bool = False) -> tuple[Tensor, float]:
        # Additive, volume-preserving: no Jacobian term.
        if rev:
            return x1 - self.F(u2), 0.0
        return x1 + self.F(u2), 0.0

    def _coupling2(self, x2: Tensor, u1: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        s = self.clamp * self.f_clamp(self.H(u1))
        t = self.G(u1)
        j = torch.sum(s, dim=tuple(range(1, self.ndims + 1)))
        if rev:
            return (x2 - t) * torch.exp(-s), -j
        return x2 * torch.exp(s) + t, j
