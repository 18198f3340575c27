"""Measuring helpers only the benchmark scripts use (the on-device bench's own, shared with
them, are in litesam_ros/apps/bench.py)."""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def decoder_macs_per_prompt(model: Any, prompts: int = 16) -> float:
    """Multiply-accumulates of the prompt decoder per prompt, decoding ``prompts`` at once."""
    cfg = model.config
    for p in model.parameters():
        p.requires_grad_(False)
    emb = torch.zeros(1, cfg.embed_dim, cfg.embedding_size, cfg.embedding_size)
    with FlopCounterMode(display=False) as counter:
        model.decode(emb, torch.rand(prompts, 2, 2) * cfg.image_size,
                     torch.tensor([[1.0, -1.0]]).repeat(prompts, 1))
    return counter.get_total_flops() / 2 / prompts
