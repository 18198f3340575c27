"""The package's layers import only the layers below them.

    masks (mask primitives) -> model (pure torch) -> engines -> segment -> camera (per-camera
    extras) -> runtime -> ros;
    training -> model;  demo -> any; every layer may use masks, which imports nothing of ours

Every module under litesam_ros/litesam_ros is parsed (ast, nothing is imported) and each import
of ours (``litesam_ros.*``, relative imports resolved, and ``litesam_msgs``) is checked against
its layer's allowed set. Imports inside functions and under ``if TYPE_CHECKING:`` count like
top-level ones: a lazy upward import is still an upward dependency. The only way past the rule
is an entry in EXCEPTIONS, which names the importing module, the imported module and the
reason.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "litesam_ros" / "litesam_ros"
PACKAGE = "litesam_ros"
MESSAGES = "litesam_msgs"  # the generated msg/srv package: ours, but ROS-only

#: layer -> the layers (and MESSAGES) its modules may import; None = anything.
ALLOWED: dict[str, Optional[frozenset[str]]] = {
    "masks": frozenset({"masks"}),  # the ground floor: mask primitives every layer may use
    "model": frozenset({"masks", "model"}),
    "engines": frozenset({"masks", "model", "engines"}),
    "segment": frozenset({"masks", "model", "engines", "segment"}),
    "camera": frozenset({"masks", "model", "engines", "segment", "camera"}),
    "runtime": frozenset({"masks", "model", "engines", "segment", "camera", "runtime"}),
    "ros": frozenset({"masks", "model", "engines", "segment", "camera", "runtime", "ros",
                      MESSAGES}),
    "training": frozenset({"masks", "model", "training"}),
    "demo": None,
    "": frozenset(),  # litesam_ros/__init__.py
}


@dataclass(frozen=True)
class Waiver:
    why: str
    lazy_only: bool = False  # holds only for an import inside a function


#: (importing module, imported module or a package above it) -> why it may cross the rule.
EXCEPTIONS: dict[tuple[str, str], Waiver] = {
    ("litesam_ros.segment.tracking_eval", "litesam_ros.camera"): Waiver(
        "the tracking experiment harness runs the tracker, which moved to camera/; the harness "
        "itself leaves the package for benchmarks/ (issue 27), and this waiver with it"),
    ("litesam_ros.training.calibrate", "litesam_ros.segment"): Waiver(
        "IoU calibration fits the serving pipeline's IoU scores, so it runs segment's "
        "strategies and post-processing on the candidates it calibrates"),
    ("litesam_ros.training.calibrate", "litesam_ros.engines"): Waiver(
        "IoU calibration runs the model through an engine backend, as the pipeline does"),
    ("litesam_ros.engines.cli", "litesam_ros.runtime.bench"): Waiver(
        "the engines CLI's `bench` subcommand runs runtime's benchmark, imported when the "
        "subcommand runs", lazy_only=True),
}


@dataclass(frozen=True)
class Import:
    target: str  # absolute dotted name (``litesam_ros.segment.pipeline``)
    line: int
    lazy: bool  # inside a function


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def layer_of(module: str) -> Optional[str]:
    """``litesam_ros.X[...]`` -> X ("" for the package itself); MESSAGES for litesam_msgs;
    None for anything not ours."""
    parts = module.split(".")
    if parts[0] == MESSAGES:
        return MESSAGES
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else ""


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(package) - 1:
        raise ValueError(f"{module}: relative import beyond the top package "
                         f"(line {node.lineno})")
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(source: str, module: str, is_package: bool = False) -> list[Import]:
    """Every import in ``source`` (of module ``module``) as absolute names, with its line and
    whether it sits inside a function."""
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(a.name, node.lineno, lazy) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            if base == PACKAGE:  # from litesam_ros import segment / from .. import segment
                found.extend(Import(f"{base}.{a.name}", node.lineno, lazy)
                             for a in node.names)
            else:
                found.append(Import(base, node.lineno, lazy))
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def _exception(module: str, imp: Import) -> Optional[Waiver]:
    for (importer, target), exc in EXCEPTIONS.items():
        if importer == module and (imp.target == target or imp.target.startswith(target + ".")):
            if imp.lazy or not exc.lazy_only:
                return exc
    return None


def violations(source: str, module: str, is_package: bool = False,
               where: str = "") -> list[str]:
    """The imports of ``source`` that its layer may not make (EXCEPTIONS honoured)."""
    layer = layer_of(module)
    if layer not in ALLOWED:
        return [f"{where or module}: module of an unknown layer {layer!r}: add it to ALLOWED"]
    allowed = ALLOWED[layer]
    if allowed is None:
        return []
    out = []
    for imp in imports_of(source, module, is_package):
        target_layer = layer_of(imp.target)
        if target_layer is None or target_layer in allowed or _exception(module, imp):
            continue
        kind = "lazy import" if imp.lazy else "import"
        out.append(f"{where or module}:{imp.line}: {layer} -> {target_layer} "
                   f"({kind} of {imp.target})")
    return out


def package_modules() -> Iterator[tuple[Path, str, bool]]:
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        yield path, module_name(path), path.name == "__init__.py"


# -- the package ---------------------------------------------------------------------------------


def test_every_layer_imports_only_the_layers_below_it() -> None:
    found = []
    for path, module, is_package in package_modules():
        found += violations(path.read_text(), module, is_package,
                            str(path.relative_to(PACKAGE_DIR.parent)))
    assert not found, "upward imports:\n" + "\n".join(found)


def test_every_exception_is_still_needed() -> None:
    """An exception whose import is gone is removed, so it cannot hide a later one."""
    used = set()
    for path, module, is_package in package_modules():
        for imp in imports_of(path.read_text(), module, is_package):
            for (importer, target), _ in EXCEPTIONS.items():
                if importer == module and (imp.target == target
                                           or imp.target.startswith(target + ".")):
                    used.add((importer, target))
    stale = set(EXCEPTIONS) - used
    assert not stale, f"exceptions no module needs any more: {sorted(stale)}"


def test_the_scan_sees_the_whole_package() -> None:
    modules = {m for _, m, _ in package_modules()}
    assert {f"{PACKAGE}.{layer}".rstrip(".") for layer in ALLOWED} <= modules
    assert len(modules) > 50


# -- the checker itself --------------------------------------------------------------------------


@pytest.mark.parametrize("module,is_package,source", [
    ("litesam_ros.segment.pipeline", False, "from ..runtime import frames\n"),
    ("litesam_ros.segment.pipeline", False, "from .. import runtime\n"),
    ("litesam_ros.segment", True, "from ..runtime.frames import Frame\n"),
    ("litesam_ros.model.geometry", False, "import litesam_ros.segment.postprocess as pp\n"),
    ("litesam_ros.model.geometry", False, "from litesam_ros import engines\n"),
    ("litesam_ros.model.geometry", False,
     "def boxes(m):\n    from ..segment.postprocess import masks_to_boxes\n"
     "    return masks_to_boxes(m)\n"),
    ("litesam_ros.model.geometry", False,
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..engines import base\n"),
    ("litesam_ros.runtime.frames", False, "from litesam_msgs.msg import Instance\n"),
    ("litesam_ros.training.trainer", False, "from ..segment import pipeline\n"),
    ("litesam_ros.engines.cli", False, "from ..runtime.bench import main\n"),  # not lazy
    ("litesam_ros.engines.cli", False, "def f():\n    from ..runtime.frames import Frame\n"),
])
def test_an_upward_import_is_reported(module: str, is_package: bool, source: str) -> None:
    found = violations(source, module, is_package)
    assert len(found) == 1, found
    assert module in found[0]


@pytest.mark.parametrize("module,is_package,source", [
    ("litesam_ros.segment.pipeline", False,
     "import numpy\nfrom . import postprocess\nfrom ..engines.base import Backend\n"
     "from ..model import geometry\nimport litesam_ros.model\n"),
    ("litesam_ros.model", True, "from .geometry import Geometry\nfrom . import registry\n"),
    ("litesam_ros.ros.node", False, "from litesam_msgs.srv import Segment\n"
     "from ..runtime import Runtime\nfrom ..segment import SegmentSettings\n"),
    ("litesam_ros.demo.main", False, "from ..ros.node import main\n"),
    ("litesam_ros.training.distill", False, "from . import modelio\nfrom ..model import x\n"),
    ("litesam_ros.engines.cli", False,
     "def bench(args):\n    from ..runtime.bench import main\n    return main(args)\n"),
])
def test_allowed_imports_pass(module: str, is_package: bool, source: str) -> None:
    assert violations(source, module, is_package) == []


def test_relative_imports_resolve_like_python() -> None:
    src = ("from . import a\nfrom .b import c\nfrom .. import model\nfrom ..segment.x import y\n"
           "import os\n")
    got = [i.target for i in imports_of(src, "litesam_ros.training.mod")]
    assert got == ["litesam_ros.training", "litesam_ros.training.b", "litesam_ros.model",
                   "litesam_ros.segment.x", "os"]
    # in a package's __init__, "." is the package itself
    got = [i.target for i in imports_of("from .c import d\n", "litesam_ros.segment", True)]
    assert got == ["litesam_ros.segment.c"]
    with pytest.raises(ValueError, match="beyond the top package"):
        imports_of("from ... import x\n", "litesam_ros.model.geometry")


def test_a_module_of_an_unknown_layer_is_reported() -> None:
    assert violations("import os\n", "litesam_ros.newlayer.mod") != []
