"""``load_model``: the one entry point from a model name or file to a model with its weights.

A source is either a file — this project's checkpoint or an official SAM / MobileSAM / TinySAM /
EfficientSAM file, recognised by its contents (``official.py``) — or a registry name (random
weights, seeded, for tests and export checks). ``source_kind`` makes that decision for every
caller (engines, node, demo, resources), so it is made in one place.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Union

import torch

from .checkpoint import (CHECKPOINT_SUFFIXES, _config, build_with_state, check_project_payload,
                         is_project_checkpoint, model_from_payload, read_torch_file,
                         save_checkpoint)
from .config import ModelConfig
from .official import FAMILY_NAMES, recognise
from .registry import UnknownModelError, build_model, get_config, list_models
from .sam_model import SamModel

log = logging.getLogger(__name__)

#: Settings a checkpoint may recommend for itself (metadata["thresholds"]), all in [0, 1];
#: names of ``segment.SegmentSettings`` fields. pred_iou_thresh is in the units of the
#: calibrated predicted IoU when the checkpoint records an IoU calibration (metadata
#: "iou_calibration"), of the raw head output otherwise.
THRESHOLD_NAMES = ("pred_iou_thresh", "stability_score_thresh", "ppn_score_thresh")

#: Seed of the random weights a bare registry name gets: every backend built from the same
#: name then holds the same weights.
REGISTRY_SEED = 0

Source = Union[str, "os.PathLike[str]", SamModel]


@dataclass
class LoadedModel:
    """A model in eval mode and where it came from.

    kind: "module" | "registry" | "checkpoint" (this project's) | "sam" | "mobile_sam" |
    "efficient_sam" (official files). model_id: a cache key naming the config and the weights.
    """

    model: SamModel
    kind: str
    model_id: str
    metadata: Dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def thresholds(self) -> Dict[str, float]:
        """The thresholds the weights' checkpoint records for itself (empty when none)."""
        return recommended_thresholds(self.metadata)

    @property
    def iou_calibration(self) -> Dict[str, float]:
        """{"scale", "bias"} of the IoU calibration the checkpoint records (empty when none:
        the raw predicted IoU is used as is)."""
        return iou_calibration(self.metadata)

    def describe(self) -> str:
        """One line for logs: the config and where its weights came from."""
        if self.kind == "registry":
            return f"{self.config.name} (RANDOM weights, seed {REGISTRY_SEED})"
        if self.kind in FAMILY_NAMES:
            return f"{self.config.name} (official {FAMILY_NAMES[self.kind]} file)"
        return self.config.name


def recommended_thresholds(metadata: Dict[str, Any]) -> Dict[str, float]:
    """``metadata["thresholds"]`` checked: known names with numbers in [0, 1] (others ignored)."""
    found = metadata.get("thresholds") if isinstance(metadata, dict) else None
    if not isinstance(found, dict):
        return {}
    out: Dict[str, float] = {}
    for name in THRESHOLD_NAMES:
        v = found.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0:
            out[name] = float(v)
    return out


def iou_calibration(metadata: Dict[str, Any]) -> Dict[str, float]:
    """``metadata["iou_calibration"]`` checked: {"scale": a, "bias": b}, both finite numbers
    (``segment.postprocess.calibrate_iou`` applies it), or {} when the checkpoint has none. A
    present but unusable entry is logged and ignored (the raw IoU is used)."""
    found = metadata.get("iou_calibration") if isinstance(metadata, dict) else None
    if found is None:
        return {}
    out: Dict[str, float] = {}
    if isinstance(found, dict):
        for name in ("scale", "bias"):
            v = found.get(name)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[name] = float(v)
    if len(out) != 2:
        log.warning("ignoring the checkpoint's iou_calibration %r: it needs finite numbers "
                    "'scale' and 'bias'", found)
        return {}
    return out


def source_kind(source: Union[str, "os.PathLike[str]"]) -> str:
    """"file" or "registry": an existing path or anything shaped like a file path is a file;
    a registered name is a registry name. Raises ValueError for neither."""
    text = os.fspath(source)
    if os.path.exists(text):
        return "file"
    try:
        get_config(text)
        return "registry"
    except UnknownModelError:
        pass
    if text.endswith(CHECKPOINT_SUFFIXES) or os.sep in text:
        return "file"  # loading it reports "no such file"
    raise ValueError(f"{text!r} is neither a model file nor a model name; known models: "
                     f"{', '.join(list_models())}")


def _file_sha256(path: Union[str, "os.PathLike[str]"], chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def weights_sha256(model: torch.nn.Module) -> str:
    """Hash of a module's state_dict (names, shapes, dtypes and values)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{list(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_file(path: Union[str, "os.PathLike[str]"], map_location: Any = "cpu") -> LoadedModel:
    """A model from a checkpoint file of any supported format (see the module docstring)."""
    payload = read_torch_file(path, "cpu")
    digest = _file_sha256(path)[:16]
    if is_project_checkpoint(payload) or (isinstance(payload, dict) and "format" in payload):
        model, cfg, meta = model_from_payload(path, check_project_payload(path, payload))
        kind = "checkpoint"
    else:
        cfg, state, kind = recognise(path, payload)
        model = build_with_state(path, cfg, state,
                                 f"{FAMILY_NAMES[kind]}'s {cfg.name!r} architecture")
        meta = {"imported_from": os.path.basename(os.fspath(path)), "family": kind}
    if map_location is not None:
        model.to(map_location)
    return LoadedModel(model.eval(), kind, f"{cfg.name}-{kind}-{digest}", meta)


def load_model(source: Source, map_location: Any = "cpu") -> LoadedModel:
    """A model in eval mode from a module, a model file, or a registry name.

    A registry name gives random weights seeded with REGISTRY_SEED (and logs a warning): the
    architecture without trained weights, for tests and export checks.
    """
    if isinstance(source, SamModel):
        return LoadedModel(source.eval(), "module",
                           f"{source.config.name}-{weights_sha256(source)[:16]}")
    if source_kind(source) == "file":
        return load_file(source, map_location)
    name = os.fspath(source)
    log.warning("model %r: no weights file given, using random weights (seed %d)", name,
                REGISTRY_SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(REGISTRY_SEED)
        model = build_model(name)
    if map_location is not None:
        model.to(map_location)
    return LoadedModel(model.eval(), "registry",
                       f"{name}-seed{REGISTRY_SEED}-{weights_sha256(model)[:16]}")


def inspect_source(source: Union[str, "os.PathLike[str]"]) -> tuple[ModelConfig, str, Dict[str, Any]]:
    """(config, kind, metadata) of a name or file without building the model; kinds as in
    LoadedModel. Raises CheckpointError / ValueError like load_model."""
    if source_kind(source) == "registry":
        return get_config(os.fspath(source)), "registry", {}
    payload = read_torch_file(source, "cpu")
    if isinstance(payload, dict) and "format" in payload:
        payload = check_project_payload(source, payload)
        return _config(source, payload), "checkpoint", dict(payload["metadata"])
    cfg, _, family = recognise(source, payload)
    return cfg, family, {"family": family}


def convert(source: Union[str, "os.PathLike[str]"], out: Union[str, "os.PathLike[str]"],
            half: bool = False) -> Path:
    """Write any loadable model file as this project's self-describing checkpoint (``half``:
    weights stored as float16, see ``save_checkpoint``)."""
    loaded = load_model(source)
    meta = dict(loaded.metadata)
    meta.pop("weights_dtype", None)  # what this file stores is said by ``half`` alone
    meta.setdefault("source_sha256_16", loaded.model_id.rsplit("-", 1)[-1])
    save_checkpoint(loaded.model, out, meta, half=half)
    return Path(out)


__all__ = ["LoadedModel", "REGISTRY_SEED", "THRESHOLD_NAMES", "recommended_thresholds",
           "iou_calibration", "load_model", "load_file", "source_kind", "convert",
           "inspect_source", "weights_sha256"]
