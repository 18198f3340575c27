"""Launch litesam_node: `ros2 launch litesam_ros litesam.launch.py params_file:=my.yaml`.

Every setting is a node parameter from the params file (config/litesam.yaml by default), so the
same file also works as `litesam_node --ros-args --params-file my.yaml`. The other arguments
override the file's value only when given (`backend:=tensorrt`); left out, the file's value
stands. That decision is litesam_ros.ros.launch_arguments.node_parameters (tested there, since
`ros2 launch` cannot run in this project's test environment); this file only declares the
arguments and hands their values to it from an OpaqueFunction.

The launch / launch_ros APIs used here were read in their Humble sources (the humble branches
of github.com/ros2/launch and ros2/launch_ros, at f31c1ff and 25a207c): DeclareLaunchArgument
(name, default_value, description), OpaqueFunction(function=f) calling f(context) for a list of
actions, LaunchContext.launch_configurations (a dict of the arguments' string values), and
launch_ros.actions.Node(package, executable, name, namespace, parameters; output and
emulate_tty go on to launch's ExecuteLocal), whose `parameters` list takes params file paths and
dicts (str and bool values kept as typed: normalize_parameters / evaluate_parameters), each dict
written to a params file of its own after the ones before it, so later entries win.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from litesam_ros.ros.launch_arguments import node_namespace, node_parameters

#: Said by every overriding argument's description: left out, it changes nothing.
KEEP = "; '' (default) = the params file's value"


def _node(context: LaunchContext) -> list[Node]:
    arguments = context.launch_configurations
    return [Node(
        package="litesam_ros",
        executable="litesam_node",
        name="litesam",
        namespace=node_namespace(arguments),
        parameters=node_parameters(arguments),
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("litesam_ros")
    return LaunchDescription([
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config", "litesam.yaml"),
                              description="parameter YAML ('' = none: the node's defaults)"),
        DeclareLaunchArgument("image_topic", default_value="",
                              description="sensor_msgs/Image (or CompressedImage) topic" + KEEP),
        DeclareLaunchArgument("model", default_value="",
                              description="registry name or model file" + KEEP),
        DeclareLaunchArgument("backend", default_value="",
                              description="auto | tensorrt | onnxruntime | torch" + KEEP),
        DeclareLaunchArgument("autostart", default_value="",
                              description="true | false: configure and activate the lifecycle "
                                          "node at start" + KEEP),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        OpaqueFunction(function=_node),
    ])
