"""Overlay drawing: colours, blending, untouched background, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata

from litesam_ros.segment.overlay import draw_overlay, id_colors, label_colormap


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skdata.astronaut()  # 512 x 512 x 3 uint8


def disk(h: int, w: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def shrink(mask: np.ndarray, by: int) -> np.ndarray:
    """Mask pixels at least ``by`` pixels (square neighbourhood) inside the mask."""
    out = mask.copy()
    for _ in range(by):
        inner = out.copy()
        inner[1:] &= out[:-1]
        inner[:-1] &= out[1:]
        inner[:, 1:] &= out[:, :-1]
        inner[:, :-1] &= out[:, 1:]
        out = inner
    return out


def near_box(shape: tuple[int, int], box: np.ndarray, margin: int) -> np.ndarray:
    """Pixels within ``margin`` of the box (covers its outline and the id label above it)."""
    h, w = shape
    x1, y1, x2, y2 = box
    region = np.zeros(shape, bool)
    region[max(0, int(y1) - margin):min(h, int(y2) + margin),
           max(0, int(x1) - margin):min(w, int(x2) + margin)] = True
    return region


# --- colours ---------------------------------------------------------------------------------


def test_colormap_shape_dtype_and_determinism() -> None:
    cmap = label_colormap(300)
    assert cmap.shape == (300, 3) and cmap.dtype == np.uint8
    np.testing.assert_array_equal(cmap, label_colormap(300))
    np.testing.assert_array_equal(label_colormap(10), cmap[:10])  # prefix-stable
    np.testing.assert_array_equal(id_colors([7, 3, 7]), cmap[[7, 3, 7]])
    assert label_colormap(0).shape == (0, 3)


def test_colormap_distinct() -> None:
    cmap = label_colormap(256).astype(np.int64)
    assert len(np.unique(cmap, axis=0)) == 256
    first = cmap[:16]
    dist = np.sqrt(((first[:, None] - first[None]) ** 2).sum(-1))
    dist[np.eye(16, dtype=bool)] = np.inf
    assert dist.min() > 40  # the first instances of a frame are easy to tell apart
    # Colourful: no near-grey entries (max - min channel spread).
    assert (cmap.max(1) - cmap.min(1)).min() > 60


def test_large_and_negative_ids_get_colors() -> None:
    colors = id_colors([2**40, -1, 123456789])
    assert colors.shape == (3, 3) and colors.dtype == np.uint8
    np.testing.assert_array_equal(colors, id_colors([2**40, -1, 123456789]))


# --- draw_overlay ----------------------------------------------------------------------------


def test_mask_blended_and_background_untouched(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    mask = disk(h, w, 150, 150, 60)
    box = np.array([380.0, 380.0, 460.0, 460.0])  # far from the mask on purpose
    original = photo.copy()
    out = draw_overlay(photo, mask[None], box[None], [5], alpha=0.4)

    np.testing.assert_array_equal(photo, original)  # input untouched
    assert out.shape == photo.shape and out.dtype == np.uint8

    untouched = ~mask & ~near_box((h, w), box, margin=30)
    np.testing.assert_array_equal(out[untouched], photo[untouched])

    color = id_colors([5])[0].astype(np.float64)
    interior = shrink(mask, 3)
    expected = photo[interior] * 0.6 + color * 0.4
    assert np.abs(out[interior].astype(np.float64) - expected).max() <= 1.0
    changed = np.any(out[mask] != photo[mask], axis=1)
    assert changed.mean() > 0.95

    # The box outline is drawn in the id's colour.
    assert out[420, 380].tolist() == id_colors([5])[0].tolist()


def test_nothing_outside_masks_changes_without_boxes(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    masks = np.stack([disk(h, w, 100, 100, 40), disk(h, w, 350, 300, 70)])
    boxes = np.full((2, 4), np.nan)  # non-finite boxes are skipped: no outline, no label
    out = draw_overlay(photo, masks, boxes, [1, 2], alpha=0.7)
    outside = ~masks.any(0)
    np.testing.assert_array_equal(out[outside], photo[outside])
    assert np.any(out[masks[1]] != photo[masks[1]])


def test_contour_is_solid_color_inside_mask(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[100:200, 120:260] = True
    out = draw_overlay(photo, mask[None], np.full((1, 4), np.nan), [9], alpha=0.3, thickness=2)
    color = id_colors([9])[0].tolist()
    for y, x in [(100, 150), (101, 150), (199, 200), (150, 120), (150, 259)]:
        assert out[y, x].tolist() == color, (y, x)
    # Just inside the two-pixel contour: blended, not solid.
    expected = photo[102, 150] * 0.7 + np.array(color) * 0.3
    assert np.abs(out[102, 150] - expected).max() <= 1.0
    assert out[102, 150].tolist() != color
    np.testing.assert_array_equal(out[99, 150], photo[99, 150])  # just outside


def test_alpha_extremes(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    mask = disk(h, w, 256, 256, 80)
    interior = shrink(mask, 3)
    nan_box = np.full((1, 4), np.nan)
    none = draw_overlay(photo, mask[None], nan_box, [4], alpha=0.0)
    np.testing.assert_array_equal(none[interior], photo[interior])
    full = draw_overlay(photo, mask[None], nan_box, [4], alpha=1.0)
    assert (full[interior] == id_colors([4])[0]).all()


def test_color_follows_id_not_position(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    a, b = disk(h, w, 120, 120, 50), disk(h, w, 380, 380, 50)
    boxes = np.full((2, 4), np.nan)
    out1 = draw_overlay(photo, np.stack([a, b]), boxes, [11, 42], alpha=1.0)
    out2 = draw_overlay(photo, np.stack([b, a]), boxes, [42, 11], alpha=1.0)
    np.testing.assert_array_equal(out1, out2)
    assert out1[120, 120].tolist() == id_colors([11])[0].tolist()
    assert out1[380, 380].tolist() == id_colors([42])[0].tolist()


def test_smaller_nested_mask_is_on_top(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    small, big = disk(h, w, 256, 256, 20), disk(h, w, 256, 256, 120)
    boxes = np.full((2, 4), np.nan)
    for masks, ids in [((small, big), [1, 2]), ((big, small), [2, 1])]:
        out = draw_overlay(photo, np.stack(masks), boxes, ids, alpha=1.0)
        assert out[256, 256].tolist() == id_colors([1])[0].tolist()
        assert out[256, 170].tolist() == id_colors([2])[0].tolist()


def test_empty_instances(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    out = draw_overlay(photo, np.zeros((0, h, w), bool), np.zeros((0, 4)), [])
    assert out is not photo
    np.testing.assert_array_equal(out, photo)


def test_many_instances_and_odd_size() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    n = 300  # beyond the 8-bit lookup table path
    masks = np.zeros((n, 37, 53), bool)
    for i in range(n):
        masks[i, i % 37, (i * 7) % 53] = True
    out = draw_overlay(image, masks, np.full((n, 4), np.nan), list(range(1000, 1000 + n)),
                       alpha=1.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    for i in (0, 150, 299):
        y, x = i % 37, (i * 7) % 53
        if masks[:, y, x].sum() == 1:
            assert out[y, x].tolist() == id_colors([1000 + i])[0].tolist()
    outside = ~masks.any(0)
    np.testing.assert_array_equal(out[outside], image[outside])


def test_boxes_partly_outside_image(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    mask = disk(h, w, 10, 10, 8)
    boxes = np.array([[-50.0, -40.0, 30.0, 25.0], [500.0, 490.0, 1e12, 9e11]])
    out = draw_overlay(photo, np.stack([mask, mask]), boxes, [1, 2])
    assert out.shape == photo.shape
    assert not np.array_equal(out, photo)


@pytest.mark.parametrize("kwargs", [
    dict(image_rgb=np.zeros((8, 8), np.uint8)),
    dict(image_rgb=np.zeros((8, 8, 3), np.float32)),
    dict(masks=np.zeros((1, 9, 8), bool)),
    dict(boxes=np.zeros((2, 4))),
    dict(ids=[1, 2]),
    dict(alpha=1.5),
])
def test_bad_arguments(kwargs: dict) -> None:
    args = dict(image_rgb=np.zeros((8, 8, 3), np.uint8), masks=np.zeros((1, 8, 8), bool),
                boxes=np.zeros((1, 4)), ids=[1], alpha=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError):
        draw_overlay(**args)
