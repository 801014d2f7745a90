"""Tests that pin what a mutation audit of the configuration (innpar_freia.config: the
presets field by field, the defaults they build on, the bounds of every setting, the
precedence preset < TOML < command line, TOML reading and its errors) found unguarded: each
one fails when the bug named in its docstring is put into the package.

Expected values are written out by hand from the README ("Training"), the reference of the
published method (shared/docs/innpar-reference.md) and the presets' own descriptions as
``innpar presets`` prints them, never computed by the code under test."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from innpar_freia.config import (
    ModelConfig,
    RunConfig,
    TrainConfig,
    invertible_preset_names,
    load_run_config,
    load_toml,
    resolve_config,
)
from innpar_freia.errors import ConfigError

# The release's network (reference, "Network"): 4 blocks of 1x1 conv + the INN-PAR coupling
# with its 0.8 soft clamp, MSCMs of 16 features and kernel 5 with one ReLU, the central
# difference as second channel, 5-s windows at 125 Hz; no post-processing low-pass.
PAPER_MODEL = {
    "arch": "innpar",
    "blocks": 4,
    "features": 16,
    "kernel_size": 5,
    "coupling": "innpar",
    "invertible_1x1": True,
    "second_channel": "gradient",
    "subnet": "mscm",
    "clamp": 0.8,
    "unet_depth": 4,
    "output_lowpass_hz": 0.0,
    "fs": 125.0,
    "window_length": 625,
}
# README, Training: `paper` is L1 on both output channels (equal weight), Adam 1e-4, 100
# epochs, batch 128, seed 1, loss on the real samples; everything else off (no weight decay,
# no schedule, no clipping, no EMA, no extra losses, no noise, no paired sampling, minmax ABP).
PAPER_TRAIN = {
    "epochs": 100,
    "batch_size": 128,
    "lr": 1e-4,
    "weight_decay": 0.0,
    "seed": 1,
    "loss_region": "real",
    "grad_weight": 1.0,
    "diff_weight": 0.0,
    "extremes_weight": 0.0,
    "inverse_weight": 0.0,
    "pair_weight": 0.0,
    "pair_calibration": "offset-scale",
    "pair_pp": "range",
    "pair_extremes_weight": 0.0,
    "ppg_noise": 0.0,
    "paired_sampling": False,
    "subject_group": 2,
    "abp_norm": "minmax",
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "grad_clip": 0.0,
    "early_stopping": 0,
    "ema_decay": 0.0,
    "test_fold": None,
    "val_fold": None,
    "device": "auto",
    "num_workers": 0,
    "preload": "auto",
    "amp": False,
    "compile": False,
    "keep_checkpoints": (),
}
# README: innpar-plus = lr 1e-3, 2 warm-up epochs, cosine over 40 epochs, grad weight 0.25.
PLUS = {"epochs": 40, "lr": 1e-3, "warmup_epochs": 2, "lr_schedule": "cosine", "grad_weight": 0.25}
EXPECTED = {
    "paper": ({}, {}),
    "paper-release": ({}, {"loss_region": "padded"}),
    "innpar-plus": ({}, PLUS),
    "innpar-plus-relu": ({"subnet": "mscm-relu"}, PLUS),
    "innpar-plus-pair": ({}, {**PLUS, "pair_weight": 1.0, "pair_calibration": "offset-scale"}),
    "innpar-plus-pair3": ({}, {**PLUS, "pair_weight": 3.0, "pair_calibration": "offset-scale"}),
    # "1-D U-Net baseline (4 levels from 8 channels)"; cv_c2015.toml: lr 1e-3.
    "unet": ({"arch": "unet", "features": 8, "kernel_size": 5, "unet_depth": 4}, {"lr": 1e-3}),
    # "2 blocks, 4 features, kernel 3: for tests and smoke runs": 5 epochs of batch 32 at 1e-3.
    "tiny": (
        {"blocks": 2, "features": 4, "kernel_size": 3},
        {"epochs": 5, "batch_size": 32, "lr": 1e-3},
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_preset_is_pinned_in_every_setting(name: str) -> None:
    """Guards against a changed default of any setting (paper's clamp 0.8, the gradient
    channel, the plain MSCM, grad weight 1, minmax ABP, paired sampling off, ...) and against
    a changed value in the unet or tiny preset (features, depth, lr, epochs, batch size):
    the existing tests compared only a few fields, or a preset with another preset."""
    model, train = EXPECTED[name]
    cfg = resolve_config(name).to_dict()
    assert cfg["model"] == {**PAPER_MODEL, **model}
    assert cfg["train"] == {**PAPER_TRAIN, **train}


def test_the_set_of_presets_is_the_documented_one() -> None:
    """Guards against a preset added or dropped without its pinned values here, and against
    the U-Net counted among the invertible presets (it has no inverse to check)."""
    assert set(invertible_preset_names()) == set(EXPECTED) - {"unet"}


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"epochs": True}, "epochs must be an integer, but is: True"),
        ({"lr": True}, "lr must be a finite number, but is: True"),
        ({"lr": float("inf")}, "lr must be a finite number, but is: inf"),
        ({"weight_decay": -1e-4}, "weight_decay must be >= 0.0"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"seed": 2**63}, "seed must be >= 0 and <= 9223372036854775807"),
        ({"diff_weight": -1.0}, "diff_weight must be >= 0.0"),
        ({"extremes_weight": -1.0}, "extremes_weight must be >= 0.0"),
        ({"inverse_weight": -1.0}, "inverse_weight must be >= 0.0"),
        ({"pair_weight": -1.0}, "pair_weight must be >= 0.0"),
        ({"pair_extremes_weight": -1.0}, "pair_extremes_weight must be >= 0.0"),
        ({"pair_calibration": "scale"}, "pair_calibration must be one of offset, offset-scale"),
        ({"pair_pp": "median"}, "pair_pp must be one of range, peaks"),
        ({"pair_pp": "peaks", "pair_calibration": "offset"}, "only pair_calibration"),
        ({"paired_sampling": "yes"}, "paired_sampling must be true or false"),
        ({"subject_group": 1}, "subject_group must be >= 2, but is: 1"),
        (
            {"paired_sampling": True, "subject_group": 5, "batch_size": 4},
            "subject_group (5) must not exceed batch_size (4)",
        ),
        ({"lr_schedule": "step"}, "lr_schedule must be one of constant, cosine"),
        ({"grad_clip": -1.0}, "grad_clip must be >= 0.0"),
        ({"early_stopping": -1}, "early_stopping must be >= 0"),
        ({"ema_decay": -0.5}, "ema_decay must be >= 0.0"),
        ({"ema_decay": 1.0}, "ema_decay must be < 1, but is: 1.0"),
        ({"test_fold": -1}, "test_fold must be >= 0"),
        ({"test_fold": 1001}, "test_fold must be >= 0 and <= 1000"),
        ({"test_fold": 0, "val_fold": -2}, "val_fold must be >= -1"),
        ({"test_fold": 0, "val_fold": 1001}, "val_fold must be >= -1 and <= 1000, but is: 1001"),
        ({"num_workers": -1}, "num_workers must be >= 0"),
        ({"num_workers": 257}, "num_workers must be >= 0 and <= 256"),
        ({"preload": "sometimes"}, "preload must be one of auto, always, never"),
        ({"amp": 1}, "amp must be true or false, but is: 1"),
        ({"compile": "no"}, "compile must be true or false"),
        ({"keep_checkpoints": 5}, "keep_checkpoints must be a list of epochs, but is: 5"),
        ({"keep_checkpoints": [10, 0]}, "keep_checkpoints entry must be >= 1, but is: 0"),
    ],
)
def test_every_training_setting_is_checked(changes, needle) -> None:
    """Guards against a dropped or loosened check of a training setting (negative weights,
    decays, clip, workers; an out-of-range seed or fold; a bool taken for a number; an EMA
    decay of 1 that never moves the weights; peaks without a scale; a subject group larger
    than the batch)."""
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(changes)
    assert needle in str(err.value)


def test_the_edges_of_the_training_ranges_are_allowed() -> None:
    """Guards against off-by-one bounds: val_fold -1 (train on all folds but the test fold),
    a subject group as large as the batch, a group larger than the batch when paired
    sampling is off (it is then unused), the largest seed, an EMA decay just below 1; and
    against a TOML list of kept epochs staying a list (unhashable config)."""
    TrainConfig(test_fold=0, val_fold=-1)
    TrainConfig(test_fold=1000, val_fold=1000 - 1)
    TrainConfig(test_fold=0, val_fold=1000)
    TrainConfig(paired_sampling=True, subject_group=4, batch_size=4)
    TrainConfig(paired_sampling=False, subject_group=8, batch_size=4)
    TrainConfig(seed=2**63 - 1, ema_decay=0.999)
    kept = TrainConfig.from_dict({"keep_checkpoints": [5, 10]})
    assert kept.keep_checkpoints == (5, 10)
    hash(kept)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"kernel_size": 103}, "kernel_size must be >= 1 and <= 101, but is: 103"),
        ({"unet_depth": 0}, "unet_depth must be >= 1 and <= 8, but is: 0"),
        ({"unet_depth": 9}, "unet_depth must be >= 1 and <= 8, but is: 9"),
        ({"output_lowpass_hz": -1.0}, "output_lowpass_hz must be >= 0.0"),
        ({"fs": 0.0}, "fs must be > 0.0, but is: 0.0"),
        ({"fs": "125"}, "fs must be a finite number, but is: '125'"),
        ({"invertible_1x1": 1}, "invertible_1x1 must be true or false, but is: 1"),
        ({"window_length": 1_000_001}, "window_length must be >= 8 and <= 1000000"),
    ],
)
def test_every_model_setting_is_checked(changes, needle) -> None:
    """Guards against a dropped or loosened bound of a model setting (the kernel's upper
    bound, the U-Net depth, a negative low-pass, a zero rate, 1 taken for true)."""
    with pytest.raises(ConfigError) as err:
        ModelConfig.from_dict(changes)
    assert needle in str(err.value)
    ModelConfig(kernel_size=101)
    ModelConfig(arch="unet", kernel_size=101, unet_depth=8, window_length=625)
    ModelConfig(arch="unet", unet_depth=1)


def test_the_low_pass_must_stay_below_nyquist() -> None:
    """Guards against the Nyquist check letting the cut-off equal fs/2 (``>`` for ``>=``) or
    comparing it with fs instead of fs/2."""
    with pytest.raises(ConfigError, match=r"below the Nyquist frequency 62\.5 Hz"):
        ModelConfig(output_lowpass_hz=62.5).check_rate()
    with pytest.raises(ConfigError, match=r"below the Nyquist frequency 62\.5 Hz"):
        ModelConfig(output_lowpass_hz=100.0).check_rate()
    ModelConfig(output_lowpass_hz=62.4).check_rate()
    ModelConfig(output_lowpass_hz=100.0, fs=250.0).check_rate()


def test_the_low_pass_needs_a_window_longer_than_its_padding() -> None:
    """Guards against a low-pass on windows of 8-15 samples being built: the 4th-order
    zero-phase filter pads a window by 15 samples, and every prediction then failed in
    scipy ("greater than padlen, which is 15")."""
    import numpy as np

    from innpar_freia.nn.model import postprocess_abp

    for length in (8, 15):
        with pytest.raises(ConfigError, match=rf"at least 16 samples; window_length is {length}"):
            ModelConfig(window_length=length, output_lowpass_hz=10.0)
    ModelConfig(window_length=8)  # no low-pass: no padding
    shortest = ModelConfig(window_length=16, output_lowpass_hz=10.0)
    assert postprocess_abp(np.zeros((2, 16)), shortest).shape == (2, 16)


def test_dict_plumbing_refuses_what_it_cannot_use() -> None:
    """Guards against a non-table section accepted, ``replace`` forgetting the other
    settings, a U-Net with an inverse loss accepted, a preset that is not a name, an
    unknown top-level key of a saved run, and a saved run without a preset read as another
    preset than paper."""
    with pytest.raises(ConfigError, match=r"\[train\] must be a table of settings"):
        TrainConfig.from_dict([("lr", 1e-3)])  # type: ignore[arg-type]
    tiny = TrainConfig.from_preset("tiny")
    assert tiny.replace(seed=7).to_dict() == {**tiny.to_dict(), "seed": 7}
    with pytest.raises(ConfigError, match="U-Net baseline has no inverse pass"):
        resolve_config("unet", train={"inverse_weight": 0.5})
    with pytest.raises(ConfigError, match="preset must be a name, but is: 3"):
        resolve_config(3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"unknown top-level setting\(s\): data"):
        RunConfig.from_dict({"preset": "paper", "data": {}})
    assert RunConfig.from_dict({"train": {"epochs": 3}}).preset == "paper"
    assert RunConfig.from_dict({"train": {"epochs": 3}}).model.blocks == 4


def test_a_wrongly_typed_epochs_is_a_config_error_not_a_crash() -> None:
    """Guards against the warm-up shortening comparing a non-integer ``epochs`` (a string
    from a hand-edited file, a bool) with the preset's warm-up before validation: the user
    must get the message naming ``epochs``, not a TypeError."""
    for bad in ("5", True, 0):
        with pytest.raises(ConfigError, match="epochs must be"):
            resolve_config("innpar-plus", train={"epochs": bad})


def test_toml_reading_handles_encodings(tmp_path: Path) -> None:
    """Guards against the byte-order mark left in (tomllib refuses it at line 1, column 1)
    and against a file in another encoding read as Latin-1 instead of refused as not UTF-8."""
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b'\xef\xbb\xbfpreset = "tiny"\r\n[train]\r\nepochs = 3\r\n')
    assert load_toml(bom) == {"preset": "tiny", "train": {"epochs": 3}}
    utf16 = tmp_path / "u16.toml"
    utf16.write_bytes('preset = "tiny"\n'.encode("utf-16"))
    with pytest.raises(ConfigError, match=r"u16\.toml is not UTF-8 text"):
        load_toml(utf16)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'description = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin\.toml is not UTF-8 text \(byte 18"):
        load_toml(latin)


def test_toml_top_level_and_data_settings(tmp_path: Path) -> None:
    """Guards against an unknown top-level table (``[data]``) accepted, ``description``
    refused, and ``fs`` or ``window_length`` in [model] silently replaced by the data's."""
    data = tmp_path / "d.toml"
    data.write_text('preset = "tiny"\n[data]\nfs = 125\n')
    with pytest.raises(ConfigError, match=r"unknown top-level setting\(s\) in .*: data"):
        load_run_config(None, data)
    described = tmp_path / "x.toml"
    described.write_text('preset = "tiny"\ndescription = "why"\n')
    assert load_run_config(None, described).preset == "tiny"
    for key, value in (("fs", "250.0"), ("window_length", "1250")):
        rate = tmp_path / f"{key}.toml"
        rate.write_text(f'preset = "tiny"\n[model]\n{key} = {value}\n')
        with pytest.raises(ConfigError, match=f"{key} in \\[model\\] of .*: the network takes"):
            load_run_config(None, rate)


