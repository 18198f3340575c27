"""Runtime statistics: frame counters since start and recent rate and latency."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

#: The counters, in the order diagnostics show them.
COUNTERS = ("received", "processed", "dropped", "invalid", "errors")


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
    _recent: deque[tuple[float, float]] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, n: int = 1) -> None:
        """Add `n` to the counter `name` (one of COUNTERS, except processed: see record)."""
        if name not in COUNTERS or name == "processed":
            raise ValueError(f"not a counter: {name!r}")
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def record(self, latency: float) -> None:
        """One frame processed, `latency` seconds after it was received."""
        now = time.monotonic()
        with self._lock:
            self.processed += 1
            self._recent.append((now, latency))
            while self._recent and now - self._recent[0][0] > self.window:
                self._recent.popleft()

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
