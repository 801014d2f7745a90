"""Tests that pin behaviour a mutation audit of the evaluation protocol
(``innpar_freia/metrics.py``: errors, grades, AAMI criteria, per-subject averages,
calibration, baselines) found unguarded: each one fails when the bug named in its docstring
is put into the package. Expected values are worked out by hand (or by numpy on the raw
numbers), never by the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from innpar_freia.metrics import (
    BHS_MINIMA,
    BaselineParams,
    Scored,
    aami_criterion2,
    aami_max_subject_sd,
    baseline_score,
    bhs_grade,
    calibrate,
    calibration_for,
    carry_forward,
    error_stats,
    evaluate_predictions,
    graded_text,
    mase,
    score,
    subject_members,
    waveform_stats,
)

FS = 100.0
L = 500


def pulse(mid: float, amp: float, length: int = L, period: int = 100) -> np.ndarray:
    """``mid - amp cos(2 pi n / period)``: troughs mid - amp, peaks mid + amp, mean mid."""
    n = np.arange(length)
    return mid - amp * np.cos(2 * np.pi * n / period)


# --------------------------------------------------------------------------------------
# BHS, IEEE and AAMI criterion 1
# --------------------------------------------------------------------------------------


def test_bhs_percentages_count_errors_just_either_side_of_each_threshold():
    """Guards against a BHS threshold moved (10 -> 11 mmHg went unnoticed: the existing
    cases had errors of exactly 5, 10, 15 and 15.5 only). Errors 4.9, 5.1, 9.9, 10.1, 14.9,
    15.1 (either sign) and four zeros: within 5: 5 of 10, within 10: 7, within 15: 9, i.e.
    50 / 70 / 90 %, which is grade C (B needs 75 % within 10)."""
    err = np.array([4.9, -5.1, 9.9, -10.1, 14.9, -15.1, 0.0, 0.0, 0.0, 0.0])
    e = error_stats(100.0 + err, np.full(10, 100.0))
    assert e["bhs"] == pytest.approx({"le5": 50.0, "le10": 70.0, "le15": 90.0})
    assert e["bhs_grade"] == "C"


@pytest.mark.parametrize(
    ("cumulative", "grade"),
    [
        ((60.0, 82.5, 95.0), "B"),  # A needs 85 % within 10 mmHg
        ((50.0, 72.5, 90.0), "C"),  # B needs 75 % within 10 mmHg
        ((40.0, 62.5, 85.0), "D"),  # C needs 65 % within 10 mmHg
        ((40.0, 65.0, 85.0), "C"),
    ],
)
def test_bhs_grade_needs_each_grade_s_percentage_within_10(cumulative, grade):
    """Guards against grade B's or C's minimum within 10 mmHg lowered (75 -> 70, 65 -> 60):
    the boundary cases never had a percentage within 10 mmHg between two grades' minima."""
    assert bhs_grade(cumulative) == grade


def test_bhs_minima_shown_beside_the_numbers_are_each_column_s_grade_minima():
    """Guards against the display thresholds (reports, figures) taken from the wrong
    column of the grade table: within 5 mmHg the grades need 40/50/60 %, within 10
    65/75/85 %, within 15 85/90/95 %."""
    assert BHS_MINIMA == ((40.0, 50.0, 60.0), (65.0, 75.0, 85.0), (85.0, 90.0, 95.0))


def test_ieee_grade_is_by_the_mae_not_the_rmse():
    """Guards against the IEEE 1708 grade taken from the RMSE: errors 0 and 10 mmHg have an
    MAE of 5 (grade A) but an RMSE of sqrt(50) = 7.07 (grade D)."""
    e = error_stats(np.array([100.0, 110.0]), np.array([100.0, 100.0]))
    assert e["mae"] == pytest.approx(5.0)
    assert e["ieee_grade"] == "A"


