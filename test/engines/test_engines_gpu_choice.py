"""ONNX Runtime's GPU devices and kind "auto"'s choice on a GPU machine, without a GPU.

ONNX Runtime's providers are patched with a recording fake (``FakeOrt``): its sessions record
the providers they were given and run the graph on the real CPU session, while
``get_providers()`` reports either every provider asked for (CUDA came up) or the CPU alone
(what ONNX Runtime does when the CUDA provider cannot load cuDNN / cuBLAS). TensorRT is a
recording fake that fails its build; torch's CUDA is test/fake_cuda.py.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import MODEL
from fake_cuda import FakeCuda
from litesam_ros.engines import create_backend, tensorrt_backend
from litesam_ros.engines.factory import ORT_CPU_INT8_REFUSAL, ORT_CUDA_INT8_REFUSAL
from litesam_ros.engines.ort_backend import OrtBackend, parse_device, providers_for
from litesam_ros.engines.torch_backend import TorchBackend
from litesam_ros.model import build_model, get_config
from small_models import smoke_config
from litesam_ros.apps.bench import header, header_line

CUDA_EP, CPU_EP = "CUDAExecutionProvider", "CPUExecutionProvider"
_REAL_SESSION = ort.InferenceSession


class FakeOrt:
    """onnxruntime with a CUDA provider: ``cuda_up`` False = sessions come up CPU-only."""

    def __init__(self) -> None:
        self.cuda_up = True
        self.asked: list[list[Any]] = []

    def session(self, path: str, so: Any = None, providers: Any = None, **kw: Any) -> Any:
        self.asked.append(list(providers))
        real = _REAL_SESSION(path, so, providers=[CPU_EP], **kw)
        names = [p if isinstance(p, str) else p[0] for p in providers]
        up = names if self.cuda_up else [CPU_EP]

        class Session:
            def get_providers(self) -> list[str]:
                return up

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        return Session()


@pytest.fixture
def fake_ort(monkeypatch: pytest.MonkeyPatch) -> FakeOrt:
    fake = FakeOrt()
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA_EP, CPU_EP])
    monkeypatch.setattr(ort, "InferenceSession", fake.session)
    return fake


@pytest.fixture
def failing_tensorrt(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """TensorRT 'installed with a GPU' whose engine build fails; records the devices asked."""
    calls: list[Any] = []

    def build(*args: Any, device: Any = None, **kw: Any) -> Any:
        calls.append(device)
        raise RuntimeError("engine build failed: out of memory")

    monkeypatch.setattr(tensorrt_backend, "tensorrt_available", lambda: True)
    monkeypatch.setattr(tensorrt_backend, "build_tensorrt_backend", build)
    return calls


@pytest.mark.parametrize("device, index", [("cuda", 0), ("cuda:0", 0), ("cuda:1", 1),
                                           (torch.device("cuda", 1), 1), ("tensorrt:1", 1)])
def test_cuda_devices_reach_device_id(device: Any, index: int, fake_ort: FakeOrt) -> None:
    got = providers_for(device)
    assert got[-1] == CPU_EP
    assert [opt for _, opt in got[:-1]] == [{"device_id": str(index)}] * (len(got) - 1)
    assert got[-2][0] == CUDA_EP  # the TensorRT provider is not installed: CUDA serves it


def test_bad_devices_and_a_missing_provider_are_clear() -> None:
    for bad in ("gpu", "cuda:x", "cpu:1"):
        with pytest.raises(ValueError, match="unknown ONNX Runtime device"):
            parse_device(bad)
    # the CPU onnxruntime here has no CUDA provider: the error names it and its package
    with pytest.raises(RuntimeError, match="no CUDAExecutionProvider .*onnxruntime-gpu"):
        providers_for("cuda:0")


def test_session_gets_the_index_and_describes_it(graphs: Any, fake_ort: FakeOrt) -> None:
    from litesam_ros.model import get_config

    backend = OrtBackend(graphs.encoder, graphs.decoder, get_config(MODEL), "cuda:1")
    assert fake_ort.asked == [[(CUDA_EP, {"device_id": "1"}), CPU_EP]] * 2
    desc = backend.describe()
    assert desc == {"backend": f"onnxruntime:{CUDA_EP}:fp32", "device": "cuda:1",
                    "precision": "fp32", "providers": f"{CUDA_EP}, {CPU_EP}"}


def test_session_that_came_up_on_the_cpu_is_an_error(graphs: Any, fake_ort: FakeOrt) -> None:
    from litesam_ros.model import get_config

    fake_ort.cuda_up = False
    with pytest.raises(RuntimeError, match=f"came up without {CUDA_EP} for encoder.onnx"):
        OrtBackend(graphs.encoder, graphs.decoder, get_config(MODEL), "cuda:0")


def test_auto_falls_back_from_tensorrt_to_ort_cuda_on_the_asked_device(
        graphs: Any, cache_dir: Any, fake_ort: FakeOrt, failing_tensorrt: list[Any]) -> None:
    backend = create_backend("auto", MODEL, cache_dir=cache_dir, device="cuda:1")
    assert failing_tensorrt == [torch.device("cuda", 1)]
    assert backend.name == f"onnxruntime:{CUDA_EP}:fp32"
    assert fake_ort.asked[-1][0] == (CUDA_EP, {"device_id": "1"})
    assert backend.chosen_because == ("TensorRT failed (engine build failed: out of memory) | "
                                      "onnxruntime has the CUDAExecutionProvider")


def test_auto_on_a_cpu_only_session_falls_back_to_the_cpu(graphs: Any, cache_dir: Any,
                                                          fake_ort: FakeOrt,
                                                          caplog: Any) -> None:
    fake_ort.cuda_up = False
    with caplog.at_level("INFO", logger="litesam_ros.engines.factory"):
        backend = create_backend("auto", MODEL, cache_dir=cache_dir, device="cuda:0")
    assert backend.describe()["device"] == "cpu" and backend.name.startswith("onnxruntime:CPU")
    assert backend.chosen_because.startswith("no TensorRT (")
    assert f"ONNX Runtime CUDA failed (ONNX Runtime came up without {CUDA_EP}" in \
        backend.chosen_because
    assert backend.chosen_because.endswith("torch sees no CUDA GPU | ONNX Runtime on the CPU")
    assert any(r.message.startswith("backend auto chose onnxruntime:CPU") for r in caplog.records)


def test_auto_with_device_cpu_never_tries_tensorrt(graphs: Any, cache_dir: Any,
                                                   failing_tensorrt: list[Any]) -> None:
    backend = create_backend("auto", MODEL, cache_dir=cache_dir, device="cpu")
    assert failing_tensorrt == [] and backend.name.startswith("onnxruntime:CPU")
    assert backend.chosen_because == "device cpu asked for | ONNX Runtime on the CPU"
    with pytest.raises(ValueError, match="TensorRT backend runs on a CUDA device"):
        create_backend("tensorrt", MODEL, cache_dir=cache_dir, device="cpu")


def test_int8_on_a_gpu_is_refused_with_one_line(graphs: Any, cache_dir: Any,
                                                fake_ort: FakeOrt) -> None:
    for kind in ("auto", "onnxruntime"):
        with pytest.raises(ValueError) as exc:
            create_backend(kind, MODEL, precision="int8", cache_dir=cache_dir,
                           device="cuda:0")
        assert str(exc.value) == ORT_CUDA_INT8_REFUSAL
    assert "\n" not in ORT_CUDA_INT8_REFUSAL and "TensorRT" in ORT_CUDA_INT8_REFUSAL
    assert ORT_CUDA_INT8_REFUSAL != ORT_CPU_INT8_REFUSAL


def test_auto_picks_torch_cuda_with_the_cpu_onnxruntime(graphs: Any, cache_dir: Any,
                                                        astronaut: np.ndarray) -> None:
    """CPU onnxruntime (the pinned one) + CUDA torch, no TensorRT: torch on cuda:0, fp16."""
    with FakeCuda(), torch.no_grad():
        backend = create_backend("auto", MODEL, precision="auto", cache_dir=cache_dir)
        assert backend.name == "torch:cuda:fp16" and str(backend.device) == "cuda:0"
        assert backend.chosen_because == (
            "no TensorRT (the tensorrt Python package is not installed) | onnxruntime has no "
            "CUDAExecutionProvider (the CPU package) | torch sees a CUDA GPU")
        line = header_line(header(backend, MODEL, "astronaut", astronaut, None, 1))
    assert line.startswith("litesam-engines bench: backend torch:cuda:fp16; device cuda:0; "
                           "precision fp16; chosen_because no TensorRT")
    assert "; on FakeCuda (CUDA None); " in line


@pytest.mark.parametrize("name", ["lite_sam_r320", "mobile_sam", "efficient_sam_vitt"])
def test_torch_backend_on_cuda_keeps_its_tensors_there(name: str) -> None:
    """Encode and decode on the (fake) device in fp16: no CPU tensor meets a CUDA one."""
    torch.manual_seed(0)
    model = build_model(smoke_config(get_config(name)))
    s = model.config.image_size
    with FakeCuda() as fc, torch.no_grad():
        backend = TorchBackend(model, "cuda", "fp16")
        enc = backend.encode(torch.randn(1, 3, s, s))
        logits, iou = backend.decode(enc.embeddings, torch.tensor([[[10.0, 12.0]]]),
                                     torch.tensor([[1.0]]))
    assert enc.embeddings.device == logits.device == iou.device == torch.device("cuda", 0)
    assert logits.dtype == torch.float32 and fc.mismatches == []
    assert fc.total_syncs == 0  # nothing read back to the host


def test_bench_header_names_the_cuda_backend_and_precision(
        graphs: Any, cache_dir: Any, fake_ort: FakeOrt, astronaut: np.ndarray) -> None:
    """`litesam-engines bench --device cuda` prints every describe() field."""
    backend = create_backend("auto", MODEL, cache_dir=cache_dir, device="cuda")
    line = header_line(header(backend, MODEL, "astronaut", astronaut, 2, 1))
    fields = dict(re.findall(r"(\w+) ([^;]+)", line.split(": ", 1)[1]))
    assert fields["backend"] == f"onnxruntime:{CUDA_EP}:fp32"
    assert fields["device"] == "cuda:0" and fields["precision"] == "fp32"
    assert fields["providers"] == f"{CUDA_EP}, {CPU_EP}"
    assert "chosen_because" in fields
