"""Segment-everything strategies: which point prompts to decode, and low-res candidate filtering.

All three share the same decoding and filtering code (``decode_points``):
- ``autoppn``: the AutoPPN proposals of the encoder (score > threshold), decoded in chunks;
- ``grid``: SAM's regular points_per_side x points_per_side grid;
- ``hierarchical``: TinySAM's two passes: a sparse (points_per_side / 4) grid first, then only
  the dense-grid points outside the areas whose first-pass logits exceed a high threshold.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..engines.base import Backend, EncoderResult, torch_threads
from ..masks import mask_boxes
from ..model.loading import THRESHOLD_NAMES
from .postprocess import above, count_true, nms, stability_score
from .thresholds import MODEL_OWN

STRATEGIES = ("autoppn", "grid", "hierarchical")
#: What users may ask for: "auto" = autoppn where the model has an AutoPPN head, else grid.
STRATEGY_CHOICES = ("auto",) + STRATEGIES


@dataclass
class Candidates:
    """Masks that passed the low-res filters (low-res frame, padding cropped off).

    logits [M,h+1,w+1]: the top-left of the L x L low-res logits, one row/column past the
    (h, w) that covers the image, so upsampling and cropping stay exact; iou [M];
    stability [M]; boxes [M,4] low-res xyxy (x1/y1 exclusive); points [M,2] input-frame point
    that produced each mask.
    """

    logits: torch.Tensor
    iou: torch.Tensor
    stability: torch.Tensor
    boxes: torch.Tensor
    points: torch.Tensor

    @staticmethod
    def cat(parts: list["Candidates"]) -> "Candidates":
        """Concatenate candidate sets (all on the same device)."""
        return Candidates(*(torch.cat([getattr(p, f) for p in parts]) for f in
                            ("logits", "iou", "stability", "boxes", "points")))

    def __len__(self) -> int:
        return int(self.iou.shape[0])


@dataclass(frozen=True)
class FilterSettings:
    """The subset of SegmentSettings the decoding loop needs."""

    points_per_batch: int
    pred_iou_thresh: float
    stability_score_thresh: float
    stability_offset: float
    mask_threshold: float
    multimask: bool
    threads: int = 0  # torch intra-op threads of the filtering (SegmentSettings.postprocess_threads)


def build_point_grid(n_per_side: int) -> np.ndarray:
    """SAM's grid: [n*n, 2] (x, y) cell centres in [0, 1]."""
    if n_per_side < 1:
        raise ValueError(f"points per side must be >= 1, got {n_per_side}")
    offset = 1.0 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    xs, ys = np.meshgrid(side, side)
    return np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1).astype(np.float32)


def grid_points(n_per_side: int, input_hw: tuple[int, int]) -> np.ndarray:
    """Grid points in the input frame for an image that covers input_hw of the S x S input."""
    return build_point_grid(n_per_side) * np.array([input_hw[1], input_hw[0]], np.float32)


def proposal_points(enc: EncoderResult, score_thresh: float = 0.0,
                    nms_thresh: float = 1.0) -> torch.Tensor:
    """AutoPPN proposal points [M,2] with score > score_thresh, highest score first.

    nms_thresh < 1 also drops proposals whose predicted box overlaps a higher-scored
    proposal's box by more than that IoU: they would decode to masks that the final box NMS
    removes anyway, so they are not decoded at all.
    """
    if enc.scores is None or enc.points is None or enc.boxes is None:
        raise ValueError("the encoder gave no AutoPPN proposals (model without the head)")
    scores = enc.scores[0]
    keep = torch.nonzero(scores > score_thresh).flatten()
    keep = keep[torch.argsort(scores[keep], descending=True, stable=True)]
    if nms_thresh < 1.0 and keep.numel() > 1:
        keep = keep[nms(enc.boxes[0, keep].float(), scores[keep], nms_thresh)]
    return enc.points[0, keep].float()


def _filtered(logits: torch.Tensor, iou: torch.Tensor, pts: torch.Tensor, h: int, w: int,
              fs: FilterSettings) -> Optional[Candidates]:
    """The candidates of one decoder call that pass the filters (None: none pass)."""
    stab = stability_score(logits[:, :h, :w], fs.mask_threshold, fs.stability_offset)
    masks = above(logits[:, :h, :w], fs.mask_threshold)
    keep = count_true(masks) > 0
    if fs.pred_iou_thresh > 0:  # SAM applies each filter only when its threshold is > 0
        keep &= iou > fs.pred_iou_thresh
    if fs.stability_score_thresh > 0:
        keep &= stab >= fs.stability_score_thresh
    idx = torch.nonzero(keep).flatten()
    if idx.numel() == 0:
        return None
    boxes = mask_boxes(masks[idx])
    return Candidates(logits[idx], iou[idx], stab[idx], boxes, pts[idx])


