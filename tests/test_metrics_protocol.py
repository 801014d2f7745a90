"""The evaluation protocol against hand-computed values on crafted waveforms.

Pulses are ``mid - amp * cos(2 pi n / period)``: troughs (DBP = mid - amp) at multiples of
the period, peaks (SBP = mid + amp) half-way, MAP = mid over whole periods. Errors are
chosen so that every number below can be checked with pencil and paper.
"""

from __future__ import annotations

import numpy as np
import pytest

from innpar_freia.metrics import (
    BHS_THRESHOLDS,
    BaselineParams,
    Scored,
    aami_criterion2,
    aami_max_subject_sd,
    bhs_grade,
    bhs_percentages,
    calibrate,
    calibration_for,
    carry_forward,
    error_stats,
    evaluate_predictions,
    graded_text,
    ieee_grade,
    protocol_windows,
    score,
    waveform_stats,
)
from innpar_freia.signal import bp_sample_indices, bp_values, bp_values_batch

FS = 100.0  # Hz: a 100-sample period is 1 s (60 bpm)
L = 500  # 5 whole periods per window


def pulse(mid: float, amp: float, length: int = L, period: int = 100) -> np.ndarray:
    n = np.arange(length)
    return mid - amp * np.cos(2 * np.pi * n / period)


# ----------------------------------------------------------------------------- BP values


def test_bp_values_of_a_crafted_pulse_train():
    sbp, dbp, mean = bp_values(pulse(100.0, 20.0), FS)
    assert sbp == pytest.approx(120.0, abs=1e-9)
    assert dbp == pytest.approx(80.0, abs=1e-9)
    assert mean == pytest.approx(100.0, abs=1e-9)


def test_bp_values_find_the_right_peaks_and_use_their_median():
    x = pulse(100.0, 20.0)
    # Raise one systolic peak (sample 250) by 30 mmHg: the median of 5 peaks ignores it.
    x[250] += 30.0
    sbp, dbp, _ = bp_values(x, FS)
    assert sbp == pytest.approx(120.0, abs=1e-9)
    assert dbp == pytest.approx(80.0, abs=1e-9)


def test_bp_values_without_peaks_fall_back_to_max_and_min():
    ramp = np.linspace(60.0, 90.0, L)  # monotonic: no peak, no trough
    assert bp_values(ramp, FS) == pytest.approx((90.0, 60.0, 75.0))


def test_bp_sample_indices_point_at_the_median_peak_and_trough():
    # 4 periods: peaks at 50, 150, 250, 350 raised by 0, 4, 8, 2 -> 120, 124, 128, 122;
    # the median of an even count is the mean of the two middle peaks, 122 (350) and 124 (150).
    x = pulse(100.0, 20.0, length=400)
    x[[50, 150, 250, 350]] += [0.0, 4.0, 8.0, 2.0]
    # troughs at 100, 200, 300 (not at the edge) lowered by 3, 0, 1 -> median 79 at 300.
    x[[100, 200, 300]] -= [3.0, 0.0, 1.0]
    s_lo, s_hi, d_lo, d_hi = bp_sample_indices(x, FS)
    assert (s_lo, s_hi, d_lo, d_hi) == (350, 150, 300, 300)
    sbp, dbp, _ = bp_values(x, FS)
    assert sbp == 0.5 * (x[s_lo] + x[s_hi]) == pytest.approx(123.0)
    assert dbp == x[d_lo] == pytest.approx(79.0)
    # No peak and no trough: the maximum and the minimum.
    ramp = np.linspace(60.0, 90.0, L)
    assert list(bp_sample_indices(ramp, FS)) == [L - 1, L - 1, 0, 0]
    with pytest.raises(ValueError, match="one non-empty window"):
        bp_sample_indices(np.zeros((2, 3)), FS)


def test_bp_values_are_np_median_of_peaks_bit_for_bit():
    from innpar_freia.signal import diastolic_troughs, systolic_peaks

    rng = np.random.default_rng(0)
    for _ in range(50):
        x = pulse(rng.uniform(60, 120), rng.uniform(5, 40), period=int(rng.integers(40, 150)))
        x = x + rng.normal(0, 2.0, L)
        p, t = systolic_peaks(x, FS), diastolic_troughs(x, FS)
        sbp = float(np.median(x[p])) if p.size else float(x.max())
        dbp = float(np.median(x[t])) if t.size else float(x.min())
        assert bp_values(x, FS)[:2] == (sbp, dbp)


