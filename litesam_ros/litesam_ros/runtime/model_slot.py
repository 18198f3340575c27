"""The runtime's model: the Segmenter, the lock that serialises the inference thread and prompt
requests on it, and which frame its cached embedding belongs to."""

from __future__ import annotations

import threading

from ..segment import SegmentError, Segmenter, SegmentSettings


class RuntimeStopped(SegmentError):
    """The runtime has no model: it is not started, or it was stopped."""


class ModelSlot:
    """Hold ``lock`` to use ``segmenter`` or ``encoded`` (the serial of the frame whose
    embedding the Segmenter caches; None: no frame's). The runtime is the only user of its
    Segmenter, so that key and the Segmenter's cached embedding cannot disagree."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.segmenter: Segmenter | None = None
        self.encoded: int | None = None

    def load(self, segmenter: Segmenter | None) -> None:
        """Take a model (None: let it go); waits for a request in progress."""
        with self.lock:
            self.segmenter = segmenter
            self.encoded = None

    def update_settings(self, settings: SegmentSettings) -> None:
        """New pipeline settings, from the next frame or request on (the cached embedding
        stays valid: it depends on the image only)."""
        with self.lock:
            if self.segmenter is None:
                raise RuntimeStopped("no model loaded: the runtime is stopped")
            self.segmenter.settings = settings


__all__ = ["ModelSlot", "RuntimeStopped"]
