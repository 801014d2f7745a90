"""Tests that pin what a mutation audit of the evaluation report (innpar_freia.report: the
report folder, its refusals, the figures it draws, comparisons of several checkpoints and
the predictions files) found unguarded: each one fails when the bug named in its docstring
is put into the package."""

from __future__ import annotations

import base64
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from innpar_freia.config import TrainConfig
from innpar_freia.errors import DataError
from innpar_freia.evaluate import Predictions
from innpar_freia.metrics import Scored
from innpar_freia.outputs import StagedOutputs
from innpar_freia.report import (
    FIGURE_KEYS,
    EvalEntry,
    check_report_outputs,
    default_out_dir,
    evaluate_checkpoints,
    existing_report,
    model_names,
    render_figures,
    report_files,
    scored_text,
    what_was_scored,
    write_report,
)

# ----------------------------------------------------------------------- stand-in figures

# Where each plot function of innpar_freia.plots takes the path it writes.
_PATH_ARG = {
    "plot_reconstructions": 3,
    "plot_bland_altman": 2,
    "plot_error_distributions": 1,
    "plot_training_curves": 1,
}


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The plot functions the report calls, replaced by ones that record their arguments
    and write a few bytes naming the figure (so that a report is written in milliseconds
    and each embedded figure can be told apart)."""
    from innpar_freia import plots

    calls = []

    def recorder(name: str):
        def draw(*args, **kwargs):
            path = Path(args[_PATH_ARG[name]])
            calls.append(SimpleNamespace(name=name, args=args, kwargs=kwargs, path=path))
            path.write_bytes(b"\x89PNG " + str(len(calls)).encode())
            return path

        return draw

    for name in _PATH_ARG:
        monkeypatch.setattr(plots, name, recorder(name))
    return calls


def _scored(
    n: int, seed: float, pred: np.ndarray | None = None, ref: np.ndarray | None = None
) -> Scored:
    bp = np.arange(n * 3, dtype=float).reshape(n, 3) + seed
    pred = np.zeros((n, 4)) if pred is None else pred
    ref = np.zeros((n, 4)) if ref is None else ref
    return Scored.from_windows(pred, ref, bp, bp + 100.0, np.array(["s"] * n))


def _entry(tmp_path: Path, *, calibrated_windows: int = 2, full: bool = True) -> EvalEntry:
    """Five windows of four samples. Window i: reference 100 + i mmHg, prediction off by
    the MAE 3, 1, 4, 0, 2 mmHg; PPG [10, 14, 10, 14] + i (z-score -1, 1, -1, 1)."""
    mae = np.array([3.0, 1.0, 4.0, 0.0, 2.0])
    abp = np.repeat((100.0 + np.arange(5))[:, None], 4, axis=1)
    ppg = np.array([10.0, 14.0, 10.0, 14.0]) + np.arange(5)[:, None]
    preds = Predictions(
        indices=np.arange(5),
        window_ids=np.array([f"w{i}" for i in range(5)]),
        subjects=np.array(["s1", "s1", "s2", "s2", "s2"]),
        start=np.arange(5),
        ppg=ppg,
        abp=abp,
        abp_pred=abp + mae[:, None],
        ppg_pred=np.arange(20.0).reshape(5, 4) if full else None,
    )
    # The model's windows are these predictions (the reconstructions are ranked by them).
    windows = {"model": _scored(5, 0.0, preds.abp_pred, preds.abp)}
    if full:
        windows |= {"naive": _scored(5, 1.0), "linear": _scored(5, 2.0)}
    windows |= {"model_calibrated": _scored(calibrated_windows, 3.0)}
    windows |= {"carry_forward": _scored(calibrated_windows, 4.0)}
    ckpt = SimpleNamespace(
        fs=125.0,
        path=tmp_path / "00007-myrun" / "checkpoints" / "best.pt",
        run_config=SimpleNamespace(train=TrainConfig(pair_weight=3.0)),
    )
    history = [{"epoch": 1, "loss": 0.5}] if full else []
    metrics = {"calibrated": {"calibration": "offset"}, "split": "test", "fold": 2}
    return EvalEntry("00007-myrun/best", ckpt, metrics, preds, windows, history)


def test_each_figure_draws_what_its_caption_says(tmp_path: Path, drawn: list) -> None:
    """Guards against the figures mixing up what they show: reference and prediction
    swapped in the reconstructions or the Bland-Altman plot; the linear baseline left out
    of the error distributions; the calibrated model's windows drawn as carry-forward; the
    PPG of the reverse pass drawn raw instead of z-scored; the calibration left out of, or
    misnamed in, the calibrated figures' titles; the training curves titled with the model
    name instead of the run; and the figures given another suffix than .png.

    Windows 0-4 have MAEs 3, 1, 4, 0, 2 mmHg, so ranked 3, 1, 4, 0, 2: the 10th percentile
    (rank round(0.4) = 0), median (rank 2) and 90th percentile (rank round(3.6) = 4) are
    windows 3, 4 and 2; the worst is window 2 again, drawn once."""
    e = _entry(tmp_path)
    fig_dir = tmp_path / "figs"
    with StagedOutputs() as staged:
        out = render_figures(e, staged, fig_dir)
    assert out == {key: fig_dir / f"{key}.png" for key in FIGURE_KEYS}
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in out.values())
    by_path = {call.path.name.split(".")[1]: call for call in drawn}
    rec = by_path["reconstructions"]
    np.testing.assert_array_equal(rec.args[0][:, 0], [103.0, 104.0, 102.0])  # reference
    np.testing.assert_array_equal(rec.args[1][:, 0], [103.0, 106.0, 106.0])  # prediction
    # Each panel, and the figure, say how its window was chosen.
    assert rec.kwargs["titles"] == [
        "10th percentile of MAE: s2 (w3)",
        "median MAE: s2 (w4)",
        "90th percentile of MAE: s2 (w2)",
    ]
    assert rec.kwargs["title"] == (
        "00007-myrun/best, test fold 2: calibration-free, windows picked by their waveform MAE"
    )
    w = e.windows
    ba = by_path["bland_altman"]
    assert ba.args[0] is w["model"].bp_pred and ba.args[1] is w["model"].bp_ref
    errors = by_path["errors"].args[0]
    assert list(errors) == ["model", "naive", "linear"]
    assert errors["linear"][0] is w["linear"].bp_pred
    cal = by_path["bland_altman_calibrated"]
    assert cal.args[0] is w["model_calibrated"].bp_pred
    assert cal.kwargs["title"] == "00007-myrun/best, test fold 2: calibrated (offset)"
    errors = by_path["errors_calibrated"]
    assert errors.kwargs["title"] == "00007-myrun/best, test fold 2: calibrated (offset)"
    assert errors.args[0]["model"][0] is w["model_calibrated"].bp_pred
    assert errors.args[0]["carry-forward"][0] is w["carry_forward"].bp_pred
    inverse = by_path["inverse"]
    np.testing.assert_allclose(inverse.args[0], [[-1.0, 1.0, -1.0, 1.0]] * 3)
    np.testing.assert_array_equal(inverse.args[1][:, 0], [12.0, 16.0, 8.0])  # rows 3, 4, 2
    assert inverse.kwargs["titles"][1] == "median MAE ABP window: s2 (w4)"
    assert by_path["training"].kwargs["title"] == "run 00007-myrun"
    # The run's loss weights, so that the figure can take the within-subject term out.
    assert by_path["training"].kwargs["loss_weights"]["pair_weight"] == 3.0


def test_no_calibrated_window_draws_no_calibrated_figure(tmp_path: Path, drawn: list) -> None:
    """Guards against drawing the calibrated figures when every window was a calibration
    window (one window per subject): the Bland-Altman plot of no windows fails, and the
    report with it. Without a reverse pass or a history neither the inverse nor the
    training figure is drawn."""
    e = _entry(tmp_path, calibrated_windows=0, full=False)
    with StagedOutputs() as staged:
        out = render_figures(e, staged, tmp_path / "figs")
    assert sorted(out) == ["bland_altman", "errors", "reconstructions"]
    assert list(next(c for c in drawn if c.path.name.startswith(".errors")).args[0]) == ["model"]


# ----------------------------------------------------------------------- names and folders


def test_the_default_report_folder_names_any_test_fold_even_fold_0() -> None:
    """Guards against the default folder leaving out --test-fold (the report of fold 3
    written over the run's own eval-test), or leaving out fold 0 (taken for no fold)."""
    ckpt = Path("runs") / "00003-r" / "checkpoints" / "best.pt"
    assert default_out_dir(ckpt, "test") == Path("runs/00003-r/eval-test")
    assert default_out_dir(ckpt, "test", 0) == Path("runs/00003-r/eval-test-fold0")
    assert default_out_dir(ckpt, "val", 3) == Path("runs/00003-r/eval-val-fold3")


def test_the_same_checkpoint_three_times_gets_three_names() -> None:
    """Guards against the repeat counter not counting on (a third repeat of a checkpoint
    looped for ever looking for a free name)."""
    best = Path("runs/00001-a/checkpoints/best.pt")
    names: list = []  # in a thread: the mutant loops for ever, and the test fails anyway
    worker = threading.Thread(target=lambda: names.append(model_names([best] * 3)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert names == [["00001-a/best", "00001-a/best#2", "00001-a/best#3"]]


def test_every_file_a_report_may_write(tmp_path: Path) -> None:
    """Guards against the list a report's refusals check (its own files) leaving out the
    comparison files of two checkpoints, the figures, or each model's figures folder."""
    out = tmp_path / "ev"
    top = [out / n for n in ("metrics.json", "report.md", "report.html")]
    cmp = [out / "comparison.md", out / "comparison.json"]
    assert report_files(out, ["r/a"], False) == top
    assert report_files(out, ["r/a", "r/b"], False) == top + cmp
    assert report_files(out, ["r/a"], True) == top + [
        out / "figures" / f"{key}.png" for key in FIGURE_KEYS
    ]
    both = report_files(out, ["r/a", "r/b"], True)
    assert both[5:] == [
        out / "figures" / m / f"{k}.png" for m in ("r_a", "r_b") for k in FIGURE_KEYS
    ]


@pytest.mark.parametrize("name", ["metrics.json", "report.md", "comparison.md", "comparison.json"])
def test_any_one_report_file_makes_a_folder_a_report(tmp_path: Path, name: str) -> None:
    """Guards against an earlier report found only by some of its files: a folder left with
    only metrics.json, or only a comparison's files, was written into without --force, and
    those files were left beside the new report as if they were its own."""
    (tmp_path / name).write_text("{}")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "errors.png").write_bytes(b"png")
    assert existing_report(tmp_path) == [tmp_path / name, tmp_path / "figures" / "errors.png"]
    with pytest.raises(DataError, match="already holds a report; pass force=True"):
        check_report_outputs(tmp_path, [Path("r/checkpoints/best.pt")], Path("d.h5"), None, False)


def test_a_folder_named_like_a_figure_is_not_a_report_file(tmp_path: Path) -> None:
    """Guards against counting a folder called errors.png as one of the report's figures
    (replacing the report would then try to delete it)."""
    (tmp_path / "report.md").write_text("# old")
    (tmp_path / "figures" / "errors.png").mkdir(parents=True)
    assert existing_report(tmp_path) == [tmp_path / "report.md"]


# ----------------------------------------------------------------------- refusals


CKPTS = [Path("runs/00001-a/checkpoints/best.pt"), Path("runs/00002-b/checkpoints/best.pt")]


def test_a_report_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """Guards against dropping the check that --out is not a file."""
    out = tmp_path / "ev"
    out.write_text("notes")
    with pytest.raises(DataError, match=re.escape(f"report directory {out} is a file")):
        check_report_outputs(out, CKPTS[:1], tmp_path / "d.h5", None, True)


def test_a_comparison_file_that_is_the_data_is_refused_even_with_force(tmp_path: Path) -> None:
    """Guards against leaving comparison.md out of the files checked against the inputs: a
    data file at that name was written over by a comparison of two checkpoints."""
    out = tmp_path / "ev"
    out.mkdir()
    data = out / "comparison.md"
    data.write_bytes(b"HDF")
    with pytest.raises(DataError, match=re.escape(f"which is the input {data}")):
        check_report_outputs(out, CKPTS, data, None, True, figures=False)


def test_the_refusal_names_the_first_figure_it_would_replace(tmp_path: Path) -> None:
    """Guards against naming another file than the first one in the report's order
    (metrics.json, report.md, report.html, then the figures in FIGURE_KEYS order)."""
    figures = tmp_path / "figures"
    figures.mkdir()
    for key in ("training", "errors"):
        (figures / f"{key}.png").write_bytes(b"paper")
    with pytest.raises(DataError) as err:
        check_report_outputs(tmp_path, CKPTS[:1], tmp_path / "d.h5", None, False)
    assert str(err.value) == (
        f"{figures / 'errors.png'} exists and the report would replace it; pass force=True, or "
        "choose another out_dir"
    )


def test_a_report_without_figures_leaves_a_folder_of_figures_alone(tmp_path: Path) -> None:
    """Guards against --no-figures refusing a folder whose figures/ holds a user's
    errors.png: that report writes no figure, so replaces nothing there."""
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "errors.png").write_bytes(b"paper")
    check_report_outputs(tmp_path, CKPTS[:1], tmp_path / "d.h5", None, False, figures=False)
    with pytest.raises(DataError, match=r"errors\.png exists"):
        check_report_outputs(tmp_path, CKPTS[:1], tmp_path / "d.h5", None, False, figures=True)


def test_several_checkpoints_check_the_predictions_files_they_write(tmp_path: Path) -> None:
    """Guards against checking FILE itself instead of FILE-<model>.h5 with several
    checkpoints: an existing FILE-<model>.h5 was replaced without --force, and an unrelated
    FILE refused though nothing writes it."""
    preds = tmp_path / "p.h5"
    preds.write_bytes(b"mine")
    out = tmp_path / "ev"
    check_report_outputs(out, CKPTS, tmp_path / "d.h5", preds, False, figures=False)
    (tmp_path / "p-00002-b_best.h5").write_bytes(b"earlier")
    with pytest.raises(DataError) as err:
        check_report_outputs(out, CKPTS, tmp_path / "d.h5", preds, False, figures=False)
    assert str(err.value) == (
        f"output exists: {tmp_path / 'p-00002-b_best.h5'}; pass force=True to replace it"
    )


# ----------------------------------------------------------------------- what was scored


def test_what_was_scored_is_the_metrics_own_data_split_fold_and_calibration() -> None:
    """Guards against the line above a comparison (and comparison.json) saying another
    split, fold, data file, window count or calibration than the models': the fold left
    out (or fold 0 taken for none), the calibrated count for the calibration-free one, or
    no calibration written as 'None' or as offset-scale."""
    m = {
        "data": "d.h5",
        "checkpoint": "c.pt",
        "split": "val",
        "fold": 0,
        "calibration_free": {"n_windows": 7},
        "calibrated": None,
    }
    scored = what_was_scored(m)
    assert scored == {
        "data": "d.h5",
        "split": "val",
        "fold": 0,
        "n_windows": 7,
        "calibration": None,
        "units": "mmHg",
    }
    assert scored_text(scored) == (
        "`d.h5`, split **val** (fold 0): 7 windows, the same for every model. MAE in mmHg; "
        "'cal.' = calibrated protocol (none, from each subject's first window, which its "
        "'cal.' columns do not score)."
    )
    m |= {"calibrated": {"calibration": "offset", "n_windows": 5}}
    assert what_was_scored(m)["calibration"] == "offset"
    assert what_was_scored(m)["n_windows"] == 7


# ----------------------------------------------------------------------- real checkpoints


def _copy_checkpoint(src: Path, dest: Path, *, scale: float = 1.0, **train: object) -> Path:
    """``src`` saved at ``dest`` with its weights scaled and training options changed."""
    import torch

    payload = torch.load(src, weights_only=False)
    for key, value in payload["model_state"].items():
        if key.endswith(".weight") and value.is_floating_point():
            payload["model_state"][key] = value * scale
    payload["run_config"]["train"].update(train)
    if train:
        payload["data"] = {}  # the run's file no more: no plan of its own to check
        payload.pop("training_copies")  # (nor the training windows of its own)
    dest.parent.mkdir(parents=True)
    torch.save(payload, dest)
    return dest


@pytest.fixture(scope="module")
def pair(tiny_run: Path, synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny run's best.pt and a copy with other weights in a run without a history,
    evaluated together with the offset calibration."""
    root = tmp_path_factory.mktemp("pair")
    best = tiny_run / "checkpoints" / "best.pt"
    other = _copy_checkpoint(best, root / "00009-other" / "checkpoints" / "best.pt", scale=0.9)
    entries = evaluate_checkpoints([best, other], synth_file, "test", calibration="offset")
    return {"root": root, "ckpts": [best, other], "entries": entries}


def test_each_entry_holds_its_own_checkpoint_and_history(pair: dict) -> None:
    """Guards against an entry holding the first checkpoint, or the first run's training
    history (its training figure drawn under another model)."""
    first, second = pair["entries"]
    assert [e.name for e in pair["entries"]] == ["00000-tiny/best", "00009-other/best"]
    assert first.checkpoint.path == pair["ckpts"][0]
    assert second.checkpoint.path == pair["ckpts"][1]
    assert first.history and second.history == []
    assert not np.array_equal(first.predictions.abp_pred, second.predictions.abp_pred)


def test_checkpoints_scoring_as_many_but_other_windows_are_refused(pair: dict, synth_file):
    """Guards against comparing only the number of windows: the runs of test fold 0 and of
    test fold 1 score 34 windows each (two subjects of 17 windows), other ones; and against
    the refusal naming the two runs' test folds the wrong way round."""
    best, root = pair["ckpts"][0], pair["root"]
    f0 = _copy_checkpoint(best, root / "00010-f0" / "checkpoints" / "best.pt", test_fold=0)
    f1 = _copy_checkpoint(best, root / "00011-f1" / "checkpoints" / "best.pt", test_fold=1)
    with pytest.raises(DataError) as err:
        evaluate_checkpoints([f0, f1], synth_file, "test", calibration=None)
    assert str(err.value) == (
        "00011-f1/best scores other test windows than 00010-f0/best (their runs chose "
        "different test folds: 1 vs 0); pass test_fold=K to score the same fold with all "
        "of them"
    )
    entries = evaluate_checkpoints([f0, f1], synth_file, "test", test_fold=1, calibration=None)
    assert [e.metrics["fold"] for e in entries] == [1, 1]
    assert len(entries[0].predictions.indices) == 34


def test_a_comparison_report_shows_and_embeds_each_model_s_own_figures(
    pair: dict, synth_file: Path, tmp_path: Path, drawn: list
) -> None:
    """Guards against a comparison's report showing the first model's figures in every
    model's section, embedding empty images in report.html, naming only the first model in
    its title, or not listing the figures it wrote; and against the predictions files
    losing the suffix given (p.hdf5 -> p-<model>.h5), the data file, the split, the
    windows' indices in the data file or their start times, or the reverse pass."""
    from innpar_freia.predictions import read_predictions

    entries, out = pair["entries"], tmp_path / "ev"
    written = write_report(entries, out, save_predictions=tmp_path / "p.hdf5")
    md = (out / "report.md").read_text()
    tiny, other = md.split("## 00000-tiny/best")[1].split("## 00009-other/best")
    assert re.findall(r"\]\((figures/[^/)]+)/", tiny) and re.findall(
        r"\]\((figures/[^/)]+)/", other
    )
    assert set(re.findall(r"\]\((figures/[^/)]+)/", tiny)) == {"figures/00000-tiny_best"}
    assert set(re.findall(r"\]\((figures/[^/)]+)/", other)) == {"figures/00009-other_best"}
    html = (out / "report.html").read_text()
    assert "<title>INN-PAR evaluation: 00000-tiny/best, 00009-other/best</title>" in html
    embedded = {
        base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]*)"', html)
    }
    on_disk = {p.read_bytes() for p in (out / "figures").rglob("*.png")}
    assert len(on_disk) == 7 + 6 and embedded == on_disk  # the other run has no history
    keys = [k for k in FIGURE_KEYS if k != "training"]
    assert written["figures"] == {
        "00000-tiny/best": [
            str(out / "figures" / "00000-tiny_best" / f"{k}.png") for k in FIGURE_KEYS
        ],
        "00009-other/best": [str(out / "figures" / "00009-other_best" / f"{k}.png") for k in keys],
    }
    files = [tmp_path / "p-00000-tiny_best.hdf5", tmp_path / "p-00009-other_best.hdf5"]
    assert written["predictions"] == [str(f) for f in files]
    with h5py.File(synth_file) as fh:
        test = np.flatnonzero(fh["split"][:].astype(str) == "test")
        start = fh["start"][:][test]
    assert test[0] == 102 and len(test) == 34  # the last two subjects of the file
    for f, e in zip(files, entries, strict=True):
        p = read_predictions(f)
        assert p.attrs["data"] == str(synth_file) and p.attrs["split"] == "test"
        assert p.attrs["name"] == e.name and p.attrs["calibration"] == "offset"
        np.testing.assert_array_equal(p.index, test)
        np.testing.assert_array_equal(p.start, start)
        assert p.ppg_inverse is not None
        np.testing.assert_allclose(p.ppg_inverse, e.predictions.ppg_pred, atol=1e-4)


def test_a_predictions_file_names_the_split_it_holds(pair: dict, synth_file: Path, tmp_path):
    """Guards against the predictions file calling every split 'test' (``innpar plot`` and
    a reader take the split from it): here the 34 validation windows, not calibrated."""
    from innpar_freia.predictions import read_predictions

    entries = evaluate_checkpoints(pair["ckpts"][:1], synth_file, "val", calibration=None)
    path = tmp_path / "val.h5"
    write_report(entries, tmp_path / "ev", save_predictions=path, figures=False)
    p = read_predictions(path)
    assert p.attrs["split"] == "val" and p.attrs["calibration"] == "none"
    assert len(p.index) == 34 and p.calibrated is None
