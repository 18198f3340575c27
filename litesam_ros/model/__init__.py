"""Lite-SAM in pure PyTorch: LiteViT + AutoPPN + SAM prompt encoder / mask decoder.

Contract: docs/ARCHITECTURE.md ("Model contract"). Architecture notes: docs/model.md.
"""
from .autoppn import AutoPPN, PPNMaps, PPNProposals, point_nms, select_proposals
from .checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, load_checkpoint,
                         read_checkpoint_header, save_checkpoint)
from .config import LiteSamConfig
from .lite_sam import LiteSam
from .litevit import ImageEncoder, LiteViT, LiteViTBlock
from .mask_decoder import MaskDecoder
from .mspm import MSPM
from .prompt_encoder import PromptEncoder
from .registry import (DEFAULT_MODEL, UnknownModelError, build_model, get_config, list_models,
                       resolve_config)

__all__ = [
    "LiteSamConfig", "LiteSam", "build_model", "get_config", "list_models", "resolve_config",
    "DEFAULT_MODEL", "UnknownModelError",
    "save_checkpoint", "load_checkpoint", "read_checkpoint_header", "CheckpointError",
    "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
    "PPNProposals", "PPNMaps", "AutoPPN", "point_nms", "select_proposals",
    "ImageEncoder", "LiteViT", "LiteViTBlock", "MSPM", "PromptEncoder", "MaskDecoder",
]