def test_command_line_beats_toml_for_the_model_and_the_preset(tmp_path: Path) -> None:
    """Guards against model options of the command line dropped under a TOML file, against
    a preset given only on the command line ignored (the default used instead), and against
    the default preset not being innpar-plus-pair3 when neither names one."""
    toml = tmp_path / "c.toml"
    toml.write_text("[model]\nblocks = 3\nfeatures = 8\n")
    cfg = load_run_config("tiny", toml, model_overrides={"blocks": 5})
    assert cfg.preset == "tiny"
    assert (cfg.model.blocks, cfg.model.features, cfg.model.kernel_size) == (5, 8, 3)
    assert cfg.train.epochs == 5  # tiny's
    plain = load_run_config(None, None)
    assert plain.preset == "innpar-plus-pair3" and plain.train.pair_weight == 3.0
    # The file alone must be valid even when the command line replaces its bad value.
    bad = tmp_path / "b.toml"
    bad.write_text("[model]\nblocks = 0\n")
    with pytest.raises(ConfigError, match=r"b\.toml: blocks must be >= 1"):
        load_run_config(None, bad, model_overrides={"blocks": 2})


def test_every_documented_choice_is_accepted() -> None:
    """Guards against a documented choice dropped from its list (the ``copy`` second
    channel, the ``mscm-global`` subnet, a coupling, a device, a preload mode)."""
    for arch in ("innpar", "unet"):
        ModelConfig(arch=arch)
    for coupling in ("innpar", "glow", "rnvp", "allinone"):
        ModelConfig(coupling=coupling)
    for channel in ("gradient", "gradient-onesided", "zeros", "copy"):
        ModelConfig(second_channel=channel)
    for subnet in ("mscm", "mscm-relu", "mscm-global"):
        ModelConfig(subnet=subnet)
    for device in ("auto", "cpu", "cuda"):
        TrainConfig(device=device)
    for preload in ("auto", "always", "never"):
        TrainConfig(preload=preload)
    for norm, region, schedule in (("minmax", "real", "constant"), ("zscore", "padded", "cosine")):
        TrainConfig(abp_norm=norm, loss_region=region, lr_schedule=schedule)
    TrainConfig(pair_calibration="offset", pair_pp="range")
    TrainConfig(pair_calibration="offset-scale", pair_pp="peaks")


