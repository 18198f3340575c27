"""create_backend: pick and build a backend; ONNX graphs are exported once into a cache folder."""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import torch
from torch import nn

from .base import Backend
from .onnx_export import ExportedGraphs, export_model

if TYPE_CHECKING:
    from ..model import LiteSam

log = logging.getLogger(__name__)

KINDS = ("auto", "torch", "onnxruntime", "tensorrt")
#: "auto" = fp16 where the backend offers it (TensorRT, torch on CUDA), else fp32: one node
#: configuration then serves a Jetson and a CPU-only machine.
PRECISIONS = ("auto", "fp32", "fp16", "int8")
REGISTRY_SEED = 0


def default_cache_dir() -> Path:
    """$LITESAM_CACHE_DIR, else ~/.cache/litesam_ros."""
    env = os.environ.get("LITESAM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "litesam_ros"


def weights_sha256(model: "LiteSam") -> str:
    """Hash of a module's state_dict (names, shapes, dtypes and values)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{list(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def resolve_model(model: Union[str, "os.PathLike[str]", "LiteSam"]) -> tuple["LiteSam", str]:
    """(LiteSam in eval mode, cache id) from a registry name, a checkpoint path or a module.

    A registry name without a checkpoint gives random weights seeded with REGISTRY_SEED, so
    every backend built from the same name holds the same weights.
    """
    from ..model import build_model, get_config, load_checkpoint
    from ..model.checkpoint import CHECKPOINT_SUFFIXES
    from ..model.registry import UnknownModelError

    if isinstance(model, nn.Module):
        return model.eval(), f"{model.config.name}-{weights_sha256(model)[:16]}"
    path = Path(os.fspath(model))
    if path.suffix in CHECKPOINT_SUFFIXES or path.exists():
        m, _ = load_checkpoint(path)
        h = hashlib.sha256(path.read_bytes()).hexdigest()
        return m.eval(), f"{m.config.name}-ckpt-{h[:16]}"
    try:
        get_config(str(model))
    except UnknownModelError as exc:
        raise ValueError(f"{model!r} is neither a checkpoint file nor a model name: {exc}") \
            from None
    log.warning("model %r: no checkpoint given, using random weights (seed %d)", model,
                REGISTRY_SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(REGISTRY_SEED)
        m = build_model(str(model))
    return m.eval(), f"{m.config.name}-seed{REGISTRY_SEED}-{weights_sha256(m)[:16]}"


def exported_graphs(model: "LiteSam", model_id: str,
                    cache_dir: Optional[Union[str, Path]] = None) -> tuple[ExportedGraphs, Path]:
    """ONNX graphs of ``model`` in cache_dir/model_id, exported on first use."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / model_id
    graphs = ExportedGraphs(folder / "encoder.onnx", folder / "decoder.onnx")
    if graphs.encoder.exists() and graphs.decoder.exists():
        log.info("reusing ONNX graphs in %s", folder)
        return graphs, folder
    log.info("exporting ONNX graphs to %s", folder)
    return export_model(model, folder), folder


def int8_graphs(graphs: ExportedGraphs, folder: Path, config: Any, target: str,
                parts: tuple[str, ...] = ("encoder", "decoder")) -> ExportedGraphs:
    """INT8 (QDQ) versions of the graphs, quantized on first use; parts not listed stay FP32."""
    from .quantize import quantize_model

    paths = {p: folder / f"{p}.int8-{target}.onnx" for p in parts}
    missing = tuple(p for p, path in paths.items() if not path.exists())
    if missing:
        log.info("quantizing %s to INT8 (%s)", ", ".join(missing), target)
        quantize_model(graphs.encoder, graphs.decoder, folder, config, target, parts=missing)
    return ExportedGraphs(paths.get("encoder", graphs.encoder),
                          paths.get("decoder", graphs.decoder))


def _ort_cuda_available() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def create_backend(kind: str = "auto",
                   model: Union[str, "os.PathLike[str]", "LiteSam"] = "lite_sam_r640",
                   precision: str = "fp32", cache_dir: Optional[Union[str, Path]] = None,
                   device: Optional[Union[str, torch.device]] = None,
                   threads: Optional[int] = None) -> Backend:
    """A backend for ``model`` (registry name, checkpoint path or LiteSam module).

    kind "auto" tries TensorRT (installed and a CUDA GPU), then ONNX Runtime CUDA, then
    ONNX Runtime CPU, and logs the choice. precision: auto (fp16 on TensorRT and on torch with
    CUDA, else fp32) | fp32 | fp16 (TensorRT, torch CUDA; kind "auto" degrades it to fp32 on
    ONNX Runtime with a warning) | int8 (ONNX Runtime: QDQ encoder graph, FP32 decoder;
    TensorRT: explicit Q/DQ encoder, FP16 decoder). threads: intra-op threads of ONNX Runtime
    or torch (None = their default).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    net, model_id = resolve_model(model)
    if kind == "torch":
        from .torch_backend import TorchBackend, default_device

        dev = torch.device(device) if device is not None else default_device()
        if precision == "auto":
            precision = "fp16" if dev.type == "cuda" else "fp32"
        log.info("backend: torch on %s (%s)", dev, precision)
        return TorchBackend(net, dev, precision, threads)
    graphs, folder = exported_graphs(net, model_id, cache_dir)
    if kind in ("auto", "tensorrt"):
        from . import tensorrt_backend as trb

        if trb.tensorrt_available():
            trt_precision = "fp16" if precision == "auto" else precision
            qdq = (int8_graphs(graphs, folder, net.config, "tensorrt", ("encoder",)).encoder
                   if trt_precision == "int8" else None)
            cuda = torch.device(device) if device is not None else None
            try:
                backend: Backend = trb.build_tensorrt_backend(
                    graphs.encoder, graphs.decoder, net.config, folder / "tensorrt",
                    trt_precision, device=cuda, encoder_qdq_onnx=qdq)
                log.info("backend: TensorRT (%s)", trt_precision)
                return backend
            except Exception:
                if kind == "tensorrt":
                    raise
                log.exception("TensorRT backend failed; falling back to ONNX Runtime")
        elif kind == "tensorrt":
            raise RuntimeError("TensorRT backend requested but TensorRT or a CUDA GPU is missing")
    from .ort_backend import OrtBackend

    ort_device = str(device) if device is not None else None
    if ort_device is None:
        ort_device = "cuda" if kind == "auto" and _ort_cuda_available() else "cpu"
    if precision == "auto":
        precision = "fp32"
    if precision == "fp16":
        if kind != "auto":
            raise ValueError("fp16 is offered by the TensorRT and torch (CUDA) backends, "
                             "not ONNX Runtime")
        log.warning("fp16 needs TensorRT here; ONNX Runtime runs fp32")
        precision = "fp32"
    if precision == "int8":  # encoder INT8; the decoder stays FP32 (see quantize.CPU_PARTS)
        from .quantize import CPU_PARTS

        graphs = int8_graphs(graphs, folder, net.config, "cpu", CPU_PARTS)
    backend = OrtBackend(graphs.encoder, graphs.decoder, net.config, ort_device, threads,
                         precision)
    log.info("backend: ONNX Runtime %s (%s)", backend.providers[0], precision)
    return backend
