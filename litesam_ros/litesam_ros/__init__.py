"""litesam_ros: Lite-SAM segmentation for ROS 2.

The ROS interfaces are in the separate package ``litesam_msgs`` (``litesam_msgs.msg``,
``litesam_msgs.srv``), which imports without this package (and without torch).
"""

__version__ = "0.1.0"
