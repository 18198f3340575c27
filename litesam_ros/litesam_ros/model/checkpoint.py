"""One-file checkpoints: format tag + version, config (name and full dict), state_dict, metadata.

Files are written with ``torch.save`` and read with ``torch.load(weights_only=True)``, so they hold
only tensors and plain str/int/float/bool/None/list/dict values. Every problem found on loading
raises :class:`CheckpointError` with one message: ``"<path>: <problem>"``.
"""
from __future__ import annotations

import datetime
import os
import pickle
import re
import sys
import zipfile
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch

from .config import ModelConfig
from .sam_model import SamModel

CHECKPOINT_FORMAT = "litesam_ros.model.checkpoint"
#: 2: configs of the SAM family (encoder, decoder, geometry fields); 3: ``ppn_offsets`` (a
#: version-2 reader would refuse the field as unknown: the version says why instead)
CHECKPOINT_VERSION = 3
#: File suffixes taken as checkpoint paths (rather than registry names) by every caller.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
_REQUIRED = ("format", "version", "config_name", "config", "state_dict", "metadata")
_PLAIN = (str, int, float, bool, type(None))

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; ``str()`` names the file and the problem."""

    def __init__(self, path: PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _package_version() -> str:
    pkg = sys.modules.get("litesam_ros")
    return str(getattr(pkg, "__version__", "unknown"))


def _check_plain(value: Any, where: str) -> None:
    """Reject values that torch.load(weights_only=True) could not read back."""
    if type(value) in _PLAIN:  # exact types: a str subclass (TorchVersion) would not load
        return
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(f"{where}: keys must be str, got {k!r}")
            _check_plain(v, f"{where}.{k}")
        return
    raise TypeError(f"{where}: {type(value).__name__} is not a plain value "
                    "(use str/int/float/bool/None/list/dict)")


def save_checkpoint(model: SamModel, path: PathLike,
                    meta: Optional[Mapping[str, Any]] = None, half: bool = False) -> None:
    """Write ``model`` to ``path`` (atomically, via a temporary file in the same folder).

    ``meta``: plain values, e.g. {"trained_on": "synthetic", "steps": 2000}; the litesam_ros
    and torch versions and the UTC time are added unless given. ``half``: floating-point
    tensors stored as float16 (half the file; loading casts them back to the model's float32),
    recorded as ``weights_dtype`` in the metadata.
    """
    metadata: Dict[str, Any] = {
        "litesam_ros_version": _package_version(),
        "torch_version": str(torch.__version__),
        "saved_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    metadata.update(dict(meta or {}))
    if half:
        metadata["weights_dtype"] = "float16"
    _check_plain(metadata, "meta")
    cfg: ModelConfig = model.config
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config_name": cfg.name,
        "config": cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().half() if half and v.is_floating_point()
                       else v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata,
    }
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _load_failure(exc: BaseException, limit: int = 160) -> str:
    """A one-line reason from a torch.load error (whose own message spans many lines)."""
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it pickles a {found.group(1)}, which weights_only loading refuses"
    lines = [t.strip() for t in text.splitlines() if t.strip()]
    for i, line in enumerate(lines):
        if line.startswith("WeightsUnpickler error:"):
            rest = line[len("WeightsUnpickler error:"):].strip()
            line = rest or (lines[i + 1] if i + 1 < len(lines) else line)
            break
    else:
        line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "..."


def _names(keys: List[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def read_torch_file(path: PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)`` of a file, every failure as one CheckpointError line.

    weights_only: a model file is data; loading it never runs code from it.
    """
    if not os.path.exists(path):
        raise CheckpointError(path, "no such file")
    if os.path.isdir(path):
        raise CheckpointError(path, "is a directory, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(path, f"cannot read it: {exc.strerror or exc}") from exc
    if not head:
        raise CheckpointError(path, "empty file, not a checkpoint")
    if not zipfile.is_zipfile(path):
        kind = "truncated or damaged torch.save archive" if head == b"PK\x03\x04" else \
            "not a torch.save archive"
        raise CheckpointError(path, f"not a checkpoint ({kind})")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(path, "not a checkpoint (torch.load failed: "
                                    f"{_load_failure(exc)})") from exc
    except Exception as exc:  # noqa: BLE001 - e.g. a map_location this machine lacks
        raise CheckpointError(path, f"torch.load failed: {_load_failure(exc)}") from exc


def is_project_checkpoint(payload: Any) -> bool:
    """Whether a loaded payload is this project's format (tagged dict)."""
    return isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT


def _read(path: PathLike, map_location: Any) -> Dict[str, Any]:
    """Load and check the outer structure; returns the payload dict."""
    return check_project_payload(path, read_torch_file(path, map_location))


def check_project_payload(path: PathLike, payload: Any) -> Dict[str, Any]:
    """The payload of this project's format, checked; CheckpointError otherwise."""
    if not isinstance(payload, dict):
        raise CheckpointError(path, "not a litesam_ros checkpoint (holds a "
                                    f"{type(payload).__name__}, not a dict)")
    if "format" not in payload:
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            raise CheckpointError(path, "is a plain state_dict, not a litesam_ros checkpoint "
                                        "(no format tag or config); write it with "
                                        "litesam_ros.model.save_checkpoint")
        raise CheckpointError(path, "not a litesam_ros checkpoint (no 'format' tag)")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"wrong format tag {payload['format']!r} "
                                    f"(expected {CHECKPOINT_FORMAT!r})")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(path, f"format version {version!r} is not an integer")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(path, f"format version {version} is newer than this litesam_ros "
                                    f"reads ({CHECKPOINT_VERSION})")
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise CheckpointError(path, f"checkpoint lacks {', '.join(missing)}")
    if not isinstance(payload["metadata"], dict):
        raise CheckpointError(path, "metadata is not a dict")
    return payload


def _config(path: PathLike, payload: Dict[str, Any]) -> ModelConfig:
    name = payload["config_name"]
    if not isinstance(name, str):
        raise CheckpointError(path, f"config_name {name!r} is not a string")
    try:
        cfg = ModelConfig.from_dict(payload["config"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(path, f"invalid config {name!r}: {exc}") from exc
    if cfg.name != name:
        raise CheckpointError(path, f"config_name {name!r} does not match the stored "
                                    f"config's name {cfg.name!r}")
    return cfg


def check_state_dict(path: PathLike, model: torch.nn.Module, state: Mapping[str, Any],
                     what: str) -> None:
    """Raise CheckpointError unless ``state`` has exactly ``model``'s keys and shapes; the
    message names the first missing / unexpected / mis-shaped keys (with both shapes)."""
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shaped = [f"{k} {list(state[k].shape)} in the file vs {list(v.shape)} in the model"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if shaped:
        problems.append(f"{len(shaped)} mis-shaped keys ({_names(shaped, 2)})")
    if missing:
        problems.append(f"{len(missing)} missing keys ({_names(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_names(unexpected)})")
    if problems:
        raise CheckpointError(path, f"weights do not fit {what}: " + "; ".join(problems))


def read_checkpoint_header(path: PathLike) -> Tuple[ModelConfig, Dict[str, Any]]:
    """(config, metadata) of a checkpoint without building the model."""
    payload = _read(path, "cpu")
    return _config(path, payload), payload["metadata"]


def model_from_payload(path: PathLike, payload: Dict[str, Any]
                       ) -> Tuple[SamModel, ModelConfig, Dict[str, Any]]:
    """(model with the stored weights, config, metadata) of a checked project payload.

    Shapes are checked on the meta device first, so a file that does not fit its config is
    refused before a large model is allocated.
    """
    cfg = _config(path, payload)
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(path, "state_dict is not a dict of named tensors")
    return build_with_state(path, cfg, state, f"its config {cfg.name!r}"), cfg, \
        dict(payload["metadata"])


def build_with_state(path: PathLike, cfg: ModelConfig, state: Mapping[str, torch.Tensor],
                     what: str) -> SamModel:
    """The model of ``cfg`` with ``state`` loaded exactly (shapes checked before building)."""
    with torch.device("meta"):
        shell = SamModel(cfg)
    check_state_dict(path, shell, state, what)
    model = SamModel(cfg)
    model.load_state_dict(state, strict=True)
    return model


def load_checkpoint(path: PathLike, map_location: Any = "cpu"
                    ) -> Tuple[SamModel, Dict[str, Any]]:
    """Build the stored model, load its weights exactly, return (model in eval mode, metadata).

    This project's format only; ``loading.load_model`` also reads the official files.
    """
    model, _, meta = model_from_payload(path, _read(path, map_location))
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval(), meta


__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_SUFFIXES", "CHECKPOINT_VERSION", "CheckpointError",
           "save_checkpoint", "load_checkpoint", "read_checkpoint_header", "read_torch_file",
           "is_project_checkpoint", "check_project_payload", "check_state_dict",
           "model_from_payload", "build_with_state"]
