"""Shared by the test peer processes: spin a node until SIGINT/SIGTERM, then shut down."""

from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException


def spin_until_stopped(node: Any) -> None:
    node.get_logger().info(f"{node.get_name()} ready")
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
