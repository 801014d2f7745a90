"""Tests that pin what a mutation audit of the checkpoints (innpar_freia.checkpoint: reading
and validating a checkpoint file, the refusals and messages for damaged, truncated and
foreign files, the model, configuration and normalisation rebuilt from it, and
``Checkpoint.predict_abp``/``predict_ppg``) and of ``innpar check`` (innpar_freia.checks:
the round-trip, log-det and gradient checks and their pass/fail thresholds) found
unguarded: each one fails when the bug named in its docstring is put into the package.
Expected values are worked out by hand: a checkpoint's network is replaced by a stand-in
whose output is known, or a check is given a stand-in model that is wrong by a known
amount."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from innpar_freia.checkpoint import (
    FORMAT,
    Checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from innpar_freia.config import resolve_config
from innpar_freia.data.dataset import Normalisation
from innpar_freia.errors import CheckpointError, DataError
from innpar_freia.nn.model import build_model


@pytest.fixture(scope="module")
def tiny() -> tuple:
    cfg = resolve_config("tiny", train={"device": "cpu"})
    return cfg, build_model(cfg.model, seed=0)


# --------------------------------------------------------------------------------------
# Reading a checkpoint file
# --------------------------------------------------------------------------------------


def test_garbage_that_torch_reads_as_an_index_error_is_not_passed_on(tmp_path: Path):
    """Guards against mapping only torch's KeyError, not its IndexError, to "not a PyTorch
    file": the one byte ``a`` (pickle's APPEND with nothing to append to) made torch's
    unpickler fail with "pop from empty list", which the message passed on to the user."""
    path = tmp_path / "a.pt"
    path.write_bytes(b"a")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == (
        f"{path} is not a readable innpar-freia checkpoint (corrupt or another format: "
        "not a PyTorch file)"
    )


def test_a_dict_with_another_format_marker_is_not_a_checkpoint(tmp_path: Path):
    """Guards against checking only that a ``format`` key is there: another program's
    file with a ``format`` of its own (and every part ours has) was read as ours."""
    path = tmp_path / "other.pt"
    body = {"run_config": {}, "model_state": {}, "normalisation": {}, "format_version": 1}
    torch.save({"format": "someone-else.checkpoint", **body}, path)
    with pytest.raises(
        CheckpointError, match=f"is not an innpar-freia checkpoint \\(no '{FORMAT}'"
    ):
        read_checkpoint(path)


@pytest.mark.parametrize("saved", [[FORMAT, 1], torch.zeros(3), "innpar-freia.checkpoint"])
def test_a_file_that_is_not_a_dict_is_not_a_checkpoint(tmp_path: Path, saved):
    """Guards against dropping the ``isinstance(payload, dict)`` test: a PyTorch file of a
    list, a tensor or a string failed with an AttributeError traceback (``.get``)."""
    path = tmp_path / "list.pt"
    torch.save(saved, path)
    with pytest.raises(
        CheckpointError, match=f"is not an innpar-freia checkpoint \\(no '{FORMAT}'"
    ):
        read_checkpoint(path)


def _bare_payload(tiny) -> dict:
    """A checkpoint's three required parts only: configuration, weights, normalisation."""
    cfg, model = tiny
    norm = {"method": "minmax", "abp_offset": 50.0, "abp_scale": 100.0}
    return {"run_config": cfg.to_dict(), "model_state": model.state_dict(), "normalisation": norm}


def test_a_checkpoint_of_only_its_three_parts_loads_with_empty_defaults(tiny, tmp_path: Path):
    """Guards against the defaults of what a checkpoint may leave out being made up: one
    saved with only its configuration, weights and normalisation has completed no epoch
    (0), no baselines, no data description and no metrics. And against the format version
    written being raised without need."""
    payload = _bare_payload(tiny)
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "bare.pt", payload))
    assert (ckpt.epoch, ckpt.baselines, ckpt.data, ckpt.metrics) == (0, None, {}, {})
    assert ckpt.training_copies is None  # a run from before the keys were kept
    # Format 1, which every earlier innpar-freia reads: a new number would lock them out.
    assert read_checkpoint(ckpt.path)["format_version"] == 1
    assert ckpt.normalisation == Normalisation("minmax", 50.0, 100.0)


