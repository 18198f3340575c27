"""The package builds with colcon as on a ROS install, and what it installs imports and runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


def test_colcon_build_installs_interfaces_python_and_executables(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items()
           if k not in ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "LD_LIBRARY_PATH", "PYTHONPATH")}
    env["LITESAM_VENV"] = str(VENV)
    build = subprocess.run(["bash", str(REPO / "scripts" / "colcon_build.sh"), str(ws)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]

    install = ws / "install" / "litesam_ros"
    node_exe = install / "lib" / "litesam_ros" / "litesam_node"
    assert node_exe.exists()
    assert node_exe.read_text().splitlines()[0] == f"#!{VENV / 'bin' / 'python'}"
    assert (install / "share" / "litesam_ros" / "launch" / "litesam.launch.py").exists()
    assert (install / "share" / "litesam_ros" / "config" / "fastdds_shm.xml").exists()

    # A clean shell that sources the workspace finds the generated messages and the hand-written
    # modules in the same litesam_ros package, from the install prefix (not this source tree).
    probe = (
        "import litesam_ros, litesam_ros.ros;"
        "from litesam_ros.msg import InstanceMaskArray;"
        "from litesam_ros.srv import SegmentPrompt;"
        "print(litesam_ros.__file__)"
    )
    run = subprocess.run(
        ["bash", "-c", f"source {ws}/install/setup.bash && {VENV}/bin/python -c '{probe}'"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().startswith(str(install)), run.stdout
