"""PyTorch backend: the SamModel module itself, on CPU or CUDA."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

import torch

from .base import Backend, EncoderResult, cuda_device, torch_threads
from .choices import TORCH_PRECISIONS

if TYPE_CHECKING:
    from ..model import SamModel


def default_device() -> torch.device:
    """torch's current CUDA device when there is one, else the CPU."""
    return cuda_device(None) if torch.cuda.is_available() else torch.device("cpu")


class TorchBackend(Backend):
    """Runs ``model.encode`` / ``model.decode`` under inference mode.

    precision "fp16" is CUDA only (the model is cast with .half()); "int8" is not offered here:
    use the ONNX Runtime backend's quantized graphs. threads: torch intra-op threads while
    encoding/decoding (None = torch's setting). max_batch: most images one encode() takes (the
    module takes any batch; the limit keeps the backends alike).
    """

    def __init__(self, model: "SamModel", device: Optional[Union[str, torch.device]] = None,
                 precision: str = "fp32", threads: Optional[int] = None,
                 max_batch: int = 1) -> None:
        self.threads = threads
        self.max_batch = int(max_batch)
        self._device = torch.device(device) if device is not None else default_device()
        if self._device.type == "cuda":
            self._device = cuda_device(self._device)  # "cuda" = the current device, by index
        if precision not in TORCH_PRECISIONS:
            raise ValueError(f"torch backend supports {' and '.join(TORCH_PRECISIONS)}, "
                             f"not {precision!r}")
        if precision == "fp16" and self._device.type != "cuda":
            raise ValueError("fp16 with the torch backend needs a CUDA device")
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model = model.eval().to(device=self._device, dtype=self.dtype)
        self.config = model.config
        self.precision = precision
        self.name = f"torch:{self._device.type}:{precision}"

    @property
    def device(self) -> torch.device:
        return self._device

    @torch.inference_mode()
    def encode(self, image: torch.Tensor) -> EncoderResult:
        self.check_batch(image)
        with torch_threads(self.threads):
            emb, p = self.model.encode(image.to(self._device, self.dtype))
        if p is None:
            return EncoderResult(emb.float())
        return EncoderResult(emb.float(), p.points.float(), p.scores.float(), p.groups,
                             p.boxes.float())

    @torch.inference_mode()
    def decode(self, embeddings: torch.Tensor, point_coords: torch.Tensor,
               point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch_threads(self.threads):
            logits, iou = self.model.decode(embeddings.to(self._device, self.dtype),
                                            point_coords.to(self._device, self.dtype),
                                            point_labels.to(self._device, self.dtype))
        return logits.float(), iou.float()
