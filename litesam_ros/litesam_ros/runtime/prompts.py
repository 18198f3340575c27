"""Prompt requests on the runtime's model (any thread): on a given image, or on the newest
good frame, whose cached embedding is reused when the model holds it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..segment import Prompt, SegmentationResult, SegmentError, check_image
from .frames import Frame, LatestFrames
from .model_slot import ModelSlot, RuntimeStopped


class NoFrameError(SegmentError):
    """A prompt request without an image, and no good frame has been received yet."""


class PromptAnswer(NamedTuple):
    """The result of a prompt request and what it ran on."""

    result: SegmentationResult
    frame: Frame | None  # the newest frame the prompts ran on; None when an image was given
    reused: bool         # the frame's cached embedding was used (the encoder did not run)
    image_hw: tuple[int, int]


def answer_prompts(model: ModelSlot, latest: LatestFrames, prompts: Sequence[Prompt],
                   image: np.ndarray | None = None, *, multimask: bool = False,
                   source: str | None = None) -> PromptAnswer:
    """One instance per prompt. With `image`: that image is encoded. Without: the newest good
    frame (of `source`, or of any source), whose embedding is reused when the model holds it.
    Raises SegmentError subclasses (NoFrameError, RuntimeStopped, InvalidImageError,
    InvalidPromptError) for requests it cannot serve."""
    if image is not None:
        image = check_image(image)
    with model.lock:
        segmenter = model.segmenter
        if segmenter is None:
            raise RuntimeStopped("no model loaded: the runtime is stopped")
        frame = None
        if image is None:
            # Chosen under the lock: after waiting for a frame in progress, the newest frame
            # is most likely the one just encoded.
            frame = latest.get(source)
            if frame is None or frame.rgb is None:
                where = f" from {source!r}" if source is not None else ""
                raise NoFrameError(f"no image given and no camera frame received{where} yet")
            image = frame.rgb
        reuse = frame is not None and model.encoded == frame.serial and segmenter.has_image
        if not reuse:
            model.encoded = None
        result = segmenter.segment_prompts(None if reuse else image, prompts,
                                           multimask=multimask)
        model.encoded = frame.serial if frame is not None else None
    hw = (int(image.shape[0]), int(image.shape[1]))
    return PromptAnswer(result, frame, reuse, hw)


__all__ = ["NoFrameError", "PromptAnswer", "answer_prompts"]
