"""Loading the node's model at configure: backend, Segmenter, thresholds, and what to log.

Every failure is one error line naming the model and the cause (a bad checkpoint's message
names the file); the node then fails its configure transition and keeps running.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from litesam_ros.engines import create_backend
from litesam_ros.model import CheckpointError, source_kind
from litesam_ros.model.resources import default_model, weights_status
from litesam_ros.ros.parameters import resolve_thresholds, segment_settings
from litesam_ros.segment import SegmentError, Segmenter

_SOURCES = {"parameter": "set by parameter", "model": "recorded in the model's checkpoint",
            "default": "SAM's default"}


class ConfiguredModel(NamedTuple):
    """What configure made of the model parameters (not model.LoadedModel: a file's weights)."""

    segmenter: Segmenter
    model: str    # what the 'model' parameter resolved to
    backend: str  # the backend's name


def cache_dir(value: str) -> str:
    """The engine cache folder: the parameter, else $ROS_HOME/litesam_cache."""
    if value:
        return value
    ros_home = os.environ.get("ROS_HOME") or str(Path.home() / ".ros")
    return str(Path(ros_home) / "litesam_cache")


def configure_model(values: dict[str, Any], logger: Any) -> ConfiguredModel | None:
    """The Segmenter the parameters ask for (model, backend, thresholds), or None after logging
    why not."""
    model = values["model"] or default_model()
    try:
        backend = create_backend(kind=values["backend"], model=model,
                                 precision=values["precision"],
                                 cache_dir=cache_dir(values["engine_cache_dir"]),
                                 encoder_batch=int(values["encoder_batch"]))
    except CheckpointError as exc:  # its message names the file and the cause
        logger.error(f"cannot load model: {exc}")
        return None
    except Exception as exc:  # noqa: BLE001 - any load failure is reported once, clearly
        logger.error(f"cannot load model {model!r}: {exc}")
        return None
    try:
        segmenter = Segmenter(backend, segment_settings(values, backend.model_thresholds))
        sources = resolve_thresholds(values, backend.model_thresholds)
    except (SegmentError, ValueError) as exc:
        logger.error(f"cannot configure model {model!r}: {exc}")
        return None
    logger.info("thresholds: " + ", ".join(
        f"{name} {value:g} ({_SOURCES[source]})" for name, (value, source) in sources.items()))
    if source_kind(model) == "registry":
        logger.warning(f"no trained weights found: running {model} with RANDOM weights; masks "
                       "are meaningless. Set the 'model' parameter to a checkpoint.")
    logger.info(f"model {model} on backend {backend.name}")
    status = weights_status(model)
    if status:
        logger.warning(f"model card of {model}: {status}")
    return ConfiguredModel(segmenter, model, backend.name)


def free_accelerator_memory() -> None:
    """Give cached GPU memory back after the model is released (no-op without CUDA)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
