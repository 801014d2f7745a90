"""The experiment runner as a user meets it (an audit): an edited protocol never shows
numbers scored the old way under its new description, and every experiment file given to
``experiments/run.py`` is checked before the first one trains."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from innpar_freia.errors import ConfigError
from innpar_freia.experiments import load_experiment

ROOT = Path(__file__).resolve().parents[1]

# Two variants, one run each: seconds on a CPU.
EXPERIMENT = """
name = "mini"
[data]
file = "{data}"
[protocol]
test_folds = [0]
seeds = [1]
evaluate = ["test"]
checkpoints = ["best"]
calibration = "offset-scale"
[base]
preset = "tiny"
train = {{ epochs = 1, batch_size = 32 }}
[[variants]]
name = "a"
[[variants]]
name = "b"
train = {{ grad_weight = 0.5 }}
"""


def _script():
    spec = importlib.util.spec_from_file_location("run_script", ROOT / "experiments" / "run.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_data_that_is_both_imported_and_synthesised_is_refused(tmp_path: Path):
    """Only ``synth`` made the file; an ``import`` beside it was ignored without a word."""
    cfg = tmp_path / "mini.toml"
    cfg.write_text(
        EXPERIMENT.format(data=tmp_path / "made.h5").replace(
            "[protocol]",
            'import = ["bp-benchmark", "/somewhere"]\nsynth = { subjects = 10 }\n[protocol]',
        )
    )
    with pytest.raises(ConfigError, match="both 'import' and 'synth'; give one"):
        load_experiment(cfg)


def test_every_experiment_file_is_checked_before_the_first_trains(synth_file: Path, tmp_path: Path):
    """``run.py good.toml bad.toml`` trained the whole first experiment (hours, on a real
    config) before saying what was wrong with the second; two files of one experiment name
    wrote one results folder, the second rewriting the first's tables."""
    good = tmp_path / "good.toml"
    good.write_text(EXPERIMENT.format(data=synth_file))
    out = tmp_path / "out"
    cases = {
        "typo": (
            EXPERIMENT.format(data=synth_file)
            .replace('name = "mini"', 'name = "other"')
            .replace('name = "b"', 'name = "b"\ndescripton = "x"'),
            [],
            "variant 'b' has unknown key(s) ['descripton']",
        ),
        "same name": (
            EXPERIMENT.format(data=synth_file).replace('evaluate = ["test"]', 'evaluate = ["val"]'),
            [],
            "are both experiment 'mini', whose results go to",
        ),
        "no such variant": (
            EXPERIMENT.format(data=synth_file)
            .replace('name = "mini"', 'name = "other"')
            .replace('name = "a"', 'name = "c"'),
            ["--only", "a"],
            "variant(s) ['a'] are not in the experiment (it has c, b)",
        ),
    }
    script = _script()
    for case, (text, options, message) in cases.items():
        second = tmp_path / f"{case.replace(' ', '-')}.toml"
        second.write_text(text)
        args = [str(good), str(second), "--out", str(out), "--device", "cpu", *options]
        result = CliRunner().invoke(script.main, args)
        assert result.exit_code == 1, (case, result.output)
        assert message in result.output and "Traceback" not in result.output, case
        assert result.output.count("Error:") == 1, case
        assert not out.exists(), case  # nothing trained, nothing written
    # The same file twice is not refused: its second pass finds every run finished.
    result = CliRunner().invoke(
        script.main, [str(good), str(good), "--out", str(out), "--device", "cpu", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "mini" / "results.md").is_file()
