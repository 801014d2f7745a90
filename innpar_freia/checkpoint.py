"""Self-describing checkpoints: written atomically, loaded with ``weights_only=True``,
rebuilding model, configuration and normalisation from the file alone."""

from __future__ import annotations

import importlib.metadata
import io
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import torch

from innpar_freia import __version__
from innpar_freia.config import RunConfig
from innpar_freia.data.dataset import Normalisation
from innpar_freia.data.store import storable, write_failure
from innpar_freia.errors import CheckpointError, ConfigError
from innpar_freia.metrics import BaselineParams
from innpar_freia.nn.model import INNPAR, build_model, postprocess_abp
from innpar_freia.outputs import remove_stale_temporaries, replace_durably
from innpar_freia.signal import check_rate, real_numbers

FORMAT = "innpar-freia.checkpoint"
FORMAT_VERSION = 1


# full_float32 sets process-wide flags: one thread at a time, the outermost restores them.
_TF32_LOCK = threading.RLock()


@contextmanager
def full_float32(device: torch.device | str = "cuda") -> Iterator[None]:
    """CUDA convolutions and matrix products in full float32 while the block runs.

    PyTorch lets cuDNN run float32 convolutions in TF32 (a 10-bit mantissa) by default on
    Ampere and later GPUs. Inference does not need that speed, and the inverse pass of a
    coupling block recomputes its subnetworks on *reconstructed* inputs: rounded to TF32
    (about 1e-3 relative), f^-1(f(x)) would return x only to TF32's precision instead of
    float32's (~1e-6 on the CPU), and predictions would differ from the CPU's by more than
    float32 rounding (tests/test_cuda.py checks both in full float32).

    The flags are the process's: on a CPU ``device`` nothing is touched (a CPU has no TF32,
    and setting flags there could only disturb a caller's own settings), and threads
    predicting on a GPU take turns, so that one cannot restore TF32 under another's
    inference.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    with _TF32_LOCK:
        saved = _tf32_settings()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        for owner in _per_backend_tf32():
            owner.fp32_precision = "ieee"
        try:
            yield
        finally:
            for restore, value in saved:
                restore(value)


def _per_backend_tf32() -> list[Any]:
    """PyTorch >= 2.9's per-backend ``fp32_precision`` settings for cuBLAS and cuDNN."""
    owners = [
        torch.backends.cuda.matmul,
        getattr(torch.backends.cudnn, "conv", None),
        getattr(torch.backends.cudnn, "rnn", None),
    ]
    return [owner for owner in owners if hasattr(owner, "fp32_precision")]


def _tf32_settings() -> list[tuple[Callable[[Any], None], Any]]:
    """Every TF32 setting :func:`full_float32` changes, as (setter, value), in restore order.

    PyTorch >= 2.9 keeps two states: the legacy ``allow_tf32`` flags / matmul precision and
    per-backend ``fp32_precision`` settings, and raises "mix of the legacy and new APIs"
    when a product or convolution finds the two disagreeing. full_float32 sets both, so that
    they agree inside whichever API the caller used; afterwards the legacy state is put back
    first (its setters also write per-backend settings, the CPU's matmul one included) and
    then every per-backend setting exactly. A legacy value that cannot be read (the caller
    set only the newer API, leaving the two disagreeing) is the caller's to keep: it is left
    as the legacy setters inside the block leave it, which the newer API ignores.
    """
    saved: list[tuple[Callable[[Any], None], Any]] = []
    try:
        saved.append((torch.set_float32_matmul_precision, torch.get_float32_matmul_precision()))
    except RuntimeError:
        pass
    try:
        saved.append(
            (partial(setattr, torch.backends.cudnn, "allow_tf32"), torch.backends.cudnn.allow_tf32)
        )
    except RuntimeError:
        pass
    mkldnn_matmul = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    owners = _per_backend_tf32() + (
        [mkldnn_matmul] if hasattr(mkldnn_matmul, "fp32_precision") else []
    )
    saved += [(partial(setattr, owner, "fp32_precision"), owner.fp32_precision) for owner in owners]
    return saved


