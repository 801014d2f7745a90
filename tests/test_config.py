"""Configuration: presets, TOML files, precedence, and errors that name the bad value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from innpar_freia.config import (
    ModelConfig,
    RunConfig,
    TrainConfig,
    load_run_config,
    preset_names,
    resolve_config,
)
from innpar_freia.errors import ConfigError


def test_paper_preset_is_the_release() -> None:
    cfg = resolve_config("paper")
    assert cfg.model == ModelConfig(blocks=4, features=16, kernel_size=5, coupling="innpar")
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.seed) == (1e-4, 128, 1)
    assert cfg.train.loss_region == "real"  # the one deliberate change of the default recipe
    assert resolve_config("paper-release").train.loss_region == "padded"
    assert ModelConfig.from_preset("paper").padded_length == 628


def test_innpar_plus_is_the_paper_network_with_the_validated_recipe() -> None:
    plus, paper = resolve_config("innpar-plus"), resolve_config("paper")
    assert plus.model == paper.model  # same network, same 372,340 parameters
    t = plus.train
    assert (t.lr, t.lr_schedule, t.warmup_epochs, t.grad_weight, t.epochs) == (
        1e-3,
        "cosine",
        2,
        0.25,
        40,
    )
    assert t.loss_region == "real"
    relu = resolve_config("innpar-plus-relu")
    assert relu.train == plus.train and relu.model.subnet == "mscm-relu"
    assert relu.model == ModelConfig(subnet="mscm-relu")  # otherwise the paper network
    pair = resolve_config("innpar-plus-pair")
    assert pair.model == paper.model
    assert pair.train == plus.train.replace(pair_weight=1.0, pair_calibration="offset-scale")
    pair3 = resolve_config("innpar-plus-pair3")
    assert pair3.model == paper.model
    assert pair3.train == pair.train.replace(pair_weight=3.0)


def test_a_shorter_run_shortens_the_presets_warm_up_but_not_an_explicit_one() -> None:
    assert resolve_config("innpar-plus", train={"epochs": 1}).train.warmup_epochs == 1
    assert resolve_config("innpar-plus", train={"epochs": 10}).train.warmup_epochs == 2
    with pytest.raises(ValueError, match="warmup_epochs"):
        resolve_config("innpar-plus", train={"epochs": 1, "warmup_epochs": 2})


def test_unknown_preset_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'papr'; available presets: .*paper"):
        ModelConfig.from_preset("papr")
    assert "paper" in preset_names()


def test_toml_overrides_preset_and_cli_overrides_toml(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "tiny"\n[model]\nblocks = 3\n[train]\nlr = 0.002\nepochs = 7\n')
    cfg = load_run_config(None, toml, train_overrides={"epochs": 9})
    assert cfg.preset == "tiny"
    assert cfg.model.blocks == 3 and cfg.model.features == 4  # tiny's features kept
    assert cfg.train.lr == 0.002 and cfg.train.epochs == 9


def test_toml_errors_are_clear(tmp_path: Path) -> None:
    bad_key = tmp_path / "k.toml"
    bad_key.write_text("[train]\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown train setting\(s\): learning_rate"):
        load_run_config(None, bad_key)
    bad_section = tmp_path / "s.toml"
    bad_section.write_text("[optimiser]\nlr = 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown top-level setting\(s\) in .*: optimiser"):
        load_run_config(None, bad_section)
    broken = tmp_path / "b.toml"
    broken.write_text("[train\nlr = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_run_config(None, broken)
    with pytest.raises(ConfigError, match="config file not found"):
        load_run_config(None, tmp_path / "missing.toml")
    for text in ('preset = "tiny"\ntrain = 3\n', 'model = "x"\n', "[[train]]\nepochs = 1\n"):
        not_a_table = tmp_path / "t.toml"
        not_a_table.write_text(text)
        with pytest.raises(ConfigError, match=r"in .*t\.toml must be a table"):
            load_run_config(None, not_a_table)
    # A wrong value in the file is found even when the command line replaces it.
    negative = tmp_path / "n.toml"
    negative.write_text("[train]\nepochs = -3\n")
    with pytest.raises(ConfigError, match=r"n\.toml: .*epochs"):
        load_run_config(None, negative, train_overrides={"epochs": 1})
    mismatch = tmp_path / "m.toml"
    mismatch.write_text('preset = "tiny"\n')
    with pytest.raises(ConfigError, match="contradicts preset 'tiny'"):
        load_run_config("paper", mismatch)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"lr": 0}, "lr must be > 0.0, but is: 0"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"loss_region": "all"}, "loss_region must be one of real, padded, but is: 'all'"),
        ({"abp_norm": "robust"}, "abp_norm must be one of minmax, zscore"),
        ({"warmup_epochs": 200}, "warmup_epochs must be >= 0 and <= 100, but is: 200"),
        ({"val_fold": 1}, "val_fold (--val-fold) is set but test_fold (--test-fold) is not"),
        ({"test_fold": 2, "val_fold": 2}, "val_fold must differ from test_fold"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
        ({"grad_weight": float("nan")}, "grad_weight must be a finite number"),
        ({"ppg_noise": -0.1}, "ppg_noise must be >= 0.0, but is: -0.1"),
        # Were a traceback of torch's ("value cannot be converted to type float without
        # overflow") once training began.
        ({"lr": 1e300}, "lr must be <= 1000, but is: 1e+300"),
        ({"weight_decay": 1e300}, "weight_decay must be <= 1000, but is: 1e+300"),
    ],
)
def test_invalid_training_settings(changes, needle) -> None:
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(changes)
    assert needle in str(err.value)


def test_run_config_round_trips_through_a_dict() -> None:
    cfg = resolve_config("tiny", model={"coupling": "glow"}, train={"epochs": 3})
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_numpy_numbers_are_taken_and_stored_as_plain_ones(tmp_path: Path) -> None:
    """The natural fold loop, ``for k in np.unique(info.fold)``, gives numpy integers: they
    were refused as "must be an integer, but is: np.int64(0)" (float32 as not a number)."""
    import json

    import torch

    cfg = resolve_config(
        "innpar-plus",
        model={"blocks": np.int64(3), "clamp": np.float32(0.5)},
        train={
            "test_fold": np.int64(0),
            "epochs": np.int32(1),
            "keep_checkpoints": [np.int64(1)],
            "lr": np.float64(1e-3),  # a float subclass, which weights_only refuses all the same
        },
    )
    assert (cfg.model.blocks, cfg.train.test_fold, cfg.train.keep_checkpoints) == (3, 0, (1,))
    assert type(cfg.model.blocks) is int and type(cfg.train.test_fold) is int
    assert type(cfg.model.clamp) is float and cfg.model.clamp == 0.5
    assert type(cfg.train.lr) is float and cfg.train.lr == 1e-3
    assert type(cfg.train.keep_checkpoints[0]) is int
    # A numpy epochs shortens the preset's warm-up as an int does.
    assert cfg.train.warmup_epochs == 1
    # Plain values only: JSON and a checkpoint read with weights_only take them back.
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    torch.save(cfg.to_dict(), tmp_path / "cfg.pt")
    assert RunConfig.from_dict(torch.load(tmp_path / "cfg.pt", weights_only=True)) == cfg


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"epochs": np.float32(2.5)}, "epochs must be an integer, but is: 2.5"),
        ({"lr": np.float32("nan")}, "lr must be a finite number, but is: nan"),
        ({"amp": np.int64(1)}, "amp must be true or false, but is: 1"),
    ],
)
def test_numpy_numbers_are_still_checked(changes, needle) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(changes)
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"preset": "bogus"}, "unknown preset 'bogus'; available presets: innpar-plus,"),
        ({"preset": 3}, "preset must be a name, but is: 3"),
        ({"model": {"blocks": 2}}, "model must be a ModelConfig (ModelConfig.from_dict(...) makes"),
        ({"train": {"epochs": 2}}, "train must be a TrainConfig (TrainConfig.from_dict(...) makes"),
    ],
)
def test_a_run_config_built_directly_is_checked_as_from_dict_checks_it(kw, message) -> None:
    """RunConfig(preset="bogus") was accepted (from_dict refused it), and a dict of model
    settings was "'dict' object has no attribute 'arch'"."""
    with pytest.raises(ConfigError) as err:
        RunConfig(**kw)
    assert message in str(err.value)


def test_replace_that_ends_a_run_inside_the_presets_warm_up_says_what_to_set() -> None:
    """resolve_config shortens a preset's warm-up for a shorter run; .replace() cannot tell
    it from one the caller chose, and said only "must be >= 0 and <= 1, but is: 2"."""
    plus = TrainConfig.from_preset("innpar-plus")
    with pytest.raises(ConfigError) as err:
        plus.replace(epochs=1)
    assert str(err.value) == (
        "warmup_epochs must be >= 0 and <= 1, but is: 2 (the warm-up must end within the "
        "run's 1 epoch(s): set warmup_epochs to at most 1 along with epochs)"
    )
    assert plus.replace(epochs=1, warmup_epochs=1).warmup_epochs == 1
