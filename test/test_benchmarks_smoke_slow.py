"""The benchmark smokes that take tens of seconds on this machine (DDS processes, several ONNX
exports, a short training run, the r320 model): test_benchmarks_smoke.py's check, slow tier.
`make bench-smoke` runs this file (CI's .ci/run does, before `make test`, whose suite leaves it
out to stay within its 15 minutes)."""
from __future__ import annotations

from pathlib import Path

import pytest

from test_benchmarks_smoke import SLOW, smoke, tiny_weights  # noqa: F401 (the fixture)


@pytest.mark.parametrize("name", sorted(SLOW))
def test_the_slow_script_runs_in_its_smoke_mode(name: str, tmp_path: Path, engine_cache: Path,
                                                tiny_weights: Path, ros_domain: int,  # noqa: F811
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    smoke(name, tmp_path, engine_cache, tiny_weights, ros_domain, capsys, monkeypatch)
