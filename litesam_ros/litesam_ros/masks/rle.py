"""COCO run-length encoding of bool masks through pycocotools, counts as str (JSON-ready)."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

Rle = Dict[str, Any]  # {"size": [H, W], "counts": str} (or bytes, as pycocotools gives it)


def encode_rle(masks: Union[np.ndarray, torch.Tensor]) -> List[Rle]:
    """COCO RLE of bool masks [N, H, W] via pycocotools: [{"size": [H, W], "counts": str}]."""
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    if len(masks) == 0:
        return []
    # pycocotools wants H x W x N in Fortran order, i.e. N x W x H in C order. OpenCV's
    # per-mask transpose builds that ~5x faster than numpy's strided transpose + astype
    # (measured 2.9 vs 14 ms for 20 masks of 640x480): it is most of the node's overhead.
    u8 = np.ascontiguousarray(masks).view(np.uint8) if masks.dtype == bool \
        else np.ascontiguousarray(masks, dtype=np.uint8)
    n, h, w = u8.shape
    by_column = np.empty((n, w, h), dtype=np.uint8)
    for i in range(n):
        cv2.transpose(u8[i], by_column[i])
    rles = mask_utils.encode(by_column.transpose(2, 1, 0))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")}
            for r in rles]


def pycocotools_rle(rle: Rle) -> Rle:
    """An RLE as pycocotools takes it (counts as bytes), from ours (counts as str) or its own."""
    counts = rle["counts"]
    return {"size": list(rle["size"]),
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_rle(rle: Rle) -> np.ndarray:
    """One COCO RLE (counts as str or bytes) back to a boolean H x W mask."""
    return mask_utils.decode(pycocotools_rle(rle)).astype(bool)


def decode_rles(rles: Sequence[Rle], hw: Tuple[int, int]) -> np.ndarray:
    """COCO RLEs back to bool masks [N, H, W]; ``hw`` shapes the empty stack of none."""
    if not rles:
        return np.zeros((0, *hw), bool)
    return np.stack([decode_rle(r) for r in rles])


__all__ = ["Rle", "encode_rle", "decode_rle", "decode_rles", "pycocotools_rle"]
