#!/usr/bin/env bash
# Builds litesam_msgs and litesam_ros with colcon in a fresh workspace, as a ROS user would,
# against the ROS 2 wheels of this project's venv (on a real ROS install: source
# /opt/ros/<distro>/setup.bash and run the colcon line alone). Usage: scripts/colcon_build.sh [WORKSPACE]
# The tree is copied (tracked and untracked-but-not-ignored files) rather than built in place:
# the venv lives inside this checkout, and CMake refuses exported include paths that point into
# the source tree.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WS="${1:-/tmp/litesam_colcon_ws}"
VENV="${LITESAM_VENV:-$ROOT/.venv}"
# The repository holds two packages, litesam_msgs/ (ament_cmake) and litesam_ros/ (ament_python).
rm -rf "$WS" && mkdir -p "$WS/src/litesam"
(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$WS/src/litesam/" 2>/dev/null || true)
export AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
cd "$WS"
colcon build --event-handlers console_direct- \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF
echo "colcon workspace: $WS (source $WS/install/setup.bash)"
