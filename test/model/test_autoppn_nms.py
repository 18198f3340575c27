"""Point-NMS + top-N on hand-made heatmaps."""
from __future__ import annotations

import torch

from litesam_ros.model import point_nms, select_proposals

STRIDE = 16.0


def boxes_for(e: int, half: float = 10.0) -> torch.Tensor:
    """[1,E,E,4] boxes of +-half px around each cell centre."""
    c = (torch.arange(e, dtype=torch.float32) + 0.5) * STRIDE
    cy, cx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack((cx - half, cy - half, cx + half, cy + half), -1)[None]


def heatmap_with(e: int, peaks: dict, groups: int = 3, background: float = 0.0) -> torch.Tensor:
    hm = torch.full((1, groups, e, e), background)
    for (g, y, x), v in peaks.items():
        hm[0, g, y, x] = v
    return hm


def test_point_nms_keeps_only_local_maxima() -> None:
    hm = heatmap_with(6, {(0, 1, 1): 0.9, (0, 1, 2): 0.8, (0, 2, 2): 0.7,  # one blob
                          (0, 4, 4): 0.6,                                  # isolated peak
                          (1, 1, 1): 0.5})                                 # other group
    out = point_nms(hm)
    kept = {tuple(i.tolist()) for i in torch.nonzero(out[0])}
    assert kept == {(0, 1, 1), (0, 4, 4), (1, 1, 1)}
    assert out[0, 0, 1, 1] == 0.9 and out[0, 1, 1, 1] == 0.5  # groups are suppressed separately


def test_proposals_are_peaks_sorted_with_points_groups_boxes() -> None:
    e = 6
    hm = heatmap_with(e, {(0, 1, 1): 0.9, (0, 1, 2): 0.85, (2, 4, 3): 0.7, (1, 0, 5): 0.3})
    p = select_proposals(hm, boxes_for(e), STRIDE, top_n=5, min_score=0.0,
                         image_size=6 * STRIDE)
    assert torch.allclose(p.scores[0], torch.tensor([0.9, 0.7, 0.3, 0.0, 0.0]))
    assert p.groups[0].tolist() == [0, 2, 1, 0, 0]
    assert p.points[0, :3].tolist() == [[24.0, 24.0], [56.0, 72.0], [88.0, 8.0]]
    # boxes belong to the peak cells and are clamped to the frame [0, 96]
    assert p.boxes[0, 0].tolist() == [14.0, 14.0, 34.0, 34.0]
    assert p.boxes[0, 2].tolist() == [78.0, 0.0, 96.0, 18.0]
    # padding entries are all zeros
    assert torch.count_nonzero(p.points[0, 3:]) == 0 and torch.count_nonzero(p.boxes[0, 3:]) == 0


def test_top_n_keeps_the_n_highest_peaks() -> None:
    e = 8
    torch.manual_seed(0)
    peaks = {}
    values = torch.rand(16) * 0.9 + 0.05
    for i, v in enumerate(values):  # peaks on every other cell: all are local maxima
        peaks[(i % 3, 2 * (i // 4), 2 * (i % 4))] = float(v)
    hm = heatmap_with(e, peaks)
    p = select_proposals(hm, boxes_for(e), STRIDE, top_n=5)
    assert p.scores.shape == (1, 5)
    assert torch.allclose(p.scores[0], values.sort(descending=True).values[:5])


def test_min_score_zeroes_weak_peaks() -> None:
    e = 5
    hm = heatmap_with(e, {(0, 0, 0): 0.9, (0, 2, 2): 0.2, (1, 4, 4): 0.05}, background=0.01)
    p = select_proposals(hm, boxes_for(e), STRIDE, top_n=4, min_score=0.2)
    assert torch.allclose(p.scores[0], torch.tensor([0.9, 0.2, 0.0, 0.0]))
    assert p.points[0, 1].tolist() == [40.0, 40.0]
    assert p.groups[0, 2:].tolist() == [0, 0]


def test_batched_images_are_independent() -> None:
    e = 4
    a = heatmap_with(e, {(0, 0, 0): 0.8})
    b = heatmap_with(e, {(2, 3, 3): 0.6})
    p = select_proposals(torch.cat([a, b]), boxes_for(e).expand(2, -1, -1, -1), STRIDE,
                         top_n=2)
    assert p.scores.tolist() == [[0.800000011920929, 0.0], [0.6000000238418579, 0.0]]
    assert p.groups[:, 0].tolist() == [0, 2]
    assert p.points[:, 0].tolist() == [[8.0, 8.0], [56.0, 56.0]]
