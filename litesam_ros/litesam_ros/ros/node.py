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
The node keeps ROS: lifecycle, parameters, subscriptions (ros.inputs), publishers (ros.outputs),
services (ros.service), model loading (ros.model_setup) and diagnostics. Everything between a frame and its result is the ROS-free runtime
(litesam_ros.runtime.SegmentRuntime): the subscription callback only submits the message
(newest wins, stale frames are dropped and counted); the runtime converts and segments it on
its inference thread and calls back here to publish. The ~/segment service runs in its own
callback group and asks the runtime, which shares the model under its lock and reuses the
newest frame's encoding.
"""

from __future__ import annotations

from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from litesam_msgs.srv import SegmentPrompt
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_srvs.srv import Trigger

from litesam_ros.ros.camera_receiver import CameraReceiver
from litesam_ros.ros.cameras import CameraSpec, cameras_from_values
from litesam_ros.ros.depth_conversion import depth_image_to_numpy
from litesam_ros.ros.diagnostics import diagnostics_message
from litesam_ros.ros.image_conversion import ImageConversionError
from litesam_ros.ros.inputs import subscribe_camera, to_rgb8
from litesam_ros.ros.model_setup import configure_model, free_accelerator_memory
from litesam_ros.ros.outputs import CameraOutputs, OutputOptions
from litesam_ros.ros.parameters import (PARAMS, check_choice, parameter_values, segment_settings,
                                        tracker_settings)
from litesam_ros.ros.service import PromptService
from litesam_ros.runtime import FrameOutput, RuntimeStats, RuntimeStopped, SegmentRuntime
from litesam_ros.segment import SegmentError, resolve_strategy

NODE_NAME = "litesam"


class LiteSamNode(LifecycleNode):
    """The Lite-SAM segmentation node (see module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        for name, spec in PARAMS.items():
            self.declare_parameter(name, spec.default, spec.descriptor(name))
        self.add_on_set_parameters_callback(self._on_set_parameters)

        values = self._values()
        self.runtime = SegmentRuntime(
            on_result=self._publish, decode=to_rgb8, invalid=(ImageConversionError,),
            logger=self.get_logger(), mode=values["mode"], max_rate=float(values["max_rate"]),
            decode_depth=depth_image_to_numpy, tracking=tracker_settings(values))
        self._model_name = ""
        self._backend_name = ""
        self._active = False

        self._cameras: list[CameraSpec] = []
        self._outputs: dict[str, CameraOutputs] = {}  # by the runtime's source name
        self._camera_subs: list[Any] = []
        self._receiver: CameraReceiver | None = None
        self._prompt_services: list[Any] = []
        self._service_group = MutuallyExclusiveCallbackGroup()
        self._prompts = PromptService(self.runtime, self.get_logger(), lambda: self._active,
                                      lambda: (self._model_name, self._backend_name))
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(1.0, self._publish_diagnostics)

    @property
    def stats(self) -> RuntimeStats:
        """Frame counters and latency (the runtime's; they survive cleanup and configure)."""
        return self.runtime.stats

    @property
    def cameras(self) -> list[CameraSpec]:
        """The cameras served (set at configure)."""
        return list(self._cameras)

    # -- parameters ---------------------------------------------------------------------------
    def _values(self) -> dict[str, Any]:
        return parameter_values(lambda name: self.get_parameter(name).value)

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        segmenter = self.runtime.segmenter
        values = self._values()
        for param in params:
            reason = check_choice(param.name, param.value)
            spec = PARAMS.get(param.name)
            if not reason and spec is not None and not spec.runtime and segmenter is not None:
                reason = (f"{param.name} can only change while the node is unconfigured "
                          f"(deactivate and clean up first)")
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            values[param.name] = param.value
        try:
            settings = segment_settings(values, segmenter.backend.model_thresholds
                                        if segmenter is not None else None)
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
        loaded = configure_model(values, self.get_logger())
        if loaded is None:  # configure_model logged why
            return TransitionCallbackReturn.FAILURE
        self._model_name, self._backend_name = loaded.model, loaded.backend
        self._cameras = cameras
        self._outputs = {camera.source: CameraOutputs(self, camera) for camera in cameras}
        group = self._service_group
        self._prompt_services = [
            self.create_service(SegmentPrompt, "~/segment", self._prompts.on_segment,
                                callback_group=group),
            self.create_service(Trigger, "~/reset_tracks", self._prompts.on_reset_tracks,
                                callback_group=group)]
        self._prompt_services += [  # several cameras: one prompt service per camera too
            self.create_service(SegmentPrompt, c.prefix + "segment",
                                self._prompts.for_source(c.source), callback_group=group)
            for c in cameras if c.name]
        self.runtime.encoder_batch = int(values["encoder_batch"])  # several cameras' frames
        self.runtime.start(loaded.segmenter)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = self._values()
        self._receiver = CameraReceiver(self)  # the camera topics' own executor thread
        for camera in self._cameras:
            subs, line = subscribe_camera(self._receiver, camera, self.runtime, values,
                                          self._on_incompatible_qos)
            self._camera_subs += subs
            self.get_logger().info(line)
        self._receiver.start()
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
        if self._receiver is not None:  # its thread stops, then its subscriptions go
            self._receiver.close()
            self._receiver = None
        self._camera_subs = []
        self.runtime.clear()
        for source in self.runtime.depth_sources:
            self.runtime.configure_depth(source, None)

    def _release(self) -> None:
        """Stop the runtime (its inference thread) and free the model, publishers and services."""
        self.runtime.stop()  # first: its thread publishes through the publishers below
        for outputs in self._outputs.values():
            outputs.destroy(self)
        self._outputs = {}
        for service in self._prompt_services:
            self.destroy_service(service)
        self._prompt_services = []
        self._backend_name = ""
        free_accelerator_memory()

    def _on_incompatible_qos(self, event: Any) -> None:
        self.get_logger().warning(
            "a camera publisher's QoS is incompatible with this subscription (policy "
            f"{event.last_policy_kind}): no frames will arrive. Use qos:=sensor_data (best "
            "effort), which matches both reliable and best-effort cameras.")

    # -- output (called by the runtime on its inference thread) -------------------------------
    def _publish(self, output: FrameOutput) -> None:
        out = self._outputs.get(output.frame.source)
        if out is None:
            return
        flag = self.get_parameter
        options = OutputOptions(label_image=flag("publish_label_image").value,
                                overlay=flag("publish_overlay").value,
                                points=flag("publish_points").value,
                                markers=flag("publish_markers").value)
        out.publish(output, options, self._model_name, self._backend_name)

    def _publish_diagnostics(self) -> None:
        cameras = [(c.name or c.image_topic, self.stats.source(c.source), c.has_depth)
                   for c in self._cameras]
        self._diagnostics_pub.publish(diagnostics_message(
            self.get_fully_qualified_name(), self.stats, self.get_clock().now().to_msg(),
            active=self._active, backend=self._backend_name, model=self._model_name,
            cameras=cameras if (len(cameras) > 1 or any(c[2] for c in cameras)) else []))


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
