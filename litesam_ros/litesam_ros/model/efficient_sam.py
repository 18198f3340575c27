"""EfficientSAM (ViT-Ti / ViT-S image encoder, prompt encoder, mask decoder), written anew.

State-dict keys and shapes match the official ``yformer/EfficientSAM`` model (its checkpoint is
``{"model": state_dict}``; our three modules' state dicts prefixed ``image_encoder.``,
``prompt_encoder.``, ``mask_decoder.`` are that state dict), and the numbers match its code.
Things the official model does differently from SAM, reproduced here on purpose:

* Image encoder: a plain ViT (patch 16, qkv bias, LayerNorm eps 1e-6, no final norm) whose
  absolute position embedding was learned on a 224 grid (14x14 + a cls token); the cls entry is
  dropped and the grid is resized bicubically (``align_corners=False``) to the token grid.
  Neck: conv1x1 -> LayerNorm2d -> conv3x3 -> LayerNorm2d, convs without bias.
* Pre-processing (done by callers, not here): the 0-1 RGB image is *stretched* (no aspect
  preserving resize, no padding) to ``image_size`` with bilinear ``F.interpolate``
  (``align_corners=False``, no antialias), then ImageNet mean/std normalised.
* Prompt encoder: no dense / no-mask embedding. Every point gets the random-Fourier positional
  encoding of ``(xy + 0.5) / image_size``; then label -1 gets ``invalid_points`` ADDED (its
  coords are taken as (-1, -1)), label 0 gets nothing, 1 ``point_embeddings``, 2 / 3
  ``bbox_top_left_embeddings`` / ``bbox_bottom_right_embeddings``. Prompts are always exactly
  ``decoder_max_num_input_points`` = 6 points (the config's ``prompt_points``):
  ``sam_model.pad_prompt_points`` pads with (-1, -1) / -1 or truncates.
* Mask decoder: GELU everywhere (MLPs and upscaling), GroupNorm(1) after the first transposed
  conv only, MLPs are ``layers.i.0`` (Linear + GELU) then ``fc``; the two-way transformer keeps
  a residual in the first layer's self-attention and, in later layers, adds the token PE into
  the residual stream before self-attention. IoU outputs have no sigmoid.
"""
from __future__ import annotations

import math
import typing
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activations import GELU
from .mask_decoder import sub_pixels_to_grid, transposed_conv2x2
from .norms import GroupNorm1, sam_neck
from .transformer import TwoWayAttentionBlock, TwoWayTransformer


# ------------------------------------------------------------------------------- image encoder
class _ViTAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim) \
            .permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)  # scale head_dim ** -0.5, as the official
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class _ViTMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _ViTBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _ViTAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _ViTMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class EfficientSamViT(nn.Module):
    """EfficientSAM image encoder: ViT + neck.

    Defaults are ViT-Ti (``embed_dim`` 192, 3 heads); ViT-S is ``embed_dim=384, num_heads=6``.
    ``pretrain_grid`` is the side of the position-embedding grid stored in the checkpoint
    (224 / 16 = 14, plus one cls entry).
    """

    def __init__(self, image_size: int = 1024, patch_size: int = 16, embed_dim: int = 192,
                 depth: int = 12, num_heads: int = 3, mlp_ratio: float = 4.0, out_dim: int = 256,
                 pretrain_grid: int = 14) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError("image_size must be a multiple of patch_size")
        self.image_size = image_size
        self.grid = image_size // patch_size
        self.pretrain_grid = pretrain_grid
        self.embed_dim = embed_dim
        self.out_dim = out_dim
        self.patch_embed = _PatchEmbed(patch_size, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, pretrain_grid * pretrain_grid + 1, embed_dim))
        self.blocks = nn.ModuleList(_ViTBlock(embed_dim, num_heads, mlp_ratio)
                                    for _ in range(depth))
        self.neck = sam_neck(embed_dim, out_dim)

    def position_embedding(self) -> Tensor:
        """The pretrain-grid embedding without its cls entry, resized to [1,D,grid,grid]."""
        g = self.pretrain_grid
        pos = self.pos_embed[:, 1:].reshape(1, g, g, self.embed_dim).permute(0, 3, 1, 2)
        if g != self.grid:  # static: a function of the configuration only
            pos = F.interpolate(pos, size=(self.grid, self.grid), mode="bicubic",
                                align_corners=False)
        return pos

    def forward(self, images: Tensor) -> Tensor:
        """[B,3,S,S] normalised -> [B,out_dim,S/16,S/16]."""
        x = self.patch_embed(images) + self.position_embedding()  # [B,D,g,g]
        b = x.shape[0]
        x = x.flatten(2).transpose(1, 2)  # [B,g*g,D], row-major like the official
        for blk in self.blocks:
            x = blk(x)
        x = x.transpose(1, 2).reshape(b, self.embed_dim, self.grid, self.grid)
        return self.neck(x)


