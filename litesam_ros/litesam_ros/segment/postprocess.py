"""Mask post-processing on torch tensors: scores, IoU calibration, boxes, NMS, upsampling;
OpenCV region clean-up. Bool work on CPU tensors goes through numpy (see ``above``)."""
from __future__ import annotations

import warnings
from typing import Mapping

import cv2
import numpy as np
import torch

from ..masks import mask_boxes
from .results import mask_areas


def stability_score(logits: torch.Tensor, mask_threshold: float, offset: float) -> torch.Tensor:
    """SAM's stability score: IoU of the masks thresholded at ``t + offset`` and ``t - offset``.

    logits [N, h, w] -> [N] float32 in [0, 1] (0 where both masks are empty).
    """
    inter = count_true(above(logits, mask_threshold + offset))
    union = count_true(above(logits, mask_threshold - offset))
    return (inter.float() / union.clamp(min=1).float())


def above(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Bool ``logits > threshold``. On CPU numpy compares: torch's CPU comparison took 2.65 ms
    for 92 candidate masks of 160 x 160 (r640), numpy's 0.46 ms."""
    if logits.device.type == "cpu":
        return torch.from_numpy(np.greater(logits.detach().numpy(), threshold))
    return logits > threshold


def count_true(masks: torch.Tensor) -> torch.Tensor:
    """True pixels per bool mask [N, ...] -> int64 [N]. On CPU numpy counts (``mask_areas``):
    torch's CPU bool sum took 3.9 ms for 92 masks of 160 x 160, numpy 0.24 ms."""
    if masks.device.type == "cpu":
        return torch.from_numpy(mask_areas(masks.detach().numpy()))
    return masks.flatten(1).sum(1, dtype=torch.int64)


#: Raw predicted IoUs are clipped to [eps, 1 - eps] before the logit (the head is an unbounded
#: MLP: its output can be < 0 or > 1).
IOU_LOGIT_EPS = 1e-4


def calibrate_iou(iou: torch.Tensor, calibration: Mapping[str, float]) -> torch.Tensor:
    """The weights' IoU calibration applied to raw predicted IoUs (any shape):
    ``sigmoid(scale * logit(clip(iou, eps, 1 - eps)) + bias)``.

    ``calibration``: {"scale": a, "bias": b} as a checkpoint records it (metadata
    "iou_calibration", fitted by ``litesam-train calibrate``); empty = identity, the raw values
    returned unchanged. The one place predicted IoUs are calibrated: every backend's output goes
    through it in ``pipeline.Segmenter``.
    """
    if not calibration:
        return iou
    x = iou.float().clamp(IOU_LOGIT_EPS, 1.0 - IOU_LOGIT_EPS)
    z = float(calibration["scale"]) * torch.logit(x) + float(calibration["bias"])
    return torch.sigmoid(z)


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Deprecated (to go in the next release): boxes with x1/y1 as inclusive pixel indices.

    The package's one box convention is ``litesam_ros.masks.mask_boxes`` (x1/y1 exclusive);
    this is it minus 1 on a non-empty mask's x1/y1. Empty masks give [0, 0, 0, 0]."""
    warnings.warn("segment.postprocess.masks_to_boxes is deprecated: use "
                  "litesam_ros.masks.mask_boxes (x1/y1 exclusive)", DeprecationWarning,
                  stacklevel=2)
    boxes = mask_boxes(masks)
    boxes[:, 2:] -= (boxes[:, 2:] > 0).to(boxes.dtype)
    return boxes


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of xyxy boxes [N, 4] (exclusive max)."""
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of xyxy boxes a [N, 4] and b [M, 4] -> [N, M]."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union.clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy box NMS: indices of kept boxes, highest score first.

    The IoU matrix is computed at once; the greedy pass walks only the kept boxes and
    suppresses each one's overlapping lower-scored boxes with one vector operation.
    """
    if boxes.numel() == 0:
        return torch.zeros((0,), dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    over = (box_iou(boxes[order], boxes[order]) > iou_threshold).triu(1).cpu().numpy()
    alive = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if alive[i]:
            alive &= ~over[i]
    return order[torch.from_numpy(np.flatnonzero(alive)).to(order.device)]


def remove_small_regions(mask: np.ndarray, area_thresh: float,
                         mode: str) -> tuple[np.ndarray, bool]:
    """Remove islands (mode "islands") or fill holes (mode "holes") smaller than area_thresh.

    Returns the new mask and whether it changed (as SAM's helper).
    """
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    correct_holes = mode == "holes"
    work = (correct_holes ^ mask).astype(np.uint8)
    n, regions, stats, _ = cv2.connectedComponentsWithStats(work, connectivity=8)
    sizes = stats[:, -1][1:]
    small = [i + 1 for i, s in enumerate(sizes) if s < area_thresh]
    if not small:
        return mask, False
    fill = [0] + small
    if not correct_holes:
        fill = [i for i in range(n) if i not in fill]
        if not fill:  # every region is small: keep the largest
            fill = [int(np.argmax(sizes)) + 1]
    return np.isin(regions, fill), True
