"""Tracking ID stability on the synthetic MotionScene (tracking_eval.py): exact CLEAR-MOT
counts of MaskTracker with the node's default settings (track_max_age 5, track_iou_gate 0.3)
and a few variations. Deterministic (seeded); no model, no ROS.

    .venv/bin/python benchmarks/bench_tracking.py [--frames 200] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout

from litesam_ros.camera.tracking import MaskTracker, TrackerSettings  # noqa: E402
from tracking_eval import MotionScene, run_tracker  # noqa: E402

SCENES = {
    "default (8 objects, miss 0.1, fp 0.2, speed 6 px)": MotionScene(),
    "fast (speed 20 px/frame)": MotionScene(max_speed=20.0),
    "crowded (16 objects)": MotionScene(objects=16),
    "noisy (miss 0.3, jitter 4 px)": MotionScene(miss_rate=0.3, jitter=4),
}
SETTINGS = {
    "node default (max_age 5, gate 0.3, motion)": TrackerSettings(),
    "no motion term": TrackerSettings(motion=False),
    "max_age 0": TrackerSettings(max_age=0),
}


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--frames", "5", "--seeds", "1"]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    rows = []
    print("| scene | tracker | GT | misses | FP | ID switches | MOTA | IDs kept (pairs) | ms/frame |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scene_name, scene in SCENES.items():
        for set_name, settings in SETTINGS.items():
            total = {"gt": 0, "misses": 0, "false_positives": 0, "id_switches": 0}
            pairs = kept = 0
            t0 = time.perf_counter()
            for seed in range(args.seeds):
                s = MotionScene(**{**scene.__dict__, "seed": seed})
                counts, _ = run_tracker(s, args.frames, MaskTracker(settings))
                for k in total:
                    total[k] += getattr(counts, k)
                pairs += counts.pairs
                kept += counts.pairs_kept
            ms = (time.perf_counter() - t0) * 1e3 / (args.frames * args.seeds)
            mota = 1 - (total["misses"] + total["false_positives"] + total["id_switches"]) / total["gt"]
            row = {"scene": scene_name, "tracker": set_name, **total, "mota": round(mota, 4),
                   "pairs": pairs, "pairs_kept": kept, "ms_per_frame_incl_scene": round(ms, 2)}
            rows.append(row)
            print(f"| {scene_name} | {set_name} | {total['gt']} | {total['misses']} | "
                  f"{total['false_positives']} | {total['id_switches']} | {mota:.4f} | "
                  f"{kept / pairs:.4f} ({kept}/{pairs}) | {ms:.1f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
