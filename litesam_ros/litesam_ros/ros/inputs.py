"""The node's camera inputs: QoS, subscriptions per camera (colour, depth, CameraInfo) feeding
the runtime, and the decoder the runtime runs on its inference thread.

The callbacks only hand messages to the runtime (newest wins); conversion and validation of a
frame happen there, so a malformed frame never replaces a good one (see runtime.runtime).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

try:  # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks  # type: ignore[no-redef]

from litesam_ros.ros.cameras import CameraSpec
from litesam_ros.ros.image_conversion import compressed_to_rgb8, image_to_rgb8
from litesam_ros.runtime import DepthSettings, SegmentRuntime


def to_rgb8(msg: Any) -> np.ndarray:
    """A camera message's pixels as RGB (the runtime's decoder, run on its inference thread);
    raises ImageConversionError for a message that is not a supported image."""
    return compressed_to_rgb8(msg) if isinstance(msg, CompressedImage) else image_to_rgb8(msg)


def camera_qos(kind: str) -> QoSProfile:
    """Depth 1: the node keeps only the newest frame anyway."""
    reliability = (ReliabilityPolicy.RELIABLE if kind == "reliable"
                   else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def subscribe_camera(node: Any, camera: CameraSpec, runtime: SegmentRuntime,
                     values: dict[str, Any], on_incompatible_qos: Callable[[Any], None]
                     ) -> tuple[list[Any], str]:
    """Subscribe to one camera's topics (its depth and CameraInfo too when it has depth, after
    configuring the runtime's pairing for it) on ``node`` (the node's CameraReceiver, or any
    node). Returns the subscriptions and a log line."""
    source = camera.source
    compressed = values["transport"] == "compressed"
    topic = f"{camera.image_topic.rstrip('/')}/compressed" if compressed else camera.image_topic
    events = SubscriptionEventCallbacks(incompatible_qos=on_incompatible_qos)
    sub = node.create_subscription(
        CompressedImage if compressed else Image, topic,
        lambda msg: runtime.submit(msg, source, stamp_ns(msg.header)),
        camera_qos(values["qos"]), event_callbacks=events)
    subs = [sub]
    what = f"subscribed to {sub.topic_name}"
    if camera.has_depth:
        runtime.configure_depth(source, DepthSettings(
            tolerance_s=float(values["depth_tolerance"]), intrinsics=str(values["intrinsics"]),
            keep_points=True))
        depth_qos = camera_qos("sensor_data")  # best effort matches any depth camera
        depth = node.create_subscription(
            Image, camera.depth_topic,
            lambda msg: runtime.submit_depth(msg, source, stamp_ns(msg.header)), depth_qos)
        subs.append(depth)
        what += f" with depth {depth.topic_name}"
        if camera.camera_info_topic:
            info = node.create_subscription(
                CameraInfo, camera.camera_info_topic,
                lambda msg: runtime.set_camera_info(source, msg.k, msg.d, msg.p), depth_qos)
            subs.append(info)
            what += f" and {info.topic_name}"
    name = f" (camera {camera.name}, outputs {camera.prefix})" if camera.name else ""
    return subs, (f"{what}{name} ({values['transport']}, qos {values['qos']}), "
                  f"mode {values['mode']}")
