"""The leakage check's shifted copies: one stretch of signal at another place in two windows
of different parts (two recordings of one monitor that started at different times, or one
recording windowed on another grid). Window signatures cannot see those (the beats do not
line up), and the provided real folds hold 115 such pairs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import pulse_recording, run_cli

from innpar_freia.data.bp_benchmark import import_bp_benchmark
from innpar_freia.data.leakage import (
    check_leakage,
    overlap_correlation,
    segment_geometry,
    segment_starts,
)
from innpar_freia.data.store import WindowWriter

FS = 125.0
N = 625  # 5-s windows
OFFSET = 187  # the copies' windows start 1.496 s into the original's


def _cut(x: np.ndarray, starts: list[int]) -> np.ndarray:
    return np.stack([x[s : s + N] for s in starts])


def _file(path: Path, parts: list[tuple[np.ndarray, np.ndarray, str, int]]) -> Path:
    """A window file of (PPG windows, ABP windows, subject, fold) groups; ids s<subject>_<k>."""
    with WindowWriter(path, fs=FS, window_length=N, source_format="t") as w:
        for ppg, abp, subject, fold in parts:
            ids = [f"{subject}_{k}" for k in range(len(ppg))]
            w.append(ppg, abp, subject=[subject] * len(ppg), window_id=ids, fold=fold)
    return path


def _copies_file(path: Path, copy_fold: int = 1, noise: tuple[float, float] = (0, 0)) -> Path:
    """Subject a (fold 0): 4 windows of a recording; subject b (fold ``copy_fold``): 3
    windows of the same recording starting OFFSET samples later, the PPG at another gain
    and offset, the ABP 2 mmHg higher (another transducer zero), each signal with Gaussian
    noise of the given SD; subjects c (fold 0) and d (fold 1): windows of other recordings.
    b's window k shares 625 - 187 = 438 samples (3.504 s) with a's window k and 187
    samples (1.496 s, less than the 2 s a copy must share) with a's window k + 1."""
    ppg, abp = pulse_recording(25, seed=1)
    rng = np.random.default_rng(9)
    starts = [0, N, 2 * N, 3 * N]
    copy_starts = [OFFSET + k * N for k in range(3)]
    ppg_b = 3 * _cut(ppg, copy_starts) + 1 + noise[0] * rng.normal(size=(3, N))
    abp_b = _cut(abp, copy_starts) + 2 + noise[1] * rng.normal(size=(3, N))
    other = [pulse_recording(12, seed=s) for s in (2, 3)]
    return _file(
        path,
        [
            (_cut(ppg, starts), _cut(abp, starts), "a", 0),
            (ppg_b, abp_b, "b", copy_fold),
            (_cut(other[0][0], [0, N]), _cut(other[0][1], [0, N]), "c", 0),
            (_cut(other[1][0], [0, N]), _cut(other[1][1], [0, N]), "d", 1),
        ],
    )


def _fold(report) -> dict:
    return next(p for p in report.to_dict()["partitions"] if p["partition"] == "fold")


def test_overlap_correlation_lays_the_second_window_shift_samples_later() -> None:
    a = np.array([0.0, 1, 2, 3, 4, 5])
    b = np.array([2.0, 3, 5, 4, 9, 1])  # b[t - 2] = a[t] for t = 2, 3 only
    r, n = overlap_correlation(a, b, 2)
    assert n == 4
    # a[2:6] = 2 3 4 5 against b[0:4] = 2 3 5 4, less their means: (-1.5 -.5 .5 1.5)
    # and (-1.5 -.5 1.5 .5); by hand r = (2.25 + .25 + .75 + .75) / 5 = 0.8
    assert r == pytest.approx(0.8)
    r, n = overlap_correlation(b, a, -2)  # the same overlap seen from b
    assert (r, n) == (pytest.approx(0.8), 4)
    assert overlap_correlation(a, 2 * a + 1, 0) == (pytest.approx(1.0), 6)
    assert overlap_correlation(a, np.ones(6), 0) == (0.0, 6)  # a constant overlap
    assert overlap_correlation(a, a, 5)[1] == 1


