"""Tests that pin what a mutation audit of the experiment runner's configuration
(innpar_freia.experiments: reading and checking an experiment's TOML file, its variants,
``reuse`` and ``[[extra_eval]]``, the runs it plans and where they live) found unguarded:
each one fails when the bug named in its docstring is put into the package.

Expected values are written out by hand from the module's docstring (the experiment file
format) and experiments/configs/, never computed by the code under test. Nothing here trains
or reads data: every file is only loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from innpar_freia.errors import ConfigError
from innpar_freia.experiments import load_experiment

HEAD = 'name = "x"\n[data]\nfile = "f.h5"\n'


def load(tmp_path: Path, text: str):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(text)
    return load_experiment(cfg)


def refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


# --------------------------------------------------------------------------------------
# [protocol]
# --------------------------------------------------------------------------------------


def test_seed_zero_is_a_seed(tmp_path: Path):
    """Seeds start at 0 (">= 0" in the message): a check of ">= 1" refused seeds = [0]."""
    exp = load(tmp_path, f"{HEAD}[protocol]\nseeds = [0, 3]\ntest_folds = [0]\n[base]\n")
    assert exp.protocol["seeds"] == [0, 3]
    assert exp.protocol["test_folds"] == [0]


@pytest.mark.parametrize("key", ["test_folds", "seeds", "evaluate", "checkpoints"])
def test_an_empty_protocol_list_is_refused(tmp_path: Path, key: str):
    """An empty list of test folds or seeds planned no run at all, and an empty evaluate or
    checkpoints scored nothing: the runner 'finished' with an empty table, without a word."""
    refused(tmp_path, f"{HEAD}[protocol]\n{key} = []\n[base]\n", f"protocol {key} must be a list")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("seeds = [true, 2]", "seeds must be a list of distinct integers"),
        ("test_folds = [false, 1]", "test_folds must be a list of distinct integers"),
        ("val_fold = true", "val_fold must be"),
    ],
)
def test_a_boolean_is_not_a_fold_or_seed(tmp_path: Path, setting: str, message: str):
    """TOML's true is a Python int (1): without the bool check, seeds = [true] ran seed 1 and
    val_fold = true validated on fold 1, while the file said something else."""
    refused(tmp_path, f"{HEAD}[protocol]\n{setting}\n[base]\n", message)


def test_seeds_true_is_not_the_default_seed(tmp_path: Path):
    """seeds = [true] compared equal to the default [1] (True == 1), so it skipped the check
    that refuses a boolean, and the runner ran seed 1 while the file said true."""
    refused(
        tmp_path,
        f"{HEAD}[protocol]\nseeds = [true]\n[base]\n",
        "seeds must be a list of distinct integers",
    )


def test_a_checkpoint_at_the_last_epoch_is_allowed(tmp_path: Path):
    """epoch-0020 of a variant that trains 20 epochs (and keeps epoch 20) exists: an
    off-by-one ('>=' for '>') refused it as beyond the training."""
    exp = load(
        tmp_path,
        f'{HEAD}[protocol]\ncheckpoints = ["epoch-0020"]\n[base]\n'
        "train = { epochs = 20, keep_checkpoints = [20] }\n",
    )
    assert exp.protocol["checkpoints"] == ["epoch-0020"]


def test_a_reference_must_be_a_variant(tmp_path: Path):
    """A reference variant that is not in the file (a typo) made no paired table at all,
    silently, instead of being refused when the file is read."""
    refused(
        tmp_path,
        f'{HEAD}[protocol]\nreference = "aa"\n[base]\n[[variants]]\nname = "a"\n',
        r"reference variant\(s\) \['aa'\] are not among \['a'\]",
    )


# --------------------------------------------------------------------------------------
# The file's tables and the variants
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEAD + "[base]\n[extra]\nx = 1\n", r"unknown experiment setting\(s\): extra"),
        (HEAD, "an experiment needs 'base'"),
        (HEAD + '[base]\n[[variants]]\nname = "a"\ntrian = {}\n', r"unknown key\(s\) \['trian'\]"),
        (HEAD + '[base]\n[[variants]]\nname = "a"\n[[variants]]\nname = "a"\n', "must be unique"),
        (HEAD + '[base]\n[[variants]]\nname = "a"\nreuse = "e/v/w"\n', "reuse must be"),
        (
            'name = "x"\n[data]\nfile = "f.h5"\nimport = ["bp-benchmark"]\n[base]\n',
            "FORMAT, SOURCE",
        ),
    ],
)
def test_malformed_experiment_files_are_refused(tmp_path: Path, text: str, message: str):
    """Each was accepted by a mutant: an unknown top-level table (a misspelt [protocl] would
    run the defaults), a file without [base] (a KeyError traceback), an unknown variant key
    (a misspelt 'train' trained the base recipe under the variant's name), two variants of
    one name (one folder, one run for both), a reuse with two '/' (a path under another
    variant's folder), and an import without its source (an IndexError)."""
    refused(tmp_path, text, message)


def test_a_variant_s_settings_override_the_base_s(tmp_path: Path):
    """A variant is the base with its own changes: merged the other way round, the base's
    grad_weight and blocks won and every variant trained the base recipe under its name."""
    exp = load(
        tmp_path,
        f'{HEAD}[base]\npreset = "tiny"\nmodel = {{ blocks = 2, clamp = 0.5 }}\n'
        "train = { epochs = 3, grad_weight = 0.25 }\n"
        '[[variants]]\nname = "v"\ndescription = "half gradient"\n'
        "model = { blocks = 3 }\ntrain = { grad_weight = 0.5 }\n",
    )
    (v,) = exp.variants
    assert v.model == {"blocks": 3, "clamp": 0.5}
    assert v.train == {"epochs": 3, "grad_weight": 0.5}
    assert v.description == "half gradient"
    assert v.preset == "tiny"


# --------------------------------------------------------------------------------------
# [[extra_eval]]
# --------------------------------------------------------------------------------------


def test_extra_eval_scores_all_windows_by_default(tmp_path: Path):
    """The documented default split of an extra_eval is "all": a default of "test" scored
    only one fold of e.g. the BCG file, and the table did not say so."""
    exp = load(tmp_path, f'{HEAD}[base]\n[[extra_eval]]\nname = "bcg"\nfile = "b.h5"\n')
    assert exp.extra_eval == [{"name": "bcg", "file": "b.h5", "split": "all"}]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('name = "test"\nfile = "b.h5"', "would be confused with a split"),
        ('name = "a/b"\nfile = "b.h5"', "would be confused with a split"),
        ('name = ""\nfile = "b.h5"', "every extra_eval needs a 'name'"),
        ('name = "bcg"\nfile = ""', "every extra_eval needs a 'file'"),
        ('name = "bcg"\nfile = "b.h5"\nsplit = "tset"', "has split 'tset'"),
        ('name = "bcg"\nfile = "b.h5"\nfiel = "c.h5"', r"unknown key\(s\) \['fiel'\]"),
        ('name = "bcg"\nfile = "b.h5"\n[[extra_eval]]\nname = "bcg"\nfile = "c.h5"', "unique"),
    ],
)
def test_bad_extra_evaluations_are_refused(tmp_path: Path, table: str, message: str):
    """Each was accepted by a mutant: an extra_eval named like a split ("test") would have
    its scores stored as the experiment's own test scores, a '/' in it breaks the
    "label/checkpoint" keys, an empty name or file, a misspelt split or key, and two of one
    name (the second's scores overwrote the first's)."""
    refused(tmp_path, f"{HEAD}[base]\n[[extra_eval]]\n{table}\n", message)


