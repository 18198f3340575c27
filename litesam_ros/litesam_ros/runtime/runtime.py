"""SegmentRuntime: frames in, segmentation results out, on an inference thread; no ROS.

It owns everything between "a frame arrived" and "here is its result", each job in its own
module:
  * one newest-frame slot per source, served round-robin (frames.FrameSlots), and each
    source's newest good frame (frames.LatestFrames);
  * the inference thread (inference.InferenceLoop): decode, segment (one frame, or up to
    ``encoder_batch`` sources' frames with one batched encoder run), hand on a FrameOutput;
  * per-camera processing (per_camera.PerCamera): depth pairing by stamp, tracking, 3D;
  * the model, its lock and which frame its cached embedding belongs to (model_slot), so
    prompt requests (prompts.answer_prompts) on the newest frame reuse its encoding;
  * statistics (stats.RuntimeStats): received, processed, dropped, invalid, errors, latency.
This module is their composition: settings, lifecycle and input.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..camera.depth import CameraDepth, DepthDecoder, DepthSettings, Frame3D
from ..camera.tracking import TrackerSettings
from ..engines.choices import check_encoder_batch
from ..segment import Prompt, SegmentationResult, SegmentSettings, Segmenter
from .frames import DEFAULT_SOURCE, Frame, FrameSlots, LatestFrames
from .inference import Decoder, InferenceLoop
from .logs import Logger
from .model_slot import ModelSlot, RuntimeStopped
from .output import FrameOutput, ResultCallback
from .per_camera import PerCamera
from .prompts import NoFrameError, PromptAnswer, answer_prompts
from .stats import RuntimeStats

#: "everything": segment every frame taken and hand the result to on_result; "prompt_only":
#: decode frames and keep the newest good one of each source for prompt requests only.
MODES = ("everything", "prompt_only")


class SegmentRuntime:
    """Frames from one or more sources -> segmentation results, on one inference thread.

    The runtime lives as long as its owner; start(segmenter) begins work with a model and
    stop() ends it and lets the model go. Statistics survive stop/start.

    on_result(output) runs on the inference thread for each segmented frame, with a
    FrameOutput: the frame, its result, the latency (seconds from submit() to the result), the
    masks' RLEs, track ids and 3D. decode(payload) -> RGB uint8 HxWx3 runs on the inference
    thread too, so the producer's thread only stores the frame. Exceptions of a type in
    `invalid` (and InvalidImageError) mark a frame invalid rather than failed.
    """

    def __init__(self, *, on_result: ResultCallback | None = None,
                 decode: Decoder | None = None,
                 invalid: tuple[type[BaseException], ...] = (),
                 logger: Logger | None = None, mode: str = "everything", max_rate: float = 0.0,
                 log_period: float = 5.0, join_timeout: float = 30.0,
                 decode_depth: DepthDecoder | None = None,
                 tracking: TrackerSettings | None = None, encoder_batch: int = 1) -> None:
        self.stats = RuntimeStats()
        log = logger or logging.getLogger("litesam_ros.runtime")
        self._join_timeout = join_timeout
        self._slots: FrameSlots[Frame] = FrameSlots()
        self._serials = itertools.count(1)
        self._model = ModelSlot()
        self._latest = LatestFrames()
        self._per_camera = PerCamera(self.stats, log, log_period, self._put, decode_depth,
                                     tracking)
        self._loop = InferenceLoop(self._slots, self._model, self._per_camera, self._latest,
                                   self.stats, log, log_period, on_result, decode, invalid)
        self._run_lock = threading.Lock()     # start/stop
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.mode = mode
        self.max_rate = max_rate
        self.encoder_batch = encoder_batch

    # -- settings -----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._loop.mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {value!r}")
        self._loop.mode = value

    @property
    def max_rate(self) -> float:
        """Most frames taken per second, all sources together (0 = as fast as possible)."""
        return self._loop.max_rate

    @max_rate.setter
    def max_rate(self, value: float) -> None:
        if not value >= 0.0:
            raise ValueError(f"max_rate must be >= 0, got {value}")
        self._loop.max_rate = float(value)

    @property
    def encoder_batch(self) -> int:
        """Most frames (one per source) segmented with one encoder run; 1 = one frame at a
        time. The Segmenter splits a batch into runs its backend takes (Backend.max_batch)."""
        return self._loop.encoder_batch

    @encoder_batch.setter
    def encoder_batch(self, value: int) -> None:
        self._loop.encoder_batch = check_encoder_batch(value)  # the backends' range

    def update_settings(self, settings: SegmentSettings) -> None:
        """New pipeline settings, from the next frame or request on."""
        self._model.update_settings(settings)

    # -- per camera: depth and tracking (per_camera.PerCamera) ---------------------------------
    def configure_depth(self, source: str, settings: DepthSettings | None) -> None:
        """Pair `source`'s frames with depth (submit_depth) and give them 3D; None = no depth
        for it. Frames waiting in its pairing are released first."""
        self._per_camera.configure_depth(source, settings)

    def depth_camera(self, source: str) -> CameraDepth | None:
        return self._per_camera.depth_camera(source)

    @property
    def depth_sources(self) -> list[str]:
        return self._per_camera.depth_sources

    def set_camera_info(self, source: str, k: Sequence[float], d: Sequence[float],
                        p: Sequence[float]) -> bool:
        """The calibration of `source`'s colour camera (CameraInfo K, D, P); False, with a
        throttled warning, when it is not usable (3D stops until a good one comes)."""
        return self._per_camera.set_camera_info(source, k, d, p)

    def submit_depth(self, payload: Any, source: str, stamp_ns: int) -> None:
        """A depth image of `source` (aligned to its colour camera), stamped `stamp_ns`."""
        if self._worker is not None:
            self._per_camera.add_depth(payload, source, stamp_ns)

    def project(self, frame: Frame, result: SegmentationResult) -> Frame3D | None:
        """The 3D of `result` (segmented on `frame`'s image) from the depth paired with the
        frame; None when its source has no depth. Counts and logs what went wrong."""
        return self._per_camera.project(frame, result)

    @property
    def tracking(self) -> TrackerSettings | None:
        """Tracker settings (None: tracking off). Setting new ones keeps the tracks."""
        return self._per_camera.tracking

    @tracking.setter
    def tracking(self, settings: TrackerSettings | None) -> None:
        self._per_camera.tracking = settings

    def reset_tracks(self, source: str | None = None) -> int:
        """Forget the tracks of `source` (None: of every source); returns how many tracks were
        forgotten. New ids keep counting up: an id is never given twice by one source."""
        return self._per_camera.reset_tracks(source)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def segmenter(self) -> Segmenter | None:
        """The model while running (to read its backend and settings; the runtime is the only
        one that runs it)."""
        return self._model.segmenter

    def start(self, segmenter: Segmenter) -> None:
        """Take the model and start the inference thread."""
        with self._run_lock:
            if self._worker is not None:
                raise RuntimeError("the runtime is already running: stop() it first")
            self._model.load(segmenter)
            self._stop = threading.Event()
            self._slots.reopen()
            self._worker = threading.Thread(target=self._loop.run, args=(self._stop,),
                                            name="litesam_inference", daemon=True)
            self._worker.start()

    def stop(self) -> None:
        """Stop the inference thread (after the frame in progress), forget waiting and newest
        frames and the cached embedding, and let the model go. Idempotent."""
        with self._run_lock:
            self._stop.set()
            self._slots.close()
            worker, self._worker = self._worker, None
            if worker is not None and worker is not threading.current_thread():
                worker.join(timeout=self._join_timeout)
            self._model.load(None)  # waits for a prompt request in progress
            self._latest.clear()
            self._forget(None)
            self._per_camera.drop_trackers()

    # -- input --------------------------------------------------------------------------------
    def submit(self, payload: Any, source: str = DEFAULT_SOURCE,
               stamp_ns: int | None = None) -> bool:
        """Queue a frame of `source` (any thread, returns at once). True when it replaced an
        older frame of that source that inference had not taken (counted as dropped). Frames
        submitted while the runtime is stopped are ignored (not counted).

        A source with depth (configure_depth) pairs the frame by `stamp_ns` with its depth
        images first: the frame is queued once its pair is known (see CameraDepth)."""
        if self._worker is None:
            return False
        self.stats.count("received", source=source)
        frame = Frame(source, payload, time.monotonic(), next(self._serials))
        paired = self._per_camera.add_colour(frame, stamp_ns)
        return self._put(frame) if paired is None else paired

    def _put(self, frame: Frame) -> bool:
        replaced = self._slots.put(frame.source, frame)
        if replaced:
            self.stats.count("dropped", source=frame.source)
        return replaced

    def clear(self, source: str | None = None) -> None:
        """Forget frames waiting for inference (of `source`, or of every source), counted as
        dropped. Newest good frames stay for prompt requests."""
        self._forget(source)

    def _forget(self, source: str | None) -> None:
        forgotten = self._slots.clear(source)
        self._per_camera.forget(source)  # frames waiting for their depth
        if forgotten:
            self.stats.count("dropped", forgotten)

    @property
    def sources(self) -> list[str]:
        """Sources that submitted frames, in round-robin order."""
        return self._slots.sources

    def latest(self, source: str | None = None) -> Frame | None:
        """The newest good frame of `source`, or of any source when None."""
        return self._latest.get(source)

    @property
    def encoded_serial(self) -> int | None:
        """Serial of the frame whose embedding the model holds (None: no frame's)."""
        return self._model.encoded

    # -- prompt requests (any thread; prompts.answer_prompts) ---------------------------------
    def segment_prompts(self, prompts: Sequence[Prompt], image: np.ndarray | None = None, *,
                        multimask: bool = False, source: str | None = None) -> PromptAnswer:
        """One instance per prompt. With `image`: that image is encoded. Without: the newest
        good frame (of `source`, or of any source), whose embedding is reused when the model
        holds it. Raises SegmentError subclasses (NoFrameError, RuntimeStopped,
        InvalidImageError, InvalidPromptError) for requests it cannot serve."""
        return answer_prompts(self._model, self._latest, prompts, image, multimask=multimask,
                              source=source)


__all__ = ["MODES", "SegmentRuntime", "FrameOutput", "NoFrameError", "PromptAnswer",
           "RuntimeStopped"]
