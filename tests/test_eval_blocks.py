"""The evaluation scores a split a block of windows at a time: the same numbers as scoring
it whole, in memory that does not grow with the split beyond a few numbers a window."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from innpar_freia import metrics
from innpar_freia.checkpoint import load_checkpoint
from innpar_freia.evaluate import evaluate, predict
from innpar_freia.metrics import BaselineParams, calibrate, carry_forward, evaluate_predictions
from innpar_freia.signal import bp_values_batch

FS = 100.0
L = 300


def _split(n: int = 40, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``n`` windows of 7 subjects (several windows each, out of time order): reference
    pulses with their own level, rate and amplitude; predictions off by a per-window level,
    scale and noise; a PPG that is the reference's shape."""
    rng = np.random.default_rng(seed)
    t = np.arange(L) / FS
    mid = rng.uniform(70, 110, (n, 1))
    amp = rng.uniform(10, 30, (n, 1))
    hz = rng.uniform(0.9, 1.8, (n, 1))
    ref = mid - amp * np.cos(2 * np.pi * hz * t + rng.uniform(0, 6, (n, 1)))
    pred = ref * rng.uniform(0.7, 1.2, (n, 1)) + rng.normal(0, 4, (n, 1))
    pred = pred + rng.normal(0, 1.5, ref.shape)
    ppg = (ref - mid) / amp
    subjects = np.array([f"s{i % 7}" for i in range(n)])
    order = rng.permutation(n) * 1000
    return pred.astype(np.float64), ref.astype(np.float32), ppg, subjects, order


BASELINES = BaselineParams(95.0, 120.0, 75.0, 92.0, 8.0, 94.0)


@pytest.mark.parametrize("calibration", ["offset-scale", "offset"])
def test_scoring_a_block_at_a_time_gives_the_numbers_of_the_whole_split(
    monkeypatch: pytest.MonkeyPatch, calibration: str
) -> None:
    """Guards against windows lost, repeated or mixed up at the blocks' edges (a block one
    window short, the calibrated windows' rows taken for the split's, carry-forward levels
    of another block): 40 windows scored 3 at a time, with blocks that split subjects and
    the calibrated protocol's scored windows, give every number, pooled and per subject,
    that one block of all 40 gives."""
    pred, ref, ppg, subjects, order = _split()
    args = (pred, ref, ppg, subjects, order, FS)
    whole = evaluate_predictions(*args, baselines=BASELINES, calibration=calibration)
    monkeypatch.setattr(metrics, "BLOCK_SAMPLES", 3 * L)
    assert len(metrics.blocks(len(pred), L)) == 14
    blocked = evaluate_predictions(*args, baselines=BASELINES, calibration=calibration)
    assert _same(blocked, whole)
    # And both are the protocol itself, every method's windows made whole in float64.
    ref64 = ref.astype(np.float64)
    bp_pred, bp_ref = bp_values_batch(pred, FS), bp_values_batch(ref64, FS)
    cal, scored = calibrate(pred, bp_pred, bp_ref, ref64, subjects, order, calibration)
    cf, cf_bp, _ = carry_forward(ref64, bp_ref, subjects, order)
    linear = BASELINES.linear(ppg)
    methods = {
        ("calibration_free",): (pred, bp_pred, slice(None)),
        ("baselines", "linear"): (linear, bp_values_batch(linear, FS), slice(None)),
        ("calibrated",): (cal, bp_values_batch(cal, FS), scored),
        ("baselines", "carry_forward"): (cf, cf_bp, scored),
    }
    for keys, (windows, bp, rows) in methods.items():
        got = blocked[keys[0]] if len(keys) == 1 else blocked[keys[0]][keys[1]]
        wave = np.abs(windows[rows] - ref64[rows]).mean()
        assert got["waveform"]["mae"] == pytest.approx(wave, rel=1e-12), keys
        sbp = np.abs(bp[rows, 0] - bp_ref[rows, 0]).mean()
        assert got["sbp"]["mae"] == pytest.approx(sbp, rel=1e-12), keys


