"""The evaluation report of ``innpar eval``: every protocol number of one or more checkpoints
next to the baselines, as ``metrics.json``, ``report.md`` (figures beside it) and a
self-contained ``report.html`` (figures embedded), written all-or-nothing.

This module evaluates, draws the figures and writes the files; what the report says and
how it is rendered is :mod:`innpar_freia.report_content`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia import __version__
from innpar_freia.checkpoint import Checkpoint, load_checkpoint
from innpar_freia.errors import DataError, option
from innpar_freia.evaluate import Predictions, evaluate_full
from innpar_freia.metrics import Scored, calibrate
from innpar_freia.outputs import (
    StagedOutputs,
    check_outputs,
    json_text,
    remove_if_empty,
    same_file,
)
from innpar_freia.report_content import (
    Block,
    comparison,
    model_blocks,
    render_html,
    render_markdown,
)

REPORT_FILES = ("metrics.json", "report.md", "report.html")
COMPARISON_FILES = ("comparison.md", "comparison.json")


# ----------------------------------------------------------------------------- evaluation


@dataclass
class EvalEntry:
    """One evaluated checkpoint: its name in the report, metrics, predictions and the
    windows each protocol scored (:func:`innpar_freia.metrics.protocol_windows`)."""

    name: str
    checkpoint: Checkpoint
    metrics: dict[str, Any]
    predictions: Predictions
    windows: dict[str, Scored]
    history: list[dict[str, Any]] = field(default_factory=list)


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run directory of ``run/checkpoints/best.pt`` (else the checkpoint's folder)."""
    path = Path(checkpoint)
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def default_out_dir(checkpoint: str | Path, split: str, test_fold: int | None = None) -> Path:
    """``<run>/eval-<split>`` (``eval-<split>-fold<k>`` with another test fold)."""
    fold = "" if test_fold is None else f"-fold{test_fold}"
    return run_dir_of(checkpoint) / f"eval-{split}{fold}"


def model_names(paths: list[Path]) -> list[str]:
    """Short unique names: ``<run>/<checkpoint stem>`` (``#2``... for repeats), unique
    also as file names (``a/b_c`` and ``a_b/c`` would share a figures folder and a
    predictions file)."""
    names: list[str] = []
    for p in paths:
        base = f"{run_dir_of(p).name}/{p.stem}"
        name, k = base, 2
        while name in names or _slug(name) in {_slug(n) for n in names}:
            name, k = f"{base}#{k}", k + 1
        names.append(name)
    return names


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The epoch records of ``run_dir/metrics.jsonl`` (empty when there is none)."""
    path = run_dir / "metrics.jsonl"
    return read_epoch_records(path) if path.is_file() else []


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def read_epoch_records(path: Path) -> list[dict[str, Any]]:
    """The epoch records (JSON objects with an ``epoch``) among the lines of ``path``.

    Lines that are not JSON, or whose values are not all numbers, are skipped: a line cut
    by a crash mid-write leaves the other epochs good, and every field training writes is a
    number. A file that is not text at all (a figure, an HDF5 file given by mistake)
    decodes to no records, which callers report, instead of failing on its bytes.
    """
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not (isinstance(record, dict) and "epoch" in record):
            continue
        if all(_is_number(v) for v in record.values()):
            out.append(record)
    return out


def path_list(paths: Any, what: str) -> list[Path]:
    """``paths`` (a list of str or os.PathLike) as Paths. One path alone is refused by name:
    a str was iterated character by character ("/ is a directory")."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a list of paths, not one path: pass [{paths!r}]")
    paths = list(paths)
    bad = [p for p in paths if not isinstance(p, (str, os.PathLike))]
    if bad:
        raise TypeError(f"{what} must be paths (str or Path), not {bad[0]!r}")
    return [Path(p) for p in paths]


