"""The training forward pass of the image encoder and the raw AutoPPN maps (with gradients
where they train)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import torch

if TYPE_CHECKING:
    from litesam_ros.model import PPNMaps, SamModel


def encode_maps_for_training(model: SamModel, images: torch.Tensor, encoder_grad: bool = True,
                             heads: bool = True) -> Tuple[torch.Tensor, Optional[PPNMaps]]:
    """(embedding [B,C,E,E], the raw AutoPPN maps or None): heatmap logits, boxes and, for a
    head with ``ppn_offsets``, the sub-cell offsets.

    ``encoder_grad`` False runs the image encoder under ``no_grad`` (frozen encoder: no graph,
    less memory); ``heads`` False skips the AutoPPN head (frozen, or the model has none).
    """
    with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
        emb = model.encode_image(images)
    if not heads:
        return emb, None
    if model.autoppn is None:
        raise ValueError(f"model {model.config.name!r} has no AutoPPN head")
    return emb, model.autoppn(emb)


__all__ = ["encode_maps_for_training"]
