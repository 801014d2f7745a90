"""Tests that pin behaviour a mutation-testing audit found unguarded: each one fails when the
bug named in its docstring is put into the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import signal as sps

from innpar_freia.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from innpar_freia.config import ModelConfig
from innpar_freia.data.splits import assign_folds, nested_split
from innpar_freia.errors import CheckpointError, DataError
from innpar_freia.nn.invertible import InvertibleConv1x1LU
from innpar_freia.nn.model import build_inn, build_model
from innpar_freia.nn.mscm import MSCM
from innpar_freia.signal import bandpass, bp_values, diastolic_troughs, resample, systolic_peaks

FS = 125.0

# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("coupling", ["innpar", "glow", "rnvp", "allinone"])
def test_every_coupling_block_gets_the_configured_clamp(coupling: str) -> None:
    """Guards against build_inn not passing ``config.clamp`` on to the couplings (they
    would keep their own default, 0.8 for INN-PAR's, 2.0 for AllInOne's)."""
    inn = build_inn(ModelConfig(coupling=coupling, clamp=0.5, blocks=3), seed=0)
    couplings = [m for m in inn.module_list if not isinstance(m, InvertibleConv1x1LU)]
    assert len(couplings) == 3
    assert [m.clamp for m in couplings] == [0.5, 0.5, 0.5]


def test_the_innpar_clamp_sets_the_saturated_log_scale_of_the_network() -> None:
    """The same bug seen from outside: with every H subnet's output pushed far positive the
    log-scale saturates at s = clamp on each sample, so log det = clamp x 628 samples per
    coupling (0.5 x 628 x 2 = 628), not the default clamp's 0.8 x 628 x 2."""
    cfg = ModelConfig(clamp=0.5, blocks=2, features=4, kernel_size=3, invertible_1x1=False)
    model = build_model(cfg, seed=0).double()
    with torch.no_grad():
        for block in model.inn.module_list:
            block.H.conv_out.bias.fill_(100.0)
        x = model.make_input(torch.randn(4, 625, dtype=torch.float64))
        _, log_det = model(x)
    assert torch.allclose(log_det, torch.full((4,), 628.0, dtype=torch.float64), rtol=1e-6)


