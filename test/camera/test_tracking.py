"""Persistent instance IDs: the Hungarian mask tracker on constructed and synthetic moving
scenes with ground-truth identities."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from litesam_ros.masks import encode_rle
from litesam_ros.segment.postprocess import box_iou
from litesam_ros.camera.tracking import MaskTracker, TrackerSettings
from tracking_eval import MotionScene, run_tracker  # benchmarks/ (pytest pythonpath)

H, W = 120, 160


def _rect(x, y, w=20, h=20):
    m = np.zeros((H, W), bool)
    m[max(0, y):y + h, max(0, x):x + w] = True
    return m


def _feed(tracker, masks):
    masks = np.stack(masks) if masks else np.zeros((0, H, W), bool)
    boxes = [[np.nonzero(m)[1].min(), np.nonzero(m)[0].min(), np.nonzero(m)[1].max() + 1,
              np.nonzero(m)[0].max() + 1] for m in masks]
    return list(tracker.update(encode_rle(masks), np.array(boxes, float).reshape(-1, 4)))


def test_ids_follow_objects_whatever_their_order():
    t = MaskTracker()
    a, b = _feed(t, [_rect(10, 10), _rect(100, 60)])
    assert (a, b) == (1, 2)
    # next frame: moved a little, listed in the other order
    assert _feed(t, [_rect(104, 62), _rect(13, 11)]) == [2, 1]
    # a new object gets a new id; the old ones keep theirs
    assert _feed(t, [_rect(16, 12), _rect(60, 90), _rect(108, 64)]) == [1, 3, 2]


def test_short_memory_for_missed_objects():
    for max_age, same in ((3, True), (1, False)):
        t = MaskTracker(TrackerSettings(max_age=max_age))
        first = _feed(t, [_rect(40, 40)])[0]
        for _ in range(3):  # missed for three frames
            assert _feed(t, []) == []
        again = _feed(t, [_rect(42, 41)])[0]
        assert bool(again == first) is same, (max_age, first, again)


def test_motion_carries_a_fast_object_across_a_gap():
    """10 px per frame (half its size), then missed for a frame: it reappears 20 px on, with
    no overlap with its last mask, where the constant-velocity box predicts it."""
    for motion, expect_same in ((True, True), (False, False)):
        t = MaskTracker(TrackerSettings(motion=motion))
        ids = [_feed(t, [_rect(5 + 10 * i, 50)])[0] for i in range(3)]
        _feed(t, [])  # missed at x = 35
        ids.append(_feed(t, [_rect(45, 50)])[0])
        assert (len(set(ids)) == 1) is expect_same, (motion, ids)


def test_ids_are_never_reused_and_reset_forgets_tracks():
    t = MaskTracker()
    assert _feed(t, [_rect(10, 10)]) == [1]
    t.reset()
    assert t.live_tracks == 0
    assert _feed(t, [_rect(10, 10)]) == [2]
    with pytest.raises(ValueError, match="2 masks but 1 boxes"):
        t.update(encode_rle(np.stack([_rect(1, 1), _rect(50, 50)])), np.zeros((1, 4)))


def test_box_iou_the_tracker_uses():
    a = torch.tensor([[0, 0, 10, 10], [0, 0, 0, 0]], dtype=torch.float64)
    b = torch.tensor([[5, 0, 15, 10], [20, 20, 30, 30]], dtype=torch.float64)
    np.testing.assert_allclose(box_iou(a, b).numpy(), [[50 / 150, 0], [0, 0]])


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_moving_scene_id_stability(seed):
    """8 occluding objects at up to 8 px/frame, 10 % missed detections, false positives and
    mask jitter: IDs are kept in >= 95 % of consecutive-frame pairs, and the motion term
    removes most of the ID switches that mask IoU alone makes."""
    scene = MotionScene(max_speed=8.0, seed=seed)
    with_motion, _ = run_tracker(scene, 100, MaskTracker(TrackerSettings(motion=True)))
    without, _ = run_tracker(scene, 100, MaskTracker(TrackerSettings(motion=False)))
    s = with_motion.summary()
    assert s["gt"] > 600 and s["id_kept"] >= 0.95, s
    assert with_motion.id_switches < 0.5 * without.id_switches, (s, without.summary())
    # the counts are consistent: misses are the scene's dropped detections
    assert with_motion.misses == without.misses > 0
