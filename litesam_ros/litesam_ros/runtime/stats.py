"""Runtime statistics: frame counters since start and recent rate and latency."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

#: The counters, in the order diagnostics show them.
COUNTERS = ("received", "processed", "dropped", "invalid", "errors")
#: Counters of the depth (3D) step, outside the frame invariant below: colour frames released
#: with a depth image within the tolerance (paired) or without one (unpaired), and frames whose
#: 3D could not be made although depth was paired (no camera_info yet, depth size differs from
#: the image's, depth image not decodable), and instances with no valid depth pixel at all.
DEPTH_COUNTERS = ("depth_paired", "depth_unpaired", "depth_no_camera_info",
                  "depth_size_mismatch", "depth_invalid", "instances_without_depth")


@dataclass
class RuntimeStats:
    """Counters since the runtime was made (they survive stop/start), plus a sliding window of
    recent latencies for rate and latency. Safe to update and read from any thread.

    In mode "everything", once no frame waits or is in progress, every received frame is
    counted exactly once: received == processed + dropped + invalid + errors. (In mode
    "prompt_only" good frames are kept for prompts, not processed.)"""

    received: int = 0   # frames submitted
    processed: int = 0  # frames segmented and handed to the result callback
    dropped: int = 0    # frames never taken by inference: replaced by a newer one of their
    #                     source, or forgotten by clear() / stop()
    invalid: int = 0    # frames that are not an image (bad encoding, truncated data, 0x0)
    errors: int = 0     # frames that failed inside the pipeline or the result callback
    window: float = 5.0
    extra: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEPTH_COUNTERS, 0))
    _sources: dict[str, "RuntimeStats"] = field(default_factory=dict, repr=False)
    _recent: deque[tuple[float, float]] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, n: int = 1, source: str | None = None) -> None:
        """Add `n` to the counter `name` (one of COUNTERS except processed, see record, or one
        of DEPTH_COUNTERS), and to `source`'s own counter when given."""
        if name in DEPTH_COUNTERS:
            with self._lock:
                self.extra[name] += n
        elif name not in COUNTERS or name == "processed":
            raise ValueError(f"not a counter: {name!r}")
        else:
            with self._lock:
                setattr(self, name, getattr(self, name) + n)
        if source is not None:
            self.source(source).count(name, n)

    def record(self, latency: float, source: str | None = None) -> None:
        """One frame processed, `latency` seconds after it was received (of `source`, if given:
        counted for it too)."""
        now = time.monotonic()
        with self._lock:
            self.processed += 1
            self._recent.append((now, latency))
            while self._recent and now - self._recent[0][0] > self.window:
                self._recent.popleft()
        if source is not None:
            self.source(source).record(latency)

    def source(self, name: str) -> "RuntimeStats":
        """The statistics of one source (a camera), made on first use."""
        with self._lock:
            stats = self._sources.get(name)
            if stats is None:
                stats = self._sources[name] = RuntimeStats(window=self.window)
            return stats

    @property
    def sources(self) -> list[str]:
        """Sources with statistics of their own, in order of first count."""
        with self._lock:
            return list(self._sources)

    def depth_snapshot(self) -> dict[str, int]:
        """The depth counters, read together."""
        with self._lock:
            return dict(self.extra)

    def snapshot(self) -> dict[str, int]:
        """The counters, read together."""
        with self._lock:
            return {name: getattr(self, name) for name in COUNTERS}

    def rate_and_latency(self) -> tuple[float, float, float]:
        """(frames/s, mean latency s, max latency s) over the recent window."""
        now = time.monotonic()
        with self._lock:
            recent = [(t, lat) for t, lat in self._recent if now - t <= self.window]
        if not recent:
            return 0.0, 0.0, 0.0
        lats = [lat for _, lat in recent]
        return len(recent) / self.window, sum(lats) / len(lats), max(lats)
