"""Image geometry (model.geometry): sizes, coordinates, pre-processing and logit up-sampling,
checked against the official pre-processing of SAM (segment_anything's ResizeLongestSide +
Sam.preprocess) and EfficientSAM (stretch + ImageNet normalisation, written out here from its
code), on a real photo."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from litesam_ros.model import get_config
from litesam_ros.model.geometry import Geometry
from oracles import import_oracle

MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def lite(size: int) -> Geometry:
    return Geometry(size, size // 4)


@pytest.mark.parametrize("hw,size,expected", [((480, 640), 320, (240, 320)),
                                              ((512, 512), 320, (320, 320)),
                                              ((100, 37), 64, (64, 24)),
                                              ((37, 100), 1024, (379, 1024))])
def test_input_hw_longest_side(hw, size, expected):
    assert lite(size).input_hw(hw) == expected


def test_input_hw_stretch_covers_the_whole_input():
    g = Geometry.of(get_config("efficient_sam_vitt"))
    assert g.input_hw((480, 640)) == (1024, 1024)
    np.testing.assert_allclose(g.scales((480, 640)), (1024 / 640, 1024 / 480))
    assert g.low_res_valid_hw((1024, 1024)) == (256, 256)


def test_preprocess_normalises_and_pads_bottom_right():
    img = np.full((30, 60, 3), 200, dtype=np.uint8)
    img[..., 1] = 10
    x = lite(64).preprocess(img)
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
    assert torch.allclose(x[0, 0, :32, :], torch.tensor((200 - MEAN[0]) / STD[0]))
    assert torch.allclose(x[0, 1, :32, :], torch.tensor((10 - MEAN[1]) / STD[1]))
    assert torch.all(x[0, :, 32:, :] == 0)


def test_resize_accepts_non_contiguous():
    img = np.random.default_rng(0).integers(0, 255, (40, 80, 3), dtype=np.uint8)[:, ::2]
    assert lite(20).resize_image(img).shape == (20, 20, 3)


def test_coords_round_trip_and_values():
    hw, g = (480, 640), lite(320)
    pts = np.array([[0, 0], [639.5, 479.5], [320, 100]], np.float32)
    inp = g.coords_to_input(pts, hw)
    np.testing.assert_allclose(inp[2], [160, 50])
    np.testing.assert_allclose(g.coords_to_original(inp, hw), pts, rtol=1e-6)


def test_boxes_round_trip_with_anisotropic_rounding():
    hw, g = (333, 500), lite(320)  # 333 * 320 / 500 = 213.1 -> 213: x and y scales differ
    boxes = np.array([[10, 20, 300, 330], [0, 0, 500, 333]], np.float32)
    inp = g.boxes_to_input(boxes, hw)
    np.testing.assert_allclose(inp[1], [0, 0, 320, 213], rtol=1e-6)
    np.testing.assert_allclose(g.boxes_to_original(inp, hw), boxes, rtol=1e-5)


@pytest.mark.parametrize("input_hw,orig", [((64, 45), (100, 70)), ((37, 64), (37, 64)),
                                           ((64, 64), (200, 200))])
def test_upsample_of_region_equals_full_upsample_then_crop(input_hw, orig):
    s, lr = 64, 16
    g = Geometry(s, lr)
    logits = torch.randn(3, lr, lr, generator=torch.Generator().manual_seed(0))
    full = F.interpolate(logits[:, None], (s, s), mode="bilinear", align_corners=False)
    full = full[..., : input_hw[0], : input_hw[1]]
    want = F.interpolate(full, orig, mode="bilinear", align_corners=False)[:, 0]
    h, w = g.low_res_valid_hw(input_hw)
    got = g.upsample_logits(logits[:, : h + 1, : w + 1], input_hw, orig, chunk=2)
    assert got.shape == (3, *orig)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_low_res_valid_hw():
    assert Geometry(64, 16).low_res_valid_hw((64, 45)) == (16, 12)
    assert Geometry(64, 16).low_res_valid_hw((64, 44)) == (16, 11)


def test_sam_preprocess_is_the_official_one(astronaut_wide):
    """SAM / MobileSAM: PIL bilinear resize of the longest side, mean/std, pad: bit-exact."""
    sa = import_oracle("segment_anything")
    img = astronaut_wide
    g = Geometry.of(get_config("sam_vit_b"))
    resized = sa.utils.transforms.ResizeLongestSide(1024).apply_image(img)
    x = torch.as_tensor(resized).permute(2, 0, 1)[None].float()
    mean = torch.tensor(MEAN).view(-1, 1, 1)
    std = torch.tensor(STD).view(-1, 1, 1)
    x = (x - mean) / std
    want = F.pad(x, (0, 1024 - x.shape[-1], 0, 1024 - x.shape[-2]))
    assert g.input_hw(img.shape[:2]) == resized.shape[:2]
    assert torch.equal(g.preprocess(img), want)
    pts = np.array([[10.0, 20.0], [500.0, 300.0]], np.float32)
    np.testing.assert_allclose(g.coords_to_input(pts, img.shape[:2]),
                               sa.utils.transforms.ResizeLongestSide(1024).apply_coords(
                                   pts, img.shape[:2]), rtol=1e-6)


def test_sam_upsampling_is_the_official_one(astronaut_wide):
    sa = import_oracle("segment_anything")
    sam = sa.sam_model_registry["vit_b"]  # only Sam.postprocess_masks is used, unbound
    hw = astronaut_wide.shape[:2]
    g = Geometry.of(get_config("sam_vit_b"))
    input_hw = g.input_hw(hw)
    logits = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))

    class _Enc:
        img_size = 1024

    class _Stub:
        image_encoder = _Enc()

    want = sa.modeling.Sam.postprocess_masks(_Stub(), logits, input_hw, hw)
    got = g.upsample_logits(logits.flatten(0, 1), input_hw, hw).view_as(want)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    del sam


def test_efficient_sam_preprocess_and_upsampling_follow_its_code(astronaut_wide):
    """EfficientSAM: ToTensor (x/255), bilinear stretch to 1024, ImageNet mean/std; logits
    bicubic straight to the original size (efficient_sam.py, predict_masks / preprocess)."""
    img = astronaut_wide
    g = Geometry.of(get_config("efficient_sam_vitt"))
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, (1024, 1024), mode="bilinear")
    want = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / \
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(g.preprocess(img), want, rtol=0, atol=1e-5)
    logits = torch.randn(3, 256, 256, generator=torch.Generator().manual_seed(2))
    want_up = F.interpolate(logits[None], img.shape[:2], mode="bicubic")[0]
    got = g.upsample_logits(logits, (1024, 1024), img.shape[:2])
    torch.testing.assert_close(got, want_up, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def astronaut_wide() -> np.ndarray:
    """A real photo with a non-square size (so padding and anisotropic scales are exercised)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[40:440, :])  # 400 x 512
