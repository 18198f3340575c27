"""The decoder's reassociated cross-attentions (model/attention_fold.py, what the ONNX export
writes) give the training modules' numbers with fewer multiply-adds: the shipped demo weights on
a real photo, and EfficientSAM's decoder variant."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from skimage import data as skdata
from torch.utils.flop_counter import FlopCounterMode

from litesam_ros.model import build_model, load_checkpoint
from litesam_ros.model.attention_fold import (ImageToTokenAttention, TokenToImageAttention,
                                              fold_decoder_attention)
from litesam_ros.model.geometry import Geometry

DEMO = Path(__file__).resolve().parents[2] / "weights" / "lite_sam_r320_demo.pt"


def _prompts(p: int, k: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """P prompts of K points: boxes (labels 2, 3) last when K >= 2, clicks before them."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(p, k, 2, generator=g) * size
    labels = torch.randint(0, 2, (p, k), generator=g).float()
    if k >= 2:
        labels[:, -2:] = torch.tensor([2.0, 3.0])
    return coords, labels


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


@pytest.fixture(scope="module")
def demo():
    model, _ = load_checkpoint(DEMO)
    x = Geometry.of(model.config).preprocess(skdata.astronaut())
    with torch.no_grad():
        emb, _ = model.encode(x)
    return model, fold_decoder_attention(model), emb


@pytest.mark.parametrize("first_layer", [True, False])
@pytest.mark.parametrize("p,k", [(1, 1), (1, 2), (4, 2), (3, 4), (2, 6)])
def test_folded_decoder_matches_on_a_real_photo(demo, p: int, k: int, first_layer: bool) -> None:
    model, folded, emb = demo
    if not first_layer:
        folded = fold_decoder_attention(model, first_layer=False)
    coords, labels = _prompts(p, k, model.config.image_size, seed=p * 10 + k)
    with torch.no_grad():
        want = model.decode(emb, coords, labels)
        got = folded.decode(emb, coords, labels)
        # one embedding per prompt (the other broadcast case) too
        got_each = folded.decode(emb.expand(p, -1, -1, -1), coords, labels)
    for g, ge, w in zip(got, got_each, want):
        assert g.shape == w.shape
        assert _rel(g, w) < 1e-5 and _rel(ge, w) < 1e-5
    assert want[0].abs().max() > 1.0  # real logits, not a degenerate all-zero comparison


def test_folding_swaps_only_the_cross_attentions_and_leaves_the_model_alone(demo) -> None:
    model, folded, _ = demo
    kinds = [type(m).__name__ for m in folded.modules()]
    depth = len(model.mask_decoder.transformer.layers)
    assert kinds.count("TokenToImageAttention") == depth + 1  # each layer's and the final one
    assert kinds.count("ImageToTokenAttention") == depth
    assert not any(isinstance(m, (TokenToImageAttention, ImageToTokenAttention))
                   for m in model.modules())
    assert fold_decoder_attention(model.image_encoder) is model.image_encoder  # nothing to fold


def test_folded_decoder_does_fewer_multiply_adds(demo) -> None:
    """At r320 (400 image tokens, 7 tokens for a box): 0.60x of the decoder's MACs for one
    prompt, 0.74x for eight (measured: 189 -> 114 and 154 -> 114 M MACs per prompt)."""
    model, folded, emb = demo
    for p in (1, 8):
        coords, labels = _prompts(p, 2, model.config.image_size, seed=0)
        flops = []
        for m in (model, folded):
            with FlopCounterMode(display=False) as counter:
                m.decode(emb, coords, labels)
            flops.append(counter.get_total_flops())
        assert flops[1] < 0.78 * flops[0], (p, flops)


def test_folded_efficient_sam_decoder_matches() -> None:
    """EfficientSAM's decoder (its own block and MLP, 6 prompt points) folds the same way."""
    torch.manual_seed(0)
    model = build_model("efficient_sam_vitt").eval()
    folded = fold_decoder_attention(model)
    cfg = model.config
    emb = torch.randn(1, cfg.embed_dim, cfg.embedding_size, cfg.embedding_size)
    coords, labels = _prompts(3, 2, cfg.image_size, seed=3)
    with torch.no_grad():
        want = model.decode(emb, coords, labels)
        got = folded.decode(emb, coords, labels)
    for g, w in zip(got, want):
        assert _rel(g, w) < 1e-5
