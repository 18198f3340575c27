"""EfficientSAM's SAMI (masked feature reconstruction) for any student encoder.

Read from the EfficientSAM paper: mask a large share (75%) of the input patches; the encoder
turns the visible ones into features; a cross-attention decoder whose queries are the masked
tokens (keys/values: the encoder's features at every position) reconstructs the masked ones; the
encoder's visible tokens and the decoder's masked tokens are merged back into place, a linear
projection head maps them to the teacher's width, and an MSE against the teacher's features
trains all three. Decoder and head are discarded afterwards.

A convolutional student (LiteViT) cannot drop tokens, so masking is done on pixels: the input
patches of the masked cells (S/E px squares) are set to 0, the normalised mean colour
(SimMIM / ConvNeXt-V2 style), and the encoder still runs on the whole frame. The head starts as
the identity (when widths match), so the encoder's own output is pulled towards the teacher's,
which is what the student's decoder will read.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch
from torch import nn


def sincos_2d(e: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding [E*E, dim] (MAE's), any grid size."""
    d = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(d, dtype=torch.float32) / max(d, 1)))
    ys, xs = torch.meshgrid(torch.arange(e, dtype=torch.float32),
                            torch.arange(e, dtype=torch.float32), indexing="ij")
    parts = []
    for c in (xs.reshape(-1), ys.reshape(-1)):
        a = c[:, None] * omega[None]
        parts += [torch.sin(a), torch.cos(a)]
    pe = torch.cat(parts, 1)
    return torch.cat([pe, pe.new_zeros(e * e, dim - pe.shape[1])], 1)


class CrossBlock(nn.Module):
    """Pre-norm cross-attention (queries -> context) + MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.nq, self.nkv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.n2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        k = self.nkv(kv)
        q = q + self.attn(self.nq(q), k, k, need_weights=False)[0]
        return q + self.mlp(self.n2(q))


class SamiHead(nn.Module):
    """Cross-attention decoder + linear projection head (trained with the student, dropped)."""

    def __init__(self, dim: int, out_dim: int, depth: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.blocks = nn.ModuleList(CrossBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out_dim)
        with torch.no_grad():
            if out_dim == dim:
                self.proj.weight.copy_(torch.eye(dim))
            self.proj.bias.zero_()

    def forward(self, feats: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """feats [B,C,E,E] (encoder output on the masked input), masked [B,M] cell indices.
        Returns the merged, projected features [B,out,E,E]."""
        B, C, E, _ = feats.shape
        tokens = feats.flatten(2).transpose(1, 2)  # [B,N,C]
        pe = sincos_2d(E, C).to(feats)
        q = self.mask_token.expand(B, masked.shape[1], C) + pe[masked]
        kv = tokens + pe[None]
        for blk in self.blocks:
            q = blk(q, kv)
        q = self.norm(q)
        merged = tokens.scatter(1, masked[..., None].expand(-1, -1, C), q)
        out = self.proj(merged)
        return out.transpose(1, 2).reshape(B, -1, E, E)


def random_masking(rng: np.random.Generator, batch: int, e: int, ratio: float) -> torch.Tensor:
    """[B, round(ratio*E*E)] masked cell indices, sorted (the same count for every image)."""
    n = e * e
    m = max(1, min(n - 1, int(math.floor(ratio * n + 0.5))))
    return torch.from_numpy(np.stack([np.sort(rng.permutation(n)[:m]) for _ in range(batch)]))


def mask_pixels(images: torch.Tensor, masked: torch.Tensor, e: int) -> torch.Tensor:
    """Images [B,3,S,S] with the S/E-pixel patch of every masked cell set to 0."""
    B, _, S, _ = images.shape
    keep = torch.ones(B, e * e, device=images.device)
    keep.scatter_(1, masked.to(images.device), 0.0)
    st = S // e
    keep = keep.view(B, 1, e, e).repeat_interleave(st, 2).repeat_interleave(st, 3)
    return images * keep


def masked_share(masked: torch.Tensor, e: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Bool [B,E,E] grids of masked and visible cells."""
    g = torch.zeros(masked.shape[0], e * e, dtype=torch.bool, device=masked.device)
    g.scatter_(1, masked, True)  # on masked's device: no copy to the host
    g = g.view(-1, e, e)
    return g, ~g


__all__ = ["SamiHead", "random_masking", "mask_pixels", "masked_share", "sincos_2d"]
