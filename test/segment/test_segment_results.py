import numpy as np
from pycocotools import mask as mask_utils

from litesam_ros.masks import decode_rle, encode_rle
from litesam_ros.segment.results import SegmentationResult, label_image, mask_areas


def _masks():
    rng = np.random.default_rng(0)
    m = rng.random((3, 17, 23)) > 0.6
    m[2] = False
    m[2, 3:9, 4:10] = True
    return m


def test_rle_round_trip_with_pycocotools():
    masks = _masks()
    rles = encode_rle(masks)
    assert len(rles) == 3
    for m, r in zip(masks, rles):
        assert r["size"] == [17, 23] and isinstance(r["counts"], str)
        back = mask_utils.decode({"size": r["size"], "counts": r["counts"].encode()})
        assert back.shape == (17, 23) and (back.astype(bool) == m).all()
        assert (decode_rle(r) == m).all()
        assert mask_utils.area({"size": r["size"], "counts": r["counts"].encode()}) == m.sum()


def test_rle_of_non_contiguous_masks():
    masks = _masks()[:, :, ::2]
    for m, r in zip(masks, encode_rle(masks)):
        assert (decode_rle(r) == m).all()


def test_label_image_smaller_on_top():
    masks = np.zeros((3, 10, 10), bool)
    masks[0, :, :] = True        # big
    masks[1, 2:5, 2:5] = True    # small, inside big
    masks[2, 7:9, 7:9] = True
    lab = label_image(masks, 10, 10)
    assert lab.dtype == np.uint16
    assert (lab[2:5, 2:5] == 2).all() and (lab[7:9, 7:9] == 3).all()
    assert (lab == 1).sum() == 100 - 9 - 4
    assert label_image(np.zeros((0, 4, 5), bool), 4, 5).shape == (4, 5)


def test_result_helpers():
    masks = _masks()
    r = SegmentationResult(masks, np.zeros((3, 4), np.float32), np.zeros(3, np.float32),
                           np.zeros(3, np.float32), masks.reshape(3, -1).sum(1))
    assert len(r) == 3 and r.image_hw == (17, 23)
    assert len(r.rles()) == 3 and r.label_image().shape == (17, 23)
    assert SegmentationResult(np.zeros((0, 4, 4), bool), *[np.zeros(0)] * 4).rles() == []


def test_mask_areas_count_each_mask():
    rng = np.random.default_rng(0)
    masks = rng.random((5, 48, 64)) > rng.random((5, 1, 1))  # densities from 0 to 1
    masks[0] = False
    masks[1] = True
    want = masks.reshape(5, -1).sum(1)
    got = mask_areas(masks)
    assert got.dtype == np.int64 and got.tolist() == want.tolist()
    assert got[0] == 0 and got[1] == 48 * 64
    assert mask_areas(masks.transpose(0, 2, 1)).tolist() == want.tolist()  # a strided view
    assert mask_areas(np.zeros((0, 4, 4), bool)).shape == (0,)
