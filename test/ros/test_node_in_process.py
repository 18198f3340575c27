"""litesam_node in-process over real DDS: streaming, label image, service, parameters, lifecycle."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from node_support import model_under_test
from ros_harness import spin_until

TIMEOUT = 120.0  # first frame includes ONNX export on a cold cache


def _image_msg(rgb: np.ndarray, frame_id: str = "camera", sec: int = 7, nanosec: int = 11) -> Any:
    from litesam_ros.ros.image_conversion import numpy_to_image

    msg = numpy_to_image(rgb, "rgb8")
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    return msg


class Client:
    """A plain rclpy node that feeds frames and collects the node's outputs."""

    def __init__(self, context: Any, executor: Any, node_name: str = "litesam") -> None:
        import rclpy
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CompressedImage, Image

        from litesam_msgs.msg import InstanceMaskArray
        from litesam_msgs.srv import SegmentPrompt

        self.executor = executor
        self.node = rclpy.create_node("test_client", context=context)
        executor.add_node(self.node)
        self.instances: list[Any] = []
        self.labels: list[Any] = []
        self.diagnostics: list[Any] = []
        self.node.create_subscription(InstanceMaskArray, f"/{node_name}/instances",
                                      self.instances.append, 10)
        self.node.create_subscription(Image, f"/{node_name}/label_image", self.labels.append, 10)
        from diagnostic_msgs.msg import DiagnosticArray

        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.camera = self.node.create_publisher(Image, "image", qos_profile_sensor_data)
        self.compressed = self.node.create_publisher(CompressedImage, "image/compressed",
                                                     qos_profile_sensor_data)
        self.segment = self.node.create_client(SegmentPrompt, f"/{node_name}/segment")

    def wait_for_camera_subscriber(self) -> None:
        assert spin_until(self.executor, lambda: self.camera.get_subscription_count() > 0, 30.0)

    def stream_until_result(self, msg: Any, timeout: float = TIMEOUT) -> Any:
        """Publish `msg` repeatedly (best effort) until an InstanceMaskArray comes back."""
        self.wait_for_camera_subscriber()
        start = len(self.instances)
        for _ in range(int(timeout / 0.5)):
            self.camera.publish(msg)
            if spin_until(self.executor, lambda: len(self.instances) > start, 0.5):
                return self.instances[-1]
        raise AssertionError("no InstanceMaskArray received")

    def call(self, request: Any, timeout: float = TIMEOUT) -> Any:
        assert spin_until(self.executor, self.segment.service_is_ready, 30.0)
        future = self.segment.call_async(request)
        assert spin_until(self.executor, future.done, timeout)
        return future.result()


@pytest.fixture
def client(ros_context: Any, ros_executor: Any) -> Client:
    return Client(ros_context, ros_executor)


def _decode(inst: Any) -> np.ndarray:
    return mask_utils.decode({"size": [inst.mask_height, inst.mask_width],
                              "counts": inst.mask_rle_counts.encode()}).astype(bool)


def _iou(a: Any, b: Any) -> float:
    """IoU of two instances' masks (1.0 for two empty masks)."""
    ma, mb = _decode(a), _decode(b)
    union = (ma | mb).sum()
    return float((ma & mb).sum() / union) if union else 1.0


