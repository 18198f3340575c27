"""Multi-Scale Pooling Module (MSPM): Lite-SAM's token mixer.

PoolFormer mixes tokens with ``AvgPool3x3(x) - x``. MSPM runs several average pools of different
kernel sizes in parallel and fuses them with learned per-channel weights before subtracting the
identity. Kernel sizes are not published; (3, 5, 7) is the default. The fusion costs
``len(kernels) * C`` parameters per block, in line with the paper's +0.01M over plain pooling.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def average_pools(x: torch.Tensor, kernels: Sequence[int],
                  separable: bool = False) -> Iterator[torch.Tensor]:
    """``AvgPool_k(x)`` (stride 1, same size, padding not counted) for each k.

    separable: each as a k x 1 pool then a 1 x k pool, the same average up to rounding (with
    padding left out a window's count is rows inside x columns inside, so the 2-D mean
    factorises): 2k adds per output instead of k^2. The exported graph uses it (ONNX Runtime
    runs it faster); torch's own kernels are not faster that way, so training keeps 2-D pools.
    """
    for k in kernels:
        if not separable:
            yield F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
            continue
        rows = F.avg_pool2d(x, (k, 1), stride=1, padding=(k // 2, 0), count_include_pad=False)
        yield F.avg_pool2d(rows, (1, k), stride=1, padding=(0, k // 2), count_include_pad=False)


class MSPM(nn.Module):
    """``sum_k w_k * AvgPool_k(x) - x`` with per-channel weights ``w_k`` (initially 1/n)."""

    def __init__(self, dim: int, kernels: Sequence[int] = (3, 5, 7)) -> None:
        super().__init__()
        self.kernels = tuple(int(k) for k in kernels)
        n = len(self.kernels)
        self.branch_weights = nn.Parameter(torch.full((n, dim), 1.0 / n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = -x
        for w, pooled in zip(self.branch_weights, average_pools(x, self.kernels)):
            out = out + w[:, None, None] * pooled
        return out


__all__ = ["MSPM", "average_pools"]
