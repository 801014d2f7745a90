"""Tests that pin behaviour of ``innpar_freia.nn`` and ``innpar check`` that a mutation audit
found unguarded: each one fails when the change named in its docstring is made to the
package (the existing network tests all still passed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from FrEIA.modules import GLOWCouplingBlock, RNVPCouplingBlock

from innpar_freia import checks
from innpar_freia.checks import run_checks, synthetic_windows
from innpar_freia.config import ModelConfig, resolve_config
from innpar_freia.nn.invertible import INNPARCouplingBlock, InvertibleConv1x1LU
from innpar_freia.nn.model import build_inn, build_model, count_parameters, second_channel
from innpar_freia.nn.mscm import MSCM, mscm_constructor
from innpar_freia.nn.unet import UNet1D

# --------------------------------------------------------------------------------------
# Invertible modules
# --------------------------------------------------------------------------------------


def _autograd_log_abs_det(fn, x: torch.Tensor) -> torch.Tensor:
    """log|det| of the brute-force Jacobian of ``fn`` at the single sample ``x``."""
    jac = torch.autograd.functional.jacobian(lambda v: fn(v.view_as(x)).reshape(-1), x.reshape(-1))
    return torch.linalg.slogdet(jac)[1]


def test_a_coupling_with_an_uneven_split_and_a_condition_is_the_published_map() -> None:
    """Guards against F or H being built with the halves' sizes swapped (``F: x1 -> x2``
    instead of ``x2 -> x1``): with the network's 1 | 1 split the sizes agree, but the block
    takes any ``split_len`` and conditions (FrEIA semantics), where it then fails. Checks the
    equations, the exact inverse and log|det J| against autograd's Jacobian in float64."""
    torch.manual_seed(0)
    block = INNPARCouplingBlock(
        [(3, 16)], [(1, 16)], subnet_constructor=mscm_constructor(4, 3), clamp=0.6
    ).double()
    assert (block.split_len1, block.split_len2) == (2, 1)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, 3, 16, dtype=torch.float64)
    cond = torch.randn(2, 1, 16, dtype=torch.float64)
    (y,), log_det = block([x], c=[cond])
    x1, x2 = x[:, :2], x[:, 2:]
    y1 = x1 + block.F(torch.cat([x2, cond], 1))
    s = 0.6 * (2 * torch.sigmoid(block.H(torch.cat([y1, cond], 1))) - 1)
    y2 = x2 * torch.exp(s) + block.G(torch.cat([y1, cond], 1))
    assert torch.allclose(y, torch.cat([y1, y2], 1), rtol=0, atol=1e-12)
    assert torch.allclose(log_det, s.sum(dim=(1, 2)), rtol=0, atol=1e-12)
    (x_back,), log_det_rev = block([y], c=[cond], rev=True)
    assert torch.allclose(x_back, x, rtol=0, atol=1e-12)
    assert torch.allclose(log_det_rev, -log_det, rtol=0, atol=1e-12)
    for i in range(2):
        exact = _autograd_log_abs_det(
            lambda v, i=i: block([v], c=[cond[i : i + 1]])[0][0], x[i : i + 1]
        )
        assert abs(float(exact) - float(log_det[i].detach())) < 1e-10


def test_a_coupling_refuses_a_single_channel() -> None:
    """Guards against the channel check accepting a split with an empty half (``and`` for
    ``or``): FrEIA's 0.5 split of one channel is 0 | 1, a block that cannot couple."""
    with pytest.raises(ValueError, match="at least 2 channels"):
        INNPARCouplingBlock([(1, 16)], subnet_constructor=mscm_constructor(4, 3))


def test_a_fresh_lu_conv_is_a_random_rotation() -> None:
    """Guards against the 1x1 convolution's initialisation (docs/innpar-reference.md: from
    the QR of a random matrix, as Glow and the release do) losing its QR or the sign of the
    LU diagonal: W must then be orthogonal, log|det W| = 0, for every draw."""
    for seed in range(6):
        torch.manual_seed(seed)
        conv = InvertibleConv1x1LU([(2, 8)]).double()
        w = conv.weight()
        assert torch.allclose(w @ w.T, torch.eye(2, dtype=torch.float64), atol=1e-6), seed
        assert abs(float(conv.log_s.detach().sum())) < 1e-6


# --------------------------------------------------------------------------------------
# MSCM
# --------------------------------------------------------------------------------------


