"""The runtime's depth pairing, per-instance 3D, tracking and per-source statistics, without ROS,
on the real model (Lite-SAM r320, torch on the CPU)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from litesam_ros.runtime import DepthSettings, SegmentRuntime
from litesam_ros.segment import Segmenter, SegmentSettings
from litesam_ros.camera.tracking import TrackerSettings
from runtime_support import wait_for

FAST = SegmentSettings(strategy="grid", points_per_side=2, points_per_batch=4,
                       pred_iou_thresh=0.0, stability_score_thresh=0.0, max_instances=5)
# A 320x240 camera: fx = fy = 300, principal point at the centre, no distortion.
K = [300.0, 0.0, 160.0, 0.0, 300.0, 120.0, 0.0, 0.0, 1.0]
P = [300.0, 0.0, 160.0, 0.0, 0.0, 300.0, 120.0, 0.0, 0.0, 0.0, 1.0, 0.0]
D = [0.0] * 5
SEC = 1_000_000_000


class Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.results: list[tuple[Any, Any]] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def error(self, message: str) -> None:
        self.errors.append(message)

    def on_result(self, output: Any) -> None:
        self.results.append((output, output.result))


def _start(real_backend: Any, runtimes: list[Any], **kw: Any) -> tuple[SegmentRuntime, Log]:
    log = Log()
    rt = SegmentRuntime(on_result=log.on_result, logger=log, log_period=0.0, **kw)
    rt.start(Segmenter(real_backend, FAST))
    runtimes.append(rt)
    return rt, log


def _depth_ramp(h: int = 240, w: int = 320) -> np.ndarray:
    """float32 metres: a slanted plane from 1.0 m (left) to 2.0 m (right), with a NaN stripe."""
    depth = np.tile(np.linspace(1.0, 2.0, w, dtype=np.float32), (h, 1))
    depth[:, 100:110] = np.nan
    return depth


def test_paired_depth_gives_each_instance_its_back_projected_median(
        real_backend: Any, runtimes: list[Any], photo: np.ndarray) -> None:
    rt, log = _start(real_backend, runtimes)
    rt.configure_depth("cam", DepthSettings(tolerance_s=0.01, intrinsics="raw"))
    assert rt.set_camera_info("cam", K, D, P)
    depth = _depth_ramp()
    rt.submit_depth(depth, "cam", 5 * SEC + 3_000_000)      # 3 ms after the colour stamp
    rt.submit(photo, "cam", stamp_ns=5 * SEC)
    assert wait_for(lambda: len(log.results) == 1, 60.0)
    output, result = log.results[0]
    f3 = output.frame3d
    assert f3.ok and f3.depth_stamp_ns == 5 * SEC + 3_000_000
    assert len(f3.instances) == len(result) > 0
    v, u = np.mgrid[0:240, 0:320]
    for mask, inst in zip(result.masks, f3.instances):
        sel = mask & np.isfinite(depth)
        z = depth[sel]
        expect = np.array([np.median((u[sel] - 160.0) / 300.0 * z),
                           np.median((v[sel] - 120.0) / 300.0 * z), np.median(z)])
        assert inst.n_points == int(sel.sum())
        assert inst.valid_fraction == pytest.approx(sel.sum() / mask.sum())
        np.testing.assert_allclose(inst.centroid, expect, atol=1e-4)
    # the RLEs handed on are the masks'
    rle = output.rles[0]
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert (decoded.astype(bool) == result.masks[0]).all()
    assert rt.stats.depth_snapshot()["depth_paired"] == 1
    assert rt.stats.source("cam").depth_snapshot()["depth_paired"] == 1


def test_bad_depth_inputs_are_counted_and_2d_goes_on(real_backend: Any, runtimes: list[Any],
                                                     photo: np.ndarray) -> None:
    rt, log = _start(real_backend, runtimes)
    rt.configure_depth("cam", DepthSettings(tolerance_s=0.01))

    def one(stamp: int, depth: Any, depth_stamp: int | None = None) -> Any:
        n = len(log.results)
        if depth is not None:
            rt.submit_depth(depth, "cam", depth_stamp if depth_stamp is not None else stamp)
        rt.submit(photo, "cam", stamp_ns=stamp)
        if depth is None or depth_stamp is not None and depth_stamp < stamp:
            # unpaired: released once more colour frames than max_pending wait
            for extra in (1, 2):
                rt.submit(photo, "cam", stamp_ns=stamp + extra)
        assert wait_for(lambda: len(log.results) > n, 60.0)
        return log.results[n][0].frame3d

    # depth but no camera_info yet
    assert one(1 * SEC, _depth_ramp()).status == "no_camera_info"
    assert rt.set_camera_info("cam", K, D, P)
    # depth of another size than the colour image
    assert one(2 * SEC, _depth_ramp(120, 160)).status == "size_mismatch"
    # an encoding that is not depth
    assert one(3 * SEC, (np.zeros((240, 320), np.uint8), "mono8")).status == "invalid"
    # depth all zero (16UC1) or NaN: paired, 3D made, every instance has no points
    f3 = one(4 * SEC, np.zeros((240, 320), np.uint16))
    assert f3.ok and all(i.n_points == 0 and np.isnan(i.centroid).all() for i in f3.instances)
    # stamps that never pair (depth 1 s earlier than colour): the colour frame is released
    # without depth by the frames after it, never stalls
    f3 = one(10 * SEC, _depth_ramp(), depth_stamp=9 * SEC)
    assert f3.status == "unpaired"
    counts = rt.stats.depth_snapshot()
    assert counts["depth_no_camera_info"] == 1
    assert counts["depth_size_mismatch"] == 1
    assert counts["depth_invalid"] == 1
    assert counts["instances_without_depth"] == len(log.results[3][1])
    assert counts["depth_unpaired"] >= 1
    assert any("no depth image within depth_tolerance" in w for w in log.warnings)
    assert any("aligned" in w for w in log.warnings)
    assert rt.stats.processed == len(log.results)  # 2D went on for every frame


def test_tracking_keeps_ids_for_the_same_scene_and_reset_forgets(
        real_backend: Any, runtimes: list[Any], photo: np.ndarray) -> None:
    rt, log = _start(real_backend, runtimes, tracking=TrackerSettings(max_age=2, iou_gate=0.3))
    for i in range(2):
        rt.submit(photo, "a")
        assert wait_for(lambda: len(log.results) == i + 1, 60.0)
    first, second = (o.track_ids for o, _ in log.results)
    assert len(first) > 0 and list(first) == list(second)  # the same masks: the same ids
    assert sorted(first) == list(range(1, len(first) + 1))
    # another source has its own tracker (ids from 1)
    rt.submit(photo, "b")
    assert wait_for(lambda: len(log.results) == 3, 60.0)
    assert list(log.results[2][0].track_ids) == list(first)
    assert rt.reset_tracks("a") == len(first)
    rt.submit(photo, "a")
    assert wait_for(lambda: len(log.results) == 4, 60.0)
    after = log.results[3][0].track_ids
    assert min(after) > max(first)  # new ids, never reused
    rt.tracking = None
    rt.submit(photo, "a")
    assert wait_for(lambda: len(log.results) == 5, 60.0)
    assert log.results[4][0].track_ids is None
    assert rt.stats.source("a").processed == 4 and rt.stats.source("b").processed == 1


def test_depth_source_without_stamps_and_clear_drops_held_frames(
        real_backend: Any, runtimes: list[Any], photo: np.ndarray) -> None:
    rt, log = _start(real_backend, runtimes)
    rt.configure_depth("cam", DepthSettings(tolerance_s=0.01))
    rt.submit(photo, "cam", stamp_ns=SEC)  # waits in the pairing for its depth
    assert rt.depth_camera("cam").pairing.pending == 1
    rt.clear()
    assert rt.depth_camera("cam").pairing.pending == 0
    assert rt.stats.snapshot()["dropped"] == 1
    rt.submit(photo, "cam")  # no stamp: no pairing, no 3D status but "unpaired"
    assert wait_for(lambda: len(log.results) == 1, 60.0)
    assert log.results[0][0].frame3d.status == "unpaired"
