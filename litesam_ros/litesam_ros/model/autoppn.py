"""AutoPPN: point-confidence heatmaps and boxes from the image embedding, then Point-NMS + top-N.

Everything after the heads is written for export: ``hm == max_pool2d(hm)`` for the NMS, ``topk``
with a fixed k, gathers, no ``nonzero`` and no data-dependent Python control flow.

Sub-cell offsets (``ppn_offsets`` in the config): a third head gives, per size group and cell,
where inside the cell the proposal point lies (x, y as fractions of the cell, sigmoid -> (0, 1)).
``select_proposals`` gathers the offset of each selected (group, cell) and places the point there
instead of at the cell centre, inside the exported encoder graph, so every backend returns the
same points. Without the head the points stay at cell centres (old checkpoints).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .activations import GELU
from .litevit import LiteViTBlock


class PPNMaps(NamedTuple):
    """Raw AutoPPN outputs on the E x E grid (what the training losses use).

    heatmap_logits [B,G,E,E] point-confidence logits per size group (sigmoid -> confidence);
    boxes [B,E,E,4] x0,y0,x1,y1 in input-frame pixels for an object centred at each cell;
    offsets [B,G,E,E,2] (x, y) position of the point inside each cell per size group, as a
    fraction of the cell side in (0, 1) (0.5 = the cell centre), or None for a head without
    sub-cell offsets.
    """

    heatmap_logits: torch.Tensor
    boxes: torch.Tensor
    offsets: Optional[torch.Tensor] = None


class PPNProposals(NamedTuple):
    """Fixed-size proposals (N = top_n); entries with score 0 are padding (zeros everywhere).

    points [B,N,2] (x, y) and boxes [B,N,4] x0,y0,x1,y1, both in input-frame pixels;
    scores [B,N] in [0,1], sorted descending; groups [B,N] int64 (0 small, 1 medium, 2 large).
    """

    points: torch.Tensor
    scores: torch.Tensor
    groups: torch.Tensor
    boxes: torch.Tensor


def cell_centres(size: int, stride: float, like: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates of the centres of ``size`` grid cells of side ``stride``."""
    return (torch.arange(size, device=like.device, dtype=like.dtype) + 0.5) * stride


