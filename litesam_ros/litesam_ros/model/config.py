"""ModelConfig: every size, hyper-parameter and image-geometry choice of a model, as plain data.

One config type describes Lite-SAM and the SAM family it is built from (SAM ViT-B/L/H,
MobileSAM/TinySAM's TinyViT, EfficientSAM's ViT): which image encoder, whether an AutoPPN head
sits on it, which prompt encoder / mask decoder, and how images are turned into model input.

The config is stored inside checkpoints (``to_dict``), so it holds only str/int/float/bool and
tuples of those; ``from_dict`` rebuilds it and rejects unknown or missing fields, except the
fields added after the first checkpoint format (``ADDED_FIELDS``), which old checkpoints lack and
which then take their defaults (the values every config had before they existed).
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Tuple

# The mask decoder upsamples its image tokens twice by 2 (two transposed convs): L = 4 * E.
MASK_UPSCALE = 4

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
#: ImageNet mean/std on 0-1 values (EfficientSAM; use pixel_scale 1/255).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ENCODERS = ("litevit", "sam_vit", "tiny_vit", "efficient_sam_vit")
DECODERS = ("sam", "efficient_sam")
#: longest_side: resize the longest side to S, zero-pad bottom/right (SAM, MobileSAM, Lite-SAM);
#: stretch: resize both sides to S, aspect ratio not kept (EfficientSAM).
RESIZE_MODES = ("longest_side", "stretch")
#: area: OpenCV INTER_AREA when shrinking, INTER_LINEAR when enlarging, on uint8;
#: pil_bilinear: PIL's BILINEAR filter on uint8 (what SAM's ResizeLongestSide does);
#: bilinear: torch bilinear interpolation on float 0-1 values, no antialias (EfficientSAM).
INTERPOLATIONS = ("area", "pil_bilinear", "bilinear")
#: Up-sampling of the low-res mask logits to the image (bilinear for SAM, bicubic EfficientSAM).
UPSAMPLE_MODES = ("bilinear", "bicubic")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _coerce(name: str, kind: str, v: Any) -> Any:
    """Check one stored value against its field type (given as the annotation string)."""
    if kind == "bool":
        if isinstance(v, bool):
            return v
    elif kind == "str":
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
class ModelConfig:
    """Model hyper-parameters. Sizes derive from ``image_size`` and the stage strides.

    Encoders read the stage fields this way: litevit all of them; tiny_vit stage_dims,
    stage_depths, stage_heads, window_sizes (stage_strides (4, 2, 2, 1) say where it
    downsamples); the plain ViTs (sam_vit, efficient_sam_vit) one stage: dims = (width,),
    depths = (blocks,), heads = (heads,), strides = (patch size,), and sam_vit's
    window_sizes = (window,) and global_attn_indexes.
    """

    name: str
    image_size: int = 640
    embed_dim: int = 256
    pixel_mean: Tuple[float, ...] = SAM_PIXEL_MEAN
    pixel_std: Tuple[float, ...] = SAM_PIXEL_STD
    # image encoder
    encoder: str = "litevit"
    stage_dims: Tuple[int, ...] = (64, 96, 128, 256)
    stage_depths: Tuple[int, ...] = (2, 2, 6, 2)
    stage_strides: Tuple[int, ...] = (2, 2, 2, 2)  # downsampling before each stage
    stage_heads: Tuple[int, ...] = ()
    window_sizes: Tuple[int, ...] = ()
    global_attn_indexes: Tuple[int, ...] = ()
    mlp_ratio: float = 2.0
    mspm_kernels: Tuple[int, ...] = (3, 5, 7)
    stem_kernel: int = 7  # PoolFormer-S12 stem kernel, at stride 2 instead of 4
    merge_kernel: int = 2
    layer_scale_init: float = 1e-5
    # AutoPPN (optional head on any encoder)
    autoppn: bool = True
    ppn_mlp_ratio: float = 2.0
    ppn_dim: int = 64
    ppn_blocks: int = 2
    ppn_groups: int = 3  # size groups: small / medium / large
    ppn_top_n: int = 256
    ppn_min_score: float = 0.05
    ppn_nms_kernel: int = 3
    #: sub-cell offset head: proposal points at the predicted place inside their cell (the
    #: object's most central point) instead of the cell centre. Checkpoints written before it
    #: existed have no such head: False (the default); the Lite-SAM registry configs set True.
    #: Like every ppn_* field, ignored when autoppn is False.
    ppn_offsets: bool = False
    # prompt encoder + mask decoder: SAM's, or EfficientSAM's variant
    decoder: str = "sam"
    #: EfficientSAM's decoder always sees this many points (padded with label -1 or cut);
    #: 0 = any number (SAM's)
    prompt_points: int = 0
    #: most decoder points per prompt (user points + box corners or padding): the TensorRT
    #: decoder profile's K max and the prompt checks both come from here
    max_prompt_points: int = 16
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 1024
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    # image geometry (segment.geometry applies it; see RESIZE_MODES, INTERPOLATIONS)
    resize: str = "longest_side"
    interpolation: str = "area"
    pixel_scale: float = 1.0  # pixels are multiplied by this before mean/std
    upsample: str = "bilinear"

    def __post_init__(self) -> None:
        for f in _TUPLE_FIELDS:
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
    def max_points_per_prompt(self) -> int:
        """Most user points one prompt may carry, box or not (2 tokens are kept for a box's
        corners; SAM's no-box padding token fits in the same 2)."""
        return self.max_prompt_points - 2

    @property
    def num_mask_outputs(self) -> int:
        """Masks per prompt in the decoder output: 1 single + the multimask ones."""
        return 1 + self.num_multimask_outputs

    # -- checks and (de)serialisation ----------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent field."""
        for field, choices in (("encoder", ENCODERS), ("decoder", DECODERS),
                               ("resize", RESIZE_MODES), ("interpolation", INTERPOLATIONS),
                               ("upsample", UPSAMPLE_MODES)):
            if getattr(self, field) not in choices:
                raise ValueError(f"{field} must be one of {choices}, got "
                                 f"{getattr(self, field)!r}")
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
        if self.encoder != "litevit":
            if len(self.stage_heads) != n:
                raise ValueError(f"encoder {self.encoder} needs one stage_heads entry per "
                                 f"stage ({n}), got {self.stage_heads}")
            if any(d % h for d, h in zip(self.stage_dims, self.stage_heads)):
                raise ValueError(f"stage_heads {self.stage_heads} must divide stage_dims "
                                 f"{self.stage_dims}")
        if self.encoder == "tiny_vit" and len(self.window_sizes) != n:
            raise ValueError(f"tiny_vit needs one window size per stage, got {self.window_sizes}")
        if self.encoder in ("sam_vit", "efficient_sam_vit") and n != 1:
            raise ValueError(f"{self.encoder} is one stage: stage_dims (width,), got {n} stages")
        if self.encoder == "sam_vit":
            if len(self.window_sizes) != 1:
                raise ValueError("sam_vit needs window_sizes = (window,)")
            if any(not 0 <= i < self.stage_depths[0] for i in self.global_attn_indexes):
                raise ValueError(f"global_attn_indexes {self.global_attn_indexes} must be "
                                 f"block indexes below depth {self.stage_depths[0]}")
        if self.autoppn:
            cells = self.ppn_groups * self.embedding_size ** 2
            if not 0 < self.ppn_top_n <= cells:
                raise ValueError(f"ppn_top_n {self.ppn_top_n} must be in 1..{cells} "
                                 f"(groups x E x E at image_size {self.image_size})")
            if self.ppn_nms_kernel % 2 != 1:
                raise ValueError("ppn_nms_kernel must be odd")
        if any(k % 2 != 1 for k in self.mspm_kernels) or not self.mspm_kernels:
            raise ValueError("mspm_kernels must be odd pooling sizes")
        if self.max_prompt_points < 3:
            raise ValueError(f"max_prompt_points must be >= 3, got {self.max_prompt_points}")
        if self.prompt_points and self.prompt_points != self.max_prompt_points:
            raise ValueError(f"a fixed prompt_points ({self.prompt_points}) must equal "
                             f"max_prompt_points ({self.max_prompt_points})")
        if self.pixel_scale <= 0:
            raise ValueError(f"pixel_scale must be > 0, got {self.pixel_scale}")

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict (lists, not tuples) that torch.load(weights_only=True) can read back."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; raises ValueError on unknown/missing fields or bad values."""
        if not isinstance(data, dict):
            raise ValueError(f"config must be a dict, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data and n not in ADDED_FIELDS]
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        if missing:
            raise ValueError(f"missing config fields {missing}")
        values: Dict[str, Any] = {}
        if "ppn_mlp_ratio" not in data and "mlp_ratio" in data:  # AutoPPN shared mlp_ratio
            values["ppn_mlp_ratio"] = _coerce("mlp_ratio", "float", data["mlp_ratio"])
        for f in dataclasses.fields(cls):
            if f.name in data:
                values[f.name] = _coerce(f.name, str(f.type), data[f.name])
        return cls(**values)

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


_TUPLE_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig)
                      if str(f.type).startswith("Tuple"))
#: Fields that configs stored before them lack (the SAM family's, then ``ppn_offsets``); they
#: take their defaults there, which are the values every config had before the field existed.
ADDED_FIELDS = frozenset({
    "encoder", "stage_heads", "window_sizes", "global_attn_indexes", "autoppn",
    "ppn_mlp_ratio", "decoder", "prompt_points", "max_prompt_points", "resize",
    "interpolation", "pixel_scale", "upsample", "ppn_offsets"})


def __getattr__(name: str) -> Any:
    """``LiteSamConfig``: the name ModelConfig had when it described Lite-SAM only; deprecated
    (to go in the next release)."""
    if name == "LiteSamConfig":
        warnings.warn("LiteSamConfig is deprecated: use ModelConfig", DeprecationWarning,
                      stacklevel=2)
        return ModelConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ModelConfig", "MASK_UPSCALE", "SAM_PIXEL_MEAN", "SAM_PIXEL_STD",
           "IMAGENET_MEAN", "IMAGENET_STD", "ENCODERS", "DECODERS", "RESIZE_MODES",
           "INTERPOLATIONS", "UPSAMPLE_MODES", "ADDED_FIELDS"]