def evaluate_checkpoints(
    checkpoints: list[str | os.PathLike[str]],
    data: str | os.PathLike[str],
    split: str = "test",
    *,
    test_fold: int | None = None,
    calibration: str | None = "offset-scale",
) -> list[EvalEntry]:
    """Evaluate each checkpoint (a list of paths, str or Path) on the same windows; several
    checkpoints must score exactly the same windows (else a comparison would mislead), or a
    ``DataError`` says so."""
    checkpoints = path_list(checkpoints, "checkpoints")
    ckpts = [load_checkpoint(p) for p in checkpoints]
    names = model_names(list(checkpoints))
    entries = []
    for name, ckpt in zip(names, ckpts, strict=True):
        metrics, preds, windows = evaluate_full(
            ckpt, data, split, test_fold=test_fold, calibration=calibration
        )
        metrics["name"] = name
        entries.append(
            EvalEntry(name, ckpt, metrics, preds, windows, read_history(run_dir_of(ckpt.path)))
        )
        first = entries[0]
        if not np.array_equal(preds.indices, first.predictions.indices):
            raise DataError(
                f"{name} scores other {split} windows than {first.name} (their runs chose "
                f"different test folds: {ckpt.run_config.train.test_fold} vs "
                f"{first.checkpoint.run_config.train.test_fold}); pass "
                f"{option('--test-fold K', 'test_fold=K')} to score the same fold with all of them"
            )
    return entries


# ----------------------------------------------------------------------------- figures


def _pick_windows(scored: Scored) -> tuple[np.ndarray, list[str]]:
    """The windows of the 10th, 50th and 90th percentile and the largest waveform MAE."""
    mae = scored.wave.abs_sum / scored.wave.length
    order = np.argsort(mae, kind="stable")
    picks, labels = [], []
    # Each label says how its window was chosen: a panel read alone shows one window of many.
    for q, label in (
        (0.1, "10th percentile of MAE"),
        (0.5, "median MAE"),
        (0.9, "90th percentile of MAE"),
        (1.0, "largest MAE"),
    ):
        i = int(order[min(len(order) - 1, round(q * (len(order) - 1)))])
        if i not in picks:
            picks.append(i)
            labels.append(label)
    return np.array(picks), labels


# The figures a report draws (``figures/<key>.png``, a folder per model with several).
FIGURE_KEYS = (
    "reconstructions",
    "bland_altman",
    "errors",
    "bland_altman_calibrated",
    "errors_calibrated",
    "inverse",
    "training",
)


