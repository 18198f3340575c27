"""SegmentRuntime with encoder_batch > 1 (issue 13): several sources' waiting frames are
segmented with one encoder run, in round-robin order, each result delivered and counted as if
it had been segmented alone; on the real model (torch, CPU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from litesam_ros.engines.base import Backend
from litesam_ros.engines.choices import ENCODER_BATCH_RANGE
from litesam_ros.runtime import SegmentRuntime
from litesam_ros.segment import InvalidImageError, Segmenter
from runtime_support import InstrumentedBackend, wait_for
from test_runtime import BOX, FAST, Recorder, settled

Started = tuple[SegmentRuntime, InstrumentedBackend, Recorder]


@pytest.fixture
def start(batch_backend: Backend, runtimes: list[SegmentRuntime]) -> Callable[..., Started]:
    """start(encoder_batch, delay=0.4, fail_on=(), **runtime options) on the batching backend."""

    def start(encoder_batch: int, delay: float = 0.4, fail_on: tuple[int, ...] = (),
              **options: Any) -> Started:
        backend = InstrumentedBackend(batch_backend, delay=delay, fail_on=fail_on)
        rec = Recorder()
        runtime = SegmentRuntime(on_result=rec.on_result, logger=rec,
                                 encoder_batch=encoder_batch, **options)
        runtime.stats.window = 600.0  # latency over the whole (slow, loaded-CPU) test
        runtimes.append(runtime)
        runtime.start(Segmenter(backend, FAST))
        return runtime, backend, rec

    return start


def _images(photo: np.ndarray) -> dict[str, np.ndarray]:
    """Distinct images (sizes too) per source."""
    return {"a": photo, "b": np.ascontiguousarray(photo[:, ::-1]),
            "c": np.ascontiguousarray(photo[20:200, 40:300]),
            "d": np.ascontiguousarray(photo[::-1])}


def _while_busy(runtime: SegmentRuntime, backend: InstrumentedBackend, photo: np.ndarray,
                frames: list[tuple[str, Any]]) -> None:
    """Submit a frame of source "w", and `frames` while the model is busy encoding it: they all
    wait in their slots together when the inference thread next takes."""
    runtime.submit(photo, "w")
    assert wait_for(lambda: backend.encode_calls == 1, 30.0)
    for source, payload in frames:
        runtime.submit(payload, source)


def test_waiting_frames_of_several_sources_are_encoded_together(
        start: Any, photo: np.ndarray, real_backend: Backend) -> None:
    """Round-robin order, chunks of encoder_batch, results equal to the one-frame path, stats
    per source, and the embedding cache names the batch's last frame."""
    runtime, backend, rec = start(encoder_batch=3)
    images = _images(photo)
    _while_busy(runtime, backend, photo, list(images.items()))
    assert wait_for(lambda: len(rec.results) == 5 and settled(runtime), 90.0)

    assert backend.batches == [1, 3, 1]  # w alone; a, b, c together; d (its turn after c)
    assert rec.sources == ["w", "a", "b", "c", "d"]
    assert rec.serials == sorted(rec.serials)
    latencies = {frame.source: latency for frame, _, latency in rec.results}
    for source in ("w", *images):
        stats = runtime.stats.source(source)
        assert (stats.received, stats.processed, stats.dropped, stats.errors) == (1, 1, 0, 0)
        assert stats.rate_and_latency()[2] == latencies[source] > 0
    assert runtime.stats.processed == 5 and rec.errors == [] and rec.warnings == []
    alone = Segmenter(real_backend, FAST)  # batch-1 backend: today's path
    for (frame, result, latency), output in zip(rec.results, rec.outputs):
        want = alone.segment_everything(images.get(frame.source, photo))
        assert len(result) == len(want) > 0
        assert (result.masks == want.masks).all()
        np.testing.assert_allclose(result.iou_scores, want.iou_scores, atol=1e-5)
        np.testing.assert_allclose(result.stability_scores, want.stability_scores, atol=1e-5)
        np.testing.assert_array_equal(result.boxes, want.boxes)
        assert output.rles == result.rles() and output.track_ids is None

    # The model holds d's embedding (the last run): a prompt on d reuses it, on c it does not.
    d = runtime.latest("d")
    assert d is not None and runtime.encoded_serial == d.serial
    calls = backend.encode_calls
    assert runtime.segment_prompts(BOX, source="d").reused
    assert backend.encode_calls == calls
    c_answer = runtime.segment_prompts(BOX, source="c")
    assert not c_answer.reused and backend.encode_calls == calls + 1
    c = runtime.latest("c")
    assert c is not None and runtime.encoded_serial == c.serial


