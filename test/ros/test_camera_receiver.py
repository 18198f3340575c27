"""CameraReceiver (ros/camera_receiver.py): the node's camera subscriptions on a helper node with
its own executor thread; topics resolved by the owning node (namespace, remappings), frames
delivered on that thread over real DDS, everything gone after close()."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from ros_harness import spin_until


def test_receiver_resolves_like_its_node_and_delivers_on_its_own_thread(
        ros_context: Any, ros_executor: Any) -> None:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from litesam_ros.ros.camera_receiver import CameraReceiver
    from litesam_ros.ros.image_conversion import numpy_to_image

    owner = rclpy.create_node("seg", namespace="/robot", context=ros_context,
                              cli_args=["--ros-args", "-r", "cam/image:=/remapped/image"])
    ros_executor.add_node(owner)
    receiver = CameraReceiver(owner)
    got: list[tuple[str, int]] = []
    remapped = receiver.create_subscription(
        Image, "cam/image", lambda m: got.append((threading.current_thread().name, m.width)),
        qos_profile_sensor_data)
    relative = receiver.create_subscription(Image, "other", lambda m: None,
                                            qos_profile_sensor_data)
    assert remapped.topic_name == "/remapped/image"  # the owner's remapping
    assert relative.topic_name == "/robot/other"  # the owner's namespace
    assert receiver.node.get_name() == "seg_cameras"
    receiver.start()

    camera = rclpy.create_node("camera", context=ros_context)
    ros_executor.add_node(camera)
    pub = camera.create_publisher(Image, "/remapped/image", qos_profile_sensor_data)
    assert spin_until(ros_executor, lambda: pub.get_subscription_count() > 0, 30.0)
    msg = numpy_to_image(np.zeros((4, 6, 3), np.uint8), "rgb8")
    deadline = time.monotonic() + 30.0
    while not got and time.monotonic() < deadline:
        pub.publish(msg)
        ros_executor.spin_once(timeout_sec=0.1)
    assert got and got[0] == ("litesam_cameras", 6)  # the receiver's thread, not the executor's

    receiver.close()
    assert not any(t.name == "litesam_cameras" for t in threading.enumerate())
    assert spin_until(ros_executor, lambda: pub.get_subscription_count() == 0, 30.0)
    assert spin_until(ros_executor, lambda: "seg_cameras" not in camera.get_node_names(), 30.0)
