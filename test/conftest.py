"""Shared pytest fixtures. ROS fixtures give every test its own domain id and ROS_HOME."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ros_harness import (  # noqa: E402
    ProcessStarter,
    dds_environment,
    reserved_domain_id,
)

# Fast DDS reads its XML profile once per process, at the first participant: set it before any
# test creates one.
os.environ.update(dds_environment())


@pytest.fixture
def ros_domain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A ROS domain id reserved for this test, with ROS_HOME and logs under tmp_path."""
    with reserved_domain_id() as domain_id:
        monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
        monkeypatch.setenv("ROS_HOME", str(tmp_path / "ros_home"))
        monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "ros_home" / "log"))
        yield domain_id


@pytest.fixture
def ros_context(ros_domain: int) -> Iterator[Any]:
    """An initialised rclpy context of its own in this test's domain."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


@pytest.fixture
def ros_executor(ros_context: Any) -> Iterator[Any]:
    """A single-threaded executor on the test's context; nodes added to it are destroyed after."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=ros_context)
    try:
        yield executor
    finally:
        for node in list(executor.get_nodes()):
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()


@pytest.fixture
def ros_processes(ros_domain: int, tmp_path: Path) -> Iterator[ProcessStarter]:
    """Starts child processes (installed executables) in this test's domain; stops them after."""
    starter = ProcessStarter(ros_domain, tmp_path / "ros_home", tmp_path)
    try:
        yield starter
    finally:
        starter.stop_all()
