"""SAM's ViT image encoder (ViT-B/L/H), with the state_dict layout of Meta's
``segment_anything.modeling.ImageEncoderViT`` so official ``image_encoder.*`` weights load
strictly.

Written for export: every size is a Python int fixed at construction (grid, window padding,
window count), the decomposed relative-position terms are batched MatMuls (not Einsum) and
attention is ``scaled_dot_product_attention`` with that additive bias, which exports (opset 18)
as MatMul/Add/Softmax/MatMul and in eager torch is about twice as fast as SAM's explicit softmax.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .activations import GELU
from .norms import sam_neck


def _rel_pos_table(rel_pos: torch.Tensor, size: int) -> torch.Tensor:
    """[2*size-1, C] -> [size, size, C] with ``out[i, j] = rel_pos[i - j + size - 1]``.

    The tables are built at the size they are used at, so this is a plain Gather; SAM's
    interpolation branch (for tables trained at another size) never runs in SAM either.
    Resize the parameters when loading instead, if ever needed.
    """
    coords = torch.arange(size, device=rel_pos.device)
    return rel_pos[coords[:, None] - coords[None, :] + (size - 1)]


class _Attention(nn.Module):
    """Multi-head self-attention over a square ``size`` x ``size`` token grid, with SAM's
    decomposed relative-position bias added to the logits (computed from the unscaled q)."""

    def __init__(self, dim: int, num_heads: int, size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.size = size
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * size - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * size - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N,s,s,C] -> [N,s,s,C]."""
        s, heads = self.size, self.num_heads
        c = x.shape[-1]
        q, k, v = self.qkv(x).reshape(-1, s * s, 3, heads, c // heads).permute(2, 0, 3, 1, 4
                                                                             ).unbind(0)
        rq = q.unflatten(2, (s, s))  # [N,heads,h,w,d]
        # rel_h[n,a,h,w,kh] = <q[n,a,h,w], Rh[h,kh]>: h is a batch dim of the MatMul.
        rel_h = rq @ _rel_pos_table(self.rel_pos_h, s).transpose(-2, -1)
        # rel_w[n,a,h,w,kw] = <q[n,a,h,w], Rw[w,kw]>: move w into the batch dims.
        rel_w = (rq.transpose(2, 3) @ _rel_pos_table(self.rel_pos_w, s).transpose(-2, -1)
                 ).transpose(2, 3)
        # bias[n,a,(h,w),(kh,kw)] = rel_h[n,a,h,w,kh] + rel_w[n,a,h,w,kw]
        bias = (rel_h.flatten(2, 3)[..., None] + rel_w.flatten(2, 3)[..., None, :]).flatten(3)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        # The explicit copy matters for torch.export: without it the reshape is recorded as a
        # view valid for the fused CPU kernel's output strides, which the ONNX decomposition
        # of SDPA does not reproduce ("Cannot view a tensor ...").
        out = out.transpose(1, 2).clone(memory_format=torch.contiguous_format)
        return self.proj(out.reshape(-1, s, s, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)
        self.act = GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class _Block(nn.Module):
    """Pre-norm ViT block; attention is global over the ``grid`` x ``grid`` map when
    ``window`` is 0, else inside non-overlapping ``window`` x ``window`` windows of the map
    zero-padded (after norm1, as SAM does: padded tokens are attended to) to a multiple of
    ``window``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, grid: int,
                 window: int) -> None:
        super().__init__()
        self.grid = grid
        self.window = window
        self.pad = (window - grid % window) % window if window else 0
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, num_heads, window or grid)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def _windowed_attn(self, x: torch.Tensor) -> torch.Tensor:
        ws, c = self.window, x.shape[-1]
        if self.pad:
            x = F.pad(x, (0, 0, 0, self.pad, 0, self.pad))
        n = (self.grid + self.pad) // ws  # windows per side
        # [B,n*ws,n*ws,C] -> [B*n*n,ws,ws,C]
        x = x.reshape(-1, n, ws, n, ws, c).transpose(2, 3).reshape(-1, ws, ws, c)
        x = self.attn(x)
        x = x.reshape(-1, n, n, ws, ws, c).transpose(2, 3).reshape(-1, n * ws, n * ws, c)
        return x[:, :self.grid, :self.grid] if self.pad else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B,g,g,C] -> [B,g,g,C]."""
        y = self.norm1(x)
        x = x + (self._windowed_attn(y) if self.window else self.attn(y))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # channels last, as the blocks use


class SamViT(nn.Module):
    """SAM's image encoder: patch embed + absolute pos embed, ViT blocks (windowed, except
    the global ones at ``global_attn_indexes``), neck to ``out_dim`` channels.

    Defaults are ViT-B. ViT-L: embed 1024, depth 24, heads 16, global (5, 11, 17, 23).
    ViT-H: embed 1280, depth 32, heads 16, global (7, 15, 23, 31). The parameter shapes of
    ``pos_embed`` and of the global blocks' ``rel_pos_*`` depend on ``image_size``: official
    weights load as they are only at image_size 1024 (patch 16).
    """

    def __init__(self, image_size: int = 1024, patch_size: int = 16, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 out_dim: int = 256, window_size: int = 14,
                 global_attn_indexes: Sequence[int] = (2, 5, 8, 11)) -> None:
        super().__init__()
        if image_size % patch_size or embed_dim % num_heads or window_size < 0:
            raise ValueError(f"bad SamViT sizes: image {image_size}, patch {patch_size}, "
                             f"embed {embed_dim}, heads {num_heads}, window {window_size}")
        if any(not 0 <= i < depth for i in global_attn_indexes):
            raise ValueError(f"global_attn_indexes {tuple(global_attn_indexes)} not in "
                             f"[0, {depth})")
        grid = image_size // patch_size
        self.image_size = image_size
        self.patch_embed = _PatchEmbed(patch_size, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            _Block(embed_dim, num_heads, mlp_ratio, grid,
                   0 if i in global_attn_indexes else window_size)
            for i in range(depth))
        self.neck = sam_neck(embed_dim, out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B,3,S,S] normalised -> [B,out_dim,S/patch,S/patch]"""
        x = self.patch_embed(images) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))


__all__ = ["SamViT"]
