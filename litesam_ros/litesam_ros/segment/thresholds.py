"""The one rule for the filter thresholds, applied by the Segmenter for every caller (Python,
the node, the bench, the eval): an explicit value wins, then the model's own (the thresholds
its checkpoint records, ``Backend.model_thresholds``), then SAM's. ``MODEL_OWN`` (-1, the node's
parameter default too) asks for the model's own. The checkpoint's IoU calibration is applied
in the same layer (``pipeline.calibrated``), so its thresholds meet the IoUs they were fitted
to."""
from __future__ import annotations

from typing import Mapping, Optional

from ..model.loading import THRESHOLD_NAMES

#: A threshold at this value takes the model's own, else SAM's.
MODEL_OWN = -1.0

#: SAM's thresholds (SamAutomaticMaskGenerator's; ppn_score_thresh 0: every proposal).
SAM_THRESHOLDS: dict[str, float] = {"pred_iou_thresh": 0.88, "stability_score_thresh": 0.95,
                                    "ppn_score_thresh": 0.0}

#: where a resolved threshold came from
EXPLICIT, MODEL, DEFAULT = "explicit", "model", "default"


def check_threshold(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is in [0, 1] or MODEL_OWN."""
    if value != MODEL_OWN and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], or -1 for the model's own value; "
                         f"got {value}")


def threshold_sources(requested: Mapping[str, float],
                      model: Optional[Mapping[str, float]] = None
                      ) -> dict[str, tuple[float, str]]:
    """Each threshold's value and where it came from: EXPLICIT (``requested`` holds a value in
    [0, 1]), MODEL (``requested`` holds MODEL_OWN or nothing, and ``model`` has one) or
    DEFAULT (SAM's)."""
    out: dict[str, tuple[float, str]] = {}
    for name in THRESHOLD_NAMES:
        value = float(requested.get(name, MODEL_OWN))
        check_threshold(name, value)
        if value != MODEL_OWN:
            out[name] = (value, EXPLICIT)
        elif model and name in model:
            out[name] = (float(model[name]), MODEL)
        else:
            out[name] = (SAM_THRESHOLDS[name], DEFAULT)
    return out


__all__ = ["MODEL_OWN", "SAM_THRESHOLDS", "EXPLICIT", "MODEL", "DEFAULT", "check_threshold",
           "threshold_sources"]
