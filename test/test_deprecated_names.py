"""Old public names still work for one release, each with a DeprecationWarning naming the new."""
from __future__ import annotations

import importlib
import sys

import pytest
import torch

from litesam_ros.engines.base import Backend
from litesam_ros.masks import mask_boxes
from litesam_ros.model import ModelConfig, SamModel


def test_old_model_names() -> None:
    import litesam_ros.model as model
    import litesam_ros.model.config as config

    with pytest.deprecated_call(match="use SamModel"):
        assert model.LiteSam is SamModel
    with pytest.deprecated_call(match="use ModelConfig"):
        assert model.LiteSamConfig is ModelConfig
    with pytest.deprecated_call(match="use ModelConfig"):
        assert config.LiteSamConfig is ModelConfig
    sys.modules.pop("litesam_ros.model.lite_sam", None)
    with pytest.deprecated_call(match="SamModel"):
        assert importlib.import_module("litesam_ros.model.lite_sam").LiteSam is SamModel
    with pytest.raises(AttributeError):
        model.NoSuchName  # noqa: B018


class _Bare(Backend):
    name, config = "bare", None

    def encode(self, image: torch.Tensor):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def decode(self, embeddings, point_coords, point_labels):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def test_backend_recommended_is_model_thresholds() -> None:
    backend = _Bare()
    with pytest.deprecated_call(match="model_thresholds"):
        backend.recommended = {"pred_iou_thresh": 0.3}
    assert backend.model_thresholds == {"pred_iou_thresh": 0.3}
    with pytest.deprecated_call(match="model_thresholds"):
        assert backend.recommended == {"pred_iou_thresh": 0.3}
    assert _Bare().model_thresholds == {}


def test_masks_to_boxes_is_mask_boxes_with_inclusive_max() -> None:
    from litesam_ros.segment.postprocess import masks_to_boxes

    m = torch.zeros(2, 5, 6, dtype=torch.bool)
    m[0, 1:3, 2:5] = True
    with pytest.deprecated_call(match="mask_boxes"):
        old = masks_to_boxes(m)
    assert old.tolist() == [[2, 1, 4, 2], [0, 0, 0, 0]]
    assert (mask_boxes(m)[0] - old[0]).tolist() == [0, 0, 1, 1]
