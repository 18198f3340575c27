"""Conversion between litesam_msgs messages and the pipeline's types (no node state here)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from litesam_msgs.msg import Instance3D, Instance3DArray, InstanceMask, InstanceMaskArray
from litesam_msgs.msg import Prompt as PromptMsg

from litesam_ros.segment import InvalidPromptError, Prompt, SegmentationResult


def prompts_from_msgs(msgs: Sequence[Any]) -> list[Prompt]:
    """litesam_msgs/Prompt messages -> pipeline Prompts; structural errors -> InvalidPromptError.

    Geometry (NaN, inside the image, box order) is checked by the pipeline, which knows the
    image size; here only what the flat message layout can get wrong.
    """
    prompts: list[Prompt] = []
    for index, msg in enumerate(msgs):
        coords = np.asarray(msg.points, dtype=np.float64)
        labels = np.asarray(msg.labels, dtype=np.int64)
        if len(coords) % 2:
            raise InvalidPromptError(
                f"prompt {index}: points holds {len(coords)} numbers; it must be x, y pairs")
        if len(labels) != len(coords) // 2:
            raise InvalidPromptError(
                f"prompt {index}: {len(coords) // 2} points but {len(labels)} labels")
        prompts.append(Prompt(
            points=coords.reshape(-1, 2) if len(coords) else None,
            labels=labels if len(coords) else None,
            box=np.asarray(msg.box, dtype=np.float64) if msg.has_box else None))
    return prompts


def prompt_to_msg(points: np.ndarray | None, labels: np.ndarray | None,
                  box: np.ndarray | None) -> Any:
    """A prompt (original pixels) as a litesam_msgs/Prompt message."""
    msg = PromptMsg()
    if points is not None and len(points):
        msg.points = np.asarray(points, dtype=np.float32).reshape(-1).tolist()
        msg.labels = np.asarray(labels, dtype=np.int8).reshape(-1).tolist()
    if box is not None:
        msg.has_box = True
        msg.box = np.asarray(box, dtype=np.float32).reshape(4)
    return msg


def result_to_msg(result: SegmentationResult, header: Any, *, strategy: str, model: str,
                  backend: str, inference_time: float, height: int, width: int,
                  track_ids: Sequence[int] | np.ndarray | None = None,
                  rles: Sequence[dict] | None = None) -> Any:
    """A SegmentationResult as an InstanceMaskArray (ids 1..N in result order; track_id from
    `track_ids`, 0 without; `rles`: the result's RLEs when already computed)."""
    out = InstanceMaskArray()
    out.header = header
    out.height, out.width = int(height), int(width)
    out.strategy, out.model, out.backend = strategy, model, backend
    out.inference_time = float(inference_time)
    n = len(result)
    none: list[np.ndarray | None] = [None] * n
    points: Sequence[np.ndarray | None] = result.prompt_points or none
    labels: Sequence[np.ndarray | None] = result.prompt_labels or none
    boxes: Sequence[np.ndarray | None] = result.prompt_boxes or none
    for i, rle in enumerate(rles if rles is not None else result.rles()):
        x0, y0, x1, y1 = (float(v) for v in result.boxes[i])
        pts = points[i]
        has_prompt = (pts is not None and len(pts) > 0) or boxes[i] is not None
        out.instances.append(InstanceMask(
            id=i + 1,
            track_id=int(track_ids[i]) if track_ids is not None else 0,
            score=float(result.iou_scores[i]),
            stability_score=float(result.stability_scores[i]),
            area=int(result.areas[i]),
            x_min=x0, y_min=y0, x_max=x1, y_max=y1,
            mask_rle_counts=rle["counts"],
            mask_height=int(rle["size"][0]), mask_width=int(rle["size"][1]),
            has_prompt=has_prompt,
            prompt=prompt_to_msg(pts, labels[i], boxes[i]) if has_prompt else PromptMsg(),
        ))
    return out


def _point(xyz: Any) -> Any:
    from geometry_msgs.msg import Point

    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def instances_3d_msgs(found: Sequence[Any], scores: Sequence[float],
                      track_ids: Sequence[int] | np.ndarray | None = None) -> list[Any]:
    """camera.depth3d.Instance3D list (result order) -> litesam_msgs/Instance3D messages with
    ids 1..N, the InstanceMask ids of the same frame."""
    return [Instance3D(
        id=i + 1, track_id=int(track_ids[i]) if track_ids is not None else 0,
        score=float(scores[i]), centroid=_point(inst.centroid), box_min=_point(inst.box_min),
        box_max=_point(inst.box_max), num_points=int(inst.n_points),
        valid_fraction=float(inst.valid_fraction)) for i, inst in enumerate(found)]


def instances_3d_to_msg(header: Any, depth_stamp_ns: int | None, instances: list[Any]) -> Any:
    """An Instance3DArray with the colour image's header."""
    out = Instance3DArray()
    out.header = header
    if depth_stamp_ns is not None:
        out.depth_stamp.sec, out.depth_stamp.nanosec = divmod(int(depth_stamp_ns), 1_000_000_000)
    out.instances = instances
    return out
