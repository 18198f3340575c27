"""Helpers of the runtime tests (a module, not conftest, so test files can import it).

InstrumentedBackend wraps the real backend to count encoder runs, to make the model slow (it
sleeps before encoding) or to make one encoder run fail; the numbers still come from the real
model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch

from litesam_ros.engines.base import Backend, EncoderResult

MODEL = "lite_sam_r320"

class InstrumentedBackend(Backend):
    """The real backend, counting encoder runs (and recording each run's batch size in
    `batches`); `delay` seconds more per encode; encode runs numbered in `fail_on` (1-based)
    raise RuntimeError. It takes the batches the real backend takes (max_batch)."""

    def __init__(self, inner: Backend, delay: float = 0.0, fail_on: Iterable[int] = ()) -> None:
        self.inner = inner
        self.name = inner.name
        self.config = inner.config
        self.model_thresholds = inner.model_thresholds
        self.max_batch = inner.max_batch
        self.batches: list[int] = []
        self.delay = delay
        self.fail_on = set(fail_on)
        self.encode_calls = 0
        self._lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        return self.inner.device

    def encode(self, image: torch.Tensor) -> EncoderResult:
        with self._lock:
            self.encode_calls += 1
            self.batches.append(int(image.shape[0]))
            call = self.encode_calls
        if self.delay:
            time.sleep(self.delay)
        if call in self.fail_on:
            raise RuntimeError(f"injected failure in encoder run {call}")
        return self.inner.encode(image)

    def decode(self, embeddings: torch.Tensor, point_coords: torch.Tensor,
               point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner.decode(embeddings, point_coords, point_labels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["inner"], name)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