def test_an_sd_of_8_mmhg_in_tenths_passes_aami_criterion_1():
    """Guards against the SD compared with 8 mmHg without the protocol's slack: errors
    8, -8, 8, -8, 0 from values given to 0.1 mmHg have a sample SD of exactly 8
    (sqrt(4 x 64 / 4)), 8.000000000000004 in floating point, and ME 0: criterion 1 holds."""
    ref = np.array([125.8, 99.7, 102.9, 128.6, 91.5])
    pred = np.array([133.8, 91.7, 110.9, 120.6, 91.5])
    e = error_stats(pred, ref)
    assert e["sd"] == pytest.approx(8.0, abs=1e-12)
    assert e["me"] == pytest.approx(0.0, abs=1e-12)
    assert e["aami_pass"] is True


@pytest.mark.parametrize(
    ("value", "text"), [(-5.0, "-5.0"), (5.0, "+5.0"), (-5.00000000000001, "-5.0")]
)
def test_a_negative_value_on_a_threshold_is_shown_as_it_is(value, text):
    """Guards against ``graded_text`` comparing the signed value with the threshold: an ME
    of -5 mmHg (which meets the AAMI's |ME| <= 5) was shown as -5.0000, as if it missed."""
    assert graded_text(value, 1, (5.0,), sign=True) == text


# --------------------------------------------------------------------------------------
# AAMI / ISO 81060-2 criterion 2
# --------------------------------------------------------------------------------------


def test_criterion_2_limit_at_me_0_is_10_over_the_normal_quantile():
    """Guards against a coarse root of the criterion-2 limit: at ME 0, P(|N(0, SD)| <= 10)
    = 0.85 gives SD = 10 / z(0.925) = 10 / 1.4395314709 = 6.9467046757 mmHg; the table's
    two decimals (6.95) hid a root found to 0.01 mmHg."""
    assert aami_max_subject_sd(0.0) == pytest.approx(10.0 / 1.4395314709384563, abs=1e-8)


def test_criterion_2_fails_beyond_an_me_of_minus_5():
    """Guards against |ME| taken as ME for the 'beyond 5 mmHg' rule: an ME of -6 got a
    limit, and criterion 2 could pass where criterion 1 had failed."""
    assert aami_max_subject_sd(-6.0) is None
    far = aami_criterion2(np.array([-6.0, -6.1, -5.9, -6.0]), np.array(["a", "a", "b", "b"]))
    assert (far["max_sd"], far["pass"]) == (None, False)


def test_criterion_2_uses_each_subject_s_own_window_count_and_the_pooled_me():
    """Guards against the subjects' mean errors divided by the mean window count, and the
    limit looked up at the mean of the subjects' means (or the median error) in place of
    the pooled ME of criterion 1. Subject a: errors 3, 3, 3 (mean 3); b: -6 (mean -6);
    c: 0, 0 (mean 0). SD of 3, -6, 0: mean -1, squares 16 + 25 + 1 = 42, sqrt(42 / 2) =
    sqrt(21). Pooled ME (9 - 6 + 0) / 6 = 0.5: the standard's limit there is 6.93 mmHg
    (6.87 at the subjects' mean -1, 6.78 at the median 1.5)."""
    err = np.array([3.0, 3.0, 3.0, -6.0, 0.0, 0.0])
    subjects = np.array(["a", "a", "a", "b", "c", "c"])
    out = aami_criterion2(err, subjects)
    assert out["n_subjects"] == 3
    assert out["sd"] == pytest.approx(np.sqrt(21.0))
    assert out["max_sd"] == pytest.approx(6.93, abs=0.005)
    assert out["pass"] is True


