"""TensorRT backend: build engines from the ONNX graphs (cached), run them on torch CUDA tensors.

Importing this module never needs TensorRT; ``tensorrt_available()`` says whether it can run.
Cache keys, optimization profiles and precision plans are pure functions, tested without a GPU;
the TensorRT calls run in the fast tier against a recording fake of the ``tensorrt`` module and
of CUDA streams (test/engines/fake_tensorrt.py) and are type-checked with mypy against
``tensorrt-stubs`` 10.13. API facts read from the TensorRT 10.13 Python API docs (IBuilderConfig,
IExecutionContext, ITimingCache) and the onnx-tensorrt 8.6-GA / 10.1-GA READMEs and
docs/operators.md; SUPPORTED_TENSORRT says which versions run (docs/tensorrt.md).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import torch

from .base import GRAPH_PARTS, Backend, EncoderResult, encoder_outputs, fit_prompt_points
from .choices import ENGINE_PRECISIONS, TENSORRT_PRECISION
from .trt_graph_rules import peak_test_nodes

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
    """True when a supported TensorRT Python API is installed and a CUDA device is present."""
    return not tensorrt_missing()


def tensorrt_missing() -> str:
    """What keeps TensorRT from running here ("" when nothing does), for error messages."""
    if not _have_tensorrt():
        return "the tensorrt Python package is not installed"
    problem = tensorrt_version_problem(tensorrt_version())
    if problem:
        return problem
    return "" if torch.cuda.is_available() else "torch sees no CUDA GPU"


def tensorrt_version() -> str:
    """Installed TensorRT version, or "" without TensorRT."""
    return str(trt.__version__) if _have_tensorrt() else ""


#: TensorRT versions the node builds and runs with, [first, past-the-end) as (major, minor).
#: 10.x: the builder flags FP16/INT8 (deprecated in 10.12, still there), INT64 tensors, ONNX
#: opsets 9-20 (onnx-tensorrt 10.x docs/operators.md). 11 removed the flags: refused.
SUPPORTED_TENSORRT = ((10, 0), (11, 0))
#: The exported graphs' ONNX opset (onnx_export.DEFAULT_OPSET) against what TensorRT 8.6's
#: parser reads ("TensorRT 8.6 supports operators up to Opset 17", onnx-tensorrt 8.6-GA docs).
TENSORRT8_MAX_OPSET = 17
#: The TensorRT 8 release whose API the backend handles (explicit-batch flag, no INT64 type)
TENSORRT8 = (8, 6)
GRAPH_OPSET = 18


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) of a version string such as "10.13.0.35"; ValueError when unreadable."""
    m = re.match(r"\s*(\d+)\.(\d+)", text)
    if m is None:
        raise ValueError(f"unreadable TensorRT version {text!r}")
    return int(m.group(1)), int(m.group(2))


def tensorrt_version_problem(version: str, graph_opset: int = GRAPH_OPSET) -> str:
    """One line saying why TensorRT ``version`` cannot run this node ("" when it can)."""
    first, end = SUPPORTED_TENSORRT
    try:
        v = parse_version(version)
    except ValueError as exc:
        return str(exc)
    supported = f"supported: TensorRT {first[0]}.{first[1]} to {end[0] - 1}.x"
    if v >= end:
        return (f"TensorRT {version} is not supported: TensorRT 11 removed BuilderFlag.FP16/INT8"
                f" that the engines are built with ({supported}, docs/tensorrt.md)")
    if v >= first:
        return ""
    if v >= TENSORRT8:
        if graph_opset <= TENSORRT8_MAX_OPSET:
            return ""  # the backend handles 8.6's API; its parser is the limit
        return (f"TensorRT {version} is not supported: its ONNX parser reads opset <= "
                f"{TENSORRT8_MAX_OPSET} and the graphs are opset {graph_opset} ({supported}: "
                "JetPack 6.1 or later, docs/tensorrt.md)")
    return f"TensorRT {version} is not supported ({supported}, docs/tensorrt.md)"


