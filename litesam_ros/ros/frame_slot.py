"""A one-frame mailbox between the executor thread and the inference thread: newest wins."""

from __future__ import annotations

import threading
import time
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class FrameSlot(Generic[T]):
    """Holds at most one item. put() replaces an item that was not taken yet (counted as a
    drop), so memory stays bounded and the consumer always gets the newest frame."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store `item`; returns True when it replaced a frame nobody had taken (a drop)."""
        with self._cond:
            replaced = self._item is not None
            if replaced:
                self.dropped += 1
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to `timeout` seconds; None on timeout or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._item is None and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        with self._cond:
            self._item = None

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


__all__: list[Any] = ["FrameSlot", "wait_until"]