def freia_version() -> str:
    """The installed FrEIA's version ("unknown" when it runs from a source tree)."""
    try:
        return importlib.metadata.version("FrEIA")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def check_freia_version(path: str | Path, payload: dict[str, Any], coupling: str) -> None:
    """Refuse ``AllInOneBlock`` weights saved under another FrEIA than the installed one:
    FrEIA 0.2 clamps as ``clamp*tanh(a)``, later versions as ``clamp*tanh(a/clamp)``, so
    the same weights compute another function. Checkpoints from before the version was
    recorded, and versions that cannot be read (a source tree), are not compared."""
    saved_with, installed = payload.get("freia_version"), freia_version()
    if coupling != "allinone" or saved_with in (None, installed):
        return
    if "unknown" in (saved_with, installed):
        return
    raise CheckpointError(
        f"{path} was trained with FrEIA {saved_with}, but FrEIA {installed} is installed: "
        "its AllInOneBlock weights mean another function under another FrEIA version; "
        f"install FrEIA=={saved_with}"
    )


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file in the same directory, then rename over ``path``,
    so a crash never leaves a truncated checkpoint.

    ``payload`` holds ``state_dict``s and plain values, never whole modules: FrEIA 0.2's
    blocks keep lambdas (the SIGMOID and ATAN clamps, AllInOneBlock's helpers), which
    ``torch.save`` of a whole module cannot pickle, and a module would have to be loaded
    with ``weights_only=False``, running the file's code. The model is rebuilt from the
    saved configuration instead (:func:`load_checkpoint`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)  # of writes killed outright, each a checkpoint's size
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "freia_version": freia_version(),
    }
    body.update(payload)
    # Serialised in memory, then written by Python: torch.save writing to a file, by name
    # or through a Python file, reports a full disk as a RuntimeError of its zip writer
    # ("unexpected pos 832 vs 726"), without the reason. A checkpoint is a few MB.
    buffer = io.BytesIO()
    try:
        torch.save(body, buffer)
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
        replace_durably(tmp, path)
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(f"cannot write {path}: {write_failure(exc)}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def is_zip(path: Path) -> bool:
    """``path`` starts as a zip file does, as every PyTorch file since 1.6 (truncated too)."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def needs_code(exc: Exception) -> bool:
    """``exc``, from ``torch.load(..., weights_only=True)``, refused a file that loads only
    by running its code (a whole model, another program's classes): not a damaged file."""
    text = str(exc)
    return "weights only" in text.lower() or "weights_only" in text


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, validated; clear errors for missing, corrupt or foreign files."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a directory, not a checkpoint file (a run directory keeps its "
            "checkpoints in checkpoints/best.pt and checkpoints/last.pt)"
        )
    if path.exists() and not path.is_file():
        # A FIFO or a device: torch.load would wait on it for ever, or read a stream.
        raise CheckpointError(f"{path} is not a regular file, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError as exc:
        # A file this user may not read says nothing about its contents: not "corrupt".
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
    except Exception as exc:
        # Arbitrary bytes reach torch's legacy (non-zip) unpickler, which fails with whatever
        # the garbage decodes to (UnpicklingError, EOFError, but also IndexError, KeyError,
        # TypeError, struct.error, ...): any failure to read the file means "corrupt".
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, (KeyError, IndexError)) or len(first) < 8:
            # What the garbage decoded to ("KeyError: 101"): meaningless to a user.
            first = "not a PyTorch file"
        if needs_code(exc):
            # torch's text here advises loading with weights_only=False, i.e. running the
            # file's code: wrong advice for a file that is corrupt or not ours, so not passed on.
            first = "not a PyTorch file of tensors and plain values"
        elif path.stat().st_size == 0:
            first = "the file is empty"  # was "EOFError"
        elif is_zip(path):
            # A PyTorch (zip) file cut short: torch said "[Errno 22] Invalid argument", or
            # "failed finding central directory" followed by a paragraph about miniz.
            first = "a PyTorch file that is truncated or damaged (an interrupted copy?)"
        raise CheckpointError(
            f"{path} is not a readable innpar-freia checkpoint (corrupt or another format: {first})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an innpar-freia checkpoint (no '{FORMAT}' format marker)"
        )
    version = payload.get("format_version", -1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path} is damaged: its format version is {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {payload['format_version']}; this innpar-freia "
            f"({__version__}) reads up to {FORMAT_VERSION}: upgrade innpar-freia"
        )
    for key in ("run_config", "model_state", "normalisation"):
        if key not in payload:
            raise CheckpointError(f"{path} is incomplete: it has no {key!r}")
    return payload


def _training_copies(path: str | Path, value: Any) -> dict[str, np.ndarray] | None:
    """A payload's ``training_copies`` as numpy arrays, checked for what they are (a damaged
    value would otherwise fail inside ``innpar eval``'s comparison)."""
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or set(value) != {"ppg", "abp"}
        or not all(
            isinstance(v, torch.Tensor) and v.dtype == torch.int64 and v.ndim == 1
            for v in value.values()
        )
    ):
        raise CheckpointError(
            f"{path} is damaged: its training_copies are not two lists of window keys"
        )
    return {k: v.cpu().numpy() for k, v in value.items()}