def test_criterion_2_of_each_bp_value_is_of_that_value_s_errors():
    """Guards against criterion 2 computed from the SBP errors for every value (the one
    test of ``score`` gave every value the same errors). SBP: subjects' mean errors -6, 0,
    6 (SD 6, passes); DBP: -9, 0, 9 (SD 9 > 6.95, fails); MAP: 0 everywhere (SD 0)."""
    subjects = np.repeat(["a", "b", "c"], 2)
    sbp_err = np.array([-7.0, -5.0, -1.0, 1.0, 5.0, 7.0])
    dbp_err = 1.5 * sbp_err
    bp_ref = np.tile([120.0, 80.0, 95.0], (6, 1))
    bp_pred = bp_ref + np.stack([sbp_err, dbp_err, np.zeros(6)], axis=1)
    wave = np.tile(pulse(95.0, 20.0, length=50, period=25), (6, 1))
    out = score(Scored.from_windows(wave, wave, bp_pred, bp_ref, subjects), with_subjects=False)
    assert out["sbp"]["aami2"]["sd"] == pytest.approx(6.0)
    assert out["sbp"]["aami2"]["pass"] is True
    assert out["dbp"]["aami2"]["sd"] == pytest.approx(9.0)
    assert out["dbp"]["aami2"]["pass"] is False
    assert out["map"]["aami2"]["sd"] == pytest.approx(0.0)


# --------------------------------------------------------------------------------------
# Waveform statistics
# --------------------------------------------------------------------------------------


def test_a_constant_reference_window_has_no_pearson_r():
    """Guards against only the predicted window being checked for a constant: a flat
    reference of 90.1 mmHg over 625 samples is not exactly its float mean (residues of
    1.4e-14), and a meaningless r near 0 was averaged in."""
    ref = np.full((1, 625), 90.1)
    pred = 90.0 + 10.0 * np.sin(np.linspace(0.0, 10.0 * np.pi, 625))[None, :]
    assert waveform_stats(pred, ref)["r"] is None
    assert waveform_stats(ref, pred)["r"] is None


def test_waveform_stats_count_windows_not_samples():
    """Guards against ``n_windows`` taken from the samples axis."""
    ref = np.stack([pulse(100.0, 20.0, length=40, period=20)] * 3)
    assert waveform_stats(ref + 1.0, ref)["n_windows"] == 3


# --------------------------------------------------------------------------------------
# Per subject
# --------------------------------------------------------------------------------------


def three_subjects() -> Scored:
    """a: 3 windows, b and c: 1 each. Waveforms: ref 0, 1, 2, 3 and pred = ref + c per
    window (c = 1, -1, 3 for a; 2 for b; -4 for c), so r = 1 everywhere. BP errors (pred -
    ref) set by hand: SBP a 2, -4, 11; b 5; c -20. DBP a -1, -1, 5; b -3; c 0. MAP a 0, 3,
    0; b 0; c 1."""
    ref = np.tile([0.0, 1.0, 2.0, 3.0], (5, 1))
    pred = ref + np.array([1.0, -1.0, 3.0, 2.0, -4.0])[:, None]
    bp_ref = np.array(
        [
            [120.0, 80.0, 95.0],
            [130.0, 85.0, 100.0],
            [110.0, 70.0, 90.0],
            [140.0, 90.0, 105.0],
            [125.0, 75.0, 92.0],
        ]
    )
    err = np.array(
        [[2.0, -1.0, 0.0], [-4.0, -1.0, 3.0], [11.0, 5.0, 0.0], [5.0, -3.0, 0.0], [-20.0, 0.0, 1.0]]
    )
    subjects = np.array(["a", "a", "a", "b", "c"])
    return Scored.from_windows(pred, ref, bp_ref + err, bp_ref, subjects)


def test_per_subject_rows_by_hand():
    """Guards against a subject's MAE taken as |mean error|, its ME as the median error,
    its DBP/MAP errors taken against the reference SBP, its RMSE reported as the MAE, and
    its window count as all windows: subject a's SBP errors 2, -4, 11 have MAE 17/3 and ME
    3 (|ME| 3, median 2); its waveform errors 1, -1, 3 have MAE 5/3, RMSE sqrt(11/3)."""
    rows = {r["subject"]: r for r in score(three_subjects())["subjects"]}
    a = rows["a"]
    assert [rows[k]["n_windows"] for k in "abc"] == [3, 1, 1]
    assert a["sbp_mae"] == pytest.approx(17.0 / 3.0)
    assert a["sbp_me"] == pytest.approx(3.0)
    assert (a["dbp_mae"], a["dbp_me"]) == pytest.approx((7.0 / 3.0, 1.0))
    assert (a["map_mae"], a["map_me"]) == pytest.approx((1.0, 1.0))
    assert a["wave_mae"] == pytest.approx(5.0 / 3.0)
    assert a["wave_rmse"] == pytest.approx(np.sqrt(11.0 / 3.0))
    assert a["wave_r"] == pytest.approx(1.0)
    assert (rows["c"]["sbp_me"], rows["c"]["wave_rmse"]) == pytest.approx((-20.0, 4.0))