def test_segments_start_a_quarter_second_before_each_beat_and_fit_the_window() -> None:
    """Beats at 1.0, 2.0 and 3.5 s of a 5-s window (peaks at samples 125, 250, 437): the
    segments (2 s, 0.25 s lead) start at 94 and 219, each with its beat period; the last
    beat has none after it, and its segment would end past the window."""
    assert segment_geometry(FS, N) == (250, 31)
    assert segment_geometry(FS, 200) == (100, 31)  # at most half the window
    t = np.arange(N) / FS
    abp = 70 + sum(40 * np.exp(-(((t - c) / 0.05) ** 2)) for c in (1.0, 2.0, 3.5))
    rows, first, period = segment_starts(np.stack([abp, 2 * abp - 30]), FS)
    assert rows.tolist() == [0, 0, 1, 1]  # the same anchors at another gain
    assert first.tolist() == [94, 219, 94, 219]
    assert period.tolist() == [125, 187, 125, 187]
    flat = segment_starts(np.full((1, N), 80.0), FS)
    assert all(len(v) == 0 for v in flat)
    # Two beats: the second's segment (219-469) fits, but no beat follows it in the window,
    # so it has no period to be compared by: one segment.
    two = 70 + sum(40 * np.exp(-(((t - c) / 0.05) ** 2)) for c in (1.0, 2.0))
    assert [v.tolist() for v in segment_starts(two[None], FS)] == [[0], [94], [125]]
    # A clipped (flat) top anchors at its first sample only: one segment per beat.
    clipped = np.minimum(abp, 100.0)
    rows, first, period = segment_starts(clipped[None], FS)
    top = np.flatnonzero(clipped[:200] == 100.0)[0]  # the first clipped sample of beat 1
    assert first.tolist() == [top - 31, first[1]] and len(first) == 2


def test_a_shifted_copy_in_another_fold_is_found_with_its_shift(tmp_path: Path) -> None:
    """Subject b's windows are a's recording 1.496 s later, at another gain: 3 window pairs
    sharing 3.504 s each (the 1.496-s overlaps with a's next windows are too short), which
    neither the hashes nor the window signatures see."""
    report = check_leakage(_copies_file(tmp_path / "a.h5"))
    p = _fold(report)
    assert p["exact_duplicate_windows"] == 0 and p["near_duplicate_pairs"] == 0
    assert p["subjects_in_several_parts"] == 0
    assert p["shifted_copy_pairs"] == 3 and p["shifted_copy_windows"] == 6
    assert p["leakage"] and report.leaks
    pairs = {(e["a"]["window"], e["b"]["window"]) for e in p["shifted_examples"]}
    assert pairs == {("a_0", "b_0"), ("a_1", "b_1"), ("a_2", "b_2")}
    for e in p["shifted_examples"]:
        assert (e["a"]["fold"], e["b"]["fold"]) == ("0", "1")
        assert e["shift_seconds"] == pytest.approx(OFFSET / FS)
        assert e["overlap_seconds"] == pytest.approx((N - OFFSET) / FS)
        assert e["ppg_corr"] > 0.99999 and e["abp_corr"] > 0.99999
    assert p["shifted_subject_pairs"] == 1
    assert p["shifted_subject_examples"] == [
        {"a": "a", "a_fold": "0", "b": "b", "b_fold": "1", "window_pairs": 3}
    ]


def test_a_shifted_copy_in_its_own_fold_is_not_leakage(tmp_path: Path) -> None:
    p = _fold(check_leakage(_copies_file(tmp_path / "a.h5", copy_fold=0)))
    assert p["shifted_copy_pairs"] == 0 and not p["leakage"]


