"""Tests that pin behaviour a mutation audit of the figures (plots, figures) and of the
evaluation report's tables and text (report_content) found unguarded: each one fails when
the bug named in its docstring is put into the package. Expected values are worked out by
hand, never by the code under test. Figures are looked at through their matplotlib objects
(lines, texts, titles), kept by wrapping ``save_figure``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import error_summary

from innpar_freia import plots
from innpar_freia.report_content import (
    CAL_METHODS,
    FREE_METHODS,
    Table,
    _method_rows,
    comparison,
    html_body,
    mae_text,
    mesd_text,
    model_blocks,
    render_markdown,
    subject_tables,
    verdict,
    waveform_table,
)

# --------------------------------------------------------------------------------------
# What the evaluation report says (report_content)
# --------------------------------------------------------------------------------------


def protocol_numbers(wave_mae: float | None, bp_mae: float | None, **extra) -> dict:
    """A protocol's (or a baseline's) numbers: 50 windows of 5 subjects, RMSE 9, r 0.8."""
    r = {
        "n_windows": 50,
        "n_subjects": 5,
        "waveform": {"mae": wave_mae, "rmse": 9.0, "r": 0.8},
    }
    for name in ("sbp", "dbp", "map"):
        r[name] = error_summary(bp_mae)
    r.update(extra)
    return r


def test_one_window_shows_its_me_and_no_sd():
    """Guards against the ME of a single window (which has an ME but no sample SD) shown as
    '-' (the test on ``me`` made on ``sd``), or followed by a dangling '±'."""
    assert mesd_text({"me": 2.0, "sd": None}) == "+2.0"
    assert mesd_text({"me": -0.25, "sd": None}, ascii_pm=True) == "-0.2"
    assert mesd_text({"me": None, "sd": None}) == "-"
    assert mesd_text({"me": 1.0, "sd": 2.0}, ascii_pm=True) == "+1.0 +- 2.0"


def test_me_and_sd_get_more_digits_only_next_to_their_own_aami_threshold():
    """Guards against the ME shown against the SD's threshold (8 mmHg) or the SD against the
    ME's (5 mmHg): an ME of 4.96 is not the 5 AAMI allows, an SD of 7.96 not its 8; but an
    ME of 7.96 and an SD of 4.96 are nowhere near their thresholds and keep one decimal."""
    assert mesd_text({"me": 4.96, "sd": 7.96}) == "+4.96 ± 7.96"
    assert mesd_text({"me": -4.96, "sd": 7.96}) == "-4.96 ± 7.96"
    assert mesd_text({"me": 7.96, "sd": 4.96}) == "+8.0 ± 5.0"


def test_bp_mae_gets_a_third_decimal_only_next_to_an_ieee_grade():
    """Guards against the BP MAE shown without the IEEE 1708 thresholds (5, 6, 7 mmHg):
    4.996 printed as 5.00 reads as grade A's limit, which it is inside."""
    assert mae_text(4.996) == "4.996"
    assert mae_text(6.996) == "6.996"
    assert mae_text(7.996) == "8.00"
    assert mae_text(None) == "-"


def test_method_rows_take_each_method_s_own_numbers():
    """Guards against the calibrated model's rows filled from the calibration-free numbers,
    every baseline's row from one baseline, or a row for a baseline that was not run."""
    free, cal = protocol_numbers(8.0, 4.0), protocol_numbers(6.0, 3.0)
    naive, cf = protocol_numbers(12.0, 10.0), protocol_numbers(7.0, 5.0)
    m = {
        "calibration_free": free,
        "calibrated": cal,
        "baselines": {"naive": naive, "carry_forward": cf},  # no linear
    }
    free_rows = _method_rows(m, FREE_METHODS)
    assert [label for label, _ in free_rows] == ["model", "naive"]
    assert free_rows[0][1] is free and free_rows[1][1] is naive
    cal_rows = _method_rows(m, CAL_METHODS)
    assert [label for label, _ in cal_rows] == ["model", "carry-forward"]
    assert cal_rows[0][1] is cal and cal_rows[1][1] is cf
    assert _method_rows({**m, "calibrated": None}, CAL_METHODS) == [("carry-forward", cf)]


def test_waveform_table_cells_are_their_own_numbers():
    """Guards against MAE and RMSE in each other's columns, the window count taken from the
    subject count, r to 2 decimals (0.800 -> 0.80), and the MASE of SBP in place of the
    waveform's."""
    r = protocol_numbers(12.0, 4.0, mase={"waveform": 1.5, "sbp": 0.25})
    table = waveform_table([("naive", r), ("linear", protocol_numbers(11.0, 4.0))])
    assert table.columns == ["method", "windows", "MAE", "RMSE", "r", "MASE"]
    assert table.rows == [
        ["naive", "50", "12.00", "9.00", "0.800", "1.50"],
        ["linear", "50", "11.00", "9.00", "0.800", "-"],
    ]
    bare = waveform_table([("model", r)], with_mase=False)
    assert bare.columns == ["method", "windows", "MAE", "RMSE", "r"]
    assert bare.rows == [["model", "50", "12.00", "9.00", "0.800"]]


def test_subject_summary_shows_r_to_3_decimals_and_each_baseline_s_own_average():
    """Guards against the waveform r rounded like an MAE (0.8125 -> 0.81) and a baseline's
    per-subject column filled with the model's per-subject averages."""
    r = protocol_numbers(8.0, 4.0)
    r["waveform"]["r"] = 0.8125
    r["per_subject"] = {"n_subjects": 3, "wave_mae": 8.5, "wave_r": 0.7775}
    naive = protocol_numbers(12.0, 10.0, per_subject={"wave_mae": 12.25, "wave_r": 0.1})
    summary, _ = subject_tables(r, [("naive", naive)])
    assert summary.columns == [
        "",
        "pooled over windows",
        "average over 3 subjects",
        "naive, average",
    ]
    rows = {row[0]: row for row in summary.rows}
    assert rows["waveform MAE"] == ["waveform MAE", "8.00", "8.50", "12.25"]
    assert rows["waveform r"] == ["waveform r", "0.812", "0.777", "0.100"]


def bp_stats(mae: float | None) -> dict:
    return {k: {"mae": mae} for k in ("waveform", "sbp", "dbp", "map")} | {"n_windows": 9}


def test_verdict_says_neither_both_or_cannot_be_compared():
    """Guards against a model that loses to both baselines called 'beats both baselines',
    and against a crash (or a comparison with nothing) where a baseline has no MAE."""
    lines = verdict(
        {
            "calibration_free": bp_stats(8.0),
            "baselines": {"naive": bp_stats(6.0), "linear": bp_stats(7.0)},
        }
    )
    assert lines[0] == (
        "Calibration-free waveform MAE 8.00 mmHg vs naive 6.00, linear 7.00: "
        "beats neither baseline."
    )
    lines = verdict(
        {
            "calibration_free": bp_stats(5.0),
            "baselines": {"naive": bp_stats(6.0), "linear": bp_stats(7.0)},
        }
    )
    assert lines[1] == (
        "Calibration-free SBP MAE 5.00 mmHg vs naive 6.00, linear 7.00: beats both baselines."
    )
    lines = verdict(
        {
            "calibration_free": bp_stats(8.0),
            "baselines": {"naive": bp_stats(12.0), "linear": bp_stats(None)},
        }
    )
    assert lines[0] == (
        "Calibration-free waveform MAE 8.00 mmHg vs naive 12.00, linear -: beats naive and "
        "cannot be compared with linear."
    )


def test_calibrated_verdict_says_why_beating_carry_forward_matters():
    """Guards against the two reasons swapped: carry-forward's waveform is a flat line; on
    SBP/DBP/MAP beating it means tracking changes."""
    lines = verdict(
        {
            "calibration_free": bp_stats(8.0),
            "calibrated": bp_stats(3.0),
            "baselines": {"carry_forward": bp_stats(5.0)},
        }
    )
    assert lines == [
        "Calibrated waveform MAE 3.00 mmHg vs carry-forward 5.00: beats carry-forward "
        "(a flat line).",
        *(
            f"Calibrated {n} MAE 3.00 mmHg vs carry-forward 5.00: beats carry-forward "
            "(it tracks changes)."
            for n in ("SBP", "DBP", "MAP")
        ),
    ]


