"""image_conversion.raw_pixels, the one reader of a raw Image's rows (step padding, byte order)
that image_to_numpy and depth_image_to_numpy share, and what each of them adds to it."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image

from litesam_ros.ros.depth_conversion import depth_image_to_numpy
from litesam_ros.ros.image_conversion import ImageConversionError, image_to_numpy, raw_pixels


def _msg(pixels: np.ndarray, encoding: str, pad: int = 0, big: bool = False,
         tail: bytes = b"") -> Image:
    """Rows of ``pixels`` in the given byte order, each followed by ``pad`` 0xAB bytes."""
    h = pixels.shape[0]
    wire = pixels.astype(pixels.dtype.newbyteorder(">" if big else "<"))
    raw = np.ascontiguousarray(wire).reshape(h, -1).view(np.uint8)
    rows = np.concatenate([raw, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return Image(height=h, width=pixels.shape[1], encoding=encoding, step=rows.shape[1],
                 is_bigendian=int(big), data=rows.tobytes() + tail)


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("dtype,channels", [("u1", 1), ("u1", 3), ("u2", 1), ("f4", 1)])
def test_raw_pixels_reads_any_dtype_with_padding_and_byte_order(dtype: str, channels: int,
                                                                pad: int, big: bool) -> None:
    rng = np.random.default_rng(pad + 2 * big)
    shape = (4, 5) if channels == 1 else (4, 5, channels)
    want = (rng.random(shape) * 1000).astype(dtype)
    got = raw_pixels(_msg(want, "x", pad, big), "x image", channels, np.dtype(dtype))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, want)
    swapped = big and np.dtype(dtype).itemsize > 1
    assert got.flags.writeable == swapped  # a read-only view unless bytes were swapped


def test_depth_gets_a_fresh_writable_contiguous_copy() -> None:
    d = np.arange(20, dtype=np.uint16).reshape(4, 5)
    msg = _msg(d, "16UC1", pad=2)
    pixels, enc = depth_image_to_numpy(msg)
    assert enc == "16UC1" and pixels.flags.writeable and pixels.flags.c_contiguous
    pixels[:] = 7  # does not write into the message
    np.testing.assert_array_equal(depth_image_to_numpy(msg)[0], d)


def test_big_endian_float_depth() -> None:
    d = np.linspace(0.25, 9.5, 12, dtype=np.float32).reshape(3, 4)
    pixels, enc = depth_image_to_numpy(_msg(d, "32FC1", pad=4, big=True))
    assert enc == "32FC1" and pixels.dtype == np.float32 and pixels.dtype.isnative
    np.testing.assert_array_equal(pixels, d)


def test_trailing_bytes_depth_accepts_and_image_refuses() -> None:
    d = np.arange(12, dtype=np.uint16).reshape(3, 4)
    pixels, _ = depth_image_to_numpy(_msg(d, "mono16", tail=b"\x01\x02"))
    np.testing.assert_array_equal(pixels, d)
    with pytest.raises(ImageConversionError, match="data has 26 bytes, expected height"):
        image_to_numpy(_msg(d, "mono16", tail=b"\x01\x02"))


@pytest.mark.parametrize("change, says", [
    ({"step": 7}, r"16UC1 depth image 4x3: step 7 is smaller than .* = 8"),
    ({"data": bytes(23)}, r"16UC1 depth image 4x3: data has 23 bytes, expected at least "
                          r"height \* step = 3 \* 8 = 24"),
    ({"height": 0, "data": b""}, "depth image is empty"),
    ({"encoding": "bgr8"}, "unsupported depth encoding 'bgr8'"),
])
def test_malformed_depth_frames_say_what_is_wrong(change: dict, says: str) -> None:
    msg = _msg(np.zeros((3, 4), np.uint16), "16UC1")
    for k, v in change.items():
        setattr(msg, k, v)
    with pytest.raises(ImageConversionError, match=says):
        depth_image_to_numpy(msg)