# ------------------------------------------------------------------------------ prompt encoder
class _PositionEmbeddingRandom(nn.Module):
    positional_encoding_gaussian_matrix: Tensor

    def __init__(self, num_pos_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix",
                             torch.randn((2, num_pos_feats)))

    def encode(self, coords01: Tensor) -> Tensor:
        """[..., 2] in [0,1] -> [..., 2 * num_pos_feats] (sin then cos)."""
        coords = (2 * coords01 - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)


class EfficientSamPromptEncoder(nn.Module):
    """Sparse point / box-corner embeddings (EfficientSAM has no dense prompt path).

    ``embed_dim`` C, ``embedding_size`` E (image-embedding side), ``input_size`` S (encoder input
    side; points are in that frame).
    """

    def __init__(self, embed_dim: int, embedding_size: int, input_size: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.embedding_size = embedding_size
        self.input_size = input_size
        self.pe_layer = _PositionEmbeddingRandom(embed_dim // 2)
        self.invalid_points = nn.Embedding(1, embed_dim)
        self.point_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_top_left_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_bottom_right_embeddings = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> Tensor:
        """[1,C,E,E]: the PE of the embedding-pixel centres."""
        e = self.embedding_size
        g = self.pe_layer.positional_encoding_gaussian_matrix  # its dtype: fp16 models too
        centres = (torch.arange(e, device=g.device, dtype=g.dtype) + 0.5) / e
        y, x = torch.meshgrid(centres, centres, indexing="ij")
        pe = self.pe_layer.encode(torch.stack([x, y], dim=-1))  # [E,E,C]
        return pe.permute(2, 0, 1).unsqueeze(0)

    def forward(self, point_coords: Tensor, point_labels: Tensor) -> Tensor:
        """coords [P,K,2] (x, y) in input-frame pixels, labels [P,K] in {1,0,2,3,-1} -> [P,K,C].

        Padding (label -1) coords are replaced by the official (-1, -1); any other negative
        coordinate also becomes -1, as the official ``get_rescaled_pts`` does per axis.
        """
        coords = point_coords.to(torch.float32)
        pad = torch.eq(point_labels, -1)[..., None]
        coords = torch.where((coords >= 0) & ~pad, coords, torch.full_like(coords, -1.0))
        coords01 = (coords + 0.5) / self.input_size  # shift to pixel centre; fp32 up to here
        pe = self.pe_layer.encode(coords01.to(self.pe_layer.positional_encoding_gaussian_matrix
                                              .dtype))
        pe = pe + self.invalid_points.weight * pad
        pe = pe + self.point_embeddings.weight * torch.eq(point_labels, 1)[..., None]
        pe = pe + self.bbox_top_left_embeddings.weight * torch.eq(point_labels, 2)[..., None]
        pe = pe + self.bbox_bottom_right_embeddings.weight * torch.eq(point_labels, 3)[..., None]
        return pe


# -------------------------------------------------------------------------------- mask decoder
class _MLPBlock(nn.Module):
    """The official MLPBlock: ``num_layers`` x (Linear + GELU) as ``layers.i.0``, then ``fc``."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * num_layers
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(a, b), GELU())
                                    for a, b in zip(dims[:-1], dims[1:]))
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.fc(x)


class _TwoWayBlock(TwoWayAttentionBlock):
    """SAM's two-way block with EfficientSAM's token MLP (GELU, ``layers.0.0`` + ``fc``) and
    self-attention: the first layer keeps its residual; later layers add the PE into the
    residual stream itself."""

    def make_mlp(self, embedding_dim: int, mlp_dim: int) -> nn.Module:
        return _MLPBlock(embedding_dim, mlp_dim, embedding_dim, 1)

    def attend_tokens(self, queries: Tensor, query_pe: Tensor) -> Tensor:
        if not self.skip_first_layer_pe:
            queries = queries + query_pe
        return queries + self.self_attn(queries, queries, queries)


class EfficientSamMaskDecoder(nn.Module):
    """EfficientSAM mask decoder; returns ALL mask outputs (0 = single mask, 1.. = multimask).

    ``iou_head_depth`` counts the IoU head's Linear layers (as SAM's ``iou_head_depth`` does):
    ``iou_head_depth - 1`` hidden Linear+GELU layers and the ``fc`` output layer. The official
    build passes ``iou_head_depth - 1`` = 2 to its MLPBlock, so ``iou_head_depth=3`` here is the
    official model.
    """

    def __init__(self, transformer_dim: int = 256, depth: int = 2, num_heads: int = 8,
                 mlp_dim: int = 2048, num_multimask_outputs: int = 3, iou_head_depth: int = 3,
                 iou_head_hidden_dim: int = 256, upscaling_dims: Sequence[int] = (64, 32)) -> None:
        super().__init__()
        if iou_head_depth < 2:
            raise ValueError("iou_head_depth counts Linear layers and must be >= 2")
        if len(upscaling_dims) != 2:
            raise ValueError("upscaling_dims: the decoder upscales 4x with two layers")
        self.transformer_dim = transformer_dim
        self.transformer = TwoWayTransformer(depth, transformer_dim, num_heads, mlp_dim,
                                             block=_TwoWayBlock)
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1 if num_multimask_outputs > 1 else 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        layers = []
        in_dim = transformer_dim
        for i, out in enumerate(upscaling_dims):
            last = i == len(upscaling_dims) - 1
            layers.append(nn.Sequential(
                nn.ConvTranspose2d(in_dim, out, kernel_size=2, stride=2),
                nn.Identity() if last else GroupNorm1(out),
                GELU()))
            in_dim = out
        self.final_output_upscaling_layers = nn.ModuleList(layers)
        self.output_hypernetworks_mlps = nn.ModuleList(
            _MLPBlock(transformer_dim, transformer_dim, in_dim, 2)
            for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = _MLPBlock(transformer_dim, iou_head_hidden_dim,
                                             self.num_mask_tokens, iou_head_depth - 1)

    def forward(self, image_embeddings: Tensor, image_pe: Tensor,
                sparse_prompt_embeddings: Tensor) -> Tuple[Tensor, Tensor]:
        """image_embeddings [1 or P,C,E,E] (batch 1 is shared by all prompts), image_pe
        [1,C,E,E], sparse [P,K,C] -> (masks [P,M,4E,4E], iou [P,M]), M = 1 + num_multimask."""
        p = sparse_prompt_embeddings.shape[0]
        h, w = image_embeddings.shape[-2:]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(p, -1, -1),
                            sparse_prompt_embeddings], dim=1)
        hs, src = self.transformer(image_embeddings, image_pe, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1:1 + self.num_mask_tokens, :]

        upscaled = self.upscale_channels_last(src)  # [P, HW*16, upscaling_dims[-1]]
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :])
                                for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        masks = sub_pixels_to_grid(hyper_in @ upscaled.transpose(1, 2), h, w)
        return masks, self.iou_prediction_head(iou_token_out)

    def upscale_channels_last(self, src: Tensor) -> Tensor:
        """``final_output_upscaling_layers`` on channels-last image tokens (see
        :class:`MaskDecoder`): [B, HW, C] -> [B, HW*16, C2] in the order of
        :func:`sub_pixels_to_grid`. GroupNorm(1) normalises over all pixels and channels of
        a sample, which the pixel order does not change."""
        first, second = (typing.cast(nn.Sequential, layer)
                         for layer in self.final_output_upscaling_layers)
        (up1, norm, act1), (up2, _, act2) = first, second
        assert isinstance(up1, nn.ConvTranspose2d) and isinstance(up2, nn.ConvTranspose2d)
        assert isinstance(norm, GroupNorm1)
        x = transposed_conv2x2(src, up1, column_major=True)  # [B, HW*4, C1]
        x = F.layer_norm(x, x.shape[1:], eps=norm.eps) * norm.weight + norm.bias
        return act2(transposed_conv2x2(act1(x), up2))


__all__ = ["EfficientSamViT", "EfficientSamPromptEncoder", "EfficientSamMaskDecoder"]
