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


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX/engine cache for the whole run: a model's graphs are exported once, then reused
    by every node and benchmark that runs the same weights."""
    return tmp_path_factory.mktemp("engine_cache")


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


# -- test tiers ------------------------------------------------------------------------------
# `pytest -m "not slow"` is the unit tier (pure functions, the real model at tiny sizes);
# `pytest` (the README's command, CI) runs everything. Slow = builds, type checks, separate
# processes, real DDS nodes, ONNX/TensorRT export, official-model parity and multi-process
# training: whole files, listed here so a new test file lands in the fast tier unless named.
SLOW_FILES = (
    "build/", "interfaces/", "ros/", "parity/", "engines/", "runtime/",
    "test_typecheck.py", "test_demo_thresholds.py",
    "model/test_model_onnx.py", "model/test_sam_vit.py", "model/test_efficient_sam.py",
    "model/test_tiny_vit.py", "model/test_autoppn_offsets.py", "model/test_model_files.py",
    "segment/test_iou_calibration.py", "segment/test_segment_pipeline.py",
    "segment/test_segment_strategies.py",
    "training/test_trainer.py", "training/test_distill_ddp.py", "training/test_distill_recipes.py",
    "training/test_calibrate.py", "training/test_freeze.py", "training/test_eval_baselines.py",
    "training/test_offset_targets.py", "training/test_teacher_masks.py",
    "test_benchmarks_smoke_slow.py",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: integration tier (excluded by -m 'not slow')")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        rel = Path(str(item.fspath)).relative_to(root).as_posix()
        if any(rel.startswith(s) or rel == s for s in SLOW_FILES):
            item.add_marker(pytest.mark.slow)