class _Entry:
    def __init__(self, name: str, metrics: dict, inverse_weight: float = 0.0):
        self.name, self.metrics = name, metrics
        train = SimpleNamespace(inverse_weight=inverse_weight)
        self.checkpoint = SimpleNamespace(run_config=SimpleNamespace(train=train))


def model_metrics(naive_mae: float = 12.0, calibration: str = "offset-scale") -> dict:
    return {
        "checkpoint": "run/best.pt",
        "epoch": 7,
        "preset": "tiny",
        "data": "x.h5",
        "split": "test",
        "fs": 125.0,
        "window_length": 625,
        "calibration_free": protocol_numbers(8.0, 4.0),
        "calibrated": protocol_numbers(6.0, 3.0, calibration=calibration),
        "inverse": {"mae": 0.25, "rmse": 0.5, "r": 0.9, "baseline_zero": {"mae": 0.8}},
        "baselines": {
            "naive": protocol_numbers(naive_mae, 10.0),
            "linear": protocol_numbers(11.0, 9.0),
            "carry_forward": protocol_numbers(7.0, 5.0),
        },
    }


def test_comparison_names_whose_baselines_it_shows_when_the_models_differ():
    """Guards against the baseline rows of the first model shown as if every model had them
    (naive and linear are fitted on each checkpoint's training split), and against 'None'
    in the epoch cell of a baseline row."""
    same, _ = comparison([_Entry("a", model_metrics()), _Entry("b", model_metrics())])
    names = [row[0] for row in same.rows]
    assert names == ["a", "b", "baseline: naive", "baseline: linear", "baseline: carry-forward"]
    assert [row[1] for row in same.rows] == ["7", "7", "-", "-", "-"]
    other, _ = comparison([_Entry("a", model_metrics()), _Entry("b", model_metrics(13.0))])
    names = [row[0] for row in other.rows]
    assert names[2:] == [
        "baseline: naive (fitted for a)",
        "baseline: linear",
        "baseline: carry-forward",
    ]


def test_report_section_says_offset_calibration_and_an_untrained_inverse():
    """Guards against 'offset and scale' said of an offset-only calibration, and against an
    inverse direction with inverse_weight = 0 said to be covered by the training loss."""
    text = render_markdown(model_blocks(_Entry("a", model_metrics(calibration="offset")), {}))
    assert "sets offset of the prediction and is not scored" in text
    assert "The training loss did not cover this direction (inverse_weight = 0)" in text
    entry = _Entry("a", model_metrics(), inverse_weight=0.5)
    text = render_markdown(model_blocks(entry, {}))
    assert "sets offset and scale of the prediction" in text
    assert "The training loss covered this direction (inverse_weight = 0.5)." in text


def test_per_subject_summary_compares_with_the_baselines_only():
    """Guards against the model's own per-subject averages repeated as a 'model, average'
    column beside the baselines' (the methods' first entry is the model)."""
    m = model_metrics()
    subject = {"subject": "s1", "n_windows": 3, "wave_mae": 7.0, "wave_r": 0.9}
    subject |= {f"{n}_mae": 4.0 for n in ("sbp", "dbp", "map")}
    subject |= {f"{n}_me": 0.5 for n in ("sbp", "dbp", "map")}
    for key in ("calibration_free", "calibrated"):
        m[key]["subjects"] = [subject]
        m[key]["per_subject"] = {"n_subjects": 1, "wave_mae": 7.0}
    for b in m["baselines"].values():
        b["per_subject"] = {"n_subjects": 1, "wave_mae": 20.0}
    text = render_markdown(model_blocks(_Entry("a", m), {}))
    heads = [line for line in text.splitlines() if line.startswith("|  | pooled")]
    assert heads == [
        "|  | pooled over windows | average over 1 subject | naive, average | "
        "linear a*zPPG+b, average |",
        "|  | pooled over windows | average over 1 subject | carry-forward, average |",
    ]


def test_html_escapes_text_and_renders_bold_code_figures_and_details():
    """Guards against text put into the page unescaped (a subject id '<b1>' became a tag),
    ** and ` left as they are, a figure embedded without its bytes, and a collapsible
    section that lost its contents."""
    table = Table(["subject", "MAE"], [["<b1>&", "4.00"]])
    blocks = [
        ("p", "Checkpoint `run/best.pt` on **test** & <all>"),
        ("figure", ("figures/a.png", "a <caption>")),
        ("details", ("1 subject", [("table", table)])),
    ]
    page = html_body(blocks, {"figures/a.png": b"PNG!"})
    assert (
        "<p>Checkpoint <code>run/best.pt</code> on <strong>test</strong> &amp; &lt;all&gt;</p>"
        in page
    )
    assert 'src="data:image/png;base64,UE5HIQ=="' in page  # base64 of b"PNG!"
    assert 'alt="a &lt;caption&gt;"' in page
    assert (
        "<details><summary>1 subject</summary><table><thead><tr><th>subject</th><th>MAE</th>"
        "</tr></thead><tbody><tr><td>&lt;b1&gt;&amp;</td><td>4.00</td></tr></tbody></table>"
        "</details>" in page
    )


# --------------------------------------------------------------------------------------
# Figures (plots)
# --------------------------------------------------------------------------------------


def spans(ax) -> list[tuple[float, float]]:
    """The x extents of an axes' shaded spans (axvspan rectangles spanning its height)."""
    return [
        (p.get_x(), p.get_x() + p.get_width())
        for p in ax.patches
        if p.get_height() == pytest.approx(1.0) and p.get_y() == 0.0
    ]


def vertical_lines(ax) -> list[float]:
    return [
        float(line.get_xdata()[0])
        for line in ax.get_lines()
        if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
    ]


def line(ax, label: str):
    return next(ln for ln in ax.get_lines() if ln.get_label() == label)


def test_bland_altman_labels_limits_title_sd_and_points_by_hand(captured, tmp_path):
    """Guards against the +1.96 SD label put on the lower limit (and -1.96 on the upper),
    the title's SD computed from the span of both limits (2 SD), and the points drawn at
    the reference in place of the mean of predicted and reference. Errors 13, -3, 13, -3, 5:
    ME 5, sample SD 8, limits 5 +- 15.68 = 20.68 and -10.68."""
    ref = np.array([100.0, 110.0, 120.0, 130.0, 140.0])[:, None] * np.ones(3)
    err = np.array([13.0, -3.0, 13.0, -3.0, 5.0])
    plots.plot_bland_altman(ref + err[:, None], ref, tmp_path / "ba.png")
    for ax, name in zip(captured[0].axes, ("SBP", "DBP", "MAP"), strict=True):
        assert ax.get_title(loc="left") == f"{name}: ME +5.0 mmHg, SD 8.0 mmHg (n=5)"
        labels = {t.get_text(): t.xy[1] for t in ax.texts}
        assert labels == pytest.approx(
            {"+1.96 SD +20.7": 20.68, "ME +5.0": 5.0, "-1.96 SD -10.7": -10.68}
        )
        np.testing.assert_allclose(
            ax.collections[0].get_offsets(),
            [[106.5, 13.0], [108.5, -3.0], [126.5, 13.0], [128.5, -3.0], [142.5, 5.0]],
        )


def test_bland_altman_axis_holds_an_error_beyond_the_limits(captured, tmp_path):
    """Guards against the y axis sized by the limits alone: nine errors of 0 and one of 30
    (ME 3, SD sqrt(90) = 9.49, upper limit 21.6) left the point at 30 off the axes."""
    err = np.array([0.0] * 9 + [30.0])
    ref = np.full((10, 3), 100.0)
    plots.plot_bland_altman(ref + err[:, None], ref, tmp_path / "ba.png")
    for ax in captured[0].axes:
        low, high = ax.get_ylim()
        assert low == -high and high >= 30.0 / (1 - 2 * plots.POINT_MARGIN)


