"""Samplers of training windows: one seeded permutation per epoch, split over DDP ranks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


class SubjectPairSampler(Sampler[int]):
    """Every window once per epoch, in groups of ``group_size`` windows of one subject (by
    default pairs), for the within-subject calibration loss (``pair_weight``).

    With random batches, a batch holds two windows of one person only when the training
    split has few subjects per batch slot (the provided real data: 60 subjects, batch 128);
    on large datasets such pairs become rare and the loss fades (under DDP the loss gathers
    the global batch, so the number of processes does not matter). This sampler draws, per
    epoch, a permutation of each subject's windows, cuts it into groups (the windows a
    subject has left over are grouped with other subjects' left-overs), shuffles the groups
    and lays them out so that under DDP each rank gets all windows of a group,
    consecutively: rank ``r`` of ``W`` takes every ``W``-th index, as with
    :class:`torch.utils.data.DistributedSampler`, and the ranks' batches together are the
    single process's batch. Like it, the index list is padded by repetition to a multiple
    of ``group_size * W`` windows. With groups of ``k`` (and batches a multiple of ``k``)
    every window meets ``k - 1`` windows of its subject in its batch.

    ``groups``: the subject code of each dataset position.
    """

    def __init__(
        self,
        groups: np.ndarray,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        group_size: int = 2,
    ):
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not one of {num_replicas} replicas")
        if group_size < 2:
            raise ValueError(f"group_size must be at least 2, but is {group_size}")
        self.groups = np.asarray(groups)
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.group_size = group_size
        self.epoch = 0
        block = group_size * num_replicas
        self.total = -(-len(self.groups) // block) * block if len(self.groups) else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.total // self.num_replicas

    def units(self) -> np.ndarray:
        """``(n_groups, group_size)`` dataset positions of this epoch, in training order (all
        ranks)."""
        k = self.group_size
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        n = len(self.groups)
        if n == 0:
            return np.zeros((0, k), dtype=np.int64)
        order = torch.randperm(n, generator=gen).numpy()
        # A stable sort by subject keeps each subject's windows in random order.
        by_subject = order[np.argsort(self.groups[order], kind="stable")]
        codes = self.groups[by_subject]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], n]
        units, leftovers = [], []
        for s, e in zip(starts, ends, strict=True):
            whole = e - (e - s) % k
            units.append(by_subject[s:whole].reshape(-1, k))
            if whole < e:
                leftovers.append(by_subject[whole:e])
        if leftovers:
            # Subjects' left-overs in random order, cut into groups (padded by repetition).
            rest = np.concatenate(
                [leftovers[i] for i in torch.randperm(len(leftovers), generator=gen)]
            )
            rest = np.resize(rest, -(-len(rest) // k) * k)
            units.append(rest.astype(np.int64).reshape(-1, k))
        out = np.concatenate(units)
        out = out[torch.randperm(len(out), generator=gen).numpy()]
        need = self.total // k
        if len(out) < need:  # pad by repetition, as DistributedSampler does
            out = np.concatenate([out, np.resize(out, (need - len(out), k))])
        return out[:need]

    def __iter__(self) -> Iterator[int]:
        units = self.units()
        w, k = self.num_replicas, self.group_size
        # Blocks of W groups laid out as [first windows..., second windows..., ...]: index
        # r + j W is group r's j-th window, so rank r (every W-th index) takes all of it.
        blocks = units.reshape(-1, w, k).transpose(0, 2, 1).reshape(-1)
        return iter(blocks[self.rank :: w].tolist())
