"""EfficientSAM (litesam_ros.model.efficient_sam) against the official yformer/EfficientSAM code.

Golden data (test/data/efficient_sam_golden.pt) was made by the OFFICIAL code, commit
d525f622e6f640acf5a0fc37c7ca1f243da5bde0, from a scratch copy outside this repository (the
script, /tmp/esam_golden/make_golden.py, is not kept). That script:

* built the official ``EfficientSam`` exactly as ``build_efficient_sam`` does but with
  ``img_size=256`` and encoder depth 2 (ViT-Ti widths: dim 192, 3 heads; decoder: dim 256,
  8 heads, depth 2, mlp 2048, upscaling (64, 32), iou head MLPBlock(num_layers=3 - 1));
* set every state-dict entry with :func:`deterministic_state` below (same code), so no weights
  are stored;
* fed ``skimage.data.astronaut()[32:480]`` (448 x 512, non-square so the stretch and the x / y
  point rescale are exercised) as the example does (``ToTensor`` written as
  ``from_numpy(img).permute(2, 0, 1).float() / 255``; ``get_image_embeddings`` stretches it
  to 256 and normalises), and stored the image embeddings;
* for each prompt in ``prompt_points`` / ``prompt_labels`` (original-image pixels; one point;
  fg + bg; a box as labels 2 / 3; box + point; 7 points, one with negative x, the 7th
  truncated) called ``predict_masks(..., multimask_output=False)`` and ``(..., True)`` and
  stored the concatenation: low-res logits [5, 4, 64, 64] and iou [5, 4], index 0 = single mask;
* ran ``forward`` (the example's path) for the ``box_point`` prompt and stored its bicubic
  up-sampled multimask logits at 448 x 512, thresholded at 0, ``np.packbits``-ed;
* wrote test/data/efficient_sam_keys.json: key names and shapes of the full official
  ``build_efficient_sam`` ViT-Ti (192, 3 heads) and ViT-S (384, 6 heads) models.
"""
from __future__ import annotations

import json
import warnings
import zlib
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from litesam_ros.model.efficient_sam import (EfficientSamMaskDecoder, EfficientSamPromptEncoder,
                                             EfficientSamViT)
from litesam_ros.model.sam_model import pad_prompt_points as pad_points

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = DATA / "efficient_sam_golden.pt"
KEYS = DATA / "efficient_sam_keys.json"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
REL = 1e-4


def deterministic_state(shapes: Dict[str, List[int]]) -> Dict[str, Tensor]:
    """Per key (sorted): randn seeded by crc32(key); x0.05, norm scales 1 + 0.05 * randn and
    the PE frequency matrix std 1. The golden script has the same function."""
    out = {}
    for key in sorted(shapes):
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        w = torch.randn(tuple(shapes[key]), generator=g, dtype=torch.float32)
        if key.endswith("positional_encoding_gaussian_matrix"):
            out[key] = w
        elif key.endswith(".weight") and len(shapes[key]) == 1:
            out[key] = 1.0 + 0.05 * w
        else:
            out[key] = 0.05 * w
    return out


def rel_err(got: Tensor, ref: Tensor) -> float:
    """Max abs difference relative to the reference's largest magnitude."""
    return float((got.float() - ref.float()).abs().max() / ref.float().abs().max())


Modules = Tuple[EfficientSamViT, EfficientSamPromptEncoder, EfficientSamMaskDecoder]
PREFIXES = ("image_encoder", "prompt_encoder", "mask_decoder")


def build(image_size: int, embed_dim: int, num_heads: int, depth: int) -> Modules:
    enc = EfficientSamViT(image_size=image_size, embed_dim=embed_dim, depth=depth,
                          num_heads=num_heads)
    return enc, EfficientSamPromptEncoder(256, enc.grid, image_size), EfficientSamMaskDecoder()


def shapes_of(modules: Modules) -> Dict[str, List[int]]:
    """Official-checkpoint key -> shape."""
    return {f"{prefix}.{k}": list(v.shape) for prefix, m in zip(PREFIXES, modules)
            for k, v in m.state_dict().items()}


def official_keys(name: str) -> Dict[str, List[int]]:
    return json.loads(KEYS.read_text())[name]["keys"]


@pytest.fixture(scope="module")
def golden() -> dict:
    return torch.load(GOLDEN, weights_only=True)


@pytest.fixture(scope="module")
def small(golden: dict) -> Modules:
    modules = build(golden["image_size"], 192, 3, golden["depth"])
    shapes = shapes_of(modules)
    # The official small model's keys: the full ViT-Ti's without blocks >= depth.
    expected = {k: s for k, s in official_keys("vitt").items()
                if not any(k.startswith(f"image_encoder.blocks.{i}.") for i in range(2, 12))}
    assert shapes == expected
    state = deterministic_state(shapes)
    for prefix, m in zip(PREFIXES, modules):
        m.load_state_dict({k[len(prefix) + 1:]: v for k, v in state.items()
                           if k.startswith(prefix + ".")})
        m.eval()
    return modules


def photo(golden: dict) -> np.ndarray:
    from skimage import data as skdata
    top, bottom = golden["image_crop"]
    return skdata.astronaut()[top:bottom]


def preprocess(img: np.ndarray, size: int) -> Tensor:
    """The official pre-processing: 0-1 RGB stretched (bilinear) to size x size, ImageNet norm."""
    x = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255
    x = F.interpolate(x, (size, size), mode="bilinear", align_corners=False)
    return (x - MEAN) / STD


