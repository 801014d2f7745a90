"""Samplers of training windows: one seeded permutation per epoch, split over DDP ranks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


class SubjectPairSampler(Sampler[int]):
    """Every window once per epoch, in pairs of windows of one subject, for the
    within-subject calibration loss (``pair_weight``).

    With random batches, a batch holds two windows of one person only when the training
    split has few subjects per batch slot (the provided real data: 60 subjects, batch 128);
    on large datasets such pairs become rare and the loss fades (under DDP the loss gathers
    the global batch, so the number of processes does not matter). This sampler draws, per
    epoch, a permutation of each subject's windows, cuts it into pairs (a subject's odd
    window out is paired with another subject's odd window out), shuffles the pairs and
    lays them out so that under DDP each rank gets both windows of a pair, consecutively:
    rank ``r`` of ``W`` takes every ``W``-th index, as with
    :class:`torch.utils.data.DistributedSampler`, and the ranks' batches together are the
    single process's batch. Like it, the index list is padded by repetition to a multiple
    of ``2 W`` windows.

    ``groups``: the subject code of each dataset position.
    """

    def __init__(
        self,
        groups: np.ndarray,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
    ):
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not one of {num_replicas} replicas")
        self.groups = np.asarray(groups)
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.epoch = 0
        block = 2 * num_replicas
        self.total = -(-len(self.groups) // block) * block if len(self.groups) else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.total // self.num_replicas

    def pairs(self) -> np.ndarray:
        """``(n_pairs, 2)`` dataset positions of this epoch, in training order (all ranks)."""
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        n = len(self.groups)
        if n == 0:
            return np.zeros((0, 2), dtype=np.int64)
        order = torch.randperm(n, generator=gen).numpy()
        # A stable sort by subject keeps each subject's windows in random order.
        by_subject = order[np.argsort(self.groups[order], kind="stable")]
        codes = self.groups[by_subject]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], n]
        pairs, leftovers = [], []
        for s, e in zip(starts, ends, strict=True):
            even = e - (e - s) % 2
            pairs.append(by_subject[s:even].reshape(-1, 2))
            if even < e:
                leftovers.append(by_subject[even])
        if leftovers:
            leftovers = [leftovers[i] for i in torch.randperm(len(leftovers), generator=gen)]
            if len(leftovers) % 2:
                leftovers.append(leftovers[0])  # one window twice in the padding
            pairs.append(np.asarray(leftovers, dtype=np.int64).reshape(-1, 2))
        units = np.concatenate(pairs)
        units = units[torch.randperm(len(units), generator=gen).numpy()]
        need = self.total // 2
        if len(units) < need:  # pad by repetition, as DistributedSampler does
            units = np.concatenate([units, np.resize(units, (need - len(units), 2))])
        return units[:need]

    def __iter__(self) -> Iterator[int]:
        units = self.pairs()
        w = self.num_replicas
        # Blocks of W pairs laid out as [first windows..., second windows...]: index
        # r + k W is pair r's k-th window, so rank r (every W-th index) takes both.
        blocks = units.reshape(-1, w, 2).transpose(0, 2, 1).reshape(-1)
        return iter(blocks[self.rank :: w].tolist())
