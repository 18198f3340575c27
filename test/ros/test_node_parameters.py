"""The node's parameter table: YAML defaults equal the code, descriptors carry ranges/choices."""

from __future__ import annotations

import yaml

from ros_harness import REPO


def test_yaml_defaults_equal_the_declared_defaults() -> None:
    from litesam_ros.ros.parameters import PARAMS

    yaml_params = yaml.safe_load((REPO / "config" / "litesam.yaml").read_text())
    values = yaml_params["/**/litesam"]["ros__parameters"]
    assert set(values) == set(PARAMS)
    for name, spec in PARAMS.items():
        assert values[name] == spec.default, name
        assert type(values[name]) is type(spec.default), name  # 0.0 vs 0 matters to ROS


def test_descriptors_and_settings() -> None:
    from litesam_ros.ros.parameters import PARAMS, check_choice, segment_settings

    desc = PARAMS["pred_iou_thresh"].descriptor("pred_iou_thresh")
    assert desc.floating_point_range[0].from_value == -1.0  # -1 = the model's own value
    assert desc.floating_point_range[0].to_value == 1.0
    assert "One of: auto, autoppn, grid, hierarchical" in PARAMS["strategy"].descriptor("strategy").description
    assert check_choice("strategy", "grid") is None
    assert "must be one of" in str(check_choice("backend", "cuda"))
    settings = segment_settings({name: spec.default for name, spec in PARAMS.items()})
    assert settings.strategy == "auto" and settings.pred_iou_thresh == 0.88
    assert settings.max_prompts == 64 and settings.min_mask_region_area == 0
