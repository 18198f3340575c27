"""Node overhead on top of the model, per 640x480 frame: conversion, RLE, messages, publishing.

Runs the node's own conversion and message code on a real photo with a fixed set of instance
masks (no model), and publishes over real DDS to a subscriber in another process-free node, so
the figure is what the node adds to model time. Not a test: prints a table.

    .venv/bin/python benchmarks/bench_node_overhead.py [--instances 20] [--repeats 50]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable, Optional, Sequence

import cv2
import numpy as np
from skimage import data as skdata


def _masks(h: int, w: int, n: int, seed: int = 0) -> np.ndarray:
    """n blob-shaped masks of varied size (real RLE lengths, not rectangles)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        canvas = np.zeros((h, w), np.uint8)
        cx, cy = rng.integers(40, w - 40), rng.integers(40, h - 40)
        axes = (int(rng.integers(8, 120)), int(rng.integers(8, 120)))
        cv2.ellipse(canvas, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        masks[i] = canvas > 0
    return masks


def _time(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e3


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--instances", "2", "--repeats", "1"]


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args(argv)
    os.environ.setdefault("ROS_DOMAIN_ID", "201")

    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from litesam_msgs.msg import InstanceMaskArray
    from litesam_ros.segment.overlay import draw_overlay
    from litesam_ros.ros.image_conversion import image_to_rgb8, numpy_to_image
    from litesam_ros.ros.messages import result_to_msg
    from litesam_ros.segment import SegmentationResult

    rgb = cv2.resize(skdata.astronaut(), (640, 480))
    h, w = rgb.shape[:2]
    bgr_msg = numpy_to_image(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), "bgr8")
    masks = _masks(h, w, args.instances)
    n = len(masks)
    ys = [np.nonzero(m.any(1))[0] for m in masks]
    xs = [np.nonzero(m.any(0))[0] for m in masks]
    boxes = np.array([[x[0], y[0], x[-1] + 1, y[-1] + 1] for x, y in zip(xs, ys)], np.float32)
    result = SegmentationResult(
        masks=masks, boxes=boxes, iou_scores=np.linspace(0.99, 0.9, n).astype(np.float32),
        stability_scores=np.full(n, 0.96, np.float32), areas=masks.reshape(n, -1).sum(1),
        prompt_points=[b[None, :2] for b in boxes], prompt_labels=[np.ones(1)] * n,
        prompt_boxes=[None] * n, strategy="autoppn")

    rclpy.init()
    node = rclpy.create_node("bench_overhead")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(InstanceMaskArray, "instances", qos)
    label_pub = node.create_publisher(type(bgr_msg), "label_image", qos)
    node.create_subscription(InstanceMaskArray, "instances", lambda m: None, qos)
    node.create_subscription(type(bgr_msg), "label_image", lambda m: None, qos)

    # (step, ms, counted in the total); "of which" rows are parts of the row above them.
    rows: list[tuple[str, float, bool]] = []
    rows.append(("image msg (bgr8) -> RGB array", _time(lambda: image_to_rgb8(bgr_msg), args.repeats), True))
    msg = result_to_msg(result, bgr_msg.header, strategy="autoppn", model="m", backend="b",
                        inference_time=0.1, height=h, width=w)
    rows.append(("InstanceMaskArray from result", _time(lambda: result_to_msg(
        result, bgr_msg.header, strategy="autoppn", model="m", backend="b", inference_time=0.1,
        height=h, width=w), args.repeats), True))
    rows.append(("  of which COCO RLE (pycocotools)", _time(result.rles, args.repeats), False))
    rows.append(("publish InstanceMaskArray", _time(lambda: pub.publish(msg), args.repeats), True))
    label_msg = numpy_to_image(result.label_image(), "mono16")
    rows.append(("label image -> mono16 msg", _time(
        lambda: numpy_to_image(result.label_image(), "mono16"), args.repeats), True))
    rows.append(("  of which label image (uint16)", _time(result.label_image, args.repeats), False))
    rows.append(("publish label image", _time(lambda: label_pub.publish(label_msg), args.repeats), True))
    default_total = sum(t for _, t, counted in rows if counted)
    overlay_ms = _time(lambda: draw_overlay(rgb, masks, boxes, list(range(1, n + 1))),
                       max(5, args.repeats // 5))
    node.destroy_node()
    rclpy.shutdown()

    print(f"\nNode overhead per 640x480 frame, {n} instances, {args.repeats} repeats "
          f"({os.cpu_count()} CPUs; torch/ORT not involved)\n")
    print(f"| {'step':40s} | {'ms':>7s} |")
    print(f"|{'-' * 42}|{'-' * 9}|")
    for name, ms, _ in rows:
        print(f"| {name:40s} | {ms:7.2f} |")
    print(f"| {'TOTAL (default outputs)':40s} | {default_total:7.2f} |")
    print(f"| {'overlay drawing (publish_overlay, off)':40s} | {overlay_ms:7.2f} |")
    print(f"\ntarget <= 5 ms: {'met' if default_total <= 5.0 else 'NOT met'} "
          f"(ratio {default_total / 5.0:.2f} of budget)")


if __name__ == "__main__":
    main()
