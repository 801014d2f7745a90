"""Tests that pin behaviour a mutation audit of the experiment runner (tables of results
over folds and seeds), the evaluation report and the recording's beat-by-beat blood pressure
found unguarded: each one fails when the bug named in its docstring is put into the package.
Expected values are worked out by hand (or by numpy on the raw numbers), never by the code
under test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import beat_cycles, error_summary, pulse_train

from innpar_freia.errors import DataError
from innpar_freia.recording_bp import (
    Beats,
    beat_prominence,
    calibrate_recording,
    compare_with_reference,
    detect_beats,
    parse_cuff,
)

# --------------------------------------------------------------------------------------
# Beat-by-beat blood pressure of a recording (recording_bp)
# --------------------------------------------------------------------------------------


def test_map_is_the_mean_pressure_over_the_beat_not_its_median():
    """Guards against MAP taken as the median of the beat's samples. A beat of 0.8 s at
    100 Hz, linear from 80 up to 120 (0.1 s), down to 90 (0.1 s) and to 80 (0.6 s): with the
    corners on samples the sample mean is the trapezoid integral,
    (0.1 x 100 + 0.1 x 105 + 0.6 x 85) / 0.8 = 89.375 mmHg (the median is 86.4)."""
    x = beat_cycles(20.0, 100.0, 75, [(0.0, 80.0), (0.1, 120.0), (0.2, 90.0)])
    b = detect_beats(x, 100.0)
    assert len(b) == 23  # 25 peaks; the first has no foot, the last no end
    np.testing.assert_allclose(b.map, 89.375, atol=1e-9)
    np.testing.assert_allclose(b.sbp, 120.0, atol=1e-9)
    np.testing.assert_allclose(b.dbp, 80.0, atol=1e-9)
    np.testing.assert_allclose(b.hr_bpm, 75.0)


def test_a_pause_longer_than_two_seconds_is_not_a_beat():
    """Guards against dropping the upper bound (MAX_BEAT_SECONDS = 2 s) on a beat's length:
    a 3-s pause at diastolic pressure after the sixth beat made one 'beat' of 4 s (15 bpm)."""
    fs = 125.0
    one = pulse_train(1.0, fs, 100.0, 20.0)  # foot to foot: 80/120 at 60 bpm
    x = np.concatenate([np.tile(one, 6), np.full(round(3 * fs), 80.0), np.tile(one, 6)])
    b = detect_beats(x, fs)
    # Feet at 1..5 s, then at 9 s (the pause's end, where the rise leaves it) to 14 s: the
    # beat from 5 s to 9 s is left out, so are the first (no foot) and the last (no end).
    np.testing.assert_allclose(b.onset_s, [1, 2, 3, 4, 9, 10, 11, 12, 13])
    np.testing.assert_allclose(b.hr_bpm, 60.0)


def test_beat_times_after_a_gap_are_on_the_recording_s_clock():
    """Guards against a beat's onset or peak time taken within its finite run, not from the
    start of the recording: after a gap (4.0-5.68 s) every time moved back by 5.68 s."""
    x = pulse_train(20.0, 125.0, 100.0, 20.0, hz=1.25)  # feet every 0.8 s, peaks 0.4 s later
    x[500:710] = np.nan
    b = detect_beats(x, 125.0)
    after = b.peak_s > 5.68
    assert after.sum() == 16  # peaks 6.8 ... 18.8 s (6.0 s has no foot in its run)
    np.testing.assert_allclose(b.peak_s, [1.2, 2.0, 2.8, *(6.8 + 0.8 * np.arange(16))])
    np.testing.assert_allclose(b.onset_s, b.peak_s - 0.4, atol=1e-9)


def test_beats_between_are_half_open_so_segments_share_no_beat():
    """Guards against ``Beats.between`` including its end: a beat whose systolic peak is at
    exactly t1 belongs to the next segment (peaks at 0.4 + 0.8 k s; 5.2 s is one)."""
    b = detect_beats(pulse_train(20.0, 125.0, 100.0, 20.0, hz=1.25), 125.0)
    first, rest = b.between(0.0, 5.2), b.between(5.2, 20.0)
    np.testing.assert_allclose(first.peak_s, [1.2, 2.0, 2.8, 3.6, 4.4])
    assert rest.peak_s[0] == pytest.approx(5.2)
    assert len(first) + len(rest) == len(b)


def test_beat_summary_is_the_median_of_each_column():
    """Guards against the summary's medians taken as means, or from another column."""
    b = Beats(
        onset_s=np.array([0.0, 1.0, 2.0]),
        peak_s=np.array([0.3, 1.3, 2.3]),
        sbp=np.array([100.0, 110.0, 150.0]),
        dbp=np.array([60.0, 70.0, 90.0]),
        map=np.array([80.0, 85.0, 100.0]),
        hr_bpm=np.array([60.0, 66.0, 90.0]),
    )
    assert b.summary() == {
        "n": 3,
        "sbp_median": 110.0,
        "dbp_median": 70.0,
        "map_median": 85.0,
        "hr_median": 66.0,
    }