def test_batched_bp_values_are_one_window_at_a_time_bit_for_bit():
    """The batch path (one percentile call for every window's prominence threshold) gives
    the numbers and sample indices of :func:`bp_values` per window, bit for bit: noisy
    pulses, flat and tiny windows (the 5 mmHg floor of the threshold) and their scaled
    copies."""
    from innpar_freia.signal import bp_sample_indices_batch

    rng = np.random.default_rng(1)
    x = np.stack(
        [
            pulse(rng.uniform(60, 120), rng.uniform(1, 40), period=int(rng.integers(40, 150)))
            + rng.normal(0, rng.uniform(0, 4), L)
            for _ in range(60)
        ]
    )
    x[5] = 90.0  # flat: no peak, max and min
    for windows in (x, 0.1 * x + 3.0, 7.0 * x):
        one = np.array([bp_values(w, FS) for w in windows])
        assert np.array_equal(bp_values_batch(windows, FS), one)
        idx = np.stack([bp_sample_indices(w, FS) for w in windows])
        assert np.array_equal(bp_sample_indices_batch(windows, FS), idx)
    assert bp_values_batch(x[:0], FS).shape == (0, 3)
    bad = x.copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        bp_values_batch(bad, FS)


def test_constant_offset_error():
    ref = np.stack([pulse(100.0, 20.0), pulse(90.0, 15.0)])
    pred = ref + 3.0
    w = waveform_stats(pred, ref)
    assert w["mae"] == pytest.approx(3.0)
    assert w["rmse"] == pytest.approx(3.0)
    assert w["r"] == pytest.approx(1.0)
    bp_p, bp_r = bp_values_batch(pred, FS), bp_values_batch(ref, FS)
    for j in range(3):
        e = error_stats(bp_p[:, j], bp_r[:, j])
        assert (e["mae"], e["me"], e["sd"]) == pytest.approx((3.0, 3.0, 0.0), abs=1e-9)
        assert e["bhs"] == {"le5": 100.0, "le10": 100.0, "le15": 100.0}
        assert e["bhs_grade"] == "A" and e["aami_pass"] and e["ieee_grade"] == "A"


def test_waveform_stats_by_hand():
    ref = np.array([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 2.0]])
    pred = np.array([[0.0, 2.0, 4.0, 6.0], [1.0, 1.0, 1.0, 1.0]])
    w = waveform_stats(pred, ref)
    # |errors| 0, 1, 2, 3 and 0, 0, 0, 1: sum 7, sum of squares 15, over 8 samples.
    assert w["mae"] == pytest.approx(7 / 8)
    assert w["rmse"] == pytest.approx(np.sqrt(15 / 8))
    # Window 1: perfectly correlated; window 2: a constant prediction has no r (left out).
    assert w["r"] == pytest.approx(1.0)
    anti = waveform_stats(-ref[:1], ref[:1])
    assert anti["r"] == pytest.approx(-1.0)


# ----------------------------------------------------------------------------- grades


def errors_of(values: list[float]) -> dict:
    ref = np.full(len(values), 100.0)
    return error_stats(ref + np.asarray(values), ref)


@pytest.mark.parametrize(
    ("counts", "grade"),
    [
        # (|e| = 5, |e| = 10, |e| = 15, |e| = 15.5) out of 20 windows -> cumulative %
        ((12, 5, 2, 1), "A"),  # 60 / 85 / 95: exactly grade A's boundaries
        ((11, 6, 2, 1), "B"),  # 55 / 85 / 95
        ((12, 4, 3, 1), "B"),  # 60 / 80 / 95
        ((12, 5, 1, 2), "B"),  # 60 / 85 / 90: B's 90 exactly
        ((10, 5, 3, 2), "B"),  # 50 / 75 / 90: exactly grade B
        ((9, 6, 3, 2), "C"),  # 45 / 75 / 90
        ((8, 5, 4, 3), "C"),  # 40 / 65 / 85: exactly grade C
        ((7, 6, 4, 3), "D"),  # 35 / 65 / 85
        ((8, 5, 3, 4), "D"),  # 40 / 65 / 80
    ],
)
def test_bhs_grade_at_the_boundaries(counts, grade):
    values = [5.0] * counts[0] + [-10.0] * counts[1] + [15.0] * counts[2] + [-15.5] * counts[3]
    e = errors_of(values)
    le5, le10, le15 = (100.0 * c / 20 for c in np.cumsum(counts[:3]))
    assert e["bhs"] == pytest.approx({"le5": le5, "le10": le10, "le15": le15})
    assert e["bhs_grade"] == grade
    assert bhs_grade((le5, le10, le15)) == grade


