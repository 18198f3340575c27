"""Mask IoU: of paired masks (``mask_iou``) and of every pair of two sets (``pairwise_mask_iou``).

Both take torch tensors (computed on their device, float32) or numpy arrays (float64); where
both masks are empty the IoU is ``empty`` (0, as pycocotools has it, unless told: 1 says two
empty masks agree)."""
from __future__ import annotations

from typing import Sequence, Union, overload

import numpy as np
import torch
from pycocotools import mask as mask_utils

from .rle import Rle, encode_rle, pycocotools_rle

Masks = Union[torch.Tensor, np.ndarray]


@overload
def mask_iou(a: torch.Tensor, b: torch.Tensor, empty: float = 0.0) -> torch.Tensor: ...
@overload
def mask_iou(a: np.ndarray, b: np.ndarray, empty: float = 0.0) -> Union[float, np.ndarray]: ...


def mask_iou(a: Masks, b: Masks, empty: float = 0.0) -> Union[torch.Tensor, float, np.ndarray]:
    """IoU of bool masks a and b [..., H, W] (broadcast), over the last two dims: [...].

    One numpy pair [H, W] gives a float; torch always a tensor (0-d for one pair)."""
    if isinstance(a, torch.Tensor):
        b = torch.as_tensor(b, device=a.device)
        inter = (a & b).flatten(-2).sum(-1).float()
        union = (a | b).flatten(-2).sum(-1).float()
        return torch.where(union > 0, inter / union.clamp(min=1),
                           torch.full_like(union, float(empty)))
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    inter = np.logical_and(a, b).sum((-2, -1))
    union = np.logical_or(a, b).sum((-2, -1))
    out = np.where(union > 0, inter / np.maximum(union, 1), float(empty))
    return float(out) if out.ndim == 0 else out


@overload
def pairwise_mask_iou(a: torch.Tensor, b: torch.Tensor, empty: float = 0.0) -> torch.Tensor: ...
@overload
def pairwise_mask_iou(a: np.ndarray, b: np.ndarray, empty: float = 0.0) -> np.ndarray: ...


def pairwise_mask_iou(a: Masks, b: Masks, empty: float = 0.0
                      ) -> Union[torch.Tensor, np.ndarray]:
    """IoU [N, M] of every pair of bool masks a [N, H, W] and b [M, H, W].

    torch: one float32 matmul of the flattened masks on their device (exact up to 2**24 pixels
    a mask); numpy: ``rle_iou`` of their RLEs (float64, light on memory)."""
    if isinstance(a, torch.Tensor):
        b = torch.as_tensor(b, device=a.device)
        if len(a) == 0 or len(b) == 0:
            return torch.zeros(len(a), len(b), device=a.device)
        fa, fb = a.flatten(1).float(), b.flatten(1).float()
        inter = fa @ fb.T
        union = fa.sum(1)[:, None] + fb.sum(1)[None] - inter
        return torch.where(union > 0, inter / union.clamp(min=1),
                           torch.full_like(inter, float(empty)))
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float64)
    ra, rb = encode_rle(a), encode_rle(b)
    out = rle_iou(ra, rb)
    if empty:
        none_a = mask_utils.area([pycocotools_rle(r) for r in ra]) == 0
        none_b = mask_utils.area([pycocotools_rle(r) for r in rb]) == 0
        out[none_a[:, None] & none_b[None, :]] = float(empty)
    return out


def rle_iou(a: Sequence[Rle], b: Sequence[Rle]) -> np.ndarray:
    """IoU [N, M] float64 of every pair of COCO RLEs (ours or pycocotools'), by pycocotools
    without decoding; 0 where both are empty."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float64)
    ra, rb = [pycocotools_rle(r) for r in a], [pycocotools_rle(r) for r in b]
    return np.asarray(mask_utils.iou(ra, rb, [0] * len(rb)), np.float64).reshape(len(a), len(b))


__all__ = ["mask_iou", "pairwise_mask_iou", "rle_iou"]
