"""Tracking evaluation: moving synthetic objects with ground-truth identities, imperfect
detections of them, and CLEAR-MOT counts (misses, false positives, ID switches, MOTA).

The tracker under test is ``segment.tracking.MaskTracker``; this module makes data and counts.
``benchmarks/bench_tracking.py`` prints the figures of docs/benchmarks.md. An experiment
harness, not package code: it lives beside the scripts that use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from litesam_ros.camera.tracking import MaskTracker
from litesam_ros.masks import encode_rle, mask_boxes


@dataclass
class Frame:
    """Ground truth (masks [G,H,W], ids [G]) and detections (masks [N,H,W], gt index of each
    detection or -1 for a false positive)."""

    gt_masks: np.ndarray
    gt_ids: np.ndarray
    det_masks: np.ndarray
    det_source: np.ndarray


@dataclass(frozen=True)
class MotionScene:
    """``objects`` ellipses and rectangles moving at constant velocity (bouncing off the image
    border), drawn back to front, so they occlude each other. Detections miss an object with
    ``miss_rate``, add a false positive with ``fp_rate`` per frame, and jitter each mask's
    outline by up to ``jitter`` pixels (erode or dilate)."""

    height: int = 240
    width: int = 320
    objects: int = 8
    min_size: int = 12
    max_size: int = 48
    max_speed: float = 6.0   # pixels per frame
    miss_rate: float = 0.1
    fp_rate: float = 0.2
    jitter: int = 2
    seed: int = 0

    def frames(self, n: int) -> Iterator[Frame]:
        rng = np.random.default_rng(self.seed)
        k = self.objects
        size = rng.uniform(self.min_size, self.max_size, (k, 2))
        pos = rng.uniform([0, 0], [self.width, self.height], (k, 2))
        vel = rng.uniform(-self.max_speed, self.max_speed, (k, 2))
        shape = rng.integers(0, 2, k)
        depth = rng.permutation(k)  # drawing order: later ones in front
        for _ in range(n):
            label = np.zeros((self.height, self.width), np.int32)
            for i in depth:
                c = tuple(int(v) for v in pos[i])
                ax = tuple(int(v / 2) for v in size[i])
                if shape[i]:
                    cv2.ellipse(label, c, ax, 0, 0, 360, int(i + 1), -1)
                else:
                    cv2.rectangle(label, (c[0] - ax[0], c[1] - ax[1]), (c[0] + ax[0], c[1] + ax[1]),
                                  int(i + 1), -1)
            ids = np.array([i for i in range(k) if (label == i + 1).sum() >= 20], np.int64)
            gt = np.stack([label == i + 1 for i in ids]) if len(ids) else \
                np.zeros((0, self.height, self.width), bool)
            dets: List[np.ndarray] = []
            src: List[int] = []
            for g, m in enumerate(gt):
                if rng.random() < self.miss_rate:
                    continue
                dets.append(self._jitter(rng, m))
                src.append(g)
            if rng.random() < self.fp_rate:
                fp = np.zeros((self.height, self.width), np.uint8)
                c = (int(rng.uniform(0, self.width)), int(rng.uniform(0, self.height)))
                cv2.circle(fp, c, int(rng.uniform(5, 15)), 1, -1)
                dets.append(fp.astype(bool))
                src.append(-1)
            yield Frame(gt, ids, np.stack(dets) if dets else
                        np.zeros((0, self.height, self.width), bool), np.array(src, np.int64))
            pos += vel
            for d, lim in ((0, self.width), (1, self.height)):
                out = (pos[:, d] < 0) | (pos[:, d] > lim)
                vel[out, d] *= -1
                pos[:, d] = np.clip(pos[:, d], 0, lim)

    def _jitter(self, rng: np.random.Generator, m: np.ndarray) -> np.ndarray:
        r = int(rng.integers(-self.jitter, self.jitter + 1))
        if r == 0:
            return m
        kernel = np.ones((2 * abs(r) + 1, 2 * abs(r) + 1), np.uint8)
        op = cv2.dilate if r > 0 else cv2.erode
        out = op(m.astype(np.uint8), kernel).astype(bool)
        return out if out.any() else m


@dataclass
class MotCounts:
    """CLEAR-MOT counts over a sequence (detections are matched to ground truth by source)."""

    gt: int = 0
    misses: int = 0
    false_positives: int = 0
    id_switches: int = 0
    pairs: int = 0           # (object seen in consecutive frames)
    pairs_kept: int = 0      # ... with the same track ID in both
    last: Dict[int, int] = field(default_factory=dict)  # gt id -> last track id
    seen_prev: Dict[int, int] = field(default_factory=dict)  # gt id -> track id previous frame

    def add(self, frame: Frame, track_ids: np.ndarray) -> None:
        self.gt += len(frame.gt_ids)
        self.false_positives += int((frame.det_source < 0).sum())
        now: Dict[int, int] = {}
        for d, g in enumerate(frame.det_source):
            if g >= 0:
                now[int(frame.gt_ids[g])] = int(track_ids[d])
        self.misses += len(frame.gt_ids) - len(now)
        for gid, tid in now.items():
            if gid in self.last and self.last[gid] != tid:
                self.id_switches += 1
            self.last[gid] = tid
            if gid in self.seen_prev:
                self.pairs += 1
                self.pairs_kept += int(self.seen_prev[gid] == tid)
        self.seen_prev = now

    @property
    def mota(self) -> float:
        return 1.0 - (self.misses + self.false_positives + self.id_switches) / max(1, self.gt)

    def summary(self) -> Dict[str, float]:
        return {"gt": self.gt, "misses": self.misses, "false_positives": self.false_positives,
                "id_switches": self.id_switches, "mota": round(self.mota, 4),
                "id_kept": round(self.pairs_kept / max(1, self.pairs), 4)}


def run_tracker(scene: MotionScene, frames: int, tracker: Optional[MaskTracker] = None,
                ) -> Tuple[MotCounts, MaskTracker]:
    """Feed ``frames`` frames of ``scene``'s detections to a MaskTracker; the CLEAR-MOT counts."""
    trk = tracker if tracker is not None else MaskTracker()
    counts = MotCounts()
    for f in scene.frames(frames):
        rles = encode_rle(f.det_masks)
        boxes = mask_boxes(f.det_masks).astype(np.float64)
        counts.add(f, trk.update(rles, boxes))
    return counts, trk


__all__ = ["Frame", "MotCounts", "MotionScene", "run_tracker"]
