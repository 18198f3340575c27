"""Environment for child ROS processes started from Python (the demo, the tests)."""

from __future__ import annotations

import os

# The PyPI ROS wheels re-exec Python once with LD_LIBRARY_PATH set and this guard variable; a
# child must inherit neither, or its own bootstrap is skipped and libfastrtps fails to load.
_WHEEL_BOOTSTRAP_VARIABLES = ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "LD_LIBRARY_PATH")


def child_ros_environment(domain_id: int | None = None, **extra: str) -> dict[str, str]:
    """A copy of this process's environment that is safe for a child ROS process."""
    env = {k: v for k, v in os.environ.items() if k not in _WHEEL_BOOTSTRAP_VARIABLES}
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    env.update(extra)
    return env
