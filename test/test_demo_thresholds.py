"""The demo's thresholds: the user's flags, else the shipped demo weights' own, else the YAML's."""
from litesam_ros.demo.main import demo_thresholds, parse_args
from litesam_ros.resources import DEMO_WEIGHTS, DEMO_WEIGHTS_THRESHOLDS


def test_demo_weights_bring_their_thresholds_and_flags_win() -> None:
    demo = f"/opt/share/litesam_ros/weights/{DEMO_WEIGHTS}"
    assert demo_thresholds(parse_args([]), demo) == DEMO_WEIGHTS_THRESHOLDS
    assert DEMO_WEIGHTS_THRESHOLDS["pred_iou_thresh"] < 0.88  # SAM's default keeps nothing
    got = demo_thresholds(parse_args(["--pred-iou-thresh", "0"]), demo)
    assert got == {"pred_iou_thresh": 0.0,
                   "stability_score_thresh": DEMO_WEIGHTS_THRESHOLDS["stability_score_thresh"]}
    # users' weights and users' YAML keep the node's / the YAML's thresholds
    assert demo_thresholds(parse_args([]), "/data/my_model.pt") == {}
    assert demo_thresholds(parse_args(["--params-file", "my.yaml"]), demo) == {}
    assert demo_thresholds(parse_args(["--stability-thresh", "0.5"]), "lite_sam_r320") == {
        "stability_score_thresh": 0.5}
