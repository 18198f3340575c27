#!/usr/bin/env python3
"""Time segment-anything's SamAutomaticMaskGenerator (ViT-B, default settings, random weights)
on the same photo as bench_pipeline.py: the "what users would use instead" row.

segment-anything imports torchvision, whose compiled ops do not load beside the CPU torch 2.13 of
the project venv, so this runs in its own optional venv:

    python3 -m venv .venv-sam
    .venv-sam/bin/pip install torch==2.14.1 torchvision==0.29.1 segment-anything \
        opencv-python-headless scikit-image
    .venv-sam/bin/python benchmarks/bench_sam_amg.py --threads 2 --json cache/bench/sam_amg.json
    .venv/bin/python benchmarks/bench_pipeline.py --sam-json cache/bench/sam_amg.json

Without that venv the script says so and exits 0 (skipped), so it never breaks a run.
Random weights: timings are what matter (mask counts after the default filters are arbitrary).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

VENV_HINT = ("python3 -m venv .venv-sam && .venv-sam/bin/pip install torch==2.14.1 "
             "torchvision==0.29.1 segment-anything opencv-python-headless scikit-image")


def _imports() -> Optional[str]:
    """None when segment-anything and a working torchvision import, else the reason."""
    try:
        import torchvision  # noqa: F401
        from torchvision.ops import nms  # noqa: F401  (fails when the compiled ops don't load)
        import torch

        nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
        import segment_anything  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import problem means "skip"
        return f"{type(exc).__name__}: {exc}"
    return None


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--points-per-side", "2", "--threads", "1"]


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", default="astronaut", help="skimage.data image name")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="write {'amg_s', 'encoder_s', ...} here")
    ap.add_argument("--points-per-side", type=int, default=32)
    args = ap.parse_args(argv)

    reason = _imports()
    if reason is not None:
        print(f"SKIPPED: segment-anything with a working torchvision is not importable here "
              f"({reason}).\nCreate its own venv: {VENV_HINT}")
        return 0

    import numpy as np
    import torch
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry
    from skimage import data

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    img = np.ascontiguousarray(getattr(data, args.image)()[..., :3])
    sam = sam_model_registry["vit_b"](checkpoint=None).eval()
    predictor = SamPredictor(sam)
    t0 = time.perf_counter()
    predictor.set_image(img)
    t_enc = time.perf_counter() - t0
    h, w = img.shape[:2]
    box = np.array([w * 0.2, h * 0.1, w * 0.6, h * 0.5])
    predictor.predict(box=box, multimask_output=False)
    t0 = time.perf_counter()
    predictor.predict(box=box, multimask_output=False)
    t_box = time.perf_counter() - t0
    amg = SamAutomaticMaskGenerator(sam, points_per_side=args.points_per_side)
    t0 = time.perf_counter()
    masks = amg.generate(img)
    t_amg = time.perf_counter() - t0
    out = {"amg_s": t_amg, "encoder_s": t_enc, "one_box_s": t_box, "masks": len(masks),
           "image": args.image, "threads": args.threads, "torch": torch.__version__}
    print(f"SAM ViT-B on {args.image} {w}x{h}, {args.threads} threads: encoder {t_enc:.1f} s, "
          f"one box {t_box * 1e3:.0f} ms, SamAutomaticMaskGenerator {t_amg:.1f} s "
          f"({len(masks)} masks)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
