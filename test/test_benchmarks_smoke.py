"""Every script in benchmarks/ runs in its smoke mode (``SMOKE``: a tiny model or a few iterations, one photo, seconds): a script that breaks
fails here instead of rotting until someone measures again.

The scripts run in this process (one torch import for all), each through its ``main(argv)``
with its own ``SMOKE`` arguments; the slower ones (DDS processes, several ONNX
exports, a training run) are in test_benchmarks_smoke_slow.py (slow tier). What a smoke checks is that the script runs to
its end and prints its table: the figures of a one-iteration run on a loaded machine mean
nothing.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch

from litesam_ros.model import build_model, save_checkpoint
from litesam_ros.model.registry import get_config

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
#: modules in benchmarks/ that are not scripts: what the scripts share
HELPERS = frozenset({"bench_helpers", "tracking_eval"})
#: scripts whose smoke starts DDS processes or takes tens of seconds here (ONNX exports of
#: several graph variants, a training run, the r320 model): test_benchmarks_smoke_slow.py
SLOW = frozenset({"bench_camera_receive", "soak_node", "bench_decoder_graph",
                  "bench_encoder_graph", "bench_int8_variants", "bench_multicam", "bench_zoo",
                  "distill_experiment", "model_fidelity", "bench_ort_spinning",
                  "threshold_fit_sets", "bench_pipeline"})
#: an optional dependency a script needs (it says so and exits 2 without it)
NEEDS = {"bench_openvino": "openvino"}
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in HELPERS)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Lite-SAM checkpoint at 64 px with small widths (random weights): the smokes' model,
    exported and run in milliseconds."""
    cfg = get_config("lite_sam_r320").replace(
        name="tiny_smoke", image_size=64, embed_dim=32, stage_dims=(8, 8, 16, 16),
        stage_depths=(1, 1, 1, 1), ppn_dim=16, ppn_blocks=1, decoder_heads=2,
        decoder_mlp_dim=64, iou_head_hidden_dim=32, ppn_top_n=16)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("smoke_model") / "tiny_smoke.pt"
    save_checkpoint(build_model(cfg).eval(), path)
    return path


def smoke_argv(module: Any, **places: str) -> list[str]:
    return [arg.format(**places) for arg in module.SMOKE]


def run_smoke(name: str, capsys: pytest.CaptureFixture[str], **places: str) -> str:
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        pytest.skip(f"{name} needs {NEEDS[name]}, which is not installed")
    module = importlib.import_module(name)
    assert hasattr(module, "SMOKE"), f"benchmarks/{name}.py has no smoke mode (SMOKE)"
    rc = module.main(smoke_argv(module, **places))
    out = capsys.readouterr().out
    assert rc in (None, 0), f"{name} exited {rc}:\n{out[-2000:]}"
    return out


def test_every_script_is_smoked() -> None:
    assert len(SCRIPTS) >= 19
    assert SLOW <= set(SCRIPTS)
    for name in SCRIPTS:
        text = (BENCHMARKS / f"{name}.py").read_text()
        assert "\nSMOKE = [" in text, f"benchmarks/{name}.py has no smoke mode (SMOKE)"


def smoke(name: str, tmp_path: Path, engine_cache: Path, tiny_weights: Path, ros_domain: int,
          capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BENCHMARKS.parent)  # the scripts name weights/ and config/ from there
    out = run_smoke(name, capsys, tmp=str(tmp_path), cache=str(engine_cache),
                    tiny=str(tiny_weights), domain=str(ros_domain))
    assert "Traceback" not in out
    assert out.strip(), f"{name} printed nothing"


@pytest.mark.parametrize("name", [s for s in SCRIPTS if s not in SLOW])
def test_the_script_runs_in_its_smoke_mode(name: str, tmp_path: Path, engine_cache: Path,
                                           tiny_weights: Path, ros_domain: int,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    smoke(name, tmp_path, engine_cache, tiny_weights, ros_domain, capsys, monkeypatch)
