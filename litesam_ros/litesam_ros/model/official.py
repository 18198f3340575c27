"""Recognise the official SAM-family checkpoint files by their contents and map them to configs.

Formats (facts from the official repositories):
- SAM ViT-B/L/H (facebookresearch/segment-anything): a bare state dict, ``image_encoder.*``
  with ``blocks.N.attn.rel_pos_h``, ``prompt_encoder.*``, ``mask_decoder.*``.
- MobileSAM and TinySAM: a bare state dict of the same layout with a TinyViT image encoder
  (``image_encoder.patch_embed.seq.0.c.weight``, ``image_encoder.layers.*``). The two files
  hold the same architecture and cannot be told apart by content; both map to ``mobile_sam``.
- EfficientSAM (yformer/EfficientSAM): ``{"model": state_dict}`` with ``image_encoder.pos_embed``
  and ``prompt_encoder.invalid_points.weight``.
A file is never recognised by its name. Keys this project does not run are dropped on import
and listed in ``UNUSED_PREFIXES``: SAM's dense mask-prompt encoder (the node takes points and
boxes) and TinyViT's ImageNet classifier (unused by every SAM variant).
"""
from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from .checkpoint import CheckpointError, PathLike
from .config import ModelConfig
from .registry import get_config

#: Official keys that no model here uses; removed on import.
UNUSED_PREFIXES = ("prompt_encoder.mask_downscaling.", "image_encoder.head.",
                   "image_encoder.norm_head.")
#: family -> key patterns only that family's files hold (any one is enough, so a file with a
#: few keys missing is still recognised, and its load then names the missing keys)
_MARKERS = {
    "sam": re.compile(r"image_encoder\.blocks\.\d+\.attn\.rel_pos_[hw]$"),
    "mobile_sam": re.compile(r"image_encoder\.(patch_embed\.seq|layers)\."),
    "efficient_sam": re.compile(r"prompt_encoder\.(invalid_points|bbox_\w+_embeddings)\."
                                r"|mask_decoder\.final_output_upscaling_layers\."),
}
FAMILY_NAMES = {"sam": "SAM", "mobile_sam": "MobileSAM/TinySAM", "efficient_sam": "EfficientSAM"}

StateDict = Dict[str, torch.Tensor]


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def unwrap_state_dict(payload: Any) -> Optional[StateDict]:
    """The state dict in a payload: bare, or under "model" (EfficientSAM) / "state_dict"."""
    if _is_state_dict(payload):
        return dict(payload)
    if isinstance(payload, dict):
        for key in ("model", "state_dict"):
            if _is_state_dict(payload.get(key)):
                return dict(payload[key])
    return None


def family_of(state: Mapping[str, Any]) -> Optional[str]:
    """"sam" / "mobile_sam" / "efficient_sam" from marker keys, or None."""
    for family, marker in _MARKERS.items():
        if any(marker.match(k) for k in state):
            return family
    return None


def _block_count(state: Mapping[str, Any], prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in state for m in [pat.match(k)] if m}
    return max(found) + 1 if found else 0


def _sam_vit_config(state: Mapping[str, torch.Tensor]) -> ModelConfig:
    """SAM ViT sizes read from the weights: width, depth, head size, windows, global blocks."""
    proj = state.get("image_encoder.patch_embed.proj.weight")
    if proj is None:  # too damaged to size: the standard ViT-B, whose load names what is off
        return get_config("sam_vit_b")
    width, patch = int(proj.shape[0]), int(proj.shape[-1])
    grid = int(state["image_encoder.pos_embed"].shape[1]) if "image_encoder.pos_embed" in \
        state else 64
    depth = _block_count(state, "image_encoder.blocks.")
    spans = [int(state[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0])
             for i in range(depth) if f"image_encoder.blocks.{i}.attn.rel_pos_h" in state]
    head_dim = next((int(v.shape[1]) for k, v in state.items() if k.endswith("rel_pos_h")), 64)
    window = min(spans) // 2 + 1 if spans else 14
    global_idx = tuple(i for i, s in enumerate(spans) if s // 2 + 1 == grid)
    for name in ("sam_vit_b", "sam_vit_l", "sam_vit_h"):
        cfg = get_config(name)
        if (cfg.stage_dims[0], cfg.stage_depths[0]) == (width, depth):
            return cfg
    # Not one of the three published sizes: describe it from the weights.
    return get_config("sam_vit_b").replace(
        name=f"sam_vit_w{width}_d{depth}", image_size=grid * patch, stage_dims=(width,),
        stage_depths=(depth,), stage_strides=(patch,), stage_heads=(max(1, width // head_dim),),
        window_sizes=(window,), global_attn_indexes=global_idx)


def _efficient_sam_config(state: Mapping[str, torch.Tensor]) -> ModelConfig:
    proj = state.get("image_encoder.patch_embed.proj.weight")
    width = int(proj.shape[0]) if proj is not None else 0
    for name in ("efficient_sam_vitt", "efficient_sam_vits"):
        cfg = get_config(name)
        if cfg.stage_dims[0] == width:
            return cfg
    return get_config("efficient_sam_vitt")  # its shape check names the mismatch


def recognise(path: PathLike, payload: Any) -> Tuple[ModelConfig, StateDict, str]:
    """(config, state dict without unused keys, family) of an official file's payload.

    Raises CheckpointError naming the file when it is not one of the official formats.
    """
    state = unwrap_state_dict(payload)
    if state is None:
        what = type(payload).__name__
        raise CheckpointError(path, f"not a model checkpoint (holds a {what} that is neither a "
                                    "litesam_ros checkpoint nor a state dict of tensors)")
    family = family_of(state)
    if family is None:
        if any(k.startswith("image_encoder.backbone.") for k in state):
            raise CheckpointError(path, "is a bare Lite-SAM state dict without its config; "
                                        "write it with litesam_ros.model.save_checkpoint")
        first = ", ".join(list(state)[:3])
        raise CheckpointError(path, "not a recognised checkpoint: no SAM, MobileSAM, TinySAM, "
                                    f"EfficientSAM or litesam_ros keys (first keys: {first})")
    if family == "sam":
        cfg = _sam_vit_config(state)
    elif family == "mobile_sam":
        cfg = get_config("mobile_sam")
    else:
        cfg = _efficient_sam_config(state)
    kept = {k: v for k, v in state.items() if not k.startswith(UNUSED_PREFIXES)}
    return cfg, kept, family


__all__ = ["UNUSED_PREFIXES", "FAMILY_NAMES", "unwrap_state_dict", "family_of", "recognise"]
