"""A model's segment-everything masks through segment's own Segmenter (teacher pseudo-labels,
student-teacher agreement): segment's strategies, filters, box NMS and threshold rule (an
explicit value, then the checkpoint's, then SAM's), on a torch backend of the model (no
export), optionally from a cached embedding.

The distill config's ``everything:`` mapping takes SegmentSettings field names, and the old
keys of the former ``training.evaluation.everything.EverythingConfig`` (``EVERYTHING_KEYS``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

import numpy as np
import torch

from ...engines.base import EncoderResult
from ...engines.torch_backend import TorchBackend
from ...segment.pipeline import SegmentSettings, Segmenter

if TYPE_CHECKING:
    from litesam_ros.model import SamModel

#: old ``everything:`` key -> SegmentSettings field. Its mask NMS (nms_iou) became segment's
#: box NMS, its max_masks the instance cap, its decode chunk the points per decoder call.
EVERYTHING_KEYS = {"points_per_side": "points_per_side", "pred_iou_thresh": "pred_iou_thresh",
                   "stability_thresh": "stability_score_thresh",
                   "stability_offset": "stability_offset", "nms_iou": "box_nms_thresh",
                   "max_masks": "max_instances", "chunk": "points_per_batch"}
#: old keys with no meaning in segment's settings: refused, with why.
REFUSED_KEYS = {"min_area_frac": "segment keeps every non-empty mask (min_mask_region_area, in "
                                 "pixels, is SAM's small-region clean-up, not an area filter)"}
#: the grid (the teacher cache holds embeddings only, no AutoPPN proposals)
DEFAULT_STRATEGY = "grid"


def everything_settings(d: Optional[Mapping[str, Any]] = None) -> SegmentSettings:
    """SegmentSettings from an ``everything:`` mapping (old keys mapped, SegmentSettings field
    names as they are); thresholds not given stay MODEL_OWN (the model's own, else SAM's)."""
    fields = set(SegmentSettings.__dataclass_fields__)
    values: dict[str, Any] = {"strategy": DEFAULT_STRATEGY}
    for key, value in (d or {}).items():
        if key in REFUSED_KEYS:
            raise ValueError(f"everything: {key} is no longer supported: {REFUSED_KEYS[key]}")
        name = EVERYTHING_KEYS.get(key, key)
        if name not in fields:
            raise ValueError(f"everything: unknown key {key!r}; use SegmentSettings fields "
                             f"or {sorted(EVERYTHING_KEYS)}")
        values[name] = value
    return SegmentSettings(**values)


def model_segmenter(model: SamModel, settings: SegmentSettings,
                    thresholds: Optional[Mapping[str, float]] = None,
                    iou_calibration: Optional[Mapping[str, float]] = None) -> Segmenter:
    """A Segmenter on a torch backend of ``model`` on the device its parameters are on, with
    the model file's own thresholds and IoU calibration where given."""
    backend = TorchBackend(model, next(model.parameters()).device)
    backend.model_thresholds = dict(thresholds or {})
    backend.iou_calibration = dict(iou_calibration or {})
    return Segmenter(backend, settings)


def segment_masks(segmenter: Segmenter, image: np.ndarray,
                  embedding: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Bool masks [N,H,W] (best first) of a uint8 RGB image; ``embedding`` [1,C,E,E] (e.g.
    from the teacher cache) saves the encoder run."""
    if embedding is None:
        res = segmenter.segment_everything(image)
    else:
        res = segmenter.segment_encoded(EncoderResult(embedding), image.shape[:2])
    return torch.from_numpy(res.masks)


__all__ = ["EVERYTHING_KEYS", "REFUSED_KEYS", "everything_settings", "model_segmenter",
           "segment_masks"]
