"""Test-only oracles: Meta's ``segment_anything`` and MobileSAM's ``mobile_sam`` (PyPI
``mobilesam-mirror``), imported with small stand-ins for torchvision and timm.

Why stand-ins: PyPI's torchvision wheels do not load beside the CPU torch these machines use
("operator torchvision::nms does not exist"), and timm imports torchvision. The oracles use only
a few helpers of those packages; the stand-ins below implement exactly those, the same way:
- ``torchvision.transforms.functional.resize`` / ``to_pil_image``: SAM's ResizeLongestSide hands
  a PIL image to ``resize``, which for PIL inputs is ``img.resize((w, h), BILINEAR)``.
- ``torchvision.ops.boxes.batched_nms`` / ``box_area``: used by the automatic mask generators.
- ``timm.models.layers.DropPath`` (identity in eval, and drop_path_rate is 0 in MobileSAM),
  ``to_2tuple``, ``trunc_normal_`` and ``timm.models.registry.register_model``.
The product never imports these modules (a test checks that).
"""
from __future__ import annotations

import collections.abc
import importlib
import importlib.machinery
import sys
import types
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn


def _resize(img: Any, size: Any, interpolation: Any = None, max_size: Any = None,
            antialias: Any = True) -> Any:
    if not isinstance(img, Image.Image):
        raise TypeError("stand-in resize handles PIL images only (all the oracles pass)")
    h, w = (size, size) if isinstance(size, int) else size
    return img.resize((int(w), int(h)), Image.BILINEAR)


def _to_pil_image(pic: Any, mode: Any = None) -> Image.Image:
    arr = np.asarray(pic)
    if arr.dtype != np.uint8:
        raise TypeError("stand-in to_pil_image handles uint8 arrays only")
    return Image.fromarray(arr, mode)


def _box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    order = torch.argsort(scores, descending=True)
    keep: list[int] = []
    area = _box_area(boxes)
    while order.numel():
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        lt = torch.maximum(boxes[i, :2], boxes[rest, :2])
        rb = torch.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = (rb - lt).clamp(min=0).prod(1)
        iou = inter / (area[i] + area[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.tensor(keep, dtype=torch.int64)


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                 iou_threshold: float) -> torch.Tensor:
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return _nms(boxes + offsets[:, None], scores, iou_threshold)


class _DropPath(nn.Module):
    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        if drop_prob:
            raise ValueError("stand-in DropPath supports drop_prob 0 only (MobileSAM uses 0)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _to_2tuple(x: Any) -> Any:
    if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
        return tuple(x)
    return (x, x)


def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)  # torch.onnx probes __spec__
    mod.__dict__.update(attrs)
    mod.__dict__["__litesam_stand_in__"] = True
    return mod


def install_stand_ins() -> None:
    """Put the torchvision and timm stand-ins in sys.modules (idempotent; real ones win if
    they import, which they do not on these machines)."""
    if getattr(sys.modules.get("torchvision"), "__litesam_stand_in__", False):
        return
    fn = _module("torchvision.transforms.functional", resize=_resize,
                 to_pil_image=_to_pil_image)
    boxes = _module("torchvision.ops.boxes", batched_nms=_batched_nms, box_area=_box_area)
    ops = _module("torchvision.ops", boxes=boxes, batched_nms=_batched_nms, box_area=_box_area)
    transforms = _module("torchvision.transforms", functional=fn)
    tv = _module("torchvision", transforms=transforms, ops=ops)
    layers = _module("timm.models.layers", DropPath=_DropPath, to_2tuple=_to_2tuple,
                     trunc_normal_=nn.init.trunc_normal_)
    registry = _module("timm.models.registry", register_model=lambda fn: fn)
    models = _module("timm.models", layers=layers, registry=registry)
    timm = _module("timm", models=models)
    sys.modules.update({
        "torchvision": tv, "torchvision.transforms": transforms,
        "torchvision.transforms.functional": fn, "torchvision.ops": ops,
        "torchvision.ops.boxes": boxes, "timm": timm, "timm.models": models,
        "timm.models.layers": layers, "timm.models.registry": registry})


def import_oracle(name: str) -> types.ModuleType:
    """``segment_anything`` or ``mobile_sam``, imported with the stand-ins installed."""
    if name not in ("segment_anything", "mobile_sam"):
        raise ValueError(f"unknown oracle {name!r}")
    install_stand_ins()
    return importlib.import_module(name)