def test_a_fresh_mscm_has_xavier_normal_weights_and_zero_biases() -> None:
    """Guards against the MSCM's re-initialisation (docs/innpar-reference.md: every Conv1d
    Xavier-normal with zero bias) being dropped or changed: torch's default bias is uniform
    and non-zero, Xavier-uniform has the same variance but no tails beyond sqrt(3) std."""
    torch.manual_seed(0)
    m = MSCM(1, 1)
    for conv in (m.conv_in, m.conv_down1, m.conv_mid, m.conv_up1, m.conv_out):
        assert torch.count_nonzero(conv.bias) == 0
    w = m.conv_mid.weight.detach()  # 64 x 64 x 5: 20,480 draws
    std = math.sqrt(2.0 / (64 * 5 + 64 * 5))
    assert abs(float(w.std()) / std - 1) < 0.05
    assert float(w.abs().max()) > 1.2 * math.sqrt(3) * std


@pytest.mark.parametrize(
    ("subnet", "relu", "context"),
    [("mscm", False, False), ("mscm-relu", True, False), ("mscm-global", False, True)],
)
def test_each_subnet_setting_builds_its_own_mscm(subnet: str, relu: bool, context: bool) -> None:
    """Guards against ``build_inn`` or ``mscm_constructor`` passing the ``subnet`` setting
    on wrongly (a swapped flag, or a comparison with the wrong name): every F, G and H of
    the network must be the variant asked for. The MSCM tests build MSCMs directly, and an
    mscm-global path starts at zero, so the network's outputs do not show it."""
    inn = build_inn(ModelConfig(subnet=subnet, blocks=2, features=4, kernel_size=3), seed=0)
    mscms = [m for m in inn.modules() if isinstance(m, MSCM)]
    assert len(mscms) == 6
    for m in mscms:
        assert isinstance(m.hidden_act, torch.nn.ReLU) is relu
        assert (m.context is not None) is context


# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("coupling", ["glow", "rnvp"])
def test_stock_couplings_use_the_sigmoid_clamp_of_the_configuration(coupling: str) -> None:
    """Guards against build_inn not passing ``clamp_activation="SIGMOID"`` to FrEIA's GLOW
    and RealNVP blocks (FrEIA's default is ``0.636 atan``): ``ModelConfig.clamp`` is
    documented as ``s = clamp * (2 sigmoid(u) - 1)`` for every coupling."""
    inn = build_inn(ModelConfig(coupling=coupling, blocks=1, features=2, clamp=0.7), seed=0)
    block = next(m for m in inn.module_list if isinstance(m, GLOWCouplingBlock | RNVPCouplingBlock))
    u = torch.linspace(-6, 6, 25, dtype=torch.float64)
    assert torch.allclose(block.clamp * block.f_clamp(u), 0.7 * (2 * torch.sigmoid(u) - 1))


@pytest.mark.parametrize("arch", ["innpar", "unet"])
def test_the_input_is_the_signal_then_its_second_channel_zero_padded_at_the_end(arch) -> None:
    """Guards against ``make_input`` swapping its channels (the paper's input is ``[PPG,
    ∇PPG]``; every other test builds its inputs with the same ``make_input``, so a swap
    went unnoticed) or padding at the start."""
    small = {"blocks": 1} if arch == "innpar" else {"unet_depth": 3}  # each one's own
    cfg = ModelConfig(arch=arch, features=2, **small)
    model = build_model(cfg, seed=0)
    ppg = torch.randn(2, 625)
    x = model.make_input(ppg)
    assert x.shape == (2, 2, 632 if arch == "unet" else 628)
    assert torch.equal(x[:, 0, :625], ppg)
    assert torch.equal(x[:, 1, :625], second_channel(ppg.unsqueeze(1), "gradient")[:, 0])
    assert torch.count_nonzero(x[:, :, 625:]) == 0


def test_parameter_counts_leave_out_allinone_s_frozen_permutations() -> None:
    """Guards against ``count_parameters`` counting frozen tensors: FrEIA's AllInOneBlock
    stores its permutation and its inverse as parameters that are never trained (8 numbers
    for 2 channels), and ``innpar check`` reports learned parameters."""
    model = build_model(ModelConfig(coupling="allinone", blocks=2, features=2), seed=0)
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == total - 2 * 8


