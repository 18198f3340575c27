"""The two dependency sets agree with each other, with package.xml's rosdep keys and the README.

requirements/runtime.txt is the venv's lock; requirements/ros-install*.txt are the ranges a ROS
install needs (resolved against PyPI for every Python and platform by scripts/check_resolvable.py
in CI); requirements/minimal.txt is CI's lowest-versions environment. Offline, fast."""
from __future__ import annotations

import functools
import importlib.util
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
REQS = REPO / "requirements"
#: package.xml's system keys -> the pip distribution rosdep's key stands for.
SYSTEM_KEYS = {"python3-numpy": "numpy", "python3-scipy": "scipy", "python3-pil": "pillow",
               "python3-yaml": "pyyaml", "python3-tqdm": "tqdm",
               "python3-opencv": "opencv-python-headless"}
#: No rosdep key: pip installs them from the ranges (README says how).
PIP_ONLY = ("torch", "onnx", "onnxruntime", "onnxscript", "pycocotools")


@functools.cache
def _check_resolvable() -> Any:  # scripts/ is not a package: load the CI script by path
    spec = importlib.util.spec_from_file_location("check_resolvable",
                                                  REPO / "scripts" / "check_resolvable.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _requirements(name: str) -> list[Requirement]:
    lines = _check_resolvable().requirement_lines(REQS / name)
    return [Requirement(line) for line in lines]


def _for_python(reqs: list[Requirement], python: str) -> dict[str, Requirement]:
    env = {"python_version": python, "python_full_version": python + ".0"}
    return {canonicalize_name(r.name): r for r in reqs
            if r.marker is None or Marker(str(r.marker)).evaluate(env)}


def _pins(name: str) -> dict[str, str]:
    return {canonicalize_name(r.name): str(next(iter(r.specifier)).version)
            for r in _requirements(name) if str(r.specifier).startswith("==")}


def _package_xml_keys() -> dict[str, list[str]]:
    root = ET.parse(REPO / "litesam_ros" / "package.xml").getroot()
    keys: dict[str, list[str]] = {}
    for tag in ("depend", "exec_depend", "test_depend", "build_depend"):
        keys[tag] = [e.text or "" for e in root.findall(tag)]
    return keys


def _vendored_rosdep_keys() -> set[str]:
    lines = (REPO / "test" / "data" / "rosdep_keys.txt").read_text().splitlines()
    return {line.split("|")[0].strip() for line in lines if line and not line.startswith("#")}


def test_every_package_xml_dependency_is_a_rosdep_key_or_in_this_repository() -> None:
    known = _vendored_rosdep_keys()
    ours = {p.parent.name for p in REPO.glob("*/package.xml")}
    for tag, keys in _package_xml_keys().items():
        unknown = [k for k in keys if k not in known and k not in ours]
        assert not unknown, f"{tag}: {unknown} are not rosdep keys (rosdistro, see the file)"
    assert "litesam_msgs" in ours


def test_rosdep_brings_the_system_packages_and_pip_the_rest() -> None:
    exec_keys = set(_package_xml_keys()["exec_depend"])
    assert set(SYSTEM_KEYS) <= exec_keys, set(SYSTEM_KEYS) - exec_keys
    ranges = _for_python(_requirements("ros-install-desktop.txt"), "3.10")
    for name in PIP_ONLY:
        assert name in ranges, f"{name} has no rosdep key: ros-install*.txt must name it"
    # OpenCV is the system's on a ROS install: a pip OpenCV beside it would shadow it.
    assert "opencv-python-headless" not in ranges and "opencv-python" not in ranges


def test_the_ranges_keep_what_humble_brings() -> None:
    ranges = _for_python(_requirements("ros-install.txt"), "3.10")
    for pin in _check_resolvable().HUMBLE_SYSTEM:
        name, version = pin.split("==")
        assert ranges[canonicalize_name(name)].specifier.contains(version), pin
    assert not ranges["numpy"].specifier.contains("2.0.0")  # the distros' binaries need 1.x
    assert _for_python(_requirements("ros-install.txt"), "3.13")["numpy"].specifier.contains(
        "2.1.0")


def test_the_minimal_environment_is_the_ranges_lowest() -> None:
    """Each minimal pin is in its range, and is the floor itself or says why it is above it."""
    ranges = _for_python(_requirements("ros-install-desktop.txt"), "3.11")
    pins = _pins("minimal.txt")
    text = (REQS / "minimal.txt").read_text()
    for name, req in ranges.items():
        assert name in pins, f"minimal.txt does not pin {name}"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {req}"
        floors = [s.version for s in req.specifier if s.operator == ">="]
        if floors and floors[0] != pins[name]:
            line = next(ln for ln in text.splitlines()
                        if canonicalize_name(ln.split("==")[0]) == name)
            assert "#" in line, f"minimal.txt: say why {name} is above its floor {floors[0]}"
    assert pins["numpy"].startswith("1."), "the minimal environment runs numpy 1.x"


def test_the_lock_is_newer_than_every_floor() -> None:
    ranges = _for_python(_requirements("ros-install-desktop.txt"), "3.11")
    lock = _pins("runtime.txt")
    for name, req in ranges.items():
        floors = [s.version for s in req.specifier if s.operator == ">="]
        assert name in lock, f"runtime.txt does not pin {name}"
        assert all(_version(lock[name]) >= _version(f) for f in floors), (name, lock[name])


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def test_the_check_covers_every_supported_python_and_machine() -> None:
    check = _check_resolvable()
    cases = check.cases(check.DEFAULT_FILES, check.PYTHONS, check.MACHINES, humble=True)
    pairs = {(c.python, c.machine) for c in cases}
    assert pairs == {(p, m) for p in ("3.10", "3.11", "3.12", "3.13")
                     for m in ("x86_64", "aarch64")}
    tags = check.platform_tags("aarch64")
    assert tags[0] == "manylinux_2_35_aarch64" and "manylinux_2_17_aarch64" in tags
    assert "manylinux2014_aarch64" in tags and not any("x86_64" in t for t in tags)


def test_the_check_reads_the_package_pip_names() -> None:
    check = _check_resolvable()
    stderr = ("ERROR: Could not find a version that satisfies the requirement numpy==2.4.6\n"
              "ERROR: No matching distribution found for numpy==2.4.6\n")
    assert check.failing_package(stderr) == "numpy==2.4.6"


def test_the_readme_installs_with_rosdep_first_and_the_ranges() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Build on a ROS 2 install")[1].split("\n## ")[0]
    commands = [ln for ln in section.split("```bash")[1].split("```")[0].splitlines()
                if ln.strip() and not ln.startswith(("#", "source", "mkdir"))]
    assert commands[0].startswith("rosdep install --from-paths src"), commands[0]
    assert "requirements/ros-install" in section and "runtime.txt" not in section.split(
        "```bash")[1].split("```")[0]
    for name in PIP_ONLY:
        assert name in section, f"the README's ROS install says nothing of {name}"
