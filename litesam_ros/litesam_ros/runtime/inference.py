"""The runtime's inference thread: take frames from the newest-frame slots (round-robin, up to
``encoder_batch`` sources at once), decode each, segment the good ones (mode "everything"),
add what their camera adds (per_camera) and hand each FrameOutput to ``on_result``.

An invalid frame (``decode`` or the image check raises InvalidImageError or one of
``invalid``) is logged (throttled), counted and dropped: it never replaces its source's newest
good frame. Any other exception in a frame (decode, model, result callback) is logged
(throttled), counted in ``errors`` and the thread goes on with the next frame. In a batch an
invalid frame is dropped alone (the others are segmented); a failure of the batched model run
itself counts an error for each frame of that run; a failure of one frame's result callback
counts for that frame only.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from ..segment import InvalidImageError, SegmentationResult, check_image
from .frames import Frame, FrameSlots, LatestFrames, wait_until
from .logs import Logger, Throttled
from .model_slot import ModelSlot
from .output import FrameOutput, ResultCallback
from .per_camera import PerCamera
from .stats import RuntimeStats

Decoder = Callable[[Any], np.ndarray]


def _as_image(payload: Any) -> np.ndarray:
    """The default decoder: the payload is the RGB image itself."""
    if not isinstance(payload, np.ndarray):
        raise InvalidImageError(f"frame payload must be an RGB numpy array, got "
                                f"{type(payload).__name__} (give the runtime a decoder)")
    return payload


class InferenceLoop:
    """The body of the inference thread. ``mode``, ``max_rate`` and ``encoder_batch`` are read
    for every take (the runtime checks the values it sets)."""

    def __init__(self, slots: FrameSlots[Frame], model: ModelSlot, per_camera: PerCamera,
                 latest: LatestFrames, stats: RuntimeStats, log: Logger, log_period: float,
                 on_result: ResultCallback | None = None, decode: Decoder | None = None,
                 invalid: tuple[type[BaseException], ...] = ()) -> None:
        self._slots, self._model, self._per_camera = slots, model, per_camera
        self._latest, self._stats = latest, stats
        self._on_result = on_result
        self._decode = decode or _as_image
        self._invalid: tuple[type[BaseException], ...] = (InvalidImageError, *invalid)
        self._warn_invalid = Throttled(log.warning, log_period)
        self._report_error = Throttled(log.error, log_period)
        self.mode = "everything"
        self.max_rate = 0.0
        self.encoder_batch = 1

    def run(self, stop: threading.Event) -> None:
        next_start = 0.0
        while not stop.is_set():
            if not wait_until(next_start, stop):
                break
            batch = self.encoder_batch if self.mode == "everything" else 1
            frames = self._slots.take_many(batch, timeout=0.2)
            if not frames:
                continue
            if stop.is_set():  # taken just as stop() closed the slots
                for frame in frames:
                    self._stats.count("dropped", source=frame.source)
                break
            rate = self.max_rate
            next_start = time.monotonic() + (len(frames) / rate if rate > 0 else 0.0)
            if len(frames) == 1:
                self._guarded(frames, self._process, frames[0])
            else:
                self._process_batch(frames)

    def _guarded(self, frames: list[Frame], step: Callable[..., Any], *args: Any) -> Any:
        """step(*args)'s value; an exception counts an error for each of `frames`, is logged
        and gives None."""
        try:
            return step(*args)
        except Exception:  # noqa: BLE001 - one bad frame must not end the thread
            which = ", ".join(f"{f.serial} ({f.source})" for f in frames)
            self._report_error(f"frame{'s' if len(frames) > 1 else ''} {which} failed: "
                               f"{traceback.format_exc(limit=3)}")
            # counted after the log line: whoever sees the count (diagnostics, tests) finds it
            for frame in frames:
                self._stats.count("errors", source=frame.source)
            return None

    def _decoded(self, frame: Frame) -> bool:
        """Decode and check `frame` into frame.rgb and make it its source's newest good frame;
        False (counted and logged) for an invalid frame."""
        try:
            frame.rgb = check_image(self._decode(frame.payload))
        except self._invalid as exc:
            self._warn_invalid(f"frame dropped ({frame.source}): {exc}")
            self._stats.count("invalid", source=frame.source)  # after the log, as errors are
            return False
        self._latest.set(frame)
        return True

    def _process(self, frame: Frame) -> None:
        if self._decoded(frame):
            self._segment([frame])

    def _process_batch(self, frames: list[Frame]) -> None:
        """Several sources' frames: each decoded on its own (an invalid or undecodable one is
        left out), the good ones segmented together, each result delivered on its own."""
        good = [frame for frame in frames if self._guarded([frame], self._decoded, frame)]
        if good:
            self._guarded(good, self._segment, good)

    def _segment(self, frames: list[Frame]) -> None:
        """Segment decoded frames (mode "everything"): one frame by segment_everything, several
        by segment_everything_batch (their encoder runs batched); then deliver each result. A
        failing result callback counts for its frame only (of several)."""
        if self.mode != "everything":
            return
        images = [f.rgb for f in frames if f.rgb is not None]
        model = self._model
        with model.lock:
            segmenter = model.segmenter
            if segmenter is None:
                return
            model.encoded = None  # whatever happens below, the old embedding is gone
            results = (segmenter.segment_everything_batch(images) if len(images) > 1
                       else [segmenter.segment_everything(images[0])])
            # the Segmenter caches the (last) image's embedding
            model.encoded = frames[-1].serial
        if len(frames) == 1:
            self._deliver(frames[0], results[0])
            return
        for frame, result in zip(frames, results):
            self._guarded([frame], self._deliver, frame, result)

    def _deliver(self, frame: Frame, result: SegmentationResult) -> None:
        """Add what the frame's camera adds, hand the FrameOutput to on_result and count it."""
        rles = result.rles()
        track_ids = self._per_camera.track(frame, rles, result.boxes)
        frame3d = self._per_camera.project(frame, result)
        latency = time.monotonic() - frame.received
        if self._on_result is not None:
            self._on_result(FrameOutput(frame, result, latency, rles, track_ids, frame3d))
        self._stats.record(latency, source=frame.source)


__all__ = ["Decoder", "InferenceLoop"]
