"""Experiments: train and evaluate variants over folds and seeds, and tabulate the results.

An experiment is a TOML file (see ``experiments/configs/``)::

    name = "cv-c2015"
    description = "..."
    [data]
    file = "experiments/data/challenge2015.h5"      # relative to the experiment file's repo
    import = ["bp-benchmark", "../shared/data/challenge2015/bp_benchmark"]  # made if missing
    # or: synth = { subjects = 8, minutes = 1.0 }
    split = { folds = 4, seed = 0, join_shared = true }  # optional: new folds once made
    [protocol]
    test_folds = [0, 1, 2, 3]      # one run per test fold (and seed)
    val_fold = "next"              # "next" (k+1 mod K), -1 (none) or a fold number
    seeds = [1]
    evaluate = ["val", "test"]     # splits scored with the protocol
    checkpoints = ["best"]         # "best", "last" or "epoch-NNNN"
    calibration = "offset-scale"
    [base]                         # the run configuration every variant starts from
    preset = "paper"
    train = { epochs = 60 }
    [[variants]]                   # one-at-a-time changes; none = just "base"
    name = "grad-weight-0.25"
    train = { grad_weight = 0.25 }
    [[extra_eval]]                 # optional: another window file every run is scored on
    name = "bcg"                   # its tables are "bcg/best", ...
    file = "experiments/data/bcg.h5"
    split = "all"                  # "all" (default), or train/val/test by the run's folds

Each run lives in ``<out>/<name>/runs/<variant>/fold<k>-seed<s>/``; a finished run has a
``done.json`` and is skipped, an interrupted one resumes from its last checkpoint, and
one that another process is training (its lock, see ``run_lock``) is left to it: several
runners share out an experiment's runs, and each rewrites the table after each run. One
whose training diverges is listed in the table as failed (its folder keeps a
``failed.json`` saying why, which later runners' tables list too, until a runner that
selects it starts training it again), and the others go on.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.config import load_toml, resolve_config
from innpar_freia.errors import ConfigError, TrainingDiverged
from innpar_freia.outputs import (
    check_writable,
    make_folder,
    remove_if_empty,
    remove_stale_temporaries,
    replace_durably,
)

EXPERIMENT_KEYS = {"name", "description", "data", "protocol", "base", "variants", "extra_eval"}
BASE_KEYS = {"preset", "model", "train"}
DATA_KEYS = {"file", "import", "synth", "split"}
# [data] split: new subject-disjoint folds for the file once it is made (innpar data split)
SPLIT_DEFAULTS: dict[str, Any] = {"seed": 0, "join_shared": False}
PROTOCOL_DEFAULTS: dict[str, Any] = {
    "test_folds": [None],
    "val_fold": "next",
    "seeds": [1],
    "evaluate": ["test"],
    "checkpoints": ["best"],
    "calibration": "offset-scale",
    # A variant name, or a list of them: each adds a table of paired differences against it.
    "reference": None,
}


# Training settings the protocol sets for each run (seeds, test_folds, val_fold), and the
# one the runner's --device sets.
PROTOCOL_TRAIN_KEYS = {"seed", "test_fold", "val_fold"}
RUNNER_TRAIN_KEYS = {"device"}


@dataclass
class Variant:
    name: str
    description: str
    preset: str
    model: dict[str, Any]
    train: dict[str, Any]
    reuse: str | None = None  # "<experiment>/<variant>": that experiment's runs, not retrained


@dataclass
class Experiment:
    path: Path
    name: str
    description: str
    data: dict[str, Any]
    protocol: dict[str, Any]
    variants: list[Variant]
    extra_eval: list[dict[str, Any]] = field(default_factory=list)

    @property
    def root(self) -> Path:
        """Paths in the file are relative to the repository holding ``experiments/``."""
        for parent in self.path.resolve().parents:
            if (parent / "experiments").is_dir() and (parent / "setup.cfg").is_file():
                return parent
        return self.path.resolve().parent

    def resolve(self, p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else self.root / path


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    raw = load_toml(path)
    unknown = sorted(set(raw) - EXPERIMENT_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown experiment setting(s): {', '.join(unknown)}")
    for key in ("name", "data", "base"):
        if key not in raw:
            raise ConfigError(f"{path}: an experiment needs '{key}'")
    _check_folder_name(path, "name", raw["name"])
    if not isinstance(raw.get("protocol", {}), dict):
        raise ConfigError(f"{path}: 'protocol' must be a table ([protocol])")
    protocol = {**PROTOCOL_DEFAULTS, **raw.get("protocol", {})}
    bad = sorted(set(protocol) - set(PROTOCOL_DEFAULTS))
    if bad:
        raise ConfigError(f"{path}: unknown protocol setting(s): {', '.join(bad)}")
    _check_protocol(path, protocol)
    base = raw["base"]
    _check_tables(path, raw)
    data = dict(raw["data"])
    if "split" in data:
        data["split"] = {**SPLIT_DEFAULTS, **data["split"]}
    variants = []
    for v in raw.get("variants", [{"name": "base"}]):
        extra = sorted(set(v) - {"name", "description", "preset", "model", "train", "reuse"})
        if extra:
            raise ConfigError(f"{path}: variant {v.get('name')!r} has unknown key(s) {extra}")
        if "name" not in v:
            raise ConfigError(f"{path}: every variant needs a 'name'")
        _check_folder_name(path, "variant name", v["name"])
        reuse = v.get("reuse")
        if reuse is not None and (not isinstance(reuse, str) or reuse.count("/") != 1):
            raise ConfigError(
                f'{path}: variant {v["name"]!r}: reuse must be "<experiment>/<variant>", '
                f"got {reuse!r}"
            )
        for table, train in (
            ("[base] train", base.get("train", {})),
            (v["name"], v.get("train", {})),
        ):
            moved = sorted(set(train) & PROTOCOL_TRAIN_KEYS) if isinstance(train, dict) else []
            if moved:
                # run_one sets them from the protocol for each run: a value here would be
                # overridden (or, without test folds, used) while the table says otherwise.
                raise ConfigError(
                    f"{path}: {table}: {', '.join(moved)} belong in [protocol] (seeds, "
                    "test_folds, val_fold), which sets them for every run"
                )
            if isinstance(train, dict) and RUNNER_TRAIN_KEYS & set(train):
                raise ConfigError(
                    f"{path}: {table}: device is chosen for every run by the runner's "
                    "--device option (auto = CUDA when present), not in the file"
                )
            _check_train_keys(path, table, train)
        variant = Variant(
            name=str(v["name"]),
            description=str(v.get("description", "")),
            preset=v.get("preset", base.get("preset", "paper")),
            model={**base.get("model", {}), **v.get("model", {})},
            train={**base.get("train", {}), **v.get("train", {})},
            reuse=v.get("reuse"),
        )
        resolved = resolve_config(variant.preset, variant.model, variant.train)  # validate early
        _check_kept_epochs(path, protocol, variant.name, resolved.train)
        variants.append(variant)
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: variant names must be unique, got {names}")
    refs = protocol["reference"]
    refs = [] if refs is None else [refs] if isinstance(refs, str) else refs
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise ConfigError(f"{path}: protocol reference must be a variant name or a list of them")
    missing = [r for r in refs if r not in names]
    if missing:
        raise ConfigError(f"{path}: reference variant(s) {missing} are not among {names}")
    protocol["reference"] = refs
    return Experiment(
        path,
        raw["name"],
        raw.get("description", ""),
        data,
        protocol,
        variants,
        _extra_evaluations(path, raw.get("extra_eval", []), protocol),
    )


def _check_train_keys(path: Path, table: str, train: Any) -> None:
    """A misspelt training setting, named with the settings a config file may give: the
    configuration's own message would also list those the runner sets (seed, device...)."""
    from innpar_freia.config import TrainConfig

    if not isinstance(train, dict):
        return  # _check_tables says so
    known = set(TrainConfig.__dataclass_fields__) - PROTOCOL_TRAIN_KEYS - RUNNER_TRAIN_KEYS
    unknown = sorted(set(train) - known - PROTOCOL_TRAIN_KEYS - RUNNER_TRAIN_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: {table}: unknown train setting(s): {', '.join(unknown)}; known "
            f"settings are: {', '.join(sorted(known))}"
        )


def _check_kept_epochs(path: Path, protocol: dict[str, Any], name: str, train: Any) -> None:
    """The checkpoints the protocol scores exist for every run of a variant: an
    "epoch-NNNN" the variant does not keep (``keep_checkpoints``) or never reaches, and a
    "best" or "val" with no validation split, would be found only after the first run has
    trained, and that run could not be fixed (another keep_checkpoints is another recipe)."""
    for checkpoint in protocol["checkpoints"]:
        if not checkpoint.startswith("epoch-"):
            continue
        epoch = int(checkpoint.split("-", 1)[1])
        if epoch > train.epochs:
            raise ConfigError(
                f"{path}: protocol checkpoint {checkpoint!r}: variant {name!r} trains "
                f"{train.epochs} epochs"
            )
        if epoch not in train.keep_checkpoints:
            raise ConfigError(
                f"{path}: protocol checkpoint {checkpoint!r}: variant {name!r} does not keep "
                f"it; add {epoch} to its train keep_checkpoints (now "
                f"{list(train.keep_checkpoints)})"
            )
    if _no_validation(protocol):
        if "best" in protocol["checkpoints"]:
            raise ConfigError(
                f'{path}: protocol checkpoint "best" is chosen on the validation split, but '
                'val_fold = -1 (none): it would be the last epoch under another name; use "last"'
            )
        if "val" in protocol["evaluate"]:
            raise ConfigError(
                f'{path}: protocol evaluate "val" needs a validation split, but val_fold = -1 '
                "(none)"
            )


def _no_validation(protocol: dict[str, Any]) -> bool:
    """val_fold = -1 leaves the test folds' runs without a validation split (without test
    folds the file's own splits apply, which may have one)."""
    return protocol["val_fold"] == -1 and protocol["test_folds"] != PROTOCOL_DEFAULTS["test_folds"]


def _check_folder_name(path: Path, what: str, name: Any) -> None:
    """Experiment and variant names are folders under --out: nothing that would leave it."""
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name) or set(name) == {"."}:
        raise ConfigError(
            f"{path}: {what} must be a folder name of letters, digits, '_', '-' and '.', "
            f"got {name!r}"
        )


