"""Pre-processing (resize longest side, normalise, pad) and coordinate transforms both ways.

Frames: *original* = pixels of the image the caller passed (H x W); *input* = the S x S frame the
model sees, i.e. the image resized so its longest side is S, then zero-padded bottom/right.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch


def resized_hw(height: int, width: int, image_size: int) -> tuple[int, int]:
    """Size (h, w) of an H x W image after resizing its longest side to ``image_size``."""
    scale = image_size / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_longest_side(image: np.ndarray, image_size: int) -> np.ndarray:
    """Resize an HxWx3 image with OpenCV so its longest side is ``image_size``."""
    h, w = resized_hw(image.shape[0], image.shape[1], image_size)
    if (h, w) == image.shape[:2]:
        return np.ascontiguousarray(image)
    interp = cv2.INTER_AREA if max(image.shape[:2]) > image_size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=interp)


def preprocess(image: np.ndarray, image_size: int, pixel_mean: Sequence[float],
               pixel_std: Sequence[float]) -> torch.Tensor:
    """RGB uint8 HxWx3 -> normalised float32 [1, 3, S, S], zero-padded bottom/right."""
    resized = resize_longest_side(image, image_size)
    h, w = resized.shape[:2]
    mean = np.asarray(pixel_mean, dtype=np.float32)
    std = np.asarray(pixel_std, dtype=np.float32)
    out = np.zeros((3, image_size, image_size), dtype=np.float32)
    out[:, :h, :w] = ((resized.astype(np.float32) - mean) / std).transpose(2, 0, 1)
    return torch.from_numpy(out).unsqueeze(0)


def _scales(original_hw: tuple[int, int], image_size: int) -> tuple[float, float]:
    h, w = original_hw
    new_h, new_w = resized_hw(h, w, image_size)
    return new_w / w, new_h / h


def coords_to_input(coords: np.ndarray, original_hw: tuple[int, int],
                    image_size: int) -> np.ndarray:
    """(x, y) points [..., 2] from original pixels to the input frame."""
    sx, sy = _scales(original_hw, image_size)
    out = np.asarray(coords, dtype=np.float32).copy()
    out[..., 0] *= sx
    out[..., 1] *= sy
    return out


def coords_to_original(coords: np.ndarray, original_hw: tuple[int, int],
                       image_size: int) -> np.ndarray:
    """(x, y) points [..., 2] from the input frame back to original pixels."""
    sx, sy = _scales(original_hw, image_size)
    out = np.asarray(coords, dtype=np.float32).copy()
    out[..., 0] /= sx
    out[..., 1] /= sy
    return out


def boxes_to_input(boxes: np.ndarray, original_hw: tuple[int, int],
                   image_size: int) -> np.ndarray:
    """xyxy boxes [..., 4] from original pixels to the input frame."""
    b = np.asarray(boxes, dtype=np.float32)
    return coords_to_input(b.reshape(*b.shape[:-1], 2, 2), original_hw,
                           image_size).reshape(b.shape)


def boxes_to_original(boxes: np.ndarray, original_hw: tuple[int, int],
                      image_size: int) -> np.ndarray:
    """xyxy boxes [..., 4] from the input frame back to original pixels."""
    b = np.asarray(boxes, dtype=np.float32)
    return coords_to_original(b.reshape(*b.shape[:-1], 2, 2), original_hw,
                              image_size).reshape(b.shape)
