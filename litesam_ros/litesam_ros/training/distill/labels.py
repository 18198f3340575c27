"""The pseudo-label cache: the teacher's segment-everything masks on every unlabeled image.

The teacher runs segment's own segment-everything on each image (``teacher_masks``: the
Segmenter's strategy, filters and box NMS, with the teacher's thresholds); the masks are stored
as COCO RLE (pycocotools) in ``<cache_dir>/pseudo_<teacher id>_<labelling hash>/shard_NNNNN.json``
({image key: {"hw", "rles"}}), one file per shard of the image list, written atomically: an
interrupted run resumes at the first missing shard. The hash covers the resolved settings and
the IoU calibration, so a change of labelling never reuses an old cache. The teacher's
embedding comes from the teacher cache.
``training.data.pseudo_labels`` reads them back as a dataset.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Dict, Optional

import torch
from tqdm import tqdm

from ...masks import encode_rle
from ..data.unlabeled import UnlabeledImages
from ...segment.pipeline import Segmenter
from .teacher_cache import TeacherCache, safe_name
from .teacher_masks import segment_masks

#: names the labelling in the cache hash (the former grid code's caches hash differently)
LABELLING = "segment.Segmenter"
#: settings that do not change the masks, left out of the hash
_NOT_HASHED = ("postprocess_threads", "points_per_batch")


def label_dir(cache_dir: str, teacher_id: str, segmenter: Segmenter, data: Dict[str, Any]
              ) -> str:
    """The label cache of this teacher, labelling (resolved settings, IoU calibration) and
    image list."""
    settings = {k: v for k, v in segmenter.settings.to_dict().items() if k not in _NOT_HASHED}
    labelling = [LABELLING, settings, segmenter.backend.iou_calibration]
    tag = hashlib.sha256(json.dumps([labelling, data], sort_keys=True,
                                    default=str).encode()).hexdigest()[:10]
    return os.path.join(cache_dir, f"pseudo_{safe_name(teacher_id)}_{tag}")


@torch.no_grad()
def build_labels(teacher: Segmenter, images: UnlabeledImages, out_dir: str,
                 shard_size: int, emb_cache: Optional[TeacherCache] = None,
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
            masks = segment_masks(teacher, image, None if emb is None else emb.float()[None])
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


__all__ = ["LABELLING", "label_dir", "build_labels"]
