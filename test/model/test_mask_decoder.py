"""Prompt encoder + mask decoder: chunking, shared embedding, label semantics, norms, and the
channels-last mask upscaling against the NCHW ConvTranspose2d formula (the oracle)."""
from __future__ import annotations

import typing
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from litesam_ros.model import SamModel
from litesam_ros.model.mask_decoder import MaskDecoder, sub_pixels_to_grid, transposed_conv2x2
from litesam_ros.model.norms import GroupNorm1, LayerNorm2d
from litesam_ros.model.transformer import TwoWayTransformer


def prompts(p: int, k: int = 3, size: float = 64.0, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(p, k, 2, generator=g) * size
    labels = torch.randint(-1, 4, (p, k), generator=g).float()
    return coords, labels


def test_decode_independent_of_chunking(tiny_model: SamModel) -> None:
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


def test_each_prompt_is_decoded_on_its_own(tiny_model: SamModel) -> None:
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


def test_padding_points_are_ignored_and_labels_matter(tiny_model: SamModel) -> None:
    torch.manual_seed(0)
    emb = torch.randn(1, 32, 4, 4)
    coords = torch.tensor([[[20.0, 30.0], [0.0, 0.0]], [[20.0, 30.0], [50.0, 7.0]]])
    labels = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    with torch.no_grad():
        logits, _ = tiny_model.decode(emb, coords, labels)
        torch.testing.assert_close(logits[0], logits[1])  # padding coords do not matter
        other, _ = tiny_model.decode(emb, coords[:1], torch.tensor([[0.0, -1.0]]))
    assert not torch.allclose(other[0], logits[0])  # background vs foreground differ


def test_prompt_embedding_follows_sam_semantics(tiny_model: SamModel) -> None:
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


def test_zero_prompts_give_empty_outputs(tiny_model: SamModel) -> None:
    emb = torch.zeros(1, 32, 4, 4)
    for fn in (tiny_model.decode, tiny_model.decode_chunked):
        logits, iou = fn(emb, torch.zeros(0, 2, 2), torch.zeros(0, 2))
        assert logits.shape == (0, 4, 16, 16) and iou.shape == (0, 4)


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_chunk_size(tiny_model: SamModel, bad: int) -> None:
    coords, labels = prompts(2)
    with pytest.raises(ValueError, match="chunk_size"):
        tiny_model.decode_chunked(torch.zeros(1, 32, 4, 4), coords, labels, chunk_size=bad)


# -- channels-last upscaling against the NCHW ConvTranspose2d oracle ---------------------------

def _randomise(module: nn.Module, seed: int) -> None:
    """Non-trivial values for every parameter (norm affines included), so a wrong weight or
    pixel order cannot hide behind ones and zeros."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.dim() > 1 else 0.3)
                    + (1.0 if p.dim() == 1 and p.shape[0] in (8, 16) else 0.0))


def _nchw_masks(src: torch.Tensor, hyper_in: torch.Tensor, upscaling: typing.Iterable[nn.Module],
                h: int, w: int) -> torch.Tensor:
    """The old formula: image tokens [P,HW,C] -> NCHW -> the upscaling modules themselves
    (ConvTranspose2d, LayerNorm2d / GroupNorm1, GELU) -> hyper_in @ flattened maps."""
    x = src.transpose(1, 2).unflatten(2, (h, w))
    for layer in upscaling:
        x = layer(x)
    return (hyper_in @ x.flatten(2)).unflatten(2, x.shape[-2:])


def _decoder_inputs(c: int, h: int, w: int, p: int = 3, k: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(1, c, h, w, generator=g), torch.randn(1, c, h, w, generator=g),
            torch.randn(p, k, c, generator=g), torch.randn(1, c, 1, 1, generator=g))


def _sam_decoder(c: int = 32) -> MaskDecoder:
    torch.manual_seed(0)
    dec = MaskDecoder(c, TwoWayTransformer(2, c, 4, 64), iou_head_hidden_dim=32).eval()
    _randomise(dec, 1)
    return dec


def _reference_sam(dec: MaskDecoder, emb: torch.Tensor, pe: torch.Tensor,
                   sparse: torch.Tensor, dense: torch.Tensor
                   ) -> typing.Tuple[torch.Tensor, torch.Tensor]:
    """MaskDecoder.forward with the old NCHW upscaling."""
    p = sparse.shape[0]
    tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], 0)
    tokens = torch.cat([tokens.unsqueeze(0).expand(p, -1, -1), sparse], 1)
    hs, src = dec.transformer(emb + dense, pe, tokens)
    hyper_in = torch.stack([mlp(hs[:, 1 + i]) for i, mlp in
                            enumerate(dec.output_hypernetworks_mlps)], 1)
    masks = _nchw_masks(src.expand(p, -1, -1), hyper_in, dec.output_upscaling, *emb.shape[-2:])
    return masks, dec.iou_prediction_head(hs[:, 0])


def _assert_matches(got: torch.Tensor, ref: torch.Tensor) -> None:
    assert got.shape == ref.shape
    scale = float(ref.abs().max())
    assert scale > 1e-2 and ref.std() > 1e-3 * scale  # a real test signal
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("hw", [(3, 5), (4, 4)])
def test_channels_last_upscaling_matches_nchw_oracle(hw: typing.Tuple[int, int]) -> None:
    """Same masks as ConvTranspose2d -> LayerNorm2d -> GELU -> ConvTranspose2d -> GELU in NCHW
    (a non-square grid catches h/w mix-ups)."""
    dec = _sam_decoder()
    inputs = _decoder_inputs(32, *hw)
    with torch.no_grad():
        masks, iou = dec(*inputs)
        ref_masks, ref_iou = _reference_sam(dec, *inputs)
    assert masks.shape == (3, 4, 4 * hw[0], 4 * hw[1])
    _assert_matches(masks, ref_masks)
    torch.testing.assert_close(iou, ref_iou)


def test_channels_last_upscaling_gradients_match_nchw_oracle() -> None:
    """Training sees the same function: equal gradients for the upscaling parameters (read
    from the unchanged ``output_upscaling`` modules) and the hypernetwork."""
    dec = _sam_decoder()
    inputs = _decoder_inputs(32, 3, 5)
    grads = []
    for fn in (dec, lambda *a: _reference_sam(dec, *a)):
        dec.zero_grad(set_to_none=True)
        masks, _ = fn(*inputs)
        (masks * torch.linspace(-1, 1, masks.numel()).view_as(masks)).sum().backward()
        grads.append({n: p.grad.clone() for n, p in dec.named_parameters()
                      if p.grad is not None and ("upscaling" in n or "hypernet" in n)})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == 6 + 4 * 6
    for name, ref in grads[1].items():
        torch.testing.assert_close(grads[0][name], ref, rtol=1e-4,
                                   atol=1e-5 * float(ref.abs().max()), msg=name)


def test_sub_pixel_order_is_the_conv_transpose_layout() -> None:
    """sub_pixels_to_grid inverts the order of two transposed_conv2x2 (first column-major)."""
    torch.manual_seed(0)
    up1, up2 = nn.ConvTranspose2d(6, 4, 2, 2), nn.ConvTranspose2d(4, 3, 2, 2)
    x = torch.randn(2, 6, 3, 5)
    with torch.no_grad():
        ref = up2(up1(x))  # [2, 3, 12, 20]
        y = transposed_conv2x2(transposed_conv2x2(x.flatten(2).transpose(1, 2), up1,
                                                  column_major=True), up2)
        got = sub_pixels_to_grid(y.transpose(1, 2), 3, 5)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="kernel-2 stride-2"):
        transposed_conv2x2(y, nn.ConvTranspose2d(3, 3, 2, 2, padding=1))


def test_efficient_sam_channels_last_upscaling_matches_nchw_oracle() -> None:
    """EfficientSAM's decoder (GroupNorm(1) between the transposed convs)."""
    from litesam_ros.model.efficient_sam import EfficientSamMaskDecoder

    torch.manual_seed(0)
    dec = EfficientSamMaskDecoder(32, depth=2, num_heads=4, mlp_dim=64, iou_head_hidden_dim=32,
                                  upscaling_dims=(16, 8)).eval()
    _randomise(dec, 2)
    emb, pe, sparse, _ = _decoder_inputs(32, 3, 5)
    with torch.no_grad():
        masks, iou = dec(emb, pe, sparse)
        p = sparse.shape[0]
        tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], 0)
        hs, src = dec.transformer(emb, pe, torch.cat([tokens.expand(p, -1, -1), sparse], 1))
        hyper_in = torch.stack([mlp(hs[:, 1 + i]) for i, mlp in
                                enumerate(dec.output_hypernetworks_mlps)], 1)
        upscaling = [m for layer in dec.final_output_upscaling_layers for m in
                     typing.cast(nn.Sequential, layer)]
        ref = _nchw_masks(src.expand(p, -1, -1), hyper_in, upscaling, 3, 5)
    _assert_matches(masks, ref)
    torch.testing.assert_close(iou, dec.iou_prediction_head(hs[:, 0]))
    with pytest.raises(ValueError, match="two layers"):
        EfficientSamMaskDecoder(32, upscaling_dims=(16, 8, 4))


