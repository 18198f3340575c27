"""Named Lite-SAM configs and ``build_model``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Union

from .config import LiteSamConfig

if TYPE_CHECKING:
    from .lite_sam import LiteSam

DEFAULT_MODEL = "lite_sam_r640"

_CONFIGS: Dict[str, LiteSamConfig] = {
    c.name: c
    for c in (
        LiteSamConfig(name="lite_sam_r640", image_size=640),
        LiteSamConfig(name="lite_sam_r1024", image_size=1024),
        LiteSamConfig(name="lite_sam_2x_r640", image_size=640, stage_dims=(96, 128, 192, 384)),
        LiteSamConfig(name="lite_sam_3x_r640", image_size=640, stage_dims=(128, 160, 256, 512)),
        # Same network at 320 input: the CPU demo weights are trained at this size.
        LiteSamConfig(name="lite_sam_r320", image_size=320),
    )
}


class UnknownModelError(KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else "unknown model"


def list_models() -> List[str]:
    """Registered model names, default first."""
    return [DEFAULT_MODEL] + sorted(n for n in _CONFIGS if n != DEFAULT_MODEL)


def get_config(name: str = DEFAULT_MODEL) -> LiteSamConfig:
    """The registered config called ``name``."""
    try:
        return _CONFIGS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: "
                                f"{', '.join(list_models())}") from None


def resolve_config(name_or_config: Union[str, LiteSamConfig, Dict[str, Any]]) -> LiteSamConfig:
    """A config from a registered name, a LiteSamConfig or its ``to_dict()`` form."""
    if isinstance(name_or_config, LiteSamConfig):
        return name_or_config
    if isinstance(name_or_config, dict):
        return LiteSamConfig.from_dict(name_or_config)
    if isinstance(name_or_config, str):
        return get_config(name_or_config)
    raise TypeError(f"expected a model name, LiteSamConfig or dict, got "
                    f"{type(name_or_config).__name__}")


def build_model(name_or_config: Union[str, LiteSamConfig, Dict[str, Any]] = DEFAULT_MODEL
                ) -> "LiteSam":
    """A randomly initialised LiteSam (seed torch yourself for reproducible weights)."""
    from .lite_sam import LiteSam

    return LiteSam(resolve_config(name_or_config))


__all__ = ["DEFAULT_MODEL", "UnknownModelError", "list_models", "get_config", "resolve_config",
           "build_model"]
