"""Fixtures of the runtime tests: the real model (Lite-SAM r320, torch backend on the CPU), a
real photo, and runtimes stopped after each test. No ROS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

from litesam_ros.engines.base import Backend
from runtime_support import MODEL, InstrumentedBackend


@pytest.fixture(scope="session")
def real_backend() -> Backend:
    from litesam_ros.engines import create_backend

    torch.set_num_threads(2)
    return create_backend("torch", MODEL)


@pytest.fixture(scope="session")
def batch_backend() -> Backend:
    """The same model with an encoder that takes batches of up to 4 images."""
    from litesam_ros.engines import create_backend

    torch.set_num_threads(2)
    return create_backend("torch", MODEL, encoder_batch=4)


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real 320x240 RGB photo."""
    return cv2.resize(skdata.astronaut(), (320, 240), interpolation=cv2.INTER_AREA)


@pytest.fixture
def instrumented(real_backend: Backend) -> Callable[..., InstrumentedBackend]:
    return lambda **kw: InstrumentedBackend(real_backend, **kw)


@pytest.fixture
def runtimes() -> Iterator[list[Any]]:
    """Runtimes a test made; stopped after it."""
    made: list[Any] = []
    yield made
    for runtime in made:
        runtime.stop()
