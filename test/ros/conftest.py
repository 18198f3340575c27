"""Fixtures for the node tests: the real node in-process (own executor thread) and test clients."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from node_support import OPEN_THRESHOLDS, model_under_test


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real 640x480 RGB photo."""
    return cv2.resize(skdata.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)


class NodeRunner:
    """A LiteSamNode spinning in a MultiThreadedExecutor on a background thread."""

    def __init__(self, node: Any, executor: Any) -> None:
        self.node = node
        self.executor = executor
        self.thread = threading.Thread(target=executor.spin, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        self.thread.join(timeout=10.0)
        self.node.destroy_node()


@pytest.fixture
def start_node(ros_context: Any, engine_cache: Path) -> Iterator[Callable[..., NodeRunner]]:
    """start_node(autostart=True, **params) -> a configured and activated node."""
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from litesam_ros.ros.node import LiteSamNode

    runners: list[NodeRunner] = []

    def start(autostart: bool = True, **params: Any) -> NodeRunner:
        values = {"model": model_under_test(), "backend": "onnxruntime",
                  "engine_cache_dir": str(engine_cache), **OPEN_THRESHOLDS, **params}
        overrides = [Parameter(k, value=v) for k, v in values.items()]
        node = LiteSamNode(context=ros_context, parameter_overrides=overrides)
        if autostart:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        executor = MultiThreadedExecutor(num_threads=3, context=ros_context)
        executor.add_node(node)
        runner = NodeRunner(node, executor)
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        runner.stop()
