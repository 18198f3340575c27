"""The package's own msg/srv across two processes over real DDS."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ros_harness import ProcessStarter, spin_until

PEERS = Path(__file__).resolve().parents[1] / "ros_peers"


def _sample_array() -> Any:
    from litesam_msgs.msg import InstanceMask, InstanceMaskArray, Prompt

    msg = InstanceMaskArray()
    msg.header.frame_id = "camera_optical"
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1234, 5678
    msg.height, msg.width = 48, 64
    msg.strategy, msg.model, msg.backend = "autoppn", "lite_sam_r320", "onnxruntime"
    msg.inference_time = 0.125
    mask = np.zeros((48, 64), np.uint8, order="F")
    mask[10:20, 30:50] = 1
    counts = mask_utils.encode(mask)["counts"].decode()
    for i in range(3):
        msg.instances.append(InstanceMask(
            id=i + 1, score=1.0 - 0.25 * i, stability_score=0.75, area=200, x_min=30.0, y_min=10.0,
            x_max=50.0, y_max=20.0, mask_rle_counts=counts, mask_height=48, mask_width=64,
            has_prompt=True, prompt=Prompt(points=[40.0, 15.0], labels=[1], has_box=False)))
    return msg


def _wait_for_subscriber(executor: Any, publisher: Any, timeout: float = 20.0) -> bool:
    return spin_until(executor, lambda: publisher.get_subscription_count() > 0, timeout)


def test_instance_mask_array_round_trip_across_processes(
        ros_executor: Any, ros_processes: ProcessStarter, ros_context: Any) -> None:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from litesam_msgs.msg import InstanceMaskArray

    echo = ros_processes.start("echo", [sys.executable, str(PEERS / "message_echo.py")])
    node = rclpy.create_node("test_round_trip", context=ros_context)
    ros_executor.add_node(node)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    received: list[Any] = []
    node.create_subscription(InstanceMaskArray, "out", received.append, qos)
    pub = node.create_publisher(InstanceMaskArray, "in", qos)
    assert _wait_for_subscriber(ros_executor, pub), echo.output()
    # The echo's publisher must also have matched our subscription before we publish.
    assert spin_until(ros_executor, lambda: node.count_publishers("out") > 0, 20.0), echo.output()

    sent = _sample_array()
    pub.publish(sent)
    assert spin_until(ros_executor, lambda: len(received) == 1, 20.0), echo.output()
    got = received[0]
    assert got == sent  # generated messages compare every field
    assert got.header.frame_id == "camera_optical" and got.header.stamp.nanosec == 5678
    decoded = mask_utils.decode({"size": [got.instances[1].mask_height, got.instances[1].mask_width],
                                 "counts": got.instances[1].mask_rle_counts.encode()})
    assert decoded.shape == (48, 64) and decoded.sum() == 200 and decoded[10:20, 30:50].all()
    assert list(got.instances[2].prompt.points) == [40.0, 15.0]
    assert echo.alive()


def test_segment_prompt_service_across_processes(
        ros_executor: Any, ros_processes: ProcessStarter, ros_context: Any) -> None:
    import rclpy

    from litesam_msgs.msg import Prompt
    from litesam_msgs.srv import SegmentPrompt

    server = ros_processes.start("server", [sys.executable, str(PEERS / "box_mask_server.py")])
    node = rclpy.create_node("test_client", context=ros_context)
    ros_executor.add_node(node)
    client = node.create_client(SegmentPrompt, "segment")
    assert spin_until(ros_executor, lambda: client.service_is_ready(), 20.0), server.output()

    request = SegmentPrompt.Request()
    request.image.height, request.image.width, request.image.encoding = 40, 60, "mono8"
    request.image.step = 60
    request.image.data = bytes(40 * 60)
    request.image.header.frame_id = "cam"
    request.prompts = [
        Prompt(has_box=True, box=[5.0, 6.0, 15.0, 16.0]),
        Prompt(points=[30.0, 20.0], labels=[1]),
        Prompt(points=[1.0, 2.0, 3.0, 4.0], labels=[1, 0], has_box=True, box=[40.0, 0.0, 60.0, 10.0]),
    ]
    future = client.call_async(request)
    assert spin_until(ros_executor, future.done, 20.0), server.output()
    response = future.result()
    assert response.success, response.message
    assert response.result.header.frame_id == "cam"
    assert [inst.id for inst in response.result.instances] == [1, 2, 3]
    areas = [inst.area for inst in response.result.instances]
    assert areas == [100, 9, 200]  # one answer per prompt, in request order
    assert [inst.prompt for inst in response.result.instances] == request.prompts

    bad = SegmentPrompt.Request()  # no image, no prompts: an error answer, not a dead server
    future = client.call_async(bad)
    assert spin_until(ros_executor, future.done, 20.0)
    assert not future.result().success and "prompt" in future.result().message
    assert server.alive()