def test_padding_rounds_up_to_a_multiple_of_four_only_when_needed() -> None:
    """Guards against padding a length that is already a multiple of 4 by another 4
    (628 -> 632), which would change the network's input size for such windows."""
    for length, padded in ((625, 628), (628, 628), (8, 8), (9, 12), (1250, 1252)):
        assert ModelConfig(window_length=length).padded_length == padded


def test_resolving_leaves_the_callers_settings_alone() -> None:
    """Guards against the warm-up shortening writing ``warmup_epochs`` into the caller's
    dict: the same options reused for a preset without warm-up would then carry it."""
    train = {"epochs": 1}
    assert resolve_config("innpar-plus", train=train).train.warmup_epochs == 1
    assert train == {"epochs": 1}


def test_the_file_alone_is_checked_under_its_own_preset(tmp_path: Path) -> None:
    """Guards against the stand-alone check of a TOML file using the default preset instead
    of the file's: an inverse loss in a U-Net file is wrong even when the command line
    sets it to 0 for this run."""
    toml = tmp_path / "u.toml"
    toml.write_text('preset = "unet"\n[train]\ninverse_weight = 0.5\n')
    with pytest.raises(ConfigError, match=r"u\.toml: inverse_weight is 0\.5, but the U-Net"):
        load_run_config(None, toml, train_overrides={"inverse_weight": 0.0})


