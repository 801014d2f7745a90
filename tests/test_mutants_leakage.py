"""Tests that pin what a mutation audit of the leakage check (innpar_freia.data.leakage: the
beat-anchored segments and their geometry, the overlap correlation, the shifted copies and
how they are confirmed and reported, the report's lists of examples, the partitions
checked, and ``shared_signal``'s links and groups) found unguarded: each one fails when the
bug named in its docstring is put into the package. Expected values are worked out by hand
from tiny windows (spikes on a flat line, at samples chosen for it) or from files whose
copies are made for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import distinct_windows, pulse_recording

from innpar_freia.data.leakage import (
    check_leakage,
    overlap_correlation,
    segment_geometry,
    segment_signatures,
    segment_starts,
    signatures,
)
from innpar_freia.data.store import WindowWriter

FS = 125.0
N = 625  # 5-s windows: segments of 250 samples that start 31 before their peak
OFFSET = 187  # a shifted copy's window starts 1.496 s into the original's


def _spikes(peaks: dict[int, float], base: float = 70.0) -> np.ndarray:
    """A 5-s ABP window: ``base`` everywhere but the samples given."""
    x = np.full(N, base)
    for k, v in peaks.items():
        x[k] = v
    return x


def _write(path: Path, ppg, abp, subjects, ids=None, source: str = "t", **columns) -> Path:
    ids = [f"w{i}" for i in range(len(ppg))] if ids is None else list(ids)
    # An imported file may repeat a window id (the writer refuses one unless told).
    with WindowWriter(path, fs=FS, window_length=N, source_format=source, repeated_ids=True) as w:
        w.append(np.asarray(ppg), np.asarray(abp), subject=list(subjects), window_id=ids, **columns)
    return path


def _part(report, name: str = "fold") -> dict:
    return next(p for p in report.to_dict()["partitions"] if p["partition"] == name)


# ---- segment geometry and anchors ------------------------------------------------------------


def test_the_lead_is_a_quarter_second_rounded_and_at_most_half_the_segment() -> None:
    """Guards against the lead capped at the whole segment instead of half of it (windows
    shorter than 1 s: a 100-sample window at 125 Hz has segments of 50 samples, and a lead
    of min(31, 25) = 25, not 31), and against the lead truncated instead of rounded (at
    75 Hz a quarter second is 18.75 samples: 19, not 18; the segment min(150, 312) = 150)."""
    assert segment_geometry(FS, 100) == (50, 25)
    assert segment_geometry(75.0, N) == (150, 19)


def test_a_peak_is_the_highest_sample_within_0_3_s_either_side_and_a_quarter_prominent() -> None:
    """Guards against an even maximum-filter width (it looked 38 samples back but 37
    ahead), or a narrower one, against a prominence of exactly a quarter of the range not
    counting, and against segments that start at the window's first sample or end at its
    last being dropped (or cut a sample late). Spikes on 70 mmHg (range 40): 100 at
    sample 100 lies 38 samples (0.3 s at 125 Hz, rounded) before 110 at 138, so it is no
    peak; 110 at 31, 300 and 500, and 80 at 406 (10 above the lowest sample there: a
    quarter of 40) are. Segments of 250 start 31 before each peak (0, 107, 269, 375,
    which ends at sample 625, the window's end; 469 would end past it) with the samples
    to the next peak as period (107, 162, 106, 94), and their signatures are those of
    the samples they cover."""
    abp = _spikes({31: 110.0, 100: 100.0, 138: 110.0, 300: 110.0, 406: 80.0, 500: 110.0})
    rows, first, period = segment_starts(abp[None], FS)
    assert rows.tolist() == [0, 0, 0, 0]
    assert first.tolist() == [0, 107, 269, 375]
    assert period.tolist() == [107, 162, 106, 94]
    cut = np.stack([abp[0:250], abp[107:357], abp[269:519], abp[375:625]])
    sig = segment_signatures(abp[None], rows, first, 250)
    np.testing.assert_array_equal(sig, signatures(cut, 32))


def test_a_beat_period_never_reaches_into_the_next_window() -> None:
    """Guards against the period of a window's last peak being taken to the first peak of
    the next window: window 0 has peaks at 125 and 250, window 1 one at 437 only; the
    segment at 250 - 31 = 219 has no next peak in its window (no period), so window 0 has
    one segment (94, period 125) and window 1, whose segment would end past it, none."""
    abp = np.stack([_spikes({125: 110.0, 250: 110.0}), _spikes({437: 110.0})])
    rows, first, period = segment_starts(abp, FS)
    assert (rows.tolist(), first.tolist(), period.tolist()) == ([0], [94], [125])


def test_windows_that_do_not_meet_share_no_samples() -> None:
    """Guards against the overlap correlation counting a negative number of shared
    samples for windows shifted past each other: windows of 6 samples shifted by 6 or
    more either way share none (0), and correlate 0."""
    a = np.arange(6.0)
    b = np.array([2.0, 3, 5, 4, 9, 1])
    for shift in (6, 7, -6, -9):
        assert overlap_correlation(a, b, shift) == (0.0, 0)


# ---- the report's examples -------------------------------------------------------------------


def test_the_report_lists_ten_examples_of_each_kind_and_the_shared_window_id(tmp_path) -> None:
    """Guards against the report listing every shared subject instead of the first ten by
    name (or ten in the order the file holds them), against the window id examples
    listing the subjects, and against the near duplicates examples being cut at other
    than ten. Twelve subjects s11-s00 (in that order) each have a window in fold 0 and one
    in fold 1; the fold-1 windows of s11-s01 are rescaled copies of their fold-0 windows
    (11 near pairs), and the window id 'dup' is in both folds (one id; every other id is
    its own)."""
    ppg, abp = distinct_windows(13)
    ppg1 = np.vstack([2 * ppg[:11] + 1, ppg[12:]])
    abp1 = np.vstack([abp[:11] + 5, abp[12:]])
    subjects = [f"s{k:02d}" for k in reversed(range(12))] * 2  # s11 first
    ids = [f"w{i}" for i in range(11)] + ["dup"] + [f"w{i}" for i in range(12, 23)] + ["dup"]
    path = _write(tmp_path / "a.h5", np.vstack([ppg[:12], ppg1]), np.vstack([abp[:12], abp1]),
                  subjects, ids, fold=[0] * 12 + [1] * 12)  # fmt: skip
    p = _part(check_leakage(path))
    assert p["subjects_in_several_parts"] == 12
    assert [e["id"] for e in p["subject_examples"]] == [f"s{k:02d}" for k in range(10)]
    assert p["window_ids_in_several_parts"] == 1
    assert p["window_id_examples"] == [{"id": "dup", "windows_per_part": {"0": 1, "1": 1}}]
    assert p["near_duplicate_pairs"] == 11 and len(p["near_examples"]) == 10
    assert p["exact_duplicate_windows"] == 0 and p["shifted_copy_pairs"] == 0


def _shifted_pairs(seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """For each seed, a window of a 7-s recording and the window OFFSET samples later (at
    another PPG gain, the ABP 2 mmHg higher): rows x_k then y_k, interleaved. They share
    438 samples, with a beat (at most 1 s apart) whose 2-s segment lies in both."""
    ppg, abp = [], []
    for s in seeds:
        p, a = pulse_recording(7, seed=s)
        ppg += [p[:N], 3 * p[OFFSET : OFFSET + N] + 1]
        abp += [a[:N], a[OFFSET : OFFSET + N] + 2]
    return np.array(ppg), np.array(abp)


def test_the_report_lists_ten_shifted_examples_and_up_to_100_subject_pairs(tmp_path) -> None:
    """Guards against the report listing every shifted copy instead of the ten most
    convincing, and against it cutting the pairs of subjects to merge at ten (they are
    listed up to 100): eleven subjects x0-x10 in fold 0 each have a shifted copy in
    subject y0-y10 of fold 1; and against an example naming its second window's subject
    by the first window's."""
    ppg, abp = _shifted_pairs(list(range(10, 21)))
    subjects = [f"{c}{k}" for k in range(11) for c in "xy"]
    path = _write(tmp_path / "a.h5", ppg, abp, subjects, fold=[0, 1] * 11)
    p = _part(check_leakage(path))
    assert p["shifted_copy_pairs"] == 11 and p["shifted_copy_windows"] == 22
    assert len(p["shifted_examples"]) == 10
    assert p["shifted_subject_pairs"] == 11
    assert sorted((e["a"], e["b"]) for e in p["shifted_subject_examples"]) == sorted(
        (f"x{k}", f"y{k}") for k in range(11)
    )
    for e in p["shifted_examples"]:  # each window named with its own subject and fold
        k = e["a"]["window"].removeprefix("w")
        assert (e["a"]["subject"], e["a"]["fold"]) == (f"x{int(k) // 2}", "0")
        assert (e["b"]["subject"], e["b"]["fold"]) == (f"y{int(k) // 2}", "1")


# ---- guarded only by the real data until now --------------------------------------------------


def test_near_duplicates_need_both_signals_another_part_and_come_strongest_first(tmp_path):
    """Guards (without the real data, which guarded them alone) against near duplicates
    being looked for inside a part, found by the PPG alone, or listed weakest first. Fold
    0: w0, w1 (w0 rescaled: a pair inside the fold, not leakage), w2, w3; fold 1: w4
    (w2's PPG rescaled, its ABP with a tenth of another window's added: r 0.99-0.999),
    w5 (w3 rescaled: r 1), w6 (w0's PPG rescaled under an unrelated ABP: no near pair
    with w0 or w1). Two near pairs, (w3, w5) before (w2, w4)."""
    d_ppg, d_abp = distinct_windows(6, seed=14)
    blend = d_abp[1] + 0.1 * (d_abp[5] - d_abp[5].mean())
    ppg = [d_ppg[0], 2 * d_ppg[0] + 1, d_ppg[1], d_ppg[2], 3 * d_ppg[1], 4 * d_ppg[2] + 2,
           2 * d_ppg[0] - 1]  # fmt: skip
    abp = [d_abp[0], d_abp[0] + 5, d_abp[1], d_abp[2], blend, d_abp[2] - 5, d_abp[4]]
    sig = signatures(np.stack([d_abp[1], blend]))
    assert 0.99 < float(sig[0] @ sig[1]) < 0.999  # the premise
    path = _write(tmp_path / "a.h5", ppg, abp, "abcdefg", fold=[0, 0, 0, 0, 1, 1, 1])
    p = _part(check_leakage(path))
    assert p["near_duplicate_pairs"] == 2 and p["near_duplicate_pairs_above_0_999"] == 1
    pairs = [(e["a"]["window"], e["b"]["window"]) for e in p["near_examples"]]
    assert pairs == [("w3", "w5"), ("w2", "w4")]


def test_shifted_copy_windows_are_counted_once_each(tmp_path: Path) -> None:
    """Guards (without the real data) against the shifted copies' windows counted two a
    pair: x (fold 0) has two shifted copies in fold 1, y1 from 187 samples later and y2
    from 150 later (copies of each other too, but in one fold): 2 pairs of 3 windows."""
    ppg, abp = pulse_recording(7, seed=42)
    starts = [0, OFFSET, 150]
    path = _write(tmp_path / "a.h5", [3 * ppg[s : s + N] + k for k, s in enumerate(starts)],
                  [abp[s : s + N] + k for k, s in enumerate(starts)], ["x", "y1", "y2"],
                  fold=[0, 1, 1])  # fmt: skip
    p = _part(check_leakage(path))
    assert p["shifted_copy_pairs"] == 2 and p["shifted_copy_windows"] == 3


# ---- shifted copies: which partition, which order ----------------------------------------------


def test_each_partition_counts_its_own_shifted_copies_under_its_own_name(tmp_path) -> None:
    """Guards against a partition counting the shifted copies found across another
    partition's parts, against the copies of the folds (the second partition) going
    unconfirmed, and against the pairs of subjects naming their parts 'a_fold'/'b_fold'
    in the split column's report. y is a shifted copy of x in another fold but the same
    split (train); v is one of u in the same fold (0) but another split (u val, v test).
    Splits are compared in the order test, train, val: the split's pair is (v, u), v
    starting 187 samples (1.496 s) before u."""
    ppg, abp = _shifted_pairs([30, 31])  # x, y, u, v
    path = _write(tmp_path / "a.h5", ppg, abp, "xyuv", fold=[0, 1, 0, 0],
                  split=["train", "train", "val", "test"])  # fmt: skip
    report = check_leakage(path)
    fold, split = _part(report, "fold"), _part(report, "split")
    assert fold["shifted_copy_pairs"] == split["shifted_copy_pairs"] == 1
    assert fold["shifted_subject_examples"] == [
        {"a": "x", "a_fold": "0", "b": "y", "b_fold": "1", "window_pairs": 1}
    ]
    assert split["shifted_subject_examples"] == [
        {"a": "v", "a_split": "test", "b": "u", "b_split": "val", "window_pairs": 1}
    ]
    assert split["shifted_examples"][0]["shift_seconds"] == -OFFSET / FS


def test_shifted_copies_are_listed_most_convincing_first(tmp_path: Path) -> None:
    """Guards against the examples of shifted copies listed least convincing first, or
    in window order, and against the pairs of subjects listed fewest window pairs first.
    Subject b (fold 1) is a's window (fold 0) OFFSET samples later with noise of SD 0.3
    mmHg on its ABP (r about 0.9997), q holds two such windows of p's recording without
    noise (r 1 to float32 precision): the two p/q pairs come first, and the subject pair
    (p, q) of two window pairs before (a, b) of one, although a sorts before p; and
    against an example giving the ABP's r as the PPG's (and the other way round)."""
    ppg, abp = _shifted_pairs([40])
    abp[1] += 0.3 * np.random.default_rng(5).normal(size=N)
    p_ppg, p_abp = pulse_recording(12, seed=41)
    starts = [0, N, OFFSET, N + OFFSET]  # p's two windows, then q's
    ppg = np.vstack([ppg, [3 * p_ppg[s : s + N] + 1 for s in starts]])
    abp = np.vstack([abp, [p_abp[s : s + N] + 2 for s in starts]])
    path = _write(tmp_path / "a.h5", ppg, abp, "abppqq", fold=[0, 1, 0, 0, 1, 1])
    p = _part(check_leakage(path))
    assert p["shifted_copy_pairs"] == 3
    pairs = [(e["a"]["window"], e["b"]["window"]) for e in p["shifted_examples"]]
    assert set(pairs[:2]) == {("w2", "w4"), ("w3", "w5")} and pairs[2] == ("w0", "w1")
    noisy = p["shifted_examples"][2]  # its PPG the same samples, its ABP not
    assert noisy["ppg_corr"] > 0.99999 > noisy["abp_corr"] > 0.999
    assert [(e["a"], e["b"], e["window_pairs"]) for e in p["shifted_subject_examples"]] == [
        ("p", "q", 2),
        ("a", "b", 1),
    ]


def test_a_shifted_copy_may_carry_the_same_samples_in_its_ppg_alone(tmp_path: Path) -> None:
    """Guards against the segments' PPG signatures being cut from the ABP (the segment
    rule then asked the ABP for r >= 0.9999 twice): b holds a's PPG samples 187 later (at
    another gain) and its ABP with a slow 0.5-mmHg wave added (another zero drift), so
    the ABP correlates 0.999-0.9999 over the overlap and the PPG 1: a shifted copy."""
    ppg, abp = _shifted_pairs([40])
    abp[1] += 0.5 * np.sin(2 * np.pi * 0.7 * np.arange(N) / FS)
    r_abp = overlap_correlation(abp[0], abp[1], OFFSET)[0]
    assert 0.999 < r_abp < 0.9999  # the premise
    p = _part(check_leakage(_write(tmp_path / "a.h5", ppg, abp, "ab", fold=[0, 1])))
    assert p["shifted_copy_pairs"] == 1 and p["near_duplicate_pairs"] == 0


def test_a_copy_one_sample_later_in_a_synthetic_file_is_leakage(tmp_path: Path) -> None:
    """A real bug, fixed: in a synthetic file a near pair below r 0.999 is expected (its
    subjects share one waveform model) and not leakage, but it was still taken as
    counted, so a shifted copy that is also such a near pair went uncounted: b holds a's
    recording from one sample (8 ms) later, rescaled, in another fold; its signatures
    correlate 0.99-0.999 (a near pair, not a copy), and the check said "no leakage", while
    ``shared_signal`` (and the same file not marked synthetic) found the copy. A copy
    two samples later, whose signatures fall below 0.99, was found all along."""
    from innpar_freia.data.leakage import shared_signal

    p_a, a_a = pulse_recording(7, seed=40)
    p_c, a_c = pulse_recording(7, seed=41)
    ppg = np.stack([p_a[:N], 3 * p_a[1 : N + 1] + 1, p_c[:N]])
    abp = np.stack([a_a[:N], a_a[1 : N + 1] + 2, a_c[:N]])
    r = [float(s[0] @ s[1]) for s in (signatures(ppg[:2]), signatures(abp[:2]))]
    assert 0.99 < min(r) < 0.999  # the premise: a near pair that is not a copy
    path = _write(tmp_path / "a.h5", ppg, abp, "abc", source="synthetic", fold=[0, 1, 1])
    p = _part(check_leakage(path))
    assert p["near_duplicate_pairs"] == 1 and p["near_duplicate_pairs_above_0_999"] == 0
    assert p["shifted_copy_pairs"] == 1 and p["leakage"]
    assert p["shifted_examples"][0]["shift_seconds"] == round(1 / FS, 4)  # b starts 1 later
    assert shared_signal(path).links == [{"a": "a", "b": "b", "exact": 0, "near": 0, "shifted": 1}]


def test_a_copy_found_by_signature_or_by_one_identical_signal_is_not_also_shifted(
    tmp_path: Path,
) -> None:
    """Guards against a pair counted as a near duplicate, or as an exact one by one of
    its signals, being counted as a shifted copy (at shift 0) as well: q is p's window
    rescaled (PPG x2 + 1, ABP + 3: a near duplicate), s holds r's PPG byte for byte under
    its ABP + 3 (an exact duplicate by the PPG). In ``shared_signal`` the same: one near
    window pair joins p and q, one exact pair r and s, no shifted pair."""
    from innpar_freia.data.leakage import shared_signal

    ppg, abp = _shifted_pairs([50, 51])  # only the first window of each pair is used
    ppg = np.vstack([ppg[0], 2 * ppg[0] + 1, ppg[2], ppg[2]])
    abp = np.vstack([abp[0], abp[0] + 3, abp[2], abp[2] + 3])
    path = _write(tmp_path / "a.h5", ppg, abp, "pqrs", fold=[0, 1, 0, 1])
    p = _part(check_leakage(path))
    assert p["near_duplicate_pairs"] == 1 and p["exact_duplicate_windows"] == 2
    assert p["exact_duplicate_pairs"] == {"ppg": 1, "abp": 0}
    assert p["shifted_copy_pairs"] == 0 and p["shifted_subject_pairs"] == 0
    assert shared_signal(path).links == [
        {"a": "p", "b": "q", "exact": 0, "near": 1, "shifted": 0},
        {"a": "r", "b": "s", "exact": 1, "near": 0, "shifted": 0},
    ]


# ---- shared_signal ---------------------------------------------------------------------------


def test_shared_signal_names_pairs_and_groups_by_sorted_subjects(tmp_path: Path) -> None:
    """Guards against a link naming its subjects in the order of their windows (or of
    their first window), against links listed in the order found rather than by subject,
    against groups named by another subject than their first, and against the joined
    groups listed smallest first. Windows, in the file's order: z; a, a rescaled copy of
    z (near); y; b, y's PPG under another ABP (exact by the PPG); c, y's ABP under
    another PPG (exact by the ABP); z again, rescaled (near z's first window and a's).
    Links (a, z) of 2 near pairs (z's two windows are one subject: no link), (b, y) and
    (c, y) exact; groups {b, c, y} then {a, z}; and against pairs of one subject's
    windows being linked."""
    from innpar_freia.data.leakage import shared_signal

    ppg, abp = distinct_windows(5, seed=7)
    ppg = np.vstack([ppg[0], 2 * ppg[0] + 1, ppg[1], ppg[1], ppg[2], 3 * ppg[0] - 2])
    abp = np.vstack([abp[0], abp[0] + 3, abp[1], abp[3], abp[1], abp[0] - 3])
    shared = shared_signal(_write(tmp_path / "a.h5", ppg, abp, "zaybcz"))
    assert shared.links == [
        {"a": "a", "b": "z", "exact": 0, "near": 2, "shifted": 0},
        {"a": "b", "b": "y", "exact": 1, "near": 0, "shifted": 0},
        {"a": "c", "b": "y", "exact": 1, "near": 0, "shifted": 0},
    ]
    assert shared.groups == {"a": "a", "b": "b", "c": "b", "y": "b", "z": "a"}
    assert shared.joined == [["b", "c", "y"], ["a", "z"]]


def test_in_a_synthetic_file_near_pairs_link_subjects_from_0_999_in_both_signals(tmp_path):
    """Guards against a synthetic file's near pairs being kept from r 0.999 in the PPG
    alone: b's PPG is a's rescaled (r 1), its ABP a's with a tenth of another window's
    added (r 0.99-0.999): alike, not a copy, so in a synthetic file nothing is linked (in
    another file the pair is a near duplicate and links a and b)."""
    from innpar_freia.data.leakage import shared_signal

    ppg, abp = distinct_windows(3, seed=11)
    ppg[1], abp[1] = 2 * ppg[0] + 1, abp[0] + 0.1 * (abp[2] - abp[2].mean())
    sig = signatures(abp[:2])
    assert 0.99 < float(sig[0] @ sig[1]) < 0.999  # the premise
    assert shared_signal(_write(tmp_path / "s.h5", ppg, abp, "abc", source="synthetic")).links == []
    assert shared_signal(_write(tmp_path / "t.h5", ppg, abp, "abc")).links == [
        {"a": "a", "b": "b", "exact": 0, "near": 1, "shifted": 0}
    ]


def test_a_group_joined_through_a_chain_is_named_by_its_first_subject(tmp_path) -> None:
    """Guards against a subject's group read from its parent in the union rather than the
    root: c's window is copied into d's (linked first), then a's into c's, so d's parent
    is c and c's is a; every one of a, c, d is in a's group."""
    from innpar_freia.data.leakage import shared_signal

    ppg, abp = distinct_windows(2, seed=12)
    ppg, abp = ppg[[0, 0, 1, 1]], abp[[0, 0, 1, 1]]  # c, d (c's copy), a, c (a's copy)
    shared = shared_signal(_write(tmp_path / "a.h5", ppg, abp, "cdac"))
    assert shared.groups == {"a": "a", "c": "a", "d": "a"}
    assert shared.links == [
        {"a": "a", "b": "c", "exact": 2, "near": 0, "shifted": 0},
        {"a": "c", "b": "d", "exact": 2, "near": 0, "shifted": 0},
    ]


def test_shared_signal_uses_the_threshold_given_and_the_segment_length(
    tmp_path: Path, monkeypatch
) -> None:
    """Guards against ``shared_signal`` comparing at the default 0.99 whatever threshold
    it is given (b's PPG correlates about 0.95 with a's, its ABP 1: linked at 0.9 only),
    and against it, or ``check_leakage``, confirming shifted copies over fewer samples
    than a segment (250 for 5-s windows at 125 Hz) shared."""
    import innpar_freia.data.leakage as leakage

    ppg, abp = distinct_windows(3, seed=13)
    ppg[1], abp[1] = ppg[0] + 0.33 * ppg[2], 2 * abp[0]
    sig = signatures(ppg[:2])
    assert 0.9 < float(sig[0] @ sig[1]) < 0.99  # the premise
    path = _write(tmp_path / "a.h5", ppg, abp, "abc", fold=[0, 1, 1])
    assert leakage.shared_signal(path).links == []
    assert leakage.shared_signal(path, threshold=0.9).links == [
        {"a": "a", "b": "b", "exact": 0, "near": 1, "shifted": 0}
    ]
    overlaps = []
    confirm = leakage._confirm

    def spy(path, candidates, min_overlap):
        overlaps.append(min_overlap)
        return confirm(path, candidates, min_overlap)

    monkeypatch.setattr(leakage, "_confirm", spy)
    leakage.shared_signal(path)
    leakage.check_leakage(path)
    assert overlaps == [250, 250]


def test_shared_signal_reads_a_file_whose_split_column_is_to_be_replaced(tmp_path) -> None:
    """Guards against ``shared_signal`` refusing split values other than train/val/test
    ('innpar data split --join-shared' replaces that column, so it must read such a
    file): b's window is a's, byte for byte, under a hand-written split 'validation'."""
    import h5py

    from innpar_freia.data.leakage import shared_signal

    ppg, abp = distinct_windows(3, seed=9)
    ppg[1], abp[1] = ppg[0], abp[0]
    path = _write(tmp_path / "a.h5", ppg, abp, "abc", split=["train", "test", "val"])
    with h5py.File(path, "r+") as fh:
        fh["split"][1] = "validation"
    assert shared_signal(path).links == [{"a": "a", "b": "b", "exact": 2, "near": 0, "shifted": 0}]


# ---- parts, blocks ----------------------------------------------------------------------------


def test_parts_are_compared_in_the_order_of_their_names(tmp_path: Path) -> None:
    """Guards against the parts taken in the order of a set (for split names that order
    changes from run to run with Python's string hashing; for folds 9 and 2 a set gives
    9 first): parts and pairs are in the order of the names, '2' before '9', so the near
    duplicate's example names the fold-2 window first."""
    ppg, abp = distinct_windows(3, seed=2)
    ppg = np.vstack([ppg, 2 * ppg[1] + 1])
    abp = np.vstack([abp, abp[1] + 5])
    p = _part(check_leakage(_write(tmp_path / "a.h5", ppg, abp, "abcd", fold=[9, 2, 9, 9])))
    assert list(p["parts"]) == ["2", "9"] and p["parts"] == {"2": 1, "9": 3}
    assert p["near_duplicate_pairs"] == 1
    e = p["near_examples"][0]
    assert (e["a"]["window"], e["a"]["fold"], e["b"]["window"], e["b"]["fold"]) == (
        "w1", "2", "w3", "9",
    )  # fmt: skip


def test_blocks_of_windows_read_and_compared_leave_nothing_out(tmp_path, monkeypatch) -> None:
    """Guards against windows of a later block of the file being taken for windows of the
    first (segments located by their row in the block alone), against the last block
    being left unread, or a window past a block read as one of it, when the copies are
    read again, and against blocks of signatures compared leaving out rows or columns:
    read 3 windows at a time and compared 2 x 3 at a time, the eleven shifted copies of
    a file of 25 windows (3 others, then x_k, y_k interleaved: the last, y10, is window
    24 = 3 x 8, and the windows read again are not the file's first rows) and the near
    duplicates of a rescaled copy of every fold-0 window are all found."""
    import innpar_freia.data.leakage as leakage

    ppg, abp = _shifted_pairs(list(range(60, 71)))
    other_ppg, other_abp = distinct_windows(3, seed=8)
    subjects = ["o1", "o2", "o3"] + [f"{c}{k}" for k in range(11) for c in "xy"]
    shifted = _write(tmp_path / "s.h5", np.vstack([other_ppg, ppg]), np.vstack([other_abp, abp]),
                     subjects, fold=[0, 1, 1] + [0, 1] * 11)  # fmt: skip
    ppg, abp = distinct_windows(7, seed=4)
    near = _write(tmp_path / "n.h5", np.vstack([ppg, 2 * ppg + 1]), np.vstack([abp, abp - 4]),
                  [f"s{i}" for i in range(14)], fold=[0] * 7 + [1] * 7)  # fmt: skip
    monkeypatch.setattr(leakage, "READ_BLOCK", 3)
    monkeypatch.setattr(leakage, "COMPARE_BLOCK", 2)
    monkeypatch.setattr(leakage, "COMPARE_COLUMNS", 3)
    p = _part(check_leakage(shifted))
    assert p["shifted_copy_pairs"] == 11 and p["shifted_copy_windows"] == 22
    for e in p["shifted_examples"]:
        i = e["a"]["index"]
        assert (i % 2, e["b"]["index"], e["shift_seconds"]) == (1, i + 1, OFFSET / FS)
    p = _part(check_leakage(near))
    assert p["near_duplicate_pairs"] == 7 and p["near_duplicate_windows"] == 14
    assert {(e["a"]["index"], e["b"]["index"]) for e in p["near_examples"]} == {
        (i, i + 7) for i in range(7)
    }


# ---- candidates from segments, and their confirmation ------------------------------------------


def _unit(r: float) -> list[float]:
    """A 2-point signature correlating ``r`` with (1, 0)."""
    return [r, float(np.sqrt(1 - r * r))]


def test_segment_pairs_need_beat_periods_within_2_samples_and_the_copy_rule() -> None:
    """Guards against beat periods compared within other than 2 samples either way (or
    segments of a longer period taken with a shorter one's), and against the rule a pair
    of segments is held to: r >= 0.999 for the PPG and the ABP, and >= 0.9999 for one.
    Segments 0 (window 0, period 100, first sample 10) and 1 (window 4, period 101, first
    20) of one part, with signatures (1, 0), against segments of the other part: windows
    1-3 alike, of periods 102, 98 and 103; windows 5-8 of period 100 with (PPG r, ABP r)
    (1, 0.995), (0.995, 1), (0.9995, 0.9995) and (1, 0.9995). Kept, with the shift
    first[a] - first[b]: (0, 1) 10 - 4, (0, 2) 10 - 5, (0, 8) 10 - 3, (4, 1) 20 - 4,
    (4, 3) 20 - 6 and (4, 8) 20 - 3."""
    from innpar_freia.data.leakage import Segments, _segment_candidates

    #           part one  | window 1   2    3    5       6       7        8
    rows = np.array([0, 4, 1, 2, 3, 5, 6, 7, 8])
    first = np.array([10, 20, 4, 5, 6, 7, 8, 9, 3])
    period = np.array([100, 101, 102, 98, 103, 100, 100, 100, 100])
    r_ppg = [1, 1, 1, 1, 1, 1, 0.995, 0.9995, 1]
    r_abp = [1, 1, 1, 1, 1, 0.995, 1, 0.9995, 0.9995]
    ppg = np.array([_unit(r) for r in r_ppg], dtype=np.float32)
    abp = np.array([_unit(r) for r in r_abp], dtype=np.float32)
    segments = Segments(rows, first, period, ppg, abp, 250)
    found = _segment_candidates(segments, np.array([0, 1]), np.arange(2, 9))
    assert sorted(map(tuple, found.tolist())) == [
        (0, 1, 6), (0, 2, 5), (0, 8, 7), (4, 1, 16), (4, 3, 14), (4, 8, 17),
    ]  # fmt: skip


def test_a_copy_is_confirmed_at_its_best_shift_by_the_copy_rule(tmp_path: Path) -> None:
    """Guards against the confirmation trying the candidate's shift alone, or a range
    that stops short of +2, keeping the first or the worst shift that passes rather than
    the best, asking for more samples than the minimum overlap, and holding the pairs to
    a looser rule than r >= 0.999 for the PPG and for the ABP (not the PPG's r twice) and
    >= 0.9999 for one. Window 1 is window 0's slow waves (PPG 0.18 Hz, ABP 0.17 Hz) 187
    samples later, rescaled: overlaid at 186, 187 and 188 they pass (187 exactly, 438
    samples shared), at 185 not, so a candidate at 185 is confirmed at 187. Windows 2-4
    are window 1 with noise on the PPG (r about 0.995), the ABP (0.995) or both
    (0.9995): no copies."""
    from innpar_freia.data.leakage import _confirm

    t = np.arange(1000) / FS
    ppg = np.sin(2 * np.pi * 0.18 * t + 0.3)
    abp = 90 + 10 * np.sin(2 * np.pi * 0.17 * t + 1.1)
    a_ppg, a_abp = ppg[:N], abp[:N]
    b_ppg, b_abp = 3 * ppg[OFFSET : OFFSET + N] + 1, abp[OFFSET : OFFSET + N] + 2
    noise = np.random.default_rng(3).normal(size=(4, N))

    def noisy(x: np.ndarray, r: float, k: int) -> np.ndarray:  # r against x, about
        return x + np.sqrt(1 / r**2 - 1) * x[: N - OFFSET].std() * noise[k]

    ppg_rows = [a_ppg, b_ppg, noisy(b_ppg, 0.995, 0), b_ppg, noisy(b_ppg, 0.9995, 1)]
    abp_rows = [a_abp, b_abp, b_abp, noisy(b_abp, 0.995, 2), noisy(b_abp, 0.9995, 3)]
    path = _write(tmp_path / "a.h5", ppg_rows, abp_rows, "abcde")
    rows = [(ppg_rows[j], abp_rows[j]) for j in range(5)]
    for d, passes in [(185, False), (186, True), (187, True), (188, True)]:  # the premise
        rp, ra = (overlap_correlation(x, y, d)[0] for x, y in zip(rows[0], rows[1], strict=True))
        assert (min(rp, ra) >= 0.999 and max(rp, ra) >= 0.9999) == passes, (d, rp, ra)
    for j, (lo, hi) in [(2, (0.99, 0.999)), (3, (0.99, 0.999)), (4, (0.999, 0.9999))]:
        for x, y in zip(rows[0], rows[j], strict=True):
            r = overlap_correlation(x, y, OFFSET)[0]
            assert r == 1 or lo < r < hi, (j, r)  # the premise: a noisy copy, or exact
    candidates = np.array([[0, j, 185] for j in range(1, 5)])
    copies = _confirm(path, candidates, N - OFFSET)
    assert list(copies) == [(0, 1)]
    d, rp, ra, n = copies[0, 1]
    assert (d, n) == (OFFSET, N - OFFSET) and min(rp, ra) > 0.99999


def test_flat_windows_are_no_copies_but_a_flat_window_copied_is_still_found(tmp_path) -> None:
    """A constant PPG (a lost sensor reads 0 in anyone) is the same bytes in every subject
    without being a copy: three subjects' flat PPG windows in three folds were 'identical
    windows', leakage, and joined their subjects for --join-shared. Guards against flat
    windows being hashed like any other, against the exemption reaching the other signal
    (d's window copies a's ABP under a flat PPG: still leakage by the ABP), and against the
    report not counting them."""
    from innpar_freia.data.leakage import shared_signal

    ppg, abp = distinct_windows(4, seed=11)
    ppg[:] = 0.0  # every PPG flat
    abp[2] = 80.0  # c's ABP flat too (at another level than a flushed line elsewhere)
    path = _write(tmp_path / "a.h5", ppg, abp, "abcd", fold=[0, 1, 2, 0])
    report = check_leakage(path)
    assert report.flat == {"ppg": 4, "abp": 1}
    assert report.to_dict()["flat_windows"] == {"ppg": 4, "abp": 1}
    p = _part(report)
    assert not p["leakage"] and p["exact_duplicate_windows"] == 0
    assert shared_signal(path).joined == []
    abp[3] = abp[0]  # d (fold 0) copies a (fold 0): no leakage; into fold 1, leakage
    path = _write(tmp_path / "b.h5", ppg, abp, "abcd", fold=[0, 1, 2, 1])
    p = _part(check_leakage(path))
    assert p["leakage"] and p["exact_duplicate_windows"] == 2
    assert p["exact_duplicate_pairs"] == {"ppg": 0, "abp": 1}
    assert shared_signal(path).joined == [["a", "d"]]
