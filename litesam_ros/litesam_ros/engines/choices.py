"""What a user may choose of the engines: backend kinds and precisions.

Pure data (no torch, no TensorRT): the node's parameter table, the demo and the command lines
take their choices and defaults from here.
"""
from __future__ import annotations

#: auto = TensorRT (installed and a CUDA GPU), else ONNX Runtime CUDA, else torch on CUDA, else
#: ONNX Runtime CPU (device cpu: ONNX Runtime CPU straight away; factory.create_backend).
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

#: Most images one encoder call takes (create_backend's and the node's ``encoder_batch``):
#: 1 = static batch-1 graphs and engines, as before batching; N > 1 = an encoder with a dynamic
#: batch that accepts 1..N (several cameras' frames encoded together).
ENCODER_BATCH_RANGE = (1, 16)
DEFAULT_ENCODER_BATCH = ENCODER_BATCH_RANGE[0]


def check_encoder_batch(value: int) -> int:
    """``value`` as an int when it is in ENCODER_BATCH_RANGE, else ValueError."""
    lo, hi = ENCODER_BATCH_RANGE
    if isinstance(value, bool) or int(value) != value or not lo <= int(value) <= hi:
        raise ValueError(f"encoder_batch must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)
