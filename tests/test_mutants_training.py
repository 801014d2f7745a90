"""Tests that pin what a mutation audit of the training objective and its data feeding
(innpar_freia.train's losses, TrainStep and lr_factor; the subject-group sampler; the
normalisation and loaders) found unguarded: each one fails when the bug named in its
docstring is put into the package."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import innpar_freia.data.dataset as dataset_mod
import innpar_freia.train as train_mod
from innpar_freia.config import resolve_config
from innpar_freia.data.dataset import PreloadedLoader, WindowDataset, fit_normalisation
from innpar_freia.data.sampler import SubjectPairSampler
from innpar_freia.data.store import WindowWriter, read_info, read_signals
from innpar_freia.nn.model import build_model
from innpar_freia.train import TrainStep, diff_l1, lr_factor, pair_l1, train

# --------------------------------------------------------------------------------------
# The loss of one batch
# --------------------------------------------------------------------------------------


def _step_inputs():
    """The tiny network, a batch of 4 windows (subjects 0, 0, 1, 1), its forward output
    and its reverse pass of the ABP, all float64 for hand-written comparisons."""
    model = build_model(resolve_config("tiny").model, seed=0)
    gen = torch.Generator().manual_seed(0)
    ppg, abp = torch.randn(4, 625, generator=gen), torch.rand(4, 625, generator=gen)
    with torch.no_grad():
        out, _ = model(model.make_input(ppg), jac=False)
        back, _ = model(model.make_input(abp), rev=True, jac=False)
    return model, ppg, abp, torch.tensor([0, 0, 1, 1]), out.double(), back.double()


def _l1(err: torch.Tensor, grad_weight: float) -> float:
    """The weighted L1 of ``(B, 2, T)`` absolute errors, written out."""
    return float((err[:, 0].mean() + grad_weight * err[:, 1].mean()) / (1 + grad_weight))


def _pair_by_hand(pred: torch.Tensor, ref: torch.Tensor, pairs, scaled: bool) -> float:
    """Mean L1 over ordered pairs (c, t) of ``(pred_t - mean pred_c) * PP ratio + mean ref_c``
    against ``ref_t``, the PP ratio being range(ref_c) / range(pred_c) or 1."""
    terms = []
    for c, t in pairs:
        scale = (ref[c].max() - ref[c].min()) / (pred[c].max() - pred[c].min()) if scaled else 1
        calibrated = (pred[t] - pred[c].mean()) * scale + ref[c].mean()
        terms.append(float((calibrated - ref[t]).abs().mean()))
    return sum(terms) / len(terms)


PAIRS = [(0, 1), (1, 0), (2, 3), (3, 2)]


def test_the_default_recipe_s_loss_written_out_by_hand() -> None:
    """innpar-plus-pair3 trains L1 over the real samples with the gradient channel weighted
    0.25, plus 3 x the within-subject L1 of every ordered same-subject pair calibrated with
    offset and range scale. Guards against TrainStep ignoring ``grad_weight`` (taking 1) or
    ``loss_region`` (scoring the 3 padded samples)."""
    model, ppg, abp, groups, out, _ = _step_inputs()
    cfg = resolve_config("innpar-plus-pair3", train={"device": "cpu"}).train
    assert (cfg.grad_weight, cfg.loss_region, cfg.pair_weight) == (0.25, "real", 3.0)
    assert (cfg.pair_calibration, cfg.pair_pp, cfg.inverse_weight) == ("offset-scale", "range", 0)
    with torch.no_grad():
        loss, inverse, pair = TrainStep(model, cfg)(ppg, abp, groups)
    y = model.make_input(abp).double()
    plain = _l1((out - y)[..., :625].abs(), 0.25)
    # The alternatives are other numbers: all samples, or the channels weighted equally.
    assert abs(_l1((out - y).abs(), 0.25) - plain) > 1e-4
    assert abs(_l1((out - y)[..., :625].abs(), 1.0) - plain) > 1e-4
    by_hand = _pair_by_hand(out[:, 0, :625], abp.double(), PAIRS, scaled=True)
    assert float(pair) == pytest.approx(by_hand, rel=1e-5)
    assert float(loss) == pytest.approx(plain + 3.0 * by_hand, rel=1e-5)
    assert float(inverse) == 0.0


def test_the_pair_loss_calibrates_as_configured() -> None:
    """Guards against TrainStep passing ``offset-scale`` whatever ``pair_calibration`` says
    (the default recipe's own value, so every other test passed)."""
    model, ppg, abp, groups, out, _ = _step_inputs()
    cfg = resolve_config(
        "innpar-plus-pair3", train={"device": "cpu", "pair_calibration": "offset"}
    ).train
    with torch.no_grad():
        _, _, pair = TrainStep(model, cfg)(ppg, abp, groups)
    offset = _pair_by_hand(out[:, 0, :625], abp.double(), PAIRS, scaled=False)
    scaled = _pair_by_hand(out[:, 0, :625], abp.double(), PAIRS, scaled=True)
    assert abs(offset - scaled) > 1e-3
    assert float(pair) == pytest.approx(offset, rel=1e-5)


@pytest.mark.parametrize(("region", "grad_weight"), [("real", 0.25), ("padded", 1.0)])
def test_the_inverse_loss_compares_the_reverse_pass_of_the_abp_with_the_ppg(
    region: str, grad_weight: float
) -> None:
    """The PPG reconstruction loss (the paper's inverse pass): the reverse pass of the
    target ABP against the input PPG, under the same region and channel weights as the
    forward loss. Guards against comparing it with the ABP, reversing the network's own
    output (which gives the PPG back exactly: a loss of 0), running the forward pass
    instead, or ignoring ``grad_weight`` or ``loss_region`` for it."""
    model, ppg, abp, groups, _, back = _step_inputs()
    cfg = resolve_config(
        "tiny",
        train={
            "device": "cpu",
            "inverse_weight": 0.5,
            "loss_region": region,
            "grad_weight": grad_weight,
        },
    ).train
    with torch.no_grad():
        _, inverse, _ = TrainStep(model, cfg)(ppg, abp, groups)
    x = model.make_input(ppg).double()
    end = 625 if region == "real" else 628
    expected = _l1((back - x)[..., :end].abs(), grad_weight)
    assert float(inverse) == pytest.approx(expected, rel=1e-5)
    # Each alternative is another number.
    other_end = 628 if end == 625 else 625
    assert abs(_l1((back - x)[..., :other_end].abs(), grad_weight) - expected) > 1e-4
    assert abs(_l1((back - x)[..., :end].abs(), 0.5) - expected) > 1e-4


def test_the_difference_loss_enters_train_step_with_its_weight() -> None:
    """Guards against TrainStep dropping the first-difference loss or ignoring its weight."""
    model, ppg, abp, groups, out, _ = _step_inputs()
    plain = resolve_config("tiny", train={"device": "cpu"}).train
    with_diff = resolve_config("tiny", train={"device": "cpu", "diff_weight": 0.5}).train
    with torch.no_grad():
        base, _, _ = TrainStep(model, plain)(ppg, abp, groups)
        total, _, _ = TrainStep(model, with_diff)(ppg, abp, groups)
    d_out, d_ref = torch.diff(out[:, 0, :625], dim=-1), torch.diff(abp.double(), dim=-1)
    by_hand = float((d_out - d_ref).abs().mean())
    assert by_hand > 0.01
    assert float(total) == pytest.approx(float(base) + 0.5 * by_hand, rel=1e-5)


def test_the_difference_loss_by_hand() -> None:
    """Guards against adding the two differences instead of subtracting them (the existing
    test's reference was flat), and against differencing the padding too."""
    out = torch.zeros(1, 2, 6)
    target = torch.zeros(1, 2, 6)
    out[0, 0] = torch.tensor([0.0, 1.0, 3.0, 6.0, 100.0, 0.0])  # samples 4, 5: padding
    target[0, 0] = torch.tensor([0.0, 2.0, 2.0, 2.0, -50.0, 7.0])
    # differences [1, 2, 3] vs [2, 0, 0]: |-1| + |2| + |3| over 3
    assert float(diff_l1(out, target, 4)) == pytest.approx(2.0)


def test_a_flat_calibrating_prediction_leaves_the_pair_loss_finite() -> None:
    """A window predicted flat (pulse pressure 0) would make the scale PP_ref / PP_pred of
    every pair it calibrates infinite, and the loss NaN: the predicted PP is floored at
    1e-3 (of the normalised range). Guards against the floor going missing."""
    pred = torch.zeros(2, 1, 4)
    ref = torch.zeros(2, 1, 4)
    pred[1, 0] = torch.tensor([0.0, 0.2, 0.1, 0.1])  # window 0 is flat at 0
    ref[0, 0] = torch.tensor([0.4, 0.5, 0.4, 0.5])  # mean 0.45, PP 0.1
    ref[1, 0] = torch.tensor([0.3, 0.6, 0.4, 0.5])  # mean 0.45, PP 0.3
    loss = float(pair_l1(pred, ref, 4, torch.tensor([5, 5]), "offset-scale"))
    # 0 calibrates 1: (pred_1 - 0) * 0.1 / 1e-3 + 0.45; 1 calibrates 0: (0 - 0.1) * 1.5 + 0.45
    one = ((pred[1, 0].double() * 100.0 + 0.45) - ref[1, 0]).abs().mean()
    zero = ((0.0 - 0.1) * 1.5 + 0.45 - ref[0, 0].double()).abs().mean()
    assert math.isfinite(loss)
    assert loss == pytest.approx(float(one + zero) / 2, rel=1e-5)


# --------------------------------------------------------------------------------------
# The learning rate per epoch
# --------------------------------------------------------------------------------------


def test_the_default_recipe_s_learning_rate_at_every_epoch() -> None:
    """innpar-plus-pair3: 40 epochs at 1e-3, linear warm-up over epochs 1-2 (x 0.5, x 1),
    then cosine from x 1 at epoch 3 down to 0.5 (1 + cos(37 pi / 38)) at epoch 40, never 0
    (an epoch at lr 0 is wasted). Guards against a cosine span one epoch short, which
    reached 0 at the last epoch (every other property of the schedule held)."""
    cfg = resolve_config("innpar-plus-pair3").train
    assert (cfg.epochs, cfg.warmup_epochs, cfg.lr_schedule, cfg.lr) == (40, 2, "cosine", 1e-3)
    factors = [lr_factor(cfg, e) for e in range(cfg.epochs)]
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * k / 38)) for k in range(38)]
    assert factors == pytest.approx(expected, abs=1e-12)
    assert factors[-1] == pytest.approx(0.5 * (1 + math.cos(37 * math.pi / 38)))
    assert factors[-1] > 1e-3


