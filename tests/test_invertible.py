"""The network as maths: exact inverses, log-dets, gradients, save/load, parameter counts."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from FrEIA.framework import SequenceINN

from innpar_freia.checks import run_checks, synthetic_windows
from innpar_freia.config import PRESETS, ModelConfig
from innpar_freia.data.dataset import Normalisation
from innpar_freia.nn.invertible import INNPARCouplingBlock, InvertibleConv1x1LU
from innpar_freia.nn.model import build_inn, build_model, count_parameters, second_channel
from innpar_freia.nn.mscm import MSCM, mscm_constructor, squeeze1d, unsqueeze1d
from innpar_freia.nn.reference import ReleaseINNPAR, copy_weights_to_port

VARIANTS = {
    "paper": {},
    "tiny": {"blocks": 2, "features": 4, "kernel_size": 3},
    "glow": {"coupling": "glow", "blocks": 2},
    "rnvp": {"coupling": "rnvp", "blocks": 2},
    "allinone": {"coupling": "allinone", "blocks": 2},
    "no-1x1": {"invertible_1x1": False, "blocks": 2},
    "zeros-channel": {"second_channel": "zeros", "blocks": 2},
    "copy-channel": {"second_channel": "copy", "blocks": 2},
    "onesided-gradient": {"second_channel": "gradient-onesided", "blocks": 2},
    "mscm-relu": {"subnet": "mscm-relu", "blocks": 2},
    "allinone-no-1x1": {"coupling": "allinone", "invertible_1x1": False, "blocks": 2},
}


@pytest.fixture(scope="module")
def real_scale() -> tuple[np.ndarray, np.ndarray]:
    """Raw synthetic PPG and ABP (mmHg) windows of 625 samples."""
    return synthetic_windows(build_model(ModelConfig(blocks=1, features=2), seed=0), n=8)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_is_exactly_invertible(name: str, real_scale) -> None:
    cfg = ModelConfig(**VARIANTS[name])
    model = build_model(cfg, seed=7)
    result = run_checks(model, *real_scale, seed=1)
    assert result["roundtrip_max_abs_float32"] <= 1e-5
    assert result["roundtrip_max_abs_float64"] <= 1e-10
    assert result["logdet_max_abs_error"] <= 1e-8
    assert result["logdet_cancel_max_abs"] <= 1e-8
    assert result["params_without_gradient"] == []
    assert result["state_dict_max_abs_diff"] == 0.0
    assert result["passed"]


def test_weights_that_overflow_fail_the_checks_without_a_crash(real_scale) -> None:
    """A 1x1 convolution made singular (exp(log_s) -> 0, as a run at lr 1e30 left it) raised
    LinAlgError from the reverse pass: 'innpar check' printed a traceback instead of
    failing the checks. Weights that overflow give NaN Jacobians as well."""
    import torch

    model = build_model(ModelConfig(blocks=1, features=2), seed=7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                p.mul_(1e20)
            if name.endswith("log_s"):
                p.fill_(-1e4)
    result = run_checks(model, *real_scale, seed=1)
    assert not result["passed"] and not result["checks"]["logdet_vs_autograd_jacobian"]


INVERTIBLE_PRESETS = sorted(n for n, p in PRESETS.items() if p["model"].get("arch") != "unet")


@pytest.mark.parametrize("name", INVERTIBLE_PRESETS)
def test_every_invertible_preset_is_exactly_invertible(name: str, real_scale) -> None:
    result = run_checks(build_model(ModelConfig.from_preset(name), seed=3), *real_scale, seed=1)
    assert result["roundtrip_max_abs_float32"] <= 1e-5
    assert result["roundtrip_max_abs_float64"] <= 1e-10
    assert result["logdet_max_abs_error"] <= 1e-8
    assert result["passed"]


def test_paper_preset_has_exactly_the_release_parameter_count() -> None:
    model = build_model(ModelConfig.from_preset("paper"), seed=0)
    assert count_parameters(model) == 372_340
    assert count_parameters(MSCM(1, 1)) == 31_025
    assert count_parameters(InvertibleConv1x1LU([(2, 628)])) == 10
    assert isinstance(model.inn, SequenceINN)
    # 4 blocks, each a 1x1 conv and an INN-PAR coupling appended to the SequenceINN.
    kinds = [type(m).__name__ for m in model.inn]
    assert kinds == ["InvertibleConv1x1LU", "INNPARCouplingBlock"] * 4


def test_port_computes_the_release_network_exactly() -> None:
    torch.manual_seed(0)
    release = ReleaseINNPAR()
    port = build_model(ModelConfig(), seed=1)
    copy_weights_to_port(release, port)
    x = port.make_input(torch.randn(4, 625))
    # float32 results may differ in the last bit between CPUs (oneDNN picks its convolution
    # kernels per instruction set), so exactness is checked in float64, where the same
    # computation agrees to rounding, and float32 within a few ulps.
    y_release, ld_release = release(x)
    y_port, ld_port = port(x)
    assert torch.allclose(y_release, y_port, rtol=1e-5, atol=1e-5)
    assert torch.allclose(ld_release, ld_port, atol=1e-4)
    assert torch.allclose(release.reverse(y_port), port(y_port, rev=True)[0], atol=1e-5)
    release, port, x = release.double(), port.double(), x.double()
    y_release, ld_release = release(x)
    y_port, ld_port = port(x)
    assert torch.allclose(y_release, y_port, rtol=0, atol=1e-10)
    assert torch.allclose(ld_release, ld_port, rtol=0, atol=1e-8)
    assert torch.allclose(release.reverse(y_port), port(y_port, rev=True)[0], rtol=0, atol=1e-10)


def test_innpar_coupling_matches_the_published_equations() -> None:
    torch.manual_seed(0)
    block = INNPARCouplingBlock([(2, 16)], subnet_constructor=mscm_constructor(4, 3)).double()
    x = torch.randn(3, 2, 16, dtype=torch.float64)
    (y,), log_det = block([x])
    x1, x2 = x[:, :1], x[:, 1:]
    y1 = x1 + block.F(x2)
    s = 0.8 * (2 * torch.sigmoid(block.H(y1)) - 1)
    y2 = x2 * torch.exp(s) + block.G(y1)
    assert torch.allclose(y, torch.cat([y1, y2], 1), atol=1e-12)
    assert torch.allclose(log_det, s.sum(dim=(1, 2)), atol=1e-12)
    (x_back,), log_det_rev = block([y], rev=True)
    assert torch.allclose(x_back, x, atol=1e-12)
    assert torch.allclose(log_det_rev, -log_det, atol=1e-12)


def test_lu_conv_logdet_and_inverse() -> None:
    torch.manual_seed(3)
    conv = InvertibleConv1x1LU([(2, 10)]).double()
    with torch.no_grad():
        conv.log_s.add_(torch.tensor([0.3, -0.2], dtype=torch.float64))
    x = torch.randn(5, 2, 10, dtype=torch.float64)
    (y,), log_det = conv([x])
    expected = 10 * torch.log(torch.abs(torch.linalg.det(conv.weight())))
    assert torch.allclose(log_det, expected.expand(5), atol=1e-12)
    (x_back,), log_det_rev = conv([y], rev=True)
    assert torch.allclose(x, x_back, atol=1e-12)
    # The reverse pass's log-det is log|det W^-1| (a wrong sign went unnoticed).
    assert torch.allclose(log_det_rev, -log_det, atol=1e-12)


def test_squeeze_is_the_reference_reshape_and_exactly_invertible() -> None:
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)
    s = squeeze1d(x)
    assert s.shape == (2, 6, 4)
    expected = x.view(2, 3, 4, 2).permute(0, 1, 3, 2).reshape(2, 6, 4)
    assert torch.equal(s, expected)
    # channel c*2+p holds samples p, p+2, ... of channel c
    assert torch.equal(s[0, 1], x[0, 0, 1::2])
    assert torch.equal(unsqueeze1d(s), x)


def test_gradient_channel_is_the_release_kernel_not_halved() -> None:
    x = torch.tensor([[[1.0, 4.0, 9.0, 16.0, 25.0]]])
    g = second_channel(x, "gradient")[0, 0]
    assert g.tolist() == [4.0, 8.0, 12.0, 16.0, -16.0]  # g[0]=x[1], g[-1]=-x[-2]
    onesided = second_channel(x, "gradient-onesided")[0, 0]
    assert onesided.tolist() == [6.0, 8.0, 12.0, 16.0, 18.0]  # 2(x1-x0) ... 2(x4-x3)
    assert torch.equal(second_channel(x, "zeros"), torch.zeros_like(x))
    assert torch.equal(second_channel(x, "copy"), x)


def test_padding_to_multiple_of_four_and_cropping_back() -> None:
    model = build_model(ModelConfig(blocks=1, features=2), seed=0)
    ppg = torch.randn(3, 625)
    x = model.make_input(ppg)
    assert x.shape == (3, 2, 628)
    assert torch.equal(x[:, :, 625:], torch.zeros(3, 2, 3))
    assert model.ppg_to_abp(ppg).shape == (3, 625)
    assert model.abp_to_ppg(ppg).shape == (3, 625)


def test_seeded_build_is_deterministic_and_leaves_global_rngs_alone() -> None:
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 - checks that the global state is untouched
    before_t, before_n = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    a = build_model(ModelConfig(coupling="allinone", blocks=2), seed=5)
    b = build_model(ModelConfig(coupling="allinone", blocks=2), seed=5)
    assert torch.equal(torch.get_rng_state(), before_t)
    assert np.array_equal(np.random.get_state()[1], before_n)  # noqa: NPY002
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_state_dict_round_trip_through_bytes_gives_identical_outputs() -> None:
    cfg = ModelConfig(blocks=2, features=4)
    model = build_model(cfg, seed=1).eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    clone = build_model(cfg, seed=99)
    clone.load_state_dict(torch.load(buf, weights_only=True))
    ppg = torch.randn(2, 625)
    assert torch.equal(model.ppg_to_abp(ppg), clone.eval().ppg_to_abp(ppg))


def test_build_inn_returns_a_sequence_inn_over_two_channels() -> None:
    inn = build_inn(ModelConfig(blocks=3, features=4), seed=0)
    assert isinstance(inn, SequenceINN)
    assert inn.shapes[0] == (2, 628)
    y, log_det = inn(torch.randn(4, 2, 628))
    assert y.shape == (4, 2, 628) and log_det.shape == (4,)


def test_real_scale_abp_direction_round_trip(real_scale) -> None:
    _ppg, abp = real_scale
    model = build_model(ModelConfig(), seed=2).double().eval()
    norm = Normalisation("minmax", 20.0, 220.0)
    y = model.make_input(torch.tensor(norm.normalise_abp(abp)))
    with torch.no_grad():
        x, _ = model(y, rev=True)
        y_back, _ = model(x)
    assert float((y - y_back).abs().max()) <= 1e-10


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"blocks": 0}, "blocks must be >= 1 and <= 64, but is: 0"),
        ({"kernel_size": 4}, "kernel_size must be odd"),
        ({"features": -3}, "features must be >= 1 and <= 1024, but is: -3"),
        ({"coupling": "nice"}, "must be one of innpar, glow, rnvp, allinone, but is: 'nice'"),
        ({"second_channel": "hilbert"}, "'hilbert'"),
        ({"subnet": "unet"}, "subnet must be one of"),
        ({"clamp": 0.0}, "clamp must be > 0.0, but is: 0.0"),
        ({"window_length": 4}, "window_length must be >= 8 and <= 1000000, but is: 4"),
        ({"blocks": "4"}, "blocks must be an integer, but is: '4'"),
        ({"invertible_1x1": "yes"}, "invertible_1x1 must be true or false"),
        ({"depth": 3}, "unknown model setting(s): depth"),
    ],
)
def test_invalid_configurations_raise_value_error_naming_the_value(changes, needle) -> None:
    with pytest.raises(ValueError) as err:
        ModelConfig.from_dict(changes)
    assert needle in str(err.value)


def _wake_context_paths(model: torch.nn.Module, seed: int = 0) -> int:
    """Give every MSCM's window-level path random non-zero weights (it starts at zero)."""
    gen = torch.Generator().manual_seed(seed)
    n = 0
    for m in model.modules():
        if isinstance(m, MSCM) and m.context is not None:
            with torch.no_grad():
                for p in m.context.parameters():
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            n += 1
    return n


