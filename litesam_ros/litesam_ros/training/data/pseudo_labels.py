"""A teacher's cached segment-everything masks as a dataset: data spec ``{"type":
"pseudo_labels", "images": <unlabeled data spec>, "labels": <label dir>}``.

The label folder holds ``shard_NNNNN.json`` files ({image key: {"hw", "rles"}}, COCO RLE
through pycocotools) that ``training.distill.labels`` writes.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from .samples import Sample
from .unlabeled import UnlabeledImages


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


__all__ = ["PseudoLabelDataset", "encode_rles", "decode_rles"]