def _check_tables(path: Path, raw: dict[str, Any]) -> None:
    """``[base]`` and ``[data]``: a misspelt key there would otherwise be ignored, and the
    preset's recipe trained silently in place of the intended one."""
    for table, allowed in (("base", BASE_KEYS), ("data", DATA_KEYS)):
        if not isinstance(raw[table], dict):
            raise ConfigError(f"{path}: '{table}' must be a table ([{table}])")
        bad = sorted(set(raw[table]) - allowed)
        if bad:
            raise ConfigError(
                f"{path}: unknown {table} setting(s) {bad} (allowed: {', '.join(sorted(allowed))})"
            )
    variants = raw.get("variants", [])
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise ConfigError(f"{path}: variants must be a list of tables ([[variants]])")
    for v in [raw["base"], *variants]:
        for key in ("model", "train"):
            if not isinstance(v.get(key, {}), dict):
                where = f"variant {v.get('name')!r}" if v is not raw["base"] else "[base]"
                raise ConfigError(f"{path}: {key} of {where} must be a table, e.g. {{ ... }}")
    if not isinstance(raw["data"].get("file"), str):
        raise ConfigError(f"{path}: [data] needs 'file', the window file (a string)")
    if "import" in raw["data"] and "synth" in raw["data"]:
        # Only one makes the file (synth): the other would be ignored without a word.
        raise ConfigError(
            f"{path}: [data] has both 'import' and 'synth'; give one: the file is either "
            "imported or synthesised"
        )
    imp = raw["data"].get("import")
    if imp is not None and (
        not isinstance(imp, list) or len(imp) < 2 or not all(isinstance(a, str) for a in imp)
    ):
        raise ConfigError(
            f"{path}: [data] import must be [FORMAT, SOURCE, extra options...], e.g. "
            '["bp-benchmark", "../shared/data/challenge2015/bp_benchmark"]'
        )
    synth = raw["data"].get("synth")
    if synth is not None:
        import inspect

        from innpar_freia.data.synthetic import synthesize_dataset

        params = inspect.signature(synthesize_dataset).parameters
        allowed = set(params) - {"path", "overwrite"}
        if not isinstance(synth, dict) or set(synth) - allowed:
            raise ConfigError(
                f"{path}: [data] synth must be a table of {', '.join(sorted(allowed))}"
            )
        for key, value in synth.items():
            # Of the parameter's type (an int where an int is wanted, a number for a float).
            kinds = (int,) if str(params[key].annotation).startswith("int") else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds):
                what = "an integer" if kinds == (int,) else "a number"
                raise ConfigError(f"{path}: [data] synth {key} must be {what}, not {value!r}")
    if "split" in raw["data"]:
        _check_split(path, raw["data"]["split"])


def _check_split(path: Path, split: Any) -> None:
    """``[data] split``: the arguments of ``innpar data split`` that make new folds."""
    from innpar_freia.data.splits import MIN_FOLDS

    example = "e.g. { folds = 4, seed = 0, join_shared = true }"
    if not isinstance(split, dict) or "folds" not in split:
        raise ConfigError(f"{path}: [data] split must be a table with 'folds', {example}")
    bad = sorted(set(split) - {"folds", *SPLIT_DEFAULTS})
    if bad:
        raise ConfigError(
            f"{path}: unknown [data] split setting(s) {bad} (allowed: folds, "
            f"{', '.join(SPLIT_DEFAULTS)})"
        )
    for key, low in (("folds", MIN_FOLDS), ("seed", 0)):
        value = split.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(
                f"{path}: [data] split {key} must be an integer >= {low}, not {value!r}"
            )
    if not isinstance(split.get("join_shared", False), bool):
        raise ConfigError(
            f"{path}: [data] split join_shared must be true or false, not {split['join_shared']!r}"
        )


def _check_protocol(path: Path, protocol: dict[str, Any]) -> None:
    """Every protocol value, when the file is read: a misspelt checkpoint or calibration
    would otherwise fail only after the first run has trained."""
    import re

    from innpar_freia.evaluate import EVAL_SPLITS
    from innpar_freia.metrics import CALIBRATIONS

    def ints(key: str, low: int) -> None:
        v = protocol[key]
        if v is PROTOCOL_DEFAULTS[key]:  # not given ("==" would take [true] for [1])
            return
        if (
            not isinstance(v, list)
            or not v
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= low for x in v)
            or len(set(v)) != len(v)
        ):
            raise ConfigError(
                f"{path}: protocol {key} must be a list of distinct integers >= {low}, got {v!r}"
            )

    def names(key: str, ok: Any, what: str) -> None:
        v = protocol[key]
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and ok(x) for x in v):
            raise ConfigError(f"{path}: protocol {key} must be a list of {what}, got {v!r}")

    ints("test_folds", 0)
    ints("seeds", 0)
    vf = protocol["val_fold"]
    if vf != "next" and (not isinstance(vf, int) or isinstance(vf, bool) or vf < -1):
        raise ConfigError(
            f'{path}: protocol val_fold must be "next" (k+1 mod K), -1 (none) or a fold '
            f"number, got {vf!r}"
        )
    names("evaluate", lambda x: x in EVAL_SPLITS, f"splits ({', '.join(EVAL_SPLITS)})")
    names(
        "checkpoints",
        lambda x: x in ("best", "last") or re.fullmatch(r"epoch-\d{4}", x),
        '"best", "last" or "epoch-NNNN"',
    )
    if "all" in protocol["evaluate"]:
        # Every window of the runs' own file holds their training windows: evaluate refuses
        # them, but only after the first run had trained (an hour on a real config).
        raise ConfigError(
            f'{path}: protocol evaluate "all" would score every window of the [data] file, '
            'each run\'s training windows among them; evaluate "test" (or "val"), and score '
            "other window files whole with [[extra_eval]]"
        )
    if protocol["calibration"] not in CALIBRATIONS:
        raise ConfigError(
            f"{path}: protocol calibration must be one of {', '.join(CALIBRATIONS)}, "
            f"got {protocol['calibration']!r}"
        )


EXTRA_EVAL_KEYS = {"name", "file", "split"}