def _inside(fig, ax, text) -> bool:
    """Whether ``text`` and its white box lie inside ``ax``'s frame in ``fig`` (closed once
    saved), clear of the frame's line: 2 points from it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # places the text's box
    renderer = canvas.get_renderer()
    box, frame = text.get_bbox_patch().get_window_extent(renderer), ax.get_window_extent(renderer)
    gap = 2.0 * fig.dpi / 72.0
    return frame.y0 + gap <= box.y0 and box.y1 <= frame.y1 - gap and frame.x0 <= box.x0


def test_bland_altman_keeps_its_limit_labels_and_a_lone_point_inside_the_frame(captured, tmp_path):
    """One subject's calibrated windows (eight, the largest error near the upper limit)
    had the '+1.96 SD' label cut by the top of the frame: 10 % headroom above the largest
    of the limits and errors is less than the label's height. A lone window's point sat on
    the frame."""
    ref = np.array([[120.0, 80.0, 95.0]] * 8)
    err = np.random.default_rng(0).normal(0.0, 3.0, (8, 3))
    err[0] = 8.0
    plots.plot_bland_altman(ref + err, ref, tmp_path / "ba.png")
    fig = captured[-1]
    for ax in fig.axes:
        assert [t.get_text().split()[0] for t in ax.texts] == ["+1.96", "ME", "-1.96"]
        assert all(_inside(fig, ax, t) for t in ax.texts)
    plots.plot_bland_altman(ref[:1] + np.array([-9.0, -3.0, 2.0]), ref[:1], tmp_path / "one.png")
    for ax, e in zip(captured[-1].axes, (-9.0, -3.0, 2.0), strict=True):
        low, high = ax.get_ylim()
        at = (e - low) / (high - low)  # the point's height in the axes
        assert plots.POINT_MARGIN - 1e-9 <= at <= 1 - plots.POINT_MARGIN + 1e-9
        assert all(_inside(captured[-1], ax, t) for t in ax.texts)


def test_bland_altman_of_no_windows_says_so():
    """Guards against a numpy error ('zero-size array') in place of 'no windows to plot'."""
    with pytest.raises(ValueError, match="no windows to plot"):
        plots.plot_bland_altman(np.zeros((0, 3)), np.zeros((0, 3)), "x.png")


def test_reconstructions_draw_each_window_titled_with_its_own_name_and_mae(captured, tmp_path):
    """Guards against the MAE taken without the absolute value (errors +3 and -3 average
    to 0), the windows' names dropped for 'window i', and a window left out."""
    ref = np.full((3, 100), 90.0)
    pred = ref + np.where(np.arange(100) % 2 == 0, 3.0, -3.0)
    plots.plot_reconstructions(
        ref,
        pred,
        100.0,
        tmp_path / "w.png",
        titles=["s1 (w0)", "s1 (w1)", "s2 (w2)"],
        markers=False,
    )
    titles = [ax.get_title(loc="left") for ax in captured[0].axes]
    assert titles == [f"{t}  (MAE 3.00 mmHg)" for t in ("s1 (w0)", "s1 (w1)", "s2 (w2)")]
    plots.plot_reconstructions(ref, pred, 100.0, tmp_path / "w.png", max_windows=2, markers=False)
    assert [ax.get_title(loc="left") for ax in captured[1].axes] == [
        "window 0  (MAE 3.00 mmHg)",
        "window 1  (MAE 3.00 mmHg)",
    ]


