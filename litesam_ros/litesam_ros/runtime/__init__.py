"""The segmentation runtime: frames in, results out, on an inference thread. No ROS.

Newest-frame slots per source (round-robin), the inference thread, the model and its lock, the
embedding cache for prompt requests, and statistics. The ROS node (litesam_ros.ros.node) feeds
it camera messages and publishes what it returns.
"""
from ..camera.depth import CameraDepth, DepthSettings, Frame3D
from .frames import DEFAULT_SOURCE, Frame, FrameSlots, wait_until
from .runtime import (MODES, NoFrameError, PromptAnswer, RuntimeStopped, SegmentRuntime)
from .stats import COUNTERS, DEPTH_COUNTERS, RuntimeStats

__all__ = ["SegmentRuntime", "PromptAnswer", "RuntimeStopped", "NoFrameError", "MODES",
           "Frame", "FrameSlots", "DEFAULT_SOURCE", "wait_until", "RuntimeStats", "COUNTERS",
           "DEPTH_COUNTERS", "CameraDepth", "DepthSettings", "Frame3D"]