def test_global_mscm_starts_as_the_plain_mscm_and_adds_a_small_mlp() -> None:
    plain, glob = MSCM(1, 1), MSCM(1, 1, global_context=True)
    # f -> 4f -> 4f with biases: 16*64 + 64 + 64*64 + 64 = 5,248 parameters on top.
    assert count_parameters(glob) - count_parameters(plain) == 5_248
    glob.load_state_dict({**plain.state_dict(), **glob.context.state_dict(prefix="context.")})
    x = torch.randn(3, 1, 628)
    assert torch.equal(glob(x), plain(x))  # the path's last layer starts at zero
    _wake_context_paths(glob)
    assert not torch.allclose(glob(x), plain(x))


def test_global_mscm_network_reads_the_whole_window_and_stays_exactly_invertible(
    real_scale,
) -> None:
    outputs = {}
    for subnet in ("mscm", "mscm-global"):
        model = build_model(ModelConfig(subnet=subnet), seed=5).double()
        if subnet == "mscm-global":
            # Awake, so that the checks cover the path (and its first layer gets a gradient:
            # with the last layer at zero, as in a fresh model, it gets none until step one).
            assert _wake_context_paths(model) == 12  # F, G, H of 4 couplings
            result = run_checks(model.float(), *real_scale, seed=1)
            assert result["roundtrip_max_abs_float64"] <= 1e-10
            assert result["logdet_max_abs_error"] <= 1e-8
            assert result["params_without_gradient"] == []
            assert result["passed"]
            model = model.double()
        x = model.make_input(torch.randn(2, 625, dtype=torch.float64, generator=None))
        x_far = x.clone()
        x_far[:, :, 600] += 1.0  # a change at the end of the window ...
        with torch.no_grad():
            y, y_far = model(x)[0], model(x_far)[0]
        outputs[subnet] = (y_far - y)[:, :, :20].abs().max().item()  # ... seen at its start?
    # The paper's MSCMs see about a second around a sample: 4.6 s away, nothing changes.
    assert outputs["mscm"] == 0.0
    assert outputs["mscm-global"] > 1e-6