def test_stream_publishes_instances_and_label_image(start_node: Any, client: Client,
                                                    photo: np.ndarray) -> None:
    runner = start_node()
    result = client.stream_until_result(_image_msg(photo))
    assert result.header.frame_id == "camera"
    assert (result.header.stamp.sec, result.header.stamp.nanosec) == (7, 11)
    assert (result.height, result.width) == (480, 640)
    assert result.strategy == "autoppn" and result.backend.startswith("onnxruntime")
    assert 0 < len(result.instances) <= 20
    assert [i.id for i in result.instances] == list(range(1, len(result.instances) + 1))
    scores = [i.score for i in result.instances]
    assert scores == sorted(scores, reverse=True)
    for inst in result.instances:
        mask = _decode(inst)
        assert mask.shape == (480, 640) and int(mask.sum()) == inst.area > 0
        ys, xs = np.nonzero(mask)
        assert (inst.x_min, inst.y_min) == (xs.min(), ys.min())
        assert (inst.x_max, inst.y_max) == (xs.max() + 1, ys.max() + 1)
        assert inst.has_prompt and len(inst.prompt.points) == 2  # the AutoPPN proposal point

    assert spin_until(client.executor, lambda: len(client.labels) > 0, 30.0)
    label_msg = next(m for m in reversed(client.labels)
                     if m.header.stamp == result.header.stamp)
    assert label_msg.encoding == "mono16" and (label_msg.height, label_msg.width) == (480, 640)
    labels = np.frombuffer(bytes(label_msg.data), np.uint16).reshape(480, 640)
    ids = set(np.unique(labels).tolist()) - {0}
    assert ids <= {i.id for i in result.instances} and ids
    for inst in result.instances:
        painted = labels == inst.id
        assert not (painted & ~_decode(inst)).any()  # an id only paints its own mask
    assert runner.node.stats.processed >= 1

    def diag_values() -> dict[str, str]:
        for msg in reversed(client.diagnostics):
            for status in msg.status:
                if status.name == "litesam_ros: /litesam":
                    return {kv.key: kv.value for kv in status.values}
        return {}

    assert spin_until(client.executor, lambda: int(diag_values().get("frames_processed", 0)) >= 1,
                      10.0)
    values = diag_values()
    assert values["active"] == "true" and values["backend"].startswith("onnxruntime")
    assert int(values["frames_received"]) >= int(values["frames_processed"]) >= 1
    assert float(values["latency_mean_ms"]) > 0.0


def _prompt(points: list[float] | None = None, labels: list[int] | None = None,
            box: list[float] | None = None) -> Any:
    from litesam_msgs.msg import Prompt

    msg = Prompt(points=points or [], labels=labels or [])
    if box is not None:
        msg.has_box, msg.box = True, box
    return msg


def test_service_points_boxes_mixed_in_order(start_node: Any, client: Client,
                                             photo: np.ndarray) -> None:
    from litesam_msgs.srv import SegmentPrompt

    start_node(mode="prompt_only")
    request = SegmentPrompt.Request(image=_image_msg(photo, frame_id="req"))
    boxes = [[100.0, 50.0, 300.0, 400.0], [400.0, 100.0, 600.0, 300.0], [10.0, 10.0, 60.0, 60.0]]
    request.prompts = [_prompt(box=boxes[0]), _prompt(points=[320.0, 240.0], labels=[1]),
                       _prompt(box=boxes[1]),
                       _prompt(points=[30.0, 30.0, 50.0, 20.0], labels=[1, 0], box=boxes[2])]
    response = client.call(request)
    assert response.success, response.message
    result = response.result
    assert result.header.frame_id == "req" and result.strategy == "prompt"
    assert len(result.instances) == 4
    for inst, prompt in zip(result.instances, request.prompts):
        assert inst.prompt == prompt  # answered in request order
        assert _decode(inst).shape == (480, 640)

    # The same boxes one at a time give the same masks: order and batching do not mix prompts.
    single = SegmentPrompt.Request(image=request.image, prompts=[request.prompts[2]])
    alone = client.call(single).result.instances[0]
    assert _iou(alone, result.instances[2]) > 0.99  # float noise of another batch size only

    multi = SegmentPrompt.Request(image=request.image, prompts=[request.prompts[1]],
                                  multimask_output=True)
    assert client.call(multi).success