def render_figures(e: EvalEntry, staged: StagedOutputs, fig_dir: Path) -> dict[str, Path]:
    """Draw one checkpoint's figures (PNG) into ``fig_dir`` through ``staged``; returns the
    final paths by figure key."""
    from innpar_freia import plots
    from innpar_freia.figures import scope_phrase

    p, w = e.predictions, e.windows
    # The run and checkpoint, and which windows: a run's val and test reports are told
    # apart by their titles.
    scope = scope_phrase(e.metrics.get("split"), e.metrics.get("fold"))
    what = f"{e.name}, {scope}" if scope else e.name
    fs = e.checkpoint.fs
    out: dict[str, Path] = {}

    def stage(key: str) -> Path:
        assert key in FIGURE_KEYS, key  # what check_report_outputs protects
        final = fig_dir / f"{key}.png"
        out[key] = final
        return staged.stage(final)

    picks, labels = _pick_windows(w["model"])
    titles = [
        f"{lab}: {p.subjects[i]} ({p.window_ids[i]})" for i, lab in zip(picks, labels, strict=True)
    ]
    plots.plot_reconstructions(
        p.abp[picks],
        p.abp_pred[picks],
        fs,
        stage("reconstructions"),
        titles=titles,
        title=f"{what}: calibration-free, windows picked by their waveform MAE",
    )
    model = w["model"]
    plots.plot_bland_altman(
        model.bp_pred, model.bp_ref, stage("bland_altman"), title=f"{what}: calibration-free"
    )
    methods = {"model": (model.bp_pred, model.bp_ref)}
    for key in ("naive", "linear"):
        if key in w:
            methods[key] = (w[key].bp_pred, w[key].bp_ref)
    plots.plot_error_distributions(methods, stage("errors"), title=f"{what}: calibration-free")
    if "model_calibrated" in w and len(w["model_calibrated"]):
        cal, cf = w["model_calibrated"], w["carry_forward"]
        label = e.metrics["calibrated"]["calibration"]
        plots.plot_bland_altman(
            cal.bp_pred,
            cal.bp_ref,
            stage("bland_altman_calibrated"),
            title=f"{what}: calibrated ({label})",
        )
        plots.plot_error_distributions(
            {"model": (cal.bp_pred, cal.bp_ref), "carry-forward": (cf.bp_pred, cf.bp_ref)},
            stage("errors_calibrated"),
            title=f"{what}: calibrated ({label})",
        )
    if p.ppg_pred is not None:
        from innpar_freia.signal import zscore

        plots.plot_reconstructions(
            zscore(p.ppg[picks]),
            p.ppg_pred[picks],
            fs,
            stage("inverse"),
            titles=[
                f"{lab} ABP window: {p.subjects[i]} ({p.window_ids[i]})"
                for i, lab in zip(picks, labels, strict=True)
            ],
            ylabel="PPG (z-score)",
            what="PPG",
            units="z",
            markers=False,
            title=f"{what}: PPG from ABP (reverse pass)",
        )
    if e.history:
        from innpar_freia.figures import recorded_config, run_phrase

        run_dir = run_dir_of(e.checkpoint.path)
        plots.plot_training_curves(
            e.history,
            stage("training"),
            # As `innpar plot training` titles it: the run's preset, test fold and data.
            title=f"run {run_dir.name}" + run_phrase(recorded_config(run_dir)),
            loss_weights=asdict(e.checkpoint.run_config.train),
        )
    return out


# ----------------------------------------------------------------------------- writing


def prediction_path(base: Path, name: str, several: bool) -> Path:
    """``FILE`` for one checkpoint; ``FILE-<name>.h5`` for each of several."""
    if not several:
        return base
    return base.with_name(f"{base.stem}-{_slug(name)}{base.suffix or '.h5'}")


def report_figures(figures: Path) -> list[Path]:
    """The PNGs under ``figures`` that a report writes: ``<key>.png`` of :data:`FIGURE_KEYS`
    there or in a model's folder one level down. A user's own figures (other names, or
    deeper) are neither counted nor removed."""
    if not figures.is_dir():
        return []
    found = {p for key in FIGURE_KEYS for p in figures.glob(f"{key}.png")}
    found |= {p for key in FIGURE_KEYS for p in figures.glob(f"*/{key}.png")}
    return sorted(p for p in found if p.is_file())


def existing_report(out_dir: Path) -> list[Path]:
    """The files of an earlier report in ``out_dir``: what a new one there replaces. Only
    a folder with a report file holds a report, and only its figures
    (:func:`report_figures`) under ``figures/`` are the report's."""
    names = [out_dir / n for n in REPORT_FILES + COMPARISON_FILES]
    found = [p for p in names if p.is_file()]
    if found:
        found += report_figures(out_dir / "figures")
    return found


def report_files(out_dir: Path, names: list[str], figures: bool) -> list[Path]:
    """Every file a report of the models ``names`` may write into ``out_dir``."""
    several = len(names) > 1
    paths = [out_dir / n for n in REPORT_FILES + (COMPARISON_FILES if several else ())]
    if figures:
        for name in names:
            sub = out_dir / "figures" / (_slug(name) if several else "")
            paths += [sub / f"{key}.png" for key in FIGURE_KEYS]
    return paths


