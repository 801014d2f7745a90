"""What ``innpar reconstruct`` holds of a long recording: windows predicted and stitched a
block at a time (the same output as all at once), and no whole-length copies that the
outputs do not need (tracemalloc, against the size of one float64 copy of the recording)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from innpar_freia import reconstruct
from innpar_freia.data import qc
from innpar_freia.data.recordings import read_csv, read_npz
from innpar_freia.data.synthetic import synthesize_recording
from innpar_freia.outputs import StagedOutputs, write_recording
from innpar_freia.reconstruct import (
    Reconstruction,
    crossfade_weights,
    implausible_fraction,
    reconstruct_array,
    stitch,
)
from innpar_freia.reconstruct_file import (
    ReconstructOptions,
    _upside_down_warnings,
    pulse_rate_bpm,
    reconstruct_file,
)

MODEL_FS, L = 125.0, 625


def traced_peak(call: Callable[[], Any]) -> int:
    """Bytes allocated at the most while ``call()`` runs, beyond what was held before."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def per_window(windows: np.ndarray) -> np.ndarray:
    """A model whose answer for a window depends on that window alone, with a level of its
    own (neighbours disagree where they overlap, as a network's outputs do)."""
    z = (windows - windows.mean(axis=1, keepdims=True)) / windows.std(axis=1, keepdims=True)
    return 100.0 + 15.0 * z + 8.0 * np.sin(windows.sum(axis=1, keepdims=True))


def pulse(seconds: float, fs: float, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * fs)) / fs
    rng = np.random.default_rng(seed)
    return np.sin(2 * np.pi * 1.1 * t) + 0.2 * np.sin(0.3 * t) + 0.01 * rng.standard_normal(t.size)


def same(a: Reconstruction, b: Reconstruction) -> None:
    assert a.signal.tobytes() == b.signal.tobytes()  # NaN where NaN, every bit alike
    assert a.gaps == b.gaps and a.n_windows == b.n_windows and a.delay_s == b.delay_s


@pytest.mark.parametrize("fs", [MODEL_FS, 250.0])
@pytest.mark.parametrize("direction", ["ppg2abp", "abp2ppg"])
def test_windows_in_blocks_give_the_same_reconstruction(fs: float, direction: str) -> None:
    """Blocks of 1, 3 or 512 windows: the same output, bit for bit, as one block of every
    window of a run (at the model's rate, where a run is stitched into the output, and at
    another rate), with gaps, runs shorter than a window and a delay; and ``predict`` is
    never given more windows than a block (all of a run's windows went at once)."""
    x = pulse(1700, fs) * (30 if direction == "abp2ppg" else 1) + (
        90 if direction == "abp2ppg" else 0
    )
    x[round(100 * fs) : round(103 * fs)] = np.nan
    x[round(110 * fs) : round(112 * fs)] = np.nan  # 7 s between: shorter than a window
    x[round(1600 * fs) : round(1601 * fs)] = np.nan
    sizes: list[int] = []

    def predict(windows: np.ndarray) -> np.ndarray:
        sizes.append(len(windows))
        return per_window(windows)

    def run(block: int | None) -> Reconstruction:
        return reconstruct_array(
            x, fs, predict, MODEL_FS, L, direction=direction, delay_s=0.2, block_windows=block
        )

    whole = run(10**6)
    assert max(sizes) > 512  # the longest run's windows in one call
    for block in (1, 3, 512, None):
        sizes.clear()
        same(run(block), whole)
        assert max(sizes) <= (block or reconstruct.BLOCK_WINDOWS)
    assert whole.gaps and np.isnan(whole.signal).any() and np.isfinite(whole.signal).any()


def test_block_windows_is_checked() -> None:
    x = pulse(60, MODEL_FS)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="block_windows must be a whole number >= 1"):
            reconstruct_array(x, MODEL_FS, per_window, MODEL_FS, L, block_windows=bad)
    # A numpy integer (a size from an array's shape) is a whole number, as batch_size's is.
    one = reconstruct_array(x, MODEL_FS, per_window, MODEL_FS, L, block_windows=np.int64(3))
    np.testing.assert_array_equal(
        one.signal, reconstruct_array(x, MODEL_FS, per_window, MODEL_FS, L, block_windows=3).signal
    )


def test_stitch_is_the_weighted_average_of_its_windows() -> None:
    """``stitch`` (now the one-block case of the block-wise stitching) as it was: each
    sample the weighted mean of the windows over it, NaN where none is."""
    rng = np.random.default_rng(4)
    windows = rng.standard_normal((7, 50))
    starts = np.array([0, 20, 40, 45, 120, 150, 160])
    w = crossfade_weights(50)
    acc, wsum = np.zeros(230), np.zeros(230)
    for s, win in zip(starts, windows, strict=True):
        acc[s : s + 50] += w * win
        wsum[s : s + 50] += w
    expected = np.full(230, np.nan)
    expected[wsum > 0] = acc[wsum > 0] / wsum[wsum > 0]
    assert stitch(windows, starts, 230).tobytes() == expected.tobytes()
    assert np.isnan(stitch(windows[:0], starts[:0], 5)).all()