def test_running_median_by_hand():
    """Guards against a running median over another number of beats (half = beats, or one
    beat short at the end), the mean in place of the median, the break put one beat early,
    or no break at a 6-s gap (max_gap_s = 3). Over 3 beats: medians of (5, 1), (5, 1, 9),
    (1, 9, 3), (9, 3, 7), (3, 7, 100), (7, 100, 2), (100, 2)."""
    times = [0.0, 1.0, 2.0, 3.0, 4.0, 10.0, 11.0]
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 100.0, 2.0]
    tt, vv = plots.running_median(times, values, beats=3)
    np.testing.assert_array_equal(tt, [0, 1, 2, 3, 4, np.nan, 10, 11])
    np.testing.assert_array_equal(vv, [3, 5, 3, 7, 7, np.nan, 7, 51])
    tt, _ = plots.running_median([0.0, 2.9, 5.8], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(tt, [0.0, 2.9, 5.8])  # 2.9 s apart is no gap


def test_default_zoom_is_a_fully_reconstructed_span_inside_the_recording():
    """Guards against a zoom accepted with any (not every) sample reconstructed, the last
    possible span never tried, the fallback at the start in place of the middle, and a zoom
    wider than a recording shorter than 10 s. At 10 Hz, 30 s reconstructed only in its last
    10 s: the zoom is 20-30 s; nothing reconstructed: the middle, 10-20 s; 4 s: all of it."""
    out = np.full(300, np.nan)
    out[200:] = 90.0
    assert plots._default_zoom(out, 10.0) == (20.0, 30.0)
    assert plots._default_zoom(np.full(300, np.nan), 10.0) == (10.0, 20.0)
    assert plots._default_zoom(np.full(40, 90.0), 10.0) == (0.0, 4.0)


def hand_beats(seconds: int, skip: range) -> SimpleNamespace:
    """One beat a second, peak at k + 0.5 s (120 mmHg), foot at k + 0.2 s (80 mmHg)."""
    k = np.array([i for i in range(seconds) if i not in skip], dtype=float)
    return SimpleNamespace(
        peak_s=k + 0.5, onset_s=k + 0.2, sbp=np.full(k.size, 120.0), dbp=np.full(k.size, 80.0)
    )


def test_recording_figure_shows_gaps_calibration_zoom_and_beats(captured, tmp_path):
    """Guards against the gaps shaded in the input panel only, the calibration segment not
    shaded, the share reconstructed not counted (said 100 %), the clock's origin left out of
    the time axis, the zoom panel drawing samples or beats beyond its span, and the DBP
    line drawn at the systolic peaks' times in place of the feet's. 60 s at 50 Hz, not
    reconstructed at 20-30 s (50 of 60 s: 83.3 %), zoom 25-35 s, calibration 5-15 s."""
    fs = 50.0
    t = np.arange(3000) / fs
    out = 90 - 25 * np.cos(2 * np.pi * t)
    out[1000:1500] = np.nan
    plots.plot_recording(
        fs,
        np.sin(2 * np.pi * t),
        out,
        tmp_path / "r.png",
        beats=hand_beats(60, range(20, 30)),
        gaps=[(20.0, 30.0)],
        calibration_s=(5.0, 15.0),
        zoom_s=(25.0, 35.0),
        origin_s=1700000000.0,
    )
    top, mid, bottom = captured[0].axes
    for ax in (top, mid):
        extents = spans(ax)
        assert (20.0, 30.0) in extents and (5.0, 15.0) in extents
    assert (25.0, 30.0) in spans(bottom)
    assert "60 s, 83.3 % reconstructed" in mid.get_title(loc="left")
    assert bottom.get_xlabel() == "time (s) from the first sample, at 1700000000 s"
    drawn = line(bottom, "reconstructed ABP").get_xdata()
    assert drawn.min() == 25.0 and drawn.max() == pytest.approx(34.98)
    np.testing.assert_allclose(line(bottom, "beat SBP").get_xdata(), [30.5, 31.5, 32.5, 33.5, 34.5])
    np.testing.assert_allclose(line(bottom, "beat DBP").get_xdata(), [30.2, 31.2, 32.2, 33.2, 34.2])
    dbp = line(mid, "reconstructed DBP").get_xdata()
    expected = [*(k + 0.2 for k in range(20)), np.nan, *(k + 0.2 for k in range(30, 60))]
    np.testing.assert_allclose(dbp, expected)
    assert mid.get_ylabel() == bottom.get_ylabel() == "ABP (mmHg)"


def test_the_input_panel_is_shaded_on_the_input_s_clock(captured, tmp_path):
    """Guards against shading the input panel with the output's gaps and calibration
    segment (after a --ppg-delay shift): the output at t came from the input at
    t + source_lag_s. Its own gaps are drawn when given, else the output's moved by it."""
    fs = 50.0
    t = np.arange(3000) / fs
    out = 90 - 25 * np.cos(2 * np.pi * t)
    for given, expected in ((None, (20.5, 30.5)), ([(21.0, 31.0)], (21.0, 31.0))):
        plots.plot_recording(
            fs,
            np.sin(2 * np.pi * t),
            out,
            tmp_path / "r.png",
            gaps=[(20.0, 30.0)],
            calibration_s=(5.0, 15.0),
            zoom_s=(40.0, 50.0),
            source_gaps=given,
            source_lag_s=0.5,
        )
        top, mid, _ = captured[-1].axes
        assert {(20.0, 30.0), (5.0, 15.0), (40.0, 50.0)} <= set(spans(mid))
        assert {expected, (5.5, 15.5), (40.5, 50.5)} <= set(spans(top))
        assert (20.0, 30.0) not in spans(top) and (5.0, 15.0) not in spans(top)


def test_a_reconstructed_ppg_is_labelled_as_ppg_with_no_bp_lines(captured, tmp_path):
    """Guards against a reconstructed PPG (abp2ppg) labelled 'ABP (mmHg)', or given the
    SBP/DBP lines of blood pressure."""
    fs = 50.0
    t = np.arange(1000) / fs
    plots.plot_recording(
        fs,
        90 - 25 * np.cos(2 * np.pi * t),
        np.sin(2 * np.pi * t),
        tmp_path / "p.png",
        direction="abp2ppg",
        beats=hand_beats(20, range(0)),
    )
    _, mid, bottom = captured[0].axes
    assert mid.get_ylabel() == bottom.get_ylabel() == "PPG (z-score)"
    assert not [ln for ln in mid.get_lines() if "SBP" in ln.get_label()]
    assert [ln.get_label() for ln in bottom.get_lines()] == ["reconstructed PPG"]


def errors_figure(captured, tmp_path, **methods) -> object:
    """The error figure of methods given as (windows,) errors of every BP value."""
    arrays = {}
    for name, err in methods.items():
        err = np.asarray(err, dtype=float)[:, None] * np.ones(3)
        arrays[name.replace("_", "-")] = (100.0 + err, np.full_like(err, 100.0))
    plots.plot_error_distributions(arrays, tmp_path / "e.png")
    return captured[-1]


@pytest.mark.parametrize("error", [-9.0, 3.0])
def test_the_error_legend_hides_no_bar(captured, tmp_path, error):
    """A lone window's bar, as tall as the axes, stood under the legend in the first
    histogram (at -9 mmHg, the legend's corner), hidden by it; elsewhere it stays visible."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = errors_figure(captured, tmp_path, model=[error])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    top = fig.axes[0]
    legend = top.get_legend().get_window_extent(renderer)
    # The histogram's bars, 1 mmHg wide; the BHS bands are 10 to 30 mmHg wide.
    bars = [p for p in top.patches if p.get_height() > 0 and p.get_width() < 2.0]
    assert len(bars) == 1
    bar = bars[0].get_window_extent(renderer)
    assert bar.y1 < legend.y0 or bar.x1 < legend.x0 or bar.x0 > legend.x1


def test_error_histograms_count_whole_windows(captured, tmp_path):
    """A few windows were counted on ticks of 0.2, 0.4, ... windows."""
    fig = errors_figure(captured, tmp_path, model=[-2, 3])
    for top in fig.axes[:3]:
        ticks = top.get_yticks()
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_error_panels_are_the_first_method_s_with_abs_mae_and_mean_line(captured, tmp_path):
    """Guards against the histogram and its title taken from the last method, the MAE
    without the absolute value, the dashed line at the median in place of the mean, and a
    method with the opposite errors marked as equal to another. Model errors -2, -2, -2, 14:
    ME +2.0, MAE 5.0, median -2."""
    fig = errors_figure(captured, tmp_path, model=[-2, -2, -2, 14], naive=[2, 2, 2, -14])
    for j, name in enumerate(("SBP", "DBP", "MAP")):
        top, bottom = fig.axes[j], fig.axes[3 + j]
        assert top.get_title(loc="left") == f"{name}, model: ME +2.0, MAE 5.0 mmHg"
        assert vertical_lines(top) == [2.0]
        labels = [ln.get_label() for ln in bottom.get_lines() if not ln.get_label().startswith("_")]
        assert labels[:2] == ["model", "naive"]


def test_error_axes_widen_to_the_errors_and_grade_a_is_marked(captured, tmp_path):
    """Guards against the axes fixed at 20 mmHg (errors of 33 mmHg go to 35), a cumulative
    curve that leaves out errors equal to x (all-zero errors are 100 % within 0 mmHg, not 0),
    and the markers of BHS grade B (50/75/90 %) drawn as what grade A needs (60/85/95 %)."""
    fig = errors_figure(captured, tmp_path, model=[0, 0, 0, 0], naive=[33, -33, 33, -33])
    for j in range(3):
        top, bottom = fig.axes[j], fig.axes[3 + j]
        assert top.get_xlim() == (-35.0, 35.0) and bottom.get_xlim() == (0.0, 35.0)
        curve = line(bottom, "model")
        assert curve.get_xdata()[0] == 0.0 and curve.get_ydata()[0] == 100.0
        marks = [
            (float(ln.get_xdata()[0]), float(ln.get_ydata()[0]))
            for ln in bottom.get_lines()
            if ln.get_marker() == "_" and len(ln.get_xdata()) == 1
        ]
        assert marks == [(5.0, 60.0), (10.0, 85.0), (15.0, 95.0)]


def test_errors_beyond_the_axis_are_counted_in_its_edge_bins(captured, tmp_path):
    """Guards against errors beyond the axis dropped from the histogram (not clipped into
    its edge bins), and errors exactly at the axis limit said to be beyond it. 198 errors of
    1 and 2 of 100: the 99th percentile is 1.99, the axis 20 mmHg."""
    fig = errors_figure(captured, tmp_path, model=[1.0] * 198 + [100.0] * 2)
    top = fig.axes[0]
    heights = [p.get_height() for p in top.containers[0]]
    assert sum(heights) == 200 and heights[-1] == 2
    assert [t.get_text() for t in top.texts] == ["2 beyond ±20 mmHg\n(in the edge bins)"]
    fig = errors_figure(captured, tmp_path, model=[20.0, -20.0, 20.0, -20.0])
    assert fig.axes[0].get_xlim() == (-20.0, 20.0) and not fig.axes[0].texts


def test_error_figure_of_no_windows_says_so():
    """Guards against a numpy error in place of the figure's own message for a method with
    no windows."""
    with pytest.raises(ValueError, match="model: expected \\(windows, 3\\) arrays with windows"):
        plots.plot_error_distributions({"model": (np.zeros((0, 3)), np.zeros((0, 3)))}, "e.png")


def test_training_curves_plot_each_column_where_it_was_recorded(captured, tmp_path):
    """Guards against a crash on a record without an epoch (a final test record), the
    validation panel left out when the first epoch was not validated, a missing value drawn
    as 0 (not a gap), the validation loss or SBP lines drawn from other columns, and the
    best epoch taken from the first record in place of the last."""
    history = [
        {"epoch": 1, "train_loss": 0.5},
        {
            "epoch": 2,
            "train_loss": 0.4,
            "val_loss": 0.6,
            "val_mae": 10.0,
            "val_sbp_mae": 12.0,
            "val_dbp_mae": 6.0,
            "val_map_mae": 7.0,
            "best_epoch": 2,
        },
        {
            "epoch": 3,
            "train_loss": 0.3,
            "val_loss": 0.45,
            "val_mae": 8.0,
            "val_sbp_mae": 9.5,
            "val_dbp_mae": 5.0,
            "val_map_mae": 6.0,
            "best_epoch": 3,
        },
        {"test_mae": 7.0},
    ]
    plots.plot_training_curves(history, tmp_path / "t.png")
    loss, val = captured[0].axes
    np.testing.assert_array_equal(line(loss, "training L1").get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(line(loss, "training L1").get_ydata(), [0.5, 0.4, 0.3])
    np.testing.assert_array_equal(line(loss, "validation L1").get_ydata(), [np.nan, 0.6, 0.45])
    np.testing.assert_array_equal(line(val, "waveform").get_ydata(), [np.nan, 10.0, 8.0])
    np.testing.assert_array_equal(line(val, "SBP").get_ydata(), [np.nan, 12.0, 9.5])
    np.testing.assert_array_equal(line(val, "DBP").get_ydata(), [np.nan, 6.0, 5.0])
    assert vertical_lines(val) == [3.0]
    assert [t.get_text() for t in val.texts] == ["best epoch 3"]


PAIR_HISTORY = [
    {"epoch": 1, "train_loss": 0.5, "train_pair_loss": 0.1, "val_loss": 0.25},
    {"epoch": 2, "train_loss": 0.141, "train_pair_loss": 0.0237, "val_loss": 0.063},
]


def test_training_curves_set_the_training_l1_against_the_validation_l1(captured, tmp_path):
    """Guards against the training line of the default recipe drawn with 3 x its
    within-subject term (0.141, of which 3 x 0.0237) against the validation loss, which is
    the plain L1 (0.063): validation looked twice as good as training. The inverse term is
    taken out with its own weight; a run without such terms is drawn as it was logged."""
    plots.plot_training_curves(PAIR_HISTORY, tmp_path / "t.png", loss_weights={"pair_weight": 3})
    ax = captured[-1].axes[0]
    np.testing.assert_allclose(line(ax, "training L1").get_ydata(), [0.2, 0.141 - 0.0711])
    np.testing.assert_array_equal(line(ax, "validation L1").get_ydata(), [0.25, 0.063])
    assert ax.get_ylabel() == "L1 loss (normalised units, log scale)"
    history = [{"epoch": 1, "train_loss": 0.5, "train_inverse_loss": 0.2, "train_pair_loss": 0.1}]
    weights = {"pair_weight": 1.0, "inverse_weight": 0.5, "extremes_weight": 0.0}
    plots.plot_training_curves(history, tmp_path / "t.png", loss_weights=weights)
    np.testing.assert_allclose(line(captured[-1].axes[0], "training L1").get_ydata(), [0.3])
    history = [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4}]
    plots.plot_training_curves(history, tmp_path / "t.png", loss_weights={"pair_weight": 0.0})
    np.testing.assert_array_equal(line(captured[-1].axes[0], "training L1").get_ydata(), [0.5])


def test_training_loss_that_cannot_be_split_is_labelled_as_the_whole_loss(captured, tmp_path):
    """Guards against a training loss holding terms that metrics.jsonl does not log (the
    extremes loss), or of a run whose weights are unknown, drawn as an L1 beside the
    validation L1: it is drawn whole and labelled so, the axis no longer called L1."""
    plots.plot_training_curves(
        PAIR_HISTORY, tmp_path / "t.png", loss_weights={"pair_weight": 3, "extremes_weight": 1}
    )
    ax = captured[-1].axes[0]
    label = "training loss (all terms; extremes_weight not logged)"
    np.testing.assert_array_equal(line(ax, label).get_ydata(), [0.5, 0.141])
    assert ax.get_ylabel() == "loss (normalised units, log scale)"
    plots.plot_training_curves(PAIR_HISTORY, tmp_path / "t.png")
    label = "training loss (all terms; the run's loss weights are unknown)"
    np.testing.assert_array_equal(line(captured[-1].axes[0], label).get_ydata(), [0.5, 0.141])


# --------------------------------------------------------------------------------------
# Figures from files (figures)
# --------------------------------------------------------------------------------------


@pytest.fixture
def drawn(monkeypatch):
    """What the figures module hands to each plot function (which then draws nothing)."""
    calls = {}

    def keeper(name):
        def keep(*args, **kwargs):
            calls[name] = (args, kwargs)
            return Path("drawn.png")

        return keep

    for name in (
        "plot_reconstructions",
        "plot_bland_altman",
        "plot_error_distributions",
        "plot_training_curves",
        "plot_recording",
    ):
        monkeypatch.setattr(plots, name, keeper(name))
    return calls


def predictions_file(path: Path, **overrides) -> Path:
    """Six windows w0..w5 of subjects s0, s1, s0, ... (a 1.2-Hz pulse, 65-115 mmHg), each
    predicted 3 mmHg high."""
    from innpar_freia.predictions import write_predictions

    t = np.arange(625) / 125.0
    ref = np.stack([90 + 25 * np.sin(2 * np.pi * 1.2 * t + i) for i in range(6)])
    kw = {
        "fs": 125.0,
        "window_id": [f"w{i}" for i in range(6)],
        "subject": [f"s{i % 2}" for i in range(6)],
        "prediction": ref + 3.0,
        "reference": ref,
    }
    kw.update(overrides)
    return write_predictions(path, **kw)


def test_calibrated_reconstructions_are_the_scored_windows_under_their_own_names(drawn, tmp_path):
    """Guards against the calibrated figure drawing the calibration windows (not scored),
    or naming the scored windows after the first ones in the file. Windows w2..w5 are
    scored; their calibrated prediction is the reference + 1."""
    from innpar_freia.figures import predictions_figure
    from innpar_freia.predictions import read_predictions

    ref = read_predictions(predictions_file(tmp_path / "r.h5")).reference
    path = predictions_file(
        tmp_path / "p.h5",
        calibrated=ref + 1.0,
        scored=np.arange(6) >= 2,
        attrs={"calibration": "offset", "name": "run/best"},
    )
    predictions_figure(path, "reconstructions", tmp_path / "f.png", protocol="calibrated")
    (r, p, _, _), kw = drawn["plot_reconstructions"]
    np.testing.assert_allclose(r, ref[2:], atol=1e-4)  # float32 storage
    np.testing.assert_allclose(p, ref[2:] + 1.0, atol=1e-4)
    assert kw["titles"] == ["s0 (w2)", "s1 (w3)", "s0 (w4)", "s1 (w5)"]
    assert kw["title"] == "run/best: calibrated (offset), first 4 windows in file order"


def test_windows_with_nan_in_prediction_or_reference_are_left_out_by_name(drawn, tmp_path):
    """Guards against a window whose reference holds NaN kept (it wrecks the axes), and the
    windows left after leaving some out titled with the names of the first ones."""
    from innpar_freia.figures import predictions_figure
    from innpar_freia.predictions import read_predictions

    f = read_predictions(predictions_file(tmp_path / "r.h5"))
    pred, ref = f.prediction.copy(), f.reference.copy()
    pred[1, 10] = np.nan
    ref[4, 20] = np.inf
    path = predictions_file(tmp_path / "p.h5", prediction=pred, reference=ref)
    predictions_figure(path, "reconstructions", tmp_path / "f.png")
    _, kw = drawn["plot_reconstructions"]
    assert kw["titles"] == ["s0 (w0)", "s0 (w2)", "s1 (w3)", "s1 (w5)"]
    assert kw["title"].endswith("(2 windows with NaN/inf left out), first 4 windows in file order")


def test_bland_altman_of_a_file_is_prediction_minus_reference(drawn, tmp_path):
    """Guards against the predicted and reference BP values swapped: every window is
    predicted 3 mmHg high, so each SBP, DBP and MAP error is +3, not -3."""
    from innpar_freia.figures import predictions_figure

    predictions_figure(predictions_file(tmp_path / "p.h5"), "bland-altman", tmp_path / "f.png")
    (bp_pred, bp_ref, _), _ = drawn["plot_bland_altman"]
    np.testing.assert_allclose(bp_pred - bp_ref, 3.0, atol=1e-3)


def test_a_ppg_predictions_file_is_drawn_as_ppg(drawn, tmp_path):
    """Guards against a PPG predictions file (abp2ppg) taken for ABP: its reconstructions
    labelled in mmHg with SBP/DBP markers, and Bland-Altman plots of 'blood pressure'."""
    from innpar_freia.errors import DataError
    from innpar_freia.figures import predictions_figure

    path = predictions_file(tmp_path / "p.h5", direction="abp2ppg")
    predictions_figure(path, "reconstructions", tmp_path / "f.png")
    _, kw = drawn["plot_reconstructions"]
    assert (kw["ylabel"], kw["what"], kw["units"], kw["markers"]) == (
        "PPG (z-score)",
        "PPG",
        "z",
        False,
    )
    with pytest.raises(DataError, match="holds PPG, not ABP"):
        predictions_figure(path, "bland-altman", tmp_path / "f.png")


def eleven_windows(path: Path) -> Path:
    """Eleven windows w0..w10 (each with its own pulse rate and error) with a calibrated
    protocol that leaves out w0, w5 and w6; w1's prediction holds NaN, w4's reference inf
    and w9's calibrated prediction NaN."""
    t = np.arange(625) / 125.0
    ref = np.stack([90 + 25 * np.sin(2 * np.pi * (1 + 0.05 * i) * t + i) for i in range(11)])
    pred = ref + 3.0 + 0.5 * np.arange(11)[:, None]
    calibrated = ref - 1.0 - 0.25 * np.arange(11)[:, None]
    pred[1, 10], ref[4, 20], calibrated[9, 0] = np.nan, np.inf, np.nan
    return predictions_file(
        path,
        window_id=[f"w{i}" for i in range(11)],
        subject=[f"s{i % 3}" for i in range(11)],
        prediction=pred,
        reference=ref,
        calibrated=calibrated,
        scored=~np.isin(np.arange(11), [0, 5, 6]),
        attrs={"calibration": "offset", "name": "run/best"},
    )


@pytest.mark.parametrize(
    ("protocol", "rows", "title"),
    [
        ("calibration-free", [0, 2, 3, 5, 6, 7, 8, 9, 10], "run/best: calibration-free"),
        ("calibrated", [1, 2, 3, 7, 8, 10], "run/best: calibrated (offset)"),
    ],
)
def test_figures_read_by_blocks_draw_what_the_whole_file_gives(
    drawn, tmp_path, monkeypatch, protocol, rows, title
):
    """Guards against the figures, which read a predictions file a block of windows at a
    time, drawing other windows or other BP values than the whole file read at once gives:
    a block's rows taken from the wrong place, the scored windows or the NaN/inf windows
    picked in another block than their own. The file (:func:`eleven_windows`) is read 3
    windows at a time; ``rows`` are its finite windows for the protocol, worked out by hand."""
    from innpar_freia import predictions
    from innpar_freia.figures import predictions_figure
    from innpar_freia.predictions import read_predictions
    from innpar_freia.signal import bp_values_batch

    path = eleven_windows(tmp_path / "p.h5")
    whole = read_predictions(path)
    pred = whole.calibrated if protocol == "calibrated" else whole.prediction
    pred, ref = pred[rows], whole.reference[rows]
    title += " (2 windows with NaN/inf left out)"
    monkeypatch.setattr(predictions, "BLOCK", 3)
    predictions_figure(path, "bland-altman", tmp_path / "f.png", protocol)
    (bp_pred, bp_ref, _), kw = drawn["plot_bland_altman"]
    np.testing.assert_array_equal(bp_pred, bp_values_batch(pred, 125.0))
    np.testing.assert_array_equal(bp_ref, bp_values_batch(ref, 125.0))
    assert kw["title"] == title
    predictions_figure(path, "errors", tmp_path / "f.png", protocol)
    (models, _), kw = drawn["plot_error_distributions"]
    assert list(models) == ["model"] and kw["title"] == title
    np.testing.assert_array_equal(models["model"][0], bp_pred)
    np.testing.assert_array_equal(models["model"][1], bp_ref)
    predictions_figure(path, "reconstructions", tmp_path / "f.png", protocol, n=5)
    (r, p, fs, _), kw = drawn["plot_reconstructions"]
    np.testing.assert_array_equal(r[:5], ref[:5])  # the windows it draws (max_windows)
    np.testing.assert_array_equal(p[:5], pred[:5])
    # Not the percentile windows of innpar eval's report: the title says which these are.
    assert kw["title"] == f"{title}, first 5 windows in file order"
    assert fs == 125.0 and kw["max_windows"] == 5
    assert kw["titles"] == [f"s{i % 3} (w{i})" for i in rows[:5]]


@pytest.mark.parametrize("protocol", ["calibration-free", "calibrated"])
def test_figures_of_a_predictions_file_read_a_block_of_windows_at_a_time(
    drawn, tmp_path, monkeypatch, protocol
):
    """Guards against a figure of a predictions file reading all its windows at once (the
    float64 copies of a 300k-window file took 6.6 GB to draw a figure): each read of the
    file's datasets, made through h5py, returns at most a block (3 here) of windows, or the
    two drawn; only the per-window 'scored' flags are read whole."""
    import h5py

    from innpar_freia import predictions
    from innpar_freia.figures import predictions_figure

    path = eleven_windows(tmp_path / "p.h5")
    reads = []
    read = h5py.Dataset.__getitem__

    def counted(self, *args, **kwargs):
        values = read(self, *args, **kwargs)
        reads.append((self.name.lstrip("/"), len(values)))
        return values

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counted)
    monkeypatch.setattr(predictions, "BLOCK", 3)
    for kind in ("bland-altman", "errors", "reconstructions"):
        reads.clear()
        predictions_figure(path, kind, tmp_path / "f.png", protocol, n=2)
        windows = [(name, n) for name, n in reads if name != "scored"]
        assert max(n for _, n in windows) <= 3, reads
        assert sum(n for name, n in windows if name == "reference") >= 11, reads
        whole = [("scored", 11)] if protocol == "calibrated" else []
        assert [read for read in reads if read[0] == "scored"] == whole, reads


