"""Figures: what they draw (checked on the matplotlib objects before saving) and that they
save as PNG and PDF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from innpar_freia import plots
from innpar_freia.recording_bp import detect_beats


def bp_pairs(n: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = np.column_stack([rng.normal(125, 20, n), rng.normal(65, 10, n), rng.normal(85, 12, n)])
    pred = ref + rng.normal(2.0, 6.0, (n, 3))
    return pred, ref


def test_limits_of_agreement_by_hand():
    me, lo, hi = plots.limits_of_agreement(np.array([13.0, -3.0, 13.0, -3.0, 5.0]))
    assert (me, lo, hi) == pytest.approx((5.0, 5.0 - 1.96 * 8.0, 5.0 + 1.96 * 8.0))
    # One window has no SD (the report says n/a): it drew limits at its ME, SD 0.
    assert plots.limits_of_agreement(np.array([3.0])) == (3.0, None, None)


def test_bland_altman_of_one_window_draws_no_limits(captured, tmp_path):
    pred, ref = bp_pairs(n=1)
    plots.plot_bland_altman(pred, ref, tmp_path / "one.png")
    for j, ax in enumerate(captured[0].axes):
        levels = sorted({round(line.get_ydata()[0], 9) for line in ax.get_lines()})
        assert levels == sorted({0.0, round(pred[0, j] - ref[0, j], 9)})
        assert "no SD (n=1)" in ax.get_title(loc="left")


def test_bland_altman_draws_me_and_limits(captured, tmp_path):
    pred, ref = bp_pairs()
    plots.plot_bland_altman(pred, ref, tmp_path / "ba.png", title="test")
    axes = captured[0].axes
    assert len(axes) == 3
    for j, ax in enumerate(axes):
        me, lo, hi = plots.limits_of_agreement(pred[:, j] - ref[:, j])
        levels = sorted({round(line.get_ydata()[0], 9) for line in ax.get_lines()})
        assert levels == sorted({0.0, round(me, 9), round(lo, 9), round(hi, 9)})
        assert "(mmHg)" in ax.get_xlabel() and "(mmHg)" in ax.get_ylabel()
        assert f"ME {me:+.1f} mmHg" in ax.get_title(loc="left")
    assert (tmp_path / "ba.png").read_bytes()[:4] == b"\x89PNG"


def test_error_distributions_mark_bhs_thresholds(captured, tmp_path):
    pred, ref = bp_pairs()
    naive = np.tile(ref.mean(axis=0), (len(ref), 1))
    plots.plot_error_distributions(
        {"model": (pred, ref), "naive": (naive, ref)}, tmp_path / "e.pdf"
    )
    fig = captured[0]
    bottom = fig.axes[3:]
    for ax in bottom:
        xs = sorted(
            {
                line.get_xdata()[0]
                for line in ax.get_lines()
                if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
            }
        )
        assert xs == [5.0, 10.0, 15.0]
        labels = [line.get_label() for line in ax.get_lines()]
        assert "model" in labels and "naive" in labels
        assert "BHS" in ax.get_title(loc="left")
    assert (tmp_path / "e.pdf").read_bytes()[:4] == b"%PDF"


def test_error_figure_percentages_are_the_tables(captured, tmp_path):
    """The figure counted without the tables' threshold slack (64.4 - 59.4 is not <= 5 in
    floating point) and rounded 59.6 % to the 60 % of a grade it did not reach."""
    ref = np.full((10, 3), 59.4)
    plots.plot_error_distributions({"model": (ref + 5.0, ref)}, tmp_path / "a.png")
    assert "model: 100 / 100 / 100 % within" in captured[-1].axes[3].get_title(loc="left")
    assert "(BHS A)" in captured[-1].axes[3].get_title(loc="left")
    err = np.where(np.arange(1000) < 596, 1.0, 7.0)[:, None] * np.ones(3)  # 59.6 % <= 5
    plots.plot_error_distributions({"model": (err, np.zeros_like(err))}, tmp_path / "b.png")
    title = captured[-1].axes[3].get_title(loc="left")
    assert "model: 59.6 / 100 / 100 % within" in title and "(BHS B)" in title


def test_training_curves_with_and_without_validation(tmp_path):
    history = [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "val_loss": 1.2 / e,
            "val_mae": 20 - e,
            "val_sbp_mae": 25 - e,
            "val_dbp_mae": 12 - e / 2,
            "val_map_mae": 14 - e / 2,
            "best_epoch": e,
        }
        for e in range(1, 6)
    ]
    assert plots.plot_training_curves(history, tmp_path / "t.png").is_file()
    bare = [{"epoch": e, "train_loss": 1 / e} for e in range(1, 4)]
    assert plots.plot_training_curves(bare, tmp_path / "b.pdf").is_file()
    with pytest.raises(ValueError, match="no epoch records"):
        plots.plot_training_curves([], tmp_path / "x.png")


def test_recording_figure_with_gaps_and_reference(captured, tmp_path):
    fs = 125.0
    t = np.arange(round(120 * fs)) / fs
    ref = 90 - 25 * np.cos(2 * np.pi * 1.1 * t)
    out = ref + 5.0
    out[round(50 * fs) : round(60 * fs)] = np.nan
    path = plots.plot_recording(
        fs,
        np.sin(2 * np.pi * 1.1 * t),
        out,
        tmp_path / "r.png",
        reference=ref,
        beats=detect_beats(out, fs),
        reference_beats=detect_beats(ref, fs),
        gaps=[(50.0, 60.0)],
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
    _, mid, bottom = captured[0].axes
    assert mid.get_ylabel() == "ABP (mmHg)" and bottom.get_xlabel() == "time (s)"
    lo, hi = bottom.get_xlim()
    assert hi - lo == pytest.approx(10.0)
    assert np.isfinite(out[round(lo * fs) : round(hi * fs)]).all()  # zoom avoids the gap


def test_a_reference_is_drawn_only_where_it_is_a_pressure_trace(captured, tmp_path):
    """Record 100's ABP channel is saturated at 6.8 mmHg throughout: it was drawn under the
    reconstruction as the "reference ABP"."""
    fs = 125.0
    t = np.arange(round(60 * fs)) / fs
    out = 90 - 25 * np.cos(2 * np.pi * 1.1 * t)
    partly = out.copy()
    partly[: round(30 * fs)] = 6.83  # flat and out of range
    for ref, note in ((np.full(t.size, 6.83), True), (partly, False)):
        captured.clear()
        plots.plot_recording(fs, np.sin(2 * np.pi * 1.1 * t), out, tmp_path / "r.png",
                             reference=ref, zoom_s=(0.0, 60.0))  # fmt: skip
        bottom = captured[0].axes[2]
        line = next(ln for ln in bottom.get_lines() if ln.get_label().startswith("reference"))
        drawn = np.asarray(line.get_ydata(), dtype=float)
        assert not np.any(drawn < 20)  # NaN (not drawn) where the channel is no pressure
        assert np.isfinite(drawn).any() != note
        assert ("none valid" in line.get_label()) == note


def test_reconstructions_and_bad_inputs(tmp_path):
    fs = 125.0
    ref = np.stack([90 - 25 * np.cos(2 * np.pi * np.arange(625) / 100.0)] * 2)
    assert plots.plot_reconstructions(ref, ref + 3, fs, tmp_path / "w.png").is_file()
    with pytest.raises(ValueError, match="no windows"):
        plots.plot_reconstructions(ref[:0], ref[:0], fs, tmp_path / "w.png")
    with pytest.raises(ValueError, match="expected \\(windows, 3\\)"):
        plots.plot_bland_altman(np.zeros((3, 2)), np.zeros((3, 2)), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\.png or \.pdf"):
        plots.plot_bland_altman(*bp_pairs(), Path(tmp_path / "x.svg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.png"]


def _predictions(path: Path, n: int = 6, **overrides) -> Path:
    from innpar_freia.predictions import write_predictions

    t = np.arange(625) / 125.0
    ref = np.stack([90 + 25 * np.sin(2 * np.pi * 1.2 * t + i) for i in range(n)])
    kw = {
        "fs": 125.0,
        "window_id": [f"w{i}" for i in range(n)],
        "subject": [f"s{i % 2}" for i in range(n)],
        "prediction": ref + 3.0,
        "reference": ref,
    }
    kw.update(overrides)
    return write_predictions(path, **kw)


def test_prediction_plots_leave_out_nan_windows_and_say_so(captured, tmp_path):
    from helpers import run_cli

    good = _predictions(tmp_path / "p.h5")
    pred = read_predictions_array(good)
    pred[[1, 4], 100] = np.nan
    nan = _predictions(tmp_path / "nan.h5", prediction=pred)
    for kind in ("bland-altman", "errors", "reconstructions"):
        r = run_cli("plot", kind, nan, "--out", tmp_path / f"{kind}.png")
        assert r.exit_code == 0, r.output
    titles = [fig._suptitle.get_text() for fig in captured if fig._suptitle is not None]
    assert sum("2 windows with NaN/inf left out" in t for t in titles) >= 2
    all_nan = _predictions(tmp_path / "all.h5", prediction=np.full_like(pred, np.nan))
    r = run_cli("plot", "bland-altman", all_nan, "--out", tmp_path / "x.png")
    assert r.exit_code == 1 and "every window to plot holds NaN" in r.output
    assert not (tmp_path / "x.png").exists()


def read_predictions_array(path: Path) -> np.ndarray:
    from innpar_freia.predictions import read_predictions

    return read_predictions(path).prediction


def _short_reference(fh) -> None:
    del fh["reference"]
    fh.create_dataset("reference", (6, 300), "f4")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda fh: fh.__delitem__("prediction"), "is damaged: it has no prediction dataset"),
        (lambda fh: fh.__delitem__("window_id"), "is damaged: it has no window_id dataset"),
        (lambda fh: fh.attrs.__delitem__("fs"), "no sampling rate (attribute 'fs')"),
        (lambda fh: fh.attrs.__setitem__("fs", 0.0), "fs must be a positive number"),
        (_short_reference, "'reference' has shape (6, 300), but 'prediction' has (6, 625)"),
    ],
)
def test_damaged_predictions_files_are_one_message(tmp_path, damage, message):
    import h5py
    from helpers import run_cli

    path = _predictions(tmp_path / "p.h5")
    with h5py.File(path, "r+") as fh:
        damage(fh)
    for kind in ("bland-altman", "errors", "reconstructions"):
        r = run_cli("plot", kind, path, "--out", tmp_path / "f.png")
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert message in r.output, r.output
    assert not (tmp_path / "f.png").exists()


def test_options_are_offered_only_where_they_do_something(tmp_path):
    from helpers import run_cli

    path = _predictions(tmp_path / "p.h5")
    for kind in ("bland-altman", "errors"):
        r = run_cli("plot", kind, path, "--out", tmp_path / "f.png", "--windows", 3)
        assert r.exit_code == 2 and "No such option '--windows'" in r.output
    r = run_cli("plot", "reconstructions", path, "--out", tmp_path / "r.png", "--windows", 3)
    assert r.exit_code == 0, r.output
    r = run_cli("check", "--preset", "unet")  # the U-Net is not invertible
    assert r.exit_code == 2 and "'unet' is not one of" in r.output


def test_recording_plot_names_its_own_options_and_refuses_its_input_as_output(tmp_path):
    from helpers import run_cli

    n = 2000
    x = np.sin(np.arange(n) / 10.0)
    src = tmp_path / "in.csv"
    src.write_text(
        "t,FINGER,ABP\n" + "".join(f"{i / 100},{v},{90 + 20 * v}\n" for i, v in enumerate(x))
    )
    rec = tmp_path / "abp.csv"
    rec.write_text("time_s,ABP\n" + "".join(f"{i / 100},{90 + 20 * v}\n" for i, v in enumerate(x)))
    r = run_cli("plot", "recording", rec, "--input", src, "--out", tmp_path / "f.png")
    assert r.exit_code == 1 and "Name it with --channel" in r.output, r.output
    r = run_cli("plot", "recording", src, "--input", src, "--out", tmp_path / "f.png")
    assert r.exit_code == 1 and "given as both the reconstruction and its --input" in r.output


def test_recording_plot_names_a_missing_reconstruction_or_input_as_missing(tmp_path):
    from helpers import assert_clean_failure, run_cli

    src = tmp_path / "in.csv"
    src.write_text("t,PPG\n" + "".join(f"{i / 100},{np.sin(i / 10)}\n" for i in range(500)))
    out = tmp_path / "f.png"
    r = run_cli("plot", "recording", tmp_path / "abp", "--input", src, "--out", out)
    assert_clean_failure(r, out, f"reconstruction not found: {tmp_path / 'abp'}")
    assert "cannot tell the format" not in r.output
    r = run_cli("plot", "recording", src, "--input", tmp_path / "rec", "--out", out)
    assert_clean_failure(r, out, f"--input recording not found: {tmp_path / 'rec'}")


def test_training_history_with_a_damaged_record_skips_it(tmp_path):
    from helpers import run_cli

    lines = [
        '{"epoch": 1, "train_loss": 0.5}',
        '{"epoch": 2, "train_loss": "abc"}',
        '{"epoch": 3, "train_loss": 0.3}',
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    r = run_cli("plot", "training", tmp_path, "--out", tmp_path / "t.png")
    assert r.exit_code == 0, r.output
    from innpar_freia.report import read_epoch_records

    assert [rec["epoch"] for rec in read_epoch_records(tmp_path / "metrics.jsonl")] == [1, 3]


def test_reconstructions_say_their_protocol_and_equal_methods_stay_visible(captured, tmp_path):
    """Calibrated and calibration-free reconstructions looked alike, with no title; a method
    whose errors equal another's (linear and naive on MAP) hid it behind its line."""
    from helpers import run_cli

    ref = _predictions(tmp_path / "r.h5")
    n = 6
    calibrated = read_predictions_array(ref) - 3.0
    path = _predictions(
        tmp_path / "p.h5",
        calibrated=calibrated,
        scored=np.arange(n) >= 2,
        attrs={"calibration": "offset-scale", "name": "run/best"},
    )
    for protocol in ("calibration-free", "calibrated"):
        out = tmp_path / f"{protocol}.png"
        r = run_cli("plot", "reconstructions", path, "--protocol", protocol, "--out", out)
        assert r.exit_code == 0, r.output
    titles = [fig._suptitle.get_text() for fig in captured]
    assert titles == [
        "run/best: calibration-free, first 4 windows in file order",
        "run/best: calibrated (offset-scale), first 4 windows in file order",
    ]
    pred, bp_ref = bp_pairs()
    naive = np.tile(bp_ref.mean(axis=0), (len(bp_ref), 1))
    plots.plot_error_distributions(
        {"model": (pred, bp_ref), "naive": (naive, bp_ref), "linear": (naive.copy(), bp_ref)},
        tmp_path / "e.png",
    )
    mapped = captured[-1].axes[5]
    styles = {line.get_label(): line.get_linestyle() for line in mapped.get_lines()}
    assert styles["linear (= naive)"] == "--" and styles["naive"] == "-"
    assert "linear (= naive)" in [t.get_text() for t in mapped.get_legend().get_texts()]