@dataclass
class Checkpoint:
    """A trained model with everything needed to use it.

    Attributes:
        model: the :class:`INNPAR` network in eval mode.
        run_config: preset, model and training configuration of the run.
        normalisation: ABP constants from the training split (PPG is z-scored per window).
        baselines: training-split statistics for the naive and linear baselines.
        data: the training data's description (file, fs, splits, provenance).
        epoch: epochs completed when saved; ``metrics``: that epoch's record.
        training_copies: the sorted :func:`~innpar_freia.data.leakage.copy_keys` of the
            training windows' ``"ppg"`` and ``"abp"`` (``None`` from a run that predates
            them), by which ``innpar eval`` knows its training windows in any file.
    """

    path: Path
    model: INNPAR
    run_config: RunConfig
    normalisation: Normalisation
    baselines: BaselineParams | None
    data: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    package_version: str = ""
    training_copies: dict[str, np.ndarray] | None = None

    @property
    def fs(self) -> float:
        return self.run_config.model.fs

    @property
    def window_length(self) -> int:
        return self.run_config.model.window_length

    def _run(
        self,
        signal: np.ndarray,
        reverse: bool,
        batch_size: int,
        before: Callable[[np.ndarray], np.ndarray],
        after: Callable[[np.ndarray], np.ndarray] = lambda y: y,
        dtype: Any = np.float64,
    ) -> np.ndarray:
        """The network on ``signal`` batch by batch, each batch normalised by ``before`` and
        its output mapped by ``after`` (both per window), into one ``dtype`` array: only the
        input and the output are ever whole, so predicting a split costs 8 bytes a sample
        beyond the input, not six float64 copies of it."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
            # range(0, n, -1) is empty: the output would be uninitialised memory.
            raise ValueError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
        batch_size = int(batch_size)  # numpy integers too
        if np.dtype(dtype).kind != "f":  # an integer type would truncate every value
            raise TypeError(f"dtype must be a floating-point type, not {np.dtype(dtype)}")
        if signal.ndim != 2 or signal.shape[1] != self.window_length:
            raise ValueError(
                f"expected windows of shape (n, {self.window_length}), got {signal.shape}"
            )
        param = next(self.model.parameters())
        out = np.empty(signal.shape, dtype=dtype)
        # Inference mode whatever the caller left the model in: the U-Net's batch norm in
        # training mode made a window's prediction depend on its batch, and updated its
        # running statistics.
        training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), full_float32(param.device):
                for s in range(0, len(signal), batch_size):
                    batch = before(np.asarray(signal[s : s + batch_size], dtype=np.float64))
                    x = torch.as_tensor(batch, dtype=param.dtype, device=param.device)
                    y = self.model.abp_to_ppg(x) if reverse else self.model.ppg_to_abp(x)
                    out[s : s + batch_size] = after(y.double().cpu().numpy())
        finally:
            self.model.train(training)
        # Finite weights can still overflow (weights edited or damaged by hand, a run at
        # the edge of divergence): NaN predictions would be scored as numbers, or plotted.
        bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
        if bad.size:
            raise CheckpointError(
                f"{self.path}: its {'reverse (ABP -> PPG)' if reverse else 'forward'} pass "
                f"gives NaN or inf for {bad.size} of {len(out)} windows (first: window "
                f"{bad[0]}); its weights are damaged or its run diverged: use another "
                "checkpoint"
            )
        return out

    def _finite(self, windows: np.ndarray, what: str, fs: float | None) -> np.ndarray:
        """``windows`` as an array (not copied: :meth:`_run` converts it a batch at a time),
        refused (``ValueError``) when any holds NaN, inf or a value beyond float32's range
        (the network runs in float32 and would return NaN for those windows, blamed on the
        weights), or when ``fs`` is not the rate it was trained at."""
        if fs is not None and (np.ndim(fs) != 0 or isinstance(fs, (bool, str))):
            raise TypeError(f"fs must be one number (Hz), not {fs!r}")
        if fs is not None:
            fs = check_rate("fs", np.asarray(fs).item())  # (NaN: "the windows are at nan Hz")
        if fs is not None and not np.isclose(float(fs), self.fs):  # as innpar eval checks
            raise ValueError(
                f"the windows are at {float(fs):g} Hz, but {self.path.name} was trained on "
                f"windows at {self.fs:g} Hz: resample them (innpar reconstruct does)"
            )
        # Its length is checked by _run, whose message says what to do about it.
        return network_windows(windows, what, self.window_length, check_length=False)

    def predict_abp(
        self, ppg: np.ndarray, *, batch_size: int = 512, fs: float | None = None
    ) -> np.ndarray:
        """Raw PPG windows ``(n, L)`` (any units) -> ABP ``(n, L)`` in mmHg. Give ``fs``, the
        windows' rate in Hz, to have windows at another rate than the training data's
        refused: their shapes alone cannot tell. The arguments after the windows are
        keyword-only: ``predict_abp(ppg, 125)`` took the rate for ``batch_size`` and
        checked no rate at all."""
        ppg = self._finite(ppg, "PPG", fs)

        def to_mmhg(norm: np.ndarray) -> np.ndarray:
            return postprocess_abp(self.normalisation.denormalise_abp(norm), self.run_config.model)

        return self._run(ppg, False, batch_size, Normalisation.normalise_ppg, to_mmhg)

    def check_reversible(self) -> None:
        """A clear error when the model has no reverse pass (the U-Net baseline)."""
        if not getattr(self.model, "invertible", True):
            raise CheckpointError(
                f"{self.path} holds the {self.run_config.preset!r} model, which is not "
                "invertible: it cannot map ABP to PPG (use an INN-PAR checkpoint)"
            )

    def predict_ppg(
        self,
        abp_mmhg: np.ndarray,
        *,
        batch_size: int = 512,
        fs: float | None = None,
        dtype: Any = np.float64,
    ) -> np.ndarray:
        """ABP windows ``(n, L)`` in mmHg -> PPG ``(n, L)`` in the z units of the network's
        input (a window's mean and SD come out near, not exactly, 0 and 1), by the reverse
        pass (``fs``, and the keyword-only arguments, as in :meth:`predict_abp`).

        The reverse pass takes the ABP and its gradient channel, which is computed here
        from the ABP, as training computes it from the reference. :meth:`predict_abp`
        keeps only the ABP channel of the network's output, so
        ``predict_ppg(predict_abp(x))`` is not ``x``: the network's own output gradient
        channel is not the one computed from its ABP (about 0.2 z MAE on synthetic data).
        The network itself inverts exactly (``innpar check``). ``dtype=np.float32`` returns
        the same numbers (the network's float32 output) in half the memory."""
        self.check_reversible()
        abp = self._finite(abp_mmhg, "ABP", fs)
        norm = self.normalisation.normalise_abp
        return self._run(abp, True, batch_size, norm, dtype=dtype)


def network_windows(
    windows: Any, what: str, window_length: int | None = None, *, check_length: bool = True
) -> np.ndarray:
    """``windows`` (numpy or torch) as an array of shape ``(n, window_length)`` (not copied),
    refused (``ValueError``) when any holds NaN, inf or a value beyond float32's range: the
    network runs in float32 and would return NaN for those windows, blamed on the weights.
    ``window_length`` ``None``: any length; ``check_length=False``: named in the message
    only (the caller checks it, with its own advice)."""
    if isinstance(windows, torch.Tensor):
        windows = windows.detach().cpu()  # numpy() refuses a tensor that requires grad
    given = real_numbers(windows, f"{what} windows")
    length = "L" if window_length is None else window_length
    wrong_length = (
        check_length and window_length is not None and given.shape[-1:] != (window_length,)
    )
    if given.ndim != 2 or wrong_length:
        raise ValueError(
            f"{what} windows must be an array of shape (n, {length}), got shape {given.shape}"
            + (" (one window: add an axis, x[None])" if given.ndim == 1 else "")
        )
    if not storable(given):
        bad = np.flatnonzero(~storable(given, axis=1))
        raise ValueError(
            f"{bad.size} of {len(given)} {what} window(s) hold NaN, inf or values beyond "
            f"float32's range (first: window {bad[0]}); drop them or fill the gaps "
            "(innpar reconstruct leaves gaps out)"
        )
    return given


def usable_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` that this machine has; a clear error otherwise
    (torch's own, from inside ``torch.load``, read as a corrupt file). ``"auto"``: CUDA
    where there is one, else the CPU, as ``TrainConfig.device`` takes it."""
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
        torch.empty(0, device=device)
    except (RuntimeError, TypeError, ValueError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"device {str(device)!r} cannot be used here: {first}") from None
    return device


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild model, configuration and normalisation from a checkpoint file alone, on
    ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``, or ``"auto"``)."""
    device = usable_device(device)
    payload = read_checkpoint(path, map_location=device)
    try:
        run_config = RunConfig.from_stored(payload["run_config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path} holds an invalid configuration: {exc}") from None
    check_freia_version(path, payload, run_config.model.coupling)
    # Seeded: the weights are replaced below, and the caller's random numbers must not be
    # drawn from (a fixed seed in a script gave other numbers after a checkpoint was loaded).
    model = build_model(run_config.model, seed=0)
    state = payload["model_state"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is damaged: its weights are a {type(state).__name__}")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        # torch's first line names no key; the lines after it say which weights differ.
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        detail = " ".join(lines[1:4] if len(lines) > 1 else lines)
        raise CheckpointError(
            f"{path}: weights do not fit its own configuration ({detail[:500]})"
        ) from None
    # Training stops before saving when the loss is not finite, so NaN or inf weights mean
    # a damaged file; every prediction would be NaN and be blamed on the input.
    weights = [p for p in model.state_dict().values() if p.is_floating_point()]
    if not all(torch.isfinite(p).all() for p in weights):
        raise CheckpointError(f"{path} is damaged: some of its weights are NaN or infinite")
    model.to(device).eval()
    for part in ("normalisation", "baselines"):
        # Checked for what it is, as the weights are above: a tensor here (a damaged file
        # still read with weights_only=True) ended in torch's IndexError or RuntimeError,
        # after a torch warning, instead of one message.
        value = payload.get(part)
        if value is not None and not isinstance(value, dict):
            raise CheckpointError(
                f"{path} is damaged: its {part} is a {type(value).__name__}, not a table of values"
            )
    try:
        normalisation = Normalisation.from_dict(payload["normalisation"])
        baselines = payload.get("baselines")
        baseline_params = BaselineParams(**baselines) if baselines else None
        extras = {
            "data": dict(payload.get("data", {})),
            "epoch": int(payload.get("epoch", 0)),
            "metrics": dict(payload.get("metrics", {})),
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(
            f"{path} is damaged or from an incompatible innpar-freia: its normalisation, "
            f"baselines or run record cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    extras["training_copies"] = _training_copies(path, payload.get("training_copies"))
    n = normalisation
    if not (np.isfinite(n.abp_offset) and np.isfinite(n.abp_scale) and n.abp_scale > 0):
        raise CheckpointError(
            f"{path} is damaged: its ABP normalisation is offset {n.abp_offset}, "
            f"scale {n.abp_scale}"
        )
    return Checkpoint(
        path=Path(path),
        model=model,
        run_config=run_config,
        normalisation=normalisation,
        baselines=baseline_params,
        package_version=str(payload.get("package_version", "")),
        **extras,
    )
