"""Every argument the docs tell a user to type exists (issue 29).

Scanned: README.md, docs/**/*.md and the model card (weights/MODEL_CARD.md); their fenced code
lines (a trailing backslash joins the next line) and inline code spans.

- `name:=value` on a `ros2 launch litesam_ros` line must be a launch argument the launch file
  declares (parsed with ast): `ros2 launch` takes an undeclared one without a word, which is how
  `model_path:=` ran the demo weights. After `-p` / `--param` it must be a node parameter
  (ros.parameters.PARAMS, or one rclpy declares itself); anywhere else, either. Other packages'
  launch lines and `-r` remappings are not ours to check.
- `litesam-*` command lines must parse, `--help`-deep, with the parser their console script
  (setup.py's entry points) builds: the program exists, so do the subcommand and every flag.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "litesam_ros" / "launch" / "litesam.launch.py"
SETUP = REPO / "litesam_ros" / "setup.py"
PACKAGE = "litesam_ros"
#: Parameters every rclpy node declares itself.
ROS_PARAMETERS = frozenset({"use_sim_time"})
#: Other packages' arguments the docs name in prose, outside their own launch lines.
FOREIGN = {"align_depth.enable": "realsense2_camera's rs_launch.py argument"}

ASSIGNMENT = re.compile(r"(?<![\w./-])([A-Za-z_][\w.]*):=")
LAUNCH_LINE = re.compile(r"\bros2\s+launch\s+(\S+)")
PROGRAM = re.compile(r"(?<![\w/.-])(litesam-[a-z][\w-]*)")
SPAN = re.compile(r"`([^`]+)`")


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")),
            REPO / "weights" / "MODEL_CARD.md"]


@dataclass(frozen=True)
class Snippet:
    """Code from a document: one logical line of a fenced block, or one inline span."""

    text: str
    line: int  # 1-based, where it starts


def snippets(text: str) -> Iterator[Snippet]:
    """The fenced blocks' logical lines, then the inline code spans of the prose between them."""
    prose: list[str] = []
    fenced = False
    pending: tuple[str, int] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            prose.append("")
            continue
        if not fenced:
            prose.append(line)
            continue
        prose.append("")
        start = pending[1] if pending else number
        joined = (pending[0] + " " if pending else "") + line
        if joined.rstrip().endswith("\\"):
            pending = (joined.rstrip()[:-1], start)
        else:
            pending = None
            yield Snippet(joined, start)
    body = "\n".join(prose)
    for match in SPAN.finditer(body):
        yield Snippet(match.group(1).replace("\n", " "), body.count("\n", 0, match.start()) + 1)


