"""Per-instance 3D from a depth image aligned to the colour camera (no ROS).

The depth image must have the colour image's size and pixel grid ("aligned depth", e.g. a
RealSense ``aligned_depth_to_color`` topic). Each instance's mask pixels with valid depth are
back-projected with the colour camera's intrinsics into its optical frame (x right, y down,
z forward, metres).

Which intrinsics: ``sensor_msgs/CameraInfo`` carries K (with the distortion D) for the raw
image and P (its left 3x3) for the rectified one. A raw image's pixels are undistorted with K
and D (OpenCV's model, ``cv2.undistortPoints``); a rectified image's pixels are already
undistorted and use P with no distortion. With D all zero and K equal to P's 3x3 the two agree.

Why the median for the centroid: a mask's border pixels often fall on the background behind the
object (mask and depth edges never align to the pixel), and depth sensors add flying pixels at
edges. Those points are far behind the object and would drag a mean; the per-axis median ignores
up to half of the points being wrong. The box uses percentiles for the same reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: Depth encodings the node accepts: 16-bit millimetres (0 = no reading) or float metres
#: (0, NaN or inf = no reading). The scale to metres of each.
DEPTH_ENCODINGS: Dict[str, float] = {"16UC1": 0.001, "mono16": 0.001, "32FC1": 1.0}
#: Which CameraInfo matrix describes the colour image: raw (K + D) or rectified (P).
INTRINSICS_CHOICES = ("raw", "rectified")


def depth_to_metres(depth: np.ndarray, encoding: str) -> np.ndarray:
    """float32 metres with NaN where there is no reading, from a 16UC1 (mm) or 32FC1 (m)
    depth image."""
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth encoding {encoding!r} is not one of "
                         f"{', '.join(DEPTH_ENCODINGS)}")
    if depth.ndim != 2:
        raise ValueError(f"depth image must be 2-D, got shape {depth.shape}")
    out = depth.astype(np.float32) * np.float32(DEPTH_ENCODINGS[encoding])
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera with optional OpenCV distortion, for back-projection."""

    fx: float
    fy: float
    cx: float
    cy: float
    distortion: Tuple[float, ...] = ()
    _rays: Dict[Tuple[int, int], np.ndarray] = field(default_factory=dict, compare=False,
                                                     repr=False)

    @classmethod
    def from_camera_info(cls, k: Sequence[float], d: Sequence[float], p: Sequence[float],
                         kind: str = "raw") -> "Intrinsics":
        """From CameraInfo's K (9), D and P (12): ``raw`` = K + D, ``rectified`` = P, no D."""
        if kind not in INTRINSICS_CHOICES:
            raise ValueError(f"intrinsics must be one of {INTRINSICS_CHOICES}, got {kind!r}")
        if kind == "rectified":
            if len(p) != 12 or float(p[0]) <= 0 or float(p[5]) <= 0:
                raise ValueError("camera_info has no valid P for a rectified image")
            return cls(float(p[0]), float(p[5]), float(p[2]), float(p[6]))
        if len(k) != 9 or float(k[0]) <= 0 or float(k[4]) <= 0:
            raise ValueError("camera_info has no valid K (fx, fy must be > 0)")
        dist = tuple(float(v) for v in d)
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]),
                   dist if any(dist) else ())

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], np.float64)

    def rays(self, height: int, width: int) -> np.ndarray:
        """[H, W, 2] float32 normalised image coordinates (x/z, y/z) of every pixel centre,
        undistorted; computed once per image size."""
        key = (int(height), int(width))
        if key not in self._rays:
            v, u = np.mgrid[0:height, 0:width].astype(np.float64)
            if self.distortion:
                pts = np.stack([u.ravel(), v.ravel()], 1)[:, None, :]
                xy = cv2.undistortPoints(pts, self.matrix(), np.asarray(self.distortion))
                ray = xy.reshape(height, width, 2)
            else:
                ray = np.stack([(u - self.cx) / self.fx, (v - self.cy) / self.fy], -1)
            self._rays[key] = ray.astype(np.float32)
        return self._rays[key]


@dataclass
class Instance3D:
    """One instance in the camera's optical frame (metres). ``n_points`` = 0 means no pixel
    of the mask had valid depth: centroid and box are NaN."""

    centroid: np.ndarray      # [3] per-axis median of the points
    box_min: np.ndarray       # [3] low percentile per axis
    box_max: np.ndarray       # [3] high percentile per axis
    n_points: int             # mask pixels with valid depth
    valid_fraction: float     # n_points / mask area (0 for an empty mask)
    points: Optional[np.ndarray] = None  # [n_points, 3] float32 when asked for


def instance_3d(mask: np.ndarray, depth_m: np.ndarray, intrinsics: Intrinsics,
                percentiles: Tuple[float, float] = (2.0, 98.0),
                keep_points: bool = False,
                box: Optional[Sequence[float]] = None) -> Instance3D:
    """Back-project one boolean mask. ``box`` (x0, y0, x1, y1; x1/y1 exclusive) only limits
    the pixels visited (the node has each mask's tight box)."""
    h, w = depth_m.shape
    if mask.shape != (h, w):
        raise ValueError(f"mask {mask.shape} and depth {depth_m.shape} differ in size: the "
                         "depth image must be aligned to the colour image")
    y0, x0, y1, x1 = 0, 0, h, w
    if box is not None:
        x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    m = mask[y0:y1, x0:x1]
    z = depth_m[y0:y1, x0:x1]
    area = int(np.count_nonzero(m))
    sel = m & np.isfinite(z)
    n = int(np.count_nonzero(sel))
    nan3 = np.full(3, np.nan, np.float32)
    if n == 0:
        return Instance3D(nan3, nan3.copy(), nan3.copy(), 0, 0.0,
                          np.zeros((0, 3), np.float32) if keep_points else None)
    ray = intrinsics.rays(h, w)[y0:y1, x0:x1][sel]
    zz = z[sel]
    pts = np.empty((n, 3), np.float32)
    pts[:, 0] = ray[:, 0] * zz
    pts[:, 1] = ray[:, 1] * zz
    pts[:, 2] = zz
    lo, hi = np.percentile(pts, percentiles, axis=0)
    return Instance3D(np.median(pts, axis=0).astype(np.float32), lo.astype(np.float32),
                      hi.astype(np.float32), n, n / area,
                      pts if keep_points else None)


def instances_3d(masks: np.ndarray, depth_m: np.ndarray, intrinsics: Intrinsics,
                 boxes: Optional[np.ndarray] = None,
                 percentiles: Tuple[float, float] = (2.0, 98.0),
                 keep_points: bool = False) -> List[Instance3D]:
    """``instance_3d`` for each of ``masks`` [N, H, W] (bool), with their boxes if given."""
    return [instance_3d(m, depth_m, intrinsics, percentiles, keep_points,
                        None if boxes is None else boxes[i]) for i, m in enumerate(masks)]


__all__ = ["DEPTH_ENCODINGS", "INTRINSICS_CHOICES", "Instance3D", "Intrinsics",
           "depth_to_metres", "instance_3d", "instances_3d"]