def test_a_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    """Guards against the TOML syntax error losing the path of the file it is in."""
    broken = tmp_path / "broken-one.toml"
    broken.write_text("[train\n")
    with pytest.raises(ConfigError, match=r"config file .*broken-one\.toml is not valid TOML"):
        load_toml(broken)


@pytest.mark.parametrize(
    ("model", "named"),
    [
        ({"blocks": 8}, "blocks = 8 is a setting of the invertible network"),
        ({"coupling": "glow"}, "coupling = 'glow' is a setting of the invertible network"),
        ({"invertible_1x1": False}, "invertible_1x1 = False is a setting"),
        ({"subnet": "mscm-global"}, "subnet = 'mscm-global' is a setting"),
        ({"clamp": 2.0}, "clamp = 2.0 is a setting"),
        (
            {"blocks": 2, "clamp": 0.5},
            "blocks = 2 and clamp = 0.5 are settings of the invertible network, which arch "
            "'unet' does not build: leave them at the default (blocks = 4, clamp = 0.8)",
        ),
    ],
)
def test_a_unet_refuses_settings_only_the_invertible_network_acts_on(
    model: dict, named: str, tmp_path: Path
) -> None:
    """Bug: the U-Net baseline took blocks, coupling, invertible_1x1, subnet and clamp and
    trained the same U-Net as without them: a user who set them expected them to act."""
    with pytest.raises(ConfigError, match=re.escape(named)):
        resolve_config("unet", model=model)
    with pytest.raises(ConfigError, match=re.escape(named)):
        ModelConfig(arch="unet", **model)
    toml = tmp_path / "u.toml"
    settings = "".join(f"{key} = {json.dumps(value)}\n" for key, value in model.items())
    toml.write_text(f'preset = "unet"\n[model]\n{settings}')  # JSON's are TOML's values here
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_run_config(None, toml)


