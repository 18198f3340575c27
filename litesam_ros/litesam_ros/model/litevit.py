"""LiteViT image encoder: MetaFormer blocks with the MSPM token mixer, plus the SAM-style neck."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .config import LiteSamConfig
from .mspm import MSPM
from .norms import GroupNorm1, LayerNorm2d


class ConvMlp(nn.Module):
    """Pointwise MLP on a [B,C,H,W] map: conv1x1 -> GELU -> conv1x1."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden_dim, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LiteViTBlock(nn.Module):
    """x + ls1 * MSPM(norm(x)); x + ls2 * MLP(norm(x)) (PoolFormer block with MSPM)."""

    def __init__(self, dim: int, mlp_ratio: float, kernels: Sequence[int],
                 layer_scale_init: float) -> None:
        super().__init__()
        self.norm1 = GroupNorm1(dim)
        self.token_mixer = MSPM(dim, kernels)
        self.norm2 = GroupNorm1(dim)
        self.mlp = ConvMlp(dim, int(round(dim * mlp_ratio)))
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale_1[:, None, None] * self.token_mixer(self.norm1(x))
        return x + self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Strided conv that downsamples by ``stride`` and changes the width (also the stem)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, kernel, stride=stride, padding=(kernel - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class LiteViT(nn.Module):
    """Backbone: stem patch merging, then per stage [patch merging] + LiteViT blocks.

    Returns the last stage's features [B, stage_dims[-1], S/stride, S/stride].
    """

    def __init__(self, stage_dims: Sequence[int], stage_depths: Sequence[int],
                 stage_strides: Sequence[int], mlp_ratio: float = 2.0,
                 mspm_kernels: Sequence[int] = (3, 5, 7), stem_kernel: int = 3,
                 merge_kernel: int = 2, layer_scale_init: float = 1e-5, in_chans: int = 3) -> None:
        super().__init__()
        self.merges = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = in_chans
        for i, (dim, depth, stride) in enumerate(zip(stage_dims, stage_depths, stage_strides)):
            kernel = stem_kernel if i == 0 else merge_kernel
            self.merges.append(PatchMerging(prev, dim, kernel, stride))
            self.stages.append(nn.Sequential(*[
                LiteViTBlock(dim, mlp_ratio, mspm_kernels, layer_scale_init)
                for _ in range(depth)]))
            prev = dim
        self.out_dim = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for merge, stage in zip(self.merges, self.stages):
            x = stage(merge(x))
        return x


class Neck(nn.Module):
    """conv1x1 (no bias) + LayerNorm2d to the ``embed_dim`` image embedding."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, embed_dim, 1, bias=False)
        self.norm = LayerNorm2d(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class ImageEncoder(nn.Module):
    """LiteViT backbone + neck: [B,3,S,S] normalised images -> [B,embed_dim,E,E]."""

    def __init__(self, cfg: LiteSamConfig) -> None:
        super().__init__()
        self.backbone = LiteViT(cfg.stage_dims, cfg.stage_depths, cfg.stage_strides,
                                cfg.mlp_ratio, cfg.mspm_kernels, cfg.stem_kernel,
                                cfg.merge_kernel, cfg.layer_scale_init)
        self.neck = Neck(self.backbone.out_dim, cfg.embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.neck(self.backbone(images))


__all__ = ["ConvMlp", "LiteViTBlock", "PatchMerging", "LiteViT", "Neck", "ImageEncoder"]