def test_per_subject_average_is_the_mean_over_three_subjects():
    """Guards against the per-subject average taken as a median (the existing cases had two
    subjects, where the two agree): SBP MAE 17/3, 5 and 20 average to 92/9 = 10.22 (median
    5.67); pooled it is 42/5 = 8.4. The window count is a subject's, not averaged."""
    out = score(three_subjects())
    assert out["per_subject"]["n_subjects"] == 3
    assert out["per_subject"]["sbp_mae"] == pytest.approx((17.0 / 3.0 + 5.0 + 20.0) / 3.0)
    assert out["per_subject"]["sbp_me"] == pytest.approx((3.0 + 5.0 - 20.0) / 3.0)
    assert out["per_subject"]["wave_mae"] == pytest.approx((5.0 / 3.0 + 2.0 + 4.0) / 3.0)
    assert out["sbp"]["mae"] == pytest.approx(42.0 / 5.0)
    values = [f"{v}_{k}" for v in ("sbp", "dbp", "map") for k in ("mae", "me")]
    assert set(out["per_subject"]) == {"n_subjects", "wave_mae", "wave_rmse", "wave_r", *values}


def test_a_per_subject_r_that_no_subject_has_is_none_not_zero():
    """Guards against the average of no values reported as 0: the naive baseline's flat
    prediction has no r in any subject, and its per-subject r read as 0 (no correlation)
    rather than undefined."""
    s = three_subjects()
    ref = np.tile([0.0, 1.0, 2.0, 3.0], (5, 1))  # three_subjects' references
    flat = Scored.from_windows(np.full_like(ref, 1.5), ref, s.bp_pred, s.bp_ref, s.subjects)
    out = baseline_score(flat)
    assert out["waveform"]["r"] is None
    assert out["per_subject"]["wave_r"] is None
    assert out["per_subject"]["n_subjects"] == 3


# --------------------------------------------------------------------------------------
# Calibration and carry-forward
# --------------------------------------------------------------------------------------


def test_ties_in_time_are_broken_by_position_and_times_compare_as_numbers():
    """Guards against the calibration window of a tie in time taken as the later-stored
    window, and against times compared as text ('10' before '9'): subject a's windows at
    times 5, 3, 3 calibrate on the second; subject b's at 10 and 9 on b's second (9 s)."""
    ref = np.stack([pulse(m, 20.0) for m in (100.0, 110.0, 120.0, 90.0, 95.0)])
    bp_ref = np.tile([120.0, 80.0, 100.0], (5, 1))
    bp_ref[:, 2] = ref.mean(axis=1)
    subjects = np.array(["a", "a", "a", "b", "b"])
    order = np.array([5, 3, 3, 10, 9])
    pred, _, scored = carry_forward(ref, bp_ref, subjects, order)
    assert scored.tolist() == [True, False, True, True, False]
    np.testing.assert_allclose(pred[:, 0], [110.0, 110.0, 110.0, 95.0, 95.0], atol=1e-9)
    _, scored_cal = calibrate(ref, bp_ref, bp_ref, ref, subjects, order)
    assert scored_cal.tolist() == [True, False, True, True, False]


