"""AutoPPN targets from instance masks (Lite-SAM, distance-transform ground truth).

Each pixel belongs to the smallest mask that contains it. Per instance, the distance transform of
the pixels it owns is normalised to 1 at its maximum (the instance's most central point, not its
box centre) and raised to ``gamma`` (soft, peaked). The map is max-pooled onto the E x E grid, one
channel per size group (0 small, 1 medium, 2 large). Box targets (x0, y0, x1, y1 in the mask
frame's pixels) sit at each instance's peak cell. Cells that are mostly unlabeled are ignored.

Sub-cell offset targets (for a head with ``ppn_offsets``): where the max-pooling found each
positive cell's value, i.e. the argmax of the soft map inside the cell, per group, as (x, y)
fractions of the cell: at an instance's peak cell that is its most central point (the smallest
instance of the group wins a shared peak cell, as for boxes); elsewhere the most central pixel
of the object inside that cell. A point ``(cell + offset) * stride`` is that pixel's centre.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from ...masks import mask_boxes
from ..data.synthetic import size_group_of_box


@dataclass
class PPNTargets:
    """Targets on the E x E grid.

    heatmap [3,E,E] float32 in [0,1]; valid [E,E] float32 (0 = ignored cell);
    box_target [E,E,4] float32 xyxy pixels; box_weight [E,E] float32 (1 at peak cells);
    box_group [E,E] int64 (size group of the box at that cell, -1 elsewhere);
    peaks [N,2] float32 (x, y) most central point per instance (pixels); groups [N] int64;
    offset [3,E,E,2] float32 (x, y) in-cell position of the target point as a fraction of the
    cell, ``(pixel + 0.5) / stride - cell`` in (0, 1) (0.5 where there is none);
    offset_weight [3,E,E] float32: the heatmap target at positive, valid cells, 0 elsewhere.
    """

    heatmap: np.ndarray
    valid: np.ndarray
    box_target: np.ndarray
    box_weight: np.ndarray
    box_group: np.ndarray
    peaks: np.ndarray
    groups: np.ndarray
    offset: np.ndarray
    offset_weight: np.ndarray


def mask_box(mask: np.ndarray) -> Tuple[float, float, float, float]:
    """Tight xyxy box of one bool mask (x1/y1 exclusive, i.e. pixel edges; masks.mask_boxes)."""
    x0, y0, x1, y1 = (float(v) for v in mask_boxes(np.asarray(mask, bool)[None])[0])
    return (x0, y0, x1, y1)


def ownership(masks: np.ndarray) -> np.ndarray:
    """int32 [H,W]: index of the smallest mask containing each pixel, -1 where none."""
    n, H, W = masks.shape
    owner = np.full((H, W), -1, np.int32)
    areas = masks.reshape(n, -1).sum(1)
    for i in np.argsort(-areas, kind="stable"):  # largest first, smaller ones overwrite
        owner[masks[i]] = i
    return owner


def distance_transform(mask: np.ndarray) -> np.ndarray:
    """L2 distance to the nearest pixel outside ``mask``; the image border counts as outside."""
    pad = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(pad, cv2.DIST_L2, 5)[1:-1, 1:-1]


def central_point(mask: np.ndarray) -> Tuple[float, float]:
    """(x, y) pixel of the maximum of the mask's distance transform (its most central point)."""
    dt = distance_transform(mask)
    y, x = np.unravel_index(int(np.argmax(dt)), dt.shape)
    return float(x), float(y)


