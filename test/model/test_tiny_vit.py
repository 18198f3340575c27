"""TinyViT (litesam_ros.model.tiny_vit) against MobileSAM's official image encoder.

The oracle is ``mobile_sam.sam_model_registry["vit_t"]().image_encoder`` (TinySAM's copy of
tiny_vit_sam.py is byte-identical), imported through ``oracles.import_oracle``. Every parameter
and BatchNorm statistic gets a seeded random value at a scale that keeps each path visible
(fan-in scaled weights, norm scales 1 + 0.1 * randn, attention biases ~ N(0, 1)); the weights
are then loaded into ours with ``strict=True``, as official checkpoints will be.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from litesam_ros.model.tiny_vit import UNUSED_KEY_PREFIXES, TinyViT

SIZE = 1024
MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
REL = 1e-4
#: TinyViT-5M as the SAM encoder, classifier excluded (with it: + 320 * 1000 + 1000 + 2 * 320).
NUM_PARAMS = 5_743_892


def rel_err(got: Tensor, ref: Tensor) -> float:
    return float((got - ref).abs().max() / ref.abs().max())


def randomize_(model: nn.Module, seed: int = 0) -> None:
    """Seeded random values for every parameter and BN statistic (sorted by name)."""
    g = torch.Generator().manual_seed(seed)
    tensors: Dict[str, Tensor] = dict(model.named_parameters())
    tensors.update((n, b) for n, b in model.named_buffers() if b.is_floating_point())
    with torch.no_grad():
        for name in sorted(tensors):
            t = tensors[name]
            r = torch.randn(t.shape, generator=g)
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(0.1 * r)
            elif name.endswith("attention_biases"):
                t.copy_(r)
            elif t.ndim == 1:  # BatchNorm / LayerNorm scales
                t.copy_(1.0 + 0.1 * r)
            else:  # conv / linear weights
                t.copy_(r * (t[0].numel() ** -0.5))


def encoder_state(oracle: nn.Module) -> Dict[str, Tensor]:
    return {k: v for k, v in oracle.state_dict().items() if not k.startswith(UNUSED_KEY_PREFIXES)}


def sam_photo(size: int) -> Tensor:
    """skimage's astronaut, resized to size x size and normalised as SAM does."""
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    img = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_LINEAR)
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    return (x - MEAN) / STD


@pytest.fixture(scope="module")
def mobile_sam() -> Any:
    from oracles import import_oracle

    return import_oracle("mobile_sam")


@pytest.fixture(scope="module")
def oracle(mobile_sam: Any) -> nn.Module:
    torch.manual_seed(0)
    enc = mobile_sam.sam_model_registry["vit_t"]().image_encoder
    randomize_(enc)
    # eval() after the weights are set: the official caches attention_biases[:, idxs] there.
    return enc.eval()


@pytest.fixture(scope="module")
def ours(oracle: nn.Module) -> TinyViT:
    model = TinyViT(image_size=SIZE).eval()
    model.load_state_dict(encoder_state(oracle), strict=True)
    return model


@pytest.fixture(scope="module")
def photo() -> Tensor:
    return sam_photo(SIZE)


@pytest.fixture(scope="module")
def outputs(oracle: nn.Module, ours: TinyViT, photo: Tensor) -> Tuple[Tensor, Tensor]:
    """(official, ours) embeddings of the photo."""
    with torch.no_grad():
        return oracle(photo), ours(photo)


def test_state_dict_is_official_minus_classifier(oracle: nn.Module, ours: TinyViT) -> None:
    official = oracle.state_dict()
    dropped = {k for k in official if k.startswith(UNUSED_KEY_PREFIXES)}
    assert dropped == {"head.weight", "head.bias", "norm_head.weight", "norm_head.bias"}
    mine = ours.state_dict()
    assert set(mine) == set(official) - dropped
    assert {k: tuple(v.shape) for k, v in mine.items()} == \
        {k: tuple(official[k].shape) for k in mine}
    # The relative-offset index of every block (a non-persistent buffer in both) is the same.
    idx_official = {n: b for n, b in oracle.named_buffers() if n.endswith("attention_bias_idxs")}
    idx_mine = {n: b for n, b in ours.named_buffers() if n.endswith("attention_bias_idxs")}
    assert set(idx_mine) == set(idx_official) and len(idx_mine) == 10
    for name, idx in idx_mine.items():
        assert torch.equal(idx, idx_official[name]), name


def test_parameter_count(oracle: nn.Module, ours: TinyViT) -> None:
    assert sum(p.numel() for p in ours.parameters()) == NUM_PARAMS
    official = sum(p.numel() for n, p in oracle.named_parameters()
                   if not n.startswith(UNUSED_KEY_PREFIXES))
    assert official == NUM_PARAMS


def test_matches_mobile_sam_on_photo(outputs: Tuple[Tensor, Tensor]) -> None:
    ref, got = outputs
    assert got.shape == ref.shape == (1, 256, SIZE // 16, SIZE // 16)
    assert float(ref.std()) > 0.1  # a live signal, not a constant map
    assert rel_err(got, ref) < REL


def test_other_image_size_matches_official_layers(mobile_sam: Any, oracle: nn.Module) -> None:
    """At 256 (windows padded in all three ViT stages, S/16 = 16), against the official layers
    followed by the neck: its forward_features hard-codes a 64 x 64 grid, so it runs at 1024
    only. Also checks that these random weights make the attention biases matter."""
    size = 256
    official = mobile_sam.modeling.TinyViT(
        img_size=size, embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2],
        num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7], drop_path_rate=0.0)
    official.load_state_dict(oracle.state_dict(), strict=True)
    official.eval()
    model = TinyViT(image_size=size).eval()
    model.load_state_dict(encoder_state(oracle), strict=True)
    x = sam_photo(size)
    with torch.no_grad():
        y = official.patch_embed(x)
        for layer in official.layers:
            y = layer(y)
        ref = official.neck(y.view(1, size // 16, size // 16, -1).permute(0, 3, 1, 2))
        got = model(x)
        assert got.shape == (1, 256, size // 16, size // 16)
        assert rel_err(got, ref) < REL
        dict(model.named_parameters())["layers.2.blocks.3.attn.attention_biases"].zero_()
        assert rel_err(model(x), ref) > 1e-3


def test_rejects_other_input_sizes() -> None:
    with pytest.raises(ValueError):
        TinyViT(image_size=1000)
    with pytest.raises(ValueError):
        TinyViT(image_size=64)(torch.zeros(1, 3, 128, 128))


def test_onnx_export_matches_torch(ours: TinyViT, photo: Tensor,
                                   outputs: Tuple[Tensor, Tensor], tmp_path: Path) -> None:
    """dynamo export (opset 18, optimised, as the engines export) at 1024; ONNX Runtime."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = tmp_path / "tiny_vit.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(ours, (photo,), dynamo=True, opset_version=18, optimize=True,
                                 input_names=["images"], output_names=["embeddings"],
                                 external_data=False, verbose=False)
    assert prog is not None
    prog.save(str(path), external_data=False)
    graph = onnx.load(str(path)).graph
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*graph.input, *graph.output]}
    assert dims == {"images": [1, 3, SIZE, SIZE], "embeddings": [1, 256, SIZE // 16, SIZE // 16]}
    ops = {n.op_type for n in graph.node}
    assert not ops & {"If", "Loop", "NonZero", "Shape"}  # static, no data-dependent flow
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (emb,) = sess.run(None, {"images": photo.numpy()})
    ref, got = outputs
    assert rel_err(torch.from_numpy(emb), got) < REL
    assert rel_err(torch.from_numpy(emb), ref) < REL
