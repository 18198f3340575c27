"""Prompt encoder + mask decoder: chunking, shared embedding, label semantics, norms."""
from __future__ import annotations

import typing

import pytest
import torch
from torch import nn

from litesam_ros.model import LiteSam
from litesam_ros.model.norms import GroupNorm1, LayerNorm2d


def prompts(p: int, k: int = 3, size: float = 64.0, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(p, k, 2, generator=g) * size
    labels = torch.randint(-1, 4, (p, k), generator=g).float()
    return coords, labels


def test_decode_independent_of_chunking(tiny_model: LiteSam) -> None:
    torch.manual_seed(0)
    emb = torch.randn(1, 32, 4, 4)
    coords, labels = prompts(11)
    with torch.no_grad():
        ref_logits, ref_iou = tiny_model.decode(emb, coords, labels)
        for chunk in (1, 3, 4, 11, 64):
            logits, iou = tiny_model.decode_chunked(emb, coords, labels, chunk_size=chunk)
            assert logits.shape == (11, 4, 16, 16) and iou.shape == (11, 4)
            torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(iou, ref_iou, rtol=1e-5, atol=1e-5)


def test_each_prompt_is_decoded_on_its_own(tiny_model: LiteSam) -> None:
    """Row i of a batch equals decoding prompt i alone, and equals the copied-embedding path."""
    torch.manual_seed(0)
    emb = torch.randn(1, 32, 4, 4)
    coords, labels = prompts(5)
    with torch.no_grad():
        logits, iou = tiny_model.decode(emb, coords, labels)
        copied, copied_iou = tiny_model.decode(emb.repeat(5, 1, 1, 1), coords, labels)
        single, single_iou = tiny_model.decode(emb, coords[3:4], labels[3:4])
    torch.testing.assert_close(copied, logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(copied_iou, iou, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(single[0], logits[3], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(single_iou[0], iou[3], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(logits[0], logits[1])


def test_padding_points_are_ignored_and_labels_matter(tiny_model: LiteSam) -> None:
    torch.manual_seed(0)
    emb = torch.randn(1, 32, 4, 4)
    coords = torch.tensor([[[20.0, 30.0], [0.0, 0.0]], [[20.0, 30.0], [50.0, 7.0]]])
    labels = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    with torch.no_grad():
        logits, _ = tiny_model.decode(emb, coords, labels)
        torch.testing.assert_close(logits[0], logits[1])  # padding coords do not matter
        other, _ = tiny_model.decode(emb, coords[:1], torch.tensor([[0.0, -1.0]]))
    assert not torch.allclose(other[0], logits[0])  # background vs foreground differ


def test_prompt_embedding_follows_sam_semantics(tiny_model: LiteSam) -> None:
    pe = tiny_model.prompt_encoder
    coords = torch.tensor([[[10.0, 20.0]] * 5])
    labels = torch.tensor([[-1, 0, 1, 2, 3]])
    with torch.no_grad():
        out = pe(coords, labels)
        pos = pe.pe_layer.encode((coords[0, 0] + 0.5) / 64.0)
    torch.testing.assert_close(out[0, 0], pe.not_a_point_embed.weight[0])
    for i in range(4):
        weight = typing.cast(nn.Embedding, pe.point_embeddings[i]).weight
        torch.testing.assert_close(out[0, i + 1], pos + weight[0])
    # float and integer labels give the same embedding
    torch.testing.assert_close(pe(coords, labels.float()), out)
    assert pe.get_dense_pe().shape == (1, 32, 4, 4)


def test_norms_match_torch_reference() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 6, 5, 7)
    gn, ref = GroupNorm1(6), nn.GroupNorm(1, 6)
    with torch.no_grad():
        for m in (gn, ref):
            m.weight.copy_(torch.arange(6.0) + 1)
            m.bias.copy_(torch.arange(6.0) - 2)
    torch.testing.assert_close(gn(x), ref(x), rtol=1e-5, atol=1e-5)
    ln = LayerNorm2d(6)
    expected = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), expected)
    assert ln(x).mean(1).abs().max() < 1e-5


def test_zero_prompts_give_empty_outputs(tiny_model: LiteSam) -> None:
    emb = torch.zeros(1, 32, 4, 4)
    for fn in (tiny_model.decode, tiny_model.decode_chunked):
        logits, iou = fn(emb, torch.zeros(0, 2, 2), torch.zeros(0, 2))
        assert logits.shape == (0, 4, 16, 16) and iou.shape == (0, 4)


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_chunk_size(tiny_model: LiteSam, bad: int) -> None:
    coords, labels = prompts(2)
    with pytest.raises(ValueError, match="chunk_size"):
        tiny_model.decode_chunked(torch.zeros(1, 32, 4, 4), coords, labels, chunk_size=bad)