def test_aami_criterion_at_its_limits():
    # ME = 5 and SD (ddof=1) = sqrt((64 + 64 + 64 + 64 + 0) / 4) = 8 exactly: passes.
    base = [13.0, -3.0, 13.0, -3.0, 5.0]
    e = errors_of(base)
    assert (e["me"], e["sd"]) == (5.0, 8.0)
    assert e["aami_pass"] is True
    assert errors_of([v + 0.01 for v in base])["aami_pass"] is False  # |ME| 5.01
    assert errors_of([v - 10.0 for v in base])["aami_pass"] is True  # ME -5: |ME| <= 5
    assert errors_of([v - 10.01 for v in base])["aami_pass"] is False
    wider = [5.0 + 1.01 * (v - 5.0) for v in base]  # SD 8.08
    assert errors_of(wider)["aami_pass"] is False
    assert errors_of(wider)["me"] == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("me", "max_sd"),
    # ISO 81060-2's table of criterion 2 (largest SD of the subjects' mean errors).
    [(0.0, 6.95), (-1.0, 6.87), (2.0, 6.65), (3.0, 6.25), (4.0, 5.64), (5.0, 4.81)],
)
def test_aami_criterion_2_limit_is_the_standard_s_table(me, max_sd):
    assert aami_max_subject_sd(me) == pytest.approx(max_sd, abs=0.005)


def test_aami_criterion_2_on_subjects_mean_errors():
    # Subjects' mean errors -6, 0, 6 (SD 6 <= 6.95 at ME 0): passes; -9, 0, 9 (SD 9) fails,
    # though criterion 1 (pooled ME 0, SD of windows) holds for both.
    subjects = np.repeat(["a", "b", "c"], 2)
    ok_err = np.array([-7.0, -5.0, -1.0, 1.0, 5.0, 7.0])
    ok = aami_criterion2(ok_err, subjects)
    assert (ok["n_subjects"], ok["sd"], ok["pass"]) == (3, pytest.approx(6.0), True)
    assert ok["max_sd"] == pytest.approx(6.947, abs=1e-3)
    bad = aami_criterion2(np.array([-9.0, -9.0, 0.0, 0.0, 9.0, 9.0]), subjects)
    assert bad["pass"] is False
    assert aami_criterion2(np.array([1.0, 2.0]), np.array(["a", "a"]))["pass"] is None
    # Beyond |ME| 5 the standard has no limit: criterion 2 fails with criterion 1.
    far = aami_criterion2(np.array([6.0, 6.1, 5.9, 6.0]), np.array(["a", "a", "b", "b"]))
    assert (far["max_sd"], far["pass"]) == (None, False)
    # score() reports it for each value, next to criterion 1.
    pred = np.zeros((6, 625))
    bp = np.zeros((6, 3))
    out = score(
        Scored.from_windows(pred, pred, bp + ok_err[:, None], bp, subjects), with_subjects=False
    )
    assert out["sbp"]["aami2"]["pass"] is True and out["map"]["aami2"]["sd"] == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("value", "digits", "thresholds", "sign", "text"),
    [
        (59.96, 1, (50.0, 60.0), False, "59.96"),  # not the 60 % of grade A
        (60.0, 1, (50.0, 60.0), False, "60.0"),
        (72.34, 1, (50.0, 60.0), False, "72.3"),
        (5.04, 1, (5.0,), True, "+5.04"),  # not the AAMI's 5
        (-5.04, 1, (5.0,), True, "-5.04"),
        (5.004, 2, (5.0, 6.0), False, "5.004"),  # not IEEE A's 5
        (5.0000000000001, 2, (5.0, 6.0), False, "5.00"),  # within the slack: is 5
        (59.6, 0, (60.0,), False, "59.6"),
    ],
)
def test_graded_numbers_are_never_shown_on_a_threshold_they_miss(
    value, digits, thresholds, sign, text
):
    assert graded_text(value, digits, thresholds, sign) == text


@pytest.mark.parametrize(
    ("mae", "grade"),
    [(0.0, "A"), (5.0, "A"), (5.5, "B"), (6.0, "B"), (6.5, "C"), (7.0, "C"), (7.01, "D")],
)
def test_ieee_1708_grade_by_mae(mae, grade):
    assert ieee_grade(mae) == grade
    e = errors_of([mae, -mae])  # MAE exactly ``mae``
    assert e["mae"] == pytest.approx(mae)
    assert e["ieee_grade"] == grade


def test_error_stats_of_no_windows_is_all_none():
    e = error_stats(np.array([]), np.array([]))
    assert e["n"] == 0 and e["mae"] is None and e["bhs_grade"] is None


def test_one_window_has_no_sd_and_no_aami_verdict():
    # The sample SD (ddof=1) of one error is undefined: it was reported as 0 and the AAMI
    # criterion as passed, whatever the error.
    e = error_stats(np.array([3.0]), np.array([0.0]))
    assert (e["n"], e["mae"], e["me"]) == (1, 3.0, 3.0)
    assert e["sd"] is None and e["aami_pass"] is None
    assert e["ieee_grade"] == "A" and e["bhs_grade"] == "A"