def test_service_uses_latest_camera_frame(start_node: Any, client: Client,
                                          photo: np.ndarray) -> None:
    from litesam_msgs.srv import SegmentPrompt

    start_node()
    request = SegmentPrompt.Request(prompts=[_prompt(box=[100.0, 50.0, 300.0, 400.0])])
    early = client.call(request)  # no frame yet: a clear refusal
    assert not early.success and "no camera frame" in early.message

    client.stream_until_result(_image_msg(photo, frame_id="cam_latest", sec=99))
    response = client.call(request)
    assert response.success, response.message
    assert response.result.header.frame_id == "cam_latest"
    assert response.result.header.stamp.sec == 99
    with_image = client.call(SegmentPrompt.Request(prompts=request.prompts,
                                                   image=_image_msg(photo)))
    # Same pixels through the cached embedding and through a fresh encode: same mask.
    assert _iou(with_image.result.instances[0], response.result.instances[0]) > 0.99


def test_an_empty_frame_never_replaces_the_newest_good_one(start_node: Any, client: Client,
                                                          photo: np.ndarray) -> None:
    """A camera glitch (a 0x0 image) is dropped and counted; the service keeps answering on
    the newest good frame (found trying the node as a new user would; issue 14)."""
    from sensor_msgs.msg import Image

    from litesam_msgs.srv import SegmentPrompt

    runner = start_node()
    client.stream_until_result(_image_msg(photo, frame_id="good", sec=5))
    empty = Image(height=0, width=0, encoding="rgb8", step=0, data=b"")
    empty.header.frame_id = "glitch"
    before = runner.node.stats.invalid
    for _ in range(40):
        client.camera.publish(empty)
        if spin_until(client.executor, lambda: runner.node.stats.invalid > before, 0.25):
            break
    assert runner.node.stats.invalid > before
    response = client.call(SegmentPrompt.Request(prompts=[_prompt(box=[100.0, 50.0, 300.0,
                                                                      400.0])]))
    assert response.success, response.message
    assert response.result.header.frame_id == "good"


def _malformed_frames() -> dict[str, Any]:
    """Camera messages that are not images, one per way a frame can be broken."""
    from sensor_msgs.msg import Image

    good = np.full((6, 8, 3), 90, np.uint8).tobytes()
    return {
        "empty": Image(height=0, width=0, encoding="rgb8", step=0, data=b""),
        "zero width": Image(height=6, width=0, encoding="rgb8", step=0, data=b""),
        "short data": Image(height=6, width=8, encoding="rgb8", step=24, data=good[:100]),
        "step too small": Image(height=6, width=8, encoding="rgb8", step=20, data=good),
        "unknown encoding": Image(height=6, width=8, encoding="yuv422", step=16,
                                  data=bytes(96)),
        "no encoding": Image(height=6, width=8, encoding="", step=24, data=good),
    }


def test_malformed_frames_interleaved_with_calls_never_fail_a_valid_call(
        start_node: Any, client: Client, photo: np.ndarray) -> None:
    """Issue 14.4: every kind of broken camera frame, each followed at once by a ~/segment call
    on the newest frame: every call succeeds, on the newest *valid* frame; the broken frames
    are all counted as invalid and none counts as an error."""
    from litesam_msgs.srv import SegmentPrompt

    runner = start_node()
    client.stream_until_result(_image_msg(photo, frame_id="good", sec=5))
    request = SegmentPrompt.Request(prompts=[_prompt(box=[100.0, 50.0, 300.0, 400.0])])
    first = client.call(request)
    assert first.success, first.message
    invalid, errors = runner.node.stats.invalid, runner.node.stats.errors
    bad = _malformed_frames()
    for round_ in range(2):
        for name, msg in bad.items():
            before = runner.node.stats.invalid
            client.camera.publish(msg)
            # the call races the broken frame on purpose in round 0; in round 1 it waits
            # until the runtime has seen (and dropped) it
            if round_ == 1:
                for _ in range(20):
                    if spin_until(client.executor, lambda: runner.node.stats.invalid > before,
                                  0.25):
                        break
                    client.camera.publish(msg)
                assert runner.node.stats.invalid > before, name
            response = client.call(request)
            assert response.success, (name, response.message)
            assert response.result.header.frame_id == "good", name
            assert _iou(response.result.instances[0], first.result.instances[0]) > 0.99, name
    assert runner.node.stats.invalid >= invalid + len(bad)
    assert runner.node.stats.errors == errors  # expected errors are not tracebacks


