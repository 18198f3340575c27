"""ONNX Runtime backend: the exported graphs on CPU (default), CUDA or TensorRT EPs."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import onnxruntime as ort
import torch

from .base import Backend, EncoderResult, fit_prompt_points

#: ONNX Runtime graph optimisers that slow our graphs down (see _Session)
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
             "tensor(int64)": np.int64, "tensor(int32)": np.int32}


#: What each ONNX Runtime device kind asks for, in order (the CPU provider always comes last).
_DEVICE_PROVIDERS = {"cpu": (), "cuda": ("CUDAExecutionProvider",),
                     "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider")}
#: Where the CPU pinned onnxruntime lacks a GPU provider: the package that has it.
_GPU_PACKAGE = "onnxruntime-gpu"
ProviderList = list[Union[str, tuple[str, dict[str, str]]]]


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def parse_device(device: Union[None, str, torch.device]) -> tuple[str, int]:
    """(kind, index) of an ONNX Runtime device: None / "cpu", "cuda", "cuda:N",
    torch.device("cuda", N), "tensorrt" or "tensorrt:N"; the index is 0 unless given."""
    text = "cpu" if device is None else str(device)
    kind, _, index = text.partition(":")
    if kind not in _DEVICE_PROVIDERS or (index and not index.isdigit()) or (
            kind == "cpu" and index):
        raise ValueError(f"unknown ONNX Runtime device {text!r}: cpu, cuda, cuda:N, tensorrt "
                         "or tensorrt:N")
    return kind, int(index or 0)


def providers_for(device: Union[None, str, torch.device]) -> ProviderList:
    """Execution providers (with their ``device_id`` option) for a device; RuntimeError naming
    the missing provider when this onnxruntime has none of those the device needs."""
    kind, index = parse_device(device)
    have = available_providers()
    wanted = _DEVICE_PROVIDERS[kind]
    chosen = [p for p in wanted if p in have]
    if wanted and not chosen:
        raise RuntimeError(f"ONNX Runtime has no {wanted[-1]} for device {str(device)!r} (have "
                           f"{', '.join(have)}; the GPU providers come with {_GPU_PACKAGE})")
    gpu: ProviderList = [(p, {"device_id": str(index)}) for p in chosen]
    return gpu + ["CPUExecutionProvider"]


def check_session_providers(session: Any, asked: ProviderList, path: Union[str, Path]) -> None:
    """RuntimeError when a GPU provider asked for is not among the session's: ONNX Runtime logs
    a provider that fails to initialise (missing cuDNN / cuBLAS) and runs on the CPU."""
    got = list(session.get_providers())
    gpu = [p if isinstance(p, str) else p[0] for p in asked[:-1]]
    if gpu and gpu[-1] not in got:  # the last GPU provider (CUDA) serves every such device
        raise RuntimeError(f"ONNX Runtime came up without {gpu[-1]} for {Path(path).name} "
                           f"(session providers: {', '.join(got)}): its CUDA libraries "
                           "(cuDNN, cuBLAS) did not load; see ONNX Runtime's CUDA requirements")


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

    def __init__(self, path: Union[str, Path], providers: ProviderList,
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
        check_session_providers(self.session, providers, path)
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
                 config: Any, device: Union[None, str, torch.device] = None,
                 threads: Optional[int] = None, precision: str = "fp32",
                 max_batch: int = 1) -> None:
        """device: cpu (None), cuda, cuda:N, tensorrt or tensorrt:N (parse_device); N becomes
        the GPU providers' device_id."""
        providers = providers_for(device)
        kind, index = parse_device(device)
        self.ort_device = "cpu" if kind == "cpu" else f"{kind}:{index}"
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

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "device": self.ort_device,
                "providers": ", ".join(self.providers)}

    def encode(self, image: torch.Tensor) -> EncoderResult:
        self.check_batch(image)
        outs = self.encoder(image)
        return EncoderResult(**dict(zip(self.encoder.outputs, outs)))

    def decode(self, embeddings: torch.Tensor, point_coords: torch.Tensor,
               point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        point_coords, point_labels = fit_prompt_points(self.config, point_coords, point_labels)
        logits, iou = self.decoder(embeddings, point_coords, point_labels)
        return logits, iou
