"""``innpar eval``'s report: files, contents, predictions file, several checkpoints, and
errors that leave nothing behind; ``innpar plot`` from the files it writes."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from innpar_freia.cli import cli
from innpar_freia.evaluate import evaluate
from innpar_freia.predictions import read_predictions


def run(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def report(tiny_run: Path, synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One full ``innpar eval`` with predictions, shared by the tests below."""
    out = tmp_path_factory.mktemp("eval") / "report"
    preds = out.parent / "preds.h5"
    ckpt = tiny_run / "checkpoints" / "best.pt"
    r = run(
        "eval",
        "--checkpoint",
        ckpt,
        "--data",
        synth_file,
        "--out",
        out,
        "--save-predictions",
        preds,
        "--json",
    )
    assert r.exit_code == 0, r.output
    return {"out": out, "preds": preds, "ckpt": ckpt, "printed": json.loads(r.stdout)}


def test_report_files_and_metrics(report):
    out = report["out"]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["figures", "metrics.json", "report.html", "report.md"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["calibration_free"]["n_windows"] == report["printed"]["calibration_free"]["n_windows"]
    for protocol in ("calibration_free", "calibrated"):
        for key in ("sbp", "dbp", "map"):
            assert {"mae", "me", "sd", "bhs", "bhs_grade", "aami_pass", "ieee_grade"} <= set(
                m[protocol][key]
            )
        assert m[protocol]["per_subject"]["n_subjects"] == len(m[protocol]["subjects"])
    assert set(m["baselines"]) == {"naive", "linear", "carry_forward"}
    assert m["inverse"]["units"] == "z-scored PPG" and "baseline_zero" in m["inverse"]
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == sorted(
        f"{k}.png"
        for k in (
            "reconstructions",
            "bland_altman",
            "errors",
            "bland_altman_calibrated",
            "errors_calibrated",
            "inverse",
            "training",
        )
    )
    assert not [p for p in out.rglob(".*")]  # no staged leftovers


def test_report_markdown_and_self_contained_html(report):
    out = report["out"]
    md = (out / "report.md").read_text()
    for heading in (
        "## 00000-tiny/best",
        "### Calibration-free",
        "### Calibrated (offset-scale)",
        "### Per subject",
        "### Inverse direction (ABP -> PPG)",
        "### Training",
    ):
        assert heading in md
    for src in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / src).is_file()
    m = json.loads((out / "metrics.json").read_text())
    naive = m["baselines"]["naive"]["waveform"]["mae"]
    assert f"| naive | {m['calibration_free']['n_windows']} | {naive:.2f} |" in md
    # Both AAMI criteria, and what the grades are not: a validation with 85 subjects.
    assert "| BHS | AAMI 1 | AAMI 2 | IEEE 1708 |" in md
    free = m["calibration_free"]
    aami2 = "pass" if free["sbp"]["aami2"]["pass"] else "fail"
    assert re.search(rf"\| model \| SBP \|( [^|]+ \|){{5}} {aami2} \|", md)
    assert f"at least 85 subjects (here {free['n_subjects']})" in md
    html = (out / "report.html").read_text()
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) == 7 and all(s.startswith("data:image/png;base64,") for s in images)
    assert "figures/" not in html.split("<main>")[1]  # nothing refers to files beside it
    assert "<details><summary>" in html and "beats" in html


def test_predictions_file_scores_like_the_report(report, synth_file):
    p = read_predictions(report["preds"])
    metrics, preds = evaluate(report["ckpt"], synth_file, "test")
    assert p.units == "mmHg" and p.fs == 125.0 and p.attrs["split"] == "test"
    np.testing.assert_allclose(p.prediction, preds.abp_pred, atol=1e-3)  # float32 storage
    np.testing.assert_allclose(p.reference, preds.abp, atol=1e-3)
    assert list(p.window_id) == list(preds.window_ids)
    assert list(p.subject) == list(preds.subjects)
    n_subjects = len(set(p.subject))
    assert p.scored.sum() == len(p.subject) - n_subjects  # one calibration window each
    err = np.abs(p.prediction - p.reference).mean()
    assert err == pytest.approx(metrics["calibration_free"]["waveform"]["mae"], rel=1e-4)
    cal_err = np.abs(p.calibrated[p.scored] - p.reference[p.scored]).mean()
    assert cal_err == pytest.approx(metrics["calibrated"]["waveform"]["mae"], rel=1e-4)


