"""Resize/pad samples into the model's S x S input frame and sample training prompts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from .datasets import Sample
from .targets import PPNTargets, build_ppn_targets, central_point, mask_box

SAM_MEAN = (123.675, 116.28, 103.53)
SAM_STD = (58.395, 57.12, 57.375)


@dataclass
class Prepared:
    """A sample in the input frame: image [3,S,S] normalised, masks bool [N,S,S], targets."""

    image: torch.Tensor
    masks: np.ndarray
    targets: PPNTargets
    scale: float
    valid_hw: Tuple[int, int]


def resize_pad(image: np.ndarray, masks: np.ndarray, size: int,
               ignore: Optional[np.ndarray] = None
               ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], float, Tuple[int, int]]:
    """Resize the longest side to ``size`` and zero-pad bottom/right (SAM preprocessing)."""
    h, w = image.shape[:2]
    s = size / max(h, w)
    nh, nw = int(round(h * s)), int(round(w * s))
    img = np.zeros((size, size, 3), np.uint8)
    img[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    m = np.zeros((len(masks), size, size), bool)
    for i, mk in enumerate(masks):
        m[i, :nh, :nw] = cv2.resize(mk.astype(np.uint8), (nw, nh),
                                    interpolation=cv2.INTER_NEAREST) > 0
    ig = None
    if ignore is not None:
        ig = np.zeros((size, size), bool)
        ig[:nh, :nw] = cv2.resize(ignore.astype(np.uint8), (nw, nh),
                                  interpolation=cv2.INTER_NEAREST) > 0
    return img, m, ig, s, (nh, nw)


def normalise(img: np.ndarray, mean: Sequence[float] = SAM_MEAN,
              std: Sequence[float] = SAM_STD) -> torch.Tensor:
    """uint8 HxWx3 RGB -> float [3,H,W] normalised with SAM's mean/std."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
    return (t - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def prepare(sample: Sample, size: int, grid: int, mean: Sequence[float] = SAM_MEAN,
            std: Sequence[float] = SAM_STD, min_pixels: int = 4) -> Prepared:
    """Input-frame tensors and AutoPPN targets for one sample."""
    img, m, ig, s, hw = resize_pad(sample.image, sample.masks, size, sample.ignore)
    keep = m.reshape(len(m), -1).sum(1) >= min_pixels if len(m) else np.zeros(0, bool)
    m = m[keep]
    tg = build_ppn_targets(m, grid, image_hw=hw, ignore=ig)
    return Prepared(normalise(img, mean, std), m, tg, s, hw)


def sample_prompts(masks: np.ndarray, n: int, rng: np.random.Generator, box_prob: float = 0.5,
                   box_noise: float = 0.1, central_prob: float = 0.25
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random prompts for up to ``n`` instances (K = 2 per prompt).

    Box: GT box with noise (std ``box_noise`` x side, max 20 px), labels (2, 3). Point: uniform
    inside the mask (or its most central point with ``central_prob``), labels (1, -1).
    Returns coords [P,2,2] float32, labels [P,2] float32, instance index [P], is_point [P] bool.
    """
    N = len(masks)
    idx = rng.choice(N, size=min(n, N), replace=False) if N else np.zeros(0, np.int64)
    coords = np.zeros((len(idx), 2, 2), np.float32)
    labels = np.zeros((len(idx), 2), np.float32)
    is_point = np.zeros(len(idx), bool)
    for j, i in enumerate(idx):
        if rng.random() < box_prob:
            x0, y0, x1, y1 = mask_box(masks[i])
            bw, bh = x1 - x0, y1 - y0
            nz = rng.normal(0, 1, 4) * box_noise * np.array([bw, bh, bw, bh])
            b = np.array([x0, y0, x1, y1]) + np.clip(nz, -20, 20)
            coords[j] = [[b[0], b[1]], [b[2], b[3]]]
            labels[j] = (2, 3)
        else:
            if rng.random() < central_prob:
                x, y = central_point(masks[i])
            else:
                ys, xs = np.nonzero(masks[i])
                k = int(rng.integers(len(ys)))
                y, x = ys[k], xs[k]
            coords[j, 0] = (x, y)
            labels[j] = (1, -1)
            is_point[j] = True
    return coords, labels, idx.astype(np.int64), is_point
