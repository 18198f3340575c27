"""Depth Image messages -> numpy (litesam_ros.ros.depth_conversion)."""

from __future__ import annotations

import numpy as np
import pytest


def test_32fc1_16uc1_padded_rows_and_big_endian() -> None:
    from sensor_msgs.msg import Image

    from litesam_ros.ros.depth_conversion import depth_image_to_numpy

    d = np.arange(12, dtype=np.float32).reshape(3, 4)
    d[0, 0] = np.nan
    pixels, enc = depth_image_to_numpy(Image(height=3, width=4, encoding="32FC1", step=16,
                                             data=d.tobytes()))
    assert enc == "32FC1" and np.array_equal(pixels, d, equal_nan=True)
    big = np.pad(d.astype(">u2").view(np.uint8).reshape(3, 8), ((0, 0), (0, 2)))  # step 10
    pixels, enc = depth_image_to_numpy(Image(height=3, width=4, encoding="16UC1", step=10,
                                             is_bigendian=1, data=big.tobytes()))
    assert enc == "16UC1" and pixels.dtype == np.uint16
    assert (pixels == np.nan_to_num(d).astype(np.uint16)).all()


@pytest.mark.parametrize("kw, says", [
    ({"encoding": "rgb8", "step": 12, "data": bytes(36)}, "unsupported depth encoding"),
    ({"encoding": "16UC1", "step": 8, "data": bytes(10)}, "bytes"),
    ({"encoding": "16UC1", "step": 4, "data": bytes(24)}, "step"),
])
def test_bad_depth_messages_raise_image_conversion_error(kw: dict, says: str) -> None:
    from sensor_msgs.msg import Image

    from litesam_ros.ros.depth_conversion import depth_image_to_numpy
    from litesam_ros.ros.image_conversion import ImageConversionError

    with pytest.raises(ImageConversionError, match=says):
        depth_image_to_numpy(Image(height=3, width=4, **kw))
