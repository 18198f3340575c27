"""TensorRT 10 backend: build engines from the ONNX graphs (cached), run them on torch CUDA tensors.

Importing this module never needs TensorRT; ``tensorrt_available()`` says whether it can run.
Cache keys, optimization profiles and precision plans are pure functions, tested without a GPU.
The TensorRT calls are type-checked with mypy against ``tensorrt-stubs``.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import torch

from .base import GRAPH_PARTS, Backend, EncoderResult, encoder_outputs, fit_prompt_points
from .choices import ENGINE_PRECISIONS, TENSORRT_PRECISION

if TYPE_CHECKING:
    import tensorrt as trt
else:
    try:
        import tensorrt as trt
    except ImportError:  # CPU installs: no TensorRT
        trt = None

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = 1 << 30
#: The parts built from a Q/DQ graph at int8 (precision_plan); the decoder stays FP16.
QDQ_PARTS = GRAPH_PARTS[:1]


def _have_tensorrt() -> bool:
    # tensorrt-stubs installs a bare `tensorrt` namespace package: require the real API
    return trt is not None and hasattr(trt, "Builder")


def tensorrt_available() -> bool:
    """True when the TensorRT Python API is installed and a CUDA device is present."""
    return not tensorrt_missing()


def tensorrt_missing() -> str:
    """What keeps TensorRT from running here ("" when nothing does), for error messages."""
    if not _have_tensorrt():
        return "the tensorrt Python package is not installed"
    return "" if torch.cuda.is_available() else "torch sees no CUDA GPU"


def tensorrt_version() -> str:
    """Installed TensorRT version, or "" without TensorRT."""
    return str(trt.__version__) if _have_tensorrt() else ""


# -- pure, GPU-free helpers ---------------------------------------------------------------------
@dataclass(frozen=True)
class DimRange:
    """min / opt / max of one dynamic dimension."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ValueError(f"need 1 <= min <= opt <= max, got {self.min}/{self.opt}/{self.max}")


#: The decoder's prompt batch range unless told otherwise (min, opt, max).
DEFAULT_PROMPTS = DimRange(1, 64, 256)


@dataclass(frozen=True)
class DecoderProfile:
    """Optimization profile of the decoder: prompt batch P and points per prompt K."""

    prompts: DimRange = DEFAULT_PROMPTS
    points: DimRange = DimRange(1, 2, 16)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def axis_range(self, axis: int) -> Optional[DimRange]:
        """The range of a dynamic dim: dim 0 = P, dim 1 = K; None for any other."""
        return {0: self.prompts, 1: self.points}.get(axis)

    @classmethod
    def for_config(cls, config: Any, prompts: Optional[DimRange] = None) -> "DecoderProfile":
        """The profile a model needs: K up to its max_prompt_points (a fixed-K model's graph
        has a static K, which the profile then leaves alone)."""
        k_max = int(getattr(config, "max_prompt_points", 16))
        return cls(prompts or DEFAULT_PROMPTS, DimRange(1, min(2, k_max), k_max))


@dataclass(frozen=True)
class EncoderProfile:
    """Optimization profile of a dynamic-batch encoder: images per run B (dim 0)."""

    batch: DimRange

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def axis_range(self, axis: int) -> Optional[DimRange]:
        """The range of a dynamic dim: dim 0 = B; None for any other."""
        return self.batch if axis == 0 else None


#: Either graph's profile.
Profile = Union[DecoderProfile, EncoderProfile]


def encoder_profile(max_batch: int) -> Optional[EncoderProfile]:
    """The encoder engine's profile for batches of up to ``max_batch`` images: min 1, opt and
    max ``max_batch`` (a multi-camera node fills the batch whenever every camera has a frame
    waiting); None for 1: the static batch-1 graph needs no profile (and keeps its cache key)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    return EncoderProfile(DimRange(1, max_batch, max_batch)) if max_batch > 1 else None


def profile_shapes(input_shapes: dict[str, tuple[int, ...]], profile: Profile
                   ) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) shapes of each dynamic input (dims < 0) of a parsed network.

    The profile gives each dynamic dim's range (decoder: dim 0 the prompt batch P, dim 1 the
    points per prompt K; encoder: dim 0 the image batch B); a dynamic dim it has no range for
    is an export error. Static inputs are left out.
    """
    out = {}
    for name, shape in input_shapes.items():
        if all(d >= 0 for d in shape):
            continue
        lo, opt, hi = [], [], []
        for axis, d in enumerate(shape):
            r = DimRange(d, d, d) if d >= 0 else profile.axis_range(axis)
            if r is None:
                raise ValueError(f"input {name!r} has an unexpected dynamic axis {axis}: {shape}")
            lo.append(r.min)
            opt.append(r.opt)
            hi.append(r.max)
        out[name] = (tuple(lo), tuple(opt), tuple(hi))
    return out