@pytest.mark.parametrize("part", ["normalisation", "baselines"])
def test_a_run_record_part_saved_as_a_tensor_is_one_message(tiny, tmp_path: Path, part: str):
    """A damaged checkpoint whose normalisation or baselines are a tensor (the file is
    still read with ``weights_only=True``) crashed load_checkpoint with torch's IndexError
    ("too many indices for tensor") or RuntimeError ("Boolean value of Tensor with more
    than one value is ambiguous"), after a torch warning, not one message naming what is
    damaged. Fails without the type check in load_checkpoint."""
    payload = _bare_payload(tiny)
    payload[part] = torch.zeros(3)
    path = save_checkpoint(tmp_path / "t.pt", payload)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one message: no torch warning on the way
        with pytest.raises(CheckpointError, match=f"damaged: its {part} is a Tensor, not a table"):
            load_checkpoint(path)


@pytest.mark.parametrize(
    "copies",
    [
        torch.zeros(3, dtype=torch.int64),
        {"ppg": torch.zeros(3, dtype=torch.int64)},
        {"ppg": torch.zeros(3, dtype=torch.int64), "abp": torch.zeros(3)},
        {"ppg": torch.zeros(3, dtype=torch.int64), "abp": torch.zeros((3, 1), dtype=torch.int64)},
    ],
)
def test_damaged_training_copies_are_one_message(tiny, tmp_path: Path, copies):
    """The training windows' keys, which innpar eval compares every scored window with,
    are checked on load for what they are (two 1-D int64 tensors), not met as a numpy
    error inside eval; intact ones load as numpy arrays."""
    payload = _bare_payload(tiny)
    payload["training_copies"] = copies
    path = save_checkpoint(tmp_path / "t.pt", payload)
    with pytest.raises(CheckpointError, match="damaged: its training_copies are not two lists"):
        load_checkpoint(path)
    payload["training_copies"] = {k: torch.tensor([-5, 7]) for k in ("ppg", "abp")}
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "t.pt", payload))
    assert {k: v.tolist() for k, v in ckpt.training_copies.items()} == {
        "ppg": [-5, 7],
        "abp": [-5, 7],
    }


def test_a_checkpoint_loads_and_predicts_under_a_float64_default(
    tiny, tmp_path: Path, float64_default
):
    """Under ``torch.set_default_dtype(torch.float64)`` (scientific notebooks) the model a
    checkpoint was loaded into was float64 but for its 1x1 convolutions, and predict_abp
    failed deep inside ("expected m1 and m2 to have the same dtype"). It is float32, as
    saved, and predicts what the model itself does; ``innpar check``'s float64 copy too."""
    from innpar_freia.checks import run_checks

    cfg, model = tiny
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "a.pt", _bare_payload(tiny)))
    assert torch.get_default_dtype() == torch.float64
    assert {t.dtype for t in ckpt.model.state_dict().values()} == {torch.float32}
    ppg = np.random.default_rng(0).normal(size=(3, cfg.model.window_length))
    same = Checkpoint(tmp_path / "a.pt", model, cfg, ckpt.normalisation, None)
    abp = ckpt.predict_abp(ppg)
    np.testing.assert_array_equal(abp, same.predict_abp(ppg))
    np.testing.assert_array_equal(ckpt.predict_ppg(abp), same.predict_ppg(abp))
    assert all(run_checks(ckpt.model)["checks"].values())


# --------------------------------------------------------------------------------------
# Predictions of a checkpoint whose network is a stand-in
# --------------------------------------------------------------------------------------


def stand_in(tiny, tmp_path: Path, forward=None) -> Checkpoint:
    """The tiny network in a checkpoint with ABP normalised as (mmHg - 50) / 100; its
    forward pass replaced by ``forward`` when given."""
    cfg, model = tiny
    ckpt = Checkpoint(tmp_path / "t.pt", model, cfg, Normalisation("minmax", 50.0, 100.0), None)
    if forward is not None:
        ckpt.model = build_model(cfg.model, seed=0)
        ckpt.model.ppg_to_abp = forward  # type: ignore[method-assign]
    return ckpt


def waves(n: int, length: int = 625) -> np.ndarray:
    t = np.arange(length) / 125.0
    return np.stack([np.sin(2 * np.pi * (1.0 + 0.1 * k) * t) + 0.2 * k for k in range(n)])


