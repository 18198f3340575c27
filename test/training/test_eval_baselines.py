"""The evaluation's trivial baselines: box-fill for box prompts, a matched grid for proposals."""
import numpy as np

from litesam_ros.training.evaluation.evaluate import box_fill, matched_grid


def test_box_fill_of_a_disc_is_its_square() -> None:
    yy, xx = np.mgrid[:40, :50]
    disc = (yy - 20) ** 2 + (xx - 25) ** 2 <= 10 ** 2
    filled = box_fill(disc)
    assert filled[10:31, 15:36].all() and filled.sum() == 21 * 21
    iou = (disc & filled).sum() / (disc | filled).sum()
    assert iou == disc.sum() / 441 and 0.7 < iou < np.pi / 4  # a disc fills ~pi/4 of its box


def test_matched_grid_has_about_n_points_inside_the_image() -> None:
    for n, hw in ((64, (480, 640)), (10, (100, 30)), (1, (5, 5))):
        g = matched_grid(n, hw)
        side = int(round(np.sqrt(n)))
        assert len(g) == side * side
        assert (g[:, 0] >= 0).all() and (g[:, 0] < hw[1]).all()
        assert (g[:, 1] >= 0).all() and (g[:, 1] < hw[0]).all()
        assert len(np.unique(g, axis=0)) == len(g)
