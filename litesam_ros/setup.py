"""litesam_ros, an ament_python package: the Python package, console scripts, launch and config.

One setup.py for both routes: colcon builds it on a ROS install (beside ../litesam_msgs, the
msg/srv), and scripts/setup.sh pip-installs it into the development venv.
config/ and weights/ are at the repository root, beside this folder (the training and benchmark
tools use them from there too); they are installed to share/litesam_ros like launch/.
"""

import os
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _data_files() -> list[tuple[str, list[str]]]:
    share = "share/litesam_ros"
    files = [("share/ament_index/resource_index/packages", ["resource/litesam_ros"]),
             (share, ["package.xml"])]
    for folder in (HERE / "launch", REPO / "config", REPO / "weights"):
        paths = sorted(p for p in folder.glob("*")
                       if p.is_file() and not p.name.startswith(".")
                       and not p.name.endswith((".state.pt", ".jsonl")))  # training leftovers
        if paths:  # paths relative to this folder (setuptools wants them relative)
            files.append((f"{share}/{folder.name}",
                          [os.path.relpath(p, HERE) for p in paths]))
    return files


def _ranges(name: str) -> list[str]:
    """The version ranges of requirements/<name> (a ROS install's; its -r includes left out)."""
    lines = (REPO / "requirements" / name).read_text().splitlines()
    return [line.split(" #")[0].strip() for line in lines
            if line.strip() and not line.lstrip().startswith(("#", "-r"))]


setup(
    name="litesam_ros",
    version="0.1.0",
    description="Lite-SAM segmentation node for ROS 2 (TensorRT / ONNX Runtime / torch)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["litesam_ros", "litesam_ros.*"]),
    package_data={"litesam_ros": ["py.typed"]},
    data_files=_data_files(),
    # The ranges a ROS install needs (requirements/ros-install*.txt, checked in CI); OpenCV is the
    # system's (rosdep: python3-opencv). The venv's pinned lock is requirements/runtime.txt, and
    # ROS itself comes from the ROS install (or the PyPI ROS wheels in this project's venv).
    install_requires=_ranges("ros-install.txt"),
    extras_require={"desktop": _ranges("ros-install-desktop.txt")},
    entry_points={
        "console_scripts": [
            "litesam_node = litesam_ros.ros.node:main",
            "litesam_demo = litesam_ros.apps.demo:main",
            "litesam-engines = litesam_ros.apps.engines_cli:main",
            "litesam-train = litesam_ros.apps.train_cli:main",
            "litesam-model = litesam_ros.apps.model_cli:main",
        ],
    },
)
