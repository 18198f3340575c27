"""Child process for the tests: republishes every InstanceMaskArray from `in` on `out`."""

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from peer_spin import spin_until_stopped

from litesam_msgs.msg import InstanceMaskArray


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("message_echo")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(InstanceMaskArray, "out", qos)
    node.create_subscription(InstanceMaskArray, "in", pub.publish, qos)
    spin_until_stopped(node)


if __name__ == "__main__":
    main()