def test_a_cuff_reading_with_sbp_equal_to_dbp_is_refused():
    """Guards against '<' in place of '<=': a cuff reading of 80/80 has no pulse pressure
    (a typing mistake) and is refused like a swapped one."""
    with pytest.raises(ValueError, match="cuff SBP 80 is not above its DBP 80"):
        calibration_for(70.0, 80.0, 60.0, 80.0, 80.0)


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ((70.0, 70.5, 69.5, 120.0, 80.0, 100.0), 40.0),  # predicted PP exactly 1 mmHg
        ((70.0, 80.0, 60.0, 100.5, 99.5, 100.0), 0.05),  # reference PP exactly 1 mmHg
        ((70.0, 71.0, 69.0, 120.0, 80.0, 100.0), 20.0),  # predicted PP 2 mmHg
        ((70.0, 70.9, 70.0, 120.0, 80.0, 100.0), 1.0),  # predicted PP 0.9 mmHg: offset only
    ],
)
def test_the_scale_is_skipped_only_below_1_mmhg_of_pulse_pressure(values, scale):
    """Guards against the minimum pulse pressure of the calibration window compared with
    '>' or moved above 1 mmHg: at exactly 1 mmHg the protocol scales (PP_ref / PP_pred)."""
    assert calibration_for(*values).scale == pytest.approx(scale)


def test_a_cuff_puts_the_level_where_the_scaled_prediction_s_shape_puts_it():
    """Guards against the cuff's level computed without the scale (or with the wrong sign):
    the existing case had a prediction whose mean level was its SBP/DBP mid-point. Here the
    prediction has SBP 80, DBP 60 (mid 70) but mean level 65; the cuff says 120/80. Scale
    40 / 20 = 2, level 100 + (65 - 70) x 2 = 90: samples at 80, 60, 65 go to 120, 80, 90.
    Offset only: level 100 - 5 = 95, the samples go to 110, 90, 95 (mid-point 100)."""
    x = np.array([80.0, 60.0, 65.0])
    cal = calibration_for(65.0, 80.0, 60.0, 120.0, 80.0)
    np.testing.assert_allclose(cal.apply(x), [120.0, 80.0, 90.0])
    off = calibration_for(65.0, 80.0, 60.0, 120.0, 80.0, mode="offset")
    np.testing.assert_allclose(off.apply(x), [110.0, 90.0, 95.0])