# --------------------------------------------------------------------------------------
# The runs planned: their folders, their configurations, the selection
# --------------------------------------------------------------------------------------

RUNS = (
    'name = "ablation"\n[data]\nfile = "f.h5"\n[protocol]\ntest_folds = [0, 2]\nseeds = [1, 4]\n'
    'checkpoints = ["last"]\nval_fold = {val_fold}\n[base]\n'
    'preset = "tiny"\ntrain = {{ epochs = 2 }}\n[[variants]]\nname = "a"\n'
    '[[variants]]\nname = "r"\nreuse = "main/full"\n'
)


def runs(tmp_path: Path, val_fold: str = '"next"'):
    return load(tmp_path, RUNS.format(val_fold=val_fold))


def test_each_run_has_its_own_folder(tmp_path: Path):
    """Runs live in runs/<variant>/fold<k>-seed<s> (the module docstring), and a reused
    variant's in the other experiment's folder beside this one, under the variant it names.
    Mutants wrote fold 0's runs as 'seed1' (a falsy fold), swapped the tag's parts, looked
    for reused runs inside this experiment's folder or under the reusing variant's name."""
    from innpar_freia.experiments import run_directory

    exp = runs(tmp_path)
    a, r = exp.variants
    out = tmp_path / "results" / "ablation"
    assert run_directory(out, a, 0, 1) == out / "runs" / "a" / "fold0-seed1"
    assert run_directory(out, a, 2, 4) == out / "runs" / "a" / "fold2-seed4"
    assert run_directory(out, a, None, 4) == out / "runs" / "a" / "seed4"
    assert run_directory(out, r, 0, 4) == tmp_path / "results" / "main" / "runs" / "full" / (
        "fold0-seed4"
    )


