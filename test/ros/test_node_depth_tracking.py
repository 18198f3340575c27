"""litesam_node in-process over real DDS (issue 13): bad depth inputs, 3D in the ~/segment answer,
markers and points, persistent track ids on a moving object, ~/reset_tracks, two cameras."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ros_harness import spin_until

TIMEOUT = 120.0
SEC = 1_000_000_000


def _ns(header: Any) -> int:
    return header.stamp.sec * SEC + header.stamp.nanosec


def _stamped(msg: Any, ns: int, frame_id: str = "optical") -> Any:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, SEC)
    msg.header.frame_id = frame_id
    return msg


def _decode(inst: Any) -> np.ndarray:
    return mask_utils.decode({"size": [inst.mask_height, inst.mask_width],
                              "counts": inst.mask_rle_counts.encode()}).astype(bool)


class Probe:
    """Publishers and collectors of one test (a plain rclpy node on the test's executor)."""

    def __init__(self, context: Any, executor: Any) -> None:
        import rclpy

        self.executor = executor
        self.node = rclpy.create_node("probe", context=context)
        executor.add_node(self.node)
        self.got: dict[str, dict[int, Any]] = {}

    def collect(self, msg_type: Any, topic: str) -> dict[int, Any]:
        box: dict[int, Any] = {}
        self.got[topic] = box
        self.node.create_subscription(msg_type, topic,
                                      lambda m: box.__setitem__(_ns(m.header), m), 10)
        return box

    def publisher(self, msg_type: Any, topic: str) -> Any:
        from rclpy.qos import qos_profile_sensor_data

        pub = self.node.create_publisher(msg_type, topic, qos_profile_sensor_data)
        assert spin_until(self.executor, lambda: pub.get_subscription_count() > 0, 30.0), topic
        return pub

    def spin(self, seconds: float) -> None:
        spin_until(self.executor, lambda: False, seconds)

    def until(self, predicate: Any, publish: Any, timeout: float = TIMEOUT) -> None:
        """Call publish(i) every 0.5 s until predicate() holds."""
        deadline = time.monotonic() + timeout
        i = 0
        while not predicate() and time.monotonic() < deadline:
            publish(i)
            i += 1
            spin_until(self.executor, predicate, 0.5)
        assert predicate()


def _camera_info(h: int, w: int) -> Any:
    from sensor_msgs.msg import CameraInfo

    f = 500.0
    return CameraInfo(height=h, width=w, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[f, 0.0, w / 2, 0.0, f, h / 2, 0.0, 0.0, 1.0],
                      p=[f, 0.0, w / 2, 0.0, 0.0, f, h / 2, 0.0, 0.0, 0.0, 1.0, 0.0])


def _depth_mm(h: int, w: int) -> Any:
    """16UC1: 1500 mm everywhere except a zero (no reading) band at the top."""
    from sensor_msgs.msg import Image

    depth = np.full((h, w), 1500, np.uint16)
    depth[: h // 8] = 0
    return Image(height=h, width=w, encoding="16UC1", step=w * 2, data=depth.tobytes())


def test_bad_depth_inputs_counted_2d_unaffected_then_3d_service_markers_points(
        start_node: Any, ros_context: Any, ros_executor: Any, photo: np.ndarray) -> None:
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from std_srvs.srv import Trigger
    from visualization_msgs.msg import MarkerArray

    from litesam_msgs.msg import Instance3DArray, InstanceMaskArray, Prompt
    from litesam_ros.ros.image_conversion import numpy_to_image
    from litesam_msgs.srv import SegmentPrompt

    runner = start_node(image_topic="/cam/color", depth_topic="/cam/depth",
                        camera_info_topic="/cam/info", publish_points=True,
                        publish_markers=True)
    probe = Probe(ros_context, ros_executor)
    inst = probe.collect(InstanceMaskArray, "/litesam/instances")
    i3d = probe.collect(Instance3DArray, "/litesam/instances_3d")
    points = probe.collect(PointCloud2, "/litesam/points")
    marks: list[Any] = []
    probe.node.create_subscription(MarkerArray, "/litesam/markers", marks.append, 10)
    colour = probe.publisher(Image, "/cam/color")
    depth_pub = probe.publisher(Image, "/cam/depth")
    h, w = photo.shape[:2]
    rgb = numpy_to_image(photo, "rgb8")
    depth_ok = _depth_mm(h, w)
    stats = runner.node.stats

    def send(depth: Any, base: int) -> Any:
        def publish(i: int) -> None:
            ns = base + i * 100_000_000
            depth_pub.publish(_stamped(depth, ns))
            colour.publish(_stamped(rgb, ns))
        return publish

    # 1. depth, but no camera_info: 2D published, no 3D, counted
    probe.until(lambda: bool(inst), send(depth_ok, 10 * SEC))
    assert stats.depth_snapshot()["depth_no_camera_info"] >= 1 and not i3d
    info_pub = probe.publisher(CameraInfo, "/cam/info")
    probe.until(lambda: runner.node.runtime.depth_camera("/cam/color").intrinsics is not None,
                lambda i: info_pub.publish(_stamped(_camera_info(h, w), 0)), 30.0)
    # 2. depth of another size: 2D published, no 3D, counted (a frame of step 1 still waiting
    # may get its 3D now that camera_info is there: only stamps from 20 s on count)
    probe.until(lambda: stats.depth_snapshot()["depth_size_mismatch"] >= 1
                and any(s >= 20 * SEC for s in inst), send(_depth_mm(h // 2, w // 2), 20 * SEC))
    assert not [s for s in i3d if 20 * SEC <= s < 30 * SEC]
    # 3. good depth: 3D of every instance at 1.5 m (the zero band ignored)
    probe.until(lambda: any(s >= 30 * SEC for s in i3d), send(depth_ok, 30 * SEC))
    stamp = next(s for s in i3d if s >= 30 * SEC)
    assert stamp in inst and len(i3d[stamp].instances) == len(inst[stamp].instances)
    with_points = [i for i in i3d[stamp].instances if i.num_points > 0]
    assert with_points
    for i in with_points:
        assert abs(i.centroid.z - 1.5) < 1e-6 and abs(i.box_min.z - 1.5) < 1e-6
    assert spin_until(ros_executor, lambda: stamp in points and bool(marks), 10.0)
    cloud = points[stamp]
    assert cloud.width == sum(i.num_points for i in i3d[stamp].instances)
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "instance"]
    arr = np.frombuffer(bytes(cloud.data), np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                                     ("instance", "<u4")]))
    assert np.allclose(arr["z"], 1.5) and set(arr["instance"]) <= {i.id for i in with_points}
    boxes = [m for m in marks[-1].markers if m.ns == "boxes"]
    labels = [m for m in marks[-1].markers if m.ns == "labels"]
    assert len(boxes) == len(labels) == len(with_points) and len(boxes[0].points) == 24
    assert labels[0].text.startswith(f"id {labels[0].id} / track ")
    # 4. the service answers with 3D for the newest frame
    client = probe.node.create_client(SegmentPrompt, "/litesam/segment")
    assert spin_until(ros_executor, client.service_is_ready, 30.0)
    req = SegmentPrompt.Request(prompts=[Prompt(has_box=True, box=[200.0, 100.0, 400.0, 300.0])])
    future = client.call_async(req)
    assert spin_until(ros_executor, future.done, TIMEOUT)
    res = future.result()
    assert res.success, res.message
    assert len(res.instances_3d) == 1 and res.instances_3d[0].id == 1
    assert abs(res.instances_3d[0].centroid.z - 1.5) < 1e-6
    # 5. reset_tracks
    reset = probe.node.create_client(Trigger, "/litesam/reset_tracks")
    assert spin_until(ros_executor, reset.service_is_ready, 30.0)
    future = reset.call_async(Trigger.Request())
    assert spin_until(ros_executor, future.done, 30.0)
    assert future.result().success and future.result().message.startswith("forgot ")


def _scene(k: int) -> tuple[np.ndarray, np.ndarray]:
    """A 640x480 frame with a red rectangle 14 px further right each frame, and its mask."""
    rng = np.random.default_rng(k)
    img = np.full((480, 640, 3), (70, 110, 150), np.uint8)
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((480, 640), bool)
    x0 = 150 + 14 * k
    mask[170:330, x0:x0 + 200] = True
    img[mask] = (220, 40, 30)
    return img, mask


def test_moving_object_keeps_its_track_id(start_node: Any, ros_context: Any,
                                          ros_executor: Any) -> None:
    from sensor_msgs.msg import Image

    from litesam_msgs.msg import InstanceMaskArray
    from litesam_ros.ros.image_conversion import numpy_to_image

    start_node(track_max_age=2)
    probe = Probe(ros_context, ros_executor)
    inst = probe.collect(InstanceMaskArray, "/litesam/instances")
    colour = probe.publisher(Image, "image")
    tracks = []
    for k in range(4):
        img, gt = _scene(k)
        msg = _stamped(numpy_to_image(img, "rgb8"), (k + 1) * SEC)
        probe.until(lambda: (k + 1) * SEC in inst, lambda i: colour.publish(msg))
        result = inst[(k + 1) * SEC]
        best = max(result.instances,
                   key=lambda m: (_decode(m) & gt).sum() / (_decode(m) | gt).sum())
        m = _decode(best)
        assert (m & gt).sum() / (m | gt).sum() > 0.7
        assert best.track_id >= 1
        tracks.append(best.track_id)
        ids = [i.track_id for i in result.instances]
        assert len(set(ids)) == len(ids)  # distinct within a frame
    assert tracks == [tracks[0]] * 4, tracks


def test_two_cameras_are_both_served_with_their_own_outputs(
        start_node: Any, ros_context: Any, ros_executor: Any, photo: np.ndarray) -> None:
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from litesam_msgs.msg import InstanceMaskArray
    from litesam_ros.ros.image_conversion import numpy_to_image

    runner = start_node(image_topics=["/front/color/image_raw", "/rear/color/image_raw"])
    assert [c.name for c in runner.node.cameras] == ["front", "rear"]
    probe = Probe(ros_context, ros_executor)
    front = probe.collect(InstanceMaskArray, "/litesam/front/instances")
    rear = probe.collect(InstanceMaskArray, "/litesam/rear/instances")
    diags: list[Any] = []
    probe.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    pubs = {"front": probe.publisher(Image, "/front/color/image_raw"),
            "rear": probe.publisher(Image, "/rear/color/image_raw")}
    msgs = {"front": _stamped(numpy_to_image(photo, "rgb8"), SEC, "front_optical"),
            "rear": _stamped(numpy_to_image(np.ascontiguousarray(photo[:, ::-1]), "rgb8"),
                             2 * SEC, "rear_optical")}

    def publish(i: int) -> None:
        for name, pub in pubs.items():
            pub.publish(msgs[name])

    probe.until(lambda: bool(front) and bool(rear), publish)
    assert next(iter(front.values())).header.frame_id == "front_optical"
    assert next(iter(rear.values())).header.frame_id == "rear_optical"

    def camera_statuses() -> set[str]:
        return {s.name for m in diags for s in m.status}

    assert spin_until(ros_executor, lambda: {"litesam_ros: /litesam camera front",
                                             "litesam_ros: /litesam camera rear"}
                      <= camera_statuses(), 10.0), camera_statuses()
    for name in ("front", "rear"):  # counted just after publishing
        assert spin_until(ros_executor,
                          lambda: runner.node.stats.source(name).processed >= 1, 10.0)

    # Each camera has its own prompt service on its own newest valid frame (issue 14.4: the
    # same holds per camera). Broken frames on the front camera, each followed by a call to
    # ~/front/segment: every call succeeds on the front camera's good frame, not the rear's.
    from litesam_msgs.msg import Prompt
    from litesam_msgs.srv import SegmentPrompt

    def call(service: str) -> Any:
        client = probe.node.create_client(SegmentPrompt, service)
        assert spin_until(ros_executor, client.service_is_ready, 30.0), service
        future = client.call_async(SegmentPrompt.Request(
            prompts=[Prompt(box=[100.0, 50.0, 300.0, 400.0], has_box=True)]))
        assert spin_until(ros_executor, future.done, TIMEOUT), service
        return future.result()

    for name in ("front", "rear"):
        answer = call(f"/litesam/{name}/segment")
        assert answer.success, answer.message
        assert answer.result.header.frame_id == f"{name}_optical"
    broken = [Image(height=0, width=0, encoding="rgb8", step=0, data=b""),
              Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(7)),
              Image(height=4, width=4, encoding="yuv422", step=8, data=bytes(32))]
    pubs["rear"].publish(msgs["rear"])  # the rear frame is the newest good frame overall
    for msg in broken:
        before = runner.node.stats.source("front").invalid
        probe.until(lambda: runner.node.stats.source("front").invalid > before,
                    lambda i: pubs["front"].publish(msg), timeout=30.0)
        answer = call("/litesam/front/segment")
        assert answer.success, answer.message
        assert answer.result.header.frame_id == "front_optical"
    assert runner.node.stats.source("front").errors == 0


def test_two_cameras_with_encoder_batch_are_encoded_together(
        start_node: Any, ros_context: Any, ros_executor: Any, photo: np.ndarray) -> None:
    """encoder_batch 2: the node's backend takes batches of 2 (the dynamic-batch graph), the
    runtime segments both cameras' waiting frames in one run, each camera gets its outputs."""
    from sensor_msgs.msg import Image

    from litesam_msgs.msg import InstanceMaskArray
    from litesam_ros.ros.image_conversion import numpy_to_image

    runner = start_node(image_topics=["/front/color/image_raw", "/rear/color/image_raw"],
                        encoder_batch=2)
    runtime = runner.node.runtime
    segmenter = runtime.segmenter
    assert runtime.encoder_batch == 2 and segmenter is not None
    assert segmenter.backend.max_batch == 2
    batched: list[int] = []
    inner = segmenter.segment_everything_batch

    def counting(images: Any, strategy: Any = None) -> Any:
        if len(images) > 1:
            batched.append(len(images))
        return inner(images, strategy)

    segmenter.segment_everything_batch = counting  # type: ignore[method-assign]
    probe = Probe(ros_context, ros_executor)
    front = probe.collect(InstanceMaskArray, "/litesam/front/instances")
    rear = probe.collect(InstanceMaskArray, "/litesam/rear/instances")
    pubs = {"front": probe.publisher(Image, "/front/color/image_raw"),
            "rear": probe.publisher(Image, "/rear/color/image_raw")}
    images = {"front": photo, "rear": np.ascontiguousarray(photo[:, ::-1])}

    def publish(i: int) -> None:
        for k, (name, pub) in enumerate(pubs.items()):
            pub.publish(_stamped(numpy_to_image(images[name], "rgb8"), (2 * i + k + 1) * SEC,
                                 f"{name}_optical"))

    probe.until(lambda: bool(batched) and bool(front) and bool(rear), publish)
    assert batched[0] == 2
    assert {m.header.frame_id for m in front.values()} == {"front_optical"}
    assert {m.header.frame_id for m in rear.values()} == {"rear_optical"}
    for name in ("front", "rear"):
        assert runner.node.stats.source(name).errors == 0
