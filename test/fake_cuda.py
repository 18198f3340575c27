"""A CPU stand-in for a CUDA device, for the GPU paths' checks on a machine without one.

``FakeCuda`` (a TorchDispatchMode) runs every op for real on the CPU, but a tensor made on or
moved to ``cuda`` comes back as a ``CudaTensor``: real CPU data that reports ``device cuda:0``
(``is_cuda`` True), so the code under test takes its CUDA branches. Like the real device, an
op that meets a CUDA tensor and a CPU tensor of one or more dimensions raises ("Expected all
tensors to be on the same device"; 0-dim CPU tensors may meet CUDA ones, as PyTorch allows),
and each host sync a CUDA tensor would cost is counted in ``syncs``: a scalar read (``.item()``,
``bool()``, ``int()``: ``aten._local_scalar_dense``), a copy to the CPU, and the ops whose
output size depends on the data (``nonzero``, boolean indexing, ``masked_select``, ...).

Inside the mode ``torch.cuda.is_available()`` is True and ``torch.cuda.current_device()`` 0;
``torch.device("cuda")`` without an index cannot be resolved on a CPU build ("PyTorch is not
linked with support for cuda devices"), so code must name the index (as it should on a
multi-GPU machine anyway). Backward passes run inside the mode too (the autograd engine gives
a CUDA device its own thread: ``device_threads`` keeps them on the calling one).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

CUDA = torch.device("cuda", 0)
_CPU = torch.device("cpu")
aten = torch.ops.aten

#: Ops whose output size depends on the values: on CUDA they wait for the device.
_DATA_DEPENDENT = ("nonzero", "masked_select", "_unique2", "unique_dim", "unique_consecutive",
                   "repeat_interleave", "nonzero_static", "argwhere")
#: Ops that read values back to the host.
_SCALAR_READS = ("_local_scalar_dense", "is_nonzero", "equal", "allclose")


class CudaTensor(torch.Tensor):
    """Real CPU data (``elem``) that says it lives on cuda:0; only usable inside FakeCuda."""

    elem: torch.Tensor

    @staticmethod
    def __new__(cls, elem: torch.Tensor) -> "CudaTensor":
        r = torch.Tensor._make_wrapper_subclass(  # type: ignore[attr-defined]
            cls, elem.size(), strides=elem.stride(), storage_offset=elem.storage_offset(),
            dtype=elem.dtype, layout=elem.layout, device=CUDA,
            requires_grad=elem.requires_grad)
        r.elem = elem
        return r

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        """torch.nonzero, whose Python binding takes a CUDA device guard, as the op it is;
        everything else straight to dispatch (FakeCuda)."""
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunctionSubclass():
            if getattr(func, "__name__", "") == "nonzero":
                return _nonzero(args[0], **kwargs)
            return func(*args, **kwargs)

    # Methods whose Python binding takes a CUDA device guard, as the ops they are (methods
    # are found on the class even where torch functions of subclasses are disabled).
    def contiguous(self, memory_format: torch.memory_format = torch.contiguous_format
                   ) -> torch.Tensor:  # type: ignore[override]
        if self.is_contiguous(memory_format=memory_format):
            return self
        return aten.clone.default(self, memory_format=memory_format)  # type: ignore[no-any-return]

    def nonzero(self, *, as_tuple: bool = False) -> Any:  # type: ignore[override]
        return _nonzero(self, as_tuple=as_tuple)

    def __invert__(self) -> torch.Tensor:  # type: ignore[override]
        return aten.bitwise_not.default(self)  # type: ignore[no-any-return]

    def new_tensor(self, data: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        kwargs.pop("device", None)
        return _host_tensor(torch.tensor)(data, **kwargs).to(self.device)

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        raise RuntimeError(f"a fake CUDA tensor met {func} outside FakeCuda")

    def __repr__(self) -> str:  # type: ignore[override]
        return f"CudaTensor({self.elem!r})"

    # The Python-level reads take a device guard before dispatch (which a CPU build has not
    # for CUDA): each is a host sync, counted here.
    def _read(self, what: str) -> torch.Tensor:
        if not _ACTIVE:
            raise RuntimeError(f"a fake CUDA tensor read ({what}) outside FakeCuda")
        _ACTIVE[-1].syncs[what] += 1
        return self.elem

    def item(self) -> Any:  # type: ignore[override]
        return self._read("item").item()

    def tolist(self) -> Any:  # type: ignore[override]
        return self._read("tolist").tolist()

    def __float__(self) -> float:
        return float(self._read("float"))

    def __int__(self) -> int:
        return int(self._read("int"))

    def __index__(self) -> int:
        return self._read("index").__index__()

    def __bool__(self) -> bool:
        return bool(self._read("bool"))

    def __getitem__(self, index: Any) -> Any:
        parts = pytree.tree_leaves(index)
        if any(isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in parts):
            self._read("boolean index")
        out = self.elem[pytree.tree_map(_unwrap, index)]
        with torch.inference_mode(False):
            return CudaTensor(out)

    def __setitem__(self, index: Any, value: Any) -> None:
        self.elem[pytree.tree_map(_unwrap, index)] = _unwrap(value)

    def numpy(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() "
                        "to copy the tensor to host memory first.")


_ACTIVE: list["FakeCuda"] = []


def _is_cuda_device(d: Any) -> bool:
    return d is not None and torch.device(d).type == "cuda"


class DeviceMismatch(RuntimeError):
    """A CPU tensor met a CUDA one (what a real device raises)."""


class FakeCuda(TorchDispatchMode):
    """See the module docstring. ``syncs``: Counter of host syncs by op; ``mismatches``: the
    ops that met both devices (each also raised DeviceMismatch); ``uploads`` / ``downloads``:
    the shapes copied to the device / to the host (``.to``, ``.cpu``)."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: Counter[str] = Counter()
        self.mismatches: list[str] = []
        #: shapes of the tensors copied to the device and back to the host
        self.uploads: list[tuple[int, ...]] = []
        self.downloads: list[tuple[int, ...]] = []
        self._patches: list[tuple[Any, str, Any]] = []

    @property
    def total_syncs(self) -> int:
        return sum(self.syncs.values())

    def __enter__(self) -> "FakeCuda":
        for obj, name, value in ((torch.cuda, "is_available", lambda: True),
                                 (torch.cuda, "current_device", lambda: 0),
                                 (torch.cuda, "device_count", lambda: 1),
                                 (torch.cuda, "get_device_name", lambda d=None: "FakeCuda"),
                                 (torch.cuda, "_lazy_init", lambda: None),
                                 (torch.cuda, "synchronize", self._synchronize),
                                 (torch, "tensor", _host_tensor(torch.tensor)),
                                 (torch, "as_tensor", _host_tensor(torch.as_tensor))):
            self._patches.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)
        # module.to(cuda) keeps the CudaTensor (not its impl inside the old Parameter)
        self._overwrite = torch.__future__.get_overwrite_module_params_on_conversion()
        torch.__future__.set_overwrite_module_params_on_conversion(True)
        _ACTIVE.append(self)
        return super().__enter__()  # type: ignore[no-any-return]

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        _ACTIVE.remove(self)
        torch.__future__.set_overwrite_module_params_on_conversion(self._overwrite)
        while self._patches:
            obj, name, value = self._patches.pop()
            setattr(obj, name, value)

    def _synchronize(self, device: Any = None) -> None:
        self.syncs["synchronize"] += 1

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = dict(kwargs or {})
        name = func.overloadpacket.__name__
        leaves = pytree.tree_leaves((args, kwargs))
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        cuda_in = any(isinstance(t, CudaTensor) for t in tensors)
        devices = [torch.device(d) for d in leaves if isinstance(d, torch.device)] + (
            [torch.device(kwargs["device"])] if isinstance(kwargs.get("device"), str) else [])
        to_cuda = any(d.type == "cuda" for d in devices)
        if name in ("to", "_to_copy"):
            src_cuda = isinstance(args[0], CudaTensor)
            if devices:
                wrap = to_cuda
            elif len(tensors) > 1:  # to(other): other's device
                wrap = isinstance(tensors[1], CudaTensor)
            else:
                wrap = src_cuda
            if src_cuda and not wrap:
                self.syncs["copy to cpu"] += 1
                self.downloads.append(tuple(args[0].shape))
            elif wrap and not src_cuda:
                self.uploads.append(tuple(args[0].shape))
        elif name == "copy_":
            wrap = False  # in place: returns its (wrapped or not) destination
            if isinstance(args[1], CudaTensor) and not isinstance(args[0], CudaTensor):
                self.syncs["copy to cpu"] += 1
        else:
            if cuda_in and any(not isinstance(t, CudaTensor) and t.dim() > 0 for t in tensors):
                found = [str(t.device) + str(tuple(t.shape)) for t in tensors]
                self.mismatches.append(f"{func}: {found}")
                raise DeviceMismatch(f"Expected all tensors to be on the same device, but "
                                     f"found at least two devices, cuda:0 and cpu! ({func}: "
                                     f"{', '.join(found)})")
            wrap = cuda_in or to_cuda
            if cuda_in and (name in _DATA_DEPENDENT or name in _SCALAR_READS or (
                    name in ("index", "index_put", "index_put_") and any(
                        t.dtype == torch.bool for t in tensors[1:]))):
                self.syncs[name] += 1
        if devices:
            args, kwargs = pytree.tree_map(_cpu_device, (args, kwargs))
            if isinstance(kwargs.get("device"), str):
                kwargs["device"] = _CPU
        out = func(*pytree.tree_map(_unwrap, args), **pytree.tree_map(_unwrap, kwargs))
        if name.endswith("_") and isinstance(args[0], torch.Tensor):
            return args[0]  # in place: the (wrapped) tensor itself
        if not wrap:
            return out
        with torch.inference_mode(False):  # a wrapper made under inference mode cannot be
            return pytree.tree_map(_wrap, out)  # a view (its version counter is fixed)


def _nonzero(t: torch.Tensor, as_tuple: bool = False) -> Any:
    idx = aten.nonzero.default(t)
    return tuple(idx.unbind(1)) if as_tuple else idx


def _host_tensor(make: Any) -> Any:
    """torch.tensor / as_tensor: made on the CPU, then moved (its binding builds a tensor on
    the asked device below the dispatch modes)."""
    def tensor(data: Any, *args: Any, device: Any = None, **kwargs: Any) -> torch.Tensor:
        t = make(data, *args, **kwargs)
        return t.to(device) if device is not None else t

    return tensor


def _cpu_device(d: Any) -> Any:
    return _CPU if isinstance(d, torch.device) and d.type == "cuda" else d


def _wrap(t: Any) -> Any:
    return CudaTensor(t) if isinstance(t, torch.Tensor) and not isinstance(t, CudaTensor) else t


def _unwrap(t: Any) -> Any:
    return t.elem if isinstance(t, CudaTensor) else t


def to_cuda(module: torch.nn.Module) -> torch.nn.Module:
    """``module.to(cuda:0)`` under an active FakeCuda."""
    return module.to(CUDA)
