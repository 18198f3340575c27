"""The package's layers import only the layers below them, with no waiver and no circle.

    masks (mask primitives) -> model (pure torch) -> engines -> segment -> camera (per-camera
    extras) -> runtime -> ros;  training -> segment;  every layer may use masks, which imports
    nothing of ours;  apps (the composition roots: CLIs, the on-device bench, the demo) -> any;
    nothing -> apps

Every module under litesam_ros/litesam_ros is parsed (ast, nothing is imported) and each import
of ours (``litesam_ros.*``, relative imports resolved, and ``litesam_msgs``) is checked against
its layer's allowed set. Imports inside functions and under ``if TYPE_CHECKING:`` count like
top-level ones: a lazy upward import is still an upward dependency. There are no waivers.

A module imports the package's own modules at its top, so a moved file breaks at import time,
not when a code path first runs: an import of ours inside a function is allowed only where an
optional third-party dependency needs it, and then says so on its line or the line above with
``# optional: <dependency>``. No two modules import each other, directly or round a circle.
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
OPTIONAL_MARK = "# optional:"  # the comment a function-level import of ours carries

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
    "training": frozenset({"masks", "model", "engines", "segment", "training"}),
    "apps": None,
    "": frozenset(),  # litesam_ros/__init__.py
}


@dataclass(frozen=True)
class Import:
    target: str  # absolute dotted name (``litesam_ros.segment.pipeline``)
    line: int
    lazy: bool  # inside a function
    optional: bool = False  # carries OPTIONAL_MARK on its line or the line above
    names: tuple[str, ...] = ()  # ``from target import names``


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
    """Every import in ``source`` (of module ``module``) as absolute names, with its line,
    whether it sits inside a function and whether it is marked optional."""
    lines = source.splitlines()
    found: list[Import] = []

    def marked(node: ast.stmt) -> bool:
        near = lines[max(0, node.lineno - 2): getattr(node, "end_lineno", node.lineno)]
        return any(OPTIONAL_MARK in text for text in near)

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(a.name, node.lineno, lazy, marked(node)) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            if base == PACKAGE:  # from litesam_ros import segment / from .. import segment
                found.extend(Import(f"{base}.{a.name}", node.lineno, lazy, marked(node))
                             for a in node.names)
            else:
                found.append(Import(base, node.lineno, lazy, marked(node),
                                    tuple(a.name for a in node.names)))
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def violations(source: str, module: str, is_package: bool = False,
               where: str = "") -> list[str]:
    """The imports of ``source`` that its layer may not make, and its function-level imports
    of ours that no optional dependency explains."""
    layer = layer_of(module)
    if layer not in ALLOWED:
        return [f"{where or module}: module of an unknown layer {layer!r}: add it to ALLOWED"]
    allowed = ALLOWED[layer]
    out = []
    for imp in imports_of(source, module, is_package):
        target_layer = layer_of(imp.target)
        if target_layer is None:
            continue
        kind = "lazy import" if imp.lazy else "import"
        if allowed is not None and target_layer not in allowed:
            out.append(f"{where or module}:{imp.line}: {layer} -> {target_layer} "
                       f"({kind} of {imp.target})")
        elif imp.lazy and not imp.optional:
            out.append(f"{where or module}:{imp.line}: function-level import of "
                       f"{imp.target} without '{OPTIONAL_MARK} <dependency>': import it at "
                       "the top")
    return out


def package_modules() -> Iterator[tuple[Path, str, bool]]:
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        yield path, module_name(path), path.name == "__init__.py"


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports: ``from .pkg import mod`` is an edge to
    ``pkg.mod``, a name that is no module (``from .x import function``) one to its module."""
    modules = {m for _, m, _ in package_modules()}
    graph: dict[str, set[str]] = {}
    for path, module, is_package in package_modules():
        deps = set()
        for imp in imports_of(path.read_text(), module, is_package):
            submodules = {f"{imp.target}.{n}" for n in imp.names} & modules
            for target in submodules or {imp.target}:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != module:
                    deps.add(target)
        graph[module] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# -- the package ---------------------------------------------------------------------------------


def test_every_layer_imports_only_the_layers_below_it() -> None:
    found = []
    for path, module, is_package in package_modules():
        found += violations(path.read_text(), module, is_package,
                            str(path.relative_to(PACKAGE_DIR.parent)))
    assert not found, "imports against the layer rule:\n" + "\n".join(found)


def test_no_import_circle() -> None:
    """A package's ``__init__`` re-exporting its own modules is no circle unless a module
    imports the ``__init__`` back; every other edge counts."""
    found = circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_nothing_imports_the_composition_roots() -> None:
    graph = import_graph()
    found = sorted(f"{m} -> {t}" for m, deps in graph.items() if layer_of(m) != "apps"
                   for t in deps if layer_of(t) == "apps")
    assert not found, found


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
    ("litesam_ros.training.trainer", False, "from ..runtime import frames\n"),
    ("litesam_ros.engines.factory", False, "from ..apps.bench import main\n"),
    ("litesam_ros.ros.node", False, "def f():\n    from ..apps import demo\n"),
    # a function-level import of ours with no optional dependency to explain it
    ("litesam_ros.engines.factory", False, "def f():\n    from .base import Backend\n"),
    ("litesam_ros.apps.demo", False, "def f():\n    from ..ros import node\n"),
])
def test_a_forbidden_import_is_reported(module: str, is_package: bool, source: str) -> None:
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
    ("litesam_ros.apps.demo", False, "from ..ros.node import main\n"),
    ("litesam_ros.training.distill", False, "from . import modelio\nfrom ..model import x\n"
     "from ..segment.strategies import grid_points\n"),
    ("litesam_ros.engines.factory", False,
     "def trt():\n    # optional: tensorrt\n    from .tensorrt_backend import TrtBackend\n"),
    ("litesam_ros.engines.factory", False,
     "def ort():\n    from .ort_backend import OrtBackend  # optional: onnxruntime\n"),
    ("litesam_ros.engines.factory", False, "def f():\n    import numpy\n"),  # not ours
])
def test_allowed_imports_pass(module: str, is_package: bool, source: str) -> None:
    assert violations(source, module, is_package) == []


def test_a_circle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


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
