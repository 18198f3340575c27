"""The teacher's pseudo-labels are segment's own segment-everything: the Segmenter's strategy,
filters and box NMS with the teacher checkpoint's thresholds. Real weights (the shipped demo
checkpoint as the teacher), a real photo read back from a file."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from skimage import data

from litesam_ros.engines import create_backend
from litesam_ros.masks import decode_rles
from litesam_ros.model.resources import DEMO_WEIGHTS, find_shared_file
from litesam_ros.segment import Segmenter
from litesam_ros.training.data.unlabeled import UnlabeledImages
from litesam_ros.training.distill.config import DistillConfig
from litesam_ros.training.distill.labels import build_labels, label_dir
from litesam_ros.training.distill.student import load_teacher
from litesam_ros.training.distill.teacher_masks import (everything_settings, model_segmenter,
                                                        segment_masks)

#: the old keys, as configs written for the former grid code have them
OLD = {"points_per_side": 8, "stability_thresh": 0.9, "nms_iou": 0.6, "max_masks": 20,
       "chunk": 16}


def test_old_everything_keys_map_onto_segment_settings() -> None:
    s = everything_settings(OLD)
    assert (s.points_per_side, s.stability_score_thresh, s.box_nms_thresh, s.max_instances,
            s.points_per_batch, s.strategy) == (8, 0.9, 0.6, 20, 16, "grid")
    assert s.pred_iou_thresh == -1.0  # not given: the model's own, else SAM's
    assert everything_settings({"stability_score_thresh": 0.9}) == \
        everything_settings({"stability_thresh": 0.9})
    with pytest.raises(ValueError, match="min_area_frac is no longer supported"):
        everything_settings({"min_area_frac": 0.001})
    with pytest.raises(ValueError, match="unknown key 'bogus'"):
        DistillConfig(recipe="pseudo_labels", everything={"bogus": 1}).validate()


def test_pseudo_labels_of_a_photo_are_the_segmenters_masks(tmp_path) -> None:
    weights = find_shared_file("weights", DEMO_WEIGHTS)
    if weights is None:
        pytest.skip("the shipped demo weights are not installed")
    photo = np.ascontiguousarray(data.coffee())
    os.makedirs(tmp_path / "images")
    cv2.imwrite(str(tmp_path / "images" / "coffee.png"), photo[..., ::-1])
    images = UnlabeledImages({"folders": [str(tmp_path / "images")]})
    settings = everything_settings({"points_per_side": 8})
    loaded = load_teacher(weights)
    teacher = model_segmenter(loaded.model, settings, loaded.thresholds, loaded.iou_calibration)
    # the teacher's own thresholds, not SAM's
    assert {src for _, src in teacher.threshold_sources.values()} == {"model"}
    out = label_dir(str(tmp_path / "cache"), loaded.model_id, teacher, images.spec)
    stats = build_labels(teacher, images, out, 1, progress=False)
    assert (stats["images"], stats["shards_built"]) == (1, 1)
    with open(os.path.join(out, "shard_00000.json")) as f:
        (label,) = json.load(f).values()
    labels = decode_rles(label["rles"], tuple(label["hw"]))
    # the same file through the public path: create_backend + Segmenter, same settings
    want = Segmenter(create_backend("torch", weights, device="cpu"), settings)
    masks = want.segment_everything(photo).masks
    assert len(masks) > 0 and labels.shape == masks.shape
    assert np.array_equal(labels, masks)
    # from the teacher cache's embedding: the same masks without the encoder run
    emb = teacher.backend.encode(teacher.geometry.preprocess(photo)).embeddings
    assert np.array_equal(segment_masks(teacher, photo, emb).numpy(), masks)
    # another labelling, another cache
    other = model_segmenter(loaded.model, settings.with_(points_per_side=4), loaded.thresholds)
    assert label_dir(str(tmp_path / "cache"), loaded.model_id, other, images.spec) != out
