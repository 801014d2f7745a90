"""Leakage checks of a window file: subjects and window contents shared across partitions.

Two partitions are checked, each when the file has it: the ``split`` column
(train/val/test) and the ``fold`` column (every fold is a test fold in the nested scheme,
so any two folds must be disjoint). Leakage is

* a subject (or window id) with windows in more than one part;
* an exact duplicate: a window whose float32 PPG or ABP bytes equal those of a window in
  another part (sha256 of the bytes); duplicates inside one part are counted, not leakage;
* a near duplicate: a pair from different parts whose 64-point signatures (block means of
  the window, z-scored) correlate above 0.99 for PPG *and* for ABP. This catches copies
  that were rescaled, offset, re-quantised or lightly noised; pairs from different records
  of one subject (unknown to the file) also reach it, and are leakage too. Pairs above
  0.999 are counted separately: those are copies. Signatures are compared with
  matrix products a block at a time, so memory stays bounded; time grows with the product
  of the part sizes;
* a shifted copy: a pair from different parts that holds the same stretch of signal at
  another place in the window (two recordings of one monitor that started at different
  times, windows cut on another grid), rescaled or not. Window signatures miss those (the
  beats do not line up), so each window is also cut into segments of 2 s that start a
  quarter of a second before each systolic peak of its ABP (the same beat starts the same
  segment wherever it lies in the window); segments of different parts whose beat periods
  agree within 2 samples and whose signatures correlate at 0.999 or more for the PPG and
  the ABP, and at 0.9999 for one, name a candidate pair and its shift, and the pair is a
  copy when the two windows, overlaid at that shift (+-2 samples), correlate sample by
  sample by the same rule over at least the segment length. Pairs already counted as
  exact or near duplicates (in a synthetic file, near pairs from 0.999: the others are
  not leakage there) are not counted again.

``shared_signal`` compares every window with every other instead, whatever its part, and
groups the subjects that share signal, for ``innpar data split --join-shared``.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.data.import_report import Progress
from innpar_freia.data.store import SPLITS, open_h5, read_block, read_info

SIGNATURE_POINTS = 64
NEAR_THRESHOLD = 0.99
# Pairs this close in both signals are copies (the same samples re-digitised, rescaled or
# lightly noised); between 0.99 and this, windows are often the same subject at another
# time, or very regular pulses of two subjects. Both are reported; the count is separate.
COPY_THRESHOLD = 0.999
READ_BLOCK = 4096  # windows read from the file at a time
COMPARE_BLOCK = 2048  # rows of a signature block in one matrix product
COMPARE_COLUMNS = 8192  # and its columns (2048 x 8192 float32 products: 64 MiB)
MAX_EXAMPLES = 10
MAX_SUBJECT_PAIRS = 100  # pairs of subjects sharing signal listed in a report
# Shifted copies: segments of this length (at most half the window) begin this long before
# each systolic peak of the ABP; a peak is the highest sample within PEAK_SPACING either
# side that rises at least a quarter of the window's range above the lowest one there.
SEGMENT_SECONDS = 2.0
SEGMENT_LEAD = 0.25
SEGMENT_POINTS = 32
PEAK_SPACING = 0.3
PEAK_PROMINENCE = 0.25
# Anchors (and beat periods) found in two resampled or re-digitised copies can differ by a
# sample or two.
SHIFT_SLACK = 2
# A shifted copy carries the same samples: besides both signals at COPY_THRESHOLD, one of
# them correlates at this or more over the overlap (the copies in the provided data reach
# 0.9999998; one signal can be lower at a record's first seconds, where the two recordings
# were filtered from different starts). Windows of one subject at other times (a beat
# apart) reach 0.9998, and synthetic subjects, drawn from one waveform model, 0.9992.
SAME_SAMPLES = 0.9999


def signatures(x: np.ndarray, points: int = SIGNATURE_POINTS) -> np.ndarray:
    """``(n, L)`` windows -> ``(n, points)`` unit-norm, zero-mean block-mean signatures, so
    that the dot product of two signatures is their Pearson correlation. Constant windows
    get all-zero signatures (they correlate with nothing, and are no copies: ``_hashes``)."""
    x = np.asarray(x, dtype=np.float64)
    length = x.shape[1]
    points = min(points, length)
    edges = np.linspace(0, length, points + 1).round().astype(np.int64)
    sums = np.add.reduceat(x, edges[:-1], axis=1)
    sig = sums / np.diff(edges)
    sig -= sig.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(sig, axis=1, keepdims=True)
    return (sig / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def segment_geometry(fs: float, length: int) -> tuple[int, int]:
    """Length and lead (samples before the peak) of the segments of a window of ``length``
    samples at ``fs``: 2 s and 0.25 s, at most half the window."""
    seg = max(2, min(round(SEGMENT_SECONDS * fs), length // 2))
    return seg, min(round(SEGMENT_LEAD * fs), seg // 2)


def segment_starts(abp: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n, L)`` ABP windows -> (window row, first sample, beat period) of every segment
    that begins ``SEGMENT_LEAD`` before a systolic peak, lies wholly inside its window and
    has a next peak in it (the period is the samples from its peak to the next). A peak is the
    first sample of the highest plateau within ``PEAK_SPACING`` either side that rises at
    least ``PEAK_PROMINENCE`` of the window's range above the lowest sample there, so a
    beat gives the same peak wherever it lies in a window (and at any gain or offset)."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    x = np.asarray(abp, dtype=np.float64)
    length = x.shape[1]
    seg, lead = segment_geometry(fs, length)
    size = 2 * max(1, round(PEAK_SPACING * fs)) + 1
    high = maximum_filter1d(x, size, axis=1, mode="nearest")
    low = minimum_filter1d(x, size, axis=1, mode="nearest")
    span = np.ptp(x, axis=1, keepdims=True)
    peak = (x == high) & (x - low >= PEAK_PROMINENCE * span) & (span > 0)
    peak[:, 1:] &= x[:, 1:] > x[:, :-1]  # the first sample of a flat top
    rows, pos = np.nonzero(peak)  # row by row, in order
    period = np.full(len(pos), -1, dtype=np.int64)
    same = rows[1:] == rows[:-1]
    period[:-1][same] = (pos[1:] - pos[:-1])[same]
    first = pos - lead
    keep = (first >= 0) & (first + seg <= length) & (period > 0)
    return rows[keep], first[keep], period[keep]


def segment_signatures(
    x: np.ndarray, rows: np.ndarray, first: np.ndarray, seg: int, points: int = SEGMENT_POINTS
) -> np.ndarray:
    """Signatures (as ``signatures``) of the segments ``x[rows, first:first + seg]``."""
    if not len(rows):
        return np.zeros((0, min(points, seg)), dtype=np.float32)
    cut = np.asarray(x, dtype=np.float64)[rows[:, None], first[:, None] + np.arange(seg)]
    return signatures(cut, points)


def overlap_correlation(a: np.ndarray, b: np.ndarray, shift: int) -> tuple[float, int]:
    """Pearson correlation of windows ``a`` and ``b`` overlaid so that ``a[t]`` lies on
    ``b[t - shift]`` (``b`` starts ``shift`` samples after ``a`` in their common signal),
    over the samples they share, and how many they share. A constant overlap correlates 0."""
    length = len(a)
    lo, hi = max(0, shift), min(length, length + shift)
    if hi - lo < 2:
        return 0.0, max(0, hi - lo)
    x = np.asarray(a[lo:hi], dtype=np.float64)
    y = np.asarray(b[lo - shift : hi - shift], dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    den = float(np.sqrt((x @ x) * (y @ y)))
    return (float(x @ y) / den if den > 0 else 0.0), hi - lo


def _digests(x: np.ndarray) -> list[bytes | None]:
    """sha256 of each float32 window, ``None`` for a constant line. Two flat windows are the
    same bytes without being copies of one recording (a lost sensor reads 0 in any subject):
    hashed, every flat window of a file was "identical" to every other, and called leakage
    across its folds (and ``--join-shared`` would join their subjects into one group)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    flat = (x == x[:, :1]).all(axis=1)
    return [None if flat[k] else hashlib.sha256(row.tobytes()).digest() for k, row in enumerate(x)]