@pytest.mark.parametrize(("val_fold", "expected"), [("-1", -1), ("3", 3)])
def test_a_run_s_configuration_takes_its_fold_seed_and_device(tmp_path, val_fold, expected):
    """Each run trains with its own test fold, seed and the runner's device; val_fold
    -1 is none, a number that fold. Mutants
    left out test fold 0 (falsy: the file's own splits were used), dropped the protocol's
    val_fold, or the device."""
    from innpar_freia.experiments import run_config_for

    exp = runs(tmp_path, val_fold)
    cfg = run_config_for(exp, exp.variants[0], 0, 4, "cpu")
    assert (cfg.train.test_fold, cfg.train.seed, cfg.train.device) == (0, 4, "cpu")
    assert cfg.train.val_fold == expected
    assert cfg.train.epochs == 2


def test_only_folds_seeds_and_variants_of_the_experiment_may_be_chosen(tmp_path: Path):
    """--folds 1 (not among test_folds [0, 2]), --seeds 2 or --only b ran nothing and said
    nothing when a mutant dropped the check: a typo looked like a finished experiment."""
    from innpar_freia.experiments import check_selection

    exp = runs(tmp_path)
    assert check_selection(exp, ["a"], [2], [4]) is exp
    for args, message in (
        ((None, [1, 2], None), r"test fold\(s\) \[1\] are not in"),
        ((None, None, [2]), r"seed\(s\) \[2\] are not in"),
        ((["b"], None, None), r"variant\(s\) \['b'\] are not in the experiment"),
    ):
        with pytest.raises(ConfigError, match=message):
            check_selection(exp, *args)


def test_a_reused_run_that_is_not_there_is_refused(tmp_path: Path):
    """A variant that reuses runs of another experiment must find them: a mutant trained
    them here, under the other experiment's name (after a typo in reuse)."""
    from innpar_freia.experiments import check_run, run_config_for, run_directory

    exp = runs(tmp_path)
    r = exp.variants[1]
    run_dir = run_directory(tmp_path / "results" / "ablation", r, 0, 1)
    with pytest.raises(ConfigError, match=r"reuses 'main/full', but .* holds no run"):
        check_run(exp, r, run_dir, run_config_for(exp, r, 0, 1), tmp_path / "f.h5")


# --------------------------------------------------------------------------------------
# Is a run on disk the run the configuration asks for?
# --------------------------------------------------------------------------------------


def test_recipe_differences():
    """A finished run with fewer epochs is another recipe, an interrupted one may be given
    more (it resumes to them); device and num_workers are where it runs, not what; a
    setting a run did not record is the default it ran with; the preset is named only when
    the settings differ. Each was broken by a mutant."""
    import json

    from innpar_freia.config import resolve_config
    from innpar_freia.experiments import recipe_diffs

    want = resolve_config("tiny", {}, {"epochs": 4, "seed": 1})
    stored = json.loads(json.dumps(want.to_dict()))
    assert recipe_diffs(stored, want) == []
    fewer = {**stored, "train": {**stored["train"], "epochs": 2}}
    assert recipe_diffs(fewer, want, finished=True) == ["train.epochs 2, now 4"]
    assert recipe_diffs(fewer, want, finished=False) == []
    elsewhere = {**stored, "train": {**stored["train"], "device": "cuda", "num_workers": 7}}
    assert recipe_diffs(elsewhere, want) == []
    # A run from before grad_weight existed ran with its default, 1.0 (TrainConfig).
    old = {**stored, "train": {k: v for k, v in stored["train"].items() if k != "grad_weight"}}
    assert recipe_diffs(old, want) == []
    renamed = {**stored, "preset": "mine"}
    assert recipe_diffs(renamed, want) == []
    assert recipe_diffs({**fewer, "preset": "mine"}, want) == [
        "preset 'mine', now 'tiny'",
        "train.epochs 2, now 4",
    ]


