"""create_backend: pick and build a backend; ONNX graphs are exported once into a cache folder."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import torch

from ..model import load_model
from ..model.registry import DEFAULT_MODEL
from . import tensorrt_backend as trb
from .base import GRAPH_PARTS, Backend
from .choices import (BACKEND_KINDS, DEFAULT_BACKEND, DEFAULT_ENCODER_BATCH, PRECISIONS,
                      TENSORRT_PRECISION, check_encoder_batch)
from .onnx_export import GRAPH_FORMAT, ExportedGraphs, encoder_graph_name, export_model
from .ort_backend import OrtBackend
from .quantize import int8_graph_path, quantize_model
from .torch_backend import TorchBackend, default_device

if TYPE_CHECKING:
    from ..model import SamModel

log = logging.getLogger(__name__)

#: Why create_backend refuses precision int8 when ONNX Runtime would run on the CPU (issue 15.6,
#: benchmarks/bench_int8_variants.py; docs/benchmarks.md "INT8 on CPU").
ORT_CPU_INT8_REFUSAL = ("precision int8 is not offered with ONNX Runtime on CPU: measured at "
                        "most 1.15x fp32 end to end (1.3x needed) with box masks at IoU 0.89 min "
                        "vs fp32 on real photos (0.95 needed; docs/benchmarks.md, INT8 on CPU); "
                        "use fp32, or int8 with TensorRT")

def default_cache_dir() -> Path:
    """$LITESAM_CACHE_DIR, else ~/.cache/litesam_ros."""
    env = os.environ.get("LITESAM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "litesam_ros"


def resolve_model(model: Union[str, "os.PathLike[str]", "SamModel"]) -> tuple["SamModel", str]:
    """(model in eval mode, cache id) from a registry name, a model file or a module
    (``model.load_model`` decides which)."""
    loaded = load_model(model)
    return loaded.model, loaded.model_id


def exported_graphs(model: "SamModel", model_id: str,
                    cache_dir: Optional[Union[str, Path]] = None,
                    dynamic_batch: bool = False) -> tuple[ExportedGraphs, Path]:
    """ONNX graphs of ``model`` in cache_dir/<model_id>-g<GRAPH_FORMAT>, each exported on first
    use. dynamic_batch: the encoder graph with a dynamic batch (its own file, beside the static
    batch-1 one)."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / f"{model_id}-g{GRAPH_FORMAT}"
    graphs = ExportedGraphs(folder / encoder_graph_name(dynamic_batch), folder / "decoder.onnx")
    missing = tuple(part for part, path in zip(GRAPH_PARTS, (graphs.encoder, graphs.decoder))
                    if not path.exists())
    if not missing:
        log.info("reusing ONNX graphs in %s", folder)
        return graphs, folder
    log.info("exporting ONNX graphs (%s) to %s", ", ".join(missing), folder)
    return export_model(model, folder, dynamic_batch=dynamic_batch, parts=missing), folder


def int8_graphs(graphs: ExportedGraphs, folder: Path, config: Any, target: str,
                parts: tuple[str, ...] = GRAPH_PARTS) -> ExportedGraphs:
    """INT8 (QDQ) versions of the graphs, quantized on first use; parts not listed stay FP32.
    Each is named after its FP32 graph (encoder / encoder-dynbatch / decoder)."""
    sources = dict(zip(GRAPH_PARTS, (graphs.encoder, graphs.decoder)))
    paths = {p: int8_graph_path(sources[p], folder, target) for p in parts}
    missing = tuple(p for p, path in paths.items() if not path.exists())
    if missing:
        log.info("quantizing %s to INT8 (%s)", ", ".join(missing), target)
        quantize_model(graphs.encoder, graphs.decoder, folder, config, target, parts=missing)
    return ExportedGraphs(paths.get("encoder", graphs.encoder),
                          paths.get("decoder", graphs.decoder))


#: Why precision int8 runs on TensorRT only on a GPU (issue 32.8): ONNX Runtime's CUDA provider
#: has no QDQ-to-int8 convolution fusion, so the CPU scheme's graph would run DQ -> fp32 Conv -> Q
#: there, very likely slower than fp32 (not measured: no GPU has run it).
ORT_CUDA_INT8_REFUSAL = ("precision int8 on a GPU is offered with TensorRT only: ONNX Runtime's "
                         "CUDA provider runs the QDQ graph as DQ -> fp32 Conv -> Q (no int8 "
                         "fusion), slower than fp32; use fp16, or install TensorRT")