def test_allinone_subnets_are_copied_out_of_place_and_mix_both_channels() -> None:
    """FrEIA 0.2's AllInOneBlock scales its subnet's output in place (``a *= 0.1``): with a
    subnet ending in an op that saved its output (Tanh), backward fails unless the output is
    a copy. And with 2 channels its random permutation can be the identity: it is forced to
    the channel swap."""
    from FrEIA.modules import AllInOneBlock

    from innpar_freia.nn.model import _OutOfPlace

    def tanh_subnet(c_in: int, c_out: int) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Conv1d(c_in, c_out, 3, padding=1), torch.nn.Tanh())

    def backward(wrap: bool) -> None:
        inn = SequenceINN(2, 16)
        make = (lambda ci, co: _OutOfPlace(tanh_subnet(ci, co))) if wrap else tanh_subnet
        inn.append(AllInOneBlock, subnet_constructor=make, permute_soft=False)
        y, log_det = inn(torch.randn(3, 2, 16, requires_grad=True))
        (y.square().sum() + log_det.sum()).backward()

    with pytest.raises(RuntimeError, match="inplace operation"):
        backward(wrap=False)  # the FrEIA defect, still there in the pinned 0.2
    backward(wrap=True)
    model = build_model(ModelConfig(coupling="allinone", blocks=2), seed=1)
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).view(2, 2, 1)
    blocks = [m for m in model.inn.module_list if isinstance(m, AllInOneBlock)]
    assert len(blocks) == 2
    for block in blocks:
        assert isinstance(block.subnet, _OutOfPlace)
        assert torch.equal(block.w_perm, swap) and torch.equal(block.w_perm_inv, swap)


