"""A training run's starting weights: a model config at a size, weights carried into another
config (``transfer_weights``, ``init_model`` with its ``InitReport``) or another input size."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

import torch

from litesam_ros.model import build_model, load_model, resolve_config
from litesam_ros.model.checkpoint import check_state_dict
from litesam_ros.model.registry import at_image_size

if TYPE_CHECKING:
    from litesam_ros.model import SamModel


def config_for(name_or_cfg: Any, image_size: int = 0) -> Any:
    """The model config for ``name_or_cfg``, at ``image_size`` if given (non-zero; the name
    then says the size: ``registry.at_image_size``)."""
    cfg = resolve_config(name_or_cfg)
    return at_image_size(cfg, image_size) if image_size else cfg


def resized(model: SamModel, image_size: int) -> SamModel:
    """The same weights in a model built for another input size.

    LiteViT, TinyViT and EfficientSAM's ViT have size-free weights; SAM's ViT does not (its
    ``pos_embed`` and global ``rel_pos`` tables), and that raises ValueError naming the keys.
    """
    cfg = model.config
    new = build_model(config_for(cfg, image_size))
    transfer_weights(model.state_dict(), new, f"{cfg.name} at {cfg.image_size} px")
    return new


#: Config fields that only describe the AutoPPN head (or the model's identity / input size,
#: whose weight effects the shape check catches); other differences are reported on init.
_HEAD_FIELDS = ("name", "autoppn", "image_size", "layer_scale_init")


#: State-dict prefix of the AutoPPN sub-cell offset head (config ``ppn_offsets``).
_OFFSET_HEAD = "autoppn.offset_head."


def _part(key: str) -> str:
    return key.split(".", 1)[0]


def transfer_weights(state: Dict[str, torch.Tensor], model: SamModel, source: str
                     ) -> Tuple[List[str], List[str]]:
    """Load ``state`` into ``model`` exactly, except an AutoPPN head ``state`` lacks entirely,
    which keeps ``model``'s (random) initialisation. Returns (loaded keys, fresh keys).

    Every other key must be in ``state`` with the same shape, and ``state`` may hold no key the
    model lacks; otherwise ValueError names the keys (``source`` says where they came from).
    """
    cfg = model.config
    target = model.state_dict()
    fresh: List[str] = []
    if not any(_part(k) == "autoppn" for k in state):
        fresh = [k for k in target if _part(k) == "autoppn"]
    elif not any(_part(k) == "autoppn" for k in target):
        raise ValueError(f"{source} has an AutoPPN head but model {cfg.name!r} has none "
                         "(use a config with autoppn: true, or leave model: unset)")
    elif not any(k.startswith(_OFFSET_HEAD) for k in state):
        # an AutoPPN head from before sub-cell offsets (ppn_offsets): the offset head starts
        # fresh (its last layer at zero: cell centres until it trains)
        fresh = [k for k in target if k.startswith(_OFFSET_HEAD)]
    full = dict(state)
    full.update({k: target[k] for k in fresh})
    try:
        check_state_dict(source, model, full, f"model {cfg.name!r}")
    except ValueError as exc:
        hint = ""
        if cfg.encoder == "sam_vit":
            hint = (" (SAM ViT weights depend on image_size: pos_embed and the global "
                    "blocks' rel_pos; train at the weights' own image_size)")
        raise ValueError(f"{exc}{hint}") from None
    model.load_state_dict(full, strict=True)
    return [k for k in target if k not in fresh], fresh


@dataclass
class InitReport:
    """Where the starting weights came from (``init_from``), per top-level module."""

    source: str
    kind: str  # load_model's kind: checkpoint / sam / mobile_sam / efficient_sam / registry
    source_config: str
    model_config: str
    loaded: Dict[str, int] = field(default_factory=dict)  # module -> tensors from the file
    fresh: Dict[str, int] = field(default_factory=dict)  # module -> tensors randomly initialised
    config_differences: List[str] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for the log: what came from the file, what starts fresh."""
        parts = ", ".join(f"{m} ({n} tensors)" for m, n in self.loaded.items())
        lines = [f"init_from {self.source} ({self.kind}, config {self.source_config!r}) -> "
                 f"model {self.model_config!r}: loaded exactly from the file: {parts}"]
        if self.fresh:
            fresh = ", ".join(f"{m} ({n} tensors)" for m, n in self.fresh.items())
            lines.append(f"not in the file, randomly initialised (starts fresh): {fresh}")
        if self.config_differences:
            lines.append("the model config differs from the file's in "
                         + "; ".join(self.config_differences))
        return "\n".join(lines)

    def to_meta(self) -> Dict[str, Any]:
        """Plain values for checkpoint metadata."""
        return dataclasses.asdict(self)


def _count(keys: List[str]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for k in keys:
        out[_part(k)] = out.get(_part(k), 0) + 1
    return out


def init_model(source: str, model: Any = None, image_size: int = 0
               ) -> Tuple[SamModel, InitReport]:
    """The model to train, with weights from ``source`` (anything ``load_model`` accepts).

    ``model`` None: the source's own config (at ``image_size`` if non-zero). Otherwise the
    config ``model`` names (registered name, ModelConfig or dict), with the source's weights
    loaded exactly into every part; an AutoPPN head the source lacks (official files never
    have one) starts from random initialisation (seed torch first).
    """
    loaded = load_model(source, "cpu")
    src = loaded.model
    src_cfg = src.config
    target = config_for(src_cfg if model is None else model, image_size)
    name = os.fspath(source)
    report = InitReport(name, loaded.kind, src_cfg.name, target.name)
    fresh: List[str] = []
    if target == src_cfg:
        out, keys = src, list(src.state_dict())
    else:
        out = build_model(target)
        keys, fresh = transfer_weights(src.state_dict(), out, name)
        a, b = src_cfg.to_dict(), target.to_dict()
        report.config_differences = [
            f"{k} (file: {a[k]}, model: {b[k]})" for k in a
            if a[k] != b[k] and k not in _HEAD_FIELDS and not k.startswith("ppn_")
            and not (k == "mspm_kernels" and target.encoder != "litevit")]
    report.loaded, report.fresh = _count(keys), _count(fresh)
    return out, report


__all__ = ["config_for", "resized", "transfer_weights", "InitReport", "init_model"]