def _ort_cuda_available() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def _device_kind(device: Optional[Union[str, torch.device]]) -> Optional[str]:
    """"cpu", "cuda", "tensorrt" (ONNX Runtime's TensorRT provider) or None (not given)."""
    return None if device is None else str(device).partition(":")[0]


def create_backend(kind: str = DEFAULT_BACKEND,
                   model: Union[str, "os.PathLike[str]", "SamModel"] = DEFAULT_MODEL,
                   precision: str = "fp32", cache_dir: Optional[Union[str, Path]] = None,
                   device: Optional[Union[str, torch.device]] = None,
                   threads: Optional[int] = None,
                   encoder_batch: int = DEFAULT_ENCODER_BATCH) -> Backend:
    """A backend for ``model`` (registry name, model file of any supported format — this
    project's checkpoint or an official SAM / MobileSAM / TinySAM / EfficientSAM file — or a
    SamModel module).

    kind "auto" (docs/gpu.md): device cpu = ONNX Runtime on the CPU; else TensorRT (installed
    and a CUDA GPU), then ONNX Runtime CUDA (onnxruntime-gpu, precision auto / fp32, its
    session up with the CUDA provider), then torch on CUDA, then ONNX Runtime on the CPU; the
    backend's ``chosen_because`` and the log say why. device: cpu, cuda, cuda:N (ONNX Runtime:
    also tensorrt[:N], its TensorRT provider). precision: auto (fp16 on TensorRT and on torch
    with CUDA, else fp32) | fp32 | fp16 (TensorRT, torch CUDA; kind "auto" degrades it to fp32
    on ONNX Runtime with a warning) | int8 (TensorRT: explicit Q/DQ encoder, FP16 decoder;
    ValueError ORT_CPU_INT8_REFUSAL / ORT_CUDA_INT8_REFUSAL with ONNX Runtime on the CPU / a
    GPU). threads: intra-op threads of ONNX Runtime
    or torch (None = their default). encoder_batch N: the encoder takes up to N images per
    call (Backend.max_batch): 1 = the static batch-1 graphs and engines; N > 1 = the encoder
    graph exported with a dynamic batch (a separate cached file) and, on TensorRT, an encoder
    engine with the optimisation profile batch min 1 / opt N / max N (encoder_profile).
    """
    encoder_batch = check_encoder_batch(encoder_batch)
    if kind not in BACKEND_KINDS:
        raise ValueError(f"kind must be one of {BACKEND_KINDS}, got {kind!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    loaded = load_model(model)
    net, model_id = loaded.model, loaded.model_id
    backend = _create(kind, net, model_id, precision, cache_dir, device, threads, encoder_batch)
    backend.model_thresholds = dict(loaded.thresholds)
    backend.iou_calibration = dict(loaded.iou_calibration)
    return backend


def _create(kind: str, net: "SamModel", model_id: str, precision: str,
            cache_dir: Optional[Union[str, Path]], device: Optional[Union[str, torch.device]],
            threads: Optional[int], encoder_batch: int) -> Backend:
    if kind == "torch":
        return _torch(net, device, precision, threads, encoder_batch)
    on_cpu = _device_kind(device) == "cpu"
    if kind == "tensorrt":  # before exporting any graph
        if on_cpu:
            raise ValueError("the TensorRT backend runs on a CUDA device, not the CPU")
        missing = trb.tensorrt_missing()
        if missing:
            raise RuntimeError(f"TensorRT backend requested but {missing}")
    graphs, folder = exported_graphs(net, model_id, cache_dir, dynamic_batch=encoder_batch > 1)
    passed = ["device cpu asked for"] if on_cpu else []  # why auto passed the others
    if kind in ("auto", "tensorrt") and not on_cpu:
        if trb.tensorrt_available():
            trt_precision = TENSORRT_PRECISION if precision == "auto" else precision
            qdq = (int8_graphs(graphs, folder, net.config, "tensorrt", trb.QDQ_PARTS).encoder
                   if trt_precision == "int8" else None)
            cuda = torch.device(device) if device is not None else None
            try:
                backend: Backend = trb.build_tensorrt_backend(
                    graphs.encoder, graphs.decoder, net.config, folder / "tensorrt",
                    trt_precision, profile=trb.DecoderProfile.for_config(net.config),
                    device=cuda, encoder_qdq_onnx=qdq, encoder_batch=encoder_batch)
                return _chosen(backend, kind, "TensorRT is installed and sees a CUDA GPU")
            except Exception as exc:
                if kind == "tensorrt" or trt_precision == "int8":
                    raise  # no other GPU backend takes int8: its refusal would hide this error
                log.exception("TensorRT backend failed; trying the next backend")
                passed.append(f"TensorRT failed ({_first_line(exc)})")
        else:
            passed.append(f"no TensorRT ({trb.tensorrt_missing()})")
    if kind == "auto" and not on_cpu:
        gpu = _auto_gpu(net, graphs, device, precision, threads, encoder_batch, passed)
        if gpu is not None:
            return gpu
        if device is not None:
            log.warning("device %s asked for, but no backend here runs on it (%s): ONNX Runtime "
                        "runs on the CPU", device, " | ".join(passed))
        device = "cpu"
    backend = _ort(graphs, net.config, device, precision, kind, threads, encoder_batch)
    return _chosen(backend, kind, " | ".join(passed + ["ONNX Runtime on the CPU"]))


def _auto_gpu(net: "SamModel", graphs: ExportedGraphs, device: Optional[Union[str, torch.device]],
              precision: str, threads: Optional[int], encoder_batch: int,
              passed: list[str]) -> Optional[Backend]:
    """kind "auto" after TensorRT: ONNX Runtime CUDA (its session must come up with the CUDA
    provider), else torch on CUDA, else None (``passed`` gets the reasons)."""
    ort_device = device if _device_kind(device) in ("cuda", "tensorrt") else "cuda"
    if precision == "int8" and (_ort_cuda_available() or torch.cuda.is_available()):
        raise ValueError(ORT_CUDA_INT8_REFUSAL)
    if _ort_cuda_available() and precision in ("auto", "fp32"):
        try:
            backend = _ort(graphs, net.config, ort_device, "fp32", "auto", threads,
                           encoder_batch)
            return _chosen(backend, "auto", " | ".join(
                passed + ["onnxruntime has the CUDAExecutionProvider"]))
        except RuntimeError as exc:  # the session came up without CUDA (cuDNN / cuBLAS)
            log.warning("ONNX Runtime CUDA failed; trying the next backend: %s", exc)
            passed.append(f"ONNX Runtime CUDA failed ({_first_line(exc)})")
    elif _ort_cuda_available():
        passed.append(f"ONNX Runtime has no {precision}")
    else:
        passed.append("onnxruntime has no CUDAExecutionProvider (the CPU package)")
    if not torch.cuda.is_available():
        passed.append("torch sees no CUDA GPU")
        return None
    backend = _torch(net, device if _device_kind(device) == "cuda" else None, precision,
                     threads, encoder_batch)
    return _chosen(backend, "auto", " | ".join(passed + ["torch sees a CUDA GPU"]))


def _torch(net: "SamModel", device: Optional[Union[str, torch.device]], precision: str,
           threads: Optional[int], encoder_batch: int) -> Backend:
    dev = torch.device(device) if device is not None else default_device()
    if precision == "auto":
        precision = "fp16" if dev.type == "cuda" else "fp32"
    backend = TorchBackend(net, dev, precision, threads, max_batch=encoder_batch)
    log.info("backend: torch on %s (%s)", backend.device, precision)
    return backend


def _ort(graphs: ExportedGraphs, config: Any,
         device: Optional[Union[str, torch.device]], precision: str, kind: str,
         threads: Optional[int], encoder_batch: int) -> Backend:
    """The ONNX Runtime backend on ``device`` (None = cpu); precision auto = fp32, fp16 only
    under kind "auto" (run as fp32, with a warning), int8 refused (ORT_*_INT8_REFUSAL)."""
    ort_device = device if device is not None else "cpu"
    if precision == "auto":
        precision = "fp32"
    if precision == "fp16":
        if kind != "auto":
            raise ValueError("fp16 is offered by the TensorRT and torch (CUDA) backends, "
                             "not ONNX Runtime")
        log.warning("fp16 needs TensorRT here; ONNX Runtime runs fp32")
        precision = "fp32"
    if precision == "int8":
        raise ValueError(ORT_CPU_INT8_REFUSAL if _device_kind(ort_device) == "cpu"
                         else ORT_CUDA_INT8_REFUSAL)
    backend = OrtBackend(graphs.encoder, graphs.decoder, config, ort_device, threads,
                         precision, max_batch=encoder_batch)
    log.info("backend: ONNX Runtime %s (%s)", backend.providers[0], precision)
    return backend


def _chosen(backend: Backend, kind: str, why: str) -> Backend:
    """``backend`` with the reason kind "auto" chose it, logged (nothing for a named kind)."""
    if kind == "auto":
        backend.chosen_because = why
        log.info("backend auto chose %s: %s", backend.name, why)
    return backend


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
