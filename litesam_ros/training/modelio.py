"""The few places where training touches model internals (raw AutoPPN heads, checkpoints)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

import torch

if TYPE_CHECKING:  # imported lazily at run time, as before
    from litesam_ros.model import SamModel


def build(name_or_cfg: Any) -> SamModel:
    """Build a model by registered name (or config) through ``litesam_ros.model``."""
    from litesam_ros.model import build_model

    return build_model(name_or_cfg)


def config_for(name_or_cfg: Any, image_size: int = 0) -> Any:
    """The model config for ``name_or_cfg``, at ``image_size`` if given (non-zero)."""
    from litesam_ros.model import resolve_config

    cfg = resolve_config(name_or_cfg)
    return cfg.replace(image_size=image_size) if image_size else cfg


def resized(model: SamModel, image_size: int) -> SamModel:
    """The same weights in a model built for another input size (all weights are size free)."""
    new = build(config_for(model_config(model), image_size))
    new.load_state_dict(model.state_dict(), strict=True)
    return new


def tie_attention_qk(model: SamModel, gain: float) -> int:
    """Initialise every decoder attention layer with ``k_proj = q_proj`` (times ``gain``).

    From scratch, SAM's decoder finds a shortcut: it predicts "objectness" from the image and
    ignores the prompt (measured here: masks identical for every prompt after 4,600 steps). With
    tied projections, q.k starts out as a scaled dot product of the positional encodings, so a
    prompt token attends near its own position from step 0 and the prompt path gets a gradient.
    Returns the number of attention layers changed. Training-time init only.
    """
    from litesam_ros.model.transformer import Attention

    n = 0
    with torch.no_grad():
        for mod in model.mask_decoder.transformer.modules():
            if isinstance(mod, Attention):
                mod.q_proj.weight.mul_(gain)
                mod.k_proj.weight.copy_(mod.q_proj.weight)
                mod.q_proj.bias.zero_()
                mod.k_proj.bias.zero_()
                n += 1
    return n


def model_config(model: SamModel) -> Any:
    """The model's :class:`ModelConfig` (attribute ``config`` or ``cfg``)."""
    return getattr(model, "config", None) or getattr(model, "cfg")


def encode_raw(model: SamModel, images: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image embedding [B,C,E,E], AutoPPN heatmap logits [B,3,E,E], boxes [B,E,E,4] xyxy pixels.

    Uses the model's raw-head method (``model.encode_raw`` or ``model.autoppn.forward_raw``).
    """
    if hasattr(model, "encode_raw"):
        out = model.encode_raw(images)
    else:
        feats = model.image_encoder(images)
        out = (feats[-1] if isinstance(feats, (tuple, list)) else feats,
               *model.autoppn.forward_raw(feats))
    emb, heat, boxes = out[0], out[1], out[2]
    if boxes.shape[1] == 4 and boxes.shape[-1] != 4:
        boxes = boxes.permute(0, 2, 3, 1)
    return emb, heat, boxes


def save(model: SamModel, path: str, meta: Optional[Dict[str, Any]] = None) -> None:
    """Write the model checkpoint in the model package's format (atomic there)."""
    from litesam_ros.model import save_checkpoint

    # plain str: torch.__version__ is a TorchVersion that weights_only loading rejects
    save_checkpoint(model, path, meta={"torch_version": str(torch.__version__), **(meta or {})})


def load(path: str, device: str = "cpu") -> SamModel:
    """Load a model from a checkpoint written by :func:`save`."""
    from litesam_ros.model import load_checkpoint

    model = load_checkpoint(path, map_location=device)
    return model[0] if isinstance(model, tuple) else model
