# The README's two commands:
#   make demo   set up (venv, ROS 2 wheels, interfaces) and run the main job on a real video
#   make test   set up and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo colcon typecheck
setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest

demo: setup
	$(VENV)/bin/litesam_demo --output out/demo

# Build litesam_msgs and litesam_ros as a ROS user would, in a colcon workspace (a copy of the tree).
colcon: setup
	bash scripts/colcon_build.sh /tmp/litesam_colcon_ws

typecheck: setup
	$(PY) -m mypy litesam_ros/litesam_ros