def test_the_embedding_cache_after_a_batch_is_the_last_frames(
        start: Any, photo: np.ndarray) -> None:
    """After a batch the cached embedding is the last frame's: a prompt on it equals the same
    prompt with the image given (encoded afresh)."""
    runtime, backend, rec = start(encoder_batch=4)
    images = _images(photo)
    _while_busy(runtime, backend, photo, [("a", images["a"]), ("c", images["c"])])
    assert wait_for(lambda: len(rec.results) == 3 and settled(runtime), 90.0)
    assert backend.batches == [1, 2]
    c = runtime.latest("c")
    assert c is not None and runtime.encoded_serial == c.serial
    cached = runtime.segment_prompts(BOX, source="c")
    fresh = runtime.segment_prompts(BOX, image=images["c"])
    assert cached.reused and not fresh.reused
    assert (cached.result.masks == fresh.result.masks).all()
    np.testing.assert_allclose(cached.result.iou_scores, fresh.result.iou_scores, atol=1e-5)


def test_an_invalid_frame_in_a_batch_is_dropped_alone(start: Any, photo: np.ndarray) -> None:
    """An invalid frame (counted invalid) and one whose decoding fails (counted as an error) are
    left out; the other frames of the batch are segmented together."""

    def decode(payload: Any) -> np.ndarray:
        if isinstance(payload, str):
            raise RuntimeError(f"decoder crashed on {payload}")
        return payload

    runtime, backend, rec = start(encoder_batch=4, decode=decode)
    images = _images(photo)
    runtime.submit(images["b"], "b")  # b has a good newest frame before its broken one
    assert wait_for(lambda: len(rec.results) == 1, 60.0)
    calls = backend.encode_calls
    runtime.submit(photo, "w")
    assert wait_for(lambda: backend.encode_calls == calls + 1, 30.0)
    for source, payload in (("a", images["a"]), ("b", np.zeros((4, 4), np.uint8)),
                            ("c", "boom"), ("d", images["d"])):
        runtime.submit(payload, source)
    assert wait_for(lambda: len(rec.results) == 4 and settled(runtime), 90.0)

    assert backend.batches == [1, 1, 2]  # b's first frame; w; a and d together
    assert rec.sources == ["b", "w", "a", "d"]
    counts = {s: runtime.stats.source(s) for s in ("a", "b", "c", "d")}
    assert (counts["a"].processed, counts["d"].processed) == (1, 1)
    assert (counts["b"].invalid, counts["b"].processed, counts["b"].errors) == (1, 1, 0)
    assert (counts["c"].errors, counts["c"].processed, counts["c"].invalid) == (1, 0, 0)
    assert runtime.stats.invalid == 1 and runtime.stats.errors == 1
    assert any("frame dropped (b)" in w for w in rec.warnings)
    assert len(rec.errors) == 1 and "(c) failed" in rec.errors[0]
    newest_b = runtime.latest("b")
    assert newest_b is not None and newest_b.rgb is not None
    assert newest_b.rgb.shape == images["b"].shape  # the invalid frame never replaced it
    with pytest.raises(InvalidImageError):
        runtime.segment_prompts(BOX, image=np.zeros((4, 4), np.uint8))


def test_a_failed_batched_run_counts_an_error_per_frame_and_the_thread_goes_on(
        start: Any, photo: np.ndarray) -> None:
    runtime, backend, rec = start(encoder_batch=2, fail_on=(2,))
    images = _images(photo)
    _while_busy(runtime, backend, photo, [("a", images["a"]), ("b", images["b"])])
    assert wait_for(lambda: settled(runtime) and runtime.stats.errors == 2, 60.0)
    assert backend.batches == [1, 2] and rec.sources == ["w"]
    assert runtime.stats.source("a").errors == runtime.stats.source("b").errors == 1
    assert len(rec.errors) == 1 and "frames" in rec.errors[0]
    assert runtime.encoded_serial is None  # the failed run claims no embedding
    runtime.submit(images["a"], "a")
    assert wait_for(lambda: rec.sources == ["w", "a"] and settled(runtime), 60.0)


def test_encoder_batch_1_takes_one_frame_at_a_time(start: Any, photo: np.ndarray) -> None:
    """encoder_batch 1 (the default): today's path, one frame per encoder run, in turn."""
    runtime, backend, rec = start(encoder_batch=1, delay=0.2)
    images = _images(photo)
    _while_busy(runtime, backend, photo, [("a", images["a"]), ("b", images["b"])])
    assert wait_for(lambda: len(rec.results) == 3 and settled(runtime), 60.0)
    assert backend.batches == [1, 1, 1] and rec.sources == ["w", "a", "b"]
    assert SegmentRuntime().encoder_batch == 1
    for bad in (0, -1, 1.5, True, ENCODER_BATCH_RANGE[1] + 1):  # the backends' range
        with pytest.raises(ValueError):
            SegmentRuntime(encoder_batch=bad)
    assert SegmentRuntime(encoder_batch=ENCODER_BATCH_RANGE[1]).encoder_batch == \
        ENCODER_BATCH_RANGE[1]
