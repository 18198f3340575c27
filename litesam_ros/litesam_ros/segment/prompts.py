"""Prompts for prompted segmentation: dataclass, validation and encoding to decoder inputs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..model.geometry import Geometry
from .errors import InvalidPromptError

#: Decoder point labels (SAM convention).
LABEL_BACKGROUND, LABEL_FOREGROUND, LABEL_BOX_TL, LABEL_BOX_BR, LABEL_PAD = 0, 1, 2, 3, -1


@dataclass
class Prompt:
    """One prompt in original image pixels: points [K,2] (x, y) with labels [K] (1 fg, 0 bg)
    and/or a box [x0, y0, x1, y1]."""

    points: Optional[Any] = None
    labels: Optional[Any] = None
    box: Optional[Any] = None


@dataclass(frozen=True)
class CheckedPrompt:
    """A validated prompt as float32 arrays (points [K,2], labels [K], box [4] or None)."""

    points: np.ndarray
    labels: np.ndarray
    box: Optional[np.ndarray]


def _array(value: Any, what: str, index: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPromptError(f"prompt {index}: {what} is not numeric: {exc}") from None
    if not np.all(np.isfinite(arr)):
        raise InvalidPromptError(f"prompt {index}: {what} contains NaN or infinity")
    return arr


def _check_inside(xy: np.ndarray, hw: tuple[int, int], what: str, index: int) -> None:
    h, w = hw
    bad = (xy[..., 0] < 0) | (xy[..., 0] > w) | (xy[..., 1] < 0) | (xy[..., 1] > h)
    if np.any(bad):
        raise InvalidPromptError(
            f"prompt {index}: {what} {xy[bad][0].tolist()} lies outside the {w}x{h} image")


def check_prompt(prompt: Prompt, image_hw: tuple[int, int], index: int = 0) -> CheckedPrompt:
    """Validate one prompt against an image of size ``image_hw``; raise InvalidPromptError."""
    if not isinstance(prompt, Prompt):
        raise InvalidPromptError(f"prompt {index}: expected a Prompt, got {type(prompt).__name__}")
    points = np.zeros((0, 2), dtype=np.float32)
    labels = np.zeros((0,), dtype=np.float32)
    if prompt.points is not None:
        pts = _array(prompt.points, "points", index)
        if pts.size == 0:
            pts = pts.reshape(0, 2)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise InvalidPromptError(
                f"prompt {index}: points must have shape [K, 2], got {list(pts.shape)}")
        if prompt.labels is None:
            if len(pts):
                raise InvalidPromptError(f"prompt {index}: {len(pts)} points but no labels")
            lab = np.zeros((0,))
        else:
            lab = _array(prompt.labels, "labels", index).reshape(-1)
        if len(lab) != len(pts):
            raise InvalidPromptError(
                f"prompt {index}: {len(pts)} points but {len(lab)} labels")
        if not np.all(np.isin(lab, (LABEL_BACKGROUND, LABEL_FOREGROUND))):
            raise InvalidPromptError(
                f"prompt {index}: labels must be 1 (foreground) or 0 (background), "
                f"got {sorted(set(lab.tolist()))}")
        _check_inside(pts, image_hw, "point", index)
        points, labels = pts.astype(np.float32), lab.astype(np.float32)
    elif prompt.labels is not None and len(np.atleast_1d(np.asarray(prompt.labels))):
        raise InvalidPromptError(f"prompt {index}: labels given without points")
    box: Optional[np.ndarray] = None
    if prompt.box is not None:
        b = _array(prompt.box, "box", index).reshape(-1)
        if b.shape != (4,):
            raise InvalidPromptError(
                f"prompt {index}: box must be [x0, y0, x1, y1], got {b.size} values")
        if b[2] <= b[0] or b[3] <= b[1]:
            raise InvalidPromptError(
                f"prompt {index}: box {b.tolist()} is inverted or empty (need x0 < x1, y0 < y1)")
        _check_inside(b.reshape(2, 2), image_hw, "box corner", index)
        box = b.astype(np.float32)
    if len(points) == 0 and box is None:
        raise InvalidPromptError(f"prompt {index}: has neither points nor a box")
    return CheckedPrompt(points, labels, box)


def check_prompts(prompts: Sequence[Prompt], image_hw: tuple[int, int],
                  max_prompts: int, max_points: Optional[int] = None) -> list[CheckedPrompt]:
    """Validate a batch of prompts (at most max_prompts, each with at most max_points points);
    raise InvalidPromptError naming the first problem."""
    if prompts is None or isinstance(prompts, Prompt):
        raise InvalidPromptError("prompts must be a sequence of Prompt")
    prompts = list(prompts)
    if not prompts:
        raise InvalidPromptError("no prompts given")
    if len(prompts) > max_prompts:
        raise InvalidPromptError(f"{len(prompts)} prompts given, at most {max_prompts} allowed")
    checked = [check_prompt(p, image_hw, i) for i, p in enumerate(prompts)]
    for i, c in enumerate(checked):
        if max_points is not None and len(c.points) > max_points:
            raise InvalidPromptError(
                f"prompt {i}: {len(c.points)} points, at most {max_points} allowed")
    return checked


def prompt_rows(prompts: Sequence[CheckedPrompt], original_hw: tuple[int, int],
                geometry: Geometry) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each checked prompt as decoder points [K_i,2] (input frame) and labels [K_i].

    A box becomes two corner points (labels 2, 3); a prompt without a box gets one padding
    point (label -1), as SAM's prompt encoder expects.
    """
    rows: list[tuple[np.ndarray, np.ndarray]] = []
    for p in prompts:
        pts = geometry.coords_to_input(p.points, original_hw).reshape(-1, 2)
        lab = p.labels.reshape(-1)
        if p.box is not None:
            corners = geometry.boxes_to_input(p.box, original_hw).reshape(2, 2)
            pts = np.concatenate([pts, corners])
            lab = np.concatenate([lab, [LABEL_BOX_TL, LABEL_BOX_BR]])
        else:
            pts = np.concatenate([pts, np.zeros((1, 2), np.float32)])
            lab = np.concatenate([lab, [LABEL_PAD]])
        rows.append((pts.astype(np.float32), lab.astype(np.float32)))
    return rows


def stack_rows(rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of possibly different K -> coords [P,K,2], labels [P,K], padded with label -1.

    Padding points are real tokens in SAM's decoder, so a prompt's mask can change with K:
    the Segmenter decodes prompts grouped by their own K and never pads.
    """
    k = max(len(lab) for _, lab in rows)
    coords = np.zeros((len(rows), k, 2), dtype=np.float32)
    labels = np.full((len(rows), k), LABEL_PAD, dtype=np.float32)
    for i, (pts, lab) in enumerate(rows):
        coords[i, : len(pts)] = pts
        labels[i, : len(lab)] = lab
    return coords, labels


def encode_prompts(prompts: Sequence[CheckedPrompt], original_hw: tuple[int, int],
                   geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Checked prompts -> decoder inputs in the input frame: coords [P,K,2], labels [P,K]."""
    return stack_rows(prompt_rows(prompts, original_hw, geometry))
