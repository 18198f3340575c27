"""The segmentation runtime: frames in, results out, on an inference thread. No ROS.

Newest-frame slots per source (round-robin), the inference thread, per-camera processing
(depth pairing, tracking, 3D), the model and its lock, the embedding cache for prompt
requests, and statistics; on_result gets a typed FrameOutput per frame. The ROS node
(litesam_ros.ros.node) feeds it camera messages and publishes what it returns.
"""
from ..camera.depth import CameraDepth, DepthSettings, Frame3D
from .frames import DEFAULT_SOURCE, Frame, FrameSlots, wait_until
from .model_slot import RuntimeStopped
from .output import FrameOutput, ResultCallback
from .prompts import NoFrameError, PromptAnswer
from .runtime import MODES, SegmentRuntime
from .stats import COUNTERS, DEPTH_COUNTERS, RuntimeStats

__all__ = ["SegmentRuntime", "FrameOutput", "ResultCallback", "PromptAnswer", "RuntimeStopped",
           "NoFrameError", "MODES", "Frame", "FrameSlots", "DEFAULT_SOURCE", "wait_until",
           "RuntimeStats", "COUNTERS", "DEPTH_COUNTERS", "CameraDepth", "DepthSettings",
           "Frame3D"]