def test_a_prediction_reader_gives_what_read_predictions_gives(tmp_path, monkeypatch):
    """Guards against the blockwise reader giving other values, types (float64 windows, as
    read_predictions gives them) or rows than read_predictions (its blocks joined, and
    chosen rows), and against a damaged file read by it without read_predictions' message,
    or left open."""
    import h5py

    from innpar_freia import predictions
    from innpar_freia.errors import DataError
    from innpar_freia.predictions import PredictionReader, read_predictions

    path = eleven_windows(tmp_path / "p.h5")
    whole = read_predictions(path)
    dtypes = {"window_id": object, "subject": object, "start": np.int64, "index": np.int64}
    dtypes |= {"prediction": np.float64, "reference": np.float64, "calibrated": np.float64}
    dtypes |= {"scored": bool}
    names = list(dtypes)
    monkeypatch.setattr(predictions, "BLOCK", 4)
    with PredictionReader(path) as f:
        assert (len(f), f.fs, f.attrs) == (11, 125.0, whole.attrs)
        assert "calibrated" in f and "ppg_inverse" not in f
        blocks = list(f.blocks(*names))
        assert [first for first, _ in blocks] == [0, 4, 8]
        for i, name in enumerate(names):
            joined = np.concatenate([values[i] for _, values in blocks])
            assert joined.dtype == dtypes[name], name
            np.testing.assert_array_equal(joined, getattr(whole, name))
        np.testing.assert_array_equal(f.rows("prediction", [2, 7]), whole.prediction[[2, 7]])
        assert list(f.rows("window_id", [3, 10])) == ["w3", "w10"]
        assert f.rows("reference", []).shape == (0, 625)
    with h5py.File(path, "r+") as fh:
        del fh["index"]
    with pytest.raises(DataError, match="is damaged: it has no index dataset") as refused:
        PredictionReader(path)
    # The refused file was closed, not left to the garbage collector (its error, which
    # holds the reader's frames, is still here): HDF5 opens it to write.
    h5py.File(path, "r+").close()
    assert refused.value is not None


