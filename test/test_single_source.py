"""One source of truth (issue 14): each default, range and choice list is defined once, in the
layer that uses it; the node's parameters, the demo and the command lines read it from there.

Two kinds of check: the node's parameter table against the dataclasses and registries it
derives from, and a scan of the package's source for a choice list or graph binding name
written out a second time."""
from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from litesam_ros.engines import choices
from litesam_ros.engines.base import (DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_INPUTS,
                                      ENCODER_OUTPUTS, GRAPH_PARTS)
from litesam_ros.engines.quantize import QUANTIZE_TARGETS
from litesam_ros.model.registry import DEFAULT_MODEL, list_models
from litesam_ros.ros.parameters import PARAMS, ParamSpec
from litesam_ros.runtime import MODES, DepthSettings
from litesam_ros.model.resources import DEMO_WEIGHTS, FALLBACK_MODEL
from litesam_ros.segment import STRATEGY_CHOICES, SegmentSettings
from litesam_ros.camera.depth3d import INTRINSICS_CHOICES
from litesam_ros.segment.strategies import STRATEGIES
from litesam_ros.camera.tracking import TrackerSettings

PACKAGE = Path(__file__).resolve().parents[1] / "litesam_ros" / "litesam_ros"

#: node parameter -> (settings class, its field)
FIELDS: dict[str, tuple[type, str]] = {
    "strategy": (SegmentSettings, "strategy"),
    "max_instances": (SegmentSettings, "max_instances"),
    "box_nms_thresh": (SegmentSettings, "box_nms_thresh"),
    "min_mask_area": (SegmentSettings, "min_mask_region_area"),
    "points_per_side": (SegmentSettings, "points_per_side"),
    "points_per_batch": (SegmentSettings, "points_per_batch"),
    "max_prompts": (SegmentSettings, "max_prompts"),
    "track_max_age": (TrackerSettings, "max_age"),
    "track_iou_gate": (TrackerSettings, "iou_gate"),
    "depth_tolerance": (DepthSettings, "tolerance_s"),
    "intrinsics": (DepthSettings, "intrinsics"),
}

#: node parameter -> (its choices' owner, the default's owner)
CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "backend": (choices.BACKEND_KINDS, choices.DEFAULT_BACKEND),
    "precision": (choices.PRECISIONS, choices.DEFAULT_PRECISION),
    "strategy": (STRATEGY_CHOICES, SegmentSettings().strategy),
    "mode": (MODES, MODES[0]),
    "intrinsics": (INTRINSICS_CHOICES, DepthSettings().intrinsics),
}

#: name -> (value, the one file that writes it out); a list derived from another (PRECISIONS =
#: ("auto",) + ENGINE_PRECISIONS) is found where that one is written
LISTS: dict[str, tuple[tuple[str, ...], str]] = {
    "BACKEND_KINDS": (choices.BACKEND_KINDS, "engines/choices.py"),
    "PRECISIONS": (choices.PRECISIONS, "engines/choices.py"),
    "ENGINE_PRECISIONS": (choices.ENGINE_PRECISIONS, "engines/choices.py"),
    "GRAPH_PARTS": (GRAPH_PARTS, "engines/base.py"),
    "ENCODER_OUTPUTS": (ENCODER_OUTPUTS, "engines/base.py"),
    "DECODER_INPUTS": (DECODER_INPUTS, "engines/base.py"),
    "DECODER_OUTPUTS": (DECODER_OUTPUTS, "engines/base.py"),
    "STRATEGY_CHOICES": (STRATEGY_CHOICES, "segment/strategies.py"),
    "STRATEGIES": (STRATEGIES, "segment/strategies.py"),
    "MODES": (MODES, "runtime/runtime.py"),
    "QUANTIZE_TARGETS": (QUANTIZE_TARGETS, "engines/quantize.py"),
    # derived from a list above (a slice): written out nowhere
    "TORCH_PRECISIONS": (choices.TORCH_PRECISIONS, ""),
    "INTRINSICS_CHOICES": (INTRINSICS_CHOICES, "camera/depth3d.py"),
}


def _default(cls: type, name: str) -> object:
    return {f.name: f for f in dataclasses.fields(cls)}[name].default


@pytest.mark.parametrize("param", sorted(FIELDS))
def test_parameter_defaults_are_the_settings_defaults(param: str) -> None:
    cls, name = FIELDS[param]
    want = _default(cls, name)
    got = PARAMS[param].default
    assert got == want and type(got) is type(want), (param, got, want)


@pytest.mark.parametrize("param", sorted(p for p in FIELDS if PARAMS[p].int_range
                                         or PARAMS[p].float_range))
def test_every_value_a_parameters_range_allows_makes_valid_settings(param: str) -> None:
    cls, name = FIELDS[param]
    spec: ParamSpec = PARAMS[param]
    bounds = spec.int_range or spec.float_range
    assert bounds is not None
    for value in bounds:
        cls(**{name: value})  # raises if the settings refuse what the parameter allows


