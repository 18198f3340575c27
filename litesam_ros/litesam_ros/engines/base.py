"""The small interface every inference backend implements."""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, Optional, Union

import torch

from ..model.sam_model import pad_prompt_points

#: The exported graphs' input and output names (ONNX Runtime feeds, TensorRT bindings).
ENCODER_INPUTS = ("image",)
ENCODER_OUTPUTS = ("embeddings", "points", "scores", "groups", "boxes")
#: Outputs of the encoder graph of a model without an AutoPPN head.
EMBEDDING_ONLY_OUTPUTS = ENCODER_OUTPUTS[:1]
DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels")
DECODER_OUTPUTS = ("low_res_logits", "iou_predictions")
#: The two graphs of a model (exported, quantized and built into engines one by one).
GRAPH_PARTS = ("encoder", "decoder")


@contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run a block with n torch intra-op threads (None or <= 0: unchanged), then restore."""
    old = torch.get_num_threads()
    if not n or n <= 0 or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def cuda_device(device: Optional[Union[str, torch.device]]) -> torch.device:
    """A CUDA device with its index: "cuda" / None = torch's current device (what
    torch.cuda.set_device chose), "cuda:N" = N."""
    dev = torch.device("cuda" if device is None else device)
    if dev.type != "cuda":
        raise ValueError(f"not a CUDA device: {device!r}")
    return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())


def encoder_outputs(config: Any) -> tuple[str, ...]:
    """Output names of a model's encoder graph: with AutoPPN proposals or the embedding only."""
    return ENCODER_OUTPUTS if getattr(config, "autoppn", True) else EMBEDDING_ONLY_OUTPUTS


class EncoderResult(NamedTuple):
    """Image embeddings and AutoPPN proposals of a batch of B images (input-frame pixels).

    embeddings [B,C,E,E]; points [B,N,2] (x, y); scores [B,N] (0 = padding);
    groups [B,N] int64; boxes [B,N,4] xyxy. The proposal fields are None for a model without
    an AutoPPN head. B is 1 unless the backend encodes batches (Backend.max_batch > 1).
    """

    embeddings: torch.Tensor
    points: Optional[torch.Tensor] = None
    scores: Optional[torch.Tensor] = None
    groups: Optional[torch.Tensor] = None
    boxes: Optional[torch.Tensor] = None

    @property
    def batch(self) -> int:
        """B, the number of images."""
        return int(self.embeddings.shape[0])

    def select(self, i: int) -> "EncoderResult":
        """Image ``i`` of the batch, as a batch of one (views, no copies)."""
        def one(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return None if t is None else t[i:i + 1]

        return EncoderResult(self.embeddings[i:i + 1], one(self.points), one(self.scores),
                             one(self.groups), one(self.boxes))


def fit_prompt_points(config: Any, point_coords: torch.Tensor,
                      point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder inputs padded/cut to the model's fixed point count (EfficientSAM's 6), as
    the model itself does; unchanged for models that take any count."""
    k = int(getattr(config, "prompt_points", 0))
    if not k or point_coords.shape[1] == k:
        return point_coords, point_labels
    return pad_prompt_points(point_coords, point_labels, k)


class Backend(ABC):
    """Runs the image encoder (+AutoPPN) and the prompt decoder of one SamModel model."""

    #: short name, e.g. "torch:cpu", "onnxruntime:CPUExecutionProvider", "tensorrt:fp16"
    name: str
    #: the model's ModelConfig
    config: Any
    #: the filter thresholds the weights' checkpoint records for itself (the model's own, which
    #: the segment layer applies unless a value is given: segment.thresholds); set by
    #: create_backend, empty when the weights record none
    model_thresholds: dict[str, float] = {}
    #: IoU calibration the weights' checkpoint records ({"scale", "bias"}); set by
    #: create_backend, empty = none. decode() still returns the raw head output; the segment
    #: pipeline applies it (segment.postprocess.calibrate_iou)
    iou_calibration: dict[str, float] = {}
    #: most images one encode() call takes (create_backend's encoder_batch); 1 = a static
    #: batch-1 encoder
    max_batch: int = 1
    #: the precision the backend runs at (fp32 | fp16 | int8)
    precision: str = "fp32"
    #: why create_backend picked this backend (kind "auto"), empty when it was asked for
    chosen_because: str = ""

    @property
    def recommended(self) -> dict[str, float]:
        """Deprecated name of ``model_thresholds`` (to go in the next release)."""
        warnings.warn("Backend.recommended is deprecated: use Backend.model_thresholds",
                      DeprecationWarning, stacklevel=2)
        return self.model_thresholds

    @recommended.setter
    def recommended(self, value: dict[str, float]) -> None:
        warnings.warn("Backend.recommended is deprecated: use Backend.model_thresholds",
                      DeprecationWarning, stacklevel=2)
        self.model_thresholds = value

    @property
    def device(self) -> torch.device:
        """Device on which encode/decode return tensors."""
        return torch.device("cpu")

    def describe(self) -> dict[str, str]:
        """What runs, for the bench header and logs: at least "backend" (the name), "device"
        and "precision"; a backend adds its own fields (providers, library versions)."""
        out = {"backend": self.name, "device": str(self.device), "precision": self.precision}
        if self.chosen_because:
            out["chosen_because"] = self.chosen_because
        return out

    @abstractmethod
    def encode(self, image: torch.Tensor) -> EncoderResult:
        """image: float32 [B,3,S,S], normalised and padded; 1 <= B <= max_batch."""

    def check_batch(self, image: torch.Tensor) -> None:
        """ValueError when ``image``'s batch is not one encode() takes (1..max_batch)."""
        b = int(image.shape[0])
        if not 1 <= b <= self.max_batch:
            raise ValueError(f"{self.name}: encoder takes batches of 1..{self.max_batch} "
                             f"images, got {b}")

    @abstractmethod
    def decode(self, embeddings: torch.Tensor, point_coords: torch.Tensor,
               point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """embeddings [1,C,E,E], coords [P,K,2] (input frame), labels [P,K] ->
        (low-res logits [P,M,L,L], iou predictions [P,M]); index 0 = single-mask output."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