@pytest.mark.parametrize(
    ("noise", "found"),
    [
        ((0.0, 0.0), 3),  # the same samples
        ((0.0, 0.3), 3),  # the ABP noisier (r 0.99965-0.99972), the PPG the same samples
        ((0.03, 0.3), 0),  # and the PPG too (r 0.9996): alike, not one recording
    ],
)
def test_a_copy_carries_the_same_samples_in_one_signal(tmp_path, noise, found: int) -> None:
    """A shifted copy must correlate at 0.9999 in one signal (and 0.999 in both): windows
    of one subject a beat apart, or of synthetic subjects, reach 0.999 in both but not the
    same samples. The noise SDs (copies' PPG SD ~1.16, ABP SD ~12.2) put the correlations
    of the overlaps at the values noted, measured once with ``overlap_correlation``."""
    p = _fold(check_leakage(_copies_file(tmp_path / "a.h5", noise=noise)))
    assert p["shifted_copy_pairs"] == found
    for e in p["shifted_examples"]:
        assert min(e["ppg_corr"], e["abp_corr"]) >= 0.999
        assert max(e["ppg_corr"], e["abp_corr"]) >= 0.9999


def test_a_copy_also_found_by_its_bytes_is_not_counted_again(tmp_path: Path) -> None:
    """b's first window is a's first, byte for byte, in fold 1 (an exact duplicate); it
    is not also a shifted copy (at shift 0, or one beat away)."""
    ppg, abp = pulse_recording(12, seed=1)
    other = pulse_recording(12, seed=2)
    path = _file(
        tmp_path / "a.h5",
        [
            (_cut(ppg, [0, N]), _cut(abp, [0, N]), "a", 0),
            (_cut(ppg, [0]), _cut(abp, [0]), "b", 1),
            (_cut(other[0], [0]), _cut(other[1], [0]), "c", 1),
        ],
    )
    p = _fold(check_leakage(path))
    assert p["exact_duplicate_windows"] == 2 and p["shifted_copy_pairs"] == 0


def test_data_check_prints_the_shifted_copies_and_the_subjects_to_merge(tmp_path) -> None:
    path = _copies_file(tmp_path / "a.h5")
    result = run_cli("data", "check", path)
    assert result.exit_code == 3, result.output
    assert "shifted copies (one stretch of signal at another place in the window): 3 pairs, " \
           "6 windows, 1 pair of subjects" in result.output  # fmt: skip
    assert "a_0 (fold 0) = b_0 (fold 1): the second starts 1.496 s after the first, " \
           "3.50 s shared" in result.output  # fmt: skip
    assert "subjects a (fold 0) and b (fold 1) share signal: 3 window pairs" in result.output
    assert "'innpar data split --folds K --join-shared' keeps subjects" in result.stderr
    result = run_cli("data", "check", path, "--json")
    assert json.loads(result.stdout)["partitions"][0]["shifted_copy_pairs"] == 3


@pytest.mark.realdata
def test_the_real_folds_hold_shifted_copies_of_eight_record_pairs(real_data, tmp_path) -> None:
    """Records of the provided folds overlap in time at whole-second shifts (one patient's
    alarms recorded by one monitor): 115 window pairs, 178 windows, between the records
    listed, sample by sample identical up to the ADC gain (r > 0.99999 in at least one
    signal)."""
    bpb = tmp_path / "bpb.h5"
    import_bp_benchmark(real_data / "bp_benchmark", bpb)
    p = _fold(check_leakage(bpb))
    assert p["shifted_copy_pairs"] == 115 and p["shifted_copy_windows"] == 178
    joined = {
        frozenset((e["a"].removeprefix("c2015_"), e["b"].removeprefix("c2015_"))): e["window_pairs"]
        for e in p["shifted_subject_examples"]
    }
    assert joined == {
        frozenset(("test_710", "training_199")): 27,
        frozenset(("training_541", "test_702")): 22,
        frozenset(("training_541", "test_554")): 20,
        frozenset(("test_702", "test_554")): 18,
        frozenset(("training_238", "training_146")): 15,
        frozenset(("training_317", "training_169")): 6,
        frozenset(("training_377", "training_233")): 5,
        frozenset(("training_541", "training_133")): 2,
    }
    for e in p["shifted_examples"]:
        assert max(e["ppg_corr"], e["abp_corr"]) > 0.99999
        assert e["shift_seconds"] == round(e["shift_seconds"])  # whole seconds


