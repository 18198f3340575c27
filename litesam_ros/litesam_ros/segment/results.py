"""Segmentation results: instance masks, boxes, scores, prompts, COCO RLE and label images."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..masks import encode_rle


def mask_areas(masks: np.ndarray) -> np.ndarray:
    """Pixel count of each bool mask [N, H, W] as int64 [N]. One count_nonzero per mask:
    numpy's whole-array count is 7x faster than its per-row ``axis=1`` form (16 against 110 us
    for a 480 x 640 mask)."""
    return np.fromiter((np.count_nonzero(m) for m in masks), dtype=np.int64, count=len(masks))


def label_image(masks: np.ndarray, height: int, width: int,
                boxes: Optional[np.ndarray] = None,
                areas: Optional[np.ndarray] = None) -> np.ndarray:
    """uint16 H x W image: 0 = background, i + 1 = instance i. Larger masks are painted
    first so smaller (usually nested) instances stay visible.

    ``boxes`` [N,4] (tight xyxy, x1/y1 exclusive) limit each write to the mask's box and
    ``areas`` [N] spare a pass over every mask: both matter on the node's per-frame path.
    """
    n = len(masks)
    if n > np.iinfo(np.uint16).max:
        raise ValueError(f"{n} instances do not fit a uint16 label image")
    out = np.zeros((height, width), dtype=np.uint16)
    if areas is None:
        areas = mask_areas(masks.reshape(n, height, width))
    for i in np.argsort(-np.asarray(areas), kind="stable"):
        value = np.uint16(i + 1)
        if boxes is None:
            np.copyto(out, value, where=masks[i])
            continue
        x0, y0 = (max(0, int(np.floor(v))) for v in boxes[i][:2])
        x1, y1 = min(width, int(np.ceil(boxes[i][2]))), min(height, int(np.ceil(boxes[i][3])))
        if x1 > x0 and y1 > y0:
            np.copyto(out[y0:y1, x0:x1], value, where=masks[i, y0:y1, x0:x1])
    return out


@dataclass
class SegmentationResult:
    """Instances found in one image, in original pixels.

    masks [N,H,W] bool; boxes [N,4] xyxy float32 (x1/y1 exclusive); iou_scores (predicted IoU,
    calibrated when the weights record an IoU calibration), stability_scores [N] float32;
    areas [N] int64; prompt_points[i] [K,2] float32 and prompt_labels[i] [K] the points that
    produced instance i; prompt_boxes[i] [4] float32 or None; strategy: the segment-everything
    strategy or "prompts"; timings: seconds per stage.
    """

    masks: np.ndarray
    boxes: np.ndarray
    iou_scores: np.ndarray
    stability_scores: np.ndarray
    areas: np.ndarray
    prompt_points: list[np.ndarray] = field(default_factory=list)
    prompt_labels: list[np.ndarray] = field(default_factory=list)
    prompt_boxes: list[Optional[np.ndarray]] = field(default_factory=list)
    strategy: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def image_hw(self) -> tuple[int, int]:
        """(H, W) of the original image."""
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    def rles(self) -> list[dict]:
        """COCO RLE of every mask: {"size": [H, W], "counts": str}."""
        return encode_rle(self.masks)

    def label_image(self) -> np.ndarray:
        """uint16 H x W instance label image (0 = background, i + 1 = instance i)."""
        return label_image(self.masks, *self.image_hw, boxes=self.boxes, areas=self.areas)
