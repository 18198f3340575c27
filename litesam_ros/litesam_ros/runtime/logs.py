"""How the runtime logs: through any logger with warning/error, throttled per kind of message."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class Logger(Protocol):
    """What the runtime logs through: logging.Logger and rclpy's node logger both fit."""

    def warning(self, message: str, /) -> Any: ...

    def error(self, message: str, /) -> Any: ...


class Throttled:
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


__all__ = ["Logger", "Throttled"]
