"""Child process for the tests: republishes every InstanceMaskArray from `in` on `out`."""

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy

from litesam_ros.msg import InstanceMaskArray


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("message_echo")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(InstanceMaskArray, "out", qos)
    node.create_subscription(InstanceMaskArray, "in", pub.publish, qos)
    node.get_logger().info("message_echo ready")
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