def test_default_report_directory_is_in_the_run(tiny_run, synth_file, tmp_path):
    run_copy = tmp_path / "00001-tiny"
    shutil.copytree(tiny_run, run_copy)
    r = run(
        "eval",
        "--checkpoint",
        run_copy / "checkpoints" / "last.pt",
        "--data",
        synth_file,
        "--calibration",
        "none",
        "--no-figures",
    )
    assert r.exit_code == 0, r.output
    out = run_copy / "eval-test"
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.html", "report.md"]
    assert "calibrated" not in json.loads((out / "metrics.json").read_text())
    assert "<img" not in (out / "report.html").read_text()
    assert f"report: {out / 'report.html'}" in r.output


def test_several_checkpoints_give_one_comparison(tiny_run, synth_file, tmp_path):
    best, last = (tiny_run / "checkpoints" / f"{n}.pt" for n in ("best", "last"))
    out = tmp_path / "cmp"
    r = run(
        "eval",
        "--checkpoint",
        best,
        "--checkpoint",
        last,
        "--data",
        synth_file,
        "--out",
        out,
        "--no-figures",
        "--save-predictions",
        tmp_path / "p.h5",
        "--json",
    )
    assert r.exit_code == 0, r.output
    comparison = json.loads((out / "comparison.json").read_text())
    records = comparison["rows"]
    printed = json.loads(r.stdout)  # --json prints what metrics.json holds, comparison too
    assert printed["comparison"] == records and len(printed["models"]) == 2
    names = [rec["name"] for rec in records]
    assert names == [
        "00000-tiny/best",
        "00000-tiny/last",
        "baseline: naive",
        "baseline: linear",
        "baseline: carry-forward",
    ]
    md = (out / "comparison.md").read_text()
    assert md.count("| 00000-tiny/") == 2 and "| baseline: carry-forward |" in md
    # The comparison files say what was scored (they said neither windows nor calibration).
    m0 = json.loads(r.stdout)["models"][0]
    assert {k: comparison[k] for k in ("data", "split", "fold", "calibration", "units")} == {
        "data": str(synth_file),
        "split": "test",
        "fold": m0["fold"],
        "calibration": "offset-scale",
        "units": "mmHg",
    }
    assert comparison["n_windows"] == m0["calibration_free"]["n_windows"] > 0
    fold = f" (fold {m0['fold']})" if m0["fold"] is not None else ""
    assert f"split **test**{fold}: {comparison['n_windows']} windows" in md
    assert (
        "(offset-scale, from each subject's first window, which its 'cal.' columns do not score)"
        in md
    )
    m = json.loads((out / "metrics.json").read_text())
    assert [x["name"] for x in m["models"]] == names[:2]
    assert (tmp_path / "p-00000-tiny_best.h5").is_file()
    assert (tmp_path / "p-00000-tiny_last.h5").is_file()
    assert "## 00000-tiny/best" in (out / "report.md").read_text()


def test_several_checkpoints_need_out(tiny_run, synth_file):
    best = tiny_run / "checkpoints" / "best.pt"
    r = run("eval", "--checkpoint", best, "--checkpoint", best, "--data", synth_file)
    assert r.exit_code == 2 and "name the report with --out" in r.output


def test_bad_checkpoint_leaves_nothing(tiny_run, synth_file, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(1000))
    out = tmp_path / "report"
    r = run(
        "eval",
        "--checkpoint",
        tiny_run / "checkpoints" / "best.pt",
        "--checkpoint",
        bad,
        "--data",
        synth_file,
        "--out",
        out,
        "--save-predictions",
        tmp_path / "p.h5",
    )
    assert r.exit_code == 1 and "is not a readable innpar-freia checkpoint" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


