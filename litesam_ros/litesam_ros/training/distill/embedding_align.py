"""Bringing a teacher's image embedding onto the student's grid (any two geometries).

The teacher's grid (e.g. 64 x 64 at 1024 px) and the student's (40 x 40 at 640 px) cover the
same image, but at other strides, and a stretched teacher (EfficientSAM) covers it differently
from a longest-side student. Each student cell covers an interval of the *original* image along
x and y (``Geometry.scales``); its target is the teacher's embedding averaged over that interval,
each teacher cell weighted by its overlap (box-filter "area" resampling, separable: two small
matrices). Why: the student's cell sums what its footprint saw, so an area average is the
teacher's feature for the same pixels; nearest or bilinear point sampling of a denser grid
(64 -> 40) would drop 60% of the teacher's cells and alias. Both longest-side frames (SAM,
MobileSAM, Lite-SAM) pad the same share of the frame, so the padding cells align too; where the
teacher does not cover a student cell at all (a stretched teacher has no padding) the cell gets
weight 0 and is left out of the loss (``weight`` = covered share of the cell).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from ...model.geometry import Geometry


def overlap_matrix(n_s: int, cell_s: float, n_t: int, cell_t: float, extent: float
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """1-D area weights [n_s, n_t] (rows sum to 1 where covered) and coverage [n_s] in [0,1].

    Student cell i covers [i*cell_s, (i+1)*cell_s), teacher cell j [j*cell_t, (j+1)*cell_t), in
    original-image units; only [0, extent) counts.
    """
    s0 = np.arange(n_s)[:, None] * cell_s
    t0 = np.arange(n_t)[None, :] * cell_t
    lo = np.maximum(s0, t0)
    hi = np.minimum(np.minimum(s0 + cell_s, t0 + cell_t), extent)
    ov = np.clip(hi - lo, 0, None)
    cover = ov.sum(1)
    w = ov / np.maximum(cover, 1e-12)[:, None]
    return w.astype(np.float32), np.clip(cover / cell_s, 0, 1).astype(np.float32)


def align_matrices(teacher: Geometry, e_t: int, student: Geometry, e_s: int,
                   original_hw: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor,
                                                          torch.Tensor]:
    """(Ay [Es,Et], Ax [Es,Et], weight [Es,Es]) for an image of ``original_hw``."""
    sx_s, sy_s = student.scales(original_hw)
    sx_t, sy_t = teacher.scales(original_hw)
    st_s, st_t = student.image_size / e_s, teacher.image_size / e_t
    # the frame each model sees, in original pixels: both frames where both look
    ext_x = min(student.image_size / sx_s, teacher.image_size / sx_t)
    ext_y = min(student.image_size / sy_s, teacher.image_size / sy_t)
    ay, cy = overlap_matrix(e_s, st_s / sy_s, e_t, st_t / sy_t, ext_y)
    ax, cx = overlap_matrix(e_s, st_s / sx_s, e_t, st_t / sx_t, ext_x)
    return torch.from_numpy(ay), torch.from_numpy(ax), torch.from_numpy(cy[:, None] * cx[None])


def align_embedding(emb_t: torch.Tensor, teacher: Geometry, student: Geometry, e_s: int,
                    original_hw: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Teacher embedding [C,Et,Et] -> ([C,Es,Es] float32 on the student's grid, weight [Es,Es])."""
    ay, ax, w = align_matrices(teacher, emb_t.shape[-1], student, e_s, original_hw)
    e = emb_t.float()
    out = torch.einsum("ij,cjk,lk->cil", ay.to(e.device), e, ax.to(e.device))
    return out, w.to(e.device)


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over channels and weighted mean over cells; pred/target [B,C,E,E], weight [B,E,E]."""
    per_cell = ((pred - target) ** 2).mean(1)
    return (per_cell * weight).sum() / weight.sum().clamp(min=1e-6)


def weighted_cosine(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
                    ) -> torch.Tensor:
    """Weighted mean over cells of the cosine between channel vectors."""
    cos = torch.nn.functional.cosine_similarity(pred, target, dim=1, eps=1e-6)
    return (cos * weight).sum() / weight.sum().clamp(min=1e-6)


__all__ = ["overlap_matrix", "align_matrices", "align_embedding", "weighted_mse",
           "weighted_cosine"]