def _hashes(x: np.ndarray, first: int) -> list[str]:
    """Hex sha256 of each float32 window (rows ``first``, ``first + 1``, ...); a constant
    line gets ``flat:ROW`` instead, a name no other window has (``_digests``)."""
    return [f"{FLAT}{first + k}" if d is None else d.hex() for k, d in enumerate(_digests(x))]


def copy_keys(x: np.ndarray) -> np.ndarray:
    """64-bit keys of the windows' float32 bytes (the first 8 bytes of the sha256 that finds
    exact duplicates), one per window, :data:`NO_KEY` for a constant line (a copy of
    nothing); two windows of other bytes share a key with probability 2**-64 (and a window
    whose key is -1, with that probability, is taken for a flat one). A checkpoint keeps
    its training windows' keys (8 bytes a window and signal) so that ``innpar eval`` finds
    copies of them in any file, whatever their ids."""
    return np.array(
        [
            NO_KEY if d is None else int.from_bytes(d[:8], "little", signed=True)
            for d in _digests(x)
        ],
        dtype=np.int64,
    )


NO_KEY = -1  # copy_keys of a constant line


FLAT = "flat:"
KEYS = ("ppg", "abp")  # the signals, in the order of the hashes and signatures


@dataclass
class PartitionReport:
    """Leakage across the parts of one partition (``split`` or ``fold``)."""

    name: str
    parts: dict[str, int]
    shared_subjects: list[dict[str, Any]] = field(default_factory=list)
    shared_window_ids: list[dict[str, Any]] = field(default_factory=list)
    exact_pairs: dict[str, int] = field(default_factory=dict)
    exact_windows: int = 0
    exact_examples: list[dict[str, Any]] = field(default_factory=list)
    near_pairs: int = 0
    near_copies: int = 0
    near_windows: int = 0
    near_examples: list[dict[str, Any]] = field(default_factory=list)
    shifted_pairs: int = 0
    shifted_windows: int = 0
    shifted_examples: list[dict[str, Any]] = field(default_factory=list)
    shifted_subjects: list[dict[str, Any]] = field(default_factory=list)
    exact_within_parts: int = 0
    # Synthetic subjects are drawn from one waveform model: windows of different subjects
    # can correlate above the threshold without sharing a recording; only copies
    # (r >= COPY_THRESHOLD) are leakage there.
    near_expected: bool = False

    @property
    def leaks(self) -> bool:
        near = self.near_copies if self.near_expected else self.near_pairs
        copies = self.exact_windows or self.shifted_pairs
        return bool(self.shared_subjects or self.shared_window_ids or copies or near)

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.name,
            "parts": self.parts,
            "leakage": self.leaks,
            "subjects_in_several_parts": len(self.shared_subjects),
            "subject_examples": self.shared_subjects[:MAX_EXAMPLES],
            "window_ids_in_several_parts": len(self.shared_window_ids),
            "window_id_examples": self.shared_window_ids[:MAX_EXAMPLES],
            "exact_duplicate_windows": self.exact_windows,
            "exact_duplicate_pairs": self.exact_pairs,
            "exact_examples": self.exact_examples[:MAX_EXAMPLES],
            "near_duplicate_pairs": self.near_pairs,
            "near_duplicate_pairs_above_0_999": self.near_copies,
            "near_duplicates_expected": self.near_expected,
            "near_duplicate_windows": self.near_windows,
            "near_examples": self.near_examples[:MAX_EXAMPLES],
            "shifted_copy_pairs": self.shifted_pairs,
            "shifted_copy_windows": self.shifted_windows,
            "shifted_examples": self.shifted_examples[:MAX_EXAMPLES],
            "shifted_subject_pairs": len(self.shifted_subjects),
            "shifted_subject_examples": self.shifted_subjects[:MAX_SUBJECT_PAIRS],
            "windows_duplicated_within_a_part": self.exact_within_parts,
        }


