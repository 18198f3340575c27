"""Decoder attention initialised with tied query / key projections (training from scratch)."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Tuple

import torch

if TYPE_CHECKING:
    from litesam_ros.model import SamModel


def attention_layers(model: SamModel) -> List[Tuple[torch.nn.Linear, torch.nn.Linear]]:
    """(q_proj, k_proj) of every attention layer of the mask decoder: SAM's and EfficientSAM's
    decoders both name their projections so."""
    root = getattr(model.mask_decoder, "transformer", model.mask_decoder)
    out = []
    for m in root.modules():
        q, k = getattr(m, "q_proj", None), getattr(m, "k_proj", None)
        if isinstance(q, torch.nn.Linear) and isinstance(k, torch.nn.Linear):
            out.append((q, k))
    return out


def tie_attention_qk(model: SamModel, gain: float) -> int:
    """Initialise every decoder attention layer with ``k_proj = q_proj`` (times ``gain``).

    From scratch, SAM's decoder finds a shortcut: it predicts "objectness" from the image and
    ignores the prompt (measured here: masks identical for every prompt after 4,600 steps). With
    tied projections, q.k starts out as a scaled dot product of the positional encodings, so a
    prompt token attends near its own position from step 0 and the prompt path gets a gradient.
    Returns the number of attention layers changed. Training-time init only.
    """
    layers = attention_layers(model)
    name = model.config.name
    if not layers:
        raise ValueError(f"qk_tied_init: no decoder attention layers in model {name!r}")
    if any(q.weight.shape != k.weight.shape for q, k in layers):
        raise ValueError(f"qk_tied_init: q_proj and k_proj differ in shape in model {name!r}")
    with torch.no_grad():
        for q, k in layers:
            q.weight.mul_(gain)
            k.weight.copy_(q.weight)
            q.bias.zero_()
            k.bias.zero_()
    n = len(layers)
    return n


__all__ = ["attention_layers", "tie_attention_qk"]