def _squeeze(x: torch.Tensor) -> torch.Tensor:
    """Squeeze by 2 as docs/innpar-reference.md defines it, written with explicit phases:
    channel ``c * 2 + p`` holds samples ``p, p + 2, ...`` of channel ``c``."""
    b, c, n = x.shape
    return torch.stack([x[:, :, 0::2], x[:, :, 1::2]], dim=2).reshape(b, 2 * c, n // 2)


def _unsqueeze(x: torch.Tensor) -> torch.Tensor:
    b, c2, n = x.shape
    out = torch.empty(b, c2 // 2, 2 * n, dtype=x.dtype)
    out[:, :, 0::2] = x[:, 0::2]
    out[:, :, 1::2] = x[:, 1::2]
    return out


def _hand_mscm(m: MSCM, x: torch.Tensor, variant: str) -> torch.Tensor:
    """The MSCM written out from the paper's description (docs/innpar-reference.md):
    conv -> ReLU -> squeeze -> conv -> squeeze -> conv -> unsqueeze -> conv -> unsqueeze ->
    conv, 'same' padding with bias; ``mscm-relu`` puts a ReLU after every hidden conv;
    ``mscm-global`` adds an MLP of the first features' time average at the coarsest scale."""

    def conv(layer: torch.nn.Conv1d, h: torch.Tensor) -> torch.Tensor:
        k = layer.weight.shape[-1]
        return F.conv1d(h, layer.weight, layer.bias, padding=k // 2)

    hidden = torch.relu if variant == "mscm-relu" else (lambda h: h)
    h1 = torch.relu(conv(m.conv_in, x))
    h = hidden(conv(m.conv_down1, _squeeze(h1)))
    h = conv(m.conv_mid, _squeeze(h))
    if variant == "mscm-global":
        lin1, lin2 = m.context[0], m.context[2]
        mean = h1.mean(dim=-1)
        g = torch.relu(mean @ lin1.weight.T + lin1.bias) @ lin2.weight.T + lin2.bias
        h = h + g.unsqueeze(-1)
    h = hidden(h)
    h = hidden(conv(m.conv_up1, _unsqueeze(h)))
    return conv(m.conv_out, _unsqueeze(h))


MSCM_VARIANTS = {
    "mscm": {},
    "mscm-relu": {"relu_everywhere": True},
    "mscm-global": {"global_context": True},
}


@pytest.mark.parametrize("variant", sorted(MSCM_VARIANTS))
def test_mscm_computes_the_paper_module_written_out_by_hand(variant: str) -> None:
    """Guards against a ReLU of the MSCM going missing (the first one, or one of mscm-relu's
    hidden ones) or moving, against a wrong squeeze phase order, and against the global
    path being added at the wrong place. Random biases and a random last context layer, so
    that every term shows."""
    torch.manual_seed(0)
    m = MSCM(2, 1, features=4, kernel_size=3, **MSCM_VARIANTS[variant]).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    x = torch.randn(3, 2, 32, dtype=torch.float64)
    assert torch.allclose(m(x), _hand_mscm(m, x, variant), atol=1e-12)
    # The hand-written variants differ from one another on these weights: the comparison
    # above could not pass for a module that dropped its variant's difference.
    others = [_hand_mscm(m, x, v) for v in ("mscm", "mscm-relu") if v != variant]
    assert all((m(x) - o).abs().max() > 1e-3 for o in others)


@pytest.mark.parametrize("variant", sorted(MSCM_VARIANTS))
def test_every_mscm_variant_is_not_linear(variant: str) -> None:
    """Guards against the first ReLU being dropped, which makes the paper's MSCM (its only
    nonlinearity) a linear map: then m(-x) = -m(x) at zero bias, and m(x) + m(y) = m(x + y)
    + m(0) with biases."""
    torch.manual_seed(1)
    m = MSCM(1, 1, features=8, kernel_size=5, **MSCM_VARIANTS[variant]).double()
    x = torch.randn(2, 1, 64, dtype=torch.float64)
    y = torch.randn(2, 1, 64, dtype=torch.float64)
    scale = m(x).abs().max()
    # A fresh module has zero biases: a linear one would be odd.
    assert (m(-x) + m(x)).abs().max() > 0.05 * scale
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.3)
    zero = torch.zeros_like(x)
    assert (m(x) + m(y) - m(x + y) - m(zero)).abs().max() > 0.05 * scale


def test_mscm_relu_has_a_relu_after_each_hidden_convolution() -> None:
    """Guards against one of mscm-relu's hidden ReLUs being dropped: on this input every
    hidden convolution's output has negative values (recorded with hooks), so each ReLU
    changes the result, and the module must equal the hand-written forward with a ReLU
    after every hidden convolution (and differ from the paper's MSCM, same weights)."""
    torch.manual_seed(2)
    relu = MSCM(1, 1, features=4, kernel_size=3, relu_everywhere=True).double()
    plain = MSCM(1, 1, features=4, kernel_size=3).double()
    plain.load_state_dict(relu.state_dict())
    x = torch.randn(2, 1, 32, dtype=torch.float64)
    assert (relu(x) - plain(x)).abs().max() > 1e-3
    seen: dict[str, torch.Tensor] = {}
    for name in ("conv_down1", "conv_mid", "conv_up1"):
        getattr(relu, name).register_forward_hook(
            lambda mod, inp, out, name=name: seen.__setitem__(name, out)
        )
    out = relu(x)
    for name in ("conv_down1", "conv_mid", "conv_up1"):
        assert seen[name].min() < 0  # so that the ReLU after it does something
    assert torch.allclose(out, _hand_mscm(relu, x, "mscm-relu"), atol=1e-12)


@pytest.mark.parametrize("cfg", [{"blocks": 1, "features": 2}, {"blocks": 2, "features": 4}])
def test_ppg_to_abp_is_output_channel_zero_cropped_from_the_start(cfg: dict) -> None:
    """Guards against cropping the padded output (628 samples) from the end instead of the
    start, or taking channel 1: the prediction would be shifted by the padding (3 samples)
    or be the gradient channel. docs/innpar-reference.md: 'Only samples 0..624 of output
    channel 0 are the reconstructed ABP'; the reverse pass likewise."""
    model = build_model(ModelConfig(**cfg), seed=0)
    x = torch.randn(3, 625)
    with torch.no_grad():
        forward, _ = model(model.make_input(x))
        reverse, _ = model(model.make_input(x), rev=True)
        assert forward.shape == (3, 2, 628)
        assert torch.allclose(model.ppg_to_abp(x), forward[:, 0, :625], atol=1e-6)
        assert torch.allclose(model.abp_to_ppg(x), reverse[:, 0, :625], atol=1e-6)
        # The alternatives differ by far more than the tolerance.
        assert (forward[:, 0, :625] - forward[:, 0, 3:]).abs().max() > 1e-2
        assert (forward[:, 0, :625] - forward[:, 1, :625]).abs().max() > 1e-2


def test_the_whole_network_s_reverse_log_det_cancels_the_forward_one() -> None:
    """The same bug through the SequenceINN: log det of the forward pass plus that of the
    reverse pass of its output is 0, with 1x1 convolutions that change volume."""
    model = build_model(ModelConfig(blocks=2, features=4, kernel_size=3), seed=5).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("log_s"):
                p.add_(torch.tensor([0.2, 0.1], dtype=torch.float64))
    x = model.make_input(torch.randn(2, 625, dtype=torch.float64))
    with torch.no_grad():
        y, log_det = model(x)
        x_back, log_det_rev = model(y, rev=True)
    assert torch.allclose(x_back, x, atol=1e-10)
    assert log_det.abs().min() > 100  # the 1x1 convolutions alone give 2 * 628 * 0.3
    assert torch.allclose(log_det + log_det_rev, torch.zeros(2, dtype=torch.float64), atol=1e-8)


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------


def _edited_checkpoint(tiny_run: Path, tmp_path: Path, edit) -> Path:
    """A copy of the tiny run's checkpoint with its payload changed by ``edit``."""
    payload = read_checkpoint(tiny_run / "checkpoints" / "best.pt")
    edit(payload)
    return save_checkpoint(tmp_path / "edited.pt", payload)


def test_an_unedited_copy_of_the_checkpoint_loads(tiny_run: Path, tmp_path: Path) -> None:
    """The edits below are what is refused, not the copying."""
    ckpt = load_checkpoint(_edited_checkpoint(tiny_run, tmp_path, lambda p: None))
    assert ckpt.normalisation.abp_scale > 0
    assert read_checkpoint(ckpt.path)["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize("scale", [0.0, -20.0])
def test_a_checkpoint_with_a_non_positive_abp_scale_is_refused(
    tiny_run: Path, tmp_path: Path, scale: float
) -> None:
    """Guards against load_checkpoint accepting ``abp_scale <= 0``: every prediction would
    be a constant (0) or an upside-down ABP, without a word."""

    def edit(payload: dict) -> None:
        payload["normalisation"]["abp_scale"] = scale

    path = _edited_checkpoint(tiny_run, tmp_path, edit)
    with pytest.raises(CheckpointError, match=r"is damaged: its ABP normalisation is offset"):
        load_checkpoint(path)


def test_a_checkpoint_of_the_next_format_version_is_refused(tiny_run: Path, tmp_path) -> None:
    """Guards against an off-by-one in the version check, which let format FORMAT_VERSION + 1
    (written by a newer innpar-freia) be read as if it were this one."""

    def edit(payload: dict) -> None:
        payload["format_version"] = FORMAT_VERSION + 1

    path = _edited_checkpoint(tiny_run, tmp_path, edit)
    message = rf"has checkpoint format {FORMAT_VERSION + 1}; .* reads up to {FORMAT_VERSION}"
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="upgrade innpar-freia"):
        load_checkpoint(path)


@pytest.mark.parametrize("direction", ["abp", "ppg"])
def test_predictions_refuse_a_sample_beyond_float32_range(tiny_run: Path, direction: str):
    """Guards against the input check testing only isfinite in float64: a 1e39 sample (inf
    in float32, where the network runs) must be refused by name, not turned into NaN, or
    z-scored into a window of zeros and one spike and predicted from."""
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(3, ckpt.window_length)) + (90.0 if direction == "ppg" else 0.0)
    windows[2, 100] = 1e39
    predict = ckpt.predict_abp if direction == "abp" else ckpt.predict_ppg
    assert np.isfinite(predict(windows[:2])).all()  # the other windows are fine
    with pytest.raises(ValueError, match=r"1 of 3 .* beyond float32's range \(first: window 2\)"):
        predict(windows)
    windows[2, 100] = -1e39
    with pytest.raises(ValueError, match="beyond float32's range"):
        predict(windows)


# --------------------------------------------------------------------------------------
# Folds and splits
# --------------------------------------------------------------------------------------


def test_assign_folds_refuses_one_fold_more_than_there_are_subjects() -> None:
    """Guards against an off-by-one in the subject count check: K = subjects + 1 left one
    fold empty (and a nested split without a test or validation set)."""
    subjects = np.repeat(["a", "b", "c", "d"], [5, 3, 2, 1])
    with pytest.raises(DataError, match="at least 5 subjects, but there are 4"):
        assign_folds(subjects, 5)
    fold_of = assign_folds(subjects, 4)  # one subject a fold is still possible
    assert sorted(fold_of.values()) == [0, 1, 2, 3]


def test_nested_split_leaves_windows_without_a_fold_unassigned() -> None:
    """Guards against windows of fold -1 (no fold) being put into training."""
    fold = np.array([0, 1, 2, -1, 2, 1, -1, 0, 3])
    split = nested_split(fold, test_fold=1)
    assert split.tolist() == ["train", "test", "val", "", "val", "test", "", "train", "train"]


def test_assign_folds_balances_windows_not_subjects() -> None:
    """Guards against balancing the folds by number of subjects: by hand, largest first to
    the fold with the fewest windows, 30 | 20 + 20 | then ten 1-window subjects all to the
    first fold: 40 and 40 windows (by subject count: 35 and 45)."""
    sizes = [30, 20, 20] + [1] * 10
    subjects = np.repeat([f"s{i:02d}" for i in range(len(sizes))], sizes)
    for seed in range(3):
        fold_of = assign_folds(subjects, 2, seed=seed)
        counts = np.bincount([fold_of[s] for s in subjects], minlength=2)
        assert counts.tolist() == [40, 40]
        assert fold_of["s00"] != fold_of["s01"] == fold_of["s02"]
    # Very unequal subjects, 3 folds, by hand: 200 | 150 | 90; 60 to the third (150); 40
    # to the second (190, its fewer subjects break the tie); the small ones (5, 4, 3, 2,
    # 2, 1, 1) all to the third (168). The spread is at most the largest subject.
    sizes = [200, 3, 150, 2, 2, 90, 1, 1, 60, 5, 40, 4]
    subjects = np.repeat([f"u{i:02d}" for i in range(len(sizes))], sizes)
    fold_of = assign_folds(subjects, 3)
    counts = np.bincount([fold_of[s] for s in subjects], minlength=3)
    assert sorted(counts.tolist()) == [168, 190, 200]
    assert counts.max() - counts.min() <= max(sizes)


# --------------------------------------------------------------------------------------
# Signal functions
# --------------------------------------------------------------------------------------


def test_bandpass_caps_its_upper_edge_below_nyquist() -> None:
    """Guards against the cap of the upper cutoff at 0.45 fs going missing or moving: at
    10 Hz an 8 Hz upper edge is above Nyquist (scipy would raise); it is 4.5 Hz instead."""
    fs = 10.0
    t = np.arange(600) / fs
    x = np.sin(2 * np.pi * 1.0 * t) + np.sin(2 * np.pi * 4.9 * t)
    y = bandpass(x, fs, low=0.5, high=8.0)
    # The documented filter (zero-phase 4th-order Butterworth) with the edge at 4.5 Hz.
    sos = sps.butter(4, [0.5, 4.5], btype="bandpass", fs=fs, output="sos")
    assert np.allclose(y, sps.sosfiltfilt(sos, x), atol=1e-12)
    # 1 Hz passes, 4.9 Hz (above the capped edge) is attenuated, away from the edges.
    inner = slice(100, 500)
    one_hz = np.sin(2 * np.pi * 1.0 * t)
    assert np.abs(bandpass(one_hz, fs, low=0.5, high=8.0)[inner] - one_hz[inner]).max() < 0.05
    fast = np.sin(2 * np.pi * 4.9 * t)
    assert np.abs(bandpass(fast, fs, low=0.5, high=8.0)[inner]).max() < 0.5
    with pytest.raises(ValueError, match="too low"):
        bandpass(x, 1.0, low=0.5, high=8.0)  # cap 0.45 Hz is below the 0.5 Hz low edge


@pytest.mark.parametrize(
    ("fs_in", "fs_out", "n_in", "n_out"),
    [(125, 128, 625, 640), (128, 125, 640, 625), (125, 250, 625, 1250), (1000, 125, 8000, 1000)],
)
def test_resample_by_a_rational_ratio_keeps_a_sine(fs_in, fs_out, n_in, n_out) -> None:
    """Guards against a wrong resampling ratio (numerator and denominator swapped, or a
    denominator limit that rounds 128/125 to 1): the length is n * fs_out / fs_in and a
    2 Hz sine is the same sine at the new rate."""
    t_in = np.arange(n_in) / fs_in
    y = resample(np.sin(2 * np.pi * 2.0 * t_in), fs_in, fs_out)
    assert y.shape == (n_out,)
    t_out = np.arange(n_out) / fs_out
    inner = slice(n_out // 10, -n_out // 10)  # zero padding pulls the edges towards 0
    assert np.abs(y[inner] - np.sin(2 * np.pi * 2.0 * t_out[inner])).max() < 1e-2
    two_d = resample(np.stack([np.sin(2 * np.pi * 2.0 * t_in)] * 2), fs_in, fs_out)
    assert two_d.shape == (2, n_out) and np.allclose(two_d[1], y)


def _beat(n: np.ndarray, period: int, dbp: float, sbp: float, rise: int) -> np.ndarray:
    """One beat of ``period`` samples: DBP exactly at sample 0 (and ``period``), a raised
    cosine up to SBP exactly at ``rise``, then a raised cosine back down."""
    up = dbp + (sbp - dbp) * (0.5 - 0.5 * np.cos(np.pi * n / rise))
    down = dbp + (sbp - dbp) * (0.5 + 0.5 * np.cos(np.pi * (n - rise) / (period - rise)))
    return np.where(n <= rise, up, down)


def _train(beat: np.ndarray, samples: int = 625) -> np.ndarray:
    return np.tile(beat, samples // beat.size + 1)[:samples]


def _with_bump(base: np.ndarray, centre: int, width: int, height: float) -> np.ndarray:
    """``base`` plus a raised-cosine bump of ``height`` mmHg over ``centre +- width``."""
    n = np.arange(base.size)
    bump = np.where(
        np.abs(n - centre) < width, 0.5 + 0.5 * np.cos(np.pi * (n - centre) / width), 0.0
    )
    return base + height * bump


def test_one_systolic_peak_a_beat_despite_a_notch_and_a_secondary_wave() -> None:
    """Guards against the detector's prominence (max(5, 0.3 (P95 - P5))) being weakened, on
    peaks or on troughs: at 75 bpm (100 samples a beat at 125 Hz) the beats peak at 140 mmHg
    on samples 25, 125, ..., 525 (6 peaks in 5 s) and fall to exactly 80 mmHg at 0, 100, ...;
    a secondary wave 45 samples (0.36 s, beyond the peak distance) after each peak makes a
    dicrotic notch and a small peak, both about 10 mmHg prominent: more than 5, less than
    0.3 x (P95 - P5), about 18. SBP 140 and DBP 80 exactly."""
    n = np.arange(100)
    beat = _with_bump(_beat(n, 100, 80.0, 140.0, 25), centre=72, width=14, height=25.0)
    x = _train(beat)
    # By construction: the secondary peak stands 5..15 mmHg over the notch before it, and
    # the protocol's threshold is above that.
    notch = int(np.argmin(beat[40:70])) + 40
    second = int(np.argmax(beat[60:90])) + 60
    assert 5.0 < beat[second] - beat[notch] < 15.0 and second - 25 > 0.3 * FS
    p95, p5 = np.percentile(x, [95, 5])
    assert 0.3 * (p95 - p5) > 16.0
    assert systolic_peaks(x, FS).tolist() == [25, 125, 225, 325, 425, 525]
    assert diastolic_troughs(x, FS).tolist() == [100, 200, 300, 400, 500, 600]
    sbp, dbp, map_ = bp_values(x, FS)
    assert sbp == 140.0 and dbp == 80.0 and map_ == pytest.approx(x.mean())


def test_two_humps_closer_than_0_3_s_are_one_beat() -> None:
    """Guards against a shorter minimum peak distance than 0.3 s (37 samples): a second
    systolic hump 0.2 s (25 samples) after the first, 30 mmHg over the valley between them
    (prominent enough to count on its own), belongs to the same beat: one peak a beat, at
    the higher hump, and SBP is its value."""
    flat = np.full(100, 80.0)
    beat = _with_bump(_with_bump(flat, centre=20, width=15, height=40.0), 45, 12, 30.0)
    assert beat[20] == 120.0 and beat[45] == 110.0 and beat[30:40].min() < 85.0
    x = _train(beat, 600)
    assert systolic_peaks(x, FS).tolist() == [20, 120, 220, 320, 420, 520]
    assert bp_values(x, FS)[0] == 120.0
    # Upside down, the two dips are one diastolic trough, at the deeper one: DBP 80.
    assert diastolic_troughs(200.0 - x, FS).tolist() == [20, 120, 220, 320, 420, 520]
    assert bp_values(200.0 - x, FS)[1] == 80.0


def test_every_beat_is_found_at_180_bpm() -> None:
    """Guards against a longer minimum peak distance than 0.3 s: at 42 samples a beat (0.336
    s, 179 bpm) every peak and every trough is found; a distance of 0.35 s or more skips
    beats."""
    n = np.arange(42)
    x = _train(_beat(n, 42, 70.0, 130.0, 12))
    peaks = systolic_peaks(x, FS)
    assert peaks.tolist() == list(range(12, 625, 42))
    troughs = diastolic_troughs(x, FS)
    assert troughs.tolist() == list(range(42, 624, 42))
    sbp, dbp, _ = bp_values(x, FS)
    assert sbp == 130.0 and dbp == 70.0


def test_prominence_threshold_uses_the_5th_to_95th_percentile_range() -> None:
    """Guards against other percentiles in the threshold: a window of 40 mmHg beats with one
    180 mmHg artefact spike. P95 - P5 ignores the spike (threshold about 12 mmHg, so every
    beat counts); the full range would put the threshold above the beats."""
    n = np.arange(100)
    x = _train(_beat(n, 100, 80.0, 120.0, 25))
    x = _with_bump(x, centre=470, width=3, height=140.0)  # 3 samples of 6 over 140 mmHg
    p95, p5 = np.percentile(x, [95, 5])
    assert 30 < p95 - p5 < 45  # so the protocol's threshold is under 13.5 mmHg
    peaks = systolic_peaks(x, FS)
    assert {25, 125, 225, 325, 525} <= set(peaks.tolist())
    assert bp_values(x, FS)[0] == 120.0  # the median peak, not the spike


def _pulses(amplitude: float) -> np.ndarray:
    """625 samples at 80 mmHg with six narrow raised-cosine pulses (25 samples) of
    ``amplitude`` mmHg on samples 50, 150, ..., 550."""
    x = np.full(625, 80.0)
    for centre in range(50, 600, 100):
        x = _with_bump(x, centre, 13, amplitude)
    return x


def _protocol_threshold(x: np.ndarray) -> float:
    """docs/protocol.md: ``max(5.0, 0.3 * (percentile(x, 95) - percentile(x, 5)))``."""
    p95, p5 = np.percentile(x, [95, 5])
    return max(5.0, 0.3 * (p95 - p5))


@pytest.mark.parametrize("amplitude", [40.0, 10.0])
@pytest.mark.parametrize("factor", [1.06, 0.94])
def test_a_peak_counts_exactly_when_its_prominence_reaches_the_protocol_threshold(
    amplitude: float, factor: float
) -> None:
    """Guards against any change to the threshold max(5, 0.3 (P95 - P5)): its factor, its
    percentiles, its 5 mmHg floor. A bump on the flat stretch between two pulses (its
    prominence is its height) 6 % over the protocol's threshold is a systolic peak, 6 %
    under it is not. At 40 mmHg pulses the threshold is 0.3 (P95 - P5), about 10.5 mmHg
    (the 1st..99th percentiles would give 11.8, the 10th..90th 8.1); at 10 mmHg it is the
    5 mmHg floor."""
    base = _pulses(amplitude)
    height = factor * _protocol_threshold(base)
    x = _with_bump(base, 300, 8, height)
    threshold = _protocol_threshold(x)  # the bump's 15 samples do not move the percentiles
    assert threshold == pytest.approx(_protocol_threshold(base), rel=1e-3)
    assert (threshold == 5.0) == (amplitude == 10.0)
    expected = [50, 150, 250, 300, 350, 450, 550] if factor > 1 else list(range(50, 600, 100))
    assert systolic_peaks(x, FS).tolist() == expected
    # The same for the diastolic troughs of the window upside down (same percentile range).
    assert diastolic_troughs(200.0 - x, FS).tolist() == expected
