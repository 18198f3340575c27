import numpy as np
import pytest
import torch

from litesam_ros.segment.postprocess import (above, box_iou, count_true, masks_to_boxes, nms,
                                             remove_small_regions, stability_score)


def test_stability_score_matches_definition():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 12, 12, generator=g) * 3
    s = stability_score(logits, 0.5, 1.0)
    for i in range(5):
        inter = (logits[i] > 1.5).sum().item()
        union = (logits[i] > -0.5).sum().item()
        assert s[i].item() == pytest.approx(inter / union)
    assert stability_score(torch.full((1, 4, 4), -9.0), 0.0, 1.0).item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_above_and_count_true_equal_torchs_own_ops(dtype):
    """The numpy route they take on CPU gives torch's values, also on strided slices."""
    logits = (torch.randn(7, 40, 50, generator=torch.Generator().manual_seed(0)) * 4).to(dtype)
    logits[0] = -9.0  # an empty mask
    for x in (logits, logits[:, :31, 3:47], logits.transpose(1, 2)):
        for t in (-1.0, 0.0, 0.5):
            got = above(x, t)
            assert got.dtype == torch.bool and torch.equal(got, x > t)
            counts = count_true(got)
            assert counts.dtype == torch.int64
            assert torch.equal(counts, (x > t).flatten(1).sum(1))
    assert count_true(above(logits, 0.0))[0] == 0


def test_masks_to_boxes_matches_numpy():
    rng = np.random.default_rng(1)
    masks = np.zeros((6, 20, 30), bool)
    for m in masks[:5]:
        y0, x0 = rng.integers(0, 15), rng.integers(0, 25)
        m[y0:y0 + rng.integers(1, 6), x0:x0 + rng.integers(1, 6)] = True
    with pytest.deprecated_call():
        boxes = masks_to_boxes(torch.from_numpy(masks)).numpy()
    for m, b in zip(masks[:5], boxes[:5]):
        ys, xs = np.nonzero(m)
        assert b.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
    assert boxes[5].tolist() == [0, 0, 0, 0]


def _brute_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_box_iou_matches_brute_force():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 50, (7, 2))
    b = np.concatenate([xy, xy + rng.uniform(1, 30, (7, 2))], 1)
    got = box_iou(torch.tensor(b), torch.tensor(b)).numpy()
    want = np.array([[_brute_iou(p, q) for q in b] for p in b])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("thresh", [0.3, 0.7])
def test_nms_matches_brute_force_greedy(seed, thresh):
    rng = np.random.default_rng(seed)
    n = 60
    xy = rng.uniform(0, 40, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(3, 25, (n, 2))], 1)
    scores = rng.uniform(0, 1, n)
    order = list(np.argsort(-scores, kind="stable"))
    want = []
    while order:
        i = order.pop(0)
        want.append(i)
        order = [j for j in order if _brute_iou(boxes[i], boxes[j]) <= thresh]
    got = nms(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores), thresh)
    assert got.tolist() == want
    assert 0 < len(want) < n


def test_nms_empty():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_remove_small_regions_islands_and_holes():
    m = np.zeros((20, 20), bool)
    m[2:12, 2:12] = True
    m[5, 5] = False          # 1-pixel hole
    m[17:19, 17:19] = True   # 4-pixel island
    out, changed = remove_small_regions(m, 10, "islands")
    assert changed and not out[17:19, 17:19].any() and out[2:12, 2:12].sum() == 99
    out, changed = remove_small_regions(out, 10, "holes")
    assert changed and out[5, 5] and out.sum() == 100
    out2, changed = remove_small_regions(out, 10, "holes")
    assert not changed and (out2 == out).all()
    with pytest.raises(ValueError):
        remove_small_regions(m, 10, "nope")
