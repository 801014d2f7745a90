"""The experiment runner as a user meets it (an audit): an edited protocol never shows
numbers scored the old way under its new description, and every experiment file given to
``experiments/run.py`` is checked before the first one trains."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

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
