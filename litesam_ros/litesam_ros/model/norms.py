"""Normalisation layers written with ``F.layer_norm`` so ONNX export gives LayerNormalization,
and SAM's neck built from them."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a [B,C,H,W] map (SAM's LayerNorm2d)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


class GroupNorm1(nn.Module):
    """``nn.GroupNorm(1, C)`` (PoolFormer's norm): statistics over C,H,W, per-channel affine.

    Computed as ``layer_norm`` over the last three dims, which exports as one
    LayerNormalization(axis=1) node instead of a reshape/InstanceNorm chain.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x, x.shape[1:], eps=self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def sam_neck(in_dim: int, out_dim: int) -> nn.Sequential:
    """SAM's neck (conv1x1, LayerNorm2d, conv3x3, LayerNorm2d; no conv bias), keys 0..3: the
    same in SAM's ViT, MobileSAM's TinyViT and EfficientSAM's ViT."""
    return nn.Sequential(
        nn.Conv2d(in_dim, out_dim, kernel_size=1, bias=False), LayerNorm2d(out_dim),
        nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1, bias=False), LayerNorm2d(out_dim))


__all__ = ["LayerNorm2d", "GroupNorm1", "sam_neck"]
