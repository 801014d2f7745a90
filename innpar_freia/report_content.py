"""What the evaluation report says, and how it is rendered: the report is a list of blocks
(headings, paragraphs, lists, tables, figures, collapsible details) built once from the
metrics and rendered to Markdown and to self-contained HTML, so both always agree."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from innpar_freia.metrics import (
    AAMI_MAX_ABS_ME,
    AAMI_MAX_SD,
    AAMI_MIN_SUBJECTS,
    BHS_GRADES,
    BHS_MINIMA,
    BP_NAMES,
    IEEE_GRADES,
    MIN_CALIBRATION_PP,
    graded_text,
)

IEEE_MAXIMA = tuple(m for _, m in IEEE_GRADES)

if TYPE_CHECKING:  # pragma: no cover
    from innpar_freia.report import EvalEntry

# Method names as the report shows them, and which protocol they belong to.
FREE_METHODS = (("model", "model"), ("naive", "naive"), ("linear", "linear a*zPPG+b"))
CAL_METHODS = (("model_calibrated", "model"), ("carry_forward", "carry-forward"))


# ----------------------------------------------------------------------------- blocks


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]


Block = tuple[str, Any]


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def mesd_text(r: dict[str, Any], ascii_pm: bool = False) -> str:
    """ME ± SD (mmHg) of an error summary, to 0.1 mmHg or finer where an AAMI threshold
    would hide the difference."""
    if r["me"] is None:
        return "-"
    # One window has no SD (the sample SD is undefined).
    me = graded_text(r["me"], 1, (AAMI_MAX_ABS_ME,), sign=True)
    pm = " +- " if ascii_pm else " ± "
    return me + ("" if r["sd"] is None else pm + graded_text(r["sd"], 1, (AAMI_MAX_SD,)))


def r_text(w: dict[str, Any]) -> str:
    """The mean per-window r of waveform stats, with the windows it is the mean of when
    some have none (a constant prediction or reference): "0.912 (10 of 200 windows)". A
    model predicting flat lines for most windows showed the r of the others alone."""
    text = _f(w["r"], 3)
    have, n = w.get("r_windows"), w.get("n_windows")
    if w["r"] is not None and have is not None and n is not None and have < n:
        text += f" ({have} of {n} windows)"
    return text


def mae_text(mae: float | None) -> str:
    """A BP MAE (mmHg) as tables show it: 2 decimals, more where an IEEE 1708 grade
    threshold would hide the difference."""
    return "-" if mae is None else graded_text(mae, 2, IEEE_MAXIMA)


def aami_text(passed: bool | None) -> str:
    """An AAMI criterion as a table shows it: n/a without the SD it needs (one window, or
    one subject for criterion 2)."""
    return "n/a" if passed is None else "pass" if passed else "fail"


def standards_note(r: dict[str, Any]) -> str:
    """What the grades of a standards table are, and are not."""
    n = int(r.get("n_subjects", 0))
    short = (
        f", and at least {AAMI_MIN_SUBJECTS} subjects (here {n})" if n < AAMI_MIN_SUBJECTS else ""
    )
    # The grades' thresholds, from the constants that grade (the table showed the grades
    # alone, and a reader had to know BHS's and IEEE 1708's classes).
    bhs = "; ".join(
        f"{grade} {'/'.join(f'{m:g}' for m in minima)} %" for grade, minima in BHS_GRADES
    )
    ieee = ", ".join(f"{grade} ≤ {maximum:g}" for grade, maximum in IEEE_GRADES)
    return (
        "Each standard's accuracy criteria applied to these windows (several per subject, "
        "pooled): AAMI 1 is |ME| ≤ 5 and SD ≤ 8 mmHg; AAMI 2 the SD of the subjects' mean "
        "errors within the ISO 81060-2 limit for that ME (6.95 mmHg at ME 0); a BHS grade "
        f"needs the percentages of |error| ≤ 5, 10 and 15 mmHg all at its minima or above "
        f"({bhs}; else D); IEEE 1708 grades the MAE ({ieee} mmHg; else D). They grade accuracy, "
        "not a device: a validation also needs the standards' own measurement "
        f"protocols{short}."
    )


def _method_rows(m: dict[str, Any], methods: tuple[tuple[str, str], ...]) -> list[tuple]:
    out = []
    for key, label in methods:
        if key == "model":
            r = m["calibration_free"]
        elif key == "model_calibrated":
            r = m.get("calibrated")
        else:
            r = m["baselines"].get(key)
        if r is not None:
            out.append((label, r))
    return out


def waveform_table(rows: list[tuple[str, dict[str, Any]]], with_mase: bool = True) -> Table:
    """Waveform MAE/RMSE (mmHg), mean per-window r, and MASE (model MAE / naive MAE)."""
    out = []
    for label, r in rows:
        w = r["waveform"]
        row = [label, str(r["n_windows"]), _f(w["mae"]), _f(w["rmse"]), r_text(w)]
        if with_mase:
            row.append(_f(r["mase"]["waveform"]) if r.get("mase") else "-")
        out.append(row)
    cols = ["method", "windows", "MAE", "RMSE", "r"]
    return Table([*cols, "MASE"] if with_mase else cols, out)


def bp_table(rows: list[tuple[str, dict[str, Any]]]) -> Table:
    cols = ["method"]
    for name in BP_NAMES:
        cols += [f"{name.upper()} MAE", f"{name.upper()} ME ± SD"]
    out = []
    for label, r in rows:
        row = [label]
        for name in BP_NAMES:
            row += [mae_text(r[name]["mae"]), mesd_text(r[name])]
        out.append(row)
    return Table(cols, out)


def standards_table(rows: list[tuple[str, dict[str, Any]]]) -> Table:
    out = []
    for label, r in rows:
        for name in BP_NAMES:
            e = r[name]
            if e["n"] == 0:
                continue
            b = e["bhs"]
            pct = [
                graded_text(b[k], 1, minima)
                for k, minima in zip(("le5", "le10", "le15"), BHS_MINIMA, strict=True)
            ]
            aami2 = (e.get("aami2") or {}).get("pass")
            out.append(
                [
                    label,
                    name.upper(),
                    *pct,
                    e["bhs_grade"],
                    aami_text(e["aami_pass"]),
                    aami_text(aami2),
                    e["ieee_grade"],
                ]
            )
    cols = ["method", "value", "≤5 mmHg %", "≤10 mmHg %", "≤15 mmHg %", "BHS"]
    return Table([*cols, "AAMI 1", "AAMI 2", "IEEE 1708"], out)


def _digits(key: str) -> int:
    return 3 if key.endswith("_r") else 2


def subject_tables(
    r: dict[str, Any], baselines: list[tuple[str, dict[str, Any]]] | None = None
) -> tuple[Table, Table]:
    """Per-subject averages next to the pooled numbers and to the ``(label, metrics)``
    baselines' per-subject averages, and one row per subject."""
    avg = r.get("per_subject", {})
    keys = [("wave_mae", "waveform MAE"), ("wave_r", "waveform r")]
    keys += [(f"{n}_mae", f"{n.upper()} MAE") for n in BP_NAMES]
    keys += [(f"{n}_me", f"{n.upper()} ME") for n in BP_NAMES]
    pooled = {"wave_mae": r["waveform"]["mae"], "wave_r": r["waveform"]["r"]}
    for n in BP_NAMES:
        pooled[f"{n}_mae"], pooled[f"{n}_me"] = r[n]["mae"], r[n]["me"]
    others = [(label, b.get("per_subject", {})) for label, b in baselines or []]
    summary = Table(
        [
            "",
            "pooled over windows",
            f"average over {_count(avg.get('n_subjects', 0), 'subject')}",
            *(f"{label}, average" for label, _ in others),
        ],
        [
            [
                label,
                _f(pooled[k], _digits(k)),
                _f(avg.get(k), _digits(k)),
                *(_f(b.get(k), _digits(k)) for _, b in others),
            ]
            for k, label in keys
        ],
    )
    rows = []
    for s in r.get("subjects", []):
        rows.append(
            [str(s["subject"]), str(s["n_windows"]), _f(s["wave_mae"]), _f(s["wave_r"], 3)]
            + [f"{_f(s[f'{n}_mae'])} ({s[f'{n}_me']:+.1f})" for n in BP_NAMES]
        )
    per = Table(
        ["subject", "windows", "wave MAE", "r", "SBP MAE (ME)", "DBP MAE (ME)", "MAP MAE (ME)"],
        rows,
    )
    return summary, per


