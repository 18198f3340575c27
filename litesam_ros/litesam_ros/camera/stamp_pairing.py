"""Approximate-time pairing of two message streams by stamp (colour frames with depth frames).

ROS's ``message_filters.ApproximateTimeSynchronizer`` is the usual tool, but message_filters is
not on PyPI (the ROS 2 wheels this project tests with lack it) and its policy can wait for
frames indefinitely. This is a small replacement for the two-stream case, with no ROS in it.

Policy (the primary stream drives; every primary is released exactly once, in order):
- a primary at stamp ``t`` is final once the secondary stream has delivered a stamp ``>= t``:
  the secondary streams arrive in stamp order, so no later secondary can be closer to ``t``;
  it is released with the closest secondary within ``tolerance_ns``, or with None;
- when more than ``max_pending`` primaries wait (the secondary stream is late or gone), the
  oldest is released with the best secondary at hand (or None), so a dead depth camera never
  stalls the colour pipeline;
- a message older than the newest of its own stream is out of order: dropped and counted;
- secondaries that no waiting or future primary can use are forgotten.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, Generic, List, Optional, Tuple, TypeVar

P = TypeVar("P")
S = TypeVar("S")


@dataclass(frozen=True)
class Pair(Generic[P, S]):
    """A primary message, its stamp, and the paired secondary (None when none was close)."""

    stamp_ns: int
    primary: P
    secondary: Optional[S]
    secondary_stamp_ns: Optional[int] = None


class StampPairing(Generic[P, S]):
    """Thread-safe two-stream approximate-time pairing; see the module docstring."""

    def __init__(self, tolerance_ns: int, max_pending: int = 2, max_secondary: int = 16) -> None:
        if tolerance_ns < 0 or max_pending < 1 or max_secondary < 1:
            raise ValueError("tolerance_ns must be >= 0, max_pending and max_secondary >= 1")
        self.tolerance_ns = int(tolerance_ns)
        self.max_pending = int(max_pending)
        self._primary: Deque[Tuple[int, P]] = deque()
        self._secondary: Deque[Tuple[int, S]] = deque(maxlen=int(max_secondary))
        self._newest: Dict[str, Optional[int]] = {"primary": None, "secondary": None}
        self._lock = threading.Lock()
        self.stats: Dict[str, int] = {"paired": 0, "unpaired": 0, "out_of_order": 0}

    def add_primary(self, stamp_ns: int, item: P) -> List[Pair[P, S]]:
        """Add a primary message; returns the primaries that became final, oldest first."""
        with self._lock:
            if not self._in_order("primary", stamp_ns):
                return []
            self._primary.append((int(stamp_ns), item))
            return self._release()

    def add_secondary(self, stamp_ns: int, item: S) -> List[Pair[P, S]]:
        """Add a secondary message; returns the primaries that became final, oldest first."""
        with self._lock:
            if not self._in_order("secondary", stamp_ns):
                return []
            self._secondary.append((int(stamp_ns), item))
            return self._release()

    def flush(self) -> List[Pair[P, S]]:
        """Release every waiting primary with the best secondary at hand (e.g. on shutdown)."""
        with self._lock:
            out = []
            while self._primary:
                out.append(self._pop_oldest())
            return out

    def clear(self) -> None:
        with self._lock:
            self._primary.clear()
            self._secondary.clear()
            self._newest = {"primary": None, "secondary": None}

    @property
    def pending(self) -> int:
        return len(self._primary)

    def _in_order(self, stream: str, stamp: int) -> bool:
        newest = self._newest[stream]
        if newest is not None and stamp < newest:
            self.stats["out_of_order"] += 1
            return False
        self._newest[stream] = int(stamp)
        return True

    def _release(self) -> List[Pair[P, S]]:
        out: List[Pair[P, S]] = []
        newest_s = self._newest["secondary"]
        while self._primary and (
                (newest_s is not None and newest_s >= self._primary[0][0])
                or len(self._primary) > self.max_pending):
            out.append(self._pop_oldest())
        self._forget_stale()
        return out

    def _pop_oldest(self) -> Pair[P, S]:
        t, item = self._primary.popleft()
        best: Optional[Tuple[int, Any]] = None
        for ts, s in self._secondary:
            d = abs(ts - t)
            if d <= self.tolerance_ns and (best is None or d < abs(best[0] - t)):
                best = (ts, s)
        self.stats["paired" if best is not None else "unpaired"] += 1
        if best is None:
            return Pair(t, item, None, None)
        return Pair(t, item, best[1], best[0])

    def _forget_stale(self) -> None:
        """Drop secondaries older than what any waiting or future primary can pair with."""
        oldest = self._primary[0][0] if self._primary else self._newest["primary"]
        if oldest is None:
            return
        while self._secondary and self._secondary[0][0] < oldest - self.tolerance_ns:
            self._secondary.popleft()


__all__ = ["Pair", "StampPairing"]