def test_training_figure_is_titled_with_the_run_s_folder(drawn, tmp_path):
    """Guards against the run named 'metrics' (the file's stem) in place of its folder."""
    from innpar_freia.figures import training_figure

    run = tmp_path / "00003-tiny"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 0.5}\n')
    training_figure(run, tmp_path / "t.png")
    assert drawn["plot_training_curves"][1]["title"] == "run 00003-tiny"
    training_figure(run / "metrics.jsonl", tmp_path / "t.png")
    assert drawn["plot_training_curves"][1]["title"] == "run 00003-tiny"


def test_training_figure_names_the_run_s_preset_test_fold_and_data(drawn, tmp_path):
    """Guards against a title of the run's folder alone ("run 00003-tiny"), where the other
    figures name the model and the fold: the run's config.json gives its preset, test fold
    and data file; what it lacks is left out."""
    from innpar_freia.figures import training_figure

    run = tmp_path / "00003-tiny"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 0.5}\n')
    config = {
        "preset": "innpar-plus-pair3",
        "train": {"test_fold": 3, "pair_weight": 3.0},
        "data": {"path": "/data/challenge2015.h5"},
    }
    (run / "config.json").write_text(json.dumps(config))
    training_figure(run, tmp_path / "t.png")
    assert drawn["plot_training_curves"][1]["title"] == (
        "run 00003-tiny: innpar-plus-pair3, test fold 3, data challenge2015.h5"
    )
    assert drawn["plot_training_curves"][1]["loss_weights"] == config["train"]
    config["train"]["test_fold"] = None  # the data file's own test split
    del config["data"]
    (run / "config.json").write_text(json.dumps(config))
    training_figure(run / "metrics.jsonl", tmp_path / "t.png")
    assert drawn["plot_training_curves"][1]["title"] == (
        "run 00003-tiny: innpar-plus-pair3, test split"
    )