def _extra_evaluations(path: Path, raw: Any, protocol: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``[[extra_eval]]`` tables (another window file every run is scored on, e.g. BCG
    for a Sensors-trained model), checked when the file is read: a typo found after hours of
    training would cost the training."""
    from innpar_freia.evaluate import EVAL_SPLITS

    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise ConfigError(f"{path}: extra_eval must be a list of tables ([[extra_eval]])")
    out = []
    for e in raw:
        unknown = sorted(set(e) - EXTRA_EVAL_KEYS)
        if unknown:
            raise ConfigError(
                f"{path}: extra_eval {e.get('name')!r} has unknown key(s) {unknown} "
                f"(allowed: {', '.join(sorted(EXTRA_EVAL_KEYS))})"
            )
        for key in ("name", "file"):
            if not isinstance(e.get(key), str) or not e[key]:
                raise ConfigError(f"{path}: every extra_eval needs a '{key}' (a string)")
        split = e.get("split", "all")
        if split not in EVAL_SPLITS:
            raise ConfigError(
                f"{path}: extra_eval {e['name']!r} has split {split!r}; "
                f"use one of {', '.join(EVAL_SPLITS)}"
            )
        if e["name"] in EVAL_SPLITS or "/" in e["name"]:
            raise ConfigError(
                f"{path}: extra_eval name {e['name']!r} would be confused with a split of "
                "the experiment's own data (or contains '/'); choose another name"
            )
        if split == "val" and _no_validation(protocol):
            # Scored on the runs' validation folds, which val_fold = -1 leaves out: its
            # tables would be missing without a word (as protocol evaluate "val" is refused).
            raise ConfigError(
                f'{path}: extra_eval {e["name"]!r} scores split "val", but val_fold = -1 (none)'
            )
        out.append({"name": e["name"], "file": e["file"], "split": split})
    names = [e["name"] for e in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: extra_eval names must be unique, got {names}")
    return out


def prepare_data(exp: Experiment, log: Any = print) -> Path:
    """The experiment's window file, imported or synthesised when it is missing (and given
    new folds, with ``[data] split``)."""

    target = exp.resolve(exp.data["file"])
    if target.exists():
        check_data_source(exp, target)
        return target
    check_writable(target)  # before the import, not after it
    created = make_folder(target.parent)
    try:
        if "split" not in exp.data:
            return _make_data(exp, target, log)
        # Made and split under a hidden name, then renamed: an interruption between the
        # two would leave a file with the importer's folds under the name the runner
        # takes for the split one.
        remove_stale_temporaries(target)  # what a runner killed outright left making it
        hidden = target.with_name(f".{target.name}.{os.getpid()}.making{target.suffix}")
        try:
            _make_data(exp, hidden, log)
            _split_data(exp, hidden, log)
            replace_durably(hidden, target)
        finally:
            hidden.unlink(missing_ok=True)
        return target
    except BaseException:
        remove_if_empty(reversed(created))  # nothing was made: no empty folder either
        raise


def _split_data(exp: Experiment, path: Path, log: Any) -> None:
    """New subject-disjoint folds for a file just made, as ``[data] split`` asks."""
    from innpar_freia.data.splits import fold_assignment_phrase, split_file

    split = exp.data["split"]
    log(f"assigning new folds: {fold_assignment_phrase(split)}")
    summary = split_file(
        path, folds=split["folds"], seed=split["seed"], join_shared=split["join_shared"]
    )
    for group in summary.get("joined_subjects", []):
        log(f"  kept in one fold: {', '.join(group)}")


def check_data_source(exp: Experiment, target: Path) -> None:
    """An existing window file is what ``[data]`` makes: an edited ``synth`` or ``import``
    would otherwise be ignored, and the runs on the old file reported as the new data's.

    Compared with the file's provenance: every ``synth`` parameter; an import's format, its
    input files (names and sizes, under the configured source) and the options that shape
    the windows (``--fs``, ``--window-seconds``). Other import options are not compared.
    Folds made by ``innpar data split`` (recorded in the provenance) must be those of
    ``[data] split``, and a file without such a record must have no ``split`` asked of it."""
    from innpar_freia.data.store import read_info

    info = read_info(target)  # a damaged file fails here, with its own message
    made = info.provenance
    diffs: list[str] = []
    if "synth" in exp.data:
        from innpar_freia.data.splits import MIN_FOLDS
        from innpar_freia.data.synthetic import DEFAULT_FOLDS, synthesize_dataset

        if made.get("generator") != "innpar_freia.data.synthetic":
            diffs.append(f"it was not synthesised (source: {info.source_format or 'unknown'})")
        else:
            import inspect

            params = inspect.signature(synthesize_dataset).parameters
            want = {
                k: exp.data["synth"].get(k, p.default)
                for k, p in params.items()
                if k not in ("path", "overwrite")
            }
            if want["folds"] is None:  # as synthesize_dataset chooses them
                subjects = want["subjects"]
                want["folds"] = min(DEFAULT_FOLDS, subjects) if subjects >= MIN_FOLDS else 0
            diffs += [
                f"synth {k} {made.get(k)!r}, now {v!r}"
                for k, v in want.items()
                if k in made and not np.isclose(float(made[k]), float(v))
            ]
    elif "import" in exp.data:
        fmt, source, *args = exp.data["import"]
        if info.source_format != fmt:
            diffs.append(f"format {info.source_format!r}, now {fmt!r}")
        source_path = exp.resolve(source)
        for entry in made.get("inputs", []) if source_path.exists() else []:
            rel = Path(entry.get("path", ""))
            if rel.is_absolute():
                continue  # an input outside the source folder: nothing to compare it with
            here = source_path / rel if source_path.is_dir() else source_path
            if here.name != rel.name or not here.is_file():
                diffs.append(f"input {rel} is not in {source_path}")
            elif here.stat().st_size != entry.get("bytes"):
                diffs.append(f"input {here} has changed size")
            if len(diffs) >= 3:
                break
        # Their values as the importer takes them (its defaults where not given; a folder
        # of windows has its own length).
        recordings = fmt in ("wfdb", "csv", "npz")
        shaped = {
            "--fs": (info.fs, 125.0),
            "--window-seconds": (info.window_length / info.fs, 5.0 if recordings else None),
        }
        for flag, (have, default) in shaped.items():
            now: float | None = default
            for i, arg in enumerate(args):
                value = args[i + 1] if arg == flag and i + 1 < len(args) else None
                if arg.startswith(flag + "="):
                    value = arg.split("=", 1)[1]
                try:
                    now = float(value) if value is not None else now
                except ValueError:
                    now = None  # the importer names a bad value when it runs
            if now is not None and not np.isclose(now, have):
                diffs.append(f"{flag.lstrip('-')} {have:g}, now {now:g}")
    want = exp.data.get("split")
    have = made.get("fold_assignment")
    if want != have and len(diffs) < 3:
        diffs.append(f"folds {_folds_phrase(have)}, now {_folds_phrase(want)}")
    if diffs:
        raise ConfigError(
            f"{exp.path}: {target} was made from other data than [data] describes now "
            f"({'; '.join(diffs[:3])}): delete it to make it again, or give [data] another file"
        )


def _folds_phrase(assignment: Any) -> str:
    """How a file's folds were made, for a message: its maker's, or ``innpar data split``'s
    (``[data] split`` or a provenance's ``fold_assignment``)."""
    from innpar_freia.data.splits import fold_assignment_phrase

    if assignment is None:
        return "as imported or synthesised"
    return f"by innpar data split ({fold_assignment_phrase(assignment)})"


def _run_to_the_end(cmd: list[str]) -> int:
    """Run ``cmd``; its exit status. Should this process be stopped meanwhile (SIGTERM, as
    a SystemExit, or Ctrl-C), the child is stopped with SIGTERM, which lets it clean up
    (an importer removes its hidden half-written file), and waited for: ``subprocess.run``
    would SIGKILL it, leaving that file behind for good."""
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def _make_data(exp: Experiment, target: Path, log: Any) -> Path:
    from innpar_freia.errors import DataError

    if "synth" in exp.data:
        from innpar_freia.data.synthetic import synthesize_dataset

        log(f"synthesising {target}")
        return synthesize_dataset(target, **exp.data["synth"])
    if "import" in exp.data:
        fmt, source = exp.data["import"][:2]
        source_path = exp.resolve(source)
        if not source_path.exists():
            raise DataError(f"{exp.path}: {target} is missing and its source {source_path} too")
        log(f"importing {source_path} ({fmt}) into {target}")
        cmd = [
            sys.executable,
            "-m",
            "innpar_freia",
            "data",
            "import",
            fmt,
            str(source_path),
            "--out",
            str(target),
            *map(str, exp.data["import"][2:]),
        ]
        if _run_to_the_end(cmd) != 0:  # the importer has said why, on stderr
            raise DataError(
                f"{exp.path}: importing {source_path} ({fmt}) into {target} failed (see "
                "the message above); fix [data] import, or import the file by hand"
            )
        return target
    raise DataError(
        f"{exp.path}: data file {target} not found; create it (e.g. with 'innpar data import')"
    )


def check_extra_files(exp: Experiment, data: Path) -> None:
    """Every ``extra_eval`` file exists and holds windows a model trained on ``data`` takes
    (same length and sampling rate): checked before anything trains."""
    from innpar_freia.data.store import read_info
    from innpar_freia.errors import DataError

    if not exp.extra_eval:
        return
    own = read_info(data)
    for e in exp.extra_eval:
        target = exp.resolve(e["file"])
        if not target.is_file():
            raise DataError(
                f"{exp.path}: extra_eval {e['name']!r}: window file {target} not found; "
                "create it first (e.g. with 'innpar data import')"
            )
        info = read_info(target)  # a corrupt or foreign file fails here, with its message
        if info.window_length != own.window_length or not np.isclose(info.fs, own.fs):
            raise DataError(
                f"{exp.path}: extra_eval {e['name']!r}: {target} has windows of "
                f"{info.window_length} samples at {info.fs:g} Hz, but the experiment trains "
                f"on {own.window_length} samples at {own.fs:g} Hz ({data}); import it at that "
                "rate and window length"
            )


def check_extra_not_training_data(exp: Experiment, data: Path) -> None:
    """No ``extra_eval`` scores split "all" of the windows the runs train on (the [data]
    file, or a copy of it): evaluate refuses their training windows, but only after the
    first run had trained (an hour on a real config)."""
    from innpar_freia.data.store import read_info
    from innpar_freia.train import content_fingerprint, windows_fingerprint

    def fingerprint(path: Path) -> tuple[str, str]:
        """What evaluate takes for the run's own file: the same window ids and signals."""
        info = read_info(path)
        return windows_fingerprint(info), content_fingerprint(path, info.n_windows)

    own = None
    for e in exp.extra_eval:
        if e["split"] != "all":
            continue
        target = exp.resolve(e["file"])
        own = own or fingerprint(data)
        if fingerprint(target) == own:
            which = "" if target.resolve() == data.resolve() else f" (a copy of {data})"
            raise ConfigError(
                f'{exp.path}: extra_eval {e["name"]!r} scores split "all" of {target}{which}, '
                "the windows the runs train on, their training windows among them; give it "
                'another window file, or a split of the runs\' folds (split = "test")'
            )


# What the runner itself writes into a checkout: its tables, which are versioned. A change
# there is not a change to the code the runs are made from.
_RESULT_TABLES = (":(glob,exclude)**/results.md", ":(glob,exclude)**/results.json")


def git_commit(root: Path, config: Path | None = None) -> str:
    """The commit checked out at ``root``, "+dirty" when tracked files differ from it
    (other than result tables) or when ``config`` (an experiment file) is not committed."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *_RESULT_TABLES],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if config is not None and not dirty:
            # An experiment file git does not know: the commit does not hold what ran.
            dirty = (
                subprocess.run(
                    ["git", "ls-files", "--error-unmatch", str(config.resolve())],
                    cwd=root,
                    capture_output=True,
                ).returncode
                != 0
            )
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ----------------------------------------------------------------------------- running


def _in_work_tree(folder: Path) -> bool:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"],
            cwd=folder,
            capture_output=True,
            text=True,
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == "true"


def experiment_commit(exp: Experiment) -> str:
    """The commit the runs are made from: the repository holding the experiment's config,
    or, for a config outside any repository, the checkout this package runs from."""
    if not _in_work_tree(exp.root) and _in_work_tree(PACKAGE_ROOT):
        # With the config, which that commit does not hold either: "+dirty" (git_commit
        # was given no config here, and stamped such runs with a clean commit).
        return git_commit(PACKAGE_ROOT, exp.path)
    return git_commit(exp.root, exp.path)


# The checkout this package is imported from (when it is one: an editable install).
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def run_one(
    exp: Experiment,
    variant: Variant,
    data: Path,
    test_fold: int | None,
    seed: int,
    out: Path,
    device: str,
    log: Any = print,
    callbacks: Any = None,
    commit: str | None = None,
    retrying: Any = None,
) -> dict[str, Any]:
    """Train (or resume, or skip) one run and evaluate its checkpoints; returns its record.
    ``retrying``: called when a run whose training failed is trained again, once it is no
    longer recorded as failed (the runner rewrites its table then).

    A finished run is not retrained; splits the experiment asks for that it has not been
    scored on yet are evaluated and added to its record. ``commit`` is the code's commit
    as the runner found it (default: now), recorded with a run it trains.
    """
    from innpar_freia.distributed import hardware_description
    from innpar_freia.run_lock import training_lock
    from innpar_freia.train import resolve_device, train

    run_dir = run_directory(out, variant, test_fold, seed)
    tag = run_dir.name
    done = run_dir / "done.json"
    run_config = run_config_for(exp, variant, test_fold, seed, device)
    # Held while it is checked, trained and scored: another runner on this experiment (or
    # an innpar train on this folder) is refused at once rather than train or score it
    # alongside, and a run being trained is not judged by what it holds so far.
    with training_lock(run_dir):
        check_run(exp, variant, run_dir, run_config, data)
        if done.exists():
            record = _run_record(done)
            return _evaluate_run(exp, data, run_dir, record, done, log, reused=bool(variant.reuse))
        last = run_dir / "checkpoints" / "last.pt"
        log(f"[{exp.name}] {variant.name} {tag}: {_what_training_does(last, run_config)}")
        # Trained again: no longer a failure while it trains (another runner skipping it
        # as held ended saying it had failed), nor once stopped before it ends: the table
        # too, whose list otherwise kept it once its folder was gone.
        if (run_dir / FAILED_NAME).exists():
            (run_dir / FAILED_NAME).unlink()
            if retrying is not None:
                retrying()
        try:
            if last.exists():
                result = train(
                    None,
                    data,
                    run_dir,
                    resume=True,
                    callbacks=callbacks,
                    resume_overrides={"epochs": run_config.train.epochs, "device": device},
                )
            else:
                result = train(run_config, data, run_dir, force=True, callbacks=callbacks)
        except TrainingDiverged as exc:
            # Kept in the run's folder (a diverged run leaves nothing else there when no
            # epoch had finished): the table of any later runner, one run with --only
            # other variants among them, still lists the failure and why.
            message = in_config_terms(str(exc))
            record_failure(run_dir, variant, test_fold, seed, message, run_config)
            raise
        record: dict[str, Any] = {
            "variant": variant.name,
            "test_fold": test_fold,
            "seed": seed,
            "run_dir": str(run_dir),
            "epochs_completed": result.epochs_completed,
            "best_epoch": result.best_epoch,
            "best_val_mae": result.best_val_mae,
            # Where it trained: a table can gather runs from several machines (see
            # finished_records), and its header names only the one that wrote it.
            "hardware": hardware_description(resolve_device(device)),
            # And from which code: the table's header names the commit of the runner that
            # wrote it, which may not be the one that trained this run (a resumed experiment).
            "commit": commit or experiment_commit(exp),
            # What was trained, so that a row kept from results.json when its run folder is
            # gone can still be checked against the configuration (finished_records).
            "recipe": json.loads(json.dumps(run_config.to_dict())),
            "evaluations": {},
        }
        return _evaluate_run(exp, data, run_dir, record, done, log)


def _what_training_does(last: Path, run_config: Any) -> str:
    """What the runner is about to do with a run that has no record yet: train it,
    resume it, or (its training finished before it was scored: the runner was stopped
    then) only score it. "training" was said of a run early stopping had ended."""
    if not last.exists():
        return "training"
    from innpar_freia.checkpoint import read_checkpoint

    state = read_checkpoint(last)  # check_run has read it: a damaged one is named there
    done = int(state.get("epoch", 0))
    ts = state.get("training_state")
    if isinstance(ts, dict) and ts.get("stopped_early"):
        return f"its training stopped early at epoch {done}; scoring it"
    if done >= run_config.train.epochs:
        return f"its training finished its {done} epochs; scoring it"
    return f"resuming after epoch {done} of {run_config.train.epochs}"


# A run whose training failed (diverged) has this file in its folder, and no done.json.
FAILED_NAME = "failed.json"


def record_failure(
    run_dir: Path,
    variant: Variant,
    test_fold: int | None,
    seed: int,
    message: str,
    run_config: Any,
) -> None:
    """Write ``run_dir/failed.json``: the run's training, of ``run_config``'s recipe, failed
    with ``message``. Written atomically, as a run's other records are; the tables read it
    (recorded_failures)."""
    from innpar_freia.train import write_json_atomic

    entry = {
        "variant": variant.name,
        "test_fold": test_fold,
        "seed": seed,
        "run_dir": str(run_dir),
        "message": message,
        # A failure of an earlier recipe is told apart (recorded_failures): the variant
        # edited since, and run with --only other variants, is not known to fail.
        "recipe": json.loads(json.dumps(run_config.to_dict())),
    }
    make_folder(run_dir)
    write_json_atomic(run_dir / FAILED_NAME, entry)


def recorded_failures(
    exp: Experiment, out: Path, records: list[dict[str, Any]], data: Path
) -> list[dict[str, Any]]:
    """Every run of the experiment whose training failed and that has no row in
    ``records`` (nor a done.json), whichever runner tried it: its ``failed.json``, or,
    where its folder is gone (run folders are not versioned), the failure the existing
    ``results.json`` lists. A table written by a runner that did not try the run (another
    runner sharing the experiment, or one run with --only other variants) listed only its
    own failures and lost the others' reasons. One whose recipe has been edited since
    (``recipe``, see record_failure) says how (``changed_since``): the new one has not
    run."""
    from functools import cache

    from innpar_freia.data.store import read_info

    info = cache(lambda: read_info(data))  # for a val_fold "next" (see recipe_diffs)
    listed_before: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    table = out / "results.json"
    try:
        old = json.loads(table.read_text()) if table.is_file() else {}
    except (OSError, ValueError):
        old = {}  # finished_records has named a damaged table before anything ran
    for f in old.get("failed", []) if isinstance(old, dict) else []:
        if isinstance(f, dict) and isinstance(f.get("message"), str):
            listed_before[(f.get("variant"), f.get("test_fold"), f.get("seed"))] = f
    rows = {(r["variant"], r.get("test_fold"), r.get("seed")) for r in records}
    failures = []
    for variant in exp.variants:
        for seed in exp.protocol["seeds"]:
            for fold in exp.protocol["test_folds"]:
                key = (variant.name, fold, seed)
                run_dir = run_directory(out, variant, fold, seed)
                if key in rows or (run_dir / "done.json").exists():
                    continue
                entry = {
                    "variant": variant.name,
                    "test_fold": fold,
                    "seed": seed,
                    "run_dir": str(run_dir),
                }
                path = run_dir / FAILED_NAME
                if path.is_file():
                    try:
                        stored = json.loads(path.read_text())
                    except (OSError, ValueError):
                        stored = None
                    if not isinstance(stored, dict) or not isinstance(stored.get("message"), str):
                        stored = {
                            "message": f"its training failed; the record of why, {path}, is damaged"
                        }
                elif not run_dir.exists() and key in listed_before:
                    stored = listed_before[key]
                else:
                    continue
                failure = {**entry, "message": stored["message"]}
                recipe = stored.get("recipe")
                if isinstance(recipe, dict) and recipe_problem(recipe) is None:
                    failure["recipe"] = recipe
                    wanted = run_config_for(exp, variant, fold, seed)
                    changed = recipe_diffs(recipe, wanted, info=info())
                    if changed:
                        failure["changed_since"] = changed
                failures.append(failure)
    return failures


def read_json_object(path: Path, what: str, remedy: str) -> dict[str, Any]:
    """A JSON object the runner wrote (a run's ``done.json`` or ``config.json``, the results
    table), or a ``ConfigError`` naming the file, what it is and what to do: a damaged one
    (a merge conflict in a versioned record, a truncated copy) ended in a traceback of the
    JSON decoder, or, for the table, was silently rewritten without the rows it held."""
    try:
        value = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not JSON, or not text
        raise ConfigError(f"{what} {path} is damaged (not JSON: {exc}); {remedy}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{what} {path} is damaged (not a JSON object); {remedy}")
    return value


def _run_record(path: Path) -> dict[str, Any]:
    what = "the record of a finished run"
    remedy = (
        "restore it (git checkout it if it is versioned), or remove the run's folder to "
        "train it again"
    )
    record = read_json_object(path, what, remedy)
    problem = record_problem(record)
    if problem:
        raise ConfigError(
            f"{what} {path} is damaged (not the runner's layout: {problem}); {remedy}"
        )
    return record


def record_problem(record: dict[str, Any]) -> str | None:
    """What in a run's record (its ``done.json``, or its row in ``results.json``) is not of
    the shape the runner writes, or None. Valid JSON of another shape, edited by hand,
    ended in an AttributeError or TypeError traceback, for a score that is not a number
    only once the table was written, after the runs before it had trained."""
    evaluations = record.get("evaluations")
    if not isinstance(evaluations, dict):
        return f"evaluations is {evaluations!r}, not a table"
    for key, scores in evaluations.items():
        if not isinstance(scores, dict):
            return f"evaluation {key!r} is {scores!r}, not a table"
        for metric, x in scores.items():
            if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))):
                return f"{key} {metric} is {x!r}, not a number"
    for key in ("test_fold", "seed"):
        x = record.get(key)
        if x is not None and (isinstance(x, bool) or not isinstance(x, int)):
            return f"{key} is {x!r}, not a whole number"
    for key in ("hardware", "commit"):
        if key in record and not isinstance(record[key], str):
            return f"{key} is {record[key]!r}, not a string"
    if "recipe" in record:
        return recipe_problem(record["recipe"], "recipe")
    return None


def recipe_problem(recipe: Any, what: str = "") -> str | None:
    """What in a run's stored configuration (``config.json``, a record's ``recipe``) is not
    of the shape a configuration is, or None: a ``"model": 3`` ended in "TypeError: 'int'
    object is not iterable" when it was compared with the experiment's."""
    where = f"{what} " if what else ""
    if not isinstance(recipe, dict):
        return f"{where or 'it '}is {recipe!r}, not a table"
    for section in ("model", "train", "data"):
        if section in recipe and not isinstance(recipe[section], dict):
            return f"{where}{section} is {recipe[section]!r}, not a table"
    return None