@dataclass
class LeakageReport:
    path: str
    n_windows: int
    partitions: list[PartitionReport]
    threshold: float
    signature_points: int
    seconds: float = 0.0
    # Windows whose PPG / ABP is a constant line: not compared (see ``_hashes``).
    flat: dict[str, int] = field(default_factory=lambda: {"ppg": 0, "abp": 0})

    @property
    def leaks(self) -> bool:
        return any(p.leaks for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "n_windows": self.n_windows,
            "leakage": self.leaks,
            "checked": [p.name for p in self.partitions],
            "near_threshold": self.threshold,
            "signature_points": self.signature_points,
            "seconds": round(self.seconds, 3),
            "flat_windows": self.flat,
            "partitions": [p.to_dict() for p in self.partitions],
        }


def _shared(labels: np.ndarray, part: np.ndarray, valid: np.ndarray) -> list[dict[str, Any]]:
    where: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for lab, p in zip(labels[valid], part[valid], strict=True):
        where[str(lab)][str(p)] += 1
    out = [
        {"id": lab, "windows_per_part": dict(sorted(parts.items()))}
        for lab, parts in sorted(where.items())
        if len(parts) > 1
    ]
    return out


@dataclass
class Segments:
    """The 2-s segments of every window (see ``segment_starts``) and their signatures."""

    rows: np.ndarray
    first: np.ndarray
    period: np.ndarray
    ppg: np.ndarray
    abp: np.ndarray
    length: int


def _example(info: Any, name: str, part: np.ndarray, i: int, j: int, **extra: Any) -> dict:
    return {
        "a": {"window": str(info.window_ids[i]), "subject": str(info.subjects[i]),
              name: str(part[i]), "index": int(i)},
        "b": {"window": str(info.window_ids[j]), "subject": str(info.subjects[j]),
              name: str(part[j]), "index": int(j)},
        **extra,
    }  # fmt: skip


