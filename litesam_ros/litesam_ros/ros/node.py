"""litesam_node: camera frames in, instance masks out, and a prompt service for planners.

A managed (lifecycle) node:
  configure  loads the model / engine, creates publishers and the ~/segment service and starts
             the runtime (its inference thread);
  activate   subscribes to the camera; deactivate unsubscribes; cleanup stops the runtime and
             frees the model.
With depth (depth_topic + camera_info_topic) each frame is paired by stamp with its aligned
depth image and gets per-instance 3D (~/instances_3d, optional ~/points and ~/markers); with
tracking on, instances carry persistent track ids; with several image_topics, each camera has
its own outputs under ~/<camera>/ (see litesam_ros.ros.cameras). Pairing, 3D and tracking run in
the runtime, per camera.
The node keeps ROS: lifecycle, parameters, subscriptions, publishers, message conversions and
diagnostics. Everything between a frame and its result is the ROS-free runtime
(litesam_ros.runtime.SegmentRuntime): the subscription callback only submits the message
(newest wins, stale frames are dropped and counted); the runtime converts and segments it on
its inference thread and calls back here to publish. The ~/segment service runs in its own
callback group and asks the runtime, which shares the model under its lock and reuses the
newest frame's encoding.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from litesam_msgs.msg import Instance3DArray, InstanceMaskArray
from litesam_msgs.srv import SegmentPrompt
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

try:  # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks  # type: ignore[no-redef]

from litesam_ros.model import CheckpointError, source_kind
from litesam_ros.segment.overlay import draw_overlay
from litesam_ros.runtime.resources import default_model, weights_status
from litesam_ros.ros.cameras import CameraSpec, cameras_from_values
from litesam_ros.ros.depth_conversion import depth_image_to_numpy
from litesam_ros.ros.diagnostics import diagnostics_message
from litesam_ros.ros.image_conversion import (
    ImageConversionError,
    compressed_to_rgb8,
    image_to_rgb8,
    numpy_to_image,
)
from litesam_ros.ros.messages import (instances_3d_msgs, instances_3d_to_msg, prompts_from_msgs,
                                      result_to_msg)
from litesam_ros.ros.parameters import (PARAMS, check_choice, resolve_thresholds,
                                        segment_settings, tracker_settings)
from litesam_ros.ros.visuals import markers, points_cloud
from litesam_ros.runtime import (DepthSettings, Frame, NoFrameError, RuntimeStats,
                                  RuntimeStopped, SegmentRuntime)
from litesam_ros.segment import SegmentationResult, SegmentError, Segmenter, resolve_strategy

NODE_NAME = "litesam"


def _to_rgb8(msg: Any) -> np.ndarray:
    """A camera message's pixels as RGB (the runtime's decoder, run on its inference thread);
    raises ImageConversionError for a message that is not a supported image."""
    return compressed_to_rgb8(msg) if isinstance(msg, CompressedImage) else image_to_rgb8(msg)


def _camera_qos(kind: str) -> QoSProfile:
    """Depth 1: the node keeps only the newest frame anyway."""
    reliability = (ReliabilityPolicy.RELIABLE if kind == "reliable"
                   else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


# Outputs are reliable: both reliable and best-effort subscribers can match them.
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.RELIABLE)
IMAGE_OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2,
                              reliability=ReliabilityPolicy.RELIABLE)


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class _Outputs:
    """One camera's publishers (3D ones only for a camera with depth)."""

    def __init__(self, node: "LiteSamNode", camera: CameraSpec) -> None:
        pre = camera.prefix
        self.camera = camera
        self.instances = node.create_lifecycle_publisher(InstanceMaskArray, pre + "instances",
                                                         OUTPUT_QOS)
        self.label = node.create_lifecycle_publisher(Image, pre + "label_image", IMAGE_OUTPUT_QOS)
        self.overlay = node.create_lifecycle_publisher(Image, pre + "overlay", IMAGE_OUTPUT_QOS)
        self.instances_3d = self.points = self.markers = None
        if camera.has_depth:
            self.instances_3d = node.create_lifecycle_publisher(
                Instance3DArray, pre + "instances_3d", OUTPUT_QOS)
            self.points = node.create_lifecycle_publisher(PointCloud2, pre + "points",
                                                          IMAGE_OUTPUT_QOS)
            self.markers = node.create_lifecycle_publisher(MarkerArray, pre + "markers",
                                                           OUTPUT_QOS)

    def destroy(self, node: "LiteSamNode") -> None:
        for pub in (self.instances, self.label, self.overlay, self.instances_3d, self.points,
                    self.markers):
            if pub is not None:
                node.destroy_lifecycle_publisher(pub)