BAD_REQUESTS = {
    "odd coordinate count": (dict(points=[1.0, 2.0, 3.0], labels=[1]), "x, y pairs"),
    "labels/points mismatch": (dict(points=[1.0, 2.0, 3.0, 4.0], labels=[1]), "labels"),
    "NaN point": (dict(points=[float("nan"), 2.0], labels=[1]), "NaN"),
    "point outside": (dict(points=[700.0, 20.0], labels=[1]), "outside"),
    "box outside": (dict(box=[10.0, 10.0, 900.0, 100.0]), "outside"),
    "inverted box": (dict(box=[300.0, 10.0, 100.0, 100.0]), "inverted"),
    "bad label": (dict(points=[10.0, 20.0], labels=[5]), "labels must be"),
    "empty prompt": (dict(), "neither points nor a box"),
}


def test_service_rejects_every_malformed_request(start_node: Any, client: Client,
                                                 photo: np.ndarray) -> None:
    from sensor_msgs.msg import Image

    from litesam_msgs.srv import SegmentPrompt

    runner = start_node(mode="prompt_only", max_prompts=3)
    image = _image_msg(photo)
    for name, (fields, expected) in BAD_REQUESTS.items():
        response = client.call(SegmentPrompt.Request(image=image, prompts=[_prompt(**fields)]))
        assert not response.success, name
        assert expected in response.message, (name, response.message)
        assert len(response.result.instances) == 0

    cases = {
        "no prompts": (SegmentPrompt.Request(image=image), "no prompts"),
        "too many": (SegmentPrompt.Request(image=image, prompts=[_prompt(box=[1.0, 1.0, 9.0, 9.0])] * 4),
                     "at most 3"),
        "unsupported image": (SegmentPrompt.Request(
            image=Image(height=2, width=2, encoding="yuv422", step=4, data=bytes(8)),
            prompts=[_prompt(box=[0.0, 0.0, 1.0, 1.0])]), "yuv422"),
        "short image data": (SegmentPrompt.Request(
            image=Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(10)),
            prompts=[_prompt(box=[0.0, 0.0, 1.0, 1.0])]), "request image"),
    }
    for name, (request, expected) in cases.items():
        response = client.call(request)
        assert not response.success, name
        assert expected in response.message, (name, response.message)

    good = client.call(SegmentPrompt.Request(image=image, prompts=[_prompt(box=[1.0, 1.0, 99.0, 99.0])]))
    assert good.success, good.message  # still serving after every bad request
    assert runner.thread.is_alive()


def test_broken_frames_are_dropped_and_counted(start_node: Any, client: Client,
                                               photo: np.ndarray) -> None:
    from sensor_msgs.msg import Image

    runner = start_node()
    client.wait_for_camera_subscriber()
    bad = Image(height=10, width=10, encoding="yuv422", step=20, data=bytes(200))
    short = Image(height=10, width=10, encoding="rgb8", step=30, data=bytes(100))
    for msg in (bad, short):
        client.camera.publish(msg)
        spin_until(client.executor, lambda: False, 0.5)
    assert spin_until(client.executor, lambda: runner.node.stats.invalid >= 1, 20.0)
    result = client.stream_until_result(_image_msg(photo))
    assert len(result.instances) > 0  # the node kept working


def test_runtime_parameter_updates(start_node: Any, client: Client, photo: np.ndarray) -> None:
    from rclpy.parameter import Parameter

    node = start_node().node
    ok = node.set_parameters([Parameter("max_instances", value=2),
                              Parameter("strategy", value="grid")])
    assert all(r.successful for r in ok)
    assert node.runtime.segmenter.settings.max_instances == 2
    assert node.runtime.segmenter.settings.strategy == "grid"

    bad_range = node.set_parameters([Parameter("pred_iou_thresh", value=1.5)])[0]
    assert not bad_range.successful
    bad_choice = node.set_parameters([Parameter("strategy", value="random")])[0]
    assert not bad_choice.successful and "autoppn" in bad_choice.reason
    structural = node.set_parameters([Parameter("backend", value="torch")])[0]
    assert not structural.successful and "unconfigured" in structural.reason
    assert node.get_parameter("strategy").value == "grid"  # rejected updates change nothing

    node.set_parameters([Parameter("strategy", value="autoppn")])
    result = client.stream_until_result(_image_msg(photo))
    assert 0 < len(result.instances) <= 2