def test_a_learning_rate_warm_up_then_constant() -> None:
    """The constant schedule after a 3-epoch warm-up: x 1/3, 2/3, 1, then 1 to the end."""
    cfg = resolve_config("tiny", train={"epochs": 6, "warmup_epochs": 3}).train
    factors = [lr_factor(cfg, e) for e in range(6)]
    assert factors == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0], abs=1e-12)


def test_each_epoch_trains_at_its_scheduled_learning_rate(synth_file: Path, tmp_path: Path):
    """The optimiser's rate in epoch e (1-based) is lr x lr_factor(e - 1). Guards against
    the loop asking lr_factor for the next epoch, which skipped the first warm-up epoch
    (lr_factor itself was right, so its tests passed)."""
    cfg = resolve_config(
        "tiny",
        train={"device": "cpu", "epochs": 4, "warmup_epochs": 2, "lr_schedule": "cosine"},
    )
    result = train(cfg, synth_file, tmp_path / "run")
    assert [r["lr"] for r in result.history] == pytest.approx([5e-4, 1e-3, 1e-3, 5e-4])


# --------------------------------------------------------------------------------------
# Which windows meet in a batch
# --------------------------------------------------------------------------------------

# 7 subjects with 1 to 9 windows, interleaved (as tests/test_sampler.py).
GROUPS = np.random.default_rng(0).permutation(np.repeat(np.arange(7), [1, 2, 3, 4, 5, 8, 9]))