def test_the_first_window_the_network_overflowed_in_is_named(tiny, tmp_path: Path):
    """Guards against naming the last bad window as the first: windows 1 and 3 of 4 come
    out with a NaN, and the message must point at window 1."""

    def two_nans(x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y[1, 10] = y[3, 20] = float("nan")
        return y

    ckpt = stand_in(tiny, tmp_path, two_nans)
    with pytest.raises(CheckpointError, match=r"for 2 of 4 windows \(first: window 1\)"):
        ckpt.predict_abp(waves(4))


def test_the_first_window_with_a_gap_is_named(tiny, tmp_path: Path):
    """Guards against naming the last window with a NaN or inf as the first one: windows 1
    and 2 of 3 hold one each, and the message must point at window 1."""
    ckpt = stand_in(tiny, tmp_path)
    ppg = waves(3)
    ppg[1, 5], ppg[2, 9] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"2 of 3 PPG window\(s\) .* \(first: window 1\)"):
        ckpt.predict_abp(ppg)


def test_a_rate_equal_to_the_training_rate_up_to_rounding_is_accepted(tiny, tmp_path: Path):
    """Guards against comparing ``fs`` exactly: a rate computed as 1 / (1 / 125) or read
    from a file as 125.00000000001 Hz was refused as another rate than 125 Hz (innpar eval
    compares with np.isclose too)."""
    ckpt = stand_in(tiny, tmp_path)
    ppg = waves(2)
    expected = ckpt.predict_abp(ppg)
    np.testing.assert_array_equal(ckpt.predict_abp(ppg, fs=125.0 + 1e-9), expected)
    assert ckpt.predict_ppg(90.0 + 20.0 * ppg, fs=125.0 - 1e-9).shape == (2, 625)


def test_the_rate_is_the_checkpoint_s_own(tmp_path: Path):
    """Guards against ``Checkpoint.fs`` not read from the checkpoint's configuration (125
    Hz whatever it says): a model trained at 250 Hz must take windows at 250 Hz and refuse
    them at 125 Hz."""
    cfg = resolve_config("tiny", model={"fs": 250.0})
    model = build_model(cfg.model, seed=0)
    ckpt = Checkpoint(tmp_path / "t.pt", model, cfg, Normalisation("minmax", 50.0, 100.0), None)
    assert ckpt.fs == 250.0
    assert ckpt.predict_abp(waves(1), fs=250.0).shape == (1, 625)
    with pytest.raises(ValueError, match=r"the windows are at 125 Hz, but t\.pt was trained on"):
        ckpt.predict_abp(waves(1), fs=125.0)


def test_a_rate_given_by_position_is_refused_not_taken_for_the_batch_size(tmp_path: Path):
    """``predict_abp(ppg, 125)`` put the rate into ``batch_size`` and checked no rate: a
    model trained at 250 Hz predicted from 125 Hz windows without a word. The arguments
    after the windows are keyword-only."""
    cfg = resolve_config("tiny", model={"fs": 250.0})
    model = build_model(cfg.model, seed=0)
    ckpt = Checkpoint(tmp_path / "t.pt", model, cfg, Normalisation("minmax", 50.0, 100.0), None)
    with pytest.raises(TypeError, match="positional argument"):
        ckpt.predict_abp(waves(1), 125)
    with pytest.raises(TypeError, match="positional argument"):
        ckpt.predict_ppg(90.0 + 20.0 * waves(1), 125)


def test_a_boolean_rate_is_a_type_error(tiny, tmp_path: Path):
    """Guards against taking ``fs=True`` as 1 Hz ("the windows are at 1 Hz ..."): a flag
    given for the rate is a mistake of type, named as such."""
    ckpt = stand_in(tiny, tmp_path)
    with pytest.raises(TypeError, match="fs must be one number"):
        ckpt.predict_abp(waves(1), fs=True)


def test_integer_windows_are_a_signal(tiny, tmp_path: Path):
    """Guards against refusing integer windows (an ADC's int16 counts are a PPG, and ABP
    in whole mmHg is ABP): they must give what the same values as floats give."""
    ckpt = stand_in(tiny, tmp_path)
    counts = np.round(1000.0 * waves(2)).astype(np.int16)
    np.testing.assert_array_equal(
        ckpt.predict_abp(counts), ckpt.predict_abp(counts.astype(np.float64))
    )
    mmhg = (90 + 20 * waves(2)).round().astype(np.int64)
    np.testing.assert_array_equal(ckpt.predict_ppg(mmhg), ckpt.predict_ppg(mmhg.astype(float)))