def check_report_outputs(
    out_dir: str | os.PathLike[str],
    checkpoints: list[str | os.PathLike[str]],
    data: str | os.PathLike[str],
    save_predictions: str | os.PathLike[str] | None,
    force: bool,
    figures: bool = True,
) -> None:
    """Before any work: refuse to replace an earlier report or predictions file unless
    ``force``; and in any case a report file or predictions file that is the data or a
    checkpoint, and a predictions file that is one of the report's own files."""
    out_dir, data = Path(out_dir), Path(data)
    checkpoints = path_list(checkpoints, "checkpoints")
    save_predictions = None if save_predictions is None else Path(save_predictions)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"report directory {out_dir} is a file")
    names = model_names(list(checkpoints))
    own = report_files(out_dir, names, figures)
    for path in own:
        for source in (data, *checkpoints):
            if same_file(path, Path(source)):
                raise DataError(
                    f"the report would write {path}, which is the input {source}; choose "
                    f"another {option('--out', 'out_dir')} ({option('--force', 'force=True')} "
                    "never replaces an input)"
                )
    if existing_report(out_dir) and not force:
        raise DataError(
            f"{out_dir} already holds a report; pass {option('--force', 'force=True')} to "
            f"replace it, or choose another {option('--out', 'out_dir')}"
        )
    if not force:
        # Not a report, but figures the report would write over (a paper's folder).
        taken = [p for p in own if p.is_file()]
        if taken:
            raise DataError(
                f"{taken[0]} exists and the report would replace it; pass "
                f"{option('--force', 'force=True')}, or choose another {option('--out', 'out_dir')}"
            )
    if save_predictions is not None:
        several = len(checkpoints) > 1
        finals = [prediction_path(save_predictions, name, several) for name in names]
        report = {p.resolve() for p in own}
        for final in finals:
            if final.resolve() in report:
                raise DataError(
                    f"{option('--save-predictions', 'save_predictions')} {final} is one of the "
                    "report's own files; give "
                    "the predictions another name"
                )
        check_outputs(finals, force, inputs=[data, *checkpoints])


def what_was_scored(m: dict[str, Any]) -> dict[str, Any]:
    """Which windows a model's metrics (one of a comparison's, all on the same windows)
    come from, and how they were calibrated."""
    cal = m.get("calibrated") or {}
    return {
        "data": m.get("data"),
        "split": m.get("split"),
        "fold": m.get("fold"),
        "n_windows": m["calibration_free"]["n_windows"],
        "calibration": cal.get("calibration"),
        "units": "mmHg",
    }


def scored_text(scored: dict[str, Any]) -> str:
    """:func:`what_was_scored` as the line above a comparison table."""
    fold = f" (fold {scored['fold']})" if scored.get("fold") is not None else ""
    cal = scored["calibration"] or "none"
    return (
        f"`{scored['data']}`, split **{scored['split']}**{fold}: {scored['n_windows']} "
        f"windows, the same for every model. MAE in mmHg; 'cal.' = calibrated protocol "
        f"({cal}, from each subject's first window, which its 'cal.' columns do not score)."
    )