def _one_subject_groups(sampler: SubjectPairSampler) -> list[frozenset[int]]:
    return [frozenset(u.tolist()) for u in sampler.units() if len(set(GROUPS[u])) == 1]


def test_a_subject_s_windows_form_other_groups_every_epoch() -> None:
    """Each epoch cuts a fresh permutation of each subject's windows into groups. Guards
    against cutting them in file order, which paired the same windows every epoch (only the
    order of the groups changed, so the epoch test of tests/test_sampler.py passed)."""
    sampler = SubjectPairSampler(GROUPS, seed=3)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(set(_one_subject_groups(sampler)))
    # 14 pairs of one subject each epoch (tests/test_sampler.py); few kept from one to the next.
    assert all(len(e) == 14 for e in epochs)
    assert len(epochs[0] & epochs[1]) < 7 and len(epochs[1] & epochs[2]) < 7


def test_groups_reach_the_batches_in_a_random_order_of_subjects() -> None:
    """Guards against leaving out the shuffle of the groups: the epoch's groups then came
    subject by subject (a batch of 128 held a handful of people, and always the same
    neighbours), the left-over groups last."""
    sampler = SubjectPairSampler(GROUPS, seed=3)
    firsts, sorted_epochs = set(), 0
    for epoch in range(6):
        sampler.set_epoch(epoch)
        subjects = [int(GROUPS[u[0]]) for u in sampler.units()]
        firsts.add(subjects[0])
        sorted_epochs += subjects == sorted(subjects)
    assert sorted_epochs == 0 and len(firsts) >= 3


