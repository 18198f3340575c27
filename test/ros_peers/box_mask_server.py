"""Child process for the tests: a SegmentPrompt server that answers each prompt with the mask
of its box (or of the 3x3 square around its first point), to exercise the interface alone."""

import numpy as np
import rclpy
from pycocotools import mask as mask_utils

from peer_spin import spin_until_stopped

from litesam_msgs.msg import InstanceMask
from litesam_msgs.srv import SegmentPrompt


def answer(request: SegmentPrompt.Request, response: SegmentPrompt.Response) -> SegmentPrompt.Response:
    height, width = request.image.height, request.image.width
    if height == 0 or not request.prompts:
        response.success = False
        response.message = "need an image and at least one prompt"
        return response
    response.result.header = request.image.header
    response.result.height, response.result.width = height, width
    response.result.strategy = "prompt"
    for index, prompt in enumerate(request.prompts, start=1):
        if prompt.has_box:
            x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
        else:
            x, y = int(prompt.points[0]), int(prompt.points[1])
            x0, y0, x1, y1 = x - 1, y - 1, x + 2, y + 2
        mask = np.zeros((height, width), np.uint8, order="F")
        mask[y0:y1, x0:x1] = 1
        rle = mask_utils.encode(mask)
        response.result.instances.append(InstanceMask(
            id=index, score=1.0, area=int(mask.sum()), x_min=float(x0), y_min=float(y0),
            x_max=float(x1), y_max=float(y1), mask_rle_counts=rle["counts"].decode(),
            mask_height=height, mask_width=width, has_prompt=True, prompt=prompt))
    response.success = True
    return response


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("box_mask_server")
    node.create_service(SegmentPrompt, "segment", answer)
    spin_until_stopped(node)


if __name__ == "__main__":
    main()
