"""Tests that pin behaviour a mutation audit of the figures (plots, figures) and of the
evaluation report's tables and text (report_content) found unguarded: each one fails when
the bug named in its docstring is put into the package. Expected values are worked out by
hand, never by the code under test. Figures are looked at through their matplotlib objects
(lines, texts, titles), kept by wrapping ``save_figure``."""

from __future__ import annotations

from types import SimpleNamespace

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


def error_summary(mae: float | None, me: float | None = 0.0, sd: float | None = 1.0) -> dict:
    """One BP value's protocol numbers as metrics.json holds them."""
    return {
        "n": 10,
        "mae": mae,
        "me": me,
        "sd": sd,
        "bhs": {"le5": 55.0, "le10": 80.0, "le15": 92.0},
        "bhs_grade": "B",
        "aami_pass": True,
        "aami2": {"pass": False},
        "ieee_grade": "A",
    }


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
