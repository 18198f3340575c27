"""Shared values of the node tests (a module, not conftest, so test files can import it)."""

from __future__ import annotations

from litesam_ros.model.resources import DEMO_WEIGHTS, find_shared_file

# Thresholds at 0 so the assertions do not depend on how well the weights are trained.
OPEN_THRESHOLDS = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "max_instances": 20}


def model_under_test() -> str:
    """The shipped demo weights when present (the real product), else the registry model."""
    weights = find_shared_file("weights", DEMO_WEIGHTS)
    return str(weights) if weights else "lite_sam_r320"
