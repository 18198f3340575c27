"""Frames as received and the newest-frame slots between producers and the inference thread.

One slot per source (a camera): a source's newer frame replaces its older one that inference
has not taken yet (newest wins; the replaced frame is counted as dropped), so memory stays one
frame per source whatever the camera rates. The inference thread takes from the sources in
turn (round-robin), so a fast camera cannot starve a slow one; with a batching encoder it takes
the next N sources' frames at once (take_many), in the same order.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

#: The source name of a runtime fed by one camera.
DEFAULT_SOURCE = "default"

T = TypeVar("T")


@dataclass
class Frame:
    """A frame as received (``payload``: whatever the producer submitted, e.g. a ROS image
    message) and, once decoded on the inference thread, its RGB pixels. A frame of a source
    with depth carries its stamp and the depth image paired with it (None: none within the
    tolerance)."""

    source: str
    payload: Any
    received: float  # time.monotonic() at submit
    serial: int      # unique within a runtime, increasing in order of arrival
    rgb: np.ndarray | None = None
    stamp_ns: int | None = None        # the camera's stamp, when submitted with one
    depth: Any = None                  # the paired depth payload
    depth_stamp_ns: int | None = None  # its stamp


class LatestFrames:
    """The newest good (decoded) frame of each source, for prompt requests; any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[str, Frame] = {}

    def set(self, frame: Frame) -> None:
        with self._lock:
            self._frames[frame.source] = frame

    def get(self, source: str | None = None) -> Frame | None:
        """The newest good frame of `source`, or of any source when None."""
        with self._lock:
            if source is not None:
                return self._frames.get(source)
            return max(self._frames.values(), key=lambda f: f.serial, default=None)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()


class FrameSlots(Generic[T]):
    """At most one waiting item per source. put() replaces a source's item that was not taken
    yet (a drop, counted); take() returns the waiting items of the sources in turn, take_many(n)
    the next n of them at once (one per source: a batch for the encoder)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: dict[str, T] = {}
        self._order: list[str] = []  # sources in order of first put: the round-robin order
        self._last: str | None = None  # the source served last: the next take starts after it
        self._closed = False
        self.dropped = 0

    def put(self, source: str, item: T) -> bool:
        """Store `item` as the newest of `source`; True when it replaced an item nobody had
        taken (a drop)."""
        with self._cond:
            if source not in self._order:
                self._order.append(source)
            replaced = source in self._items
            if replaced:
                self.dropped += 1
            self._items[source] = item
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The waiting item of the next source in turn, waiting up to `timeout` seconds for
        one; None on timeout or once closed with nothing waiting."""
        items = self.take_many(1, timeout)
        return items[0] if items else None

    def take_many(self, n: int, timeout: float | None = None) -> list[T]:
        """Up to `n` waiting items, one per source, of the next sources in turn (the order n
        calls of take() would give them in, without waiting between them); waits up to
        `timeout` seconds for the first. [] on timeout or once closed with nothing waiting."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return []
                self._cond.wait(remaining)
            count = len(self._order)
            first = self._order.index(self._last) + 1 if self._last is not None else 0
            out: list[T] = []
            for step in range(count):
                source = self._order[(first + step) % count]
                if source in self._items:
                    self._last = source
                    out.append(self._items.pop(source))
                    if len(out) == n:
                        break
            return out

    @property
    def sources(self) -> list[str]:
        """Every source that has put a frame, in round-robin order."""
        with self._cond:
            return list(self._order)

    def pending(self) -> int:
        """How many items wait (at most one per source)."""
        with self._cond:
            return len(self._items)

    def clear(self, source: str | None = None) -> int:
        """Forget the waiting item of `source` (None: of every source); returns how many were
        forgotten (not counted in `dropped`, which counts replaced items)."""
        with self._cond:
            if source is None:
                count = len(self._items)
                self._items.clear()
                return count
            return 0 if self._items.pop(source, None) is None else 1

    def close(self) -> None:
        """Wake every waiting take(); later takes return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False


def wait_until(deadline: float, stop: threading.Event) -> bool:
    """Sleep until time.monotonic() reaches `deadline`; False if `stop` was set meanwhile."""
    remaining = deadline - time.monotonic()
    return not stop.wait(remaining) if remaining > 0 else not stop.is_set()
