"""Registry configs made cheap for CPU checks of code paths (not of accuracy)."""
from __future__ import annotations

from litesam_ros.model.config import ModelConfig
from litesam_ros.model.registry import at_image_size

SMOKE_SIZE = 64


def smoke_config(cfg: ModelConfig) -> ModelConfig:
    """``cfg`` at SMOKE_SIZE with its stages one block deep (SAM ViT: windowed + global)."""
    if cfg.encoder == "sam_vit":
        cfg = cfg.replace(stage_depths=(2,), global_attn_indexes=(1,))
    else:
        cfg = cfg.replace(stage_depths=tuple(1 for _ in cfg.stage_depths))
    if cfg.autoppn:  # as many proposals as the small embedding has cells
        cfg = cfg.replace(ppn_top_n=min(cfg.ppn_top_n, (SMOKE_SIZE // 16) ** 2))
    return at_image_size(cfg, SMOKE_SIZE)
