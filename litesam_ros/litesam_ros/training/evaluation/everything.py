"""Grid segment-everything for any SamModel (teacher pseudo-labels and agreement metrics).

SAM's automatic mask generator, single crop: a points_per_side^2 grid over the image, every
multimask output kept when its predicted IoU and stability score pass, then mask NMS. Masks come
back in the original image frame (``Geometry.upsample_logits``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np
import torch

from ...masks import pairwise_mask_iou
from ...model.geometry import Geometry

if TYPE_CHECKING:
    from litesam_ros.model import SamModel


@dataclass
class EverythingConfig:
    """SAM's filters: pred_iou_thresh 0.88, stability 0.95, box NMS 0.7 at full scale; the
    defaults here are looser for small or partly trained models."""

    points_per_side: int = 16
    pred_iou_thresh: float = 0.5
    stability_thresh: float = 0.7
    stability_offset: float = 1.0
    nms_iou: float = 0.7
    min_area_frac: float = 0.001
    max_masks: int = 64
    chunk: int = 64

    @classmethod
    def from_dict(cls, d: Optional[Dict[str, Any]]) -> "EverythingConfig":
        return cls(**(d or {}))


@torch.no_grad()
def segment_everything(model: SamModel, image: np.ndarray, cfg: EverythingConfig,
                       embedding: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Bool masks [N,H,W] (sorted by score) for a uint8 RGB image; ``embedding`` [1,C,E,E]
    saves the encoder pass when given (e.g. from the teacher cache)."""
    geometry = Geometry.of(model.config)
    H, W = image.shape[:2]
    hw = geometry.input_hw((H, W))
    device = next(model.parameters()).device  # the model's, whatever the cache's
    if embedding is None:
        embedding, _ = model.encode(geometry.preprocess(image).to(device))
    embedding = embedding.to(device)
    n = cfg.points_per_side
    g = (np.arange(n) + 0.5) / n
    pts = np.stack(np.meshgrid(g * W, g * H), -1).reshape(-1, 1, 2)
    coords = torch.from_numpy(geometry.coords_to_input(pts, (H, W))).to(device)
    labels = torch.ones(len(coords), 1, device=device)
    masks, scores = [], []
    for i in range(0, len(coords), cfg.chunk):
        logits, iou = model.decode(embedding.float(), coords[i:i + cfg.chunk],
                                   labels[i:i + cfg.chunk])
        lg = logits[:, 1:] if logits.shape[1] > 1 else logits
        io = iou[:, 1:] if iou.shape[1] > 1 else iou
        lg, io = lg.flatten(0, 1), io.flatten()
        inter = (lg > cfg.stability_offset).flatten(1).sum(1).float()
        union = (lg > -cfg.stability_offset).flatten(1).sum(1).float()
        stab = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union))
        keep = (io >= cfg.pred_iou_thresh) & (stab >= cfg.stability_thresh)
        if keep.any():
            m = geometry.upsample_logits(lg[keep], hw, (H, W)) > 0
            masks.append(m)
            scores.append(io[keep])
    if not masks:
        return torch.zeros(0, H, W, dtype=torch.bool)
    m, s = torch.cat(masks), torch.cat(scores)
    big = m.flatten(1).sum(1) >= max(1.0, cfg.min_area_frac * H * W)
    m, s = m[big], s[big]
    order = torch.argsort(s, descending=True)
    m = m[order]
    kept: list = []
    for i in range(len(m)):
        if len(kept) >= cfg.max_masks:
            break
        if kept and pairwise_mask_iou(m[i:i + 1], m[kept]).max() > cfg.nms_iou:
            continue
        kept.append(i)
    return m[kept]


__all__ = ["EverythingConfig", "segment_everything"]