def test_an_error_of_5_mmhg_in_tenths_counts_as_5():
    # 64.4 - 59.4 is 5.000000000000007 in floating point: it counted as more than 5 mmHg
    # (BHS 0 % within 5 mmHg, IEEE B), and an ME of that "5" failed AAMI.
    e = error_stats(np.array([64.4, 64.4, 64.4]), np.array([59.4, 59.4, 59.4]))
    assert e["bhs"]["le5"] == 100.0 and e["ieee_grade"] == "A" and e["aami_pass"] is True
    assert ieee_grade(6.000000000000007) == "B" and ieee_grade(6.001) == "C"


def test_an_error_of_5_mmhg_between_float32_pressures_counts_as_5():
    """The window store and the predictions files keep pressures as float32, where
    64.3 - 59.3 is 5.0000038: it counted as more than 5 mmHg (120 of 4,800 such pairs at
    5, 10 and 15 mmHg between 40 and 200 mmHg missed their threshold)."""
    ref = np.round(np.arange(40.0, 185.0, 0.1), 1)
    for step in (5.0, 10.0, 15.0):
        pred, truth = (ref + step).astype(np.float32), ref.astype(np.float32)
        abs_err = np.abs(pred.astype(np.float64) - truth)
        assert bhs_percentages(abs_err)[BHS_THRESHOLDS.index(step)] == 100.0
    e = error_stats(np.float32([64.3, 64.3]), np.float32([59.3, 59.3]))
    assert e["bhs"]["le5"] == 100.0 and e["ieee_grade"] == "A"
    # Still no slack a real difference fits in: 5.001 mmHg is more than 5.
    assert error_stats(np.array([5.001, 5.001]), np.zeros(2))["bhs"]["le5"] == 0.0


# ----------------------------------------------------------------------------- per subject


def test_per_subject_average_differs_from_pooled():
    # Subject a: 3 windows with SBP error +2; subject b: 1 window with SBP error +10.
    ref = np.stack([pulse(100.0, 20.0)] * 4)
    pred = ref.copy()
    pred[:3] += 2.0
    pred[3] += 10.0
    s = score(
        Scored.from_windows(
            pred,
            ref,
            bp_values_batch(pred, FS),
            bp_values_batch(ref, FS),
            np.array(["a", "a", "a", "b"]),
        )
    )
    assert s["sbp"]["mae"] == pytest.approx((3 * 2 + 10) / 4)  # pooled: 4.0
    assert s["per_subject"]["sbp_mae"] == pytest.approx((2 + 10) / 2)  # each person once: 6.0
    assert [r["subject"] for r in s["subjects"]] == ["a", "b"]
    assert s["subjects"][1]["wave_mae"] == pytest.approx(10.0)
    assert s["n_subjects"] == 2


# ----------------------------------------------------------------------------- calibration