def test_training_figure_reads_the_run_s_loss_weights(drawn, tmp_path):
    """Guards against the run's config.json left unread, so that the figure could not take
    the within-subject term out of the training loss; a run without one (or with one that
    is not JSON) is drawn with unknown weights, not refused."""
    from innpar_freia.figures import training_figure

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 0.5}\n')
    training_figure(run, tmp_path / "t.png")
    assert drawn["plot_training_curves"][1]["loss_weights"] is None
    (run / "config.json").write_text("not json")
    training_figure(run, tmp_path / "t.png")
    assert drawn["plot_training_curves"][1]["loss_weights"] is None
    (run / "config.json").write_text('{"train": {"pair_weight": "3"}}')
    training_figure(run, tmp_path / "t.png")
    assert drawn["plot_training_curves"][1]["loss_weights"] is None
    (run / "config.json").write_text('{"train": {"pair_weight": 3.0}}')
    training_figure(run / "metrics.jsonl", tmp_path / "t.png")
    assert drawn["plot_training_curves"][1]["loss_weights"] == {"pair_weight": 3.0}


def recording_csv(path: Path, columns: dict[str, np.ndarray], fs: float, time: str) -> Path:
    names = list(columns)
    rows = "".join(
        f"{i / fs:g}," + ",".join(f"{columns[n][i]:.4f}" for n in names) + "\n"
        for i in range(len(columns[names[0]]))
    )
    path.write_text(f"{time},{','.join(names)}\n{rows}")
    return path


def test_recording_figure_passes_gaps_in_seconds_and_the_calibration_on_its_clock(drawn, tmp_path):
    """Guards against the gaps given in samples (or as the reconstructed spans), the
    calibration segment and time origin not moved to the recording's own clock (its
    summary's start_s), and the reference's beats taken where it is no pressure trace
    (a stretch at 280-320 mmHg, out of 20-250). 60 s at 50 Hz, not reconstructed at
    20-30 s; the recording starts at 1000 s, calibrated at 1005-1015 s."""
    import json

    from innpar_freia.figures import recording_figure

    fs = 50.0
    t = np.arange(3000) / fs
    abp = 90 - 25 * np.cos(2 * np.pi * 1.2 * t)
    abp[2000:2500] += 210.0  # 40-50 s: 275-325 mmHg
    src = recording_csv(
        tmp_path / "in.csv", {"PPG": np.sin(2 * np.pi * 1.2 * t), "ABP": abp}, fs, "t"
    )
    out = 90 - 25 * np.cos(2 * np.pi * 1.2 * t)
    out[1000:1500] = np.nan
    rec = recording_csv(tmp_path / "abp.csv", {"ABP": out}, fs, "time_s")
    cal = {
        "mode": "offset",
        "source": "cuff",
        "ref_sbp": 120,
        "ref_dbp": 80,
        "segment_s": [1005.0, 1015.0],
    }
    (tmp_path / "abp.summary.json").write_text(json.dumps({"calibration": cal, "start_s": 1000.0}))
    recording_figure(rec, src, tmp_path / "f.png", reference_abp="ABP")
    _, kw = drawn["plot_recording"]
    assert kw["gaps"] == [(20.0, 30.0)]
    assert kw["calibration_s"] == (5.0, 15.0) and kw["origin_s"] == 1000.0
    assert kw["direction"] == "ppg2abp"
    ref_beats = kw["reference_beats"]
    assert len(ref_beats.sbp) > 40 and ref_beats.sbp.max() < 120.0
    assert not np.any((ref_beats.peak_s > 40.0) & (ref_beats.peak_s < 50.0))


def test_recording_figure_of_a_ppg_output_and_of_another_recording(drawn, tmp_path):
    """Guards against a reconstructed PPG (output channel PPG) drawn as ABP over the PPG
    input, and against a 'reconstruction' of another length at the same rate accepted."""
    from innpar_freia.errors import DataError
    from innpar_freia.figures import recording_figure

    fs = 50.0
    t = np.arange(1000) / fs
    abp = 90 - 25 * np.cos(2 * np.pi * 1.2 * t)
    src = recording_csv(
        tmp_path / "in.csv", {"PPG": np.sin(2 * np.pi * 1.2 * t), "ABP": abp}, fs, "t"
    )
    rec = recording_csv(tmp_path / "ppg.csv", {"PPG": np.sin(2 * np.pi * 1.2 * t)}, fs, "time_s")
    recording_figure(rec, src, tmp_path / "f.png")
    _, kw = drawn["plot_recording"]
    assert kw["direction"] == "abp2ppg" and kw["beats"] is None
    assert kw["source_label"].startswith("ABP ")
    short = recording_csv(tmp_path / "short.csv", {"ABP": abp[:900]}, fs, "time_s")
    with pytest.raises(DataError, match="is not a reconstruction of"):
        recording_figure(short, src, tmp_path / "f.png")


def test_reconstruction_markers_are_systolic_peaks_and_diastolic_troughs_in_seconds(
    captured, tmp_path
):
    """Guards against the SBP markers put on the troughs and the DBP markers on the peaks,
    and the time axis in samples x fs in place of seconds. A 90 +- 25 mmHg pulse at
    1.25 Hz, 500 samples at 125 Hz (4 s): peaks at 115, troughs at 65 mmHg."""
    t = np.arange(500) / 125.0
    ref = (90 + 25 * np.sin(2 * np.pi * 1.25 * t))[None, :]
    plots.plot_reconstructions(ref, ref + 2.0, 125.0, tmp_path / "w.png")
    ax = captured[0].axes[0]
    assert line(ax, "reference ABP").get_xdata()[-1] == pytest.approx(499 / 125.0)
    marked = {}
    for ln in ax.get_lines():
        if ln.get_marker() in ("o", "x") and len(ln.get_ydata()):
            marked.setdefault((ln.get_marker(), ln.get_color()), []).extend(ln.get_ydata())
    sbp, dbp = plots.COLORS["sbp"], plots.COLORS["dbp"]
    np.testing.assert_allclose(marked[("o", sbp)], 115.0, atol=0.1)
    np.testing.assert_allclose(marked[("o", dbp)], 65.0, atol=0.1)
    np.testing.assert_allclose(marked[("x", sbp)], 117.0, atol=0.1)
    np.testing.assert_allclose(marked[("x", dbp)], 67.0, atol=0.1)


