"""ONNX Runtime backend: the exported graphs on CPU (default), CUDA or TensorRT EPs."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import onnxruntime as ort
import torch

from .base import Backend, EncoderResult, fit_prompt_points

#: ONNX Runtime graph optimisers that slow our graphs down (see _Session)
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
             "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def providers_for(device: Optional[str]) -> list[str]:
    """Execution providers for a device name: "cpu" / None, "cuda", or "tensorrt"."""
    have = available_providers()
    wanted = {None: [], "cpu": [], "cuda": ["CUDAExecutionProvider"],
              "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]}
    if device not in wanted:
        raise ValueError(f"unknown ONNX Runtime device {device!r}: cpu, cuda or tensorrt")
    chosen = [p for p in wanted[device] if p in have]
    if wanted[device] and not chosen:
        raise RuntimeError(f"ONNX Runtime has no provider for {device!r} (have {have})")
    return chosen + ["CPUExecutionProvider"]


class _Session:
    """One InferenceSession; input names/types read from the graph.

    Its intra-op threads spin between the ops of a run and stop as soon as the run returns
    (``session.force_spinning_stop``). Spinning within a run saves waking the threads for
    each of a graph's few hundred small ops (1 prompt: 7.3 ms against 9.5 ms with threads that
    sleep when idle); stopping after it leaves the cores to the torch work that follows every
    encoder and decoder run in the pipeline (proposals, stability, filters, boxes), which
    ORT's default spinning after a run starves. bikes.mp4 segment-everything frames, 2 cores:
    median 227 ms with ORT's default, 231 ms with threads that never spin, 189 ms like this
    (benchmarks/bench_ort_spinning.py, docs/benchmarks.md).

    ONNX Runtime's SkipLayerNormFusion is off: its fused kernel takes 3x the time of the Add,
    Add and LayerNormalization it replaces on the decoder's image tokens (1,600 x 256 at r640:
    1.27 ms against 0.46 ms profiled), 1.02-1.11x per decoder call without it. No encoder graph
    of the zoo (LiteViT, TinyViT, ViT-T) has the pattern; their outputs are unchanged.
    """

    def __init__(self, path: Union[str, Path], providers: Sequence[str],
                 threads: Optional[int], optimized_path: Optional[Union[str, Path]] = None
                 ) -> None:
        """optimized_path: where ONNX Runtime writes the graph as optimised (for tests)."""
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.force_spinning_stop", "1")
        if threads:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        if optimized_path is not None:
            so.optimized_model_filepath = str(optimized_path)
        self.session = ort.InferenceSession(str(path), so, providers=list(providers),
                                            disabled_optimizers=list(DISABLED_OPTIMIZERS))
        self.inputs = [(i.name, _NP_TYPES.get(i.type, np.float32))
                       for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, *arrays: torch.Tensor) -> list[torch.Tensor]:
        feeds = {name: np.ascontiguousarray(a.detach().cpu().numpy(), dtype=dt)
                 for (name, dt), a in zip(self.inputs, arrays)}
        return [torch.from_numpy(np.asarray(o)) for o in self.session.run(self.outputs, feeds)]


class OrtBackend(Backend):
    """Encoder and decoder graphs in two ONNX Runtime sessions; tensors come back on CPU.

    max_batch > 1 needs an encoder graph with a dynamic batch (export_encoder(dynamic_batch=
    True)); encode() then takes 1..max_batch images."""

    def __init__(self, encoder_path: Union[str, Path], decoder_path: Union[str, Path],
                 config: Any, device: Optional[str] = None, threads: Optional[int] = None,
                 precision: str = "fp32", max_batch: int = 1) -> None:
        providers = providers_for(device)
        self.config = config
        self.precision = precision
        self.encoder = _Session(encoder_path, providers, threads)
        batch_dim = self.encoder.session.get_inputs()[0].shape[0]
        if max_batch > 1 and isinstance(batch_dim, int):
            raise ValueError(f"encoder graph {encoder_path} has a static batch of {batch_dim}: "
                             "max_batch > 1 needs the dynamic-batch export")
        self.max_batch = int(max_batch)
        self.decoder = _Session(decoder_path, providers, threads)
        self.providers = self.encoder.session.get_providers()
        self.name = f"onnxruntime:{self.providers[0]}:{precision}"

    def encode(self, image: torch.Tensor) -> EncoderResult:
        self.check_batch(image)
        outs = self.encoder(image)
        return EncoderResult(**dict(zip(self.encoder.outputs, outs)))

    def decode(self, embeddings: torch.Tensor, point_coords: torch.Tensor,
               point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        point_coords, point_labels = fit_prompt_points(self.config, point_coords, point_labels)
        logits, iou = self.decoder(embeddings, point_coords, point_labels)
        return logits, iou