def check_run(exp: Experiment, variant: Variant, run_dir: Path, run_config: Any, data: Path):
    """A run the runner is about to make or reuse: a reused one must exist (training it here
    would make a run under another experiment's name, after a typo in ``reuse`` or before
    that experiment ran), and one on disk must be the recipe ``run_config`` describes."""
    done = run_dir / "done.json"
    if variant.reuse and not ((run_dir / "config.json").is_file() or done.is_file()):
        raise ConfigError(
            f"{exp.path}: variant {variant.name!r} reuses {variant.reuse!r}, but {run_dir} "
            "holds no run: run that experiment first, or check the name"
        )
    if variant.reuse and not done.is_file():
        # An interrupted run of the other experiment: it was resumed and finished here,
        # under that experiment's name, with this experiment's device and commit.
        raise ConfigError(
            f"{exp.path}: variant {variant.name!r} reuses {variant.reuse!r}, but {run_dir} "
            "is unfinished (it has no done.json): run that experiment first to finish it"
        )
    if (run_dir / "config.json").is_file() or done.is_file():
        check_same_recipe(run_dir, run_config, data, finished=done.exists())
    if variant.reuse and done.is_file():
        check_reused_scoring(exp, variant, run_dir, data)
    last = run_dir / "checkpoints" / "last.pt"
    if not done.exists() and last.is_file():
        # An interrupted run resumes to the configuration's epochs: fewer than it has done
        # would fail only when it is reached, after the runs before it have trained.
        from innpar_freia.checkpoint import read_checkpoint

        completed = int(read_checkpoint(last).get("epoch", 0))
        if completed > run_config.train.epochs:
            raise ConfigError(
                f"{run_dir} was interrupted after {completed} epochs, more than the "
                f"{run_config.train.epochs} that the configuration now trains: delete it to "
                "train it again, or give the experiment another name or --out"
            )


def check_reused_scoring(exp: Experiment, variant: Variant, run_dir: Path, data: Path) -> None:
    """A reused run's record holds no score this experiment asks for scored otherwise (another
    calibration, an ``extra_eval`` on another file or split): scored again here, it was
    overwritten in the other experiment's record, whose own table then left those rows out
    (its reference's among them) until that experiment scored them again."""
    record = _run_record(run_dir / "done.json")
    now = scorings(exp, data)
    for label in now:
        for checkpoint in exp.protocol["checkpoints"]:
            key = f"{label}/{checkpoint}"
            if key not in record.get("evaluations", {}):
                continue  # scored here for the first time: nothing of the other's is changed
            diffs = scoring_diffs(scored_with(record, key, run_dir), now[label])
            if diffs:
                other = variant.reuse.split("/", 1)[0]
                raise ConfigError(
                    f"{exp.path}: variant {variant.name!r} reuses {variant.reuse!r}, whose run "
                    f"{run_dir} holds {key} scored with {'; '.join(diffs)} (this "
                    f"experiment's): scoring it again would overwrite the scores in the run of "
                    f"experiment {other!r}; score {key} as {other!r} does (protocol calibration, "
                    "extra_eval file and split), or train the variant here (without reuse)"
                )


def run_config_for(
    exp: Experiment, variant: Variant, test_fold: int | None, seed: int, device: str = "auto"
) -> Any:
    """The :class:`~innpar_freia.config.RunConfig` of one run of ``variant``."""
    train_cfg = {**variant.train, "seed": seed, "device": device}
    if test_fold is not None:
        train_cfg["test_fold"] = test_fold
        vf = exp.protocol["val_fold"]
        if vf != "next":
            train_cfg["val_fold"] = int(vf)
    return resolve_config(variant.preset, variant.model, train_cfg)


