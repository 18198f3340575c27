"""A recording fake of the `tensorrt` module (8.6-, 10- and 11-shaped) and of torch's CUDA
streams and device guard, so the TensorRT backend runs end to end without TensorRT or a GPU.

Shaped after the TensorRT 10.13 Python API (tensorrt-stubs): the parser reads the real ONNX
graph (inputs, outputs, one layer per node), the "engine" is the network's I/O written as JSON,
the context checks shapes against the profile and records addresses and the stream handle.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import types
from enum import Enum, IntEnum
from typing import Any, Optional

import onnx
import torch

ONNX_TYPES = {onnx.TensorProto.FLOAT: "FLOAT", onnx.TensorProto.FLOAT16: "HALF",
              onnx.TensorProto.INT32: "INT32", onnx.TensorProto.INT64: "INT64",
              onnx.TensorProto.INT8: "INT8", onnx.TensorProto.BOOL: "BOOL"}


class Recorder:
    """What the backend asked of the fake, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.devices: list[torch.device] = []
        self.addresses: dict[str, int] = {}
        self.streams: list[int] = []
        self.waits: list[tuple[int, int]] = []

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def make_tensorrt(version: str = "10.13.0.35", rec: Optional[Recorder] = None,
                  context_none: bool = False, timing_cache_none: bool = False,
                  device_tag: str = "orin", parse_error: str = "") -> types.ModuleType:
    """A fake `tensorrt` module of ``version``: 8.x has no DataType.INT64 and casts INT64
    tensors to INT32, 11.x has no BuilderFlag.FP16 / INT8."""
    rec = rec if rec is not None else Recorder()
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version  # type: ignore[attr-defined]
    trt.recorder = rec  # type: ignore[attr-defined]
    dtypes = ["FLOAT", "HALF", "INT32", "INT8", "BOOL"] + (["INT64"] if major >= 10 else [])
    DataType = Enum("DataType", dtypes)  # type: ignore[misc]
    flags = ["FP32_PLACEHOLDER", "PREFER_PRECISION_CONSTRAINTS", "OBEY_PRECISION_CONSTRAINTS"]
    if major < 11:
        flags += ["FP16", "INT8"]
    BuilderFlag = Enum("BuilderFlag", flags)  # type: ignore[misc]
    NetFlag = IntEnum("NetworkDefinitionCreationFlag", ["EXPLICIT_BATCH", "STRONGLY_TYPED"],
                      start=0)  # type: ignore[misc]
    trt.DataType = DataType  # type: ignore[attr-defined]
    trt.BuilderFlag = BuilderFlag  # type: ignore[attr-defined]
    trt.NetworkDefinitionCreationFlag = NetFlag  # type: ignore[attr-defined]
    trt.TensorIOMode = Enum("TensorIOMode", ["INPUT", "OUTPUT"])  # type: ignore[attr-defined]
    trt.MemoryPoolType = Enum("MemoryPoolType", ["WORKSPACE"])  # type: ignore[attr-defined]

    def dtype_of(onnx_type: int) -> Any:
        name = ONNX_TYPES[onnx_type]
        return DataType[name if name in DataType.__members__ else "INT32"]

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            self.severity = severity

    class Tensor:
        def __init__(self, name: str, shape: tuple[int, ...], dtype: Any) -> None:
            self.name, self.shape, self.dtype = name, shape, dtype

    class Layer:
        def __init__(self, name: str, outputs: list[Tensor]) -> None:
            self.name = name
            self.precision = DataType.FLOAT
            self._outputs = outputs
            self.output_types: dict[int, Any] = {}
            self.num_outputs = len(outputs)

        def get_output(self, j: int) -> Tensor:
            return self._outputs[j]

        def set_output_type(self, j: int, dtype: Any) -> None:
            self.output_types[j] = dtype

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.explicit_batch = major >= 10 or bool(flags & 1 << NetFlag.EXPLICIT_BATCH.value)
            self.inputs: list[Tensor] = []
            self.outputs: list[Tensor] = []
            self.layers: list[Layer] = []

        num_inputs = property(lambda self: len(self.inputs))
        num_layers = property(lambda self: len(self.layers))

        def get_input(self, i: int) -> Tensor:
            return self.inputs[i]

        def get_layer(self, i: int) -> Layer:
            return self.layers[i]

    def tensor_of(v: onnx.ValueInfoProto) -> Tensor:
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1
                      for d in v.type.tensor_type.shape.dim)
        return Tensor(v.name, shape, dtype_of(v.type.tensor_type.elem_type))

    class OnnxParser:
        def __init__(self, network: Network, logger: Logger) -> None:
            self.network = network
            self.errors: list[str] = []

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, i: int) -> str:
            return self.errors[i]

        def parse_from_file(self, path: str) -> bool:
            rec.calls.append(("parse", path))
            if not self.network.explicit_batch:
                self.errors.append("network must have explicit batch dimensions")
            if parse_error:
                self.errors.append(parse_error)
            if self.errors:
                return False
            graph = onnx.load(path, load_external_data=False).graph
            inits = {i.name for i in graph.initializer}
            self.network.inputs = [tensor_of(v) for v in graph.input if v.name not in inits]
            self.network.outputs = [tensor_of(v) for v in graph.output]
            self.network.layers = [Layer(n.name, [Tensor(o, (), DataType.FLOAT)
                                                  for o in n.output]) for n in graph.node]
            return True

    class TimingCache:
        def __init__(self, blob: bytes) -> None:
            self.blob = blob

        def serialize(self) -> bytes:
            return f"cache:{device_tag}".encode()

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[Any, Any, Any]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class Config:
        def __init__(self) -> None:
            self.flags: list[Any] = []
            self.profiles: list[Profile] = []
            self.cache: Optional[TimingCache] = None
            self.progress_monitor = None

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            rec.calls.append(("workspace", size))

        def set_flag(self, flag: Any) -> None:
            self.flags.append(flag)

        def add_optimization_profile(self, p: Profile) -> int:
            self.profiles.append(p)
            return len(self.profiles) - 1

        def create_timing_cache(self, blob: bytes) -> Optional[TimingCache]:
            rec.calls.append(("create_timing_cache", bytes(blob)))
            return None if timing_cache_none else TimingCache(bytes(blob))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            ok = cache.blob in (b"", f"cache:{device_tag}".encode())
            rec.calls.append(("set_timing_cache", cache.blob, ignore_mismatch, ok))
            if ok:
                self.cache = cache
            return ok

        def get_timing_cache(self) -> Optional[TimingCache]:
            return self.cache

    class Builder:
        def __init__(self, logger: Logger) -> None:
            rec.calls.append(("builder",))

        def create_network(self, flags: int) -> Network:
            rec.calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            rec.calls.append(("build", [f.name for f in config.flags],
                              [p.shapes for p in config.profiles],
                              {lay.name: lay.precision.name for lay in network.layers
                               if lay.precision != DataType.FLOAT or lay.output_types}))
            pinned = [lay.name for lay in network.layers if lay.output_types]
            io = [(t.name, "INPUT", t.dtype.name, t.shape) for t in network.inputs]
            io += [(t.name, "OUTPUT", t.dtype.name, t.shape) for t in network.outputs]
            profiles = [p.shapes for p in config.profiles]
            return json.dumps({"io": io, "profiles": profiles, "pinned": pinned}).encode()

    class Context:
        def __init__(self, engine: "Engine") -> None:
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {}

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            want = self.engine.shapes[name]
            rng = self.engine.profile.get(name)
            if rng is not None:
                ok = all(lo <= d <= hi for d, lo, hi in zip(shape, rng[0], rng[2]))
            else:
                ok = tuple(shape) == tuple(want)
            self.shapes[name] = tuple(shape)
            return ok and len(shape) == len(want)

        def set_tensor_address(self, name: str, address: int) -> bool:
            rec.addresses[name] = address
            return address % 256 == 0

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            batch = next(iter(self.shapes.values()))[0] if self.shapes else 1
            if len(self.shapes) > 1:  # decoder: P of the prompts
                batch = self.shapes[self.engine.inputs[1]][0]
            return tuple(batch if d < 0 else d for d in self.engine.shapes[name])

        def execute_async_v3(self, stream_handle: int) -> bool:
            rec.calls.append(("execute", stream_handle, dict(rec.addresses)))
            return True

    class Engine:
        def __init__(self, blob: dict[str, Any]) -> None:
            self.io = blob["io"]
            self.shapes = {n: tuple(s) for n, _, _, s in self.io}
            self.inputs = [n for n, mode, _, _ in self.io if mode == "INPUT"]
            self.profile = {k: v for p in blob["profiles"] for k, v in p.items()}
            self.pinned = blob["pinned"]

        num_io_tensors = property(lambda self: len(self.io))

        def get_tensor_name(self, i: int) -> str:
            return self.io[i][0]

        def get_tensor_mode(self, name: str) -> Any:
            return trt.TensorIOMode[next(m for n, m, _, _ in self.io if n == name)]

        def get_tensor_dtype(self, name: str) -> Any:
            return DataType[next(t for n, _, t, _ in self.io if n == name)]

        def create_execution_context(self) -> Optional[Context]:
            rec.calls.append(("create_execution_context",))
            return None if context_none else Context(self)

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, blob: bytes) -> Optional[Engine]:
            rec.calls.append(("deserialize",))
            return Engine(json.loads(bytes(blob)))

    def Dims(values: list[int]) -> tuple[int, ...]:
        return tuple(values)

    for name, obj in (("Logger", Logger), ("Builder", Builder), ("OnnxParser", OnnxParser),
                      ("Runtime", Runtime), ("Dims", Dims)):
        setattr(trt, name, obj)
    return trt


class FakeStream:
    """torch.cuda.Stream stand-in: a non-zero handle per stream; 0 is the legacy default."""

    _handles = itertools.count(0x1000, 0x10)

    def __init__(self, device: Any = None, rec: Optional[Recorder] = None,
                 handle: Optional[int] = None) -> None:
        self.device = device
        self.rec = rec
        self.cuda_stream = next(self._handles) if handle is None else handle
        if rec is not None:
            rec.streams.append(self.cuda_stream)

    def wait_stream(self, other: "FakeStream") -> None:
        if self.rec is not None:
            self.rec.waits.append((self.cuda_stream, other.cuda_stream))


def patch_cuda(monkeypatch: Any, rec: Recorder) -> None:
    """torch.cuda as if one GPU were there: device guard, streams, name and capability."""
    @contextlib.contextmanager
    def device(dev: Any) -> Any:
        rec.devices.append(torch.device(dev))
        yield

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device", device)
    monkeypatch.setattr(torch.cuda, "Stream",
                        lambda device=None: FakeStream(device, rec))
    monkeypatch.setattr(torch.cuda, "current_stream",
                        lambda device=None: FakeStream(device, rec, handle=0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Orin (fake)")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 7))
