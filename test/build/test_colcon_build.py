"""The repository builds with colcon as on a ROS install (litesam_msgs with CMake, litesam_ros as
ament_python), and what it installs imports and runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
EXECUTABLES = ("litesam_node", "litesam_demo")


def test_colcon_build_installs_interfaces_python_and_executables(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items()
           if k not in ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "LD_LIBRARY_PATH", "PYTHONPATH")}
    env["LITESAM_VENV"] = str(VENV)
    build = subprocess.run(["bash", str(REPO / "scripts" / "colcon_build.sh"), str(ws)], env=env,
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    assert "Finished <<< litesam_msgs" in build.stdout, build.stdout[-4000:]
    assert "Finished <<< litesam_ros" in build.stdout, build.stdout[-4000:]

    # litesam_msgs: the interface definitions, as ament_cmake packages install them.
    msgs = ws / "install" / "litesam_msgs"
    for name in ("msg/InstanceMaskArray.msg", "msg/Instance3DArray.msg", "srv/SegmentPrompt.srv"):
        assert (msgs / "share" / "litesam_msgs" / name).exists(), name

    # litesam_ros (ament_python): registered in the ament index, share files, and the executables
    # `ros2 run litesam_ros <name>` finds in lib/litesam_ros, run by the Python that built them.
    install = ws / "install" / "litesam_ros"
    share = install / "share" / "litesam_ros"
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / "litesam_ros").exists()
    assert (share / "package.xml").exists()
    assert (share / "launch" / "litesam.launch.py").exists()
    assert (share / "config" / "fastdds_shm.xml").exists()
    assert (share / "config" / "litesam.yaml").exists()
    for exe in EXECUTABLES:
        path = install / "lib" / "litesam_ros" / exe
        assert path.exists(), exe
        assert os.access(path, os.X_OK), exe
        assert path.read_text().splitlines()[0] == f"#!{VENV / 'bin' / 'python'}", exe

    # A clean shell that sources the workspace imports the interfaces and the node's modules from
    # the install prefixes (not this source tree), and the installed executable starts.
    probe = (
        "import litesam_msgs, litesam_ros, litesam_ros.ros.messages;"
        "from litesam_msgs.msg import InstanceMaskArray;"
        "from litesam_msgs.srv import SegmentPrompt;"
        "from ament_index_python.packages import get_package_share_directory as share;"
        "print(litesam_msgs.__file__); print(litesam_ros.__file__);"
        "print(share(\"litesam_ros\")); print(share(\"litesam_msgs\"))"
    )
    run = subprocess.run(
        ["bash", "-c", f"source {ws}/install/setup.bash && {VENV}/bin/python -c '{probe}' && "
                       f"{install}/lib/litesam_ros/litesam_demo --help"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(str(msgs)), run.stdout
    assert lines[1].startswith(str(install)), run.stdout
    assert lines[2] == str(share), run.stdout
    assert lines[3] == str(msgs / "share" / "litesam_msgs"), run.stdout
    assert any(line.startswith("usage: litesam_demo") for line in lines[4:]), run.stdout