# Settings that may differ between a run and the configuration that finds it: where it
# runs, and what training takes from the data file.
_NOT_RECIPE = {"model": {"fs", "window_length"}, "train": {"device", "num_workers"}}


def check_same_recipe(run_dir: Path, run_config: Any, data: Path, finished: bool) -> None:
    """A run found in the results folder must be the run the configuration asks for: a
    config edited after its runs were made (another preset, setting or data file) would
    otherwise report the old runs under the new description. An interrupted run may be
    given more epochs (it resumes to them); a finished one may not."""
    from innpar_freia.data.store import read_info
    from innpar_freia.train import windows_fingerprint

    config = run_dir / "config.json"
    if not config.is_file():
        # A finished run whose folder was pruned to its records (done.json, eval-*.json):
        # its record says what it trained, if it is recent enough to.
        done = run_dir / "done.json"
        stored = _run_record(done).get("recipe") if done.is_file() else None
        if not isinstance(stored, dict):
            return
    else:
        what = "the configuration of run"
        remedy = "restore it, or remove the run's folder to train it again"
        stored = read_json_object(config, what, remedy)
        problem = recipe_problem(stored)
        if problem:
            raise ConfigError(
                f"{what} {config} is damaged (not the runner's layout: {problem}); {remedy}"
            )
    info = read_info(data)
    diffs = recipe_diffs(stored, run_config, finished, info)
    trained_on = stored.get("data", {}).get("windows_sha256")
    if trained_on is not None and trained_on != windows_fingerprint(info):
        diffs.append(f"other windows than {data}")
    elif not _same_split(stored.get("data", {}).get("split_sha256"), info, stored):
        # The same windows in other folds (a file split again): its scores, kept in its
        # record, would be reported as those of the folds the file has now.
        diffs.append(f"other folds of {data} (split again since)")
    if diffs:
        raise ConfigError(
            f"{run_dir} was made with another configuration ({'; '.join(diffs[:3])}): "
            "delete it to train it again, or give the experiment another name or --out"
        )


def _same_split(trained: str | None, info: Any, stored: dict[str, Any]) -> bool:
    """Whether the run's training/validation/test windows (``split_sha256`` of its record;
    None in runs from before it was recorded) are those of ``info``'s file now. The run's
    own folds (``stored``, its configuration) are planned: the configuration's, when they
    were edited, told a file never split again from one that was (recipe_diffs names the
    edit)."""
    from innpar_freia.data.dataset import plan_splits
    from innpar_freia.errors import DataError
    from innpar_freia.train import split_fingerprint

    if trained is None:
        return True
    train = stored.get("train", {})
    folds = (train.get("test_fold"), train.get("val_fold"))
    if not all(f is None or (isinstance(f, int) and not isinstance(f, bool)) for f in folds):
        return True  # not a fold plan_splits takes: not a recorded run's (nothing to tell)
    try:
        plan = plan_splits(info, *folds, check_subjects=False)  # which windows, not whether
    except DataError:
        return False  # the run's folds are not in the file any more
    return split_fingerprint(info, plan) == trained


def recipe_diffs(
    stored: dict[str, Any], run_config: Any, finished: bool = True, info: Any = None
) -> list[str]:
    """How the recipe of a run (its stored configuration) differs from ``run_config``'s,
    one phrase per setting, leaving out where it runs and what comes from the data; an
    unfinished run may be given more epochs. With ``info`` (the data file's), protocol
    val_fold "next" and the fold it names in that file are the same setting."""
    from innpar_freia.config import ModelConfig, TrainConfig, stored_model_table

    want = json.loads(json.dumps(run_config.to_dict()))  # as stored: tuples become lists
    if isinstance(stored.get("model"), dict):
        # As a checkpoint's is read: a U-Net stored with the invertible network's settings
        # of an earlier preset (blocks = 2), which built nothing, is the same network.
        stored = {**stored, "model": stored_model_table(stored["model"])}
    if info is not None:
        stored = _next_fold_named(stored, want, info)
    diffs: list[str] = []
    # Runs from before a setting existed recorded none: they ran with its default.
    defaults = json.loads(
        json.dumps({"model": ModelConfig().to_dict(), "train": TrainConfig().to_dict()})
    )
    for section in ("model", "train"):
        skip = _NOT_RECIPE[section] | (set() if finished else {"epochs"})
        have, now = stored.get(section, {}), want[section]
        for key in sorted(set(have) | set(now)):
            old, new = have.get(key, defaults[section].get(key)), now.get(key)
            if key not in skip and old != new:
                diffs.append(_setting_change(section, key, old, new))
    # A preset is a name for settings: the same settings under another name (a preset
    # made later from a variant's overrides) are the same recipe.
    if diffs and stored.get("preset") != want["preset"]:
        diffs.insert(0, f"preset {stored.get('preset')!r}, now {want['preset']!r}")
    return diffs


def _next_fold_named(stored: dict[str, Any], want: dict[str, Any], info: Any) -> dict[str, Any]:
    """``stored`` with its val_fold written as ``want`` writes it when both name the same
    fold: a run recorded with "next" (None) for test fold 0 of four folds validated on
    fold 1, and a config that writes ``val_fold = 1`` asks for that run, not another."""
    from innpar_freia.data.dataset import plan_splits
    from innpar_freia.errors import DataError

    have, now = stored.get("train", {}), want["train"]
    folds = have.get("val_fold"), now.get("val_fold")
    if folds[0] == folds[1] or None not in folds or have.get("test_fold") != now.get("test_fold"):
        return stored
    try:
        named = plan_splits(info, now.get("test_fold"), check_subjects=False).val_fold
    except (DataError, TypeError):
        return stored  # not a fold of this file: the difference stands
    if named is None or named != (folds[1] if folds[0] is None else folds[0]):
        return stored
    return {**stored, "train": {**have, "val_fold": folds[1]}}


def _setting_change(section: str, key: str, old: Any, new: Any) -> str:
    """One setting's change, named as the experiment file names it: the run's val_fold is
    [protocol]'s, whose "next" a run records as None ("train.val_fold None, now 3" named
    neither the table nor the value the user wrote)."""
    if section == "train" and key == "val_fold":
        old, new = ("next" if v is None else v for v in (old, new))
        return f"protocol val_fold {old!r}, now {new!r}"
    return f"{section}.{key} {old!r}, now {new!r}"


def runs_parser(description: str, variant_help: str, data: Path) -> argparse.ArgumentParser:
    """Arguments of a script that analyses finished runs (``experiments/*.py``): an
    experiment's results directory, a variant, which checkpoint, which split, the data."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("results", type=Path, help="an experiment's results directory")
    ap.add_argument("variant", help=variant_help)
    ap.add_argument("--checkpoint", default="last", choices=["best", "last"])
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--data", type=Path, default=data, help="the data the runs trained on")
    return ap


def load_run_checkpoint(path: Path, data: Path) -> Any:
    """A run's checkpoint, refusing ``data`` that holds other windows than the run was
    trained on: the scripts' ``--data`` defaults to the real data, and a synthetic
    experiment's runs would otherwise be scored on it without a word."""
    from innpar_freia.checkpoint import load_checkpoint
    from innpar_freia.data.store import read_info
    from innpar_freia.errors import DataError
    from innpar_freia.train import windows_fingerprint

    ckpt = load_checkpoint(path)
    trained_on = ckpt.data.get("windows_sha256")
    if trained_on is not None and trained_on != windows_fingerprint(read_info(data)):
        raise DataError(
            f"{path} was trained on other windows than {data} (its data: "
            f"{ckpt.data.get('path', 'unknown')}); give that file with --data"
        )
    return ckpt


def script_main(main: Any, argv: list[str] | None = None) -> int:
    """Run an analysis script's ``main``: a user error (a missing or damaged file, data
    the runs were not trained on) is one line on stderr and exit code 1, Ctrl-C one line
    and 130; no traceback."""
    from innpar_freia.cli.common import os_error_message
    from innpar_freia.errors import InnparError, cli_spelling

    try:
        # A script run from a shell: the library's advice names its options (--split).
        with cli_spelling():
            return int(main(argv))
    except InnparError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
    except KeyboardInterrupt:
        # Ctrl-C: these scripts write nothing until they print; a traceback would say
        # nothing the user does not know. 130, as a shell reports a command stopped so.
        print("interrupted", file=sys.stderr)
        return 130
    return 1


def no_runs_message(results: Path, variant: str, checkpoint: str) -> str:
    """Why a variant has no finished run with ``checkpoint``: the results folder is not
    there or not a folder (a config given in its place), the variant is not there (a
    misspelt name: the ones that are there are listed), none of its runs finished, or they
    did on another machine and only their ``done.json`` (which is versioned) is here."""
    hint = (
        'experiments/results/NAME, where experiments/run.py puts a config\'s runs (name = "NAME")'
    )
    if not results.exists():
        return f"no results folder {results}: give an experiment's results folder ({hint})"
    if not results.is_dir():
        what = "an experiment's config" if results.suffix == ".toml" else "a file"
        return f"{results} is {what}, not a results folder: give an experiment's ({hint})"
    runs = results / "runs" / variant
    if not runs.is_dir():
        variants = sorted(p.name for p in (results / "runs").glob("*") if p.is_dir())
        if not variants:
            # The versioned results hold the tables (results.json/md), not the runs.
            return (
                f"{results} holds no runs (no runs/ folder with a variant): train them with "
                "experiments/run.py and the experiment's config"
            )
        return f"no variant {variant!r} in {results / 'runs'}; it has {', '.join(variants)}"
    done = sorted(runs.glob("*/done.json"))
    if done:
        return (
            f"the {len(done)} finished run(s) under {runs} have no checkpoints/{checkpoint}.pt "
            "here: their folders hold only their records (done.json), and this needs the "
            "weights; train those runs again"
        )
    return f"no finished run under {runs}"


def finished_checkpoints(results: Path, variant: str, checkpoint: str) -> list[Path]:
    """The checkpoint files ``checkpoint`` of a variant's finished runs (those with a
    ``done.json``; a run still training has a ``last.pt`` that is not its last)."""
    runs = results / "runs" / variant
    return sorted(
        path
        for path in runs.glob(f"*/checkpoints/{checkpoint}.pt")
        if (path.parents[1] / "done.json").is_file()
    )


def _own_folders(run_dirs: list[Path], out: Path) -> list[Path]:
    """The run folders ``run_dirs`` and the folders above them up to ``out`` (``runs/``,
    the variant's), deepest first: what a failed run may have left empty."""
    folders = []
    for run_dir in run_dirs:
        # A reused run lives under another experiment, whose folders are not this runner's.
        folders += [p for p in (run_dir, *run_dir.parents) if out in p.parents]
    return folders