@dataclass(frozen=True)
class PrecisionPlan:
    """How one graph is built: builder flags and which ONNX variant to parse."""

    flags: tuple[str, ...]
    onnx_variant: str  # "fp32" or "qdq" (explicitly quantized: Q/DQ nodes)


def precision_plan(precision: str, part: str) -> PrecisionPlan:
    """Builder flags for ``part`` ("encoder" / "decoder") at ``precision``.

    fp16: both graphs FP16 (LayerNorm is the LayerNormalization op, so TensorRT keeps its
    reductions accurate). int8: the encoder from its Q/DQ graph (explicit quantization; FP16
    allowed for the rest), the decoder FP16 — its attention and IoU head are the
    quantization-sensitive part and cost little. fp32: no flags.
    """
    if precision not in ENGINE_PRECISIONS:
        raise ValueError(f"precision must be one of {ENGINE_PRECISIONS}, got {precision!r}")
    if part not in GRAPH_PARTS:
        raise ValueError(f"part must be one of {GRAPH_PARTS}, got {part!r}")
    if precision == "fp32":
        return PrecisionPlan((), "fp32")
    if precision == "int8" and part in QDQ_PARTS:
        return PrecisionPlan(("FP16", "INT8"), "qdq")
    return PrecisionPlan(("FP16",), "fp32")


