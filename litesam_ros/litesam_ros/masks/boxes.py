"""Tight boxes of boolean masks, for torch tensors and numpy arrays alike."""
from __future__ import annotations

from typing import Tuple, TypeVar

import numpy as np
import torch

MaskArray = TypeVar("MaskArray", torch.Tensor, np.ndarray)


def mask_profiles(masks: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``masks.any(2), masks.any(1)`` of bool masks [N, H, W]: which rows / columns hold a pixel.

    On CPU numpy computes them: torch's CPU bool reductions took 0.75 + 0.24 ms for one 480 x
    640 mask, numpy's 0.03 + 0.02 ms (this machine, 2 threads)."""
    if masks.device.type == "cpu":
        m = masks.detach().numpy()
        return torch.from_numpy(m.any(2)), torch.from_numpy(m.any(1))
    return masks.any(2), masks.any(1)


def mask_boxes(masks: MaskArray) -> MaskArray:
    """Tight xyxy boxes of bool masks [N, H, W] as float32 [N, 4]: x0, y0 inclusive, x1, y1
    exclusive (the last row / column + 1); zeros for an empty mask. A torch tensor gives a
    tensor on its device, a numpy array an array. Vectorised: the first and last True of each
    mask's any-over-columns / any-over-rows profile by argmax."""
    n, h, w = (int(d) for d in masks.shape)
    if isinstance(masks, torch.Tensor):
        if n == 0 or h == 0 or w == 0:
            return torch.zeros((n, 4), dtype=torch.float32, device=masks.device)
        rows, cols = (p.to(torch.uint8) for p in mask_profiles(masks))  # [N, H], [N, W]
        y0, x0 = rows.argmax(1), cols.argmax(1)  # argmax: the first maximum
        y1, x1 = h - rows.flip(1).argmax(1), w - cols.flip(1).argmax(1)
        boxes = torch.stack([x0, y0, x1, y1], dim=1).to(torch.float32)
        return boxes * rows.amax(1, keepdim=True)  # empty masks: zeros
    if n == 0 or h == 0 or w == 0:
        return np.zeros((n, 4), dtype=np.float32)
    m = np.asarray(masks, dtype=bool)
    r = np.asarray(m.any(2), dtype=np.uint8)  # [N, H]
    c = np.asarray(m.any(1), dtype=np.uint8)  # [N, W]
    edges = [c.argmax(1), r.argmax(1), w - c[:, ::-1].argmax(1), h - r[:, ::-1].argmax(1)]
    return np.stack(edges, axis=1).astype(np.float32) * r.max(1, keepdims=True)


__all__ = ["mask_boxes", "mask_profiles"]
