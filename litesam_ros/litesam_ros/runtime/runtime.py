"""SegmentRuntime: frames in, segmentation results out, on an inference thread; no ROS.

It owns everything between "a frame arrived" and "here is its result":
  * one newest-frame slot per source, served round-robin (frames.FrameSlots);
  * the inference thread, which decodes each frame it takes (``decode``: payload -> RGB),
    segments it (mode "everything") and hands the result to ``on_result``. With
    ``encoder_batch`` N > 1 and several sources with a frame waiting, it takes up to N of them
    at once (one per source, in round-robin order), decodes each, segments the good ones with
    one batched encoder run (Segmenter.segment_everything_batch) and hands each result on as
    it would one frame's; with one frame waiting (or N = 1) it is the one-frame path;
  * the Segmenter and the lock that serialises the inference thread and prompt requests;
  * the embedding cache: which frame the Segmenter's cached embedding belongs to, so prompt
    requests on the newest frame reuse its encoding instead of running the encoder again;
  * statistics (stats.RuntimeStats): received, processed, dropped, invalid, errors, latency.

An invalid frame (``decode`` or the image check raises InvalidImageError or one of
``invalid``) is logged (throttled), counted and dropped: it never replaces its source's newest
good frame. Any other exception in a frame (decode, model, result callback) is logged
(throttled), counted in ``errors`` and the thread goes on with the next frame. In a batch an
invalid frame is dropped alone (the others are segmented); a failure of the batched model run
itself counts an error for each frame of that run; a failure of one frame's result callback
counts for that frame only.

The runtime is the only caller of its Segmenter (always under its lock): the cache key below
and the Segmenter's cached embedding cannot disagree.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..engines.choices import check_encoder_batch
from ..segment import InvalidImageError, Prompt, SegmentationResult, SegmentError, Segmenter
from ..segment import SegmentSettings, check_image
from ..camera.tracking import MaskTracker, TrackerSettings
from ..camera.depth import CameraDepth, DepthDecoder, DepthSettings, Frame3D, _as_depth, project
from .frames import DEFAULT_SOURCE, Frame, FrameSlots, wait_until
from .stats import RuntimeStats

#: "everything": segment every frame taken and hand the result to on_result; "prompt_only":
#: decode frames and keep the newest good one of each source for prompt requests only.
MODES = ("everything", "prompt_only")

ResultCallback = Callable[[Frame, SegmentationResult, float], None]
Decoder = Callable[[Any], np.ndarray]


class Logger(Protocol):
    """What the runtime logs through: logging.Logger and rclpy's node logger both fit."""

    def warning(self, message: str, /) -> Any: ...

    def error(self, message: str, /) -> Any: ...


class RuntimeStopped(SegmentError):
    """The runtime has no model: it is not started, or it was stopped."""


class NoFrameError(SegmentError):
    """A prompt request without an image, and no good frame has been received yet."""


class PromptAnswer(NamedTuple):
    """The result of a prompt request and what it ran on."""

    result: SegmentationResult
    frame: Frame | None  # the newest frame the prompts ran on; None when an image was given
    reused: bool         # the frame's cached embedding was used (the encoder did not run)
    image_hw: tuple[int, int]


class _Throttled:
    """Calls `log` at most once per `period` seconds; says how many messages it held back."""

    def __init__(self, log: Callable[[str], Any], period: float) -> None:
        self._log = log
        self._period = period
        self._last = float("-inf")
        self._held = 0
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._period:
                self._held += 1
                return
            held, self._held, self._last = self._held, 0, now
        self._log(message + (f" ({held} similar messages not logged)" if held else ""))


def _as_image(payload: Any) -> np.ndarray:
    """The default decoder: the payload is the RGB image itself."""
    if not isinstance(payload, np.ndarray):
        raise InvalidImageError(f"frame payload must be an RGB numpy array, got "
                                f"{type(payload).__name__} (give the runtime a decoder)")
    return payload