def sha256_file(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def engine_cache_key(onnx_sha256: str, trt_version: str, gpu_name: str,
                     compute_capability: Sequence[int], precision: str,
                     profile: Optional[Profile], flags: Sequence[str] = (),
                     workspace_bytes: int = DEFAULT_WORKSPACE) -> str:
    """Engine cache key: any change of graph, TensorRT, GPU, precision or profile (a decoder's
    DecoderProfile or a dynamic-batch encoder's EncoderProfile) rebuilds."""
    payload = {
        "onnx": onnx_sha256, "tensorrt": trt_version, "gpu": gpu_name,
        "sm": list(compute_capability), "precision": precision, "flags": sorted(flags),
        "profile": profile.to_dict() if profile is not None else None,
        "workspace": int(workspace_bytes),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def gpu_identity(device: Optional[torch.device] = None) -> tuple[str, tuple[int, int]]:
    """(GPU name, compute capability) of a CUDA device."""
    dev = device if device is not None else torch.device("cuda")
    major, minor = torch.cuda.get_device_capability(dev)
    return torch.cuda.get_device_name(dev), (int(major), int(minor))


# -- building -----------------------------------------------------------------------------------
def _require_tensorrt() -> None:
    if not _have_tensorrt():
        raise RuntimeError("TensorRT is not installed (pip install tensorrt, or use JetPack's)")


def _progress_monitor() -> Any:
    """A trt.IProgressMonitor showing build phases as tqdm bars (None where unavailable)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None
    from tqdm import tqdm

    class TqdmProgressMonitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._bars: dict[str, Any] = {}

        def phase_start(self, phase_name: str, parent_phase: str, num_steps: int) -> None:
            depth = 1 + (parent_phase in self._bars) if parent_phase else 0
            self._bars[phase_name] = tqdm(total=num_steps, desc=phase_name, position=depth,
                                          leave=depth == 0)

        def step_complete(self, phase_name: str, step: int) -> bool:
            bar = self._bars.get(phase_name)
            if bar is not None:
                bar.update(step + 1 - bar.n)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            bar = self._bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return TqdmProgressMonitor()


def _dims(d: Any) -> tuple[int, ...]:
    return tuple(int(d[i]) for i in range(len(d)))


def build_engine(onnx_path: Union[str, Path], engine_path: Union[str, Path],
                 plan: PrecisionPlan, profile: Optional[Profile] = None,
                 workspace_bytes: int = DEFAULT_WORKSPACE,
                 timing_cache_path: Optional[Union[str, Path]] = None,
                 progress: bool = True) -> Path:
    """Parse an ONNX graph, build a serialized engine with ``plan``'s flags, write it.
    ``profile`` ranges its dynamic dims (None: the default DecoderProfile)."""
    _require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: always explicit batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    inputs = {network.get_input(i).name: _dims(network.get_input(i).shape)
              for i in range(network.num_inputs)}
    shapes = profile_shapes(inputs, profile or DecoderProfile())
    if shapes:
        opt_profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            opt_profile.set_shape(name, trt.Dims(list(lo)), trt.Dims(list(opt)),
                                  trt.Dims(list(hi)))
        config.add_optimization_profile(opt_profile)
    cache_file = Path(timing_cache_path) if timing_cache_path else None
    blob = cache_file.read_bytes() if cache_file and cache_file.exists() else b""
    timing_cache = config.create_timing_cache(blob)
    config.set_timing_cache(timing_cache, False)
    monitor = _progress_monitor() if progress else None
    if monitor is not None:
        config.progress_monitor = monitor
    log.info("building TensorRT engine from %s (flags %s)", onnx_path, plan.flags or "fp32")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    out = Path(engine_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(memoryview(serialized))
    tmp.replace(out)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_bytes(memoryview(config.get_timing_cache().serialize()))
    return out


def cached_engine(onnx_path: Union[str, Path], cache_dir: Union[str, Path], part: str,
                  precision: str, profile: Optional[Profile] = None,
                  workspace_bytes: int = DEFAULT_WORKSPACE, progress: bool = True,
                  device: Optional[torch.device] = None) -> Path:
    """Engine file for an ONNX graph on this GPU: built once, then reused from cache_dir.
    ``profile``: the decoder's DecoderProfile, or a dynamic-batch encoder's EncoderProfile
    (engine_profile picks which one a part takes)."""
    _require_tensorrt()
    plan = precision_plan(precision, part)
    gpu, sm = gpu_identity(device)
    used = engine_profile(part, profile)
    key = engine_cache_key(sha256_file(onnx_path), tensorrt_version(), gpu, sm, precision,
                           used, plan.flags, workspace_bytes)
    path = Path(cache_dir) / f"{part}-{precision}-{key}.engine"
    if path.exists():
        log.info("reusing TensorRT engine %s", path)
        return path
    return build_engine(onnx_path, path, plan, used, workspace_bytes,
                        Path(cache_dir) / "timing.cache", progress)


def engine_profile(part: str, profile: Optional[Profile]) -> Optional[Profile]:
    """The profile an engine of ``part`` is built with: the decoder takes a DecoderProfile, the
    encoder an EncoderProfile (dynamic batch); a profile of the other part is ignored (None)."""
    want = DecoderProfile if part == GRAPH_PARTS[1] else EncoderProfile
    return profile if isinstance(profile, want) else None


# -- running ------------------------------------------------------------------------------------
def _torch_dtype(dt: Any) -> torch.dtype:
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
             trt.DataType.INT32: torch.int32, trt.DataType.INT64: torch.int64,
             trt.DataType.INT8: torch.int8, trt.DataType.BOOL: torch.bool}
    if dt not in table:
        raise TypeError(f"unsupported TensorRT tensor type {dt}")
    return table[dt]


class TrtEngineRunner:
    """One deserialized engine; I/O tensor names, modes and types read from the engine."""

    def __init__(self, engine_path: Union[str, Path], device: torch.device) -> None:
        _require_tensorrt()
        self.device = device
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if engine is None:
            raise RuntimeError(f"could not deserialize TensorRT engine {engine_path}")
        self.engine = engine
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: _torch_dtype(engine.get_tensor_dtype(n)) for n in names}

    def __call__(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """Run with inputs in the engine's input order; outputs in its output order."""
        if len(tensors) != len(self.inputs):
            raise ValueError(f"engine takes {len(self.inputs)} inputs, got {len(tensors)}")
        keep = []
        for name, t in zip(self.inputs, tensors):
            t = t.to(device=self.device, dtype=self.dtypes[name]).contiguous()
            keep.append(t)
            if not self.context.set_input_shape(name, tuple(t.shape)):
                raise ValueError(f"shape {tuple(t.shape)} is outside the profile of {name!r}")
            self.context.set_tensor_address(name, t.data_ptr())
        outs = []
        for name in self.outputs:
            shape = _dims(self.context.get_tensor_shape(name))
            out = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        # inputs in `keep` are freed after this; the caching allocator orders reuse on `stream`
        return outs


class TensorRTBackend(Backend):
    """Encoder and decoder engines on one CUDA device. max_batch > 1 needs an encoder engine
    built with encoder_profile(max_batch)."""

    def __init__(self, encoder_engine: Union[str, Path], decoder_engine: Union[str, Path],
                 config: Any, precision: str = TENSORRT_PRECISION,
                 profile: Optional[DecoderProfile] = None,
                 device: Optional[torch.device] = None, max_batch: int = 1) -> None:
        self._device = torch.device(device) if device is not None else torch.device("cuda")
        self.max_batch = int(max_batch)
        self.config = config
        self.precision = precision
        self.profile = profile or DecoderProfile.for_config(config)
        self.name = f"tensorrt:{precision}"
        self.encoder = TrtEngineRunner(encoder_engine, self._device)
        self.decoder = TrtEngineRunner(decoder_engine, self._device)
        expected = encoder_outputs(config)
        if tuple(self.encoder.outputs) != expected:
            raise RuntimeError(f"encoder engine has outputs {self.encoder.outputs}, expected "
                               f"{expected}")

    @property
    def device(self) -> torch.device:
        return self._device

    def encode(self, image: torch.Tensor) -> EncoderResult:
        self.check_batch(image)
        outs = self.encoder(image)
        return EncoderResult(**{name: o.float() if o.is_floating_point() else o
                                for name, o in zip(self.encoder.outputs, outs)})

    def decode(self, embeddings: torch.Tensor, point_coords: torch.Tensor,
               point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        point_coords, point_labels = fit_prompt_points(self.config, point_coords, point_labels)
        k = point_coords.shape[1]
        if not self.profile.points.min <= k <= self.profile.points.max:
            raise ValueError(f"{k} points per prompt is outside the engine profile "
                             f"{self.profile.points}")
        logits, ious = [], []
        for c, lab in zip(point_coords.split(self.profile.prompts.max),
                          point_labels.split(self.profile.prompts.max)):
            lo, io = self.decoder(embeddings, c, lab)
            logits.append(lo.float())
            ious.append(io.float())
        return torch.cat(logits), torch.cat(ious)


def build_tensorrt_backend(encoder_onnx: Union[str, Path], decoder_onnx: Union[str, Path],
                           config: Any, cache_dir: Union[str, Path],
                           precision: str = TENSORRT_PRECISION,
                           profile: Optional[DecoderProfile] = None,
                           workspace_bytes: int = DEFAULT_WORKSPACE,
                           device: Optional[torch.device] = None,
                           encoder_qdq_onnx: Optional[Union[str, Path]] = None,
                           encoder_batch: int = 1) -> TensorRTBackend:
    """Build (or reuse) both engines and open them. int8 needs ``encoder_qdq_onnx``.
    encoder_batch > 1 needs the dynamic-batch encoder graph(s): the encoder engine is built with
    encoder_profile(encoder_batch)."""
    profile = profile or DecoderProfile.for_config(config)
    enc_plan = precision_plan(precision, "encoder")
    enc_src = encoder_onnx
    if enc_plan.onnx_variant == "qdq":
        if encoder_qdq_onnx is None:
            raise ValueError("int8 needs the Q/DQ encoder graph (litesam-engines quantize)")
        enc_src = encoder_qdq_onnx
    enc = cached_engine(enc_src, cache_dir, "encoder", precision,
                        encoder_profile(encoder_batch), workspace_bytes, device=device)
    dec = cached_engine(decoder_onnx, cache_dir, "decoder", precision, profile,
                        workspace_bytes, device=device)
    return TensorRTBackend(enc, dec, config, precision, profile, device, encoder_batch)
