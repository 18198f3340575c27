"""Inference engines: ONNX export, backends (torch, ONNX Runtime, TensorRT), quantization."""
from __future__ import annotations

from typing import Any

from .base import Backend, EncoderResult

__all__ = ["Backend", "EncoderResult", "create_backend", "resolve_model"]


def __getattr__(name: str) -> Any:  # lazy: keep `import litesam_ros.engines` light
    if name in ("create_backend", "resolve_model"):
        from . import factory
        return getattr(factory, name)
    raise AttributeError(name)
