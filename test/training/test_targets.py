"""AutoPPN target generation on hand-made masks."""
import numpy as np
import pytest

from litesam_ros.training.supervised.targets import (build_ppn_targets, central_point, instance_groups,
                                          ownership)


def _rect(S, y0, y1, x0, x1):
    m = np.zeros((S, S), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_smallest_mask_owns_overlap():
    big = _rect(64, 0, 64, 0, 64)
    small = _rect(64, 20, 30, 20, 30)
    owner = ownership(np.stack([big, small]))
    assert (owner[20:30, 20:30] == 1).all()
    assert owner[0, 0] == 0 and owner[40, 40] == 0
    # order of the masks must not matter
    owner2 = ownership(np.stack([small, big]))
    assert (owner2[20:30, 20:30] == 0).all() and owner2[40, 40] == 1


def test_peak_at_most_central_point_not_box_centre():
    S = 128
    m = np.zeros((S, S), bool)
    m[60:110, 10:60] = True    # thick 50x50 block, bottom left
    m[10:20, 10:120] = True    # thin top bar
    m[10:110, 10:20] = True    # thin left bar: box centre (65, 60) lies outside the mask
    assert not m[60, 65]
    t = build_ppn_targets(m[None], grid=8)
    px, py = t.peaks[0]
    assert m[int(py), int(px)]
    # the most central point is the block's centre (~(34.5, 84.5))
    assert 30 <= px <= 40 and 80 <= py <= 90, (px, py)
    assert (px, py) == central_point(m)
    cell = t.heatmap.max(0)
    cy, cx = np.unravel_index(np.argmax(cell), cell.shape)
    assert (cy, cx) == (int(py) // 16, int(px) // 16)
    assert cell[cy, cx] == pytest.approx(1.0)
    # the box-centre cell is background
    assert cell[60 // 16, 65 // 16] == 0.0
    # box target lives at the peak cell only
    assert t.box_weight.sum() == 1 and t.box_weight[cy, cx] == 1
    np.testing.assert_allclose(t.box_target[cy, cx], [10, 10, 120, 110])


def test_soft_values_decay_from_peak():
    S = 128
    m = _rect(S, 16, 112, 16, 112)
    t = build_ppn_targets(m[None], grid=8)
    h = t.heatmap.max(0)
    assert h[3, 3] == pytest.approx(1.0) or h[4, 4] == pytest.approx(1.0)
    assert 0 < h[1, 4] < h[2, 4] < h[3, 4]   # monotone towards the centre
    assert h[0, 0] == 0.0


def test_size_groups_channels():
    S = 320
    small = _rect(S, 10, 20, 10, 20)       # 10/320 = 0.031 -> small
    med = _rect(S, 100, 140, 100, 130)     # 40/320 = 0.125 -> medium
    large = _rect(S, 180, 320, 150, 310)   # 160/320 = 0.5 -> large
    masks = np.stack([small, med, large])
    assert instance_groups(masks).tolist() == [0, 1, 2]
    t = build_ppn_targets(masks, grid=20)
    assert t.groups.tolist() == [0, 1, 2]
    for g, m in enumerate(masks):
        px, py = t.peaks[g]
        assert t.heatmap[g, int(py) // 16, int(px) // 16] == pytest.approx(1.0)
        others = [c for c in range(3) if c != g]
        assert t.heatmap[others, int(py) // 16, int(px) // 16].max() == 0.0
    # boundaries: exactly 0.05 is small, exactly 0.25 is large (relative to image_hw)
    assert instance_groups(_rect(S, 0, 16, 0, 16)[None]).tolist() == [0]
    assert instance_groups(_rect(S, 0, 80, 0, 10)[None]).tolist() == [2]
    # relative to the valid image region, not the padded frame
    assert instance_groups(_rect(S, 0, 40, 0, 10)[None], image_hw=(160, 320)).tolist() == [2]


def test_ignore_cells():
    S = 64
    m = _rect(S, 0, 16, 0, 16)
    ig = np.zeros((S, S), bool)
    ig[32:, 32:] = True
    ig[0:16, 0:16] = True  # ignored but positive: stays valid
    t = build_ppn_targets(m[None], grid=4, ignore=ig)
    assert t.valid[2:, 2:].sum() == 0
    assert t.valid[0, 0] == 1 and t.valid[0, 3] == 1


def test_empty_masks():
    t = build_ppn_targets(np.zeros((0, 32, 32), bool), grid=2)
    assert t.heatmap.shape == (3, 2, 2) and t.heatmap.sum() == 0 and t.box_weight.sum() == 0
