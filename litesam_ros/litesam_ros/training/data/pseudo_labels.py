"""A teacher's cached segment-everything masks as a dataset: data spec ``{"type":
"pseudo_labels", "images": <unlabeled data spec>, "labels": <label dir>}``.

The label folder holds ``shard_NNNNN.json`` files ({image key: {"hw", "rles"}}, COCO RLE
through pycocotools) that ``training.distill.labels`` writes.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from ...masks import decode_rles
from .samples import Sample
from .unlabeled import UnlabeledImages


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


__all__ = ["PseudoLabelDataset"]
