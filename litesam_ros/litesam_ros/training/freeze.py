"""``freeze:``: train some top-level parts of a SamModel and keep the others bit-identical.

A frozen part has ``requires_grad=False`` on every parameter, is left out of the optimizer and
stays in ``eval()`` mode while the rest trains, so BatchNorm running statistics (TinyViT) do not
move either. Which losses are computed follows from what trains (``LossPaths``): the AutoPPN
losses need a trainable AutoPPN head or image encoder, the mask losses a trainable image
encoder, prompt encoder or mask decoder.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, List, Sequence, Tuple

from torch import nn

if TYPE_CHECKING:
    from litesam_ros.model import SamModel

#: Top-level modules of SamModel that ``freeze`` may name, in model order.
PARTS = ("image_encoder", "autoppn", "prompt_encoder", "mask_decoder")


def normalise_freeze(value: Any) -> List[str]:
    """``freeze`` as a list of part names in model order; raises ValueError on bad names.

    Accepts None / [] (nothing frozen), a list of names, or one string (a name or
    comma-separated names, as ``--set freeze=image_encoder,prompt_encoder`` gives).
    """
    if value is None:
        return []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"freeze must be a list of module names from {list(PARTS)}, "
                         f"got {value!r}")
    unknown = sorted(set(value) - set(PARTS))
    if unknown:
        raise ValueError(f"freeze: unknown module name(s) {unknown}; valid names are "
                         f"{list(PARTS)}")
    names = [p for p in PARTS if p in value]
    if len(names) == len(PARTS):
        raise ValueError(f"freeze names every module {list(PARTS)}: nothing would train")
    return names


def present_parts(model: SamModel) -> List[str]:
    """The parts this model has (``autoppn`` only when it has an AutoPPN head)."""
    return [p for p in PARTS if getattr(model, p, None) is not None]


def apply_freeze(model: SamModel, names: Sequence[str]) -> List[str]:
    """Set ``requires_grad=False`` on the named parts (checked against the model) and True on
    the others; returns the names of the parts that train."""
    names = normalise_freeze(list(names))
    present = present_parts(model)
    missing = [n for n in names if n not in present]
    if missing:
        raise ValueError(f"freeze: model {model.config.name!r} has no {missing} "
                         f"(its modules: {present})")
    trainable = [p for p in present if p not in names]
    if not trainable:
        raise ValueError(f"freeze {list(names)} freezes every module of model "
                         f"{model.config.name!r}: nothing would train")
    for p in present:
        for param in getattr(model, p).parameters():
            param.requires_grad_(p not in names)
    return trainable


def set_train_mode(model: SamModel, frozen: Iterable[str]) -> None:
    """``model.train()`` except the frozen parts, which stay in ``eval()`` (BatchNorm statistics
    and dropout as at inference)."""
    model.train()
    for p in frozen:
        getattr(model, p).eval()


def trainable_parameters(model: nn.Module) -> List[Tuple[str, nn.Parameter]]:
    """(name, parameter) of every parameter that trains, in ``named_parameters`` order: the
    optimizer's parameter list."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


@dataclass(frozen=True)
class LossPaths:
    """Which loss terms can reach a trainable parameter.

    encoder_grad: gradients flow into the image encoder (else it runs under ``no_grad``).
    ppn: compute the AutoPPN point/box losses. masks: decode prompts and compute mask losses.
    """

    encoder_grad: bool
    ppn: bool
    masks: bool

    @classmethod
    def of(cls, model: SamModel, frozen: Iterable[str]) -> "LossPaths":
        trains = set(present_parts(model)) - set(frozen)
        enc = "image_encoder" in trains
        return cls(encoder_grad=enc, ppn=bool({"autoppn", "image_encoder"} & trains) and
                   getattr(model, "autoppn", None) is not None,
                   masks=enc or bool({"prompt_encoder", "mask_decoder"} & trains))


__all__ = ["PARTS", "normalise_freeze", "present_parts", "apply_freeze", "set_train_mode",
           "trainable_parameters", "LossPaths"]
