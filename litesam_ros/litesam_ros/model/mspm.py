"""Multi-Scale Pooling Module (MSPM): Lite-SAM's token mixer.

PoolFormer mixes tokens with ``AvgPool3x3(x) - x``. MSPM runs several average pools of different
kernel sizes in parallel and fuses them with learned per-channel weights before subtracting the
identity. Kernel sizes are not published; (3, 5, 7) is the default. The fusion costs
``len(kernels) * C`` parameters per block, in line with the paper's +0.01M over plain pooling.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class MSPM(nn.Module):
    """``sum_k w_k * AvgPool_k(x) - x`` with per-channel weights ``w_k`` (initially 1/n)."""

    def __init__(self, dim: int, kernels: Sequence[int] = (3, 5, 7)) -> None:
        super().__init__()
        self.kernels = tuple(int(k) for k in kernels)
        n = len(self.kernels)
        self.branch_weights = nn.Parameter(torch.full((n, dim), 1.0 / n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = -x
        for i, k in enumerate(self.kernels):
            pooled = F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
            out = out + self.branch_weights[i][:, None, None] * pooled
        return out


__all__ = ["MSPM"]