def _fold_of(path: Path) -> dict[str, set[int]]:
    import h5py

    with h5py.File(path, "r") as fh:
        subjects = [s.decode() if isinstance(s, bytes) else str(s) for s in fh["subject"][:]]
        folds = fh["fold"][:].tolist()
    out: dict[str, set[int]] = {}
    for s, f in zip(subjects, folds, strict=True):
        out.setdefault(s, set()).add(f)
    return out


def test_shared_signal_links_subjects_whatever_their_fold(tmp_path: Path) -> None:
    """a and b share signal (3 shifted pairs) in one fold as in two; c shares an exact
    window with d (byte for byte, 1 pair), and nothing else is linked: groups {a, b},
    {c, d}."""
    from innpar_freia.data.leakage import shared_signal

    for copy_fold in (0, 1):
        path = _copies_file(tmp_path / f"a{copy_fold}.h5", copy_fold=copy_fold)
        shared = shared_signal(path)
        assert shared.links == [{"a": "a", "b": "b", "exact": 0, "near": 0, "shifted": 3}]
        assert shared.joined == [["a", "b"]]
        assert shared.groups == {"a": "a", "b": "a", "c": "c", "d": "d"}
    ppg, abp = pulse_recording(12, seed=2)
    other = pulse_recording(12, seed=3)
    path = _file(
        tmp_path / "exact.h5",
        [
            (_cut(ppg, [0, N]), _cut(abp, [0, N]), "c", 0),
            (np.vstack([_cut(ppg, [0]), _cut(other[0], [0])]),
             np.vstack([_cut(abp, [0]), _cut(other[1], [0])]), "d", 1),
        ],
    )  # fmt: skip
    shared = shared_signal(path)
    assert shared.links == [{"a": "c", "b": "d", "exact": 2, "near": 0, "shifted": 0}]
    assert shared.joined == [["c", "d"]]
    # The same window twice in d: 2 pairs of windows per signal.
    path = _file(
        tmp_path / "twice.h5",
        [
            (_cut(ppg, [0, N]), _cut(abp, [0, N]), "c", 0),
            (_cut(ppg, [0, 0]), _cut(abp, [0, 0]), "d", 1),
        ],
    )
    assert shared_signal(path).links[0]["exact"] == 4