def test_recording_figure_of_a_ppg_claims_no_beats(captured, tmp_path):
    """The middle panel's title promised 'per-beat SBP and DBP (dots)' over a reconstructed
    PPG, where no beat is drawn; with beats it still says so."""
    from types import SimpleNamespace

    fs = 50.0
    t = np.arange(1500) / fs
    wave = np.sin(2 * np.pi * t)
    plots.plot_recording(fs, 90 + 20 * wave, wave, tmp_path / "p.png", direction="abp2ppg")
    title = captured[-1].axes[1].get_title(loc="left")
    assert "SBP" not in title and title.endswith("shaded pink: gaps, not reconstructed")
    k = np.arange(30.0)
    beats = SimpleNamespace(peak_s=k + 0.5, onset_s=k + 0.2, sbp=k * 0 + 110, dbp=k * 0 + 70)
    plots.plot_recording(fs, wave, 90 + 20 * wave, tmp_path / "a.png", beats=beats)
    assert "per-beat SBP and DBP (dots)" in captured[-1].axes[1].get_title(loc="left")


def test_a_full_disk_while_a_figure_is_saved_names_the_figure(tmp_path: Path) -> None:
    """A full disk fails matplotlib's write(), which names no file: the command said "No
    space left on device" alone. Guards against that: the error names the figure, and no
    hidden copy is left."""
    import errno

    import matplotlib.pyplot as plt

    fig = plt.figure()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    fig.savefig = full
    from innpar_freia.errors import DataError

    with pytest.raises(DataError) as err:
        plots.save_figure(fig, tmp_path / "training.png")
    assert str(err.value) == f"cannot write {tmp_path / 'training.png'}: No space left on device"
    assert err.value.errno == errno.ENOSPC  # a folder run stops on it, as on a full disk
    assert list(tmp_path.iterdir()) == []
    # Drawn into a staged output (reconstruct --plot, eval's figures): the message names the
    # figure asked for, not its hidden name, and it is still a full disk.
    from innpar_freia.outputs import StagedOutputs

    with pytest.raises(DataError) as err:
        with StagedOutputs() as staged:
            plots.save_figure(fig, staged.stage(tmp_path / "f.png"))
    assert str(err.value) == f"cannot write {tmp_path / 'f.png'}: No space left on device"
    assert err.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []


