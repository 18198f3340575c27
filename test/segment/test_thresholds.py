"""The thresholds rule lives in the segment layer: an explicit value wins, then the model's own
(Backend.model_thresholds, from its checkpoint), then SAM's; the Segmenter applies it for every
caller. (The node and the Python path on the shipped weights: test/ros/test_node_in_process.)"""
import numpy as np
import pytest

from litesam_ros.segment import Segmenter, SegmentSettings
from litesam_ros.segment.strategies import run_strategy
from litesam_ros.segment.thresholds import MODEL_OWN, SAM_THRESHOLDS, threshold_sources

OPEN = dict(points_per_side=4, points_per_batch=16, box_nms_thresh=1.0, max_instances=1000)


def _image(h=120, w=160):
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_explicit_then_the_models_own_then_sams() -> None:
    own = {"pred_iou_thresh": 0.3, "stability_score_thresh": 0.7}
    assert threshold_sources({}, own) == {"pred_iou_thresh": (0.3, "model"),
                                          "stability_score_thresh": (0.7, "model"),
                                          "ppn_score_thresh": (0.0, "default")}
    # SAM's own value, given explicitly, is still the caller's
    got = threshold_sources({"pred_iou_thresh": 0.88, "ppn_score_thresh": MODEL_OWN}, own)
    assert got["pred_iou_thresh"] == (0.88, "explicit") and got["ppn_score_thresh"][1] == "default"
    assert threshold_sources({}, None) == {n: (v, "default") for n, v in SAM_THRESHOLDS.items()}
    assert SegmentSettings().pred_iou_thresh == MODEL_OWN  # unset: the model's own
    assert SegmentSettings().resolved().pred_iou_thresh == 0.88
    with pytest.raises(ValueError, match="-1 for the model's own"):
        SegmentSettings(stability_score_thresh=1.5)


def test_the_segmenter_takes_the_models_own_and_an_explicit_value_wins(fake_backend) -> None:
    img = _image()
    fake_backend.model_thresholds = {"pred_iou_thresh": 0.75, "stability_score_thresh": 0.0}
    own = Segmenter(fake_backend, SegmentSettings(**OPEN))
    assert own.settings.pred_iou_thresh == 0.75 and own.settings.ppn_score_thresh == 0.0
    assert own.threshold_sources["stability_score_thresh"] == (0.0, "model")
    res_own = own.segment_everything(img, "grid")
    assert np.all(res_own.iou_scores > 0.75) and len(res_own) == 2 * 16  # 0.9 and 0.8 pass

    explicit = Segmenter(fake_backend, SegmentSettings(pred_iou_thresh=0.85, **OPEN))
    assert explicit.threshold_sources["pred_iou_thresh"] == (0.85, "explicit")
    res_explicit = explicit.segment_everything(img, "grid")
    assert np.all(res_explicit.iou_scores > 0.85) and len(res_explicit) == 16

    # new settings (the node's parameter changes) go through the same rule
    own.settings = SegmentSettings(pred_iou_thresh=0.85, **OPEN)
    assert own.settings == explicit.settings
    own.settings = SegmentSettings(**OPEN)
    assert own.settings.pred_iou_thresh == 0.75
    assert np.array_equal(own.segment_everything(img, "grid").masks, res_own.masks)


def test_a_strategy_refuses_unresolved_thresholds(fake_backend) -> None:
    seg = Segmenter(fake_backend, SegmentSettings(**OPEN))
    enc = fake_backend.encode(seg.geometry.preprocess(_image()))
    with pytest.raises(ValueError, match="resolve them first"):
        run_strategy("grid", fake_backend, enc, SegmentSettings(**OPEN), (64, 64), (16, 16), {})