# MAE differences up to this (mmHg) are reported as a tie, not a win: the protocol's
# numbers are given to 0.1 mmHg, and a difference of hundredths is no evidence of either.
TIE_MMHG = 0.1


def _versus(model: float, other: float | None) -> str:
    if other is None:
        return "cannot be compared with"
    if abs(model - other) <= TIE_MMHG:
        return "is level with"
    return "beats" if model < other else "does not beat"


def _single_window_note(free: dict[str, Any], cal: dict[str, Any]) -> str:
    """Subjects with one window have nothing left to score once it calibrates them."""
    missing = int(free.get("n_subjects", 0)) - int(cal.get("n_subjects", 0))
    if missing <= 0:
        return ""
    return (
        f" {_count(missing, 'subject')} with a single window "
        f"{'has' if missing == 1 else 'have'} nothing left to score and "
        f"{'is' if missing == 1 else 'are'} not in these numbers."
    )


def _offset_only_note(cal: dict[str, Any]) -> str:
    """Subjects whose offset+scale calibration applied the offset alone: their calibration
    window's predicted or reference pulse pressure was below MIN_CALIBRATION_PP, which says
    nothing of a scale (the table's numbers had not said they were partly offset-only)."""
    n = int(cal.get("n_subjects_offset_only", 0))
    if n == 0:
        return ""
    return (
        f" For {_count(n, 'subject')} the calibration window's predicted or reference pulse "
        f"pressure was below {MIN_CALIBRATION_PP:g} mmHg: the offset alone was applied."
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def verdict(m: dict[str, Any]) -> list[str]:
    """Plain sentences: does the model beat the baselines the protocol demands? A
    difference within :data:`TIE_MMHG` is called level, not a win or a loss."""
    out = []
    free, base = m["calibration_free"], m["baselines"]
    if "naive" in base:
        for key, label in (("waveform", "waveform"), *((n, n.upper()) for n in BP_NAMES)):
            mv = free[key]["mae"]
            nv, lv = base["naive"][key]["mae"], base["linear"][key]["mae"]
            outcomes = [_versus(mv, nv), _versus(mv, lv)]
            if outcomes[0] == outcomes[1]:
                status = {
                    "beats": "beats both baselines",
                    "does not beat": "beats neither baseline",
                }.get(outcomes[0], f"{outcomes[0]} both baselines")
            else:
                status = f"{outcomes[0]} naive and {outcomes[1]} linear"
            out.append(
                f"Calibration-free {label} MAE {mv:.2f} mmHg vs naive {nv:.2f}, linear "
                f"{_f(lv)}: {status}."
            )
    cal = m.get("calibrated")
    cf = base.get("carry_forward")
    if cal is not None and cf is not None and cal["n_windows"]:
        for key, label in (("waveform", "waveform"), *((n, n.upper()) for n in BP_NAMES)):
            mv, cv = cal[key]["mae"], cf[key]["mae"]
            word = _versus(mv, cv)
            # Carry-forward's waveform is a flat line: beating it there is about shape; on
            # SBP/DBP/MAP it is about following changes, the point of a continuous monitor.
            why = ""
            if word == "beats":
                why = " (a flat line)" if key == "waveform" else " (it tracks changes)"
            elif word == "is level with":
                why = f" (within {TIE_MMHG:g} mmHg)"
            out.append(
                f"Calibrated {label} MAE {mv:.2f} mmHg vs carry-forward {cv:.2f}: {word} "
                f"carry-forward{why}."
            )
    return out


def comparison(entries: list[EvalEntry]) -> tuple[Table, list[dict[str, Any]]]:
    """One row per model (and the baselines of the first, named so where the models'
    differ) with the headline numbers."""
    records = []
    for e in entries:
        m = e.metrics
        rec: dict[str, Any] = {
            "name": e.name,
            "checkpoint": m["checkpoint"],
            "epoch": m["epoch"],
            "preset": m["preset"],
            "free_wave_mae": m["calibration_free"]["waveform"]["mae"],
            "free_wave_r": m["calibration_free"]["waveform"]["r"],
        }
        for n in BP_NAMES:
            rec[f"free_{n}_mae"] = m["calibration_free"][n]["mae"]
        cal = m.get("calibrated")
        rec["cal_wave_mae"] = cal["waveform"]["mae"] if cal else None
        for n in BP_NAMES:
            rec[f"cal_{n}_mae"] = cal[n]["mae"] if cal else None
        rec["inverse_mae"] = m["inverse"]["mae"] if m.get("inverse") else None
        records.append(rec)
    base = entries[0].metrics["baselines"]
    labels = {"naive": "naive", "linear": "linear", "carry_forward": "carry-forward"}
    for key, label in labels.items():
        if key not in base:
            continue
        r = base[key]
        prefix = "cal" if key == "carry_forward" else "free"
        # Naive and linear are fitted on a checkpoint's training split: models trained on
        # other folds have other ones, and the row says whose it shows.
        if any(e.metrics["baselines"].get(key) != r for e in entries[1:]):
            label += f" (fitted for {entries[0].name})"
        rec = {"name": f"baseline: {label}", "checkpoint": None, "epoch": None, "preset": None}
        rec[f"{prefix}_wave_mae"] = r["waveform"]["mae"]
        rec[f"{prefix}_wave_r"] = r["waveform"]["r"]
        for n in BP_NAMES:
            rec[f"{prefix}_{n}_mae"] = r[n]["mae"]
        records.append(rec)
    cols = ["model", "epoch", "wave MAE", "r", "SBP", "DBP", "MAP"]
    cols += ["cal. wave MAE", "cal. SBP", "cal. DBP", "cal. MAP", "inverse MAE (z)"]
    rows = []
    for rec in records:
        rows.append(
            [rec["name"], "-" if rec.get("epoch") is None else str(rec["epoch"])]
            + [_f(rec.get("free_wave_mae")), _f(rec.get("free_wave_r"), 3)]
            + [_f(rec.get(f"free_{n}_mae")) for n in BP_NAMES]
            + [_f(rec.get("cal_wave_mae"))]
            + [_f(rec.get(f"cal_{n}_mae")) for n in BP_NAMES]
            + [_f(rec.get("inverse_mae"), 3)]
        )
    return Table(cols, rows), records


def model_blocks(e: EvalEntry, figures: dict[str, str], heading: int = 2) -> list[Block]:
    """The report section of one checkpoint."""
    m = e.metrics
    h, hh = f"h{heading}", f"h{heading + 1}"
    free = m["calibration_free"]
    ckpt = e.checkpoint
    blocks: list[Block] = [
        (h, e.name),
        (
            "p",
            f"Checkpoint `{m['checkpoint']}` (preset {m['preset']}, epoch {m['epoch']}) on "
            f"`{m['data']}`, split **{m['split']}**"
            + (f" (fold {m['fold']})" if m.get("fold") is not None else "")
            + f": {free['n_windows']} windows of "
            f"{_count(free['n_subjects'], 'subject')} at {m['fs']:g} Hz "
            f"({m['window_length']} samples). "
            "All errors in mmHg on de-normalised ABP; BP values by the protocol's peak "
            "detection (docs/protocol.md).",
        ),
        *([("p", f"**Warning:** {m['warning']}.")] if m.get("warning") else []),
        ("ul", verdict(m)),
        (hh, "Calibration-free"),
        (
            "p",
            "The model output as it is, next to the naive (training means) and linear "
            "(a*zPPG+b) baselines on the same windows. MASE = MAE / naive MAE.",
        ),
        ("table", waveform_table(_method_rows(m, FREE_METHODS))),
        ("table", bp_table(_method_rows(m, FREE_METHODS))),
        ("table", standards_table(_method_rows(m, FREE_METHODS))),
        ("p", standards_note(free)),
    ]
    for key, caption in (
        (
            "reconstructions",
            "Reconstructed vs reference ABP, windows at the 10th, 50th and 90th "
            "percentile of waveform MAE and the worst one (o/x: detected SBP and DBP).",
        ),
        (
            "bland_altman",
            "Bland-Altman, calibration-free: error against the mean of predicted "
            "and reference, with ME and ME ± 1.96 SD.",
        ),
        (
            "errors",
            "Error distributions and cumulative |error| with the BHS thresholds, model "
            "vs baselines (calibration-free).",
        ),
    ):
        if key in figures:
            blocks.append(("figure", (figures[key], caption)))
    cal = m.get("calibrated")
    if cal is not None:
        blocks += [
            (hh, f"Calibrated ({cal['calibration']})"),
            (
                "p",
                "Per subject, the first window in time sets offset"
                + (" and scale" if cal["calibration"] == "offset-scale" else "")
                + " of the prediction and is not scored. Baseline: carry-forward (every later "
                "window predicted as the calibration window's level and SBP/DBP/MAP)."
                + _single_window_note(free, cal)
                + _offset_only_note(cal),
            ),
            ("table", waveform_table(_method_rows(m, CAL_METHODS), with_mase=False)),
            ("table", bp_table(_method_rows(m, CAL_METHODS))),
            ("table", standards_table(_method_rows(m, CAL_METHODS))),
            ("p", standards_note(cal)),
        ]
        for key, caption in (
            ("bland_altman_calibrated", "Bland-Altman, calibrated protocol."),
            ("errors_calibrated", "Error distributions, calibrated model vs carry-forward."),
        ):
            if key in figures:
                blocks.append(("figure", (figures[key], caption)))
    blocks.append((hh, "Per subject"))
    blocks.append(
        (
            "p",
            "Many windows come from the same person; each subject counting once "
            "can tell another story than the pooled numbers.",
        )
    )
    for label, r, methods in (
        ("calibration-free", free, FREE_METHODS),
        ("calibrated", cal, CAL_METHODS),
    ):
        if r is None or not r.get("subjects"):
            continue
        summary, per = subject_tables(r, _method_rows(m, methods[1:]))  # the baselines
        blocks.append(("p", f"**{label}**"))
        blocks.append(("table", summary))
        blocks.append(
            ("details", (f"{_count(len(r['subjects']), 'subject')}, {label}", [("table", per)]))
        )
    inv = m.get("inverse")
    if inv:
        trained = ckpt.run_config.train.inverse_weight
        how = (
            f"The training loss covered this direction (inverse_weight = {trained:g})."
            if trained > 0
            else "The training loss did not cover this direction (inverse_weight = 0): this is "
            "what the invertible network gives for free."
        )
        zero = inv.get("baseline_zero", {})
        blocks += [
            (hh, "Inverse direction (ABP -> PPG)"),
            (
                "p",
                "PPG reconstructed from the reference ABP by the reverse pass of the same "
                f"network, against the z-scored PPG. {how}",
            ),
            (
                "table",
                Table(
                    ["method", "MAE (z)", "RMSE (z)", "r"],
                    [
                        ["reverse pass", _f(inv["mae"], 3), _f(inv["rmse"], 3), r_text(inv)],
                        [
                            "predict 0 (window mean)",
                            _f(zero.get("mae"), 3),
                            _f(zero.get("rmse"), 3),
                            "-",
                        ],
                    ],
                ),
            ),
        ]
        if "inverse" in figures:
            blocks.append(
                (
                    "figure",
                    (figures["inverse"], "PPG from ABP (reverse pass), the same windows as above."),
                )
            )
    if "training" in figures:
        blocks += [
            (hh, "Training"),
            (
                "figure",
                (
                    figures["training"],
                    "Training loss and validation MAE per epoch from "
                    "the run's metrics.jsonl; dashed: the best epoch (best.pt).",
                ),
            ),
        ]
    return blocks


# ----------------------------------------------------------------------------- rendering


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for kind, value in blocks:
        if kind in ("h1", "h2", "h3", "h4"):
            out.append("#" * int(kind[1]) + " " + value + "\n")
        elif kind == "p":
            out.append(value + "\n")
        elif kind == "ul":
            out.append("".join(f"- {v}\n" for v in value))
        elif kind == "table":
            t: Table = value
            lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
            # A "|" in a cell (a subject id) would end it: Markdown's escape keeps it text.
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in t.rows]
            out.append("\n".join(lines) + "\n")
        elif kind == "figure":
            src, caption = value
            out.append(f"![{caption}]({src})\n\n*{caption}*\n")
        elif kind == "details":
            summary, inner = value
            out.append(
                f"<details><summary>{summary}</summary>\n\n{render_markdown(inner)}</details>\n"
            )
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then render the two inline marks the report uses: `code` and **bold**."""
    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)


HTML_CSS = (
    "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#222}"
    "main{max-width:1100px;margin:auto;padding:1.5em}"
    "table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}thead{background:#f3f3f3}"
    "figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:.9em}"
    "code{background:#f3f3f3;padding:0 .2em}h2{border-bottom:2px solid #1f77b4}"
    "details{margin:.5em 0 1em}"
)


def html_body(blocks: list[Block], images: dict[str, bytes]) -> str:
    """The blocks as HTML elements; figures embedded from ``images`` (path -> PNG bytes)."""
    body: list[str] = []
    for kind, value in blocks:
        if kind in ("h1", "h2", "h3", "h4"):
            body.append(f"<{kind}>{_inline(value)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(value)}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(v)}</li>" for v in value) + "</ul>")
        elif kind == "table":
            t: Table = value
            head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in t.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "figure":
            src, caption = value
            data = base64.b64encode(images[src]).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{_inline(caption)}</figcaption></figure>"
            )
        elif kind == "details":
            summary, inner = value
            body.append(
                f"<details><summary>{html.escape(summary)}</summary>"
                f"{html_body(inner, images)}</details>"
            )
    return "\n".join(body)


def render_html(blocks: list[Block], title: str, images: dict[str, bytes]) -> str:
    """A self-contained page: inline CSS, figures as base64 PNG data URIs."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{HTML_CSS}</style></head><body><main>\n"
        f"{html_body(blocks, images)}\n</main></body></html>\n"
    )