def test_one_window_given_without_its_batch_axis_gets_the_hint(tiny, tmp_path: Path):
    """Guards against the hint for a single 1-D window ("add an axis, x[None]") given for
    another shape or left out."""
    ckpt = stand_in(tiny, tmp_path)
    with pytest.raises(ValueError, match=r"got shape \(625,\) \(one window: add an axis"):
        ckpt.predict_abp(waves(1)[0])
    with pytest.raises(ValueError, match=r"got shape \(\)$"):
        ckpt.predict_abp(np.float64(1.0))


# --------------------------------------------------------------------------------------
# innpar check (innpar_freia.checks)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_block():
    from innpar_freia.config import ModelConfig

    return build_model(ModelConfig(blocks=1, features=2), seed=0)


class _Scaled:
    """A stand-in network over one channel: forward y = 2 x with log-det 1 per window; its
    reverse pass returns y / 2, plus ``error`` from its second call on (the one
    ``_roundtrip`` makes on the ABP side) when ``error`` is set."""

    def __init__(self, error: float = 0.0):
        self.error, self.reverse_calls = error, 0

    def make_input(self, v: torch.Tensor) -> torch.Tensor:
        return v[:, None, :]

    def __call__(self, x: torch.Tensor, rev: bool = False):
        ones = torch.ones(len(x), dtype=x.dtype)
        if not rev:
            return 2 * x, ones
        self.reverse_calls += 1
        return x / 2 + (self.error if self.reverse_calls > 1 else 0.0), -ones


def test_the_reverse_round_trip_is_f_of_f_inverse_of_the_abp_windows():
    """Guards against ``_roundtrip`` reporting the PPG side's round trip as the ABP side's,
    and against running the ABP side forward first (``f^-1(f(y))`` instead of
    ``f(f^-1(y))``). With a reverse pass off by 1e-3 on the ABP windows only:
    f(f^-1(y)) = 2 (y / 2 + 1e-3) = y + 2e-3, so the reverse error is 2e-3, and the forward
    one exactly 0; the log-dets (+1 and -1) cancel exactly."""
    from innpar_freia.checks import _roundtrip

    v = torch.linspace(-1, 1, 8, dtype=torch.float64).view(2, 4)
    result = _roundtrip(_Scaled(error=1e-3), v, 0.5 * v)
    assert result["forward"] == 0.0 and result["logdet_cancel"] == 0.0
    assert result["reverse"] == pytest.approx(2e-3, rel=1e-9)


def _fake_roundtrips(monkeypatch, by_dtype: dict) -> list:
    """Replace ``_roundtrip`` by one returning ``by_dtype[dtype]``; returns the (ppg, abp)
    tensors it was given."""
    import innpar_freia.checks as checks

    seen = []

    def fake(model, ppg, abp):
        seen.append((ppg, abp))
        return dict(by_dtype[ppg.dtype])

    monkeypatch.setattr(checks, "_roundtrip", fake)
    return seen


def test_the_report_puts_each_round_trip_under_its_name(one_block, monkeypatch):
    """Guards against the float64 forward or reverse error reported from the float32 run
    or from the other direction, and against n_windows and window_length swapped. Each
    round trip is given a distinct error, all within the tolerances."""
    from innpar_freia.checks import run_checks

    _fake_roundtrips(
        monkeypatch,
        {
            torch.float32: {"forward": 3e-6, "reverse": 4e-6, "logdet_cancel": 1.0},
            torch.float64: {"forward": 5e-11, "reverse": 2e-11, "logdet_cancel": 7e-9},
        },
    )
    ppg, abp = waves(3, one_block.config.window_length), 90 + 20 * waves(3)
    result = run_checks(one_block, ppg, abp, seed=0)
    assert result["roundtrip_max_abs_float32"] == 4e-6
    assert result["roundtrip_max_abs_float64"] == 5e-11
    assert result["roundtrip_forward_float64"] == 5e-11
    assert result["roundtrip_reverse_float64"] == 2e-11
    assert result["logdet_cancel_max_abs"] == 7e-9  # the float64 one
    assert (result["n_windows"], result["window_length"]) == (3, 625)
    assert result["passed"] is True


