"""The pseudo-label cache: the teacher's segment-everything masks on every unlabeled image.

The teacher runs grid segment-everything (``training.evaluation.everything``, its own IoU /
stability / NMS filters) on each image; the masks are stored as COCO RLE (pycocotools) in
``<cache_dir>/pseudo_<teacher id>_<filters hash>/shard_NNNNN.json`` ({image key: {"hw",
"rles"}}), one file per shard of the image list, written atomically: an interrupted run resumes
at the first missing shard. The teacher's embedding comes from the teacher cache.
``training.data.pseudo_labels`` reads them back as a dataset.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import TYPE_CHECKING, Any, Dict, Optional

import torch
from tqdm import tqdm

from ...masks import encode_rle
from ..data.unlabeled import UnlabeledImages
from ..evaluation.everything import EverythingConfig, segment_everything
from .teacher_cache import TeacherCache, safe_name

if TYPE_CHECKING:
    from litesam_ros.model import SamModel


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
            shard[key] = {"hw": list(image.shape[:2]), "rles": encode_rle(masks)}
            stats["images"] += 1
            stats["masks"] += len(masks)
        path = os.path.join(out_dir, f"shard_{k:05d}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(shard, f)
        os.replace(path + ".tmp", path)
        stats["shards_built"] += 1
    stats["seconds"] = time.time() - t0
    return stats


__all__ = ["label_dir", "build_labels"]
