import numpy as np
import pytest
import torch

from litesam_ros.segment.transforms import (boxes_to_input, boxes_to_original, coords_to_input,
                                            coords_to_original, preprocess, resize_longest_side,
                                            resized_hw)

MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


@pytest.mark.parametrize("hw,size,expected", [((480, 640), 320, (240, 320)),
                                              ((512, 512), 320, (320, 320)),
                                              ((100, 37), 64, (64, 24)),
                                              ((37, 100), 1024, (379, 1024))])
def test_resized_hw(hw, size, expected):
    assert resized_hw(*hw, size) == expected


def test_preprocess_normalises_and_pads_bottom_right():
    img = np.full((30, 60, 3), 200, dtype=np.uint8)
    img[..., 1] = 10
    x = preprocess(img, 64, MEAN, STD)
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
    assert torch.allclose(x[0, 0, :32, :], torch.tensor((200 - MEAN[0]) / STD[0]))
    assert torch.allclose(x[0, 1, :32, :], torch.tensor((10 - MEAN[1]) / STD[1]))
    assert torch.all(x[0, :, 32:, :] == 0)


def test_resize_accepts_non_contiguous():
    img = np.random.default_rng(0).integers(0, 255, (40, 80, 3), dtype=np.uint8)[:, ::2]
    out = resize_longest_side(img, 20)
    assert out.shape == (20, 20, 3)


def test_coords_round_trip_and_values():
    hw = (480, 640)
    pts = np.array([[0, 0], [639.5, 479.5], [320, 100]], np.float32)
    inp = coords_to_input(pts, hw, 320)
    np.testing.assert_allclose(inp[2], [160, 50])
    np.testing.assert_allclose(coords_to_original(inp, hw, 320), pts, rtol=1e-6)


def test_boxes_round_trip_with_anisotropic_rounding():
    hw = (333, 500)  # 333 * 320 / 500 = 213.1 -> 213: x and y scales differ slightly
    boxes = np.array([[10, 20, 300, 330], [0, 0, 500, 333]], np.float32)
    inp = boxes_to_input(boxes, hw, 320)
    np.testing.assert_allclose(inp[1], [0, 0, 320, 213], rtol=1e-6)
    np.testing.assert_allclose(boxes_to_original(inp, hw, 320), boxes, rtol=1e-5)