def test_the_invertible_network_refuses_the_unet_s_depth() -> None:
    """arch 'innpar' took unet_depth and built the same network without it; a stored
    invertible run's unet_depth (it never acted) is read at its default."""
    from innpar_freia.config import stored_model_table

    refusal = (
        "unet_depth = 2 is a setting of the U-Net baseline, which arch 'innpar' does not "
        "build: leave it at the default (unet_depth = 4), as every invertible preset does, or "
        "use arch 'unet'"
    )
    with pytest.raises(ConfigError, match=re.escape(refusal)):
        resolve_config("paper", model={"unet_depth": 2})
    stored = {**resolve_config("paper").model.to_dict(), "unet_depth": 2}
    assert ModelConfig.from_dict(stored_model_table(stored)).unet_depth == 4
    assert resolve_config("unet", model={"unet_depth": 2}).model.unet_depth == 2


def test_a_unet_from_an_invertible_preset_says_what_the_preset_set() -> None:
    """arch 'unet' over the tiny preset: its 2 blocks are named, with the way out; what the
    U-Net does use (features, kernel_size, unet_depth, second_channel) is taken."""
    with pytest.raises(ConfigError, match=r"^blocks = 2 is a setting .* as the 'unet' preset"):
        resolve_config("tiny", model={"arch": "unet"})
    cfg = resolve_config(
        "unet", model={"features": 4, "kernel_size": 3, "unet_depth": 2, "second_channel": "zeros"}
    )
    assert cfg.model.arch == "unet" and cfg.model.features == 4
    assert resolve_config("paper", model={"arch": "innpar", "blocks": 8}).model.blocks == 8


def test_every_shipped_preset_and_experiment_config_still_loads() -> None:
    """The refusal above must not catch what ships: each preset resolves, and each variant
    of every experiments/configs/*.toml (its preset with its model and train tables)."""
    from innpar_freia.config import preset_names
    from innpar_freia.experiments import load_experiment

    for name in preset_names():
        assert resolve_config(name).preset == name
    root = Path(__file__).resolve().parents[1]
    configs = sorted((root / "experiments" / "configs").glob("*.toml"))
    assert configs
    for config in configs:
        for variant in load_experiment(config).variants:
            resolve_config(variant.preset, variant.model, variant.train)
