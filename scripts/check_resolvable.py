#!/usr/bin/env python3
"""Do the ROS-install ranges resolve to binary wheels for every supported Python and platform?

For each (Python, platform) pair, pip resolves the requirements file as that interpreter on that
machine would (`pip install --dry-run --only-binary=:all: --python-version --platform`), so
nothing is compiled and, with PyPI's metadata files, no wheel is downloaded. A pair that does not
resolve fails with the pair and the package pip names. Needs PyPI; CI runs it from .ci/run.

pip evaluates a requirement's markers (`; python_version < "3.13"`) against the interpreter that
runs it, not against --python-version: each Python is checked by that interpreter where one is
installed (pyenv's, or python3.X on PATH), running this pip (an old pip would download whole
wheels instead of their metadata); the check says when it had to fall back.

    python scripts/check_resolvable.py                      # the ranges, every pair (CI)
    python scripts/check_resolvable.py --expect-failure requirements/runtime.txt --python 3.10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
MACHINES = ("x86_64", "aarch64")
#: glibc of Ubuntu 22.04 (Humble, JetPack 6) is 2.35: wheels up to that manylinux level install.
GLIBC = (2, 35)
#: What `rosdep install` puts on Humble (Ubuntu 22.04 jammy, JetPack 6). The TensorRT route must
#: resolve with these kept as they are (PyYAML 5.4.1 is a system package with no wheel: left out).
HUMBLE_SYSTEM = ("numpy==1.21.5", "scipy==1.8.0", "pillow==9.0.1")
DEFAULT_FILES = ("requirements/ros-install-desktop.txt",)


@dataclass(frozen=True)
class Case:
    """One resolution: a requirements file as one interpreter on one machine resolves it."""

    requirements: str
    python: str
    machine: str
    constraints: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        kept = f" keeping {', '.join(self.constraints)}" if self.constraints else ""
        return f"{self.requirements} on Python {self.python} / linux {self.machine}{kept}"


@dataclass(frozen=True)
class Outcome:
    case: Case
    resolved: bool
    detail: str  # the chosen versions, or the package pip could not find and its message


def platform_tags(machine: str) -> list[str]:
    """Every manylinux tag a glibc-2.35 machine accepts, newest first (pip takes them as given)."""
    major, minor = GLIBC
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]
    return tags + [f"manylinux2014_{machine}"]


def interpreter(python: str) -> str | None:
    """That Python's own interpreter (so markers see its version), or None where none is here."""
    if sys.version_info[:2] == tuple(int(x) for x in python.split(".")):
        return sys.executable
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{python}.*/bin/python{python}"))
    return str(pyenv[-1]) if pyenv else shutil.which(f"python{python}")


def pip_command(case: Case, workdir: Path, no_deps: tuple[str, ...] = ()) -> list[str]:
    """pip resolving the case; with no_deps, those requirements alone, each without its deps."""
    python = interpreter(case.python) or sys.executable
    what = ["--no-deps", *no_deps] if no_deps else ["-r", str(REPO / case.requirements)]
    cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed",
           "--only-binary=:all:", "--python-version", case.python, "--quiet",
           "--target", str(workdir / "target"), "--report", str(workdir / "report.json"),
           "--disable-pip-version-check", *what]
    for tag in platform_tags(case.machine):
        cmd += ["--platform", tag]
    if case.constraints:
        pins = workdir / "constraints.txt"
        pins.write_text("\n".join(case.constraints) + "\n")
        cmd += ["-c", str(pins)]
    return cmd


_MISSING = (re.compile(r"No matching distribution found for (\S+)"),
            re.compile(r"Cannot install (.+?) because these package versions have conflicting"))


def failing_package(stderr: str) -> str:
    """The package pip names when it cannot resolve (the whole message when it names none)."""
    for pattern in _MISSING:
        match = pattern.search(stderr)
        if match:
            return match.group(1)
    lines = [line for line in stderr.splitlines() if line.startswith("ERROR")]
    return " | ".join(lines) or stderr.strip()[-500:]