def run_directory(out: Path, variant: Variant, test_fold: int | None, seed: int) -> Path:
    """Where a run lives: under this experiment, or under the experiment it reuses."""
    tag = f"fold{test_fold}-seed{seed}" if test_fold is not None else f"seed{seed}"
    if variant.reuse:
        experiment, name = variant.reuse.split("/", 1)
        return out.parent / experiment / "runs" / name / tag
    return out / "runs" / variant.name / tag


def _evaluate_run(
    exp: Experiment,
    data: Path,
    run_dir: Path,
    record: dict[str, Any],
    done: Path,
    log: Any = print,
    reused: bool = False,
) -> dict[str, Any]:
    """Score the run's checkpoints on every split the experiment asks for that the record
    does not hold yet, or holds as scored otherwise (another calibration, or an
    ``extra_eval`` with another file or split), and save the record. A ``reused`` run
    (another experiment's) keeps what it holds (check_reused_scoring refuses the rest)."""
    from innpar_freia.checkpoint import read_checkpoint
    from innpar_freia.evaluate import evaluate, scored_as
    from innpar_freia.train import write_json_atomic

    calibration = exp.protocol["calibration"]
    targets = [(split, data, split) for split in exp.protocol["evaluate"]]
    targets += [(e["name"], exp.resolve(e["file"]), e["split"]) for e in exp.extra_eval]
    now = scorings(exp, data)
    last = run_dir / "checkpoints" / "last.pt"
    todo = []
    for c in exp.protocol["checkpoints"]:
        for label, file, split in targets:
            key = f"{label}/{c}"
            if key in record["evaluations"]:
                scored = scored_with(record, key, run_dir)
                stale = scoring_diffs(scored, now[label])
                if not stale and not reused and "content_sha256" in now[label]:
                    if "content_sha256" not in scored and last.is_file():
                        # Scored before the signals were fingerprinted: they may have
                        # changed since, and the checkpoints are here to tell. (A run
                        # without them keeps its scores: they are all there is.)
                        stale = ["signals not fingerprinted then"]
                if not stale:
                    continue
                log(
                    f"[{exp.name}] {run_dir.parent.name}/{run_dir.name}: {key} was scored "
                    f"with {'; '.join(stale)}: scoring it again"
                )
            todo.append((label, file, split, c))
    if not todo:
        return record
    if not last.is_file():
        # A finished run pruned to its records (done.json, eval-*.json): nothing to score
        # with, and the runs after it are not stopped for it (finished_records says what
        # its table leaves out).
        log(
            f"[{exp.name}] {run_dir.parent.name}/{run_dir.name}: cannot score "
            f"{', '.join(f'{label}/{c}' for label, _, _, c in todo)}: {run_dir} holds no "
            "checkpoints"
        )
        return record
    state = read_checkpoint(last)
    no_val = state["run_config"]["train"]["val_fold"] == -1
    for label, file, split, ckpt_name in todo:
        if split == "val" and no_val:
            continue  # the run had no validation split
        log(f"[{exp.name}] {run_dir.parent.name}/{run_dir.name}: {label}/{ckpt_name}")
        ckpt = run_dir / "checkpoints" / f"{ckpt_name}.pt"
        if ckpt_name.startswith("epoch-") and not ckpt.is_file():
            wanted, done_epochs = int(ckpt_name.split("-", 1)[1]), int(state.get("epoch", 0))
            if state.get("training_state", {}).get("stopped_early") and done_epochs < wanted:
                # "checkpoint not found" alone, after training and again on every re-run,
                # did not say that the run's own early stopping never reached the epoch.
                patience = state["run_config"]["train"].get("early_stopping")
                raise ConfigError(
                    f"{exp.path}: early stopping (early_stopping = {patience}) ended run "
                    f"{run_dir} at epoch {done_epochs}, before epoch {wanted} was reached, so "
                    f'protocol checkpoint {ckpt_name!r} was never saved: score "best" or '
                    '"last" instead, or train without early stopping (another recipe: delete '
                    "the run to train it again)"
                )
        with scored_as(*_chosen_in(exp, label)):
            metrics, _ = evaluate(ckpt, file, split, calibration=calibration)
        write_json_atomic(run_dir / f"eval-{label}-{ckpt_name}.json", metrics)
        record["evaluations"][f"{label}/{ckpt_name}"] = summarise(metrics)
        record.setdefault("scoring", {})[f"{label}/{ckpt_name}"] = now[label]
    write_json_atomic(done, record)
    return record


def _chosen_in(exp: Experiment, label: str) -> tuple[Callable[[str], str], str]:
    """Where the experiment file chooses the split and the data of ``label`` (evaluate's
    scored_as): a runner's caller has no split=/--split nor data=/--data to give."""
    if label in {e["name"] for e in exp.extra_eval}:
        return (lambda name: f'extra_eval {label!r} split = "{name}"'), f"extra_eval {label!r} file"
    return (lambda name: f'protocol evaluate "{name}"'), "an extra_eval's file"


def scorings(exp: Experiment, data: Path) -> dict[str, dict[str, Any]]:
    """How each label the experiment scores ("val", "test", an ``extra_eval`` name) is
    scored now: the calibration, the split and, for an ``extra_eval``, the windows of its
    file and their signals (those of ``data`` are the ones the run trained on:
    check_same_recipe)."""
    from innpar_freia.data.store import read_info
    from innpar_freia.train import content_fingerprint, windows_fingerprint

    now = {
        split: {"calibration": exp.protocol["calibration"], "split": split}
        for split in exp.protocol["evaluate"]
    }
    for e in exp.extra_eval:
        info = read_info(exp.resolve(e["file"]))
        now[e["name"]] = {
            "calibration": exp.protocol["calibration"],
            "split": e["split"],
            "windows_sha256": windows_fingerprint(info),
            # The ids and subjects alone missed a file made again with other signals (the
            # same synth with another seed): its old scores were reported as the new one's.
            "content_sha256": content_fingerprint(info.path, info.n_windows),
        }
    return now


def scored_with(record: dict[str, Any], key: str, run_dir: Path | None = None) -> dict[str, Any]:
    """How a record's evaluation ``key`` ("label/checkpoint") was scored, as far as is
    known: records say so since they keep ``scoring``; older ones are read from the
    evaluation file beside them (``eval-<label>-<checkpoint>.json``), or not known."""
    scoring = record.get("scoring")
    if isinstance(scoring, dict) and isinstance(scoring.get(key), dict):
        return scoring[key]
    if run_dir is None:
        return {}
    label, checkpoint = key.rsplit("/", 1)
    try:
        metrics = json.loads((run_dir / f"eval-{label}-{checkpoint}.json").read_text())
    except (OSError, ValueError):
        return {}
    known: dict[str, Any] = {}
    if isinstance(metrics, dict):
        if isinstance(metrics.get("split"), str):
            known["split"] = metrics["split"]
        calibrated = metrics.get("calibrated")
        if isinstance(calibrated, dict) and isinstance(calibrated.get("calibration"), str):
            known["calibration"] = calibrated["calibration"]
    return known


