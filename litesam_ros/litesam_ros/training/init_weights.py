"""The few places where training touches model internals (raw AutoPPN heads, checkpoints,
weights carried into another config)."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import torch

from litesam_ros.model import (build_model, load_checkpoint, load_model, resolve_config,
                               save_checkpoint)
from litesam_ros.model.checkpoint import check_state_dict
from litesam_ros.model.registry import at_image_size

if TYPE_CHECKING:  # imported lazily at run time, as before
    from litesam_ros.model import PPNMaps, SamModel


def build(name_or_cfg: Any) -> SamModel:
    """Build a model by registered name (or config) through ``litesam_ros.model``."""
    return build_model(name_or_cfg)


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
    cfg = model_config(model)
    new = build(config_for(cfg, image_size))
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
    cfg = model_config(model)
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
    src_cfg = model_config(src)
    target = config_for(src_cfg if model is None else model, image_size)
    name = os.fspath(source)
    report = InitReport(name, loaded.kind, src_cfg.name, target.name)
    fresh: List[str] = []
    if target == src_cfg:
        out, keys = src, list(src.state_dict())
    else:
        out = build(target)
        keys, fresh = transfer_weights(src.state_dict(), out, name)
        a, b = src_cfg.to_dict(), target.to_dict()
        report.config_differences = [
            f"{k} (file: {a[k]}, model: {b[k]})" for k in a
            if a[k] != b[k] and k not in _HEAD_FIELDS and not k.startswith("ppn_")
            and not (k == "mspm_kernels" and target.encoder != "litevit")]
    report.loaded, report.fresh = _count(keys), _count(fresh)
    return out, report


def attention_layers(model: SamModel) -> List[Tuple[torch.nn.Linear, torch.nn.Linear]]:
    """(q_proj, k_proj) of every attention layer of the mask decoder: SAM's and EfficientSAM's
    decoders both name their projections so."""
    root = getattr(model.mask_decoder, "transformer", model.mask_decoder)
    out = []
    for m in root.modules():
        q, k = getattr(m, "q_proj", None), getattr(m, "k_proj", None)
        if isinstance(q, torch.nn.Linear) and isinstance(k, torch.nn.Linear):
            out.append((q, k))
    return out


def tie_attention_qk(model: SamModel, gain: float) -> int:
    """Initialise every decoder attention layer with ``k_proj = q_proj`` (times ``gain``).

    From scratch, SAM's decoder finds a shortcut: it predicts "objectness" from the image and
    ignores the prompt (measured here: masks identical for every prompt after 4,600 steps). With
    tied projections, q.k starts out as a scaled dot product of the positional encodings, so a
    prompt token attends near its own position from step 0 and the prompt path gets a gradient.
    Returns the number of attention layers changed. Training-time init only.
    """
    layers = attention_layers(model)
    name = model_config(model).name
    if not layers:
        raise ValueError(f"qk_tied_init: no decoder attention layers in model {name!r}")
    if any(q.weight.shape != k.weight.shape for q, k in layers):
        raise ValueError(f"qk_tied_init: q_proj and k_proj differ in shape in model {name!r}")
    with torch.no_grad():
        for q, k in layers:
            q.weight.mul_(gain)
            k.weight.copy_(q.weight)
            q.bias.zero_()
            k.bias.zero_()
    n = len(layers)
    return n


def model_config(model: SamModel) -> Any:
    """The model's :class:`ModelConfig` (attribute ``config`` or ``cfg``)."""
    return getattr(model, "config", None) or getattr(model, "cfg")


def encode_raw(model: SamModel, images: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image embedding [B,C,E,E], AutoPPN heatmap logits [B,3,E,E], boxes [B,E,E,4] xyxy pixels
    (``SamModel.encode_raw``; the trainer uses :func:`encode_for_training`)."""
    return model.encode_raw(images)


def encode_maps_for_training(model: SamModel, images: torch.Tensor, encoder_grad: bool = True,
                             heads: bool = True) -> Tuple[torch.Tensor, Optional[PPNMaps]]:
    """(embedding [B,C,E,E], the raw AutoPPN maps or None): heatmap logits, boxes and, for a
    head with ``ppn_offsets``, the sub-cell offsets.

    ``encoder_grad`` False runs the image encoder under ``no_grad`` (frozen encoder: no graph,
    less memory); ``heads`` False skips the AutoPPN head (frozen, or the model has none).
    """
    with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
        emb = model.encode_image(images)
    if not heads:
        return emb, None
    if model.autoppn is None:
        raise ValueError(f"model {model_config(model).name!r} has no AutoPPN head")
    return emb, model.autoppn(emb)


def encode_for_training(model: SamModel, images: torch.Tensor, encoder_grad: bool = True,
                        heads: bool = True
                        ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
    """(embedding [B,C,E,E], AutoPPN heatmap logits [B,G,E,E] or None, boxes [B,E,E,4] or None)
    (:func:`encode_maps_for_training` without the offsets)."""
    emb, maps = encode_maps_for_training(model, images, encoder_grad, heads)
    if maps is None:
        return emb, None, None
    return emb, maps.heatmap_logits, maps.boxes


def save(model: SamModel, path: str, meta: Optional[Dict[str, Any]] = None) -> None:
    """Write the model checkpoint in the model package's format (atomic there)."""
    # plain str: torch.__version__ is a TorchVersion that weights_only loading rejects
    save_checkpoint(model, path, meta={"torch_version": str(torch.__version__), **(meta or {})})


def load(path: str, device: str = "cpu") -> SamModel:
    """Load a model from a checkpoint written by :func:`save`."""
    model = load_checkpoint(path, map_location=device)
    return model[0] if isinstance(model, tuple) else model


def load_with_meta(path: str, device: str = "cpu") -> Tuple[SamModel, Dict[str, Any]]:
    """(model, metadata) of a checkpoint written by :func:`save`."""
    model, meta = load_checkpoint(path, map_location=device)
    return model, dict(meta)


def load_any(source: str, device: str = "cpu") -> SamModel:
    """A model from anything ``load_model`` accepts (project checkpoint, official file)."""
    return load_model(source, device).model