def chosen_versions(report_json: str, names: tuple[str, ...]) -> str:
    chosen = {item["metadata"]["name"].lower(): item["metadata"]["version"]
              for item in json.loads(report_json)["install"]}
    return ", ".join(f"{n} {chosen[n]}" for n in names if n in chosen)


SHOWN = ("numpy", "scipy", "pillow", "onnx", "onnxruntime", "onnxscript", "pycocotools", "torch")


def requirement_lines(path: Path) -> list[str]:
    """The requirements of a file and the files it includes (-r), comments dropped."""
    out: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if line.startswith("-r"):
            out += requirement_lines(path.parent / line[2:].strip())
        elif line and not line.startswith("#"):
            out.append(line)
    return out


def _this_pip(workdir: Path) -> dict[str, str]:
    """An environment whose PYTHONPATH holds only this interpreter's pip (pure Python)."""
    import pip
    (workdir / "pip_only").mkdir()
    (workdir / "pip_only" / "pip").symlink_to(Path(pip.__file__).parent)
    return {**os.environ, "PYTHONPATH": str(workdir / "pip_only")}


def _pip(case: Case, no_deps: tuple[str, ...] = ()) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory(prefix="litesam-resolve-") as tmp:
        run = subprocess.run(pip_command(case, Path(tmp), no_deps), capture_output=True,
                             text=True, timeout=600, env=_this_pip(Path(tmp)))
        report = (Path(tmp) / "report.json")
        return run.returncode, run.stderr, report.read_text() if report.exists() else ""


def resolve(case: Case) -> Outcome:
    code, stderr, report = _pip(case)
    if code == 0:
        return Outcome(case, True, chosen_versions(report, SHOWN))
    # Which of the file's own requirements have no wheel at all for this pair (pip stops at the
    # first); a conflict between wheels that do exist is left as pip reported it.
    lines = requirement_lines(REPO / case.requirements)
    missing = [r for r in lines if _pip(case, (r,))[0] != 0]
    return Outcome(case, False, "no wheel: " + ", ".join(missing) if missing
                   else failing_package(stderr))


def cases(files: tuple[str, ...], pythons: tuple[str, ...], machines: tuple[str, ...],
          humble: bool) -> list[Case]:
    out = [Case(f, py, m) for f in files for py in pythons for m in machines]
    if humble:  # the TensorRT route on Humble (desktop and Jetson) keeps the system's versions
        out += [Case("requirements/ros-install.txt", "3.10", m, HUMBLE_SYSTEM) for m in machines]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", default=list(DEFAULT_FILES),
                    help="requirements files, relative to the repository root")
    ap.add_argument("--python", action="append", choices=PYTHONS, help="default: all")
    ap.add_argument("--machine", action="append", choices=MACHINES, help="default: both")
    ap.add_argument("--expect-failure", action="store_true",
                    help="succeed only if every case fails (shows that the check can fail)")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args(argv)
    todo = cases(tuple(args.files), tuple(args.python or PYTHONS),
                 tuple(args.machine or MACHINES),
                 humble=not args.expect_failure and tuple(args.files) == DEFAULT_FILES)
    for python in sorted({c.python for c in todo}):
        if interpreter(python) is None:
            print(f"note: no python{python} here: its markers are read as Python "
                  f"{sys.version_info.major}.{sys.version_info.minor}'s", file=sys.stderr)
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(resolve, todo))
    for o in outcomes:
        print(f"{'ok  ' if o.resolved else 'FAIL'} {o.case.label}: {o.detail}", flush=True)
    print(f"({len(outcomes)} resolutions in {time.monotonic() - start:.0f} s)")
    failed = [o for o in outcomes if not o.resolved]
    if args.expect_failure:
        if len(failed) != len(outcomes):
            print("expected every case to fail, but some resolved", file=sys.stderr)
            return 1
        return 0
    if failed:
        print(f"{len(failed)} of {len(outcomes)} (Python, platform) pairs do not resolve",
              file=sys.stderr)
        return 1
    print(f"all {len(outcomes)} (Python, platform) pairs resolve to binary wheels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