def test_beat_prominence_of_one_window_is_the_protocol_rule():
    """Guards against tiles of another length than ``window_seconds``: a signal exactly one
    5-s window long is one tile, whose prominence is max(5, 0.3 (P95 - P5)); as two 2.5-s
    tiles of 20 and 80 mmHg pulse pressure it would be their average."""
    fs = 125.0
    t = np.arange(round(5 * fs)) / fs
    x = np.where(t < 2.5, 90 - 10 * np.cos(2 * np.pi * 2 * t), 110 - 40 * np.cos(2 * np.pi * 2 * t))
    p95, p5 = np.percentile(x, [95, 5])
    assert beat_prominence(x, fs) == pytest.approx(0.3 * (p95 - p5))


def test_large_beats_in_some_windows_do_not_hide_the_small_ones():
    """Guards against the mean over tiles in place of the median: 5-s stretches of 80/230
    beats (prominence 44 each) among 80/100 beats (5.9 each) raised a mean threshold above
    20 mmHg, and every small beat was lost. With the median (5.9) all are found."""
    fs = 125.0
    t = np.arange(round(25 * fs)) / fs
    big = np.isin((t // 5).astype(int), [1, 3])
    x = np.where(big, 155 - 75 * np.cos(2 * np.pi * t), 90 - 10 * np.cos(2 * np.pi * t))
    b = detect_beats(x, fs)
    small = b.sbp < 150
    # 25 peaks, one at k + 0.5 s: the first has no foot, the last no end; 10 are large.
    assert len(b) == 23 and small.sum() == 13
    np.testing.assert_allclose(b.sbp[small], 100.0, atol=0.01)


def test_dbp_is_the_lowest_pressure_of_the_fit_around_the_foot():
    """Guards against DBP read as the quadratic fit's value at the foot sample: at 1 kHz the
    20-ms fit rounds a sharp foot upwards there; its lowest value within the smoothing span
    is within 0.15 mmHg of the true 80 mmHg."""
    x = beat_cycles(30.0, 1000.0, 75, [(0.0, 80.0), (0.12, 120.0), (0.30, 90.0), (0.36, 105.0)])
    b = detect_beats(x, 1000.0)
    assert len(b) == 36
    np.testing.assert_allclose(b.dbp, 80.0, atol=0.15)


def test_a_beat_holding_a_higher_pressure_than_its_peak_is_left_out():
    """Guards against keeping a beat whose samples rise above its systolic peak (a peak that
    was not found). Every 1.6 s: a 110 mmHg beat, then a 115 mmHg hump 0.17 s before a
    130 mmHg peak (too close to be a peak of its own): the 110 beat holds the hump and is
    not reported with SBP 110; the 130 beats are."""
    pts = [(0, 80), (0.12, 110), (0.5, 95), (0.70, 115), (0.75, 80), (0.87, 130), (1.2, 100)]
    b = detect_beats(beat_cycles(32.0, 125.0, 37.5, pts), 125.0)
    assert len(b) == 19
    assert np.all(b.sbp > 129.0)
    np.testing.assert_allclose(b.onset_s, 0.752 + 1.6 * np.arange(19), atol=1e-9)


@pytest.mark.parametrize("text", ["120/120", "80/80"])
def test_a_cuff_reading_with_sbp_equal_to_dbp_is_refused(text):
    """Guards against accepting SBP == DBP (a pulse pressure of 0 scales the waveform flat)."""
    with pytest.raises(DataError, match="not plausible"):
        parse_cuff(text)


def test_a_window_ending_where_the_calibration_starts_is_scored():
    """Guards against excluding a window that only touches the calibration segment: with
    calibration at 10-20 s, the 5-10 s window is scored, only 10-15 and 15-20 s are not."""
    ref = pulse_train(60.0, 125.0, 100.0, 20.0)
    c = compare_with_reference(ref + 2.0, ref, 125.0, 5.0, exclude=(10.0, 20.0))
    assert c["n_windows"] == 12 - 2
    assert c["waveform"]["mae"] == pytest.approx(2.0)


def test_the_reference_level_leaves_out_the_reference_s_artefacts():
    """Guards against the reference ABP's mean level taken over its raw samples: a 0.5-s
    flush to 0 mmHg (a gap with its 0.25-s margins: exactly one beat) pulled the level, and
    so the calibrated prediction, 0.94 mmHg low. Without it the rule gives the reference."""
    fs = 100.0
    ref = pulse_train(120.0, fs, 100.0, 20.0)
    pred = 0.5 * ref + 20.0
    flushed = ref.copy()
    flushed[4025:4075] = 0.0  # 40.25-40.75 s, in the 30-90 s segment
    cal, info = calibrate_recording(pred, fs, 30.0, 60.0, reference=flushed)
    assert info["ref_level"] == pytest.approx(100.0)
    np.testing.assert_allclose(cal.apply(pred), ref, atol=1e-6)


# --------------------------------------------------------------------------------------
# The experiment runner's tables (experiments)
# --------------------------------------------------------------------------------------

# Per (test fold, seed): variant a's and b's test/best summaries. b - a on the waveform MAE:
# -1, -1, 0 (a tie), +0.5. The baselines depend on the fold only, as a real run's do.
WAVE_A = {(0, 1): 2.0, (0, 2): 3.0, (1, 1): 4.0, (1, 2): 11.0}
WAVE_B = {(0, 1): 1.0, (0, 2): 2.0, (1, 1): 4.0, (1, 2): 11.5}
NAIVE = {0: 10.0, 1: 14.0}


def summary_of(wave_mae: float, fold: int, **extra: float | None) -> dict[str, float | None]:
    s = {
        "n_windows": 100,
        "wave_mae": wave_mae,
        "wave_r": 0.5 + wave_mae / 100,
        "sbp_mae": 5.0,
        "dbp_mae": 3.0,
        "map_mae": 3.5,
        "cal_wave_mae": wave_mae / 2,
        "cal_sbp_mae": 4.0,
        "cal_dbp_mae": 2.5,
        "cal_map_mae": 2.0,
        "naive_wave_mae": NAIVE[fold],
        "naive_wave_r": 0.0,
        "naive_sbp_mae": 12.0,
        "naive_dbp_mae": 8.0,
        "naive_map_mae": 9.0,
        "linear_wave_mae": NAIVE[fold] - 1.0,
        "linear_wave_r": 0.25,
        "linear_sbp_mae": 11.0,
        "linear_dbp_mae": 7.0,
        "linear_map_mae": 8.0,
        "carry_forward_wave_mae": 7.0 + fold,
        "carry_forward_sbp_mae": 6.0 + fold,
        "carry_forward_dbp_mae": 4.0 + fold,
        "carry_forward_map_mae": 5.0 + fold,
        "inverse_mae": 0.5,
    }
    s.update(extra)
    return s


def make_records() -> list[dict]:
    records = []
    for (fold, seed), wave in WAVE_A.items():
        # One run of a has no inverse score (None): it is not a run of that column.
        extra = {"inverse_mae": None} if (fold, seed) == (1, 2) else {}
        records.append(
            {
                "variant": "a",
                "test_fold": fold,
                "seed": seed,
                "hardware": "cpu box",
                # A score this experiment does not ask for (a reused run's other split).
                "evaluations": {
                    "test/best": summary_of(wave, fold, **extra),
                    "train/best": summary_of(0.1, fold),
                },
            }
        )
    for (fold, seed), wave in WAVE_B.items():
        # One run of b has no calibrated SBP: its paired column counts 3 runs, the row 4.
        extra = {"cal_sbp_mae": None} if (fold, seed) == (1, 2) else {}
        records.append(
            {
                "variant": "b",
                "test_fold": fold,
                "seed": seed,
                "hardware": "gpu box" if seed == 2 else "cpu box",
                "evaluations": {"test/best": summary_of(wave, fold, **extra)},
            }
        )
    return records


def make_experiment(tmp: Path):
    from innpar_freia.experiments import PROTOCOL_DEFAULTS, Experiment, Variant

    protocol = {
        **PROTOCOL_DEFAULTS,
        "test_folds": [0, 1],
        "seeds": [1, 2],
        "evaluate": ["test"],
        "checkpoints": ["best"],
        "reference": ["a"],
    }
    variants = [Variant("a", "", "tiny", {}, {}), Variant("b", "", "tiny", {}, {})]
    return Experiment(tmp / "mini.toml", "mini", "by hand", {"file": "x.h5"}, protocol, variants)


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """results.json and results.md written from the hand-made records above."""
    from innpar_freia.experiments import write_results

    out = tmp_path_factory.mktemp("results")
    exp = make_experiment(out)
    results = write_results(exp, out, make_records(), "cpu", commit="abc1234")
    md = (out / "results.md").read_text()
    rows = {line.split(" | ")[0][2:]: line for line in md.splitlines() if line.startswith("| ")}
    return {
        "results": results,
        "md": md,
        "rows": rows,
        "json": json.loads((out / "results.json").read_text()),
    }


def test_a_variant_s_row_is_mean_and_sample_sd_over_its_runs(tables):
    """Guards against the median in place of the mean, and the population SD (ddof 0) in
    place of the sample SD over runs. a's waveform MAE over 4 runs: 2, 3, 4, 11 -> mean 5.00
    (median 3.5), SD sqrt((9 + 4 + 1 + 36) / 3) = 4.08 (ddof 0: 3.54); r = 0.5 + MAE / 100:
    0.550 +- 0.041; SBP 5 in every run: 5.00 +- 0.00; calibrated waveform MAE = MAE / 2."""
    row = tables["rows"]["a"]
    assert row == (
        "| a | 4 | 5.00 ± 4.08 | 0.550 ± 0.041 | 5.00 ± 0.00 | 3.00 ± 0.00 | 3.50 ± 0.00 "
        "| 2.50 ± 2.04 | 4.00 ± 0.00 | 2.50 ± 0.00 | 2.00 ± 0.00 |"
    )
    agg = tables["json"]["variants"]["a"]["aggregate"]["test/best"]["wave_mae"]
    assert agg["mean"] == pytest.approx(5.0)
    assert agg["sd"] == pytest.approx(np.sqrt(50 / 3))
    assert agg["n"] == 4


def test_a_number_missing_from_a_run_is_not_counted_as_one_of_its_runs(tables):
    """Guards against ``n`` counting the runs that do not have the number (None): a's
    inverse MAE is missing from one of its 4 runs, so it is a mean over 3."""
    agg = tables["json"]["variants"]["a"]["aggregate"]["test/best"]["inverse_mae"]
    assert agg == {"mean": pytest.approx(0.5), "sd": pytest.approx(0.0), "n": 3}


def test_one_run_has_no_sd():
    """Guards against an SD for a single run (NaN with ddof 1, printed as 'nan'): the cell
    shows the mean alone."""
    from innpar_freia.experiments import aggregate, markdown_table

    records = [
        {"variant": "a", "test_fold": 0, "seed": 1, "evaluations": {"k": summary_of(2.5, 0)}}
    ]
    agg = aggregate(records, "k")
    assert agg["wave_mae"] == {"mean": 2.5, "sd": None, "n": 1}
    results = {"variants": {"a": {"runs": records, "aggregate": {"k": agg}}}}
    row = markdown_table(results, "k").splitlines()[2]
    assert row.startswith("| a | 1 | 2.50 | 0.525 | 5.00 |") and "nan" not in row


def test_the_baseline_rows_average_over_test_folds(tables):
    """Guards against the baselines averaged per run (each fold counted once per seed) and
    against the carry-forward row reading the wrong keys. Naive waveform MAE: folds 10 and
    14 -> 12.00 +- 2.83 over 2 folds; carry-forward 7 + fold -> 7.50 +- 0.71, etc."""
    rows = tables["rows"]
    assert rows["naive baseline"] == (
        "| naive baseline | 2 folds | 12.00 ± 2.83 | 0.000 ± 0.000 | 12.00 ± 0.00 "
        "| 8.00 ± 0.00 | 9.00 ± 0.00 | - | - | - | - |"
    )
    assert rows["linear baseline"].startswith("| linear baseline | 2 folds | 11.00 ± 2.83 |")
    assert rows["carry-forward baseline"] == (
        "| carry-forward baseline | 2 folds | - | - | - | - | - | 7.50 ± 0.71 | 6.50 ± 0.71 "
        "| 4.50 ± 0.71 | 5.50 ± 0.71 |"
    )
    base = tables["json"]["baselines"]["test/best"]
    assert base["folds"] == 2 and base["aggregate"]["naive_wave_mae"]["n"] == 2


def test_paired_differences_against_the_reference(tables):
    """Guards against the sign of variant - reference, ties counted as wins, the reference
    paired with itself, and a row's run count taken from its sparsest column. b - a on the
    waveform MAE: -1, -1, 0, +0.5 -> mean -0.375, 2 wins of 4; calibrated waveform (half):
    -0.1875 -> -0.19; calibrated SBP: 0 in the 3 runs that have it."""
    paired = tables["json"]["paired"]["test/best"]["a"]
    assert set(paired) == {"b"}
    assert paired["b"]["wave_mae"] == {"mean": pytest.approx(-0.375), "n": 4, "wins": 2}
    assert paired["b"]["cal_sbp_mae"] == {"mean": pytest.approx(0.0), "n": 3, "wins": 0}
    md = tables["md"]
    section = md.split("Paired differences against `a`")[1]
    row = next(line for line in section.splitlines() if line.startswith("| b |"))
    assert row == (
        "| b | 4 | -0.38 (2/4) | +0.00 (0/4) | +0.00 (0/4) | +0.00 (0/4) | -0.19 (2/4) "
        "| +0.00 (0/3) | +0.00 (0/4) | +0.00 (0/4) |"
    )
    assert not any(line.startswith("| a |") for line in section.splitlines())


def test_results_keep_only_the_scores_the_experiment_asks_for(tables):
    """Guards against a run's record keeping the scores another experiment added (a reused
    run's train split): the tables must not show what the experiment never looked at."""
    for variant in tables["json"]["variants"].values():
        for run in variant["runs"]:
            assert set(run["evaluations"]) == {"test/best"}
    assert "train/best" not in tables["md"]


def test_the_table_says_where_its_runs_trained(tables):
    """Guards against the hardware line listing fewer machines than the runs used: 6 runs
    on the CPU box, 2 (b's seed 2) on the GPU box."""
    assert "Runs trained on: cpu box (6); gpu box (2)." in tables["md"]


def test_summarise_flattens_each_protocol_number_under_its_own_name():
    """Guards against a results table's column filled from another number (RMSE from the
    MAE, SD from the ME...)."""
    from innpar_freia.experiments import summarise

    def protocol(k: float) -> dict:
        r = {"n_windows": 40, "waveform": {"mae": k + 0.1, "rmse": k + 0.2, "r": k + 0.3}}
        for j, bp in enumerate(("sbp", "dbp", "map")):
            r[bp] = {"mae": k + j + 0.4, "me": k + j + 0.5, "sd": k + j + 0.6}
        return r

    m = {
        "calibration_free": protocol(10.0),
        "calibrated": protocol(20.0),
        "baselines": {"naive": protocol(30.0)},
        "inverse": {"mae": 0.7},
    }
    s = summarise(m)
    assert s["n_windows"] == 40 and s["inverse_mae"] == 0.7
    for prefix, k in (("", 10.0), ("cal_", 20.0), ("naive_", 30.0)):
        assert [s[f"{prefix}wave_{x}"] for x in ("mae", "rmse", "r")] == pytest.approx(
            [k + 0.1, k + 0.2, k + 0.3]
        )
        for j, bp in enumerate(("sbp", "dbp", "map")):
            got = [s[f"{prefix}{bp}_{x}"] for x in ("mae", "me", "sd")]
            assert got == pytest.approx([k + j + 0.4, k + j + 0.5, k + j + 0.6])


def test_kept_rows_of_a_fresh_checkout_are_found_by_fold_and_seed(tmp_path: Path):
    """Guards against the rows kept from results.json keyed by (seed, fold): with folds
    [0, 1] and seeds [1, 2] only the run (1, 1) was found again and 3 of 4 rows were lost."""
    from innpar_freia.experiments import finished_records

    exp = make_experiment(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    runs = [r for r in make_records() if r["variant"] == "a"]
    (out / "results.json").write_text(json.dumps({"variants": {"a": {"runs": runs}}}))
    kept = finished_records(exp, out, tmp_path / "x.h5", log=lambda s: None)
    got = {(r["test_fold"], r["seed"]): r["evaluations"]["test/best"]["wave_mae"] for r in kept}
    assert got == WAVE_A


# --------------------------------------------------------------------------------------
# What the evaluation report says (report_content)
# --------------------------------------------------------------------------------------


def protocol_numbers(wave_mae: float, bp_mae: float, n_windows: int = 50) -> dict:
    r = {
        "n_windows": n_windows,
        "n_subjects": 5,
        "waveform": {"mae": wave_mae, "rmse": 9.0, "r": 0.8},
    }
    for name in ("sbp", "dbp", "map"):
        r[name] = error_summary(bp_mae)
    return r


def test_bp_table_shows_signed_me_and_sd():
    """Guards against the ME printed without its sign (a -2 mmHg bias read as +2 would be
    the opposite correction)."""
    from innpar_freia.report_content import bp_table

    r = protocol_numbers(8.0, 4.0)
    r["sbp"] = error_summary(4.0, me=2.0, sd=3.0)
    r["dbp"] = error_summary(3.0, me=-1.5, sd=2.25)
    table = bp_table([("model", r)])
    assert table.columns[:5] == ["method", "SBP MAE", "SBP ME ± SD", "DBP MAE", "DBP ME ± SD"]
    assert table.rows[0][:5] == ["model", "4.00", "+2.0 ± 3.0", "3.00", "-1.5 ± 2.2"]


def test_standards_table_columns_hold_their_own_numbers():
    """Guards against the BHS percentages or the two AAMI criteria in each other's columns,
    and against a row for a BP value no window gave (n = 0)."""
    from innpar_freia.report_content import standards_table

    r = protocol_numbers(8.0, 4.0)
    r["dbp"] = error_summary(None, me=None, sd=None, n=0)
    table = standards_table([("model", r)])
    assert table.columns == [
        "method",
        "value",
        "≤5 mmHg %",
        "≤10 mmHg %",
        "≤15 mmHg %",
        "BHS",
        "AAMI 1",
        "AAMI 2",
        "IEEE 1708",
    ]
    assert table.rows == [
        ["model", "SBP", "55.0", "80.0", "92.0", "B", "pass", "fail", "A"],
        ["model", "MAP", "55.0", "80.0", "92.0", "B", "pass", "fail", "A"],
    ]


def test_a_difference_of_exactly_the_tie_margin_is_level():
    """Guards against ``<`` in place of ``<=`` at TIE_MMHG (0.1 mmHg, 'up to this is a tie'):
    0.25 vs 0.15 differ by exactly 0.1 in floating point."""
    from innpar_freia.report_content import verdict

    m = {
        "calibration_free": protocol_numbers(8.0, 4.0),
        "calibrated": protocol_numbers(0.25, 0.25),
        "baselines": {"carry_forward": protocol_numbers(0.15, 0.15)},
    }
    lines = verdict(m)
    assert len(lines) == 4
    assert lines[0] == (
        "Calibrated waveform MAE 0.25 mmHg vs carry-forward 0.15: is level with "
        "carry-forward (within 0.1 mmHg)."
    )


def test_no_calibrated_verdict_without_calibrated_windows():
    """Guards against sentences about calibrated MAEs when no window was left to score
    (every subject had one window): there is no MAE to compare."""
    from innpar_freia.report_content import verdict

    cal = protocol_numbers(0.0, 0.0, n_windows=0)
    for name in ("waveform", "sbp", "dbp", "map"):
        cal[name]["mae"] = None
    m = {
        "calibration_free": protocol_numbers(8.0, 4.0),
        "calibrated": cal,
        "baselines": {"carry_forward": protocol_numbers(6.0, 5.0)},
    }
    assert verdict(m) == []


def test_the_single_window_note_only_when_subjects_are_missing():
    """Guards against the note '0 subjects with a single window...' when none is missing."""
    from innpar_freia.report_content import _single_window_note

    assert _single_window_note({"n_subjects": 5}, {"n_subjects": 5}) == ""
    assert _single_window_note({"n_subjects": 5}, {"n_subjects": 4}) == (
        " 1 subject with a single window has nothing left to score and is not in these numbers."
    )


def test_standards_note_asks_for_85_subjects_only_below_85():
    """Guards against the 'at least 85 subjects' clause on a test set of exactly 85."""
    from innpar_freia.report_content import standards_note

    assert "at least 85 subjects (here 84)" in standards_note({"n_subjects": 84})
    assert "at least 85" not in standards_note({"n_subjects": 85})


def test_standards_note_gives_the_bhs_and_ieee_grades_thresholds():
    """The tables showed BHS and IEEE 1708 grades without what a grade means: the note
    names each grade's minima and maxima, as the grading functions apply them."""
    from innpar_freia.report_content import standards_note

    note = standards_note({"n_subjects": 85})
    assert "(A 60/85/95 %; B 50/75/90 %; C 40/65/85 %; else D)" in note
    assert "IEEE 1708 grades the MAE (A ≤ 5, B ≤ 6, C ≤ 7 mmHg; else D)" in note


def test_subject_tables_show_pooled_me_and_each_subject_s_me():
    """Guards against the pooled ME or a subject's ME cell filled from the MAE."""
    from innpar_freia.report_content import subject_tables

    r = protocol_numbers(8.0, 4.0)
    r["sbp"] = error_summary(4.0, me=-2.5)
    r["per_subject"] = {"n_subjects": 2, "sbp_me": -2.0, "sbp_mae": 4.5}
    r["subjects"] = [
        {"subject": "s1", "n_windows": 3, "wave_mae": 7.0, "wave_r": 0.9}
        | {f"{n}_mae": 4.0 for n in ("sbp", "dbp", "map")}
        | {"sbp_me": 1.5, "dbp_me": -0.5, "map_me": 0.0},
    ]
    summary, per = subject_tables(r)
    rows = {row[0]: row for row in summary.rows}
    assert rows["SBP ME"] == ["SBP ME", "-2.50", "-2.00"]
    assert rows["SBP MAE"] == ["SBP MAE", "4.00", "4.50"]
    assert per.rows == [["s1", "3", "7.00", "0.900", "4.00 (+1.5)", "4.00 (-0.5)", "4.00 (+0.0)"]]


class _Entry:
    def __init__(self, name: str, metrics: dict):
        self.name, self.metrics = name, metrics


def test_comparison_puts_each_baseline_in_its_protocol_s_columns():
    """Guards against the baselines' numbers in the other protocol's columns: naive and
    linear are calibration-free, carry-forward is calibrated."""
    from innpar_freia.report_content import comparison

    m = {
        "checkpoint": "run/best.pt",
        "epoch": 7,
        "preset": "tiny",
        "calibration_free": protocol_numbers(8.0, 4.0),
        "calibrated": protocol_numbers(6.0, 3.0),
        "inverse": {"mae": 0.25},
        "baselines": {
            "naive": protocol_numbers(12.0, 10.0),
            "linear": protocol_numbers(11.0, 9.0),
            "carry_forward": protocol_numbers(7.0, 5.0),
        },
    }
    table, _ = comparison([_Entry("run/best", m)])
    rows = {row[0]: row for row in table.rows}
    dash4 = ["-"] * 4
    free, cal = ["8.00", "0.800", "4.00", "4.00", "4.00"], ["6.00", "3.00", "3.00", "3.00"]
    assert rows["run/best"] == ["run/best", "7", *free, *cal, "0.250"]
    assert rows["baseline: naive"][2:7] == ["12.00", "0.800", "10.00", "10.00", "10.00"]
    assert rows["baseline: naive"][7:] == [*dash4, "-"]
    assert rows["baseline: carry-forward"][2:7] == ["-"] * 5
    assert rows["baseline: carry-forward"][7:] == ["7.00", "5.00", "5.00", "5.00", "-"]


def test_markdown_tables_have_one_separator_cell_per_column():
    """Guards against a header separator one cell short (Markdown then shows no table)."""
    from innpar_freia.report_content import Table, render_markdown

    text = render_markdown([("table", Table(["a", "b", "c"], [["1", "2", "3"]]))])
    assert text.splitlines()[:3] == ["| a | b | c |", "|---|---|---|", "| 1 | 2 | 3 |"]


# --------------------------------------------------------------------------------------
# The evaluation report's files and figures (report)
# --------------------------------------------------------------------------------------


def test_the_reconstruction_figure_shows_the_percentile_windows_of_waveform_mae():
    """Guards against the percentile windows picked off by one (q x n in place of
    q x (n - 1)), ranked by the largest error in place of the MAE, or repeated. Eleven
    windows with MAEs 0..10 (window 2: MAE 1 with one 50-mmHg spike): the 10th, 50th and
    90th percentile and the worst are the windows of MAE 1, 5, 9 and 10."""
    from innpar_freia.metrics import Scored
    from innpar_freia.report import _pick_windows

    def pick(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, list[str]]:
        bp = np.zeros((len(pred), 3))
        return _pick_windows(Scored.from_windows(pred, ref, bp, bp, np.array(["s"] * len(pred))))

    mae = [5, 9, 1, 7, 0, 3, 10, 2, 8, 6, 4]
    ref = np.full((11, 100), 100.0)
    pred = ref + np.array(mae, dtype=float)[:, None]
    pred[2] = ref[2] + 0.5
    pred[2, 40] = ref[2, 40] + 50.5  # mean |error| (99 x 0.5 + 50.5) / 100 = 1
    picks, labels = pick(pred, ref)
    assert picks.tolist() == [2, 0, 1, 6]
    assert labels == [
        "10th percentile of MAE",
        "median MAE",
        "90th percentile of MAE",
        "largest MAE",
    ]
    # Two windows: the 10th percentile and median are the better one, 90th and worst the
    # other; each is drawn once, under its first label.
    picks, labels = pick(ref[:2] + np.array([[3.0], [1.0]]), ref[:2])
    assert picks.tolist() == [1, 0] and labels == [
        "10th percentile of MAE",
        "90th percentile of MAE",
    ]


def test_epoch_records_are_the_lines_whose_values_are_all_numbers(tmp_path: Path):
    """Guards against keeping a record with a value that is not a number (a string, or a
    JSON true, which Python counts as an int): every field training writes is a number."""
    from innpar_freia.report import read_epoch_records

    lines = [
        '{"epoch": 1, "loss": 0.5, "val_mae": null}',
        '{"epoch": 2, "loss": "0.4"}',
        '{"epoch": 3, "loss": 0.3, "best": true}',
        "not json",
        '{"loss": 0.2}',
        '{"epoch": 4, "loss": 0.25, "val_mae": 9}',
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert read_epoch_records(path) == [
        {"epoch": 1, "loss": 0.5, "val_mae": None},
        {"epoch": 4, "loss": 0.25, "val_mae": 9},
    ]


def test_an_earlier_report_s_figures_include_each_model_s_folder(tmp_path: Path):
    """Guards against overlooking figures in a model's folder (a report of several
    checkpoints): a report replacing it would leave them beside its own. A user's own
    files (other names, or deeper) are not the report's."""
    from innpar_freia.report import existing_report, report_figures

    figures = tmp_path / "figures"
    for rel in ("errors.png", "m1/errors.png", "m1/training.png", "m1/mine.png", "m1/x/errors.png"):
        (figures / rel).parent.mkdir(parents=True, exist_ok=True)
        (figures / rel).write_bytes(b"png")
    expected = [figures / "errors.png", figures / "m1/errors.png", figures / "m1/training.png"]
    assert report_figures(figures) == expected
    (tmp_path / "report.md").write_text("# old")
    assert existing_report(tmp_path) == [tmp_path / "report.md", *expected]


@pytest.fixture(scope="module")
def offset_eval(tiny_run: Path, synth_file: Path) -> list:
    """The tiny run's best checkpoint evaluated with the offset calibration."""
    from innpar_freia.report import evaluate_checkpoints

    ckpt = tiny_run / "checkpoints" / "best.pt"
    return evaluate_checkpoints([ckpt], synth_file, "test", calibration="offset")


def test_checkpoints_scoring_other_windows_are_refused(tiny_run, synth_file, tmp_path):
    """Guards against comparing checkpoints that scored other windows: a run trained with
    test fold 0 scores other test windows than the tiny run (the file's own test split), and
    a comparison of the two would mislead."""
    from innpar_freia.config import resolve_config
    from innpar_freia.report import evaluate_checkpoints
    from innpar_freia.train import train

    other = tmp_path / "fold0"
    train(
        resolve_config("tiny", train={"epochs": 1, "device": "cpu", "test_fold": 0}),
        synth_file,
        other,
    )
    ckpts = [tiny_run / "checkpoints" / "best.pt", other / "checkpoints" / "best.pt"]
    with pytest.raises(DataError, match="scores other test windows than 00000-tiny/best"):
        evaluate_checkpoints(ckpts, synth_file, "test", calibration=None)


def test_the_predictions_file_names_the_calibration_it_holds(offset_eval, tmp_path):
    """Guards against the predictions file saying 'none' for its calibrated windows
    (``innpar plot`` names the calibration from it). With ``offset`` each subject's
    calibrated windows are its predictions moved by one constant."""
    from innpar_freia.predictions import read_predictions
    from innpar_freia.report import write_report

    path = tmp_path / "preds.h5"
    write_report(offset_eval, tmp_path / "report", save_predictions=path, figures=False)
    p = read_predictions(path)
    assert p.attrs["calibration"] == "offset"
    shift = p.calibrated - p.prediction
    for subject in np.unique(p.subject):
        s = shift[p.subject == subject]
        np.testing.assert_allclose(s, s.flat[0], atol=1e-3)  # float32 storage


def test_aggregate_keeps_a_number_the_first_run_lacks() -> None:
    from innpar_freia.experiments import aggregate

    runs = [
        {"evaluations": {"k": {"wave_mae": 1.0}}},
        {"evaluations": {"k": {"wave_mae": 2.0, "inverse_mae": 0.5}}},
        {"evaluations": {"k": {"wave_mae": 3.0, "inverse_mae": 0.7}}},
    ]
    agg = aggregate(runs, "k")
    assert agg["wave_mae"] == {"mean": 2.0, "sd": 1.0, "n": 3}
    assert agg["inverse_mae"]["n"] == 2 and agg["inverse_mae"]["mean"] == pytest.approx(0.6)


def test_a_table_without_a_scored_run_names_every_variant_and_the_failures(tmp_path: Path):
    """Every run failed in training (or none has finished): the table had only its header
    lines, with not a word on the variants or why they had no rows."""
    from innpar_freia.experiments import write_results

    exp = make_experiment(tmp_path)
    failure = {
        "variant": "b",
        "test_fold": 0,
        "seed": 1,
        "run_dir": str(tmp_path / "runs" / "b" / "fold0-seed1"),
        "message": "loss became nan at epoch 1, step 2: training stopped",
    }
    results = write_results(exp, tmp_path, [], "cpu", commit="abc1234", failed=[failure])
    md = (tmp_path / "results.md").read_text()
    assert (
        "No table, no variant has a scored run: `a` (no finished run), `b` (no finished run; "
        "1 failed in training, see Failed runs)." in md
    )
    assert "Paired differences" not in md
    assert "## Failed runs" in md
    assert "- b fold0-seed1: loss became nan at epoch 1, step 2: training stopped" in md
    assert results["failed"] == [failure]
    assert json.loads((tmp_path / "results.json").read_text())["failed"] == [failure]
