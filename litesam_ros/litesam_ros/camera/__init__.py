"""What one camera's frames get besides segmentation, between segment and runtime; no ROS.

Tracking (persistent instance ids), depth -> 3D (back-projected instances) and the stamp
pairing of colour frames with depth images, each per camera.
"""
from .depth import CameraDepth, DepthSettings, Frame3D
from .tracking import MaskTracker, TrackerSettings

__all__ = ["CameraDepth", "DepthSettings", "Frame3D", "MaskTracker", "TrackerSettings"]