def test_failure_while_drawing_leaves_nothing(tiny_run, synth_file, tmp_path, monkeypatch):
    from innpar_freia import plots

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "plot_training_curves", broken)  # the last figure drawn
    out = tmp_path / "report"
    r = run(
        "eval",
        "--checkpoint",
        tiny_run / "checkpoints" / "best.pt",
        "--data",
        synth_file,
        "--out",
        out,
    )
    assert r.exit_code == 1 and "No space left on device" in r.output
    assert not out.exists()


# ----------------------------------------------------------------------------- innpar plot


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_plot_from_predictions_and_runs(report, tiny_run, tmp_path, suffix):
    magic = b"\x89PNG" if suffix == ".png" else b"%PDF"
    jobs = [
        ("training", tiny_run),
        ("reconstructions", report["preds"]),
        ("bland-altman", report["preds"]),
        ("errors", report["preds"]),
    ]
    for kind, src in jobs:
        out = tmp_path / f"{kind}{suffix}"
        r = run("plot", kind, src, "--out", out)
        assert r.exit_code == 0, r.output
        assert out.read_bytes()[:4] == magic
    out = tmp_path / f"cal{suffix}"
    r = run("plot", "bland-altman", report["preds"], "--protocol", "calibrated", "--out", out)
    assert r.exit_code == 0 and out.is_file()


def test_plot_errors_are_clear(tiny_run, synth_file, tmp_path):
    r = run("plot", "training", tmp_path, "--out", tmp_path / "t.png")
    assert r.exit_code == 1 and "no metrics.jsonl in" in r.output
    r = run("plot", "bland-altman", synth_file, "--out", tmp_path / "b.png")
    assert r.exit_code == 1 and "is not an innpar-freia predictions file" in r.output
    r = run("plot", "training", tiny_run, "--out", tmp_path / "t.svg")
    assert r.exit_code == 2 and "must end in .png or .pdf, not 't.svg'" in r.output