@pytest.mark.parametrize("param", sorted(CHOICES))
def test_parameter_choices_are_the_owners(param: str) -> None:
    owner, default = CHOICES[param]
    assert PARAMS[param].choices is owner
    assert PARAMS[param].default == default


def test_encoder_batch_default_and_range_come_from_the_engines() -> None:
    import inspect

    from litesam_ros.engines.factory import create_backend

    spec = PARAMS["encoder_batch"]
    assert spec.default == choices.DEFAULT_ENCODER_BATCH and type(spec.default) is int
    assert spec.int_range is choices.ENCODER_BATCH_RANGE
    default = inspect.signature(create_backend).parameters["encoder_batch"].default
    assert default == choices.DEFAULT_ENCODER_BATCH
    for value in spec.int_range:
        assert choices.check_encoder_batch(value) == value  # the range the factory accepts
    for value in (spec.int_range[0] - 1, spec.int_range[1] + 1):
        with pytest.raises(ValueError):
            choices.check_encoder_batch(value)


def test_the_demo_offers_the_same_choices_and_defaults() -> None:
    from litesam_ros.apps.demo import parse_args

    args = parse_args([])
    assert args.precision == PARAMS["precision"].default
    assert args.strategy == PARAMS["strategy"].default
    assert args.backend in choices.BACKEND_KINDS
    for flag, bad in (("--backend", "cuda"), ("--precision", "fp8"), ("--strategy", "x")):
        with pytest.raises(SystemExit):
            parse_args([flag, bad])


def test_model_defaults_come_from_the_registry_and_resources() -> None:
    from litesam_ros.training.distill.config import DistillConfig
    from litesam_ros.training.supervised.trainer import DEFAULT_TRAIN_MODEL, TrainConfig

    assert DistillConfig().student == DEFAULT_MODEL
    assert DEFAULT_TRAIN_MODEL == FALLBACK_MODEL in list_models()
    assert Path(TrainConfig().checkpoint).name == DEMO_WEIGHTS


# -- the source scan ----------------------------------------------------------------------------
def _sources() -> Iterator[tuple[str, ast.AST]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(), str(path))


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (and other bare string statements) of a module."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def _string_lists(tree: ast.AST) -> Iterator[tuple[str, ...]]:
    """Every tuple / list / set literal of two or more string constants."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield tuple(e.value for e in node.elts)  # type: ignore[attr-defined]


def _strings(tree: ast.AST) -> Iterator[str]:
    """Every string constant but docstrings."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.value


def _restates(literal: tuple[str, ...], values: tuple[str, ...]) -> bool:
    """A literal writes out `values` (in any order), or three or more of them."""
    have, want = set(literal), set(values)
    return have == want or (len(have) >= 3 and have <= want)


def test_each_choice_list_is_written_out_in_one_file() -> None:
    where: dict[str, list[str]] = {name: [] for name in LISTS}
    for rel, tree in _sources():
        for literal in _string_lists(tree):
            for name, (values, _) in LISTS.items():
                if _restates(literal, values):
                    where[name].append(rel)
    for name, (_, owner) in LISTS.items():
        want = [owner] if owner else []
        assert where[name] == want, f"{name} written out in {where[name]}, want {want}"


def test_graph_binding_names_are_written_once() -> None:
    bindings = set(ENCODER_INPUTS + ENCODER_OUTPUTS + DECODER_INPUTS + DECODER_OUTPUTS)
    # names no other code has a reason to write: nowhere else in the package; the short ones
    # ("image", "points", ...) are common words: nowhere else in the engines
    distinctive = set(DECODER_INPUTS + DECODER_OUTPUTS)
    found: dict[str, set[str]] = {}
    for rel, tree in _sources():
        scope = bindings if rel.startswith("engines/") else distinctive
        for value in _strings(tree):
            if value in scope:
                found.setdefault(value, set()).add(rel)
    assert found == {name: {"engines/base.py"} for name in bindings}, found


def test_model_names_are_written_once() -> None:
    owners = {DEFAULT_MODEL: {"model/registry.py"},
              FALLBACK_MODEL: {"model/registry.py"},
              DEMO_WEIGHTS: set()}  # registry.py builds it from DEMO_MODEL
    found: dict[str, set[str]] = {name: set() for name in owners}
    for rel, tree in _sources():
        for value in _strings(tree):
            if value in owners:
                found[value].add(rel)
    assert found == owners, found


def test_the_scan_finds_a_restated_list() -> None:
    """The scans above can fail: a file that writes a choice list out again is found."""
    tree = ast.parse('P = ("auto", "fp32", "fp16", "int8")\nQ = ["decoder", "encoder"]\n'
                     'def f():\n    """point_coords"""\n    return {"point_coords": 1}\n')
    literals = list(_string_lists(tree))
    assert any(_restates(lit, choices.PRECISIONS) for lit in literals)
    assert any(_restates(lit, GRAPH_PARTS) for lit in literals)
    assert list(_strings(tree)).count("point_coords") == 1  # the docstring is not counted
