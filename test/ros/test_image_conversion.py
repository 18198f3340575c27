"""Image / CompressedImage <-> numpy conversion, checked against messages built by hand."""

from __future__ import annotations

import array
import sys

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from skimage import data as skdata
from std_msgs.msg import Header

from litesam_ros.ros.image_conversion import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    compressed_to_rgb8,
    image_to_numpy,
    image_to_rgb8,
    numpy_to_compressed,
    numpy_to_image,
)

# encoding -> (channels, dtype) stated independently of the module under test.
LAYOUT = {
    "rgb8": (3, np.uint8), "bgr8": (3, np.uint8), "rgba8": (4, np.uint8),
    "bgra8": (4, np.uint8), "mono8": (1, np.uint8), "mono16": (1, np.uint16),
    "8UC1": (1, np.uint8), "8UC3": (3, np.uint8), "8UC4": (4, np.uint8),
    "16UC1": (1, np.uint16),
}
ENCODINGS = list(LAYOUT)


def known_array(encoding: str, height: int = 5, width: int = 7, seed: int = 0) -> np.ndarray:
    channels, dtype = LAYOUT[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def make_msg(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """An Image built byte by byte: rows of pixel bytes followed by ``pad`` 0xAB bytes."""
    height, width = pixels.shape[:2]
    order = ">" if bigendian else "<"
    raw = pixels.astype(pixels.dtype.newbyteorder(order)).reshape(height, -1).view(np.uint8)
    rows = np.concatenate([raw, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    msg = Image()
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian = int(bigendian)
    msg.step = raw.shape[1] + pad
    msg.data = array.array("B", rows.tobytes())
    return msg


def stretch(values: np.ndarray) -> np.ndarray:
    """Expected 16 -> 8 bit mapping: [min, max] -> [0, 255], round half up."""
    lo, hi = int(values.min()), int(values.max())
    if hi == lo:
        return np.zeros(values.shape, np.uint8)
    return np.floor((values.astype(np.float64) - lo) * 255.0 / (hi - lo) + 0.5).astype(np.uint8)


def expected_rgb(pixels: np.ndarray, encoding: str) -> np.ndarray:
    if encoding in ("mono16", "16UC1"):
        pixels = stretch(pixels)
    if pixels.ndim == 2:
        return np.stack([pixels] * 3, axis=-1)
    if encoding in ("rgb8", "rgba8"):
        return pixels[:, :, :3]
    return pixels[:, :, [2, 1, 0]]  # bgr8, bgra8, 8UC3, 8UC4


def test_supported_encodings_are_the_documented_ones() -> None:
    assert set(SUPPORTED_ENCODINGS) == set(ENCODINGS)


# --- raw Image -> numpy --------------------------------------------------------------------


@pytest.mark.parametrize("pad", [0, 5], ids=["packed", "padded"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_image_to_numpy_exact(encoding: str, pad: int) -> None:
    pixels = known_array(encoding)  # odd width 7, odd height 5
    out = image_to_numpy(make_msg(pixels, encoding, pad=pad))
    assert out.shape == pixels.shape
    assert out.dtype == pixels.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, pixels)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("pad", [0, 3], ids=["packed", "odd-padding"])
def test_big_endian_16bit(encoding: str, pad: int) -> None:
    pixels = np.array([[1, 256, 0x1234], [65535, 0, 0xFF00]], np.uint16)
    msg = make_msg(pixels, encoding, pad=pad, bigendian=True)
    assert bytes(msg.data[:2]) == b"\x00\x01"  # really big-endian on the wire
    out = image_to_numpy(msg)
    np.testing.assert_array_equal(out, pixels)
    assert out.dtype == np.uint16 and out.dtype.isnative
    # Read as little-endian the same bytes mean something else: the flag is honoured.
    msg.is_bigendian = 0
    assert image_to_numpy(msg)[0, 0] == 256


def test_little_endian_16bit_bytes() -> None:
    msg = make_msg(np.array([[0x0102]], np.uint16), "16UC1")
    assert bytes(msg.data) == b"\x02\x01"
    assert image_to_numpy(msg)[0, 0] == 0x0102


def test_packed_rgb8_is_a_read_only_zero_copy_view() -> None:
    pixels = known_array("rgb8")
    msg = make_msg(pixels, "rgb8")
    out = image_to_numpy(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    assert not out.flags.writeable
    rgb = image_to_rgb8(msg)
    assert np.shares_memory(rgb, np.frombuffer(msg.data, np.uint8))
    padded = image_to_numpy(make_msg(pixels, "rgb8", pad=4))
    assert not padded.flags.c_contiguous  # a row-strided view, not a copy
    np.testing.assert_array_equal(padded, pixels)


def test_bytes_data_is_accepted() -> None:
    pixels = known_array("bgr8", 2, 3)
    msg = make_msg(pixels, "bgr8")
    msg._data = bytes(msg.data)  # as some transports hand it over
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)


# --- raw Image -> RGB for the model ------------------------------------------------------------


@pytest.mark.parametrize("pad", [0, 5], ids=["packed", "padded"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_image_to_rgb8(encoding: str, pad: int) -> None:
    pixels = known_array(encoding, seed=3)
    rgb = image_to_rgb8(make_msg(pixels, encoding, pad=pad))
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, expected_rgb(pixels, encoding))


@pytest.mark.parametrize("encoding,pixel", [
    ("rgb8", [255, 0, 0]), ("bgr8", [0, 0, 255]), ("rgba8", [255, 0, 0, 17]),
    ("bgra8", [0, 0, 255, 17]), ("8UC3", [0, 0, 255]), ("8UC4", [0, 0, 255, 200]),
])
def test_pure_red_comes_out_red(encoding: str, pixel: list[int]) -> None:
    image = np.zeros((3, 5, len(pixel)), np.uint8)
    image[1, 2] = pixel
    rgb = image_to_rgb8(make_msg(image, encoding, pad=1))
    assert rgb[1, 2].tolist() == [255, 0, 0]
    assert rgb[0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_replicated(encoding: str) -> None:
    rgb = image_to_rgb8(make_msg(np.array([[0, 77, 255]], np.uint8), encoding))
    assert rgb.tolist() == [[[0, 0, 0], [77, 77, 77], [255, 255, 255]]]


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_16bit_stretched_by_frame_range(encoding: str) -> None:
    pixels = np.array([[1000, 2000], [1500, 1250]], np.uint16)
    rgb = image_to_rgb8(make_msg(pixels, encoding, bigendian=True))
    # (v - 1000) * 255 / 1000: 0, 255, 127.5 -> 128, 63.75 -> 64
    assert rgb[:, :, 0].tolist() == [[0, 255], [128, 64]]
    assert (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all()


def test_16bit_constant_frame_is_zero() -> None:
    rgb = image_to_rgb8(make_msg(np.full((4, 3), 4242, np.uint16), "mono16"))
    assert rgb.shape == (4, 3, 3) and not rgb.any()


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["yuv422", "32FC1", "bayer_rggb8", "rgb16", ""])
def test_unsupported_encoding(encoding: str) -> None:
    msg = make_msg(np.zeros((2, 2), np.uint8), "mono8")
    msg.encoding = encoding
    for convert in (image_to_numpy, image_to_rgb8):
        with pytest.raises(ImageConversionError, match="unsupported image encoding") as err:
            convert(msg)
        assert repr(encoding) in str(err.value)
    assert issubclass(ImageConversionError, ValueError)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_data_length_mismatch(encoding: str) -> None:
    msg = make_msg(known_array(encoding, 4, 3), encoding, pad=2)
    full = bytes(msg.data)
    for data in (full[:-1], full + b"\x00", b""):
        msg.data = array.array("B", data)
        with pytest.raises(ImageConversionError) as err:
            image_to_numpy(msg)
        text = str(err.value)
        assert encoding in text and str(len(data)) in text and str(len(full)) in text


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_step_too_small(encoding: str) -> None:
    channels, dtype = LAYOUT[encoding]
    row = 3 * channels * np.dtype(dtype).itemsize
    msg = make_msg(known_array(encoding, 4, 3), encoding)
    msg.step = row - 1
    msg.data = array.array("B", bytes(4 * msg.step))  # consistent length: only step is bad
    with pytest.raises(ImageConversionError, match=f"step {row - 1} is smaller") as err:
        image_to_rgb8(msg)
    assert str(row) in str(err.value)


# --- numpy -> Image ----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_numpy_to_image_round_trip(encoding: str) -> None:
    pixels = known_array(encoding, 3, 5, seed=7)
    header = Header(frame_id="camera")
    msg = numpy_to_image(pixels, encoding, header=header)
    channels, dtype = LAYOUT[encoding]
    assert msg.encoding == encoding and msg.header.frame_id == "camera"
    assert (msg.height, msg.width) == (3, 5)
    assert msg.step == 5 * channels * np.dtype(dtype).itemsize
    assert len(msg.data) == 3 * msg.step
    assert msg.is_bigendian == (1 if sys.byteorder == "big" and dtype == np.uint16 else 0)
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)


def test_numpy_to_image_mono16_bytes_and_byte_order() -> None:
    values = np.array([[1, 0x0203]], np.uint16)
    msg = numpy_to_image(values.astype(">u2"), "mono16")  # non-native input keeps its values
    assert image_to_numpy(msg).tolist() == [[1, 0x0203]]
    if sys.byteorder == "little":
        assert bytes(msg.data) == b"\x01\x00\x03\x02"


def test_numpy_to_image_accepts_views_and_hx_wx1() -> None:
    base = known_array("rgb8", 6, 8)
    view = base[::2, 1::2]  # non-contiguous
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(view, "rgb8")), view)
    mono = known_array("mono8")
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(mono[:, :, None], "mono8")),
                                  mono)


@pytest.mark.parametrize("array_,encoding", [
    (np.zeros((2, 2, 3), np.uint16), "rgb8"),
    (np.zeros((2, 2), np.uint8), "mono16"),
    (np.zeros((2, 2), np.int32), "16UC1"),
    (np.zeros((2, 2, 4), np.uint8), "rgb8"),
    (np.zeros((2, 2, 3), np.uint8), "mono8"),
    (np.zeros((2, 2), np.uint8), "rgb8"),
    (np.zeros((2, 2), np.uint8), "yuv422"),
])
def test_numpy_to_image_rejects_mismatches(array_: np.ndarray, encoding: str) -> None:
    with pytest.raises(ImageConversionError):
        numpy_to_image(array_, encoding)


# --- compressed --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


def test_png_round_trip_exact(astronaut: np.ndarray) -> None:
    msg = numpy_to_compressed(astronaut, "png", header=Header(frame_id="cam"))
    assert msg.format == "rgb8; png compressed bgr8" and msg.header.frame_id == "cam"
    out = compressed_to_rgb8(msg)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, astronaut)


def test_jpeg_round_trip_within_tolerance(astronaut: np.ndarray) -> None:
    msg = numpy_to_compressed(astronaut, "jpeg")
    assert msg.format == "rgb8; jpeg compressed bgr8"
    out = compressed_to_rgb8(msg)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    err = np.abs(out.astype(np.int32) - astronaut)
    assert err.mean() < 4.0
    mse = float((err.astype(np.float64) ** 2).mean())
    assert 10 * np.log10(255 ** 2 / mse) > 30  # PSNR; a channel swap gives about 12 dB
    # Channel order: the red suit stays red.
    r, g, b = out[300:400, 50:150].reshape(-1, 3).mean(axis=0)
    assert r > g + 40 and r > b + 40


@pytest.mark.parametrize("ext,fmt", [(".png", "png"), (".jpg", "jpeg"),
                                     (".png", "bgr8; png compressed bgr8"), (".png", "")])
def test_decodes_opencv_bgr_payloads(astronaut: np.ndarray, ext: str, fmt: str) -> None:
    ok, encoded = cv2.imencode(ext, astronaut[:, :, ::-1].copy())
    assert ok
    msg = CompressedImage(format=fmt, data=array.array("B", encoded.tobytes()))
    out = compressed_to_rgb8(msg)
    tolerance = 0 if ext == ".png" else 4.0
    assert np.abs(out.astype(np.int32) - astronaut).mean() <= tolerance


def test_rgb_payload_named_in_format_is_not_swapped() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 255  # red, stored in RGB order in the PNG's BGR slots
    ok, encoded = cv2.imencode(".png", image)
    msg = CompressedImage(format="rgb8; png compressed rgb8",
                          data=array.array("B", encoded.tobytes()))
    assert compressed_to_rgb8(msg)[0, 0].tolist() == [255, 0, 0]


def test_gray_bgra_and_16bit_pngs() -> None:
    gray = np.array([[0, 100], [200, 255]], np.uint8)
    msg = numpy_to_compressed(gray, "png")
    assert msg.format == "mono8; png compressed mono8"
    assert compressed_to_rgb8(msg)[:, :, 1].tolist() == gray.tolist()

    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[..., 3] = 10
    ok, encoded = cv2.imencode(".png", bgra)
    out = compressed_to_rgb8(CompressedImage(format="png",
                                             data=array.array("B", encoded.tobytes())))
    assert out.shape == (2, 2, 3) and out[1, 1].tolist() == [255, 0, 0]

    depth = np.array([[1000, 2000], [1500, 1250]], np.uint16)
    ok, encoded = cv2.imencode(".png", depth)
    out = compressed_to_rgb8(CompressedImage(format="16UC1; png compressed mono16",
                                             data=array.array("B", encoded.tobytes())))
    assert out[:, :, 0].tolist() == [[0, 255], [128, 64]]


def test_jpeg_zero_padding_after_eoi_is_accepted(astronaut: np.ndarray) -> None:
    msg = numpy_to_compressed(astronaut, "jpeg")
    reference = compressed_to_rgb8(msg)
    msg.data = array.array("B", bytes(msg.data) + bytes(7))
    np.testing.assert_array_equal(compressed_to_rgb8(msg), reference)


@pytest.mark.parametrize("keep", [0.5, 0.9, -2, -1], ids=["half", "90pc", "no-eoi", "one-short"])
def test_truncated_jpeg(astronaut: np.ndarray, keep: float) -> None:
    msg = numpy_to_compressed(astronaut, "jpeg")
    full = bytes(msg.data)
    cut = int(len(full) * keep) if keep > 0 else len(full) + int(keep)
    msg.data = array.array("B", full[:cut])
    with pytest.raises(ImageConversionError, match="EOI"):
        compressed_to_rgb8(msg)


@pytest.mark.parametrize("keep", [0.5, 0.99, -1, -12], ids=["half", "99pc", "one-short", "no-iend"])
def test_truncated_png(astronaut: np.ndarray, keep: float) -> None:
    msg = numpy_to_compressed(astronaut, "png")
    full = bytes(msg.data)
    cut = int(len(full) * keep) if keep > 0 else len(full) + int(keep)
    msg.data = array.array("B", full[:cut])
    with pytest.raises(ImageConversionError, match="IEND"):
        compressed_to_rgb8(msg)


@pytest.mark.parametrize("fmt,data", [
    ("jpeg", bytes(range(256)) * 8),
    ("png", b"not a png at all"),
    ("", bytes(range(256)) * 8),
    ("jpeg", b""),
    ("jpeg", b"\xff\xd8\xff" + bytes(200) + b"\xff\xd9"),  # markers only, no image
    ("png", b"\x89PNG\r\n\x1a\n" + bytes(30) + b"\x00\x00\x00\x00IEND\xaeB`\x82"),
    ("16UC1; compressedDepth png", b"\x00" * 12 + b"\x89PNG\r\n\x1a\n"),
])
def test_garbage_compressed_data(fmt: str, data: bytes) -> None:
    msg = CompressedImage(format=fmt, data=array.array("B", data))
    with pytest.raises(ImageConversionError):
        compressed_to_rgb8(msg)


def test_numpy_to_compressed_rejects_bad_input() -> None:
    with pytest.raises(ImageConversionError):
        numpy_to_compressed(np.zeros((4, 4, 3), np.uint8), "webp")
    with pytest.raises(ImageConversionError):
        numpy_to_compressed(np.zeros((4, 4, 3), np.float32), "png")
    with pytest.raises(ImageConversionError):
        numpy_to_compressed(np.zeros((4, 4, 4), np.uint8), "png")


# --- agreement with cv_bridge where it works ---------------------------------------------------

try:  # present on a ROS 2 install; PyPI only has a broken ROS 1 port
    from cv_bridge import CvBridge
    _CV_BRIDGE_SKIP = ""
except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
    CvBridge = None
    _CV_BRIDGE_SKIP = (f"cv_bridge is not importable here ({type(exc).__name__}: {exc}); "
                       "this comparison runs on a ROS 2 install that ships cv_bridge")


@pytest.mark.skipif(CvBridge is None, reason=_CV_BRIDGE_SKIP or "cv_bridge missing")
@pytest.mark.parametrize("bigendian", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_matches_cv_bridge(encoding: str, bigendian: bool) -> None:
    if bigendian and LAYOUT[encoding][1] != np.uint16:
        pytest.skip("byte order only matters for 16-bit encodings")
    bridge = CvBridge()
    msg = make_msg(known_array(encoding, 6, 9, seed=11), encoding, pad=3, bigendian=bigendian)
    np.testing.assert_array_equal(image_to_numpy(msg),
                                  bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
    if encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
        # cv_bridge has no colour meaning for 8UCx and rescales 16-bit differently.
        np.testing.assert_array_equal(image_to_rgb8(msg),
                                      bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
