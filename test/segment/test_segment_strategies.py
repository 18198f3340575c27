import numpy as np
import pytest
import torch

from litesam_ros.engines.base import EncoderResult
from litesam_ros.segment.strategies import (build_point_grid, grid_points, proposal_points,
                                            uncovered_points)


def test_point_grid_is_sams():
    np.testing.assert_allclose(build_point_grid(2),
                               [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    g = build_point_grid(32)
    assert g.shape == (1024, 2) and g.min() == pytest.approx(1 / 64) \
        and g.max() == pytest.approx(63 / 64)
    pts = grid_points(4, (100, 200))  # (h, w) of the image inside the input frame
    assert pts[:, 0].max() == pytest.approx(175) and pts[:, 1].max() == pytest.approx(87.5)
    with pytest.raises(ValueError):
        build_point_grid(0)


def test_proposal_points_order_threshold_and_nms():
    pts = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]])
    scores = torch.tensor([[0.2, 0.9, 0.0, 0.5]])
    boxes = torch.tensor([[[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 1, 1], [0, 0, 10, 11]]],
                         dtype=torch.float32)
    enc = EncoderResult(torch.zeros(1, 1, 1, 1), pts, scores, torch.zeros(1, 4), boxes)
    assert proposal_points(enc).tolist() == [[2, 2], [4, 4], [1, 1]]
    assert proposal_points(enc, score_thresh=0.3).tolist() == [[2, 2], [4, 4]]
    # box of proposal 0 overlaps proposal 3's (IoU 10/11) which scores higher
    assert proposal_points(enc, nms_thresh=0.7).tolist() == [[2, 2], [4, 4]]


def test_uncovered_points_uses_low_res_scale():
    covered = torch.zeros(8, 8, dtype=torch.bool)
    covered[:4, :4] = True  # top-left quarter of a 32 x 32 input frame
    pts = np.array([[1, 1], [15, 15], [16, 15], [31, 31], [15.9, 16.1]], np.float32)
    np.testing.assert_allclose(uncovered_points(pts, covered, 32),
                               [[16, 15], [31, 31], [15.9, 16.1]])