def require_supported_tensorrt() -> None:
    """RuntimeError (one line) unless a supported TensorRT is installed: the start-up check."""
    _require_tensorrt()
    problem = tensorrt_version_problem(tensorrt_version())
    if problem:
        raise RuntimeError(problem)


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
#: Most bytes one fp32 per-prompt tensor of the decoder may take at the profile's max prompt
#: batch: the engine reserves its activations for the max shape up front (an 8 GB Orin shares
#: them with everything else). The largest is the upscaled embedding [P, L^2, C/8].
DECODER_TENSOR_BUDGET = 512 << 20


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
        has a static K, which the profile then leaves alone); P up to what its largest
        per-prompt tensor allows (decoder_prompt_limit), the decode() calls chunk the rest."""
        k_max = int(getattr(config, "max_prompt_points", 16))
        if prompts is None:
            p_max = min(DEFAULT_PROMPTS.max, decoder_prompt_limit(config))
            prompts = DimRange(1, min(DEFAULT_PROMPTS.opt, p_max), p_max)
        return cls(prompts, DimRange(1, min(2, k_max), k_max))


def decoder_prompt_limit(config: Any, budget: int = DECODER_TENSOR_BUDGET) -> int:
    """Largest prompt batch P whose upscaled embedding [P, L^2, C/8] fp32 (L = low_res_size)
    fits ``budget`` (a power of two, at least 1): 256 and more for r320 (L 80), 64 for
    1024-px models (L 256: 8 MiB a prompt)."""
    side = int(config.low_res_size)
    per_prompt = side ** 2 * max(int(config.embed_dim) // 8, 1) * 4
    p = max(1, budget // per_prompt)
    return 1 << (p.bit_length() - 1)


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


def cache_precision(precision: str, part: str) -> str:
    """The precision an engine of ``part`` is cached under: an int8 decoder is the fp16 one
    (same plan), so precision int8 reuses it instead of building it again."""
    if precision == "int8" and part not in QDQ_PARTS:
        return "fp16"
    return precision


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


@contextlib.contextmanager
def on_device(device: Optional[torch.device]) -> Iterator[None]:
    """Make ``device`` the current CUDA device for a block (building, deserialising and
    enqueueing happen on the current device, not on the one a tensor names)."""
    if device is None or device.type != "cuda":
        yield
        return
    with torch.cuda.device(device):
        yield


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


def _create_network(builder: "trt.Builder") -> "trt.INetworkDefinition":
    """An explicit-batch network: TensorRT 10 has no other kind (flag 0); on 8.x flag 0 is an
    implicit-batch network, which the ONNX parser rejects, so EXPLICIT_BATCH is set there."""
    flags = 0
    if parse_version(tensorrt_version()) < (10, 0):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return builder.create_network(flags)


def _set_builder_flag(config: "trt.IBuilderConfig", flag: str) -> None:
    """config.set_flag(BuilderFlag.<flag>), with a one-line error where the flag is gone
    (TensorRT 11 removed FP16 / INT8 for strongly typed networks)."""
    value = getattr(trt.BuilderFlag, flag, None)
    if value is None:
        first, end = SUPPORTED_TENSORRT
        raise RuntimeError(f"TensorRT {tensorrt_version()} has no BuilderFlag.{flag} "
                           f"(supported: TensorRT {first[0]}.{first[1]} to {end[0] - 1}.x)")
    config.set_flag(value)


def pin_float(network: "trt.INetworkDefinition", names: Sequence[str]) -> int:
    """Run the layers that ONNX nodes ``names`` became in FP32 (layer precision and output
    types): the AutoPPN peak test compares two tensors for equality, which only holds when both
    are computed in one precision. The ONNX parser names a node's layer after the node, and
    further layers of one node "<node>_<n>" (ImporterContext::registerLayer and
    generateUniqueName, onnx-tensorrt 10.1-GA), so both are matched (at worst a
    same-named neighbour runs FP32 too). Returns how many layers it pinned."""
    if not names:
        return 0
    exact, suffixed = set(names), tuple(f"{n}_" for n in names)
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        name = str(layer.name)
        if name not in exact and not name.startswith(suffixed):
            continue
        layer.precision = trt.DataType.FLOAT
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype in (trt.DataType.FLOAT, trt.DataType.HALF):
                layer.set_output_type(j, trt.DataType.FLOAT)
        pinned += 1
    return pinned


def build_engine(onnx_path: Union[str, Path], engine_path: Union[str, Path],
                 plan: PrecisionPlan, profile: Optional[Profile] = None,
                 workspace_bytes: int = DEFAULT_WORKSPACE,
                 timing_cache_path: Optional[Union[str, Path]] = None,
                 progress: bool = True, device: Optional[torch.device] = None,
                 float_nodes: Sequence[str] = ()) -> Path:
    """Parse an ONNX graph, build a serialized engine with ``plan``'s flags on ``device``,
    write it. ``profile`` ranges its dynamic dims (None: the default DecoderProfile);
    ``float_nodes``: ONNX nodes whose layers stay FP32 (pin_float)."""
    require_supported_tensorrt()
    with on_device(device):
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = _create_network(builder)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
        for flag in plan.flags:
            _set_builder_flag(config, flag)
        if plan.flags and pin_float(network, float_nodes):
            _set_builder_flag(config, "PREFER_PRECISION_CONSTRAINTS")
        inputs = {network.get_input(i).name: _dims(network.get_input(i).shape)
                  for i in range(network.num_inputs)}
        shapes = profile_shapes(inputs, profile or DecoderProfile())
        if shapes:
            opt_profile = builder.create_optimization_profile()
            for name, (lo, opt, hi) in shapes.items():
                opt_profile.set_shape(name, trt.Dims(list(lo)), trt.Dims(list(opt)),
                                      trt.Dims(list(hi)))
            config.add_optimization_profile(opt_profile)
        monitor = _progress_monitor() if progress else None
        if monitor is not None:
            config.progress_monitor = monitor
        log.info("building TensorRT engine from %s (flags %s)", onnx_path, plan.flags or "fp32")
        with timing_cache(config, timing_cache_path):
            serialized: Optional[trt.IHostMemory] = builder.build_serialized_network(
                network, config)
            if serialized is None:
                raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
            _write_atomic(Path(engine_path), memoryview(serialized))
    return Path(engine_path)


def _write_atomic(path: Path, data: Union[bytes, memoryview]) -> None:
    """Write through a temporary file in the same folder and rename: a reader (or a crash)
    never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def timing_cache_file(cache_dir: Union[str, Path], gpu_name: str,
                      compute_capability: Sequence[int]) -> Path:
    """The timing cache of this TensorRT version and GPU: one file per pair, so a JetPack
    upgrade or another GPU never loads a cache it cannot use."""
    ident = json.dumps([tensorrt_version(), gpu_name, list(compute_capability)])
    return Path(cache_dir) / f"timing-{hashlib.sha256(ident.encode()).hexdigest()[:16]}.cache"


