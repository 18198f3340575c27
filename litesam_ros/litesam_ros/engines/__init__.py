"""Inference engines: ONNX export, backends (torch, ONNX Runtime, TensorRT), quantization."""
from __future__ import annotations

from .base import Backend, EncoderResult
from .factory import create_backend, resolve_model

__all__ = ["Backend", "EncoderResult", "create_backend", "resolve_model"]
