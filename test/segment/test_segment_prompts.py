import numpy as np
import pytest

from litesam_ros.model.geometry import Geometry
from litesam_ros.segment import InvalidPromptError, Prompt, SegmentError
from litesam_ros.segment.prompts import check_prompt, check_prompts, encode_prompts

HW = (100, 200)  # H, W


@pytest.mark.parametrize("prompt,message", [
    (Prompt(), "neither points nor a box"),
    (Prompt(points=[[10, 10]]), "no labels"),
    (Prompt(points=[[10, 10], [20, 20]], labels=[1]), "2 points but 1 labels"),
    (Prompt(points=[[10, 10]], labels=[1, 0]), "1 points but 2 labels"),
    (Prompt(points=[[10, 10]], labels=[2]), "labels must be 1"),
    (Prompt(points=[[10, 10]], labels=[0.5]), "labels must be 1"),
    (Prompt(points=[[np.nan, 10]], labels=[1]), "NaN"),
    (Prompt(points=[[np.inf, 10]], labels=[1]), "NaN"),
    (Prompt(points=[[10, 10, 3]], labels=[1]), "shape [K, 2]"),
    (Prompt(points=[[250, 10]], labels=[1]), "outside"),
    (Prompt(points=[[-1, 10]], labels=[1]), "outside"),
    (Prompt(points=[[10, 101]], labels=[1]), "outside"),
    (Prompt(points=[["a", 1]], labels=[1]), "not numeric"),
    (Prompt(labels=[1]), "labels given without points"),
    (Prompt(box=[50, 10, 20, 40]), "inverted"),
    (Prompt(box=[10, 40, 20, 40]), "inverted"),
    (Prompt(box=[10, 10, 20]), "box must be"),
    (Prompt(box=[10, 10, 20, np.nan]), "NaN"),
    (Prompt(box=[10, 10, 201, 50]), "outside"),
])
def test_bad_prompt_raises_typed_error_with_message(prompt, message):
    with pytest.raises(InvalidPromptError, match=None) as info:
        check_prompt(prompt, HW, 3)
    assert message in str(info.value) and "prompt 3" in str(info.value)
    assert isinstance(info.value, SegmentError) and isinstance(info.value, ValueError)


def test_batch_errors():
    with pytest.raises(InvalidPromptError, match="no prompts"):
        check_prompts([], HW, 4)
    with pytest.raises(InvalidPromptError, match="5 prompts given, at most 4"):
        check_prompts([Prompt(box=[0, 0, 5, 5])] * 5, HW, 4)
    with pytest.raises(InvalidPromptError, match="prompt 1: 3 points, at most 2"):
        check_prompts([Prompt(box=[0, 0, 5, 5]), Prompt(points=[[1, 1]] * 3, labels=[1] * 3)],
                      HW, 4, max_points=2)
    with pytest.raises(InvalidPromptError, match="sequence"):
        check_prompts(Prompt(box=[0, 0, 5, 5]), HW, 4)
    with pytest.raises(InvalidPromptError, match="expected a Prompt"):
        check_prompts([[0, 0, 5, 5]], HW, 4)


def test_valid_prompts_encode_with_box_corners_padding_and_scaling():
    checked = check_prompts([
        Prompt(points=[[100, 50]], labels=[1]),
        Prompt(box=[0, 0, 200, 100]),
        Prompt(points=[[10, 20], [30, 40]], labels=[1, 0], box=[10, 10, 50, 60]),
    ], HW, 8)
    coords, labels = encode_prompts(checked, HW, Geometry(64, 16))  # scale 64 / 200 = 0.32
    assert coords.shape == (3, 4, 2) and labels.shape == (3, 4)
    np.testing.assert_allclose(coords[0, 0], [32, 16])
    assert labels[0].tolist() == [1, -1, -1, -1]
    np.testing.assert_allclose(coords[1, :2], [[0, 0], [64, 32]])
    assert labels[1].tolist() == [2, 3, -1, -1]
    assert labels[2].tolist() == [1, 0, 2, 3]
    np.testing.assert_allclose(coords[2, 3], [16, 19.2], rtol=1e-5)


def test_empty_points_with_box_is_fine():
    p = check_prompt(Prompt(points=[], labels=[], box=[1, 1, 5, 5]), HW)
    assert p.points.shape == (0, 2) and p.box is not None
