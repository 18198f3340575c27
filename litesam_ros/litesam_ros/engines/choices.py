"""What a user may choose of the engines: backend kinds and precisions.

Pure data (no torch, no TensorRT): the node's parameter table, the demo and the command lines
take their choices and defaults from here.
"""
from __future__ import annotations

#: auto = TensorRT (installed and a CUDA GPU), else ONNX Runtime CUDA, else ONNX Runtime CPU.
BACKEND_KINDS = ("auto", "tensorrt", "onnxruntime", "torch")
DEFAULT_BACKEND = BACKEND_KINDS[0]

#: Precisions an engine is built or run at (TensorRT offers all three).
ENGINE_PRECISIONS = ("fp32", "fp16", "int8")
#: The torch backend's precisions (fp16 on CUDA only; int8 is ONNX Runtime's or TensorRT's).
TORCH_PRECISIONS = ENGINE_PRECISIONS[:2]
#: What create_backend and the node accept: "auto" = fp16 where the backend offers it
#: (TensorRT, torch on CUDA), else fp32: one configuration serves a Jetson and a CPU-only machine.
PRECISIONS = ("auto",) + ENGINE_PRECISIONS
DEFAULT_PRECISION = PRECISIONS[0]
#: What "auto" is on TensorRT (and what a TensorRT engine is built at unless told otherwise).
TENSORRT_PRECISION = "fp16"