def test_a_long_run_is_reconstructed_without_its_window_matrix() -> None:
    """Guards against a run's windows, their predictions, a padded copy and the stitching's
    sums all existing at once: about 10 float64 copies of the recording beside it (a day
    at 125 Hz: 1.1 GB). A block at a time, an hour takes less than 4."""
    x = pulse(3600, MODEL_FS)
    peak = traced_peak(
        lambda: reconstruct_array(x, MODEL_FS, per_window, MODEL_FS, L, block_windows=64)
    )
    assert peak < 4 * x.nbytes, peak / x.nbytes


def test_gaps_are_filled_as_from_every_valid_sample() -> None:
    """``fill_gaps`` interpolates each gap between the valid samples beside it: the same
    numbers as interpolating from every valid sample, which took four more arrays of the
    signal's length."""
    rng = np.random.default_rng(2)
    for trial in range(60):
        n = int(rng.integers(2, 2000))
        x = rng.standard_normal(n) * 10 ** rng.uniform(-3, 3, n)
        bad = rng.random(n) < [0.01, 0.3, 0.9][trial % 3]
        bad[: rng.integers(0, n)] |= trial % 5 == 0  # gaps at the ends too
        bad[rng.integers(0, n) :] |= trial % 7 == 0
        x[bad] = rng.choice([np.nan, np.inf, -np.inf], int(bad.sum()))
        filled, got_bad = qc.fill_gaps(x)
        assert np.array_equal(got_bad, bad)
        if bad.any() and not bad.all():
            at = np.arange(n)
            assert filled.tobytes() == np.interp(at, at[~bad], x[~bad]).tobytes()
    x = pulse(3600, MODEL_FS)
    x[::1000] = np.nan
    assert traced_peak(lambda: qc.fill_gaps(x)) < 1.5 * x.nbytes


def test_step_skewness_takes_one_copy_of_the_steps() -> None:
    x = pulse(3600, MODEL_FS)
    steps = np.diff(x)
    expected = float(np.mean(((steps - steps.mean()) / steps.std()) ** 3))
    assert qc.step_skewness(x) == expected
    assert qc.step_skewness(np.ones(50)) == 0.0
    assert traced_peak(lambda: qc.step_skewness(x)) < 2.5 * x.nbytes


def test_the_input_warnings_take_less_memory() -> None:
    """The pulse rate from the spectrum (gaps bridged as ``fill_gaps`` does, centred in
    place) and the upside-down check (``step_skewness`` in place): the same answers as
    before, in 5 and 4 copies of the recording where they took 7 and 5."""
    from scipy import signal as sps

    x = synthesize_recording(0, 60.0, MODEL_FS, seed=7).ppg
    x[5000:5200] = np.nan
    valid = np.isfinite(x)
    at = np.arange(x.size)
    bridged = np.interp(at, at[valid], x[valid])
    f, power = sps.welch(bridged - bridged.mean(), fs=MODEL_FS, nperseg=2000, detrend="linear")
    band = (f >= 0.5) & (f <= 30.0)
    assert pulse_rate_bpm(x, MODEL_FS) == float(60.0 * f[band][np.argmax(power[band])])
    assert traced_peak(lambda: pulse_rate_bpm(x, MODEL_FS)) < 5.6 * x.nbytes
    assert _upside_down_warnings(-x, MODEL_FS, "ppg")
    assert traced_peak(lambda: _upside_down_warnings(x, MODEL_FS, "ppg")) < 4.6 * x.nbytes


def test_implausible_fraction_counts_in_place() -> None:
    signal = np.where(np.arange(400_000) % 3 == 0, 300.0, 100.0)
    signal[:1000] = np.nan
    result = Reconstruction(signal, np.isfinite(signal), MODEL_FS, "ppg2abp", [], 1)
    x = signal[result.valid]
    assert implausible_fraction(result) == float(np.mean((x < 20) | (x > 250)))
    assert traced_peak(lambda: implausible_fraction(result)) < 0.5 * signal.nbytes


def test_reading_an_npz_keeps_its_float64_channels_as_read(tmp_path: Path) -> None:
    """Each channel was copied beside the arrays read (four copies for two channels); the
    fingerprint hashed a bytes copy of its channel."""
    ppg, abp = pulse(3600, MODEL_FS), pulse(3600, MODEL_FS, seed=1)
    path = tmp_path / "rec.npz"
    np.savez(path, ppg=ppg, abp=abp, fs=MODEL_FS)
    rec = read_npz(path)
    assert rec.signals["ppg"].tobytes() == ppg.tobytes()
    assert traced_peak(lambda: read_npz(path)) < 2.5 * ppg.nbytes
    assert traced_peak(lambda: rec.fingerprint("ppg")) < 0.5 * ppg.nbytes


def test_a_csv_time_column_is_not_read_as_text_when_numbers_do(tmp_path: Path) -> None:
    """The cells of the time column as text (a Python string a sample, 14 copies of the
    channels' size for a 3-column file) are read only for a clock that needs its text."""
    n = 200_000
    path = tmp_path / "rec.csv"
    t = np.arange(n) / MODEL_FS
    np.savetxt(
        path,
        np.column_stack([t, pulse(n / MODEL_FS, MODEL_FS)]),
        fmt=["%.3f", "%.6g"],
        delimiter=",",
        header="time,ppg",
        comments="",
    )
    rec = read_csv(path)
    assert rec.fs == MODEL_FS and rec.n_samples == n
    assert traced_peak(lambda: read_csv(path)) < 10 * n * 8