@pytest.mark.parametrize(
    ("err32", "err64", "cancel", "failed"),
    [
        (1e-5, 1e-10, 1e-8, []),  # each exactly at its tolerance: passes
        (1.01e-5, 1e-10, 1e-8, ["roundtrip_float32"]),
        (1e-5, 1.01e-10, 1e-8, ["roundtrip_float64"]),
        (1e-5, 1e-10, 1.01e-8, ["logdet_forward_reverse_cancel"]),
    ],
)
def test_each_round_trip_check_passes_at_its_tolerance_and_fails_just_above(
    one_block, monkeypatch, err32, err64, cancel, failed
):
    """Guards against the documented tolerances (round trip <= 1e-5 in float32, <= 1e-10
    in float64, log-dets cancelling to <= 1e-8) being tightened, loosened or made strict
    (``<``), and against the cancellation check dropped (always passing)."""
    from innpar_freia.checks import run_checks

    _fake_roundtrips(
        monkeypatch,
        {
            torch.float32: {"forward": err32, "reverse": 0.0, "logdet_cancel": 0.0},
            torch.float64: {"forward": 0.0, "reverse": err64, "logdet_cancel": cancel},
        },
    )
    result = run_checks(one_block, waves(2), 90 + 20 * waves(2), seed=0)
    assert sorted(k for k, ok in result["checks"].items() if not ok) == failed
    assert result["passed"] is (failed == [])


