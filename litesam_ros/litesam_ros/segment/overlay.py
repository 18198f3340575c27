"""Instance overlay drawing: coloured masks, mask contours, boxes and id labels (numpy + OpenCV).

Colours depend only on the instance id (golden-ratio hue steps with three saturation/value
levels), so a tracked id keeps its colour across frames. All masks are blended in one pass
through a label image; pixels outside every mask, contour line, box and label are returned
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import cv2
import numpy as np

from litesam_ros.segment.results import label_image, mask_areas

__all__ = ["draw_overlay", "id_colors", "label_colormap"]

_GOLDEN = 0.6180339887498949  # consecutive ids land far apart on the hue circle
# (saturation, value) cycled by id, so ids whose hues happen to be close still differ.
_SAT_VAL = np.array([(0.9, 0.95), (0.55, 1.0), (1.0, 0.75)])


def id_colors(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """[len(ids), 3] uint8 RGB colours, a pure function of each (integer) id."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    hue = np.mod(ids.astype(np.float64) * _GOLDEN, 1.0)
    sat, val = _SAT_VAL[np.mod(ids, len(_SAT_VAL))].T
    sector = np.floor(hue * 6.0)
    frac = hue * 6.0 - sector
    p = val * (1.0 - sat)
    q = val * (1.0 - frac * sat)
    t = val * (1.0 - (1.0 - frac) * sat)
    sector = sector.astype(np.int64) % 6
    r = np.choose(sector, [val, q, p, p, t, val])
    g = np.choose(sector, [t, val, val, q, p, p])
    b = np.choose(sector, [p, p, t, val, val, q])
    return np.rint(np.stack([r, g, b], axis=-1) * 255.0).astype(np.uint8)


def label_colormap(n: int) -> np.ndarray:
    """[n, 3] uint8 RGB colours for ids 0..n-1 (same as ``id_colors(range(n))``)."""
    if n < 0:
        raise ValueError(f"label_colormap needs n >= 0, got {n}")
    return id_colors(np.arange(n))


def _contours(label: np.ndarray, thickness: int) -> np.ndarray:
    """H x W bool: foreground pixels within ``thickness`` pixels of a different label, i.e.
    contours drawn inside each mask. The image border is not a contour."""
    if thickness <= 1:  # 4-neighbour label changes
        edge = np.zeros(label.shape, dtype=bool)
        vertical = label[1:] != label[:-1]
        edge[1:] |= vertical
        edge[:-1] |= vertical
        horizontal = label[:, 1:] != label[:, :-1]
        edge[:, 1:] |= horizontal
        edge[:, :-1] |= horizontal
    else:  # the label varies within the (2t+1)^2 window around the pixel
        kernel = np.ones((2 * thickness + 1, 2 * thickness + 1), np.uint8)
        # OpenCV morphology takes uint16 or float32 (exact below 2**24 instances).
        values = label if label.dtype == np.uint16 else label.astype(np.float32)
        lo = cv2.erode(values, kernel, borderType=cv2.BORDER_REPLICATE)
        hi = cv2.dilate(values, kernel, borderType=cv2.BORDER_REPLICATE)
        edge = lo != hi
    return edge & (label > 0)


def _text_color(rgb: np.ndarray) -> tuple[int, int, int]:
    luma = 0.299 * int(rgb[0]) + 0.587 * int(rgb[1]) + 0.114 * int(rgb[2])
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def draw_overlay(image_rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray,
                 ids: Sequence[int], alpha: float = 0.5,
                 thickness: Optional[int] = None) -> np.ndarray:
    """A copy of ``image_rgb`` (H x W x 3 uint8) with the instances drawn on it.

    masks [N, H, W] bool; boxes [N, 4] xyxy (x2/y2 exclusive, non-finite rows skipped);
    ids [N] ints that pick each instance's colour and label; alpha the mask fill opacity.
    Larger masks are painted first so smaller (nested) ones stay visible. ``thickness`` of
    contours and boxes defaults to about 1/500 of the longer image side.
    """
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image_rgb must be H x W x 3 uint8, got {image.shape} {image.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    height, width = image.shape[:2]
    ids_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    n = len(ids_arr)
    masks_arr = np.asarray(masks)
    if n == 0 and masks_arr.size == 0:
        return image.copy()
    if masks_arr.shape != (n, height, width):
        raise ValueError(f"masks must be [N={n}, {height}, {width}], got {masks_arr.shape}")
    masks_arr = masks_arr.astype(bool, copy=False)
    boxes_arr = np.asarray(boxes, dtype=np.float64)
    if boxes_arr.shape != (n, 4):
        raise ValueError(f"boxes must be [N={n}, 4], got {boxes_arr.shape}")
    if thickness is None:
        thickness = max(1, round(max(height, width) / 500))

    out = image.copy()
    colors = id_colors(ids_arr)
    lut = np.zeros((n + 1, 3), np.uint8)
    lut[1:] = colors
    areas = mask_areas(masks_arr.reshape(n, height, width))
    order = np.argsort(-areas, kind="stable")  # the label image's painting order
    label = label_image(masks_arr, height, width, areas=areas)
    foreground = label > 0

    # One blend for all masks; pixels outside the masks are never written.
    if n < 256:  # OpenCV's table lookup is several times faster than numpy's gather
        table = np.zeros((256, 1, 3), np.uint8)
        table[: n + 1, 0] = lut
        index = label.astype(np.uint8)
        painted = cv2.LUT(cv2.merge([index, index, index]), table)
    else:
        painted = np.take(lut, label, axis=0)
    blended = cv2.addWeighted(image, 1.0 - alpha, painted, alpha, 0.0)
    cv2.copyTo(blended, foreground.view(np.uint8), out)
    edge = _contours(label, thickness)
    cv2.copyTo(painted, edge.view(np.uint8), out)

    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.4, max(height, width) / 1600)
    text_thickness = max(1, round(scale * 1.5))
    limit = 4 * max(height, width) + 16  # keeps coordinates in int32 for OpenCV
    for i in order:
        box = boxes_arr[i]
        if not np.all(np.isfinite(box)):
            continue
        x1, y1, x2, y2 = (int(round(float(np.clip(v, -limit, limit)))) for v in box)
        color = tuple(int(c) for c in colors[i])
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), color, thickness)
        text = str(int(ids_arr[i]))
        (tw, th), base = cv2.getTextSize(text, font, scale, text_thickness)
        tx = min(max(x1, 0), max(0, width - tw - 2))
        ty = y1 - 1 if y1 - th - base - 2 >= 0 else max(y1, 0) + th + base + 2
        ty = min(ty, height - 1)
        cv2.rectangle(out, (tx, ty - th - base - 2), (tx + tw + 2, ty), color, cv2.FILLED)
        cv2.putText(out, text, (tx + 1, ty - base - 1), font, scale, _text_color(colors[i]),
                    text_thickness, cv2.LINE_AA)
    return out