def test_a_volume_preserving_network_still_gives_a_log_det_per_window() -> None:
    """FrEIA 0.2's SequenceINN returns a Python float log-det when every module is
    volume-preserving; the wrapper keeps the ``(batch,)`` tensor contract."""
    from FrEIA.modules import PermuteRandom

    from innpar_freia.nn.model import INNPAR

    inn = SequenceINN(2, 628)
    inn.append(PermuteRandom, seed=0)
    _, raw = inn(torch.randn(3, 2, 628))
    assert not torch.is_tensor(raw)  # the defect the wrapper works around
    model = INNPAR(ModelConfig(blocks=1, features=4), inn)
    _, log_det = model(torch.randn(3, 2, 628))
    assert torch.is_tensor(log_det) and log_det.shape == (3,) and torch.all(log_det == 0)


@pytest.mark.parametrize("variant", ["innpar", "no-1x1"])
def test_the_sequence_inn_refuses_a_tensor_without_its_two_channels(variant: str) -> None:
    """FrEIA 0.2's SequenceINN checks nothing: one channel went through, broadcast to two by
    the 1x1 convolution, into a map that is not invertible. Other lengths stay allowed
    (every module works along time at any length; the checks use short inputs)."""
    cfg = ModelConfig(blocks=2, features=2, invertible_1x1=variant == "innpar")
    inn = build_inn(cfg, seed=0)
    for shape in ((2, 1, 628), (2, 3, 628), (2, 628)):
        for rev in (False, True):
            # FrEIA also takes the tensor in a list or tuple: that went through unchecked.
            for wrap in (lambda t: t, lambda t: [t], lambda t: (t,)):
                with pytest.raises(ValueError, match=r"expected a \(batch, 2, time\) tensor"):
                    inn(wrap(torch.randn(*shape)), rev=rev)
    with pytest.raises(TypeError, match="build_inn takes a ModelConfig"):
        build_inn("paper")  # type: ignore[arg-type]
    x = torch.randn(3, 2, 16)
    out, _ = inn(x)
    assert out.shape == (3, 2, 16)
    assert torch.equal(inn([x])[0], out) and torch.equal(inn((x,))[0], out)