def point_nms(heatmap: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """Keep local maxima of ``heatmap`` [B,G,E,E] (per group), zero elsewhere."""
    peak = heatmap == F.max_pool2d(heatmap, kernel, stride=1, padding=kernel // 2)
    return torch.where(peak, heatmap, torch.zeros_like(heatmap))


def select_proposals(heatmap: torch.Tensor, boxes: torch.Tensor, stride: float, top_n: int,
                     min_score: float = 0.0, nms_kernel: int = 3,
                     image_size: float = math.inf,
                     offsets: Optional[torch.Tensor] = None) -> PPNProposals:
    """Point-NMS then top-N over all groups and cells.

    heatmap [B,G,E,E] confidences in [0,1]; boxes [B,E,E,4] xyxy pixels; offsets [B,G,E,E,2]
    (x, y) in-cell fractions or None (points at cell centres). A point is
    ``(cell index + offset) * stride``, the offset gathered from the selected group and cell.
    Peaks below ``min_score`` get score 0; score-0 entries (padding) have zero points, boxes and
    group. Boxes are clamped to [0, image_size].
    """
    b, g, h, w = heatmap.shape
    scores = point_nms(heatmap, nms_kernel)
    scores = torch.where(scores >= min_score, scores, torch.zeros_like(scores))
    top_s, top_i = torch.topk(scores.reshape(b, g * h * w), top_n, dim=1)
    cells = h * w
    # floor_divide on integer tensors exports as integer Div/Mod (exact in any precision);
    # torch.div(rounding_mode="floor") exports as Cast->float Div->Floor, which FP16 TensorRT
    # layers round wrongly past 2048 (r640: 3 of 4,800 groups; trt_graph_rules.fp16_hazards)
    group = torch.floor_divide(top_i, cells)
    pos = top_i - group * cells
    iy = torch.floor_divide(pos, w)
    ix = pos - iy * w
    cell = torch.stack((ix, iy), dim=-1).to(heatmap.dtype)
    if offsets is None:  # a config property (the head has no offsets), not a data branch
        points = (cell + 0.5) * stride
    else:
        sub = torch.gather(offsets.reshape(b, g * cells, 2), 1,
                           top_i.unsqueeze(-1).expand(b, top_n, 2))
        points = (cell + sub.to(heatmap.dtype)) * stride
    picked = torch.gather(boxes.reshape(b, cells, 4), 1, pos.unsqueeze(-1).expand(b, top_n, 4))
    picked = picked.clamp(min=0.0, max=image_size)
    valid = top_s > 0
    vf = valid.unsqueeze(-1).to(heatmap.dtype)
    return PPNProposals(points=points * vf, scores=top_s,
                        groups=torch.where(valid, group, torch.zeros_like(group)),
                        boxes=picked * vf)


class AutoPPN(nn.Module):
    """MSPM stem over the image embedding, a heatmap head and a box head (CenterNet-like).

    Box head: per-cell distances (l, t, r, b) = softplus(raw) * stride from the cell centre, in
    input pixels, returned as xyxy boxes. Offset head (``offsets=True``): per size group, the
    point's (x, y) inside the cell = sigmoid(raw) in (0, 1); its last layer starts at zero, so
    an untrained head proposes cell centres, exactly as a head without offsets.
    """

    def __init__(self, in_dim: int, dim: int, blocks: int, groups: int, stride: int,
                 image_size: int, top_n: int, min_score: float, nms_kernel: int = 3,
                 mlp_ratio: float = 2.0, mspm_kernels: Sequence[int] = (3, 5, 7),
                 layer_scale_init: float = 1e-5, prior: float = 0.1,
                 offsets: bool = False) -> None:
        super().__init__()
        self.stride = stride
        self.image_size = image_size
        self.top_n = top_n
        self.min_score = min_score
        self.nms_kernel = nms_kernel
        self.stem = nn.Sequential(nn.Conv2d(in_dim, dim, 1), *[
            LiteViTBlock(dim, mlp_ratio, mspm_kernels, layer_scale_init) for _ in range(blocks)])
        heat_out = nn.Conv2d(dim, groups, 1)
        assert heat_out.bias is not None
        nn.init.constant_(heat_out.bias, -math.log((1 - prior) / prior))
        self.heatmap_head = nn.Sequential(nn.Conv2d(dim, dim, 1), GELU(), heat_out)
        self.box_head = nn.Sequential(nn.Conv2d(dim, dim, 1), GELU(), nn.Conv2d(dim, 4, 1))
        self.groups = groups
        self.offset_head: Optional[nn.Sequential] = None
        if offsets:
            off_out = nn.Conv2d(dim, 2 * groups, 1)
            nn.init.zeros_(off_out.weight)
            assert off_out.bias is not None
            nn.init.zeros_(off_out.bias)  # sigmoid(0) = 0.5: the cell centre
            self.offset_head = nn.Sequential(nn.Conv2d(dim, dim, 1), GELU(), off_out)

    @property
    def has_offsets(self) -> bool:
        """Whether this head places points inside cells (sub-cell offsets)."""
        return self.offset_head is not None

    def forward(self, features: torch.Tensor) -> PPNMaps:
        """features [B,C,E,E] -> PPNMaps (logits and xyxy boxes, unclamped)."""
        x = self.stem(features)
        logits = self.heatmap_head(x)
        dist = F.softplus(self.box_head(x)) * self.stride  # [B,4,E,E] l,t,r,b
        h, w = x.shape[-2:]
        cx = cell_centres(w, self.stride, dist).view(1, 1, w)
        cy = cell_centres(h, self.stride, dist).view(1, h, 1)
        boxes = torch.stack((cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]),
                            dim=-1)
        offsets = None
        if self.offset_head is not None:
            raw = self.offset_head(x)  # [B,2G,E,E]: (x, y) per group
            b = raw.shape[0]
            offsets = torch.sigmoid(raw).reshape(b, self.groups, 2, h, w).permute(0, 1, 3, 4, 2)
        return PPNMaps(heatmap_logits=logits, boxes=boxes, offsets=offsets)

    def forward_raw(self, features: torch.Tensor) -> PPNMaps:
        """Alias of ``forward`` (the raw heads, for training)."""
        return self.forward(features)

    def propose(self, maps: PPNMaps) -> PPNProposals:
        """Point-NMS + top-N on the heads' outputs, with this model's settings."""
        return select_proposals(torch.sigmoid(maps.heatmap_logits), maps.boxes, self.stride,
                                self.top_n, self.min_score, self.nms_kernel,
                                float(self.image_size), maps.offsets)


__all__ = ["PPNMaps", "PPNProposals", "AutoPPN", "point_nms", "select_proposals",
           "cell_centres"]
