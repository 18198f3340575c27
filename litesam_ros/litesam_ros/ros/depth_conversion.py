"""Depth image messages (sensor_msgs/Image 16UC1 / mono16 in millimetres, 32FC1 in metres) as
numpy arrays, for the runtime's 3D step (which converts to metres with segment.depth3d)."""

from __future__ import annotations

from typing import Any

import numpy as np

from litesam_ros.ros.image_conversion import ImageConversionError

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
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise ImageConversionError("depth image is empty (0 pixels)")
    if step < w * dtype.itemsize:
        raise ImageConversionError(f"depth image step {step} < width {w} x {dtype.itemsize} bytes")
    data = bytes(msg.data) if not isinstance(msg.data, (bytes, bytearray)) else msg.data
    if len(data) < step * h:
        raise ImageConversionError(f"depth image has {len(data)} bytes, {step * h} expected "
                                   f"({h} rows of {step})")
    rows: np.ndarray = np.frombuffer(data, np.uint8, count=step * h).reshape(h, step)
    wire = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = np.ascontiguousarray(rows[:, : w * dtype.itemsize]).view(wire).reshape(h, w)
    return pixels.astype(dtype.newbyteorder("=")), "32FC1" if dtype.kind == "f" else "16UC1"


__all__ = ["DEPTH_ENCODINGS", "depth_image_to_numpy"]
