"""Lite-SAM and the SAM family in pure PyTorch: image encoders (LiteViT, SAM ViT, TinyViT,
EfficientSAM ViT), AutoPPN, SAM's and EfficientSAM's prompt encoder / mask decoder, and one
loading entry point (``load_model``) for registry names, project checkpoints and official files.

Contract: docs/ARCHITECTURE.md ("Model contract"). Architecture notes: docs/model.md.
"""
import warnings
from typing import Any

from .autoppn import AutoPPN, PPNMaps, PPNProposals, point_nms, select_proposals
from .checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, load_checkpoint,
                         read_checkpoint_header, save_checkpoint)
from .config import ModelConfig
from .geometry import Geometry
from .sam_model import SamModel, pad_prompt_points
from .litevit import ImageEncoder, LiteViT, LiteViTBlock
from .mask_decoder import MaskDecoder
from .mspm import MSPM
from .prompt_encoder import PromptEncoder
from .loading import LoadedModel, convert, load_model, source_kind
from .registry import (DEFAULT_MODEL, UnknownModelError, build_model, get_config, list_models,
                       resolve_config, with_autoppn)

__all__ = [
    "ModelConfig", "SamModel", "Geometry", "LoadedModel", "load_model", "source_kind",
    "convert", "pad_prompt_points", "with_autoppn",
    "build_model", "get_config", "list_models", "resolve_config",
    "DEFAULT_MODEL", "UnknownModelError",
    "save_checkpoint", "load_checkpoint", "read_checkpoint_header", "CheckpointError",
    "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
    "PPNProposals", "PPNMaps", "AutoPPN", "point_nms", "select_proposals",
    "ImageEncoder", "LiteViT", "LiteViTBlock", "MSPM", "PromptEncoder", "MaskDecoder",
]


def __getattr__(name: str) -> Any:
    """The old names LiteSam (SamModel) and LiteSamConfig (ModelConfig), from when the package
    held Lite-SAM only; deprecated (to go in the next release)."""
    old = {"LiteSam": ("SamModel", SamModel), "LiteSamConfig": ("ModelConfig", ModelConfig)}
    if name in old:
        new, value = old[name]
        warnings.warn(f"litesam_ros.model.{name} is deprecated: use {new}", DeprecationWarning,
                      stacklevel=2)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