def decode_points(backend: Backend, embeddings: torch.Tensor, points: torch.Tensor,
                  valid_hw: tuple[int, int], fs: FilterSettings) -> Candidates:
    """Decode single-point prompts [M,2] in chunks and keep masks passing the filters."""
    device = embeddings.device
    points = points.to(device=device, dtype=torch.float32).reshape(-1, 2)
    parts: list[Candidates] = []
    h, w = valid_hw
    lr = backend.config.low_res_size
    sh, sw = min(h + 1, lr), min(w + 1, lr)
    for chunk in points.split(max(1, fs.points_per_batch)):
        n = chunk.shape[0]
        if n == 0:
            continue
        coords = torch.cat([chunk[:, None], torch.zeros(n, 1, 2, device=device)], dim=1)
        labels = torch.tensor([[1.0, -1.0]], device=device).expand(n, 2).contiguous()
        logits, iou = backend.decode(embeddings, coords, labels)
        if fs.multimask and logits.shape[1] > 1:
            logits, iou = logits[:, 1:], iou[:, 1:]
        else:
            logits, iou = logits[:, :1], iou[:, :1]
        m = logits.shape[1]
        logits = logits[..., :sh, :sw].flatten(0, 1).float()
        iou = iou.reshape(-1).float()
        with torch_threads(fs.threads):
            candidates = _filtered(logits, iou, chunk.repeat_interleave(m, dim=0), h, w, fs)
        if candidates is not None:
            parts.append(candidates)
    if not parts:
        return Candidates(torch.zeros(0, sh, sw, device=device), torch.zeros(0, device=device),
                          torch.zeros(0, device=device), torch.zeros(0, 4, device=device),
                          torch.zeros(0, 2, device=device))
    return Candidates.cat(parts)


def _proposals(enc: EncoderResult, settings: Any) -> torch.Tensor:
    with torch_threads(settings.postprocess_threads):  # small ops: one thread is faster
        return proposal_points(enc, settings.ppn_score_thresh, settings.ppn_nms_thresh)


def run_strategy(name: str, backend: Backend, enc: EncoderResult, settings: Any,
                 input_hw: tuple[int, int], valid_hw: tuple[int, int],
                 timings: dict[str, float]) -> Candidates:
    """Run one strategy; settings is a SegmentSettings with its thresholds resolved
    (``SegmentSettings.resolved``: a Segmenter's are). Adds "decode" to timings."""
    unresolved = [n for n in THRESHOLD_NAMES if getattr(settings, n) == MODEL_OWN]
    if unresolved:
        raise ValueError(f"{', '.join(unresolved)} still ask for the model's own value: "
                         "resolve them first (SegmentSettings.resolved)")
    fs = FilterSettings(settings.points_per_batch, settings.pred_iou_thresh,
                        settings.stability_score_thresh, settings.stability_offset,
                        settings.mask_threshold, settings.multimask,
                        settings.postprocess_threads)
    fns: dict[str, Callable[[], Candidates]] = {
        "autoppn": lambda: decode_points(backend, enc.embeddings, _proposals(enc, settings),
                                         valid_hw, fs),
        "grid": lambda: decode_points(
            backend, enc.embeddings,
            torch.from_numpy(grid_points(settings.points_per_side, input_hw)), valid_hw, fs),
        "hierarchical": lambda: _hierarchical(backend, enc, settings, input_hw, valid_hw, fs),
    }
    if name not in fns:
        raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
    t0 = time.perf_counter()
    out = fns[name]()
    timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - t0
    return out


def uncovered_points(points: np.ndarray, covered: torch.Tensor, image_size: int) -> np.ndarray:
    """Input-frame points [M,2] outside ``covered``, a boolean map [L,L] of the S x S frame."""
    cov = covered.cpu().numpy()
    scale = cov.shape[0] / image_size
    ix = np.clip((points[:, 0] * scale).astype(np.int64), 0, cov.shape[1] - 1)
    iy = np.clip((points[:, 1] * scale).astype(np.int64), 0, cov.shape[0] - 1)
    return points[~cov[iy, ix]]


def _hierarchical(backend: Backend, enc: EncoderResult, settings: Any,
                  input_hw: tuple[int, int], valid_hw: tuple[int, int],
                  fs: FilterSettings) -> Candidates:
    cfg = backend.config
    sparse_n = max(1, settings.points_per_side // 4)
    first = decode_points(backend, enc.embeddings,
                          torch.from_numpy(grid_points(sparse_n, input_hw)), valid_hw, fs)
    covered = torch.zeros((cfg.low_res_size, cfg.low_res_size), dtype=torch.bool,
                          device=first.logits.device)
    if len(first):
        h, w = valid_hw
        covered[:h, :w] = (first.logits[:, :h, :w] > settings.hierarchical_logit_thresh).any(0)
    rest = uncovered_points(grid_points(settings.points_per_side, input_hw), covered,
                            cfg.image_size)
    second = decode_points(backend, enc.embeddings, torch.from_numpy(rest), valid_hw, fs)
    return Candidates.cat([first, second])
