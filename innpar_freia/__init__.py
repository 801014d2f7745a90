"""innpar-freia: PPG -> arterial blood pressure reconstruction with INN-PAR on FrEIA.

The public API is small::

    from innpar_freia import ModelConfig, build_inn, load_checkpoint

    cfg = ModelConfig.from_preset("paper")
    inn = build_inn(cfg)              # a FrEIA SequenceINN over (batch, 2, time)
    ckpt = load_checkpoint("runs/00000-innpar-plus-pair3/checkpoints/best.pt")
    abp_mmhg = ckpt.predict_abp(ppg)  # (windows, time) in, mmHg out

Heavy modules (torch, FrEIA) are imported on first use so that ``innpar --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "INNPAR",
    "Checkpoint",
    "ModelConfig",
    "TrainConfig",
    "__version__",
    "build_inn",
    "build_model",
    "load_checkpoint",
]

_LAZY = {
    "ModelConfig": "innpar_freia.config",
    "TrainConfig": "innpar_freia.config",
    "build_inn": "innpar_freia.nn.model",
    "build_model": "innpar_freia.nn.model",
    "INNPAR": "innpar_freia.nn.model",
    "Checkpoint": "innpar_freia.checkpoint",
    "load_checkpoint": "innpar_freia.checkpoint",
}

if TYPE_CHECKING:  # pragma: no cover
    from innpar_freia.checkpoint import Checkpoint, load_checkpoint
    from innpar_freia.config import ModelConfig, TrainConfig
    from innpar_freia.nn.model import INNPAR, build_inn, build_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'innpar_freia' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy exports too: dir() and tab completion showed none of them.
    return sorted({*globals(), *_LAZY})
