"""The node's services: ~/segment (prompted segmentation for planners) and ~/reset_tracks.

~/segment answers every request: a malformed one (bad prompt, bad image) gets success=false
and a message; an unexpected error is logged with its traceback and answered the same way. It
runs on the given image, or (image left empty) on the newest valid camera frame, whose cached
encoding the runtime reuses. With several cameras, ~/segment takes the newest valid frame of
any camera and ~/<camera>/segment that camera's (a planner asks about what one camera sees).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from litesam_msgs.msg import InstanceMaskArray

from litesam_ros.ros.image_conversion import ImageConversionError, image_to_rgb8
from litesam_ros.ros.messages import instances_3d_msgs, prompts_from_msgs, result_to_msg
from litesam_ros.runtime import NoFrameError, RuntimeStopped, SegmentRuntime
from litesam_ros.segment import SegmentError


def fail(response: Any, message: str) -> Any:
    """A request's answer for `message`: success false, an empty result."""
    response.success = False
    response.message = message
    response.result = InstanceMaskArray()
    return response


class PromptService:
    """The service callbacks over a runtime; `names()` gives the (model, backend) now loaded
    and `active()` whether the node is active."""

    def __init__(self, runtime: SegmentRuntime, logger: Any, active: Callable[[], bool],
                 names: Callable[[], tuple[str, str]]) -> None:
        self.runtime = runtime
        self.logger = logger
        self.active = active
        self.names = names

    def on_segment(self, request: Any, response: Any, source: str | None = None) -> Any:
        """Answer a request: on its image, else on the newest valid frame of `source` (any
        camera's when None)."""
        start = time.monotonic()
        try:
            return self._segment(request, response, start, source)
        except SegmentError as exc:
            return fail(response, str(exc))
        except Exception as exc:  # noqa: BLE001 - the service answers, it never dies
            self.logger.error(f"~/segment failed: {traceback.format_exc(limit=5)}")
            return fail(response, f"internal error: {type(exc).__name__}: {exc}")

    def for_source(self, source: str) -> Callable[[Any, Any], Any]:
        """The ~/<camera>/segment callback: prompts on that camera's newest valid frame."""
        return lambda request, response: self.on_segment(request, response, source)

    def _segment(self, request: Any, response: Any, start: float, source: str | None) -> Any:
        if not self.active():
            return fail(response, "node is not active: activate it before calling ~/segment")
        prompts = prompts_from_msgs(request.prompts)
        rgb = None
        if not (request.image.height == 0 or len(request.image.data) == 0):
            try:
                rgb = image_to_rgb8(request.image)
            except ImageConversionError as exc:
                return fail(response, f"request image: {exc}")
        try:
            answer = self.runtime.segment_prompts(prompts, rgb, source=source,
                                                  multimask=request.multimask_output)
        except NoFrameError:
            where = f" from camera {source}" if source is not None else ""
            return fail(response, "the request has no image and no camera frame was "
                                  f"received{where} yet")
        except RuntimeStopped:
            return fail(response, "no model loaded: configure the node first")
        header = answer.frame.payload.header if answer.frame is not None else request.image.header
        height, width = answer.image_hw
        model, backend = self.names()
        response.result = result_to_msg(
            answer.result, header, strategy="prompt", model=model, backend=backend,
            inference_time=time.monotonic() - start, height=height, width=width)
        frame3d = (self.runtime.project(answer.frame, answer.result)
                   if answer.frame is not None else None)
        response.instances_3d = (instances_3d_msgs(frame3d.instances,
                                                   answer.result.iou_scores.tolist())
                                 if frame3d is not None and frame3d.ok else [])
        response.success = True
        response.message = ""
        return response

    def on_reset_tracks(self, request: Any, response: Any) -> Any:
        if self.runtime.tracking is None:
            response.success, response.message = False, "tracking is off (parameter tracking)"
            return response
        count = self.runtime.reset_tracks()
        response.success, response.message = True, f"forgot {count} tracks"
        return response
