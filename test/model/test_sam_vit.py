"""SamViT against Meta's ``ImageEncoderViT`` (the oracle): identical state_dict layout, same
outputs on a real photo with every parameter random (SAM zero-inits ``pos_embed`` and
``rel_pos_*``, which would leave those paths untested), and an ONNX export that ORT runs."""
from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pytest
import torch
from oracles import import_oracle
from skimage import data
from torch import nn

from litesam_ros.model.sam_vit import SamViT

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
# name -> (embed_dim, depth, num_heads, global_attn_indexes), as in segment_anything.build_sam
VARIANTS = {"vit_b": (768, 12, 12, (2, 5, 8, 11)), "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
            "vit_h": (1280, 32, 16, (7, 15, 23, 31))}
TOL = 1e-4  # max|diff| / max|ref|


def _oracle_encoder(image_size: int, embed_dim: int, depth: int, num_heads: int,
                    global_attn_indexes: Sequence[int]) -> nn.Module:
    """``ImageEncoderViT`` with the settings of ``segment_anything.build_sam._build_sam``."""
    sa = import_oracle("segment_anything")
    return sa.modeling.ImageEncoderViT(
        img_size=image_size, patch_size=16, embed_dim=embed_dim, depth=depth,
        num_heads=num_heads, mlp_ratio=4, out_chans=256, qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=14,
        global_attn_indexes=tuple(global_attn_indexes))


def _randomised_pair(image_size: int, embed_dim: int, depth: int, num_heads: int,
                     global_attn_indexes: Sequence[int]) -> tuple[nn.Module, SamViT]:
    """(oracle, ours) with the same seeded random weights, loaded into ours strictly."""
    cfg = (image_size, embed_dim, depth, num_heads, tuple(global_attn_indexes))
    oracle = _oracle_encoder(*cfg).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in oracle.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") \
                    or name in ("neck.1.weight", "neck.3.weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif "rel_pos" in name or name == "pos_embed":
                p.copy_(0.2 * noise)  # large enough to move the logits / tokens visibly
            else:
                p.copy_(0.02 * noise)
    ours = SamViT(image_size=image_size, embed_dim=embed_dim, depth=depth,
                  num_heads=num_heads, global_attn_indexes=global_attn_indexes).eval()
    ours.load_state_dict(oracle.state_dict(), strict=True)
    return oracle, ours


def _astronaut(size: int) -> torch.Tensor:
    """skimage's astronaut resized to size x size, normalised as SAM does -> [1,3,S,S]."""
    img = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_LINEAR)
    mean, std = np.array(SAM_PIXEL_MEAN, np.float32), np.array(SAM_PIXEL_STD, np.float32)
    img = (img.astype(np.float32) - mean) / std
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()


def _rel_err(got: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray) -> float:
    got, ref = torch.as_tensor(got).double(), torch.as_tensor(ref).double()
    return float((got - ref).abs().max() / ref.abs().max())


def _manifest(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_full_size_manifest_equals_official_build(name: str) -> None:
    """Names and shapes of the official vit_b/l/h image encoder (built on the meta device:
    ViT-H would be 2.5 GB) equal ours, so ``image_encoder.*`` checkpoint weights load."""
    sa = import_oracle("segment_anything")
    embed_dim, depth, heads, global_idx = VARIANTS[name]
    with torch.device("meta"):
        official = sa.sam_model_registry[name]().image_encoder
        ours = SamViT(embed_dim=embed_dim, depth=depth, num_heads=heads,
                      global_attn_indexes=global_idx)
    assert _manifest(ours) == _manifest(official)
    assert list(ours.state_dict()) == list(official.state_dict())  # same order, too
    n_ours = sum(p.numel() for p in ours.parameters())
    assert n_ours == sum(p.numel() for p in official.parameters())
    if name == "vit_b":
        assert n_ours == 89_670_912
    # Only the global blocks' tables span the 64x64 grid; windowed ones span 14x14.
    shapes = _manifest(ours)
    for i in range(depth):
        assert shapes[f"blocks.{i}.attn.rel_pos_h"] == (127 if i in global_idx else 27,
                                                         embed_dim // heads)


def test_matches_oracle_on_photo_at_1024() -> None:
    """ViT-B widths at 1024 input (64x64 grid, padded to 70 for 14x14 windows), one windowed
    and one global block, random weights everywhere."""
    oracle, ours = _randomised_pair(1024, 768, 2, 12, (1,))
    assert _manifest(ours) == _manifest(oracle)
    x = _astronaut(1024)
    with torch.inference_mode():
        ref = oracle(x)
        got = ours(x)
    assert got.shape == ref.shape == (1, 256, 64, 64)
    err = _rel_err(got, ref)
    print(f"SamViT vs oracle at 1024: max rel diff {err:.2e}")
    assert err < TOL


def test_parity_check_detects_position_mistakes() -> None:
    """The random init makes position errors visible far above TOL: swapped h/w tables,
    reversed relative offsets (k - q instead of q - k) and a missing pos_embed all fail."""
    oracle, ours = _randomised_pair(256, 192, 2, 3, (1,))
    x = _astronaut(256)
    with torch.inference_mode():
        ref = oracle(x)
        assert _rel_err(ours(x), ref) < TOL
        state = ours.state_dict()
        swapped = dict(state)
        for key in [k for k in state if k.endswith("rel_pos_h")]:
            key_w = key[:-1] + "w"
            swapped[key], swapped[key_w] = state[key_w], state[key]
        reversed_ = {k: v.flip(0) if "rel_pos" in k else v for k, v in state.items()}
        no_pos = {k: torch.zeros_like(v) if k == "pos_embed" else v for k, v in state.items()}
        for broken in (swapped, reversed_, no_pos):
            ours.load_state_dict(broken, strict=True)
            assert _rel_err(ours(x), ref) > 100 * TOL


def test_onnx_export_runs_in_ort_and_matches(tmp_path: Path) -> None:
    """dynamo export at opset 18 with static shapes (256 input: 16x16 grid padded to 28 for
    the windows); ONNX Runtime agrees with torch and the oracle."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    oracle, ours = _randomised_pair(256, 192, 2, 3, (1,))
    x = _astronaut(256)
    path = tmp_path / "sam_vit.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ours, (x,), str(path), dynamo=True, opset_version=18,
                          input_names=["images"], output_names=["embeddings"],
                          verbose=False)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"If", "Loop", "Einsum", "NonZero", "Resize"}, ops
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 256, 16, 16]

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"images": x.numpy()})
    with torch.inference_mode():
        ref_ours = ours(x)
        ref_oracle = oracle(x)
    err_torch, err_oracle = _rel_err(got, ref_ours), _rel_err(got, ref_oracle)
    print(f"SamViT ORT vs torch: {err_torch:.2e}, vs oracle: {err_oracle:.2e}")
    assert err_torch < TOL and err_oracle < TOL