def crafted_subject() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One subject, 4 windows stored out of time order; the prediction has the right shape at
    half the amplitude and a wrong level: pred = 0.5 * ref + 20."""
    mids, amps = [100.0, 110.0, 95.0, 120.0], [20.0, 25.0, 15.0, 30.0]
    ref = np.stack([pulse(m, a) for m, a in zip(mids, amps, strict=True)])
    pred = 0.5 * ref + 20.0
    order = np.array([30, 10, 20, 40])  # window 1 is the first in time: the calibration window
    return pred, ref, np.array(["s"] * 4), order


def test_offset_scale_calibration_recovers_a_linearly_distorted_prediction():
    pred, ref, subjects, order = crafted_subject()
    bp_p, bp_r = bp_values_batch(pred, FS), bp_values_batch(ref, FS)
    cal, scored = calibrate(pred, bp_p, bp_r, ref, subjects, order, "offset-scale")
    assert scored.tolist() == [True, False, True, True]
    # scale = PP_ref / PP_pred = 50 / 25 = 2; offset moves mean(pred_c) = 75 to mean(ref_c) = 110.
    np.testing.assert_allclose(cal, ref, atol=1e-9)


def test_offset_only_calibration_by_hand():
    pred, ref, subjects, order = crafted_subject()
    bp_p, bp_r = bp_values_batch(pred, FS), bp_values_batch(ref, FS)
    cal, _ = calibrate(pred, bp_p, bp_r, ref, subjects, order, "offset")
    # pred' = pred - 75 + 110 = 0.5 * ref + 55: window 0 (mid 100, amp 20) -> mid 105, amp 10.
    np.testing.assert_allclose(cal[0], pulse(105.0, 10.0), atol=1e-9)
    m = evaluate_predictions(pred, ref, ref, subjects, order, FS, calibration="offset")
    c = m["calibrated"]
    assert c["n_windows"] == 3  # the calibration window is not scored
    # Scored windows 0, 2, 3 have SBP_ref 120, 110, 150; pred' SBP = 0.5 * SBP_ref + 55, so
    # the errors are 55 - 0.5 * SBP_ref = -5, 0, -20.
    sbp_ref = np.array([120.0, 110.0, 150.0])
    expected = 55.0 - 0.5 * sbp_ref
    assert c["sbp"]["me"] == pytest.approx(expected.mean())
    assert c["sbp"]["mae"] == pytest.approx(np.abs(expected).mean())
    assert c["calibration"] == "offset"


def test_subjects_calibrated_by_the_offset_alone_are_counted_and_reported():
    """offset-scale falls back on the offset alone where the calibration window's pulse
    pressure is below 1 mmHg; the metrics and the report had not said for how many
    subjects their calibrated numbers were partly offset-only."""
    from innpar_freia.report_content import _offset_only_note

    pred, ref, subjects, order = crafted_subject()
    pred2, ref2 = pred.copy(), ref.copy()
    pred2[1] = pulse(75.0, 0.2)  # subject t's calibration window: a flat prediction
    both_pred, both_ref = np.concatenate([pred, pred2]), np.concatenate([ref, ref2])
    both_subjects = np.array(["s"] * 4 + ["t"] * 4)
    both_order = np.concatenate([order, order])
    m = evaluate_predictions(
        both_pred, both_ref, both_ref, both_subjects, both_order, FS, calibration="offset-scale"
    )
    assert m["calibrated"]["n_subjects_offset_only"] == 1
    assert calibration_for(70.0, 70.5, 70.0, 120.0, 80.0).offset_only
    assert not calibration_for(70.0, 80.0, 60.0, 120.0, 80.0).offset_only
    note = _offset_only_note(m["calibrated"])
    assert note == (
        " For 1 subject the calibration window's predicted or reference pulse pressure was "
        "below 1 mmHg: the offset alone was applied."
    )
    fine = evaluate_predictions(pred, ref, ref, subjects, order, FS, calibration="offset-scale")
    assert (
        fine["calibrated"]["n_subjects_offset_only"] == 0
        and _offset_only_note(fine["calibrated"]) == ""
    )
    # Asked for the offset alone, nobody fell back.
    off = evaluate_predictions(
        both_pred, both_ref, both_ref, both_subjects, both_order, FS, calibration="offset"
    )
    assert off["calibrated"]["n_subjects_offset_only"] == 0


def test_calibration_for_a_cuff_hits_its_sbp_and_dbp():
    x = pulse(70.0, 10.0)  # predicted: 80 / 60, level 70
    cal = calibration_for(70.0, 80.0, 60.0, 120.0, 80.0)  # cuff 120/80, no mean level
    y = cal.apply(x)
    assert (y.max(), y.min()) == pytest.approx((120.0, 80.0))
    assert cal.scale == pytest.approx(2.0)
    off = calibration_for(70.0, 80.0, 60.0, 120.0, 80.0, mode="offset")
    assert off.apply(x).max() == pytest.approx(110.0)  # mid-point 100, own PP 20
    # A flat prediction (PP < 1 mmHg) cannot be scaled: offset only.
    assert calibration_for(70.0, 70.5, 70.0, 120.0, 80.0).scale == 1.0
    with pytest.raises(ValueError, match="calibration must be one of"):
        calibration_for(70.0, 80.0, 60.0, 120.0, 80.0, mode="scale")
    # Swapped cuff values would flip the waveform (scale -2); NaN would calibrate to NaN.
    with pytest.raises(ValueError, match="cuff SBP 80 is not above its DBP 120"):
        calibration_for(70.0, 80.0, 60.0, 80.0, 120.0)
    # A reference window whose median peak an artefact put below its median trough: the
    # evaluation goes on, offset only for that subject.
    odd = calibration_for(70.0, 80.0, 60.0, 49.4, 62.5, 55.0)
    assert (odd.scale, odd.apply(x).mean()) == pytest.approx((1.0, 55.0))
    with pytest.raises(ValueError, match=r"finite.*pred_sbp, ref_level"):
        calibration_for(70.0, float("nan"), 60.0, 120.0, 80.0, float("inf"))


def test_subject_members_are_each_subjects_windows_in_order():
    from innpar_freia.metrics import subject_members

    members = subject_members(np.array(["b", "a", "b", "c", "a", "b"]))
    assert list(members) == ["a", "b", "c"]
    assert {k: v.tolist() for k, v in members.items()} == {"a": [1, 4], "b": [0, 2, 5], "c": [3]}
    assert subject_members(np.array([], dtype=str)) == {}


def test_time_order_puts_a_subject_with_an_unknown_start_in_file_order():
    """Known starts order a subject; all unknown (-1) is file order; a subject with both is
    in file order throughout. Rows set beside sample numbers had made b's unknown window
    (row 4, key 4) its first, ahead of starts 3000 and 5000: its calibration window."""
    from innpar_freia.evaluate import Predictions
    from innpar_freia.metrics import calibration_windows, time_order

    subjects = np.array(["a", "a", "a", "b", "b", "b", "c", "c"])
    start = np.array([500, 0, 250, 5000, -1, 3000, -1, -1])
    rows = np.arange(10, 18)
    order = time_order(start, rows, subjects)
    assert order.tolist() == [500, 0, 250, 13, 14, 15, 16, 17]
    assert calibration_windows(subjects, order) == {"a": 1, "b": 3, "c": 6}
    n = len(subjects)
    p = Predictions(rows, rows.astype(str), subjects, start, *[np.zeros((n, 4))] * 3)
    assert p.order.tolist() == order.tolist()


def test_carry_forward_by_hand():
    # Subject x: levels 100 (first in time), 110, 90; subject y: 80 (first), 85.
    ref = np.stack([pulse(m, 20.0) for m in (110.0, 100.0, 90.0, 85.0, 80.0)])
    subjects = np.array(["x", "x", "x", "y", "y"])
    order = np.array([2, 1, 3, 2, 1])
    bp_r = bp_values_batch(ref, FS)
    pred, bp, scored = carry_forward(ref, bp_r, subjects, order)
    assert scored.tolist() == [True, False, True, True, False]
    np.testing.assert_allclose(pred[:, 0], [100, 100, 100, 80, 80])
    np.testing.assert_allclose(bp[0], [120.0, 80.0, 100.0], atol=1e-9)
    m = evaluate_predictions(ref, ref, ref, subjects, order, FS)
    cf = m["baselines"]["carry_forward"]
    assert cf["n_windows"] == 3
    # MAP errors of the scored windows: 100-110, 100-90, 80-85.
    assert cf["map"]["mae"] == pytest.approx((10 + 10 + 5) / 3)
    assert cf["map"]["me"] == pytest.approx((-10 + 10 - 5) / 3)
    assert cf["waveform"]["mae"] > 0
    # A perfect model calibrated with its own first window stays perfect.
    assert m["calibrated"]["waveform"]["mae"] == pytest.approx(0.0, abs=1e-9)


def test_naive_and_linear_baselines_and_mase_by_hand():
    ref = np.stack([pulse(100.0, 20.0), pulse(80.0, 10.0)])
    ppg = ref.copy()  # z-scored PPG = z-scored ABP: the line fits each window's shape
    base = BaselineParams(
        abp_mean=90.0, sbp_mean=115.0, dbp_mean=75.0, map_mean=90.0, linear_a=10.0, linear_b=90.0
    )
    pred = ref + 4.0
    m = evaluate_predictions(
        pred, ref, ppg, np.array(["a", "b"]), np.array([0, 0]), FS, base, calibration=None
    )
    naive = m["baselines"]["naive"]
    # Naive: 90 everywhere. |pulse(100,20) - 90| and |pulse(80,10) - 90| averaged.
    expected = (np.abs(ref[0] - 90).mean() + np.abs(ref[1] - 90).mean()) / 2
    assert naive["waveform"]["mae"] == pytest.approx(expected)
    assert naive["sbp"]["mae"] == pytest.approx((5 + 25) / 2)  # |115-120|, |115-90|
    assert naive["map"]["me"] == pytest.approx((-10 + 10) / 2)
    assert m["calibration_free"]["mase"]["waveform"] == pytest.approx(4.0 / expected)
    assert m["calibration_free"]["mase"]["sbp"] == pytest.approx(4.0 / 15.0)
    # Linear: 10 * z + 90; z of a cosine has amplitude sqrt(2): SBP 90 + 10 sqrt(2).
    lin = m["baselines"]["linear"]
    assert lin["sbp"]["me"] == pytest.approx(
        ((90 + 10 * 2**0.5) - 120 + (90 + 10 * 2**0.5) - 90) / 2
    )
    assert lin["waveform"]["r"] == pytest.approx(1.0)
    assert "calibrated" not in m


def test_protocol_windows_are_what_evaluate_predictions_scores():
    pred, ref, subjects, order = crafted_subject()
    w = protocol_windows(pred, ref, ref, subjects, order, FS)
    m = evaluate_predictions(pred, ref, ref, subjects, order, FS)
    assert set(w) == {"model", "model_calibrated", "carry_forward"}
    assert m["calibrated"] == {**score(w["model_calibrated"]), "calibration": "offset-scale"}
    assert m["calibration_free"] == score(w["model"])
    with pytest.raises(ValueError, match="must be equal"):
        protocol_windows(pred[:, :10], ref, ref, subjects, order, FS)


def test_metrics_refuse_what_they_would_score_wrongly():
    """A (n,) against an (n, 1) broadcast into n x n errors, and a NaN got BHS/AAMI/IEEE
    grades of an error that is undefined; subjects given as a list calibrated nothing."""
    with pytest.raises(ValueError, match=r"predictions \(4,\) and references \(4, 1\) differ"):
        error_stats(np.arange(4.0), np.arange(4.0)[:, None])
    with pytest.raises(ValueError, match="differ"):
        error_stats([1.0, 2.0, 3.0], [2.0])
    with pytest.raises(ValueError, match="hold NaN or inf"):
        error_stats([np.nan, 100.0], [100.0, 100.0])
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"\(3, 50\) and references \(1, 50\) differ"):
        waveform_stats(rng.random((3, 50)), rng.random((1, 50)))
    with pytest.raises(ValueError, match=r"\(windows, samples\) arrays"):
        waveform_stats(rng.random(50), rng.random(50))
    window = 90 + 20 * np.sin(np.linspace(0, 10 * np.pi, 625))
    window[100] = np.nan
    with pytest.raises(ValueError, match="holds NaN or inf"):
        bp_values(window, 125.0)
    pred = 90 + 10 * rng.normal(size=(4, 625))
    ref = 100 + 20 * rng.normal(size=(4, 625))
    bp_pred, bp_ref = bp_values_batch(pred, 125.0), bp_values_batch(ref, 125.0)
    subjects, order = np.array(["a", "a", "b", "b"]), np.arange(4)
    as_array = calibrate(pred, bp_pred, bp_ref, ref, subjects, order)
    as_list = calibrate(pred, bp_pred, bp_ref, ref, list(subjects), list(order))
    assert not np.allclose(as_array[0], pred)
    assert np.array_equal(as_array[0], as_list[0]) and np.array_equal(as_array[1], as_list[1])


# ----------------------------------------------------------------------------- aggregates


def test_per_subject_me_keeps_its_sign_and_undefined_r_is_left_out():
    """Per-subject ME computed as the MAE, and a subject whose r is undefined (a constant
    prediction) averaged in as 0, went unnoticed."""
    ref = np.stack([pulse(100.0, 20.0), pulse(90.0, 15.0), pulse(95.0, 10.0)])
    pred = np.stack([pulse(95.0, 20.0), pulse(85.0, 15.0), np.full(L, 80.0)])
    bp_ref, bp_pred = bp_values_batch(ref, FS), bp_values_batch(pred, FS)
    out = score(Scored.from_windows(pred, ref, bp_pred, bp_ref, np.array(["a", "a", "b"])))
    rows = {r["subject"]: r for r in out["subjects"]}
    assert rows["a"]["sbp_me"] == pytest.approx(-5.0) and rows["a"]["sbp_mae"] == pytest.approx(5.0)
    assert rows["a"]["wave_r"] == pytest.approx(1.0) and rows["b"]["wave_r"] is None
    assert out["per_subject"]["wave_r"] == pytest.approx(1.0)  # b has none, not 0
    assert out["per_subject"]["sbp_me"] == pytest.approx((-5.0 + rows["b"]["sbp_me"]) / 2)


def test_waveform_r_is_the_mean_of_the_windows_r():
    x = pulse(100.0, 20.0)
    ref = np.stack([x, x, x])
    pred = np.stack([x + 3.0, 2.0 * x, 200.0 - x])  # r = 1, 1, -1
    assert waveform_stats(pred, ref)["r"] == pytest.approx(1.0 / 3.0)


def test_waveform_r_says_how_many_windows_it_is_the_mean_of():
    """A model predicting flat lines for 190 of 200 windows showed r 1.0, the r of the 10
    others, with nothing saying that most windows had none."""
    from innpar_freia.report_content import r_text

    x = pulse(100.0, 20.0)
    ref = np.stack([x] * 20)
    pred = ref.copy()
    pred[:19] = x.mean()  # flat: no r
    w = waveform_stats(pred, ref)
    assert (w["r"], w["r_windows"], w["n_windows"]) == (pytest.approx(1.0), 1, 20)
    assert r_text(w) == "1.000 (1 of 20 windows)"
    every = waveform_stats(ref + 1.0, ref)
    assert every["r_windows"] == 20 and r_text(every) == "1.000"
    none = waveform_stats(np.full_like(ref, 100.0), ref)  # the naive baseline's shape
    assert (none["r"], none["r_windows"]) == (None, 0) and r_text(none) == "-"
    assert waveform_stats(np.empty((0, 5)), np.empty((0, 5)))["r_windows"] == 0


def test_bhs_grade_b_needs_90_percent_within_15():
    # 50 / 75 / 85 % meets C's 85 at 15 mmHg but not B's 90.
    assert bhs_grade((50.0, 75.0, 85.0)) == "C"
    assert bhs_grade((50.0, 75.0, 90.0)) == "B"


def test_naive_baseline_means_are_per_window_bp_means_and_linear_mase_is_its_own():
    """The naive SBP/DBP/MAP means divided by the sample count (~0 mmHg), and the linear
    baseline given the model's MASE, went unnoticed."""
    ref = np.stack([pulse(100.0, 20.0), pulse(90.0, 10.0), pulse(80.0, 15.0), pulse(85.0, 5.0)])
    ppg = np.stack([pulse(0.0, 1.0), pulse(0.0, 2.0), pulse(0.0, 1.5), pulse(0.0, 0.5)])
    params = BaselineParams.fit(ppg, ref, FS)
    bp = bp_values_batch(ref, FS)
    assert (params.sbp_mean, params.dbp_mean, params.map_mean) == pytest.approx(
        tuple(bp.mean(axis=0))
    )
    assert params.abp_mean == pytest.approx(ref.mean())
    pred = ref + 4.0
    m = evaluate_predictions(pred, ref, ppg, np.array(list("abcd")), np.arange(4), FS, params)
    naive, linear = m["baselines"]["naive"], m["baselines"]["linear"]
    for method in (m["calibration_free"], linear):
        assert method["mase"]["waveform"] == pytest.approx(
            method["waveform"]["mae"] / naive["waveform"]["mae"]
        )
    assert linear["mase"]["waveform"] != pytest.approx(m["calibration_free"]["mase"]["waveform"])


