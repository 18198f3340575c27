"""Named model configs (Lite-SAM and the SAM family) and ``build_model``.

The SAM-family entries are the official architectures (facts from the official repositories:
facebookresearch/segment-anything, ChaoningZhang/MobileSAM, xinghaochen/TinySAM,
yformer/EfficientSAM) with their own pre- and post-processing; ``<name>_autoppn`` puts a
Lite-SAM AutoPPN head on the same encoder (trainable with ``freeze:`` in the training config).
"""
from __future__ import annotations

from typing import Any, Dict, List, Union

from .config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from .sam_model import SamModel

DEFAULT_MODEL = "lite_sam_r640"
#: The model of the demo weights this project ships, and their file name (in weights/).
DEMO_MODEL = "lite_sam_r320"
DEMO_WEIGHTS = DEMO_MODEL + "_demo.pt"
AUTOPPN_SUFFIX = "_autoppn"
#: Separates a config's name from the input size it was resized to (``at_image_size``).
SIZE_MARK = "@"

# SAM's prompt encoder / mask decoder and image handling, shared by SAM, MobileSAM and TinySAM.
_SAM_FAMILY = dict(image_size=1024, autoppn=False, decoder="sam", decoder_mlp_dim=2048,
                   mlp_ratio=4.0, interpolation="pil_bilinear")


def _sam_vit(name: str, width: int, depth: int, heads: int,
             global_attn: tuple[int, ...]) -> ModelConfig:
    return ModelConfig(name=name, encoder="sam_vit", stage_dims=(width,), stage_depths=(depth,),
                       stage_strides=(16,), stage_heads=(heads,), window_sizes=(14,),
                       global_attn_indexes=global_attn, **_SAM_FAMILY)  # type: ignore[arg-type]


def _tiny_vit(name: str) -> ModelConfig:
    return ModelConfig(name=name, encoder="tiny_vit", stage_dims=(64, 128, 160, 320),
                       stage_depths=(2, 2, 6, 2), stage_strides=(4, 2, 2, 1),
                       stage_heads=(2, 4, 5, 10), window_sizes=(7, 7, 14, 7),
                       **_SAM_FAMILY)  # type: ignore[arg-type]


def _efficient_sam(name: str, width: int, heads: int) -> ModelConfig:
    return ModelConfig(name=name, image_size=1024, encoder="efficient_sam_vit",
                       stage_dims=(width,), stage_depths=(12,), stage_strides=(16,),
                       stage_heads=(heads,), mlp_ratio=4.0, autoppn=False,
                       decoder="efficient_sam", decoder_mlp_dim=2048, prompt_points=6,
                       max_prompt_points=6, resize="stretch", interpolation="bilinear",
                       pixel_scale=1.0 / 255.0, pixel_mean=IMAGENET_MEAN,
                       pixel_std=IMAGENET_STD, upsample="bicubic")


def with_autoppn(cfg: ModelConfig) -> ModelConfig:
    """The same model with a Lite-SAM AutoPPN head on its encoder."""
    if cfg.autoppn:
        return cfg
    return cfg.replace(name=cfg.name + AUTOPPN_SUFFIX, autoppn=True, ppn_offsets=True)


#: Official SAM-family architectures (no AutoPPN head).
SAM_FAMILY = (
    _sam_vit("sam_vit_b", 768, 12, 12, (2, 5, 8, 11)),
    _sam_vit("sam_vit_l", 1024, 24, 16, (5, 11, 17, 23)),
    _sam_vit("sam_vit_h", 1280, 32, 16, (7, 15, 23, 31)),
    _tiny_vit("mobile_sam"),
    _tiny_vit("tinysam"),  # the same TinyViT-5M + SAM decoder as MobileSAM, other weights
    _efficient_sam("efficient_sam_vitt", 192, 3),
    _efficient_sam("efficient_sam_vits", 384, 6),
)

# New Lite-SAM configs have the sub-cell offset head (``ppn_offsets``); checkpoints keep the
# config they were written with (the demo weights predate it and load without the head).
_CONFIGS: Dict[str, ModelConfig] = {
    c.name: c
    for c in (
        ModelConfig(name="lite_sam_r640", image_size=640, ppn_offsets=True),
        ModelConfig(name="lite_sam_r1024", image_size=1024, ppn_offsets=True),
        ModelConfig(name="lite_sam_2x_r640", image_size=640, stage_dims=(96, 128, 192, 384),
                      ppn_offsets=True),
        ModelConfig(name="lite_sam_3x_r640", image_size=640, stage_dims=(128, 160, 256, 512),
                      ppn_offsets=True),
        # Same network at 320 input: the CPU demo weights are trained at this size.
        ModelConfig(name="lite_sam_r320", image_size=320, ppn_offsets=True),
        *SAM_FAMILY,
        *(with_autoppn(c) for c in SAM_FAMILY),
    )
}


class UnknownModelError(KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else "unknown model"


def list_models() -> List[str]:
    """Registered model names, default first."""
    return [DEFAULT_MODEL] + sorted(n for n in _CONFIGS if n != DEFAULT_MODEL)


def get_config(name: str = DEFAULT_MODEL) -> ModelConfig:
    """The registered config called ``name``."""
    try:
        return _CONFIGS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: "
                                f"{', '.join(list_models())}") from None


def at_image_size(cfg: ModelConfig, image_size: int) -> ModelConfig:
    """``cfg`` for another input size, named for it: the registry's name of the same network at
    that size (lite_sam_r320 at 640 px is lite_sam_r640), else ``<name>@<size>``, so a
    checkpoint, a graph cache folder and a benchmark header never show a size the model does
    not take."""
    if image_size == cfg.image_size:
        return cfg
    sized = cfg.replace(image_size=image_size)
    for known in _CONFIGS.values():
        if known.replace(name=sized.name) == sized:
            return known
    return sized.replace(name=f"{cfg.name.split(SIZE_MARK)[0]}{SIZE_MARK}{image_size}")


def resolve_config(name_or_config: Union[str, ModelConfig, Dict[str, Any]]) -> ModelConfig:
    """A config from a registered name, a ModelConfig or its ``to_dict()`` form."""
    if isinstance(name_or_config, ModelConfig):
        return name_or_config
    if isinstance(name_or_config, dict):
        return ModelConfig.from_dict(name_or_config)
    if isinstance(name_or_config, str):
        return get_config(name_or_config)
    raise TypeError(f"expected a model name, ModelConfig or dict, got "
                    f"{type(name_or_config).__name__}")


def build_model(name_or_config: Union[str, ModelConfig, Dict[str, Any]] = DEFAULT_MODEL
                ) -> "SamModel":
    """A randomly initialised model (seed torch yourself for reproducible weights)."""
    return SamModel(resolve_config(name_or_config))


__all__ = ["DEFAULT_MODEL", "DEMO_MODEL", "DEMO_WEIGHTS", "AUTOPPN_SUFFIX", "SIZE_MARK",
           "SAM_FAMILY", "UnknownModelError", "at_image_size", "list_models", "get_config",
           "resolve_config", "build_model", "with_autoppn"]
