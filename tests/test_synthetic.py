"""The embedded synthetic data: plausible physiology, determinism, any fs, protocol-readable."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_clean_failure, run_cli

from innpar_freia.data.store import read_info, read_signals
from innpar_freia.data.synthetic import synthesize_dataset, synthesize_recording
from innpar_freia.errors import DataError
from innpar_freia.signal import bp_values_batch, systolic_peaks


@pytest.mark.parametrize("subject", range(12))
def test_physiological_ranges(subject: int) -> None:
    rec = synthesize_recording(subject, minutes=3, fs=125.0, seed=0)
    assert 90 <= rec.beat_sbp.min() and rec.beat_sbp.max() <= 180
    assert 50 <= rec.beat_dbp.min() and rec.beat_dbp.max() <= 110
    assert np.all(rec.beat_sbp - rec.beat_dbp >= 25)
    assert 50 <= rec.beat_hr.min() and rec.beat_hr.max() <= 120
    intervals = np.diff(rec.beat_onsets_s)
    assert np.all((intervals > 0.45) & (intervals < 1.25))  # 48..133 bpm beat to beat
    assert 0.15 <= rec.delay_s <= 0.35


def test_evaluation_protocol_finds_the_generated_beats() -> None:
    fs = 125.0
    rec = synthesize_recording(4, minutes=2, fs=fs, seed=1)
    length = 625
    n = len(rec.abp) // length
    windows = rec.abp[: n * length].reshape(n, length)
    bp = bp_values_batch(windows, fs)
    for i, window in enumerate(windows):
        t0, t1 = i * length / fs, (i + 1) * length / fs
        inside = (rec.beat_onsets_s >= t0) & (rec.beat_onsets_s < t1 - 0.5)
        # one systolic peak per generated beat (edge beats may be cut)
        assert abs(len(systolic_peaks(window, fs)) - inside.sum()) <= 1
        assert abs(bp[i, 0] - np.median(rec.beat_sbp[inside])) < 4.0
        assert abs(bp[i, 1] - np.median(rec.beat_dbp[inside])) < 4.0


def test_a_dicrotic_wave_rises_after_a_trough_in_each_decay() -> None:
    fs = 250.0
    rec = synthesize_recording(0, minutes=0.5, fs=fs, seed=0)
    # Between the systolic peak and the next onset the pressure falls, rises again
    # (dicrotic wave) and falls: a local minimum strictly inside each beat's decay. The
    # notch itself, at valve closure, is pinned in test_mutants_synthetic.py.
    onsets = (rec.beat_onsets_s * fs).astype(int)
    notches = 0
    for a, b in itertools.pairwise(onsets):
        beat = np.convolve(rec.abp[a:b], np.ones(5) / 5, mode="same")
        peak = int(np.argmax(beat[: int(0.3 * fs)]))
        decay = beat[peak : peak + int(0.45 * fs)]
        trough = int(np.argmin(decay[: int(0.3 * fs)]))
        # the dicrotic wave after the notch rises clearly (> 1.5 mmHg) above the notch
        notches += int(decay[trough:].max() - decay[trough] > 1.5 and trough > 0)
    assert notches >= 0.9 * (len(onsets) - 1)


def test_deterministic_and_seed_dependent() -> None:
    a = synthesize_recording(2, minutes=1, fs=125.0, seed=5)
    b = synthesize_recording(2, minutes=1, fs=125.0, seed=5)
    c = synthesize_recording(2, minutes=1, fs=125.0, seed=6)
    assert np.array_equal(a.ppg, b.ppg) and np.array_equal(a.abp, b.abp)
    assert not np.array_equal(a.abp, c.abp)


@pytest.mark.parametrize("fs", [32.0, 100.0, 250.0, 500.0])
def test_any_sampling_rate(fs: float) -> None:
    rec = synthesize_recording(1, minutes=1, fs=fs, seed=0)
    assert len(rec.abp) == round(60 * fs) == len(rec.ppg)
    assert np.all(np.isfinite(rec.ppg)) and np.all(np.isfinite(rec.abp))


def test_dataset_file_is_subject_disjoint_and_aligned(tmp_path: Path) -> None:
    path = synthesize_dataset(tmp_path / "s.h5", subjects=9, minutes=1.0, fs=100.0, seed=2)
    info = read_info(path)
    assert info.fs == 100.0 and info.window_length == 500
    assert info.source_format == "synthetic" and info.provenance["seed"] == 2
    for subject in np.unique(info.subjects):
        assert len(set(info.split[info.subjects == subject])) == 1
        assert len(set(info.fold[info.subjects == subject])) == 1
    assert set(info.split) == {"train", "val", "test"}
    ppg, abp = read_signals(path)
    # aligned: PPG and ABP pulses coincide, so per-window correlation is clearly positive
    z = lambda x: (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)  # noqa: E731
    assert np.mean((z(ppg) * z(abp)).mean(1)) > 0.5


def test_bad_generator_settings(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fs must be at least 16 Hz"):
        synthesize_recording(0, 1, fs=8.0)
    with pytest.raises(DataError, match=r"^subjects \(--subjects\) is 0, not in the range 1 to"):
        synthesize_dataset(tmp_path / "x.h5", subjects=0)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize(
    "given, message",
    [
        ({"subjects": 100_001}, "subjects (--subjects) is 100001, not in the range 1 to 100000"),
        ({"subjects": np.int64(0)}, "subjects (--subjects) is 0, not in the range 1 to 100000"),
        ({"minutes": 0.05}, "minutes (--minutes) is 0.05, not in the range 0.1 to 1440"),
        ({"minutes": 1e6}, "minutes (--minutes) is 1e+06, not in the range 0.1 to 1440"),
        ({"minutes": float("nan")}, "minutes (--minutes) is nan, not in the range 0.1 to 1440"),
        (
            {"folds": 101, "subjects": 200, "minutes": 0.1},
            "folds (--folds) is 101, not in the range 0 to 100",
        ),
        ({"folds": -1}, "folds (--folds) is -1, not in the range 0 to 100"),
        ({"seed": -1}, "seed (--seed) is -1, not at least 0"),
    ],
)
def test_the_api_refuses_what_the_cli_refuses(tmp_path: Path, given: dict, message: str) -> None:
    """Bug: synthesize_dataset checked only fs and window_seconds against the ranges of
    'innpar data synth': subjects=100001 or minutes=1e6 were generated (for as long as the
    disk lasted), minutes=nan failed as "cannot convert float NaN to integer" and seed=-1
    as numpy's "expected non-negative integer". Each is now the error naming the argument,
    its option and the CLI's range, before anything is written."""
    out = tmp_path / "x.h5"
    with pytest.raises(DataError, match=rf"^{re.escape(message)}$"):
        synthesize_dataset(out, **given)
    assert not out.exists()


