"""Node statistics and their /diagnostics message (rate, latency, drops, backend, model)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


@dataclass
class NodeStats:
    """Counters since start, plus a sliding window of recent latencies for rate and latency."""

    received: int = 0   # frames that arrived
    processed: int = 0  # frames segmented and published
    dropped: int = 0    # frames replaced by a newer one before inference took them
    invalid: int = 0    # frames that could not be decoded (bad encoding, truncated data)
    errors: int = 0     # frames that failed inside the pipeline
    window: float = 5.0
    _recent: deque[tuple[float, float]] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, latency: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.processed += 1
            self._recent.append((now, latency))
            while self._recent and now - self._recent[0][0] > self.window:
                self._recent.popleft()

    def rate_and_latency(self) -> tuple[float, float, float]:
        """(frames/s, mean latency s, max latency s) over the recent window."""
        now = time.monotonic()
        with self._lock:
            recent = [(t, lat) for t, lat in self._recent if now - t <= self.window]
        if not recent:
            return 0.0, 0.0, 0.0
        lats = [lat for _, lat in recent]
        return len(recent) / self.window, sum(lats) / len(lats), max(lats)


def diagnostics_message(name: str, stats: NodeStats, stamp: Any, *, active: bool, backend: str,
                        model: str) -> DiagnosticArray:
    rate, mean_latency, max_latency = stats.rate_and_latency()
    status = DiagnosticStatus(name=f"litesam_ros: {name}", hardware_id=backend or "none")
    if not active:
        status.level, status.message = DiagnosticStatus.WARN, "inactive"
    elif stats.errors:
        status.level, status.message = DiagnosticStatus.WARN, f"{stats.errors} frames failed"
    else:
        status.level, status.message = DiagnosticStatus.OK, "segmenting"
    values = {
        "active": str(active).lower(),
        "backend": backend,
        "model": model,
        "rate_hz": f"{rate:.2f}",
        "latency_mean_ms": f"{mean_latency * 1e3:.1f}",
        "latency_max_ms": f"{max_latency * 1e3:.1f}",
        "frames_received": str(stats.received),
        "frames_processed": str(stats.processed),
        "frames_dropped": str(stats.dropped),
        "frames_invalid": str(stats.invalid),
        "frames_failed": str(stats.errors),
    }
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status]
    return msg