@pytest.mark.parametrize("name", [*VARIANTS, "global", "unet"])
def test_models_are_float32_whatever_the_default_dtype(name: str, float64_default) -> None:
    """Under ``torch.set_default_dtype(torch.float64)`` the 1x1 convolutions' weights were
    float32 and every other weight float64: the network failed in its first matrix product
    ("expected m1 and m2 to have the same dtype"). Models are built in float32, the
    package's dtype (``model.double()`` for float64), and the caller's default is kept."""
    changes = {"subnet": "mscm-global"} if name == "global" else VARIANTS.get(name, {})
    cfg = ModelConfig(arch="unet") if name == "unet" else ModelConfig(**changes)
    model = build_model(cfg, seed=0)
    assert torch.get_default_dtype() == torch.float64
    assert {t.dtype for t in model.state_dict().values() if t.is_floating_point()} == {
        torch.float32
    }
    ppg = torch.randn(2, cfg.window_length, dtype=torch.float32)
    with torch.no_grad():
        abp = model.ppg_to_abp(ppg)
        assert abp.dtype == torch.float32 and bool(torch.isfinite(abp).all())
        if name != "unet":
            assert build_inn(cfg, seed=0)(model.make_input(ppg))[0].dtype == torch.float32
            m64 = model.double()
            x = m64.make_input(ppg.double())
            assert float((m64(m64(x)[0], rev=True)[0] - x).abs().max()) < 1e-10


def test_a_lu_conv_alone_is_of_the_default_dtype(float64_default) -> None:
    """As every torch module: its permutation, sign and weights were forced to float32,
    beside float64 masks, and the module failed on any input."""
    conv = InvertibleConv1x1LU([(2, 10)])
    assert {t.dtype for t in conv.state_dict().values()} == {torch.float64}
    x = torch.randn(3, 2, 10)
    (y,), _ = conv([x])
    (x_back,), _ = conv([y], rev=True)
    assert torch.allclose(x, x_back, atol=1e-12)


@pytest.mark.parametrize("variant", ["innpar", "no-1x1"])
def test_the_sequence_inn_names_both_dtypes_when_they_differ(variant: str) -> None:
    """A float64 tensor given to the float32 network failed with torch's "expected scalar
    type Double but found Float", which names neither; INNPAR's wrapper already said it."""
    inn = build_inn(ModelConfig(blocks=2, features=2, invertible_1x1=variant == "innpar"))
    x = torch.randn(3, 2, 16, dtype=torch.float64)
    for rev in (False, True):
        for given in (x, [x]):
            with pytest.raises(TypeError) as info:
                inn(given, rev=rev)
            assert str(info.value) == (
                "expected a torch.float32 tensor, the dtype of the network's weights, but got "
                "torch.float64: cast it (x.float()) or the network (inn.double())"
            )
    with pytest.raises(TypeError, match=r"but got torch.int64: cast it \(x.float\(\)\)$"):
        inn(torch.zeros(3, 2, 16, dtype=torch.long))
    inn.double()
    with pytest.raises(TypeError, match=r"cast it \(x.double\(\)\) or the network \(inn.float"):
        inn(x.float())
    assert inn(x)[0].dtype == torch.float64
    # Under autocast the network can return bfloat16 (the 1x1 convolution's product does),
    # which its reverse pass must take back.
    inn.float()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = inn(x.float())[0].bfloat16()
        assert inn(y, rev=True)[0].shape == x.shape