class LiteSamNode(LifecycleNode):
    """The Lite-SAM segmentation node (see module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        for name, spec in PARAMS.items():
            self.declare_parameter(name, spec.default, spec.descriptor(name))
        self.add_on_set_parameters_callback(self._on_set_parameters)

        values = self._values()
        self.runtime = SegmentRuntime(
            on_result=self._publish, decode=_to_rgb8, invalid=(ImageConversionError,),
            logger=self.get_logger(), mode=values["mode"], max_rate=float(values["max_rate"]),
            decode_depth=depth_image_to_numpy, tracking=tracker_settings(values))
        self._model_name = ""
        self._backend_name = ""
        self._active = False

        self._cameras: list[CameraSpec] = []
        self._outputs: dict[str, _Outputs] = {}  # by the runtime's source name
        self._subscriptions: list[Any] = []
        self._service: Any = None
        self._reset_service: Any = None
        self._service_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(1.0, self._publish_diagnostics)

    @property
    def stats(self) -> RuntimeStats:
        """Frame counters and latency (the runtime's; they survive cleanup and configure)."""
        return self.runtime.stats

    # -- parameters ---------------------------------------------------------------------------
    def _values(self) -> dict[str, Any]:
        values = {name: self.get_parameter(name).value for name in PARAMS}
        for name, spec in PARAMS.items():  # an empty YAML list arrives unset
            if isinstance(spec.default, list) and values[name] is None:
                values[name] = []
        return values

    @property
    def cameras(self) -> list[CameraSpec]:
        """The cameras served (set at configure)."""
        return list(self._cameras)

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        segmenter = self.runtime.segmenter
        configured = segmenter is not None
        values = self._values()
        for param in params:
            reason = check_choice(param.name, param.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            spec = PARAMS.get(param.name)
            if spec is not None and not spec.runtime and configured:
                return SetParametersResult(
                    successful=False,
                    reason=f"{param.name} can only change while the node is unconfigured "
                           f"(deactivate and clean up first)")
            values[param.name] = param.value
        try:
            recommended = segmenter.backend.recommended if segmenter is not None else None
            settings = segment_settings(values, recommended)
            if segmenter is not None:
                resolve_strategy(segmenter.backend.config, settings.strategy)
            tracking = tracker_settings(values)
            self.runtime.max_rate = float(values["max_rate"])
            self.runtime.mode = values["mode"]  # a valid choice: checked above
            self.runtime.tracking = tracking
        except (ValueError, TypeError, SegmentError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if segmenter is not None:
            try:
                self.runtime.update_settings(settings)
            except RuntimeStopped:  # cleaned up meanwhile: the next configure reads them
                pass
        return SetParametersResult(successful=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = self._values()
        model = values["model"] or default_model()
        try:
            cameras = cameras_from_values(values)
        except ValueError as exc:
            self.get_logger().error(f"cannot configure cameras: {exc}")
            return TransitionCallbackReturn.FAILURE
        for camera in cameras:
            if camera.has_depth and not camera.camera_info_topic:
                self.get_logger().warning(
                    f"depth topic {camera.depth_topic} without a camera_info topic: no 3D "
                    "can be made (set camera_info_topic)")
        try:
            from litesam_ros.engines import create_backend

            backend = create_backend(kind=values["backend"], model=model,
                                     precision=values["precision"],
                                     cache_dir=self._cache_dir(values["engine_cache_dir"]))
        except CheckpointError as exc:  # its message names the file and the cause
            self.get_logger().error(f"cannot load model: {exc}")
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # noqa: BLE001 - any load failure is reported once, clearly
            self.get_logger().error(f"cannot load model {model!r}: {exc}")
            return TransitionCallbackReturn.FAILURE
        try:
            segmenter = Segmenter(backend, segment_settings(values, backend.recommended))
            sources = resolve_thresholds(values, backend.recommended)
        except (SegmentError, ValueError) as exc:
            self.get_logger().error(f"cannot configure model {model!r}: {exc}")
            return TransitionCallbackReturn.FAILURE
        said = {"parameter": "set by parameter", "model": "recorded in the model's checkpoint",
                "default": "SAM's default"}
        self.get_logger().info("thresholds: " + ", ".join(
            f"{name} {value:g} ({said[source]})" for name, (value, source) in sources.items()))
        self._model_name = model
        self._backend_name = backend.name
        if source_kind(model) == "registry":
            self.get_logger().warning(
                f"no trained weights found: running {model} with RANDOM weights; masks are "
                "meaningless. Set the 'model' parameter to a checkpoint.")
        self.get_logger().info(f"model {model} on backend {backend.name}")
        status = weights_status(model)
        if status:
            self.get_logger().warning(f"model card of {model}: {status}")
        self._cameras = cameras
        self._outputs = {camera.source: _Outputs(self, camera) for camera in cameras}
        self._service = self.create_service(SegmentPrompt, "~/segment", self._on_segment,
                                            callback_group=self._service_group)
        self._reset_service = self.create_service(Trigger, "~/reset_tracks",
                                                  self._on_reset_tracks,
                                                  callback_group=self._service_group)
        self.runtime.start(segmenter)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = self._values()
        compressed = values["transport"] == "compressed"
        msg_type = CompressedImage if compressed else Image
        qos = _camera_qos(values["qos"])
        depth_qos = _camera_qos("sensor_data")  # best effort matches any depth camera
        for camera in self._cameras:
            source = camera.source
            topic = camera.image_topic
            if compressed:
                topic = f"{topic.rstrip('/')}/compressed"
            if camera.has_depth:
                self.runtime.configure_depth(source, DepthSettings(
                    tolerance_s=float(values["depth_tolerance"]),
                    intrinsics=str(values["intrinsics"]), keep_points=True))
            events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
            sub = self.create_subscription(
                msg_type, topic, lambda msg, src=source: self._on_image(msg, src), qos,
                event_callbacks=events)
            self._subscriptions.append(sub)
            what = f"subscribed to {sub.topic_name}"
            if camera.has_depth:
                depth = self.create_subscription(
                    Image, camera.depth_topic,
                    lambda msg, src=source: self._on_depth(msg, src), depth_qos)
                self._subscriptions.append(depth)
                what += f" with depth {depth.topic_name}"
                if camera.camera_info_topic:
                    info = self.create_subscription(
                        CameraInfo, camera.camera_info_topic,
                        lambda msg, src=source: self._on_camera_info(msg, src), depth_qos)
                    self._subscriptions.append(info)
                    what += f" and {info.topic_name}"
            name = f" (camera {camera.name}, outputs {camera.prefix})" if camera.name else ""
            self.get_logger().info(f"{what}{name} ({values['transport']}, qos {values['qos']}), "
                                   f"mode {values['mode']}")
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._release()
        return super().on_shutdown(state)

    def destroy_node(self) -> None:
        """Stop the inference thread before the publishers it uses are destroyed."""
        self._unsubscribe()
        self._release()
        super().destroy_node()

    def _unsubscribe(self) -> None:
        """Stop taking camera frames and forget the ones waiting."""
        self._active = False
        for sub in self._subscriptions:
            self.destroy_subscription(sub)
        self._subscriptions = []
        self.runtime.clear()
        for source in self.runtime.depth_sources:
            self.runtime.configure_depth(source, None)

    def _release(self) -> None:
        """Stop the runtime (its inference thread) and free the model, publishers and service."""
        self.runtime.stop()  # first: its thread publishes through the publishers below
        for outputs in self._outputs.values():
            outputs.destroy(self)
        self._outputs = {}
        for service in (self._service, self._reset_service):
            if service is not None:
                self.destroy_service(service)
        self._service = self._reset_service = None
        self._backend_name = ""
        _free_accelerator_memory()

    def _cache_dir(self, value: str) -> str:
        if value:
            return value
        ros_home = os.environ.get("ROS_HOME") or str(Path.home() / ".ros")
        return str(Path(ros_home) / "litesam_cache")

    # -- input --------------------------------------------------------------------------------
    def _on_incompatible_qos(self, event: Any) -> None:
        self.get_logger().warning(
            "a camera publisher's QoS is incompatible with this subscription (policy "
            f"{event.last_policy_kind}): no frames will arrive. Use qos:=sensor_data (best "
            "effort), which matches both reliable and best-effort cameras.")

    def _on_image(self, msg: Any, source: str) -> None:
        self.runtime.submit(msg, source, _stamp_ns(msg.header))

    def _on_depth(self, msg: Any, source: str) -> None:
        self.runtime.submit_depth(msg, source, _stamp_ns(msg.header))

    def _on_camera_info(self, msg: Any, source: str) -> None:
        self.runtime.set_camera_info(source, msg.k, msg.d, msg.p)

    def _on_reset_tracks(self, request: Any, response: Any) -> Any:
        if self.runtime.tracking is None:
            response.success, response.message = False, "tracking is off (parameter tracking)"
            return response
        count = self.runtime.reset_tracks()
        response.success, response.message = True, f"forgot {count} tracks"
        return response

    # -- output (called by the runtime on its inference thread) -------------------------------
    def _publish(self, frame: Frame, result: SegmentationResult, latency: float) -> None:
        out = self._outputs.get(frame.source)
        if out is None:
            return
        header = frame.payload.header
        height, width = frame.rgb.shape[:2] if frame.rgb is not None else (0, 0)
        track_ids = frame.meta.get("track_ids")
        out.instances.publish(result_to_msg(
            result, header, strategy=result.strategy, model=self._model_name,
            backend=self._backend_name, inference_time=latency, height=height, width=width,
            track_ids=track_ids, rles=frame.meta.get("rles")))
        if self.get_parameter("publish_label_image").value:
            out.label.publish(numpy_to_image(result.label_image(), "mono16", header))
        if frame.rgb is not None and self.get_parameter("publish_overlay").value:
            # Colours (and labels) by track id when tracked: an object keeps its colour.
            ids = (list(track_ids) if track_ids is not None
                   else list(range(1, len(result) + 1)))
            overlay = draw_overlay(frame.rgb, result.masks, result.boxes, ids)
            out.overlay.publish(numpy_to_image(overlay, "rgb8", header))
        frame3d = frame.meta.get("frame3d")
        if out.instances_3d is None or frame3d is None or not frame3d.ok:
            return  # no depth for this frame: its 2D outputs are all there is
        found = instances_3d_msgs(frame3d.instances, result.iou_scores.tolist(), track_ids)
        out.instances_3d.publish(instances_3d_to_msg(header, frame3d.depth_stamp_ns, found))
        if self.get_parameter("publish_points").value and out.points is not None:
            out.points.publish(points_cloud(header, [i.points for i in frame3d.instances]))
        if self.get_parameter("publish_markers").value and out.markers is not None:
            out.markers.publish(markers(header, found))

    # -- service ------------------------------------------------------------------------------
    def _on_segment(self, request: Any, response: Any) -> Any:
        start = time.monotonic()
        try:
            return self._segment(request, response, start)
        except SegmentError as exc:
            return _fail(response, str(exc))
        except Exception as exc:  # noqa: BLE001 - the service answers, it never dies
            self.get_logger().error(f"~/segment failed: {traceback.format_exc(limit=5)}")
            return _fail(response, f"internal error: {type(exc).__name__}: {exc}")

    def _segment(self, request: Any, response: Any, start: float) -> Any:
        if not self._active:
            return _fail(response, "node is not active: activate it before calling ~/segment")
        prompts = prompts_from_msgs(request.prompts)
        use_latest = request.image.height == 0 or len(request.image.data) == 0
        rgb = None
        if not use_latest:
            try:
                rgb = image_to_rgb8(request.image)
            except ImageConversionError as exc:
                return _fail(response, f"request image: {exc}")
        try:
            answer = self.runtime.segment_prompts(prompts, rgb,
                                                  multimask=request.multimask_output)
        except NoFrameError:
            return _fail(response, "the request has no image and no camera frame was "
                                   "received yet")
        except RuntimeStopped:
            return _fail(response, "no model loaded: configure the node first")
        header = answer.frame.payload.header if answer.frame is not None else request.image.header
        height, width = answer.image_hw
        response.result = result_to_msg(
            answer.result, header, strategy="prompt", model=self._model_name,
            backend=self._backend_name, inference_time=time.monotonic() - start,
            height=height, width=width)
        frame3d = (self.runtime.project(answer.frame, answer.result)
                   if answer.frame is not None else None)
        response.instances_3d = (instances_3d_msgs(frame3d.instances,
                                                   answer.result.iou_scores.tolist())
                                 if frame3d is not None and frame3d.ok else [])
        response.success = True
        response.message = ""
        return response

    # -- diagnostics --------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        cameras = [(c.name or c.image_topic, self.stats.source(c.source), c.has_depth)
                   for c in self._cameras]
        self._diagnostics_pub.publish(diagnostics_message(
            self.get_fully_qualified_name(), self.stats, self.get_clock().now().to_msg(),
            active=self._active, backend=self._backend_name, model=self._model_name,
            cameras=cameras if (len(cameras) > 1 or any(c[2] for c in cameras)) else []))


def _fail(response: Any, message: str) -> Any:
    response.success = False
    response.message = message
    response.result = InstanceMaskArray()
    return response


def _free_accelerator_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def main(args: list[str] | None = None) -> int:
    """Entry point of `litesam_node` (`ros2 run litesam_ros litesam_node --ros-args ...`)."""
    rclpy.init(args=args)
    node = LiteSamNode()
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)

    try:
        if node.get_parameter("autostart").value:
            # With autostart a failed configure ends the process (its reason is logged once
            # by on_configure); without it, a lifecycle manager drives the transitions.
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                return 1
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("activate failed")
                return 1
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
