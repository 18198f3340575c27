"""create_backend / resolve_model: choices, validation, ONNX cache reuse; the CLI."""
import os

import pytest
import torch

from conftest import MODEL
from litesam_ros.apps import engines_cli as cli
from litesam_ros.engines import create_backend
from litesam_ros.engines.factory import exported_graphs, resolve_model
from litesam_ros.model.loading import weights_sha256


def test_registry_model_is_deterministic(model_and_id):
    model, model_id = model_and_id
    again, again_id = resolve_model(MODEL)
    assert again_id == model_id and model_id.startswith(MODEL + "-seed0-")
    assert weights_sha256(again) == weights_sha256(model)


def test_checkpoint_id_follows_the_file(tmp_path, model_and_id):
    from litesam_ros.model import save_checkpoint

    model = model_and_id[0]
    path = tmp_path / "m.pt"
    save_checkpoint(model, path)
    m, mid = resolve_model(str(path))
    assert "-checkpoint-" in mid and weights_sha256(m) == weights_sha256(model)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    try:
        save_checkpoint(model, path)
        assert resolve_model(str(path))[1] != mid
    finally:
        with torch.no_grad():
            next(model.parameters()).sub_(1.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        create_backend("openvino", MODEL)
    with pytest.raises(ValueError, match="precision"):
        create_backend("torch", MODEL, precision="fp8")
    with pytest.raises(ValueError, match="neither a model file nor a model name"):
        resolve_model("no_such_model")
    with pytest.raises(ValueError, match="fp16 with the torch backend needs a CUDA"):
        create_backend("torch", MODEL, precision="fp16", device="cpu")


def test_precision_auto_and_fp16_fallback(graphs, cache_dir, caplog):
    assert create_backend("torch", MODEL, precision="auto", device="cpu").name == \
        "torch:cpu:fp32"
    assert create_backend("auto", MODEL, precision="auto", cache_dir=cache_dir).name.endswith(
        ":fp32")
    with caplog.at_level("WARNING", logger="litesam_ros.engines.factory"):
        b = create_backend("auto", MODEL, precision="fp16", cache_dir=cache_dir)
    assert b.name.endswith(":fp32") and any("fp16" in r.message for r in caplog.records)
    with pytest.raises(ValueError, match="fp16"):
        create_backend("onnxruntime", MODEL, precision="fp16", cache_dir=cache_dir)


def test_tensorrt_kind_fails_clearly_without_tensorrt(graphs, cache_dir):
    with pytest.raises(RuntimeError, match="TensorRT"):
        create_backend("tensorrt", MODEL, cache_dir=cache_dir)


def test_onnx_graphs_are_reused(graphs_and_folder, model_and_id, cache_dir):
    graphs, folder = graphs_and_folder
    before = (os.stat(graphs.encoder).st_mtime_ns, os.stat(graphs.decoder).st_mtime_ns)
    again, folder2 = exported_graphs(model_and_id[0], model_and_id[1], cache_dir)
    assert folder2 == folder and again == graphs
    assert (os.stat(graphs.encoder).st_mtime_ns, os.stat(graphs.decoder).st_mtime_ns) == before


def test_cli(graphs, cache_dir, capsys):
    assert cli.main(["export", "--model", MODEL, "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    assert str(graphs.encoder) in out and str(graphs.decoder) in out
    assert cli.main(["build-engine", "--model", MODEL, "--cache-dir", str(cache_dir)]) == 2
    assert "TensorRT" in capsys.readouterr().err
    assert cli.main(["export", "--model", "nope", "--cache-dir", str(cache_dir)]) == 1
    assert "neither a model file nor a model name" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["quantize", "--target", "gpu"])