def test_decoder_graph_has_no_transposed_convs_and_fusable_gelu(tmp_path: Path) -> None:
    """The exported decoder upscales with MatMul (no ConvTranspose), keeps the prompt batch
    dynamic, matches torch in ONNX Runtime, and ORT fuses its GELUs into single kernels."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    dec = _sam_decoder()
    emb, pe, sparse, dense = _decoder_inputs(32, 3, 5)
    path = tmp_path / "dec.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(dec, (emb, pe, sparse, dense), str(path), dynamo=False,
                          opset_version=17, input_names=["emb", "pe", "sparse", "dense"],
                          output_names=["masks", "iou"],
                          dynamic_axes={"sparse": {0: "P"}, "masks": {0: "P"}, "iou": {0: "P"}})
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "ConvTranspose" not in ops and {"MatMul", "LayerNormalization", "Erf"} <= ops
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    fused = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert "Erf" not in fused and fused.count("Gelu") + fused.count("BiasGelu") == 2
    sparse = torch.randn(5, 3, 32)  # another prompt count than at export time
    masks, iou = sess.run(None, {"emb": emb.numpy(), "pe": pe.numpy(),
                                 "sparse": sparse.numpy(), "dense": dense.numpy()})
    with torch.no_grad():
        ref_masks, ref_iou = dec(emb, pe, sparse, dense)
    _assert_matches(torch.from_numpy(masks), ref_masks)
    torch.testing.assert_close(torch.from_numpy(iou), ref_iou, rtol=1e-4, atol=1e-5)