def test_the_api_and_the_cli_take_the_same_ranges(tmp_path: Path) -> None:
    """One table, both ends: the CLI refuses each bound's neighbour and the function takes
    each bound (a huge seed too: it is compared as the whole number it is)."""
    from innpar_freia.data.limits import SYNTH_RANGES

    out = tmp_path / "t.h5"
    for option, bad in (("--subjects", 100_001), ("--minutes", 1441), ("--folds", 101)):
        r = run_cli("data", "synth", "--out", out, option, bad)
        assert r.exit_code == 2 and "not in the range" in r.output, r.output
    assert SYNTH_RANGES["minutes"][:2] == (0.1, 1440) and SYNTH_RANGES["seed"][:2] == (0, None)
    info = read_info(synthesize_dataset(out, subjects=1, minutes=0.1, seed=10**400))
    assert info.n_windows >= 1
    with pytest.raises(TypeError, match=r"^seed must be a whole number, not 1\.0$"):
        synthesize_dataset(out, seed=1.0, overwrite=True)
    with pytest.raises(TypeError, match=r"^minutes must be a number, not '1'$"):
        synthesize_dataset(out, minutes="1", overwrite=True)


def test_folds_that_cannot_be_subject_disjoint_are_refused_before_writing(tmp_path: Path) -> None:
    """As 'innpar data split' does; the default number of folds fits the subjects."""
    out = tmp_path / "t.h5"
    args = ("data", "synth", "--out", out, "--subjects", 2, "--minutes", 0.5)
    assert_clean_failure(
        run_cli(*args, "--folds", 5),
        out,
        "5 subject-disjoint folds need at least 5 subjects, but there are 2",
    )
    for folds in (1, 2):  # training's nested scheme needs a test, validation and train fold
        assert_clean_failure(run_cli(*args, "--folds", folds), out, "0 (none) or at least 3")
    with pytest.raises(DataError, match="3 subject-disjoint folds need at least 3 subjects"):
        synthesize_dataset(out, subjects=2, minutes=0.5, folds=3)
    assert not out.exists()
    assert run_cli(*args).exit_code == 0  # default: no folds below 3 subjects
    assert set(read_info(out).fold) == {-1}
    again = run_cli(*args)
    assert again.exit_code == 1 and "already exists; choose another name or use --force" in (
        again.output
    )
    assert run_cli(*args, "--folds", 0, "--force").exit_code == 0
    assert set(read_info(out).fold) == {-1}
    # One fold per subject when there are fewer than 5.
    assert run_cli(*args[:4], "--subjects", 3, "--minutes", 0.5, "--force").exit_code == 0
    assert sorted(set(read_info(out).fold)) == [0, 1, 2]
