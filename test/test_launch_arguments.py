"""litesam.launch.py's launch arguments override the params file only when given (issue 29).

`ros2 launch` cannot run here (the `launch` packages are not on PyPI), so the decision is the
pure ros.launch_arguments.node_parameters, tested directly, and then handed, as launch_ros
hands it (the params file, then the overrides dict written to a file of its own under the
node's name: launch_ros Node._create_params_file_from_dict on Humble), to a real rclpy node so
that rcl's own YAML parser and override order decide the values. The launch file is checked
statically (ast): it declares exactly the arguments the function reads and calls it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from litesam_ros.ros.launch_arguments import (BOOL_OVERRIDES, NAMESPACE, NOT_GIVEN, OVERRIDES,
                                              PARAMS_FILE, node_namespace, node_parameters,
                                              parameter_overrides)

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "litesam_ros" / "launch" / "litesam.launch.py"
NODE_NAME = "litesam"
#: A params file's value for each override, none of them the node's default.
IN_FILE: dict[str, Any] = {"image_topic": "cam/from_file", "model": "from_file.pt",
                           "backend": "torch", "autostart": False}
#: The launch arguments' text for each override, as `name:=text` gives it.
GIVEN = {"image_topic": "/cam/given", "model": "given.pt", "backend": "onnxruntime",
         "autostart": "true"}
TYPED = {**GIVEN, "autostart": True}


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "user.yaml"
    path.write_text(yaml.safe_dump({NODE_NAME: {"ros__parameters": IN_FILE}}))
    return path


def _arguments(params_file: Path | str, **given: str) -> dict[str, str]:
    """What `ros2 launch` puts in the launch configurations: every declared argument, with its
    default where not given."""
    return {PARAMS_FILE: str(params_file), NAMESPACE: NOT_GIVEN,
            **{name: NOT_GIVEN for name in OVERRIDES}, **given}


@pytest.mark.parametrize("name", OVERRIDES)
def test_an_argument_left_empty_keeps_the_file_and_given_wins(params_file: Path,
                                                              name: str) -> None:
    assert node_parameters(_arguments(params_file)) == [str(params_file)]
    assert node_parameters(_arguments(params_file, **{name: "  "})) == [str(params_file)]
    given = node_parameters(_arguments(params_file, **{name: GIVEN[name]}))
    assert given == [str(params_file), {name: TYPED[name]}]  # after the file: it wins


def test_autostart_takes_true_or_false_only(params_file: Path) -> None:
    assert parameter_overrides({"autostart": "False"}) == {"autostart": False}
    with pytest.raises(ValueError, match="autostart must be true or false, got 'maybe'"):
        parameter_overrides({"autostart": "maybe"})


def test_params_file_empty_means_none_and_missing_is_an_error(tmp_path: Path) -> None:
    assert node_parameters(_arguments(NOT_GIVEN, model="m.pt")) == [{"model": "m.pt"}]
    assert node_parameters(_arguments(NOT_GIVEN)) == []
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(FileNotFoundError, match=f"params_file: no such file {missing}"):
        node_parameters(_arguments(missing))
    assert node_namespace(_arguments(NOT_GIVEN)) == ""
    assert node_namespace(_arguments(NOT_GIVEN, namespace="robot1")) == "robot1"


def test_the_overrides_are_typed_as_the_node_declares_them() -> None:
    from litesam_ros.ros.parameters import PARAMS

    for name in OVERRIDES:
        assert isinstance(PARAMS[name].default, bool if name in BOOL_OVERRIDES else str), name


def _node_values(ros_context: Any, tmp_path: Path, parameters: list[Any]) -> dict[str, Any]:
    """The values a node named NODE_NAME gets from `parameters` passed as launch_ros passes
    them: each path as --params-file, each dict as a file of its own, in order."""
    from rclpy.node import Node

    from litesam_ros.ros.parameters import PARAMS

    argv = ["--ros-args"]
    for i, entry in enumerate(parameters):
        if isinstance(entry, dict):
            path = tmp_path / f"launch_params_{i}.yaml"
            path.write_text(yaml.dump({f"/{NODE_NAME}": {"ros__parameters": entry}}))
            entry = str(path)
        argv += ["--params-file", entry]
    node = Node(NODE_NAME, context=ros_context, cli_args=argv)
    try:
        return {name: node.declare_parameter(name, PARAMS[name].default).value
                for name in OVERRIDES}
    finally:
        node.destroy_node()


def test_rcl_gives_the_node_the_files_values_unless_arguments_are_given(
        ros_context: Any, tmp_path: Path, params_file: Path) -> None:
    from litesam_ros.ros.parameters import PARAMS

    kept = _node_values(ros_context, tmp_path, node_parameters(_arguments(params_file)))
    assert kept == IN_FILE
    given = _node_values(ros_context, tmp_path,
                         node_parameters(_arguments(params_file, **GIVEN)))
    assert given == TYPED
    defaults = _node_values(ros_context, tmp_path, node_parameters(_arguments(NOT_GIVEN)))
    assert defaults == {name: PARAMS[name].default for name in OVERRIDES}


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def test_the_launch_file_declares_what_the_function_reads_and_calls_it() -> None:
    tree = ast.parse(LAUNCH_FILE.read_text())
    declared = {call.args[0].value: {k.arg: k.value for k in call.keywords}  # type: ignore
                for call in _calls(tree, "DeclareLaunchArgument")}
    assert set(declared) == {*OVERRIDES, PARAMS_FILE, NAMESPACE}
    for name in (*OVERRIDES, NAMESPACE):  # left out = not given
        value = declared[name]["default_value"]
        assert isinstance(value, ast.Constant) and value.value == NOT_GIVEN, name
    [node] = _calls(tree, "Node")
    keywords = {k.arg: k.value for k in node.keywords}
    for keyword, function in (("parameters", "node_parameters"), ("namespace", "node_namespace")):
        call = keywords[keyword]
        assert isinstance(call, ast.Call) and getattr(call.func, "id", None) == function
    [opaque] = _calls(tree, "OpaqueFunction")
    assert [k.arg for k in opaque.keywords] == ["function"]
    assert not _calls(tree, "LaunchConfiguration")  # nothing bypasses the function


@pytest.mark.parametrize("namespace", ["", "robot1", "/fleet/robot2"])
def test_the_shipped_params_file_reaches_the_node_in_any_namespace(
        ros_context: Any, namespace: str) -> None:
    """`namespace:=robot1` must not make the node drop config/litesam.yaml: its key is
    `/**/litesam`, which rcl matches under any namespace (a plain `litesam:` matches only
    /litesam, and rcl says nothing)."""
    from rclpy.node import Node

    shipped = REPO / "config" / "litesam.yaml"
    [body] = yaml.safe_load(shipped.read_text()).values()
    in_file = body["ros__parameters"]
    assert in_file["autostart"] is True  # not the node's default, so the test can tell
    node = Node(NODE_NAME, namespace=namespace, context=ros_context,
                cli_args=["--ros-args", "--params-file", str(shipped)])
    try:
        assert node.declare_parameter("autostart", False).value is True
        assert node.declare_parameter("image_topic", "").value == in_file["image_topic"]
    finally:
        node.destroy_node()