@contextlib.contextmanager
def timing_cache(config: "trt.IBuilderConfig",
                 path: Optional[Union[str, Path]]) -> Iterator[None]:
    """Use the timing cache at ``path`` (None: none) for the builds in the block, then save it.

    The file is locked for the whole build (two nodes building at once would overwrite each
    other's entries) and replaced atomically. A cache TensorRT rejects (set_timing_cache returns
    False: another version or device) is set aside: the build goes on with an empty cache that
    replaces the file afterwards. create_timing_cache / get_timing_cache returning None is a
    one-line error before the build or a warning after it (the engine is already written)."""
    if path is None:
        yield
        return
    cache_file = Path(path)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with open(cache_file.with_name(cache_file.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        blob = cache_file.read_bytes() if cache_file.exists() else b""
        # the C++ API returns null on failure; the stubs type these as never None
        cache: Optional[trt.ITimingCache] = config.create_timing_cache(blob)
        if cache is None:
            raise RuntimeError(f"TensorRT could not create a timing cache ({cache_file})")
        if not config.set_timing_cache(cache, False):
            log.warning("TensorRT rejected the timing cache %s (another TensorRT version or "
                        "GPU); building without it and replacing it", cache_file)
            cache = config.create_timing_cache(b"")
            if cache is None or not config.set_timing_cache(cache, False):
                raise RuntimeError(f"TensorRT could not use an empty timing cache ({cache_file})")
        yield
        used: Optional[trt.ITimingCache] = config.get_timing_cache()
        if used is None:
            log.warning("TensorRT returned no timing cache; %s is left as it was", cache_file)
            return
        _write_atomic(cache_file, memoryview(used.serialize()))


def cached_engine(onnx_path: Union[str, Path], cache_dir: Union[str, Path], part: str,
                  precision: str, profile: Optional[Profile] = None,
                  workspace_bytes: int = DEFAULT_WORKSPACE, progress: bool = True,
                  device: Optional[torch.device] = None) -> Path:
    """Engine file for an ONNX graph on this GPU: built once, then reused from cache_dir.
    ``profile``: the decoder's DecoderProfile, or a dynamic-batch encoder's EncoderProfile
    (engine_profile picks which one a part takes). An int8 decoder is the fp16 engine
    (cache_precision)."""
    require_supported_tensorrt()
    precision = cache_precision(precision, part)
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
                        timing_cache_file(cache_dir, gpu, sm), progress, device,
                        peak_test_nodes(onnx_path))


def engine_profile(part: str, profile: Optional[Profile]) -> Optional[Profile]:
    """The profile an engine of ``part`` is built with: the decoder takes a DecoderProfile, the
    encoder an EncoderProfile (dynamic batch); a profile of the other part is ignored (None)."""
    want = DecoderProfile if part == GRAPH_PARTS[1] else EncoderProfile
    return profile if isinstance(profile, want) else None


# -- running ------------------------------------------------------------------------------------
#: set_tensor_address needs this alignment (IExecutionContext.set_tensor_address, TensorRT 10)
ADDRESS_ALIGNMENT = 256


def _torch_dtype(dt: Any) -> torch.dtype:
    # TensorRT 8.6 has no DataType.INT64 (its parser casts INT64 tensors to INT32)
    names = {"FLOAT": torch.float32, "HALF": torch.float16, "INT32": torch.int32,
             "INT64": torch.int64, "INT8": torch.int8, "BOOL": torch.bool}
    table = {getattr(trt.DataType, n): t for n, t in names.items() if hasattr(trt.DataType, n)}
    if dt not in table:
        raise TypeError(f"unsupported TensorRT tensor type {dt}")
    return table[dt]


def aligned(t: torch.Tensor, alignment: int = ADDRESS_ALIGNMENT) -> torch.Tensor:
    """``t`` contiguous at an address that is a multiple of ``alignment`` (a view into a
    batch, e.g. EncoderResult.select, can start anywhere): itself when it already is, else an
    aligned copy."""
    t = t.contiguous()
    if t.data_ptr() % alignment == 0:
        return t
    return aligned_empty(tuple(t.shape), t.dtype, t.device, alignment).copy_(t)


def aligned_empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
                  alignment: int = ADDRESS_ALIGNMENT) -> torch.Tensor:
    """An uninitialised tensor at an aligned address (CUDA's allocator already gives 512)."""
    out = torch.empty(shape, dtype=dtype, device=device)
    if out.data_ptr() % alignment == 0:
        return out
    nbytes = out.numel() * out.element_size()
    raw = torch.empty(nbytes + alignment, dtype=torch.uint8, device=device)
    skip = -raw.data_ptr() % alignment
    return raw[skip:skip + nbytes].view(dtype).view(shape)


