"""Segmenter.segment_everything_batch: one batched encoder run (in chunks of the backend's
max_batch), then each image as segment_everything would; results equal the per-image calls."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

from litesam_ros.engines.base import Backend, EncoderResult
from litesam_ros.segment import InvalidImageError, Prompt, Segmenter, SegmentSettings

from conftest import FakeBackend

LOOSE = SegmentSettings(pred_iou_thresh=0.0, stability_score_thresh=0.0, points_per_side=4,
                        points_per_batch=16, max_instances=20)
MODEL = "lite_sam_r320"


class BatchFake(FakeBackend):
    """The fake backend taking batches of up to `max_batch` images (each encoded alone)."""

    def __init__(self, max_batch: int) -> None:
        super().__init__()
        self.max_batch = max_batch
        self.batches: list[int] = []

    def encode(self, image: torch.Tensor) -> EncoderResult:
        self.check_batch(image)
        self.batches.append(int(image.shape[0]))
        parts = [super(BatchFake, self).encode(image[i:i + 1]) for i in range(len(image))]
        return EncoderResult(*(torch.cat([getattr(p, f) for p in parts])
                               for f in EncoderResult._fields))


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            for h, w in ((120, 160), (100, 100), (90, 200), (64, 64), (130, 70))]


def _assert_same(got: Any, want: Any) -> None:
    assert len(got) == len(want) and got.strategy == want.strategy
    assert (got.masks == want.masks).all()
    np.testing.assert_array_equal(got.boxes, want.boxes)
    np.testing.assert_allclose(got.iou_scores, want.iou_scores, atol=1e-5)
    np.testing.assert_allclose(got.stability_scores, want.stability_scores, atol=1e-5)
    for p, q in zip(got.prompt_points, want.prompt_points):
        np.testing.assert_allclose(p, q, atol=1e-4)


@pytest.mark.parametrize("strategy", ["autoppn", "grid", "hierarchical"])
def test_batch_equals_one_by_one_in_chunks_of_max_batch(strategy: str) -> None:
    batched = BatchFake(max_batch=2)
    images = _images()
    results = Segmenter(batched, LOOSE).segment_everything_batch(images, strategy)
    assert batched.batches == [2, 2, 1]
    alone = Segmenter(FakeBackend(), LOOSE)
    for image, res in zip(images, results):
        _assert_same(res, alone.segment_everything(image, strategy))
    assert [r.timings.get("encode_batch") for r in results] == [2.0, 2.0, 2.0, 2.0, None]
    for r in results:
        assert r.timings["total"] >= r.timings["encode"] >= 0


def test_the_cached_embedding_is_the_last_images_and_bad_input_runs_nothing() -> None:
    backend = BatchFake(max_batch=4)
    seg = Segmenter(backend, LOOSE)
    images = _images()[:3]
    assert seg.segment_everything_batch([]) == []
    seg.segment_everything_batch(images, "grid")
    box = [Prompt(box=[5.0, 5.0, 50.0, 40.0])]
    cached = seg.segment_prompts(None, box)
    fresh = Segmenter(FakeBackend(), LOOSE).segment_prompts(images[-1], box)
    _assert_same(cached, fresh)
    with pytest.raises(InvalidImageError):
        seg.segment_everything_batch([images[0], np.zeros((4, 4), np.uint8)])
    assert backend.batches == [3]  # the invalid image stopped the call before any encoder run


@pytest.fixture(scope="module")
def real_backends() -> tuple[Backend, Backend]:
    """The real model (random r320 weights, torch on the CPU): batch-1 and batch-2 encoders."""
    from litesam_ros.engines import create_backend

    torch.set_num_threads(2)
    return create_backend("torch", MODEL), create_backend("torch", MODEL, encoder_batch=2)


@pytest.mark.slow  # the real model: ~20 s on 2 loaded CPU cores
def test_real_model_batch_equals_segment_everything_per_image(
        real_backends: tuple[Backend, Backend]) -> None:
    """autoppn: the proposals too come from the batch (the grid on the real model: the runtime
    tests)."""
    strategy = "autoppn"
    single, double = real_backends
    photo = cv2.resize(skdata.astronaut(), (320, 240), interpolation=cv2.INTER_AREA)
    images = [photo, np.ascontiguousarray(photo[:, ::-1]),
              np.ascontiguousarray(cv2.resize(skdata.chelsea(), (200, 150)))]
    # few prompts (3x3 grid; the strongest, NMS-thinned proposals): the encoder is the point
    settings = LOOSE.with_(points_per_side=3, ppn_score_thresh=0.13, ppn_nms_thresh=0.3)
    results = Segmenter(double, settings).segment_everything_batch(images, strategy)
    alone = Segmenter(single, settings)
    for image, res in zip(images, results):
        want = alone.segment_everything(image, strategy)
        assert len(want) > 0
        _assert_same(res, want)
    with pytest.raises(ValueError, match="batches of 1..1"):
        single.encode(torch.zeros(2, 3, 320, 320))
