"""Real ROS 2 test bed: an own domain id and ROS_HOME per test, in-process nodes, child processes.

Processes on one machine hear each other whatever ROS_LOCALHOST_ONLY says, so isolation comes
from a distinct ROS_DOMAIN_ID per test, reserved with a lock file so that concurrent pytest runs
on the same machine never share one.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
SHM_PROFILE = REPO / "config" / "fastdds_shm.xml"
VENV_BIN = Path(sys.executable).parent
# ROS_DOMAIN_ID must stay <= 232 with Fast DDS; 0 is left to whatever else runs on the machine.
DOMAIN_IDS = range(1, 233)
LOCK_DIR = Path(os.environ.get("LITESAM_TEST_LOCK_DIR", "/tmp/litesam_ros_test_domains"))


def dds_environment() -> dict[str, str]:
    """Variables every ROS participant of the tests uses (the SHM profile, Fast DDS).

    Kilted reads FASTDDS_DEFAULT_PROFILES_FILE (and warns about the older FASTRTPS_ name, which
    Humble and Jazzy need instead).
    """
    return {
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "FASTDDS_DEFAULT_PROFILES_FILE": str(SHM_PROFILE),
    }


@contextmanager
def reserved_domain_id() -> Iterator[int]:
    """Reserve a ROS domain id no other test on this machine holds, for the block's duration."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    ids = list(DOMAIN_IDS)
    random.shuffle(ids)
    for domain_id in ids:
        handle = open(LOCK_DIR / f"{domain_id}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        try:
            yield domain_id
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    raise RuntimeError(f"all ROS domain ids {DOMAIN_IDS} are in use by other tests")


def child_environment(domain_id: int, ros_home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child ROS process: the installed package (no PYTHONPATH to the source
    tree), this test's domain and ROS_HOME, the SHM profile."""
    from litesam_ros.ros.process_env import child_ros_environment

    env = child_ros_environment(domain_id)
    for name in ("PYTHONPATH", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        env.pop(name, None)
    env.update(dds_environment())
    env.update({
        "ROS_HOME": str(ros_home),
        "ROS_LOG_DIR": str(ros_home / "log"),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    })
    env.update(extra or {})
    return env


@dataclass
class RosProcess:
    """A child process with its output in a file; stopped with SIGINT, then harder."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.terminate()
                try:
                    self.popen.wait(5)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait()
        self._log.close()
        return int(self.popen.returncode)


class ProcessStarter:
    """Starts child processes in the test's ROS domain and stops them all at teardown."""

    def __init__(self, domain_id: int, ros_home: Path, log_dir: Path) -> None:
        self.domain_id = domain_id
        self.ros_home = ros_home
        self.log_dir = log_dir
        self.processes: list[RosProcess] = []

    def executable(self, name: str) -> str:
        """Path of a console script installed into this interpreter's environment."""
        path = VENV_BIN / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is not installed: run scripts/setup.sh")
        return str(path)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> RosProcess:
        log_path = self.log_dir / f"{name}-{len(self.processes)}.log"
        log = open(log_path, "wb")
        popen = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                 env=child_environment(self.domain_id, self.ros_home, env),
                                 cwd=str(cwd or self.log_dir), start_new_session=True)
        proc = RosProcess(name, popen, log_path, log)
        self.processes.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()


def spin_until(executor: Any, predicate: Callable[[], bool], timeout: float,
               step: float = 0.05) -> bool:
    """Spin `executor` until `predicate()` holds or `timeout` seconds pass; returns the predicate."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step)
    return predicate()
