"""Soak: a 30 Hz 640x480 camera into litesam_node (a separate process) for minutes.

Checks what a slow model must not do to a robot: grow a queue or memory. Samples the node's RSS
(/proc) and its /diagnostics counters; prints a table and the RSS growth after warm-up.
Not a test.

    .venv/bin/python benchmarks/soak_node.py --seconds 300 [--model ...] [--backend onnxruntime]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
from skimage import data as skdata

REPO = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--model", "{tiny}", "--seconds", "2", "--warmup", "0", "--domain-id", "{domain}",
         "--cache-dir", "{cache}"]  # {cache}: the tiny graphs exported once a run


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=60.0, help="RSS baseline taken after this")
    ap.add_argument("--model", default="")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--domain-id", type=int, default=202)
    ap.add_argument("--cache-dir", default="", help="node's engine cache (default: a fresh one)")
    args = ap.parse_args(argv)

    from litesam_ros.model.resources import default_model
    from litesam_ros.ros.process_env import child_ros_environment

    profile = str(REPO / "config" / "fastdds_shm.xml")
    os.environ.update(ROS_DOMAIN_ID=str(args.domain_id), FASTDDS_DEFAULT_PROFILES_FILE=profile)
    ros_home = tempfile.mkdtemp(prefix="litesam_soak_")
    exe = Path(sys.executable).parent / "litesam_node"
    cache = args.cache_dir or f"{ros_home}/cache"
    cmd = [str(exe), "--ros-args", "--params-file", str(REPO / "config" / "litesam.yaml"),
           "-p", f"model:={args.model or default_model()}", "-p", f"backend:={args.backend}",
           "-p", "precision:=fp32", "-p", f"engine_cache_dir:={cache}"]
    log = open(Path(ros_home) / "node.log", "wb")
    node_proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                 env=child_ros_environment(args.domain_id, ROS_HOME=ros_home))

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from litesam_ros.ros.image_conversion import numpy_to_image

    rclpy.init()
    node = rclpy.create_node("soak_camera")
    latest: dict[str, str] = {}

    def on_diag(msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith("litesam_ros"):
                latest.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    frame = numpy_to_image(cv2.resize(skdata.astronaut(), (640, 480)), "rgb8")
    rows: list[tuple[float, float, str, str, str, str]] = []
    try:
        while pub.get_subscription_count() == 0:
            if node_proc.poll() is not None:
                print(Path(ros_home, "node.log").read_text()[-2000:])
                return 1
            rclpy.spin_once(node, timeout_sec=0.1)
        t0 = time.monotonic()
        next_sample, sent = t0, 0
        while time.monotonic() - t0 < args.seconds:
            frame.header.stamp = node.get_clock().now().to_msg()
            pub.publish(frame)
            sent += 1
            deadline = t0 + sent / args.rate
            while time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= next_sample:
                rows.append((time.monotonic() - t0, rss_mb(node_proc.pid),
                             latest.get("frames_received", "?"), latest.get("frames_processed", "?"),
                             latest.get("frames_dropped", "?"), latest.get("latency_mean_ms", "?")))
                next_sample += 15.0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        node_proc.send_signal(signal.SIGINT)
        node_proc.wait(30)

    print(f"\nSoak: {args.rate:.0f} Hz 640x480 rgb8 for {args.seconds:.0f} s, backend "
          f"{args.backend}, {os.cpu_count()} CPUs; frames sent {sent}\n")
    print("| t (s) | node RSS (MB) | received | processed | dropped | latency mean (ms) |")
    print("|------:|--------------:|---------:|----------:|--------:|------------------:|")
    for t, rss, rec, proc, drop, lat in rows:
        print(f"| {t:5.0f} | {rss:13.1f} | {rec:>8s} | {proc:>9s} | {drop:>7s} | {lat:>17s} |")
    base = [r[1] for r in rows if r[0] >= args.warmup]
    if len(base) >= 2:
        growth = (base[-1] - base[0]) / base[0] * 100.0
        print(f"\nRSS after warm-up: {base[0]:.1f} -> {base[-1]:.1f} MB ({growth:+.2f} %); "
              f"target < 5 %: {'met' if abs(growth) < 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