def _check_partition(
    name: str,
    part: np.ndarray,
    valid: np.ndarray,
    info: Any,
    hashes: tuple[list[str], list[str]],
    sigs: tuple[np.ndarray, np.ndarray],
    threshold: float,
    segments: Segments,
    progress: Progress,
) -> tuple[PartitionReport, np.ndarray]:
    """The partition's report without its shifted copies, and the candidates for those:
    ``(k, 3)`` rows of (window, window in a later part, shift in samples). ``progress``
    is started for the near duplicates and again for the shifted copies (the quadratic
    comparisons), with a step per block of comparisons."""
    keys = sorted(set(part[valid].tolist()), key=str)
    report = PartitionReport(name, {str(k): int(np.sum(valid & (part == k))) for k in keys})
    report.near_expected = info.source_format == "synthetic"
    report.shared_subjects = _shared(info.subjects, part, valid)
    report.shared_window_ids = _shared(info.window_ids, part, valid)

    # Exact duplicates: windows sharing a PPG or an ABP hash, in different parts. Pairs
    # are counted from the per-part counts of each hash (no quadratic enumeration).
    exact_windows: set[int] = set()
    within: set[int] = set()
    for signal, hs in zip(("ppg", "abp"), hashes, strict=True):
        groups: dict[str, list[int]] = defaultdict(list)
        for i in np.flatnonzero(valid):
            groups[hs[i]].append(int(i))
        pairs = 0
        for members in groups.values():
            if len(members) < 2:
                continue
            per_part: dict[Any, list[int]] = defaultdict(list)
            for i in members:
                per_part[part[i]].append(i)
            sizes = np.array([len(v) for v in per_part.values()], dtype=np.int64)
            pairs += int((sizes.sum() ** 2 - (sizes**2).sum()) // 2)
            if len(per_part) > 1:
                exact_windows.update(members)
                firsts = [v[0] for v in per_part.values()]
                if len(report.exact_examples) < MAX_EXAMPLES:
                    report.exact_examples.append(
                        _example(info, name, part, firsts[0], firsts[1], identical=signal)
                    )
            # Inside one part, by the same rule as across parts: the PPG or the ABP.
            within.update(i for v in per_part.values() if len(v) > 1 for i in v)
        report.exact_pairs[signal] = pairs
    report.exact_windows = len(exact_windows)
    report.exact_within_parts = len(within)
    hp, ha = hashes

    # Near duplicates between every pair of parts, a block of signatures at a time.
    index = {k: np.flatnonzero(valid & (part == k)) for k in keys}
    pairs = [(kx, ky) for x, kx in enumerate(keys) for ky in keys[x + 1 :]]
    blocks = sum(len(_blocks(len(index[kx]), len(index[ky]))) for kx, ky in pairs)
    progress.start(blocks, f"{name}s: near duplicates")
    near: list[tuple[float, int, int, float, float]] = []
    for kx, ky in pairs:
        near += _near_pairs(
            sigs, hashes, index[kx], index[ky], threshold, progress=progress, item=f"{kx} with {ky}"
        )
    near.sort(key=lambda t: -t[0])  # the most convincing examples first
    report.near_pairs = len(near)
    report.near_copies = sum(1 for t in near if t[0] >= COPY_THRESHOLD)
    near_windows = {k for t in near for k in t[1:3]}
    for _, i, j, cp_ij, ca_ij in near[:MAX_EXAMPLES]:
        report.near_examples.append(
            _example(
                info,
                name,
                part,
                i,
                j,
                ppg_corr=round(float(cp_ij), 5),
                abp_corr=round(float(ca_ij), 5),
            )
        )
    report.near_windows = len(near_windows)
    # Near pairs counted as leakage are not counted again as shifted copies; in a synthetic
    # file those are the copies (r >= COPY_THRESHOLD) only, as in ``shared_signal``: a copy
    # a sample apart correlates 0.99-0.999 there, and would be left out of both counts.
    found = {(i, j) for r, i, j, _, _ in near if r >= COPY_THRESHOLD or not report.near_expected}
    return report, _shift_candidates(name, part, valid, keys, segments, (hp, ha), found, progress)


Mask = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _near_pairs(
    sigs: tuple[np.ndarray, np.ndarray],
    hashes: tuple[list[str], list[str]],
    rows_of: np.ndarray,
    cols_of: np.ndarray,
    threshold: float,
    mask: Mask | None = None,
    progress: Progress | None = None,
    item: str = "",
) -> list[tuple[float, int, int, float, float]]:
    """(min r, window, window, PPG r, ABP r) of the pairs of a window of ``rows_of`` and
    one of ``cols_of`` whose signatures correlate above ``threshold`` in both signals and
    that share no hash (those are exact duplicates), among the pairs ``mask(rows, cols)``
    keeps (all without one), a block of signatures at a time (a ``progress`` step each)."""
    sp, sa = sigs
    hp, ha = hashes
    out = []
    for s, t in _stepped(_blocks(len(rows_of), len(cols_of)), progress or Progress(), item):
        rows, cols = rows_of[s : s + COMPARE_BLOCK], cols_of[t : t + COMPARE_COLUMNS]
        cp = sp[rows] @ sp[cols].T
        hit = cp > threshold
        if mask is not None:
            hit &= mask(rows, cols)
        if not hit.any():
            continue
        ca = sa[rows] @ sa[cols].T
        hit &= ca > threshold
        for r, c in zip(*np.nonzero(hit), strict=True):
            i, j = int(rows[r]), int(cols[c])
            if hp[i] == hp[j] or ha[i] == ha[j]:
                continue  # already counted as an exact duplicate
            out.append((min(cp[r, c], ca[r, c]), i, j, cp[r, c], ca[r, c]))
    return out


def _blocks(n_rows: int, n_cols: int) -> list[tuple[int, int]]:
    """First row and first column of the blocks a comparison of ``n_rows`` with
    ``n_cols`` is made in (at most COMPARE_BLOCK x COMPARE_COLUMNS: memory stays bounded)."""
    return [
        (s, t) for s in range(0, n_rows, COMPARE_BLOCK) for t in range(0, n_cols, COMPARE_COLUMNS)
    ]


def _stepped(steps: Iterable[Any], progress: Progress, item: str) -> Iterator[Any]:
    """``steps``, one ``progress`` step (named ``item``) as the loop's body is done with each."""
    for step in steps:
        yield step
        progress.advance(item)


def _shift_candidates(
    name: str,
    part: np.ndarray,
    valid: np.ndarray,
    keys: list[Any],
    segments: Segments,
    hashes: tuple[list[str], list[str]],
    found: set[tuple[int, int]],
    progress: Progress,
) -> np.ndarray:
    """Pairs of windows of different parts with a pair of segments whose signatures
    correlate at ``COPY_THRESHOLD`` or more in both signals and at ``SAME_SAMPLES`` in one,
    with the shift the segments give, less the pairs counted already (identical bytes, or
    near duplicates). A ``progress`` step per beat period of each pair of parts."""
    seg_part = part[segments.rows]
    seg_valid = valid[segments.rows]
    index = {k: np.flatnonzero(seg_valid & (seg_part == k)) for k in keys}
    pairs = [(kx, ky) for x, kx in enumerate(keys) for ky in keys[x + 1 :]]
    periods = sum(len(np.unique(segments.period[index[kx]])) for kx, _ in pairs)
    progress.start(periods, f"{name}s: shifted copies")
    out = [
        _segment_candidates(
            segments, index[kx], index[ky], progress=progress, item=f"{kx} with {ky}"
        )
        for kx, ky in pairs
    ]
    return _new_candidates(out, hashes, found)


def _segment_candidates(
    segments: Segments,
    rows_of: np.ndarray,
    cols_of: np.ndarray,
    mask: Mask | None = None,
    progress: Progress | None = None,
    item: str = "",
) -> np.ndarray:
    """(window, window, shift) of the pairs of a segment of ``rows_of`` and one of
    ``cols_of`` (segment indices) whose beat periods agree within ``SHIFT_SLACK`` and whose
    signatures correlate at ``COPY_THRESHOLD`` or more in both signals and at
    ``SAME_SAMPLES`` in one, among the pairs of windows ``mask`` keeps (all without one).
    A ``progress`` step (``item``) per beat period of ``rows_of``."""
    rows_of = rows_of[np.argsort(segments.period[rows_of], kind="stable")]
    cols_of = cols_of[np.argsort(segments.period[cols_of], kind="stable")]
    pr, pc = segments.period[rows_of], segments.period[cols_of]
    out = [np.zeros((0, 3), dtype=np.int64)]
    # A copy has the same beats: segments are compared a beat period at a time.
    for value in _stepped(np.unique(pr), progress or Progress(), item):
        lo, hi = np.searchsorted(pr, [value, value + 1])
        cols = cols_of[np.searchsorted(pc, value - SHIFT_SLACK) :
                       np.searchsorted(pc, value + SHIFT_SLACK + 1)]  # fmt: skip
        if not len(cols):
            continue
        for s, t in _blocks(hi - lo, len(cols)):
            rows = rows_of[lo + s : min(hi, lo + s + COMPARE_BLOCK)]
            block = cols[t : t + COMPARE_COLUMNS]
            ca = segments.abp[rows] @ segments.abp[block].T
            hit = ca >= COPY_THRESHOLD
            if mask is not None:
                hit &= mask(segments.rows[rows], segments.rows[block])
            if not hit.any():
                continue
            # By the rule the windows are held to (see _confirm), on the segments; regular
            # pulses (synthetic ones) pass the ABP's part alone by the million.
            cp = segments.ppg[rows] @ segments.ppg[block].T
            hit &= (cp >= COPY_THRESHOLD) & (np.maximum(cp, ca) >= SAME_SAMPLES)
            r, c = np.nonzero(hit)
            a, b = rows[r], block[c]
            shift = segments.first[a] - segments.first[b]
            out.append(np.stack([segments.rows[a], segments.rows[b], shift], axis=1))
    return np.concatenate(out).astype(np.int64)


def _new_candidates(
    found_by_segments: list[np.ndarray],
    hashes: tuple[list[str], list[str]],
    found: set[tuple[int, int]],
) -> np.ndarray:
    """The distinct candidates, less the pairs counted already (``found``: near
    duplicates; and pairs sharing a hash, exact duplicates)."""
    hp, ha = hashes
    cand = np.unique(np.concatenate([np.zeros((0, 3), np.int64), *found_by_segments]), axis=0)
    keep = [(int(i), int(j)) not in found and hp[i] != hp[j] and ha[i] != ha[j] for i, j, _ in cand]
    return cand[np.asarray(keep, dtype=bool)].reshape(-1, 3)


def _confirm(
    path: str | Path, candidates: np.ndarray, min_overlap: int
) -> dict[tuple[int, int], tuple[int, float, float, int]]:
    """The candidate pairs that are copies: window pair -> (shift, PPG r, ABP r, overlap)
    of the best shift within ``SHIFT_SLACK`` of a candidate's, for pairs whose windows,
    overlaid there, correlate at ``COPY_THRESHOLD`` or more in both signals, and at
    ``SAME_SAMPLES`` in one, over at least ``min_overlap`` samples. Only the windows of
    candidate pairs are read again."""
    if not len(candidates):
        return {}
    need = np.unique(candidates[:, :2])
    where = {int(w): k for k, w in enumerate(need)}
    with open_h5(path) as fh:
        length = fh["ppg"].shape[1]
        ppg = np.empty((len(need), length), dtype=np.float32)
        abp = np.empty_like(ppg)
        for s in range(0, int(need[-1]) + 1, READ_BLOCK):
            inside = (need >= s) & (need < s + READ_BLOCK)
            if not inside.any():
                continue
            rows = need[inside] - s
            ppg[inside] = read_block(fh["ppg"], s, s + READ_BLOCK)[rows]
            abp[inside] = read_block(fh["abp"], s, s + READ_BLOCK)[rows]
    best: dict[tuple[int, int], tuple[int, float, float, int]] = {}
    for i, j, shift in candidates.tolist():
        a, b = where[i], where[j]
        for d in range(shift - SHIFT_SLACK, shift + SHIFT_SLACK + 1):
            rp, n = overlap_correlation(ppg[a], ppg[b], d)
            if n < min_overlap or rp < COPY_THRESHOLD:
                continue
            ra, _ = overlap_correlation(abp[a], abp[b], d)
            if ra < COPY_THRESHOLD or max(rp, ra) < SAME_SAMPLES:
                continue
            if (i, j) not in best or min(rp, ra) > min(best[i, j][1:3]):
                best[i, j] = (d, rp, ra, n)
    return best


def _add_shifted(
    report: PartitionReport,
    part: np.ndarray,
    info: Any,
    candidates: np.ndarray,
    copies: dict[tuple[int, int], tuple[int, float, float, int]],
) -> None:
    """Count the partition's confirmed shifted copies, most convincing examples first, and
    the pairs of subjects they join, most window pairs first."""
    pairs = {(int(i), int(j)) for i, j, _ in candidates} & copies.keys()
    ranked = sorted(pairs, key=lambda ij: (-min(copies[ij][1:3]), ij))
    report.shifted_pairs = len(ranked)
    report.shifted_windows = len({w for ij in ranked for w in ij})
    by_subjects: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for i, j in ranked:
        by_subjects[str(info.subjects[i]), str(part[i]), str(info.subjects[j]), str(part[j])] += 1
    report.shifted_subjects = [
        {"a": a, f"a_{report.name}": pa, "b": b, f"b_{report.name}": pb, "window_pairs": k}
        for (a, pa, b, pb), k in sorted(by_subjects.items(), key=lambda t: (-t[1], t[0]))
    ]
    for i, j in ranked[:MAX_EXAMPLES]:
        d, rp, ra, n = copies[i, j]
        report.shifted_examples.append(
            _example(
                info, report.name, part, i, j,
                shift_seconds=round(d / info.fs, 4), overlap_seconds=round(n / info.fs, 4),
                ppg_corr=round(rp, 6), abp_corr=round(ra, 6),
            )
        )  # fmt: skip


def check_leakage(
    path: str | Path,
    threshold: float = NEAR_THRESHOLD,
    points: int = SIGNATURE_POINTS,
    progress: Progress | None = None,
) -> LeakageReport:
    """Check a window file for leakage across its splits and its folds.

    Args:
        path: HDF5 window file.
        threshold: correlation above which two signatures count as near duplicates.
        points: signature length (block means of each window).
        progress: told of each stage (reading the windows; per partition, the near
            duplicates and the shifted copies) and of each block of work in it; the
            comparisons grow with the square of the file (minutes at 100,000 windows).
    """
    t0 = time.monotonic()
    progress = progress or Progress()
    try:
        info, hashes, sigs, segments = _read(path, points, progress=progress)
        checked: list[tuple[PartitionReport, np.ndarray, np.ndarray]] = []
        for name, part, valid in _partitions(info):
            report, cand = _check_partition(
                name, part, valid, info, hashes, sigs, threshold, segments, progress
            )
            checked.append((report, part, cand))
        copies = _confirm(
            path,
            np.concatenate([c for _, _, c in checked] or [np.zeros((0, 3))]).astype(np.int64),
            segments.length,
        )
    finally:
        progress.finish()
    for report, part, cand in checked:
        _add_shifted(report, part, info, cand, copies)
    return LeakageReport(
        str(path),
        info.n_windows,
        [r for r, _, _ in checked],
        threshold,
        sigs[0].shape[1],
        seconds=time.monotonic() - t0,
        flat={k: sum(h.startswith(FLAT) for h in hs) for k, hs in zip(KEYS, hashes, strict=True)},
    )


def _partitions(info: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, part of each window, whether it has one) of the partitions the file has."""
    out = []
    if info.has_splits:
        out.append(("split", info.split, np.isin(info.split, SPLITS)))
    if np.any(info.fold >= 0) and len(np.unique(info.fold[info.fold >= 0])) > 1:
        out.append(("fold", info.fold, info.fold >= 0))
    return out


def _read(
    path: str | Path,
    points: int,
    check_split: bool = True,
    progress: Progress | None = None,
    check_folds: bool = True,
) -> tuple[Any, tuple[list[str], list[str]], tuple[np.ndarray, np.ndarray], Segments]:
    """The file's metadata, the hashes and signatures of its windows, and their segments
    (a ``progress`` step per block of windows read); ``check_split`` and ``check_folds``
    as :func:`read_info` takes them."""
    info = read_info(path, check_split=check_split, check_folds=check_folds)
    n = info.n_windows
    sp = np.zeros((n, min(points, info.window_length)), dtype=np.float32)
    sa = np.zeros_like(sp)
    hp: list[str] = []
    ha: list[str] = []
    seg_len, _ = segment_geometry(info.fs, info.window_length)
    seg_rows, seg_first, seg_period, seg_p, seg_a = [], [], [], [], []
    progress = progress or Progress()
    progress.start(-(-n // READ_BLOCK), "reading windows")
    with open_h5(path) as fh:
        for s in _stepped(range(0, n, READ_BLOCK), progress, ""):
            ppg = read_block(fh["ppg"], s, s + READ_BLOCK)
            abp = read_block(fh["abp"], s, s + READ_BLOCK)
            hp.extend(_hashes(ppg, s))
            ha.extend(_hashes(abp, s))
            sp[s : s + len(ppg)] = signatures(ppg, points)
            sa[s : s + len(abp)] = signatures(abp, points)
            rows, first, period = segment_starts(abp, info.fs)
            seg_rows.append(rows + s)
            seg_first.append(first)
            seg_period.append(period)
            seg_p.append(segment_signatures(ppg, rows, first, seg_len))
            seg_a.append(segment_signatures(abp, rows, first, seg_len))
    empty = np.zeros(0, dtype=np.int64)
    segments = Segments(
        np.concatenate([empty, *seg_rows]).astype(np.int64),
        np.concatenate([empty, *seg_first]).astype(np.int64),
        np.concatenate([empty, *seg_period]).astype(np.int64),
        np.concatenate([np.zeros((0, min(SEGMENT_POINTS, seg_len)), np.float32), *seg_p]),
        np.concatenate([np.zeros((0, min(SEGMENT_POINTS, seg_len)), np.float32), *seg_a]),
        seg_len,
    )
    return info, (hp, ha), (sp, sa), segments


@dataclass
class SharedSignal:
    """Subjects whose windows share signal, whatever part they are in (``shared_signal``)."""

    # {"a", "b", "exact", "near", "shifted"}: window pairs of each kind between subjects a
    # and b ("exact" counts identical PPG and identical ABP apart, as check_leakage does)
    links: list[dict[str, Any]]
    groups: dict[str, str]  # every subject -> its group (the group's first subject, sorted)

    @property
    def joined(self) -> list[list[str]]:
        """The groups of more than one subject, each sorted, largest first."""
        members: dict[str, list[str]] = defaultdict(list)
        for subject, group in sorted(self.groups.items()):
            members[group].append(subject)
        return sorted((m for m in members.values() if len(m) > 1), key=lambda m: (-len(m), m))


def shared_signal(
    path: str | Path,
    threshold: float = NEAR_THRESHOLD,
    points: int = SIGNATURE_POINTS,
    progress: Progress | None = None,
) -> SharedSignal:
    """Pairs of subjects of a window file whose windows share signal by the rules of
    ``check_leakage`` (exact, near and shifted copies; in a synthetic file, whose subjects
    are alike by construction, near pairs from ``COPY_THRESHOLD`` only), compared across
    the whole file rather than across its parts, and the groups they join (connected
    subjects). Folds that keep each group together leave ``check_leakage`` nothing to find
    across them. Time: about twice a check of the file with five folds. ``progress`` is
    told of each stage (reading the windows, the near duplicates, the shifted copies) and
    of each block of work in it, as ``check_leakage`` tells it."""
    progress = progress or Progress()
    try:
        return _shared_signal(path, threshold, points, progress)
    finally:
        progress.finish()


def _shared_signal(
    path: str | Path, threshold: float, points: int, progress: Progress
) -> SharedSignal:
    # Its folds are being replaced (split --join-shared): a bad fold number is no matter.
    info, hashes, sigs, segments = _read(
        path, points, check_split=False, progress=progress, check_folds=False
    )
    names, code = np.unique(np.asarray(info.subjects).astype(str), return_inverse=True)
    counts: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)

    def add(i: int, j: int, kind: str) -> None:  # a pair of windows
        counts[min(code[i], code[j]), max(code[i], code[j])][kind] += 1

    # Exact: windows sharing a hash, counted per pair of subjects without enumerating pairs.
    for hs in hashes:
        by_hash: dict[str, list[int]] = defaultdict(list)
        for i, h in enumerate(hs):
            by_hash[h].append(i)
        for members in by_hash.values():
            per_subject = Counter(int(code[i]) for i in members)
            for x, y in itertools.combinations(sorted(per_subject), 2):
                counts[x, y]["exact"] += per_subject[x] * per_subject[y]

    def other(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Pairs of windows of different subjects, each pair once."""
        return (code[rows][:, None] != code[cols][None, :]) & (rows[:, None] < cols[None, :])

    every = np.arange(info.n_windows)
    stripes = [every[t : t + COMPARE_COLUMNS] for t in range(0, info.n_windows, COMPARE_COLUMNS)]
    progress.start(
        sum(len(_blocks(c[-1] + 1, len(c))) for c in stripes), "whole file: near duplicates"
    )
    near: list[tuple[float, int, int, float, float]] = []
    for cols in stripes:  # the triangle below the diagonal
        near += _near_pairs(
            sigs, hashes, every[: cols[-1] + 1], cols, threshold, other, progress, ""
        )
    if info.source_format == "synthetic":
        near = [t for t in near if t[0] >= COPY_THRESHOLD]
    for _, i, j, _, _ in near:
        add(i, j, "near")
    segs = np.arange(len(segments.rows))
    found = {(i, j) for _, i, j, _, _ in near}
    progress.start(len(np.unique(segments.period)), "whole file: shifted copies")
    shifted = _segment_candidates(segments, segs, segs, other, progress, "")
    cand = _new_candidates([shifted], hashes, found)
    for i, j in _confirm(path, cand, segments.length):
        add(i, j, "shifted")

    parent = list(range(len(names)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in counts:
        rx, ry = root(x), root(y)
        parent[max(rx, ry)] = min(rx, ry)  # the group is named by its first subject
    links = [
        {"a": str(names[x]), "b": str(names[y]),
         **{k: int(c[k]) for k in ("exact", "near", "shifted")}}
        for (x, y), c in sorted(counts.items())
    ]  # fmt: skip
    groups = {str(names[x]): str(names[root(x)]) for x in range(len(names))}
    return SharedSignal(links, groups)
