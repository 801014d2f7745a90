"""Tests that pin what a mutation audit of the U-Net baseline (innpar_freia.nn.unet: its
layers and their widths and kernels, the zero padding to a multiple of ``2**depth``, the
configured second channel, its refusals of the reverse pass, how ``build_model`` builds
it from the config) and of the training data plumbing (innpar_freia.data.dataset: the
preloaded loader's device and length, the lazy dataset's items) found unguarded: each
one fails when the bug named in its docstring is put into the package. The U-Net's
forward computation itself is pinned by ``test_mutants_nn.py`` (written out by hand), the
normalisation, splits and lazy dataset by ``test_mutants_splits.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from innpar_freia.config import ModelConfig
from innpar_freia.data.dataset import Normalisation, PreloadedLoader, WindowDataset
from innpar_freia.nn.model import build_model, count_parameters, second_channel

# ---- UNet1D / UNetBaseline: architecture -----------------------------------------------


def test_the_unet_s_convolutions_by_hand() -> None:
    """Bugs: the configured ``kernel_size`` not passed on (every U-Net got the default 5),
    the bottom or the up blocks built with another kernel, or the channels not doubling at
    the bottom (``features * 2**depth``). The hand-written forward of test_mutants_nn
    takes its kernels and widths from the modules, so it passes any of these. By hand for
    features 2, depth 2, kernel 3: widths 2, 4 and 8 at the bottom; 1x1 reductions and
    head."""
    cfg = ModelConfig(arch="unet", features=2, unet_depth=2, kernel_size=3)
    model = build_model(cfg, seed=0)
    shapes = [
        (name, tuple(m.weight.shape))
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv1d)
    ]
    assert shapes == [
        ("net.down.0.0", (2, 2, 3)),
        ("net.down.0.3", (2, 2, 3)),
        ("net.down.1.0", (4, 2, 3)),
        ("net.down.1.3", (4, 4, 3)),
        ("net.bottom.0", (8, 4, 3)),
        ("net.bottom.3", (8, 8, 3)),
        ("net.up.0.0", (4, 8, 3)),
        ("net.up.0.3", (4, 4, 3)),
        ("net.up.1.0", (2, 4, 3)),
        ("net.up.1.3", (2, 2, 3)),
        ("net.reduce.0", (4, 8, 1)),
        ("net.reduce.1", (2, 4, 1)),
        ("net.head", (2, 2, 1)),
    ]


def test_the_unet_preset_has_the_readme_s_258k_parameters() -> None:
    """Bugs: the preset's U-Net built narrower or shallower than the one whose results
    the README reports ("258k parameters"): e.g. no doubling at the bottom, a depth or
    kernel from somewhere else than the preset. Counted once: 258,426."""
    assert count_parameters(build_model(ModelConfig.from_preset("unet"), seed=0)) == 258_426


def test_the_unet_pads_to_the_next_multiple_of_2_to_the_depth_and_no_further() -> None:
    """Bug: ``(L // m + 1) * m`` for the ceiling: 625 samples still pad to 640 at depth 4,
    but a window already a multiple of 16 (64 samples) was padded by a further 16 zeros
    that the network then saw as part of every window."""
    for length, padded in ((64, 64), (65, 80), (625, 640)):
        model = build_model(ModelConfig(arch="unet", features=2, window_length=length), seed=0)
        assert model.padded_length == padded
        x = model.make_input(torch.randn(2, length))
        assert x.shape == (2, 2, padded)
        assert model.ppg_to_abp(torch.randn(2, length)).shape == (2, length)


@pytest.mark.parametrize("kind", ["zeros", "copy", "gradient-onesided"])
def test_the_unet_uses_the_configured_second_channel(kind: str) -> None:
    """Bug: the U-Net's ``make_input`` computing the release's gradient whatever
    ``second_channel`` says (ModelConfig documents that the U-Net uses it; training builds
    its targets with the same ``make_input``), so an ablation of the second channel
    trained the same U-Net under another name."""
    model = build_model(ModelConfig(arch="unet", features=2, unet_depth=2, second_channel=kind))
    ppg = torch.randn(3, 625)
    x = model.make_input(ppg)
    assert torch.equal(x[:, 1, :625], second_channel(ppg.unsqueeze(1), kind)[:, 0])
    assert not torch.equal(x[:, 1, :625], second_channel(ppg.unsqueeze(1), "gradient")[:, 0])


def test_the_unet_refuses_the_reverse_pass_and_abp_to_ppg() -> None:
    """Bugs: ``forward(rev=True)`` or ``abp_to_ppg`` answering with the forward pass (a
    PPG "reconstructed" by the ABP network, without a word), or their messages no longer
    saying that the U-Net has no inverse."""
    model = build_model(ModelConfig(arch="unet", features=2, unet_depth=2), seed=0)
    x = model.make_input(torch.randn(2, 625))
    with pytest.raises(ValueError, match="the U-Net baseline is not invertible: it has no reverse"):
        model(x, rev=True)
    with pytest.raises(ValueError, match="the U-Net baseline is not invertible: it cannot map"):
        model.abp_to_ppg(torch.randn(2, 625))


def test_build_model_seeds_the_unet_without_touching_the_caller_s_generator() -> None:
    """Bug: ``build_model`` building the U-Net outside ``_seeded``: its weights came from
    the global generator, so ``seed`` was ignored (two runs of one seed differed) and the
    caller's random stream was advanced."""
    cfg = ModelConfig(arch="unet", features=2, unet_depth=2)
    state = torch.get_rng_state()
    a, b = build_model(cfg, seed=1).state_dict(), build_model(cfg, seed=1).state_dict()
    c = build_model(cfg, seed=2).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# ---- PreloadedLoader ---------------------------------------------------------------------


def _dataset(synth_file: Path) -> WindowDataset:
    return WindowDataset(synth_file, np.arange(9), Normalisation("minmax", 80.0, 20.0))


def test_the_preloaded_windows_live_on_the_training_device(synth_file: Path) -> None:
    """Bug: the preloaded PPG or ABP left in host memory (``.to(device)`` dropped): the
    results are the same, since the loop moves each batch, but the per-batch host-to-device
    copies the preload exists to avoid come back. The meta device stands in for a GPU;
    the file rows stay on the host, where the training loop indexes its subject codes."""
    loader = PreloadedLoader(_dataset(synth_file), 4, torch.device("meta"))
    assert loader.ppg.device.type == loader.abp.device.type == "meta"
    ppg, abp, rows = next(iter(loader))
    assert ppg.device.type == abp.device.type == "meta" and ppg.shape[0] == 4
    assert rows.device.type == "cpu" and rows.tolist() == [0, 1, 2, 3]


def test_the_preloaded_loader_counts_the_batches_of_its_sampler(synth_file: Path) -> None:
    """Bug: ``len`` counting the batches of the whole split rather than of the sampler (a
    DDP rank's share): the logged training loss, the sum over the batches divided by
    ``len``, came out too small by the number of ranks. Only a 60-s two-process DDP test
    caught it before. 9 windows, a sampler of 5 in batches of 2: 3 batches."""
    order = [8, 1, 5, 0, 3]
    loader = PreloadedLoader(_dataset(synth_file), 2, torch.device("cpu"), order)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [r for b in batches for r in b[2].tolist()] == order


def test_an_item_is_two_windows_and_its_file_row_as_a_scalar(synth_file: Path) -> None:
    """Bug: ``__getitem__`` returning the row as a one-element tensor (``rows`` for
    ``rows[0]``): equality and ``int()`` still work, but the documented item is ``(ppg,
    abp, index)`` with a scalar index, and a default collate of such items gives rows of
    shape ``(batch, 1)``. The DataLoader takes ``__getitems__``, so only direct indexing
    showed it."""
    ds = WindowDataset(synth_file, np.array([7, 2, 9]), Normalisation("minmax", 80.0, 20.0))
    ppg, abp, row = ds[1]
    length = ds._file()["ppg"].shape[1]
    assert ppg.shape == abp.shape == (length,) and ppg.dtype == abp.dtype == torch.float32
    assert row.shape == () and row.dtype == torch.int64 and int(row) == 2
    batched = ds.__getitems__([1])[0]
    assert all(torch.equal(a, b) for a, b in zip((ppg, abp, row), batched, strict=True))
    ds.close()


def test_a_unet_too_deep_for_its_windows_is_refused_and_the_deepest_allowed_trains_on_one():
    """Found by the audit: halved down to 1 sample at the bottom (window_length <=
    2**unet_depth, e.g. 250-sample windows at depth 8), batch normalisation of a batch of
    one window fails in training ("Expected more than 1 value per channel"), so a last
    batch of one ended a run. The configuration is refused, naming the deepest that fits;
    at that depth a batch of one trains."""
    from innpar_freia.errors import ConfigError

    with pytest.raises(ConfigError, match="with 250-sample windows unet_depth must be at most 7"):
        ModelConfig(arch="unet", window_length=250, unet_depth=8)
    with pytest.raises(ConfigError, match="16-sample windows unet_depth must be at most 3"):
        ModelConfig(arch="unet", window_length=16, unet_depth=4)
    ModelConfig(arch="innpar", window_length=16)  # no U-Net: no bottom
    model = build_model(ModelConfig(arch="unet", window_length=17, unet_depth=4, features=4))
    model.train()
    out, _ = model(model.make_input(torch.randn(1, 17)))
    out.sum().backward()
    assert torch.isfinite(out).all()