# --------------------------------------------------------------------------------------
# The U-Net baseline
# --------------------------------------------------------------------------------------


def _hand_unet(net: UNet1D, x: torch.Tensor) -> torch.Tensor:
    """The U-Net of ``innpar_freia.nn.unet`` written out: (conv, batch norm, ReLU) x 2 per
    level, max-pool by 2 down, linear upsampling by 2 (``align_corners=False``), a 1x1 conv
    of the deep features then the skip, concatenated in that order, a 1x1 conv head."""

    def block(seq: torch.nn.Sequential, h: torch.Tensor) -> torch.Tensor:
        for conv, bn in ((seq[0], seq[1]), (seq[3], seq[4])):
            h = F.conv1d(h, conv.weight, conv.bias, padding=conv.weight.shape[-1] // 2)
            var, mean = bn.running_var[:, None], bn.running_mean[:, None]
            h = torch.relu(
                (h - mean) / torch.sqrt(var + bn.eps) * bn.weight[:, None] + bn.bias[:, None]
            )
        return h

    skips = []
    for b in net.down:
        x = block(b, x)
        skips.append(x)
        x = x.view(*x.shape[:2], -1, 2).amax(-1)
    x = block(net.bottom, x)
    for reduce, b, skip in zip(net.reduce, net.up, reversed(skips), strict=True):
        left = torch.cat([x[..., :1], x[..., :-1]], -1)
        right = torch.cat([x[..., 1:], x[..., -1:]], -1)
        up = torch.stack([0.75 * x + 0.25 * left, 0.75 * x + 0.25 * right], -1).flatten(-2)
        x = block(b, torch.cat([F.conv1d(up, reduce.weight, reduce.bias), skip], 1))
    return F.conv1d(x, net.head.weight, net.head.bias)


def test_the_unet_computes_its_architecture_written_out_by_hand() -> None:
    """Guards against the U-Net baseline's pooling, upsampling, skip order or batch norms
    changing: its tests only train it and check shapes. Evaluation mode, random batch-norm
    statistics so that every normalisation shows, float64."""
    torch.manual_seed(0)
    net = UNet1D(features=4, depth=2, kernel_size=3).double().eval()
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("running_mean"):
                t.copy_(torch.randn_like(t) * 0.1)
            elif name.endswith("running_var"):
                t.copy_(0.5 + torch.rand_like(t))
    x = torch.randn(3, 2, 32, dtype=torch.float64)
    with torch.no_grad():
        assert net(x).std(dim=-1).min() > 1e-4  # not a constant that every variant gives
    assert torch.allclose(net(x), _hand_unet(net, x), rtol=0, atol=1e-12)


def test_the_unet_predicts_output_channel_zero() -> None:
    """Guards against the U-Net's ``ppg_to_abp`` taking another channel or crop."""
    model = build_model(ModelConfig(arch="unet", features=4, unet_depth=2), seed=0).eval()
    ppg = torch.randn(2, 625)
    with torch.no_grad():
        out, _ = model(model.make_input(ppg))
        assert torch.equal(model.ppg_to_abp(ppg), out[:, 0, :625])
    assert (out[:, 0, :625] - out[:, 1, :625]).abs().max() > 1e-3


# --------------------------------------------------------------------------------------
# innpar check's verdict
# --------------------------------------------------------------------------------------


class _Perturbed(INNPARCouplingBlock):
    """An INN-PAR coupling made wrong by known amounts. Class attributes, so that the deep
    copies and dtype casts of ``run_checks`` keep them and the state_dict is unchanged."""

    reverse_error = 0.0  # added to x1 by the reverse pass only: f^-1(f(x)) != x
    logdet_error = 0.0  # added to the forward log-det only
    shift = 0.0  # added to y1 and removed again: exact, but not what the state_dict builds

    def _coupling1(self, x1, u2, rev=False):
        y, j = super()._coupling1(x1, u2, rev)
        return (y + self.reverse_error - self.shift if rev else y + self.shift), j

    def _coupling2(self, x2, u1, rev=False):
        y, j = super()._coupling2(x2, u1, rev)
        return y, (j if rev else j + self.logdet_error)


@pytest.fixture(scope="module")
def windows() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_windows(build_model(ModelConfig(blocks=1, features=2), seed=0), n=4)


def _check(windows, **defect) -> dict:
    """``run_checks`` of a 1-block model whose coupling has ``defect``."""
    model = build_model(ModelConfig(blocks=1, features=2), seed=0)
    coupling = model.inn.module_list[1]
    coupling.__class__ = type("Defective", (_Perturbed,), defect)
    return run_checks(model, *windows, seed=0)


def _failed(result: dict) -> list[str]:
    return sorted(name for name, ok in result["checks"].items() if not ok)


def test_an_unperturbed_model_passes_every_check(windows) -> None:
    result = _check(windows)
    assert result["passed"] and _failed(result) == []


def test_a_round_trip_error_of_1e_8_fails_float64_but_not_float32(windows) -> None:
    """Guards against the float64 tolerance (1e-10) being loosened (or the float32 one used
    for float64), and against the verdict being ``any`` instead of ``all`` of the checks."""
    result = _check(windows, reverse_error=1e-8)
    assert 1e-9 < result["roundtrip_max_abs_float64"] < 1e-6
    assert _failed(result) == ["roundtrip_float64"]
    assert result["passed"] is False


def test_a_round_trip_error_of_1e_4_fails_float32(windows) -> None:
    """Guards against the float32 tolerance (1e-5) being loosened."""
    result = _check(windows, reverse_error=1e-4)
    assert 1e-5 < result["roundtrip_max_abs_float32"] < 1e-2
    assert _failed(result) == ["roundtrip_float32", "roundtrip_float64"]


@pytest.mark.parametrize("error", [1e-6, -1e-6])
def test_a_log_det_off_by_1e_6_fails_both_log_det_checks(windows, error: float) -> None:
    """Guards against the log-det tolerance (1e-8) being loosened, the Jacobian comparison
    being skipped or losing its ``abs`` (a log-det too large gave a negative 'error'), and
    the forward/reverse cancellation losing its ``abs`` or its check."""
    result = _check(windows, logdet_error=error)
    assert abs(result["logdet_max_abs_error"] - 1e-6) < 1e-9
    assert abs(result["logdet_cancel_max_abs"] - 1e-6) < 1e-9
    assert _failed(result) == ["logdet_forward_reverse_cancel", "logdet_vs_autograd_jacobian"]


def test_outputs_that_a_saved_state_dict_does_not_reproduce_fail(windows) -> None:
    """Guards against the save/load check accepting a small difference: it must be exact."""
    result = _check(windows, shift=1e-6)
    assert 0 < result["state_dict_max_abs_diff"] < 1e-5
    assert _failed(result) == ["state_dict_save_load_identical"]


def test_parameters_that_get_no_gradient_are_named_and_fail(windows) -> None:
    """Guards against ``params_without_gradient`` losing what it found: with H's last
    convolution at zero, H's other weights get no gradient."""
    model = build_model(ModelConfig(blocks=1, features=2), seed=0)
    with torch.no_grad():
        model.inn.module_list[1].H.conv_out.weight.zero_()
    result = run_checks(model, *windows, seed=0)
    assert "inn.module_list.1.H.conv_in.weight" in result["params_without_gradient"]
    assert "inn.module_list.1.H.conv_out.weight" not in result["params_without_gradient"]
    assert _failed(result) == ["every_parameter_gets_gradient"]


@pytest.mark.parametrize("reverse", [1e-3, math.nan])
def test_a_failed_reverse_direction_round_trip_fails_the_check(
    windows, monkeypatch, reverse: float
) -> None:
    """Guards against the verdict reading only ``f^-1(f(x))`` and not ``f(f^-1(y))``, and
    against a NaN being dropped (Python's ``max`` keeps the first argument over a NaN)."""
    real = checks._roundtrip

    def reverse_broken(*args):
        return {**real(*args), "reverse": reverse}

    monkeypatch.setattr(checks, "_roundtrip", reverse_broken)
    result = run_checks(build_model(ModelConfig(blocks=1, features=2), seed=0), *windows, seed=0)
    assert _failed(result) == ["roundtrip_float32", "roundtrip_float64"]
    assert not result["passed"]


def test_checking_a_model_leaves_the_callers_random_state_alone() -> None:
    """``run_checks`` rebuilt the model to test its saved weights from the global RNGs: a
    caller's next random numbers changed by checking a model."""
    model = build_model(resolve_config("tiny").model, seed=0)
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002 - the caller's global RNG
    torch_state = torch.get_rng_state().clone()
    run_checks(model)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002
