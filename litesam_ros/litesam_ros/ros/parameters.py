"""The node's parameters: names, defaults, descriptors (ranges, choices) and validation.

Defaults, ranges' owners and choices come from the layers that use them (SegmentSettings,
TrackerSettings, DepthSettings, the runtime's MODES, the engines' BACKEND_KINDS / PRECISIONS,
the strategies): nothing here restates them. config/litesam.yaml equals these defaults (a test
keeps them in step). "Structural" parameters
(topic, backend, model, ...) take effect at the next configure transition; thresholds and other
"runtime" parameters change the running pipeline at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)

from litesam_ros.engines.choices import (BACKEND_KINDS, DEFAULT_BACKEND, DEFAULT_ENCODER_BATCH,
                                         DEFAULT_PRECISION, ENCODER_BATCH_RANGE, PRECISIONS)
from litesam_ros.model.loading import THRESHOLD_NAMES
from litesam_ros.runtime import MODES, DepthSettings
from litesam_ros.segment import STRATEGY_CHOICES, SegmentSettings
from litesam_ros.segment.thresholds import EXPLICIT, MODEL_OWN, SAM_THRESHOLDS, threshold_sources
from litesam_ros.camera.depth3d import INTRINSICS_CHOICES
from litesam_ros.camera.tracking import TrackerSettings

#: A threshold parameter at this value takes the model's own (its checkpoint's), else SAM's.
MODEL_VALUE = MODEL_OWN
#: The thresholds a checkpoint may record for itself (model.loading.THRESHOLD_NAMES).
THRESHOLDS = THRESHOLD_NAMES

# The defaults the parameters take from the layers that own them.
_SEGMENT = SegmentSettings()
_TRACKER = TrackerSettings()
_DEPTH = DepthSettings()


@dataclass(frozen=True)
class ParamSpec:
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    float_range: tuple[float, float] | None = None
    int_range: tuple[int, int] | None = None
    runtime: bool = False  # may change while the node is configured

    def descriptor(self, name: str) -> ParameterDescriptor:
        text = self.description
        if self.choices:
            text += f" One of: {', '.join(self.choices)}."
        if not self.runtime:
            text += " Takes effect at the next configure."
        desc = ParameterDescriptor(name=name, description=text, type=_ros_type(self.default))
        if isinstance(self.default, list):
            # rclpy types an empty list default as a byte array and would then refuse the
            # string list a YAML file or `-p name:=[a, b]` gives: the node checks the type.
            desc.dynamic_typing = True
        if self.float_range is not None:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(self.float_range[0]), to_value=float(self.float_range[1]), step=0.0)]
        if self.int_range is not None:
            desc.integer_range = [IntegerRange(
                from_value=int(self.int_range[0]), to_value=int(self.int_range[1]), step=1)]
        return desc


def _ros_type(value: Any) -> int:
    if isinstance(value, list):
        return ParameterType.PARAMETER_STRING_ARRAY
    if isinstance(value, bool):
        return ParameterType.PARAMETER_BOOL
    if isinstance(value, int):
        return ParameterType.PARAMETER_INTEGER
    if isinstance(value, float):
        return ParameterType.PARAMETER_DOUBLE
    return ParameterType.PARAMETER_STRING


PARAMS: dict[str, ParamSpec] = {
    "autostart": ParamSpec(True, "Configure and activate the lifecycle node at start-up."),
    "image_topic": ParamSpec("image", "Camera topic (sensor_msgs/Image); with transport "
                             "'compressed' the node subscribes to <image_topic>/compressed."),
    "transport": ParamSpec("raw", "Image transport.", choices=("raw", "compressed")),
    "qos": ParamSpec("sensor_data", "Camera subscription QoS: sensor_data = best effort (works "
                     "with reliable and best-effort cameras); reliable = only reliable cameras.",
                     choices=("sensor_data", "reliable")),
    "backend": ParamSpec(DEFAULT_BACKEND, "Inference backend; auto = TensorRT, else ONNX Runtime "
                         "CUDA, else ONNX Runtime CPU.", choices=BACKEND_KINDS),
    "model": ParamSpec("", "Registry model name or model file (this project's checkpoint or "
                       "an official SAM / MobileSAM / TinySAM / EfficientSAM file); empty = the "
                       "shipped demo weights."),
    "engine_cache_dir": ParamSpec("", "Folder for exported ONNX graphs and TensorRT engines; "
                                  "empty = $ROS_HOME/litesam_cache (or ~/.ros/litesam_cache)."),
    "precision": ParamSpec(DEFAULT_PRECISION, "Inference precision; auto = fp16 on TensorRT (and "
                           "torch on CUDA), fp32 on ONNX Runtime; int8 = explicit Q/DQ "
                           "quantization on TensorRT (refused with ONNX Runtime on CPU, where "
                           "it measured slower and less accurate).", choices=PRECISIONS),
    "mode": ParamSpec(MODES[0], "everything = segment every frame and publish; prompt_only "
                      "= keep the newest frame for the ~/segment service only.",
                      choices=MODES, runtime=True),
    "strategy": ParamSpec(_SEGMENT.strategy, "Segment-everything strategy: autoppn (Lite-SAM), "
                          f"grid (SAM's {_SEGMENT.points_per_side}x{_SEGMENT.points_per_side} "
                          "points), hierarchical (TinySAM's two passes); auto = "
                          "autoppn where the model has an AutoPPN head, else grid.",
                          choices=STRATEGY_CHOICES, runtime=True),
    "max_instances": ParamSpec(_SEGMENT.max_instances, "Most instances published per frame.",
                               int_range=(1, 1000), runtime=True),
    "pred_iou_thresh": ParamSpec(MODEL_VALUE, "Keep masks whose predicted IoU is at least "
                                 "this; -1 = the model's own value (recorded in its "
                                 f"checkpoint), else SAM's {SAM_THRESHOLDS['pred_iou_thresh']:g}.",
                                 float_range=(-1.0, 1.0), runtime=True),
    "stability_score_thresh": ParamSpec(MODEL_VALUE, "Keep masks whose stability score is at "
                                        "least this; -1 = the model's own value (recorded in "
                                        "its checkpoint), else SAM's "
                                        f"{SAM_THRESHOLDS['stability_score_thresh']:g}.",
                                        float_range=(-1.0, 1.0), runtime=True),
    "ppn_score_thresh": ParamSpec(MODEL_VALUE, "autoppn strategy: decode only proposals whose "
                                  "score is at least this; -1 = the model's own value "
                                  "(recorded in its checkpoint), else "
                                  f"{SAM_THRESHOLDS['ppn_score_thresh']:g} (all).",
                                  float_range=(-1.0, 1.0), runtime=True),
    "box_nms_thresh": ParamSpec(_SEGMENT.box_nms_thresh, "Box IoU above which the lower-scored "
                                "mask is dropped.", float_range=(0.0, 1.0), runtime=True),
    "min_mask_area": ParamSpec(_SEGMENT.min_mask_region_area, "Remove holes and islands smaller "
                               "than this many pixels (0 = off; costs time).",
                               int_range=(0, 1_000_000), runtime=True),
    "points_per_side": ParamSpec(_SEGMENT.points_per_side, "Grid strategies: points per image "
                                 "side.", int_range=(1, 128), runtime=True),
    "points_per_batch": ParamSpec(_SEGMENT.points_per_batch, "Prompts decoded per decoder call.",
                                  int_range=(1, 1024), runtime=True),
    "max_prompts": ParamSpec(_SEGMENT.max_prompts, "Most prompts one ~/segment request may "
                             "carry.", int_range=(1, 1024), runtime=True),
    "publish_label_image": ParamSpec(True, "Publish ~/label_image (mono16 instance ids).",
                                     runtime=True),
    "publish_overlay": ParamSpec(False, "Publish ~/overlay (rgb8, coloured masks and ids).",
                                 runtime=True),
    "max_rate": ParamSpec(0.0, "Most frames processed per second (0 = as fast as possible).",
                          float_range=(0.0, 1000.0), runtime=True),
    # -- several cameras
    "image_topics": ParamSpec([], "Several cameras: their image topics (string list). Empty = "
                              "one camera on image_topic, outputs ~/instances ...; with two or "
                              "more, each camera's outputs are ~/<camera>/instances ..."),
    "camera_names": ParamSpec([], "Names of the image_topics' cameras (same length), used in "
                              "their output topics; empty = each topic's first namespace "
                              "segment (/front/color/image_raw -> front), or the whole topic "
                              "with / as _ when those are not unique."),
    "encoder_batch": ParamSpec(DEFAULT_ENCODER_BATCH, "Several cameras: most frames (one per "
                               "camera) encoded in one encoder run when several cameras have a "
                               "frame waiting. 1 = one frame at a time (static batch-1 graphs); "
                               "N > 1 = an encoder with a dynamic batch (its own cached ONNX "
                               "graph; TensorRT profile min 1 / opt N / max N). Pays off on "
                               "GPUs; on a CPU it gains little.",
                               int_range=ENCODER_BATCH_RANGE),
    # -- depth and 3D
    "depth_topic": ParamSpec("", "Aligned depth image (sensor_msgs/Image 16UC1 mm or 32FC1 m, "
                             "the colour image's size and pixel grid) of the image_topic camera; "
                             "empty = no 3D."),
    "camera_info_topic": ParamSpec("", "CameraInfo of the colour camera (its K, D, P back-"
                                   "project the depth)."),
    "depth_topics": ParamSpec([], "Several cameras: depth topics parallel to image_topics "
                              "('' = none for that camera); empty = no 3D."),
    "camera_info_topics": ParamSpec([], "Several cameras: CameraInfo topics parallel to "
                                    "image_topics."),
    "depth_tolerance": ParamSpec(_DEPTH.tolerance_s, "Most difference in seconds between a "
                                 "colour and a depth stamp that pairs them.",
                                 float_range=(0.0, 10.0)),
    "intrinsics": ParamSpec(_DEPTH.intrinsics, "Which CameraInfo calibration describes the colour "
                            "image: "
                            "raw = K and D (image_raw), rectified = P (image_rect).",
                            choices=INTRINSICS_CHOICES),
    "publish_points": ParamSpec(False, "Publish ~/points (PointCloud2 x, y, z, instance) with "
                                "every instance's points (depth on).", runtime=True),
    "publish_markers": ParamSpec(False, "Publish ~/markers (rviz MarkerArray: 3D boxes and "
                                 "id labels; depth on).", runtime=True),
    # -- tracking
    "tracking": ParamSpec(True, "Give instances persistent track ids across frames "
                          "(InstanceMask.track_id; 0 when off).", runtime=True),
    "track_max_age": ParamSpec(_TRACKER.max_age, "Frames a track survives without a match.",
                               int_range=(0, 10000), runtime=True),
    "track_iou_gate": ParamSpec(_TRACKER.iou_gate, "Least mask IoU (or motion-predicted box IoU) "
                                "that continues a track.", float_range=(0.01, 1.0), runtime=True),
}

#: Parameters whose value is a list of strings.
LIST_PARAMS = tuple(name for name, spec in PARAMS.items() if isinstance(spec.default, list))


def parameter_values(get: Callable[[str], Any]) -> dict[str, Any]:
    """Every parameter's value through ``get(name)``; an empty YAML list arrives unset and
    reads as []."""
    values = {name: get(name) for name in PARAMS}
    for name in LIST_PARAMS:
        if values[name] is None:
            values[name] = []
    return values


def check_choice(name: str, value: Any) -> str | None:
    """Why `value` is not allowed for `name`, or None."""
    spec = PARAMS.get(name)
    if spec is None:
        return None
    if isinstance(spec.default, list):
        if value is None:  # an empty list in a YAML file arrives unset
            return None
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return f"{name} must be a list of strings, got {value!r}"
        return None
    if spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}, got {value!r}"
    return None


def resolve_thresholds(values: dict[str, Any], model_thresholds: dict[str, float] | None = None
                       ) -> dict[str, tuple[float, str]]:
    """Each threshold's value and where it came from: "parameter" (the user set it), "model"
    (MODEL_VALUE, and the weights' checkpoint records one) or "default" (SAM's). The rule is
    the segment layer's (segment.thresholds), the one the Segmenter applies: an explicit
    parameter always wins."""
    sources = threshold_sources({name: float(values[name]) for name in THRESHOLDS},
                                model_thresholds)
    return {name: (value, "parameter" if source == EXPLICIT else source)
            for name, (value, source) in sources.items()}


def segment_settings(values: dict[str, Any],
                     model_thresholds: dict[str, float] | None = None) -> SegmentSettings:
    """SegmentSettings from the node's parameter values, thresholds resolved with the model's
    own ``model_thresholds`` (the rule of segment.thresholds, as the Segmenter applies it)."""
    return SegmentSettings(
        strategy=str(values["strategy"]),
        points_per_side=int(values["points_per_side"]),
        points_per_batch=int(values["points_per_batch"]),
        pred_iou_thresh=float(values["pred_iou_thresh"]),
        stability_score_thresh=float(values["stability_score_thresh"]),
        ppn_score_thresh=float(values["ppn_score_thresh"]),
        box_nms_thresh=float(values["box_nms_thresh"]),
        min_mask_region_area=int(values["min_mask_area"]),
        max_instances=int(values["max_instances"]),
        max_prompts=int(values["max_prompts"]),
    ).resolved(model_thresholds)


def tracker_settings(values: dict[str, Any]) -> TrackerSettings | None:
    """The runtime's tracker settings from the node's parameter values (None: tracking off)."""
    if not values["tracking"]:
        return None
    return TrackerSettings(max_age=int(values["track_max_age"]),
                           iou_gate=float(values["track_iou_gate"]))
