"""GELU written the way ONNX Runtime fuses it."""
from __future__ import annotations

import math

import torch
from torch import nn


class GELU(nn.GELU):
    """nn.GELU (same function, no parameters, same state dict) that exports as
    ``x * 0.5 * (1 + erf(x / sqrt 2))``. The exporter's own decomposition at opset 18
    (``0.5 * (1 + erf)`` times x) is not matched by ONNX Runtime's Gelu fusion and costs five
    passes over the tensor; this form becomes one Gelu (or BiasGelu) kernel, and stays plain
    opset-18 ops for TensorRT. Eager torch keeps its own GELU kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export() and self.approximate == "none":
            return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
        return super().forward(x)


__all__ = ["GELU"]
