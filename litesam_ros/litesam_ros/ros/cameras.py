"""Which cameras the node serves, from its parameters (plain Python: no rclpy here).

One camera (``image_topics`` empty, or one entry): ``image_topic`` (or that entry), its
``depth_topic`` and ``camera_info_topic``, outputs ``~/instances``, ``~/label_image`` ... as
they always were. Two or more: one camera per entry of ``image_topics``, named by
``camera_names`` or, when that is empty, by the first namespace segment of each topic
(``/front/color/image_raw`` -> ``front``); when those are not unique (or a topic has a single
segment) by the whole topic with ``/`` as ``_`` (``/left/image`` and ``/right/image`` give
``left``, ``right``; ``image_a`` and ``/cam/image_b`` give ``image_a``, ``cam_image_b``). Each
camera's outputs are ``~/<name>/instances``, ``~/<name>/label_image`` ...; its depth topics come
from ``depth_topics`` and ``camera_info_topics``, parallel to ``image_topics`` (empty = no 3D
for any; ``""`` = none for that camera).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class CameraSpec:
    """One camera: its name ("" for the single camera), topics and output prefix."""

    name: str
    image_topic: str
    depth_topic: str = ""
    camera_info_topic: str = ""

    @property
    def prefix(self) -> str:
        """Where its outputs go: "~/" (single camera) or "~/<name>/"."""
        return f"~/{self.name}/" if self.name else "~/"

    @property
    def source(self) -> str:
        """The runtime's source name of this camera: its name, or its topic when single."""
        return self.name or self.image_topic

    @property
    def has_depth(self) -> bool:
        return bool(self.depth_topic)


def _segments(topic: str) -> list[str]:
    return [s for s in topic.strip().split("/") if s and s != "~"]


def _sanitise(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return name if name and not name[0].isdigit() else f"cam_{name}"


def camera_names(topics: list[str]) -> list[str]:
    """Names for several image topics (see the module docstring)."""
    firsts = [_segments(t)[0] if len(_segments(t)) >= 2 else "" for t in topics]
    if all(firsts) and len(set(firsts)) == len(firsts):
        return [_sanitise(f) for f in firsts]
    names = [_sanitise("_".join(_segments(t))) for t in topics]
    if len(set(names)) != len(names):
        raise ValueError(f"image_topics {topics} do not give distinct camera names: set "
                         "camera_names")
    return names


def cameras_from_values(values: dict[str, Any]) -> list[CameraSpec]:
    """The cameras of a parameter set; ValueError says what is inconsistent."""
    topics = [str(t) for t in (values.get("image_topics") or [])]
    names = [str(n) for n in (values.get("camera_names") or [])]
    depths = [str(t) for t in (values.get("depth_topics") or [])]
    infos = [str(t) for t in (values.get("camera_info_topics") or [])]
    if any(not t.strip() for t in topics):
        raise ValueError(f"image_topics has an empty entry: {topics}")
    if len(topics) <= 1:
        for listed, what in ((names, "camera_names"), (depths, "depth_topics"),
                             (infos, "camera_info_topics")):
            if len(listed) > 1:
                raise ValueError(f"{what} has {len(listed)} entries for one camera")
        image = topics[0] if topics else str(values["image_topic"])
        depth = depths[0] if depths else str(values.get("depth_topic", ""))
        info = infos[0] if infos else str(values.get("camera_info_topic", ""))
        return [CameraSpec("", image, depth, info)]
    if values.get("depth_topic") or values.get("camera_info_topic"):
        raise ValueError("with several image_topics give depth as depth_topics and "
                         "camera_info_topics (parallel to image_topics), not depth_topic / "
                         "camera_info_topic")
    for listed, what in ((names, "camera_names"), (depths, "depth_topics"),
                         (infos, "camera_info_topics")):
        if listed and len(listed) != len(topics):
            raise ValueError(f"{what} has {len(listed)} entries but image_topics has "
                             f"{len(topics)}: give one per camera (or none)")
    if names:
        bad = [n for n in names if not _NAME.match(n)]
        if bad:
            raise ValueError(f"camera_names must be ROS name tokens ([A-Za-z_][A-Za-z0-9_]*): "
                             f"{bad}")
        if len(set(names)) != len(names):
            raise ValueError(f"camera_names are not distinct: {names}")
    else:
        names = camera_names(topics)
    return [CameraSpec(names[i], topics[i], depths[i] if depths else "",
                       infos[i] if infos else "") for i in range(len(topics))]


__all__ = ["CameraSpec", "camera_names", "cameras_from_values"]
