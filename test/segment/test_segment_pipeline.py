"""Segmenter on a deterministic fake backend (discs around points, boxes for box prompts)."""
import numpy as np
import pytest

from litesam_ros.segment import (InvalidImageError, InvalidPromptError, Prompt, SegmentError,
                                 Segmenter, SegmentSettings)
from litesam_ros.masks import decode_rle

LOOSE = SegmentSettings(pred_iou_thresh=0.0, stability_score_thresh=0.0, points_per_side=8,
                        points_per_batch=16)


def _image(h=120, w=160):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("strategy", ["autoppn", "grid", "hierarchical"])
def test_everything_strategies_return_consistent_results(fake_backend, strategy):
    seg = Segmenter(fake_backend, LOOSE)
    img = _image()
    res = seg.segment_everything(img, strategy=strategy)
    n = len(res)
    assert n > 0 and res.strategy == strategy
    assert res.masks.shape == (n, 120, 160) and res.masks.dtype == bool
    assert res.boxes.shape == (n, 4) and res.boxes.dtype == np.float32
    assert res.iou_scores.shape == res.stability_scores.shape == res.areas.shape == (n,)
    assert (res.areas == res.masks.reshape(n, -1).sum(1)).all() and (res.areas > 0).all()
    for m, b, r in zip(res.masks, res.boxes, res.rles()):
        ys, xs = np.nonzero(m)
        assert b.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert (decode_rle(r) == m).all()
    assert len(res.prompt_points) == n and res.prompt_points[0].shape == (1, 2)
    for k in ("preprocess", "encode", "decode", "postprocess", "total"):
        assert res.timings[k] >= 0
    lab = res.label_image()
    assert lab.max() <= n and lab.dtype == np.uint16


def test_autoppn_decodes_only_scored_proposals_in_chunks(fake_backend):
    seg = Segmenter(fake_backend, LOOSE.with_(points_per_batch=3, box_nms_thresh=1.0,
                                              ppn_nms_thresh=1.0))
    res = seg.segment_everything(_image(), strategy="autoppn")
    # 6 proposals, 2 padded with score 0 -> 4 decoded, in chunks of 3
    assert [p for p, _ in fake_backend.decode_calls] == [3, 1]
    # multimask: 3 discs per point; NMS off -> 12 masks, ordered by predicted IoU (0.9 first)
    assert len(res) == 12
    assert np.all(np.diff(res.iou_scores) <= 0)
    # prompt points come back in original pixels: proposals are at y = 0.3 * S (input frame)
    ys = np.array([p[0, 1] for p in res.prompt_points])
    np.testing.assert_allclose(ys, 0.3 * 64 * 160 / 64, rtol=1e-5)


def test_filters_thresholds_and_nms(fake_backend):
    img = _image()
    loose = LOOSE.with_(box_nms_thresh=1.0, max_instances=1000)
    base = Segmenter(fake_backend, loose).segment_everything(img, "grid")
    assert len(base) == 3 * 64  # 8x8 grid, 3 multimask outputs, nothing filtered
    res = Segmenter(fake_backend, loose.with_(pred_iou_thresh=0.85)).segment_everything(
        img, "grid")
    assert np.all(res.iou_scores > 0.85) and len(res) == 64
    nmsed = Segmenter(fake_backend, LOOSE.with_(box_nms_thresh=0.3)).segment_everything(
        img, "grid")
    assert 0 < len(nmsed) < len(base)
    capped = Segmenter(fake_backend, LOOSE.with_(max_instances=5)).segment_everything(img, "grid")
    assert len(capped) == 5


def test_hierarchical_skips_covered_points(fake_backend):
    # first pass: 4 points, discs of radius up to 6 low-res px, covered where logits > 6 (d < 2.4)
    s = LOOSE.with_(hierarchical_logit_thresh=6.0, points_per_side=8, points_per_batch=1000)
    Segmenter(fake_backend, s).segment_everything(_image(), "hierarchical")
    first, second = fake_backend.decode_calls
    assert first[0] == 4  # 8 // 4 = 2 per side
    assert 0 < second[0] < 64
    fake_backend.decode_calls.clear()
    Segmenter(fake_backend, s.with_(hierarchical_logit_thresh=100.0)).segment_everything(
        _image(), "hierarchical")
    assert [c[0] for c in fake_backend.decode_calls] == [4, 64]


def test_prompts_answered_in_order_with_boxes_in_original_pixels(fake_backend):
    seg = Segmenter(fake_backend, LOOSE)
    img = _image(120, 160)
    boxes = [[20, 30, 80, 90], [100, 10, 150, 50], [0, 0, 160, 120]]
    prompts = [Prompt(box=b) for b in boxes] + [Prompt(points=[[60, 60]], labels=[1])]
    res = seg.segment_prompts(img, prompts)
    assert len(res) == 4 and res.strategy == "prompts"
    for got, want in zip(res.boxes[:3], boxes):
        np.testing.assert_allclose(got, want, atol=3.0)
    np.testing.assert_allclose(res.prompt_boxes[0], boxes[0])
    assert res.prompt_boxes[3] is None and res.prompt_points[3].tolist() == [[60, 60]]
    # the point prompt's single mask (index 0) is a disc centred on the point
    cy, cx = np.argwhere(res.masks[3]).mean(0)
    assert abs(cx - 60) < 3 and abs(cy - 60) < 3
    assert res.iou_scores[3] == pytest.approx(0.5)
    multi = seg.segment_prompts(None, prompts[3:], multimask=True)
    assert multi.iou_scores[0] == pytest.approx(0.9) and multi.areas[0] > res.areas[3]