def test_left_over_windows_meet_other_subjects_every_epoch() -> None:
    """The windows subjects have left over after their groups are grouped in a random order
    of subjects. Guards against taking the subjects in code order, which always put the same
    subjects' left-overs together (here subjects 0 + 2 and 4 + 6)."""
    sampler = SubjectPairSampler(GROUPS, seed=3)
    mixes = set()
    for epoch in range(6):
        sampler.set_epoch(epoch)
        mixed = [u for u in sampler.units() if len(set(GROUPS[u])) > 1]
        assert len(mixed) == 2  # the 4 odd subjects' left-overs, two by two
        mixes.add(frozenset(frozenset(GROUPS[u].tolist()) for u in mixed))
    assert len(mixes) >= 2


# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------


def _abp_file(path: Path) -> np.ndarray:
    """12 windows of 8 samples at ``path``; the windows outside :data:`TRAIN` hold the
    file's extremes, and the last training window its training maximum. Returns the ABP."""
    rng = np.random.default_rng(1)
    abp = 80 + 40 * rng.random((12, 8))
    abp[2, 3], abp[9, 0] = 300.0, 10.0  # validation / test windows
    abp[11, 5] = 200.0
    with WindowWriter(path, fs=50.0, window_length=8, source_format="test") as w:
        w.append(
            rng.normal(size=(12, 8)),
            abp,
            subject=[f"s{i % 4}" for i in range(12)],
            window_id=[f"w{i}" for i in range(12)],
        )
    return abp


TRAIN = np.array([0, 1, 3, 4, 5, 7, 8, 10, 11])


@pytest.mark.parametrize("block", [2, 4, 4096])
def test_normalisation_constants_are_the_training_split_s_streamed_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """minmax: the training split's minimum and range; zscore: its mean and SD, whatever
    the block size the file is streamed in. Guards against a block dropping its last
    window, against keeping the first block's extremes only, and against fitting on every
    window of the file (whose extremes here are outside the training split)."""
    abp = _abp_file(tmp_path / "n.h5")
    monkeypatch.setattr(dataset_mod, "STATS_BLOCK", block)
    train = TRAIN[[4, 0, 8, 2, 6, 1, 7, 3, 5]]  # unsorted, as a caller may pass them
    x = abp.astype(np.float32).astype(np.float64)[TRAIN]  # the file holds float32
    minmax = fit_normalisation(tmp_path / "n.h5", train, "minmax")
    assert (minmax.abp_offset, minmax.abp_scale) == (x.min(), x.max() - x.min())
    zscore = fit_normalisation(tmp_path / "n.h5", train, "zscore")
    assert zscore.abp_offset == pytest.approx(x.mean(), rel=1e-12)
    assert zscore.abp_scale == pytest.approx(x.std(), rel=1e-9)
    assert x.max() == 200.0 and 10.0 < x.min()  # not the file's 300 and 10


# --------------------------------------------------------------------------------------
# Feeding the windows
# --------------------------------------------------------------------------------------