def scoring_diffs(scored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """How an evaluation was scored otherwise than ``now`` asks, one phrase per setting
    (what is not known of it is taken to agree)."""
    diffs = []
    for setting, value in now.items():
        old = scored.get(setting)
        if old is None or old == value:
            continue
        if setting == "windows_sha256":
            diffs.append("other windows")
        elif setting == "content_sha256":
            if "other windows" not in diffs:  # (other windows have other signals too)
                diffs.append("other signals in the same windows")
        else:
            diffs.append(f"{setting} {old!r}, now {value!r}")
    return diffs


def summarise(m: dict[str, Any]) -> dict[str, Any]:
    """The numbers a results table shows, flattened (mmHg)."""
    out: dict[str, Any] = {"n_windows": m["calibration_free"]["n_windows"]}

    def put(prefix: str, r: dict[str, Any]) -> None:
        out[f"{prefix}wave_mae"] = r["waveform"]["mae"]
        out[f"{prefix}wave_rmse"] = r["waveform"]["rmse"]
        out[f"{prefix}wave_r"] = r["waveform"]["r"]
        for bp in ("sbp", "dbp", "map"):
            out[f"{prefix}{bp}_mae"] = r[bp]["mae"]
            out[f"{prefix}{bp}_me"] = r[bp]["me"]
            out[f"{prefix}{bp}_sd"] = r[bp]["sd"]

    put("", m["calibration_free"])
    if "calibrated" in m:
        put("cal_", m["calibrated"])
    for name, r in m.get("baselines", {}).items():
        put(f"{name}_", r)
    if m.get("inverse"):
        out["inverse_mae"] = m["inverse"]["mae"]
    return out


def aggregate(records: list[dict[str, Any]], key: str) -> dict[str, dict[str, float | None]]:
    """Mean and SD over runs (folds x seeds) of every summarised number under ``key``."""
    rows = [r["evaluations"][key] for r in records if key in r["evaluations"]]
    if not rows:
        return {}
    out = {}
    # Every number any run has, in first-seen order: a number that the first run lacks (a
    # record from an older version, resumed beside new ones) was dropped from the table.
    for metric in dict.fromkeys(m for r in rows for m in r):
        vals = [r[metric] for r in rows if r.get(metric) is not None]
        out[metric] = {
            "mean": float(np.mean(vals)) if vals else None,
            "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
            "n": len(vals),
        }
    return out


# ----------------------------------------------------------------------------- tables

FREE_COLUMNS = [
    ("wave_mae", "wave MAE"),
    ("wave_r", "r"),
    ("sbp_mae", "SBP"),
    ("dbp_mae", "DBP"),
    ("map_mae", "MAP"),
]
CAL_COLUMNS = [
    ("cal_wave_mae", "wave MAE"),
    ("cal_sbp_mae", "SBP"),
    ("cal_dbp_mae", "DBP"),
    ("cal_map_mae", "MAP"),
]


def _cell(stat: dict[str, Any] | None, digits: int = 2) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    s = f"{stat['mean']:.{digits}f}"
    if stat.get("sd") is not None:
        s += f" ± {stat['sd']:.{digits}f}"
    return s


# How summarise names the baselines' numbers ("naive_wave_mae", "carry_forward_sbp_mae").
BASELINE_PREFIXES = ("naive_", "linear_", "carry_forward_")


def baseline_aggregate(results: dict[str, Any], key: str) -> tuple[dict[str, Any], int]:
    """Mean and SD of the baselines over the test folds any variant was scored on, and the
    number of folds. A baseline depends on the fold only (its windows and training split),
    not on the variant or seed: averaging it over runs would count a fold once per run,
    and shrink its SD by the repeats."""
    per_fold: dict[Any, dict[str, Any]] = {}
    for v in results["variants"].values():
        for r in v["runs"]:
            scores = r["evaluations"].get(key)
            if scores and "naive_wave_mae" in scores:
                # The baselines' numbers only: the run's own (its model's waveform MAE...)
                # were aggregated with them, and results.json showed them as the baselines'.
                baselines = {m: x for m, x in scores.items() if m.startswith(BASELINE_PREFIXES)}
                per_fold.setdefault(r["test_fold"], baselines)
    rows = [{"evaluations": {key: scores}} for scores in per_fold.values()]
    return aggregate(rows, key), len(per_fold)


def markdown_table(results: dict[str, Any], key: str) -> str:
    """Rows: variants then the baselines; columns: the runs a row averages (for the
    baselines, test folds), then calibration-free and calibrated MAEs."""
    head = (
        "| model | runs | "
        + " | ".join(c for _, c in FREE_COLUMNS)
        + " | cal. "
        + " | cal. ".join(c for _, c in CAL_COLUMNS)
        + " |"
    )
    lines = [head, "|" + "---|" * (2 + len(FREE_COLUMNS) + len(CAL_COLUMNS))]
    for name, v in results["variants"].items():
        agg = v["aggregate"].get(key)
        if not agg:
            continue
        digits = {"wave_r": 3}
        cells = [_cell(agg.get(m), digits.get(m, 2)) for m, _ in FREE_COLUMNS]
        cells += [_cell(agg.get(m)) for m, _ in CAL_COLUMNS]
        lines.append(f"| {name} | {agg['wave_mae']['n']} | " + " | ".join(cells) + " |")
    base, folds = baseline_aggregate(results, key)
    if base:
        runs = f"{folds} fold{'s' if folds != 1 else ''}"
        for prefix, label in (("naive", "naive baseline"), ("linear", "linear baseline")):
            cells = [
                _cell(base.get(f"{prefix}_{m}"), 3 if m == "wave_r" else 2) for m, _ in FREE_COLUMNS
            ]
            lines.append(
                f"| {label} | {runs} | " + " | ".join(cells) + " |" + " - |" * len(CAL_COLUMNS)
            )
        cf = [_cell(base.get("carry_forward_" + m[4:])) for m, _ in CAL_COLUMNS]
        lines.append(
            f"| carry-forward baseline | {runs} |"
            + " - |" * len(FREE_COLUMNS)
            + " "
            + " | ".join(cf)
            + " |"
        )
    return "\n".join(lines)


PAIRED_COLUMNS = [
    ("wave_mae", "wave MAE"),
    ("sbp_mae", "SBP"),
    ("dbp_mae", "DBP"),
    ("map_mae", "MAP"),
    ("cal_wave_mae", "cal. wave MAE"),
    ("cal_sbp_mae", "cal. SBP"),
    ("cal_dbp_mae", "cal. DBP"),
    ("cal_map_mae", "cal. MAP"),
]


def paired_differences(
    results: dict[str, Any], key: str, reference: str
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Per variant and metric: mean of (variant - reference) over the runs (fold, seed)
    both have, the number of such runs, and how often the variant's error was lower."""
    ref_runs = {
        (r["test_fold"], r["seed"]): r["evaluations"].get(key)
        for r in results["variants"].get(reference, {}).get("runs", [])
    }
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for name, v in results["variants"].items():
        if name == reference:
            continue
        pairs = [
            (r["evaluations"].get(key), ref_runs.get((r["test_fold"], r["seed"])))
            for r in v["runs"]
        ]
        pairs = [(a, b) for a, b in pairs if a and b]
        if not pairs:
            continue
        out[name] = {}
        for metric, _ in PAIRED_COLUMNS:
            d = [
                a[metric] - b[metric]
                for a, b in pairs
                if a.get(metric) is not None and b.get(metric) is not None
            ]
            if d:
                out[name][metric] = {
                    "mean": float(np.mean(d)),
                    "n": len(d),
                    "wins": int(sum(x < 0 for x in d)),
                }
    return out


def paired_table(diffs: dict[str, dict[str, dict[str, float | int]]]) -> str:
    """The Markdown table of ``paired_differences``' result."""
    lines = [
        "| variant | runs | " + " | ".join(c for _, c in PAIRED_COLUMNS) + " |",
        "|" + "---|" * (2 + len(PAIRED_COLUMNS)),
    ]
    for name, d in diffs.items():
        n = max(m["n"] for m in d.values())
        cells = [
            f"{d[m]['mean']:+.2f} ({d[m]['wins']}/{d[m]['n']})" if m in d else "-"
            for m, _ in PAIRED_COLUMNS
        ]
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _not_tabulated(results: dict[str, Any], key: str | None) -> str | None:
    """A line naming the variants that have no row in ``key``'s table (all of them when
    ``key`` is None: nothing was scored), and why, or None when every variant has one. A
    variant without a row was left out without a word."""
    failed = Counter(f["variant"] for f in results.get("failed", []))
    missing = []
    for name, v in results["variants"].items():
        if key is not None and v["aggregate"].get(key):
            continue
        if v["runs"]:
            why = f"no run scored on {key}" if key else "no run scored"
        else:
            why = "no finished run"
        if failed[name]:
            why += f"; {failed[name]} failed in training, see Failed runs"
        missing.append(f"`{name}` ({why})")
    head = "Not in this table" if key else "No table, no variant has a scored run"
    return f"{head}: " + ", ".join(missing) + "." if missing else None


def _trained_on(records: list[dict[str, Any]]) -> str:
    """Where the table's runs were trained, and from which commit, with how many runs each
    (records written before runs recorded them count as not recorded)."""
    lines = []
    for key, what in (("hardware", "Runs trained on"), ("commit", "Runs trained at commit")):
        counts = Counter(r.get(key, "not recorded") for r in records)
        lines.append(f"{what}: " + "; ".join(f"{v} ({n})" for v, n in sorted(counts.items())) + ".")
    return "\n".join(lines)


def write_results(
    exp: Experiment,
    out: Path,
    records: list[dict[str, Any]],
    device: str,
    commit: str | None = None,
    failed: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write ``results.{json,md}`` from ``records``; ``commit`` is the code's commit as the
    runner found it (default: now); ``failed``: the runs whose training failed and
    that have no row (see recorded_failures), listed with their messages."""
    from innpar_freia.distributed import hardware_description
    from innpar_freia.train import resolve_device, write_bytes_atomic, write_json_atomic

    # Only the splits and checkpoints this experiment asks for: a reused run may carry the
    # scores another experiment added (the test folds of the ablation's models), and an
    # ablation's tables must not show what its choices were never allowed to look at.
    wanted = {
        f"{label}/{ckpt}"
        for label in [*exp.protocol["evaluate"], *(e["name"] for e in exp.extra_eval)]
        for ckpt in exp.protocol["checkpoints"]
    }
    keys = sorted({k for r in records for k in r["evaluations"]} & wanted)
    results: dict[str, Any] = {
        "experiment": exp.name,
        "description": exp.description,
        "config": str(exp.path),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit or experiment_commit(exp),
        "hardware": hardware_description(resolve_device(device)),
        "protocol": exp.protocol,
        "variants": {},
    }
    for v in exp.variants:
        # A reused run's record also holds the scores its other experiments asked for.
        recs = [
            {**r, "evaluations": {k: e for k, e in r["evaluations"].items() if k in wanted}}
            for r in records
            if r["variant"] == v.name
        ]
        results["variants"][v.name] = {
            "description": v.description,
            "runs": recs,
            "aggregate": {k: aggregate(recs, k) for k in keys},
        }
    # The baselines once per test fold (see baseline_aggregate), as the Markdown shows them.
    results["baselines"] = {}
    for k in keys:
        agg, folds = baseline_aggregate(results, k)
        if agg:
            results["baselines"][k] = {"folds": folds, "aggregate": agg}
    # The Markdown's paired tables, machine-readable: per split/checkpoint and reference.
    results["paired"] = {
        k: {ref: paired_differences(results, k, ref) for ref in exp.protocol["reference"]}
        for k in keys
    }
    # Runs whose training failed (diverged): not in any table, so named here with why.
    results["failed"] = list(failed or [])
    write_json_atomic(out / "results.json", results)
    lines = [
        f"# {exp.name}",
        "",
        exp.description,
        "",
        f"Date {results['date']}, commit {results['commit']}, hardware: {results['hardware']}.",
        _trained_on(records),
        f"Protocol: test folds {exp.protocol['test_folds']}, "
        f"validation {exp.protocol['val_fold']}, "
        f"seeds {exp.protocol['seeds']}; mean ± SD over runs; MAE in mmHg; calibrated = "
        f"{exp.protocol['calibration']} from each subject's first window.",
    ]
    if not keys:
        # No run scored at all: the variants' notes would otherwise have no table to go under.
        note = _not_tabulated(results, None)
        if note:
            lines += ["", note]
    for key in keys:
        lines += ["", f"## {key}", "", markdown_table(results, key)]
        note = _not_tabulated(results, key)
        if note:
            lines += ["", note]
        for reference in exp.protocol["reference"]:
            if not results["paired"][key][reference]:
                # A header without rows read as a table still to be filled in.
                lines += [
                    "",
                    f"No paired differences against `{reference}`: no other variant has a "
                    "run scored on the same folds and seeds as it.",
                ]
                continue
            lines += [
                "",
                f"Paired differences against `{reference}` on the same folds and "
                "seeds (variant - reference, mean; negative = better; wins = runs where "
                "the variant's error is lower):",
                "",
                paired_table(results["paired"][key][reference]),
            ]
    if results["failed"]:
        lines += [
            "",
            "## Failed runs",
            "",
            "Their training failed, so they are in no table above; running the experiment "
            "again trains them again (they are seeded: expect them to fail again unless the "
            "configuration changes):",
            "",
        ]
        lines += [
            f"- {f['variant']} {Path(f['run_dir']).name}: {f['message']}"
            + (
                f" (with an earlier configuration: {'; '.join(f['changed_since'][:3])}; the "
                "present one has not run)"
                if f.get("changed_since")
                else ""
            )
            for f in results["failed"]
        ]
    # Through a temporary file named by process: runners on one table (finished_records)
    # may write it at the same moment.
    write_bytes_atomic(out / "results.md", ("\n".join(lines) + "\n").encode())
    return results


def check_selection(
    exp: Experiment,
    only: list[str] | None = None,
    folds: list[int] | None = None,
    seeds: list[int] | None = None,
) -> Experiment:
    """``exp``, once the variants, test folds and seeds chosen to run are all in it."""
    for chosen, key, what in ((folds, "test_folds", "test fold(s)"), (seeds, "seeds", "seed(s)")):
        unknown = sorted(set(chosen or ()) - set(exp.protocol[key]))
        if unknown:
            raise ConfigError(
                f"{exp.path}: {what} {unknown} are not in the experiment's {key} "
                f"{exp.protocol[key]}"
            )
    names = [v.name for v in exp.variants]
    unknown_variants = sorted(set(only or ()) - set(names))
    if unknown_variants:
        raise ConfigError(
            f"{exp.path}: variant(s) {unknown_variants} are not in the experiment "
            f"(it has {', '.join(names)})"
        )
    return exp


# The options of ``innpar train`` that training's messages name, as an experiment file sets
# them: a runner has no such option. Both spellings (errors.option): the runner's script
# runs training in the command line's, run_experiment called from Python in the API's.
_CONFIG_TERMS = {
    "(--lr)": "(the variant's train.lr)",
    "(train.lr)": "(the variant's train.lr)",
}


def in_config_terms(message: str) -> str:
    """``message`` of training, naming a configuration's settings where it names options."""
    for option, setting in _CONFIG_TERMS.items():
        message = message.replace(option, setting)
    return message


def run_experiment(
    path: str | Path,
    out_root: str | Path,
    device: str = "auto",
    only: list[str] | None = None,
    log: Any = print,
    callbacks: Any = None,
    folds: list[int] | None = None,
    seeds: list[int] | None = None,
) -> dict[str, Any]:
    """Run (or resume) every variant x seed x test fold of an experiment file, or only the
    variants in ``only``, the test folds in ``folds`` and the seeds in ``seeds``; returns
    the results table. A run whose training diverges does not stop the others: it is in
    the table's ``failed`` list (with every failed run of the experiment that has no
    row, whichever call tried it: see recorded_failures), and a later call that selects it
    trains it again."""
    exp = check_selection(load_experiment(path), only, folds, seeds)
    from innpar_freia.train import resolve_device

    resolve_device(device)  # "cuda" on a machine without one fails here, before any folder
    out = Path(out_root) / exp.name
    # Before the data are made (minutes) and the runs trained (hours): a folder that cannot
    # be written was found at its first run folder, or by the table at the very end.
    check_writable(out / "results.json")
    data = prepare_data(exp, log)
    check_extra_files(exp, data)
    check_extra_not_training_data(exp, data)
    # The commit the runs are made from, read before this runner writes anything: the
    # table it rewrites after each run is versioned, and would mark the tree "+dirty".
    commit = experiment_commit(exp)
    todo = [
        (variant, seed, fold)
        for variant in exp.variants
        if not only or variant.name in only
        for seed in exp.protocol["seeds"]
        if seeds is None or seed in seeds
        for fold in exp.protocol["test_folds"]
        if folds is None or fold in folds
    ]
    # Before anything trains: each run to make or reuse, and every finished run the table
    # shows (also those not run now), is the one the config describes. Found after a run
    # had trained, a stale run of another variant wasted it and kept the table old.
    from innpar_freia.data.dataset import plan_splits
    from innpar_freia.data.store import read_info
    from innpar_freia.run_lock import RunDirBusy, held_by_another, table_lock

    info = read_info(data)
    for variant, seed, fold in todo:
        run_dir = run_directory(out, variant, fold, seed)
        run_config = run_config_for(exp, variant, fold, seed)
        # A test or validation fold the file does not have stops here, not after the runs
        # before it have trained (hours, on a real config).
        plan_splits(info, run_config.train.test_fold, run_config.train.val_fold)
        if held_by_another(run_dir) is None:  # one being trained is the trainer's to check
            check_run(exp, variant, run_dir, run_config, data)
    finished_records(exp, out, data, log=lambda s: None)
    said: set[str] = set()

    def once(note: str) -> None:
        """A note on the table's rows, said the first time only: the table is gathered
        again after every run."""
        if note not in said:
            said.add(note)
            log(note)

    def tabulate() -> dict[str, Any]:
        # Under the table's lock: another runner that gathered the runs before this one's
        # latest finished must not write its table over this one's afterwards.
        with table_lock(out):
            records = finished_records(exp, out, data, once)
            # Runs whose training failed on their own (the loss or weights became NaN),
            # this runner's or another's: named in the table, with why.
            failed = recorded_failures(exp, out, records, data)
            return write_results(exp, out, records, device, commit, failed)

    created = make_folder(out)
    attempted: list[Path] = []
    # (variant, seed, fold) of the runs skipped as another process's -> their folders
    held: dict[tuple[str, int, Any], Path] = {}

    def run_or_skip(variant: Variant, seed: int, fold: Any) -> None:
        run_dir = run_directory(out, variant, fold, seed)
        attempted.append(run_dir)
        key = (variant.name, seed, fold)
        try:
            run_one(exp, variant, data, fold, seed, out, device, log, callbacks, commit, tabulate)
        except RunDirBusy as exc:
            # Another runner of this experiment (or an innpar train) is training it: that
            # one finishes it and rewrites the table; this one goes on with the rest, so
            # that several runners started alike share out the runs.
            if key not in held:
                log(
                    f"[{exp.name}] {variant.name} {run_dir.name}: being trained by another "
                    f"process{exc.holder}; skipped"
                )
            held[key] = run_dir
            return
        except TrainingDiverged as exc:
            # This run's own failure, not the experiment's (a bad config or data file, a
            # full disk and Ctrl-C still stop the runner): hours of other runs were lost
            # to it, and a rerun stopped at it again before reaching them.
            # run_one has recorded it in the run's folder (failed.json), for the table.
            message = in_config_terms(str(exc))
            log(f"[{exp.name}] {variant.name} {run_dir.name}: failed: {message}")
        held.pop(key, None)
        tabulate()

    try:
        for variant, seed, fold in todo:
            run_or_skip(variant, seed, fold)
        # Once more, those skipped: a process that held one may have ended (killed) and
        # left it unfinished; it is resumed here, or skipped again while still held.
        for variant, seed, fold in todo:
            if (variant.name, seed, fold) in held:
                run_or_skip(variant, seed, fold)
    except BaseException:
        # A run that fails (bad data, a bad fold) leaves no empty folders behind. Only this
        # runner's own folders are looked at: another runner on the same experiment may
        # have made a run folder that is still empty because its training is starting.
        remove_if_empty(_own_folders(attempted, out))
        remove_if_empty(reversed(created))
        raise
    results = tabulate()
    # Those the other process had not finished when the table was written.
    missing = [
        f"{name} {run_dir.name}"
        for (name, _, _), run_dir in held.items()
        if not (run_dir / "done.json").exists()
    ]
    if missing:
        log(
            f"[{exp.name}] not in the table yet, being trained by other processes: "
            f"{', '.join(missing)}. A runner of this experiment adds its runs to the table "
            "as it finishes them; after an innpar train, run this again."
        )
    return results


def finished_records(
    exp: Experiment, out: Path, data: Path, log: Any = print
) -> list[dict[str, Any]]:
    """Every finished run of the experiment on disk, so that several runner processes
    (e.g. one per CPU core, ``--only`` different variants) share one results table.

    A run whose directory is absent (run directories are not versioned: a fresh checkout
    has only ``results.json``) keeps its record from the existing ``results.json``, so that
    running one new variant does not drop every earlier row from the table; a run on disk
    always wins. Either must still be the run the configuration describes: a run on disk
    made with another recipe is an error (as when it is run), and a kept row that records
    another recipe is left out, with a note (rows from before recipes were recorded are
    kept)."""
    previous: dict[tuple[str, Any, Any], dict[str, Any]] = {}
    table = out / "results.json"
    # The calibration of a table written before rows kept how they were scored.
    table_scoring: dict[str, Any] = {}
    if table.exists():
        # Its rows are all that is left of runs whose folders are gone (not versioned): a
        # damaged table is not rewritten without them, and nothing trains before it is
        # mended (run_experiment reads it first).
        remedy = (
            "it holds the rows of runs whose folders may be gone: restore it (git checkout "
            "it), or remove it to rebuild the table from the runs on disk"
        )
        old_table = read_json_object(table, "the results table", remedy)
        try:
            for name, entry in old_table.get("variants", {}).items():
                for r in entry.get("runs", []):
                    problem = record_problem(r)
                    if problem:
                        # Every row, also those of runs on disk: found only where a row
                        # was used, it stopped the runner after the runs before it.
                        raise ConfigError(
                            f"the results table {table} is damaged (not the runner's layout: "
                            f"{name} fold {r.get('test_fold')} seed {r.get('seed')}: "
                            f"{problem}); {remedy}"
                        )
                    previous[(name, r.get("test_fold"), r.get("seed"))] = r
            protocol = old_table.get("protocol")
            calibration = protocol.get("calibration") if isinstance(protocol, dict) else None
            table_scoring = {"calibration": calibration} if isinstance(calibration, str) else {}
        except (AttributeError, TypeError):
            raise ConfigError(
                f"the results table {table} is damaged (not the runner's layout); {remedy}"
            ) from None
    now = scorings(exp, data)

    def scored_now(record: dict[str, Any], what: str, run_dir: Path | None) -> dict[str, Any]:
        """``record`` without the evaluations scored otherwise than the experiment scores
        now (an edited calibration or extra_eval): a table must not show them under it."""
        evaluations = {}
        for key, scores in record.get("evaluations", {}).items():
            label = key.rsplit("/", 1)[0]
            scored = scored_with(record, key, run_dir) or (table_scoring if run_dir is None else {})
            diffs = scoring_diffs(scored, now[label]) if label in now else []
            if diffs:
                log(
                    f"[{exp.name}] {what}: {key} was scored with {'; '.join(diffs)}; left out "
                    + ("until it is scored again" if run_dir else "(its run is gone)")
                )
                continue
            evaluations[key] = scores
        return {**record, "evaluations": evaluations}

    from functools import cache

    from innpar_freia.data.store import read_info

    # A kept row's recipe may write val_fold "next": the file says which fold it names
    # (read once, and only for such rows).
    info = cache(lambda: read_info(data))
    records = []
    for variant in exp.variants:
        for seed in exp.protocol["seeds"]:
            for fold in exp.protocol["test_folds"]:
                run_dir = run_directory(out, variant, fold, seed)
                done = run_dir / "done.json"
                if done.exists():
                    # Also the runs --only, --folds or --seeds did not run this time.
                    check_same_recipe(
                        run_dir, run_config_for(exp, variant, fold, seed), data, finished=True
                    )
                    if variant.reuse:  # also those not run now: never "until scored again"
                        check_reused_scoring(exp, variant, run_dir, data)
                    record = _run_record(done)
                    records.append(
                        {**scored_now(record, str(run_dir), run_dir), "variant": variant.name}
                    )
                elif (variant.name, fold, seed) in previous:
                    row = previous[(variant.name, fold, seed)]
                    diffs = (
                        recipe_diffs(
                            row["recipe"],
                            run_config_for(exp, variant, fold, seed),
                            info=info(),
                        )
                        if isinstance(row.get("recipe"), dict)
                        else []
                    )
                    if diffs:
                        log(
                            f"[{exp.name}] {variant.name} fold {fold} seed {seed}: the row in "
                            f"{table} was made with another configuration "
                            f"({'; '.join(diffs[:3])}) and its run is gone; left out"
                        )
                        continue
                    what = f"{variant.name} fold {fold} seed {seed} (a row in {table})"
                    records.append({**scored_now(row, what, None), "variant": variant.name})
    return records
