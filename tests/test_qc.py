"""Quality control: gap-aware resampling, delay estimation, rejection codes, window rules."""

from __future__ import annotations

import numpy as np
import pytest

from innpar_freia.data.qc import (
    check_window,
    estimate_lag,
    first_strong_peak,
    flat_fraction,
    resample_gapped,
)
from innpar_freia.data.synthetic import synthesize_recording
from innpar_freia.data.windowing import PipelineOptions, window_recording
from innpar_freia.signal import resample

FS_IN = 250.0


@pytest.fixture(scope="module")
def rec():
    """One synthetic minute at 250 Hz (ABP in mmHg, PPG delayed by a known amount)."""
    return synthesize_recording(0, 1.0, FS_IN, seed=1)


def test_resample_gapped_matches_resample_without_gaps(rec) -> None:
    for edges, padtype in (("line", "line"), ("zeros", "constant")):
        np.testing.assert_array_equal(
            resample_gapped(rec.abp, FS_IN, 125.0, edges=edges),
            resample(rec.abp, FS_IN, 125.0, padtype=padtype),
        )
    with pytest.raises(ValueError, match="edges must be one of line, zeros"):
        resample_gapped(rec.abp, FS_IN, 125.0, edges="mirror")


def test_resample_gapped_keeps_gaps_out_and_widens_them(rec) -> None:
    x = rec.abp.copy()
    # A 0.4 s gap at 250 Hz: input samples 1000..1099 lie at output positions 500..549.5,
    # so output samples 500..550 are invalid.
    x[1000:1100] = np.nan
    y = resample_gapped(x, FS_IN, 125.0)
    assert y.size == rec.abp.size // 2
    bad = np.flatnonzero(np.isnan(y))
    # the gap itself plus 4 output samples (32 ms) on each side, nothing else
    assert bad[0] == 500 - 4 and bad[-1] == 550 + 4 and bad.size == 51 + 8
    # away from the gap the interpolation did not disturb the signal
    clean = resample(rec.abp, FS_IN, 125.0, padtype="line")  # the default edges
    np.testing.assert_allclose(y[:480], clean[:480], atol=1e-6)
    assert np.isnan(resample_gapped(np.full(100, np.nan), FS_IN, 125.0)).all()


def test_first_strong_peak_is_not_the_argmax() -> None:
    d = np.arange(251)
    # Two beats: the true delay (30) and one beat later (105), which correlates higher.
    curve = 0.85 * np.exp(-0.5 * ((d - 30) / 8) ** 2) + 1.0 * np.exp(-0.5 * ((d - 105) / 8) ** 2)
    assert int(np.argmax(curve)) == 105
    assert first_strong_peak(curve, 0.8) == 30
    # A peak below 0.8 x the maximum does not count.
    assert first_strong_peak(curve * np.where(d < 60, 0.7, 1.0), 0.8) == 105
    # A maximum at zero delay (a falling curve) is found at the edge.
    assert first_strong_peak(np.linspace(1, 0, 10)) == 0


@pytest.mark.parametrize("delay", [0, 17, 60, 85])
def test_estimate_lag_recovers_an_exact_shift(rec, delay: int) -> None:
    # Delays shorter than one beat (~0.75 s here): a delay of more than a beat is, by
    # design, reported as the earliest beat that correlates as strongly.
    abp = resample(rec.abp, FS_IN, 125.0)
    rng = np.random.default_rng(delay)
    ppg = np.concatenate([np.full(delay, abp[0]), abp[: abp.size - delay]])
    ppg = -3.0 * ppg + rng.normal(0, 1.0, ppg.size)  # any gain and sign-free offset
    est = estimate_lag(-ppg, abp, 125.0)
    assert est.lag == delay
    assert est.windows_used >= 3 and est.peak_corr > 0.9


def test_window_recording_aligns_synthetic_delay(rec) -> None:
    out = window_recording(rec.ppg, rec.abp, FS_IN, PipelineOptions())
    assert out.status == "kept" and out.reason is None
    # The synthetic PPG is also low-passed (a little extra group delay).
    assert abs(out.lag - rec.delay_s * 125.0) <= 2
    assert out.windows_total == 11 and len(out.starts) == 11 and not out.rejected
    assert out.ppg.shape == (11, 625) and np.all(out.starts % 625 == 0)
    assert np.all((out.sbp > out.dbp + 10) & (out.dbp > 30))


def _rejection(ppg: np.ndarray, abp: np.ndarray) -> str | None:
    return window_recording(ppg, abp, FS_IN, PipelineOptions()).reason


def test_rejection_codes(rec) -> None:
    rng = np.random.default_rng(0)
    n = rec.abp.size
    noise = rng.normal(0, 0.3, n)
    ppg, abp = rec.ppg, rec.abp
    assert _rejection(ppg, np.full(n, np.nan)) == "abp_nan"
    assert _rejection(np.full(n, np.nan), abp) == "pleth_nan"
    flat = np.full(n, 6.8)
    flat[::5000] = 700.0  # isolated artefact spikes on a constant line
    assert _rejection(ppg, flat) == "abp_flat"
    assert _rejection(ppg, np.round(noise - 0.6, 2)) == "abp_near_zero"
    assert _rejection(ppg, abp - 110.0) == "abp_out_of_range"
    assert _rejection(ppg, 60 + 0.1 * (abp - abp.mean())) == "abp_not_pulsatile"
    assert _rejection(np.full(n, 3.0), abp) == "pleth_flat"
    assert _rejection(rng.normal(0, 1, n), abp) == "low_xcorr"
    assert _rejection(ppg[:2000], abp[:2000]) == "too_short"


def test_check_window_rules(rec) -> None:
    out = window_recording(rec.ppg, rec.abp, FS_IN, PipelineOptions())
    p, a = out.ppg[0], out.abp[0]
    assert check_window(p, a, 125.0)[0] is None
    assert check_window(np.where(np.arange(625) == 3, np.nan, p), a, 125.0)[0] == "nan"
    stair = np.repeat(p[::2], 2)[:625]  # every other pair equal: 50 % flat
    assert flat_fraction(stair) > 0.4
    assert check_window(stair, a, 125.0)[0] == "flat"
    assert check_window(p, a + 150.0, 125.0)[0] == "abp_out_of_range"
    assert check_window(p, np.full(625, 80.0) + np.linspace(0, 1, 625), 125.0)[0] == "few_beats"
    reason, sbp, dbp = check_window(p, a, 125.0)
    assert reason is None and 40 < dbp < sbp - 20 < 200
    high = a + (225.0 - sbp)  # SBP 225 > 220 mmHg, every sample still below 250
    assert high.max() < 250 and check_window(p, high, 125.0)[0] == "bp_limits"
    assert check_window(p, (a - dbp) * 0.1 + 80.0, 125.0)[0] == "few_beats"  # 7 mmHg pulses
    assert check_window(np.random.default_rng(1).normal(size=625), a, 125.0)[0] in (
        "irregular",
        "beat_mismatch",
        "low_corr",
    )
