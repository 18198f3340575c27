"""Every registry model in torch.float16 encodes and decodes on the CPU (issue 32.3).

The torch backend runs ``precision: auto`` as fp16 on CUDA; a float32 tensor made inside a
model (an ``arange``, a ``.to(float32)``) then meets the fp16 weights and fails there ("expected
m1 and m2 to have the same dtype"). The CPU has fp16 kernels for every op here, so the same
failure shows on it. Each registry config runs at 64 px with one block per stage (two for
SAM's ViT, so both its windowed and its global attention run): the same code paths as the
full-size networks, 0.3 to 3 s each on two busy cores (SAM ViT-H the slowest); the full sizes
(SAM ViT-H at 1024 px) take minutes in fp16 on a CPU.
"""
from __future__ import annotations

import pytest
import torch

from litesam_ros.model import build_model, get_config
from litesam_ros.model.registry import list_models
from small_models import smoke_config


@pytest.mark.parametrize("name", list_models())
def test_fp16_encode_and_decode(name: str) -> None:
    torch.manual_seed(0)
    cfg = smoke_config(get_config(name))
    model = build_model(cfg).eval()
    x = torch.randn(1, 3, cfg.image_size, cfg.image_size)
    coords = torch.tensor([[[30.0, 40.0], [0.0, 0.0]], [[20.0, 25.0], [90.0, 100.0]]])
    labels = torch.tensor([[1.0, -1.0], [2.0, 3.0]])  # a point (padded), a box
    with torch.no_grad():
        emb32, _ = model.encode(x)
        logits32, _ = model.decode(emb32, coords, labels)
        half = model.half()
        emb, props = half.encode(x.half())
        logits, iou = half.decode(emb, coords.half(), labels.half())
    assert emb.dtype == logits.dtype == iou.dtype == torch.float16
    assert logits.shape == logits32.shape and iou.shape == (2, logits.shape[1])
    assert torch.isfinite(emb).all() and torch.isfinite(logits).all()
    if props is not None:
        assert props.points.dtype == torch.float16 and torch.isfinite(props.scores).all()
    # the same network: fp16 stays near fp32 (random weights; measured at most 1.5e-2)
    rel = (logits.float() - logits32).norm() / logits32.norm()
    assert rel < 0.05, rel
