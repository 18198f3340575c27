"""Per-camera processing of the runtime: each source's depth pairing, tracking and 3D.

A source with depth (configure_depth) pairs its colour frames with depth images by stamp
(camera.depth.CameraDepth) before they reach the inference thread; once segmented, a frame gets
its masks' RLEs, its track ids (when tracking is on: one MaskTracker per source) and its 3D.
What goes wrong with depth is counted and logged (throttled, per source), never raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..camera.depth import CameraDepth, DepthDecoder, DepthSettings, Frame3D, _as_depth, project
from ..camera.tracking import MaskTracker, TrackerSettings
from ..segment import SegmentationResult
from .frames import Frame
from .logs import Logger, Throttled
from .stats import RuntimeStats


class PerCamera:
    """Every source's depth and tracking. ``release(frame) -> bool`` queues a frame whose
    depth pairing is settled (the runtime's newest-frame slot; True: it replaced one)."""

    def __init__(self, stats: RuntimeStats, log: Logger, log_period: float,
                 release: Callable[[Frame], bool], decode_depth: DepthDecoder | None = None,
                 tracking: TrackerSettings | None = None) -> None:
        self._stats = stats
        self._log = log
        self._log_period = log_period
        self._release = release
        self._decode_depth = decode_depth or _as_depth
        self._warn_depth: dict[str, Throttled] = {}
        self._depth: dict[str, CameraDepth] = {}   # sources with depth
        self._tracking = tracking
        self._trackers: dict[str, MaskTracker] = {}
        self._track_lock = threading.Lock()

    # -- depth -------------------------------------------------------------------------------
    def configure_depth(self, source: str, settings: DepthSettings | None) -> None:
        """Pair `source`'s frames with depth and give them 3D; None = no depth for it. Frames
        waiting in its pairing are released first."""
        old = self._depth.pop(source, None)
        if old is not None:
            self._release_pairs(source, old.pairing.flush())
        if settings is not None:
            self._depth[source] = CameraDepth(settings)

    def depth_camera(self, source: str) -> CameraDepth | None:
        return self._depth.get(source)

    @property
    def depth_sources(self) -> list[str]:
        return list(self._depth)

    def set_camera_info(self, source: str, k: Sequence[float], d: Sequence[float],
                        p: Sequence[float]) -> bool:
        """The calibration of `source`'s colour camera; False, with a throttled warning, when
        it is not usable (3D stops until a good one comes)."""
        camera = self._depth.get(source)
        if camera is None:
            return False
        ok = camera.set_camera_info(k, d, p)
        if not ok:
            self._depth_warning(source, f"camera_info unusable ({source}): "
                                        f"{camera.camera_info_error}")
        return ok

    def add_depth(self, payload: Any, source: str, stamp_ns: int) -> None:
        camera = self._depth.get(source)
        if camera is not None:
            self._release_pairs(source, camera.add_depth(int(stamp_ns), payload))

    def add_colour(self, frame: Frame, stamp_ns: int | None) -> bool | None:
        """Pair a colour frame of a source with depth (released once its pair is known:
        whether that replaced a waiting frame); None when its source has no depth or the frame
        no stamp (queue it at once)."""
        camera = self._depth.get(frame.source)
        if camera is None or stamp_ns is None:
            return None
        frame.stamp_ns = int(stamp_ns)
        return self._release_pairs(frame.source, camera.add_colour(int(stamp_ns), frame))

    def _release_pairs(self, source: str, pairs: list[Any]) -> bool:
        replaced = False
        for pair in pairs:
            frame: Frame = pair.primary
            frame.depth, frame.depth_stamp_ns = pair.secondary, pair.secondary_stamp_ns
            if pair.secondary is None:
                self._stats.count("depth_unpaired", source=source)
                self._depth_warning(source, f"colour frame of {source} at stamp "
                                            f"{pair.stamp_ns / 1e9:.6f} s has no depth image "
                                            "within depth_tolerance: published without 3D")
            else:
                self._stats.count("depth_paired", source=source)
            replaced = self._release(frame) or replaced
        return replaced

    def forget(self, source: str | None) -> None:
        """Drop the frames waiting for their depth (of `source`, or of every source)."""
        for name, camera in list(self._depth.items()):
            if source is None or name == source:
                held = len(camera.pairing.flush())
                camera.pairing.clear()
                if held:
                    self._stats.count("dropped", held, source=name)

    def project(self, frame: Frame, result: SegmentationResult) -> Frame3D | None:
        """The 3D of `result` (segmented on `frame`'s image) from the depth paired with the
        frame; None when its source has no depth. Counts and logs what went wrong."""
        camera = self._depth.get(frame.source)
        if camera is None:
            return None
        out = project(result.masks, result.boxes, frame.depth, frame.depth_stamp_ns, camera,
                      self._decode_depth)
        if out.status in ("no_camera_info", "size_mismatch", "invalid"):
            self._stats.count(f"depth_{out.status}", source=frame.source)
            self._depth_warning(frame.source, f"no 3D for a frame of {frame.source}: "
                                              f"{out.message}")
        missing = sum(1 for inst in out.instances if inst.n_points == 0)
        if missing:
            self._stats.count("instances_without_depth", missing, source=frame.source)
        return out

    def _depth_warning(self, source: str, message: str) -> None:
        throttled = self._warn_depth.get(source)
        if throttled is None:
            throttled = self._warn_depth.setdefault(
                source, Throttled(self._log.warning, self._log_period))
        throttled(message)

    # -- tracking ----------------------------------------------------------------------------
    @property
    def tracking(self) -> TrackerSettings | None:
        """Tracker settings (None: tracking off). Setting new ones keeps the tracks."""
        return self._tracking

    @tracking.setter
    def tracking(self, settings: TrackerSettings | None) -> None:
        with self._track_lock:
            self._tracking = settings
            if settings is None:
                self._trackers.clear()
            else:
                for tracker in self._trackers.values():
                    tracker.settings = settings

    def reset_tracks(self, source: str | None = None) -> int:
        """Forget the tracks of `source` (None: of every source); how many were forgotten.
        New ids keep counting up: an id is never given twice by one source."""
        with self._track_lock:
            trackers = (list(self._trackers.values()) if source is None
                        else [t for s, t in self._trackers.items() if s == source])
            count = 0
            for tracker in trackers:
                count += tracker.live_tracks
                tracker.reset()
            return count

    def drop_trackers(self) -> None:
        with self._track_lock:
            self._trackers.clear()

    def track(self, frame: Frame, rles: list[dict], boxes: np.ndarray) -> np.ndarray | None:
        """Track ids of a frame's instances (None: tracking off), by its source's tracker."""
        with self._track_lock:
            settings = self._tracking
            if settings is None:
                return None
            tracker = self._trackers.get(frame.source)
            if tracker is None:
                tracker = self._trackers[frame.source] = MaskTracker(settings)
            return tracker.update(rles, boxes)


__all__ = ["PerCamera"]
