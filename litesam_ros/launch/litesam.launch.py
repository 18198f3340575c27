"""Launch litesam_node: `ros2 launch litesam_ros litesam.launch.py image_topic:=/camera/image_raw`.

Kept thin on purpose: every setting is a node parameter from config/litesam.yaml, so the same
configuration also works as `litesam_node --ros-args --params-file config/litesam.yaml`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("litesam_ros")
    args = [
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="sensor_msgs/Image (or CompressedImage) topic to segment"),
        DeclareLaunchArgument("model", default_value="",
                              description="registry name or checkpoint path ('' = the YAML's)"),
        DeclareLaunchArgument("backend", default_value="auto",
                              description="auto | tensorrt | onnxruntime | torch"),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config", "litesam.yaml"),
                              description="parameter YAML"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate the lifecycle node at start"),
    ]
    overrides = {
        "image_topic": LaunchConfiguration("image_topic"),
        "backend": LaunchConfiguration("backend"),
        "autostart": LaunchConfiguration("autostart"),
    }
    node = Node(
        package="litesam_ros",
        executable="litesam_node",
        name="litesam",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), overrides,
                    {"model": LaunchConfiguration("model")}],
        output="screen",
        emulate_tty=True,
    )
    return LaunchDescription([*args, node])