def test_the_preloaded_loader_yields_each_window_with_its_own_file_row(tmp_path: Path):
    """Batches follow the sampler, and each window comes with its file row (which gives its
    subject code to the within-subject loss and its noise to ppg_noise), the last partial
    batch included and counted. Guards against rows taken by batch position rather than by
    the sampler's index (pairs formed between the wrong windows; the weights-only test of
    preloaded against lazy loading trains without pairs), and against a floor division in
    ``len`` (the logged training loss is the sum over the batches divided by it)."""
    _abp_file(tmp_path / "p.h5")
    norm = fit_normalisation(tmp_path / "p.h5", TRAIN, "minmax")
    dataset = WindowDataset(tmp_path / "p.h5", TRAIN, norm)
    expected = {int(row): (ppg, abp) for ppg, abp, row in (dataset[i] for i in range(9))}
    order = [4, 0, 8, 2, 6, 1, 7, 3, 5]
    loader = PreloadedLoader(dataset, 4, torch.device("cpu"), order)
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and [len(b[2]) for b in batches] == [4, 4, 1]
    rows = [int(r) for _, _, batch_rows in batches for r in batch_rows]
    assert rows == TRAIN[order].tolist()
    for ppg, abp, batch_rows in batches:
        for p, a, row in zip(ppg, abp, batch_rows.tolist(), strict=True):
            assert torch.equal(p, expected[row][0]) and torch.equal(a, expected[row][1])


def _interleaved_file(source: Path, path: Path) -> Path:
    """``source``'s windows with 3 to 12 per subject (unequal), in a shuffled row order: the
    training windows are neither a prefix of the file nor in blocks of equal size, so a
    window's position in the training split and its file row give other subjects."""
    info = read_info(source)
    ppg, abp = read_signals(source)
    keep = []
    for k, subject in enumerate(np.unique(info.subjects)):
        keep.extend(np.flatnonzero(info.subjects == subject)[: 3 + k])
    keep = np.random.default_rng(4).permutation(keep)
    with WindowWriter(path, fs=info.fs, window_length=info.window_length, source_format="t") as w:
        w.append(
            ppg[keep],
            abp[keep],
            subject=info.subjects[keep],
            window_id=info.window_ids[keep],
            split=info.split[keep],
        )
    return path


def test_training_feeds_every_window_with_its_subject_in_a_fresh_order_each_epoch(
    synth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the loop hands the within-subject loss and the PPG noise, seen from inside:
    every batch's subject codes are its windows' own, its consecutive windows are pairs of
    one subject, each epoch deals every training window once, in another order, with the
    epoch's noise. Guards against the sampler getting the subject codes of the file's first
    rows rather than of the training windows, the loop taking the codes of the first rows
    of the file for a batch, the sampler never told the epoch (the same order every
    epoch), and the noise always drawn for epoch 0 (the same noise every epoch)."""
    data = _interleaved_file(synth_file, tmp_path / "mixed.h5")
    info = read_info(data)
    codes = np.unique(info.subjects, return_inverse=True)[1].ravel()
    train_rows = np.flatnonzero(info.split == "train")
    batches: list[tuple[int, list[int]]] = []
    pair_groups: list[list[int]] = []
    noise, pair_losses = train_mod.ppg_noise, train_mod.pair_losses

    def noise_spy(cfg, epoch, rows, like):
        batches.append((epoch, rows.tolist()))
        return noise(cfg, epoch, rows, like)

    def pair_spy(out, target, length, groups, mode, peaks=None):
        pair_groups.append(groups.tolist())
        return pair_losses(out, target, length, groups, mode, peaks)

    monkeypatch.setattr(train_mod, "ppg_noise", noise_spy)
    monkeypatch.setattr(train_mod, "pair_losses", pair_spy)
    cfg = resolve_config(
        "tiny",
        train={
            "device": "cpu",
            "epochs": 2,
            "batch_size": 4,
            "pair_weight": 1.0,
            "paired_sampling": True,
            "ppg_noise": 0.1,
        },
    )
    train(cfg, data, tmp_path / "run")
    assert len(pair_groups) == len(batches)
    for (_, rows), groups in zip(batches, pair_groups, strict=True):
        assert groups == codes[rows].tolist()
    dealt = {e: [r for epoch, rows in batches if epoch == e for r in rows] for e in (0, 1)}
    assert [epoch for epoch, _ in batches] == sorted(epoch for epoch, _ in batches)
    for rows in dealt.values():
        # 46 training windows of 6 subjects (11, 10, 8, 7, 6 and 4): no padding
        assert sorted(rows) == train_rows.tolist() and len(rows) == 46
        pairs = np.asarray(rows).reshape(-1, 2)
        # 2 subjects have an odd count: their left-overs make the one mixed pair
        assert int((codes[pairs[:, 0]] != codes[pairs[:, 1]]).sum()) == 1
    assert dealt[0] != dealt[1]
