#!/usr/bin/env python3
"""CPU per received camera frame: a lifecycle node like litesam_node spun by a
MultiThreadedExecutor(3) (services, a timer, a sensor-QoS subscription with a QoS event
callback) receiving the frames itself, against the node's CameraReceiver (the subscription on a
helper node with its own SingleThreadedExecutor thread). A child process publishes 640x272 rgb8
frames at 25 Hz over real DDS; the figure is the receiving process's CPU time over the frames
it got (ros/camera_receiver.py; docs/benchmarks.md, "make demo frame rate").

    .venv/bin/python benchmarks/bench_camera_receive.py --rounds 2
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout

VARIANTS = ("node's MultiThreadedExecutor", "CameraReceiver (shipped)")


def publish(seconds: float, rate: float) -> None:
    """The child process: 640x272 rgb8 frames at ``rate`` Hz for ``seconds``."""
    import numpy as np
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    pub = node.create_publisher(Image, "/bench/image", qos_profile_sensor_data)
    frame = np.random.default_rng(0).integers(0, 255, (272, 640, 3), np.uint8)
    msg = Image(height=272, width=640, encoding="rgb8", step=640 * 3)
    msg.data = frame.tobytes()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pub.publish(msg)
        time.sleep(1.0 / rate)
    rclpy.shutdown()


def receive(variant: str, seconds: float, warmup: float) -> tuple[int, float]:
    """(frames received, process CPU seconds) over ``seconds`` after ``warmup``."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.lifecycle import LifecycleNode
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_srvs.srv import Trigger

    from litesam_ros.ros.camera_receiver import CameraReceiver
    from litesam_ros.ros.inputs import SubscriptionEventCallbacks

    context = rclpy.Context()
    rclpy.init(context=context)
    node = LifecycleNode("litesam", context=context)
    for name in ("~/segment", "~/reset_tracks"):
        node.create_service(Trigger, name, lambda req, res: res)
    node.create_timer(1.0, lambda: None)
    got = [0]
    events = SubscriptionEventCallbacks(incompatible_qos=lambda event: None)
    receiver = CameraReceiver(node) if variant == VARIANTS[1] else None
    owner = receiver if receiver is not None else node
    owner.create_subscription(Image, "/bench/image", lambda m: got.__setitem__(0, got[0] + 1),
                              qos_profile_sensor_data, event_callbacks=events)
    if receiver is not None:
        receiver.start()
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    time.sleep(warmup)
    t0, n0 = os.times(), got[0]
    time.sleep(seconds)
    t1, n1 = os.times(), got[0]
    cpu = (t1.user - t0.user) + (t1.system - t0.system)
    if receiver is not None:
        receiver.close()
    executor.shutdown(timeout_sec=5.0)
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    return n1 - n0, cpu


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--rounds", "1", "--seconds", "0.5", "--domain", "{domain}"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rate", type=float, default=25.0)
    ap.add_argument("--domain", type=int, default=87, help="ROS_DOMAIN_ID for both processes")
    ap.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)  # the child
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # the child
    args = ap.parse_args(argv)
    if args.publish:
        publish(args.seconds, args.rate)
        return 0
    if args.variant:
        n, cpu = receive(args.variant, args.seconds, 2.0)
        print(f"{n} {cpu}")
        return 0
    env = {**os.environ, "ROS_DOMAIN_ID": str(args.domain)}
    print(f"640x272 rgb8 at {args.rate:g} Hz, {args.seconds:g} s per run, domain {args.domain}; "
          f"load {' '.join(open('/proc/loadavg').read().split()[:3])}\n")
    print("| round | receiving | frames | process CPU | CPU per frame |")
    print("|---|---|---|---|---|")
    me = [sys.executable, __file__]
    for r in range(args.rounds):
        for variant in VARIANTS:
            pub = subprocess.Popen(me + ["--publish", "--seconds", str(args.seconds + 4),
                                         "--rate", str(args.rate)], env=env)
            out = subprocess.run(me + ["--variant", variant, "--seconds", str(args.seconds)],
                                 env=env, capture_output=True, text=True, check=True)
            pub.wait()
            n, cpu = out.stdout.split()[-2:]
            per = float(cpu) / max(int(n), 1) * 1e3
            print(f"| {r + 1} | {variant} | {n} | {float(cpu):.2f} s | {per:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
