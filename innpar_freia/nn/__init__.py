"""The network: INN-PAR as a FrEIA ``SequenceINN`` (README, "The network").

::

    from innpar_freia.nn import INNPARCouplingBlock, InvertibleConv1x1LU, build_inn

Names are imported on first use: torch and FrEIA take seconds to import, and
``import innpar_freia.nn.<module>`` runs this file first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the module defining it.
_LAZY = {
    "INNPAR": "model",
    "CheckedSequenceINN": "model",
    "build_inn": "model",
    "build_model": "model",
    "count_parameters": "model",
    "postprocess_abp": "model",
    "InvertibleConv1x1LU": "invertible",
    "INNPARCouplingBlock": "invertible",
    "MSCM": "mscm",
    "UNetBaseline": "unet",
}
# The submodules, reachable as attributes (``innpar_freia.nn.reference``) without an import.
_SUBMODULES = ("invertible", "model", "mscm", "reference", "unet")

__all__ = [
    "INNPAR",
    "MSCM",
    "CheckedSequenceINN",
    "INNPARCouplingBlock",
    "InvertibleConv1x1LU",
    "UNetBaseline",
    "build_inn",
    "build_model",
    "count_parameters",
    "postprocess_abp",
]

if TYPE_CHECKING:  # pragma: no cover
    from innpar_freia.nn.invertible import INNPARCouplingBlock, InvertibleConv1x1LU
    from innpar_freia.nn.model import (
        INNPAR,
        CheckedSequenceINN,
        build_inn,
        build_model,
        count_parameters,
        postprocess_abp,
    )
    from innpar_freia.nn.mscm import MSCM
    from innpar_freia.nn.unet import UNetBaseline


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})