# -- what exists -------------------------------------------------------------------------------
@cache
def launch_arguments() -> frozenset[str]:
    """The names the launch file passes to DeclareLaunchArgument (read with ast)."""
    names = set()
    for node in ast.walk(ast.parse(LAUNCH_FILE.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(
                node.func, "attr", None)) == "DeclareLaunchArgument":
            first = node.args[0]
            assert isinstance(first, ast.Constant) and isinstance(first.value, str)
            names.add(first.value)
    return frozenset(names)


@cache
def node_parameters() -> frozenset[str]:
    from litesam_ros.ros.parameters import PARAMS

    return frozenset(PARAMS) | ROS_PARAMETERS


@cache
def console_scripts() -> dict[str, str]:
    """setup.py's console scripts: name -> "module:function"."""
    for node in ast.walk(ast.parse(SETUP.read_text())):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    entries = ast.literal_eval(value)
                    return dict(tuple(p.strip() for p in e.split("=", 1)) for e in entries)
    raise AssertionError(f"no console_scripts in {SETUP}")


class _Built(Exception):
    pass


@cache
def cli_parser(program: str) -> argparse.ArgumentParser:
    """The parser the console script's main() builds, taken at its parse_args call."""
    module, function = console_scripts()[program].split(":")
    main = getattr(importlib.import_module(module), function)
    built: list[argparse.ArgumentParser] = []

    def take(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        built.append(self)
        raise _Built

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", take)
        with pytest.raises(_Built):
            main([])
    return built[0]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def unknown_cli_words(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """The subcommand or flags among `words` (argv after the program) that `parser` lacks."""
    subcommands = _subcommands(parser)
    current = parser
    unknown: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-") and len(word) > 1 and not word[1:2].isdigit():
            flag = word.split("=", 1)[0]
            action = current._option_string_actions.get(flag)
            if action is None:
                unknown.append(flag)
            skip = action is not None and action.nargs != 0 and "=" not in word
        elif current is parser and subcommands:
            if word not in subcommands:
                return [*unknown, word]
            current = subcommands[word]
    return unknown


# -- the check ---------------------------------------------------------------------------------
@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    assignments: int = 0  # `name:=` checked
    commands: int = 0  # `litesam-*` command lines checked


def _check_assignments(where: str, snippet: Snippet, found: Findings) -> None:
    text = snippet.text
    for match in ASSIGNMENT.finditer(text):
        name = match.group(1)
        before = text[:match.start()].split()
        previous = before[-1] if before else ""
        launches = LAUNCH_LINE.findall(text[:match.start()])
        if previous in ("-r", "--remap") or (launches and launches[-1] != PACKAGE):
            continue
        found.assignments += 1
        if previous in ("-p", "--param"):
            known, kind = node_parameters(), "node parameter"
        elif launches:
            known, kind = launch_arguments(), "launch argument"
        else:
            known, kind = launch_arguments() | node_parameters(), "launch argument or parameter"
        if name not in known and name not in FOREIGN:
            found.problems.append(f"{where}:{snippet.line}: unknown {kind} {name!r}")


def _check_commands(where: str, snippet: Snippet, found: Findings) -> None:
    text = snippet.text
    for match in PROGRAM.finditer(text):
        program = match.group(1)
        try:
            # a command quoted inside prose in a code block ends at its closing ` or )
            words = shlex.split(re.split(r"[`)]", text[match.end():], maxsplit=1)[0],
                                comments=True)
        except ValueError as exc:
            found.problems.append(f"{where}:{snippet.line}: {program}: unparsable ({exc})")
            continue
        if words and words[0].endswith(":"):
            continue  # "litesam-engines bench: ..." is the tool's own output header
        found.commands += 1
        if program not in console_scripts():
            found.problems.append(f"{where}:{snippet.line}: unknown command {program!r}")
            continue
        for word in unknown_cli_words(cli_parser(program), words):
            found.problems.append(f"{where}:{snippet.line}: {program}: unknown {word!r}")


def check(where: str, text: str) -> Findings:
    found = Findings()
    for snippet in snippets(text):
        _check_assignments(where, snippet, found)
        _check_commands(where, snippet, found)
    return found


# -- tests -------------------------------------------------------------------------------------
def test_every_documented_argument_exists() -> None:
    total = Findings()
    for path in doc_files():
        found = check(str(path.relative_to(REPO)), path.read_text())
        total.problems += found.problems
        total.assignments += found.assignments
        total.commands += found.commands
    assert not total.problems, "\n".join(total.problems)
    # The check reads what it should: the docs' many launch/-p lines and CLI examples.
    assert total.assignments >= 20 and total.commands >= 40, total


PLANTED = """\
# Planted

```bash
ros2 launch litesam_ros litesam.launch.py model_path:=weights/x.pt backend:=torch
ros2 launch litesam_ros litesam.launch.py strategy:=grid
ros2 run litesam_ros litesam_node --ros-args -r __node:=seg \\
    -p modle:=weights/x.pt -p model:=weights/x.pt
ros2 launch realsense2_camera rs_launch.py align_depth.enable:=true unheard_of:=1
litesam-engines bild --model x
```

Set `publish_overlays:=true`, or run `litesam-train train
--confg my.yaml --set lr=1e-4` or `litesam-bench --model x` (`litesam-model info FILE`).
"""


def test_planted_unknowns_fail_naming_file_line_and_name() -> None:
    found = check("planted.md", PLANTED)
    assert found.problems == [
        "planted.md:4: unknown launch argument 'model_path'",
        # a node parameter that is not a launch argument: ros2 launch would drop it silently
        "planted.md:5: unknown launch argument 'strategy'",
        "planted.md:6: unknown node parameter 'modle'",
        "planted.md:9: litesam-engines: unknown 'bild'",
        "planted.md:12: unknown launch argument or parameter 'publish_overlays'",
        "planted.md:12: litesam-train: unknown '--confg'",
        "planted.md:13: unknown command 'litesam-bench'",
    ]
    # checked: 2 + 1 + 2 (`-r` skipped) + 0 (another package's launch) + 1 in the prose
    assert (found.assignments, found.commands) == (6, 4)


def test_launch_arguments_come_from_the_launch_file() -> None:
    assert launch_arguments() == {"params_file", "image_topic", "model", "backend", "autostart",
                                  "namespace"}