def test_a_unet_run_stored_with_an_invertible_presets_settings_is_the_same_recipe():
    """A U-Net over the tiny preset stored its blocks = 2, which built nothing; since the
    U-Net refuses them, the variant reads preset "unet", and the runner called the run
    "made with another configuration (model.blocks 2, now 4)": the same network."""
    import json

    from innpar_freia.config import resolve_config
    from innpar_freia.experiments import recipe_diffs

    want = resolve_config("unet", {}, {"epochs": 1})
    stored = json.loads(json.dumps(want.to_dict()))
    older = {**stored, "preset": "tiny", "model": {**stored["model"], "blocks": 2}}
    assert recipe_diffs(older, want) == []
    other = {**older, "model": {**older["model"], "features": 4}}
    assert recipe_diffs(other, want) == ["preset 'tiny', now 'unet'", "model.features 4, now 8"]


def test_what_is_not_known_of_a_scoring_is_taken_to_agree():
    """An evaluation from before records kept their calibration is not scored again for
    it (a mutant counted the unknown as a difference, and rescored every old run)."""
    from innpar_freia.experiments import scoring_diffs

    now = {"calibration": "offset", "split": "test"}
    assert scoring_diffs({"split": "test"}, now) == []
    assert scoring_diffs({"calibration": "offset-scale", "split": "test"}, now) == [
        "calibration 'offset-scale', now 'offset'"
    ]


def test_the_window_file_s_rate_and_length_are_not_the_recipe():
    """fs and window_length come from the data file, so a run is not another recipe for
    them (a mutant refused every run whose stored fs differed from the preset's)."""
    import json

    from innpar_freia.config import resolve_config
    from innpar_freia.experiments import recipe_diffs

    want = resolve_config("tiny", {}, {"epochs": 4})
    stored = json.loads(json.dumps(want.to_dict()))
    stored["model"] = {**stored["model"], "fs": 100.0, "window_length": 500}
    assert recipe_diffs(stored, want) == []


# --------------------------------------------------------------------------------------
# Paths in the file, and the commit recorded
# --------------------------------------------------------------------------------------


def test_paths_are_relative_to_the_repository_holding_experiments(tmp_path: Path):
    """The file's paths are relative to the repository (the folder with experiments/ and
    setup.cfg) and an absolute path is itself. Mutants took any folder with an experiments/
    folder for the repository, or put an absolute path under it."""
    repo = tmp_path / "repo"
    (repo / "experiments" / "configs").mkdir(parents=True)
    (repo / "setup.cfg").write_text("")
    (repo / "experiments" / "configs" / "experiments").mkdir()  # not a repository
    cfg = repo / "experiments" / "configs" / "experiments" / "e.toml"
    cfg.write_text(f'{HEAD}[base]\n[[extra_eval]]\nname = "bcg"\nfile = "/abs/b.h5"\n')
    exp = load_experiment(cfg)
    assert exp.root == repo.resolve()
    assert exp.resolve("experiments/data/f.h5") == repo.resolve() / "experiments/data/f.h5"
    assert exp.resolve("/abs/b.h5") == Path("/abs/b.h5")


def test_the_commit_is_dirty_for_an_uncommitted_config_but_not_for_result_tables(tmp_path):
    """An experiment file git does not hold makes the commit "+dirty" (the commit does not
    hold what ran); an edited results.md or results.json, which the runner itself rewrites,
    does not. Mutants dropped either rule."""
    from helpers import git_in

    from innpar_freia.experiments import git_commit

    git = git_in(tmp_path)
    git("init", "-q")
    (tmp_path / "results.md").write_text("old\n")
    (tmp_path / "a.txt").write_text("a\n")
    git("add", ".")
    git("commit", "-qm", "x")
    head = git("rev-parse", "--short", "HEAD").strip()
    (tmp_path / "results.md").write_text("new\n")
    assert git_commit(tmp_path) == head
    cfg = tmp_path / "e.toml"
    cfg.write_text("")
    assert git_commit(tmp_path, cfg) == head + "+dirty"
    git("add", "e.toml")
    git("commit", "-qm", "y")
    assert git_commit(tmp_path, cfg) == git("rev-parse", "--short", "HEAD").strip()
    (tmp_path / "a.txt").write_text("b\n")
    assert git_commit(tmp_path, cfg).endswith("+dirty")