def prompts(golden: dict, h: int, w: int, size: int) -> Tuple[Tensor, Tensor]:
    """All golden prompts in the input frame (x * S / W, y * S / H), padded / cut to 6."""
    coords, labels = [], []
    for pts, lbl in zip(golden["prompt_points"], golden["prompt_labels"]):
        p = torch.tensor([pts], dtype=torch.float32)
        p = torch.stack([p[..., 0] * size / w, p[..., 1] * size / h], dim=-1)
        c, lb = pad_points(p, torch.tensor([lbl]), 6)
        coords.append(c)
        labels.append(lb)
    return torch.cat(coords), torch.cat(labels)


def test_matches_official_outputs(golden: dict, small: Modules) -> None:
    enc, penc, dec = small
    img = photo(golden)
    h, w = img.shape[:2]
    size = golden["image_size"]
    coords, labels = prompts(golden, h, w, size)
    with torch.no_grad():
        emb = enc(preprocess(img, size))
        sparse = penc(coords, labels)
        masks, iou = dec(emb, penc.get_dense_pe(), sparse)
        # The image embedding of batch 1 is shared by all prompts; tiling changes nothing.
        masks_tiled, _ = dec(emb.expand(len(sparse), -1, -1, -1), penc.get_dense_pe(), sparse)
    assert masks.shape == golden["low_res_logits"].shape == (5, 4, 64, 64)
    assert rel_err(emb, golden["image_embeddings"]) < REL
    assert rel_err(masks, golden["low_res_logits"]) < REL
    assert rel_err(iou, golden["iou"]) < REL
    assert rel_err(masks_tiled, masks) < 1e-5

    # The official forward: bicubic up-sampling of the multimask logits to the original size.
    i = golden["prompt_names"].index(golden["upsampled_prompt"])
    up = F.interpolate(masks[i:i + 1, 1:], (h, w), mode="bicubic", align_corners=False)[0] >= 0
    n = int(np.prod(golden["upsampled_shape"]))
    bits = np.unpackbits(golden["upsampled_masks_packed"].numpy())[:n]
    ref = torch.from_numpy(bits.reshape(golden["upsampled_shape"]).astype(bool))
    for got_m, ref_m in zip(up, ref):
        iou_m = (got_m & ref_m).sum() / (got_m | ref_m).sum()
        assert iou_m >= 0.99


def test_padding_and_truncation() -> None:
    coords = torch.tensor([[[10.0, 20.0], [30.0, 40.0]]])
    labels = torch.tensor([[1, 0]])
    c, lb = pad_points(coords, labels, 6)
    assert c.shape == (1, 6, 2) and lb.tolist() == [[1, 0, -1, -1, -1, -1]]
    assert (c[0, 2:] == -1).all() and torch.equal(c[0, :2], coords[0])
    c7, lb7 = pad_points(torch.zeros(2, 7, 2), torch.ones(2, 7, dtype=torch.long), 6)
    assert c7.shape == (2, 6, 2) and lb7.shape == (2, 6)
    # Padding coords are ignored: any coords with label -1 encode as the official (-1, -1).
    torch.manual_seed(0)
    penc = EfficientSamPromptEncoder(32, 4, 64)
    a = penc(c, lb)
    b = penc(torch.where(lb[..., None] == -1, torch.full_like(c, 55.0), c), lb)
    assert torch.equal(a, b)


def test_full_size_keys_and_param_counts() -> None:
    manifest = json.loads(KEYS.read_text())
    for name, dim, heads in (("vitt", 192, 3), ("vits", 384, 6)):
        with torch.device("meta"):
            modules = build(1024, dim, heads, 12)
        assert shapes_of(modules) == manifest[name]["keys"], name
        n_params = sum(p.numel() for m in modules for p in m.parameters())
        assert n_params == manifest[name]["num_params"], name
    assert manifest["vitt"]["num_params"] == 10_223_204  # EfficientSAM-Ti, "10.22M"
    assert manifest["vits"]["num_params"] == 26_413_028  # EfficientSAM-S, "26.41M"


class _Decode(nn.Module):
    def __init__(self, penc: EfficientSamPromptEncoder, dec: EfficientSamMaskDecoder) -> None:
        super().__init__()
        self.penc = penc
        self.dec = dec

    def forward(self, emb: Tensor, coords: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
        return self.dec(emb, self.penc.get_dense_pe(), self.penc(coords, labels))


def _onnx_run(module: nn.Module, args: Tuple[Tensor, ...], path: Path) -> List[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=True, opset_version=18,
                          external_data=False, verbose=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, {n: a.numpy() for n, a in zip(names, args)})


def test_onnx_encoder_and_decoder(golden: dict, small: Modules, tmp_path: Path) -> None:
    enc, penc, dec = small
    img = photo(golden)
    size = golden["image_size"]
    images = preprocess(img, size)
    (emb,) = _onnx_run(enc, (images,), tmp_path / "enc.onnx")
    assert rel_err(torch.from_numpy(emb), golden["image_embeddings"]) < REL

    coords, labels = prompts(golden, img.shape[0], img.shape[1], size)
    masks, iou = _onnx_run(_Decode(penc, dec), (golden["image_embeddings"], coords, labels),
                           tmp_path / "dec.onnx")
    assert masks.shape == (5, 4, 64, 64)
    assert rel_err(torch.from_numpy(masks), golden["low_res_logits"]) < REL
    assert rel_err(torch.from_numpy(iou), golden["iou"]) < REL