@pytest.mark.parametrize("variant", ["innpar", "no-1x1"])
def test_the_sequence_inn_refuses_a_list_that_is_not_one_tensor(variant: str) -> None:
    """FrEIA 0.2 hands a list on to the modules as it is: its coupling blocks read the first
    tensor and ignore the rest, the 1x1 convolution failed to unpack it, and a numpy array
    failed deep inside a module."""
    inn = build_inn(ModelConfig(blocks=2, features=2, invertible_1x1=variant == "innpar"))
    x = torch.randn(3, 2, 16)
    for bad in ([x, x], (), [x, torch.randn(3, 1, 16)]):
        with pytest.raises(ValueError, match=r"a list/tuple of one tensor, but got a \w+ of"):
            inn(bad)
    for bad in (x.numpy(), [x.numpy()]):
        with pytest.raises(TypeError, match=r"a \(batch, 2, time\) torch tensor, but got ndarray"):
            inn(bad)


def test_check_json_reports_checks_that_come_out_nan(tiny_run, tmp_path) -> None:
    """A NaN result made 'innpar check --json' die in json.dumps with a traceback; it is
    a failed check, as the text output says."""
    import json

    from helpers import run_cli

    raw = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=True)
    key = next(k for k in raw["model_state"] if k.endswith("sign_s"))
    raw["model_state"][key] = torch.zeros_like(raw["model_state"][key])
    torch.save(raw, tmp_path / "singular.pt")
    result = run_cli("check", "--checkpoint", tmp_path / "singular.pt", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is False and None in report.values()


def test_the_network_namespace_exports_what_the_readme_names() -> None:
    """README "The network" presents ``innpar_freia.nn`` as the namespace: its
    ``__init__`` was empty, so ``from innpar_freia.nn import build_inn`` was an
    ImportError and ``innpar_freia.nn.reference`` an AttributeError until imported."""
    import subprocess
    import sys

    import innpar_freia.nn as nn_pkg
    from innpar_freia.nn import model, reference

    assert nn_pkg.INNPARCouplingBlock is INNPARCouplingBlock
    assert nn_pkg.InvertibleConv1x1LU is InvertibleConv1x1LU
    assert nn_pkg.build_inn is build_inn and nn_pkg.INNPAR is model.INNPAR
    assert nn_pkg.reference is reference
    assert {*nn_pkg.__all__, "reference"} <= set(dir(nn_pkg))
    assert all(getattr(nn_pkg, name) is not None for name in nn_pkg.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = nn_pkg.nope
    # In a fresh interpreter: reached by attribute alone, and torch is not imported before
    # a name is asked for (the CLI's --help stays fast).
    code = (
        "import sys, innpar_freia.nn as n; assert 'torch' not in sys.modules; "
        "from innpar_freia.nn import build_inn; print(n.reference.ReleaseINNPAR.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ReleaseINNPAR"


def test_the_sequence_inn_refuses_conditions_it_would_drop() -> None:
    """FrEIA 0.2's SequenceINN ignores ``c`` when no module is conditional: the output
    did not depend on the conditions the caller passed, and nothing said so."""
    inn = build_inn(ModelConfig(blocks=2, features=2))
    x = torch.randn(3, 2, 16)
    for c in ([torch.randn(3, 4)], torch.randn(3, 4)):
        with pytest.raises(ValueError, match=r"takes no conditions .* but c was given"):
            inn(x, c=c)
    for empty in (None, [], ()):
        out, _ = inn(x, c=empty)
        assert out.shape == x.shape


def test_windows_on_another_device_than_the_weights_are_refused_by_name() -> None:
    """torch's own error comes from inside the first convolution and names no fix."""
    model = build_model(ModelConfig(blocks=2, features=2, window_length=16), seed=0)
    ppg = torch.randn(3, 16, device="meta")
    expected = r"tensor on cpu, the device of the model's weights, but got one on meta"
    with pytest.raises(ValueError, match=expected):
        model.ppg_to_abp(ppg)
