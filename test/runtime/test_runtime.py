"""SegmentRuntime without ROS, on the real model: order, drops, the embedding cache, stop/start,
a slow model, errors in one frame, several sources, statistics."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from litesam_ros.runtime import Frame, FrameOutput, NoFrameError, RuntimeStopped, SegmentRuntime
from litesam_ros.segment import InvalidPromptError, Prompt, Segmenter, SegmentSettings
from runtime_support import InstrumentedBackend, wait_for

# Four grid points: a frame is one encoder run and one small decode (~0.4 s on 2 CPU cores).
FAST = SegmentSettings(strategy="grid", points_per_side=2, points_per_batch=4,
                       pred_iou_thresh=0.0, stability_score_thresh=0.0, max_instances=5)
BOX = [Prompt(box=[20.0, 10.0, 140.0, 110.0])]  # inside every image here (>= 160x120)


class Recorder:
    """A runtime's results and log lines (it is the runtime's logger too)."""

    def __init__(self, fail_results_of: set[int] | None = None) -> None:
        self.results: list[tuple[Frame, Any, float]] = []
        self.outputs: list[FrameOutput] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.fail_results_of = fail_results_of or set()
        self._lock = threading.Lock()

    def on_result(self, output: FrameOutput) -> None:
        frame = output.frame
        if frame.serial in self.fail_results_of:
            raise RuntimeError(f"publishing frame {frame.serial} failed")
        with self._lock:
            self.results.append((frame, output.result, output.latency))
            self.outputs.append(output)

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def error(self, message: str) -> None:
        self.errors.append(message)

    @property
    def serials(self) -> list[int]:
        with self._lock:
            return [frame.serial for frame, _, _ in self.results]

    @property
    def sources(self) -> list[str]:
        with self._lock:
            return [frame.source for frame, _, _ in self.results]


Started = tuple[SegmentRuntime, InstrumentedBackend, Recorder]


@pytest.fixture
def start(instrumented: Callable[..., InstrumentedBackend],
          runtimes: list[SegmentRuntime]) -> Callable[..., Started]:
    """start(delay=0, fail_on=(), settings=FAST, recorder=None, **runtime options)."""

    def start(delay: float = 0.0, fail_on: tuple[int, ...] = (), settings: SegmentSettings = FAST,
              recorder: Recorder | None = None, **options: Any) -> Started:
        backend = instrumented(delay=delay, fail_on=fail_on)
        rec = recorder or Recorder()
        runtime = SegmentRuntime(on_result=rec.on_result, logger=rec, **options)
        runtimes.append(runtime)
        runtime.start(Segmenter(backend, settings))
        return runtime, backend, rec

    return start


def settled(runtime: SegmentRuntime) -> bool:
    """Every received frame is accounted for (mode everything, nothing waiting or running)."""
    c = runtime.stats.snapshot()
    return c["received"] == c["processed"] + c["dropped"] + c["invalid"] + c["errors"]


def test_frames_come_out_in_order_and_the_newest_frame_wins(start: Any,
                                                            photo: np.ndarray) -> None:
    """A camera faster than a slow model: older unprocessed frames are dropped and counted,
    results keep their order, the newest frame is always segmented, latency is measured."""
    runtime, backend, rec = start(delay=0.3)
    for _ in range(12):
        assert runtime.submit(photo.copy()) in (True, False)
        time.sleep(0.05)
    assert wait_for(lambda: settled(runtime), 60.0)

    serials = rec.serials
    assert serials == sorted(set(serials))  # in order, each once
    assert serials[0] == 1 and serials[-1] == 12  # the newest frame is never the one dropped
    counts = runtime.stats.snapshot()
    assert counts == {"received": 12, "processed": len(serials), "dropped": 12 - len(serials),
                      "invalid": 0, "errors": 0}
    assert counts["dropped"] >= 4  # >= 0.6 s of frames against >= 0.3 s per frame
    assert backend.encode_calls == len(serials)  # dropped frames never reached the model
    assert all(latency >= 0.3 for _, _, latency in rec.results)
    rate, mean_latency, max_latency = runtime.stats.rate_and_latency()
    assert rate > 0 and 0.3 <= mean_latency <= max_latency
    assert all(len(result) <= FAST.max_instances for _, result, _ in rec.results)
    assert rec.errors == [] and rec.warnings == []


def test_prompts_reuse_the_newest_frames_encoding(start: Any, photo: np.ndarray) -> None:
    runtime, backend, rec = start()
    with pytest.raises(NoFrameError, match="no camera frame"):
        runtime.segment_prompts(BOX)  # nothing received yet
    runtime.submit(photo)
    assert wait_for(lambda: len(rec.results) == 1)
    assert backend.encode_calls == 1 and runtime.encoded_serial == 1

    cached = runtime.segment_prompts(BOX)
    again = runtime.segment_prompts(BOX, multimask=True)
    assert cached.reused and again.reused and backend.encode_calls == 1  # no encoder run
    assert cached.frame is not None and cached.frame.serial == 1
    assert cached.image_hw == (240, 320) and len(cached.result) == 1

    given = runtime.segment_prompts(BOX, photo)  # a request image is encoded
    assert not given.reused and given.frame is None and backend.encode_calls == 2
    assert runtime.encoded_serial is None
    np.testing.assert_array_equal(given.result.masks, cached.result.masks)  # same pixels

    fresh = runtime.segment_prompts(BOX)  # the model now holds the request image: encode
    assert not fresh.reused and fresh.frame is not None and backend.encode_calls == 3
    assert runtime.segment_prompts(BOX).reused and backend.encode_calls == 3

    runtime.submit(np.ascontiguousarray(photo[:, ::-1]))
    assert wait_for(lambda: len(rec.results) == 2)
    newest = runtime.segment_prompts(BOX)
    assert newest.reused and newest.frame is not None and newest.frame.serial == 2
    assert backend.encode_calls == 4

    with pytest.raises(InvalidPromptError):  # a bad request changes nothing
        runtime.segment_prompts([Prompt(box=[0.0, 0.0, 900.0, 10.0])])
    assert runtime.segment_prompts(BOX).reused and backend.encode_calls == 4


def test_prompt_only_mode_encodes_the_newest_frame_once(start: Any, photo: np.ndarray) -> None:
    runtime, backend, rec = start(mode="prompt_only")
    runtime.submit(photo)
    assert wait_for(lambda: runtime.latest() is not None)
    time.sleep(0.2)
    assert rec.results == [] and backend.encode_calls == 0  # frames are kept, not segmented
    assert runtime.stats.snapshot()["processed"] == 0

    first = runtime.segment_prompts(BOX)
    second = runtime.segment_prompts(BOX)
    assert not first.reused and second.reused and backend.encode_calls == 1

    runtime.submit(np.ascontiguousarray(photo[::-1]))
    assert wait_for(lambda: (runtime.latest() or first.frame).serial == 2)
    third = runtime.segment_prompts(BOX)
    assert not third.reused and third.frame is not None and third.frame.serial == 2
    assert backend.encode_calls == 2


def test_an_invalid_frame_is_dropped_and_never_replaces_the_newest_good_one(
        start: Any, photo: np.ndarray) -> None:
    """Frames that are not images are counted, logged (throttled) and dropped; the newest good
    frame and its encoding stay in use."""
    runtime, backend, rec = start(decode=lambda payload: payload["rgb"], invalid=(KeyError,))
    runtime.submit({"rgb": photo})
    assert wait_for(lambda: len(rec.results) == 1)
    bad = [{"rgb": np.zeros((0, 0, 3), np.uint8)},    # empty (a camera glitch)
           {"rgb": np.zeros((4, 4), np.uint8)},       # not RGB
           {"depth": photo}]                          # the decoder's own error type
    for count, payload in enumerate(bad, start=1):
        runtime.submit(payload)
        assert wait_for(lambda: runtime.stats.invalid == count)

    newest = runtime.latest()
    assert newest is not None and newest.serial == 1
    answer = runtime.segment_prompts(BOX)
    assert answer.reused and answer.frame is newest and backend.encode_calls == 1
    assert runtime.stats.snapshot() == {"received": 4, "processed": 1, "dropped": 0,
                                        "invalid": 3, "errors": 0}
    assert len(rec.warnings) == 1 and "frame dropped (default)" in rec.warnings[0]
    assert "empty" in rec.warnings[0]  # throttled: the first one said, the others held back
    assert rec.errors == []


def test_an_error_in_one_frame_does_not_stop_the_runtime(start: Any, photo: np.ndarray) -> None:
    runtime, backend, rec = start(fail_on=(2,))
    runtime.submit(photo)
    assert wait_for(lambda: len(rec.results) == 1)
    runtime.submit(photo[::2, ::2])
    assert wait_for(lambda: runtime.stats.errors == 1)
    assert len(rec.errors) == 1 and "injected failure in encoder run 2" in rec.errors[0]

    # The failed frame is the newest good image; the model still holds frame 1's embedding,
    # which must not be taken for frame 2's.
    assert runtime.encoded_serial is None
    answer = runtime.segment_prompts(BOX)
    assert not answer.reused and answer.frame is not None and answer.frame.serial == 2
    assert answer.image_hw == (120, 160) and backend.encode_calls == 3

    runtime.submit(photo)
    assert wait_for(lambda: len(rec.results) == 2)
    assert rec.serials == [1, 3] and runtime.running
    assert runtime.stats.snapshot() == {"received": 3, "processed": 2, "dropped": 0,
                                        "invalid": 0, "errors": 1}


def test_a_failing_result_callback_counts_as_an_error(start: Any, photo: np.ndarray) -> None:
    runtime, _, rec = start(recorder=Recorder(fail_results_of={1}))
    runtime.submit(photo)
    assert wait_for(lambda: runtime.stats.errors == 1)
    runtime.submit(photo)
    assert wait_for(lambda: len(rec.results) == 1)
    assert rec.serials == [2] and "publishing frame 1 failed" in rec.errors[0]
    assert runtime.stats.snapshot()["processed"] == 1


def test_stop_waits_for_the_frame_in_progress_and_start_resumes(
        start: Any, photo: np.ndarray) -> None:
    runtime, backend, rec = start(delay=0.5)
    runtime.submit(photo)
    assert wait_for(lambda: backend.encode_calls == 1)  # frame 1 in progress (slow model)
    runtime.submit(photo)                               # frame 2 waits
    runtime.stop()
    assert rec.serials == [1]  # the frame in progress finished and was delivered
    assert not runtime.running and runtime.segmenter is None
    assert runtime.latest() is None and runtime.encoded_serial is None
    assert runtime.submit(photo) is False  # stopped: ignored, not counted
    with pytest.raises(RuntimeStopped):
        runtime.segment_prompts(BOX, photo)
    with pytest.raises(RuntimeStopped):
        runtime.update_settings(FAST)
    runtime.stop()  # idempotent
    assert runtime.stats.snapshot() == {"received": 2, "processed": 1, "dropped": 1,
                                        "invalid": 0, "errors": 0}  # frame 2 was forgotten

    segmenter = Segmenter(backend, FAST)
    runtime.start(segmenter)
    with pytest.raises(RuntimeError, match="already running"):
        runtime.start(segmenter)
    with pytest.raises(NoFrameError):  # frames of the previous run are gone
        runtime.segment_prompts(BOX)
    runtime.update_settings(FAST.with_(max_instances=1))
    runtime.submit(photo)
    assert wait_for(lambda: len(rec.results) == 2, 60.0)
    assert rec.serials == [1, 3] and len(rec.results[-1][1]) <= 1
    assert runtime.stats.processed == 2  # statistics survive stop/start
    assert settled(runtime)


def test_sources_take_turns(start: Any, photo: np.ndarray) -> None:
    """A camera at 200 Hz does not starve one at 40 Hz: the slow model serves them in turn."""
    runtime, _, rec = start(delay=0.2)
    stop = threading.Event()

    def cameras() -> None:
        i = 0
        while not stop.is_set():
            runtime.submit(photo, "cam_a")
            if i % 5 == 0:
                runtime.submit(np.ascontiguousarray(photo[:, ::-1]), "cam_b")
            i += 1
            time.sleep(0.005)

    producer = threading.Thread(target=cameras)
    producer.start()
    try:
        assert wait_for(lambda: len(rec.results) >= 5, 60.0)
    finally:
        stop.set()
        producer.join()
    assert wait_for(lambda: settled(runtime), 60.0)
    sources = rec.sources
    assert sources[:2] == ["cam_a", "cam_b"]
    assert all(a != b for a, b in zip(sources, sources[1:])), sources  # strictly in turn
    assert runtime.sources == ["cam_a", "cam_b"]
    assert runtime.stats.dropped > 0

    newest_b = runtime.latest("cam_b")
    assert newest_b is not None and newest_b.source == "cam_b"
    answer = runtime.segment_prompts(BOX, source="cam_b")
    assert answer.frame is newest_b
    newest = runtime.latest()
    assert newest is not None and newest.serial == max(
        f.serial for f in (runtime.latest("cam_a"), newest_b) if f is not None)
    with pytest.raises(NoFrameError, match="cam_c"):
        runtime.segment_prompts(BOX, source="cam_c")


def test_max_rate_limits_the_frames_taken(start: Any, photo: np.ndarray) -> None:
    taken: list[float] = []

    def decode(payload: np.ndarray) -> np.ndarray:
        taken.append(time.monotonic())
        return payload

    runtime, _, _ = start(mode="prompt_only", max_rate=10.0, decode=decode)
    begin = time.monotonic()
    while time.monotonic() - begin < 1.0:
        runtime.submit(photo)
        time.sleep(0.005)
    count, elapsed = len(taken), time.monotonic() - begin
    assert 3 <= count <= 1 + elapsed * 10.0
    assert all(b - a >= 0.099 for a, b in zip(taken, taken[1:]))
    with pytest.raises(ValueError):
        runtime.max_rate = -1.0
    with pytest.raises(ValueError):
        runtime.mode = "sometimes"


def test_the_runtime_imports_no_ros() -> None:
    code = ("import sys, litesam_ros.runtime; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('rclpy', 'rcl_interfaces', 'sensor_msgs', 'diagnostic_msgs')); "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2] / "litesam_ros", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