def test_a_figure_goes_where_asked_and_leaves_nothing_when_saving_fails(tmp_path):
    """Guards against a figure into a folder that does not exist yet failing (the folder is
    made), and a failed save leaving its temporary file beside the asked-for path."""
    import matplotlib.pyplot as plt

    fig = plt.figure()
    out = plots.save_figure(fig, tmp_path / "new" / "deeper" / "f.png")
    assert out == tmp_path / "new" / "deeper" / "f.png" and out.read_bytes()[:4] == b"\x89PNG"

    def half_written(path, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    fig = plt.figure()
    fig.savefig = half_written
    with pytest.raises(OSError, match="disk full"):
        plots.save_figure(fig, tmp_path / "g.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_bland_altman_title_does_not_round_onto_an_aami_threshold(captured, tmp_path):
    """Bug: the Bland-Altman title rounded an ME of 4.96 and an SD of 7.96 mmHg to 'ME +5.0,
    SD 8.0', on the AAMI limits (|ME| <= 5, SD <= 8), while the report's table beside it
    says +4.96 ± 7.96. Two errors 4.96 -+ 7.96 / sqrt(2): ME 4.96, sample SD 7.96."""
    err = 4.96 + np.array([-1.0, 1.0]) * 7.96 / np.sqrt(2.0)
    ref = np.full((2, 3), 100.0)
    plots.plot_bland_altman(ref + err[:, None], ref, tmp_path / "ba.png")
    title = captured[0].axes[0].get_title(loc="left")
    assert title == "SBP: ME +4.96 mmHg, SD 7.96 mmHg (n=2)"
    assert mesd_text({"me": 4.96, "sd": 7.96}) == "+4.96 ± 7.96"  # the table's text
    err = np.array([13.0, -3.0, 13.0, -3.0, 5.0])  # ME 5, SD 8: on the limits, one decimal
    ref = np.full((5, 3), 100.0)
    plots.plot_bland_altman(ref + err[:, None], ref, tmp_path / "ba.png")
    assert captured[1].axes[0].get_title(loc="left") == "SBP: ME +5.0 mmHg, SD 8.0 mmHg (n=5)"


def test_bhs_percentages_in_the_table_do_not_round_onto_a_grade():
    """Guards against the BHS percentages shown without the grades' minima: 59.96 % within
    5 mmHg printed as 60.0, the share grade A needs, beside the grade B it got."""
    from innpar_freia.report_content import standards_table

    r = protocol_numbers(8.0, 4.0)
    r["sbp"]["bhs"] = {"le5": 59.96, "le10": 84.96, "le15": 94.96}
    r["dbp"]["bhs"] = {"le5": 59.94, "le10": 70.0, "le15": 100.0}
    rows = standards_table([("model", r)]).rows
    assert rows[0][2:5] == ["59.96", "84.96", "94.96"]
    assert rows[1][2:5] == ["59.9", "70.0", "100.0"]


def test_markdown_headings_lists_and_collapsed_tables_render():
    """Guards against every heading rendered at one level, list items run together on one
    line, and a table inside <details> without the blank line Markdown needs to see it."""
    text = render_markdown(
        [
            ("h2", "model"),
            ("h3", "Calibrated"),
            ("ul", ["first.", "second."]),
            ("details", ("2 subjects", [("table", Table(["a"], [["1"]]))])),
        ]
    )
    assert text == (
        "## model\n\n### Calibrated\n\n- first.\n- second.\n\n"
        "<details><summary>2 subjects</summary>\n\n| a |\n|---|\n| 1 |\n</details>\n"
    )


def test_report_section_shows_the_warning_and_the_fold():
    """Guards against the evaluation's warning or its test fold left out of the section."""
    m = model_metrics() | {"warning": "the checkpoint's epoch was chosen on this split", "fold": 2}
    text = render_markdown(model_blocks(_Entry("a", m), {}))
    assert "split **test** (fold 2): 50 windows of 5 subjects at 125 Hz" in text
    assert "**Warning:** the checkpoint's epoch was chosen on this split.\n" in text


def test_recording_figure_ignores_a_damaged_summary_and_names_a_rateless_table(drawn, tmp_path):
    """Guards against a crash on a summary beside the reconstruction that is not JSON, or
    whose calibration has no segment (the figure is drawn without it), and against a table
    without a time column (a beats table given by mistake) answered with a traceback in
    place of 'not an output of innpar reconstruct'."""
    from innpar_freia.errors import DataError
    from innpar_freia.figures import recording_figure

    fs = 50.0
    t = np.arange(1000) / fs
    abp = 90 - 25 * np.cos(2 * np.pi * 1.2 * t)
    src = recording_csv(
        tmp_path / "in.csv", {"PPG": np.sin(2 * np.pi * 1.2 * t), "ABP": abp}, fs, "t"
    )
    rec = recording_csv(tmp_path / "abp.csv", {"ABP": abp}, fs, "time_s")
    for text in ("{not json", '{"calibration": {"mode": "offset"}, "start_s": 5.0}'):
        (tmp_path / "abp.summary.json").write_text(text)
        recording_figure(rec, src, tmp_path / "f.png")
        _, kw = drawn["plot_recording"]
        assert kw["calibration_s"] is None and kw["origin_s"] == 0.0
        assert kw["title"] == "abp.csv from in.csv"
    table = tmp_path / "abp.beats.csv"
    table.write_text("beat,SBP,DBP\n1,120.0,80.0\n2,121.0,81.0\n")
    with pytest.raises(DataError, match="not an output of innpar reconstruct"):
        recording_figure(table, src, tmp_path / "f.png")


def test_bp_values_holding_nan_or_of_other_shapes_are_a_clear_error(tmp_path):
    """Bug: a NaN among the BP values failed deep in matplotlib ('Axis limits cannot be NaN
    or Inf') in the Bland-Altman figure, and the error figure drew 'ME +nan, MAE nan' with
    BHS shares counting the NaN as a miss; a reference of one row was broadcast against
    every predicted row. Each is now a ValueError that says what is wrong."""
    pred = np.array([[120.0, 80.0, 90.0], [np.nan, 70.0, 85.0], [125.0, 75.0, 88.0]])
    ref = np.array([[118.0, 78.0, 89.0], [119.0, 72.0, 86.0], [121.0, 74.0, 87.0]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        plots.plot_bland_altman(pred, ref, tmp_path / "ba.png")
    with pytest.raises(ValueError, match=r"model: .*NaN or infinite"):
        plots.plot_error_distributions({"model": (pred, ref)}, tmp_path / "e.png")
    with pytest.raises(ValueError, match=r"naive: .*\(3, 3\) and \(1, 3\)"):
        plots.plot_error_distributions(
            {"model": (ref, ref), "naive": (ref, ref[:1])}, tmp_path / "e.png"
        )
    assert not list(tmp_path.iterdir())


def test_the_whole_recording_panel_draws_the_reference_and_its_beats(captured, tmp_path):
    """Guards against the reference's waveform or its per-beat SBP/DBP lines left out of
    the whole-recording panel (only the reconstruction's drawn there). No reference beat at
    10-12 s: 9.5 to 13.5 s is more than 3 s, a break in its lines."""
    fs = 50.0
    t = np.arange(1500) / fs
    ref = 90 - 25 * np.cos(2 * np.pi * t)
    plots.plot_recording(
        fs,
        np.sin(2 * np.pi * t),
        ref + 4.0,
        tmp_path / "r.png",
        reference=ref,
        beats=hand_beats(30, range(0)),
        reference_beats=hand_beats(30, range(10, 13)),
    )
    mid = captured[0].axes[1]
    assert any(np.array_equal(ln.get_ydata(), ref) for ln in mid.get_lines())
    expected = [*(k + 0.5 for k in range(10)), np.nan, *(k + 0.5 for k in range(13, 30))]
    np.testing.assert_allclose(line(mid, "reference SBP").get_xdata(), expected)
    assert line(mid, "reference DBP").get_linestyle() == ":"


def test_save_figure_takes_an_upper_case_suffix_and_closes_the_figure(tmp_path):
    """Guards against 'F.PNG' refused (the suffix is compared in lower case), and a saved
    figure left open (a report of several checkpoints kept every figure in memory)."""
    import matplotlib.pyplot as plt

    fig = plt.figure()
    assert plots.save_figure(fig, tmp_path / "F.PNG").read_bytes()[:4] == b"\x89PNG"
    assert fig.number not in plt.get_fignums()


def test_carry_forward_is_not_drawn_in_the_model_s_colour(captured, tmp_path):
    """Guards against 'carry-forward' (a hyphen, where COLORS has carry_forward) falling
    back to the model's blue, so that its cumulative curve looked like the model's."""
    errors_figure(captured, tmp_path, model=[1.0, 2.0, 3.0], carry_forward=[4.0, 5.0, 6.0])
    bottom = captured[-1].axes[3]
    assert line(bottom, "model").get_color() == plots.COLORS["prediction"]
    assert line(bottom, "carry-forward").get_color() == plots.COLORS["carry_forward"]