def test_the_check_s_inputs_are_z_scored_ppg_and_abp_normalised_as_given(one_block, monkeypatch):
    """Guards against the PPG given to the round trips in its own units (not z-scored per
    window), the checkpoint's ABP constants ignored (``innpar check --checkpoint``), and
    min-max over the windows used in their place. Given (mmHg - 50) / 100, ABP of 150 mmHg
    is 1; without constants, ABP from 70 to 110 mmHg is (abp - 70) / 40, from 0 to 1."""
    from innpar_freia.checks import run_checks

    zero = {"forward": 0.0, "reverse": 0.0, "logdet_cancel": 0.0}
    seen = _fake_roundtrips(monkeypatch, {torch.float32: zero, torch.float64: zero})
    ppg = 7.0 + 3.0 * waves(2)
    abp = np.full((2, 625), 150.0)
    run_checks(one_block, ppg, abp, Normalisation("minmax", 50.0, 100.0), seed=0)
    p64, a64 = seen[1]
    assert p64.dtype == torch.float64
    np.testing.assert_allclose(p64.mean(dim=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(p64.std(dim=1, unbiased=False), 1.0, rtol=1e-12)
    assert torch.equal(a64, torch.ones(2, 625, dtype=torch.float64))
    seen.clear()
    abp = np.stack([np.linspace(70.0, 100.0, 625), np.linspace(110.0, 80.0, 625)])
    run_checks(one_block, ppg, abp, seed=0)
    np.testing.assert_allclose(seen[1][1].numpy(), (abp - 70.0) / 40.0, rtol=1e-9)


def test_flat_abp_windows_without_constants_are_checked_not_divided_by_zero(one_block):
    """Guards against min-max over the windows dividing by their range when it is 0: flat
    ABP windows (80 mmHg throughout) became NaN and every round trip failed on an exact
    network. Divided by 1 instead, they are windows of zeros and the checks pass."""
    from innpar_freia.checks import run_checks

    result = run_checks(one_block, waves(2), np.full((2, 625), 80.0), seed=0)
    assert result["passed"], result["checks"]


def test_synthetic_windows_are_consecutive_windows_of_one_recording(one_block):
    """Guards against overlapping windows (one window's samples counted twice), PPG and
    ABP swapped, and the seed not passed on. Window k is samples k L to (k + 1) L of the
    synthetic recording of the same seed, n + 2 windows long; ABP in mmHg."""
    from innpar_freia.checks import synthetic_windows
    from innpar_freia.data.synthetic import synthesize_recording

    length = one_block.config.window_length
    ppg, abp = synthetic_windows(one_block, n=3, seed=4)
    rec = synthesize_recording(0, 5 * length / 125.0 / 60.0, 125.0, 4)
    np.testing.assert_array_equal(ppg, rec.ppg[: 3 * length].reshape(3, length))
    np.testing.assert_array_equal(abp, rec.abp[: 3 * length].reshape(3, length))
    assert 40 < abp.mean() < 200
    assert not np.array_equal(synthetic_windows(one_block, n=3, seed=5)[0], ppg)


def test_run_checks_draws_its_synthetic_windows_with_its_seed(one_block, monkeypatch):
    """Guards against ``run_checks`` (``innpar check --seed``) ignoring its seed for the
    synthetic windows."""
    import innpar_freia.checks as checks

    zero = {"forward": 0.0, "reverse": 0.0, "logdet_cancel": 0.0}
    seen = _fake_roundtrips(monkeypatch, {torch.float32: zero, torch.float64: zero})
    checks.run_checks(one_block, seed=3)
    ppg, _ = checks.synthetic_windows(one_block, seed=3)
    np.testing.assert_allclose(seen[1][0].numpy(), Normalisation.normalise_ppg(ppg))


def test_check_preset_builds_the_preset_with_the_seed_it_is_given(monkeypatch):
    """Guards against ``check_preset`` building every preset with seed 0."""
    import innpar_freia.checks as checks
    from innpar_freia.config import ModelConfig

    models = []
    monkeypatch.setattr(checks, "run_checks", lambda model, seed: models.append((model, seed)))
    checks.check_preset("tiny", seed=2)
    (model, seed), expected = models[0], build_model(ModelConfig.from_preset("tiny"), seed=2)
    assert seed == 2
    for key, value in expected.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_a_nan_gradient_is_no_gradient(one_block):
    """Guards against counting a NaN gradient as a gradient (NaN != 0 is true): a
    parameter whose gradient comes out NaN must be named."""
    import copy

    from innpar_freia.checks import _params_without_gradient

    model = copy.deepcopy(one_block).double()
    name, param = next(iter(model.named_parameters()))
    param.register_hook(lambda g: torch.full_like(g, float("nan")))
    ppg = torch.tensor(Normalisation.normalise_ppg(waves(2)), dtype=torch.float64)
    assert _params_without_gradient(model, ppg) == [name]


class _Doubling:
    """A stand-in network whose ``inn`` doubles its input: over a (1, 2, 8) input its
    Jacobian is 2 I (16 x 16), so log|det J| = 16 log 2; it reports ``log_det``."""

    def __init__(self, log_det: float, factor: float = 2.0):
        self.log_det = log_det
        self.inn = lambda v: (factor * v, None)

    def __call__(self, x: torch.Tensor):
        return 2 * x, torch.full((len(x),), self.log_det, dtype=x.dtype)


@pytest.mark.parametrize(
    ("log_det", "error"),
    [(16 * np.log(2.0), 0.0), (16 * np.log(2.0) - 1e-3, 1e-3), (float("nan"), float("inf"))],
)
def test_the_log_det_error_against_a_known_jacobian(log_det: float, error: float):
    """Guards against a NaN log-det dropped by Python's ``max`` (max(0.0, nan) is 0.0: a
    network whose log-det comes out NaN passed the Jacobian check), and pins the error
    itself: |16 log 2 - log_det| for the doubling map."""
    from innpar_freia.checks import _logdet_error

    assert _logdet_error(_Doubling(log_det), seed=0) == pytest.approx(error, abs=1e-12)


def test_a_jacobian_that_overflows_is_an_infinite_log_det_error():
    """Guards against a Jacobian with inf or NaN entries (weights that overflow) scored as
    no error at all: the check must fail, with an infinite error."""
    from innpar_freia.checks import _logdet_error

    assert _logdet_error(_Doubling(0.0, factor=float("inf")), seed=0) == float("inf")


@pytest.mark.parametrize(("difference", "identical"), [(0.0, True), (1e-12, False)])
def test_the_save_load_check_asks_for_identical_outputs(
    one_block, monkeypatch, difference: float, identical: bool
):
    """Guards against the save/load check accepting outputs that differ at all (a
    tolerance in place of ``== 0``): weights reloaded from a state_dict are the same
    numbers, so the network they give must compute the same numbers, bit for bit."""
    import innpar_freia.checks as checks

    monkeypatch.setattr(checks, "_state_dict_roundtrip", lambda model, ppg: difference)
    result = checks.run_checks(one_block, waves(2), 90 + 20 * waves(2), seed=0)
    assert result["checks"]["state_dict_save_load_identical"] is identical
    assert result["passed"] is identical


def test_the_u_net_is_refused_by_name():
    """Guards against ``run_checks`` running on the U-Net baseline, which has no inverse:
    it must say that the checks are for INN-PAR, not fail inside the network."""
    from innpar_freia.checks import run_checks
    from innpar_freia.config import ModelConfig
    from innpar_freia.errors import ConfigError

    model = build_model(ModelConfig.from_preset("unet"), seed=0)
    with pytest.raises(ConfigError, match="apply to INN-PAR; this is a unet model"):
        run_checks(model, seed=0)


def test_run_checks_given_windows_of_one_kind_only_is_refused(one_block):
    """PPG windows without ABP (or ABP without PPG) were both replaced by synthetic
    windows: the check passed on data the user never gave it. Pairs of two shapes ended in
    torch's shape error inside the round trip."""
    from innpar_freia.checks import run_checks

    ppg = waves(2, one_block.config.window_length)
    with pytest.raises(DataError, match=r"given ppg windows without abp: .* give both"):
        run_checks(one_block, ppg, None, seed=0)
    with pytest.raises(DataError, match="given abp windows without ppg"):
        run_checks(one_block, abp=90 + 20 * ppg, seed=0)
    with pytest.raises(DataError, match=r"of one shape, not \(2, 625\) and \(1, 625\)"):
        run_checks(one_block, ppg, 90 + 20 * ppg[:1], seed=0)


def test_run_checks_refuses_windows_it_cannot_judge_the_network_on(one_block):
    """Bug: one NaN in a PPG window failed every check (passed=False, blamed on the
    network), and a flat PPG failed every_parameter_gets_gradient; a 1-D window went to
    the network."""
    from innpar_freia.checks import run_checks

    ppg, abp = waves(2), 90 + 20 * waves(2)
    nan = ppg.copy()
    nan[1, 10] = np.nan
    with pytest.raises(ValueError, match=r"1 of 2 PPG window\(s\) hold NaN, inf .*window 1"):
        run_checks(one_block, nan, abp, seed=0)
    flat = ppg.copy()
    flat[0] = 3.0
    with pytest.raises(ValueError, match=r"1 of 2 PPG window\(s\) are a constant line"):
        run_checks(one_block, flat, abp, seed=0)
    with pytest.raises(ValueError, match=r"shape \(n, 625\), got shape \(625,\)"):
        run_checks(one_block, ppg[0], abp[0], seed=0)


@pytest.mark.parametrize("length", [500, 1250, 1])
def test_run_checks_refuses_windows_of_another_length_than_the_model_s(one_block, length):
    """Bug: windows of another length than the model's window_length went on to the round
    trip, where the network refused them in tensor terms ("expected a (batch, 625)
    tensor"), and 1-sample windows were called "a constant line". They are refused up
    front as predict_abp refuses them, naming the expected and the given shape."""
    from innpar_freia.checks import run_checks

    ppg = waves(2, length)
    message = rf"^PPG windows must be an array of shape \(n, 625\), got shape \(2, {length}\)$"
    with pytest.raises(ValueError, match=message):
        run_checks(one_block, ppg, 90 + 20 * ppg, seed=0)


def test_run_checks_takes_tensors_a_checkpoint_and_runs_under_no_grad(one_block, tiny):
    """Bug: torch tensors failed in min() ("argument 'dim' must be int"), a Checkpoint in
    place of its network failed with AttributeError 'config', and under torch.no_grad()
    the gradient check raised "element 0 of tensors does not require grad"."""
    from innpar_freia import checks
    from innpar_freia.checkpoint import Checkpoint

    ppg, abp = waves(2), 90 + 20 * waves(2)
    result = checks.run_checks(one_block, torch.tensor(ppg), torch.tensor(abp), seed=0)
    assert result["passed"], result["checks"]
    with torch.no_grad():
        assert checks.run_checks(one_block, ppg, abp, seed=0)["passed"]
    cfg, model = tiny
    ckpt = Checkpoint(Path("t.pt"), model, cfg, Normalisation("minmax", 50.0, 100.0), None)
    assert checks.run_checks(ckpt, ppg, abp, seed=0)["n_windows"] == 2
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        checks.run_checks(one_block, ppg, abp, seed=0)
