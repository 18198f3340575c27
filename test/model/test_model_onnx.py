"""The encoder (with AutoPPN proposals) and decoder export to ONNX with static proposal shapes
and agree with torch in ONNX Runtime (tiny config, legacy exporter for speed)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Tuple

import pytest
import torch
from torch import nn

from litesam_ros.model import SamModel

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class _Encode(nn.Module):
    def __init__(self, model: SamModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        emb, props = self.model.encode(images)
        return (emb, *props)


class _Decode(nn.Module):
    def __init__(self, model: SamModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, emb: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.model.decode(emb, coords, labels)


def _export(module: nn.Module, args: tuple, path: Path, **kw: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=17, **kw)
    onnx.checker.check_model(onnx.load(str(path)))


def test_encoder_and_decoder_export_and_match(tiny_model: SamModel, tmp_path: Path) -> None:
    torch.manual_seed(0)
    images = torch.randn(1, 3, 64, 64)
    enc_path = tmp_path / "enc.onnx"
    _export(_Encode(tiny_model), (images,), enc_path, input_names=["images"],
            output_names=["emb", "points", "scores", "groups", "boxes"])
    graph = onnx.load(str(enc_path)).graph
    ops = {n.op_type for n in graph.node}
    assert {"TopK", "MaxPool", "LayerNormalization"} <= ops and "NonZero" not in ops
    dims = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output}
    assert dims["points"] == [1, 16, 2] and dims["groups"] == [1, 16]  # static N = top_n
    sess = ort.InferenceSession(str(enc_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": images.numpy()})
    with torch.no_grad():
        ref = _Encode(tiny_model)(images)
    for g, r in zip(got, ref):
        assert torch.allclose(torch.from_numpy(g), r, atol=1e-4), (g, r)

    emb = ref[0]
    coords = torch.rand(5, 2, 2) * 64
    labels = torch.tensor([[1.0, -1.0]] * 5)
    dec_path = tmp_path / "dec.onnx"
    _export(_Decode(tiny_model), (emb, coords, labels), dec_path,
            input_names=["emb", "coords", "labels"], output_names=["logits", "iou"],
            dynamic_axes={"coords": {0: "P"}, "labels": {0: "P"}, "logits": {0: "P"},
                          "iou": {0: "P"}})
    sess = ort.InferenceSession(str(dec_path), providers=["CPUExecutionProvider"])
    coords = torch.rand(9, 2, 2) * 64  # another prompt count than at export time
    labels = torch.tensor([[2.0, 3.0]] * 9)
    logits, iou = sess.run(None, {"emb": emb.numpy(), "coords": coords.numpy(),
                                  "labels": labels.numpy()})
    with torch.no_grad():
        ref_logits, ref_iou = tiny_model.decode(emb, coords, labels)
    assert logits.shape == (9, 4, 16, 16)
    assert torch.allclose(torch.from_numpy(logits), ref_logits, atol=1e-4)
    assert torch.allclose(torch.from_numpy(iou), ref_iou, atol=1e-4)
