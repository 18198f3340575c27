"""The package uses no syntax or standard-library API newer than Python 3.10 (Humble's Python).

vermin reads the source and names the lowest Python each construct needs (syntax, modules,
functions, keyword arguments); CI's minimal-versions environment is Python 3.11 (the only CPU
torch on its disk), so this static check is what covers 3.10."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOOR = "3.10"
#: What a ROS install runs: the Python package, the launch file, setup.py, and the CI scripts that
#: run under each supported Python.
SOURCES = ("litesam_ros/litesam_ros", "litesam_ros/launch", "litesam_ros/setup.py",
           "scripts/check_resolvable.py")
#: vermin reads `x.decode(...)` as Python 2's str.decode; ours are bytes.decode (every Python 3).
NOT_PYTHON2 = ("--exclude", "str.decode")
VERMIN = "import sys; from vermin.main import main; sys.exit(main())"  # it has no __main__


def _vermin(*paths: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", VERMIN, f"-t={FLOOR}-", "--violations", "--no-tips",
         "--eval-annotations", "--no-parse-comments", *NOT_PYTHON2, *map(str, paths)],
        cwd=REPO, capture_output=True, text=True, timeout=120)


def test_package_needs_nothing_newer_than_python_3_10() -> None:
    run = _vermin(*SOURCES)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "File with incompatible versions" not in run.stdout, run.stdout  # unreadable file
    needed = re.search(r"Minimum required versions: (\d+)\.(\d+)", run.stdout)
    assert needed and (int(needed[1]), int(needed[2])) <= (3, 10), run.stdout


def test_the_check_names_a_3_11_api(tmp_path: Path) -> None:
    newer = tmp_path / "newer.py"
    newer.write_text("import tomllib\n\n\ndef f(x: int) -> None:\n"
                     "    try:\n        pass\n    except* ValueError:\n        pass\n")
    run = _vermin(newer)
    assert run.returncode != 0
    assert "tomllib" in run.stdout and "3.11" in run.stdout, run.stdout