def test_the_node_and_python_take_the_same_thresholds(start_node: Any, client: Client,
                                                     photo: np.ndarray,
                                                     engine_cache: Any) -> None:
    """The node at its threshold defaults (-1) and ``Segmenter(create_backend(weights),
    SegmentSettings())`` from Python both take the checkpoint's own thresholds and give the
    same masks for the shipped weights on a real photo; an explicit value wins on both."""
    from rclpy.parameter import Parameter

    from litesam_ros.engines import create_backend
    from litesam_ros.segment import Segmenter, SegmentSettings

    weights = model_under_test()
    if not weights.endswith(".pt"):
        pytest.skip("needs the shipped demo weights (their checkpoint records thresholds)")
    runner = start_node(pred_iou_thresh=-1.0, stability_score_thresh=-1.0)
    python = Segmenter(create_backend("onnxruntime", weights, cache_dir=str(engine_cache)),
                       SegmentSettings(max_instances=20))
    assert {s for _, s in python.threshold_sources.values()} == {"model"}

    def same(result: Any, want: Any) -> None:
        assert len(result.instances) == len(want) > 0
        assert [i.mask_rle_counts for i in result.instances] == [r["counts"]
                                                                 for r in want.rles()]
        np.testing.assert_allclose([i.score for i in result.instances], want.iou_scores,
                                   atol=1e-6)

    own = python.segment_everything(photo)
    same(client.stream_until_result(_image_msg(photo)), own)
    assert runner.node.runtime.segmenter.settings == python.settings

    explicit = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    ok = runner.node.set_parameters([Parameter(k, value=v) for k, v in explicit.items()])
    assert all(r.successful for r in ok)
    python.settings = SegmentSettings(max_instances=20, **explicit)
    opened = python.segment_everything(photo)
    assert len(opened) > len(own)
    msg = _image_msg(photo, sec=8)  # a frame sent after the change
    for _ in range(60):
        result = client.stream_until_result(msg)
        if result.header.stamp.sec == 8:
            break
    same(result, opened)


def test_lifecycle_transitions(start_node: Any, client: Client, photo: np.ndarray) -> None:
    from rclpy.lifecycle import TransitionCallbackReturn

    from litesam_msgs.srv import SegmentPrompt

    runner = start_node(autostart=False)
    node = runner.node
    assert node.runtime.segmenter is None
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.runtime.running and node._camera_subs == []
    request = SegmentPrompt.Request(image=_image_msg(photo),
                                    prompts=[_prompt(box=[1.0, 1.0, 99.0, 99.0])])
    inactive = client.call(request)
    assert not inactive.success and "not active" in inactive.message

    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    client.stream_until_result(_image_msg(photo))
    assert client.call(request).success

    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node._camera_subs == []
    count = len(client.instances)
    for _ in range(4):
        client.camera.publish(_image_msg(photo))
        spin_until(client.executor, lambda: False, 0.5)
    assert len(client.instances) == count  # inactive: no outputs

    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.runtime.segmenter is None and not node.runtime.running
    # rclpy's own services (parameters) still answer after every transition: the node must
    # not shadow rclpy.Node's internal lists (_subscriptions, _services) with its own
    from rcl_interfaces.srv import GetParameters

    get = client.node.create_client(GetParameters, "/litesam/get_parameters")
    assert spin_until(client.executor, get.service_is_ready, 30.0)
    future = get.call_async(GetParameters.Request(names=["mode"]))
    assert spin_until(client.executor, future.done, 30.0)
    assert future.result().values[0].string_value == "everything"
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    client.stream_until_result(_image_msg(photo))
