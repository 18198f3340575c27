"""TensorRT backend without a GPU: pure helpers, optional import, and mypy against the stubs."""
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from litesam_ros.engines import tensorrt_backend as trb
from litesam_ros.engines.tensorrt_backend import (DecoderProfile, DimRange, EncoderProfile,
                                                  encoder_profile, engine_cache_key,
                                                  engine_profile, precision_plan, profile_shapes)

MODULE = Path(trb.__file__)
BASE = dict(onnx_sha256="a" * 64, trt_version="10.13.0", gpu_name="Orin",
            compute_capability=(8, 7), precision="fp16", profile=DecoderProfile())


def test_cache_key_changes_when_any_component_changes():
    key = engine_cache_key(**BASE)
    assert key == engine_cache_key(**BASE) and len(key) == 32
    changes = [dict(onnx_sha256="b" * 64), dict(trt_version="10.14.0"),
               dict(gpu_name="RTX 4090"), dict(compute_capability=(8, 9)),
               dict(precision="int8"), dict(profile=None),
               dict(profile=DecoderProfile(prompts=DimRange(1, 32, 256))),
               dict(profile=DecoderProfile(points=DimRange(1, 2, 8))),
               dict(flags=("FP16",)), dict(workspace_bytes=1 << 28)]
    keys = {engine_cache_key(**{**BASE, **c}) for c in changes}
    assert len(keys) == len(changes) and key not in keys


def test_decoder_profile_defaults_and_shapes():
    p = DecoderProfile()
    assert (p.prompts.min, p.prompts.opt, p.prompts.max) == (1, 64, 256)
    shapes = profile_shapes({"image_embeddings": (1, 256, 40, 40), "point_coords": (-1, -1, 2),
                             "point_labels": (-1, -1)}, p)
    assert set(shapes) == {"point_coords", "point_labels"}
    assert shapes["point_coords"] == ((1, 1, 2), (64, 2, 2), (256, 16, 2))
    assert shapes["point_labels"] == ((1, 1), (64, 2), (256, 16))
    assert profile_shapes({"image": (1, 3, 320, 320)}, p) == {}
    with pytest.raises(ValueError, match="unexpected dynamic axis"):
        profile_shapes({"x": (1, 3, -1)}, p)
    with pytest.raises(ValueError):
        DimRange(2, 1, 4)
    with pytest.raises(ValueError):
        DimRange(0, 1, 4)


def test_encoder_profile_for_a_dynamic_batch():
    """encoder_batch N: min 1, opt N, max N on the batch dim; batch 1 needs no profile."""
    assert encoder_profile(1) is None
    p = encoder_profile(4)
    assert p == EncoderProfile(DimRange(1, 4, 4))
    shapes = profile_shapes({"image": (-1, 3, 320, 320)}, p)
    assert shapes == {"image": ((1, 3, 320, 320), (4, 3, 320, 320), (4, 3, 320, 320))}
    assert profile_shapes({"image": (1, 3, 320, 320)}, p) == {}  # the static graph
    with pytest.raises(ValueError, match="unexpected dynamic axis 1"):
        profile_shapes({"image": (-1, -1, 320, 320)}, p)
    with pytest.raises(ValueError):
        encoder_profile(0)
    # each part takes its own kind of profile; the other kind is dropped (static encoder as
    # before: no profile, the same cache key)
    dec = DecoderProfile()
    assert engine_profile("encoder", p) is p and engine_profile("encoder", dec) is None
    assert engine_profile("decoder", dec) is dec and engine_profile("decoder", p) is None
    assert engine_profile("encoder", None) is None
    keys = {engine_cache_key(**{**BASE, "profile": prof})
            for prof in (None, encoder_profile(2), encoder_profile(4), dec)}
    assert len(keys) == 4


def test_precision_plans():
    assert precision_plan("fp32", "encoder").flags == ()
    assert precision_plan("fp16", "encoder").flags == ("FP16",)
    assert precision_plan("fp16", "decoder").flags == ("FP16",)
    enc8 = precision_plan("int8", "encoder")
    assert set(enc8.flags) == {"FP16", "INT8"} and enc8.onnx_variant == "qdq"
    dec8 = precision_plan("int8", "decoder")
    assert dec8.flags == ("FP16",) and dec8.onnx_variant == "fp32"
    with pytest.raises(ValueError, match="precision"):
        precision_plan("bf8", "encoder")
    with pytest.raises(ValueError, match="part"):
        precision_plan("fp16", "neck")


def test_sha256_file(tmp_path):
    f = tmp_path / "x.onnx"
    f.write_bytes(b"abc")
    assert trb.sha256_file(f) == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_import_is_optional_and_reports_unavailable_here():
    # the venv has tensorrt-stubs (a bare `tensorrt` namespace), not TensorRT itself
    assert trb.tensorrt_available() is False
    with pytest.raises(RuntimeError, match="not installed"):
        trb.build_engine("x.onnx", "x.engine", precision_plan("fp16", "encoder"))


def _stub_dir(tmp_path: Path) -> Path:
    """Copy tensorrt-stubs into tmp_path, patching the few lines that are not valid Python
    (parameters named `in`, a default before a non-default)."""
    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "tensorrt_bindings" / "tensorrt.pyi").exists():
        pytest.skip("tensorrt-stubs not installed (pip install --no-deps tensorrt-stubs)")
    out = tmp_path / "stubs"
    for pkg in ("tensorrt", "tensorrt_bindings"):
        (out / pkg).mkdir(parents=True)
        for f in (site / pkg).glob("*.pyi"):
            text = f.read_text()
            text = text.replace("(self, in: list", "(self, in_: list")
            text = text.replace("IPluginV3, in: list", "IPluginV3, in_: list")
            text = text.replace("channel_axis: int) -> IScaleLayer",
                                "channel_axis: int = ...) -> IScaleLayer")
            (out / pkg / f.name).write_text(text)
    (out / "tensorrt_libs").mkdir()
    (out / "tensorrt_libs" / "__init__.pyi").write_text("")
    return out


def _mypy(tmp_path: Path, target: Path) -> subprocess.CompletedProcess:
    cfg = tmp_path / "mypy.ini"
    cfg.write_text("[mypy]\nignore_missing_imports = True\nfollow_imports = silent\n"
                   "disallow_untyped_defs = True\ncheck_untyped_defs = True\n"
                   "warn_unused_ignores = True\n"
                   "[mypy-tensorrt.*,tensorrt_bindings.*,tensorrt_libs.*]\n"
                   "ignore_errors = True\n")
    env = {"MYPYPATH": str(_stub_dir(tmp_path)), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(cfg),
                           "--cache-dir", str(tmp_path / "cache"), str(target)],
                          capture_output=True, text=True, env=env, cwd=MODULE.parents[2],
                          timeout=600)


def test_mypy_passes_on_tensorrt_backend_against_stubs(tmp_path):
    proc = _mypy(tmp_path, MODULE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout


def test_mypy_against_stubs_catches_tensorrt8_api(tmp_path):
    """The check above can fail: a removed TensorRT 8 call is reported."""
    bad = tmp_path / "bad_trt.py"
    bad.write_text("import tensorrt as trt\n"
                   "def f(ctx: trt.IExecutionContext, b: trt.Builder) -> None:\n"
                   "    ctx.execute_async_v2([], 0)\n"
                   "    b.build_engine(None, None)\n")
    proc = _mypy(tmp_path, bad)
    assert proc.returncode != 0
    assert "execute_async_v2" in proc.stdout and "build_engine" in proc.stdout
