"""Thresholds travel with the weights: the shipped demo weights record their own, the node's
parameters default to "the model's own" (-1), an explicit value always wins, and the demo
passes only the user's flags."""
import pytest

from litesam_ros.apps.demo import demo_thresholds, parse_args
from litesam_ros.model import load_model
from litesam_ros.model.resources import DEMO_WEIGHTS, find_shared_file
from litesam_ros.ros.parameters import MODEL_VALUE, PARAMS, resolve_thresholds

DEFAULTS = {name: spec.default for name, spec in PARAMS.items()}


def test_the_demo_weights_record_thresholds_below_sams() -> None:
    weights = find_shared_file("weights", DEMO_WEIGHTS)
    assert weights is not None
    own = load_model(weights).thresholds
    assert own["pred_iou_thresh"] < 0.88 and own["stability_score_thresh"] < 0.95
    resolved = resolve_thresholds(DEFAULTS, own)
    assert resolved == {"pred_iou_thresh": (own["pred_iou_thresh"], "model"),
                        "stability_score_thresh": (own["stability_score_thresh"], "model"),
                        "ppn_score_thresh": (own["ppn_score_thresh"], "model")}


def test_an_explicit_parameter_wins_and_sams_defaults_fill_the_rest() -> None:
    own = {"pred_iou_thresh": 0.3, "stability_score_thresh": 0.7}
    values = dict(DEFAULTS, pred_iou_thresh=0.88)  # explicitly SAM's value: still the user's
    assert resolve_thresholds(values, own)["pred_iou_thresh"] == (0.88, "parameter")
    assert resolve_thresholds(DEFAULTS, {}) == {"pred_iou_thresh": (0.88, "default"),
                                                "stability_score_thresh": (0.95, "default"),
                                                "ppn_score_thresh": (0.0, "default")}
    assert DEFAULTS["pred_iou_thresh"] == MODEL_VALUE
    with pytest.raises(ValueError, match="-1 for the model's own"):
        resolve_thresholds(dict(DEFAULTS, stability_score_thresh=-0.5), own)


def test_the_demo_passes_only_the_users_flags() -> None:
    assert demo_thresholds(parse_args([])) == {}
    assert demo_thresholds(parse_args(["--pred-iou-thresh", "0"])) == {"pred_iou_thresh": 0.0}
    assert demo_thresholds(parse_args(["--stability-thresh", "0.5"])) == {
        "stability_score_thresh": 0.5}
    assert demo_thresholds(parse_args(["--ppn-score-thresh", "0.2"])) == {
        "ppn_score_thresh": 0.2}