def test_the_runs_planned_are_the_chosen_variants_seeds_and_folds(tmp_path, monkeypatch):
    """run_experiment runs every variant x seed x test fold, or only those --only, --seeds
    and --folds choose (training itself is replaced here: only the plan is looked at).
    Mutants ignored each of the three choices and trained the runs that were not asked for."""
    import innpar_freia.data.dataset as dataset
    import innpar_freia.data.store as store
    import innpar_freia.experiments as experiments

    cfg = tmp_path / "exp.toml"
    cfg.write_text(RUNS.format(val_fold='"next"'))
    ran = []
    monkeypatch.setattr(experiments, "prepare_data", lambda exp, log: tmp_path / "f.h5")
    monkeypatch.setattr(experiments, "experiment_commit", lambda exp: "abc")
    monkeypatch.setattr(experiments, "check_run", lambda *a: None)
    monkeypatch.setattr(experiments, "finished_records", lambda *a, **k: [])
    monkeypatch.setattr(experiments, "write_results", lambda *a, **k: {})
    monkeypatch.setattr(store, "read_info", lambda path: None)
    monkeypatch.setattr(dataset, "plan_splits", lambda *a: None)
    monkeypatch.setattr(
        experiments,
        "run_one",
        lambda exp, v, data, fold, seed, *a: ran.append((v.name, seed, fold)),
    )
    experiments.run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    assert ran == [
        ("a", 1, 0), ("a", 1, 2), ("a", 4, 0), ("a", 4, 2),
        ("r", 1, 0), ("r", 1, 2), ("r", 4, 0), ("r", 4, 2),
    ]  # fmt: skip
    ran.clear()
    experiments.run_experiment(
        cfg, tmp_path / "out", device="cpu", only=["r"], folds=[2], seeds=[4], log=lambda s: None
    )
    assert ran == [("r", 4, 2)]


@pytest.mark.parametrize(("completed", "refused_"), [(2, False), (3, True)])
def test_an_interrupted_run_may_have_done_all_its_epochs(
    tmp_path, monkeypatch, completed, refused_
):
    """An interrupted run that has done exactly the epochs the configuration trains (it
    stopped before writing done.json) resumes; only more epochs than that are refused. A
    mutant ('>=') refused the run that had done them all."""
    import innpar_freia.checkpoint as checkpoint
    from innpar_freia.experiments import check_run, run_config_for, run_directory

    exp = runs(tmp_path)  # epochs = 2
    a = exp.variants[0]
    run_dir = run_directory(tmp_path / "out", a, 0, 1)
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    monkeypatch.setattr(checkpoint, "read_checkpoint", lambda path: {"epoch": completed})
    cfg = run_config_for(exp, a, 0, 1)
    if refused_:
        with pytest.raises(ConfigError, match="interrupted after 3 epochs, more than the 2"):
            check_run(exp, a, run_dir, cfg, tmp_path / "f.h5")
    else:
        check_run(exp, a, run_dir, cfg, tmp_path / "f.h5")


def test_how_an_old_evaluation_was_scored_is_read_from_its_file(tmp_path: Path):
    """A record with its own 'scoring' says how each evaluation was scored; an older one
    is read from eval-<label>-<checkpoint>.json beside it (split, calibrated.calibration),
    and nothing is known without either. Mutants lost the split or the calibration read
    from the file, so an edited calibration was not scored again on old runs."""
    import json

    from innpar_freia.experiments import scored_with

    record = {"scoring": {"test/best": {"calibration": "offset", "split": "test"}}}
    assert scored_with(record, "test/best", tmp_path) == {"calibration": "offset", "split": "test"}
    metrics = {"split": "val", "calibrated": {"calibration": "offset-scale"}}
    (tmp_path / "eval-bcg-last.json").write_text(json.dumps(metrics))
    assert scored_with({}, "bcg/last", tmp_path) == {
        "split": "val",
        "calibration": "offset-scale",
    }
    assert scored_with({}, "bcg/last") == {}
    assert scored_with({}, "test/last", tmp_path) == {}
