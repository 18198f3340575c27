"""Synthetic scene generator: determinism and sanity."""
import numpy as np

from litesam_ros.training.data.synthetic import (SyntheticConfig, SyntheticScenes, generate_scenes,
                                            scene_groups)


def test_deterministic_by_seed():
    a = generate_scenes([3, 4, 5])
    b = SyntheticScenes()
    for s in a:
        t = b[s.seed]
        assert np.array_equal(s.image, t.image) and np.array_equal(s.masks, t.masks)
    assert not np.array_equal(a[0].image, a[1].image)


def test_masks_sane_and_disjoint():
    scenes = generate_scenes(range(40))
    groups = []
    for s in scenes:
        assert s.image.dtype == np.uint8 and s.image.shape == (320, 320, 3)
        assert s.masks.dtype == bool and s.masks.shape[1:] == (320, 320)
        assert len(s.masks) >= 1
        assert (s.masks.reshape(len(s.masks), -1).sum(1) >= 12).all()  # none empty
        # occlusion keeps instances disjoint: every pixel belongs to at most one instance
        assert s.masks.sum(0).max() <= 1
        groups.extend(scene_groups(s.masks).tolist())
    counts = np.bincount(groups, minlength=3)
    assert (counts > 10).all(), counts  # all three size groups occur


def test_occlusion_updates_earlier_masks():
    # with many large objects, earlier ones must lose pixels to later pastes
    cfg = SyntheticConfig(height=96, width=128, min_objects=6, max_objects=6,
                          group_probs=(0.0, 0.0, 1.0), min_visible_frac=0.0, min_pixels=1)
    s = SyntheticScenes(cfg)[11]
    assert s.image.shape == (96, 128, 3)
    assert s.masks.sum(0).max() <= 1
    # the last pasted object is fully visible; its pixels show its own texture, so the union of
    # the masks covers a large part of the image
    assert s.masks.any(0).mean() > 0.3
