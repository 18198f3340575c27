"""Samples into the model's S x S input frame (model.geometry) and training prompts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch

from ...model.geometry import Geometry
from ..data.samples import Sample
from .targets import PPNTargets, build_ppn_targets, central_point, mask_box

@dataclass
class Prepared:
    """A sample in the input frame: image [3,S,S] normalised, masks bool [N,S,S], targets."""

    image: torch.Tensor
    masks: np.ndarray
    targets: PPNTargets
    input_hw: Tuple[int, int]


def prepare(sample: Sample, geometry: Geometry, grid: int, min_pixels: int = 4) -> Prepared:
    """Input-frame tensors and AutoPPN targets for one sample.

    The image goes through ``geometry.preprocess``, the same code as serving, so the model is
    trained on the pixels the node gives it; masks are resized with nearest neighbour.
    """
    image = geometry.preprocess(sample.image)[0]
    hw = geometry.input_hw(sample.image.shape[:2])
    m = geometry.resize_masks(sample.masks)
    ig = None
    if sample.ignore is not None:
        ig = geometry.resize_masks(sample.ignore[None])[0]
    keep = m.reshape(len(m), -1).sum(1) >= min_pixels if len(m) else np.zeros(0, bool)
    m = m[keep]
    tg = build_ppn_targets(m, grid, image_hw=hw, ignore=ig)
    return Prepared(image, m, tg, hw)


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