def _same(a: object, b: object) -> bool:
    """Nested results equal, floats to 1e-12 (pytest.approx does not take nested dicts of
    lists of dicts)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-12)
    return a == b


def test_scoring_a_split_does_not_copy_its_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards against the protocol holding every method's predictions at once: it made
    ten or so float64 copies of the split (7.8 GB for 100k windows of 625 samples, whose
    predictions and references take 1.25 GB). Scored in blocks of 3 windows, 600 windows
    take less memory than one float64 copy of their references."""
    pred, ref, ppg, subjects, order = _split(600, seed=1)
    monkeypatch.setattr(metrics, "BLOCK_SAMPLES", 3 * L)
    one_copy = ref.size * 8
    tracemalloc.start()
    try:
        evaluate_predictions(pred, ref, ppg, subjects, order, FS, baselines=BASELINES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < one_copy, (peak, one_copy)


def test_calibrated_windows_can_be_had_in_float32() -> None:
    """The predictions file stores the calibrated windows in float32: calibrate gives them
    so (the same numbers, rounded once), without a float64 copy of the split first."""
    pred, ref, _, subjects, order = _split()
    bp_pred, bp_ref = bp_values_batch(pred, FS), bp_values_batch(ref, FS)
    wide, scored = calibrate(pred, bp_pred, bp_ref, ref, subjects, order)
    narrow, scored32 = calibrate(pred, bp_pred, bp_ref, ref, subjects, order, dtype=np.float32)
    assert wide.dtype == np.float64 and narrow.dtype == np.float32
    np.testing.assert_array_equal(narrow, wide.astype(np.float32))
    np.testing.assert_array_equal(scored, scored32)


def test_predictions_hold_the_file_s_windows_and_the_network_s_precision(
    tiny_run: Path, synth_file: Path
) -> None:
    """The windows are held as the file stores them (float32, the same numbers), the
    reverse pass's PPG in float32 (the network's output), and the ABP in float64; the
    metrics are those of float64 arrays."""
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    p = predict(ckpt, synth_file, "test")
    assert (p.ppg.dtype, p.abp.dtype, p.ppg_pred.dtype) == (np.float32,) * 3
    assert p.abp_pred.dtype == np.float64
    np.testing.assert_array_equal(p.abp_pred, ckpt.predict_abp(p.ppg.astype(np.float64)))
    np.testing.assert_array_equal(p.ppg_pred, ckpt.predict_ppg(p.abp).astype(np.float32))
    result, _ = evaluate(ckpt, synth_file, "test")
    wide = evaluate_predictions(
        p.abp_pred,
        p.abp.astype(np.float64),
        p.ppg.astype(np.float64),
        p.subjects,
        p.start,
        ckpt.fs,
        baselines=ckpt.baselines,
    )
    assert _same(result["calibrated"], wide["calibrated"])
    assert _same(result["calibration_free"], wide["calibration_free"])


def test_predict_ppg_returns_float32_or_float64_only(tiny_run: Path) -> None:
    """``dtype`` of :meth:`Checkpoint.predict_ppg`: float32 is the float64 result rounded
    (the network's own output); an integer type, which would truncate every value, is
    refused."""
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    abp = 90.0 + 20.0 * np.sin(np.arange(2 * ckpt.window_length) / 10.0).reshape(2, -1)
    wide = ckpt.predict_ppg(abp)
    np.testing.assert_array_equal(ckpt.predict_ppg(abp, dtype=np.float32), wide.astype(np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        ckpt.predict_ppg(abp, dtype=np.int16)


def test_a_predictions_file_keeps_unknown_starts_unknown(
    tiny_run: Path, synth_file: Path, tmp_path: Path
) -> None:
    """Guards against the time order written as the windows' start: where the window file
    says -1 (bp-benchmark's folds), the protocol orders by row, and that row number went
    into the predictions file's ``start`` as if it were a first sample."""
    import shutil

    import h5py

    from innpar_freia.predictions import read_predictions
    from innpar_freia.report import evaluate_checkpoints, write_report

    data = tmp_path / "nostart.h5"
    shutil.copy(synth_file, data)
    with h5py.File(data, "r+") as fh:
        fh["start"][...] = -1
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    p = predict(ckpt, data, "test")
    assert (p.start == -1).all()
    np.testing.assert_array_equal(p.order, p.indices)
    entries = evaluate_checkpoints([ckpt.path], data, "test")
    write_report(entries, tmp_path / "ev", save_predictions=tmp_path / "p.h5", figures=False)
    saved = read_predictions(tmp_path / "p.h5")
    assert (saved.start == -1).all()
    np.testing.assert_array_equal(saved.index, p.indices)