def test_plot_recording_from_a_reconstruction(tiny_run, tmp_path):
    from innpar_freia.data.synthetic import synthesize_recording

    rec = synthesize_recording(1, 0.5, 125.0, seed=2)
    np.savez(tmp_path / "rec.npz", PPG=rec.ppg, ABP=rec.abp, fs=125.0)
    r = run(
        "reconstruct",
        "--checkpoint",
        tiny_run / "checkpoints" / "best.pt",
        tmp_path / "rec.npz",
        "--out",
        tmp_path / "abp.npz",
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "rec.png"
    r = run(
        "plot",
        "recording",
        tmp_path / "abp.npz",
        "--input",
        tmp_path / "rec.npz",
        "--reference-abp",
        "ABP",
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_checkpoints_whose_names_meet_as_file_names_get_their_own_files(
    tiny_run, synth_file, tmp_path
):
    """``a/b_c`` and ``a_b/c`` would share a figures folder and a predictions file."""
    best = tiny_run / "checkpoints" / "best.pt"
    first, second = tmp_path / "a" / "checkpoints", tmp_path / "a_b" / "checkpoints"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    shutil.copy(best, first / "b_c.pt")
    shutil.copy(best, second / "c.pt")
    out, preds = tmp_path / "ev", tmp_path / "p.h5"
    r = run(
        "eval", "--checkpoint", first / "b_c.pt", "--checkpoint", second / "c.pt",
        "--data", synth_file, "--out", out, "--save-predictions", preds,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert len([d for d in (out / "figures").iterdir() if d.is_dir()]) == 2
    written = sorted(p.name for p in tmp_path.glob("p-*.h5"))
    assert len(written) == 2, written
    names = {read_predictions(tmp_path / n).attrs["name"] for n in written}
    assert names == {"a/b_c", "a_b/c#2"}  # told apart in the report, and as file names
    assert not list(out.rglob(".*staged*"))


def test_force_replaces_the_report_but_not_the_users_files(tiny_run, synth_file, tmp_path):
    ckpt = tiny_run / "checkpoints" / "best.pt"
    out = tmp_path / "ev"
    # A folder with figures of the report's names is not written over without --force.
    paper = tmp_path / "paper"
    (paper / "figures").mkdir(parents=True)
    (paper / "figures" / "errors.png").write_bytes(b"my figure")
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", paper)
    assert r.exit_code == 1 and "errors.png exists and the report would replace it" in r.output
    assert (paper / "figures" / "errors.png").read_bytes() == b"my figure"
    mine = out / "figures" / "my_notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out)
    assert r.exit_code == 0, r.output  # a folder with my files holds no report
    r = run(
        "eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out, "--force", "--no-figures"
    )
    assert r.exit_code == 0, r.output
    assert mine.read_text() == "mine"
    assert not list((out / "figures").rglob("*.png"))
    (mine).unlink()
    drafts = out / "figures" / "drafts"  # a folder of my own, empty for now
    drafts.mkdir()
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out, "--force")
    assert r.exit_code == 0 and list((out / "figures").glob("*.png"))
    r = run(
        "eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out, "--force", "--no-figures"
    )
    assert r.exit_code == 0 and drafts.is_dir()  # was removed as an empty folder
    assert not list((out / "figures").rglob("*.png"))
    drafts.rmdir()
    last = tiny_run / "checkpoints" / "last.pt"  # two models: a figures folder each
    r = run("eval", "--checkpoint", ckpt, "--checkpoint", last, "--data", synth_file,
            "--out", out, "--force")  # fmt: skip
    assert r.exit_code == 0 and len(list((out / "figures").glob("*/*.png"))) > 2, r.output
    r = run(
        "eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out, "--force", "--no-figures"
    )
    assert r.exit_code == 0 and not (out / "figures").exists()  # no empty folder left


def test_a_difference_of_hundredths_is_called_level():
    from innpar_freia.report_content import verdict

    def stats(mae):
        return {k: {"mae": mae} for k in ("waveform", "sbp", "dbp", "map")} | {"n_windows": 9}

    m = {
        "calibration_free": stats(10.0),
        "baselines": {"naive": stats(10.05), "linear": stats(12.0), "carry_forward": stats(3.49)},
        "calibrated": stats(3.48),
    }
    lines = verdict(m)
    assert (
        "Calibration-free SBP MAE 10.00 mmHg vs naive 10.05, linear 12.00: is level with "
        "naive and beats linear." in lines
    )
    assert (
        "Calibrated MAP MAE 3.48 mmHg vs carry-forward 3.49: is level with carry-forward "
        "(within 0.1 mmHg)." in lines
    )
    assert not any("tracks changes" in line for line in lines)


def test_the_users_own_figures_survive_a_forced_report(tiny_run, synth_file, tmp_path):
    """--force replaces the report's figures (named after FIGURE_KEYS), not every PNG under
    figures/: a user's own plot and a paper's folder of figures used to be deleted."""
    ckpt = tiny_run / "checkpoints" / "best.pt"
    out = tmp_path / "ev"
    assert run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out).exit_code == 0
    mine = out / "figures" / "my_own_plot.png"
    paper = out / "figures" / "paper" / "deeper" / "errors.png"
    paper.parent.mkdir(parents=True)
    for path in (mine, paper):
        path.write_bytes(b"mine")
    r = run(
        "eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out, "--force",
        "--calibration", "none",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert mine.read_bytes() == b"mine" and paper.read_bytes() == b"mine"
    # The earlier report's calibrated figures, which this one does not draw, are gone.
    assert not (out / "figures" / "errors_calibrated.png").exists()
    assert (out / "figures" / "errors.png").read_bytes()[:4] == b"\x89PNG"


def test_no_report_file_is_written_over_an_input_even_with_force(tiny_run, synth_file, tmp_path):
    """A data file or checkpoint that sits at one of the report's file names (copied in by
    hand) was replaced by the report under --force."""
    ckpt = tiny_run / "checkpoints" / "best.pt"
    out = tmp_path / "ev"
    out.mkdir()
    data = out / "metrics.json"
    shutil.copy(synth_file, data)
    before = data.read_bytes()
    r = run("eval", "--checkpoint", ckpt, "--data", data, "--out", out, "--force")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"the report would write {data}, which is the input {data}" in r.output
    assert data.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [data.name]
    figure = tmp_path / "ev2" / "figures" / "errors.png"
    figure.parent.mkdir(parents=True)
    shutil.copy(ckpt, figure)
    r = run("eval", "--checkpoint", figure, "--data", synth_file, "--out", figure.parent.parent,
            "--force")  # fmt: skip
    assert r.exit_code == 1 and "which is the input" in r.output
    assert figure.read_bytes() == ckpt.read_bytes()


@pytest.mark.parametrize("name", ["metrics.json", "figures/errors.png"])
def test_predictions_may_not_take_a_report_files_name(tiny_run, synth_file, tmp_path, name):
    """The predictions file was written over a report file (metrics.json held HDF5), then
    the command failed with 'No such file or directory' and left the report behind. (No
    report file is named .h5, so the command refuses the name for its suffix; the library's
    own check is for callers of write_report.)"""
    ckpt = tiny_run / "checkpoints" / "best.pt"
    out = tmp_path / "ev"
    r = run(
        "eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out,
        "--save-predictions", out / name,
    )  # fmt: skip
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "predictions are an HDF5 file" in r.output
    assert not out.exists()


def test_a_library_caller_s_predictions_may_not_take_a_report_files_name(
    tiny_run, synth_file, tmp_path
):
    """The same for a caller of the library, whose name is not checked for its suffix."""
    from innpar_freia.errors import DataError
    from innpar_freia.report import check_report_outputs

    ckpt = tiny_run / "checkpoints" / "best.pt"
    out = tmp_path / "ev"
    with pytest.raises(DataError, match="is one of the report's own files"):
        check_report_outputs(out, [ckpt], synth_file, out / "metrics.json", False, figures=True)


def test_a_checkpoint_whose_predictions_overflow_is_refused(tiny_run, synth_file, tmp_path):
    """Finite weights that overflow gave a traceback from the Bland-Altman plot, or, with
    --no-figures, a report of NaN errors graded D with exit code 0."""
    import torch

    payload = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=False)
    state = payload["model_state"]
    for key in state:
        if key.endswith(".weight") and state[key].is_floating_point():
            state[key] = state[key] * 1e30
    ckpt = tmp_path / "overflow.pt"
    torch.save(payload, ckpt)
    for extra in ((), ("--no-figures",)):
        out = tmp_path / f"ev{len(extra)}"
        r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--out", out, *extra)
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert "gives NaN or inf for" in r.output and "use another checkpoint" in r.output
        assert not out.exists()


def test_split_all_takes_no_test_fold(tiny_run, synth_file, tmp_path):
    """--test-fold with --split all was ignored (even a fold not in the file) and recorded
    in the report as if it had chosen the windows."""
    ckpt = tiny_run / "checkpoints" / "best.pt"
    out = tmp_path / "ev"
    r = run("eval", "--checkpoint", ckpt, "--data", synth_file, "--split", "all",
            "--test-fold", 99, "--out", out)  # fmt: skip
    assert r.exit_code == 1 and "--split all scores every window" in r.output
    assert not out.exists()


def test_split_all_of_the_training_file_is_refused(tiny_run, synth_file, tmp_path):
    """--split all on the file the checkpoint trained on scored its training windows with
    the rest (half of the real file's 4,780) and warned only of the validation windows."""
    from innpar_freia.data.dataset import plan_splits
    from innpar_freia.data.store import read_info

    info = read_info(synth_file)
    n_train = len(plan_splits(info).train)
    out = tmp_path / "ev"
    r = run("eval", "--checkpoint", tiny_run / "checkpoints" / "best.pt", "--data", synth_file,
            "--split", "all", "--out", out)  # fmt: skip
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert (
        f"{n_train} of the {info.n_windows} windows were in the training split of this "
        "checkpoint's run: their scores would not measure generalisation; score --split test "
        "(or val), or --split train to score training windows"
    ) in r.output
    assert not out.exists()


def test_split_val_names_its_fold_and_says_the_epoch_was_chosen_there(synth_file, tmp_path):
    """The val report named no fold and carried no caveat, though best.pt was chosen on
    exactly these windows."""
    from innpar_freia.data.dataset import plan_splits
    from innpar_freia.data.store import read_info

    info = read_info(synth_file)
    assert info.has_folds
    plan = plan_splits(info, test_fold=0)  # nested folds: validation on fold 1
    run_dir = tmp_path / "run"
    r = run("train", "--data", synth_file, "--preset", "tiny", "--epochs", "1", "--test-fold",
            "0", "--out", run_dir, "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = tmp_path / "ev"
    r = run("eval", "--checkpoint", run_dir / "checkpoints" / "best.pt", "--data", synth_file,
            "--split", "val", "--out", out, "--no-figures")  # fmt: skip
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["fold"] == plan.val_fold is not None
    assert m["warning"] == (
        f"{len(plan.val)} of the {len(plan.val)} val windows are the validation windows this "
        "checkpoint's run chose its epoch on (best.pt, early stopping): their scores are "
        f"optimistic; score the run's test fold ({plan.test_fold}) for a test"
    )
    assert f"split **val** (fold {plan.val_fold})" in (out / "report.md").read_text()


def test_figure_titles_name_the_split_and_fold(tiny_run, synth_file, tmp_path, captured):
    """The val and the test report of a run titled their figures alike ('00000-tiny/best:
    calibration-free'): two PNGs could not be told apart."""
    from innpar_freia.data.dataset import plan_splits
    from innpar_freia.data.store import read_info

    plan = plan_splits(read_info(synth_file), test_fold=0)
    run_dir = tmp_path / "run"
    r = run("train", "--data", synth_file, "--preset", "tiny", "--epochs", "1", "--test-fold",
            "0", "--out", run_dir, "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    titles = {}
    for ckpt, split in ((run_dir, "val"), (run_dir, "test"), (tiny_run, "test")):
        r = run("eval", "--checkpoint", ckpt / "checkpoints" / "best.pt", "--data", synth_file,
                "--split", split, "--out", tmp_path / f"{ckpt.name}-{split}",
                "--save-predictions", tmp_path / f"{ckpt.name}-{split}.h5")  # fmt: skip
        assert r.exit_code == 0, r.output
        titles[ckpt.name, split] = [f._suptitle.get_text() for f in captured if f._suptitle]
        captured.clear()
    test = titles["run", "test"]  # reconstructions, Bland-Altman, ...
    assert test[1] == f"run/best, test fold {plan.test_fold}: calibration-free"
    assert all(f"test fold {plan.test_fold}:" in t for t in test[:-1])  # all but the training
    # The training curves, titled as `innpar plot training` titles them (was "run run").
    assert test[-1] == f"run run: tiny, test fold 0, data {synth_file.name}"
    assert titles["run", "val"][1] == f"run/best, val fold {plan.val_fold}: calibration-free"
    # A file's split column has no fold.
    assert titles[tiny_run.name, "test"][1] == f"{tiny_run.name}/best, test split: calibration-free"
    # Drawn from the predictions file, the same.
    r = run("plot", "errors", tmp_path / "run-test.h5", "--out", tmp_path / "e.png")
    assert r.exit_code == 0, r.output
    assert captured[-1]._suptitle.get_text().startswith(f"run/best, test fold {plan.test_fold}:")


def test_baselines_have_per_subject_averages_next_to_the_models(report):
    m = json.loads((report["out"] / "metrics.json").read_text())
    for protocol, baselines in (("calibration_free", ("naive", "linear")),
                                ("calibrated", ("carry_forward",))):  # fmt: skip
        n = m[protocol]["per_subject"]["n_subjects"]
        for name in baselines:
            avg = m["baselines"][name]["per_subject"]
            assert avg["n_subjects"] == n and avg["sbp_mae"] > 0
            assert "subjects" not in m["baselines"][name]  # averages, not a row per subject
    md = (report["out"] / "report.md").read_text()
    assert "| naive, average | linear a*zPPG+b, average |" in md
    assert "carry-forward, average |" in md


def test_the_console_grades_no_windows_as_nothing_and_one_window_as_n_a(report):
    """With no calibrated window left the summary printed 'BHS None, AAMI fail, IEEE None'."""
    from innpar_freia.cli.core import format_metrics
    from innpar_freia.metrics import error_stats

    m = json.loads((report["out"] / "metrics.json").read_text())
    empty = error_stats(np.array([]), np.array([]))
    m["calibrated"] |= {"n_windows": 0, "sbp": empty, "dbp": empty, "map": empty}
    text = format_metrics(m)
    assert "standards (calibration-free" in text and "standards (calibrated" not in text
    one = error_stats(np.array([3.0]), np.array([0.0]))
    m["calibrated"] |= {"n_windows": 1, "n_subjects": 1, "sbp": one, "dbp": one, "map": one}
    assert "SBP: BHS A, AAMI 1 n/a 2 n/a, IEEE A" in format_metrics(m)


def test_reports_say_when_r_leaves_windows_out(report):
    """The console summary and the report's waveform table show over how many windows the
    mean r is taken when some have none (a flat prediction or reference)."""
    from innpar_freia.cli.core import format_metrics
    from innpar_freia.report_content import waveform_table

    m = json.loads((report["out"] / "metrics.json").read_text())
    free = m["calibration_free"]
    assert free["waveform"]["r_windows"] == free["n_windows"]  # synthetic: all have one
    assert "windows)" not in format_metrics(m)
    free["waveform"]["r_windows"] = 3
    n = free["waveform"]["n_windows"]
    assert f" ({3} of {n} windows)" in format_metrics(m)
    table = waveform_table([("model", free)])
    assert table.rows[0][4].endswith(f"(3 of {n} windows)")
    assert m["inverse"]["r_windows"] == m["inverse"]["n_windows"] == n


def test_a_pipe_in_a_subject_id_stays_in_its_markdown_cell():
    from innpar_freia.report_content import Table, render_markdown

    text = render_markdown([("table", Table(["subject", "MAE"], [["ward|bed 3", "4.00"]]))])
    assert "| ward\\|bed 3 | 4.00 |" in text


def test_the_library_takes_str_paths_and_refuses_one_checkpoint_not_in_a_list(
    tiny_run, synth_file, tmp_path
):
    """Bug: ``evaluate_checkpoints(["a.pt"], ...)`` failed on 'str' has no attribute 'stem',
    ``write_report(entries, "dir")`` on str / str, and one str was iterated by character
    ("/ is a directory")."""
    from innpar_freia.report import check_report_outputs, evaluate_checkpoints, write_report

    ckpt = str(tiny_run / "checkpoints" / "best.pt")
    with pytest.raises(TypeError, match=r"must be a list of paths, not one path: pass \["):
        evaluate_checkpoints(ckpt, str(synth_file), "test", calibration=None)
    entries = evaluate_checkpoints([ckpt], str(synth_file), "test", calibration=None)
    out = str(tmp_path / "ev")
    check_report_outputs(out, [ckpt], str(synth_file), None, False, figures=False)
    write_report(entries, out, figures=False)
    assert (tmp_path / "ev" / "metrics.json").is_file()