def test_calibration_and_carry_forward_use_the_window_s_mean_level_not_its_median():
    """Guards against a level taken as the median of the calibration window (equal to its
    mean for the symmetric pulses of the other tests). Calibration window (time 0): pred
    0, 0, 0, 4 (mean 1, median 0), ref 10, 10, 10, 30 (mean 15, median 10), PP 4 and 20:
    scale 5, so the later pred 1, 2, 3, 4 becomes (pred - 1) x 5 + 15 = 15, 20, 25, 30,
    and with the offset alone pred - 1 + 15 = 15, 16, 17, 18. Carry-forward predicts 15."""
    pred = np.array([[0.0, 0.0, 0.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    ref = np.array([[10.0, 10.0, 10.0, 30.0], [12.0, 14.0, 16.0, 18.0]])
    bp_pred = np.array([[4.0, 0.0, 1.0], [4.0, 1.0, 2.5]])
    bp_ref = np.array([[30.0, 10.0, 15.0], [18.0, 12.0, 15.0]])
    subjects, order = np.array(["s", "s"]), np.array([0, 1])
    cal, scored = calibrate(pred, bp_pred, bp_ref, ref, subjects, order)
    assert scored.tolist() == [False, True]
    np.testing.assert_allclose(cal[1], [15.0, 20.0, 25.0, 30.0])
    off, _ = calibrate(pred, bp_pred, bp_ref, ref, subjects, order, "offset")
    np.testing.assert_allclose(off[1], [15.0, 16.0, 17.0, 18.0])
    cf, cf_bp, _ = carry_forward(ref, bp_ref, subjects, order)
    np.testing.assert_allclose(cf[1], 15.0)
    np.testing.assert_allclose(cf_bp[1], [30.0, 10.0, 15.0])


def test_carry_forward_is_reported_with_its_per_subject_averages():
    """Guards against carry-forward scored without the per-subject averages that the report
    puts next to the model's. Subject x: levels 100 (first in time), 110, 90; y: 80
    (first), 85: carry-forward's MAP errors -10, +10 (x) and -5 (y), per-subject MAE
    (10 + 5) / 2 = 7.5 and ME (0 - 5) / 2 = -2.5."""
    ref = np.stack([pulse(m, 20.0) for m in (110.0, 100.0, 90.0, 85.0, 80.0)])
    subjects = np.array(["x", "x", "x", "y", "y"])
    order = np.array([2, 1, 3, 2, 1])
    cf = evaluate_predictions(ref, ref, ref, subjects, order, FS)["baselines"]["carry_forward"]
    assert cf["per_subject"]["n_subjects"] == 2
    assert cf["per_subject"]["map_mae"] == pytest.approx(7.5)
    assert cf["per_subject"]["map_me"] == pytest.approx(-2.5)
    assert "subjects" not in cf


def test_subjects_with_only_a_calibration_window_leave_nothing_to_score():
    """Guards against a calibrated protocol with no window left (every subject has one
    window, its calibration window) counting a subject: nothing is scored, every number is
    undefined (None), and so are carry-forward's."""
    ref = np.stack([pulse(100.0, 20.0), pulse(90.0, 10.0)])
    m = evaluate_predictions(ref + 2.0, ref, ref, np.array(["a", "b"]), np.zeros(2), FS)
    for c in (m["calibrated"], m["baselines"]["carry_forward"]):
        assert (c["n_windows"], c["n_subjects"]) == (0, 0)
        assert c["waveform"]["mae"] is None and c["sbp"]["mae"] is None
        assert c["sbp"]["aami2"]["pass"] is None
        assert c["per_subject"] == {"n_subjects": 0}
    assert m["calibration_free"]["n_subjects"] == 2


# --------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------


def test_baselines_cannot_be_fitted_on_no_windows():
    """Guards against an empty training split reaching a division by zero (a bare
    ZeroDivisionError) in place of the protocol's own message."""
    with pytest.raises(ValueError, match="no training windows"):
        BaselineParams.fit(np.zeros((0, 50)), np.zeros((0, 50)), FS)


def test_mase_against_a_perfect_naive_baseline_is_undefined():
    """Guards against MASE divided by a naive MAE of 0 (a ZeroDivisionError): where the
    reference is flat at the training mean the ratio has no meaning and is None."""
    model = {
        "waveform": {"mae": 2.0},
        "sbp": {"mae": 3.0},
        "dbp": {"mae": 1.0},
        "map": {"mae": 0.5},
    }
    naive = {
        "waveform": {"mae": 0.0},
        "sbp": {"mae": 6.0},
        "dbp": {"mae": 0.0},
        "map": {"mae": 2.0},
    }
    assert mase(model, naive) == {"waveform": None, "sbp": 0.5, "dbp": None, "map": 0.25}


def test_subject_members_are_ascending_in_a_large_array():
    """Guards against an unstable sort of the subjects: small arrays sort stably whatever the
    algorithm, so a few thousand windows are needed to see each subject's indices out of
    order (the per-subject rows and the calibration rely on the stored order)."""
    rng = np.random.default_rng(3)
    subjects = rng.choice(np.array(["p", "q", "r"]), size=3000)
    members = subject_members(subjects)
    assert list(members) == ["p", "q", "r"]
    for name, idx in members.items():
        np.testing.assert_array_equal(idx, np.flatnonzero(subjects == name))


def test_a_nan_in_the_reference_is_refused_too():
    """Guards against only the predictions being checked for NaN: a NaN reference value
    (a gap in the recording) got grades of an error that is undefined."""
    with pytest.raises(ValueError, match="hold NaN or inf"):
        error_stats(np.array([100.0, 100.0]), np.array([np.nan, 100.0]))
    with pytest.raises(ValueError, match="hold NaN or inf"):
        waveform_stats(np.zeros((1, 4)), np.array([[0.0, np.inf, 0.0, 0.0]]))
