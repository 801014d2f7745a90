"""SubjectPairSampler: every window once per epoch, in same-subject pairs, split over ranks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from innpar_freia.data.sampler import SubjectPairSampler

# 7 subjects with 1 to 9 windows each, positions shuffled so subjects are interleaved.
GROUPS = np.random.default_rng(0).permutation(np.repeat(np.arange(7), [1, 2, 3, 4, 5, 8, 9]))


def test_one_process_sees_every_window_in_same_subject_pairs() -> None:
    sampler = SubjectPairSampler(GROUPS, seed=3)
    order = list(sampler)
    counts = Counter(order)
    assert set(counts) == set(range(len(GROUPS)))  # every window, once (one repeat pads)
    assert len(order) == len(sampler) == 32 and sum(c - 1 for c in counts.values()) == 0
    pairs = np.asarray(order).reshape(-1, 2)
    same = GROUPS[pairs[:, 0]] == GROUPS[pairs[:, 1]]
    # Subjects with an odd count leave one window each (here 4: subjects 0, 2, 4 and 6),
    # paired across subjects; every other pair is one person's.
    assert int((~same).sum()) == 2 and int(same.sum()) == 14


def test_epochs_are_seeded_permutations() -> None:
    a, b = SubjectPairSampler(GROUPS, seed=3), SubjectPairSampler(GROUPS, seed=3)
    first = list(a)
    assert list(b) == first  # same seed and epoch: same order
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == sorted(first)
    assert list(SubjectPairSampler(GROUPS, seed=4)) != first


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_split_the_single_process_order_and_keep_pairs(world: int) -> None:
    single = SubjectPairSampler(GROUPS, num_replicas=world, rank=0, seed=1)
    ranks = [
        list(SubjectPairSampler(GROUPS, num_replicas=world, rank=r, seed=1)) for r in range(world)
    ]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(single)
    # Padded by repetition to a multiple of 2 x world; every window is used.
    union = [i for r in ranks for i in r]
    assert set(union) == set(range(len(GROUPS))) and len(union) % (2 * world) == 0
    # Each rank's consecutive windows are the pairs (one person's, bar the odd leftovers).
    units = SubjectPairSampler(GROUPS, num_replicas=world, seed=1).units()
    for r, indices in enumerate(ranks):
        assert np.array_equal(np.asarray(indices).reshape(-1, 2), units[r::world])
    # The ranks' batch b together is the single process's batch b (the DDP contract), for
    # a global batch of 4 windows per rank.
    one = list(SubjectPairSampler(GROUPS, num_replicas=1, seed=1))
    batch = 4 * world
    for b in range(len(GROUPS) // batch):
        together = sorted(i for r in ranks for i in r[4 * b : 4 * b + 4])
        assert together == sorted(one[batch * b : batch * (b + 1)])


@pytest.mark.parametrize("world", [1, 2])
def test_groups_of_k_windows_of_one_subject(world: int) -> None:
    k = 4
    ranks = [
        list(SubjectPairSampler(GROUPS, num_replicas=world, rank=r, seed=2, group_size=k))
        for r in range(world)
    ]
    union = [i for r in ranks for i in r]
    assert set(union) == set(range(len(GROUPS))) and len(union) % (k * world) == 0
    units = SubjectPairSampler(GROUPS, num_replicas=world, seed=2, group_size=k).units()
    for r, indices in enumerate(ranks):
        assert np.array_equal(np.asarray(indices).reshape(-1, k), units[r::world])
    # Subjects 3, 4, 5 and 6 (4, 5, 8 and 9 windows) fill 1, 1, 2 and 2 groups of one
    # person; the left-overs (1 + 2 + 3 + 1 + 1 = 8 windows, at most 3 of one subject) fill
    # 2 mixed groups, and the 32 windows need no padding.
    people = Counter(int(GROUPS[u[0]]) for u in units if len(set(GROUPS[u])) == 1)
    assert people == {3: 1, 4: 1, 5: 2, 6: 2} and len(units) == 8


def test_bad_rank_is_refused() -> None:
    with pytest.raises(ValueError, match="rank 2"):
        SubjectPairSampler(GROUPS, num_replicas=2, rank=2)
    assert list(SubjectPairSampler(np.zeros(0, dtype=int))) == []
    with pytest.raises(ValueError, match="group_size"):
        SubjectPairSampler(GROUPS, group_size=1)
