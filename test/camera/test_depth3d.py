"""Per-instance 3D on real RGB-D: imgviz's ARC 2017 frame (aligned colour + depth, CameraInfo,
ground-truth instance masks), checked against an independent per-point computation."""
from __future__ import annotations

import cv2
import imgviz
import numpy as np
import pytest

from litesam_ros.camera.depth3d import (Intrinsics, depth_to_metres, instance_3d,
                                         instances_3d)


@pytest.fixture(scope="module")
def arc():
    d = imgviz.data.arc2017()
    d["visible"] = np.asarray(d["masks"]) == 1
    return d


def _independent(mask, depth, k, dist):
    """Each mask pixel on its own through cv2.undistortPoints, float64, plain median."""
    v, u = np.nonzero(mask & np.isfinite(depth) & (depth > 0))
    xy = cv2.undistortPoints(np.stack([u, v], 1).astype(np.float64)[:, None], k, dist)[:, 0]
    z = depth[v, u].astype(np.float64)
    pts = np.stack([xy[:, 0] * z, xy[:, 1] * z, z], 1)
    return pts


def test_depth_encodings():
    mm = np.array([[0, 1000], [65535, 1500]], np.uint16)
    np.testing.assert_allclose(depth_to_metres(mm, "16UC1"),
                               [[np.nan, 1.0], [65.535, 1.5]], equal_nan=True)
    m = np.array([[0.0, np.nan], [np.inf, 2.5]], np.float32)
    np.testing.assert_allclose(depth_to_metres(m, "32FC1"),
                               [[np.nan, np.nan], [np.nan, 2.5]], equal_nan=True)
    with pytest.raises(ValueError, match="8UC1"):
        depth_to_metres(mm.astype(np.uint8), "8UC1")


def test_centroids_match_an_independent_computation_on_arc2017(arc):
    info = arc["camera_info"]
    intr = Intrinsics.from_camera_info(info["K"], info["D"], info["P"], "raw")
    assert intr.distortion  # this camera has distortion: the undistortion path is exercised
    depth = depth_to_metres(arc["depth"], "32FC1")
    k = np.array(info["K"], np.float64).reshape(3, 3)
    got = instances_3d(arc["visible"], depth, intr, keep_points=True)
    assert len(got) == len(arc["visible"]) == 8
    for g, m in zip(got, arc["visible"]):
        ref = _independent(m, arc["depth"], k, np.array(info["D"]))
        assert g.n_points == len(ref) > 100
        assert g.valid_fraction == pytest.approx(len(ref) / m.sum())
        np.testing.assert_allclose(g.centroid, np.median(ref, 0), atol=1e-4)  # 0.1 mm
        np.testing.assert_allclose(g.box_min, np.percentile(ref, 2, 0), atol=1e-4)
        np.testing.assert_allclose(g.box_max, np.percentile(ref, 98, 0), atol=1e-4)
        assert np.all(g.box_min <= g.centroid) and np.all(g.centroid <= g.box_max)
        # the objects lie in a tote about half a metre in front of the camera
        assert 0.4 < g.centroid[2] < 0.9
        # the centroid projects back into (or right next to) the object's own mask
        px, _ = cv2.projectPoints(g.centroid[None].astype(np.float64), np.zeros(3), np.zeros(3),
                                  k, np.array(info["D"]))
        u, v = np.round(px[0, 0]).astype(int)
        dist_to_mask = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 5)[v, u]
        assert dist_to_mask < 6, dist_to_mask


def test_median_ignores_background_pixels_at_the_edge(arc):
    """Every object's mask grown by a 2-px ring whose depth lies 0.5 m behind the object (a
    mask edge that spills onto a far background): the median centroid moves by millimetres,
    the mean by centimetres."""
    info = arc["camera_info"]
    intr = Intrinsics.from_camera_info(info["K"], info["D"], info["P"], "raw")
    depth = depth_to_metres(arc["depth"], "32FC1")
    for m in arc["visible"]:
        ring = cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~m
        a = instance_3d(m, depth, intr, keep_points=True)
        far = depth.copy()
        far[ring] = a.centroid[2] + 0.5
        b = instance_3d(m | ring, far, intr, keep_points=True)
        assert 0.05 < (b.n_points - a.n_points) / b.n_points < 0.5  # a real share spills
        shift_median = np.linalg.norm(a.centroid - b.centroid)
        shift_mean = np.linalg.norm(a.points.mean(0) - b.points.mean(0))
        assert shift_median < 0.3 * shift_mean, (shift_median, shift_mean)


def test_rectified_uses_p_and_raw_without_distortion_uses_k(arc):
    info = arc["camera_info"]
    p = np.array(info["P"]).reshape(3, 4)
    rect = Intrinsics.from_camera_info(info["K"], info["D"], info["P"], "rectified")
    assert (rect.fx, rect.fy, rect.cx, rect.cy) == (p[0, 0], p[1, 1], p[0, 2], p[1, 2])
    assert rect.distortion == ()
    raw0 = Intrinsics.from_camera_info(info["K"], [0.0] * 5, info["P"], "raw")
    assert raw0.distortion == ()
    # pinhole: pixel (u, v) at depth z -> ((u - cx) z / fx, (v - cy) z / fy, z)
    depth = np.full((480, 640), np.nan, np.float32)
    depth[100, 200] = 2.0
    mask = np.zeros((480, 640), bool)
    mask[100, 200] = mask[101, 200] = True  # the second pixel has no depth
    got = instance_3d(mask, depth, rect, box=(190, 90, 210, 110))
    np.testing.assert_allclose(got.centroid, [(200 - p[0, 2]) * 2 / p[0, 0],
                                              (100 - p[1, 2]) * 2 / p[1, 1], 2.0], rtol=1e-5)
    assert got.n_points == 1 and got.valid_fraction == 0.5


def test_no_valid_depth_and_bad_inputs(arc):
    info = arc["camera_info"]
    intr = Intrinsics.from_camera_info(info["K"], info["D"], info["P"])
    empty = instance_3d(arc["visible"][0], np.full((480, 640), np.nan, np.float32), intr)
    assert empty.n_points == 0 and empty.valid_fraction == 0 and np.isnan(empty.centroid).all()
    with pytest.raises(ValueError, match="aligned"):
        instance_3d(arc["visible"][0], np.zeros((240, 320), np.float32), intr)
    with pytest.raises(ValueError, match="K"):
        Intrinsics.from_camera_info([0.0] * 9, [], info["P"])
    with pytest.raises(ValueError, match="one of"):
        Intrinsics.from_camera_info(info["K"], [], info["P"], "fisheye")
