"""litesam_node: camera frames in, instance masks out, and a prompt service for planners.

A managed (lifecycle) node:
  configure  loads the model / engine and creates publishers and the ~/segment service;
  activate   subscribes to the camera; deactivate unsubscribes; cleanup frees the model.
Frames go from the subscription callback into a one-frame slot (newest wins, stale frames are
dropped and counted) and are segmented on an inference thread, never on the executor thread.
The ~/segment service runs in its own callback group and shares the model under a lock.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass, field
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
from sensor_msgs.msg import CompressedImage, Image

try:  # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks  # type: ignore[no-redef]

from litesam_ros.model import CheckpointError, source_kind
from litesam_ros.msg import InstanceMaskArray
from litesam_ros.overlay import draw_overlay
from litesam_ros.resources import default_model, weights_status
from litesam_ros.ros.diagnostics import NodeStats, diagnostics_message
from litesam_ros.ros.frame_slot import FrameSlot, wait_until
from litesam_ros.ros.image_conversion import (
    ImageConversionError,
    compressed_to_rgb8,
    image_to_rgb8,
    numpy_to_image,
)
from litesam_ros.ros.messages import prompts_from_msgs, result_to_msg
from litesam_ros.ros.parameters import PARAMS, check_choice, resolve_thresholds, segment_settings
from litesam_ros.segment import (InvalidImageError, SegmentError, Segmenter, check_image,
                                  resolve_strategy)
from litesam_ros.srv import SegmentPrompt

NODE_NAME = "litesam"


@dataclass
class Frame:
    """A camera frame as received, and once converted, its RGB pixels."""

    msg: Any
    received: float  # time.monotonic()
    serial: int
    rgb: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)


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


class LiteSamNode(LifecycleNode):
    """The Lite-SAM segmentation node (see module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        for name, spec in PARAMS.items():
            self.declare_parameter(name, spec.default, spec.descriptor(name))
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._model_lock = threading.Lock()   # the segmenter: inference thread vs service
        self._frame_lock = threading.Lock()   # the latest converted frame
        self._slot: FrameSlot[Frame] = FrameSlot()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._segmenter: Segmenter | None = None
        self._model_name = ""
        self._latest: Frame | None = None     # newest converted frame (for the service)
        self._encoded_serial = -1             # frame serial whose embedding the segmenter caches
        self._serial = 0
        self._active = False
        self.stats = NodeStats()

        self._subscription: Any = None
        self._instances_pub: Any = None
        self._label_pub: Any = None
        self._overlay_pub: Any = None
        self._service: Any = None
        self._service_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(1.0, self._publish_diagnostics)

    # -- parameters ---------------------------------------------------------------------------
    def _values(self) -> dict[str, Any]:
        return {name: self.get_parameter(name).value for name in PARAMS}

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        configured = self._segmenter is not None
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
            recommended = self._segmenter.backend.recommended if self._segmenter else None
            settings = segment_settings(values, recommended)
            if self._segmenter is not None:
                resolve_strategy(self._segmenter.backend.config, settings.strategy)
        except (ValueError, TypeError, SegmentError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if self._segmenter is not None:
            with self._model_lock:
                self._segmenter.settings = settings
        return SetParametersResult(successful=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = self._values()
        model = values["model"] or default_model()
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
        if source_kind(model) == "registry":
            self.get_logger().warning(
                f"no trained weights found: running {model} with RANDOM weights; masks are "
                "meaningless. Set the 'model' parameter to a checkpoint.")
        self.get_logger().info(f"model {model} on backend {backend.name}")
        status = weights_status(model)
        if status:
            self.get_logger().warning(f"model card of {model}: {status}")
        self._segmenter = segmenter
        self._instances_pub = self.create_lifecycle_publisher(
            InstanceMaskArray, "~/instances", OUTPUT_QOS)
        self._label_pub = self.create_lifecycle_publisher(Image, "~/label_image", IMAGE_OUTPUT_QOS)
        self._overlay_pub = self.create_lifecycle_publisher(Image, "~/overlay", IMAGE_OUTPUT_QOS)
        self._service = self.create_service(SegmentPrompt, "~/segment", self._on_segment,
                                            callback_group=self._service_group)
        self._stop.clear()
        self._slot.reopen()
        self._worker = threading.Thread(target=self._run_worker, name="litesam_inference",
                                        daemon=True)
        self._worker.start()
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = self._values()
        topic = values["image_topic"]
        compressed = values["transport"] == "compressed"
        msg_type = CompressedImage if compressed else Image
        if compressed:
            topic = f"{topic.rstrip('/')}/compressed"
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        self._subscription = self.create_subscription(
            msg_type, topic, self._on_image, _camera_qos(values["qos"]),
            event_callbacks=events)
        self._active = True
        self.get_logger().info(
            f"subscribed to {self._subscription.topic_name} ({values['transport']}, "
            f"qos {values['qos']}), mode {values['mode']}")
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
        """Stop taking camera frames and forget the one waiting."""
        self._active = False
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        self._slot.clear()

    def _release(self) -> None:
        """Stop the inference thread and free the model, publishers and service."""
        self._stop.set()
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            self._worker = None
        for pub in (self._instances_pub, self._label_pub, self._overlay_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        self._instances_pub = self._label_pub = self._overlay_pub = None
        if self._service is not None:
            self.destroy_service(self._service)
            self._service = None
        with self._model_lock:
            self._segmenter = None
        with self._frame_lock:
            self._latest = None
        self._encoded_serial = -1
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

    def _on_image(self, msg: Any) -> None:
        self.stats.received += 1
        self._serial += 1
        if self._slot.put(Frame(msg, time.monotonic(), self._serial)):
            self.stats.dropped += 1

    # -- inference thread ---------------------------------------------------------------------
    def _run_worker(self) -> None:
        next_start = 0.0
        while not self._stop.is_set():
            if not wait_until(next_start, self._stop):
                break
            frame = self._slot.take(timeout=0.2)
            if frame is None:
                continue
            rate = float(self.get_parameter("max_rate").value)
            next_start = time.monotonic() + (1.0 / rate if rate > 0 else 0.0)
            try:
                self._process(frame)
            except Exception:  # noqa: BLE001 - one bad frame must not end the thread
                self.stats.errors += 1
                self.get_logger().error(f"frame dropped: {traceback.format_exc(limit=3)}")

    def _process(self, frame: Frame) -> None:
        try:
            rgb = (compressed_to_rgb8(frame.msg) if isinstance(frame.msg, CompressedImage)
                   else image_to_rgb8(frame.msg))
            frame.rgb = check_image(rgb)  # e.g. 0x0: dropped here, never the newest frame
        except (ImageConversionError, InvalidImageError) as exc:
            self.stats.invalid += 1
            self.get_logger().warning(f"frame dropped: {exc}", throttle_duration_sec=5.0)
            return
        with self._frame_lock:
            self._latest = frame
        if self.get_parameter("mode").value != "everything":
            return
        with self._model_lock:
            segmenter = self._segmenter
            if segmenter is None:
                return
            result = segmenter.segment_everything(frame.rgb)
            self._encoded_serial = frame.serial
        latency = time.monotonic() - frame.received
        self._publish(frame, result, latency)
        self.stats.record(latency)

    def _publish(self, frame: Frame, result: Any, latency: float) -> None:
        height, width = frame.rgb.shape[:2] if frame.rgb is not None else (0, 0)
        backend = self._segmenter.backend.name if self._segmenter is not None else ""
        if self._instances_pub is not None:
            self._instances_pub.publish(result_to_msg(
                result, frame.msg.header, strategy=result.strategy, model=self._model_name,
                backend=backend, inference_time=latency, height=height, width=width))
        if self._label_pub is not None and self.get_parameter("publish_label_image").value:
            self._label_pub.publish(numpy_to_image(result.label_image(), "mono16",
                                                   frame.msg.header))
        if (self._overlay_pub is not None and frame.rgb is not None
                and self.get_parameter("publish_overlay").value):
            ids = list(range(1, len(result) + 1))
            overlay = draw_overlay(frame.rgb, result.masks, result.boxes, ids)
            self._overlay_pub.publish(numpy_to_image(overlay, "rgb8", frame.msg.header))

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
        if use_latest:
            with self._frame_lock:
                frame = self._latest
            if frame is None or frame.rgb is None:
                return _fail(response, "the request has no image and no camera frame was "
                                       "received yet")
            rgb, header = frame.rgb, frame.msg.header
        else:
            try:
                rgb = image_to_rgb8(request.image)
            except ImageConversionError as exc:
                return _fail(response, f"request image: {exc}")
            frame, header = None, request.image.header
        with self._model_lock:
            segmenter = self._segmenter
            if segmenter is None:
                return _fail(response, "no model loaded: configure the node first")
            reuse = frame is not None and frame.serial == self._encoded_serial
            result = segmenter.segment_prompts(None if reuse else rgb, prompts,
                                               multimask=request.multimask_output)
            self._encoded_serial = frame.serial if frame is not None else -1
            backend = segmenter.backend.name
        response.result = result_to_msg(
            result, header, strategy="prompt", model=self._model_name, backend=backend,
            inference_time=time.monotonic() - start, height=rgb.shape[0], width=rgb.shape[1])
        response.success = True
        response.message = ""
        return response

    # -- diagnostics --------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        backend = self._segmenter.backend.name if self._segmenter is not None else ""
        self._diagnostics_pub.publish(diagnostics_message(
            self.get_fully_qualified_name(), self.stats, self.get_clock().now().to_msg(),
            active=self._active, backend=backend, model=self._model_name))


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
