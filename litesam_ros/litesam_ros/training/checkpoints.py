"""Checkpoints written by training runs (the model package's format, plus the torch version)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

import torch

from litesam_ros.model import save_checkpoint

if TYPE_CHECKING:
    from litesam_ros.model import SamModel


def save_model(model: SamModel, path: str, meta: Optional[Dict[str, Any]] = None) -> None:
    """Write the model checkpoint in the model package's format (atomic there)."""
    # plain str: torch.__version__ is a TorchVersion that weights_only loading rejects
    save_checkpoint(model, path, meta={"torch_version": str(torch.__version__), **(meta or {})})


__all__ = ["save_model"]
