"""LiteSamConfig: every size and hyper-parameter of a Lite-SAM model, as plain data.

The config is stored inside checkpoints (``to_dict``), so it holds only str/int/float/bool and
tuples of those; ``from_dict`` rebuilds it and rejects unknown or missing fields.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, Tuple

# The mask decoder upsamples its image tokens twice by 2 (two transposed convs): L = 4 * E.
MASK_UPSCALE = 4

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _coerce(name: str, kind: str, v: Any) -> Any:
    """Check one stored value against its field type (given as the annotation string)."""
    if kind == "str":
        if isinstance(v, str):
            return v
    elif kind == "int":
        if _is_int(v):
            return v
    elif kind == "float":
        if _is_int(v) or isinstance(v, float):
            return float(v)
    elif kind.startswith("Tuple") and isinstance(v, (list, tuple)):
        item = "int" if "int" in kind else "float"
        try:
            return tuple(_coerce(name, item, x) for x in v)
        except ValueError:
            pass
    raise ValueError(f"config field {name!r} must be {kind}, got {v!r}")


@dataclass(frozen=True)
class LiteSamConfig:
    """Lite-SAM hyper-parameters. Sizes derive from ``image_size`` and the stage strides."""

    name: str
    image_size: int = 640
    embed_dim: int = 256
    pixel_mean: Tuple[float, ...] = SAM_PIXEL_MEAN
    pixel_std: Tuple[float, ...] = SAM_PIXEL_STD
    # LiteViT backbone
    stage_dims: Tuple[int, ...] = (64, 96, 128, 256)
    stage_depths: Tuple[int, ...] = (2, 2, 6, 2)
    stage_strides: Tuple[int, ...] = (2, 2, 2, 2)  # downsampling before each stage
    mlp_ratio: float = 2.0
    mspm_kernels: Tuple[int, ...] = (3, 5, 7)
    stem_kernel: int = 7  # PoolFormer-S12 stem kernel, at stride 2 instead of 4
    merge_kernel: int = 2
    layer_scale_init: float = 1e-5
    # AutoPPN
    ppn_dim: int = 64
    ppn_blocks: int = 2
    ppn_groups: int = 3  # size groups: small / medium / large
    ppn_top_n: int = 256
    ppn_min_score: float = 0.05
    ppn_nms_kernel: int = 3
    # prompt encoder + mask decoder (SAM)
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 1024
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    def __post_init__(self) -> None:
        for f in ("pixel_mean", "pixel_std", "stage_dims", "stage_depths", "stage_strides",
                  "mspm_kernels"):
            object.__setattr__(self, f, tuple(getattr(self, f)))
        self.validate()

    # -- derived sizes -------------------------------------------------------------------------
    @property
    def encoder_stride(self) -> int:
        """Total downsampling of the backbone (16 for strides 2/2/2/2)."""
        return math.prod(self.stage_strides)

    @property
    def embedding_size(self) -> int:
        """E: side of the image embedding."""
        return self.image_size // self.encoder_stride

    @property
    def low_res_size(self) -> int:
        """L: side of the decoder's low-resolution mask logits."""
        return MASK_UPSCALE * self.embedding_size

    @property
    def num_mask_outputs(self) -> int:
        """Masks per prompt in the decoder output: 1 single + the multimask ones."""
        return 1 + self.num_multimask_outputs

    # -- checks and (de)serialisation ----------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent field."""
        n = len(self.stage_dims)
        if not (len(self.stage_depths) == len(self.stage_strides) == n and n > 0):
            raise ValueError("stage_dims, stage_depths and stage_strides must have the same "
                             f"non-zero length, got {n}, {len(self.stage_depths)}, "
                             f"{len(self.stage_strides)}")
        if self.image_size <= 0 or self.image_size % self.encoder_stride:
            raise ValueError(f"image_size {self.image_size} is not a positive multiple of the "
                             f"encoder stride {self.encoder_stride}")
        if len(self.pixel_mean) != 3 or len(self.pixel_std) != 3:
            raise ValueError("pixel_mean and pixel_std must have 3 values (RGB)")
        if self.embed_dim % self.decoder_heads or self.embed_dim % 8:
            raise ValueError(f"embed_dim {self.embed_dim} must divide by decoder_heads and 8")
        if self.embed_dim % 2:
            raise ValueError("embed_dim must be even (sin/cos positional encoding)")
        cells = self.ppn_groups * self.embedding_size ** 2
        if not 0 < self.ppn_top_n <= cells:
            raise ValueError(f"ppn_top_n {self.ppn_top_n} must be in 1..{cells} "
                             f"(groups x E x E at image_size {self.image_size})")
        if self.ppn_nms_kernel % 2 != 1:
            raise ValueError("ppn_nms_kernel must be odd")
        if any(k % 2 != 1 for k in self.mspm_kernels) or not self.mspm_kernels:
            raise ValueError("mspm_kernels must be odd pooling sizes")

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict (lists, not tuples) that torch.load(weights_only=True) can read back."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "LiteSamConfig":
        """Inverse of :meth:`to_dict`; raises ValueError on unknown/missing fields or bad values."""
        if not isinstance(data, dict):
            raise ValueError(f"config must be a dict, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data]
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        if missing:
            raise ValueError(f"missing config fields {missing}")
        values: Dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            values[f.name] = _coerce(f.name, str(f.type), data[f.name])
        return cls(**values)

    def replace(self, **changes: Any) -> "LiteSamConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


__all__ = ["LiteSamConfig", "MASK_UPSCALE", "SAM_PIXEL_MEAN", "SAM_PIXEL_STD"]
