"""Per-camera depth for the runtime: stamp pairing of colour with aligned depth, the camera's
intrinsics, and each segmented frame's per-instance 3D. No ROS.

A camera (a runtime source) with depth gets a ``CameraDepth``: colour frames and depth images
go through a ``stamp_pairing.StampPairing`` (colour drives; every colour frame is
released exactly once, with the closest depth within ``tolerance_s`` or with none, and a dead
depth stream never stalls colour), the camera_info's intrinsics are kept, and ``project``
back-projects each instance's mask with ``depth3d``. What goes wrong is a status, never
an exception: the 2D outputs of a frame do not depend on its depth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .depth3d import (INTRINSICS_CHOICES, Instance3D, Intrinsics, depth_to_metres,
                               instances_3d)
from .stamp_pairing import Pair, StampPairing

#: Depth decoder: the depth payload -> (pixels HxW, encoding: "16UC1" | "mono16" | "32FC1").
#: Raises ValueError (or a subclass) for a payload that is not a usable depth image.
DepthDecoder = Callable[[Any], tuple[np.ndarray, str]]

#: Frame3D.status values. "ok": 3D made; the others: why not (each counted by the runtime as
#: depth_<status>, except "unpaired", counted as depth_unpaired).
STATUSES = ("ok", "unpaired", "no_camera_info", "size_mismatch", "invalid")


def _as_depth(payload: Any) -> tuple[np.ndarray, str]:
    """The default depth decoder: the payload is float metres (HxW) or (pixels, encoding)."""
    if isinstance(payload, tuple):
        return payload
    if isinstance(payload, np.ndarray):
        return payload, "32FC1" if payload.dtype.kind == "f" else "16UC1"
    raise ValueError(f"depth payload must be a numpy array or (array, encoding), got "
                     f"{type(payload).__name__} (give the runtime a depth decoder)")


@dataclass
class Frame3D:
    """The 3D of one frame's instances (one per instance, in result order) or why there is
    none. ``points``: per instance [n, 3] float32 when points were asked for."""

    status: str
    message: str = ""
    depth_stamp_ns: int | None = None
    instances: list[Instance3D] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class DepthSettings:
    """How a camera's depth is used."""

    tolerance_s: float = 0.02          # most |colour stamp - depth stamp| that pairs
    intrinsics: str = "raw"            # raw: K + D (image_raw); rectified: P (image_rect)
    keep_points: bool = False          # keep each instance's points (for a point cloud)
    percentiles: tuple[float, float] = (2.0, 98.0)

    def __post_init__(self) -> None:
        if not self.tolerance_s >= 0.0:
            raise ValueError(f"depth tolerance must be >= 0 s, got {self.tolerance_s}")
        if self.intrinsics not in INTRINSICS_CHOICES:
            raise ValueError(f"intrinsics must be one of {INTRINSICS_CHOICES}, "
                             f"got {self.intrinsics!r}")


class CameraDepth:
    """One camera's depth: the colour/depth pairing and the latest camera_info's intrinsics."""

    def __init__(self, settings: DepthSettings, max_pending: int = 2) -> None:
        self.settings = settings
        self.pairing: StampPairing[Any, Any] = StampPairing(
            int(round(settings.tolerance_s * 1e9)), max_pending=max_pending)
        self.intrinsics: Intrinsics | None = None
        self.camera_info_error: str | None = None
        self._info_key: tuple[Any, ...] | None = None

    def set_camera_info(self, k: Sequence[float], d: Sequence[float],
                        p: Sequence[float]) -> bool:
        """Take a camera_info's K, D, P. False (and ``camera_info_error`` says why) when they
        are not usable; the previous good intrinsics are then forgotten."""
        key = (tuple(k), tuple(d), tuple(p))
        if key == self._info_key:  # the same calibration, every frame: nothing to redo
            return self.intrinsics is not None
        self._info_key = key
        try:
            self.intrinsics = Intrinsics.from_camera_info(k, d, p, self.settings.intrinsics)
            self.camera_info_error = None
            return True
        except ValueError as exc:
            self.intrinsics = None
            self.camera_info_error = str(exc)
            return False

    def add_colour(self, stamp_ns: int, item: Any) -> list[Pair[Any, Any]]:
        return self.pairing.add_primary(stamp_ns, item)

    def add_depth(self, stamp_ns: int, item: Any) -> list[Pair[Any, Any]]:
        return self.pairing.add_secondary(stamp_ns, item)


def project(masks: np.ndarray, boxes: np.ndarray | None, depth_payload: Any,
            depth_stamp_ns: int | None, camera: CameraDepth,
            decode: DepthDecoder = _as_depth) -> Frame3D:
    """The 3D of masks [N, H, W] from the paired depth payload (None: unpaired)."""
    if depth_payload is None:
        return Frame3D("unpaired", "no depth image within depth_tolerance of the colour stamp")
    intrinsics = camera.intrinsics
    if intrinsics is None:
        why = camera.camera_info_error or "no camera_info received yet"
        return Frame3D("no_camera_info", f"depth without usable camera_info: {why}",
                       depth_stamp_ns)
    try:
        pixels, encoding = decode(depth_payload)
        depth_m = depth_to_metres(np.asarray(pixels), encoding)
    except ValueError as exc:
        return Frame3D("invalid", f"depth image unusable: {exc}", depth_stamp_ns)
    hw = tuple(masks.shape[1:]) if masks.ndim == 3 else None
    if hw is not None and depth_m.shape != hw:
        return Frame3D("size_mismatch",
                       f"depth image is {depth_m.shape[1]}x{depth_m.shape[0]} but the colour "
                       f"image is {hw[1]}x{hw[0]}: the depth must be aligned to the colour "
                       "camera (e.g. RealSense aligned_depth_to_color)", depth_stamp_ns)
    found = instances_3d(masks, depth_m, intrinsics, boxes, camera.settings.percentiles,
                         keep_points=camera.settings.keep_points)
    return Frame3D("ok", "", depth_stamp_ns, found)


__all__ = ["CameraDepth", "DepthDecoder", "DepthSettings", "Frame3D", "STATUSES", "project"]
