"""Instance IDs that persist across frames: Hungarian matching of masks to tracks (no ROS).

Each frame's instances are matched to the live tracks by one similarity per (instance, track)
pair: the larger of
- the mask IoU with the track's last mask (pycocotools on RLE: precise for slow objects), and
- the box IoU with the track's box moved by its velocity (a constant-velocity motion term, the
  fallback for objects that moved further than their own size or were missed for a few frames).
``scipy.optimize.linear_sum_assignment`` maximises the total similarity; pairs below ``iou_gate``
are not matched. Unmatched instances start new tracks (IDs are never reused); unmatched tracks
are kept for ``max_age`` frames (a short memory for missed or occluded objects) and then dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ..masks import rle_iou
from ..segment.postprocess import box_iou


@dataclass(frozen=True)
class TrackerSettings:
    """Defaults suit a camera at frame rate with segment-everything on every frame."""

    max_age: int = 5          # frames a track survives without a match
    iou_gate: float = 0.3     # least similarity that continues a track
    motion: bool = True       # use the constant-velocity box as well as the last mask

    def __post_init__(self) -> None:
        if self.max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {self.max_age}")
        if not 0.0 < self.iou_gate <= 1.0:
            raise ValueError(f"iou_gate must be in (0, 1], got {self.iou_gate}")


@dataclass
class _Track:
    track_id: int
    rle: dict
    box: np.ndarray           # xyxy float64
    velocity: np.ndarray      # box-centre pixels per frame
    missed: int = 0           # frames since the last match
    hits: int = 1


class MaskTracker:
    """Assigns persistent track IDs to each frame's instances; see the module docstring."""

    def __init__(self, settings: Optional[TrackerSettings] = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks: List[_Track] = []
        self._next_id = 1
        self.stats: Dict[str, int] = {"frames": 0, "created": 0, "expired": 0}

    def reset(self) -> None:
        """Forget every track; IDs keep counting up so old IDs are never given again."""
        self.stats["expired"] += len(self._tracks)
        self._tracks = []

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)

    def similarity(self, rles: List[dict], boxes: np.ndarray) -> np.ndarray:
        """[N instances, T tracks] similarity used for matching."""
        if not rles or not self._tracks:
            return np.zeros((len(rles), len(self._tracks)))
        sim = rle_iou(rles, [t.rle for t in self._tracks])
        if self.settings.motion:
            pred = np.stack([t.box + np.tile(t.velocity * (t.missed + 1), 2)
                             for t in self._tracks])
            sim = np.maximum(sim, box_iou(torch.from_numpy(np.asarray(boxes, np.float64)),
                                          torch.from_numpy(pred)).numpy())
        return sim

    def update(self, rles: List[dict], boxes: np.ndarray) -> np.ndarray:
        """Track IDs (uint32, >= 1) of this frame's instances (COCO RLEs and xyxy boxes)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(rles) != len(boxes):
            raise ValueError(f"{len(rles)} masks but {len(boxes)} boxes")
        self.stats["frames"] += 1
        sim = self.similarity(rles, boxes)
        ids = np.zeros(len(rles), np.uint32)
        matched_t = set()
        if sim.size:
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.settings.iou_gate:
                    self._continue(self._tracks[c], rles[r], boxes[r])
                    ids[r] = self._tracks[c].track_id
                    matched_t.add(c)
        keep: List[_Track] = []
        for i, t in enumerate(self._tracks):
            if i not in matched_t:
                t.missed += 1
                if t.missed > self.settings.max_age:
                    self.stats["expired"] += 1
                    continue
            keep.append(t)
        self._tracks = keep
        for r in np.flatnonzero(ids == 0):
            t = _Track(self._next_id, rles[r], boxes[r].copy(), np.zeros(2))
            self._next_id += 1
            self.stats["created"] += 1
            self._tracks.append(t)
            ids[r] = t.track_id
        return ids

    @staticmethod
    def _continue(t: _Track, rle: dict, box: np.ndarray) -> None:
        centre_old = (t.box[:2] + t.box[2:]) / 2
        centre_new = (box[:2] + box[2:]) / 2
        step = (centre_new - centre_old) / (t.missed + 1)
        t.velocity = step if t.hits == 1 else 0.5 * t.velocity + 0.5 * step
        t.rle, t.box, t.missed = rle, box.copy(), 0
        t.hits += 1


__all__ = ["MaskTracker", "TrackerSettings"]