def test_a_figure_leaves_the_callers_matplotlib_backend_as_it_was(tmp_path):
    """Bug: importing the figures switched matplotlib to Agg for the whole process (a
    notebook's inline display stopped working after one figure)."""
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg')\n"
        "import numpy as np\n"
        "from innpar_freia import plots\n"
        "x = np.sin(np.linspace(0, 20, 625))[None] * 20 + 100\n"
        f"plots.plot_reconstructions(x, x + 1, 125.0, {str(tmp_path / 'r.png')!r})\n"
        "import matplotlib.pyplot as plt\n"
        "print(matplotlib.get_backend(), plt.get_fignums())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "svg []"
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", ["r.svg", "r", "folder"])
def test_a_bad_figure_name_is_refused_before_drawing_and_leaves_no_figure_open(tmp_path, name):
    """Bug: a figure name without .png/.pdf was refused only after drawing, and the figure
    stayed open in pyplot; a folder was refused as "not ''"."""
    import matplotlib.pyplot as plt

    (tmp_path / "folder").mkdir()
    before = plt.get_fignums()
    pred, ref = bp_pairs()
    with pytest.raises(ValueError) as err:
        plots.plot_bland_altman(pred, ref, tmp_path / name)
    assert plt.get_fignums() == before
    assert "''" not in str(err.value)
    assert ("is a folder" if name == "folder" else ".png or .pdf") in str(err.value)


def test_plot_reconstructions_refuses_a_window_count_below_one(tmp_path) -> None:
    """Bug: max_windows=-2 failed inside matplotlib ("figure size must be positive
    finite"); predictions_figure checked its n, the plot function itself did not."""
    ref = np.full((3, 125), 100.0)
    for bad, error in ((-2, ValueError), (0, ValueError), (1.5, TypeError)):
        with pytest.raises(error, match="max_windows"):
            plots.plot_reconstructions(ref, ref, 125.0, tmp_path / "r.png", max_windows=bad)
    assert not (tmp_path / "r.png").exists()
    plots.plot_reconstructions(ref, ref + 1, 125.0, tmp_path / "r.png", max_windows=1)
    assert (tmp_path / "r.png").stat().st_size > 0