class TrtEngineRunner:
    """One deserialized engine; I/O tensor names, modes and types read from the engine. Runs
    are enqueued on a stream of its own (TensorRT synchronises the device around work on the
    legacy default stream), ordered after and before the caller's current stream."""

    def __init__(self, engine_path: Union[str, Path], device: torch.device) -> None:
        require_supported_tensorrt()
        self.device = device
        self._logger = trt.Logger(trt.Logger.WARNING)
        with on_device(device):
            self._runtime = trt.Runtime(self._logger)
            engine: Optional[trt.ICudaEngine] = self._runtime.deserialize_cuda_engine(
                Path(engine_path).read_bytes())
            if engine is None:
                raise RuntimeError(f"could not deserialize TensorRT engine {engine_path} "
                                   "(built by another TensorRT version? delete it to rebuild)")
            self.engine = engine
            context: Optional[trt.IExecutionContext] = engine.create_execution_context()
            if context is None:
                raise RuntimeError(f"TensorRT could not create an execution context for "
                                   f"{engine_path} (out of GPU memory?)")
            self.context = context
            self.stream = torch.cuda.Stream(device=device)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: _torch_dtype(engine.get_tensor_dtype(n)) for n in names}

    def _bind(self, name: str, t: torch.Tensor) -> None:
        if not self.context.set_tensor_address(name, t.data_ptr()):
            raise RuntimeError(f"TensorRT refused the address of {name!r}")

    def __call__(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """Run with inputs in the engine's input order; outputs in its output order."""
        if len(tensors) != len(self.inputs):
            raise ValueError(f"engine takes {len(self.inputs)} inputs, got {len(tensors)}")
        with on_device(self.device):
            keep = []
            for name, t in zip(self.inputs, tensors):
                t = aligned(t.to(device=self.device, dtype=self.dtypes[name]))
                keep.append(t)
                if not self.context.set_input_shape(name, tuple(t.shape)):
                    raise ValueError(f"shape {tuple(t.shape)} is outside the profile of "
                                     f"{name!r}")
                self._bind(name, t)
            outs = []
            for name in self.outputs:
                shape = _dims(self.context.get_tensor_shape(name))
                out = aligned_empty(shape, self.dtypes[name], self.device)
                self._bind(name, out)
                outs.append(out)
            caller = torch.cuda.current_stream(self.device)
            self.stream.wait_stream(caller)  # the inputs are written on the caller's stream
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            caller.wait_stream(self.stream)
        # `keep` and the outputs belong to the caller's stream, which now waits for this run,
        # so the caching allocator cannot hand their memory out before it has finished
        return outs


class TensorRTBackend(Backend):
    """Encoder and decoder engines on one CUDA device. max_batch > 1 needs an encoder engine
    built with encoder_profile(max_batch)."""

    def __init__(self, encoder_engine: Union[str, Path], decoder_engine: Union[str, Path],
                 config: Any, precision: str = TENSORRT_PRECISION,
                 profile: Optional[DecoderProfile] = None,
                 device: Optional[torch.device] = None, max_batch: int = 1,
                 build_seconds: Optional[float] = None) -> None:
        self._device = torch.device(device) if device is not None else torch.device("cuda")
        self.max_batch = int(max_batch)
        self.config = config
        self.precision = precision
        self.profile = profile or DecoderProfile.for_config(config)
        self.name = f"tensorrt:{precision}"
        #: seconds build_tensorrt_backend spent building (or finding) the engines
        self.build_seconds = build_seconds
        self.encoder = TrtEngineRunner(encoder_engine, self._device)
        self.decoder = TrtEngineRunner(decoder_engine, self._device)
        expected = encoder_outputs(config)
        if tuple(self.encoder.outputs) != expected:
            raise RuntimeError(f"encoder engine has outputs {self.encoder.outputs}, expected "
                               f"{expected}")

    @property
    def device(self) -> torch.device:
        return self._device

    def describe(self) -> dict[str, str]:
        """What a bench report needs to be comparable: TensorRT version, device, precision of
        each graph's engine and the engine build time (the bench header prints it)."""
        dev = self._device
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)
        return {"backend": self.name, "device": f"{dev} ({name})", "precision": self.precision,
                "tensorrt": tensorrt_version(),
                "precision_encoder": cache_precision(self.precision, GRAPH_PARTS[0]),
                "precision_decoder": cache_precision(self.precision, GRAPH_PARTS[1]),
                "engine_build_s": ("" if self.build_seconds is None
                                   else f"{self.build_seconds:.1f}")}

    def encode(self, image: torch.Tensor) -> EncoderResult:
        self.check_batch(image)
        outs = self.encoder(image)
        # floats as float32; integers (groups) as int64 whatever the engine holds (TensorRT
        # 8.6's parser turns INT64 tensors into INT32)
        return EncoderResult(**{name: o.float() if o.is_floating_point() else o.long()
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
    encoder_profile(encoder_batch). Refuses an unsupported TensorRT first, in one line."""
    require_supported_tensorrt()
    cuda = torch.device(device) if device is not None else torch.device("cuda")
    profile = profile or DecoderProfile.for_config(config)
    enc_plan = precision_plan(precision, "encoder")
    enc_src = encoder_onnx
    if enc_plan.onnx_variant == "qdq":
        if encoder_qdq_onnx is None:
            raise ValueError("int8 needs the Q/DQ encoder graph (litesam-engines quantize)")
        enc_src = encoder_qdq_onnx
    start = time.perf_counter()
    enc = cached_engine(enc_src, cache_dir, "encoder", precision,
                        encoder_profile(encoder_batch), workspace_bytes, device=cuda)
    dec = cached_engine(decoder_onnx, cache_dir, "decoder", precision, profile,
                        workspace_bytes, device=cuda)
    return TensorRTBackend(enc, dec, config, precision, profile, cuda, encoder_batch,
                           build_seconds=time.perf_counter() - start)