def write_report(
    entries: list[EvalEntry],
    out_dir: str | os.PathLike[str],
    *,
    save_predictions: str | os.PathLike[str] | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """Write metrics.json, report.md, report.html, figures/ (and comparison.md/.json for
    several checkpoints, and predictions files) into ``out_dir``, all or nothing.
    Returns the written paths. ``out_dir`` and ``save_predictions``: str or Path."""
    from innpar_freia.predictions import write_predictions

    out_dir = Path(out_dir)
    save_predictions = None if save_predictions is None else Path(save_predictions)

    several = len(entries) > 1
    written: dict[str, Any] = {}
    earlier = existing_report(out_dir)
    with StagedOutputs() as staged:
        fig_paths: dict[str, dict[str, Path]] = {}
        for e in entries:
            sub = out_dir / "figures" / (_slug(e.name) if several else "")
            fig_paths[e.name] = render_figures(e, staged, sub) if figures else {}
        images = {}
        rel: dict[str, dict[str, str]] = {}
        for name, paths in fig_paths.items():
            rel[name] = {}
            for key, path in paths.items():
                r = path.relative_to(out_dir).as_posix()
                rel[name][key] = r
                images[r] = staged.staged_path(path).read_bytes()
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        blocks: list[Block] = [("h1", "INN-PAR evaluation report")]
        blocks.append(
            (
                "p",
                f"innpar-freia {__version__}, {created}. Protocol: "
                "docs/protocol.md of innpar-freia.",
            )
        )
        if several:
            table, records = comparison(entries)
            scored = what_was_scored(entries[0].metrics)
            blocks += [
                ("h2", "Comparison"),
                (
                    "p",
                    "Same windows for every model; BP columns "
                    "are MAE in mmHg; 'cal.' = calibrated protocol.",
                ),
                ("table", table),
            ]
            # On their own, the comparison files said neither which windows nor which
            # calibration ('cal.' SBP 13.2 with offset, 22.1 with offset-scale).
            comp_md = render_markdown(
                [("h1", "Comparison"), ("p", scored_text(scored)), ("table", table)]
            )
            staged.write_text(out_dir / "comparison.md", comp_md)
            staged.write_text(out_dir / "comparison.json", json_text({**scored, "rows": records}))
            written["comparison"] = [
                str(out_dir / "comparison.md"),
                str(out_dir / "comparison.json"),
            ]
        for e in entries:
            blocks += model_blocks(e, rel[e.name], heading=2)
        metrics = (
            entries[0].metrics
            if not several
            else {"models": [e.metrics for e in entries], "comparison": comparison(entries)[1]}
        )
        staged.write_text(out_dir / "metrics.json", json_text(metrics))
        staged.write_text(out_dir / "report.md", render_markdown(blocks))
        title = "INN-PAR evaluation: " + ", ".join(e.name for e in entries)
        staged.write_text(out_dir / "report.html", render_html(blocks, title, images))
        written.update({k: str(out_dir / k) for k in REPORT_FILES})
        written["figures"] = {n: [str(p) for p in v.values()] for n, v in fig_paths.items()}
        if save_predictions is not None:
            written["predictions"] = []
            for e in entries:
                path = prediction_path(save_predictions, e.name, several)
                _write_entry_predictions(write_predictions, e, staged.stage(path))
                written["predictions"].append(str(path))
        # Replacing a report: files of the earlier one that this one does not write
        # (another model's figures, a comparison) would otherwise sit next to it as if they
        # were its own. They go as the new files are put in place.
        new = set(staged.finals)
        removed = [path for path in earlier if path not in new]
        staged.remove_on_commit(removed)
    # The folders the removed figures leave empty (a model's, or figures/ itself), innermost
    # first; not every empty folder under figures/: one a user made there is theirs.
    figures = out_dir / "figures"
    held = {q for path in removed for q in path.parents if q.is_relative_to(figures)}
    remove_if_empty(sorted(held, key=lambda q: len(q.parts), reverse=True))
    return written


def _write_entry_predictions(write_predictions: Any, e: EvalEntry, path: Path) -> None:
    p, m = e.predictions, e.metrics
    calibrated = scored = None
    mode = m.get("calibrated", {}).get("calibration") if m.get("calibrated") else None
    if mode is not None:
        model = e.windows["model"]
        # float32, as the file stores it: half the memory of a float64 copy of the split.
        calibrated, scored = calibrate(
            p.abp_pred, model.bp_pred, model.bp_ref, p.abp, p.subjects, p.order, mode, np.float32
        )
    write_predictions(
        path,
        fs=e.checkpoint.fs,
        window_id=p.window_ids,
        subject=p.subjects,
        start=p.start,
        index=p.indices,
        prediction=p.abp_pred,
        reference=p.abp,
        calibrated=calibrated,
        scored=scored,
        ppg_inverse=p.ppg_pred,
        attrs={
            "checkpoint": m["checkpoint"],
            "data": m["data"],
            "split": m["split"],
            # The fold of the split, for the titles 'innpar plot' draws from the file.
            **({"fold": m["fold"]} if m.get("fold") is not None else {}),
            "calibration": mode or "none",
            "name": e.name,
        },
    )


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
