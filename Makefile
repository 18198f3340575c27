# The README's two commands:
#   make demo   set up (venv, ROS 2 wheels, interfaces) and run the main job on a real video
#   make test   set up and run the test suite
# CI (.ci/run) also runs the install checks and `make bench-smoke`: the benchmark scripts whose
# smoke runs take tens of seconds each (exports, DDS processes), kept out of the suite's 15 min.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test bench-smoke demo colcon typecheck
setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest --ignore=test/test_benchmarks_smoke_slow.py

bench-smoke: setup
	$(PY) -m pytest -q test/test_benchmarks_smoke_slow.py

demo: setup
	$(VENV)/bin/litesam_demo --output out/demo

# Build litesam_msgs and litesam_ros as a ROS user would, in a colcon workspace (a copy of the tree).
colcon: setup
	bash scripts/colcon_build.sh /tmp/litesam_colcon_ws

typecheck: setup
	$(PY) -m mypy litesam_ros/litesam_ros
