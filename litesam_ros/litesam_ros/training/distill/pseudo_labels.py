"""The ``pseudo_labels`` recipe: the teacher's segment-everything masks as training labels.

The label cache (``labels``) is filled first; then the student trains on it with the ordinary
trainer (AutoPPN targets, prompt sampling, mask losses, resume, DDP, checkpoints), as if they
were human labels: data type ``pseudo_labels`` (``training.data.pseudo_labels``).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict

import torch
import torch.distributed as dist

from ..checkpoints import save_model
from ..data.unlabeled import UnlabeledImages
from ..supervised.trainer import TrainConfig, start_run, train
from .config import DistillConfig
from .labels import build_labels, label_dir
from .student import build_cache, default_freeze, init_student, load_teacher
from .teacher_masks import everything_settings, model_segmenter

logger = logging.getLogger(__name__)


def run_pseudo_labels(cfg: DistillConfig, resume: bool = True) -> Dict[str, Any]:
    """Label cache (teacher), then the trainer on it (student); see the module docstring."""
    # this rank's GPU (cuda:LOCAL_RANK) is the current device before any barrier or cache
    rank, world, device = start_run(cfg.threads, cfg.device)
    cfg = dataclasses.replace(cfg, device=str(device))  # the cache's and labels' device
    loaded = load_teacher(cfg.teacher, cfg.device)
    teacher, teacher_id = loaded.model, loaded.model_id
    images = UnlabeledImages(cfg.data)
    emb_cache = None
    cache_stats: Dict[str, Any] = {}
    if cfg.use_cache:
        emb_cache, cache_stats = build_cache(cfg, teacher, teacher_id, images, rank, world)
    # segment's segment-everything with the teacher's thresholds (explicit, then its file's)
    segmenter = model_segmenter(teacher, everything_settings(cfg.everything), loaded.thresholds,
                                loaded.iou_calibration)
    out_dir = label_dir(cfg.cache_dir, teacher_id, segmenter, cfg.data)
    stats = build_labels(segmenter, images, out_dir, cfg.shard_size, emb_cache,
                         cfg.progress and rank == 0, rank, world)
    if world > 1:
        dist.barrier()
    # the student's starting weights as a file the trainer's init_from reads
    init_file = cfg.checkpoint + ".init.pt"
    for f in (cfg.checkpoint, cfg.log_file):
        if f and rank == 0:
            os.makedirs(os.path.dirname(os.path.abspath(f)), exist_ok=True)
    fresh = not (resume and os.path.exists(cfg.checkpoint))
    info: Dict[str, Any] = {}
    student, info = init_student(cfg, teacher)
    if fresh and rank == 0:
        save_model(student, init_file, info)
    if world > 1:
        dist.barrier()
    freeze = cfg.freeze if cfg.freeze is not None else default_freeze(cfg.recipe, student)
    meta = {"distill": {"recipe": cfg.recipe, "teacher": str(cfg.teacher),
                        "teacher_id": teacher_id, "teacher_config": teacher.config.name,
                        "student": cfg.student if isinstance(cfg.student, str) else
                        student.config.name, "freeze": freeze, "labels": out_dir,
                        "config": dataclasses.asdict(cfg)},
            **{k: v for k, v in info.items() if k != "init"}}
    keys = {f.name for f in dataclasses.fields(TrainConfig)}
    common = {k: getattr(cfg, k) for k in (
        "checkpoint", "state_path", "steps", "batch_size", "lr", "min_lr_frac", "weight_decay",
        "warmup_steps", "grad_clip", "seed", "threads", "device", "ckpt_every_steps",
        "ckpt_every_seconds", "max_seconds", "max_cpu_seconds", "stop_after", "log_every", "log_file", "progress")}
    common.update(init_from=init_file, freeze=freeze, metadata=meta,
                  data={"type": "pseudo_labels", "images": cfg.data, "labels": out_dir})
    extra = dict(cfg.train)
    bad = set(extra) - keys
    if bad:
        raise ValueError(f"train: unknown trainer keys {sorted(bad)}")
    common.update(extra)
    res = train(TrainConfig.from_dict(common), resume=resume)
    res.update(recipe=cfg.recipe, teacher_id=teacher_id, cache=cache_stats, labels=stats,
               skipped_images=images.skipped)
    return res


__all__ = ["run_pseudo_labels"]
