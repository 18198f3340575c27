"""Depth image messages (sensor_msgs/Image 16UC1 / mono16 in millimetres, 32FC1 in metres) as
numpy arrays, for the runtime's 3D step (which converts to metres with camera.depth3d)."""

from __future__ import annotations

from typing import Any

import numpy as np

from litesam_ros.ros.image_conversion import ImageConversionError, raw_pixels

_DTYPES: dict[str, np.dtype[Any]] = {"16UC1": np.dtype("u2"), "mono16": np.dtype("u2"),
                                     "32FC1": np.dtype("f4")}
DEPTH_ENCODINGS = tuple(_DTYPES)


def depth_image_to_numpy(msg: Any) -> tuple[np.ndarray, str]:
    """(H x W pixels, encoding) of a depth Image; ImageConversionError (a ValueError) for an
    unsupported encoding or a message whose data does not match its size."""
    enc = str(msg.encoding)
    dtype = _DTYPES.get(enc) or _DTYPES.get(enc.upper())
    if dtype is None:
        raise ImageConversionError(f"unsupported depth encoding {enc!r}; supported: "
                                   f"{', '.join(DEPTH_ENCODINGS)}")
    if int(msg.height) == 0 or int(msg.width) == 0:
        raise ImageConversionError("depth image is empty (0 pixels)")
    # longer data than height * step: its tail is ignored, as cv_bridge does
    pixels = raw_pixels(msg, f"{enc} depth image", 1, dtype, extra_bytes_ok=True)
    if not pixels.flags.writeable:  # a view of the message: callers get their own copy
        pixels = pixels.copy()
    return pixels, "32FC1" if dtype.kind == "f" else "16UC1"


__all__ = ["DEPTH_ENCODINGS", "depth_image_to_numpy"]
