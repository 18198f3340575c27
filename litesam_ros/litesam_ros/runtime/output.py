"""What the runtime hands to ``on_result`` for each segmented frame: one typed record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..camera.depth import Frame3D
from ..segment import SegmentationResult
from .frames import Frame


@dataclass(frozen=True)
class FrameOutput:
    """A segmented frame and what its camera added: the masks' COCO RLEs (result order), the
    track ids (uint32 per instance; None: tracking off) and the 3D (None: the source has no
    depth; else a Frame3D whose status says whether 3D was made)."""

    frame: Frame
    result: SegmentationResult
    latency: float  # seconds from submit() to the result
    rles: list[dict]
    track_ids: np.ndarray | None = None
    frame3d: Frame3D | None = None

    @property
    def stamp_ns(self) -> int | None:
        """The camera's stamp of the frame, when it was submitted with one."""
        return self.frame.stamp_ns

    @property
    def depth_stamp_ns(self) -> int | None:
        """The stamp of the depth image paired with the frame (None: none)."""
        return self.frame.depth_stamp_ns


#: on_result(output), on the inference thread
ResultCallback = Callable[[FrameOutput], None]

__all__ = ["FrameOutput", "ResultCallback"]
