"""``pseudo_labels``: the teacher's segment-everything masks as training labels.

1. Label cache: the teacher's grid segment-everything (``training.everything``, its own IoU /
   stability / NMS filters) on every unlabeled image, stored as COCO RLE (pycocotools) in
   ``<cache_dir>/pseudo_<teacher id>_<filters hash>/shard_NNNNN.json`` ({image key: {"hw",
   "rles"}}), one file per shard of the image list, written atomically: an interrupted run
   resumes at the first missing shard. The teacher's embedding comes from the teacher cache.
2. The student trains on them with the ordinary trainer (AutoPPN targets, prompt sampling, mask
   losses, resume, DDP, checkpoints), as if they were human labels: data type ``pseudo_labels``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from . import modelio
from .datasets import Sample
from .everything import EverythingConfig, segment_everything
from .teacher_cache import TeacherCache, safe_name
from .unlabeled import UnlabeledImages

if TYPE_CHECKING:
    from litesam_ros.model import SamModel
    from .distill_config import DistillConfig

logger = logging.getLogger(__name__)


def encode_rles(masks: torch.Tensor) -> List[Dict[str, Any]]:
    from pycocotools import mask as mask_utils

    out = []
    for m in masks.cpu().numpy().astype(np.uint8):
        rle = mask_utils.encode(np.asfortranarray(m))
        out.append({"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()})
    return out


def decode_rles(rles: List[Dict[str, Any]], hw: Tuple[int, int]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if not rles:
        return np.zeros((0, *hw), bool)
    return np.stack([mask_utils.decode({"size": r["size"], "counts": r["counts"].encode()})
                     for r in rles]).astype(bool)


def label_dir(cache_dir: str, teacher_id: str, ev: EverythingConfig, data: Dict[str, Any]
              ) -> str:
    tag = hashlib.sha256(json.dumps([dataclasses.asdict(ev), data], sort_keys=True,
                                    default=str).encode()).hexdigest()[:10]
    return os.path.join(cache_dir, f"pseudo_{safe_name(teacher_id)}_{tag}")


@torch.no_grad()
def build_labels(teacher: SamModel, images: UnlabeledImages, out_dir: str,
                 ev: EverythingConfig, shard_size: int, emb_cache: Optional[TeacherCache] = None,
                 progress: bool = True, rank: int = 0, world: int = 1) -> Dict[str, Any]:
    """Write every missing label shard (rank r does shards k % world == r)."""
    os.makedirs(out_dir, exist_ok=True)
    n_sh = (len(images) + shard_size - 1) // shard_size
    todo = [k for k in range(n_sh) if k % world == rank and
            not os.path.exists(os.path.join(out_dir, f"shard_{k:05d}.json"))]
    stats: Dict[str, Any] = {"shards_built": 0, "shards_present": n_sh - len(todo), "images": 0,
                             "masks": 0, "skipped": 0}
    t0 = time.time()
    for k in tqdm(todo, disable=not progress, desc="pseudo labels", dynamic_ncols=True):
        shard: Dict[str, Any] = {}
        for i in range(k * shard_size, min(len(images), (k + 1) * shard_size)):
            got = images.item(i)
            if got is None:
                stats["skipped"] += 1
                continue
            image, key = got
            emb = emb_cache.get(key) if emb_cache is not None else None
            masks = segment_everything(teacher, image, ev,
                                       None if emb is None else emb.float()[None])
            shard[key] = {"hw": list(image.shape[:2]), "rles": encode_rles(masks)}
            stats["images"] += 1
            stats["masks"] += len(masks)
        path = os.path.join(out_dir, f"shard_{k:05d}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(shard, f)
        os.replace(path + ".tmp", path)
        stats["shards_built"] += 1
    stats["seconds"] = time.time() - t0
    return stats


class PseudoLabelDataset:
    """Samples (augmented image, teacher masks) for the trainer: data spec ``{"type":
    "pseudo_labels", "images": <unlabeled data spec>, "labels": <label dir>}``."""

    def __init__(self, spec: Dict[str, Any]) -> None:
        self.images = UnlabeledImages(spec["images"])
        self.labels: Dict[str, Any] = {}
        d = spec["labels"]
        for n in sorted(os.listdir(d)):
            if n.startswith("shard_") and n.endswith(".json"):
                with open(os.path.join(d, n)) as f:
                    self.labels.update(json.load(f))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Sample:
        for j in range(len(self.images)):  # unreadable / unlabeled: the next item
            got = self.images.item((i + j) % len(self.images))
            if got is not None and got[1] in self.labels:
                image, key = got
                lab = self.labels[key]
                return Sample(image, decode_rles(lab["rles"], tuple(lab["hw"])), None, key)
        raise RuntimeError("no pseudo-labelled image is readable")


def run_pseudo_labels(cfg: DistillConfig, resume: bool = True) -> Dict[str, Any]:
    """Label cache (teacher), then the trainer on it (student); see the module docstring."""
    from .distill import build_cache, default_freeze, dist_info, init_student, load_teacher
    from .trainer import TrainConfig, train

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cfg.device.startswith("cuda") else "gloo")
    rank, world = dist_info()
    teacher, teacher_id = load_teacher(cfg.teacher, cfg.device if world == 1 else "cpu")
    images = UnlabeledImages(cfg.data)
    emb_cache = None
    cache_stats: Dict[str, Any] = {}
    if cfg.use_cache:
        emb_cache, cache_stats = build_cache(cfg, teacher, teacher_id, images, rank, world)
    ev = EverythingConfig.from_dict(cfg.everything)
    out_dir = label_dir(cfg.cache_dir, teacher_id, ev, cfg.data)
    stats = build_labels(teacher.cpu(), images, out_dir, ev, cfg.shard_size, emb_cache,
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
        modelio.save(student, init_file, info)
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


__all__ = ["PseudoLabelDataset", "build_labels", "run_pseudo_labels", "encode_rles",
           "decode_rles", "label_dir"]
