"""What litesam.launch.py hands litesam_node: launch arguments in, the Node action's
`parameters` out.

`ros2 launch` fills every declared argument, given or not, so the launch file declares the
overriding ones with the default NOT_GIVEN ('') and node_parameters() leaves those out: the
params file's value stays (and without one, the node's default). A given argument wins over the
file: launch_ros writes a parameter dict to a params file of its own, passed after the user's,
and the last file wins. Kept free of `launch` (not installable here) and of the rest of the
package (the launch file imports it, so it stays light); the launch file calls it from an
OpaqueFunction and the tests call it directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: The value of a declared launch argument that was not given.
NOT_GIVEN = ""
#: Launch arguments that override the node parameter of the same name when given.
OVERRIDES = ("image_topic", "model", "backend", "autostart")
#: The overrides whose parameter is a bool (the others are strings).
BOOL_OVERRIDES = frozenset({"autostart"})
#: The launch argument naming the parameter YAML (NOT_GIVEN: none, the node's defaults).
PARAMS_FILE = "params_file"
#: The launch argument naming the node's namespace.
NAMESPACE = "namespace"

_BOOLS = {"true": True, "false": False}

ParameterValue = str | bool


def given(arguments: Mapping[str, str], name: str) -> str | None:
    """The argument's value when it was given (not NOT_GIVEN, blanks ignored), else None."""
    value = arguments.get(name, NOT_GIVEN).strip()
    return None if value == NOT_GIVEN else value


def parameter_overrides(arguments: Mapping[str, str]) -> dict[str, ParameterValue]:
    """The node parameters the given launch arguments set, typed as the node declares them."""
    out: dict[str, ParameterValue] = {}
    for name in OVERRIDES:
        value = given(arguments, name)
        if value is None:
            continue
        if name in BOOL_OVERRIDES:
            if value.lower() not in _BOOLS:
                raise ValueError(f"launch argument {name} must be true or false, got {value!r}")
            out[name] = _BOOLS[value.lower()]
        else:
            out[name] = value
    return out


def node_parameters(arguments: Mapping[str, str]
                    ) -> list[str | dict[str, ParameterValue]]:
    """The Node action's `parameters`: the params file (when given), then the given overrides
    (when any), in that order so that the overrides win."""
    out: list[str | dict[str, ParameterValue]] = []
    params_file = given(arguments, PARAMS_FILE)
    if params_file is not None:
        if not os.path.isfile(params_file):
            raise FileNotFoundError(f"launch argument {PARAMS_FILE}: no such file {params_file}")
        out.append(params_file)
    overrides = parameter_overrides(arguments)
    if overrides:
        out.append(overrides)
    return out


def node_namespace(arguments: Mapping[str, str]) -> str:
    """The node's namespace ('' = the launch's own, as launch_ros takes it)."""
    return given(arguments, NAMESPACE) or ""