def instance_groups(masks: np.ndarray, image_hw: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Size group per mask; ``image_hw`` = the real image size (defaults to the mask frame)."""
    H, W = image_hw if image_hw is not None else masks.shape[1:]
    out = np.zeros(len(masks), np.int64)
    for i, m in enumerate(masks):
        x0, y0, x1, y1 = mask_box(m)
        out[i] = size_group_of_box(y1 - y0, x1 - x0, H, W)
    return out


def build_ppn_targets(masks: np.ndarray, grid: int, image_hw: Optional[Tuple[int, int]] = None,
                      ignore: Optional[np.ndarray] = None, gamma: float = 2.0,
                      ignore_frac: float = 0.5) -> PPNTargets:
    """AutoPPN targets for bool masks [N,S,S] in the (padded, square) input frame.

    ``grid`` = E (S must be divisible by E). ``image_hw`` = size of the valid image region in the
    input frame (size groups are relative to it; defaults to S x S).
    ``ignore`` [S,S] bool marks unlabeled pixels; a cell with more than ``ignore_frac`` of its
    pixels ignored and no positive target is excluded from the loss.
    """
    masks = np.asarray(masks, bool)
    n, S, S2 = masks.shape if masks.ndim == 3 else (0, *masks.shape[-2:])
    if S != S2 or S % grid:
        raise ValueError(f"masks must be square with size divisible by grid, got {masks.shape}")
    st = S // grid
    groups = instance_groups(masks, image_hw) if n else np.zeros(0, np.int64)
    owner = ownership(masks) if n else np.full((S, S), -1, np.int32)
    full = np.zeros((3, S, S), np.float32)
    peaks = np.zeros((n, 2), np.float32)
    box_target = np.zeros((grid, grid, 4), np.float32)
    box_weight = np.zeros((grid, grid), np.float32)
    box_group = np.full((grid, grid), -1, np.int64)
    box_area = np.full((grid, grid), np.inf)
    peak_area = np.full((3, grid, grid), np.inf)
    peak_at: Dict[Tuple[int, int, int], Tuple[int, int]] = {}  # (g, cy, cx) -> smallest's (px, py)
    for i in range(n):
        own = owner == i
        if not own.any():
            continue
        dt = distance_transform(own)
        mx = float(dt.max())
        py, px = np.unravel_index(int(np.argmax(dt)), dt.shape)
        peaks[i] = (px, py)
        soft = (dt / mx) ** gamma
        np.maximum(full[groups[i]], soft, out=full[groups[i]])
        cy, cx = py // st, px // st
        area = float(masks[i].sum())
        if area < peak_area[groups[i], cy, cx]:
            peak_area[groups[i], cy, cx] = area
            peak_at[(int(groups[i]), int(cy), int(cx))] = (int(px), int(py))
        if area < box_area[cy, cx]:  # smallest instance wins a shared peak cell
            box_area[cy, cx] = area
            box_target[cy, cx] = mask_box(masks[i])
            box_weight[cy, cx] = 1.0
            box_group[cy, cx] = groups[i]
    cells = full.reshape(3, grid, st, grid, st).transpose(0, 1, 3, 2, 4).reshape(
        3, grid, grid, st * st)
    heat = cells.max(-1)
    # offsets: where in the cell the max-pooled value came from (first in raster order on ties)
    arg = cells.argmax(-1)
    offset = np.stack([(arg % st + 0.5) / st, (arg // st + 0.5) / st], -1).astype(np.float32)
    for (g, y, x), (qx, qy) in peak_at.items():
        offset[g, y, x] = ((qx - x * st + 0.5) / st, (qy - y * st + 0.5) / st)
    valid = np.ones((grid, grid), np.float32)
    if ignore is not None:
        frac = np.asarray(ignore, np.float32).reshape(grid, st, grid, st).mean(axis=(1, 3))
        valid[(frac > ignore_frac) & (heat.max(0) <= 0)] = 0.0
    offset_weight = (heat * valid[None]).astype(np.float32)
    offset[offset_weight <= 0] = 0.5
    return PPNTargets(heatmap=heat.astype(np.float32), valid=valid, box_target=box_target,
                      box_weight=box_weight, box_group=box_group, peaks=peaks, groups=groups,
                      offset=offset, offset_weight=offset_weight)
