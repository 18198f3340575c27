"""Graphs exported on a desktop serve a Jetson whose torch cannot export (README, "torch on a
Jetson"): `litesam-engines export` into a cache folder, the folder copied, and on the other
machine the engines are built from the copied graphs without exporting again.

The desktop's cache is the session's engine_cache, which the node tests use with the same model,
so the export here is the one they would do anyway."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from ros.node_support import model_under_test


def test_a_copied_cache_folder_is_used_without_exporting(
        tmp_path: Path, engine_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from litesam_ros.engines import cli
    from litesam_ros.engines.factory import create_backend, exported_graphs, resolve_model
    from litesam_ros.engines.onnx_export import GRAPH_FORMAT

    model_file = model_under_test()
    desktop, jetson = engine_cache, tmp_path / "jetson_cache"
    assert cli.main(["export", "--model", model_file, "--cache-dir", str(desktop)]) == 0
    model, model_id = resolve_model(model_file)
    graph_folder = f"{model_id}-g{GRAPH_FORMAT}"
    shutil.copytree(desktop / graph_folder, jetson / graph_folder)  # as `rsync -a` copies it

    calls: list[Any] = []

    def old_torch_export(*args: Any, **kwargs: Any) -> None:  # JetPack 6.0's torch 2.3
        calls.append(kwargs)
        raise TypeError("export() got an unexpected keyword argument 'dynamo'")

    monkeypatch.setattr(torch.onnx, "export", old_torch_export)
    # What `litesam-engines build-engine` and the node's TensorRT path call first.
    graphs, folder = exported_graphs(model, model_id, jetson)
    assert folder == jetson / graph_folder
    for graph in (graphs.encoder, graphs.decoder):
        assert graph.read_bytes() == (desktop / folder.name / graph.name).read_bytes()

    backend = create_backend("onnxruntime", model_file, cache_dir=jetson)
    size = model.config.image_size
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    embeddings = backend.encode(image).embeddings
    expected = create_backend("torch", model, device="cpu").encode(image).embeddings
    assert calls == [], "the Jetson exported again instead of using the copied graphs"
    assert embeddings.shape == expected.shape
    assert torch.allclose(embeddings, expected, atol=1e-3)