def test_a_csv_recording_is_written_a_block_at_a_time(tmp_path: Path) -> None:
    """The same text as the whole file built in memory first (50 bytes a sample), which
    it no longer is."""
    import csv
    import io

    values = 90 + 30 * pulse(3600, MODEL_FS)
    values[100:300] = np.nan
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["time_s", "ABP"])
    for i, v in enumerate(values):
        writer.writerow([f"{3600 + i / MODEL_FS:.6f}", "" if np.isnan(v) else f"{v:.6g}"])

    def write() -> Path:
        with StagedOutputs() as staged:
            write_recording(
                staged, tmp_path / "abp.csv", "csv", MODEL_FS, "ABP", values, "mmHg", start_s=3600.0
            )
        return tmp_path / "abp.csv"

    assert traced_peak(write) < 2 * values.nbytes
    assert write().read_text() == buf.getvalue()


def outputs(summary: dict[str, Any], folder: Path) -> dict[str, bytes]:
    """Every file a reconstruction wrote, by name, the summary with its paths made alike."""
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    text = json.dumps({k: v for k, v in summary.items() if k not in ("outputs",)})
    files["summary.json"] = text.replace(str(folder), "OUT").encode()
    files.pop("abp.summary.json")
    return files


def test_a_recording_reconstructed_in_tiny_blocks_gives_the_same_files(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reconstruction file, the beats table, the summary (calibration, comparison with
    the reference, gaps, warnings) byte for byte alike with one window a block and with
    the default. The network is run window by window here, so that its answers do not
    depend on the batches it is given (CPU convolutions differ in the last bits with the
    batch size)."""
    from innpar_freia.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    model_predict = ckpt.predict_abp
    monkeypatch.setattr(
        ckpt,
        "predict_abp",
        lambda w: np.concatenate([model_predict(w[i : i + 1]) for i in range(len(w))]),
    )
    rec = synthesize_recording(0, 12.0, 125.0, seed=7)
    ppg = -rec.ppg  # upside down: a warning
    ppg[20_000:21_000] = np.nan
    path = tmp_path / "rec.npz"
    np.savez(path, ppg=ppg, abp=rec.abp, fs=125.0)
    opts = ReconstructOptions(delay_s=0.2, calibration="reference", reference_abp="abp")

    def run(name: str) -> dict[str, bytes]:
        folder = tmp_path / name
        folder.mkdir()
        return outputs(reconstruct_file(ckpt, path, folder / "abp.npz", opts), folder)

    default = run("default")
    monkeypatch.setattr(reconstruct, "BLOCK_WINDOWS", 1)
    assert run("tiny") == default
    summary = json.loads(default["summary.json"])
    assert "upside-down" in summary["warning"] and summary["windows"] > 100
    assert summary["calibration"] and summary["reference"]["n_windows"]


def test_blocks_of_the_network_batch_give_the_network_the_same_batches(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the checkpoint's own batches: blocks of 512 windows (its batch) give the
    same files as the default block, for a run of more than 512 windows."""
    rec = synthesize_recording(2, 25.0, 125.0, seed=8)
    path = tmp_path / "rec.npz"
    np.savez(path, ppg=rec.ppg, fs=125.0)
    ckpt = tiny_run / "checkpoints" / "best.pt"

    def run(name: str) -> dict[str, bytes]:
        folder = tmp_path / name
        folder.mkdir()
        return outputs(reconstruct_file(ckpt, path, folder / "abp.npz"), folder)

    default = run("default")
    monkeypatch.setattr(reconstruct, "BLOCK_WINDOWS", 512)
    assert run("batch") == default
    assert json.loads(default["summary.json"])["windows"] > 512


def test_reconstructing_a_file_holds_a_few_copies_of_the_recording(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the whole of ``reconstruct_file`` on an hour of PPG and ABP (blocks of 64
    windows, so that a block is as small beside an hour as the default's beside a day): it
    took 10.3 float64 copies of a channel (the windows of a run), 7.2 still with the ABP
    channel kept to the end, 7.4 with the input's warnings worked out beside the
    reconstruction; now 6.2, the most while the input's pulse spectrum (welch) is taken."""
    rec = synthesize_recording(3, 60.0, 125.0, seed=9)
    path = tmp_path / "rec.npz"
    np.savez(path, ppg=rec.ppg, abp=rec.abp, fs=125.0)
    from innpar_freia.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    monkeypatch.setattr(reconstruct, "BLOCK_WINDOWS", 64)  # an hour's peak, as a day's
    peak = traced_peak(
        lambda: reconstruct_file(
            ckpt, path, tmp_path / "abp.npz", ReconstructOptions(calibration="120/80")
        )
    )
    assert peak < 6.7 * rec.ppg.nbytes, peak / rec.ppg.nbytes
