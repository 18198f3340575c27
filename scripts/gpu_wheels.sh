#!/usr/bin/env bash
# Wheels that scripts/gpu_train.sh needs and the device machine lacks (Python 3.12, x86-64),
# fetched here into .whl/ (excluded from git through .git/info/exclude).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PY="${PYTHON:-python3}"
for spec in pycocotools==2.0.11 imgviz==2.1.0 cmap==0.8.0; do  # the versions CI tests
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d .whl "$spec"
done
ls -l .whl