class SegmentRuntime:
    """Frames from one or more sources -> segmentation results, on one inference thread.

    The runtime lives as long as its owner; start(segmenter) begins work with a model and
    stop() ends it and lets the model go. Statistics survive stop/start.

    on_result(frame, result, latency) runs on the inference thread for each segmented frame;
    latency is seconds from submit() to the result. decode(payload) -> RGB uint8 HxWx3 runs on
    the inference thread too, so the producer's thread only stores the frame. Exceptions of a
    type in `invalid` (and InvalidImageError) mark a frame invalid rather than failed.
    """

    def __init__(self, *, on_result: ResultCallback | None = None,
                 decode: Decoder | None = None,
                 invalid: tuple[type[BaseException], ...] = (),
                 logger: Logger | None = None, mode: str = "everything", max_rate: float = 0.0,
                 log_period: float = 5.0, join_timeout: float = 30.0,
                 decode_depth: DepthDecoder | None = None,
                 tracking: TrackerSettings | None = None, encoder_batch: int = 1) -> None:
        self.stats = RuntimeStats()
        self._on_result = on_result
        self._decode = decode or _as_image
        self._invalid: tuple[type[BaseException], ...] = (InvalidImageError, *invalid)
        log = logger or logging.getLogger("litesam_ros.runtime")
        self._warn_invalid = _Throttled(log.warning, log_period)
        self._report_error = _Throttled(log.error, log_period)
        self._warn_depth: dict[str, _Throttled] = {}
        self._log = log
        self._log_period = log_period
        self._decode_depth = decode_depth or _as_depth
        self._depth: dict[str, CameraDepth] = {}   # sources with depth
        self._tracking = tracking
        self._trackers: dict[str, MaskTracker] = {}
        self._track_lock = threading.Lock()
        self._join_timeout = join_timeout
        self.mode = mode
        self.max_rate = max_rate
        self.encoder_batch = encoder_batch

        self._slots: FrameSlots[Frame] = FrameSlots()
        self._serials = itertools.count(1)
        self._model_lock = threading.Lock()   # the Segmenter and _encoded
        self._segmenter: Segmenter | None = None
        self._encoded: int | None = None      # serial of the frame whose embedding is cached
        self._frame_lock = threading.Lock()   # _latest
        self._latest: dict[str, Frame] = {}   # newest good (decoded) frame of each source
        self._run_lock = threading.Lock()     # start/stop
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    # -- settings -----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {value!r}")
        self._mode = value

    @property
    def max_rate(self) -> float:
        """Most frames taken per second, all sources together (0 = as fast as possible)."""
        return self._max_rate

    @max_rate.setter
    def max_rate(self, value: float) -> None:
        if not value >= 0.0:
            raise ValueError(f"max_rate must be >= 0, got {value}")
        self._max_rate = float(value)

    @property
    def encoder_batch(self) -> int:
        """Most frames (one per source) segmented with one encoder run; 1 = one frame at a
        time. The Segmenter splits a batch into runs its backend takes (Backend.max_batch)."""
        return self._encoder_batch

    @encoder_batch.setter
    def encoder_batch(self, value: int) -> None:
        self._encoder_batch = check_encoder_batch(value)  # the backends' range

    def update_settings(self, settings: SegmentSettings) -> None:
        """New pipeline settings, from the next frame or request on (the cached embedding
        stays valid: it depends on the image only)."""
        with self._model_lock:
            if self._segmenter is None:
                raise RuntimeStopped("no model loaded: the runtime is stopped")
            self._segmenter.settings = settings

    # -- depth (per source) --------------------------------------------------------------------
    def configure_depth(self, source: str, settings: DepthSettings | None) -> None:
        """Pair `source`'s frames with depth (submit_depth) and give them 3D; None = no depth
        for it. Frames waiting in its pairing are released first."""
        old = self._depth.pop(source, None)
        if old is not None:
            self._release_pairs(source, old.pairing.flush())
        if settings is not None:
            self._depth[source] = CameraDepth(settings)

    def depth_camera(self, source: str) -> CameraDepth | None:
        return self._depth.get(source)

    @property
    def depth_sources(self) -> list[str]:
        return list(self._depth)

    def set_camera_info(self, source: str, k: Sequence[float], d: Sequence[float],
                        p: Sequence[float]) -> bool:
        """The calibration of `source`'s colour camera (CameraInfo K, D, P); False, with a
        throttled warning, when it is not usable (3D stops until a good one comes)."""
        camera = self._depth.get(source)
        if camera is None:
            return False
        ok = camera.set_camera_info(k, d, p)
        if not ok:
            self._depth_warning(source, f"camera_info unusable ({source}): "
                                        f"{camera.camera_info_error}")
        return ok

    def submit_depth(self, payload: Any, source: str, stamp_ns: int) -> None:
        """A depth image of `source` (aligned to its colour camera), stamped `stamp_ns`."""
        camera = self._depth.get(source)
        if camera is None or self._worker is None:
            return
        self._release_pairs(source, camera.add_depth(int(stamp_ns), payload))

    def project(self, frame: Frame, result: SegmentationResult) -> Frame3D | None:
        """The 3D of `result` (segmented on `frame`'s image) from the depth paired with the
        frame; None when its source has no depth. Counts and logs what went wrong."""
        camera = self._depth.get(frame.source)
        if camera is None:
            return None
        out = project(result.masks, result.boxes, frame.meta.get("depth"),
                      frame.meta.get("depth_stamp_ns"), camera, self._decode_depth)
        if out.status in ("no_camera_info", "size_mismatch", "invalid"):
            self.stats.count(f"depth_{out.status}", source=frame.source)
            self._depth_warning(frame.source, f"no 3D for a frame of {frame.source}: "
                                              f"{out.message}")
        missing = sum(1 for inst in out.instances if inst.n_points == 0)
        if missing:
            self.stats.count("instances_without_depth", missing, source=frame.source)
        return out

    def _depth_warning(self, source: str, message: str) -> None:
        throttled = self._warn_depth.get(source)
        if throttled is None:
            throttled = self._warn_depth.setdefault(
                source, _Throttled(self._log.warning, self._log_period))
        throttled(message)

    # -- tracking (per source) -----------------------------------------------------------------
    @property
    def tracking(self) -> TrackerSettings | None:
        """Tracker settings (None: tracking off). Setting new ones keeps the tracks."""
        return self._tracking

    @tracking.setter
    def tracking(self, settings: TrackerSettings | None) -> None:
        with self._track_lock:
            self._tracking = settings
            if settings is None:
                self._trackers.clear()
            else:
                for tracker in self._trackers.values():
                    tracker.settings = settings

    def reset_tracks(self, source: str | None = None) -> int:
        """Forget the tracks of `source` (None: of every source); returns how many tracks were
        forgotten. New ids keep counting up: an id is never given twice by one source."""
        with self._track_lock:
            trackers = (list(self._trackers.values()) if source is None
                        else [t for s, t in self._trackers.items() if s == source])
            count = 0
            for tracker in trackers:
                count += tracker.live_tracks
                tracker.reset()
            return count

    def _track(self, frame: Frame, rles: list[dict], boxes: np.ndarray) -> np.ndarray | None:
        with self._track_lock:
            settings = self._tracking
            if settings is None:
                return None
            tracker = self._trackers.get(frame.source)
            if tracker is None:
                tracker = self._trackers[frame.source] = MaskTracker(settings)
            return tracker.update(rles, boxes)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def segmenter(self) -> Segmenter | None:
        """The model while running (to read its backend and settings; the runtime is the only
        one that runs it)."""
        return self._segmenter

    def start(self, segmenter: Segmenter) -> None:
        """Take the model and start the inference thread."""
        with self._run_lock:
            if self._worker is not None:
                raise RuntimeError("the runtime is already running: stop() it first")
            with self._model_lock:
                self._segmenter = segmenter
                self._encoded = None
            self._stop = threading.Event()
            self._slots.reopen()
            self._worker = threading.Thread(target=self._run, args=(self._stop,),
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
            with self._model_lock:  # waits for a prompt request in progress
                self._segmenter = None
                self._encoded = None
            with self._frame_lock:
                self._latest.clear()
            self._forget(None)
            with self._track_lock:
                self._trackers.clear()

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
        camera = self._depth.get(source)
        if camera is not None and stamp_ns is not None:
            frame.meta["stamp_ns"] = int(stamp_ns)
            return self._release_pairs(source, camera.add_colour(int(stamp_ns), frame))
        return self._put(frame)

    def _put(self, frame: Frame) -> bool:
        replaced = self._slots.put(frame.source, frame)
        if replaced:
            self.stats.count("dropped", source=frame.source)
        return replaced

    def _release_pairs(self, source: str, pairs: list[Any]) -> bool:
        replaced = False
        for pair in pairs:
            frame: Frame = pair.primary
            frame.meta["depth"] = pair.secondary
            frame.meta["depth_stamp_ns"] = pair.secondary_stamp_ns
            if pair.secondary is None:
                self.stats.count("depth_unpaired", source=source)
                self._depth_warning(source, f"colour frame of {source} at stamp "
                                            f"{pair.stamp_ns / 1e9:.6f} s has no depth image "
                                            "within depth_tolerance: published without 3D")
            else:
                self.stats.count("depth_paired", source=source)
            replaced = self._put(frame) or replaced
        return replaced

    def clear(self, source: str | None = None) -> None:
        """Forget frames waiting for inference (of `source`, or of every source), counted as
        dropped. Newest good frames stay for prompt requests."""
        self._forget(source)

    def _forget(self, source: str | None) -> None:
        forgotten = self._slots.clear(source)
        for name, camera in list(self._depth.items()):  # frames waiting for their depth
            if source is None or name == source:
                held = len(camera.pairing.flush())
                camera.pairing.clear()
                if held:
                    self.stats.count("dropped", held, source=name)
        if forgotten:
            self.stats.count("dropped", forgotten)

    @property
    def sources(self) -> list[str]:
        """Sources that submitted frames, in round-robin order."""
        return self._slots.sources

    def latest(self, source: str | None = None) -> Frame | None:
        """The newest good frame of `source`, or of any source when None."""
        with self._frame_lock:
            if source is not None:
                return self._latest.get(source)
            return max(self._latest.values(), key=lambda f: f.serial, default=None)

    @property
    def encoded_serial(self) -> int | None:
        """Serial of the frame whose embedding the model holds (None: no frame's)."""
        return self._encoded

    # -- inference thread ---------------------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        next_start = 0.0
        while not stop.is_set():
            if not wait_until(next_start, stop):
                break
            batch = self._encoder_batch if self._mode == "everything" else 1
            frames = self._slots.take_many(batch, timeout=0.2)
            if not frames:
                continue
            if stop.is_set():  # taken just as stop() closed the slots
                for frame in frames:
                    self.stats.count("dropped", source=frame.source)
                break
            rate = self._max_rate
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
                self.stats.count("errors", source=frame.source)
            return None

    def _decoded(self, frame: Frame) -> bool:
        """Decode and check `frame` into frame.rgb and make it its source's newest good frame;
        False (counted and logged) for an invalid frame."""
        try:
            frame.rgb = check_image(self._decode(frame.payload))
        except self._invalid as exc:
            self._warn_invalid(f"frame dropped ({frame.source}): {exc}")
            self.stats.count("invalid", source=frame.source)  # after the log, as errors are
            return False
        with self._frame_lock:
            self._latest[frame.source] = frame
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
        if self._mode != "everything":
            return
        images = [f.rgb for f in frames if f.rgb is not None]
        with self._model_lock:
            segmenter = self._segmenter
            if segmenter is None:
                return
            self._encoded = None  # whatever happens below, the old embedding is gone
            results = (segmenter.segment_everything_batch(images) if len(images) > 1
                       else [segmenter.segment_everything(images[0])])
            # the Segmenter caches the (last) image's embedding
            self._encoded = frames[-1].serial
        if len(frames) == 1:
            self._deliver(frames[0], results[0])
            return
        for frame, result in zip(frames, results):
            self._guarded([frame], self._deliver, frame, result)

    def _deliver(self, frame: Frame, result: SegmentationResult) -> None:
        """Annotate a segmented frame, hand it to on_result and count it (per source)."""
        self.annotate(frame, result)
        latency = time.monotonic() - frame.received
        if self._on_result is not None:
            self._on_result(frame, result, latency)
        self.stats.record(latency, source=frame.source)

    def annotate(self, frame: Frame, result: SegmentationResult) -> None:
        """What the runtime adds to a segmented frame, in ``frame.meta``: "rles" (COCO RLE of
        each instance), "track_ids" (uint32 per instance; absent when tracking is off) and
        "frame3d" (Frame3D; absent for a source without depth)."""
        rles = result.rles()
        frame.meta["rles"] = rles
        ids = self._track(frame, rles, result.boxes)
        if ids is not None:
            frame.meta["track_ids"] = ids
        else:
            frame.meta.pop("track_ids", None)
        frame3d = self.project(frame, result)
        if frame3d is not None:
            frame.meta["frame3d"] = frame3d

    # -- prompt requests (any thread) ---------------------------------------------------------
    def segment_prompts(self, prompts: Sequence[Prompt], image: np.ndarray | None = None, *,
                        multimask: bool = False, source: str | None = None) -> PromptAnswer:
        """One instance per prompt. With `image`: that image is encoded. Without: the newest
        good frame (of `source`, or of any source), whose embedding is reused when the model
        holds it. Raises SegmentError subclasses (NoFrameError, RuntimeStopped,
        InvalidImageError, InvalidPromptError) for requests it cannot serve."""
        if image is not None:
            image = check_image(image)
        with self._model_lock:
            segmenter = self._segmenter
            if segmenter is None:
                raise RuntimeStopped("no model loaded: the runtime is stopped")
            frame = None
            if image is None:
                # Chosen under the lock: after waiting for a frame in progress, the newest
                # frame is most likely the one just encoded.
                frame = self.latest(source)
                if frame is None or frame.rgb is None:
                    where = f" from {source!r}" if source is not None else ""
                    raise NoFrameError(f"no image given and no camera frame received{where} "
                                       "yet")
                image = frame.rgb
            reuse = (frame is not None and self._encoded == frame.serial
                     and segmenter.has_image)
            if not reuse:
                self._encoded = None
            result = segmenter.segment_prompts(None if reuse else image, prompts,
                                               multimask=multimask)
            self._encoded = frame.serial if frame is not None else None
        hw = (int(image.shape[0]), int(image.shape[1]))
        return PromptAnswer(result, frame, reuse, hw)