def two_subjects_offset() -> tuple:
    """Subjects A and B, 2 windows each, ordered by start; the prediction is off by a
    constant 20 mmHg, which calibration removes exactly."""
    ref = np.stack([pulse(m, a) for m, a in ((100, 20), (102, 20), (90, 15), (92, 15))])
    return ref + 20.0, ref, np.array(["A", "A", "B", "B"]), np.array([0, 500, 0, 500])


def test_a_short_order_is_refused_not_scored_as_uncalibrated_windows():
    """An order of 2 entries for 4 windows calibrated subject A only and scored B's windows,
    uncalibrated, as "calibrated" (3 windows, SBP MAE 13.3 instead of 2 windows, 0)."""
    pred, ref, subjects, order = two_subjects_offset()
    m = evaluate_predictions(pred, ref, ref, subjects, order, FS)
    assert m["calibrated"]["n_windows"] == 2
    assert m["calibrated"]["sbp"]["mae"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="order has 2 entries but there are 4 windows"):
        evaluate_predictions(pred, ref, ref, subjects, order[:2], FS)
    with pytest.raises(ValueError, match="order has 5 entries but there are 4 windows"):
        protocol_windows(pred, ref, ref, subjects, np.arange(5), FS)


def test_subjects_and_ppg_need_one_entry_per_window():
    pred, ref, subjects, order = two_subjects_offset()
    base = BaselineParams.fit(ref, ref, FS)
    with pytest.raises(ValueError, match="subjects has 3 entries but there are 4 windows"):
        evaluate_predictions(pred, ref, ref, subjects[:3], order, FS)
    with pytest.raises(ValueError, match="ppg has 3 entries but there are 4 windows"):
        evaluate_predictions(pred, ref, ref[:3], subjects, order, FS, base)
    with pytest.raises(ValueError, match="ppg is None, but the linear baseline needs"):
        protocol_windows(pred, ref, None, subjects, order, FS, base)
    with pytest.raises(ValueError, match="order is None, but the calibrated protocol needs"):
        protocol_windows(pred, ref, ref, subjects, None, FS)
    # Where nothing uses them, ppg and order may be left out.
    free = protocol_windows(pred, ref, None, subjects, None, FS, calibration=None)
    assert set(free) == {"model"}


@pytest.mark.parametrize("fs", [0, -5.0, float("nan"), float("inf"), "125", None, True])
def test_the_metrics_refuse_a_rate_that_is_not_one(fs):
    """fs 0 or below put the peaks 1 sample apart (other SBP/DBP, silently); NaN and a
    string failed deep in numpy."""
    pred, ref, subjects, order = two_subjects_offset()
    for call in (
        lambda: bp_values(ref[0], fs),
        lambda: bp_values_batch(ref, fs),
        lambda: protocol_windows(pred, ref, ref, subjects, order, fs),
        lambda: evaluate_predictions(pred, ref, ref, subjects, order, fs),
    ):
        with pytest.raises(ValueError, match=r"fs must be a finite rate above 0 Hz"):
            call()


def test_pearson_r_of_unequal_samples_and_an_ieee_grade_of_nan_are_refused():
    """pearson_r failed in numpy's concatenation, and a NaN MAE was graded D."""
    from innpar_freia.metrics import pearson_r

    with pytest.raises(ValueError, match=r"pearson_r needs two 1-D samples of one length"):
        pearson_r([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="ieee_grade needs an MAE"):
        ieee_grade(float("nan"))
    assert ieee_grade(float("inf")) == "D"
