"""litesam_msgs is an interface-only package: it imports on its own (no torch, no litesam_ros),
and its generated types are exactly the .msg/.srv definitions of litesam_msgs/."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFINITIONS = REPO / "litesam_msgs"
MESSAGES = ("Prompt", "InstanceMask", "InstanceMaskArray", "Instance3D", "Instance3DArray")
SERVICES = ("SegmentPrompt",)

# Builds every message and service request/response in a fresh interpreter and reports what it
# imported and the generated fields.
PROBE = r"""
import json, sys
import litesam_msgs.msg as msg, litesam_msgs.srv as srv
types = {name: getattr(msg, name) for name in %(messages)r}
for name in %(services)r:
    types[name + ".Request"] = getattr(srv, name).Request
    types[name + ".Response"] = getattr(srv, name).Response
out = {"fields": {}, "modules": sorted(m.split(".")[0] for m in sys.modules)}
for name, cls in types.items():
    instance = cls()
    assert type(instance).__module__.startswith("litesam_msgs."), type(instance).__module__
    out["fields"][name] = cls.get_fields_and_field_types()
print(json.dumps(out))
"""

_PRIMITIVES = {"bool": "boolean", "byte": "octet", "char": "uint8", "float32": "float",
               "float64": "double"}


def _generated_type(definition: str) -> str:
    """A .msg field type as rosidl's get_fields_and_field_types() spells it."""
    match = re.fullmatch(r"([\w/]+)(\[(<=)?(\d*)\])?", definition)
    assert match, definition
    base, array, bounded, size = match.groups()
    if "/" not in base and base[0].isupper():
        base = f"litesam_msgs/{base}"  # a type of this package
    base = _PRIMITIVES.get(base, base)
    if array is None:
        return base
    if size and not bounded:
        return f"{base}[{size}]"
    return f"sequence<{base}, {size}>" if size else f"sequence<{base}>"


def _fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or "=" in line:  # blank, or a constant
            continue
        kind, name = line.split()[:2]
        fields[name] = _generated_type(kind)
    return fields


def _expected() -> dict[str, dict[str, str]]:
    expected = {name: _fields((DEFINITIONS / "msg" / f"{name}.msg").read_text())
                for name in MESSAGES}
    for name in SERVICES:
        request, response = (DEFINITIONS / "srv" / f"{name}.srv").read_text().split("\n---\n")
        expected[f"{name}.Request"] = _fields(request)
        expected[f"{name}.Response"] = _fields(response)
    return expected


def test_every_definition_is_listed() -> None:
    assert sorted(p.stem for p in (DEFINITIONS / "msg").glob("*.msg")) == sorted(MESSAGES)
    assert sorted(p.stem for p in (DEFINITIONS / "srv").glob("*.srv")) == sorted(SERVICES)


def test_litesam_msgs_imports_without_torch_and_matches_its_definitions(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-c", PROBE % {"messages": MESSAGES, "services": SERVICES}],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert "torch" not in report["modules"]
    assert "litesam_ros" not in report["modules"]
    assert report["fields"] == _expected()