def test_prompts_reuse_cached_embedding(fake_backend):
    seg = Segmenter(fake_backend, LOOSE)
    with pytest.raises(InvalidImageError, match="no image"):
        seg.segment_prompts(None, [Prompt(box=[0, 0, 10, 10])])
    seg.set_image(_image())
    seg.segment_prompts(None, [Prompt(box=[0, 0, 10, 10])])
    seg.segment_prompts(None, [Prompt(box=[0, 0, 20, 10])])
    assert fake_backend.encode_calls == 1
    # prompts validated against the cached image's size, before any decoding
    n_calls = len(fake_backend.decode_calls)
    with pytest.raises(InvalidPromptError, match="outside"):
        seg.segment_prompts(None, [Prompt(box=[0, 0, 170, 10])])
    assert len(fake_backend.decode_calls) == n_calls


def test_too_many_prompts(fake_backend):
    seg = Segmenter(fake_backend, LOOSE.with_(max_prompts=2))
    with pytest.raises(InvalidPromptError, match="at most 2"):
        seg.segment_prompts(_image(), [Prompt(box=[0, 0, 10, 10])] * 3)
    assert fake_backend.encode_calls == 0


@pytest.mark.parametrize("image,message", [
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((10, 10), np.uint8), "H x W x 3"),
    (np.zeros((10, 10, 4), np.uint8), "H x W x 3"),
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    ([[1, 2, 3]], "numpy array"),
])
def test_bad_images_raise_before_backend(fake_backend, image, message):
    seg = Segmenter(fake_backend, LOOSE)
    with pytest.raises(InvalidImageError, match=message):
        seg.segment_everything(image)
    with pytest.raises(InvalidImageError, match=message):
        seg.segment_prompts(image, [Prompt(box=[0, 0, 1, 1])])
    assert fake_backend.encode_calls == 0


def test_non_contiguous_image_ok_and_unknown_strategy(fake_backend):
    seg = Segmenter(fake_backend, LOOSE)
    img = _image(120, 320)[:, ::2]
    assert not img.flags.c_contiguous
    assert seg.segment_everything(img).masks.shape[1:] == (120, 160)
    with pytest.raises(SegmentError, match="unknown strategy"):
        seg.segment_everything(img, strategy="magic")
    with pytest.raises(ValueError):
        SegmentSettings(strategy="magic")
    with pytest.raises(ValueError):
        SegmentSettings(points_per_batch=0)


def test_min_mask_region_area_cleans_masks(fake_backend):
    seg = Segmenter(fake_backend, LOOSE.with_(min_mask_region_area=50))
    res = seg.segment_everything(_image(), "grid")
    assert len(res) > 0 and (res.areas >= 50).all()


def test_prompts_grouped_by_point_count_never_padded(fake_backend):
    seg = Segmenter(fake_backend, LOOSE.with_(points_per_batch=2))
    prompts = [Prompt(box=[0, 0, 10, 10]), Prompt(points=[[5, 5], [9, 9]], labels=[1, 1]),
               Prompt(box=[20, 20, 60, 60]), Prompt(box=[30, 30, 40, 90]),
               Prompt(points=[[50, 50]], labels=[1])]
    res = seg.segment_prompts(_image(), prompts)
    # K=2: three box prompts and one point + padding, in chunks of 2; K=3: one prompt
    assert sorted(fake_backend.decode_calls) == [(1, 3), (2, 2), (2, 2)]
    for i in (0, 2, 3):
        np.testing.assert_allclose(res.boxes[i], prompts[i].box, atol=3.0)
    cy, cx = np.argwhere(res.masks[4]).mean(0)
    assert abs(cx - 50) < 3 and abs(cy - 50) < 3


def test_autoppn_proposal_nms_skips_duplicate_proposals(fake_backend):
    # proposals 0 and 1 get the same box: only the higher-scored one is decoded
    orig = fake_backend.encode

    def encode(image):
        enc = orig(image)
        enc.boxes[0, 1] = enc.boxes[0, 0]
        return enc

    fake_backend.encode = encode
    seg = Segmenter(fake_backend, LOOSE.with_(points_per_batch=100, ppn_nms_thresh=0.7))
    res = seg.segment_everything(_image(), "autoppn")
    assert fake_backend.decode_calls == [(3, 2)]
    assert len({tuple(p[0]) for p in res.prompt_points}) <= 3
    fake_backend.decode_calls.clear()
    Segmenter(fake_backend, LOOSE.with_(ppn_nms_thresh=1.0)).segment_everything(_image(),
                                                                                "autoppn")
    assert fake_backend.decode_calls == [(4, 2)]


def test_postprocess_threads_restored(fake_backend):
    import torch

    before = torch.get_num_threads()
    seg = Segmenter(fake_backend, LOOSE.with_(postprocess_threads=1))
    seg.segment_everything(_image(), "grid")
    seg.segment_prompts(None, [Prompt(box=[0, 0, 10, 10])])
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        SegmentSettings(postprocess_threads=-1)
