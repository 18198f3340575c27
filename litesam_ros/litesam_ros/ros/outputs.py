"""One camera's publishers and how a frame's result becomes messages on them.

Called by the runtime's inference thread (through the node's result callback). Outputs are
reliable: both reliable and best-effort subscribers can match them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litesam_msgs.msg import Instance3DArray, InstanceMaskArray
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from litesam_ros.ros.cameras import CameraSpec
from litesam_ros.ros.image_conversion import numpy_to_image
from litesam_ros.ros.messages import instances_3d_msgs, instances_3d_to_msg, result_to_msg
from litesam_ros.ros.visuals import markers, points_cloud
from litesam_ros.runtime import FrameOutput
from litesam_ros.segment.overlay import draw_overlay

OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.RELIABLE)
IMAGE_OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2,
                              reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class OutputOptions:
    """What to publish besides ~/instances (the node's runtime parameters, read per frame)."""

    label_image: bool
    overlay: bool
    points: bool
    markers: bool


class CameraOutputs:
    """One camera's lifecycle publishers (the 3D ones only for a camera with depth)."""

    def __init__(self, node: Any, camera: CameraSpec) -> None:
        pre = camera.prefix
        self.camera = camera
        pub = node.create_lifecycle_publisher
        self.instances = pub(InstanceMaskArray, pre + "instances", OUTPUT_QOS)
        self.label = pub(Image, pre + "label_image", IMAGE_OUTPUT_QOS)
        self.overlay = pub(Image, pre + "overlay", IMAGE_OUTPUT_QOS)
        self.instances_3d = self.points = self.markers = None
        if camera.has_depth:
            self.instances_3d = pub(Instance3DArray, pre + "instances_3d", OUTPUT_QOS)
            self.points = pub(PointCloud2, pre + "points", IMAGE_OUTPUT_QOS)
            self.markers = pub(MarkerArray, pre + "markers", OUTPUT_QOS)

    def destroy(self, node: Any) -> None:
        for pub in (self.instances, self.label, self.overlay, self.instances_3d, self.points,
                    self.markers):
            if pub is not None:
                node.destroy_lifecycle_publisher(pub)

    def publish(self, output: FrameOutput, options: OutputOptions, model: str,
                backend: str) -> None:
        """Publish one frame's result: instances, then label image, overlay and 3D as asked."""
        frame, result, track_ids = output.frame, output.result, output.track_ids
        header = frame.payload.header
        height, width = frame.rgb.shape[:2] if frame.rgb is not None else (0, 0)
        self.instances.publish(result_to_msg(
            result, header, strategy=result.strategy, model=model, backend=backend,
            inference_time=output.latency, height=height, width=width, track_ids=track_ids,
            rles=output.rles))
        if options.label_image and _wanted(self.label):
            self.label.publish(numpy_to_image(result.label_image(), "mono16", header))
        if frame.rgb is not None and options.overlay and _wanted(self.overlay):
            # Colours (and labels) by track id when tracked: an object keeps its colour.
            ids = (list(track_ids) if track_ids is not None
                   else list(range(1, len(result) + 1)))
            overlay = draw_overlay(frame.rgb, result.masks, result.boxes, ids)
            self.overlay.publish(numpy_to_image(overlay, "rgb8", header))
        frame3d = output.frame3d
        if self.instances_3d is None or frame3d is None or not frame3d.ok:
            return  # no depth for this frame: its 2D outputs are all there is
        found = instances_3d_msgs(frame3d.instances, result.iou_scores.tolist(), track_ids)
        self.instances_3d.publish(instances_3d_to_msg(header, frame3d.depth_stamp_ns, found))
        if options.points and self.points is not None and _wanted(self.points):
            self.points.publish(points_cloud(header, [i.points for i in frame3d.instances]))
        if options.markers and self.markers is not None and _wanted(self.markers):
            self.markers.publish(markers(header, found))


def _wanted(publisher: Any) -> bool:
    """Whether anyone subscribes: images, overlays and clouds nobody reads are not made."""
    return publisher.get_subscription_count() > 0
