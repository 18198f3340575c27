#!/usr/bin/env bash
# Sets up a development/CI environment on a machine without a ROS install:
#   .venv with pinned ROS 2 Kilted wheels, torch (CPU), ONNX Runtime and the test tools,
#   litesam_msgs (the msg/srv) generated with CMake into the venv, and litesam_ros pip-installed.
# Idempotent: each step is skipped when its inputs have not changed (a second run takes seconds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LITESAM_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
# The pinned set by default; CI's minimal-versions environment passes requirements/minimal.txt.
REQS="${LITESAM_REQUIREMENTS:-requirements/dev.txt}"
cd "$ROOT"

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
step() { printf '[setup] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"

req_stamp="$( (cat requirements/*.txt; echo "$REQS") | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.litesam-requirements" 2>/dev/null)" != "$req_stamp" ]; then
  step "installing pinned requirements ($REQS)"
  python -m pip install -q --upgrade pip
  python -m pip install -q -r "$REQS"
  # tensorrt-stubs requires the real tensorrt, which cannot install without a GPU: stubs only.
  python -m pip install -q --no-deps tensorrt-stubs==10.13.0.35.1
  echo "$req_stamp" > "$VENV/.litesam-requirements"
fi

iface_stamp="$(stamp_of litesam_msgs/CMakeLists.txt litesam_msgs/package.xml litesam_msgs/msg/*.msg \
  litesam_msgs/srv/*.srv)"
if [ "$(cat "$VENV/.litesam-interfaces" 2>/dev/null)" != "$iface_stamp" ]; then
  # Before litesam_msgs existed, the msg/srv were generated into the litesam_ros package itself:
  # remove that copy (pip reinstalls the Python package below), so nothing imports stale types.
  for site in "$VENV"/lib/python3*/site-packages; do
    if [ -d "$site/litesam_ros/msg" ]; then
      step "removing interfaces generated into litesam_ros by the pre-litesam_msgs layout"
      rm -rf "$site/litesam_ros" "$site"/litesam_ros-*.egg-info "$site"/litesam_ros-*.dist-info \
        "$VENV/lib"/liblitesam_ros__rosidl_*.so "$VENV/include/litesam_ros" \
        "$VENV/share/litesam_ros" "$VENV"/share/ament_index/resource_index/*/litesam_ros
      rm -f "$VENV/.litesam-package"
    fi
  done
  step "generating litesam_msgs (msg/srv) with CMake into the venv"
  build="$ROOT/build/interfaces"
  rm -rf "$build" && mkdir -p "$build"
  (
    cd "$build"
    export AMENT_PREFIX_PATH="$VENV"
    cmake "$ROOT/litesam_msgs" -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF > cmake.log 2>&1 \
      || { tail -40 cmake.log; exit 1; }
    make -j"$(nproc)" > make.log 2>&1 || { tail -40 make.log; exit 1; }
    make install > install.log 2>&1 || { tail -40 install.log; exit 1; }
  )
  echo "$iface_stamp" > "$VENV/.litesam-interfaces"
fi

# Non-editable on purpose: the venv runs what an install ships (share files included), and the
# tests import the working tree through pytest's pythonpath. Re-installing takes a few seconds.
PKG="$ROOT/litesam_ros"
src_dirs=(); for d in litesam_ros/litesam_ros litesam_ros/launch litesam_ros/resource \
    litesam_ros/setup.py litesam_ros/setup.cfg litesam_ros/package.xml config weights; do
  [ -e "$d" ] && src_dirs+=("$d"); done
src_stamp="$(find "${src_dirs[@]}" -type f ! -path '*__pycache__*' -print0 | sort -z | xargs -0 sha256sum \
  | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.litesam-package" 2>/dev/null)" != "$src_stamp" ]; then
  step "installing litesam_ros into the venv"
  # setuptools copies through build/lib, which keeps modules deleted from the source: start clean
  rm -rf "$PKG/build/lib" "$PKG/build/bdist."*
  python -m pip install -q --no-deps --no-build-isolation --force-reinstall "$PKG" > /dev/null
  echo "$src_stamp" > "$VENV/.litesam-package"
fi
step "ready: $VENV"
