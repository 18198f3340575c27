"""masks.mask_boxes (vectorised; model.geometry's before) gives the boxes of the per-mask loop it
replaced and of the deprecated segment.postprocess.masks_to_boxes as the pipeline used it (+1 on
x1/y1, zeros when empty)."""
from __future__ import annotations

import pytest
import torch

from litesam_ros.masks import mask_boxes
from litesam_ros.model.geometry import Geometry
from litesam_ros.segment.postprocess import masks_to_boxes


def _loop_boxes(masks: torch.Tensor) -> torch.Tensor:
    """The loop that was model.geometry._boxes_of, kept as the oracle."""
    n = int(masks.shape[0])
    boxes = torch.zeros((n, 4), dtype=torch.float32)
    rows, cols = masks.any(2), masks.any(1)
    for i in range(n):
        ys, xs = torch.nonzero(rows[i]).flatten(), torch.nonzero(cols[i]).flatten()
        if len(ys):
            boxes[i] = torch.tensor([int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1],
                                    dtype=torch.float32)
    return boxes


def _pipeline_boxes(masks: torch.Tensor) -> torch.Tensor:
    """What segment.pipeline's _result computed when the geometry gave no boxes."""
    with pytest.deprecated_call():
        boxes = masks_to_boxes(masks)
    boxes[:, 2:] += 1.0
    boxes[~masks.flatten(1).any(1)] = 0.0
    return boxes


def _masks(h: int, w: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    m = torch.zeros(12, h, w, dtype=torch.bool)
    def draw(n: int) -> int:
        return int(torch.randint(n, (1,), generator=gen))

    for i in range(4, 12):  # random rectangles and scattered pixels
        y0, x0 = draw(h), draw(w)
        m[i, y0:y0 + 1 + draw(h), x0:x0 + 1 + draw(w)] = True
        m[i] |= torch.rand(h, w, generator=gen) > 0.995
    m[1] = True  # full
    m[2, -1, -1] = True  # the far corner only
    m[3, 0, 0] = True  # the near corner only
    return m  # m[0] stays empty


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (7, 1), (20, 30), (480, 640), (333, 517)])
def test_matches_the_loop_and_masks_to_boxes(h: int, w: int) -> None:
    for seed in range(3):
        m = _masks(h, w, seed)
        got = mask_boxes(m)
        assert got.dtype == torch.float32 and got.shape == (12, 4)
        assert torch.equal(got, _loop_boxes(m))
        assert torch.equal(got, _pipeline_boxes(m))
        assert got[0].tolist() == [0, 0, 0, 0] and got[1].tolist() == [0, 0, w, h]
        # a non-contiguous view gives the same boxes
        assert torch.equal(mask_boxes(m.transpose(1, 2)), _loop_boxes(m.transpose(1, 2)))


@pytest.mark.parametrize("shape", [(0, 5, 5), (3, 0, 4), (3, 4, 0), (0, 0, 0)])
def test_no_masks_or_no_pixels(shape: tuple[int, int, int]) -> None:
    m = torch.zeros(shape, dtype=torch.bool)
    assert torch.equal(mask_boxes(m), _loop_boxes(m))
    assert mask_boxes(m).shape == (shape[0], 4)


def test_the_full_up_sampling_path_uses_it() -> None:
    """Bicubic geometries (EfficientSAM) take the full path of upsample_masks."""
    g = Geometry(64, 16, resize="stretch", upsample="bicubic")
    logits = torch.randn(6, 16, 16, generator=torch.Generator().manual_seed(0)) * 3
    logits[0] = -10.0  # an empty mask
    masks, boxes = g.upsample_masks(logits, (64, 64), (50, 70), 0.0)
    assert torch.equal(boxes, _pipeline_boxes(masks)) and boxes[0].tolist() == [0, 0, 0, 0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_on_cuda() -> None:
    m = _masks(48, 64, 0)
    got = mask_boxes(m.cuda())
    assert got.device.type == "cuda" and torch.equal(got.cpu(), _loop_boxes(m))
