"""Camera subscriptions on a helper node with its own single-threaded executor thread.

The node spins in a MultiThreadedExecutor so that a prompt request can wait for the inference
thread while other callbacks run. That executor's Python bookkeeping costs CPU for every
callback, and a camera delivers 25-30 of them a second: receiving 640x272 rgb8 frames at 25 Hz
took 3.6-4.2 ms of CPU per frame on a lifecycle node spun like ours, against 1.5-1.6 ms with
the subscription on a helper node spun by a SingleThreadedExecutor (this 2-core machine, quiet;
benchmarks/bench_camera_receive.py). On a CPU robot those cores run the model: the demo went
from 4.6-5.5 to 5.5-6.2 segmented frames/s (docs/benchmarks.md, "make demo frame rate").

The helper node (``<node name>_cameras``) takes no command-line arguments of its own: each
topic is resolved by the owning node first (its namespace and remappings), so a launch file's
remappings apply as before. Its callbacks only hand messages to the runtime, which is
thread-safe.
"""

from __future__ import annotations

import threading
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


class CameraReceiver:
    """``create_subscription`` like a Node's (topics resolved by ``owner``), spun on a thread
    of its own from :meth:`start` until :meth:`close`, which destroys the subscriptions."""

    def __init__(self, owner: Node) -> None:
        self._owner = owner
        self.node = rclpy.create_node(
            f"{owner.get_name()}_cameras", context=owner.context, use_global_arguments=False,
            enable_rosout=False, start_parameter_services=False)
        self._executor = SingleThreadedExecutor(context=owner.context)
        self._executor.add_node(self.node)
        self._thread: threading.Thread | None = None

    def create_subscription(self, msg_type: Any, topic: str, callback: Any, qos: Any,
                            **kwargs: Any) -> Any:
        name = self._owner.resolve_topic_name(topic)
        return self.node.create_subscription(msg_type, name, callback, qos, **kwargs)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._spin, name="litesam_cameras",
                                            daemon=True)
            self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:  # the process is shutting down
            pass

    def close(self) -> None:
        """Stop the thread and destroy the helper node with its subscriptions."""
        self._executor.shutdown(timeout_sec=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self.node.destroy_node()


__all__ = ["CameraReceiver"]
