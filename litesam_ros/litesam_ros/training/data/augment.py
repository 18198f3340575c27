"""Whole-scene augmentation for synthetic training scenes (issue 12.4).

:func:`photometric` changes only pixels (brightness / contrast / colour / saturation jitter,
Gaussian blur, Gaussian noise, JPEG compression); :func:`geometric` warps the image and every
instance mask with the same affine map (scale, horizontal flip, small rotation). Both draw all
randomness from the ``rng`` they are given, so a scene stays a pure function of its seed.
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np


def photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> uint8 HxWx3 with random photometric changes (each applied by chance)."""
    x: np.ndarray = image.astype(np.float32)
    if rng.random() < 0.8:  # brightness / contrast about the mean
        mean = float(x.mean())
        x = (x - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-30, 30)
    if rng.random() < 0.5:  # colour: per-channel gain
        x = x * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    if rng.random() < 0.5:  # saturation
        gray = x.mean(axis=2, keepdims=True)
        x = gray + (x - gray) * rng.uniform(0.5, 1.4)
    x = np.clip(x, 0, 255)
    if rng.random() < 0.3:  # defocus / motion-free blur
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.3:  # sensor noise
        x = x + rng.standard_normal(x.shape).astype(np.float32) * rng.uniform(2, 10)
    out = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:  # JPEG compression artefacts
        q = int(rng.integers(25, 90))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
        if dec is not None:
            out = np.asarray(dec, np.uint8)
    return np.ascontiguousarray(out)


def geometric(rng: np.random.Generator, image: np.ndarray, masks: np.ndarray,
              scale: Tuple[float, float] = (0.8, 1.25), max_rotation_deg: float = 10.0,
              flip_prob: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """The same random affine map (scale and rotation about a random point, horizontal flip) for
    the image (linear, reflected border: border pixels are unlabelled background, as the rest of
    a background photo is) and the bool [N,H,W] masks (nearest, zero border)."""
    H, W = image.shape[:2]
    s = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    ang = float(rng.uniform(-max_rotation_deg, max_rotation_deg))
    cx = rng.uniform(0.3, 0.7) * (W - 1)
    cy = rng.uniform(0.3, 0.7) * (H - 1)
    M = cv2.getRotationMatrix2D((cx, cy), ang, s)  # (cx, cy) stays where it is
    if rng.random() < flip_prob:
        M = np.array([[-1.0, 0.0, W - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([M, [0.0, 0.0, 1.0]])
    img = cv2.warpAffine(image, M, (W, H), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    out = np.zeros(masks.shape, bool)
    for i, m in enumerate(masks):
        out[i] = cv2.warpAffine(m.astype(np.uint8), M, (W, H), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    return np.ascontiguousarray(img), out
