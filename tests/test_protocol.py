"""The evaluation protocol on crafted signals with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from innpar_freia.metrics import (
    BaselineParams,
    bhs_grade,
    calibrate,
    carry_forward,
    error_stats,
    evaluate_predictions,
    ieee_grade,
)
from innpar_freia.signal import bp_values, bp_values_batch, central_gradient

FS = 125.0


def pulses(sbp: float, dbp: float, seconds: float = 5.0) -> np.ndarray:
    """A raised-cosine pulse train at 75 bpm (100 samples a beat): peaks exactly at SBP on
    samples 50, 150, ..., troughs exactly at DBP on samples 100, 200, ..."""
    n = np.arange(int(seconds * FS))
    return dbp + (sbp - dbp) * (0.5 - 0.5 * np.cos(2 * np.pi * n / 100.0))


def test_bp_values_of_a_known_pulse_train() -> None:
    x = pulses(120.0, 80.0)
    sbp, dbp, map_ = bp_values(x, FS)
    assert sbp == pytest.approx(120.0, abs=1e-9)
    assert dbp == pytest.approx(80.0, abs=1e-9)
    assert map_ == pytest.approx(x.mean())
    flat = np.full(625, 90.0)
    assert bp_values(flat, FS) == (90.0, 90.0, 90.0)  # no peak: max / min


def test_error_stats_hand_computed() -> None:
    err = np.array([1.0, -3.0, 4.0, 6.0])
    s = error_stats(err, np.zeros(4))
    assert s["mae"] == pytest.approx(3.5)
    assert s["me"] == pytest.approx(2.0)
    assert s["sd"] == pytest.approx(np.std(err, ddof=1))
    assert s["bhs"] == {"le5": 75.0, "le10": 100.0, "le15": 100.0}
    assert s["bhs_grade"] == "A" and s["ieee_grade"] == "A" and s["aami_pass"] is True


@pytest.mark.parametrize(
    ("cum", "grade"),
    [
        ((60, 85, 95), "A"),
        ((59.9, 85, 95), "B"),
        ((50, 75, 90), "B"),
        ((40, 65, 85), "C"),
        ((39, 90, 99), "D"),
    ],
)
def test_bhs_grades_at_the_boundaries(cum, grade) -> None:
    assert bhs_grade(cum) == grade


@pytest.mark.parametrize(
    ("mae", "grade"), [(5.0, "A"), (5.01, "B"), (6.0, "B"), (7.0, "C"), (7.01, "D")]
)
def test_ieee_grades(mae, grade) -> None:
    assert ieee_grade(mae) == grade


def test_aami_limits() -> None:
    # ME exactly 5, SD 0: passes; ME 5.01 fails; SD above 8 fails.
    assert error_stats(np.full(3, 5.0), np.zeros(3))["aami_pass"] is True
    assert error_stats(np.full(3, 5.01), np.zeros(3))["aami_pass"] is False
    assert error_stats(np.array([-10.0, 10.0, -10.0, 10.0]), np.zeros(4))["aami_pass"] is False


def test_calibration_offset_and_scale() -> None:
    ref = np.stack([pulses(120, 80), pulses(130, 80)])
    pred = np.stack([pulses(110, 90), pulses(120, 90)])  # half the pulse pressure, +10 offset
    subjects = np.array(["a", "a"])
    order = np.array([0, 625])
    bp_p, bp_r = bp_values_batch(pred, FS), bp_values_batch(ref, FS)
    cal, scored = calibrate(pred, bp_p, bp_r, ref, subjects, order, "offset-scale")
    assert list(scored) == [False, True]
    # scale 40/20 = 2 about the calibration window's mean, then its reference mean
    expected = (pred[1] - pred[0].mean()) * 2.0 + ref[0].mean()
    assert np.allclose(cal[1], expected)
    off, _ = calibrate(pred, bp_p, bp_r, ref, subjects, order, "offset")
    assert np.allclose(off[1], pred[1] - pred[0].mean() + ref[0].mean())
    cf, cf_bp, _cf_scored = carry_forward(ref, bp_r, subjects, order)
    assert np.allclose(cf[1], ref[0].mean()) and np.allclose(cf_bp[1], bp_r[0])


def test_first_window_in_time_order_is_the_calibration_window() -> None:
    ref = np.stack([pulses(120, 80), pulses(140, 70), pulses(150, 75)])
    subjects = np.array(["a", "a", "a"])
    order = np.array([1250, 0, 625])  # the second row is first in time
    _, _, scored = carry_forward(ref, bp_values_batch(ref, FS), subjects, order)
    assert list(scored) == [True, False, True]


def test_full_protocol_with_baselines() -> None:
    rng = np.random.default_rng(0)
    ref = np.stack([pulses(120 + 5 * i, 80 - i) for i in range(6)])
    ppg = ref + rng.normal(0, 1, ref.shape)
    pred = ref + 3.0  # constant +3 mmHg error
    subjects = np.array(["a", "a", "a", "b", "b", "b"])
    order = np.tile([0, 625, 1250], 2)
    base = BaselineParams.fit(ppg, ref, FS)
    m = evaluate_predictions(pred, ref, ppg, subjects, order, FS, base)
    free = m["calibration_free"]
    assert free["waveform"]["mae"] == pytest.approx(3.0)
    assert free["sbp"]["me"] == pytest.approx(3.0) and free["dbp"]["me"] == pytest.approx(3.0)
    assert free["per_subject"]["n_subjects"] == 2
    assert m["calibrated"]["n_windows"] == 4
    naive = m["baselines"]["naive"]
    assert naive["waveform"]["r"] is None
    assert free["mase"]["waveform"] == pytest.approx(3.0 / naive["waveform"]["mae"])


def test_streamed_baselines_equal_least_squares() -> None:
    rng = np.random.default_rng(1)
    ppg = rng.normal(size=(5, 625))
    abp = 80 + 10 * ppg + rng.normal(size=(5, 625))
    base = BaselineParams.fit(ppg, abp, FS)
    z = (ppg - ppg.mean(1, keepdims=True)) / ppg.std(1, keepdims=True)
    a, b = np.linalg.lstsq(np.c_[z.ravel(), np.ones(z.size)], abp.ravel(), rcond=None)[0]
    assert base.linear_a == pytest.approx(a) and base.linear_b == pytest.approx(b)


def test_gradient_matches_the_network_channel() -> None:
    x = np.array([1.0, 4.0, 9.0, 16.0])
    assert central_gradient(x).tolist() == [4.0, 8.0, 12.0, -9.0]