@pytest.mark.parametrize(("source", "joined"), [("t", [["c", "d"]]), ("synthetic", [])])
def test_near_pairs_join_subjects_except_in_synthetic_files(tmp_path, source, joined) -> None:
    """A window of d correlating with one of c at r ~0.995 (a near duplicate, not a copy)
    joins c and d; in a synthetic file, whose subjects are alike by construction, near pairs
    join subjects only from r = 0.999 (as they are leakage there only from 0.999)."""
    from innpar_freia.data.leakage import shared_signal, signatures

    ppg, abp = pulse_recording(12, seed=2)
    other = pulse_recording(12, seed=3)
    third = pulse_recording(12, seed=4)

    def blend(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # x plus a tenth of y (in SD)
        return x + 0.1 * x.std() / y.std() * (y - y.mean())

    near_ppg = blend(_cut(ppg, [0])[0], _cut(third[0], [0])[0])
    near_abp = blend(_cut(abp, [0])[0], _cut(third[1], [0])[0])
    sig = signatures(np.vstack([_cut(ppg, [0])[0], near_ppg, _cut(abp, [0])[0], near_abp]))
    r_ppg, r_abp = float(sig[0] @ sig[1]), float(sig[2] @ sig[3])
    assert 0.99 < min(r_ppg, r_abp) and max(r_ppg, r_abp) < 0.999  # the premise
    path = tmp_path / "near.h5"
    with WindowWriter(path, fs=FS, window_length=N, source_format=source) as w:
        w.append(_cut(ppg, [0, N]), _cut(abp, [0, N]), subject=["c", "c"], window_id=["c0", "c1"])
        w.append(np.vstack([near_ppg, _cut(other[0], [0])[0]]),
                 np.vstack([near_abp, _cut(other[1], [0])[0]]),
                 subject=["d", "d"], window_id=["d0", "d1"])  # fmt: skip
    assert shared_signal(path).joined == joined


def test_split_join_shared_puts_subjects_sharing_signal_in_one_fold(tmp_path: Path) -> None:
    """Subjects a (4 windows) and b (3, a shifted copy of a's recording), c and d (2
    each): the greedy split puts a and b in two folds of three (largest first, each to the
    emptiest fold), and the check finds the leak; --join-shared places {a, b} as one (7
    windows) with c and d in the other folds, and the check is clean. With 4 folds there
    are only 3 groups to place: refused, the file untouched."""
    path = _copies_file(tmp_path / "a.h5")
    result = run_cli("data", "split", path, "--folds", "3")
    assert result.exit_code == 0, result.output
    folds = _fold_of(path)
    assert folds["a"] != folds["b"]
    assert run_cli("data", "check", path).exit_code == 3
    result = run_cli("data", "split", path, "--folds", "3", "--join-shared")
    assert result.exit_code == 0, result.output
    assert "2 subjects sharing signal joined in 1 group)" in result.output
    assert "one fold for subjects sharing signal: a, b" in result.output
    folds = _fold_of(path)
    assert folds["a"] == folds["b"] and len(folds["a"]) == 1
    assert len({min(folds[s]) for s in "acd"}) == 3
    result = run_cli("data", "check", path)
    assert result.exit_code == 0, result.output
    result = run_cli("data", "split", path, "--folds", "3", "--join-shared", "--json")
    summary = json.loads(result.stdout)
    assert summary["joined_subjects"] == [["a", "b"]]
    assert summary["shared_signal"] == [{"a": "a", "b": "b", "exact": 0, "near": 0, "shifted": 3}]
    before = path.read_bytes()
    result = run_cli("data", "split", path, "--folds", "4", "--join-shared")
    assert result.exit_code == 1
    assert "4 subject-disjoint folds need at least 4 groups of subjects sharing signal, " \
           "but there are 3" in result.output  # fmt: skip
    assert "Traceback" not in result.output and path.read_bytes() == before
    result = run_cli("data", "split", path, "--keep-folds", "--join-shared")
    assert result.exit_code == 2 and "--join-shared does not apply" in result.output
    assert path.read_bytes() == before


def test_split_join_shared_refuses_what_the_subjects_rule_out_before_comparing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More folds than subjects, or a test fold outside the folds, cannot be helped by
    joining subjects (it only merges them): refused at once, without the comparison of every
    window with every other that takes minutes on a big file, the file untouched."""
    import innpar_freia.data.splits as splits

    path = _copies_file(tmp_path / "a.h5")  # subjects a, b, c, d
    before = path.read_bytes()

    def no_search(*args, **kwargs):
        raise AssertionError("the windows were compared")

    monkeypatch.setattr(splits, "shared_signal", no_search)
    for args, message in [
        (("--folds", "5"), "5 subject-disjoint folds need at least 5 subjects, but there are 4"),
        (("--folds", "3", "--test-fold", "3"), "test fold 3 is not one of the folds [0, 1, 2]"),
    ]:
        result = run_cli("data", "split", path, *args, "--join-shared")
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output
        assert path.read_bytes() == before


@pytest.mark.realdata
def test_a_joined_split_of_the_real_folds_leaves_nothing_for_the_check(real_data, tmp_path):
    """A new 4-fold split of the provided windows: subject by subject it leaks (116
    shifted pairs across the new folds); with --join-shared it puts the 15 records of 6
    groups each in one fold, and the check finds nothing across folds or splits."""
    bpb = tmp_path / "bpb.h5"
    import_bp_benchmark(real_data / "bp_benchmark", bpb)
    assert run_cli("data", "split", bpb, "--folds", "4").exit_code == 0
    assert _fold(check_leakage(bpb))["shifted_copy_pairs"] > 0
    result = run_cli("data", "split", bpb, "--folds", "4", "--join-shared", "--json")
    assert result.exit_code == 0, result.output
    groups = [
        sorted(s.removeprefix("c2015_") for s in g)
        for g in json.loads(result.stdout)["joined_subjects"]
    ]
    assert sorted(groups) == sorted(
        [
            ["test_554", "test_702", "training_133", "training_541"],
            ["training_146", "training_238", "training_299"],
            ["test_606", "test_627"],
            ["test_710", "training_199"],
            ["training_169", "training_317"],
            ["training_233", "training_377"],
        ]
    )
    folds = _fold_of(bpb)
    for group in groups:
        assert len(set().union(*(folds["c2015_" + s] for s in group))) == 1
    report = check_leakage(bpb)
    assert not report.leaks, report.to_dict()


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, as a user's stderr does."""

    def isatty(self) -> bool:
        return True


FULL_BAR = "[" + "#" * 24 + "]"


def _drawn(stream: io.StringIO) -> list[str]:
    """The lines a progress bar drew on ``stream``, one a redraw."""
    return [line.rstrip() for line in stream.getvalue().split("\r")]


def _steps_done(drawn: list[str], label: str) -> list[tuple[int, int]]:
    """(step, total) of every redraw of the stage ``label``."""
    ends = [re.fullmatch(rf"{label} \[#*-*\] (\d+)/(\d+).*", d) for d in drawn]
    return [(int(m[1]), int(m[2])) for m in ends if m]


def _drawn_by_cli(monkeypatch, *args: object) -> dict[str, str]:
    """What ``innpar ARGS`` with --json, with --quiet and with neither draws on a
    terminal's stderr (its output holds no bar)."""
    import innpar_freia.cli.data as data_cli

    real = data_cli._BarProgress
    drawn = {}
    for flag in ("--json", "--quiet", ""):
        terminal = _Terminal()
        monkeypatch.setattr(
            data_cli, "_BarProgress", lambda quiet=False, t=terminal: real(quiet, t)
        )
        result = run_cli(*args, *([flag] if flag else []))
        assert result.exit_code == 0, result.output
        assert "\r" not in result.output
        drawn[flag] = terminal.getvalue()
    return drawn


def test_data_check_draws_its_progress_on_a_terminal_only(tmp_path, monkeypatch) -> None:
    """The check compares every window with every other (minutes at 100,000 windows) and
    said nothing meanwhile: each stage (reading, then per partition the near duplicates
    and the shifted copies) draws the import's bar on a terminal's stderr, step by step to
    its total, and clears it at the end; nothing on a pipe, with --quiet or with --json."""
    import innpar_freia.cli.data as data_cli
    from innpar_freia.data.synthetic import synthesize_dataset

    # 72 windows: one block to read; a split column and 3 folds: 3 pairs of parts, each
    # compared in one block of signatures.
    path = synthesize_dataset(tmp_path / "s.h5", subjects=6, minutes=1.0, fs=FS, folds=3)
    term = _Terminal()
    check_leakage(path, progress=data_cli._BarProgress(stream=term))
    drawn = _drawn(term)
    assert f"reading windows {FULL_BAR} 1/1" in drawn
    for name, last in (("splits", "train with val"), ("folds", "1 with 2")):
        assert f"{name}: near duplicates {FULL_BAR} 3/3 {last}" in drawn, drawn
        done = _steps_done(drawn, f"{name}: shifted copies")
        assert done[-1][0] == done[-1][1] > 1, done  # a step per beat period, to the end
        steps = [k for k, _ in done]
        assert steps == sorted(steps)
    assert drawn[-2:] == ["", ""]  # the bar is cleared at the end
    pipe = io.StringIO()
    check_leakage(path, progress=data_cli._BarProgress(stream=pipe))
    assert pipe.getvalue() == ""

    drawn_by = _drawn_by_cli(monkeypatch, "data", "check", path)
    assert drawn_by["--json"] == drawn_by["--quiet"] == ""
    assert f"folds: near duplicates {FULL_BAR} 3/3" in drawn_by[""]


def test_data_split_join_shared_draws_its_progress_on_a_terminal_only(
    tmp_path, monkeypatch
) -> None:
    """--join-shared runs the check's comparisons over the whole file (every window with
    every other: minutes at 100,000 windows) and said nothing meanwhile. It draws the
    check's bar on a terminal's stderr: reading, the near duplicates (a step per block of
    signatures), the shifted copies (a step per beat period), each to its total, cleared at
    the end; nothing on a pipe, with --quiet or with --json, nor without --join-shared
    (a split without it compares nothing)."""
    import innpar_freia.cli.data as data_cli
    from innpar_freia.data.splits import split_file
    from innpar_freia.data.synthetic import synthesize_dataset

    # 72 windows: one block to read, one block of 72 x 72 signatures to compare.
    path = synthesize_dataset(tmp_path / "s.h5", subjects=6, minutes=1.0, fs=FS, folds=3)
    term = _Terminal()
    split_file(path, 3, join_shared=True, progress=data_cli._BarProgress(stream=term))
    drawn = _drawn(term)
    assert f"reading windows {FULL_BAR} 1/1" in drawn, drawn
    assert f"whole file: near duplicates {FULL_BAR} 1/1" in drawn, drawn
    done = _steps_done(drawn, "whole file: shifted copies")
    assert done[-1][0] == done[-1][1] > 1, done  # a step per beat period, to the end
    assert [k for k, _ in done] == sorted(k for k, _ in done)
    assert drawn[-2:] == ["", ""]  # the bar is cleared at the end
    pipe = io.StringIO()
    split_file(path, 3, join_shared=True, progress=data_cli._BarProgress(stream=pipe))
    assert pipe.getvalue() == ""

    drawn_by = _drawn_by_cli(monkeypatch, "data", "split", path, "--folds", "3", "--join-shared")
    assert drawn_by["--json"] == drawn_by["--quiet"] == ""
    assert f"whole file: near duplicates {FULL_BAR} 1/1" in drawn_by[""]
    assert _drawn_by_cli(monkeypatch, "data", "split", path, "--folds", "3")[""] == ""


def test_split_join_shared_names_a_large_group_in_one_short_line(tmp_path: Path) -> None:
    """A group of subjects sharing signal was printed as one line of all its names (of any
    length: hundreds of subjects make a line of thousands of characters). A group of 7
    (s0..s6, each with a copy of one window) is named by its size, its first 5 and how many
    more; a group of 5 (t0..t4) in full; --json lists every subject of both."""
    from helpers import distinct_windows

    ppg, abp = distinct_windows(15, seed=3)
    subjects = [f"s{k}" for k in range(7)] + [f"t{k}" for k in range(5)] + ["x", "y", "z"]
    # Windows 0-6 are one window (row 0), 7-11 another (row 7): exact copies.
    rows = [0] * 7 + [7] * 5 + [12, 13, 14]
    with WindowWriter(tmp_path / "g.h5", fs=FS, window_length=N, source_format="t") as w:
        w.append(ppg[rows], abp[rows], subject=subjects, window_id=[f"w{i}" for i in range(15)])
    result = run_cli("data", "split", tmp_path / "g.h5", "--folds", "3", "--join-shared")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "sharing signal:" in line]
    assert lines == [
        "  one fold for subjects sharing signal: 7 subjects: s0, s1, s2, s3, s4 and 2 more "
        "(--json lists them all)",
        "  one fold for subjects sharing signal: t0, t1, t2, t3, t4",
    ]
    result = run_cli("data", "split", tmp_path / "g.h5", "--folds", "3", "--join-shared", "--json")
    assert json.loads(result.stdout)["joined_subjects"] == [subjects[:7], subjects[7:12]]


def test_the_bar_is_cleared_when_the_last_stage_has_nothing_to_do() -> None:
    """Guards against a bar left on the line: finish cleared only the last stage's, and a
    last stage with no steps (no pairs of parts to compare) left the stage before it drawn,
    with the report printed after it on the same line."""
    import innpar_freia.cli.data as data_cli

    term = _Terminal()
    bar = data_cli._BarProgress(stream=term)
    bar.start(2, "reading windows")
    bar.advance("")
    bar.advance("")
    bar.start(0, "splits: near duplicates")
    bar.finish()
    assert f"reading windows {FULL_BAR} 2/2" in _drawn(term)
    assert term.getvalue().endswith("\r" + " " * 79 + "\r")
