#!/usr/bin/env bash
# Sets up a development/CI environment on a machine without a ROS install:
#   .venv with pinned ROS 2 Kilted wheels, torch (CPU), ONNX Runtime and the test tools,
#   this package's msg/srv generated with CMake into the venv, and litesam_ros pip-installed.
# Idempotent: each step is skipped when its inputs have not changed (a second run takes seconds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LITESAM_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
cd "$ROOT"

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
step() { printf '[setup] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"

req_stamp="$(stamp_of requirements/*.txt)"
if [ "$(cat "$VENV/.litesam-requirements" 2>/dev/null)" != "$req_stamp" ]; then
  step "installing pinned requirements (requirements/dev.txt)"
  python -m pip install -q --upgrade pip
  python -m pip install -q -r requirements/dev.txt
  # tensorrt-stubs requires the real tensorrt, which cannot install without a GPU: stubs only.
  python -m pip install -q --no-deps tensorrt-stubs==10.13.0.35.1
  echo "$req_stamp" > "$VENV/.litesam-requirements"
fi

iface_stamp="$(stamp_of CMakeLists.txt package.xml msg/*.msg srv/*.srv)"
if [ "$(cat "$VENV/.litesam-interfaces" 2>/dev/null)" != "$iface_stamp" ]; then
  step "generating msg/srv with CMake into the venv"
  build="$ROOT/build/interfaces"
  rm -rf "$build" && mkdir -p "$build"
  (
    cd "$build"
    export AMENT_PREFIX_PATH="$VENV"
    cmake "$ROOT" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python" \
      -DLITESAM_INSTALL_PYTHON=OFF -DBUILD_TESTING=OFF > cmake.log 2>&1 \
      || { tail -40 cmake.log; exit 1; }
    make -j"$(nproc)" > make.log 2>&1 || { tail -40 make.log; exit 1; }
    make install > install.log 2>&1 || { tail -40 install.log; exit 1; }
  )
  # ament_cmake_python also registers an egg-info distribution named litesam_ros for the
  # generated code. pip would treat it as a previous install of this package and, having no
  # file list, delete the whole litesam_ros folder (msg/srv included) on the next pip install.
  rm -rf "$VENV"/lib/python3*/site-packages/litesam_ros-*.egg-info
  echo "$iface_stamp" > "$VENV/.litesam-interfaces"
  rm -f "$VENV/.litesam-package"  # cmake install replaced litesam_ros/__init__.py
fi

# Non-editable on purpose: the generated interfaces live in site-packages/litesam_ros and an
# editable finder would hide them. Re-installing takes a few seconds.
src_dirs=(); for d in litesam_ros config launch weights setup.py; do [ -e "$d" ] && src_dirs+=("$d"); done
src_stamp="$(find "${src_dirs[@]}" -type f ! -path '*__pycache__*' -print0 | sort -z | xargs -0 sha256sum \
  | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.litesam-package" 2>/dev/null)" != "$src_stamp" ]; then
  step "installing litesam_ros into the venv"
  # setuptools copies through build/lib, which keeps modules deleted from the source: start clean
  rm -rf "$ROOT/build/lib" "$ROOT/build/bdist."*
  python -m pip install -q --no-deps --no-build-isolation --force-reinstall "$ROOT" > /dev/null
  echo "$src_stamp" > "$VENV/.litesam-package"
fi
step "ready: $VENV"
