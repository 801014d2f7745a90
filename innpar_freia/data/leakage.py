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
  of the part sizes.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from innpar_freia.data.store import SPLITS, open_h5, read_block, read_info

SIGNATURE_POINTS = 64
NEAR_THRESHOLD = 0.99
# Pairs this close in both signals are copies (the same samples re-digitised, rescaled or
# lightly noised); between 0.99 and this, windows are often the same subject at another
# time, or very regular pulses of two subjects. Both are reported; the count is separate.
COPY_THRESHOLD = 0.999
READ_BLOCK = 4096  # windows read from the file at a time
COMPARE_BLOCK = 2048  # rows of a signature block in one matrix product
MAX_EXAMPLES = 10


def signatures(x: np.ndarray, points: int = SIGNATURE_POINTS) -> np.ndarray:
    """``(n, L)`` windows -> ``(n, points)`` unit-norm, zero-mean block-mean signatures, so
    that the dot product of two signatures is their Pearson correlation. Constant windows
    get all-zero signatures (they correlate with nothing; exact hashes still catch them)."""
    x = np.asarray(x, dtype=np.float64)
    length = x.shape[1]
    points = min(points, length)
    edges = np.linspace(0, length, points + 1).round().astype(np.int64)
    sums = np.add.reduceat(x, edges[:-1], axis=1)
    sig = sums / np.diff(edges)
    sig -= sig.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(sig, axis=1, keepdims=True)
    return (sig / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def _hashes(x: np.ndarray) -> list[str]:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in x]


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
    exact_within_parts: int = 0
    # Synthetic subjects are drawn from one waveform model: windows of different subjects
    # can correlate above the threshold without sharing a recording; only copies
    # (r >= COPY_THRESHOLD) are leakage there.
    near_expected: bool = False

    @property
    def leaks(self) -> bool:
        near = self.near_copies if self.near_expected else self.near_pairs
        return bool(self.shared_subjects or self.shared_window_ids or self.exact_windows or near)

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


def _check_partition(
    name: str,
    part: np.ndarray,
    valid: np.ndarray,
    info: Any,
    hashes: tuple[list[str], list[str]],
    sigs: tuple[np.ndarray, np.ndarray],
    threshold: float,
) -> PartitionReport:
    keys = sorted(set(part[valid].tolist()), key=str)
    report = PartitionReport(name, {str(k): int(np.sum(valid & (part == k))) for k in keys})
    report.near_expected = info.source_format == "synthetic"
    report.shared_subjects = _shared(info.subjects, part, valid)
    report.shared_window_ids = _shared(info.window_ids, part, valid)

    def example(i: int, j: int, **extra: Any) -> dict[str, Any]:
        return {
            "a": {"window": str(info.window_ids[i]), "subject": str(info.subjects[i]),
                  name: str(part[i]), "index": int(i)},
            "b": {"window": str(info.window_ids[j]), "subject": str(info.subjects[j]),
                  name: str(part[j]), "index": int(j)},
            **extra,
        }  # fmt: skip

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
                    report.exact_examples.append(example(firsts[0], firsts[1], identical=signal))
            # Inside one part, by the same rule as across parts: the PPG or the ABP.
            within.update(i for v in per_part.values() if len(v) > 1 for i in v)
        report.exact_pairs[signal] = pairs
    report.exact_windows = len(exact_windows)
    report.exact_within_parts = len(within)
    hp, ha = hashes

    # Near duplicates between every pair of parts, a block of signatures at a time.
    sp, sa = sigs
    index = {k: np.flatnonzero(valid & (part == k)) for k in keys}
    near: list[tuple[float, int, int, float, float]] = []
    for x, kx in enumerate(keys):
        for ky in keys[x + 1 :]:
            ix, iy = index[kx], index[ky]
            for s in range(0, len(ix), COMPARE_BLOCK):
                rows = ix[s : s + COMPARE_BLOCK]
                cp = sp[rows] @ sp[iy].T
                hit = cp > threshold
                if not hit.any():
                    continue
                ca = sa[rows] @ sa[iy].T
                hit &= ca > threshold
                for r, c in zip(*np.nonzero(hit), strict=True):
                    i, j = int(rows[r]), int(iy[c])
                    if hp[i] == hp[j] or ha[i] == ha[j]:
                        continue  # already counted as an exact duplicate
                    near.append((min(cp[r, c], ca[r, c]), i, j, cp[r, c], ca[r, c]))
    near.sort(key=lambda t: -t[0])  # the most convincing examples first
    report.near_pairs = len(near)
    report.near_copies = sum(1 for t in near if t[0] >= COPY_THRESHOLD)
    near_windows = {k for t in near for k in t[1:3]}
    for _, i, j, cp_ij, ca_ij in near[:MAX_EXAMPLES]:
        report.near_examples.append(
            example(i, j, ppg_corr=round(float(cp_ij), 5), abp_corr=round(float(ca_ij), 5))
        )
    report.near_windows = len(near_windows)
    return report


def check_leakage(
    path: str | Path,
    threshold: float = NEAR_THRESHOLD,
    points: int = SIGNATURE_POINTS,
) -> LeakageReport:
    """Check a window file for leakage across its splits and its folds.

    Args:
        path: HDF5 window file.
        threshold: correlation above which two signatures count as near duplicates.
        points: signature length (block means of each window).
    """
    t0 = time.monotonic()
    info = read_info(path)
    n = info.n_windows
    sp = np.zeros((n, min(points, info.window_length)), dtype=np.float32)
    sa = np.zeros_like(sp)
    hp: list[str] = []
    ha: list[str] = []
    with open_h5(path) as fh:
        for s in range(0, n, READ_BLOCK):
            ppg = read_block(fh["ppg"], s, s + READ_BLOCK)
            abp = read_block(fh["abp"], s, s + READ_BLOCK)
            hp.extend(_hashes(ppg))
            ha.extend(_hashes(abp))
            sp[s : s + len(ppg)] = signatures(ppg, points)
            sa[s : s + len(abp)] = signatures(abp, points)
    partitions = []
    if info.has_splits:
        valid = np.isin(info.split, SPLITS)
        partitions.append(
            _check_partition("split", info.split, valid, info, (hp, ha), (sp, sa), threshold)
        )
    if np.any(info.fold >= 0) and len(np.unique(info.fold[info.fold >= 0])) > 1:
        valid = info.fold >= 0
        partitions.append(
            _check_partition("fold", info.fold, valid, info, (hp, ha), (sp, sa), threshold)
        )
    return LeakageReport(
        str(path), n, partitions, threshold, sp.shape[1], seconds=time.monotonic() - t0
    )
